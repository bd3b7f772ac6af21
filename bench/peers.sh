#!/usr/bin/env bash
# Peer benchmark (issue 5): the backing directory used directly, fsysfs, libfuse's
# passthrough_ll, mergerfs and bindfs, each over its own fresh backing directory on the same
# file system, measured in one run with fio and metadata_bench. Rounds are interleaved (every
# target x every workload, then the next round) and the report gives medians and the median
# per-round ratio to the backing directory, and draw those ratios as a PNG chart. Besides fio
# and the metadata rows, two real programs: SQLite (one transaction per insert) and tar
# (extract a tarball of /usr/include, then delete the tree). See bench/README.md.
#
# Usage: bench/peers.sh [--quick] [--rounds N] [--seconds S] [--targets LIST]
#                       [--workloads LIST] [--busy N] [--dir DIR] [--build DIR] [--no-build]
#                       [--out FILE.md] [--note TEXT]
# Must run as root (drop_caches, allow_other).
# shellcheck disable=SC2016  # fio expands $jobnum in --filename_format itself

set -euo pipefail

ORIG_ARGS=("$@")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PT_SOURCE=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
ALL_TARGETS="backing fsysfs fsysfs-dev fsysfs-none passthrough_ll mergerfs bindfs"
# A/B variants of fsysfs, run only when --targets names them.
EXTRA_TARGETS="fsysfs-wb fsysfs-handoff fsysfs-writes fsysfs-nodp fsysfs-always"
ALL_WORKLOADS="rw1 rw4 dsync seqw w4k seqwn seqr rrwarm rrcold meta sqlite tar"

rounds=3
seconds=5
quick=0
targets=$ALL_TARGETS
workloads=$ALL_WORKLOADS
busy=0
base_dir=/var/tmp
build_dir=$REPO/build
do_build=1
out=""
note=""

usage() {
  cat <<EOF
usage: bench/peers.sh [options]
  --quick          1 s per cell, smaller files, 2 rounds (unless --rounds): for trying it
  --rounds N       interleaved rounds [3]
  --seconds S      run time of the time-based cells [5]
  --targets LIST   comma-separated subset of: ${ALL_TARGETS// /,}
                   plus the A/B variants ${EXTRA_TARGETS// /,}
                   (backing is always included: every ratio is to it)
  --workloads LIST comma-separated subset of: ${ALL_WORKLOADS// /,}
  --busy N         N busy loops at nice 19 for the whole run: a machine with background
                   work, whose CPUs never go idle (on a VM an idle vCPU halts, and waking
                   it is what a round trip between two threads mostly costs) [0]
  --dir DIR        where the backing directories and mount points go; must not be tmpfs
                   [/var/tmp]
  --build DIR      CMake build directory for fsysfs and metadata_bench [$REPO/build]
  --no-build       use the binaries already in the build directory
  --out FILE.md    results file; the chart goes next to it as FILE.png
                   [bench/results/peers-<date>.md; none with --quick]
  --note TEXT      a line for the report's header (e.g. which commit the binaries are from)
EOF
}

# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

rounds_given=0
out_given=0
while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --rounds) rounds=${2:?}; rounds_given=1; shift ;;
    --seconds) seconds=${2:?}; shift ;;
    --targets) targets="backing ${2//,/ }"; shift ;;
    --workloads) workloads=${2//,/ }; shift ;;
    --busy) busy=${2:?}; shift ;;
    --dir) base_dir=${2:?}; shift ;;
    --build) build_dir=$(realpath -m "${2:?}"); shift ;;
    --no-build) do_build=0 ;;
    --out) out=$(realpath -m "${2:?}"); out_given=1; shift ;;
    --note) note=${2:?}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

if ((quick)); then
  seconds=1
  ((rounds_given)) || rounds=2
  read_size_mb=512   # seqr reads it whole; rrcold reads 4 KiB at random over all of it
  seqw_size_mb=256
  meta_files=2000
  tar_src=/usr/include/linux  # ~800 entries, 7 MiB
