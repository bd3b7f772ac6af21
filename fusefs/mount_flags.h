#pragma once

// The kernel's flags on a mount: ro, nosuid, nodev, noexec and the access time rules. What
// fsysfs asks for at mount and remount, and what it reads back from /proc/self/mountinfo.
//
// The kernel enforces ro, nosuid, nodev and noexec by itself. The access time rules it
// leaves to the daemon: every FUSE inode is S_NOATIME, and after a read or readdir the
// kernel asks the daemon for the atime again, so what a program sees is what the daemon's
// own backing reads did to the backing file (Filesystem::open_backing).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fsysfs::fusefs {

enum class Atime : uint8_t {
  kRelatime,     // the kernel's default: a read moves atime when it is not newer than
                 // mtime or ctime, or is a day old
  kNoatime,      // reads never move atime
  kStrictatime,  // every read moves atime
};

// Eight bytes, so that std::atomic<MountFlags> is lock-free.
struct alignas(8) MountFlags {
  bool read_only = false;
  bool no_exec = false;
  bool dev = false;   // device files work; only root may ask for it
  bool suid = false;  // set-user-ID and set-group-ID bits take effect; root only
  Atime atime = Atime::kRelatime;
  bool nodiratime = false;  // reading a directory never moves its atime
  bool operator==(const MountFlags&) const = default;
};

std::string_view atime_name(Atime atime) noexcept;
// "ro,nosuid,nodev,noexec,noatime,nodiratime" in mountinfo's order and words, except that
// strictatime is named (mountinfo shows it as the absence of relatime and noatime).
std::string to_string(const MountFlags& flags);
// The MS_* flags of a mount(2) MS_REMOUNT that sets exactly `flags` (the atime rule always
// named, so the kernel does not keep the old one).
unsigned long remount_flags(const MountFlags& flags) noexcept;

// Whether the daemon's reads of backing files (directories when `dir`) must leave atime
// alone: noatime, nodiratime for directories, and every read of a read-only mount.
bool reads_keep_atime(const MountFlags& flags, bool dir) noexcept;
// Whether every read must move atime (strictatime on a writable mount).
bool reads_move_atime(const MountFlags& flags) noexcept;

// Gives the mount at `dirfd`/`path` (mount_setattr(2) `at_flags`) the access time rule
// `atime` and `nodiratime`, and nothing else. Needs CAP_SYS_ADMIN. Returns 0 or -errno.
int set_atime_rule(int dirfd, const char* path, int at_flags, Atime atime,
                   bool nodiratime) noexcept;

// One line of /proc/<pid>/mountinfo.
struct MountInfoEntry {
  int id = 0;
  std::string device;         // "major:minor" of the superblock
  std::string mountpoint;     // unescaped
  std::string mount_options;  // the mount's own: "rw,nosuid,nodev,relatime"
  std::string fstype;         // "fuse.fsysfs", "ext4", ...
  std::string source;         // unescaped
  std::string super_options;  // the superblock's: "rw,user_id=0,group_id=0,allow_other"
};
// Parses the text of /proc/<pid>/mountinfo. Malformed lines are skipped.
std::vector<MountInfoEntry> parse_mountinfo(std::string_view text);
// The flags of a mount: its own options, and ro from either its own or its superblock's.
MountFlags flags_of(const MountInfoEntry& entry);

// `wanted` with what this mount may not have taken away: dev and suid need root
// (`privileged`), and are not given to a mount of a BACKING whose own mount is nodev or
// nosuid (a bind mount would inherit those too). `why` gets one sentence per dropped flag.
MountFlags allowed_flags(MountFlags wanted, const std::string& backing, bool privileged,
                         std::vector<std::string>* why);

}  // namespace fsysfs::fusefs
