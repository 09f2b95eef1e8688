#!/bin/sh
# SPDX-License-Identifier: MIT
# The virtual board end to end: rigfw-sim is the rig board (power, SD mux, boot strap),
# testcases/virtual/rigor-vboard the DUT (QEMU in OVMF, which starts GRUB from the disk the
# strap selects), the console the `socket` back-end, the card and the internal disk plain
# files. With $(BUILD)/os/rigor-os-1.0.img (make os-image) on both disks:
#  - the interlock: booting the card with the mux off prints the board's line, no QEMU;
#    a blank card ends in the firmware;
#  - a power cut in stage 2: QEMU SIGKILLed within 1 s, the card's filesystems check clean;
#  - strap held: OVMF, GRUB, slot A from the card (disk serial rigor-card, the internal disk
#    second), the agent registers; grubenv flipped in the guest (rigor-bootenv), `reboot -f`
#    is a reset (one QEMU) into slot B; `poweroff -f` halts the board, power still on;
#    power off kills QEMU, the guest's writes are on the card; no watchdog kicker without
#    --watchdog-ms;
#  - the console reconnects across a board restart (now with --watchdog-ms 3000);
#  - strap released: the internal disk boots (serial rigor-internal, the card second); the
#    kicker runs, no reset while it does; stopped (kill -STOP: a hung guest), the board's
#    watchdog resets the guest, which boots again in the same QEMU;
#  - unattended rollback (altboot): slot A without /sbin/rigor-init on trial: the initramfs
#    reboots twice, GRUB falls back to B and records it in grubenv;
#  - SIGTERM leaves no QEMU and no socket.
# Prints TAP; SKIPs without qemu-system-x86_64, OVMF, the tools or the OS image.
# RIGOR_VBOARD_KEEP=1 keeps the scratch directory and its logs.
T=$(mktemp -d /tmp/rigor-vboard-XXXXXX)
. host/tests/tap.sh
SIM=$BUILD/firmware/host/rigfw-sim
IMG=$BUILD/os/rigor-os-1.0.img
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
export RIGOR_STATE_DIR=$T/state MTOOLS_SKIP_CHECK=1
. testcases/virtual/board-test.sh
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
[ -f "$OVMF_CODE" ] && [ -f "$OVMF_VARS" ] || skip "no OVMF ($OVMF_CODE; Debian package ovmf)"
[ -f "$IMG" ] || skip "no OS image $IMG (make os-image; kernel download unavailable?)"
for t in mtype mcopy grub-editenv debugfs sfdisk python3 fsck.fat e2fsck; do
	command -v $t >/dev/null || skip "$t not installed"
done
[ -x "$SIM" ] || { echo "not ok 1 - $SIM not built"; echo "1..1"; exit 1; }

