#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests and the benchmarks need, then
# configures and builds fsysfs into ./build (the binary is ./build/fsysfs). Arguments are
# passed to cmake's configure step (scripts/test.sh adds -DFSYSFS_WERROR=ON).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/packages.sh
packages=(
  "${build_packages[@]}"
  git clang-format clang-tidy libgtest-dev
  fio stress-ng python3 e2fsprogs util-linux procps attr
  # real programs under crashtest and the benchmarks
  sqlite3 jq
  # the Clang build (with libFuzzer) and the checks of the Debian packages
  clang libclang-rt-14-dev lintian man-db systemd
  # the emulated-NVMe test (tests/vm)
  qemu-system-x86 linux-image-amd64 busybox-static cpio kmod
)
install_packages "${packages[@]}"

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build build -j"$(nproc)"
echo "built ./build/fsysfs"
