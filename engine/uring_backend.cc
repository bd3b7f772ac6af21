#include "engine/uring_backend.h"

#include <sys/eventfd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>

#include "engine/buffer_pool.h"
#include "engine/engine_internal.h"
#include "engine/log.h"
#include "engine/sys.h"

namespace fsysfs::engine {
namespace {

// user_data: an Op address (8-byte aligned) with the low bits telling which of its SQEs
// completed; kWakeTag marks the eventfd READ.
constexpr uint64_t kTagMask = 3;
constexpr uint64_t kTagMain = 0;
constexpr uint64_t kTagSync = 1;
constexpr uint64_t kWakeTag = 2;
// io_uring read/write lengths are 32-bit; larger writes continue as short writes.
constexpr size_t kMaxIo = size_t{1} << 30;

}  // namespace

UringBackend::UringBackend(Engine& engine, const Options& options, BufferPool* pool)
    : engine_(engine), options_(options), pool_(pool) {
  static_assert(alignof(Op) >= 4, "user_data tags need two free low bits");
  std::promise<std::string> ready;
  auto result = ready.get_future();
  owner_ = std::thread([this, &ready] { run(&ready); });
  std::string err = result.get();
  if (!err.empty()) {
    owner_.join();
    throw std::runtime_error(err);
  }
  if (options_.ring_sync_threads > 0) {
    Options o = options_;
    o.sync_threads = options_.ring_sync_threads;
    sync_pool_ = std::make_unique<SyncBackend>(engine_, o);
  }
}

void UringBackend::shutdown() noexcept {
  if (!owner_.joinable()) return;
  stopping_.store(true);
  wake();
  owner_.join();
  if (sync_pool_) sync_pool_->shutdown();  // completes the syncs queued on it
}

void UringBackend::run(std::promise<std::string>* ready) noexcept {
  t_engine_thread = true;
  std::string err = setup();
  bool ok = err.empty();
  ready->set_value(std::move(err));  // `ready` is gone after this
  if (ok) loop();
  if (ring_ok_) io_uring_queue_exit(&ring_);
}

std::string UringBackend::setup() noexcept {
  int r = setup_ring(ring_, options_.queue_depth ? options_.queue_depth : 1, options_.sqpoll,
                     options_.sqpoll_idle_ms, setup_);
  if (r < 0) return setup_.notes;
  ring_ok_ = true;
  skip_write_cqe_ = (ring_.features & IORING_FEAT_CQE_SKIP) != 0;
  if (skip_write_cqe_) setup_.notes += ", CQE_SKIP";
  cq_capacity_ = ring_.cq.ring_entries - 1;  // one CQE stays free for the wake-up READ
  if (options_.fixed_files > 0) {
    r = io_uring_register_files_sparse(&ring_, options_.fixed_files);
    if (r < 0) {
      setup_.notes += std::string("; fixed files refused: ") + std::strerror(-r);
    } else {
      files_.emplace(options_.fixed_files);
    }
  }
  if (pool_ && pool_->count() > 0) {
    auto iov = pool_->iovecs();
    r = io_uring_register_buffers(&ring_, iov.data(), static_cast<unsigned>(iov.size()));
    if (r < 0) {
      setup_.notes += std::string("; fixed buffers refused: ") + std::strerror(-r);
    } else {
      buffers_registered_ = true;
    }
  }
  wake_fd_.reset(::eventfd(0, EFD_CLOEXEC));
  if (!wake_fd_) return std::string("eventfd: ") + std::strerror(errno);
  return {};
}

void UringBackend::submit(Op* op) noexcept {
  if (sync_pool_ && op->type == OpType::kSync) {
    sync_pool_->submit(op);
    return;
  }
  queue_.push(op);
  if (stopped_.load()) {
    // The owner is gone (a submit racing engine destruction): fail here rather than hang.
    fail_queued();
    return;
  }
  if (owner_waiting_.exchange(false)) wake();
}

void UringBackend::wake() noexcept {
  if (wake_fd_) sys::eventfd_signal(wake_fd_.get());
}

void UringBackend::release_slot(File& f) noexcept {
  if (f.slot_ < 0 || stopped_.load()) return;
  // Out of memory, the slot stays registered until the ring is torn down: it holds its
  // own reference to the old file, so no fd opened later can be reached through it.
  auto* op = new (std::nothrow) Op;
  if (op == nullptr) return;
  Waiter w;
  op->type = OpType::kReleaseSlot;
  op->file = &f;
  op->done_cb = w.callback();
  submit(op);
  w.wait();
}

void UringBackend::arm_wake() noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (!sqe) {
    submit_now();
    sqe = io_uring_get_sqe(&ring_);
    if (!sqe) return;  // retried next turn
  }
  io_uring_prep_read(sqe, wake_fd_.get(), &wake_buf_, sizeof wake_buf_, 0);
  io_uring_sqe_set_data64(sqe, kWakeTag);
  wake_armed_ = true;
}

