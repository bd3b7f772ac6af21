// A client's ring (client_ring.h) on a real io_uring: the fixed-file slots its files hold,
// and when a destroyed file's slot goes back (which closes the file's last reference).

#include "engine/client_ring.h"

#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "engine/engine.h"
#include "tests/temp_dir.h"

namespace fsysfs::engine {
namespace {

using fsysfs::testing::TempDir;

constexpr unsigned kSlots = 8;

// The test thread owns a ring (slot 0 is the client's own, the rest the engine's) and the
// ClientRing on it, as a FUSE queue's owner does.
class ClientRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(io_uring_queue_init(16, &ring_, 0), 0);
    ring_up_ = true;
    ASSERT_EQ(io_uring_register_files_sparse(&ring_, 1 + kSlots), 0);
    Options options;
    options.backend = BackendKind::kSync;
    engine_ = std::make_unique<Engine>(options);
    ClientRing::Setup setup;
    setup.cq_room = 8;
    setup.file_slot_base = 1;
    setup.file_slots = kSlots;
    setup.wake = [this] { ++wakes_; };
    setup.given_back = [this] {
      // Called while the slots just given back are still counted.
      retiring_when_given_back_ = engine_->slots_retiring();
      ++given_back_;
    };
    client_ = std::make_unique<ClientRing>(*engine_, ring_, std::move(setup));
  }

  void TearDown() override {
    client_.reset();
    engine_.reset();
    if (ring_up_) io_uring_queue_exit(&ring_);
  }

  // A file of the engine that holds a slot on the ring: one write through it, reaped.
  std::unique_ptr<File> file_with_slot(const std::string& path) {
    auto file = engine_->adopt(UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)));
    bool done = false;
    int64_t result = 0;
    const char data[] = "slot";
    engine_->write(*file, std::as_bytes(std::span(data)), 0, SyncKind::kNone, [&](int64_t res) {
      result = res;
      done = true;
    });
    while (!done) {
      client_->prep_pending();
      EXPECT_GE(io_uring_submit_and_wait(&ring_, 1), 0);
      io_uring_cqe* cqe = nullptr;
      unsigned head = 0;
      unsigned seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        if (ClientRing::owns(cqe->user_data)) client_->complete(cqe->user_data, cqe->res);
      }
      io_uring_cq_advance(&ring_, seen);
    }
    EXPECT_EQ(result, static_cast<int64_t>(sizeof data));
    EXPECT_TRUE(registered(path)) << "the write did not register the file";
    return file;
  }

  // Whether the ring's registered file table still holds `path` (its fdinfo lists them).
  bool registered(const std::string& path) const {
    std::ifstream info("/proc/self/fdinfo/" + std::to_string(ring_.ring_fd));
    for (std::string line; std::getline(info, line);) {
      if (line.find(path) != std::string::npos) return true;
    }
    return false;
  }

  TempDir dir_;
  io_uring ring_{};
  bool ring_up_ = false;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<ClientRing> client_;
  int wakes_ = 0;
  int given_back_ = 0;
  unsigned retiring_when_given_back_ = 0;
};

TEST_F(ClientRingTest, FileDestroyedOnTheOwner_GivesItsSlotBackAtOnce) {
  const std::string path = dir_ / "f";
  auto file = file_with_slot(path);
  file.reset();
  EXPECT_FALSE(registered(path)) << "the slot still holds the file";
  EXPECT_EQ(engine_->slots_retiring(), 0u);
  EXPECT_EQ(wakes_, 0);
  EXPECT_EQ(given_back_, 0);
}

TEST_F(ClientRingTest, FileDestroyedElsewhere_CountedUntilTheOwnerGivesItsSlotBack) {
  const std::string path = dir_ / "f";
  auto file = file_with_slot(path);
  std::thread([&] { file.reset(); }).join();
  EXPECT_TRUE(registered(path));
  EXPECT_EQ(engine_->slots_retiring(), 1u);
  EXPECT_EQ(wakes_, 1);
  client_->prep_pending();
  EXPECT_FALSE(registered(path));
  EXPECT_EQ(given_back_, 1);
  EXPECT_EQ(retiring_when_given_back_, 1u);
  EXPECT_EQ(engine_->slots_retiring(), 0u);
}

}  // namespace
}  // namespace fsysfs::engine
