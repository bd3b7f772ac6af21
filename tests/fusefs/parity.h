#pragma once

// Parity testing: a scenario runs once under a plain directory and once under the mount;
// every result it records (return value, errno, bytes, stat fields) must be the same.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace fsysfs::test {

// Records results as text lines. `root` is prefixed to relative paths by p().
class Recorder {
 public:
  explicit Recorder(std::string root) : root_(std::move(root)) {}

  std::string p(const std::string& rel) const { return root_ + "/" + rel; }
  const std::string& root() const { return root_; }

  // A syscall result: "ok" or the errno name; records the value too when `value`.
  long rc(const std::string& what, long r, bool value = false);
  // Same, but an fd: only success or errno is recorded; the fd is returned.
  int fd(const std::string& what, int r) { return static_cast<int>(rc(what, r)); }
  // An open whose fd is not needed: records the result and closes the fd.
  void open_probe(const std::string& what, int r) {
    if (rc(what, r) >= 0) ::close(r);
  }
  // lstat fields that a passthrough must preserve (no inode numbers, no times).
  void stat(const std::string& what, const std::string& rel);
  void stat_fd(const std::string& what, int fd);
  // Anything else that must match.
  void note(const std::string& what, const std::string& value);
  // File content read through a fresh open (or the errno).
  void content(const std::string& what, const std::string& rel);

  std::vector<std::string> lines;

 private:
  void stat_fields(const std::string& what, const struct stat& st);
  std::string root_;
};

using Scenario = std::function<void(Recorder&)>;

// Runs `s` on both roots and expects equal records (and at least one record).
void expect_parity(const std::string& plain_root, const std::string& mount_root, const Scenario& s);

// Runs `s` in a forked child with uid/gid `id` and no supplementary groups; the child's
// records are appended to `r`.
void run_as(Recorder& r, uid_t uid, gid_t gid, const Scenario& s,
            const std::vector<gid_t>& groups = {});

std::string errno_name(int e);

// Test data whose every byte depends on (stream, offset) alone, so a byte written in the
// wrong place or the wrong file shows.
uint64_t mix(uint64_t x);
char pattern_byte(uint64_t stream, uint64_t off);
std::string pattern(uint64_t stream, uint64_t off, size_t len);
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& data);

}  // namespace fsysfs::test
