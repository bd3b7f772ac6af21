// Data integrity under concurrency: many threads write distinct and overlapping regions of
// a few shared files and churn through many small files (open, write, sometimes fsync,
// close, so fd numbers are reused on both sides of FUSE). Every byte has a value derived
// from (file, offset) alone, so overlapping writers agree and a write that lands in the
// wrong file or at the wrong offset shows up. After unmounting, every file on the BACKING
// directory is checked. A SIGTERM under write load must lose no acknowledged write.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"

namespace fsysfs::test {
namespace {

constexpr int kThreads = 8;
constexpr int kSharedFiles = 3;
constexpr size_t kSharedSize = 4 << 20;
constexpr int kSmallFilesPerThread = 40;
constexpr int kRounds = 3;

// Small files have a length derived from their id, so a truncating rewrite is checkable.
size_t small_size(uint64_t id) { return 1 + mix(id) % 9000; }
uint64_t small_id(int thread, int i) { return 1000 + static_cast<uint64_t>(thread) * 100 + i; }
std::string small_name(int thread, int i) {
  return "small_" + std::to_string(thread) + "_" + std::to_string(i);
}

// Offset of the first byte that is not pattern(file, ...), or -1.
long first_bad(const std::string& data, uint64_t file) {
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] != pattern_byte(file, i)) return static_cast<long>(i);
  }
  return -1;
}

