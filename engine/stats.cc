#include "engine/stats.h"

#include <time.h>

#include <bit>

namespace fsysfs::engine {

const char* op_kind_name(OpKind k) noexcept {
  switch (k) {
    case OpKind::kRead:
      return "read";
    case OpKind::kWrite:
      return "write";
    case OpKind::kFdatasync:
      return "fdatasync";
    case OpKind::kFsync:
      return "fsync";
    case OpKind::kWriteFdatasync:
      return "write+fdatasync";
    case OpKind::kWriteFsync:
      return "write+fsync";
    case OpKind::kNvmeFlush:
      return "nvme_flush";
    case OpKind::kCount:
      break;
  }
  return "?";
}

uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

int Histogram::bucket_of(uint64_t ns) noexcept {
  if (ns < kSub) return static_cast<int>(ns);
  int msb = 63 - std::countl_zero(ns);  // >= 2
  int sub = static_cast<int>((ns >> (msb - 2)) & (kSub - 1));
  return (msb - 1) * kSub + sub;
}

uint64_t Histogram::bucket_upper(int bucket) noexcept {
  if (bucket < kSub) return static_cast<uint64_t>(bucket);
  int msb = bucket / kSub + 1;
  uint64_t sub = static_cast<uint64_t>(bucket % kSub);
  uint64_t lo = (uint64_t{1} << msb) | (sub << (msb - 2));
  return lo + (uint64_t{1} << (msb - 2)) - 1;
}

void Histogram::record(uint64_t ns) noexcept {
  buckets_[static_cast<size_t>(bucket_of(ns))].fetch_add(1, std::memory_order_relaxed);
  uint64_t m = max_.load(std::memory_order_relaxed);
  while (ns > m && !max_.compare_exchange_weak(m, ns, std::memory_order_relaxed)) {
  }
}

void Histogram::reset() noexcept {
  for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
  max_.store(0, std::memory_order_relaxed);
}

uint64_t Histogram::count() const noexcept {
  uint64_t n = 0;
  for (auto& b : buckets_) n += b.load(std::memory_order_relaxed);
  return n;
}

uint64_t Histogram::quantile(double q) const noexcept {
  std::array<uint64_t, kBuckets> snap;
  uint64_t n = 0;
  for (size_t i = 0; i < snap.size(); ++i)
    n += snap[i] = buckets_[i].load(std::memory_order_relaxed);
  if (n == 0) return 0;
  auto rank = static_cast<uint64_t>(q * static_cast<double>(n));
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < snap.size(); ++i) {
    seen += snap[i];
    if (seen >= rank) {
      uint64_t upper = bucket_upper(static_cast<int>(i));
      uint64_t m = max();
      return upper < m || m == 0 ? upper : m;
    }
  }
  return max();
}

void Stats::record(OpKind k, uint64_t ns, int64_t res, uint64_t bytes) noexcept {
  auto& p = ops_[static_cast<size_t>(k)];
  p.count.fetch_add(1, std::memory_order_relaxed);
  if (res < 0) {
    p.errors.fetch_add(1, std::memory_order_relaxed);
  } else {
    p.bytes.fetch_add(bytes, std::memory_order_relaxed);
  }
  p.latency.record(ns);
}

void Stats::reset() noexcept {
  for (auto& p : ops_) {
    p.count = 0;
    p.bytes = 0;
    p.errors = 0;
    p.latency.reset();
  }
  for (auto* c : {&fixed_buffer_writes, &copied_writes, &inline_ops, &client_ring_ops,
                  &inline_overflow, &raw_fd_ops, &short_writes, &sq_full, &submits, &sqes, &cqes,
                  &nvme_flush_errors, &owner_sleeps})
    c->store(0, std::memory_order_relaxed);
}

void Stats::fill(StatsSnapshot& s) const {
  for (size_t i = 0; i < ops_.size(); ++i) {
    const auto& p = ops_[i];
    auto& o = s.ops[i];
    o.count = p.count.load(std::memory_order_relaxed);
    o.bytes = p.bytes.load(std::memory_order_relaxed);
    o.errors = p.errors.load(std::memory_order_relaxed);
    o.p50_ns = p.latency.quantile(0.50);
    o.p90_ns = p.latency.quantile(0.90);
    o.p99_ns = p.latency.quantile(0.99);
    o.p999_ns = p.latency.quantile(0.999);
    o.max_ns = p.latency.max();
  }
  s.fixed_buffer_writes = fixed_buffer_writes.load(std::memory_order_relaxed);
  s.copied_writes = copied_writes.load(std::memory_order_relaxed);
  s.inline_ops = inline_ops.load(std::memory_order_relaxed);
  s.client_ring_ops = client_ring_ops.load(std::memory_order_relaxed);
  s.inline_overflow = inline_overflow.load(std::memory_order_relaxed);
  s.raw_fd_ops = raw_fd_ops.load(std::memory_order_relaxed);
  s.short_writes = short_writes.load(std::memory_order_relaxed);
  s.sq_full = sq_full.load(std::memory_order_relaxed);
  s.submits = submits.load(std::memory_order_relaxed);
  s.owner_sleeps = owner_sleeps.load(std::memory_order_relaxed);
  s.sqes = sqes.load(std::memory_order_relaxed);
  s.cqes = cqes.load(std::memory_order_relaxed);
  s.nvme_flush_errors = nvme_flush_errors.load(std::memory_order_relaxed);
}

}  // namespace fsysfs::engine
