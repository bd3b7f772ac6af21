#include "fusefs/filesystem.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/log.h"
#include "engine/nvme.h"
#include "fusefs/blocking_pool.h"
#include "fusefs/crash_rollback.h"
#include "fusefs/crashsim.h"
#include "fusefs/transport/uring_transport.h"

namespace fsysfs::fusefs {
namespace {

// As many as libfuse's workers: each may be held as long as a worker could be.
constexpr unsigned kBlockingThreads = Config::kDefaultThreads;

}  // namespace

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
    std::unique_ptr<CrashSim> crashsim;
    if (config.crashsim) {
      std::string why;
      crashsim = CrashSim::start(fd.get(), &why);
      if (!crashsim) {
        log->error("crashsim: {}", why);
        return nullptr;
      }
    }
    auto root =
        std::make_unique<Inode>(FUSE_ROOT_ID, std::move(fd), st.st_dev, st.st_ino, S_IFDIR, 0);
    root->nlookup.store(1);
    auto fs = std::make_unique<Filesystem>(config, std::move(root), std::move(handles));
    fs->crashsim_ = std::move(crashsim);
    return fs;
  } catch (const std::exception& e) {
    log->error("cannot set the filesystem up: {}", e.what());
    return nullptr;
  }
}

Filesystem::Filesystem(const Config& config, std::unique_ptr<Inode> root, BackingHandles handles)
    : config_(config),
      log_(component_logger("fusefs")),
      // On /dev/fuse the FUSE workers wait: one must be left to read what they wait for.
      space_(
          config.worker_threads() - 1, [this] { return removed_held(); },
          [this] {
            struct statvfs sv;
            if (::fstatvfs(inodes_.root().fd.get(), &sv) != 0) return uint64_t{0};
            return static_cast<uint64_t>(sv.f_bavail);
          }),
      inodes_(std::move(root), std::move(handles), config.handle_cache, &space_),
      durability_(config.durability),
      dirsync_(config.dirsync),
      owner_(::getuid()),
      mount_flags_(config.mount_flags) {}

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
  blocking_.reset();  // runs what is queued
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

namespace {

std::string read_mountinfo() {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Adds or drops O_NOATIME on an open fd (fcntl F_SETFL may change it); best effort: the
// kernel refuses it to a non-owner without CAP_FOWNER.
void set_noatime(int fd, bool on) noexcept {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0 || ((fl & O_NOATIME) != 0) == on) return;
  ::fcntl(fd, F_SETFL, on ? (fl | O_NOATIME) : (fl & ~O_NOATIME));
}

}  // namespace

int Filesystem::watch_mount() noexcept {
  try {
    std::lock_guard lock(mount_mu_);
    // Opened before reading, so that no change after the read goes unnoticed.
    mountinfo_.reset(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
    if (!mountinfo_) {
      log_->warn("cannot open /proc/self/mountinfo ({}): mount flags are not followed",
                 std::strerror(errno));
      return -errno;
    }
    const MountInfoEntry* found = nullptr;
    auto entries = parse_mountinfo(read_mountinfo());
    for (const auto& e : entries) {
      if (e.mountpoint == config_.mountpoint && e.fstype == "fuse.fsysfs") found = &e;
    }
    if (found == nullptr) {
      mountinfo_.reset();
      log_->warn("{} is not in /proc/self/mountinfo: mount flags are not followed",
                 config_.mountpoint);
      return -ENOENT;
    }
    mount_id_ = found->id;
    device_ = found->device;
    if (size_t colon = found->device.find(':'); colon != std::string::npos) {
      connection_ = std::stoi(found->device.substr(colon + 1));
    }
    const MountFlags flags = flags_of(*found);
    log_->info("mount flags {}", to_string(flags));
    apply_mount_flags(flags);
    return 0;
  } catch (const std::exception& e) {
    log_->warn("cannot read the mount's flags: {}", e.what());
    return -ENOMEM;
  }
}

void Filesystem::follow_mount() noexcept {
  if (!mountinfo_) return;
  pollfd p{mountinfo_.get(), POLLPRI, 0};
  // POLLERR|POLLPRI once per change of this mount namespace's table, whichever mount.
  if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLPRI | POLLERR)) != 0) refresh_mount();
}

