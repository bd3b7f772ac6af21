// Engine benchmark: 4 KiB writes through the fsys engine against the same writes done with
// plain pwrite (+ fdatasync) on the same files, in one run, with the variants interleaved
// over several rounds so that a noisy machine drifts under all of them alike. Prints a
// Markdown table of per-cell medians and of the median per-round ratio engine/direct.
//
// Usage: engine_bench [--rounds N] [--seconds S] [--quick] [--sqpoll]
//                     [--ring-sync-threads N] [--only S] [--out FILE] [DIR]

#include <fcntl.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "engine/options.h"
#include "engine/stats.h"
#include "engine/sys.h"
#include "engine/unique_fd.h"

namespace fsysfs::bench {
namespace {

namespace fs = std::filesystem;
using engine::BackendKind;
using engine::SyncKind;

constexpr size_t kBlock = 4096;
// Synced writes overwrite a small, already written region: the cell measures the data
// path of fdatasync, not block allocation or size updates in the journal.
constexpr uint64_t kSyncRegion = 1 << 20;
// Unsynced writes wrap around a larger region so they stay in the page cache without
// hammering a handful of pages.
constexpr uint64_t kNoSyncRegion = 64 << 20;

enum class Variant { kUring, kDirect, kSyncBackend };

const char* variant_name(Variant v) {
  switch (v) {
    case Variant::kUring:
      return "io_uring";
    case Variant::kDirect:
      return "direct";
    case Variant::kSyncBackend:
      return "sync-backend";
  }
  return "?";
}

struct Scenario {
  std::string label;
  unsigned threads;
  SyncKind sync;
  // Engine cells: the sync is a second op (Engine::sync after a plain write, as a FUSE
  // fsync after a write), not linked to the write.
  bool separate_sync;
  uint64_t region;
  std::vector<Variant> variants;
  std::vector<std::string> paths;  // one file per thread
};

struct CellResult {
  double ops_per_sec = 0;
  // Engine cells only. sqes counts every SQE, including the owner's eventfd READ that is
  // re-armed after each wake-up; ops counts the caller's writes.
  uint64_t sqes = 0, submits = 0, ops = 0;
};

struct Config {
  unsigned rounds = 3;
  double seconds = 2.0;
  bool sqpoll = false;  // engine::Options::sqpoll of the io_uring cells
  unsigned ring_sync_threads = engine::Options{}.ring_sync_threads;
  std::string out;
  std::string dir;
  std::string only;  // run only the workloads whose label contains this
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "engine_bench: %s\n", what.c_str());
  std::exit(1);
}

UniqueFd open_rw(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) die("open " + path + ": " + std::strerror(errno));
  return fd;
}

// Creates the file and writes its whole region once, durably, so every timed write is an
// overwrite of allocated blocks.
void prepare_file(const std::string& path, uint64_t region) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) die("create " + path + ": " + std::strerror(errno));
  std::vector<char> chunk(1 << 20, 'x');
  for (uint64_t off = 0; off < region; off += chunk.size()) {
    size_t len = std::min<uint64_t>(chunk.size(), region - off);
    int64_t r = sys::pwrite_all(fd.get(), chunk.data(), len, off);
    if (r < 0) die("prefill " + path + ": " + std::strerror(static_cast<int>(-r)));
  }
  if (int r = sys::fsync(fd.get()); r < 0) die("fsync " + path + ": " + std::strerror(-r));
}

// Runs `body(thread_index, op_index)` on `threads` threads until `seconds` have passed;
// returns total ops per second of wall time. `body` returns false on an error.
template <typename Body>
double run_timed(unsigned threads, double seconds, Body body) {
  std::atomic<bool> stop{false};
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  std::vector<uint64_t> counts(threads, 0);
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!body(t, n)) break;
        ++n;
      }
      counts[t] = n;
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  auto start = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  for (auto& w : workers) w.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  return static_cast<double>(total) / elapsed;
}

uint64_t offset_of(uint64_t n, uint64_t region) { return (n * kBlock) % region; }

