#!/bin/sh
# SPDX-License-Identifier: MIT
# rigor gate: gate-file mistakes, the scheduling of cells over two sim rigs of one device
# type, infrastructure retries (a fault that clears, a rig that stays sick, both rigs
# sick), re-runs that tell failed from flaky, quarantine, informative cells, the exit
# codes, the baseline diff, gate merge, the JSON schema, the HTML rendered in Chromium,
# and SIGTERM. Runs `rigor run` for real on the sim back-end (host/tests/gate/). TAP.
T=$(mktemp -d /tmp/rigor-gate-XXXXXX)
. host/tests/tap.sh
PY=${PYTHON:-/usr/bin/python3}
CHECK="$PY host/tests/gate/check.py"
G=host/tests/gate
export RIGOR_STATE_DIR=$T/state RIGOR_RIG_PATH=$G/rigs GATE_TEST_DIR=$T
unset RIGOR_RIG
trap 'kill $bg 2>/dev/null; rm -rf "$T"' EXIT

# gate NAME: write $T/NAME.lua from stdin
gate() { cat >"$T/$1.lua"; }
# expr FILE EXPRESSION DESCRIPTION (Python on the gate.json d; cells["suite@type"])
expr() {
	if $CHECK expr "$1" "$2" >"$T/out" 2>"$T/err"; then ok "$3"; else nok "$3"; fi
}
schema() {
	if $CHECK schema "$1" >"$T/out" 2>"$T/err"; then ok "$2"; else nok "$2"; fi
}
clear_faults() {
	for r in gate-sima gate-simb; do $RIGOR --rig $r sim inject power ok >/dev/null 2>&1; done
}
power_off() {
	$RIGOR --rig "$1" power status >"$T/ps" 2>&1
	has "$T/ps" "^power: off" "$2"
}

# --- rigor --json list rigs (what the gate plans with) ---
run 0 "list rigs --json" $RIGOR --json list rigs
if $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); r={x["name"]: x for x in d["rigs"]}; assert d["schema"]=="rigor.rigs/1"; assert r["gate-sima"]["device_type"]=="simboard"; assert r["gate-sima"]["capabilities"]==["sd","serial"]; assert r["gate-sima"]["valid"]' "$T/out" 2>"$T/err"; then
	ok "list rigs --json: name, device type, capabilities"; else nok "list rigs --json: name, device type, capabilities"; fi
run 0 "list suites --json" $RIGOR --json list suites
if $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["schema"]=="rigor.suites/1" and d["suites"]' "$T/out" 2>"$T/err"; then
	ok "list suites --json: a rigor.suites/1 document"; else nok "list suites --json: a rigor.suites/1 document"; fi

