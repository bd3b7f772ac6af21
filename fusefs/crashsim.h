#pragma once

// Crash simulation (-o crashsim). Every change still reaches BACKING at once, so the mount
// behaves as any other; beside it, this records how to undo what is not durable yet under
// POSIX's strict reading, in the reserved directory BACKING/.fsysfs-crashsim:
//   - a file's data and size are durable once an fsync or fdatasync of it succeeded (or a
//     durable write: strict mode, O_DSYNC/O_SYNC);
//   - a name (created, removed, renamed, replaced) once an fsync of its directory
//     succeeded (both directories, for a rename);
//   - attributes (mode, owner, times) and extended attributes once an fsync of the file
//     (a directory: of itself) succeeded.
// `fsysfs crash` then cuts the mount off and rolls BACKING back (crash_rollback.h).
//
// The undo state lives in BACKING, not in memory, so that it is there whatever happens
// to the daemon: a journal, one text line per record appended with one write(2) before
// the change it undoes is made, a file of pre-images (the bytes a write or truncate
// overwrites), and hard links to files a removal or a rename took away ("parked"), kept
// until a sync covers them. Files and directories are named by their backing file handles,
// which stay valid across renames. Journal lines (handles and names in hex):
//   W seq file off len old_size blob_off saved
//                                          a data change over [off, off + len), of which
//                                          `saved` bytes (those below old_size) had a
//                                          pre-image, kept at blob_off
//   T seq file old_size blob_off len       a size change from old_size; len bytes of what
//                                          a shrink cut off, from blob_off
//   S seq file also                        file synced: its W and T before seq (and the
//                                          one numbered `also`) are durable
//   N seq dir name dir_flag                a name created (dir_flag 1: a directory)
//   X seq dir name park mode uid gid       a name removed: the file parked as `park` (a
//                                          number), or "-" for a directory of that mode
//   R seq dir1 name1 dir2 name2 park flags a rename; `park` holds the file it replaced
//   A seq file mode uid gid as an am ms mn  the attributes before a chmod, chown or utimes
//                                          (mode in octal; access and modify times)
//   Y seq file name had blob_off len       an extended attribute before it was set or
//                                          removed: had 0 (none) or 1, its value at blob_off
//   D seq dir                              directory synced: names in it, and its own
//                                          attributes, before seq are durable
//   K seq                                  the removal or rename `seq` failed: not undone
//
// Thread safety: every member function may be called from any thread.

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/unique_fd.h"
#include "fusefs/backing_handles.h"

namespace fsysfs::fusefs {

// The reserved directory's name in the backing root; hidden from the mount.
inline constexpr std::string_view kCrashsimDir = ".fsysfs-crashsim";

class CrashSim;

// Closes a change's ticket (CrashSim::changed) when it goes out of scope.
class ChangeTicket {
 public:
  ChangeTicket() = default;
  ChangeTicket(const ChangeTicket&) = delete;
  ChangeTicket& operator=(const ChangeTicket&) = delete;
  ~ChangeTicket();
  // Where the CrashSim call writes the ticket; `cs` is the one that issues it.
  uint64_t* issue(CrashSim* cs) noexcept {
    cs_ = cs;
    return &ticket_;
  }

 private:
  CrashSim* cs_ = nullptr;
  uint64_t ticket_ = 0;
};

// A handle as the journal writes it: "type:hex".
std::string handle_text(const BackingHandle& h);

class CrashSim {
 public:
  // Starts a fresh journal in BACKING/.fsysfs-crashsim (an old one, left by a mount that
  // was not crashed, is dropped). `root_fd` is the backing root. nullptr with the reason
  // in `why` when BACKING cannot hold it or its file handles cannot be used (the rollback
  // finds files by handle: root, on a filesystem that has them).
  static std::unique_ptr<CrashSim> start(int root_fd, std::string* why);

  // The next record's sequence number: a sync that starts now covers the records before
  // it, except the data changes still being made (see sync_point).
  uint64_t sync_point(int path_fd) noexcept;

