#!/bin/sh
# SPDX-License-Identifier: MIT
# rigor flash and rig:flash on the sim rig: the interlock around flashing, a bit-identical
# card, boot-partition files injected and read back, refusals. Prints TAP.
T=$(mktemp -d /tmp/rigor-flashrig-XXXXXX)
. host/tests/tap.sh
export RIGOR_STATE_DIR=$T/state
loop=
trap '[ -n "$loop" ] && losetup -d "$loop" 2>/dev/null; rm -rf "$T"' EXIT
cat >"$T/rig.lua" <<EOR
rig {
  name = "flashrig",
  device_type = "raspberrypi4-64",
  power = sim { min_off_ms = 50 },
  sdmux = sim {},
  storage = file { path = "$T/card" },
}
EOR
R="$RIGOR --rig $T/rig.lua"
truncate -s 24M "$T/card"

# a balenaOS-like image: MBR, FAT 'resin-boot', some data after it
truncate -s 16M "$T/os.img"
printf 'label: dos\nstart=2048, size=16384, type=c\nstart=18432, type=83\n' |
	sfdisk -q --no-tell-kernel "$T/os.img"
mkfs.vfat -n resin-boot --offset 2048 "$T/os.img" 8192 >/dev/null 2>&1
printf 'kernel=1\n' >"$T/config.txt"
mcopy -i "$T/os.img@@1M" "$T/config.txt" ::/config.txt
head -c 65536 /dev/urandom | dd of="$T/os.img" bs=1M seek=10 conv=notrunc 2>/dev/null
xz -T1 -k -c "$T/os.img" >"$T/os.img.xz"

$R sdmux dut >/dev/null && $R power on >/dev/null
run 0 "rigor flash an xz image on a powered rig" $R flash "$T/os.img.xz"
has "$T/out" "flashed .*os.img.xz \(xz\) to $T/card" "summary names image, format and target"
if cmp -n 16777216 "$T/os.img" "$T/card" >/dev/null; then ok "card is bit-identical to the image"; else nok "card is bit-identical"; fi
$R power status >"$T/ps" 2>&1
has "$T/ps" "^power: off" "flashing switched the DUT off first"
$R sdmux status >"$T/ms" 2>&1
has "$T/ms" "^sdmux: host" "the card stays on the host side"

run 0 "re-flash writes only what differs (--json)" $R flash "$T/os.img.xz" --json
has "$T/out" '"written":0,' "nothing rewritten on an identical card"

cat >"$T/f.lua" <<'EOF2'
local st = assert(rig:flash(arg[1], { files = { ["config.json"] = '{"hostname":"dut-1"}' } }))
assert(st.format == "xz", st.format)
assert(st.files == 1 and st.partition == "resin-boot", tostring(st.partition))
assert(st.verified > 0 and st.seconds.total >= 0)
local cj = assert(rig:read_file("resin-boot", "/config.json"))
assert(cj == '{"hostname":"dut-1"}', cj)
assert(rig:read_file("resin-boot", "/config.txt") == "kernel=1\n")
local ok, msg = rig:read_file("resin-boot", "/nope.txt")
assert(ok == nil and msg, "missing file is nil, msg")
print("lua-flash-ok")
EOF2
run 0 "rig:flash with files, then read them back" $R lua "$T/f.lua" "$T/os.img.xz"
has "$T/out" "lua-flash-ok" "config.json injected and verified"

