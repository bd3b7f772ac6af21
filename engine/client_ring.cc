#include "engine/client_ring.h"

#include "engine/engine_internal.h"
#include "engine/op_ring.h"

namespace fsysfs::engine {
namespace {

thread_local ClientRing* t_client_ring = nullptr;

}  // namespace

static_assert(!is_op_cqe(2) && is_op_cqe(kOpTagSync), "client_ring.h documents these tags");

ClientRing::ClientRing(Engine& engine, io_uring& ring, unsigned cq_room, std::vector<iovec> buffers)
    : engine_(engine), buffers_(std::move(buffers)) {
  OpRing::Config config;
  config.skip_write_cqe = (ring.features & IORING_FEAT_CQE_SKIP) != 0;
  config.sqpoll = (ring.flags & IORING_SETUP_SQPOLL) != 0;
  config.cq_capacity = cq_room;
  ops_ = std::make_unique<OpRing>(engine, ring, config);
  t_client_ring = this;
}

ClientRing::~ClientRing() {
  if (t_client_ring == this) t_client_ring = nullptr;
}

ClientRing* ClientRing::of_thread(const Engine& engine) noexcept {
  return t_client_ring != nullptr && &t_client_ring->engine_ == &engine ? t_client_ring : nullptr;
}

void ClientRing::complete(uint64_t user_data, int32_t res) noexcept {
  ops_->on_cqe(user_data, res);
}

void ClientRing::prep_pending() noexcept { ops_->prep_pending(); }

bool ClientRing::idle() const noexcept { return ops_->idle(); }

void ClientRing::submit(Op* op) noexcept {
  engine_.stats_.client_ring_ops.fetch_add(1, std::memory_order_relaxed);
  if (op->type == OpType::kWrite && !op->buf) {
    op->client_buffer = buffer_index(op->data, op->len);
    if (op->client_buffer >= 0) {
      engine_.stats_.fixed_buffer_writes.fetch_add(1, std::memory_order_relaxed);
    }
  }
  try {
    ops_->push_back(op);
  } catch (...) {
    engine_.complete(op, -ENOMEM);
    return;
  }
  ops_->prep_pending();
}

int ClientRing::buffer_index(const std::byte* p, size_t len) const noexcept {
  for (size_t i = 0; i < buffers_.size(); ++i) {
    const auto* base = static_cast<const std::byte*>(buffers_[i].iov_base);
    if (p >= base && p + len <= base + buffers_[i].iov_len) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace fsysfs::engine
