#pragma once

// Durability modes: when a write() and an fsync() are answered. The mode of a mount can
// change while it runs; each operation reads it once, when it starts.

#include <cstdint>
#include <optional>
#include <string_view>

namespace fsysfs::fusefs {

enum class Durability : uint8_t {
  kNone,    // fsync/fdatasync answered at once without syncing (counted as skipped)
  kFsync,   // syncs when the application asks (the backing fs's own contract)
  kClose,   // as kFsync, and close() of a handle that wrote waits for an fdatasync
  kStrict,  // every write is a linked write+fdatasync chain: durable when write() returns
};

constexpr std::string_view durability_name(Durability d) noexcept {
  switch (d) {
    case Durability::kNone:
      return "none";
    case Durability::kFsync:
      return "fsync";
    case Durability::kClose:
      return "close";
    case Durability::kStrict:
      return "strict";
  }
  return "?";
}

constexpr std::optional<Durability> parse_durability(std::string_view s) noexcept {
  for (Durability d :
       {Durability::kNone, Durability::kFsync, Durability::kClose, Durability::kStrict}) {
    if (s == durability_name(d)) return d;
  }
  return std::nullopt;
}

// -o dirsync: namespace changes are answered after their parent directories are synced.
// kAuto follows the mode (on in strict).
enum class DirSync : uint8_t { kAuto, kOn, kOff };

constexpr std::string_view dirsync_name(DirSync d) noexcept {
  switch (d) {
    case DirSync::kAuto:
      return "auto";
    case DirSync::kOn:
      return "on";
    case DirSync::kOff:
      return "off";
  }
  return "?";
}

constexpr std::optional<DirSync> parse_dirsync(std::string_view s) noexcept {
  if (s == "auto") return DirSync::kAuto;
  if (s == "on" || s == "1" || s == "yes") return DirSync::kOn;
  if (s == "off" || s == "0" || s == "no") return DirSync::kOff;
  return std::nullopt;
}

constexpr bool dirsync_effective(Durability mode, DirSync d) noexcept {
  return d == DirSync::kOn || (d == DirSync::kAuto && mode == Durability::kStrict);
}

}  // namespace fsysfs::fusefs
