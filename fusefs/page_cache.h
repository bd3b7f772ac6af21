#pragma once

// Whether the kernel may keep an inode's cached pages when a file is opened again
// (FOPEN_KEEP_CACHE). The kernel's page cache follows every change made through the mount;
// what it cannot see is a change made to BACKING directly. So the pages are kept when the
// backing file's size and mtime are what they were when the kernel last had the whole
// picture: at the previous open, or when the last handle that wrote through the mount was
// released. A change made directly to BACKING between those points is caught at the next
// open; one made while the file is open is caught when the kernel refreshes the attributes
// (FUSE_AUTO_INVAL_DATA), within attr_timeout.

#include <sys/stat.h>

#include <mutex>

namespace fsysfs::fusefs {

class PageCacheStamp {
 public:
  // At open, with the backing file's current attributes: true when the cached pages may
  // be kept. Records `st` as what the kernel's cache reflects from now on.
  bool keep_at_open(const struct stat& st) noexcept {
    std::lock_guard lock(mu_);
    const bool same = valid_ && st.st_size == size_ && st.st_mtim.tv_sec == mtime_.tv_sec &&
                      st.st_mtim.tv_nsec == mtime_.tv_nsec;
    record(st);
    return same;
  }

  // After writes made through the mount have completed: their effect is in the kernel's
  // cache, so the attributes they left are not a change the kernel missed.
  void written(const struct stat& st) noexcept {
    std::lock_guard lock(mu_);
    record(st);
  }

 private:
  void record(const struct stat& st) noexcept {
    valid_ = true;
    size_ = st.st_size;
    mtime_ = st.st_mtim;
  }

  std::mutex mu_;
  bool valid_ = false;  // guarded by mu_
  off_t size_ = 0;
  struct timespec mtime_ {};
};

}  // namespace fsysfs::fusefs
