#pragma once

// A ring owned by a client's thread on which the engine runs that thread's ops: an event
// loop that already waits on its own io_uring (a FUSE queue's, say) gets its writes and
// syncs onto the same ring, with no hand-off to the engine's owner thread and no wait in
// a sync. The client keeps driving the ring: it submits, reaps, and hands back the CQEs
// that are the engine's.
//
// While a ClientRing lives, the asynchronous ops the constructing thread submits to its
// Engine run on this ring, and their completions run on that thread when it hands back
// their CQEs (or on the engine's NVMe flusher, after a FLUSH). A write's bytes are used in
// place, not copied: they must stay valid until its completion runs. The blocking API
// still runs on the engine's own threads, since the client thread would wait for itself.
//
// Thread safety: only the thread that owns the ring (and constructed this) may use it.

#include <liburing.h>
#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "file_table.h"

namespace fsysfs::engine {

class Engine;
class File;
class OpRing;
struct Op;

class ClientRing {
 public:
  struct Setup {
    // How many CQEs the engine's ops may have outstanding on the ring at once.
    unsigned cq_room = 0;
    // The buffers registered on the ring (by index): a write whose bytes lie in one is a
    // WRITE_FIXED from it.
    std::vector<iovec> buffers;
    // Slots [file_slot_base, file_slot_base + file_slots) of the ring's registered file
    // table are the engine's: a file gets one on its first op here and gives it back when
    // destroyed. None: ops name files by their fds.
    unsigned file_slot_base = 0;
    unsigned file_slots = 0;
    // Makes the ring's owner turn soon (from any thread): a file destroyed on another thread
    // gives its slot back on the owner's next prep_pending(); one destroyed on the owner
    // gives it back at once.
    std::function<void()> wake;
    // Called on the owner when prep_pending() gave back such slots (the files they held
    // open are closed unless something else holds them), before Engine::slots_retiring()
    // stops counting them.
    std::function<void()> given_back;
  };

  ClientRing(Engine& engine, io_uring& ring, Setup setup);
  // Detaches from the thread. Every op must have completed (idle()).
  ~ClientRing();
  ClientRing(const ClientRing&) = delete;
  ClientRing& operator=(const ClientRing&) = delete;

  // Whether a CQE is the engine's. The client's own SQEs must have bit 1 of their
  // user_data set (an 8-byte-aligned address | 2, say); the engine's never do.
  static bool owns(uint64_t user_data) noexcept { return (user_data & 2) == 0; }
  // Hands back a CQE the engine owns; its op's completion may run inside.
  void complete(uint64_t user_data, int32_t res) noexcept;
  // Gives back the slots of destroyed files, then preps the ops that waited for room on
  // the ring; call before each submit.
  void prep_pending() noexcept;
  // No op waiting or in flight.
  bool idle() const noexcept;

  // The calling thread's ClientRing for `engine`, or null.
  static ClientRing* of_thread(const Engine& engine) noexcept;

 private:
  friend class Engine;
  friend class File;
  // Slots given back by destroyed files, shared with them (File::ClientSlot).
  struct Retired;

  void submit(Op* op) noexcept;
  // The index of the registered buffer holding [p, p + len), or -1.
  int buffer_index(const std::byte* p, size_t len) const noexcept;
  // The slot that names `f` on the ring, registered on first use; -1: its fd.
  int slot_of(File& f) noexcept;
  void give_back_retired() noexcept;
  // Unregisters `slot` and frees it for other files; false when the kernel refused.
  bool give_back(int slot) noexcept;
  // From ~File, any thread.
  static void retire(const std::weak_ptr<void>& retired, int slot) noexcept;

  Engine& engine_;
  io_uring& ring_;
  std::unique_ptr<OpRing> ops_;
  std::vector<iovec> buffers_;
  std::shared_ptr<Retired> retired_;
  const std::function<void()> given_back_;
  const unsigned slot_base_;
  std::optional<FileTable> files_;           // the engine's part of the ring's table
  std::unordered_map<uint64_t, int> slots_;  // File::id_ -> ring slot
  std::vector<uint64_t> slot_file_;          // table index -> File::id_
};

}  // namespace fsysfs::engine