bool pwrite_all(int fd, const std::string& d, off_t off) {
  size_t done = 0;
  while (done < d.size()) {
    ssize_t n = ::pwrite(fd, d.data() + done, d.size() - done, off + static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

class Integrity : public MountFixture {
 protected:
  void concurrent_writers_land_exact_bytes();
};

void Integrity::concurrent_writers_land_exact_bytes() {
  std::atomic<int> errors{0};
  std::vector<std::string> first_error(kThreads);
  auto worker = [&](int t) {
    std::mt19937_64 rng(static_cast<uint64_t>(t) * 7919 + 1);
    auto fail = [&](const std::string& what) {
      const int e = errno;
      errors.fetch_add(1);
      if (first_error[t].empty()) first_error[t] = what + ": " + errno_name(e);
    };
    for (int round = 0; round < kRounds; ++round) {
      // Shared files: this thread's own stripe of 64 KiB chunks, each in a few unaligned
      // pieces, interleaved with overlapping writes of random ranges anywhere.
      for (int f = 0; f < kSharedFiles; ++f) {
        const std::string path = mnt_ + "/shared" + std::to_string(f);
        for (size_t chunk = static_cast<size_t>(t) * 65536; chunk < kSharedSize;
             chunk += kThreads * 65536) {
          int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
          if (fd < 0) {
            fail("open " + path);
            continue;
          }
          size_t pos = chunk;
          while (pos < chunk + 65536) {
            size_t len = std::min<size_t>(1 + rng() % 20000, chunk + 65536 - pos);
            if (!pwrite_all(fd, pattern(f, pos, len), static_cast<off_t>(pos))) {
              fail("pwrite " + path);
            }
            pos += len;
          }
          size_t off = rng() % kSharedSize;
          size_t len = std::min<size_t>(1 + rng() % 50000, kSharedSize - off);
          if (!pwrite_all(fd, pattern(f, off, len), static_cast<off_t>(off))) {
            fail("overlapping pwrite " + path);
          }
          if (rng() % 8 == 0 && ::fsync(fd) != 0) fail("fsync " + path);
          if (::close(fd) != 0) fail("close " + path);
        }
      }
      // Small files: rewritten whole (O_TRUNC) each round, in two writes.
      for (int i = 0; i < kSmallFilesPerThread; ++i) {
        const uint64_t id = small_id(t, i);
        const std::string path = mnt_ + "/" + small_name(t, i);
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
          fail("open " + path);
          continue;
        }
        const size_t n = small_size(id);
        const size_t half = n / 2;
        if (!pwrite_all(fd, pattern(id, 0, half), 0) ||
            !pwrite_all(fd, pattern(id, half, n - half), static_cast<off_t>(half))) {
          fail("write " + path);
        }
        if (rng() % 4 == 0 && ::fdatasync(fd) != 0) fail("fdatasync " + path);
        if (::close(fd) != 0) fail("close " + path);
      }
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_TRUE(first_error[t].empty()) << first_error[t];
  EXPECT_EQ(errors.load(), 0);

  // Through the mount first, then what actually reached the backing directory.
  for (const std::string& root : {mnt_, backing_}) {
    if (root == backing_) {
      unmount();
      ASSERT_FALSE(is_mounted(mnt_, "fuse.fsysfs"));
    }
    SCOPED_TRACE(root == backing_ ? "backing after unmount" : "through the mount");
    for (int f = 0; f < kSharedFiles; ++f) {
      std::string data = read_file(root + "/shared" + std::to_string(f));
      EXPECT_EQ(data.size(), kSharedSize) << "shared" << f;
      EXPECT_EQ(first_bad(data, f), -1) << "shared" << f;
    }
    for (int t = 0; t < kThreads; ++t) {
      for (int i = 0; i < kSmallFilesPerThread; ++i) {
        const uint64_t id = small_id(t, i);
        std::string data = read_file(root + "/" + small_name(t, i));
        EXPECT_EQ(data.size(), small_size(id)) << small_name(t, i);
        EXPECT_EQ(first_bad(data, id), -1) << small_name(t, i);
      }
    }
  }
}

TEST_F(Integrity, ConcurrentWritersWithFdChurnLandExactBytesOnBacking) {
  concurrent_writers_land_exact_bytes();
}

class IntegrityWriteback : public Integrity {
 protected:
  std::string mount_options() const override {
    return "allow_other,default_permissions,writeback_cache";
  }
};

TEST_F(IntegrityWriteback, ConcurrentWritersWithFdChurnLandExactBytesOnBacking) {
  concurrent_writers_land_exact_bytes();
}

// SIGTERM while writers are busy: the daemon unmounts and exits 0, writers do not hang,
// and every write acknowledged to an application is on the backing directory.
TEST_F(Integrity, SigtermUnderWriteLoadKeepsAcknowledgedWrites) {
  constexpr size_t kBlock = 16384;
  constexpr size_t kMaxBlocks = 4096;  // bounds a writer if the signal never arrives
  std::vector<std::atomic<size_t>> acked(kThreads);
  std::vector<int> open_error(kThreads, 0);
  std::atomic<int> opened{0};  // writers whose open returned, with a file or an error
  std::atomic<size_t> total{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string path = mnt_ + "/load" + std::to_string(t);
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) open_error[t] = errno;
      opened.fetch_add(1);
      if (fd < 0) return;
      for (size_t b = 0; b < kMaxBlocks; ++b) {
        if (!pwrite_all(fd, pattern(t, b * kBlock, kBlock), static_cast<off_t>(b * kBlock))) {
          break;
        }
        acked[t].store(b + 1);
        total.fetch_add(1);
        if (b % 16 == 15 && ::fsync(fd) != 0) break;
      }
      ::close(fd);
    });
  }
  // The signal goes out once the load is really running: every writer has its file (one
  // still opening would find the daemon gone, leaving no file to check) and blocks are
  // being acknowledged.
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while ((opened.load() < kThreads || total.load() < kThreads * 32) &&
         std::chrono::steady_clock::now() < end) {
    std::this_thread::yield();
  }
  ASSERT_GT(daemon_, 0);
  ASSERT_EQ(::kill(daemon_, SIGTERM), 0);
  int status = 0;
  end = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  bool reaped = false;
  while (!(reaped = ::waitpid(daemon_, &status, WNOHANG) == daemon_) &&
         std::chrono::steady_clock::now() < end) {
    std::this_thread::yield();
  }
  if (!reaped) {
    ADD_FAILURE() << "daemon ignored SIGTERM under write load";
    ::kill(daemon_, SIGKILL);
    ::waitpid(daemon_, &status, 0);
  }
  daemon_ = -1;
  mounted_ = false;
  for (auto& th : threads) th.join();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_FALSE(is_mounted(mnt_, "fuse.fsysfs"));
  // The signal really met a running load.
  EXPECT_LT(total.load(), kThreads * kMaxBlocks);
  for (int t = 0; t < kThreads; ++t) {
    SCOPED_TRACE("load" + std::to_string(t));
    EXPECT_EQ(open_error[t], 0) << "open before the signal: " << errno_name(open_error[t]);
    const std::string path = backing_ + "/load" + std::to_string(t);
    // read_file answers a missing file with its errno's name, which is no file's content.
    if (::access(path.c_str(), F_OK) != 0) {
      ADD_FAILURE() << "created before the signal, missing on BACKING: " << errno_name(errno);
      continue;
    }
    std::string data = read_file(path);
    EXPECT_GE(data.size(), acked[t].load() * kBlock) << "acknowledged writes are missing";
    // A write in flight at the signal may or may not have landed, but nothing else.
    const long bad = first_bad(data, t);
    EXPECT_EQ(bad, -1) << acked[t].load() << " blocks of " << kBlock << " acknowledged, "
                       << data.size() << " bytes on BACKING, the first bad one is "
                       << (bad < 0 ? 0 : int(static_cast<unsigned char>(data[bad])));
  }
}

// libfuse 3.14 leaves its session loop on a signal only when the main thread takes it
// (session.cc): the kernel may hand a process's signal to any thread that does not block
// it, so every other thread of the daemon must.
TEST_F(Integrity, EveryDaemonThreadButTheMainOneBlocksTheExitSignals) {
  // The engine's and the transport's threads are up once a write and a sync were served.
  const std::string path = mnt_ + "/f";
  write_file(path, pattern(0, 0, 4096));
  {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0) << errno_name(errno);
    EXPECT_EQ(::fsync(fd), 0) << errno_name(errno);
    ::close(fd);
  }
  ASSERT_GT(daemon_, 0);
  const std::string tasks = "/proc/" + std::to_string(daemon_) + "/task";
  int others = 0;
  for (const auto& task : std::filesystem::directory_iterator(tasks)) {
    if (task.path().filename() == std::to_string(daemon_)) continue;
    ++others;
    std::ifstream status(task.path() / "status");
    std::string line;
    uint64_t blocked = 0;
    bool found = false;
    while (std::getline(status, line)) {
      if (line.rfind("SigBlk:", 0) == 0) {
        blocked = std::stoull(line.substr(7), nullptr, 16);
        found = true;
      }
    }
    if (!found) continue;  // the thread is gone
    for (int sig : {SIGHUP, SIGINT, SIGTERM}) {
      EXPECT_TRUE(blocked & (uint64_t{1} << (sig - 1)))
          << "thread " << task.path().filename().string() << " takes signal " << sig;
    }
  }
  EXPECT_GT(others, 0);
}

}  // namespace
}  // namespace fsysfs::test
