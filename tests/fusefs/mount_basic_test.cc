// Mount tests for the core operations: each scenario runs on a plain directory and on the
// mount, and every recorded result must match.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>

#include "tests/fusefs/mount_fixture.h"
#include "tests/fusefs/parity.h"

namespace fsysfs::test {
namespace {

class MountBasic : public MountFixture {
 protected:
  void parity(const Scenario& s) { expect_parity(plain_, mnt_, s); }
};

std::string list_dir(const std::string& path) {
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return "<" + errno_name(errno) + ">";
  std::set<std::string> names;
  while (struct dirent* e = readdir(d)) {
    names.insert(std::string(e->d_name) + ":" + std::to_string(e->d_type));
  }
  closedir(d);
  std::string out;
  for (auto& n : names) out += n + " ";
  return out;
}

TEST_F(MountBasic, MountIsLiveAndShowsBacking) {
  write_file(backing_ + "/pre", "existing");
  EXPECT_EQ(read_file(mnt_ + "/pre"), "existing");
}

TEST_F(MountBasic, CreateWriteReadFsync_Parity) {
  parity([](Recorder& r) {
    int fd = r.fd("open creat", ::open(r.p("f").c_str(), O_RDWR | O_CREAT | O_EXCL, 0640));
    r.rc("write", ::write(fd, "hello world", 11), true);
    r.rc("pwrite", ::pwrite(fd, "W", 1, 6), true);
    r.rc("fsync", ::fsync(fd));
    r.rc("fdatasync", ::fdatasync(fd));
    char buf[64] = {};
    r.rc("pread", ::pread(fd, buf, sizeof buf, 0), true);
    r.note("bytes", buf);
    r.stat_fd("fstat", fd);
    r.rc("close", ::close(fd));
    r.stat("stat", "f");
    r.content("content", "f");
    r.open_probe("open excl again", ::open(r.p("f").c_str(), O_RDWR | O_CREAT | O_EXCL, 0640));
    r.open_probe("open missing", ::open(r.p("missing").c_str(), O_RDONLY));
  });
}

TEST_F(MountBasic, BytesWrittenLandOnBacking) {
  const std::string data(3 << 20, 'x');
  write_file(mnt_ + "/big", data);
  EXPECT_EQ(read_file(backing_ + "/big"), data);
  write_file(backing_ + "/fromback", "abc");
  EXPECT_EQ(read_file(mnt_ + "/fromback"), "abc");
}

TEST_F(MountBasic, OpenTruncAndAppend_Parity) {
  parity([](Recorder& r) {
    int fd = ::open(r.p("t").c_str(), O_WRONLY | O_CREAT, 0644);
    r.rc("write", ::write(fd, "0123456789", 10), true);
    ::close(fd);
    fd = r.fd("open trunc", ::open(r.p("t").c_str(), O_WRONLY | O_TRUNC));
    r.stat_fd("after trunc", fd);
    r.rc("write", ::write(fd, "ab", 2), true);
    ::close(fd);
    fd = r.fd("open append", ::open(r.p("t").c_str(), O_WRONLY | O_APPEND));
    r.rc("pwrite ignores offset", ::pwrite(fd, "cd", 2, 0), true);
    r.rc("write", ::write(fd, "ef", 2), true);
    ::close(fd);
    r.content("content", "t");
  });
}

TEST_F(MountBasic, MkdirRmdirUnlink_Parity) {
  parity([](Recorder& r) {
    r.rc("mkdir", ::mkdir(r.p("d").c_str(), 0750));
    r.stat("stat d", "d");
    r.rc("mkdir again", ::mkdir(r.p("d").c_str(), 0750));
    r.rc("mkdir in missing", ::mkdir(r.p("nope/x").c_str(), 0750));
    int fd = ::open(r.p("d/f").c_str(), O_WRONLY | O_CREAT, 0600);
    ::close(fd);
    r.rc("mkdir under file", ::mkdir(r.p("d/f/x").c_str(), 0750));
    r.rc("rmdir nonempty", ::rmdir(r.p("d").c_str()));
    r.rc("rmdir file", ::rmdir(r.p("d/f").c_str()));
    r.rc("unlink dir", ::unlink(r.p("d").c_str()));
    r.rc("unlink", ::unlink(r.p("d/f").c_str()));
    r.rc("unlink again", ::unlink(r.p("d/f").c_str()));
    r.stat("stat d after", "d");
    r.rc("rmdir", ::rmdir(r.p("d").c_str()));
    r.rc("rmdir again", ::rmdir(r.p("d").c_str()));
    r.rc("open dir for write", ::open(r.p(".").c_str(), O_WRONLY));
    r.rc("mkdir long name", ::mkdir(r.p(std::string(300, 'n')).c_str(), 0755));
  });
}

TEST_F(MountBasic, RenameFlags_Parity) {
  parity([](Recorder& r) {
    write_file(r.p("a"), "A");
    write_file(r.p("b"), "B");
    ::mkdir(r.p("dir").c_str(), 0755);
    ::mkdir(r.p("full").c_str(), 0755);
    write_file(r.p("full/x"), "x");
    r.rc("noreplace existing",
         ::renameat2(AT_FDCWD, r.p("a").c_str(), AT_FDCWD, r.p("b").c_str(), RENAME_NOREPLACE));
    r.rc("exchange",
         ::renameat2(AT_FDCWD, r.p("a").c_str(), AT_FDCWD, r.p("b").c_str(), RENAME_EXCHANGE));
    r.content("a after exchange", "a");
    r.content("b after exchange", "b");
    r.rc("exchange missing",
         ::renameat2(AT_FDCWD, r.p("a").c_str(), AT_FDCWD, r.p("zz").c_str(), RENAME_EXCHANGE));
    r.rc("rename over", ::rename(r.p("a").c_str(), r.p("b").c_str()));
    r.content("b", "b");
    r.stat("a gone", "a");
    r.rc("file over dir", ::rename(r.p("b").c_str(), r.p("dir").c_str()));
    r.rc("dir over file", ::rename(r.p("dir").c_str(), r.p("b").c_str()));
    r.rc("dir over nonempty", ::rename(r.p("dir").c_str(), r.p("full").c_str()));
    r.rc("dir into itself", ::rename(r.p("dir").c_str(), r.p("dir/sub").c_str()));
    r.rc("noreplace new", ::renameat2(AT_FDCWD, r.p("b").c_str(), AT_FDCWD, r.p("dir/b2").c_str(),
                                      RENAME_NOREPLACE));
    r.content("moved", "dir/b2");
    r.rc("missing source", ::rename(r.p("nope").c_str(), r.p("x").c_str()));
  });
}

TEST_F(MountBasic, ReaddirListsEverything_Parity) {
  parity([](Recorder& r) {
    ::mkdir(r.p("ls").c_str(), 0755);
    for (int i = 0; i < 300; ++i) write_file(r.p("ls/file" + std::to_string(i)), "");
    ::mkdir(r.p("ls/sub").c_str(), 0755);
    ::symlink("file1", r.p("ls/link").c_str());
    r.note("listing", list_dir(r.p("ls")));
  });
}

TEST_F(MountBasic, UnlinkWhileOpenKeepsHandle_Parity) {
  parity([](Recorder& r) {
    int fd = ::open(r.p("u").c_str(), O_RDWR | O_CREAT, 0644);
    r.rc("write", ::write(fd, "data", 4), true);
    r.rc("unlink", ::unlink(r.p("u").c_str()));
    r.rc("pwrite after unlink", ::pwrite(fd, "more", 4, 4), true);
    char buf[16] = {};
    r.rc("pread after unlink", ::pread(fd, buf, sizeof buf, 0), true);
    r.note("bytes", buf);
    r.stat_fd("fstat", fd);
    r.rc("fsync", ::fsync(fd));
    r.rc("close", ::close(fd));
    r.stat("gone", "u");
  });
}

TEST_F(MountBasic, RenameOverOpenFile_Parity) {
  parity([](Recorder& r) {
    write_file(r.p("old"), "old content");
    write_file(r.p("new"), "new content");
    int fd = ::open(r.p("old").c_str(), O_RDWR);
    r.rc("rename new over old", ::rename(r.p("new").c_str(), r.p("old").c_str()));
    char buf[32] = {};
    r.rc("read open victim", ::pread(fd, buf, sizeof buf, 0), true);
    r.note("victim bytes", buf);
    r.rc("write victim", ::pwrite(fd, "X", 1, 0), true);
    r.rc("close", ::close(fd));
    r.content("old now", "old");
  });
}

}  // namespace
}  // namespace fsysfs::test
