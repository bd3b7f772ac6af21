#include "engine/nvme.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "engine/nvme_identify.h"
#include "engine/nvme_sysfs.h"
#include "tests/temp_dir.h"

namespace fsysfs::engine {
namespace {

namespace fs = std::filesystem;
using Bytes = std::array<uint8_t, kNvmeIdentifyBytes>;

// A sysfs tree laid out like the kernel's: devices/... holds the device directories,
// dev/block/MAJ:MIN and block/NAME are symlinks into it.
class FakeSysfs {
 public:
  const std::string& root() const { return dir_.path(); }

  // `dir` is relative to the root, e.g. "devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1".
  void add_disk(dev_t dev, const std::string& dir, std::optional<std::string> nsid = "1",
                std::optional<std::string> lbs = "512") {
    const fs::path abs = fs::path(root()) / dir;
    fs::create_directories(abs / "queue");
    if (nsid) write(abs / "nsid", *nsid + "\n");
    if (lbs) write(abs / "queue" / "logical_block_size", *lbs + "\n");
    link_dev(dev, dir);
    fs::create_directories(fs::path(root()) / "block");
    fs::create_symlink("../" + dir, fs::path(root()) / "block" / abs.filename());
  }
  // A partition directory inside its disk's directory.
  void add_partition(dev_t dev, const std::string& disk_dir, const std::string& name) {
    const std::string dir = disk_dir + "/" + name;
    fs::create_directories(fs::path(root()) / dir);
    write(fs::path(root()) / dir / "partition", "1\n");
    link_dev(dev, dir);
  }
  void add_dir(const std::string& dir) { fs::create_directories(fs::path(root()) / dir); }
  void add_link(const std::string& at, const std::string& target) {
    fs::create_symlink(target, fs::path(root()) / at);
  }

 private:
  static void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }
  void link_dev(dev_t dev, const std::string& dir) {
    const fs::path d = fs::path(root()) / "dev" / "block";
    fs::create_directories(d);
    fs::create_symlink("../../" + dir,
                       d / (std::to_string(major(dev)) + ":" + std::to_string(minor(dev))));
  }
  testing::TempDir dir_;
};

const std::string kPciCtrl0 = "devices/pci0000:00/0000:00:04.0/nvme/nvme0";

// Records every open and command; answers Identify with the buffers a test sets.
class FakeOps : public NvmeDeviceOps {
 public:
  struct Cmd {
    std::string path;
    bool admin;
    uint8_t opcode;
    uint32_t nsid;
    uint32_t cdw10;
    uint32_t data_len;
  };

  int open(const std::string& path) override {
    std::lock_guard lock(mu);
    opened.push_back(path);
    if (auto it = open_errors.find(path); it != open_errors.end()) return it->second;
    int fd = next_fd++;
    fd_paths[fd] = path;
    return fd;
  }
  void close(int fd) override {
    std::lock_guard lock(mu);
    closed.push_back(fd);
  }
  int io_cmd(int fd, nvme_passthru_cmd& cmd) override {
    std::lock_guard lock(mu);
    cmds.push_back({fd_paths.at(fd), false, cmd.opcode, cmd.nsid, cmd.cdw10, cmd.data_len});
    return io_result;
  }
  int admin_cmd(int fd, nvme_passthru_cmd& cmd) override {
    std::lock_guard lock(mu);
    const std::string& path = fd_paths.at(fd);
    cmds.push_back({path, true, cmd.opcode, cmd.nsid, cmd.cdw10, cmd.data_len});
    if (admin_refused.count(path)) return admin_refused.at(path);
    if (cmd.opcode != kNvmeAdminIdentify || cmd.data_len != kNvmeIdentifyBytes) return -EINVAL;
    const Bytes& src = cmd.cdw10 == kNvmeCnsNamespace ? id_ns : id_ctrl;
    std::memcpy(reinterpret_cast<void*>(static_cast<uintptr_t>(cmd.addr)), src.data(), src.size());
    return 0;
  }

  std::vector<Cmd> io_cmds() {
    std::lock_guard lock(mu);
    std::vector<Cmd> out;
    for (const Cmd& c : cmds)
      if (!c.admin) out.push_back(c);
    return out;
  }
  std::vector<Cmd> admin_cmds() {
    std::lock_guard lock(mu);
    std::vector<Cmd> out;
    for (const Cmd& c : cmds)
      if (c.admin) out.push_back(c);
    return out;
  }

  std::mutex mu;
  std::map<std::string, int> open_errors;    // path -> -errno
  std::map<std::string, int> admin_refused;  // path -> -errno
  int io_result = 0;
  Bytes id_ns{};
  Bytes id_ctrl{};
  std::vector<std::string> opened;
  std::vector<int> closed;
  std::vector<Cmd> cmds;
  std::map<int, std::string> fd_paths;
  int next_fd = 100;
};

void put16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v & 0xff);
  b[off + 1] = static_cast<uint8_t>(v >> 8);
}

