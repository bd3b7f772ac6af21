#pragma once

// The engine's ops on one io_uring: preps their SQEs (a linked write+sync as one chain,
// never split across submissions) and turns their CQEs into completions (short writes
// resumed, a cancelled sync never taken for success). Shared by the engine's own ring and
// a client's ring (client_ring.h). Internal to engine/.
//
// Thread safety: none; only the thread that owns the ring may call it.

#include <liburing.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <utility>

#include "engine/file_table.h"
#include "engine/op.h"

namespace fsysfs::engine {

// user_data of an op's SQE: its Op address (8-byte aligned) with a low-bit tag. Values with
// bit 1 set are never an op's, and are left to the ring's owner (wake-ups, its own SQEs).
inline constexpr uint64_t kOpTagMask = 3;
inline constexpr uint64_t kOpTagMain = 0;
inline constexpr uint64_t kOpTagSync = 1;
inline constexpr bool is_op_cqe(uint64_t user_data) noexcept { return (user_data & 2) == 0; }

class OpRing {
 public:
  struct Config {
    FileTable* files = nullptr;  // the engine ring's file table (File::slot_); null: none
    // On a client ring: the slot that names a file there (registering it on first use),
    // or -1 for its raw fd. Replaces `files`.
    std::function<int(File&)> client_slot;
    bool buffers_registered = false;  // the engine's buffer pool is registered on the ring
    bool skip_write_cqe = false;      // IORING_FEAT_CQE_SKIP: a chain posts one CQE, not two
    bool sqpoll = false;
    unsigned cq_capacity = 0;  // CQEs the ring's ops may have outstanding at once
  };

  OpRing(Engine& engine, io_uring& ring, Config config) noexcept
      : engine_(engine), ring_(ring), config_(std::move(config)) {}
  OpRing(const OpRing&) = delete;
  OpRing& operator=(const OpRing&) = delete;

  // Queues `op` behind the others waiting to be prepped.
  void push_back(Op* op) { pending_.push_back(op); }
  // Preps waiting ops, in order, while the completion queue has room for their CQEs; the
  // caller submits them.
  void prep_pending() noexcept;
  // Hands back a CQE whose user_data is_op_cqe(); may queue the rest of a short write.
  void on_cqe(uint64_t user_data, int32_t res) noexcept;
  // Nothing waiting and nothing in flight.
  bool idle() const noexcept { return pending_.empty() && cqes_in_flight_ == 0; }
  // Submits what is prepped, counting it in the engine's stats.
  void submit_now() noexcept;

 private:
  // Preps op's SQEs; false when the CQ has no room for them yet (op stays waiting).
  bool prep(Op* op) noexcept;
  void release_slot(Op* op) noexcept;
  // The slot that names f on this ring, or -1 (its raw fd).
  int slot_of(File& f) noexcept;
  void ensure_slot(File& f) noexcept;
  void set_file(io_uring_sqe* sqe, int slot) noexcept;

  Engine& engine_;
  io_uring& ring_;
  const Config config_;
  std::deque<Op*> pending_;      // not yet prepped, in order
  unsigned cqes_in_flight_ = 0;  // CQEs still to come for prepped SQEs
};

}  // namespace fsysfs::engine
