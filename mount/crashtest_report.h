#pragma once

// What `fsysfs crashtest` found, and its three renderings: the text table it prints, the
// Markdown and the JSON it writes with --out.

#include <cstdint>
#include <string>
#include <vector>

namespace fsysfs::mount {

// One crash run: the workload on a fresh copy of the template, cut off at a crash point,
// then the check on what the rollback left.
struct CrashRunResult {
  uint32_t seed = 0;   // chooses the crash point and, with keep random, the state
  uint64_t op = 0;     // the crash point: the request (1-based) the crash rule counted to
  bool after = false;  // the request reached BACKING (crash=after), or not (crash=before)
  // False when the workload ended after `ops_done` requests, before the crash point; the
  // mount was then crashed at its end.
  bool fired = true;
  uint64_t ops_done = 0;
  bool workload_timed_out = false;
  bool recovered = false;    // the check exited 0
  std::string check_status;  // "exit 0", "exit 1", "killed by signal 9", "timed out"
  std::string check_tail;    // the check's last output lines, when it failed
  std::string kept;          // the run's directory (BACKING and outputs), when kept
};

struct ModeResult {
  std::string mode;
  uint64_t requests = 0;          // the workload's length, from its uncrashed run
  bool length_timed_out = false;  // that run was stopped by --timeout
  std::vector<CrashRunResult> runs;
  size_t failed() const;
};

struct CrashtestReport {
  // The invocation, for the header and for replay commands.
  std::string template_dir;
  std::string workload;
  std::string check;
  std::string options;  // --options
  uint64_t seed = 0;
  uint32_t points = 0;
  std::string keep = "none";
  bool tear = false;
  double timeout_s = 0;  // 0: none
  std::vector<ModeResult> modes;
};

// "crash before request 12 of 37", or why there was no crash point.
std::string crash_point_text(const CrashRunResult& run, uint64_t requests);
// The command that runs `run` of `mode` again alone (shell-quoted).
std::string replay_command(const CrashtestReport& report, const std::string& mode, uint32_t seed);

// A table with one row per mode (requests, runs, recovered, failed, the failing seeds),
// then one line per failed run and how to replay one.
std::string report_text(const CrashtestReport& report);
std::string report_markdown(const CrashtestReport& report);
// One object with stable keys; every run, failed or not.
std::string report_json(const CrashtestReport& report);

}  // namespace fsysfs::mount
