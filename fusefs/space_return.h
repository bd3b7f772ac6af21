#pragma once

// When the backing filesystem is full, space that removed files will give back soon.
//
// The daemon keeps every reference to a backing file until the kernel lets go of it, so
// that a removed file behaves as POSIX says for whoever still has it: its inode's O_PATH fd
// until FORGET, each open's fd until RELEASE, and on the io_uring transport a fixed-file
// slot on a queue's ring until that ring's owner gives it back. The kernel sends FORGET and
// RELEASE asynchronously: `rm` (and `close` before it) return before they reach the daemon,
// so an operation right after `rm` can find the backing fs still full. An operation that
// the backing fs refuses with ENOSPC or EDQUOT therefore waits, where waiting is allowed,
// until the daemon lets go of such a reference, and tries again (as ext4 retries an
// allocation after its journal commits), for at most kWait in all. The backing fs may
// finish freeing a file a few milliseconds after the daemon closed its last reference
// (measured: up to 3.5 ms on tmpfs, on both transports, with nothing left open anywhere), so
// for kFreeing after the daemon let go of something, an operation that finds nothing held
// waits for the backing fs's free space to grow and tries again. A removed file that
// something else keeps (another process has it open) is not let go within kWait: the
// operation then fails with the backing fs's errno, and later ones do not wait for that
// file again.
//
// Thread safety: every member function may be called from any thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace fsysfs::fusefs {

class SpaceReturn {
 public:
  using Clock = std::chrono::steady_clock;
  // The longest an operation waits in all, from its first ENOSPC.
  static constexpr std::chrono::milliseconds kWait{1000};
  // How long after a let-go the backing fs may still be freeing what it held, and how often
  // its free space is looked at meanwhile.
  static constexpr std::chrono::milliseconds kFreeing{50};
  static constexpr std::chrono::milliseconds kFreeingPoll{1};

  // What the daemon holds that has no name left in the backing fs.
  struct Held {
    std::vector<std::pair<dev_t, ino_t>> files;  // sorted
    unsigned ring_slots = 0;  // fixed-file slots of closed files not given back yet
  };
  // Finds what the daemon holds now; may take long (a syscall per inode).
  using Scan = std::function<Held()>;
  // The backing fs's free space (any unit), or 0 when it cannot be read.
  using FreeSpace = std::function<uint64_t()>;

  // At most `max_waiters` operations wait at once (on /dev/fuse, one FUSE worker must be
  // left to read the FORGETs and RELEASEs they wait for).
  SpaceReturn(unsigned max_waiters, Scan scan, FreeSpace free_space) noexcept
      : max_waiters_(max_waiters), scan_(std::move(scan)), free_space_(std::move(free_space)) {}
  SpaceReturn(const SpaceReturn&) = delete;
  SpaceReturn& operator=(const SpaceReturn&) = delete;

  // Whether a result (-errno, or a count or fd) is -ENOSPC or -EDQUOT.
  static bool full(int rc) noexcept;

  // A name was removed through the mount (its file may now be held only by the daemon).
  void removed() noexcept { changes_.fetch_add(1, std::memory_order_seq_cst); }
  // An open of the file (dev, ino) is being closed (FLUSH): its RELEASE may follow, so a
  // wait that gave up on it waits for it again.
  void closing(dev_t dev, ino_t ino) noexcept;
  // The daemon dropped a reference to a backing file that Held::ring_slots counted until
  // now (called before it stops counting it).
  void let_go() noexcept;
  // Brackets the dropping of a reference to a backing file (an inode's O_PATH fd, an open,
  // a ring slot), from before the reference can no longer be found (by the scan, or in
  // Held::ring_slots) until after it is closed: a wait that finds nothing held while one is
  // being dropped still sees it let go.
  class Dropping {
   public:
    explicit Dropping(SpaceReturn* space) noexcept : space_(space) {
      if (space_ != nullptr) space_->dropping_.fetch_add(1, std::memory_order_seq_cst);
    }
    ~Dropping() {
      if (space_ == nullptr) return;
      space_->let_go();
      space_->dropping_.fetch_sub(1, std::memory_order_seq_cst);
    }
    Dropping(const Dropping&) = delete;
    Dropping& operator=(const Dropping&) = delete;

   private:
    SpaceReturn* const space_;
  };

  // Taken right before a backing call that may find the backing fs full: what may_return()
  // and wait() tell a later let-go by (one let go between the call and the wait counts).
  uint64_t sample() const noexcept { return drops_.load(std::memory_order_seq_cst); }
  // Cheap: whether a call that found the backing fs full, made after `sample`, may gain by
  // waiting: something was let go since, or removed, closed or let go since a wait last
  // found nothing worth waiting for.
  bool may_return(uint64_t sample) const noexcept;
  // Where waiting is allowed (never on an io_uring queue's owner): waits, no later than
  // `deadline`, until the daemon lets go of something after `sample`; true when it did (try
  // again, with a new sample), false when it holds no removed file, or none that was let go
  // in time.
  bool wait(uint64_t sample, Clock::time_point deadline) noexcept;

 private:
  // After a let-go within kFreeing: waits until the backing fs's free space grows, the
  // window ends or `deadline`; true when it grew or the window ended (try again).
  bool wait_for_freeing(Clock::time_point deadline) noexcept;

  const unsigned max_waiters_;
  const Scan scan_;
  const FreeSpace free_space_;
  std::atomic<Clock::rep> last_let_go_{0};  // Clock time of the last let_go()
  std::atomic<unsigned> dropping_{0};       // Dropping brackets open now
  std::atomic<uint64_t> changes_{0};        // removals, and closes of settled files
  std::atomic<uint64_t> drops_{0};
  std::atomic<unsigned> waiters_{0};
  std::mutex mu_;  // leaf lock
  std::condition_variable dropped_;
  // The counts at which a wait last found nothing worth waiting for, and the files it found
  // held then (kept by something else): later waits do not wait for those again.
  std::atomic<uint64_t> settled_changes_{0};
  std::atomic<uint64_t> settled_drops_{0};
  std::vector<std::pair<dev_t, ino_t>> settled_files_;  // guarded by mu_; sorted
  std::atomic<bool> any_settled_{false};                // settled_files_ is not empty
};

}  // namespace fsysfs::fusefs
