#include "tests/fusefs/tracefs.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

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

namespace {

bool is_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// One line of `trace`: "  comm-pid  [cpu] flags  ts: event". comm may hold '-' and
// spaces; the flags column is absent without the irq-info option. Events print as
// "name: body", syscall events as "sys_fsync(fd: 3)" on entry, "sys_fsync -> 0x0" on exit.
// (Hand-parsed: GCC 12 reports false maybe-uninitialized warnings inside std::regex.)
bool parse_line(const std::string& line, TraceEvent* e) {
  size_t cpu = line.find(" [");
  while (cpu != std::string::npos) {
    size_t close = line.find(']', cpu);
    if (close != std::string::npos && close > cpu + 2 &&
        std::all_of(line.begin() + static_cast<long>(cpu) + 2,
                    line.begin() + static_cast<long>(close),
                    [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
      break;
    }
    cpu = line.find(" [", cpu + 1);
  }
  if (cpu == std::string::npos) return false;
  std::string task = line.substr(0, cpu);
  if (size_t paren = task.rfind('('); paren != std::string::npos) task.erase(paren);  // tgid
  while (!task.empty() && task.back() == ' ') task.pop_back();
  size_t dash = task.rfind('-');
  if (dash == std::string::npos || dash + 1 >= task.size()) return false;
  e->comm = task.substr(task.find_first_not_of(' '), dash - task.find_first_not_of(' '));
  e->pid = static_cast<pid_t>(std::atol(task.c_str() + dash + 1));
  // The timestamp is the first token ending in ':' after the CPU column.
  size_t ts_end = line.find(": ", line.find(']', cpu));
  if (ts_end == std::string::npos) return false;
  std::string rest = line.substr(ts_end + 2);
  size_t i = 0;
  while (i < rest.size() && is_word(rest[i])) ++i;
  if (i == 0 || i == rest.size()) return false;
  const std::string word = rest.substr(0, i);
  if (rest[i] == ':') {
    e->name = word;
    e->body = rest.substr(rest.size() > i + 1 && rest[i + 1] == ' ' ? i + 2 : i + 1);
  } else if (word.starts_with("sys_") && rest[i] == '(' && rest.back() == ')') {
    e->name = "sys_enter_" + word.substr(4);
    e->body = rest.substr(i + 1, rest.size() - i - 2);
  } else if (word.starts_with("sys_") && rest.compare(i, 4, " -> ") == 0) {
    e->name = "sys_exit_" + word.substr(4);
    e->body = rest.substr(i + 4);
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::vector<TraceEvent> TraceInstance::events() const {
  std::vector<TraceEvent> out;
  std::ifstream in(dir_ + "/trace");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    TraceEvent e;
    if (parse_line(line, &e)) out.push_back(std::move(e));
  }
  return out;
}

}  // namespace fsysfs::test
