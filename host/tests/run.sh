#!/bin/sh
# SPDX-License-Identifier: MIT
# rigor run: exit codes, reports, safe state and signals; and the Lua binding tests.
# Prints TAP.
T=$(mktemp -d /tmp/rigor-run-XXXXXX)
. host/tests/tap.sh
export RIGOR_STATE_DIR=$T/state
S=host/tests/suites
trap 'kill $bg 2>/dev/null; rm -rf "$T"' EXIT
power_off() {
	$RIGOR power status >"$T/ps" 2>&1
	has "$T/ps" "^power: off" "$1"
}

# the binding, from Lua
$RIGOR --rig sim lua host/tests/lua_api.lua >"$T/lua.tap" 2>&1
rc=$?
sed -n 's/^\(not \)\{0,1\}ok [0-9]* - /&lua: /p' "$T/lua.tap" | while read -r line; do :; done
if [ $rc = 0 ] && ! grep -q '^not ok' "$T/lua.tap"; then ok "Lua binding tests ($(grep -c '^ok' "$T/lua.tap") checks)"; else cp "$T/lua.tap" "$T/out"; nok "Lua binding tests"; fi

run 0 "passing suite" $RIGOR run testcases/sim.lua --artifacts $T/a0
# Debian 12's prove (Test::Harness 3.44) rejects TAP 14; --tap-version 13 is what it reads
run 0 "--tap-version 13" $RIGOR run testcases/sim.lua --tap $T/t13.tap --tap-version 13 --artifacts $T/a13
has "$T/t13.tap" "^TAP version 13" "--tap-version 13 writes TAP version 13"
if prove --exec cat "$T/t13.tap" >"$T/out" 2>"$T/err"; then ok "prove passes on rigor's TAP 13"; else nok "prove passes on rigor's TAP 13"; fi
run 2 "--tap-version takes 13 or 14" $RIGOR run testcases/sim.lua --tap-version 12
has "$T/err" "takes 13 or 14" "a bad --tap-version is named"
run 1 "a failing case exits 1" $RIGOR run $S/mixed.lua --junit $T/j1.xml --tap $T/t1.tap --json $T/r1.json --artifacts $T/a1
has "$T/out" "FAIL +fails" "human report names the failing case"
has "$T/j1.xml" '<failure' "junit has the failure"
has "$T/j1.xml" "^last [0-9]+ lines of $T/a1/mixed/fails.log:" "junit: the failure's body ends with the case log's last lines"
has "$T/j1.xml" "^\[\[ATTACHMENT\|$T/a1/mixed/fails.log\]\]</failure>" "junit: the failure names the full log as an attachment (GitLab, Jenkins)"
has "$T/t1.tap" '^not ok' "tap has the failure"
if xmllint --noout --schema lua/schema/junit.xsd "$T/j1.xml" 2>"$T/err"; then ok "junit validates against the schema"; else nok "junit validates"; fi
# the suite's own log (setup and teardown) reaches CI as the testsuite's system-out
python3 -c 'import sys, xml.etree.ElementTree as E
s = E.parse(sys.argv[1]).getroot().find("testsuite")
o = s.find("system-out") if s is not None else None
print(o.text if o is not None else "")' "$T/j1.xml" >"$T/sout" 2>&1
has "$T/sout" "runner: suite 'mixed' before_all" "junit: the testsuite's system-out holds the suite log"
power_off "DUT off after a failing run"
run 3 "an infrastructure failure exits 3" $RIGOR run $S/infra.lua --artifacts $T/a3
run 2 "a broken suite file exits 2" $RIGOR run $S/broken.lua --artifacts $T/a2
has "$T/err" "broken.lua:3" "the load error names file:line"
run 2 "no suites given" $RIGOR run
run 2 "unknown option" $RIGOR run --frobnicate x.lua
run 0 "--case selects one case" $RIGOR run testcases/sim.lua --case interlock --json $T/sel.json --artifacts $T/a4
has "$T/sel.json" '"name": "interlock keeps the card' "selected case ran"
if grep -q '"name": "power switches' "$T/sel.json"; then nok "other cases not run"; else ok "other cases not run"; fi

