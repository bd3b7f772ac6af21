#pragma once

// Splits a fuzzer input into strings: the bytes between NULs, so one input can carry an
// argv or several -o arguments. Bytes are kept as they are (invalid UTF-8 included).

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fsysfs::fuzz {

inline std::vector<std::string> split_nul(const uint8_t* data, size_t size) {
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      parts.emplace_back();
    } else {
      parts.back() += static_cast<char>(data[i]);
    }
  }
  return parts;
}

}  // namespace fsysfs::fuzz
