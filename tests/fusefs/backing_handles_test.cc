#include "fusefs/backing_handles.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "tests/temp_dir.h"

namespace fsysfs::fusefs {
namespace {

UniqueFd path_fd(const std::string& p) {
  return UniqueFd(open(p.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
}

class BackingHandlesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.mkdir("root");
    UniqueFd fd = path_fd(root_);
    std::string why;
    handles_ = BackingHandles::probe(fd.get(), &why);
    if (!handles_.enabled()) GTEST_SKIP() << "no backing file handles: " << why;
  }
  // Encodes `p`, then opens the handle again.
  int round_trip(const std::string& p, struct stat* st) {
    UniqueFd fd = path_fd(p);
    BackingHandle h = handles_.encode(fd.get());
    if (h.empty()) return -EOPNOTSUPP;
    UniqueFd again;
    return handles_.open(h, &again, st);
  }
  testing::TempDir dir_;
  std::string root_;
  BackingHandles handles_;
};

TEST(BackingHandles, OffByDefaultGivesEmptyHandlesAndStale) {
  BackingHandles off;
  EXPECT_FALSE(off.enabled());
  UniqueFd fd = path_fd("/");
  EXPECT_TRUE(off.encode(fd.get()).empty());
  UniqueFd out;
  struct stat st;
  EXPECT_EQ(off.open(BackingHandle{}, &out, &st), -ESTALE);
}

TEST_F(BackingHandlesTest, FileDirectoryAndSymlinkOpenAsThemselves) {
  dir_.write("root/f", "f");
  dir_.mkdir("root/d/e");
  ASSERT_EQ(symlink("/etc/passwd", (root_ + "/l").c_str()), 0);
  for (const char* name : {"f", "d", "d/e", "l"}) {
    SCOPED_TRACE(name);
    struct stat want, got;
    ASSERT_EQ(lstat((root_ + "/" + name).c_str(), &want), 0);
    ASSERT_EQ(round_trip(root_ + "/" + name, &got), 0);
    EXPECT_EQ(got.st_ino, want.st_ino);
    EXPECT_EQ(got.st_dev, want.st_dev);
    EXPECT_EQ(got.st_mode, want.st_mode);  // the symlink itself, never its target
  }
}

TEST_F(BackingHandlesTest, RenamedFileStillOpens_RemovedOneIsStale) {
  const std::string f = dir_.write("root/f", "f");
  UniqueFd fd = path_fd(f);
  BackingHandle h = handles_.encode(fd.get());
  ASSERT_FALSE(h.empty());
  fd.reset();
  dir_.mkdir("root/d");
  ASSERT_EQ(rename(f.c_str(), (root_ + "/d/g").c_str()), 0);
  UniqueFd out;
  struct stat st;
  EXPECT_EQ(handles_.open(h, &out, &st), 0);
  out.reset();
  ASSERT_EQ(unlink((root_ + "/d/g").c_str()), 0);
  EXPECT_EQ(handles_.open(h, &out, &st), -ESTALE);
}

TEST_F(BackingHandlesTest, UnlinkedButOpenFileIsStale) {
  // Someone still holds it open on the backing filesystem, but it has no name left.
  const std::string f = dir_.write("root/f", "f");
  UniqueFd held(open(f.c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd fd = path_fd(f);
  BackingHandle h = handles_.encode(fd.get());
  ASSERT_EQ(unlink(f.c_str()), 0);
  UniqueFd out;
  struct stat st;
  EXPECT_EQ(handles_.open(h, &out, &st), -ESTALE);
}

TEST_F(BackingHandlesTest, DirectoryMovedOutOfTheTreeIsStale) {
  const std::string d = dir_.mkdir("root/d");
  dir_.mkdir("root/d/sub");
  UniqueFd fd = path_fd(d + "/sub");
  BackingHandle h = handles_.encode(fd.get());
  ASSERT_FALSE(h.empty());
  UniqueFd out;
  struct stat st;
  ASSERT_EQ(handles_.open(h, &out, &st), 0);
  ASSERT_EQ(rename(d.c_str(), (dir_ / "outside").c_str()), 0);
  EXPECT_EQ(handles_.open(h, &out, &st), -ESTALE);
  ASSERT_EQ(rename((dir_ / "outside").c_str(), d.c_str()), 0);
  EXPECT_EQ(handles_.open(h, &out, &st), 0);
}

TEST_F(BackingHandlesTest, InodeOnAnotherMountHasNoHandle) {
  // A submount of BACKING: its handles would not decode through the root's mount.
  const std::string sub = dir_.mkdir("root/sub");
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  ASSERT_EQ(mount("fsysfs-test", sub.c_str(), "tmpfs", 0, "size=1m"), 0)
      << "cannot mount a tmpfs: " << std::strerror(errno);
  {
    std::FILE* f = std::fopen((sub + "/f").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
    UniqueFd fd = path_fd(sub + "/f");
    EXPECT_TRUE(handles_.encode(fd.get()).empty());
  }
  ASSERT_EQ(umount2(sub.c_str(), MNT_DETACH), 0);
}

}  // namespace
}  // namespace fsysfs::fusefs
