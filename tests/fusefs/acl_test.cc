// POSIX ACLs and the umask on real mounts, in parity with a plain directory on the backing
// fs: a default ACL on the parent replaces the creator's umask, a setgid directory's new
// subdirectory keeps the group bits its default ACL grants, an ACL change by the owner
// shows in the mode at once and clears S_ISGID unless the owner is in the group, as the
// kernel does for a native filesystem (fstests generic/099, 319, 375, 444). ACLs are set
// as setfacl(1) sets them: through the system.posix_acl_* xattrs.
//
// Modes are read with statx(STATX_MODE) alone, as `stat -c %a` reads them: a full stat
// also asks for the ctime, which an xattr change does invalidate, and so hides a stale mode.

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"

namespace fsysfs::test {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
constexpr char kAccess[] = "system.posix_acl_access";
constexpr char kDefault[] = "system.posix_acl_default";

// An ACL in setfacl's short text form ("u::rwx,u:101:r-x,g::r--,m::rwx,o::---", entries in
// the kernel's order) as the xattr value the kernel takes: version 2, then per entry a
// 16-bit tag, 16-bit permissions and a 32-bit id.
std::string acl_xattr(const std::string& text) {
  auto put32 = [](std::string& out, uint32_t v) { out.append(reinterpret_cast<char*>(&v), 4); };
  auto put16 = [](std::string& out, uint16_t v) { out.append(reinterpret_cast<char*>(&v), 2); };
  std::string out;
  put32(out, 2);
  std::istringstream entries(text);
  std::string entry;
  while (std::getline(entries, entry, ',')) {
    const size_t c1 = entry.find(':');
    const size_t c2 = entry.find(':', c1 + 1);
    const std::string kind = entry.substr(0, c1);
    const std::string id = entry.substr(c1 + 1, c2 - c1 - 1);
    const std::string perms = entry.substr(c2 + 1);
    uint16_t tag = 0;
    if (kind == "u") tag = id.empty() ? 0x01 : 0x02;
    if (kind == "g") tag = id.empty() ? 0x04 : 0x08;
    if (kind == "m") tag = 0x10;
    if (kind == "o") tag = 0x20;
    EXPECT_NE(tag, 0) << "bad ACL entry " << entry;
    uint16_t perm = 0;
    if (perms.find('r') != std::string::npos) perm |= 4;
    if (perms.find('w') != std::string::npos) perm |= 2;
    if (perms.find('x') != std::string::npos) perm |= 1;
    put16(out, tag);
    put16(out, perm);
    put32(out, id.empty() ? 0xffffffffu : static_cast<uint32_t>(std::stoul(id)));
  }
  return out;
}

long set_acl(const std::string& path, const char* name, const std::string& text) {
  const std::string value = acl_xattr(text);
  return ::setxattr(path.c_str(), name, value.data(), value.size(), 0);
}

// The mode bits as `stat -c %a` sees them (see the top of the file).
void mode(Recorder& r, const std::string& what, const std::string& rel) {
  struct statx stx;
  if (::statx(AT_FDCWD, r.p(rel).c_str(), AT_SYMLINK_NOFOLLOW, STATX_MODE, &stx) != 0) {
    r.note(what, errno_name(errno));
    return;
  }
  char buf[16];
  std::snprintf(buf, sizeof buf, "%o", stx.stx_mode & 07777);
  r.note(what, buf);
}

// An ACL xattr as hex bytes, or the errno.
void acl(Recorder& r, const std::string& what, const std::string& rel, const char* name) {
  char buf[512];
  ssize_t n = ::getxattr(r.p(rel).c_str(), name, buf, sizeof buf);
  if (n < 0) {
    r.note(what, errno_name(errno));
    return;
  }
  std::string hex;
  for (ssize_t i = 0; i < n; ++i) {
    char b[4];
    std::snprintf(b, sizeof b, "%02x", static_cast<unsigned char>(buf[i]));
    hex += b;
  }
  r.note(what, hex);
}

class Acl : public MountFixture {
 protected:
  void parity(const Scenario& s) { expect_parity(plain_, mnt_, s); }
};

// generic/099 and 319: with a default ACL on the parent the creator's umask does not apply;
// without one it does, and one caller's umask never reaches another's creations.
TEST_F(Acl, DefaultAclReplacesTheUmask_Parity) {
  parity([](Recorder& r) {
    ::mkdir(r.p("acl").c_str(), 0755);
    r.rc("set default ACL", set_acl(r.p("acl"), kDefault, "u::r-x,g::r--,o::---"));
    ::mkdir(r.p("open").c_str(), 0755);
    ::chmod(r.p("open").c_str(), 0777);
    run_as(r, 0, 0, [](Recorder& c) {
      ::umask(0722);
      int fd = c.fd("create under default ACL", ::open(c.p("acl/f").c_str(), O_CREAT, 0666));
      ::close(fd);
      mode(c, "file mode", "acl/f");
      acl(c, "file's access ACL", "acl/f", kAccess);
      c.rc("mkdir under default ACL", ::mkdir(c.p("acl/d").c_str(), 0777));
      mode(c, "dir mode", "acl/d");
      acl(c, "dir's default ACL", "acl/d", kDefault);
      c.rc("mkfifo under default ACL", ::mkfifo(c.p("acl/p").c_str(), 0666));
      mode(c, "fifo mode", "acl/p");
      c.rc("mknod under default ACL", ::mknod(c.p("acl/n").c_str(), S_IFREG | 0666, 0));
      mode(c, "node mode", "acl/n");
      fd = c.fd("create without default ACL", ::open(c.p("open/f").c_str(), O_CREAT, 0666));
      ::close(fd);
      mode(c, "umasked file mode", "open/f");
      c.rc("mkdir without default ACL", ::mkdir(c.p("open/d").c_str(), 0777));
      mode(c, "umasked dir mode", "open/d");
    });
    run_as(r, kNobody, kNogroup, [](Recorder& c) {
      ::umask(0);
      int fd = c.fd("create with umask 0", ::open(c.p("open/g").c_str(), O_CREAT, 0666));
      ::close(fd);
      mode(c, "unmasked file mode", "open/g");
    });
    // generic/319: a subdirectory inherits the default ACL and takes its mode from it.
    ::mkdir(r.p("inherit").c_str(), 0755);
    r.rc("set default ACL", set_acl(r.p("inherit"), kDefault, "u::rwx,g::rwx,o::---"));
    run_as(r, 0, 0, [](Recorder& c) {
      ::umask(022);
      c.rc("mkdir", ::mkdir(c.p("inherit/sub").c_str(), 0777));
      mode(c, "subdir mode", "inherit/sub");
      acl(c, "subdir's default ACL", "inherit/sub", kDefault);
    });
  });
}

// generic/444: a subdirectory of a setgid directory with a default ACL keeps S_ISGID and the
// group bits of its ACL mask, whether or not its creator is in the directory's group.
TEST_F(Acl, SetgidDirWithDefaultAcl_NewSubdirKeepsGroupWrite_Parity) {
  parity([](Recorder& r) {
    ::mkdir(r.p("d").c_str(), 0755);
    r.rc("set default ACL", set_acl(r.p("d"), kDefault, "u::rwx,u:101:rwx,g::r-x,m::rwx,o::r-x"));
    ::chown(r.p("d").c_str(), 100, 100);
    ::chmod(r.p("d").c_str(), 02755);
    run_as(r, 100, 100, [](Recorder& c) {
      ::umask(022);
      c.rc("mkdir in group", ::mkdir(c.p("d/s1").c_str(), 0777));
      mode(c, "s1", "d/s1");
    });
    run_as(r, 100, 101, [](Recorder& c) {
      ::umask(022);
      c.rc("mkdir not in group", ::mkdir(c.p("d/s2").c_str(), 0777));
      mode(c, "s2", "d/s2");
    });
    r.stat("s2 owner and group", "d/s2");
  });
}

// generic/375: the owner's ACL change shows in the mode at once; S_ISGID stays when the
// owner is in the group and goes when it is not; others may not change the ACL.
void acl_change_by_owner(Recorder& r) {
  write_file(r.p("f"), "x");
  ::mkdir(r.p("d").c_str(), 0755);
  for (const char* name : {"f", "d"}) {
    const std::string n = name;
    ::chown(r.p(n).c_str(), 100, 100);
    ::chmod(r.p(n).c_str(), 02755);
    mode(r, n + " before", n);
    run_as(r, 100, 100, [n](Recorder& c) {
      c.rc("owner in group sets ACL", set_acl(c.p(n), kAccess, "u::rwx,g::rwx,o::rwx"));
    });
    mode(r, n + " S_ISGID stays", n);
    ::chmod(r.p(n).c_str(), 02755);
    mode(r, n + " before", n);
    run_as(r, 100, 101, [n](Recorder& c) {
      c.rc("owner not in group sets ACL", set_acl(c.p(n), kAccess, "u::rwx,g::rwx,o::rwx"));
    });
    mode(r, n + " S_ISGID cleared", n);
    run_as(r, 101, 101, [n](Recorder& c) {
      c.rc("other sets ACL", set_acl(c.p(n), kAccess, "u::rwx,g::---,o::---"));
      c.rc("other removes ACL", ::removexattr(c.p(n).c_str(), kAccess));
    });
    mode(r, n + " unchanged by others", n);
    run_as(r, 100, 101, [n](Recorder& c) {
      c.rc("owner sets a narrower ACL", set_acl(c.p(n), kAccess, "u::rw-,g::r--,o::---"));
    });
    mode(r, n + " narrowed", n);
  }
}

TEST_F(Acl, AclChangeByOwner_ModeIsFreshAndSgidFollowsGroup_Parity) { parity(acl_change_by_owner); }

// Without default_permissions the kernel enforces no ACLs and passes the xattrs through: the
// daemon then drops the attributes the change made stale itself.
class AclWithoutKernelChecks : public Acl {
 protected:
  std::string mount_options() const override { return "allow_other,no_default_permissions"; }
};

TEST_F(AclWithoutKernelChecks, AclChangeByOwner_ModeIsFreshAndSgidFollowsGroup_Parity) {
  parity(acl_change_by_owner);
}

// Callers with different umasks create at the same time, each in its own directory (the
// kernel serializes creations in one directory), so on different worker threads at once:
// every name gets its own creator's umask, never another's.
TEST_F(Acl, ConcurrentCreatorsKeepTheirOwnUmask) {
  constexpr int kNames = 300;
  const mode_t masks[] = {0077, 0022, 0070, 0007};
  std::vector<pid_t> creators;
  for (mode_t mask : masks) {
    const std::string dir = mnt_ + "/m" + std::to_string(mask);
    ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
    ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);
  }
  for (mode_t mask : masks) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (::setgid(kNogroup) != 0 || ::setuid(kNobody) != 0) _exit(3);
      ::umask(mask);
      const std::string dir = mnt_ + "/m" + std::to_string(mask) + "/";
      for (int i = 0; i < kNames; ++i) {
        const std::string p = dir + std::to_string(i);
        int fd = ::open(p.c_str(), O_CREAT | O_WRONLY, 0666);
        if (fd < 0) _exit(4);
        ::close(fd);
        if (::mkdir((p + "d").c_str(), 0777) != 0) _exit(5);
      }
      _exit(0);
    }
    creators.push_back(pid);
  }
  for (pid_t pid : creators) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  int wrong = 0;
  for (mode_t mask : masks) {
    const std::string dir = backing_ + "/m" + std::to_string(mask) + "/";
    for (int i = 0; i < kNames; ++i) {
      for (auto [suffix, asked] : {std::pair{"", 0666}, std::pair{"d", 0777}}) {
        const std::string p = dir + std::to_string(i) + suffix;
        struct stat st;
        ASSERT_EQ(::stat(p.c_str(), &st), 0) << p;
        const mode_t want = static_cast<mode_t>(asked) & ~mask;
        if ((st.st_mode & 07777) != want && ++wrong <= 5) {
          ADD_FAILURE() << p << ": mode " << std::oct << (st.st_mode & 07777) << ", want " << want;
        }
      }
    }
  }
  EXPECT_EQ(wrong, 0);
}

