#!/usr/bin/env bash
# Durability A/B benchmark (issue 4): the same workloads under every fsysfs durability mode
# (none, fsync, close, strict; plus none with the kernel writeback cache, and fsync with the
# crash simulation) and on the backing
# directory used directly, with and without O_DSYNC, in one run. Every target has its own
# fresh backing directory on the same file system. Rounds are interleaved (every workload x
# every target, then the next round); the report gives medians over rounds of ops/s and p99
# latency, the median per-round ratio to the backing directory, the issue's two targets, and
# a PNG chart. See bench/README.md.
#
# Usage: bench/modes.sh [--quick] [--rounds N] [--seconds S] [--targets LIST] [--dir DIR]
#                       [--build DIR] [--no-build] [--out FILE.md] [--note TEXT]
# Must run as root (allow_other, sync).

set -euo pipefail

ORIG_ARGS=("$@")
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALL_TARGETS="none fsync close strict none-wb fsync-crashsim backing backing-dsync"
WORKLOADS="fsync seqw randw rename sqlite meta"
# The rows of the report: meta gives three (metadata_bench times its phases separately).
ROWS="fsync seqw randw rename sqlite create stat unlink"

rounds=3
seconds=5
quick=0
targets=$ALL_TARGETS
base_dir=/var/tmp
build_dir=$REPO/build
do_build=1
out=""
note=""

usage() {
  cat <<EOF
usage: bench/modes.sh [options]
  --quick          1 round, 1 s per fio cell, short tool runs: for trying it
  --rounds N       interleaved rounds [3]
  --seconds S      run time of each fio cell [5]
  --targets LIST   comma-separated subset of: ${ALL_TARGETS// /,}
                   (backing is always included: every ratio is to it)
  --dir DIR        where the backing directories and mount points go; must not be tmpfs
                   [/var/tmp]
  --build DIR      CMake build directory holding fsysfs [$REPO/build]
  --no-build       use the fsysfs already in the build directory
  --out FILE.md    results file; the chart goes next to it as FILE.png
                   [bench/results/modes-<date>.md; none with --quick]
  --note TEXT      a line for the report's header (e.g. where a --no-build binary is from)
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
    --targets) targets="${2//,/ } backing"; shift ;;
    --dir) base_dir=$(realpath -m "${2:?}"); shift ;;
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
  ((rounds_given)) || rounds=1
  rename_ops=300
  sqlite_tx=50
  meta_files=2000
else
  rename_ops=2000
  sqlite_tx=500
  # Enough that the create phase outlasts the default 1 s attribute and entry timeouts, as
  # a real tree's would.
  meta_files=10000
fi
meta_file_bytes=1024
sqlite_rows=10        # inserts per transaction
rename_max_s=30       # a slow target does fewer saves rather than hold up the run
sqlite_max_s=60
file_mb=64            # the file every fio cell overwrites

# Keep the known order (the report's columns), drop duplicates, check names.
declare -a T=()
for t in $ALL_TARGETS; do
  [[ " $targets " == *" $t "* ]] && T+=("$t")
done
for t in $targets; do
  [[ " $ALL_TARGETS " == *" $t "* ]] || die "unknown target '$t' (known: $ALL_TARGETS)"
done

# ---------------------------------------------------------------- preflight
[[ $(id -u) == 0 ]] || die "must run as root (allow_other)"
need fio "apt-get install fio"
need jq "apt-get install jq"
need sqlite3 "apt-get install sqlite3"
need stdbuf "apt-get install coreutils"
need gnuplot "apt-get install gnuplot-nox"
need g++ "apt-get install g++"
need fusermount3 "apt-get install fuse3"
[[ -d $base_dir ]] || die "--dir $base_dir is not a directory"
fs_type=$(stat -f -c %T "$base_dir")
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
[[ -x $fsysfs_bin ]] || die "fsysfs binary not found in $build_dir"
meta_bin=$build_dir/bench/metadata_bench
[[ -x $meta_bin ]] || die "$meta_bin missing (build the metadata_bench target)"

ops_bin=$(build_modes_ops "$REPO" "$build_dir")

# fsysfs's default transport is FUSE over io_uring where the kernel offers it: on for the
# run (put back by cleanup), so that every mode runs on the default transport.
uring_param=/sys/module/fuse/parameters/enable_uring
if [[ -w $uring_param ]]; then
  restore_enable_uring=$(cat "$uring_param")
  echo 1 >"$uring_param" || die "cannot turn on $uring_param"
fi

