#!/bin/sh
# SPDX-License-Identifier: MIT
# make test-lava (docs/lava.md): the LAVA kit of rigs/lava/ with Debian 12's LAVA, on one
# machine, offline. Needs root (lava-run refuses anything else) and scripts/install-lava.
#   (a) way A on the virtual rig with lava-run: flash (verified == written), boot, log in,
#       commands in the board's shell; the rigor health check validated by lava-run;
#   (b) way B on the sim rig with lava-run: one LAVA test case per rigor case (pass, skip,
#       fail), rigor's own reports referenced;
#   (c) injected rig faults: a power switch that fails -> Incomplete / Infrastructure; an
#       SD mux that fails mid-suite (rigor exit 3) -> Incomplete through lava-test-raise;
#   (d) lava-server + lava-scheduler + lava-worker + PostgreSQL (a private cluster on a unix
#       socket): the rigor-host health check runs by itself, a way B job submitted with
#       lavacli, both Complete, results read back through the REST API. The server is set
#       up (initdb, migrate, ...) in the background while (a) to (c) run.
# Every outcome is read from LAVA's own records (the job log's results, result.yaml, the
# REST API), not from exit codes. Work files: $BUILD/lava/test. Prints "ok"/"not ok"
# lines and ends with "test-lava: N passed, N failed"; exit 1 if any check failed.
# TEST_LAVA_PARTS="a b c d" (the default) runs only the parts named, e.g. "d" while
# working on the server part.
set -u
cd "$(dirname "$0")/../../.."
TOP=$(pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
export LAVA_ROOT=${LAVA_ROOT:-$BUILD/lava/root}
W=$BUILD/lava/test
S=$W/server
KIT=$TOP/rigs/lava
PGBIN=/usr/lib/postgresql/15/bin
PGPORT=55433
LAVA_TYPES=$LAVA_ROOT/usr/share/lava-server/device-types
# the helpers use Debian's python3 with LAVA's root first (jinja2, yaml come from there
# where the system has none)
py() { PYTHONPATH="$LAVA_ROOT/usr/lib/python3/dist-packages" /usr/bin/python3 "$@"; }

# The server's set-up, run in the background by the test itself (below): PostgreSQL
# cluster, database, migrations, admin and its token, the worker and its token, the device
# type and the device. Leaves $S/setup.ok when all of it worked.
if [ "${1:-}" = --setup-server ]; then
	set -e
	log=$S/log/manage.log
	chown postgres "$S/pg"
	su postgres -s /bin/sh -c "$PGBIN/initdb -D '$S/pg/data' -A trust -U postgres" >"$S/log/initdb.log" 2>&1
	mkdir -p "$S/pg/sock"
	chown postgres "$S/pg/sock"
	su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D '$S/pg/data' -l '$S/log/pg.log' -w \
		-o \"-p $PGPORT -k $S/pg/sock -c listen_addresses=''\" start" >>"$log" 2>&1
	psql -h "$S/pg/sock" -p $PGPORT -U postgres -q -c 'create database lavaserver' >>"$log" 2>&1
	lava-server manage migrate --noinput >>"$log" 2>&1
	lava-server manage users add --superuser --staff --passwd admin admin >>"$log" 2>&1
	lava-server manage tokens add --user admin --description test-lava >"$S/token" 2>>"$log"
	# printed as "Token: ..."
	lava-server manage workers add --description "make test-lava" worker1 2>>"$log" |
		sed -n 's/^Token: *//p' >"$S/wtoken"
	lava-server manage device-types add rigor-host >>"$log" 2>&1
	lava-server manage devices add --device-type rigor-host --worker worker1 rigor-host-sim-test >>"$log" 2>&1
	[ -s "$S/token" ] && [ -s "$S/wtoken" ]
	touch "$S/setup.ok"
	exit 0
fi

start_s=$(date +%s)
if [ "$(id -u)" != 0 ]; then
	echo "test-lava: SKIPPED: LAVA's lava-run runs only as root (it writes /var/lib/lava/dispatcher); run 'make test-lava' as root"
	echo "test-lava: 0 passed, 0 failed, 1 skipped"
	exit 0
fi
[ -f "$LAVA_ROOT/.complete" ] || {
	echo "test-lava: no LAVA in '$LAVA_ROOT': run scripts/install-lava (as root) first" >&2
	exit 2
}
[ -x "$PGBIN/initdb" ] || {
	echo "test-lava: no PostgreSQL 15 in $PGBIN: run scripts/install-lava (as root) first" >&2
	exit 2
}
[ -x "$BUILD/rigor" ] && [ -f "$BUILD/os/rigor-os-1.0.img" ] || {
	echo "test-lava: needs $BUILD/rigor and the test OS ('make all os-image')" >&2
	exit 2
}

# /var/lib/lava is where LAVA's dispatcher works, whatever --output-dir says: remove what
# this test made there, and the whole tree if it did not exist before.
had_var_lib_lava=
[ -e /var/lib/lava ] && had_var_lib_lava=1
pids=
cleanup() {
	# each process was started in a process group of its own (setsid): end the group
	for p in $pids; do kill -TERM "-$p" 2>/dev/null; done
	for p in $pids; do
		i=0
		while kill -0 "-$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
		kill -KILL "-$p" 2>/dev/null
	done
	pids=
	[ -f "$S/pg/data/postmaster.pid" ] &&
		su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D '$S/pg/data' -m fast -w stop" >/dev/null 2>&1
	"$TOP/scripts/virtual-rig" stop "$W/virtual" >/dev/null 2>&1
	if [ -z "$had_var_lib_lava" ]; then
		rm -rf /var/lib/lava
	else
		for j in 9001 9002 9003 9004 9005 1 2 3; do rm -rf "/var/lib/lava/dispatcher/tmp/$j"; done
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
spawn() { # LOG CMD...
	log=$1
	shift
	setsid "$@" >"$log" 2>&1 </dev/null &
	pids="$pids $!"
}

rm -rf "$W"
mkdir -p "$W/bin" "$W/devices" "$W/jobs" "$W/out" "$W/images" "$W/artifacts" "$W/overlay" \
	"$S/pg" "$S/log" "$S/devices" "$S/health-checks" "$S/worker" "$S/dispatcher.d"
chmod 755 "$W" "$S"
# the scheduler drops to nobody and then opens its log
chmod 1777 "$S/log"
for p in lava-run lava-server lava-worker lavacli; do
	printf '#!/bin/sh\nLAVA_ROOT=%s exec %s %s "$@"\n' "$LAVA_ROOT" "$KIT/test/lava-env" "$p" >"$W/bin/$p"
	chmod 755 "$W/bin/$p"
done
export PATH="$W/bin:$BUILD:$KIT/bin:$PATH"
export RIGOR_STATE_DIR="$W/state" RIGOR_LAVA_ARTIFACTS="$W/artifacts"
unset RIGOR_RIG RIGOR_LOCK_DIR RIGOR_VIRTUAL_DIR RIGOR_TOKEN
export TERM=dumb
# lava-server is configured through its environment only (lava_server/settings/prod.py)
export LAVA_YAML_SETTINGS_DATABASES="{default: {ENGINE: django.db.backends.postgresql, NAME: lavaserver, USER: postgres, HOST: '$S/pg/sock', PORT: '$PGPORT'}}"
export SECRET_KEY=rigor-test-lava-not-secret ALLOWED_HOSTS=127.0.0.1,localhost
export LAVA_SETTINGS_DJANGO_LOGFILE="$S/log/django.log"
export LAVA_SETTINGS_DEVICES_PATH="$S/devices" LAVA_SETTINGS_HEALTH_CHECKS_PATH="$S/health-checks"
export LAVA_SETTINGS_DISPATCHER_CONFIG_PATH="$S/dispatcher.d"
export LAVA_YAML_SETTINGS_DEVICE_TYPES_PATHS="['$KIT/device-types', '$LAVA_TYPES']"
export PGBIN PGPORT W S KIT

results=$W/checks.txt
: >"$results"
note() { echo "$1" | tee -a "$results"; }
checks() { py "$KIT/test/check-lava" "$@" | tee -a "$results"; }
PARTS=${TEST_LAVA_PARTS:-a b c d}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; echo "# part ($1) not run (TEST_LAVA_PARTS)"; return 1; }

# --- device dictionaries: every example in the kit renders as lava-server would ---------
for d in "$KIT"/devices/*.jinja2; do
	n=$(basename "$d" .jinja2)
	if py "$KIT/test/render-device" "$d" "$KIT/device-types" "$LAVA_TYPES" >"$W/devices/$n.yaml" 2>"$W/devices/$n.err"; then
		note "ok - device dictionary $n renders to YAML with commands"
	else
		note "not ok - device dictionary $n renders: $(cat "$W/devices/$n.err")"
	fi
done
# The way B device of this test: the example plus one line, to unpack LAVA's overlay under
# $W and not /var/lib/lava; it still extends the device type, which lava-server needs to
# find the device type's health check.
n=rigor-host-sim-01
sed "/{% extends /a {% set rigor_lava_dir = '$W/overlay/$n' %}" "$KIT/devices/$n.jinja2" >"$W/devices/test-$n.jinja2"
py "$KIT/test/render-device" "$W/devices/test-$n.jinja2" "$KIT/device-types" "$LAVA_TYPES" >"$W/devices/test-$n.yaml"

# images: the test OS (gzip + bmap) for way A, a small card image for the sim rig's card
gzip -1 -c "$BUILD/os/rigor-os-1.0.img" >"$W/images/rigor-os-1.0.img.gz"
bmaptool -q create -o "$W/images/rigor-os-1.0.img.bmap" "$BUILD/os/rigor-os-1.0.img"
sha=$(sha256sum "$W/images/rigor-os-1.0.img.gz" | cut -d' ' -f1)
truncate -s 8M "$W/images/sim.img"
printf 'label: dos\nstart=2048, size=8192, type=c\n' | sfdisk -q --no-tell-kernel "$W/images/sim.img"
mkfs.vfat -n resin-boot --offset 2048 "$W/images/sim.img" 4096 >/dev/null 2>&1

subst() { # FILE OUT
	sed -e "s|@IMAGE_URL@|file://$W/images/rigor-os-1.0.img.gz|" -e "s|@IMAGE_SHA256@|$sha|" \
		-e "s|@BMAP_URL@|file://$W/images/rigor-os-1.0.img.bmap|" -e "s|@IMAGE@|$W/images/sim.img|" \
		-e "s|@SUITES@|$SUITES|" "$1" >"$2"
}
lava_run() { # ID DEVICE JOB [--validate]
	t0=$(date +%s)
	lava-run --job-id "$1" --output-dir "$W/out/$1" --device "$W/devices/$2.yaml" ${4:-} "$3" >"$W/out/$1.log" 2>&1
	echo "# lava-run job $1 ($(basename "$3") on $2${4:+, $4}): exit $?, $(($(date +%s) - t0)) s"
}

# --- (d), first half: the server's set-up runs while (a) to (c) do ------------------------
setup_pid=
if part d; then
	cp "$W/devices/test-rigor-host-sim-01.jinja2" "$S/devices/rigor-host-sim-test.jinja2"
	SUITES="--tag smoke $TOP/testcases/sim.lua"
	subst "$KIT/health-checks/rigor-host.yaml" "$S/health-checks/rigor-host.yaml"
	setup_t0=$(date +%s)
	spawn "$S/log/setup.out" "$KIT/test/test-lava.sh" --setup-server
	setup_pid=$!
fi

# --- (a) way A on the virtual rig --------------------------------------------------------
if ! part a; then
	:
elif BUILD=$BUILD "$TOP/scripts/virtual-rig" start "$W/virtual" >"$W/virtual.log" 2>&1; then
	(
		. "$W/virtual/env"
		export RIGOR_VIRTUAL_DIR RIGOR_STATE_DIR
		subst "$KIT/jobs/rigor-flash-boot.yaml" "$W/jobs/a.yaml"
		lava_run 9001 rigor-virtual-01 "$W/jobs/a.yaml"
	)
	"$TOP/scripts/virtual-rig" stop "$W/virtual" >/dev/null 2>&1
	checks log "$W/out/9001.log" "$W/out/9001/result.yaml" job=pass flash-verified \
		case=lava/file-download=pass case=lava/pdu-reboot=pass case=lava/login-action=pass \
		case=0_rigor-os/os-release=pass case=0_rigor-os/booted-the-card=pass
	# the health check is the same flash, boot and login: lava-run validates its pipeline
	subst "$KIT/health-checks/rigor.yaml" "$W/jobs/a-health.yaml"
	lava_run 9002 rigor-virtual-01 "$W/jobs/a-health.yaml" --validate
	checks log "$W/out/9002.log" "$W/out/9002/result.yaml" job=pass case=lava/validate=pass
else
	note "not ok - the virtual rig starts: $(tail -3 "$W/virtual.log")"
fi

# --- (b) way B on the sim rig --------------------------------------------------------------
SUITES="$TOP/testcases/sim.lua $KIT/test/fail.lua"
subst "$KIT/jobs/rigor-host-suite.yaml" "$W/jobs/b.yaml"
if part b; then
	lava_run 9003 test-rigor-host-sim-01 "$W/jobs/b.yaml"
	checks log "$W/out/9003.log" "$W/out/9003/result.yaml" job=pass case=lava/0_rigor=pass \
		rigor="$W/artifacts/job-9003/results.json" reference=rigor-junit reference=rigor-results
fi

# --- (c) injected rig faults ---------------------------------------------------------------
if part c; then
	rigor --rig sim sim inject power fail >/dev/null
	lava_run 9004 test-rigor-host-sim-01 "$W/jobs/b.yaml"
	rigor --rig sim sim inject power ok >/dev/null
	checks log "$W/out/9004.log" "$W/out/9004/result.yaml" job=fail error-type=Infrastructure \
		"error-msg=power off' failed" case=lava/pdu-reboot=fail no-rigor-cases
	rigor --rig sim sim inject sdmux fail >/dev/null
	lava_run 9005 test-rigor-host-sim-01 "$W/jobs/b.yaml"
	rigor --rig sim sim inject sdmux ok >/dev/null
	checks log "$W/out/9005.log" "$W/out/9005/result.yaml" job=fail error-type=Test \
		"error-msg=^rigor run: exit 3: .*sdmux: sim: injected failure"
fi

# --- (d) lava-server, lava-scheduler, lava-worker, PostgreSQL ------------------------------
get() { # URL [JSON-KEY]: the document, or one key of it; empty on any error
	py -c 'import json, sys, urllib.request
try:
    doc = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
    print(json.loads(doc)[sys.argv[2]] if len(sys.argv) > 2 else doc)
except Exception:
    pass' "$@"
}
if [ -n "$setup_pid" ]; then
	wait "$setup_pid"
	t0=$(date +%s)
	if [ -f "$S/setup.ok" ]; then
		note "ok - lava-server set up on PostgreSQL in the background (initdb, migrate, admin, worker, device type, device: $((t0 - setup_t0)) s, $(grep -c 'Applying' "$S/log/manage.log") migrations)"
	else
		note "not ok - lava-server set up on PostgreSQL: $(tail -3 "$S/log/manage.log" "$S/log/setup.out")"
	fi
	token=$(cat "$S/token" 2>/dev/null)
	wtoken=$(cat "$S/wtoken" 2>/dev/null)
	port=$(py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	URL=http://127.0.0.1:$port
	spawn "$S/log/runserver.log" lava-server manage runserver --noreload "127.0.0.1:$port"
	spawn "$S/log/scheduler.out" lava-server manage lava-scheduler --log-file "$S/log/scheduler.log" --user nobody --group nogroup
	i=0
	until [ -n "$(get "$URL/api/v0.2/system/version/" version)" ] || [ $i -ge 120 ]; do sleep 0.5; i=$((i + 1)); done
	# lava-worker starts lava-run from PATH with its own environment: the rigor variables are
	# the worker's (on a lab: its systemd unit, docs/lava.md)
	spawn "$S/log/worker.out" lava-worker --name worker1 --url "$URL/" --token "$wtoken" \
		--worker-dir "$S/worker" --log-file "$S/log/worker.log" --ping-interval 2 --job-log-interval 2

	SUITES="$TOP/testcases/sim.lua $KIT/test/fail.lua"
	subst "$KIT/jobs/rigor-host-suite.yaml" "$W/jobs/d.yaml"
	job=$(lavacli --uri "http://admin:$token@127.0.0.1:$port/RPC2" jobs submit "$W/jobs/d.yaml" 2>"$S/log/lavacli.err")
	echo "# submitted job '$job' with lavacli"
	# the scheduler runs the health check first (the device's health is Unknown), then the job
	i=0
	while [ "$(get "$URL/api/v0.2/jobs/$job/" state)" != Finished ] && [ $i -lt 300 ]; do sleep 1; i=$((i + 1)); done
	hc=$(get "$URL/api/v0.2/jobs/?health_check=true" | py -c 'import json, sys; r = json.load(sys.stdin)["results"]; print(r[0]["id"] if r else "")' 2>/dev/null)
	echo "# server: health check job '$hc', job '$job' finished $(($(date +%s) - t0)) s after the server started"
	if [ -n "$hc" ]; then
		checks server "$URL" "$hc" job=pass case=lava/job=pass "case=0_rigor-health/power-switches-and-measures=pass"
	else
		note "not ok - the scheduler ran the rigor-host health check"
	fi
	if [ -n "$job" ]; then
		checks server "$URL" "$job" job=pass rigor="$W/artifacts/job-$job/results.json"
	else
		note "not ok - lavacli submitted the job: $(cat "$S/log/lavacli.err")"
	fi
	dev_health=$(get "$URL/api/v0.2/devices/rigor-host-sim-test/" health)
	[ "$dev_health" = Good ] && note "ok - server: the device is Good after its health check" ||
		note "not ok - server: the device is Good after its health check (got '$dev_health')"
fi

cleanup
trap - EXIT
# no process left whose command line names this test's directory
left=$(py -c 'import glob, os, sys
for f in glob.glob("/proc/[0-9]*/cmdline"):
    try:
        args = open(f, "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        continue
    if sys.argv[1] in args and int(f.split("/")[2]) != os.getpid():
        print(f.split("/")[2], args[:120])' "$W")
[ -z "$left" ] && note "ok - no process of the test is left" || note "not ok - processes left: $left"
stray=$(ls "$TOP"/overlay-*.tar.gz "$BUILD"/overlay-*.tar.gz 2>/dev/null)
[ -z "$stray" ] && note "ok - no LAVA overlay left in the source or build tree" || note "not ok - LAVA overlays left: $stray"
if [ -z "$had_var_lib_lava" ] && [ -e /var/lib/lava ]; then
	note "not ok - /var/lib/lava removed"
else
	note "ok - nothing of this test left under /var/lib/lava"
fi

passed=$(grep -c '^ok' "$results")
failed=$(grep -c '^not ok' "$results")
echo "# test-lava: $(($(date +%s) - start_s)) s wall; work files in $W"
echo "test-lava: $passed passed, $failed failed"
[ "$failed" = 0 ]
