#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests and the benchmarks need, then
# configures and builds fsysfs into ./build (the binary is ./build/fsysfs). Arguments are
# passed to cmake's configure step (scripts/test.sh adds -DFSYSFS_WERROR=ON).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config git clang-format clang-tidy
  liburing-dev libfuse3-dev fuse3 libspdlog-dev libfmt-dev libgtest-dev
  fio stress-ng python3 e2fsprogs util-linux procps attr
  # the Clang build (with libFuzzer) and the Debian packages' checks
  clang libclang-rt-14-dev dpkg-dev file lintian man-db
  # the emulated-NVMe test (tests/vm)
  qemu-system-x86 linux-image-amd64 busybox-static cpio kmod
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build build -j"$(nproc)"
echo "built ./build/fsysfs"
