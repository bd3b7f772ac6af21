#pragma once

// The control file: a hidden regular file `.fsysfs` in the root of every mount, through
// whose extended attributes `fsysfs stats|set|inject` read statistics, change the live
// durability settings and manage fault rules. Going through the mount itself means the
// control channel needs no discovery and no second transport, and the kernel tells us who
// is asking. Anyone who can reach the mount may read; only root and the user who mounted
// may write (the file is mode 0644, owned by that user, and the daemon checks again).
//
// The name is reserved in the root directory only: a backing file of that name there is
// neither listed nor reachable through the mount.

#include <fuse_lowlevel.h>

#include <string_view>

namespace fsysfs::fusefs {

class Filesystem;
struct Inode;

inline constexpr std::string_view kControlName = ".fsysfs";
// FUSE_ROOT_ID is 1 and the inode table's node ids start above 2 (inode_table.h).
inline constexpr fuse_ino_t kControlIno = 2;

// Attribute names (all in the user namespace).
namespace control_attr {
inline constexpr const char* kStats = "user.fsysfs.stats";               // get: table
inline constexpr const char* kStatsJson = "user.fsysfs.stats.json";      // get: JSON
inline constexpr const char* kStatsReset = "user.fsysfs.stats.reset";    // set (any value)
inline constexpr const char* kDurability = "user.fsysfs.durability";     // get/set: mode
inline constexpr const char* kDirsync = "user.fsysfs.dirsync";           // get/set: on|off|auto
inline constexpr const char* kFaults = "user.fsysfs.faults";             // get: one rule a line
inline constexpr const char* kInject = "user.fsysfs.inject";             // set: add a rule
inline constexpr const char* kInjectClear = "user.fsysfs.inject.clear";  // set (any value)
inline constexpr const char* kOptions = "user.fsysfs.options";  // get: the -o given at mount
// get: the kernel flags the daemon follows ("rw,nosuid,nodev,relatime"), read again from
// /proc/self/mountinfo first, so that a remount can wait until the daemon follows it.
inline constexpr const char* kMount = "user.fsysfs.mount";
// get, on a crashsim mount only: "PID\nBACKING\n", the daemon and its backing directory,
// which `fsysfs crash` needs to cut the mount off (crash_rollback.h).
inline constexpr const char* kCrash = "user.fsysfs.crash";
}  // namespace control_attr

// True for the control file's name in the root directory.
bool is_control_name(fuse_ino_t parent, const char* name) noexcept;
// True for a name the mount keeps for itself in the root directory: the control file's,
// and the crash simulation's directory (crashsim.h), which is neither listed nor found.
bool is_reserved_name(fuse_ino_t parent, const char* name) noexcept;
bool is_reserved_name(Filesystem& fs, const Inode& parent, const char* name) noexcept;

void control_lookup(fuse_req_t req) noexcept;
void control_getattr(fuse_req_t req) noexcept;
void control_access(fuse_req_t req, int mask) noexcept;
void control_getxattr(fuse_req_t req, const char* name, size_t size) noexcept;
void control_setxattr(fuse_req_t req, const char* name, const char* value, size_t size) noexcept;
void control_listxattr(fuse_req_t req, size_t size) noexcept;

}  // namespace fsysfs::fusefs
