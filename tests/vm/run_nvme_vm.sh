#!/bin/bash
# Boots a guest kernel under QEMU (TCG) with an emulated NVMe controller, runs
# nvme_guest_test in it, and checks QEMU's NVMe trace:
#   - between VERIFY markers 101 and 102: exactly --flushes FLUSH commands, all to the
#     tested namespace's nsid, and no other I/O command;
#   - between markers 100 and 101 (the registry's lookups): Identify Namespace (CNS 0) of
#     that nsid as an admin command, one probe FLUSH per probed device, no other I/O;
#   - the guest kernel never warned about I/O commands on the controller char device.
# Two guests run:
#   plain:  one controller, one namespace holding an MBR partition with an ext4 on it; the
#           registry is asked for the raw namespace and for a file on the ext4 (partition).
#   subsys: a controller in an NVMe subsystem (the kernel's native multipath layout in
#           sysfs) with two namespaces; the registry is asked for the second (nsid 2),
#           where the controller device would refuse I/O commands.
# Exit 0 pass, 1 fail, 77 skip (no QEMU, no guest kernel, or TCG cannot boot at all).
#
# Artefacts that do not change between runs (the uncompressed guest kernel, the
# initramfs skeleton) are cached in --work-dir.
set -euo pipefail

guest_binary=""
work=""
flushes=25
while [[ $# -gt 0 ]]; do
  case "$1" in
    --guest-binary) guest_binary="$2"; shift 2 ;;
    --work-dir) work="$2"; shift 2 ;;
    --flushes) flushes="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 1 ;;
  esac
done
[[ -x "$guest_binary" && -n "$work" ]] || { echo "usage: $0 --guest-binary B --work-dir D [--flushes N]" >&2; exit 1; }

skip() { echo "SKIP: $*"; exit 77; }
# shellcheck source=tests/vm/guest_lib.sh
source "$(dirname "$0")/guest_lib.sh"
fail() { echo "FAIL: $*"; exit 1; }

qemu=$(command -v qemu-system-x86_64 || true)
[[ -n "$qemu" ]] || skip "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
find_busybox
find_guest_kernel
mkdir -p "$work"
kernel=$(guest_kernel_image "$work/cache-$kver")

# --- initramfs: busybox, the modules with their dependencies, /init, the test program.
root="$work/initramfs"
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,mnt,tmp,lib/modules/"$kver"}
cp "$busybox" "$root/bin/busybox"
modules=(nvme-core nvme crc16 mbcache jbd2 crc32c_generic ext4
         virtio_pci virtio_blk configfs nvmet nvmet-tcp nvme-tcp)
add_guest_modules "${modules[@]}"
strip -o "$root/bin/nvme_guest_test" "$guest_binary" 2> /dev/null || cp "$guest_binary" "$root/bin/nvme_guest_test"

