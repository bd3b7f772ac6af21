#pragma once

// The Filesystem: what every FUSE op works on. It owns the inode table (with the backing
// root), the engine, and every open file and directory handle; fuse_req_userdata(req)
// returns it.
//
// Thread safety: every member function may be called from any FUSE worker thread
// concurrently, except start_engine() and shutdown(), which serve() calls while no worker
// runs.

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "engine/engine.h"
#include "engine/unique_fd.h"
#include "fusefs/durability.h"
#include "fusefs/faults.h"
#include "fusefs/fuse_stats.h"
#include "fusefs/handles.h"
#include "fusefs/inode_table.h"
#include "fusefs/mount_flags.h"
#include "fusefs/session.h"
#include "fusefs/space_return.h"

namespace spdlog {
class logger;
}
namespace fsysfs::engine {
class NvmeRegistry;
struct NvmeStatus;
}  // namespace fsysfs::engine

namespace fsysfs::fusefs {

class BlockingPool;
class CrashSim;
class UringTransport;

// "/proc/self/fd/N": the one way to reach an O_PATH inode where the kernel offers no *at
// form. The magic link ends at the inode itself, even when that inode is a symlink.
struct ProcPath {
  explicit ProcPath(int fd) noexcept { std::snprintf(buf, sizeof buf, "/proc/self/fd/%d", fd); }
  const char* c_str() const noexcept { return buf; }
  char buf[32];
};

class Filesystem {
 public:
  // Opens the backing root. Returns nullptr (and logs why) on failure.
  static std::unique_ptr<Filesystem> create(const Config& config) noexcept;
  Filesystem(const Config& config, std::unique_ptr<Inode> root, BackingHandles handles = {});
  ~Filesystem();
  Filesystem(const Filesystem&) = delete;
  Filesystem& operator=(const Filesystem&) = delete;

  const Config& config() const noexcept { return config_; }
  spdlog::logger& log() const noexcept { return *log_; }
  InodeTable& inodes() noexcept { return inodes_; }
  Inode& inode(fuse_ino_t ino) noexcept { return inodes_.get(ino); }
  engine::Engine& engine() noexcept { return *engine_; }

  // Whether the kernel caches writes (decided in init; the open flags depend on it).
  bool writeback() const noexcept { return writeback_.load(std::memory_order_relaxed); }
  void set_writeback(bool on) noexcept { writeback_.store(on, std::memory_order_relaxed); }
  // Whether the kernel leaves clearing suid/sgid on write and truncate to us (device_io.h).
  bool kills_privs() const noexcept { return kills_privs_.load(std::memory_order_relaxed); }
  void set_kills_privs(bool on) noexcept { kills_privs_.store(on, std::memory_order_relaxed); }
  // Whether the kernel enforces POSIX ACLs and leaves the umask to us (decided in init): the
  // ops that create names then run with the caller's umask (creds.h).
  bool posix_acl() const noexcept { return posix_acl_.load(std::memory_order_relaxed); }
  void set_posix_acl(bool on) noexcept { posix_acl_.store(on, std::memory_order_relaxed); }

  // The live durability settings; an operation reads them once, when it starts.
  Durability durability() const noexcept { return durability_.load(std::memory_order_relaxed); }
  DirSync dirsync_setting() const noexcept { return dirsync_.load(std::memory_order_relaxed); }
  bool dirsync() const noexcept { return dirsync_effective(durability(), dirsync_setting()); }
  // -EINVAL for strict on a mount whose kernel caches writes (they would never reach us
  // in time to be made durable). Logged.
  int set_durability(Durability d) noexcept;
  void set_dirsync(DirSync d) noexcept;

  // The crash simulation's undo journal, on a crashsim mount; null otherwise.
  CrashSim* crashsim() const noexcept { return crashsim_.get(); }

  FuseStats& fuse_stats() noexcept { return stats_; }
  Faults& faults() noexcept { return faults_; }
  // The NVMe probe results for the devices seen so far (the backing root's first).
  std::vector<engine::NvmeStatus> nvme_status() const;
  // Who may change settings and inject faults besides root: the user who mounted.
  uid_t owner() const noexcept { return owner_; }

