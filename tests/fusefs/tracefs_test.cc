// Each durability mode checked through the kernel rather than through our own counters: a
// private ftrace instance records the daemon's io_uring submissions and completions, the
// pwrite64/fsync/fdatasync syscalls of its threads (by default the FUSE workers make them;
// with inline_io=writes syncs run on the engine's sync threads and write+sync chains on
// the ring) and the block-layer requests of the backing disk while the test (the
// "application") writes under the mount, and writes a marker before and after each of its
// syscalls. What happened
// between two markers happened before that syscall returned.
//
// The backing directory must sit on a real block device; on this machine /tmp is ext4 on
// a virtio disk whose write cache is volatile ("write back" in queue/write_cache). There
// an ext4 fdatasync ends in a cache flush: a journal commit (whose commit block carries
// PREFLUSH, and FUA, which the virtio disk emulates with a second flush) or, when nothing
// needs committing, blkdev_issue_flush. Either shows up in block_rq_issue with an 'F' in
// rwbs. On a disk without a volatile cache the block layer drops flushes, so the flush
// checks run only where the disk reports one.

#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/tracefs.h"

namespace fsysfs::test {
namespace {

constexpr size_t kBlock = 4096;
constexpr int kWrites = 8;
// io_uring_submit_req prints the request's REQ_F_* flags, whose low bits are the SQE's
// IOSQE_* flags bit for bit.
constexpr unsigned long long kLinkFlag = IOSQE_IO_LINK;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string run_output(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

// `fsysfs stats --json`, with lookups of the counters the tests compare.
struct Stats {
  std::string json;

  // ops.<op>.count of the engine ("write", "fdatasync", "fsync", "write+fdatasync", ...).
  uint64_t engine_op(const std::string& op) const {
    return number_after(json.find("\"ops\":{"), "\"" + op + "\":{\"count\":");
  }
  uint64_t engine_bytes(const std::string& op) const {
    size_t at = json.find("\"" + op + "\":{\"count\":", json.find("\"ops\":{"));
    return number_after(at, "\"bytes\":");
  }
  // A counter of the fuse section ("syncs_issued", "close_syncs", ...).
  uint64_t fuse(const std::string& name) const {
    return number_after(json.find("\"fuse\":{"), "\"" + name + "\":");
  }
  std::string string_field(const std::string& name) const {
    const std::string key = "\"" + name + "\":\"";
    size_t pos = json.find(key);
    if (pos == std::string::npos) return "";
    pos += key.size();
    return json.substr(pos, json.find('"', pos) - pos);
  }

 private:
  uint64_t number_after(size_t from, const std::string& key) const {
    if (from == std::string::npos) return UINT64_MAX;
    size_t pos = json.find(key, from);
    if (pos == std::string::npos) return UINT64_MAX;
    return std::stoull(json.substr(pos + key.size()));
  }
};

// A trace reduced to what the tests reason about, in order.
struct Item {
  // kSyscall: an fsync/fdatasync the daemon made itself (the engine runs standalone syncs
  // on its sync threads), or a pwrite64 (plain writes run on the FUSE worker); kComplete
  // ends a kSubmit (same ring and user_data) or a sync kSyscall (same thread).
  enum Kind { kMark, kSubmit, kSyscall, kComplete, kFlush };
  explicit Item(Kind k, std::string t = "") : kind(k), text(std::move(t)) {}
  Kind kind;
  std::string text;  // the marker, the io_uring opcode, or the block request's rwbs
  bool linked = false;
  bool fixed_file = false;  // the SQE named a registered file
  std::string key;          // ring and user_data: matches a completion to its submission
  int res = 0;
};

std::vector<Item> timeline(const std::vector<TraceEvent>& events) {
  std::vector<Item> out;
  for (const auto& e : events) {
    if (e.name == "tracing_mark_write") {
      out.emplace_back(Item::kMark, e.body);
    } else if (e.name == "io_uring_submit_req") {
      Item i{Item::kSubmit, e.field("opcode")};
      const unsigned long long flags = std::stoull(e.field("flags"), nullptr, 16);
      i.linked = (flags & kLinkFlag) != 0;
      i.fixed_file = (flags & IOSQE_FIXED_FILE) != 0;
      i.key = e.field("ring") + "/" + e.field("user_data");
      out.push_back(i);
    } else if (e.name == "sys_enter_fsync" || e.name == "sys_enter_fdatasync") {
      Item i{Item::kSyscall, e.name.substr(std::strlen("sys_enter_"))};
      i.key = "thread " + std::to_string(e.pid);
      out.push_back(i);
    } else if (e.name == "sys_enter_pwrite64") {
      out.emplace_back(Item::kSyscall, "pwrite64");
    } else if (e.name == "sys_exit_fsync" || e.name == "sys_exit_fdatasync") {
      Item i{Item::kComplete};
      i.key = "thread " + std::to_string(e.pid);
      i.res = static_cast<int>(static_cast<int64_t>(std::stoull(e.body, nullptr, 16)));
      out.push_back(i);
    } else if (e.name == "io_uring_complete") {
      Item i{Item::kComplete};
      i.key = e.field("ring") + "/" + e.field("user_data");
      i.res = std::stoi(e.field("result"));
      out.push_back(i);
    } else if (e.name == "block_rq_issue") {
      // "254,0 FF 0 () 0 + 0 ..."
      std::string rest = e.body.substr(e.body.find(' ') + 1);
      std::string rwbs = rest.substr(0, rest.find(' '));
      if (rwbs.find('F') != std::string::npos) out.emplace_back(Item::kFlush, rwbs);
    }
  }
  return out;
}

// The engine's other submissions (the READ of its wake-up eventfd) are not I/O on files.
bool is_write(const Item& i) {
  return (i.kind == Item::kSubmit && (i.text == "WRITE" || i.text == "WRITE_FIXED")) ||
         (i.kind == Item::kSyscall && i.text == "pwrite64");
}
bool is_ring_fsync(const Item& i) { return i.kind == Item::kSubmit && i.text == "FSYNC"; }
// A sync the daemon started, on the ring or as a syscall of one of its threads.
bool is_sync(const Item& i) {
  return is_ring_fsync(i) || (i.kind == Item::kSyscall && i.text != "pwrite64");
}

size_t count_if(const std::vector<Item>& items, bool (*pred)(const Item&)) {
  return static_cast<size_t>(std::count_if(items.begin(), items.end(), pred));
}

std::string describe(const std::vector<Item>& items) {
  std::string s;
  for (const auto& i : items) {
    static const char* kKinds[] = {"mark", "submit", "syscall", "complete", "flush"};
    s += std::string("  ") + kKinds[i.kind] + " " + i.text + (i.linked ? " [link]" : "") +
         (i.fixed_file ? " [fixed]" : "") +
         (i.kind == Item::kComplete ? " res " + std::to_string(i.res) : "") + " " + i.key + "\n";
  }
  return s;
}

// The block device that holds `path`, as the whole disk (block_rq_issue reports requests
// on the disk, not the partition): "major:minor", or "" when it is not a block device.
std::string disk_of(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || major(st.st_dev) == 0) return "";
  std::string sys =
      "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  if (!std::filesystem::exists(sys)) return "";
  if (std::filesystem::exists(sys + "/partition")) {
    std::string dev = slurp(sys + "/../dev");
    while (!dev.empty() && dev.back() == '\n') dev.pop_back();
    return dev;
  }
  return std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
}

// Parameter: the transport ("dev" or "uring").
class TraceFixture : public MountFixture, public ::testing::WithParamInterface<const char*> {
 protected:
  static constexpr const char* kEvents[] = {
      "io_uring/io_uring_submit_req", "io_uring/io_uring_complete",   "syscalls/sys_enter_fsync",
      "syscalls/sys_exit_fsync",      "syscalls/sys_enter_fdatasync", "syscalls/sys_exit_fdatasync",
      "syscalls/sys_enter_pwrite64",  "block/block_rq_issue"};

