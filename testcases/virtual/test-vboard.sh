#!/bin/sh
# SPDX-License-Identifier: MIT
# The virtual rig end to end: rigfw-sim is the rig board (power, SD mux, buttons over its
# link), testcases/virtual/rigor-vboard is the DUT (QEMU booting the card when powered
# with the mux on its side), the console is the `socket` back-end, the card a plain file.
# Blank card -> ROM error; flash the rigor OS, mux to the DUT, power on, cut the power
# mid-boot -> QEMU gone at once, the card's filesystems check clean; power on -> login
# prompt; power off -> QEMU gone; card not on the DUT side at power-on -> ROM error (mux off: the
# board's interlock refuses power with the mux on the host); the console survives a board
# restart; SIGTERM leaves no QEMU. Prints TAP; SKIPs without qemu-system-x86_64 or the OS
# image (make os-image). RIGOR_VBOARD_KEEP=1 keeps the scratch directory and its logs.
T=$(mktemp -d /tmp/rigor-vboard-XXXXXX)
. host/tests/tap.sh
SIM=$BUILD/firmware/host/rigfw-sim
IMG=$BUILD/os/rigor-os-1.0.img
export RIGOR_STATE_DIR=$T/state
. testcases/virtual/board-test.sh
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
[ -f "$IMG" ] || skip "no OS image $IMG (make os-image; kernel download unavailable?)"
for t in mtype mcopy sfdisk python3 fsck.fat e2fsck; do command -v $t >/dev/null || skip "$t not installed"; done
[ -x "$SIM" ] || { echo "not ok 1 - $SIM not built"; echo "1..1"; exit 1; }

