#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace fsysfs::engine {

struct Op;
class Engine;

// Runs NVMe FLUSH ioctls off the ring owner thread (they block). Ops arrive here after
// their sync completed; one FLUSH per device covers every op queued before it started
// (each of their syncs had already completed), then their completions run.
class NvmeFlusher {
 public:
  explicit NvmeFlusher(Engine& engine);
  ~NvmeFlusher();  // flushes and completes everything queued, then joins
  NvmeFlusher(const NvmeFlusher&) = delete;
  NvmeFlusher& operator=(const NvmeFlusher&) = delete;

  void push(Op* op, int64_t res) noexcept;

 private:
  void run() noexcept;

  Engine& engine_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<Op*, int64_t>> queue_;  // guarded by mu_
  bool stop_ = false;                          // guarded by mu_
  std::thread thread_;
};

}  // namespace fsysfs::engine
