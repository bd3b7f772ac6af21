#include "mount/control_client.h"

#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "fusefs/control.h"
#include "fusefs/faults.h"
#include "mount/error.h"
#include "mount/options.h"

namespace fsysfs::mount {
namespace {

namespace attr = fusefs::control_attr;

std::string control_path(std::string_view mountpoint) {
  return fmt::format("{}/{}", mountpoint, fusefs::kControlName);
}

[[noreturn]] void fail(std::string_view mountpoint, std::string_view what, int err) {
  if (err == ENOENT || err == ENODATA || err == ENOTSUP) {
    throw Error(fmt::format("{} is not an fsysfs mount (no control file {})", mountpoint,
                            control_path(mountpoint)));
  }
  if (err == EPERM || err == EACCES) {
    throw Error(
        fmt::format("{}: permission denied (only root and the user who mounted {} may "
                    "change it)",
                    what, mountpoint));
  }
  if (err == ENOTCONN) {
    throw Error(fmt::format("{}: the fsysfs daemon of {} is gone (unmount it and mount again)",
                            what, mountpoint));
  }
  throw Error(fmt::format("{}: {}", what, std::strerror(err)));
}

std::string read_attr(std::string_view mountpoint, const char* name) {
  const std::string path = control_path(mountpoint);
  // The value may grow between asking its size and reading it: retry with more room.
  std::vector<char> buf(64 * 1024);
  while (true) {
    ssize_t n = ::getxattr(path.c_str(), name, buf.data(), buf.size());
    if (n >= 0) return std::string(buf.data(), static_cast<size_t>(n));
    if (errno != ERANGE || buf.size() >= (1u << 24)) fail(mountpoint, "reading " + path, errno);
    buf.resize(buf.size() * 4);
  }
}

void write_attr(std::string_view mountpoint, const char* name, std::string_view value,
                std::string_view what) {
  const std::string path = control_path(mountpoint);
  if (::setxattr(path.c_str(), name, value.data(), value.size(), 0) != 0) {
    int err = errno;
    if (err == EINVAL) {
      throw Error(fmt::format("{}: refused by the mount (see its log)", what));
    }
    fail(mountpoint, what, err);
  }
}

void need_mountpoint(std::span<const std::string_view> args, std::string_view usage) {
  if (args.empty() || args[0].empty() || args[0][0] == '-') {
    throw Error(fmt::format("missing MOUNTPOINT (usage: {})", usage));
  }
}

}  // namespace

int run_stats(std::span<const std::string_view> args) {
  constexpr std::string_view kUsage = "fsysfs stats MOUNTPOINT [--json] [--reset]";
  need_mountpoint(args, kUsage);
  bool json = false;
  bool reset = false;
  for (auto a : args.subspan(1)) {
    if (a == "--json") {
      json = true;
    } else if (a == "--reset") {
      reset = true;
    } else {
      throw Error(fmt::format("unexpected argument '{}' (usage: {})", a, kUsage));
    }
  }
  if (reset) {
    write_attr(args[0], attr::kStatsReset, "1", "resetting statistics");
    return 0;
  }
  fmt::print("{}", read_attr(args[0], json ? attr::kStatsJson : attr::kStats));
  return 0;
}

std::string read_control(std::string_view mountpoint, const char* name) {
  return read_attr(mountpoint, name);
}

void set_live(std::string_view mountpoint, std::span<const std::string_view> items) {
  // Everything is checked before anything changes.
  std::vector<std::pair<const char*, std::string>> changes;
  for (auto a : items) {
    auto eq = a.find('=');
    std::string_view key = a.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view{} : a.substr(eq + 1);
    if (key == "dirsync" || key == "nodirsync") {
      if (key == "nodirsync" && eq == std::string_view::npos) value = "off";
      if (key == "dirsync" && eq == std::string_view::npos) value = "on";
      if (key == "nodirsync" && eq != std::string_view::npos) {
        throw Error(fmt::format("'{}' takes no value", key));
      }
      auto d = fusefs::parse_dirsync(value);
      if (!d) throw Error(fmt::format("bad value '{}' for dirsync (expected on|off|auto)", value));
      changes.emplace_back(attr::kDirsync, std::string(fusefs::dirsync_name(*d)));
      continue;
    }
    const OptionSpec* spec = find_option(key);
    if (spec != nullptr && spec->change == OptionChange::kRemount) {
      throw Error(fmt::format("'{}' is a mount flag: change it with mount -o remount,{} {}", key, a,
                              mountpoint));
    }
    if (spec == nullptr || spec->change != OptionChange::kLive) {
      throw Error(
          fmt::format("'{}' cannot change on a live mount (durability and dirsync can)", key));
    }
    Settings scratch;
    apply_mount_options(scratch, a);  // the mount's own messages for a bad value
    changes.emplace_back(attr::kDurability,
                         std::string(fusefs::durability_name(scratch.config.durability)));
  }
  for (const auto& change : changes) {
    if (change.second == fusefs::durability_name(fusefs::Durability::kStrict) &&
        read_attr(mountpoint, attr::kStatsJson).find("\"writeback_cache\":true") !=
            std::string::npos) {
      throw Error(
          fmt::format("setting strict: {} uses the kernel writeback cache, which keeps "
                      "writes from the daemon (mount it without writeback_cache)",
                      mountpoint));
    }
  }
  for (const auto& [name, value] : changes) {
    write_attr(mountpoint, name, value, fmt::format("setting {}", value));
  }
}

int run_set(std::span<const std::string_view> args) {
  constexpr std::string_view kUsage =
      "fsysfs set MOUNTPOINT durability=none|fsync|close|strict | dirsync=on|off|auto ...";
  need_mountpoint(args, kUsage);
  if (args.size() < 2) throw Error(fmt::format("nothing to set (usage: {})", kUsage));
  set_live(args[0], args.subspan(1));
  return 0;
}

int run_inject(std::span<const std::string_view> args) {
  constexpr std::string_view kUsage = "fsysfs inject MOUNTPOINT RULE | --clear | --list";
  need_mountpoint(args, kUsage);
  if (args.size() != 2) throw Error(fmt::format("expected one rule (usage: {})", kUsage));
  if (args[1] == "--clear") {
    write_attr(args[0], attr::kInjectClear, "1", "clearing fault rules");
  } else if (args[1] == "--list") {
    fmt::print("{}", read_attr(args[0], attr::kFaults));
  } else {
    auto parsed = fusefs::parse_fault_rule(args[1]);
    if (auto* why = std::get_if<std::string>(&parsed)) {
      throw Error(fmt::format("bad fault rule '{}': {}", args[1], *why));
    }
    if (std::get<fusefs::FaultRule>(parsed).crash != fusefs::CrashPoint::kNone) {
      try {
        read_attr(args[0], attr::kCrash);
      } catch (const Error&) {
        throw Error(
            fmt::format("{} is not a crashsim mount: a crash rule needs -o crashsim", args[0]));
      }
    }
    write_attr(args[0], attr::kInject, args[1], "adding the fault rule");
  }
  return 0;
}

}  // namespace fsysfs::mount
