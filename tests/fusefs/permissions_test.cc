// Why default_permissions stays on with allow_other, although it costs a GETATTR of a
// directory after every change to it (the kernel invalidates a changed directory's
// attributes and needs its mode to check the next path walk through it): without it the
// kernel checks no search permission on a path whose entries it has cached, and never asks
// the daemon, so running the ops as the caller cannot close the hole.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"
#include "tests/fusefs/stats_json.h"

namespace fsysfs::test {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

// root makes a private directory with a readable file and reads it (the kernel caches the
// path), then nobody tries to read the file.
std::vector<std::string> nobody_reads_through_private_dir(const std::string& root) {
  Recorder r(root);
  r.rc("mkdir", ::mkdir(r.p("private").c_str(), 0700));
  write_file(r.p("private/f"), "secret");
  r.rc("chmod", ::chmod(r.p("private/f").c_str(), 0644));
  r.content("root reads", "private/f");
  run_as(r, kNobody, kNogroup, [](Recorder& c) { c.content("nobody reads", "private/f"); });
  return r.lines;
}

TEST_F(MountFixture, DefaultPermissions_CachedPathStillNeedsSearchPermission) {
  EXPECT_EQ(nobody_reads_through_private_dir(mnt_), nobody_reads_through_private_dir(plain_));
}

class NoDefaultPermissions : public MountFixture {
 protected:
  std::string mount_options() const override { return "allow_other,no_default_permissions"; }
};

// The hole this option opens on a shared mount: the kernel serves nobody's path walk from
// its cache, and the OPEN the daemon gets is of a readable file.
TEST_F(NoDefaultPermissions, CachedPathSkipsSearchPermission) {
  const std::vector<std::string> lines = nobody_reads_through_private_dir(mnt_);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines, nobody_reads_through_private_dir(plain_));
  EXPECT_EQ(lines.back(), "[uid 65534] nobody reads -> [6] secret");
}

// What default_permissions costs: every change to a directory makes the next walk through
// it fetch the directory's attributes again.
uint64_t getattrs_for_creates_and_unlinks(const std::string& mnt) {
  const std::string dir = mnt + "/d";
  EXPECT_EQ(::mkdir(dir.c_str(), 0755), 0);
  const uint64_t before = json_count(read_stats_json(mnt), {"fuse", "ops", "getattr"});
  for (int i = 0; i < 20; ++i) write_file(dir + "/f" + std::to_string(i), "");
  for (int i = 0; i < 20; ++i) EXPECT_EQ(::unlink((dir + "/f" + std::to_string(i)).c_str()), 0);
  return json_count(read_stats_json(mnt), {"fuse", "ops", "getattr"}) - before;
}

TEST_F(MountFixture, DefaultPermissions_ADirectoryGetattrPerChange) {
  EXPECT_GE(getattrs_for_creates_and_unlinks(mnt_), 38u);
}

TEST_F(NoDefaultPermissions, NoDirectoryGetattrPerChange) {
  EXPECT_LE(getattrs_for_creates_and_unlinks(mnt_), 2u);
}

}  // namespace
}  // namespace fsysfs::test
