#include "tests/fusefs/stats_json.h"

#include <gtest/gtest.h>
#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace fsysfs::test {

std::string read_stats_json(const std::string& mnt) {
  std::vector<char> buf(1 << 16);
  const std::string control = mnt + "/.fsysfs";
  ssize_t n = ::getxattr(control.c_str(), "user.fsysfs.stats.json", buf.data(), buf.size());
  EXPECT_GT(n, 0) << std::strerror(errno);
  return n > 0 ? std::string(buf.data(), static_cast<size_t>(n)) : std::string();
}

namespace {

size_t find_value(const std::string& json, std::initializer_list<std::string_view> keys) {
  size_t pos = 0;
  for (auto key : keys) {
    std::string quoted = "\"" + std::string(key) + "\":";
    pos = json.find(quoted, pos);
    if (pos == std::string::npos) return pos;
    pos += quoted.size();
  }
  return pos;
}

}  // namespace

uint64_t json_number(const std::string& json, std::initializer_list<std::string_view> keys) {
  const size_t pos = find_value(json, keys);
  if (pos == std::string::npos) {
    ADD_FAILURE() << "no such key path in " << json;
    return ~0ull;
  }
  return std::stoull(json.substr(pos));
}

uint64_t json_count(const std::string& json, std::initializer_list<std::string_view> keys) {
  const size_t pos = find_value(json, keys);
  return pos == std::string::npos ? 0 : std::stoull(json.substr(pos));
}

std::string json_word(const std::string& json, std::string_view key) {
  std::string quoted = "\"" + std::string(key) + "\":\"";
  size_t pos = json.find(quoted);
  if (pos == std::string::npos) return "?";
  pos += quoted.size();
  return json.substr(pos, json.find('"', pos) - pos);
}

}  // namespace fsysfs::test