# --- gate-file mistakes: exit 2, every one with file:line ---
gate bad1 <<'EOF'
release { version = "1.0", retries = { infra = -1, rerun = "x" }, flaky = "maybe" }
board "simboard" {
  suits = { "host/tests/gate/suites/pass.lua" },
  suites = { "host/tests/gate/suites/nosuch.lua" },
}
quarantine "pass/power" { expires = "2020-01-01" }
quarantine "nocase" { reason = "r", expires = "someday" }
EOF
run 2 "bad gate file exits 2" $RIGOR gate "$T/bad1.lua" --out "$T/o-bad1"
has "$T/err" "bad1.lua:1: release.retries.infra must be an integer from 0 to 10" "retries out of range, with file:line"
has "$T/err" "bad1.lua:1: release.retries.rerun must be an integer" "a retries value of the wrong type"
has "$T/err" "bad1.lua:1: release.flaky must be \"warn\" or \"fail\"" "flaky policy checked"
has "$T/err" "bad1.lua:2: board \"simboard\": unknown key 'suits'" "unknown key, with the board's line"
has "$T/err" "bad1.lua:2: board \"simboard\": suite file 'host/tests/gate/suites/nosuch.lua' does not exist" "missing suite file"
has "$T/err" "bad1.lua:6: quarantine \"pass/power\": 'reason' is required" "quarantine needs a reason"
has "$T/err" "bad1.lua:6: quarantine \"pass/power\" expired on 2020-01-01" "an expired quarantine entry is an error"
has "$T/err" "bad1.lua:7: quarantine \"nocase\": name a case as 'suite/case'" "quarantine names a case id"
has "$T/err" "bad1.lua:7: .*'expires' must be a date YYYY-MM-DD" "quarantine expiry must be a date"
has "$T/err" "gate file '.*bad1.lua': 9 problems" "every mistake is reported at once"
[ -e "$T/o-bad1" ] && nok "a bad gate file runs nothing" || ok "a bad gate file runs nothing"
gate bad2 <<'EOF'
release { version = "1.0" }
boardd "simboard" { suites = {} }
EOF
run 2 "unknown name exits 2" $RIGOR gate "$T/bad2.lua"
has "$T/err" "bad2.lua:2: unknown name 'boardd'" "an unknown name is reported with its line"
gate bad3 <<'EOF'
board "simboard" { suites = { "host/tests/gate/suites/pass.lua" } ]
EOF
run 2 "syntax error exits 2" $RIGOR gate "$T/bad3.lua"
has "$T/err" "bad3.lua:1:" "a syntax error names file:line"
gate bad4 <<'EOF'
board "simboard" { suites = { "host/tests/gate/suites/pass.lua" }, rigs = { "gate-other" } }
EOF
run 2 "no release, a rig of another device type: exit 2" $RIGOR gate "$T/bad4.lua"
has "$T/err" "no release" "a missing release is named"
gate bad5 <<'EOF'
release { version = "1.0" }
board "simboard" { suites = { "host/tests/gate/suites/pass.lua" }, rigs = { "gate-other" } }
EOF
run 2 "a board naming a rig of another device type exits 2" $RIGOR gate "$T/bad5.lua"
has "$T/err" "bad5.lua:2: board \"simboard\": rig 'gate-other' is a otherboard" "the rig and its device type are named"
run 2 "no gate file" $RIGOR gate
run 2 "unknown option" $RIGOR gate "$T/bad5.lua" --frob
run 2 "missing gate file" $RIGOR gate "$T/nosuch.lua"
has "$T/err" "nosuch.lua: cannot read gate file" "a missing gate file is named"

# --- a passing gate over two rigs ---
gate pass <<'EOF'
release { version = "2.0", description = "two cells, two rigs" }
board "simboard" { suites = { "host/tests/gate/suites/pass.lua", "host/tests/gate/suites/toggle.lua" } }
EOF
run 0 "--list plans without running" $RIGOR gate "$T/pass.lua" --list --out "$T/o-list"
has "$T/out" "^simboard host/tests/gate/suites/pass.lua +required +rigs: gate-sima, gate-simb" "--list shows each cell and its rigs"
[ -e "$T/o-list" ] && nok "--list creates no report directory" || ok "--list creates no report directory"
run 0 "a passing gate exits 0" $RIGOR gate "$T/pass.lua" --out "$T/o-pass"
has "$T/out" "^\[gate-sima\] simboard: host/tests/gate/suites/pass.lua" "live progress names the rig and the cell"
has "$T/out" "^\[gate-simb\] simboard: host/tests/gate/suites/toggle.lua" "the second rig takes the second cell"
has "$T/out" "^\[gate-sima\]   ok +power" "case results are relayed per rig"
has "$T/out" "release 2.0: PASS \(exit 0\)" "the verdict line"
schema "$T/o-pass/gate.json" "gate.json validates against lua/schema/gate.schema.json"
expr "$T/o-pass/gate.json" 'd["verdict"]=="pass" and d["exit_code"]==0 and d["totals"]["passed"]==2' "gate.json: verdict and totals"
expr "$T/o-pass/gate.json" 'cells["pass@simboard"]["rig"]=="gate-sima" and cells["toggle@simboard"]["rig"]=="gate-simb"' "one cell per rig, in parallel"
expr "$T/o-pass/gate.json" 'all(c["host"] and c["rigor_version"] for c in d["cells"])' "each cell records host and rigor version"
expr "$T/o-pass/gate.json" '__import__("os").path.exists("'"$T"'/o-pass/"+cells["pass@simboard"]["attempts"][0]["junit"])' "each attempt keeps its own JUnit"
expr "$T/o-pass/gate.json" '__import__("os").path.exists("'"$T"'/o-pass/"+cells["pass@simboard"]["cases"][0]["log"])' "case log paths resolve from the report directory"
has "$T/o-pass/gate.md" "^## rigor gate: release 2.0 — PASS \(exit 0\)" "gate.md has the verdict"
has "$T/o-pass/gate.md" "^\| simboard \| ✅ passed 2/2 \| ✅ passed 3/3 \|" "gate.md has the matrix"
power_off gate-sima "DUT off after the gate (rig 1)"
power_off gate-simb "DUT off after the gate (rig 2)"
if $RIGOR --rig gate-sima --wait 0 power status >/dev/null 2>&1; then ok "no lock left held"; else nok "no lock left held"; fi

