#include "mount/paths.h"

#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>

#include "mount/error.h"
#include "temp_dir.h"

namespace fsysfs::mount {
namespace {

using testing::TempDir;

std::string error_of(const std::string& backing, const std::string& mountpoint) {
  try {
    validate_paths(backing, mountpoint);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(IsSameOrInside, ComparesWholeComponents) {
  EXPECT_TRUE(is_same_or_inside("/a/b", "/a/b"));
  EXPECT_TRUE(is_same_or_inside("/a/b/c", "/a/b"));
  EXPECT_TRUE(is_same_or_inside("/a/b/c/d", "/a/b"));
  EXPECT_FALSE(is_same_or_inside("/a/bc", "/a/b"));
  EXPECT_FALSE(is_same_or_inside("/a/b", "/a/bc"));
  EXPECT_FALSE(is_same_or_inside("/a", "/a/b"));
  EXPECT_FALSE(is_same_or_inside("/x/y", "/a"));
  EXPECT_TRUE(is_same_or_inside("/x", "/"));
  EXPECT_TRUE(is_same_or_inside("/", "/"));
}

TEST(ValidatePaths, GoodPaths_AreCanonicalised) {
  TempDir t;
  std::string b = t.mkdir("data");
  std::string m = t.mkdir("mnt");
  std::filesystem::create_directory_symlink(b, t / "link");
  MountPaths p = validate_paths(t / "link/", t.path() + "/./mnt/../mnt");
  EXPECT_EQ(p.backing, b);
  EXPECT_EQ(p.mountpoint, m);
}

TEST(ValidatePaths, SiblingsSharingAPrefix_AreFine) {
  TempDir t;
  std::string b = t.mkdir("a/b");
  std::string m = t.mkdir("a/bc");
  EXPECT_EQ(error_of(b, m), "");
  EXPECT_EQ(error_of(m, b), "");
}

TEST(ValidatePaths, MissingOrNotADirectory) {
  TempDir t;
  std::string d = t.mkdir("dir");
  std::string f = t.write("file", "x");
  EXPECT_EQ(error_of(t / "nope", d), "backing directory '" + (t / "nope") + "' does not exist");
  EXPECT_EQ(error_of(f, d), "backing '" + f + "' is not a directory");
  EXPECT_EQ(error_of(d, t / "nope"), "mount point '" + (t / "nope") + "' does not exist");
  EXPECT_EQ(error_of(d, f), "mount point '" + f + "' is not a directory");
  // Through a dangling symlink.
  std::filesystem::create_symlink(t / "gone", t / "dangling");
  EXPECT_EQ(error_of(t / "dangling", d),
            "backing directory '" + (t / "dangling") + "' does not exist");
}

TEST(ValidatePaths, SameDirectory_IsRefused) {
  TempDir t;
  std::string d = t.mkdir("dir");
  std::filesystem::create_directory_symlink(d, t / "alias");
  EXPECT_EQ(error_of(d, d),
            "backing directory and mount point are the same directory ('" + d + "')");
  EXPECT_EQ(error_of(t / "alias", d),
            "backing directory and mount point are the same directory ('" + d + "')");
}

TEST(ValidatePaths, Nesting_IsRefusedBothWays) {
  TempDir t;
  std::string b = t.mkdir("data");
  std::string inner = t.mkdir("data/sub/mnt");
  EXPECT_EQ(error_of(b, inner),
            "mount point '" + inner + "' is inside the backing directory '" + b + "'");
  EXPECT_EQ(error_of(inner, b),
            "backing directory '" + inner + "' is inside the mount point '" + b + "'");
  // Hidden behind a symlink that leads back into the backing tree.
  std::filesystem::create_directory_symlink(inner, t / "sneaky");
  EXPECT_EQ(error_of(b, t / "sneaky"),
            "mount point '" + inner + "' is inside the backing directory '" + b + "'");
  // The root contains everything.
  EXPECT_EQ(error_of("/", b), "mount point '" + b + "' is inside the backing directory '/'");
}

// Runs validate_paths as uid/gid 65534 in a child and returns its error (or "").
std::string error_as_nobody(const std::string& backing, const std::string& mountpoint) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0) {
      ::_exit(2);
    }
    std::string err = error_of(backing, mountpoint);
    ssize_t n = ::write(fds[1], err.data(), err.size());
    ::_exit(n == static_cast<ssize_t>(err.size()) ? 0 : 3);
  }
  ::close(fds[1]);
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  return out;
}

TEST(ValidatePaths, UnreadableBacking_IsRefusedForTheInvokingUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged uid";
  TempDir t;
  ASSERT_EQ(::chmod(t.path().c_str(), 0755), 0);
  std::string m = t.mkdir("mnt");
  std::string no_read = t.mkdir("no_read");      // search but no read
  std::string no_search = t.mkdir("no_search");  // read but no search
  std::string fine = t.mkdir("fine");
  ASSERT_EQ(::chmod(no_read.c_str(), 0711), 0);
  ASSERT_EQ(::chmod(no_search.c_str(), 0744), 0);
  ASSERT_EQ(::chmod(fine.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(m.c_str(), 0755), 0);

  EXPECT_TRUE(error_as_nobody(no_read, m)
                  .starts_with("backing directory '" + no_read +
                               "' is not readable and searchable: Permission denied"));
  EXPECT_TRUE(error_as_nobody(no_search, m)
                  .starts_with("backing directory '" + no_search + "' is not readable"));
  EXPECT_EQ(error_as_nobody(fine, m), "");
  // Root may read anything: the check uses the effective ids, as the daemon will.
  ASSERT_EQ(::chmod(no_read.c_str(), 0), 0);
  EXPECT_EQ(error_of(no_read, m), "");
}

TEST(ParseMountinfo, ReadsMountpointTypeAndSource_Unescaped) {
  const char* text =
      "22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
      "36 22 0:31 / /mnt/my\\040data rw,nosuid,nodev,relatime shared:2 master:1 - fuse.fsysfs "
      "/srv/a\\134b rw,user_id=0,group_id=0\n"
      "garbage line\n"
      "37 22 0:32 / /mnt/x rw - tmpfs tmpfs rw\n";
  auto entries = parse_mountinfo(text);
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].mountpoint, "/");
  EXPECT_EQ(entries[0].fstype, "ext4");
  EXPECT_EQ(entries[1].mountpoint, "/mnt/my data");
  EXPECT_EQ(entries[1].fstype, "fuse.fsysfs");
  EXPECT_EQ(entries[1].source, "/srv/a\\b");
  EXPECT_EQ(entries[2].mountpoint, "/mnt/x");
  EXPECT_EQ(entries[2].fstype, "tmpfs");
}

TEST(ParseMountinfo, RealMountinfoHasTheRoot) {
  auto entries = parse_mountinfo(testing::read_file("/proc/self/mountinfo"));
  bool root = false;
  for (const auto& e : entries) root |= e.mountpoint == "/";
  EXPECT_TRUE(root);
  EXPECT_FALSE(is_fsysfs_mount("/"));
}

TEST(CheckFuseDevice, MissingDevice_IsNamed) {
  try {
    check_fuse_device("/nonexistent/fuse");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "cannot open /nonexistent/fuse: No such file or directory (is the fuse module "
                 "loaded?)");
  }
}

TEST(CheckFuseDevice, RealDevice_Opens) {
  if (::access("/dev/fuse", F_OK) != 0) GTEST_SKIP() << "no /dev/fuse on this machine";
  EXPECT_NO_THROW(check_fuse_device());
}

}  // namespace
}  // namespace fsysfs::mount
