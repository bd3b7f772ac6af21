// The mount's cap on dirty page cache (-o max_dirty, fusefs/dirty_limit.h): what the kernel's
// bdi of the mount shows in sysfs and what the stats report, per option, and the bytes that
// a writeback-cache mount let pile up reaching BACKING whole.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <ostream>
#include <string>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/stats_json.h"

namespace fsysfs::test {
namespace {

struct Case {
  const char* name;
  const char* options;
  unsigned max_ratio;  // when not 0: percent, as sysfs shows it
  uint64_t max_bytes;  // when not 0: sysfs's max_bytes, within 1% (it is kept as a ratio)
  bool strict_limit;
};

// gtest names the parameter by its options in test listings.
void PrintTo(const Case& c, std::ostream* os) { *os << c.options; }

// max_bytes follows the system's dirty threshold, which moves with free memory.
void expect_near(uint64_t got, uint64_t want) {
  EXPECT_LE(got, want + want / 100) << "want " << want;
  EXPECT_GE(got, want - want / 100) << "want " << want;
}

// The parameter is the mount options and what the mount's bdi must show.
class MaxDirty : public MountFixture, public ::testing::WithParamInterface<Case> {
 protected:
  std::string mount_options() const override { return GetParam().options; }

  // /sys/class/bdi/<major:minor>/<name> of the mount, as a number.
  uint64_t bdi_value(const char* name) {
    struct stat st;
    EXPECT_EQ(::stat(mnt_.c_str(), &st), 0) << std::strerror(errno);
    std::ifstream in("/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" +
                     std::to_string(minor(st.st_dev)) + "/" + name);
    uint64_t value = 0;
    EXPECT_TRUE(in >> value) << name;
    return value;
  }
};

TEST_P(MaxDirty, BdiAndStatsShowTheLimit) {
  // Only root may change a bdi's limits: without root every mount keeps FUSE's own cap.
  const Case c = ::geteuid() == 0 ? GetParam() : Case{"", "", 1, 0, true};
  const uint64_t ratio = bdi_value("max_ratio");
  const uint64_t bytes = bdi_value("max_bytes");
  EXPECT_EQ(bdi_value("strict_limit") != 0, c.strict_limit);
  if (c.max_ratio != 0) {
    EXPECT_EQ(ratio, c.max_ratio);
  }
  if (c.max_bytes != 0) {
    expect_near(bytes, c.max_bytes);
  }
  const std::string json = read_stats_json(mnt_);
  expect_near(json_number(json, {"dirty_limit", "max_bytes"}), bytes);
  EXPECT_EQ(json_number(json, {"dirty_limit", "max_ratio"}), ratio);
  EXPECT_NE(json.find(c.strict_limit ? "\"strict\":true" : "\"strict\":false"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Mounts, MaxDirty,
    ::testing::Values(
        // The writeback cache (on with durability=none) gets a local disk's limits.
        Case{"NoneAuto", "allow_other,durability=none", 100, 0, false},
        Case{"WritebackAuto", "allow_other,writeback_cache,max_dirty=auto", 100, 0, false},
        // Write-through mounts and max_dirty=kernel keep FUSE's own strict cap, 1%.
        Case{"WriteThrough", "allow_other", 1, 0, true},
        Case{"Kernel", "allow_other,durability=none,max_dirty=kernel", 1, 0, true},
        Case{"Size64M", "allow_other,durability=none,max_dirty=64M", 0, 64ull << 20, true}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

// Far more than FUSE's own cap (1% of the dirty limit) written through a writeback-cache
// mount: the kernel holds it and writes it back later; BACKING ends up with every byte.
class MaxDirtyData : public MountFixture {
 protected:
  std::string mount_options() const override { return "allow_other,durability=none"; }
};

TEST_F(MaxDirtyData, CachedWritesReachBackingWhole) {
  constexpr size_t kChunk = 1 << 20;
  constexpr size_t kChunks = 192;
  std::string chunk(kChunk, '\0');
  const std::string path = mnt_ + "/big";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  for (size_t i = 0; i < kChunks; ++i) {
    // Each chunk differs, so a chunk written at the wrong offset or twice shows.
    for (size_t j = 0; j < kChunk; j += 8) std::memcpy(&chunk[j], &i, sizeof i);
    ASSERT_EQ(::write(fd, chunk.data(), kChunk), static_cast<ssize_t>(kChunk))
        << std::strerror(errno);
  }
  // A random rewrite inside pages that may still be dirty.
  ASSERT_EQ(::pwrite(fd, "rewritten", 9, 77 * kChunk + 4095), 9);
  ASSERT_EQ(::close(fd), 0) << std::strerror(errno);
  // close() wrote the dirty pages back (fuse_flush); nothing more is needed for BACKING.
  fd = ::open((backing_ + "/big").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  struct stat st;
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(static_cast<size_t>(st.st_size), kChunks * kChunk);
  std::string got(kChunk, '\0');
  for (size_t i = 0; i < kChunks; ++i) {
    ASSERT_EQ(::pread(fd, got.data(), kChunk, static_cast<off_t>(i * kChunk)),
              static_cast<ssize_t>(kChunk));
    for (size_t j = 0; j < kChunk; j += 8) std::memcpy(&chunk[j], &i, sizeof i);
    if (i == 77) chunk.replace(4095, 9, "rewritten");
    ASSERT_TRUE(got == chunk) << "chunk " << i << " differs";
  }
  ::close(fd);
}

}  // namespace
}  // namespace fsysfs::test
