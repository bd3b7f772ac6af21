#pragma once

// The fsys engine: writes, reads and syncs of regular files through an io_uring ring
// owned by one thread (or, as a fallback, through plain syscalls on a worker pool), with
// the same durability contract on both backends. Knows nothing of FUSE.
//
// Thread safety: every member function of Engine and File may be called from any thread,
// concurrently. Completions run on an engine thread, never inside the submitting call,
// except for the ops Options::inline_ops runs on the caller: those complete before it
// returns. A thread that lends the engine its own ring (client_ring.h) gets its ops'
// completions on itself, when it hands back their CQEs.

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

// The public headers (this one, options.h, stats.h, unique_fd.h, client_ring.h, file_table.h)
// include each other by file name: they are installed as <fsys/engine/...>.
#include "options.h"
#include "stats.h"
#include "unique_fd.h"

namespace fsysfs::engine {

class Backend;
class BufferPool;
class ClientRing;
class OpRing;
struct Op;
enum class OpType : uint8_t;
class NvmeDevice;
class NvmeFlusher;

// What a write is followed by, or what a sync does.
enum class SyncKind : uint8_t {
  kNone,  // no sync (writes only)
  kData,  // fdatasync
  kFull,  // fsync
};

// Completion of an op: bytes transferred (>= 0) or -errno. Must not throw (it runs on an
// engine thread inside a noexcept dispatcher) and must not destroy its own File: ~File
// waits until every completion of the file has returned.
using Completion = std::function<void(int64_t res)>;

// A registered, page-aligned buffer leased from the engine's pool. Move-only; goes back
// to the pool when destroyed. Handing it to Engine::write moves it into the op, and the
// pool gets it back only once the kernel is done with it.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Buffer&& o) noexcept;
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  explicit operator bool() const noexcept { return data_ != nullptr; }
  std::byte* data() const noexcept { return data_; }
  size_t capacity() const noexcept { return capacity_; }
  int index() const noexcept { return index_; }  // registered buffer index

 private:
  friend class BufferPool;
  Buffer(BufferPool* pool, int index, std::byte* data, size_t capacity) noexcept
      : pool_(pool), index_(index), data_(data), capacity_(capacity) {}
  BufferPool* pool_ = nullptr;
  int index_ = -1;
  std::byte* data_ = nullptr;
  size_t capacity_ = 0;
};

// An open file the engine does I/O on. Owns its fd. Created by Engine::adopt. While it
// lives it may hold a slot of the registered file table; destruction waits until no op
// on it is in flight, gives the slot back, and only then closes the fd (so a reused fd
// number can never be reached through a stale slot). A File may outlive its Engine (it
// then only closes its fd), but no op may be submitted on it after the Engine is gone.
class File {
 public:
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  int fd() const noexcept { return fd_.get(); }
  dev_t device() const noexcept { return dev_; }
  // True when syncs on this file are followed by an NVMe FLUSH.
  bool nvme_flush() const noexcept { return nvme_ != nullptr; }

 private:
  friend class Engine;
  friend class UringBackend;
  friend class SyncBackend;
  friend class OpRing;
  friend class ClientRing;
  File(std::shared_ptr<Backend> backend, UniqueFd fd, dev_t dev, std::shared_ptr<NvmeDevice> nvme);

  // A slot this file holds on a client ring's file table (client_ring.h).
  struct ClientSlot {
    std::weak_ptr<void> ring;  // the ring's retirement list; expired once the ring is gone
    int slot = -1;
  };

  std::shared_ptr<Backend> backend_;
  UniqueFd fd_;
  dev_t dev_;
  std::shared_ptr<NvmeDevice> nvme_;
  std::atomic<int> pending_{0};           // ops submitted and not yet completed
  bool direct_ = false;                   // O_DIRECT: written only from aligned memory
  int slot_ = -1;                         // registered file index; touched by the ring owner only
  bool slot_tried_ = false;               // ring owner only
  const uint64_t id_;                     // never reused: client rings key their slots by it
  std::mutex client_slots_mu_;            // leaf lock
  std::vector<ClientSlot> client_slots_;  // guarded by client_slots_mu_
};

