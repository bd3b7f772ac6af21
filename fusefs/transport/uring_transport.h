#pragma once

// FUSE over io_uring (Linux 6.14+, fuse module parameter enable_uring): requests arrive as
// completions on per-CPU rings (ring_queue.h) instead of reads of /dev/fuse, and replies go
// back as commands on the same rings. The requests are dispatched through libfuse's own
// request decoder, so every op runs the same code on both transports. FORGET, INTERRUPT
// and the daemon's notifications stay on /dev/fuse, which libfuse's loop keeps reading.
//
// The connection switches to the rings at INIT: the kernel offers FUSE_OVER_IO_URING in
// the INIT request, the daemon accepts it in the reply (device_io.cc), and from then on the
// kernel holds every new request until each queue has an entry registered. So everything
// that can fail (rings, buffers) is set up before INIT is answered, and a queue the kernel
// then refuses ends the mount rather than leaving it hanging.
//
// Thread safety: prepare() and stop() are called by serve() alone; start() once, from the
// thread that answered INIT; commit() from any thread.

#include <fuse_lowlevel.h>
#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fusefs/transport/ring_queue.h"

namespace fsysfs::fusefs {

class BlockingPool;

class UringTransport {
 public:
  // The most payload-buffer memory registered (and so pinned) across all queues.
  static constexpr uint64_t kMaxRegisteredPayload = uint64_t{256} << 20;

  // Why this kernel cannot run the transport, or "" when it can (it offers FUSE over
  // io_uring only while the fuse module's enable_uring parameter is on).
  static std::string unavailable_reason();

  // One queue per possible CPU on the session's /dev/fuse fd, each with `queue.depth`
  // entries whose payload buffers hold `queue.payload_size` bytes (`queue.qid` is set
  // here); the ops a queue's owner submits to `engine` run on its ring. Returns nullptr and
  // says why in `why`.
  static std::unique_ptr<UringTransport> prepare(fuse_session* se, engine::Engine& engine,
                                                 RingQueue::Params queue, std::string* why);
  ~UringTransport();

  // Registers every queue's entries with the kernel and starts their owner threads; call
  // once the INIT reply that accepted the transport was written. A request is served on its
  // queue's owner thread, or on `pool` while `held()` says requests may be held inside the
  // daemon (a fault rule's delay), so that one held request never holds up its queue.
  // Returns 0 or -errno.
  int start(const std::function<bool()>& held, BlockingPool* pool) noexcept;
  // Joins the owner threads; the rings go with the object.
  void stop() noexcept;

  // Sends a reply (`iov[0]` its fuse_out_header) through the ring it belongs to. False when
  // it answers no ring request (a notification, or a request read from /dev/fuse).
  bool commit(const iovec* iov, int count) noexcept;

  // The payload buffer of the ring request the calling thread is serving, where its reply
  // can be built without a copy (a read); empty when it serves none.
  static std::span<std::byte> reply_buffer() noexcept;

  unsigned queue_count() const noexcept { return static_cast<unsigned>(queues_.size()); }
  unsigned depth() const noexcept { return depth_; }
  uint64_t requests() const noexcept;

 private:
  UringTransport(fuse_session* se, unsigned depth) : se_(se), depth_(depth) {}

  fuse_session* const se_;
  const unsigned depth_;
  std::vector<std::unique_ptr<RingQueue>> queues_;
};

}  // namespace fsysfs::fusefs
