// Durability modes, dirsync, live switching, the control file, sync error reporting and
// fault injection, on real mounts. Counts come from the mount's own statistics (the
// control file); tracefs_test.cc checks the same contracts through the kernel.

#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"
#include "tests/fusefs/stats_json.h"

namespace fsysfs::test {
namespace {

constexpr uid_t kNobody = 65534;

void write_at(int fd, const std::string& data, off_t off) {
  ASSERT_EQ(::pwrite(fd, data.data(), data.size(), off), static_cast<ssize_t>(data.size()))
      << std::strerror(errno);
}

class DurabilityTest : public MountFixture {
 protected:
  std::string control() const { return mnt_ + "/.fsysfs"; }

  std::string stats() { return read_stats_json(mnt_); }
  uint64_t engine_count(std::string_view kind) {
    return json_number(stats(), {"engine", "ops", kind, "count"});
  }
  uint64_t fuse_count(std::string_view key) { return json_number(stats(), {"fuse", key}); }
  uint64_t fuse_op(std::string_view op) { return json_number(stats(), {"fuse", "ops", op}); }

  // Sets a control attribute; 0 or the errno.
  int set(const char* attr, std::string_view value) {
    return ::setxattr(control().c_str(), attr, value.data(), value.size(), 0) == 0 ? 0 : errno;
  }
  void inject(std::string_view rule) { ASSERT_EQ(set("user.fsysfs.inject", rule), 0) << rule; }

