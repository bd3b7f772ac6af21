// Randomised differential test: a seeded generator drives long sequences of file system
// operations identically against a plain directory and against the mount, and every
// result (return value, errno, bytes read, stat fields) must match step by step. At the
// end the two trees, and then the mount's backing directory after unmounting, must be
// equal byte for byte.
//
// The seed comes from $FSYSFS_DIFF_SEED when set, else a fixed default plus two more; it
// is printed with every failure so a run can be replayed.

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"

namespace fsysfs::test {
namespace {

constexpr int kOpsPerSeed = 2000;
constexpr int kSlots = 4;
// Sparse writes land up to this far out; every file is read in full at the end.
constexpr off_t kFarOffset = 4 << 20;

// A small pool of names in a few directories, so collisions and errors happen often.
// The directories themselves are names from the pool and come and go with mkdir/rmdir.
const std::array<const char*, 4> kPrefixes = {"", "x/", "y/", "x/z/"};
const std::array<const char*, 6> kNames = {"a", "b", "x", "y", "z", "l"};

std::vector<uint64_t> seeds() {
  if (const char* env = std::getenv("FSYSFS_DIFF_SEED"); env != nullptr && *env != '\0') {
    return {std::strtoull(env, nullptr, 0)};
  }
  return {20261125, 1, 0xfeedbeef};
}

// One tree the sequence runs on, with the fds it holds open.
struct Side {
  std::string root;
  std::array<int, kSlots> fds;

  explicit Side(std::string r) : root(std::move(r)) { fds.fill(-1); }
  ~Side() { close_all(); }
  void close_all() {
    for (int& fd : fds) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }
  std::string p(const std::string& rel) const { return root + "/" + rel; }
};

std::string res(long r) { return r < 0 ? errno_name(errno) : std::to_string(r); }

std::string stat_text(const struct stat& st) {
  std::ostringstream s;
  s << "mode " << std::oct << st.st_mode << std::dec << " nlink " << st.st_nlink;
  // Directory sizes are a detail of the backing file system's history, not of the data.
  if (!S_ISDIR(st.st_mode)) s << " size " << st.st_size;
  return s.str();
}

std::string lstat_text(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return errno_name(errno);
  return stat_text(st);
}

std::string fstat_text(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return errno_name(errno);
  return stat_text(st);
}

// Bytes are compared in full; the message shows where they first differ.
std::string describe_difference(const std::string& a, const std::string& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  std::ostringstream s;
  s << "sizes " << a.size() << " vs " << b.size() << ", first difference at byte " << i;
  return s.str();
}

using Op = std::function<std::string(Side&)>;

struct Step {
  std::string what;
  Op run;
};

// Draws one operation; all randomness is consumed here, so both sides run the same op.
class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  Step next() {
    switch (pick(20)) {
      case 0:
      case 1:
        return open_op();
      case 2:
      case 3:
        return write_op();
      case 4:
      case 5:
        return pwrite_op();
      case 6:
      case 7:
        return read_op();
      case 8:
        return truncate_op();
      case 9:
        return rename_op();
      case 10:
        return link_or_symlink_op();
      case 11:
        return unlink_op();
      case 12:
        return mkdir_rmdir_op();
      case 13:
        return sync_op();
      case 14:
        return mmap_op();
      case 15:
        return chmod_op();
      case 16:
        return stat_op();
      case 17:
        return close_op();
      case 18:
        return lseek_op();
      default:
        return readlink_op();
    }
  }

 private:
  int pick(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }
  std::string path() {
    return std::string(kPrefixes[pick(kPrefixes.size())]) + kNames[pick(kNames.size())];
  }
  std::string data(size_t n) {
    std::string d(n, '\0');
    char base = static_cast<char>('A' + pick(26));
    for (size_t i = 0; i < n; ++i) d[i] = static_cast<char>(base + static_cast<char>(i % 7));
    return d;
  }
  off_t offset() {
    switch (pick(4)) {
      case 0:
        return 0;
      case 1:
        return pick(256);
      case 2:
        return pick(20000);
      default:
        return static_cast<off_t>(rng_() % kFarOffset);  // sparse
    }
  }
  size_t length() { return pick(3) == 0 ? static_cast<size_t>(pick(70000)) : pick(600); }