else
  read_size_mb=2048
  seqw_size_mb=2048
  # Below the 20000-descriptor hard limit of the machine the results come from: one
  # O_PATH fd per live inode would run fsysfs and passthrough_ll out of descriptors.
  meta_files=10000
  tar_src=/usr/include        # ~9000 entries, 130 MiB on Debian 12 with the build tools
fi
warm_size_mb=256     # rrwarm's region, read once through the target first
rw_size_mb=64        # per job of rw1/rw4, and the dsync file
meta_file_bytes=1024

for w in $workloads; do
  [[ " $ALL_WORKLOADS " == *" $w "* ]] || die "unknown workload '$w' (known: $ALL_WORKLOADS)"
done
[[ $busy =~ ^[0-9]+$ ]] || die "--busy wants a number of loops, not '$busy'"

# Deduplicate while keeping order; check names.
declare -a T=()
for t in $targets; do
  [[ " $ALL_TARGETS $EXTRA_TARGETS " == *" $t "* ]] ||
    die "unknown target '$t' (known: $ALL_TARGETS $EXTRA_TARGETS)"
  [[ " ${T[*]-} " == *" $t "* ]] || T+=("$t")
done

# ---------------------------------------------------------------- preflight
[[ $(id -u) == 0 ]] || die "must run as root (drop_caches, allow_other)"
need fio "apt-get install fio"
need jq "apt-get install jq"
need sqlite3 "apt-get install sqlite3"
need stdbuf "apt-get install coreutils"
need tar "apt-get install tar"
need gnuplot "apt-get install gnuplot-nox"
need g++ "apt-get install g++"
need fusermount3 "apt-get install fuse3"
need mountpoint "apt-get install util-linux"
for t in "${T[@]}"; do
  case $t in
    passthrough_ll)
      [[ -r $PT_SOURCE ]] || die "$PT_SOURCE missing: apt-get install libfuse3-dev"
      need gcc "apt-get install gcc"
      need pkg-config "apt-get install pkg-config" ;;
    mergerfs) need mergerfs "apt-get install mergerfs" ;;
    bindfs) need bindfs "apt-get install bindfs" ;;
  esac
done
[[ -d $tar_src ]] || die "$tar_src (the tar workload's source tree) is missing"
[[ -d $base_dir ]] || die "--dir $base_dir is not a directory"
fs_type=$(findmnt -n -o FSTYPE -T "$base_dir" 2>/dev/null || stat -f -c %T "$base_dir")
[[ $fs_type != tmpfs ]] || die "--dir $base_dir is on tmpfs, where fsync costs nothing"

if ((do_build)); then
  log "building fsysfs and metadata_bench in $build_dir"
  cmake -S "$REPO" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null ||
    die "cmake configure failed"
  cmake --build "$build_dir" -j"$(nproc)" --target fsysfs metadata_bench >/dev/null ||
    die "build of fsysfs/metadata_bench failed (run with --no-build to use existing binaries)"
fi
fsysfs_bin=$build_dir/fsysfs
[[ -x $fsysfs_bin ]] || fsysfs_bin=$build_dir/mount/fsysfs
meta_bin=$build_dir/bench/metadata_bench
[[ -x $meta_bin ]] || die "$meta_bin missing (build the metadata_bench target)"
if [[ " ${T[*]} " == *" fsysfs"* ]]; then
  [[ -x $fsysfs_bin ]] || die "fsysfs binary not found in $build_dir"
fi
ops_bin=$(build_modes_ops "$REPO" "$build_dir")
pt_bin=$build_dir/peers/passthrough_ll
if [[ " ${T[*]} " == *" passthrough_ll "* ]] &&
  [[ ! -x $pt_bin || $PT_SOURCE -nt $pt_bin ]]; then
  log "compiling passthrough_ll from $PT_SOURCE"
  mkdir -p "$build_dir/peers"
  # shellcheck disable=SC2046  # pkg-config output is a list of flags
  gcc -O2 -Wall -o "$pt_bin" "$PT_SOURCE" $(pkg-config --cflags --libs fuse3) ||
    die "could not compile passthrough_ll"
fi

# ---------------------------------------------------------------- mounts and cleanup
work=$(mktemp -d "$base_dir/fsysfs-peers.XXXXXX")
declare -A PID=() MNT=() DIR=() CMD=() TRANSPORT=()
current_pid=""

