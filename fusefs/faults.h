#pragma once

// Fault injection: rules that make chosen requests fail with an errno and/or wait, for
// durability testing. A rule names operation kinds, a glob over the path inside the
// mount, how often it fires, and what it does:
//
//   op=fsync|fdatasync,path=/db/*.wal,errno=EIO,count=1
//   op=write,errno=ENOSPC,probability=0.1
//   op=rename,delay_ms=200
//   op=fsync,path=*.wal,count=3,crash=after     (crashsim mounts: a crash point)
//
// A crash rule fires once, at the count-th matching request: the mount is cut off as
// `fsysfs crash` would, before that request is made (crash=before) or once it has
// reached BACKING, its reply lost (crash=after); keep=, seed= and tear= choose the crash
// state (crash_rollback.h).
//
// Injected errors are answered through the same reply path as errors from the backing fs.
//
// Thread safety: every member function may be called concurrently.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fusefs/crash_plan.h"

namespace fsysfs::fusefs {

enum class FaultOp : uint8_t {
  kRead,
  kWrite,
  kFsync,
  kFdatasync,
  kFsyncdir,
  kFlush,
  kOpen,
  kCreate,
  kMknod,
  kMkdir,
  kSymlink,
  kLink,
  kUnlink,
  kRmdir,
  kRename,
  kCount
};
std::string_view fault_op_name(FaultOp op) noexcept;

enum class CrashPoint : uint8_t { kNone, kBefore, kAfter };

struct FaultRule {
  std::string text;        // as given, for listing
  uint32_t ops = 0;        // bit per FaultOp
  std::string glob = "*";  // fnmatch(3) pattern over "/path/in/mount"; '*' crosses '/'
  int error = 0;           // errno to answer with; 0: none (delay only)
  uint32_t delay_ms = 0;
  int64_t remaining = -1;  // firings left; -1: unlimited
  double probability = 1.0;
  uint64_t hits = 0;
  CrashPoint crash = CrashPoint::kNone;
  int64_t skip = 0;  // a crash rule's matches to let pass first
  CrashPlan plan;    // a crash rule's crash state
};

// Parses a rule; on failure, a message naming the bad part.
std::variant<FaultRule, std::string> parse_fault_rule(std::string_view text);
// "EIO" -> 5; also accepts a number. nullopt when neither.
std::optional<int> parse_errno(std::string_view text) noexcept;
// 5 -> "EIO"; the number as text when it has no name here.
std::string errno_name(int err);

class Faults {
 public:
  struct Hit {
    int error = 0;
    uint32_t delay_ms = 0;
    CrashPoint crash = CrashPoint::kNone;
    CrashPlan plan;
  };

  void add(FaultRule rule);
  void clear() noexcept;
  std::vector<FaultRule> rules() const;

  // Cheap test, for the hot path: may any rule fire for `op`?
  bool armed(FaultOp op) const noexcept {
    return (armed_.load(std::memory_order_relaxed) >> static_cast<unsigned>(op)) & 1u;
  }
  // Whether some rule holds requests (delay_ms): such a request must not hold up others.
  bool delays() const noexcept { return delays_.load(std::memory_order_relaxed); }
  // The first rule for `op` matching `path` that fires, counted as fired.
  std::optional<Hit> match(FaultOp op, const std::string& path);

 private:
  void rearm() noexcept;  // mu_ held

  mutable std::mutex mu_;
  std::vector<FaultRule> rules_;  // guarded by mu_
  std::minstd_rand rng_{0x5eed};  // guarded by mu_; deterministic, for repeatable runs
  std::atomic<uint32_t> armed_{0};
  std::atomic<bool> delays_{false};
};

}  // namespace fsysfs::fusefs
