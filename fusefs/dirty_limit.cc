#include "fusefs/dirty_limit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "engine/sys.h"
#include "engine/unique_fd.h"

namespace fsysfs::fusefs {
namespace {

int write_attr(const std::string& path, std::string_view value) noexcept {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return -errno;
  const ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n < 0) return -errno;
  return static_cast<size_t>(n) == value.size() ? 0 : -EIO;
}

std::optional<uint64_t> read_number(const std::string& path) noexcept {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char buf[32];
  const int64_t n = sys::pread(fd.get(), buf, sizeof buf, 0);
  if (n <= 0) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(buf, buf + n, value);
  if (ec != std::errc() || end == buf) return std::nullopt;
  return value;
}

// Returns 0 (also when there is nothing to change), or -errno of the first write sysfs
// refused.
int apply_dirty_limit(const std::string& dir, const DirtyLimit& limit, bool writeback) {
  switch (limit.kind) {
    case DirtyLimit::Kind::kKernel:
      return 0;
    case DirtyLimit::Kind::kAuto:
      // Without the writeback cache only mmap writes leave dirty pages: the kernel's cap is
      // no bottleneck there.
      if (!writeback) return 0;
      if (int rc = write_attr(dir + "/max_ratio", "100"); rc < 0) return rc;
      // Without the strict limit the mount's writers wait only when the whole system is over
      // its dirty limit, as a local disk's do. The knob appeared in Linux 6.2.
      if (int rc = write_attr(dir + "/strict_limit", "0"); rc < 0 && rc != -ENOENT) return rc;
      return 0;
    case DirtyLimit::Kind::kBytes:
      return write_attr(dir + "/max_bytes", std::to_string(limit.bytes));
  }
  return -EINVAL;
}

}  // namespace

std::string bdi_dir(std::string_view device) { return "/sys/class/bdi/" + std::string(device); }

void limit_dirty_pages(std::string_view device, const DirtyLimit& limit, bool writeback,
                       spdlog::logger& log) noexcept {
  if (device.empty()) {
    if (limit.kind != DirtyLimit::Kind::kKernel) {
      log.warn("max_dirty: the mount's device is unknown; the kernel's dirty limit stays");
    }
    return;
  }
  try {
    const std::string dir = bdi_dir(device);
    if (int rc = apply_dirty_limit(dir, limit, writeback); rc < 0) {
      // Writers are throttled earlier, nothing worse.
      const auto level = rc == -EACCES || rc == -EPERM ? spdlog::level::info : spdlog::level::warn;
      log.log(level, "max_dirty: cannot set the dirty page limit in {} ({}): FUSE's own stays", dir,
              std::strerror(-rc));
      return;
    }
    if (auto now = read_bdi_limits(dir)) {
      log.info("dirty page limit: {} bytes ({}% of the system's, strict {})", now->max_bytes,
               now->max_ratio, now->strict_limit ? "on" : "off");
    }
  } catch (const std::exception& e) {
    log.warn("max_dirty: {}", e.what());
  }
}

std::optional<BdiLimits> read_bdi_limits(const std::string& dir) noexcept {
  try {
    auto ratio = read_number(dir + "/max_ratio");
    if (!ratio) return std::nullopt;
    BdiLimits limits;
    limits.max_ratio = static_cast<unsigned>(*ratio);
    // max_bytes and strict_limit appeared in Linux 6.2.
    limits.max_bytes = read_number(dir + "/max_bytes").value_or(0);
    limits.strict_limit = read_number(dir + "/strict_limit").value_or(1) != 0;
    return limits;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace fsysfs::fusefs
