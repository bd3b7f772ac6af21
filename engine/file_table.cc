#include "engine/file_table.h"

namespace fsysfs::engine {

FileTable::FileTable(unsigned size) : size_(size) {
  free_.reserve(size);
  for (int i = static_cast<int>(size) - 1; i >= 0; --i) free_.push_back(i);
}

int FileTable::alloc() noexcept {
  if (free_.empty()) return -1;
  int s = free_.back();
  free_.pop_back();
  used_.fetch_add(1, std::memory_order_relaxed);
  return s;
}

void FileTable::free(int slot) noexcept {
  free_.push_back(slot);
  used_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace fsysfs::engine
