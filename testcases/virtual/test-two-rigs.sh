#!/bin/sh
# SPDX-License-Identifier: MIT
# Two virtual rigs at the same time: rigs/virtual.lua and rigs/virtual-2.lua, each started
# by scripts/virtual-rig in its own directory (own rigfw-sim and link socket, card and
# internal disk, console socket, API emulator and port; own lock by rig name, in one
# shared state directory). First the flasher board's boot strap, without booting: strap
# released powers on into the internal disk, strap held into the card. Then
# testcases/flasher.lua on both rigs concurrently (flasher from the card with the boot
# strap held, power-down marker, halt, internal OS boot with the strap released): both
# pass, they overlapped in time, each console and internal disk has only its own board's
# hostname, each guest reached its own API emulator, and after `virtual-rig stop` no
# process started for either rig is left. Prints TAP; SKIPs without qemu-system-x86_64 or
# the OS images (make os-image). RIGOR_VBOARD_KEEP=1 keeps the scratch directory.
T=$(mktemp -d /tmp/rigor-2rigs-XXXXXX)
. host/tests/tap.sh
R1=$T/rig1
R2=$T/rig2
IMG=$BUILD/os/rigor-os-1.0.img
FLASHER=$BUILD/os/rigor-os-flasher-1.0.img
export RIGOR_STATE_DIR=$T/state MTOOLS_SKIP_CHECK=1
p1=
p2=
cleanup() {
	[ -n "$p1" ] && kill "$p1" 2>/dev/null && wait "$p1" 2>/dev/null
	[ -n "$p2" ] && kill "$p2" 2>/dev/null && wait "$p2" 2>/dev/null
	[ -f "$R1/env" ] && BUILD=$BUILD scripts/virtual-rig stop "$R1" >/dev/null 2>&1
	[ -f "$R2/env" ] && BUILD=$BUILD scripts/virtual-rig stop "$R2" >/dev/null 2>&1
	if [ "$fail" = 0 ] && [ -z "$RIGOR_VBOARD_KEEP" ]; then rm -rf "$T"; else echo "# logs kept in $T"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

skip() { echo "ok 1 # SKIP $1"; echo "1..1"; exit 0; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
[ -f "$IMG" ] && [ -f "$FLASHER" ] || skip "no OS images in $BUILD/os (make os-image; kernel download unavailable?)"
for t in mtype mcopy sfdisk python3; do command -v $t >/dev/null || skip "$t not installed"; done

# in_env DIR CMD...: CMD with the environment of the rig in DIR (its DIR/env)
in_env() { (d=$1; shift; . "$d/env" && export RIGOR_STATE_DIR="$T/state" && exec "$@"); }
# ours: processes of the virtual rig kinds whose command line names one of our directories
# (QEMU's guestfwd relays name the API ports instead)
ours() {
	pgrep -af 'qemu-system|rigfw-sim|rigor-backend|rigor-vboard' |
		grep -e "$T/" -e "--relay-to $port1\$" -e "--relay-to $port2\$"
}

run 0 "virtual-rig start: rig 1 (virtual)" env BUILD="$BUILD" scripts/virtual-rig start "$R1" virtual
run 0 "virtual-rig start: rig 2 (virtual-2)" env BUILD="$BUILD" scripts/virtual-rig start "$R2" virtual-2
port1=$(cat "$R1/api.port" 2>/dev/null)
port2=$(cat "$R2/api.port" 2>/dev/null)
[ -n "$port1" ] && [ -n "$port2" ] && [ "$port1" != "$port2" ] && ok "each rig has its own API emulator ($port1, $port2)" ||
	nok "each rig has its own API emulator ('$port1', '$port2')"
run 0 "rig 1 env selects rigs/virtual.lua in rig 1's directory" \
	grep -qx "export RIGOR_VIRTUAL_DIR='$R1'" "$R1/env"
run 0 "rig 2 env selects rigs/virtual-2.lua in rig 2's directory" \
	grep -qx "export RIGOR_VIRTUAL2_DIR='$R2'" "$R2/env"

# The flasher board's boot strap, no boot needed: strap released -> the (blank) internal
# disk; strap held -> the (blank) card, as the board's power-on line says.
cat >"$T/rom.lua" <<'EOL'
assert(rig.power:off())
assert(rig.sdmux:set("dut"))
assert(rig.button.boot:release())
assert(rig.power:on())
print("released: " .. assert(rig.console:expect("rigor%-vboard: power on %(OVMF%), boot disk: the ([%w ]+)", 30000)))
assert(rig.power:off())
assert(rig.button.boot:hold())
assert(rig.power:on())
print("held: " .. assert(rig.console:expect("rigor%-vboard: power on %(OVMF%), boot disk: the ([%w ]+)", 30000)))
assert(rig:safe())
EOL
run 0 "rig 1: power on with the strap released, then held" in_env "$R1" "$RIGOR" --rig rigs/virtual.lua lua "$T/rom.lua"
has "$T/out" "^released: internal disk" "strap released: the board boots the internal disk"
has "$T/out" "^held: card" "strap held: the board boots the card"

# testcases/flasher.lua on both rigs at once
start=$(date +%s)
RIGOR_OS_HOSTNAME=vdut-one in_env "$R1" "$RIGOR" --rig rigs/virtual.lua run testcases/flasher.lua \
	--quiet --json "$T/r1.json" --artifacts "$T/a1" >"$T/run1.out" 2>&1 </dev/null &
p1=$!
RIGOR_OS_HOSTNAME=vdut-two in_env "$R2" "$RIGOR" --rig rigs/virtual-2.lua run testcases/flasher.lua \
	--quiet --json "$T/r2.json" --artifacts "$T/a2" >"$T/run2.out" 2>&1 </dev/null &
p2=$!
wait $p1; rc1=$?; p1=
wait $p2; rc2=$?; p2=
secs=$(($(date +%s) - start))
# check_run N RC NAME: rigor exited 0 and the JSON report has 2 passed cases on rig NAME
check_run() {
	cp "$T/run$1.out" "$T/out"
	python3 - "$T/r$1.json" "$3" >>"$T/out" 2>&1 <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(r["rig"]["name"], r["totals"])
assert r["rig"]["name"] == sys.argv[2] and r["totals"]["passed"] == 2 and r["totals"]["cases"] == 2
EOF
	py=$?
	if [ "$2" = 0 ] && [ $py = 0 ]; then ok "rig $1 ($3): testcases/flasher.lua passes, 2 cases"
	else nok "rig $1 ($3): testcases/flasher.lua passes, 2 cases (exit $2)"; fi
}
check_run 1 $rc1 virtual
check_run 2 $rc2 virtual-2
echo "# both runs: $secs s"
# they overlapped: each suite started before the other ended
python3 - "$T/r1.json" "$T/r2.json" >"$T/out" 2>&1 <<'EOF'
import datetime, json, sys
iv = []
for f in sys.argv[1:]:
    s = json.load(open(f))["suites"][0]
    t0 = datetime.datetime.strptime(s["timestamp"], "%Y-%m-%dT%H:%M:%SZ").timestamp()
    iv.append((t0, t0 + s["duration_ms"] / 1000))
print(iv)
assert iv[0][0] < iv[1][1] and iv[1][0] < iv[0][1]
EOF
[ $? = 0 ] && ok "the two runs overlapped in time" || nok "the two runs overlapped in time"

# each console shows only its own board
has "$R1/console.log" "root@vdut-one:" "rig 1 console: its board's shell prompt (vdut-one)"
has "$R2/console.log" "root@vdut-two:" "rig 2 console: its board's shell prompt (vdut-two)"
grep -q vdut-two "$R1/console.log" && nok "rig 1 console: nothing of rig 2's board" || ok "rig 1 console: nothing of rig 2's board"
grep -q vdut-one "$R2/console.log" && nok "rig 2 console: nothing of rig 1's board" || ok "rig 2 console: nothing of rig 1's board"
has "$R1/console.log" "rigor-vboard: board halted" "rig 1 console: the board halted after the flasher"
# each internal disk holds the installed OS with its own flasher's config.json
mtype -i "$R1/internal.img@@1M" ::/config.json >"$T/i1.json" 2>&1
mtype -i "$R2/internal.img@@1M" ::/config.json >"$T/i2.json" 2>&1
has "$T/i1.json" '"hostname": *"vdut-one"' "rig 1 internal disk: config.json of rig 1's flasher"
has "$T/i2.json" '"hostname": *"vdut-two"' "rig 2 internal disk: config.json of rig 2's flasher"
# each guest's agent reached its own API emulator
has "$R1/backend.log" "/device/v3/state" "rig 1 guest reported to rig 1's API emulator"
has "$R2/backend.log" "/device/v3/state" "rig 2 guest reported to rig 2's API emulator"
[ -e "$T/state/virtual.lock" ] && [ -e "$T/state/virtual-2.lock" ] &&
	ok "one state directory, one lock per rig name" || { ls -l "$T/state" >"$T/out"; nok "one state directory, one lock per rig name"; }

# stop both: nothing of either rig is left
run 0 "virtual-rig stop: rig 1" env BUILD="$BUILD" scripts/virtual-rig stop "$R1"
run 0 "virtual-rig stop: rig 2" env BUILD="$BUILD" scripts/virtual-rig stop "$R2"
i=0; while ours >/dev/null && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
ours >"$T/out"
[ ! -s "$T/out" ] && ok "no qemu-system, rigfw-sim, rigor-backend or rigor-vboard process left" ||
	nok "no qemu-system, rigfw-sim, rigor-backend or rigor-vboard process left"
tap_done
