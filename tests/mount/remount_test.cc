#include "mount/remount.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mount/error.h"

namespace fsysfs::mount {
namespace {

using fusefs::Atime;
using fusefs::MountFlags;

// A mount made by `mount -t fuse.fsysfs -o allow_other B M` as root, as mountinfo and the
// control file show it.
LiveMount live_mount() {
  LiveMount live;
  live.mountpoint = "/mnt";
  live.backing = "/srv";
  live.flags.dev = true;
  live.flags.suid = true;
  live.kernel_options = {"user_id=0", "group_id=0", "default_permissions", "allow_other"};
  live.options = "rw,allow_other,dev,suid";
  live.durability = "fsync";
  live.dirsync = "auto";
  return live;
}

RemountPlan plan(const LiveMount& live, const std::string& options) {
  return plan_remount(live, std::vector<std::string>{options});
}

std::string error_of(const LiveMount& live, const std::string& options) {
  try {
    plan(live, options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// `mount -o remount,ro M`: mount(8) merges the mountinfo options into what mount.fuse3
// hands over.
TEST(Remount, MountinfoShape_ChangesOnlyWhatWasTyped) {
  LiveMount live = live_mount();
  live.flags.atime = Atime::kNoatime;
  RemountPlan p = plan(live,
                       "ro,noatime,remount,user_id=0,group_id=0,default_permissions,"
                       "allow_other,dev,suid");
  MountFlags want = live.flags;
  want.read_only = true;
  EXPECT_EQ(p.flags, want);
  EXPECT_TRUE(p.settings.empty());
}

// `mount -t fuse.fsysfs -o remount,ro B M` (fstests): only what was typed, plus dev,suid
// from mount.fuse3. The access time rule stays, as mount(2) keeps it when none is named.
TEST(Remount, TypedShape_KeepsTheAtimeRule_OtherFlagsTakeDefaults) {
  LiveMount live = live_mount();
  live.flags.atime = Atime::kStrictatime;
  live.flags.nodiratime = true;
  live.flags.no_exec = true;
  RemountPlan p = plan(live, "ro,remount,dev,suid");
  EXPECT_TRUE(p.flags.read_only);
  EXPECT_EQ(p.flags.atime, Atime::kStrictatime);
  EXPECT_TRUE(p.flags.nodiratime);
  EXPECT_FALSE(p.flags.no_exec);  // not named: a new mount's default
  EXPECT_TRUE(p.flags.dev && p.flags.suid);
  EXPECT_FALSE(plan(live, "remount").flags.dev);  // without mount.fuse3: nodev
}

TEST(Remount, AnAtimeOption_ReplacesTheWholeRule) {
  LiveMount live = live_mount();
  live.flags.atime = Atime::kStrictatime;
  live.flags.nodiratime = true;
  RemountPlan p = plan(live, "remount,noatime");
  EXPECT_EQ(p.flags.atime, Atime::kNoatime);
  EXPECT_FALSE(p.flags.nodiratime);
  p = plan(live, "remount,nodiratime");
  EXPECT_EQ(p.flags.atime, Atime::kRelatime);
  EXPECT_TRUE(p.flags.nodiratime);
  // mount(8) with an fstab entry: its noatime first, then the typed strictatime.
  EXPECT_EQ(plan(live, "rw,noatime,remount,strictatime").flags.atime, Atime::kStrictatime);
}

TEST(Remount, DurabilityAndDirsync_ChangeOnlyWhenNamedAndDifferent) {
  LiveMount live = live_mount();
  live.durability = "strict";
  EXPECT_TRUE(plan(live, "remount,ro").settings.empty());
  EXPECT_TRUE(plan(live, "remount,sync").settings.empty());
  EXPECT_EQ(plan(live, "remount,durability=close,nodirsync").settings,
            (std::vector<std::string>{"durability=close", "dirsync=off"}));
  // An fstab entry's durability=close, then the typed one: the last wins.
  EXPECT_EQ(plan(live, "rw,remount,durability=close,durability=none").settings,
            (std::vector<std::string>{"durability=none"}));
  live.durability = "fsync";
  EXPECT_EQ(plan(live, "remount,sync").settings, (std::vector<std::string>{"durability=strict"}));
}

// mount(8) merges an fstab entry's options into every remount: fixed options come back
// with the values the mount has, and are accepted.
TEST(Remount, FixedOptions_AcceptedWhenTheyNameTheLiveValue) {
  LiveMount live = live_mount();
  live.options = "rw,noatime,allow_other,threads=4,durability=close,dev,suid,_netdev";
  RemountPlan p = plan(live, "rw,noatime,remount,allow_other,threads=4,durability=close,dev,suid");
  EXPECT_EQ(p.flags.atime, Atime::kNoatime);
  EXPECT_EQ(p.settings, (std::vector<std::string>{"durability=close"}));  // live was fsync
  // default_permissions follows allow_other: naming it changes nothing.
  EXPECT_EQ(error_of(live, "remount,default_permissions,defaults,nofail"), "");
}

TEST(Remount, FixedOptions_NamingAnotherValue_AreRefusedByName) {
  LiveMount live = live_mount();
  live.options = "allow_other,threads=4,durability=none";
  const std::string why =
      " cannot change on a live mount; unmount it and mount it again (a remount changes "
      "ro/rw, noexec/exec, dev/nodev, suid/nosuid, the access time rules, durability and "
      "dirsync)";
  EXPECT_EQ(error_of(live, "remount,ro,threads=8"), "'threads=8'" + why);
  EXPECT_EQ(error_of(live, "remount,threads=4,engine=sync"), "'engine=sync'" + why);
  EXPECT_EQ(error_of(live, "remount,no_default_permissions"), "'no_default_permissions'" + why);
  // durability=none turned the writeback cache on at mount.
  EXPECT_EQ(error_of(live, "remount,no_writeback_cache"), "'no_writeback_cache'" + why);
  EXPECT_EQ(error_of(live, "remount,writeback_cache"), "");
  live.options = "";
  EXPECT_EQ(error_of(live, "remount,allow_other"), "'allow_other'" + why);
}

TEST(Remount, KernelOptions_OnlyTheLiveValues) {
  LiveMount live = live_mount();
  EXPECT_EQ(error_of(live, "remount,user_id=0,group_id=0"), "");
  EXPECT_EQ(error_of(live, "remount,user_id=1000"),
            "'user_id=1000' cannot change on a live mount (it has user_id=0)");
  EXPECT_EQ(error_of(live, "remount,max_read=4096"),
            "'max_read=4096' cannot change on a live mount (it is not set)");
}

TEST(Remount, UnknownAndBadOptions_AsForAMount) {
  LiveMount live = live_mount();
  EXPECT_EQ(error_of(live, "remount,frobnicate"),
            "unknown mount option 'frobnicate' (see fsysfs --help)");
  EXPECT_EQ(error_of(live, "remount,durability=sometimes"),
            "bad value 'sometimes' for option durability (expected one of "
            "none|fsync|close|strict)");
  EXPECT_EQ(error_of(live, "remount,ro=1"), "mount option 'ro' takes no value (got 'ro=1')");
}

}  // namespace
}  // namespace fsysfs::mount
