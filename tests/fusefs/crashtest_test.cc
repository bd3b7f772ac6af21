// fsysfs crashtest, the durability A/B runner, on real programs and real mounts: a
// "write a temp file, rename it over" saver that never fsyncs its directory, and SQLite
// with synchronous=OFF and FULL. Each crashtest here runs as the fsysfs binary, with its
// scratch directory under the test's own, which must hold no mount afterwards.

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "mount/crashtest_args.h"
#include "mount/crashtest_command.h"
#include "tests/fusefs/mount_fixture.h"

namespace fsysfs::test {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Whether any mount of this namespace lies under `dir`.
bool mounted_under(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream ss(line);
    std::string id, parent, dev, root, mp;
    ss >> id >> parent >> dev >> root >> mp;
    if (mp.starts_with(dir + "/")) return true;
  }
  return false;
}

// A field of mode `mode`'s object in a crashtest JSON report: a number, or a list as text.
std::string mode_field(const std::string& json, const std::string& mode, const std::string& key) {
  size_t at = json.find("{\"mode\":\"" + mode + "\"");
  if (at == std::string::npos) return "?";
  at = json.find("\"" + key + "\":", at);
  if (at == std::string::npos) return "?";
  at += key.size() + 3;
  const size_t end = json[at] == '[' ? json.find(']', at) + 1 : json.find_first_of(",}", at);
  return json.substr(at, end - at);
}
int mode_failed(const std::string& json, const std::string& mode) {
  return std::atoi(mode_field(json, mode, "failed").c_str());
}

// Saves version 1..5 of `config`: write config.tmp, fsync it, rename it over config; never
// fsyncs the directory. Each save that returned is noted outside the mount.
constexpr const char* kSaver = R"(
for i in 1 2 3 4 5; do
  printf 'version %d\n' "$i" > config.tmp && sync config.tmp && mv config.tmp config || exit 1
  echo "$i" >> "$FSYSFS_RUN_DIR/saved"
done
)";
// Recovered: config holds the last version saved, or a later one.
constexpr const char* kSaverCheck = R"(
saved=$(tail -n1 "$FSYSFS_RUN_DIR/saved" 2>/dev/null)
[ -n "$saved" ] || exit 0
read -r word n < config || { echo "config is missing, but version $saved was saved"; exit 1; }
[ "$word" = version ] && [ "$n" -ge "$saved" ] ||
  { echo "config holds '$word $n', but version $saved was saved"; exit 1; }
)";

// Ten transactions of one row in one sqlite3 session (WAL: see sqlite_template); after
// each COMMIT returned, the count is noted outside the mount. -bail: a failed COMMIT ends
// it before the note.
constexpr const char* kSqliteWorkload = R"(
{
  echo "PRAGMA synchronous=$1;"
  for i in $(seq 1 10); do
    echo "BEGIN; INSERT INTO t(v) VALUES (printf('row %d %s', $i, hex(randomblob(200)))); COMMIT;"
    echo ".shell echo $i >> \"\$FSYSFS_RUN_DIR/committed\""
  done
} | sqlite3 -bail db
)";
// Recovered: SQLite's own integrity check passes and every noted commit is there.
constexpr const char* kSqliteCheck = R"(
ok=$(sqlite3 db 'PRAGMA integrity_check;') || { echo "sqlite3 cannot read db"; exit 1; }
[ "$ok" = ok ] || { echo "integrity_check: $ok"; exit 1; }
rows=$(sqlite3 db 'SELECT count(*) FROM t;')
committed=$(tail -n1 "$FSYSFS_RUN_DIR/committed" 2>/dev/null)
[ "$rows" -ge "${committed:-0}" ] || { echo "$rows rows, but $committed commits returned"; exit 1; }
)";

class CrashtestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fsysfs-crashtest-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    base_ = tmpl;
    template_ = base_ + "/template";
    work_ = base_ + "/work";
    ASSERT_EQ(::mkdir(template_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(work_.c_str(), 0755), 0);
  }
  void TearDown() override {
    EXPECT_FALSE(mounted_under(base_)) << "crashtest left a mount under " << base_;
    if (!mounted_under(base_)) remove_tree(base_);
  }

  // `fsysfs crashtest --template T --workdir W ARGS...`, through the transport the suite
  // runs with.
  CommandResult crashtest(std::vector<std::string> args) {
    args.insert(args.begin(), {"crashtest", "--template", template_, "--workdir", work_});
    if (const char* t = std::getenv("FSYSFS_TEST_TRANSPORT"); t != nullptr && *t != '\0') {
      args.insert(args.end(), {"--options", std::string("transport=") + t});
    }
    return run_fsysfs(base_, args);
  }

  // Writes a script and returns the command that runs it.
  std::string script(const std::string& name, const std::string& text) {
    const std::string path = base_ + "/" + name;
    std::ofstream(path) << text;
    return "sh " + path;
  }

  // The scratch directories crashtest left in the work directory.
  std::vector<std::string> left_in_work() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(work_)) out.push_back(e.path());
    return out;
  }

  void sqlite_template() {
    // scripts/setup.sh installs it: a missing sqlite3 is a broken set-up, not a skip.
    ASSERT_EQ(run_program({"sh", "-c", "sqlite3 --version >/dev/null"}), 0)
        << "sqlite3 is not installed (scripts/setup.sh installs it)";
    // WAL: a commit appends to the WAL and fsyncs it (FULL), and SQLite fsyncs the
    // directory at the first sync of a new WAL. With a rollback journal (DELETE), FULL
    // deletes the journal to commit without syncing the directory (EXTRA does): a crash
    // brings the journal back and rolls the last commit back, which the model shows too.
    ASSERT_EQ(run_program({"sh", "-c",
                           "sqlite3 \"$0\" 'PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER "
                           "PRIMARY KEY, v);' >/dev/null",
                           template_ + "/db"}),
              0);
  }

  std::string base_;
  std::string template_;
  std::string work_;
};

TEST(CrashtestSeeds, AreFixedFunctionsOfTheSeed_AndPointsLieInTheWorkload) {
  EXPECT_EQ(mount::crash_run_seed(1, 0), mount::crash_run_seed(1, 0));
  EXPECT_NE(mount::crash_run_seed(1, 0), mount::crash_run_seed(1, 1));
  EXPECT_NE(mount::crash_run_seed(1, 0), mount::crash_run_seed(2, 0));
  int after = 0;
  for (uint32_t i = 0; i < 200; ++i) {
    const uint32_t seed = mount::crash_run_seed(7, i);
    const mount::CrashChoice c = mount::choose_crash(seed, 37, fusefs::CrashKeep::kRandom, true);
    EXPECT_GE(c.op, 1u);
    EXPECT_LE(c.op, 37u);
    after += c.after;
    EXPECT_EQ(c.rule(), fmt::format("op=all,count={},crash={},keep=random,seed={},tear=1", c.op,
                                    c.after ? "after" : "before", seed));
  }
  EXPECT_GT(after, 50);
  EXPECT_LT(after, 150);
  const mount::CrashChoice none = mount::choose_crash(5, 1, fusefs::CrashKeep::kNone, false);
  EXPECT_EQ(none.op, 1u);
  EXPECT_EQ(none.rule(), fmt::format("op=all,count=1,crash={}", none.after ? "after" : "before"));
}

