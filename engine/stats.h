#pragma once

// Engine statistics: lock-free counters and latency histograms, cheap enough to stay on.
// Any thread may record; snapshot() may run concurrently with recording (each value is
// read atomically, the set of values is not one instant).

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace fsysfs::engine {

enum class OpKind : uint8_t {
  kRead,
  kWrite,
  kFdatasync,
  kFsync,
  kWriteFdatasync,  // linked write+fdatasync
  kWriteFsync,      // linked write+fsync
  kNvmeFlush,
  kCount
};
const char* op_kind_name(OpKind k) noexcept;

// Log-linear latency histogram in nanoseconds: 4 sub-buckets per power of two, so a
// reported percentile is at most 25% above the true value.
class Histogram {
 public:
  static constexpr int kSub = 4;
  static constexpr int kBuckets = 64 * kSub;
  void record(uint64_t ns) noexcept;
  void reset() noexcept;
  uint64_t count() const noexcept;
  // Upper bound of the bucket holding quantile q (0 < q <= 1); 0 when empty.
  uint64_t quantile(double q) const noexcept;
  uint64_t max() const noexcept { return max_.load(std::memory_order_relaxed); }
  static int bucket_of(uint64_t ns) noexcept;
  static uint64_t bucket_upper(int bucket) noexcept;

 private:
  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> max_{0};
};

struct OpStats {
  uint64_t count = 0, bytes = 0, errors = 0;
  uint64_t p50_ns = 0, p90_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0;
};

struct StatsSnapshot {
  std::string backend;        // "io_uring" or "sync"
  std::string backend_notes;  // setup flags in use, or why the ring is not used
  unsigned fixed_files_total = 0, fixed_files_used = 0;
  unsigned buffers_total = 0, buffers_used = 0;
  std::array<OpStats, static_cast<size_t>(OpKind::kCount)> ops{};
  uint64_t fixed_buffer_writes = 0;  // from a registered buffer (WRITE_FIXED on the ring)
  uint64_t copied_writes = 0;        // pool exhausted: from a private copy
  uint64_t inline_ops = 0;           // run on the caller's thread (Options::inline_ops)
  uint64_t client_ring_ops = 0;      // run on the caller's own ring (client_ring.h)
  uint64_t inline_overflow = 0;      // to the backend: max_inline_waits were waiting inline
  uint64_t max_inline_waits = 0;     // Options::max_inline_waits (0 unless inline_ops is kAll)
  uint64_t raw_fd_ops = 0;           // no fixed-file slot: the raw fd was used
  uint64_t short_writes = 0;         // remainder resubmitted
  uint64_t sq_full = 0;              // a chain did not fit: submitted early
  uint64_t submits = 0;              // io_uring_enter calls that submitted SQEs
  uint64_t sqes = 0;                 // SQEs submitted by them
  uint64_t cqes = 0;                 // CQEs of ops reaped (the owner's wake-up READ excluded)
  uint64_t nvme_flush_errors = 0;
  uint64_t owner_sleeps = 0;  // the owner entered io_uring_enter to wait for a CQE
  const OpStats& op(OpKind k) const { return ops[static_cast<size_t>(k)]; }
};

class Stats {
 public:
  void record(OpKind k, uint64_t ns, int64_t res, uint64_t bytes) noexcept;
  void reset() noexcept;
  void fill(StatsSnapshot& s) const;

  std::atomic<uint64_t> fixed_buffer_writes{0}, copied_writes{0}, inline_ops{0}, client_ring_ops{0},
      inline_overflow{0}, raw_fd_ops{0}, short_writes{0}, sq_full{0}, submits{0}, sqes{0}, cqes{0},
      nvme_flush_errors{0}, owner_sleeps{0};

 private:
  struct PerOp {
    std::atomic<uint64_t> count{0}, bytes{0}, errors{0};
    Histogram latency;
  };
  std::array<PerOp, static_cast<size_t>(OpKind::kCount)> ops_;
};

uint64_t now_ns() noexcept;

}  // namespace fsysfs::engine
