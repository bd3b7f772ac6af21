#include "mount/crashtest_args.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

#include "fusefs/durability.h"
#include "mount/error.h"

namespace fsysfs::mount {
namespace {

constexpr uint32_t kMaxPoints = 100'000;
constexpr std::array<std::string_view, 4> kDefaultModes{"none", "fsync", "dirsync", "strict"};

template <typename T>
T parse_number(std::string_view value, std::string_view option, T min, T max) {
  T v{};
  const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (value.empty() || ec != std::errc() || p != value.data() + value.size() || v < min ||
      v > max) {
    throw Error(fmt::format("bad value '{}' for {} (expected a number from {} to {})", value,
                            option, min, max));
  }
  return v;
}

std::vector<CrashtestMode> parse_modes(std::string_view list, std::string_view option) {
  std::vector<CrashtestMode> modes;
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    std::optional<CrashtestMode> mode = crashtest_mode(name);
    if (!mode) {
      throw Error(
          fmt::format("unknown mode '{}' in {} (expected none, fsync, close, strict or dirsync)",
                      name, option));
    }
    for (const auto& m : modes) {
      if (m.name == name) throw Error(fmt::format("mode '{}' named twice in {}", name, option));
    }
    modes.push_back(std::move(*mode));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return modes;
}

}  // namespace

std::optional<CrashtestMode> crashtest_mode(std::string_view name) {
  if (name == "dirsync") return CrashtestMode{"dirsync", "durability=fsync,dirsync"};
  if (!fusefs::parse_durability(name)) return std::nullopt;
  return CrashtestMode{std::string(name), fmt::format("durability={}", name)};
}

std::string crashtest_usage() {
  return "fsysfs crashtest --template DIR --workload CMD --check CMD [--modes LIST]\n"
         "                [--points N] [--seed S] [--keep none|random] [--tear]\n"
         "                [--timeout SEC] [--options OPTS] [--workdir DIR] [--out PREFIX]\n"
         "                [--replay RUNSEED --mode MODE]";
}

std::string crashtest_help() {
  return "For each durability MODE (default none,fsync,dirsync,strict; also close): copies\n"
         "the template directory to a scratch BACKING, mounts it with -o crashsim and runs\n"
         "the workload (sh -c CMD in the mount) once, uncrashed, to learn its length in\n"
         "requests (crashsim_ops), then checks what it left. Then, N times (--points,\n"
         "default 20): a fresh copy, a crash rule at a request drawn from the run's seed\n"
         "(before or after it is made), the workload, the rollback; then a mount without\n"
         "crashsim and the check (sh -c CMD in the mount): exit 0 means the program\n"
         "recovered. Both run as root with $FSYSFS_MNT (the mount), $FSYSFS_RUN_DIR (a\n"
         "directory of the run outside the mount: the workload can note there what it saw\n"
         "committed, for the check) and $FSYSFS_MODE.\n"
         "\n"
         "  --seed S           chooses the runs' seeds (drawn and printed when not given);\n"
         "                     the runs are the same in every mode\n"
         "  --keep random      keep a random subset of what no sync covered (default none:\n"
         "                     lose all of it); --tear may keep part of a write\n"
         "  --timeout SEC      stop the workload (and the check) after SEC seconds\n"
         "  --options OPTS     more -o options for every mount (engine=sync, ...)\n"
         "  --workdir DIR      make the scratch directory in DIR (default $TMPDIR or /tmp)\n"
         "  --out PREFIX       also write PREFIX.md and PREFIX.json\n"
         "  --replay RUNSEED --mode MODE\n"
         "                     run that one crash run again, print its crash report and the\n"
         "                     check's output, keep its BACKING\n"
         "\n"
         "Prints a table per mode (runs, recovered, failed, the failing runs' seeds); the\n"
         "directories of failed runs are kept. Exit status: 0 every run recovered, 1 some\n"
         "did not, 2 bad arguments or a failure of the tool (also a workload or check that\n"
         "fails without a crash), 130 interrupted.\n";
}

CrashtestArgs parse_crashtest_args(std::span<const std::string_view> args) {
  CrashtestArgs a;
  std::string_view modes_arg;
  std::string_view mode_arg;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view opt = args[i];
    std::optional<std::string_view> inline_value;
    if (const size_t eq = opt.find('='); opt.starts_with("--") && eq != std::string_view::npos) {
      inline_value = opt.substr(eq + 1);
      opt = opt.substr(0, eq);
    }
    auto value = [&]() -> std::string_view {
      if (inline_value) return *inline_value;
      if (i + 1 >= args.size()) throw Error(fmt::format("{} needs a value", opt));
      return args[++i];
    };
    if (opt == "-h" || opt == "--help") {
      a.help = true;
    } else if (opt == "--template") {
      a.template_dir = value();
    } else if (opt == "--workload") {
      a.workload = value();
    } else if (opt == "--check") {
      a.check = value();
    } else if (opt == "--modes") {
      modes_arg = value();
    } else if (opt == "--mode") {
      mode_arg = value();
    } else if (opt == "--points") {
      a.points = parse_number<uint32_t>(value(), opt, 1, kMaxPoints);
    } else if (opt == "--seed") {
      a.seed = parse_number<uint64_t>(value(), opt, 0, UINT64_MAX);
      a.seeded = true;
    } else if (opt == "--keep") {
      const std::string_view keep = value();
      if (keep != "none" && keep != "random") {
        throw Error(fmt::format(
            "bad value '{}' for --keep (expected none or random: keep all would lose nothing)",
            keep));
      }
      a.keep = keep == "random" ? fusefs::CrashKeep::kRandom : fusefs::CrashKeep::kNone;
    } else if (opt == "--tear") {
      a.tear = true;
    } else if (opt == "--timeout") {
      const std::string text(value());
      char* end = nullptr;
      a.timeout_s = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(a.timeout_s) || a.timeout_s <= 0) {
        throw Error(fmt::format("bad value '{}' for --timeout (expected seconds, > 0)", text));
      }
    } else if (opt == "--options") {
      a.options = value();
    } else if (opt == "--workdir") {
      a.workdir = value();
    } else if (opt == "--out") {
      a.out = value();
    } else if (opt == "--replay") {
      a.replay = parse_number<uint32_t>(value(), opt, 0, UINT32_MAX);
    } else {
      throw Error(fmt::format("unexpected argument '{}' (usage: {})", args[i], crashtest_usage()));
    }
  }
  if (a.help) return a;
  if (a.template_dir.empty() || a.workload.empty() || a.check.empty()) {
    throw Error(fmt::format("crashtest needs --template, --workload and --check (usage: {})",
                            crashtest_usage()));
  }
  if (a.tear && a.keep != fusefs::CrashKeep::kRandom) {
    throw Error("--tear needs --keep random (the seed decides which sectors of a write are kept)");
  }
  if (a.replay) {
    if (mode_arg.empty()) throw Error("--replay needs --mode MODE: the mode of the run to replay");
    if (!a.out.empty()) throw Error("--replay writes no report: leave out --out");
    a.modes = parse_modes(mode_arg, "--mode");
    if (a.modes.size() != 1) throw Error("--replay runs one mode: give --mode one");
  } else {
    if (!mode_arg.empty()) {
      throw Error("--mode goes with --replay; to choose the modes to test, use --modes LIST");
    }
    if (modes_arg.empty()) {
      for (std::string_view m : kDefaultModes) a.modes.push_back(*crashtest_mode(m));
    } else {
      a.modes = parse_modes(modes_arg, "--modes");
    }
  }
  if (!a.seeded) a.seed = std::random_device{}();
  return a;
}

}  // namespace fsysfs::mount
