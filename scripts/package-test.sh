#!/usr/bin/env bash
# The Release build and the Debian packages, as a packager and then a user get them:
# builds Release with warnings as errors and runs its engine and command tests, then the
# README's two install commands on it (scripts/install.sh: source into a scratch prefix,
# with the engine example built against that; deb: CPack's packages installed with
# apt-get); checks the packages' computed dependencies and manual pages (lintian), the
# example systemd units, `man fsysfs`, the engine example built against the installed
# package (CMake and pkg-config), an /etc/fstab-style line mounted through mount(8), and
# purges the packages again. Needs root. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=build-release
jobs=$(nproc)
packages=(fsysfs libfsys-engine-dev)

fail() {
  echo "package-test: $*" >&2
  exit 1
}
# Whether the text $2 has a line matching $1. Commands' output is taken whole first: a
# `cmd | grep -q` stops reading at its match, and under pipefail the writer's broken pipe
# fails the check at random.
has() { grep -q -- "$1" <<<"$2"; }

scratch=$(mktemp -d /tmp/fsysfs-package.XXXXXX)
mnt=$scratch/mnt
pid=""
# Leaves the machine as it was, whatever step failed: the mount (live or dead) detached,
# its daemon gone, the packages purged (dpkg --purge ignores ones not installed).
cleanup() {
  set +e
  findmnt -rn -M "$mnt" >/dev/null 2>&1 && umount -l "$mnt"
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
  dpkg --purge fsysfs libfsys-engine-dev libfsys-engine0.1 >/dev/null 2>&1
  rm -rf "$scratch"
}
trap cleanup EXIT

echo "== Release build (GCC, warnings as errors): engine and command tests"
cmake -S . -B $build -DCMAKE_BUILD_TYPE=Release -DFSYSFS_WERROR=ON -DBUILD_TESTING=ON >/dev/null
cmake --build $build -j"$jobs"
(cd $build && ctest -j"$jobs" --output-on-failure --timeout 300 -L "engine|command")

echo "== the README's source install (scripts/install.sh source) into a scratch prefix"
PREFIX=$scratch/prefix FSYSFS_INSTALL_BUILD=$build ./scripts/install.sh source >/dev/null
[[ $(PKG_CONFIG_PATH=$scratch/prefix/lib/pkgconfig pkg-config --variable=prefix fsys-engine) == "$scratch/prefix" ]] ||
  fail "the pkg-config file of the scratch install does not name its prefix"
cmake -S examples/append -B "$scratch/example-prefix" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/example-prefix" >/dev/null
has "write+fdatasync: 2 ops" "$(LD_LIBRARY_PATH=$scratch/prefix/lib "$scratch/example-prefix/append" "$scratch/j0" 2)" ||
  fail "the example built against the scratch prefix failed"

