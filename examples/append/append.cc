// Appends N records to a file, each durable before the next is written: one linked
// write+fdatasync per record on the engine's ring. Then prints what the engine did.
//
//   append FILE [N]

#include <fcntl.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include <fsys/engine/engine.h>

namespace fe = fsysfs::engine;

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: append FILE [N]\n");
    return 2;
  }
  const long count = argc == 3 ? std::strtol(argv[2], nullptr, 10) : 10;
  if (count <= 0) {
    std::fprintf(stderr, "append: N must be a positive number\n");
    return 2;
  }

  fe::Engine engine;  // io_uring, or the syscall backend where no ring can be had
  fsysfs::UniqueFd fd(::open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    std::fprintf(stderr, "append: %s: %s\n", argv[1], std::strerror(errno));
    return 1;
  }
  std::unique_ptr<fe::File> file = engine.adopt(std::move(fd));

  uint64_t offset = 0;
  for (long i = 0; i < count; i++) {
    const std::string record = "record " + std::to_string(i) + "\n";
    // Returns once the bytes are written and fdatasync'ed, or the first error.
    const int64_t res =
        engine.write(*file, std::as_bytes(std::span(record)), offset, fe::SyncKind::kData);
    if (res < 0) {
      std::fprintf(stderr, "append: record %ld: %s\n", i, std::strerror(static_cast<int>(-res)));
      return 1;
    }
    offset += static_cast<uint64_t>(res);
  }

  const fe::StatsSnapshot s = engine.stats();
  const fe::OpStats& chain = s.op(fe::OpKind::kWriteFdatasync);
  std::printf("backend: %s (%s)\n", s.backend.c_str(), s.backend_notes.c_str());
  std::printf(
      "%s: %llu ops, %llu bytes, %llu errors, p50 %llu ns, p99 %llu ns\n",
      fe::op_kind_name(fe::OpKind::kWriteFdatasync), static_cast<unsigned long long>(chain.count),
      static_cast<unsigned long long>(chain.bytes), static_cast<unsigned long long>(chain.errors),
      static_cast<unsigned long long>(chain.p50_ns), static_cast<unsigned long long>(chain.p99_ns));
  std::printf("fixed files: %u/%u, NVMe FLUSH after syncs: %s\n", s.fixed_files_used,
              s.fixed_files_total, file->nvme_flush() ? "yes" : "no");
  return 0;
}
