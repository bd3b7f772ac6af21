#pragma once

// Per-open state. A FileHandle or DirHandle is created by open/create/opendir, its
// address travels in fuse_file_info::fh, and it is destroyed by release/releasedir (or by
// the Filesystem at shutdown, for handles the kernel never released).

#include <dirent.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "engine/engine.h"
#include "engine/unique_fd.h"
#include "fusefs/inode_table.h"

namespace fsysfs::fusefs {

// Thread safety: `file` is set at creation and never replaced; engine calls on it may run
// concurrently. Destroying the handle waits for its in-flight engine ops.
struct FileHandle {
  std::unique_ptr<engine::File> file;  // owns the backing fd opened for this FUSE open
  Inode* inode = nullptr;  // held by the kernel's lookup reference while the file is open
  std::atomic<uint64_t> errors_seen{0};  // cursor into inode->sync_errors
  bool writable = false;                 // opened for writing (durability=close syncs it)
  // What each write is chained with: O_DSYNC and O_SYNC opens become linked write+sync
  // chains (the backing fd is opened without them), so the fdatasync the kernel sends
  // after each such write finds the data durable and is elided.
  engine::SyncKind write_sync = engine::SyncKind::kNone;
  std::atomic<bool> wrote{false};  // a write through this handle completed
  // Opened O_DIRECT: the kernel's own direct writes bypass its page cache (ops_file.cc).
  bool direct = false;
  // For a writable O_DIRECT open: the same file opened again without O_DIRECT, for the
  // kernel's page writeback (mmap), whose sizes and offsets need not be aligned.
  std::unique_ptr<engine::File> cached_file;
  int fd() const noexcept { return file->fd(); }
};

// Thread safety: every field is guarded by mu; readdir calls on one handle serialise.
struct DirHandle {
  DirHandle() = default;
  DirHandle(const DirHandle&) = delete;
  DirHandle& operator=(const DirHandle&) = delete;
  ~DirHandle() {
    if (dir != nullptr) closedir(dir);
  }

  std::mutex mu;
  DIR* dir = nullptr;                // owns the directory fd
  off_t offset = 0;                  // stream position the kernel will ask for next
  struct dirent* pending = nullptr;  // read but not yet returned (did not fit)
  // A dup of the directory fd adopted by the engine at the first fsyncdir.
  std::unique_ptr<engine::File> sync_file;
};

}  // namespace fsysfs::fusefs
