#pragma once

// The FUSE low-level entry points, one family per translation unit, wired together in
// ops_table.cc. Every op_* is noexcept and sends exactly one reply (forget sends none).

#include <fuse_lowlevel.h>

namespace fsysfs::fusefs {

struct Inode;

// ops_entry.cc
void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept;
void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) noexcept;
void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) noexcept;
void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              dev_t rdev) noexcept;
void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) noexcept;
void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) noexcept;
void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) noexcept;
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept;
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept;
void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags) noexcept;

// ops_attr.cc
void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                fuse_file_info* fi) noexcept;
void op_readlink(fuse_req_t req, fuse_ino_t ino) noexcept;
void op_statfs(fuse_req_t req, fuse_ino_t ino) noexcept;
void op_access(fuse_req_t req, fuse_ino_t ino, int mask) noexcept;
// Clears what the kernel clears on a native filesystem when `req`'s caller, lacking
// CAP_FSETID, writes, truncates or fallocates a regular file: S_ISUID, and S_ISGID when the
// file is group-executable or the caller is not in its group; and drops the kernel's cached
// attributes of `inode` if it did. `fd` is an open file of `inode`, or -1 to go through its
// O_PATH fd. Returns 0 or -errno.
int clear_suidgid(fuse_req_t req, const Inode& inode, int fd) noexcept;

// ops_dir.cc
void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                fuse_file_info* fi) noexcept;
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    fuse_file_info* fi) noexcept;
void op_releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) noexcept;

// ops_file.cc
void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               fuse_file_info* fi) noexcept;
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) noexcept;
void op_write_buf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* bufv, off_t off,
                  fuse_file_info* fi) noexcept;
void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept;
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) noexcept;
void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                  fuse_file_info* fi) noexcept;
void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_file_info* fi_in,
                        fuse_ino_t ino_out, off_t off_out, fuse_file_info* fi_out, size_t len,
                        int flags) noexcept;
void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* fi) noexcept;
void op_flock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int op) noexcept;

// ops_xattr.cc
void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                 int flags) noexcept;
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) noexcept;
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) noexcept;
void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) noexcept;

// ops_table.cc
const fuse_lowlevel_ops& lowlevel_ops() noexcept;

}  // namespace fsysfs::fusefs
