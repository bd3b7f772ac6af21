// Extended attributes. There is no *at form for xattrs on an O_PATH fd, so they go
// through the proc magic link, which ends at the inode itself (a symlink is not followed).

#include <sys/xattr.h>

#include <cerrno>
#include <vector>

#include "fusefs/filesystem.h"
#include "fusefs/ops.h"

namespace fsysfs::fusefs {
namespace {

// getxattr/listxattr share their reply protocol: size 0 asks for the length only.
template <class Fn>
void reply_sized(fuse_req_t req, size_t size, Fn&& fn) noexcept {
  std::vector<char> buf;
  ssize_t n = 0;
  int rc = guarded([&] {
    buf.resize(size);
    n = fn(size == 0 ? nullptr : buf.data(), size);
    return n < 0 ? -errno : 0;
  });
  if (rc < 0) {
    reply_err(req, -rc);
  } else if (size == 0) {
    fuse_reply_xattr(req, static_cast<size_t>(n));
  } else {
    fuse_reply_buf(req, buf.data(), static_cast<size_t>(n));
  }
}

}  // namespace

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                 int flags) noexcept {
  const ProcPath path(fs_of(req).inode(ino).fd.get());
  int rc = ::setxattr(path.c_str(), name, value, size, flags) == 0 ? 0 : errno;
  reply_err(req, rc);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) noexcept {
  const ProcPath path(fs_of(req).inode(ino).fd.get());
  reply_sized(req, size,
              [&](char* buf, size_t len) { return ::getxattr(path.c_str(), name, buf, len); });
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) noexcept {
  const ProcPath path(fs_of(req).inode(ino).fd.get());
  reply_sized(req, size,
              [&](char* buf, size_t len) { return ::listxattr(path.c_str(), buf, len); });
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) noexcept {
  const ProcPath path(fs_of(req).inode(ino).fd.get());
  int rc = ::removexattr(path.c_str(), name) == 0 ? 0 : errno;
  reply_err(req, rc);
}

}  // namespace fsysfs::fusefs
