#include "fusefs/inode_table.h"

#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <new>
#include <optional>

#include "engine/log.h"

namespace fsysfs::fusefs {
namespace {

uint64_t random64() noexcept {
  uint64_t v = 0;
  if (::getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
    v = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) *
            0x9e3779b97f4a7c15ull ^
        static_cast<uint64_t>(::getpid());
  }
  return v;
}

// The kernel keeps 32 bits of an entry's generation (i_generation); 0 is the root's.
uint64_t random_generation() noexcept {
  const auto g = static_cast<uint32_t>(random64());
  return g == 0 ? 1 : g;
}

// Table ids start above FUSE_ROOT_ID and the control file's 2, anywhere below 2^61, so
// counting up never wraps and two daemons rarely give out the same ids.
fuse_ino_t random_first_id() noexcept { return 3 + (random64() >> 3); }

[[noreturn]] void fatal_unknown(const char* what, fuse_ino_t ino) noexcept {
  component_logger("fusefs")->critical("{} node id {:#x}, which the kernel does not hold; aborting",
                                       what, ino);
  std::abort();
}

}  // namespace

InodeTable::InodeTable(std::unique_ptr<Inode> root, BackingHandles handles, size_t remember,
                       SpaceReturn* space)
    : root_(std::move(root)),
      handles_(std::move(handles)),
      remember_(handles_.enabled() ? remember : 0),
      generation_(random_generation()),
      space_(space),
      next_id_(random_first_id()) {}

Inode& InodeTable::get(fuse_ino_t ino) noexcept {
  if (ino == FUSE_ROOT_ID) return *root_;
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end() || !it->second.inode) fatal_unknown("a request on", ino);
  return *it->second.inode;
}

Inode* InodeTable::add_ref(Node& node) noexcept {
  node.inode->nlookup.fetch_add(1, std::memory_order_relaxed);
  return node.inode.get();
}

void InodeTable::revive(Node& node, std::unique_ptr<Inode> inode) noexcept {
  unlink_forgotten(node);
  --counts_.remembered;
  node.inode = std::move(inode);
  node.inode->nlookup.store(1, std::memory_order_relaxed);
  ++counts_.live;
}

void InodeTable::push_forgotten(Node& node) noexcept {
  node.older = forgotten_tail_;
  node.newer = nullptr;
  if (forgotten_tail_ != nullptr) {
    forgotten_tail_->newer = &node;
  } else {
    forgotten_head_ = &node;
  }
  forgotten_tail_ = &node;
}

void InodeTable::unlink_forgotten(Node& node) noexcept {
  (node.older != nullptr ? node.older->newer : forgotten_head_) = node.newer;
  (node.newer != nullptr ? node.newer->older : forgotten_tail_) = node.older;
  node.older = node.newer = nullptr;
}

void InodeTable::erase(Node& node) noexcept {
  keys_.erase(node.key);
  nodes_.erase(node.id);
}

Inode* InodeTable::find_or_insert(UniqueFd path_fd, const struct stat& st) noexcept {
  const Key key{st.st_dev, st.st_ino};
  if (key.first == root_->dev && key.second == root_->ino) {
    // The backing root seen through a hard link or ".." keeps its own id.
    root_->nlookup.fetch_add(1, std::memory_order_relaxed);
    return root_.get();
  }
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(key);
    if (it != keys_.end() && it->second->inode) return add_ref(*it->second);
  }
  // A new file, or one whose node the kernel forgot: its backing handle (a syscall, so
  // outside the lock) tells whether a remembered node of this key is the same file.
  const BackingHandle handle = remember_ > 0 ? handles_.encode(path_fd.get()) : BackingHandle{};
  const mode_t type = st.st_mode & S_IFMT;
  // path_fd, when not kept, closes after the lock is dropped (parameters outlive locals).
  std::lock_guard lock(mu_);
  try {
    auto it = keys_.find(key);
    if (it != keys_.end()) {
      Node& node = *it->second;
      if (node.inode) return add_ref(node);  // another lookup was first
      if (!handle.empty() && handle == node.handle) {
        revive(node, std::make_unique<Inode>(node.id, std::move(path_fd), key.first, key.second,
                                             type, generation_));
        return node.inode.get();
      }
      // The node remembers an earlier file that had this inode number: that one is gone.
      unlink_forgotten(node);
      --counts_.remembered;
      erase(node);
    }
    const fuse_ino_t id = next_id_;
    auto inode =
        std::make_unique<Inode>(id, std::move(path_fd), key.first, key.second, type, generation_);
    auto [pos, inserted] = nodes_.try_emplace(id);
    Node& node = pos->second;
    try {
      keys_.emplace(key, &node);
    } catch (const std::bad_alloc&) {
      nodes_.erase(pos);
      throw;
    }
    ++next_id_;
    node.id = id;
    node.key = key;
    node.handle = handle;
    node.inode = std::move(inode);
    node.inode->nlookup.store(1, std::memory_order_relaxed);
    ++counts_.live;
    return node.inode.get();
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

int InodeTable::find_by_id(fuse_ino_t ino, Inode** inode) noexcept {
  if (ino == FUSE_ROOT_ID) {
    root_->nlookup.fetch_add(1, std::memory_order_relaxed);
    *inode = root_.get();
    return 0;
  }
  BackingHandle handle;
  {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(ino);
    if (it == nodes_.end()) {
      ++counts_.stale;
      return -ESTALE;
    }
    if (it->second.inode) {
      *inode = add_ref(it->second);
      return 0;
    }
    handle = it->second.handle;
  }
  UniqueFd fd;  // closes after the lock is dropped when not kept
  struct stat st;
  int rc = handles_.open(handle, &fd, &st);
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end()) {
    ++counts_.stale;
    return -ESTALE;
  }
  Node& node = it->second;
  if (node.inode) {  // a lookup by name brought it back meanwhile
    *inode = add_ref(node);
    return 0;
  }
  if (rc == 0 && (st.st_dev != node.key.first || st.st_ino != node.key.second)) rc = -ESTALE;
  if (rc == -ESTALE) {
    ++counts_.stale;
    unlink_forgotten(node);
    --counts_.remembered;
    erase(node);
  }
  if (rc < 0) return rc;
  try {
    revive(node, std::make_unique<Inode>(node.id, std::move(fd), node.key.first, node.key.second,
                                         st.st_mode & S_IFMT, generation_));
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  }
  ++counts_.reopened;
  *inode = node.inode.get();
  return 0;
}

