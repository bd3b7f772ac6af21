// The daemon's start-up protocol, with a stand-in for fusefs::serve: the parent returns
// only when the daemon says the mount is live, and otherwise reports the daemon's reason.

#include "mount/daemon.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "engine/log.h"
#include "mount/error.h"
#include "temp_dir.h"

namespace fsysfs::mount {
namespace {

using testing::TempDir;

Settings settings_with_log(const TempDir& t) {
  Settings s;
  s.config.backing = "/srv/backing";
  s.config.mountpoint = "/mnt/point";
  s.log_file = t / "log";
  return s;
}

std::string daemon_error(const Settings& s, const ServeFn& serve) {
  try {
    pid_t pid = run_daemon(s, serve);
    ::waitpid(pid, nullptr, 0);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

int wait_exit(pid_t pid) {
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  return WEXITSTATUS(status);
}

// The stand-in checks, inside the daemon, what a daemon must have done before serving.
TEST(RunDaemon, ReturnsOnceReady_FromADetachedDaemon) {
  TempDir t;
  Settings s = settings_with_log(t);
  pid_t parent = ::getpid();
  pid_t pid =
      run_daemon(s, [parent](const fusefs::Config& config, const std::function<void()>& on_ready) {
        auto log = component_logger("fusefs");
        struct stat out {};
        struct stat null {};
        char cwd[64] = {};
        if (::getsid(0) != ::getpid()) {
          log->error("not a session leader");
        } else if (::getppid() != parent) {
          log->error("not a child of the caller");
        } else if (::getcwd(cwd, sizeof cwd) == nullptr || std::string(cwd) != "/") {
          log->error("cwd is not /");
        } else if (::fstat(STDOUT_FILENO, &out) != 0 || ::stat("/dev/null", &null) != 0 ||
                   out.st_rdev != null.st_rdev || !S_ISCHR(out.st_mode)) {
          log->error("stdout is not /dev/null");
        } else if (config.mountpoint != "/mnt/point") {
          log->error("wrong config");
        } else {
          on_ready();
          if (::fstat(STDERR_FILENO, &out) != 0 || out.st_rdev != null.st_rdev ||
              !S_ISCHR(out.st_mode)) {
            log->warn("stderr is not /dev/null once ready");
          }
          log->info("serving");
          return 0;
        }
        return 1;
      });
  ASSERT_GT(pid, 0);
  EXPECT_EQ(wait_exit(pid), 0);
  std::string log = testing::read_file(t / "log");
  EXPECT_NE(log.find("[fusefs] [info] serving"), std::string::npos) << log;
  EXPECT_EQ(log.find("[warn]"), std::string::npos) << log;
}

TEST(RunDaemon, ErrorLoggedBeforeReady_IsTheParentsError) {
  TempDir t;
  Settings s = settings_with_log(t);
  EXPECT_EQ(daemon_error(s,
                         [](const fusefs::Config&, const std::function<void()>&) {
                           component_logger("fusefs")->warn("a warning is not the reason");
                           component_logger("fusefs")->error("fuse_session_mount failed: boom");
                           component_logger("fusefs")->info("cleaning up");
                           return 1;
                         }),
            "fuse_session_mount failed: boom");
  EXPECT_EQ(daemon_error(s,
                         [](const fusefs::Config&, const std::function<void()>&) {
                           component_logger("fusefs")->error("libfuse: bad mount point");
                           component_logger("fusefs")->error("cannot mount");
                           return 1;
                         }),
            "libfuse: bad mount point; cannot mount");
  EXPECT_NE(testing::read_file(t / "log").find("boom"), std::string::npos);
}

TEST(RunDaemon, MultiLineError_ReachesTheParentAsOneLine) {
  TempDir t;
  Settings s = settings_with_log(t);
  EXPECT_EQ(daemon_error(s,
                         [](const fusefs::Config&, const std::function<void()>&) {
                           component_logger("fusefs")->error("line one\nline two");
                           return 1;
                         }),
            "line one; line two");
}

// fusermount3 reports why it refused a mount on stderr only.
TEST(RunDaemon, HelperStderrBeforeReady_IsPartOfTheParentsError) {
  TempDir t;
  Settings s = settings_with_log(t);
  EXPECT_EQ(daemon_error(s,
                         [](const fusefs::Config&, const std::function<void()>&) {
                           std::fputs("helper: option x not allowed\n\n", stderr);
                           std::fflush(stderr);
                           component_logger("fusefs")->error("cannot mount");
                           return 1;
                         }),
            "helper: option x not allowed; cannot mount");
}

TEST(RunDaemon, ErrorReachesTheParent_EvenWithLoggingOff) {
  TempDir t;
  Settings s = settings_with_log(t);
  s.log_level = spdlog::level::off;
  EXPECT_EQ(daemon_error(s,
                         [](const fusefs::Config&, const std::function<void()>&) {
                           component_logger("engine")->error("ring setup failed");
                           return 1;
                         }),
            "ring setup failed");
  EXPECT_EQ(testing::read_file(t / "log"), "");
}

TEST(RunDaemon, SilentFailure_ReportsStatus) {
  TempDir t;
  Settings s = settings_with_log(t);
  EXPECT_EQ(daemon_error(s, [](const fusefs::Config&, const std::function<void()>&) { return 3; }),
            "the filesystem failed to start (status 3; see the log)");
  EXPECT_EQ(daemon_error(s, [](const fusefs::Config&, const std::function<void()>&) { return 0; }),
            "the filesystem stopped before the mount was live");
}

TEST(RunDaemon, DaemonDyingBeforeReady_IsReported) {
  TempDir t;
  Settings s = settings_with_log(t);
  EXPECT_EQ(daemon_error(s,
                         [](const fusefs::Config&, const std::function<void()>&) {
                           ::raise(SIGKILL);
                           return 0;
                         }),
            "the daemon ended before the mount was live (killed by signal 9 (Killed))");
}

TEST(RunDaemon, ErrorsAfterReady_DoNotReachTheParent) {
  TempDir t;
  Settings s = settings_with_log(t);
  pid_t pid = run_daemon(s, [](const fusefs::Config&, const std::function<void()>& on_ready) {
    on_ready();
    component_logger("fusefs")->error("later trouble");
    return 5;
  });
  EXPECT_EQ(wait_exit(pid), 5);
  EXPECT_NE(testing::read_file(t / "log").find("later trouble"), std::string::npos);
}

TEST(RunDaemon, UnopenableLogFile_FailsBeforeForking) {
  TempDir t;
  Settings s = settings_with_log(t);
  s.log_file = t / "no/such/dir/log";
  bool served = false;
  EXPECT_EQ(daemon_error(s,
                         [&served](const fusefs::Config&, const std::function<void()>&) {
                           served = true;
                           return 0;
                         }),
            "cannot open log file '" + (t / "no/such/dir/log") + "': No such file or directory");
  EXPECT_FALSE(served);
}

TEST(RunForeground, ReturnsServesStatus_AndLogsToTheLogFile) {
  TempDir t;
  Settings s = settings_with_log(t);
  EXPECT_EQ(run_foreground(s,
                           [](const fusefs::Config&, const std::function<void()>& on_ready) {
                             on_ready();
                             component_logger("fusefs")->info("serving in the foreground");
                             return 0;
                           }),
            0);
  EXPECT_NE(testing::read_file(t / "log").find("[fusefs] [info] serving in the foreground"),
            std::string::npos);
  EXPECT_EQ(
      run_foreground(s, [](const fusefs::Config&, const std::function<void()>&) { return -22; }),
      1);
  EXPECT_EQ(
      run_foreground(s, [](const fusefs::Config&, const std::function<void()>&) { return 7; }), 7);
}

}  // namespace
}  // namespace fsysfs::mount
