#!/bin/sh
# SPDX-License-Identifier: MIT
# rigor.http, rigor.balena and rigor.provision from Lua, against host/tests/http_fake.py
# (and against the backend emulator testcases/backend/rigor-backend when it is there).
# Prints TAP.
T=$(mktemp -d /tmp/rigor-http-XXXXXX)
. host/tests/tap.sh
export RIGOR_STATE_DIR=$T/state
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY
pids=
trap 'for p in $pids; do kill $p 2>/dev/null; done; rm -rf "$T"' EXIT

# A self-signed certificate for 127.0.0.1, for the TLS checks (skipped without openssl).
tls=
if command -v openssl >/dev/null && openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.out" 2>&1; then
	tls="$T/cert.pem $T/key.pem"
fi
# shellcheck disable=SC2086
python3 host/tests/http_fake.py "$T/port" $tls 2>"$T/fake.err" &
pids="$pids $!"
wait_for "$T/port"
if [ ! -s "$T/port" ]; then cp "$T/fake.err" "$T/out"; nok "fake server starts"; tap_done; fi
tls_base=
[ -n "$tls" ] && tls_base="https://127.0.0.1:$(cat "$T/port.tls")"
$RIGOR lua host/tests/http_api.lua "http://127.0.0.1:$(cat "$T/port")" "$tls_base" "$T/cert.pem" \
	>"$T/lua.out" 2>"$T/lua.err"
rc=$?
tap_lua <"$T/lua.out"
if [ $rc = 0 ]; then ok "http_api.lua exits 0"; else cp "$T/lua.err" "$T/out"; nok "http_api.lua exits 0 (got $rc)"; fi

# The balena client against the backend emulator, when another part of the tree built it.
BE=testcases/backend/rigor-backend
if [ -x "$BE" ] && [ -f host/tests/http_backend.lua ]; then
	"$BE" --port 0 --port-file "$T/be.port" --state "$T/be.state" >"$T/be.out" 2>"$T/be.err" &
	pids="$pids $!"
	wait_for "$T/be.port"
	if [ -s "$T/be.port" ]; then
		$RIGOR lua host/tests/http_backend.lua "http://127.0.0.1:$(cat "$T/be.port")" "$T/be.state" \
			>"$T/lb.out" 2>"$T/lb.err"
		rc=$?
		tap_lua <"$T/lb.out"
		if [ $rc = 0 ]; then ok "http_backend.lua exits 0"; else cp "$T/lb.err" "$T/out"; nok "http_backend.lua exits 0 (got $rc)"; fi
	else
		cp "$T/be.err" "$T/out"; nok "backend emulator starts"
	fi
fi
tap_done
