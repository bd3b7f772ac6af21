#include "mount/crashtest_command.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "fusefs/control.h"
#include "mount/control_client.h"
#include "mount/crash_command.h"
#include "mount/crashtest_args.h"
#include "mount/crashtest_process.h"
#include "mount/crashtest_report.h"
#include "mount/error.h"
#include "mount/options.h"
#include "mount/paths.h"

namespace fsysfs::mount {
namespace {

// SplitMix64's finaliser: a fixed, well-mixed function, so seeds mean the same everywhere.
uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The mount options of a crash run (crashsim) or a check (`crashsim` false) in `mode`.
std::string mount_options(const CrashtestArgs& a, const CrashtestMode& mode, bool crashsim) {
  std::string o = crashsim ? "crashsim," + mode.options : mode.options;
  if (!a.options.empty()) o += "," + a.options;
  return o;
}

// Checks --options now with the mount's own messages, rather than in the first mount.
void check_options(const CrashtestArgs& a) {
  constexpr std::array<std::string_view, 5> kModeKeys{"crashsim", "durability", "sync", "dirsync",
                                                      "nodirsync"};
  for (std::string_view rest = a.options; !rest.empty();) {
    const std::string_view word = rest.substr(0, rest.find(','));
    const std::string_view key = word.substr(0, word.find('='));
    if (std::find(kModeKeys.begin(), kModeKeys.end(), key) != kModeKeys.end()) {
      throw Error(fmt::format("--options cannot hold '{}': crashtest sets it for each mode", word));
    }
    rest.remove_prefix(std::min(rest.size(), word.size() + 1));
  }
  for (const auto& mode : a.modes) {
    for (const bool crashsim : {true, false}) {
      Settings scratch;
      apply_mount_options(scratch, mount_options(a, mode, crashsim));
      finish_settings(scratch);
    }
  }
}

// How many requests the crash rules of the live mount at `mnt` have counted so far.
uint64_t crashsim_ops(const std::string& mnt) {
  constexpr std::string_view kKey = "\"crashsim_ops\":";
  const std::string json = read_control(mnt, fusefs::control_attr::kStatsJson);
  const size_t at = json.find(kKey);
  if (at == std::string::npos) {
    throw Error(fmt::format("the stats of {} have no crashsim_ops (an older fsysfs daemon?)", mnt));
  }
  return std::strtoull(json.c_str() + at + kKey.size(), nullptr, 10);
}

// Whether the mount at `mnt` still answers: false once a crash rule cut it off.
bool answers(const std::string& mnt) {
  try {
    read_control(mnt, fusefs::control_attr::kCrash);
    return true;
  } catch (const Error&) {
    return false;
  }
}

// The scratch directory: made under --workdir (or $TMPDIR, or /tmp), with the mount point
// in it; removed at the end unless a run kept its directory there.
class Workdir {
 public:
  explicit Workdir(const std::string& parent_arg) {
    std::string parent = parent_arg;
    if (parent.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      parent = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
    }
    std::string pattern = parent + "/fsysfs-crashtest.XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw Error(
          fmt::format("cannot make a scratch directory in {}: {}", parent, std::strerror(errno)));
    }
    char* real = ::realpath(pattern.c_str(), nullptr);
    path_ = real != nullptr ? real : pattern;
    std::free(real);
    mnt_ = path_ + "/mnt";
    if (::mkdir(mnt_.c_str(), 0755) != 0) {
      throw Error(fmt::format("{}: {}", mnt_, std::strerror(errno)));
    }
  }
  // Only empty directories go: rmdir never reaches into a mount left behind.
  ~Workdir() {
    ::rmdir(mnt_.c_str());
    ::rmdir(path_.c_str());
  }
  Workdir(const Workdir&) = delete;
  Workdir& operator=(const Workdir&) = delete;

  const std::string& path() const { return path_; }
  const std::string& mnt() const { return mnt_; }

 private:
  std::string path_;
  std::string mnt_;
};

