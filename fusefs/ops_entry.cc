// Names: lookup, forget, and the ops that create, remove or move a name.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fusefs/crashsim.h"
#include "fusefs/creds.h"
#include "fusefs/filesystem.h"
#include "fusefs/ops.h"

namespace fsysfs::fusefs {
namespace {

void reply_entry_or_err(fuse_req_t req, int rc, const fuse_entry_param& e) noexcept {
  if (rc < 0) {
    reply_err(req, -rc);
  } else if (fuse_reply_entry(req, &e) != 0 && e.ino != 0) {
    // The kernel did not get the entry (the request was interrupted), so it will never
    // forget the reference we took for it.
    fs_of(req).inodes().forget(e.ino, 1);
  }
}

// Answers an op that created `name` in `parent` (rc: its result): with the name's entry,
// once dirsync (if on) made `parent` durable. The lookup needs no identity of the creator,
// and happens now, while `name` (the request's memory) is still valid. crashsim records
// the new name (`is_dir`: a directory).
void reply_created(fuse_req_t req, int rc, Inode& parent, const char* name,
                   bool is_dir = false) noexcept {
  Filesystem& fs = fs_of(req);
  if (rc == 0 && fs.crashsim() != nullptr) fs.crashsim()->created(parent.fd.get(), name, is_dir);
  fuse_entry_param e;
  if (rc == 0) rc = fs.lookup(parent, name, &e);
  if (rc < 0) {
    reply_err(req, -rc);
    return;
  }
  fs.sync_parents(parent, nullptr, [req, e](int err) noexcept {
    if (err < 0) fs_of(req).inodes().forget(e.ino, 1);
    reply_entry_or_err(req, err, e);
  });
}

// Answers an op that removed or moved names: once dirsync (if on) made the parents durable.
void reply_changed(fuse_req_t req, int rc, Inode& parent, Inode* other = nullptr) noexcept {
  if (rc < 0) {
    reply_err(req, -rc);
    return;
  }
  fs_of(req).sync_parents(parent, other, [req](int err) noexcept { reply_err(req, -err); });
}

int do_mknod(fuse_req_t req, Inode& parent, const char* name, mode_t mode, dev_t rdev) noexcept {
  CredsGuard creds(req, fs_of(req).posix_acl());
  if (creds.status() < 0) return creds.status();
  mode = creds.mode(mode);
  int rc = S_ISDIR(mode) ? ::mkdirat(parent.fd.get(), name, mode & ~S_IFMT)
                         : ::mknodat(parent.fd.get(), name, mode, rdev);
  return rc == 0 ? 0 : -errno;
}

// mknod and mkdir: the node is made as the caller, again if the backing fs was full while
// removed files were giving space back.
void make_node(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               dev_t rdev) noexcept {
  Filesystem& fs = fs_of(req);
  Inode& dir = fs.inode(parent);
  const bool is_dir = S_ISDIR(mode);
  if (int err = fs.inject(is_dir ? FaultOp::kMkdir : FaultOp::kMknod, dir, name); err != 0) {
    reply_err(req, err);
    return;
  }
  fs.with_space([req, &dir, name, mode, rdev] { return do_mknod(req, dir, name, mode, rdev); },
                [req, &dir, name, is_dir](int rc) { reply_created(req, rc, dir, name, is_dir); });
}

}  // namespace

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  Filesystem& fs = fs_of(req);
  fuse_entry_param e;
  // The kernel looks "." up only to decode a file handle whose inode it no longer holds:
  // `parent` may be a node id it has forgotten, which fs.inode() must never be given.
  const bool decode = std::strcmp(name, ".") == 0;
  int rc = decode ? fs.lookup_node(parent, &e) : fs.lookup(fs.inode(parent), name, &e);
  // A missing name as an entry with node id 0: the kernel keeps the negative dentry for
  // the timeout. It drops it itself when a request through the mount creates the name
  // (CREATE, MKNOD, MKDIR, SYMLINK, LINK, RENAME instantiate it), so only a name created
  // directly in BACKING is seen late, as a removed one is with entry_timeout.
  if (rc == -ENOENT && !decode && fs.config().negative_timeout > 0) {
    fs.fuse_stats().count_error(ENOENT);  // what the caller gets, as an error reply counts
    std::memset(&e, 0, sizeof e);
    e.entry_timeout = fs.config().negative_timeout;
    rc = 0;
  }
  reply_entry_or_err(req, rc, e);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) noexcept {
  fs_of(req).inodes().forget(ino, nlookup);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) noexcept {
  InodeTable& table = fs_of(req).inodes();
  for (size_t i = 0; i < count; ++i) table.forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              dev_t rdev) noexcept {
  make_node(req, parent, name, mode, rdev);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) noexcept {
  make_node(req, parent, name, S_IFDIR | mode, 0);
}