class Engine {
 public:
  // Sets up the backend. Throws std::runtime_error when Options ask for io_uring and it
  // cannot be set up (kAuto falls back instead, and says why in stats()).
  explicit Engine(Options options = {});
  // Completes every queued op (none is lost or left waiting), joins the engine threads
  // and tears the ring down; registered buffers are freed only after the ring is gone.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Takes ownership of an fd open for I/O on a regular file (or anything pwrite works on).
  std::unique_ptr<File> adopt(UniqueFd fd);

  // Leases a registered buffer; empty when the pool is exhausted or disabled.
  Buffer acquire_buffer() noexcept;

  // --- asynchronous API: `done` runs once, on an engine thread, or on the caller before
  // the call returns when Options::inline_ops runs the op there ---------------------------
  // Writes `data` (copied, or written when it runs inline, before returning) at `off`, then syncs
  // it if `sync` says so: one linked chain on the ring, or pwrite then the sync when it runs
  // inline. The result is the byte count, or the first error. A chain whose write lands only in
  // part syncs that part and reports its length.
  void write(File& f, std::span<const std::byte> data, uint64_t off, SyncKind sync,
             Completion done);
  // Writes the first `len` bytes of a leased buffer (WRITE_FIXED on the ring).
  void write(File& f, Buffer buf, size_t len, uint64_t off, SyncKind sync, Completion done);
  // `into` must stay alive until `done` runs.
  void read(File& f, std::span<std::byte> into, uint64_t off, Completion done);
  void sync(File& f, SyncKind kind, Completion done);

  // --- blocking API --------------------------------------------------------------------
  int64_t write(File& f, std::span<const std::byte> data, uint64_t off,
                SyncKind sync = SyncKind::kNone);
  int64_t read(File& f, std::span<std::byte> into, uint64_t off);
  int sync(File& f, SyncKind kind);

  // Fixed-file slots of destroyed Files that a client ring has not given back yet: each keeps
  // its file open (and a removed file's blocks allocated) until that ring's owner turns.
  unsigned slots_retiring() const noexcept {
    return slots_retiring_.load(std::memory_order_seq_cst);
  }

  StatsSnapshot stats() const;
  void reset_stats() noexcept;
  // "io_uring" or "sync".
  const char* backend_name() const noexcept;

 private:
  friend class File;
  friend class UringBackend;
  friend class SyncBackend;
  friend class NvmeFlusher;
  friend class OpRing;
  friend class ClientRing;
  // Where an op runs: the one place that decides it.
  enum class Route : uint8_t {
    kBackend,     // the backend's threads (the engine's ring owner, or its sync workers)
    kCaller,      // inline on the submitting thread (Options::inline_ops)
    kClientRing,  // the submitting thread's own ring (client_ring.h)
  };
  Op* new_op(File& f, Completion done);
  Op* new_write_op(File& f, Completion done, SyncKind sync, std::byte* data, size_t len,
                   uint64_t off);
  // Runs `op` where route() says.
  void submit(Op* op) noexcept;
  void submit(Op* op, Route route) noexcept;
  // Where an op submitted by the calling thread runs. An op run on the caller that waits for
  // the device takes one of the max_inline_waits places, which submit gives back.
  Route route(OpType type, SyncKind sync) noexcept;
  // Whether Options::inline_ops runs such an op on the submitting thread (see route()).
  bool take_inline(OpType type, SyncKind sync) noexcept;
  // Gives back the place an op that ran inline took, if it took one.
  void end_inline(const Op& op) noexcept;
  // Copies a write's bytes into a registered buffer, or else an aligned private copy, and
  // points the op at them; false when out of memory.
  bool own_copy(Op& op) noexcept;
  // Ends an op whose I/O is done: stats, the NVMe FLUSH hop for
  // a successful sync, the caller's completion, then the file's pending count. On an engine
  // thread, or on the caller for an op that ran inline.
  void complete(Op* op, int64_t res) noexcept;
  void run_completion(Op* op, int64_t res) noexcept;

  Options options_;
  Stats stats_;
  std::string fallback_reason_;  // why the syscall backend runs; empty on io_uring
  std::shared_ptr<NvmeRegistry> nvme_;
  // Declared before backend_: the pool (registered buffers) must outlive the ring.
  std::unique_ptr<BufferPool> pool_;
  std::unique_ptr<NvmeFlusher> flusher_;
  std::shared_ptr<Backend> backend_;       // shared with Files, which may outlive the Engine
  std::atomic<unsigned> inline_waits_{0};  // device waits running inline now
  std::atomic<unsigned> slots_retiring_{0};
};

}  // namespace fsysfs::engine
