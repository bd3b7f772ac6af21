#include "mount/command_line.h"

#include <gtest/gtest.h>

#include <vector>

#include "mount/error.h"

namespace fsysfs::mount {
namespace {

CommandLine parse(std::vector<std::string_view> args) { return parse_command_line(args); }

std::string error_of(std::vector<std::string_view> args) {
  try {
    parse_command_line(args);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(CommandLine, Positionals_AreBackingThenMountpoint) {
  CommandLine cl = parse({"/srv/data", "/mnt/data"});
  EXPECT_EQ(cl.action, CommandLine::Action::kMount);
  EXPECT_EQ(cl.backing, "/srv/data");
  EXPECT_EQ(cl.mountpoint, "/mnt/data");
  EXPECT_FALSE(cl.foreground);
  EXPECT_FALSE(cl.debug);
  EXPECT_TRUE(cl.mount_options.empty());
}

// mount.fuse3 runs `fsysfs BACKING MNT -o opts` through /bin/sh.
TEST(CommandLine, OptionsAfterPositionals_AsMountFuse3PassesThem) {
  CommandLine cl = parse({"/srv/data", "/mnt/data", "-o", "rw,noatime,allow_other,dev,suid"});
  EXPECT_EQ(cl.backing, "/srv/data");
  EXPECT_EQ(cl.mountpoint, "/mnt/data");
  ASSERT_EQ(cl.mount_options.size(), 1u);
  Settings s = settings_from(cl);
  EXPECT_TRUE(s.config.allow_other);
  EXPECT_TRUE(s.config.default_permissions);
}

// mount.fuse3 runs `fsysfs BACKING MNT -o ro,remount,...` for `mount -o remount,ro MNT`.
TEST(CommandLine, Remount_IsAnOptionItem_BackingMayBeLeftOut) {
  CommandLine cl = parse({"/srv/data", "/mnt/data", "-o", "ro,remount,dev,suid"});
  EXPECT_TRUE(cl.remount);
  EXPECT_EQ(cl.mountpoint, "/mnt/data");
  cl = parse({"-o", "remount,noatime", "/mnt/data"});
  EXPECT_TRUE(cl.remount);
  EXPECT_EQ(cl.backing, "");
  EXPECT_EQ(cl.mountpoint, "/mnt/data");
  EXPECT_FALSE(parse({"/srv/data", "/mnt/data", "-o", "ro,noremount"}).remount);
  EXPECT_EQ(error_of({"-o", "remount"}),
            "missing BACKING and MOUNTPOINT (usage: fsysfs [-f] [-d] "
            "[-o OPTION[,OPTION...]] BACKING MOUNTPOINT)");
}

// The control file shows the -o a mount started with; a remount compares against them.
TEST(CommandLine, SettingsFrom_KeepsTheOptionsAsGiven) {
  CommandLine cl = parse({"-o", "allow_other", "/srv/data", "/mnt/data", "-othreads=4", "-o", ""});
  EXPECT_EQ(settings_from(cl).config.options, "allow_other,threads=4");
}

TEST(CommandLine, RepeatedAndAttachedDashO_Accumulate) {
  CommandLine cl =
      parse({"-o", "allow_other", "/b", "-othreads=4", "/m", "-o", "queue_depth=32,threads=6"});
  EXPECT_EQ(cl.backing, "/b");
  EXPECT_EQ(cl.mountpoint, "/m");
  Settings s = settings_from(cl);
  EXPECT_TRUE(s.config.allow_other);
  EXPECT_EQ(s.config.threads, 6u);
  EXPECT_EQ(s.config.engine.queue_depth, 32u);
}

TEST(CommandLine, ForegroundAndDebug) {
  CommandLine f = parse({"-f", "/b", "/m"});
  EXPECT_TRUE(f.foreground);
  EXPECT_FALSE(f.debug);
  EXPECT_FALSE(settings_from(f).config.debug);

  CommandLine d = parse({"/b", "/m", "-d"});
  EXPECT_TRUE(d.foreground);
  EXPECT_TRUE(d.debug);
  EXPECT_TRUE(settings_from(d).config.debug);
  // The FUSE request trace is logged at debug level; -d must not hide it.
  EXPECT_EQ(settings_from(d).log_level, spdlog::level::debug);
  EXPECT_EQ(settings_from(parse({"-d", "-o", "log_level=trace", "/b", "/m"})).log_level,
            spdlog::level::trace);
  EXPECT_EQ(settings_from(f).log_level, spdlog::level::info);
}

TEST(CommandLine, WrongNumberOfArguments_IsAnError) {
  EXPECT_TRUE(error_of({}).starts_with("missing BACKING and MOUNTPOINT (usage: fsysfs"));
  EXPECT_TRUE(error_of({"-f", "-o", "allow_other"}).starts_with("missing BACKING and MOUNTPOINT"));
  EXPECT_TRUE(error_of({"/b"}).starts_with("missing MOUNTPOINT (usage: fsysfs"));
  EXPECT_TRUE(error_of({"/b", "/m", "/x"}).starts_with("too many arguments: unexpected '/x'"));
}

TEST(CommandLine, BadFlags_AreErrorsNamingThem) {
  EXPECT_EQ(error_of({"/b", "/m", "-o"}), "option -o needs an argument (-o OPTION[,OPTION...])");
  EXPECT_EQ(error_of({"-x", "/b", "/m"}), "unknown argument '-x' (see fsysfs --help)");
  EXPECT_EQ(error_of({"/b", "/m", "--foreground"}),
            "unknown argument '--foreground' (see fsysfs --help)");
}

TEST(CommandLine, HelpAndVersion_WinOverEverythingElse) {
  EXPECT_EQ(parse({"--help"}).action, CommandLine::Action::kHelp);
  EXPECT_EQ(parse({"-h"}).action, CommandLine::Action::kHelp);
  EXPECT_EQ(parse({"/b", "-h", "/m", "/x"}).action, CommandLine::Action::kHelp);
  EXPECT_EQ(parse({"--version"}).action, CommandLine::Action::kVersion);
  EXPECT_EQ(parse({"-V", "/b"}).action, CommandLine::Action::kVersion);
  EXPECT_EQ(parse({"-V", "-h"}).action, CommandLine::Action::kHelp);
  // Options are not parsed for --help: a bad one does not hide the help.
  EXPECT_EQ(parse({"-o", "nonsense", "--help"}).action, CommandLine::Action::kHelp);
}

TEST(CommandLine, DoubleDash_EndsFlags) {
  CommandLine cl = parse({"-f", "--", "-weird-backing", "/m"});
  EXPECT_TRUE(cl.foreground);
  EXPECT_EQ(cl.backing, "-weird-backing");
  EXPECT_EQ(cl.mountpoint, "/m");
}

TEST(CommandLine, BadOption_IsReportedBySettingsFrom) {
  CommandLine cl = parse({"/b", "/m", "-o", "queue_depth=abc"});
  try {
    settings_from(cl);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "bad value 'abc' for option queue_depth (expected a positive integer)");
  }
}

TEST(CommandLine, HelpText_HasUsageFlagsAndOptions) {
  std::string help = help_text();
  EXPECT_TRUE(help.starts_with("usage: fsysfs "));
  for (const char* flag : {"-f ", "-d ", "-o OPTIONS", "--help", "--version", "fuse.fsysfs"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(help.find(options_help()), std::string::npos);
  EXPECT_TRUE(version_text().starts_with("fsysfs "));
}

}  // namespace
}  // namespace fsysfs::mount
