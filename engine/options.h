#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace fsysfs::engine {

class NvmeRegistry;

enum class BackendKind { kAuto, kUring, kSync };

// Which engine ops run on the calling thread (Options::inline_ops).
enum class InlineOps : uint8_t {
  kNone,       // every op goes to the backend's threads
  kPageCache,  // plain writes and reads, which end in the page cache; syncs and write+sync
               // chains wait for the device on engine threads (a chain as one linked
               // submission on the ring)
  kAll,        // every op: a chain becomes pwrite then fdatasync/fsync on the caller
};

// Everything an Engine can be configured with. Defaults suit a FUSE daemon on a small
// machine: a 16 MiB buffer pool, 1024 fixed-file slots.
struct Options {
  // kAuto: io_uring, falling back to the syscall backend if the ring cannot be set up.
  // kUring: io_uring or fail. kSync: the syscall backend.
  BackendKind backend = BackendKind::kAuto;
  unsigned queue_depth = 256;
  bool sqpoll = false;
  unsigned sqpoll_idle_ms = 1000;
  unsigned fixed_files = 1024;  // 0 disables the registered file table
  unsigned buffer_count = 16;   // 0 disables registered buffers
  size_t buffer_size = 1 << 20;
  unsigned sync_threads = 4;  // workers of the syscall backend
  // io_uring: sync-only ops (Engine::sync) run as fdatasync/fsync on this many engine
  // threads instead of as IORING_OP_FSYNC, which the kernel always hands to an io-wq worker
  // and whose completion then goes back through the owner thread: two thread hops fewer
  // per fsync. Linked write+sync chains that do not run inline go to the ring. 0 keeps
  // syncs on the ring.
  unsigned ring_sync_threads = 4;
  // Which ops run with blocking syscalls on the thread that asks for them, completing
  // there before the call returns, as in a passthrough that calls pwrite and fdatasync
  // itself. Saves the hand-off to an engine thread (a wake-up of 20-25 us on an idle vCPU)
  // and holds the caller's thread for the duration of the syscall instead.
  InlineOps inline_ops = InlineOps::kNone;
  // At most this many ops that wait for the device (syncs, write+sync chains) run inline
  // at once; more go to the backend's threads meanwhile, so that not every caller (a FUSE
  // daemon's workers) can be waiting in an engine sync. Ops submitted on the engine's own
  // threads (from a completion) never run inline.
  unsigned max_inline_waits = UINT_MAX;
  // Send an NVMe FLUSH after every successful sync on a file whose device allows it.
  bool nvme_flush = true;
  // Where NVMe devices are looked up; nullptr builds one from /sys and /dev (tests inject
  // a registry over a fake sysfs tree and device seam).
  std::shared_ptr<NvmeRegistry> nvme;
};

}  // namespace fsysfs::engine
