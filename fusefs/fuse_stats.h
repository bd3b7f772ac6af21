#pragma once

// What the filesystem layer counts on top of the engine's statistics: requests per FUSE
// operation, error replies by errno, and the durability decisions (syncs issued, skipped,
// added at close or for directories). Lock-free; any thread may record, and snapshot()
// may run concurrently.

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace fsysfs::fusefs {

enum class FuseOp : uint8_t {
  kLookup,
  kForget,
  kGetattr,
  kSetattr,
  kReadlink,
  kMknod,
  kMkdir,
  kUnlink,
  kRmdir,
  kSymlink,
  kRename,
  kLink,
  kOpen,
  kRead,
  kWrite,
  kFlush,
  kRelease,
  kFsync,
  kOpendir,
  kReaddir,
  kReaddirplus,
  kReleasedir,
  kFsyncdir,
  kStatfs,
  kSetxattr,
  kGetxattr,
  kListxattr,
  kRemovexattr,
  kAccess,
  kCreate,
  kFlock,
  kFallocate,
  kCopyFileRange,
  kLseek,
  kCount
};
std::string_view fuse_op_name(FuseOp op) noexcept;

// Durability decisions, each counted once per request that made it.
enum class SyncEvent : uint8_t {
  kIssued,      // an application fsync/fdatasync/fsyncdir sent to the engine
  kSkipped,     // an application sync answered at once (durability=none)
  kElided,      // an fdatasync answered at once: the file's data was already durable
  kClose,       // an fdatasync added at close (durability=close)
  kDir,         // a parent-directory fsync added by dirsync
  kFault,       // an injected fault (error or delay) applied to a request
  kSpaceRetry,  // a backing call tried again after the backing fs was full and removed
                // files the daemon held gave space back (space_return.h)
  kCount
};
std::string_view sync_event_name(SyncEvent e) noexcept;

struct FuseStatsSnapshot {
  std::array<uint64_t, static_cast<size_t>(FuseOp::kCount)> ops{};
  std::array<uint64_t, static_cast<size_t>(SyncEvent::kCount)> events{};
  static constexpr int kMaxErrno = 133;          // EHWPOISON, the largest errno Linux defines
  std::array<uint64_t, kMaxErrno + 1> errors{};  // error replies by errno; [0]: out of range
  uint64_t op(FuseOp o) const noexcept { return ops[static_cast<size_t>(o)]; }
  uint64_t event(SyncEvent e) const noexcept { return events[static_cast<size_t>(e)]; }
};

class FuseStats {
 public:
  void count(FuseOp op) noexcept { bump(ops_[static_cast<size_t>(op)]); }
  void count(SyncEvent e) noexcept { bump(events_[static_cast<size_t>(e)]); }
  void count_error(int err) noexcept;
  FuseStatsSnapshot snapshot() const noexcept;
  void reset() noexcept;

 private:
  static void bump(std::atomic<uint64_t>& c) noexcept { c.fetch_add(1, std::memory_order_relaxed); }
  std::array<std::atomic<uint64_t>, static_cast<size_t>(FuseOp::kCount)> ops_{};
  std::array<std::atomic<uint64_t>, static_cast<size_t>(SyncEvent::kCount)> events_{};
  std::array<std::atomic<uint64_t>, FuseStatsSnapshot::kMaxErrno + 1> errors_{};
};

}  // namespace fsysfs::fusefs
