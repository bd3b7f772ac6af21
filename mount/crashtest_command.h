#pragma once

// `fsysfs crashtest`: the durability A/B runner. For each durability mode it runs a
// workload once uncrashed on a crash-simulation mount of a copy of a template directory
// (its length: the requests crash rules count), then, for each of N crash points spread
// over that length, runs it again on a fresh copy with a crash rule at that point, mounts
// what the rollback left without crashsim and runs a check (exit 0: the program recovered).
// A run is named by its seed, the same in every mode: the modes are compared at the same
// crash points. `--replay SEED --mode M` runs one run again alone and keeps what it left.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "fusefs/crash_plan.h"

namespace fsysfs::mount {

// Exit statuses: every crash run recovered; some did not; bad arguments or a failure of the
// tool itself (also a workload or check that fails without any crash); interrupted.
inline constexpr int kCrashtestRecovered = 0;
inline constexpr int kCrashtestFailedRuns = 1;
inline constexpr int kCrashtestError = 2;
inline constexpr int kCrashtestInterrupted = 130;

// Prints its own errors ("fsysfs: <why>") and returns one of the statuses above.
int run_crashtest(std::span<const std::string_view> args);

// The seed of crash run `index` of a crashtest seeded `seed`.
uint32_t crash_run_seed(uint64_t seed, uint32_t index);

// Where run `run_seed` crashes a workload of `ops` requests (ops > 0), and in what state.
struct CrashChoice {
  uint64_t op = 1;  // 1..ops
  bool after = false;
  fusefs::CrashPlan plan;
  // The crash rule for fsysfs inject: "op=all,count=12,crash=after[,keep=random,seed=S]".
  std::string rule() const;
};
CrashChoice choose_crash(uint32_t run_seed, uint64_t ops, fusefs::CrashKeep keep, bool tear);

}  // namespace fsysfs::mount
