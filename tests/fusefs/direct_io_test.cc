// O_DIRECT next to the kernel's page cache, in every durability mode: pages an mmap of an
// O_DIRECT file dirtied reach BACKING (the kernel writes them back through the O_DIRECT
// handle, at sizes and offsets of its own), and buffered readers never see bytes an
// asynchronous direct write replaced (the kernel does not drop the pages filled while
// such a write was in flight). fstests generic/263 and generic/451 check the same.

#include <fcntl.h>
#include <liburing.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"

namespace fsysfs::test {
namespace {

class DirectIo : public MountFixture, public ::testing::WithParamInterface<const char*> {
 protected:
  std::string mount_options() const override {
    return std::string("allow_other,default_permissions,durability=") + GetParam();
  }
};

TEST_P(DirectIo, MmapWritesToAFileOpenedODirectReachBacking) {
  const std::string path = mnt_ + "/f";
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_DIRECT, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  // 5,000 bytes: the last page is written back as 904 bytes at 4096, which O_DIRECT refuses.
  constexpr size_t kSize = 5000;
  ASSERT_EQ(::ftruncate(fd, kSize), 0) << std::strerror(errno);
  void* map = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(map, MAP_FAILED) << std::strerror(errno);
  auto* p = static_cast<char*>(map);
  std::memset(p, 'a', 4096);
  std::memset(p + 4096, 'b', kSize - 4096);
  EXPECT_EQ(::msync(map, kSize, MS_SYNC), 0) << std::strerror(errno);
  ::munmap(map, kSize);
  EXPECT_EQ(::close(fd), 0) << std::strerror(errno);
  EXPECT_EQ(read_file(backing_ + "/f"), std::string(4096, 'a') + std::string(kSize - 4096, 'b'));
}

// generic/451's shape: readers open, read and close the file in a loop while the writer
// overwrites it with asynchronous (io_uring) O_DIRECT writes of alternating patterns; after
// each write, a buffered read through a handle kept open, and one through a new open, must
// show the new bytes.
TEST_P(DirectIo, BufferedReadsSeeEveryCompletedAsyncDirectWrite) {
  constexpr size_t kSize = 640 << 10;
  const std::string path = mnt_ + "/f";
  write_file(path, std::string(kSize, '0'));
  io_uring ring;
  ASSERT_EQ(io_uring_queue_init(4, &ring, 0), 0);
  // Joins the readers on every way out, an ASSERT's return included.
  struct Readers {
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    ~Readers() {
      stop.store(true);
      for (auto& t : threads) t.join();
    }
  } readers;
  for (int i = 0; i < 2; ++i) {
    readers.threads.emplace_back([&] {
      std::vector<char> buf(kSize);
      while (!readers.stop.load()) {
        int rfd = ::open(path.c_str(), O_RDONLY);
        if (rfd < 0) continue;
        (void)!::pread(rfd, buf.data(), kSize, 0);
        ::close(rfd);
      }
    });
  }
  void* mem = nullptr;
  ASSERT_EQ(::posix_memalign(&mem, 4096, kSize), 0);
  std::unique_ptr<void, decltype(&std::free)> data(mem, &std::free);
  int wfd = ::open(path.c_str(), O_RDWR | O_DIRECT);
  int kept = ::open(path.c_str(), O_RDONLY);
  std::vector<char> got(kSize);
  int stale = 0;
  for (int i = 0; i < 200 && stale == 0; ++i) {
    std::memset(mem, 'A' + i % 2, kSize);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_write(sqe, wfd, mem, kSize, 0);
    ASSERT_EQ(io_uring_submit(&ring), 1);
    io_uring_cqe* cqe = nullptr;
    ASSERT_EQ(io_uring_wait_cqe(&ring, &cqe), 0);
    ASSERT_EQ(cqe->res, static_cast<int>(kSize)) << std::strerror(-cqe->res);
    io_uring_cqe_seen(&ring, cqe);
    ASSERT_EQ(::pread(kept, got.data(), kSize, 0), static_cast<ssize_t>(kSize));
    if (std::memcmp(got.data(), mem, kSize) != 0) {
      ADD_FAILURE() << "stale bytes through a kept handle after write " << i;
      ++stale;
    }
    int fresh = ::open(path.c_str(), O_RDONLY);
    ASSERT_EQ(::pread(fresh, got.data(), kSize, 0), static_cast<ssize_t>(kSize));
    ::close(fresh);
    if (std::memcmp(got.data(), mem, kSize) != 0) {
      ADD_FAILURE() << "stale bytes through a new open after write " << i;
      ++stale;
    }
  }
  ::close(kept);
  ::close(wfd);
  io_uring_queue_exit(&ring);
}

INSTANTIATE_TEST_SUITE_P(Modes, DirectIo, ::testing::Values("none", "fsync", "close", "strict"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace fsysfs::test
