// Hostile and odd input on real mounts: odd names, symlinks that point out of BACKING,
// renames racing lookups, stale file handles, other users (through allow_other, in parity
// with a plain directory), the control interface driven by others, and limits (a huge
// directory, a 100 GiB sparse file, 10,000 open files, xattrs at the backing fs's maximum).
//
// "The daemon never works outside BACKING on its own behalf" is checked two ways: the
// daemon's open fds (/proc/PID/fd) all stay inside BACKING, and a directory outside BACKING
// that only root may enter stays unchanged while an unprivileged user attacks through the
// mount (the daemon runs as root; anything it did there by following a name would show).

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"

namespace fsysfs::test {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
constexpr uid_t kOther = 1234;  // a second unprivileged user
constexpr gid_t kOtherGroup = 1234;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Bytes outside printable ASCII as \xNN, so names with newlines or invalid UTF-8 can be
// recorded and compared.
std::string escaped(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x21 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

// Sorted names of a directory (without . and ..), escaped; or the errno.
std::string listing(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return "<" + errno_name(errno) + ">";
  std::set<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.insert(escaped(n));
  }
  ::closedir(d);
  std::string out;
  for (const auto& n : names) out += n + " ";
  return out;
}

// The targets of `pid`'s open fds.
std::vector<std::string> fd_targets(const std::string& pid) {
  std::vector<std::string> out;
  const std::string dir = "/proc/" + pid + "/fd";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return {"<cannot list " + dir + ": " + errno_name(errno) + ">"};
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char buf[4096];
    ssize_t n = ::readlinkat(::dirfd(d), e->d_name, buf, sizeof buf - 1);
    if (n > 0) out.emplace_back(buf, static_cast<size_t>(n));
  }
  ::closedir(d);
  return out;
}

// The targets of `pid`'s open fds that are paths outside `inside`, except the files a
// daemon legitimately holds (/dev/fuse, /dev/null, its log) and those it inherited from
// this test process (a test runner's output file, for instance).
std::vector<std::string> fds_outside(pid_t pid, const std::string& inside, const std::string& log) {
  const std::vector<std::string> own = fd_targets("self");
  std::vector<std::string> out;
  for (const auto& target : fd_targets(std::to_string(pid))) {
    if (target.empty() || target[0] != '/') continue;  // pipe:, socket:, anon_inode:...
    if (target == inside || target.starts_with(inside + "/")) continue;
    if (target == "/dev/fuse" || target == "/dev/null" || target == log) continue;
    // The daemon polls its own mount table to follow remounts (Filesystem::follow_mount).
    if (target == "/proc/" + std::to_string(pid) + "/mountinfo") continue;
    if (std::find(own.begin(), own.end(), target) != own.end()) continue;
    out.push_back(target);
  }
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

// Forks a child as `uid` that runs `fn` and exits 0 if it returned true. The child must
// not start threads: the test process already runs some (TSan cannot follow that).
template <class Fn>
pid_t spawn_as(uid_t uid, gid_t gid, Fn&& fn) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0) {
      _exit(100);
    }
    _exit(fn() ? 0 : 1);
  }
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

template <class Fn>
int child_as(uid_t uid, gid_t gid, Fn&& fn) {
  return wait_status(spawn_as(uid, gid, std::forward<Fn>(fn)));
}

class Hostile : public MountFixture {
 protected:
  void SetUp() override {
    MountFixture::SetUp();
    if (HasFatalFailure()) return;
    outside_ = base_ + "/outside";
    ASSERT_EQ(::mkdir(outside_.c_str(), 0700), 0);
    write_file(outside_ + "/secret", "root only");
    ASSERT_EQ(::chmod((outside_ + "/secret").c_str(), 0600), 0);
    ASSERT_EQ(::setxattr((outside_ + "/secret").c_str(), "user.secret", "s3cr3t", 6, 0), 0);
  }

  void parity(const Scenario& s) { expect_parity(plain_, mnt_, s); }

