// The fuse_lowlevel_ops table and the connection set-up (init).
//
// POSIX record locks (getlk/setlk) are left to the kernel: without FUSE_CAP_POSIX_LOCKS it
// keeps them on the FUSE inode with exact POSIX semantics (per process, dropped on any
// close), which an OFD or per-daemon fcntl lock on the backing fd cannot reproduce.

#include <spdlog/spdlog.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "fusefs/control.h"
#include "fusefs/filesystem.h"
#include "fusefs/ops.h"

namespace fsysfs::fusefs {
namespace {

void want_if_capable(fuse_conn_info* conn, unsigned cap) noexcept {
  if (conn->capable & cap) conn->want |= cap;
}

// Whether the backing fs keeps POSIX ACLs. On one that does not, the kernel would still ask
// for them and fail every permission check that reaches the group or other bits, and a
// caller would see ENODATA where the backing fs says EOPNOTSUPP.
bool backing_keeps_acls(Filesystem& fs) noexcept {
  const ProcPath root(fs.inode(FUSE_ROOT_ID).fd.get());
  return ::getxattr(root.c_str(), "system.posix_acl_access", nullptr, 0) >= 0 ||
         errno != EOPNOTSUPP;
}

void op_init(void* userdata, fuse_conn_info* conn) noexcept {
  Filesystem& fs = *static_cast<Filesystem*>(userdata);
  conn->max_write = kMaxWrite;
  if (fs.config().max_background > 0) {
    conn->max_background = fs.config().max_background;
    conn->congestion_threshold = std::max(1u, fs.config().max_background * 3 / 4);
  }
  // EXPORT_SUPPORT: the kernel decodes a file handle whose inode it no longer caches with
  // a LOOKUP of "." in its node id, which the inode table answers from the backing file's
  // handle (inode_table.h). Without backing handles the kernel answers ESTALE itself.
  if (fs.inodes().remembers()) {
    want_if_capable(conn, FUSE_CAP_EXPORT_SUPPORT);
  } else {
    conn->want &= ~FUSE_CAP_EXPORT_SUPPORT;
  }
  // No atomic O_TRUNC: the kernel then truncates with a SETATTR before the open, and so
  // clears suid/sgid when a non-owner truncates, as truncate(2) does.
  conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
  want_if_capable(conn, FUSE_CAP_READDIRPLUS);
  // Cached pages of a file whose size or mtime changed underneath are dropped when the
  // kernel refreshes its attributes (page_cache.h).
  want_if_capable(conn, FUSE_CAP_AUTO_INVAL_DATA);
  want_if_capable(conn, FUSE_CAP_FLOCK_LOCKS);
  // A symlink's target is read once and kept in the kernel's page cache: the target of a
  // backing symlink never changes (a new one is a new inode, so a new node id).
  want_if_capable(conn, FUSE_CAP_CACHE_SYMLINKS);
  // Reads splice from the backing fd into /dev/fuse.
  want_if_capable(conn, FUSE_CAP_SPLICE_WRITE);
  want_if_capable(conn, FUSE_CAP_SPLICE_MOVE);
  // Write data is written from the request's bytes (or copied into an engine buffer for
  // the ring); splicing it into a pipe first would only add syscalls.
  conn->want &= ~FUSE_CAP_SPLICE_READ;
  conn->want &= ~FUSE_CAP_POSIX_LOCKS;
  // The kernel keeps clearing suid/sgid itself (by setattr) on write and truncate.
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  // POSIX ACLs, on default_permissions mounts only (the kernel turns default_permissions on
  // with them): the kernel checks and caches them, the backing fs keeps mode and ACL in step
  // and inherits default ACLs. Whether the umask applies depends on the parent's default
  // ACL, which only the backing fs sees. With POSIX_ACL alone the kernel still takes the
  // umask off the mode; DONT_MASK stops that, it comes in the request (fuse_req_ctx), and
  // the creating ops hand it on.
  const unsigned acl_caps = FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
  if (fs.config().default_permissions && (conn->capable & acl_caps) == acl_caps &&
      backing_keeps_acls(fs)) {
    conn->want |= acl_caps;
    fs.set_posix_acl(true);
    fs.log().info("init: POSIX ACLs on; names are created with the caller's umask");
  } else {
    conn->want &= ~acl_caps;
    fs.set_posix_acl(false);
  }
  bool writeback = false;
  if (fs.config().writeback_cache) {
    if (conn->capable & FUSE_CAP_WRITEBACK_CACHE) {
      conn->want |= FUSE_CAP_WRITEBACK_CACHE;
      writeback = true;
    } else {
      fs.log().warn("the kernel does not offer a writeback cache; writing through");
    }
  } else {
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  }
  // The options refuse strict with writeback_cache, and set_durability refuses strict on a
  // writeback mount later; the two must never meet.
  if (writeback && fs.durability() == Durability::kStrict) {
    fs.log().error("durability=strict on a writeback-cache mount: writing through instead");
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    writeback = false;
  }
  fs.set_writeback(writeback);
  fs.log().debug("init: proto {}.{}, capable {:#x}, want {:#x}", conn->proto_major,
                 conn->proto_minor, conn->capable, conn->want);
}

// Counts each request by operation before handing it on.
template <FuseOp K, auto Fn>
struct Counted;
template <FuseOp K, class... A, void (*Fn)(fuse_req_t, A...) noexcept>
struct Counted<K, Fn> {
  static void call(fuse_req_t req, A... args) noexcept {
    fs_of(req).fuse_stats().count(K);
    Fn(req, args...);
  }
};

// The control file (control.h) answers requests on its inode and keeps its name in the
// root: creating it gives EEXIST, removing or renaming it EPERM. So does the crash
// simulation's directory, which no lookup finds.

bool refuse_control_name(fuse_req_t req, fuse_ino_t parent, const char* name, int err) noexcept {
  if (!is_reserved_name(parent, name)) return false;
  reply_err(req, err);
  return true;
}

void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  if (is_control_name(parent, name)) return control_lookup(req);
  if (is_reserved_name(parent, name)) return reply_err(req, ENOENT);
  // "." in the control file: the kernel decoding a file handle of it.
  if (parent == kControlIno) {
    if (std::strcmp(name, ".") == 0) return control_lookup(req);
    return reply_err(req, ENOTDIR);
  }
  op_lookup(req, parent, name);
}

void forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) noexcept {
  if (ino == kControlIno) return fuse_reply_none(req);
  op_forget(req, ino, nlookup);
}

void forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) noexcept {
  size_t kept = 0;
  for (size_t i = 0; i < count; ++i) {
    if (forgets[i].ino != kControlIno) forgets[kept++] = forgets[i];
  }
  op_forget_multi(req, kept, forgets);
}

void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  if (ino == kControlIno) return control_getattr(req);
  op_getattr(req, ino, fi);
}

void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
             fuse_file_info* fi) noexcept {
  if (ino == kControlIno) return reply_err(req, EPERM);
  op_setattr(req, ino, attr, to_set, fi);
}

void readlink(fuse_req_t req, fuse_ino_t ino) noexcept {
  if (ino == kControlIno) return reply_err(req, EINVAL);
  op_readlink(req, ino);
}

void mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) noexcept {
  if (refuse_control_name(req, parent, name, EEXIST)) return;
  op_mknod(req, parent, name, mode, rdev);
}

void mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) noexcept {
  if (refuse_control_name(req, parent, name, EEXIST)) return;
  op_mkdir(req, parent, name, mode);
}

void symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) noexcept {
  if (refuse_control_name(req, parent, name, EEXIST)) return;
  op_symlink(req, link, parent, name);
}

void link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) noexcept {
  if (ino == kControlIno) return reply_err(req, EPERM);
  if (refuse_control_name(req, newparent, newname, EEXIST)) return;
  op_link(req, ino, newparent, newname);
}

void unlink(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  if (refuse_control_name(req, parent, name, EPERM)) return;
  op_unlink(req, parent, name);
}

void rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  if (refuse_control_name(req, parent, name, EPERM)) return;
  op_rmdir(req, parent, name);
}

void rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
            const char* newname, unsigned int flags) noexcept {
  if (refuse_control_name(req, parent, name, EPERM)) return;
  if (refuse_control_name(req, newparent, newname, EPERM)) return;
  op_rename(req, parent, name, newparent, newname, flags);
}

