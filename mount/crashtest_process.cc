#include "mount/crashtest_process.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "mount/paths.h"

extern char** environ;

namespace fsysfs::mount {
namespace {

constexpr auto kMountDeadline = std::chrono::seconds(30);
// A crashsim daemon drops its journal on a clean unmount; a check may leave much to flush.
constexpr auto kDaemonExitDeadline = std::chrono::seconds(60);
// How long an unmount retries while processes the workload started still hold files.
constexpr auto kBusyDeadline = std::chrono::seconds(10);

volatile sig_atomic_t g_interrupted = 0;
// Set while an InterruptGuard exists: the mask waits use (crashtest's, without the
// interrupt signals), and the one children get back (what crashtest had before).
bool g_guarded = false;
sigset_t g_wait_mask;
sigset_t g_child_mask;

void on_interrupt(int /*sig*/) { g_interrupted = 1; }

sigset_t interrupt_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

[[noreturn]] void child_fail(int report_fd) {
  const int err = errno;
  (void)!::write(report_fd, &err, sizeof err);
  _exit(127);
}

ExitStatus status_of(int wstatus) {
  ExitStatus s;
  if (WIFEXITED(wstatus)) s.code = WEXITSTATUS(wstatus);
  if (WIFSIGNALED(wstatus)) s.signal = WTERMSIG(wstatus);
  return s;
}

}  // namespace

InterruptGuard::InterruptGuard() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: a blocking call that catches one ends with EINTR.
  ::sigaction(SIGINT, &sa, &old_int_);
  ::sigaction(SIGTERM, &sa, &old_term_);
  ::sigaction(SIGHUP, &sa, &old_hup_);
  const sigset_t block = interrupt_signals();
  ::sigprocmask(SIG_BLOCK, &block, &g_child_mask);
  g_wait_mask = g_child_mask;
  sigdelset(&g_wait_mask, SIGINT);
  sigdelset(&g_wait_mask, SIGTERM);
  sigdelset(&g_wait_mask, SIGHUP);
  g_interrupted = 0;
  g_guarded = true;
}

InterruptGuard::~InterruptGuard() {
  g_guarded = false;
  ::sigprocmask(SIG_SETMASK, &g_child_mask, nullptr);
  ::sigaction(SIGINT, &old_int_, nullptr);
  ::sigaction(SIGTERM, &old_term_, nullptr);
  ::sigaction(SIGHUP, &old_hup_, nullptr);
}

int wait_for(std::span<pollfd> fds, std::optional<Clock::time_point> deadline, bool interruptible) {
  while (true) {
    if (interruptible && g_interrupted) throw Interrupted();
    timespec ts{};
    if (deadline) {
      const auto left = std::max(Clock::duration::zero(), *deadline - Clock::now());
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    }
    // ppoll unblocks the interrupt signals only while it waits: one that arrives before
    // it is delivered inside it, and is never missed.
    const int n = ::ppoll(fds.data(), fds.size(), deadline ? &ts : nullptr,
                          g_guarded ? &g_wait_mask : nullptr);
    if (n >= 0) return n;
    if (errno != EINTR) throw Error(fmt::format("poll: {}", std::strerror(errno)));
  }
}

std::string ExitStatus::text() const {
  if (signal != 0) return fmt::format("killed by signal {} ({})", signal, ::strsignal(signal));
  return fmt::format("exit {}", code);
}

