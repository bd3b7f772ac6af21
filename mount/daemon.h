#pragma once

// Running the filesystem: in the foreground, or as a daemon whose parent returns only once
// the mount is live (or fails with the daemon's reason).

#include <sys/types.h>

#include <functional>

#include "fusefs/session.h"
#include "mount/options.h"

namespace fsysfs::mount {

// fusefs::serve, or a stand-in in tests.
using ServeFn = std::function<int(const fusefs::Config&, const std::function<void()>&)>;

// Logs to stderr (and log_file), serves until unmounted, and returns the exit status: 0
// after a clean unmount, else non-zero. Throws Error if the log file cannot be opened.
int run_foreground(const Settings& settings, const ServeFn& serve);

// Forks a daemon (new session, cwd "/", stdio on /dev/null, logging to log_file or syslog)
// that serves the mount. Returns the daemon's pid once it reports the mount live. Throws
// Error with the daemon's own message if it fails first. The calling process must not
// have started any thread: the engine and FUSE threads are started inside `serve`, in the
// daemon. The daemon never returns from this function; it exits with serve's status.
pid_t run_daemon(const Settings& settings, const ServeFn& serve);

}  // namespace fsysfs::mount
