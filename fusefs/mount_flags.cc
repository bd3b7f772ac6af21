#include "fusefs/mount_flags.h"

#include <sys/mount.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <charconv>

namespace fsysfs::fusefs {
namespace {

// Decodes the octal escapes (\040 for a space, \134 for a backslash, ...) that the kernel
// writes into mountinfo fields.
std::string unescape(std::string_view field) {
  auto is_octal = [](char c) { return c >= '0' && c <= '7'; };
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && is_octal(field[i + 1]) &&
        is_octal(field[i + 2]) && is_octal(field[i + 3])) {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

// Whether the comma-separated `options` contain `word` as a whole item.
bool has_option(std::string_view options, std::string_view word) {
  size_t pos = 0;
  while (pos <= options.size()) {
    size_t comma = options.find(',', pos);
    if (comma == std::string_view::npos) comma = options.size();
    if (options.substr(pos, comma - pos) == word) return true;
    pos = comma + 1;
  }
  return false;
}

}  // namespace

std::string_view atime_name(Atime atime) noexcept {
  switch (atime) {
    case Atime::kRelatime:
      return "relatime";
    case Atime::kNoatime:
      return "noatime";
    case Atime::kStrictatime:
      return "strictatime";
  }
  return "?";
}

std::string to_string(const MountFlags& flags) {
  std::string out = flags.read_only ? "ro" : "rw";
  if (!flags.suid) out += ",nosuid";
  if (!flags.dev) out += ",nodev";
  if (flags.no_exec) out += ",noexec";
  out += ',';
  out += atime_name(flags.atime);
  if (flags.nodiratime) out += ",nodiratime";
  return out;
}

unsigned long remount_flags(const MountFlags& flags) noexcept {
  unsigned long ms = MS_REMOUNT;
  if (flags.read_only) ms |= MS_RDONLY;
  if (flags.no_exec) ms |= MS_NOEXEC;
  if (!flags.dev) ms |= MS_NODEV;
  if (!flags.suid) ms |= MS_NOSUID;
  switch (flags.atime) {
    case Atime::kRelatime:
      ms |= MS_RELATIME;
      break;
    case Atime::kNoatime:
      ms |= MS_NOATIME;
      break;
    case Atime::kStrictatime:
      ms |= MS_STRICTATIME;
      break;
  }
  if (flags.nodiratime) ms |= MS_NODIRATIME;
  return ms;
}

bool reads_keep_atime(const MountFlags& flags, bool dir) noexcept {
  return flags.read_only || flags.atime == Atime::kNoatime || (dir && flags.nodiratime);
}

bool reads_move_atime(const MountFlags& flags) noexcept {
  return !flags.read_only && flags.atime == Atime::kStrictatime;
}

int set_atime_rule(int dirfd, const char* path, int at_flags, Atime atime,
                   bool nodiratime) noexcept {
  mount_attr attr{};
  attr.attr_clr = MOUNT_ATTR__ATIME | MOUNT_ATTR_NODIRATIME;
  switch (atime) {
    case Atime::kRelatime:
      attr.attr_set = MOUNT_ATTR_RELATIME;
      break;
    case Atime::kNoatime:
      attr.attr_set = MOUNT_ATTR_NOATIME;
      break;
    case Atime::kStrictatime:
      attr.attr_set = MOUNT_ATTR_STRICTATIME;
      break;
  }
  if (nodiratime) attr.attr_set |= MOUNT_ATTR_NODIRATIME;
  if (::mount_setattr(dirfd, path, static_cast<unsigned>(at_flags), &attr, sizeof attr) != 0) {
    return -errno;
  }
  return 0;
}

std::vector<MountInfoEntry> parse_mountinfo(std::string_view text) {
  std::vector<MountInfoEntry> entries;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;

    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    std::vector<std::string_view> fields;
    size_t f = 0;
    while (f < line.size()) {
      size_t sp = line.find(' ', f);
      if (sp == std::string_view::npos) sp = line.size();
      if (sp > f) fields.push_back(line.substr(f, sp - f));
      f = sp + 1;
    }
    size_t dash = 6;
    while (dash < fields.size() && fields[dash] != "-") ++dash;
    if (fields.size() < 6 || dash + 2 >= fields.size()) continue;
    MountInfoEntry entry;
    std::from_chars(fields[0].data(), fields[0].data() + fields[0].size(), entry.id);
    entry.device = fields[2];
    entry.mountpoint = unescape(fields[4]);
    entry.mount_options = fields[5];
    entry.fstype = unescape(fields[dash + 1]);
    entry.source = unescape(fields[dash + 2]);
    if (dash + 3 < fields.size()) entry.super_options = fields[dash + 3];
    entries.push_back(std::move(entry));
  }
  return entries;
}

MountFlags flags_of(const MountInfoEntry& entry) {
  const std::string_view opts = entry.mount_options;
  MountFlags flags;
  flags.read_only = has_option(opts, "ro") || has_option(entry.super_options, "ro");
  flags.no_exec = has_option(opts, "noexec");
  flags.dev = !has_option(opts, "nodev");
  flags.suid = !has_option(opts, "nosuid");
  if (has_option(opts, "noatime")) {
    flags.atime = Atime::kNoatime;
  } else if (has_option(opts, "relatime")) {
    flags.atime = Atime::kRelatime;
  } else {
    flags.atime = Atime::kStrictatime;
  }
  flags.nodiratime = has_option(opts, "nodiratime");
  return flags;
}

MountFlags allowed_flags(MountFlags wanted, const std::string& backing, bool privileged,
                         std::vector<std::string>* why) {
  if (!wanted.dev && !wanted.suid) return wanted;
  if (!privileged) {
    if (why != nullptr) why->push_back("dev and suid need root: the mount stays nodev,nosuid");
    wanted.dev = wanted.suid = false;
    return wanted;
  }
  struct statvfs vfs;
  if (::statvfs(backing.c_str(), &vfs) != 0) return wanted;
  if (wanted.dev && (vfs.f_flag & ST_NODEV) != 0) {
    if (why != nullptr) why->push_back(backing + " is on a nodev mount: the mount stays nodev");
    wanted.dev = false;
  }
  if (wanted.suid && (vfs.f_flag & ST_NOSUID) != 0) {
    if (why != nullptr) why->push_back(backing + " is on a nosuid mount: the mount stays nosuid");
    wanted.suid = false;
  }
  return wanted;
}

}  // namespace fsysfs::fusefs
