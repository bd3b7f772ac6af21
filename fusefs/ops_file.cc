// Open files: open, create, read, write, flush, release, fsync, fallocate,
// copy_file_range, lseek, flock.
//
// Writes and syncs go through the engine and are answered from its completion: on the
// worker itself when the engine runs them inline (inline_io=all, the default), else on an
// engine thread while the worker goes back to reading requests. Reads splice straight
// from the backing fd.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <span>
#include <vector>

#include "fusefs/crashsim.h"
#include "fusefs/creds.h"
#include "fusefs/device_io.h"
#include "fusefs/filesystem.h"
#include "fusefs/ops.h"
#include "fusefs/transport/uring_transport.h"

namespace fsysfs::fusefs {
namespace {

// The flags a backing fd is opened with for a FUSE open/create with `flags`.
int backing_flags(const Filesystem& fs, int flags) noexcept {
  // Creation was settled by lookup/create; O_NOFOLLOW would refuse the proc magic link.
  flags &= ~(O_CREAT | O_EXCL | O_NOCTTY | O_NOFOLLOW);
  // The kernel positions appends itself (at its i_size) and sends every write with an
  // explicit offset, including mmap writeback of pages of an O_APPEND file; a backing
  // O_APPEND would move all of those to the end of the file.
  flags &= ~O_APPEND;
  // Synchronous writes become linked write+sync chains on the engine (FileHandle).
  flags &= ~(O_SYNC | O_DSYNC);
  if (fs.writeback()) {
    // The kernel's page cache reads around partial-page writes.
    if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
  }
  return flags | O_CLOEXEC;
}

fuse_bufvec mem_bufvec(void* mem, size_t size) noexcept {
  fuse_bufvec v;
  std::memset(&v, 0, sizeof v);
  v.count = 1;
  v.buf[0].size = size;
  v.buf[0].mem = mem;
  v.buf[0].fd = -1;
  return v;
}

void reply_write_result(fuse_req_t req, int64_t res) noexcept {
  if (res < 0) {
    reply_err(req, static_cast<int>(-res));
  } else {
    fuse_reply_write(req, static_cast<size_t>(res));
  }
}

// Closing a duplicate surfaces the errors close() would report (NFS-style backing
// filesystems write back on close) without giving up the handle. Returns an errno or 0.
int close_dup_error(int fd) noexcept {
  int dup = ::dup(fd);
  if (dup < 0) return errno;
  return ::close(dup) != 0 ? errno : 0;
}

// What a write through `h` is chained with: the open's O_DSYNC/O_SYNC, or fdatasync in
// strict mode.
engine::SyncKind write_sync_of(Filesystem& fs, const FileHandle& h) noexcept {
  if (h.write_sync == engine::SyncKind::kNone && fs.durability() == Durability::kStrict) {
    return engine::SyncKind::kData;
  }
  return h.write_sync;
}

// After a data change that bypassed the engine's write path (fallocate, copy_file_range):
// makes it durable when a write through `h` would have been, then calls `done` with an
// errno or 0 (at once, or from the sync's completion).
void sync_after_change(Filesystem& fs, FileHandle& h,
                       const std::function<void(int)>& done) noexcept {
  const engine::SyncKind kind = write_sync_of(fs, h);
  if (kind == engine::SyncKind::kNone) {
    done(0);
    return;
  }
  const uint64_t sample = h.inode->data.sample();
  CrashSim* cs = fs.crashsim();
  const uint64_t seq = cs != nullptr ? cs->sync_point(h.inode->fd.get()) : 0;
  const int rc = guarded([&] {
    fs.engine().sync(*h.file, kind, [&h, sample, done, cs, seq](int64_t res) noexcept {
      if (res >= 0) h.inode->data.durable(sample);
      if (res >= 0 && cs != nullptr) cs->file_synced(h.inode->fd.get(), seq);
      done(res < 0 ? static_cast<int>(-res) : 0);
    });
    return 0;
  });
  if (rc < 0) done(-rc);
}

// A write the backing fs refused as full (`res`; started after space().sample() gave
// `sample`), made again with the engine's blocking call while removed files give space back
// (space_return.h). Where waiting is allowed.
int64_t write_while_full(Filesystem& fs, engine::File& file, std::span<const std::byte> data,
                         off_t off, engine::SyncKind sync, int64_t res, uint64_t sample) noexcept {
  return fs.attempt_while_full(static_cast<int>(res), sample, [&] {
    return guarded([&] {
      // At most one request's payload (max_write): the count fits.
      return static_cast<int>(fs.engine().write(file, data, static_cast<uint64_t>(off), sync));
    });
  });
}

// Set while do_write hands a write to the engine on this thread. A completion that runs
// inside that call (the engine ran the write inline) and finds the backing fs full leaves
// the next try to do_write, which may wait, rather than waiting inside the engine.
struct FullInline {
  bool full = false;
  int64_t res = 0;
};
thread_local FullInline* t_submitting = nullptr;

class Submitting {
 public:
  explicit Submitting(FullInline* f) noexcept { t_submitting = f; }
  ~Submitting() { t_submitting = nullptr; }
  Submitting(const Submitting&) = delete;
  Submitting& operator=(const Submitting&) = delete;
};

// Hands the write to the engine; returns 0 once the completion owns the reply, or -errno
// when nothing was submitted (the caller replies). `writepage`: the kernel is writing back
// its cached pages (FUSE_WRITE_CACHE), with sizes and offsets of its own.
int do_write(fuse_req_t req, Filesystem& fs, FileHandle& h, fuse_bufvec* bufv, off_t off,
             bool writepage) noexcept {
  return guarded([&] {
    engine::Engine& eng = fs.engine();
    engine::File& file = writepage && h.cached_file ? *h.cached_file : *h.file;
    const size_t len = fuse_buf_size(bufv);
    // In strict mode (and for O_DSYNC/O_SYNC opens) the write is a linked write+sync
    // chain: durable when answered.
    const engine::SyncKind sync = write_sync_of(fs, h);
    const bool chained = sync != engine::SyncKind::kNone;
    const uint64_t sample = chained ? h.inode->data.sample() : 0;
    // crashsim: the bytes this write replaces are saved before it is made; a durable
    // write's sync covers it and whatever was written before it started.
    CrashSim* cs = fs.crashsim();
    uint64_t ticket = 0;
    uint64_t seq = 0;
    if (cs != nullptr) {
      seq = cs->sync_point(h.inode->fd.get());
      if (int rc = cs->before_write(h.inode->fd.get(), static_cast<uint64_t>(off), len, &ticket);
          rc < 0) {
        return rc;
      }
    }
    auto finish = [&h, chained, sample, cs, ticket, seq](int64_t res) noexcept {
      if (chained && res >= 0) {
        h.inode->data.durable(sample);
      } else {
        h.inode->data.changed();
      }
      if (res > 0) h.wrote.store(true, std::memory_order_relaxed);
      if (cs != nullptr) {
        cs->changed(ticket);
        if (chained && res >= 0) cs->file_synced(h.inode->fd.get(), seq, ticket);
      }
    };
    std::span<const std::byte> data;
    std::vector<std::byte> copy;
    const fuse_buf& first = bufv->buf[bufv->idx];
    if (bufv->count - bufv->idx == 1 && !(first.flags & FUSE_BUF_IS_FD)) {
      // One memory buffer (the usual case): the engine copies it into a registered
      // buffer, or writes it straight from here when it runs the write inline.
      data = {static_cast<const std::byte*>(first.mem) + bufv->off, len};
    } else {
      // Several buffers or a pipe (only with SPLICE_READ, which init turns off).
      copy.resize(len);
      fuse_bufvec dst = mem_bufvec(copy.data(), len);
      ssize_t n = fuse_buf_copy(&dst, bufv, FUSE_BUF_NO_SPLICE);
      if (n < 0) return static_cast<int>(n);
      copy.resize(static_cast<size_t>(n));
      data = copy;
    }
    if (h.direct && !writepage) {
      // The kernel does not drop pages cached while an asynchronous direct write was in
      // flight (a concurrent buffered read or mmap fault fills them with the old bytes), as
      // a native filesystem does when the write completes: drop them here, once the new
      // bytes are in BACKING and before the write is answered. Where waiting for other
      // requests is allowed, since the invalidation waits for the reads that fill those
      // pages and may need the engine to write dirty ones back.
      auto direct = [req, &fs, &h, &file, data, owned = std::move(copy), off, sync,
                     finish]() noexcept {
        const std::span<const std::byte> bytes = owned.empty() ? data : std::span(owned);
        const uint64_t sample = fs.space().sample();
        int64_t res = fs.engine().write(file, bytes, off, sync);
        if (res < 0 && SpaceReturn::full(static_cast<int>(res)) && fs.space().may_return(sample)) {
          res = write_while_full(fs, file, bytes, off, sync, res, sample);
        }
        finish(res);
        if (res > 0) fs.invalidate_pages(*h.inode, off, res);
        reply_write_result(req, res);
      };
      if (fs.run_blocking(std::move(direct))) return 0;
      if (cs != nullptr) cs->changed(ticket);
      return -ENOMEM;
    }
    // A write refused as full tries again where waiting is allowed: on this thread after
    // the call when the engine ran it here, from a queue's owner on the blocking pool (the
    // bytes are the request's own, valid until it is answered). An engine thread has
    // neither: the error is the answer.
    FullInline full_inline;
    const uint64_t space_sample = fs.space().sample();
    try {
      Submitting submitting(&full_inline);
      eng.write(file, data, off, sync,
                [req, &fs, &file, data, in_request = copy.empty(), off, sync, finish,
                 sample = space_sample, token = &full_inline](int64_t res) noexcept {
                  if (res < 0 && SpaceReturn::full(static_cast<int>(res)) &&
                      fs.space().may_return(sample)) {
                    if (t_submitting == token) {
                      token->full = true;
                      token->res = res;
                      return;
                    }
                    if (in_request && RingQueue::on_owner_thread() &&
                        fs.run_blocking([req, &fs, &file, data, off, sync, finish, res, sample] {
                          const int64_t again =
                              write_while_full(fs, file, data, off, sync, res, sample);
                          finish(again);
                          reply_write_result(req, again);
                        })) {
                      return;
                    }
                  }
                  finish(res);
                  reply_write_result(req, res);
                });
    } catch (...) {
      if (cs != nullptr) cs->changed(ticket);
      throw;
    }
    if (full_inline.full) {
      const int64_t res =
          write_while_full(fs, file, data, off, sync, full_inline.res, space_sample);
      finish(res);
      reply_write_result(req, res);
    }
    return 0;
  });
}

// FALLOCATE and COPY_FILE_RANGE carry no kill flag: before either changes data, clears
// suid/sgid as a native filesystem does when the caller lacks CAP_FSETID. The kernel's own
// file_modified() reaches us only as a SETATTR without attributes (which clears what a
// chown by root would), and not at all once it has marked the inode as having nothing to
// clear; so the caller's uid stands in for the capability, as it does for the identity
// switch (creds.h: a non-root fsuid drops it). Returns 0 or -errno.
int kill_privs_of_caller(fuse_req_t req, FileHandle& h) noexcept {
  if (fuse_req_ctx(req)->uid == 0) return 0;
  return clear_suidgid(req, *h.inode, h.fd());
}

// Whether the kernel may keep the inode's cached pages for this new open (page_cache.h).
// Under strictatime every open's reads must reach BACKING, which moves atime for them: the
// kernel serves cached pages without asking us.
bool keep_page_cache(Filesystem& fs, FileHandle& h) noexcept {
  struct stat st;
  if (!fs.config().keep_cache || reads_move_atime(fs.mount_flags())) return false;
  if (::fstat(h.fd(), &st) != 0) return false;
  return h.inode->page_cache.keep_at_open(st);
}

}  // namespace

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept {
  Filesystem& fs = fs_of(req);
  Inode& inode = fs.inode(ino);
  int rc = -fs.inject(FaultOp::kOpen, inode);
  UniqueFd fd;
  if (rc == 0) {
    fs.follow_mount();
    const int opened = fs.open_backing(inode, backing_flags(fs, fi->flags));
    if (opened < 0) {
      rc = opened;
    } else {
      fd.reset(opened);
    }
    if (fi->flags & O_TRUNC) inode.data.changed();
  }
  if (rc < 0) {
    // answered below
  } else if (FileHandle* h = fs.add_file(std::move(fd), inode, fi->flags); h == nullptr) {
    rc = -ENOMEM;
  } else {
    fi->fh = reinterpret_cast<uint64_t>(h);
    fi->keep_cache = keep_page_cache(fs, *h) ? 1 : 0;
  }
  if (rc < 0) {
    reply_err(req, -rc);
  } else if (fuse_reply_open(req, fi) != 0) {
    fs.release_file(&file_of(fi));  // interrupted: the kernel will not release it
  }
}

namespace {

// CREATE's backing open (as the caller): the new file's fd, or -errno.
int create_backing(fuse_req_t req, Inode& dir, const char* name, mode_t mode,
                   int open_flags) noexcept {
  Filesystem& fs = fs_of(req);
  CrashSim* cs = fs.crashsim();
  CredsGuard creds(req, fs.posix_acl());
  if (creds.status() < 0) return creds.status();
  fs.follow_mount();
  int flags = backing_flags(fs, open_flags) | (open_flags & O_EXCL) | O_CREAT | O_NOFOLLOW;
  // crashsim must know whether the name is new (its creation is undone) or the file was
  // there (an O_TRUNC of it is a size change to undo): O_EXCL first tells.
  const bool probe = cs != nullptr && (flags & O_EXCL) == 0;
  if (probe) flags |= O_EXCL;
  const int noatime = fs.create_flags();
  UniqueFd fd(::openat(dir.fd.get(), name, flags | noatime, creds.mode(mode)));
  // EPERM for O_NOATIME: an existing file of another owner (see open_backing).
  if (!fd && errno == EPERM && noatime != 0) {
    fd.reset(::openat(dir.fd.get(), name, flags, creds.mode(mode)));
  }
  bool created = true;
  if (!fd && errno == EEXIST && probe) {
    created = false;
    flags &= ~(O_EXCL | O_CREAT | O_TRUNC);
    fd.reset(::openat(dir.fd.get(), name, flags | noatime));
    if (!fd && errno == EPERM && noatime != 0) fd.reset(::openat(dir.fd.get(), name, flags));
    if (fd && (open_flags & O_TRUNC)) {
      uint64_t ticket = 0;
      int rc = cs->before_truncate(fd.get(), 0, &ticket);
      if (rc == 0 && ::ftruncate(fd.get(), 0) != 0) rc = -errno;
      cs->changed(ticket);
      if (rc < 0) return rc;
    }
  }
  if (!fd) return -errno;
  if (created && cs != nullptr) cs->created(dir.fd.get(), name, false);
  return fd.release();
}

// Answers CREATE once the backing file is open (`opened`: its fd, or -errno).
void reply_create(fuse_req_t req, Inode& dir, int opened, fuse_file_info open) noexcept {
  Filesystem& fs = fs_of(req);
  if (opened < 0) {
    reply_err(req, -opened);
    return;
  }
  UniqueFd fd(opened);
  fuse_entry_param e;
  // The O_PATH fd comes from the opened file itself, not from the name, which another
  // process may already have replaced.
  UniqueFd path_fd(::open(ProcPath(fd.get()).c_str(), O_PATH | O_CLOEXEC));
  int rc = path_fd ? fs.entry_for(std::move(path_fd), &e) : -errno;
  if (rc == 0) {
    if (FileHandle* h = fs.add_file(std::move(fd), fs.inode(e.ino), open.flags); h == nullptr) {
      fs.inodes().forget(e.ino, 1);
      rc = -ENOMEM;
    } else {
      open.fh = reinterpret_cast<uint64_t>(h);
      open.keep_cache = keep_page_cache(fs, *h) ? 1 : 0;
    }
  }
  if (rc < 0) {
    reply_err(req, -rc);
    return;
  }
  // Answered once dirsync (if on) made the new name durable.
  fs.sync_parents(dir, nullptr, [req, e, open](int err) noexcept {
    Filesystem& filesystem = fs_of(req);
    if (err < 0 || fuse_reply_create(req, &e, &open) != 0) {
      filesystem.release_file(&file_of(&open));
      filesystem.inodes().forget(e.ino, 1);
      if (err < 0) reply_err(req, -err);
    }
  });
}

}  // namespace

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               fuse_file_info* fi) noexcept {
  Filesystem& fs = fs_of(req);
  Inode& dir = fs.inode(parent);
  if (int err = fs.inject(FaultOp::kCreate, dir, name); err != 0) {
    reply_err(req, err);
    return;
  }
  // `fi` lives only as long as this call: the answer keeps a copy.
  fs.with_space([req, &dir, name, mode,
                 flags = fi->flags] { return create_backing(req, dir, name, mode, flags); },
                [req, &dir, open = *fi](int opened) { reply_create(req, dir, opened, open); });
}

