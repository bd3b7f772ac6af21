#pragma once

// Whether an inode's data, as written through this mount, is known to be durable: the
// bookkeeping behind fsync elision and durability=close.
//
// Every change to the data that was not itself made durable (a plain write, a failed
// write, a truncate, fallocate, copy_file_range into the file) bumps a counter after it
// happened and before it is answered. A sync samples the counter before it is submitted;
// when it succeeds, everything counted up to the sample is durable, because those changes
// completed before the sync ran. A linked write+sync chain is durable on its own and
// samples the same way. The data is clean when the newest successful sample equals the
// counter. An inode starts unknown (never clean) until a sync through this mount succeeds.
//
// Thread safety: lock-free; any thread.

#include <atomic>
#include <cstdint>

namespace fsysfs::fusefs {

class DataState {
 public:
  // Before submitting a sync or a write+sync chain.
  uint64_t sample() const noexcept { return changes_.load(std::memory_order_seq_cst); }
  // After a change that is not durable, before it is answered.
  void changed() noexcept { changes_.fetch_add(1, std::memory_order_seq_cst); }
  // After a sync (or chain) that sampled `sampled` succeeded.
  void durable(uint64_t sampled) noexcept {
    uint64_t mark = sampled + 1;
    uint64_t cur = durable_.load(std::memory_order_seq_cst);
    while (cur < mark && !durable_.compare_exchange_weak(cur, mark, std::memory_order_seq_cst)) {
    }
  }
  bool clean() const noexcept {
    return durable_.load(std::memory_order_seq_cst) == changes_.load(std::memory_order_seq_cst) + 1;
  }

 private:
  std::atomic<uint64_t> changes_{0};
  std::atomic<uint64_t> durable_{0};  // newest successful sample + 1; 0: none yet
};

}  // namespace fsysfs::fusefs
