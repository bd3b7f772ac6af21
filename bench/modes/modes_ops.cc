// Per-operation timer for the two workloads of bench/modes.sh that fio cannot run:
//
//   modes_ops rename [--ops N] [--max-seconds S] [--names K] [--dsync] DIR
//     N times: write a 4 KiB temp file, close it and rename it over one of K names, the
//     way most programs save a file (no fsync of the file or the directory). --dsync opens
//     the temp file O_DSYNC (the reference for "every write is durable").
//   modes_ops sqlite [--tx N] [--rows R] [--max-seconds S] DIR
//     Drives the sqlite3 command-line shell on DIR/modes.db: N transactions of R inserts
//     each, in the shell's default journal mode. One operation is one transaction.
//
// Both stop early after --max-seconds (the count done is reported) and print one JSON line:
// {"ops":..,"seconds":..,"ops_s":..,"p50_us":..,"p99_us":..,"max_us":..}. An operation's
// latency is measured around the whole operation, from this process.

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sys.h"
#include "engine/unique_fd.h"

extern char** environ;

namespace fsysfs::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kFileBytes = 4096;

struct Args {
  std::string command;
  std::string dir;
  uint64_t ops = 1000;
  uint64_t rows = 10;
  uint64_t names = 8;
  double max_seconds = 60;
  bool dsync = false;
};

int usage() {
  std::fprintf(stderr,
               "usage: modes_ops rename [--ops N] [--max-seconds S] [--names K] [--dsync] DIR\n"
               "       modes_ops sqlite [--tx N] [--rows R] [--max-seconds S] DIR\n");
  return 2;
}

int fail(const char* what, const std::string& name, int err) {
  std::fprintf(stderr, "modes_ops: %s %s: %s\n", what, name.c_str(), std::strerror(err));
  return 1;
}

bool parse_count(std::string_view text, uint64_t& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && out > 0;
}

bool parse_seconds(std::string_view text, double& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && out > 0;
}

// Latencies in nanoseconds, one per completed operation.
class Recorder {
 public:
  explicit Recorder(uint64_t expected) { lat_ns_.reserve(expected); }

  void add(Clock::duration d) {
    lat_ns_.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  }
  uint64_t count() const { return lat_ns_.size(); }

  void print(Clock::duration wall) {
    std::sort(lat_ns_.begin(), lat_ns_.end());
    const double seconds = std::chrono::duration<double>(wall).count();
    const double n = static_cast<double>(lat_ns_.size());
    std::printf(
        "{\"ops\":%zu,\"seconds\":%.3f,\"ops_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
        "\"max_us\":%.1f}\n",
        lat_ns_.size(), seconds, seconds > 0 ? n / seconds : 0.0, percentile(0.50) / 1e3,
        percentile(0.99) / 1e3, lat_ns_.empty() ? 0.0 : lat_ns_.back() / 1e3);
  }

 private:
  // Nearest rank: the smallest latency that at least fraction `p` of the operations meet.
  double percentile(double p) const {
    if (lat_ns_.empty()) return 0;
    size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(lat_ns_.size())));
    return static_cast<double>(lat_ns_[std::max<size_t>(rank, 1) - 1]);
  }

  std::vector<int64_t> lat_ns_;
};

bool out_of_time(Clock::time_point start, double max_seconds) {
  return std::chrono::duration<double>(Clock::now() - start).count() >= max_seconds;
}

// One save: create/truncate the temp file, write it, close it, rename it over `name`.
// close() is checked: under durability=close a failed sync is reported there.
int save_once(int dir, const std::string& name, const std::string& tmp, const char* data,
              bool dsync) {
  int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (dsync ? O_DSYNC : 0);
  UniqueFd fd(::openat(dir, tmp.c_str(), flags, 0644));
  if (!fd) return fail("open", tmp, errno);
  int64_t n = sys::pwrite_all(fd.get(), data, kFileBytes, 0);
  if (n < 0) return fail("write", tmp, static_cast<int>(-n));
  if (::close(fd.release()) != 0) return fail("close", tmp, errno);
  if (::renameat(dir, tmp.c_str(), dir, name.c_str()) != 0) return fail("rename", tmp, errno);
  return 0;
}

