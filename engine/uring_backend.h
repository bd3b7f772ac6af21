#pragma once

#include <liburing.h>

#include <atomic>
#include <deque>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "engine/backend.h"
#include "engine/file_table.h"
#include "engine/op.h"
#include "engine/op_ring.h"
#include "engine/options.h"
#include "engine/ring_setup.h"
#include "engine/sync_backend.h"
#include "engine/unique_fd.h"

namespace fsysfs::engine {

class BufferPool;

// The io_uring backend. One owner thread creates, drives and destroys the ring; no other
// thread touches it. Submitters push ops on queue_ and wake the owner through an eventfd
// that the owner keeps a READ armed on, so the owner only ever waits in io_uring_enter.
// Each turn the owner takes every queued op, preps all their SQEs, submits once and reaps
// every CQE in a batch.
class UringBackend final : public Backend {
 public:
  // Throws std::runtime_error (with the reason) when the ring cannot be set up.
  UringBackend(Engine& engine, const Options& options, BufferPool* pool);
  ~UringBackend() override { shutdown(); }
  void shutdown() noexcept override;

  void submit(Op* op) noexcept override;
  void release_slot(File& f) noexcept override;
  void describe(StatsSnapshot& s) const override;
  const char* name() const noexcept override { return "io_uring"; }

 private:
  void run(std::promise<std::string>* ready) noexcept;
  std::string setup() noexcept;
  void loop() noexcept;
  void wake() noexcept;
  void arm_wake() noexcept;
  void reap() noexcept;
  void on_cqe(uint64_t user_data, int32_t res) noexcept;
  void fail_queued() noexcept;

  Engine& engine_;
  Options options_;
  BufferPool* pool_;
  std::thread owner_;
  // Runs sync-only ops (Options::ring_sync_threads); null when syncs go on the ring.
  std::unique_ptr<SyncBackend> sync_pool_;

  OpQueue queue_;
  UniqueFd wake_fd_;
  std::atomic<bool> owner_waiting_{false};
  std::atomic<bool> stopping_{false};

  // Owner thread only.
  io_uring ring_{};
  bool ring_ok_ = false;
  RingSetup setup_;
  std::optional<FileTable> files_;
  std::optional<OpRing> ops_;  // the ops taken from queue_, on ring_
  uint64_t wake_buf_ = 0;
  bool wake_armed_ = false;
  std::atomic<bool> stopped_{false};  // owner left its loop: submit() fails ops at once
};

}  // namespace fsysfs::engine
