#include "fusefs/fuse_stats.h"

namespace fsysfs::fusefs {

std::string_view fuse_op_name(FuseOp op) noexcept {
  static constexpr std::array<std::string_view, static_cast<size_t>(FuseOp::kCount)> kNames = {
      "lookup",   "forget",    "getattr",         "setattr",     "readlink", "mknod",
      "mkdir",    "unlink",    "rmdir",           "symlink",     "rename",   "link",
      "open",     "read",      "write",           "flush",       "release",  "fsync",
      "opendir",  "readdir",   "readdirplus",     "releasedir",  "fsyncdir", "statfs",
      "setxattr", "getxattr",  "listxattr",       "removexattr", "access",   "create",
      "flock",    "fallocate", "copy_file_range", "lseek"};
  auto i = static_cast<size_t>(op);
  return i < kNames.size() ? kNames[i] : "?";
}

std::string_view sync_event_name(SyncEvent e) noexcept {
  switch (e) {
    case SyncEvent::kIssued:
      return "syncs_issued";
    case SyncEvent::kSkipped:
      return "syncs_skipped";
    case SyncEvent::kElided:
      return "syncs_elided";
    case SyncEvent::kClose:
      return "close_syncs";
    case SyncEvent::kDir:
      return "dir_syncs";
    case SyncEvent::kFault:
      return "faults_injected";
    case SyncEvent::kSpaceRetry:
      return "space_retries";
    case SyncEvent::kCount:
      break;
  }
  return "?";
}

void FuseStats::count_error(int err) noexcept {
  if (err <= 0 || err > FuseStatsSnapshot::kMaxErrno) err = 0;
  bump(errors_[static_cast<size_t>(err)]);
}

FuseStatsSnapshot FuseStats::snapshot() const noexcept {
  FuseStatsSnapshot s;
  for (size_t i = 0; i < ops_.size(); ++i) s.ops[i] = ops_[i].load(std::memory_order_relaxed);
  for (size_t i = 0; i < events_.size(); ++i) {
    s.events[i] = events_[i].load(std::memory_order_relaxed);
  }
  for (size_t i = 0; i < errors_.size(); ++i) {
    s.errors[i] = errors_[i].load(std::memory_order_relaxed);
  }
  return s;
}

void FuseStats::reset() noexcept {
  for (auto& c : ops_) c.store(0, std::memory_order_relaxed);
  for (auto& c : events_) c.store(0, std::memory_order_relaxed);
  for (auto& c : errors_) c.store(0, std::memory_order_relaxed);
}

}  // namespace fsysfs::fusefs
