#include "fusefs/crashsim.h"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>

#include "fusefs/filesystem.h"

namespace fsysfs::fusefs {
namespace {

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// Removes every entry of the directory `dir` (one level: the journal's files, parked/'s
// links).
void empty_dir(int dir) noexcept {
  UniqueFd copy(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!copy) return;
  DIR* d = ::fdopendir(copy.release());
  if (d == nullptr) return;
  while (dirent* e = ::readdir(d)) {
    if (std::string_view(e->d_name) == "." || std::string_view(e->d_name) == "..") continue;
    if (::unlinkat(::dirfd(d), e->d_name, 0) != 0 && errno == EISDIR) {
      ::unlinkat(::dirfd(d), e->d_name, AT_REMOVEDIR);
    }
  }
  ::closedir(d);
}

}  // namespace

ChangeTicket::~ChangeTicket() {
  if (cs_ != nullptr && ticket_ != 0) cs_->changed(ticket_);
}

std::string handle_text(const BackingHandle& h) {
  return fmt::format("{}:{}", h.type, hex({reinterpret_cast<const char*>(h.bytes.data()), h.size}));
}

std::unique_ptr<CrashSim> CrashSim::start(int root_fd, std::string* why) {
  BackingHandles handles = BackingHandles::probe(root_fd, why);
  if (!handles.enabled()) {
    *why = fmt::format(
        "crashsim finds files again by their backing file handles, which need root and a "
        "filesystem that has them (ext4, xfs, btrfs, tmpfs): {}",
        *why);
    return nullptr;
  }
  const std::string name(kCrashsimDir);
  if (::mkdirat(root_fd, name.c_str(), 0700) != 0 && errno != EEXIST) {
    *why = fmt::format("cannot create {}: {}", name, std::strerror(errno));
    return nullptr;
  }
  UniqueFd dir(::openat(root_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) {
    *why = fmt::format("cannot open {}: {}", name, std::strerror(errno));
    return nullptr;
  }
  // A journal left by a mount that ended without a crash describes nothing now.
  if (UniqueFd old(::openat(dir.get(), "parked", O_RDONLY | O_DIRECTORY | O_CLOEXEC)); old) {
    empty_dir(old.get());
  }
  empty_dir(dir.get());
  UniqueFd journal(
      ::openat(dir.get(), "journal", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
  UniqueFd blobs(::openat(dir.get(), "preimages", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!journal || !blobs || ::mkdirat(dir.get(), "parked", 0700) != 0) {
    *why = fmt::format("cannot set up {}: {}", name, std::strerror(errno));
    return nullptr;
  }
  UniqueFd parked(::openat(dir.get(), "parked", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!parked) {
    *why = fmt::format("cannot open {}/parked: {}", name, std::strerror(errno));
    return nullptr;
  }
  return std::unique_ptr<CrashSim>(new CrashSim(
      std::move(dir), std::move(journal), std::move(blobs), std::move(parked), std::move(handles)));
}

CrashSim::CrashSim(UniqueFd dir, UniqueFd journal, UniqueFd blobs, UniqueFd parked,
                   BackingHandles handles) noexcept
    : handles_(std::move(handles)),
      dir_(std::move(dir)),
      journal_(std::move(journal)),
      blobs_(std::move(blobs)),
      parked_(std::move(parked)) {}

std::string CrashSim::handle_of(int fd) const {
  const BackingHandle h = handles_.encode(fd);
  return h.empty() ? std::string() : handle_text(h);
}

std::string CrashSim::park_name(long park) { return std::to_string(park); }

int CrashSim::append(const std::string& line) noexcept {
  const ssize_t n = ::write(journal_.get(), line.data(), line.size());
  if (n > 0) journal_bytes_ += static_cast<uint64_t>(n);
  if (n == static_cast<ssize_t>(line.size())) return 0;
  return n < 0 ? -errno : -EIO;
}

int64_t CrashSim::save_bytes(std::string_view bytes) noexcept {
  const uint64_t at = blob_end_;
  if (::pwrite(blobs_.get(), bytes.data(), bytes.size(), static_cast<off_t>(at)) !=
      static_cast<ssize_t>(bytes.size())) {
    return errno != 0 ? -errno : -EIO;
  }
  blob_end_ += bytes.size();
  return static_cast<int64_t>(at);
}

int64_t CrashSim::save_preimage(int fd, uint64_t off, uint64_t len) noexcept {
  const uint64_t at = blob_end_;
  loff_t in = static_cast<loff_t>(off);
  loff_t out = static_cast<loff_t>(at);
  uint64_t left = len;
  while (left > 0) {
    const ssize_t n = ::copy_file_range(fd, &in, blobs_.get(), &out, left, 0);
    if (n < 0) return -errno;
    if (n == 0) return -EIO;  // the file shrank under us: its size was read under mu_
    left -= static_cast<uint64_t>(n);
  }
  blob_end_ += len;
  return static_cast<int64_t>(at);
}

uint64_t CrashSim::sync_point(int path_fd) noexcept {
  std::string h;
  try {
    h = handle_of(path_fd);
  } catch (...) {
  }
  std::lock_guard lock(mu_);
  for (const auto& [ticket, file] : in_flight_) {
    if (file == h) return ticket;  // the map is ordered: the oldest change still being made
  }
  return next_seq_;
}

int CrashSim::before_write(int path_fd, uint64_t off, uint64_t len, uint64_t* ticket) noexcept {
  return record_data(path_fd, off, len, true, ticket);
}

int CrashSim::before_truncate(int path_fd, uint64_t new_size, uint64_t* ticket) noexcept {
  return record_data(path_fd, new_size, UINT64_MAX, false, ticket);
}

int CrashSim::record_data(int path_fd, uint64_t off, uint64_t len, bool is_write,
                          uint64_t* ticket) noexcept {
  return guarded([&] {
    const std::string h = handle_of(path_fd);
    if (h.empty()) return -EIO;
    std::lock_guard lock(mu_);
    struct stat st;
    if (::fstatat(path_fd, "", &st, AT_EMPTY_PATH) != 0) return -errno;
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    // Only bytes below the old size have a pre-image; the rest is undone by the size. An
    // append, the common case, needs no read of the file.
    const uint64_t saved = off < size ? std::min(len, size - off) : 0;
    int64_t blob = 0;
    if (saved > 0) {
      UniqueFd fd(::open(ProcPath(path_fd).c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) return -errno;
      blob = save_preimage(fd.get(), off, saved);
      if (blob < 0) return static_cast<int>(blob);
    }
    const uint64_t seq = next_seq_++;
    return track(h, seq,
                 is_write
                     ? fmt::format("W {} {} {} {} {} {} {}\n", seq, h, off, len, size, blob, saved)
                     : fmt::format("T {} {} {} {} {}\n", seq, h, size, blob, saved),
                 ticket);
  });
}

int CrashSim::track(const std::string& h, uint64_t seq, const std::string& line, uint64_t* ticket) {
  if (int rc = append(line); rc < 0) return rc;
  data_[h].push_back(seq);
  in_flight_.emplace(seq, h);
  *ticket = seq;
  return 0;
}

int CrashSim::before_attr(int path_fd, uint64_t* ticket) noexcept {
  return guarded([&] {
    const std::string h = handle_of(path_fd);
    if (h.empty()) return -EIO;
    struct stat st;
    if (::fstatat(path_fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return -errno;
    std::lock_guard lock(mu_);
    const uint64_t seq = next_seq_++;
    return track(
        h, seq,
        fmt::format("A {} {} {:o} {} {} {} {} {} {}\n", seq, h, st.st_mode, st.st_uid, st.st_gid,
                    st.st_atim.tv_sec, st.st_atim.tv_nsec, st.st_mtim.tv_sec, st.st_mtim.tv_nsec),
        ticket);
  });
}

int CrashSim::before_xattr(int path_fd, const char* name, uint64_t* ticket) noexcept {
  return guarded([&] {
    const std::string h = handle_of(path_fd);
    if (h.empty()) return -EIO;
    const ProcPath proc(path_fd);
    std::string value;
    bool had = false;
    for (;;) {
      const ssize_t n = ::getxattr(proc.c_str(), name, nullptr, 0);
      if (n < 0) {
        if (errno == ENODATA) break;
        return -errno;
      }
      value.resize(static_cast<size_t>(n));
      const ssize_t m = ::getxattr(proc.c_str(), name, value.data(), value.size());
      if (m >= 0) {
        value.resize(static_cast<size_t>(m));
        had = true;
        break;
      }
      if (errno != ERANGE) return -errno;  // ERANGE: it grew meanwhile; ask again
    }
    std::lock_guard lock(mu_);
    const int64_t blob = save_bytes(value);
    if (blob < 0) return static_cast<int>(blob);
    const uint64_t seq = next_seq_++;
    return track(
        h, seq,
        fmt::format("Y {} {} {} {} {} {}\n", seq, h, hex(name), had ? 1 : 0, blob, value.size()),
        ticket);
  });
}

void CrashSim::changed(uint64_t ticket) noexcept {
  std::lock_guard lock(mu_);
  in_flight_.erase(ticket);
}

void CrashSim::file_synced(int path_fd, uint64_t seq, uint64_t also) noexcept {
  guarded([&] {
    const std::string h = handle_of(path_fd);
    std::lock_guard lock(mu_);
    auto it = data_.find(h);
    if (it == data_.end()) return 0;
    auto& seqs = it->second;
    const size_t before = seqs.size();
    std::erase_if(seqs, [seq, also](uint64_t s) { return s < seq || s == also; });
    if (seqs.size() == before) return 0;
    append(fmt::format("S {} {} {}\n", seq, h, also));
    if (seqs.empty()) data_.erase(it);
    reclaim();
    return 0;
  });
}

void CrashSim::created(int dir_fd, const char* name, bool is_dir) noexcept {
  guarded([&] {
    const std::string d = handle_of(dir_fd);
    std::lock_guard lock(mu_);
    const uint64_t seq = next_seq_++;
    append(fmt::format("N {} {} {} {}\n", seq, d, hex(name), is_dir ? 1 : 0));
    names_[seq] = NameRecord{{d}, -1};
    return 0;
  });
}

int CrashSim::before_remove(int dir_fd, const char* name, uint64_t* ticket) noexcept {
  return guarded([&] {
    const std::string d = handle_of(dir_fd);
    if (d.empty()) return -EIO;
    struct stat st;
    if (::fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
    std::lock_guard lock(mu_);
    const uint64_t seq = next_seq_++;
    long park = -1;
    if (!S_ISDIR(st.st_mode)) {
      park = static_cast<long>(seq);
      if (::linkat(dir_fd, name, parked_.get(), park_name(park).c_str(), 0) != 0) return -errno;
    }
    if (int rc = append(fmt::format("X {} {} {} {} {:o} {} {}\n", seq, d, hex(name),
                                    park < 0 ? std::string("-") : park_name(park), st.st_mode,
                                    st.st_uid, st.st_gid));
        rc < 0) {
      if (park >= 0) ::unlinkat(parked_.get(), park_name(park).c_str(), 0);
      return rc;
    }
    names_[seq] = NameRecord{{d}, park};
    *ticket = seq;
    return 0;
  });
}

int CrashSim::before_rename(int dir1_fd, const char* name1, int dir2_fd, const char* name2,
                            unsigned flags, uint64_t* ticket) noexcept {
  return guarded([&] {
    const std::string d1 = handle_of(dir1_fd);
    const std::string d2 = handle_of(dir2_fd);
    if (d1.empty() || d2.empty()) return -EIO;
    struct stat st;
    const bool replaces =
        (flags & RENAME_EXCHANGE) == 0 && ::fstatat(dir2_fd, name2, &st, AT_SYMLINK_NOFOLLOW) == 0;
    std::lock_guard lock(mu_);
    const uint64_t seq = next_seq_++;
    long park = -1;
    // A replaced directory is empty: undoing the rename makes it again (mode only).
    if (replaces && !S_ISDIR(st.st_mode)) {
      park = static_cast<long>(seq);
      if (::linkat(dir2_fd, name2, parked_.get(), park_name(park).c_str(), 0) != 0) return -errno;
    }
    const std::string replaced =
        !replaces ? std::string("-")
                  : (park >= 0 ? park_name(park) : fmt::format("d{:o}", st.st_mode));
    if (int rc = append(fmt::format("R {} {} {} {} {} {} {}\n", seq, d1, hex(name1), d2, hex(name2),
                                    replaced, flags));
        rc < 0) {
      if (park >= 0) ::unlinkat(parked_.get(), park_name(park).c_str(), 0);
      return rc;
    }
    NameRecord r{{d1}, park};
    if (d2 != d1) r.dirs.push_back(d2);
    names_[seq] = std::move(r);
    *ticket = seq;
    return 0;
  });
}

void CrashSim::failed(uint64_t ticket) noexcept {
  guarded([&] {
    std::lock_guard lock(mu_);
    append(fmt::format("K {}\n", ticket));
    if (auto it = names_.find(ticket); it != names_.end()) {
      if (it->second.park >= 0) ::unlinkat(parked_.get(), park_name(it->second.park).c_str(), 0);
      names_.erase(it);
    }
    reclaim();
    return 0;
  });
}

void CrashSim::dir_synced(int dir_fd, uint64_t seq) noexcept {
  guarded([&] {
    const std::string d = handle_of(dir_fd);
    std::lock_guard lock(mu_);
    bool covered = false;
    for (auto it = names_.begin(); it != names_.end() && it->first < seq;) {
      auto& dirs = it->second.dirs;
      const size_t before = dirs.size();
      std::erase(dirs, d);
      covered |= dirs.size() != before;
      if (dirs.empty()) {
        if (it->second.park >= 0) {
          ::unlinkat(parked_.get(), park_name(it->second.park).c_str(), 0);
        }
        it = names_.erase(it);
      } else {
        ++it;
      }
    }
    if (auto it = data_.find(d); it != data_.end()) {
      const size_t before = it->second.size();
      std::erase_if(it->second, [seq](uint64_t s) { return s < seq; });
      covered |= it->second.size() != before;
      if (it->second.empty()) data_.erase(it);
    }
    if (covered) append(fmt::format("D {} {}\n", seq, d));
    reclaim();
    return 0;
  });
}

void CrashSim::reclaim() noexcept {
  if (!data_.empty() || !names_.empty() || !in_flight_.empty()) return;
  // Nothing to undo: the journal and the pre-images start again (the D or S line just
  // written is covered too). The journal alone is left to grow a little first: emptying
  // it after every sync would cost two syscalls per fsync for a few bytes.
  if (blob_end_ == 0 && journal_bytes_ < kJournalSlack) return;
  if (::ftruncate(journal_.get(), 0) == 0 && ::ftruncate(blobs_.get(), 0) == 0) {
    blob_end_ = 0;
    journal_bytes_ = 0;
  }
}

size_t CrashSim::live_records() const noexcept {
  std::lock_guard lock(mu_);
  size_t n = names_.size();
  for (const auto& [h, seqs] : data_) n += seqs.size();
  return n;
}

}  // namespace fsysfs::fusefs
