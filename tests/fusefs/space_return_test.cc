// SpaceReturn's rule for when an operation that met a full backing fs waits, with a scan
// that reports what the test says the daemon holds. The mount tests
// (removed_space_test.cc) check the same on a real full filesystem.

#include "fusefs/space_return.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace fsysfs::fusefs {
namespace {

using namespace std::chrono_literals;
using Clock = SpaceReturn::Clock;

class SpaceReturnTest : public ::testing::Test {
 protected:
  SpaceReturn::Held scan() {
    ++scans_;
    SpaceReturn::Held h;
    if (holds_) h.files.emplace_back(1, 42);
    return h;
  }

  std::atomic<int> scans_{0};
  std::atomic<bool> holds_{false};
  std::atomic<uint64_t> free_{0};
  SpaceReturn space_{4, [this] { return scan(); }, [this] { return free_.load(); }};
};

TEST_F(SpaceReturnTest, NothingRemoved_NoWaitAndNoScan) {
  const uint64_t sample = space_.sample();
  EXPECT_FALSE(space_.may_return(sample));
  EXPECT_FALSE(space_.wait(sample, Clock::now() + 10s));
  EXPECT_EQ(scans_, 0);
}

TEST_F(SpaceReturnTest, RemovedButNothingHeld_NoWait_ThenSettled) {
  space_.removed();
  const uint64_t sample = space_.sample();
  EXPECT_TRUE(space_.may_return(sample));
  const auto start = Clock::now();
  EXPECT_FALSE(space_.wait(sample, start + 10s));
  EXPECT_LT(Clock::now() - start, 5s);
  EXPECT_EQ(scans_, 1);
  // Nothing changed since: the next full operation does not even scan.
  EXPECT_FALSE(space_.may_return(sample));
  EXPECT_FALSE(space_.wait(sample, Clock::now() + 10s));
  EXPECT_EQ(scans_, 1);
}

TEST_F(SpaceReturnTest, HeldFileLetGo_WaitEndsThen) {
  space_.removed();
  holds_ = true;
  const uint64_t sample = space_.sample();
  std::thread forget([this] {
    while (scans_ == 0) std::this_thread::yield();
    holds_ = false;
    SpaceReturn::Dropping dropping(&space_);
  });
  const auto start = Clock::now();
  EXPECT_TRUE(space_.wait(sample, start + 10s));
  EXPECT_LT(Clock::now() - start, 5s);
  forget.join();
}

// The call failed, then the file was let go before the wait began: no lost wake-up.
TEST_F(SpaceReturnTest, LetGoBetweenTheCallAndTheWait_TriesAgainAtOnce) {
  const uint64_t sample = space_.sample();
  { SpaceReturn::Dropping dropping(&space_); }
  EXPECT_TRUE(space_.may_return(sample));
  EXPECT_TRUE(space_.wait(sample, Clock::now() + 10s));
}

// A reference already out of the scan's sight but not closed yet still counts.
TEST_F(SpaceReturnTest, BeingDropped_IsWaitedFor) {
  space_.removed();
  const uint64_t sample = space_.sample();
  std::atomic<bool> open{false};
  std::thread close([&] {
    SpaceReturn::Dropping dropping(&space_);
    open = true;
    while (scans_ == 0) std::this_thread::yield();
  });
  while (!open) std::this_thread::yield();
  EXPECT_TRUE(space_.wait(sample, Clock::now() + 10s));
  close.join();
}

// Held by something else (another process has it open): the wait ends at its deadline,
// and later ones do not wait for that file again until an open of it is closed.
TEST_F(SpaceReturnTest, HeldElsewhere_WaitsUntilTheDeadlineOnce_AgainAfterAClose) {
  space_.removed();
  holds_ = true;
  uint64_t sample = space_.sample();
  const auto start = Clock::now();
  EXPECT_FALSE(space_.wait(sample, start + 50ms));
  EXPECT_GE(Clock::now() - start, 50ms);
  EXPECT_FALSE(space_.may_return(sample));

  space_.removed();  // another file removed, found not held
  sample = space_.sample();
  const auto again = Clock::now();
  EXPECT_FALSE(space_.wait(sample, again + 10s));
  EXPECT_LT(Clock::now() - again, 5s);
  EXPECT_EQ(scans_, 2);

  space_.closing(1, 42);
  EXPECT_TRUE(space_.may_return(sample));
  const auto third = Clock::now();
  EXPECT_FALSE(space_.wait(sample, third + 50ms));
  EXPECT_GE(Clock::now() - third, 50ms);
}

// The backing fs may still be freeing what the daemon let go of a moment ago.
TEST_F(SpaceReturnTest, NothingHeldRightAfterALetGo_WaitsForTheFreeSpaceToGrow) {
  { SpaceReturn::Dropping dropping(&space_); }
  space_.removed();
  const uint64_t sample = space_.sample();
  std::thread freeing([this] {
    while (scans_ == 0) std::this_thread::yield();
    free_ = 100;
  });
  const auto start = Clock::now();
  EXPECT_TRUE(space_.wait(sample, start + 10s));
  EXPECT_LT(Clock::now() - start, SpaceReturn::kFreeing + 1s);
  freeing.join();
}

TEST_F(SpaceReturnTest, NothingHeldRightAfterALetGo_FreeSpaceNeverGrows_OneMoreTry) {
  { SpaceReturn::Dropping dropping(&space_); }
  space_.removed();
  const uint64_t sample = space_.sample();
  EXPECT_TRUE(space_.wait(sample, Clock::now() + 10s));
  const auto start = Clock::now();
  EXPECT_FALSE(space_.wait(sample, start + 10s));
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST_F(SpaceReturnTest, NoRoomForAnotherWaiter_NoWait) {
  SpaceReturn none(
      0, [this] { return scan(); }, [] { return uint64_t{0}; });
  none.removed();
  holds_ = true;
  const uint64_t sample = none.sample();
  EXPECT_FALSE(none.wait(sample, Clock::now() + 10s));
  EXPECT_EQ(scans_, 0);
}

// Results are -errno or a count (bytes, an fd): fd 28 is not ENOSPC.
TEST(SpaceReturnFull, OnlyNegativeEnospcAndEdquot) {
  EXPECT_TRUE(SpaceReturn::full(-ENOSPC));
  EXPECT_TRUE(SpaceReturn::full(-EDQUOT));
  EXPECT_FALSE(SpaceReturn::full(ENOSPC));
  EXPECT_FALSE(SpaceReturn::full(EDQUOT));
  EXPECT_FALSE(SpaceReturn::full(-EIO));
  EXPECT_FALSE(SpaceReturn::full(0));
}

}  // namespace
}  // namespace fsysfs::fusefs