// An Identify Namespace buffer with one LBA format of 2^lbads bytes (or several, with
// FLBAS selecting `format`).
Bytes id_ns_buffer(uint8_t nsfeat, uint16_t nawun, uint16_t nawupf, uint16_t nacwu,
                   uint8_t lbads = 9) {
  Bytes b{};
  b[24] = nsfeat;
  b[25] = 0;  // NLBAF: one format
  b[26] = 0;  // FLBAS: format 0
  put16(b, 34, nawun);
  put16(b, 36, nawupf);
  put16(b, 38, nacwu);
  b[128 + 2] = lbads;
  return b;
}

Bytes id_ctrl_buffer(uint16_t awun, uint16_t awupf) {
  Bytes b{};
  put16(b, 526, awun);
  put16(b, 528, awupf);
  return b;
}

NvmeIdentifyData view(const Bytes& b) { return NvmeIdentifyData(b.data(), b.size()); }

// ---- Block device names ----

TEST(NvmeBlockName, ClassifiesNamespacesPartitionsAndOthers) {
  using K = NvmeBlockName::Kind;
  EXPECT_EQ(parse_nvme_block_name("nvme0n1").kind, K::kNamespace);
  EXPECT_EQ(parse_nvme_block_name("nvme0n1p2").kind, K::kPartition);
  auto multi = parse_nvme_block_name("nvme12n3p4");
  EXPECT_EQ(multi.kind, K::kPartition);
  EXPECT_EQ(multi.instance, 12u);
  EXPECT_EQ(multi.namespace_index, 3u);
  EXPECT_EQ(parse_nvme_block_name("nvme0c1n1").kind, K::kPath);
  for (const char* other : {"vda", "sda", "sda1", "dm-0", "loop0", "nvme0", "nvme-subsys0",
                            "nvme0n", "nvme0n1p", "nvme0n1x", "nvmen1", "ng0n1", ""}) {
    EXPECT_EQ(parse_nvme_block_name(other).kind, K::kOther) << other;
  }
}

// ---- sysfs resolution ----

TEST(NvmeSysfs, NamespaceResolvesNsidControllerAndBlockSize) {
  FakeSysfs sys;
  sys.add_disk(makedev(259, 0), kPciCtrl0 + "/nvme0n1", "7", "4096");
  auto r = resolve_nvme_namespace(sys.root(), makedev(259, 0));
  ASSERT_TRUE(r.ok()) << r.why;
  EXPECT_EQ(r.block_device, "nvme0n1");
  EXPECT_EQ(r.ns_name, "nvme0n1");
  EXPECT_EQ(r.generic_name, "ng0n1");
  EXPECT_EQ(r.controller, "nvme0");
  EXPECT_EQ(r.nsid, 7u);
  EXPECT_EQ(r.sysfs_lba_size, 4096u);
}

TEST(NvmeSysfs, PartitionResolvesToParentNamespace) {
  FakeSysfs sys;
  sys.add_disk(makedev(259, 0), kPciCtrl0 + "/nvme0n1", "2");
  sys.add_partition(makedev(259, 3), kPciCtrl0 + "/nvme0n1", "nvme0n1p2");
  auto r = resolve_nvme_namespace(sys.root(), makedev(259, 3));
  ASSERT_TRUE(r.ok()) << r.why;
  EXPECT_EQ(r.block_device, "nvme0n1p2");
  EXPECT_EQ(r.ns_name, "nvme0n1");
  EXPECT_EQ(r.nsid, 2u);
}

TEST(NvmeSysfs, MultiDigitControllerPartition) {
  FakeSysfs sys;
  const std::string ctrl = "devices/pci0000:40/0000:40:01.1/0000:41:00.0/nvme/nvme12";
  sys.add_disk(makedev(259, 20), ctrl + "/nvme12n3", "3");
  sys.add_partition(makedev(259, 24), ctrl + "/nvme12n3", "nvme12n3p4");
  auto r = resolve_nvme_namespace(sys.root(), makedev(259, 24));
  ASSERT_TRUE(r.ok()) << r.why;
  EXPECT_EQ(r.block_device, "nvme12n3p4");
  EXPECT_EQ(r.ns_name, "nvme12n3");
  EXPECT_EQ(r.generic_name, "ng12n3");
  EXPECT_EQ(r.controller, "nvme12");
  EXPECT_EQ(r.nsid, 3u);
}