int run_rename(const Args& args) {
  UniqueFd dir(::open(args.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return fail("open", args.dir, errno);
  std::vector<std::string> names, tmps;
  for (uint64_t i = 0; i < args.names; ++i) {
    names.push_back("save" + std::to_string(i));
    tmps.push_back(names.back() + ".tmp");
  }
  std::vector<char> data(kFileBytes);
  // The first save of each name creates it; the timed ones all replace an existing file.
  for (uint64_t i = 0; i < args.names; ++i) {
    if (int rc = save_once(dir.get(), names[i], tmps[i], data.data(), false); rc) return rc;
  }

  Recorder rec(args.ops);
  const auto start = Clock::now();
  for (uint64_t i = 0; i < args.ops && !out_of_time(start, args.max_seconds); ++i) {
    // Different bytes each time, so that no layer can skip an unchanged write.
    std::memset(data.data(), 'a' + static_cast<int>(i % 26), 64);
    std::memcpy(data.data(), &i, sizeof i);
    const auto t0 = Clock::now();
    const size_t k = i % args.names;
    if (int rc = save_once(dir.get(), names[k], tmps[k], data.data(), args.dsync); rc) return rc;
    rec.add(Clock::now() - t0);
  }
  rec.print(Clock::now() - start);
  return 0;
}

// The sqlite3 shell as a child process, fed on a pipe. Its output is line-buffered (through
// stdbuf: the shell's stdout is a pipe, which stdio would buffer fully), so a marker line
// printed after each transaction comes back as soon as the transaction is done.
class SqliteShell {
 public:
  ~SqliteShell() {
    to_.reset();  // EOF on the shell's stdin: it exits.
    if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
  }

  int start(const std::string& db) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
      return fail("pipe", "", errno);
    }
    UniqueFd child_in(in[0]), child_out(out[1]);
    to_.reset(in[1]);
    from_.reset(out[0]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, child_in.get(), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, child_out.get(), STDOUT_FILENO);
    // -bail: the first failed statement ends the shell, so no marker is ever missing quietly.
    const char* argv[] = {"stdbuf", "-oL", "sqlite3", "-bail", db.c_str(), nullptr};
    int rc = ::posix_spawnp(&pid_, "stdbuf", &actions, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      return fail("spawn", "stdbuf -oL sqlite3", rc);
    }
    return 0;
  }

  // Sends `sql` followed by a query that prints `marker`, and waits for the marker.
  int run(const std::string& sql, const std::string& marker) {
    std::string text = sql + "\nSELECT '" + marker + "';\n";
    int64_t n = write_all(text);
    if (n < 0) return fail("write to", "sqlite3", static_cast<int>(-n));
    std::string line;
    while (true) {
      if (int rc = read_line(line); rc) return rc;
      if (line == marker) return 0;
      std::fprintf(stderr, "modes_ops: sqlite3 said: %s\n", line.c_str());
    }
  }

 private:
  int64_t write_all(const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::write(to_.get(), text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return -errno;
      done += static_cast<size_t>(n);
    }
    return static_cast<int64_t>(done);
  }

  int read_line(std::string& line) {
    while (true) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return 0;
      }
      char chunk[4096];
      ssize_t n = ::read(from_.get(), chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail("read from", "sqlite3", errno);
      if (n == 0) {
        std::fprintf(stderr, "modes_ops: sqlite3 exited early (see its error above)\n");
        return 1;
      }
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  UniqueFd to_, from_;
  std::string buf_;
};

int run_sqlite(const Args& args) {
  // A shell that died is reported by read_line (EOF), not by a SIGPIPE that kills us.
  ::signal(SIGPIPE, SIG_IGN);
  SqliteShell shell;
  if (int rc = shell.start(args.dir + "/modes.db"); rc) return rc;
  if (int rc = shell.run("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB);", "ready");
      rc) {
    return rc;
  }
  std::string tx = "BEGIN;";
  for (uint64_t r = 0; r < args.rows; ++r) tx += " INSERT INTO t(v) VALUES (randomblob(100));";
  tx += " COMMIT;";

  Recorder rec(args.ops);
  const auto start = Clock::now();
  for (uint64_t i = 0; i < args.ops && !out_of_time(start, args.max_seconds); ++i) {
    const auto t0 = Clock::now();
    if (int rc = shell.run(tx, "ok" + std::to_string(i)); rc) return rc;
    rec.add(Clock::now() - t0);
  }
  rec.print(Clock::now() - start);
  return 0;
}

int main_impl(int argc, char** argv) {
  if (argc < 2) return usage();
  Args args;
  args.command = argv[1];
  if (args.command != "rename" && args.command != "sqlite") return usage();
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::string_view { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--ops" || a == "--tx") {
      if (!parse_count(value(), args.ops)) return usage();
    } else if (a == "--rows") {
      if (!parse_count(value(), args.rows)) return usage();
    } else if (a == "--names") {
      if (!parse_count(value(), args.names)) return usage();
    } else if (a == "--max-seconds") {
      if (!parse_seconds(value(), args.max_seconds)) return usage();
    } else if (a == "--dsync") {
      args.dsync = true;
    } else if (!a.empty() && a[0] != '-' && args.dir.empty()) {
      args.dir = a;
    } else {
      return usage();
    }
  }
  if (args.dir.empty()) return usage();
  return args.command == "rename" ? run_rename(args) : run_sqlite(args);
}

}  // namespace
}  // namespace fsysfs::bench

int main(int argc, char** argv) { return fsysfs::bench::main_impl(argc, argv); }
