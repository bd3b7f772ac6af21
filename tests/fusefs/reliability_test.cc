// Reliability under faults, on real mounts: a full backing filesystem, backing errors
// (injected through the control file) while other work goes on, the daemon killed with
// SIGKILL under load, io_uring denied by seccomp, and the mount detached underneath the
// daemon. Every check reads real bytes on the backing directory. SIGTERM under load is in
// integrity_test.cc.

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/poll.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"
#include "tests/fusefs/stats_json.h"

namespace fsysfs::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// ---- data ----------------------------------------------------------------------------

// FNV-1a: a checksum to compare and report, not a security property.
uint64_t checksum(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : data) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

bool pwrite_all(int fd, std::string_view d, off_t off) {
  size_t done = 0;
  while (done < d.size()) {
    ssize_t n = ::pwrite(fd, d.data() + done, d.size() - done, off + static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// The whole file, or nullopt (errno set) when it cannot be opened or read.
std::optional<std::string> slurp(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string data;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
  const int e = errno;
  ::close(fd);
  if (n < 0) {
    errno = e;
    return std::nullopt;
  }
  return data;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// ---- processes -----------------------------------------------------------------------

// Runs a command, stdout and stderr into `out`; its exit code, or -1 if it did not exit.
int run_command(const std::vector<std::string>& argv, std::string* out = nullptr) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return -1;
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    _exit(127);
  }
  ::close(pipefd[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (out != nullptr) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Waits up to `deadline` for child `pid` to end, without polling: a pidfd becomes readable
// when the process exits. True (and `*status`) when it was reaped.
bool wait_child(pid_t pid, Clock::duration deadline, int* status) {
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline).count();
    int r;
    do {
      r = ::poll(&p, 1, static_cast<int>(ms));
    } while (r < 0 && errno == EINTR);
    ::close(pidfd);
    if (r == 0) return false;
  }
  return ::waitpid(pid, status, 0) == pid;
}

// mountinfo lines of fuse.fsysfs mounts whose source (fsname) is `backing`.
std::vector<std::string> fsysfs_mounts_of(const std::string& backing) {
  std::ifstream in("/proc/self/mountinfo");
  std::vector<std::string> found;
  std::string line;
  while (std::getline(in, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string type, source;
    rest >> type >> source;
    if (type == "fuse.fsysfs" && source == backing) found.push_back(line);
  }
  return found;
}

class ReliabilityTest : public MountFixture {
 protected:
  std::string control() const { return mnt_ + "/.fsysfs"; }

  std::string stats() { return read_stats_json(mnt_); }
  uint64_t fuse_count(std::string_view key) { return json_count(stats(), {"fuse", key}); }
  uint64_t error_replies(std::string_view name) {
    return json_count(stats(), {"fuse", "errors", name});
  }

  int set(const char* attr, std::string_view value) {
    return ::setxattr(control().c_str(), attr, value.data(), value.size(), 0) == 0 ? 0 : errno;
  }
  void inject(std::string_view rule) { ASSERT_EQ(set("user.fsysfs.inject", rule), 0) << rule; }
  void clear_faults() { ASSERT_EQ(set("user.fsysfs.inject.clear", "1"), 0); }

  // Waits for the daemon to exit on its own; its wait status, or nullopt after the
  // deadline (the daemon is then killed). Either way the fixture no longer owns it.
  std::optional<int> await_daemon_exit(Clock::duration deadline) {
    int status = 0;
    const pid_t pid = daemon_;
    daemon_ = -1;
    if (wait_child(pid, deadline, &status)) return status;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return std::nullopt;
  }
};

// ---- 1. the backing filesystem fills up ----------------------------------------------

// BACKING is a small filesystem of its own: a 32 MiB ext4 image on a loop device, or, where
// loop devices are unavailable, an 8 MiB tmpfs. The parameter is the durability mode.
class BackingFull : public ReliabilityTest, public ::testing::WithParamInterface<const char*> {
 protected:
  std::string mount_options() const override {
    return std::string("allow_other,durability=") + GetParam();
  }
  const char* other_mode() const {
    return std::string_view(GetParam()) == "strict" ? "fsync" : "strict";
  }

  void SetUp() override {
    char tmpl[] = "/tmp/fsysfs-rel.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    base_ = tmpl;
    ASSERT_EQ(::chmod(base_.c_str(), 0755), 0);
    backing_ = base_ + "/backing";
    mnt_ = base_ + "/mnt";
    plain_ = base_ + "/plain";
    log_ = base_ + "/daemon.log";
    for (auto* d : {&backing_, &mnt_, &plain_}) ASSERT_EQ(::mkdir(d->c_str(), 0755), 0);

    // The image lives in memory where it can (/dev/shm): the test is about a full disk, not
    // about the speed of a disk that other work on the machine may be keeping busy.
    char image_tmpl[] = "/dev/shm/fsysfs-rel-disk.XXXXXX";
    int fd = ::mkstemp(image_tmpl);
    std::string image = image_tmpl;
    if (fd < 0) {
      image = base_ + "/disk.img";
      fd = ::open(image.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    }
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(::ftruncate(fd, 32 << 20), 0);
    ::close(fd);
    std::string why_not;
    // -m 0: no blocks reserved for root (the daemon writes as root). No lazy init: no
    // background thread writes the image during the test.
    if (run_command({"mkfs.ext4", "-q", "-F", "-m", "0", "-E",
                     "lazy_itable_init=0,lazy_journal_init=0", image},
                    &why_not) == 0 &&
        run_command({"mount", "-o", "loop", image, backing_}, &why_not) == 0) {
      small_fs_ = "ext4 32 MiB on a loop device";
    } else if (::mount("tmpfs", backing_.c_str(), "tmpfs", 0, "size=8m,mode=0755") == 0) {
      small_fs_ = "tmpfs 8 MiB";
    } else {
      ::unlink(image.c_str());
      GTEST_SKIP() << "cannot make a small backing filesystem here (no loop-mounted ext4: "
                   << why_not << "; no tmpfs: " << std::strerror(errno) << ")";
    }
    backing_mounted_ = true;
    ::unlink(image.c_str());  // the loop device holds it open; it goes with the umount
    mount();
  }

  void TearDown() override {
    unmount();
    if (backing_mounted_ && ::umount2(backing_.c_str(), 0) != 0) {
      ADD_FAILURE() << "cannot unmount the small backing fs: " << std::strerror(errno);
      ::umount2(backing_.c_str(), MNT_DETACH);
    }
    MountFixture::TearDown();
  }

  // Free bytes on the backing fs as seen through the mount (statfs passes through).
  uint64_t free_bytes() {
    struct statvfs sv;
    EXPECT_EQ(::statvfs(mnt_.c_str(), &sv), 0) << std::strerror(errno);
    return static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
  }

  std::string small_fs_;
  bool backing_mounted_ = false;
};

struct Filled {
  uint64_t accepted = 0;  // bytes the writes returned
  int short_writes = 0;
  int error = 0;  // the errno that stopped the writes
};

constexpr size_t kAlignedChunk = 256 << 10;

// Appends pattern(2, ...) to `fd` in `chunk`-sized writes until a write fails (or 64 MiB,
// more than the small fs holds).
Filled fill_disk(int fd, size_t chunk) {
  Filled f;
  while (f.accepted < (64u << 20)) {
    const std::string data = pattern(2, f.accepted, chunk);
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(f.accepted));
    if (n < 0) {
      f.error = errno;
      break;
    }
    if (static_cast<size_t>(n) < chunk) ++f.short_writes;
    f.accepted += static_cast<uint64_t>(n);
  }
  return f;
}

TEST_P(BackingFull, WritesGetEnospc_MountStaysUsable_SyncedDataIntact_FreeingSpaceHeals) {
  RecordProperty("backing", small_fs_);
  const std::string m = mnt_ + "/";

  // Data made durable before the disk fills.
  const std::string kept = pattern(1, 0, 2 << 20);
  {
    int fd = ::open((m + "kept").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_TRUE(pwrite_all(fd, kept, 0)) << std::strerror(errno);
    ASSERT_EQ(::fsync(fd), 0) << std::strerror(errno);
    ASSERT_EQ(::close(fd), 0);
  }

  // Fill the disk; a sync of what the backing fs accepted succeeds (ext4 and tmpfs reserve
  // space at write time), or, on a backing fs that allocates at writeback, reports ENOSPC,
  // which the application must then see.
  int fill = ::open((m + "fill").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fill, 0) << std::strerror(errno);
  const Filled filled_up = fill_disk(fill, kAlignedChunk);
  ASSERT_EQ(filled_up.error, ENOSPC)
      << "after " << filled_up.accepted << " bytes: " << errno_name(filled_up.error);
  const uint64_t accepted = filled_up.accepted;
  const int fsync_errno = ::fsync(fill) == 0 ? 0 : errno;
  EXPECT_TRUE(fsync_errno == 0 || fsync_errno == ENOSPC) << errno_name(fsync_errno);
  RecordProperty("fill_bytes_accepted", std::to_string(accepted));
  RecordProperty("fill_short_writes", filled_up.short_writes);
  RecordProperty("fill_fsync", fsync_errno == 0 ? "ok" : errno_name(fsync_errno));

  // A write to another file fails the same way, in this mode and in the other one (a plain
  // write, or a strict linked write+fdatasync).
  int more = ::open((m + "more").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (more < 0) {
    EXPECT_EQ(errno, ENOSPC) << "create on a full disk: " << errno_name(errno);
  } else {
    const std::string block = pattern(3, 0, kAlignedChunk);
    errno = 0;
    EXPECT_EQ(::pwrite(more, block.data(), block.size(), 0), -1);
    EXPECT_EQ(errno, ENOSPC) << errno_name(errno);
    ASSERT_EQ(set("user.fsysfs.durability", other_mode()), 0);
    errno = 0;
    EXPECT_EQ(::pwrite(more, block.data(), block.size(), 0), -1);
    EXPECT_EQ(errno, ENOSPC) << errno_name(errno);
    ASSERT_EQ(set("user.fsysfs.durability", GetParam()), 0);
    EXPECT_EQ(::close(more), 0);
  }
  EXPECT_GE(error_replies("ENOSPC"), 1u);

  struct stat st;
  // The mount stays usable: stat, readdir, read of the synced file (checksum on both sides),
  // the control file, unlink.
  ASSERT_EQ(::stat((m + "kept").c_str(), &st), 0) << std::strerror(errno);
  EXPECT_EQ(static_cast<size_t>(st.st_size), kept.size());
  auto through_mount = slurp(m + "kept");
  ASSERT_TRUE(through_mount.has_value()) << std::strerror(errno);
  EXPECT_EQ(checksum(*through_mount), checksum(kept));
  auto on_backing = slurp(backing_ + "/kept");
  ASSERT_TRUE(on_backing.has_value());
  EXPECT_EQ(checksum(*on_backing), checksum(kept));
  // Every accepted byte reads back (the exact size is ShortWriteAtTheEdge's subject).
  auto filled = slurp(m + "fill");
  ASSERT_TRUE(filled.has_value()) << std::strerror(errno);
  ASSERT_GE(filled->size(), accepted);
  EXPECT_TRUE(filled->compare(0, accepted, pattern(2, 0, accepted)) == 0)
      << "the accepted bytes of fill differ";
  EXPECT_EQ(::close(fill), 0);
  ASSERT_EQ(::unlink((m + "fill").c_str()), 0) << std::strerror(errno);
  if (more >= 0) {
    ASSERT_EQ(::unlink((m + "more").c_str()), 0) << std::strerror(errno);
  }
  EXPECT_FALSE(exists(backing_ + "/fill"));

  // The backing blocks are released when the daemon drops its O_PATH fd of the inode, on the
  // kernel's FORGET, which follows the unlink asynchronously: wait for the space to show.
  constexpr uint64_t kWant = 8 << 20;
  const auto end = Clock::now() + 15s;
  while (free_bytes() < kWant && Clock::now() < end) std::this_thread::sleep_for(10ms);
  ASSERT_GE(free_bytes(), kWant) << "space of the unlinked file was not released";

  // Writes succeed again.
  const std::string after = pattern(4, 0, 4 << 20);
  int fd = ::open((m + "after").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  EXPECT_TRUE(pwrite_all(fd, after, 0)) << std::strerror(errno);
  EXPECT_EQ(::fsync(fd), 0) << std::strerror(errno);
  EXPECT_EQ(::close(fd), 0);
  on_backing = slurp(backing_ + "/after");
  ASSERT_TRUE(on_backing.has_value());
  EXPECT_EQ(checksum(*on_backing), checksum(after));
  EXPECT_EQ(checksum(*slurp(backing_ + "/kept")), checksum(kept));
}

// The write that meets the end of the disk: the backing fs takes part of it. The
// application must be told exactly that (a short write, as a local fs says, and in strict
// mode the part that landed is synced first, as an O_DSYNC write does), and the next write
// gets ENOSPC. Chunks of an odd size make the last one straddle the edge.
class DiskEdge : public BackingFull {};

TEST_P(DiskEdge, ShortWriteAtTheEdge_ReportsExactlyWhatLanded) {
  int fd = ::open((mnt_ + "/fill").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const Filled f = fill_disk(fd, 300001);
  ASSERT_EQ(f.error, ENOSPC) << "after " << f.accepted << " bytes: " << errno_name(f.error);
  RecordProperty("fill_bytes_accepted", std::to_string(f.accepted));
  RecordProperty("fill_short_writes", f.short_writes);
  struct stat st;
  ASSERT_EQ(::stat((backing_ + "/fill").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), f.accepted)
      << "the backing file holds bytes whose write the application was told failed";
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), f.accepted);
  EXPECT_EQ(::close(fd), 0);
  auto data = slurp(backing_ + "/fill");
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(checksum(*data), checksum(pattern(2, 0, f.accepted)));
}

INSTANTIATE_TEST_SUITE_P(Durability, BackingFull, ::testing::Values("fsync", "strict"));
// In strict mode a linked write+fdatasync whose write lands in part syncs that part and
// reports it as a short write, as the kernel's O_DSYNC path does.
INSTANTIATE_TEST_SUITE_P(Modes, DiskEdge, ::testing::Values("fsync", "strict"));

// ---- 2. backing errors while other work goes on --------------------------------------

// Runs full cycles on its own files (create, write, fsync, read back through a fresh open,
// rename, stat, unlink) until stopped. Every call must succeed and every byte match.
class Bystander {
 public:
  explicit Bystander(std::string dir) : dir_(std::move(dir)) {}
  ~Bystander() { stop(); }

  void start() {
    thread_ = std::thread([this] { loop(); });
  }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  uint64_t rounds() {
    std::lock_guard lock(mu_);
    return rounds_;
  }
  // Blocks until `target` rounds are done (true), or the deadline or a failure.
  bool wait_for_rounds(uint64_t target, Clock::duration deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, deadline, [&] { return rounds_ >= target || !error_.empty(); }) &&
           rounds_ >= target;
  }
  std::string error() {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  void fail(const std::string& what) {
    const int e = errno;
    std::lock_guard lock(mu_);
    if (error_.empty()) error_ = what + ": " + errno_name(e);
    cv_.notify_all();
  }
  bool round(uint64_t i) {
    const std::string a = dir_ + "/f" + std::to_string(i % 4);
    const std::string b = dir_ + "/g" + std::to_string(i % 4);
    const std::string data = pattern(100 + i, 0, 8192 + i % 4096);
    int fd = ::open(a.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return fail("create " + a), false;
    bool ok = pwrite_all(fd, data, 0);
    if (!ok) fail("write " + a);
    if (ok && ::fsync(fd) != 0) ok = false, fail("fsync " + a);
    if (::close(fd) != 0 && ok) ok = false, fail("close " + a);
    if (!ok) return false;
    auto back = slurp(a);
    if (!back) return fail("read " + a), false;
    if (*back != data) return errno = 0, fail("wrong bytes read from " + a), false;
    if (::rename(a.c_str(), b.c_str()) != 0) return fail("rename " + a), false;
    struct stat st;
    if (::stat(b.c_str(), &st) != 0) return fail("stat " + b), false;
    if (static_cast<size_t>(st.st_size) != data.size()) {
      return errno = 0, fail("wrong size of " + b), false;
    }
    if (::unlink(b.c_str()) != 0) return fail("unlink " + b), false;
    return true;
  }
  void loop() {
    for (uint64_t i = 0; !stop_.load(); ++i) {
      if (!round(i)) return;
      std::lock_guard lock(mu_);
      ++rounds_;
      cv_.notify_all();
    }
  }

  const std::string dir_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;  // guards rounds_ and error_
  std::condition_variable cv_;
  uint64_t rounds_ = 0;
  std::string error_;
};

constexpr auto kBystanderDeadline = 60s;

TEST_F(ReliabilityTest, InjectedEioReachesTheApp_WhileEverythingElseIsServed) {
  const std::string m = mnt_ + "/";
  const std::string b = backing_ + "/";
  ASSERT_EQ(::mkdir((m + "faulty").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((m + "ok").c_str(), 0755), 0);
  write_file(b + "faulty/w", "before");
  write_file(b + "faulty/r", "readable");
  write_file(b + "faulty/a", "a");
  write_file(b + "faulty/slow", "slow");

  Bystander bystander(m + "ok");
  bystander.start();
  uint64_t expected_faults = 0;
  // Each rule stays armed until the bystander has completed a full round of its own.
  auto bystander_round = [&] {
    ASSERT_TRUE(bystander.wait_for_rounds(bystander.rounds() + 1, kBystanderDeadline))
        << "bystander stalled: " << bystander.error();
  };

  {
    SCOPED_TRACE("write");
    int fd = ::open((m + "faulty/w").c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    inject("op=write,path=/faulty/*,errno=EIO");
    errno = 0;
    EXPECT_EQ(::pwrite(fd, "after!", 6, 0), -1);
    EXPECT_EQ(errno, EIO);
    ++expected_faults;
    bystander_round();
    clear_faults();
    EXPECT_EQ(::close(fd), 0);
    EXPECT_EQ(read_file(b + "faulty/w"), "before");
  }
  {
    SCOPED_TRACE("fsync, fdatasync");
    int fd = ::open((m + "faulty/w").c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(pwrite_all(fd, "synced", 0));
    inject("op=fsync|fdatasync,path=/faulty/*,errno=EIO");
    errno = 0;
    EXPECT_EQ(::fsync(fd), -1);
    EXPECT_EQ(errno, EIO);
    errno = 0;
    EXPECT_EQ(::fdatasync(fd), -1);
    EXPECT_EQ(errno, EIO);
    expected_faults += 2;
    bystander_round();
    clear_faults();
    EXPECT_EQ(::fsync(fd), 0);  // this handle has seen the error; the fault is gone
    EXPECT_EQ(::close(fd), 0);
  }
  {
    SCOPED_TRACE("read");
    inject("op=read,path=/faulty/*,errno=EIO");
    int fd = ::open((m + "faulty/r").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    char buf[64];
    errno = 0;
    EXPECT_EQ(::read(fd, buf, sizeof buf), -1);
    EXPECT_EQ(errno, EIO);
    ++expected_faults;
    bystander_round();
    clear_faults();
    EXPECT_EQ(::close(fd), 0);
    EXPECT_EQ(read_file(m + "faulty/r"), "readable");
  }
  {
    SCOPED_TRACE("create, rename, unlink");
    inject("op=create|rename|unlink,path=/faulty/*,errno=EIO");
    errno = 0;
    EXPECT_EQ(::open((m + "faulty/new").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644), -1);
    EXPECT_EQ(errno, EIO);
    errno = 0;
    EXPECT_EQ(::rename((m + "faulty/a").c_str(), (m + "faulty/b").c_str()), -1);
    EXPECT_EQ(errno, EIO);
    errno = 0;
    EXPECT_EQ(::unlink((m + "faulty/a").c_str()), -1);
    EXPECT_EQ(errno, EIO);
    expected_faults += 3;
    bystander_round();
    clear_faults();
    // Nothing happened on the backing directory.
    EXPECT_FALSE(exists(b + "faulty/new"));
    EXPECT_FALSE(exists(b + "faulty/b"));
    EXPECT_EQ(read_file(b + "faulty/a"), "a");
  }
  {
    // A request held inside the daemon (a disk that hangs, then fails) does not hold up
    // anyone else: the bystander completes whole rounds, fsyncs included, meanwhile.
    SCOPED_TRACE("stalled fsync");
    int fd = ::open((m + "faulty/slow").c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    const uint64_t faults_before = fuse_count("faults_injected");
    inject("op=fsync,path=/faulty/slow,errno=EIO,delay_ms=8000,count=1");
    std::atomic<bool> returned{false};
    int stalled_errno = 0;
    const auto start = Clock::now();
    std::thread stalled([&] {
      stalled_errno = ::fsync(fd) == 0 ? 0 : errno;
      returned = true;
    });
    // The rule counts its hit before it starts waiting.
    const auto end = Clock::now() + 30s;
    while (fuse_count("faults_injected") == faults_before && Clock::now() < end) {
      std::this_thread::yield();
    }
    const uint64_t rounds_before = bystander.rounds();
    EXPECT_TRUE(bystander.wait_for_rounds(rounds_before + 2, kBystanderDeadline))
        << bystander.error();
    const bool overtaken = !returned.load();
    const auto overtaken_after = Clock::now() - start;
    stalled.join();
    ++expected_faults;
    EXPECT_TRUE(overtaken) << "the bystander could not finish two rounds during a stalled fsync";
    EXPECT_EQ(stalled_errno, EIO);
    EXPECT_GE(Clock::now() - start, 8000ms);
    RecordProperty(
        "bystander_two_rounds_during_stall_ms",
        std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(overtaken_after).count()));
    EXPECT_EQ(::close(fd), 0);
  }

  bystander_round();
  bystander.stop();
  EXPECT_EQ(bystander.error(), "");
  RecordProperty("bystander_rounds", std::to_string(bystander.rounds()));
  const std::string s = stats();
  // A failed buffered read is retried once by the kernel (readahead, then a read of the
  // single page), so the read fault may fire twice; every EIO the daemon sent was injected.
  const uint64_t injected = json_count(s, {"fuse", "faults_injected"});
  EXPECT_GE(injected, expected_faults);
  EXPECT_LE(injected, expected_faults + 1);
  EXPECT_EQ(json_count(s, {"fuse", "errors", "EIO"}), injected);
  // After every fault, the faulty files still work.
  write_file(m + "faulty/w", "fine");
  EXPECT_EQ(read_file(b + "faulty/w"), "fine");
}

// ---- 3. the daemon is killed under load ----------------------------------------------

// Writers wrap around a fixed-size file, so the load runs until the kill instead of until
// a size is reached. Write n of writer t puts block n % kFileBlocks of lap n / kFileBlocks;
// each (writer, lap, block) has its own bytes, so the backing file shows which write of a
// block landed last.
constexpr int kWriters = 4;
constexpr size_t kBlock = 16384;
constexpr uint64_t kFileBlocks = 128;
constexpr uint64_t kSyncEvery = 8;  // durability=fsync: writes per fsync

std::string lap_block(int writer, uint64_t n) {
  const uint64_t lap = n / kFileBlocks, block = n % kFileBlocks;
  return pattern(static_cast<uint64_t>(writer) * 1000003 + lap, block * kBlock, kBlock);
}

template <const char* kOptions>
class KilledWith : public ReliabilityTest {
 protected:
  std::string mount_options() const override { return kOptions; }
  void killed_mid_load_keeps_acknowledged_writes(bool strict);
};

constexpr char kFsyncMode[] = "allow_other,durability=fsync";
constexpr char kStrictMode[] = "allow_other,durability=strict";
using KilledInFsyncMode = KilledWith<kFsyncMode>;
using KilledInStrictMode = KilledWith<kStrictMode>;

// What a SIGKILL of the daemon can be checked for without a power cut: every write the
// application was told is durable (fsync returned, or any write in strict) has reached
// the backing filesystem. Whether it also reached stable storage only a power cut shows;
// tracefs_test.cc checks that the syncs are issued. Since a killed process loses nothing
// that is already in the backing fs's cache, every acknowledged write must be there too,
// durable or not, which is what is checked here, as the stronger property.
template <const char* kOptions>
void KilledWith<kOptions>::killed_mid_load_keeps_acknowledged_writes(bool strict) {
  struct Progress {
    std::atomic<uint64_t> issued{0};   // writes started
    std::atomic<uint64_t> acked{0};    // writes that returned in full
    std::atomic<uint64_t> durable{0};  // writes covered by a successful fsync (or strict)
    int error = 0;                     // the call that failed after the kill
    std::string failed_call;
  };
  std::vector<Progress> progress(kWriters);
  std::vector<std::thread> writers;
  for (int t = 0; t < kWriters; ++t) {
    writers.emplace_back([&, t] {
      Progress& p = progress[t];
      int fd =
          ::open((mnt_ + "/w" + std::to_string(t)).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0) {
        p.error = errno;
        p.failed_call = "open";
        return;
      }
      // Bounded in case the kill never comes (the test then fails on the deadline below).
      const auto end = Clock::now() + 120s;
      for (uint64_t n = 0; Clock::now() < end; ++n) {
        p.issued = n + 1;
        const std::string data = lap_block(t, n);
        const off_t off = static_cast<off_t>((n % kFileBlocks) * kBlock);
        if (::pwrite(fd, data.data(), data.size(), off) != static_cast<ssize_t>(data.size())) {
          p.error = errno;
          p.failed_call = "pwrite";
          break;
        }
        p.acked = n + 1;
        if (strict) {
          p.durable = n + 1;
        } else if ((n + 1) % kSyncEvery == 0) {
          if (::fsync(fd) != 0) {
            p.error = errno;
            p.failed_call = "fsync";
            break;
          }
          p.durable = n + 1;
        }
      }
      ::close(fd);
    });
  }

  // Kill once every writer has gone round its file more than once.
  const auto end = Clock::now() + 90s;
  auto all_lapped = [&] {
    for (auto& p : progress) {
      if (p.durable.load() < kFileBlocks + 2 * kSyncEvery) return false;
    }
    return true;
  };
  while (!all_lapped() && Clock::now() < end) std::this_thread::yield();
  ASSERT_TRUE(all_lapped()) << "the load did not get going";
  const pid_t pid = daemon_;
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  auto status = await_daemon_exit(15s);
  ASSERT_TRUE(status.has_value()) << "SIGKILL did not end the daemon";
  EXPECT_TRUE(WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << *status;
  for (auto& w : writers) w.join();

  uint64_t total_durable = 0, total_acked = 0;
  std::string errors;
  for (int t = 0; t < kWriters; ++t) {
    Progress& p = progress[t];
    errors += (t > 0 ? ", " : "") + p.failed_call + " " + errno_name(p.error);
    // On the io_uring transport a request the dead daemon held on its ring is ended by the
    // ring's teardown, with ECANCELED.
    EXPECT_TRUE(p.error == ENOTCONN || p.error == ECONNABORTED || p.error == ECANCELED)
        << "writer " << t << " " << p.failed_call << ": " << errno_name(p.error);
    total_durable += p.durable;
    total_acked += p.acked;
  }
  RecordProperty("writes_durable_at_kill", std::to_string(total_durable));
  RecordProperty("writes_acked_at_kill", std::to_string(total_acked));
  RecordProperty("writer_errors", errors);

  // The dead mount answers ENOTCONN and can be unmounted the ordinary way. (statfs, which the
  // kernel never answers from its caches: a stat within attr_timeout of the last one is.)
  struct statfs sfs;
  errno = 0;
  EXPECT_EQ(::statfs(mnt_.c_str(), &sfs), -1);
  EXPECT_EQ(errno, ENOTCONN) << errno_name(errno);
  EXPECT_TRUE(is_mounted(mnt_, "fuse.fsysfs"));
  std::string out;
  EXPECT_EQ(run_command({"fusermount3", "-u", mnt_}, &out), 0) << out;
  if (is_mounted(mnt_, "fuse.fsysfs")) ::umount2(mnt_.c_str(), MNT_DETACH);
  mounted_ = false;
  EXPECT_FALSE(is_mounted(mnt_, "fuse.fsysfs"));

  // Every acknowledged write is on the backing directory. For each block: the last
  // acknowledged write of it, or a later write that was in flight at the kill; a block no
  // acknowledged write reached may also be absent.
  std::vector<std::string> backing_data(kWriters);
  for (int t = 0; t < kWriters; ++t) {
    SCOPED_TRACE("writer " + std::to_string(t));
    const Progress& p = progress[t];
    const uint64_t acked = p.acked, issued = p.issued;
    auto data = slurp(backing_ + "/w" + std::to_string(t));
    ASSERT_TRUE(data.has_value());
    backing_data[t] = *data;
    int bad = 0;
    std::string first_bad;
    for (uint64_t block = 0; block < kFileBlocks; ++block) {
      const std::string got =
          block * kBlock < data->size() ? data->substr(block * kBlock, kBlock) : std::string();
      std::vector<uint64_t> allowed;  // write numbers whose bytes may be there
      std::optional<uint64_t> last_acked;
      if (acked > block) {
        last_acked = block + (acked - 1 - block) / kFileBlocks * kFileBlocks;
        allowed.push_back(*last_acked);
      }
      for (uint64_t n = acked; n < issued; ++n) {
        if (n % kFileBlocks == block) allowed.push_back(n);
      }
      bool ok = !last_acked && (got.empty() || got == std::string(kBlock, '\0'));
      for (uint64_t n : allowed) ok = ok || got == lap_block(t, n);
      if (!ok && bad++ == 0) {
        first_bad = "block " + std::to_string(block) +
                    (last_acked ? " (last acknowledged write " + std::to_string(*last_acked) + ")"
                                : std::string(" (never acknowledged)"));
      }
    }
    EXPECT_EQ(bad, 0) << "blocks without their acknowledged bytes, first: " << first_bad
                      << "; acked " << acked << ", durable " << p.durable.load() << ", issued "
                      << issued;
  }

  // And the same directory mounts again and shows the same bytes.
  mount();
  ASSERT_TRUE(mounted_);
  for (int t = 0; t < kWriters; ++t) {
    auto via_mount = slurp(mnt_ + "/w" + std::to_string(t));
    ASSERT_TRUE(via_mount.has_value()) << std::strerror(errno);
    EXPECT_EQ(checksum(*via_mount), checksum(backing_data[t])) << "writer " << t;
  }
  write_file(mnt_ + "/after", "remounted");
  EXPECT_EQ(read_file(backing_ + "/after"), "remounted");
}

TEST_F(KilledInFsyncMode, SigkillMidLoad_EnotconnRemountable_FsyncedWritesOnBacking) {
  killed_mid_load_keeps_acknowledged_writes(/*strict=*/false);
}

TEST_F(KilledInStrictMode, SigkillMidLoad_EnotconnRemountable_EveryAckedWriteOnBacking) {
  killed_mid_load_keeps_acknowledged_writes(/*strict=*/true);
}

// ---- 4. io_uring unavailable ---------------------------------------------------------

// The daemon runs under a seccomp filter (seccomp_launcher.cc) that fails io_uring_setup
// with the parameter's errno: EPERM as a container policy or kernel.io_uring_disabled=2
// gives, ENOSYS as a kernel without io_uring gives.
class NoUring : public ReliabilityTest, public ::testing::WithParamInterface<const char*> {
 protected:
  void SetUp() override {
    real_binary_ = daemon_binary();
    const char* old = std::getenv("FSYSFS_TEST_BINARY");
    const std::string saved = old != nullptr ? old : "";
    ::setenv("FSYSFS_SECCOMP_TARGET", real_binary_.c_str(), 1);
    ::setenv("FSYSFS_SECCOMP_ERRNO", GetParam(), 1);
    ::setenv("FSYSFS_TEST_BINARY", FSYSFS_SECCOMP_LAUNCHER, 1);
    MountFixture::SetUp();
    if (old != nullptr) {
      ::setenv("FSYSFS_TEST_BINARY", saved.c_str(), 1);
    } else {
      ::unsetenv("FSYSFS_TEST_BINARY");
    }
  }

  // Without io_uring the transport falls back to /dev/fuse too, whatever the suite runs on.
  std::string mount_options() const override {
    return ReliabilityTest::mount_options() + ",transport=auto";
  }

  std::string real_binary_;
};

TEST_P(NoUring, EngineFallsBack_MountWorks_StatsSayWhy) {
  const int denied = std::string_view(GetParam()) == "ENOSYS" ? ENOSYS : EPERM;
  const std::string m = mnt_ + "/";

  // Writes, fsync, fdatasync, and strict's write+fdatasync all work on the syscall backend.
  const std::string data = pattern(5, 0, 3 << 20);
  int fd = ::open((m + "f").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  EXPECT_TRUE(pwrite_all(fd, data, 0)) << std::strerror(errno);
  EXPECT_EQ(::fdatasync(fd), 0) << std::strerror(errno);
  EXPECT_EQ(::fsync(fd), 0) << std::strerror(errno);
  ASSERT_EQ(set("user.fsysfs.durability", "strict"), 0);
  const std::string tail = pattern(6, 0, 5000);
  EXPECT_TRUE(pwrite_all(fd, tail, static_cast<off_t>(data.size()))) << std::strerror(errno);
  EXPECT_EQ(::close(fd), 0);
  EXPECT_EQ(read_file(backing_ + "/f"), data + tail);
  EXPECT_EQ(read_file(m + "f"), data + tail);

  // What `fsysfs stats --json` shows (the command itself, not under the filter).
  std::string json;
  ASSERT_EQ(run_command({real_binary_, "stats", mnt_, "--json"}, &json), 0) << json;
  EXPECT_EQ(json_word(json, "backend"), "sync");
  const std::string notes = json_word(json, "notes");
  EXPECT_NE(notes.find("io_uring unavailable"), std::string::npos) << notes;
  EXPECT_NE(notes.find(std::strerror(denied)), std::string::npos) << notes;
  RecordProperty("notes", notes);
  // The transport falls back with it, and says why.
  EXPECT_EQ(json_word(json, "transport").rfind("/dev/fuse", 0), 0u) << json;
  EXPECT_GE(json_count(json, {"engine", "ops", "write", "count"}), 1u);
  EXPECT_EQ(json_count(json, {"engine", "ops", "write", "errors"}), 0u);
  EXPECT_EQ(json_count(json, {"engine", "ops", "fdatasync", "count"}), 1u);
  EXPECT_EQ(json_count(json, {"engine", "ops", "fsync", "count"}), 1u);
  EXPECT_GE(json_count(json, {"engine", "ops", "write+fdatasync", "count"}), 1u);
  EXPECT_EQ(json_count(json, {"engine", "ops", "write+fdatasync", "errors"}), 0u);

  // The log says it too.
  EXPECT_NE(read_file(log_).find("falling back to the syscall backend"), std::string::npos);
}

// engine=uring means "io_uring or nothing": the mount is refused with a message, and
// nothing is left mounted.
TEST_P(NoUring, EngineUringRefusesToMountWithoutARing) {
  unmount();
  const std::string mnt2 = base_ + "/mnt2";
  ASSERT_EQ(::mkdir(mnt2.c_str(), 0755), 0);
  std::string out;
  const int rc =
      run_command({FSYSFS_SECCOMP_LAUNCHER, "-f", "-o", "engine=uring", backing_, mnt2}, &out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("io_uring"), std::string::npos) << out;
  EXPECT_FALSE(is_mounted(mnt2, "fuse.fsysfs"));
  EXPECT_TRUE(fsysfs_mounts_of(backing_).empty());
}

INSTANTIATE_TEST_SUITE_P(Seccomp, NoUring, ::testing::Values("EPERM", "ENOSYS"));

// ---- 5. unmounted underneath ---------------------------------------------------------

constexpr auto kExitDeadline = 15s;

// An admin's `umount -l`: the mount disappears from the namespace at once; the daemon
// serves whatever is still open, and exits 0 once the kernel drops the filesystem.
TEST_F(ReliabilityTest, LazyUnmountWhileIdle_DaemonExitsCleanly) {
  write_file(mnt_ + "/f", "data");
  std::string out;
  ASSERT_EQ(run_command({"umount", "-l", mnt_}, &out), 0) << out;
  mounted_ = false;
  const auto start = Clock::now();
  auto status = await_daemon_exit(kExitDeadline);
  ASSERT_TRUE(status.has_value()) << "the daemon did not exit after umount -l";
  RecordProperty(
      "exit_ms",
      std::to_string(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()));
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "status " << *status;
  EXPECT_FALSE(is_mounted(mnt_, "fuse.fsysfs"));
  EXPECT_TRUE(fsysfs_mounts_of(backing_).empty());
  EXPECT_EQ(read_file(backing_ + "/f"), "data");
}

// An admin's way out of a stuck mount: `echo 1 > /sys/fs/fuse/connections/N/abort`. Under
// load some worker is between requests when it comes; the daemon still exits 0, with the
// synced data on BACKING.
TEST_F(ReliabilityTest, AbortThroughFusectlUnderLoad_DaemonExitsCleanly) {
  struct stat st;
  ASSERT_EQ(::stat(mnt_.c_str(), &st), 0);
  const std::string abort_file =
      "/sys/fs/fuse/connections/" + std::to_string(minor(st.st_dev)) + "/abort";
  write_file(mnt_ + "/synced", "durable");
  {
    const int fd = ::open((mnt_ + "/synced").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::fsync(fd), 0);
    ::close(fd);
  }
  std::atomic<int> writes{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([this, w, &writes, &stop] {
      const int fd = ::open((mnt_ + "/load" + std::to_string(w)).c_str(),
                            O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0) return;
      const std::string block(4096, static_cast<char>('a' + w));
      for (off_t off = 0; !stop.load() && pwrite_all(fd, block, off); off += 4096) {
        writes.fetch_add(1);
      }
      ::close(fd);
    });
  }
  while (writes.load() < 200) std::this_thread::yield();
  write_file(abort_file, "1");
  stop = true;
  for (auto& t : writers) t.join();
  mounted_ = false;
  auto status = await_daemon_exit(kExitDeadline);
  ASSERT_TRUE(status.has_value()) << "the daemon did not exit after the abort";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "status " << *status;
  ::umount2(mnt_.c_str(), MNT_DETACH);
  EXPECT_EQ(read_file(backing_ + "/synced"), "durable");
}

TEST_F(ReliabilityTest, LazyUnmountWithAnOpenFile_ServedUntilClosed_ThenDaemonExitsCleanly) {
  int fd = ::open((mnt_ + "/f").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(pwrite_all(fd, "before", 0));
  std::string out;
  ASSERT_EQ(run_command({"umount", "-l", mnt_}, &out), 0) << out;
  mounted_ = false;
  EXPECT_FALSE(is_mounted(mnt_, "fuse.fsysfs"));

  // Detached, but the open file keeps the filesystem alive, so the daemon must keep
  // serving it: write, sync and read all reach the backing file.
  EXPECT_TRUE(pwrite_all(fd, "after", 6)) << std::strerror(errno);
  EXPECT_EQ(::fsync(fd), 0) << std::strerror(errno);
  char buf[16] = {};
  EXPECT_EQ(::pread(fd, buf, 11, 0), 11) << std::strerror(errno);
  EXPECT_EQ(std::string(buf, 11), "beforeafter");
  EXPECT_EQ(read_file(backing_ + "/f"), "beforeafter");
  int status = 0;
  EXPECT_EQ(::waitpid(daemon_, &status, WNOHANG), 0) << "the daemon left with a file open";

  ASSERT_EQ(::close(fd), 0);
  const auto start = Clock::now();
  auto exit_status = await_daemon_exit(kExitDeadline);
  ASSERT_TRUE(exit_status.has_value()) << "the daemon did not exit after the last close";
  RecordProperty(
      "exit_ms",
      std::to_string(
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()));
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0)
      << "status " << *exit_status;
  EXPECT_TRUE(fsysfs_mounts_of(backing_).empty());
}

}  // namespace
}  // namespace fsysfs::test
