// The engine's contract, on both backends, with real files and a real io_uring.

#include "engine/engine.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/temp_dir.h"

namespace fsysfs::engine {
namespace {

using fsysfs::testing::TempDir;

std::vector<std::byte> pattern(size_t n, uint32_t seed) {
  std::vector<std::byte> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

std::vector<std::byte> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> c((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> v(c.size());
  std::memcpy(v.data(), c.data(), c.size());
  return v;
}

UniqueFd open_file(const std::string& path, int flags = O_RDWR | O_CREAT) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC, 0644));
  if (!fd) throw std::runtime_error("open " + path + ": " + std::strerror(errno));
  return fd;
}

// Counts completions and lets a test wait for all of them.
class Latch {
 public:
  explicit Latch(int n) : left_(n) {}
  void count_down() {
    if (left_.fetch_sub(1) == 1) left_.notify_all();
  }
  void wait() {
    for (int n = left_.load(); n != 0; n = left_.load()) left_.wait(n);
  }

 private:
  std::atomic<int> left_;
};

// Every contract test runs on the syscall backend, on the ring (sync-only ops on the
// engine's sync threads), and on the ring with sync-only ops as IORING_OP_FSYNC.
struct Variant {
  BackendKind backend;
  unsigned ring_sync_threads;
  const char* name;
  InlineOps inline_ops = InlineOps::kNone;
};

class EngineTest : public ::testing::TestWithParam<Variant> {
 protected:
  Options options() const {
    Options o;
    o.backend = GetParam().backend;
    o.ring_sync_threads = GetParam().ring_sync_threads;
    o.inline_ops = GetParam().inline_ops;
    o.nvme_flush = false;
    return o;
  }
  std::unique_ptr<Engine> make(Options o) {
    try {
      return std::make_unique<Engine>(o);
    } catch (const std::runtime_error& e) {
      // Only the ring can fail to set up; a kernel without io_uring is a missing feature.
      if (std::strstr(e.what(), "io_uring_setup") != nullptr) return nullptr;
      throw;
    }
  }
  void SetUp() override {
    engine_ = make(options());
    if (!engine_) GTEST_SKIP() << "io_uring unavailable on this kernel";
  }
  bool uring() const { return GetParam().backend == BackendKind::kUring; }
  // Plain writes and sync-only ops go through the ring (not run inline by the caller).
  bool ring_runs_plain_ops() const { return uring() && GetParam().inline_ops == InlineOps::kNone; }
  // Linked write+sync chains go through the ring (inline only with InlineOps::kAll).
  bool ring_runs_chains() const { return uring() && GetParam().inline_ops != InlineOps::kAll; }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_P(EngineTest, ReportsItsBackend) {
  EXPECT_STREQ(engine_->backend_name(), uring() ? "io_uring" : "sync");
  auto s = engine_->stats();
  EXPECT_EQ(s.backend, engine_->backend_name());
  EXPECT_FALSE(s.backend_notes.empty());
  if (uring()) {
    EXPECT_EQ(s.fixed_files_total, 1024u);
    EXPECT_NE(s.backend_notes.find("COOP_TASKRUN"), std::string::npos) << s.backend_notes;
    // Under DEFER_TASKRUN every io-wq completion waits for the owner thread, which puts an
    // owner hop between the write and the sync of every chain.
    EXPECT_EQ(s.backend_notes.find("DEFER_TASKRUN"), std::string::npos) << s.backend_notes;
  }
}

TEST_P(EngineTest, WriteReadSyncRoundTrip) {
  auto f = engine_->adopt(open_file(dir_ / "a"));
  auto data = pattern(10000, 1);
  ASSERT_EQ(engine_->write(*f, data, 100), 10000);
  ASSERT_EQ(engine_->sync(*f, SyncKind::kData), 0);
  ASSERT_EQ(engine_->sync(*f, SyncKind::kFull), 0);
  std::vector<std::byte> back(10000);
  ASSERT_EQ(engine_->read(*f, back, 100), 10000);
  EXPECT_EQ(back, data);
  // Past the end: a short read, as pread gives.
  EXPECT_EQ(engine_->read(*f, back, 5000), 5100);
  EXPECT_EQ(engine_->read(*f, back, 1 << 20), 0);
  auto on_disk = slurp(dir_ / "a");
  ASSERT_EQ(on_disk.size(), 10100u);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), on_disk.begin() + 100));
  auto s = engine_->stats();
  EXPECT_EQ(s.op(OpKind::kWrite).count, 1u);
  EXPECT_EQ(s.op(OpKind::kWrite).bytes, 10000u);
  EXPECT_EQ(s.op(OpKind::kFdatasync).count, 1u);
  EXPECT_EQ(s.op(OpKind::kFsync).count, 1u);
  EXPECT_EQ(s.op(OpKind::kRead).count, 3u);
}

