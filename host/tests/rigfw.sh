#!/bin/sh
# SPDX-License-Identifier: MIT
# The rigfw back-end against the firmware: rigfw-sim (the core on a simulated HAL) and
# the real STM32F1 image under qemu-system-arm. Prints TAP.
T=$(mktemp -d /tmp/rigor-rigfw-XXXXXX)
. host/tests/tap.sh
SIM=$BUILD/firmware/host/rigfw-sim
ELF=${FW_ELF:-$BUILD/firmware/stm32f1/rigfw.elf}
export RIGOR_STATE_DIR=$T/state
simpid=
qpid=
trap 'kill $simpid $qpid 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
# ctl COMMAND: one line to rigfw-sim's control socket, its answer on stdout
ctl() {
	perl -MIO::Socket::UNIX -e '
		my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!\n";
		print $s "$ARGV[1]\n"; my $l = <$s>; print $l;' "$T/ctl" "$1"
}
rigfile() {
	cat >"$T/$1.lua" <<EOR
rig {
  name = "$1",
  device_type = "raspberrypi4-64",
  capabilities = { "sd" },
  power = rigfw { link = "unix:$2", min_off_ms = 50, timeout_ms = ${3:-2000} },
  sdmux = rigfw { link = "unix:$2", timeout_ms = ${3:-2000} },
  button = { boot = rigfw { link = "unix:$2", index = 0 }, reset = rigfw { link = "unix:$2", index = 3 } },
}
EOR
}

# ---- rigfw-sim ----
$SIM --link unix:$T/link --control unix:$T/ctl --state $T/pins --mv 5048 --ma 310 >"$T/sim.log" 2>&1 &
simpid=$!
wait_for $T/ctl
rigfile fwsim $T/link
R="$RIGOR --rig $T/fwsim.lua"
run 0 "power on through the board" $R power on
has "$T/out" "^power: on \(5048 mV, 310 mA\)" "telemetry from the board's sensor"
has "$T/pins" "power=1" "the board's power output is on"
run 2 "front-end interlock before the board" $R sdmux host
run 0 "power off" $R power off
has "$T/pins" "power=0" "the board's power output is off"
# the sensor follows the output: no supply voltage or current on a DUT that is off
run 0 "power status while off" $R power status
has "$T/out" "^power: off \(0 mV, 0 mA\)" "telemetry while off: 0 mV, 0 mA (not the supply's 5048 mV)"
run 0 "mux to host" $R sdmux host
has "$T/out" "^sdmux: host" "mux read back from the board"
has "$T/pins" "mux=host" "the board's mux is on the host side"
run 0 "mux to dut" $R sdmux dut
has "$T/pins" "mux=dut" "the board's mux is on the DUT side"
run 0 "hold a strap" $R button reset --down
has "$T/pins" "buttons=0001" "output 3 held"
run 0 "release it" $R button reset --up
has "$T/pins" "buttons=0000" "output 3 released"
ctl "set mv=4800 ma=777" >/dev/null
sleep 0.3   # the board samples its sensor periodically
run 0 "power on again" $R power on
has "$T/out" "4800 mV, 777 mA" "injected telemetry is read"
cat >"$T/m.lua" <<'EOF2'
local m = assert(rig.power:measure())
assert(m.mv == 4800 and m.ma == 777, "measure " .. m.mv .. " " .. m.ma)
assert(rig.power:state() == "on")
assert(rig.sdmux:get() == "dut")
assert(rig.button.boot:press(30))
print("lua-ok")
EOF2
run 0 "Lua: measure, state, press on one link" $R lua "$T/m.lua"
has "$T/out" "lua-ok" "Lua drives the board"

# a board reset between commands: greeted again, and it came back safe (DUT off)
ctl "reset" >/dev/null
run 0 "after a board reset the next command works" $R power status
has "$T/out" "^power: off" "a reset board is in its safe state"

# a board that stops answering: an infrastructure error within the timeout
rigfile fwslow $T/link 800
ctl "hang 4000" >/dev/null
start=$(date +%s%N)
run 3 "a silent board is an infrastructure error" $RIGOR --rig $T/fwslow.lua power on
el=$(( ($(date +%s%N) - start) / 1000000 ))
has "$T/err" "did not answer within 800 ms" "timeout message names the limit"
if [ $el -lt 3500 ]; then ok "gave up in ${el} ms, before the board woke"; else nok "gave up in ${el} ms"; fi
sleep 3.5
run 0 "the board answers again after the hang" $R power status
kill $simpid
wait $simpid 2>/dev/null
simpid=
run 3 "a vanished board is an infrastructure error" $R power on
has "$T/err" "cannot connect to the rig board" "vanished board message"

