#pragma once

// The `-o` mount options of fsysfs: one declarative table that drives the parser, the
// `--help` text, `fsysfs set` and `-o remount` (which options may change on a live mount,
// and how).

#include <spdlog/common.h>

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "fusefs/session.h"

namespace fsysfs::mount {

// Everything the mount options configure. Defaults live in the member initialisers here and
// in fusefs::Config / engine::Options; the table shows them by reading a default Settings.
struct Settings {
  fusefs::Config config;
  // Unset: follows allow_other (a shared mount needs the kernel's permission checks).
  // Copied into config.default_permissions by finish_settings().
  std::optional<bool> default_permissions;
  // Unset: on with durability=none (nothing is synced, so the kernel may as well cache
  // writes), else off. Copied into config.writeback_cache by finish_settings().
  std::optional<bool> writeback_cache;
  // How long the kernel may trust what it cached: `cache` sets the defaults of the four
  // below; each one given explicitly wins, whatever the order. Copied into config by
  // finish_settings().
  fusefs::CacheMode cache = fusefs::CacheMode::kAuto;
  std::optional<double> attr_timeout;
  std::optional<double> entry_timeout;
  std::optional<double> negative_timeout;
  std::optional<bool> keep_cache;
  // An access time option (noatime, relatime, ...) was applied. The first one resets the
  // atime rule and nodiratime to the kernel's default, relatime, as mount(2) does when it
  // is given any of them: `remount,noatime` drops nodiratime, `remount,ro` keeps both.
  bool atime_given = false;
  spdlog::level::level_enum log_level = spdlog::level::info;
  std::string log_file;  // empty: stderr in the foreground, syslog as a daemon
};

enum class OptionSection {
  kFsysfs,   // options of this filesystem
  kGeneric,  // mount(8) options accepted for fstab compatibility and ignored
};

// Whether and how an option can change once mounted.
enum class OptionChange {
  kMount,    // fixed until unmounted
  kRemount,  // a kernel mount flag: `mount -o remount,...` changes it
  kLive,     // `fsysfs set` and `mount -o remount,...` change it
};

enum class OptionValue {
  kNone,      // `key`
  kRequired,  // `key=value`
  kOptional,  // `key` or `key=value`
};

struct OptionSpec {
  std::string_view key;
  OptionValue value;
  std::string_view value_syntax;  // for --help: "N", "SECONDS", "uring|sync", ...
  OptionSection section;
  OptionChange change;
  std::string_view help;
  // Stores the option into `settings`. `value` is nullopt when the option was given
  // without '='. Returns an empty string, or what was expected for a bad value ("a
  // positive integer"). Unset for kGeneric entries.
  std::function<std::string(Settings& settings, std::optional<std::string_view> value)> apply;
  // The option's current value as text ("on", "256", "info"); unset for options that only
  // switch another one (no_writeback_cache) and for kGeneric entries.
  std::function<std::string(const Settings& settings)> show;
};

// The table, in --help order.
std::span<const OptionSpec> option_table();
const OptionSpec* find_option(std::string_view key);

// Applies one comma-separated `-o` argument ("allow_other,threads=4"), left to right; a
// later occurrence of an option wins. Empty items are skipped. Throws Error naming the
// option (unknown, missing or unexpected value) or the option and bad value.
void apply_mount_options(Settings& settings, std::string_view options);

// Resolves defaults that depend on other options (and records them, so that show() reports
// them). Call once, after every -o was applied.
void finish_settings(Settings& settings);

// The "Mount options" part of --help, generated from the table.
std::string options_help();

}  // namespace fsysfs::mount
