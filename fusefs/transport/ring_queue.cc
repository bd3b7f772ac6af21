#include "fusefs/transport/ring_queue.h"

#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "engine/engine.h"
#include "engine/log.h"

namespace fsysfs::fusefs {
namespace {

constexpr size_t kPage = 4096;
// Per entry: the header, then room for the request's headers in front of the payload.
constexpr size_t kHeaderRoom = kPage;
constexpr size_t kPrefixRoom = kPage;
// user_data of this queue's own SQEs has bit 1 set (engine/client_ring.h): an entry's is
// its address | kEntryTag, the read on the wake-up eventfd's kWakeTag.
constexpr uint64_t kEntryTag = 2;
constexpr uint64_t kWakeTag = 3;
// Per entry at most one FUSE command and one engine op (a write+sync chain: two SQEs, two
// CQEs) in flight, and the wake-up read.
unsigned ring_entries(unsigned depth) noexcept { return 4 * (depth + 1); }
unsigned engine_cq_room(unsigned depth) noexcept { return 2 * depth; }
// Registered file table: /dev/fuse in slot 0, then the backing files the engine's ops use.
constexpr unsigned kEngineFileSlots = 1024;

struct OwnerState {
  const RingQueue* queue = nullptr;  // the queue this thread owns
  bool batching = false;             // commits wait for the end of the batch
};
thread_local OwnerState t_owner;

}  // namespace

RingQueue::Mapping::Mapping(size_t len) noexcept : len_(len) {
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p != MAP_FAILED) data_ = static_cast<std::byte*>(p);
}

RingQueue::Mapping::Mapping(Mapping&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), len_(std::exchange(o.len_, 0)) {}

RingQueue::Mapping::~Mapping() {
  if (data_ != nullptr) ::munmap(data_, len_);
}

RingQueue::RingQueue(engine::Engine* engine, const Params& params)
    : qid_(params.qid),
      depth_(params.depth),
      payload_size_(params.payload_size),
      idle_priority_(params.idle_priority),
      register_payload_(params.register_payload),
      slots_given_back_(params.slots_given_back),
      engine_(engine),
      entries_(params.depth) {}

std::unique_ptr<RingQueue> RingQueue::create(int dev_fd, engine::Engine* engine,
                                             const Params& params, std::string* why) {
  std::unique_ptr<RingQueue> q(new RingQueue(engine, params));
  const unsigned depth = params.depth;
  const size_t payload_size = params.payload_size;
  q->mappings_.reserve(depth);
  for (Entry& e : q->entries_) {
    Mapping& m = q->mappings_.emplace_back(kHeaderRoom + kPrefixRoom + payload_size);
    if (m.data() == nullptr) {
      *why = "out of memory for the ring's buffers";
      return nullptr;
    }
    e.header = reinterpret_cast<uring_abi::ReqHeader*>(m.data());
    e.payload = m.data() + kHeaderRoom + kPrefixRoom;
    e.iov[0] = {e.header, sizeof(uring_abi::ReqHeader)};
    e.iov[1] = {e.payload, payload_size};
  }
  q->pending_.reserve(depth);
  q->wake_fd_.reset(::eventfd(0, EFD_CLOEXEC));
  if (!q->wake_fd_) {
    *why = std::string("eventfd: ") + std::strerror(errno);
    return nullptr;
  }
  try {
    q->owner_ = std::thread([raw = q.get(), dev_fd] { raw->owner(dev_fd); });
  } catch (const std::system_error& e) {
    *why = std::string("cannot start a ring thread: ") + e.what();
    return nullptr;
  }
  std::unique_lock lock(q->phase_mu_);
  q->phase_cv_.wait(lock, [&] { return q->phase_ != Phase::kSetUp; });
  if (q->result_ < 0) {
    *why = q->why_;
    lock.unlock();
    q->stop();
    return nullptr;
  }
  return q;
}

RingQueue::~RingQueue() { stop(); }

