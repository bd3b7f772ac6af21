// Fuzzes the command line parser: the input's NUL-separated parts are argv[1..]. Parsing
// (and applying the -o options it collected) must either succeed or throw mount::Error.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "mount/command_line.h"
#include "mount/error.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fsysfs::mount;
  const std::vector<std::string> parts = fsysfs::fuzz::split_nul(data, size);
  const std::vector<std::string_view> args(parts.begin(), parts.end());
  try {
    CommandLine cl = parse_command_line(args);
    if (cl.action == CommandLine::Action::kMount) (void)settings_from(cl);
  } catch (const Error&) {
  }
  return 0;
}
