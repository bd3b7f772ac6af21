// Fuzzes the -o mount option parser: each NUL-separated part of the input is one -o
// argument. Parsing must either succeed or throw mount::Error; any other exception, a
// crash, a sanitizer report or a leak is a finding. Accepted settings must also be
// showable (--help and the control file print them through the table).

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "mount/error.h"
#include "mount/options.h"
#include "tests/fuzz/fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fsysfs::mount;
  Settings settings;
  try {
    for (const auto& options : fsysfs::fuzz::split_nul(data, size)) {
      apply_mount_options(settings, options);
    }
    finish_settings(settings);
  } catch (const Error&) {
    return 0;
  }
  for (const auto& spec : option_table()) {
    if (spec.show) (void)spec.show(settings);
  }
  // finish_settings resolved every dependent default.
  if (settings.config.durability == fsysfs::fusefs::Durability::kStrict &&
      settings.config.writeback_cache) {
    std::abort();
  }
  return 0;
}