install_cleanup

# fsysfs's default transport is FUSE over io_uring where the kernel offers it: on for the
# run (put back by cleanup), so that the fsysfs column shows it.
uring_param=/sys/module/fuse/parameters/enable_uring
if [[ " ${T[*]} " == *" fsysfs"* && -w $uring_param ]]; then
  restore_enable_uring=$(cat "$uring_param")
  echo 1 >"$uring_param" || die "cannot turn on $uring_param"
fi

mount_target() {
  local t=$1 b=$work/$1/backing m=$work/$1/mnt
  mkdir -p "$b" "$m"
  case $t in
    backing) DIR[$t]=$b; return 0 ;;
    # The default: FUSE over io_uring (enable_uring is on for the run), writes and syncs on
    # the queues' rings.
    fsysfs) CMD[$t]="$fsysfs_bin -f -o allow_other $b $m" ;;
    # The same on the /dev/fuse transport (older kernels, enable_uring off).
    fsysfs-dev) CMD[$t]="$fsysfs_bin -f -o allow_other,transport=dev $b $m" ;;
    # The eatmydata side of an A/B: no syncs, and the kernel's writeback cache (its default).
    fsysfs-none) CMD[$t]="$fsysfs_bin -f -o allow_other,durability=none $b $m" ;;
    fsysfs-wb) CMD[$t]="$fsysfs_bin -f -o allow_other,writeback_cache $b $m" ;;
    # Every write through the engine's ring.
    fsysfs-handoff) CMD[$t]="$fsysfs_bin -f -o allow_other,inline_io=off $b $m" ;;
    # Plain writes on the FUSE worker; syncs and write+sync chains on the engine's threads.
    fsysfs-writes) CMD[$t]="$fsysfs_bin -f -o allow_other,inline_io=writes $b $m" ;;
    # Without the kernel's permission checks, as passthrough_ll runs: not safe for a mount
    # that other users share, but it shows what default_permissions costs.
    fsysfs-nodp) CMD[$t]="$fsysfs_bin -f -o allow_other,no_default_permissions $b $m" ;;
    # cache=always: names, attributes and missing names trusted for a day, for a BACKING
    # that only the mount changes.
    fsysfs-always) CMD[$t]="$fsysfs_bin -f -o allow_other,cache=always $b $m" ;;
    passthrough_ll) CMD[$t]="$pt_bin -f -o allow_other,source=$b $m" ;;
    # mergerfs's documented set for "you don't need mmap" (no page cache of its own, so
    # writes and fsyncs reach the branch one for one), plus security_capability=false from its
    # performance notes: it answers the kernel's security.capability lookup before each write
    # without a syscall of its own (the round trip stays).
    mergerfs)
      CMD[$t]="mergerfs -f -o allow_other,use_ino,cache.files=off,dropcacheonclose=true"
      CMD[$t]+=",category.create=mfs,security_capability=false $b $m" ;;
    # bindfs is single-threaded unless told otherwise; the 4-job row needs threads.
    bindfs) CMD[$t]="bindfs -f -o multithreaded $b $m" ;;
  esac
  # Foreground daemons as our own children: we know their pids (RSS, cleanup) for sure.
  # fsysfs and passthrough_ll hold an O_PATH fd per inode the kernel knows, so every
  # daemon gets as many descriptors as it may have: the system's maximum (fs.nr_open) where
  # we may raise the hard limit, else the hard limit.
  (
    ulimit -n "$(cat /proc/sys/fs/nr_open)" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    # shellcheck disable=SC2086  # the command line is split on purpose
    exec ${CMD[$t]}
  ) >"$work/$t.log" 2>&1 &
  PID[$t]=$!
  MNT[$t]=$m
  for _ in $(seq 100); do
    mounted "$m" && break
    kill -0 "${PID[$t]}" 2>/dev/null || break
    sleep 0.1
  done
  if ! mounted "$m"; then
    echo "--- $t log:" >&2
    tail -n 20 "$work/$t.log" >&2 || true
    die "$t did not mount (${CMD[$t]})"
  fi
  DIR[$t]=$m
  if [[ $t == fsysfs* ]]; then
    TRANSPORT[$t]=$("$fsysfs_bin" stats "$m" 2>/dev/null | sed -n 's/^transport \([^,]*\).*/\1/p')
  fi
}

