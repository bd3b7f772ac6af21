// File handles of the mount (name_to_handle_at / open_by_handle_at, as NFS export and the
// fstests exportfs group use them) after the kernel has forgotten the inode: each scenario
// encodes handles, makes the kernel drop its dentries and inodes (drop_caches, with nothing
// held open), and decodes them again, once in a plain directory and once on the mount, and
// the results must agree (fstests generic/426, 467, 756 and 777 check the same cases).
// The mount's own statistics show that the daemon reopened the inodes by handle, so a
// kernel that kept them cached cannot make a scenario pass by accident.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"
#include "tests/fusefs/stats_json.h"

#ifndef AT_HANDLE_CONNECTABLE
#define AT_HANDLE_CONNECTABLE 0x002
#endif

namespace fsysfs::test {
namespace {

// Closes on every path out of a test, so a failed assertion leaves the mount unbusy.
struct Fd {
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int fd;
};

struct Handle {
  Handle() { fh()->handle_bytes = MAX_HANDLE_SZ; }
  file_handle* fh() { return reinterpret_cast<file_handle*>(storage.data()); }
  std::vector<char> storage = std::vector<char>(sizeof(file_handle) + MAX_HANDLE_SZ);
};

// name_to_handle_at(path); a test failure if the filesystem has no handles.
Handle encode(const std::string& path, int flags = 0) {
  Handle h;
  int mount_id = 0;
  EXPECT_EQ(::name_to_handle_at(AT_FDCWD, path.c_str(), h.fh(), &mount_id, flags), 0)
      << path << ": " << std::strerror(errno);
  return h;
}

// Makes the kernel drop every unused dentry and inode (and clean page) under `root`: the
// mount's inodes are forgotten once nothing holds them. On the mount this also waits until
// the daemon has served those FORGETs: they travel on /dev/fuse while on the uring
// transport the next LOOKUP comes over the ring, so without the wait a decode may still
// find the inode live and the reopen the test wants to see never happens.
void drop_caches(const std::string& root) {
  ::sync();
  int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::write(fd, "3", 1), 1) << std::strerror(errno);
  ::close(fd);
  if (::access((root + "/.fsysfs").c_str(), F_OK) != 0) return;  // the plain directory
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  uint64_t live = 0;
  while ((live = json_number(read_stats_json(root), {"inodes", "live"})) != 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(live, 0u) << "the daemon still holds inodes 10 s after drop_caches";
}

// Opens `h` under the root of `r` and records the outcome: the errno, or that it opened
// the file now at `rel` (same inode) with its first bytes.
void decode(Recorder& r, const std::string& what, Handle& h, const std::string& rel,
            int flags = O_RDONLY) {
  int mount_fd = ::open(r.root().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(mount_fd, 0);
  int fd = ::open_by_handle_at(mount_fd, h.fh(), flags | O_CLOEXEC);
  ::close(mount_fd);
  if (fd < 0) {
    // fstests accept ENOENT as well as ESTALE for a file that is gone.
    r.note(what, errno == ENOENT ? "ESTALE" : errno_name(errno));
    return;
  }
  struct stat by_handle, by_name;
  ::fstat(fd, &by_handle);
  const bool same = ::lstat(r.p(rel).c_str(), &by_name) == 0 &&
                    by_handle.st_ino == by_name.st_ino && by_handle.st_dev == by_name.st_dev;
  r.note(what, same ? "opened " + rel : "opened another file");
  r.stat_fd(what, fd);
  if (S_ISREG(by_handle.st_mode)) {
    char buf[16] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf, 0);
    r.note(what + " data", n < 0 ? errno_name(errno) : std::string(buf, static_cast<size_t>(n)));
  }
  ::close(fd);
}

class FileHandles : public MountFixture {
 protected:
  void SetUp() override {
    MountFixture::SetUp();
    if (HasFatalFailure()) return;
    Handle h;
    int mount_id = 0;
    if (::name_to_handle_at(AT_FDCWD, plain_.c_str(), h.fh(), &mount_id, 0) != 0) {
      ASSERT_EQ(errno, EOPNOTSUPP) << std::strerror(errno);
      GTEST_SKIP() << "the backing filesystem has no file handles";
    }
  }
  uint64_t inode_stat(std::string_view key) {
    return json_number(read_stats_json(mnt_), {"inodes", key});
  }
  void parity(const Scenario& s) {
    const uint64_t reopened = inode_stat("reopened");
    expect_parity(plain_, mnt_, s);
    EXPECT_GT(inode_stat("reopened"), reopened) << "the kernel never forgot an inode";
  }
};

TEST_F(FileHandles, FileOpensAfterTheKernelForgotIt_Parity) {
  parity([](Recorder& r) {
    ::mkdir(r.p("d").c_str(), 0755);
    write_file(r.p("d/f"), "aaaa");
    Handle h = encode(r.p("d/f"));
    drop_caches(r.root());
    decode(r, "read", h, "d/f");
    // Opened for writing, the handle's file takes the bytes (generic/467 -a).
    int mount_fd = ::open(r.root().c_str(), O_RDONLY | O_DIRECTORY);
    int fd = r.fd("open_by_handle_at rw", ::open_by_handle_at(mount_fd, h.fh(), O_RDWR));
    r.rc("write", ::pwrite(fd, "bbbb", 4, 0), true);
    ::close(fd);
    ::close(mount_fd);
    r.content("written through the handle", "d/f");
  });
}

TEST_F(FileHandles, DirectoryOpensConnectedAfterTheKernelForgotIt_Parity) {
  parity([](Recorder& r) {
    ::mkdir(r.p("a").c_str(), 0755);
    ::mkdir(r.p("a/d").c_str(), 0755);
    write_file(r.p("a/d/f"), "f");
    Handle h = encode(r.p("a/d"));
    drop_caches(r.root());
    int mount_fd = ::open(r.root().c_str(), O_RDONLY | O_DIRECTORY);
    int fd =
        r.fd("open dir by handle", ::open_by_handle_at(mount_fd, h.fh(), O_RDONLY | O_DIRECTORY));
    ::close(mount_fd);
    r.rc("entry inside", ::faccessat(fd, "f", F_OK, 0));
    // The kernel reconnects a directory to the root (LOOKUP ".." upwards), so the fd has
    // its full path.
    char path[4096];
    ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), path, sizeof path);
    r.note("path", n == static_cast<ssize_t>(r.p("a/d").size()) &&
                           r.p("a/d").compare(0, std::string::npos, path, n) == 0
                       ? "root/a/d"
                       : std::string(path, n > 0 ? static_cast<size_t>(n) : 0));
    ::close(fd);
  });
}

