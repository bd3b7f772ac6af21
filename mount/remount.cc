#include "mount/remount.h"

#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include <fmt/format.h>

#include "fusefs/control.h"
#include "mount/control_client.h"
#include "mount/error.h"
#include "mount/options.h"
#include "mount/paths.h"

namespace fsysfs::mount {
namespace {

// What the kernel shows among a FUSE superblock's options that is not an fsysfs option;
// mount(8) passes them back on a remount.
constexpr std::array<std::string_view, 6> kKernelOnly{"user_id",  "group_id", "rootmode",
                                                      "max_read", "blksize",  "fd"};

constexpr std::string_view kWhatChanges =
    "a remount changes ro/rw, noexec/exec, dev/nodev, suid/nosuid, the access time rules, "
    "durability and dirsync";

std::vector<std::string> split(std::string_view options) {
  std::vector<std::string> items;
  size_t pos = 0;
  while (pos <= options.size()) {
    size_t comma = options.find(',', pos);
    if (comma == std::string_view::npos) comma = options.size();
    if (comma > pos) items.emplace_back(options.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return items;
}

std::string_view key_of(std::string_view item) { return item.substr(0, item.find('=')); }

// Every option's value as shown: two settings that show the same configure the same mount.
std::vector<std::string> shown(Settings settings) {
  finish_settings(settings);
  std::vector<std::string> out;
  for (const auto& spec : option_table()) out.push_back(spec.show ? spec.show(settings) : "");
  return out;
}

LiveMount read_live_mount(const std::string& mountpoint) {
  std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(mountpoint.c_str(), nullptr),
                                                       &std::free);
  if (!resolved) {
    throw Error(
        fmt::format("cannot resolve mount point '{}': {}", mountpoint, std::strerror(errno)));
  }
  LiveMount live;
  live.mountpoint = resolved.get();
  auto entry = top_mount_at(live.mountpoint);
  if (!entry || entry->fstype != "fuse.fsysfs") {
    throw Error(fmt::format("cannot remount '{}': it is not an fsysfs mount", live.mountpoint));
  }
  live.backing = entry->source;
  live.flags = fusefs::flags_of(*entry);
  for (auto& o : split(entry->super_options)) {
    if (o != "rw" && o != "ro") live.kernel_options.push_back(std::move(o));
  }
  namespace attr = fusefs::control_attr;
  live.options = read_control(live.mountpoint, attr::kOptions);
  live.durability = read_control(live.mountpoint, attr::kDurability);
  live.dirsync = read_control(live.mountpoint, attr::kDirsync);
  return live;
}

void remount_kernel(const std::string& mountpoint, const fusefs::MountFlags& flags) {
  if (::mount(nullptr, mountpoint.c_str(), nullptr, fusefs::remount_flags(flags), nullptr) == 0) {
    return;
  }
  const int err = errno;
  if (err == EPERM) {
    throw Error(
        fmt::format("remounting {} needs root (mount(2) MS_REMOUNT); unmount it and mount it "
                    "again with the new options",
                    mountpoint));
  }
  if (err == EBUSY && flags.read_only) {
    throw Error(
        fmt::format("cannot remount {} read-only: a file on it is open for writing", mountpoint));
  }
  throw Error(fmt::format("cannot remount {} {}: {}", mountpoint, fusefs::to_string(flags),
                          std::strerror(err)));
}

}  // namespace

RemountPlan plan_remount(const LiveMount& live, std::span<const std::string> options) {
  // Options that cannot change are compared with the ones the mount was started with.
  Settings fixed;
  apply_mount_options(fixed, live.options);
  const std::vector<std::string> live_shown = shown(fixed);

  // Kernel flags not named take a new mount's defaults; the access time rule stays until
  // one is named (Settings::atime_given).
  Settings flags;
  flags.config.mount_flags.atime = live.flags.atime;
  flags.config.mount_flags.nodiratime = live.flags.nodiratime;

  Settings runtime;
  auto durability = fusefs::parse_durability(live.durability);
  auto dirsync = fusefs::parse_dirsync(live.dirsync);
  if (!durability || !dirsync) {
    throw Error(fmt::format("cannot read the settings of {} (durability '{}', dirsync '{}')",
                            live.mountpoint, live.durability, live.dirsync));
  }
  runtime.config.durability = *durability;
  runtime.config.dirsync = *dirsync;

  for (const auto& arg : options) {
    for (const auto& item : split(arg)) {
      if (item == "remount") continue;
      const std::string_view key = key_of(item);
      if (std::find(kKernelOnly.begin(), kKernelOnly.end(), key) != kKernelOnly.end()) {
        if (std::find(live.kernel_options.begin(), live.kernel_options.end(), item) !=
            live.kernel_options.end()) {
          continue;
        }
        std::string now = "it is not set";
        for (const auto& o : live.kernel_options) {
          if (key_of(o) == key) now = "it has " + o;
        }
        throw Error(fmt::format("'{}' cannot change on a live mount ({})", item, now));
      }
      const OptionSpec* spec = find_option(key);
      if (spec == nullptr) {
        apply_mount_options(fixed, item);  // throws: unknown option
        continue;
      }
      switch (spec->change) {
        case OptionChange::kRemount:
          apply_mount_options(flags, item);
          break;
        case OptionChange::kLive:
          apply_mount_options(runtime, item);
          break;
        case OptionChange::kMount: {
          Settings trial = fixed;
          apply_mount_options(trial, item);
          if (shown(trial) != live_shown) {
            throw Error(fmt::format(
                "'{}' cannot change on a live mount; unmount it and mount it again ({})", item,
                kWhatChanges));
          }
          fixed = std::move(trial);
          break;
        }
      }
    }
  }

  RemountPlan plan;
  plan.flags = flags.config.mount_flags;
  if (runtime.config.durability != *durability) {
    plan.settings.push_back(
        fmt::format("durability={}", fusefs::durability_name(runtime.config.durability)));
  }
  if (runtime.config.dirsync != *dirsync) {
    plan.settings.push_back(
        fmt::format("dirsync={}", fusefs::dirsync_name(runtime.config.dirsync)));
  }
  return plan;
}

int run_remount(const CommandLine& command_line) {
  const LiveMount live = read_live_mount(command_line.mountpoint);
  RemountPlan plan = plan_remount(live, command_line.mount_options);
  // dev and suid as for a new mount: mount.fuse3 adds them to every remount it runs.
  plan.flags = fusefs::allowed_flags(plan.flags, live.backing, ::geteuid() == 0, nullptr);

  const std::vector<std::string_view> settings(plan.settings.begin(), plan.settings.end());
  const bool flags_change = !(plan.flags == live.flags);
  // The control file is written through the mount, which refuses that while read-only.
  if (!settings.empty() && live.flags.read_only && plan.flags.read_only) {
    throw Error(fmt::format(
        "{} is read-only: durability and dirsync change once it is remounted rw", live.mountpoint));
  }
  if (plan.flags.read_only && !settings.empty()) set_live(live.mountpoint, settings);
  if (flags_change) remount_kernel(live.mountpoint, plan.flags);
  if (!plan.flags.read_only && !settings.empty()) set_live(live.mountpoint, settings);
  // Returns once the daemon follows the new flags: it reads them again to answer.
  read_control(live.mountpoint, fusefs::control_attr::kMount);
  return 0;
}

}  // namespace fsysfs::mount
