#pragma once

// An engine op: one request from a caller, pinned in memory from submission to
// completion (its address is the io_uring user_data). Internal to engine/.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "engine/engine.h"

namespace fsysfs::engine {

enum class OpType : uint8_t { kWrite, kRead, kSync, kReleaseSlot };

struct FreeBytes {
  void operator()(std::byte* p) const noexcept { std::free(p); }
};

struct Op {
  Op() = default;
  Op(const Op&) = delete;
  Op& operator=(const Op&) = delete;

  OpType type = OpType::kWrite;
  SyncKind sync = SyncKind::kNone;  // kWrite: the linked sync; kSync: which sync
  File* file = nullptr;
  std::byte* data = nullptr;  // into buf, copy, or the caller's read buffer
  size_t len = 0;
  uint64_t off = 0;
  size_t done = 0;         // bytes written so far (short writes resume from here)
  Buffer buf;              // registered buffer, when the data lives in one
  int client_buffer = -1;  // on a client ring: the client's registered buffer holding data
  std::unique_ptr<std::byte[], FreeBytes> copy;  // private copy when no buffer was free
  Completion done_cb;
  uint64_t start_ns = 0;
  std::shared_ptr<NvmeDevice> nvme;  // set when a successful sync is to be FLUSHed

  // Ring state, owner thread only.
  int cqes_left = 0;
  int32_t write_res = 0;
  int32_t sync_res = 0;
  uint32_t write_len = 0;          // bytes the in-flight write SQE asked for
  bool write_cqe_skipped = false;  // the chain's write posts a CQE only if it falls short
  Op* next = nullptr;              // submission queue link

  OpKind kind() const noexcept {
    switch (type) {
      case OpType::kRead:
        return OpKind::kRead;
      case OpType::kSync:
        return sync == SyncKind::kFull ? OpKind::kFsync : OpKind::kFdatasync;
      default:
        break;
    }
    if (sync == SyncKind::kFull) return OpKind::kWriteFsync;
    if (sync == SyncKind::kData) return OpKind::kWriteFdatasync;
    return OpKind::kWrite;
  }
  // Whether a successful completion made data durable (and so is followed by a FLUSH).
  bool syncs() const noexcept {
    return (type == OpType::kWrite || type == OpType::kSync) && sync != SyncKind::kNone;
  }
};

// Multi-producer op queue: a mutex-guarded intrusive FIFO the consumer takes whole.
class OpQueue {
 public:
  void push(Op* op) noexcept;
  // Takes every queued op, oldest first; nullptr when empty.
  Op* take_all() noexcept;
  Op* take_one() noexcept;  // the oldest op, or nullptr
  bool empty() const noexcept;

 private:
  mutable std::mutex mu_;
  Op* head_ = nullptr;  // guarded by mu_
  Op* tail_ = nullptr;  // guarded by mu_
};

}  // namespace fsysfs::engine