# --- infrastructure: a fault that clears on retry ---
gate infra <<'EOF'
release { version = "2.0", retries = { infra = 2, rerun = 0 } }
board "simboard" { suites = { "host/tests/gate/suites/pass.lua" }, rigs = { "gate-sima", "gate-simb" } }
EOF
clear_faults
$RIGOR --rig gate-sima sim inject power fail-once >/dev/null
run 0 "an infrastructure fault that clears: retried on the same rig, passes" $RIGOR gate "$T/infra.lua" --out "$T/o-infra1"
has "$T/out" "infrastructure error \(exit 3\); retrying" "the retry is announced"
expr "$T/o-infra1/gate.json" '[(a["rig"],a["exit_code"]) for a in cells["pass@simboard"]["attempts"]]==[("gate-sima",3),("gate-sima",0)]' "attempts: gate-sima exit 3, then gate-sima exit 0"
# --- a rig that stays sick: retried there once, then on the other rig ---
$RIGOR --rig gate-sima sim inject power fail >/dev/null
run 0 "a sick rig: the cell moves to the other rig of its type" $RIGOR gate "$T/infra.lua" --out "$T/o-infra2"
expr "$T/o-infra2/gate.json" '[(a["rig"],a["exit_code"]) for a in cells["pass@simboard"]["attempts"]]==[("gate-sima",3),("gate-sima",3),("gate-simb",0)]' "attempts: gate-sima, gate-sima, then gate-simb"
# --- both rigs sick: exit 3 ---
$RIGOR --rig gate-simb sim inject power fail >/dev/null
run 3 "infrastructure on every rig: exit 3" $RIGOR gate "$T/infra.lua" --out "$T/o-infra3"
expr "$T/o-infra3/gate.json" 'd["verdict"]=="incomplete" and cells["pass@simboard"]["status"]=="infra" and len(cells["pass@simboard"]["attempts"])==3' "cell infra after 3 attempts"
expr "$T/o-infra3/gate.json" '"infrastructure error after 3 attempts on gate-s" in cells["pass@simboard"]["reason"] and "injected failure" in cells["pass@simboard"]["reason"]' "the reason names the attempts and the error"
schema "$T/o-infra3/gate.json" "gate.json of an infrastructure failure validates"
clear_faults