  virtual std::string mode_options() const = 0;
  // Two FUSE workers, never more, never fewer (threads=2 is also the idle limit): the
  // pid filter below then covers every thread that can write or sync (on io_uring, the
  // queues' owners as well, which exist from the start).
  std::string mount_options() const override {
    return "allow_other,default_permissions,threads=2,transport=" + std::string(GetParam()) + "," +
           mode_options();
  }
  bool uring() const { return std::string(GetParam()) == "uring"; }

  // On the io_uring transport the queues' rings do the work of a marked syscall: each
  // write is a WRITE_FIXED from the request's payload buffer, each sync an io_uring FSYNC,
  // both on a registered file, none a syscall of a daemon thread, and the reply is a
  // commit (URING_CMD) on the ring.
  void expect_ring_work(const std::vector<Item>& w, const std::string& name) {
    if (!uring()) return;
    for (const Item& i : w) {
      if (is_write(i)) {
        EXPECT_TRUE(i.kind == Item::kSubmit && i.text == "WRITE_FIXED")
            << name << ": a write not from a registered buffer:\n"
            << describe(w);
      }
      if (is_sync(i)) {
        EXPECT_TRUE(is_ring_fsync(i)) << name << ": a sync not on the ring:\n" << describe(w);
      }
      if (is_write(i) || is_sync(i)) {
        EXPECT_TRUE(i.fixed_file) << name << ": not on a fixed file:\n" << describe(w);
      }
    }
    EXPECT_TRUE(
        std::any_of(w.begin(), w.end(),
                    [](const Item& i) { return i.kind == Item::kSubmit && i.text == "URING_CMD"; }))
        << name << ": no reply committed on the ring:\n"
        << describe(w);
  }