TEST_F(FileHandles, UnlinkedIsStale_HardLinkedRenamedAndMovedOpen_Parity) {
  parity([](Recorder& r) {
    ::mkdir(r.p("d").c_str(), 0755);
    ::mkdir(r.p("d/gone").c_str(), 0755);
    for (const char* n : {"unlinked", "linked", "renamed", "moved"}) {
      write_file(r.p(std::string("d/") + n), n);
    }
    Handle unlinked = encode(r.p("d/unlinked"));
    Handle linked = encode(r.p("d/linked"));
    Handle renamed = encode(r.p("d/renamed"));
    Handle moved = encode(r.p("d/moved"));
    Handle dir = encode(r.p("d"));
    Handle gone = encode(r.p("d/gone"));
    r.rc("unlink", ::unlink(r.p("d/unlinked").c_str()));
    r.rc("link", ::link(r.p("d/linked").c_str(), r.p("d/linked2").c_str()));
    r.rc("unlink original", ::unlink(r.p("d/linked").c_str()));
    r.rc("rename", ::rename(r.p("d/renamed").c_str(), r.p("d/renamed2").c_str()));
    r.rc("mkdir new parent", ::mkdir(r.p("new").c_str(), 0755));
    r.rc("move", ::rename(r.p("d/moved").c_str(), r.p("new/moved").c_str()));
    r.rc("rmdir", ::rmdir(r.p("d/gone").c_str()));
    r.rc("rename parent", ::rename(r.p("d").c_str(), r.p("d2").c_str()));
    drop_caches(r.root());
    decode(r, "unlinked", unlinked, "-");
    decode(r, "hard linked, original unlinked", linked, "d2/linked2");
    decode(r, "renamed", renamed, "d2/renamed2");
    decode(r, "moved to a new parent", moved, "new/moved");
    decode(r, "renamed parent", dir, "d2", O_RDONLY | O_DIRECTORY);
    decode(r, "removed dir", gone, "-", O_RDONLY | O_DIRECTORY);
  });
}

TEST_F(FileHandles, ConnectableHandleOpensWithItsPath_Parity) {
  // AT_HANDLE_CONNECTABLE (Linux 6.13) adds the parent, so the kernel can give the opened
  // fd its path (generic/777).
  if (::name_to_handle_at(AT_FDCWD, plain_.c_str(), nullptr, nullptr, AT_HANDLE_CONNECTABLE) != 0 &&
      errno == EINVAL) {
    GTEST_SKIP() << "the kernel has no AT_HANDLE_CONNECTABLE";
  }
  parity([](Recorder& r) {
    ::mkdir(r.p("t").c_str(), 0755);
    ::mkdir(r.p("t/d").c_str(), 0755);
    write_file(r.p("t/d/f"), "cccc");
    Handle h = encode(r.p("t/d/f"), AT_HANDLE_CONNECTABLE);
    r.rc("rename grandparent", ::rename(r.p("t").c_str(), r.p("t2").c_str()));
    drop_caches(r.root());
    int mount_fd = ::open(r.root().c_str(), O_RDONLY | O_DIRECTORY);
    int fd = r.fd("open by connectable handle", ::open_by_handle_at(mount_fd, h.fh(), O_RDONLY));
    ::close(mount_fd);
    char path[4096];
    ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), path, sizeof path);
    const std::string want = r.p("t2/d/f");
    r.note("path", n > 0 && want == std::string(path, static_cast<size_t>(n)) ? "root/t2/d/f"
                                                                              : "not connected");
    ::close(fd);
  });
}

