#!/bin/sh
# SPDX-License-Identifier: MIT
# TAP: the test OS's A/B update tools on the host, with files for the slots, the state
# partition and grubenv (docs/hup.md): rigor-bootenv (grubenv read and written as GRUB's
# grub-editenv does), rigor-hup's refusals (nothing written, boot environment unchanged)
# and its update (slot written and relabelled, breadcrumbs, grubenv on trial), and
# rigor-rollback (altboot: the triggered file; health: commit, or roll back with the
# triggered file, or the failed file when even the switch fails).
set -u
SB=testcases/os/rootfs/usr/sbin
T=$(mktemp -d "${TMPDIR:-/tmp}/rigor-hup.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
PATH=$(pwd)/$SB:$PATH
export PATH

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/# /'; }
# check DESC CMD...: passes when CMD exits 0
check() {
	d=$1; shift
	if "$@" >"$T/out.check" 2>&1; then ok "$d"; else nok "$d" "$(cat "$T/out.check")"; fi
}
# run WANT DESC CMD...: CMD's exit status is WANT; output in $T/out
run() {
	want=$1 d=$2; shift 2
	"$@" >"$T/out" 2>&1
	rc=$?
	if [ "$rc" = "$want" ]; then ok "$d"; else nok "$d" "exit $rc, want $want: $(cat "$T/out")"; fi
}
has() { # FILE ERE DESC
	if grep -Eq -- "$2" "$1"; then ok "$3"; else nok "$3" "no /$2/ in: $(cat "$1")"; fi
}

echo "1..49"
for c in grub-editenv mkfs.ext4 dumpe2fs sha256sum; do
	command -v $c >/dev/null || { echo "Bail out! $c not installed"; exit 1; }
done

# ---- rigor-bootenv against grub-editenv
E=$T/grubenv
export RIGOR_BOOTENV=$E
grub-editenv "$E" create && grub-editenv "$E" set resin_root_part=A upgrade_available=0 bootcount=0
run 0 "rigor-bootenv list reads a grub-editenv block" rigor-bootenv list
check "... all three variables" sh -c "sort '$T/out' | tr '\n' ' ' | grep -qx 'bootcount=0 resin_root_part=A upgrade_available=0 '"
run 0 "rigor-bootenv get resin_root_part" rigor-bootenv get resin_root_part
check "... is A" grep -qx A "$T/out"
run 1 "rigor-bootenv get of an unset variable exits 1" rigor-bootenv get nosuch
run 0 "rigor-bootenv set two variables" rigor-bootenv set resin_root_part=B upgrade_available=1
check "the block stays 1024 bytes" test "$(wc -c <"$E")" = 1024
grub-editenv "$E" list >"$T/ge" 2>&1
check "grub-editenv reads rigor-bootenv's block: B on trial, bootcount kept" \
	sh -c "sort '$T/ge' | tr '\n' ' ' | grep -qx 'bootcount=0 resin_root_part=B upgrade_available=1 '"
run 0 "rigor-bootenv unset" rigor-bootenv unset bootcount
check "... gone for grub-editenv" sh -c "! grub-editenv '$E' list | grep -q bootcount"
cp "$E" "$T/E.before"
run 2 "a bad variable name is refused" rigor-bootenv set 'a-b=1'
run 2 "a value with a space or quote is refused" rigor-bootenv set 'x=a"b'
check "... and the block is unchanged" cmp "$E" "$T/E.before"
run 2 "a block over 1024 bytes is refused" rigor-bootenv set "big=$(head -c 1100 /dev/zero | tr '\000' x)"
check "... and the block is unchanged" cmp "$E" "$T/E.before"
run 2 "a missing file is an error naming it" rigor-bootenv -f "$T/none" list
has "$T/out" "cannot read '.*/none'" "... the message names the file"

# ---- rigor-hup
# the device: a disk with slots DISK2 (A) and DISK3 (B) of 8 MiB, state, a log, grubenv
D=$T/disk
truncate -s 8M "${D}2" "${D}3"
mkdir -p "$T/state" "$T/data" "$T/root/etc" "$T/root/sbin"
echo 'VERSION="9.9"' >"$T/root/etc/os-release"
printf '#!/bin/sh\n' >"$T/root/sbin/rigor-init"
echo "console=ttyS0 rigor.card=$D root=LABEL=resin-rootA" >"$T/cmdline"
export RIGOR_CMDLINE=$T/cmdline RIGOR_STATE=$T/state RIGOR_HUP_LOG=$T/data/rigor-hup.log \
	RIGOR_HUP_WORK=$T/work RIGOR_REBOOT="touch $T/rebooted"
grub-editenv "$E" create && grub-editenv "$E" set resin_root_part=A upgrade_available=0 bootcount=0
# the payload: a root file system labelled for slot A, gzip'd
truncate -s 6M "$T/rootfs.img"
mkfs.ext4 -q -F -L resin-rootA -O ^has_journal,^metadata_csum -d "$T/root" "$T/rootfs.img" >/dev/null 2>&1
gzip -nc "$T/rootfs.img" >"$T/p.gz"
SUM=$(sha256sum "$T/p.gz" | cut -d' ' -f1)
BAD=$(printf '%064d' 0)
cp "$E" "$T/E.before"
cp "${D}3" "$T/B.before"
unchanged() {
	cmp -s "$E" "$T/E.before" && cmp -s "${D}3" "$T/B.before" && [ ! -e "$T/state/rollback-health-breadcrumb" ]
}

run 2 "no payload: usage error" rigor-hup -s "$SUM"
run 2 "-u and -f together: usage error" rigor-hup -u http://x/p -f "$T/p.gz" -s "$SUM"
run 2 "a malformed sha256: usage error" rigor-hup -f "$T/p.gz" -s abc
has "$T/out" "is not a sha256" "... saying the checksum is malformed"
run 1 "a wrong sha256 is refused" rigor-hup -n -f "$T/p.gz" -s "$BAD"
has "$T/out" "checksum mismatch .*nothing written" "... as a checksum mismatch, nothing written"
check "... slot B, grubenv and the breadcrumbs unchanged" unchanged
printf 'not gzip' >"$T/x.gz"
run 1 "a payload that is not gzip is refused" rigor-hup -n -f "$T/x.gz" -s "$(sha256sum "$T/x.gz" | cut -d' ' -f1)"
check "... nothing changed" unchanged
head -c 100000 /dev/urandom | gzip -nc >"$T/r.gz"
run 1 "a payload that is not a file system image is refused" rigor-hup -n -f "$T/r.gz" -s "$(sha256sum "$T/r.gz" | cut -d' ' -f1)"
has "$T/out" "not an ext2/3/4 file system image" "... saying so"
truncate -s 9M "$T/big.img" && mkfs.ext4 -q -F "$T/big.img" >/dev/null 2>&1 && gzip -nc "$T/big.img" >"$T/big.gz"
run 1 "a payload larger than the slot is refused" rigor-hup -n -f "$T/big.gz" -s "$(sha256sum "$T/big.gz" | cut -d' ' -f1)"
check "... nothing changed" unchanged

run 0 "a good payload is written to the inactive slot (B)" rigor-hup -n -f "$T/p.gz" -s "$SUM"
check "slot B holds the payload's file system" sh -c "dumpe2fs -h '${D}3' 2>/dev/null | grep -q 'Block count'"
check "slot B is relabelled resin-rootB" sh -c "dumpe2fs -h '${D}3' 2>/dev/null | grep -Eq '^Filesystem volume name: +resin-rootB$'"
check "e2fsck finds slot B clean after the relabel" e2fsck -fn "${D}3"
check "both breadcrumbs are on resin-state" test -e "$T/state/rollback-health-breadcrumb" -a -e "$T/state/rollback-altboot-breadcrumb"
grub-editenv "$E" list | sort | tr '\n' ' ' >"$T/env"
has "$T/env" "^bootcount=0 resin_root_part=B rollback_altboot=0 upgrade_available=1 $" "grubenv: B on trial, bootcount 0"
has "$T/data/rigor-hup.log" "on trial at the next boot" "the log on the data partition records it"
check "-n: no reboot" test ! -e "$T/rebooted"
cp "$E" "$T/E.before"; cp "${D}3" "$T/B.before"
run 1 "a second update while one is on trial is refused" rigor-hup -n -f "$T/p.gz" -s "$SUM"
check "... nothing changed" sh -c "cmp -s '$E' '$T/E.before' && cmp -s '${D}3' '$T/B.before'"

# ---- rigor-rollback: now "booted" into B on trial
echo "console=ttyS0 rigor.card=$D root=LABEL=resin-rootB" >"$T/cmdline"
printf 'COUNT=2\nTIMEOUT=0\nRIGOR_ROLLBACK_BINARIES="%s/healthy"\n' "$T" >"$T/state/rollback-health-variables"
printf '#!/bin/sh\nexit 0\n' >"$T/healthy" && chmod +x "$T/healthy"
export RIGOR_CONFIG=$T/no-config.json
run 0 "rollback-health on a healthy slot" rigor-rollback health
grub-editenv "$E" list | sort | tr '\n' ' ' >"$T/env"
has "$T/env" "resin_root_part=B .*upgrade_available=0" "... commits B (upgrade_available=0)"
check "... removes the breadcrumbs, triggers nothing" sh -c "! ls '$T/state' | grep -q 'breadcrumb\|triggered\|failed'"

# unhealthy: the agent binary is /dev/null
rigor-bootenv set resin_root_part=B upgrade_available=1 bootcount=0 >/dev/null
touch "$T/state/rollback-health-breadcrumb" "$T/state/rollback-altboot-breadcrumb"
printf 'COUNT=2\nTIMEOUT=0\nRIGOR_ROLLBACK_BINARIES=/dev/null\n' >"$T/state/rollback-health-variables"
rm -f "$T/rebooted"
run 0 "rollback-health on a slot whose agent is /dev/null" rigor-rollback health
grub-editenv "$E" list | sort | tr '\n' ' ' >"$T/env"
check "... switches grubenv back to A, no trial, writes rollback-health-triggered, reboots" sh -c \
	"grep -q 'resin_root_part=A .*upgrade_available=0' '$T/env' && test -e '$T/state/rollback-health-triggered' && test -e '$T/rebooted' && ! ls '$T/state' | grep -q breadcrumb"
has "$T/out" "check 2/2: /dev/null does not run" "... after COUNT checks, saying why"

# unhealthy and the switch fails: rollback-health-failed
rm -f "$T/state/rollback-health-triggered"
rigor-bootenv set resin_root_part=B upgrade_available=1 bootcount=0 >/dev/null
touch "$T/state/rollback-health-breadcrumb"
# grubenv cannot be replaced: an immutable directory (root) or a read-only one (a user)
mkdir -p "$T/envdir" && cp "$E" "$T/envdir/grubenv"
if [ "$(id -u)" = 0 ]; then lock="chattr +i" unlock="chattr -i"; else lock="chmod 0555" unlock="chmod 0755"; fi
if $lock "$T/envdir" 2>/dev/null; then
	RIGOR_BOOTENV=$T/envdir/grubenv rigor-rollback health >"$T/out" 2>&1
	rc=$?
	$unlock "$T/envdir"
	check "a rollback that cannot switch grubenv writes rollback-health-failed (exit 1)" sh -c \
		"[ $rc = 1 ] && test -e '$T/state/rollback-health-failed' && ! test -e '$T/state/rollback-health-triggered'"
else
	n=$((n + 1)); echo "ok $n # SKIP cannot make a directory unwritable here ($lock)"
fi

# altboot: GRUB fell back (rollback_altboot=1) with the breadcrumb present
rm -f "$T/state/"*
rigor-bootenv set resin_root_part=A upgrade_available=0 bootcount=0 rollback_altboot=1 >/dev/null
echo "console=ttyS0 rigor.card=$D root=LABEL=resin-rootA" >"$T/cmdline"
touch "$T/state/rollback-altboot-breadcrumb" "$T/state/rollback-health-breadcrumb"
run 0 "rollback-altboot after GRUB's fallback" rigor-rollback altboot
check "... writes rollback-altboot-triggered, removes both breadcrumbs, clears rollback_altboot" sh -c \
	"test -e '$T/state/rollback-altboot-triggered' && ! ls '$T/state' | grep -q breadcrumb && rigor-bootenv get rollback_altboot | grep -qx 0"