Child::Child(const ChildSpec& spec) {
  // Everything the child needs is made before fork(): after it, only async-signal-safe
  // calls (crashtest has no threads, but the rule keeps it correct if that changes).
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const auto key = entry.substr(0, entry.find('=') + 1);
    bool replaced = false;
    for (const auto& add : spec.env) replaced |= add.starts_with(key);
    if (!replaced) env_strings.emplace_back(entry);
  }
  env_strings.insert(env_strings.end(), spec.env.begin(), spec.env.end());
  std::vector<char*> envp;
  envp.reserve(env_strings.size() + 1);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = spec.argv;
  std::vector<char*> argv;
  argv.reserve(argv_strings.size() + 1);
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);

  const char* out_path = spec.output.empty() ? "/dev/null" : spec.output.c_str();
  UniqueFd out(::open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out) throw Error(fmt::format("{}: {}", out_path, std::strerror(errno)));
  UniqueFd in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!in) throw Error(fmt::format("/dev/null: {}", std::strerror(errno)));
  // The child writes its errno here when chdir or exec fails; exec closes it otherwise.
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw Error(fmt::format("pipe: {}", std::strerror(errno)));
  UniqueFd report_read(report[0]);
  UniqueFd report_write(report[1]);
  const pid_t parent = ::getpid();
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  const char* program = spec.program.empty() ? argv[0] : spec.program.c_str();

  pid_ = ::fork();
  if (pid_ < 0) throw Error(fmt::format("fork: {}", std::strerror(errno)));
  if (pid_ == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, spec.death_signal);
    if (::getppid() != parent) _exit(127);  // crashtest died before the prctl
    if (g_guarded) ::sigprocmask(SIG_SETMASK, &g_child_mask, nullptr);
    ::dup2(in.get(), 0);
    ::dup2(out.get(), 1);
    ::dup2(out.get(), 2);
    if (cwd != nullptr && ::chdir(cwd) != 0) child_fail(report_write.get());
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    ::execve(program, argv.data(), envp.data());
    child_fail(report_write.get());
  }
  ::setpgid(pid_, pid_);  // as the child does: whichever runs first, no window without it
  pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
  int err = pidfd_ ? 0 : errno;
  report_write.reset();
  ssize_t n;
  do {
    n = ::read(report_read.get(), &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  if (n == sizeof err || !pidfd_) {
    stop();
    throw Error(fmt::format("cannot run {}{}: {}", program,
                            cwd != nullptr ? fmt::format(" in {}", cwd) : "", std::strerror(err)));
  }
}

Child::~Child() {
  if (pid_ > 0 && !status_) stop();
}

ExitStatus Child::reap() {
  int wstatus = 0;
  while (::waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
  }
  status_ = status_of(wstatus);
  return *status_;
}

std::optional<ExitStatus> Child::wait(std::optional<Clock::time_point> deadline) {
  if (status_) return status_;
  pollfd p{pidfd_.get(), POLLIN, 0};
  if (wait_for({&p, 1}, deadline) == 0) return std::nullopt;
  // Exited but not reaped: its pid is still its group's, so this cannot hit another group.
  ::kill(-pid_, SIGKILL);
  return reap();
}

ExitStatus Child::stop(int sig, std::chrono::milliseconds grace) {
  if (status_) return *status_;
  ::kill(-pid_, sig);
  if (sig != SIGKILL) {
    pollfd p{pidfd_.get(), POLLIN, 0};
    wait_for({&p, 1}, Clock::now() + grace, false);
  }
  // The child is still unreaped, so its pid still names only its own group.
  ::kill(-pid_, SIGKILL);
  return reap();
}

std::string file_tail(const std::string& path, size_t max_lines) {
  constexpr off_t kMaxBytes = 4096;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st;
  if (!fd || ::fstat(fd.get(), &st) != 0) return "";
  const off_t from = std::max<off_t>(0, st.st_size - kMaxBytes);
  std::string text(static_cast<size_t>(st.st_size - from), '\0');
  const ssize_t n = ::pread(fd.get(), text.data(), text.size(), from);
  text.resize(n > 0 ? static_cast<size_t>(n) : 0);
  if (from > 0) text.erase(0, text.find('\n') + 1);  // a cut first line
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t pos = text.size();
  for (size_t i = 0; i < max_lines; ++i) {
    const size_t nl = pos == 0 ? std::string::npos : text.rfind('\n', pos - 1);
    if (nl == std::string::npos) return text;
    pos = nl;
  }
  return text.substr(pos + 1);
}

namespace {

ChildSpec daemon_spec(const std::string& backing, const std::string& mnt,
                      const std::string& options, const std::string& log) {
  ChildSpec spec;
  // The daemon is this very binary (even if a rebuild replaced its file since), in the
  // foreground: it stays our child, so that we can wait for it and stop it, and it
  // unmounts (SIGTERM) if crashtest dies.
  spec.program = "/proc/self/exe";
  spec.argv = {"fsysfs", "-f", "-o", options, backing, mnt};
  spec.output = log;
  spec.death_signal = SIGTERM;
  return spec;
}

}  // namespace

ScratchMount::ScratchMount(const std::string& backing, const std::string& mnt,
                           const std::string& options, const std::string& log)
    : mnt_(mnt), log_(log), daemon_(daemon_spec(backing, mnt, options, log)) {
  // The mount table is pollable: any change wakes us, and so does the daemon's exit.
  UniqueFd mountinfo(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
  if (!mountinfo) throw Error(fmt::format("/proc/self/mountinfo: {}", std::strerror(errno)));
  const auto deadline = Clock::now() + kMountDeadline;
  while (!is_fsysfs_mount(mnt_)) {
    pollfd fds[2] = {{mountinfo.get(), POLLPRI, 0}, {daemon_.pidfd(), POLLIN, 0}};
    const int n = wait_for(fds, deadline);
    if (fds[1].revents != 0) {
      const ExitStatus s = *daemon_.wait(std::nullopt);
      throw Error(fmt::format("fsysfs -o {} {} {} failed ({}): {}", options, backing, mnt_,
                              s.text(), file_tail(log_, 5)));
    }
    if (n == 0) {
      throw Error(fmt::format("fsysfs did not mount {} in {} s: {}", mnt_, kMountDeadline.count(),
                              file_tail(log_, 5)));
    }
  }
  mounted_ = true;
}

ScratchMount::~ScratchMount() {
  if (mounted_ && is_fsysfs_mount(mnt_)) ::umount2(mnt_.c_str(), MNT_DETACH);
  if (!daemon_.exited()) daemon_.stop(SIGTERM, std::chrono::seconds(10));
}

void ScratchMount::unmount() {
  const auto busy_deadline = Clock::now() + kBusyDeadline;
  while (::umount2(mnt_.c_str(), 0) != 0) {
    if (errno == EINVAL) break;  // no longer a mount point
    if (errno != EBUSY || Clock::now() > busy_deadline) {
      throw Error(fmt::format("cannot unmount {}: {}{}", mnt_, std::strerror(errno),
                              errno == EBUSY ? " (a process the workload or the check started "
                                               "still uses it)"
                                             : ""));
    }
    wait_for({}, Clock::now() + std::chrono::milliseconds(50));
  }
  mounted_ = false;
  const auto status = daemon_.wait(Clock::now() + kDaemonExitDeadline);
  if (!status) {
    throw Error(fmt::format("the fsysfs daemon of {} did not exit in {} s after the unmount", mnt_,
                            kDaemonExitDeadline.count()));
  }
  if (!status->ok()) {
    throw Error(fmt::format("the fsysfs daemon of {} ended with {} after the unmount: {}", mnt_,
                            status->text(), file_tail(log_, 5)));
  }
}

void ScratchMount::reap_crashed() {
  mounted_ = false;
  daemon_.wait(Clock::now() + kDaemonExitDeadline);
}

}  // namespace fsysfs::mount
