#pragma once

// How much dirty page cache the kernel lets the mount hold (`-o max_dirty`).
//
// The kernel gives every FUSE mount's backing_dev_info a strict limit of 1% of the system's
// dirty threshold (/sys/class/bdi/<major:minor>/: max_ratio 1, strict_limit 1), about 48 MB
// on a 24 GB machine. With the writeback cache on, a writer that dirties more is throttled to
// the pace at which the daemon takes WRITE requests, where a local disk's writers may dirty up
// to the system's threshold before they wait. The limit exists because an unprivileged daemon
// could otherwise hold much of the system's dirty memory hostage; root may lift it for its own
// mount through sysfs, which lives as long as the mount.

#include <spdlog/spdlog.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fsysfs::fusefs {

struct DirtyLimit {
  enum class Kind : uint8_t {
    kAuto,    // with the writeback cache, a local disk's limits (max_ratio 100, no strict
              // limit); else kKernel
    kKernel,  // the kernel's FUSE default, left alone
    kBytes,   // max_bytes = bytes
  };
  Kind kind = Kind::kAuto;
  uint64_t bytes = 0;
  bool operator==(const DirtyLimit&) const = default;
};

// The bdi settings of a mount, as sysfs shows them.
struct BdiLimits {
  unsigned max_ratio = 0;  // percent of the system's dirty threshold
  uint64_t max_bytes = 0;  // the same limit in bytes, at the current threshold
  bool strict_limit = false;
};

// "/sys/class/bdi/<device>" for a superblock's "major:minor".
std::string bdi_dir(std::string_view device);

// Gives the mount's bdi the limit (kAuto: as `writeback` says) and logs what it got, or why
// not (sysfs refuses anyone but root). The mount works either way.
void limit_dirty_pages(std::string_view device, const DirtyLimit& limit, bool writeback,
                       spdlog::logger& log) noexcept;

// The settings of the bdi directory `dir`, or nullopt when they cannot be read.
std::optional<BdiLimits> read_bdi_limits(const std::string& dir) noexcept;

}  // namespace fsysfs::fusefs
