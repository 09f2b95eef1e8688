#!/bin/sh
# SPDX-License-Identifier: MIT
# The virtual board as a real computer (issue 10, first step): rigor-vboard --firmware ovmf
# powers on into Debian's OVMF, which starts GRUB from the card's resin-boot
# (/EFI/BOOT/BOOTX64.EFI of $(BUILD)/os/rigor-os-efi-1.0.img, make os-image-efi); grub.cfg
# reads grubenv and boots resin-rootA or resin-rootB. Flash, boot to the login prompt, check
# the slot (/proc/cmdline root=, the mounted root) and the boot disk's serial number; flip
# grubenv to the other slot from inside the guest (rigor-bootenv) and `reboot -f`: the
# reboot is a reset (same QEMU, no halt), the other slot comes up; `poweroff -f` halts the
# board with power on. Then an unattended rollback: with power off, slot A loses its init
# (debugfs -w) and goes on trial in grubenv (grub-editenv on a copy, mcopy); one power-on:
# A panics, the kernel resets the board (panic=-1), twice, and GRUB falls back to B and
# records it in grubenv (save_env). Prints TAP; SKIPs without
# qemu-system-x86_64, OVMF, grub-editenv or the EFI image. RIGOR_VBOARD_KEEP=1 keeps the
# scratch directory and its logs.
T=$(mktemp -d /tmp/rigor-vboard-efi-XXXXXX)
. host/tests/tap.sh
SIM=$BUILD/firmware/host/rigfw-sim
IMG=$BUILD/os/rigor-os-1.0.img
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
export RIGOR_STATE_DIR=$T/state MTOOLS_SKIP_CHECK=1
. testcases/virtual/board-test.sh
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
[ -f "$OVMF_CODE" ] && [ -f "$OVMF_VARS" ] || skip "no OVMF ($OVMF_CODE; Debian package ovmf)"
[ -f "$IMG" ] || skip "no EFI OS image $IMG (make os-image-efi)"
for t in mtype mcopy grub-editenv debugfs sfdisk python3; do command -v $t >/dev/null || skip "$t not installed"; done
[ -x "$SIM" ] || { echo "not ok 1 - $SIM not built"; echo "1..1"; exit 1; }

# the QEMU processes running on our card, by PID (matched on their own command line)
qemu_pids() {
	for d in /proc/[0-9]*; do
		{ tr '\0' ' ' <"$d/cmdline"; } 2>/dev/null | grep -q "qemu-system-x86_64 .*file=$T/card.img" &&
			echo "${d#/proc/}"
	done
}

truncate -s 256M "$T/card.img"
$SIM --link unix:$T/link --control unix:$T/ctl --state $T/pins >"$T/sim.log" 2>&1 &
simpid=$!
wait_for $T/ctl
testcases/backend/rigor-backend --port 0 --port-file $T/api.port --state $T/api.json -v \
	>/dev/null 2>"$T/backend.log" &
bepid=$!
wait_for $T/api.port
port=$(cat $T/api.port 2>/dev/null)
testcases/virtual/rigor-vboard --state $T/pins --card $T/card.img --console $T/console \
	--api-port "${port:-0}" --log "$T/console.log" --firmware ovmf \
	>>"$T/vboard.out" 2>>"$T/vboard.log" &
vbpid=$!
wait_for $T/console
cat >"$T/virtual.lua" <<EOR
rig {
  name = "virtual",
  device_type = "qemux86-64",
  capabilities = { "sd" },
  power = rigfw { link = "unix:$T/link", min_off_ms = 50 },
  sdmux = rigfw { link = "unix:$T/link" },
  console = socket { path = "$T/console" },
  storage = file { path = "$T/card.img" },
}
EOR
R="$BUILD/rigor --rig $T/virtual.lua"

run 0 "rigor flash the UEFI A/B image" $R flash "$IMG"
run 0 "mux to the DUT" $R sdmux dut

