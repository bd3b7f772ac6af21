#include "fusefs/crash_rollback.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "fusefs/crashsim.h"
#include "fusefs/filesystem.h"

namespace fsysfs::fusefs {
namespace {

struct Record {
  char kind = 0;
  uint64_t seq = 0;
  std::vector<std::string> f;  // the fields after the sequence number
};

int unhex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool unhex(std::string_view in, std::string* out) {
  if (in.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < in.size(); i += 2) {
    const int hi = unhex_digit(in[i]);
    const int lo = unhex_digit(in[i + 1]);
    if (hi < 0 || lo < 0) return false;
    *out += static_cast<char>(hi * 16 + lo);
  }
  return true;
}

bool parse_handle(std::string_view text, BackingHandle* h) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  std::string bytes;
  if (!unhex(text.substr(colon + 1), &bytes) || bytes.size() > BackingHandle::kMaxBytes) {
    return false;
  }
  h->type = std::stoi(std::string(text.substr(0, colon)));
  h->size = static_cast<uint8_t>(bytes.size());
  std::memcpy(h->bytes.data(), bytes.data(), bytes.size());
  return true;
}

uint64_t number(const std::string& s) { return std::stoull(s); }

// Reads the journal; -errno when it cannot be opened.
int read_journal(int dir, std::vector<Record>* records) {
  UniqueFd fd(::openat(dir, "journal", O_RDONLY | O_CLOEXEC));
  if (!fd) return -errno;
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) return -errno;
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    Record r;
    std::string seq;
    if (!(words >> r.kind >> seq)) continue;
    r.seq = number(seq);
    for (std::string w; words >> w;) r.f.push_back(w);
    records->push_back(std::move(r));
  }
  return 0;
}

// What to undo: the records no sync covered, oldest first.
std::vector<const Record*> live(const std::vector<Record>& records, size_t* durable) {
  // Per file, the newest sync; per directory, the syncs (a rename needs one of each dir).
  std::map<std::string, uint64_t> file_sync;
  std::set<uint64_t> synced_alone;  // durable writes, covered by their own sync
  std::map<std::string, std::vector<uint64_t>> dir_syncs;
  std::set<uint64_t> failed;
  for (const Record& r : records) {
    if (r.kind == 'S' && !r.f.empty()) {
      file_sync[r.f[0]] = std::max(file_sync[r.f[0]], r.seq);
      if (r.f.size() > 1) synced_alone.insert(number(r.f[1]));
    } else if (r.kind == 'D' && !r.f.empty()) {
      dir_syncs[r.f[0]].push_back(r.seq);
    } else if (r.kind == 'K') {
      failed.insert(r.seq);
    }
  }
  auto dir_synced_after = [&](const std::string& dir, uint64_t seq) {
    auto it = dir_syncs.find(dir);
    return it != dir_syncs.end() &&
           std::any_of(it->second.begin(), it->second.end(), [seq](uint64_t s) { return s > seq; });
  };
  std::vector<const Record*> out;
  *durable = 0;
  for (const Record& r : records) {
    bool covered = false;
    switch (r.kind) {
      case 'W':
      case 'T':
      case 'A':
      case 'Y': {
        auto it = file_sync.find(r.f.at(0));
        covered = (it != file_sync.end() && it->second > r.seq) || synced_alone.count(r.seq) != 0 ||
                  (r.kind == 'A' || r.kind == 'Y' ? dir_synced_after(r.f.at(0), r.seq) : false);
        break;
      }
      case 'N':
      case 'X':
        covered = failed.count(r.seq) != 0 || dir_synced_after(r.f.at(0), r.seq);
        break;
      case 'R':
        covered = failed.count(r.seq) != 0 ||
                  (dir_synced_after(r.f.at(0), r.seq) && dir_synced_after(r.f.at(2), r.seq));
        break;
      default:
        continue;
    }
    if (covered) {
      ++*durable;
    } else {
      out.push_back(&r);
    }
  }
  return out;
}

