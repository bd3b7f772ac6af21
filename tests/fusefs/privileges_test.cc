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
#include <cstring>
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

}  // namespace
}  // namespace fsysfs::test
