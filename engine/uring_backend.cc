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

// user_data of the eventfd READ; ops' are op_ring.h's.
constexpr uint64_t kWakeTag = 2;
static_assert(!is_op_cqe(kWakeTag));

}  // namespace

UringBackend::UringBackend(Engine& engine, const Options& options, BufferPool* pool)
    : engine_(engine), options_(options), pool_(pool) {
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
  OpRing::Config config;
  config.skip_write_cqe = (ring_.features & IORING_FEAT_CQE_SKIP) != 0;
  if (config.skip_write_cqe) setup_.notes += ", CQE_SKIP";
  config.sqpoll = (setup_.flags & IORING_SETUP_SQPOLL) != 0;
  config.cq_capacity = ring_.cq.ring_entries - 1;  // one CQE stays free for the wake-up READ
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
      config.buffers_registered = true;
    }
  }
  if (files_) config.files = &*files_;
  ops_.emplace(engine_, ring_, config);
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
    ops_->submit_now();
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
      ops_->push_back(op);
      op = next;
    }
    ops_->prep_pending();
    if (stopping_.load() && ops_->idle() && queue_.empty()) break;

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
      engine_.complete(o, -ESHUTDOWN);
    }
    o = next;
  }
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
  ops_->on_cqe(user_data, res);
}

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
