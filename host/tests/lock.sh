#!/bin/sh
# SPDX-License-Identifier: MIT
# Locks for a shared lab, on the sim rig: a console never blocks the controls, two control
# users exclude each other, run takes the whole rig, another Unix user sees the lock and
# its holder, reservations (acquire, token, release) end with their owner, who --json.
# Prints TAP.
T=$(mktemp -d /tmp/rigor-lock-XXXXXX)
. host/tests/tap.sh
export RIGOR_STATE_DIR=$T/state
unset RIGOR_LOCK_DIR RIGOR_TOKEN
OTHER=
bg= con=
trap 'kill $bg $con 2>/dev/null; [ -n "$OTHER" ] && userdel -f "$OTHER" 2>/dev/null; rm -rf "$T"' EXIT
json_ok() { python3 -c 'import json,sys; json.load(sys.stdin)' <"$1" 2>"$T/err"; }
# py_ok FILE EXPR DESCRIPTION: EXPR (Python, the JSON document as d) holds
py_ok() { if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert eval(sys.argv[2])' "$1" "$2" 2>"$T/err"; then ok "$3"; else nok "$3"; fi; }

$RIGOR power off >/dev/null 2>&1
$RIGOR sdmux dut >/dev/null 2>&1

# ---- a console on a terminal does not stop a power cycle in another process ----
# script(1) gives the console a pseudo-terminal, as LAVA's connection command has; Ctrl-]
# after 4 s ends it.
(sleep 4; printf '\035') | timeout 20 script -qfec "$RIGOR console" /dev/null >"$T/con.out" 2>&1 &
con=$!
i=0; until $RIGOR who | grep -q console || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
run 0 "who while a console is attached" $RIGOR who
has "$T/out" "^  console +held by pid [0-9]+ \(rigor console\), user [^ ]+, since " "who names the console viewer"
run 0 "power cycle while the console is attached" $RIGOR --wait 5 power cycle
run 0 "sdmux status while the console is attached" $RIGOR sdmux status
run 0 "button press while the console is attached" $RIGOR button boot --hold 10
run 3 "a second console is refused" $RIGOR console --timeout 1
has "$T/err" "rig 'sim' is busy: console held by pid [0-9]+ \(rigor console\)" "the second console names the first"
run 3 "run needs the console too" $RIGOR run --case power testcases/sim.lua --artifacts $T/a1 -q
has "$T/err" "busy: console held by" "run names the console holder"
wait $con
rc=$?
con=
if [ $rc = 0 ]; then ok "console quits on Ctrl-]"; else echo "# exit $rc"; nok "console quits on Ctrl-]"; fi
has "$T/con.out" "sim-dut login: " "the console saw the board boot to its login prompt after the cycle"

# ---- two control users exclude each other; the holder is named ----
$RIGOR button boot --hold 6000 >/dev/null 2>&1 </dev/null &
bg=$!
i=0; until $RIGOR who | grep -q control || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
run 3 "a second control user is busy" $RIGOR power on
has "$T/err" "rig 'sim' is busy: control held by pid $bg \(rigor button boot --hold 6000\), user [^ ]+, since [0-9-]+T" "busy names the holder: pid, command, user, since"
run 0 "a console attaches while control is held" $RIGOR console --timeout 0
run 0 "who --json" $RIGOR --json who
if json_ok "$T/out"; then ok "who --json parses"; else nok "who --json parses"; fi
py_ok "$T/out" 'd["schema"] == "rigor.who/1" and not d["free"] and d["holders"][0]["what"] == "control" and d["holders"][0]["pid"] == '"$bg"' and d["holders"][0]["command"] == "rigor button boot --hold 6000" and d["holders"][0]["user"] and d["holders"][0]["since_ms"] > 0' "who --json: what, pid, command, user, since"
run 0 "--wait waits for the control lock" $RIGOR --wait 30 power off
wait $bg; bg=
run 0 "who --json when free" $RIGOR --json who
py_ok "$T/out" 'd["free"] and d["holders"] == []' "who --json: free, no holders"

# ---- reservations: acquire, token, release ----
R=$(pwd)/$RIGOR
cat >"$T/job.sh" <<EOF
tok=\$($R acquire) || exit 9
echo "token \$tok"
$R power on; echo "no token: \$?"
$R --token "\$tok" power on >/dev/null; echo "--token: \$?"
RIGOR_TOKEN=\$tok $R power off >/dev/null; echo "RIGOR_TOKEN: \$?"
$R --json who >"$T/who.json"
RIGOR_TOKEN=\$tok $R release; echo "release: \$?"
$R power status >/dev/null; echo "after release: \$?"
EOF
run 0 "a job acquires, uses and releases the rig" sh "$T/job.sh"
cp "$T/out" "$T/job.out"
has "$T/job.out" "^token [0-9a-f]{32}$" "acquire prints a token"
has "$T/job.out" "^no token: 3$" "without the token the rig is refused (exit 3)"
has "$T/err" "rig 'sim' is reserved by pid [0-9]+ \(sh .*job.sh \(by rigor acquire\)\), user" "the refusal names the reservation's owner"
has "$T/job.out" "^--token: 0$" "--token gives the rig"
has "$T/job.out" "^RIGOR_TOKEN: 0$" "RIGOR_TOKEN gives the rig"
has "$T/job.out" "^release: 0$" "release with the token"
has "$T/job.out" "^after release: 0$" "free again after release"
tok=$(sed -n 's/^token //p' "$T/job.out")
py_ok "$T/who.json" 'd["holders"][0]["what"] == "reservation" and d["holders"][0]["token"] == "'"$tok"'"' "who --json shows the reservation and its token"
run 2 "release needs a token" $RIGOR release
printf 'print("child sees " .. tostring(os.getenv("RIGOR_TOKEN")))\n' >"$T/env.lua"
run 0 "--token reaches the processes rigor starts" env -u RIGOR_TOKEN $RIGOR --token t0k lua "$T/env.lua"
has "$T/out" "^child sees t0k$" "RIGOR_TOKEN set from --token"
# the owner's end ends it: the parent of 'rigor acquire' by default, or --pid
run 0 "a job that exits without releasing" sh -c "$R acquire >/dev/null"
run 0 "its reservation ended with it" $RIGOR power off
sleep 60 &
bg=$!
run 0 "acquire --pid" $RIGOR acquire --pid $bg
tok=$(cat "$T/out")
run 3 "the owner lives: reserved" $RIGOR power on
run 3 "another token cannot take it" $RIGOR --token 0123 acquire
run 0 "the same token renews it" $RIGOR --token "$tok" acquire --pid $bg
run 0 "who names the owner" $RIGOR who
has "$T/out" "reservation +held by pid $bg \(sleep 60 \(by rigor .*acquire --pid $bg\)\), user [^ ]+, since .*, token $tok" "who: owner pid, command, user, token"
kill -9 $bg
sleep 0.2
# not yet reaped by this shell (a zombie): it has ended all the same
run 0 "a killed owner leaves no stale reservation" $RIGOR power on
wait $bg 2>/dev/null; bg=
run 0 "who after the owner died" $RIGOR who
has "$T/out" "is free" "free once the owner is gone"
run 3 "its token is refused at once" $RIGOR --wait 30 --token "$tok" power off
has "$T/err" "has no reservation for token '$tok'" "the refusal says the reservation is gone"
run 2 "acquire for a process that does not exist" $RIGOR acquire --pid 999999999
sleep 60 &
bg=$!
$RIGOR acquire --pid $bg >/dev/null 2>&1
run 3 "reserved again" $RIGOR power off
run 0 "release --force ends anyone's" $RIGOR release --force
run 0 "free after --force" $RIGOR power off
kill $bg; wait $bg 2>/dev/null; bg=
# a killed control holder leaves no stale lock either
$RIGOR button boot --hold 30000 >/dev/null 2>&1 </dev/null &
bg=$!
i=0; until $RIGOR who | grep -q control || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -9 $bg; wait $bg 2>/dev/null; bg=
run 0 "a killed control holder leaves no stale lock" $RIGOR power off
$RIGOR button boot --up >/dev/null 2>&1

# ---- one lock directory for the host: another user sees the lock and its holder ----
L=$T/locks
chmod 755 "$T"
run 0 "RIGOR_LOCK_DIR alone holds locks and state" env -u RIGOR_STATE_DIR RIGOR_LOCK_DIR=$L $RIGOR power off
if [ -f "$L/sim.lock" ] && [ -f "$L/sim.state" ]; then ok "lock and state files in RIGOR_LOCK_DIR"; else ls -la "$L" >"$T/out"; nok "lock and state files in RIGOR_LOCK_DIR"; fi
mode=$(stat -c %a "$L")
if getent group rigor >/dev/null; then
	if [ "$mode" = 2775 ] && [ "$(stat -c %G "$L")" = rigor ]; then ok "the lock directory: group rigor, mode 2775"; else echo "# mode $mode"; nok "the lock directory: group rigor, mode 2775"; fi
else
	if [ "$mode" = 777 ]; then ok "the lock directory: mode 0777 without a group 'rigor'"; else echo "# mode $mode"; nok "the lock directory: mode 0777 without a group 'rigor'"; fi
	has "$T/err" "writable by every user: there is no group 'rigor'" "creating it says why it is open to all"
fi
if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null || ! command -v runuser >/dev/null; then
	ok "# SKIP another Unix user: needs root, useradd and runuser"
else
	OTHER=rigt$$
	if ! useradd -M -N -s /bin/sh "$OTHER" 2>"$T/err"; then
		OTHER=
		ok "# SKIP another Unix user: useradd failed: $(head -1 "$T/err")"
	else
		as_other() { runuser -u "$OTHER" -- env -u RIGOR_STATE_DIR RIGOR_LOCK_DIR=$L "$@"; }
		t_hold=$(date +%s%N)
		env -u RIGOR_STATE_DIR RIGOR_LOCK_DIR=$L $RIGOR button boot --hold 8000 >/dev/null 2>&1 </dev/null &
		bg=$!
		i=0; until as_other $RIGOR who 2>/dev/null | grep -q control || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
		run 0 "another user runs who" as_other $RIGOR who
		has "$T/out" "control +held by pid $bg \(rigor button boot --hold 8000\), user $(id -un), since" "another user sees the first user's lock and its holder"
		run 0 "another user runs who --json" as_other $RIGOR --json who
		py_ok "$T/out" 'not d["free"] and d["holders"][0]["pid"] == '"$bg"' and d["holders"][0]["user"] == "'"$(id -un)"'" and d["holders"][0]["command"] == "rigor button boot --hold 8000"' "who --json for another user: the holder's pid, user and command"
		run 3 "another user's power command is busy" as_other $RIGOR power on
		has "$T/err" "busy: control held by pid $bg \(rigor button boot --hold 8000\), user $(id -un), since " "the busy message names the other user's holder: pid, command, user"
		run 0 "another user attaches the console meanwhile" as_other $RIGOR console --timeout 0
		run 0 "another user waits and then switches (state files shared)" as_other $RIGOR --wait 30 power off
		# it waited: the holder lets go 8 s after it started at the earliest
		waited=$((($(date +%s%N) - t_hold) / 1000000))
		if [ $waited -ge 8000 ]; then ok "another user's --wait waited for the holder to let go ($waited ms after it started)"; else nok "another user's --wait waited for the holder to let go (done $waited ms after it started)"; fi
		wait $bg; bg=
		as_other $RIGOR button boot --hold 8000 >/dev/null 2>&1 </dev/null &
		bg=$!
		i=0; until env -u RIGOR_STATE_DIR RIGOR_LOCK_DIR=$L $RIGOR who 2>/dev/null | grep -q control || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
		run 3 "the first user finds the other user's lock" env -u RIGOR_STATE_DIR RIGOR_LOCK_DIR=$L $RIGOR power on
		has "$T/err" "user $OTHER" "and names the other user"
		wait $bg; bg=
	fi
fi

tap_done