rss() {  # "VmRSS / VmHWM" of a pid, in MiB
  awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {printf "%.1f / %.1f", r / 1024, h / 1024}' \
    "/proc/$1/status" 2>/dev/null || echo "?"
}

# ---------------------------------------------------------------- workloads
# Every cell runs with a time limit so that a hung daemon cannot hang the run.
cell_timeout=$((seconds * 10 + 120))
fio_common=(--ioengine=psync --direct=0 --invalidate=0 --output-format=json)

drop_caches() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
}

# Writes the workload's value (ops/s, MB/s or entries/s; three for meta, two for tar) to
# $value_file, or fails. Runs in the main shell (not in a command substitution) so that a
# signal stops the cell at once.
value_file=$work/value
run_workload() {
  local w=$1 d=$2 json=$3 round=$4
  local -a timed=(--runtime="$seconds" --time_based)
  case $w in
    rw1 | rw4)
      local jobs=1
      [[ $w == rw4 ]] && jobs=4
      run_bg fio --name=rw "${fio_common[@]}" "${timed[@]}" --directory="$d" \
        --filename_format='rw.$jobnum' --size="${rw_size_mb}M" --rw=randwrite --bs=4k \
        --fdatasync=1 --numjobs="$jobs" --group_reporting >"$json" || return 1
      jq -e '.jobs[0].write.iops' "$json" >"$value_file" ;;
    dsync)
      run_bg fio --name=dsync "${fio_common[@]}" "${timed[@]}" --directory="$d" \
        --filename=dsync.dat --size="${rw_size_mb}M" --rw=write --bs=4k --sync=dsync \
        >"$json" || return 1
      jq -e '.jobs[0].write.iops' "$json" >"$value_file" ;;
    seqw)
      # A fresh file each time: writing a file means allocating it. fio's bandwidth
      # includes the end_fsync.
      rm -f "$d/seqw.dat"
      sync
      run_bg fio --name=seqw "${fio_common[@]}" --directory="$d" --filename=seqw.dat \
        --size="${seqw_size_mb}M" --rw=write --bs=1M --end_fsync=1 >"$json" || return 1
      rm -f "$d/seqw.dat"
      jq -e '.jobs[0].write.bw_bytes / 1e6' "$json" >"$value_file" ;;
    w4k)
      # Buffered 4 KiB random overwrites, never synced: what a program that does not fsync
      # sees (the untimed sync after the cell pays the writeback).
      run_bg fio --name=w4k "${fio_common[@]}" "${timed[@]}" --directory="$d" \
        --filename=rw.0 --size="${rw_size_mb}M" --rw=randwrite --bs=4k >"$json" || return 1
      jq -e '.jobs[0].write.iops' "$json" >"$value_file" ;;
    seqwn)
      # seqw without its end_fsync: the time to hand a fresh file's bytes to the file system.
      rm -f "$d/seqw.dat"
      sync
      run_bg fio --name=seqwn "${fio_common[@]}" --directory="$d" --filename=seqw.dat \
        --size="${seqw_size_mb}M" --rw=write --bs=1M >"$json" || return 1
      rm -f "$d/seqw.dat"
      jq -e '.jobs[0].write.bw_bytes / 1e6' "$json" >"$value_file" ;;
    seqr)
      drop_caches
      run_bg fio --name=seqr "${fio_common[@]}" --directory="$d" --filename=read.dat \
        --size="${read_size_mb}M" --rw=read --bs=1M >"$json" || return 1
      jq -e '.jobs[0].read.bw_bytes / 1e6' "$json" >"$value_file" ;;
    rrwarm)
      # Warm through the target itself: whatever caches the target keeps (its own page
      # cache, the backing's) are what a second reader of the file gets.
      dd if="$d/read.dat" of=/dev/null bs=1M count="$warm_size_mb" status=none || return 1
      run_bg fio --name=rrwarm "${fio_common[@]}" "${timed[@]}" --directory="$d" \
        --filename=read.dat --size="${warm_size_mb}M" --rw=randread --bs=4k >"$json" ||
        return 1
      jq -e '.jobs[0].read.iops' "$json" >"$value_file" ;;
    rrcold)
      drop_caches
      run_bg fio --name=rrcold "${fio_common[@]}" "${timed[@]}" --directory="$d" \
        --filename=read.dat --size="${read_size_mb}M" --rw=randread --bs=4k >"$json" ||
        return 1
      jq -e '.jobs[0].read.iops' "$json" >"$value_file" ;;
    meta)
      local md=$d/meta.$round
      rm -rf "$md"
      mkdir "$md"
      sync
      if ! run_bg "$meta_bin" --files "$meta_files" --size "$meta_file_bytes" "$md" >"$json"; then
        rm -rf "$md"  # leftovers would hold inodes (and daemon fds) for the rest of the run
        return 1
      fi
      rmdir "$md"
      jq -e -r '"\(.create_ops_s) \(.stat_ops_s) \(.unlink_ops_s)"' "$json" >"$value_file" ;;
    sqlite)
      # One transaction per insert, in the sqlite3 shell's defaults (rollback journal,
      # synchronous=FULL), for the cell's time, on a fresh database.
      local sd=$d/sqlite.$round
      rm -rf "$sd"
      mkdir "$sd"
      sync
      if ! run_bg "$ops_bin" sqlite --tx 100000000 --rows 1 --max-seconds "$seconds" "$sd" \
        >"$json"; then
        rm -rf "$sd"
        return 1
      fi
      rm -rf "$sd"
      jq -e '.ops_s' "$json" >"$value_file" ;;
    tar)
      # Extract the tarball (made once, outside every target, and in the page cache), sync
      # (untimed), delete the tree with rm -rf. A fixed amount of work, so a slow target
      # gets a longer limit than the time-based cells.
      local td=$d/tar.$round cell_timeout=$((cell_timeout * 5)) t0 t1 t2 t3
      rm -rf "$td"
      mkdir "$td"
      sync
      t0=$EPOCHREALTIME
      if ! run_bg tar -C "$td" -xf "$tarball"; then
        rm -rf "$td"
        return 1
      fi
      t1=$EPOCHREALTIME
      sync
      t2=$EPOCHREALTIME
      run_bg rm -rf "$td" || return 1
      t3=$EPOCHREALTIME
      [[ ! -e $td ]] || return 1
      awk -v n="$tar_entries" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" 'BEGIN {
        printf "{\"entries\":%d,\"extract_s\":%.3f,\"delete_s\":%.3f}\n", n, t1 - t0, t3 - t2
      }' >"$json"
      jq -e -r '"\(.entries / .extract_s) \(.entries / .delete_s)"' "$json" >"$value_file" ;;
  esac
}

