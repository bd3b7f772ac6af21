#pragma once

// Checks on BACKING and MOUNTPOINT made before anything is mounted, so that a bad
// invocation fails with a message naming the path instead of a mount that hangs or loops.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fusefs/mount_flags.h"

namespace fsysfs::mount {

struct MountPaths {
  std::string backing;     // canonical (realpath)
  std::string mountpoint;  // canonical (realpath)
};

// BACKING must be a directory the caller can read and search (checked with the effective
// ids, so a root caller passes and a setuid caller is judged by its effective uid);
// MOUNTPOINT must be a directory; neither may contain the other nor be the same directory;
// MOUNTPOINT must not already carry an fsysfs mount. Throws Error naming the path.
MountPaths validate_paths(std::string_view backing, std::string_view mountpoint);

// Whether canonical absolute `path` is `dir` or lies below it. Compares whole components:
// /a/bc is not inside /a/b.
bool is_same_or_inside(std::string_view path, std::string_view dir);

// One parser for mountinfo, shared with the daemon (which follows its own mount's flags).
using fusefs::MountInfoEntry;
using fusefs::parse_mountinfo;
// Whether `mountpoint` (canonical) carries a mount of type fuse.fsysfs in this process's
// mount namespace.
bool is_fsysfs_mount(std::string_view mountpoint);
// The mount on top at `mountpoint` (canonical) in this process's mount namespace.
std::optional<MountInfoEntry> top_mount_at(std::string_view mountpoint);

// Throws Error when `device` cannot be opened for reading and writing.
void check_fuse_device(const char* device = "/dev/fuse");

}  // namespace fsysfs::mount
