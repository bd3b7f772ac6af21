#pragma once

// The command line of `fsysfs [options] BACKING MOUNTPOINT`, in the shapes people and
// mount.fuse3 write it: options before or after the positional arguments, `-o` repeated or
// attached (`-oallow_other`).

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mount/options.h"

namespace fsysfs::mount {

struct CommandLine {
  enum class Action { kMount, kHelp, kVersion };
  Action action = Action::kMount;
  bool foreground = false;  // -f, or -d
  bool debug = false;       // -d
  std::string backing;      // as given; validated later
  std::string mountpoint;
  std::vector<std::string> mount_options;  // each -o argument, in order
  // An -o item is `remount`: change the live mount at `mountpoint` (mount/remount.h).
  // BACKING may then be left out, and is ignored, as mount(2) ignores it.
  bool remount = false;
};

// `args` excludes the program name. Throws Error on an unknown flag, a missing -o
// argument, or a wrong number of positional arguments (unless --help/--version was given,
// which wins over everything else).
CommandLine parse_command_line(std::span<const std::string_view> args);

// Applies every -o of `command_line` to default settings and resolves dependent defaults.
// Paths are not checked here. Throws Error on a bad option.
Settings settings_from(const CommandLine& command_line);

// The --help text: usage, flags and the mount option table.
std::string help_text();
std::string version_text();

}  // namespace fsysfs::mount
