// Mount tests for the rest of the POSIX surface: permissions and identities, links,
// special files, attributes, xattrs, locks, fallocate, copy_file_range, lseek, large and
// sparse files, big directories, and the daemon's life cycle.

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
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

class MountOps : public MountFixture {
 protected:
  void parity(const Scenario& s) { expect_parity(plain_, mnt_, s); }
};

TEST_F(MountOps, UnprivilegedCallerCreatesAsItselfAndIsRefused_Parity) {
  parity([](Recorder& r) {
    ::mkdir(r.p("pub").c_str(), 0777);
    ::mkdir(r.p("priv").c_str(), 0755);
    ::mkdir(r.p("grp").c_str(), 0770);
    ::chown(r.p("grp").c_str(), 0, 12345);
    write_file(r.p("ro"), "root's");
    ::chmod(r.p("ro").c_str(), 0644);
    write_file(r.p("priv/x"), "x");
    run_as(r, kNobody, kNogroup, [](Recorder& c) {
      int fd = c.fd("create in pub", ::open(c.p("pub/mine").c_str(), O_CREAT | O_WRONLY, 0640));
      c.rc("write", ::write(fd, "mine", 4), true);
      ::close(fd);
      c.stat("mine owned by caller", "pub/mine");
      c.rc("mkdir", ::mkdir(c.p("pub/d").c_str(), 0755));
      c.stat("dir owned by caller", "pub/d");
      c.rc("symlink", ::symlink("mine", c.p("pub/l").c_str()));
      c.stat("symlink owned by caller", "pub/l");
      c.rc("mkfifo", ::mkfifo(c.p("pub/fifo").c_str(), 0600));
      c.stat("fifo owned by caller", "pub/fifo");
      c.rc("link", ::link(c.p("pub/mine").c_str(), c.p("pub/mine2").c_str()));
      c.open_probe("create in priv", ::open(c.p("priv/y").c_str(), O_CREAT | O_WRONLY, 0644));
      c.rc("mkdir in priv", ::mkdir(c.p("priv/d").c_str(), 0755));
      c.rc("unlink in priv", ::unlink(c.p("priv/x").c_str()));
      c.rc("rename out of priv", ::rename(c.p("priv/x").c_str(), c.p("pub/x").c_str()));
      c.open_probe("open ro for write", ::open(c.p("ro").c_str(), O_WRONLY));
      c.open_probe("open ro for read", ::open(c.p("ro").c_str(), O_RDONLY));
      c.rc("chmod not owner", ::chmod(c.p("ro").c_str(), 0666));
      c.rc("chown to root", ::chown(c.p("pub/mine").c_str(), 0, 0));
      c.rc("chmod own", ::chmod(c.p("pub/mine").c_str(), 0600));
      c.rc("truncate ro", ::truncate(c.p("ro").c_str(), 0));
      c.rc("utime now not owner", ::utimensat(AT_FDCWD, c.p("ro").c_str(), nullptr, 0));
      struct timespec ts[2] = {{1, 0}, {2, 0}};
      c.rc("utime set not owner", ::utimensat(AT_FDCWD, c.p("ro").c_str(), ts, 0));
      c.rc("access ro W", ::access(c.p("ro").c_str(), W_OK));
      c.rc("access ro R", ::access(c.p("ro").c_str(), R_OK));
      c.open_probe("create in grp without group",
                   ::open(c.p("grp/f").c_str(), O_CREAT | O_WRONLY, 0644));
    });
    run_as(r, kNobody, kNogroup,
           [](Recorder& c) {
             int fd = c.fd("create in grp via supplementary group",
                           ::open(c.p("grp/g").c_str(), O_CREAT | O_WRONLY, 0644));
             ::close(fd);
             c.stat("grp/g", "grp/g");
           },
           {12345});
  });
}

TEST_F(MountOps, WriteByNonOwnerClearsSuidSgid_Parity) {
  parity([](Recorder& r) {
    write_file(r.p("s"), "suid");
    ::chmod(r.p("s").c_str(), 06777);
    r.stat("before", "s");
    run_as(r, kNobody, kNogroup, [](Recorder& c) {
      int fd = c.fd("open", ::open(c.p("s").c_str(), O_WRONLY));
      c.rc("write", ::write(fd, "x", 1), true);
      ::close(fd);
    });
    r.stat("after write by non-owner", "s");
    ::chmod(r.p("s").c_str(), 06777);
    run_as(r, kNobody, kNogroup,
           [](Recorder& c) { c.rc("truncate", ::truncate(c.p("s").c_str(), 1)); });
    r.stat("after truncate by non-owner", "s");
  });
}

