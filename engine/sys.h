#pragma once

// Thin syscall wrappers. Every function returns a value >= 0 on success and -errno on
// failure; none of them sets or relies on errno for its result.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace fsysfs::sys {

// Writes all of [buf, buf+len) at off, retrying EINTR and short writes. On an error after
// some bytes were written returns the error (the caller cannot know which bytes landed
// anyway; durability callers must treat the range as not written).
int64_t pwrite_all(int fd, const void* buf, size_t len, uint64_t off) noexcept;
// One pread, retrying EINTR. A short read is returned as is (end of file).
int64_t pread(int fd, void* buf, size_t len, uint64_t off) noexcept;
int fsync(int fd) noexcept;
int fdatasync(int fd) noexcept;
// Reads an 8-byte eventfd counter / adds one to it.
int eventfd_drain(int fd) noexcept;
int eventfd_signal(int fd) noexcept;

}  // namespace fsysfs::sys
