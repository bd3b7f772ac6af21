#include "engine/nvme.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <utility>

#include "engine/log.h"
#include "engine/nvme_identify.h"
#include "engine/nvme_sysfs.h"

namespace fsysfs::engine {
namespace {

constexpr const char* kDisableEnv = "FSYS_DISABLE_NVME_PASSTHROUGH";

int passthru_ioctl(int fd, unsigned long request, nvme_passthru_cmd& cmd) {
  int r;
  do {
    r = ::ioctl(fd, request, &cmd);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return -errno;
  // A positive result is the NVMe completion status: the device failed the command.
  if (r > 0) return -EIO;
  return 0;
}

class RealNvmeDeviceOps final : public NvmeDeviceOps {
 public:
  int open(const std::string& path) override {
    // Read-only is enough for passthrough; an O_EXCL open would fail on a mounted device.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
  }
  void close(int fd) override { ::close(fd); }
  int io_cmd(int fd, nvme_passthru_cmd& cmd) override {
    return passthru_ioctl(fd, NVME_IOCTL_IO_CMD, cmd);
  }
  int admin_cmd(int fd, nvme_passthru_cmd& cmd) override {
    return passthru_ioctl(fd, NVME_IOCTL_ADMIN_CMD, cmd);
  }
};

std::string errno_text(int neg_errno) {
  const int err = -neg_errno;
  std::string text = std::strerror(err);
  if (err == EACCES || err == EPERM) text += ", no privilege for NVMe passthrough";
  return text;
}

std::string dev_text(dev_t dev) {
  return std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
}

nvme_passthru_cmd flush_command(uint32_t nsid) {
  nvme_passthru_cmd cmd{};
  cmd.opcode = kNvmeIoFlush;
  cmd.nsid = nsid;
  return cmd;
}

// An fd opened through the ops seam, closed through it too.
class OpsFd {
 public:
  OpsFd(NvmeDeviceOps& ops, int fd) : ops_(ops), fd_(fd) {}
  ~OpsFd() {
    if (fd_ >= 0) ops_.close(fd_);
  }
  OpsFd(const OpsFd&) = delete;
  OpsFd& operator=(const OpsFd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  NvmeDeviceOps& ops_;
  int fd_;
};

// A page-aligned buffer for Identify data.
struct IdentifyBuffer {
  alignas(4096) uint8_t bytes[kNvmeIdentifyBytes] = {};
  NvmeIdentifyData data() const { return NvmeIdentifyData(bytes, kNvmeIdentifyBytes); }
};

int identify(NvmeDeviceOps& ops, int fd, uint32_t cns, uint32_t nsid, IdentifyBuffer& buf) {
  nvme_passthru_cmd cmd{};
  cmd.opcode = kNvmeAdminIdentify;
  cmd.nsid = nsid;
  cmd.addr = reinterpret_cast<uintptr_t>(buf.bytes);
  cmd.data_len = kNvmeIdentifyBytes;
  cmd.cdw10 = cns;
  return ops.admin_cmd(fd, cmd);
}

// Reads the atomic write unit and block size into `status`. Admin commands go to the
// controller's char device when sysfs names it, else (or when that fails) to the
// namespace device, whose ioctl the kernel also accepts for admin passthrough. Returns
// a note for the log when the unit stays unknown.
std::string read_identify(const NvmeRegistry::Config& config, const NvmeSysfsNamespace& ns,
                          int ns_fd, NvmeStatus& status) {
  NvmeDeviceOps& ops = *config.ops;
  std::optional<OpsFd> ctrl_fd;
  std::string note;
  if (!ns.controller.empty()) {
    const std::string path = config.dev_root + "/" + ns.controller;
    int fd = ops.open(path);
    if (fd >= 0) {
      ctrl_fd.emplace(ops, fd);
    } else {
      note = "cannot open " + path + " (" + errno_text(fd) + "); ";
    }
  }
  auto id_ns_buf = std::make_unique<IdentifyBuffer>();
  int admin_fd = -1;
  int rc = -ENODEV;
  for (int fd : {ctrl_fd ? ctrl_fd->get() : -1, ns_fd}) {
    if (fd < 0) continue;
    rc = identify(ops, fd, kNvmeCnsNamespace, ns.nsid, *id_ns_buf);
    if (rc == 0) {
      admin_fd = fd;
      break;
    }
  }
  if (rc != 0) {
    status.lba_size = ns.sysfs_lba_size;
    return note + "Identify Namespace failed (" + errno_text(rc) + ")";
  }
  const NvmeIdentifyNamespace id_ns = parse_identify_namespace(id_ns_buf->data());

  std::optional<NvmeIdentifyController> id_ctrl;
  if (nvme_needs_controller_awupf(id_ns)) {
    auto buf = std::make_unique<IdentifyBuffer>();
    rc = identify(ops, admin_fd, kNvmeCnsController, 0, *buf);
    if (rc == 0) {
      id_ctrl = parse_identify_controller(buf->data());
    } else {
      note += "Identify Controller failed (" + errno_text(rc) + ")";
    }
  }

  status.lba_size = id_ns.lba_size != 0 ? id_ns.lba_size : ns.sysfs_lba_size;
  if (id_ns.lba_size != 0 && ns.sysfs_lba_size != 0 && id_ns.lba_size != ns.sysfs_lba_size) {
    // The block layer caps what it can use; the device's own format decides atomicity.
    note += "sysfs logical_block_size " + std::to_string(ns.sysfs_lba_size) +
            " differs from the namespace format's " + std::to_string(id_ns.lba_size) + "; ";
  }
  status.atomic_write_unit = nvme_power_fail_atomic_write_bytes(id_ns, id_ctrl, status.lba_size);
  return note;
}

struct ProbeResult {
  NvmeStatus status;
  std::shared_ptr<NvmeDevice> device;
  std::string note;
};

ProbeResult probe(const NvmeRegistry::Config& config, const std::string& disabled_why, dev_t dev) {
  ProbeResult r;
  NvmeStatus& s = r.status;
  s.dev = dev;
  if (!config.enabled) {
    s.why = disabled_why;
    return r;
  }
  const NvmeSysfsNamespace ns = resolve_nvme_namespace(config.sysfs_root, dev);
  if (!ns.ok()) {
    s.why = ns.why;
    return r;
  }
  s.block_device = ns.block_device;
  s.nsid = ns.nsid;

  // I/O commands go to the namespace's own node; never to the controller's char device,
  // where the kernel deprecates them and refuses them with several namespaces. A first
  // FLUSH proves the path works before any sync depends on it.
  NvmeDeviceOps& ops = *config.ops;
  std::optional<OpsFd> ns_fd;
  for (const std::string& name : {ns.ns_name, ns.generic_name}) {
    const std::string path = config.dev_root + "/" + name;
    int fd = ops.open(path);
    if (fd < 0) {
      s.why += (s.why.empty() ? "" : "; ") + ("cannot open " + path + " (" + errno_text(fd) + ")");
      continue;
    }
    OpsFd candidate(ops, fd);
    nvme_passthru_cmd cmd = flush_command(ns.nsid);
    int rc = ops.io_cmd(fd, cmd);
    if (rc != 0) {
      s.why +=
          (s.why.empty() ? "" : "; ") + ("FLUSH via " + path + " failed (" + errno_text(rc) + ")");
      continue;
    }
    ns_fd.emplace(ops, candidate.release());
    s.ns_device = path;
    s.why.clear();
    break;
  }
  if (!ns_fd) return r;

  r.note = read_identify(config, ns, ns_fd->get(), s);
  s.passthrough = true;
  r.device = std::make_shared<NvmeDevice>(config.ops, ns_fd->release(), s);
  return r;
}

}  // namespace

std::shared_ptr<NvmeDeviceOps> real_nvme_device_ops() {
  static const auto ops = std::make_shared<RealNvmeDeviceOps>();
  return ops;
}

NvmeDevice::NvmeDevice(std::shared_ptr<NvmeDeviceOps> ops, int fd, NvmeStatus status)
    : ops_(std::move(ops)), fd_(fd), status_(std::move(status)) {}

NvmeDevice::~NvmeDevice() {
  if (fd_ >= 0) ops_->close(fd_);
}

int NvmeDevice::flush() noexcept {
  nvme_passthru_cmd cmd = flush_command(status_.nsid);
  try {
    int rc = ops_->io_cmd(fd_, cmd);
    return rc > 0 ? -EIO : rc;
  } catch (...) {  // a seam implementation must not take the flusher thread down
    return -EIO;
  }
}

NvmeRegistry::NvmeRegistry(Config config) : config_(std::move(config)) {
  if (!config_.ops) config_.ops = real_nvme_device_ops();
  if (std::getenv(kDisableEnv) != nullptr) {
    config_.enabled = false;
    disabled_why_ = std::string("disabled by ") + kDisableEnv;
  } else if (!config_.enabled) {
    disabled_why_ = "disabled by configuration";
  }
}

NvmeRegistry::~NvmeRegistry() = default;

std::shared_ptr<NvmeDevice> NvmeRegistry::lookup(dev_t dev) {
  try {
    // The probe runs under the lock so that each device is probed exactly once; it is a
    // few ioctls, once per backing device for the life of the process.
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(dev); it != cache_.end()) return it->second.second;
    ProbeResult r = probe(config_, disabled_why_, dev);
    auto log = component_logger("engine");
    const NvmeStatus& s = r.status;
    if (s.passthrough) {
      log->info(
          "NVMe {}: {} nsid {} via {}: FLUSH passthrough on; block {} B, power-fail "
          "atomic write unit {}{}{}",
          dev_text(dev), s.block_device, s.nsid, s.ns_device, s.lba_size,
          s.atomic_write_unit ? std::to_string(s.atomic_write_unit) + " B" : "unknown",
          r.note.empty() ? "" : "; ", r.note);
    } else {
      log->info("NVMe {}: no passthrough: {}", dev_text(dev), s.why);
    }
    cache_.emplace(dev, std::make_pair(std::move(r.status), r.device));
    return r.device;
  } catch (...) {  // allocation failure: no passthrough, plain syncs keep the contract
    return nullptr;
  }
}

std::vector<NvmeStatus> NvmeRegistry::status() const {
  std::lock_guard lock(mu_);
  std::vector<NvmeStatus> out;
  out.reserve(cache_.size());
  for (const auto& [dev, entry] : cache_) out.push_back(entry.first);
  return out;
}

}  // namespace fsysfs::engine