sz=$(stat -c %s "$T/os.img.xz")
head -c $((sz / 2)) "$T/os.img.xz" >"$T/trunc.img.xz"
run 2 "a truncated image is bad input (exit 2), never reports success" $R flash "$T/trunc.img.xz"
if grep -q "^flashed" "$T/out"; then nok "no success line for a truncated image"; else ok "no success line for a truncated image"; fi
if cmp -s -n 1048576 "$T/card" /dev/zero; then ok "the card the failed flash wrote to cannot boot"; else nok "the failed flash invalidated the card"; fi
run 0 "storage status after the failure" $R storage status
has "$T/out" "^card: invalidated: flashing '.*trunc.img.xz' failed .*truncated xz stream" "storage status says why the card does not boot"
$R storage status --json >"$T/out" 2>"$T/err"
has "$T/out" '"card":"invalidated",.*"error":"truncated xz' "storage status --json too"
run 2 "a missing image is bad input (rig mode)" $R flash "$T/nope.img.xz"
run 2 "a missing image is bad input (--target)" $RIGOR flash "$T/nope.img.xz" --target "$T/card" --force
run 2 "a directory as the image" $R flash "$T"
run 2 "an empty image" $R flash /dev/null
has "$T/err" "character device" "/dev/null is refused as a character device"
run 0 "a good flash after the failure" $R flash "$T/os.img.xz"
run 0 "storage status after it" $R storage status
has "$T/out" "^card: flashed with '.*os.img.xz'" "a successful flash clears the failure"
run 2 "a missing device under /dev is not created" $RIGOR flash "$T/os.img.xz" --target /dev/rigor-no-card --force
has "$T/err" "no such device '/dev/rigor-no-card'" "it says no such device"
if [ -e /dev/rigor-no-card ]; then nok "nothing created under /dev"; rm -f /dev/rigor-no-card; else ok "nothing created under /dev"; fi
run 2 "a missing file target needs --create" $RIGOR flash "$T/os.img.xz" --target "$T/new.img" --force
has "$T/err" "add --create" "the refusal says what to do"
run 0 "--create writes a new image file" $RIGOR flash "$T/os.img.xz" --target "$T/new.img" --force --create
if cmp -s "$T/os.img" "$T/new.img"; then ok "the new file is the image"; else nok "the new file is the image"; fi
run 2 "--create is for --target only" $R flash "$T/os.img.xz" --create
run 2 "--target without --force is refused" $RIGOR flash "$T/os.img.xz" --target "$T/other"
has "$T/err" "add --force" "refusal says what to do"
truncate -s 20M "$T/other"
run 0 "--target PATH --force flashes a file directly" $RIGOR flash "$T/os.img.xz" --target "$T/other" --force
# the storage role finds the card reader's disk through udev, by USB identity
. host/tests/udevfs.sh
FS=$T/fs
HUB=pci0000:00/0000:00:14.0/usb2
SCSI=$HUB/2-3/2-3:1.0/host0/target0:0:0/0:0:0:0
udev_usbdev "$FS/sys/devices/$HUB/2-3"
printf '05e3\n' >"$FS/sys/devices/$HUB/2-3/idVendor"
printf '0749\n' >"$FS/sys/devices/$HUB/2-3/idProduct"
printf 'SD9\n' >"$FS/sys/devices/$HUB/2-3/serial"
udev_usbif "$FS/sys/devices/$HUB/2-3/2-3:1.0" 00
udev_node "$FS" block sda "$SCSI/block/sda" DEVTYPE=disk DEVNAME=sda ID_SERIAL_SHORT=SD9-udev
udev_node "$FS" block sda1 "$SCSI/block/sda/sda1" DEVTYPE=partition DEVNAME=sda1
printf '1\n' >"$FS/sys/devices/$SCSI/block/sda/sda1/partition"
U=$(udev_env "$FS")
for id in 'usb_serial = "SD9"' 'usb_path = "2-3"' 'vid_pid = "05e3:0749"' \
	'udev = { ID_SERIAL_SHORT = "SD9-udev" }'; do
	cat >"$T/usb.lua" <<EOR
rig { name = "usbrig", storage = usb { $id } }
EOR
	run 0 "storage found by $id" $U $RIGOR --rig "$T/usb.lua" storage status
	has "$T/out" "^target: /dev/sda$" "$id resolves the whole disk, not the partition"
done
has "$T/out" "^resolved: .*05e3:0749" "storage status says why"
cat >"$T/usb.lua" <<EOR
rig { name = "usbrig", storage = usb { usb_serial = "NOPE" } }
EOR
run 3 "an absent card reader is an infrastructure error" $U $RIGOR --rig "$T/usb.lua" storage status
has "$T/err" "NOPE" "the message names what was searched"
cat >"$T/usb.lua" <<EOR
rig { name = "usbrig", storage = usb {} }
EOR
run 2 "a usb storage part must name the reader" $RIGOR --rig "$T/usb.lua" storage status

# a non-removable disk (a loop device) is refused unless the rig file allows it
truncate -s 20M "$T/loop.img"
if [ "$(id -u)" = 0 ] && loop=$(losetup -f --show "$T/loop.img" 2>/dev/null); then
	cat >"$T/fixed.lua" <<EOR
rig { name = "fixedrig", storage = file { path = "$loop" } }
EOR
	run 2 "a fixed disk is refused by default" $RIGOR --rig "$T/fixed.lua" flash "$T/os.img.xz"
	has "$T/err" "not a removable .*add allow_fixed = true to the storage entry" "the refusal says why and what to do"
	cat >"$T/fixed.lua" <<EOR
rig { name = "fixedrig", storage = file { path = "$loop", allow_fixed = true } }
EOR
	run 0 "allow_fixed = true lets the rig flash it" $RIGOR --rig "$T/fixed.lua" flash "$T/os.img.xz"
	if cmp -n 16777216 "$T/os.img" "$loop" >/dev/null; then ok "loop device holds the image"; else nok "loop device holds the image"; fi
else
	n=$((n + 1)); echo "ok $n - # SKIP no loop devices (needs root)"
fi

run 2 "no image" $R flash
run 2 "bad --inject" $R flash "$T/os.img.xz" --inject nonsense
tap_done
