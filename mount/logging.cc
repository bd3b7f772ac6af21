#include "mount/logging.h"

#include <fcntl.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>

#include "engine/unique_fd.h"
#include "mount/error.h"

namespace fsysfs::mount {
namespace {

constexpr const char* kPattern = "[%Y-%m-%d %H:%M:%S.%e] [%n] [%l] %v";

// Appends each message with one write(2) on an O_APPEND descriptor: nothing is buffered
// (component loggers do not inherit a flush level, and the log of a daemon that is killed
// must still hold what it said), and lines from several processes do not interleave.
class AppendFileSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit AppendFileSink(UniqueFd fd) : fd_(std::move(fd)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    std::string_view rest(line.data(), line.size());
    while (!rest.empty()) {
      ssize_t n = ::write(fd_.get(), rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // a full disk must not stop the filesystem
      rest.remove_prefix(static_cast<size_t>(n));
    }
  }
  void flush_() override {}

 private:
  UniqueFd fd_;
};

}  // namespace

spdlog::sink_ptr open_log_file(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd) throw Error(fmt::format("cannot open log file '{}': {}", path, std::strerror(errno)));
  auto sink = std::make_shared<AppendFileSink>(std::move(fd));
  sink->set_pattern(kPattern);
  return sink;
}

spdlog::sink_ptr make_stderr_sink() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_pattern(kPattern);
  return sink;
}

spdlog::sink_ptr make_syslog_sink() {
  // syslog adds the time, host and pid itself.
  auto sink = std::make_shared<spdlog::sinks::syslog_sink_mt>("fsysfs", LOG_PID, LOG_DAEMON,
                                                              /*enable_formatting=*/true);
  sink->set_pattern("[%n] %v");
  return sink;
}

void install_default_logger(const std::vector<spdlog::sink_ptr>& sinks,
                            spdlog::level::level_enum level) {
  for (const auto& sink : sinks) {
    if (!std::dynamic_pointer_cast<StartupErrorSink>(sink)) sink->set_level(level);
  }
  // Component loggers made earlier copied the old sinks; they are made again on demand.
  spdlog::drop_all();
  auto logger = std::make_shared<spdlog::logger>("fsysfs", sinks.begin(), sinks.end());
  logger->set_level(std::min(level, spdlog::level::err));
  spdlog::set_default_logger(std::move(logger));
}

std::string StartupErrorSink::errors() {
  std::lock_guard lock(mutex_);
  return errors_;
}

void StartupErrorSink::stop() {
  std::lock_guard lock(mutex_);
  stopped_ = true;
}

void StartupErrorSink::sink_it_(const spdlog::details::log_msg& msg) {
  if (stopped_) return;
  // A failure is often logged twice, cause then consequence ("libfuse: ...", "cannot mount
  // ..."); the parent shows both.
  if (!errors_.empty()) errors_ += "; ";
  errors_.append(msg.payload.begin(), msg.payload.end());
}

}  // namespace fsysfs::mount
