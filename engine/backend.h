#pragma once

// What the Engine needs from a backend (io_uring, or syscalls on worker threads).

#include "engine/stats.h"

namespace fsysfs::engine {

struct Op;
class File;

class Backend {
 public:
  virtual ~Backend() = default;
  // Completes every queued op, then stops the backend's threads. Idempotent. Afterwards
  // release_slot() returns at once (the ring, and with it the file table, is gone).
  virtual void shutdown() noexcept = 0;
  // Queues an op; its completion runs later on an engine thread. Any thread.
  virtual void submit(Op* op) noexcept = 0;
  // Returns f's fixed-file slot, if any. Blocks; f has no op in flight.
  virtual void release_slot(File& f) noexcept = 0;
  virtual void describe(StatsSnapshot& s) const = 0;
  virtual const char* name() const noexcept = 0;
};

}  // namespace fsysfs::engine
