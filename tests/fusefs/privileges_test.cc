// Who clears suid/sgid, and what that costs per write. When the kernel offers
// FUSE_HANDLE_KILLPRIV_V2 the daemon takes the job (fusefs/device_io.h): the kernel stops
// asking for security.capability before each write, and the daemon clears the bits on a
// write or truncate by a caller without CAP_FSETID, whatever the kernel has cached.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"
#include "tests/fusefs/stats_json.h"

namespace fsysfs::test {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

using Privileges = MountFixture;

mode_t backing_mode(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st.st_mode & 07777;
}

// Opens `rel` under the mount as nobody, appends one byte and closes it; the records say
// whether each step worked.
void append_as_nobody(Recorder& r) {
  run_as(r, kNobody, kNogroup, [](Recorder& c) {
    int fd = c.fd("open", ::open(c.p("f").c_str(), O_WRONLY | O_APPEND));
    c.rc("write", ::write(fd, "x", 1), true);
    ::close(fd);
  });
}

TEST_F(Privileges, WritesDoNotAskForSecurityCapability) {
  const std::string before = read_stats_json(mnt_);
  EXPECT_EQ(json_word(before, "suid_cleared_by"), "daemon");
  int fd = ::open((mnt_ + "/f").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const std::string block(4096, 'w');
  constexpr int kWrites = 200;
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_EQ(::write(fd, block.data(), block.size()), 4096) << std::strerror(errno);
  }
  ::close(fd);
  const std::string after = read_stats_json(mnt_);
  EXPECT_EQ(json_number(after, {"fuse", "ops", "write"}), kWrites);
  // One GETXATTR is the stats read itself; the kernel asks once per inode at most (before it
  // marks the inode as having nothing to clear), not once per write.
  EXPECT_LE(json_count(after, {"fuse", "ops", "getxattr"}) -
                json_count(before, {"fuse", "ops", "getxattr"}),
            2u);
}

// Runs `change` as nobody on f after the suid/sgid bits were set on BACKING behind the
// kernel's back: it had cached f's mode (0666) and, after nobody's first write, marked the
// inode as having nothing to clear. Returns f's mode on BACKING afterwards; the change
// must still clear the bits, as it would on the backing fs.
class BitsBehindTheKernelsBack : public MountFixture {
 protected:
  mode_t mode_after(const Scenario& change) {
    const std::string back = backing_ + "/f";
    write_file(back, "data");
    EXPECT_EQ(::chmod(back.c_str(), 0666), 0);
    Recorder r(mnt_);
    append_as_nobody(r);
    EXPECT_EQ(::chmod(back.c_str(), 06777), 0);
    run_as(r, kNobody, kNogroup, change);
    lines = r.lines;
    contents = read_file(back);
    return backing_mode(back);
  }
  std::vector<std::string> lines;
  std::string contents;
};

TEST_F(BitsBehindTheKernelsBack, NonOwnersWriteClearsThem) {
  EXPECT_EQ(mode_after([](Recorder& c) {
              int fd = c.fd("open", ::open(c.p("f").c_str(), O_WRONLY | O_APPEND));
              c.rc("write", ::write(fd, "y", 1), true);
              ::close(fd);
            }),
            0777u);
  const std::vector<std::string> ok{"[uid 65534] open -> ok", "[uid 65534] write -> 1",
                                    "[uid 65534] open -> ok", "[uid 65534] write -> 1"};
  EXPECT_EQ(lines, ok);
  EXPECT_EQ(contents, "dataxy");
}

TEST_F(BitsBehindTheKernelsBack, NonOwnersTruncateClearsThem) {
  EXPECT_EQ(mode_after([](Recorder& c) { c.rc("truncate", ::truncate(c.p("f").c_str(), 2)); }),
            0777u);
  const std::vector<std::string> ok{"[uid 65534] open -> ok", "[uid 65534] write -> 1",
                                    "[uid 65534] truncate -> ok"};
  EXPECT_EQ(lines, ok);
  EXPECT_EQ(contents, "da");
}

// A file capability (security.capability) goes on any write, root's included, as on the
// backing fs: the kernel no longer asks for it, the backing fs drops it on our write.
TEST_F(Privileges, WriteDropsFileCapabilities_Parity) {
  expect_parity(plain_, mnt_, [](Recorder& r) {
    write_file(r.p("f"), "data");
    // VFS_CAP_REVISION_2 with CAP_NET_RAW (13) permitted.
    const uint32_t cap[5] = {0x02000000, 1u << 13, 0, 0, 0};
    r.rc("set capability", ::setxattr(r.p("f").c_str(), "security.capability", cap, sizeof cap, 0));
    r.rc("capability before", ::getxattr(r.p("f").c_str(), "security.capability", nullptr, 0),
         true);
    int fd = r.fd("open", ::open(r.p("f").c_str(), O_WRONLY | O_APPEND));
    r.rc("write", ::write(fd, "x", 1), true);
    ::close(fd);
    r.rc("capability after", ::getxattr(r.p("f").c_str(), "security.capability", nullptr, 0), true);
  });
}

// A write by root (CAP_FSETID) keeps the bits, as on the backing fs.
TEST_F(Privileges, RootsWriteKeepsTheBits) {
  const std::string back = backing_ + "/f";
  write_file(back, "data");
  ASSERT_EQ(::chmod(back.c_str(), 06777), 0);
  int fd = ::open((mnt_ + "/f").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::write(fd, "r", 1), 1);
  ::close(fd);
  EXPECT_EQ(backing_mode(back), 06777u);
}

// What a data change leaves of suid/sgid, in parity with the backing fs (fstests generic/683,
// 684, 685): a caller without CAP_FSETID loses S_ISUID, and S_ISGID too when the file is
// group-executable or the caller is not in its group; root keeps both. The mode is read as
// `stat -c %a` reads it, with statx(STATX_MODE) alone: a full stat would refresh the
// kernel's cached attributes and hide a stale mode. The parameter is the mount options.
class SuidSgidParity : public MountFixture, public ::testing::WithParamInterface<const char*> {
 protected:
  std::string mount_options() const override { return GetParam(); }

