# Shell helpers shared by the QEMU guest tests (run_nvme_vm.sh, run_fsysfs_vm.sh); sourced,
# not run. The including script defines skip() (exit 77 with a reason).
# shellcheck shell=bash

# Sets busybox to a statically linked busybox, or skips.
find_busybox() {
  busybox=""
  local b
  for b in /bin/busybox /usr/bin/busybox; do
    if [[ -x "$b" ]] && file -L "$b" | grep -q 'statically linked'; then busybox="$b"; break; fi
  done
  [[ -n "$busybox" ]] || skip "no static busybox (apt-get install busybox-static)"
  command -v cpio > /dev/null || skip "cpio not found"
  command -v depmod > /dev/null || skip "depmod not found (apt-get install kmod)"
}

# Sets kver to the newest installed kernel image that has its NVMe modules next to it, or
# skips.
find_guest_kernel() {
  kver=""
  local img v
  for img in $(ls -1 /boot/vmlinuz-* 2> /dev/null | sort -V -r); do
    v=${img#/boot/vmlinuz-}
    if [[ -e /lib/modules/$v/kernel/drivers/nvme/host/nvme.ko ||
          -e /lib/modules/$v/kernel/drivers/nvme/host/nvme.ko.xz ]]; then
      kver=$v
      break
    fi
  done
  [[ -n "$kver" ]] || skip "no guest kernel with NVMe modules in /boot (apt-get install linux-image-amd64)"
}

# Prints the image to boot for $kver: the uncompressed vmlinux (it boots through PVH,
# saving the decompression), extracted once into CACHE_DIR, else the bzImage.
guest_kernel_image() {
  local cache=$1 vmlinux="$1/vmlinux" img=/boot/vmlinuz-$kver tmp pos
  mkdir -p "$cache"
  if [[ ! -s "$vmlinux" ]]; then
    tmp="$vmlinux.tmp.$$"
    # Find each XZ stream header in the bzImage (the same trick as the kernel's
    # scripts/extract-vmlinux): map the magic's first byte to a newline so grep reports
    # the offset of every candidate, then try to decompress from there.
    for pos in $(tr '\3757zXZ\000\nabcde' '\nabcde=' < "$img" | grep -abo '^abcde' | cut -d: -f1); do
      tail -c+"$pos" "$img" | xz -dc --single-stream > "$tmp" 2> /dev/null || true
      if [[ "$(head -c4 "$tmp" | od -An -c | tr -d ' ')" == '177ELF' ]]; then
        mv "$tmp" "$vmlinux"
        break
      fi
    done
    rm -f "$tmp"
  fi
  if [[ -s "$vmlinux" ]]; then
    echo "$vmlinux"
  else
    echo "note: could not extract vmlinux; booting the bzImage (slower)" >&2
    echo "$img"
  fi
}

# Copies the modules named, with everything they depend on, into the initramfs at $root
# for $kver, then runs depmod there. Built-in modules are skipped.
add_guest_modules() {
  declare -A seen=()
  add_one() {
    local name=$1 path dep
    [[ -n "${seen[$name]:-}" ]] && return 0
    seen[$name]=1
    path=$(modinfo -k "$kver" -n "$name" 2> /dev/null) || return 0
    [[ "$path" == /* ]] || return 0  # built in
    mkdir -p "$root/$(dirname "$path")"
    cp "$path" "$root/$path"
    for dep in $(modinfo -k "$kver" -F depends "$name" | tr ',' ' '); do add_one "$dep"; done
  }
  local m
  for m in "$@"; do add_one "$m"; done
  mkdir -p "$root/lib/modules/$kver"
  cp /lib/modules/"$kver"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/" 2> /dev/null || true
  depmod -b "$root" "$kver"
}
