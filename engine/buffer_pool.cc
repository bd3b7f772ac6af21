#include "engine/buffer_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <new>
#include <utility>

namespace fsysfs::engine {

Buffer::Buffer(Buffer&& o) noexcept
    : pool_(std::exchange(o.pool_, nullptr)),
      index_(std::exchange(o.index_, -1)),
      data_(std::exchange(o.data_, nullptr)),
      capacity_(std::exchange(o.capacity_, 0)) {}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    if (pool_) pool_->release(index_);
    pool_ = std::exchange(o.pool_, nullptr);
    index_ = std::exchange(o.index_, -1);
    data_ = std::exchange(o.data_, nullptr);
    capacity_ = std::exchange(o.capacity_, 0);
  }
  return *this;
}

Buffer::~Buffer() {
  if (pool_) pool_->release(index_);
}

BufferPool::BufferPool(unsigned count, size_t size) : count_(count) {
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_ = (size + page - 1) / page * page;
  if (count_ == 0 || size_ == 0) {
    count_ = 0;
    return;
  }
  void* p =
      ::mmap(nullptr, count_ * size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  base_ = static_cast<std::byte*>(p);
  free_.reserve(count_);
  for (int i = static_cast<int>(count_) - 1; i >= 0; --i) free_.push_back(i);
}

BufferPool::~BufferPool() {
  if (base_) ::munmap(base_, count_ * size_);
}

Buffer BufferPool::acquire() noexcept {
  std::lock_guard lock(mu_);
  if (free_.empty()) return {};
  int i = free_.back();
  free_.pop_back();
  return Buffer(this, i, base_ + static_cast<size_t>(i) * size_, size_);
}

void BufferPool::release(int index) noexcept {
  std::lock_guard lock(mu_);
  free_.push_back(index);
}

unsigned BufferPool::in_use() const noexcept {
  std::lock_guard lock(mu_);
  return count_ - static_cast<unsigned>(free_.size());
}

std::vector<iovec> BufferPool::iovecs() const {
  std::vector<iovec> v(count_);
  for (unsigned i = 0; i < count_; ++i) v[i] = {base_ + i * size_, size_};
  return v;
}

}  // namespace fsysfs::engine
