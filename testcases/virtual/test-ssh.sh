#!/bin/sh
# SPDX-License-Identifier: MIT
# SSH to the test OS on the virtual rig: scripts/virtual-rig starts rigs/virtual.lua
# (rigor-vboard --net: the guest's SSH server forwarded from a loopback port, the NIC link
# as the uplink switch), then testcases/ssh.lua boots the image once per mode:
#  - production (config.json os.sshKeys with one key, developmentMode false): that key logs
#    in, another is refused (kind "auth"); commands, stderr, exit status and a file both
#    ways; the uplink cut makes SSH fail and its restore brings it back; a reboot under a
#    running command ends the call, and the host key survives the reboot;
#  - development (no keys, developmentMode true): root logs in without a password.
# Then the board's network socket answers without rigor: address, status, a bad request.
# Prints TAP; SKIPs without qemu-system-x86_64, OVMF, ssh or the OS image (make os-image).
# RIGOR_VBOARD_KEEP=1 keeps the scratch directory and its logs.
T=$(mktemp -d "${TMPDIR:-/tmp}/rigor-vssh-XXXXXX")
. host/tests/tap.sh
D=$T/rig
IMG=$BUILD/os/rigor-os-1.0.img
export RIGOR_STATE_DIR=$T/state MTOOLS_SKIP_CHECK=1
cleanup() {
	[ -f "$D/env" ] && BUILD=$BUILD scripts/virtual-rig stop "$D" >/dev/null 2>&1
	if [ "$fail" = 0 ] && [ -z "$RIGOR_VBOARD_KEEP" ]; then rm -rf "$T"; else echo "# logs kept in $T"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

skip() { echo "ok 1 # SKIP $1"; echo "1..1"; exit 0; }
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || skip "no OVMF (Debian package ovmf)"
[ -f "$IMG" ] || skip "no OS image $IMG (make os-image; kernel download unavailable?)"
for t in ssh ssh-keygen mtype mcopy sfdisk python3; do command -v $t >/dev/null || skip "$t not installed"; done

in_env() { (. "$D/env" && export RIGOR_STATE_DIR="$T/state" && exec "$@"); }
# ask REQUEST: one request on the board's network socket, its answer line on stdout
ask() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode()+b"\n"); print(s.makefile().readline().strip())' "$D/net" "$1"; }

run 0 "virtual-rig start" env BUILD="$BUILD" scripts/virtual-rig start "$D" virtual
addr=$(ask address)
case $addr in "ok 127.0.0.1 "[0-9]*) ok "the board's network socket gives the forwarded SSH port ($addr)" ;;
*) echo "# got '$addr'"; nok "the board's network socket gives the forwarded SSH port" ;; esac
[ "$(ask status)" = "ok up" ] && ok "the link starts up" || nok "the link starts up"
case $(ask frobnicate) in "error unknown request"*) ok "an unknown request is answered with an error" ;;
*) nok "an unknown request is answered with an error" ;; esac

# generous: two boots and a reboot of QEMU without KVM on a shared machine
t0=$(date +%s)
in_env "$RIGOR" --rig rigs/virtual.lua run --tap-version 13 --tap "$T/ssh.tap" --artifacts "$T/artifacts" \
	testcases/ssh.lua >"$T/out" 2>"$T/err"
rc=$?
t1=$(date +%s)
if [ $rc = 0 ]; then ok "testcases/ssh.lua passes on the virtual rig ($((t1 - t0)) s)"; else
	cat "$T"/artifacts/*/*.log >>"$T/out" 2>/dev/null; nok "testcases/ssh.lua passes on the virtual rig (exit $rc)"; fi
for c in "production mode: os.sshKeys log in, nothing else does" "development mode: root logs in without a password, os.sshKeys too"; do
	if grep -E "^ *ok [0-9]+ - " "$T/ssh.tap" 2>/dev/null | grep -qF -- "$c"; then ok "case: $c"; else
		cp "$T/ssh.tap" "$T/out" 2>/dev/null; nok "case: $c"; fi
done
[ "$(ask status)" = "ok up" ] && ok "the link is up after the suite (rig:safe() restores a cut)" || nok "the link is up after the suite"
has "$D/vboard.log" "network: link down" "the board saw the cut"
has "$D/vboard.log" "network: link up" "  ... and the restore"
tap_done