TEST_F(CrashtestTest, RenameOverWithoutDirFsync_FailsInFsyncMode_RecoversWithDirsync) {
  const std::vector<std::string> args{"--workload", script("saver.sh", kSaver),
                                      "--check",    script("check.sh", kSaverCheck),
                                      "--modes",    "fsync,dirsync",
                                      "--points",   "20",
                                      "--seed",     "7",
                                      "--out",      base_ + "/result"};
  CommandResult r = crashtest(args);
  ASSERT_EQ(r.status, 1) << r.out << r.err;
  const std::string json = slurp(base_ + "/result.json");
  EXPECT_GT(mode_failed(json, "fsync"), 0) << r.out;
  EXPECT_EQ(mode_failed(json, "dirsync"), 0) << r.out;
  EXPECT_EQ(mode_field(json, "dirsync", "recovered"), "20") << r.out;
  EXPECT_NE(r.out.find("config is missing, but version"), std::string::npos) << r.out;
  const std::string row =
      fmt::format("| dirsync | {} | 20 | 20 | 0 |", mode_field(json, "dirsync", "requests"));
  EXPECT_NE(slurp(base_ + "/result.md").find(row), std::string::npos)
      << slurp(base_ + "/result.md");
  // Each failed run is kept: its BACKING, the crash report, the check's output.
  const std::vector<std::string> left = left_in_work();
  ASSERT_EQ(left.size(), 1u);
  for (const auto& e : std::filesystem::directory_iterator(left[0])) {
    EXPECT_TRUE(e.path().filename().string().starts_with("fsync-")) << e.path();
    EXPECT_TRUE(std::filesystem::exists(e.path() / "backing"));
    EXPECT_NE(slurp(e.path() / "crash-report").find("undone: rename of /config.tmp to /config"),
              std::string::npos);
  }

  // The same seed gives the same runs, and the same results.
  std::vector<std::string> fsync_only = args;
  *(std::find(fsync_only.begin(), fsync_only.end(), "--modes") + 1) = "fsync";
  CommandResult again = crashtest(fsync_only);
  EXPECT_EQ(again.status, 1);
  const std::string json_again = slurp(base_ + "/result.json");
  EXPECT_EQ(mode_field(json_again, "fsync", "failing_seeds"),
            mode_field(json, "fsync", "failing_seeds"));
  EXPECT_EQ(mode_field(json_again, "fsync", "requests"), mode_field(json, "fsync", "requests"));
}

TEST_F(CrashtestTest, SqliteSynchronousOff_LosesCommittedTransactions) {
  sqlite_template();
  if (HasFatalFailure()) return;
  CommandResult r = crashtest({"--workload", script("sqlite.sh", kSqliteWorkload) + " OFF",
                               "--check", script("check.sh", kSqliteCheck), "--modes", "fsync",
                               "--points", "20", "--seed", "7", "--out", base_ + "/result"});
  ASSERT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_GT(mode_failed(slurp(base_ + "/result.json"), "fsync"), 0) << r.out;
  EXPECT_NE(r.out.find("commits returned"), std::string::npos) << r.out;
}

TEST_F(CrashtestTest, SqliteSynchronousFull_KeepsEveryCommitInFsyncMode_NotInNoneMode) {
  sqlite_template();
  if (HasFatalFailure()) return;
  CommandResult r = crashtest({"--workload", script("sqlite.sh", kSqliteWorkload) + " FULL",
                               "--check", script("check.sh", kSqliteCheck), "--modes", "none,fsync",
                               "--points", "20", "--seed", "7", "--out", base_ + "/result"});
  ASSERT_EQ(r.status, 1) << r.out << r.err;
  const std::string json = slurp(base_ + "/result.json");
  EXPECT_GT(mode_failed(json, "none"), 0) << r.out;
  EXPECT_EQ(mode_failed(json, "fsync"), 0) << r.out;
  // The same crash points in both modes: what fsync kept, none lost.
  EXPECT_EQ(mode_field(json, "none", "requests"), mode_field(json, "fsync", "requests"));
}