int RingQueue::set_up(int dev_fd, std::string* why) noexcept {
  io_uring_params params{};
  // FUSE commands need 128-byte SQEs. Only this thread submits, and the kernel runs the
  // completions' task work when it waits, in batches.
  params.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
                 IORING_SETUP_DEFER_TASKRUN;
  params.cq_entries = ring_entries(depth_);
  int rc = io_uring_queue_init_params(ring_entries(depth_), &ring_, &params);
  if (rc == -EINVAL) {
    params = {};
    params.flags = IORING_SETUP_SQE128 | IORING_SETUP_CQSIZE;
    params.cq_entries = ring_entries(depth_);
    rc = io_uring_queue_init_params(ring_entries(depth_), &ring_, &params);
  }
  if (rc < 0) {
    *why = std::string("io_uring setup with 128-byte entries: ") + std::strerror(-rc);
    return rc;
  }
  ring_up_ = true;
  unsigned file_slots = engine_ != nullptr ? kEngineFileSlots : 0;
  if (file_slots > 0 && io_uring_register_files_sparse(&ring_, 1 + file_slots) == 0) {
    rc = io_uring_register_files_update(&ring_, 0, &dev_fd, 1);
    if (rc == 1) rc = 0;
  } else {
    file_slots = 0;
    rc = io_uring_register_files(&ring_, &dev_fd, 1);
  }
  if (rc < 0) {
    *why = std::string("registering /dev/fuse with the ring: ") + std::strerror(-rc);
    return rc;
  }
  if (engine_ == nullptr) return 0;
  // A write request's bytes arrive in its entry's payload buffer: registered, the engine
  // writes them from there as a WRITE_FIXED. Without, it writes them as a plain WRITE.
  std::vector<iovec> buffers;
  buffers.reserve(entries_.size());
  for (const Entry& e : entries_) buffers.push_back({e.payload, payload_size_});
  if (!register_payload_) {
    buffers.clear();
  } else if (rc = io_uring_register_buffers(&ring_, buffers.data(),
                                            static_cast<unsigned>(buffers.size()));
             rc < 0) {
    component_logger("fusefs")->info(
        "fuse ring {}: payload buffers not registered ({}): writes "
        "are plain WRITEs",
        qid_, std::strerror(-rc));
    buffers.clear();
  }
  engine::ClientRing::Setup setup;
  setup.cq_room = engine_cq_room(depth_);
  setup.buffers = std::move(buffers);
  setup.file_slot_base = 1;
  setup.file_slots = file_slots;
  setup.wake = [this] { wake_owner(); };
  setup.given_back = slots_given_back_;
  try {
    client_ = std::make_unique<engine::ClientRing>(*engine_, ring_, std::move(setup));
  } catch (const std::bad_alloc&) {
    *why = "out of memory for the ring's engine state";
    return -ENOMEM;
  }
  return 0;
}

void RingQueue::place_owner() noexcept {
  auto log = component_logger("fusefs");
  // The kernel hands this queue the requests of threads running on its CPU. On that CPU
  // the hand-offs (request to owner, owner to its io-wq worker, reply to the application)
  // are wake-ups of a thread on the same CPU, not wake-ups of an idle CPU.
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(qid_, &cpus);
  if (int rc = pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus); rc != 0) {
    log->debug("fuse ring {}: owner not pinned to its CPU: {}", qid_, std::strerror(rc));
  }
  if (!idle_priority_) return;
  // A reply wakes the application while the owner still runs; the scheduler then moves the
  // application to another CPU unless the owner's is idle, and a CPU that runs only
  // SCHED_IDLE threads counts as idle. So the application stays on its CPU, and its next
  // request is served there too. Not the default: the io-wq workers that run the ring's
  // syncs inherit the class, and on busy CPUs they starve (the A/B is in
  // docs/architecture.md).
  sched_param param{};
  if (int rc = pthread_setschedparam(pthread_self(), SCHED_IDLE, &param); rc != 0) {
    log->debug("fuse ring {}: owner keeps its priority: {}", qid_, std::strerror(rc));
  }
}

void RingQueue::owner(int dev_fd) noexcept {
  t_owner.queue = this;
  place_owner();
  std::string why;
  const int rc = set_up(dev_fd, &why);
  {
    std::unique_lock lock(phase_mu_);
    result_ = rc;
    why_ = std::move(why);
    phase_ = Phase::kReady;
    phase_cv_.notify_all();
    if (rc == 0) phase_cv_.wait(lock, [this] { return stop_asked_ || phase_ == Phase::kStarting; });
  }
  bool serving = false;
  if (rc == 0 && phase_ == Phase::kStarting) {
    const int reg = register_entries();
    std::lock_guard lock(phase_mu_);
    result_ = reg;
    phase_ = reg == 0 ? Phase::kRunning : Phase::kStopped;
    serving = reg == 0;
    phase_cv_.notify_all();
  }
  if (serving) serve();
  drain_engine_ops();
  client_.reset();
  // The table's slots hold backing files open, and a ring's teardown finishes in the
  // background: dropped here, they are closed before the daemon exits (an unmount of the
  // backing fs right after ours must not find them busy).
  if (ring_up_) io_uring_unregister_files(&ring_);
  // Cancels the commands the kernel still holds.
  if (ring_up_) io_uring_queue_exit(&ring_);
  ring_up_ = false;
  std::lock_guard lock(phase_mu_);
  phase_ = Phase::kStopped;
  phase_cv_.notify_all();
}

