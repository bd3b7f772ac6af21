#include "fusefs/blocking_pool.h"

#include <utility>

namespace fsysfs::fusefs {

BlockingPool::~BlockingPool() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  wake_.notify_all();
  for (auto& t : threads) t.join();
}

bool BlockingPool::run(std::function<void()> work) noexcept {
  try {
    std::lock_guard lock(mu_);
    // An idle thread takes one piece of work when it wakes; work already queued has claimed
    // those not yet woken. Without this count, work queued right behind a long wait would
    // sit behind it.
    if (queue_.size() >= idle_ && threads_.size() < max_threads_) {
      threads_.emplace_back([this] { loop(); });
    } else if (threads_.empty()) {
      return false;
    }
    queue_.push_back(std::move(work));
  } catch (...) {
    return false;
  }
  wake_.notify_one();
  return true;
}

void BlockingPool::loop() noexcept {
  for (;;) {
    std::function<void()> work;
    {
      std::unique_lock lock(mu_);
      ++idle_;
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_;
      if (queue_.empty()) return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

unsigned BlockingPool::idle_threads() noexcept {
  std::lock_guard lock(mu_);
  return idle_;
}

}  // namespace fsysfs::fusefs
