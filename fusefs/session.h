#pragma once

// The boundary between the command (mount/) and the filesystem (fusefs/).

#include <functional>
#include <string>

#include "engine/options.h"
#include "fusefs/dirty_limit.h"
#include "fusefs/durability.h"
#include "fusefs/mount_flags.h"

namespace fsysfs::fusefs {

// How FUSE requests reach the daemon: FUSE over io_uring where the kernel offers it
// (kAuto), only that (kUring: the mount fails without it), or /dev/fuse (kDev).
enum class Transport : uint8_t { kAuto, kUring, kDev };
const char* transport_name(Transport t) noexcept;

// What the kernel may cache, in virtiofsd's terms: kAuto trusts its caches for a second,
// kAlways for a day (BACKING changes only through this mount), kNever not at all (others
// change BACKING). mount/options.cc turns it into the timeouts and keep_cache below.
enum class CacheMode : uint8_t { kAuto, kAlways, kNever };

// The largest WRITE the kernel sends (INIT's max_write); a ring entry's payload holds one.
inline constexpr unsigned kMaxWrite = 1u << 20;

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
  DirtyLimit dirty_limit;  // the mount's cap on dirty page cache (dirty_limit.h)
  // The kernel mount flags asked for. dev and suid are dropped unless root mounts (and
  // BACKING's own mount has them); strictatime and nodiratime need root. After the mount
  // the daemon follows the flags the kernel shows, which a remount may change.
  MountFlags mount_flags;
  CacheMode cache = CacheMode::kAuto;
  bool keep_cache = true;      // keep cached pages across opens of unchanged files (page_cache.h)
  double attr_timeout = 1.0;   // seconds
  double entry_timeout = 1.0;  // seconds
  // How long the kernel may remember that a name does not exist (a LOOKUP answered with
  // node id 0); 0 answers ENOENT, which it does not remember.
  double negative_timeout = 1.0;  // seconds
  bool debug = false;             // libfuse request tracing (-d)
  Transport transport = Transport::kAuto;
  unsigned uring_depth = 16;         // entries per io_uring queue (one queue per CPU)
  bool uring_idle_priority = false;  // queue owners run at SCHED_IDLE (ring_queue.h)
  // The -o options as given at mount, comma separated: the control file shows them, and a
  // remount compares the options it is given against them.
  std::string options;
  // Inodes the kernel has forgotten that file handles of the mount can still open
  // (inode_table.h); 0 turns export support off: such handles are ESTALE.
  unsigned handle_cache = 65536;
  // Crash simulation: record how to undo what is not durable (crashsim.h).
  bool crashsim = false;
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