  void SetUp() override {
    if (uring()) {
      if (std::string why = uring_transport_missing(); !why.empty()) GTEST_SKIP() << why;
    }
    std::string why;
    std::string root = TraceInstance::tracefs_root(&why);
    if (root.empty()) GTEST_SKIP() << why;
    struct statfs sfs;
    ASSERT_EQ(::statfs("/tmp", &sfs), 0);
    if (sfs.f_type == TMPFS_MAGIC) GTEST_SKIP() << "/tmp is tmpfs: no block device to trace";
    disk_ = disk_of("/tmp");
    if (disk_.empty()) GTEST_SKIP() << "/tmp is not on a block device";
    volatile_cache_ =
        slurp("/sys/dev/block/" + disk_ + "/queue/write_cache").starts_with("write back");

    MountFixture::SetUp();
    if (HasFatalFailure()) return;
    Stats s = stats();
    if (s.string_field("backend") != "io_uring") {
      GTEST_SKIP() << "the engine runs without io_uring here: " << s.string_field("notes");
    }

    trace_ = std::make_unique<TraceInstance>(root, "fsysfs-test-" + std::to_string(::getpid()));
    if (!trace_->ok()) GTEST_SKIP() << "no private tracing instance: " << trace_->error();
    ASSERT_EQ(trace_->error(), "");
    for (const char* e : kEvents) {
      if (!trace_->has_event(e)) GTEST_SKIP() << "this kernel has no trace event " << e;
    }
    // Writes and syncs come from the FUSE workers, or from the engine's owner and sync
    // threads with inline_io=writes; libfuse started the second worker for
    // the stats request above, so all of them exist now. Completions are posted by the
    // owner or by the ring's io-wq workers, which the kernel starts later.
    threads_ = daemon_threads();
    std::string pids;
    for (const auto& t : threads_) pids += (pids.empty() ? "" : " || ") + ("common_pid == " + t);
    ASSERT_EQ(trace_->set_filter("io_uring/io_uring_submit_req", pids), 0);
    for (const char* e :
         {"syscalls/sys_enter_fsync", "syscalls/sys_exit_fsync", "syscalls/sys_enter_fdatasync",
          "syscalls/sys_exit_fdatasync", "syscalls/sys_enter_pwrite64"}) {
      ASSERT_EQ(trace_->set_filter(e, pids), 0) << e;
    }
    ASSERT_EQ(trace_->set_filter("io_uring/io_uring_complete", pids + " || comm ~ \"iou-wrk*\""),
              0);
    unsigned maj = 0, min = 0;
    ASSERT_EQ(std::sscanf(disk_.c_str(), "%u:%u", &maj, &min), 2);
    // The kernel's dev_t: major in the top 12 bits, minor in the low 20.
    ASSERT_EQ(
        trace_->set_filter("block/block_rq_issue", "dev == " + std::to_string((maj << 20) | min)),
        0);
    for (const char* e : kEvents) ASSERT_EQ(trace_->enable(e), 0) << e;
  }

  void TearDown() override {
    trace_.reset();
    MountFixture::TearDown();
  }

  Stats stats() const {
    return Stats{run_output(daemon_binary() + " stats " + mnt_ + " --json 2>/dev/null")};
  }

  // Runs `syscall` between the markers "<name> begin" and "<name> end".
  template <class F>
  auto marked(const std::string& name, F&& syscall) {
    trace_->mark(name + " begin");
    auto r = syscall();
    trace_->mark(name + " end");
    return r;
  }

  void start() {
    ASSERT_EQ(trace_->start(), 0);
    before_ = stats();
  }
  // Stops recording and returns the trace.
  std::vector<Item> finish() {
    trace_->stop();
    EXPECT_EQ(daemon_threads(), threads_) << "the daemon started threads the trace did not follow";
    after_ = stats();
    std::vector<Item> items = timeline(trace_->events());
    full_ = describe(items);
    if (std::getenv("FSYSFS_TRACE_DUMP") != nullptr) std::fprintf(stderr, "%s", full_.c_str());
    return items;
  }

