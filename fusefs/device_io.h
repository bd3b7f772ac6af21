// Our own read and writev on /dev/fuse (libfuse's custom I/O hooks). They carry two parts
// of the kernel protocol that libfuse 3.14 does not pass on:
//
// - FUSE_HANDLE_KILLPRIV_V2. Without it the kernel asks for `security.capability` (a
//   GETXATTR round trip) before every write, to learn whether it must clear privileges.
//   With it the kernel stops asking (SB_NOSEC) and leaves the clearing of suid/sgid to the
//   daemon; the backing fs drops `security.capability` on our writes by itself.
// - The request flags that say the caller lacks CAP_FSETID, which libfuse drops:
//   FUSE_WRITE_KILL_SUIDGID on WRITE and FATTR_KILL_SUIDGID on SETATTR.
//
// A libfuse worker thread reads a request and then serves it before reading the next one,
// so what the read hook saw is kept per thread for the handler of that request.
#pragma once

#include <sys/types.h>

#include <cstddef>

struct fuse_session;

namespace fsysfs::fusefs {

// Whether the request this thread is serving asks the daemon to clear suid/sgid.
bool request_kills_suidgid() noexcept;

// Notes what the request in `buf` (as read from /dev/fuse) carries that libfuse drops, for
// the handler this thread runs next. The read hook calls it; so does the io_uring transport.
void note_request(const void* buf, size_t len) noexcept;

// The read hook: a read(2) of /dev/fuse that notes what the request carries. An abort
// through fusectl answers every worker's read with ENODEV, which libfuse takes as the
// connection's end, except a read that had just taken a request off the queue (or every
// read, once INIT agreed on FUSE_ABORT_ERROR): that one gets ECONNABORTED, which libfuse
// 3.14 prints with perror() while its thread can be cancelled, and returns as a failure.
// Its loop cancels the workers as soon as one of them ends the session; one cancelled
// inside perror() leaves the stdio locks held, and the daemon hangs at its next log line.
// So the hook tells ECONNABORTED as ENODEV.
ssize_t device_read(int fd, void* buf, size_t len, void* userdata);

// Installs the hooks on a mounted session whose userdata is the Filesystem. Returns 0, or
// -errno when libfuse refuses them (the kernel then clears privileges itself).
int use_device_io(fuse_session* se) noexcept;

}  // namespace fsysfs::fusefs