TEST(NvmeSysfs, MultipathNamespaceFindsControllerInItsSubsystem) {
  FakeSysfs sys;
  const std::string subsys = "devices/virtual/nvme-subsystem/nvme-subsys0";
  sys.add_disk(makedev(259, 0), subsys + "/nvme0n1", "1");
  sys.add_dir("devices/pci0000:00/0000:00:04.0/nvme/nvme3");
  sys.add_dir("devices/pci0000:00/0000:00:05.0/nvme/nvme2");
  sys.add_link(subsys + "/nvme3", "../../../pci0000:00/0000:00:04.0/nvme/nvme3");
  sys.add_link(subsys + "/nvme2", "../../../pci0000:00/0000:00:05.0/nvme/nvme2");
  auto r = resolve_nvme_namespace(sys.root(), makedev(259, 0));
  ASSERT_TRUE(r.ok()) << r.why;
  EXPECT_EQ(r.ns_name, "nvme0n1");
  // The subsystem's number is not a controller's: nvme0 does not exist here.
  EXPECT_EQ(r.controller, "nvme2");
}

TEST(NvmeSysfs, NonNvmeDevicesAreRejectedWithWhy) {
  FakeSysfs sys;
  sys.add_disk(makedev(254, 0), "devices/pci0000:00/0000:00:05.0/virtio1/block/vda");
  sys.add_disk(makedev(8, 0), "devices/pci0000:00/0000:00:1f.2/ata1/host0/block/sda");
  sys.add_disk(makedev(253, 0), "devices/virtual/block/dm-0");
  sys.add_disk(makedev(7, 0), "devices/virtual/block/loop0");
  for (auto [dev, name] : std::vector<std::pair<dev_t, std::string>>{{makedev(254, 0), "vda"},
                                                                     {makedev(8, 0), "sda"},
                                                                     {makedev(253, 0), "dm-0"},
                                                                     {makedev(7, 0), "loop0"}}) {
    auto r = resolve_nvme_namespace(sys.root(), dev);
    EXPECT_FALSE(r.ok()) << name;
    EXPECT_NE(r.why.find(name), std::string::npos) << r.why;
    EXPECT_NE(r.why.find("not an NVMe namespace"), std::string::npos) << r.why;
  }
}

TEST(NvmeSysfs, MissingDevEntryIsRejectedWithWhy) {
  FakeSysfs sys;
  auto r = resolve_nvme_namespace(sys.root(), makedev(259, 9));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.why.find("259:9"), std::string::npos) << r.why;
  auto none = resolve_nvme_namespace(sys.root() + "/does-not-exist", makedev(259, 9));
  EXPECT_FALSE(none.ok());
}

TEST(NvmeSysfs, MissingNsidFileMeansNamespaceOne) {
  FakeSysfs sys;
  sys.add_disk(makedev(259, 0), kPciCtrl0 + "/nvme0n4", std::nullopt, std::nullopt);
  auto r = resolve_nvme_namespace(sys.root(), makedev(259, 0));
  ASSERT_TRUE(r.ok()) << r.why;
  EXPECT_EQ(r.nsid, 1u);
  EXPECT_EQ(r.sysfs_lba_size, 0u);
}

TEST(NvmeSysfs, GarbageNsidIsRejected) {
  FakeSysfs sys;
  sys.add_disk(makedev(259, 0), kPciCtrl0 + "/nvme0n1", "banana");
  sys.add_disk(makedev(259, 1), kPciCtrl0 + "/nvme0n2", "0");
  EXPECT_FALSE(resolve_nvme_namespace(sys.root(), makedev(259, 0)).ok());
  EXPECT_FALSE(resolve_nvme_namespace(sys.root(), makedev(259, 1)).ok());
}

TEST(NvmeSysfs, HiddenMultipathPathDeviceIsRejected) {
  FakeSysfs sys;
  sys.add_disk(makedev(259, 5), kPciCtrl0 + "/nvme0c0n1");
  auto r = resolve_nvme_namespace(sys.root(), makedev(259, 5));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.why.find("multipath"), std::string::npos) << r.why;
}

// ---- Identify parsing ----

// Bytes 74-77 are MSSRL and MCL; a reader that takes the atomic write unit from there
// reports a value the device never promised.
TEST(NvmeIdentify, UsesNawupfNotMssrl) {
  Bytes b = id_ns_buffer(/*nsfeat=*/0x02, /*nawun=*/15, /*nawupf=*/7, /*nacwu=*/3, 9);
  put16(b, 74, 0xbeef);
  put16(b, 76, 0x1234);
  auto ns = parse_identify_namespace(view(b));
  EXPECT_EQ(ns.nawun, 15u);
  EXPECT_EQ(ns.nawupf, 7u);
  EXPECT_EQ(ns.nacwu, 3u);
  EXPECT_EQ(nvme_power_fail_atomic_write_bytes(ns, std::nullopt, ns.lba_size), 8u * 512);
}