TEST_F(MountOps, HardLinksShareOneInode_Parity) {
  parity([](Recorder& r) {
    write_file(r.p("a"), "shared");
    r.rc("link", ::link(r.p("a").c_str(), r.p("b").c_str()));
    r.rc("link existing", ::link(r.p("a").c_str(), r.p("b").c_str()));
    r.rc("link missing", ::link(r.p("zz").c_str(), r.p("c").c_str()));
    ::mkdir(r.p("d").c_str(), 0755);
    r.rc("link dir", ::link(r.p("d").c_str(), r.p("d2").c_str()));
    struct stat sa, sb;
    ::stat(r.p("a").c_str(), &sa);
    ::stat(r.p("b").c_str(), &sb);
    r.note("same st_ino", std::to_string(sa.st_ino == sb.st_ino));
    r.stat("a", "a");
    int fd = ::open(r.p("b").c_str(), O_WRONLY | O_APPEND);
    r.rc("append via b", ::write(fd, "+b", 2), true);
    ::close(fd);
    r.content("a sees it", "a");
    r.rc("unlink a", ::unlink(r.p("a").c_str()));
    r.stat("b after", "b");
  });
}

TEST_F(MountOps, SymlinksReadlinkAndLoops_Parity) {
  parity([](Recorder& r) {
    write_file(r.p("target"), "T");
    r.rc("symlink", ::symlink("target", r.p("l").c_str()));
    r.rc("symlink existing", ::symlink("target", r.p("l").c_str()));
    char buf[256] = {};
    r.rc("readlink", ::readlink(r.p("l").c_str(), buf, sizeof buf), true);
    r.note("link text", buf);
    r.rc("readlink file", ::readlink(r.p("target").c_str(), buf, sizeof buf));
    r.stat("lstat", "l");
    r.content("through link", "l");
    ::symlink("loop2", r.p("loop1").c_str());
    ::symlink("loop1", r.p("loop2").c_str());
    r.open_probe("open loop", ::open(r.p("loop1").c_str(), O_RDONLY));
    r.open_probe("open nofollow", ::open(r.p("l").c_str(), O_RDONLY | O_NOFOLLOW));
    r.rc("symlink long target", ::symlink(std::string(5000, 't').c_str(), r.p("lt").c_str()));
    ::symlink("dangling", r.p("dl").c_str());
    int fd = r.fd("create through dangling", ::open(r.p("dl").c_str(), O_CREAT | O_WRONLY, 0644));
    if (fd >= 0) ::close(fd);
    r.stat("dangling target created", "dangling");
    r.rc("unlink link", ::unlink(r.p("l").c_str()));
    r.stat("target remains", "target");
  });
}

TEST_F(MountOps, MknodFifoSocketDevice_Parity) {
  parity([](Recorder& r) {
    r.rc("mkfifo", ::mkfifo(r.p("fifo").c_str(), 0644));
    r.stat("fifo", "fifo");
    r.rc("mknod sock", ::mknod(r.p("sock").c_str(), S_IFSOCK | 0600, 0));
    r.stat("sock", "sock");
    r.rc("mknod chr", ::mknod(r.p("null").c_str(), S_IFCHR | 0666, makedev(1, 3)));
    r.stat("chr", "null");
    r.rc("mknod blk", ::mknod(r.p("blk").c_str(), S_IFBLK | 0600, makedev(7, 0)));
    r.stat("blk", "blk");
    r.rc("mknod reg", ::mknod(r.p("reg").c_str(), S_IFREG | 0600, 0));
    r.stat("reg", "reg");
    r.rc("mknod existing", ::mknod(r.p("reg").c_str(), S_IFREG | 0600, 0));
    int fd = r.fd("open fifo nonblock", ::open(r.p("fifo").c_str(), O_RDONLY | O_NONBLOCK));
    if (fd >= 0) ::close(fd);
  });
}

