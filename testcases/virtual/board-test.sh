# SPDX-License-Identifier: MIT
# Shared by the board tests (test-vboard.sh), which start rigfw-sim, the API emulator,
# rigor-vboard and a rigor script themselves. Source after setting $T and sourcing
# host/tests/tap.sh; set simpid, bepid, vbpid and luapid as the processes start.
simpid=
vbpid=
bepid=
luapid=
board_cleanup() {
	# by PID only: the script, the board (it kills its QEMU), then the rig board and the API
	for p in $luapid $vbpid $simpid $bepid; do
		kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	if [ "$fail" = 0 ] && [ -z "$RIGOR_VBOARD_KEEP" ]; then rm -rf "$T"; else echo "# logs kept in $T"; fi
}
trap board_cleanup EXIT
trap 'exit 143' TERM INT
skip() { echo "ok 1 # SKIP $1"; echo "1..1"; exit 0; }