TEST(NvmeIdentify, NsfeatSetUsesNamespaceFieldsNotController) {
  auto ns = parse_identify_namespace(view(id_ns_buffer(0x02, 31, 15, 0, 12)));
  ASSERT_TRUE(ns.has_namespace_atomics());
  EXPECT_FALSE(nvme_needs_controller_awupf(ns));
  NvmeIdentifyController ctrl{.awun = 63, .awupf = 63};
  EXPECT_EQ(nvme_power_fail_atomic_write_bytes(ns, ctrl, 4096), 16u * 4096);
}

TEST(NvmeIdentify, NsfeatClearIgnoresNamespaceFieldsAndUsesController) {
  // NAWUPF holds junk while NSFEAT bit 1 is clear: it must not be used.
  auto ns = parse_identify_namespace(view(id_ns_buffer(0x00, 99, 99, 99, 9)));
  EXPECT_TRUE(nvme_needs_controller_awupf(ns));
  auto ctrl = parse_identify_controller(view(id_ctrl_buffer(/*awun=*/7, /*awupf=*/3)));
  EXPECT_EQ(ctrl.awun, 7u);
  EXPECT_EQ(ctrl.awupf, 3u);
  EXPECT_EQ(nvme_power_fail_atomic_write_bytes(ns, ctrl, 512), 4u * 512);
  EXPECT_EQ(nvme_power_fail_atomic_write_bytes(ns, std::nullopt, 512), 0u) << "unknown";
}

TEST(NvmeIdentify, NsfeatSetButNawupfZeroUsesController) {
  auto ns = parse_identify_namespace(view(id_ns_buffer(0x02, 0, 0, 0, 9)));
  EXPECT_TRUE(nvme_needs_controller_awupf(ns));
  NvmeIdentifyController ctrl{.awun = 0, .awupf = 1};
  EXPECT_EQ(nvme_power_fail_atomic_write_bytes(ns, ctrl, 512), 2u * 512);
}

TEST(NvmeIdentify, ZeroMeansOneBlock) {
  auto ns = parse_identify_namespace(view(id_ns_buffer(0x00, 0, 0, 0, 12)));
  NvmeIdentifyController ctrl{.awun = 0, .awupf = 0};
  EXPECT_EQ(nvme_power_fail_atomic_write_bytes(ns, ctrl, ns.lba_size), 4096u);
}

TEST(NvmeIdentify, LbaSizeComesFromTheFormatFlbasSelects) {
  Bytes b{};
  b[25] = 2;            // three formats
  b[26] = 0x10 | 0x02;  // FLBAS: format 2 (bit 4 is the metadata setting, not the index)
  b[128 + 0 * 4 + 2] = 9;
  b[128 + 1 * 4 + 2] = 12;
  b[128 + 2 * 4 + 2] = 13;
  EXPECT_EQ(parse_identify_namespace(view(b)).lba_size, 8192u);
  b[26] = 0x01;
  EXPECT_EQ(parse_identify_namespace(view(b)).lba_size, 4096u);
}

TEST(NvmeIdentify, FormatIndexUsesHighBitsBeyondSixteenFormats) {
  Bytes b{};
  b[25] = 19;               // twenty formats
  b[26] = (1 << 5) | 0x02;  // index 0x12 = 18
  b[128 + 18 * 4 + 2] = 12;
  b[128 + 2 * 4 + 2] = 9;
  EXPECT_EQ(parse_identify_namespace(view(b)).lba_size, 4096u);
}

TEST(NvmeIdentify, ImpossibleFormatGivesUnknownSize) {
  Bytes b{};
  b[25] = 0;     // one format
  b[26] = 0x03;  // selects format 3, which does not exist
  b[128 + 3 * 4 + 2] = 12;
  EXPECT_EQ(parse_identify_namespace(view(b)).lba_size, 0u);
  Bytes tiny{};
  tiny[128 + 2] = 3;  // 8-byte blocks are not a valid format
  EXPECT_EQ(parse_identify_namespace(view(tiny)).lba_size, 0u);
  auto ns = parse_identify_namespace(view(tiny));
  EXPECT_EQ(nvme_power_fail_atomic_write_bytes(ns, NvmeIdentifyController{}, 0), 0u);
}

// ---- Registry ----

class NvmeRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The environment switch must not leak in from the shell running the tests.
    if (const char* v = getenv("FSYS_DISABLE_NVME_PASSTHROUGH")) {
      saved_env_ = v;
      unsetenv("FSYS_DISABLE_NVME_PASSTHROUGH");
    }
    ops_ = std::make_shared<FakeOps>();
    ops_->id_ns = id_ns_buffer(0x02, 7, 7, 0, 12);
    ops_->id_ctrl = id_ctrl_buffer(0, 0);
    sys_.add_disk(makedev(259, 0), kPciCtrl0 + "/nvme0n1", "5", "4096");
  }
  void TearDown() override {
    if (saved_env_) setenv("FSYS_DISABLE_NVME_PASSTHROUGH", saved_env_->c_str(), 1);
  }
  NvmeRegistry::Config config() {
    NvmeRegistry::Config c;
    c.sysfs_root = sys_.root();
    c.dev_root = "/fakedev";
    c.ops = ops_;
    return c;
  }

  FakeSysfs sys_;
  std::shared_ptr<FakeOps> ops_;
  std::optional<std::string> saved_env_;
};

TEST_F(NvmeRegistryTest, FlushGoesToNamespaceNodeWithOpcodeZeroAndNsid) {
  NvmeRegistry reg(config());
  auto dev = reg.lookup(makedev(259, 0));
  ASSERT_NE(dev, nullptr) << reg.status().at(0).why;
  EXPECT_EQ(dev->status().ns_device, "/fakedev/nvme0n1");
  ASSERT_EQ(dev->flush(), 0);
  ASSERT_EQ(dev->flush(), 0);
  auto io = ops_->io_cmds();
  ASSERT_EQ(io.size(), 3u);  // the probe and two flushes
  for (const auto& c : io) {
    EXPECT_EQ(c.path, "/fakedev/nvme0n1");
    EXPECT_EQ(c.opcode, kNvmeIoFlush);
    EXPECT_EQ(c.nsid, 5u);
    EXPECT_EQ(c.data_len, 0u);
  }
}

TEST_F(NvmeRegistryTest, IoCommandsNeverGoToTheControllerNode) {
  // Even with admin commands refused on the namespace, nothing but Identify reaches
  // /dev/nvme0, and it is sent as an admin command.
  NvmeRegistry reg(config());
  auto dev = reg.lookup(makedev(259, 0));
  ASSERT_NE(dev, nullptr);
  dev->flush();
  for (const auto& c : ops_->cmds) {
    if (c.path == "/fakedev/nvme0") {
      EXPECT_TRUE(c.admin);
      EXPECT_EQ(c.opcode, kNvmeAdminIdentify);
    }
  }
}

TEST_F(NvmeRegistryTest, IdentifyNamespaceIsAnAdminCommandOnTheController) {
  NvmeRegistry reg(config());
  ASSERT_NE(reg.lookup(makedev(259, 0)), nullptr);
  auto admin = ops_->admin_cmds();
  ASSERT_FALSE(admin.empty());
  EXPECT_EQ(admin[0].path, "/fakedev/nvme0");
  EXPECT_EQ(admin[0].opcode, kNvmeAdminIdentify);
  EXPECT_EQ(admin[0].cdw10, kNvmeCnsNamespace);
  EXPECT_EQ(admin[0].nsid, 5u);
  EXPECT_EQ(admin[0].data_len, kNvmeIdentifyBytes);
}

TEST_F(NvmeRegistryTest, ReportsNawupfAsAtomicWriteUnitNotMssrl) {
  ops_->id_ns = id_ns_buffer(0x02, 15, 7, 3, 12);
  put16(ops_->id_ns, 74, 0x00ff);
  put16(ops_->id_ns, 76, 0x0fff);
  NvmeRegistry reg(config());
  auto dev = reg.lookup(makedev(259, 0));
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->status().lba_size, 4096u);
  EXPECT_EQ(dev->status().atomic_write_unit, 8u * 4096);
  // NSFEAT defines the namespace fields, so the controller was not asked.
  for (const auto& c : ops_->admin_cmds()) EXPECT_EQ(c.cdw10, kNvmeCnsNamespace);
}

TEST_F(NvmeRegistryTest, NsfeatClearAsksControllerForAwupf) {
  ops_->id_ns = id_ns_buffer(0x00, 15, 15, 15, 9);
  ops_->id_ctrl = id_ctrl_buffer(3, 1);
  NvmeRegistry reg(config());
  auto dev = reg.lookup(makedev(259, 0));
  ASSERT_NE(dev, nullptr);
  auto admin = ops_->admin_cmds();
  ASSERT_EQ(admin.size(), 2u);
  EXPECT_EQ(admin[1].cdw10, kNvmeCnsController);
  EXPECT_EQ(admin[1].nsid, 0u);
  EXPECT_EQ(dev->status().lba_size, 512u);
  EXPECT_EQ(dev->status().atomic_write_unit, 2u * 512);
}

