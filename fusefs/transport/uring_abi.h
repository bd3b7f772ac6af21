#pragma once

// The FUSE-over-io_uring protocol (Linux 6.14+, FUSE 7.42) as the kernel's
// include/uapi/linux/fuse.h defines it. Debian 12's linux-libc-dev and libfuse 3.14 predate
// it, so the project declares it; the layouts are checked below.

#include <cstddef>
#include <cstdint>

namespace fsysfs::fusefs::uring_abi {

// FUSE_OVER_IO_URING is bit 41 of the INIT flags: bit 9 of flags2 (needs FUSE_INIT_EXT).
inline constexpr uint32_t kInitFlags2OverIoUring = 1u << 9;

inline constexpr size_t kInOutHeaderSize = 128;
inline constexpr size_t kOpInSize = 128;

// struct fuse_uring_ent_in_out
struct EntInOut {
  uint64_t flags;
  uint64_t commit_id;   // set by the kernel with a request; sent back with its reply
  uint32_t payload_sz;  // bytes used in the payload buffer, either way
  uint32_t padding;
  uint64_t reserved;
};

// struct fuse_uring_req_header: the first buffer of an entry.
struct ReqHeader {
  char in_out[kInOutHeaderSize];  // fuse_in_header of a request, fuse_out_header of a reply
  char op_in[kOpInSize];          // the request's first argument (the op's header), if any
  EntInOut ent;
};

// The SQE's cmd_op of an IORING_OP_URING_CMD on /dev/fuse.
enum Cmd : uint32_t {
  kRegister = 1,        // give the kernel an entry's buffers and wait for a request
  kCommitAndFetch = 2,  // send the reply in the entry, then wait for the next request
};

// struct fuse_uring_cmd_req, in the SQE's command area.
struct CmdReq {
  uint64_t flags;
  uint64_t commit_id;
  uint16_t qid;
  uint8_t padding[6];
};

static_assert(sizeof(EntInOut) == 32);
static_assert(sizeof(ReqHeader) == 288);
static_assert(offsetof(ReqHeader, ent) == 256);
static_assert(sizeof(CmdReq) == 24);

}  // namespace fsysfs::fusefs::uring_abi
