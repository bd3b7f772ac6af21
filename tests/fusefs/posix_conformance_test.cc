// POSIX conformance points where pjdfstest (docs/conformance.md) found the mount behaving
// differently from the backing filesystem. Each scenario runs on a plain directory and on
// the mount; the records must match.

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"

namespace fsysfs::test {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;

bool later(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

// File timestamps come from the coarse clock, which ticks once per jiffy: two updates in
// one tick carry the same time. Waiting until the clock has passed `t` makes any update
// after this call strictly later than `t`.
void wait_clock_past(const struct timespec& t) {
  struct timespec now;
  while (::clock_gettime(CLOCK_REALTIME_COARSE, &now) == 0 && !later(now, t)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Records whether `op` (run through `r`, which records its result) moved the ctime of
// `rel` (not following a final symlink).
void record_ctime_moves(Recorder& r, const std::string& what, const std::string& rel,
                        const std::function<void()>& op) {
  struct stat before, after;
  if (::lstat(r.p(rel).c_str(), &before) != 0) {
    r.note(what + ": lstat before", errno_name(errno));
    return;
  }
  wait_clock_past(before.st_ctim);
  op();
  if (::lstat(r.p(rel).c_str(), &after) != 0) {
    r.note(what + ": lstat after", errno_name(errno));
    return;
  }
  r.note(what + ": ctime advanced", later(after.st_ctim, before.st_ctim) ? "yes" : "no");
  r.stat(what + ": attributes", rel);
}

void ownerless_chown_scenario(Recorder& r) {
  write_file(r.p("f"), "data");
  ::mkdir(r.p("d").c_str(), 0755);
  ::symlink("f", r.p("l").c_str());
  const uid_t none_u = static_cast<uid_t>(-1);
  const gid_t none_g = static_cast<gid_t>(-1);

  record_ctime_moves(r, "chown(file, -1, -1)", "f",
                     [&] { r.rc("chown", ::chown(r.p("f").c_str(), none_u, none_g)); });
  record_ctime_moves(r, "chown(dir, -1, -1)", "d",
                     [&] { r.rc("chown", ::chown(r.p("d").c_str(), none_u, none_g)); });
  record_ctime_moves(r, "lchown(symlink, -1, -1)", "l",
                     [&] { r.rc("lchown", ::lchown(r.p("l").c_str(), none_u, none_g)); });
  record_ctime_moves(r, "fchown(fd, -1, -1)", "f", [&] {
    int fd = r.fd("open", ::open(r.p("f").c_str(), O_RDONLY));
    r.rc("fchown", ::fchown(fd, none_u, none_g));
    ::close(fd);
  });
  // Needs no privilege: a caller that owns nothing may still do it.
  record_ctime_moves(r, "chown(-1, -1) by a non-owner", "f", [&] {
    run_as(r, kNobody, kNogroup,
           [](Recorder& c) { c.rc("chown", ::chown(c.p("f").c_str(), none_u, none_g)); });
  });
}

class PosixConformance : public MountFixture {
 protected:
  void parity(const Scenario& s) { expect_parity(plain_, mnt_, s); }
};

// pjdfstest chown/00.t: Linux filesystems update ctime on chown(f, -1, -1); the mount
// once answered the empty SETATTR without touching the backing inode.
TEST_F(PosixConformance, OwnerlessChownUpdatesCtime_Parity) { parity(ownerless_chown_scenario); }

// pjdfstest open/25.t and unlink/14.t need pwrite/pread commands that not every pjdfstest
// build has; the same checks, written out.
TEST_F(PosixConformance, WritePastTwoGiBAndIoOnAnUnlinkedOpenFile_Parity) {
  parity([](Recorder& r) {
    const off_t past_2g = (off_t{2} << 30) + 1;
    int fd = r.fd("create big", ::open(r.p("big").c_str(), O_CREAT | O_WRONLY, 0755));
    r.rc("pwrite past 2 GiB", ::pwrite(fd, "a", 1, past_2g), true);
    ::close(fd);
    r.stat("big", "big");
    fd = r.fd("open big", ::open(r.p("big").c_str(), O_RDONLY));
    char c = 0;
    r.rc("pread past 2 GiB", ::pread(fd, &c, 1, past_2g), true);
    r.note("byte read", std::string(1, c));
    ::close(fd);
    r.rc("unlink big", ::unlink(r.p("big").c_str()));

    fd = r.fd("create doomed", ::open(r.p("doomed").c_str(), O_CREAT | O_RDWR, 0644));
    r.rc("write", ::write(fd, "Hello, World!", 13), true);
    r.rc("unlink while open", ::unlink(r.p("doomed").c_str()));
    r.stat_fd("unlinked, still open", fd);
    char buf[32] = {};
    r.rc("pread unlinked", ::pread(fd, buf, sizeof buf, 0), true);
    r.note("content", buf);
    r.rc("write unlinked", ::pwrite(fd, "!", 1, 13), true);
    r.stat_fd("after write", fd);
    ::close(fd);
    r.stat("name gone", "doomed");
  });
}

// Under writeback_cache the kernel sends the same request with FUSE_SET_ATTR_CTIME set.
class PosixConformanceWriteback : public PosixConformance {
 protected:
  std::string mount_options() const override {
    return "allow_other,default_permissions,writeback_cache";
  }
};

TEST_F(PosixConformanceWriteback, OwnerlessChownUpdatesCtime_Parity) {
  parity(ownerless_chown_scenario);
}

}  // namespace
}  // namespace fsysfs::test