// A FUSE handle owns its File and is freed right after the File: destroying the File must
// wait until the completion that uses the handle has returned, not only until the I/O is
// done.
TEST_P(EngineTest, DestroyingAFileWaitsForItsRunningCompletions) {
  auto f = engine_->adopt(open_file(dir_ / "life"));
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  engine_->sync(*f, SyncKind::kData, [&](int64_t) noexcept {
    started.store(true);
    started.notify_all();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    finished.store(true);
  });
  started.wait(false);
  f.reset();
  EXPECT_TRUE(finished.load());
}

TEST_P(EngineTest, LinkedWriteFsync_DataOnDisk) {
  auto f = engine_->adopt(open_file(dir_ / "chain"));
  for (SyncKind k : {SyncKind::kData, SyncKind::kFull}) {
    auto data = pattern(4096, static_cast<uint32_t>(k));
    ASSERT_EQ(engine_->write(*f, data, 0, k), 4096);
    EXPECT_EQ(slurp(dir_ / "chain"), data);
  }
  auto s = engine_->stats();
  EXPECT_EQ(s.op(OpKind::kWriteFdatasync).count, 1u);
  EXPECT_EQ(s.op(OpKind::kWriteFsync).count, 1u);
  EXPECT_EQ(s.op(OpKind::kWriteFsync).errors, 0u);
}

TEST_P(EngineTest, LinkedWriteFsync_FailedWriteFailsTheChain) {
  { std::ofstream(dir_ / "ro") << "x"; }
  auto f = engine_->adopt(open_file(dir_ / "ro", O_RDONLY));
  auto data = pattern(4096, 2);
  for (SyncKind k : {SyncKind::kData, SyncKind::kFull, SyncKind::kNone})
    EXPECT_EQ(engine_->write(*f, data, 0, k), -EBADF);
  EXPECT_EQ(slurp(dir_ / "ro").size(), 1u);
  EXPECT_EQ(engine_->stats().op(OpKind::kWriteFsync).errors, 1u);
}

// With CQE skipping a chain posts exactly one CQE: the sync's when the write landed whole,
// the write's when it failed (its sync is then cancelled without one). A CQE left over for
// a finished op would land on freed memory, and a missing one would hang the caller.
TEST_P(EngineTest, LinkedWriteFsync_OneCqePerChainWithCqeSkip) {
  auto f = engine_->adopt(open_file(dir_ / "one"));
  { std::ofstream(dir_ / "ro") << "x"; }
  auto bad = engine_->adopt(open_file(dir_ / "ro", O_RDONLY));
  auto data = pattern(4096, 12);
  engine_->reset_stats();
  constexpr uint64_t kChains = 20;
  for (uint64_t i = 0; i < kChains; ++i)
    ASSERT_EQ(engine_->write(*f, data, i * 4096, SyncKind::kData), 4096);
  EXPECT_EQ(engine_->write(*bad, data, 0, SyncKind::kFull), -EBADF);
  EXPECT_EQ(engine_->write(*f, data, 0), 4096);  // nothing was left behind in the ring
  auto s = engine_->stats();
  EXPECT_EQ(s.op(OpKind::kWriteFdatasync).count, kChains);
  EXPECT_EQ(s.op(OpKind::kWriteFsync).errors, 1u);
  if (!ring_runs_plain_ops()) return;
  bool skip = s.backend_notes.find("CQE_SKIP") != std::string::npos;
  EXPECT_EQ(s.cqes, skip ? kChains + 1 + 1 : 2 * (kChains + 1) + 1) << s.backend_notes;
  // Each blocking chain left the owner with nothing to do but wait for its CQE.
  EXPECT_GE(s.owner_sleeps, kChains);
}

TEST_P(EngineTest, RegisteredBufferWrite) {
  auto f = engine_->adopt(open_file(dir_ / "fixed"));
  Buffer b = engine_->acquire_buffer();
  ASSERT_TRUE(b);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 4096, 0u);
  auto data = pattern(65536, 3);
  std::memcpy(b.data(), data.data(), data.size());
  std::atomic<int64_t> res{1};
  Latch l(1);
  engine_->write(*f, std::move(b), data.size(), 0, SyncKind::kData, [&](int64_t r) {
    res = r;
    l.count_down();
  });
  l.wait();
  EXPECT_EQ(res.load(), 65536);
  EXPECT_EQ(slurp(dir_ / "fixed"), data);
  auto s = engine_->stats();
  EXPECT_EQ(s.fixed_buffer_writes, 1u);
  EXPECT_EQ(s.buffers_used, 0u);  // back in the pool once the kernel is done
}