# Files the workloads overwrite or read are laid out once, directly in each backing
# directory (the same bytes every target then serves), and synced before any timing.
layout() {
  local b=$1 json=$work/layout
  run_bg fio --name=layout --ioengine=psync --directory="$b" --filename_format='rw.$jobnum' \
    --size="${rw_size_mb}M" --rw=write --bs=1M --numjobs=4 --end_fsync=1 \
    --output-format=terse >/dev/null || die "layout of rw files in $b failed"
  run_bg fio --name=layout --ioengine=psync --directory="$b" --filename=dsync.dat \
    --size="${rw_size_mb}M" --rw=write --bs=1M --end_fsync=1 --output-format=terse \
    >/dev/null || die "layout of dsync.dat in $b failed"
  run_bg fio --name=layout --ioengine=psync --directory="$b" --filename=read.dat \
    --size="${read_size_mb}M" --rw=write --bs=1M --end_fsync=1 --output-format=terse \
    >/dev/null || die "layout of read.dat in $b failed"
}

# ---------------------------------------------------------------- run
start_epoch=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "work dir $work ($fs_type); targets: ${T[*]}; $rounds rounds x ${seconds}s"
mkdir -p "$work/json"
for t in "${T[@]}"; do
  log "laying out files for $t"
  mkdir -p "$work/$t/backing"
  layout "$work/$t/backing"