TEST_F(NvmeRegistryTest, UnopenableControllerSendsAdminToNamespaceNode) {
  ops_->open_errors["/fakedev/nvme0"] = -EACCES;
  NvmeRegistry reg(config());
  auto dev = reg.lookup(makedev(259, 0));
  ASSERT_NE(dev, nullptr);
  auto admin = ops_->admin_cmds();
  ASSERT_FALSE(admin.empty());
  EXPECT_EQ(admin[0].path, "/fakedev/nvme0n1");
  EXPECT_EQ(dev->status().atomic_write_unit, 8u * 4096);
}

TEST_F(NvmeRegistryTest, RefusedIdentifyKeepsPassthroughWithUnknownUnit) {
  ops_->admin_refused["/fakedev/nvme0"] = -EPERM;
  ops_->admin_refused["/fakedev/nvme0n1"] = -EPERM;
  NvmeRegistry reg(config());
  auto dev = reg.lookup(makedev(259, 0));
  ASSERT_NE(dev, nullptr);
  EXPECT_TRUE(dev->status().passthrough);
  EXPECT_EQ(dev->status().atomic_write_unit, 0u);
  EXPECT_EQ(dev->status().lba_size, 4096u) << "from sysfs";
}

TEST_F(NvmeRegistryTest, UnopenableNamespaceNodeFallsBackToGenericCharDevice) {
  ops_->open_errors["/fakedev/nvme0n1"] = -ENOENT;
  NvmeRegistry reg(config());
  auto dev = reg.lookup(makedev(259, 0));
  ASSERT_NE(dev, nullptr);
  EXPECT_EQ(dev->status().ns_device, "/fakedev/ng0n1");
  for (const auto& c : ops_->io_cmds()) EXPECT_EQ(c.path, "/fakedev/ng0n1");
}

TEST_F(NvmeRegistryTest, NoPrivilegeMeansNoPassthroughWithWhy) {
  ops_->open_errors["/fakedev/nvme0n1"] = -EACCES;
  ops_->open_errors["/fakedev/ng0n1"] = -EACCES;
  NvmeRegistry reg(config());
  EXPECT_EQ(reg.lookup(makedev(259, 0)), nullptr);
  auto st = reg.status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_FALSE(st[0].passthrough);
  EXPECT_EQ(st[0].block_device, "nvme0n1");
  EXPECT_NE(st[0].why.find("/fakedev/nvme0n1"), std::string::npos) << st[0].why;
  EXPECT_NE(st[0].why.find("privilege"), std::string::npos) << st[0].why;
  EXPECT_TRUE(ops_->io_cmds().empty());
}

TEST_F(NvmeRegistryTest, RefusedProbeFlushMeansNoPassthroughAndClosesFds) {
  ops_->io_result = -EPERM;
  NvmeRegistry reg(config());
  EXPECT_EQ(reg.lookup(makedev(259, 0)), nullptr);
  auto st = reg.status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_NE(st[0].why.find("FLUSH"), std::string::npos) << st[0].why;
  EXPECT_EQ(ops_->closed.size(), ops_->fd_paths.size()) << "every opened fd closed";
  EXPECT_TRUE(ops_->admin_cmds().empty());
}

TEST_F(NvmeRegistryTest, NonNvmeDeviceHasWhyAndNoDeviceOpened) {
  sys_.add_disk(makedev(254, 0), "devices/pci0000:00/0000:00:05.0/virtio1/block/vda");
  NvmeRegistry reg(config());
  EXPECT_EQ(reg.lookup(makedev(254, 0)), nullptr);
  EXPECT_EQ(reg.lookup(makedev(254, 7)), nullptr);  // not in sysfs at all
  auto st = reg.status();
  ASSERT_EQ(st.size(), 2u);
  for (const auto& s : st) {
    EXPECT_FALSE(s.passthrough);
    EXPECT_FALSE(s.why.empty());
    EXPECT_TRUE(s.block_device.empty());
  }
  EXPECT_TRUE(ops_->opened.empty());
}

TEST_F(NvmeRegistryTest, EnvironmentVariableDisablesPassthrough) {
  setenv("FSYS_DISABLE_NVME_PASSTHROUGH", "", 1);
  NvmeRegistry reg(config());
  unsetenv("FSYS_DISABLE_NVME_PASSTHROUGH");
  EXPECT_EQ(reg.lookup(makedev(259, 0)), nullptr);
  auto st = reg.status();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].why, "disabled by FSYS_DISABLE_NVME_PASSTHROUGH");
  EXPECT_TRUE(ops_->opened.empty());
}

TEST_F(NvmeRegistryTest, ConfigDisablesPassthrough) {
  auto c = config();
  c.enabled = false;
  NvmeRegistry reg(c);
  EXPECT_EQ(reg.lookup(makedev(259, 0)), nullptr);
  EXPECT_FALSE(reg.status().at(0).why.empty());
  EXPECT_TRUE(ops_->opened.empty());
}

