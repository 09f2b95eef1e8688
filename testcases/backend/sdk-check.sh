#!/bin/sh
# SPDX-License-Identifier: MIT
# Cross-check rigor-backend with the official balena-sdk: 20.8.0 (node >= 18) and the current
# release 23.2.15 (as npm alias balena-sdk-current), pinned in sdk-check/package-lock.json.
# Installs it with `npm ci` into $BUILD/backend/sdk-check (reused while the lock file is
# unchanged), starts the emulator on a free port and runs sdk-check/check.js. Prints TAP.
# Skips (does not fail) when node/npm are missing or the npm registry is unreachable.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${BUILD:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
dir=$build/backend/sdk-check
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rigor-backend-sdk.XXXXXX")
pid=

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		i=0
		while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

skip() {
	echo "1..1"
	echo "ok 1 # SKIP $*"
	exit 0
}

command -v node >/dev/null 2>&1 || skip "node not installed (scripts/install-deps)"
command -v npm >/dev/null 2>&1 || skip "npm not installed (scripts/install-deps)"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$major" -ge 18 ] 2>/dev/null || skip "node $(node --version) too old for balena-sdk (needs >= 18)"

lock=$here/sdk-check/package-lock.json
stamp=$dir/.rigor-lock.sha256
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [ ! -f "$dir/node_modules/balena-sdk/package.json" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	mkdir -p "$dir"
	cp "$here/sdk-check/package.json" "$lock" "$dir/"
	if ! npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error \
		>"$tmp/npm.log" 2>&1; then
		if ! timeout 20 npm ping >/dev/null 2>&1; then
			skip "npm registry unreachable"
		fi
		echo "1..1"
		echo "not ok 1 - npm ci of balena-sdk failed"
		sed 's/^/# /' "$tmp/npm.log"
		exit 1
	fi
	echo "$want" >"$stamp"
fi

# Host OS releases for check.js's os/pinning checks (the payload's content does not matter).
printf 'rigor sdk-check payload\n' | gzip >"$tmp/hostos.img.gz"
"$here/rigor-backend" --port 0 --state "$tmp/state.json" --port-file "$tmp/port" \
	--hostos "raspberrypi4-64:6.0.13:$tmp/hostos.img.gz" \
	--hostos "raspberrypi4-64:6.1.0:$tmp/hostos.img.gz" \
	--hostos "raspberrypi3:6.1.0:$tmp/hostos.img.gz" \
	>"$tmp/out" 2>"$tmp/err" &
pid=$!
i=0
while [ ! -s "$tmp/port" ] && [ "$i" -lt 100 ]; do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
if [ ! -s "$tmp/port" ]; then
	echo "1..1"
	echo "not ok 1 - rigor-backend did not start"
	sed 's/^/# /' "$tmp/err"
	exit 1
fi
port=$(cat "$tmp/port")

# balena-sdk (20.x) supports node >= 18; balena-sdk-current (the newest release) asks for
# node >= 22.18 but runs on 20, so it is checked from node 20 on.
sdks=balena-sdk
if [ "$major" -ge 20 ]; then
	sdks="$sdks balena-sdk-current"
else
	echo "# node $(node --version): balena-sdk-current not checked (needs node >= 20)"
fi
# shellcheck disable=SC2086
timeout 180 node "$here/sdk-check/check.js" "$dir/node_modules" "http://127.0.0.1:$port" \
	rigorUserApiKey0000000000000000000 rigor/test raspberrypi4-64 $sdks
rc=$?
if [ $rc -ne 0 ]; then
	echo "# rigor-backend log:"
	sed 's/^/# /' "$tmp/err"
fi
exit $rc
