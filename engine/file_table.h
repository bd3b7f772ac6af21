#pragma once

#include <atomic>
#include <vector>

namespace fsysfs::engine {

// Free-slot bookkeeping for the sparse registered file table. Ring owner thread only,
// except used(), which any thread may read for stats.
class FileTable {
 public:
  explicit FileTable(unsigned size);
  int alloc() noexcept;  // a free slot, or -1 when the table is full
  void free(int slot) noexcept;
  unsigned size() const noexcept { return size_; }
  unsigned used() const noexcept { return used_.load(std::memory_order_relaxed); }

 private:
  unsigned size_;
  std::vector<int> free_;
  std::atomic<unsigned> used_{0};
};

}  // namespace fsysfs::engine
