#pragma once

// The inode table: the node ids (fuse_ino_t) the kernel knows backing files by, and one
// Inode per backing (st_dev, st_ino) that the kernel holds a lookup reference to.
//
// Node ids are numbers the table gives out, never addresses: they count up from a random
// start and are never reused while the daemon runs, so a request naming a node the kernel
// has forgotten finds nothing or the same file, never freed memory or another file.
// FUSE_ROOT_ID (1) is the backing root and 2 the control file (control.h); table ids are
// above both. Every node of one daemon has the same generation, drawn at random at start:
// a file handle encoded under an earlier daemon fails the kernel's generation check
// (ESTALE) even where its id was given out again.
//
// File handles of the mount. The kernel encodes them (name_to_handle_at, NFS export) as
// {node id, generation} without asking the daemon; to decode one whose inode it no longer
// caches, it sends a LOOKUP of "." in that node id (find_by_id). So that such a handle
// still opens its file, a node the kernel forgets is remembered with its backing file
// handle (backing_handles.h), up to `remember` of them, the longest forgotten dropped
// first; a lookup by name of the same file, or of its handle, brings the node back under
// the same id. A node without a backing handle, or dropped, is erased at once: its handles
// are ESTALE, as are those of a file that is gone.
//
// Thread safety: every member function may be called concurrently. The maps are guarded by
// mu_; lookup counts change under mu_ too (the root's excepted, which is never erased).
// An Inode stays alive while its lookup count is positive: forget() closes it under mu_
// when the count reaches zero, so a lookup that races it either comes first (the count
// stays positive) or finds the node remembered (and revives it under the same id) or
// erased (and makes a new node).

#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "engine/unique_fd.h"
#include "fusefs/backing_handles.h"
#include "fusefs/data_state.h"
#include "fusefs/error_seq.h"
#include "fusefs/page_cache.h"
#include "fusefs/space_return.h"

namespace fsysfs::fusefs {

struct Inode {
  Inode(fuse_ino_t node_id, UniqueFd path_fd, dev_t d, ino_t i, mode_t type, uint64_t gen) noexcept
      : id(node_id), fd(std::move(path_fd)), dev(d), ino(i), file_type(type), generation(gen) {}
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;

  const fuse_ino_t id;  // the node id the kernel calls it by
  const UniqueFd fd;    // O_PATH | O_NOFOLLOW, never used for I/O
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

class InodeTable {
 public:
  // `root` is the backing directory (its id must be FUSE_ROOT_ID); it answers FUSE_ROOT_ID
  // and is never forgotten. Forgotten nodes are remembered for file handles only when
  // `handles` is on and `remember` > 0. Closed Inodes are let go to `space`, if not null.
  explicit InodeTable(std::unique_ptr<Inode> root, BackingHandles handles = {}, size_t remember = 0,
                      SpaceReturn* space = nullptr);
  InodeTable(const InodeTable&) = delete;
  InodeTable& operator=(const InodeTable&) = delete;

  Inode& root() noexcept { return *root_; }
  // The Inode the kernel calls `ino`. The caller's request holds a lookup reference, so
  // it is live; a node id that is not is a fatal error.
  Inode& get(fuse_ino_t ino) noexcept;
  fuse_ino_t id_of(const Inode& inode) const noexcept { return inode.id; }

  // Finds or creates the Inode for `st` and adds one lookup reference. `path_fd` is the
  // O_PATH fd the caller opened; it is kept when a new Inode is created, else closed.
  // Returns nullptr only on allocation failure.
  Inode* find_or_insert(UniqueFd path_fd, const struct stat& st) noexcept;

  // For the kernel's LOOKUP of "." in `ino` (decoding a file handle): adds one lookup
  // reference to the node's Inode, reopening it from its backing handle if the kernel had
  // forgotten it. -ESTALE for an id the table never gave out or no longer remembers, and
  // for a file that is gone; other -errno from reopening (BackingHandles::open).
  int find_by_id(fuse_ino_t ino, Inode** inode) noexcept;

  // Drops `n` lookup references; at zero the Inode is closed (a SpaceReturn::Dropping) and
  // its node remembered or erased.
  void forget(fuse_ino_t ino, uint64_t n) noexcept;

  // Adds to `out` (sorted) the (st_dev, st_ino) of every Inode whose backing file has no
  // name left (st_nlink 0): files the daemon's references keep allocated. A syscall per
  // Inode, none under the lock.
  void removed_held(std::vector<std::pair<dev_t, ino_t>>* out);

  // Whether forgotten nodes are remembered (the kernel may be offered export support).
  bool remembers() const noexcept { return remember_ > 0; }

  struct Counts {
    size_t live = 0;        // Inodes the kernel holds, the root excepted
    size_t remembered = 0;  // forgotten nodes kept for file handles
    uint64_t reopened = 0;  // forgotten nodes brought back by a file handle
    uint64_t stale = 0;     // file handles answered ESTALE
    uint64_t dropped = 0;   // remembered nodes dropped for the bound
  };
  Counts counts() const noexcept;
  size_t size() const noexcept { return counts().live; }

 private:
  using Key = std::pair<dev_t, ino_t>;
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept {
      return std::hash<uint64_t>()(static_cast<uint64_t>(k.first) * 0x9e3779b97f4a7c15ull ^
                                   static_cast<uint64_t>(k.second));
    }
  };
  // A node id's record. `inode` is set while the kernel holds the node; otherwise the
  // node is remembered, and sits in the forgotten list (oldest at forgotten_head_).
  struct Node {
    fuse_ino_t id = 0;
    Key key;
    BackingHandle handle;
    std::unique_ptr<Inode> inode;
    Node* older = nullptr;
    Node* newer = nullptr;
  };

  // All under mu_.
  Inode* add_ref(Node& node) noexcept;
  void revive(Node& node, std::unique_ptr<Inode> inode) noexcept;
  void push_forgotten(Node& node) noexcept;
  void unlink_forgotten(Node& node) noexcept;
  void erase(Node& node) noexcept;

  std::unique_ptr<Inode> root_;
  const BackingHandles handles_;
  const size_t remember_;      // 0 when handles_ is off
  const uint64_t generation_;  // of every node but the root
  SpaceReturn* const space_;
  // Leaf lock: nothing else is locked while it is held, and no reply is sent under it.
  // Syscalls (opening, encoding handles, closing fds) happen outside it.
  mutable std::mutex mu_;
  std::unordered_map<fuse_ino_t, Node> nodes_;    // guarded by mu_; element addresses are stable
  std::unordered_map<Key, Node*, KeyHash> keys_;  // guarded by mu_
  Node* forgotten_head_ = nullptr;                // guarded by mu_: remembered the longest
  Node* forgotten_tail_ = nullptr;                // guarded by mu_
  fuse_ino_t next_id_;                            // guarded by mu_
  Counts counts_;                                 // guarded by mu_
};

}  // namespace fsysfs::fusefs
