#pragma once

// A private fsysfs mount per test: a temporary BACKING, MNT and PLAIN (a directory on the
// same filesystem as BACKING, for parity comparisons). SetUp starts the daemon in the
// foreground and waits (with a deadline) until MNT shows up as fuse.fsysfs in
// /proc/self/mountinfo; TearDown always unmounts and reaps the daemon.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace fsysfs::test {

// The daemon binary: $FSYSFS_TEST_BINARY, else the real `fsysfs` when built, else the
// test helper that calls fusefs::serve.
std::string daemon_binary();
// The test helper that calls fusefs::serve directly (tests/fusefs/serve_helper.cc).
std::string serve_helper_binary();

class MountFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // The -o options the daemon is started with.
  virtual std::string mount_options() const { return "allow_other,default_permissions"; }

  // Mounts again (after unmount()).
  void mount();
  void unmount();

  std::string base_;     // the temporary root
  std::string backing_;  // base_/backing
  std::string mnt_;      // base_/mnt
  std::string plain_;    // base_/plain
  std::string log_;      // base_/daemon.log: the daemon's output, shown when a test fails
  pid_t daemon_ = -1;
  bool mounted_ = false;
};

// What a command run by run_fsysfs did.
struct CommandResult {
  int status = -1;  // its exit status; -1 if it did not exit
  std::string out;
  std::string err;
};
// Runs daemon_binary() with `args` (a subcommand, a remount), its stdout and stderr captured
// in files under `dir`.
CommandResult run_fsysfs(const std::string& dir, std::vector<std::string> args);

// Why this kernel cannot run the io_uring transport now (fusefs/transport), or "" if it can.
std::string uring_transport_missing();

// True when `path` is a mount point of filesystem type `fstype` in /proc/self/mountinfo.
bool is_mounted(const std::string& path, const std::string& fstype);

// Runs a program (found on PATH) with stderr to /dev/null and none of the test runner's
// other fds; returns its exit status, or -1 if it did not exit.
int run_program(const std::vector<std::string>& argv);

// Removes a tree (no symlink following); ignores errors.
void remove_tree(const std::string& path);

}  // namespace fsysfs::test
