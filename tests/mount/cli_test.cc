// Runs the real fsysfs binary: every bad invocation fails with one line naming the problem
// and leaves nothing mounted; good invocations mount before the command returns; the
// daemon goes away cleanly on unmount and on SIGTERM/SIGINT; fstab mounts work through
// mount(8) and mount.fuse3.

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "engine/unique_fd.h"
#include "mount/options.h"
#include "mount/paths.h"
#include "temp_dir.h"

namespace fsysfs::mount {
namespace {

using testing::read_file;
using testing::TempDir;

constexpr const char* kBinary = FSYSFS_BINARY;
constexpr auto kTimeout = std::chrono::seconds(20);

struct Result {
  int status = -1;  // exit code, or 128 + signal
  std::string out;
  std::string err;
};

struct RunOptions {
  std::optional<uid_t> uid;  // run as this uid (and gid) instead of ours
  std::string cwd;
};

// Runs argv (argv[0] looked up on PATH) to completion with stdout and stderr captured in
// files, so that a daemon that inherits them for a moment cannot hold the test up.
Result run(const std::vector<std::string>& argv, const RunOptions& options = {}) {
  TempDir io;
  std::string out_path = io / "out";
  std::string err_path = io / "err";
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(120);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) ::_exit(121);
    if (options.uid && (::setgroups(0, nullptr) != 0 ||
                        ::setresgid(*options.uid, *options.uid, *options.uid) != 0 ||
                        ::setresuid(*options.uid, *options.uid, *options.uid) != 0)) {
      ::_exit(122);
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  Result r;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  return r;
}

// The fstype mounted at `path` in our mount namespace, or "".
std::string mounted_type(const std::string& path) {
  std::string type;
  for (const auto& e : parse_mountinfo(read_file("/proc/self/mountinfo"))) {
    if (e.mountpoint == path) type = e.fstype;  // the last one is on top
  }
  return type;
}

std::string super_options(const std::string& path) {
  std::string text = read_file("/proc/self/mountinfo");
  std::string needle = " " + path + " ";
  size_t at = text.find(needle);
  if (at == std::string::npos) return "";
  size_t eol = text.find('\n', at);
  std::string line = text.substr(at, eol - at);
  return line.substr(line.rfind(' ') + 1);
}

template <class Pred>
bool wait_until(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::vector<std::string> cmdline_of(const std::string& pid) {
  std::string raw = read_file("/proc/" + pid + "/cmdline");
  std::vector<std::string> args;
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t nul = raw.find('\0', pos);
    if (nul == std::string::npos) nul = raw.size();
    args.push_back(raw.substr(pos, nul - pos));
    pos = nul + 1;
  }
  return args;
}

// The fsysfs daemon serving `mountpoint`: a process whose program is fsysfs and one of
// whose arguments is `mountpoint` (unique per test: it lives in a fresh temp dir).
std::optional<pid_t> find_daemon(const std::string& mountpoint) {
  struct CloseDir {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, CloseDir> proc(::opendir("/proc"));
  while (dirent* d = ::readdir(proc.get())) {
    if (d->d_name[0] < '0' || d->d_name[0] > '9') continue;
    auto args = cmdline_of(d->d_name);
    if (args.empty() || !args[0].ends_with("fsysfs")) continue;
    for (const auto& a : args) {
      if (a == mountpoint) return static_cast<pid_t>(std::stol(d->d_name));
    }
  }
  return std::nullopt;
}

// Waits for a process that is not our child to exit.
bool wait_for_exit(const UniqueFd& pidfd) {
  pollfd p{pidfd.get(), POLLIN, 0};
  int ms = static_cast<int>(std::chrono::milliseconds(kTimeout).count());
  return ::poll(&p, 1, ms) == 1;
}

UniqueFd open_pidfd(pid_t pid) {
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/fuse";
    ASSERT_EQ(::chmod(t_.path().c_str(), 0755), 0);
    backing_ = t_.mkdir("backing");
    mnt_ = t_.mkdir("mnt");
    t_.write("backing/hello", "world");
  }
  void TearDown() override {
    // Never leave a mount behind, whatever failed.
    for (const auto& m : {mnt_, t_ / "mnt2"}) {
      if (!m.empty() && !mounted_type(m).empty()) run({"umount", "-l", m});
    }
  }

  // Why mount(8) cannot be driven here, or "" (root, a private mount namespace and
  // /sbin/mount.fuse3 are needed).
  std::string mount8_missing() {
    if (::geteuid() != 0) return "needs root for mount(8)";
    if (run({"unshare", "--mount", "true"}).status != 0) {
      return "cannot create a mount namespace here";
    }
    if (::access("/sbin/mount.fuse3", X_OK) != 0) return "no /sbin/mount.fuse3";
    return "";
  }

  // mount(8) runs /sbin/mount.fuse3 for type fuse.fsysfs, which runs "fsysfs" through
  // /bin/sh with PATH removed from the environment, so sh's default PATH applies
  // (/usr/local/sbin first). Runs `script` with sh -x in a private mount namespace, with
  // BIN (a directory holding this build's fsysfs, for the script to bind over
  // /usr/local/sbin), FSTAB (a file holding `fstab`), MNT, MNT2 (a second mount point),
  // BACKING and ERR set; nothing it mounts is visible outside.
  Result run_with_mount8(const std::string& name, const std::string& fstab,
                         const std::string& script) {
    std::string bin = t_.mkdir("bin");
    std::filesystem::create_symlink(kBinary, bin + "/fsysfs");
    std::string mnt2 = t_.mkdir("mnt2");
    std::string fstab_path = t_.write("fstab", fstab);
    std::string script_path = t_.write(name + ".sh", script);
    return run({"env", "BIN=" + bin, "FSTAB=" + fstab_path, "MNT=" + mnt_, "MNT2=" + mnt2,
                "BACKING=" + backing_, "ERR=" + (t_ / "err"),
                "PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin", "unshare", "--mount",
                "--propagation", "private", "sh", "-x", script_path});
  }

  // Runs fsysfs and expects it to fail with exactly one line starting "fsysfs: " and
  // containing `expected`, with nothing mounted on mnt_.
  void expect_refused(const std::vector<std::string>& args, const std::string& expected,
                      const RunOptions& options = {}) {
    std::vector<std::string> argv{kBinary};
    argv.insert(argv.end(), args.begin(), args.end());
    Result r = run(argv, options);
    std::string shown;
    for (const auto& a : args) shown += " " + a;
    SCOPED_TRACE("fsysfs" + shown);
    EXPECT_NE(r.status, 0);
    EXPECT_TRUE(r.err.starts_with("fsysfs: ")) << r.err;
    EXPECT_TRUE(r.err.ends_with("\n")) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(expected), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(mounted_type(mnt_), "");
  }

  // Mounts backing_ on mnt_ as a daemon and returns a pidfd of the daemon.
  UniqueFd mount_daemon(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{kBinary, backing_, mnt_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Result r = run(argv);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err, "");
    // Live the moment the command returned: no waiting here.
    EXPECT_EQ(read_file(mnt_ + "/hello"), "world");
    EXPECT_EQ(mounted_type(mnt_), "fuse.fsysfs");
    auto pid = find_daemon(mnt_);
    EXPECT_TRUE(pid.has_value());
    return pid ? open_pidfd(*pid) : UniqueFd();
  }

  TempDir t_;
  std::string backing_;
  std::string mnt_;
};

TEST_F(CliTest, BadArguments_OneLineAndNothingMounted) {
  expect_refused({}, "missing BACKING and MOUNTPOINT");
  expect_refused({backing_}, "missing MOUNTPOINT");
  expect_refused({backing_, mnt_, t_ / "third"},
                 "too many arguments: unexpected '" + (t_ / "third") + "'");
  expect_refused({"-x", backing_, mnt_}, "unknown argument '-x'");
  expect_refused({backing_, mnt_, "-o"}, "option -o needs an argument");
}

TEST_F(CliTest, BadOptions_OneLineAndNothingMounted) {
  expect_refused({backing_, mnt_, "-o", "queue_depth=abc"},
                 "bad value 'abc' for option queue_depth (expected a positive integer)");
  expect_refused({"-o", "allow_other", backing_, mnt_, "-o", "frobnicate"},
                 "unknown mount option 'frobnicate'");
  expect_refused({backing_, mnt_, "-o", "ro,keep_cache=on"},
                 "bad value 'on' for option keep_cache (expected one of auto|off)");
  expect_refused({backing_, mnt_, "-o", "log_file=" + (t_ / "no/such/dir/log")},
                 "cannot open log file");
}

TEST_F(CliTest, BadPaths_OneLineAndNothingMounted) {
  std::string file = t_.write("file", "x");
  std::string inner = t_.mkdir("backing/inner");
  expect_refused({t_ / "missing", mnt_},
                 "backing directory '" + (t_ / "missing") + "' does not exist");
  expect_refused({file, mnt_}, "backing '" + file + "' is not a directory");
  expect_refused({backing_, t_ / "missing"},
                 "mount point '" + (t_ / "missing") + "' does not exist");
  expect_refused({backing_, file}, "mount point '" + file + "' is not a directory");
  expect_refused({backing_, backing_}, "the same directory");
  expect_refused({backing_, inner}, "mount point '" + inner + "' is inside the backing");
  expect_refused({t_.path(), mnt_}, "inside the backing");  // mnt_ is below t_
  expect_refused({inner, t_.path()}, "is inside the mount point");
  EXPECT_EQ(mounted_type(inner), "");
  EXPECT_EQ(mounted_type(t_.path()), "");
}

TEST_F(CliTest, UnreadableBacking_IsRefusedForTheInvokingUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run as another user";
  ASSERT_EQ(::chmod(backing_.c_str(), 0700), 0);
  expect_refused({backing_, mnt_}, "backing directory '" + backing_ + "' is not readable",
                 RunOptions{.uid = 65534, .cwd = {}});
}

TEST_F(CliTest, NoFuseDevice_OneLineAndNothingMounted) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a private mount namespace";
  if (run({"unshare", "--mount", "true"}).status != 0) {
    GTEST_SKIP() << "cannot create a mount namespace here";
  }
  // An empty /dev in a private mount namespace: no /dev/fuse.
  Result r = run({"unshare", "--mount", "--propagation", "private", "sh", "-c",
                  "mount -t tmpfs none /dev && exec \"$0\" \"$@\"", kBinary, backing_, mnt_});
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err,
            "fsysfs: cannot open /dev/fuse: No such file or directory (is the fuse "
            "module loaded?)\n");
  EXPECT_EQ(mounted_type(mnt_), "");
}