void UringBackend::loop() noexcept {
  for (;;) {
    if (!wake_armed_) arm_wake();
    for (Op* op = queue_.take_all(); op;) {
      Op* next = op->next;
      op->next = nullptr;
      pending_.push_back(op);
      op = next;
    }
    while (!pending_.empty() && prep(pending_.front())) pending_.pop_front();
    if (stopping_.load() && pending_.empty() && cqes_in_flight_ == 0 && queue_.empty()) break;

    // Announce the wait before the last look at the queue: a submitter that pushes after
    // that look sees owner_waiting_ and signals the eventfd, completing the armed READ.
    owner_waiting_.store(true);
    // With work queued meanwhile, do not sleep; still enter with GETEVENTS so pending task
    // work (COOP_TASKRUN) runs and a busy submitter cannot starve the completions.
    bool sleep = queue_.empty();
    int r = sleep ? io_uring_submit_and_wait(&ring_, 1) : io_uring_submit_and_get_events(&ring_);
    owner_waiting_.store(false, std::memory_order_relaxed);
    if (r > 0) {
      engine_.stats_.submits.fetch_add(1, std::memory_order_relaxed);
      engine_.stats_.sqes.fetch_add(static_cast<uint64_t>(r), std::memory_order_relaxed);
    } else if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME) {
      component_logger("engine")->error("io_uring_enter: {}", std::strerror(-r));
    }
    if (sleep) engine_.stats_.owner_sleeps.fetch_add(1, std::memory_order_relaxed);
    reap();
  }
  stopped_.store(true);
  fail_queued();
}

void UringBackend::fail_queued() noexcept {
  for (Op* o = queue_.take_all(); o;) {
    Op* next = o->next;
    if (o->type == OpType::kReleaseSlot) {
      // The ring and its file table are gone: nothing to give back.
      Completion cb = std::move(o->done_cb);
      delete o;
      cb(0);
    } else {
      finish(o, -ESHUTDOWN);
    }
    o = next;
  }
}

void UringBackend::submit_now() noexcept {
  int r = io_uring_submit(&ring_);
  if (r > 0) {
    engine_.stats_.submits.fetch_add(1, std::memory_order_relaxed);
    engine_.stats_.sqes.fetch_add(static_cast<uint64_t>(r), std::memory_order_relaxed);
  }
}

void UringBackend::ensure_slot(File& f) noexcept {
  if (!files_ || f.slot_ >= 0 || f.slot_tried_) return;
  int slot = files_->alloc();
  if (slot < 0) return;  // table full: raw fd now, another try on the next op
  int fd = f.fd();
  int r = io_uring_register_files_update(&ring_, static_cast<unsigned>(slot), &fd, 1);
  if (r == 1) {
    f.slot_ = slot;
  } else {
    files_->free(slot);
    f.slot_tried_ = true;
    component_logger("engine")->debug("fixed file registration refused: {}",
                                      std::strerror(r < 0 ? -r : EIO));
  }
}

void UringBackend::set_file(io_uring_sqe* sqe, const File& f) noexcept {
  if (f.slot_ >= 0) {
    sqe->fd = f.slot_;
    sqe->flags |= IOSQE_FIXED_FILE;
  } else {
    engine_.stats_.raw_fd_ops.fetch_add(1, std::memory_order_relaxed);
  }
}

