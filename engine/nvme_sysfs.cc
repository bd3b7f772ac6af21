#include "engine/nvme_sysfs.h"

#include <fcntl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>
#include <new>
#include <optional>

#include "engine/unique_fd.h"

namespace fsysfs::engine {
namespace {

namespace fs = std::filesystem;

// Consumes a run of decimal digits from the front of `s`.
std::optional<uint32_t> take_number(std::string_view& s) noexcept {
  uint32_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc{} || end == s.data()) return std::nullopt;
  s.remove_prefix(static_cast<size_t>(end - s.data()));
  return value;
}

bool take_prefix(std::string_view& s, std::string_view prefix) noexcept {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// "nvme3" -> 3; anything else (nvme3n1, nvme-subsys0, nvme-fabrics) -> nullopt.
std::optional<uint32_t> parse_controller_name(std::string_view s) noexcept {
  if (!take_prefix(s, "nvme")) return std::nullopt;
  auto n = take_number(s);
  if (!n || !s.empty()) return std::nullopt;
  return n;
}

// Reads a small sysfs attribute, without its trailing newline. 0 or -errno.
int read_attribute(const fs::path& path, std::string* out) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return -errno;
  char buf[256];
  ssize_t n;
  do {
    n = ::read(fd.get(), buf, sizeof(buf));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  out->assign(buf, static_cast<size_t>(n));
  while (!out->empty() && (out->back() == '\n' || out->back() == ' ')) out->pop_back();
  return 0;
}

std::optional<uint32_t> parse_u32(std::string_view s) noexcept {
  auto n = take_number(s);
  if (!n || !s.empty()) return std::nullopt;
  return n;
}

std::string dev_name(dev_t dev) {
  return std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
}

// With native multipath the namespace hangs under its subsystem, whose directory holds a
// link per controller. Any live controller of the subsystem answers Identify for the
// shared namespace; take the lowest-numbered one so the choice is stable.
std::string first_controller_in(const fs::path& subsystem_dir) {
  std::error_code ec;
  std::optional<uint32_t> best;
  for (fs::directory_iterator it(subsystem_dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto n = parse_controller_name(it->path().filename().native());
    if (n && (!best || *n < *best)) best = n;
  }
  return best ? "nvme" + std::to_string(*best) : std::string();
}

NvmeSysfsNamespace resolve(const std::string& sysfs_root, dev_t dev) {
  NvmeSysfsNamespace r;
  const fs::path link = fs::path(sysfs_root) / "dev" / "block" / dev_name(dev);
  std::error_code ec;
  const fs::path target = fs::read_symlink(link, ec);
  if (ec) {
    r.why = "block device " + dev_name(dev) + " not found in sysfs (" + link.native() + ": " +
            ec.message() + ")";
    return r;
  }

  r.block_device = target.filename().native();
  const NvmeBlockName name = parse_nvme_block_name(r.block_device);
  fs::path ns_dir;  // relative to link's directory unless target is absolute
  switch (name.kind) {
    case NvmeBlockName::Kind::kOther:
      r.why = r.block_device + " is not an NVMe namespace";
      return r;
    case NvmeBlockName::Kind::kPath:
      r.why = r.block_device + " is a hidden NVMe multipath path device";
      return r;
    case NvmeBlockName::Kind::kNamespace:
      ns_dir = target;
      break;
    case NvmeBlockName::Kind::kPartition: {
      // A partition's directory sits inside its disk's directory.
      ns_dir = target.parent_path();
      const NvmeBlockName parent = parse_nvme_block_name(ns_dir.filename().native());
      if (parent.kind != NvmeBlockName::Kind::kNamespace) {
        r.why = "partition " + r.block_device + " has no NVMe namespace parent in sysfs";
        return r;
      }
      break;
    }
  }
  r.ns_name = ns_dir.filename().native();
  const NvmeBlockName ns = parse_nvme_block_name(r.ns_name);
  r.generic_name = "ng" + std::to_string(ns.instance) + "n" + std::to_string(ns.namespace_index);

  const fs::path ns_abs = link.parent_path() / ns_dir;
  const fs::path holder = ns_dir.parent_path();
  const std::string holder_name = holder.filename().native();
  if (parse_controller_name(holder_name)) {
    r.controller = holder_name;
  } else if (holder_name.starts_with("nvme-subsys")) {
    r.controller = first_controller_in(ns_abs.parent_path());
  }

  const fs::path attrs = fs::path(sysfs_root) / "block" / r.ns_name;
  std::string text;
  int rc = read_attribute(attrs / "nsid", &text);
  if (rc == 0) {
    auto nsid = parse_u32(text);
    if (!nsid || *nsid == 0 || *nsid == std::numeric_limits<uint32_t>::max()) {
      r.why = "invalid nsid '" + text + "' in " + (attrs / "nsid").native();
      return r;
    }
    r.nsid = *nsid;
  } else if (rc != -ENOENT) {
    r.why = "cannot read " + (attrs / "nsid").native() + ": " + std::strerror(-rc);
    return r;
  }
  // A missing nsid attribute (older kernels) leaves the first namespace, nsid 1.

  if (read_attribute(attrs / "queue" / "logical_block_size", &text) == 0) {
    if (auto bs = parse_u32(text)) r.sysfs_lba_size = *bs;
  }
  return r;
}

}  // namespace

NvmeBlockName parse_nvme_block_name(std::string_view s) noexcept {
  NvmeBlockName r;
  if (!take_prefix(s, "nvme")) return r;
  auto x = take_number(s);
  if (!x) return r;
  if (take_prefix(s, "c")) {
    // nvmeXcCnY: a path of a multipath namespace.
    if (take_number(s) && take_prefix(s, "n") && take_number(s) && s.empty()) {
      r.kind = NvmeBlockName::Kind::kPath;
      r.instance = *x;
    }
    return r;
  }
  if (!take_prefix(s, "n")) return r;
  auto y = take_number(s);
  if (!y) return r;
  if (s.empty()) {
    r.kind = NvmeBlockName::Kind::kNamespace;
  } else if (take_prefix(s, "p") && take_number(s) && s.empty()) {
    r.kind = NvmeBlockName::Kind::kPartition;
  } else {
    return r;
  }
  r.instance = *x;
  r.namespace_index = *y;
  return r;
}

NvmeSysfsNamespace resolve_nvme_namespace(const std::string& sysfs_root, dev_t dev) noexcept {
  try {
    return resolve(sysfs_root, dev);
  } catch (...) {  // only allocation can fail; short enough not to allocate again
    NvmeSysfsNamespace r;
    r.why = "out of memory";
    return r;
  }
}

}  // namespace fsysfs::engine
