#pragma once

// Rolls BACKING back to a crash state with the journal a crashsim mount kept
// (crashsim.h): what no sync covered is undone, newest first, so that every record meets
// the tree as it was right after its own change. Run by the daemon of a mount that
// `fsysfs crash` cut off, once nothing else touches BACKING.

#include <string>
#include <string_view>
#include <vector>

#include "fusefs/crash_plan.h"

namespace spdlog {
class logger;
}

namespace fsysfs::fusefs {

struct RollbackReport {
  size_t durable = 0;               // records a sync covered
  std::vector<std::string> undone;  // one line per change undone, newest first
  std::vector<std::string> kept;    // one line per change kept although not durable
  std::vector<std::string> torn;    // one line per write kept in part (--tear)
  std::vector<std::string> errors;  // changes that could not be undone, and why
};

// Rolls back the tree of `root_fd` (the backing root) per its .fsysfs-crashsim journal,
// then removes that directory. Returns 0, or -errno when there is no journal to read or
// no file handle can be opened (the report then says why).
int roll_back(int root_fd, const CrashPlan& plan, RollbackReport* report);

// Files in BACKING/.fsysfs-crashsim that `fsysfs crash` and the daemon pass each other.
inline constexpr const char* kCrashRequestFile = "crash";  // a CrashPlan's text: roll back
inline constexpr const char* kCrashReportFile = "report";  // what the rollback did
inline constexpr const char* kCrashCauseFile = "cause";    // what cut the mount off

// Leaves the request that makes end_crashsim roll back: `dir` is .fsysfs-crashsim.
// `cause`, when not empty, heads the report (a crash point: which request it hit).
// 0 or -errno.
int request_crash(int dir_fd, const CrashPlan& plan, std::string_view cause = {}) noexcept;

// Called once a crashsim mount serves no more requests and its engine is drained: when
// `fsysfs crash` left its request, rolls back and leaves the report (the command reads it
// and removes the directory); else (an unmount) drops the journal: nothing is undone.
void end_crashsim(int root_fd, spdlog::logger& log) noexcept;

// For `fsysfs crash`: reads the report the daemon left in BACKING (`backing_fd`), then
// removes the crash simulation's directory. -errno when there is no report.
int take_crash_report(int backing_fd, std::string* text) noexcept;

}  // namespace fsysfs::fusefs
