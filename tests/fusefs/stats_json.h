#pragma once

// Reading a mount's statistics (the control file's user.fsysfs.stats.json) in tests.

#include <initializer_list>
#include <string>
#include <string_view>

namespace fsysfs::test {

// The stats JSON of the mount at `mnt` (a test failure and "" if it cannot be read).
std::string read_stats_json(const std::string& mnt);

// Finds the number at `keys` (each searched after the previous) in the stats JSON. The
// keys of one object never repeat, and objects are written in a fixed order, so a forward
// search reaches the right value.
uint64_t json_number(const std::string& json, std::initializer_list<std::string_view> keys);

// Same, for counters that the JSON leaves out while they are zero (errors by errno).
uint64_t json_count(const std::string& json, std::initializer_list<std::string_view> keys);

// The string value of the first `key` in the JSON ("?" when absent).
std::string json_word(const std::string& json, std::string_view key);

}  // namespace fsysfs::test
