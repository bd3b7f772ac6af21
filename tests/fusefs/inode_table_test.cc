#include "fusefs/inode_table.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "tests/temp_dir.h"

namespace fsysfs::fusefs {
namespace {

struct stat stat_of(int fd) {
  struct stat st;
  EXPECT_EQ(fstatat(fd, "", &st, AT_EMPTY_PATH), 0);
  return st;
}

UniqueFd path_fd(const std::string& p) { return UniqueFd(open(p.c_str(), O_PATH | O_CLOEXEC)); }

std::unique_ptr<Inode> root_inode(const std::string& p) {
  UniqueFd root = path_fd(p);
  struct stat st = stat_of(root.get());
  return std::make_unique<Inode>(FUSE_ROOT_ID, std::move(root), st.st_dev, st.st_ino, S_IFDIR, 0);
}

// Without backing handles: forgotten nodes are erased at once, as before export support.
InodeTable make_table() { return InodeTable(root_inode("/")); }

// Looks `p` up as a lookup by name would.
Inode* lookup(InodeTable& t, const std::string& p) {
  UniqueFd fd = path_fd(p);
  struct stat st = stat_of(fd.get());
  return t.find_or_insert(std::move(fd), st);
}

TEST(InodeTable, SameKeyGivesSameInodeAndCountsLookups) {
  InodeTable t = make_table();
  Inode* first = lookup(t, "/tmp");
  Inode* second = lookup(t, "/tmp");
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
  EXPECT_EQ(lookup(t, "/"), &t.root());
  Inode* by_id = nullptr;
  EXPECT_EQ(t.find_by_id(FUSE_ROOT_ID, &by_id), 0);
  EXPECT_EQ(by_id, &t.root());
  t.forget(FUSE_ROOT_ID, 5);
  EXPECT_EQ(t.size(), 0u);
}

TEST(InodeTable, NodeIdsAreNotAddressesAndNeverReused) {
  InodeTable t = make_table();
  Inode* first = lookup(t, "/tmp");
  const fuse_ino_t id = t.id_of(*first);
  const uint64_t gen = first->generation;
  EXPECT_NE(id, reinterpret_cast<fuse_ino_t>(first));
  EXPECT_GT(id, 2u);  // FUSE_ROOT_ID and the control file's
  EXPECT_NE(gen, 0u);
  EXPECT_LE(gen, UINT32_MAX);  // all the kernel keeps
  t.forget(id, 1);
  Inode* again = lookup(t, "/tmp");
  EXPECT_NE(t.id_of(*again), id);
  EXPECT_EQ(again->generation, gen);
  // The forgotten id is unknown now: a file handle naming it is stale, never a crash.
  Inode* none = nullptr;
  EXPECT_EQ(t.find_by_id(id, &none), -ESTALE);
  EXPECT_EQ(t.find_by_id(0xdeadbeef, &none), -ESTALE);
  EXPECT_EQ(none, nullptr);
  EXPECT_EQ(t.counts().stale, 2u);
  t.forget(t.id_of(*again), 1);
}

TEST(InodeTable, TwoTablesDrawDifferentIdsAndGenerations) {
  // Two daemons of the same backing: a handle of the first never matches a node of the
  // second (ESTALE in the kernel's generation check, if not already for the id).
  InodeTable a = make_table();
  InodeTable b = make_table();
  Inode* in_a = lookup(a, "/tmp");
  Inode* in_b = lookup(b, "/tmp");
  EXPECT_NE(a.id_of(*in_a), b.id_of(*in_b));
  EXPECT_NE(in_a->generation, in_b->generation);
}

TEST(InodeTable, ConcurrentLookupAndForgetKeepCountsExact) {
  InodeTable t = make_table();
  Inode* keep = lookup(t, "/tmp");  // held for the whole test
  fuse_ino_t id = t.id_of(*keep);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 2000; ++j) {
        Inode* in = lookup(t, "/tmp");
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
  struct stat st;
  ASSERT_EQ(stat("/tmp", &st), 0);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 2000; ++j) {
        Inode* in = lookup(t, "/tmp");
        if (!in->fd.valid() || in->ino != st.st_ino) bad++;
        t.forget(t.id_of(*in), 1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(t.size(), 0u);
}

// With backing handles: forgotten nodes are remembered for file handles.
class RememberingTable : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.mkdir("root");
    UniqueFd fd = path_fd(root_);
    std::string why;
    BackingHandles handles = BackingHandles::probe(fd.get(), &why);
    if (!handles.enabled()) GTEST_SKIP() << "no backing file handles: " << why;
    table_ = std::make_unique<InodeTable>(root_inode(root_), std::move(handles), kRemember);
  }
  static constexpr size_t kRemember = 3;
  testing::TempDir dir_;
  std::string root_;
  std::unique_ptr<InodeTable> table_;
};

TEST_F(RememberingTable, ForgottenNodeReopensByIdWithItsIdAndGeneration) {
  InodeTable& t = *table_;
  dir_.write("root/f", "f");
  Inode* in = lookup(t, root_ + "/f");
  const fuse_ino_t id = t.id_of(*in);
  const uint64_t gen = in->generation;
  const ino_t ino = in->ino;
  t.forget(id, 1);
  EXPECT_EQ(t.counts().live, 0u);
  EXPECT_EQ(t.counts().remembered, 1u);
  Inode* back = nullptr;
  ASSERT_EQ(t.find_by_id(id, &back), 0);
  EXPECT_EQ(t.id_of(*back), id);
  EXPECT_EQ(back->generation, gen);
  EXPECT_EQ(back->ino, ino);
  EXPECT_EQ(back->file_type, static_cast<mode_t>(S_IFREG));
  EXPECT_TRUE(back->fd.valid());
  EXPECT_EQ(back->nlookup.load(), 1u);
  EXPECT_EQ(&t.get(id), back);
  EXPECT_EQ(t.counts().reopened, 1u);
  EXPECT_EQ(t.counts().remembered, 0u);
  // A name lookup now finds the same live node.
  EXPECT_EQ(lookup(t, root_ + "/f"), back);
  t.forget(id, 2);
  EXPECT_EQ(t.counts().live, 0u);
}

TEST_F(RememberingTable, LookupByNameBringsTheRememberedNodeBack) {
  InodeTable& t = *table_;
  dir_.mkdir("root/d");
  Inode* in = lookup(t, root_ + "/d");
  const fuse_ino_t id = t.id_of(*in);
  t.forget(id, 1);
  Inode* again = lookup(t, root_ + "/d");
  EXPECT_EQ(t.id_of(*again), id);
  EXPECT_EQ(t.counts().remembered, 0u);
  EXPECT_EQ(t.counts().reopened, 0u);
  t.forget(id, 1);
}

TEST_F(RememberingTable, RemovedFileIsStaleAndForgottenForGood) {
  InodeTable& t = *table_;
  const std::string f = dir_.write("root/f", "f");
  Inode* in = lookup(t, f);
  const fuse_ino_t id = t.id_of(*in);
  t.forget(id, 1);
  ASSERT_EQ(unlink(f.c_str()), 0);
  Inode* none = nullptr;
  EXPECT_EQ(t.find_by_id(id, &none), -ESTALE);
  EXPECT_EQ(t.counts().remembered, 0u);
  EXPECT_EQ(t.find_by_id(id, &none), -ESTALE);
  EXPECT_EQ(t.counts().stale, 2u);
}

TEST_F(RememberingTable, FileRemovedBeforeTheKernelForgetsItIsNotRemembered) {
  InodeTable& t = *table_;
  const std::string f = dir_.write("root/f", "f");
  const std::string d = dir_.mkdir("root/d");
  Inode* file = lookup(t, f);
  Inode* dir = lookup(t, d);
  const fuse_ino_t file_id = t.id_of(*file);
  const fuse_ino_t dir_id = t.id_of(*dir);
  ASSERT_EQ(unlink(f.c_str()), 0);
  ASSERT_EQ(rmdir(d.c_str()), 0);
  t.forget(file_id, 1);
  t.forget(dir_id, 1);
  EXPECT_EQ(t.counts().remembered, 0u);
  Inode* none = nullptr;
  EXPECT_EQ(t.find_by_id(file_id, &none), -ESTALE);
  EXPECT_EQ(t.find_by_id(dir_id, &none), -ESTALE);
}

TEST_F(RememberingTable, NewFileOnAReusedInodeNumberGetsANewNode) {
  // ext4 gives a freed inode number to the next file created nearby; the remembered node
  // of the removed file must not become the new file's (its handles would open it).
  InodeTable& t = *table_;
  for (int attempt = 0; attempt < 50; ++attempt) {
    const std::string f = dir_.write("root/old", "old");
    Inode* in = lookup(t, f);
    const fuse_ino_t id = t.id_of(*in);
    const ino_t ino = in->ino;
    t.forget(id, 1);
    ASSERT_EQ(unlink(f.c_str()), 0);
    const std::string g = dir_.write("root/new", "new");
    struct stat st;
    ASSERT_EQ(stat(g.c_str(), &st), 0);
    if (st.st_ino != ino) {
      ASSERT_EQ(unlink(g.c_str()), 0);
      continue;
    }
    Inode* fresh = lookup(t, g);
    EXPECT_NE(t.id_of(*fresh), id);
    Inode* none = nullptr;
    EXPECT_EQ(t.find_by_id(id, &none), -ESTALE);
    t.forget(t.id_of(*fresh), 1);
    return;
  }
  GTEST_SKIP() << "the backing filesystem never reused an inode number";
}

TEST_F(RememberingTable, RememberedNodesAreBounded_LongestForgottenDroppedFirst) {
  InodeTable& t = *table_;
  std::vector<fuse_ino_t> ids;
  for (int i = 0; i < 5; ++i) {
    Inode* in = lookup(t, dir_.write("root/f" + std::to_string(i), "x"));
    ids.push_back(t.id_of(*in));
  }
  for (fuse_ino_t id : ids) t.forget(id, 1);
  EXPECT_EQ(t.counts().remembered, kRemember);
  EXPECT_EQ(t.counts().dropped, 2u);
  Inode* in = nullptr;
  EXPECT_EQ(t.find_by_id(ids[0], &in), -ESTALE);
  EXPECT_EQ(t.find_by_id(ids[1], &in), -ESTALE);
  for (size_t i = 2; i < ids.size(); ++i) {
    ASSERT_EQ(t.find_by_id(ids[i], &in), 0) << i;
    EXPECT_EQ(t.id_of(*in), ids[i]);
  }
  EXPECT_EQ(t.counts().remembered, 0u);
  EXPECT_EQ(t.counts().live, 3u);
}

TEST_F(RememberingTable, ConcurrentHandleLookupsNameLookupsAndForgetsKeepCountsExact) {
  // The kernel's LOOKUP "." (file handles), lookups by name and FORGETs of one node race;
  // every reference taken is given back, so the node ends remembered, never live or lost.
  InodeTable& t = *table_;
  const std::string f = dir_.write("root/f", "f");
  Inode* first = lookup(t, f);
  const fuse_ino_t id = t.id_of(*first);
  t.forget(id, 1);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 1000; ++j) {
        Inode* in = nullptr;
        if (i % 2 == 0) {
          if (t.find_by_id(id, &in) != 0) {
            bad++;
            continue;
          }
        } else {
          in = lookup(t, f);
        }
        if (t.id_of(*in) != id || !in->fd.valid()) bad++;
        t.forget(id, 1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(t.counts().live, 0u);
  EXPECT_EQ(t.counts().remembered, 1u);
}

// What the daemon holds of removed files: listed by the scan; the scan's own references go
// again; a closed Inode is let go to the SpaceReturn.
TEST(InodeTable, RemovedHeld_ListsInodesWithNoNameLeft_ForgetLetsThemGo) {
  fsysfs::testing::TempDir dir;
  const std::string kept = dir.write("kept", "k");
  const std::string gone = dir.write("gone", "g");
  SpaceReturn space(
      1, [] { return SpaceReturn::Held{}; }, [] { return uint64_t{0}; });
  InodeTable t(root_inode("/"), {}, 0, &space);
  Inode* k = lookup(t, kept);
  Inode* g = lookup(t, gone);
  ASSERT_TRUE(k != nullptr && g != nullptr);
  ASSERT_EQ(unlink(gone.c_str()), 0);
  std::vector<std::pair<dev_t, ino_t>> held;
  t.removed_held(&held);
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0], std::make_pair(g->dev, g->ino));
  EXPECT_EQ(g->nlookup.load(), 1u);
  EXPECT_EQ(k->nlookup.load(), 1u);

  const uint64_t before = space.sample();
  t.forget(t.id_of(*g), 1);
  EXPECT_NE(space.sample(), before) << "a closed Inode was not let go";
  held.clear();
  t.removed_held(&held);
  EXPECT_TRUE(held.empty());
  t.forget(t.id_of(*k), 1);
}

}  // namespace
}  // namespace fsysfs::fusefs
