// Space of removed files on a full backing filesystem: an operation that needs space right
// after `rm` of a file succeeds, although the daemon lets the removed file go only when the
// kernel's asynchronous FORGET and RELEASE reach it (fusefs/space_return.h); space that is
// truly not free (the file is still open elsewhere) still fails with ENOSPC, promptly.
//
// BACKING is a private tmpfs of its own, so its free blocks and inodes are this test's
// alone: tmpfs frees a file's pages and its inode with the last reference to it, at once.
// The suite runs on the transport $FSYSFS_TEST_TRANSPORT names (mount_fixture.h).

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

#include "engine/unique_fd.h"
#include "tests/fusefs/mount_fixture.h"

namespace fsysfs::test {
namespace {

using Clock = std::chrono::steady_clock;
using fsysfs::UniqueFd;

constexpr uint64_t kMiB = 1 << 20;
constexpr int kRounds = 20;

class RemovedSpace : public MountFixture {
 protected:
  // The backing tmpfs's mount options.
  virtual const char* tmpfs_options() const { return "size=16m,mode=0755"; }

  void SetUp() override {
    MountFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    unmount();
    ASSERT_EQ(::mount("tmpfs", backing_.c_str(), "tmpfs", 0, tmpfs_options()), 0)
        << std::strerror(errno);
    backing_mounted_ = true;
    mount();
    total_ = free_bytes();
  }

  void TearDown() override {
    unmount();
    // Also fails when the daemon left a backing file open behind it.
    if (backing_mounted_) {
      EXPECT_EQ(::umount2(backing_.c_str(), 0), 0) << std::strerror(errno);
    }
    MountFixture::TearDown();
  }

  // Free bytes and inodes of the backing fs, read on BACKING itself (no request to the mount).
  uint64_t free_bytes() const {
    struct statvfs sv;
    EXPECT_EQ(::statvfs(backing_.c_str(), &sv), 0) << std::strerror(errno);
    return static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
  }
  uint64_t free_inodes() const {
    struct statvfs sv;
    EXPECT_EQ(::statvfs(backing_.c_str(), &sv), 0) << std::strerror(errno);
    return sv.f_favail;
  }

  // Each round starts from an empty backing fs: the space of the previous round's files is
  // back (the daemon has had their FORGET and RELEASE).
  void wait_until_empty() const {
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (free_bytes() < total_) {
      ASSERT_LT(Clock::now(), deadline) << "the space of removed files never came back";
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  // Writes a new file `path` through the mount in 1 MiB writes until the backing fs is full,
  // and closes it. Returns the bytes written.
  uint64_t fill(const std::string& path) const {
    UniqueFd fd(::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644));
    EXPECT_TRUE(fd) << path << ": " << std::strerror(errno);
    if (!fd) return 0;
    const std::string chunk(kMiB, 'f');
    uint64_t done = 0;
    for (;;) {
      ssize_t n = ::pwrite(fd.get(), chunk.data(), chunk.size(), static_cast<off_t>(done));
      if (n <= 0) {
        EXPECT_EQ(errno, ENOSPC) << "after " << done << " bytes";
        break;
      }
      done += static_cast<uint64_t>(n);
    }
    EXPECT_EQ(::close(fd.release()), 0) << std::strerror(errno);
    EXPECT_LT(free_bytes(), kMiB) << "the backing fs is not full";
    return done;
  }

  // Makes a new file `path` of `len` bytes through the mount, with writes or with one
  // fallocate; the errno of the first call that fails, or 0.
  static int make_file(const std::string& path, uint64_t len, bool fallocate) {
    UniqueFd fd(::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) return errno;
    if (fallocate) {
      return ::fallocate(fd.get(), 0, 0, static_cast<off_t>(len)) == 0 ? 0 : errno;
    }
    const std::string chunk(kMiB, 'n');
    for (uint64_t done = 0; done < len;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(kMiB, len - done));
      ssize_t n = ::pwrite(fd.get(), chunk.data(), want, static_cast<off_t>(done));
      if (n < 0) return errno;
      if (n == 0) return EIO;
      done += static_cast<uint64_t>(n);
    }
    return ::close(fd.release()) == 0 ? 0 : errno;
  }

  // The case, `rounds` times: a full backing fs, its one big file closed and
  // removed by `remove` (through the mount), and at once a new file needing nearly all of
  // that space. Counts the rounds whose new file could not be made.
  template <class Remove>
  void remove_then_write(Remove remove, bool fallocate) {
    int failed = 0;
    int first_errno = 0;
    for (int round = 0; round < kRounds && !HasFatalFailure(); ++round) {
      wait_until_empty();
      const std::string big = mnt_ + "/big";
      const uint64_t filled = fill(big);
      ASSERT_GE(filled, total_ / 2);
      remove(big);
      const std::string next = mnt_ + "/next";
      if (int err = make_file(next, filled - kMiB, fallocate); err != 0) {
        ++failed;
        if (first_errno == 0) first_errno = err;
      }
      ::unlink(next.c_str());
    }
    EXPECT_EQ(failed, 0) << "a new file right after the removal failed in " << failed << " of "
                         << kRounds << " rounds (first: " << std::strerror(first_errno) << ")";
  }

