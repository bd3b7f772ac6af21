#include "engine/op_ring.h"

#include <cerrno>
#include <cstring>

#include "engine/log.h"

namespace fsysfs::engine {
namespace {

// io_uring read/write lengths are 32-bit; larger writes continue as short writes.
constexpr size_t kMaxIo = size_t{1} << 30;

unsigned fsync_flags(const Op& op) noexcept {
  return op.sync == SyncKind::kData ? IORING_FSYNC_DATASYNC : 0;
}

}  // namespace

void OpRing::submit_now() noexcept {
  int r = io_uring_submit(&ring_);
  if (r > 0) {
    engine_.stats_.submits.fetch_add(1, std::memory_order_relaxed);
    engine_.stats_.sqes.fetch_add(static_cast<uint64_t>(r), std::memory_order_relaxed);
  }
}

void OpRing::prep_pending() noexcept {
  while (!pending_.empty() && prep(pending_.front())) pending_.pop_front();
}

void OpRing::ensure_slot(File& f) noexcept {
  if (!config_.files || f.slot_ >= 0 || f.slot_tried_) return;
  int slot = config_.files->alloc();
  if (slot < 0) return;  // table full: raw fd now, another try on the next op
  int fd = f.fd();
  int r = io_uring_register_files_update(&ring_, static_cast<unsigned>(slot), &fd, 1);
  if (r == 1) {
    f.slot_ = slot;
  } else {
    config_.files->free(slot);
    f.slot_tried_ = true;
    component_logger("engine")->debug("fixed file registration refused: {}",
                                      std::strerror(r < 0 ? -r : EIO));
  }
}

int OpRing::slot_of(File& f) noexcept {
  if (config_.client_slot) return config_.client_slot(f);
  ensure_slot(f);
  return config_.files ? f.slot_ : -1;
}

void OpRing::set_file(io_uring_sqe* sqe, int slot) noexcept {
  if (slot >= 0) {
    sqe->fd = slot;
    sqe->flags |= IOSQE_FIXED_FILE;
  } else {
    engine_.stats_.raw_fd_ops.fetch_add(1, std::memory_order_relaxed);
  }
}

void OpRing::release_slot(Op* op) noexcept {
  File& f = *op->file;
  // No op of f is prepped or in flight (File's destructor waited), so no SQE can name the
  // slot when it is emptied and later handed to another file.
  if (config_.files && f.slot_ >= 0) {
    int none = -1;
    int r = io_uring_register_files_update(&ring_, static_cast<unsigned>(f.slot_), &none, 1);
    if (r == 1) {
      config_.files->free(f.slot_);
    } else {
      // Keep the slot out of circulation rather than risk it naming a stale file.
      component_logger("engine")->error("fixed file slot {} not released: {}", f.slot_,
                                        std::strerror(r < 0 ? -r : EIO));
    }
    f.slot_ = -1;
  }
  Completion cb = std::move(op->done_cb);
  delete op;
  cb(0);
}

bool OpRing::prep(Op* op) noexcept {
  if (op->type == OpType::kReleaseSlot) {
    release_slot(op);
    return true;
  }
  File& f = *op->file;
  unsigned need = (op->type == OpType::kWrite && op->sync != SyncKind::kNone) ? 2 : 1;
  // A chain whose write skips its CQE on success posts exactly one: the write's when it
  // failed or fell short (the sync is then cancelled without a CQE), else the sync's.
  bool skip = need == 2 && config_.skip_write_cqe;
  unsigned cqes = skip ? 1 : need;
  if (cqes_in_flight_ + cqes > config_.cq_capacity) return false;
  if (io_uring_sq_space_left(&ring_) < need) {
    // Never split a chain across submissions: submit what is queued, then prep it whole.
    engine_.stats_.sq_full.fetch_add(1, std::memory_order_relaxed);
    submit_now();
    if (io_uring_sq_space_left(&ring_) < need) {
      if (!config_.sqpoll || io_uring_sqring_wait(&ring_) < 0) return false;
      if (io_uring_sq_space_left(&ring_) < need) return false;
    }
  }
  const int slot = slot_of(f);

  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  auto ud = reinterpret_cast<uint64_t>(op);
  switch (op->type) {
    case OpType::kRead: {
      const auto n = static_cast<unsigned>(std::min(op->len, kMaxIo));
      if (op->client_buffer >= 0) {
        io_uring_prep_read_fixed(sqe, f.fd(), op->data, n, op->off, op->client_buffer);
      } else {
        io_uring_prep_read(sqe, f.fd(), op->data, n, op->off);
      }
      break;
    }
    case OpType::kSync:
      io_uring_prep_fsync(sqe, f.fd(), fsync_flags(*op));
      break;
    case OpType::kWrite: {
      std::byte* p = op->data + op->done;
      auto n = static_cast<unsigned>(std::min(op->len - op->done, kMaxIo));
      uint64_t off = op->off + op->done;
      op->write_len = n;
      if (op->buf && config_.buffers_registered) {
        io_uring_prep_write_fixed(sqe, f.fd(), p, n, off, op->buf.index());
      } else if (op->client_buffer >= 0) {
        io_uring_prep_write_fixed(sqe, f.fd(), p, n, off, op->client_buffer);
      } else {
        io_uring_prep_write(sqe, f.fd(), p, n, off);
      }
      break;
    }
    case OpType::kReleaseSlot:
      break;
  }
  set_file(sqe, slot);
  io_uring_sqe_set_data64(sqe, ud | kOpTagMain);
  op->cqes_left = 1;
  op->write_res = 0;
  op->sync_res = 0;
  op->write_cqe_skipped = skip;
  if (need == 2) {
    sqe->flags |= IOSQE_IO_LINK;
    if (skip) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    io_uring_prep_fsync(s, f.fd(), fsync_flags(*op));
    set_file(s, slot);
    io_uring_sqe_set_data64(s, ud | kOpTagSync);
    op->cqes_left = static_cast<int>(cqes);
  }
  cqes_in_flight_ += cqes;
  return true;
}

void OpRing::on_cqe(uint64_t user_data, int32_t res) noexcept {
  --cqes_in_flight_;
  engine_.stats_.cqes.fetch_add(1, std::memory_order_relaxed);
  auto* op = reinterpret_cast<Op*>(user_data & ~kOpTagMask);
  if (op->type != OpType::kWrite) {
    engine_.complete(op, res);
    return;
  }
  if ((user_data & kOpTagMask) == kOpTagSync) {
    op->sync_res = res;
    // The sync ran, so the write before it completed in full.
    if (op->write_cqe_skipped) op->write_res = static_cast<int32_t>(op->write_len);
  } else {
    op->write_res = res;
  }
  if (--op->cqes_left > 0) return;

  // Both CQEs of a chain are in (or the lone write's). The write's result decides first:
  // a failed or short write cancels the linked sync, whose -ECANCELED must never pass
  // for success.
  bool chained = op->sync != SyncKind::kNone;
  if (chained && op->done > 0 && op->write_len > 0 && op->write_res <= 0) {
    // The remainder of a write that landed in part failed (ENOSPC at the disk's edge):
    // like an O_DSYNC write, make the part that landed durable and report it as a short
    // write. The chain is requeued with nothing left to write (a zero-length write, which
    // does not break the link), so in effect only its sync runs.
    op->len = op->done;
    pending_.push_front(op);
    return;
  }
  if (op->write_res < 0) {
    engine_.complete(op, op->done > 0 ? static_cast<int64_t>(op->done) : op->write_res);
    return;
  }
  op->done += static_cast<size_t>(op->write_res);
  if (op->done < op->len) {
    if (op->write_res == 0) {
      engine_.complete(op, op->done > 0 ? static_cast<int64_t>(op->done) : -EIO);
      return;
    }
    // Short write: write the remainder (and then sync) as a new chain, before later ops.
    engine_.stats_.short_writes.fetch_add(1, std::memory_order_relaxed);
    pending_.push_front(op);
    return;
  }
  if (chained && op->sync_res < 0) {
    engine_.complete(op, op->sync_res);
    return;
  }
  engine_.complete(op, static_cast<int64_t>(op->done));
}

}  // namespace fsysfs::engine