  // The kernel's flags on the mount, as last read from /proc/self/mountinfo (at first the
  // ones asked for). Opens follow their access time rules (open_backing); the kernel
  // enforces the rest itself.
  MountFlags mount_flags() const noexcept { return mount_flags_.load(std::memory_order_relaxed); }
  // Finds the mount at config().mountpoint in /proc/self/mountinfo and takes its flags.
  // Call once, right after mounting and before requests are served. -errno (logged) when
  // the mount is not there; its flags then stay the ones asked for.
  int watch_mount() noexcept;
  // The mount's superblock device, "major:minor" ("" until watch_mount found it).
  const std::string& device() const noexcept { return device_; }
  // Takes the mount's flags again when the mount table changed since the last look (one
  // poll(2) of /proc/self/mountinfo when it did not). Called before every open, so that the
  // first open after a remount already follows its flags.
  void follow_mount() noexcept;
  // Takes the mount's flags again now, and returns them.
  MountFlags refresh_mount() noexcept;
  // Opens `inode` for I/O with `flags` (O_DIRECTORY for a directory) so that reads through
  // the fd move atime as the mount's flags say, not as BACKING's own mount would: with
  // O_NOATIME where reads must leave it alone (where the kernel allows it: an owner, or
  // CAP_FOWNER), and for strictatime through a private copy of BACKING's mount that has the
  // strictatime rule (root only). Returns the fd or -errno.
  int open_backing(const Inode& inode, int flags) noexcept;
  // What to add to the flags of an open(2) that creates a file: O_NOATIME where reads
  // must leave atime alone.
  int create_flags() const noexcept;

  // Applies a fault rule for `op` on `inode` (or its entry `name`), if one fires: sleeps
  // its delay, counts it, and returns its errno (0: carry on). A crash rule cuts the mount
  // off (crash_now); once cut off, every request counted here is refused with EIO.
  int inject(FaultOp op, const Inode& inode, const char* name = nullptr) noexcept;
  // Cuts the mount off as `fsysfs crash` does, leaving `plan` for the rollback.
  // `cause` heads the crash report.
  void crash_now(const CrashPlan& plan, const std::string& cause) noexcept;
  // The requests crash rules count (those inject sees), on a crashsim mount.
  uint64_t crash_ops() const noexcept { return crash_ops_.load(std::memory_order_relaxed); }
  // "/dir/file" inside the mount, for fault rules and logs.
  std::string path_of(const Inode& inode, const char* name = nullptr) const;

  // dirsync: fsyncs `a`, then `b` (if not null and not `a`), through the engine when
  // dirsync is on, then calls `done` with 0 or the first -errno; without dirsync, calls it
  // at once. `done` runs on the worker when the syncs run inline (inline_io=all), else on
  // an engine thread while the worker goes back to reading requests. The kernel keeps both
  // directories while the request that changed them is unanswered.
  void sync_parents(Inode& a, Inode* b, std::function<void(int)> done) noexcept;
  // An application fsync/fdatasync/fsyncdir of `file` (open on `inode`; `h` is its file
  // handle, or null for a directory), answered from the engine's completion, or at once in
  // durability=none. Reports an error another handle of the inode hit, as the kernel does.
  // `h` and `file` must outlive the completion (the kernel does not release a handle while
  // a request on it is outstanding).
  void sync_and_reply(fuse_req_t req, Inode& inode, engine::File& file, FileHandle* h,
                      int datasync) noexcept;

  // Creates the engine. Returns 0 or -errno (logged).
  int start_engine() noexcept;
  // Destroys every handle the kernel did not release (each waits for its in-flight
  // engine ops, whose completions reply), then the engine.
  void shutdown() noexcept;

  // Looks `name` up in `parent` and fills `e`, taking one lookup reference. -errno on
  // failure. Never follows a symlink and never leaves the backing tree.
  int lookup(Inode& parent, const char* name, fuse_entry_param* e) noexcept;
  // The kernel's LOOKUP of "." in `ino`, which it sends only to decode a file handle of an
  // inode it no longer caches, so `ino` may be a node it has forgotten, or one this daemon
  // never gave out: fills `e` for the same node id, reopened from its backing handle if
  // need be (InodeTable::find_by_id), taking one lookup reference; -ESTALE when the node
  // or its file is gone.
  int lookup_node(fuse_ino_t ino, fuse_entry_param* e) noexcept;
  // Fills `e` for an O_PATH fd already open on a new name, taking one lookup reference.
  int entry_for(UniqueFd path_fd, fuse_entry_param* e) noexcept;

