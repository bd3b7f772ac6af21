#include "tests/fusefs/parity.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

namespace fsysfs::test {

std::string errno_name(int e) {
  const char* n = strerrorname_np(e);
  return n != nullptr ? n : "errno " + std::to_string(e);
}

long Recorder::rc(const std::string& what, long r, bool value) {
  int e = errno;
  if (r < 0) {
    lines.push_back(what + " -> " + errno_name(e));
  } else if (value) {
    lines.push_back(what + " -> " + std::to_string(r));
  } else {
    lines.push_back(what + " -> ok");
  }
  errno = e;
  return r;
}

void Recorder::stat_fields(const std::string& what, const struct stat& st) {
  std::ostringstream s;
  s << what << " -> mode " << std::oct << st.st_mode << std::dec << " nlink " << st.st_nlink
    << " size " << st.st_size << " uid " << st.st_uid << " gid " << st.st_gid;
  if (S_ISREG(st.st_mode)) s << " blocks>0 " << (st.st_blocks > 0);
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) s << " rdev " << st.st_rdev;
  lines.push_back(s.str());
}

void Recorder::stat(const std::string& what, const std::string& rel) {
  struct stat st;
  if (::lstat(p(rel).c_str(), &st) != 0) {
    lines.push_back(what + " -> " + errno_name(errno));
    return;
  }
  stat_fields(what, st);
}

void Recorder::stat_fd(const std::string& what, int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    lines.push_back(what + " -> " + errno_name(errno));
    return;
  }
  stat_fields(what, st);
}

void Recorder::note(const std::string& what, const std::string& value) {
  lines.push_back(what + " -> " + value);
}

void Recorder::content(const std::string& what, const std::string& rel) {
  int fd = ::open(p(rel).c_str(), O_RDONLY);
  if (fd < 0) {
    lines.push_back(what + " -> " + errno_name(errno));
    return;
  }
  std::string data;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
  if (n < 0) data = "read error " + errno_name(errno);
  ::close(fd);
  lines.push_back(what + " -> [" + std::to_string(data.size()) + "] " + data.substr(0, 200));
}

void expect_parity(const std::string& plain_root, const std::string& mount_root,
                   const Scenario& s) {
  Recorder plain(plain_root), mounted(mount_root);
  s(plain);
  s(mounted);
  EXPECT_FALSE(plain.lines.empty());
  size_t n = std::max(plain.lines.size(), mounted.lines.size());
  for (size_t i = 0; i < n; ++i) {
    std::string a = i < plain.lines.size() ? plain.lines[i] : "<missing>";
    std::string b = i < mounted.lines.size() ? mounted.lines[i] : "<missing>";
    EXPECT_EQ(a, b) << "record " << i << " (plain vs mount)";
  }
}

void run_as(Recorder& r, uid_t uid, gid_t gid, const Scenario& s,
            const std::vector<gid_t>& groups) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(pipefd[0]);
    Recorder child(r.root());
    if (setgroups(groups.size(), groups.data()) != 0 || setgid(gid) != 0 || setuid(uid) != 0)
      _exit(3);
    s(child);
    std::string out;
    for (auto& l : child.lines) out += l + '\n';
    const char* p = out.data();
    size_t left = out.size();
    while (left > 0) {
      ssize_t n = write(pipefd[1], p, left);
      if (n <= 0) _exit(4);
      p += n;
      left -= static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(pipefd[1]);
  std::string in;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) in.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  std::istringstream ss(in);
  std::string line;
  while (std::getline(ss, line)) r.lines.push_back("[uid " + std::to_string(uid) + "] " + line);
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return "<" + errno_name(errno) + ">";
  std::string data;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return data;
}

void write_file(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  ASSERT_EQ(::close(fd), 0);
}

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

char pattern_byte(uint64_t stream, uint64_t off) {
  return static_cast<char>(mix(stream * 0x9e3779b97f4a7c15ULL + off / 8) >> ((off % 8) * 8));
}

std::string pattern(uint64_t stream, uint64_t off, size_t len) {
  std::string out(len, '\0');
  for (size_t i = 0; i < len; ++i) out[i] = pattern_byte(stream, off + i);
  return out;
}

}  // namespace fsysfs::test