TEST_F(CliTest, HelpAndVersion) {
  Result help = run({kBinary, "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_EQ(help.err, "");
  for (const auto& spec : option_table()) {
    EXPECT_NE(help.out.find(std::string(spec.key)), std::string::npos) << spec.key;
  }
  EXPECT_EQ(run({kBinary, "-h"}).out, help.out);

  Result version = run({kBinary, "--version"});
  EXPECT_EQ(version.status, 0);
  EXPECT_TRUE(version.out.starts_with("fsysfs ")) << version.out;
  EXPECT_EQ(run({kBinary, "-V"}).out, version.out);
}

TEST_F(CliTest, DaemonMount_LiveOnReturn_FusermountUnmountsAndDaemonExits) {
  UniqueFd daemon = mount_daemon();
  ASSERT_TRUE(daemon);
  // Writes go through the mount to the backing directory.
  { std::ofstream(mnt_ + "/new") << "data"; }
  EXPECT_EQ(read_file(backing_ + "/new"), "data");

  Result r = run({"fusermount3", "-u", mnt_});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(wait_for_exit(daemon)) << "daemon still running after unmount";
  EXPECT_EQ(mounted_type(mnt_), "");
}

TEST_F(CliTest, DaemonMount_Umount8Unmounts) {
  UniqueFd daemon = mount_daemon({"-o", "log_file=" + (t_ / "daemon.log")});
  ASSERT_TRUE(daemon);
  Result r = run({"umount", mnt_});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(wait_for_exit(daemon));
  EXPECT_EQ(mounted_type(mnt_), "");
}

TEST_F(CliTest, LogFile_RelativeToWhereFsysfsStarted) {
  Result r = run({kBinary, "-o", "log_file=daemon.log,log_level=debug", backing_, mnt_},
                 RunOptions{.uid = std::nullopt, .cwd = t_.path()});
  ASSERT_EQ(r.status, 0) << r.err;
  auto pid = find_daemon(mnt_);
  ASSERT_TRUE(pid);
  UniqueFd daemon = open_pidfd(*pid);
  EXPECT_NE(read_file(t_ / "daemon.log").find("mounted " + backing_ + " on " + mnt_),
            std::string::npos);
  ASSERT_EQ(run({"fusermount3", "-u", mnt_}).status, 0);
  EXPECT_TRUE(wait_for_exit(daemon));
}

// mount.fuse3 runs `fsysfs BACKING MNT -o <fstab options>,dev,suid`.
TEST_F(CliTest, MountFuse3StyleArguments_AllowOtherImpliesDefaultPermissions) {
  UniqueFd daemon = mount_daemon({"-o", "rw,noatime,allow_other,dev,suid"});
  ASSERT_TRUE(daemon);
  std::string opts = super_options(mnt_);
  EXPECT_NE(opts.find("allow_other"), std::string::npos) << opts;
  EXPECT_NE(opts.find("default_permissions"), std::string::npos) << opts;
  ASSERT_EQ(run({"fusermount3", "-u", mnt_}).status, 0);
  EXPECT_TRUE(wait_for_exit(daemon));
}

TEST_F(CliTest, AlreadyMounted_IsRefused) {
  UniqueFd daemon = mount_daemon();
  ASSERT_TRUE(daemon);
  std::string other = t_.mkdir("other");
  Result r = run({kBinary, other, mnt_});
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err, "fsysfs: '" + mnt_ + "' is already an fsysfs mount\n");
  EXPECT_EQ(read_file(mnt_ + "/hello"), "world");  // still the first mount
  ASSERT_EQ(run({"fusermount3", "-u", mnt_}).status, 0);
  EXPECT_TRUE(wait_for_exit(daemon));
}

// A failure inside the daemon reaches the command's stderr: fusermount3 refuses
// allow_other to a user when /etc/fuse.conf lacks user_allow_other.
TEST_F(CliTest, DaemonStartupFailure_ReportedByTheCommand) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run as another user";
  if (read_file("/etc/fuse.conf").find("\nuser_allow_other") != std::string::npos) {
    GTEST_SKIP() << "user_allow_other is set in /etc/fuse.conf";
  }
  ASSERT_EQ(::chown(mnt_.c_str(), 65534, 65534), 0);
  expect_refused({backing_, mnt_, "-o", "allow_other"}, "user_allow_other",
                 RunOptions{.uid = 65534, .cwd = {}});
}

