#!/usr/bin/env bash
# Crash A/B (issue 14): fsysfs crashtest on real programs, every durability mode, many
# crash points each. Does the program recover from a power cut at any of its requests?
#
#   A. a saver that writes a temp file, fsyncs it and renames it over the old one, without
#      fsyncing the directory;
#   B. SQLite (WAL), ten one-row transactions, PRAGMA synchronous=OFF;
#   C. the same with synchronous=FULL;
#   D. SQLite with a rollback journal (journal_mode=DELETE), synchronous=FULL and EXTRA;
#   E. B and C again with --keep random --tear (a disk that keeps some unsynced writes,
#      sectors of them, in any order).
#
# The check of A: config holds the last version whose rename returned (or a later one); of
# B to E: PRAGMA integrity_check is ok and the table holds at least as many rows as
# COMMITs returned (the workload notes each outside the mount). The same seed gives the
# same crash points in every mode and on every run. Prints one Markdown table per
# scenario, with the checks' failure messages counted.
#
# Usage: bench/crashtest.sh [--points N] [--seed S] [--modes LIST] [--dir DIR]
#                           [--build DIR] [--no-build] [--out FILE.md]
# Must run as root (crash simulation).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
points=40
seed=1
modes=none,fsync,dirsync,strict
base_dir=/var/tmp
build_dir=$REPO/build
do_build=1
out=""

usage() {
  cat <<EOF
usage: bench/crashtest.sh [options]
  --points N       crash points per mode and scenario [$points]
  --seed S         crashtest seed [$seed]
  --modes LIST     durability modes, comma separated [$modes]
  --dir DIR        where the scratch directories go [$base_dir]
  --build DIR      CMake build directory holding fsysfs [$REPO/build]
  --no-build       use the fsysfs already in the build directory
  --out FILE.md    also write the report there
EOF
}

die() {
  echo "${0##*/}: $*" >&2
  exit 2
}
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
need() { command -v "$1" >/dev/null || die "$1 not found: $2"; }

while (($#)); do
  case $1 in
    --points) points=${2:?}; shift ;;
    --seed) seed=${2:?}; shift ;;
    --modes) modes=${2:?}; shift ;;
    --dir) base_dir=$(realpath -m "${2:?}"); shift ;;
    --build) build_dir=$(realpath -m "${2:?}"); shift ;;
    --no-build) do_build=0 ;;
    --out) out=$(realpath -m "${2:?}"); shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

[[ $(id -u) == 0 ]] || die "must run as root (crash simulation)"
need sqlite3 "apt-get install sqlite3"
need jq "apt-get install jq"
[[ -d $base_dir ]] || die "--dir $base_dir is not a directory"

if ((do_build)); then
  log "building fsysfs in $build_dir"
  cmake --build "$build_dir" -j"$(nproc)" --target fsysfs >/dev/null ||
    die "build of fsysfs failed (run with --no-build to use an existing binary)"
fi
fsysfs_bin=$build_dir/fsysfs
[[ -x $fsysfs_bin ]] || die "fsysfs binary not found in $build_dir"

# crashtest cleans up its own mounts, also when interrupted; this removes the rest.
work=$(mktemp -d "$base_dir/fsysfs-crashtest-bench.XXXXXX")
trap 'if grep -qF " $work/" /proc/self/mounts; then echo "${0##*/}: something is still mounted under $work; not removing it" >&2; else rm -rf "$work"; fi' EXIT

# ---------------------------------------------------------------- programs and checks
cat >"$work/saver.sh" <<'EOF'
for i in 1 2 3 4 5; do
  printf 'version %d\n' "$i" > config.tmp && sync config.tmp && mv config.tmp config || exit 1
  echo "$i" >> "$FSYSFS_RUN_DIR/saved"
done
EOF
cat >"$work/saver-check.sh" <<'EOF'
saved=$(tail -n1 "$FSYSFS_RUN_DIR/saved" 2>/dev/null)
[ -n "$saved" ] || exit 0
read -r word n < config || { echo "config is missing, but version $saved was saved"; exit 1; }
[ "$word" = version ] && [ "$n" -ge "$saved" ] ||
  { echo "config holds '$word $n', but version $saved was saved"; exit 1; }