  // Adopts `fd` (opened on `inode` for a FUSE open with `open_flags`) into the engine and
  // registers the handle. nullptr on allocation failure.
  FileHandle* add_file(UniqueFd fd, Inode& inode, int open_flags) noexcept;
  void release_file(FileHandle* h) noexcept;
  // The io_uring transport while it is negotiated or runs (transport/uring_transport.h);
  // null on /dev/fuse. serve() owns it and sets it before the session loop starts.
  UringTransport* uring_transport() const noexcept {
    return transport_.load(std::memory_order_acquire);
  }
  void set_uring_transport(UringTransport* t) noexcept {
    transport_.store(t, std::memory_order_release);
  }
  // From the INIT reply that accepted the transport: starts it, or ends the mount (the
  // kernel would hold every request for a ring that never comes).
  void start_uring_transport() noexcept;
  // The transport cannot run: carries on over /dev/fuse, or ends the mount when the
  // configuration asked for io_uring only.
  void transport_fallback(std::string why) noexcept;
  // "io_uring" or "/dev/fuse", and why not io_uring when that was wanted.
  std::string transport_status() const;
  // The transport failed after the mount was made; serve() then exits non-zero.
  bool transport_failed() const noexcept { return transport_failed_.load(); }

  // Runs `work` where it may wait for the kernel to finish other FUSE requests: on the
  // calling thread, or on the blocking pool when the caller is an io_uring queue's owner
  // (blocking_pool.h). False when it could not be queued.
  bool run_blocking(std::function<void()> work) noexcept;

  // Space that removed files the daemon still holds will give back (space_return.h).
  SpaceReturn& space() noexcept { return space_; }
  // Runs `attempt` (a backing call: 0 or -errno), then `answer` with its result. When the
  // backing fs was full (ENOSPC, EDQUOT) and removed files may give space back, attempts
  // again as they do, for a while, where waiting is allowed: on this thread, or from an
  // io_uring queue's owner on the blocking pool, where `answer` then runs too. What both
  // use must stay valid until `answer` ran (a request's memory does until it is answered).
  template <class Attempt, class Answer>
  void with_space(const Attempt& attempt, const Answer& answer) noexcept {
    const uint64_t sample = space_.sample();
    const int rc = attempt();
    if (!SpaceReturn::full(rc) || !space_.may_return(sample)) {
      answer(rc);
      return;
    }
    try {
      retry_full(rc, sample, std::function<int()>(attempt), std::function<void(int)>(answer));
    } catch (...) {
      answer(rc);
    }
  }
  // Where waiting is allowed, after `attempt` returned `rc` (0 or -errno), started after
  // space().sample() gave `sample`: attempts again while the backing fs is full and removed
  // files give space back. Returns the last result.
  int attempt_while_full(int rc, uint64_t sample, const std::function<int()>& attempt) noexcept;

  // The session notifications go to; set once the session exists.
  void set_session(fuse_session* se) noexcept { session_.store(se, std::memory_order_release); }
  // Drops the kernel's cached pages of `inode` in [off, off + len) (len 0: to the end) and
  // its attributes. Blocks until pages under I/O are done, so never call it on an engine
  // thread: a dirty page is written back first, through a FUSE worker and the engine.
  // Returns 0 or -errno.
  int invalidate_pages(const Inode& inode, off_t off, off_t len) noexcept;
  // Drops the kernel's cached attributes (and ACLs) of `inode`, not its pages; safe while a
  // request on the inode is outstanding. Returns 0 or -errno.
  int invalidate_attrs(const Inode& inode) noexcept;
  DirHandle* add_dir(std::unique_ptr<DirHandle> h) noexcept;
  void release_dir(DirHandle* h) noexcept;

