#include "engine/client_ring.h"

#include <atomic>
#include <cstring>
#include <mutex>

#include "engine/engine_internal.h"
#include "engine/log.h"
#include "engine/op_ring.h"

namespace fsysfs::engine {
namespace {

thread_local ClientRing* t_client_ring = nullptr;

}  // namespace

static_assert(!is_op_cqe(2) && is_op_cqe(kOpTagSync), "client_ring.h documents these tags");

struct ClientRing::Retired {
  std::mutex mu;                              // leaf lock
  std::vector<int> slots;                     // guarded by mu
  std::function<void()> wake;                 // guarded by mu; empty once the ring is gone
  std::atomic<unsigned>* retiring = nullptr;  // the Engine's count of slots in `slots`
};

ClientRing::ClientRing(Engine& engine, io_uring& ring, Setup setup)
    : engine_(engine),
      ring_(ring),
      buffers_(std::move(setup.buffers)),
      retired_(std::make_shared<Retired>()),
      given_back_(std::move(setup.given_back)),
      slot_base_(setup.file_slot_base) {
  retired_->wake = std::move(setup.wake);
  retired_->retiring = &engine.slots_retiring_;
  if (setup.file_slots > 0) {
    files_.emplace(setup.file_slots);
    slot_file_.resize(setup.file_slots);
  }
  OpRing::Config config;
  config.skip_write_cqe = (ring.features & IORING_FEAT_CQE_SKIP) != 0;
  config.sqpoll = (ring.flags & IORING_SETUP_SQPOLL) != 0;
  config.cq_capacity = setup.cq_room;
  config.client_slot = [this](File& f) { return slot_of(f); };
  ops_ = std::make_unique<OpRing>(engine, ring, config);
  t_client_ring = this;
}

ClientRing::~ClientRing() {
  if (t_client_ring == this) t_client_ring = nullptr;
  // Files destroyed from now on have nothing to give back: the ring's table goes with it.
  std::lock_guard lock(retired_->mu);
  retired_->wake = nullptr;
  retired_->retiring->fetch_sub(static_cast<unsigned>(retired_->slots.size()),
                                std::memory_order_release);
  retired_->slots.clear();
}

int ClientRing::slot_of(File& f) noexcept {
  if (!files_) return -1;
  if (auto it = slots_.find(f.id_); it != slots_.end()) return it->second;
  const int index = files_->alloc();
  if (index < 0) return -1;  // table full: the fd now, another try on the next op
  const int slot = static_cast<int>(slot_base_) + index;
  int fd = f.fd();
  if (int r = io_uring_register_files_update(&ring_, static_cast<unsigned>(slot), &fd, 1); r != 1) {
    files_->free(index);
    component_logger("engine")->debug("client ring: fixed file registration refused: {}",
                                      std::strerror(r < 0 ? -r : EIO));
    return -1;
  }
  try {
    {
      std::lock_guard lock(f.client_slots_mu_);
      f.client_slots_.push_back({retired_, slot});
    }
    slots_.emplace(f.id_, slot);
  } catch (...) {
    int none = -1;
    io_uring_register_files_update(&ring_, static_cast<unsigned>(slot), &none, 1);
    files_->free(index);
    return -1;
  }
  slot_file_[static_cast<size_t>(index)] = f.id_;
  return slot;
}

void ClientRing::retire(const std::weak_ptr<void>& retired, int slot) noexcept {
  auto r = std::static_pointer_cast<Retired>(retired.lock());
  if (!r) return;
  if (t_client_ring != nullptr && t_client_ring->retired_ == r) {
    // Destroyed on the ring's owner: the file is closed before this returns (before the
    // FUSE RELEASE that destroyed it is answered, say), not at the owner's next turn.
    t_client_ring->give_back(slot);
    return;
  }
  std::lock_guard lock(r->mu);
  if (!r->wake) return;
  try {
    r->slots.push_back(slot);
  } catch (...) {
    return;  // the slot stays registered until the ring goes; its file stays open until then
  }
  r->retiring->fetch_add(1, std::memory_order_seq_cst);
  r->wake();
}

bool ClientRing::give_back(int slot) noexcept {
  const auto index = static_cast<size_t>(slot - static_cast<int>(slot_base_));
  slots_.erase(slot_file_[index]);
  int none = -1;
  if (int r = io_uring_register_files_update(&ring_, static_cast<unsigned>(slot), &none, 1);
      r != 1) {
    // Keep the slot out of circulation rather than risk it naming a stale file.
    component_logger("engine")->error("client ring: fixed file slot {} not released: {}", slot,
                                      std::strerror(r < 0 ? -r : EIO));
    return false;
  }
  files_->free(static_cast<int>(index));
  return true;
}

void ClientRing::give_back_retired() noexcept {
  if (!files_) return;
  std::vector<int> slots;
  {
    std::lock_guard lock(retired_->mu);
    slots.swap(retired_->slots);
  }
  if (slots.empty()) return;
  bool given = false;
  for (int slot : slots) given |= give_back(slot);
  if (given && given_back_) given_back_();
  retired_->retiring->fetch_sub(static_cast<unsigned>(slots.size()), std::memory_order_seq_cst);
}

ClientRing* ClientRing::of_thread(const Engine& engine) noexcept {
  return t_client_ring != nullptr && &t_client_ring->engine_ == &engine ? t_client_ring : nullptr;
}

void ClientRing::complete(uint64_t user_data, int32_t res) noexcept {
  ops_->on_cqe(user_data, res);
}

void ClientRing::prep_pending() noexcept {
  give_back_retired();
  ops_->prep_pending();
}

bool ClientRing::idle() const noexcept { return ops_->idle(); }

void ClientRing::submit(Op* op) noexcept {
  engine_.stats_.client_ring_ops.fetch_add(1, std::memory_order_relaxed);
  if (op->type == OpType::kWrite && !op->buf) {
    op->client_buffer = buffer_index(op->data, op->len);
    if (op->client_buffer >= 0) {
      engine_.stats_.fixed_buffer_writes.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (op->type == OpType::kRead) {
    op->client_buffer = buffer_index(op->data, op->len);
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
