#include "fusefs/filesystem.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "engine/log.h"

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
    auto root = std::make_unique<Inode>(std::move(fd), st.st_dev, st.st_ino, S_IFDIR, 0);
    root->nlookup.store(1);
    return std::make_unique<Filesystem>(config, std::move(root));
  } catch (const std::exception& e) {
    log->error("cannot set the filesystem up: {}", e.what());
    return nullptr;
  }
}

Filesystem::Filesystem(const Config& config, std::unique_ptr<Inode> root)
    : config_(config), log_(component_logger("fusefs")), inodes_(std::move(root)) {}

Filesystem::~Filesystem() { shutdown(); }

int Filesystem::start_engine() noexcept {
  try {
    engine_ = std::make_unique<engine::Engine>(config_.engine);
    log_->info("engine up: backend {}", engine_->backend_name());
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

int Filesystem::entry_for(UniqueFd path_fd, fuse_entry_param* e) noexcept {
  std::memset(e, 0, sizeof *e);
  if (::fstatat(path_fd.get(), "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
    return -errno;
  }
  Inode* inode = inodes_.find_or_insert(std::move(path_fd), e->attr);
  if (inode == nullptr) return -ENOMEM;
  e->ino = inodes_.id_of(*inode);
  e->generation = inode->generation;
  e->attr_timeout = config_.attr_timeout;
  e->entry_timeout = config_.entry_timeout;
  return 0;
}

int Filesystem::lookup(Inode& parent, const char* name, fuse_entry_param* e) noexcept {
  // ".." of the backing root would lead out of the tree; "." needs no open.
  const bool dot = std::strcmp(name, ".") == 0;
  const bool dotdot = std::strcmp(name, "..") == 0;
  if (dot || (dotdot && &parent == &inodes_.root())) {
    UniqueFd fd(::fcntl(parent.fd.get(), F_DUPFD_CLOEXEC, 0));
    if (!fd) return -errno;
    return entry_for(std::move(fd), e);
  }
  UniqueFd fd(::openat(parent.fd.get(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return -errno;
  return entry_for(std::move(fd), e);
}

FileHandle* Filesystem::add_file(UniqueFd fd) noexcept {
  try {
    auto h = std::make_unique<FileHandle>();
    h->file = engine_->adopt(std::move(fd));
    std::lock_guard lock(handles_mu_);
    files_.insert(h.get());
    return h.release();
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
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

void sync_and_reply(fuse_req_t req, engine::Engine& engine, engine::File& file,
                    int datasync) noexcept {
  int rc = guarded([&] {
    engine.sync(
        file, datasync ? engine::SyncKind::kData : engine::SyncKind::kFull,
        [req](int64_t res) noexcept { fuse_reply_err(req, res < 0 ? static_cast<int>(-res) : 0); });
    return 0;
  });
  if (rc < 0) fuse_reply_err(req, -rc);
}

}  // namespace fsysfs::fusefs
