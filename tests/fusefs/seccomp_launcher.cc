// Runs a program with io_uring denied, as a container's seccomp policy or an old kernel
// would: io_uring_setup(2) fails with the errno named in $FSYSFS_SECCOMP_ERRNO (EPERM, the
// default, or ENOSYS); every other syscall is allowed. The program is
// $FSYSFS_SECCOMP_TARGET, started with this launcher's own arguments, so a test can use
// the launcher wherever it would name the daemon binary.
//
// The filter is installed with PR_SET_NO_NEW_PRIVS, which needs no privilege and is kept
// across execve and by every thread the program starts.

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string_view>

namespace {

#if defined(__x86_64__)
constexpr unsigned kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kArch = AUDIT_ARCH_AARCH64;
#else
#error "seccomp_launcher: add the AUDIT_ARCH of this architecture"
#endif

bool deny_io_uring_setup(int err) {
  // Syscall numbers are per architecture: a call made through another ABI is allowed
  // rather than matched against the wrong number.
  sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & 0xffff)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog = {static_cast<unsigned short>(std::size(f)), f};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  (void)argc;
  const char* target = std::getenv("FSYSFS_SECCOMP_TARGET");
  if (target == nullptr || *target == '\0') {
    std::fprintf(stderr, "seccomp_launcher: FSYSFS_SECCOMP_TARGET is not set\n");
    return 127;
  }
  int err = EPERM;
  if (const char* e = std::getenv("FSYSFS_SECCOMP_ERRNO"); e != nullptr) {
    std::string_view name(e);
    if (name == "ENOSYS") {
      err = ENOSYS;
    } else if (name != "EPERM") {
      std::fprintf(stderr, "seccomp_launcher: FSYSFS_SECCOMP_ERRNO must be EPERM or ENOSYS\n");
      return 127;
    }
  }
  if (!deny_io_uring_setup(err)) {
    std::fprintf(stderr, "seccomp_launcher: cannot install the filter: %s\n", std::strerror(errno));
    return 126;
  }
  argv[0] = const_cast<char*>(target);
  execv(target, argv);
  std::fprintf(stderr, "seccomp_launcher: cannot run %s: %s\n", target, std::strerror(errno));
  return 127;
}