// A filesystem without ACLs (ramfs has no xattrs at all) as the backing root, or mounted
// at ram/ below it; the same under the plain directory.
class AclUnsupported : public Acl {
 protected:
  virtual std::string ramfs_at() const { return ""; }
  void SetUp() override {
    MountFixture::SetUp();
    if (HasFatalFailure()) return;
    unmount();
    for (const std::string* root : {&backing_, &plain_}) {
      const std::string dir = *root + ramfs_at();
      if (dir != *root) {
        ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
      }
      ASSERT_EQ(::mount("ramfs", dir.c_str(), "ramfs", 0, "mode=0755"), 0)
          << "cannot mount ramfs: " << std::strerror(errno);
      ramfs_.push_back(dir);
    }
    mount();
  }
  void TearDown() override {
    unmount();
    for (const std::string& dir : ramfs_) {
      if (::umount2(dir.c_str(), 0) != 0) {
        ADD_FAILURE() << "cannot unmount ramfs on " << dir << ": " << std::strerror(errno);
        ::umount2(dir.c_str(), MNT_DETACH);
      }
    }
    MountFixture::TearDown();
  }

  // Permission checks by the mode alone, for nobody, under `top` (where ramfs is).
  static Scenario checks_by_mode(const std::string& top) {
    return [top](Recorder& r) {
      ::mkdir(r.p(top + "d").c_str(), 0755);
      write_file(r.p(top + "d/f"), "readable");
      ::chmod(r.p(top + "d/f").c_str(), 0644);
      ::mkdir(r.p(top + "w").c_str(), 0755);
      ::chmod(r.p(top + "w").c_str(), 0777);
      run_as(r, kNobody, kNogroup, [top](Recorder& c) {
        c.content("read through the other bits", top + "d/f");
        c.open_probe("open for write", ::open(c.p(top + "d/f").c_str(), O_WRONLY));
        c.open_probe("create in a 0755 dir",
                     ::open(c.p(top + "d/g").c_str(), O_CREAT | O_WRONLY, 0644));
        ::umask(022);
        int fd = c.fd("create in a 0777 dir",
                      ::open(c.p(top + "w/g").c_str(), O_CREAT | O_WRONLY, 0666));
        ::close(fd);
        mode(c, "umasked mode", top + "w/g");
        c.rc("set ACL", set_acl(c.p(top + "w/g"), kAccess, "u::rw-,g::r--,o::---"));
      });
    };
  }
  std::vector<std::string> ramfs_;
};

// The mount leaves ACLs off, as the backing fs has none.
TEST_F(AclUnsupported, PermissionChecksUseTheModeAlone_Parity) {
  parity([](Recorder& r) {
    checks_by_mode("")(r);
    acl(r, "get ACL", "w/g", kAccess);
  });
}

class AclUnsupportedBelow : public AclUnsupported {
 protected:
  std::string ramfs_at() const override { return "/ram"; }
};

// ACLs are on (the backing root has them); below, the kernel asks for ACLs that cannot
// exist there, and "none" must not fail its checks. (A caller's own getxattr of an ACL
// there sees ENODATA, not the EOPNOTSUPP of the fs below: the kernel asks the same way.)
TEST_F(AclUnsupportedBelow, PermissionChecksUseTheModeAlone_Parity) {
  parity(checks_by_mode("ram/"));
}

}  // namespace
}  // namespace fsysfs::test
