#pragma once

// The backing filesystem's own file handles (name_to_handle_at(2)), with which the daemon
// reopens an inode the kernel has forgotten when a file handle of the mount names it again
// (inode_table.h). Only handles that open_by_handle_at can decode through the backing
// root's mount are kept: the root's mount id, which leaves out submounts of BACKING.
// Decoding needs CAP_DAC_READ_SEARCH; a daemon without it, or a backing filesystem without
// handles (EOPNOTSUPP), has none, and handles of the mount then go stale (ESTALE) once the
// kernel forgets an inode, as on a FUSE mount without export support.
//
// Thread safety: const after probe(); any thread.

#include <sys/stat.h>

#include <array>
#include <cstdint>
#include <string>

#include "engine/unique_fd.h"

namespace fsysfs::fusefs {

// One encoded handle. Bigger ones (overlayfs, network filesystems: more than kMaxBytes)
// are not kept; ext4's is 8 bytes, xfs's and tmpfs's 12, btrfs's 20.
struct BackingHandle {
  static constexpr unsigned kMaxBytes = 24;
  int32_t type = 0;
  uint8_t size = 0;  // 0: none
  std::array<unsigned char, kMaxBytes> bytes{};

  bool empty() const noexcept { return size == 0; }
  bool operator==(const BackingHandle&) const noexcept = default;
};

class BackingHandles {
 public:
  // Off: encode() gives empty handles.
  BackingHandles() = default;
  // Handles of the filesystem `root_fd` (the backing root, any open mode) is on, if it has
  // them and this process may decode them: the root's own handle must open the root
  // again. Otherwise off, with the reason in `why`.
  static BackingHandles probe(int root_fd, std::string* why) noexcept;

  bool enabled() const noexcept { return mount_fd_.valid(); }

  // The handle of the inode `fd` (an O_PATH fd) is open on; empty when off, when the inode
  // has none, lives on another mount than the root, or its handle is bigger than kMaxBytes.
  BackingHandle encode(int fd) const noexcept;

  // Opens the inode `h` names (O_PATH) into `fd` and stats it into `st`. -ESTALE when it
  // is gone (removed, its inode number reused), has no link left, or is a directory that
  // is no longer inside the backing tree (checked by walking ".." up to the root): a
  // handle never leads out of BACKING through a directory. A non-directory cannot be
  // placed: one that someone moved out of BACKING on the backing filesystem itself still
  // opens, as an Inode's O_PATH fd follows it there while the kernel holds it. Other
  // -errno as open_by_handle_at gives them.
  int open(const BackingHandle& h, UniqueFd* fd, struct stat* st) const noexcept;

 private:
  int inside_tree(int dir_fd) const noexcept;

  UniqueFd mount_fd_;  // the backing root, O_RDONLY: open_by_handle_at refuses O_PATH fds
  int mount_id_ = -1;
  dev_t root_dev_ = 0;
  ino_t root_ino_ = 0;
};

}  // namespace fsysfs::fusefs
