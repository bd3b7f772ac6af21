#pragma once

// One FUSE queue of the io_uring transport: the ring on which the kernel delivers the
// requests of one CPU (a URING_CMD completion per request), the queue's entries (each a
// header buffer and a payload buffer the kernel fills), and the owner thread that fetches
// requests and hands them to the dispatcher. A reply is a COMMIT_AND_FETCH command on the
// same ring, which also asks for the entry's next request.
//
// Thread safety: the owner thread alone touches the ring: it creates it, registers the
// entries, reaps completions, dispatches and submits. That is not only tidy: the kernel
// ties each FUSE command to the thread that submitted it, delivers the next request as task
// work to that thread, and cancels the command when that thread exits. commit() may be
// called from any thread (an op answered from an engine completion): from elsewhere than
// the owner it queues the entry and wakes the owner through an eventfd it keeps a read
// armed on. Commits made by the owner while it dispatches are submitted together when the
// batch of completions is done.

#include <liburing.h>
#include <sys/uio.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/client_ring.h"
#include "engine/unique_fd.h"
#include "fusefs/transport/uring_abi.h"

namespace fsysfs::fusefs {

class RingQueue {
 public:
  // Handles one request, laid out as on /dev/fuse (fuse_in_header, the op's arguments),
  // on the owner thread; `payload` is the entry's payload buffer, where a reply may be
  // built in place. Both stay valid until the request is answered.
  using Dispatch = std::function<void(std::span<std::byte> request, std::span<std::byte> payload)>;

  struct Params {
    unsigned qid = 0;  // the queue's CPU
    unsigned depth = 16;
    size_t payload_size = 0;
    // Run the owner at SCHED_IDLE (see place_owner()).
    bool idle_priority = false;
    // Register the payload buffers with the ring (writes are WRITE_FIXEDs from them);
    // registered memory is pinned, all of it at once.
    bool register_payload = true;
    // Called on the owner when it gave back the fixed-file slots of files destroyed on
    // other threads (engine::ClientRing::Setup::given_back).
    std::function<void()> slots_given_back;
  };

  // Starts the owner thread, which sets up the ring and the buffers; nothing reaches the
  // kernel's FUSE connection yet. The ops the owner submits to `engine` (if not null) run
  // on the same ring, writes from the payload buffers as registered buffers. Returns
  // nullptr and says why in `why` on failure.
  static std::unique_ptr<RingQueue> create(int dev_fd, engine::Engine* engine, const Params& params,
                                           std::string* why);
  ~RingQueue();
  RingQueue(const RingQueue&) = delete;
  RingQueue& operator=(const RingQueue&) = delete;

  // Gives every entry to the kernel (REGISTER) and starts the owner thread. Returns 0, or
  // -errno when the kernel refused the entries (nothing is running then).
  int start(Dispatch dispatch) noexcept;
  // Ends the owner thread, which destroys the ring (the kernel takes the entries back).
  void stop() noexcept;

  // If request `unique` came through this queue and is not answered yet: copies the reply
  // (`iov[0]` the fuse_out_header, the rest its payload) into the entry and commits it.
  // Returns false when the request is not this queue's.
  bool commit(uint64_t unique, const iovec* iov, int count) noexcept;

  // Whether the calling thread is a queue's owner thread.
  static bool on_owner_thread() noexcept;

  uint64_t requests() const noexcept { return requests_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    uring_abi::ReqHeader* header = nullptr;
    std::byte* payload = nullptr;
    // The request being served; 0 once answered. Set by the owner before dispatching,
    // cleared by whoever commits.
    std::atomic<uint64_t> unique{0};
    uint64_t commit_id = 0;
    iovec iov[2]{};
  };

  enum class Phase { kSetUp, kReady, kStarting, kRunning, kStopped };

  RingQueue(engine::Engine* engine, const Params& params);
  // Pins the owner to the queue's CPU and sets its scheduling class.
  void place_owner() noexcept;
  // The owner thread: sets the ring up, waits for start(), serves, tears the ring down.
  void owner(int dev_fd) noexcept;
  int set_up(int dev_fd, std::string* why) noexcept;
  int register_entries() noexcept;
  void serve() noexcept;
  // Waits until every engine op on the ring has completed (the ring is about to go).
  void drain_engine_ops() noexcept;
  void on_cqe(const io_uring_cqe& cqe, unsigned* dead) noexcept;
  void handle(Entry& e) noexcept;
  // Owner thread only: puts a command for `e` on the submission queue.
  void prep_command(Entry& e, uring_abi::Cmd cmd) noexcept;
  void arm_wake() noexcept;
  // Makes the owner turn (its eventfd read completes). Any thread.
  void wake_owner() noexcept;
  // Copies a reply into `e` (an EIO reply when it does not fit the payload buffer).
  void fill_reply(Entry& e, const iovec* iov, int count) noexcept;

  const unsigned qid_;
  const unsigned depth_;
  const size_t payload_size_;
  const bool idle_priority_;
  const bool register_payload_;
  const std::function<void()> slots_given_back_;
  engine::Engine* const engine_;
  io_uring ring_{};  // owner thread only
  bool ring_up_ = false;
  std::unique_ptr<engine::ClientRing> client_;  // owner thread only: the engine's ops on ring_
  UniqueFd wake_fd_;                            // eventfd the owner keeps a read armed on
  uint64_t wake_buf_ = 0;
  // Anonymous memory, unmapped when destroyed.
  class Mapping {
   public:
    explicit Mapping(size_t len) noexcept;
    Mapping(Mapping&& o) noexcept;
    Mapping& operator=(Mapping&&) = delete;
    ~Mapping();
    std::byte* data() const noexcept { return data_; }

   private:
    std::byte* data_ = nullptr;
    size_t len_ = 0;
  };
  // One mapping per entry: its header, then the room where the request's headers are put
  // back in front of its arguments, then the payload buffer.
  std::vector<Mapping> mappings_;
  std::vector<Entry> entries_;
  Dispatch dispatch_;
  std::thread owner_;
  // The owner's phase and the results it reports; start() and stop() wait on them.
  std::mutex phase_mu_;  // leaf lock
  std::condition_variable phase_cv_;
  Phase phase_ = Phase::kSetUp;  // guarded by phase_mu_
  bool stop_asked_ = false;      // guarded by phase_mu_
  int result_ = 0;               // guarded by phase_mu_: of set-up, then of registration
  std::string why_;              // guarded by phase_mu_
  // Entries answered on other threads, for the owner to commit.
  std::mutex pending_mu_;        // leaf lock
  std::vector<Entry*> pending_;  // guarded by pending_mu_
  bool wake_sent_ = false;       // guarded by pending_mu_
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> requests_{0};
};

}  // namespace fsysfs::fusefs
