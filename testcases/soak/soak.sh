#!/bin/sh
# SPDX-License-Identifier: MIT
# testcases/soak/soak.sh: the soak of the virtual rig (docs/soak.md). `make soak` runs it;
# testcases/soak/test-soak.sh runs a short one in `make test`.
#
# Starts the virtual rig (scripts/virtual-rig) in $SOAK_DIR/rig, runs
# testcases/soak/soak.lua in ONE `rigor --rig rigs/virtual.lua lua` process for
# $SOAK_SECONDS (cycles of flash, mux, power, boot to the login prompt, console I/O,
# buttons and telemetry through rigfw-sim; fd and RSS of rigor, rigfw-sim, rigor-backend
# and rigor-vboard compared between the warm-up cycle and the last one), then checks:
#   - rigor exited 0 (a sanitizer build's leak report at exit makes it fail);
#   - the lock was released: `rigor who` says the rig is free and `rigor power status`
#     succeeds (it takes the lock) and says off;
#   - after `virtual-rig stop` no qemu-system, rigfw-sim, rigor-backend or rigor-vboard
#     process naming $SOAK_DIR (or the API port's relay) is left.
# Ends with "soak: PASS" or "soak: FAIL (...)"; exit 0 pass, 1 fail, 130/143 interrupted.
# Everything it started is stopped on every exit path, Ctrl-C included.
#
# Environment:
#   BUILD          build directory with rigor, rigfw-sim and os/ (default build)
#   SOAK_SECONDS   how long cycles keep starting (default 300)
#   SOAK_MIN_CYCLES, SOAK_MAX_CYCLES, SOAK_CYCLE_TIMEOUT_MS, SOAK_RSS_SLACK_KIB: soak.lua
#   SOAK_DIR       scratch directory (default $BUILD/soak; emptied first); kept after the
#                  run: rig/ (logs of the virtual rig), soak.out, rig-events.log
#   SOAK_TAP=1     TAP output (for scripts/run-tests): checks are TAP lines, the rest
#                  diagnostics; SKIPs without QEMU or the OS images
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export BUILD
RIGOR=$BUILD/rigor
SOAK_DIR=${SOAK_DIR:-$BUILD/soak}
TAP=${SOAK_TAP:-0}
IMG=$BUILD/os/rigor-os-1.0.img
R=
port=
rpid=
started=0
n=0
fail=0
nfail=0
export SOAK_SECONDS=${SOAK_SECONDS:-300}

# say LINE: a line of output (a TAP diagnostic in TAP mode)
say() { if [ "$TAP" = 1 ]; then echo "# $*"; else echo "$*"; fi; }
# check OK DESCRIPTION: one check, counted after those soak.lua printed
check() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; nfail=$((nfail + 1)); fi
}
# ours: processes of the virtual rig's kinds started for this soak: their command line
# names our directory (QEMU's guestfwd relays name the API port instead)
ours() {
	pgrep -af 'qemu-system|rigfw-sim|rigor-backend|rigor-vboard' |
		grep -e "$R/" ${port:+-e "--relay-to $port\$"}
}
stop_rig() {
	[ "$started" = 1 ] || return 0
	started=0
	scripts/virtual-rig stop "$R" >"$SOAK_DIR/stop.out" 2>&1
}
cleanup() {
	if [ -n "$rpid" ]; then
		# rigor aborts its cycle, powers the DUT off and releases the lock
		kill -INT "$rpid" 2>/dev/null
		i=0; while kill -0 "$rpid" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
		kill -KILL "$rpid" 2>/dev/null
		wait "$rpid" 2>/dev/null
		rpid=
	fi
	stop_rig
}
trap cleanup EXIT
trap 'say "soak: interrupted"; exit 130' INT
trap 'say "soak: terminated"; exit 143' TERM

skip_or_fail() {
	if [ "$TAP" = 1 ]; then echo "ok 1 # SKIP $1"; echo "1..1"; exit 0; fi
	echo "soak: FAIL ($1)"
	exit 1
}
command -v qemu-system-x86_64 >/dev/null || skip_or_fail "qemu-system-x86_64 not installed"
[ -f "$IMG" ] || skip_or_fail "no OS image $IMG (make os-image; kernel download unavailable?)"
[ -x "$RIGOR" ] || skip_or_fail "$RIGOR not built"
for t in mtype mcopy sfdisk; do command -v $t >/dev/null || skip_or_fail "$t not installed"; done

