# Shell helpers shared by bench/peers.sh and bench/modes.sh; sourced, not run.
#
# The including script defines the associative arrays MNT (target -> mount point) and PID
# (target -> daemon pid), and the variables work (the work directory), current_pid (the
# running cell's pid, or empty), json (the running cell's output file; run_bg writes its
# stderr to $json.err) and cell_timeout (seconds a cell may run).
# shellcheck shell=bash

die() {
  echo "${0##*/}: $*" >&2
  exit 1
}
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
need() { command -v "$1" >/dev/null || die "$1 not found: $2"; }

mounted() { grep -qF " $1 " /proc/self/mounts; }

unmount_target() {
  local t=$1 m=${MNT[$1]-} p=${PID[$1]-}
  [[ -n $m ]] || return 0
  if mounted "$m" && ! fusermount3 -u "$m" 2>/dev/null; then
    # Busy (a killed tool still closing files) or a hung daemon: stop our daemon, then
    # detach lazily so that no mount outlives the script.
    if [[ -n $p ]]; then kill -TERM "$p" 2>/dev/null || true; fi
    for _ in $(seq 50); do mounted "$m" || break; sleep 0.1; done
    mounted "$m" && { fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" || true; }
  fi
  if [[ -n $p ]]; then
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null || true
  fi
  unset "MNT[$t]" "PID[$t]"
}

# --busy: N CPU-bound loops at the lowest priority, so that no CPU goes idle during the
# rounds (busy_pids is what stop_busy and cleanup kill).
busy_pids=()
start_busy() {
  local i
  for ((i = 0; i < $1; i++)); do
    nice -n 19 bash -c 'while :; do :; done' &
    busy_pids+=($!)
  done
}
stop_busy() {
  ((${#busy_pids[@]})) || return 0
  kill "${busy_pids[@]}" 2>/dev/null || true
  wait "${busy_pids[@]}" 2>/dev/null || true
  busy_pids=()
}

# The EXIT trap of both scripts: stops the running cell, unmounts every target and removes
# the work directory $work (unless something is still mounted under it), keeping the exit
# status. Every step is best effort: one failure (a killed child's status, a busy mount)
# must not stop the unmounting of the rest.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [[ -n $current_pid ]]; then
    kill -TERM "$current_pid" 2>/dev/null
    wait "$current_pid" 2>/dev/null
  fi
  stop_busy
  for t in "${!MNT[@]}"; do unmount_target "$t"; done
  # A setting the including script changed for its run.
  if [[ -n ${restore_enable_uring-} ]]; then
    echo "$restore_enable_uring" >/sys/module/fuse/parameters/enable_uring
  fi
  # shellcheck disable=SC2154  # the including script's (see the top of this file)
  if grep -qF " $work/" /proc/self/mounts; then
    echo "${0##*/}: something is still mounted under $work; not removing it" >&2
  else
    rm -rf "$work"
  fi
  exit "$rc"
}

install_cleanup() {
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Runs a command in the background under `timeout $cell_timeout` and waits, so that the
# script's cleanup can stop it; its stderr goes to $json.err.
run_bg() {
  # shellcheck disable=SC2154  # both are the including script's (see the top of this file)
  timeout "$cell_timeout" "$@" 2>"$json.err" &
  current_pid=$!
  local rc=0
  wait "$current_pid" || rc=$?
  current_pid=""
  return "$rc"
}

# Compiles bench/modes/modes_ops.cc (the per-operation timer of the rename and SQLite
# workloads; it has no build-system target of its own) into BUILD/modes/modes_ops when it is
# missing or older than its sources, and prints its path.
build_modes_ops() {
  local repo=$1 build=$2
  local src=$repo/bench/modes/modes_ops.cc bin=$build/modes/modes_ops
  if [[ ! -x $bin || $src -nt $bin || $repo/engine/sys.cc -nt $bin ]]; then
    log "compiling $bin"
    mkdir -p "$build/modes"
    g++ -std=c++20 -O2 -Wall -Wextra -I"$repo" -o "$bin" "$src" "$repo/engine/sys.cc" >&2 ||
      die "could not compile $src"
  fi
  echo "$bin"
}

# draw_ratio_chart PNG DATA TITLE YLABEL [DASHED]
# Clustered bars from DATA (tab-separated; a header line "workload<TAB>target..."; then one
# line per workload: a quoted label, then each target's ratio, "-" for none), one cluster per
# workload and one bar per target, each bar labelled with its value. Log scale: the ratios
# span orders of magnitude. A solid line marks 1 (the reference) and, if DASHED is given, a
# dashed line marks that value. TITLE may contain \n.
draw_ratio_chart() {
  local png=$1 data=$2 title=$3 ylabel=$4 dashed=${5-} ncols nrows ymax width dashed_cmd=""
  ncols=$(head -n 1 "$data" | awk -F'\t' '{print NF}')
  nrows=$(($(wc -l <"$data") - 1))
  # About 26 px per bar and gap, plus the key and margins; never narrower than 1400.
  width=$((nrows * ncols * 26 + 300))
  ((width >= 1400)) || width=1400
  # Room above the tallest bar for its label, on the log scale.
  ymax=$(awk -F'\t' 'NR > 1 { for (i = 2; i <= NF; i++) if ($i != "-" && $i > m) m = $i }
    END { m = m * 4; print (m < 3 ? 3 : m) }' "$data")
  [[ -z $dashed ]] ||
    dashed_cmd="set arrow from graph 0, first $dashed to graph 1, first $dashed nohead lc rgb \"#666666\" dt 2 front"
  gnuplot <<EOF
set terminal pngcairo size $width,700 font "DejaVu Sans,12" noenhanced
set output "$png"
set datafile separator "\t"
set datafile missing "-"
set key autotitle columnheader
set title "$title"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [0.001:$ymax]
set ytics ("0.001" 0.001, "0.003" 0.003, "0.01" 0.01, "0.03" 0.03, "0.1" 0.1, "0.3" 0.3, "1" 1, "3" 3, "10" 10, "30" 30, "100" 100, "300" 300)
set grid ytics lc rgb "#dddddd"
set ylabel "$ylabel"
set key outside right top vertical
set xtics nomirror
set arrow from graph 0, first 1 to graph 1, first 1 nohead lc rgb "black" lw 2 front
$dashed_cmd
fmt(v) = v >= 10 ? sprintf("%.0f", v) : (v >= 0.01 ? sprintf("%.2f", v) : sprintf("%.3f", v))
bw = 1.0 / $ncols
plot for [c=2:$ncols] "$data" using c:xtic(1), \\
     for [c=2:$ncols] "$data" using (\$0 - 0.5 + bw * (c - 1)):(column(c)):(fmt(column(c))) \\
       with labels rotate by 90 left offset 0,0.3 font ",9" notitle
EOF
}
