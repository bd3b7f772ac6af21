#pragma once

#include <liburing.h>

#include <string>

namespace fsysfs::engine {

struct RingSetup {
  unsigned flags = 0;  // IORING_SETUP_* in use
  std::string notes;   // human-readable: flags in use, and what was refused
};

// Creates `ring` with the best setup flags this kernel accepts: COOP_TASKRUN and
// SINGLE_ISSUER when it takes them (probed once per process, then weaker sets; never
// DEFER_TASKRUN, see ring_setup.cc), or SQPOLL when asked (falling back to no SQPOLL if refused).
// Must run on the thread that will own the ring. Returns 0 or -errno of the last attempt.
int setup_ring(io_uring& ring, unsigned entries, bool sqpoll, unsigned sqpoll_idle_ms,
               RingSetup& out) noexcept;

}  // namespace fsysfs::engine
