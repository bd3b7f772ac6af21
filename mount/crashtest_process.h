#pragma once

// The processes `fsysfs crashtest` runs: workloads and checks (sh -c CMD), copies of the
// template, and fsysfs daemons serving scratch mounts. Each is owned by an RAII object that
// kills and reaps it on every path out, so that an error or an interrupt leaves no process
// and no mount behind.
//
// Not thread-safe: crashtest runs on one thread, and must (fork without exec).

#include <poll.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/unique_fd.h"
#include "mount/error.h"

namespace fsysfs::mount {

using Clock = std::chrono::steady_clock;

// Thrown by the waits below when SIGINT, SIGTERM or SIGHUP arrived.
class Interrupted : public Error {
 public:
  Interrupted() : Error("interrupted") {}
};

// While one exists, SIGINT, SIGTERM and SIGHUP are blocked except inside the waits below,
// which then throw Interrupted: the unwinding stops what runs and unmounts what is mounted,
// instead of the signal killing crashtest with its mounts still up. Children start with
// the signal mask and handlers crashtest had before.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
  struct sigaction old_hup_ {};
};

// poll(2) on `fds` until `deadline` (none: no limit). Returns how many are ready, 0 when the
// deadline passed. Throws Interrupted when an interrupt arrived (only if `interruptible`:
// cleanup waits, which must not throw, say false).
int wait_for(std::span<pollfd> fds, std::optional<Clock::time_point> deadline,
             bool interruptible = true);

// How a child ended.
struct ExitStatus {
  int code = 0;    // its exit code, when it exited
  int signal = 0;  // the signal that killed it, else 0
  bool ok() const { return signal == 0 && code == 0; }
  std::string text() const;  // "exit 1", "killed by signal 9"
};

struct ChildSpec {
  std::string program;  // its path; "": argv[0]
  std::vector<std::string> argv;
  std::string cwd;               // "" : crashtest's own
  std::vector<std::string> env;  // "KEY=VALUE" added to crashtest's environment
  std::string output;            // the file its stdout and stderr go to; stdin is /dev/null
  int death_signal = SIGKILL;    // what it gets if crashtest dies first
};

// A child in its own process group (so the terminal's ^C reaches crashtest, which then
// stops it in order). The destructor kills the group and reaps the child.
class Child {
 public:
  // Starts it; throws Error when it cannot (its program not found, a bad cwd).
  explicit Child(const ChildSpec& spec);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  bool exited() const { return status_.has_value(); }

  // Waits until it exits or `deadline` passes (nullopt then; it keeps running). What it
  // left running in its process group is killed once it exits.
  std::optional<ExitStatus> wait(std::optional<Clock::time_point> deadline);
  // Sends `sig` to the group, waits up to `grace` for the child, then SIGKILLs the group.
  // Never throws.
  ExitStatus stop(int sig = SIGKILL, std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  ExitStatus reap();  // once it has exited

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  std::optional<ExitStatus> status_;
};

// The last `max_lines` lines of the file at `path` (at most 4 KiB of it); "" if unreadable.
std::string file_tail(const std::string& path, size_t max_lines = 20);

// An fsysfs daemon of ours (`fsysfs -f`, a child) serving `backing` at `mnt`.
class ScratchMount {
 public:
  // Starts the daemon with `options` (-o) and waits until the mount is live. Throws Error
  // with the tail of its log (`log`, stdout and stderr) when it fails.
  ScratchMount(const std::string& backing, const std::string& mnt, const std::string& options,
               const std::string& log);
  // A mount still there is detached; the daemon is stopped and reaped.
  ~ScratchMount();
  ScratchMount(const ScratchMount&) = delete;
  ScratchMount& operator=(const ScratchMount&) = delete;

  pid_t pid() const { return daemon_.pid(); }
  // Unmounts (waiting a while when busy) and waits for the daemon to exit. Throws Error.
  void unmount();
  // After a crash (crash_mount or await_crash freed the mount point): reaps the daemon.
  void reap_crashed();

 private:
  std::string mnt_;
  std::string log_;
  Child daemon_;
  bool mounted_ = false;
};

}  // namespace fsysfs::mount
