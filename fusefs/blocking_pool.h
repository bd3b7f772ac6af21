#pragma once

// Threads for the work an io_uring queue's owner thread must not do itself because it may
// wait long: for the kernel to finish other FUSE requests (dropping cached pages after a
// direct write waits for the reads filling them, which may be queued on the same ring,
// behind the owner that waits), or in a fault rule's delay. A thread is started when work
// finds none idle, up to a limit, as libfuse does with its workers.
//
// Thread safety: run() may be called from any thread; the destructor runs what is queued,
// then joins.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fsysfs::fusefs {

class BlockingPool {
 public:
  explicit BlockingPool(unsigned max_threads) noexcept : max_threads_(max_threads) {}
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // Queues `work`; false when it could not be queued (out of memory).
  bool run(std::function<void()> work) noexcept;

  // Threads waiting for work.
  unsigned idle_threads() noexcept;

 private:
  void loop() noexcept;

  const unsigned max_threads_;
  std::mutex mu_;  // leaf lock
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopping_ = false;                    // guarded by mu_
  unsigned idle_ = 0;                        // guarded by mu_
  std::vector<std::thread> threads_;         // guarded by mu_
};

}  // namespace fsysfs::fusefs
