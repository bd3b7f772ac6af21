#include "fusefs/crash_rollback.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
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
      case 'T': {
        auto it = file_sync.find(r.f.at(0));
        covered = (it != file_sync.end() && it->second > r.seq) || synced_alone.count(r.seq) != 0;
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

class Undo {
 public:
  Undo(int root, int dir, const BackingHandles& handles) : root_(root), handles_(handles) {
    blobs_.reset(::openat(dir, "preimages", O_RDONLY | O_CLOEXEC));
    parked_.reset(::openat(dir, "parked", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }

  // Undoes `r`; a line for the report, or an error.
  int run(const Record& r, std::string* line) {
    switch (r.kind) {
      case 'W':
      case 'T':
        return undo_data(r, line);
      case 'N':
        return undo_create(r, line);
      case 'X':
        return undo_remove(r, line);
      case 'R':
        return undo_rename(r, line);
      default:
        return -EINVAL;
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

  int undo_data(const Record& r, std::string* line) {
    UniqueFd path;
    if (int rc = open_handle(r.f.at(0), &path); rc < 0) return rc;
    UniqueFd fd(::open(ProcPath(path.get()).c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return -errno;
    const uint64_t old_size = number(r.f.at(r.kind == 'W' ? 3 : 1));
    if (::ftruncate(fd.get(), static_cast<off_t>(old_size)) != 0) return -errno;
    if (r.kind == 'W') {
      const uint64_t off = number(r.f.at(1));
      if (int rc = copy_back(fd.get(), number(r.f.at(4)), number(r.f.at(5)), off); rc < 0) {
        return rc;
      }
    } else {
      const uint64_t len = number(r.f.at(3));
      if (int rc = copy_back(fd.get(), number(r.f.at(2)), len, old_size - len); rc < 0) {
        return rc;
      }
    }
    *line = describe(r);
    return 0;
  }

  int undo_create(const Record& r, std::string* line) {
    *line = describe(r);
    UniqueFd dir;
    if (int rc = open_handle(r.f.at(0), &dir); rc < 0) return rc;
    std::string name;
    unhex(r.f.at(1), &name);
    const int flags = r.f.at(2) == "1" ? AT_REMOVEDIR : 0;
    if (::unlinkat(dir.get(), name.c_str(), flags) != 0) return -errno;
    return 0;
  }

  int undo_remove(const Record& r, std::string* line) {
    UniqueFd dir;
    if (int rc = open_handle(r.f.at(0), &dir); rc < 0) return rc;
    std::string name;
    unhex(r.f.at(1), &name);
    *line = describe(r);
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

  int undo_rename(const Record& r, std::string* line) {
    UniqueFd d1;
    UniqueFd d2;
    if (int rc = open_handle(r.f.at(0), &d1); rc < 0) return rc;
    if (int rc = open_handle(r.f.at(2), &d2); rc < 0) return rc;
    std::string n1;
    std::string n2;
    unhex(r.f.at(1), &n1);
    unhex(r.f.at(3), &n2);
    *line = describe(r);
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
  UniqueFd blobs_;
  UniqueFd parked_;
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

std::string report_text(const RollbackReport& r, CrashKeep keep) {
  std::string out = fmt::format("crash: {} change(s) not durable yet, {}\n",
                                r.undone.size() + r.kept.size() + r.errors.size(),
                                keep == CrashKeep::kAll ? "all kept" : "undone");
  for (const auto& l : r.undone) out += "undone: " + l + "\n";
  for (const auto& l : r.kept) out += "kept: " + l + "\n";
  for (const auto& l : r.errors) out += "error: " + l + "\n";
  return out;
}

}  // namespace

int roll_back(int root_fd, CrashKeep keep, RollbackReport* report) {
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
    Undo undo(root_fd, dir.get(), handles);
    for (auto it = todo.rbegin(); it != todo.rend(); ++it) {
      const Record& r = **it;
      if (keep == CrashKeep::kAll) {
        report->kept.push_back(undo.describe(r));
        continue;
      }
      std::string line;
      if (int rc = undo.run(r, &line); rc < 0) {
        report->errors.push_back(
            fmt::format("{}: {}", line.empty() ? undo.describe(r) : line, std::strerror(-rc)));
      } else {
        report->undone.push_back(line);
      }
    }
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
    char want[16] = {};
    UniqueFd request(::openat(dir.get(), kCrashRequestFile, O_RDONLY | O_CLOEXEC));
    if (!request || ::read(request.get(), want, sizeof want - 1) < 0) {
      dir.reset();
      remove_tree(root_fd, name.c_str());
      return 0;
    }
    const CrashKeep keep =
        std::string_view(want).starts_with("all") ? CrashKeep::kAll : CrashKeep::kNone;
    RollbackReport report;
    const int rc = roll_back(root_fd, keep, &report);
    std::string text = report_text(report, keep);
    if (rc < 0) text += fmt::format("error: rollback stopped: {}\n", std::strerror(-rc));
    log.warn("crash: {} undone, {} kept, {} failed", report.undone.size(), report.kept.size(),
             report.errors.size());
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