  void expect_daemon_inside() {
    ASSERT_GT(daemon_, 0);
    EXPECT_EQ(::kill(daemon_, 0), 0) << "daemon is gone";
    EXPECT_EQ(join(fds_outside(daemon_, backing_, log_)), "");
  }
  void expect_outside_untouched() {
    EXPECT_EQ(listing(outside_), "secret ");
    EXPECT_EQ(read_file(outside_ + "/secret"), "root only");
    struct stat st;
    ASSERT_EQ(::stat((outside_ + "/secret").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(st.st_uid, 0u);
  }

  std::string control() const { return mnt_ + "/.fsysfs"; }
  std::string stats() {
    std::vector<char> buf(1 << 16);
    ssize_t n = ::getxattr(control().c_str(), "user.fsysfs.stats.json", buf.data(), buf.size());
    return n > 0 ? std::string(buf.data(), static_cast<size_t>(n)) : std::string();
  }

  std::string outside_;  // base_/outside: root only, holds "secret" (0600, user.secret xattr)
};

template <const char* kOptions>
class HostileWith : public Hostile {
 protected:
  std::string mount_options() const override { return kOptions; }
};
constexpr char kWritebackOptions[] = "allow_other,default_permissions,writeback_cache";
using HostileWriteback = HostileWith<kWritebackOptions>;

// ---------------------------------------------------------------------------------------
// Names

void odd_names_scenario(Recorder& r) {
  const std::string longest(255, 'n');
  const std::string too_long(256, 'n');
  int fd = r.fd("create 255-byte name", ::open(r.p(longest).c_str(), O_CREAT | O_WRONLY, 0644));
  if (fd >= 0) ::close(fd);
  r.stat("stat 255", longest);
  r.open_probe("create 256-byte name", ::open(r.p(too_long).c_str(), O_CREAT | O_WRONLY, 0644));
  r.rc("mkdir 256", ::mkdir(r.p(too_long).c_str(), 0755));
  r.rc("symlink named 256", ::symlink("x", r.p(too_long).c_str()));
  r.rc("rename to 256", ::rename(r.p(longest).c_str(), r.p(too_long).c_str()));
  r.rc("mkdir 255", ::mkdir(r.p(std::string(255, 'd')).c_str(), 0755));
  r.rc("create in 255/255",
       ::mknod(r.p(std::string(255, 'd') + "/" + longest).c_str(), S_IFREG | 0644, 0));
  r.stat("255/255", std::string(255, 'd') + "/" + longest);

  const std::vector<std::string> odd = {
      "new\nline",
      "\n",
      "tab\there",
      "\xff\xfe\xfd",
      "\xc3\x28",
      "\xed\xa0\x80",
      "-rf",
      "--help",
      "-",
      " ",
      "trailing ",
      "*?[a]",
      "back\\sl",
      "\x01\x7f",
      "...",
      "..a",
      "a..",
      "\xe2\x80\xae"
      "evil",
  };
  for (const auto& n : odd) {
    fd = r.fd("create " + escaped(n), ::open(r.p(n).c_str(), O_CREAT | O_WRONLY, 0600));
    if (fd >= 0) {
      r.rc("write " + escaped(n), ::write(fd, n.data(), n.size()), true);
      ::close(fd);
    }
    r.content("read " + escaped(n), n);
  }
  r.note("listing", listing(r.root()));
  r.rc("rename odd to odd", ::rename(r.p("new\nline").c_str(), r.p("\xff\xfe\xfd"
                                                                   "2")
                                                                   .c_str()));
  r.rc("mkdir odd", ::mkdir(r.p("dir\n\xff").c_str(), 0755));
  r.rc("symlink odd target", ::symlink("\xff\n-rf", r.p("l\n").c_str()));
  char buf[64] = {};
  ssize_t n = r.rc("readlink odd", ::readlink(r.p("l\n").c_str(), buf, sizeof buf), true);
  r.note("link text", escaped(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0)));
  r.rc("setxattr odd name", ::setxattr(r.p("-rf").c_str(), "user.\n\xff", "v", 1, 0));
  r.rc("getxattr odd name", ::getxattr(r.p("-rf").c_str(), "user.\n\xff", buf, sizeof buf), true);
  r.rc("xattr name 255",
       ::setxattr(r.p("-rf").c_str(), ("user." + std::string(250, 'x')).c_str(), "v", 1, 0));
  r.rc("xattr name 256",
       ::setxattr(r.p("-rf").c_str(), ("user." + std::string(251, 'x')).c_str(), "v", 1, 0));
  r.rc("symlink target 4095", ::symlink(std::string(4095, 't').c_str(), r.p("l4095").c_str()));
  std::vector<char> big(8192);
  r.rc("readlink 4095", ::readlink(r.p("l4095").c_str(), big.data(), big.size()), true);
  r.rc("symlink target 4096", ::symlink(std::string(4096, 't').c_str(), r.p("l4096").c_str()));
  for (const auto& name : odd) r.rc("unlink " + escaped(name), ::unlink(r.p(name).c_str()));
  r.note("listing after", listing(r.root()));
}

TEST_F(Hostile, LongOddAndInvalidUtf8Names_Parity) {
  parity(odd_names_scenario);
  // The names reached BACKING byte for byte.
  EXPECT_EQ(listing(backing_), listing(plain_));
  expect_daemon_inside();
}

TEST_F(Hostile, DotAndDotDotInPaths_Parity) {
  parity([](Recorder& r) {
    ::mkdir(r.p("a").c_str(), 0755);
    ::mkdir(r.p("a/b").c_str(), 0755);
    write_file(r.p("a/b/f"), "f");
    r.content("a/b/../b/f", "a/b/../b/f");
    r.content("a/./b/./f", "a/./b/./f");
    r.content("a/b/../../a/b/f", "a/b/../../a/b/f");
    r.content("f/.. (not a dir)", "a/b/f/..");
    r.stat("root/..", "..");
    r.stat("a/b/../..", "a/b/../..");
    r.rc("mkdir a/b/..", ::mkdir(r.p("a/b/..").c_str(), 0755));
    r.rc("rmdir a/b/.", ::rmdir(r.p("a/b/.").c_str()));
    r.rc("rmdir a/b/..", ::rmdir(r.p("a/b/..").c_str()));
    r.rc("rename a/b/. away", ::rename(r.p("a/b/.").c_str(), r.p("x").c_str()));
    r.rc("rename onto ..", ::rename(r.p("a/b/f").c_str(), r.p("a/b/..").c_str()));
    r.rc("unlink ..", ::unlink(r.p("a/..").c_str()));
    r.rc("link to .", ::link(r.p("a/b/f").c_str(), r.p("a/.").c_str()));
    r.rc("symlink ..", ::symlink("x", r.p("a/..").c_str()));
    r.rc("rename dir into itself", ::rename(r.p("a").c_str(), r.p("a/b/a").c_str()));
  });
  expect_daemon_inside();
}

// ---------------------------------------------------------------------------------------
// Symlinks that leave BACKING

TEST_F(Hostile, SymlinksOutOfBacking_ResolveForTheApp_DaemonStaysInside_Parity) {
  const std::string outside = outside_;
  parity([&outside](Recorder& r) {
    r.rc("symlink to /etc", ::symlink("/etc", r.p("etc").c_str()));
    r.rc("symlink to outside", ::symlink(outside.c_str(), r.p("out").c_str()));
    r.rc("relative symlink up and out", ::symlink("../outside", r.p("rel").c_str()));
    r.rc("symlink to secret", ::symlink((outside + "/secret").c_str(), r.p("sec").c_str()));
    char buf[256] = {};
    r.rc("readlink", ::readlink(r.p("etc").c_str(), buf, sizeof buf), true);
    r.note("text", buf);
    // Followed by the kernel for the application: the app's own /etc.
    r.content("etc/hostname", "etc/hostname");
    r.stat("etc/passwd", "etc/passwd");
    r.stat("lstat etc", "etc");
    // Root's own view of the outside directory, through each link.
    r.content("root reads out/secret", "out/secret");
    r.content("root reads rel/secret", "rel/secret");
    // Xattrs of the link itself are the link's, never its target's.
    r.rc("lgetxattr on link", ::lgetxattr(r.p("sec").c_str(), "user.secret", buf, sizeof buf));
    r.rc("llistxattr on link", ::llistxattr(r.p("sec").c_str(), buf, sizeof buf), true);
    r.rc("lsetxattr user on link", ::lsetxattr(r.p("sec").c_str(), "user.x", "1", 1, 0));
    r.rc("lremovexattr on link", ::lremovexattr(r.p("sec").c_str(), "user.secret"));
    struct timespec ts[2] = {{1, 0}, {2, 0}};
    r.rc("lutimes on link", ::utimensat(AT_FDCWD, r.p("sec").c_str(), ts, AT_SYMLINK_NOFOLLOW));
    r.rc("lchown on link", ::lchown(r.p("sec").c_str(), kNobody, kNogroup));
    r.stat("link after lchown", "sec");
    run_as(r, kNobody, kNogroup, [](Recorder& c) {
      char b[64] = {};
      c.content("nobody reads out/secret", "out/secret");
      c.content("nobody reads sec", "sec");
      c.open_probe("nobody creates out/new",
                   ::open(c.p("out/new").c_str(), O_CREAT | O_WRONLY, 0644));
      c.rc("nobody mkdir out/d", ::mkdir(c.p("out/d").c_str(), 0755));
      c.rc("nobody unlink out/secret", ::unlink(c.p("out/secret").c_str()));
      c.rc("nobody truncate sec", ::truncate(c.p("sec").c_str(), 0));
      c.rc("nobody chmod sec", ::chmod(c.p("sec").c_str(), 0666));
      c.rc("nobody getxattr via sec", ::getxattr(c.p("sec").c_str(), "user.secret", b, sizeof b));
      c.rc("nobody setxattr via sec", ::setxattr(c.p("sec").c_str(), "user.y", "1", 1, 0));
      c.rc("nobody rename out/secret", ::rename(c.p("out/secret").c_str(), c.p("stolen").c_str()));
      c.rc("nobody link out/secret", ::link(c.p("out/secret").c_str(), c.p("stolen").c_str()));
    });
  });
  expect_outside_untouched();
  expect_daemon_inside();
}

// A name that was missing when the kernel looked it up becomes a symlink out of BACKING
// before the daemon creates it: the create must not follow it. The window is held open by
// an injected delay on the create request.
TEST_F(Hostile, SymlinkSwappedInBeforeCreate_IsNotFollowed) {
  const std::string target = outside_ + "/planted";
  const std::string rule = "op=create|mkdir|mknod,delay_ms=400";
  ASSERT_EQ(::setxattr(control().c_str(), "user.fsysfs.inject", rule.data(), rule.size(), 0), 0)
      << std::strerror(errno);
  struct Case {
    const char* name;
    int (*make)(const std::string& path);
  };
  const Case cases[] = {
      {"c", [](const std::string& p) { return ::open(p.c_str(), O_CREAT | O_WRONLY, 0644); }},
      {"m", [](const std::string& p) { return ::mkdir(p.c_str(), 0755); }},
      {"n", [](const std::string& p) { return ::mknod(p.c_str(), S_IFREG | 0644, 0); }},
  };
  uint64_t faults = 0;
  for (const auto& c : cases) {
    std::atomic<int> result{1};
    std::atomic<int> err{0};
    const std::string path = mnt_ + "/" + c.name;
    std::thread app([&] {
      int rc = c.make(path);
      err = rc < 0 ? errno : 0;
      if (rc > 0) ::close(rc);
      result = rc < 0 ? -1 : 0;
    });
    // The fault is counted before its delay: once it shows, the request is in the window.
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (stats().find("\"faults_injected\":" + std::to_string(faults + 1)) == std::string::npos &&
           Clock::now() < deadline) {
      std::this_thread::yield();
    }
    ++faults;
    ASSERT_EQ(::symlink(target.c_str(), (backing_ + "/" + c.name).c_str()), 0);
    app.join();
    EXPECT_EQ(result.load(), -1) << c.name << ": created through the planted symlink";
    EXPECT_TRUE(err == ELOOP || err == EEXIST) << c.name << ": " << errno_name(err);
    struct stat st;
    EXPECT_EQ(::lstat(target.c_str(), &st), -1) << c.name << ": daemon created " << target;
    EXPECT_EQ(::lstat((backing_ + "/" + c.name).c_str(), &st), 0);
    EXPECT_TRUE(S_ISLNK(st.st_mode)) << c.name;
  }
  expect_outside_untouched();
  expect_daemon_inside();
}

// Directories renamed back and forth (and swapped with a symlink out of BACKING) while
// other threads, as an unprivileged user, look up, open, create, chmod, set xattrs and
// unlink under them. Nothing may crash; nothing outside BACKING may change.
TEST_F(Hostile, RenamesRacingLookups_NoCrash_NothingOutsideChanges) {
  for (const char* d : {"/d1", "/d1/sub", "/d2", "/d2/sub"}) {
    ASSERT_EQ(::mkdir((backing_ + d).c_str(), 0777), 0);
    ASSERT_EQ(::chmod((backing_ + d).c_str(), 0777), 0);
  }
  write_file(backing_ + "/d1/sub/f", "one");
  write_file(backing_ + "/d2/sub/f", "two");
  ::chmod((backing_ + "/d1/sub/f").c_str(), 0666);
  ::chmod((backing_ + "/d2/sub/f").c_str(), 0666);
  ASSERT_EQ(::symlink(outside_.c_str(), (backing_ + "/s").c_str()), 0);

  const auto duration = std::chrono::seconds(4);
  std::atomic<bool> stop{false};
  std::atomic<long> renames{0};
  const std::string m = mnt_;
  // Three users, each its own process, forked before the renamer threads exist (a child
  // forked while they run could inherit a lock one of them holds); they start when `go`
  // closes.
  int go[2];
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  std::vector<pid_t> users;
  for (int t = 0; t < 3; ++t) {
    users.push_back(spawn_as(kNobody, kNogroup, [&, t] {
      ::close(go[1]);
      char c;
      (void)::read(go[0], &c, 1);
      const std::string mine = "/u" + std::to_string(t);
      const auto end = Clock::now() + duration;
      long ops = 0;
      char buf[64];
      while (Clock::now() < end) {
        for (const char* d : {"/d1", "/d2", "/s"}) {
          const std::string dir = m + d;
          struct stat st;
          ::stat((dir + "/sub/f").c_str(), &st);
          int fd = ::open((dir + "/sub/f").c_str(), O_RDWR);
          if (fd >= 0) {
            (void)::pread(fd, buf, sizeof buf, 0);
            ::close(fd);
          }
          fd = ::open((dir + "/sub" + mine).c_str(), O_CREAT | O_WRONLY, 0644);
          if (fd >= 0) ::close(fd);
          ::chmod((dir + "/sub/f").c_str(), 0666);
          ::setxattr((dir + "/sub/f").c_str(), "user.t", "1", 1, 0);
          ::truncate((dir + "/sub/f").c_str(), 3);
          ::unlink((dir + "/sub" + mine).c_str());
          ::rename((dir + "/sub/f").c_str(), (dir + "/sub/f").c_str());
          DIR* dd = ::opendir((dir + "/sub").c_str());
          if (dd != nullptr) {
            while (::readdir(dd) != nullptr) {
            }
            ::closedir(dd);
          }
          ++ops;
        }
      }
      return ops > 0;
    }));
  }
  ::close(go[0]);
  std::vector<std::thread> renamers;
  renamers.emplace_back([&] {
    while (!stop) {
      if (::renameat2(AT_FDCWD, (m + "/d1").c_str(), AT_FDCWD, (m + "/d2").c_str(),
                      RENAME_EXCHANGE) == 0) {
        ++renames;
      }
    }
  });
  renamers.emplace_back([&] {
    while (!stop) {
      // The symlink out of BACKING and a directory trade places.
      if (::renameat2(AT_FDCWD, (m + "/s").c_str(), AT_FDCWD, (m + "/d1").c_str(),
                      RENAME_EXCHANGE) == 0) {
        ++renames;
      }
      ::rename((m + "/d2/sub").c_str(), (m + "/d2/sub2").c_str());
      ::rename((m + "/d2/sub2").c_str(), (m + "/d2/sub").c_str());
    }
  });
  ::close(go[1]);
  int status = 0;
  for (pid_t pid : users) status |= wait_status(pid);
  stop = true;
  for (auto& t : renamers) t.join();
  EXPECT_EQ(status, 0);
  EXPECT_GT(renames.load(), 0);
  expect_outside_untouched();
  expect_daemon_inside();
  struct stat st;
  EXPECT_EQ(::stat((mnt_ + "/d1").c_str(), &st), 0) << "mount still serves";
}

// A file handle of an unlinked file whose inode the kernel has forgotten must give ESTALE
// without the daemon touching the freed inode. When node ids were Inode addresses, export
// support made the kernel look up "." in a node id the daemon had already freed (ASan:
// heap-use-after-free in Filesystem::lookup; a release daemon dup()ed whatever fd number
// the freed memory held, seen as EBADF error replies). file_handle_test.cc covers handles
// that must keep opening.
TEST_F(Hostile, StaleFileHandle_IsEstale_WithoutTouchingTheFreedInode) {
  const std::string victim = mnt_ + "/victim";
  write_file(victim, "v");
  std::vector<char> storage(sizeof(file_handle) + MAX_HANDLE_SZ);
  auto* fh = reinterpret_cast<file_handle*>(storage.data());
  fh->handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  if (::name_to_handle_at(AT_FDCWD, victim.c_str(), fh, &mount_id, 0) != 0) {
    // A kernel or backing fs without file handles; anything else is a failure.
    ASSERT_EQ(errno, EOPNOTSUPP) << "name_to_handle_at: " << std::strerror(errno);
    GTEST_SKIP() << "the backing filesystem has no file handles (EOPNOTSUPP)";
  }
  // Unlinking through the mount drops the kernel's last reference: FORGET follows.
  ASSERT_EQ(::unlink(victim.c_str()), 0);
  // Another name now takes the lowest free fd numbers in the daemon.
  write_file(mnt_ + "/other", "o");
  int mfd = ::open(mnt_.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(mfd, 0);
  // While the kernel still caches the unlinked inode it may open it (as on a local fs
  // whose inode is not yet evicted); once it does not, ESTALE. Never anything else.
  for (int i = 0; i < 3; ++i) {
    int fd = ::open_by_handle_at(mfd, fh, O_RDONLY);
    if (fd >= 0) {
      char c = 0;
      EXPECT_EQ(::read(fd, &c, 1), 1);
      EXPECT_EQ(c, 'v');
      ::close(fd);
    } else {
      EXPECT_EQ(errno, ESTALE);
    }
  }
  ::close(mfd);
  const std::string s = stats();
  EXPECT_EQ(s.find("\"EBADF\""), std::string::npos) << s;
  EXPECT_EQ(::kill(daemon_, 0), 0);
}

// ---------------------------------------------------------------------------------------
// Other users, through allow_other, in parity with a plain directory

void users_scenario(Recorder& r) {
  write_file(r.p("private"), "mine");
  ::chmod(r.p("private").c_str(), 0600);
  ::mkdir(r.p("nox").c_str(), 0766);  // rw but no x for others
  write_file(r.p("nox/f"), "f");
  ::mkdir(r.p("xonly").c_str(), 0711);
  write_file(r.p("xonly/f"), "f");
  ::mkdir(r.p("closed").c_str(), 0700);
  ::mkdir(r.p("tmp").c_str(), 0777);
  ::chmod(r.p("tmp").c_str(), 01777);
  write_file(r.p("tmp/rootfile"), "root's");
  ::chmod(r.p("tmp/rootfile").c_str(), 0666);
  ::mkdir(r.p("tmp/rootdir").c_str(), 0777);
  ::chmod(r.p("tmp/rootdir").c_str(), 0777);
  write_file(r.p("suid2"), "suid2");
  ::chmod(r.p("suid2").c_str(), 06777);
  write_file(r.p("rootonly"), "r");
  ::chmod(r.p("rootonly").c_str(), 0755);
  ::mkdir(r.p("sgid").c_str(), 0777);
  ::chown(r.p("sgid").c_str(), 0, 4321);
  ::chmod(r.p("sgid").c_str(), 02777);
  run_as(r, kOther, kOtherGroup, [](Recorder& c) {
    int fd =
        c.fd("other creates in tmp", ::open(c.p("tmp/others").c_str(), O_CREAT | O_WRONLY, 0666));
    if (fd >= 0) ::close(fd);
    ::chmod(c.p("tmp/others").c_str(), 0666);
    c.rc("other symlink in tmp", ::symlink("others", c.p("tmp/otherlink").c_str()));
  });
  run_as(r, kNobody, kNogroup, [](Recorder& c) {
    c.open_probe("read 0600 of root", ::open(c.p("private").c_str(), O_RDONLY));
    c.open_probe("write 0600 of root", ::open(c.p("private").c_str(), O_WRONLY));
    c.stat("stat in dir without x", "nox/f");
    c.open_probe("open in dir without x", ::open(c.p("nox/f").c_str(), O_RDONLY));
    c.note("list dir without x", listing(c.p("nox")));
    c.stat("stat in x-only dir", "xonly/f");
    c.note("list x-only dir", listing(c.p("xonly")));
    c.note("list 0700 dir", listing(c.p("closed")));
    c.open_probe("create in 0700 dir", ::open(c.p("closed/x").c_str(), O_CREAT | O_WRONLY, 0644));
    // Sticky directory: others' names cannot be removed or replaced.
    c.rc("unlink root's in sticky", ::unlink(c.p("tmp/rootfile").c_str()));
    c.rc("unlink other's in sticky", ::unlink(c.p("tmp/others").c_str()));
    c.rc("rename root's in sticky", ::rename(c.p("tmp/rootfile").c_str(), c.p("tmp/x").c_str()));
    c.rc("rmdir root's in sticky", ::rmdir(c.p("tmp/rootdir").c_str()));
    int fd = c.fd("own in sticky", ::open(c.p("tmp/mine").c_str(), O_CREAT | O_WRONLY, 0644));
    if (fd >= 0) ::close(fd);
    c.rc("rename own over root's", ::rename(c.p("tmp/mine").c_str(), c.p("tmp/rootfile").c_str()));
    c.rc("exchange own with other's", ::renameat2(AT_FDCWD, c.p("tmp/mine").c_str(), AT_FDCWD,
                                                  c.p("tmp/others").c_str(), RENAME_EXCHANGE));
    c.open_probe("O_CREAT open of other's in sticky",
                 ::open(c.p("tmp/others").c_str(), O_CREAT | O_WRONLY, 0644));
    c.open_probe("follow other's symlink in sticky",
                 ::open(c.p("tmp/otherlink").c_str(), O_RDONLY));
    c.rc("write root's 0666 in sticky", ::truncate(c.p("tmp/rootfile").c_str(), 1));
    c.rc("unlink own in sticky", ::unlink(c.p("tmp/mine").c_str()));
    // setuid/setgid bits are cleared by a non-owner's fallocate and write (truncate and
    // write are in mount_ops_test; open(O_TRUNC) in its own test below).
    fd = c.fd("open suid2", ::open(c.p("suid2").c_str(), O_RDWR));
    c.rc("fallocate", ::fallocate(fd, 0, 0, 4096));
    c.stat_fd("suid2 after fallocate by non-owner", fd);
    c.rc("pwrite", ::pwrite(fd, "x", 1, 0), true);
    c.stat_fd("suid2 after pwrite by non-owner", fd);
    ::close(fd);
    // No setuid-root files.
    c.rc("chmod u+s root's file", ::chmod(c.p("rootonly").c_str(), 04755));
    c.rc("chown root's file", ::chown(c.p("rootonly").c_str(), kNobody, kNogroup));
    fd = c.fd("create with 06755", ::open(c.p("tmp/s").c_str(), O_CREAT | O_WRONLY, 06755));
    if (fd >= 0) ::close(fd);
    c.stat("created setuid file is the creator's", "tmp/s");
    c.rc("chmod own 04755", ::chmod(c.p("tmp/s").c_str(), 04755));
    c.stat("own setuid", "tmp/s");
    c.rc("chown own to root", ::chown(c.p("tmp/s").c_str(), 0, 0));
    c.rc("chgrp own to root group", ::chown(c.p("tmp/s").c_str(), static_cast<uid_t>(-1), 0));
    c.rc("mknod char device", ::mknod(c.p("tmp/null").c_str(), S_IFCHR | 0666, makedev(1, 3)));
    c.rc("hard link to root's file", ::link(c.p("private").c_str(), c.p("tmp/hl").c_str()));
    // setgid directory: new names take its group; a non-member cannot keep S_ISGID.
    fd = c.fd("create in sgid dir with 02755",
              ::open(c.p("sgid/f").c_str(), O_CREAT | O_WRONLY, 02755));
    if (fd >= 0) ::close(fd);
    c.stat("sgid/f", "sgid/f");
    c.rc("mkdir in sgid dir", ::mkdir(c.p("sgid/d").c_str(), 0755));
    c.stat("sgid/d", "sgid/d");
    c.rc("chmod g+s own file of foreign group", ::chmod(c.p("sgid/f").c_str(), 02755));
    c.stat("sgid/f after chmod g+s", "sgid/f");
  });
  r.stat("suid2 (root's) after", "suid2");
  r.stat("rootonly after", "rootonly");
  r.content("tmp/rootfile after", "tmp/rootfile");
  r.note("tmp after", listing(r.p("tmp")));
}

// open(O_TRUNC) by a non-owner must clear S_ISUID/S_ISGID like truncate(2) does. With
// atomic O_TRUNC (which libfuse turns on by default) the bits would stay: the
// kernel leaves the truncation to the OPEN request and drops the SETATTR that would clear
// the bits (fuse_do_setattr, ATTR_OPEN), and the daemon's backing open runs with
// CAP_FSETID. Hence the mount does not ask for atomic O_TRUNC.
void otrunc_scenario(Recorder& r) {
  write_file(r.p("suid"), "suid");
  ::chmod(r.p("suid").c_str(), 06777);
  run_as(r, kNobody, kNogroup, [](Recorder& c) {
    int fd = c.fd("open suid O_TRUNC", ::open(c.p("suid").c_str(), O_WRONLY | O_TRUNC));
    if (fd >= 0) ::close(fd);
    c.stat("suid after O_TRUNC by non-owner", "suid");
  });
  r.stat("suid after, seen by root", "suid");
}

TEST_F(Hostile, OpenOTruncByNonOwnerClearsSuidSgid_Parity) { parity(otrunc_scenario); }

TEST_F(HostileWriteback, OpenOTruncByNonOwnerClearsSuidSgid_Parity) { parity(otrunc_scenario); }

TEST_F(Hostile, UnprivilegedUserGetsNoMoreThanOnThePlainDir_Parity) {
  parity(users_scenario);
  expect_daemon_inside();
}

TEST_F(HostileWriteback, UnprivilegedUserGetsNoMoreThanOnThePlainDir_Parity) {
  parity(users_scenario);
  expect_daemon_inside();
}

// The real `fsysfs` control commands run by another user change nothing.
TEST_F(Hostile, ControlCommandsFromAnotherUserChangeNothing) {
  const std::string bin = daemon_binary();
  // The real command line is under test; every build of this repository has it.
  ASSERT_EQ(bin.find("serve_helper"), std::string::npos) << "needs the fsysfs binary, not " << bin;
  const std::string rule = "op=mknod,path=/never,errno=EIO";
  ASSERT_EQ(::setxattr(control().c_str(), "user.fsysfs.inject", rule.data(), rule.size(), 0), 0);
  const std::string before = stats();
  auto run_as_nobody = [&](std::vector<std::string> args) {
    pid_t pid = ::fork();
    if (pid == 0) {
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      if (::setgroups(0, nullptr) != 0 || ::setresgid(kNogroup, kNogroup, kNogroup) != 0 ||
          ::setresuid(kNobody, kNobody, kNobody) != 0) {
        _exit(100);
      }
      std::vector<char*> argv{const_cast<char*>(bin.c_str())};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      _exit(127);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(run_as_nobody({"stats", mnt_}), 0);
  EXPECT_NE(run_as_nobody({"set", mnt_, "durability=none"}), 0);
  EXPECT_NE(run_as_nobody({"set", mnt_, "dirsync=on"}), 0);
  EXPECT_NE(run_as_nobody({"inject", mnt_, "op=all,errno=EIO"}), 0);
  EXPECT_NE(run_as_nobody({"inject", mnt_, "--clear"}), 0);
  EXPECT_NE(run_as_nobody({"stats", mnt_, "--reset"}), 0);
  const std::string after = stats();
  EXPECT_NE(after.find("\"durability\":\"fsync\""), std::string::npos) << after;
  EXPECT_NE(after.find("op=mknod,path=/never,errno=EIO"), std::string::npos) << after;
  EXPECT_EQ(after.find("op=all"), std::string::npos) << after;
  // Raw xattrs on the control file, beyond what the command offers.
  const int raw = child_as(kNobody, kNogroup, [&] {
    const std::string c = control();
    for (const char* attr : {"user.fsysfs.inject", "user.fsysfs.durability", "user.fsysfs.dirsync",
                             "user.fsysfs.stats.reset", "user.fsysfs.inject.clear",
                             "trusted.fsysfs.inject", "user.fsysfs.stats.json"}) {
      if (::setxattr(c.c_str(), attr, "op=all,errno=EIO", 16, 0) == 0) return false;
      if (::removexattr(c.c_str(), attr) == 0) return false;
    }
    return ::chmod(c.c_str(), 0666) != 0 && ::open(c.c_str(), O_WRONLY) < 0;
  });
  EXPECT_EQ(raw, 0);
  EXPECT_EQ(stats().find("op=all"), std::string::npos);
}

// A fault rule whose errno the kernel refuses in a reply (512 and above: fuse_dev_do_write
// rejects the reply, libfuse only remaps 1000 and above) leaves the request unanswered: the
// application hangs in the kernel, unkillable, until the daemon exits. Such rules must be
// refused.
TEST_F(Hostile, FaultErrnoTheKernelWouldRefuseIsRefused) {
  for (const char* rule :
       {"op=open,path=/x,errno=512", "op=open,path=/x,errno=600", "op=open,path=/x,errno=4095"}) {
    errno = 0;
    EXPECT_EQ(::setxattr(control().c_str(), "user.fsysfs.inject", rule, std::strlen(rule), 0), -1)
        << rule;
    EXPECT_EQ(errno, EINVAL) << rule;
  }
  const char* ok = "op=open,path=/x,errno=511";
  EXPECT_EQ(::setxattr(control().c_str(), "user.fsysfs.inject", ok, std::strlen(ok), 0), 0);
}

// ---------------------------------------------------------------------------------------
// Limits

// 1,000,000 entries take longer than a test should here (see docs/reliability.md for the
// manual command and its time); this lists 200,000 completely.
TEST_F(Hostile, TwoHundredThousandEntriesListedCompletely) {
  const int kEntries = 200000;
  ASSERT_EQ(::mkdir((backing_ + "/huge").c_str(), 0755), 0);
  int dfd = ::open((backing_ + "/huge").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dfd, 0);
  auto t0 = Clock::now();
  for (int i = 0; i < kEntries; ++i) {
    ASSERT_EQ(::mknodat(dfd, ("e" + std::to_string(i)).c_str(), S_IFREG | 0644, 0), 0)
        << i << ": " << std::strerror(errno);
  }
  ::close(dfd);
  const double create_s = seconds_since(t0);
  t0 = Clock::now();
  DIR* dir = ::opendir((mnt_ + "/huge").c_str());
  ASSERT_NE(dir, nullptr);
  std::vector<bool> seen(kEntries);
  long total = 0, bad = 0;
  while (dirent* e = ::readdir(dir)) {
    ++total;
    if (e->d_name[0] == 'e') {
      long i = std::strtol(e->d_name + 1, nullptr, 10);
      if (i >= 0 && i < kEntries && !seen[i]) {
        seen[i] = true;
      } else {
        ++bad;
      }
    }
  }
  ::closedir(dir);
  const double list_s = seconds_since(t0);
  std::printf("created %d entries in BACKING in %.1f s, listed through the mount in %.1f s\n",
              kEntries, create_s, list_s);
  EXPECT_EQ(total, kEntries + 2);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), true), kEntries);
  expect_daemon_inside();
}

TEST_F(Hostile, HundredGiBSparseFile_Parity) {
  parity([](Recorder& r) {
    const off_t last = (100ll << 30) - 4096;
    int fd = r.fd("create", ::open(r.p("sparse").c_str(), O_CREAT | O_RDWR, 0644));
    std::string block(4096, 'z');
    r.rc("pwrite at 100 GiB - 4 KiB", ::pwrite(fd, block.data(), block.size(), last), true);
    r.rc("fsync", ::fsync(fd));
    struct stat st;
    ::fstat(fd, &st);
    r.note("size", std::to_string(st.st_size));
    r.note("allocated at most 1 MiB", std::to_string(st.st_blocks * 512 <= (1 << 20)));
    std::string back(4096, '\0');
    r.rc("pread back", ::pread(fd, back.data(), back.size(), last), true);
    r.note("same bytes", std::to_string(back == block));
    r.rc("pread in the hole", ::pread(fd, back.data(), back.size(), 50ll << 30), true);
    r.note("hole reads zeros", std::to_string(back == std::string(4096, '\0')));
    r.rc("SEEK_DATA 0", ::lseek(fd, 0, SEEK_DATA), true);
    r.rc("SEEK_HOLE 0", ::lseek(fd, 0, SEEK_HOLE), true);
    r.rc("SEEK_HOLE last", ::lseek(fd, last, SEEK_HOLE), true);
    r.rc("SEEK_DATA past end", ::lseek(fd, 100ll << 30, SEEK_DATA));
    r.rc("pread past end", ::pread(fd, back.data(), back.size(), 100ll << 30), true);
    r.rc("ftruncate to 16 TiB - 4 KiB", ::ftruncate(fd, (16ll << 40) - 4096));
    r.rc("ftruncate to 16 TiB + 4 KiB", ::ftruncate(fd, (16ll << 40) + 4096));
    r.rc("pwrite at 16 TiB", ::pwrite(fd, "x", 1, 16ll << 40));
    ::close(fd);
    r.stat("stat", "sparse");
  });
}

// The daemon inherits its fd limit from whoever starts it; it holds two fds per open file
// (the backing fd and the inode's O_PATH fd). These fixtures start it under a chosen
// RLIMIT_NOFILE and give the test itself room for 10,000 fds.
// The daemon is started with soft limit kDaemonSoft (capped at the test's hard limit,
// which stays: raising a hard limit back needs CAP_SYS_RESOURCE, which a container's root
// may lack); the test itself runs at its hard limit.
template <rlim_t kDaemonSoft>
class HostileFdLimit : public Hostile {
 protected:
  void SetUp() override {
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved_), 0);
    const struct rlimit daemon_limit { std::min(kDaemonSoft, saved_.rlim_max), saved_.rlim_max };
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &daemon_limit), 0) << std::strerror(errno);
    restore_ = true;
    Hostile::SetUp();
    const struct rlimit own { saved_.rlim_max, saved_.rlim_max };
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &own), 0) << std::strerror(errno);
  }
  void TearDown() override {
    Hostile::TearDown();
    if (restore_) ::setrlimit(RLIMIT_NOFILE, &saved_);
  }
  rlim_t hard_limit() const { return saved_.rlim_max; }

  struct OpenResult {
    std::vector<int> fds;
    int error = 0;  // errno of the first failed open, 0 when all opened
    double seconds = 0;
  };
  // Creates and opens `n` files under MNT/many, writing each one's number into it; stops
  // at the first failure.
  OpenResult open_many(int n) {
    OpenResult r;
    ::mkdir((mnt_ + "/many").c_str(), 0755);
    auto t0 = Clock::now();
    r.fds.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      const std::string p = mnt_ + "/many/f" + std::to_string(i);
      int fd = ::open(p.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
      if (fd < 0) {
        r.error = errno;
        break;
      }
      r.fds.push_back(fd);
      const std::string data = std::to_string(i);
      if (::pwrite(fd, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) {
        r.error = errno;
        break;
      }
    }
    r.seconds = seconds_since(t0);
    return r;
  }
  long daemon_fd_count() {
    long n = 0;
    if (DIR* d = ::opendir(("/proc/" + std::to_string(daemon_) + "/fd").c_str())) {
      while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
      ::closedir(d);
    }
    return n;
  }

  struct rlimit saved_ {};
  bool restore_ = false;
};