  Step open_op() {
    static const std::array<std::pair<int, const char*>, 8> kFlags = {{
        {O_RDWR | O_CREAT, "RDWR|CREAT"},
        {O_RDWR | O_CREAT | O_TRUNC, "RDWR|CREAT|TRUNC"},
        {O_WRONLY | O_CREAT | O_APPEND, "WRONLY|CREAT|APPEND"},
        {O_RDWR | O_APPEND, "RDWR|APPEND"},
        {O_RDONLY, "RDONLY"},
        {O_WRONLY | O_TRUNC, "WRONLY|TRUNC"},
        {O_RDWR | O_CREAT | O_EXCL, "RDWR|CREAT|EXCL"},
        {O_RDONLY | O_DIRECTORY, "RDONLY|DIRECTORY"},
    }};
    int slot = pick(kSlots);
    // Copied out of the pair: a lambda may capture a structured binding only from C++20
    // compilers newer than clang 14.
    const auto& [flag_bits, name] = kFlags[pick(kFlags.size())];
    const int flags = flag_bits;
    std::string p = path();
    mode_t mode = pick(2) ? 0644 : 0600;
    return {"open " + p + " " + name + " slot " + std::to_string(slot), [=](Side& s) {
              if (s.fds[slot] >= 0) ::close(s.fds[slot]);
              s.fds[slot] = ::open(s.p(p).c_str(), flags | O_CLOEXEC, mode);
              if (s.fds[slot] < 0) return errno_name(errno);
              return "ok " + fstat_text(s.fds[slot]);
            }};
  }
  Step write_op() {
    int slot = pick(kSlots);
    std::string d = data(length());
    return {"write slot " + std::to_string(slot) + " len " + std::to_string(d.size()),
            [=](Side& s) {
              if (s.fds[slot] < 0) return std::string("no fd");
              std::string r = res(::write(s.fds[slot], d.data(), d.size()));
              return r + " pos " + res(::lseek(s.fds[slot], 0, SEEK_CUR)) + " " +
                     fstat_text(s.fds[slot]);
            }};
  }
  Step pwrite_op() {
    int slot = pick(kSlots);
    std::string d = data(length());
    off_t off = offset();
    return {"pwrite slot " + std::to_string(slot) + " len " + std::to_string(d.size()) + " at " +
                std::to_string(off),
            [=](Side& s) {
              if (s.fds[slot] < 0) return std::string("no fd");
              return res(::pwrite(s.fds[slot], d.data(), d.size(), off)) + " " +
                     fstat_text(s.fds[slot]);
            }};
  }
  Step read_op() {
    int slot = pick(kSlots);
    size_t len = length();
    off_t off = offset();
    bool positional = pick(2) == 0;
    return {std::string(positional ? "pread" : "read") + " slot " + std::to_string(slot) + " len " +
                std::to_string(len) + " at " + std::to_string(off),
            [=](Side& s) {
              if (s.fds[slot] < 0) return std::string("no fd");
              std::string buf(len, '\0');
              ssize_t n = positional ? ::pread(s.fds[slot], buf.data(), len, off)
                                     : ::read(s.fds[slot], buf.data(), len);
              if (n < 0) return errno_name(errno);
              buf.resize(static_cast<size_t>(n));
              return std::to_string(n) + " bytes:" + buf;
            }};
  }
  Step truncate_op() {
    off_t len = pick(3) == 0 ? static_cast<off_t>(rng_() % kFarOffset) : pick(5000);
    if (pick(2) == 0) {
      std::string p = path();
      return {"truncate " + p + " to " + std::to_string(len), [=](Side& s) {
                return res(::truncate(s.p(p).c_str(), len)) + " " + lstat_text(s.p(p));
              }};
    }
    int slot = pick(kSlots);
    return {"ftruncate slot " + std::to_string(slot) + " to " + std::to_string(len), [=](Side& s) {
              if (s.fds[slot] < 0) return std::string("no fd");
              return res(::ftruncate(s.fds[slot], len)) + " " + fstat_text(s.fds[slot]);
            }};
  }
  Step rename_op() {
    std::string a = path(), b = path();
    static const std::array<std::pair<unsigned, const char*>, 4> kFlags = {{
        {0, "rename"},
        {0, "rename"},
        {RENAME_NOREPLACE, "rename NOREPLACE"},
        {RENAME_EXCHANGE, "rename EXCHANGE"},
    }};
    const auto& [flag_bits, name] = kFlags[pick(kFlags.size())];
    const unsigned flags = flag_bits;
    return {std::string(name) + " " + a + " -> " + b, [=](Side& s) {
              return res(::renameat2(AT_FDCWD, s.p(a).c_str(), AT_FDCWD, s.p(b).c_str(), flags)) +
                     " " + lstat_text(s.p(a)) + " / " + lstat_text(s.p(b));
            }};
  }
  Step link_or_symlink_op() {
    std::string a = path(), b = path();
    if (pick(2) == 0) {
      return {"link " + a + " -> " + b, [=](Side& s) {
                return res(::link(s.p(a).c_str(), s.p(b).c_str())) + " " + lstat_text(s.p(a)) +
                       " / " + lstat_text(s.p(b));
              }};
    }
    // A relative target, so both trees resolve it inside themselves.
    std::string target = kNames[pick(kNames.size())];
    return {"symlink " + b + " -> " + target, [=](Side& s) {
              return res(::symlink(target.c_str(), s.p(b).c_str())) + " " + lstat_text(s.p(b));
            }};
  }
  Step unlink_op() {
    std::string p = path();
    return {"unlink " + p,
            [=](Side& s) { return res(::unlink(s.p(p).c_str())) + " " + lstat_text(s.p(p)); }};
  }
  Step mkdir_rmdir_op() {
    std::string p = path();
    if (pick(2) == 0) {
      return {"mkdir " + p, [=](Side& s) {
                return res(::mkdir(s.p(p).c_str(), 0755)) + " " + lstat_text(s.p(p));
              }};
    }
    return {"rmdir " + p,
            [=](Side& s) { return res(::rmdir(s.p(p).c_str())) + " " + lstat_text(s.p(p)); }};
  }
  Step sync_op() {
    int slot = pick(kSlots);
    bool data_only = pick(2) == 0;
    return {std::string(data_only ? "fdatasync" : "fsync") + " slot " + std::to_string(slot),
            [=](Side& s) {
              if (s.fds[slot] < 0) return std::string("no fd");
              return res(data_only ? ::fdatasync(s.fds[slot]) : ::fsync(s.fds[slot]));
            }};
  }
  Step mmap_op() {
    int slot = pick(kSlots);
    uint64_t where = rng_();
    size_t len = 1 + static_cast<size_t>(pick(9000));
    char fill = static_cast<char>('a' + pick(26));
    return {"mmap shared write slot " + std::to_string(slot) + " len " + std::to_string(len) +
                " fill " + fill,
            [=](Side& s) {
              int fd = s.fds[slot];
              if (fd < 0) return std::string("no fd");
              struct stat st;
              if (::fstat(fd, &st) != 0) return "fstat " + errno_name(errno);
              if (st.st_size == 0) return std::string("empty");
              // A page inside the file; only bytes before EOF are touched.
              const long page = ::sysconf(_SC_PAGESIZE);
              off_t pages = (st.st_size + page - 1) / page;
              off_t off = static_cast<off_t>(where % static_cast<uint64_t>(pages)) * page;
              size_t n = std::min<size_t>(len, static_cast<size_t>(st.st_size - off));
              void* m = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
              if (m == MAP_FAILED) return "mmap " + errno_name(errno);
              std::memset(m, fill, n);
              std::string r = "msync " + res(::msync(m, n, MS_SYNC));
              ::munmap(m, n);
              return r + " at " + std::to_string(off) + " n " + std::to_string(n) + " " +
                     fstat_text(fd);
            }};
  }
  Step chmod_op() {
    std::string p = path();
    mode_t mode = pick(2) ? 0640 : 0755;
    return {"chmod " + p,
            [=](Side& s) { return res(::chmod(s.p(p).c_str(), mode)) + " " + lstat_text(s.p(p)); }};
  }
  Step stat_op() {
    std::string p = path();
    if (pick(2) == 0) {
      return {"stat " + p, [=](Side& s) {
                struct stat st;
                if (::stat(s.p(p).c_str(), &st) != 0) return errno_name(errno);
                return stat_text(st);
              }};
    }
    return {"lstat " + p, [=](Side& s) { return lstat_text(s.p(p)); }};
  }
  Step close_op() {
    int slot = pick(kSlots);
    return {"close slot " + std::to_string(slot), [=](Side& s) {
              if (s.fds[slot] < 0) return std::string("no fd");
              int fd = s.fds[slot];
              s.fds[slot] = -1;
              return res(::close(fd));
            }};
  }
  Step lseek_op() {
    int slot = pick(kSlots);
    off_t off = offset();
    static const std::array<std::pair<int, const char*>, 3> kWhence = {
        {{SEEK_SET, "SET"}, {SEEK_END, "END"}, {SEEK_CUR, "CUR"}}};
    const auto& [whence_value, name] = kWhence[pick(kWhence.size())];
    const int whence = whence_value;
    return {"lseek slot " + std::to_string(slot) + " " + std::to_string(off) + " " + name,
            [=](Side& s) {
              if (s.fds[slot] < 0) return std::string("no fd");
              // Directory offsets are opaque cookies, and SEEK_END on a directory is the
              // kernel's business (ext4 says EINVAL, FUSE's generic_file_llseek adds i_size).
              struct stat st;
              if (whence == SEEK_END && ::fstat(s.fds[slot], &st) == 0 && S_ISDIR(st.st_mode)) {
                return std::string("directory");
              }
              return res(::lseek(s.fds[slot], whence == SEEK_SET ? off : off % 300, whence));
            }};
  }
  Step readlink_op() {
    std::string p = path();
    return {"readlink " + p, [=](Side& s) {
              char buf[256];
              ssize_t n = ::readlink(s.p(p).c_str(), buf, sizeof buf);
              if (n < 0) return errno_name(errno);
              return std::string(buf, static_cast<size_t>(n));
            }};
  }