// An ordinary user mounts through the setuid fusermount3, as with any FUSE filesystem.
TEST_F(CliTest, NonRootUser_MountsAndUnmountsThroughFusermount3) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run as another user";
  ASSERT_EQ(::chown(mnt_.c_str(), 65534, 65534), 0);
  const RunOptions nobody{.uid = 65534, .cwd = {}};
  Result r = run({kBinary, backing_, mnt_}, nobody);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(mounted_type(mnt_), "fuse.fsysfs");
  EXPECT_EQ(run({"cat", mnt_ + "/hello"}, nobody).out, "world");
  auto pid = find_daemon(mnt_);
  ASSERT_TRUE(pid);
  UniqueFd daemon = open_pidfd(*pid);
  r = run({"fusermount3", "-u", mnt_}, nobody);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(wait_for_exit(daemon));
  EXPECT_EQ(mounted_type(mnt_), "");
}

// A killed daemon leaves a mount that answers ENOTCONN; the message says what to do.
TEST_F(CliTest, DeadMountOnMountpoint_IsNamedWithTheCure) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 2);
    ::execl(kBinary, kBinary, "-f", backing_.c_str(), mnt_.c_str(), nullptr);
    ::_exit(127);
  }
  ASSERT_TRUE(wait_until([&] { return mounted_type(mnt_) == "fuse.fsysfs"; }));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
  ASSERT_EQ(mounted_type(mnt_), "fuse.fsysfs");  // still there, with nobody serving it

  Result r = run({kBinary, backing_, mnt_});
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err, "fsysfs: mount point '" + mnt_ +
                       "' is a FUSE mount whose daemon has gone (run fusermount3 -u " + mnt_ +
                       ")\n");
  EXPECT_EQ(run({"fusermount3", "-u", mnt_}).status, 0);
  EXPECT_EQ(mounted_type(mnt_), "");
}