TEST_P(EngineTest, BufferPoolExhausted_FallsBackToPrivateCopy) {
  auto f = engine_->adopt(open_file(dir_ / "pool"));
  std::vector<Buffer> held;
  for (Buffer b = engine_->acquire_buffer(); b; b = engine_->acquire_buffer())
    held.push_back(std::move(b));
  EXPECT_EQ(held.size(), 16u);
  EXPECT_EQ(engine_->stats().buffers_used, 16u);
  auto data = pattern(8192, 4);
  ASSERT_EQ(engine_->write(*f, data, 0, SyncKind::kData), 8192);  // never blocks on the pool
  // An inline chain writes from the caller's bytes and needs no copy.
  EXPECT_EQ(engine_->stats().copied_writes, GetParam().inline_ops == InlineOps::kAll ? 0u : 1u);
  EXPECT_EQ(slurp(dir_ / "pool"), data);
  held.clear();
  EXPECT_EQ(engine_->stats().buffers_used, 0u);
}

TEST_P(EngineTest, ConcurrentSubmitters_DisjointAndOverlappingRanges) {
  constexpr int kThreads = 8, kOps = 200, kBlock = 4096;
  auto shared = engine_->adopt(open_file(dir_ / "shared"));
  auto overlap = engine_->adopt(open_file(dir_ / "overlap"));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto own = engine_->adopt(open_file(dir_ / ("own" + std::to_string(t))));
      Latch l(3 * kOps);
      for (int i = 0; i < kOps; ++i) {
        auto block = pattern(kBlock, static_cast<uint32_t>(t * kOps + i));
        auto check = [&](int64_t r) {
          if (r != kBlock) failures++;
          l.count_down();
        };
        uint64_t off = static_cast<uint64_t>(i * kThreads + t) * kBlock;
        engine_->write(*shared, block, off, i % 3 == 0 ? SyncKind::kData : SyncKind::kNone, check);
        engine_->write(*own, block, static_cast<uint64_t>(i) * kBlock, SyncKind::kNone, check);
        // Every thread writes the same block of `overlap` with its own byte value.
        std::vector<std::byte> mine(kBlock, static_cast<std::byte>(t + 1));
        engine_->write(*overlap, mine, static_cast<uint64_t>(i % 4) * kBlock, SyncKind::kNone,
                       check);
      }
      l.wait();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto all = slurp(dir_ / "shared");
  ASSERT_EQ(all.size(), size_t{kThreads} * kOps * kBlock);
  for (int t = 0; t < kThreads; ++t) {
    auto own = slurp(dir_ / ("own" + std::to_string(t)));
    ASSERT_EQ(own.size(), size_t{kOps} * kBlock);
    for (int i = 0; i < kOps; ++i) {
      auto block = pattern(kBlock, static_cast<uint32_t>(t * kOps + i));
      ASSERT_EQ(0,
                std::memcmp(all.data() + size_t(i * kThreads + t) * kBlock, block.data(), kBlock));
      ASSERT_EQ(0, std::memcmp(own.data() + size_t(i) * kBlock, block.data(), kBlock));
    }
  }
  // Overlapping writes: each block is wholly one writer's (writes never tear below 4 KiB
  // here), whichever came last.
  auto ov = slurp(dir_ / "overlap");
  ASSERT_EQ(ov.size(), 4u * kBlock);
  for (int b = 0; b < 4; ++b)
    for (int i = 1; i < kBlock; ++i) ASSERT_EQ(ov[size_t(b) * kBlock + i], ov[size_t(b) * kBlock]);
}

TEST_P(EngineTest, RepeatedWritesOnOneFile) {
  auto f = engine_->adopt(open_file(dir_ / "rep"));
  std::vector<std::byte> last;
  for (int i = 0; i < 500; ++i) {
    last = pattern(512, static_cast<uint32_t>(i));
    ASSERT_EQ(engine_->write(*f, last, 0, i % 50 == 0 ? SyncKind::kFull : SyncKind::kNone), 512);
  }
  EXPECT_EQ(slurp(dir_ / "rep"), last);
}

