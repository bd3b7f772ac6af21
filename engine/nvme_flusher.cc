#include "engine/nvme_flusher.h"

#include <cerrno>
#include <map>
#include <vector>

#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "engine/nvme.h"
#include "engine/op.h"

namespace fsysfs::engine {

NvmeFlusher::NvmeFlusher(Engine& engine) : engine_(engine), thread_([this] { run(); }) {}

NvmeFlusher::~NvmeFlusher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void NvmeFlusher::push(Op* op, int64_t res) noexcept {
  {
    std::lock_guard lock(mu_);
    queue_.emplace_back(op, res);
  }
  cv_.notify_one();
}

void NvmeFlusher::run() noexcept {
  t_engine_thread = true;
  for (;;) {
    std::deque<std::pair<Op*, int64_t>> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      batch.swap(queue_);
    }
    // One FLUSH per device covers every op in the batch: each one's sync completed before
    // it was queued, so its data is in the device cache the FLUSH empties.
    std::map<NvmeDevice*, int> results;
    for (auto& [op, res] : batch) {
      auto [it, fresh] = results.try_emplace(op->nvme.get(), 0);
      if (!fresh) continue;
      uint64_t t0 = now_ns();
      it->second = op->nvme->flush();
      engine_.stats_.record(OpKind::kNvmeFlush, now_ns() - t0, it->second, 0);
      if (it->second < 0) engine_.stats_.nvme_flush_errors.fetch_add(1, std::memory_order_relaxed);
    }
    for (auto& [op, res] : batch) {
      // An I/O error from the device means the data may not be durable: fail the op. Any
      // other refusal (privilege, unsupported) leaves the completed fsync's guarantee.
      int flush = results[op->nvme.get()];
      engine_.run_completion(op, flush == -EIO ? -EIO : res);
    }
  }
}

}  // namespace fsysfs::engine