echo "== the README's Debian install (scripts/install.sh deb)"
FSYSFS_INSTALL_BUILD=$build ./scripts/install.sh deb >/dev/null
debs=("$src"/$build/*.deb)
((${#debs[@]} == 3)) || fail "expected 3 packages, CPack made: ${debs[*]}"
for deb in "${debs[@]}"; do
  echo "$(dpkg-deb -f "$deb" Package): $(dpkg-deb -f "$deb" Depends)"
done
# dpkg-shlibdeps computed the libraries fsysfs links; fuse3 (its tools) is named.
depends=$(dpkg-deb -f $build/fsysfs_*.deb Depends)
names=" $(sed 's/ ([^)]*)//g; s/,/ /g' <<<"$depends") "  # package names only
for dep in libfuse3-3 liburing2 libstdc++6 libc6 fuse3; do
  [[ $names == *" $dep "* ]] || fail "fsysfs does not depend on $dep: $depends"
done
lib_deb=$(echo $build/libfsys-engine0*.deb)
has 'libfsys-engine\.so\.[0-9]' "$(dpkg-deb -c "$lib_deb")" || fail "no shared library in $lib_deb"
[[ $(dpkg-deb -f "$lib_deb" Depends) == *liburing2* ]] || fail "$lib_deb does not depend on liburing2"
# The manual pages as lintian checks them (the packages' other lintian tags, such as a
# missing copyright file, are not this test's business).
lintian --fail-on error,warning -C documentation/manual "${debs[@]}" ||
  fail "lintian found problems in the manual pages"

echo "== installed: man fsysfs, the systemd units"
for p in "${packages[@]}"; do
  has "ok installed" "$(dpkg-query -W -f='${Status}' "$p")" || fail "$p not installed"
done
[[ $(command -v fsysfs) == /usr/bin/fsysfs ]] ||
  fail "fsysfs resolves to $(command -v fsysfs), not the package's /usr/bin/fsysfs (scripts/fstests.sh links /usr/local/bin/fsysfs): remove it"
has "durability" "$(MANWIDTH=80 man fsysfs 2>&1)" || fail "man fsysfs does not render"
has "SyncKind" "$(MANWIDTH=80 man 3 fsys-engine 2>&1)" || fail "man 3 fsys-engine does not render"
# The example units, as systemd would load them (with the installed binary on its PATH).
units=/usr/share/doc/fsysfs/examples/systemd
systemd-analyze verify --man=no $units/srv-data.mount $units/fsysfs@.service ||
  fail "systemd-analyze rejects the example units"

echo "== the engine example, built against the installed package"
example=/usr/share/doc/libfsys-engine-dev/examples/append
[[ -f $example/append.cc ]] || fail "the example is not installed at $example"
cmake -S $example -B "$scratch/example" >/dev/null
cmake --build "$scratch/example" >/dev/null
has 'NEEDED.*libfsys-engine\.so\.' "$(readelf -d "$scratch/example/append")" ||
  fail "the example does not link the shared engine"
out=$("$scratch/example/append" "$scratch/journal" 5)
has "write+fdatasync: 5 ops" "$out" || fail "unexpected example output: $out"
[[ $(cat "$scratch/journal") == $'record 0\nrecord 1\nrecord 2\nrecord 3\nrecord 4' ]] ||
  fail "the example wrote: $(cat "$scratch/journal")"
# The same source through pkg-config, linked statically against the engine.
g++ -std=c++20 -o "$scratch/append-static" $example/append.cc \
  $(pkg-config --cflags fsys-engine) -Wl,-Bstatic -lfsys-engine -Wl,-Bdynamic \
  $(pkg-config --libs --static fsys-engine | sed 's/-lfsys-engine//')
has "write+fdatasync: 3 ops" "$("$scratch/append-static" "$scratch/journal2" 3)" ||
  fail "the statically linked example failed"
[[ $(pkg-config --variable=prefix fsys-engine) == /usr ]] || fail "the package's fsys-engine.pc is not for /usr"

echo "== an fstab line, mounted through mount(8)"
mkdir -p "$scratch/back" "$mnt"
echo "$scratch/back $mnt fuse.fsysfs durability=strict,noauto 0 0" >"$scratch/fstab"
mount -T "$scratch/fstab" "$mnt"
[[ $(findmnt -n -o FSTYPE "$mnt") == fuse.fsysfs ]] || fail "$mnt is not an fsysfs mount"
pid=$(pgrep -f -o "^fsysfs $scratch/back $mnt") || fail "no fsysfs daemon for $mnt"
[[ $(readlink /proc/"$pid"/exe) == /usr/bin/fsysfs ]] ||
  fail "the daemon runs $(readlink /proc/"$pid"/exe), not the package's"
has "durability *strict" "$(fsysfs stats "$mnt")" || fail "the fstab options did not reach fsysfs"
echo hello >"$mnt/f"
[[ $(cat "$scratch/back/f") == hello ]] || fail "the write did not reach BACKING"
umount "$mnt"
# The daemon exits once the kernel drops the mount (a zombie has exited: its parent, init,
# reaps it in its own time).
running() { [[ -e /proc/$pid ]] && ! grep -q '^State:.*zombie' /proc/"$pid"/status 2>/dev/null; }
for _ in $(seq 100); do
  running || break
  sleep 0.1
done
! running || fail "the daemon is still running after umount"

echo "== packages: all checks passed"
