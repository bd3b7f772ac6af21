#!/usr/bin/env bash
# Run fstests (xfstests) against fsysfs mounts and summarise the result.
#
# Usage: scripts/fstests.sh [FSTESTS_DIR] [TEST... | -g GROUP | -x GROUP | -E FILE]...
#
#   FSTESTS_DIR  a built fstests checkout (its own `make` done); or set FSTESTS_DIR
#   TEST...      tests such as generic/263 generic/451; default: -g quick
#                (generic only: fstests has no tests/fuse, so groups select generic tests)
#
# Environment:
#   FSYSFS_OPTS      extra fsysfs mount options, comma separated (e.g. durability=strict)
#   FSYSFS_BIN       fsysfs binary [<repo>/build/fsysfs]; linked as /usr/local/bin/fsysfs
#                    for the run (mount(8) hands mount.fuse3 a fixed PATH, not ours), and
#                    the link's old target is put back at the end: one run at a time
#   RESULTS          summary file [<work dir>/summary.txt]
#   FSTESTS_TIMEOUT  seconds before the whole ./check run is killed [0 = none]
#   TMPDIR           where the work dir goes [/tmp]; its file system backs both mounts
#   KEEP_WORK=1      keep the backing directories (results are always kept)
#
# Needs root and /dev/fuse. Creates the backing dirs and mount points in a new work dir
# $TMPDIR/fsysfs-fstests.XXXXXX, writes local.config there (passed as HOST_OPTIONS, so the
# checkout's own local.config is untouched), patches the checkout's common/rc once so
# fstests can handle a generic FUSE passthrough (unmount by mount point, fuse.fsysfs ->
# fuse), adds the users fstests wants, runs ./check and writes passed / failed / not run
# lists plus the start of each failure's diff to the summary file. Exits non-zero when a
# test fails. The quick group (633 tests, ~185 of them run) takes 10-20 minutes on 2 cores.
set -euo pipefail

help() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0; }
bad() {
	echo "fstests.sh: $*" >&2
	echo "usage: fstests.sh [FSTESTS_DIR] [TEST... | -g GROUP | -x GROUP | -E FILE]... (--help)" >&2
	exit 2
}
die() { echo "fstests.sh: $*" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/.." && pwd)

# --- arguments ---------------------------------------------------------------
[[ ${1:-} == -h || ${1:-} == --help ]] && help
if [[ $# -gt 0 && -d $1 ]]; then FSTESTS_DIR=$1; shift; fi
[[ -n ${FSTESTS_DIR:-} ]] || bad "no fstests checkout given (argument or FSTESTS_DIR)"
[[ -d $FSTESTS_DIR ]] || bad "no such directory: $FSTESTS_DIR"
FSTESTS_DIR=$(cd "$FSTESTS_DIR" && pwd)
[[ -x $FSTESTS_DIR/check && -f $FSTESTS_DIR/common/rc ]] ||
	die "$FSTESTS_DIR is not an fstests checkout (no ./check, common/rc)"
[[ -x $FSTESTS_DIR/ltp/fsstress ]] || die "$FSTESTS_DIR is not built: run make there first"

check_args=()
while [[ $# -gt 0 ]]; do
	case $1 in
	-g|-x|-E)
		[[ $# -ge 2 && -n $2 ]] || bad "$1 needs a value"
		check_args+=("$1" "$2"); shift 2 ;;
	generic/*)
		[[ -f $FSTESTS_DIR/tests/$1 ]] || die "no such test: $1"
		check_args+=("$1"); shift ;;
	*)	bad "bad argument: $1 (tests must be generic/NNN)" ;;
	esac
done
[[ ${#check_args[@]} -gt 0 ]] || check_args=(-g quick)

FSYSFS_OPTS=${FSYSFS_OPTS:-}
[[ $FSYSFS_OPTS =~ ^[A-Za-z0-9_=.,/:-]*$ ]] || die "FSYSFS_OPTS must be comma separated options without spaces"
FSTESTS_TIMEOUT=${FSTESTS_TIMEOUT:-0}
[[ $FSTESTS_TIMEOUT =~ ^[0-9]+$ ]] || die "FSTESTS_TIMEOUT must be a number of seconds"

[[ $(id -u) -eq 0 ]] || die "must run as root (fstests mounts and creates users)"
[[ -c /dev/fuse ]] || die "/dev/fuse missing"
command -v mount.fuse3 >/dev/null || die "mount.fuse3 missing (apt-get install fuse3)"

FSYSFS_BIN=$(readlink -f "${FSYSFS_BIN:-$repo/build/fsysfs}")
[[ -x $FSYSFS_BIN ]] || die "$FSYSFS_BIN not built (cmake --build build)"
# mount -t fuse.fsysfs runs mount.fuse3, which runs `fsysfs` from a standard PATH.
link=/usr/local/bin/fsysfs
[[ ! -e $link || -L $link ]] || die "$link exists and is not a symlink; move it away"
old_target=$(readlink "$link" || true)

# --- users and groups fstests asks for (each user in its own group) --------------
for u in fsgqa fsgqa2 123456-fsgqa; do
	getent group "$u" >/dev/null || groupadd "$u" 2>/dev/null || groupadd --badname "$u"
	id "$u" >/dev/null 2>&1 || useradd -m -g "$u" "$u" 2>/dev/null ||
		useradd --badname -m -g "$u" "$u"
done

# --- common/rc: a FUSE passthrough mounts BACKING_DIR on MNT; umount BACKING_DIR
# finds nothing, and the kernel reports the type as fuse.fsysfs -----------------
rc_patch=$(cat <<'EOF'
--- a/common/rc
+++ b/common/rc
@@ -509,7 +509,7 @@
 	btrfs)
 		_unmount $SCRATCH_MNT
 		;;
-	tmpfs)
+	tmpfs|fuse)
 		_unmount $SCRATCH_MNT
 		;;
 	*)
@@ -703,6 +703,8 @@
 {
 	if [ "$FSTYP" == "overlay" ]; then
 		_overlay_test_unmount
+	elif [ "$FSTYP" == "fuse" ]; then
+		_unmount $TEST_DIR
 	else
 		_unmount $TEST_DEV
 	fi
@@ -1748,7 +1750,7 @@
     #
     _df_device $1 | $AWK_PROG '{ print $2 }' | \
         sed -e 's/nfs4/nfs/' -e 's/fuse.glusterfs/glusterfs/' \
-            -e 's/fuse.ceph-fuse/ceph-fuse/'
+            -e 's/fuse.ceph-fuse/ceph-fuse/' -e 's/^fuse\..*/fuse/'
 }
 
 # return the FS mount options of a mounted device
EOF
)
if ! patch -d "$FSTESTS_DIR" -p1 -R --dry-run -s -f <<<"$rc_patch" >/dev/null 2>&1; then
	patch -d "$FSTESTS_DIR" -p1 -N -s --no-backup-if-mismatch <<<"$rc_patch" ||
		die "could not patch $FSTESTS_DIR/common/rc (different fstests version?)"
	echo "patched $FSTESTS_DIR/common/rc for FSTYP=fuse"
fi

# --- work dir, config, cleanup -------------------------------------------------
work=$(mktemp -d -t fsysfs-fstests.XXXXXX)
chmod 755 "$work"   # the fsgqa users must reach the mount points
mkdir -p "$work"/{test,scratch,mnt-test,mnt-scratch,results}
RESULTS=${RESULTS:-$work/summary.txt}
opts="-o allow_other${FSYSFS_OPTS:+,$FSYSFS_OPTS}"
cat >"$work/local.config" <<EOF
export FSTYP=fuse
export FUSE_SUBTYP=.fsysfs
export TEST_DEV=$work/test
export TEST_DIR=$work/mnt-test
export SCRATCH_DEV=$work/scratch
export SCRATCH_MNT=$work/mnt-scratch
export TEST_FS_MOUNT_OPTS="$opts"
export MOUNT_OPTIONS="$opts"
export RESULT_BASE=$work/results
EOF

# The FUSE connection numbers of what is mounted on our mount points.
connections() {
	awk -v t="$work/mnt-test" -v s="$work/mnt-scratch" \
		'$5 == t || $5 == s { split($3, d, ":"); print d[2] }' /proc/self/mountinfo
}
# Fails every request of our mounts, waiting or to come: unblocks processes stuck on them.
abort_mounts() {
	local conn
	mountpoint -q /sys/fs/fuse/connections ||
		mount -t fusectl fusectl /sys/fs/fuse/connections || true
	for conn in $(connections); do echo 1 >"/sys/fs/fuse/connections/$conn/abort" || true; done
}
unmount_all() {   # reads mountinfo: stat(2) on a hung mount point would hang too
	local m
	for m in "$work/mnt-test" "$work/mnt-scratch"; do
		while awk -v m="$m" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; do
			umount "$m" 2>/dev/null && continue
			echo "fstests.sh: $m busy or hung: aborting the FUSE connections" >&2
			abort_mounts
			umount -l "$m" || break
		done
	done
}
cleanup() {
	unmount_all
	if [[ -n $old_target ]]; then ln -sfn "$old_target" "$link"; else rm -f "$link"; fi
	[[ ${KEEP_WORK:-0} == 1 ]] || rm -rf "$work/test" "$work/scratch"
}
trap cleanup EXIT
ln -sfn "$FSYSFS_BIN" "$link"

# --- run -------------------------------------------------------------------------
echo "fstests: $FSTESTS_DIR, fsysfs: $FSYSFS_BIN, options: $opts, work: $work"
echo "check ${check_args[*]}"
# On timeout: abort the mounts (a test blocked in the kernel on a lost FUSE request can
# not be killed otherwise), then timeout(1) stops ./check, which still prints its lists.
# timeout(1) runs ./check in a process group of its own: Ctrl-C does not reach it.
tmo=() watchdog=
if [[ $FSTESTS_TIMEOUT -gt 0 ]]; then
	tmo=(timeout -k 60 $((FSTESTS_TIMEOUT + 10)))
	(sleep "$FSTESTS_TIMEOUT"; touch "$work/timed-out"
	 echo "fstests.sh: timed out after ${FSTESTS_TIMEOUT}s: aborting the mounts" >&2
	 abort_mounts) &
	watchdog=$!
fi
start=$SECONDS
set +e
(cd "$FSTESTS_DIR" && HOST_OPTIONS=$work/local.config \
	"${tmo[@]}" ./check "${check_args[@]}") 2>&1 | tee "$work/check.out"
status=${PIPESTATUS[0]}
set -e
if [[ -n $watchdog ]]; then pkill -P "$watchdog" sleep || true; kill "$watchdog" 2>/dev/null || true; fi
elapsed=$((SECONDS - start))

# --- summary ---------------------------------------------------------------------
# check's log has the lists even when it was stopped (its stdout then does not).
list() { sed -n "s/^$1: //p" "$work/results/check.log" | tail -1 | tr ' ' '\n' | sed '/^$/d'; }
ran=$(list Ran); notrun=$(list 'Not run'); failed=$(list Failures); hung=
if [[ -e $work/timed-out ]]; then   # the test that was running counts as failed
	hung=$(grep -o '^generic/[0-9]*' "$work/check.out" | tail -1 || true)
	grep -qx "$hung" <<<"$failed" || failed=$(printf '%s\n%s' "$failed" "$hung")
fi
passed=$(comm -23 <(sort <<<"$ran") <(sort <<<"$failed"$'\n'"$notrun") | sed '/^$/d')
count() { sed '/^$/d' <<<"$1" | wc -l; }
{
	echo "fsysfs fstests run, finished $(date -u '+%F %T') UTC; repo $(git -C "$repo" describe --always --dirty 2>/dev/null)"
	echo "binary: $FSYSFS_BIN, $(date -u -r "$FSYSFS_BIN" '+built %F %T'), sha256 $(sha256sum "$FSYSFS_BIN" | cut -c1-16)"
	echo "check ${check_args[*]}; mount options: $opts; backing fs: $(findmnt -n -o FSTYPE -T "$work"); ${elapsed}s; check exit $status"
	[[ -z $hung ]] || echo "TIMED OUT after ${FSTESTS_TIMEOUT}s in $hung (mounts aborted): lists are partial"
	echo "totals: passed $(count "$passed"), failed $(count "$failed"), not run $(count "$notrun")"
	echo; echo "== failed"
	for t in $failed; do
		r=$work/results/$t
		mark=; [[ $t != "$hung" ]] || mark=" (hung, aborted)"
		echo "--- $t$mark"
		if [[ -f $r.out.bad ]]; then   # without fsx's list of what it leaves out
			{ diff -u "$FSTESTS_DIR/tests/$t.out" "$r.out.bad" || true; } |
				grep -Ev '^\+(Seed set to|main: .*disabling!)' | sed -n '3,14p'
		elif [[ -f $r.full ]]; then
			echo "(.full, last lines)"; grep -v ': not mounted\.$' "$r.full" | tail -6 || true
		fi
		if [[ -f $r.dmesg ]]; then echo "(dmesg)"; head -8 "$r.dmesg"; fi
	done
	echo; echo "== not run"
	for t in $notrun; do
		printf '%s: %s\n' "$t" "$(head -1 "$work/results/$t.notrun" 2>/dev/null)"
	done
	echo; echo "== passed"; paste -sd' ' <<<"$passed"
} >"$RESULTS"
echo "results: $RESULTS (fstests output: $work/results, log: $work/check.out)"
[[ $status -eq 0 ]]
