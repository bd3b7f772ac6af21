#pragma once

// A private ftrace instance for tests that check what the daemon asked of the kernel:
// io_uring submissions and block-layer requests, with markers the test writes around the
// application's own syscalls. Instances have their own buffer, events, filters and clock,
// so a test neither sees nor disturbs anybody else's tracing.

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

namespace fsysfs::test {

// One line of the instance's `trace` file.
struct TraceEvent {
  std::string comm;
  pid_t pid = 0;  // the thread that was running
  // "io_uring_submit_req", "block_rq_issue", "tracing_mark_write", "sys_enter_fsync", ...
  std::string name;
  std::string body;  // the event's printed fields

  // The value of a "key value, key value" field of the body ("" when absent).
  std::string field(std::string_view key) const;
};

class TraceInstance {
 public:
  // Mounts tracefs at /sys/kernel/tracing when it is not mounted yet. Returns its root,
  // or "" with *why_not set when tracing is not available on this machine.
  static std::string tracefs_root(std::string* why_not);

  // Creates instances/`name` under `root`; ok() tells whether that worked.
  TraceInstance(const std::string& root, const std::string& name);
  ~TraceInstance();
  TraceInstance(const TraceInstance&) = delete;
  TraceInstance& operator=(const TraceInstance&) = delete;

  bool ok() const { return !dir_.empty(); }
  const std::string& error() const { return error_; }

  // "system/event", e.g. "io_uring/io_uring_submit_req". Returns -errno.
  int enable(const std::string& event);
  int set_filter(const std::string& event, const std::string& filter);
  // True when the event exists on this kernel.
  bool has_event(const std::string& event) const;

  // Empties the buffer and starts recording / stops recording.
  int start();
  int stop();
  // A tracing_mark_write event, written by the calling thread.
  void mark(const std::string& text);

  // Everything recorded, in timestamp order (the instance uses the global clock, so the
  // order holds across CPUs).
  std::vector<TraceEvent> events() const;

 private:
  int write(const std::string& file, const std::string& value) const;

  std::string dir_;
  std::string error_;
  int marker_fd_ = -1;
  std::vector<std::string> enabled_;
};

}  // namespace fsysfs::test