TEST_F(MountOps, SetattrModeOwnerSizeTimes_Parity) {
  parity([](Recorder& r) {
    write_file(r.p("f"), "0123456789");
    r.rc("chmod", ::chmod(r.p("f").c_str(), 04755));
    r.stat("after chmod", "f");
    r.rc("chown", ::chown(r.p("f").c_str(), 1234, 5678));
    r.stat("after chown (suid dropped)", "f");
    r.rc("chown gid only", ::chown(r.p("f").c_str(), static_cast<uid_t>(-1), 42));
    r.stat("after chown gid", "f");
    r.rc("truncate grow", ::truncate(r.p("f").c_str(), 100));
    r.stat("grown", "f");
    r.rc("truncate shrink", ::truncate(r.p("f").c_str(), 4));
    r.content("shrunk", "f");
    r.rc("truncate negative", ::truncate(r.p("f").c_str(), -1));
    int fd = ::open(r.p("f").c_str(), O_RDWR);
    r.rc("ftruncate", ::ftruncate(fd, 2));
    r.rc("fchmod", ::fchmod(fd, 0600));
    r.stat_fd("fstat", fd);
    struct timespec ts[2] = {{1000000, 123456789}, {2000000, 987654321}};
    r.rc("utimensat", ::utimensat(AT_FDCWD, r.p("f").c_str(), ts, 0));
    struct stat st;
    ::stat(r.p("f").c_str(), &st);
    r.note("atime", std::to_string(st.st_atim.tv_sec) + "." + std::to_string(st.st_atim.tv_nsec));
    r.note("mtime", std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
    struct timespec omit_now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
    r.rc("futimens omit/now", ::futimens(fd, omit_now));
    ::stat(r.p("f").c_str(), &st);
    r.note("atime kept", std::to_string(st.st_atim.tv_sec));
    r.note("mtime now", std::to_string(st.st_mtim.tv_sec > 2000000));
    struct timespec set_omit[2] = {{5, 0}, {0, UTIME_OMIT}};
    r.rc("futimens set/omit", ::futimens(fd, set_omit));
    ::fstat(fd, &st);
    r.note("atime set", std::to_string(st.st_atim.tv_sec));
    ::close(fd);
    ::symlink("f", r.p("l").c_str());
    struct timespec lts[2] = {{7, 0}, {8, 0}};
    r.rc("lutimes", ::utimensat(AT_FDCWD, r.p("l").c_str(), lts, AT_SYMLINK_NOFOLLOW));
    ::lstat(r.p("l").c_str(), &st);
    r.note("symlink mtime", std::to_string(st.st_mtim.tv_sec));
    r.rc("lchown", ::lchown(r.p("l").c_str(), 77, 88));
    r.stat("symlink owner", "l");
    r.stat("target owner unchanged", "f");
  });
}

TEST_F(MountOps, Xattrs_Parity) {
  parity([](Recorder& r) {
    write_file(r.p("f"), "x");
    const char* p = nullptr;
    std::string path = r.p("f");
    p = path.c_str();
    r.rc("set", ::setxattr(p, "user.a", "one", 3, 0));
    r.rc("set create existing", ::setxattr(p, "user.a", "1", 1, XATTR_CREATE));
    r.rc("set replace missing", ::setxattr(p, "user.b", "1", 1, XATTR_REPLACE));
    r.rc("set b", ::setxattr(p, "user.b", "", 0, 0));
    r.rc("size", ::getxattr(p, "user.a", nullptr, 0), true);
    char buf[64] = {};
    r.rc("get", ::getxattr(p, "user.a", buf, sizeof buf), true);
    r.note("value", buf);
    r.rc("get small", ::getxattr(p, "user.a", buf, 1));
    r.rc("get missing", ::getxattr(p, "user.zz", buf, sizeof buf));
    r.rc("get empty", ::getxattr(p, "user.b", buf, sizeof buf), true);
    ssize_t n = r.rc("list size", ::listxattr(p, nullptr, 0), true);
    std::vector<char> list(static_cast<size_t>(n > 0 ? n : 1));
    n = ::listxattr(p, list.data(), list.size());
    std::set<std::string> names;
    for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(std::strlen(list.data() + i)) + 1) {
      names.insert(list.data() + i);
    }
    std::string joined;
    for (auto& s : names) joined += s + " ";
    r.note("names", joined);
    r.rc("list small", ::listxattr(p, list.data(), 1));
    r.rc("remove", ::removexattr(p, "user.a"));
    r.rc("remove again", ::removexattr(p, "user.a"));
    r.rc("bad namespace", ::setxattr(p, "bogus.a", "1", 1, 0));
    ::mkdir(r.p("d").c_str(), 0755);
    r.rc("set on dir", ::setxattr(r.p("d").c_str(), "user.d", "dd", 2, 0));
    r.rc("get on dir", ::getxattr(r.p("d").c_str(), "user.d", buf, sizeof buf), true);
    ::symlink("f", r.p("l").c_str());
    r.rc("user xattr on symlink", ::lsetxattr(r.p("l").c_str(), "user.l", "1", 1, 0));
    r.rc("get through symlink", ::getxattr(r.p("l").c_str(), "user.b", buf, sizeof buf), true);
    r.rc("lget on symlink", ::lgetxattr(r.p("l").c_str(), "user.b", buf, sizeof buf));
  });
}