using HostileManyFds = HostileFdLimit<RLIM_INFINITY>;
using HostileLowSoftFdLimit = HostileFdLimit<1024>;

// 10,000 files need about 20,100 daemon fds (two per file, plus its own); a machine whose
// hard limit is lower gets as many files as fit, and the test says so.
TEST_F(HostileManyFds, TenThousandFilesOpenAtOnce) {
  const int kFiles = static_cast<int>(std::min<rlim_t>(10000, (hard_limit() - 100) / 2));
  if (kFiles < 10000) {
    std::printf("hard RLIMIT_NOFILE %llu: the daemon can hold %d files open, not 10,000\n",
                static_cast<unsigned long long>(hard_limit()), kFiles);
  }
  OpenResult r = open_many(kFiles);
  const long daemon_fds = daemon_fd_count();
  std::printf("%zu files open through the mount in %.1f s; the daemon holds %ld fds\n",
              r.fds.size(), r.seconds, daemon_fds);
  EXPECT_EQ(r.error, 0) << errno_name(r.error);
  ASSERT_EQ(static_cast<int>(r.fds.size()), kFiles);
  EXPECT_GE(daemon_fds, kFiles);
  int wrong = 0;
  for (size_t i = 0; i < r.fds.size(); ++i) {
    char buf[16] = {};
    ssize_t n = ::pread(r.fds[i], buf, sizeof buf - 1, 0);
    if (n < 0 || std::string(buf) != std::to_string(i)) ++wrong;
    if (i % 100 == 0 && ::fsync(r.fds[i]) != 0) ++wrong;
  }
  EXPECT_EQ(wrong, 0);
  int close_errors = 0;
  for (int fd : r.fds) close_errors += ::close(fd) != 0;
  EXPECT_EQ(close_errors, 0);
  EXPECT_EQ(read_file(backing_ + "/many/f" + std::to_string(kFiles - 1)),
            std::to_string(kFiles - 1));
  expect_daemon_inside();
}

