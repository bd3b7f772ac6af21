#!/bin/bash
# fsysfs end to end on an emulated NVMe drive: boots a guest kernel under QEMU (TCG) with
# one NVMe namespace holding an ext4, mounts the real `fsysfs` binary over it, lets
# fsysfs_guest_app write and fdatasync a file --fsyncs times in each of three phases, and
# counts the FLUSH commands QEMU's trace shows between the app's VERIFY markers:
#   off     (slba 10/11): fsysfs -o nvme_flush=off   -> the backing ext4's own flushes only
#   auto    (slba 12/13): fsysfs -o nvme_flush=auto  -> those plus one passthrough FLUSH
#                                                       per application fdatasync
#   direct  (slba 14/15): the app on the ext4 itself -> the backing fs's baseline
#   strict  (slba 16/17): durability=strict, nvme_flush=auto, the app only writes
#                                                    -> each write a linked write+fdatasync
#                                                       and one passthrough FLUSH
# and checks: auto - off == --fsyncs, off == direct, strict - direct == --fsyncs, and
# `fsysfs stats --json` of each mount agrees (nvme_flush count, one per successful sync,
# passthrough status, syncs issued).
# Exit 0 pass, 1 fail, 77 skip (no QEMU, no guest kernel, TCG cannot boot at all).
#
# The uncompressed guest kernel is cached in --cache-dir/cache-KVER (the same layout as
# run_nvme_vm.sh, so both tests share it).
set -euo pipefail

fsysfs=""
app=""
work=""
cache_dir=""
fsyncs=20
while [[ $# -gt 0 ]]; do
  case "$1" in
    --fsysfs) fsysfs="$2"; shift 2 ;;
    --guest-app) app="$2"; shift 2 ;;
    --work-dir) work="$2"; shift 2 ;;
    --cache-dir) cache_dir="$2"; shift 2 ;;
    --fsyncs) fsyncs="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 1 ;;
  esac
done
[[ -x "$fsysfs" && -x "$app" && -n "$work" ]] ||
  { echo "usage: $0 --fsysfs B --guest-app B --work-dir D [--cache-dir C] [--fsyncs N]" >&2; exit 1; }
cache_dir=${cache_dir:-$work}

skip() { echo "SKIP: $*"; exit 77; }
# shellcheck source=tests/vm/guest_lib.sh
source "$(dirname "$0")/guest_lib.sh"
fail() { echo "FAIL: $*"; exit 1; }

qemu=$(command -v qemu-system-x86_64 || true)
[[ -n "$qemu" ]] || skip "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
find_busybox
command -v mkfs.ext4 > /dev/null || skip "mkfs.ext4 not found (apt-get install e2fsprogs)"
file -L "$app" | grep -q 'statically linked' || fail "$app is not a static binary"

find_guest_kernel
mkdir -p "$work"
kernel=$(guest_kernel_image "$cache_dir/cache-$kver")