// One run's directory: BACKING (made by copy_template), the side directory, the outputs. Removed on
// the way out unless keep() was called. Declare it before the mounts of its BACKING, so that they
// go first.
class RunDir {
 public:
  RunDir(const Workdir& work, const std::string& name) : path_(work.path() + "/" + name) {
    // Two runs may draw the same seed (32 bits): the second gets a suffix.
    for (int n = 2; ::mkdir(path_.c_str(), 0755) != 0; ++n) {
      if (errno != EEXIST) throw Error(fmt::format("{}: {}", path_, std::strerror(errno)));
      path_ = fmt::format("{}/{}.{}", work.path(), name, n);
    }
    if (::mkdir(side().c_str(), 0755) != 0) {
      throw Error(fmt::format("{}: {}", side(), std::strerror(errno)));
    }
  }
  ~RunDir() {
    if (kept_) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;

  std::string file(const char* name) const { return path_ + "/" + name; }
  std::string backing() const { return path_ + "/backing"; }
  // FSYSFS_RUN_DIR: outside the mount, shared by the run's workload and check.
  std::string side() const { return path_ + "/files"; }
  const std::string& keep() {
    kept_ = true;
    return path_;
  }

 private:
  std::string path_;
  bool kept_ = false;
};

// The progress line on stderr: rewritten in place on a terminal; elsewhere (a log) printed
// when a mode ends, and every 10 s in between.
class Progress {
 public:
  Progress() : tty_(::isatty(STDERR_FILENO) == 1) {}
  ~Progress() { end_line(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void show(const std::string& text, bool last = false) {
    if (tty_) {
      fmt::print(stderr, "\r{}\033[K", text);
      open_ = true;
    } else if (last || Clock::now() - printed_ >= kLogInterval) {
      fmt::print(stderr, "{}\n", text);
      printed_ = Clock::now();
    }
    std::fflush(stderr);
  }
  void end_line() {
    if (open_) fmt::print(stderr, "\n");
    open_ = false;
  }

 private:
  static constexpr auto kLogInterval = std::chrono::seconds(10);
  bool tty_;
  bool open_ = false;
  Clock::time_point printed_ = Clock::now();
};

void write_text_file(const std::string& path, const std::string& text) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  const bool ok = f != nullptr && std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (f == nullptr || (std::fclose(f) != 0) || !ok) {
    throw Error(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
  }
}

class Runner {
 public:
  Runner(const CrashtestArgs& args, const Workdir& work) : a_(args), work_(work) {}

  ModeResult run_mode(const CrashtestMode& mode, Progress& progress);
  int replay(const CrashtestMode& mode, uint32_t seed);

 private:
  struct Length {
    uint64_t ops = 0;
    bool timed_out = false;
  };
  // The uncrashed run: the workload's length, and the check's sanity on what it left.
  Length learn_length(const CrashtestMode& mode);
  CrashRunResult crash_run(const CrashtestMode& mode, uint64_t ops, uint32_t seed, bool replay,
                           std::string* crash_report);
  CrashRunResult crash_run_in(RunDir& dir, const CrashtestMode& mode, const CrashChoice& choice,
                              bool replay, std::string* crash_report, CrashRunResult run);
  // sh -c `command` in the mount; stdout and stderr to `output`. `timed_out` says whether
  // --timeout stopped it.
  ExitStatus run_script(const std::string& command, const CrashtestMode& mode, const RunDir& dir,
                        const std::string& output, bool* timed_out);
  void copy_template(const RunDir& dir);

  const CrashtestArgs& a_;
  const Workdir& work_;
};

ExitStatus Runner::run_script(const std::string& command, const CrashtestMode& mode,
                              const RunDir& dir, const std::string& output, bool* timed_out) {
  ChildSpec spec;
  spec.argv = {"/bin/sh", "-c", command};
  spec.cwd = work_.mnt();
  spec.env = {"FSYSFS_MNT=" + work_.mnt(), "FSYSFS_RUN_DIR=" + dir.side(),
              "FSYSFS_MODE=" + mode.name};
  spec.output = output;
  Child child(spec);
  std::optional<Clock::time_point> deadline;
  if (a_.timeout_s > 0) {
    deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(a_.timeout_s));
  }
  std::optional<ExitStatus> status = child.wait(deadline);
  *timed_out = !status;
  return status ? *status : child.stop();
}

void Runner::copy_template(const RunDir& dir) {
  // cp -a: modes, owners, times, symlinks, hard links, sparse files, xattrs; -T copies the
  // template directory itself (its own mode and owner) as BACKING.
  ChildSpec spec;
  spec.argv = {"/bin/cp", "-a", "-T", "--reflink=auto", a_.template_dir, dir.backing()};
  spec.output = dir.file("copy.out");
  Child cp(spec);
  const ExitStatus s = *cp.wait(std::nullopt);
  if (!s.ok()) {
    throw Error(fmt::format("copying the template {} to {}: {}: {}", a_.template_dir, dir.backing(),
                            s.text(), file_tail(dir.file("copy.out"), 3)));
  }
}

Runner::Length Runner::learn_length(const CrashtestMode& mode) {
  RunDir dir(work_, mode.name + "-uncrashed");
  copy_template(dir);
  Length length;
  {
    ScratchMount m(dir.backing(), work_.mnt(), mount_options(a_, mode, true),
                   dir.file("daemon.log"));
    const ExitStatus s =
        run_script(a_.workload, mode, dir, dir.file("workload.out"), &length.timed_out);
    if (!s.ok() && !length.timed_out) {
      throw Error(
          fmt::format("the workload fails without any crash in mode {} ({}); kept in {}:\n{}",
                      mode.name, s.text(), dir.keep(), file_tail(dir.file("workload.out"))));
    }
    length.ops = crashsim_ops(work_.mnt());
    m.unmount();
  }
  if (length.ops == 0) {
    throw Error(fmt::format(
        "the workload made no request in the mount in mode {} (it runs in the mount, $FSYSFS_MNT)",
        mode.name));
  }
  ScratchMount m(dir.backing(), work_.mnt(), mount_options(a_, mode, false),
                 dir.file("check-daemon.log"));
  bool timed_out = false;
  const ExitStatus s = run_script(a_.check, mode, dir, dir.file("check.out"), &timed_out);
  if (!s.ok()) {
    throw Error(fmt::format(
        "the check fails without any crash in mode {} ({}): the check or the workload is "
        "broken; kept in {}:\n{}",
        mode.name, timed_out ? "timed out" : s.text(), dir.keep(),
        file_tail(dir.file("check.out"))));
  }
  m.unmount();
  return length;
}

CrashRunResult Runner::crash_run(const CrashtestMode& mode, uint64_t ops, uint32_t seed,
                                 bool replay, std::string* crash_report) {
  const CrashChoice choice = choose_crash(seed, ops, a_.keep, a_.tear);
  CrashRunResult run;
  run.seed = seed;
  run.op = choice.op;
  run.after = choice.after;
  RunDir dir(work_, fmt::format("{}-{}", mode.name, seed));
  try {
    return crash_run_in(dir, mode, choice, replay, crash_report, run);
  } catch (const Interrupted&) {
    throw;
  } catch (const Error& e) {
    throw Error(fmt::format("mode {}, run {}: {} (its files are kept in {})", mode.name, seed,
                            e.what(), dir.keep()));
  }
}

// The steps of a crash run in `dir`; crash_run keeps `dir` when one fails.
CrashRunResult Runner::crash_run_in(RunDir& dir, const CrashtestMode& mode,
                                    const CrashChoice& choice, bool replay,
                                    std::string* crash_report, CrashRunResult run) {
  copy_template(dir);
  {
    ScratchMount m(dir.backing(), work_.mnt(), mount_options(a_, mode, true),
                   dir.file("daemon.log"));
    const CrashsimMount cm = crashsim_mount(work_.mnt());
    const std::string rule = choice.rule();
    const std::array<std::string_view, 2> inject{work_.mnt(), rule};
    run_inject(inject);
    run_script(a_.workload, mode, dir, dir.file("workload.out"), &run.workload_timed_out);
    // The workload is gone: the crash rule fired by now, or never will.
    if (answers(work_.mnt())) {
      run.fired = false;
      run.ops_done = crashsim_ops(work_.mnt());
      *crash_report = crash_mount(cm, choice.plan);
    } else {
      *crash_report = await_crash(cm);
    }
    m.reap_crashed();
  }
  write_text_file(dir.file("crash-report"), *crash_report);
  {
    ScratchMount m(dir.backing(), work_.mnt(), mount_options(a_, mode, false),
                   dir.file("check-daemon.log"));
    bool timed_out = false;
    const ExitStatus s = run_script(a_.check, mode, dir, dir.file("check.out"), &timed_out);
    run.recovered = s.ok();
    run.check_status = timed_out ? "timed out" : s.text();
    m.unmount();
  }
  if (!run.recovered || replay) {
    run.check_tail = file_tail(dir.file("check.out"));
    run.kept = dir.keep();
  }
  return run;
}

ModeResult Runner::run_mode(const CrashtestMode& mode, Progress& progress) {
  ModeResult result;
  result.mode = mode.name;
  progress.show(fmt::format("mode {}: the uncrashed run", mode.name));
  const Length length = learn_length(mode);
  result.requests = length.ops;
  result.length_timed_out = length.timed_out;
  for (uint32_t i = 0; i < a_.points; ++i) {
    progress.show(
        fmt::format("mode {}: {}/{}, {} failed", mode.name, i, a_.points, result.failed()));
    std::string report;
    result.runs.push_back(crash_run(mode, length.ops, crash_run_seed(a_.seed, i), false, &report));
  }
  progress.show(
      fmt::format("mode {}: {}/{}, {} failed", mode.name, a_.points, a_.points, result.failed()),
      true);
  progress.end_line();
  return result;
}

int Runner::replay(const CrashtestMode& mode, uint32_t seed) {
  const Length length = learn_length(mode);
  std::string report;
  const CrashRunResult run = crash_run(mode, length.ops, seed, true, &report);
  fmt::print("replay of run {} in mode {}: {}\n", seed, mode.name,
             crash_point_text(run, length.ops));
  if (!a_.options.empty()) fmt::print("mount options: {}\n", a_.options);
  fmt::print("\n{}\ncheck: {}\n{}{}", report, run.check_status, run.check_tail,
             run.check_tail.empty() ? "" : "\n");
  fmt::print("\n{} {}: BACKING, the crash report and the outputs kept in {}\n", mode.name,
             run.recovered ? "recovered" : "FAILED", run.kept);
  return run.recovered ? kCrashtestRecovered : kCrashtestFailedRuns;
}

std::string canonical_dir(const std::string& path, std::string_view option) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    throw Error(fmt::format("{} {}: {}", option, path, std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) throw Error(fmt::format("{} {}: not a directory", option, path));
  char* real = ::realpath(path.c_str(), nullptr);
  if (real == nullptr) throw Error(fmt::format("{} {}: {}", option, path, std::strerror(errno)));
  std::string out = real;
  std::free(real);
  return out;
}

// What the runs need from the machine, checked before anything is mounted.
void check_environment(CrashtestArgs& a) {
  if (::geteuid() != 0) {
    throw Error(
        "fsysfs crashtest needs root: it mounts with -o crashsim, whose rollback finds files by "
        "handle, and crashes mounts through /sys/fs/fuse/connections");
  }
  // By its type: with no FUSE mount at all, a mounted fusectl is an empty directory.
  constexpr decltype(statfs::f_type) kFusectlMagic = 0x65735543;
  struct statfs fs;
  if (::statfs("/sys/fs/fuse/connections", &fs) != 0 || fs.f_type != kFusectlMagic) {
    throw Error(
        "fusectl is not mounted on /sys/fs/fuse/connections (mount -t fusectl fusectl "
        "/sys/fs/fuse/connections): crashes abort FUSE connections through it");
  }
  a.template_dir = canonical_dir(a.template_dir, "--template");
  if (!a.workdir.empty()) {
    a.workdir = canonical_dir(a.workdir, "--workdir");
    if (is_same_or_inside(a.workdir, a.template_dir)) {
      throw Error(fmt::format("--workdir {} is inside the template {}", a.workdir, a.template_dir));
    }
  }
  check_options(a);
}

int crashtest(CrashtestArgs& a) {
  check_environment(a);
  InterruptGuard interrupts;
  Workdir work(a.workdir);
  if (is_same_or_inside(work.path(), a.template_dir)) {
    throw Error(fmt::format("the scratch directory {} is inside the template {}: use --workdir",
                            work.path(), a.template_dir));
  }
  Runner runner(a, work);
  if (a.replay) return runner.replay(a.modes.front(), *a.replay);

  CrashtestReport report;
  report.template_dir = a.template_dir;
  report.workload = a.workload;
  report.check = a.check;
  report.options = a.options;
  report.seed = a.seed;
  report.points = a.points;
  report.keep = a.keep == fusefs::CrashKeep::kRandom ? "random" : "none";
  report.tear = a.tear;
  report.timeout_s = a.timeout_s;
  {
    Progress progress;
    progress.show(fmt::format("crashtest: seed {}, scratch directory {}", a.seed, work.path()),
                  true);
    progress.end_line();
    for (const auto& mode : a.modes) report.modes.push_back(runner.run_mode(mode, progress));
  }
  fmt::print("{}", report_text(report));
  if (!a.out.empty()) {
    write_text_file(a.out + ".md", report_markdown(report));
    write_text_file(a.out + ".json", report_json(report));
  }
  const bool failed = std::any_of(report.modes.begin(), report.modes.end(),
                                  [](const ModeResult& m) { return m.failed() > 0; });
  return failed ? kCrashtestFailedRuns : kCrashtestRecovered;
}

}  // namespace

uint32_t crash_run_seed(uint64_t seed, uint32_t index) {
  return static_cast<uint32_t>(mix64(mix64(seed) + index) >> 32);
}

CrashChoice choose_crash(uint32_t run_seed, uint64_t ops, fusefs::CrashKeep keep, bool tear) {
  // One more mix: the run seed itself is also the rollback's seed, kept independent of the
  // point.
  const uint64_t h = mix64(run_seed);
  CrashChoice c;
  c.op = 1 + h % ops;
  c.after = (h >> 63) != 0;
  c.plan.keep = keep;
  if (keep == fusefs::CrashKeep::kRandom) {
    c.plan.seed = run_seed;
    c.plan.tear = tear;
  }
  return c;
}

std::string CrashChoice::rule() const {
  std::string r = fmt::format("op=all,count={},crash={}", op, after ? "after" : "before");
  if (plan.keep == fusefs::CrashKeep::kRandom) {
    r += fmt::format(",keep=random,seed={}{}", plan.seed, plan.tear ? ",tear=1" : "");
  }
  return r;
}

int run_crashtest(std::span<const std::string_view> args) {
  try {
    CrashtestArgs a = parse_crashtest_args(args);
    if (a.help) {
      fmt::print("usage: {}\n\n{}", crashtest_usage(), crashtest_help());
      return kCrashtestRecovered;
    }
    return crashtest(a);
  } catch (const Interrupted&) {
    fmt::print(stderr, "\nfsysfs: crashtest interrupted; its mounts are gone\n");
    return kCrashtestInterrupted;
  } catch (const std::exception& e) {
    fmt::print(stderr, "fsysfs: {}\n", e.what());
    return kCrashtestError;
  }
}

}  // namespace fsysfs::mount