TEST_F(MountOps, FlockAndPosixLocks_Parity) {
  parity([](Recorder& r) {
    write_file(r.p("lk"), "lock me");
    int a = ::open(r.p("lk").c_str(), O_RDWR);
    int b = ::open(r.p("lk").c_str(), O_RDWR);
    r.rc("flock a ex", ::flock(a, LOCK_EX | LOCK_NB));
    r.rc("flock b ex conflicts", ::flock(b, LOCK_EX | LOCK_NB));
    r.rc("flock b sh conflicts", ::flock(b, LOCK_SH | LOCK_NB));
    r.rc("flock a un", ::flock(a, LOCK_UN));
    r.rc("flock b ex", ::flock(b, LOCK_EX | LOCK_NB));
    ::flock(b, LOCK_UN);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 10;
    r.rc("posix lock", ::fcntl(a, F_SETLK, &fl));
    // Another process sees the conflict and who holds it.
    int pipefd[2];
    if (::pipe(pipefd) != 0) return;
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
      int c = ::open(r.p("lk").c_str(), O_RDWR);
      struct flock t {};
      t.l_type = F_WRLCK;
      t.l_whence = SEEK_SET;
      t.l_start = 5;
      t.l_len = 1;
      char res[3];
      res[0] = ::fcntl(c, F_SETLK, &t) == 0 ? 'y' : (errno == EAGAIN ? 'a' : 'e');
      t.l_type = F_WRLCK;
      ::fcntl(c, F_GETLK, &t);
      res[1] = t.l_type == F_WRLCK && t.l_pid == parent ? 'y' : 'n';
      t.l_type = F_RDLCK;
      t.l_start = 20;
      res[2] = ::fcntl(c, F_SETLK, &t) == 0 ? 'y' : 'n';
      (void)!::write(pipefd[1], res, 3);
      _exit(0);
    }
    char res[4] = {};
    ::close(pipefd[1]);
    (void)!::read(pipefd[0], res, 3);
    ::close(pipefd[0]);
    ::waitpid(pid, nullptr, 0);
    r.note("child: conflict/getlk/other range", res);
    // OFD locks belong to the open file description: two opens conflict in one process.
    struct flock ofd {};
    ofd.l_type = F_WRLCK;
    ofd.l_whence = SEEK_SET;
    ofd.l_start = 100;
    ofd.l_len = 10;
    r.rc("ofd lock a", ::fcntl(a, F_OFD_SETLK, &ofd));
    r.rc("ofd lock b conflicts", ::fcntl(b, F_OFD_SETLK, &ofd));
    ::close(a);
    r.rc("ofd lock b after close a", ::fcntl(b, F_OFD_SETLK, &ofd));
    ::close(b);
  });
}

TEST_F(MountOps, FallocatePunchHoleAndSeekDataHole_Parity) {
  parity([](Recorder& r) {
    int fd = ::open(r.p("f").c_str(), O_RDWR | O_CREAT, 0644);
    r.rc("fallocate", ::fallocate(fd, 0, 0, 1 << 20));
    r.stat_fd("allocated", fd);
    std::string data(1 << 20, 'd');
    r.rc("fill", ::pwrite(fd, data.data(), data.size(), 0), true);
    r.rc("fsync", ::fsync(fd));
    r.rc("punch", ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536, 65536));
    r.rc("punch without keep size", ::fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096));
    char buf[8] = {};
    r.rc("read hole", ::pread(fd, buf, 4, 70000), true);
    r.note("hole bytes zero", std::to_string(buf[0] == 0 && buf[3] == 0));
    r.rc("seek hole", ::lseek(fd, 0, SEEK_HOLE), true);
    r.rc("seek data", ::lseek(fd, 65536, SEEK_DATA), true);
    r.rc("seek data past end", ::lseek(fd, 2 << 20, SEEK_DATA));
    r.rc("zero range", ::fallocate(fd, FALLOC_FL_ZERO_RANGE, 4096, 4096));
    r.rc("keep size beyond", ::fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20));
    r.stat_fd("size kept", fd);
    struct stat st;
    ::fstat(fd, &st);
    r.note("blocks", std::to_string(st.st_blocks));
    ::close(fd);
    int sp = ::open(r.p("sparse").c_str(), O_RDWR | O_CREAT, 0644);
    ::pwrite(sp, "head", 4, 0);
    ::pwrite(sp, "tail", 4, 1 << 20);
    r.rc("sparse seek hole", ::lseek(sp, 0, SEEK_HOLE), true);
    r.rc("sparse seek data", ::lseek(sp, 4096, SEEK_DATA), true);
    r.rc("seek end", ::lseek(sp, 0, SEEK_END), true);
    ::close(sp);
  });
}