void expect_signal_unmounts(const std::string& backing, const std::string& mnt, int sig) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 2);
    ::execl(kBinary, kBinary, "-f", backing.c_str(), mnt.c_str(), nullptr);
    ::_exit(127);
  }
  ASSERT_TRUE(wait_until([&] { return mounted_type(mnt) == "fuse.fsysfs"; }))
      << "fsysfs -f did not mount";
  EXPECT_EQ(read_file(mnt + "/hello"), "world");
  ASSERT_EQ(::kill(pid, sig), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(mounted_type(mnt), "");
}

TEST_F(CliTest, Foreground_SigtermUnmountsCleanly) {
  expect_signal_unmounts(backing_, mnt_, SIGTERM);
}

TEST_F(CliTest, Foreground_SigintUnmountsCleanly) {
  expect_signal_unmounts(backing_, mnt_, SIGINT);
}

TEST_F(CliTest, Debug_TracesFuseRequestsOnStderrInTheForeground) {
  std::string err_path = t_ / "stderr";
  pid_t pid = ::fork();
  if (pid == 0) {
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(err, 2);
    ::execl(kBinary, kBinary, "-d", backing_.c_str(), mnt_.c_str(), nullptr);
    ::_exit(127);
  }
  ASSERT_TRUE(wait_until([&] { return mounted_type(mnt_) == "fuse.fsysfs"; }));
  EXPECT_EQ(read_file(mnt_ + "/hello"), "world");
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  std::string err = read_file(err_path);
  EXPECT_NE(err.find("opcode: LOOKUP"), std::string::npos) << err;
  EXPECT_NE(err.find("opcode: READ"), std::string::npos) << err;
}