 private:
  // Under mount_mu_: switches to `flags`: the access time rule of the strictatime view
  // (which is made on first need) and O_NOATIME on every open backing fd.
  void apply_mount_flags(const MountFlags& flags);
  // Opens `inode` through the strictatime view; -errno when it cannot.
  int open_in_view(const Inode& inode, int flags) noexcept;
  void fill_entry(const Inode& inode, fuse_entry_param* e) const noexcept;
  void retry_full(int rc, uint64_t sample, const std::function<int()>& attempt,
                  const std::function<void(int)>& answer) noexcept;
  // What the daemon holds that has no name left (SpaceReturn::Scan).
  SpaceReturn::Held removed_held();
  // The engine file dirsync uses for `dir`, opened at its first use; -errno if that fails.
  int dir_sync_file(Inode& dir, engine::File** file) noexcept;
  void sync_dirs(Inode& first, Inode* second, std::function<void(int)> done) noexcept;

  const Config config_;
  std::shared_ptr<spdlog::logger> log_;
  SpaceReturn space_;  // before inodes_, which lets go to it
  InodeTable inodes_;
  std::atomic<fuse_session*> session_{nullptr};
  std::atomic<UringTransport*> transport_{nullptr};
  std::unique_ptr<BlockingPool> blocking_;  // created before the transport starts
  std::atomic<bool> transport_failed_{false};
  std::atomic<uint64_t> crash_ops_{0};
  std::atomic<bool> crashed_{false};
  mutable std::mutex transport_mu_;
  std::string transport_why_;  // guarded by transport_mu_: why /dev/fuse carries requests
  std::atomic<bool> writeback_{false};
  std::atomic<bool> kills_privs_{false};
  std::atomic<bool> posix_acl_{false};
  std::atomic<Durability> durability_;
  std::atomic<DirSync> dirsync_;
  const uid_t owner_;
  FuseStats stats_;
  Faults faults_;
  std::unique_ptr<CrashSim> crashsim_;
  std::shared_ptr<engine::NvmeRegistry> nvme_;  // set by start_engine when nvme_flush is on
  std::atomic<MountFlags> mount_flags_;
  // Lock order: mount_mu_ before handles_mu_. Guards the members below that are not atomic;
  // mountinfo_ is set once, by watch_mount, before requests are served.
  std::mutex mount_mu_;
  int mount_id_ = 0;
  std::string device_;   // the mount's "major:minor", set by watch_mount
  int connection_ = -1;  // the FUSE connection's number (the mount's minor), for crash_now
  UniqueFd mountinfo_;   // /proc/self/mountinfo, polled for changes of the mount table
  // The strictatime view: a private, detached copy of BACKING's mount (open_tree) that
  // carries the FUSE mount's access time rule, and a directory on it for
  // open_by_handle_at. Made at the first need, kept until the Filesystem goes.
  UniqueFd view_tree_;
  UniqueFd view_dir_;
  std::atomic<bool> view_ready_{false};  // view_dir_ and view_dev_ are set (release)
  dev_t view_dev_ = 0;
  bool view_failed_ = false;  // logged once
  // Lock order: handles_mu_ is a leaf; a handle is destroyed after it is dropped.
  std::mutex handles_mu_;
  std::unordered_set<FileHandle*> files_;  // guarded by handles_mu_
  std::unordered_set<DirHandle*> dirs_;    // guarded by handles_mu_
  // Declared last: created after the mount, destroyed (in shutdown) before the handles'
  // engine::Files would outlive it.
  std::unique_ptr<engine::Engine> engine_;
};

static_assert(std::atomic<MountFlags>::is_always_lock_free);

inline Filesystem& fs_of(fuse_req_t req) noexcept {
  return *static_cast<Filesystem*>(fuse_req_userdata(req));
}
inline FileHandle& file_of(const fuse_file_info* fi) noexcept {
  return *reinterpret_cast<FileHandle*>(fi->fh);
}
inline DirHandle& dir_of(const fuse_file_info* fi) noexcept {
  return *reinterpret_cast<DirHandle*>(fi->fh);
}

// Runs `body` (which returns 0 or -errno) and turns std::bad_alloc into -ENOMEM: the
// boundary rule for every op.
template <class F>
int guarded(F&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  } catch (...) {
    return -EIO;
  }
}

// Every error reply goes through here, so stats count errors by errno.
inline void reply_err(fuse_req_t req, int err) noexcept {
  if (err != 0) fs_of(req).fuse_stats().count_error(err);
  fuse_reply_err(req, err);
}

}  // namespace fsysfs::fusefs
