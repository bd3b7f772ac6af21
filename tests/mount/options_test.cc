#include "mount/options.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <string>

#include "mount/command_line.h"
#include "mount/error.h"

namespace fsysfs::mount {
namespace {

using engine::BackendKind;
using engine::InlineOps;

Settings parse(std::initializer_list<std::string_view> options) {
  Settings s;
  for (auto o : options) apply_mount_options(s, o);
  finish_settings(s);
  return s;
}

// The Error message for `options`, or "" when they parse.
std::string error_of(std::string_view options) {
  Settings s;
  try {
    apply_mount_options(s, options);
    finish_settings(s);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

struct GoodCase {
  std::string_view option;
  std::function<bool(const Settings&)> holds;
};

// One or more accepted spellings of every fsysfs option, with what each must set.
const std::vector<GoodCase>& good_cases() {
  static const std::vector<GoodCase> cases = {
      {"allow_other", [](const Settings& s) { return s.config.allow_other; }},
      {"default_permissions", [](const Settings& s) { return s.config.default_permissions; }},
      {"allow_other,no_default_permissions",
       [](const Settings& s) { return s.config.allow_other && !s.config.default_permissions; }},
      {"threads=1", [](const Settings& s) { return s.config.threads == 1; }},
      {"threads=16", [](const Settings& s) { return s.config.threads == 16; }},
      {"threads=1024", [](const Settings& s) { return s.config.threads == 1024; }},
      {"clone_fd", [](const Settings& s) { return s.config.clone_fd; }},
      {"crashsim", [](const Settings& s) { return s.config.crashsim; }},
      {"max_background=64", [](const Settings& s) { return s.config.max_background == 64; }},
      {"writeback_cache", [](const Settings& s) { return s.config.writeback_cache; }},
      {"writeback_cache,no_writeback_cache",
       [](const Settings& s) { return !s.config.writeback_cache; }},
      {"max_dirty=kernel",
       [](const Settings& s) {
         return s.config.dirty_limit.kind == fusefs::DirtyLimit::Kind::kKernel;
       }},
      {"max_dirty=kernel,max_dirty=auto",
       [](const Settings& s) { return s.config.dirty_limit == fusefs::DirtyLimit{}; }},
      {"max_dirty=4096",
       [](const Settings& s) {
         return s.config.dirty_limit ==
                fusefs::DirtyLimit{.kind = fusefs::DirtyLimit::Kind::kBytes, .bytes = 4096};
       }},
      {"max_dirty=512M",
       [](const Settings& s) { return s.config.dirty_limit.bytes == 512ull << 20; }},
      {"max_dirty=2g", [](const Settings& s) { return s.config.dirty_limit.bytes == 2ull << 30; }},
      {"max_dirty=64k",
       [](const Settings& s) { return s.config.dirty_limit.bytes == 64ull << 10; }},
      {"attr_timeout=0", [](const Settings& s) { return s.config.attr_timeout == 0.0; }},
      {"attr_timeout=2.5", [](const Settings& s) { return s.config.attr_timeout == 2.5; }},
      {"entry_timeout=30", [](const Settings& s) { return s.config.entry_timeout == 30.0; }},
      {"entry_timeout=0.001", [](const Settings& s) { return s.config.entry_timeout == 0.001; }},
      {"negative_timeout=0", [](const Settings& s) { return s.config.negative_timeout == 0.0; }},
      {"negative_timeout=60", [](const Settings& s) { return s.config.negative_timeout == 60.0; }},
      {"cache=auto",
       [](const Settings& s) {
         return s.config.attr_timeout == 1.0 && s.config.entry_timeout == 1.0 &&
                s.config.negative_timeout == 1.0 && s.config.keep_cache;
       }},
      {"cache=always",
       [](const Settings& s) {
         return s.config.attr_timeout == 86400.0 && s.config.entry_timeout == 86400.0 &&
                s.config.negative_timeout == 86400.0 && s.config.keep_cache;
       }},
      {"cache=never",
       [](const Settings& s) {
         return s.config.attr_timeout == 0.0 && s.config.entry_timeout == 0.0 &&
                s.config.negative_timeout == 0.0 && !s.config.keep_cache;
       }},
      // An explicit timeout or keep_cache wins over the mode's, before or after it.
      {"attr_timeout=5,cache=always",
       [](const Settings& s) {
         return s.config.attr_timeout == 5.0 && s.config.entry_timeout == 86400.0;
       }},
      {"cache=always,negative_timeout=0",
       [](const Settings& s) {
         return s.config.negative_timeout == 0.0 && s.config.entry_timeout == 86400.0;
       }},
      {"cache=never,keep_cache=auto",
       [](const Settings& s) { return s.config.keep_cache && s.config.attr_timeout == 0.0; }},
      {"handle_cache=0", [](const Settings& s) { return s.config.handle_cache == 0; }},
      {"handle_cache=1000000", [](const Settings& s) { return s.config.handle_cache == 1000000; }},
      {"engine=auto",
       [](const Settings& s) { return s.config.engine.backend == BackendKind::kAuto; }},
      {"engine=uring",
       [](const Settings& s) { return s.config.engine.backend == BackendKind::kUring; }},
      {"engine=sync",
       [](const Settings& s) { return s.config.engine.backend == BackendKind::kSync; }},
      {"queue_depth=1", [](const Settings& s) { return s.config.engine.queue_depth == 1; }},
      {"queue_depth=32768", [](const Settings& s) { return s.config.engine.queue_depth == 32768; }},
      {"sqpoll",
       [](const Settings& s) {
         return s.config.engine.sqpoll && s.config.engine.sqpoll_idle_ms == 1000;
       }},
      {"sqpoll=50",
       [](const Settings& s) {
         return s.config.engine.sqpoll && s.config.engine.sqpoll_idle_ms == 50;
       }},
      {"sqpoll=0", [](const Settings& s) { return s.config.engine.sqpoll_idle_ms == 0; }},
      {"fixed_files=0", [](const Settings& s) { return s.config.engine.fixed_files == 0; }},
      {"fixed_files=4096", [](const Settings& s) { return s.config.engine.fixed_files == 4096; }},
      {"buffers=0", [](const Settings& s) { return s.config.engine.buffer_count == 0; }},
      {"buffers=64", [](const Settings& s) { return s.config.engine.buffer_count == 64; }},
      {"sync_threads=8", [](const Settings& s) { return s.config.engine.sync_threads == 8; }},
      {"ring_sync_threads=0",
       [](const Settings& s) { return s.config.engine.ring_sync_threads == 0; }},
      {"ring_sync_threads=8",
       [](const Settings& s) { return s.config.engine.ring_sync_threads == 8; }},
      {"nvme_flush=off", [](const Settings& s) { return !s.config.engine.nvme_flush; }},
      {"keep_cache=off", [](const Settings& s) { return !s.config.keep_cache; }},
      {"inline_io=writes",
       [](const Settings& s) { return s.config.engine.inline_ops == InlineOps::kPageCache; }},
      {"transport=uring",
       [](const Settings& s) { return s.config.transport == fusefs::Transport::kUring; }},
      {"transport=dev",
       [](const Settings& s) { return s.config.transport == fusefs::Transport::kDev; }},
      {"transport=dev,transport=auto",
       [](const Settings& s) { return s.config.transport == fusefs::Transport::kAuto; }},
      {"uring_depth=4", [](const Settings& s) { return s.config.uring_depth == 4; }},
      {"uring_priority=idle", [](const Settings& s) { return s.config.uring_idle_priority; }},
      {"uring_priority=normal", [](const Settings& s) { return !s.config.uring_idle_priority; }},
      {"inline_io=all",
       [](const Settings& s) { return s.config.engine.inline_ops == InlineOps::kAll; }},
      {"inline_io=all,inline_io=off",
       [](const Settings& s) { return s.config.engine.inline_ops == InlineOps::kNone; }},
      {"ro", [](const Settings& s) { return s.config.mount_flags.read_only; }},
      {"ro,rw", [](const Settings& s) { return !s.config.mount_flags.read_only; }},
      {"noexec", [](const Settings& s) { return s.config.mount_flags.no_exec; }},
      {"noexec,exec", [](const Settings& s) { return !s.config.mount_flags.no_exec; }},
      {"dev", [](const Settings& s) { return s.config.mount_flags.dev; }},
      {"dev,nodev", [](const Settings& s) { return !s.config.mount_flags.dev; }},
      {"suid", [](const Settings& s) { return s.config.mount_flags.suid; }},
      {"suid,nosuid", [](const Settings& s) { return !s.config.mount_flags.suid; }},
      {"noatime",
       [](const Settings& s) { return s.config.mount_flags.atime == fusefs::Atime::kNoatime; }},
      {"strictatime",
       [](const Settings& s) { return s.config.mount_flags.atime == fusefs::Atime::kStrictatime; }},
      {"noatime,relatime",
       [](const Settings& s) { return s.config.mount_flags.atime == fusefs::Atime::kRelatime; }},
      {"noatime,atime",
       [](const Settings& s) { return s.config.mount_flags.atime == fusefs::Atime::kRelatime; }},
      {"strictatime,norelatime",
       [](const Settings& s) { return s.config.mount_flags.atime == fusefs::Atime::kRelatime; }},
      {"strictatime,nostrictatime",
       [](const Settings& s) { return s.config.mount_flags.atime == fusefs::Atime::kRelatime; }},
      {"nodiratime", [](const Settings& s) { return s.config.mount_flags.nodiratime; }},
      {"nodiratime,diratime", [](const Settings& s) { return !s.config.mount_flags.nodiratime; }},
      {"nodiratime,noatime",
       [](const Settings& s) {
         return s.config.mount_flags.nodiratime &&
                s.config.mount_flags.atime == fusefs::Atime::kNoatime;
       }},
      {"keep_cache=off,keep_cache=auto", [](const Settings& s) { return s.config.keep_cache; }},
      {"nvme_flush=off,nvme_flush=auto",
       [](const Settings& s) { return s.config.engine.nvme_flush; }},
      {"log_level=trace", [](const Settings& s) { return s.log_level == spdlog::level::trace; }},
      {"log_level=debug", [](const Settings& s) { return s.log_level == spdlog::level::debug; }},
      {"log_level=info", [](const Settings& s) { return s.log_level == spdlog::level::info; }},
      {"log_level=warn", [](const Settings& s) { return s.log_level == spdlog::level::warn; }},
      {"log_level=error", [](const Settings& s) { return s.log_level == spdlog::level::err; }},
      {"log_level=off", [](const Settings& s) { return s.log_level == spdlog::level::off; }},
      {"log_file=/var/log/fsysfs.log",
       [](const Settings& s) { return s.log_file == "/var/log/fsysfs.log"; }},
      {"log_file=rel/a=b.log", [](const Settings& s) { return s.log_file == "rel/a=b.log"; }},
      {"durability=none",
       [](const Settings& s) { return s.config.durability == fusefs::Durability::kNone; }},
      {"durability=fsync",
       [](const Settings& s) { return s.config.durability == fusefs::Durability::kFsync; }},
      {"durability=close",
       [](const Settings& s) { return s.config.durability == fusefs::Durability::kClose; }},
      {"durability=strict",
       [](const Settings& s) { return s.config.durability == fusefs::Durability::kStrict; }},
      {"sync",
       [](const Settings& s) { return s.config.durability == fusefs::Durability::kStrict; }},
      {"dirsync", [](const Settings& s) { return s.config.dirsync == fusefs::DirSync::kOn; }},
      {"durability=strict,nodirsync",
       [](const Settings& s) { return s.config.dirsync == fusefs::DirSync::kOff; }},
  };
  return cases;
}

TEST(MountOptions, Defaults_MatchConfigAndEngineDefaults) {
  Settings s = parse({});
  const fusefs::Config config;
  EXPECT_FALSE(s.config.allow_other);
  EXPECT_FALSE(s.config.default_permissions);
  EXPECT_EQ(s.config.threads, config.threads);
  EXPECT_FALSE(s.config.clone_fd);
  EXPECT_FALSE(s.config.writeback_cache);
  EXPECT_EQ(s.config.attr_timeout, config.attr_timeout);
  EXPECT_EQ(s.config.entry_timeout, config.entry_timeout);
  EXPECT_EQ(s.config.negative_timeout, config.negative_timeout);
  EXPECT_EQ(s.config.engine.backend, BackendKind::kAuto);
  EXPECT_EQ(s.config.engine.queue_depth, config.engine.queue_depth);
  EXPECT_FALSE(s.config.engine.sqpoll);
  EXPECT_EQ(s.config.engine.fixed_files, config.engine.fixed_files);
  EXPECT_TRUE(s.config.engine.nvme_flush);
  EXPECT_TRUE(s.config.keep_cache);
  EXPECT_EQ(s.config.engine.inline_ops, config.engine.inline_ops);
  EXPECT_EQ(s.config.dirty_limit, fusefs::DirtyLimit{});
  // rw, exec, nodev, nosuid, relatime.
  EXPECT_EQ(s.config.mount_flags, fusefs::MountFlags{});
  EXPECT_FALSE(s.config.mount_flags.read_only);
  EXPECT_FALSE(s.config.mount_flags.dev);
  EXPECT_FALSE(s.config.mount_flags.suid);
  EXPECT_EQ(s.config.mount_flags.atime, fusefs::Atime::kRelatime);
  EXPECT_EQ(s.log_level, spdlog::level::info);
  EXPECT_EQ(s.log_file, "");
}

TEST(MountOptions, EveryOptionAcceptsItsGoodValues) {
  for (const auto& c : good_cases()) {
    SCOPED_TRACE(std::string(c.option));
    Settings s;
    ASSERT_EQ(error_of(c.option), "");
    apply_mount_options(s, c.option);
    finish_settings(s);
    EXPECT_TRUE(c.holds(s));
  }
}

TEST(MountOptions, EveryFsysfsTableEntryHasAGoodValueTest) {
  std::set<std::string> tested;
  for (const auto& c : good_cases()) {
    std::string_view rest = c.option;
    while (!rest.empty()) {
      auto item = rest.substr(0, rest.find(','));
      tested.insert(std::string(item.substr(0, item.find('='))));
      rest.remove_prefix(std::min(rest.size(), item.size() + 1));
    }
  }
  for (const auto& spec : option_table()) {
    if (spec.section != OptionSection::kFsysfs) continue;
    EXPECT_TRUE(tested.count(std::string(spec.key))) << spec.key;
  }
}

TEST(MountOptions, BadValue_NamesOptionAndValue) {
  EXPECT_EQ(error_of("queue_depth=abc"),
            "bad value 'abc' for option queue_depth (expected a positive integer)");
  EXPECT_EQ(error_of("queue_depth=0"),
            "bad value '0' for option queue_depth (expected an integer from 1 to 32768)");
  EXPECT_EQ(error_of("threads=4,queue_depth=40000"),
            "bad value '40000' for option queue_depth (expected an integer from 1 to 32768)");
  EXPECT_EQ(error_of("engine=spdk"),
            "bad value 'spdk' for option engine (expected one of auto|uring|sync)");
  EXPECT_EQ(error_of("attr_timeout=soon"),
            "bad value 'soon' for option attr_timeout (expected a number of seconds, 0 or more)");
  EXPECT_EQ(error_of("log_level=loud"),
            "bad value 'loud' for option log_level "
            "(expected one of trace|debug|info|warn|error|off)");
}

TEST(MountOptions, BadValues_AreRejectedForEveryValuedOption) {
  for (std::string_view bad : {"threads=0",
                               "threads=-1",
                               "threads=1025",
                               "threads=4x",
                               "threads= 4",
                               "threads=",
                               "threads=+4",
                               "queue_depth=-1",
                               "queue_depth=99999999999999999999999",
                               "queue_depth=1.5",
                               "queue_depth=0x10",
                               "attr_timeout=-1",
                               "attr_timeout=nan",
                               "attr_timeout=inf",
                               "attr_timeout=1e999",
                               "attr_timeout=",
                               "attr_timeout=1s",
                               "entry_timeout=-0.5",
                               "entry_timeout=x",
                               "engine=",
                               "engine=URING",
                               "sqpoll=abc",
                               "sqpoll=-1",
                               "sqpoll=",
                               "fixed_files=-1",
                               "fixed_files=65537",
                               "fixed_files=many",
                               "buffers=4097",
                               "buffers=x",
                               "sync_threads=0",
                               "nvme_flush=on",
                               "keep_cache=on",
                               "cache=sometimes",
                               "cache=",
                               "negative_timeout=-1",
                               "nvme_flush=",
                               "log_level=",
                               "log_level=INFO",
                               "log_level=critical2",
                               "log_file=",
                               "durability=",
                               "durability=sync",
                               "durability=STRICT",
                               "max_background=65536",
                               "max_background=-1",
                               "handle_cache=-1",
                               "handle_cache=lots",
                               "max_dirty=",
                               "max_dirty=0",
                               "max_dirty=0M",
                               "max_dirty=lots",
                               "max_dirty=5MB",
                               "max_dirty=-1G",
                               "max_dirty=99999999999T",
                               "max_dirty=M"}) {
    SCOPED_TRACE(std::string(bad));
    std::string value(bad.substr(bad.find('=') + 1));
    std::string key(bad.substr(0, bad.find('=')));
    std::string err = error_of(bad);
    EXPECT_TRUE(err.starts_with("bad value '" + value + "' for option " + key + " (expected "))
        << err;
  }
}

TEST(MountOptions, UnknownOption_NamesIt) {
  EXPECT_EQ(error_of("allow_other,frobnicate"),
            "unknown mount option 'frobnicate' (see fsysfs --help)");
  EXPECT_EQ(error_of("frobnicate=3"), "unknown mount option 'frobnicate' (see fsysfs --help)");
  EXPECT_EQ(error_of("max_read=4096"), "unknown mount option 'max_read' (see fsysfs --help)");
}

TEST(MountOptions, FlagWithValue_AndValueWithoutOne_AreErrors) {
  EXPECT_EQ(error_of("allow_other=1"),
            "mount option 'allow_other' takes no value (got 'allow_other=1')");
  EXPECT_EQ(error_of("noatime=yes"), "mount option 'noatime' takes no value (got 'noatime=yes')");
  EXPECT_EQ(error_of("queue_depth"), "mount option 'queue_depth' needs a value (queue_depth=N)");
  EXPECT_EQ(error_of("log_file"), "mount option 'log_file' needs a value (log_file=PATH)");
}

TEST(MountOptions, RepeatedOptionsAccumulate_LaterWins) {
  Settings s = parse({"allow_other,threads=4", "queue_depth=64", "threads=8,,", ",clone_fd"});
  EXPECT_TRUE(s.config.allow_other);
  EXPECT_EQ(s.config.threads, 8u);
  EXPECT_EQ(s.config.engine.queue_depth, 64u);
  EXPECT_TRUE(s.config.clone_fd);
}

TEST(MountOptions, DefaultPermissions_FollowsAllowOtherUnlessSet) {
  EXPECT_FALSE(parse({}).config.default_permissions);
  EXPECT_TRUE(parse({"allow_other"}).config.default_permissions);
  EXPECT_TRUE(parse({"default_permissions"}).config.default_permissions);
  EXPECT_FALSE(parse({"allow_other,no_default_permissions"}).config.default_permissions);
  EXPECT_FALSE(parse({"no_default_permissions", "allow_other"}).config.default_permissions);
  EXPECT_TRUE(parse({"no_default_permissions,default_permissions"}).config.default_permissions);
}

// What mount(8) + mount.fuse3 hand to the filesystem from fstab lines: mount.fuse3 drops
// user/nouser/users/auto/noauto/_netdev/nofail and appends dev,suid (unless nodev/nosuid).
TEST(MountOptions, GenericMountOptions_AreAcceptedAndChangeNothing) {
  const char* generic =
      "defaults,async,lazytime,nolazytime,auto,noauto,user,nouser,users,_netdev,nofail,silent,"
      "loud";
  Settings s = parse({generic});
  Settings d = parse({});
  EXPECT_EQ(s.config.allow_other, d.config.allow_other);
  EXPECT_EQ(s.config.default_permissions, d.config.default_permissions);
  EXPECT_EQ(s.config.threads, d.config.threads);
  EXPECT_EQ(s.config.writeback_cache, d.config.writeback_cache);
  EXPECT_EQ(s.config.engine.queue_depth, d.config.engine.queue_depth);
  EXPECT_EQ(s.config.durability, d.config.durability);
  EXPECT_EQ(s.config.mount_flags, d.config.mount_flags);

  Settings from_helper = parse({"rw,noatime,allow_other,dev,suid"});
  EXPECT_TRUE(from_helper.config.allow_other);
  EXPECT_TRUE(from_helper.config.default_permissions);
  EXPECT_TRUE(from_helper.config.mount_flags.dev);
  EXPECT_TRUE(from_helper.config.mount_flags.suid);
  EXPECT_EQ(from_helper.config.mount_flags.atime, fusefs::Atime::kNoatime);
}

// The kernel flags: the last of each pair wins, as with mount(8).
TEST(MountOptions, KernelFlags_LastOfEachPairWins) {
  fusefs::MountFlags f =
      parse({"rw,dev,nodev,suid,nosuid,exec,atime,noatime,relatime,norelatime,strictatime,"
             "nostrictatime,diratime,nodiratime"})
          .config.mount_flags;
  EXPECT_FALSE(f.read_only);
  EXPECT_FALSE(f.dev);
  EXPECT_FALSE(f.suid);
  EXPECT_FALSE(f.no_exec);
  EXPECT_EQ(f.atime, fusefs::Atime::kRelatime);
  EXPECT_TRUE(f.nodiratime);
  f = parse({"nodev,dev", "nosuid,suid,ro,noexec,strictatime"}).config.mount_flags;
  EXPECT_TRUE(f.dev && f.suid && f.read_only && f.no_exec);
  EXPECT_EQ(f.atime, fusefs::Atime::kStrictatime);
  EXPECT_EQ(fusefs::to_string(f), "ro,noexec,strictatime");
}

TEST(MountOptions, Help_ListsEveryTableEntry) {
  std::string help = options_help();
  for (const auto& spec : option_table()) {
    EXPECT_NE(help.find(std::string(spec.key)), std::string::npos) << spec.key;
    if (spec.section == OptionSection::kFsysfs && !spec.help.empty()) {
      EXPECT_NE(help.find(std::string(spec.help)), std::string::npos) << spec.key;
    }
  }
  // Defaults are read from the settings, not written twice.
  EXPECT_NE(help.find("queue_depth=N"), std::string::npos);
  EXPECT_NE(help.find("[256]"), std::string::npos);
  EXPECT_NE(help.find("sqpoll[=IDLE_MS]"), std::string::npos);
  EXPECT_NE(help.find("engine=auto|uring|sync"), std::string::npos);
  std::string help_all = help_text();
  EXPECT_NE(help_all.find(help), std::string::npos);
}

// Only what the control file can change claims it in --help; the kernel flags change with
// a remount.
TEST(MountOptions, DurabilityAndDirsyncChangeLive_KernelFlagsWithARemount) {
  std::vector<std::string_view> live;
  std::vector<std::string_view> remount;
  for (const auto& spec : option_table()) {
    if (spec.change == OptionChange::kLive) live.push_back(spec.key);
    if (spec.change == OptionChange::kRemount) remount.push_back(spec.key);
  }
  EXPECT_EQ(live, (std::vector<std::string_view>{"durability", "sync", "dirsync", "nodirsync"}));
  EXPECT_EQ(remount, (std::vector<std::string_view>{"ro", "rw", "noexec", "exec", "dev", "nodev",
                                                    "suid", "nosuid", "relatime", "noatime",
                                                    "strictatime", "atime", "norelatime",
                                                    "nostrictatime", "nodiratime", "diratime"}));
  std::string help = options_help();
  EXPECT_NE(help.find("io_uring submission queue entries [256]\n"), std::string::npos);
  EXPECT_NE(help.find("[fsync] (can change on a live mount)"), std::string::npos);
  EXPECT_NE(help.find("[relatime] (a remount changes it)"), std::string::npos);
}

TEST(MountOptions, WritebackCache_FollowsDurabilityNoneUnlessSet) {
  EXPECT_FALSE(parse({}).config.writeback_cache);
  EXPECT_TRUE(parse({"durability=none"}).config.writeback_cache);
  EXPECT_FALSE(parse({"durability=none,no_writeback_cache"}).config.writeback_cache);
  EXPECT_FALSE(parse({"no_writeback_cache", "durability=none"}).config.writeback_cache);
  EXPECT_TRUE(parse({"durability=close,writeback_cache"}).config.writeback_cache);
  EXPECT_FALSE(parse({"durability=close"}).config.writeback_cache);
}

TEST(MountOptions, Strict_RefusesTheWritebackCache) {
  EXPECT_EQ(error_of("durability=strict,writeback_cache"),
            "durability=strict cannot be combined with writeback_cache");
  EXPECT_EQ(error_of("writeback_cache,sync"),
            "durability=strict cannot be combined with writeback_cache");
  EXPECT_FALSE(parse({"durability=close,writeback_cache"}).config.durability ==
               fusefs::Durability::kStrict);
}

TEST(MountOptions, Crashsim_RefusesTheWritebackCache_AndTurnsNonesOff) {
  EXPECT_FALSE(parse({}).config.crashsim);
  EXPECT_TRUE(parse({"crashsim"}).config.crashsim);
  EXPECT_EQ(error_of("crashsim,writeback_cache"),
            "crashsim cannot be combined with writeback_cache");
  // durability=none caches writes in the kernel by default, but not under crashsim.
  const Settings none = parse({"crashsim,durability=none"});
  EXPECT_FALSE(none.config.writeback_cache);
  EXPECT_EQ(none.config.durability, fusefs::Durability::kNone);
}

TEST(MountOptions, Show_ReportsCurrentValues) {
  Settings s = parse({"allow_other,engine=sync,sqpoll=5,log_level=warn"});
  EXPECT_EQ(find_option("allow_other")->show(s), "on");
  EXPECT_EQ(find_option("engine")->show(s), "sync");
  EXPECT_EQ(find_option("sqpoll")->show(s), "on, idle 5 ms");
  EXPECT_EQ(find_option("log_level")->show(s), "warn");
  EXPECT_EQ(find_option("queue_depth")->show(s), "256");
}

}  // namespace
}  // namespace fsysfs::mount
