// What fsysfs tells the kernel about the mount and how the daemon follows it: the flags
// ro, noexec, dev, suid and the access time rules (compared with the same operations on a
// bind mount of a plain directory with the same flags), remounts, and the connection's
// max_background.

#include <grp.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <dirent.h>
#include <fcntl.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "fusefs/mount_flags.h"

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

// --- Access times -------------------------------------------------------------------

// Which steps of access_steps() moved an atime.
struct AtimeSteps {
  bool read1 = false;  // the first read of a file written since its atime was set
  bool read2 = false;  // reading it again
  bool list1 = false;  // the first listing of a directory changed since its atime was set
  bool list2 = false;  // listing it again
  bool operator==(const AtimeSteps&) const = default;
};

std::ostream& operator<<(std::ostream& os, const AtimeSteps& s) {
  return os << "{read " << s.read1 << " then " << s.read2 << ", list " << s.list1 << " then "
            << s.list2 << "}";
}

timespec atime_of(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st.st_atim;
}

bool moved(const timespec& a, const timespec& b) {
  return a.tv_sec != b.tv_sec || a.tv_nsec != b.tv_nsec;
}

// Longer than the kernel's timestamp granularity (a jiffy).
void pause_a_tick() { std::this_thread::sleep_for(std::chrono::milliseconds(30)); }

void list_dir(const std::string& path) {
  DIR* d = ::opendir(path.c_str());
  ASSERT_NE(d, nullptr) << path << ": " << std::strerror(errno);
  while (::readdir(d) != nullptr) {
  }
  ::closedir(d);
}

// Makes `where`/f and `where`/d (holding e), each with an atime not newer than its mtime,
// so that a relatime read moves it.
void make_fresh_files(const std::string& where) {
  write_file(where + "/f", "data");
  ASSERT_EQ(::mkdir((where + "/d").c_str(), 0755), 0);
  write_file(where + "/d/e", "x");
}

// Reads `root`/f twice and lists `root`/d twice, a tick before each, seen through `root`.
AtimeSteps access_steps(const std::string& root) {
  const std::string f = root + "/f";
  const std::string d = root + "/d";
  AtimeSteps s;
  timespec t0 = atime_of(f);
  pause_a_tick();
  EXPECT_EQ(read_file(f), "data");
  timespec t1 = atime_of(f);
  pause_a_tick();
  EXPECT_EQ(read_file(f), "data");
  timespec t2 = atime_of(f);
  s.read1 = moved(t0, t1);
  s.read2 = moved(t1, t2);
  t0 = atime_of(d);
  pause_a_tick();
  list_dir(d);
  t1 = atime_of(d);
  pause_a_tick();
  list_dir(d);
  t2 = atime_of(d);
  s.list1 = moved(t0, t1);
  s.list2 = moved(t1, t2);
  return s;
}

// A bind mount of a plain directory with `flags`: what a native filesystem does with them.
class BindMount {
 public:
  BindMount(const std::string& dir, const std::string& at, const fusefs::MountFlags& flags)
      : at_(at) {
    EXPECT_EQ(::mkdir(at.c_str(), 0755), 0);
    ok_ =
        ::mount(dir.c_str(), at.c_str(), nullptr, MS_BIND, nullptr) == 0 &&
        ::mount(nullptr, at.c_str(), nullptr, fusefs::remount_flags(flags) | MS_BIND, nullptr) == 0;
    EXPECT_TRUE(ok_) << "bind mount at " << at << ": " << std::strerror(errno);
  }
  ~BindMount() { ::umount2(at_.c_str(), MNT_DETACH); }
  BindMount(const BindMount&) = delete;
  BindMount& operator=(const BindMount&) = delete;
  bool ok() const { return ok_; }

 private:
  std::string at_;
  bool ok_ = false;
};

struct AtimeCase {
  const char* options;       // besides allow_other
  fusefs::MountFlags flags;  // what they ask the kernel for
  AtimeSteps expected;       // what a bind mount of a plain directory with `flags` does
  unsigned long statvfs_set;
  unsigned long statvfs_clear;
};

void PrintTo(const AtimeCase& c, std::ostream* os) { *os << c.options; }

class AtimeMount : public MountFixture, public ::testing::WithParamInterface<AtimeCase> {
 protected:
  std::string mount_options() const override {
    std::string o = GetParam().options;
    return o.empty() ? "allow_other" : "allow_other," + o;
  }
};

// The kernel keeps no atime of its own for a FUSE file: it shows what the daemon reports,
// so the daemon's reads of BACKING must move atime as the mount's flags say, not as
// BACKING's own mount (relatime here) would.
TEST_P(AtimeMount, ReadsMoveAtimeAsTheMountFlagsSay_LikeABindMount) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for the bind mount to compare with";
  const AtimeCase& c = GetParam();
  struct statvfs vfs;
  ASSERT_EQ(::statvfs(mnt_.c_str(), &vfs), 0);
  EXPECT_EQ(vfs.f_flag & c.statvfs_set, c.statvfs_set) << vfs.f_flag;
  EXPECT_EQ(vfs.f_flag & c.statvfs_clear, 0u) << vfs.f_flag;

  make_fresh_files(plain_);
  BindMount ref(plain_, base_ + "/ref", c.flags);
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(access_steps(base_ + "/ref"), c.expected) << "bind mount";

  make_fresh_files(backing_);
  EXPECT_EQ(access_steps(mnt_), c.expected) << "fsysfs";
}

