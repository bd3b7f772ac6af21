// Crash simulation (-o crashsim, fsysfs crash): each rule of the model on a real mount,
// checked on the bytes and names BACKING holds after the rollback. A change is undone
// unless the sync the model asks for happened: the file's fsync or fdatasync (or a durable
// write) for its data and size, its directory's fsync for a name, both directories' for a
// rename.

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fusefs/crashsim.h"
#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"

namespace fsysfs::test {
namespace {

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(path.c_str()); d != nullptr) {
    while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
    ::closedir(d);
  }
  return names;
}

class CrashsimTest : public MountFixture {
 protected:
  std::string mount_options() const override {
    return "allow_other,default_permissions,crashsim" + extra_options();
  }
  virtual std::string extra_options() const { return ""; }

  std::string b(const std::string& name) const { return backing_ + "/" + name; }
  std::string m(const std::string& name) const { return mnt_ + "/" + name; }

  // `fsysfs crash` with `args`; expects success and returns its report.
  std::string crash(std::vector<std::string> args = {}) {
    args.insert(args.begin(), {"crash", mnt_});
    CommandResult r = run_fsysfs(base_, args);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_FALSE(is_mounted(mnt_, "fuse.fsysfs"));
    mounted_ = false;
    struct stat st;
    EXPECT_NE(::lstat(b(std::string(fusefs::kCrashsimDir)).c_str(), &st), 0)
        << "the journal directory is left in BACKING";
    return r.out;
  }

  static void write_at(const std::string& path, const std::string& data, off_t off,
                       int flags = O_WRONLY | O_CREAT) {
    int fd = ::open(path.c_str(), flags, 0644);
    ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
    ASSERT_EQ(::pwrite(fd, data.data(), data.size(), off), static_cast<ssize_t>(data.size()));
    ASSERT_EQ(::close(fd), 0);
  }
  static void sync_path(const std::string& path, bool data_only = false) {
    int fd = ::open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
    ASSERT_EQ(data_only ? ::fdatasync(fd) : ::fsync(fd), 0) << path;
    ::close(fd);
  }
  static bool exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
  }
  static mode_t mode_of(const std::string& path) {
    struct stat st;
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }
  static std::string xattr(const std::string& path, const char* name) {
    char buf[256];
    const ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof buf);
    return n < 0 ? "(none)" : std::string(buf, static_cast<size_t>(n));
  }

  // For a mount that a crash rule cut off: waits for its daemon to finish the rollback and
  // returns the report it left in BACKING.
  std::string await_self_crash() {
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, daemon_, 0));
    EXPECT_GE(pidfd, 0) << std::strerror(errno);
    pollfd p{pidfd, POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 120'000), 1) << "the daemon did not exit after the crash point";
    ::close(pidfd);
    int status = 0;
    EXPECT_EQ(::waitpid(daemon_, &status, 0), daemon_);
    daemon_ = -1;
    if (is_mounted(mnt_, "fuse.fsysfs")) ::umount2(mnt_.c_str(), MNT_DETACH);
    mounted_ = false;
    const std::string dir = b(std::string(fusefs::kCrashsimDir));
    std::string report = read_file(dir + "/report");
    ::unlink((dir + "/report").c_str());
    ::rmdir(dir.c_str());
    return report;
  }

  // Every name under BACKING with its type, mode and contents, for comparing crash states.
  std::map<std::string, std::string> snapshot() const {
    std::map<std::string, std::string> out;
    std::function<void(const std::string&)> walk = [&](const std::string& rel) {
      for (const std::string& name : list_dir(backing_ + rel)) {
        if (name == "." || name == "..") continue;
        const std::string path = backing_ + rel + "/" + name;
        struct stat st;
        if (::lstat(path.c_str(), &st) != 0) continue;
        std::string& v = out[rel + "/" + name];
        v = std::to_string(st.st_mode);
        if (S_ISDIR(st.st_mode)) {
          walk(rel + "/" + name);
        } else if (S_ISREG(st.st_mode)) {
          v += ":" + read_file(path);
        }
      }
    };
    walk("");
    return out;
  }
};

