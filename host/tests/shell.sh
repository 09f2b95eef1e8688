#!/bin/sh
# SPDX-License-Identifier: MIT
# rigor.shell through a real console: a `socket` console whose far end is
# host/tests/fake_dut.py (a real shell on a pty behind a login prompt, with kernel noise,
# byte-by-byte output, line-end variants, control sequences and reboots injected on
# demand). host/tests/shell_api.lua does the checks, one scenario per fake DUT. Prints TAP.
T=$(mktemp -d /tmp/rigor-shell-XXXXXX)
. host/tests/tap.sh
export RIGOR_STATE_DIR=$T/state
pids=
trap 'for p in $pids; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"' EXIT

if ! command -v busybox >/dev/null || ! command -v python3 >/dev/null; then
	echo "ok 1 # SKIP busybox and python3 are needed"; echo "1..1"; exit 0
fi

# scenario NAME FAKE_DUT_ARGS...
scenario() {
	name=$1
	shift
	: >"$T/$name.ctl"
	python3 host/tests/fake_dut.py "$T/$name.sock" "$T/$name.ctl" --log "$T/$name.in" "$@" \
		>"$T/$name.fake.out" 2>"$T/$name.fake.err" &
	pid=$!
	pids="$pids $pid"
	wait_for "$T/$name.sock"
	printf 'rig {\n  name = "%s",\n  console = socket { path = "%s" },\n}\n' "$name" "$T/$name.sock" >"$T/$name.rig.lua"
	mkdir -p "$T/$name.d"
	$RIGOR --rig "$T/$name.rig.lua" lua host/tests/shell_api.lua "$name" "$T/$name.ctl" "$T/$name.in" "$T/$name.d" \
		>"$T/$name.out" 2>"$T/$name.err"
	rc=$?
	tap_lua <"$T/$name.out"
	if [ $rc = 0 ]; then ok "scenario $name: shell_api.lua exits 0"; else
		cat "$T/$name.err" "$T/$name.fake.err" >"$T/out"; : >"$T/err"; nok "scenario $name: shell_api.lua exits 0 (got $rc)"; fi
	kill $pid 2>/dev/null
}

scenario login --style rigor --start login
scenario shell --style rigor --start shell
if command -v bash >/dev/null; then
	scenario debian --style debian --start login
else
	n=$((n + 1)); echo "ok $n # SKIP no bash for the Debian-style DUT"
fi
tap_done
