// Extended attributes. There is no *at form for xattrs on an O_PATH fd, so they go
// through the proc magic link, which ends at the inode itself (a symlink is not followed).

#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "fusefs/crashsim.h"
#include "fusefs/creds.h"
#include "fusefs/filesystem.h"
#include "fusefs/ops.h"

namespace fsysfs::fusefs {
namespace {

bool is_posix_acl(const char* name) noexcept {
  return std::strcmp(name, "system.posix_acl_access") == 0 ||
         std::strcmp(name, "system.posix_acl_default") == 0;
}

// Sets or removes a POSIX ACL (`change(path)`, a setxattr or removexattr returning 0 or -1)
// as the caller: the backing fs then checks that the caller owns the inode and, as it
// changes the mode to match an access ACL, clears S_ISGID unless the caller is in the
// file's group, which it would not do for root. The mode changed underneath the kernel's
// cached attributes: with POSIX ACLs on, the kernel drops them itself after the request;
// otherwise they are dropped here. Returns 0 or -errno.
template <class Change>
int change_posix_acl(fuse_req_t req, Inode& inode, Change&& change) noexcept {
  {
    CredsGuard creds(req);
    if (creds.status() < 0) return creds.status();
    if (change(ProcPath(inode.fd.get()).c_str()) != 0) return -errno;
  }
  Filesystem& fs = fs_of(req);
  if (!fs.posix_acl()) fs.invalidate_attrs(inode);
  return 0;
}

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

// crashsim: keeps the attribute's value so that a crash can give it back. 0 or -errno.
int before_xattr_change(fuse_req_t req, Inode& inode, const char* name, ChangeTicket& change) {
  CrashSim* cs = fs_of(req).crashsim();
  return cs == nullptr ? 0 : cs->before_xattr(inode.fd.get(), name, change.issue(cs));
}

}  // namespace

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                 int flags) noexcept {
  Filesystem& fs = fs_of(req);
  Inode& inode = fs.inode(ino);
  fs.with_space(
      [req, &inode, name, value, size, flags] {
        ChangeTicket change;
        if (int rc = before_xattr_change(req, inode, name, change); rc < 0) return rc;
        if (is_posix_acl(name)) {
          return change_posix_acl(req, inode, [&](const char* path) {
            return ::setxattr(path, name, value, size, flags);
          });
        }
        const ProcPath path(inode.fd.get());
        return ::setxattr(path.c_str(), name, value, size, flags) == 0 ? 0 : -errno;
      },
      [req](int rc) { reply_err(req, -rc); });
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) noexcept {
  Filesystem& fs = fs_of(req);
  const ProcPath path(fs.inode(ino).fd.get());
  // With POSIX ACLs on, the kernel asks for them to check permissions and takes only
  // ENODATA for "no ACL". The backing root keeps ACLs (init checks), but a filesystem
  // mounted below it may not, and its EOPNOTSUPP would fail every check there that reaches
  // the group or other bits.
  const bool acl_lookup = fs.posix_acl() && is_posix_acl(name);
  reply_sized(req, size, [&](char* buf, size_t len) {
    ssize_t n = ::getxattr(path.c_str(), name, buf, len);
    if (n < 0 && errno == EOPNOTSUPP && acl_lookup) errno = ENODATA;
    return n;
  });
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) noexcept {
  const ProcPath path(fs_of(req).inode(ino).fd.get());
  reply_sized(req, size,
              [&](char* buf, size_t len) { return ::listxattr(path.c_str(), buf, len); });
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) noexcept {
  Inode& inode = fs_of(req).inode(ino);
  ChangeTicket change;
  if (int rc = before_xattr_change(req, inode, name, change); rc < 0) {
    reply_err(req, -rc);
    return;
  }
  if (is_posix_acl(name)) {
    reply_err(req, -change_posix_acl(req, inode,
                                     [&](const char* path) { return ::removexattr(path, name); }));
    return;
  }
  const ProcPath path(inode.fd.get());
  int rc = ::removexattr(path.c_str(), name) == 0 ? 0 : errno;
  reply_err(req, rc);
}

}  // namespace fsysfs::fusefs
