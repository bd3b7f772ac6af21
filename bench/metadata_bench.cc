// Metadata benchmark for bench/peers.sh: in one directory, creates N small files, then stats
// each of them, then unlinks each of them, and prints the rate of every phase as one JSON
// line. fio has no create/stat/unlink workload that times the three phases separately.
//
// Usage: metadata_bench [--files N] [--size BYTES] DIR
//   DIR must exist and hold no files named m<number>. Default: 10000 files of 1024 bytes.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sys.h"
#include "engine/unique_fd.h"

namespace fsysfs::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  uint64_t files = 10000;
  uint64_t size = 1024;
  std::string dir;
};

bool parse_count(std::string_view text, uint64_t& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

int usage() {
  std::fprintf(stderr, "usage: metadata_bench [--files N] [--size BYTES] DIR\n");
  return 2;
}

// Every phase stops at the first failure: a partial rate would look like a slow file system.
int fail(const char* what, const std::string& name, int err) {
  std::fprintf(stderr, "metadata_bench: %s %s: %s\n", what, name.c_str(), std::strerror(err));
  return 1;
}

double rate(uint64_t ops, Clock::time_point start) {
  std::chrono::duration<double> elapsed = Clock::now() - start;
  return elapsed.count() > 0 ? static_cast<double>(ops) / elapsed.count() : 0.0;
}

int run(const Args& args) {
  UniqueFd dir(::open(args.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return fail("open", args.dir, errno);

  std::vector<std::string> names;
  names.reserve(args.files);
  for (uint64_t i = 0; i < args.files; ++i) names.push_back("m" + std::to_string(i));
  const std::vector<char> data(args.size, 'x');

  auto start = Clock::now();
  for (const std::string& name : names) {
    UniqueFd fd(::openat(dir.get(), name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644));
    if (!fd) return fail("create", name, errno);
    if (!data.empty()) {
      int64_t n = sys::pwrite_all(fd.get(), data.data(), data.size(), 0);
      if (n < 0) return fail("write", name, static_cast<int>(-n));
    }
    // close() is where a FUSE file system gets its flush; a failed one is a failed create.
    if (::close(fd.release()) != 0) return fail("close", name, errno);
  }
  double create_rate = rate(names.size(), start);

  start = Clock::now();
  for (const std::string& name : names) {
    struct stat st;
    if (::fstatat(dir.get(), name.c_str(), &st, 0) != 0) return fail("stat", name, errno);
    if (static_cast<uint64_t>(st.st_size) != args.size) return fail("stat size of", name, EIO);
  }
  double stat_rate = rate(names.size(), start);

  start = Clock::now();
  for (const std::string& name : names) {
    if (::unlinkat(dir.get(), name.c_str(), 0) != 0) return fail("unlink", name, errno);
  }
  double unlink_rate = rate(names.size(), start);

  std::printf(
      "{\"files\": %llu, \"size\": %llu, \"create_ops_s\": %.1f, \"stat_ops_s\": %.1f, "
      "\"unlink_ops_s\": %.1f}\n",
      static_cast<unsigned long long>(args.files), static_cast<unsigned long long>(args.size),
      create_rate, stat_rate, unlink_rate);
  return 0;
}

}  // namespace
}  // namespace fsysfs::bench

int main(int argc, char** argv) {
  fsysfs::bench::Args args;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if ((arg == "--files" || arg == "--size") && i + 1 < argc) {
      uint64_t& out = arg == "--files" ? args.files : args.size;
      if (!fsysfs::bench::parse_count(argv[++i], out)) return fsysfs::bench::usage();
    } else if (!arg.starts_with("-") && args.dir.empty()) {
      args.dir = arg;
    } else {
      return fsysfs::bench::usage();
    }
  }
  if (args.dir.empty() || args.files == 0) return fsysfs::bench::usage();
  return fsysfs::bench::run(args);
}