  bool backing_mounted_ = false;
  uint64_t total_ = 0;
};

void unlink_name(const std::string& path) {
  ASSERT_EQ(::unlink(path.c_str()), 0) << std::strerror(errno);
}

TEST_F(RemovedSpace, Unlink_WriteRightAfterSucceeds) { remove_then_write(unlink_name, false); }

TEST_F(RemovedSpace, Unlink_FallocateRightAfterSucceeds) { remove_then_write(unlink_name, true); }

// rename(2) over the last name of a file removes it as unlink does.
TEST_F(RemovedSpace, RenameOver_WriteRightAfterSucceeds) {
  remove_then_write(
      [this](const std::string& big) {
        const std::string small = mnt_ + "/small";
        int fd = ::open(small.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        ASSERT_GE(fd, 0) << std::strerror(errno);
        ASSERT_EQ(::close(fd), 0);
        ASSERT_EQ(::rename(small.c_str(), big.c_str()), 0) << std::strerror(errno);
        ASSERT_EQ(::unlink(big.c_str()), 0) << std::strerror(errno);
      },
      false);
}

// A strict mount writes with linked write+fdatasync chains (on io_uring, on the queue's ring).
class RemovedSpaceStrict : public RemovedSpace {
 protected:
  std::string mount_options() const override {
    return "allow_other,default_permissions,durability=strict";
  }
};

TEST_F(RemovedSpaceStrict, Unlink_DurableWriteRightAfterSucceeds) {
  remove_then_write(unlink_name, false);
}

// A removed file that another process still has open keeps its space, as on any local
// filesystem: a write that needs it fails with ENOSPC (unchanged), after a bounded wait;
// the open file still reads; once that process closes it, the space comes back.
TEST_F(RemovedSpace, RemovedButOpenElsewhere_KeepsItsSpace_WriteGetsEnospc) {
  const std::string big = mnt_ + "/big";
  const uint64_t filled = fill(big);
  int ready[2];
  int go[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(go, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0) << std::strerror(errno);
  if (child == 0) {
    // Holds `big` open until told, then reads its last byte through the open fd.
    int fd = ::open(big.c_str(), O_RDONLY | O_CLOEXEC);
    char c = fd >= 0 ? 'r' : 'x';
    if (::write(ready[1], &c, 1) != 1 || fd < 0 || ::read(go[0], &c, 1) != 1) _exit(2);
    if (::pread(fd, &c, 1, static_cast<off_t>(filled - 1)) != 1 || c != 'f') _exit(3);
    _exit(::close(fd) == 0 ? 0 : 4);
  }
  ::close(ready[1]);
  ::close(go[0]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'r') << "the other process could not open the file";
  ASSERT_EQ(::unlink(big.c_str()), 0) << std::strerror(errno);

  const std::string next = mnt_ + "/next";
  const auto start = Clock::now();
  EXPECT_EQ(make_file(next, kMiB, false), ENOSPC);
  const auto waited = Clock::now() - start;
  EXPECT_LT(waited, std::chrono::seconds(5)) << "ENOSPC came late";
  EXPECT_EQ(make_file(next, kMiB, true), ENOSPC) << "fallocate";
  EXPECT_LT(free_bytes(), kMiB) << "the open file's space went";
  ::unlink(next.c_str());

  ASSERT_EQ(::write(go[1], "g", 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  ::close(ready[0]);
  ::close(go[1]);
  // The last close was the other process's: right after it, the space is there.
  EXPECT_EQ(make_file(next, filled - kMiB, false), 0);
  EXPECT_EQ(::unlink(next.c_str()), 0) << std::strerror(errno);
}

// Creating names needs inodes: a tmpfs with few of them, all in use; removing one name and
// at once making another (a file, a directory, a symlink) succeeds.
class RemovedInodes : public RemovedSpace {
 protected:
  const char* tmpfs_options() const override { return "size=16m,nr_inodes=64,mode=0755"; }
};

TEST_F(RemovedInodes, RemoveThenCreateRightAfterSucceeds) {
  int made = 0;
  for (;; ++made) {
    UniqueFd fd(::open((mnt_ + "/f" + std::to_string(made)).c_str(),
                       O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644));
    if (!fd) {
      ASSERT_EQ(errno, ENOSPC) << "after " << made << " files";
      break;
    }
  }
  ASSERT_GT(made, 3 * kRounds);
  ASSERT_EQ(free_inodes(), 0u);
  int failed = 0;
  int first_errno = 0;
  int first_failed = -1;
  for (int round = 0; round < 3 * kRounds; ++round) {
    const std::string old_name = mnt_ + "/f" + std::to_string(round);
    const std::string new_name = mnt_ + "/g" + std::to_string(round);
    ASSERT_EQ(::unlink(old_name.c_str()), 0) << std::strerror(errno);
    int rc = 0;
    switch (round % 3) {
      case 0: {
        UniqueFd fd(::open(new_name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644));
        rc = fd ? 0 : -1;
        break;
      }
      case 1:
        rc = ::mkdir(new_name.c_str(), 0755);
        break;
      default:
        rc = ::symlink("target", new_name.c_str());
        break;
    }
    if (rc != 0) {
      if (failed++ == 0) {
        first_errno = errno;
        first_failed = round;
      }
    }
  }
  EXPECT_EQ(failed, 0) << "a new name right after a removal failed in " << failed << " of "
                       << 3 * kRounds << " rounds (first: round " << first_failed << ", "
                       << std::strerror(first_errno) << ")";
}

}  // namespace
}  // namespace fsysfs::test