bool UringBackend::prep(Op* op) noexcept {
  File& f = *op->file;
  if (op->type == OpType::kReleaseSlot) {
    // No op of f is prepped or in flight (File's destructor waited), so no SQE can name
    // the slot when it is emptied and later handed to another file.
    if (f.slot_ >= 0) {
      int none = -1;
      int r = io_uring_register_files_update(&ring_, static_cast<unsigned>(f.slot_), &none, 1);
      if (r == 1) {
        files_->free(f.slot_);
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
    return true;
  }

  unsigned need = (op->type == OpType::kWrite && op->sync != SyncKind::kNone) ? 2 : 1;
  // A chain whose write skips its CQE on success posts exactly one: the write's when it
  // failed or fell short (the sync is then cancelled without a CQE), else the sync's.
  bool skip = need == 2 && skip_write_cqe_;
  unsigned cqes = skip ? 1 : need;
  if (cqes_in_flight_ + cqes > cq_capacity_) return false;
  if (io_uring_sq_space_left(&ring_) < need) {
    // Never split a chain across submissions: submit what is queued, then prep it whole.
    engine_.stats_.sq_full.fetch_add(1, std::memory_order_relaxed);
    submit_now();
    if (io_uring_sq_space_left(&ring_) < need) {
      if (!(setup_.flags & IORING_SETUP_SQPOLL) || io_uring_sqring_wait(&ring_) < 0) return false;
      if (io_uring_sq_space_left(&ring_) < need) return false;
    }
  }
  ensure_slot(f);

  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  auto ud = reinterpret_cast<uint64_t>(op);
  switch (op->type) {
    case OpType::kRead:
      io_uring_prep_read(sqe, f.fd(), op->data, static_cast<unsigned>(std::min(op->len, kMaxIo)),
                         op->off);
      break;
    case OpType::kSync:
      io_uring_prep_fsync(sqe, f.fd(), op->sync == SyncKind::kData ? IORING_FSYNC_DATASYNC : 0);
      break;
    case OpType::kWrite: {
      std::byte* p = op->data + op->done;
      auto n = static_cast<unsigned>(std::min(op->len - op->done, kMaxIo));
      uint64_t off = op->off + op->done;
      op->write_len = n;
      if (op->buf && buffers_registered_) {
        io_uring_prep_write_fixed(sqe, f.fd(), p, n, off, op->buf.index());
      } else {
        io_uring_prep_write(sqe, f.fd(), p, n, off);
      }
      break;
    }
    case OpType::kReleaseSlot:
      break;
  }
  set_file(sqe, f);
  io_uring_sqe_set_data64(sqe, ud | kTagMain);
  op->cqes_left = 1;
  op->write_res = 0;
  op->sync_res = 0;
  op->write_cqe_skipped = skip;
  if (need == 2) {
    sqe->flags |= IOSQE_IO_LINK;
    if (skip) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    io_uring_prep_fsync(s, f.fd(), op->sync == SyncKind::kData ? IORING_FSYNC_DATASYNC : 0);
    set_file(s, f);
    io_uring_sqe_set_data64(s, ud | kTagSync);
    op->cqes_left = static_cast<int>(cqes);
  }
  cqes_in_flight_ += cqes;
  return true;
}

void UringBackend::reap() noexcept {
  io_uring_cqe* cqes[64];
  for (;;) {
    unsigned n = io_uring_peek_batch_cqe(&ring_, cqes, 64);
    if (n == 0) return;
    for (unsigned i = 0; i < n; ++i) on_cqe(cqes[i]->user_data, cqes[i]->res);
    io_uring_cq_advance(&ring_, n);
  }
}

void UringBackend::on_cqe(uint64_t user_data, int32_t res) noexcept {
  if (user_data == kWakeTag) {
    wake_armed_ = false;
    return;
  }
  --cqes_in_flight_;
  engine_.stats_.cqes.fetch_add(1, std::memory_order_relaxed);
  auto* op = reinterpret_cast<Op*>(user_data & ~kTagMask);
  if (op->type != OpType::kWrite) {
    finish(op, res);
    return;
  }
  if ((user_data & kTagMask) == kTagSync) {
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
    finish(op, op->done > 0 ? static_cast<int64_t>(op->done) : op->write_res);
    return;
  }
  op->done += static_cast<size_t>(op->write_res);
  if (op->done < op->len) {
    if (op->write_res == 0) {
      finish(op, op->done > 0 ? static_cast<int64_t>(op->done) : -EIO);
      return;
    }
    // Short write: write the remainder (and then sync) as a new chain, before later ops.
    engine_.stats_.short_writes.fetch_add(1, std::memory_order_relaxed);
    pending_.push_front(op);
    return;
  }
  if (chained && op->sync_res < 0) {
    finish(op, op->sync_res);
    return;
  }
  finish(op, static_cast<int64_t>(op->done));
}

void UringBackend::finish(Op* op, int64_t res) noexcept { engine_.complete(op, res); }

void UringBackend::describe(StatsSnapshot& s) const {
  s.backend_notes = setup_.notes;
  if (sync_pool_) {
    s.backend_notes += ", syncs on " + std::to_string(options_.ring_sync_threads) + " threads";
  }
  if (files_) {
    s.fixed_files_total = files_->size();
    s.fixed_files_used = files_->used();
  }
}

}  // namespace fsysfs::engine