INSTANTIATE_TEST_SUITE_P(
    Rules, AtimeMount,
    ::testing::Values(
        AtimeCase{"", {}, {true, false, true, false}, ST_RELATIME, ST_NOATIME | ST_NODIRATIME},
        AtimeCase{"relatime", {}, {true, false, true, false}, ST_RELATIME, ST_NOATIME},
        AtimeCase{"noatime",
                  {.atime = fusefs::Atime::kNoatime},
                  {false, false, false, false},
                  ST_NOATIME,
                  ST_RELATIME},
        AtimeCase{"strictatime",
                  {.atime = fusefs::Atime::kStrictatime},
                  {true, true, true, true},
                  0,
                  ST_NOATIME | ST_RELATIME},
        AtimeCase{"nodiratime",
                  {.nodiratime = true},
                  {true, false, false, false},
                  ST_NODIRATIME | ST_RELATIME,
                  ST_NOATIME},
        AtimeCase{"ro,strictatime",
                  {.read_only = true, .atime = fusefs::Atime::kStrictatime},
                  {false, false, false, false},
                  ST_RDONLY,
                  ST_NOATIME | ST_RELATIME}),
    [](const ::testing::TestParamInfo<AtimeCase>& info) {
      std::string name = info.param.options;
      if (name.empty()) return std::string("default");
      for (char& ch : name) {
        if (ch == ',') ch = '_';
      }
      return name;
    });

// --- Device files and set-user-ID bits ---------------------------------------------

class DevSuidMount : public MountFixture {
 protected:
  std::string mount_options() const override { return "allow_other,dev,suid"; }
};

class DefaultFlagsMount : public MountFixture {
 protected:
  std::string mount_options() const override { return "allow_other"; }
};

// The result of writing to a new /dev/null node made under `root`: 0 or the errno.
int write_to_new_null(const std::string& root) {
  const std::string node = root + "/null";
  if (::mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) return errno;
  int fd = ::open(node.c_str(), O_WRONLY);
  if (fd < 0) return errno;
  int rc = ::write(fd, "fred\n", 5) == 5 ? 0 : errno;
  ::close(fd);
  return rc;
}

// What `id -u` prints when nobody runs a set-user-ID root copy of it under `root`.
std::string euid_of_suid_id(const std::string& root) {
  const std::string prog = root + "/id";
  write_file(prog, read_file("/usr/bin/id"));
  EXPECT_EQ(::chmod(prog.c_str(), 04755), 0);
  int out[2];
  EXPECT_EQ(::pipe(out), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0) {
      _exit(120);
    }
    ::execl(prog.c_str(), prog.c_str(), "-u", nullptr);
    _exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[64];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  ::waitpid(pid, nullptr, 0);
  return text;
}

// fstests generic/184 and 434 make device nodes on the mount and use them.
TEST_F(DevSuidMount, RootAskedForDevAndSuid_DevicesOpenAndSuidTakesEffect) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root may mount with dev,suid";
  struct statvfs vfs;
  ASSERT_EQ(::statvfs(mnt_.c_str(), &vfs), 0);
  EXPECT_EQ(vfs.f_flag & (ST_NODEV | ST_NOSUID), 0u) << vfs.f_flag;
  EXPECT_EQ(write_to_new_null(plain_), 0);
  EXPECT_EQ(write_to_new_null(mnt_), 0);
  EXPECT_EQ(euid_of_suid_id(plain_), "0\n");
  EXPECT_EQ(euid_of_suid_id(mnt_), "0\n");
}

TEST_F(DefaultFlagsMount, WithoutDevAndSuid_TheMountIsNodevNosuid) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for mknod and a set-user-ID root file";
  struct statvfs vfs;
  ASSERT_EQ(::statvfs(mnt_.c_str(), &vfs), 0);
  EXPECT_EQ(vfs.f_flag & (ST_NODEV | ST_NOSUID), ST_NODEV | ST_NOSUID) << vfs.f_flag;
  EXPECT_EQ(write_to_new_null(mnt_), EACCES);
  EXPECT_EQ(euid_of_suid_id(mnt_), "65534\n");
}

// --- Remount ------------------------------------------------------------------------

class RemountTest : public MountFixture {
 protected:
  std::string mount_options() const override { return "allow_other"; }
  CommandResult remount(const std::string& options) {
    return run_fsysfs(base_, {backing_, mnt_, "-o", "remount," + options});
  }
  unsigned long statvfs_flags() {
    struct statvfs vfs;
    EXPECT_EQ(::statvfs(mnt_.c_str(), &vfs), 0);
    return vfs.f_flag;
  }
};