# --- failed vs flaky, quarantine, informative ---
gate flaky <<'EOF'
release { version = "2.0", retries = { rerun = 2 } }
board "simboard" { suites = { "host/tests/gate/suites/flaky.lua" } }
EOF
rm -f "$T/coin.count"
run 0 "a case failing one time in two is flaky: exit 0 (flaky = warn)" $RIGOR gate "$T/flaky.lua" --out "$T/o-flaky"
# the two re-runs may run at once on the two rigs: which ends first is not fixed
expr "$T/o-flaky/gate.json" 'cells["flaky@simboard"]["status"]=="flaky" and [k for k in cells["flaky@simboard"]["cases"] if k["id"]=="flaky/coin"][0]["runs"][0]=="failed" and "passed" in [k for k in cells["flaky@simboard"]["cases"] if k["id"]=="flaky/coin"][0]["runs"]' "flaky/coin: failed, then passed on a re-run"
expr "$T/o-flaky/gate.json" 'len([a for a in cells["flaky@simboard"]["attempts"] if a["kind"]=="rerun" and a["case"]=="flaky/coin"])==2' "the failing case is re-run alone, twice"
sed 's/rerun = 2 }/rerun = 2 }, flaky = "fail"/' "$T/flaky.lua" >"$T/flaky-fail.lua"
rm -f "$T/coin.count"
run 1 "flaky = fail: a flaky required case fails the gate" $RIGOR gate "$T/flaky-fail.lua" --out "$T/o-flaky2"
gate always <<'EOF'
release { version = "2.0", retries = { rerun = 2 } }
board "simboard" { suites = { "host/tests/gate/suites/always.lua" } }
EOF
run 1 "a case that always fails: exit 1" $RIGOR gate "$T/always.lua" --out "$T/o-always"
expr "$T/o-always/gate.json" '[k for k in cells["always@simboard"]["cases"] if k["id"]=="always/broken"][0]["runs"]==["failed","failed","failed"]' "always/broken: failed on every run"
expr "$T/o-always/gate.json" '"always fails" in [k for k in cells["always@simboard"]["cases"] if k["id"]=="always/broken"][0]["message"]' "the failure message is kept"
expr "$T/o-always/gate.json" '"always/broken" in [k for k in cells["always@simboard"]["cases"] if k["id"]=="always/broken"][0]["log_tail"]' "the case log tail is kept"
has "$T/o-always/gate.md" "❌ simboard \`always/broken\` \*\*failed\*\*" "gate.md lists the failure"
gate quar <<'EOF'
release { version = "2.0", retries = { rerun = 1 } }
board "simboard" { suites = { "host/tests/gate/suites/always.lua" } }
quarantine "always/broken" { reason = "known bug 123", expires = "2099-12-31" }
quarantine "always/other" { reason = "not in this gate", expires = "2099-12-31", device_type = "simboard" }
EOF
run 0 "a quarantined failing case does not fail the gate" $RIGOR gate "$T/quar.lua" --out "$T/o-quar"
has "$T/out" "PASSED \(1 passed, 0 failed, 0 flaky, 0 skipped, 1 quarantined\)" "progress counts the quarantined case apart"
expr "$T/o-quar/gate.json" '[k for k in cells["always@simboard"]["cases"] if k["id"]=="always/broken"][0]["quarantine"]["reason"]=="known bug 123"' "the case is reported with its quarantine"
expr "$T/o-quar/gate.json" '[q["used"] for q in d["quarantine"]]==[True,False]' "unused quarantine entries are marked"
gate info <<'EOF'
release { version = "2.0", retries = { rerun = 0 } }
board "simboard" {
  suites = { "host/tests/gate/suites/pass.lua" },
  informative = { "host/tests/gate/suites/always.lua" },
}
EOF
run 0 "a failing informative cell does not fail the gate" $RIGOR gate "$T/info.lua" --out "$T/o-info"
expr "$T/o-info/gate.json" 'cells["always@simboard"]["status"]=="failed" and not cells["always@simboard"]["required"]' "the informative cell is reported failed"