# One boot: GRUB's line names the slot, then the login prompt; in the shell the kernel
# command line, the mounted root's device and label, and the boot disk's serial number.
cat >"$T/boot.lua" <<'EOL'
local c = rig.console
local now = require("rigor.core").now_ms
local t0
local function boot(tag)
	local slot = c:expect("rigor%-grub: booting resin%-root(%u)", 90000)
	assert(slot, "no GRUB line")
	print(tag .. "-grub=" .. slot)
	assert(c:expect("rigor-os login: ", 90000, true), "no login prompt")
	print(string.format("%s-login %.1f", tag, (now() - t0) / 1000))
	assert(c:sendline("root"))
	assert(c:expect("root@[%w-]+:/# ", 10000), "no shell prompt")
	c:clear()
	assert(c:sendline("echo R=$(grep -o 'root=[^ ]*' /proc/cmdline) D=$(awk '$2==\"/\"{print $1}' /proc/mounts)" ..
		" L=$(dd if=$(awk '$2==\"/\"{print $1}' /proc/mounts) bs=1 skip=1144 count=16 2>/dev/null | tr -d '\\000')" ..
		" S=$(cat /sys/block/vda/serial) B=$(grep -c rigor.boot= /proc/cmdline)=X"))
	local line = c:expect("(R=[^\r\n]*=X)", 10000)
	assert(line, "no answer from the shell")
	print(tag .. "-facts " .. line)
end
if arg[1] == "first" then
	t0 = now()
	assert(rig.power:on())
	boot("one")
	-- flip the slot from inside the guest: rigor-bootenv rewrites grubenv on the mounted
	-- resin-boot as grub-editenv would (1024 bytes)
	c:clear()
	assert(c:sendline("rigor-bootenv set resin_root_part=B && echo FLIP-$(rigor-bootenv get resin_root_part)-$(wc -c </mnt/boot/EFI/BOOT/grubenv)"))
	local flip = c:expect("FLIP%-(%u%-%d+)", 10000)
	print("flip=" .. tostring(flip))
	t0 = now()
	assert(c:sendline("reboot -f"))
	boot("two")
	assert(c:sendline("poweroff -f"))
	assert(c:expect("board halted", 60000, true), "no halt")
	print("halted power=" .. tostring(rig.power:state()))
elseif arg[1] == "altboot" then
	-- slot A on trial with no init: each boot of A panics, the kernel resets the board
	-- (panic=-1), GRUB counts; at the third boot it falls back to B by itself
	t0 = now()
	assert(rig.power:on())
	for i = 1, 2 do
		local slot = c:expect("rigor%-grub: booting resin%-root(%u)", 90000)
		assert(slot, "no GRUB line")
		print("trial" .. i .. "-grub=" .. slot)
		assert(c:expect("Kernel panic", 90000, true), "no panic")
		print("trial" .. i .. "-panic")
		assert(c:expect("rigor-vboard: reset (", 30000, true), "no reset")
		print("trial" .. i .. "-reset")
	end
	boot("three")
	assert(rig.power:off())
end
EOL

run 0 "power on, boot slot A, flip grubenv in the guest, reboot -f, boot slot B, poweroff -f" $R lua "$T/boot.lua" first
cp "$T/out" "$T/first.out"
has "$T/first.out" "^one-grub=A" "OVMF started GRUB from the card; grubenv selects resin-rootA"
has "$T/first.out" "^one-facts R=root=LABEL=resin-rootA D=/dev/vda2 L=resin-rootA S=rigor-card B=0=X" \
	"slot A: root=LABEL=resin-rootA, /dev/vda2 (label resin-rootA) mounted, disk serial rigor-card, no rigor.boot="
has "$T/first.out" "^flip=B-1024" "rigor-bootenv in the guest set resin_root_part=B (grubenv stays 1024 bytes)"
has "$T/first.out" "^two-grub=B" "after reboot -f GRUB boots resin-rootB"
has "$T/first.out" "^two-facts R=root=LABEL=resin-rootB D=/dev/vda3 L=resin-rootB S=rigor-card B=0=X" \
	"slot B: root=LABEL=resin-rootB, /dev/vda3 (label resin-rootB) mounted, disk serial rigor-card"
# a reset, not a restart: one QEMU from power-on to the guest's power-off
[ "$(grep -c 'qemu pid [0-9]* started' "$T/vboard.log")" = 1 ] &&
	[ "$(grep -c 'board halted' "$T/vboard.log")" = 1 ] &&
	ok "the reboot was a reset: QEMU started once, halted once (at the power-off)" ||
	{ cp "$T/vboard.log" "$T/out"; nok "the reboot was a reset: QEMU started once, halted once (at the power-off)"; }