# ---------------------------------------------------------------- mounts and cleanup
work=$(mktemp -d "$base_dir/fsysfs-modes.XXXXXX")
# Anything that names a file relative to the current directory by mistake lands here.
cd "$work"
declare -A PID=() MNT=() DIR=() CMD=()
current_pid=""

install_cleanup

mount_target() {
  local t=$1 b=$work/$1/backing m=$work/$1/mnt
  mkdir -p "$b" "$m"
  case $t in
    backing | backing-dsync) DIR[$t]=$b; return 0 ;;
    none-wb) CMD[$t]="$fsysfs_bin -f -o allow_other,durability=none,writeback_cache $b $m" ;;
    *-crashsim) CMD[$t]="$fsysfs_bin -f -o allow_other,durability=${t%-crashsim},crashsim $b $m" ;;
    *) CMD[$t]="$fsysfs_bin -f -o allow_other,durability=$t $b $m" ;;
  esac
  # A foreground daemon as our own child: we know its pid for cleanup.
  ${CMD[$t]} >"$work/$t.log" 2>&1 &
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
}

# ---------------------------------------------------------------- workloads
# Every cell runs with a time limit so that a hung daemon cannot hang the run.
cell_timeout=$((seconds * 10 + sqlite_max_s + 60))
# fio applies --directory only to a --filename that follows it: keep that order.
fio_common=(--ioengine=psync --direct=0 --invalidate=0 --output-format=json
  --size="${file_mb}M" --bs=4k --runtime="$seconds" --time_based)

# Writes "ops_s p99_us p99b_us" for the cell to $value_file, or fails. p99b is the
# fdatasync's p99 in the fsync workload (fio times the write and the fdatasync separately)
# and "-" elsewhere. Runs in the main shell so that a signal stops the cell at once.
value_file=$work/value
run_workload() {
  local w=$1 t=$2 d=$3 json=$4
  local -a dsync=()
  [[ $t == backing-dsync ]] && dsync=(--sync=dsync)
  case $w in
    fsync)
      run_bg fio --name=fsync "--directory=$d" --filename=ab.dat "${fio_common[@]}" --rw=randwrite \
        --fdatasync=1 "${dsync[@]}" >"$json" || return 1
      jq -e -r '.jobs[0] | "\(.write.iops) \(.write.clat_ns.percentile["99.000000"] / 1e3)" +
        " \(.sync.lat_ns.percentile["99.000000"] / 1e3)"' "$json" >"$value_file" ;;
    seqw | randw)
      local rw=write
      [[ $w == randw ]] && rw=randwrite
      run_bg fio --name="$w" "--directory=$d" --filename=ab.dat "${fio_common[@]}" --rw="$rw" \
        "${dsync[@]}" \
        >"$json" || return 1
      jq -e -r '.jobs[0] | "\(.write.iops) \(.write.clat_ns.percentile["99.000000"] / 1e3) -"' \
        "$json" >"$value_file" ;;
    rename)
      [[ $t == backing-dsync ]] && dsync=(--dsync)
      mkdir -p "$d/saves"
      run_bg "$ops_bin" rename --ops "$rename_ops" --max-seconds "$rename_max_s" "${dsync[@]}" \
        "$d/saves" >"$json" || return 1
      jq -e -r '"\(.ops_s) \(.p99_us) -"' "$json" >"$value_file" ;;
    sqlite)
      # SQLite has no O_DSYNC switch: its durability is its own fsyncs.
      [[ $t == backing-dsync ]] && return 2
      run_bg "$ops_bin" sqlite --tx "$sqlite_tx" --rows "$sqlite_rows" \
        --max-seconds "$sqlite_max_s" "$d" >"$json" || return 1
      jq -e -r '"\(.ops_s) \(.p99_us) -"' "$json" >"$value_file" ;;
    meta)
      # Creates, stats and unlinks in one fresh directory; three rates, no latencies.
      [[ $t == backing-dsync ]] && return 2
      local md=$d/meta
      rm -rf "$md"
      mkdir "$md"
      sync
      if ! run_bg "$meta_bin" --files "$meta_files" --size "$meta_file_bytes" "$md" >"$json"; then
        rm -rf "$md"
        return 1
      fi
      rmdir "$md"
      jq -e -r '"\(.create_ops_s) \(.stat_ops_s) \(.unlink_ops_s)"' "$json" >"$value_file" ;;
  esac
}

# The file the fio cells overwrite is laid out once, directly in each backing directory,
# and synced before any timing: every target overwrites allocated blocks.
layout() {
  fio --name=layout --ioengine=psync "--directory=$1" --filename=ab.dat --size="${file_mb}M" \
    --rw=write --bs=1M --end_fsync=1 --output-format=terse >/dev/null ||
    die "layout of ab.dat in $1 failed"
}

