#pragma once

// `fsysfs stats|set|inject MOUNTPOINT ...`: the client side of the control file
// (fusefs/control.h). Each reads or writes one extended attribute of MOUNTPOINT/.fsysfs.

#include <span>
#include <string>
#include <string_view>

namespace fsysfs::mount {

// Each returns the exit status; bad arguments and refusals throw Error with a message.
int run_stats(std::span<const std::string_view> args);
int run_set(std::span<const std::string_view> args);
int run_inject(std::span<const std::string_view> args);

// One control attribute (fusefs::control_attr) of the live mount at `mountpoint`. Throws
// Error naming the mount when it is not one, or its daemon is gone.
std::string read_control(std::string_view mountpoint, const char* name);
// Changes the live settings of the mount at `mountpoint`, as `fsysfs set` does, from
// items "durability=MODE", "sync", "dirsync[=on|off|auto]", "nodirsync". Every item is
// checked before anything changes. Throws Error.
void set_live(std::string_view mountpoint, std::span<const std::string_view> items);

}  // namespace fsysfs::mount
