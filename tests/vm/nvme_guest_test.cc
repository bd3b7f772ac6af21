// Runs inside a QEMU guest with an emulated NVMe controller (see run_nvme_vm.sh). Drives
// the engine's NvmeRegistry with the real ioctls and brackets its commands with NVMe
// VERIFY commands (the kernel never sends VERIFY itself), so the host can check QEMU's
// trace phase by phase:
//   VERIFY slba 100 | lookups: probe FLUSHes and Identify  | VERIFY slba 101 |
//   exactly --flushes FLUSHes                              | VERIFY slba 102
// Prints "RESULT key value" lines for the script; exits non-zero on any failure.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/nvme.h"
#include "engine/nvme_identify.h"
#include "engine/nvme_sysfs.h"

namespace {

using fsysfs::engine::NvmeDevice;
using fsysfs::engine::NvmeRegistry;

constexpr uint64_t kMarkerBefore = 100;
constexpr uint64_t kMarkerProbed = 101;
constexpr uint64_t kMarkerFlushed = 102;

int fail(const std::string& what) {
  std::printf("RESULT error %s\n", what.c_str());
  std::fflush(stdout);
  return 1;
}

// One VERIFY of a single block at `slba`, through the same seam the engine uses.
int send_marker(fsysfs::engine::NvmeDeviceOps& ops, int fd, uint32_t nsid, uint64_t slba,
                bool enabled) {
  if (!enabled) return 0;
  nvme_passthru_cmd cmd{};
  cmd.opcode = fsysfs::engine::kNvmeIoVerify;
  cmd.nsid = nsid;
  cmd.cdw10 = static_cast<uint32_t>(slba);
  cmd.cdw11 = static_cast<uint32_t>(slba >> 32);
  cmd.cdw12 = 0;  // NLB, 0-based: one block
  return ops.io_cmd(fd, cmd);
}

void print_status(const char* label, const fsysfs::engine::NvmeStatus& s) {
  std::printf("RESULT %s.dev %u:%u\n", label, major(s.dev), minor(s.dev));
  std::printf("RESULT %s.block_device %s\n", label, s.block_device.c_str());
  std::printf("RESULT %s.ns_device %s\n", label, s.ns_device.c_str());
  std::printf("RESULT %s.nsid %u\n", label, s.nsid);
  std::printf("RESULT %s.passthrough %d\n", label, s.passthrough ? 1 : 0);
  std::printf("RESULT %s.why %s\n", label, s.why.c_str());
  std::printf("RESULT %s.lba_size %u\n", label, s.lba_size);
  std::printf("RESULT %s.atomic_write_unit %u\n", label, s.atomic_write_unit);
}

}  // namespace

int main(int argc, char** argv) {
  std::string device = "/dev/nvme0n1";
  std::string file;
  int flushes = 10;
  bool markers = true;
  for (int i = 1; i < argc; i += 2) {
    std::string key = argv[i];
    if (key == "--no-markers") {
      markers = false;
      --i;
      continue;
    }
    if (i + 1 >= argc) return fail("missing value for " + key);
    if (key == "--device") {
      device = argv[i + 1];
    } else if (key == "--file") {
      file = argv[i + 1];
    } else if (key == "--flushes") {
      flushes = std::atoi(argv[i + 1]);
    } else {
      return fail("unknown argument " + key);
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  struct stat dev_st {};
  if (::stat(device.c_str(), &dev_st) != 0 || !S_ISBLK(dev_st.st_mode)) {
    return fail("not a block device: " + device);
  }
  // Shown so the trace can be read against the guest's sysfs layout.
  std::error_code ec;
  const std::string link = "/sys/dev/block/" + std::to_string(major(dev_st.st_rdev)) + ":" +
                           std::to_string(minor(dev_st.st_rdev));
  std::printf("RESULT sysfs.link %s\n", std::filesystem::read_symlink(link, ec).c_str());

  const auto ns = fsysfs::engine::resolve_nvme_namespace("/sys", dev_st.st_rdev);
  if (!ns.ok()) return fail("resolve: " + ns.why);
  std::printf("RESULT sysfs.controller %s\n", ns.controller.c_str());

  auto ops = fsysfs::engine::real_nvme_device_ops();
  const int marker_fd = ops->open(device);
  if (marker_fd < 0) return fail("open " + device + ": " + std::strerror(-marker_fd));

  int rc = send_marker(*ops, marker_fd, ns.nsid, kMarkerBefore, markers);
  if (rc != 0) return fail(std::string("VERIFY marker: ") + std::strerror(-rc));

  NvmeRegistry registry(NvmeRegistry::Config{});
  std::vector<std::shared_ptr<NvmeDevice>> devices;
  int lookups = 0;
  auto raw = registry.lookup(dev_st.st_rdev);
  ++lookups;
  if (!raw) return fail("no passthrough for " + device + ": " + registry.status().at(0).why);
  print_status("raw", raw->status());
  devices.push_back(raw);
  // The same device again: answered from the cache, no second probe.
  if (registry.lookup(dev_st.st_rdev) != raw) return fail("second lookup not cached");

  if (!file.empty()) {
    struct stat file_st {};
    if (::stat(file.c_str(), &file_st) != 0) return fail("stat " + file);
    auto via_file = registry.lookup(file_st.st_dev);
    ++lookups;
    if (!via_file) return fail("no passthrough for the file's filesystem");
    print_status("file", via_file->status());
    devices.push_back(via_file);
  }
  std::printf("RESULT probes %d\n", lookups);

  rc = send_marker(*ops, marker_fd, ns.nsid, kMarkerProbed, markers);
  if (rc != 0) return fail(std::string("VERIFY marker: ") + std::strerror(-rc));

  int ok = 0;
  for (int i = 0; i < flushes; ++i) {
    rc = devices[static_cast<size_t>(i) % devices.size()]->flush();
    if (rc != 0) return fail(std::string("flush: ") + std::strerror(-rc));
    ++ok;
  }
  std::printf("RESULT flushes %d\n", ok);

  rc = send_marker(*ops, marker_fd, ns.nsid, kMarkerFlushed, markers);
  if (rc != 0) return fail(std::string("VERIFY marker: ") + std::strerror(-rc));
  ops->close(marker_fd);
  std::printf("RESULT done 1\n");
  return 0;
}
