#include "fusefs/inode_table.h"

#include <new>

namespace fsysfs::fusefs {

Inode* InodeTable::find_or_insert(UniqueFd path_fd, const struct stat& st) noexcept {
  const Key key{st.st_dev, st.st_ino};
  if (key.first == root_->dev && key.second == root_->ino) {
    // The backing root seen through a hard link or ".." keeps its own id.
    root_->nlookup.fetch_add(1, std::memory_order_relaxed);
    return root_.get();
  }
  std::unique_lock lock(mu_);
  auto it = map_.find(key);
  if (it != map_.end()) {
    it->second->nlookup.fetch_add(1, std::memory_order_relaxed);
    Inode* found = it->second.get();
    lock.unlock();
    return found;  // path_fd closes here, outside the lock
  }
  try {
    auto inode = std::make_unique<Inode>(std::move(path_fd), st.st_dev, st.st_ino,
                                         st.st_mode & S_IFMT, next_generation_++);
    inode->nlookup.store(1, std::memory_order_relaxed);
    Inode* raw = inode.get();
    map_.emplace(key, std::move(inode));
    return raw;
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

void InodeTable::forget(fuse_ino_t ino, uint64_t n) noexcept {
  if (ino == FUSE_ROOT_ID) return;
  Inode& inode = get(ino);
  if (&inode == root_.get()) {
    root_->nlookup.fetch_sub(n, std::memory_order_relaxed);
    return;
  }
  // Copy the key first: once the count reaches zero another forget may free the Inode.
  const Key key{inode.dev, inode.ino};
  if (inode.nlookup.fetch_sub(n, std::memory_order_acq_rel) != n) return;
  std::unique_ptr<Inode> doomed;  // its fd closes after the lock is dropped
  {
    std::lock_guard lock(mu_);
    auto it = map_.find(key);
    if (it != map_.end() && it->second->nlookup.load(std::memory_order_acquire) == 0) {
      doomed = std::move(it->second);
      map_.erase(it);
    }
  }
}

size_t InodeTable::size() const noexcept {
  std::lock_guard lock(mu_);
  return map_.size();
}

}  // namespace fsysfs::fusefs
