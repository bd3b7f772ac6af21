#pragma once

#include <stdexcept>
#include <string>

namespace fsysfs::mount {

// A start-up failure the user can act on. main() prints "fsysfs: <what()>" on one line
// and exits non-zero; the message names the offending argument, option or path.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace fsysfs::mount
