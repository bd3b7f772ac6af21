#pragma once

// The inode table: one Inode per backing (st_dev, st_ino) that the kernel holds a lookup
// reference to. An Inode never moves once created; its address is the fuse_ino_t that the
// kernel uses to name it (the root is FUSE_ROOT_ID and lives outside the table).
//
// Thread safety: all member functions may be called concurrently. Lookup counts are
// atomic; the map is guarded by mu_. An Inode stays alive while its lookup count is
// positive, and is erased only by forget(), which re-finds it by key under mu_ and erases
// it only if its count is still zero (a concurrent lookup that revived it wins).

#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "engine/engine.h"
#include "engine/unique_fd.h"
#include "fusefs/data_state.h"
#include "fusefs/error_seq.h"
#include "fusefs/page_cache.h"

namespace fsysfs::fusefs {

struct Inode {
  Inode(UniqueFd path_fd, dev_t d, ino_t i, mode_t type, uint64_t gen) noexcept
      : fd(std::move(path_fd)), dev(d), ino(i), file_type(type), generation(gen) {}
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;

  const UniqueFd fd;  // O_PATH | O_NOFOLLOW, never used for I/O
  const dev_t dev;
  const ino_t ino;
  const mode_t file_type;  // S_IFMT bits
  const uint64_t generation;
  std::atomic<uint64_t> nlookup{0};
  ErrorSeq sync_errors;
  DataState data;
  PageCacheStamp page_cache;
  // A directory's own handle for dirsync, opened at its first use.
  std::mutex dir_sync_mu;
  std::unique_ptr<engine::File> dir_sync_file;  // guarded by dir_sync_mu
};

// NOLINTNEXTLINE(bugprone-sizeof-expression): the size of the pointer is the point.
static_assert(sizeof(fuse_ino_t) >= sizeof(Inode*), "an Inode address must fit a fuse_ino_t");

class InodeTable {
 public:
  // `root` is the backing directory; it answers FUSE_ROOT_ID and is never forgotten.
  explicit InodeTable(std::unique_ptr<Inode> root) noexcept : root_(std::move(root)) {}
  InodeTable(const InodeTable&) = delete;
  InodeTable& operator=(const InodeTable&) = delete;

  Inode& root() noexcept { return *root_; }
  // The Inode the kernel calls `ino`. The caller's request holds a lookup reference.
  Inode& get(fuse_ino_t ino) noexcept {
    if (ino == FUSE_ROOT_ID) return *root_;
    return *reinterpret_cast<Inode*>(ino);
  }
  fuse_ino_t id_of(const Inode& inode) const noexcept {
    if (&inode == root_.get()) return FUSE_ROOT_ID;
    return reinterpret_cast<fuse_ino_t>(&inode);
  }

  // Finds or creates the Inode for `st` and adds one lookup reference. `path_fd` is the
  // O_PATH fd the caller opened; it is kept when a new Inode is created, else closed.
  // Returns nullptr only on allocation failure.
  Inode* find_or_insert(UniqueFd path_fd, const struct stat& st) noexcept;

  // Drops `n` lookup references; erases the Inode when none remain.
  void forget(fuse_ino_t ino, uint64_t n) noexcept;

  size_t size() const noexcept;

 private:
  using Key = std::pair<dev_t, ino_t>;
  std::unique_ptr<Inode> root_;
  // Leaf lock: nothing else is locked while it is held, and no reply is sent under it.
  mutable std::mutex mu_;
  std::map<Key, std::unique_ptr<Inode>> map_;  // guarded by mu_
  uint64_t next_generation_ = 1;               // guarded by mu_
};

}  // namespace fsysfs::fusefs