  int open_mnt(const std::string& rel, int flags) {
    int fd = ::open((mnt_ + "/" + rel).c_str(), flags | O_CLOEXEC, 0644);
    EXPECT_GE(fd, 0) << rel << ": " << std::strerror(errno);
    return fd;
  }
};

template <const char* kOptions>
class MountedWith : public DurabilityTest {
 protected:
  std::string mount_options() const override { return kOptions; }
};

constexpr char kNone[] = "allow_other,durability=none";
constexpr char kClose[] = "allow_other,durability=close";
constexpr char kStrict[] = "allow_other,durability=strict";
constexpr char kStrictNoDirsync[] = "allow_other,sync,nodirsync";
constexpr char kDirsync[] = "allow_other,dirsync";
constexpr char kWriteback[] = "allow_other,writeback_cache";
constexpr char kCloseWriteback[] = "allow_other,durability=close,writeback_cache";
constexpr char kInlineIo[] = "allow_other,inline_io=all,durability=close,dirsync";
// Where the /dev/fuse transport runs writes (on io_uring they run on the queue's ring).
constexpr char kHandOff[] = "allow_other,transport=dev,inline_io=off";
constexpr char kInlineWrites[] = "allow_other,transport=dev,inline_io=writes";

using NoneMode = MountedWith<kNone>;
using CloseMode = MountedWith<kClose>;
using StrictMode = MountedWith<kStrict>;
using StrictNoDirsync = MountedWith<kStrictNoDirsync>;
using DirsyncMount = MountedWith<kDirsync>;
using WritebackMount = MountedWith<kWriteback>;
using CloseWriteback = MountedWith<kCloseWriteback>;
using InlineIo = MountedWith<kInlineIo>;
using HandOff = MountedWith<kHandOff>;
using InlineWrites = MountedWith<kInlineWrites>;

TEST_F(DurabilityTest, FsyncMode_WritesAreNotSyncedUntilTheAppSyncs) {
  EXPECT_EQ(json_word(stats(), "durability"), "fsync");
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  for (int i = 0; i < 5; ++i) write_at(fd, std::string(4096, 'a' + i), i * 4096);
  EXPECT_EQ(engine_count("write"), 5u);
  EXPECT_EQ(engine_count("write+fdatasync"), 0u);
  EXPECT_EQ(engine_count("fdatasync") + engine_count("fsync"), 0u);
  ASSERT_EQ(::fdatasync(fd), 0);
  ASSERT_EQ(::fsync(fd), 0);
  ::close(fd);
  EXPECT_EQ(engine_count("fdatasync"), 1u);
  EXPECT_EQ(engine_count("fsync"), 1u);
  EXPECT_EQ(fuse_count("syncs_issued"), 2u);
  EXPECT_EQ(fuse_count("close_syncs"), 0u);
  EXPECT_EQ(fuse_count("dir_syncs"), 0u);
  EXPECT_EQ(fuse_op("write"), 5u);
  EXPECT_EQ(fuse_op("fsync"), 2u);
}

TEST_F(NoneMode, SyncsAreAnsweredWithoutSyncing) {
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  write_at(fd, "data", 0);
  EXPECT_EQ(::fsync(fd), 0);
  EXPECT_EQ(::fdatasync(fd), 0);
  ::close(fd);
  int dir = ::open(mnt_.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dir, 0);
  EXPECT_EQ(::fsync(dir), 0);
  ::close(dir);
  EXPECT_EQ(fuse_count("syncs_skipped"), 3u);
  EXPECT_EQ(fuse_count("syncs_issued"), 0u);
  EXPECT_EQ(engine_count("fsync") + engine_count("fdatasync"), 0u);
  EXPECT_EQ(read_file(backing_ + "/f"), "data");
}

TEST_F(StrictMode, EveryWriteIsALinkedWriteFdatasync_AndDirsyncFollows) {
  const std::string s = stats();
  EXPECT_EQ(json_word(s, "durability"), "strict");
  EXPECT_EQ(json_word(s, "dirsync"), "auto");
  EXPECT_NE(s.find("\"dirsync_active\":true"), std::string::npos);
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  EXPECT_EQ(fuse_count("dir_syncs"), 1u);  // the create
  for (int i = 0; i < 4; ++i) write_at(fd, std::string(100, 'x'), i * 100);
  ::close(fd);
  EXPECT_EQ(engine_count("write+fdatasync"), 4u);
  EXPECT_EQ(engine_count("write"), 0u);
  EXPECT_EQ(json_number(stats(), {"engine", "ops", "write+fdatasync", "bytes"}), 400u);
  EXPECT_EQ(read_file(backing_ + "/f"), std::string(400, 'x'));
}

TEST_F(StrictNoDirsync, SyncIsStrict_NodirsyncKeepsDirectoriesAlone) {
  EXPECT_EQ(json_word(stats(), "durability"), "strict");
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  write_at(fd, "x", 0);
  ::close(fd);
  ASSERT_EQ(::mkdir((mnt_ + "/d").c_str(), 0755), 0);
  EXPECT_EQ(engine_count("write+fdatasync"), 1u);
  EXPECT_EQ(fuse_count("dir_syncs"), 0u);
}

TEST_F(CloseMode, CloseOfAHandleThatWroteSyncs_OthersDoNot) {
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  write_at(fd, "data", 0);
  EXPECT_EQ(engine_count("fdatasync"), 0u);
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(fuse_count("close_syncs"), 1u);
  EXPECT_EQ(engine_count("fdatasync"), 1u);

  int rd = open_mnt("f", O_RDONLY);
  char buf[8];
  EXPECT_EQ(::read(rd, buf, sizeof buf), 4);
  ASSERT_EQ(::close(rd), 0);
  EXPECT_EQ(fuse_count("close_syncs"), 1u);

  // An fsync after the last write leaves nothing for close to do.
  fd = open_mnt("f", O_WRONLY);
  write_at(fd, "more", 4);
  ASSERT_EQ(::fsync(fd), 0);
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(fuse_count("close_syncs"), 1u);
  EXPECT_EQ(engine_count("fsync"), 1u);

  // A dup'd descriptor closes the same handle: the sync happens at the first close after a
  // write, and only then.
  fd = open_mnt("f", O_WRONLY);
  int dup = ::dup(fd);
  write_at(fd, "!", 8);
  ASSERT_EQ(::close(dup), 0);
  EXPECT_EQ(fuse_count("close_syncs"), 2u);
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(fuse_count("close_syncs"), 2u);
  EXPECT_EQ(read_file(backing_ + "/f"), "datamore!");
}

// With the writeback cache the kernel sends cached pages through any writable handle of
// the inode; the handle being closed must still sync them.
TEST_F(CloseWriteback, CloseSyncsWritesTheKernelSentThroughAnotherHandle) {
  int keep = open_mnt("f", O_CREAT | O_RDWR);  // opened first: a candidate for writeback
  int fd = open_mnt("f", O_WRONLY);
  write_at(fd, std::string(8192, 'w'), 0);
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(fuse_count("close_syncs"), 1u);
  EXPECT_EQ(engine_count("fdatasync"), 1u);
  EXPECT_EQ(read_file(backing_ + "/f"), std::string(8192, 'w'));
  ASSERT_EQ(::close(keep), 0);
  EXPECT_EQ(fuse_count("close_syncs"), 1u);  // nothing written since
}

TEST_F(DirsyncMount, EachNamespaceChangeSyncsItsParents) {
  auto dir_syncs = [&] { return fuse_count("dir_syncs"); };
  const std::string m = mnt_ + "/";
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  ::close(fd);
  EXPECT_EQ(dir_syncs(), 1u);
  ASSERT_EQ(::mkdir((m + "d").c_str(), 0755), 0);
  EXPECT_EQ(dir_syncs(), 2u);
  ASSERT_EQ(::rename((m + "f").c_str(), (m + "d/f").c_str()), 0);
  EXPECT_EQ(dir_syncs(), 4u);  // both parents
  ASSERT_EQ(::rename((m + "d/f").c_str(), (m + "d/g").c_str()), 0);
  EXPECT_EQ(dir_syncs(), 5u);  // one parent, once
  ASSERT_EQ(::link((m + "d/g").c_str(), (m + "h").c_str()), 0);
  EXPECT_EQ(dir_syncs(), 6u);
  ASSERT_EQ(::symlink("d/g", (m + "s").c_str()), 0);
  EXPECT_EQ(dir_syncs(), 7u);
  ASSERT_EQ(::mkfifo((m + "p").c_str(), 0600), 0);
  EXPECT_EQ(dir_syncs(), 8u);
  ASSERT_EQ(::unlink((m + "h").c_str()), 0);
  EXPECT_EQ(dir_syncs(), 9u);
  ASSERT_EQ(::unlink((m + "d/g").c_str()), 0);
  ASSERT_EQ(::rmdir((m + "d").c_str()), 0);
  EXPECT_EQ(dir_syncs(), 11u);
  // Directory fsyncs run on the engine like any other.
  EXPECT_EQ(engine_count("fsync"), 11u);
  // A failed change syncs nothing.
  EXPECT_NE(::mkdir((m + "s").c_str(), 0755), 0);
  EXPECT_EQ(dir_syncs(), 11u);
}

// The kernel follows every write to an O_DSYNC file with an fdatasync request. The write
// is one linked write+fdatasync chain, so that request needs no second sync.
TEST_F(DurabilityTest, OdsyncWritesAreChains_AndTheKernelsFdatasyncIsElided) {
  int fd = open_mnt("f", O_CREAT | O_WRONLY | O_DSYNC);
  for (int i = 0; i < 6; ++i) write_at(fd, std::string(512, 'a' + i), i * 512);
  ::close(fd);
  EXPECT_EQ(engine_count("write+fdatasync"), 6u);
  EXPECT_EQ(engine_count("write"), 0u);
  EXPECT_EQ(engine_count("fdatasync"), 0u);
  EXPECT_EQ(fuse_count("syncs_elided"), 6u);
  EXPECT_EQ(fuse_op("fsync"), 6u);
  std::string want;
  for (int i = 0; i < 6; ++i) want += std::string(512, 'a' + i);
  EXPECT_EQ(read_file(backing_ + "/f"), want);
}

TEST_F(DurabilityTest, OsyncWritesAreWriteFsyncChains_FullFsyncsAreNeverElided) {
  int fd = open_mnt("f", O_CREAT | O_WRONLY | O_SYNC);
  for (int i = 0; i < 3; ++i) write_at(fd, "abc", i * 3);
  ::close(fd);
  EXPECT_EQ(engine_count("write+fsync"), 3u);
  EXPECT_EQ(engine_count("fsync"), 3u);
  EXPECT_EQ(fuse_count("syncs_elided"), 0u);
}

// Elision needs the data to be known durable: any change in between, through any handle,
// and an inode whose history the mount does not know, force a real sync.
TEST_F(DurabilityTest, FdatasyncIsElidedOnlyWhenNothingChangedSinceTheLastSync) {
  int fd = open_mnt("f", O_CREAT | O_RDWR);
  int other = open_mnt("f", O_WRONLY);
  auto syncs = [&] { return engine_count("fdatasync"); };
  ASSERT_EQ(::fdatasync(fd), 0);  // unknown history: synced
  EXPECT_EQ(syncs(), 1u);
  ASSERT_EQ(::fdatasync(fd), 0);  // nothing changed: elided
  EXPECT_EQ(syncs(), 1u);
  write_at(fd, "data", 0);
  ASSERT_EQ(::fdatasync(fd), 0);
  EXPECT_EQ(syncs(), 2u);
  write_at(other, "more", 4);  // another handle of the same inode
  ASSERT_EQ(::fdatasync(fd), 0);
  EXPECT_EQ(syncs(), 3u);
  ASSERT_EQ(::ftruncate(fd, 2), 0);
  ASSERT_EQ(::fdatasync(fd), 0);
  EXPECT_EQ(syncs(), 4u);
  ASSERT_EQ(::fallocate(fd, 0, 0, 8192), 0);
  ASSERT_EQ(::fdatasync(other), 0);
  EXPECT_EQ(syncs(), 5u);
  ASSERT_EQ(::truncate((mnt_ + "/f").c_str(), 1), 0);
  ASSERT_EQ(::fdatasync(fd), 0);
  EXPECT_EQ(syncs(), 6u);
  int trunc = open_mnt("f", O_WRONLY | O_TRUNC);
  ASSERT_EQ(::fdatasync(fd), 0);
  EXPECT_EQ(syncs(), 7u);
  ASSERT_EQ(::fsync(fd), 0);  // a full fsync also covers metadata: never elided
  EXPECT_EQ(engine_count("fsync"), 1u);
  EXPECT_EQ(fuse_count("syncs_elided"), 1u);
  ::close(trunc);
  ::close(other);
  ::close(fd);
}

TEST_F(StrictMode, FdatasyncAfterStrictWritesIsElided) {
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  ASSERT_EQ(::fdatasync(fd), 0);  // unknown history
  write_at(fd, "abc", 0);
  ASSERT_EQ(::fdatasync(fd), 0);
  ::close(fd);
  EXPECT_EQ(engine_count("fdatasync"), 1u);
  EXPECT_EQ(fuse_count("syncs_elided"), 1u);
}

// Directory syncs in flight do not stop other requests. An outer mount with dirsync has
// this test's mount as its BACKING, where a fault rule holds fsyncdir for 3 s: while
// creates in d0/, d1/... wait for their directory's sync, a lookup in the root (another
// directory: the kernel holds each dN locked for its create) is answered.
// - inline_io=writes: the syncs wait on engine threads, so one FUSE worker is enough.
// - The default: a sync waits on the worker that received it while fewer than threads - 1
//   do (libfuse starts another worker to read requests); beyond that it goes to the
//   engine's threads (inline_overflow), so the last worker is never held.
struct OuterMount {
  const char* name;
  const char* options;
  unsigned held_syncs;     // creates whose directory sync is held at once
  bool inline_expected;    // some of those syncs ran on the FUSE worker
  bool overflow_expected;  // some went to the engine's threads for want of a place
};

void PrintTo(const OuterMount& m, std::ostream* os) { *os << m.name; }

class DirsyncWait : public DurabilityTest, public ::testing::WithParamInterface<OuterMount> {};

TEST_P(DirsyncWait, OtherRequestsAreAnsweredMeanwhile) {
  const OuterMount& p = GetParam();
  if (std::string(p.options).find("transport=uring") != std::string::npos) {
    if (std::string why = uring_transport_missing(); !why.empty()) GTEST_SKIP() << why;
  }
  const std::string bin = daemon_binary();
  // The real command line is under test; every build of this repository has it.
  ASSERT_EQ(bin.find("serve_helper"), std::string::npos) << "needs the fsysfs binary, not " << bin;
  const std::string inner = mnt_ + "/outer-backing";
  const std::string outer = base_ + "/outer";
  ASSERT_EQ(::mkdir(inner.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(outer.c_str(), 0755), 0);
  for (unsigned i = 0; i < p.held_syncs; ++i) {
    ASSERT_EQ(::mkdir((inner + "/d" + std::to_string(i)).c_str(), 0755), 0);
  }
  write_file(inner + "/existing", "x");
  // The outer daemon runs in the foreground as our child, so that it has exited (and let
  // go of the inner mount) before the fixture unmounts the inner one.
  const std::string options = std::string(p.options) + ",dirsync,log_file=" + log_;
  const pid_t outer_daemon = ::fork();
  ASSERT_GE(outer_daemon, 0);
  if (outer_daemon == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    ::close_range(3, ~0u, 0);
    ::execl(bin.c_str(), bin.c_str(), "-f", "-o", options.c_str(), inner.c_str(), outer.c_str(),
            static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto mount_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!is_mounted(outer, "fuse.fsysfs") && std::chrono::steady_clock::now() < mount_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(is_mounted(outer, "fuse.fsysfs"));
  inject("op=fsyncdir,delay_ms=3000,count=" + std::to_string(p.held_syncs));
  std::atomic<unsigned> created{0};
  std::vector<std::thread> creators;
  for (unsigned i = 0; i < p.held_syncs; ++i) {
    creators.emplace_back([&, i] {
      const std::string path = outer + "/d" + std::to_string(i) + "/new";
      int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      if (fd >= 0) ::close(fd);
      if (fd >= 0) created++;
    });
  }
  // Until every one of the outer daemon's directory syncs is being held.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (fuse_count("faults_injected") < p.held_syncs &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(fuse_count("faults_injected"), p.held_syncs);
  struct stat st;
  EXPECT_EQ(::stat((outer + "/existing").c_str(), &st), 0) << std::strerror(errno);
  // This mount counts a held fsyncdir as issued only once the hold is over.
  EXPECT_EQ(fuse_count("syncs_issued"), 0u) << "the lookup waited for a create's directory sync";
  for (auto& t : creators) t.join();
  EXPECT_EQ(created.load(), p.held_syncs);
  const std::string outer_stats = read_stats_json(outer);
  EXPECT_EQ(json_number(outer_stats, {"engine", "inline_ops"}) > 0, p.inline_expected)
      << outer_stats;
  EXPECT_EQ(json_number(outer_stats, {"engine", "inline_overflow"}) > 0, p.overflow_expected)
      << outer_stats;
  // Lazily: a plain unmount right after the creators' closes can find the mount still busy
  // (seen under load, then the outer daemon never exits and waitpid below never returns);
  // what this test checks is that the outer daemon then exits cleanly.
  EXPECT_EQ(run_program({"fusermount3", "-u", "-z", outer}), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(outer_daemon, &status, 0), outer_daemon);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "outer daemon status " << status;
}

INSTANTIATE_TEST_SUITE_P(
    Outer, DirsyncWait,
    ::testing::Values(
        OuterMount{"HandOffOneWorker", "transport=dev,threads=1,inline_io=writes", 1, false, false},
        OuterMount{"InlineOneWorker", "transport=dev,threads=1", 1, false, true},
        OuterMount{"InlineTwoWorkersTwoSyncs", "transport=dev,threads=2", 2, true, true},
        OuterMount{"InlineDefaultThreads", "transport=dev,inline_io=all", 2, true, false},
        // The queue's owner hands syncs to the engine's threads and keeps fetching.
        OuterMount{"Uring", "transport=uring", 2, false, false}),
    [](const auto& info) { return std::string(info.param.name); });

// inline_io: the engine runs plain writes and syncs on the FUSE worker, and their
// completions (which reply) run before the engine call returns; replies, close syncs and
// dirsync's chained directory syncs all still happen once each.
TEST_F(InlineIo, WritesSyncsCloseAndDirsyncWorkInline) {
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  ASSERT_GE(fd, 0);
  write_at(fd, "hello", 0);
  EXPECT_EQ(::fsync(fd), 0) << std::strerror(errno);
  write_at(fd, " world", 5);
  EXPECT_EQ(::fdatasync(fd), 0) << std::strerror(errno);
  write_at(fd, "!", 11);
  EXPECT_EQ(::close(fd), 0) << std::strerror(errno);
  ASSERT_EQ(::mkdir((mnt_ + "/d").c_str(), 0755), 0);
  EXPECT_EQ(::rename((mnt_ + "/f").c_str(), (mnt_ + "/d/g").c_str()), 0) << std::strerror(errno);
  EXPECT_EQ(read_file(backing_ + "/d/g"), "hello world!");
  EXPECT_EQ(engine_count("write"), 3u);
  EXPECT_EQ(engine_count("fsync"), 1u + fuse_count("dir_syncs"));
  EXPECT_EQ(engine_count("fdatasync"), 2u);  // the app's, and the one at close
  // The create, the mkdir, and the rename's two parents.
  EXPECT_EQ(fuse_count("dir_syncs"), 4u);
}

// By default every write runs on the FUSE worker, straight from the request's bytes (no
// registered buffer), an O_DSYNC write as pwrite then fdatasync. inline_io=writes sends
// that chain to the ring in a registered buffer; inline_io=off sends plain writes there too.
// (The /dev/fuse transport's path: on io_uring the queue's owner never waits for the device.)
constexpr char kDevTransport[] = "allow_other,default_permissions,transport=dev";
using DevTransport = MountedWith<kDevTransport>;

TEST_F(DevTransport, WritesAndChainsRunOnTheWorker) {
  const std::string s0 = stats();
  EXPECT_NE(json_word(s0, "notes").find("syncs and write+sync chains inline"), std::string::npos)
      << s0;
  // threads defaults to 10: one always stays free of device waits.
  EXPECT_EQ(json_number(s0, {"engine", "max_inline_waits"}), 9u) << s0;
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  for (int i = 0; i < 3; ++i) write_at(fd, std::string(4096, 'a' + i), i * 4096);
  int dsync = open_mnt("g", O_CREAT | O_WRONLY | O_DSYNC);
  write_at(dsync, "durable", 0);
  const std::string s1 = stats();
  ::close(dsync);
  ::close(fd);
  EXPECT_EQ(json_number(s1, {"engine", "ops", "write", "count"}), 3u);
  EXPECT_EQ(json_number(s1, {"engine", "ops", "write+fdatasync", "count"}), 1u);
  // The kernel's FSYNC after the O_DSYNC write is elided (syncs_skipped), not run.
  EXPECT_EQ(json_number(s1, {"engine", "inline_ops"}), 4u) << s1;
  EXPECT_EQ(json_number(s1, {"engine", "fixed_buffer_writes"}), 0u) << s1;
  EXPECT_EQ(json_number(s1, {"engine", "copied_writes"}), 0u) << s1;
  EXPECT_EQ(read_file(backing_ + "/f"),
            std::string(4096, 'a') + std::string(4096, 'b') + std::string(4096, 'c'));
  EXPECT_EQ(read_file(backing_ + "/g"), "durable");
}

// O_DIRECT opens are O_DIRECT on BACKING too; their writes, which run on the worker by
// default, are made from aligned memory (a FUSE request's bytes never are aligned).
TEST_F(DurabilityTest, ODirectWrites_PlainAndDsync) {
  for (int extra : {0, O_DSYNC}) {
    const std::string name = extra ? "dsync" : "plain";
    SCOPED_TRACE(name);
    int fd = ::open((mnt_ + "/" + name).c_str(), O_CREAT | O_WRONLY | O_DIRECT | extra | O_CLOEXEC,
                    0644);
    if (fd < 0 && errno == EINVAL)
      GTEST_SKIP() << "this kernel has no O_DIRECT for BACKING's filesystem";
    ASSERT_GE(fd, 0) << std::strerror(errno);
    void* mem = nullptr;
    ASSERT_EQ(::posix_memalign(&mem, 4096, 8192), 0);
    std::memset(mem, 'd', 8192);
    EXPECT_EQ(::pwrite(fd, mem, 8192, 0), 8192) << std::strerror(errno);
    std::free(mem);
    EXPECT_EQ(::close(fd), 0);
    EXPECT_EQ(read_file(backing_ + "/" + name), std::string(8192, 'd'));
  }
}

TEST_F(InlineWrites, PlainWritesRunOnTheWorker_ChainsGoToTheRing) {
  EXPECT_NE(json_word(stats(), "notes").find("plain writes and reads inline"), std::string::npos);
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  for (int i = 0; i < 3; ++i) write_at(fd, std::string(4096, 'a' + i), i * 4096);
  int dsync = open_mnt("g", O_CREAT | O_WRONLY | O_DSYNC);
  write_at(dsync, "durable", 0);
  ::close(dsync);
  ::close(fd);
  const std::string s1 = stats();
  EXPECT_EQ(json_number(s1, {"engine", "ops", "write", "count"}), 3u);
  EXPECT_EQ(json_number(s1, {"engine", "inline_ops"}), 3u);
  EXPECT_EQ(json_number(s1, {"engine", "ops", "write+fdatasync", "count"}), 1u);
  EXPECT_EQ(json_number(s1, {"engine", "fixed_buffer_writes"}), 1u) << s1;
  EXPECT_EQ(read_file(backing_ + "/f"),
            std::string(4096, 'a') + std::string(4096, 'b') + std::string(4096, 'c'));
  EXPECT_EQ(read_file(backing_ + "/g"), "durable");
}

TEST_F(HandOff, PlainWritesGoToTheEngineThreads) {
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  for (int i = 0; i < 3; ++i) write_at(fd, std::string(4096, 'a' + i), i * 4096);
  ::close(fd);
  const std::string s = stats();
  EXPECT_EQ(json_number(s, {"engine", "ops", "write", "count"}), 3u);
  EXPECT_EQ(json_number(s, {"engine", "inline_ops"}), 0u);
  EXPECT_EQ(json_word(s, "notes").find("inline"), std::string::npos) << s;
  EXPECT_EQ(read_file(backing_ + "/f").size(), 3u * 4096);
}

TEST_F(DurabilityTest, LiveSwitch_AppliesToOperationsThatStartAfterIt) {
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  write_at(fd, "a", 0);
  EXPECT_EQ(engine_count("write"), 1u);

  ASSERT_EQ(set("user.fsysfs.durability", "strict"), 0);
  EXPECT_EQ(json_word(stats(), "durability"), "strict");
  write_at(fd, "b", 1);
  EXPECT_EQ(engine_count("write+fdatasync"), 1u);
  ASSERT_EQ(::mkdir((mnt_ + "/d").c_str(), 0755), 0);
  EXPECT_EQ(fuse_count("dir_syncs"), 1u);  // strict turns dirsync on (auto)

  ASSERT_EQ(set("user.fsysfs.dirsync", "off"), 0);
  ASSERT_EQ(::mkdir((mnt_ + "/e").c_str(), 0755), 0);
  EXPECT_EQ(fuse_count("dir_syncs"), 1u);

  ASSERT_EQ(set("user.fsysfs.durability", "none"), 0);
  write_at(fd, "c", 2);
  EXPECT_EQ(::fsync(fd), 0);
  EXPECT_EQ(engine_count("write"), 2u);
  EXPECT_EQ(fuse_count("syncs_skipped"), 1u);

  EXPECT_EQ(set("user.fsysfs.durability", "sometimes"), EINVAL);
  EXPECT_EQ(set("user.fsysfs.dirsync", "maybe"), EINVAL);
  EXPECT_EQ(set("user.fsysfs.nonsense", "1"), ENOTSUP);
  EXPECT_EQ(json_word(stats(), "durability"), "none");
  ::close(fd);
  EXPECT_EQ(read_file(backing_ + "/f"), "abc");
}

// Writers keep writing and syncing while the mode cycles through all four: no write may
// fail and every byte must land.
TEST_F(DurabilityTest, LiveSwitchUnderLoad_NoErrorNoLostWrite) {
  constexpr int kWriters = 4;
  constexpr int kBlocks = 300;
  constexpr size_t kBlock = 4096;
  std::atomic<bool> failed{false};
  std::atomic<int> done{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      int fd =
          ::open((mnt_ + "/w" + std::to_string(w)).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0) {
        failed = true;
        return;
      }
      for (int b = 0; b < kBlocks; ++b) {
        std::string block(kBlock, static_cast<char>('A' + (w * 7 + b) % 26));
        if (::pwrite(fd, block.data(), kBlock, static_cast<off_t>(b) * kBlock) !=
            static_cast<ssize_t>(kBlock)) {
          failed = true;
        }
        if (b % 16 == 0 && ::fdatasync(fd) != 0) failed = true;
      }
      if (::close(fd) != 0) failed = true;
      ++done;
    });
  }
  const char* modes[] = {"strict", "none", "close", "fsync"};
  int switches = 0;
  while (done.load() < kWriters) {
    ASSERT_EQ(set("user.fsysfs.durability", modes[switches % 4]), 0);
    ++switches;
    std::this_thread::yield();
  }
  for (auto& t : writers) t.join();
  EXPECT_FALSE(failed.load());
  EXPECT_GE(switches, 4);
  unmount();
  for (int w = 0; w < kWriters; ++w) {
    std::string got = read_file(backing_ + "/w" + std::to_string(w));
    ASSERT_EQ(got.size(), kBlocks * kBlock) << "writer " << w;
    for (int b = 0; b < kBlocks; ++b) {
      ASSERT_EQ(got.substr(b * kBlock, kBlock),
                std::string(kBlock, static_cast<char>('A' + (w * 7 + b) % 26)))
          << "writer " << w << " block " << b;
    }
  }
}

TEST_F(WritebackMount, StrictIsRefusedWhileTheKernelCachesWrites) {
  EXPECT_EQ(set("user.fsysfs.durability", "strict"), EINVAL);
  EXPECT_EQ(json_word(stats(), "durability"), "fsync");
  EXPECT_NE(stats().find("\"writeback_cache\":true"), std::string::npos);
  EXPECT_EQ(set("user.fsysfs.durability", "close"), 0);
}

// The kernel's rule for writeback errors (errseq): every open file that has not seen a
// sync error yet sees it once, on fsync or on close; files opened later do not.
TEST_F(DurabilityTest, SyncErrorReachesEveryOpenFileOfTheInodeOnce) {
  int a = open_mnt("f", O_CREAT | O_WRONLY);
  int b = open_mnt("f", O_WRONLY);
  int c = open_mnt("f", O_RDONLY);
  int other = open_mnt("g", O_CREAT | O_WRONLY);
  write_at(a, "data", 0);
  inject("op=fsync|fdatasync,path=/f,errno=EIO,count=1");
  errno = 0;
  EXPECT_EQ(::fsync(a), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_EQ(::fsync(a), 0);  // seen already
  int late = open_mnt("f", O_WRONLY);
  errno = 0;
  EXPECT_EQ(::fdatasync(b), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_EQ(::fdatasync(b), 0);
  EXPECT_EQ(::fsync(late), 0);   // opened after the error
  EXPECT_EQ(::fsync(other), 0);  // another inode
  errno = 0;
  EXPECT_EQ(::close(c), -1);  // close reports it to a file that has not seen it
  EXPECT_EQ(errno, EIO);
  EXPECT_EQ(::close(a), 0);
  EXPECT_EQ(::close(b), 0);
  EXPECT_EQ(::close(late), 0);
  EXPECT_EQ(::close(other), 0);
  const std::string s = stats();
  EXPECT_EQ(json_number(s, {"fuse", "errors", "EIO"}), 3u);
  EXPECT_EQ(json_number(s, {"fuse", "faults_injected"}), 1u);
}

TEST_F(DurabilityTest, InjectedWriteErrorsReachTheApp_AndTheMountStaysUsable) {
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  inject("op=write,errno=ENOSPC,count=1");
  errno = 0;
  EXPECT_EQ(::pwrite(fd, "abc", 3, 0), -1);
  EXPECT_EQ(errno, ENOSPC);
  write_at(fd, "abc", 0);
  inject("op=write,path=/f,errno=EDQUOT,count=2");
  errno = 0;
  EXPECT_EQ(::pwrite(fd, "xyz", 3, 0), -1);
  EXPECT_EQ(errno, EDQUOT);
  int g = open_mnt("g", O_CREAT | O_WRONLY);
  write_at(g, "g", 0);  // outside the glob
  ::close(g);
  ::close(fd);
  EXPECT_EQ(read_file(backing_ + "/f"), "abc");
  std::vector<char> buf(4096);
  ssize_t n = ::getxattr(control().c_str(), "user.fsysfs.faults", buf.data(), buf.size());
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf.data(), n),
            "op=write,errno=ENOSPC,count=1 (hits 1, left 0)\n"
            "op=write,path=/f,errno=EDQUOT,count=2 (hits 1, left 1)\n");
  ASSERT_EQ(set("user.fsysfs.inject.clear", "1"), 0);
  fd = open_mnt("f", O_WRONLY);
  write_at(fd, "ok", 0);
  ::close(fd);
}

TEST_F(StrictMode, AFailedWriteChainFailsTheWrite) {
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  inject("op=write,errno=EIO,count=1");
  errno = 0;
  EXPECT_EQ(::pwrite(fd, "abc", 3, 0), -1);
  EXPECT_EQ(errno, EIO);
  write_at(fd, "abc", 0);
  ::close(fd);
  EXPECT_EQ(engine_count("write+fdatasync"), 1u);
}

TEST_F(DurabilityTest, InjectedErrorsOnNamespaceOps_MatchTheirGlob) {
  const std::string m = mnt_ + "/";
  ASSERT_EQ(::mkdir((m + "dir").c_str(), 0755), 0);
  write_file(m + "a", "a");
  inject("op=rename,path=/a,errno=EROFS");
  inject("op=create|mknod|mkdir,path=/dir/*,errno=EDQUOT");
  inject("op=unlink,errno=EBUSY,count=1");
  errno = 0;
  EXPECT_EQ(::rename((m + "a").c_str(), (m + "b").c_str()), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::open((m + "dir/x").c_str(), O_CREAT | O_WRONLY, 0644), -1);
  EXPECT_EQ(errno, EDQUOT);
  EXPECT_EQ(::mkdir((m + "dir/y").c_str(), 0755), -1);
  EXPECT_EQ(errno, EDQUOT);
  EXPECT_EQ(::mkfifo((m + "dir/z").c_str(), 0600), -1);
  EXPECT_EQ(errno, EDQUOT);
  EXPECT_EQ(::mkdir((m + "y").c_str(), 0755), 0);  // outside the glob
  EXPECT_EQ(::unlink((m + "a").c_str()), -1);
  EXPECT_EQ(errno, EBUSY);
  struct stat st;
  EXPECT_EQ(::lstat((backing_ + "/a").c_str(), &st), 0);  // nothing happened
  EXPECT_EQ(::lstat((backing_ + "/dir/x").c_str(), &st), -1);
  EXPECT_EQ(::unlink((m + "a").c_str()), 0);  // the count ran out
  EXPECT_EQ(fuse_count("faults_injected"), 5u);
}

TEST_F(DurabilityTest, InjectedDelayHoldsTheRequest) {
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  inject("op=fsync,delay_ms=150,count=1");
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(::fsync(fd), 0);
  // A lower bound only: the rule sleeps at least this long before the sync.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));
  ::close(fd);
}

TEST_F(DurabilityTest, BadFaultRulesAreRefused) {
  for (const char* bad : {"op=teleport,errno=EIO", "op=write", "op=write,errno=EWHAT",
                          "op=write,errno=EIO,count=0", "op=write,errno=EIO,probability=2",
                          "errno=EIO", "op=write,errno=EIO,colour=red", "op=write,errno"}) {
    EXPECT_EQ(set("user.fsysfs.inject", bad), EINVAL) << bad;
  }
  EXPECT_EQ(json_number(stats(), {"fuse", "faults_injected"}), 0u);
  EXPECT_EQ(stats().find("\"faults\":[]"), stats().rfind("\"faults\":[]"));
  EXPECT_NE(stats().find("\"faults\":[]"), std::string::npos);
}

TEST_F(DurabilityTest, ControlFileIsHiddenAndItsNameReservedInTheRootOnly) {
  write_file(backing_ + "/.fsysfs", "shadowed");
  const std::string m = mnt_ + "/";
  DIR* d = ::opendir(mnt_.c_str());
  ASSERT_NE(d, nullptr);
  bool listed = false;
  while (dirent* e = ::readdir(d)) listed |= std::string_view(e->d_name) == ".fsysfs";
  ::closedir(d);
  EXPECT_FALSE(listed);

  struct stat st;
  ASSERT_EQ(::lstat(control().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(st.st_uid, ::getuid());
  errno = 0;
  EXPECT_EQ(::open(control().c_str(), O_RDONLY), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::open(control().c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(::mkdir(control().c_str(), 0755), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(::unlink(control().c_str()), -1);
  EXPECT_EQ(errno, EPERM);
  write_file(m + "x", "x");
  EXPECT_EQ(::rename((m + "x").c_str(), control().c_str()), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::rename(control().c_str(), (m + "y").c_str()), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::chmod(control().c_str(), 0600), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(read_file(backing_ + "/.fsysfs"), "shadowed");

  // Anywhere else it is an ordinary name.
  ASSERT_EQ(::mkdir((m + "sub").c_str(), 0755), 0);
  write_file(m + "sub/.fsysfs", "plain");
  EXPECT_EQ(read_file(backing_ + "/sub/.fsysfs"), "plain");
}

TEST_F(DurabilityTest, AnyoneReadsStats_OnlyRootOrTheOwnerChangesSettings) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setresgid(kNobody, kNobody, kNobody) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0) {
      _exit(10);
    }
    char buf[65536];
    if (::getxattr(control().c_str(), "user.fsysfs.stats.json", buf, sizeof buf) <= 0) _exit(11);
    if (::setxattr(control().c_str(), "user.fsysfs.durability", "none", 4, 0) == 0) _exit(12);
    if (errno != EACCES && errno != EPERM) _exit(13);
    if (::setxattr(control().c_str(), "user.fsysfs.inject", "op=all,errno=EIO", 16, 0) == 0) {
      _exit(14);
    }
    if (::setxattr(control().c_str(), "user.fsysfs.stats.reset", "1", 1, 0) == 0) _exit(15);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(json_word(stats(), "durability"), "fsync");
  EXPECT_NE(stats().find("\"faults\":[]"), std::string::npos);
}

TEST_F(DurabilityTest, StatsCountErrorsByErrno_AndReset) {
  struct stat st;
  // Three names: the kernel remembers a missing one (negative_timeout) and asks once.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(::lstat((mnt_ + "/missing" + std::to_string(i)).c_str(), &st), -1);
  }
  EXPECT_GE(json_number(stats(), {"fuse", "errors", "ENOENT"}), 3u);
  int fd = open_mnt("f", O_CREAT | O_WRONLY);
  write_at(fd, "x", 0);
  ::close(fd);
  ASSERT_EQ(set("user.fsysfs.stats.reset", "1"), 0);
  const std::string s = stats();
  EXPECT_EQ(json_number(s, {"engine", "ops", "write", "count"}), 0u);
  EXPECT_EQ(json_number(s, {"fuse", "ops", "write"}), 0u);
  EXPECT_EQ(s.find("\"ENOENT\""), std::string::npos);
}

}  // namespace
}  // namespace fsysfs::test