# ---------------------------------------------------------------- run
start_epoch=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "work dir $work ($fs_type); targets: ${T[*]}; $rounds rounds, fio cells ${seconds}s"
mkdir -p "$work/json"
for t in "${T[@]}"; do
  mkdir -p "$work/$t/backing"
  layout "$work/$t/backing"
done
sync
for t in "${T[@]}"; do mount_target "$t"; done

results=$work/results.tsv  # round workload target ops_s p99_us p99b_us
: >"$results"
n=${#T[@]}
for ((r = 1; r <= rounds; r++)); do
  for w in $WORKLOADS; do
    # The order of targets rotates each round, so none always runs first or always
    # follows another's writeback.
    for ((i = 0; i < n; i++)); do
      t=${T[$(((i + r - 1) % n))]}
      json=$work/json/$r.$w.$t.json
      rc=0
      run_workload "$w" "$t" "${DIR[$t]}" "$json" || rc=$?
      if ((rc == 0)) && [[ $w == meta ]]; then
        read -r c s u <"$value_file"
        printf '%s\tcreate\t%s\t%s\t-\t-\n%s\tstat\t%s\t%s\t-\t-\n%s\tunlink\t%s\t%s\t-\t-\n' \
          "$r" "$t" "$c" "$r" "$t" "$s" "$r" "$t" "$u" >>"$results"
        log "round $r meta $t: create $c, stat $s, unlink $u ops/s"
      elif ((rc == 0)); then
        read -r ops p99 p99b <"$value_file"
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$w" "$t" "$ops" "$p99" "$p99b" >>"$results"
        sync_p99=""
        [[ $p99b == - ]] || sync_p99=" + fdatasync p99 $p99b us"
        log "round $r $w $t: $ops ops/s, p99 $p99 us$sync_p99"
      elif ((rc == 1)); then
        log "round $r $w $t: FAILED (see $json)"
        tail -n 5 "$json.err" "$json" >&2 2>/dev/null || true
      fi
      # No cell pays for the previous one's dirty pages.
      sync
    done
  done
done

# What each mount did over the whole run, from its own counters: checks that the mode in
# force is the one the column claims.
declare -A STATS=()
for t in "${T[@]}"; do
  [[ -n ${MNT[$t]-} ]] || continue
  STATS[$t]=$("$fsysfs_bin" stats "${MNT[$t]}" --json | jq -r '
    "| \(.durability) | \(.dirsync_active) | \(.writeback_cache) | \(.fuse.ops.write) |" +
    " \(.engine.ops["write+fdatasync"].count) | \(.engine.ops.fdatasync.count) |" +
    " \(.engine.ops.fsync.count) | \(.fuse.syncs_issued) | \(.fuse.syncs_skipped) |" +
    " \(.fuse.close_syncs) | \(.fuse.dir_syncs) | \(.fuse.ops.getxattr) |"') ||
    STATS[$t]="| stats failed |"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(($(date +%s) - start_epoch))

# ---------------------------------------------------------------- report
# Everything derived from $results in one awk program: the Markdown tables, and the chart's
# data file (one line per workload: label, then each non-backing target's ratio to backing).
chart_data=$work/chart.dat
summarize() {
  local prog
  prog=$(
    cat <<'AWK'
function median(list,    a, n, i, j, x) {
  n = split(list, a, " ")
  if (n == 0) return ""
  for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > x + 0; j--) a[j + 1] = a[j]; a[j + 1] = x }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function fops(v) { return v == "" ? "—" : (v >= 100 ? sprintf("%.0f", v) : sprintf("%.1f", v)) }
function fus(v) {
  if (v == "") return "—"
  if (v >= 10000) return sprintf("%.1f ms", v / 1000)
  if (v >= 1000) return sprintf("%.2f ms", v / 1000)
  return sprintf("%.0f µs", v)
}
# Median over rounds of target t's ops/s divided by target b's, in the same round.
function ratio(w, t, b,    rl, r) {
  rl = ""
  for (r = 1; r <= maxr; r++)
    if (((r, w, t) in ops) && ((r, w, b) in ops) && ops[r, w, b] > 0)
      rl = rl " " ops[r, w, t] / ops[r, w, b]
  return median(rl)
}
function fratio(m) { return m == "" ? "—" : sprintf("%.2f", m) }
BEGIN {
  nt = split(targets, T, " ")
  nw = split(workloads, W, " ")
  label["fsync"] = "4 KiB random write + fdatasync (fio, 1 job)"
  label["seqw"] = "4 KiB sequential write, no sync (fio)"
  label["randw"] = "4 KiB random write, no sync (fio)"
  label["rename"] = "save: write 4 KiB temp file, close, rename over (no fsync)"
  label["sqlite"] = "SQLite: transaction of 10 inserts (sqlite3 CLI)"
  short["fsync"] = "write+fdatasync"
  short["seqw"] = "seq write"
  short["randw"] = "rand write"
  short["rename"] = "temp+rename"
  short["sqlite"] = "SQLite tx"
  label["create"] = "create a 1 KiB file (metadata_bench)"
  label["stat"] = "stat of those files"
  label["unlink"] = "unlink of those files"
  short["create"] = "create"
  short["stat"] = "stat"
  short["unlink"] = "unlink"
}
{
  ops[$1, $2, $3] = $4; p99[$1, $2, $3] = $5; p99b[$1, $2, $3] = $6
  lo[$2, $3] = lo[$2, $3] " " $4
  if ($5 != "-") lp[$2, $3] = lp[$2, $3] " " $5
  if ($6 != "-") lb[$2, $3] = lb[$2, $3] " " $6
  if ($1 > maxr) maxr = $1
}
END {
  head = "| Workload |"; sep = "|---|"
  for (i = 1; i <= nt; i++) { head = head " " T[i] " |"; sep = sep "---:|" }

  print "## ops/s and p99 latency (medians over rounds)"
  print ""
  print "Each cell: ops/s · p99. For write+fdatasync, p99 is the write's, then the fdatasync's"
  print "(fio times them separately); every other p99 is of the whole operation."
  print ""; print head; print sep
  for (k = 1; k <= nw; k++) {
    w = W[k]; line = "| " label[w] " |"
    for (i = 1; i <= nt; i++) {
      t = T[i]; o = median(lo[w, t])
      if (o == "") { line = line " — |"; continue }
      lat = ((w, t) in lp) ? fus(median(lp[w, t])) : "—"
      if ((w, t) in lb) lat = lat " + " fus(median(lb[w, t]))
      line = line " " fops(o) " · " lat " |"
    }
    print line
  }
  print ""
  print "## ops/s relative to the backing directory (median of per-round ratios)"
  print ""; print head; print sep
  for (k = 1; k <= nw; k++) {
    w = W[k]; line = "| " label[w] " |"
    for (i = 1; i <= nt; i++) line = line " " fratio(ratio(w, T[i], "backing")) " |"
    print line
  }
  print ""
  print "## The issue's targets"
  print ""
  print "| Target | Workload | ratio | met? |"
  print "|---|---|---:|---|"
  for (k = 1; k <= nw; k++) {
    w = W[k]
    m = ratio(w, "fsync-crashsim", "fsync")
    if (m != "" && (w == "fsync" || w == "sqlite"))
      print "| crashsim costs at most 2×: fsync-crashsim ≥ 0.5 × fsync | " short[w] " | " \
        fratio(m) " | " (m >= 0.5 ? "yes" : "**no**") " |"
    if (w == "stat")
      for (i = 1; i <= nt; i++) {
        if (T[i] ~ /^backing/) continue
        m = ratio(w, T[i], "backing")
        print "| stat ≥ 0.85 × backing in every mode: " T[i] " | stat | " fratio(m) " | " \
          (m == "" ? "—" : (m >= 0.85 ? "yes" : "**no**")) " |"
      }
    if (w == "create" || w == "unlink") {
      m = ratio(w, "fsync", "backing")
      print "| " w " ≥ 0.25 × backing (fsync) | " short[w] " | " fratio(m) " | " \
        (m == "" ? "—" : (m >= 0.25 ? "yes" : "**no**")) " |"
    }
    if (w != "seqw" && w != "randw") continue
    m = ratio(w, "strict", "backing-dsync")
    print "| strict ≥ 0.9 × backing with O_DSYNC | " short[w] " | " fratio(m) " | " \
      (m == "" ? "—" : (m >= 0.9 ? "yes" : "**no**")) " |"
    m = ratio(w, "none", "backing")
    print "| none ≥ 0.9 × backing | " short[w] " | " fratio(m) " | " \
      (m == "" ? "—" : (m >= 0.9 ? "yes" : "**no**")) " |"
    m = ratio(w, "none-wb", "backing")
    if (m != "")
      print "| (none-wb ≥ 0.9 × backing) | " short[w] " | " fratio(m) " | " \
        (m >= 0.9 ? "yes" : "**no**") " |"
  }
  print ""
  print "## Per round (ops/s, p99 µs; round 1, 2, ...)"
  print ""
  for (k = 1; k <= nw; k++) {
    w = W[k]
    for (i = 1; i <= nt; i++) {
      t = T[i]; line = "- " w ", " t ":"; any = 0
      for (r = 1; r <= maxr; r++) {
        if ((r, w, t) in ops) {
          any = 1; line = line " " fops(ops[r, w, t])
          if (p99[r, w, t] != "-") {
            line = line " (" sprintf("%.0f", p99[r, w, t])
            if (p99b[r, w, t] != "-") line = line "+" sprintf("%.0f", p99b[r, w, t])
            line = line ")"
          }
        } else line = line " —"
      }
      if (any) print line
    }
  }

  # Chart data: ratio to backing; "-" (no bar) where there is no value.
  hdr = "workload"
  for (i = 1; i <= nt; i++) if (T[i] != "backing") hdr = hdr "\t" T[i]
  print hdr > chart
  for (k = 1; k <= nw; k++) {
    w = W[k]; line = "\"" short[w] "\""
    for (i = 1; i <= nt; i++) {
      if (T[i] == "backing") continue
      m = ratio(w, T[i], "backing"); line = line "\t" (m == "" ? "-" : m)
    }
    print line > chart
  }
}
AWK
  )
  awk -F'\t' -v targets="${T[*]}" -v workloads="$ROWS" -v chart="$chart_data" \
    "$prog" "$results"
}

draw_chart() {
  draw_ratio_chart "$1" "$chart_data" \
    "fsysfs durability modes: ops/s relative to the backing directory\\n(median of $rounds round(s); log scale; solid line: backing = 1, dashed: 0.9)" \
    "ops/s ÷ backing directory ops/s" 0.9
}

report() {
  local dev
  dev=$(df --output=source "$base_dir" | tail -n 1)
  echo "# Durability A/B: fsysfs modes vs the backing directory"
  echo
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); run time $((elapsed / 60)) min $((elapsed % 60)) s"
  echo "- Command: \`bench/modes.sh${cmdline}\`"
  echo "- Commit: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?)" \
    "$(git -C "$REPO" diff --quiet HEAD -- engine fusefs mount 2>/dev/null || echo '(engine/fusefs/mount modified)')"
  echo "- Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo) RAM," \
    "kernel $(uname -r), $fs_type on $dev ($base_dir); fio $(fio --version); sqlite3 $(sqlite3 --version | cut -d' ' -f1)"
  [[ -z $note ]] || echo "- Note: $note"
  echo "- Load average before / after: $load_before / $load_after"
  echo "- $rounds interleaved round(s); fio cells ${seconds} s over a ${file_mb} MiB file;" \
    "saves: $rename_ops per cell (at most ${rename_max_s} s); SQLite: $sqlite_tx transactions" \
    "of $sqlite_rows inserts per cell (at most ${sqlite_max_s} s)"
  echo
  echo "Targets (columns):"
  echo
  for t in "${T[@]}"; do
    case $t in
      backing) echo "- \`backing\`: the backing directory used directly (ratio 1.00 by definition)" ;;
      backing-dsync) echo "- \`backing-dsync\`: the backing directory, files opened O_DSYNC (fio \`--sync=dsync\`)" ;;
      *) echo "- \`$t\`: \`${CMD[$t]//$work/W}\`" ;;
    esac
  done
  echo
  summarize
  echo
  echo "## What the mounts counted over the whole run (\`fsysfs stats --json\`)"
  echo
  echo "| Target | durability | dirsync | writeback cache | FUSE writes | engine write+fdatasync" \
    "| engine fdatasync | engine fsync | syncs issued | syncs skipped | close syncs | dir syncs" \
    "| FUSE getxattr |"
  echo "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for t in "${T[@]}"; do
    [[ -n ${STATS[$t]-} ]] && echo "| $t ${STATS[$t]}"
  done
  echo
}

cmdline=""
((${#ORIG_ARGS[@]})) && cmdline=" $(printf '%q ' "${ORIG_ARGS[@]}")" && cmdline=${cmdline% }
if ((!out_given && !quick)); then
  mkdir -p "$REPO/bench/results"
  out=$REPO/bench/results/modes-$(date -u +%F).md
fi
if [[ -n $out ]]; then
  png=${out%.md}.png
  report | tee "$out"
  draw_chart "$png" || log "gnuplot failed: no chart"
  log "report written to $out, chart to $png"
else
  report
  draw_chart "$work/chart.png" || log "gnuplot failed"
fi
log "done in ${elapsed}s"
