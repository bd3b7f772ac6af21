#include "tests/fusefs/tracefs.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>

namespace fsysfs::test {
namespace {

constexpr const char* kTracefs = "/sys/kernel/tracing";

bool is_tracefs(const char* path) {
  struct statfs st;
  return ::statfs(path, &st) == 0 && st.f_type == TRACEFS_MAGIC;
}

}  // namespace

std::string TraceEvent::field(std::string_view key) const {
  // Bodies look like "ring 0000..., req ..., opcode WRITE, flags 0x4, sq_thread 0".
  std::string needle = std::string(key) + " ";
  size_t pos = 0;
  while ((pos = body.find(needle, pos)) != std::string::npos) {
    if (pos == 0 || body[pos - 1] == ' ') {
      size_t start = pos + needle.size();
      size_t end = body.find(',', start);
      return body.substr(start, end == std::string::npos ? std::string::npos : end - start);
    }
    pos += needle.size();
  }
  return "";
}

std::string TraceInstance::tracefs_root(std::string* why_not) {
  if (is_tracefs(kTracefs)) return kTracefs;
  if (::mount("nodev", kTracefs, "tracefs", 0, nullptr) == 0 && is_tracefs(kTracefs)) {
    return kTracefs;
  }
  *why_not = std::string("tracefs is not mounted and mount -t tracefs nodev ") + kTracefs +
             " failed: " + std::strerror(errno);
  return "";
}

TraceInstance::TraceInstance(const std::string& root, const std::string& name) {
  std::string dir = root + "/instances/" + name;
  // A crashed earlier run may have left an instance of the same name behind.
  ::rmdir(dir.c_str());
  if (::mkdir(dir.c_str(), 0700) != 0) {
    error_ = "mkdir " + dir + ": " + std::strerror(errno);
    return;
  }
  dir_ = dir;
  // Per-CPU buffers big enough that nothing of a test's window is overwritten, and a clock
  // that orders events of different CPUs.
  for (auto [file, value] : {std::pair{"tracing_on", "0"}, std::pair{"buffer_size_kb", "8192"},
                             std::pair{"trace_clock", "global"}}) {
    if (int rc = write(file, value); rc < 0) {
      error_ = std::string("cannot set ") + file + ": " + std::strerror(-rc);
    }
  }
  marker_fd_ = ::open((dir_ + "/trace_marker").c_str(), O_WRONLY | O_CLOEXEC);
  if (marker_fd_ < 0) error_ = std::string("trace_marker: ") + std::strerror(errno);
}

TraceInstance::~TraceInstance() {
  if (marker_fd_ >= 0) ::close(marker_fd_);
  if (dir_.empty()) return;
  write("tracing_on", "0");
  for (const auto& e : enabled_) {
    write("events/" + e + "/enable", "0");
    write("events/" + e + "/filter", "0");
  }
  ::rmdir(dir_.c_str());
}

int TraceInstance::write(const std::string& file, const std::string& value) const {
  int fd = ::open((dir_ + "/" + file).c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = 0;
  if (::write(fd, value.data(), value.size()) != static_cast<ssize_t>(value.size())) rc = -errno;
  ::close(fd);
  return rc;
}

bool TraceInstance::has_event(const std::string& event) const {
  return ::access((dir_ + "/events/" + event + "/enable").c_str(), W_OK) == 0;
}

int TraceInstance::enable(const std::string& event) {
  int rc = write("events/" + event + "/enable", "1");
  if (rc == 0) enabled_.push_back(event);
  return rc;
}

int TraceInstance::set_filter(const std::string& event, const std::string& filter) {
  return write("events/" + event + "/filter", filter);
}

int TraceInstance::start() {
  // Opening `trace` with O_TRUNC empties the instance's buffer.
  if (int rc = write("trace", ""); rc < 0) return rc;
  return write("tracing_on", "1");
}

int TraceInstance::stop() { return write("tracing_on", "0"); }

void TraceInstance::mark(const std::string& text) {
  if (marker_fd_ >= 0) (void)!::write(marker_fd_, text.data(), text.size());
}

std::vector<TraceEvent> TraceInstance::events() const {
  // "  comm-pid  [cpu] flags  ts: name: body"; comm may hold '-' and spaces, the flags
  // column is absent without the irq-info option. Syscall events print differently:
  // "sys_fsync(fd: 3)" on entry, "sys_fsync -> 0x0" on exit.
  static const std::regex kLine(
      R"(^\s*(.*)-(\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[\d+\]\s+(?:\S+\s+)?\d+\.\d+:\s+(.*)$)");
  static const std::regex kEvent(R"(^(\w+):\s?(.*)$)");
  static const std::regex kSysEnter(R"(^sys_(\w+)\((.*)\)$)");
  static const std::regex kSysExit(R"(^sys_(\w+) -> (.*)$)");
  std::vector<TraceEvent> out;
  std::ifstream in(dir_ + "/trace");
  std::string line;
  std::smatch m;
  std::smatch ev;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (!std::regex_match(line, m, kLine)) continue;
    TraceEvent e;
    e.comm = m[1];
    e.pid = static_cast<pid_t>(std::stol(m[2]));
    const std::string rest = m[3];
    if (std::regex_match(rest, ev, kSysEnter)) {
      e.name = "sys_enter_" + ev[1].str();
    } else if (std::regex_match(rest, ev, kSysExit)) {
      e.name = "sys_exit_" + ev[1].str();
    } else if (!std::regex_match(rest, ev, kEvent)) {
      continue;
    } else {
      e.name = ev[1];
    }
    e.body = ev[2];
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace fsysfs::test