void RingQueue::prep_command(Entry& e, uring_abi::Cmd cmd) noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  if (sqe == nullptr) {
    // Each entry owns at most one command, and the SQ has room for them all and the
    // engine's SQEs; what is prepped was submitted just now.
    component_logger("fusefs")->critical("fuse ring {}: submission queue full", qid_);
    std::abort();
  }
  std::memset(sqe, 0, 2 * sizeof(io_uring_sqe));  // SQE128: the command area follows
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->flags = IOSQE_FIXED_FILE;
  sqe->fd = 0;
  sqe->cmd_op = cmd;
  io_uring_sqe_set_data64(sqe, reinterpret_cast<uint64_t>(&e) | kEntryTag);
  if (cmd == uring_abi::kRegister) {
    sqe->addr = reinterpret_cast<uint64_t>(e.iov);
    sqe->len = 2;
  }
  uring_abi::CmdReq req{};
  req.qid = static_cast<uint16_t>(qid_);
  req.commit_id = cmd == uring_abi::kCommitAndFetch ? e.commit_id : 0;
  std::memcpy(sqe->cmd, &req, sizeof req);
}

void RingQueue::arm_wake() noexcept {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  std::memset(sqe, 0, 2 * sizeof(io_uring_sqe));
  io_uring_prep_read(sqe, wake_fd_.get(), &wake_buf_, sizeof wake_buf_, 0);
  io_uring_sqe_set_data64(sqe, kWakeTag);
}

int RingQueue::register_entries() noexcept {
  for (Entry& e : entries_) prep_command(e, uring_abi::kRegister);
  arm_wake();
  if (int n = io_uring_submit(&ring_); n < 0) return n;
  // A refused registration completes at once; an accepted one only with a request.
  io_uring_cqe* cqe = nullptr;
  if (io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe->res < 0 &&
      io_uring_cqe_get_data64(cqe) != kWakeTag) {
    return cqe->res;
  }
  return 0;
}

int RingQueue::start(Dispatch dispatch) noexcept {
  dispatch_ = std::move(dispatch);
  std::unique_lock lock(phase_mu_);
  if (phase_ != Phase::kReady) return -EINVAL;
  phase_ = Phase::kStarting;
  phase_cv_.notify_all();
  phase_cv_.wait(lock, [this] { return phase_ != Phase::kStarting; });
  return result_;
}

void RingQueue::stop() noexcept {
  if (!owner_.joinable()) return;
  {
    std::lock_guard lock(phase_mu_);
    stop_asked_ = true;
    phase_cv_.notify_all();
  }
  stopping_.store(true);
  wake_owner();
  owner_.join();
}

bool RingQueue::on_owner_thread() noexcept { return t_owner.queue != nullptr; }

void RingQueue::serve() noexcept {
  auto log = component_logger("fusefs");
  unsigned dead = 0;  // entries the kernel gave back for good (connection gone)
  while (!stopping_.load() && dead < depth_) {
    if (client_) client_->prep_pending();
    // Submits the batch's commits and engine SQEs and waits in the same call.
    int rc = io_uring_submit_and_wait(&ring_, 1);
    if (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) continue;
    if (rc < 0) {
      log->error("fuse ring {}: waiting for requests failed: {}", qid_, std::strerror(-rc));
      break;
    }
    t_owner.batching = true;
    unsigned head = 0;
    unsigned seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      on_cqe(*cqe, &dead);
    }
    io_uring_cq_advance(&ring_, seen);
    t_owner.batching = false;
  }
  io_uring_submit(&ring_);
}

void RingQueue::on_cqe(const io_uring_cqe& cqe, unsigned* dead) noexcept {
  const uint64_t data = cqe.user_data;
  if (client_ && engine::ClientRing::owns(data)) {
    client_->complete(data, cqe.res);
    return;
  }
  if (data == kWakeTag) {
    {
      std::lock_guard lock(pending_mu_);
      for (Entry* answered : pending_) prep_command(*answered, uring_abi::kCommitAndFetch);
      pending_.clear();
      wake_sent_ = false;
    }
    arm_wake();
    return;
  }
  Entry& e = *reinterpret_cast<Entry*>(data & ~kEntryTag);
  if (cqe.res == 0) {
    handle(e);
  } else if (cqe.res == -EAGAIN || cqe.res == -EINTR) {
    prep_command(e, e.commit_id == 0 ? uring_abi::kRegister : uring_abi::kCommitAndFetch);
  } else {
    // ENOTCONN/ECANCELED: the connection ended (unmount) and took the entry back.
    if (cqe.res != -ENOTCONN && cqe.res != -ECANCELED) {
      component_logger("fusefs")->error("fuse ring {}: command failed: {}", qid_,
                                        std::strerror(-cqe.res));
    }
    ++*dead;
  }
}