  // --- file data; `path_fd` is the inode's O_PATH fd. Return 0 or -errno: on an error
  // nothing was recorded and the change must not be made.
  // Before bytes [off, off + len) are written (or zeroed, punched, copied into).
  // `ticket` then names the change until changed() is called once it is made or failed.
  int before_write(int path_fd, uint64_t off, uint64_t len, uint64_t* ticket) noexcept;
  // Before the file's size becomes `new_size` (truncate, O_TRUNC).
  int before_truncate(int path_fd, uint64_t new_size, uint64_t* ticket) noexcept;
  // Before a chmod, chown or utimes of the inode.
  int before_attr(int path_fd, uint64_t* ticket) noexcept;
  // Before the extended attribute `name` is set or removed.
  int before_xattr(int path_fd, const char* name, uint64_t* ticket) noexcept;
  // The change `ticket` names was made, or failed (its record then restores what is there).
  void changed(uint64_t ticket) noexcept;
  // A sync of the file that started at sync_point() `seq` succeeded; it also covers the
  // change `also` (a ticket, 0 for none): a durable write's own.
  void file_synced(int path_fd, uint64_t seq, uint64_t also = 0) noexcept;

  // --- names; `dir_fd` is the directory's O_PATH fd.
  // After `name` was made in `dir` (file, directory, symlink, node or hard link).
  void created(int dir_fd, const char* name, bool is_dir) noexcept;
  // Before `name` is removed from `dir`: parks the file (a directory, which must be empty,
  // only has its attributes kept). 0 or -errno (nothing recorded: do not remove it).
  // `ticket` names the record for failed().
  int before_remove(int dir_fd, const char* name, uint64_t* ticket) noexcept;
  // Before a rename of dir1/name1 to dir2/name2 (RENAME_* `flags`): parks the file it
  // would replace. 0 or -errno.
  int before_rename(int dir1_fd, const char* name1, int dir2_fd, const char* name2, unsigned flags,
                    uint64_t* ticket) noexcept;
  // The removal or rename `ticket` recorded failed: its record must not be undone.
  void failed(uint64_t ticket) noexcept;
  // An fsync of `dir` that started at sync_point() `seq` succeeded.
  void dir_synced(int dir_fd, uint64_t seq) noexcept;

  // Records not yet covered by a sync (for stats and tests).
  size_t live_records() const noexcept;

 private:
  CrashSim(UniqueFd dir, UniqueFd journal, UniqueFd blobs, UniqueFd parked,
           BackingHandles handles) noexcept;
  struct NameRecord {
    std::vector<std::string> dirs;  // handles of the directories still to be synced
    long park = -1;                 // the parked file, or -1
  };
  // Records a W (is_write) or T line for a change of [off, off + len) or of the size to off.
  int record_data(int path_fd, uint64_t off, uint64_t len, bool is_write,
                  uint64_t* ticket) noexcept;
  // Under mu_: appends a line for a change of the file `h`; its sequence number is the
  // ticket, open until changed().
  int track(const std::string& h, uint64_t seq, const std::string& line, uint64_t* ticket);
  // Under mu_: appends one journal line; -errno on failure.
  int append(const std::string& line) noexcept;
  // Under mu_: appends `bytes` to the pre-image file; their offset, or -errno.
  int64_t save_bytes(std::string_view bytes) noexcept;
  // Under mu_: appends bytes to the pre-image file; their offset, or -errno.
  int64_t save_preimage(int fd, uint64_t off, uint64_t len) noexcept;
  // Under mu_: drops what no record needs any more.
  void reclaim() noexcept;
  std::string handle_of(int fd) const;
  // The parked file's name in parked/.
  static std::string park_name(long park);

  const BackingHandles handles_;
  mutable std::mutex mu_;
  UniqueFd dir_, journal_, blobs_, parked_;  // guarded by mu_
  uint64_t next_seq_ = 1;
  uint64_t blob_end_ = 0;
  uint64_t journal_bytes_ = 0;
  static constexpr uint64_t kJournalSlack = 1 << 20;
  // Data and attribute records not yet synced, per file handle: their sequence numbers.
  std::unordered_map<std::string, std::vector<uint64_t>> data_;
  // Data changes being made: ticket (sequence number) -> file handle.
  std::map<uint64_t, std::string> in_flight_;
  std::map<uint64_t, NameRecord> names_;  // name records not yet synced, by sequence number
};

}  // namespace fsysfs::fusefs
