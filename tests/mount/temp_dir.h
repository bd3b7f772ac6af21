#pragma once

#include "tests/temp_dir.h"

namespace fsysfs::mount::testing {

using fsysfs::testing::read_file;
using fsysfs::testing::TempDir;

}  // namespace fsysfs::mount::testing
