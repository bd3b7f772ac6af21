#include "mount/options.h"

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "mount/error.h"

namespace fsysfs::mount {
namespace {

using engine::BackendKind;
using engine::InlineOps;

// Accessors into Settings. show() functions only read through them; the const_cast in
// read() exists so one accessor serves both apply and show.
template <class T>
using Field = T& (*)(Settings&);

template <class T>
T read(Field<T> field, const Settings& settings) {
  return field(const_cast<Settings&>(settings));
}

std::string on_off(bool on) { return on ? "on" : "off"; }

std::optional<unsigned long long> parse_unsigned(std::string_view text) {
  unsigned long long value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// Checks and stores an unsigned value in [min, max]; the expectation names the range only
// when the number parsed, so "abc" reads "expected a positive integer".
std::string set_unsigned(unsigned& out, std::string_view text, unsigned min, unsigned max) {
  auto value = parse_unsigned(text);
  if (!value) return min > 0 ? "a positive integer" : "a non-negative integer";
  if (*value < min || *value > max) return fmt::format("an integer from {} to {}", min, max);
  out = static_cast<unsigned>(*value);
  return {};
}

OptionSpec flag(std::string_view key, std::string_view help, std::function<void(Settings&)> set,
                std::function<std::string(const Settings&)> show) {
  return OptionSpec{
      .key = key,
      .value = OptionValue::kNone,
      .value_syntax = {},
      .section = OptionSection::kFsysfs,
      .change = OptionChange::kMount,
      .help = help,
      .apply = [set = std::move(set)](Settings& s, std::optional<std::string_view>) -> std::string {
        set(s);
        return {};
      },
      .show = std::move(show),
  };
}

OptionSpec bool_flag(std::string_view key, std::string_view help, Field<bool> field) {
  return flag(
      key, help, [field](Settings& s) { field(s) = true; },
      [field](const Settings& s) { return on_off(read(field, s)); });
}

OptionSpec unsigned_option(std::string_view key, std::string_view help, Field<unsigned> field,
                           unsigned min, unsigned max) {
  return OptionSpec{
      .key = key,
      .value = OptionValue::kRequired,
      .value_syntax = "N",
      .section = OptionSection::kFsysfs,
      .change = OptionChange::kMount,
      .help = help,
      .apply =
          [field, min, max](Settings& s, std::optional<std::string_view> v) {
            return set_unsigned(field(s), *v, min, max);
          },
      .show = [field](const Settings& s) { return std::to_string(read(field, s)); },
  };
}

// A number of seconds whose default follows `cache` (Settings): `unset` says how, in --help.
OptionSpec seconds_option(std::string_view key, std::string_view help,
                          Field<std::optional<double>> field, std::string unset) {
  return OptionSpec{
      .key = key,
      .value = OptionValue::kRequired,
      .value_syntax = "SECONDS",
      .section = OptionSection::kFsysfs,
      .change = OptionChange::kMount,
      .help = help,
      .apply = [field](Settings& s, std::optional<std::string_view> v) -> std::string {
        double value = 0;
        const char* end = v->data() + v->size();
        auto [ptr, ec] = std::from_chars(v->data(), end, value);
        if (v->empty() || ec != std::errc() || ptr != end || !std::isfinite(value) || value < 0) {
          return "a number of seconds, 0 or more";
        }
        field(s) = value;
        return {};
      },
      .show = [field, unset = std::move(unset)](const Settings& s) -> std::string {
        const std::optional<double> value = read(field, s);
        return value ? fmt::format("{}", *value) : unset;
      },
  };
}

// A byte count with an optional binary suffix: 4096, 512K, 64M, 2G, 1T.
std::optional<unsigned long long> parse_size(std::string_view text) {
  constexpr std::string_view kSuffixes = "KMGT";
  unsigned shift = 0;
  if (!text.empty()) {
    const size_t i = kSuffixes.find(static_cast<char>(std::toupper(text.back())));
    if (i != std::string_view::npos) {
      shift = 10 * static_cast<unsigned>(i + 1);
      text.remove_suffix(1);
    }
  }
  auto value = parse_unsigned(text);
  if (!value || *value > (~0ull >> shift)) return std::nullopt;
  return *value << shift;
}

// An option whose value is one of a fixed set of words.
template <class T>
struct Word {
  std::string_view word;
  T value;
};

template <class T, size_t N>
OptionSpec word_option(std::string_view key, std::string_view syntax, std::string_view help,
                       Field<T> field, const std::array<Word<T>, N>& words,
                       OptionChange change = OptionChange::kMount) {
  std::string expected = "one of " + std::string(syntax);
  return OptionSpec{
      .key = key,
      .value = OptionValue::kRequired,
      .value_syntax = syntax,
      .section = OptionSection::kFsysfs,
      .change = change,
      .help = help,
      .apply = [field, words, expected](Settings& s,
                                        std::optional<std::string_view> v) -> std::string {
        for (const auto& w : words) {
          if (w.word == *v) {
            field(s) = w.value;
            return {};
          }
        }
        return expected;
      },
      .show = [field, words](const Settings& s) -> std::string {
        T current = read(field, s);
        for (const auto& w : words) {
          if (w.value == current) return std::string(w.word);
        }
        return "?";
      },
  };
}

// A kernel mount flag (OptionChange::kRemount) that `set` switches in MountFlags; `show`
// (unset for the undoing spelling) reads it back.
OptionSpec mount_flag(std::string_view key, std::string_view help,
                      std::function<void(fusefs::MountFlags&)> set,
                      std::function<bool(const fusefs::MountFlags&)> show = {}) {
  OptionSpec spec =
      flag(key, help, [set = std::move(set)](Settings& s) { set(s.config.mount_flags); }, {});
  if (show) {
    spec.show = [show = std::move(show)](const Settings& s) {
      return on_off(show(s.config.mount_flags));
    };
  }
  spec.change = OptionChange::kRemount;
  return spec;
}

void atime_option_given(Settings& s) {
  if (s.atime_given) return;
  s.atime_given = true;
  s.config.mount_flags.atime = fusefs::Atime::kRelatime;
  s.config.mount_flags.nodiratime = false;
}

// An access time flag: a mount_flag that first resets the whole rule (atime_option_given).
OptionSpec atime_flag(std::string_view key, std::string_view help,
                      std::function<void(fusefs::MountFlags&)> set,
                      std::function<bool(const fusefs::MountFlags&)> show = {}) {
  OptionSpec spec = mount_flag(key, help, std::move(set), std::move(show));
  spec.apply = [apply = std::move(spec.apply)](Settings& s, std::optional<std::string_view> v) {
    atime_option_given(s);
    return apply(s, v);
  };
  return spec;
}

// A mount(8) option accepted from fstab and ignored.
OptionSpec ignored_flag(std::string_view key) {
  return OptionSpec{.key = key,
                    .value = OptionValue::kNone,
                    .value_syntax = {},
                    .section = OptionSection::kGeneric,
                    .change = OptionChange::kMount,
                    .help = {},
                    .apply = {},
                    .show = {}};
}

std::vector<OptionSpec> build_table() {
  std::vector<OptionSpec> t;
  auto fs = [&t](OptionSpec spec) { t.push_back(std::move(spec)); };

  // FUSE session.
  fs(bool_flag("allow_other", "let every user, not only the one who mounted, use the mount",
               [](Settings& s) -> bool& { return s.config.allow_other; }));
  fs(flag(
      "default_permissions", "the kernel checks permissions from mode bits, owners and POSIX ACLs",
      [](Settings& s) { s.default_permissions = true; },
      [](const Settings& s) -> std::string {
        if (s.default_permissions) return on_off(*s.default_permissions);
        return "on with allow_other, else off";
      }));
  fs(flag("no_default_permissions", "turn default_permissions off, even with allow_other",
          [](Settings& s) { s.default_permissions = false; }, {}));
  fs(OptionSpec{
      .key = "threads",
      .value = OptionValue::kRequired,
      .value_syntax = "N",
      .section = OptionSection::kFsysfs,
      .change = OptionChange::kMount,
      .help = "maximum number of FUSE worker threads; with inline_io=all, all but one may wait "
              "for the device at once, and further syncs go to the engine's threads",
      .apply =
          [](Settings& s, std::optional<std::string_view> v) {
            return set_unsigned(s.config.threads, *v, 1, 1024);
          },
      .show = [](const Settings& s) -> std::string {
        return std::to_string(s.config.worker_threads());
      },
  });
  fs(bool_flag("clone_fd", "give each FUSE worker thread its own /dev/fuse descriptor",
               [](Settings& s) -> bool& { return s.config.clone_fd; }));
  fs(unsigned_option(
      "max_background",
      "readahead and writeback requests the kernel keeps in flight (congestion at 3/4); 0 "
      "keeps the kernel's default, 12",
      [](Settings& s) -> unsigned& { return s.config.max_background; }, 0, 65535));
  fs(flag(
      "writeback_cache", "let the kernel cache writes and send them in batches",
      [](Settings& s) { s.writeback_cache = true; },
      [](const Settings& s) -> std::string {
        if (s.writeback_cache) return on_off(*s.writeback_cache);
        return "on with durability=none, else off";
      }));
  fs(flag("no_writeback_cache", "turn writeback_cache off, even with durability=none",
          [](Settings& s) { s.writeback_cache = false; }, {}));
  fs(OptionSpec{
      .key = "max_dirty",
      .value = OptionValue::kRequired,
      .value_syntax = "auto|kernel|SIZE",
      .section = OptionSection::kFsysfs,
      .change = OptionChange::kMount,
      .help = "how much dirty page cache the kernel lets the mount hold before writers wait "
              "(root only): auto lifts FUSE's cap (1% of the system's dirty limit, strict) to "
              "a local disk's limits when the writeback cache is on; "
              "kernel keeps FUSE's cap; SIZE (bytes, K, M, G) sets it",
      .apply = [](Settings& s, std::optional<std::string_view> v) -> std::string {
        using Kind = fusefs::DirtyLimit::Kind;
        fusefs::DirtyLimit& limit = s.config.dirty_limit;
        if (*v == "auto" || *v == "kernel") {
          limit = {.kind = *v == "auto" ? Kind::kAuto : Kind::kKernel, .bytes = 0};
          return {};
        }
        auto bytes = parse_size(*v);
        if (!bytes || *bytes == 0) return "auto, kernel or a size such as 512M";
        limit = {.kind = Kind::kBytes, .bytes = *bytes};
        return {};
      },
      .show = [](const Settings& s) -> std::string {
        const fusefs::DirtyLimit& limit = s.config.dirty_limit;
        switch (limit.kind) {
          case fusefs::DirtyLimit::Kind::kAuto:
            return "auto";
          case fusefs::DirtyLimit::Kind::kKernel:
            return "kernel";
          case fusefs::DirtyLimit::Kind::kBytes:
            return std::to_string(limit.bytes);
        }
        return "?";
      },
  });
  fs(bool_flag("crashsim",
               "crash simulation: record how to undo every change no sync has made durable "
               "yet, for `fsysfs crash` (root, without writeback_cache)",
               [](Settings& s) -> bool& { return s.config.crashsim; }));
  fs(word_option<fusefs::CacheMode>(
      "cache", "auto|always|never",
      "what the kernel may cache: auto trusts names, attributes and missing names for "
      "a second; always for a day (a BACKING that only this mount changes); never not at all "
      "(a BACKING that others change). Sets the defaults of the four options below",
      [](Settings& s) -> fusefs::CacheMode& { return s.cache; },
      std::array{Word<fusefs::CacheMode>{"auto", fusefs::CacheMode::kAuto},
                 Word<fusefs::CacheMode>{"always", fusefs::CacheMode::kAlways},
                 Word<fusefs::CacheMode>{"never", fusefs::CacheMode::kNever}}));
  OptionSpec keep_cache = word_option<std::optional<bool>>(
      "keep_cache", "auto|off",
      "keep a file's cached pages when it is opened again unchanged (size and mtime); off for "
      "a BACKING that others change",
      [](Settings& s) -> std::optional<bool>& { return s.keep_cache; },
      std::array{Word<std::optional<bool>>{"auto", true}, Word<std::optional<bool>>{"off", false}});
  keep_cache.show = [](const Settings& s) -> std::string {
    if (!s.keep_cache) return "auto; off with cache=never";
    return *s.keep_cache ? "auto" : "off";
  };
  fs(std::move(keep_cache));
  const std::string per_mode = "1; 86400 with cache=always, 0 with cache=never";
  fs(seconds_option(
      "attr_timeout", "how long the kernel may cache file attributes",
      [](Settings& s) -> std::optional<double>& { return s.attr_timeout; }, per_mode));
  fs(seconds_option(
      "entry_timeout", "how long the kernel may cache name lookups",
      [](Settings& s) -> std::optional<double>& { return s.entry_timeout; }, per_mode));
  fs(seconds_option(
      "negative_timeout",
      "how long the kernel may remember that a name does not exist; 0: not at all",
      [](Settings& s) -> std::optional<double>& { return s.negative_timeout; }, per_mode));
  fs(unsigned_option(
      "handle_cache",
      "inodes the kernel has forgotten that file handles of the mount (open_by_handle_at, NFS) "
      "still open, about 150 bytes each; 0: such handles are stale (ESTALE)",
      [](Settings& s) -> unsigned& { return s.config.handle_cache; }, 0, 1u << 30));

  // The engine.
  fs(word_option<BackendKind>(
      "engine", "auto|uring|sync",
      "I/O engine: io_uring (auto falls back to syscalls if no ring can be set up)",
      [](Settings& s) -> BackendKind& { return s.config.engine.backend; },
      std::array{Word<BackendKind>{"auto", BackendKind::kAuto},
                 Word<BackendKind>{"uring", BackendKind::kUring},
                 Word<BackendKind>{"sync", BackendKind::kSync}}));
  fs(unsigned_option(
      "queue_depth", "io_uring submission queue entries",
      [](Settings& s) -> unsigned& { return s.config.engine.queue_depth; }, 1, 32768));
  fs(OptionSpec{
      .key = "sqpoll",
      .value = OptionValue::kOptional,
      .value_syntax = "IDLE_MS",
      .section = OptionSection::kFsysfs,
      .change = OptionChange::kMount,
      .help = "a kernel thread polls the ring; it sleeps after IDLE_MS without work",
      .apply = [](Settings& s, std::optional<std::string_view> v) -> std::string {
        if (v) {
          std::string expected = set_unsigned(s.config.engine.sqpoll_idle_ms, *v, 0, 3600000);
          if (!expected.empty()) return "idle milliseconds, " + expected;
        }
        s.config.engine.sqpoll = true;
        return {};
      },
      .show = [](const Settings& s) -> std::string {
        const auto& e = s.config.engine;
        return e.sqpoll ? fmt::format("on, idle {} ms", e.sqpoll_idle_ms) : "off";
      },
  });
  fs(unsigned_option(
      "fixed_files", "registered file slots; 0 turns them off",
      [](Settings& s) -> unsigned& { return s.config.engine.fixed_files; }, 0, 1u << 16));
  fs(unsigned_option(
      "buffers", "registered write buffers; 0 turns them off",
      [](Settings& s) -> unsigned& { return s.config.engine.buffer_count; }, 0, 4096));
  fs(unsigned_option(
      "sync_threads", "worker threads of the syscall engine",
      [](Settings& s) -> unsigned& { return s.config.engine.sync_threads; }, 1, 256));
  fs(unsigned_option(
      "ring_sync_threads",
      "io_uring engine: threads that run fsync/fdatasync requests; 0 sends them to the ring",
      [](Settings& s) -> unsigned& { return s.config.engine.ring_sync_threads; }, 0, 256));
  fs(word_option<fusefs::Transport>(
      "transport", "auto|uring|dev",
      "how FUSE requests reach the daemon: auto takes FUSE over io_uring where the kernel offers "
      "it (Linux 6.14+, fuse module parameter enable_uring on) and /dev/fuse otherwise; uring "
      "fails the mount without it; dev always reads /dev/fuse",
      [](Settings& s) -> fusefs::Transport& { return s.config.transport; },
      std::array{Word<fusefs::Transport>{"auto", fusefs::Transport::kAuto},
                 Word<fusefs::Transport>{"uring", fusefs::Transport::kUring},
                 Word<fusefs::Transport>{"dev", fusefs::Transport::kDev}}));
  fs(unsigned_option(
      "uring_depth", "io_uring transport: requests in flight per queue (one queue per CPU)",
      [](Settings& s) -> unsigned& { return s.config.uring_depth; }, 1, 1024));
  fs(word_option<bool>(
      "uring_priority", "normal|idle",
      "io_uring transport: the scheduling class of the queues' threads (each pinned to its "
      "queue's CPU); idle (SCHED_IDLE) lets the application a reply wakes go on on the same CPU "
      "(round trips twice as fast on an idle machine) but starves the ring's syncs on busy CPUs",
      [](Settings& s) -> bool& { return s.config.uring_idle_priority; },
      std::array{Word<bool>{"normal", false}, Word<bool>{"idle", true}}));
  fs(word_option<InlineOps>(
      "inline_io", "off|writes|all",
      "where writes and syncs run: all on the FUSE worker that received them, as a passthrough "
      "does; writes only plain writes there, handing syncs and write+sync chains to the engine's "
      "threads and ring; off hands every write to the ring",
      [](Settings& s) -> InlineOps& { return s.config.engine.inline_ops; },
      std::array{Word<InlineOps>{"off", InlineOps::kNone},
                 Word<InlineOps>{"writes", InlineOps::kPageCache},
                 Word<InlineOps>{"all", InlineOps::kAll}}));
  fs(word_option<bool>(
      "nvme_flush", "auto|off", "send an NVMe FLUSH after each fsync where the device allows it",
      [](Settings& s) -> bool& { return s.config.engine.nvme_flush; },
      std::array{Word<bool>{"auto", true}, Word<bool>{"off", false}}));

  // Durability.
  fs(word_option<fusefs::Durability>(
      "durability", "none|fsync|close|strict",
      "when writes are durable: none skips syncs, fsync syncs when asked, close also "
      "syncs at close, strict makes every write durable before it returns",
      [](Settings& s) -> fusefs::Durability& { return s.config.durability; },
      std::array{Word<fusefs::Durability>{"none", fusefs::Durability::kNone},
                 Word<fusefs::Durability>{"fsync", fusefs::Durability::kFsync},
                 Word<fusefs::Durability>{"close", fusefs::Durability::kClose},
                 Word<fusefs::Durability>{"strict", fusefs::Durability::kStrict}},
      OptionChange::kLive));
  OptionSpec sync =
      flag("sync", "the mount(8) spelling of durability=strict",
           [](Settings& s) { s.config.durability = fusefs::Durability::kStrict; }, {});
  sync.change = OptionChange::kLive;
  fs(std::move(sync));
  OptionSpec dirsync = flag(
      "dirsync",
      "answer create, mkdir, link, unlink, rename, ... after syncing the parent directories",
      [](Settings& s) { s.config.dirsync = fusefs::DirSync::kOn; },
      [](const Settings& s) -> std::string {
        if (s.config.dirsync == fusefs::DirSync::kAuto) return "on with durability=strict";
        return on_off(s.config.dirsync == fusefs::DirSync::kOn);
      });
  dirsync.change = OptionChange::kLive;
  fs(std::move(dirsync));
  OptionSpec nodirsync = flag("nodirsync", "turn dirsync off, even with durability=strict",
                              [](Settings& s) { s.config.dirsync = fusefs::DirSync::kOff; }, {});
  nodirsync.change = OptionChange::kLive;
  fs(std::move(nodirsync));

  // Logging.
  using Level = spdlog::level::level_enum;
  fs(word_option<Level>(
      "log_level", "trace|debug|info|warn|error|off", "what to log",
      [](Settings& s) -> Level& { return s.log_level; },
      std::array{Word<Level>{"trace", Level::trace}, Word<Level>{"debug", Level::debug},
                 Word<Level>{"info", Level::info}, Word<Level>{"warn", Level::warn},
                 Word<Level>{"error", Level::err}, Word<Level>{"off", Level::off}}));
  fs(OptionSpec{
      .key = "log_file",
      .value = OptionValue::kRequired,
      .value_syntax = "PATH",
      .section = OptionSection::kFsysfs,
      .change = OptionChange::kMount,
      .help = "append the log to PATH",
      .apply = [](Settings& s, std::optional<std::string_view> v) -> std::string {
        if (v->empty()) return "a file path";
        s.log_file = *v;
        return {};
      },
      .show = [](const Settings& s) -> std::string {
        return s.log_file.empty() ? "stderr, or syslog as a daemon" : s.log_file;
      },
  });

  // The kernel's flags on the mount (fusefs/mount_flags.h); a remount changes them. The
  // last of ro/rw, noexec/exec, dev/nodev, suid/nosuid given wins, as with mount(8).
  using fusefs::Atime;
  using fusefs::MountFlags;
  fs(mount_flag(
      "ro",
      "read-only mount: every change fails with EROFS, `fsysfs set` and `inject` too; reads "
      "leave access times alone",
      [](MountFlags& f) { f.read_only = true; }, [](const MountFlags& f) { return f.read_only; }));
  fs(mount_flag("rw", "read-write mount (undoes ro)", [](MountFlags& f) { f.read_only = false; }));
  fs(mount_flag(
      "noexec", "programs on the mount cannot be executed", [](MountFlags& f) { f.no_exec = true; },
      [](const MountFlags& f) { return f.no_exec; }));
  fs(mount_flag("exec", "programs on the mount may be executed (undoes noexec)",
                [](MountFlags& f) { f.no_exec = false; }));
  fs(mount_flag(
      "dev",
      "device files on the mount can be opened; only for root, and only where BACKING's own "
      "mount allows them",
      [](MountFlags& f) { f.dev = true; }, [](const MountFlags& f) { return f.dev; }));
  fs(mount_flag("nodev", "device files cannot be opened (undoes dev)",
                [](MountFlags& f) { f.dev = false; }));
  fs(mount_flag(
      "suid", "set-user-ID and set-group-ID bits take effect; as for dev",
      [](MountFlags& f) { f.suid = true; }, [](const MountFlags& f) { return f.suid; }));
  fs(mount_flag("nosuid", "set-user-ID and set-group-ID bits are ignored (undoes suid)",
                [](MountFlags& f) { f.suid = false; }));
  OptionSpec relatime = atime_flag(
      "relatime",
      "a read moves a file's access time when it is not newer than the last change, or a day "
      "old",
      [](MountFlags& f) { f.atime = Atime::kRelatime; });
  relatime.show = [](const Settings& s) {
    return std::string(fusefs::atime_name(s.config.mount_flags.atime));
  };
  fs(std::move(relatime));
  fs(atime_flag("noatime", "reads never move access times",
                [](MountFlags& f) { f.atime = Atime::kNoatime; }));
  fs(atime_flag("strictatime", "every read moves the access time (root only)",
                [](MountFlags& f) { f.atime = Atime::kStrictatime; }));
  for (std::string_view key : {"atime", "norelatime", "nostrictatime"}) {
    fs(atime_flag(key, "the same as relatime", [](MountFlags& f) { f.atime = Atime::kRelatime; }));
  }
  fs(atime_flag(
      "nodiratime", "reading a directory never moves its access time (root only)",
      [](MountFlags& f) { f.nodiratime = true; },
      [](const MountFlags& f) { return f.nodiratime; }));
  fs(atime_flag("diratime", "reading a directory moves its access time (undoes nodiratime)",
                [](MountFlags& f) { f.nodiratime = false; }));

  // What mount(8) and mount.fuse3 pass on from fstab that means nothing here (BACKING's own
  // mount decides lazytime).
  for (std::string_view key : {"defaults", "async", "lazytime", "nolazytime", "auto", "noauto",
                               "user", "nouser", "users", "_netdev", "nofail", "silent", "loud"}) {
    fs(ignored_flag(key));
  }
  return t;
}

void apply_one(Settings& settings, std::string_view item) {
  std::string_view key = item;
  std::optional<std::string_view> value;
  if (auto eq = item.find('='); eq != std::string_view::npos) {
    key = item.substr(0, eq);
    value = item.substr(eq + 1);
  }
  const OptionSpec* spec = find_option(key);
  if (spec == nullptr) {
    throw Error(fmt::format("unknown mount option '{}' (see fsysfs --help)", key));
  }
  if (spec->value == OptionValue::kNone && value) {
    throw Error(fmt::format("mount option '{}' takes no value (got '{}')", key, item));
  }
  if (spec->value == OptionValue::kRequired && !value) {
    throw Error(
        fmt::format("mount option '{}' needs a value ({}={})", key, key, spec->value_syntax));
  }
  if (spec->section == OptionSection::kGeneric) return;
  std::string expected = spec->apply(settings, value);
  if (!expected.empty()) {
    throw Error(fmt::format("bad value '{}' for option {} (expected {})", *value, key, expected));
  }
}

}  // namespace

std::span<const OptionSpec> option_table() {
  static const std::vector<OptionSpec> table = build_table();
  return table;
}

const OptionSpec* find_option(std::string_view key) {
  for (const auto& spec : option_table()) {
    if (spec.key == key) return &spec;
  }
  return nullptr;
}

void apply_mount_options(Settings& settings, std::string_view options) {
  size_t pos = 0;
  while (pos <= options.size()) {
    size_t comma = options.find(',', pos);
    if (comma == std::string_view::npos) comma = options.size();
    std::string_view item = options.substr(pos, comma - pos);
    pos = comma + 1;
    if (!item.empty()) apply_one(settings, item);
  }
}

namespace {

// The timeouts and keep_cache that `cache` implies, where they were not given.
void resolve_cache(Settings& s) {
  s.config.cache = s.cache;
  double seconds = 1;
  if (s.cache == fusefs::CacheMode::kAlways) seconds = 86400;
  if (s.cache == fusefs::CacheMode::kNever) seconds = 0;
  s.config.attr_timeout = *(s.attr_timeout = s.attr_timeout.value_or(seconds));
  s.config.entry_timeout = *(s.entry_timeout = s.entry_timeout.value_or(seconds));
  s.config.negative_timeout = *(s.negative_timeout = s.negative_timeout.value_or(seconds));
  s.config.keep_cache =
      *(s.keep_cache = s.keep_cache.value_or(s.cache != fusefs::CacheMode::kNever));
}

}  // namespace

void finish_settings(Settings& settings) {
  settings.config.default_permissions =
      settings.default_permissions.value_or(settings.config.allow_other);
  settings.config.writeback_cache = settings.writeback_cache.value_or(
      settings.config.durability == fusefs::Durability::kNone && !settings.config.crashsim);
  resolve_cache(settings);
  // Resolved: show() now reports what the mount gets.
  settings.default_permissions = settings.config.default_permissions;
  settings.writeback_cache = settings.config.writeback_cache;
  if (settings.config.durability == fusefs::Durability::kStrict &&
      settings.config.writeback_cache) {
    // A write the kernel caches never reaches the daemon to be made durable.
    throw Error("durability=strict cannot be combined with writeback_cache");
  }
  if (settings.config.crashsim && settings.config.writeback_cache) {
    // The kernel would hold written data back from the journal and write it later, in its
    // own sizes and order.
    throw Error("crashsim cannot be combined with writeback_cache");
  }
}

std::string options_help() {
  const Settings defaults;
  std::string out = "Mount options (-o, comma separated; [default]):\n";
  std::string generic = " ";
  size_t generic_line = 1;
  for (const auto& spec : option_table()) {
    switch (spec.section) {
      case OptionSection::kFsysfs: {
        out += fmt::format("  {}", spec.key);
        if (spec.value == OptionValue::kRequired) out += fmt::format("={}", spec.value_syntax);
        if (spec.value == OptionValue::kOptional) out += fmt::format("[={}]", spec.value_syntax);
        out += fmt::format("\n      {}", spec.help);
        if (spec.show) out += fmt::format(" [{}]", spec.show(defaults));
        if (spec.change == OptionChange::kLive) out += " (can change on a live mount)";
        if (spec.change == OptionChange::kRemount) out += " (a remount changes it)";
        out += "\n";
        break;
      }
      case OptionSection::kGeneric:
        if (generic_line + spec.key.size() + 1 > 80) {
          generic += "\n ";
          generic_line = 1;
        }
        generic += fmt::format(" {}", spec.key);
        generic_line += spec.key.size() + 1;
        break;
    }
  }
  out += "\nGeneric mount options, accepted from fstab and ignored:\n";
  out += generic + "\n";
  return out;
}

}  // namespace fsysfs::mount
