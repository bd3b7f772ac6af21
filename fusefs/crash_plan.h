#pragma once

// The crash state a rollback goes to (crash_rollback.h): what `fsysfs crash` and crash
// rules (faults.h) ask for.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fsysfs::fusefs {

enum class CrashKeep {
  kNone,    // every change no sync covered is lost (the default)
  kAll,     // nothing is lost: as if the cache had reached the disk
  kRandom,  // a seeded random subset is kept, in any order, as a volatile disk cache may
};

// Which crash state to roll back to. As text (the request file, crash rules):
// "keep=none", "keep=random seed=42 tear=1".
struct CrashPlan {
  CrashKeep keep = CrashKeep::kNone;
  uint64_t seed = 0;  // for kRandom
  bool tear = false;  // kRandom only: a write may be kept in part, sector by sector
  std::string text() const;
  // nullopt with the reason in `why` for text that is not a plan.
  static std::optional<CrashPlan> parse(std::string_view text, std::string* why);
};
// The piece a torn write is kept or lost in.
inline constexpr uint64_t kTearSector = 512;

}  // namespace fsysfs::fusefs