EOF
cat >"$work/sqlite.sh" <<'EOF'
# $1: PRAGMA synchronous
{
  echo "PRAGMA synchronous=$1;"
  for i in $(seq 1 10); do
    echo "BEGIN; INSERT INTO t(v) VALUES (printf('row %d %s', $i, hex(randomblob(200)))); COMMIT;"
    echo ".shell echo $i >> \"\$FSYSFS_RUN_DIR/committed\""
  done
} | sqlite3 -bail db
EOF
cat >"$work/sqlite-check.sh" <<'EOF'
ok=$(sqlite3 db 'PRAGMA integrity_check;' 2>&1) || { echo "sqlite3: $ok"; exit 1; }
[ "$ok" = ok ] || { echo "integrity_check: $ok"; exit 1; }
rows=$(sqlite3 db 'SELECT count(*) FROM t;')
committed=$(tail -n1 "$FSYSFS_RUN_DIR/committed" 2>/dev/null)
[ "$rows" -ge "${committed:-0}" ] || { echo "$rows rows, but $committed commits returned"; exit 1; }
EOF
mkdir "$work/empty" "$work/wal" "$work/delete" "$work/scratch"
sqlite3 "$work/wal/db" 'PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v);' >/dev/null
sqlite3 "$work/delete/db" 'PRAGMA journal_mode=DELETE; CREATE TABLE t(id INTEGER PRIMARY KEY, v);' >/dev/null

# ---------------------------------------------------------------- scenarios
report=$work/report.md
{
  echo "# fsysfs crashtest: crash A/B on real programs"
  echo
  echo "$(date -u +%Y-%m-%d), fsysfs $("$fsysfs_bin" --version | cut -d' ' -f2)" \
    "($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')), Linux $(uname -r)," \
    "SQLite $(sqlite3 --version | cut -d' ' -f1), scratch on $(findmnt -no FSTYPE -T "$base_dir")." \
    "$points crash points per mode, seed $seed: the same points in every mode."
} >"$report"

# scenario NAME TITLE TEMPLATE WORKLOAD CHECK [crashtest options...]
scenario() {
  local name=$1 title=$2 template=$3 workload=$4 check=$5
  shift 5
  log "$title"
  local rc=0
  "$fsysfs_bin" crashtest --template "$template" --workload "$workload" --check "$check" \
    --modes "$modes" --points "$points" --seed "$seed" --workdir "$work/scratch" \
    --out "$work/$name" "$@" >"$work/$name.txt" || rc=$?
  ((rc <= 1)) || die "crashtest failed (status $rc) in $title"
  {
    echo
    echo "## $title"
    echo
    echo '| mode | requests | runs | recovered | failed | what the check found (runs) |'
    echo '|---|---:|---:|---:|---:|---|'
    # Failure messages with their numbers as N, counted.
    jq -r '.modes[] | "| \(.mode) | \(.requests) | \(.runs) | \(.recovered) | \(.failed) | " +
      ([.crash_runs[] | select(.recovered | not) | .check_tail | split("\n") | last
        | gsub("\\b[0-9]+\\b"; "N")] | group_by(.) | map("\(.[0]) (\(length))") | join("; ")) + " |"' \
      "$work/$name.json"
  } >>"$report"
}

scenario saver "A. Save by rename, no directory fsync" \
  "$work/empty" "sh $work/saver.sh" "sh $work/saver-check.sh"
scenario sqlite-off "B. SQLite WAL, synchronous=OFF" \
  "$work/wal" "sh $work/sqlite.sh OFF" "sh $work/sqlite-check.sh"
scenario sqlite-full "C. SQLite WAL, synchronous=FULL" \
  "$work/wal" "sh $work/sqlite.sh FULL" "sh $work/sqlite-check.sh"
scenario sqlite-delete-full "D1. SQLite rollback journal (DELETE), synchronous=FULL" \
  "$work/delete" "sh $work/sqlite.sh FULL" "sh $work/sqlite-check.sh"
scenario sqlite-delete-extra "D2. SQLite rollback journal (DELETE), synchronous=EXTRA" \
  "$work/delete" "sh $work/sqlite.sh EXTRA" "sh $work/sqlite-check.sh"
scenario sqlite-off-random "E1. SQLite WAL, synchronous=OFF, --keep random --tear" \
  "$work/wal" "sh $work/sqlite.sh OFF" "sh $work/sqlite-check.sh" --keep random --tear
scenario sqlite-full-random "E2. SQLite WAL, synchronous=FULL, --keep random --tear" \
  "$work/wal" "sh $work/sqlite.sh FULL" "sh $work/sqlite-check.sh" --keep random --tear

cat "$report"
if [[ -n $out ]]; then
  cp "$report" "$out"
  log "report written to $out"
fi
