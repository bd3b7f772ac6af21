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
  unsigned threads = 0;    // FUSE worker threads; 0 = libfuse's default
  bool clone_fd = false;
  bool allow_other = false;
  bool default_permissions = false;
  bool writeback_cache = false;
  bool read_only = false;  // the kernel mount flags ro and noexec
  bool no_exec = false;
  bool keep_cache = true;      // keep cached pages across opens of unchanged files (page_cache.h)
  double attr_timeout = 1.0;   // seconds
  double entry_timeout = 1.0;  // seconds
  bool debug = false;          // libfuse request tracing (-d)
  // Initial values; both can change on the live mount through the control file.
  Durability durability = Durability::kFsync;
  DirSync dirsync = DirSync::kAuto;
  // Plain writes run on the FUSE worker that received them (the page-cache copy costs less
  // than waking an engine thread); syncs and write+sync chains, which wait for the device,
  // go to the engine's threads.
  engine::Options engine = [] {
    engine::Options o;
    o.inline_ops = engine::InlineOps::kPageCache;
    return o;
  }();
};

// Mounts `config.backing` on `config.mountpoint` and serves requests until the mount is
// unmounted or SIGINT/SIGTERM/SIGHUP arrives. `on_ready` runs once, after the mount is
// live and the engine is up (the command uses it to let its parent process exit).
// Returns 0 after a clean unmount; otherwise logs why and returns non-zero, with nothing
// left mounted. Does not throw.
int serve(const Config& config, const std::function<void()>& on_ready);

}  // namespace fsysfs::fusefs
