#include "fusefs/inode_table.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

namespace fsysfs::fusefs {
namespace {

struct stat stat_of(int fd) {
  struct stat st;
  EXPECT_EQ(fstatat(fd, "", &st, AT_EMPTY_PATH), 0);
  return st;
}

UniqueFd path_fd(const char* p) { return UniqueFd(open(p, O_PATH | O_CLOEXEC)); }

InodeTable make_table() {
  UniqueFd root = path_fd("/");
  struct stat st = stat_of(root.get());
  return InodeTable(std::make_unique<Inode>(std::move(root), st.st_dev, st.st_ino, S_IFDIR, 0));
}

TEST(InodeTable, SameKeyGivesSameInodeAndCountsLookups) {
  InodeTable t = make_table();
  UniqueFd a = path_fd("/tmp");
  struct stat st = stat_of(a.get());
  Inode* first = t.find_or_insert(std::move(a), st);
  Inode* second = t.find_or_insert(path_fd("/tmp"), st);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first, second);
  EXPECT_EQ(first->nlookup.load(), 2u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(&t.get(t.id_of(*first)), first);
  t.forget(t.id_of(*first), 1);
  EXPECT_EQ(t.size(), 1u);
  t.forget(t.id_of(*first), 1);
  EXPECT_EQ(t.size(), 0u);
}

TEST(InodeTable, RootAnswersFuseRootIdAndIsNeverErased) {
  InodeTable t = make_table();
  EXPECT_EQ(t.id_of(t.root()), FUSE_ROOT_ID);
  EXPECT_EQ(&t.get(FUSE_ROOT_ID), &t.root());
  UniqueFd r = path_fd("/");
  struct stat st = stat_of(r.get());
  EXPECT_EQ(t.find_or_insert(std::move(r), st), &t.root());
  t.forget(FUSE_ROOT_ID, 5);
  EXPECT_EQ(t.size(), 0u);
}

TEST(InodeTable, NewInodeAfterForgetGetsNewGeneration) {
  InodeTable t = make_table();
  UniqueFd a = path_fd("/tmp");
  struct stat st = stat_of(a.get());
  Inode* first = t.find_or_insert(std::move(a), st);
  uint64_t gen = first->generation;
  t.forget(t.id_of(*first), 1);
  Inode* again = t.find_or_insert(path_fd("/tmp"), st);
  EXPECT_NE(again->generation, gen);
}

TEST(InodeTable, ConcurrentLookupAndForgetKeepCountsExact) {
  InodeTable t = make_table();
  UniqueFd a = path_fd("/tmp");
  struct stat st = stat_of(a.get());
  Inode* keep = t.find_or_insert(std::move(a), st);  // held for the whole test
  fuse_ino_t id = t.id_of(*keep);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 2000; ++j) {
        Inode* in = t.find_or_insert(path_fd("/tmp"), st);
        t.forget(t.id_of(*in), 1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(keep->nlookup.load(), 1u);
  t.forget(id, 1);
  EXPECT_EQ(t.size(), 0u);
}

TEST(InodeTable, ForgottenThenRevivedByConcurrentLookupSurvives) {
  // Lookups and forgets race on an inode whose count drops to zero over and over; every
  // lookup must get a live inode (with its fd) and the table must end empty.
  InodeTable t = make_table();
  UniqueFd a = path_fd("/tmp");
  struct stat st = stat_of(a.get());
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 2000; ++j) {
        Inode* in = t.find_or_insert(path_fd("/tmp"), st);
        if (!in->fd.valid() || in->ino != st.st_ino) bad++;
        t.forget(t.id_of(*in), 1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(t.size(), 0u);
}

}  // namespace
}  // namespace fsysfs::fusefs