void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) noexcept {
  FileHandle& h = file_of(fi);
  if (int err = fs_of(req).inject(FaultOp::kRead, *h.inode); err != 0) {
    reply_err(req, err);
    return;
  }
  if (std::span<std::byte> payload = UringTransport::reply_buffer(); !payload.empty()) {
    // On the io_uring transport the reply is read straight into the request's payload
    // buffer, from which the commit sends it (there is no /dev/fuse to splice into), by a
    // READ on the queue's ring: a read that misses the page cache does not hold up the
    // queue's other requests.
    std::span<std::byte> into = payload.first(std::min(size, payload.size()));
    const int rc = guarded([&] {
      fs_of(req).engine().read(*h.file, into, static_cast<uint64_t>(off),
                               [req, into](int64_t res) noexcept {
                                 if (res < 0) {
                                   reply_err(req, static_cast<int>(-res));
                                 } else {
                                   fuse_reply_buf(req, reinterpret_cast<const char*>(into.data()),
                                                  static_cast<size_t>(res));
                                 }
                               });
      return 0;
    });
    if (rc < 0) reply_err(req, -rc);
    return;
  }
  fuse_bufvec buf;
  std::memset(&buf, 0, sizeof buf);
  buf.count = 1;
  buf.buf[0].size = size;
  buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  buf.buf[0].fd = h.fd();
  buf.buf[0].pos = off;
  // Replies on every path, errors included.
  fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void op_write_buf(fuse_req_t req, fuse_ino_t, fuse_bufvec* bufv, off_t off,
                  fuse_file_info* fi) noexcept {
  Filesystem& fs = fs_of(req);
  FileHandle& h = file_of(fi);
  int rc = -fs.inject(FaultOp::kWrite, *h.inode);
  if (rc == 0 && fs.kills_privs() && request_kills_suidgid()) {
    rc = clear_suidgid(req, *h.inode, h.fd());
  }
  if (rc == 0) rc = do_write(req, fs, h, bufv, off, fi->writepage != 0);
  if (rc < 0) reply_write_result(req, rc);
}

void op_flush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) noexcept {
  Filesystem& fs = fs_of(req);
  FileHandle& h = file_of(fi);
  // close(2) waits for FLUSH, not for the RELEASE that may follow.
  fs.space().closing(h.inode->dev, h.inode->ino);
  // Answers close(): errors the backing fs reports at close, else a sync error of the
  // inode this handle has not seen yet.
  auto finish = [req, &h](int64_t res) noexcept {
    int err = res < 0 ? static_cast<int>(-res) : 0;
    if (err != 0) {
      h.inode->sync_errors.record(err, h.errors_seen);
    } else {
      err = close_dup_error(h.fd());
      if (err == 0) err = h.inode->sync_errors.check(h.errors_seen);
    }
    reply_err(req, err);
  };
  if (int err = fs.inject(FaultOp::kFlush, *h.inode); err != 0) {
    finish(-err);
    return;
  }
  // With the writeback cache the kernel may have written this handle's data through
  // another one, so any writable handle counts.
  if (fs.durability() == Durability::kClose && h.writable &&
      (h.wrote.load(std::memory_order_relaxed) || fs.writeback()) && !h.inode->data.clean()) {
    fs.fuse_stats().count(SyncEvent::kClose);
    const uint64_t sample = h.inode->data.sample();
    CrashSim* cs = fs.crashsim();
    const uint64_t seq = cs != nullptr ? cs->sync_point(h.inode->fd.get()) : 0;
    int rc = guarded([&] {
      fs.engine().sync(*h.file, engine::SyncKind::kData,
                       [finish, &h, sample, cs, seq](int64_t res) noexcept {
                         if (res >= 0) h.inode->data.durable(sample);
                         if (res >= 0 && cs != nullptr) cs->file_synced(h.inode->fd.get(), seq);
                         finish(res);
                       });
      return 0;
    });
    if (rc < 0) finish(rc);
    return;
  }
  finish(0);
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) noexcept {
  Filesystem& fs = fs_of(req);
  FileHandle& h = file_of(fi);
  // Every write through this handle has been answered: the kernel's cache has them.
  struct stat st;
  if (fs.config().keep_cache && h.wrote.load(std::memory_order_relaxed) &&
      ::fstat(h.fd(), &st) == 0) {
    h.inode->page_cache.written(st);
  }
  fs.release_file(&h);
  reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) noexcept {
  FileHandle& h = file_of(fi);
  fs_of(req).sync_and_reply(req, *h.inode, *h.file, &h, datasync);
}