// A private mount namespace puts our binary where mount(8) finds it without touching the
// machine (run_with_mount8).
TEST_F(CliTest, Fstab_MountAndUmountThroughMount8) {
  if (std::string why = mount8_missing(); !why.empty()) GTEST_SKIP() << why;
  const std::string fstab = backing_ + " " + mnt_ +
                            " fuse.fsysfs allow_other,noatime,_netdev,nofail 0 0\n" + backing_ +
                            " " + (t_ / "mnt2") + " fuse.fsysfs defaults 0 0\n";
  std::string script =
      "set -e\n"
      "mount --bind \"$BIN\" /usr/local/sbin\n"
      "mount -T \"$FSTAB\" \"$MNT\"\n"
      "test \"$(cat \"$MNT/hello\")\" = world\n"  // live when mount(8) returned
      "grep -q \" $MNT .* - fuse.fsysfs $BACKING .*allow_other\" /proc/self/mountinfo\n"
      "mount -T \"$FSTAB\" \"$MNT2\"\n"
      "test \"$(cat \"$MNT2/hello\")\" = world\n"
      "mount -t fuse.fsysfs -o rw \"$BACKING\" \"$MNT2\" 2>\"$ERR\" && exit 10\n"
      "grep -q 'already an fsysfs mount' \"$ERR\"\n"
      "umount \"$MNT\"\n"
      "umount \"$MNT2\"\n"
      "! grep -q \" $MNT \" /proc/self/mountinfo\n"
      "! grep -q \" $MNT2 \" /proc/self/mountinfo\n"
      "echo ok\n";
  Result r = run_with_mount8("fstab_test", fstab, script);
  EXPECT_EQ(r.status, 0) << r.err << read_file(t_ / "err");
  EXPECT_EQ(r.out, "ok\n");
  EXPECT_EQ(mounted_type(mnt_), "");  // it was never visible outside the namespace
}