done
sync
# The tar workload's input, made once per run outside every target and read once so that
# every extraction reads it from the page cache.
tarball=$work/src.tar
log "making $tarball from $tar_src"
tar -C "$(dirname "$tar_src")" -cf "$tarball" "$(basename "$tar_src")" ||
  die "could not make $tarball"
tar_entries=$(tar -tf "$tarball" | wc -l)
tar_mib=$(du -m --apparent-size "$tarball" | cut -f1)
for t in "${T[@]}"; do mount_target "$t"; done
declare -A RSS_IDLE=()
for t in "${!PID[@]}"; do RSS_IDLE[$t]=$(rss "${PID[$t]}"); done

results=$work/results.tsv  # round workload target value
: >"$results"
start_busy "$busy"
for ((r = 1; r <= rounds; r++)); do
  for w in $workloads; do
    # The first sequential-write cell after the O_DSYNC row ran at a fraction of the speed
    # of the next ones, whichever target it was (3 runs, 2026-11-26): an untimed cell on
    # the backing directory takes that hit instead of the round's first target.
    if [[ $w == seqw || $w == seqwn ]]; then
      run_workload "$w" "${DIR[backing]}" "$work/json/$r.warmup.json" "$r" ||
        log "round $r: the untimed seqw warm-up failed"
      sync
    fi
    # A fresh order for every round and workload (seeded, so a rerun repeats it): with a
    # rotation, fsysfs followed the backing directory in 2 of 3 rounds of every row, and a
    # cell right after the backing directory's own ran slower (fsysfs-nodp, the same code
    # but one place later, beat it by 12-20% on the fdatasync rows in two full runs and
    # tied it in a 5-round A/B).
    seed=$((r * 7919 + $(cksum <<<"$w" | cut -d' ' -f1) % 7919))
    mapfile -t order < <(printf '%s\n' "${T[@]}" |
      awk -v seed="$seed" 'BEGIN { srand(seed) } { print rand() "\t" $0 }' | sort -g | cut -f2-)
    echo "$r $w ${order[*]}" >>"$work/order"
    for t in "${order[@]}"; do
      json=$work/json/$r.$w.$t.json
      if run_workload "$w" "${DIR[$t]}" "$json" "$r"; then
        v=$(<"$value_file")
        if [[ $w == meta ]]; then
          read -r c s u <<<"$v"
          printf '%s\tcreate\t%s\t%s\n%s\tstat\t%s\t%s\n%s\tunlink\t%s\t%s\n' \
            "$r" "$t" "$c" "$r" "$t" "$s" "$r" "$t" "$u" >>"$results"
        elif [[ $w == tar ]]; then
          read -r x e <<<"$v"
          printf '%s\tuntar\t%s\t%s\n%s\trmtree\t%s\t%s\n' "$r" "$t" "$x" "$r" "$t" "$e" \
            >>"$results"
        else
          printf '%s\t%s\t%s\t%s\n' "$r" "$w" "$t" "$v" >>"$results"
        fi
        log "round $r $w $t: $v"
      else
        log "round $r $w $t: FAILED (see $json)"
        tail -n 5 "$json.err" "$json" >&2 2>/dev/null || true
      fi
      sync
    done
  done
done

stop_busy
declare -A RSS_AFTER=()
for t in "${!PID[@]}"; do RSS_AFTER[$t]=$(rss "${PID[$t]}"); done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(($(date +%s) - start_epoch))