void op_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t offset, off_t length,
                  fuse_file_info* fi) noexcept {
  FileHandle& h = file_of(fi);
  fs_of(req).with_space(
      [req, &h, mode, offset, length] {
        int rc = kill_privs_of_caller(req, h);
        CrashSim* cs = fs_of(req).crashsim();
        uint64_t ticket = 0;
        if (rc == 0 && cs != nullptr) {
          rc = cs->before_write(h.inode->fd.get(), static_cast<uint64_t>(offset),
                                static_cast<uint64_t>(length), &ticket);
        }
        if (rc == 0 && ::fallocate(h.fd(), mode, offset, length) != 0) rc = -errno;
        if (cs != nullptr) cs->changed(ticket);
        h.inode->data.changed();
        return rc;
      },
      [req, &h](int rc) {
        if (rc < 0) {
          reply_err(req, -rc);
          return;
        }
        sync_after_change(fs_of(req), h, [req](int err) noexcept { reply_err(req, err); });
      });
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t, off_t off_in, fuse_file_info* fi_in, fuse_ino_t,
                        off_t off_out, fuse_file_info* fi_out, size_t len, int flags) noexcept {
  FileHandle& src = file_of(fi_in);
  FileHandle& dst = file_of(fi_out);
  // A copy may be short: at most 1 GiB, so that its count fits the retry's int.
  len = std::min(len, size_t{1} << 30);
  fs_of(req).with_space(
      [req, &src, &dst, off_in, off_out, len, flags] {
        int err = kill_privs_of_caller(req, dst);
        CrashSim* cs = fs_of(req).crashsim();
        uint64_t ticket = 0;
        if (err == 0 && cs != nullptr) {
          err = cs->before_write(dst.inode->fd.get(), static_cast<uint64_t>(off_out), len, &ticket);
        }
        ssize_t n = 0;
        if (err == 0) {
          loff_t in = off_in;
          loff_t out = off_out;
          n = ::copy_file_range(src.fd(), &in, dst.fd(), &out, len, static_cast<unsigned>(flags));
          if (n < 0) err = -errno;
        }
        if (cs != nullptr) cs->changed(ticket);
        dst.inode->data.changed();
        return err < 0 ? err : static_cast<int>(n);
      },
      [req, &dst](int n) {
        if (n < 0) {
          reply_err(req, -n);
          return;
        }
        sync_after_change(fs_of(req), dst, [req, n](int sync_err) noexcept {
          if (sync_err != 0) {
            reply_err(req, sync_err);
          } else {
            fuse_reply_write(req, static_cast<size_t>(n));
          }
        });
      });
}

void op_lseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, fuse_file_info* fi) noexcept {
  off_t res = ::lseek(file_of(fi).fd(), off, whence);
  if (res < 0) {
    reply_err(req, errno);
  } else {
    fuse_reply_lseek(req, res);
  }
}

void op_flock(fuse_req_t req, fuse_ino_t, fuse_file_info* fi, int op) noexcept {
  // Each FUSE open has its own backing open file description, which is exactly what
  // flock() locks belong to.
  int rc = ::flock(file_of(fi).fd(), op) == 0 ? 0 : errno;
  reply_err(req, rc);
}

}  // namespace fsysfs::fusefs