// mount(8) never remounts a fuse.* mount itself: for `mount -o remount,ro MNT` it runs
// mount.fuse3, which runs `fsysfs BACKING MNT -o <the mount's options and the typed ones>`
// (fstests generic/294, 306 and 452 remount this way). As root through mount(8) the mount
// is dev,suid unless the entry says nodev/nosuid: mount.fuse3 adds dev,suid (fstests
// generic/184 and 434 use device nodes on the mount).
TEST_F(CliTest, Fstab_RemountThroughMount8_AndRootMountsWithDevSuid) {
  if (std::string why = mount8_missing(); !why.empty()) GTEST_SKIP() << why;
  const std::string fstab = backing_ + " " + mnt_ +
                            " fuse.fsysfs allow_other,noatime,durability=close 0 0\n" + backing_ +
                            " " + (t_ / "mnt2") + " fuse.fsysfs defaults 0 0\n";
  std::string script =
      "set -e\n"
      "opts() { awk -v m=\"$1\" '$5 == m { o = $6 } END { print o }' /proc/self/mountinfo; }\n"
      "mount --bind \"$BIN\" /usr/local/sbin\n"
      "mount -T \"$FSTAB\" \"$MNT\"\n"
      "test \"$(opts \"$MNT\")\" = rw,noatime\n"
      "mount -T \"$FSTAB\" -o remount,ro \"$MNT\"\n"
      "test \"$(opts \"$MNT\")\" = ro,noatime\n"
      "! touch \"$MNT/x\" 2>/dev/null\n"
      "test \"$(cat \"$MNT/hello\")\" = world\n"
      // As fstests' _scratch_remount does it: type, source and target given.
      "mount -t fuse.fsysfs -o remount,rw \"$BACKING\" \"$MNT\"\n"
      "test \"$(opts \"$MNT\")\" = rw,noatime\n"
      "touch \"$MNT/x\"\n"
      "mount -T \"$FSTAB\" -o remount,strictatime,durability=strict \"$MNT\"\n"
      "test \"$(opts \"$MNT\")\" = rw\n"
      "fsysfs stats \"$MNT\" --json | grep -q '\"durability\":\"strict\"'\n"
      "if mount -T \"$FSTAB\" -o remount,threads=2 \"$MNT\" 2>\"$ERR\"; then exit 10; fi\n"
      "grep -q \"'threads=2' cannot change on a live mount\" \"$ERR\"\n"
      "test \"$(opts \"$MNT\")\" = rw\n"
      "mount -T \"$FSTAB\" \"$MNT2\"\n"
      "test \"$(opts \"$MNT2\")\" = rw,relatime\n"
      "mknod \"$MNT2/null\" c 1 3\n"
      "echo fred > \"$MNT2/null\"\n"
      "rm \"$MNT2/null\"\n"
      "umount \"$MNT\"\n"
      "umount \"$MNT2\"\n"
      "echo ok\n";
  Result r = run_with_mount8("remount_test", fstab, script);
  EXPECT_EQ(r.status, 0) << r.err << read_file(t_ / "err");
  EXPECT_EQ(r.out, "ok\n");
  EXPECT_EQ(mounted_type(mnt_), "");
}

}  // namespace
}  // namespace fsysfs::mount

