// The fuse_lowlevel_ops table and the connection set-up (init).
//
// POSIX record locks (getlk/setlk) are left to the kernel: without FUSE_CAP_POSIX_LOCKS it
// keeps them on the FUSE inode with exact POSIX semantics (per process, dropped on any
// close), which an OFD or per-daemon fcntl lock on the backing fd cannot reproduce.

#include <spdlog/spdlog.h>

#include "fusefs/filesystem.h"
#include "fusefs/ops.h"

namespace fsysfs::fusefs {
namespace {

constexpr unsigned kMaxWrite = 1u << 20;

void want_if_capable(fuse_conn_info* conn, unsigned cap) noexcept {
  if (conn->capable & cap) conn->want |= cap;
}

void op_init(void* userdata, fuse_conn_info* conn) noexcept {
  Filesystem& fs = *static_cast<Filesystem*>(userdata);
  conn->max_write = kMaxWrite;
  want_if_capable(conn, FUSE_CAP_EXPORT_SUPPORT);
  want_if_capable(conn, FUSE_CAP_READDIRPLUS);
  want_if_capable(conn, FUSE_CAP_FLOCK_LOCKS);
  // Reads splice from the backing fd into /dev/fuse.
  want_if_capable(conn, FUSE_CAP_SPLICE_WRITE);
  want_if_capable(conn, FUSE_CAP_SPLICE_MOVE);
  // Write data is copied into an engine buffer either way; splicing it into a pipe first
  // would only add syscalls.
  conn->want &= ~FUSE_CAP_SPLICE_READ;
  conn->want &= ~FUSE_CAP_POSIX_LOCKS;
  // The kernel keeps clearing suid/sgid itself (by setattr) on write and truncate.
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
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
  fs.set_writeback(writeback);
  fs.log().debug("init: proto {}.{}, capable {:#x}, want {:#x}", conn->proto_major,
                 conn->proto_minor, conn->capable, conn->want);
}

fuse_lowlevel_ops make_ops() noexcept {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.readlink = op_readlink;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.symlink = op_symlink;
  ops.rename = op_rename;
  ops.link = op_link;
  ops.open = op_open;
  ops.read = op_read;
  ops.write_buf = op_write_buf;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  ops.releasedir = op_releasedir;
  ops.fsyncdir = op_fsyncdir;
  ops.statfs = op_statfs;
  ops.setxattr = op_setxattr;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.removexattr = op_removexattr;
  ops.access = op_access;
  ops.create = op_create;
  ops.flock = op_flock;
  ops.fallocate = op_fallocate;
  ops.copy_file_range = op_copy_file_range;
  ops.lseek = op_lseek;
  return ops;
}

const fuse_lowlevel_ops kOps = make_ops();

}  // namespace

const fuse_lowlevel_ops& lowlevel_ops() noexcept { return kOps; }

}  // namespace fsysfs::fusefs
