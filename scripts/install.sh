#!/usr/bin/env bash
# Installs fsysfs and the engine library on this machine, as a user (not a developer)
# wants it: only the build dependencies, a Release build without the tests in
# ./build-install, then either
#   deb     the Debian packages (fsysfs, libfsys-engine0.1, libfsys-engine-dev), installed
#           with apt-get, which also removes them (apt-get purge fsysfs ...)
#   source  cmake --install into /usr/local (or PREFIX=/other/prefix)
# FSYSFS_INSTALL_BUILD names another build directory (scripts/package-test.sh uses its
# Release build, tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/packages.sh

how=${1:-}
sudo=""
[[ $(id -u) -eq 0 ]] || sudo=sudo
case $how in
  deb) prefix=/usr ;;
  source) prefix=${PREFIX:-/usr/local} ;;
  *)
    echo "usage: scripts/install.sh deb|source" >&2
    exit 2
    ;;
esac

install_packages "${build_packages[@]}"
build=${FSYSFS_INSTALL_BUILD:-build-install}
testing=()
[[ -n ${FSYSFS_INSTALL_BUILD:-} ]] || testing=(-DBUILD_TESTING=OFF)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "${testing[@]}" \
  -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
cmake --build "$build" -j"$(nproc)"
if [[ $how == deb ]]; then
  rm -f "$build"/*.deb
  (cd "$build" && cpack -G DEB)
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "$PWD/$build"/*.deb
else
  $sudo cmake --install "$build"
  $sudo ldconfig
fi
echo "installed: $prefix/bin/fsysfs ($("$prefix"/bin/fsysfs --version))"