// At its fd limit the daemon answers EMFILE, keeps serving, and recovers once files close.
TEST_F(HostileManyFds, AtTheDaemonsFdLimit_OpensFailWithEmfile_AndTheMountRecovers) {
  const struct rlimit low { 1024, 1024 };
  ASSERT_EQ(::prlimit(daemon_, RLIMIT_NOFILE, &low, nullptr), 0) << std::strerror(errno);
  OpenResult r = open_many(2000);
  std::printf("daemon limit 1024: %zu files opened, then %s\n", r.fds.size(),
              errno_name(r.error).c_str());
  EXPECT_EQ(r.error, EMFILE);
  EXPECT_GT(r.fds.size(), 400u);
  EXPECT_LT(r.fds.size(), 1024u);
  struct stat st;
  EXPECT_EQ(::stat((mnt_ + "/many").c_str(), &st), 0) << "metadata still served";
  for (int fd : r.fds) ::close(fd);
  int fd = ::open((mnt_ + "/many/f0").c_str(), O_RDONLY);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  if (fd >= 0) ::close(fd);
  EXPECT_EQ(::kill(daemon_, 0), 0);
}

// Started the way most shells and service managers start programs (soft limit 1024, a
// high hard limit), a daemon that kept 1024 fds would give about 500 open files to every
// user of the mount together; it raises its soft limit to the hard one.
TEST_F(HostileLowSoftFdLimit, DaemonRaisesItsSoftFdLimit_ThousandsOfFilesOpen) {
  const size_t files = std::min<rlim_t>(5000, (hard_limit() - 100) / 2);
  OpenResult r = open_many(static_cast<int>(files));
  EXPECT_EQ(r.error, 0) << "after " << r.fds.size() << " files: " << errno_name(r.error);
  EXPECT_EQ(r.fds.size(), files);
  for (int fd : r.fds) ::close(fd);
}