# --- incomplete: only skipped, no rig; a failure wins over incomplete ---
gate skip <<'EOF'
release { version = "2.0" }
board "simboard" { suites = { "host/tests/gate/suites/skip.lua" } }
EOF
run 3 "a required cell whose cases all skip: exit 3" $RIGOR gate "$T/skip.lua" --out "$T/o-skip"
expr "$T/o-skip/gate.json" 'cells["skip@simboard"]["status"]=="skipped" and cells["skip@simboard"]["reason"]=="every case was skipped"' "the skipped cell says why"
gate norig <<'EOF'
release { version = "2.0" }
board "nosuchboard" { suites = { "host/tests/gate/suites/pass.lua" } }
EOF
run 3 "no rig of a required device type: exit 3" $RIGOR gate "$T/norig.lua" --out "$T/o-norig"
expr "$T/o-norig/gate.json" 'cells["pass@nosuchboard"]["status"]=="norig" and "no rig of device type nosuchboard" in cells["pass@nosuchboard"]["reason"]' "the cell says no rig"
gate both <<'EOF'
release { version = "2.0", retries = { rerun = 0 } }
board "simboard" { suites = { "host/tests/gate/suites/always.lua" } }
board "nosuchboard" { suites = { "host/tests/gate/suites/pass.lua" } }
EOF
run 1 "a real failure wins over an incomplete cell: exit 1" $RIGOR gate "$T/both.lua" --out "$T/o-both"

# --- baseline ---
gate base1 <<'EOF'
release { version = "1.0", retries = { rerun = 0 }, env = { GATE_FAIL = "b,c", GATE_SLOW_MS = "1500" } }
board "simboard" { suites = { "host/tests/gate/suites/toggle.lua", "host/tests/gate/suites/always.lua", "host/tests/gate/suites/slow.lua" } }
EOF
gate base2 <<'EOF'
release { version = "1.1", retries = { rerun = 0 }, env = { GATE_FAIL = "a,c", GATE_SLOW_MS = "4000" } }
board "simboard" { suites = { "host/tests/gate/suites/toggle.lua", "host/tests/gate/suites/pass.lua", "host/tests/gate/suites/slow.lua" } }
EOF
run 1 "baseline release 1.0" $RIGOR gate "$T/base1.lua" --out "$T/hist/1.0"
run 1 "release 1.1 against the history directory" $RIGOR gate "$T/base2.lua" --out "$T/o-base2" --baseline "$T/hist"
expr "$T/o-base2/gate.json" 'd["baseline"]["release"]=="1.0" and d["baseline"]["file"].endswith("hist/1.0/gate.json")' "the newest gate.json of the directory is the baseline"
expr "$T/o-base2/gate.json" 'sorted((c["case"],c["change"]) for c in d["baseline"]["changes"])==[("always/broken","gone"),("always/ok","gone"),("pass/arith","new-case"),("pass/power","new-case"),("slow/waits","slower"),("toggle/a","new-failure"),("toggle/b","fixed"),("toggle/c","still-failing")]' "diff: new-failure, fixed, still-failing, new-case, gone, slower"
schema "$T/o-base2/gate.json" "gate.json with a baseline validates"
expr "$T/o-base2/gate.json" '[cells[k]["attempts"][0]["dir"][:8] for k in ("pass@simboard","slow@simboard","toggle@simboard")]==["runs/001","runs/002","runs/003"]' "cells start longest first by the baseline (a new cell first)"
has "$T/o-base2/gate.md" "^\*\*Since 1.0\*\*: 1 new-failure, 1 fixed, 1 still-failing, 2 new-case, 2 gone, 1 slower" "gate.md summarises the diff"
run 2 "merge refuses results of different releases" $RIGOR gate merge --out "$T/o-mix" "$T/hist/1.0/gate.json" "$T/o-base2/gate.json"
has "$T/err" "merge results of one release" "the refusal says why"

