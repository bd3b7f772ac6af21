#pragma once

// Pieces shared by the engine's translation units; not part of the public API.

#include <atomic>
#include <cstdint>
#include <utility>

#include "engine/engine.h"
#include "engine/op.h"

namespace fsysfs::engine {

// Set on the engine's own threads (ring owner, sync threads, NVMe flusher). An op submitted
// there, from a completion, never runs inline: it would hold up every op that waits on
// that thread.
inline thread_local bool t_engine_thread = false;

// Set while the thread is in one of the Engine's blocking calls.
inline thread_local bool t_blocking_call = false;
class BlockingCall {
 public:
  BlockingCall() noexcept : was_(std::exchange(t_blocking_call, true)) {}
  ~BlockingCall() { t_blocking_call = was_; }
  BlockingCall(const BlockingCall&) = delete;
  BlockingCall& operator=(const BlockingCall&) = delete;

 private:
  bool was_;
};

// Lets a thread block until a Completion has run.
class Waiter {
 public:
  Completion callback() noexcept {
    return [this](int64_t res) {
      res_ = res;
      done_.store(true, std::memory_order_release);
      done_.notify_one();
    };
  }
  int64_t wait() noexcept {
    done_.wait(false, std::memory_order_acquire);
    return res_;
  }

 private:
  std::atomic<bool> done_{false};
  int64_t res_ = 0;
};

}  // namespace fsysfs::engine
