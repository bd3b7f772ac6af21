#include "fusefs/device_io.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <spdlog/spdlog.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "fusefs/filesystem.h"

namespace fsysfs::fusefs {
namespace {

struct ThreadState {
  bool kill_suidgid = false;
  // The unique of an INIT whose kernel offered FUSE_HANDLE_KILLPRIV_V2; its reply is
  // written by this thread too.
  uint64_t init_offering_killpriv = 0;
};
thread_local ThreadState tl;

template <class T>
bool read_at(const void* buf, size_t len, size_t off, T* out) noexcept {
  if (len < off + sizeof(T)) return false;
  std::memcpy(out, static_cast<const char*>(buf) + off, sizeof(T));
  return true;
}

void inspect_request(const void* buf, size_t len) noexcept {
  tl.kill_suidgid = false;
  fuse_in_header in;
  if (!read_at(buf, len, 0, &in)) return;
  const size_t body = sizeof(fuse_in_header);
  switch (in.opcode) {
    case FUSE_WRITE: {
      uint32_t flags = 0;
      if (read_at(buf, len, body + offsetof(fuse_write_in, write_flags), &flags)) {
        tl.kill_suidgid = (flags & FUSE_WRITE_KILL_SUIDGID) != 0;
      }
      break;
    }
    case FUSE_SETATTR: {
      uint32_t valid = 0;
      if (read_at(buf, len, body + offsetof(fuse_setattr_in, valid), &valid)) {
        tl.kill_suidgid = (valid & FATTR_SIZE) != 0 && (valid & FATTR_KILL_SUIDGID) != 0;
      }
      break;
    }
    case FUSE_INIT: {
      uint32_t flags = 0;
      if (read_at(buf, len, body + offsetof(fuse_init_in, flags), &flags) &&
          (flags & FUSE_HANDLE_KILLPRIV_V2) != 0) {
        tl.init_offering_killpriv = in.unique;
      }
      break;
    }
    default:
      break;
  }
}

// Adds FUSE_HANDLE_KILLPRIV_V2 to a successful INIT reply: iov[0] is the header, iov[1]
// the fuse_init_out that libfuse built (its own writable memory).
void accept_killpriv(Filesystem& fs, iovec* iov, int count) noexcept {
  fuse_out_header out;
  if (count < 2 || !read_at(iov[0].iov_base, iov[0].iov_len, 0, &out) ||
      out.unique != tl.init_offering_killpriv) {
    return;
  }
  tl.init_offering_killpriv = 0;
  constexpr size_t kFlags = offsetof(fuse_init_out, flags);
  uint32_t flags = 0;
  if (out.error != 0 || !read_at(iov[1].iov_base, iov[1].iov_len, kFlags, &flags)) return;
  flags |= FUSE_HANDLE_KILLPRIV_V2;
  std::memcpy(static_cast<char*>(iov[1].iov_base) + kFlags, &flags, sizeof flags);
  fs.set_kills_privs(true);
  fs.log().info("init: the daemon clears suid/sgid on write and truncate (killpriv v2)");
}

ssize_t device_read(int fd, void* buf, size_t len, void*) {
  const ssize_t n = ::read(fd, buf, len);
  if (n > 0) {
    const int saved = errno;
    inspect_request(buf, static_cast<size_t>(n));
    errno = saved;
  }
  return n;
}

ssize_t device_writev(int fd, iovec* iov, int count, void* userdata) {
  if (tl.init_offering_killpriv != 0) {
    accept_killpriv(*static_cast<Filesystem*>(userdata), iov, count);
  }
  return ::writev(fd, iov, count);
}

// Read replies splice from the backing fd; libfuse offers that only with this hook.
ssize_t device_splice_send(int fdin, off_t* offin, int fdout, off_t* offout, size_t len,
                           unsigned int flags, void*) {
  return ::splice(fdin, offin, fdout, offout, len, flags);
}

}  // namespace

bool request_kills_suidgid() noexcept { return tl.kill_suidgid; }

int use_device_io(fuse_session* se) noexcept {
  fuse_custom_io io{};
  io.writev = device_writev;
  io.read = device_read;
  io.splice_send = device_splice_send;
  return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

}  // namespace fsysfs::fusefs
