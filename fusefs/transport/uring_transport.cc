#include "fusefs/transport/uring_transport.h"

#include <linux/fuse.h>
#include <sys/sysinfo.h>

#include <cstring>
#include <fstream>

#include "engine/log.h"
#include "fusefs/blocking_pool.h"
#include "fusefs/device_io.h"

namespace fsysfs::fusefs {
namespace {

thread_local std::span<std::byte> t_reply_buffer;

// Hands a ring request to libfuse's decoder, which calls the op; its reply comes back
// through the session's writev hook (device_io.cc) to commit().
void serve_request(fuse_session* se, std::span<std::byte> request,
                   std::span<std::byte> payload) noexcept {
  note_request(request.data(), request.size());
  fuse_buf buf{};
  buf.size = request.size();
  buf.mem = request.data();
  t_reply_buffer = payload;
  fuse_session_process_buf(se, &buf);
  t_reply_buffer = {};
}

}  // namespace

std::span<std::byte> UringTransport::reply_buffer() noexcept { return t_reply_buffer; }

std::string UringTransport::unavailable_reason() {
  std::ifstream param("/sys/module/fuse/parameters/enable_uring");
  std::string value;
  if (!param || !(param >> value)) {
    return "this kernel has no FUSE over io_uring (Linux 6.14 or later has it)";
  }
  if (value != "Y" && value != "1") {
    return "the fuse module's enable_uring parameter is off "
           "(as root: echo 1 > /sys/module/fuse/parameters/enable_uring)";
  }
  return {};
}

std::unique_ptr<UringTransport> UringTransport::prepare(fuse_session* se, engine::Engine& engine,
                                                        RingQueue::Params queue, std::string* why) {
  if (std::string reason = unavailable_reason(); !reason.empty()) {
    *why = std::move(reason);
    return nullptr;
  }
  std::unique_ptr<UringTransport> t(new UringTransport(se, queue.depth));
  // The kernel makes one queue per possible CPU and sends a request to its caller's.
  const int cpus = get_nprocs_conf();
  // Registering pins every payload buffer: fine for a few CPUs, not for a machine with
  // hundreds. Past the cap, writes are plain WRITEs from the same buffers, whose pages are
  // then only resident once used.
  const uint64_t payload_bytes =
      static_cast<uint64_t>(cpus) * queue.depth * static_cast<uint64_t>(queue.payload_size);
  queue.register_payload = payload_bytes <= kMaxRegisteredPayload;
  if (!queue.register_payload) {
    component_logger("fusefs")->info(
        "FUSE over io_uring: {} MiB of payload buffers ({} queues of {}): not registered, writes "
        "are plain WRITEs",
        payload_bytes >> 20, cpus, queue.depth);
  }
  for (int qid = 0; qid < cpus; ++qid) {
    queue.qid = static_cast<unsigned>(qid);
    auto q = RingQueue::create(fuse_session_fd(se), &engine, queue, why);
    if (!q) return nullptr;
    t->queues_.push_back(std::move(q));
  }
  return t;
}

UringTransport::~UringTransport() { stop(); }

int UringTransport::start(const std::function<bool()>& held, BlockingPool* pool) noexcept {
  fuse_session* se = se_;
  for (auto& q : queues_) {
    int rc = q->start([se, held, pool](std::span<std::byte> request,
                                       std::span<std::byte> payload) noexcept {
      if (held() && pool->run([se, request, payload] { serve_request(se, request, payload); })) {
        return;
      }
      serve_request(se, request, payload);
    });
    if (rc < 0) {
      component_logger("fusefs")->error("FUSE over io_uring: the kernel refused queue entries: {}",
                                        std::strerror(-rc));
      stop();
      return rc;
    }
  }
  return 0;
}

void UringTransport::stop() noexcept {
  for (auto& q : queues_) q->stop();
}

bool UringTransport::commit(const iovec* iov, int count) noexcept {
  if (count < 1 || iov[0].iov_len < sizeof(fuse_out_header)) return false;
  fuse_out_header out;
  std::memcpy(&out, iov[0].iov_base, sizeof out);
  if (out.unique == 0) return false;  // a notification
  for (auto& q : queues_) {
    if (q->commit(out.unique, iov, count)) return true;
  }
  return false;
}

uint64_t UringTransport::requests() const noexcept {
  uint64_t n = 0;
  for (const auto& q : queues_) n += q->requests();
  return n;
}

}  // namespace fsysfs::fusefs