CellResult run_direct(const Scenario& s, double seconds) {
  std::vector<UniqueFd> fds;
  for (const auto& p : s.paths) fds.push_back(open_rw(p));
  std::vector<char> data(kBlock, 'd');
  std::atomic<int> error{0};
  CellResult r;
  r.ops_per_sec = run_timed(s.threads, seconds, [&](unsigned t, uint64_t n) {
    int fd = fds[t].get();
    int64_t w = sys::pwrite_all(fd, data.data(), kBlock, offset_of(n, s.region));
    if (w < 0) {
      error.store(static_cast<int>(w));
      return false;
    }
    if (s.sync == SyncKind::kData) {
      if (int e = sys::fdatasync(fd); e < 0) {
        error.store(e);
        return false;
      }
    }
    return true;
  });
  if (error.load() != 0) die(std::string("direct write: ") + std::strerror(-error.load()));
  // Untimed: leave no dirty pages for the next cell to pay for.
  for (auto& fd : fds) sys::fdatasync(fd.get());
  return r;
}

CellResult run_engine(const Scenario& s, BackendKind kind, const Config& cfg) {
  double seconds = cfg.seconds;
  engine::Options o;
  o.backend = kind;
  o.nvme_flush = false;
  o.sqpoll = cfg.sqpoll;
  o.ring_sync_threads = cfg.ring_sync_threads;
  engine::Engine eng(o);
  std::vector<std::unique_ptr<engine::File>> files;
  for (const auto& p : s.paths) files.push_back(eng.adopt(open_rw(p)));
  std::vector<std::byte> data(kBlock, std::byte{'e'});
  std::atomic<int64_t> error{0};
  eng.reset_stats();
  CellResult r;
  r.ops_per_sec = run_timed(s.threads, seconds, [&](unsigned t, uint64_t n) {
    int64_t w = eng.write(*files[t], data, offset_of(n, s.region),
                          s.separate_sync ? SyncKind::kNone : s.sync);
    if (w != static_cast<int64_t>(kBlock)) {
      error.store(w < 0 ? w : -EIO);
      return false;
    }
    if (s.separate_sync) {
      if (int e = eng.sync(*files[t], s.sync); e < 0) {
        error.store(e);
        return false;
      }
    }
    return true;
  });
  auto st = eng.stats();
  r.sqes = st.sqes;
  r.submits = st.submits;
  r.ops = st.op(engine::OpKind::kWrite).count + st.op(engine::OpKind::kWriteFdatasync).count;
  if (error.load() != 0) {
    die(std::string("engine write: ") + std::strerror(static_cast<int>(-error.load())));
  }
  for (auto& f : files) eng.sync(*f, SyncKind::kData);
  files.clear();  // before the engine goes away
  return r;
}

CellResult run_cell(const Scenario& s, Variant v, const Config& cfg) {
  switch (v) {
    case Variant::kUring:
      return run_engine(s, BackendKind::kUring, cfg);
    case Variant::kSyncBackend:
      return run_engine(s, BackendKind::kSync, cfg);
    case Variant::kDirect:
      return run_direct(s, cfg.seconds);
  }
  return {};
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

std::string fmt(const char* f, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

std::string usage() {
  return "usage: engine_bench [--rounds N] [--seconds S] [--quick] [--sqpoll]\n"
         "                    [--ring-sync-threads N] [--only S] [--out FILE] [DIR]\n"
         "  DIR        directory for the test files (default: a temp dir under /var/tmp,\n"
         "             removed afterwards)\n"
         "  --rounds   interleaved rounds (default 3); the table shows medians\n"
         "  --seconds  seconds per cell per round (default 2)\n"
         "  --quick    0.5 s per cell\n"
         "  --sqpoll   io_uring with a kernel SQ polling thread\n"
         "  --ring-sync-threads N\n"
         "             io_uring: sync-only ops on N engine threads (default 4); 0 sends\n"
         "             them to the ring as IORING_OP_FSYNC\n"
         "  --only S   run only the workloads whose label contains S\n"
         "  --out      also write the table to FILE\n";
}

Config parse_args(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--rounds") {
      int n = std::stoi(value());
      if (n < 1) throw std::invalid_argument("--rounds must be >= 1");
      c.rounds = static_cast<unsigned>(n);
    } else if (a == "--seconds") {
      c.seconds = std::stod(value());
      if (!(c.seconds > 0)) throw std::invalid_argument("--seconds must be > 0");
    } else if (a == "--quick") {
      c.seconds = 0.5;
    } else if (a == "--sqpoll") {
      c.sqpoll = true;
    } else if (a == "--ring-sync-threads") {
      int n = std::stoi(value());
      if (n < 0) throw std::invalid_argument("--ring-sync-threads must be >= 0");
      c.ring_sync_threads = static_cast<unsigned>(n);
    } else if (a == "--out") {
      c.out = value();
    } else if (a == "--only") {
      c.only = value();
    } else if (a == "-h" || a == "--help") {
      std::fputs(usage().c_str(), stdout);
      std::exit(0);
    } else if (!a.empty() && a[0] == '-') {
      throw std::invalid_argument("unknown option " + a);
    } else if (c.dir.empty()) {
      c.dir = a;
    } else {
      throw std::invalid_argument("more than one directory given");
    }
  }
  return c;
}

