#include "mount/paths.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "engine/unique_fd.h"
#include "mount/error.h"

namespace fsysfs::mount {
namespace {

constexpr std::string_view kFstype = "fuse.fsysfs";

std::string errno_text(int err) { return std::strerror(err); }

std::string canonical(const std::string& path, std::string_view what) {
  std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(path.c_str(), nullptr),
                                                       &std::free);
  if (!resolved) {
    throw Error(fmt::format("cannot resolve {} '{}': {}", what, path, errno_text(errno)));
  }
  return resolved.get();
}

}  // namespace

bool is_same_or_inside(std::string_view path, std::string_view dir) {
  if (!path.starts_with(dir)) return false;
  if (path.size() == dir.size()) return true;
  return dir.ends_with('/') || path[dir.size()] == '/';
}

MountPaths validate_paths(std::string_view backing_arg, std::string_view mountpoint_arg) {
  const std::string backing(backing_arg);
  const std::string mountpoint(mountpoint_arg);

  struct stat st {};
  if (::stat(backing.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) throw Error(fmt::format("backing directory '{}' does not exist", backing));
    throw Error(fmt::format("cannot access backing directory '{}': {}", backing, errno_text(err)));
  }
  if (!S_ISDIR(st.st_mode)) {
    throw Error(fmt::format("backing '{}' is not a directory", backing));
  }
  if (::faccessat(AT_FDCWD, backing.c_str(), R_OK | X_OK, AT_EACCESS) != 0) {
    throw Error(fmt::format("backing directory '{}' is not readable and searchable: {}", backing,
                            errno_text(errno)));
  }

  if (::stat(mountpoint.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) throw Error(fmt::format("mount point '{}' does not exist", mountpoint));
    if (err == ENOTCONN) {
      throw Error(fmt::format(
          "mount point '{}' is a FUSE mount whose daemon has gone (run fusermount3 -u {})",
          mountpoint, mountpoint));
    }
    throw Error(fmt::format("cannot access mount point '{}': {}", mountpoint, errno_text(err)));
  }
  if (!S_ISDIR(st.st_mode)) {
    throw Error(fmt::format("mount point '{}' is not a directory", mountpoint));
  }

  MountPaths paths{canonical(backing, "backing directory"), canonical(mountpoint, "mount point")};
  // Serving a tree that contains the mount point would have the daemon call into its own
  // mount and deadlock.
  if (paths.backing == paths.mountpoint) {
    throw Error(fmt::format("backing directory and mount point are the same directory ('{}')",
                            paths.backing));
  }
  if (is_same_or_inside(paths.mountpoint, paths.backing)) {
    throw Error(fmt::format("mount point '{}' is inside the backing directory '{}'",
                            paths.mountpoint, paths.backing));
  }
  if (is_same_or_inside(paths.backing, paths.mountpoint)) {
    throw Error(fmt::format("backing directory '{}' is inside the mount point '{}'", paths.backing,
                            paths.mountpoint));
  }
  if (is_fsysfs_mount(paths.mountpoint)) {
    throw Error(fmt::format("'{}' is already an fsysfs mount", paths.mountpoint));
  }
  return paths;
}

namespace {

std::vector<MountInfoEntry> read_mountinfo() {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  return parse_mountinfo(text.str());
}

}  // namespace

bool is_fsysfs_mount(std::string_view mountpoint) {
  for (const auto& entry : read_mountinfo()) {
    if (entry.mountpoint == mountpoint && entry.fstype == kFstype) return true;
  }
  return false;
}

std::optional<MountInfoEntry> top_mount_at(std::string_view mountpoint) {
  std::optional<MountInfoEntry> top;
  for (auto& entry : read_mountinfo()) {
    if (entry.mountpoint == mountpoint) top = std::move(entry);  // later lines are on top
  }
  return top;
}

void check_fuse_device(const char* device) {
  UniqueFd fd(::open(device, O_RDWR | O_CLOEXEC));
  if (!fd) {
    throw Error(
        fmt::format("cannot open {}: {} (is the fuse module loaded?)", device, errno_text(errno)));
  }
}

}  // namespace fsysfs::mount
