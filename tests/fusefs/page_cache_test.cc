// The kernel's page cache across opens (fusefs/page_cache.h): kept while the backing file
// is unchanged, dropped when it was changed behind the mount, never kept with
// keep_cache=off. Reads that reach the daemon are counted by the mount's own statistics.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"
#include "tests/fusefs/stats_json.h"

namespace fsysfs::test {
namespace {

class PageCache : public MountFixture {
 protected:
  uint64_t daemon_reads() { return json_count(read_stats_json(mnt_), {"fuse", "ops", "read"}); }

  // A 1 MiB file on BACKING with an mtime far in the past, so that any later change gives
  // it a different one.
  void make_file(char fill) {
    write_file(backing_ + "/f", std::string(1 << 20, fill));
    const struct timespec old[2] = {{1000, 0}, {1000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (backing_ + "/f").c_str(), old, 0), 0);
  }

  // Reads the whole file through a fresh open of the mount; returns the daemon's reads.
  uint64_t reads_for_one_pass(std::string* content = nullptr) {
    const uint64_t before = daemon_reads();
    std::string got = read_file(mnt_ + "/f");
    EXPECT_EQ(got.size(), 1u << 20);
    if (content != nullptr) *content = std::move(got);
    return daemon_reads() - before;
  }
};

TEST_F(PageCache, UnchangedFileIsServedFromTheKernelCacheWhenOpenedAgain) {
  make_file('a');
  EXPECT_GT(reads_for_one_pass(), 0u);
  EXPECT_EQ(reads_for_one_pass(), 0u);
}

// The cache may be kept at the reopen; either way the bytes are the new ones.
TEST_F(PageCache, WritesThroughTheMountAreSeenWhenOpenedAgain) {
  make_file('a');
  reads_for_one_pass();
  int fd = ::open((mnt_ + "/f").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::pwrite(fd, "bb", 2, 100), 2);
  ::close(fd);
  std::string content;
  reads_for_one_pass(&content);
  EXPECT_EQ(content.substr(99, 4), "abba");
  EXPECT_EQ(content.size(), 1u << 20);
}

TEST_F(PageCache, ChangeMadeDirectlyOnBackingIsSeenAtTheNextOpen) {
  make_file('a');
  reads_for_one_pass();
  // Same size, new bytes, new mtime.
  write_file(backing_ + "/f", std::string(1 << 20, 'z'));
  std::string content;
  EXPECT_GT(reads_for_one_pass(&content), 0u);
  EXPECT_EQ(content, std::string(1 << 20, 'z'));
}

constexpr char kNoKeepCache[] = "allow_other,keep_cache=off";
class PageCacheOff : public PageCache {
 protected:
  std::string mount_options() const override { return kNoKeepCache; }
};

TEST_F(PageCacheOff, EveryOpenReadsFromTheDaemon) {
  make_file('a');
  EXPECT_GT(reads_for_one_pass(), 0u);
  EXPECT_GT(reads_for_one_pass(), 0u);
}

}  // namespace
}  // namespace fsysfs::test