  std::mt19937_64 rng_;
};

// Every entry under `root` (relative path -> description), contents included.
void walk(const std::string& root, const std::string& rel,
          std::map<std::string, std::string>* out) {
  const std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    (*out)[rel + "/"] = "opendir " + errno_name(errno);
    return;
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    const std::string r = rel.empty() ? n : rel + "/" + n;
    const std::string full = root + "/" + r;
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0) {
      (*out)[r] = "lstat " + errno_name(errno);
      continue;
    }
    std::string desc = stat_text(st);
    if (S_ISREG(st.st_mode)) {
      desc += " content:" + read_file(full);
    } else if (S_ISLNK(st.st_mode)) {
      char buf[256];
      ssize_t n = ::readlink(full.c_str(), buf, sizeof buf);
      desc += " target:" + (n < 0 ? errno_name(errno) : std::string(buf, static_cast<size_t>(n)));
    }
    (*out)[r] = desc;
    if (S_ISDIR(st.st_mode)) walk(root, r, out);
  }
}

void expect_same_trees(const std::string& a_root, const std::string& b_root, const char* label) {
  std::map<std::string, std::string> a, b;
  walk(a_root, "", &a);
  walk(b_root, "", &b);
  for (const auto& [name, desc] : a) {
    auto it = b.find(name);
    if (it == b.end()) {
      ADD_FAILURE() << label << ": " << name << " only in the plain tree";
      continue;
    }
    if (it->second != desc) {
      ADD_FAILURE() << label << ": " << name << " differs: " << desc.substr(0, 120) << " vs "
                    << it->second.substr(0, 120) << " (" << describe_difference(desc, it->second)
                    << ")";
    }
  }
  for (const auto& [name, desc] : b) {
    if (a.count(name) == 0) ADD_FAILURE() << label << ": " << name << " only in the other tree";
  }
}

