#pragma once

// Runs the calling thread with a FUSE caller's filesystem identity, so that names it
// creates get the caller's owner and group and the backing fs checks the caller's access;
// and, for a name-creating op on a mount where the kernel leaves the umask to the daemon
// (POSIX ACLs), with the caller's umask, so that the backing fs applies it exactly when the
// parent directory has no default ACL.
//
// Only the calling thread changes: the guard uses the raw setfsuid/setfsgid/setgroups
// syscalls (glibc's wrappers broadcast credential changes to every thread), and the umask,
// which belongs to the fs_struct the process's threads share, is changed only after the
// thread took a private fs_struct (unshare(CLONE_FS), once per thread). Threads that never
// use a guard (the engine's) keep the daemon's umask, 0. The identity switch is a no-op
// unless the daemon runs as root. Not copyable; destroy it on the thread that made it.

#include <fuse_lowlevel.h>
#include <sys/types.h>

namespace fsysfs::fusefs {

class CredsGuard {
 public:
  explicit CredsGuard(fuse_req_t req, bool with_umask = false) noexcept;
  ~CredsGuard();
  CredsGuard(const CredsGuard&) = delete;
  CredsGuard& operator=(const CredsGuard&) = delete;

  // 0, or -errno when the identity could not be assumed (the op must then fail rather
  // than create a name owned by root).
  int status() const noexcept { return status_; }

  // The mode to create with: `mode` as asked, or, on a thread that could not get a umask
  // of its own, with the caller's umask taken off here (a default ACL on the parent can
  // then no longer replace it, which is what the kernel does without POSIX ACLs).
  mode_t mode(mode_t mode) const noexcept { return mode & ~masked_here_; }

 private:
  bool switched_ = false;
  bool groups_set_ = false;
  bool umask_set_ = false;
  mode_t saved_umask_ = 0;
  mode_t masked_here_ = 0;
  int status_ = 0;
};

// Whether `req`'s caller is in group `gid` (its fs group or a supplementary one), as the
// kernel's in_group_p() asks. When the supplementary groups cannot be read, only the fs
// group counts.
bool caller_in_group(fuse_req_t req, gid_t gid) noexcept;

}  // namespace fsysfs::fusefs
