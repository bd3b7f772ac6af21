#include "fusefs/blocking_pool.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

namespace fsysfs::fusefs {
namespace {

using namespace std::chrono_literals;

void wait_until_idle(BlockingPool& pool, unsigned n) {
  while (pool.idle_threads() < n) std::this_thread::yield();
}

// A long wait must never hold up work queued behind it, also when a thread was idle: the
// reliability test's stalled fsync and a bystander's request arrive together like this.
// Whether the idle thread wakes before the second piece is queued is up to the scheduler, so
// this runs many rounds; a pool that hands both to one thread fails within a few.
TEST(BlockingPool, WorkQueuedBehindALongWaitRunsMeanwhile) {
  for (int round = 0; round < 300; ++round) {
    BlockingPool pool(4);
    std::promise<void> warm;
    ASSERT_TRUE(pool.run([&] { warm.set_value(); }));
    warm.get_future().wait();
    wait_until_idle(pool, 1);

    std::promise<void> second_ran;
    auto second = second_ran.get_future();
    std::promise<void> release;
    auto released = release.get_future().share();
    ASSERT_TRUE(pool.run([released] { released.wait(); }));
    ASSERT_TRUE(pool.run([&] { second_ran.set_value(); }));
    const bool ran = second.wait_for(30s) == std::future_status::ready;
    release.set_value();
    ASSERT_TRUE(ran) << "round " << round << ": the second piece of work waited for the first";
  }
}

TEST(BlockingPool, AtTheThreadLimitWorkWaitsItsTurnAndStillRuns) {
  BlockingPool pool(1);
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> second_ran;
  ASSERT_TRUE(pool.run([released] { released.wait(); }));
  ASSERT_TRUE(pool.run([&] { second_ran.set_value(); }));
  auto second = second_ran.get_future();
  EXPECT_EQ(second.wait_for(0s), std::future_status::timeout);
  release.set_value();
  second.wait();
}

TEST(BlockingPool, DestructionRunsWhatIsQueued) {
  int ran = 0;
  {
    BlockingPool pool(1);
    std::promise<void> release;
    auto released = release.get_future().share();
    ASSERT_TRUE(pool.run([released] { released.wait(); }));
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.run([&] { ++ran; }));
    release.set_value();
  }
  EXPECT_EQ(ran, 3);
}

}  // namespace
}  // namespace fsysfs::fusefs
