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
#include <memory>
#include <mutex>
#include <unordered_set>

#include "engine/engine.h"
#include "engine/unique_fd.h"
#include "fusefs/handles.h"
#include "fusefs/inode_table.h"
#include "fusefs/session.h"

namespace spdlog {
class logger;
}

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
  Filesystem(const Config& config, std::unique_ptr<Inode> root);
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

  // Creates the engine. Returns 0 or -errno (logged).
  int start_engine() noexcept;
  // Destroys every handle the kernel did not release (each waits for its in-flight
  // engine ops, whose completions reply), then the engine.
  void shutdown() noexcept;

  // Looks `name` up in `parent` and fills `e`, taking one lookup reference. -errno on
  // failure. Never follows a symlink and never leaves the backing tree.
  int lookup(Inode& parent, const char* name, fuse_entry_param* e) noexcept;
  // Fills `e` for an O_PATH fd already open on a new name, taking one lookup reference.
  int entry_for(UniqueFd path_fd, fuse_entry_param* e) noexcept;

  // Adopts `fd` into the engine and registers the handle. nullptr on allocation failure.
  FileHandle* add_file(UniqueFd fd) noexcept;
  void release_file(FileHandle* h) noexcept;
  DirHandle* add_dir(std::unique_ptr<DirHandle> h) noexcept;
  void release_dir(DirHandle* h) noexcept;

 private:
  const Config config_;
  std::shared_ptr<spdlog::logger> log_;
  InodeTable inodes_;
  std::atomic<bool> writeback_{false};
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

// Syncs `file` (fdatasync when `datasync`, else fsync) through the engine and answers
// `req` from the completion with the backing errno. `file` must outlive the completion
// (the kernel does not release a handle while a request on it is outstanding).
void sync_and_reply(fuse_req_t req, engine::Engine& engine, engine::File& file,
                    int datasync) noexcept;

}  // namespace fsysfs::fusefs