class Differential : public MountFixture {
 protected:
  // One seed's sequence in its own subdirectory of both trees. Returns false when the
  // trees diverged (reported as a failure; later steps would only repeat it).
  bool run_seed(uint64_t seed) {
    SCOPED_TRACE("FSYSFS_DIFF_SEED=" + std::to_string(seed));
    const std::string sub = "s" + std::to_string(seed);
    bool made = ::mkdir((plain_ + "/" + sub).c_str(), 0755) == 0 &&
                ::mkdir((mnt_ + "/" + sub).c_str(), 0755) == 0;
    EXPECT_TRUE(made) << sub << ": " << errno_name(errno);
    if (!made) return false;
    Side plain(plain_ + "/" + sub), mounted(mnt_ + "/" + sub);
    Generator gen(seed);
    std::vector<std::string> history;  // the ops so far, "op i: what -> result"
    auto recent = [&history] {
      std::string out;
      for (size_t k = history.size() > 40 ? history.size() - 40 : 0; k < history.size(); ++k) {
        out += "\n  " + history[k];
      }
      return out;
    };
    for (int i = 0; i < kOpsPerSeed; ++i) {
      Step step = gen.next();
      std::string a = step.run(plain);
      std::string b = step.run(mounted);
      if (a != b) {
        ADD_FAILURE() << "op " << i << ": " << step.what
                      << " (plain vs mount)\n  plain: " << a.substr(0, 300)
                      << "\n  mount: " << b.substr(0, 300) << "\n  " << describe_difference(a, b)
                      << "\nthe ops before:" << recent();
        return false;
      }
      history.push_back("op " + std::to_string(i) + ": " + step.what + " -> " + a.substr(0, 80));
    }
    plain.close_all();
    mounted.close_all();
    expect_same_trees(plain.root, mounted.root, "plain vs mount");
    return true;
  }
};

