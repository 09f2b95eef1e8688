#!/bin/sh
# SPDX-License-Identifier: MIT
# rigor.ssh and the network role against a real SSH server on loopback: Debian's dropbear
# (the server the rigor test OS runs) as a fake DUT, unprivileged on a free port. Its root
# login is given a home in the scratch directory through a private /etc/passwd (and
# /etc/shadow: root's password blank, as on the test OS) bound in a
# mount namespace (unshare -m as root, unshare -rm otherwise), so no real account's
# authorized_keys is touched. Two servers: "production" (keys only) and "development"
# (dropbear -B: root's blank password logs in), as the test OS starts them from
# config.json developmentMode. host/tests/ssh_api.lua does the checks. Prints TAP.
T=$(mktemp -d "${TMPDIR:-/tmp}/rigor-ssh-XXXXXX")
. host/tests/tap.sh
export RIGOR_STATE_DIR=$T/state
pids=
trap 'for p in $pids; do kill $p 2>/dev/null; kill -CONT $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"' EXIT

tap_lua() {
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) n=$((n + 1)); fail=1; echo "not ok $n - ${line#not ok - }" ;;
		*) echo "$line" ;;
		esac
	done
}

for c in dropbear dropbearkey ssh ssh-keygen unshare python3; do
	command -v $c >/dev/null || { echo "ok 1 # SKIP $c is needed (dropbear-bin, openssh-client, util-linux)"; echo "1..1"; exit 0; }
done
NS="unshare -m"
[ "$(id -u)" = 0 ] || NS="unshare -rm"
if ! $NS sh -c "mount --bind /etc/hostname /etc/hostname" 2>"$T/ns.err"; then
	echo "ok 1 # SKIP no mount namespace for the fake DUT's /etc/passwd: $(head -1 "$T/ns.err")"; echo "1..1"; exit 0
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$T/home/.ssh" "$T/state"
chmod 700 "$T/home" "$T/home/.ssh"
ssh-keygen -q -t ed25519 -N '' -C rigor-test -f "$T/id"
ssh-keygen -q -t ed25519 -N '' -C rigor-other -f "$T/other"
cp "$T/id.pub" "$T/home/.ssh/authorized_keys"
chmod 600 "$T/home/.ssh/authorized_keys"
# root with a blank password: only the -B server lets it in without a key
printf 'root::0:0:root:%s:/bin/sh\n' "$T/home" >"$T/passwd"
# dropbear prefers the shadow entry when there is one: blank there too
printf 'root::19000:0:99999:7:::\n' >"$T/shadow"
dropbearkey -t ed25519 -f "$T/hostkey" >/dev/null 2>&1

# server NAME PORT [DROPBEAR ARGS]: starts it, waits until it listens
server() {
	name=$1 port=$2
	shift 2
	$NS sh -c 'mount --bind "$1" /etc/passwd && { [ ! -e /etc/shadow ] || mount --bind "$2" /etc/shadow; } &&
		shift 2 && exec "$@"' sh "$T/passwd" "$T/shadow" \
		dropbear -F -E -p "127.0.0.1:$port" -r "$T/hostkey" -P "$T/$name.pid" "$@" 2>"$T/$name.log" &
	pids="$pids $!"
	i=0
	while ! grep -q "Not backgrounding\|listening" "$T/$name.log" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	sleep 0.2
}
PROD=$(free_port)
server prod "$PROD"
DEV=$(free_port)
server dev "$DEV" -B
PROD_PID=$(cat "$T/prod.pid" 2>/dev/null)
[ -n "$PROD_PID" ] || { cat "$T/prod.log" >"$T/out"; nok "dropbear started"; tap_done; }
ok "dropbear started (production on $PROD, development on $DEV)"

# the uplink cut of this rig: the server stops answering (SIGSTOP), as a DUT whose link
# is down; restore lets it go on
cat >"$T/rig.lua" <<RIG
rig {
  name = "ssh-fake",
  network = host { address = "127.0.0.1", port = $PROD, identity = "$T/id",
                   cut = "kill -STOP $PROD_PID", restore = "kill -CONT $PROD_PID" },
}
RIG
cat >"$T/leases" <<LEASES
1700000000 52:54:00:12:34:56 10.0.2.15 rigor-os *
1700000900 52:54:00:12:34:56 10.0.2.16 rigor-os *
1700000500 52:54:00:ab:cd:ef 10.0.2.17 other *
LEASES
cat >"$T/lease-rig.lua" <<RIG
rig {
  name = "ssh-lease",
  network = host { lease_file = "$T/leases", mac = "52:54:00:12:34:56", user = "admin" },
}
RIG
cat >"$T/nolease-rig.lua" <<RIG
rig {
  name = "ssh-nolease",
  network = host { lease_file = "$T/leases", mac = "52:54:00:00:00:01" },
}
RIG

$RIGOR --rig "$T/rig.lua" lua host/tests/ssh_api.lua main "$T" "$DEV" >"$T/main.out" 2>"$T/main.err"
rc=$?
tap_lua <"$T/main.out"
if [ $rc = 0 ]; then ok "ssh_api.lua main exits 0"; else
	cat "$T/main.err" "$T/prod.log" >"$T/out"; : >"$T/err"; nok "ssh_api.lua main exits 0 (got $rc)"; fi
$RIGOR --rig "$T/lease-rig.lua" lua host/tests/ssh_api.lua lease "$T" >"$T/lease.out" 2>"$T/lease.err"
rc=$?
tap_lua <"$T/lease.out"
if [ $rc = 0 ]; then ok "ssh_api.lua lease exits 0"; else
	cat "$T/lease.err" >"$T/out"; : >"$T/err"; nok "ssh_api.lua lease exits 0 (got $rc)"; fi
$RIGOR --rig "$T/nolease-rig.lua" lua host/tests/ssh_api.lua nolease "$T" >"$T/nolease.out" 2>"$T/nolease.err"
rc=$?
tap_lua <"$T/nolease.out"
if [ $rc = 0 ]; then ok "ssh_api.lua nolease exits 0"; else
	cat "$T/nolease.err" >"$T/out"; : >"$T/err"; nok "ssh_api.lua nolease exits 0 (got $rc)"; fi

# rig files: the network role's parameters are checked like every role's
printf 'rig {\n  name = "bad-net",\n  network = host { address = "x", port = "22" },\n}\n' >"$T/bad.lua"
run 2 "rigor check: a network port that is not an integer" $RIGOR check "$T/bad.lua"
has "$T/err" "network .host.: parameter 'port' must be an integer" "  ... says which parameter"
printf 'rig {\n  name = "bad-net2",\n  network = host { port = 22 },\n}\n' >"$T/bad2.lua"
echo 'print(rig.network:address())' >"$T/addr.lua"
run 2 "a host network entry without address or lease_file fails at open" $RIGOR --rig "$T/bad2.lua" lua "$T/addr.lua"
has "$T/err" "give either address" "  ... and says what to add"
tap_done
