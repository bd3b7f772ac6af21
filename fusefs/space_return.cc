#include "fusefs/space_return.h"

#include <algorithm>
#include <cerrno>
#include <thread>

namespace fsysfs::fusefs {

bool SpaceReturn::full(int rc) noexcept { return rc == -ENOSPC || rc == -EDQUOT; }

void SpaceReturn::let_go() noexcept {
  // Ordered with wait()'s count of waiters and its reading of drops_: either the waiter
  // sees this drop, or this sees the waiter and wakes it.
  last_let_go_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  drops_.fetch_add(1, std::memory_order_seq_cst);
  if (waiters_.load(std::memory_order_seq_cst) == 0) return;
  std::lock_guard lock(mu_);
  dropped_.notify_all();
}

void SpaceReturn::closing(dev_t dev, ino_t ino) noexcept {
  if (!any_settled_.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(mu_);
  const std::pair<dev_t, ino_t> key{dev, ino};
  auto it = std::lower_bound(settled_files_.begin(), settled_files_.end(), key);
  if (it == settled_files_.end() || *it != key) return;
  settled_files_.erase(it);
  any_settled_.store(!settled_files_.empty(), std::memory_order_relaxed);
  changes_.fetch_add(1, std::memory_order_seq_cst);
}

bool SpaceReturn::may_return(uint64_t sample) const noexcept {
  return drops_.load(std::memory_order_relaxed) != sample ||
         changes_.load(std::memory_order_relaxed) !=
             settled_changes_.load(std::memory_order_relaxed) ||
         sample != settled_drops_.load(std::memory_order_relaxed);
}

bool SpaceReturn::wait(uint64_t sample, Clock::time_point deadline) noexcept {
  const uint64_t changes = changes_.load(std::memory_order_seq_cst);
  if (drops_.load(std::memory_order_seq_cst) != sample) return true;
  if (changes == settled_changes_.load(std::memory_order_relaxed) &&
      sample == settled_drops_.load(std::memory_order_relaxed)) {
    return false;
  }
  for (unsigned n = waiters_.load(std::memory_order_seq_cst);;) {
    if (n >= max_waiters_) return false;
    if (waiters_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst)) break;
  }
  Held held;
  try {
    held = scan_();
  } catch (...) {
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
    return false;
  }
  // Read after the scan: a reference the scan missed because it was being dropped is
  // counted here, or was let go already (drops_).
  const bool dropping = dropping_.load(std::memory_order_seq_cst) > 0;
  std::unique_lock lock(mu_);
  auto let_go_since = [&] { return drops_.load(std::memory_order_seq_cst) != sample; };
  auto settle = [&] {
    settled_files_.swap(held.files);
    any_settled_.store(!settled_files_.empty(), std::memory_order_relaxed);
    settled_changes_.store(changes, std::memory_order_relaxed);
    settled_drops_.store(sample, std::memory_order_relaxed);
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
    return false;
  };
  const bool fresh =
      dropping || held.ring_slots > 0 ||
      std::any_of(held.files.begin(), held.files.end(), [&](const auto& key) {
        return !std::binary_search(settled_files_.begin(), settled_files_.end(), key);
      });
  if (!fresh && !let_go_since()) {
    lock.unlock();
    if (wait_for_freeing(deadline)) {
      waiters_.fetch_sub(1, std::memory_order_seq_cst);
      return true;
    }
    lock.lock();
    return settle();
  }
  const bool came = dropped_.wait_until(lock, deadline, let_go_since);
  if (!came) return settle();
  waiters_.fetch_sub(1, std::memory_order_seq_cst);
  return true;
}

bool SpaceReturn::wait_for_freeing(Clock::time_point deadline) noexcept {
  const Clock::time_point let_go{Clock::duration(last_let_go_.load(std::memory_order_relaxed))};
  const Clock::time_point end = std::min(let_go + kFreeing, deadline);
  if (Clock::now() >= end) return false;
  const uint64_t before = free_space_();
  while (Clock::now() < end) {
    std::this_thread::sleep_for(kFreeingPoll);
    if (free_space_() > before) return true;
  }
  return true;
}

}  // namespace fsysfs::fusefs
