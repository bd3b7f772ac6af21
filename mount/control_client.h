#pragma once

// `fsysfs stats|set|inject MOUNTPOINT ...`: the client side of the control file
// (fusefs/control.h). Each reads or writes one extended attribute of MOUNTPOINT/.fsysfs.

#include <span>
#include <string_view>

namespace fsysfs::mount {

// Each returns the exit status; bad arguments and refusals throw Error with a message.
int run_stats(std::span<const std::string_view> args);
int run_set(std::span<const std::string_view> args);
int run_inject(std::span<const std::string_view> args);

}  // namespace fsysfs::mount
