#include "fusefs/backing_handles.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fsysfs::fusefs {
namespace {

// A file_handle with room for the biggest handle any filesystem encodes.
struct HandleBuffer {
  HandleBuffer() noexcept { fh()->handle_bytes = MAX_HANDLE_SZ; }
  file_handle* fh() noexcept { return reinterpret_cast<file_handle*>(storage); }
  alignas(file_handle) unsigned char storage[sizeof(file_handle) + MAX_HANDLE_SZ];
};

// Deeper directories are taken as outside the tree (PATH_MAX allows 2048 levels of
// one-letter names below "/").
constexpr int kMaxDepth = 4096;

}  // namespace

BackingHandles BackingHandles::probe(int root_fd, std::string* why) noexcept {
  BackingHandles h;
  HandleBuffer buf;
  int mount_id = -1;
  if (::name_to_handle_at(root_fd, "", buf.fh(), &mount_id, AT_EMPTY_PATH) != 0) {
    *why = std::string("name_to_handle_at: ") + std::strerror(errno);
    return {};
  }
  struct stat root;
  if (::fstat(root_fd, &root) != 0) {
    *why = std::string("fstat: ") + std::strerror(errno);
    return {};
  }
  UniqueFd mount_fd(::openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!mount_fd) {
    *why = std::string("open: ") + std::strerror(errno);
    return {};
  }
  UniqueFd again(::open_by_handle_at(mount_fd.get(), buf.fh(), O_PATH | O_CLOEXEC));
  struct stat st;
  if (!again) {
    // EPERM: the daemon lacks CAP_DAC_READ_SEARCH.
    *why = std::string("open_by_handle_at: ") + std::strerror(errno);
    return {};
  }
  if (::fstat(again.get(), &st) != 0 || st.st_dev != root.st_dev || st.st_ino != root.st_ino) {
    *why = "open_by_handle_at opened another inode than the root";
    return {};
  }
  h.mount_fd_ = std::move(mount_fd);
  h.mount_id_ = mount_id;
  h.root_dev_ = root.st_dev;
  h.root_ino_ = root.st_ino;
  return h;
}

BackingHandle BackingHandles::encode(int fd) const noexcept {
  BackingHandle h;
  if (!enabled()) return h;
  HandleBuffer buf;
  int mount_id = -1;
  if (::name_to_handle_at(fd, "", buf.fh(), &mount_id, AT_EMPTY_PATH) != 0) return h;
  if (mount_id != mount_id_ || buf.fh()->handle_bytes == 0 ||
      buf.fh()->handle_bytes > BackingHandle::kMaxBytes) {
    return h;
  }
  h.type = buf.fh()->handle_type;
  h.size = static_cast<uint8_t>(buf.fh()->handle_bytes);
  std::memcpy(h.bytes.data(), buf.fh()->f_handle, h.size);
  return h;
}

int BackingHandles::open(const BackingHandle& h, UniqueFd* fd, struct stat* st) const noexcept {
  if (!enabled() || h.empty()) return -ESTALE;
  HandleBuffer buf;
  buf.fh()->handle_bytes = h.size;
  buf.fh()->handle_type = h.type;
  std::memcpy(buf.fh()->f_handle, h.bytes.data(), h.size);
  UniqueFd opened(::open_by_handle_at(mount_fd_.get(), buf.fh(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!opened) return errno == ENOENT ? -ESTALE : -errno;
  if (::fstatat(opened.get(), "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return -errno;
  // An inode that lost its last name is gone for the mount, even if someone still holds
  // it open on the backing filesystem.
  if (st->st_nlink == 0) return -ESTALE;
  if (S_ISDIR(st->st_mode)) {
    if (int rc = inside_tree(opened.get()); rc < 0) return rc;
  }
  *fd = std::move(opened);
  return 0;
}

// 0 when `dir_fd` is the root or below it; -ESTALE when walking ".." ends at the top of the
// backing filesystem (or beyond kMaxDepth) without passing the root. Racy against renames
// like any path check, and as good as the name lookups, which reach a directory that is
// moved out while the kernel holds it the same way.
int BackingHandles::inside_tree(int dir_fd) const noexcept {
  struct stat st;
  if (::fstat(dir_fd, &st) != 0) return -errno;
  UniqueFd cur;
  int at = dir_fd;
  for (int depth = 0; depth < kMaxDepth; ++depth) {
    if (st.st_dev == root_dev_ && st.st_ino == root_ino_) return 0;
    UniqueFd up(::openat(at, "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!up) return -errno;
    struct stat up_st;
    if (::fstat(up.get(), &up_st) != 0) return -errno;
    if (up_st.st_dev == st.st_dev && up_st.st_ino == st.st_ino) return -ESTALE;  // the top
    cur = std::move(up);
    at = cur.get();
    st = up_st;
  }
  return -ESTALE;
}

}  // namespace fsysfs::fusefs
