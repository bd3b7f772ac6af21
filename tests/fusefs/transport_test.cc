// The io_uring transport (fusefs/transport): requests arrive over the rings, replies of
// every kind (entries, data read into the payload buffer, errors, replies from engine
// threads) go back the same way, and what the application sees is what /dev/fuse gives.
// Skipped where the kernel does not offer FUSE over io_uring.

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"
#include "tests/fusefs/stats_json.h"

namespace fsysfs::test {
namespace {

class UringTransport : public MountFixture {
 protected:
  void SetUp() override {
    if (std::string why = uring_transport_missing(); !why.empty()) GTEST_SKIP() << why;
    MountFixture::SetUp();
  }
  std::string mount_options() const override {
    return "allow_other,default_permissions,transport=uring," + extra();
  }
  virtual std::string extra() const { return "durability=fsync"; }
  uint64_t ring_requests() { return json_number(read_stats_json(mnt_), {"ring_requests"}); }
};

TEST_F(UringTransport, RequestsArriveOverTheRingAndRepliesMatchAPlainDirectory) {
  const std::string s = read_stats_json(mnt_);
  EXPECT_EQ(json_word(s, "transport"), "io_uring") << s;
  const uint64_t before = ring_requests();
  expect_parity(plain_, mnt_, [](Recorder& r) {
    r.rc("mkdir", ::mkdir(r.p("d").c_str(), 0755));
    int fd = r.fd("create", ::open(r.p("d/f").c_str(), O_CREAT | O_RDWR, 0644));
    const std::string big(3 << 20, 'z');  // more than one request's payload
    r.rc("write big", ::pwrite(fd, big.data(), big.size(), 0), true);
    r.rc("fsync", ::fsync(fd));
    std::string back(big.size(), '\0');
    r.rc("read big", ::pread(fd, back.data(), back.size(), 0), true);
    r.note("read back equal", std::to_string(back == big));
    r.rc("read past end", ::pread(fd, back.data(), 10, 10 << 20), true);
    ::close(fd);
    r.rc("open missing", ::open(r.p("nope").c_str(), O_RDONLY));
    r.rc("rename", ::rename(r.p("d/f").c_str(), r.p("d/g").c_str()));
    r.rc("symlink", ::symlink("g", r.p("d/l").c_str()));
    r.stat("stat", "d/g");
    r.content("content", "d/l");
    r.rc("rmdir non-empty", ::rmdir(r.p("d").c_str()));
  });
  EXPECT_GT(ring_requests(), before + 10);
}

// A queue's owner runs the engine's ops on its own ring: writes as WRITE_FIXED from the
// request's payload buffer, syncs as io_uring syncs; none runs inline or on the engine's
// threads, and the bytes land.
TEST_F(UringTransport, WritesAndSyncsRunOnTheQueuesRing) {
  int fd = ::open((mnt_ + "/f").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  for (int i = 0; i < 3; ++i) {
    const std::string block(4096, static_cast<char>('a' + i));
    ASSERT_EQ(::pwrite(fd, block.data(), block.size(), i * 4096), 4096) << std::strerror(errno);
    ASSERT_EQ(::fdatasync(fd), 0) << std::strerror(errno);
  }
  EXPECT_EQ(::close(fd), 0);
  const std::string s = read_stats_json(mnt_);
  EXPECT_EQ(json_number(s, {"engine", "ops", "write", "count"}), 3u) << s;
  EXPECT_EQ(json_number(s, {"engine", "ops", "fdatasync", "count"}), 3u) << s;
  EXPECT_EQ(json_number(s, {"engine", "client_ring_ops"}), 6u) << s;
  EXPECT_EQ(json_number(s, {"engine", "fixed_buffer_writes"}), 3u) << s;
  EXPECT_EQ(json_number(s, {"engine", "inline_ops"}), 0u) << s;
  EXPECT_EQ(json_number(s, {"engine", "sqes"}), 0u) << "nothing went to the engine's own ring";
  EXPECT_EQ(json_number(s, {"engine", "raw_fd_ops"}), 0u) << "the file has a fixed slot";
  EXPECT_EQ(read_file(backing_ + "/f"),
            std::string(4096, 'a') + std::string(4096, 'b') + std::string(4096, 'c'));
}

// Reads are READ_FIXEDs into the request's payload buffer on the queue's ring, and what the
// application gets is the backing file's bytes (a file the kernel has no pages of).
TEST_F(UringTransport, ReadsRunOnTheQueuesRing) {
  std::string data;
  for (int i = 0; i < 300000; ++i) data += static_cast<char>('a' + i % 23);
  {
    std::ofstream out(backing_ + "/r", std::ios::binary);
    out << data;
  }
  EXPECT_EQ(read_file(mnt_ + "/r"), data);
  const std::string s = read_stats_json(mnt_);
  EXPECT_GE(json_number(s, {"engine", "ops", "read", "count"}), 1u) << s;
  EXPECT_EQ(json_number(s, {"engine", "ops", "read", "bytes"}), data.size()) << s;
  EXPECT_GE(json_number(s, {"engine", "client_ring_ops"}),
            json_number(s, {"engine", "ops", "read", "count"}))
      << s;
  EXPECT_EQ(json_number(s, {"engine", "inline_ops"}), 0u) << s;
}

// A queue's ring holds a registered slot for each backing file its ops used, which keeps
// that file open: a file closed and unlinked on the mount must still give its blocks back.
// BACKING is a private tmpfs, so its free blocks are this test's alone.
class UringTransportOwnBacking : public UringTransport {
 protected:
  void SetUp() override {
    UringTransport::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    unmount();
    ASSERT_EQ(::mount("tmpfs", backing_.c_str(), "tmpfs", 0, "size=256m,mode=0755"), 0)
        << std::strerror(errno);
    backing_mounted_ = true;
    mount();
  }
  void TearDown() override {
    unmount();
    // Also fails when the daemon left a backing file open behind it.
    if (backing_mounted_) {
      EXPECT_EQ(::umount2(backing_.c_str(), 0), 0) << std::strerror(errno);
    }
    UringTransport::TearDown();
  }
  bool backing_mounted_ = false;
};

TEST_F(UringTransportOwnBacking, AClosedFileLeavesTheRingsFileTable) {
  struct statfs before;
  ASSERT_EQ(::statfs(backing_.c_str(), &before), 0);
  const std::string path = mnt_ + "/big";
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const std::string chunk(1 << 20, 'b');
  constexpr int kMiB = 64;
  for (int i = 0; i < kMiB; ++i) {
    ASSERT_EQ(::pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(i) << 20),
              static_cast<ssize_t>(chunk.size()));
  }
  ASSERT_EQ(::fdatasync(fd), 0);
  ASSERT_EQ(::close(fd), 0);
  ASSERT_EQ(::unlink(path.c_str()), 0);
  // The slot goes back on the owner's next turn, which the file's release wakes; tmpfs
  // frees the pages with the last reference.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  struct statfs now {};
  do {
    ASSERT_EQ(::statfs(backing_.c_str(), &now), 0);
    if (now.f_bfree >= before.f_bfree) break;
    std::this_thread::yield();
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_GE(now.f_bfree, before.f_bfree) << "the unlinked file's blocks were not freed";
}

// Each queue's owner is pinned to its queue's CPU, at the class uring_priority names.
// Returns, per scheduling policy, how many daemon threads run pinned to one CPU, once the
// rings serve (a request has been answered: the mount is up, INIT done).
std::map<int, int> pinned_threads_by_policy(pid_t daemon, const std::string& mnt) {
  EXPECT_EQ(json_word(read_stats_json(mnt), "transport"), "io_uring");
  std::map<int, int> found;
  const std::string dir = "/proc/" + std::to_string(daemon) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(dir)) {
    const pid_t tid = std::stoi(task.path().filename());
    cpu_set_t cpus;
    if (::sched_getaffinity(tid, sizeof cpus, &cpus) != 0 || CPU_COUNT(&cpus) != 1) continue;
    ++found[::sched_getscheduler(tid)];
  }
  return found;
}

TEST_F(UringTransport, QueueOwnersArePinnedToTheirCpu_AtTheNormalClass) {
  const auto found = pinned_threads_by_policy(daemon_, mnt_);
  EXPECT_GE(found.count(SCHED_OTHER) ? found.at(SCHED_OTHER) : 0, 1);
  EXPECT_EQ(found.count(SCHED_IDLE), 0u);
}

class UringTransportIdle : public UringTransport {
  std::string extra() const override { return "uring_priority=idle"; }
};

TEST_F(UringTransportIdle, QueueOwnersRunAtSchedIdle) {
  const auto found = pinned_threads_by_policy(daemon_, mnt_);
  EXPECT_GE(found.count(SCHED_IDLE) ? found.at(SCHED_IDLE) : 0, 1);
  EXPECT_EQ(found.count(SCHED_OTHER), 0u);
  int fd = ::open((mnt_ + "/f").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::pwrite(fd, "x", 1, 0), 1);
  EXPECT_EQ(::fsync(fd), 0);
  EXPECT_EQ(::close(fd), 0);
  EXPECT_EQ(read_file(backing_ + "/f"), "x");
}

// Beyond UringTransport::kMaxRegisteredPayload of payload buffers (here 2 CPUs x 200 x
// 1 MiB) nothing is registered: writes are plain WRITEs on the ring and still land.
class UringTransportDeep : public UringTransport {
  std::string extra() const override { return "uring_depth=200"; }
};

TEST_F(UringTransportDeep, TooMuchPayloadMemoryIsNotRegistered) {
  if (std::thread::hardware_concurrency() * 200ull << 20 <= (256ull << 20)) {
    GTEST_SKIP() << "one CPU: 200 entries stay under the cap";
  }
  int fd = ::open((mnt_ + "/f").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::pwrite(fd, "deep", 4, 0), 4);
  ASSERT_EQ(::fdatasync(fd), 0);
  EXPECT_EQ(::close(fd), 0);
  const std::string s = read_stats_json(mnt_);
  EXPECT_EQ(json_number(s, {"engine", "client_ring_ops"}), 2u) << s;
  EXPECT_EQ(json_number(s, {"engine", "fixed_buffer_writes"}), 0u) << s;
  EXPECT_EQ(read_file(backing_ + "/f"), "deep");
}

class UringTransportStrict : public UringTransport {
  std::string extra() const override { return "durability=strict"; }
};

// Strict writes are write+fdatasync chains on the queues' rings, from four writers at once
// (so on both CPUs' queues, and several chains in flight on one ring).
TEST_F(UringTransportStrict, RepliesFromEngineThreadsFromManyWritersArrive) {
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([this, w] {
      const std::string path = mnt_ + "/w" + std::to_string(w);
      int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      ASSERT_GE(fd, 0) << std::strerror(errno);
      for (int i = 0; i < 200; ++i) {
        const std::string block(4096, static_cast<char>('a' + (i + w) % 26));
        ASSERT_EQ(::pwrite(fd, block.data(), block.size(), static_cast<off_t>(i) * 4096), 4096)
            << std::strerror(errno);
      }
      EXPECT_EQ(::close(fd), 0);
    });
  }
  for (auto& t : writers) t.join();
  for (int w = 0; w < 4; ++w) {
    const std::string got = read_file(backing_ + "/w" + std::to_string(w));
    ASSERT_EQ(got.size(), 200u * 4096);
    for (int i = 0; i < 200; ++i) {
      ASSERT_EQ(got[static_cast<size_t>(i) * 4096], static_cast<char>('a' + (i + w) % 26));
    }
  }
}

}  // namespace
}  // namespace fsysfs::test