// fstests generic/294, 306, 452: `mount -o remount,ro` reaches fsysfs through mount.fuse3.
TEST_F(RemountTest, ReadOnlyAndBack_TheKernelRefusesChangesMeanwhile) {
  const std::string f = mnt_ + "/f";
  write_file(f, "data");
  CommandResult r = remount("ro");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(statvfs_flags() & ST_RDONLY, 0u);
  EXPECT_EQ(read_file(f), "data");
  EXPECT_EQ(err_of(::open(f.c_str(), O_WRONLY)), EROFS);
  EXPECT_EQ(err_of(::open((mnt_ + "/new").c_str(), O_CREAT | O_WRONLY, 0644)), EROFS);
  EXPECT_EQ(err_of(::truncate(f.c_str(), 0)), EROFS);
  EXPECT_EQ(err_of(::unlink(f.c_str())), EROFS);
  EXPECT_EQ(err_of(::mkdir((mnt_ + "/d").c_str(), 0755)), EROFS);
  EXPECT_EQ(err_of(::setxattr(f.c_str(), "user.x", "1", 1, 0)), EROFS);
  // The live settings cannot change on a read-only mount either.
  r = remount("ro,durability=strict");
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err, "fsysfs: " + mnt_ +
                       " is read-only: durability and dirsync change once it is remounted rw\n");

  r = remount("rw");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(statvfs_flags() & ST_RDONLY, 0u);
  write_file(f, "more");
  EXPECT_EQ(read_file(backing_ + "/f"), "more");
}

// The kernel refuses to make a mount read-only while a file on it is open for writing.
TEST_F(RemountTest, ReadOnly_RefusedWhileAFileIsOpenForWriting) {
  int fd = ::open((mnt_ + "/w").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  CommandResult r = remount("ro");
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err,
            "fsysfs: cannot remount " + mnt_ + " read-only: a file on it is open for writing\n");
  EXPECT_EQ(statvfs_flags() & ST_RDONLY, 0u);
  ::close(fd);
}

// The same path as `fsysfs set`: the control file.
TEST_F(RemountTest, DurabilityAndDirsync_ChangeOnTheLiveMount) {
  CommandResult r = remount("durability=strict,nodirsync");
  ASSERT_EQ(r.status, 0) << r.err;
  std::string json = read_stats_json(mnt_);
  EXPECT_EQ(json_word(json, "durability"), "strict");
  EXPECT_EQ(json_word(json, "dirsync"), "off");
  // A remount that does not name them leaves them alone.
  ASSERT_EQ(remount("noexec").status, 0);
  EXPECT_EQ(json_word(read_stats_json(mnt_), "durability"), "strict");
  EXPECT_NE(statvfs_flags() & ST_NOEXEC, 0u);
}

TEST_F(RemountTest, OptionsThatCannotChange_AreRefusedAndChangeNothing) {
  CommandResult r = remount("ro,threads=3");
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err,
            "fsysfs: 'threads=3' cannot change on a live mount; unmount it and mount it again "
            "(a remount changes ro/rw, noexec/exec, dev/nodev, suid/nosuid, the access time "
            "rules, durability and dirsync)\n");
  EXPECT_EQ(statvfs_flags() & ST_RDONLY, 0u);
  // What the mount already has is fine, as mount(8) passes it back from fstab.
  r = remount("allow_other,threads=10");
  EXPECT_EQ(r.status, 0) << r.err;
  r = run_fsysfs(base_, {plain_, "-o", "remount,ro"});
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err, "fsysfs: cannot remount '" + plain_ + "': it is not an fsysfs mount\n");
}

// Files already open follow a new access time rule, as on a native mount.
TEST_F(RemountTest, Noatime_AlsoForFilesAlreadyOpen) {
  if (::geteuid() != 0) GTEST_SKIP() << "a remount needs root";
  write_file(backing_ + "/f", "data");
  const std::string f = mnt_ + "/f";
  int fd = ::open(f.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const timespec before = atime_of(f);
  CommandResult r = remount("noatime");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(statvfs_flags() & ST_NOATIME, 0u);
  pause_a_tick();
  char buf[8];
  EXPECT_EQ(::read(fd, buf, sizeof buf), 4);
  ::close(fd);  // before any fatal failure: the mount must be able to go
  EXPECT_FALSE(moved(before, atime_of(f)));
  EXPECT_FALSE(moved(before, atime_of(backing_ + "/f")));
  // And back: relatime moves it again at the next read of fresh data.
  ASSERT_EQ(remount("relatime").status, 0);
  write_file(backing_ + "/g", "data");
  const timespec g0 = atime_of(mnt_ + "/g");
  pause_a_tick();
  EXPECT_EQ(read_file(mnt_ + "/g"), "data");
  EXPECT_TRUE(moved(g0, atime_of(mnt_ + "/g")));
}

}  // namespace
}  // namespace fsysfs::test