[ -d "$SOAK_DIR/rig" ] && scripts/virtual-rig stop "$SOAK_DIR/rig" >/dev/null 2>&1
rm -rf "$SOAK_DIR" && mkdir -p "$SOAK_DIR" || skip_or_fail "cannot create $SOAK_DIR"
SOAK_DIR=$(cd "$SOAK_DIR" && pwd)
R=$SOAK_DIR/rig

# A sanitizer build keeps freed memory in a quarantine (256 MiB by default) before reusing
# it: RSS grows until it is full, also in rigfw-sim, whose only allocations are stdio's
# for its state file. Exported before the rig starts so that rigfw-sim gets it too: a
# 4 MiB quarantine still catches use-after-free of recent frees, and soak.lua adds it to
# the RSS slack of the sanitized processes (rigor, rigfw-sim). No effect on other builds.
SAN_QUARANTINE_MB=4
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=$SAN_QUARANTINE_MB"
if ldd "$RIGOR" 2>/dev/null | grep -q libasan; then
	export SOAK_SAN_SLACK_KIB=$((SAN_QUARANTINE_MB * 1024 + 1024))   # + shadow pages
	say "soak: sanitizer build: RSS slack of rigor and rigfw-sim +$SOAK_SAN_SLACK_KIB KiB"
fi

if ! scripts/virtual-rig start "$R" >"$SOAK_DIR/start.out" 2>&1; then
	started=1
	sed 's/^/# /' "$SOAK_DIR/start.out"
	check 1 "virtual-rig start $R"
	echo "1..$n"
	exit 1
fi
started=1
port=$(cat "$R/api.port" 2>/dev/null)
say "$(cat "$SOAK_DIR/start.out")"

# glibc raises its mmap threshold after the first large free, and from then on keeps the
# flash engine's 4 MiB buffers on the heap: RSS then swings by tens of MiB from cycle to
# cycle with no leak. A fixed threshold maps and unmaps them every time, so RSS follows
# what is live; a leaked buffer still shows.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.mmap_threshold=131072"
export SOAK_OUT=$SOAK_DIR/soak.out SOAK_LOG=$SOAK_DIR/rig-events.log SOAK_TAP=$TAP

# One rigor process for the whole soak; in the background so that the traps run at once
# on Ctrl-C (rigor gets the terminal's SIGINT too and winds down by itself).
start=$(date +%s)
(. "$R/env" && exec "$RIGOR" --rig rigs/virtual.lua lua testcases/soak/soak.lua) </dev/null &
rpid=$!
wait $rpid
rc=$?
# an interrupted wait returns >128 while rigor still runs: the INT/TERM traps exit
while kill -0 "$rpid" 2>/dev/null; do wait $rpid; rc=$?; done
rpid=
n=$(grep -Ec '^(not )?ok ' "$SOAK_OUT" 2>/dev/null)
nfail=$(grep -c '^not ok ' "$SOAK_OUT" 2>/dev/null)
[ "$rc" = 0 ] && [ "$nfail" = 0 ] || fail=1
if [ "$rc" = 130 ] || [ "$rc" = 143 ]; then say "soak: interrupted"; exit "$rc"; fi
[ "$rc" = 0 ] && check 0 "rigor lua exited 0" || check 1 "rigor lua exited 0 (exit $rc)"

# The lock is free again and the rig answers
who=$(. "$R/env" && "$RIGOR" --rig rigs/virtual.lua who 2>&1)
case $who in *"is free"*) check 0 "lock released: $who" ;; *) check 1 "lock released: $who" ;; esac
ps=$(. "$R/env" && "$RIGOR" --rig rigs/virtual.lua power status 2>&1)
prc=$?
if [ $prc = 0 ] && echo "$ps" | grep -q 'off'; then
	check 0 "rigor power status after the soak: $(echo "$ps" | tr '\n' ' ')"
else
	check 1 "rigor power status after the soak (exit $prc): $(echo "$ps" | tr '\n' ' ')"
fi

# Nothing this soak started is left
stop_rig
i=0; while ours >/dev/null && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
left=$(ours)
if [ -z "$left" ]; then
	check 0 "no qemu-system, rigfw-sim, rigor-backend or rigor-vboard process left"
else
	check 1 "no qemu-system, rigfw-sim, rigor-backend or rigor-vboard process left"
	echo "$left" | sed 's/^/#   /'
fi

secs=$(($(date +%s) - start))
if [ "$TAP" = 1 ]; then echo "1..$n"; fi
if [ $fail = 0 ]; then
	say "soak: PASS ($secs s; logs in $SOAK_DIR)"
	exit 0
fi
say "soak: FAIL ($secs s; $nfail of $n checks failed; logs in $SOAK_DIR)"
exit 1
