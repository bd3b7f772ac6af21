// Attributes: getattr, setattr, readlink, statfs, access.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "fusefs/crashsim.h"
#include "fusefs/creds.h"
#include "fusefs/device_io.h"
#include "fusefs/filesystem.h"
#include "fusefs/ops.h"

namespace fsysfs::fusefs {
namespace {

int stat_inode(const Inode& inode, struct stat* st) noexcept {
  return ::fstatat(inode.fd.get(), "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

int do_getattr(Inode& inode, fuse_file_info* fi, struct stat* st) noexcept {
  if (fi != nullptr) return ::fstat(file_of(fi).fd(), st) == 0 ? 0 : -errno;
  return stat_inode(inode, st);
}

// Order: mode, owner, size, times (as chmod, chown, truncate, touch would run them). A
// failure stops there, like the first failing syscall would.
int do_setattr(fuse_req_t req, Inode& inode, const struct stat& attr, int to_set,
               fuse_file_info* fi, bool kill_suidgid) noexcept {
  // Every SETATTR comes from a notify_change, which on a local filesystem updates ctime even
  // when nothing else changes: chown(f, -1, -1) arrives with no attribute bit (under
  // writeback_cache with FUSE_SET_ATTR_CTIME only, a time the backing cannot be given). An
  // ownerless chown makes the backing do what it would have done for the caller.
  constexpr int kChanges = FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID |
                           FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME;
  if ((to_set & kChanges) == 0) {
    const uid_t no_uid = static_cast<uid_t>(-1);
    const gid_t no_gid = static_cast<gid_t>(-1);
    int rc = ::fchownat(inode.fd.get(), "", no_uid, no_gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    return rc == 0 ? 0 : -errno;
  }
  const int ofd = fi != nullptr ? file_of(fi).fd() : -1;
  const ProcPath proc(inode.fd.get());
  ChangeTicket attr_change;
  if (CrashSim* cs = fs_of(req).crashsim();
      cs != nullptr && (to_set & kChanges & ~FUSE_SET_ATTR_SIZE)) {
    if (int rc = cs->before_attr(inode.fd.get(), attr_change.issue(cs)); rc < 0) return rc;
  }
  if (to_set & FUSE_SET_ATTR_MODE) {
    int rc = ofd >= 0 ? ::fchmod(ofd, attr.st_mode) : ::chmod(proc.c_str(), attr.st_mode);
    if (rc != 0) return -errno;
  }
  if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr.st_uid : static_cast<uid_t>(-1);
    gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr.st_gid : static_cast<gid_t>(-1);
    if (::fchownat(inode.fd.get(), "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
      return -errno;
    }
  }
  if (to_set & FUSE_SET_ATTR_SIZE) {
    uint64_t ticket = 0;
    CrashSim* cs = fs_of(req).crashsim();
    if (cs != nullptr) {
      if (int rc =
              cs->before_truncate(inode.fd.get(), static_cast<uint64_t>(attr.st_size), &ticket);
          rc < 0) {
        return rc;
      }
    }
    int rc = ofd >= 0 ? ::ftruncate(ofd, attr.st_size) : ::truncate(proc.c_str(), attr.st_size);
    if (cs != nullptr) cs->changed(ticket);
    inode.data.changed();  // before the reply: a later fdatasync must not be elided
    if (rc != 0) return -errno;
    if (kill_suidgid) {
      rc = clear_suidgid(req, inode, ofd);
      if (rc < 0) return rc;
    }
  }
  if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
    struct timespec tv[2];
    tv[0].tv_sec = 0;
    tv[0].tv_nsec = UTIME_OMIT;
    tv[1] = tv[0];
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
      tv[0].tv_nsec = UTIME_NOW;
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
      tv[0] = attr.st_atim;
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
      tv[1].tv_nsec = UTIME_NOW;
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
      tv[1] = attr.st_mtim;
    }
    int rc = ofd >= 0 ? ::futimens(ofd, tv)
                      : ::utimensat(inode.fd.get(), "", tv, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
    if (rc != 0) return -errno;
  }
  return 0;
}

}  // namespace

int clear_suidgid(fuse_req_t req, const Inode& inode, int fd) noexcept {
  struct stat st;
  if ((fd >= 0 ? ::fstat(fd, &st) : stat_inode(inode, &st)) != 0) return -errno;
  if (!S_ISREG(st.st_mode)) return 0;
  mode_t kill = st.st_mode & S_ISUID;
  // As the kernel's setattr_should_drop_sgid(): S_ISGID without group-exec makes no setgid
  // program, yet it goes too unless the caller is in the file's group.
  if ((st.st_mode & S_ISGID) && ((st.st_mode & S_IXGRP) || !caller_in_group(req, st.st_gid))) {
    kill |= S_ISGID;
  }
  if (kill == 0) return 0;
  const mode_t mode = st.st_mode & 07777 & ~kill;
  int rc = fd >= 0 ? ::fchmod(fd, mode) : ::chmod(ProcPath(inode.fd.get()).c_str(), mode);
  if (rc != 0) return -errno;
  // The replies to WRITE, FALLOCATE and COPY_FILE_RANGE carry no attributes, and the kernel
  // does not expect the mode to change with them: it would show the old one until its
  // attributes time out.
  fs_of(req).invalidate_attrs(inode);
  return 0;
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  Filesystem& fs = fs_of(req);
  struct stat st;
  int rc = do_getattr(fs.inode(ino), fi, &st);
  if (rc < 0) {
    reply_err(req, -rc);
  } else {
    fuse_reply_attr(req, &st, fs.config().attr_timeout);
  }
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                fuse_file_info* fi) noexcept {
  Filesystem& fs = fs_of(req);
  Inode& inode = fs.inode(ino);
  struct stat st;
  int rc = do_setattr(req, inode, *attr, to_set, fi, fs.kills_privs() && request_kills_suidgid());
  if (rc == 0) rc = do_getattr(inode, fi, &st);
  if (rc < 0) {
    reply_err(req, -rc);
  } else {
    fuse_reply_attr(req, &st, fs.config().attr_timeout);
  }
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) noexcept {
  Inode& inode = fs_of(req).inode(ino);
  char buf[PATH_MAX + 1];
  ssize_t n = ::readlinkat(inode.fd.get(), "", buf, sizeof buf);
  if (n < 0) {
    reply_err(req, errno);
  } else if (static_cast<size_t>(n) >= sizeof buf) {
    reply_err(req, ENAMETOOLONG);
  } else {
    buf[n] = '\0';
    fuse_reply_readlink(req, buf);
  }
}

void op_statfs(fuse_req_t req, fuse_ino_t ino) noexcept {
  struct statvfs sv;
  if (::fstatvfs(fs_of(req).inode(ino).fd.get(), &sv) != 0) {
    reply_err(req, errno);
  } else {
    fuse_reply_statfs(req, &sv);
  }
}

void op_access(fuse_req_t req, fuse_ino_t ino, int mask) noexcept {
  Inode& inode = fs_of(req).inode(ino);
  int rc = 0;
  {
    // AT_EACCESS checks with the thread's fs identity, i.e. the caller's.
    CredsGuard creds(req);
    rc = creds.status();
    if (rc == 0 && ::faccessat(AT_FDCWD, ProcPath(inode.fd.get()).c_str(), mask, AT_EACCESS) != 0) {
      rc = -errno;
    }
  }
  reply_err(req, -rc);
}

}  // namespace fsysfs::fusefs
