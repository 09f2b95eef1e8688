#!/bin/sh
# SPDX-License-Identifier: MIT
# rigor flash and rig:flash on the sim rig: the interlock around flashing, a bit-identical
# card, boot-partition files injected and read back, refusals. Prints TAP.
T=$(mktemp -d /tmp/rigor-flashrig-XXXXXX)
. host/tests/tap.sh
export RIGOR_STATE_DIR=$T/state
trap 'rm -rf "$T"' EXIT
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
run 3 "a truncated image fails, never reports success" $R flash "$T/trunc.img.xz"
if grep -q "^flashed" "$T/out"; then nok "no success line for a truncated image"; else ok "no success line for a truncated image"; fi
run 2 "--target without --force is refused" $RIGOR flash "$T/os.img.xz" --target "$T/other"
has "$T/err" "add --force" "refusal says what to do"
truncate -s 20M "$T/other"
run 0 "--target PATH --force flashes a file directly" $RIGOR flash "$T/os.img.xz" --target "$T/other" --force
run 2 "no image" $R flash
run 2 "bad --inject" $R flash "$T/os.img.xz" --inject nonsense
tap_done
