#pragma once

// The command line of `fsysfs crashtest` (crashtest_command.h): parsed and checked for
// form here; paths, root and the mount options are checked when it runs.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fusefs/crash_plan.h"

namespace fsysfs::mount {

// A durability mode as crashtest names it, and the mount options that make it.
struct CrashtestMode {
  std::string name;
  std::string options;
};
// none, fsync, close, strict (durability=...); dirsync (durability=fsync,dirsync).
std::optional<CrashtestMode> crashtest_mode(std::string_view name);

struct CrashtestArgs {
  bool help = false;
  std::string template_dir;
  std::string workload;
  std::string check;
  std::vector<CrashtestMode> modes;  // default none, fsync, dirsync, strict
  uint32_t points = 20;
  uint64_t seed = 0;
  bool seeded = false;  // --seed given; else one is drawn
  fusefs::CrashKeep keep = fusefs::CrashKeep::kNone;
  bool tear = false;
  std::string workdir;  // "": a new directory under $TMPDIR or /tmp
  std::string out;      // --out PREFIX: PREFIX.md and PREFIX.json
  std::optional<uint32_t> replay;
  double timeout_s = 0;  // 0: none
  std::string options;   // more -o options for every mount
};
// Throws Error naming the bad argument.
CrashtestArgs parse_crashtest_args(std::span<const std::string_view> args);
std::string crashtest_usage();
// What `fsysfs crashtest --help` prints after the usage.
std::string crashtest_help();

}  // namespace fsysfs::mount