void RingQueue::drain_engine_ops() noexcept {
  if (!client_) return;
  // The commits of replies sent meanwhile go with the waits; with the connection gone the
  // kernel refuses them.
  t_owner.batching = true;
  while (!client_->idle()) {
    client_->prep_pending();
    int rc = io_uring_submit_and_wait(&ring_, 1);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
      component_logger("fusefs")->critical("fuse ring {}: cannot wait for the engine's ops: {}",
                                           qid_, std::strerror(-rc));
      std::abort();
    }
    unsigned head = 0;
    unsigned seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      if (engine::ClientRing::owns(cqe->user_data)) client_->complete(cqe->user_data, cqe->res);
    }
    io_uring_cq_advance(&ring_, seen);
  }
  t_owner.batching = false;
}

void RingQueue::handle(Entry& e) noexcept {
  requests_.fetch_add(1, std::memory_order_relaxed);
  fuse_in_header in;
  std::memcpy(&in, e.header->in_out, sizeof in);
  e.commit_id = e.header->ent.commit_id;
  const size_t payload = e.header->ent.payload_sz;
  // The op's own header is the part of the request that is in neither the in header nor
  // the payload.
  const size_t total = in.len;
  if (payload > payload_size_ || total < sizeof in + payload ||
      total - sizeof in - payload > uring_abi::kOpInSize) {
    component_logger("fusefs")->error(
        "fuse ring {}: malformed request (opcode {}, len {}, payload {}): answered EIO", qid_,
        in.opcode, in.len, payload);
    e.unique.store(in.unique, std::memory_order_relaxed);
    fuse_out_header out{sizeof(fuse_out_header), -EIO, in.unique};
    iovec iov{&out, sizeof out};
    commit(in.unique, &iov, 1);
    return;
  }
  const size_t op_len = total - sizeof in - payload;
  std::byte* start = e.payload - op_len - sizeof in;
  std::memcpy(start, &in, sizeof in);
  std::memcpy(start + sizeof in, e.header->op_in, op_len);
  e.unique.store(in.unique, std::memory_order_release);
  dispatch_(std::span<std::byte>(start, total), std::span<std::byte>(e.payload, payload_size_));
}

void RingQueue::fill_reply(Entry& e, const iovec* iov, int count) noexcept {
  fuse_out_header out;
  std::memcpy(&out, iov[0].iov_base, sizeof out);
  size_t len = 0;
  for (int i = 1; i < count; ++i) {
    if (len + iov[i].iov_len > payload_size_) {
      out.error = -EIO;
      len = 0;
      break;
    }
    if (iov[i].iov_base != e.payload + len) {
      std::memmove(e.payload + len, iov[i].iov_base, iov[i].iov_len);
    }
    len += iov[i].iov_len;
  }
  out.len = static_cast<uint32_t>(sizeof out + len);
  std::memcpy(e.header->in_out, &out, sizeof out);
  e.header->ent.payload_sz = static_cast<uint32_t>(len);
}

bool RingQueue::commit(uint64_t unique, const iovec* iov, int count) noexcept {
  Entry* found = nullptr;
  for (Entry& e : entries_) {
    if (e.unique.load(std::memory_order_acquire) == unique) {
      found = &e;
      break;
    }
  }
  if (found == nullptr) return false;
  Entry& e = *found;
  fill_reply(e, iov, count);
  // From here the kernel may hand the entry a new request, which the owner will set.
  e.unique.store(0, std::memory_order_relaxed);
  if (t_owner.queue == this) {
    prep_command(e, uring_abi::kCommitAndFetch);
    if (!t_owner.batching) io_uring_submit(&ring_);
    return true;
  }
  bool wake = false;
  {
    std::lock_guard lock(pending_mu_);
    pending_.push_back(&e);  // reserved: never more than depth_ entries
    wake = !std::exchange(wake_sent_, true);
  }
  if (wake) wake_owner();
  return true;
}

void RingQueue::wake_owner() noexcept {
  uint64_t one = 1;
  if (::write(wake_fd_.get(), &one, sizeof one) != sizeof one) {
    // Only when the eventfd's counter is full, which a read per wake-up never lets happen.
    component_logger("fusefs")->critical("fuse ring {}: cannot wake the owner: {}", qid_,
                                         std::strerror(errno));
    std::abort();
  }
}

}  // namespace fsysfs::fusefs