TEST_P(EngineTest, MoreFilesThanFixedSlots) {
  Options o = options();
  o.fixed_files = 8;
  auto e = make(o);
  ASSERT_TRUE(e);
  std::vector<std::unique_ptr<File>> files;
  for (int i = 0; i < 40; ++i)
    files.push_back(e->adopt(open_file(dir_ / ("m" + std::to_string(i)))));
  for (int round = 0; round < 3; ++round)
    for (int i = 0; i < 40; ++i) {
      auto d = pattern(1000, static_cast<uint32_t>(i * 7 + round));
      ASSERT_EQ(e->write(*files[size_t(i)], d, 0, SyncKind::kData), 1000);
    }
  for (int i = 0; i < 40; ++i)
    EXPECT_EQ(slurp(dir_ / ("m" + std::to_string(i))), pattern(1000, uint32_t(i * 7 + 2)));
  auto s = e->stats();
  if (ring_runs_chains()) {
    EXPECT_EQ(s.fixed_files_total, 8u);
    EXPECT_EQ(s.fixed_files_used, 8u);
    EXPECT_GT(s.raw_fd_ops, 0u);
  }
  files.clear();
  EXPECT_EQ(e->stats().fixed_files_used, 0u);  // every slot given back on close
}

// A peer engine wrote into the wrong file when a closed file's fd number was reused while
// its registration lived on. Open, write, close and reopen many files from many threads so
// fd numbers are reused constantly; every file must hold exactly its own bytes.
TEST_P(EngineTest, FdReuse_NoByteLandsInTheWrongFile) {
  Options o = options();
  o.fixed_files = 16;
  auto e = make(o);
  ASSERT_TRUE(e);
  constexpr int kThreads = 6, kFilesPerThread = 150;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kFilesPerThread; ++i) {
        std::string name = dir_ / ("r" + std::to_string(t) + "_" + std::to_string(i));
        auto f = e->adopt(open_file(name, O_RDWR | O_CREAT | O_TRUNC));
        // Async writes still in flight when the file goes away exercise the slot hand-back.
        for (int k = 0; k < 4; ++k) {
          auto d = pattern(2048, static_cast<uint32_t>((t * kFilesPerThread + i) * 4 + k));
          e->write(*f, d, uint64_t(k) * 2048, k == 3 ? SyncKind::kData : SyncKind::kNone,
                   [&](int64_t r) {
                     if (r != 2048) failures++;
                   });
        }
        f.reset();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kFilesPerThread; ++i) {
      auto got = slurp(dir_ / ("r" + std::to_string(t) + "_" + std::to_string(i)));
      ASSERT_EQ(got.size(), 8192u);
      for (int k = 0; k < 4; ++k) {
        auto d = pattern(2048, static_cast<uint32_t>((t * kFilesPerThread + i) * 4 + k));
        ASSERT_EQ(0, std::memcmp(got.data() + k * 2048, d.data(), 2048))
            << t << " " << i << " " << k;
      }
    }
  EXPECT_EQ(e->stats().fixed_files_used, 0u);
}

TEST_P(EngineTest, SqFullPressure_DepthFour_ThousandOps) {
  Options o = options();
  o.queue_depth = 4;
  auto e = make(o);
  ASSERT_TRUE(e);
  constexpr int kOps = 1000;
  auto f = e->adopt(open_file(dir_ / "sq"));
  Latch l(kOps);
  std::atomic<int> failures{0};
  for (int i = 0; i < kOps; ++i) {
    auto d = pattern(512, static_cast<uint32_t>(i));
    e->write(*f, d, uint64_t(i) * 512, i % 5 == 0 ? SyncKind::kData : SyncKind::kNone,
             [&](int64_t r) {
               if (r != 512) failures++;
               l.count_down();
             });
  }
  l.wait();
  EXPECT_EQ(failures.load(), 0);
  auto all = slurp(dir_ / "sq");
  ASSERT_EQ(all.size(), size_t{kOps} * 512);
  for (int i = 0; i < kOps; ++i) {
    auto d = pattern(512, static_cast<uint32_t>(i));
    ASSERT_EQ(0, std::memcmp(all.data() + i * 512, d.data(), 512));
  }
  if (ring_runs_plain_ops()) {
    auto s = e->stats();
    EXPECT_GT(s.sq_full, 0u);
    // Batching: more than one SQE per io_uring_enter on average under this load.
    EXPECT_GT(s.sqes, s.submits);
  }
}