void InodeTable::forget(fuse_ino_t ino, uint64_t n) noexcept {
  if (ino == FUSE_ROOT_ID) {
    root_->nlookup.fetch_sub(n, std::memory_order_relaxed);
    return;
  }
  // Open from before the Inode leaves the table until after its fds are closed.
  std::optional<SpaceReturn::Dropping> dropping;
  std::unique_ptr<Inode> doomed;  // its fds close after the locks are dropped
  {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(ino);
    if (it == nodes_.end() || !it->second.inode) fatal_unknown("FORGET of", ino);
    Node& node = it->second;
    const uint64_t had = node.inode->nlookup.load(std::memory_order_relaxed);
    if (n < had) {
      node.inode->nlookup.store(had - n, std::memory_order_relaxed);
      return;
    }
    dropping.emplace(space_);
    doomed = std::move(node.inode);
    --counts_.live;
    if (remember_ == 0 || node.handle.empty()) {
      erase(node);
      return;
    }
    push_forgotten(node);
    ++counts_.remembered;
    while (counts_.remembered > remember_) {
      Node& oldest = *forgotten_head_;
      unlink_forgotten(oldest);
      --counts_.remembered;
      ++counts_.dropped;
      erase(oldest);
    }
  }
  // Most inodes the kernel forgets at once were just removed through the mount: with no
  // link left they can never open by handle again (BackingHandles::open), and remembering
  // them would only push out nodes that can. (A removed file does not come back: only an
  // O_TMPFILE can be linked again, and that never had a name to be looked up by.)
  struct stat st;
  if (::fstat(doomed->fd.get(), &st) != 0 || st.st_nlink > 0) return;
  std::lock_guard lock(mu_);
  auto it = nodes_.find(ino);
  if (it == nodes_.end() || it->second.inode) return;  // dropped, or back in use
  unlink_forgotten(it->second);
  --counts_.remembered;
  erase(it->second);
}

void InodeTable::removed_held(std::vector<std::pair<dev_t, ino_t>>* out) {
  // A lookup reference of our own keeps each Inode (and its fd) alive while it is looked at.
  std::vector<Inode*> inodes;
  {
    std::lock_guard lock(mu_);
    inodes.reserve(nodes_.size());
    for (auto& [id, node] : nodes_) {
      if (node.inode) inodes.push_back(add_ref(node));
    }
  }
  for (Inode* inode : inodes) {
    struct stat st;
    if (::fstat(inode->fd.get(), &st) == 0 && st.st_nlink == 0) {
      try {
        out->emplace_back(inode->dev, inode->ino);
      } catch (const std::bad_alloc&) {
        // one fewer to wait for; the references taken above must still go
      }
    }
    forget(inode->id, 1);
  }
  std::sort(out->begin(), out->end());
}

InodeTable::Counts InodeTable::counts() const noexcept {
  std::lock_guard lock(mu_);
  return counts_;
}

}  // namespace fsysfs::fusefs
