// DataState: when an inode's data counts as durable (fsync elision, durability=close).

#include "fusefs/data_state.h"

#include <gtest/gtest.h>

namespace fsysfs::fusefs {
namespace {

TEST(DataState, UnknownUntilASyncSucceeds) {
  DataState d;
  EXPECT_FALSE(d.clean());
  d.durable(d.sample());
  EXPECT_TRUE(d.clean());
}

TEST(DataState, AChangeAfterTheSampleKeepsItDirty) {
  DataState d;
  uint64_t s = d.sample();
  d.changed();  // completed while the sync was in flight: maybe not covered
  d.durable(s);
  EXPECT_FALSE(d.clean());
  d.durable(d.sample());
  EXPECT_TRUE(d.clean());
}

TEST(DataState, AnOlderSyncFinishingLastDoesNotUndoANewerOne) {
  DataState d;
  d.changed();
  uint64_t older = d.sample();
  d.changed();
  uint64_t newer = d.sample();
  d.durable(newer);
  d.durable(older);
  EXPECT_TRUE(d.clean());
  d.changed();
  EXPECT_FALSE(d.clean());
}

}  // namespace
}  // namespace fsysfs::fusefs