  // What was recorded between "<name> begin" and "<name> end".
  std::vector<Item> window(const std::vector<Item>& items, const std::string& name) {
    auto begin = std::find_if(items.begin(), items.end(), [&](const Item& i) {
      return i.kind == Item::kMark && i.text == name + " begin";
    });
    auto end = std::find_if(begin, items.end(), [&](const Item& i) {
      return i.kind == Item::kMark && i.text == name + " end";
    });
    EXPECT_NE(end, items.end()) << "markers of " << name << " not in the trace:\n" << full_;
    if (end == items.end()) return {};
    return std::vector<Item>(begin + 1, end);
  }

  uint64_t delta_op(const std::string& op) const {
    return after_.engine_op(op) - before_.engine_op(op);
  }
  uint64_t delta_fuse(const std::string& name) const {
    return after_.fuse(name) - before_.fuse(name);
  }

  // The first sync of this window completed successfully inside it, followed by a cache
  // flush of the backing disk where the disk has a volatile cache. A sync the daemon ran as
  // a syscall must be `kind` ("fsync" or "fdatasync") when that is given.
  void expect_durable_in(const std::vector<Item>& w, const std::string& name,
                         const char* kind = nullptr) {
    auto sync = std::find_if(w.begin(), w.end(), is_sync);
    ASSERT_NE(sync, w.end()) << name << ":\n" << describe(w);
    expect_ring_work(w, name);
    if (kind != nullptr && sync->kind == Item::kSyscall) {
      EXPECT_EQ(sync->text, kind) << name << ":\n" << describe(w);
    }
    auto done = std::find_if(sync, w.end(), [&](const Item& i) {
      return i.kind == Item::kComplete && i.key == sync->key;
    });
    ASSERT_NE(done, w.end()) << name << ": the FSYNC did not complete before the syscall "
                             << "returned:\n"
                             << describe(w);
    EXPECT_EQ(done->res, 0) << name;
    if (volatile_cache_) {
      EXPECT_TRUE(std::any_of(sync, w.end(), [](const Item& i) { return i.kind == Item::kFlush; }))
          << name << ": no cache flush of disk " << disk_ << " after the FSYNC:\n"
          << describe(w);
    }
  }

  // A durable write's window: the write, then its fdatasync, completed before the syscall
  // returned; `on_ring`, a WRITE linked to an FSYNC on a ring, else pwrite64 then fdatasync
  // on a daemon thread.
  void expect_write_then_fdatasync(const std::vector<Item>& w, const std::string& name,
                                   bool on_ring) {
    std::vector<Item> io;
    std::copy_if(w.begin(), w.end(), std::back_inserter(io),
                 [](const Item& x) { return is_write(x) || is_sync(x); });
    ASSERT_EQ(io.size(), 2u) << name << ":\n" << describe(w);
    EXPECT_TRUE(is_write(io[0])) << name << ":\n" << describe(w);
    if (on_ring) {
      EXPECT_EQ(io[0].kind, Item::kSubmit) << name << ":\n" << describe(w);
      EXPECT_TRUE(io[0].linked) << name << ": the write is not linked:\n" << describe(w);
      EXPECT_TRUE(is_ring_fsync(io[1])) << name << ":\n" << describe(w);
    } else {
      EXPECT_EQ(io[0].kind, Item::kSyscall) << name << ":\n" << describe(w);
      EXPECT_EQ(io[1].text, "fdatasync") << name << ":\n" << describe(w);
    }
    expect_durable_in(w, name, "fdatasync");
  }

  std::string file(const std::string& name) const { return mnt_ + "/" + name; }

  // The daemon's own threads, without the kernel's io_uring workers (iou-wrk-*, iou-sqp-*),
  // which only ever complete.
  std::set<std::string> daemon_threads() const {
    std::set<std::string> tids;
    for (const auto& t :
         std::filesystem::directory_iterator("/proc/" + std::to_string(daemon_) + "/task")) {
      if (slurp(t.path().string() + "/comm").starts_with("iou-")) continue;
      tids.insert(t.path().filename().string());
    }
    return tids;
  }