// A handle from before a remount names a node id of a daemon that is gone: the new daemon
// never opens another file with it (ESTALE). Handles taken on the new mount work.
TEST_F(FileHandles, HandleFromAnEarlierDaemonIsStale_NewHandlesOpen) {
  write_file(mnt_ + "/f", "old");
  Handle before = encode(mnt_ + "/f");
  unmount();
  mount();
  ASSERT_TRUE(mounted_);
  for (int i = 0; i < 50; ++i) write_file(mnt_ + "/n" + std::to_string(i), "n");
  Handle after = encode(mnt_ + "/f");
  drop_caches(mnt_);
  const uint64_t reopened = inode_stat("reopened");
  {
    Fd mount_fd(::open(mnt_.c_str(), O_RDONLY | O_DIRECTORY));
    ASSERT_GE(mount_fd.fd, 0);
    errno = 0;
    EXPECT_EQ(::open_by_handle_at(mount_fd.fd, before.fh(), O_RDONLY), -1);
    EXPECT_EQ(errno, ESTALE);
    Fd fd(::open_by_handle_at(mount_fd.fd, after.fh(), O_RDONLY));
    ASSERT_GE(fd.fd, 0) << std::strerror(errno);
    char buf[8] = {};
    EXPECT_EQ(::read(fd.fd, buf, sizeof buf), 3);
    EXPECT_STREQ(buf, "old");
  }
  EXPECT_GT(inode_stat("reopened"), reopened);
}

constexpr char kSmallCache[] = "allow_other,default_permissions,handle_cache=4";

class FileHandlesSmallCache : public FileHandles {
 protected:
  std::string mount_options() const override { return kSmallCache; }
};

// Only the newest `handle_cache` forgotten inodes stay reachable: older handles, forged
// ones and ones whose generation does not match are ESTALE, the daemon's table stays
// bounded, and nothing it freed is touched (ASan builds check the last part).
TEST_F(FileHandlesSmallCache, ForgottenBeyondTheBoundIsStale_ForgedHandlesAreStale) {
  constexpr int kFiles = 12;
  std::vector<Handle> handles;
  for (int i = 0; i < kFiles; ++i) {
    const std::string p = mnt_ + "/f" + std::to_string(i);
    write_file(p, "data" + std::to_string(i));
    handles.push_back(encode(p));
  }
  Handle control = encode(mnt_ + "/.fsysfs");
  drop_caches(mnt_);
  EXPECT_LE(inode_stat("remembered"), 4u);
  Fd mount_fd(::open(mnt_.c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(mount_fd.fd, 0);
  int opened = 0;
  int stale = 0;
  for (int i = 0; i < kFiles; ++i) {
    int fd = ::open_by_handle_at(mount_fd.fd, handles[i].fh(), O_RDONLY);
    if (fd < 0) {
      EXPECT_EQ(errno, ESTALE) << i;
      ++stale;
      continue;
    }
    ++opened;
    char buf[16] = {};
    EXPECT_GT(::read(fd, buf, sizeof buf), 0);
    EXPECT_EQ(std::string(buf), "data" + std::to_string(i));
    ::close(fd);
  }
  EXPECT_GE(opened, 1);
  EXPECT_LE(opened, 4);
  EXPECT_GE(stale, kFiles - 4);
  // A FUSE handle is {node id (2 x u32, high word first), generation}.
  auto* words = reinterpret_cast<uint32_t*>(handles[kFiles - 1].fh()->f_handle);
  ASSERT_GE(handles[kFiles - 1].fh()->handle_bytes, 12u);
  Handle forged = handles[kFiles - 1];
  auto* forged_words = reinterpret_cast<uint32_t*>(forged.fh()->f_handle);
  forged_words[2] = words[2] + 1;  // another generation
  errno = 0;
  EXPECT_EQ(Fd(::open_by_handle_at(mount_fd.fd, forged.fh(), O_RDONLY)).fd, -1);
  EXPECT_EQ(errno, ESTALE);
  for (uint32_t delta : {1u, 1000u, 0x10000u}) {
    forged = handles[kFiles - 1];
    forged_words = reinterpret_cast<uint32_t*>(forged.fh()->f_handle);
    forged_words[1] = words[1] + delta;  // a node id the daemon never gave out
    errno = 0;
    int fd = ::open_by_handle_at(mount_fd.fd, forged.fh(), O_RDONLY);
    if (fd >= 0) ::close(fd);
    EXPECT_EQ(fd, -1) << delta;
    EXPECT_EQ(errno, ESTALE) << delta;
  }
  // The control file is no table inode; its handle opens it again (O_PATH: it refuses
  // opens for I/O).
  int fd = ::open_by_handle_at(mount_fd.fd, control.fh(), O_PATH);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  struct stat st;
  EXPECT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_ino, 2u);
  ::close(fd);
  const std::string s = read_stats_json(mnt_);
  EXPECT_EQ(json_count(s, {"fuse", "errors", "EBADF"}), 0u) << s;
  EXPECT_LE(json_number(s, {"inodes", "remembered"}), 4u) << s;
  EXPECT_EQ(::kill(daemon_, 0), 0);
}

}  // namespace
}  // namespace fsysfs::test
