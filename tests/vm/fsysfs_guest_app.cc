// The "application" of the fsysfs QEMU test (run_fsysfs_vm.sh): in the guest it writes and
// fdatasyncs one file N times, between two NVMe VERIFY commands (the kernel never sends
// VERIFY itself) that mark where the host should count FLUSH commands in QEMU's trace:
//   VERIFY slba M | N x (pwrite 4 KiB at 0, fdatasync) | VERIFY slba M+1
// With --sync 0 the loop only writes (for durability=strict, where each write is a sync).
// The file is created, written and synced once before the first marker, so the window
// holds only the steady state of the loop. Prints "RESULT key value" lines; exits non-zero
// on any failure.

#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr uint8_t kNvmeVerify = 0x0c;
constexpr size_t kBlock = 4096;

int fail(const std::string& what) {
  std::printf("RESULT error %s: %s\n", what.c_str(), std::strerror(errno));
  std::fflush(stdout);
  return 1;
}

// One VERIFY of a single block at `slba`.
bool send_marker(int fd, uint32_t nsid, uint64_t slba) {
  nvme_passthru_cmd cmd{};
  cmd.opcode = kNvmeVerify;
  cmd.nsid = nsid;
  cmd.cdw10 = static_cast<uint32_t>(slba);
  cmd.cdw11 = static_cast<uint32_t>(slba >> 32);
  return ::ioctl(fd, NVME_IOCTL_IO_CMD, &cmd) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device = "/dev/nvme0n1";
  std::string file;
  int fsyncs = 10;
  uint64_t marker = 10;
  bool sync = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    if (key == "--device") {
      device = argv[i + 1];
    } else if (key == "--file") {
      file = argv[i + 1];
    } else if (key == "--fsyncs") {
      fsyncs = std::atoi(argv[i + 1]);
    } else if (key == "--sync") {
      sync = std::atoi(argv[i + 1]) != 0;
    } else if (key == "--marker") {
      marker = std::strtoull(argv[i + 1], nullptr, 10);
    } else {
      std::printf("RESULT error unknown argument %s\n", key.c_str());
      return 1;
    }
  }
  if (file.empty()) {
    std::printf("RESULT error usage: --file F [--device D] [--fsyncs N] [--marker M] [--sync 0]\n");
    return 1;
  }
  int dev = ::open(device.c_str(), O_RDONLY | O_CLOEXEC);
  if (dev < 0) return fail("open " + device);
  int nsid = ::ioctl(dev, NVME_IOCTL_ID);
  if (nsid <= 0) return fail("NVME_IOCTL_ID");

  int fd = ::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return fail("open " + file);
  std::vector<char> block(kBlock, 'a');
  if (::pwrite(fd, block.data(), kBlock, 0) != static_cast<ssize_t>(kBlock) ||
      ::fdatasync(fd) != 0) {
    return fail("first write and sync");
  }
  if (!send_marker(dev, static_cast<uint32_t>(nsid), marker)) return fail("VERIFY marker");
  for (int i = 0; i < fsyncs; ++i) {
    block[0] = static_cast<char>('b' + i % 20);
    if (::pwrite(fd, block.data(), kBlock, 0) != static_cast<ssize_t>(kBlock)) {
      return fail("pwrite");
    }
    if (sync && ::fdatasync(fd) != 0) return fail("fdatasync");
  }
  if (!send_marker(dev, static_cast<uint32_t>(nsid), marker + 1)) return fail("VERIFY marker");
  if (::close(fd) != 0) return fail("close");
  std::printf("RESULT %s %d file %s markers %llu %llu\n", sync ? "fsyncs" : "writes", fsyncs,
              file.c_str(), static_cast<unsigned long long>(marker),
              static_cast<unsigned long long>(marker + 1));
  std::fflush(stdout);
  return 0;
}