grep -q "Restarting system" "$T/console.log" && [ "$(grep -c 'BdsDxe: starting' "$T/console.log")" = 2 ] &&
	ok "the console shows the kernel restarting and the firmware starting the bootloader twice" ||
	nok "the console shows the kernel restarting and the firmware starting the bootloader twice"
has "$T/vboard.log" "reset \(guest-reset\)" "vboard.log: the board saw the guest's reset (QMP RESET event)"
has "$T/console.log" "rigor-vboard: reset \(guest-reset\)" "the console shows the board's reset line"
has "$T/first.out" "^halted power=on" "poweroff -f halts the board; its power stays on"
has "$T/vboard.log" "board halted \(QEMU exited with status 0\); power is still on" "vboard.log: halted after the guest's power-off"

run 0 "power off" $R power off
i=0; while [ -n "$(qemu_pids)" ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
[ -z "$(qemu_pids)" ] && ok "power off kills QEMU" || nok "power off kills QEMU"

# Unattended rollback (altboot): from the host, break slot A's init (debugfs) and put A on
# trial in grubenv (grub-editenv on a copy, mcopy back); power on once and let the board
# reset itself until GRUB gives up on A.
run 0 "mux to the host" $R sdmux host
mtype -i "$T/card.img@@1M" ::/EFI/BOOT/grubenv >"$T/grubenv" 2>"$T/err"
grub-editenv "$T/grubenv" list >"$T/out" 2>&1
has "$T/out" "^resin_root_part=B$" "grub-editenv reads the guest's grubenv from the card (resin_root_part=B)"
grub-editenv "$T/grubenv" set resin_root_part=A upgrade_available=1 bootcount=0 &&
	mcopy -o -i "$T/card.img@@1M" "$T/grubenv" ::/EFI/BOOT/grubenv && ok "grubenv on the card: slot A on trial" ||
	nok "grubenv on the card: slot A on trial"
a_off=$(sfdisk -J "$T/card.img" | python3 -c 'import json,sys
print([p["start"] for p in json.load(sys.stdin)["partitiontable"]["partitions"] if p["node"].endswith("2")][0] * 512)')
debugfs -w -R "rm /sbin/rigor-init" "$T/card.img?offset=$a_off" >"$T/out" 2>&1
debugfs -R "stat /sbin/rigor-init" "$T/card.img?offset=$a_off" >"$T/out" 2>&1
has "$T/out" "File not found" "resin-rootA has no /sbin/rigor-init (debugfs -w)"
run 0 "mux to the DUT" $R sdmux dut
run 0 "altboot: power on; A panics twice, the board resets itself, GRUB falls back to B" $R lua "$T/boot.lua" altboot
cp "$T/out" "$T/altboot.out"
has "$T/altboot.out" "^trial1-grub=A" "trial boot 1 of resin-rootA"
has "$T/altboot.out" "^trial2-reset" "A's missing init: kernel panic, reset by the guest, twice"
has "$T/altboot.out" "^trial2-grub=A" "trial boot 2 of resin-rootA"
has "$T/altboot.out" "^three-grub=B" "the third boot of the trial: GRUB boots the other slot, resin-rootB"
has "$T/altboot.out" "^three-facts R=root=LABEL=resin-rootB D=/dev/vda3" "resin-rootB is up after the unattended rollback"
[ "$(grep -c 'qemu pid [0-9]* started' "$T/vboard.log")" = 2 ] &&
	ok "the rollback needed no power cycle: one QEMU for the whole power-on" ||
	{ cp "$T/vboard.log" "$T/out"; nok "the rollback needed no power cycle: one QEMU for the whole power-on"; }
run 0 "mux to the host" $R sdmux host
mtype -i "$T/card.img@@1M" ::/EFI/BOOT/grubenv >"$T/grubenv" 2>"$T/err"
grub-editenv "$T/grubenv" list >"$T/out" 2>&1
sort "$T/out" | tr '\n' ' ' >"$T/env1"
has "$T/env1" "^bootcount=0 resin_root_part=B rollback_altboot=1 upgrade_available=0 $" \
	"GRUB saved the fallback in grubenv (save_env on FAT): B, no trial, rollback_altboot=1"
echo "# seconds to the login prompt (power-on / reboot -f / power-on with two failed trial boots):" \
	$(sed -n 's/^[a-z]*-login //p' "$T/first.out" "$T/altboot.out")
tap_done