// The largest value the backing filesystem takes for one user xattr, found by trying on
// BACKING itself; the mount must take exactly that and refuse one byte more, as the plain
// directory does.
TEST_F(Hostile, XattrAtTheBackingMaximum_Parity) {
  write_file(backing_ + "/probe", "");
  const std::string probe = backing_ + "/probe";
  size_t lo = 0, hi = 65536;  // XATTR_SIZE_MAX
  while (lo < hi) {
    size_t mid = (lo + hi + 1) / 2;
    std::string v(mid, 'v');
    if (::setxattr(probe.c_str(), "user.big", v.data(), v.size(), 0) == 0) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
    ::removexattr(probe.c_str(), "user.big");
  }
  const size_t max = lo;
  ::unlink(probe.c_str());
  std::printf("largest user.big value on the backing fs: %zu bytes\n", max);
  ASSERT_GT(max, 0u);
  parity([max](Recorder& r) {
    write_file(r.p("x"), "x");
    const std::string p = r.p("x");
    std::string v(max, '\0');
    for (size_t i = 0; i < max; ++i) v[i] = static_cast<char>('a' + i % 26);
    r.rc("set max", ::setxattr(p.c_str(), "user.big", v.data(), v.size(), 0));
    r.rc("size", ::getxattr(p.c_str(), "user.big", nullptr, 0), true);
    std::string back(65536, '\0');
    ssize_t n = r.rc("get", ::getxattr(p.c_str(), "user.big", back.data(), back.size()), true);
    r.note("same", std::to_string(n == static_cast<ssize_t>(max) && back.compare(0, max, v) == 0));
    r.rc("get into max-1", ::getxattr(p.c_str(), "user.big", back.data(), max - 1));
    std::string over(max + 1, 'o');
    r.rc("set max+1", ::setxattr(p.c_str(), "user.big2", over.data(), over.size(), 0));
    std::string huge(65537, 'h');
    r.rc("set 64 KiB + 1", ::setxattr(p.c_str(), "user.huge", huge.data(), huge.size(), 0));
    r.rc("replace with max", ::setxattr(p.c_str(), "user.big", v.data(), v.size(), XATTR_REPLACE));
    r.rc("list", ::listxattr(p.c_str(), back.data(), back.size()), true);
  });
}

}  // namespace
}  // namespace fsysfs::test
