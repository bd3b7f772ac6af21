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
#include "fusefs/transport/uring_abi.h"
#include "fusefs/transport/uring_transport.h"

namespace fsysfs::fusefs {
namespace {

struct ThreadState {
  bool kill_suidgid = false;
  // The INIT request this thread serves (0: none); its reply is written by this thread too.
  uint64_t init_unique = 0;
  uint64_t init_flags = 0;  // what the kernel offered, flags2 in the high half
};
thread_local ThreadState tl;

template <class T>
bool read_at(const void* buf, size_t len, size_t off, T* out) noexcept {
  if (len < off + sizeof(T)) return false;
  std::memcpy(out, static_cast<const char*>(buf) + off, sizeof(T));
  return true;
}

}  // namespace

void note_request(const void* buf, size_t len) noexcept {
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
      uint32_t flags2 = 0;
      if (!read_at(buf, len, body + offsetof(fuse_init_in, flags), &flags)) break;
      if ((flags & FUSE_INIT_EXT) != 0) {
        read_at(buf, len, body + offsetof(fuse_init_in, flags2), &flags2);
      }
      tl.init_unique = in.unique;
      tl.init_flags = flags | (uint64_t{flags2} << 32);
      break;
    }
    default:
      break;
  }
}

ssize_t device_read(int fd, void* buf, size_t len, void*) {
  const ssize_t n = ::read(fd, buf, len);
  if (n > 0) {
    const int saved = errno;
    note_request(buf, static_cast<size_t>(n));
    errno = saved;
  } else if (n < 0 && errno == ECONNABORTED) {
    errno = ENODEV;
  }
  return n;
}

namespace {

// Adds what libfuse 3.14 does not know to a successful INIT reply: FUSE_HANDLE_KILLPRIV_V2
// and FUSE_OVER_IO_URING, when the kernel offered them. iov[0] is the header, iov[1] the
// fuse_init_out that libfuse built (its own writable memory). Returns whether the reply
// accepts the io_uring transport.
bool complete_init_reply(Filesystem& fs, iovec* iov, int count) noexcept {
  fuse_out_header out;
  const uint64_t offered = tl.init_flags;
  if (count < 2 || !read_at(iov[0].iov_base, iov[0].iov_len, 0, &out) ||
      out.unique != tl.init_unique) {
    return false;
  }
  tl.init_unique = 0;
  char* reply = static_cast<char*>(iov[1].iov_base);
  constexpr size_t kFlags = offsetof(fuse_init_out, flags);
  constexpr size_t kFlags2 = offsetof(fuse_init_out, flags2);
  uint32_t flags = 0;
  if (out.error != 0 || !read_at(reply, iov[1].iov_len, kFlags, &flags)) return false;
  if ((offered & FUSE_HANDLE_KILLPRIV_V2) != 0) {
    flags |= FUSE_HANDLE_KILLPRIV_V2;
    std::memcpy(reply + kFlags, &flags, sizeof flags);
    fs.set_kills_privs(true);
    fs.log().info("init: the daemon clears suid/sgid on write and truncate (killpriv v2)");
  }
  const bool uring_offered = ((offered >> 32) & uring_abi::kInitFlags2OverIoUring) != 0;
  UringTransport* transport = fs.uring_transport();
  if (transport == nullptr) return false;
  uint32_t flags2 = 0;
  if (!uring_offered || (flags & FUSE_INIT_EXT) == 0 ||
      !read_at(reply, iov[1].iov_len, kFlags2, &flags2)) {
    fs.transport_fallback("the kernel did not offer FUSE over io_uring at INIT");
    return false;
  }
  flags2 |= uring_abi::kInitFlags2OverIoUring;
  std::memcpy(reply + kFlags2, &flags2, sizeof flags2);
  return true;
}

ssize_t iov_total(const iovec* iov, int count) noexcept {
  size_t n = 0;
  for (int i = 0; i < count; ++i) n += iov[i].iov_len;
  return static_cast<ssize_t>(n);
}

ssize_t device_writev(int fd, iovec* iov, int count, void* userdata) {
  Filesystem& fs = *static_cast<Filesystem*>(userdata);
  if (tl.init_unique != 0 && complete_init_reply(fs, iov, count)) {
    // The kernel switches to the rings once every queue has an entry, and holds new
    // requests until then: start them right after it has the reply.
    const ssize_t n = ::writev(fd, iov, count);
    if (n >= 0) fs.start_uring_transport();
    return n;
  }
  // A ring request may be answered before every queue has started.
  if (UringTransport* t = fs.uring_transport(); t != nullptr && t->commit(iov, count)) {
    return iov_total(iov, count);
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
