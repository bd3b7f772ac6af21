#include "fusefs/filesystem.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "engine/log.h"
#include "engine/nvme.h"

namespace fsysfs::fusefs {

std::unique_ptr<Filesystem> Filesystem::create(const Config& config) noexcept {
  auto log = component_logger("fusefs");
  try {
    UniqueFd fd(::open(config.backing.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
      log->error("cannot open backing directory {}: {}", config.backing, std::strerror(errno));
      return nullptr;
    }
    struct stat st;
    if (::fstatat(fd.get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
      log->error("cannot stat backing directory {}: {}", config.backing, std::strerror(errno));
      return nullptr;
    }
    BackingHandles handles;
    if (config.handle_cache > 0) {
      std::string why;
      handles = BackingHandles::probe(fd.get(), &why);
      if (!handles.enabled()) {
        log->info(
            "no backing file handles ({}): handles of the mount go stale once the kernel "
            "forgets an inode",
            why);
      }
    }
    auto root =
        std::make_unique<Inode>(FUSE_ROOT_ID, std::move(fd), st.st_dev, st.st_ino, S_IFDIR, 0);
    root->nlookup.store(1);
    return std::make_unique<Filesystem>(config, std::move(root), std::move(handles));
  } catch (const std::exception& e) {
    log->error("cannot set the filesystem up: {}", e.what());
    return nullptr;
  }
}

Filesystem::Filesystem(const Config& config, std::unique_ptr<Inode> root, BackingHandles handles)
    : config_(config),
      log_(component_logger("fusefs")),
      inodes_(std::move(root), std::move(handles), config.handle_cache),
      durability_(config.durability),
      dirsync_(config.dirsync),
      owner_(::getuid()) {}

Filesystem::~Filesystem() { shutdown(); }

int Filesystem::start_engine() noexcept {
  try {
    engine::Options options = config_.engine;
    options.max_inline_waits = std::min(options.max_inline_waits, config_.worker_threads() - 1);
    if (options.nvme_flush) {
      if (!options.nvme) {
        options.nvme = std::make_shared<engine::NvmeRegistry>(engine::NvmeRegistry::Config{});
      }
      nvme_ = options.nvme;
      // Probed now, so stats show the backing device before the first sync.
      nvme_->lookup(inodes_.root().dev);
    }
    engine_ = std::make_unique<engine::Engine>(options);
    log_->info("engine up: backend {}; durability={}, dirsync={}", engine_->backend_name(),
               durability_name(durability()), dirsync() ? "on" : "off");
    return 0;
  } catch (const std::exception& e) {
    log_->error("cannot start the engine: {}", e.what());
    return -EIO;
  }
}

void Filesystem::shutdown() noexcept {
  std::unordered_set<FileHandle*> files;
  std::unordered_set<DirHandle*> dirs;
  {
    std::lock_guard lock(handles_mu_);
    files.swap(files_);
    dirs.swap(dirs_);
  }
  if (!files.empty() || !dirs.empty()) {
    log_->info("closing {} file and {} directory handles left open", files.size(), dirs.size());
  }
  for (FileHandle* h : files) delete h;
  for (DirHandle* h : dirs) delete h;
  engine_.reset();
}

void Filesystem::fill_entry(const Inode& inode, fuse_entry_param* e) const noexcept {
  e->ino = inodes_.id_of(inode);
  e->generation = inode.generation;
  e->attr_timeout = config_.attr_timeout;
  e->entry_timeout = config_.entry_timeout;
}

int Filesystem::entry_for(UniqueFd path_fd, fuse_entry_param* e) noexcept {
  std::memset(e, 0, sizeof *e);
  if (::fstatat(path_fd.get(), "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
    return -errno;
  }
  Inode* inode = inodes_.find_or_insert(std::move(path_fd), e->attr);
  if (inode == nullptr) return -ENOMEM;
  fill_entry(*inode, e);
  return 0;
}

int Filesystem::lookup(Inode& parent, const char* name, fuse_entry_param* e) noexcept {
  if (std::strcmp(name, ".") == 0) return lookup_node(inodes_.id_of(parent), e);
  // ".." of the backing root would lead out of the tree.
  if (std::strcmp(name, "..") == 0 && &parent == &inodes_.root()) {
    UniqueFd fd(::fcntl(parent.fd.get(), F_DUPFD_CLOEXEC, 0));
    if (!fd) return -errno;
    return entry_for(std::move(fd), e);
  }
  UniqueFd fd(::openat(parent.fd.get(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return -errno;
  return entry_for(std::move(fd), e);
}

int Filesystem::lookup_node(fuse_ino_t ino, fuse_entry_param* e) noexcept {
  std::memset(e, 0, sizeof *e);
  Inode* inode = nullptr;
  if (int rc = inodes_.find_by_id(ino, &inode); rc < 0) return rc;
  if (::fstatat(inode->fd.get(), "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
    const int err = -errno;
    inodes_.forget(ino, 1);
    return err;
  }
  fill_entry(*inode, e);
  return 0;
}

FileHandle* Filesystem::add_file(UniqueFd fd, Inode& inode, int open_flags) noexcept {
  try {
    auto h = std::make_unique<FileHandle>();
    h->inode = &inode;
    h->writable = (open_flags & O_ACCMODE) != O_RDONLY;
    // With the writeback cache, writes arrive as page writeback through any handle, and
    // the kernel's fsync after an O_DSYNC write pushes them first.
    if (!writeback() && (open_flags & O_DSYNC) != 0) {
      h->write_sync =
          (open_flags & O_SYNC) == O_SYNC ? engine::SyncKind::kFull : engine::SyncKind::kData;
    }
    h->errors_seen.store(inode.sync_errors.sample(), std::memory_order_relaxed);
    if ((open_flags & O_DIRECT) != 0) {
      h->direct = true;
      if (h->writable) {
        // A new open file description of the same file; O_DIRECT is not carried over.
        const int mode = ::fcntl(fd.get(), F_GETFL) & O_ACCMODE;
        UniqueFd cached(::open(ProcPath(fd.get()).c_str(), mode | O_CLOEXEC));
        if (!cached) return nullptr;
        h->cached_file = engine_->adopt(std::move(cached));
      }
    }
    h->file = engine_->adopt(std::move(fd));
    std::lock_guard lock(handles_mu_);
    files_.insert(h.get());
    return h.release();
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

int Filesystem::invalidate_pages(const Inode& inode, off_t off, off_t len) noexcept {
  fuse_session* se = session_.load(std::memory_order_acquire);
  if (se == nullptr) return 0;
  int rc = fuse_lowlevel_notify_inval_inode(se, inodes_.id_of(inode), off, len);
  // ENOENT: the kernel has no such inode cached, so no pages either.
  return rc == -ENOENT ? 0 : rc;
}

void Filesystem::release_file(FileHandle* h) noexcept {
  {
    std::lock_guard lock(handles_mu_);
    files_.erase(h);
  }
  delete h;  // waits for in-flight engine ops on it
}

DirHandle* Filesystem::add_dir(std::unique_ptr<DirHandle> h) noexcept {
  try {
    std::lock_guard lock(handles_mu_);
    dirs_.insert(h.get());
    return h.release();
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

void Filesystem::release_dir(DirHandle* h) noexcept {
  {
    std::lock_guard lock(handles_mu_);
    dirs_.erase(h);
  }
  delete h;
}

int Filesystem::set_durability(Durability d) noexcept {
  if (d == Durability::kStrict && writeback()) {
    log_->warn("durability=strict refused: the mount uses the kernel writeback cache");
    return -EINVAL;
  }
  Durability old = durability_.exchange(d, std::memory_order_relaxed);
  log_->info("durability {} -> {}", durability_name(old), durability_name(d));
  return 0;
}

void Filesystem::set_dirsync(DirSync d) noexcept {
  DirSync old = dirsync_.exchange(d, std::memory_order_relaxed);
  log_->info("dirsync {} -> {} (now {})", dirsync_name(old), dirsync_name(d),
             dirsync() ? "on" : "off");
}

std::vector<engine::NvmeStatus> Filesystem::nvme_status() const {
  if (!nvme_) return {};
  return nvme_->status();
}

std::string Filesystem::path_of(const Inode& inode, const char* name) const {
  std::string path;
  if (inodes_.id_of(inode) != FUSE_ROOT_ID) {
    char buf[PATH_MAX];
    ssize_t n = ::readlink(ProcPath(inode.fd.get()).c_str(), buf, sizeof buf);
    if (n > 0) path.assign(buf, static_cast<size_t>(n));
    const std::string& root = config_.backing;
    if (path.starts_with(root) &&
        (root == "/" || path.size() == root.size() || path[root.size()] == '/')) {
      path.erase(0, root == "/" ? 0 : root.size());
    }
  }
  if (name != nullptr) {
    path += '/';
    path += name;
  }
  return path.empty() ? "/" : path;
}

int Filesystem::inject(FaultOp op, const Inode& inode, const char* name) noexcept {
  if (!faults_.armed(op)) return 0;
  return guarded([&] {
    auto hit = faults_.match(op, path_of(inode, name));
    if (!hit) return 0;
    stats_.count(SyncEvent::kFault);
    log_->debug("fault: {} {} -> delay {} ms, errno {}", fault_op_name(op), path_of(inode, name),
                hit->delay_ms, hit->error);
    if (hit->delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(hit->delay_ms));
    return hit->error;
  });
}

int Filesystem::dir_sync_file(Inode& dir, engine::File** file) noexcept {
  return guarded([&] {
    std::lock_guard lock(dir.dir_sync_mu);
    if (!dir.dir_sync_file) {
      UniqueFd fd(::open(ProcPath(dir.fd.get()).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!fd) return -errno;
      dir.dir_sync_file = engine_->adopt(std::move(fd));
    }
    *file = dir.dir_sync_file.get();
    return 0;
  });
}

void Filesystem::sync_parents(Inode& a, Inode* b, std::function<void(int)> done) noexcept {
  if (!dirsync()) {
    done(0);
    return;
  }
  sync_dirs(a, b == &a ? nullptr : b, std::move(done));
}

void Filesystem::sync_dirs(Inode& first, Inode* second, std::function<void(int)> done) noexcept {
  engine::File* file = nullptr;
  int rc = dir_sync_file(first, &file);
  if (rc == 0) {
    stats_.count(SyncEvent::kDir);
    rc = guarded([&] {
      engine_->sync(*file, engine::SyncKind::kFull, [this, second, done](int64_t res) noexcept {
        if (res < 0 || second == nullptr) {
          done(res < 0 ? static_cast<int>(res) : 0);
        } else {
          sync_dirs(*second, nullptr, done);
        }
      });
      return 0;
    });
  }
  if (rc < 0) done(rc);
}

void Filesystem::sync_and_reply(fuse_req_t req, Inode& inode, engine::File& file, FileHandle* h,
                                int datasync) noexcept {
  const FaultOp fault_op = h == nullptr ? FaultOp::kFsyncdir
                           : datasync   ? FaultOp::kFdatasync
                                        : FaultOp::kFsync;
  // Answers like the kernel: the sync's own error first, else one another handle hit.
  auto finish = [req, &inode, h](int64_t res) noexcept {
    int err = res < 0 ? static_cast<int>(-res) : 0;
    if (h != nullptr) {
      if (err != 0) {
        inode.sync_errors.record(err, h->errors_seen);
      } else {
        err = inode.sync_errors.check(h->errors_seen);
      }
    }
    reply_err(req, err);
  };
  if (int err = inject(fault_op, inode); err != 0) {
    finish(-err);
    return;
  }
  if (durability() == Durability::kNone) {
    stats_.count(SyncEvent::kSkipped);
    finish(0);
    return;
  }
  // Only file data is tracked: a directory's entries change without a data write.
  if (h != nullptr && datasync && inode.data.clean()) {
    stats_.count(SyncEvent::kElided);
    finish(0);
    return;
  }
  stats_.count(SyncEvent::kIssued);
  const uint64_t sample = inode.data.sample();
  int rc = guarded([&] {
    engine_->sync(file, datasync ? engine::SyncKind::kData : engine::SyncKind::kFull,
                  [finish, &inode, h, sample](int64_t res) noexcept {
                    if (res >= 0 && h != nullptr) inode.data.durable(sample);
                    finish(res);
                  });
    return 0;
  });
  if (rc < 0) finish(rc);
}

}  // namespace fsysfs::fusefs
