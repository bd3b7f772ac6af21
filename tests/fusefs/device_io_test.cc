// The /dev/fuse read hook against a real aborted connection. A bare FUSE mount, whose INIT
// this test answers with FUSE_ABORT_ERROR, makes every read after an abort through fusectl
// fail with ECONNABORTED: the errno that, in a libfuse mount, only the read that had just
// taken a request gets, in a window too short to aim at.

#include "fusefs/device_io.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fuse.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engine/unique_fd.h"

namespace fsysfs::fusefs {
namespace {

constexpr long kFusectlMagic = 0x65735543;
constexpr const char* kFusectl = "/sys/fs/fuse/connections";

// A FUSE mount with no daemon but this test: mounted on a fresh directory, INIT answered.
class BareConnection {
 public:
  // False when this kernel has no fusectl to abort a connection through (*why says so);
  // any other failure is the test's (mounting needs root).
  bool open(std::string* why) {
    struct statfs fs;
    if (::statfs(kFusectl, &fs) != 0 || fs.f_type != kFusectlMagic) {
      if (::mount("fusectl", kFusectl, "fusectl", 0, nullptr) != 0) {
        if (errno == ENODEV) {
          *why = "this kernel has no fusectl";
          return false;
        }
        ADD_FAILURE() << "mounting fusectl on " << kFusectl << ": " << std::strerror(errno);
        return false;
      }
    }
    char tmpl[] = "/tmp/fsysfs-devio.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return fail("mkdtemp");
    dir_ = tmpl;
    fd_ = UniqueFd(::open("/dev/fuse", O_RDWR | O_CLOEXEC));
    if (!fd_) return fail("/dev/fuse");
    const std::string opts =
        "fd=" + std::to_string(fd_.get()) + ",rootmode=40000,user_id=0,group_id=0";
    if (::mount("fsysfs-devio", dir_.c_str(), "fuse", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      return fail("mount");
    }
    mounted_ = true;
    // Not stat(): before INIT is answered it would wait for the connection forever.
    std::ifstream mountinfo("/proc/self/mountinfo");
    for (std::string line; std::getline(mountinfo, line);) {
      std::istringstream fields(line);
      std::string id, parent, dev, root, point;
      fields >> id >> parent >> dev >> root >> point;
      if (point == dir_) connection_ = dev.substr(dev.find(':') + 1);
    }
    if (connection_.empty()) return fail("no such mount in /proc/self/mountinfo");
    return true;
  }
  ~BareConnection() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
    fd_.reset();
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }

  int fd() const { return fd_.get(); }

  // Reads INIT and agrees to it with `flags`.
  void answer_init(uint32_t flags) {
    std::vector<char> buf(FUSE_MIN_READ_BUFFER + (1 << 20));
    const ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
    ASSERT_GE(n, static_cast<ssize_t>(sizeof(fuse_in_header) + sizeof(fuse_init_in)))
        << std::strerror(errno);
    fuse_in_header in;
    fuse_init_in init;
    std::memcpy(&in, buf.data(), sizeof in);
    std::memcpy(&init, buf.data() + sizeof in, sizeof init);
    ASSERT_EQ(in.opcode, FUSE_INIT);
    struct {
      fuse_out_header h;
      fuse_init_out o;
    } reply{};
    reply.h.len = sizeof reply;
    reply.h.unique = in.unique;
    reply.o.major = FUSE_KERNEL_VERSION;
    reply.o.minor = init.minor < FUSE_KERNEL_MINOR_VERSION ? init.minor : FUSE_KERNEL_MINOR_VERSION;
    reply.o.max_readahead = init.max_readahead;
    reply.o.flags = flags & init.flags;
    reply.o.max_background = 12;
    reply.o.congestion_threshold = 9;
    reply.o.max_write = 4096;
    ASSERT_EQ(::write(fd_.get(), &reply, sizeof reply), static_cast<ssize_t>(sizeof reply))
        << std::strerror(errno);
  }

  void abort() {
    const std::string file = std::string(kFusectl) + "/" + connection_ + "/abort";
    UniqueFd f(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(f) << file << ": " << std::strerror(errno);
    ASSERT_EQ(::write(f.get(), "1", 1), 1) << std::strerror(errno);
  }

 private:
  static bool fail(const char* what) {
    ADD_FAILURE() << what << ": " << std::strerror(errno);
    return false;
  }

  std::string dir_;
  UniqueFd fd_;
  bool mounted_ = false;
  std::string connection_;
};

TEST(DeviceRead, AnAbortedConnectionReadsAsTheEndThatLibfuseKnows) {
  BareConnection c;
  std::string why;
  if (!c.open(&why)) {
    if (!why.empty()) GTEST_SKIP() << why;
    return;
  }
  ASSERT_NO_FATAL_FAILURE(c.answer_init(FUSE_ABORT_ERROR));
  ASSERT_NO_FATAL_FAILURE(c.abort());
  std::vector<char> buf(FUSE_MIN_READ_BUFFER);
  // The kernel's answer, which libfuse 3.14 prints and fails on.
  errno = 0;
  EXPECT_EQ(::read(c.fd(), buf.data(), buf.size()), -1);
  EXPECT_EQ(errno, ECONNABORTED) << std::strerror(errno);
  // The hook's, which libfuse takes as the connection's end.
  errno = 0;
  EXPECT_EQ(device_read(c.fd(), buf.data(), buf.size(), nullptr), -1);
  EXPECT_EQ(errno, ENODEV) << std::strerror(errno);
}

}  // namespace
}  // namespace fsysfs::fusefs
