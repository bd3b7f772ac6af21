#include "fusefs/control.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>
#include <variant>

#include "fusefs/crashsim.h"
#include "fusefs/filesystem.h"
#include "fusefs/stats_report.h"

namespace fsysfs::fusefs {
namespace {

struct stat control_attr_of(const Filesystem& fs) noexcept {
  static const time_t kBorn = std::time(nullptr);
  struct stat st;
  std::memset(&st, 0, sizeof st);
  st.st_ino = kControlIno;
  st.st_mode = S_IFREG | 0644;
  st.st_nlink = 1;
  st.st_uid = fs.owner();
  st.st_gid = ::getgid();
  st.st_blksize = 4096;
  st.st_atim.tv_sec = st.st_mtim.tv_sec = st.st_ctim.tv_sec = kBorn;
  return st;
}

bool may_change(fuse_req_t req) noexcept {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return ctx->uid == 0 || ctx->uid == fs_of(req).owner();
}

std::string faults_text(Filesystem& fs) {
  std::string out;
  for (const auto& r : fs.faults().rules()) {
    out += r.text;
    out += " (hits " + std::to_string(r.hits);
    if (r.remaining >= 0) out += ", left " + std::to_string(r.remaining);
    out += ")\n";
  }
  return out;
}

// The value of a readable attribute; nullopt-like empty result with -ENODATA for others.
int read_attr(Filesystem& fs, std::string_view name, std::string& out) {
  using namespace control_attr;
  if (name == kStats) {
    out = stats_text(fs);
  } else if (name == kStatsJson) {
    out = stats_json(fs);
  } else if (name == kDurability) {
    out = std::string(durability_name(fs.durability()));
  } else if (name == kDirsync) {
    out = std::string(dirsync_name(fs.dirsync_setting()));
  } else if (name == kFaults) {
    out = faults_text(fs);
  } else if (name == kOptions) {
    out = fs.config().options;
  } else if (name == kMount) {
    out = to_string(fs.refresh_mount());
  } else if (name == kCrash && fs.crashsim() != nullptr) {
    // What `fsysfs crash` needs to cut this mount off: the daemon and BACKING.
    out = std::to_string(::getpid()) + "\n" + fs.config().backing + "\n";
  } else {
    return -ENODATA;
  }
  return 0;
}

int write_attr(Filesystem& fs, std::string_view name, std::string_view value) {
  using namespace control_attr;
  if (name == kDurability) {
    auto d = parse_durability(value);
    if (!d) return -EINVAL;
    return fs.set_durability(*d);
  }
  if (name == kDirsync) {
    auto d = parse_dirsync(value);
    if (!d) return -EINVAL;
    fs.set_dirsync(*d);
    return 0;
  }
  if (name == kInject) {
    auto parsed = parse_fault_rule(value);
    if (auto* why = std::get_if<std::string>(&parsed)) {
      fs.log().warn("fault rule '{}' refused: {}", value, *why);
      return -EINVAL;
    }
    fs.log().info("fault rule added: {}", value);
    fs.faults().add(std::get<FaultRule>(std::move(parsed)));
    return 0;
  }
  if (name == kInjectClear) {
    fs.faults().clear();
    fs.log().info("fault rules cleared");
    return 0;
  }
  if (name == kStatsReset) {
    fs.fuse_stats().reset();
    fs.engine().reset_stats();
    fs.log().info("statistics reset");
    return 0;
  }
  return -ENOTSUP;
}

}  // namespace

bool is_control_name(fuse_ino_t parent, const char* name) noexcept {
  return parent == FUSE_ROOT_ID && name == kControlName;
}

bool is_control_name(Filesystem& fs, const Inode& parent, const char* name) noexcept {
  return &parent == &fs.inodes().root() && name == kControlName;
}

bool is_reserved_name(fuse_ino_t parent, const char* name) noexcept {
  return parent == FUSE_ROOT_ID && (name == kControlName || name == kCrashsimDir);
}

bool is_reserved_name(Filesystem& fs, const Inode& parent, const char* name) noexcept {
  return &parent == &fs.inodes().root() && (name == kControlName || name == kCrashsimDir);
}

void control_lookup(fuse_req_t req) noexcept {
  Filesystem& fs = fs_of(req);
  fuse_entry_param e;
  std::memset(&e, 0, sizeof e);
  e.ino = kControlIno;
  e.generation = 1;
  e.attr = control_attr_of(fs);
  e.attr_timeout = fs.config().attr_timeout;
  e.entry_timeout = fs.config().entry_timeout;
  fuse_reply_entry(req, &e);  // no reference to lose if the kernel drops it
}

void control_getattr(fuse_req_t req) noexcept {
  Filesystem& fs = fs_of(req);
  struct stat st = control_attr_of(fs);
  fuse_reply_attr(req, &st, fs.config().attr_timeout);
}

void control_access(fuse_req_t req, int mask) noexcept {
  int err = 0;
  if (mask & X_OK) err = EACCES;
  if ((mask & W_OK) && !may_change(req)) err = EACCES;
  reply_err(req, err);
}

void control_getxattr(fuse_req_t req, const char* name, size_t size) noexcept {
  Filesystem& fs = fs_of(req);
  std::string value;
  int rc = guarded([&] { return read_attr(fs, name, value); });
  if (rc < 0) {
    reply_err(req, -rc);
  } else if (size == 0) {
    fuse_reply_xattr(req, value.size());
  } else if (size < value.size()) {
    reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, value.data(), value.size());
  }
}

void control_setxattr(fuse_req_t req, const char* name, const char* value, size_t size) noexcept {
  if (!may_change(req)) {
    reply_err(req, EPERM);
    return;
  }
  Filesystem& fs = fs_of(req);
  int rc = guarded([&] { return write_attr(fs, name, std::string_view(value, size)); });
  reply_err(req, -rc);
}

void control_listxattr(fuse_req_t req, size_t size) noexcept {
  using namespace control_attr;
  std::string names;
  for (const char* n : {kStats, kStatsJson, kDurability, kDirsync, kFaults, kOptions, kMount}) {
    names += n;
    names += '\0';
  }
  if (size == 0) {
    fuse_reply_xattr(req, names.size());
  } else if (size < names.size()) {
    reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, names.data(), names.size());
  }
}

}  // namespace fsysfs::fusefs
