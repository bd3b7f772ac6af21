#include "engine/ring_setup.h"

#include <atomic>
#include <cstring>
#include <string>

namespace fsysfs::engine {
namespace {

std::string flag_names(unsigned f) {
  std::string s;
  auto add = [&](unsigned bit, const char* name) {
    if (f & bit) s += s.empty() ? name : std::string("|") + name;
  };
  add(IORING_SETUP_SQPOLL, "SQPOLL");
  add(IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN");
  add(IORING_SETUP_SINGLE_ISSUER, "SINGLE_ISSUER");
  add(IORING_SETUP_DEFER_TASKRUN, "DEFER_TASKRUN");
  return s.empty() ? "none" : s;
}

int try_flags(io_uring& ring, unsigned entries, unsigned flags, unsigned idle_ms) {
  io_uring_params p;
  std::memset(&p, 0, sizeof p);
  p.flags = flags;
  p.sq_thread_idle = idle_ms;
  // Room for a full SQ of linked pairs plus wake-ups before the CQ can overflow.
  p.flags |= IORING_SETUP_CQSIZE;
  p.cq_entries = entries * 4;
  return io_uring_queue_init_params(entries, &ring, &p);
}

// No DEFER_TASKRUN: buffered writes (on file systems without non-blocking buffered writes,
// such as ext4) and every fsync run on io-wq workers. Under DEFER_TASKRUN each of their
// completions is task work that waits for the owner thread, and the fsync linked behind a
// write is only queued once the owner has run it: an extra thread hop in the middle of
// every chain. Without it the worker posts the CQE and goes straight on to the fsync.
constexpr unsigned kCandidates[] = {
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER,
    IORING_SETUP_COOP_TASKRUN,
    0,
};
// Index into kCandidates of the best set this kernel took; -1 until probed.
std::atomic<int> g_best{-1};

}  // namespace

int setup_ring(io_uring& ring, unsigned entries, bool sqpoll, unsigned sqpoll_idle_ms,
               RingSetup& out) noexcept {
  std::string refused;
  if (sqpoll) {
    for (unsigned extra : {IORING_SETUP_SINGLE_ISSUER, 0u}) {
      unsigned f = IORING_SETUP_SQPOLL | extra;
      int r = try_flags(ring, entries, f, sqpoll_idle_ms);
      if (r == 0) {
        out.flags = f;
        out.notes = "flags " + flag_names(f);
        return 0;
      }
      refused = "SQPOLL refused (" + std::string(std::strerror(-r)) + "); ";
    }
  }
  int first = g_best.load(std::memory_order_relaxed);
  int r = -EINVAL;
  for (int i = first < 0 ? 0 : first; i < static_cast<int>(std::size(kCandidates)); ++i) {
    r = try_flags(ring, entries, kCandidates[i], 0);
    if (r == 0) {
      g_best.store(i, std::memory_order_relaxed);
      out.flags = kCandidates[i];
      out.notes = refused + "flags " + flag_names(kCandidates[i]);
      return 0;
    }
    if (r != -EINVAL) break;  // not a flag problem: ENOMEM, EPERM (seccomp, sysctl), ENOSYS
  }
  out.notes = refused + "io_uring_setup failed: " + std::strerror(-r);
  return r;
}

}  // namespace fsysfs::engine