# --- gate merge: two hosts' halves of one gate ---
gate split <<'EOF'
release { version = "3.0", retries = { rerun = 0 } }
board "simboard" { suites = { "host/tests/gate/suites/pass.lua" } }
board "otherboard" { suites = { "host/tests/gate/suites/always.lua" }, informative = { "host/tests/gate/suites/toggle.lua" } }
EOF
run 0 "host 1: --only-board simboard" $RIGOR gate "$T/split.lua" --only-board simboard --out "$T/h1"
run 1 "host 2: --only-rig gate-other (simboard has no rig there)" $RIGOR gate "$T/split.lua" --only-rig gate-other --out "$T/h2"
expr "$T/h2/gate.json" 'cells["pass@simboard"]["status"]=="norig"' "host 2 could not run simboard"
run 1 "merge: exit 1 from host 2's failure" $RIGOR gate merge --out "$T/merged" "$T/h1/gate.json" "$T/h2/gate.json"
expr "$T/merged/gate.json" 'cells["pass@simboard"]["status"]=="passed" and cells["always@otherboard"]["status"]=="failed" and len(d["cells"])==3' "merged: the cell that ran beats the one without a rig"
expr "$T/merged/gate.json" 'all(__import__("os").path.exists("'"$T"'/merged/"+a["results"]) for c in d["cells"] for a in c["attempts"])' "merged artifact paths resolve from the merged report"
schema "$T/merged/gate.json" "merged gate.json validates"
has "$T/merged/gate.md" "^\| otherboard \| — \| ❌ failed 1/2 \| ✅ passed 3/3 \(informative\) \|" "merged matrix has both boards"

# --- the HTML report, rendered by Chromium ---
if command -v chromium >/dev/null 2>&1; then
	# 900 px wide; the matrix is at the top, so one screen shows it with its colours
	timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
		--user-data-dir="$T/chromium" --window-size=900,700 --screenshot="$T/shot.png" \
		"file://$T/merged/gate.html" >"$T/out" 2>"$T/err"
	if [ -s "$T/shot.png" ]; then ok "Chromium renders gate.html"; else nok "Chromium renders gate.html"; fi
	# passed green, failed red (lua/rigor/report/gate_html.lua COLORS)
	if $CHECK colors "$T/shot.png" "#2e9e44" "#d73a3a" >"$T/out" 2>"$T/err"; then
		ok "the screenshot shows the matrix: green and red cells ($(cat "$T/out"))"
	else nok "the screenshot shows the matrix: green and red cells"; fi
	if grep -q '<script\|https\?://' "$T/merged/gate.html"; then nok "gate.html has no script and no network reference"; else ok "gate.html has no script and no network reference"; fi
else
	echo "ok $((n + 1)) # SKIP chromium is not installed (scripts/install-deps installs it)"; n=$((n + 1))
fi

# --- SIGTERM stops every cell, leaves the rigs safe, exits 143 ---
gate slow <<'EOF'
release { version = "4.0", env = { GATE_SLOW_MS = "60000" } }
board "simboard" { suites = { "host/tests/gate/suites/slow.lua", "host/tests/gate/suites/pass.lua" } }
EOF
$RIGOR gate "$T/slow.lua" --out "$T/o-term" >"$T/term.out" 2>&1 &
bg=$!
# both rigs busy: wait for the slow cell to start (10 s bound: two process starts)
i=0; while ! grep -q "gate-sima\] simboard: host/tests/gate/suites/slow.lua" "$T/term.out" && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.5
kill -TERM $bg
wait $bg
rc=$?
if [ $rc = 143 ]; then ok "SIGTERM: the gate exits 143"; else echo "# exit $rc"; cp "$T/term.out" "$T/out"; nok "SIGTERM: the gate exits 143"; fi
expr "$T/o-term/gate.json" 'd["verdict"]=="interrupted" and cells["slow@simboard"]["status"]=="interrupted"' "gate.json says interrupted"
power_off gate-sima "DUT off after SIGTERM"
if $RIGOR --rig gate-sima --wait 0 power status >/dev/null 2>&1; then ok "no lock left after SIGTERM"; else nok "no lock left after SIGTERM"; fi

# --- the CI examples of docs/release-gate.md and docs/ci.md parse ---
if $CHECK ci-doc docs/ci.md >"$T/out" 2>"$T/err"; then ok "docs/ci.md: the GitLab and GitHub examples parse as YAML"; else nok "docs/ci.md: the GitLab and GitHub examples parse as YAML"; fi
if $CHECK ci-yaml docs/release-gate.md >"$T/out" 2>"$T/err"; then ok "docs/release-gate.md: the GitLab and GitHub examples parse as YAML"; else nok "docs/release-gate.md: the GitLab and GitHub examples parse as YAML"; fi

tap_done
