#!/bin/sh
# SPDX-License-Identifier: MIT
# rigor-vboard's own logic, without QEMU, OVMF or an OS image: the pins file is written here,
# the disks and firmware files are empty files, and "QEMU" is a Python script that prints
# its arguments, never reads its console input, answers on the board's QMP socket (a
# RESET event at start, system_reset) and, with the watchdog, plays a guest on ttyS1:
# firmware text (not kicks), kicks every 100 ms, silence until the board resets it,
# silence again, one kick, silence until the next reset. Checks: power cycles while QEMU
# starts (strap changed while off) leave one QEMU with the disks of the last power-on; the
# mux interlock starts nothing; console input QEMU does not take does not stall the board
# (power off still kills QEMU at once); a RESET event is shown; the watchdog is armed by
# the first kick only, resets N ms after the last one, and is disarmed by the reset; SIGHUP
# and SIGTERM leave no process, socket or temporary directory behind. Prints TAP.
T=$(mktemp -d /tmp/rigor-vboard-fake-XXXXXX)
. host/tests/tap.sh
VB=testcases/virtual/rigor-vboard
vbpid=
cleanup() {
	[ -n "$vbpid" ] && kill "$vbpid" 2>/dev/null && wait "$vbpid" 2>/dev/null
	if [ "$fail" = 0 ]; then rm -rf "$T"; else echo "# logs kept in $T"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT
command -v python3 >/dev/null || { echo "ok 1 # SKIP python3 not installed"; echo "1..1"; exit 0; }

truncate -s 8M "$T/card.img" "$T/internal.img"
: >"$T/code.fd"
: >"$T/vars.fd"
mkdir "$T/tmp"
cat >"$T/qemu" <<'EOF2'
#!/usr/bin/env python3
# fake qemu-system-x86_64 for test-vboard-fake.sh
import json, re, socket, sys, time
print("FAKEQEMU " + " ".join(sys.argv[1:]), flush=True)
paths = dict(re.findall(r"socket,id=(\w+),path=([^,]+),server=off", " ".join(sys.argv)))
qmp = socket.socket(socket.AF_UNIX); qmp.connect(paths["qmp"])
qmp.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\n')
qmp.sendall(b'{"event": "RESET", "data": {"guest": true, "reason": "guest-reset"}}\n')
if "wd" not in paths:
    time.sleep(600)
    sys.exit(0)
wd = socket.socket(socket.AF_UNIX); wd.connect(paths["wd"])
qmp.settimeout(0.05)
buf = b""
def reset_came(seconds):
    """Reads QMP for `seconds`; True at a system_reset (answered with a RESET event)."""
    global buf
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            buf += qmp.recv(4096)
        except socket.timeout:
            continue
        if b"system_reset" in buf:
            buf = b""
            qmp.sendall(b'{"return": {}}\n{"event": "RESET", "data": {"guest": false, '
                        b'"reason": "host-qmp-system-reset"}}\n')
            return True
    return False
def say(s):
    print("FAKEQEMU " + s, flush=True)
for _ in range(8):                      # firmware text on COM2: not kicks
    wd.sendall(b"\x1b[2J BdsDxe: loading Boot0001 \r\n")
    if reset_came(0.1):
        say("reset during firmware text")
for _ in range(10):                     # the kicker
    wd.sendall(b"\x16")
    last = time.monotonic()
    if reset_came(0.1):
        say("reset while kicking")
if reset_came(5):
    say("reset after %d ms" % ((time.monotonic() - last) * 1000))
if reset_came(1.5):                     # disarmed until the next kick
    say("reset before a kick")
wd.sendall(b"\x16")
last = time.monotonic()
if reset_came(5):
    say("reset after %d ms" % ((time.monotonic() - last) * 1000))
say("done")
time.sleep(600)
EOF2
chmod +x "$T/qemu"

# pins LINE: the rig board's state file, replaced atomically as rigfw-sim does
pins() { echo "$1" >"$T/pins.tmp" && mv "$T/pins.tmp" "$T/pins"; }
vb_start() {
	: >"$T/vb.log"
	: >"$T/console.log"
	TMPDIR="$T/tmp" $VB --state "$T/pins" --card "$T/card.img" --internal "$T/internal.img" \
		--console "$T/console" --log "$T/console.log" --qemu "$T/qemu" \
		--ovmf-code "$T/code.fd" --ovmf-vars "$T/vars.fd" "$@" >/dev/null 2>"$T/vb.log" &
	vbpid=$!
	wait_for "$T/console"
}
# alive PID: the process runs (not a zombie)
alive() { [ -n "$1" ] && [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
# qemu_pids: the fake QEMUs the board started that still run
qemu_pids() {
	for p in $(sed -n 's/.*qemu pid \([0-9]*\) started.*/\1/p' "$T/vb.log"); do
		alive "$p" && echo "$p"
	done
}
# wait_log REGEX SECONDS: until the console log matches
wait_log() {
	i=0
	while ! grep -q "$1" "$T/console.log" && [ $i -lt $(($2 * 20)) ]; do sleep 0.05; i=$((i + 1)); done
	grep -q "$1" "$T/console.log"
}

pins "power=0 mux=dut buttons=0000"
vb_start

# 1. power cycles while QEMU starts: released strap (internal) -> off, strap held -> on
pins "power=1 mux=dut buttons=0000"
sleep 0.1
pins "power=0 mux=dut buttons=1000"
sleep 0.1
pins "power=1 mux=dut buttons=1000"
sleep 1
wait_log "FAKEQEMU.*serial=rigor-card,bootindex=0" 5
[ "$(qemu_pids | wc -l)" = 1 ] && ok "power cycles while QEMU starts: one QEMU runs" ||
	{ cp "$T/vb.log" "$T/out"; nok "power cycles while QEMU starts: one QEMU runs"; }
grep "^FAKEQEMU -accel" "$T/console.log" | tail -n 1 | tr -d "\r" >"$T/out"   # the last QEMU's arguments
if grep -q "file=$T/card.img,if=none,id=disk0.*serial=rigor-card,bootindex=0.*file=$T/internal.img,if=none,id=disk1.*serial=rigor-internal,bootindex=1" "$T/out" &&
	grep -q "if=pflash.*readonly=on,file=$T/code.fd" "$T/out" && ! grep -q "id=wd" "$T/out"; then
	ok "it boots what the last power-on selects: the card first (rigor-card), OVMF read-only, no watchdog port"
else
	nok "it boots what the last power-on selects: the card first (rigor-card), OVMF read-only, no watchdog port"
fi
wait_log "rigor-vboard: reset (guest-reset)" 5 && ok "a QMP RESET event is shown on the console" ||
	nok "a QMP RESET event is shown on the console"

# 1b. a power cut shorter than the board's poll: rigfw-sim's power_ons count still shows it
# (the first count the board sees is no cut: it has nothing to compare with)
q=$(qemu_pids)
pins "power=1 mux=dut buttons=1000 power_ons=1"
sleep 0.3
[ "$(qemu_pids)" = "$q" ] && ok "the first power_ons the board sees is not taken for a cut" ||
	{ cp "$T/vb.log" "$T/out"; nok "the first power_ons the board sees is not taken for a cut"; }
pins "power=1 mux=dut buttons=1000 power_ons=2"
i=0; while alive "$q" && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
i=0; while [ "$(qemu_pids | wc -l)" != 1 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
if [ -n "$q" ] && ! alive "$q" && [ "$(qemu_pids | wc -l)" = 1 ] && [ "$(qemu_pids)" != "$q" ] &&
	grep -q "power off and on between two polls" "$T/vb.log"; then
	ok "a cut the board never saw as power=0 (power_ons 1 -> 2) restarts QEMU"
else
	cp "$T/vb.log" "$T/out"; nok "a cut the board never saw as power=0 (power_ons 1 -> 2) restarts QEMU"
fi

# 2. console input QEMU does not read: the board must not stall on it
q=$(qemu_pids)
python3 - "$T/console" <<'EOP' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(3)
try:
    s.sendall(b"x" * (1 << 20))
except OSError:
    pass
EOP
sender=$!
sleep 1
pins "power=0 mux=dut buttons=1000"
i=0; while alive "$q" && [ $i -lt 20 ]; do sleep 0.05; i=$((i + 1)); done
wait $sender 2>/dev/null
if [ -n "$q" ] && [ $i -lt 20 ]; then
	ok "power off kills QEMU at once after 1 MiB of console input it did not read"
else
	echo "# qemu pid '$q'"
	nok "power off kills QEMU at once after 1 MiB of console input it did not read"
fi

# 3. the interlock: the card with the mux on the host side starts nothing
n0=$(grep -c 'qemu pid' "$T/vb.log")
pins "power=1 mux=host buttons=1000"
wait_log "rigor-vboard: no bootable card (SD card not connected: mux=host)" 5 &&
	ok "strap held, mux on the host: 'no bootable card (SD card not connected: mux=host)'" ||
	nok "strap held, mux on the host: 'no bootable card (SD card not connected: mux=host)'"
sleep 0.3
[ "$(grep -c 'qemu pid' "$T/vb.log")" = "$n0" ] && ok "no QEMU without the card" || nok "no QEMU without the card"
pins "power=0 mux=dut buttons=1000"
sleep 0.2   # the board polls every 20 ms: let it see the power go off

# 4. SIGHUP and SIGTERM with QEMU running: exit 0, nothing left behind; between them, the
# board comes back with --watchdog-ms 500 and the fake guest plays with ttyS1
for sig in HUP TERM; do
	pins "power=1 mux=dut buttons=1000"
	i=0; while [ -z "$(qemu_pids)" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	if [ $sig = TERM ]; then
		wait_log "FAKEQEMU done" 15
		tr -d '\r' <"$T/console.log" >"$T/wd.out"
		cp "$T/wd.out" "$T/out"
		grep -q "id=wd,path=.*-serial chardev:wd" "$T/wd.out" &&
			ok "--watchdog-ms: QEMU gets a second serial port on the board's socket" ||
			nok "--watchdog-ms: QEMU gets a second serial port on the board's socket"
		! grep -q "FAKEQEMU reset during firmware text" "$T/wd.out" &&
			! grep -q "FAKEQEMU reset while kicking" "$T/wd.out" &&
			ok "firmware text on ttyS1 does not arm it; kicks every 100 ms keep it quiet" ||
			nok "firmware text on ttyS1 does not arm it; kicks every 100 ms keep it quiet"
		[ "$(grep -c '^FAKEQEMU reset after [5-8][0-9][0-9] ms$' "$T/wd.out")" = 2 ] &&
			ok "the board resets the guest 500-900 ms after its last kick (twice)" ||
			nok "the board resets the guest 500-900 ms after its last kick (twice)"
		! grep -q "FAKEQEMU reset before a kick" "$T/wd.out" &&
			ok "after a reset the watchdog waits for the next first kick" ||
			nok "after a reset the watchdog waits for the next first kick"
		[ "$(grep -c '^rigor-vboard: watchdog reset (no kick for 500 ms)$' "$T/wd.out")" = 2 ] &&
			ok "the console shows 'rigor-vboard: watchdog reset (no kick for 500 ms)' for each" ||
			nok "the console shows 'rigor-vboard: watchdog reset (no kick for 500 ms)' for each"
		! grep -q "reset (host-qmp-system-reset)" "$T/wd.out" &&
			ok "the board's own reset is not shown twice (no 'reset (host-qmp-system-reset)' line)" ||
			nok "the board's own reset is not shown twice (no 'reset (host-qmp-system-reset)' line)"
	fi
	q=$(qemu_pids)
	kill -$sig $vbpid
	wait $vbpid
	rc=$?
	vbpid=
	sleep 0.2
	ls "$T/tmp" >"$T/out"
	if [ $rc = 0 ] && [ -n "$q" ] && ! alive "$q" && [ ! -e "$T/console" ] && [ ! -s "$T/out" ]; then
		ok "SIG$sig: exit 0, QEMU gone, socket and temporary directory removed"
	else
		echo "# exit $rc, qemu pid '$q'"
		nok "SIG$sig: exit 0, QEMU gone, socket and temporary directory removed"
	fi
	pins "power=0 mux=dut buttons=1000"
	[ $sig = HUP ] && vb_start --watchdog-ms 500
done

# NTP (--ntp-file): an SNTP client request gets a server reply with the host's clock, on a
# free port here (the guest's port 123 needs 127.0.0.1:123, root)
port=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
vb_start --api-port 1 --ntp-file "$T/ntp" --ntp-port "$port"
[ "$(cat "$T/ntp" 2>/dev/null)" = 10.0.2.254 ] && ok "--ntp-file names the guest's server, 10.0.2.254 (slirp's host with --api-port)" ||
	nok "--ntp-file names the guest's server, 10.0.2.254 (slirp's host with --api-port)" "$(cat "$T/ntp" "$T/vb.log" 2>&1)"
if python3 - "$port" >"$T/ntp.out" 2>&1 <<'EOF2'
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
t0 = time.time()
req = bytearray(48)
req[0] = (4 << 3) | 3                       # VN 4, mode 3 (client)
req[2] = 6                                  # poll 2^6 s
req[40:48] = struct.pack("!II", 0x12345678, 0x9abcdef0)   # our transmit time, echoed
s.sendto(req, ("127.0.0.1", int(sys.argv[1])))
rep, _ = s.recvfrom(512)
t1 = time.time()
assert len(rep) == 48, len(rep)
assert rep[0] == (4 << 3) | 4, "LI/VN/mode %#x" % rep[0]
assert rep[1] == 1 and rep[2] == 6, "stratum %d, poll %d" % (rep[1], rep[2])
assert rep[12:16] == b"RIGR", rep[12:16]
assert rep[24:32] == bytes(req[40:48]), "originate %r" % rep[24:32]
for name, off in (("reference", 16), ("receive", 32), ("transmit", 40)):
    sec, frac = struct.unpack("!II", rep[off:off + 8])
    t = sec - 2208988800 + frac / 2**32
    assert t0 - 1 <= t <= t1 + 1, "%s %f not within [%f, %f]" % (name, t, t0, t1)
s.sendto(bytes(48), ("127.0.0.1", int(sys.argv[1])))   # mode 0: not a client, no answer
s.settimeout(0.5)
try:
    s.recvfrom(512)
    raise SystemExit("answered a request that is not a client's")
except socket.timeout:
    pass
EOF2
then ok "NTP: a client request gets stratum 1, its transmit time echoed, the host's clock; a non-client packet nothing"
else nok "NTP: a client request gets stratum 1, its transmit time echoed, the host's clock; a non-client packet nothing" "$(cat "$T/ntp.out")"; fi
kill $vbpid
wait $vbpid
vbpid=
# the port already taken without SO_REUSEPORT: an empty file, and the board still runs
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", int(sys.argv[1]))); time.sleep(30)' "$port" &
holder=$!
sleep 0.5
vb_start --ntp-file "$T/ntp2" --ntp-port "$port"
[ -f "$T/ntp2" ] && [ ! -s "$T/ntp2" ] && alive "$vbpid" && grep -q "ntp: cannot serve" "$T/vb.log" &&
	ok "a port it cannot have: an empty --ntp-file, the reason in its log, the board runs on" ||
	nok "a port it cannot have: an empty --ntp-file, the reason in its log, the board runs on" "$(cat "$T/vb.log")"
kill $holder 2>/dev/null
wait $holder 2>/dev/null
tap_done
