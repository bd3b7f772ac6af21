#pragma once

// Finds the NVMe namespace behind a block device number through sysfs:
// <sysfs>/dev/block/MAJ:MIN links to the device's directory, e.g.
//   ../../devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1            (namespace)
//   ../../devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1/nvme0n1p2  (partition)
//   ../../devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1           (native multipath)
// The namespace's attributes (nsid, queue/logical_block_size) are read from
// <sysfs>/block/nvmeXnY/.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace fsysfs::engine {

// What a block device name says about NVMe.
struct NvmeBlockName {
  enum class Kind {
    kOther,      // not an NVMe namespace: sda, vda, dm-0, loop0, ...
    kNamespace,  // nvme0n1
    kPartition,  // nvme0n1p2
    kPath,       // nvme0c1n1: a hidden multipath path, never a mounted device
  };
  Kind kind = Kind::kOther;
  uint32_t instance = 0;         // X in nvmeXnY (controller, or subsystem with multipath)
  uint32_t namespace_index = 0;  // Y in nvmeXnY (a kernel index, not the nsid)
};
NvmeBlockName parse_nvme_block_name(std::string_view name) noexcept;

struct NvmeSysfsNamespace {
  std::string block_device;  // the device's own name, e.g. nvme0n1p2
  std::string ns_name;       // its namespace, e.g. nvme0n1
  std::string generic_name;  // the namespace's generic char device, e.g. ng0n1
  // The controller's char device name (nvme0) for admin commands, empty when sysfs does
  // not say which controller serves the namespace.
  std::string controller;
  uint32_t nsid = 1;
  uint32_t sysfs_lba_size = 0;  // queue/logical_block_size; 0 when unreadable
  std::string why;              // non-empty: not a usable NVMe namespace, and why
  bool ok() const noexcept { return why.empty(); }
};

// Never throws; every failure is reported in `why`.
NvmeSysfsNamespace resolve_nvme_namespace(const std::string& sysfs_root, dev_t dev) noexcept;

}  // namespace fsysfs::engine