// A write that meets RLIMIT_FSIZE lands in part; the engine resubmits the remainder, which
// fails. A plain write then reports what landed (like write(2)); a chain first syncs that
// part and reports it too, as the kernel's O_DSYNC path does. One that lands nothing fails.
TEST_P(EngineTest, ShortWrite_RemainderResubmitted_ChainSyncsWhatLanded) {
  auto f = engine_->adopt(open_file(dir_ / "limit"));
  struct sigaction ign = {}, old = {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ign, &old), 0);
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit lim = saved;
  lim.rlim_cur = 65536;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  auto d = pattern(8192, 9);
  int64_t plain = engine_->write(*f, d, 65536 - 4096, SyncKind::kNone);
  int64_t chain = engine_->write(*f, d, 65536 - 2048, SyncKind::kData);
  int64_t beyond = engine_->write(*f, d, 65536, SyncKind::kData);
  setrlimit(RLIMIT_FSIZE, &saved);
  sigaction(SIGXFSZ, &old, nullptr);
  EXPECT_EQ(plain, 4096);
  EXPECT_EQ(chain, 2048);
  EXPECT_EQ(beyond, -EFBIG);
  EXPECT_GE(engine_->stats().op(OpKind::kWriteFdatasync).count, 2u);
  if (ring_runs_plain_ops()) {
    EXPECT_GE(engine_->stats().short_writes, 2u);
  }
}

// A pipe takes a large write in pieces: the engine completes the remainder.
TEST_P(EngineTest, ShortWrite_RemainderCompleted) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  UniqueFd rd(p[0]);
  auto w = engine_->adopt(UniqueFd(p[1]));
  auto d = pattern(1 << 20, 10);
  std::vector<std::byte> got;
  std::thread reader([&] {
    std::vector<std::byte> chunk(65536);
    for (;;) {
      ssize_t n = ::read(rd.get(), chunk.data(), chunk.size());
      if (n <= 0) break;
      got.insert(got.end(), chunk.begin(), chunk.begin() + n);
      if (got.size() >= d.size()) break;
    }
  });
  EXPECT_EQ(engine_->write(*w, d, 0), int64_t{1} << 20);
  reader.join();
  EXPECT_EQ(got, d);
}

TEST_P(EngineTest, Shutdown_CompletesEveryQueuedOp) {
  auto e = make(options());
  ASSERT_TRUE(e);
  std::vector<std::unique_ptr<File>> files;
  for (int i = 0; i < 8; ++i)
    files.push_back(e->adopt(open_file(dir_ / ("s" + std::to_string(i)))));
  constexpr int kOps = 2000;
  std::atomic<int> completed{0}, ok{0};
  for (int i = 0; i < kOps; ++i) {
    auto d = pattern(1024, static_cast<uint32_t>(i));
    e->write(*files[size_t(i % 8)], d, uint64_t(i / 8) * 1024,
             i % 10 == 0 ? SyncKind::kData : SyncKind::kNone, [&](int64_t r) {
               completed++;
               if (r == 1024) ok++;
             });
  }
  e.reset();  // ops are still queued and in flight here
  EXPECT_EQ(completed.load(), kOps);
  EXPECT_EQ(ok.load(), kOps);  // queued ops are completed, not dropped
  files.clear();               // Files may outlive the engine
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(slurp(dir_ / ("s" + std::to_string(i))).size(), 250u * 1024);
}

INSTANTIATE_TEST_SUITE_P(
    Backends, EngineTest,
    ::testing::Values(Variant{BackendKind::kUring, 4, "Uring"},
                      Variant{BackendKind::kSync, 4, "Sync"},
                      Variant{BackendKind::kUring, 0, "UringRingSyncs"},
                      Variant{BackendKind::kUring, 4, "UringInlineWrites", InlineOps::kPageCache},
                      Variant{BackendKind::kUring, 4, "UringInline", InlineOps::kAll}),
    [](const auto& info) { return std::string(info.param.name); });

// An io_uring engine without NVMe flushes, with `tweak` applied; nullptr without a ring.
std::unique_ptr<Engine> make_uring(const std::function<void(Options&)>& tweak) {
  Options o;
  o.backend = BackendKind::kUring;
  o.nvme_flush = false;
  tweak(o);
  try {
    return std::make_unique<Engine>(o);
  } catch (const std::runtime_error&) {
    return nullptr;
  }
}

std::unique_ptr<Engine> make_uring_syncs(unsigned ring_sync_threads) {
  return make_uring([ring_sync_threads](Options& o) { o.ring_sync_threads = ring_sync_threads; });
}