TEST_F(MountOps, OffsetsPast4GiB_Parity) {
  parity([](Recorder& r) {
    int fd = ::open(r.p("big").c_str(), O_RDWR | O_CREAT, 0644);
    const off_t off = (5LL << 30) + 123;
    r.rc("pwrite at 5 GiB", ::pwrite(fd, "far away", 8, off), true);
    r.rc("fsync", ::fsync(fd));
    char buf[16] = {};
    r.rc("pread", ::pread(fd, buf, sizeof buf, off), true);
    r.note("bytes", buf);
    r.rc("pread hole", ::pread(fd, buf, 4, 1LL << 32), true);
    r.stat_fd("size", fd);
    struct stat st;
    ::fstat(fd, &st);
    r.note("sparse", std::to_string(st.st_blocks < 1024));
    r.rc("seek data", ::lseek(fd, 0, SEEK_DATA), true);
    ::close(fd);
  });
}

TEST_F(MountOps, CopyFileRange_Parity) {
  parity([](Recorder& r) {
    std::string src;
    for (int i = 0; i < 100000; ++i) src += static_cast<char>('a' + i % 26);
    write_file(r.p("src"), src);
    int in = ::open(r.p("src").c_str(), O_RDONLY);
    int out = ::open(r.p("dst").c_str(), O_RDWR | O_CREAT, 0644);
    loff_t oin = 1000, oout = 10;
    r.rc("copy", ::copy_file_range(in, &oin, out, &oout, 50000, 0), true);
    r.note("offsets", std::to_string(oin) + " " + std::to_string(oout));
    oin = 99990;
    r.rc("copy short at eof", ::copy_file_range(in, &oin, out, &oout, 100, 0), true);
    r.rc("copy to read-only fd", ::copy_file_range(out, nullptr, in, nullptr, 10, 0));
    ::close(in);
    ::close(out);
    r.content("dst", "dst");
    std::string dst = read_file(r.p("dst"));
    r.note("copied bytes match",
           std::to_string(dst.size() == 50020 && dst.substr(10, 50000) == src.substr(1000, 50000)));
  });
}

