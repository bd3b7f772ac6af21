#pragma once

// `fsysfs [BACKING] MOUNTPOINT -o remount,OPTIONS`: changes a live mount. mount(8) does
// not remount a fuse.* mount itself: for `mount -o remount,ro MOUNTPOINT` it runs
// mount.fuse3, which runs `fsysfs BACKING MOUNTPOINT -o <options>`, where the options are
// the mount's current ones from /proc/self/mountinfo and fstab (flags, and the kernel's
// user_id=, group_id=, ...) merged with those typed, plus dev,suid unless nodev/nosuid.
//
// The kernel flags (ro/rw, noexec, dev, suid, the access time rules) change with one
// mount(2) MS_REMOUNT, the durability settings through the control file as `fsysfs set`
// does, so both paths stay one. Every other option must name the value the mount has.

#include <span>
#include <string>
#include <vector>

#include "fusefs/mount_flags.h"
#include "mount/command_line.h"

namespace fsysfs::mount {

// What a remount starts from.
struct LiveMount {
  std::string mountpoint;                   // canonical
  std::string backing;                      // the mount's source
  fusefs::MountFlags flags;                 // the kernel's, from mountinfo
  std::vector<std::string> kernel_options;  // the superblock's: "user_id=0", "allow_other"
  std::string options;                      // the -o the daemon was started with
  std::string durability;                   // live, from the control file
  std::string dirsync;
};

struct RemountPlan {
  fusefs::MountFlags flags;           // for mount(2) MS_REMOUNT
  std::vector<std::string> settings;  // `fsysfs set` items that change: "durability=strict"
};

// Reads `options` (each an -o argument) against `live`. Kernel flags not named take their
// defaults (rw, exec, nodev, nosuid), as for a new mount, except that the access time rule
// is kept unless one is named, as mount(2) does; durability and dirsync change only when
// named. Throws Error for an unknown option, a bad value, or an option that names another
// value than the live mount has (and cannot change).
RemountPlan plan_remount(const LiveMount& live, std::span<const std::string> options);

// Remounts command_line.mountpoint; returns the exit status or throws Error.
int run_remount(const CommandLine& command_line);

}  // namespace fsysfs::mount