TEST_F(NvmeRegistryTest, LookupIsCachedPerDevice) {
  sys_.add_partition(makedev(259, 1), kPciCtrl0 + "/nvme0n1", "nvme0n1p1");
  NvmeRegistry reg(config());
  auto a = reg.lookup(makedev(259, 0));
  auto b = reg.lookup(makedev(259, 0));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a, b);
  EXPECT_EQ(ops_->io_cmds().size(), 1u) << "one probe FLUSH";
  const size_t opens = ops_->opened.size();
  auto p = reg.lookup(makedev(259, 1));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->status().block_device, "nvme0n1p1");
  EXPECT_EQ(p->status().ns_device, "/fakedev/nvme0n1");
  EXPECT_GT(ops_->opened.size(), opens) << "a partition is its own device number";
  reg.lookup(makedev(259, 1));
  EXPECT_EQ(ops_->io_cmds().size(), 2u);
  EXPECT_EQ(reg.status().size(), 2u);
}

TEST_F(NvmeRegistryTest, NegativeAnswersAreCachedToo) {
  ops_->io_result = -EACCES;
  NvmeRegistry reg(config());
  EXPECT_EQ(reg.lookup(makedev(259, 0)), nullptr);
  const size_t probes = ops_->io_cmds().size();
  const size_t opens = ops_->opened.size();
  EXPECT_EQ(reg.lookup(makedev(259, 0)), nullptr);
  EXPECT_EQ(ops_->io_cmds().size(), probes);
  EXPECT_EQ(ops_->opened.size(), opens);
}

TEST_F(NvmeRegistryTest, ConcurrentLookupsProbeOnce) {
  NvmeRegistry reg(config());
  std::vector<std::shared_ptr<NvmeDevice>> got(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] { got[i] = reg.lookup(makedev(259, 0)); });
  for (auto& t : threads) t.join();
  for (const auto& d : got) EXPECT_EQ(d, got[0]);
  EXPECT_NE(got[0], nullptr);
  EXPECT_EQ(ops_->io_cmds().size(), 1u);
}

TEST_F(NvmeRegistryTest, FlushReportsDeviceErrors) {
  NvmeRegistry reg(config());
  auto dev = reg.lookup(makedev(259, 0));
  ASSERT_NE(dev, nullptr);
  ops_->io_result = -EIO;
  EXPECT_EQ(dev->flush(), -EIO);
  ops_->io_result = 0x4004;  // an NVMe status leaking through a seam is still a failure
  EXPECT_EQ(dev->flush(), -EIO);
}

TEST_F(NvmeRegistryTest, DeviceClosesItsFdWhenLastReferenceGoes) {
  std::shared_ptr<NvmeDevice> dev;
  {
    NvmeRegistry reg(config());
    dev = reg.lookup(makedev(259, 0));
    ASSERT_NE(dev, nullptr);
  }
  const size_t open_fds = ops_->fd_paths.size();
  EXPECT_EQ(ops_->closed.size(), open_fds - 1) << "only the namespace fd is still open";
  EXPECT_EQ(dev->flush(), 0) << "the device outlives the registry";
  dev.reset();
  EXPECT_EQ(ops_->closed.size(), open_fds);
}

// ---- The real ioctls, on this machine ----

TEST(NvmeRealOps, ErrorsComeBackAsNegativeErrno) {
  auto ops = real_nvme_device_ops();
  EXPECT_EQ(ops->open("/nonexistent/nvme0n1"), -ENOENT);
  testing::TempDir dir;
  std::ofstream(dir / "plain") << "x";
  int fd = ops->open(dir / "plain");
  ASSERT_GE(fd, 0);
  nvme_passthru_cmd cmd{};
  EXPECT_EQ(ops->io_cmd(fd, cmd), -ENOTTY);
  EXPECT_EQ(ops->admin_cmd(fd, cmd), -ENOTTY);
  ops->close(fd);
}

TEST(NvmeRealOps, LookupOfThisFilesystemNeverThrowsAndExplains) {
  struct stat st {};
  ASSERT_EQ(::stat("/", &st), 0);
  NvmeRegistry reg(NvmeRegistry::Config{});
  auto dev = reg.lookup(st.st_dev);
  auto status = reg.status();
  ASSERT_EQ(status.size(), 1u);
  if (dev) {
    EXPECT_TRUE(status[0].passthrough);
    EXPECT_EQ(dev->flush(), 0);
  } else {
    EXPECT_FALSE(status[0].why.empty());
  }
}

// ---- The engine's FLUSH hop: after a successful sync, before the caller hears of it ----

