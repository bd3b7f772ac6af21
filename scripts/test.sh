#!/usr/bin/env bash
# The whole test suite, every build with warnings as errors: formatting, clang-tidy, the
# default (RelWithDebInfo, GCC) build's tests (engine, NVMe fakes and the QEMU
# emulated-NVMe guests, the command, real mounts, a short soak), the mount tests again on
# the /dev/fuse transport, the Release build and its Debian packages (installed, used and
# purged: scripts/package-test.sh), then a Clang build's engine, command, mount and fuzz
# tests under ASan+UBSan, and a GCC build's engine and mount tests under TSan. Needs root (FUSE mounts, uid switches). Where the kernel has FUSE over
# io_uring (Linux 6.14+), it turns the fuse module's enable_uring on for the run, so the
# default mount takes the io_uring transport, and puts it back afterwards. Exits non-zero
# on the first failing stage.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

./scripts/setup.sh -DFSYSFS_WERROR=ON

uring_param=/sys/module/fuse/parameters/enable_uring
if [[ -w $uring_param ]]; then
  uring_was=$(cat "$uring_param")
  trap 'echo "$uring_was" > "$uring_param"' EXIT
  echo Y > "$uring_param"
  echo "== FUSE over io_uring on for the run (was $uring_was)"
else
  echo "== no FUSE over io_uring here: every mount test runs on /dev/fuse"
fi

echo "== clang-format"
git ls-files '*.cc' '*.h' | xargs clang-format --dry-run --Werror

echo "== clang-tidy"
./scripts/tidy.sh build

echo "== release build: all tests (mounts on the default transport)"
(cd build && ctest -j"$jobs" --output-on-failure --timeout 600)

echo "== release build: mount tests on the /dev/fuse transport"
(cd build && FSYSFS_TEST_TRANSPORT=dev ctest -j"$jobs" --output-on-failure --timeout 600 \
  -L mount -LE "vm|soak")

echo "== Release build and Debian packages"
./scripts/package-test.sh

echo "== Clang build with ASan+UBSan: engine, command, mount and fuzz tests"
cmake -S . -B build-asan-clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
  -DFSYSFS_WERROR=ON -DFSYSFS_SANITIZE=address,undefined >/dev/null
cmake --build build-asan-clang -j"$jobs"
(cd build-asan-clang && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest -j"$jobs" --output-on-failure --timeout 900 -LE "vm|soak")

echo "== TSan build: engine and mount tests"
# Without the scale tests (100,000 and 200,000 entries, 10,000 open files): they check
# limits, not races, and take minutes under TSan. The other builds run them.
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFSYSFS_WERROR=ON \
  -DFSYSFS_SANITIZE=thread >/dev/null
cmake --build build-tsan -j"$jobs"
(cd build-tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/../tests/tsan.supp" \
  ctest -j"$jobs" --output-on-failure --timeout 900 -L "engine|mount" -LE "vm|soak" \
    -E "ThousandEntriesListedCompletely|TenThousandFilesOpenAtOnce")

echo "== all tests passed"
