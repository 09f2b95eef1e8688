#!/bin/sh
# SPDX-License-Identifier: MIT
# The opt-in job against a real balena API: the cloud suite's API calls
# (host/tests/real_api.lua) with the device's part played by the script, so no board is
# needed. Prints TAP.
#  - Always: against the backend emulator, which proves the job itself works.
#  - Against a real API only when RIGOR_REAL_BALENA_API_KEY (a user API key) and
#    RIGOR_REAL_BALENA_FLEET (a fleet slug you may register test devices in) are set;
#    RIGOR_REAL_BALENA_API (default https://api.balena-cloud.com) and
#    RIGOR_REAL_BALENA_DEVICE_TYPE (default the fleet's) are optional. Otherwise that part
#    is SKIPPED with the reason: never counted as passed. The job deletes the device it
#    registers and its provisioning keys expire after 10 minutes.
T=$(mktemp -d /tmp/rigor-realapi-XXXXXX)
. host/tests/tap.sh
export RIGOR_STATE_DIR=$T/state
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$T"' EXIT

# run_job LABEL: real_api.lua with RIGOR_BALENA_* as set by the caller
run_job() {
	$RIGOR lua host/tests/real_api.lua "$1" >"$T/job.out" 2>"$T/job.err"
	rc=$?
	tap_lua <"$T/job.out"
	if [ $rc = 0 ]; then ok "$1: the job exits 0"; else cp "$T/job.err" "$T/out"; nok "$1: the job exits 0 (got $rc)"; fi
}

BE=testcases/backend/rigor-backend
"$BE" --port 0 --port-file "$T/be.port" --state "$T/be.state" >"$T/be.out" 2>"$T/be.err" &
pid=$!
wait_for "$T/be.port"
if [ -s "$T/be.port" ]; then
	# the emulator's built-in seed: user key, fleet rigor/test of raspberrypi4-64
	RIGOR_BALENA_API="http://127.0.0.1:$(cat "$T/be.port")" \
	RIGOR_BALENA_API_KEY=rigorUserApiKey0000000000000000000 RIGOR_BALENA_FLEET=rigor/test \
	RIGOR_BALENA_DEVICE_TYPE='' RIGOR_REAL_API_ONLINE_MS=10000 run_job emulator
	left=$(/usr/bin/python3 -c 'import json, sys, urllib.request
print(len(json.load(urllib.request.urlopen(sys.argv[1]))["device"]))' \
		"http://127.0.0.1:$(cat "$T/be.port")/__rigor/state")
	if [ "$left" = 0 ]; then ok "emulator: no device left behind"; else echo "# $left devices left"; nok "emulator: no device left behind"; fi
else
	cp "$T/be.err" "$T/out"; nok "backend emulator starts"
fi

if [ -n "${RIGOR_REAL_BALENA_API_KEY:-}" ] && [ -n "${RIGOR_REAL_BALENA_FLEET:-}" ]; then
	RIGOR_BALENA_API=${RIGOR_REAL_BALENA_API:-https://api.balena-cloud.com} \
	RIGOR_BALENA_API_KEY=$RIGOR_REAL_BALENA_API_KEY RIGOR_BALENA_FLEET=$RIGOR_REAL_BALENA_FLEET \
	RIGOR_BALENA_DEVICE_TYPE=${RIGOR_REAL_BALENA_DEVICE_TYPE:-} run_job "real API"
else
	n=$((n + 1))
	echo "ok $n - real API # SKIP RIGOR_REAL_BALENA_API_KEY and RIGOR_REAL_BALENA_FLEET are not set (docs/backend-emulator.md, 'Against a real API')"
fi
tap_done
