#pragma once

// The default spdlog logger of the command. Components ("engine", "fusefs", "mount") copy
// its sinks and level when they first ask for their logger (fsysfs::component_logger), so
// it must be installed before anything logs.

#include <spdlog/common.h>
#include <spdlog/sinks/base_sink.h>

#include <mutex>
#include <string>
#include <vector>

namespace fsysfs::mount {

// Opens `path` for appending (creating it 0644). Done before daemonising, so that the user
// sees the error and a relative path is taken relative to where fsysfs was started.
// Every message is flushed as it is written. Throws Error.
spdlog::sink_ptr open_log_file(const std::string& path);
spdlog::sink_ptr make_stderr_sink();
spdlog::sink_ptr make_syslog_sink();

// Installs a logger named "fsysfs" over `sinks` as the default logger, logging at `level`.
// Error messages always reach sinks whose own level allows them (the startup error
// capture of the daemon) even with log_level=off.
void install_default_logger(const std::vector<spdlog::sink_ptr>& sinks,
                            spdlog::level::level_enum level);

// Collects the error-level messages logged until stop(), so that a daemon that fails
// before its mount is live can tell the waiting parent why. Thread-safe.
class StartupErrorSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  StartupErrorSink() { set_level(spdlog::level::err); }
  std::string errors();  // joined with "; "
  void stop();

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  bool stopped_ = false;  // guarded by base_sink::mutex_
  std::string errors_;    // guarded by base_sink::mutex_
};

}  // namespace fsysfs::mount