// With inline_ops=kAll, every op completes on the calling thread before the call returns
// (no hand-off to an engine thread), a write+sync chain as pwrite then fdatasync; with
// kPageCache only plain writes do, and syncs and chains complete on the engine's side.
TEST(EngineInlineOps, OpsCompleteOnTheCallerBeforeReturning) {
  for (InlineOps mode : {InlineOps::kAll, InlineOps::kPageCache}) {
    const bool all = mode == InlineOps::kAll;
    SCOPED_TRACE(all ? "all" : "writes");
    auto e = make_uring([mode](Options& o) { o.inline_ops = mode; });
    if (!e) GTEST_SKIP() << "this kernel has no io_uring";
    TempDir d;
    auto f = e->adopt(open_file(d / "i"));
    auto data = pattern(4096, 21);
    const auto caller = std::this_thread::get_id();
    std::atomic<int> on_caller{0};
    std::atomic<int> done{0};
    auto cb = [&](int64_t r) {
      EXPECT_GE(r, 0);
      if (std::this_thread::get_id() == caller) on_caller++;
      done++;
    };
    e->write(*f, data, 0, SyncKind::kNone, cb);
    EXPECT_EQ(done.load(), 1) << "the write had not completed when write() returned";
    // The inline write took the caller's bytes without a copy into a registered buffer.
    EXPECT_EQ(e->stats().fixed_buffer_writes, 0u);
    EXPECT_EQ(e->stats().copied_writes, 0u);
    EXPECT_EQ(e->sync(*f, SyncKind::kData), 0);
    e->sync(*f, SyncKind::kFull, cb);
    if (!all) f.reset();  // waits for the sync on the engine's side
    EXPECT_EQ(done.load(), 2);
    EXPECT_EQ(on_caller.load(), all ? 2 : 1);
    if (!f) f = e->adopt(open_file(d / "i"));
    EXPECT_EQ(e->write(*f, data, 4096, SyncKind::kData), 4096);
    std::atomic<bool> chained{false};
    e->write(*f, data, 8192, SyncKind::kData, [&](int64_t r) {
      EXPECT_EQ(r, 4096);
      EXPECT_EQ(std::this_thread::get_id() == caller, all);
      chained = true;
    });
    EXPECT_EQ(chained.load(), all) << "an inline chain completes before write() returns";
    f.reset();  // waits for the chain
    EXPECT_TRUE(chained.load());
    auto s = e->stats();
    EXPECT_NE(s.backend_notes.find(all ? "writes, reads, syncs and write+sync chains inline"
                                       : "writes and reads inline"),
              std::string::npos)
        << s.backend_notes;
    EXPECT_EQ(s.op(OpKind::kWrite).count, 1u);
    EXPECT_EQ(s.op(OpKind::kFdatasync).count, 1u);
    EXPECT_EQ(s.op(OpKind::kFsync).count, 1u);
    EXPECT_EQ(s.op(OpKind::kWriteFdatasync).count, 2u);
    // Only a chain on the ring leases a registered buffer.
    EXPECT_EQ(s.fixed_buffer_writes, all ? 0u : 2u);
    EXPECT_EQ(s.inline_ops, all ? 5u : 1u);
    EXPECT_EQ(slurp(d / "i").size(), 3u * 4096);
  }
}

// An engine that runs every op inline, with room for `max_waits` device waits at once.
std::unique_ptr<Engine> make_inline_all(unsigned max_waits) {
  return make_uring([max_waits](Options& o) {
    o.inline_ops = InlineOps::kAll;
    o.max_inline_waits = max_waits;
  });
}

// max_inline_waits bounds the ops that wait for the device inline; beyond it syncs and
// chains go to the backend (counted as inline_overflow) while plain writes stay inline.
TEST(EngineInlineOps, DeviceWaitsBeyondTheLimitGoToTheBackend) {
  auto e = make_inline_all(0);
  if (!e) GTEST_SKIP() << "this kernel has no io_uring";
  TempDir d;
  auto f = e->adopt(open_file(d / "l"));
  auto data = pattern(4096, 5);
  const auto caller = std::this_thread::get_id();
  std::atomic<int> on_caller{0};
  Latch l(3);
  auto cb = [&](int64_t r) {
    EXPECT_GE(r, 0);
    if (std::this_thread::get_id() == caller) on_caller++;
    l.count_down();
  };
  e->write(*f, data, 0, SyncKind::kNone, cb);
  e->sync(*f, SyncKind::kData, cb);
  e->write(*f, data, 4096, SyncKind::kData, cb);
  l.wait();
  EXPECT_EQ(on_caller.load(), 1) << "only the plain write may run on the caller";
  auto s = e->stats();
  EXPECT_EQ(s.inline_ops, 1u);
  EXPECT_EQ(s.inline_overflow, 2u);
  EXPECT_EQ(s.fixed_buffer_writes, 1u);  // the chain, on the ring
  f.reset();
  EXPECT_EQ(slurp(d / "l").size(), 2u * 4096);
}

