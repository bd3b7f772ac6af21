#!/usr/bin/env bash
# Load and soak: one fsysfs mount under many concurrent writers and readers (fio with
# crc32c verification, random and sequential, with fsyncs), metadata churn (create, rename,
# link, unlink in shared directories from several processes), open/close churn and
# stress-ng's filesystem stressors, while the durability mode is switched every few
# seconds. Then the daemon must be back at its idle figures: open fds, fixed-file slots and
# registered buffers exactly, RSS within a bound. Nothing may fail and no fio verification
# may differ.
#
#   tests/soak/soak.sh [--seconds N] [--binary PATH] [--dir DIR] [--rss-slack-mib N]
#
# The suite runs it for 20 s (ctest soak_short); a soak is e.g. --seconds 3600. Exits 0 on
# success, 1 on a failure (the reason on stderr), 77 when a tool it needs is missing.
set -euo pipefail

seconds=20
binary=""
base_dir=/var/tmp
rss_slack_mib=32
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --dir) base_dir="$2"; shift 2 ;;
    --rss-slack-mib) rss_slack_mib="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 1 ;;
  esac
done
here=$(cd "$(dirname "$0")/../.." && pwd)
[[ -n "$binary" ]] || binary="$here/build/fsysfs"
[[ -x "$binary" ]] || { echo "no fsysfs binary at $binary" >&2; exit 1; }
for tool in fio stress-ng; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed" >&2; exit 77; }
done

work=$(mktemp -d "$base_dir/fsysfs-soak.XXXXXX")
back="$work/back"
mnt="$work/mnt"
mkdir -p "$back" "$mnt"
cd "$work"  # fio and stress-ng leave no files behind where the soak was started
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if mountpoint -q "$mnt"; then umount "$mnt" 2>/dev/null || umount -l "$mnt" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "soak: FAIL: $*" >&2; exit 1; }

