#include "fusefs/session.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/log.h"
#include "fusefs/crash_rollback.h"
#include "fusefs/device_io.h"
#include "fusefs/filesystem.h"
#include "fusefs/ops.h"
#include "fusefs/transport/uring_transport.h"

namespace fsysfs::fusefs {
namespace {

// libfuse's own messages go to the "fusefs" logger.
void fuse_log_to_spdlog(enum fuse_log_level level, const char* fmt, va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string msg(buf);
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  auto log = component_logger("fusefs");
  switch (level) {
    case FUSE_LOG_EMERG:
    case FUSE_LOG_ALERT:
    case FUSE_LOG_CRIT:
    case FUSE_LOG_ERR:
      log->error("libfuse: {}", msg);
      break;
    case FUSE_LOG_WARNING:
      log->warn("libfuse: {}", msg);
      break;
    case FUSE_LOG_NOTICE:
    case FUSE_LOG_INFO:
      log->info("libfuse: {}", msg);
      break;
    case FUSE_LOG_DEBUG:
      log->debug("libfuse: {}", msg);
      break;
  }
}

// fuse_opt splits -o values at commas; a backslash escapes one.
std::string escape_opt(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ',' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

struct Args {
  fuse_args args = FUSE_ARGS_INIT(0, nullptr);
  ~Args() { fuse_opt_free_args(&args); }
  bool add(const std::string& a) { return fuse_opt_add_arg(&args, a.c_str()) == 0; }
};

// libfuse 3.14 ends the session loop on a signal only when it interrupts the main thread's
// wait: its handler sets the exit flag and wakes nobody, so a signal taken by any other
// thread goes unnoticed while no request reaches a /dev/fuse worker (all of them, with the
// io_uring transport). Its workers block these signals for that reason; the threads this
// daemon starts inherit the same block from here, and the main thread alone lifts it to
// run the loop.
class ExitSignalsBlocked {
 public:
  ExitSignalsBlocked() noexcept {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGTERM}) sigaddset(&set, sig);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~ExitSignalsBlocked() { lift(); }
  ExitSignalsBlocked(const ExitSignalsBlocked&) = delete;
  ExitSignalsBlocked& operator=(const ExitSignalsBlocked&) = delete;

  // On this thread only; one that came meanwhile is taken now.
  void lift() noexcept {
    if (lifted_) return;
    lifted_ = true;
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
  bool lifted_ = false;
};

struct SessionDeleter {
  void operator()(fuse_session* se) const noexcept { fuse_session_destroy(se); }
};
using SessionPtr = std::unique_ptr<fuse_session, SessionDeleter>;

int serve_impl(const Config& config, const std::function<void()>& on_ready) {
  auto log = component_logger("fusefs");
  fuse_set_log_func(fuse_log_to_spdlog);
  // Before any thread is started (the engine's, the rings' owners).
  ExitSignalsBlocked exit_signals;
  // Creation modes arrive with the caller's umask applied by the kernel, or (POSIX ACLs)
  // the creating op applies it on its own thread (creds.h); never the daemon's.
  ::umask(0);

  std::unique_ptr<Filesystem> fs = Filesystem::create(config);
  if (!fs) return 1;

  // The kernel mount flags. libfuse asks for nosuid,nodev unless told dev and suid, and
  // passes noatime on (fusermount3 too); relatime is the kernel's default. strictatime and
  // nodiratime are set once mounted, with mount_setattr, which needs root.
  const bool root = ::geteuid() == 0;
  std::vector<std::string> dropped;
  const MountFlags flags = allowed_flags(config.mount_flags, config.backing, root, &dropped);
  for (const auto& why : dropped) log->info("{}", why);
  const bool atime_rule_after = flags.atime == Atime::kStrictatime || flags.nodiratime;
  if (atime_rule_after && !root) {
    log->error("strictatime and nodiratime need root (fusermount3 cannot set them)");
    return 1;
  }

  Args args;
  std::string opts = "fsname=" + escape_opt(config.backing) + ",subtype=fsysfs";
  if (config.allow_other) opts += ",allow_other";
  if (config.default_permissions) opts += ",default_permissions";
  if (flags.read_only) opts += ",ro";
  if (flags.no_exec) opts += ",noexec";
  if (flags.dev) opts += ",dev";
  if (flags.suid) opts += ",suid";
  if (flags.atime == Atime::kNoatime) opts += ",noatime";
  if (!args.add("fsysfs") || !args.add("-o") || !args.add(opts) ||
      (config.debug && !args.add("-d"))) {
    log->error("out of memory building the mount options");
    return 1;
  }

  // Declared after `fs`: the session (whose destroy callback sees the Filesystem) goes first.
  SessionPtr se(fuse_session_new(&args.args, &lowlevel_ops(), sizeof(fuse_lowlevel_ops), fs.get()));
  if (!se) {
    log->error("cannot create the FUSE session (options: {})", opts);
    return 1;
  }
  fs->set_session(se.get());
  if (fuse_set_signal_handlers(se.get()) != 0) {
    log->error("cannot install signal handlers");
    return 1;
  }
  if (fuse_session_mount(se.get(), config.mountpoint.c_str()) != 0) {
    log->error("cannot mount {} on {}", config.backing, config.mountpoint);
    fuse_remove_signal_handlers(se.get());
    return 1;
  }
  if (atime_rule_after) {
    if (int rc =
            set_atime_rule(AT_FDCWD, config.mountpoint.c_str(), 0, flags.atime, flags.nodiratime);
        rc < 0) {
      log->error("cannot give {} the access time rule {}: {}", config.mountpoint, to_string(flags),
                 std::strerror(-rc));
      fuse_session_unmount(se.get());
      fuse_remove_signal_handlers(se.get());
      return 1;
    }
  }
  // Before any request is served: opens follow the flags the kernel shows from the start.
  fs->watch_mount();
  limit_dirty_pages(fs->device(), config.dirty_limit, config.writeback_cache, *log);
  if (int rc = use_device_io(se.get()); rc != 0) {
    log->warn("cannot install the /dev/fuse hooks ({}): the kernel clears suid/sgid itself",
              std::strerror(-rc));
  }
  // After the mount: the command forks before serve(), so engine threads start here, in
  // the process that stays.
  if (fs->start_engine() < 0) {
    fuse_session_unmount(se.get());
    fuse_remove_signal_handlers(se.get());
    return 1;
  }
  // Set up before the loop reads INIT, whose reply decides the transport.
  std::unique_ptr<UringTransport> transport;
  if (config.transport != Transport::kDev) {
    std::string why;
    RingQueue::Params queue;
    queue.depth = config.uring_depth;
    queue.payload_size = kMaxWrite;
    queue.idle_priority = config.uring_idle_priority;
    queue.slots_given_back = [filesystem = fs.get()] { filesystem->space().let_go(); };
    transport = UringTransport::prepare(se.get(), fs->engine(), queue, &why);
    if (transport) {
      fs->set_uring_transport(transport.get());
    } else if (config.transport == Transport::kUring) {
      log->error("transport=uring: {}", why);
      fs->shutdown();
      fuse_session_unmount(se.get());
      fuse_remove_signal_handlers(se.get());
      return 1;
    } else {
      fs->transport_fallback(why);
    }
  }
  log->info("mounted {} on {}", config.backing, config.mountpoint);
  try {
    if (on_ready) on_ready();
  } catch (const std::exception& e) {
    log->error("start-up hook failed: {}; unmounting", e.what());
    fs->shutdown();
    fuse_session_unmount(se.get());
    fuse_remove_signal_handlers(se.get());
    return 1;
  }

  fuse_loop_config* loop = fuse_loop_cfg_create();
  if (loop == nullptr) {
    log->error("out of memory creating the loop configuration");
    fs->shutdown();
    fuse_session_unmount(se.get());
    fuse_remove_signal_handlers(se.get());
    return 1;
  }
  fuse_loop_cfg_set_clone_fd(loop, config.clone_fd ? 1 : 0);
  fuse_loop_cfg_set_max_threads(loop, config.worker_threads());
  if (config.threads > 0) fuse_loop_cfg_set_idle_threads(loop, config.threads);
  exit_signals.lift();
  int rc = fuse_session_loop_mt(se.get(), loop);
  fuse_loop_cfg_destroy(loop);

  // Every worker has returned and the connection is gone, which ends the ring owners too.
  // Close what the kernel left open and stop the engine while the session (and the rings)
  // can still carry the replies of in-flight writes and syncs.
  if (transport) transport->stop();
  fs->shutdown();
  // Nothing reaches BACKING any more: a crash asked for is simulated now.
  if (config.crashsim) end_crashsim(fs->inodes().root().fd.get(), *log);
  fs->set_uring_transport(nullptr);
  transport.reset();
  fuse_session_unmount(se.get());
  fuse_remove_signal_handlers(se.get());
  fs->set_session(nullptr);
  se.reset();

  if (rc < 0) {
    log->error("session loop failed: {}", std::strerror(-rc));
    return 1;
  }
  if (fs->transport_failed()) return 1;
  if (rc > 0)
    log->info("signal {}: unmounted {}", rc, config.mountpoint);
  else
    log->info("unmounted {}", config.mountpoint);
  return 0;
}

}  // namespace

const char* transport_name(Transport t) noexcept {
  switch (t) {
    case Transport::kAuto:
      return "auto";
    case Transport::kUring:
      return "uring";
    case Transport::kDev:
      return "dev";
  }
  return "?";
}

int serve(const Config& config, const std::function<void()>& on_ready) {
  try {
    return serve_impl(config, on_ready);
  } catch (const std::exception& e) {
    component_logger("fusefs")->error("serve failed: {}", e.what());
    return 1;
  }
}

}  // namespace fsysfs::fusefs
