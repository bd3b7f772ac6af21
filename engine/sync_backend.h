#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/backend.h"
#include "engine/op.h"
#include "engine/options.h"

namespace fsysfs::engine {

class Engine;

// The syscall backend: the same contract as io_uring with pwrite/pread/fdatasync/fsync on
// a pool of worker threads (a linked write+sync is the write, then the sync only if the
// whole write landed). Several workers, so a slow fsync does not hold up other files.
// Runs `op` with blocking syscalls on the calling thread; the result for Engine::complete.
int64_t execute_blocking(Op& op) noexcept;

class SyncBackend final : public Backend {
 public:
  SyncBackend(Engine& engine, const Options& options);
  ~SyncBackend() override { shutdown(); }
  void shutdown() noexcept override;

  void submit(Op* op) noexcept override;
  void release_slot(File&) noexcept override {}
  void describe(StatsSnapshot&) const override {}
  const char* name() const noexcept override { return "sync"; }

 private:
  void run() noexcept;

  Engine& engine_;
  std::mutex mu_;
  std::condition_variable cv_;
  OpQueue queue_;
  bool stop_ = false;     // guarded by mu_
  unsigned running_ = 0;  // workers not yet returned; guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace fsysfs::engine