class EngineNvmeFlush : public NvmeRegistryTest, public ::testing::WithParamInterface<BackendKind> {
 protected:
  void SetUp() override {
    NvmeRegistryTest::SetUp();
    struct stat st;
    ASSERT_EQ(::stat(files_.path().c_str(), &st), 0);
    // Pretend the file system holding our temp files sits on namespace nvme0n2.
    sys_.add_disk(st.st_dev, kPciCtrl0 + "/nvme0n2", "2", "4096");
    Options o;
    o.backend = GetParam();
    o.nvme = std::make_shared<NvmeRegistry>(config());
    try {
      engine_ = std::make_unique<Engine>(o);
    } catch (const std::runtime_error&) {
      GTEST_SKIP() << "this kernel has no io_uring";
    }
    int fd = ::open((files_ / "f").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    file_ = engine_->adopt(UniqueFd(fd));
    ASSERT_TRUE(file_->nvme_flush());
    probes_ = ops_->io_cmds().size();  // the registry's probe FLUSH
  }
  void TearDown() override {
    file_.reset();
    engine_.reset();
    NvmeRegistryTest::TearDown();
  }
  size_t flushes() { return ops_->io_cmds().size() - probes_; }
  // Runs an async op and returns (result, FLUSH count seen inside its completion).
  template <typename Submit>
  std::pair<int64_t, size_t> run(Submit submit) {
    std::atomic<bool> done{false};
    int64_t res = 0;
    size_t seen = 0;
    submit([&](int64_t r) {
      res = r;
      seen = flushes();
      done = true;
      done.notify_one();
    });
    done.wait(false);
    return {res, seen};
  }

  testing::TempDir files_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<File> file_;
  size_t probes_ = 0;
};

TEST_P(EngineNvmeFlush, SyncIsFollowedByOneFlushBeforeItCompletes) {
  std::vector<std::byte> data(4096, std::byte{7});
  auto [w, after_write] =
      run([&](Completion cb) { engine_->write(*file_, data, 0, SyncKind::kNone, std::move(cb)); });
  EXPECT_EQ(w, 4096);
  EXPECT_EQ(after_write, 0u);  // a plain write is not flushed
  auto [s, after_sync] =
      run([&](Completion cb) { engine_->sync(*file_, SyncKind::kData, std::move(cb)); });
  EXPECT_EQ(s, 0);
  EXPECT_EQ(after_sync, 1u);  // the FLUSH went out before the completion ran
  auto [c, after_chain] = run(
      [&](Completion cb) { engine_->write(*file_, data, 4096, SyncKind::kFull, std::move(cb)); });
  EXPECT_EQ(c, 4096);
  EXPECT_EQ(after_chain, 2u);
  for (const auto& cmd : ops_->io_cmds()) {
    EXPECT_EQ(cmd.path, "/fakedev/nvme0n2");
    EXPECT_EQ(cmd.opcode, kNvmeIoFlush);
    EXPECT_EQ(cmd.nsid, 2u);
  }
  auto st = engine_->stats();
  EXPECT_EQ(st.op(OpKind::kNvmeFlush).count, 2u);
  EXPECT_EQ(st.nvme_flush_errors, 0u);
}

TEST_P(EngineNvmeFlush, FailedSyncIsNotFlushed) {
  int fd = ::open((files_ / "f").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto ro = engine_->adopt(UniqueFd(fd));
  std::vector<std::byte> data(512, std::byte{1});
  auto [r, seen] =
      run([&](Completion cb) { engine_->write(*ro, data, 0, SyncKind::kData, std::move(cb)); });
  EXPECT_EQ(r, -EBADF);
  EXPECT_EQ(seen, 0u);
}

TEST_P(EngineNvmeFlush, FlushIoErrorFailsTheSync_OtherRefusalsKeepIt) {
  ops_->io_result = -EIO;
  auto [r1, s1] =
      run([&](Completion cb) { engine_->sync(*file_, SyncKind::kFull, std::move(cb)); });
  EXPECT_EQ(r1, -EIO);  // the device may have lost the data: never report success
  ops_->io_result = -EPERM;
  auto [r2, s2] =
      run([&](Completion cb) { engine_->sync(*file_, SyncKind::kFull, std::move(cb)); });
  EXPECT_EQ(r2, 0);  // the completed fsync's guarantee stands
  EXPECT_EQ(engine_->stats().nvme_flush_errors, 2u);
}

INSTANTIATE_TEST_SUITE_P(Backends, EngineNvmeFlush,
                         ::testing::Values(BackendKind::kUring, BackendKind::kSync),
                         [](const auto& info) {
                           return info.param == BackendKind::kUring ? "Uring" : "Sync";
                         });

}  // namespace
}  // namespace fsysfs::engine