# ---------------------------------------------------------------- report
report() {
  local dev
  dev=$(df --output=source "$base_dir" | tail -n 1)
  echo "# Peer benchmark: fsysfs vs the backing directory and FUSE peers"
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); run time $((elapsed / 60)) min $((elapsed % 60)) s"
  echo "- Command: \`bench/peers.sh${cmdline}\`"
  if ((do_build)); then
    echo "- Built from commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?)" \
      "$(git -C "$REPO" diff --quiet HEAD -- engine fusefs mount 2>/dev/null ||
        echo '(engine/fusefs/mount had uncommitted changes)')"
  else
    echo "- Binaries already in $build_dir (--no-build)"
  fi
  [[ -z $note ]] || echo "- Note: $note"
  echo "- Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM," \
    "kernel $(uname -r), $fs_type on $dev ($base_dir); fio $(fio --version)"
  echo "- Load average before / after: $load_before / $load_after"
  ((busy == 0)) || echo "- Background load: $busy busy loop(s) at nice 19 during the rounds (--busy)"
  echo "- $rounds interleaved rounds; time-based cells ${seconds} s; seqw writes ${seqw_size_mb} MiB," \
    "seqr reads ${read_size_mb} MiB; metadata: $meta_files files of $meta_file_bytes bytes;" \
    "SQLite: one insert per transaction for ${seconds} s; tar: $tar_src, $tar_entries entries," \
    "$tar_mib MiB uncompressed"
  echo
  echo "Targets:"
  echo
  for t in "${T[@]}"; do
    case $t in
      backing) echo "- \`backing\`: the backing directory used directly (ratio 1.00 by definition)" ;;
      *) echo "- \`$t\`: \`${CMD[$t]//$work/W}\`${TRANSPORT[$t]:+ (transport ${TRANSPORT[$t]})}" ;;
    esac
  done
  echo
  local prog
  prog=$(
    cat <<'AWK'
function median(list,    a, n, i, j, x) {
  n = split(list, a, " ")
  if (n == 0) return ""
  for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > x + 0; j--) a[j + 1] = a[j]; a[j + 1] = x }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function fmt(v) { return v == "" ? "—" : (v >= 100 ? sprintf("%.0f", v) : sprintf("%.1f", v)) }