namespace fsysfs::mount {
namespace {

TEST_F(CliTest, StatsSetInject_OnALiveMount) {
  UniqueFd daemon = mount_daemon({"-o", "allow_other"});
  ASSERT_TRUE(daemon);
  { std::ofstream(mnt_ + "/f") << "data"; }

  Result stats = run({kBinary, "stats", mnt_});
  EXPECT_EQ(stats.status, 0) << stats.err;
  EXPECT_TRUE(stats.out.starts_with("fsysfs on " + mnt_ + " (backing " + backing_ + ")\n"))
      << stats.out;
  EXPECT_NE(stats.out.find("durability fsync"), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find("\nwrite "), std::string::npos) << stats.out;

  Result set = run({kBinary, "set", mnt_, "durability=strict", "dirsync=off"});
  EXPECT_EQ(set.status, 0) << set.err;
  Result json = run({kBinary, "stats", mnt_, "--json"});
  EXPECT_EQ(json.status, 0) << json.err;
  EXPECT_TRUE(json.out.starts_with("{\"mountpoint\":")) << json.out;
  EXPECT_NE(json.out.find("\"durability\":\"strict\",\"dirsync\":\"off\""), std::string::npos)
      << json.out;

  Result inject = run({kBinary, "inject", mnt_, "op=fsync,path=/f,errno=EIO,count=1"});
  EXPECT_EQ(inject.status, 0) << inject.err;
  Result list = run({kBinary, "inject", mnt_, "--list"});
  EXPECT_EQ(list.out, "op=fsync,path=/f,errno=EIO,count=1 (hits 0, left 1)\n");
  EXPECT_EQ(run({kBinary, "inject", mnt_, "--clear"}).status, 0);
  EXPECT_EQ(run({kBinary, "inject", mnt_, "--list"}).out, "");

  EXPECT_EQ(run({kBinary, "stats", mnt_, "--reset"}).status, 0);
  json = run({kBinary, "stats", mnt_, "--json"});
  EXPECT_NE(json.out.find("\"write\":{\"count\":0,"), std::string::npos) << json.out;

  // Another user may read, not change.
  const RunOptions nobody{.uid = 65534, .cwd = {}};
  EXPECT_EQ(run({kBinary, "stats", mnt_}, nobody).status, 0);
  Result denied = run({kBinary, "set", mnt_, "durability=none"}, nobody);
  EXPECT_NE(denied.status, 0);
  EXPECT_EQ(denied.err,
            "fsysfs: setting none: permission denied (only root and the user who "
            "mounted " +
                mnt_ + " may change it)\n");

  EXPECT_EQ(run({"umount", mnt_}).status, 0);
  EXPECT_TRUE(wait_for_exit(daemon));
}

TEST_F(CliTest, ControlCommands_BadInputIsOneLine) {
  auto expect_error = [&](const std::vector<std::string>& args, const std::string& expected) {
    std::vector<std::string> argv{kBinary};
    argv.insert(argv.end(), args.begin(), args.end());
    Result r = run(argv);
    EXPECT_NE(r.status, 0) << args[0];
    EXPECT_EQ(r.err, "fsysfs: " + expected + "\n");
    EXPECT_EQ(r.out, "");
  };
  expect_error({"stats"}, "missing MOUNTPOINT (usage: fsysfs stats MOUNTPOINT [--json] [--reset])");
  expect_error({"stats", backing_},
               backing_ + " is not an fsysfs mount (no control file " + backing_ + "/.fsysfs)");
  expect_error({"stats", mnt_, "--yaml"},
               "unexpected argument '--yaml' (usage: fsysfs stats MOUNTPOINT [--json] [--reset])");
  expect_error({"set", mnt_},
               "nothing to set (usage: fsysfs set MOUNTPOINT durability=none|fsync|close|strict | "
               "dirsync=on|off|auto ...)");
  expect_error({"set", mnt_, "durability=sometimes"},
               "bad value 'sometimes' for option durability (expected one of "
               "none|fsync|close|strict)");
  expect_error({"set", mnt_, "threads=4"},
               "'threads' cannot change on a live mount (durability and dirsync can)");
  expect_error({"set", mnt_, "ro"},
               "'ro' is a mount flag: change it with mount -o remount,ro " + mnt_);
  expect_error({"set", mnt_, "dirsync=maybe"},
               "bad value 'maybe' for dirsync (expected on|off|auto)");
  expect_error({"inject", mnt_, "op=write"},
               "bad fault rule 'op=write': a rule needs errno=E..., delay_ms=N or "
               "crash=before|after");
  expect_error({"inject", mnt_},
               "expected one rule (usage: fsysfs inject MOUNTPOINT RULE | "
               "--clear | --list)");
}

TEST_F(CliTest, Set_StrictRefusedOnAWritebackMount) {
  UniqueFd daemon = mount_daemon({"-o", "writeback_cache"});
  ASSERT_TRUE(daemon);
  // Named after a setting that alone would be applied: the refusal leaves it alone too.
  Result r = run({kBinary, "set", mnt_, "dirsync=on", "durability=strict"});
  EXPECT_NE(r.status, 0);
  EXPECT_EQ(r.err, "fsysfs: setting strict: " + mnt_ +
                       " uses the kernel writeback cache, which keeps writes from the daemon "
                       "(mount it without writeback_cache)\n");
  Result json = run({kBinary, "stats", mnt_, "--json"});
  EXPECT_NE(json.out.find("\"dirsync\":\"auto\""), std::string::npos) << json.out;
  EXPECT_EQ(run({"umount", mnt_}).status, 0);
  EXPECT_TRUE(wait_for_exit(daemon));
}

}  // namespace
}  // namespace fsysfs::mount
