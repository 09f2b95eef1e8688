#!/bin/sh
# SPDX-License-Identifier: MIT
# rigor-vboard's own logic, without QEMU or the OS image: the pins file is written here,
# the disks are tiny FAT images with a boot.txt, "QEMU" is a script that prints its
# arguments and then never reads its input, and mcopy is slowed down so that the ROM read
# takes about a second. Checks: a power cycle during the ROM read (strap changed while
# off) boots what the new power-on selects; a power cut during the read starts nothing;
# console input QEMU does not take does not stall the board (power off still kills QEMU
# at once); SIGHUP and SIGTERM leave no process, socket or temporary directory behind.
# Prints TAP.
T=$(mktemp -d /tmp/rigor-vboard-rom-XXXXXX)
. host/tests/tap.sh
VB=testcases/virtual/rigor-vboard
vbpid=
cleanup() {
	[ -n "$vbpid" ] && kill "$vbpid" 2>/dev/null && wait "$vbpid" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
skip() { echo "ok 1 # SKIP $1"; echo "1..1"; exit 0; }
for t in mformat mcopy mtype sfdisk python3; do command -v $t >/dev/null || skip "$t not installed"; done
export MTOOLS_SKIP_CHECK=1

# disk NAME: an 8 MiB image, partition 1 FAT with boot.txt naming files that say NAME
disk() {
	truncate -s 8M "$T/$1.img"
	echo 'start=2048, type=c' | sfdisk -q "$T/$1.img" >/dev/null 2>&1
	mformat -i "$T/$1.img@@1M" -T 14336 :: >/dev/null 2>&1
	printf 'kernel=k initrd=i cmdline=c\n' >"$T/boot.txt"
	echo "kernel-$1" >"$T/k"
	echo "initrd-$1" >"$T/i"
	echo "from-$1" >"$T/c"
	for f in boot.txt k i c; do mcopy -i "$T/$1.img@@1M" "$T/$f" ::/$f; done
}
disk card
disk internal
# "QEMU": says how it was started, then sleeps without reading its input
cat >"$T/qemu" <<'EOF'
#!/bin/sh
echo "FAKEQEMU $*"
exec sleep 600
EOF
chmod +x "$T/qemu"
# a slow mcopy: the ROM copies three files, so its read takes about a second
mkdir "$T/bin" "$T/tmp"
real_mcopy=$(command -v mcopy)
printf '#!/bin/sh\nsleep 0.3\nexec %s "$@"\n' "$real_mcopy" >"$T/bin/mcopy"
chmod +x "$T/bin/mcopy"

# pins LINE: the rig board's state file, replaced atomically as rigfw-sim does
pins() { echo "$1" >"$T/pins.tmp" && mv "$T/pins.tmp" "$T/pins"; }
vb_start() {
	: >"$T/vb.log"
	: >"$T/console.log"
	PATH="$T/bin:$PATH" TMPDIR="$T/tmp" $VB --state "$T/pins" --card "$T/card.img" \
		--internal "$T/internal.img" --console "$T/console" --log "$T/console.log" \
		--qemu "$T/qemu" >/dev/null 2>"$T/vb.log" &
	vbpid=$!
	wait_for "$T/console"
}
# qemu_pid: the fake QEMU the board started last, if it still runs
qemu_pid() {
	p=$(sed -n 's/.*qemu pid \([0-9]*\) started.*/\1/p' "$T/vb.log" | tail -n 1)
	[ -n "$p" ] && [ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null &&
		echo "$p"
}
# wait_log REGEX SECONDS: until the console log matches
wait_log() {
	i=0
	while ! grep -q "$1" "$T/console.log" && [ $i -lt $(($2 * 20)) ]; do sleep 0.05; i=$((i + 1)); done
	grep -q "$1" "$T/console.log"
}

pins "power=0 mux=dut buttons=0000"
vb_start

# 1. power cycle during the ROM read: released strap (internal) -> off, strap held -> on
pins "power=1 mux=dut buttons=0000"
sleep 0.3
pins "power=0 mux=dut buttons=1000"
sleep 0.15
pins "power=1 mux=dut buttons=1000"
wait_log FAKEQEMU 5
cp "$T/console.log" "$T/out"
if grep -q "FAKEQEMU.*from-card rigor.boot=card" "$T/out" && ! grep -q "rigor.boot=internal" "$T/out"; then
	ok "a power cycle during the ROM read boots what the new power-on selects (the card)"
else
	nok "a power cycle during the ROM read boots what the new power-on selects (the card)"
fi
[ "$(grep -c FAKEQEMU "$T/out")" = 1 ] && ok "one QEMU for the last power-on" || nok "one QEMU for the last power-on"

# 2. console input QEMU does not read: the board must not stall on it
q=$(qemu_pid)
python3 - "$T/console" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(3)
try:
    s.sendall(b"x" * (1 << 20))
except OSError:
    pass
EOF
sender=$!
sleep 1
pins "power=0 mux=dut buttons=1000"
i=0; while [ -n "$q" ] && [ -d "/proc/$q" ] && ! grep -q '^State:.*Z' "/proc/$q/status" 2>/dev/null &&
	[ $i -lt 20 ]; do sleep 0.05; i=$((i + 1)); done
wait $sender 2>/dev/null
if [ -n "$q" ] && [ $i -lt 20 ]; then
	ok "power off kills QEMU at once after 1 MiB of console input it did not read"
else
	echo "# qemu pid '$q'"
	nok "power off kills QEMU at once after 1 MiB of console input it did not read"
fi

# 3. power cut during the ROM read: nothing starts, the read is thrown away
: >"$T/console.log"
pins "power=1 mux=dut buttons=1000"
sleep 0.3
pins "power=0 mux=dut buttons=1000"
sleep 1.5
if ! grep -q FAKEQEMU "$T/console.log" && [ -z "$(qemu_pid)" ]; then
	ok "a power cut during the ROM read starts no QEMU"
else
	nok "a power cut during the ROM read starts no QEMU"
fi
ls "$T/tmp" | grep -v '^rigor-vboard-cache\.' >"$T/out"   # the kernel cache stays
[ ! -s "$T/out" ] && ok "the abandoned ROM read leaves no temporary directory" ||
	nok "the abandoned ROM read leaves no temporary directory"

# 4. SIGHUP and SIGTERM with QEMU running: exit 0, nothing left behind
for sig in HUP TERM; do
	pins "power=1 mux=dut buttons=1000"
	wait_log FAKEQEMU 5
	q=$(qemu_pid)
	kill -$sig $vbpid
	wait $vbpid
	rc=$?
	vbpid=
	sleep 0.2
	ls "$T/tmp" >"$T/out"
	if [ $rc = 0 ] && [ -n "$q" ] && [ ! -d "/proc/$q" ] && [ ! -e "$T/console" ] && [ ! -s "$T/out" ]; then
		ok "SIG$sig: exit 0, QEMU gone, socket and temporary directories removed"
	else
		echo "# exit $rc, qemu pid '$q'"
		nok "SIG$sig: exit 0, QEMU gone, socket and temporary directories removed"
	fi
	pins "power=0 mux=dut buttons=1000"
	[ $sig = HUP ] && vb_start
done
tap_done
