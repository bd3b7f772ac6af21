// fsysfs: mounts BACKING at MOUNTPOINT through the fsys engine.

#include <sys/resource.h>

#include <array>
#include <cstdio>
#include <exception>
#include <span>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "fusefs/session.h"
#include "mount/command_line.h"
#include "mount/control_client.h"
#include "mount/crash_command.h"
#include "mount/crashtest_command.h"
#include "mount/daemon.h"
#include "mount/error.h"
#include "mount/paths.h"
#include "mount/remount.h"

namespace fsysfs::mount {
namespace {

// `fsysfs <name> ...` commands that act on a live mount instead of creating one. They are
// recognised by their first word, before the mount command line is parsed.
struct Subcommand {
  std::string_view name;
  int (*run)(std::span<const std::string_view> args);
};
constexpr std::array<Subcommand, 5> kSubcommands{{
    {"stats", run_stats},
    {"set", run_set},
    {"inject", run_inject},
    {"crash", run_crash},
    {"crashtest", run_crashtest},
}};

// The daemon holds two fds per open file and one per inode the kernel knows: start-up
// soft limits (1024) would cap every user of the mount together at a few hundred files.
void raise_fd_limit() {
  struct rlimit lim;
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);  // best effort: the old limit still works
  }
}

int run_mount(std::span<const std::string_view> args) {
  CommandLine command_line = parse_command_line(args);
  if (command_line.action == CommandLine::Action::kHelp) {
    fmt::print("{}", help_text());
    return 0;
  }
  if (command_line.action == CommandLine::Action::kVersion) {
    fmt::print("{}", version_text());
    return 0;
  }
  if (command_line.remount) return run_remount(command_line);
  Settings settings = settings_from(command_line);
  MountPaths paths = validate_paths(command_line.backing, command_line.mountpoint);
  check_fuse_device();
  settings.config.backing = paths.backing;
  settings.config.mountpoint = paths.mountpoint;
  raise_fd_limit();
  if (command_line.foreground) return run_foreground(settings, fusefs::serve);
  run_daemon(settings, fusefs::serve);
  return 0;
}

int run(std::span<const std::string_view> args) {
  if (!args.empty()) {
    for (const auto& sub : kSubcommands) {
      if (sub.name == args[0]) return sub.run(args.subspan(1));
    }
  }
  return run_mount(args);
}

}  // namespace
}  // namespace fsysfs::mount

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  try {
    return fsysfs::mount::run(args);
  } catch (const fsysfs::mount::Error& e) {
    fmt::print(stderr, "fsysfs: {}\n", e.what());
  } catch (const std::exception& e) {
    fmt::print(stderr, "fsysfs: unexpected error: {}\n", e.what());
  }
  return 1;
}
