// What the kernel may cache (`cache=auto|always|never`, negative_timeout): how many LOOKUP
// and GETATTR requests repeated name lookups and stats cost, counted by the mount's own
// statistics, and that every change made through the mount is seen at once however long
// the kernel may trust its caches.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"
#include "tests/fusefs/stats_json.h"

namespace fsysfs::test {
namespace {

constexpr int kFiles = 20;

// Requests of the kinds a path walk and a stat cost.
uint64_t name_and_attr_requests(const std::string& mnt) {
  const std::string json = read_stats_json(mnt);
  return json_count(json, {"fuse", "ops", "lookup"}) + json_count(json, {"fuse", "ops", "getattr"});
}

uint64_t lookups(const std::string& mnt) {
  return json_count(read_stats_json(mnt), {"fuse", "ops", "lookup"});
}

// What stats of `n` missing names, each `times` times, cost in LOOKUPs.
uint64_t lookups_for_missing_names(const std::string& mnt, int n, int times) {
  const uint64_t before = lookups(mnt);
  struct stat st;
  for (int t = 0; t < times; ++t) {
    for (int i = 0; i < n; ++i) {
      const std::string path = mnt + "/missing" + std::to_string(i);
      EXPECT_EQ(::lstat(path.c_str(), &st), -1);
      EXPECT_EQ(errno, ENOENT);
    }
  }
  return lookups(mnt) - before;
}

void create_files(const std::string& dir) {
  for (int i = 0; i < kFiles; ++i) write_file(dir + "/f" + std::to_string(i), "data");
}

// The requests a stat of every file costs.
uint64_t requests_for_stats(const std::string& mnt) {
  const uint64_t before = name_and_attr_requests(mnt);
  struct stat st;
  for (int i = 0; i < kFiles; ++i) {
    EXPECT_EQ(::lstat((mnt + "/f" + std::to_string(i)).c_str(), &st), 0) << std::strerror(errno);
  }
  return name_and_attr_requests(mnt) - before;
}

// Stats of the control file between the counts cost a LOOKUP now and then (its own entry
// times out): this much slack.
constexpr uint64_t kStatsReads = 2;

// A negative timeout long enough that no test outlives it.
class NegativeEntries : public MountFixture {
 protected:
  std::string mount_options() const override { return "allow_other,negative_timeout=3600"; }
};

TEST_F(NegativeEntries, MissingNamesAreLookedUpOnce) {
  EXPECT_LE(lookups_for_missing_names(mnt_, 10, 10), 10 + kStatsReads);
}

class NoNegativeEntries : public MountFixture {
 protected:
  std::string mount_options() const override { return "allow_other,negative_timeout=0"; }
};

TEST_F(NoNegativeEntries, EveryLookupOfAMissingNameAsks) {
  EXPECT_GE(lookups_for_missing_names(mnt_, 10, 10), 100u);
}

// Every way of making a name through the mount replaces the kernel's negative entry: the
// name is there at once, as on a plain directory.
TEST_F(NegativeEntries, NamesMadeThroughTheMountAreSeenAtOnce_Parity) {
  expect_parity(plain_, mnt_, [](Recorder& r) {
    const char* names[] = {"created", "dir", "fifo", "symlink", "link", "renamed", "excl"};
    for (const char* n : names) r.stat(std::string("before ") + n, n);
    write_file(r.p("created"), "x");
    r.rc("mkdir", ::mkdir(r.p("dir").c_str(), 0755));
    r.rc("mkfifo", ::mkfifo(r.p("fifo").c_str(), 0644));
    r.rc("symlink", ::symlink("created", r.p("symlink").c_str()));
    r.rc("link", ::link(r.p("created").c_str(), r.p("link").c_str()));
    write_file(r.p("source"), "y");
    r.rc("rename", ::rename(r.p("source").c_str(), r.p("renamed").c_str()));
    r.open_probe("open excl", ::open(r.p("excl").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600));
    for (const char* n : names) r.stat(std::string("after ") + n, n);
    r.stat("source after rename", "source");
    r.rc("unlink", ::unlink(r.p("created").c_str()));
    r.stat("created after unlink", "created");
    r.content("link's content", "link");
  });
}

class CacheNever : public MountFixture {
 protected:
  std::string mount_options() const override { return "allow_other,cache=never"; }
};

// A BACKING that others change: names and attributes made there are seen at once.
TEST_F(CacheNever, ChangesMadeDirectlyOnBackingAreSeenAtOnce) {
  struct stat st;
  const std::string path = mnt_ + "/f";
  ASSERT_EQ(::lstat(path.c_str(), &st), -1);
  write_file(backing_ + "/f", "data");
  ASSERT_EQ(::lstat(path.c_str(), &st), 0) << std::strerror(errno);
  ASSERT_EQ(::chmod((backing_ + "/f").c_str(), 0600), 0);
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::unlink((backing_ + "/f").c_str()), 0);
  EXPECT_EQ(::lstat(path.c_str(), &st), -1);
}

// The kernel keeps symlink targets (FUSE_CAP_CACHE_SYMLINKS) with the inode; a symlink
// replaced on BACKING is another inode, so its target is read afresh.
TEST_F(CacheNever, SymlinkReplacedOnBackingShowsItsNewTarget) {
  ASSERT_EQ(::symlink("first", (backing_ + "/link").c_str()), 0);
  char buf[64];
  ASSERT_EQ(::readlink((mnt_ + "/link").c_str(), buf, sizeof buf), 5);
  ASSERT_EQ(::symlink("second-target", (backing_ + "/new").c_str()), 0);
  ASSERT_EQ(::rename((backing_ + "/new").c_str(), (backing_ + "/link").c_str()), 0);
  const ssize_t n = ::readlink((mnt_ + "/link").c_str(), buf, sizeof buf);
  ASSERT_GT(n, 0) << std::strerror(errno);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "second-target");
}

