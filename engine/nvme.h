#pragma once

// NVMe passthrough: find the NVMe namespace behind a block device and send it FLUSH
// commands after syncs. Every failure means "no passthrough" (the plain fsync keeps the
// durability contract). The ioctls are synchronous: never call flush() on the ring owner.

#include <linux/nvme_ioctl.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace fsysfs::engine {

// The device seam: how device nodes are opened and commands sent. The real one uses
// open(2)/ioctl(2); tests substitute a fake that records commands.
class NvmeDeviceOps {
 public:
  virtual ~NvmeDeviceOps() = default;
  virtual int open(const std::string& path) = 0;  // fd, or -errno
  virtual void close(int fd) = 0;
  virtual int io_cmd(int fd, nvme_passthru_cmd& cmd) = 0;     // NVME_IOCTL_IO_CMD; -errno
  virtual int admin_cmd(int fd, nvme_passthru_cmd& cmd) = 0;  // NVME_IOCTL_ADMIN_CMD; -errno
};
std::shared_ptr<NvmeDeviceOps> real_nvme_device_ops();

// What the probe found for one backing device (shown in stats).
struct NvmeStatus {
  dev_t dev = 0;
  std::string block_device;  // e.g. "nvme0n1p2"; empty when not NVMe
  std::string ns_device;     // the node FLUSH goes to, e.g. "/dev/nvme0n1"
  uint32_t nsid = 0;
  bool passthrough = false;
  std::string why;                 // why not, when !passthrough
  uint32_t lba_size = 0;           // bytes
  uint32_t atomic_write_unit = 0;  // power-fail atomic write unit in bytes; 0 = unknown
};

class NvmeDevice {
 public:
  NvmeDevice(std::shared_ptr<NvmeDeviceOps> ops, int fd, NvmeStatus status);
  ~NvmeDevice();
  NvmeDevice(const NvmeDevice&) = delete;
  NvmeDevice& operator=(const NvmeDevice&) = delete;

  // Sends one NVMe FLUSH (opcode 0x00) to the namespace. 0 or -errno.
  int flush() noexcept;
  const NvmeStatus& status() const noexcept { return status_; }

 private:
  std::shared_ptr<NvmeDeviceOps> ops_;
  int fd_;
  NvmeStatus status_;
};

// Resolves devices to NVMe namespaces once each and caches the answer. Thread-safe.
class NvmeRegistry {
 public:
  struct Config {
    std::string sysfs_root = "/sys";
    std::string dev_root = "/dev";
    // False also when FSYS_DISABLE_NVME_PASSTHROUGH is set in the environment.
    bool enabled = true;
    std::shared_ptr<NvmeDeviceOps> ops;  // nullptr: the real ioctls
  };
  explicit NvmeRegistry(Config config);
  ~NvmeRegistry();

  // The device to flush after syncs of files on `dev`, or nullptr for no passthrough.
  std::shared_ptr<NvmeDevice> lookup(dev_t dev);
  std::vector<NvmeStatus> status() const;

 private:
  Config config_;
  std::string disabled_why_;  // why lookups answer "no passthrough" when !config_.enabled
  mutable std::mutex mu_;     // guards cache_
  std::map<dev_t, std::pair<NvmeStatus, std::shared_ptr<NvmeDevice>>> cache_;
};

}  // namespace fsysfs::engine
