// serve() outside a working mount: refusal paths must leave nothing mounted.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include "tests/fusefs/mount_fixture.h"

namespace fsysfs::test {
namespace {

// Runs the helper and returns its exit status; a helper still running after the deadline
// (it mounted after all) is unmounted and reported as -2.
int run_helper(const std::string& backing, const std::string& mnt) {
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    std::string bin = serve_helper_binary();
    execl(bin.c_str(), bin.c_str(), "-f", backing.c_str(), mnt.c_str(), nullptr);
    _exit(127);
  }
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) != pid) {
    if (std::chrono::steady_clock::now() > end) {
      kill(pid, SIGTERM);
      waitpid(pid, &status, 0);
      return -2;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string make_base() {
  char tmpl[] = "/tmp/fsysfs-serve.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return "";
  return tmpl;
}

TEST(Serve, MountFailureReturnsNonZeroAndMountsNothing) {
  std::string base = make_base();
  ASSERT_FALSE(base.empty());
  std::string backing = base + "/backing";
  std::string mnt = base + "/no-such-mountpoint";
  ASSERT_EQ(mkdir(backing.c_str(), 0755), 0);
  int rc = run_helper(backing, mnt);
  EXPECT_NE(rc, 0);
  EXPECT_NE(rc, 127) << "helper binary missing";
  EXPECT_NE(rc, -2) << "serve() did not give up";
  EXPECT_FALSE(is_mounted(mnt, "fuse.fsysfs"));
  remove_tree(base);
}

TEST(Serve, MissingBackingReturnsNonZeroAndMountsNothing) {
  std::string base = make_base();
  ASSERT_FALSE(base.empty());
  std::string mnt = base + "/mnt";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  int rc = run_helper(base + "/no-such-backing", mnt);
  EXPECT_NE(rc, 0);
  EXPECT_NE(rc, 127) << "helper binary missing";
  EXPECT_NE(rc, -2) << "serve() did not give up";
  EXPECT_FALSE(is_mounted(mnt, "fuse.fsysfs"));
  remove_tree(base);
}

}  // namespace
}  // namespace fsysfs::test
