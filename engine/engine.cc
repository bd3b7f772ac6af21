#include "engine/engine.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "engine/backend.h"
#include "engine/buffer_pool.h"
#include "engine/client_ring.h"
#include "engine/engine_internal.h"
#include "engine/log.h"
#include "engine/nvme.h"
#include "engine/nvme_flusher.h"
#include "engine/sync_backend.h"
#include "engine/uring_backend.h"

namespace fsysfs::engine {

void OpQueue::push(Op* op) noexcept {
  op->next = nullptr;
  std::lock_guard lock(mu_);
  if (tail_) {
    tail_->next = op;
  } else {
    head_ = op;
  }
  tail_ = op;
}

Op* OpQueue::take_all() noexcept {
  std::lock_guard lock(mu_);
  Op* h = head_;
  head_ = tail_ = nullptr;
  return h;
}

Op* OpQueue::take_one() noexcept {
  std::lock_guard lock(mu_);
  Op* h = head_;
  if (h) {
    head_ = h->next;
    if (!head_) tail_ = nullptr;
    h->next = nullptr;
  }
  return h;
}

bool OpQueue::empty() const noexcept {
  std::lock_guard lock(mu_);
  return head_ == nullptr;
}

namespace {
std::atomic<uint64_t> g_next_file_id{1};
}  // namespace

File::File(std::shared_ptr<Backend> backend, UniqueFd fd, dev_t dev,
           std::shared_ptr<NvmeDevice> nvme)
    : backend_(std::move(backend)),
      fd_(std::move(fd)),
      dev_(dev),
      nvme_(std::move(nvme)),
      id_(g_next_file_id.fetch_add(1, std::memory_order_relaxed)) {}

File::~File() {
  // Ops still running hold this File; the slot goes back only once none can name it,
  // and the fd is closed (by fd_'s destructor) only after that.
  for (int n = pending_.load(std::memory_order_acquire); n != 0;
       n = pending_.load(std::memory_order_acquire))
    pending_.wait(n, std::memory_order_acquire);
  backend_->release_slot(*this);
  // A client ring's slot holds its own reference to the file, so closing the fd is safe;
  // the rings give their slots back on their next turn (which this wakes).
  std::vector<ClientSlot> slots;
  {
    std::lock_guard lock(client_slots_mu_);
    slots.swap(client_slots_);
  }
  for (const ClientSlot& s : slots) ClientRing::retire(s.ring, s.slot);
}

Engine::Engine(Options options) : options_(std::move(options)) {
  auto log = component_logger("engine");
  if (options_.nvme_flush) {
    nvme_ = options_.nvme;
    if (!nvme_) nvme_ = std::make_shared<NvmeRegistry>(NvmeRegistry::Config{});
  }
  if (options_.buffer_count > 0 && options_.buffer_size > 0)
    pool_ = std::make_unique<BufferPool>(options_.buffer_count, options_.buffer_size);
  flusher_ = std::make_unique<NvmeFlusher>(*this);
  std::string why;
  if (options_.backend != BackendKind::kSync) {
    try {
      backend_ = std::make_shared<UringBackend>(*this, options_, pool_.get());
    } catch (const std::runtime_error& e) {
      if (options_.backend == BackendKind::kUring) {
        flusher_.reset();
        throw;
      }
      why = e.what();
    }
  }
  if (!backend_) {
    backend_ = std::make_shared<SyncBackend>(*this, options_);
    fallback_reason_ =
        why.empty() ? "syscall backend requested" : "io_uring unavailable (" + why + ")";
    if (why.empty()) {
      log->info("engine: syscall backend (requested)");
    } else {
      log->warn("engine: falling back to the syscall backend: {}", why);
    }
  } else {
    log->info("engine: io_uring backend, {}", stats().backend_notes);
  }
}

Engine::~Engine() {
  backend_->shutdown();  // completes every queued op, joins its threads, exits the ring
  flusher_.reset();      // then every op waiting for its FLUSH
}

std::unique_ptr<File> Engine::adopt(UniqueFd fd) {
  struct stat st;
  dev_t dev = 0;
  if (::fstat(fd.get(), &st) == 0) dev = st.st_dev;
  std::shared_ptr<NvmeDevice> nvme;
  if (nvme_ && dev != 0) nvme = nvme_->lookup(dev);
  std::unique_ptr<File> f(new File(backend_, std::move(fd), dev, std::move(nvme)));
  const int flags = ::fcntl(f->fd(), F_GETFL);
  f->direct_ = flags >= 0 && (flags & O_DIRECT) != 0;
  return f;
}

Buffer Engine::acquire_buffer() noexcept { return pool_ ? pool_->acquire() : Buffer(); }

Op* Engine::new_op(File& f, Completion done) {
  auto* op = new Op;
  op->file = &f;
  op->done_cb = std::move(done);
  op->start_ns = now_ns();
  return op;
}

Op* Engine::new_write_op(File& f, Completion done, SyncKind sync, std::byte* data, size_t len,
                         uint64_t off) {
  Op* op = new_op(f, std::move(done));
  op->type = OpType::kWrite;
  op->sync = sync;
  op->data = data;
  op->len = len;
  op->off = off;
  return op;
}

void Engine::submit(Op* op) noexcept { submit(op, route(op->type, op->sync)); }

void Engine::submit(Op* op, Route route) noexcept {
  op->file->pending_.fetch_add(1, std::memory_order_relaxed);
  if (route == Route::kClientRing) {
    ClientRing::of_thread(*this)->submit(op);
    return;
  }
  if (route == Route::kBackend) {
    backend_->submit(op);
    return;
  }
  stats_.inline_ops.fetch_add(1, std::memory_order_relaxed);
  const int64_t res = execute_blocking(*op);
  end_inline(*op);
  complete(op, res);
}

void Engine::end_inline(const Op& op) noexcept {
  if (op.syncs()) inline_waits_.fetch_sub(1, std::memory_order_relaxed);
}

Engine::Route Engine::route(OpType type, SyncKind sync) noexcept {
  // A blocking call on a client ring's thread would wait for a CQE only it can reap.
  if (!t_engine_thread && !t_blocking_call && ClientRing::of_thread(*this) != nullptr) {
    return Route::kClientRing;
  }
  return take_inline(type, sync) ? Route::kCaller : Route::kBackend;
}

bool Engine::take_inline(OpType type, SyncKind sync) noexcept {
  if (t_engine_thread) return false;
  const bool waits = sync != SyncKind::kNone;
  bool on_caller = false;
  switch (type) {
    case OpType::kWrite:
      on_caller =
          waits ? options_.inline_ops == InlineOps::kAll : options_.inline_ops != InlineOps::kNone;
      break;
    case OpType::kRead:
      return options_.inline_ops != InlineOps::kNone;
    case OpType::kSync:
      on_caller = options_.inline_ops == InlineOps::kAll;
      break;
    case OpType::kReleaseSlot:
      return false;
  }
  if (!on_caller || !waits) return on_caller;
  for (unsigned n = inline_waits_.load(std::memory_order_relaxed);;) {
    if (n >= options_.max_inline_waits) {
      stats_.inline_overflow.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (inline_waits_.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
  }
}

void Engine::write(File& f, std::span<const std::byte> data, uint64_t off, SyncKind sync,
                   Completion done) {
  // Allocated before an inline place is taken: if this throws, there is none to give back.
  // The caller's bytes are only ever read from.
  Op* op =
      new_write_op(f, std::move(done), sync, const_cast<std::byte*>(data.data()), data.size(), off);
  const Route where = route(OpType::kWrite, sync);
  // Inline, the write is done before this returns, and on a client ring the client keeps
  // the bytes until the completion: no copy, unless the file is O_DIRECT, which needs
  // them aligned.
  if (where != Route::kBackend && !f.direct_) {
    submit(op, where);
    return;
  }
  if (!own_copy(*op)) {
    if (where == Route::kCaller) end_inline(*op);
    op->file->pending_.fetch_add(1, std::memory_order_relaxed);
    complete(op, -ENOMEM);
    return;
  }
  submit(op, where);
}

bool Engine::own_copy(Op& op) noexcept {
  const std::byte* from = op.data;
  if (op.len <= (pool_ ? pool_->buffer_size() : 0)) op.buf = acquire_buffer();
  if (op.buf) {
    op.data = op.buf.data();
    stats_.fixed_buffer_writes.fetch_add(1, std::memory_order_relaxed);
  } else {
    // Aligned like a registered buffer, for O_DIRECT.
    constexpr size_t kAlign = 4096;
    const size_t bytes = (std::max<size_t>(op.len, 1) + kAlign - 1) / kAlign * kAlign;
    op.copy.reset(static_cast<std::byte*>(std::aligned_alloc(kAlign, bytes)));
    if (!op.copy) return false;
    op.data = op.copy.get();
    stats_.copied_writes.fetch_add(1, std::memory_order_relaxed);
  }
  std::memcpy(op.data, from, op.len);
  return true;
}

void Engine::write(File& f, Buffer buf, size_t len, uint64_t off, SyncKind sync, Completion done) {
  Op* op = new_write_op(f, std::move(done), sync, buf.data(), std::min(len, buf.capacity()), off);
  op->buf = std::move(buf);
  stats_.fixed_buffer_writes.fetch_add(1, std::memory_order_relaxed);
  submit(op);
}

void Engine::read(File& f, std::span<std::byte> into, uint64_t off, Completion done) {
  Op* op = new_op(f, std::move(done));
  op->type = OpType::kRead;
  op->data = into.data();
  op->len = into.size();
  op->off = off;
  submit(op);
}

void Engine::sync(File& f, SyncKind kind, Completion done) {
  Op* op = new_op(f, std::move(done));
  op->type = OpType::kSync;
  op->sync = kind == SyncKind::kNone ? SyncKind::kFull : kind;
  submit(op);
}

int64_t Engine::write(File& f, std::span<const std::byte> data, uint64_t off, SyncKind sync) {
  BlockingCall blocking;
  Waiter w;
  write(f, data, off, sync, w.callback());
  return w.wait();
}

int64_t Engine::read(File& f, std::span<std::byte> into, uint64_t off) {
  BlockingCall blocking;
  Waiter w;
  read(f, into, off, w.callback());
  return w.wait();
}

int Engine::sync(File& f, SyncKind kind) {
  BlockingCall blocking;
  Waiter w;
  sync(f, kind, w.callback());
  return static_cast<int>(w.wait());
}

void Engine::complete(Op* op, int64_t res) noexcept {
  stats_.record(op->kind(), now_ns() - op->start_ns, res, res > 0 ? static_cast<uint64_t>(res) : 0);
  if (res >= 0 && op->syncs() && op->file->nvme_) op->nvme = op->file->nvme_;
  if (op->nvme) {
    flusher_->push(op, res);
    return;
  }
  run_completion(op, res);
}

void Engine::run_completion(Op* op, int64_t res) noexcept {
  File* f = op->file;
  Completion cb = std::move(op->done_cb);
  delete op;  // gives a registered buffer back before the caller hears of the completion
  cb(res);
  // Only now may a thread waiting in ~File go on: the completion may still have been
  // using what the File belongs to (a FUSE handle, say).
  if (f->pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) f->pending_.notify_all();
}

StatsSnapshot Engine::stats() const {
  StatsSnapshot s;
  stats_.fill(s);
  s.backend = backend_->name();
  backend_->describe(s);
  if (!fallback_reason_.empty()) s.backend_notes = fallback_reason_;
  if (options_.inline_ops == InlineOps::kPageCache) {
    s.backend_notes += "; plain writes and reads inline";
  } else if (options_.inline_ops == InlineOps::kAll) {
    s.backend_notes += "; writes, reads, syncs and write+sync chains inline";
  }
  s.max_inline_waits = options_.inline_ops == InlineOps::kAll ? options_.max_inline_waits : 0;
  if (pool_) {
    s.buffers_total = pool_->count();
    s.buffers_used = pool_->in_use();
  }
  return s;
}

void Engine::reset_stats() noexcept { stats_.reset(); }

const char* Engine::backend_name() const noexcept { return backend_->name(); }

}  // namespace fsysfs::engine