// A place taken by an inline device wait is given back when the op is done: with room for
// one, every sync and chain made one after another runs inline.
TEST(EngineInlineOps, EachInlineWaitGivesItsPlaceBack) {
  auto e = make_inline_all(1);
  if (!e) GTEST_SKIP() << "this kernel has no io_uring";
  TempDir d;
  auto f = e->adopt(open_file(d / "p"));
  auto data = pattern(4096, 8);
  constexpr int kRounds = 20;
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_EQ(e->write(*f, data, static_cast<uint64_t>(i) * 4096, SyncKind::kData), 4096);
    ASSERT_EQ(e->sync(*f, SyncKind::kFull), 0);
  }
  auto s = e->stats();
  EXPECT_EQ(s.inline_ops, 2u * kRounds);
  EXPECT_EQ(s.inline_overflow, 0u);
  EXPECT_EQ(s.max_inline_waits, 1u);
}

// An op submitted on an engine thread (from another op's completion, as the filesystem
// chains a rename's second directory sync) goes to the backend even where inline_ops
// would run it on the caller: it would otherwise hold up every op waiting on that thread.
TEST(EngineInlineOps, OpsSubmittedOnEngineThreadsNeverRunInline) {
  auto e = make_uring([](Options& o) { o.inline_ops = InlineOps::kPageCache; });
  if (!e) GTEST_SKIP() << "this kernel has no io_uring";
  TempDir d;
  auto f = e->adopt(open_file(d / "t"));
  auto data = pattern(4096, 9);
  std::thread::id sync_thread, write_thread;
  Latch l(1);
  e->sync(*f, SyncKind::kData, [&](int64_t r) {
    EXPECT_EQ(r, 0);
    sync_thread = std::this_thread::get_id();
    e->write(*f, data, 0, SyncKind::kNone, [&](int64_t w) {
      EXPECT_EQ(w, 4096);
      write_thread = std::this_thread::get_id();
      l.count_down();
    });
  });
  l.wait();
  EXPECT_NE(write_thread, sync_thread) << "the write ran inline on the engine's sync thread";
  EXPECT_EQ(e->stats().inline_ops, 0u);
  f.reset();
  EXPECT_EQ(slurp(d / "t"), data);
}

// O_DIRECT needs aligned memory: an inline write to an O_DIRECT file is made from an
// aligned copy, not from the caller's bytes, which a FUSE request never has aligned.
TEST(EngineInlineOps, ODirectFilesAreWrittenFromAlignedMemory) {
  for (InlineOps mode : {InlineOps::kAll, InlineOps::kPageCache}) {
    for (unsigned buffers : {16u, 0u}) {
      SCOPED_TRACE(std::string(mode == InlineOps::kAll ? "all" : "writes") + ", buffers " +
                   std::to_string(buffers));
      auto e = make_uring([&](Options& o) {
        o.inline_ops = mode;
        o.buffer_count = buffers;
      });
      if (!e) GTEST_SKIP() << "this kernel has no io_uring";
      TempDir d;
      UniqueFd fd(::open((d / "direct").c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0644));
      if (!fd && errno == EINVAL)
        GTEST_SKIP() << "this kernel has no O_DIRECT for the temporary directory's filesystem";
      ASSERT_TRUE(fd) << std::strerror(errno);
      auto f = e->adopt(std::move(fd));
      // 4096 bytes at an odd address, as they sit in a FUSE request.
      std::vector<std::byte> raw(4096 + 1);
      auto block = pattern(4096, 10);
      std::memcpy(raw.data() + 1, block.data(), block.size());
      std::span<const std::byte> odd(raw.data() + 1, 4096);
      EXPECT_EQ(e->write(*f, odd, 0, SyncKind::kNone), 4096);
      EXPECT_EQ(e->write(*f, odd, 4096, SyncKind::kData), 4096);
      f.reset();
      EXPECT_EQ(slurp(d / "direct"), [&] {
        auto both = block;
        both.insert(both.end(), block.begin(), block.end());
        return both;
      }());
    }
  }
}

