#pragma once

// Runs the calling thread with a FUSE caller's filesystem identity, so that names it
// creates get the caller's owner and group and the backing fs checks the caller's access.
//
// Only the calling thread changes: the guard uses the raw setfsuid/setfsgid/setgroups
// syscalls (glibc's wrappers broadcast credential changes to every thread). It is a
// no-op unless the daemon runs as root. Not copyable; destroy it on the thread that made it.

#include <fuse_lowlevel.h>
#include <sys/types.h>

namespace fsysfs::fusefs {

class CredsGuard {
 public:
  explicit CredsGuard(fuse_req_t req) noexcept;
  ~CredsGuard();
  CredsGuard(const CredsGuard&) = delete;
  CredsGuard& operator=(const CredsGuard&) = delete;

  // 0, or -errno when the identity could not be assumed (the op must then fail rather
  // than create a name owned by root).
  int status() const noexcept { return status_; }

 private:
  bool switched_ = false;
  bool groups_set_ = false;
  int status_ = 0;
};

}  // namespace fsysfs::fusefs