TEST_F(CacheNever, EveryStatAsks) {
  create_files(mnt_);
  EXPECT_GE(requests_for_stats(mnt_), static_cast<uint64_t>(kFiles));
  EXPECT_GE(lookups_for_missing_names(mnt_, 10, 2), 20u);
}

// Lets the default mode's one-second timeouts run out (the thing under test is time).
void outlive_auto_timeouts() { std::this_thread::sleep_for(std::chrono::milliseconds(1300)); }

class CacheAlways : public MountFixture {
 protected:
  std::string mount_options() const override { return "allow_other,cache=always"; }
};

// A BACKING only this mount changes: stats of files it knows cost nothing, however late.
TEST_F(CacheAlways, StatsOfKnownFilesAskNothingAfterASecond) {
  create_files(mnt_);
  requests_for_stats(mnt_);
  outlive_auto_timeouts();
  EXPECT_LE(requests_for_stats(mnt_), kStatsReads);
}

// Today's default: after a second the kernel asks again.
TEST_F(MountFixture, CacheAuto_StatsAskAgainAfterASecond) {
  create_files(mnt_);
  requests_for_stats(mnt_);
  outlive_auto_timeouts();
  EXPECT_GE(requests_for_stats(mnt_), static_cast<uint64_t>(kFiles));
}

// An explicit timeout wins over the mode's.
class CacheAlwaysNoAttrs : public MountFixture {
 protected:
  std::string mount_options() const override { return "allow_other,cache=always,attr_timeout=0"; }
};

TEST_F(CacheAlwaysNoAttrs, EveryStatAsksForAttributes) {
  create_files(mnt_);
  const std::string before = read_stats_json(mnt_);
  requests_for_stats(mnt_);
  const std::string after = read_stats_json(mnt_);
  EXPECT_GE(json_count(after, {"fuse", "ops", "getattr"}) -
                json_count(before, {"fuse", "ops", "getattr"}),
            static_cast<uint64_t>(kFiles));
}

