#pragma once

// Sync errors of an inode, reported the way the kernel's errseq_t reports writeback errors:
// every open file that has not yet seen the latest error sees it once, on its next fsync
// or close, and a file opened after an error does not see it. The backing fs already does
// this for its own errors on each backing fd; this record carries the errors that never
// reached the backing fs's record (injected faults), and keeps one handle from seeing
// the same failure twice.
//
// Thread safety: lock-free; any thread.

#include <atomic>
#include <cstdint>

namespace fsysfs::fusefs {

class ErrorSeq {
 public:
  // A cursor for a newly opened file: it has seen everything recorded so far.
  uint64_t sample() const noexcept { return v_.load(std::memory_order_acquire); }

  // Records `err` and marks it seen by `cursor` (the file that got it).
  void record(int err, std::atomic<uint64_t>& cursor) noexcept {
    uint64_t old = v_.load(std::memory_order_relaxed);
    uint64_t next;
    do {
      next = (((old >> kErrBits) + 1) << kErrBits) | (static_cast<uint64_t>(err) & kErrMask);
    } while (!v_.compare_exchange_weak(old, next, std::memory_order_acq_rel));
    cursor.store(next, std::memory_order_release);
  }

  // The latest error `cursor` has not seen, marking it seen; 0 when there is none (or
  // when a concurrent caller with the same cursor reports it instead).
  int check(std::atomic<uint64_t>& cursor) noexcept {
    uint64_t cur = v_.load(std::memory_order_acquire);
    uint64_t seen = cursor.load(std::memory_order_acquire);
    if ((cur >> kErrBits) <= (seen >> kErrBits)) return 0;
    if (!cursor.compare_exchange_strong(seen, cur, std::memory_order_acq_rel)) return 0;
    return static_cast<int>(cur & kErrMask);
  }

 private:
  static constexpr unsigned kErrBits = 12;  // errno values fit (Linux's largest is 133)
  static constexpr uint64_t kErrMask = (1u << kErrBits) - 1;
  std::atomic<uint64_t> v_{0};  // (sequence << kErrBits) | errno of the latest error
};

}  // namespace fsysfs::fusefs