  std::unique_ptr<TraceInstance> trace_;
  std::set<std::string> threads_;  // the daemon's, when the filters were set
  std::string disk_;
  bool volatile_cache_ = false;
  Stats before_, after_;
  std::string full_;  // the whole trace, for failure messages
};

std::vector<char> block_of(char c) { return std::vector<char>(kBlock, c); }

class StrictTrace : public TraceFixture {
 protected:
  std::string mode_options() const override { return "durability=strict"; }

  // Each write, inside its own syscall: by default a pwrite64 then an fdatasync on the FUSE
  // worker; with `on_ring`, a WRITE linked to an FSYNC on the ring.
  void check_every_write_is_durable_when_it_returns(bool on_ring) {
    start();
    int fd = marked("create", [&] { return ::open(file("f").c_str(), O_CREAT | O_WRONLY, 0644); });
    ASSERT_GE(fd, 0) << std::strerror(errno);
    auto data = block_of('s');
    for (int i = 0; i < kWrites; ++i) {
      ssize_t n = marked("write " + std::to_string(i),
                         [&] { return ::pwrite(fd, data.data(), kBlock, i * kBlock); });
      ASSERT_EQ(n, static_cast<ssize_t>(kBlock));
    }
    ASSERT_EQ(marked("close", [&] { return ::close(fd); }), 0);
    auto items = finish();

    for (int i = 0; i < kWrites; ++i) {
      const std::string name = "write " + std::to_string(i);
      expect_write_then_fdatasync(window(items, name), name, on_ring);
    }
    // strict implies dirsync: the create synced the directory; close adds nothing.
    EXPECT_EQ(count_if(window(items, "create"), is_sync), 1u) << full_;
    EXPECT_EQ(count_if(window(items, "close"), is_sync), 0u) << full_;

    // The daemon's own account agrees with the kernel's.
    EXPECT_EQ(delta_op("write+fdatasync"), static_cast<uint64_t>(kWrites));
    EXPECT_EQ(delta_op("write"), 0u);
    EXPECT_EQ(delta_fuse("dir_syncs"), 1u);
    EXPECT_EQ(delta_fuse("syncs_issued"), 0u);
    EXPECT_EQ(count_if(items, is_sync),
              delta_op("write+fdatasync") + delta_op("fsync") + delta_op("fdatasync"));
    EXPECT_EQ(count_if(items, is_write), static_cast<size_t>(kWrites));
  }
};

TEST_P(StrictTrace, EveryWriteIsAWriteThenFdatasyncThatCompletesBeforeWriteReturns) {
  // On io_uring, a linked WRITE_FIXED+FSYNC chain on the queue's ring.
  check_every_write_is_durable_when_it_returns(uring());
}

class StrictRingTrace : public StrictTrace {
  std::string mode_options() const override { return "durability=strict,inline_io=writes"; }
};

TEST_P(StrictRingTrace, EveryWriteIsALinkedWriteFdatasyncThatCompletesBeforeWriteReturns) {
  check_every_write_is_durable_when_it_returns(true);
}

// copy_file_range writes data too: in strict mode it must be durable when it returns.
TEST_P(StrictTrace, CopyFileRangeIsDurableWhenItReturns) {
  auto data = block_of('r');
  int src = ::open(file("src").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(src, 0) << std::strerror(errno);
  ASSERT_EQ(::pwrite(src, data.data(), kBlock, 0), static_cast<ssize_t>(kBlock));
  int dst = ::open(file("dst").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(dst, 0) << std::strerror(errno);
  start();
  loff_t in = 0, out = 0;
  ssize_t n = marked("copy", [&] { return ::copy_file_range(src, &in, dst, &out, kBlock, 0); });
  if (n < 0 && (errno == ENOSYS || errno == EOPNOTSUPP || errno == EXDEV)) {
    GTEST_SKIP() << "copy_file_range is not passed to the daemon here: " << std::strerror(errno);
  }
  ASSERT_EQ(n, static_cast<ssize_t>(kBlock)) << std::strerror(errno);
  ASSERT_EQ(::close(dst), 0);
  ASSERT_EQ(::close(src), 0);
  auto items = finish();
  auto w = window(items, "copy");
  EXPECT_EQ(delta_fuse("copy_file_range"), 1u) << "the kernel did not send copy_file_range";
  EXPECT_GE(count_if(w, is_sync), 1u) << "copy_file_range returned before any sync:\n"
                                      << describe(w);
  if (count_if(w, is_sync) > 0) expect_durable_in(w, "copy", "fdatasync");
}

class FsyncTrace : public TraceFixture {
  // Each write() reaches the daemon on its own (no kernel writeback cache).
  std::string mode_options() const override { return "durability=fsync,no_writeback_cache"; }
};

TEST_P(FsyncTrace, NoSyncUntilTheApplicationAsksThenOnePerCall) {
  start();
  int fd = marked("create", [&] { return ::open(file("f").c_str(), O_CREAT | O_WRONLY, 0644); });
  ASSERT_GE(fd, 0) << std::strerror(errno);
  auto data = block_of('f');
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_EQ(marked("write " + std::to_string(i),
                     [&] { return ::pwrite(fd, data.data(), kBlock, i * kBlock); }),
              static_cast<ssize_t>(kBlock));
  }
  ASSERT_EQ(marked("fsync", [&] { return ::fsync(fd); }), 0);
  ASSERT_EQ(::pwrite(fd, data.data(), kBlock, 0), static_cast<ssize_t>(kBlock));
  ASSERT_EQ(marked("fdatasync", [&] { return ::fdatasync(fd); }), 0);
  ASSERT_EQ(marked("close", [&] { return ::close(fd); }), 0);
  auto items = finish();

  auto before = window(items, "create");
  for (int i = 0; i < kWrites; ++i) {
    auto w = window(items, "write " + std::to_string(i));
    EXPECT_EQ(count_if(w, is_write), 1u) << describe(w);
    EXPECT_FALSE(std::any_of(w.begin(), w.end(), [](const Item& x) { return x.linked; }))
        << describe(w);
    expect_ring_work(w, "write " + std::to_string(i));
    before.insert(before.end(), w.begin(), w.end());
  }
  EXPECT_EQ(count_if(before, is_sync), 0u) << "a sync before the application asked:\n"
                                           << describe(before);
  for (const char* name : {"fsync", "fdatasync"}) {
    auto w = window(items, name);
    EXPECT_EQ(count_if(w, is_sync), 1u) << name << ":\n" << describe(w);
    expect_durable_in(w, name, name);
  }
  EXPECT_EQ(count_if(window(items, "close"), is_sync), 0u) << full_;
  EXPECT_EQ(count_if(items, is_sync), 2u) << full_;

  EXPECT_EQ(delta_fuse("syncs_issued"), 2u);
  EXPECT_EQ(delta_op("fsync"), 1u);
  EXPECT_EQ(delta_op("fdatasync"), 1u);
  EXPECT_EQ(delta_op("write+fdatasync"), 0u);
  EXPECT_EQ(delta_op("write"), static_cast<uint64_t>(kWrites + 1));
  EXPECT_EQ(count_if(items, is_write), static_cast<size_t>(kWrites + 1));
}

// In fsync mode a write to an O_DSYNC file is durable when it returns: one write+fdatasync
// inside the syscall (on io_uring a linked WRITE_FIXED+FSYNC on the queue's ring).
TEST_P(FsyncTrace, ODsyncWritesAreDurableWhenTheyReturn) {
  start();
  int fd = ::open(file("d").c_str(), O_CREAT | O_WRONLY | O_DSYNC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  auto data = block_of('d');
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_EQ(marked("dsync write " + std::to_string(i),
                     [&] { return ::pwrite(fd, data.data(), kBlock, i * kBlock); }),
              static_cast<ssize_t>(kBlock));
  }
  ASSERT_EQ(::close(fd), 0);
  auto items = finish();
  for (int i = 0; i < kWrites; ++i) {
    const std::string name = "dsync write " + std::to_string(i);
    // On /dev/fuse the worker writes and syncs itself (inline_io=all).
    expect_write_then_fdatasync(window(items, name), name, uring());
  }
  EXPECT_EQ(delta_op("write+fdatasync"), static_cast<uint64_t>(kWrites));
}

TEST_P(FsyncTrace, LiveSwitchChangesWhatTheNextWriteAndSyncDo) {
  int fd = ::open(file("f").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  auto data = block_of('l');
  start();
  ASSERT_EQ(std::system((daemon_binary() + " set " + mnt_ + " durability=strict").c_str()), 0);
  ASSERT_EQ(marked("strict write", [&] { return ::pwrite(fd, data.data(), kBlock, 0); }),
            static_cast<ssize_t>(kBlock));
  ASSERT_EQ(std::system((daemon_binary() + " set " + mnt_ + " durability=none").c_str()), 0);
  ASSERT_EQ(marked("none write", [&] { return ::pwrite(fd, data.data(), kBlock, 0); }),
            static_cast<ssize_t>(kBlock));
  ASSERT_EQ(marked("none fsync", [&] { return ::fsync(fd); }), 0);
  ASSERT_EQ(::close(fd), 0);
  auto items = finish();

  auto strict = window(items, "strict write");
  ASSERT_EQ(count_if(strict, is_write), 1u) << describe(strict);
  ASSERT_EQ(count_if(strict, is_sync), 1u) << describe(strict);
  EXPECT_LT(std::find_if(strict.begin(), strict.end(), is_write),
            std::find_if(strict.begin(), strict.end(), is_sync))
      << describe(strict);
  expect_durable_in(strict, "strict write");
  auto none = window(items, "none write");
  auto none_fsync = window(items, "none fsync");
  none.insert(none.end(), none_fsync.begin(), none_fsync.end());
  EXPECT_EQ(count_if(none, is_sync), 0u) << describe(none);
  EXPECT_EQ(delta_fuse("syncs_skipped"), 1u);
  EXPECT_EQ(after_.string_field("durability"), "none");
}

class NoneTrace : public TraceFixture {
  std::string mode_options() const override { return "durability=none"; }
};

TEST_P(NoneTrace, NoSyncEvenWhenTheApplicationAsks) {
  start();
  int fd = ::open(file("f").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  auto data = block_of('n');
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_EQ(::pwrite(fd, data.data(), kBlock, i * kBlock), static_cast<ssize_t>(kBlock));
  }
  ASSERT_EQ(marked("fsync", [&] { return ::fsync(fd); }), 0);
  ASSERT_EQ(marked("fdatasync", [&] { return ::fdatasync(fd); }), 0);
  ASSERT_EQ(::close(fd), 0);
  auto items = finish();

  EXPECT_EQ(count_if(items, is_sync), 0u) << full_;
  expect_ring_work(window(items, "fsync"), "fsync");
  // none turns the kernel's writeback cache on by default, so the kernel may send the
  // data in fewer, larger writes (at the latest when the application fsyncs).
  EXPECT_GE(count_if(items, is_write), 1u) << full_;
  EXPECT_EQ(after_.engine_bytes("write") - before_.engine_bytes("write"), kWrites * kBlock);
  window(items, "fsync");  // the markers are there: the trace did record
  EXPECT_EQ(delta_fuse("syncs_skipped"), 2u);
  EXPECT_EQ(delta_fuse("syncs_issued"), 0u);
  EXPECT_EQ(delta_op("fsync") + delta_op("fdatasync") + delta_op("write+fdatasync"), 0u);
}

class CloseTrace : public TraceFixture {
  std::string mode_options() const override { return "durability=close"; }
};

TEST_P(CloseTrace, OneFdatasyncAtCloseOfAHandleThatWroteOnly) {
  auto data = block_of('c');
  start();
  // A handle that wrote.
  int fd = ::open(file("w").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  trace_->mark("writes begin");
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_EQ(::pwrite(fd, data.data(), kBlock, i * kBlock), static_cast<ssize_t>(kBlock));
  }
  trace_->mark("writes end");
  ASSERT_EQ(marked("close written", [&] { return ::close(fd); }), 0);
  // A handle that only read.
  fd = ::open(file("w").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::vector<char> back(kBlock);
  ASSERT_EQ(::pread(fd, back.data(), kBlock, 0), static_cast<ssize_t>(kBlock));
  ASSERT_EQ(marked("close read", [&] { return ::close(fd); }), 0);
  // A handle opened for writing that never wrote.
  fd = ::open(file("w").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(marked("close unwritten", [&] { return ::close(fd); }), 0);
  // A handle whose writes an fsync already covered.
  fd = ::open(file("w").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, data.data(), kBlock, 0), static_cast<ssize_t>(kBlock));
  ASSERT_EQ(marked("fsync", [&] { return ::fsync(fd); }), 0);
  ASSERT_EQ(marked("close synced", [&] { return ::close(fd); }), 0);
  auto items = finish();

  EXPECT_EQ(count_if(window(items, "writes"), is_sync), 0u) << full_;
  auto w = window(items, "close written");
  EXPECT_EQ(count_if(w, is_sync), 1u) << describe(w);
  expect_durable_in(w, "close written", "fdatasync");
  for (const char* name : {"close read", "close unwritten", "close synced"}) {
    auto c = window(items, name);
    EXPECT_EQ(count_if(c, is_sync), 0u) << name << ":\n" << describe(c);
  }
  EXPECT_EQ(count_if(window(items, "fsync"), is_sync), 1u) << full_;
  EXPECT_EQ(count_if(items, is_sync), 2u) << full_;

  EXPECT_EQ(delta_fuse("close_syncs"), 1u);
  EXPECT_EQ(delta_fuse("syncs_issued"), 1u);
  EXPECT_EQ(delta_op("fdatasync"), 1u);  // at close
  EXPECT_EQ(delta_op("fsync"), 1u);      // the application's
}

// The namespace changes the test makes, each with the directory fsyncs dirsync owes it.
struct NamespaceOp {
  const char* name;
  size_t parents;
};
constexpr NamespaceOp kNamespaceOps[] = {
    {"create", 1}, {"mkdir", 1},         {"mknod", 1},  {"symlink", 1}, {"link", 1},
    {"rename", 1}, {"rename across", 2}, {"unlink", 1}, {"rmdir", 1},
};

class DirsyncTrace : public TraceFixture {
 protected:
  std::string mode_options() const override { return "durability=fsync,dirsync"; }

  // Runs every namespace change once, each between its markers.
  void run_namespace_ops() {
    ASSERT_EQ(::mkdir(file("a").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(file("b").c_str(), 0755), 0);
    start();
    int fd =
        marked("create", [&] { return ::open(file("a/f").c_str(), O_CREAT | O_WRONLY, 0644); });
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(::close(fd), 0);
    ASSERT_EQ(marked("mkdir", [&] { return ::mkdir(file("a/d").c_str(), 0755); }), 0);
    ASSERT_EQ(marked("mknod", [&] { return ::mkfifo(file("a/p").c_str(), 0644); }), 0);
    ASSERT_EQ(marked("symlink", [&] { return ::symlink("f", file("a/s").c_str()); }), 0);
    ASSERT_EQ(marked("link", [&] { return ::link(file("a/f").c_str(), file("a/h").c_str()); }), 0);
    ASSERT_EQ(marked("rename", [&] { return ::rename(file("a/h").c_str(), file("a/g").c_str()); }),
              0);
    ASSERT_EQ(
        marked("rename across", [&] { return ::rename(file("a/g").c_str(), file("b/g").c_str()); }),
        0);
    ASSERT_EQ(marked("unlink", [&] { return ::unlink(file("b/g").c_str()); }), 0);
    ASSERT_EQ(marked("rmdir", [&] { return ::rmdir(file("a/d").c_str()); }), 0);
  }
};

TEST_P(DirsyncTrace, EachNamespaceChangeFsyncsItsParentDirectories) {
  run_namespace_ops();
  if (HasFatalFailure()) return;
  auto items = finish();
  size_t total = 0;
  for (const auto& op : kNamespaceOps) {
    auto w = window(items, op.name);
    EXPECT_EQ(count_if(w, is_sync), op.parents) << op.name << ":\n" << describe(w);
    EXPECT_EQ(count_if(w, is_write), 0u) << op.name << ":\n" << describe(w);
    if (count_if(w, is_sync) > 0) expect_durable_in(w, op.name, "fsync");
    total += op.parents;
  }
  EXPECT_EQ(count_if(items, is_sync), total) << full_;
  EXPECT_EQ(delta_fuse("dir_syncs"), total);
  EXPECT_EQ(delta_op("fsync"), total);
}

class NoDirsyncTrace : public DirsyncTrace {
  std::string mode_options() const override { return "durability=fsync"; }
};

TEST_P(NoDirsyncTrace, NamespaceChangesSyncNothingWithoutDirsync) {
  run_namespace_ops();
  if (HasFatalFailure()) return;
  auto items = finish();
  for (const auto& op : kNamespaceOps) window(items, op.name);
  EXPECT_EQ(count_if(items, is_sync), 0u) << full_;
  EXPECT_EQ(delta_fuse("dir_syncs"), 0u);
}

std::string transport_name(const ::testing::TestParamInfo<const char*>& info) { return info.param; }
#define FSYSFS_ON_BOTH_TRANSPORTS(fixture) \
  INSTANTIATE_TEST_SUITE_P(Transport, fixture, ::testing::Values("dev", "uring"), transport_name)
FSYSFS_ON_BOTH_TRANSPORTS(StrictTrace);
FSYSFS_ON_BOTH_TRANSPORTS(StrictRingTrace);
FSYSFS_ON_BOTH_TRANSPORTS(FsyncTrace);
FSYSFS_ON_BOTH_TRANSPORTS(NoneTrace);
FSYSFS_ON_BOTH_TRANSPORTS(CloseTrace);
FSYSFS_ON_BOTH_TRANSPORTS(DirsyncTrace);
FSYSFS_ON_BOTH_TRANSPORTS(NoDirsyncTrace);

}  // namespace
}  // namespace fsysfs::test