void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  if (ino == kControlIno) return reply_err(req, EPERM);
  op_open(req, ino, fi);
}

void create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
            fuse_file_info* fi) noexcept {
  if (refuse_control_name(req, parent, name, EEXIST)) return;
  op_create(req, parent, name, mode, fi);
}

void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  if (ino == kControlIno) return reply_err(req, ENOTDIR);
  op_opendir(req, ino, fi);
}

void access(fuse_req_t req, fuse_ino_t ino, int mask) noexcept {
  if (ino == kControlIno) return control_access(req, mask);
  op_access(req, ino, mask);
}

void setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags) noexcept {
  if (ino == kControlIno) return control_setxattr(req, name, value, size);
  op_setxattr(req, ino, name, value, size, flags);
}

void getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) noexcept {
  if (ino == kControlIno) return control_getxattr(req, name, size);
  op_getxattr(req, ino, name, size);
}

void listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) noexcept {
  if (ino == kControlIno) return control_listxattr(req, size);
  op_listxattr(req, ino, size);
}

void removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) noexcept {
  if (ino == kControlIno) return reply_err(req, EPERM);
  op_removexattr(req, ino, name);
}

fuse_lowlevel_ops make_ops() noexcept {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = Counted<FuseOp::kLookup, lookup>::call;
  ops.forget = Counted<FuseOp::kForget, forget>::call;
  ops.forget_multi = forget_multi;
  ops.getattr = Counted<FuseOp::kGetattr, getattr>::call;
  ops.setattr = Counted<FuseOp::kSetattr, setattr>::call;
  ops.readlink = Counted<FuseOp::kReadlink, readlink>::call;
  ops.mknod = Counted<FuseOp::kMknod, mknod>::call;
  ops.mkdir = Counted<FuseOp::kMkdir, mkdir>::call;
  ops.unlink = Counted<FuseOp::kUnlink, unlink>::call;
  ops.rmdir = Counted<FuseOp::kRmdir, rmdir>::call;
  ops.symlink = Counted<FuseOp::kSymlink, symlink>::call;
  ops.rename = Counted<FuseOp::kRename, rename>::call;
  ops.link = Counted<FuseOp::kLink, link>::call;
  ops.open = Counted<FuseOp::kOpen, open>::call;
  ops.read = Counted<FuseOp::kRead, op_read>::call;
  ops.write_buf = Counted<FuseOp::kWrite, op_write_buf>::call;
  ops.flush = Counted<FuseOp::kFlush, op_flush>::call;
  ops.release = Counted<FuseOp::kRelease, op_release>::call;
  ops.fsync = Counted<FuseOp::kFsync, op_fsync>::call;
  ops.opendir = Counted<FuseOp::kOpendir, opendir>::call;
  ops.readdir = Counted<FuseOp::kReaddir, op_readdir>::call;
  ops.readdirplus = Counted<FuseOp::kReaddirplus, op_readdirplus>::call;
  ops.releasedir = Counted<FuseOp::kReleasedir, op_releasedir>::call;
  ops.fsyncdir = Counted<FuseOp::kFsyncdir, op_fsyncdir>::call;
  ops.statfs = Counted<FuseOp::kStatfs, op_statfs>::call;
  ops.setxattr = Counted<FuseOp::kSetxattr, setxattr>::call;
  ops.getxattr = Counted<FuseOp::kGetxattr, getxattr>::call;
  ops.listxattr = Counted<FuseOp::kListxattr, listxattr>::call;
  ops.removexattr = Counted<FuseOp::kRemovexattr, removexattr>::call;
  ops.access = Counted<FuseOp::kAccess, access>::call;
  ops.create = Counted<FuseOp::kCreate, create>::call;
  ops.flock = Counted<FuseOp::kFlock, op_flock>::call;
  ops.fallocate = Counted<FuseOp::kFallocate, op_fallocate>::call;
  ops.copy_file_range = Counted<FuseOp::kCopyFileRange, op_copy_file_range>::call;
  ops.lseek = Counted<FuseOp::kLseek, op_lseek>::call;
  return ops;
}

const fuse_lowlevel_ops kOps = make_ops();

}  // namespace

const fuse_lowlevel_ops& lowlevel_ops() noexcept { return kOps; }

}  // namespace fsysfs::fusefs