TEST_F(CrashtestTest, ReplayBySeed_GivesTheSameCrashReportTwice) {
  const std::string saver = script("saver.sh", kSaver);
  const std::string check = script("check.sh", kSaverCheck);
  CommandResult r = crashtest({"--workload", saver, "--check", check, "--modes", "fsync",
                               "--points", "6", "--seed", "7", "--out", base_ + "/result"});
  ASSERT_EQ(r.status, 1) << r.out << r.err;
  std::string seeds = mode_field(slurp(base_ + "/result.json"), "fsync", "failing_seeds");
  const std::string seed = seeds.substr(1, seeds.find_first_of(",]") - 1);
  // "  fsync SEED: crash before request K of L; check exit 1: ..."
  const size_t line = r.out.find("fsync " + seed + ": ");
  ASSERT_NE(line, std::string::npos) << r.out;
  const std::string point =
      r.out.substr(line + 8 + seed.size(), r.out.find(';', line) - line - 8 - seed.size());

  auto replay = [&] {
    CommandResult p =
        crashtest({"--workload", saver, "--check", check, "--mode", "fsync", "--replay", seed});
    EXPECT_EQ(p.status, 1) << p.out << p.err;
    // The last line names where the run is kept: a new directory each time.
    return p.out.substr(0, p.out.rfind("fsync FAILED: "));
  };
  const std::string first = replay();
  EXPECT_NE(first.find("replay of run " + seed + " in mode fsync: " + point), std::string::npos)
      << first;
  EXPECT_NE(first.find("undone: rename of /config.tmp to /config"), std::string::npos) << first;
  EXPECT_NE(first.find("check: exit 1"), std::string::npos) << first;
  EXPECT_EQ(replay(), first);
}