# --- initramfs: busybox, modules, fsysfs with its shared libraries, the app, /init.
root="$work/initramfs"
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,etc,backing,m-off,m-auto,m-strict,lib/modules/"$kver"}
cp "$busybox" "$root/bin/busybox"
ln -s /proc/mounts "$root/etc/mtab"
add_guest_modules nvme-core nvme crc16 mbcache jbd2 crc32c_generic ext4 fuse
strip -o "$root/bin/fsysfs" "$fsysfs" 2> /dev/null || cp "$fsysfs" "$root/bin/fsysfs"
for lib in $(ldd "$fsysfs" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
  mkdir -p "$root/$(dirname "$lib")"
  cp -L "$lib" "$root/$lib"
done
cp "$app" "$root/bin/fsysfs_guest_app"

cat > "$root/init" << EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in nvme crc32c_generic ext4 fuse; do modprobe \$m; done
i=0
while [ ! -b /dev/nvme0n1 ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
mount -t ext4 /dev/nvme0n1 /backing || echo "GUEST-ERROR mount ext4"
# run_phase NAME MOUNT-OPTIONS MARKER [APP-ARGS]: mounts fsysfs, runs the app, prints the
# stats.
run_phase() {
  fsysfs -f -o allow_other,\$2 /backing /m-\$1 2> /tmp/\$1.log &
  pid=\$!
  i=0
  while ! grep -q " /m-\$1 fuse.fsysfs " /proc/mounts && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
  fsysfs_guest_app --file /m-\$1/\$1.dat --fsyncs $fsyncs --marker \$3 \$4 || echo "GUEST-ERROR app \$1"
  echo "GUEST-STATS \$1 \$(fsysfs stats /m-\$1 --json)"
  umount /m-\$1
  wait \$pid || echo "GUEST-ERROR daemon \$1 exit \$?"
  sed "s/^/GUEST-LOG \$1 /" /tmp/\$1.log
}
run_phase off nvme_flush=off 10
run_phase auto nvme_flush=auto 12
run_phase strict nvme_flush=auto,durability=strict 16 "--sync 0"
fsysfs_guest_app --file /backing/direct.dat --fsyncs $fsyncs --marker 14 || echo "GUEST-ERROR app direct"
umount /backing
echo "GUEST-END"
poweroff -f
EOF
chmod +x "$root/init"
initrd="$work/initramfs.cpio.gz"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd"

# --- Disk: an ext4 over the whole namespace, initialised in full now so that no lazy
# init thread writes (and flushes) while the guest counts.
disk="$work/nvme.img"
rm -f "$disk"
truncate -s 64M "$disk"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$disk" > /dev/null

events="$work/trace-events"
printf '%s\n' pci_nvme_io_cmd pci_nvme_verify pci_nvme_flush_ns pci_nvme_err_req_status > "$events"
trace="$work/trace.log"
console="$work/console.log"
rm -f "$trace" "$console"
start=$(date +%s%N)
set +e
timeout 120 "$qemu" -accel tcg -m 512 -smp 1 -nodefaults -display none -no-reboot \
  -serial "file:$console" -kernel "$kernel" -initrd "$initrd" \
  -append "console=ttyS0 quiet panic=-1 cryptomgr.notests" \
  -drive "file=$disk,if=none,id=nv0,format=raw" -device "nvme,serial=fsysfs0,drive=nv0" \
  -trace "events=$events,file=$trace" > "$work/qemu.out" 2>&1
qemu_rc=$?
set -e
end=$(date +%s%N)
echo "== qemu exit $qemu_rc after $(((end - start) / 1000000)) ms"
if ! grep -q 'GUEST-END' "$console" 2> /dev/null; then
  cat "$work/qemu.out" || true
  tail -n 40 "$console" 2> /dev/null || true
  # No console output at all: TCG cannot boot here, or (exit 124) the machine is so loaded
  # that the guest did not print within the timeout.
  [[ -s "$console" ]] || skip "QEMU (TCG) did not start a guest (exit $qemu_rc)"
  fail "guest did not finish (qemu exit $qemu_rc)"
fi
sed 's/\r$//' "$console" | grep -E '^(RESULT|GUEST-)' | grep -v '^GUEST-STATS' || true
if grep -q '^GUEST-ERROR' "$console"; then fail "the guest reported errors (console in $console)"; fi

# FLUSH (opcode 0) commands per marker window, and nothing but FLUSH, WRITE and READ.
counts=$(awk '
  function hex(s,  i, n) {
    n = 0
    for (i = 3; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
    return n
  }
  /pci_nvme_verify / {
    match($0, /slba 0x[0-9a-f]+/); slba = hex(substr($0, RSTART + 5, RLENGTH - 5))
    if (slba % 2 == 0) { phase = slba; open[slba] = 1 } else { phase = 0; closed[slba - 1] = 1 }
    next
  }
  /pci_nvme_io_cmd / && phase {
    match($0, /opc 0x[0-9a-f]+/); opc = substr($0, RSTART + 4, RLENGTH - 4)
    if (opc == "0x0") flush[phase]++
    else if (opc == "0x1") write[phase]++
    else if (opc != "0xc") other[phase]++
  }
  /pci_nvme_err_req_status / && phase { err[phase]++ }
  END {
    for (p = 10; p <= 16; p += 2)
      printf "%d %d %d %d %d %d ", open[p] + closed[p], flush[p] + 0, write[p] + 0, other[p] + 0, err[p] + 0, 0
    print ""
  }' "$trace")
read -r m_off f_off w_off o_off e_off _ m_auto f_auto w_auto o_auto e_auto _ \
  m_direct f_direct w_direct o_direct e_direct _ m_strict f_strict w_strict o_strict e_strict _ <<< "$counts"
echo "trace: FLUSH commands for $fsyncs application fdatasyncs: off $f_off, auto $f_auto, direct $f_direct; for $fsyncs strict writes: $f_strict (WRITEs $w_off/$w_auto/$w_direct/$w_strict)"
for p in off auto direct strict; do
  m=m_$p o=o_$p e=e_$p
  [[ ${!m} == 2 ]] || fail "$p: VERIFY markers not both in the trace"
  [[ ${!o} == 0 ]] || fail "$p: unexpected I/O commands between the markers"
  [[ ${!e} == 0 ]] || fail "$p: the device reported errors"
done
[[ $((f_auto - f_off)) == "$fsyncs" ]] ||
  fail "nvme_flush=auto added $((f_auto - f_off)) FLUSH commands, want $fsyncs (one per fdatasync)"
[[ $f_off == "$f_direct" ]] ||
  fail "nvme_flush=off: $f_off FLUSH commands, the backing fs alone sends $f_direct"
(( f_direct >= fsyncs )) || fail "the backing ext4 sent $f_direct FLUSH for $fsyncs fdatasyncs"
[[ $((f_strict - f_direct)) == "$fsyncs" ]] ||
  fail "strict: $f_strict FLUSH commands for $fsyncs writes, want the backing fs's $f_direct plus $fsyncs"

# The daemon's account: the app's first fdatasync (before the markers) counts too.
stats() { sed -n "s/^GUEST-STATS $1 //p" "$console" | tr -d '\r'; }
json_count() { grep -o "\"$2\":{\"count\":[0-9]*" <<< "$1" | head -1 | grep -o '[0-9]*$'; }
json_number() { grep -o "\"$2\":[0-9]*" <<< "$1" | head -1 | grep -o '[0-9]*$'; }
s_off=$(stats off)
s_auto=$(stats auto)
[[ -n "$s_off" && -n "$s_auto" ]] || fail "no stats from the guest"
want=$((fsyncs + 1))
n=$(json_count "$s_auto" nvme_flush)
[[ "$n" == "$want" ]] || fail "auto: stats count $n NVMe flushes, the app made $want fdatasyncs"
n=$(json_number "$s_auto" syncs_issued)
[[ "$n" == "$want" ]] || fail "auto: stats count $n syncs issued, want $want"
grep -q '"passthrough":true' <<< "$s_auto" || fail "auto: stats show no NVMe passthrough: $s_auto"
n=$(json_count "$s_off" nvme_flush)
[[ "$n" == 0 ]] || fail "off: stats count $n NVMe flushes"
n=$(json_number "$s_off" syncs_issued)
[[ "$n" == "$want" ]] || fail "off: stats count $n syncs issued, want $want"
# strict: one linked write+fdatasync per write (and the first write's), each followed by
# one FLUSH; the app's one fdatasync may be elided as already durable.
s_strict=$(stats strict)
[[ -n "$s_strict" ]] || fail "no stats from the strict guest phase"
n=$(json_count "$s_strict" "write+fdatasync")
[[ "$n" == "$want" ]] || fail "strict: stats count $n write+fdatasync chains, want $want"
syncs=$(($(json_count "$s_strict" "write+fdatasync") + $(json_count "$s_strict" fdatasync) + $(json_count "$s_strict" fsync)))
n=$(json_count "$s_strict" nvme_flush)
[[ "$n" == "$syncs" ]] || fail "strict: stats count $n NVMe flushes for $syncs successful syncs"
echo "stats: strict write+fdatasync $want, nvme_flush $n"
echo "stats: auto nvme_flush $(json_count "$s_auto" nvme_flush), off nvme_flush $(json_count "$s_off" nvme_flush), syncs_issued $want each"
echo "PASS"
