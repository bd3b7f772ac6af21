// Fault rules (parsing and matching) and the per-inode sync error record.

#include "fusefs/faults.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <variant>

#include "fusefs/error_seq.h"

namespace fsysfs::fusefs {
namespace {

FaultRule rule(std::string_view text) {
  auto parsed = parse_fault_rule(text);
  if (auto* why = std::get_if<std::string>(&parsed)) ADD_FAILURE() << text << ": " << *why;
  return std::get<FaultRule>(parsed);
}

std::string error_of(std::string_view text) {
  auto parsed = parse_fault_rule(text);
  auto* why = std::get_if<std::string>(&parsed);
  return why ? *why : "";
}

uint32_t bit(FaultOp op) { return 1u << static_cast<unsigned>(op); }

TEST(FaultRule, ParsesEveryKey) {
  FaultRule r = rule("op=fsync|fdatasync,path=/db/*.wal,errno=EIO,count=3,probability=0.5");
  EXPECT_EQ(r.ops, bit(FaultOp::kFsync) | bit(FaultOp::kFdatasync));
  EXPECT_EQ(r.glob, "/db/*.wal");
  EXPECT_EQ(r.error, EIO);
  EXPECT_EQ(r.remaining, 3);
  EXPECT_EQ(r.probability, 0.5);
  EXPECT_EQ(r.delay_ms, 0u);

  r = rule("op=rename,delay_ms=20");
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.delay_ms, 20u);
  EXPECT_EQ(r.glob, "*");
  EXPECT_EQ(r.remaining, -1);

  EXPECT_EQ(rule("op=all,errno=28").error, ENOSPC);
  EXPECT_EQ(rule("op=all,errno=ENOSPC").ops, (1u << static_cast<unsigned>(FaultOp::kCount)) - 1);
}

TEST(FaultRule, BadRulesSayWhatIsWrong) {
  EXPECT_EQ(error_of("op=write"), "a rule needs errno=E..., delay_ms=N or crash=before|after");
  EXPECT_EQ(error_of("errno=EIO"), "a rule needs op=OPERATION");
  EXPECT_TRUE(error_of("op=teleport,errno=EIO").starts_with("unknown operation 'teleport'"));
  EXPECT_TRUE(error_of("op=write|teleport,errno=EIO").starts_with("unknown operation 'teleport'"));
  EXPECT_TRUE(error_of("op=write,errno=EWHAT").starts_with("unknown errno 'EWHAT'"));
  EXPECT_TRUE(error_of("op=write,errno=EIO,count=0").starts_with("bad count '0'"));
  EXPECT_TRUE(error_of("op=write,errno=EIO,probability=0").starts_with("bad probability"));
  EXPECT_TRUE(error_of("op=write,errno=EIO,probability=1.5").starts_with("bad probability"));
  EXPECT_TRUE(error_of("op=write,delay_ms=-1").starts_with("bad delay_ms"));
  EXPECT_TRUE(error_of("op=write,errno=EIO,colour=red").starts_with("unknown key 'colour'"));
  EXPECT_EQ(error_of("op=write,errno"), "'errno' is not key=value");
  EXPECT_EQ(error_of("op=write,errno=EIO,path="), "path needs a glob, e.g. path=/dir/*.db");
}

TEST(Faults, MatchesOpAndGlob_CountsDown_Disarms) {
  Faults faults;
  EXPECT_FALSE(faults.armed(FaultOp::kWrite));
  faults.add(rule("op=write,path=/a/*,errno=EIO,count=2"));
  EXPECT_TRUE(faults.armed(FaultOp::kWrite));
  EXPECT_FALSE(faults.armed(FaultOp::kRead));
  EXPECT_FALSE(faults.match(FaultOp::kWrite, "/b/x"));
  EXPECT_FALSE(faults.match(FaultOp::kRead, "/a/x"));
  auto hit = faults.match(FaultOp::kWrite, "/a/deep/x");  // '*' crosses '/'
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->error, EIO);
  EXPECT_TRUE(faults.match(FaultOp::kWrite, "/a/y"));
  EXPECT_FALSE(faults.match(FaultOp::kWrite, "/a/z"));
  EXPECT_FALSE(faults.armed(FaultOp::kWrite));
  auto rules = faults.rules();
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].hits, 2u);
  EXPECT_EQ(rules[0].remaining, 0);
  faults.clear();
  EXPECT_TRUE(faults.rules().empty());
}

TEST(Faults, ACrashRuleFiresOnceAtTheNthMatch) {
  Faults faults;
  faults.add(rule("op=fsync,path=/f,count=3,crash=after,keep=random,seed=9,tear=1"));
  EXPECT_FALSE(faults.match(FaultOp::kFsync, "/g"));
  EXPECT_FALSE(faults.match(FaultOp::kFsync, "/f"));
  EXPECT_FALSE(faults.match(FaultOp::kFsync, "/f"));
  auto hit = faults.match(FaultOp::kFsync, "/f");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->crash, CrashPoint::kAfter);
  EXPECT_EQ(hit->error, 0);
  EXPECT_EQ(hit->plan.keep, CrashKeep::kRandom);
  EXPECT_EQ(hit->plan.seed, 9u);
  EXPECT_TRUE(hit->plan.tear);
  EXPECT_FALSE(faults.match(FaultOp::kFsync, "/f"));
  EXPECT_FALSE(faults.armed(FaultOp::kFsync));
  EXPECT_EQ(rule("op=all,crash=before").skip, 0);
  EXPECT_EQ(error_of("op=all,crash=after,tear=1"),
            "tearing writes needs keep=random (what else would decide which sectors are kept?)");
}

TEST(Faults, FirstMatchingRuleWins) {
  Faults faults;
  faults.add(rule("op=fsync,path=/x,errno=ENOSPC,count=1"));
  faults.add(rule("op=fsync,errno=EIO"));
  EXPECT_EQ(faults.match(FaultOp::kFsync, "/x")->error, ENOSPC);
  EXPECT_EQ(faults.match(FaultOp::kFsync, "/x")->error, EIO);
}

TEST(Faults, ProbabilityFiresSometimes) {
  Faults faults;
  faults.add(rule("op=read,errno=EIO,probability=0.25"));
  int fired = 0;
  for (int i = 0; i < 4000; ++i) fired += faults.match(FaultOp::kRead, "/f") ? 1 : 0;
  // The generator is seeded: the count is fixed, and near 1000.
  EXPECT_GT(fired, 800);
  EXPECT_LT(fired, 1200);
}

TEST(ErrorSeq, EachCursorSeesTheLatestErrorOnce) {
  ErrorSeq seq;
  std::atomic<uint64_t> a{seq.sample()}, b{seq.sample()};
  EXPECT_EQ(seq.check(a), 0);
  seq.record(EIO, a);
  EXPECT_EQ(seq.check(a), 0);  // the recorder saw it
  std::atomic<uint64_t> late{seq.sample()};
  EXPECT_EQ(seq.check(b), EIO);
  EXPECT_EQ(seq.check(b), 0);
  EXPECT_EQ(seq.check(late), 0);
  seq.record(ENOSPC, b);
  EXPECT_EQ(seq.check(a), ENOSPC);
  EXPECT_EQ(seq.check(late), ENOSPC);
}

}  // namespace
}  // namespace fsysfs::fusefs