TEST_F(CrashtestTest, AllRecovered_ExitsZeroAndLeavesNothing) {
  CommandResult r = crashtest({"--workload", script("saver.sh", kSaver), "--check",
                               script("check.sh", kSaverCheck), "--modes", "strict", "--points",
                               "3", "--keep", "random", "--tear", "--seed", "3"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("seed 3, 3 crash points per mode, keep random, torn writes"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("mode strict: 3/3, 0 failed"), std::string::npos) << r.err;
  EXPECT_TRUE(left_in_work().empty());
}

TEST_F(CrashtestTest, AWorkloadOrCheckThatFailsWithoutACrash_IsAnError) {
  CommandResult r = crashtest({"--workload", "echo x > f", "--check", "echo broken; false",
                               "--modes", "fsync", "--points", "2"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("fsysfs: the check fails without any crash in mode fsync (exit 1): the "
                       "check or the workload is broken; kept in " +
                       work_ + "/fsysfs-crashtest."),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("broken\n"), std::string::npos) << r.err;
  r = crashtest({"--workload", "exit 3", "--check", "true", "--modes", "fsync"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("fsysfs: the workload fails without any crash in mode fsync (exit 3)"),
            std::string::npos)
      << r.err;
  r = crashtest({"--workload", "true", "--check", "true", "--modes", "fsync"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("fsysfs: the workload made no request in the mount in mode fsync"),
            std::string::npos)
      << r.err;
}

TEST_F(CrashtestTest, Timeout_StopsAWorkloadThatDoesNotEnd) {
  const auto start = std::chrono::steady_clock::now();
  CommandResult r = crashtest({"--workload", "echo x > f; sleep 60", "--check", "true", "--modes",
                               "fsync", "--points", "2", "--timeout", "0.5"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("* the uncrashed workload was stopped by --timeout"), std::string::npos)
      << r.out;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST_F(CrashtestTest, Interrupt_UnmountsAndStopsTheWorkload) {
  const std::string pid_file = base_ + "/workload.pid";
  std::vector<std::string> argv{
      daemon_binary(), "crashtest",
      "--template",    template_,
      "--workdir",     work_,
      "--modes",       "fsync",
      "--workload",    "echo x > f; echo $$ > " + pid_file + "; exec sleep 60",
      "--check",       "true"};
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int out = ::open((base_ + "/interrupted.err").c_str(), O_WRONLY | O_CREAT, 0644);
    ::dup2(out, 1);
    ::dup2(out, 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (slurp(pid_file).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(mounted_under(work_));
  const pid_t workload = std::atoi(slurp(pid_file).c_str());
  ASSERT_GT(workload, 0);
  ::kill(pid, SIGINT);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130) << status;
  EXPECT_NE(slurp(base_ + "/interrupted.err").find("fsysfs: crashtest interrupted"),
            std::string::npos);
  EXPECT_FALSE(mounted_under(work_));
  EXPECT_TRUE(left_in_work().empty());
  // The workload was killed (and reaped by init, which may take a moment).
  for (int i = 0; i < 200 && ::kill(workload, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(::kill(workload, 0), 0);
}

TEST_F(CrashtestTest, BadArguments_AreRefusedWithClearMessages) {
  const std::string file = base_ + "/file";
  std::ofstream(file) << "x";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"crashtest"}, "crashtest needs --template, --workload and --check (usage: "},
      {{"crashtest", "--template", template_, "--workload", "w"},
       "crashtest needs --template, --workload and --check"},
      {{"crashtest", "--points"}, "--points needs a value"},
      {{"crashtest", "--points", "0"},
       "bad value '0' for --points (expected a number from 1 to 100000)"},
      {{"crashtest", "--seed=x"}, "bad value 'x' for --seed"},
      {{"crashtest", "--timeout", "-1"}, "bad value '-1' for --timeout (expected seconds, > 0)"},
      {{"crashtest", "--frobnicate"}, "unexpected argument '--frobnicate' (usage: "},
      {{"crashtest", "--template", template_, "--workload", "w", "--check", "c", "--modes",
        "fsync,fsnyc"},
       "unknown mode 'fsnyc' in --modes (expected none, fsync, close, strict or dirsync)"},
      {{"crashtest", "--template", template_, "--workload", "w", "--check", "c", "--modes",
        "fsync,fsync"},
       "mode 'fsync' named twice in --modes"},
      {{"crashtest", "--template", template_, "--workload", "w", "--check", "c", "--keep", "all"},
       "bad value 'all' for --keep (expected none or random: keep all would lose nothing)"},
      {{"crashtest", "--template", template_, "--workload", "w", "--check", "c", "--tear"},
       "--tear needs --keep random"},
      {{"crashtest", "--template", template_, "--workload", "w", "--check", "c", "--replay", "5"},
       "--replay needs --mode MODE"},
      {{"crashtest", "--template", template_, "--workload", "w", "--check", "c", "--replay", "5x",
        "--mode", "fsync"},
       "bad value '5x' for --replay (expected a number from 0 to 4294967295)"},
      {{"crashtest", "--template", template_, "--workload", "w", "--check", "c", "--mode", "fsync"},
       "--mode goes with --replay; to choose the modes to test, use --modes LIST"},
      {{"crashtest", "--template", base_ + "/none", "--workload", "w", "--check", "c"},
       "--template " + base_ + "/none: No such file or directory"},
      {{"crashtest", "--template", file, "--workload", "w", "--check", "c"},
       "--template " + file + ": not a directory"},
      {{"crashtest", "--template", template_, "--workload", "w", "--check", "c", "--workdir",
        template_},
       "--workdir " + template_ + " is inside the template " + template_},
      {{"crashtest", "--template", template_, "--workload", "w", "--check", "c", "--options",
        "engine=sync,durability=none"},
       "--options cannot hold 'durability=none': crashtest sets it for each mode"},
      {{"crashtest", "--template", template_, "--workload", "w", "--check", "c", "--options",
        "writeback_cache"},
       "crashsim cannot be combined with writeback_cache"},
  };
  for (const auto& [args, message] : cases) {
    CommandResult r = run_fsysfs(base_, args);
    EXPECT_EQ(r.status, 2) << args.back() << ": " << r.err;
    EXPECT_TRUE(r.err.starts_with("fsysfs: ")) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << "expected: " << message << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  EXPECT_TRUE(left_in_work().empty());
}

TEST_F(CrashtestTest, RefusesWithoutRoot) {
  ASSERT_EQ(::chmod(base_.c_str(), 0755), 0);
  const std::string err_path = base_ + "/nobody.err";
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT, 0666);
    ::dup2(err, 2);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0) {
      _exit(126);
    }
    const std::string bin = daemon_binary();
    ::execl(bin.c_str(), bin.c_str(), "crashtest", "--template", template_.c_str(), "--workload",
            "true", "--check", "true", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
  EXPECT_NE(slurp(err_path).find("fsysfs: fsysfs crashtest needs root"), std::string::npos)
      << slurp(err_path);
}

}  // namespace
}  // namespace fsysfs::test
