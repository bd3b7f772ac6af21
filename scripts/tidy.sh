#!/usr/bin/env bash
# clang-tidy (configuration: .clang-tidy) over the sources of engine/, fusefs/ and mount/,
# with the compile commands of a build directory (default ./build). Fails on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
[[ -f "$build/compile_commands.json" ]] || { echo "no $build/compile_commands.json: configure first" >&2; exit 1; }
# The compile commands may be GCC's: clang ignores the GCC-only warning flags among them.
git ls-files 'engine/*.cc' 'fusefs/*.cc' 'mount/*.cc' |
  xargs -P"$(nproc)" -n4 clang-tidy -p "$build" --quiet --extra-arg=-Wno-unknown-warning-option \
    2>/dev/null
