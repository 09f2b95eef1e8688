#!/bin/sh
# SPDX-License-Identifier: MIT
# TAP: the rigor test OS device agent (host build) against the balena API emulator:
# registration, config.json rewrite, no re-registration, state reports, 409 key exchange,
# errors, host OS update (a fake rigor-hup run when the device is pinned). See docs/os-image.md.
set -u
BUILD=${BUILD:-build}
AGENT=$BUILD/os/rigor-agent-host
BACKEND=testcases/backend/rigor-backend
USERKEY=rigorUserApiKey0000000000000000000
PROV=rigorProvisioningKey00000000000000
T=$(mktemp -d "${TMPDIR:-/tmp}/rigor-os-agent.XXXXXX")
BPID=
cleanup() {
	[ -n "$BPID" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; [ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/# /'; }
check() { # check DESC CMD...
	d=$1; shift
	if "$@" >"$T/out.check" 2>&1; then ok "$d"; else nok "$d" "$(cat "$T/out.check")"; fi
}
# jget FILE EXPR: python expression on j (the parsed JSON)
jget() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

echo "1..53"
if [ ! -x "$AGENT" ]; then
	nok "agent built ($AGENT)"
	exit 1
fi
ok "agent built"

"$BACKEND" --port 0 --port-file "$T/port" --state "$T/state.json" -v >/dev/null 2>"$T/backend.log" &
BPID=$!
i=0
while [ ! -s "$T/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
P=$(cat "$T/port" 2>/dev/null)
API=http://127.0.0.1:$P
# http METHOD PATH [JSON] (python3, so that no curl is needed)
http() {
	python3 -c '
import sys, urllib.request
m, url, key = sys.argv[1:4]
body = sys.argv[4].encode() if len(sys.argv) > 4 else None
req = urllib.request.Request(url, data=body, method=m, headers={
    "Authorization": "Bearer " + key, "Content-Type": "application/json"})
sys.stdout.write(urllib.request.urlopen(req, timeout=5).read().decode())
' "$1" "$API$2" "$USERKEY" ${3+"$3"}
}
api_get() { http GET "$1"; }
[ -n "$P" ] && ok "emulator started" || nok "emulator started"

cat >"$T/config.json" <<EOF
{"applicationId": 1, "deviceType": "qemux86-64", "userId": 1,
 "apiEndpoint": "$API", "apiKey": "$PROV",
 "installer": {"secureboot": false, "odd": [1, "}\\"{"]}, "rigorReportInterval": 1}
EOF
printf 'ID="rigor-os"\nNAME="Rigor OS"\nVERSION="1.0"\nVERSION_ID="1.0"\n' >"$T/os-release"
A="$AGENT --config $T/config.json --os-release $T/os-release"

$A --once >"$T/run1" 2>&1
rc=$?
check "first run exits 0" test $rc = 0
check "first run prints 'registered uuid='" grep -q 'rigor-agent: registered uuid=[0-9a-f]\{32\} id=1' "$T/run1"
check "first run prints 'state reported'" grep -q 'rigor-agent: state reported' "$T/run1"
UUID=$(jget "$T/config.json" 'j["uuid"]' 2>/dev/null)
KEY=$(jget "$T/config.json" 'j["deviceApiKey"]' 2>/dev/null)
check "config.json: uuid is 32 hex" sh -c "echo '$UUID' | grep -qx '[0-9a-f]\{32\}'"
check "config.json: deviceApiKey written" sh -c "echo '$KEY' | grep -qx '[0-9a-f]\{32\}'"
check "config.json: apiKey removed" jget "$T/config.json" '1/0 if "apiKey" in j else 1'
check "config.json: registered_at and deviceId set" jget "$T/config.json" '1/0 if not (j["registered_at"] > 0 and j["deviceId"] == 1) else 1'
check "config.json: other keys kept verbatim" jget "$T/config.json" \
	'1/0 if j["installer"] != {"secureboot": False, "odd": [1, "}\"{"]} or j["applicationId"] != 1 else 1'
check "hostname from uuid prefix" grep -q "hostname would be $(echo "$UUID" | cut -c1-7)\$" "$T/run1"

api_get "/v7/device?\$filter=uuid%20eq%20'$UUID'&\$select=uuid,os_version,supervisor_version,os_variant,api_heartbeat_state" >"$T/dev.json"
check "emulator: device registered with os_version 1.0, rigor-agent 0.1, online" jget "$T/dev.json" \
	'1/0 if not (len(j["d"]) == 1 and j["d"][0]["os_version"] == "1.0" and j["d"][0]["supervisor_version"] == "rigor-agent 0.1" and j["d"][0]["os_variant"] == "prod" and j["d"][0]["api_heartbeat_state"] == "online") else 1'

# Second boot: same config.json, new os-release version; must not register again.
sed -i 's/"1.0"/"1.1"/' "$T/os-release"
$A --reports 2 >"$T/run2" 2>&1
rc=$?
check "second run exits 0" test $rc = 0
check "second run does not register" sh -c "! grep -q registered '$T/run2'"
check "only one POST /device/register reached the emulator" test "$(grep -c 'POST /device/register' "$T/backend.log")" = 1
check "second run sent 2 more state PATCHes (3 in all)" test "$(grep -c 'PATCH /device/v3/state' "$T/backend.log")" = 3
check "os-config: the second run (not --once) fetched /os/v1/config once and said so" sh -c \
	"test \"\$(grep -c 'rigor-agent: Service configuration retrieved' '$T/run2')\" = 1 && ! grep -q 'Service configuration' '$T/run1'"
api_get "/__rigor/state" >"$T/state.dump"
check "os-config: the emulator saw one /os/v1/config fetch with the device key" jget "$T/state.dump" \
	"1/0 if [d.get('os_config_fetches') for d in j['device'] if d['uuid'] == '$UUID'] != [1] else 1"
api_get "/device/v3/$UUID/state" >"$T/target.json"
check "GET /device/v3/:uuid/state answers for the device" jget "$T/target.json" "1/0 if '$UUID' not in j else 1"
api_get "/v7/device?\$filter=uuid%20eq%20'$UUID'&\$select=os_version" >"$T/dev2.json"
check "emulator: os_version updated to 1.1" jget "$T/dev2.json" '1/0 if j["d"][0]["os_version"] != "1.1" else 1'

# Restored config.json (uuid + provisioning key, new device key): 409, then key exchange.
cat >"$T/config2.json" <<EOF
{"applicationId": 1, "deviceType": "qemux86-64", "apiEndpoint": "$API", "apiKey": "$PROV",
 "uuid": "$UUID", "deviceApiKey": "0123456789abcdef0123456789abcdef", "hostname": "dut-one"}
EOF
$AGENT --config "$T/config2.json" --os-release "$T/os-release" --once >"$T/run3" 2>&1
rc=$?
check "existing uuid: 409 handled by key exchange, then reports with the new key" sh -c \
	"test $rc = 0 && grep -q 'already registered (409): key exchange done' '$T/run3' && grep -q 'state reported' '$T/run3'"
check "hostname from config.json hostname" grep -q 'hostname would be dut-one$' "$T/run3"

# Wrong provisioning key: 401, apiKey kept for a later retry.
cat >"$T/config3.json" <<EOF
{"applicationId": 1, "deviceType": "qemux86-64", "apiEndpoint": "$API", "apiKey": "nope"}
EOF
$AGENT --config "$T/config3.json" --os-release "$T/os-release" --once >"$T/run4" 2>&1
rc=$?
check "bad provisioning key: fails with HTTP 401 and keeps apiKey" sh -c \
	"test $rc = 1 && grep -q 'register: HTTP 401' '$T/run4' && grep -q '\"apiKey\": \"nope\"' '$T/config3.json'"

# Injected 503 on the state endpoint is reported.
http POST /__rigor/faults '{"status": 503, "status_count": 1, "path_prefix": "/device/v3/state"}' >/dev/null
$A --once >"$T/run5" 2>&1
rc=$?
check "state PATCH answered 503: error printed, exit 1" sh -c "test $rc = 1 && grep -q 'state report: HTTP 503' '$T/run5'"

# Host OS update: releases 1.0 and 1.1 of qemux86-64 added through the control endpoint, a
# fake rigor-hup that records its arguments and exits with the status in $T/hup.rc.
head -c 4096 /dev/urandom | gzip >"$T/rootfs-1.1.img.gz"
SHA=$(sha256sum "$T/rootfs-1.1.img.gz" | cut -d' ' -f1)
for v in 1.0 1.1; do
	python3 -c 'import sys,json,urllib.request; urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/__rigor/hostos", method="POST", data=json.dumps({"device_type": "qemux86-64", "version": sys.argv[3], "path": sys.argv[2]}).encode(), headers={"Content-Type": "application/json"})).read()' \
		"$API" "$T/rootfs-1.1.img.gz" "$v"
done
printf '#!/bin/sh\necho "$*" >>"%s/hup.args"\nexit $(cat "%s/hup.rc")\n' "$T" "$T" >"$T/fake-hup"
chmod +x "$T/fake-hup"
echo 0 >"$T/hup.rc"
: >"$T/hup.args"
KEY=$(jget "$T/config.json" 'j["deviceApiKey"]' 2>/dev/null)
python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})).read().decode())' \
	"$API/rigor/v1/device/$UUID/hostos" "$KEY" >"$T/hostos.json" 2>&1
check "unpinned device: GET /rigor/v1/device/<uuid>/hostos is {\"target\": null}" jget "$T/hostos.json" '1/0 if j != {"target": None} else 1'
sed -i 's/"1.1"/"1.0"/' "$T/os-release"
$A --hup "$T/fake-hup" --reports 2 >"$T/run7" 2>&1
check "unpinned: rigor-hup not run" sh -c "test ! -s '$T/hup.args' && ! grep -q 'host OS update' '$T/run7'"
REL=$(api_get "/v7/release?\$filter=raw_version%20eq%20'1.1'&\$select=id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["d"][0]["id"])')
http PATCH "/v7/device(uuid='$UUID')" "{\"should_be_operated_by__release\": $REL}" >/dev/null
$A --hup "$T/fake-hup" --reports 3 >"$T/run8" 2>&1
check "pinned to 1.1, running 1.0: rigor-hup run once in 3 reports" test "$(wc -l <"$T/hup.args")" = 1
check "rigor-hup gets -u <apiEndpoint>/rigor/v1/hostos/qemux86-64/1.1/rootfs.img.gz -s <sha256>" \
	test "$(cat "$T/hup.args")" = "-u $API/rigor/v1/hostos/qemux86-64/1.1/rootfs.img.gz -s $SHA"
check "console: 'rigor-agent: host OS update to 1.1', then its result" sh -c \
	"grep -q '^rigor-agent: host OS update to 1.1\$' '$T/run8' && grep -q '^rigor-agent: host OS update to 1.1 written, rebooting\$' '$T/run8'"
# after a rollback (the record on resin-state names 1.1, rollback-health-triggered next to
# it) the same target is not started again; a record without a rollback is no obstacle
mkdir -p "$T/state"
: >"$T/hup.args"
$A --hup "$T/fake-hup" --hup-record "$T/state/target" --reports 2 >"$T/run8b" 2>&1
check "--hup-record: the started target is recorded" sh -c "test \"\$(cat '$T/state/target')\" = 1.1 && test \$(wc -l <'$T/hup.args') = 1"
: >"$T/hup.args"
touch "$T/state/rollback-health-triggered"
$A --hup "$T/fake-hup" --hup-record "$T/state/target" --reports 2 >"$T/run8c" 2>&1
check "a target that rolled back is not started again, and the console says why" sh -c \
	"test ! -s '$T/hup.args' && grep -q 'host OS update to 1.1 rolled back before; not started again' '$T/run8c'"
: >"$T/hup.args"
sed -i 's/"1.0"/"1.1"/' "$T/os-release"
$A --hup "$T/fake-hup" --reports 2 >"$T/run9" 2>&1
check "pinned to the running version: rigor-hup not run" test ! -s "$T/hup.args"
sed -i 's/"1.1"/"1.0"/' "$T/os-release"
echo 3 >"$T/hup.rc"
$A --hup "$T/fake-hup" --reports 3 >"$T/run10" 2>&1
check "rigor-hup fails: not retried while the agent runs (3 reports, 1 run)" test "$(wc -l <"$T/hup.args")" = 1
check "console: 'host OS update to 1.1 failed (exit 3)'" grep -q '^rigor-agent: host OS update to 1.1 failed (exit 3)$' "$T/run10"
: >"$T/hup.args"
http PATCH "/v7/device(uuid='$UUID')" '{"should_be_operated_by__release": null}' >/dev/null
$A --hup "$T/fake-hup" --reports 2 >"$T/run11" 2>&1
check "unpinned again: rigor-hup not run" test ! -s "$T/hup.args"

# --fetch (rigor-hup's and rigor-rollback's HTTP client): the payload byte for byte, a 404
# leaves no file, a bad URL is refused, --fetch without --out is a usage error.
$AGENT --fetch "$API/rigor/v1/hostos/qemux86-64/1.1/rootfs.img.gz" --out "$T/got.gz" >"$T/f1" 2>&1
rc=$?
check "--fetch: the payload byte for byte, exit 0" sh -c "test $rc = 0 && cmp '$T/got.gz' '$T/rootfs-1.1.img.gz'"
$AGENT --fetch "$API/rigor/v1/hostos/qemux86-64/9.9/rootfs.img.gz" --out "$T/none.gz" >"$T/f2" 2>&1
rc=$?
check "--fetch of a missing payload: HTTP 404 named, exit 1, no file left" sh -c \
	"test $rc = 1 && grep -q 'HTTP 404' '$T/f2' && test ! -e '$T/none.gz'"
$AGENT --fetch "https://example.invalid/x" --out "$T/x" >"$T/f3" 2>&1
rc=$?
check "--fetch of a non-http URL: refused with the reason, exit 1" sh -c "test $rc = 1 && grep -q 'is not an http://' '$T/f3'"
$AGENT --fetch "$API/ping" >"$T/f4" 2>&1
rc=$?
check "--fetch without --out: usage error, exit 2" sh -c "test $rc = 2 && grep -q 'go together' '$T/f4'"

# --ssh-keys: os.sshKeys to authorized_keys, the mode for the SSH server (rigor-init)
printf '%s\n' '{"developmentMode": true, "os": {"sshKeys": ["ssh-ed25519 AAAAkey1 one@host", "ssh-rsa AAAAkey2 \"two\""], "x": [1]}}' >"$T/ssh1.json"
$AGENT --config "$T/ssh1.json" --ssh-keys "$T/ak1" >"$T/s1" 2>&1
rc=$?
check "--ssh-keys: both keys, one per line, mode 600; prints development" sh -c \
	"test $rc = 0 && test \"\$(cat '$T/s1')\" = development && test \"\$(sed -n 2p '$T/ak1')\" = 'ssh-rsa AAAAkey2 \"two\"' && test \$(wc -l <'$T/ak1') = 2 && test \$(stat -c %a '$T/ak1') = 600"
printf '%s\n' '{"apiKey": "x"}' >"$T/ssh2.json"
$AGENT --config "$T/ssh2.json" --ssh-keys "$T/ak2" >"$T/s2" 2>&1
rc=$?
check "--ssh-keys without os.sshKeys or developmentMode: no keys, production" sh -c \
	"test $rc = 0 && test \"\$(cat '$T/s2')\" = production && test ! -s '$T/ak2'"
printf '%s\n' '{"os": {"sshKeys": "ssh-ed25519 AAAA"}}' >"$T/ssh3.json"
$AGENT --config "$T/ssh3.json" --ssh-keys "$T/ak3" >"$T/s3" 2>&1
rc=$?
check "--ssh-keys with os.sshKeys not a list: exit 1, says so, no keys" sh -c \
	"test $rc = 1 && grep -q 'os.sshKeys is not a list' '$T/s3' && test ! -s '$T/ak3'"

# --get: one config.json setting for rigor-init (ntpServers, dnsServers, persistentLogging)
printf '%s\n' '{"ntpServers": "a.example b.example", "dnsServers": "null", "persistentLogging": true, "x": null, "esc": "q\"u"}' >"$T/get.json"
get() { $AGENT --config "$T/get.json" --get "$1" 2>&1; echo "rc=$?"; }
check "--get a string: the string, exit 0" test "$(get ntpServers)" = "a.example b.example
rc=0"
check "--get \"null\" (a string): null, exit 0" test "$(get dnsServers)" = "null
rc=0"
check "--get true: its JSON text, exit 0" test "$(get persistentLogging)" = "true
rc=0"
check "--get an escaped string: decoded" test "$(get esc)" = "q\"u
rc=0"
check "--get a JSON null: nothing, exit 1" test "$(get x)" = "rc=1"
check "--get an absent key: nothing, exit 1" test "$(get nope)" = "rc=1"
$AGENT --config "$T/missing.json" --get ntpServers >"$T/g7" 2>&1
rc=$?
check "--get without config.json: exit 2" test $rc = 2

# --udev-rules: os.udevRules (name -> rule) as DIR/<name>.rules, for udevd (rigor-init)
mkdir -p "$T/ur1" "$T/ur2" "$T/ur3"
printf '%s\n' '{"os": {"udevRules": {"99": "ENV{ID_FS_LABEL_ENC}==\"resin-boot\", SYMLINK+=\"disk/test\"", "10-a": "A"}}}' >"$T/ur1.json"
$AGENT --config "$T/ur1.json" --udev-rules "$T/ur1" >"$T/u1" 2>&1
rc=$?
check "--udev-rules: one file per rule, the rule text decoded; prints 2" sh -c \
	"test $rc = 0 && test \"\$(cat '$T/u1')\" = 2 && test \"\$(cat '$T/ur1/99.rules')\" = 'ENV{ID_FS_LABEL_ENC}==\"resin-boot\", SYMLINK+=\"disk/test\"' && test \"\$(cat '$T/ur1/10-a.rules')\" = A"
printf '%s\n' '{"os": {"udevRules": {"../x": "A"}}}' >"$T/ur2.json"
$AGENT --config "$T/ur2.json" --udev-rules "$T/ur2" >"$T/u2" 2>&1
rc=$?
check "--udev-rules with a name holding '/': exit 1, says which, nothing written" sh -c \
	"test $rc = 1 && grep -q '\"../x\": a name without' '$T/u2' && test -z \"\$(ls '$T/ur2')\" && test ! -e '$T/x.rules'"
printf '%s\n' '{"apiKey": "x"}' >"$T/ur3.json"
$AGENT --config "$T/ur3.json" --udev-rules "$T/ur3" >"$T/u3" 2>&1
rc=$?
check "--udev-rules without os.udevRules: nothing written, exit 0" sh -c "test $rc = 0 && test -z \"\$(ls '$T/ur3')\""

kill "$BPID" 2>/dev/null
wait "$BPID" 2>/dev/null
BPID=
$A --once --timeout 2000 >"$T/run6" 2>&1
rc=$?
check "emulator down: connection error, exit 1" sh -c "test $rc = 1 && grep -q 'state report: 127.0.0.1:$P: Connection refused' '$T/run6'"
