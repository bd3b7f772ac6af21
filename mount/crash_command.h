#pragma once

// `fsysfs crash MOUNTPOINT [--keep none|all]`: cuts a crashsim mount off as a power cut
// would (the FUSE connection is aborted: applications get ENOTCONN and nothing more
// reaches BACKING), lets its daemon roll BACKING back to a crash state
// (fusefs/crash_rollback.h), prints what was undone, and frees the mount point.

#include <span>
#include <string_view>

namespace fsysfs::mount {

// Returns the exit status; bad arguments and refusals throw Error with a message.
int run_crash(std::span<const std::string_view> args);

}  // namespace fsysfs::mount
