#include "tests/fusefs/mount_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace fsysfs::test {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kMountDeadline = std::chrono::seconds(15);
constexpr auto kExitDeadline = std::chrono::seconds(15);
constexpr auto kPoll = std::chrono::milliseconds(5);

// mountinfo escapes space, tab, newline and backslash as octal.
std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Waits for `pid` until the deadline; true when it was reaped.
bool wait_exit(pid_t pid, Clock::duration deadline, int* status) {
  auto end = Clock::now() + deadline;
  while (true) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0) return true;  // not our child any more
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(kPoll);
  }
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Where each thread of a daemon that will not exit is: name, state, the syscall it is in
// and its kernel stack (root only), so that a hang in CI leaves its evidence.
std::string thread_states(pid_t pid) {
  std::string out;
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(task, ec)) {
    const std::string dir = entry.path().string();
    std::string comm = slurp(dir + "/comm");
    if (!comm.empty() && comm.back() == '\n') comm.pop_back();
    const std::string stat = slurp(dir + "/stat");
    const size_t paren = stat.rfind(')');
    const char state =
        paren != std::string::npos && paren + 2 < stat.size() ? stat[paren + 2] : '?';
    out += "thread " + entry.path().filename().string() + " (" + comm + ") " + state + ", wchan " +
           slurp(dir + "/wchan") + ", syscall " + slurp(dir + "/syscall") + slurp(dir + "/stack");
  }
  return out;
}

}  // namespace

int run_program(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    ::close_range(3, ~0u, 0);
    execvp(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

CommandResult run_fsysfs(const std::string& dir, std::vector<std::string> args) {
  args.insert(args.begin(), daemon_binary());
  const std::string out_path = dir + "/command.out";
  const std::string err_path = dir + "/command.err";
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::close_range(3, ~0u, 0);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CommandResult r;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

std::string daemon_binary() {
  if (const char* env = std::getenv("FSYSFS_TEST_BINARY"); env != nullptr && *env != '\0') {
    return env;
  }
#ifdef FSYSFS_BINARY
  return FSYSFS_BINARY;
#else
  return FSYSFS_SERVE_HELPER;
#endif
}

std::string serve_helper_binary() { return FSYSFS_SERVE_HELPER; }

std::string uring_transport_missing() {
  std::ifstream in("/sys/module/fuse/parameters/enable_uring");
  std::string value;
  if (!(in >> value)) return "the kernel has no FUSE over io_uring";
  return value == "Y" ? "" : "the fuse module's enable_uring parameter is off";
}

bool is_mounted(const std::string& path, const std::string& fstype) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent maj:min root mountpoint options [optional...] - fstype source super
    std::istringstream ss(line);
    std::string id, parent, dev, root, mp;
    ss >> id >> parent >> dev >> root >> mp;
    if (unescape_mountinfo(mp) != path) continue;
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string type;
    rest >> type;
    if (type == fstype) return true;
  }
  return false;
}

void remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

void MountFixture::SetUp() {
  char tmpl[] = "/tmp/fsysfs-test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
  base_ = tmpl;
  // World-traversable, so tests can run parts as an unprivileged user.
  ASSERT_EQ(chmod(base_.c_str(), 0755), 0);
  backing_ = base_ + "/backing";
  mnt_ = base_ + "/mnt";
  plain_ = base_ + "/plain";
  log_ = base_ + "/daemon.log";
  for (auto* d : {&backing_, &mnt_, &plain_}) {
    ASSERT_EQ(mkdir(d->c_str(), 0755), 0) << *d << ": " << std::strerror(errno);
  }
  mount();
}

void MountFixture::mount() {
  const std::string bin = daemon_binary();
  std::vector<std::string> argv{bin, "-f"};
  std::string o = mount_options();
  // The whole suite runs once per transport: $FSYSFS_TEST_TRANSPORT picks it for every mount
  // whose test does not name one.
  if (const char* t = std::getenv("FSYSFS_TEST_TRANSPORT");
      t != nullptr && *t != '\0' && o.find("transport=") == std::string::npos) {
    o += (o.empty() ? "transport=" : ",transport=") + std::string(t);
  }
  if (!o.empty()) {
    argv.push_back("-o");
    argv.push_back(o);
  }
  argv.push_back(backing_);
  argv.push_back(mnt_);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // If the test process dies, the daemon unmounts and exits instead of lingering.
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int log = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    // The daemon starts with stdin/out/err only, not with whatever the test runner left
    // open (tests look at the daemon's fds).
    ::close_range(3, ~0u, 0);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  daemon_ = pid;
  auto end = Clock::now() + kMountDeadline;
  while (!is_mounted(mnt_, "fuse.fsysfs")) {
    int status = 0;
    if (waitpid(daemon_, &status, WNOHANG) == daemon_) {
      daemon_ = -1;
      FAIL() << bin << " exited before mounting (status " << status << ")";
    }
    if (Clock::now() > end) FAIL() << bin << " did not mount " << mnt_ << " in time";
    std::this_thread::sleep_for(kPoll);
  }
  mounted_ = true;
}

void MountFixture::unmount() {
  if (mounted_ || is_mounted(mnt_, "fuse.fsysfs")) {
    if (run_program({"fusermount3", "-u", "-z", mnt_}) != 0) umount2(mnt_.c_str(), MNT_DETACH);
    mounted_ = false;
  }
  if (daemon_ > 0) {
    int status = 0;
    bool reaped = wait_exit(daemon_, kExitDeadline, &status);
    if (!reaped) {
      const std::string states = thread_states(daemon_);
      kill(daemon_, SIGKILL);
      waitpid(daemon_, &status, 0);
      ADD_FAILURE() << "daemon did not exit after unmount; its threads:\n" << states;
    } else {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "daemon exit status " << status;
    }
    daemon_ = -1;
  }
}

void MountFixture::TearDown() {
  unmount();
  if (HasFailure()) std::fprintf(stderr, "--- daemon log ---\n%s", slurp(log_).c_str());
  if (!base_.empty() && !is_mounted(mnt_, "fuse.fsysfs")) remove_tree(base_);
}

}  // namespace fsysfs::test
