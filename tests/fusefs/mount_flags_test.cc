// What fsysfs tells the kernel about the mount: the flags ro and noexec, and the
// connection's max_background.

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"
#include "tests/fusefs/stats_json.h"

namespace fsysfs::test {
namespace {

class ReadOnlyMount : public MountFixture {
 protected:
  std::string mount_options() const override { return "allow_other,ro"; }
};

class NoexecMount : public MountFixture {
 protected:
  std::string mount_options() const override { return "allow_other,noexec"; }
};

class MaxBackgroundMount : public MountFixture {
 protected:
  std::string mount_options() const override { return "allow_other,max_background=48"; }
};

// -1 and errno, as one value to compare.
int err_of(int rc) { return rc == -1 ? errno : 0; }

TEST_F(ReadOnlyMount, ReadsWork_EveryChangeFailsWithErofs) {
  write_file(backing_ + "/f", "data");
  ASSERT_EQ(::mkdir((backing_ + "/d").c_str(), 0755), 0);
  struct statvfs vfs;
  ASSERT_EQ(::statvfs(mnt_.c_str(), &vfs), 0);
  EXPECT_NE(vfs.f_flag & ST_RDONLY, 0u);
  EXPECT_EQ(read_file(mnt_ + "/f"), "data");
  const std::string f = mnt_ + "/f";
  EXPECT_EQ(err_of(::open(f.c_str(), O_WRONLY)), EROFS);
  EXPECT_EQ(err_of(::open((mnt_ + "/new").c_str(), O_CREAT | O_WRONLY, 0644)), EROFS);
  EXPECT_EQ(err_of(::truncate(f.c_str(), 0)), EROFS);
  EXPECT_EQ(err_of(::chmod(f.c_str(), 0600)), EROFS);
  EXPECT_EQ(err_of(::unlink(f.c_str())), EROFS);
  EXPECT_EQ(err_of(::rename(f.c_str(), (mnt_ + "/g").c_str())), EROFS);
  EXPECT_EQ(err_of(::mkdir((mnt_ + "/e").c_str(), 0755)), EROFS);
  EXPECT_EQ(err_of(::rmdir((mnt_ + "/d").c_str())), EROFS);
  EXPECT_EQ(read_file(backing_ + "/f"), "data");
  // The control file: stats can be read, settings cannot change.
  EXPECT_NE(json_word(read_stats_json(mnt_), "durability"), "?");
  const std::string control = mnt_ + "/.fsysfs";
  EXPECT_EQ(err_of(::setxattr(control.c_str(), "user.fsysfs.durability", "none", 4, 0)), EROFS);
}

TEST_F(NoexecMount, ProgramsDoNotRun_ReadingThemDoes) {
  const std::string prog = mnt_ + "/true";
  {
    // A copy of /bin/true made through the mount.
    std::string bytes = read_file("/bin/true");
    ASSERT_FALSE(bytes.empty());
    write_file(prog, bytes);
    ASSERT_EQ(::chmod(prog.c_str(), 0755), 0);
  }
  EXPECT_EQ(err_of(::access(prog.c_str(), X_OK)), EACCES);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char* const argv[] = {const_cast<char*>(prog.c_str()), nullptr};
    ::execv(prog.c_str(), argv);
    _exit(errno == EACCES ? 42 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 42) << "status " << status;
  EXPECT_EQ(read_file(prog), read_file("/bin/true"));
}

// The kernel shows each FUSE connection's limits in fusectl, named by the mount's minor
// device number.
TEST_F(MaxBackgroundMount, TheKernelTakesItWithCongestionAtThreeQuarters) {
  const std::string ctl = "/sys/fs/fuse/connections";
  bool mounted_ctl = false;
  struct stat st;
  ASSERT_EQ(::stat(mnt_.c_str(), &st), 0);
  const std::string conn = ctl + "/" + std::to_string(minor(st.st_dev));
  if (::access(conn.c_str(), F_OK) != 0) {
    if (::mount("fusectl", ctl.c_str(), "fusectl", 0, nullptr) != 0) {
      GTEST_SKIP() << "fusectl is not mounted and cannot be: " << std::strerror(errno);
    }
    mounted_ctl = true;
  }
  EXPECT_EQ(read_file(conn + "/max_background"), "48\n");
  EXPECT_EQ(read_file(conn + "/congestion_threshold"), "36\n");
  if (mounted_ctl) ::umount2(ctl.c_str(), MNT_DETACH);
}

}  // namespace
}  // namespace fsysfs::test
