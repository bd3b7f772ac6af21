#include "fusefs/creds.h"

#include <grp.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engine/log.h"

namespace fsysfs::fusefs {
namespace {

// setfsuid/setfsgid report failure only by returning the previous id; the only way to
// know the switch took is to ask again (passing an invalid id changes nothing).
bool set_fsuid(uid_t uid) noexcept {
  syscall(SYS_setfsuid, uid);
  return static_cast<uid_t>(syscall(SYS_setfsuid, static_cast<uid_t>(-1))) == uid;
}
bool set_fsgid(gid_t gid) noexcept {
  syscall(SYS_setfsgid, gid);
  return static_cast<gid_t>(syscall(SYS_setfsgid, static_cast<gid_t>(-1))) == gid;
}

const bool kRunningAsRoot = geteuid() == 0;
constexpr int kMaxGroups = 256;

// The daemon's own supplementary groups, as this thread had them before its first switch.
struct OwnGroups {
  bool known = false;
  std::vector<gid_t> groups;
};
thread_local OwnGroups own_groups;

int remember_own_groups() noexcept {
  if (own_groups.known) return 0;
  try {
    long n = syscall(SYS_getgroups, 0, nullptr);
    if (n < 0) return -errno;
    own_groups.groups.resize(static_cast<size_t>(n));
    n = syscall(SYS_getgroups, n, own_groups.groups.data());
    if (n < 0) return -errno;
    own_groups.groups.resize(static_cast<size_t>(n));
  } catch (...) {
    return -ENOMEM;
  }
  own_groups.known = true;
  return 0;
}

// The umask belongs to the fs_struct (with root and cwd), which every thread of the daemon
// shares: umask() on one worker would change it under the others. unshare(CLONE_FS) gives
// the calling thread a private copy (the daemon's umask, 0) that it alone changes from then
// on; done once per thread, on its first guard that needs it. 1: not tried yet, 0: done,
// -errno: refused.
thread_local int fs_struct_state = 1;
std::atomic<bool> unshare_warned{false};

bool own_fs_struct() noexcept {
  if (fs_struct_state == 1) {
    fs_struct_state = ::unshare(CLONE_FS) == 0 ? 0 : -errno;
    if (fs_struct_state < 0 && !unshare_warned.exchange(true)) {
      component_logger("fusefs")->warn(
          "unshare(CLONE_FS): {}; the caller's umask is applied by the daemon, so a default "
          "ACL no longer replaces it",
          std::strerror(-fs_struct_state));
    }
  }
  return fs_struct_state == 0;
}

}  // namespace

CredsGuard::CredsGuard(fuse_req_t req, bool with_umask) noexcept {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  if (with_umask) {
    if (own_fs_struct()) {
      saved_umask_ = ::umask(ctx->umask & 0777);
      umask_set_ = true;
    } else {
      masked_here_ = ctx->umask & 0777;
    }
  }
  if (!kRunningAsRoot) return;
  if (ctx->uid == 0 && ctx->gid == 0) return;
  switched_ = true;
  std::array<gid_t, kMaxGroups> groups;
  int n = fuse_req_getgroups(req, kMaxGroups, groups.data());
  if (n > kMaxGroups) n = kMaxGroups;  // more than we can carry: keep the first ones
  if (n >= 0) {
    if (int rc = remember_own_groups(); rc < 0) {
      status_ = rc;
      return;
    }
    if (syscall(SYS_setgroups, static_cast<size_t>(n), groups.data()) != 0) {
      status_ = -errno;
      return;
    }
    groups_set_ = true;
  }
  // Group first: once fsuid is not root the thread may no longer be allowed to change it.
  if (!set_fsgid(ctx->gid) || !set_fsuid(ctx->uid)) status_ = -EPERM;
}

CredsGuard::~CredsGuard() {
  // The thread's own fs_struct: no other thread sees this.
  if (umask_set_) ::umask(saved_umask_);
  if (!switched_) return;
  if (!set_fsuid(0) || !set_fsgid(0)) {
    // A worker thread left with a user's identity would create files as that user.
    component_logger("fusefs")->critical("cannot restore root fs identity; aborting");
    std::abort();
  }
  if (groups_set_ &&
      syscall(SYS_setgroups, own_groups.groups.size(), own_groups.groups.data()) != 0) {
    component_logger("fusefs")->critical("cannot restore supplementary groups; aborting");
    std::abort();
  }
}

bool caller_in_group(fuse_req_t req, gid_t gid) noexcept {
  if (fuse_req_ctx(req)->gid == gid) return true;
  std::array<gid_t, kMaxGroups> groups;
  int n = fuse_req_getgroups(req, kMaxGroups, groups.data());
  if (n > kMaxGroups) n = kMaxGroups;
  return n > 0 && std::find(groups.begin(), groups.begin() + n, gid) != groups.begin() + n;
}

}  // namespace fsysfs::fusefs