# ---- a Compute Module flash interrupted: the strap is let go and the DUT powered off ----
# The board's back-end gives up waiting for answers while the cancel flag is up, so
# rig_flash() must release and power off with it down: the board obeys either way (the
# request is already sent), but only then does the rig record it (the events, and the
# power-off time that min_off_ms counts from). The sim usbboot hangs (strap held) or the
# disk never appears (strap released, DUT on); SIGINT comes in each of those states.
$SIM --link unix:$T/link2 --control unix:$T/ctl2 --state $T/pins2 >"$T/sim2.log" 2>&1 &
simpid=$!
wait_for $T/ctl2
mkdir -p "$T/msd"
head -c 1M /dev/zero >"$T/cm.img"
cat >"$T/cm.lua" <<EOR
rig {
  name = "cm",
  device_type = "raspberrypicm4-ioboard",
  power = rigfw { link = "unix:$T/link2", min_off_ms = 0, timeout_ms = 2000 },
  button = { boot = rigfw { link = "unix:$T/link2", index = 0 } },
  usbboot = sim { msd_dir = "$T/msd", timeout_ms = 20000 },
  storage = file { path = "$T/no-disk" },
}
EOR
C="$RIGOR --rig $T/cm.lua"
# wait_pins REGEX: until the board's pin file matches (20 s at most)
wait_pins() { i=0; while ! grep -Eq "$1" "$T/pins2" 2>/dev/null && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done; }
for stage in usbboot disk; do
	if [ $stage = usbboot ]; then
		$C sim inject usbboot hang >/dev/null 2>&1
		held='buttons=1000'
	else
		$C sim inject usbboot ok >/dev/null 2>&1
		# the sim usbboot port wants its own power key: the board's output is elsewhere
		echo "power=1" >>"$RIGOR_STATE_DIR/cm.sim"
		held='buttons=0000'
	fi
	$RIGOR -v --rig "$T/cm.lua" flash "$T/cm.img" >"$T/out" 2>"$T/err" </dev/null &
	fpid=$!
	wait_pins "power=1"
	wait_pins "$held"
	sleep 0.3
	kill -INT $fpid
	wait $fpid
	rc=$?
	if [ $rc = 130 ] && grep -q "power=0" "$T/pins2" && grep -q "buttons=0000" "$T/pins2" &&
	   grep -q "button boot release" "$T/err" && tail -n 2 "$T/err" | grep -q "power off$"; then
		ok "CM flash interrupted while waiting for the $stage: strap released, DUT off (exit $rc)"
	else
		sed 's/^/# pins: /' "$T/pins2"
		nok "CM flash interrupted while waiting for the $stage: strap released, DUT off (exit $rc)"
	fi
done
$C sim inject usbboot ok >/dev/null 2>&1
kill $simpid
wait $simpid 2>/dev/null
simpid=

# ---- the real firmware under QEMU ----
if [ -f "$ELF" ] && command -v qemu-system-arm >/dev/null; then
	qemu-system-arm -M stm32vldiscovery -kernel "$ELF" -display none -monitor none \
		-d unimp -D "$T/unimp.log" \
		-chardev socket,id=u0,path=$T/qsock,server=on,wait=off -serial chardev:u0 \
		>"$T/qemu.out" 2>&1 &
	qpid=$!
	wait_for $T/qsock
	rigfile fwqemu $T/qsock 3000
	Q="$RIGOR --rig $T/fwqemu.lua"
	run 0 "QEMU firmware: power on" $Q power on
	has "$T/out" "^power: on" "QEMU firmware reports power on"
	g1=$(grep -c 'GPIO' "$T/unimp.log")
	run 0 "QEMU firmware: power off" $Q power off
	g2=$(grep -c 'GPIO' "$T/unimp.log")
	if [ "$g2" -gt "$g1" ]; then ok "power off wrote GPIO registers ($g1 -> $g2)"; else nok "power off wrote GPIO registers"; fi
	run 0 "QEMU firmware: mux to host" $Q sdmux host
	has "$T/out" "^sdmux: host" "QEMU firmware mux read back"
	run 0 "QEMU firmware: mux to dut" $Q sdmux dut
	run 0 "QEMU firmware: press a button" $Q button boot --hold 20
else
	n=$((n + 1)); echo "ok $n - # SKIP no firmware image or qemu-system-arm"
fi

tap_done