// Sync-only ops run on the engine's sync threads (no CQE), or on the ring when asked;
// either way a sync's error reaches the caller.
TEST(EngineSyncThreads, SyncOnlyOpsLeaveTheRing_ErrorsStillReported) {
  for (unsigned threads : {4u, 0u}) {
    SCOPED_TRACE(threads);
    auto e = make_uring_syncs(threads);
    if (!e) GTEST_SKIP() << "this kernel has no io_uring";
    auto s0 = e->stats();
    EXPECT_EQ(s0.backend_notes.find("syncs on") != std::string::npos, threads > 0)
        << s0.backend_notes;
    TempDir d;
    auto f = e->adopt(open_file(d / "s"));
    auto data = pattern(4096, 15);
    ASSERT_EQ(e->write(*f, data, 0), 4096);
    e->reset_stats();
    EXPECT_EQ(e->sync(*f, SyncKind::kData), 0);
    EXPECT_EQ(e->sync(*f, SyncKind::kFull), 0);
    // fsync of a pipe fails with EINVAL: the error is the op's result.
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    UniqueFd rd(p[0]);
    auto w = e->adopt(UniqueFd(p[1]));
    EXPECT_EQ(e->sync(*w, SyncKind::kData), -EINVAL);
    auto s = e->stats();
    EXPECT_EQ(s.cqes, threads > 0 ? 0u : 3u);
    EXPECT_EQ(s.op(OpKind::kFdatasync).count, 2u);
    EXPECT_EQ(s.op(OpKind::kFdatasync).errors, 1u);
    EXPECT_EQ(s.op(OpKind::kFsync).count, 1u);
  }
}

// Shutdown completes the syncs queued on the sync threads as well as the ring's ops, and a
// File's destructor still waits for its syncs.
TEST(EngineSyncThreads, ShutdownCompletesQueuedSyncs) {
  auto e = make_uring_syncs(2);
  if (!e) GTEST_SKIP() << "this kernel has no io_uring";
  TempDir d;
  std::vector<std::unique_ptr<File>> files;
  for (int i = 0; i < 4; ++i) files.push_back(e->adopt(open_file(d / ("f" + std::to_string(i)))));
  constexpr int kOps = 400;
  std::atomic<int> done{0}, ok{0};
  for (int i = 0; i < kOps; ++i) {
    File& f = *files[size_t(i % 4)];
    auto cb = [&](int64_t r) {
      done++;
      if (r >= 0) ok++;
    };
    if (i % 2 == 0) {
      auto data = pattern(512, static_cast<uint32_t>(i));
      e->write(f, data, uint64_t(i / 4) * 512, SyncKind::kNone, cb);
    } else {
      e->sync(f, i % 4 == 1 ? SyncKind::kData : SyncKind::kFull, cb);
    }
  }
  files.pop_back();  // waits for that file's ops, syncs included
  e.reset();
  EXPECT_EQ(done.load(), kOps);
  EXPECT_EQ(ok.load(), kOps);
}

TEST(EngineSetup, AutoFallsBackWhenAsked) {
  Options o;
  o.backend = BackendKind::kSync;
  o.nvme_flush = false;
  Engine e(o);
  auto s = e.stats();
  EXPECT_EQ(s.backend, "sync");
  EXPECT_NE(s.backend_notes.find("requested"), std::string::npos);
}

// Makes io_uring_setup fail with EPERM in this process, as a container's seccomp policy
// does. Returns false if the filter could not be installed.
bool deny_io_uring_setup() {
  sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog = {static_cast<unsigned short>(std::size(f)), f};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

TEST(EngineSetup, RingDeniedBySeccomp_AutoFallsBackAndSaysWhy) {
  TempDir d;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: exit codes tell the parent which check failed.
    if (!deny_io_uring_setup()) _exit(10);
    Options o;
    o.nvme_flush = false;
    Engine e(o);
    auto s = e.stats();
    if (s.backend != "sync") _exit(11);
    if (s.backend_notes.find("io_uring unavailable") == std::string::npos ||
        s.backend_notes.find("Operation not permitted") == std::string::npos)
      _exit(12);
    auto f = e.adopt(open_file(d / "x"));
    auto data = pattern(4096, 12);
    if (e.write(*f, data, 0, SyncKind::kData) != 4096) _exit(13);
    if (slurp(d / "x") != data) _exit(14);
    // engine=uring must refuse rather than fall back.
    o.backend = BackendKind::kUring;
    try {
      Engine strict(o);
      _exit(15);
    } catch (const std::runtime_error&) {
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "failed check " << WEXITSTATUS(status);
}

TEST(EngineSetup, SqpollWhenAsked) {
  auto e = make_uring([](Options& o) { o.sqpoll = true; });
  if (!e) GTEST_SKIP() << "this kernel has no io_uring";
  auto s = e->stats();
  // Either SQPOLL is in use, or the notes say why it was refused and what runs instead.
  EXPECT_NE(s.backend_notes.find("SQPOLL"), std::string::npos) << s.backend_notes;
  TempDir d;
  auto f = e->adopt(open_file(d / "x"));
  auto data = pattern(4096, 11);
  EXPECT_EQ(e->write(*f, data, 0, SyncKind::kData), 4096);
  EXPECT_EQ(slurp(d / "x"), data);
}

}  // namespace
}  // namespace fsysfs::engine