// What newer kept changes decided of one file: byte ranges and maybe its size, which
// undoing an older change must leave as they are.
struct Settled {
  std::map<uint64_t, uint64_t> ranges;  // start -> end, disjoint
  std::optional<uint64_t> size;

  void add(uint64_t a, uint64_t b) {
    auto it = ranges.upper_bound(a);
    if (it != ranges.begin() && std::prev(it)->second >= a) --it;
    while (it != ranges.end() && it->first <= b) {
      a = std::min(a, it->first);
      b = std::max(b, it->second);
      it = ranges.erase(it);
    }
    ranges.emplace(a, b);
  }
  // The end of the last settled byte (0 when none).
  uint64_t end() const { return ranges.empty() ? 0 : ranges.rbegin()->second; }
  // The parts of [a, b) not settled, cut at the settled size.
  std::vector<std::pair<uint64_t, uint64_t>> open(uint64_t a, uint64_t b) const {
    if (size) b = std::min(b, *size);
    std::vector<std::pair<uint64_t, uint64_t>> out;
    for (auto it = ranges.begin(); it != ranges.end() && a < b; ++it) {
      if (it->second <= a) continue;
      if (it->first >= b) break;
      if (it->first > a) out.emplace_back(a, it->first);
      a = std::max(a, it->second);
    }
    if (a < b) out.emplace_back(a, b);
    return out;
  }
};

