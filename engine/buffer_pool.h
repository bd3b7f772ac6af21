#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <mutex>
#include <vector>

#include "engine/engine.h"

namespace fsysfs::engine {

// A fixed set of page-aligned buffers (one mmap), leased as Buffer objects. A buffer goes
// back to the free list only when its Buffer is destroyed, which for a write happens after
// the kernel completed it: a buffer in flight is never handed out again. Thread-safe.
class BufferPool {
 public:
  BufferPool(unsigned count, size_t size);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  Buffer acquire() noexcept;  // empty when all are leased
  unsigned count() const noexcept { return count_; }
  size_t buffer_size() const noexcept { return size_; }
  unsigned in_use() const noexcept;
  // For io_uring_register_buffers.
  std::vector<iovec> iovecs() const;

 private:
  friend class Buffer;
  void release(int index) noexcept;

  unsigned count_;
  size_t size_;
  std::byte* base_ = nullptr;
  mutable std::mutex mu_;
  std::vector<int> free_;  // guarded by mu_
};

}  // namespace fsysfs::engine