cat > "$root/init" << EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
wait_for() {
  i=0
  while [ ! -b \$1 ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
}
# FSYSFS_DEV and FSYSFS_SCENARIO come from the kernel command line (unknown parameters
# become init's environment).
dev=\${FSYSFS_DEV:-/dev/nvme0n1}
flushes=$flushes
if [ "\$FSYSFS_SCENARIO" = nvmet ]; then
  # The kernel's NVMe target exports the virtio disk over TCP loopback; its Identify
  # Namespace reports NSFEAT bit 1 and NAWUPF from the disk's physical block size.
  modprobe virtio_pci
  modprobe virtio_blk
  modprobe nvmet-tcp
  modprobe nvme-tcp
  mount -t configfs configfs /sys/kernel/config
  ip link set lo up
  wait_for /dev/vda
  t=/sys/kernel/config/nvmet
  mkdir \$t/subsystems/fsysfs-t
  echo 1 > \$t/subsystems/fsysfs-t/attr_allow_any_host
  mkdir \$t/subsystems/fsysfs-t/namespaces/1
  echo -n /dev/vda > \$t/subsystems/fsysfs-t/namespaces/1/device_path
  echo 1 > \$t/subsystems/fsysfs-t/namespaces/1/enable
  mkdir \$t/ports/1
  echo tcp > \$t/ports/1/addr_trtype
  echo ipv4 > \$t/ports/1/addr_adrfam
  echo 127.0.0.1 > \$t/ports/1/addr_traddr
  echo 4420 > \$t/ports/1/addr_trsvcid
  ln -s \$t/subsystems/fsysfs-t \$t/ports/1/subsystems/fsysfs-t
  echo "transport=tcp,traddr=127.0.0.1,trsvcid=4420,nqn=fsysfs-t" > /dev/nvme-fabrics
  # The target does not implement VERIFY, and its commands are not in QEMU's trace.
  args_extra="--no-markers"
  flushes=3
else
  modprobe nvme
fi
wait_for \$dev
args="--device \$dev --flushes \$flushes \$args_extra"
if [ \$dev = /dev/nvme0n1 ] && [ -b /dev/nvme0n1p1 ]; then
  modprobe crc32c_generic
  modprobe ext4
  # Read-only: the filesystem itself must not send FLUSHes while the test counts them.
  if mount -t ext4 -o ro /dev/nvme0n1p1 /mnt && [ -e /mnt/probe.txt ]; then
    args="\$args --file /mnt/probe.txt"
  fi
fi
echo "GUEST-SYSFS \$(basename \$dev) device=\$(readlink /sys/block/\$(basename \$dev)/device)"
/bin/nvme_guest_test \$args
echo "GUEST-EXIT \$?"
dmesg | grep -i 'deprecated.*ioctl' | sed 's/^/GUEST-DMESG /'
echo "GUEST-END"
poweroff -f
EOF
chmod +x "$root/init"
initrd="$work/initramfs.cpio.gz"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd"

# --- Disk: 64 MiB; an MBR partition at 1 MiB holding an ext4 with one file, when
# mkfs.ext4 can build it here (the guest's busybox cannot).
disk="$work/nvme.img"
rm -f "$disk"
truncate -s 64M "$disk"
if command -v mkfs.ext4 > /dev/null; then
  fsdir="$work/fsroot"
  rm -rf "$fsdir" "$work/part.img"
  mkdir -p "$fsdir"
  echo "fsysfs nvme probe" > "$fsdir/probe.txt"
  if mkfs.ext4 -q -F -d "$fsdir" "$work/part.img" 63M > /dev/null 2>&1; then
    # One primary partition, type 0x83, LBA 2048 .. end (129024 sectors).
    printf '\x00\x00\x00\x00\x83\xff\xff\xff\x00\x08\x00\x00\x00\xf8\x01\x00' |
      dd of="$disk" bs=1 seek=446 conv=notrunc status=none
    printf '\x55\xaa' | dd of="$disk" bs=1 seek=510 conv=notrunc status=none
    dd if="$work/part.img" of="$disk" bs=1M seek=1 conv=notrunc status=none
  fi
  rm -rf "$fsdir" "$work/part.img"
fi

events="$work/trace-events"
cat > "$events" << 'EOF'
pci_nvme_io_cmd
pci_nvme_admin_cmd
pci_nvme_identify
pci_nvme_identify_ns
pci_nvme_identify_ctrl
pci_nvme_flush_ns
pci_nvme_verify
pci_nvme_err_req_status
EOF
# run_guest NAME NSID QEMU-DEVICE-ARGS...: boots one guest, checks its console and trace.
run_guest() {
  local name=$1 nsid=$2
  shift 2
  local trace="$work/$name-trace.log" console="$work/$name-console.log" out="$work/$name-qemu.out"
  rm -f "$trace" "$console"
  local start end qemu_rc
  start=$(date +%s%N)
  set +e
  timeout 120 "$qemu" -accel tcg -m 512 -smp 1 -nodefaults -display none -no-reboot \
    -serial "file:$console" \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 quiet panic=-1 cryptomgr.notests FSYSFS_DEV=$guest_dev FSYSFS_SCENARIO=$name" \
    "$@" \
    -trace "events=$events,file=$trace" > "$out" 2>&1
  qemu_rc=$?
  set -e
  end=$(date +%s%N)
  echo "== $name: qemu exit $qemu_rc after $(((end - start) / 1000000)) ms"

  if ! grep -q 'GUEST-END' "$console" 2> /dev/null; then
    cat "$out" || true
    tail -n 30 "$console" 2> /dev/null || true
    if [[ ! -s "$console" ]]; then skip "QEMU (TCG) did not start a guest (exit $qemu_rc)"; fi
    fail "$name: guest did not finish (qemu exit $qemu_rc)"
  fi

  grep -E '^(RESULT|GUEST-|\[20)' "$console" | sed 's/\r$//'
  local guest_rc probes got_nsid
  guest_rc=$(sed -n 's/^GUEST-EXIT \([0-9]*\).*/\1/p' "$console" | tr -d '\r')
  [[ "$guest_rc" == 0 ]] || fail "$name: guest program exited with ${guest_rc:-?}"
  if grep -q '^GUEST-DMESG' "$console"; then
    fail "$name: the kernel saw I/O commands on the controller device"
  fi
  probes=$(sed -n 's/^RESULT probes \([0-9]*\).*/\1/p' "$console" | tr -d '\r')
  got_nsid=$(sed -n 's/^RESULT raw.nsid \([0-9]*\).*/\1/p' "$console" | tr -d '\r')
  [[ "$got_nsid" == "$nsid" ]] || fail "$name: registry found nsid ${got_nsid:-?}, want $nsid"
  # Fabrics commands travel over TCP, not through QEMU's NVMe controller: no trace.
  [[ "$name" == nvmet ]] && return 0

  # awk walks the trace once, splitting it at the VERIFY markers (slba 100, 101, 102).
  awk -v want_flushes="$flushes" -v want_probes="$probes" \
      -v want_nsid="$(printf '0x%x' "$nsid")" -v want_nsid_dec="$nsid" '
    function fail(msg) { print "FAIL: " msg; bad = 1 }
    /pci_nvme_io_cmd / {
      match($0, /nsid 0x[0-9a-f]+/); nsid = substr($0, RSTART + 5, RLENGTH - 5)
      match($0, /opc 0x[0-9a-f]+/); opc = substr($0, RSTART + 4, RLENGTH - 4)
      if (opc == "0xc") next  # a marker; read from its pci_nvme_verify line
      if (phase == 1 || phase == 2) {
        if (opc != "0x0") fail("phase " phase ": unexpected I/O command: " $0)
        else if (nsid != want_nsid) fail("phase " phase ": FLUSH to nsid " nsid)
        else flush[phase]++
      }
      next
    }
    /pci_nvme_verify / {
      match($0, /nsid [0-9]+/)
      if (substr($0, RSTART + 5, RLENGTH - 5) != want_nsid_dec) fail("marker to another nsid: " $0)
      match($0, /slba 0x[0-9a-f]+/); slba = substr($0, RSTART + 5, RLENGTH - 5)
      if (slba == "0x64" && phase == 0) phase = 1
      else if (slba == "0x65" && phase == 1) phase = 2
      else if (slba == "0x66" && phase == 2) phase = 3
      else fail("unexpected VERIFY marker " slba " in phase " phase)
      next
    }
    phase == 1 && /pci_nvme_admin_cmd / && /opc 0x6 / { admin_identify++ }
    phase == 1 && /pci_nvme_identify / && /cns 0x0 / { identify_ns++ }
    phase == 1 && /pci_nvme_identify / && /cns 0x1 / { identify_ctrl++ }
    phase == 1 && /pci_nvme_identify_ns / {
      match($0, /nsid [0-9]+/)
      if (substr($0, RSTART + 5, RLENGTH - 5) != want_nsid_dec) fail("Identify of another namespace: " $0)
    }
    phase == 2 && /pci_nvme_flush_ns / { flush_ns++ }
    (phase == 1 || phase == 2) && /pci_nvme_err_req_status / { fail("device error: " $0) }
    END {
      if (phase != 3) fail("markers not all seen (reached phase " phase ")")
      if (flush[2] != want_flushes) fail("FLUSH commands between markers: " flush[2]+0 ", want " want_flushes)
      if (flush_ns != want_flushes) fail("pci_nvme_flush_ns between markers: " flush_ns+0 ", want " want_flushes)
      if (flush[1] != want_probes) fail("probe FLUSHes: " flush[1]+0 ", want " want_probes)
      if (identify_ns < 1) fail("no Identify Namespace (CNS 0) during the lookups")
      if (admin_identify < 1) fail("no admin Identify command during the lookups")
      printf "trace: lookups: %d probe FLUSH, %d admin Identify (%d CNS 0, %d CNS 1); between markers: %d FLUSH to nsid %s, %d flush_ns\n", flush[1], admin_identify, identify_ns, identify_ctrl, flush[2], want_nsid, flush_ns
      exit bad
    }
  ' "$trace" || fail "$name: trace check failed (trace in $trace)"
}

guest_dev=/dev/nvme0n1
run_guest plain 1 \
  -drive "file=$disk,if=none,id=nv0,format=raw" \
  -device "nvme,serial=fsysfs0,drive=nv0"

disk2="$work/nvme-ns2.img"
rm -f "$disk2"
truncate -s 16M "$disk2"
guest_dev=/dev/nvme0n2
run_guest subsys 2 \
  -drive "file=$disk,if=none,id=nv0,format=raw" \
  -drive "file=$disk2,if=none,id=nv1,format=raw" \
  -device "nvme-subsys,id=subsys0,nqn=fsysfs-test" \
  -device "nvme,serial=fsysfs1,id=ctrl0,subsys=subsys0" \
  -device "nvme-ns,drive=nv0,nsid=1,bus=ctrl0" \
  -device "nvme-ns,drive=nv1,nsid=2,bus=ctrl0"
# A namespace that reports its own atomic write unit: the virtio disk (512-byte logical,
# 4096-byte physical blocks) exported by the guest's NVMe target, whose Identify
# Namespace has NSFEAT bit 1 set and NAWUPF = 4096 / 512 - 1 = 7.
guest_dev=/dev/nvme0n1
run_guest nvmet 1 \
  -drive "file=$disk2,if=none,id=vd0,format=raw" \
  -device "virtio-blk-pci,drive=vd0,logical_block_size=512,physical_block_size=4096"
console="$work/nvmet-console.log"
grep -q '^RESULT raw.lba_size 512' "$console" || fail "nvmet: block size not 512"
grep -q '^RESULT raw.atomic_write_unit 4096' "$console" ||
  fail "nvmet: power-fail atomic write unit not 8 blocks of 512 bytes (NAWUPF 7)"
echo "nvmet: atomic write unit 4096 B from NAWUPF"
echo "PASS"