TEST_F(CrashsimTest, UnsyncedDataIsLost_SyncedDataSurvives) {
  write_file(b("kept"), "old kept");
  write_file(b("lost"), "old lost");
  write_file(b("datasync"), "old data");
  write_at(m("kept"), "NEW", 0);
  sync_path(m("kept"));
  write_at(m("lost"), "NEW", 0);
  write_at(m("datasync"), "NEW", 0);
  sync_path(m("datasync"), true);
  const std::string report = crash();
  EXPECT_EQ(read_file(b("kept")), "NEW kept");
  EXPECT_EQ(read_file(b("lost")), "old lost");
  EXPECT_EQ(read_file(b("datasync")), "NEW data");
  EXPECT_NE(report.find("undone: write of 3 bytes at 0 to /lost"), std::string::npos) << report;
}

TEST_F(CrashsimTest, WritePastTheEndAndTruncate_AreLostUntilSynced) {
  write_file(b("grown"), "1234");
  write_file(b("cut"), "123456789");
  write_file(b("cut_synced"), "123456789");
  write_at(m("grown"), "5678", 4);
  ASSERT_EQ(::truncate(m("cut").c_str(), 2), 0);
  ASSERT_EQ(::truncate(m("cut_synced").c_str(), 2), 0);
  sync_path(m("cut_synced"), true);
  crash();
  EXPECT_EQ(read_file(b("grown")), "1234");
  EXPECT_EQ(read_file(b("cut")), "123456789");
  EXPECT_EQ(read_file(b("cut_synced")), "12");
}

TEST_F(CrashsimTest, AnOverwriteAfterASyncIsUndoneToTheSyncedBytes) {
  write_at(m("f"), "first", 0);
  sync_path(m("f"));
  sync_path(mnt_);
  write_at(m("f"), "SECOND", 0);
  write_at(m("f"), "third!!", 2);
  crash();
  EXPECT_EQ(read_file(b("f")), "first");
}

TEST_F(CrashsimTest, ANewNameIsLostUntilItsDirectoryIsSynced) {
  write_at(m("named"), "data", 0);
  sync_path(m("named"));
  sync_path(mnt_);
  // The directory's fsync covers every name made in it before: make this one after.
  write_at(m("unnamed"), "data", 0);
  sync_path(m("unnamed"));  // the file's data, not its name
  crash();
  EXPECT_EQ(read_file(b("named")), "data");
  EXPECT_FALSE(exists(b("unnamed")));
}