class Undo {
 public:
  Undo(int root, int dir, const BackingHandles& handles, const CrashPlan& plan)
      : root_(root), handles_(handles), plan_(plan), rng_(plan.seed) {
    blobs_.reset(::openat(dir, "preimages", O_RDONLY | O_CLOEXEC));
    parked_.reset(::openat(dir, "parked", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }

  // Decides whether the change `r` is kept or lost and undoes what is lost. Records are
  // taken newest first; the report says what became of each.
  void process(const Record& r, RollbackReport* report) {
    std::string line = describe(r);
    if (r.kind == 'W' || r.kind == 'T') {
      const int rc = undo_data(r, report, line);
      if (rc < 0) report->errors.push_back(fmt::format("{}: {}", line, std::strerror(-rc)));
      return;
    }
    if (keep()) {
      report->kept.push_back(line);
      return;
    }
    int rc = -EINVAL;
    switch (r.kind) {
      case 'N':
        rc = undo_create(r);
        break;
      case 'X':
        rc = undo_remove(r);
        break;
      case 'R':
        rc = undo_rename(r);
        break;
      case 'A':
        rc = undo_attr(r);
        break;
      case 'Y':
        rc = undo_xattr(r);
        break;
      default:
        break;
    }
    // With a random subset kept, a newer kept change may stand on this one (a name created
    // in a kept directory, a file renamed after its kept creation): it stays too.
    if (rc < 0 && plan_.keep == CrashKeep::kRandom &&
        (rc == -EEXIST || rc == -ENOTEMPTY || rc == -ENOENT || rc == -ESTALE)) {
      report->kept.push_back(line + " (a kept change needs it)");
    } else if (rc < 0) {
      report->errors.push_back(fmt::format("{}: {}", line, std::strerror(-rc)));
    } else {
      report->undone.push_back(line);
    }
  }

  // How the record reads in the report, before it is undone.
  std::string describe(const Record& r) {
    switch (r.kind) {
      case 'W':
        return fmt::format("write of {} bytes at {} to {}", r.f.at(2), r.f.at(1),
                           path_of_handle(r.f.at(0)));
      case 'T':
        return fmt::format("size change of {} (was {})", path_of_handle(r.f.at(0)), r.f.at(1));
      case 'N':
        return fmt::format("creation of {}", entry(r.f.at(0), r.f.at(1)));
      case 'X':
        return fmt::format("removal of {}", entry(r.f.at(0), r.f.at(1)));
      case 'R':
        return fmt::format("rename of {} to {}", entry(r.f.at(0), r.f.at(1)),
                           entry(r.f.at(2), r.f.at(3)));
      case 'A':
        return fmt::format("attribute change of {} (mode was {})", path_of_handle(r.f.at(0)),
                           r.f.at(1));
      case 'Y': {
        std::string name;
        unhex(r.f.at(1), &name);
        return fmt::format("change of extended attribute {} of {}", name,
                           path_of_handle(r.f.at(0)));
      }
      default:
        return "?";
    }
  }

 private:
  int open_handle(const std::string& text, UniqueFd* fd) {
    BackingHandle h;
    if (!parse_handle(text, &h)) return -EINVAL;
    struct stat st;
    return handles_.open(h, fd, &st);
  }

  // "/dir/name" in BACKING as the tree stands now.
  std::string path_of_handle(const std::string& text) {
    UniqueFd fd;
    if (open_handle(text, &fd) < 0) return "(a file no longer in BACKING)";
    char buf[PATH_MAX];
    const ssize_t n = ::readlink(ProcPath(fd.get()).c_str(), buf, sizeof buf);
    char root[PATH_MAX];
    const ssize_t m = ::readlink(ProcPath(root_).c_str(), root, sizeof root);
    if (n <= 0 || m <= 0) return "?";
    std::string path(buf, static_cast<size_t>(n));
    const std::string prefix(root, static_cast<size_t>(m));
    if (path.starts_with(prefix)) path.erase(0, prefix == "/" ? 0 : prefix.size());
    if (path.starts_with("/" + std::string(kCrashsimDir) + "/parked/")) {
      return "(a removed file)";
    }
    return path.empty() ? "/" : path;
  }

  std::string entry(const std::string& dir, const std::string& hex_name) {
    std::string name;
    unhex(hex_name, &name);
    std::string d = path_of_handle(dir);
    return (d == "/" ? "" : d) + "/" + name;
  }

  int copy_back(int fd, uint64_t blob_off, uint64_t len, uint64_t to) {
    loff_t in = static_cast<loff_t>(blob_off);
    loff_t out = static_cast<loff_t>(to);
    while (len > 0) {
      const ssize_t n = ::copy_file_range(blobs_.get(), &in, fd, &out, len, 0);
      if (n < 0) return -errno;
      if (n == 0) return -EIO;
      len -= static_cast<uint64_t>(n);
    }
    return 0;
  }

  bool keep() {
    switch (plan_.keep) {
      case CrashKeep::kAll:
        return true;
      case CrashKeep::kRandom:
        return (rng_() & 1) != 0;
      default:
        return false;
    }
  }

  // Writes zeros over [off, off + len).
  static int zero(int fd, uint64_t off, uint64_t len) {
    static const char kZeros[65536] = {};
    while (len > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(len, sizeof kZeros));
      const ssize_t w = ::pwrite(fd, kZeros, n, static_cast<off_t>(off));
      if (w <= 0) return w < 0 ? -errno : -EIO;
      off += static_cast<uint64_t>(w);
      len -= static_cast<uint64_t>(w);
    }
    return 0;
  }

  // Undoes what is lost of a data or size change. Newer records were taken first, so the
  // file is as this change left it, except where a newer kept change settled its bytes
  // or its size: those stay.
  int undo_data(const Record& r, RollbackReport* report, const std::string& line) {
    UniqueFd path;
    if (int rc = open_handle(r.f.at(0), &path); rc < 0) return rc;
    UniqueFd fd(::open(ProcPath(path.get()).c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return -errno;
    Settled& settled = files_[r.f.at(0)];
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return -errno;
    const bool is_write = r.kind == 'W';
    const uint64_t old_size = number(r.f.at(is_write ? 3 : 1));
    const uint64_t off = is_write ? number(r.f.at(1)) : old_size - number(r.f.at(3));
    const uint64_t len = is_write ? number(r.f.at(2)) : number(r.f.at(3));
    const uint64_t blob = number(r.f.at(is_write ? 4 : 2));
    const bool whole = keep();
    const bool tear = is_write && plan_.tear;

    // The size first: a lost size change takes the bytes beyond the old size with it.
    const bool size_kept = tear ? keep() : whole;
    if (!settled.size && (!is_write || off + len > old_size)) {
      if (size_kept) {
        settled.size = static_cast<uint64_t>(st.st_size);
      } else if (::ftruncate(fd.get(), static_cast<off_t>(std::max(old_size, settled.end()))) !=
                 0) {
        return -errno;
      }
    }
    if (!is_write) {
      if (whole) {
        report->kept.push_back(line);
        return 0;
      }
      for (auto [a, b] : settled.open(off, off + len)) {
        if (int rc = copy_back(fd.get(), blob + (a - off), b - a, a); rc < 0) return rc;
      }
      report->undone.push_back(line);
      return 0;
    }
    // A write is one piece, or sectors when torn.
    const uint64_t step = tear ? kTearSector : std::max<uint64_t>(len, 1);
    size_t pieces = 0;
    size_t kept = 0;
    for (uint64_t a = off; a < off + len; a = (a / step + 1) * step) {
      const uint64_t b = std::min(off + len, tear ? (a / step + 1) * step : off + len);
      ++pieces;
      if (tear ? keep() : whole) {
        settled.add(a, b);
        ++kept;
        continue;
      }
      for (auto [x, y] : settled.open(a, std::min(b, old_size))) {
        if (int rc = copy_back(fd.get(), blob + (x - off), y - x, x); rc < 0) return rc;
      }
      if (::fstat(fd.get(), &st) != 0) return -errno;
      const auto end = static_cast<uint64_t>(st.st_size);
      for (auto [x, y] : settled.open(std::max(a, old_size), std::min(b, end))) {
        if (int rc = zero(fd.get(), x, y - x); rc < 0) return rc;
      }
      if (!tear) break;
    }
    if (kept == pieces) {
      report->kept.push_back(line);
    } else if (kept == 0) {
      report->undone.push_back(line);
    } else {
      report->torn.push_back(fmt::format("{}: {} of {} sectors kept", line, kept, pieces));
    }
    return 0;
  }

  int undo_attr(const Record& r) {
    UniqueFd fd;
    if (int rc = open_handle(r.f.at(0), &fd); rc < 0) return rc;
    const auto mode = static_cast<mode_t>(std::stoul(r.f.at(1), nullptr, 8));
    if (::fchownat(fd.get(), "", static_cast<uid_t>(number(r.f.at(2))),
                   static_cast<gid_t>(number(r.f.at(3))),
                   AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
      return -errno;
    }
    if (S_ISLNK(mode)) return 0;  // a symlink has no mode of its own to give back
    const ProcPath proc(fd.get());
    const struct timespec times[2] = {
        {static_cast<time_t>(number(r.f.at(4))), static_cast<long>(number(r.f.at(5)))},
        {static_cast<time_t>(number(r.f.at(6))), static_cast<long>(number(r.f.at(7)))}};
    if (::chmod(proc.c_str(), mode & 07777) != 0 || ::utimensat(AT_FDCWD, proc.c_str(), times, 0)) {
      return -errno;
    }
    return 0;
  }

  int undo_xattr(const Record& r) {
    UniqueFd fd;
    if (int rc = open_handle(r.f.at(0), &fd); rc < 0) return rc;
    std::string name;
    unhex(r.f.at(1), &name);
    const ProcPath proc(fd.get());
    if (r.f.at(2) == "0") {
      return ::removexattr(proc.c_str(), name.c_str()) == 0 || errno == ENODATA ? 0 : -errno;
    }
    std::string value(number(r.f.at(4)), '\0');
    const ssize_t n =
        ::pread(blobs_.get(), value.data(), value.size(), static_cast<off_t>(number(r.f.at(3))));
    if (n != static_cast<ssize_t>(value.size())) return n < 0 ? -errno : -EIO;
    return ::setxattr(proc.c_str(), name.c_str(), value.data(), value.size(), 0) == 0 ? 0 : -errno;
  }

  int undo_create(const Record& r) {
    UniqueFd dir;
    if (int rc = open_handle(r.f.at(0), &dir); rc < 0) return rc;
    std::string name;
    unhex(r.f.at(1), &name);
    const int flags = r.f.at(2) == "1" ? AT_REMOVEDIR : 0;
    if (::unlinkat(dir.get(), name.c_str(), flags) != 0) return -errno;
    return 0;
  }

  int undo_remove(const Record& r) {
    UniqueFd dir;
    if (int rc = open_handle(r.f.at(0), &dir); rc < 0) return rc;
    std::string name;
    unhex(r.f.at(1), &name);
    if (r.f.at(2) == "-") {
      const mode_t mode = static_cast<mode_t>(std::stoul(r.f.at(3), nullptr, 8));
      if (::mkdirat(dir.get(), name.c_str(), mode & 07777) != 0) return -errno;
      ::fchownat(dir.get(), name.c_str(), static_cast<uid_t>(number(r.f.at(4))),
                 static_cast<gid_t>(number(r.f.at(5))), AT_SYMLINK_NOFOLLOW);
      ::fchmodat(dir.get(), name.c_str(), mode & 07777, 0);
      return 0;
    }
    if (::linkat(parked_.get(), r.f.at(2).c_str(), dir.get(), name.c_str(), 0) != 0) return -errno;
    return 0;
  }

  int undo_rename(const Record& r) {
    UniqueFd d1;
    UniqueFd d2;
    if (int rc = open_handle(r.f.at(0), &d1); rc < 0) return rc;
    if (int rc = open_handle(r.f.at(2), &d2); rc < 0) return rc;
    std::string n1;
    std::string n2;
    unhex(r.f.at(1), &n1);
    unhex(r.f.at(3), &n2);
    const unsigned flags = static_cast<unsigned>(number(r.f.at(5)));
    if (::renameat2(d2.get(), n2.c_str(), d1.get(), n1.c_str(), flags & RENAME_EXCHANGE) != 0) {
      return -errno;
    }
    const std::string& replaced = r.f.at(4);
    if (replaced == "-") return 0;
    if (replaced.starts_with("d")) {
      const mode_t mode = static_cast<mode_t>(std::stoul(replaced.substr(1), nullptr, 8));
      return ::mkdirat(d2.get(), n2.c_str(), mode & 07777) == 0 ? 0 : -errno;
    }
    return ::linkat(parked_.get(), replaced.c_str(), d2.get(), n2.c_str(), 0) == 0 ? 0 : -errno;
  }

  const int root_;
  const BackingHandles& handles_;
  const CrashPlan plan_;
  std::mt19937_64 rng_;
  UniqueFd blobs_;
  UniqueFd parked_;
  std::map<std::string, Settled> files_;  // by file handle
};

void remove_tree(int parent, const char* name) noexcept {
  UniqueFd dir(::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dir) {
    if (DIR* d = ::fdopendir(::dup(dir.get())); d != nullptr) {
      while (dirent* e = ::readdir(d)) {
        const std::string_view n(e->d_name);
        if (n == "." || n == "..") continue;
        if (e->d_type == DT_DIR) {
          remove_tree(dir.get(), e->d_name);
        } else {
          ::unlinkat(dir.get(), e->d_name, 0);
        }
      }
      ::closedir(d);
    }
  }
  ::unlinkat(parent, name, AT_REMOVEDIR);
}

std::string report_text(const RollbackReport& r, const CrashPlan& plan) {
  const char* what = plan.keep == CrashKeep::kAll      ? "all kept"
                     : plan.keep == CrashKeep::kRandom ? "a random subset kept"
                                                       : "all undone";
  std::string out =
      fmt::format("crash: {} change(s) not durable yet, {}",
                  r.undone.size() + r.kept.size() + r.torn.size() + r.errors.size(), what);
  if (plan.keep == CrashKeep::kRandom) {
    out += fmt::format(" (seed {}{})", plan.seed, plan.tear ? ", writes torn" : "");
  }
  out += "\n";
  for (const auto& l : r.undone) out += "undone: " + l + "\n";
  for (const auto& l : r.kept) out += "kept: " + l + "\n";
  for (const auto& l : r.torn) out += "torn: " + l + "\n";
  for (const auto& l : r.errors) out += "error: " + l + "\n";
  return out;
}

}  // namespace

int request_crash(int dir_fd, const CrashPlan& plan, std::string_view cause) noexcept {
  return guarded([&] {
    auto put = [dir_fd](const char* name, std::string_view text) {
      UniqueFd fd(::openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!fd) return -errno;
      if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
        return errno != 0 ? -errno : -EIO;
      }
      return 0;
    };
    if (!cause.empty()) {
      if (int rc = put(kCrashCauseFile, cause); rc < 0) return rc;
    }
    return put(kCrashRequestFile, plan.text());
  });
}

int roll_back(int root_fd, const CrashPlan& plan, RollbackReport* report) {
  return guarded([&] {
    const std::string name(kCrashsimDir);
    std::string why;
    const BackingHandles handles = BackingHandles::probe(root_fd, &why);
    if (!handles.enabled()) {
      report->errors.push_back("no backing file handles: " + why);
      return -EPERM;
    }
    UniqueFd dir(::openat(root_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) return -errno;
    std::vector<Record> records;
    if (int rc = read_journal(dir.get(), &records); rc < 0) return rc;
    std::vector<const Record*> todo = live(records, &report->durable);
    Undo undo(root_fd, dir.get(), handles, plan);
    for (auto it = todo.rbegin(); it != todo.rend(); ++it) undo.process(**it, report);
    ::unlinkat(dir.get(), "journal", 0);
    ::unlinkat(dir.get(), "preimages", 0);
    remove_tree(dir.get(), "parked");
    return 0;
  });
}

int take_crash_report(int backing_fd, std::string* text) noexcept {
  return guarded([&] {
    const std::string name(kCrashsimDir);
    UniqueFd dir(
        ::openat(backing_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) return -errno;
    UniqueFd report(::openat(dir.get(), kCrashReportFile, O_RDONLY | O_CLOEXEC));
    if (!report) return -errno;
    char buf[65536];
    for (ssize_t n; (n = ::read(report.get(), buf, sizeof buf)) != 0;) {
      if (n < 0) return -errno;
      text->append(buf, static_cast<size_t>(n));
    }
    report.reset();
    dir.reset();
    remove_tree(backing_fd, name.c_str());
    return 0;
  });
}

void end_crashsim(int root_fd, spdlog::logger& log) noexcept {
  guarded([&] {
    const std::string name(kCrashsimDir);
    UniqueFd dir(::openat(root_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) return 0;
    char want[128] = {};
    UniqueFd request(::openat(dir.get(), kCrashRequestFile, O_RDONLY | O_CLOEXEC));
    if (!request || ::read(request.get(), want, sizeof want - 1) < 0) {
      dir.reset();
      remove_tree(root_fd, name.c_str());
      return 0;
    }
    std::string why;
    std::optional<CrashPlan> plan = CrashPlan::parse(want, &why);
    if (!plan) {
      log.error("crash: bad request '{}' ({}): every change no sync covered is undone", want, why);
      plan = CrashPlan{};
    }
    RollbackReport report;
    const int rc = roll_back(root_fd, *plan, &report);
    std::string text;
    char cause[512] = {};
    if (UniqueFd c(::openat(dir.get(), kCrashCauseFile, O_RDONLY | O_CLOEXEC)); c) {
      if (::read(c.get(), cause, sizeof cause - 1) > 0) text = fmt::format("{}\n", cause);
      ::unlinkat(dir.get(), kCrashCauseFile, 0);
    }
    text += report_text(report, *plan);
    if (rc < 0) text += fmt::format("error: rollback stopped: {}\n", std::strerror(-rc));
    log.warn("crash: {} undone, {} kept, {} torn, {} failed", report.undone.size(),
             report.kept.size(), report.torn.size(), report.errors.size());
    ::unlinkat(dir.get(), kCrashRequestFile, 0);
    UniqueFd out(
        ::openat(dir.get(), kCrashReportFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (out && ::write(out.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      log.error("crash: cannot write the report: {}", std::strerror(errno));
    }
    return 0;
  });
}

}  // namespace fsysfs::fusefs
