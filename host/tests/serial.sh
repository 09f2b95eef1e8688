#!/bin/sh
# SPDX-License-Identifier: MIT
# The serial console back-end over a pty (a real tty to libserialport, the device played
# by ptydev), unplug and replug, identity errors, and the rigfw "serial:" link. Prints TAP.
#
# libserialport 0.1.1 cannot open ptys by itself: the test-only shim libptyshim.so is
# preloaded (first). Under ASan (make test SAN=1) the ASan runtime then is not first in
# the library list, which it refuses unless ASAN_OPTIONS=verify_asan_link_order=0.
T=$(mktemp -d /tmp/rigor-serial-XXXXXX)
. host/tests/tap.sh
export RIGOR_STATE_DIR=$T/state
case $BUILD in /*) SHIM=$BUILD/host/tests/libptyshim.so ;; *) SHIM=$(pwd)/$BUILD/host/tests/libptyshim.so ;; esac
PTYDEV=$BUILD/host/tests/ptydev
FWSIM=$BUILD/firmware/host/rigfw-sim
devpid=
simpid=
trap 'kill $devpid $simpid 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
P="env LD_PRELOAD=$SHIM${LD_PRELOAD:+:$LD_PRELOAD}"
rigfile() {
	printf 'rig {\n  name = "%s",\n  console = serial { %s },\n}\n' "$1" "$2" >"$T/$1.lua"
}
elapsed_ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

"$PTYDEV" -g 1000 "$T/tty" >>"$T/dev.out" 2>"$T/dev.err" &
devpid=$!
wait_for "$T/tty"
rigfile s1 "device = \"$T/tty\", baud = 115200, parity = \"none\", flow = \"none\""
R="$P $RIGOR --rig $T/s1.lua"
run 0 "rig file with a serial console validates" $RIGOR check "$T/s1.lua"
run 0 "example rig file validates" $RIGOR check rigs/examples/serial-console.lua

# ---- bytes both ways through `rigor console` ----
perl -e 'print map { chr } 0..255' >"$T/all.bin"
: >"$T/dev.out"
$R console --timeout 1 <"$T/all.bin" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc = 0 ]; then ok "console over a pty (exit 0)"; else echo "# exit $rc"; nok "console over a pty"; fi
if cmp -s "$T/all.bin" "$T/dev.out"; then ok "all 256 byte values reach the device"; else
	od -c "$T/dev.out" | head -5 | sed 's/^/# /'; nok "all 256 byte values reach the device"; fi
if cmp -s "$T/all.bin" "$T/out"; then ok "all 256 byte values come back from the device"; else
	od -c "$T/out" | head -5 | sed 's/^/# /'; nok "all 256 byte values come back from the device"; fi

# ---- Lua: expect/sendline, timeouts ----
cat >"$T/t.lua" <<'EOF2'
local core = require "rigor.core"
local c = rig.console
assert(c:sendline("ping 42"))
print("pong:", c:expect("pong 42", 3000))
local t0 = core.now_ms()
local m, msg = c:expect("never%-sent", 300)
print("expect-timeout:", m == nil and msg:find("no match") ~= nil, core.now_ms() - t0)
c:clear()
t0 = core.now_ms()
local d, dm = c:read(0)
print("poll:", d, dm, core.now_ms() - t0)
EOF2
run 0 "Lua: sendline and expect over the serial console" $R lua "$T/t.lua"
has "$T/out" "^pong:	pong 42" "expect sees the device's answer"
el=$(sed -n 's/^expect-timeout:	true	//p' "$T/out")
if [ -n "$el" ] && [ "$el" -ge 290 ] && [ "$el" -lt 1000 ]; then ok "expect timeout honoured (${el} ms for 300)"; else nok "expect timeout honoured ($el)"; fi
el=$(sed -n 's/^poll:	nil	timeout	//p' "$T/out")
if [ -n "$el" ] && [ "$el" -lt 200 ]; then ok "read(0) polls (${el} ms)"; else nok "read(0) polls ($el)"; fi

# ---- unplug mid-run: `rigor console` goes on, the log shows the gap ----
start=$(date +%s%N)
( printf 'ping 1\r'; sleep 0.4; kill -USR1 $devpid; sleep 0.3; printf 'ping 2\r'; sleep 0.3; printf 'ping 3\r'; sleep 0.3 ) |
	$R console --timeout 1 --log "$T/console.log" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc = 0 ]; then ok "console survives an unplug (exit 0, $(elapsed_ms $start) ms)"; else echo "# exit $rc"; nok "console survives an unplug"; fi
has "$T/out" "pong 1" "bytes before the unplug"
has "$T/out" "\[rigor: console lost at [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}, reconnected after [0-9]+ ms\]" "gap marker in the stream"
has "$T/console.log" "console: \[rigor: console lost at .*, reconnected after [0-9]+ ms\]" "gap marker in the console log"
has "$T/out" "pong 2" "a line sent while unplugged arrives after the replug"
has "$T/out" "pong 3" "later bytes arrive"
has "$T/err" "console port '/dev/pts/[0-9]+' lost" "the loss is reported as a warning"

# ---- unplug under Lua: reads time out while gone, then the marker and more bytes ----
cat >"$T/u.lua" <<'EOF2'
local core = require "rigor.core"
local c = rig.console
assert(c:sendline("ping 1")); assert(c:expect("pong 1", 3000))
os.execute("kill -USR1 " .. os.getenv("DEVPID"))
core.sleep(150)
c:clear()
local t0 = core.now_ms()
local d, msg = c:read(300)
print("gone-read:", d, msg, core.now_ms() - t0)
print("marker:", c:expect("%[rigor: console lost at [^]]*%]", 5000))
assert(c:sendline("ping 2"))
print("after:", c:expect("pong 2", 3000))
EOF2
DEVPID=$devpid run 0 "Lua run survives an unplug" $R lua "$T/u.lua"
has "$T/out" "^gone-read:	nil	timeout	(29[0-9]|[3-9][0-9][0-9]|1[0-9]{3})$" "reads while unplugged time out (after their timeout)"
has "$T/out" "^marker:	\[rigor: console lost at .*reconnected after [0-9]+ ms\]" "Lua sees the gap marker"
has "$T/out" "^after:	pong 2" "Lua talks to the device after the replug"

# ---- line settings reach the port (a pty keeps only 8 bits, no parity: not testable here) ----
rigfile s92 "device = \"$T/tty\", baud = 9600, stopbits = 2, flow = \"xonxoff\""
run 0 "console with 9600 8N2, XON/XOFF" $P $RIGOR --rig "$T/s92.lua" console --timeout 0
stty -F "$T/tty" -a >"$T/out" 2>&1
has "$T/out" "speed 9600 baud" "baud rate set"
has "$T/out" " cstopb " "2 stop bits"
has "$T/out" " ixon " "XON/XOFF flow control"

# ---- errors: what was searched, exit 3 ----
rigfile gone "device = \"$T/never-existed\""
run 3 "a device that never existed" $P $RIGOR --rig "$T/gone.lua" console --timeout 0
has "$T/err" "console: no serial port at '$T/never-existed'" "names the device path"
# a fake sysfs with one adapter (A1) and a dual-port one (C3), read by libudev through
# umockdev's preload, after the pty shim
. host/tests/udevfs.sh
S=$T/sys/sys/devices/usb1
udev_usbdev "$S/1-1"; udev_usbdev "$S/1-2"
printf '0403\n' >"$S/1-1/idVendor"; printf '6015\n' >"$S/1-1/idProduct"; printf 'A1\n' >"$S/1-1/serial"
printf '0403\n' >"$S/1-2/idVendor"; printf '6010\n' >"$S/1-2/idProduct"; printf 'C3\n' >"$S/1-2/serial"
udev_usbif "$S/1-1/1-1:1.0" 00
udev_usbif "$S/1-2/1-2:1.0" 00; udev_usbif "$S/1-2/1-2:1.1" 01
udev_node "$T/sys" tty ttyUSB0 usb1/1-1/1-1:1.0/ttyUSB0/tty/ttyUSB0
udev_node "$T/sys" tty ttyUSB1 usb1/1-2/1-2:1.0/ttyUSB1/tty/ttyUSB1
udev_node "$T/sys" tty ttyUSB2 usb1/1-2/1-2:1.1/ttyUSB2/tty/ttyUSB2
PU="env LD_PRELOAD=$SHIM:libumockdev-preload.so.0${LD_PRELOAD:+:$LD_PRELOAD} UMOCKDEV_DIR=$T/sys"
rigfile nope 'usb_serial = "NOPE123"'
run 3 "an adapter that is not plugged in" $PU $RIGOR --rig "$T/nope.lua" console --timeout 0
has "$T/err" "no tty matches usb_serial=NOPE123 \(searched udev's tty devices: USB ttys present: /dev/ttyUSB0 \(USB 0403:6015 serial A1 at 1-1 interface 0\)" "names what was searched and what is there"
rigfile amb 'vid_pid = "0403:6010", interface = 1, usb_path = "1-3"'
run 3 "identity narrowed to nothing" $PU $RIGOR --rig "$T/amb.lua" console --timeout 0
has "$T/err" "no tty matches vid_pid=0403:6010 usb_path=1-3 interface=1" "every criterion is named"
rigfile amb2 'vid_pid = "0403:60"'
printf '0060\n' >"$S/1-1/idProduct"
printf '0060\n' >"$S/1-2/idProduct"
run 2 "an ambiguous identity is a configuration error" $PU $RIGOR --rig "$T/amb2.lua" console --timeout 0
has "$T/err" "vid_pid=0403:0060 is ambiguous: 3 ttys match: /dev/ttyUSB0 .*serial A1.*, /dev/ttyUSB1 .*, /dev/ttyUSB2 .*; add interface or usb_path" "lists the candidates"
# found by USB serial: the dual-port adapter's interface 0 (the default), whose node the
# fake uevent points at our pty; replugged, the identity is resolved again
printf 'DEVNAME=..%s/tty\n' "$T" >>"$S/1-2/1-2:1.0/ttyUSB1/tty/ttyUSB1/uevent"
rigfile byid 'usb_serial = "C3"'
wait_for "$T/tty"       # back from the last unplug, also on a loaded machine
( printf 'ping 7\r'; sleep 0.3; kill -USR1 $devpid; sleep 0.2; printf 'ping 8\r' ) |
	RIGOR_DEBUG=dbg $PU $RIGOR --rig "$T/byid.lua" console --timeout 1 >"$T/out" 2>"$T/err"
rc=$?
if [ $rc = 0 ]; then ok "console found by USB serial (exit 0)"; else echo "# exit $rc"; nok "console found by USB serial"; fi
has "$T/err" "\(USB 0403:0060 serial C3 at 1-2 interface 0\) matched usb_serial=C3 interface=0" "interface 0 chosen on a dual-port adapter, and said why"
has "$T/out" "pong 7" "bytes through the port found by identity"
has "$T/out" "reconnected after [0-9]+ ms.*" "identity resolved again after a replug"
has "$T/out" "pong 8" "and bytes after it"
rigfile bad 'device = "/dev/null", parity = "sometimes"'
run 2 "a bad parity" $RIGOR --rig "$T/bad.lua" console --timeout 0
has "$T/err" "parity 'sometimes': expected none, odd, even, mark or space" "bad setting named"
rigfile none 'baud = 9600'
run 2 "no port given" $RIGOR --rig "$T/none.lua" console --timeout 0
has "$T/err" "no port given: set usb_serial, vid_pid, usb_path, udev or device" "says what to set"

# ---- the rigfw back-end on a "serial:" link ----
if [ -x "$FWSIM" ]; then
	"$FWSIM" --link pty:$T/fw >"$T/sim.log" 2>&1 &
	simpid=$!
	wait_for "$T/fw"
	printf 'rig {\n  name = "fwser",\n  power = rigfw { link = "serial:%s", min_off_ms = 0 },\n}\n' "$T/fw" >"$T/fwser.lua"
	run 0 "rigfw over a serial: link" $P $RIGOR --rig "$T/fwser.lua" power on
	has "$T/out" "^power: on" "the board answers through libserialport"
	printf 'rig {\n  name = "fwser2",\n  power = rigfw { link = "serial:usb_serial=NOPE123" },\n}\n' >"$T/fwser2.lua"
	run 3 "rigfw serial: link by USB serial, absent" $PU $RIGOR --rig "$T/fwser2.lua" power on
	has "$T/err" "no tty matches usb_serial=NOPE123" "rigfw link resolution says what was searched"
else
	n=$((n + 1)); echo "ok $n - # SKIP no rigfw-sim"
fi
tap_done