TEST_F(Differential, RandomOpsMatchPlainDirectoryAndBacking) {
  bool all_same = true;
  for (uint64_t seed : seeds()) all_same = run_seed(seed) && all_same;
  unmount();
  ASSERT_FALSE(is_mounted(mnt_, "fuse.fsysfs"));
  // After a divergence the trees differ by construction; the first difference is the news.
  if (all_same) expect_same_trees(plain_, backing_, "plain vs backing after unmount");
}

// The smallest case the generator keeps finding: a shared mapping written through an
// O_APPEND descriptor must land at the mapped offset (write(2) appends; writeback of a
// mapped page does not).
TEST_F(Differential, MmapSharedWriteOnAppendFdLandsInPlace_Parity) {
  expect_parity(plain_, mnt_, [](Recorder& r) {
    write_file(r.p("f"), std::string(5000, 'x'));
    int fd = r.fd("open append", ::open(r.p("f").c_str(), O_RDWR | O_APPEND));
    void* m = ::mmap(nullptr, 904, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 4096);
    r.note("mmap", m == MAP_FAILED ? errno_name(errno) : "ok");
    if (m != MAP_FAILED) {
      std::memset(m, 'd', 904);
      r.rc("msync", ::msync(m, 904, MS_SYNC));
      ::munmap(m, 904);
    }
    r.stat_fd("fstat", fd);
    r.rc("close", ::close(fd));
    std::string got = read_file(r.p("f"));
    r.note("size", std::to_string(got.size()));
    r.note("at 4090", got.substr(4090, 10));
  });
}

// Writeback of a mapped page may go out through any writable handle of the inode, so an
// O_APPEND descriptor held open elsewhere must not move it either.
TEST_F(Differential, MmapSharedWriteWithAnotherAppendFdOpen_Parity) {
  expect_parity(plain_, mnt_, [](Recorder& r) {
    write_file(r.p("f"), std::string(5000, 'x'));
    int fd = r.fd("open rdwr", ::open(r.p("f").c_str(), O_RDWR));
    void* m = ::mmap(nullptr, 904, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 4096);
    // Opened last, so it is the first writable handle the kernel finds for writeback.
    int app = r.fd("open append", ::open(r.p("f").c_str(), O_WRONLY | O_APPEND));
    r.note("mmap", m == MAP_FAILED ? errno_name(errno) : "ok");
    if (m != MAP_FAILED) {
      std::memset(m, 'd', 904);
      r.rc("msync", ::msync(m, 904, MS_SYNC));
      ::munmap(m, 904);
    }
    r.stat_fd("fstat", fd);
    r.rc("close", ::close(fd));
    r.rc("close append", ::close(app));
    std::string got = read_file(r.p("f"));
    r.note("size", std::to_string(got.size()));
    r.note("at 4090", got.substr(4090, 10));
  });
}

// The same sequences with the kernel's writeback cache on.
class DifferentialWriteback : public Differential {
 protected:
  std::string mount_options() const override {
    return "allow_other,default_permissions,writeback_cache";
  }
};

TEST_F(DifferentialWriteback, RandomOpsMatchPlainDirectoryAndBacking) {
  bool all_same = true;
  for (uint64_t seed : seeds()) all_same = run_seed(seed) && all_same;
  unmount();
  ASSERT_FALSE(is_mounted(mnt_, "fuse.fsysfs"));
  if (all_same) expect_same_trees(plain_, backing_, "plain vs backing after unmount");
}

}  // namespace
}  // namespace fsysfs::test
