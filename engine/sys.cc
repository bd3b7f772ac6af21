#include "engine/sys.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace fsysfs::sys {

int64_t pwrite_all(int fd, const void* buf, size_t len, uint64_t off) noexcept {
  auto* p = static_cast<const char*>(buf);
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pwrite(fd, p + done, len - done, static_cast<off_t>(off + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -EIO;  // a regular file never accepts zero bytes without an error
    done += static_cast<size_t>(n);
  }
  return static_cast<int64_t>(done);
}

int64_t pread(int fd, void* buf, size_t len, uint64_t off) noexcept {
  for (;;) {
    ssize_t n = ::pread(fd, buf, len, static_cast<off_t>(off));
    if (n >= 0) return n;
    if (errno != EINTR) return -errno;
  }
}

int fsync(int fd) noexcept { return ::fsync(fd) == 0 ? 0 : -errno; }
int fdatasync(int fd) noexcept { return ::fdatasync(fd) == 0 ? 0 : -errno; }

int eventfd_drain(int fd) noexcept {
  eventfd_t v;
  return ::eventfd_read(fd, &v) == 0 ? 0 : -errno;
}

int eventfd_signal(int fd) noexcept { return ::eventfd_write(fd, 1) == 0 ? 0 : -errno; }

}  // namespace fsysfs::sys