# one option parser (rigor.runner.parse_argv) for every documented option
run 0 "-q: no live report" $RIGOR run -q testcases/sim.lua --case interlock --artifacts $T/aq
if [ -s "$T/out" ]; then nok "-q prints nothing on stdout"; else ok "-q prints nothing on stdout"; fi
run 0 "--opt=value and --no-color" $RIGOR run --case=interlock --tap=$T/eq.tap --no-color testcases/sim.lua --artifacts=$T/aeq
has "$T/eq.tap" "^ +ok 1 - interlock" "--tap=FILE written with the --case=PATTERN selection"
run 2 "a report option without its file" $RIGOR run testcases/sim.lua --junit
has "$T/err" "option '--junit' needs a value" "the missing value is named"
run 2 "a directory that does not exist" $RIGOR run $T/nosuchdir
has "$T/err" "cannot read '.*nosuchdir'" "the unreadable path is named"
# --list: a dry run, with the filters, that neither opens nor locks the rig
run 0 "run --list" $RIGOR run --list --tag smoke --case interlock testcases/
has "$T/out" "^basics/interlock keeps the card from the host while powered \[smoke\]$" "--list prints the selected case"
if [ "$(wc -l <"$T/out")" = 1 ]; then ok "--list prints only the selection"; else nok "--list prints only the selection"; fi
run 0 "run --list does not open the rig" $RIGOR --rig nosuchrig run --list testcases/sim.lua
$RIGOR console --timeout 3 >/dev/null 2>&1 </dev/null &
bg=$!
sleep 0.5
run 0 "run --list while another command holds the rig" $RIGOR run --list --case power testcases/sim.lua
has "$T/out" "^basics/power cycle reboots" "--list lists while the rig is busy"
run 3 "a real run finds it busy" $RIGOR run --case power testcases/sim.lua --artifacts $T/abusy
wait $bg 2>/dev/null
run 2 "run --list of a broken suite" $RIGOR run --list $S/broken.lua

# per-case logs: console output belongs to the case it arrived in, and every log line
# (console, rig, runner, test) starts on its own line with its time stamp
run 0 "two-case suite on the sim console" $RIGOR run $S/caselogs.lua --artifacts $T/acl
l1=$T/acl/case-logs/boots-without-reading-the-console.log l2=$T/acl/case-logs/logs-in.log
has "$l1" "console: sim-dut login: " "the boot and login prompt are in the log of the case that booted"
if grep -q "boot ROM\|login: " "$l2"; then cp "$l2" "$T/out"; nok "the next case's log does not start with them"; else ok "the next case's log does not start with them"; fi
head -1 "$l2" >"$T/first"
has "$T/first" "^\[[0-9:.]+\] runner: case 'case logs/logs in' start" "the next case's log starts with its start line"
cat "$l1" "$l2" >"$T/logs"
if grep -vq '^\[[0-9:.]*\] [a-z]' "$T/logs"; then cp "$T/logs" "$T/out"; nok "every log line starts on its own line with a stamp"; else ok "every log line starts on its own line with a stamp"; fi
has "$l2" "^\[[0-9:.]+\] test: at the shell prompt$" "a test line after a console prompt is a line of its own"
has "$l2" "^\[[0-9:.]+\] console \(continued\): echo second$" "the console line cut by it goes on, marked as continued"
l3=$T/acl/case-logs/after-a-prompt.log
has "$l2" "^\[[0-9:.]+\] console: # $" "the prompt left unread at the end of a case is in that case's log"
head -1 "$l3" >"$T/first"
has "$T/first" "^\[[0-9:.]+\] runner: case 'case logs/after a prompt' start" "the case after it starts with its own start line"
if grep -q "console" "$l3"; then cp "$l3" "$T/out"; nok "the case after it holds no leftover prompt"; else ok "the case after it holds no leftover prompt"; fi

# signals: abort the case, clean up, leave the DUT off, write reports, free the lock
for sig in INT TERM; do
	want=130
	[ $sig = TERM ] && want=143
	$RIGOR run $S/slow.lua --junit $T/js.xml --json $T/rs.json --artifacts $T/as >"$T/out" 2>"$T/err" </dev/null &
	bg=$!
	i=0
	while ! grep -q slow-case-started "$T/err" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	kill -$sig $bg
	wait $bg
	rc=$?
	if [ $rc = $want ]; then ok "SIG$sig mid-case exits $want"; else echo "# got $rc"; nok "SIG$sig exits $want"; fi
	has "$T/js.xml" "interrupted|SIG$sig" "SIG$sig: junit marks the interrupted case"
	has "$T/rs.json" "SIG$sig|interrupted" "SIG$sig: json records the interruption"
	power_off "SIG$sig: DUT left powered off"
	$RIGOR who >"$T/who" 2>&1
	has "$T/who" "is free" "SIG$sig: lock released"
done

tap_done