// Files and directories in BACKING before the mount are durable.
TEST_F(CrashsimTest, ARemovedNameComesBackUntilItsDirectoryIsSynced) {
  write_file(b("removed"), "still here");
  write_file(b("replaced"), "old contents");
  ASSERT_EQ(::mkdir(b("emptydir").c_str(), 0750), 0);
  ASSERT_EQ(::unlink(m("removed").c_str()), 0);
  ASSERT_EQ(::rmdir(m("emptydir").c_str()), 0);
  ASSERT_EQ(::unlink(m("replaced").c_str()), 0);
  write_at(m("replaced"), "a new file", 0);
  sync_path(m("replaced"));
  crash();
  EXPECT_EQ(read_file(b("removed")), "still here");
  EXPECT_EQ(read_file(b("replaced")), "old contents");
  struct stat st;
  ASSERT_EQ(::stat(b("emptydir").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
}

TEST_F(CrashsimTest, ARemovalMadeDurableStaysRemoved) {
  ASSERT_EQ(::mkdir(b("d").c_str(), 0755), 0);
  write_file(b("d/f"), "x");
  ASSERT_EQ(::unlink(m("d/f").c_str()), 0);
  sync_path(m("d"));
  crash();
  EXPECT_FALSE(exists(b("d/f")));
}

// The saver that writes a temporary file, fsyncs it and renames it over the old one, but
// never fsyncs the directory: after a crash the old contents are what is there.
TEST_F(CrashsimTest, RenameOverWithoutADirectorySync_LeavesTheOldFile) {
  write_file(b("config"), "version 1");
  write_at(m("config.tmp"), "version 2", 0);
  sync_path(m("config.tmp"));
  ASSERT_EQ(::rename(m("config.tmp").c_str(), m("config").c_str()), 0);
  crash();
  EXPECT_EQ(read_file(b("config")), "version 1");
  EXPECT_FALSE(exists(b("config.tmp")));
}

TEST_F(CrashsimTest, RenameOverWithADirectorySync_Survives) {
  write_file(b("config"), "version 1");
  write_at(m("config.tmp"), "version 2", 0);
  sync_path(m("config.tmp"));
  ASSERT_EQ(::rename(m("config.tmp").c_str(), m("config").c_str()), 0);
  sync_path(mnt_);
  crash();
  EXPECT_EQ(read_file(b("config")), "version 2");
  EXPECT_FALSE(exists(b("config.tmp")));
}

TEST_F(CrashsimTest, ARenameBetweenDirectoriesNeedsBothSynced) {
  for (const char* d : {"a", "b", "c", "d"}) ASSERT_EQ(::mkdir(b(d).c_str(), 0755), 0);
  write_file(b("a/one"), "1");
  write_file(b("c/two"), "2");
  ASSERT_EQ(::rename(m("a/one").c_str(), m("b/one").c_str()), 0);
  sync_path(m("b"));  // only the target's directory
  ASSERT_EQ(::rename(m("c/two").c_str(), m("d/two").c_str()), 0);
  sync_path(m("c"));
  sync_path(m("d"));
  crash();
  EXPECT_EQ(read_file(b("a/one")), "1");
  EXPECT_FALSE(exists(b("b/one")));
  EXPECT_EQ(read_file(b("d/two")), "2");
  EXPECT_FALSE(exists(b("c/two")));
}

TEST_F(CrashsimTest, ANewDirectoryAndItsContentsAreLost) {
  ASSERT_EQ(::mkdir(m("new").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(m("new/sub").c_str(), 0755), 0);
  write_at(m("new/sub/f"), "data", 0);
  ASSERT_EQ(::symlink("target", m("new/link").c_str()), 0);
  ASSERT_EQ(::link(m("new/sub/f").c_str(), m("new/hard").c_str()), 0);
  crash();
  EXPECT_FALSE(exists(b("new")));
}

TEST_F(CrashsimTest, KeepAll_LeavesEveryChange) {
  write_file(b("f"), "old");
  write_at(m("f"), "NEW", 0);
  write_at(m("g"), "new file", 0);
  const std::string report = crash({"--keep", "all"});
  EXPECT_EQ(read_file(b("f")), "NEW");
  EXPECT_EQ(read_file(b("g")), "new file");
  EXPECT_NE(report.find("kept: creation of /g"), std::string::npos) << report;
}

TEST_F(CrashsimTest, ApplicationsSeeTheConnectionGone) {
  int fd = ::open(m("f").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  crash();
  EXPECT_EQ(::write(fd, "x", 1), -1);
  EXPECT_EQ(errno, ENOTCONN);
  ::close(fd);
}

TEST_F(CrashsimTest, TheJournalIsHiddenAndReservedAndNothingOutsideBackingIsTouched) {
  write_file(plain_ + "/outside", "outside");
  std::vector<std::string> names = list_dir(mnt_);
  EXPECT_EQ(std::count(names.begin(), names.end(), std::string(fusefs::kCrashsimDir)), 0);
  const std::string journal = m(std::string(fusefs::kCrashsimDir));
  struct stat st;
  EXPECT_EQ(::lstat(journal.c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(::mkdir(journal.c_str(), 0755), -1);
  EXPECT_EQ(errno, EEXIST);
  write_at(m("f"), "x", 0);
  crash();
  EXPECT_EQ(read_file(plain_ + "/outside"), "outside");
}

class CrashsimStrictTest : public CrashsimTest {
 protected:
  std::string extra_options() const override { return ",durability=strict,nodirsync"; }
};

TEST_F(CrashsimStrictTest, DurableWritesSurvive_NamesStillNeedTheirDirectory) {
  write_file(b("f"), "old");
  write_at(m("f"), "NEW", 0);
  write_at(m("unnamed"), "data", 0);
  crash();
  EXPECT_EQ(read_file(b("f")), "NEW");
  EXPECT_FALSE(exists(b("unnamed")));
}

class CrashsimDirsyncTest : public CrashsimTest {
 protected:
  std::string extra_options() const override { return ",dirsync"; }
};

// dirsync fsyncs the directories of every name change before answering it.
TEST_F(CrashsimDirsyncTest, NamesSurviveWithoutTheApplicationsDirectorySync) {
  ASSERT_EQ(::mkdir(b("a").c_str(), 0755), 0);
  write_file(b("a/moved"), "m");
  write_file(b("removed"), "r");
  write_at(m("created"), "c", 0);
  ASSERT_EQ(::mkdir(m("dir").c_str(), 0755), 0);
  ASSERT_EQ(::rename(m("a/moved").c_str(), m("dir/moved").c_str()), 0);
  ASSERT_EQ(::unlink(m("removed").c_str()), 0);
  crash();
  EXPECT_TRUE(exists(b("created")));  // its data was never synced: the name alone survives
  EXPECT_EQ(read_file(b("created")), "");
  EXPECT_EQ(read_file(b("dir/moved")), "m");
  EXPECT_FALSE(exists(b("a/moved")));
  EXPECT_FALSE(exists(b("removed")));
}

TEST_F(CrashsimTest, AnODsyncWriteSurvives) {
  write_file(b("f"), "old");
  write_at(m("f"), "NEW", 0, O_WRONLY | O_DSYNC);
  crash();
  EXPECT_EQ(read_file(b("f")), "NEW");
}

class CrashsimNoneTest : public CrashsimTest {
 protected:
  std::string extra_options() const override { return ",durability=none"; }
};

// durability=none answers fsync without syncing: nothing becomes durable.
TEST_F(CrashsimNoneTest, FsyncKeepsNothing) {
  write_file(b("f"), "old");
  write_at(m("f"), "NEW", 0);
  sync_path(m("f"));
  sync_path(mnt_);
  crash();
  EXPECT_EQ(read_file(b("f")), "old");
}

// Writers overwrite and extend their files and fsync now and then while the mount is
// crashed under them. Each file must then hold what its last acknowledged fsync covered,
// or, for an fsync the crash cut short, what that fsync would have covered: the bytes
// written before it started.
TEST_F(CrashsimTest, ACrashDuringHeavyIoLeavesOnlyWhatSyncsCovered) {
  constexpr int kWriters = 4;
  struct Writer {
    std::string synced;   // the contents the last acknowledged fsync made durable
    std::string pending;  // the contents an fsync in flight would make durable
    std::string current;
    std::atomic<int> writes{0};
    std::thread thread;
  };
  std::vector<Writer> writers(kWriters);
  std::atomic<bool> stop{false};
  // Never synced: whenever the crash comes, there is a write to undo.
  write_at(m("unsynced"), "never synced", 0);
  for (int w = 0; w < kWriters; ++w) {
    const std::string name = "w" + std::to_string(w);
    writers[w].synced = pattern(static_cast<uint64_t>(w), 0, 3000);
    write_file(b(name), writers[w].synced);  // durable: it was there before the mount
    writers[w].current = writers[w].pending = writers[w].synced;
  }
  for (int w = 0; w < kWriters; ++w) {
    writers[w].thread = std::thread([this, w, &writers, &stop] {
      Writer& me = writers[w];
      const int fd = ::open(m("w" + std::to_string(w)).c_str(), O_WRONLY);
      if (fd < 0) return;
      uint64_t x = mix(static_cast<uint64_t>(w) + 1);
      for (uint64_t i = 0; !stop.load(); ++i) {
        x = mix(x);
        const size_t off = x % (me.current.size() + 512);
        const std::string data = pattern(x, off, 1 + (x >> 20) % 700);
        if (::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)) !=
            static_cast<ssize_t>(data.size())) {
          break;  // the crash
        }
        if (me.current.size() < off) me.current.resize(off, '\0');
        me.current.replace(off, std::min(data.size(), me.current.size() - off), data);
        me.writes.fetch_add(1);
        if (i % 5 == 4) {
          me.pending = me.current;
          if (::fsync(fd) != 0) break;
          me.synced = me.current;
        }
      }
      ::close(fd);
    });
  }
  // The crash comes once every writer is past its first fsync, wherever each one is then.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (auto& w : writers) {
    while (w.writes.load() < 7 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }
  const std::string report = crash();
  stop = true;
  EXPECT_NE(report.find("undone: write of 12 bytes at 0 to /unsynced"), std::string::npos)
      << report;
  for (auto& w : writers) {
    w.thread.join();
    EXPECT_GE(w.writes.load(), 7) << "a writer was still starting when the crash came";
  }
  for (int w = 0; w < kWriters; ++w) {
    const std::string got = read_file(b("w" + std::to_string(w)));
    EXPECT_TRUE(got == writers[w].synced || got == writers[w].pending)
        << "w" << w << ": " << got.size() << " bytes, synced " << writers[w].synced.size()
        << ", pending " << writers[w].pending.size();
  }
}

TEST_F(CrashsimTest, ModeOwnerAndXattrChanges_AreLostUntilTheFileIsSynced) {
  for (const char* name : {"lost", "synced"}) {
    write_file(b(name), "x");
    ASSERT_EQ(::chmod(b(name).c_str(), 0644), 0);
    ASSERT_EQ(::setxattr(b(name).c_str(), "user.a", "old", 3, 0), 0) << std::strerror(errno);
  }
  ASSERT_EQ(::mkdir(b("dir").c_str(), 0755), 0);
  for (const char* name : {"lost", "synced"}) {
    ASSERT_EQ(::chmod(m(name).c_str(), 0600), 0);
    ASSERT_EQ(::chown(m(name).c_str(), 1234, 1234), 0);
    ASSERT_EQ(::setxattr(m(name).c_str(), "user.a", "new", 3, 0), 0);
    ASSERT_EQ(::setxattr(m(name).c_str(), "user.b", "added", 5, 0), 0);
  }
  ASSERT_EQ(::chmod(m("dir").c_str(), 0700), 0);
  sync_path(m("synced"));
  crash();
  EXPECT_EQ(mode_of(b("lost")), 0644u);
  EXPECT_EQ(xattr(b("lost"), "user.a"), "old");
  EXPECT_EQ(xattr(b("lost"), "user.b"), "(none)");
  struct stat st;
  ASSERT_EQ(::stat(b("lost").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(mode_of(b("dir")), 0755u);
  EXPECT_EQ(mode_of(b("synced")), 0600u);
  EXPECT_EQ(xattr(b("synced"), "user.a"), "new");
  EXPECT_EQ(xattr(b("synced"), "user.b"), "added");
  ASSERT_EQ(::stat(b("synced").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
}

TEST_F(CrashsimTest, ADirectorysOwnModeSurvivesItsFsync) {
  ASSERT_EQ(::mkdir(b("dir").c_str(), 0755), 0);
  ASSERT_EQ(::chmod(m("dir").c_str(), 0700), 0);
  sync_path(m("dir"));
  crash();
  EXPECT_EQ(mode_of(b("dir")), 0700u);
}

// A workload of data, size and name changes, none synced, the same on every run.
class CrashsimRandomTest : public CrashsimTest {
 protected:
  void run_workload() {
    for (int i = 0; i < 6; ++i) write_file(b("f" + std::to_string(i)), std::string(3000, 'o'));
    mount();
    for (int i = 0; i < 6; ++i) {
      const std::string f = m("f" + std::to_string(i));
      write_at(f, std::string(1000, static_cast<char>('a' + i)), 500 * i);
      write_at(f, "tail", 3000 + i);
    }
    ASSERT_EQ(::truncate(m("f2").c_str(), 100), 0);
    ASSERT_EQ(::rename(m("f3").c_str(), m("g3").c_str()), 0);
    ASSERT_EQ(::unlink(m("f4").c_str()), 0);
    ASSERT_EQ(::mkdir(m("d").c_str(), 0755), 0);
    write_at(m("d/new"), "new", 0);
  }
  // Runs the workload on a fresh BACKING and crashes with `args`; BACKING's state after.
  std::map<std::string, std::string> crash_state(std::vector<std::string> args) {
    if (mounted_) unmount();
    for (const auto& [name, _] : snapshot()) {
      if (name.find('/', 1) == std::string::npos) {
        std::system(("rm -rf '" + backing_ + name + "'").c_str());
      }
    }
    run_workload();
    report_ = crash(std::move(args));
    return snapshot();
  }
  std::string report_;
};

TEST_F(CrashsimRandomTest, KeepRandom_TheSameSeedGivesTheSameState) {
  const auto none = crash_state({});
  const auto all = crash_state({"--keep", "all"});
  ASSERT_NE(none, all);
  const auto first = crash_state({"--keep", "random", "--seed", "42"});
  const std::string first_report = report_;
  EXPECT_NE(first_report.find("a random subset kept (seed 42)"), std::string::npos) << first_report;
  EXPECT_EQ(crash_state({"--keep", "random", "--seed", "42"}), first);
  EXPECT_EQ(report_, first_report);
  // Other seeds reach other states: neither all lost nor all kept every time.
  std::set<std::map<std::string, std::string>> states;
  for (int seed = 1; seed <= 6; ++seed) {
    states.insert(crash_state({"--keep", "random", "--seed", std::to_string(seed)}));
  }
  states.erase(none);
  states.erase(all);
  EXPECT_GE(states.size(), 2u);
}

TEST_F(CrashsimTest, Tear_KeepsAWriteInWholeSectors) {
  const std::string before(8192, 'o');
  const std::string after(8192, 'N');
  bool torn = false;
  for (int seed = 1; seed <= 5 && !torn; ++seed) {
    write_file(b("f"), before);
    if (!mounted_) mount();
    write_at(m("f"), after, 0);
    const std::string report =
        crash({"--keep", "random", "--seed", std::to_string(seed), "--tear"});
    const std::string got = read_file(b("f"));
    ASSERT_EQ(got.size(), before.size());
    std::set<char> kinds;
    for (size_t s = 0; s < got.size(); s += 512) {
      const std::string sector = got.substr(s, 512);
      ASSERT_TRUE(sector == before.substr(0, 512) || sector == after.substr(0, 512))
          << "sector " << s / 512 << " is neither the old nor the new bytes";
      kinds.insert(sector[0]);
    }
    if (kinds.size() == 2) {
      torn = true;
      EXPECT_NE(report.find("torn: write of 8192 bytes at 0 to /f: "), std::string::npos) << report;
    }
  }
  EXPECT_TRUE(torn) << "no seed of five tore the write";
}

TEST_F(CrashsimTest, CrashBadArguments) {
  CommandResult r = run_fsysfs(base_, {"crash", mnt_, "--tear"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("tearing writes needs keep=random"), std::string::npos) << r.err;
  r = run_fsysfs(base_, {"crash", mnt_, "--keep", "some"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("bad value 'some' for keep (expected none|all|random)"), std::string::npos)
      << r.err;
  EXPECT_TRUE(is_mounted(mnt_, "fuse.fsysfs"));
}

// A crash point: the mount cuts itself off at the second fsync of /f, after it reached
// BACKING (its bytes are durable, its reply lost) or before (they are not).
class CrashPointTest : public CrashsimTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(CrashPointTest, AtTheSecondFsync) {
  const bool after = std::string(GetParam()) == "after";
  write_file(b("f"), "old");
  write_file(b("other"), "x");
  sync_path(m("other"));  // not /f: not counted
  CommandResult r = run_fsysfs(
      base_, {"inject", mnt_, std::string("op=fsync,path=/f,count=2,crash=") + GetParam()});
  ASSERT_EQ(r.status, 0) << r.err;
  r = run_fsysfs(base_, {"stats", mnt_, "--json"});
  EXPECT_NE(r.out.find("\"crashsim_ops\":"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\"crashsim_ops\":0,"), std::string::npos) << r.out;
  int fd = ::open(m("f").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "A", 1, 0), 1);
  ASSERT_EQ(::fsync(fd), 0);
  ASSERT_EQ(::pwrite(fd, "B", 1, 1), 1);
  EXPECT_EQ(::fsync(fd), -1);
  // The request the cut caught in flight is aborted; later ones find no connection.
  EXPECT_TRUE(errno == ECONNABORTED || errno == ENOTCONN) << std::strerror(errno);
  EXPECT_EQ(::pwrite(fd, "C", 1, 2), -1);
  EXPECT_EQ(errno, ENOTCONN);
  ::close(fd);
  const std::string report = await_self_crash();
  EXPECT_EQ(read_file(b("f")), after ? "ABd" : "Ald");
  // Counted: the opens, writes and fsyncs of /other and /f; the second fsync of /f is the
  // crash point.
  EXPECT_TRUE(report.starts_with(std::string("crash point: ") + GetParam() + " request "))
      << report;
  EXPECT_NE(report.find(", fsync /f\n"), std::string::npos) << report;
  EXPECT_NE(report.find(after ? "crash: 0 change(s)" : "undone: write of 1 bytes at 1 to /f"),
            std::string::npos)
      << report;
}

INSTANTIATE_TEST_SUITE_P(BeforeAndAfter, CrashPointTest, ::testing::Values("before", "after"));

TEST_F(MountFixture, CrashRulesAreCheckedAndNeedACrashsimMount) {
  CommandResult r = run_fsysfs(base_, {"inject", mnt_, "op=fsync,crash=after"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "fsysfs: " + mnt_ + " is not a crashsim mount: a crash rule needs -o crashsim\n");
  r = run_fsysfs(base_, {"inject", mnt_, "op=fsync,crash=after,errno=EIO"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("a crash rule cuts the mount off: it takes no errno or delay_ms"),
            std::string::npos)
      << r.err;
  r = run_fsysfs(base_, {"inject", mnt_, "op=fsync,keep=random"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("keep, seed and tear belong to a crash rule"), std::string::npos) << r.err;
  r = run_fsysfs(base_, {"inject", mnt_, "op=fsync,crash=later"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("bad crash 'later' (expected before or after)"), std::string::npos) << r.err;
}

TEST_F(MountFixture, CrashRefusesAMountWithoutCrashsim) {
  CommandResult r = run_fsysfs(base_, {"crash", mnt_});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "fsysfs: " + mnt_ + " is not a crashsim mount (mount it with -o crashsim)\n");
  EXPECT_TRUE(is_mounted(mnt_, "fuse.fsysfs"));
}

}  // namespace
}  // namespace fsysfs::test