# Median over rounds of target t's value divided by the backing directory's, in the same round.
function ratio(w, t,    rl, r) {
  rl = ""
  for (r = 1; r <= maxr; r++)
    if (((r, w, t) in val) && ((r, w, "backing") in val) && val[r, w, "backing"] > 0)
      rl = rl " " val[r, w, t] / val[r, w, "backing"]
  return median(rl)
}
BEGIN {
  nt = split(targets, T, " ")
  # The rows of the workloads that ran (--workloads): meta gives three, tar two.
  split(workloads, sel, " ")
  for (i in sel) chosen[sel[i]] = 1
  if ("meta" in chosen) { chosen["create"] = 1; chosen["stat"] = 1; chosen["unlink"] = 1 }
  if ("tar" in chosen) { chosen["untar"] = 1; chosen["rmtree"] = 1 }
  n = split("rw1 rw4 dsync seqw w4k seqwn seqr rrwarm rrcold create stat unlink sqlite untar rmtree", all, " ")
  nw = 0
  for (i = 1; i <= n; i++) if (all[i] in chosen) W[++nw] = all[i]
  label["rw1"] = "4 KiB random write + fdatasync, 1 job"
  label["rw4"] = "4 KiB random write + fdatasync, 4 jobs"
  label["dsync"] = "4 KiB writes to an O_DSYNC file"
  label["seqw"] = "1 MiB sequential write + end fsync"
  label["w4k"] = "4 KiB random write, no sync"
  label["seqwn"] = "1 MiB sequential write, no sync"
  label["seqr"] = "1 MiB sequential read, cold cache"
  label["rrwarm"] = "4 KiB random read, warm"
  label["rrcold"] = "4 KiB random read, cold"
  label["create"] = "create (1 KiB file)"
  label["stat"] = "stat"
  label["unlink"] = "unlink"
  label["sqlite"] = "SQLite insert, one transaction each"
  label["untar"] = "tar: extract the tree (no sync)"
  label["rmtree"] = "tar: rm -rf the tree"
  unit["seqw"] = "MB/s"; unit["seqwn"] = "MB/s"; unit["seqr"] = "MB/s"
  unit["untar"] = "entries/s"; unit["rmtree"] = "entries/s"
  short["rw1"] = "write+fdatasync"; short["rw4"] = "same, 4 jobs"
  short["dsync"] = "O_DSYNC write"; short["seqw"] = "seq write+fsync"
  short["w4k"] = "write, no sync"; short["seqwn"] = "seq write, no sync"
  short["seqr"] = "seq read, cold"; short["rrwarm"] = "rand read, warm"
  short["rrcold"] = "rand read, cold"; short["create"] = "create"; short["stat"] = "stat"
  short["unlink"] = "unlink"; short["sqlite"] = "SQLite insert"; short["untar"] = "tar x"
  short["rmtree"] = "rm -rf"
}
{ v[$2, $3] = v[$2, $3] " " $4; val[$1, $2, $3] = $4; if ($1 > maxr) maxr = $1 }
END {
  head = "| Workload |"; sep = "|---|"
  for (i = 1; i <= nt; i++) { head = head " " T[i] " |"; sep = sep "---:|" }
  print "## Ratio to the backing directory (median of per-round ratios; above 1 is faster)"
  print ""; print head; print sep
  for (k = 1; k <= nw; k++) {
    w = W[k]; line = "| " label[w] " |"
    for (i = 1; i <= nt; i++) { m = ratio(w, T[i]); line = line " " (m == "" ? "—" : sprintf("%.2f", m)) " |" }
    print line
  }
  print ""
  print "## Medians (ops/s unless the row says otherwise)"
  print ""; print head; print sep
  for (k = 1; k <= nw; k++) {
    w = W[k]; line = "| " label[w] (w in unit ? " (" unit[w] ")" : "") " |"
    for (i = 1; i <= nt; i++) line = line " " fmt(median(v[w, T[i]])) " |"
    print line
  }
  print ""
  print "## Per round (round 1, 2, ...)"
  print ""
  for (k = 1; k <= nw; k++) {
    w = W[k]
    for (i = 1; i <= nt; i++) {
      line = "- " w ", " T[i] ":"
      for (r = 1; r <= maxr; r++) line = line " " (((r, w, T[i]) in val) ? fmt(val[r, w, T[i]]) : "fail")
      print line
    }
  }

  # Chart data: the ratio table, one line per workload; "-" (no bar) where there is no value.
  hdr = "workload"
  for (i = 1; i <= nt; i++) if (T[i] != "backing") hdr = hdr "\t" T[i]
  print hdr > chart
  for (k = 1; k <= nw; k++) {
    w = W[k]; line = "\"" short[w] "\""
    for (i = 1; i <= nt; i++) {
      if (T[i] == "backing") continue
      m = ratio(w, T[i]); line = line "\t" (m == "" ? "-" : m)
    }
    print line > chart
  }
}
AWK
  )
  awk -F'\t' -v targets="${T[*]}" -v workloads="$workloads" -v chart="$chart_data" "$prog" \
    "$results"
  echo
  echo "## FUSE daemon memory (VmRSS / VmHWM, MiB)"
  echo
  echo "| Target | after mount | after the run |"
  echo "|---|---:|---:|"
  for t in "${T[@]}"; do
    [[ -n ${RSS_IDLE[$t]-} ]] && echo "| $t | ${RSS_IDLE[$t]} | ${RSS_AFTER[$t]-?} |"
  done
  echo
  echo "## Order of the targets (round, workload: order)"
  echo
  awk '{ printf "- %s %s:", $1, $2; for (i = 3; i <= NF; i++) printf " %s", $i; print "" }' \
    "$work/order"
}

chart_data=$work/chart.dat
draw_chart() {
  draw_ratio_chart "$1" "$chart_data" \
    "fsysfs and FUSE peers relative to the backing directory used directly\\n(median of $rounds per-round ratios; log scale; line at 1: backing; above 1 is faster)" \
    "target ÷ backing directory (ops/s, MB/s or entries/s)"
}

cmdline=""
((${#ORIG_ARGS[@]})) && cmdline=" $(printf '%q ' "${ORIG_ARGS[@]}")" && cmdline=${cmdline% }
if ((!out_given && !quick)); then
  mkdir -p "$REPO/bench/results"
  out=$REPO/bench/results/peers-$(date -u +%F).md
fi
if [[ -n $out ]]; then
  png=${out%.md}.png
  report | tee "$out"
  draw_chart "$png" || die "gnuplot failed: no chart"
  log "report written to $out, chart to $png"
else
  report
  draw_chart "$work/chart.png" || die "gnuplot failed"
fi
log "done in ${elapsed}s"
