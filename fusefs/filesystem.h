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
#include "fusefs/session.h"

namespace spdlog {
class logger;
}
namespace fsysfs::engine {
class NvmeRegistry;
struct NvmeStatus;
}  // namespace fsysfs::engine

namespace fsysfs::fusefs {

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

  // The live durability settings; an operation reads them once, when it starts.
  Durability durability() const noexcept { return durability_.load(std::memory_order_relaxed); }
  DirSync dirsync_setting() const noexcept { return dirsync_.load(std::memory_order_relaxed); }
  bool dirsync() const noexcept { return dirsync_effective(durability(), dirsync_setting()); }
  // -EINVAL for strict on a mount whose kernel caches writes (they would never reach us
  // in time to be made durable). Logged.
  int set_durability(Durability d) noexcept;
  void set_dirsync(DirSync d) noexcept;

  FuseStats& fuse_stats() noexcept { return stats_; }
  Faults& faults() noexcept { return faults_; }
  // The NVMe probe results for the devices seen so far (the backing root's first).
  std::vector<engine::NvmeStatus> nvme_status() const;
  // Who may change settings and inject faults besides root: the user who mounted.
  uid_t owner() const noexcept { return owner_; }

  // Applies a fault rule for `op` on `inode` (or its entry `name`), if one fires: sleeps
  // its delay, counts it, and returns its errno (0: carry on).
  int inject(FaultOp op, const Inode& inode, const char* name = nullptr) noexcept;
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
  // The session notifications go to; set once the session exists.
  void set_session(fuse_session* se) noexcept { session_.store(se, std::memory_order_release); }
  // Drops the kernel's cached pages of `inode` in [off, off + len) (len 0: to the end) and
  // its attributes. Blocks until pages under I/O are done, so never call it on an engine
  // thread: a dirty page is written back first, through a FUSE worker and the engine.
  // Returns 0 or -errno.
  int invalidate_pages(const Inode& inode, off_t off, off_t len) noexcept;
  DirHandle* add_dir(std::unique_ptr<DirHandle> h) noexcept;
  void release_dir(DirHandle* h) noexcept;

 private:
  void fill_entry(const Inode& inode, fuse_entry_param* e) const noexcept;
  // The engine file dirsync uses for `dir`, opened at its first use; -errno if that fails.
  int dir_sync_file(Inode& dir, engine::File** file) noexcept;
  void sync_dirs(Inode& first, Inode* second, std::function<void(int)> done) noexcept;

  const Config config_;
  std::shared_ptr<spdlog::logger> log_;
  InodeTable inodes_;
  std::atomic<fuse_session*> session_{nullptr};
  std::atomic<bool> writeback_{false};
  std::atomic<bool> kills_privs_{false};
  std::atomic<Durability> durability_;
  std::atomic<DirSync> dirsync_;
  const uid_t owner_;
  FuseStats stats_;
  Faults faults_;
  std::shared_ptr<engine::NvmeRegistry> nvme_;  // set by start_engine when nvme_flush is on
  // Lock order: handles_mu_ is a leaf; a handle is destroyed after it is dropped.
  std::mutex handles_mu_;
  std::unordered_set<FileHandle*> files_;  // guarded by handles_mu_
  std::unordered_set<DirHandle*> dirs_;    // guarded by handles_mu_
  // Declared last: created after the mount, destroyed (in shutdown) before the handles'
  // engine::Files would outlive it.
  std::unique_ptr<engine::Engine> engine_;
};

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
