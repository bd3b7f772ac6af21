// Directories: opendir, readdir, readdirplus, releasedir, fsyncdir.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "fusefs/control.h"
#include "fusefs/filesystem.h"
#include "fusefs/ops.h"

namespace fsysfs::fusefs {
namespace {

bool is_dot_or_dotdot(const char* name) noexcept {
  return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

// Fills `buf` with entries starting at the kernel's offset `off`. An entry's offset is the
// stream position after it (its d_off), so the kernel can resume or seek to any entry.
// With `plus`, every entry except "." and ".." takes a lookup reference, and one that does
// not fit is given back and kept for the next call.
int do_readdir(Filesystem& fs, Inode& dir_inode, DirHandle& dh, off_t off, bool plus,
               std::vector<char>& buf, size_t* used) noexcept {
  std::lock_guard lock(dh.mu);
  if (off != dh.offset) {
    seekdir(dh.dir, off);
    dh.offset = off;
    dh.pending = nullptr;
  }
  size_t pos = 0;
  int err = 0;
  while (true) {
    struct dirent* d = dh.pending;
    dh.pending = nullptr;
    if (d == nullptr) {
      errno = 0;
      d = readdir(dh.dir);
      if (d == nullptr) {
        err = errno;  // 0 at the end of the directory
        break;
      }
    }
    if (is_reserved_name(fs, dir_inode, d->d_name)) {
      dh.offset = d->d_off;  // hidden: the control file's name, the crash simulation's dir
      continue;
    }
    size_t left = buf.size() - pos;
    size_t n;
    if (plus) {
      fuse_entry_param e;
      std::memset(&e, 0, sizeof e);
      bool counted = false;
      if (is_dot_or_dotdot(d->d_name)) {
        // No lookup reference: a zero ino tells the kernel not to instantiate the entry.
        e.attr.st_ino = d->d_ino;
        e.attr.st_mode = DTTOIF(d->d_type);
      } else {
        int rc = fs.lookup(dir_inode, d->d_name, &e);
        if (rc == -ENOENT) {
          dh.offset = d->d_off;  // removed since readdir saw it
          continue;
        }
        if (rc < 0) {
          err = -rc;
          dh.pending = d;  // retried by the next call
          break;
        }
        counted = true;
      }
      n = fuse_add_direntry_plus(nullptr, buf.data() + pos, left, d->d_name, &e, d->d_off);
      if (n > left) {
        if (counted) fs.inodes().forget(e.ino, 1);
        dh.pending = d;
        break;
      }
    } else {
      struct stat st;
      std::memset(&st, 0, sizeof st);
      st.st_ino = d->d_ino;
      st.st_mode = DTTOIF(d->d_type);
      n = fuse_add_direntry(nullptr, buf.data() + pos, left, d->d_name, &st, d->d_off);
      if (n > left) {
        dh.pending = d;
        break;
      }
    }
    pos += n;
    dh.offset = d->d_off;
  }
  *used = pos;
  // An error after some entries is reported on the next call, once they are consumed.
  if (err != 0 && pos == 0) return -err;
  return 0;
}

void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
                    bool plus) noexcept {
  Filesystem& fs = fs_of(req);
  std::vector<char> buf;
  size_t used = 0;
  int rc = guarded([&] {
    buf.resize(size);
    return do_readdir(fs, fs.inode(ino), dir_of(fi), off, plus, buf, &used);
  });
  if (rc < 0) {
    reply_err(req, -rc);
  } else {
    fuse_reply_buf(req, buf.data(), used);
  }
}

}  // namespace

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  Filesystem& fs = fs_of(req);
  int rc = guarded([&] {
    fs.follow_mount();
    const int opened = fs.open_backing(fs.inode(ino), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (opened < 0) return opened;
    UniqueFd fd(opened);
    auto dh = std::make_unique<DirHandle>();
    dh->dir = fdopendir(fd.get());
    if (dh->dir == nullptr) return -errno;
    fd.release();  // the DIR owns it now
    DirHandle* raw = fs.add_dir(std::move(dh));
    if (raw == nullptr) return -ENOMEM;
    fi->fh = reinterpret_cast<uint64_t>(raw);
    // cache=always: the kernel keeps the listing across opens (FOPEN_CACHE_DIR with
    // FOPEN_KEEP_CACHE) and drops it when the directory changes through the mount (its
    // i_version) or its mtime does. Not in auto: a change made directly in BACKING within
    // the same mtime tick as the listing would never be seen. Not under strictatime, where
    // every listing must reach BACKING to move its access time.
    const MountFlags mf = fs.mount_flags();
    if (fs.config().cache == CacheMode::kAlways && (!reads_move_atime(mf) || mf.nodiratime)) {
      fi->cache_readdir = 1;
      fi->keep_cache = 1;
    }
    return 0;
  });
  if (rc < 0) {
    reply_err(req, -rc);
  } else if (fuse_reply_open(req, fi) != 0) {
    fs.release_dir(&dir_of(fi));  // the kernel will never release it
  }
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                fuse_file_info* fi) noexcept {
  readdir_common(req, ino, size, off, fi, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    fuse_file_info* fi) noexcept {
  readdir_common(req, ino, size, off, fi, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) noexcept {
  fs_of(req).release_dir(&dir_of(fi));
  reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) noexcept {
  Filesystem& fs = fs_of(req);
  DirHandle& dh = dir_of(fi);
  engine::File* file = nullptr;
  int rc = guarded([&] {
    std::lock_guard lock(dh.mu);
    if (!dh.sync_file) {
      UniqueFd dup(::fcntl(dirfd(dh.dir), F_DUPFD_CLOEXEC, 0));
      if (!dup) return -errno;
      dh.sync_file = fs.engine().adopt(std::move(dup));
    }
    file = dh.sync_file.get();
    return 0;
  });
  if (rc < 0) {
    reply_err(req, -rc);
    return;
  }
  fs.sync_and_reply(req, fs.inode(ino), *file, nullptr, datasync);
}

}  // namespace fsysfs::fusefs