int run(const Config& cfg) {
  bool own_dir = cfg.dir.empty();
  std::string dir = cfg.dir;
  if (own_dir) {
    std::string tmpl = "/var/tmp/engine_bench.XXXXXX";
    if (!::mkdtemp(tmpl.data())) die(std::string("mkdtemp: ") + std::strerror(errno));
    dir = tmpl;
  } else if (!fs::is_directory(dir)) {
    die(dir + " is not a directory");
  }

  // Fail early and clearly when the ring cannot be set up: every row compares against it.
  std::string notes;
  try {
    engine::Options o;
    o.backend = BackendKind::kUring;
    o.nvme_flush = false;
    o.sqpoll = cfg.sqpoll;
    o.ring_sync_threads = cfg.ring_sync_threads;
    engine::Engine probe(o);
    notes = probe.stats().backend_notes;
  } catch (const std::exception& e) {
    if (own_dir) fs::remove_all(dir);
    die(std::string("io_uring backend unavailable: ") + e.what());
  }

  std::vector<Scenario> scenarios = {
      {"4 KiB write+fdatasync",
       1,
       SyncKind::kData,
       false,
       kSyncRegion,
       {Variant::kUring, Variant::kDirect, Variant::kSyncBackend},
       {}},
      {"4 KiB write+fdatasync",
       4,
       SyncKind::kData,
       false,
       kSyncRegion,
       {Variant::kUring, Variant::kDirect},
       {}},
      {"4 KiB write+fdatasync",
       16,
       SyncKind::kData,
       false,
       kSyncRegion,
       {Variant::kUring, Variant::kDirect},
       {}},
      {"4 KiB write, then fdatasync op",
       1,
       SyncKind::kData,
       true,
       kSyncRegion,
       {Variant::kUring, Variant::kDirect, Variant::kSyncBackend},
       {}},
      {"4 KiB write, then fdatasync op",
       4,
       SyncKind::kData,
       true,
       kSyncRegion,
       {Variant::kUring, Variant::kDirect},
       {}},
      {"4 KiB write, no sync",
       4,
       SyncKind::kNone,
       false,
       kNoSyncRegion,
       {Variant::kUring, Variant::kDirect},
       {}},
  };
  if (!cfg.only.empty()) {
    std::erase_if(scenarios,
                  [&](const Scenario& s) { return s.label.find(cfg.only) == std::string::npos; });
    if (scenarios.empty()) {
      if (own_dir) fs::remove_all(dir);
      die("no workload matches --only " + cfg.only);
    }
  }
  std::vector<std::string> created;
  for (size_t i = 0; i < scenarios.size(); ++i) {
    auto& s = scenarios[i];
    for (unsigned t = 0; t < s.threads; ++t) {
      std::string p = dir + "/engine_bench." + std::to_string(i) + "." + std::to_string(t);
      prepare_file(p, s.region);
      s.paths.push_back(p);
      created.push_back(p);
    }
  }

  // results[scenario][variant index][round]
  std::vector<std::vector<std::vector<CellResult>>> results(scenarios.size());
  for (size_t i = 0; i < scenarios.size(); ++i) {
    results[i].assign(scenarios[i].variants.size(), std::vector<CellResult>(cfg.rounds));
  }
  for (unsigned r = 0; r < cfg.rounds; ++r) {
    for (size_t i = 0; i < scenarios.size(); ++i) {
      const auto& s = scenarios[i];
      size_t nv = s.variants.size();
      // Rotate which variant goes first each round, so none always runs on a warm or a
      // cold cache, or right after another cell's writeback.
      for (size_t k = 0; k < nv; ++k) {
        size_t v = (k + r) % nv;
        std::fprintf(stderr, "round %u/%u: %s, %u thread(s), %s ... ", r + 1, cfg.rounds,
                     s.label.c_str(), s.threads, variant_name(s.variants[v]));
        results[i][v][r] = run_cell(s, s.variants[v], cfg);
        std::fprintf(stderr, "%.0f ops/s\n", results[i][v][r].ops_per_sec);
      }
    }
  }

  auto index_of = [](const Scenario& s, Variant v) -> std::optional<size_t> {
    for (size_t k = 0; k < s.variants.size(); ++k)
      if (s.variants[k] == v) return k;
    return std::nullopt;
  };
  auto ops = [&](size_t i, size_t v) {
    std::vector<double> x;
    for (const auto& c : results[i][v]) x.push_back(c.ops_per_sec);
    return x;
  };
  // Ratio of two variants within each round (they ran back to back), then the median.
  auto ratio = [&](size_t i, size_t a, size_t b) {
    std::vector<double> x;
    for (unsigned r = 0; r < cfg.rounds; ++r) {
      double d = results[i][b][r].ops_per_sec;
      x.push_back(d > 0 ? results[i][a][r].ops_per_sec / d : 0);
    }
    return median(x);
  };

  std::ostringstream t;
  t << "| Workload | Threads | io_uring ops/s | direct ops/s | io_uring / direct "
       "| sync-backend ops/s | sync-backend / direct | io_uring SQEs per enter "
       "| io_uring ops per enter |\n";
  t << "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (size_t i = 0; i < scenarios.size(); ++i) {
    const auto& s = scenarios[i];
    size_t u = *index_of(s, Variant::kUring);
    size_t d = *index_of(s, Variant::kDirect);
    auto sb = index_of(s, Variant::kSyncBackend);
    std::vector<double> sqes_per_enter, ops_per_enter;
    for (const auto& c : results[i][u]) {
      if (c.submits == 0) continue;
      sqes_per_enter.push_back(static_cast<double>(c.sqes) / c.submits);
      ops_per_enter.push_back(static_cast<double>(c.ops) / c.submits);
    }
    t << "| " << s.label << " | " << s.threads << " | " << fmt("%.0f", median(ops(i, u))) << " | "
      << fmt("%.0f", median(ops(i, d))) << " | " << fmt("%.2f", ratio(i, u, d)) << " | "
      << (sb ? fmt("%.0f", median(ops(i, *sb))) : "—") << " | "
      << (sb ? fmt("%.2f", ratio(i, *sb, d)) : "—") << " | "
      << (sqes_per_enter.empty() ? "—" : fmt("%.2f", median(sqes_per_enter))) << " | "
      << (ops_per_enter.empty() ? "—" : fmt("%.2f", median(ops_per_enter))) << " |\n";
  }

  std::ostringstream raw;
  raw << "\nPer-round ops/s (round 1, 2, ...):\n\n";
  for (size_t i = 0; i < scenarios.size(); ++i) {
    const auto& s = scenarios[i];
    for (size_t v = 0; v < s.variants.size(); ++v) {
      raw << "- " << s.label << ", " << s.threads << " thread(s), " << variant_name(s.variants[v])
          << ":";
      for (const auto& c : results[i][v]) raw << " " << fmt("%.0f", c.ops_per_sec);
      raw << "\n";
    }
  }
  char date[32];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d", std::localtime(&now));
  std::ostringstream head;
  head << "engine_bench " << date << ": " << cfg.rounds << " round(s) x " << cfg.seconds
       << " s per cell, dir " << dir << ", " << std::thread::hardware_concurrency()
       << " CPUs, io_uring: " << notes << "\n\n";

  std::string report = head.str() + t.str() + raw.str();
  std::fputs(report.c_str(), stdout);
  if (!cfg.out.empty()) {
    std::ofstream out(cfg.out);
    out << report;
    if (!out) std::fprintf(stderr, "engine_bench: cannot write %s\n", cfg.out.c_str());
  }

  for (const auto& p : created) ::unlink(p.c_str());
  if (own_dir) ::rmdir(dir.c_str());
  return 0;
}

}  // namespace
}  // namespace fsysfs::bench

int main(int argc, char** argv) {
  // stdout carries the table only; the engine's per-start info lines would be noise.
  auto log = spdlog::stderr_color_mt("engine_bench");
  log->set_level(spdlog::level::warn);
  spdlog::set_default_logger(log);
  try {
    return fsysfs::bench::run(fsysfs::bench::parse_args(argc, argv));
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "engine_bench: %s\n%s", e.what(), fsysfs::bench::usage().c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_bench: %s\n", e.what());
    return 1;
  }
}