  using Change = std::function<void(Recorder&, const std::string& rel)>;

  static void mode(Recorder& r, const std::string& what, const std::string& rel) {
    struct statx stx;
    if (::statx(AT_FDCWD, r.p(rel).c_str(), 0, STATX_MODE, &stx) != 0) {
      r.note(what, errno_name(errno));
      return;
    }
    char buf[16];
    std::snprintf(buf, sizeof buf, "%o", stx.stx_mode & 07777);
    r.note(what, buf);
  }

  void check(const Change& change) {
    expect_parity(plain_, mnt_, [&change](Recorder& r) {
      write_file(r.p("src"), std::string(8192, 's'));
      auto fresh = [&r](mode_t m, gid_t group) {
        write_file(r.p("f"), std::string(192 << 10, 'X'));
        ::chown(r.p("f").c_str(), 0, group);
        ::chmod(r.p("f").c_str(), m);
        char buf[48];
        std::snprintf(buf, sizeof buf, "%o%s", m, group == kNogroup ? " in caller's group" : "");
        mode(r, std::string(buf) + " before", "f");
        return std::string(buf);
      };
      for (gid_t group : {gid_t{0}, kNogroup}) {
        for (mode_t m : {06666, 06676, 06766, 06777, 02666, 02676}) {
          const std::string what = fresh(m, group);
          run_as(r, kNobody, kNogroup, [&change](Recorder& c) { change(c, "f"); });
          mode(r, what + " after nobody's change", "f");
        }
      }
      for (mode_t m : {06666, 06777}) {
        const std::string what = fresh(m, 0);
        change(r, "f");
        mode(r, what + " after root's change", "f");
      }
    });
  }
};

TEST_P(SuidSgidParity, Write) {
  check([](Recorder& c, const std::string& rel) {
    int fd = c.fd("open", ::open(c.p(rel).c_str(), O_WRONLY));
    c.rc("write", ::pwrite(fd, "w", 1, 4096), true);
    ::close(fd);
  });
}

TEST_P(SuidSgidParity, Truncate) {
  check([](Recorder& c, const std::string& rel) {
    c.rc("truncate", ::truncate(c.p(rel).c_str(), 100000));
    int fd = c.fd("open", ::open(c.p(rel).c_str(), O_WRONLY));
    c.rc("ftruncate", ::ftruncate(fd, 90000));
    ::close(fd);
  });
}

TEST_P(SuidSgidParity, OpenTruncate) {
  check([](Recorder& c, const std::string& rel) {
    c.open_probe("open O_TRUNC", ::open(c.p(rel).c_str(), O_WRONLY | O_TRUNC));
  });
}

TEST_P(SuidSgidParity, Fallocate) {
  check([](Recorder& c, const std::string& rel) {
    int fd = c.fd("open", ::open(c.p(rel).c_str(), O_RDWR));
    c.rc("fallocate", ::fallocate(fd, 0, 64 << 10, 64 << 10));
    ::close(fd);
  });
}

TEST_P(SuidSgidParity, FallocateKeepSizeBeyondEof) {
  check([](Recorder& c, const std::string& rel) {
    int fd = c.fd("open", ::open(c.p(rel).c_str(), O_RDWR));
    c.rc("fallocate", ::fallocate(fd, FALLOC_FL_KEEP_SIZE, 256 << 10, 64 << 10));
    ::close(fd);
  });
}

TEST_P(SuidSgidParity, PunchHole) {
  check([](Recorder& c, const std::string& rel) {
    int fd = c.fd("open", ::open(c.p(rel).c_str(), O_RDWR));
    c.rc("punch", ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 64 << 10, 64 << 10));
    ::close(fd);
  });
}

TEST_P(SuidSgidParity, ZeroRange) {
  check([](Recorder& c, const std::string& rel) {
    int fd = c.fd("open", ::open(c.p(rel).c_str(), O_RDWR));
    c.rc("zero", ::fallocate(fd, FALLOC_FL_ZERO_RANGE, 64 << 10, 64 << 10));
    ::close(fd);
  });
}

TEST_P(SuidSgidParity, CopyFileRange) {
  check([](Recorder& c, const std::string& rel) {
    int in = c.fd("open source", ::open(c.p("src").c_str(), O_RDONLY));
    int out = c.fd("open", ::open(c.p(rel).c_str(), O_WRONLY));
    loff_t off_in = 0, off_out = 4096;
    c.rc("copy", ::copy_file_range(in, &off_in, out, &off_out, 4096, 0), true);
    ::close(in);
    ::close(out);
  });
}

INSTANTIATE_TEST_SUITE_P(Mounts, SuidSgidParity,
                         ::testing::Values("allow_other,default_permissions",
                                           "allow_other,default_permissions,writeback_cache"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.index == 0 ? "WriteThrough" : "Writeback");
                         });

}  // namespace
}  // namespace fsysfs::test
