#include "mount/crash_command.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>
#include <optional>
#include <random>
#include <string>

#include "engine/unique_fd.h"
#include "fusefs/control.h"
#include "fusefs/crash_rollback.h"
#include "fusefs/crashsim.h"
#include "mount/control_client.h"
#include "mount/error.h"

namespace fsysfs::mount {
namespace {

// How long the daemon may take to drain and roll back before we give up on it.
constexpr int kRollbackTimeoutMs = 300'000;

void write_file(const std::string& path, std::string_view text, std::string_view what) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    throw Error(fmt::format("{}: {}: {}", what, path, std::strerror(errno)));
  }
}

// Whether `path` is still a mount point (a dead FUSE mount included).
bool mounted(const std::string& path) {
  struct stat st;
  struct stat parent;
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOTCONN;
  if (::lstat((path + "/..").c_str(), &parent) != 0) return true;
  return st.st_dev != parent.st_dev;
}

// Waits for the daemon behind `daemon` (a pidfd) to exit, then takes its report.
std::string take_report(const CrashsimMount& m, int daemon) {
  pollfd p{daemon, POLLIN, 0};
  const int ready = ::poll(&p, 1, kRollbackTimeoutMs);
  if (ready <= 0) {
    throw Error(fmt::format("the daemon of {} (pid {}) did not finish the rollback in {} s", m.mnt,
                            m.pid, kRollbackTimeoutMs / 1000));
  }
  UniqueFd backing_fd(::open(m.backing.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::string report;
  if (!backing_fd || fusefs::take_crash_report(backing_fd.get(), &report) < 0) {
    throw Error(fmt::format("the daemon of {} left no crash report in {}/{} (see its log)", m.mnt,
                            m.backing, fusefs::kCrashsimDir));
  }
  // The daemon unmounts on its way out; a mount still there is dead: free the mount point.
  if (mounted(m.mnt) && ::umount2(m.mnt.c_str(), MNT_DETACH) != 0) {
    throw Error(fmt::format("cannot unmount {}: {}", m.mnt, std::strerror(errno)));
  }
  return report;
}

UniqueFd open_pidfd(const CrashsimMount& m) {
  UniqueFd daemon(static_cast<int>(::syscall(SYS_pidfd_open, m.pid, 0)));
  if (!daemon) {
    throw Error(fmt::format("the daemon of {} (pid {}): {}", m.mnt, m.pid, std::strerror(errno)));
  }
  return daemon;
}

}  // namespace

CrashsimMount crashsim_mount(const std::string& mnt) {
  std::string info;
  try {
    info = read_control(mnt, fusefs::control_attr::kCrash);
  } catch (const Error& e) {
    if (std::string_view(e.what()).find("not an fsysfs mount") == std::string_view::npos) throw;
    throw Error(fmt::format("{} is not a crashsim mount (mount it with -o crashsim)", mnt));
  }
  const size_t nl = info.find('\n');
  CrashsimMount m;
  m.mnt = mnt;
  m.pid = static_cast<pid_t>(std::stol(info.substr(0, nl)));
  m.backing = info.substr(nl + 1, info.find('\n', nl + 1) - nl - 1);
  return m;
}

std::string crash_mount(const CrashsimMount& m, const fusefs::CrashPlan& plan) {
  if (::geteuid() != 0) throw Error("fsysfs crash needs root: it aborts the FUSE connection");
  struct stat st;
  if (::stat(m.mnt.c_str(), &st) != 0) {
    throw Error(fmt::format("{}: {}", m.mnt, std::strerror(errno)));
  }
  const std::string abort_file =
      fmt::format("/sys/fs/fuse/connections/{}/abort", ::minor(st.st_dev));
  if (::access(abort_file.c_str(), W_OK) != 0) {
    throw Error(
        fmt::format("cannot abort the connection of {}: {}: {} (is fusectl mounted on "
                    "/sys/fs/fuse/connections?)",
                    m.mnt, abort_file, std::strerror(errno)));
  }
  UniqueFd daemon = open_pidfd(m);
  // The daemon looks for this once its requests stop: rolled back, not a plain unmount.
  const std::string dir = fmt::format("{}/{}", m.backing, fusefs::kCrashsimDir);
  UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) throw Error(fmt::format("{}: {}", dir, std::strerror(errno)));
  if (int rc = fusefs::request_crash(dir_fd.get(), plan); rc < 0) {
    throw Error(fmt::format("asking for the crash in {}: {}", dir, std::strerror(-rc)));
  }
  write_file(abort_file, "1", "aborting the connection");
  return take_report(m, daemon.get());
}

std::string await_crash(const CrashsimMount& m) {
  UniqueFd daemon = open_pidfd(m);
  return take_report(m, daemon.get());
}

int run_crash(std::span<const std::string_view> args) {
  constexpr std::string_view kUsage =
      "fsysfs crash MOUNTPOINT [--keep none|all|random] [--seed N] [--tear]";
  if (args.empty() || args[0].empty() || args[0][0] == '-') {
    throw Error(fmt::format("missing MOUNTPOINT (usage: {})", kUsage));
  }
  std::string text = "keep=none";
  bool seeded = false;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--keep" && i + 1 < args.size()) {
      text += fmt::format(" keep={}", args[++i]);
    } else if (args[i] == "--seed" && i + 1 < args.size()) {
      text += fmt::format(" seed={}", args[++i]);
      seeded = true;
    } else if (args[i] == "--tear") {
      text += " tear=1";
    } else {
      throw Error(fmt::format("unexpected argument '{}' (usage: {})", args[i], kUsage));
    }
  }
  std::string why;
  std::optional<fusefs::CrashPlan> plan = fusefs::CrashPlan::parse(text, &why);
  if (!plan) throw Error(fmt::format("{} (usage: {})", why, kUsage));
  if (plan->keep == fusefs::CrashKeep::kRandom && !seeded) {
    plan->seed = std::random_device{}();
  }
  const CrashsimMount m = crashsim_mount(std::string(args[0]));
  fmt::print("{}", crash_mount(m, *plan));
  return 0;
}

}  // namespace fsysfs::mount