TEST_F(MountOps, AppendFromTwoWriters_Parity) {
  parity([](Recorder& r) {
    int a = ::open(r.p("log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int b = ::open(r.p("log").c_str(), O_WRONLY | O_APPEND);
    for (int i = 0; i < 100; ++i) {
      (void)!::write(a, "aa\n", 3);
      (void)!::write(b, "b\n", 2);
    }
    ::close(a);
    ::close(b);
    r.stat("log", "log");
    r.content("log", "log");
  });
}

TEST_F(MountOps, StatfsAndAccessAndFsyncdir_Parity) {
  parity([](Recorder& r) {
    struct statvfs sv;
    r.rc("statvfs", ::statvfs(r.root().c_str(), &sv));
    r.note("bsize/blocks/namemax", std::to_string(sv.f_bsize) + " " + std::to_string(sv.f_blocks) +
                                       " " + std::to_string(sv.f_namemax));
    write_file(r.p("f"), "x");
    ::chmod(r.p("f").c_str(), 0644);
    r.rc("access F", ::access(r.p("f").c_str(), F_OK));
    r.rc("access X", ::access(r.p("f").c_str(), X_OK));
    r.rc("access missing", ::access(r.p("nope").c_str(), F_OK));
    ::mkdir(r.p("d").c_str(), 0755);
    int d = ::open(r.p("d").c_str(), O_RDONLY | O_DIRECTORY);
    r.rc("fsync dir", ::fsync(d));
    r.rc("fdatasync dir", ::fdatasync(d));
    r.rc("fsync dir again", ::fsync(d));
    ::close(d);
  });
}

TEST_F(MountOps, SeekdirTelldirResumeListing_Parity) {
  parity([](Recorder& r) {
    ::mkdir(r.p("d").c_str(), 0755);
    for (int i = 0; i < 2000; ++i)
      write_file(r.p("d/entry-with-a-long-name-" + std::to_string(i)), "");
    DIR* dir = ::opendir(r.p("d").c_str());
    for (int i = 0; i < 700; ++i) ::readdir(dir);
    long pos = ::telldir(dir);
    std::string first;
    for (int i = 0; i < 50; ++i) first += std::string(::readdir(dir)->d_name) + ",";
    ::seekdir(dir, pos);
    std::string again;
    for (int i = 0; i < 50; ++i) again += std::string(::readdir(dir)->d_name) + ",";
    r.note("resumed listing equal", std::to_string(first == again));
    ::rewinddir(dir);
    int count = 0;
    while (::readdir(dir) != nullptr) ++count;
    r.note("count after rewind", std::to_string(count));
    ::closedir(dir);
  });
}

TEST_F(MountOps, HundredThousandEntriesListedCompletely) {
  const int kEntries = 100000;
  ASSERT_EQ(::mkdir((backing_ + "/huge").c_str(), 0755), 0);
  int dfd = ::open((backing_ + "/huge").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dfd, 0);
  for (int i = 0; i < kEntries; ++i) {
    int fd = ::openat(dfd, ("f" + std::to_string(i)).c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    ::close(fd);
  }
  ::close(dfd);
  auto t0 = std::chrono::steady_clock::now();
  DIR* dir = ::opendir((mnt_ + "/huge").c_str());
  ASSERT_NE(dir, nullptr);
  std::set<std::string> names;
  int total = 0;
  while (struct dirent* e = ::readdir(dir)) {
    names.insert(e->d_name);
    ++total;
  }
  ::closedir(dir);
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(total, kEntries + 2);
  EXPECT_EQ(names.size(), static_cast<size_t>(kEntries + 2));
  EXPECT_TRUE(names.count("f0") && names.count("f99999") && names.count(".") && names.count(".."));
  // Every entry was looked up by readdirplus; stat of each must agree.
  struct stat st;
  EXPECT_EQ(::stat((mnt_ + "/huge/f54321").c_str(), &st), 0);
  EXPECT_LT(secs, 20.0);
}

TEST_F(MountOps, SigtermUnmountsCleanlyAndExitsZero) {
  write_file(mnt_ + "/f", "before signal");
  ASSERT_GT(daemon_, 0);
  ASSERT_EQ(::kill(daemon_, SIGTERM), 0);
  int status = 0;
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (::waitpid(daemon_, &status, WNOHANG) != daemon_) {
    ASSERT_LT(std::chrono::steady_clock::now(), end) << "daemon ignored SIGTERM";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  daemon_ = -1;
  mounted_ = false;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_FALSE(is_mounted(mnt_, "fuse.fsysfs"));
  EXPECT_EQ(read_file(backing_ + "/f"), "before signal");
}

// The same core scenarios with the kernel's writeback cache on.
class MountWriteback : public MountOps {
 protected:
  std::string mount_options() const override {
    return "allow_other,default_permissions,writeback_cache";
  }
};

TEST_F(MountWriteback, WriteOnlyOpenPartialOverwriteAndAppend_Parity) {
  parity([](Recorder& r) {
    int fd = r.fd("create wronly", ::open(r.p("w").c_str(), O_WRONLY | O_CREAT, 0600));
    std::string data(10000, 'q');
    r.rc("write", ::write(fd, data.data(), data.size()), true);
    r.rc("overwrite middle", ::pwrite(fd, "MID", 3, 5001), true);
    r.rc("fsync", ::fsync(fd));
    ::close(fd);
    fd = ::open(r.p("w").c_str(), O_WRONLY | O_APPEND);
    r.rc("append", ::write(fd, "END", 3), true);
    r.rc("pwrite on append fd", ::pwrite(fd, "X", 1, 0), true);
    ::close(fd);
    r.stat("w", "w");
    std::string got = read_file(r.p("w"));
    r.note("size", std::to_string(got.size()));
    r.note("middle", got.substr(5000, 5));
    r.note("tail", got.substr(got.size() - 4));
    r.note("head", got.substr(0, 2));
  });
}

TEST_F(MountWriteback, DataReachesBackingAfterFsync) {
  int fd = ::open((mnt_ + "/wb").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  std::string data(1 << 20, 'z');
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ASSERT_EQ(::fsync(fd), 0);
  EXPECT_EQ(read_file(backing_ + "/wb"), data);
  ::close(fd);
}

}  // namespace
}  // namespace fsysfs::test