# the QEMU processes running on our card, by PID (matched on their own command line)
qemu_pids() {
	for d in /proc/[0-9]*; do
		{ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -q "qemu-system-x86_64 .*file=$T/card.img" &&
			echo "${d#/proc/}"
	done
}
# wait_gone SECONDS: until no QEMU runs on the card
wait_gone() {
	i=0
	while [ -n "$(qemu_pids)" ] && [ $i -lt $(($1 * 20)) ]; do sleep 0.05; i=$((i + 1)); done
	[ -z "$(qemu_pids)" ]
}
# starts: how many QEMUs the board has started so far
starts() { grep -c 'qemu pid [0-9]* started' "$T/vboard.log"; }

truncate -s 256M "$T/card.img"
cp --sparse=always "$IMG" "$T/internal.img" && truncate -s 256M "$T/internal.img"
$SIM --link unix:$T/link --control unix:$T/ctl --state $T/pins >"$T/sim.log" 2>&1 &
simpid=$!
wait_for $T/ctl
# the balena API emulator, reached by the guest at its default 10.0.2.2:48484
testcases/backend/rigor-backend --port 0 --port-file $T/api.port --state $T/api.json -v \
	>/dev/null 2>"$T/backend.log" &
bepid=$!
wait_for $T/api.port
port=$(cat $T/api.port 2>/dev/null)
# vboard_start [ARGS]: the board, with the internal disk and the strap on button 0
vboard_start() {
	testcases/virtual/rigor-vboard --state $T/pins --card $T/card.img --internal $T/internal.img \
		--strap 0 --console $T/console --api-port "${port:-0}" --log "$T/console.log" "$@" \
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

cat >"$T/boot.lua" <<'EOL'
local c = rig.console
local now = require("rigor.core").now_ms
local t0 = now()
local function secs() return string.format("%.1f", (now() - t0) / 1000) end
-- boot TAG: GRUB's line names the slot, then the login prompt; in the shell the kernel
-- command line, the mounted root's device and label, both disks' serial numbers and the
-- watchdog kicker's PID
local function boot(tag)
	local slot = c:expect("rigor%-grub: booting resin%-root(%u)", 60000)
	assert(slot, "no GRUB line")
	print(tag .. "-grub=" .. slot)
	assert(c:expect("rigor-os login: ", 60000, true), "no login prompt")
	print(tag .. "-login " .. secs())
	assert(c:sendline("root"))
	assert(c:expect("root@[%w-]+:/# ", 10000), "no shell prompt")
	c:clear()
	assert(c:sendline("echo R=$(grep -o 'root=[^ ]*' /proc/cmdline) D=$(awk '$2==\"/\"{print $1}' /proc/mounts)" ..
		" L=$(dd if=$(awk '$2==\"/\"{print $1}' /proc/mounts) bs=1 skip=1144 count=16 2>/dev/null | tr -d '\\000')" ..
		" S=$(cat /sys/block/vda/serial) V=$(cat /sys/block/vdb/serial 2>/dev/null)" ..
		" W=$(cat /run/rigor-watchdog.pid 2>/dev/null || echo none) B=$(grep -c rigor.boot= /proc/cmdline)=X"))
	local line = c:expect("(R=[^\r\n]*=X)", 10000)
	assert(line, "no answer from the shell")
	print(tag .. "-facts " .. line)
end
local mode = arg[1]
if mode == "interlock" then
	-- the card with the mux off (the rig board refuses power with the mux on the host)
	assert(rig.power:off())
	assert(rig.sdmux:set("off"))
	assert(rig.button.boot:hold())
	assert(rig.power:on())
	print("interlock: " .. assert(c:expect("rigor%-vboard: no bootable card %(([^)]*)%)", 10000)))
	assert(rig.power:off())
elseif mode == "blank" then
	assert(rig.sdmux:set("dut"))
	assert(rig.button.boot:hold())
	assert(rig.power:on())
	print("blank: " .. assert(c:expect("rigor%-vboard: power on %(OVMF%), boot disk: the ([%w ]+)", 10000)))
	assert(c:expect("BdsDxe: failed to load", 30000, true), "no firmware message")
	print("blank-firmware")
	assert(rig.power:off())
elseif mode == "cut" then
	-- pull the plug in stage 2
	assert(rig.button.boot:hold())
	assert(rig.power:on())
	assert(c:expect("rigor%-os: Rigor OS [^\r\n]*\r?\n", 60000), "no stage 2 line")
	assert(rig.power:off())
	print("cut")
elseif mode == "first" then
	assert(rig.button.boot:hold())
	assert(rig.power:on())
	boot("one")
	-- flip the slot from inside the guest: rigor-bootenv rewrites grubenv on the mounted
	-- resin-boot as grub-editenv would (1024 bytes)
	c:clear()
	assert(c:sendline("rigor-bootenv set resin_root_part=B && echo FLIP-$(rigor-bootenv get resin_root_part)-$(wc -c </mnt/boot/EFI/BOOT/grubenv)-END"))
	print("flip=" .. tostring(c:expect("FLIP%-(%u%-%d+)%-END", 10000)))
	t0 = now()
	assert(c:sendline("reboot -f"))
	boot("two")
	assert(c:sendline("poweroff -f"))
	assert(c:expect("board halted", 30000, true), "no halt")
	print("halted power=" .. tostring(rig.power:state()))
elseif mode == "internal" then
	-- strap released: the internal disk; its kicker arms the board's watchdog
	assert(rig.power:off())
	assert(rig.sdmux:set("dut"))
	assert(rig.button.boot:release())
	assert(rig.power:on())
	boot("int")
	c:clear()
	assert(c:sendline("sleep 5; echo STILL-$((6*7))"))
	assert(c:expect("STILL-42", 15000, true), "no answer after 5 s")
	print("alive-5s")
	-- a hung guest: the kicker stops
	assert(c:sendline("kill -STOP $(cat /run/rigor-watchdog.pid)"))
	local t1 = now()
	assert(c:expect("rigor-vboard: watchdog reset (no kick for 3000 ms)", 15000, true), "no watchdog reset")
	print(string.format("wd-reset %.1f", (now() - t1) / 1000))
	t0 = now()
	boot("wd")
	assert(rig.power:off())
elseif mode == "altboot" then
	-- slot A on trial with no init: the initramfs reboots (rigor.rescue=reboot), GRUB
	-- counts; at the third boot it falls back to B by itself
	assert(rig.button.boot:hold())
	assert(rig.power:on())
	for i = 1, 2 do
		local slot = c:expect("rigor%-grub: booting resin%-root(%u)", 60000)
		assert(slot, "no GRUB line")
		print("trial" .. i .. "-grub=" .. slot)
		local why = c:expect("rigor%-os: (no /sbin/rigor%-init on /dev/vda%d); rebooting", 60000)
		assert(why, "no reboot line")
		print("trial" .. i .. "-init: " .. why)
		assert(c:expect("rigor-vboard: reset (", 30000, true), "no reset")
		print("trial" .. i .. "-reset")
	end
	boot("three")
	assert(rig.power:off())
end
EOL

# 1. the interlock, and a blank card
run 0 "mux off, strap held: power on" $R lua "$T/boot.lua" interlock
has "$T/out" "^interlock: SD card not connected: mux=off" "the board reports the card is not connected"
wait_gone 1 && ok "no QEMU without the card" || nok "no QEMU without the card"
run 0 "blank card on the DUT side: power on" $R lua "$T/boot.lua" blank
has "$T/out" "^blank: card" "the board powers on into OVMF with the card as boot disk"
has "$T/out" "^blank-firmware" "OVMF finds no bootloader on the blank card"

# 2. flash the OS (the DUT goes off, the mux to the host)
run 0 "rigor flash the rigor OS image" $R flash "$IMG"
has "$T/pins" "power=0 mux=host" "flash left the DUT off and the card on the host"
# slot B of a fresh image is empty (balenaOS: an update fills it); give it a copy of slot A
# as an update would install it: relabelled resin-rootB
sfdisk -J "$T/card.img" | python3 -c 'import json,sys
for p in json.load(sys.stdin)["partitiontable"]["partitions"]: print(p["node"][-1], p["start"], p["size"])' >"$T/parts"
dd if="$T/card.img" of="$T/card.img" bs=512 skip="$(awk '$1 == 2 {print $2}' "$T/parts")" \
	seek="$(awk '$1 == 3 {print $2}' "$T/parts")" count="$(awk '$1 == 2 {print $3}' "$T/parts")" \
	conv=notrunc 2>"$T/err"
debugfs -w -R "ssv volume_name resin-rootB" "$T/card.img?offset=$(($(awk '$1 == 3 {print $2}' "$T/parts") * 512))" \
	>"$T/out" 2>&1
debugfs -R "stats" "$T/card.img?offset=$(($(awk '$1 == 3 {print $2}' "$T/parts") * 512))" 2>&1 |
	grep "volume name" >"$T/out"
has "$T/out" "resin-rootB$" "slot B on the card: a copy of slot A labelled resin-rootB (host side)"
run 0 "mux to the DUT" $R sdmux dut

# 3. power cut mid-boot: stage 2 runs with the card's boot partition mounted read-write
run 0 "power on, wait for stage 2 on the console, power off" $R lua "$T/boot.lua" cut
has "$T/out" "^cut" "the power is cut mid-boot"
# "at once": the board polls the pins every 20 ms and SIGKILLs QEMU
wait_gone 1 && ok "power cut: QEMU is gone within 1 s" || nok "power cut: QEMU is gone within 1 s"
has "$T/vboard.log" "qemu pid [0-9]+ gone \(status -9\)" "power cut: QEMU was killed (SIGKILL), not shut down"
# the card after the cut: the FAT boot partition and the ext4 partitions check clean (the
# FAT's dirty flag, set while mounted, is expected after a power cut and ignored)
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
for p in 2 3 5 6; do
	e2fsck -fn "$T/card.img?offset=$(($(awk -v p=$p '$1 == p {print $2}' "$T/parts") * 512))" \
		>>"$T/out" 2>&1 || bad="$bad $p"
done
[ -z "$bad" ] && ok "power cut: the ext4 partitions pass e2fsck -fn" ||
	nok "power cut: the ext4 partitions pass e2fsck -fn (failed:$bad)"

# 4. strap held: boot slot A from the card, flip grubenv in the guest, reboot -f (a reset)
# into slot B, poweroff -f (a halt)
s0=$(starts)
c0=$(wc -l <"$T/console.log")
run 0 "power on, slot A, flip grubenv in the guest, reboot -f, slot B, poweroff -f" $R lua "$T/boot.lua" first
cp "$T/out" "$T/first.out"
has "$T/first.out" "^one-grub=A" "OVMF started GRUB from the card; grubenv selects resin-rootA"
has "$T/first.out" "^one-facts R=root=LABEL=resin-rootA D=/dev/vda2 L=resin-rootA S=rigor-card V=rigor-internal W=none B=0=X" \
	"slot A: root=LABEL=resin-rootA, /dev/vda2 mounted; serials: vda rigor-card, vdb rigor-internal; no kicker, no rigor.boot="
has "$T/first.out" "^flip=B-1024" "rigor-bootenv in the guest set resin_root_part=B (grubenv stays 1024 bytes)"
has "$T/first.out" "^two-grub=B" "after reboot -f GRUB boots resin-rootB"
has "$T/first.out" "^two-facts R=root=LABEL=resin-rootB D=/dev/vda3 L=resin-rootB S=rigor-card" \
	"slot B: root=LABEL=resin-rootB, /dev/vda3 (label resin-rootB) mounted, disk serial rigor-card"
[ $(($(starts) - s0)) = 1 ] && [ "$(grep -c 'board halted' "$T/vboard.log")" = 1 ] &&
	ok "the reboot was a reset: QEMU started once, halted once (at the power-off)" ||
	{ cp "$T/vboard.log" "$T/out"; nok "the reboot was a reset: QEMU started once, halted once (at the power-off)"; }
tail -n +$((c0 + 1)) "$T/console.log" >"$T/first.console"
grep -q "Restarting system" "$T/first.console" && [ "$(grep -c 'BdsDxe: starting' "$T/first.console")" = 2 ] &&
	ok "the console shows the kernel restarting and the firmware starting the bootloader twice" ||
	nok "the console shows the kernel restarting and the firmware starting the bootloader twice"
has "$T/console.log" "rigor-vboard: reset \(guest-reset\)" "the console shows the board's reset line (QMP RESET)"
has "$T/first.out" "^halted power=on" "poweroff -f halts the board; its power stays on"
has "$T/vboard.log" "board halted \(QEMU exited with status 0\); power is still on" "vboard.log: halted after the guest's power-off"
i=0; while ! grep -q "POST /device/register" "$T/backend.log" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
has "$T/backend.log" "POST /device/register" "the guest agent registered with the API emulator (--api-port)"

# 5. power off kills what runs; the guest's writes are on the card
run 0 "power off" $R power off
wait_gone 2 && ok "power off: no QEMU left on the card" || nok "power off: no QEMU left on the card"
mtype -i "$T/card.img@@1M" ::/config.json >"$T/config.json" 2>&1
has "$T/config.json" '"uuid"' "the card is written by the guest (config.json has the agent's uuid)"

# 6. the board restarts under a connected console: the socket back-end reconnects; the
# board comes back with a watchdog (--watchdog-ms 3000)
cat >"$T/re.lua" <<'EOL'
assert(rig.power:off())
assert(rig.sdmux:set("off"))
assert(rig.button.boot:hold())
assert(rig.power:on())
assert(rig.console:expect("no bootable card", 10000, true), "no first message")
print("first") io.stdout:flush()
-- the board restarts now; it finds the power on and powers on again
assert(rig.console:expect("no bootable card", 15000, true), "no message after the restart")
print("second")
EOL
$R lua "$T/re.lua" >"$T/re.out" 2>"$T/re.err" </dev/null &
luapid=$!
i=0; while ! grep -q first "$T/re.out" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill $vbpid; wait $vbpid; vboard_start --watchdog-ms 3000
wait $luapid; rc=$?; luapid=
if [ $rc = 0 ] && grep -q second "$T/re.out"; then ok "the console reconnects after the board restarts"
else cat "$T/re.out" "$T/re.err" >"$T/out"; nok "the console reconnects after the board restarts (exit $rc)"; fi

# 7. strap released: the internal disk boots; the watchdog
s0=$(starts)
run 0 "strap released: boot the internal disk; stop the watchdog kicker; watchdog reset; boot again" \
	$R lua "$T/boot.lua" internal
cp "$T/out" "$T/internal.out"
has "$T/internal.out" "^int-facts R=root=LABEL=resin-rootA D=/dev/vda2 L=resin-rootA S=rigor-internal V=rigor-card W=[0-9]+ " \
	"strap released: the internal disk boots (vda rigor-internal, the card second: vdb rigor-card); the kicker runs"
has "$T/vboard.log" "watchdog armed \(first kick" "the kicker's first byte armed the board's watchdog"
has "$T/internal.out" "^alive-5s" "no watchdog reset while the kicker runs (5 s with --watchdog-ms 3000)"
has "$T/internal.out" "^wd-reset ([2-9]|1[0-4])\." "kicker stopped (kill -STOP): the board resets the guest 2 to 4 s later (last kick + 3000 ms)"
has "$T/vboard.log" "watchdog reset \(no kick for 3000 ms\)" "vboard.log: the watchdog reset"
has "$T/internal.out" "^wd-facts R=root=LABEL=resin-rootA .*S=rigor-internal V=rigor-card W=[0-9]+ " \
	"after the watchdog reset the internal disk boots again, its kicker runs again"
[ $(($(starts) - s0)) = 1 ] && ok "the watchdog reset is a reset: one QEMU for the power-on" ||
	{ cp "$T/vboard.log" "$T/out"; nok "the watchdog reset is a reset: one QEMU for the power-on"; }
[ "$(grep -c 'watchdog reset' "$T/console.log")" = 1 ] &&
	ok "one watchdog reset: the chip is disarmed until the rebooted guest kicks it again" ||
	nok "one watchdog reset: the chip is disarmed until the rebooted guest kicks it again"

# 8. unattended rollback (altboot): from the host, break slot A's init (debugfs) and put A
# on trial in grubenv (grub-editenv on a copy, mcopy back); one power-on: the board resets
# itself until GRUB gives up on A
run 0 "mux to the host" $R sdmux host
mtype -i "$T/card.img@@1M" ::/EFI/BOOT/grubenv >"$T/grubenv" 2>"$T/err"
grub-editenv "$T/grubenv" list >"$T/out" 2>&1
has "$T/out" "^resin_root_part=B$" "grub-editenv reads the guest's grubenv from the card (resin_root_part=B)"
grub-editenv "$T/grubenv" set resin_root_part=A upgrade_available=1 bootcount=0 &&
	mcopy -o -i "$T/card.img@@1M" "$T/grubenv" ::/EFI/BOOT/grubenv && ok "grubenv on the card: slot A on trial" ||
	nok "grubenv on the card: slot A on trial"
a_off=$(($(awk '$1 == 2 {print $2}' "$T/parts") * 512))
debugfs -w -R "rm /sbin/rigor-init" "$T/card.img?offset=$a_off" >"$T/out" 2>&1
debugfs -R "stat /sbin/rigor-init" "$T/card.img?offset=$a_off" >"$T/out" 2>&1
has "$T/out" "File not found" "resin-rootA has no /sbin/rigor-init (debugfs -w)"
run 0 "mux to the DUT" $R sdmux dut
s0=$(starts)
run 0 "altboot: power on; A reboots twice by itself, GRUB falls back to B" $R lua "$T/boot.lua" altboot
cp "$T/out" "$T/altboot.out"
has "$T/altboot.out" "^trial1-grub=A" "trial boot 1 of resin-rootA"
has "$T/altboot.out" "^trial1-init: no /sbin/rigor-init on /dev/vda2" "the initramfs: 'no /sbin/rigor-init on /dev/vda2; rebooting'"
has "$T/altboot.out" "^trial2-reset" "the guest's reboot is a reset, twice"
has "$T/altboot.out" "^trial2-grub=A" "trial boot 2 of resin-rootA"
has "$T/altboot.out" "^three-grub=B" "the third boot of the trial: GRUB boots the other slot, resin-rootB"
has "$T/altboot.out" "^three-facts R=root=LABEL=resin-rootB D=/dev/vda3" "resin-rootB is up after the unattended rollback"
[ $(($(starts) - s0)) = 1 ] && ok "the rollback needed no power cycle: one QEMU for the whole power-on" ||
	{ cp "$T/vboard.log" "$T/out"; nok "the rollback needed no power cycle: one QEMU for the whole power-on"; }
run 0 "mux to the host" $R sdmux host
mtype -i "$T/card.img@@1M" ::/EFI/BOOT/grubenv >"$T/grubenv" 2>"$T/err"
grub-editenv "$T/grubenv" list >"$T/out" 2>&1
sort "$T/out" | tr '\n' ' ' >"$T/env1"
# (GRUB sets rollback_altboot=1; slot B's rigor-rollback altboot clears it again)
has "$T/env1" "^bootcount=0 resin_root_part=B rollback_altboot=[01] upgrade_available=0 $" \
	"GRUB saved the fallback in grubenv (save_env on FAT): B, no trial"

# 9. the board exits cleanly on SIGTERM, taking a running QEMU with it
run 0 "mux to the DUT" $R sdmux dut
run 0 "power on" $R power on
i=0; while [ -z "$(qemu_pids)" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -n "$(qemu_pids)" ] && ok "QEMU is running again" || nok "QEMU is running again"
kill $vbpid; wait $vbpid; rc=$?; vbpid=
[ $rc = 0 ] && ok "rigor-vboard exits 0 on SIGTERM" || nok "rigor-vboard exits 0 on SIGTERM (got $rc)"
wait_gone 1 && ok "no QEMU left behind after SIGTERM" || nok "no QEMU left behind after SIGTERM"
[ ! -e "$T/console" ] && ok "its console socket is removed" || nok "its console socket is removed"
echo "# seconds to the login prompt (power-on / reboot -f / internal power-on / after the watchdog reset /" \
	"power-on with two failed trial boots):" \
	$(sed -n 's/^[a-z]*-login //p' "$T/first.out" "$T/internal.out" "$T/altboot.out")
tap_done
