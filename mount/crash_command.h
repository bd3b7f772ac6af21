#pragma once

// `fsysfs crash MOUNTPOINT [--keep none|all|random] [--seed N] [--tear]`: cuts a crashsim
// mount off as a power cut would (the FUSE connection is aborted: applications get
// ENOTCONN and nothing more reaches BACKING), lets its daemon roll BACKING back to a crash
// state (fusefs/crash_rollback.h), prints what was undone, and frees the mount point.

#include <sys/types.h>

#include <span>
#include <string>
#include <string_view>

#include "fusefs/crash_rollback.h"

namespace fsysfs::mount {

// Returns the exit status; bad arguments and refusals throw Error with a message.
int run_crash(std::span<const std::string_view> args);

// A crashsim mount as its control attribute describes it.
struct CrashsimMount {
  std::string mnt;
  pid_t pid = 0;        // its daemon
  std::string backing;  // its BACKING
};
// Throws Error when `mnt` is not a live crashsim mount.
CrashsimMount crashsim_mount(const std::string& mnt);

// Crashes `m` now per `plan` (root only) and returns the daemon's report. Throws Error.
std::string crash_mount(const CrashsimMount& m, const fusefs::CrashPlan& plan);

// For a mount that crashed by itself (a crash rule fired): waits for its daemon to finish
// the rollback, frees the mount point and returns the report. Throws Error.
std::string await_crash(const CrashsimMount& m);

}  // namespace fsysfs::mount
