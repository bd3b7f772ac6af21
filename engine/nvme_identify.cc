#include "engine/nvme_identify.h"

namespace fsysfs::engine {
namespace {

// Byte offsets in Identify Namespace.
constexpr size_t kNsfeat = 24;
constexpr size_t kNlbaf = 25;
constexpr size_t kFlbas = 26;
constexpr size_t kNawun = 34;
constexpr size_t kNawupf = 36;
constexpr size_t kNacwu = 38;
constexpr size_t kLbaf0 = 128;  // 64 LBA Format entries of 4 bytes each
constexpr size_t kMaxLbaFormats = 64;
// Byte offsets in Identify Controller.
constexpr size_t kAwun = 526;
constexpr size_t kAwupf = 528;

uint16_t le16(NvmeIdentifyData d, size_t off) noexcept {
  return static_cast<uint16_t>(d[off] | (d[off + 1] << 8));
}

uint32_t lba_size_of(NvmeIdentifyData d) noexcept {
  const size_t formats = size_t{d[kNlbaf]} + 1;  // NLBAF is 0-based
  const uint8_t flbas = d[kFlbas];
  size_t index = flbas & 0x0f;
  // With more than 16 formats, FLBAS bits 6:5 are the high bits of the index.
  if (formats > 16) index |= static_cast<size_t>((flbas >> 5) & 0x03) << 4;
  if (index >= formats || index >= kMaxLbaFormats) return 0;
  const uint8_t lbads = d[kLbaf0 + 4 * index + 2];
  // LBADS is log2 of the block size; the specification requires at least 512 bytes.
  if (lbads < 9 || lbads > 31) return 0;
  return uint32_t{1} << lbads;
}

}  // namespace

NvmeIdentifyNamespace parse_identify_namespace(NvmeIdentifyData data) noexcept {
  NvmeIdentifyNamespace ns;
  ns.nsfeat = data[kNsfeat];
  ns.nawun = le16(data, kNawun);
  ns.nawupf = le16(data, kNawupf);
  ns.nacwu = le16(data, kNacwu);
  ns.lba_size = lba_size_of(data);
  return ns;
}

NvmeIdentifyController parse_identify_controller(NvmeIdentifyData data) noexcept {
  NvmeIdentifyController ctrl;
  ctrl.awun = le16(data, kAwun);
  ctrl.awupf = le16(data, kAwupf);
  return ctrl;
}

bool nvme_needs_controller_awupf(const NvmeIdentifyNamespace& ns) noexcept {
  return !ns.has_namespace_atomics() || ns.nawupf == 0;
}

uint32_t nvme_power_fail_atomic_write_bytes(const NvmeIdentifyNamespace& ns,
                                            const std::optional<NvmeIdentifyController>& ctrl,
                                            uint32_t lba_size) noexcept {
  if (lba_size == 0) return 0;
  uint32_t blocks;
  if (!nvme_needs_controller_awupf(ns)) {
    blocks = uint32_t{ns.nawupf} + 1;
  } else if (ctrl) {
    blocks = uint32_t{ctrl->awupf} + 1;
  } else {
    return 0;
  }
  const uint64_t bytes = uint64_t{blocks} * lba_size;
  return bytes > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(bytes);
}

}  // namespace fsysfs::engine
