#include "engine/stats.h"

#include <gtest/gtest.h>

namespace fsysfs::engine {
namespace {

TEST(Histogram, BucketsAreMonotonicAndCoverTheirValues) {
  for (uint64_t v : {0ull, 1ull, 3ull, 4ull, 5ull, 7ull, 8ull, 1000ull, 123456789ull, ~0ull >> 1}) {
    int b = Histogram::bucket_of(v);
    EXPECT_GE(Histogram::bucket_upper(b), v) << v;
    if (b > 0) {
      EXPECT_LT(Histogram::bucket_upper(b - 1), v) << v;
    }
  }
}

TEST(Histogram, QuantilesWithinOneBucket) {
  Histogram h;
  for (uint64_t i = 1; i <= 1000; ++i) h.record(i * 1000);  // 1 us .. 1 ms
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_EQ(h.max(), 1000000u);
  auto p50 = h.quantile(0.5);
  EXPECT_GE(p50, 500000u);
  EXPECT_LE(p50, 500000u * 5 / 4);
  auto p99 = h.quantile(0.99);
  EXPECT_GE(p99, 990000u);
  EXPECT_LE(p99, 1000000u);  // never above the true max
  h.reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.quantile(0.5), 0u);
}

TEST(Stats, CountsBytesAndErrorsPerKind) {
  Stats s;
  s.record(OpKind::kWrite, 100, 4096, 4096);
  s.record(OpKind::kWrite, 200, -5, 0);
  s.record(OpKind::kFsync, 300, 0, 0);
  StatsSnapshot snap;
  s.fill(snap);
  EXPECT_EQ(snap.op(OpKind::kWrite).count, 2u);
  EXPECT_EQ(snap.op(OpKind::kWrite).bytes, 4096u);
  EXPECT_EQ(snap.op(OpKind::kWrite).errors, 1u);
  EXPECT_EQ(snap.op(OpKind::kFsync).count, 1u);
  s.reset();
  s.fill(snap);
  EXPECT_EQ(snap.op(OpKind::kWrite).count, 0u);
}

}  // namespace
}  // namespace fsysfs::engine
