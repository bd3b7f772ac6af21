#pragma once

// Decoding of the NVMe Identify data structures (NVMe Base Specification, Identify
// Namespace CNS 0 and Identify Controller CNS 1). Pure functions over the 4096-byte
// buffers the device returns, so they can be tested without a device.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace fsysfs::engine {

inline constexpr size_t kNvmeIdentifyBytes = 4096;
using NvmeIdentifyData = std::span<const uint8_t, kNvmeIdentifyBytes>;

inline constexpr uint8_t kNvmeAdminIdentify = 0x06;
inline constexpr uint32_t kNvmeCnsNamespace = 0x00;
inline constexpr uint32_t kNvmeCnsController = 0x01;
inline constexpr uint8_t kNvmeIoFlush = 0x00;
inline constexpr uint8_t kNvmeIoVerify = 0x0c;

// The fields of Identify Namespace that the engine uses. The atomic write fields are
// 0-based counts of logical blocks.
struct NvmeIdentifyNamespace {
  uint8_t nsfeat = 0;   // byte 24
  uint16_t nawun = 0;   // bytes 34-35
  uint16_t nawupf = 0;  // bytes 36-37
  uint16_t nacwu = 0;   // bytes 38-39
  // Logical block size of the format in use (FLBAS -> LBAF[i].LBADS); 0 when the
  // buffer names a format that does not exist or an impossible size.
  uint32_t lba_size = 0;

  // NSFEAT bit 1 (NSABP): NAWUN, NAWUPF and NACWU are defined for this namespace.
  bool has_namespace_atomics() const noexcept { return (nsfeat & 0x02) != 0; }
};

struct NvmeIdentifyController {
  uint16_t awun = 0;   // bytes 526-527
  uint16_t awupf = 0;  // bytes 528-529
};

NvmeIdentifyNamespace parse_identify_namespace(NvmeIdentifyData data) noexcept;
NvmeIdentifyController parse_identify_controller(NvmeIdentifyData data) noexcept;

// Whether the power-fail atomic write unit of this namespace is the controller's AWUPF:
// when NSFEAT does not define the namespace fields, and also when it does but NAWUPF is
// 0 (the specification, and the Linux driver, read 0 there as "same as AWUPF").
bool nvme_needs_controller_awupf(const NvmeIdentifyNamespace& ns) noexcept;

// Power-fail atomic write unit in bytes, (0-based count + 1) * lba_size. `ctrl` is only
// consulted when nvme_needs_controller_awupf(ns). 0 = unknown (no block size, or the
// controller data is needed but missing).
uint32_t nvme_power_fail_atomic_write_bytes(const NvmeIdentifyNamespace& ns,
                                            const std::optional<NvmeIdentifyController>& ctrl,
                                            uint32_t lba_size) noexcept;

}  // namespace fsysfs::engine
