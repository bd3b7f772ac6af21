#include "mount/command_line.h"

#include <fmt/format.h>

#include "mount/error.h"

#ifndef FSYSFS_VERSION
#error "FSYSFS_VERSION must be defined by the build"
#endif

namespace fsysfs::mount {
namespace {

constexpr std::string_view kUsage =
    "usage: fsysfs [-f] [-d] [-o OPTION[,OPTION...]] BACKING MOUNTPOINT";

bool has_item(std::string_view options, std::string_view item) {
  size_t pos = 0;
  while (pos <= options.size()) {
    size_t comma = options.find(',', pos);
    if (comma == std::string_view::npos) comma = options.size();
    if (options.substr(pos, comma - pos) == item) return true;
    pos = comma + 1;
  }
  return false;
}

}  // namespace

CommandLine parse_command_line(std::span<const std::string_view> args) {
  CommandLine cl;
  std::vector<std::string_view> positional;
  bool only_positional = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (only_positional || arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
    } else if (arg == "--") {
      only_positional = true;
    } else if (arg == "-h" || arg == "--help") {
      cl.action = CommandLine::Action::kHelp;
    } else if (arg == "-V" || arg == "--version") {
      if (cl.action != CommandLine::Action::kHelp) cl.action = CommandLine::Action::kVersion;
    } else if (arg == "-f") {
      cl.foreground = true;
    } else if (arg == "-d") {
      cl.debug = true;
      cl.foreground = true;
    } else if (arg == "-o") {
      if (i + 1 == args.size()) throw Error("option -o needs an argument (-o OPTION[,OPTION...])");
      cl.mount_options.emplace_back(args[++i]);
    } else if (arg.starts_with("-o")) {
      cl.mount_options.emplace_back(arg.substr(2));
    } else {
      throw Error(fmt::format("unknown argument '{}' (see fsysfs --help)", arg));
    }
  }
  if (cl.action != CommandLine::Action::kMount) return cl;
  for (const auto& options : cl.mount_options)
    cl.remount = cl.remount || has_item(options, "remount");
  if (cl.remount && positional.size() == 1) {
    cl.mountpoint = positional[0];
    return cl;
  }
  if (positional.empty()) throw Error(fmt::format("missing BACKING and MOUNTPOINT ({})", kUsage));
  if (positional.size() == 1) throw Error(fmt::format("missing MOUNTPOINT ({})", kUsage));
  if (positional.size() > 2) {
    throw Error(fmt::format("too many arguments: unexpected '{}' ({})", positional[2], kUsage));
  }
  cl.backing = positional[0];
  cl.mountpoint = positional[1];
  return cl;
}

Settings settings_from(const CommandLine& command_line) {
  Settings settings;
  for (const auto& options : command_line.mount_options) apply_mount_options(settings, options);
  finish_settings(settings);
  for (const auto& options : command_line.mount_options) {
    if (options.empty()) continue;
    if (!settings.config.options.empty()) settings.config.options += ',';
    settings.config.options += options;
  }
  settings.config.debug = command_line.debug;
  // libfuse's request trace arrives through the log at debug level.
  if (command_line.debug && settings.log_level > spdlog::level::debug) {
    settings.log_level = spdlog::level::debug;
  }
  return settings;
}

std::string help_text() {
  std::string out = fmt::format(
      "{}\n"
      "       fsysfs -o remount,OPTION[,OPTION...] [BACKING] MOUNTPOINT\n"
      "       fsysfs stats MOUNTPOINT [--json] [--reset]\n"
      "       fsysfs set MOUNTPOINT durability=MODE | dirsync=on|off|auto ...\n"
      "       fsysfs inject MOUNTPOINT RULE | --clear | --list\n"
      "       fsysfs crash MOUNTPOINT [--keep none|all|random] [--seed N] [--tear]\n"
      "       fsysfs crashtest --template DIR --workload CMD --check CMD [--modes LIST]\n"
      "                        [--points N] [--seed S] ... (fsysfs crashtest --help)\n"
      "       fsysfs --help | --version\n"
      "\n"
      "Shows the directory tree of BACKING at MOUNTPOINT. Writes and fsyncs made under\n"
      "MOUNTPOINT go through the fsys engine (io_uring) onto BACKING.\n"
      "Runs as a daemon and returns once the mount is live; unmount with umount or\n"
      "fusermount3 -u. In /etc/fstab:\n"
      "  /srv/data  /mnt/data  fuse.fsysfs  allow_other  0 0\n"
      "\n"
      "  -f                stay in the foreground, log to stderr\n"
      "  -d                FUSE debug output (implies -f)\n"
      "  -o OPTIONS        mount options, comma separated; may be repeated\n"
      "  -h, --help        this text\n"
      "  -V, --version     print the version\n"
      "\n"
      "-o remount changes a live mount, as `mount -o remount,...` does through\n"
      "mount.fuse3: the options marked below as changing with a remount or on a live\n"
      "mount; any other option must name the value the mount already has.\n"
      "\n"
      "stats, set and inject work on a live mount through its control file\n"
      "MOUNTPOINT/.fsysfs (anyone may read stats; root and the user who mounted may\n"
      "change settings and inject faults). A fault RULE is\n"
      "  op=OP[|OP...][,path=GLOB][,errno=E][,delay_ms=N][,count=N][,probability=P]\n"
      "with OP one of read write fsync fdatasync fsyncdir flush open create mknod mkdir\n"
      "symlink link unlink rmdir rename, or all; GLOB matches the path in the mount\n"
      "(/dir/file); E is a name like EIO or ENOSPC. On a crashsim mount, a crash point\n"
      "  op=OP[,path=GLOB][,count=N],crash=before|after[,keep=none|random][,seed=S][,tear=1]\n"
      "cuts the mount off at the N-th matching request, before it is made or after.\n"
      "\n"
      "crash (root) cuts a mount made with -o crashsim off as a power cut would and\n"
      "rolls BACKING back to what the syncs made durable: a file's data and size\n"
      "after its fsync or fdatasync, a name after its directory's fsync (both, for a\n"
      "rename), attributes after the file's fsync. --keep all keeps every change;\n"
      "--keep random keeps a subset chosen by --seed (printed), and --tear may keep\n"
      "part of a write in 512-byte sectors. It prints what it undid and leaves\n"
      "MOUNTPOINT free to mount again.\n"
      "\n"
      "crashtest (root) tries a program against power cuts in each durability mode:\n"
      "it runs the workload on scratch crashsim mounts of a copy of the template,\n"
      "crashes each run at a different request, mounts what is left and runs the\n"
      "check; it prints per mode how many runs recovered and the seeds of those that\n"
      "did not (--replay SEED --mode MODE runs one again).\n"
      "\n",
      kUsage);
  out += options_help();
  return out;
}

std::string version_text() { return fmt::format("fsysfs {}\n", FSYSFS_VERSION); }

}  // namespace fsysfs::mount