# qemu_on: is a QEMU running on our card? (processes are matched on their own command line)
qemu_on() {
	for d in /proc/[0-9]*; do
		{ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -q "qemu-system-x86_64 .*file=$T/card.img" && return 0
	done
	return 1
}
# wait_gone SECONDS: until no QEMU runs on the card
wait_gone() {
	i=0
	while qemu_on && [ $i -lt $(($1 * 20)) ]; do sleep 0.05; i=$((i + 1)); done
	! qemu_on
}

truncate -s 160M "$T/card.img"
$SIM --link unix:$T/link --control unix:$T/ctl --state $T/pins >"$T/sim.log" 2>&1 &
simpid=$!
wait_for $T/ctl
# the balena API emulator, reached by the guest at its default 10.0.2.2:48484
testcases/backend/rigor-backend --port 0 --port-file $T/api.port --state $T/api.json -v \
	>/dev/null 2>"$T/backend.log" &
bepid=$!
wait_for $T/api.port
port=$(cat $T/api.port 2>/dev/null)
vboard_start() {
	testcases/virtual/rigor-vboard --state $T/pins --card $T/card.img --console $T/console \
		--api-port "${port:-0}" --log "$T/console.log" \
		>>"$T/vboard.out" 2>>"$T/vboard.log" &
	vbpid=$!
	wait_for $T/console
}
vboard_start
cat >"$T/virtual.lua" <<EOR
rig {
  name = "virtual",
  device_type = "qemux86-64",
  capabilities = { "sd" },
  power = rigfw { link = "unix:$T/link", min_off_ms = 50 },
  sdmux = rigfw { link = "unix:$T/link" },
  button = { boot = rigfw { link = "unix:$T/link", index = 0 } },
  console = socket { path = "$T/console" },
  storage = file { path = "$T/card.img" },
}
EOR
R="$BUILD/rigor --rig $T/virtual.lua"
run 0 "the virtual rig file is valid" $R check "$T/virtual.lua"

# 1. a blank card: the ROM says so on the console
cat >"$T/rom.lua" <<'EOL'
assert(rig.power:off())
assert(rig.sdmux:set(arg[1]))
assert(rig.power:on())
local m = rig.console:expect("rigor%-vboard ROM: no bootable card %(([^)]*)%)", 10000)
assert(m, "no ROM message")
print("rom: " .. m)
assert(rig.power:off())
EOL
run 0 "blank card on the DUT side: power on" $R lua "$T/rom.lua" dut
has "$T/out" "^rom: no partition table" "the ROM reports the blank card on the console"
wait_gone 5 && ok "no QEMU started for a blank card" || nok "no QEMU started for a blank card"

# 2. flash the OS (the DUT goes off, the mux to the host)
run 0 "rigor flash the rigor OS image" $R flash "$IMG"
has "$T/pins" "power=0 mux=host" "flash left the DUT off and the card on the host"
run 0 "mux to the DUT" $R sdmux dut

# 3. power cut mid-boot: stage 2 runs with the card's boot partition mounted read-write;
# pull the plug there. QEMU must be gone at once and the card must still boot.
cat >"$T/cut.lua" <<'EOL'
assert(rig.power:on())
assert(rig.console:expect("rigor%-os: Rigor OS [^\r\n]*\r?\n", 60000), "no early boot line")
assert(rig.power:off())
print("cut")
EOL
run 0 "power on, wait for stage 2 on the console, power off" $R lua "$T/cut.lua"
has "$T/out" "^cut" "the power is cut mid-boot"
# "at once": the board polls the pins every 20 ms and SIGKILLs QEMU
wait_gone 1 && ok "power cut: QEMU is gone within 1 s" || nok "power cut: QEMU is gone within 1 s"
has "$T/vboard.log" "qemu pid [0-9]+ gone \(status -9\)" "power cut: QEMU was killed (SIGKILL), not shut down"
# the card after the cut: the FAT boot partition and the ext4 partitions check clean (the
# FAT's dirty flag, set while mounted, is expected after a power cut and ignored)
sfdisk -J "$T/card.img" | python3 -c 'import json,sys
for p in json.load(sys.stdin)["partitiontable"]["partitions"]: print(p["node"][-1], p["start"], p["size"])' >"$T/parts"
dd if="$T/card.img" of="$T/boot.fat" bs=512 skip="$(awk '$1 == 1 {print $2}' "$T/parts")" \
	count="$(awk '$1 == 1 {print $3}' "$T/parts")" 2>/dev/null
fsck.fat -n "$T/boot.fat" >"$T/out" 2>&1
grep -v -e '^fsck.fat ' -e '^There are differences between boot sector and its backup' \
	-e '^This is mostly harmless' -e 'Dirty bit is set' -e 'Automatically removing dirty bit' \
	-e '^Leaving filesystem unchanged' -e '^ *[0-9]*:[0-9a-f/ ]*$' -e '^\*\*\*' -e '^$' \
	-e "^$T/boot.fat: [0-9]* files, [0-9/]* clusters$" "$T/out" >"$T/err"
[ ! -s "$T/err" ] && ok "power cut: the boot partition passes fsck.fat -n" ||
	nok "power cut: the boot partition passes fsck.fat -n"
bad=
for p in 2 5 6; do
	e2fsck -fn "$T/card.img?offset=$(($(awk -v p=$p '$1 == p {print $2}' "$T/parts") * 512))" \
		>>"$T/out" 2>&1 || bad="$bad $p"
done
[ -z "$bad" ] && ok "power cut: the ext4 partitions pass e2fsck -fn" ||
	nok "power cut: the ext4 partitions pass e2fsck -fn (failed:$bad)"

# 4. power on again: the card boots to its login prompt
start=$(date +%s)
run 0 "power on" $R power on
cat >"$T/boot.lua" <<'EOL'
assert(rig.console:expect("rigor-os login: ", 60000, true), "no login prompt")
print("login-prompt")
assert(rig.console:sendline("root"))
assert(rig.console:expect("root@[%w-]+:/# ", 10000), "no shell prompt")
assert(rig.console:sendline("echo VB-$((40+2))"))
assert(rig.console:expect("VB%-42", 10000), "no answer from the shell")
print("shell-ok")
EOL
run 0 "Lua: 'rigor-os login:' on the socket console" $R lua "$T/boot.lua"
has "$T/out" "^login-prompt" "the flashed OS boots to its login prompt ($(( $(date +%s) - start )) s)"
has "$T/out" "^shell-ok" "a shell over the socket console: commands written, answers read"
qemu_on && ok "QEMU runs on the card while powered" || nok "QEMU runs on the card while powered"
i=0; while ! grep -q "POST /device/register" "$T/backend.log" && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
has "$T/backend.log" "POST /device/register" "the guest agent registered with the API emulator (--api-port)"

# 5. power off pulls the plug
run 0 "power off" $R power off
wait_gone 2 && ok "power off kills QEMU (no process on the card left)" || nok "power off kills QEMU"
MTOOLS_SKIP_CHECK=1 mtype -i "$T/card.img@@1M" ::/config.json >"$T/config.json" 2>&1
has "$T/config.json" '"uuid"' "the card is written by the guest (config.json has the agent's uuid)"

# 6. the card not on the DUT side at power-on: not bootable. (The board's interlock refuses
# power with the mux on the host, so the mux is off: disconnected from both sides.)
run 0 "mux off: power on" $R lua "$T/rom.lua" off
has "$T/out" "^rom: SD card not connected: mux=off" "the ROM reports the missing card"
wait_gone 2 && ok "no QEMU without the card" || nok "no QEMU without the card"

# 7. the board restarts under a connected console: the socket back-end reconnects
cat >"$T/re.lua" <<'EOL'
assert(rig.power:off())
assert(rig.power:on())
assert(rig.console:expect("no bootable card", 10000, true), "no first ROM message")
print("first") io.stdout:flush()
-- the board restarts now; it finds the power on and runs its ROM again
assert(rig.console:expect("no bootable card", 15000, true), "no ROM message after the restart")
print("second")
EOL
$R lua "$T/re.lua" >"$T/re.out" 2>"$T/re.err" </dev/null &
luapid=$!
i=0; while ! grep -q first "$T/re.out" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill $vbpid; wait $vbpid; vboard_start
wait $luapid; rc=$?; luapid=
if [ $rc = 0 ] && grep -q second "$T/re.out"; then ok "the console reconnects after the board restarts"
else cat "$T/re.out" "$T/re.err" >"$T/out"; nok "the console reconnects after the board restarts (exit $rc)"; fi
run 0 "power off" $R power off

# 8. the board exits cleanly on SIGTERM, taking a running QEMU with it
run 0 "mux to the DUT" $R sdmux dut
run 0 "power on" $R power on
i=0; while ! qemu_on && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
qemu_on && ok "QEMU is running again" || nok "QEMU is running again"
kill $vbpid; wait $vbpid; rc=$?; vbpid=
[ $rc = 0 ] && ok "rigor-vboard exits 0 on SIGTERM" || nok "rigor-vboard exits 0 on SIGTERM (got $rc)"
wait_gone 1 && ok "no QEMU left behind after SIGTERM" || nok "no QEMU left behind after SIGTERM"
[ ! -e "$T/console" ] && ok "its console socket is removed" || nok "its console socket is removed"
tap_done
