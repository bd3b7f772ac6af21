#include "mount/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "engine/unique_fd.h"
#include "mount/error.h"
#include "mount/logging.h"

namespace fsysfs::mount {
namespace {

// The daemon's report to its parent: one byte, then for kFailed the message until EOF.
constexpr char kReady = 'R';
constexpr char kFailed = 'E';

int exit_status(int serve_result) {
  if (serve_result == 0) return 0;
  return serve_result > 0 && serve_result < 256 ? serve_result : 1;
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the parent is gone; nobody is left to tell
    data.remove_prefix(static_cast<size_t>(n));
  }
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return fmt::format("killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  }
  return fmt::format("wait status {}", status);
}

// What was written to the pipe behind `fd` (non-blocking), as its non-empty lines joined
// with "; ".
std::string stderr_lines(int fd) {
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  std::string lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    if (!lines.empty()) lines += "; ";
    lines += line;
  }
  return lines;
}

[[noreturn]] void daemon_main(const Settings& settings, const ServeFn& serve,
                              const spdlog::sink_ptr& file_sink, UniqueFd report) {
  // The parent prints the message as one line.
  auto fail = [&report](std::string_view message) {
    std::string out(1, kFailed);
    for (char c : message) {
      if (c == '\n') {
        out += "; ";
      } else {
        out += c;
      }
    }
    write_all(report.get(), out);
    report.reset();
  };

  ::setsid();
  // A daemon must not keep the directory it was started from busy.
  if (::chdir("/") != 0) {
    fail(fmt::format("daemon cannot chdir to /: {}", std::strerror(errno)));
    ::_exit(1);
  }
  // The parent may be gone by the time we report; that must not kill the daemon.
  ::signal(SIGPIPE, SIG_IGN);

  auto startup_errors = std::make_shared<StartupErrorSink>();
  std::vector<spdlog::sink_ptr> sinks{file_sink ? file_sink : make_syslog_sink(), startup_errors};
  install_default_logger(sinks, settings.log_level);

  // stdin and stdout go to /dev/null now. stderr goes to a pipe until the mount is live:
  // helpers that libfuse runs (fusermount3) explain their failures only there, and the
  // parent should show that explanation. Both ends are non-blocking, so a chatty helper
  // can never stall on a full pipe.
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  int err_fds[2] = {-1, -1};
  if (!null || ::pipe2(err_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    fail(fmt::format("daemon cannot set up its stdio: {}", std::strerror(errno)));
    ::_exit(1);
  }
  UniqueFd stderr_read(err_fds[0]);
  UniqueFd stderr_write(err_fds[1]);
  if (::dup2(null.get(), STDIN_FILENO) < 0 || ::dup2(null.get(), STDOUT_FILENO) < 0 ||
      ::dup2(stderr_write.get(), STDERR_FILENO) < 0) {
    fail(fmt::format("daemon cannot redirect its stdio: {}", std::strerror(errno)));
    ::_exit(1);
  }
  stderr_write.reset();

  std::atomic<bool> ready = false;
  int result = serve(settings.config, [&] {
    ready = true;
    startup_errors->stop();
    ::dup2(null.get(), STDERR_FILENO);
    stderr_read.reset();
    write_all(report.get(), std::string_view(&kReady, 1));
    report.reset();
  });
  if (!ready) {
    std::string why = stderr_lines(stderr_read.get());
    std::string logged = startup_errors->errors();
    if (!why.empty() && !logged.empty()) why += "; ";
    why += logged;
    if (why.empty()) {
      why = result == 0
                ? "the filesystem stopped before the mount was live"
                : fmt::format("the filesystem failed to start (status {}; see the log)", result);
    }
    fail(why);
  }
  spdlog::shutdown();
  ::_exit(exit_status(result));
}

}  // namespace

int run_foreground(const Settings& settings, const ServeFn& serve) {
  std::vector<spdlog::sink_ptr> sinks{make_stderr_sink()};
  if (!settings.log_file.empty()) sinks.push_back(open_log_file(settings.log_file));
  install_default_logger(sinks, settings.log_level);
  int result = serve(settings.config, [] {});
  spdlog::default_logger()->flush();
  return exit_status(result);
}

pid_t run_daemon(const Settings& settings, const ServeFn& serve) {
  spdlog::sink_ptr file_sink;
  if (!settings.log_file.empty()) file_sink = open_log_file(settings.log_file);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw Error(fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  }
  UniqueFd report_read(fds[0]);
  UniqueFd report_write(fds[1]);

  // Nothing buffered may be written twice, once by each process.
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw Error(fmt::format("cannot fork: {}", std::strerror(errno)));
  if (pid == 0) {
    report_read.reset();
    daemon_main(settings, serve, file_sink, std::move(report_write));
  }

  report_write.reset();
  std::string report;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(report_read.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw Error(fmt::format("cannot read the daemon's report: {}", std::strerror(errno)));
    if (n == 0) break;
    report.append(buf, static_cast<size_t>(n));
    if (report[0] == kReady) return pid;
  }

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!report.empty() && report[0] == kFailed && report.size() > 1) {
    throw Error(report.substr(1));
  }
  throw Error(
      fmt::format("the daemon ended before the mount was live ({})", describe_wait_status(status)));
}

}  // namespace fsysfs::mount