// The names in `dir`, sorted, one listing (opendir, readdir to the end, closedir).
std::string listing(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return "error " + errno_name(errno);
  while (struct dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += n + " ";
  return out;
}

uint64_t readdir_requests(const std::string& mnt) {
  const std::string json = read_stats_json(mnt);
  return json_count(json, {"fuse", "ops", "readdir"}) +
         json_count(json, {"fuse", "ops", "readdirplus"});
}

// What a listing of a directory of kFiles costs in READDIR(PLUS) requests.
uint64_t readdirs_for_listing(const std::string& mnt) {
  const uint64_t before = readdir_requests(mnt);
  EXPECT_NE(listing(mnt + "/d").find("f0 "), std::string::npos);
  return readdir_requests(mnt) - before;
}

// cache=always: the kernel keeps a directory's listing across opens.
TEST_F(CacheAlways, RepeatedListingsAskOnce) {
  ASSERT_EQ(::mkdir((mnt_ + "/d").c_str(), 0755), 0);
  create_files(mnt_ + "/d");
  EXPECT_GT(readdirs_for_listing(mnt_), 0u);
  EXPECT_EQ(readdirs_for_listing(mnt_), 0u);
}

TEST_F(MountFixture, CacheAuto_EveryListingAsks) {
  ASSERT_EQ(::mkdir((mnt_ + "/d").c_str(), 0755), 0);
  create_files(mnt_ + "/d");
  EXPECT_GT(readdirs_for_listing(mnt_), 0u);
  EXPECT_GT(readdirs_for_listing(mnt_), 0u);
}

// A cached listing follows every change made through the mount, in the directory itself
// and by a rename or link from another one.
TEST_F(CacheAlways, ListingsFollowChangesMadeThroughTheMount_Parity) {
  expect_parity(plain_, mnt_, [](Recorder& r) {
    r.rc("mkdir d", ::mkdir(r.p("d").c_str(), 0755));
    r.rc("mkdir e", ::mkdir(r.p("e").c_str(), 0755));
    write_file(r.p("d/a"), "a");
    write_file(r.p("e/b"), "b");
    r.note("listing", listing(r.p("d")));
    write_file(r.p("d/new"), "n");
    r.note("after create", listing(r.p("d")));
    r.rc("unlink", ::unlink(r.p("d/a").c_str()));
    r.note("after unlink", listing(r.p("d")));
    r.rc("rename in", ::rename(r.p("e/b").c_str(), r.p("d/b").c_str()));
    r.note("after rename in", listing(r.p("d")));
    r.note("source after rename", listing(r.p("e")));
    r.rc("link in", ::link(r.p("d/new").c_str(), r.p("e/linked").c_str()));
    r.note("after link in", listing(r.p("e")));
    r.rc("mkdir in", ::mkdir(r.p("d/sub").c_str(), 0755));
    r.rc("symlink in", ::symlink("x", r.p("d/sym").c_str()));
    r.note("after mkdir and symlink", listing(r.p("d")));
    r.rc("rmdir", ::rmdir(r.p("d/sub").c_str()));
    r.note("after rmdir", listing(r.p("d")));
  });
}

// FUSE_CAP_CACHE_SYMLINKS: the kernel keeps a symlink's target with its pages.
TEST_F(MountFixture, SymlinkTargetsAreReadOnce) {
  ASSERT_EQ(::symlink("some/target", (mnt_ + "/link").c_str()), 0) << std::strerror(errno);
  const std::string before = read_stats_json(mnt_);
  char buf[64];
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(::readlink((mnt_ + "/link").c_str(), buf, sizeof buf), 11);
  }
  const std::string after = read_stats_json(mnt_);
  EXPECT_LE(json_count(after, {"fuse", "ops", "readlink"}) -
                json_count(before, {"fuse", "ops", "readlink"}),
            1u);
}

// A symlink replaced through the mount, or directly on BACKING, is a new inode: its new
// target is read, not the cached one.
TEST_F(MountFixture, ReplacedSymlinkShowsItsNewTarget_Parity) {
  expect_parity(plain_, mnt_, [](Recorder& r) {
    char buf[64];
    r.rc("symlink", ::symlink("first", r.p("link").c_str()));
    r.rc("readlink", ::readlink(r.p("link").c_str(), buf, sizeof buf), true);
    r.rc("symlink new", ::symlink("second-target", r.p("new").c_str()));
    r.rc("rename over", ::rename(r.p("new").c_str(), r.p("link").c_str()));
    const ssize_t n =
        r.rc("readlink again", ::readlink(r.p("link").c_str(), buf, sizeof buf), true);
    r.note("target", std::string(buf, n > 0 ? static_cast<size_t>(n) : 0));
  });
}

}  // namespace
}  // namespace fsysfs::test