"$binary" -o "allow_other,log_file=$work/daemon.log" "$back" "$mnt"
daemon=$(pgrep -f -n "^$binary .*$mnt\$" || true)
[[ -n "$daemon" ]] || daemon=$(pgrep -n -x fsysfs)
json() { "$binary" stats "$mnt" --json; }
# A number from the stats JSON: the first "key":N after each key in turn.
field() {
  python3 -c 'import json,sys
v=json.loads(sys.stdin.read())
for k in sys.argv[1:]: v=v[k]
print(v)' "$@"
}
# Open fds but libfuse's splice pipes: each worker thread keeps a pair for as long as it
# lives, and the loop keeps idle workers (counted separately, against the thread count).
fds() { find "/proc/$daemon/fd" -mindepth 1 -printf '%l\n' | grep -vc '^pipe:'; }
pipes() { find "/proc/$daemon/fd" -mindepth 1 -printf '%l\n' | grep -c '^pipe:' || true; }
threads() { awk '/^Threads/ {print $2}' "/proc/$daemon/status"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$daemon/status"; }

idle_json=$(json)
idle_fds=$(fds)
idle_slots=$(field engine fixed_files used <<<"$idle_json")
idle_bufs=$(field engine buffers used <<<"$idle_json")
idle_rss=$(rss_kib)
echo "soak: ${seconds}s on $mnt (daemon $daemon): idle fds $idle_fds, slots $idle_slots," \
  "buffers $idle_bufs, RSS $((idle_rss / 1024)) MiB"

# 1. Data: fio writes and verifies (crc32c) its own files, with fsyncs.
mkdir "$mnt/fio"
fio --name=rand --directory="$mnt/fio" --rw=randwrite --bs=4k --size=32m --numjobs=3 \
  --fsync=16 --verify=crc32c --verify_fatal=1 --verify_state_save=0 --do_verify=1 --time_based=0 --loops=1000 \
  --runtime="$seconds" --ioengine=psync --group_reporting --output="$work/fio-rand.txt" &
pids+=($!)
fio --name=seq --directory="$mnt/fio" --rw=write --bs=256k --size=64m --numjobs=1 \
  --end_fsync=1 --verify=crc32c --verify_fatal=1 --verify_state_save=0 --do_verify=1 --loops=1000 \
  --runtime="$seconds" --ioengine=psync --output="$work/fio-seq.txt" &
pids+=($!)

# 2. Metadata churn in shared directories from several processes.
mkdir -p "$mnt/meta/a" "$mnt/meta/b"
churn() {
  local id=$1 end=$((SECONDS + seconds)) i=0
  while ((SECONDS < end)); do
    i=$((i + 1))
    local f="$mnt/meta/a/$id.$i"
    echo "$id $i" >"$f"
    ln "$f" "$mnt/meta/b/$id.$i.link"
    mv "$f" "$mnt/meta/b/$id.$i"
    [[ "$(cat "$mnt/meta/b/$id.$i.link")" == "$id $i" ]] || { echo "churn $id: bad content" >&2; return 1; }
    rm "$mnt/meta/b/$id.$i" "$mnt/meta/b/$id.$i.link"
  done
}
for id in 1 2 3; do churn "$id" & pids+=($!); done

# 3. Open/close churn (fd numbers reused all the time) and stress-ng's filesystem stressors.
openclose() {
  local end=$((SECONDS + seconds))
  echo data >"$mnt/oc"
  while ((SECONDS < end)); do
    exec {fd}<"$mnt/oc"
    read -r _ <&"$fd"
    exec {fd}<&-
  done
}
openclose & pids+=($!)
mkdir "$mnt/sng"
stress-ng --temp-path "$mnt/sng" --timeout "${seconds}s" --metrics-brief \
  --dir 1 --rename 1 --link 1 --symlink 1 --chmod 1 --fallocate 1 --dentry 1 --flock 1 \
  --hdd 1 --hdd-bytes 16m >"$work/stress-ng.txt" 2>&1 &
pids+=($!)

# 4. The mode changes under the load.
modes=(strict none close fsync)
end=$((SECONDS + seconds))
switches=0
while ((SECONDS < end)); do
  "$binary" set "$mnt" "durability=${modes[switches % 4]}" || fail "set durability"
  switches=$((switches + 1))
  sleep 1
done
"$binary" set "$mnt" durability=fsync

status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
pids=()
((status == 0)) || {
  tail -n 20 "$work"/fio-*.txt "$work/stress-ng.txt" >&2 || true
  fail "a load process failed"
}

rm -rf "$mnt/fio" "$mnt/meta" "$mnt/sng" "$mnt/oc"
# Back to idle: the kernel forgets inodes lazily; ask it to drop what it can.
sync
echo 2 >/proc/sys/vm/drop_caches
# The kernel forgets inodes asynchronously: give the daemon a deadline to close their fds.
for _ in $(seq 100); do
  (($(fds) <= idle_fds)) && break
  sleep 0.1
done
busy_json=$(json)
after_fds=$(fds)
after_slots=$(field engine fixed_files used <<<"$busy_json")
after_bufs=$(field engine buffers used <<<"$busy_json")
after_rss=$(rss_kib)
peak_rss=$(awk '/^VmHWM/ {print $2}' "/proc/$daemon/status")
writes=$(field engine ops write count <<<"$busy_json")
chains=$(field engine ops "write+fdatasync" count <<<"$busy_json")
skipped=$(field fuse syncs_skipped <<<"$busy_json")
echo "soak: $switches mode switches; engine writes $writes, write+fdatasync chains $chains," \
  "syncs skipped $skipped"
echo "soak: after: fds $after_fds, slots $after_slots, buffers $after_bufs," \
  "RSS $((after_rss / 1024)) MiB (peak $((peak_rss / 1024)) MiB)"
((after_fds == idle_fds)) || {
  ls -l "/proc/$daemon/fd" >&2
  fail "open fds $idle_fds idle, $after_fds after"
}
after_pipes=$(pipes)
((after_pipes <= 2 * $(threads))) || fail "$after_pipes pipe fds for $(threads) threads"
((after_slots == idle_slots)) || fail "fixed-file slots $idle_slots idle, $after_slots after"
((after_bufs == idle_bufs)) || fail "buffers $idle_bufs idle, $after_bufs after"
((after_rss <= idle_rss + rss_slack_mib * 1024)) ||
  fail "RSS $((idle_rss / 1024)) MiB idle, $((after_rss / 1024)) MiB after"
umount "$mnt"
echo "soak: PASS"