void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) noexcept {
  Filesystem& fs = fs_of(req);
  Inode& dir = fs.inode(parent);
  if (int err = fs.inject(FaultOp::kSymlink, dir, name); err != 0) {
    reply_err(req, err);
    return;
  }
  fs.with_space(
      [req, link, &dir, name] {
        CredsGuard creds(req);
        if (creds.status() < 0) return creds.status();
        return ::symlinkat(link, dir.fd.get(), name) == 0 ? 0 : -errno;
      },
      [req, &dir, name](int rc) { reply_created(req, rc, dir, name); });
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) noexcept {
  Filesystem& fs = fs_of(req);
  Inode& inode = fs.inode(ino);
  Inode& dir = fs.inode(newparent);
  if (int err = fs.inject(FaultOp::kLink, dir, newname); err != 0) {
    reply_err(req, err);
    return;
  }
  fs.with_space(
      [req, &inode, &dir, newname] {
        // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH, which the caller's identity
        // lacks; following the proc magic link needs nothing and ends at the inode, symlinks
        // included.
        CredsGuard creds(req);
        if (creds.status() < 0) return creds.status();
        return ::linkat(AT_FDCWD, ProcPath(inode.fd.get()).c_str(), dir.fd.get(), newname,
                        AT_SYMLINK_FOLLOW) == 0
                   ? 0
                   : -errno;
      },
      [req, &dir, newname](int rc) { reply_created(req, rc, dir, newname); });
}

namespace {

// unlink and rmdir: crashsim first parks what the name leads to.
int remove_name(Filesystem& fs, Inode& dir, const char* name, int flags) noexcept {
  CrashSim* cs = fs.crashsim();
  uint64_t ticket = 0;
  if (cs != nullptr) {
    if (int rc = cs->before_remove(dir.fd.get(), name, &ticket); rc < 0) return rc;
  }
  if (::unlinkat(dir.fd.get(), name, flags) == 0) {
    fs.space().removed();
    return 0;
  }
  const int err = errno;
  if (cs != nullptr) cs->failed(ticket);
  return -err;
}

}  // namespace

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  Filesystem& fs = fs_of(req);
  Inode& dir = fs.inode(parent);
  int rc = -fs.inject(FaultOp::kUnlink, dir, name);
  if (rc == 0) rc = remove_name(fs, dir, name, 0);
  reply_changed(req, rc, dir);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept {
  Filesystem& fs = fs_of(req);
  Inode& dir = fs.inode(parent);
  int rc = -fs.inject(FaultOp::kRmdir, dir, name);
  if (rc == 0) rc = remove_name(fs, dir, name, AT_REMOVEDIR);
  reply_changed(req, rc, dir);
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags) noexcept {
  Filesystem& fs = fs_of(req);
  Inode& from = fs.inode(parent);
  Inode& to = fs.inode(newparent);
  if (int err = fs.inject(FaultOp::kRename, from, name); err != 0) {
    reply_err(req, err);
    return;
  }
  // A directory that grows needs space too.
  fs.with_space(
      [&fs, &from, name, &to, newname, flags] {
        CrashSim* cs = fs.crashsim();
        uint64_t ticket = 0;
        if (cs != nullptr) {
          if (int rc = cs->before_rename(from.fd.get(), name, to.fd.get(), newname, flags, &ticket);
              rc < 0) {
            return rc;
          }
        }
        if (::renameat2(from.fd.get(), name, to.fd.get(), newname, flags) != 0) {
          const int err = errno;
          if (cs != nullptr) cs->failed(ticket);
          return -err;
        }
        fs.space().removed();  // it may have replaced a file's last name
        return 0;
      },
      [req, &from, &to](int rc) { reply_changed(req, rc, from, &to); });
}

}  // namespace fsysfs::fusefs