MountFlags Filesystem::refresh_mount() noexcept {
  try {
    std::lock_guard lock(mount_mu_);
    if (mount_id_ == 0) return mount_flags();
    for (const auto& e : parse_mountinfo(read_mountinfo())) {
      if (e.id != mount_id_) continue;
      const MountFlags flags = flags_of(e);
      const MountFlags old = mount_flags();
      if (!(flags == old)) {
        log_->info("mount flags {} -> {}", to_string(old), to_string(flags));
        apply_mount_flags(flags);
      }
      break;
    }
  } catch (const std::exception& e) {
    log_->warn("cannot read the mount's flags: {}", e.what());
  }
  return mount_flags();
}

void Filesystem::apply_mount_flags(const MountFlags& flags) {
  const MountFlags old = mount_flags();
  if (reads_move_atime(flags) && !view_ready_.load(std::memory_order_acquire) && !view_failed_) {
    // A detached copy of the mount BACKING's root is on, with its root there.
    UniqueFd tree(::open_tree(inodes_.root().fd.get(), "",
                              AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    UniqueFd dir;
    struct stat st;
    if (tree) dir.reset(::openat(tree.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!tree || !dir || ::fstat(dir.get(), &st) != 0) {
      view_failed_ = true;
      log_->warn(
          "strictatime: cannot copy BACKING's mount ({}; root only): reads move atime as "
          "BACKING's own mount says",
          std::strerror(errno));
    } else {
      view_tree_ = std::move(tree);
      view_dir_ = std::move(dir);
      view_dev_ = st.st_dev;
    }
  }
  if (view_tree_) {
    // A read of a read-only mount never moves atime.
    const Atime rule = flags.read_only ? Atime::kNoatime : flags.atime;
    if (int rc = set_atime_rule(view_tree_.get(), "", AT_EMPTY_PATH, rule, flags.nodiratime);
        rc < 0) {
      log_->warn("cannot set the access time rule of the strictatime view: {}", std::strerror(-rc));
    } else {
      view_ready_.store(true, std::memory_order_release);
    }
  }
  mount_flags_.store(flags, std::memory_order_relaxed);
  // Files and directories already open follow too, as they would on a native mount.
  const bool files = reads_keep_atime(flags, false);
  const bool dirs = reads_keep_atime(flags, true);
  if (files == reads_keep_atime(old, false) && dirs == reads_keep_atime(old, true)) return;
  std::lock_guard lock(handles_mu_);
  for (FileHandle* h : files_) {
    set_noatime(h->fd(), files);
    if (h->cached_file) set_noatime(h->cached_file->fd(), files);
  }
  for (DirHandle* h : dirs_) set_noatime(dirfd(h->dir), dirs);
}

int Filesystem::open_in_view(const Inode& inode, int flags) noexcept {
  if (!view_ready_.load(std::memory_order_acquire) || inode.dev != view_dev_) return -EXDEV;
  alignas(file_handle) unsigned char buf[sizeof(file_handle) + MAX_HANDLE_SZ];
  auto* handle = reinterpret_cast<file_handle*>(buf);
  handle->handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  if (::name_to_handle_at(inode.fd.get(), "", handle, &mount_id, AT_EMPTY_PATH) != 0) {
    return -errno;
  }
  int fd = ::open_by_handle_at(view_dir_.get(), handle, flags);
  return fd >= 0 ? fd : -errno;
}

int Filesystem::open_backing(const Inode& inode, int flags) noexcept {
  const MountFlags mf = mount_flags();
  if (reads_move_atime(mf)) {
    // Elsewhere (another filesystem below BACKING, no file handles): BACKING's own rule.
    if (int fd = open_in_view(inode, flags); fd >= 0) return fd;
  }
  const ProcPath path(inode.fd.get());
  if (reads_keep_atime(mf, (flags & O_DIRECTORY) != 0)) {
    int fd = ::open(path.c_str(), flags | O_NOATIME);
    // EPERM: neither the owner nor CAP_FOWNER; the read then moves atime as BACKING's
    // own mount says.
    if (fd >= 0 || errno != EPERM) return fd >= 0 ? fd : -errno;
  }
  int fd = ::open(path.c_str(), flags);
  return fd >= 0 ? fd : -errno;
}

int Filesystem::create_flags() const noexcept {
  return reads_keep_atime(mount_flags(), false) ? O_NOATIME : 0;
}

int Filesystem::invalidate_pages(const Inode& inode, off_t off, off_t len) noexcept {
  fuse_session* se = session_.load(std::memory_order_acquire);
  if (se == nullptr) return 0;
  int rc = fuse_lowlevel_notify_inval_inode(se, inodes_.id_of(inode), off, len);
  // ENOENT: the kernel has no such inode cached, so no pages either.
  return rc == -ENOENT ? 0 : rc;
}

bool Filesystem::run_blocking(std::function<void()> work) noexcept {
  if (!RingQueue::on_owner_thread()) {
    work();
    return true;
  }
  return blocking_->run(std::move(work));
}

void Filesystem::retry_full(int rc, uint64_t sample, const std::function<int()>& attempt,
                            const std::function<void(int)>& answer) noexcept {
  bool queued = false;
  try {
    queued = run_blocking([this, rc, sample, attempt, answer]() noexcept {
      answer(attempt_while_full(rc, sample, attempt));
    });
  } catch (...) {
  }
  if (!queued) answer(rc);
}

int Filesystem::attempt_while_full(int rc, uint64_t sample,
                                   const std::function<int()>& attempt) noexcept {
  const auto deadline = SpaceReturn::Clock::now() + SpaceReturn::kWait;
  while (SpaceReturn::full(rc) && space_.wait(sample, deadline)) {
    stats_.count(SyncEvent::kSpaceRetry);
    sample = space_.sample();
    rc = attempt();
  }
  return rc;
}

SpaceReturn::Held Filesystem::removed_held() {
  SpaceReturn::Held held;
  inodes_.removed_held(&held.files);
  if (engine_) held.ring_slots = engine_->slots_retiring();
  return held;
}

void Filesystem::start_uring_transport() noexcept {
  UringTransport* t = uring_transport();
  if (t == nullptr) return;
  int rc = -ENOMEM;
  try {
    blocking_ = std::make_unique<BlockingPool>(kBlockingThreads);
    rc = t->start([this] { return faults_.delays(); }, blocking_.get());
  } catch (const std::exception& e) {
    log_->error("cannot start the blocking pool: {}", e.what());
  }
  if (rc == -ENOTCONN || rc == -ENODEV) {
    // Unmounted before the rings were up: the session loop ends by itself, cleanly.
    log_->info("the mount went away before the io_uring transport started");
    set_uring_transport(nullptr);
    return;
  }
  if (rc < 0) {
    log_->error("FUSE over io_uring accepted at INIT but could not start ({}): unmounting",
                std::strerror(-rc));
    transport_failed_.store(true);
    set_uring_transport(nullptr);
    // libfuse's handler ends the session loop; serve() unmounts and exits non-zero. To the
    // process, not this thread: a libfuse worker (this one) blocks it (session.cc).
    ::kill(::getpid(), SIGTERM);
    return;
  }
  log_->info("transport: FUSE over io_uring, {} queues of {} entries", t->queue_count(),
             t->depth());
}

void Filesystem::transport_fallback(std::string why) noexcept {
  set_uring_transport(nullptr);
  if (config_.transport == Transport::kUring) {
    log_->error("transport=uring: {}; unmounting", why);
    transport_failed_.store(true);
    ::kill(::getpid(), SIGTERM);
  } else {
    log_->info("transport: /dev/fuse ({})", why);
  }
  std::lock_guard lock(transport_mu_);
  transport_why_ = std::move(why);
}

std::string Filesystem::transport_status() const {
  // Cleared on fallback; no request (stats included) is served before INIT settled it.
  if (uring_transport() != nullptr) return "io_uring";
  std::lock_guard lock(transport_mu_);
  if (transport_why_.empty()) return "/dev/fuse";
  return "/dev/fuse (" + transport_why_ + ")";
}

int Filesystem::invalidate_attrs(const Inode& inode) noexcept {
  // A negative offset invalidates no page, so the kernel takes no lock the request in
  // flight may hold.
  return invalidate_pages(inode, -1, 0);
}

void Filesystem::release_file(FileHandle* h) noexcept {
  SpaceReturn::Dropping dropping(&space_);
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
  if (crashsim_) {
    if (crashed_.load(std::memory_order_acquire)) return EIO;
    crash_ops_.fetch_add(1, std::memory_order_relaxed);
  }
  if (!faults_.armed(op)) return 0;
  return guarded([&] {
    auto hit = faults_.match(op, path_of(inode, name));
    if (!hit) return 0;
    stats_.count(SyncEvent::kFault);
    if (hit->crash != CrashPoint::kNone) {
      const std::string cause = fmt::format("crash point: {} request {}, {} {}",
                                            hit->crash == CrashPoint::kBefore ? "before" : "after",
                                            crash_ops_.load(std::memory_order_relaxed),
                                            fault_op_name(op), path_of(inode, name));
      log_->warn("{}", cause);
      crash_now(hit->plan, cause);
      return hit->crash == CrashPoint::kBefore ? EIO : 0;
    }
    log_->debug("fault: {} {} -> delay {} ms, errno {}", fault_op_name(op), path_of(inode, name),
                hit->delay_ms, hit->error);
    if (hit->delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(hit->delay_ms));
    return hit->error;
  });
}

void Filesystem::crash_now(const CrashPlan& plan, const std::string& cause) noexcept {
  if (crashed_.exchange(true, std::memory_order_acq_rel)) return;
  guarded([&] {
    const std::string dir_name(kCrashsimDir);
    UniqueFd dir(::openat(inodes_.root().fd.get(), dir_name.c_str(),
                          O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    const int rc = dir ? request_crash(dir.get(), plan, cause) : -errno;
    if (rc < 0) {
      log_->error("crash point: cannot leave the crash request: {}", std::strerror(-rc));
    }
    // The same cut as `fsysfs crash`: the kernel ends every request and sends no more.
    const std::string abort_file = fmt::format("/sys/fs/fuse/connections/{}/abort", connection_);
    UniqueFd fd(::open(abort_file.c_str(), O_WRONLY | O_CLOEXEC));
    if (connection_ < 0 || !fd || ::write(fd.get(), "1", 1) != 1) {
      log_->error("crash point: cannot abort the connection through {}: {}", abort_file,
                  std::strerror(errno));
    }
    return 0;
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
    const uint64_t seq = crashsim_ ? crashsim_->sync_point(first.fd.get()) : 0;
    rc = guarded([&] {
      engine_->sync(*file, engine::SyncKind::kFull,
                    [this, &first, seq, second, done](int64_t res) noexcept {
                      if (res >= 0 && crashsim_) crashsim_->dir_synced(first.fd.get(), seq);
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
  const uint64_t seq = crashsim_ ? crashsim_->sync_point(inode.fd.get()) : 0;
  int rc = guarded([&] {
    engine_->sync(file, datasync ? engine::SyncKind::kData : engine::SyncKind::kFull,
                  [this, finish, &inode, h, sample, seq](int64_t res) noexcept {
                    if (res >= 0 && h != nullptr) inode.data.durable(sample);
                    if (res >= 0 && crashsim_) {
                      if (h != nullptr) {
                        crashsim_->file_synced(inode.fd.get(), seq);
                      } else {
                        crashsim_->dir_synced(inode.fd.get(), seq);
                      }
                    }
                    finish(res);
                  });
    return 0;
  });
  if (rc < 0) finish(rc);
}

}  // namespace fsysfs::fusefs
