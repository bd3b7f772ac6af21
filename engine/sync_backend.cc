#include "engine/sync_backend.h"

#include <unistd.h>

#include <cerrno>

#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "engine/sys.h"

namespace fsysfs::engine {

SyncBackend::SyncBackend(Engine& engine, const Options& options) : engine_(engine) {
  unsigned n = options.sync_threads ? options.sync_threads : 1;
  running_ = n;
  for (unsigned i = 0; i < n; ++i) workers_.emplace_back([this] { run(); });
}

void SyncBackend::shutdown() noexcept {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
}

void SyncBackend::submit(Op* op) noexcept {
  {
    std::lock_guard lock(mu_);
    // A worker returns only with stop_ set and the queue empty, under mu_: while one still
    // runs it will take this op.
    if (running_ > 0) {
      queue_.push(op);
      op = nullptr;
    }
  }
  if (op) {
    // The workers are gone (a submit racing engine destruction): fail it, never hang.
    engine_.complete(op, -ESHUTDOWN);
    return;
  }
  cv_.notify_one();
}

void SyncBackend::run() noexcept {
  t_engine_thread = true;
  for (;;) {
    Op* op = nullptr;
    {
      std::unique_lock lock(mu_);
      // Take one op at a time so the other workers can run the rest.
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      op = queue_.take_one();
      if (!op) {  // stopping and drained
        --running_;
        return;
      }
    }
    engine_.complete(op, execute_blocking(*op));
  }
}

int64_t execute_blocking(Op& op) noexcept {
  int fd = op.file->fd();
  int (*do_sync)(int) noexcept = op.sync == SyncKind::kData ? sys::fdatasync : sys::fsync;
  switch (op.type) {
    case OpType::kRead:
      return sys::pread(fd, op.data, op.len, op.off);
    case OpType::kSync:
      return do_sync(fd);
    case OpType::kWrite: {
      // Like the ring: a write that fails part-way reports what landed, as a short write;
      // a chain first syncs that part (as an O_DSYNC write does), and fails if it cannot.
      while (op.done < op.len) {
        ssize_t n =
            ::pwrite(fd, op.data + op.done, op.len - op.done, static_cast<off_t>(op.off + op.done));
        // Streams (pipes, sockets) have no offset; io_uring ignores it there too.
        if (n < 0 && errno == ESPIPE) n = ::write(fd, op.data + op.done, op.len - op.done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          if (op.done == 0) return n < 0 ? -errno : -EIO;
          break;
        }
        op.done += static_cast<size_t>(n);
      }
      if (op.sync != SyncKind::kNone) {
        int r = do_sync(fd);
        if (r < 0) return r;
      }
      return static_cast<int64_t>(op.done);
    }
    case OpType::kReleaseSlot:
      break;
  }
  return -EINVAL;
}

}  // namespace fsysfs::engine
