#pragma once

// The boundary between the command (mount/) and the filesystem (fusefs/).

#include <functional>
#include <string>

#include "engine/options.h"
#include "fusefs/durability.h"

namespace fsysfs::fusefs {

struct Config {
  std::string backing;     // absolute, canonical path of the backing directory
  std::string mountpoint;  // absolute, canonical path of the mount point
  unsigned threads = 0;    // most FUSE worker threads; 0 = kDefaultThreads, libfuse's default
  bool clone_fd = false;
  // Background requests (readahead READs, writeback WRITEs) the kernel keeps in flight;
  // 0 keeps the kernel's default (12). Congestion starts at three quarters of it.
  unsigned max_background = 0;
  bool allow_other = false;
  bool default_permissions = false;
  bool writeback_cache = false;
  bool read_only = false;  // the kernel mount flags ro and noexec
  bool no_exec = false;
  bool keep_cache = true;      // keep cached pages across opens of unchanged files (page_cache.h)
  double attr_timeout = 1.0;   // seconds
  double entry_timeout = 1.0;  // seconds
  bool debug = false;          // libfuse request tracing (-d)
  // Inodes the kernel has forgotten that file handles of the mount can still open
  // (inode_table.h); 0 turns export support off: such handles are ESTALE.
  unsigned handle_cache = 65536;
  // Initial values; both can change on the live mount through the control file.
  Durability durability = Durability::kFsync;
  DirSync dirsync = DirSync::kAuto;
  // Every write and sync runs on the FUSE worker that received it: waking an engine thread
  // costs more than the hand-off saves (docs/architecture.md). While a worker waits for the
  // device, libfuse starts another to read requests, up to worker_threads(); at most
  // worker_threads() - 1 wait in an engine sync or chain at once (the engine's threads take
  // the rest), so those alone never hold every worker.
  engine::Options engine = [] {
    engine::Options o;
    o.inline_ops = engine::InlineOps::kAll;
    return o;
  }();

  static constexpr unsigned kDefaultThreads = 10;
  unsigned worker_threads() const noexcept { return threads ? threads : kDefaultThreads; }
};

// Mounts `config.backing` on `config.mountpoint` and serves requests until the mount is
// unmounted or SIGINT/SIGTERM/SIGHUP arrives. `on_ready` runs once, after the mount is
// live and the engine is up (the command uses it to let its parent process exit).
// Returns 0 after a clean unmount; otherwise logs why and returns non-zero, with nothing
// left mounted. Does not throw.
int serve(const Config& config, const std::function<void()>& on_ready);

}  // namespace fsysfs::fusefs
