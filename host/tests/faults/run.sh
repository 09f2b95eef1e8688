#!/bin/sh
# SPDX-License-Identifier: MIT
# The fault matrix, run half: suites, rig files, `rigor lua`, signals during runs, locks
# and injected back-end faults on the sim rig. Every case asserts the exit code, the
# message, no success line, the lock released, the DUT off and (for runs) valid reports;
# see host/tests/faults/lib.sh. The flash half is host/tests/faults/flash.sh. Prints TAP.
T=$(mktemp -d /tmp/rigor-faults-run-XXXXXX)
. host/tests/tap.sh
. host/tests/faults/lib.sh
export RIGOR_STATE_DIR=$T/state
trap 'rm -rf "$T"' EXIT
RIGOR=$(realpath "$RIGOR")

cat >"$T/rig.lua" <<'EOR'
rig {
  name = "faults",
  device_type = "raspberrypi4-64",
  capabilities = { "sd", "serial" },
  power = sim { min_off_ms = 20, mv = 5100, ma = 450 },
  sdmux = sim {},
  button = { boot = sim { press_ms = 20 } },
  console = sim { line_ms = 5, hostname = "sim-dut" },
  storage = sim { size_mb = 4 },
}
EOR
RIG=$T/rig.lua
export F_SUCCESS_RE='^(ok|PASS) [0-9]+ cases?:'

# suite FILE CASE-BODY...: a one-case suite "f" whose case powers the DUT on first
suite() {
	f=$1
	shift
	{
		echo 'local t = require "rigor.test"'
		echo "local s = t.suite(\"f\", { timeout = ${TMO:-1500} })"
		echo 's:case("c", function(rig)'
		echo '  assert(rig.power:on())'
		# for sig-run: the case is running (SIG_MARK, when the caller set it)
		echo '  if os.getenv("SIG_MARK") then io.open(os.getenv("SIG_MARK"), "w"):close() end'
		printf '%s\n' "$@"
		echo 'end)'
		echo 's:case("later", function(rig) end)'
		echo 'return s'
	} >"$T/$f.lua"
}
# R NAME ARGS...: rigor run with every report into $T/NAME/
R() {
	d=$T/$1
	shift
	rm -rf "$d"
	echo "$RIGOR --rig $RIG run --junit $d/junit.xml --json $d/results.json --tap $d/results.tap --artifacts $d/art $*"
}
SIG=host/tests/faults/sig-run

# ---- cases that try to end early or hold on past their deadline ----
suite exit0 'os.exit(0)'
F_RIG=$RIG F_REPORTS=$T/exit0 fault "os.exit(0) in a case is an error, not a pass" 1 \
	"os.exit\(0\) called" $(R exit0 "$T/exit0.lua")
suite exit1 'os.exit(1, true)'
F_RIG=$RIG F_REPORTS=$T/exit1 fault "os.exit(1, true) in a case" 1 "os.exit\(1\) called" \
	$(R exit1 "$T/exit1.lua")
suite exitp 'pcall(os.exit, 0)' 'print("survived")'
F_RIG=$RIG F_REPORTS=$T/exitp fault "os.exit caught by pcall still fails the case" 1 \
	"os.exit\(0\) called" $(R exitp "$T/exitp.lua")
suite pcl 'while true do pcall(function() while true do end end) end'
F_RIG=$RIG F_REPORTS=$T/pcl fault "pcall loop cannot swallow the case timeout" 1 \
	"timed out after 1500 ms" $(R pcl "$T/pcl.lua")
suite xpcl 'while true do xpcall(function() while true do end end, function(e) return e end) end'
F_RIG=$RIG F_REPORTS=$T/xpcl fault "xpcall loop with a handler cannot either" 1 \
	"timed out after 1500 ms" $(R xpcl "$T/xpcl.lua")
suite co 'local c = coroutine.wrap(function() while true do pcall(function() while true do end end) end end)' 'c()'
F_RIG=$RIG F_REPORTS=$T/co fault "busy loop inside a coroutine times out" 1 \
	"timed out after 1500 ms" $(R co "$T/co.lua")
suite slowc 'while true do os.execute("sleep 0.07") end'
F_RIG=$RIG F_REPORTS=$T/slowc fault "loop around a slow command times out on time" 1 \
	"timed out after 1500 ms" $(R slowc "$T/slowc.lua")
suite exe 'os.execute("sleep 60")'
F_RIG=$RIG F_REPORTS=$T/exe fault "os.execute of a long command is cut by the deadline" 1 \
	"timed out after 1500 ms" $(R exe "$T/exe.lua")
suite popen 'io.popen("sleep 60"):read("a")'
F_RIG=$RIG F_REPORTS=$T/popen fault "io.popen of a long command is cut by the deadline" 1 \
	"timed out after 1500 ms" $(R popen "$T/popen.lua")
suite hook 'debug.sethook()' 'while true do end'
F_RIG=$RIG F_REPORTS=$T/hook fault "debug.sethook cannot remove the deadline" 1 \
	"debug.sethook is not available" $(R hook "$T/hook.lua")
TMO=20000 suite deep 'local function f() return 1 + f() end' 'f()'
F_RIG=$RIG F_REPORTS=$T/deep fault "stack overflow is a case error" 1 "stack overflow" \
	$(R deep "$T/deep.lua")
suite badobj 'error(setmetatable({}, { __tostring = function() error("tostring fails") end }))'
F_RIG=$RIG F_REPORTS=$T/badobj fault "an error object whose __tostring raises" 1 "ERROR c" \
	$(R badobj "$T/badobj.lua")
suite nilerr 'error(nil)'
F_RIG=$RIG F_REPORTS=$T/nilerr fault "error(nil)" 1 "ERROR c" $(R nilerr "$T/nilerr.lua")
suite yield 'coroutine.yield(1)'
F_RIG=$RIG F_REPORTS=$T/yield fault "yield outside a coroutine" 1 "ERROR c" $(R yield "$T/yield.lua")
suite expect 'rig.console:expect("never printed", 600000)'
F_RIG=$RIG F_REPORTS=$T/expect fault "console expect bounded by the case deadline" 1 \
	"timed out after 1500 ms" $(R expect "$T/expect.lua")
suite hang 'assert(rig:inject("sdmux", "hang"))' 'rig.sdmux:set("dut")'
F_RIG=$RIG F_REPORTS=$T/hang fault "hung back-end call cut by the deadline" 1 \
	"timed out after 1500 ms" $(R hang "$T/hang.lua")
"$RIGOR" --rig "$RIG" lua /dev/stdin <<'EOF' >/dev/null 2>&1
assert(rig:inject("sdmux", "ok"))
EOF
suite gone 'assert(rig:inject("sdmux", "gone"))' 'rig.sdmux:set("dut")'
F_RIG=$RIG F_REPORTS=$T/gone fault "a back-end that disappears is an infrastructure error" 3 \
	"disappeared|RIG_E_NODEV|no such device" $(R gone "$T/gone.lua")
"$RIGOR" --rig "$RIG" lua /dev/stdin <<'EOF' >/dev/null 2>&1
assert(rig:inject("sdmux", "ok"))
EOF
suite rf 'local ok, msg = rig:read_file("resin-boot", "/config.json")' \
	'assert(ok == nil and msg:find("interlock", 1, true), msg)' 'error("card read while powered")'
F_RIG=$RIG F_REPORTS=$T/rf fault "rig:read_file refused while the card is on the DUT's side" 1 \
	"card read while powered" $(R rf "$T/rf.lua")

# ---- hooks ----
cat >"$T/ba.lua" <<'EOF'
local t = require "rigor.test"
local s = t.suite("ba", { timeout = 5000 })
s:before_all(function(rig)
  assert(rig.power:on())
  print("setup output that must be kept")
  t.log("setup log line")
  error("setup failed")
end)
s:case("c", function(rig) end)
return s
EOF
F_RIG=$RIG F_REPORTS=$T/ba fault "failing before_all: every case errors, with file:line" 1 \
	"before_all: .*ba.lua:7: setup failed" $(R ba "$T/ba.lua")
if grep -q "setup log line" "$T/ba/art/ba/suite.log" && grep -q "after_all" "$T/ba/art/ba/suite.log"; then
	ok "before_all's log survives after_all in suite.log"
else
	nok "before_all's log survives after_all in suite.log"
fi
has "$T/ba/junit.xml" "setup log line" "the JUnit of a failing before_all carries the suite log"
cat >"$T/skipall.lua" <<EOF
local t = require "rigor.test"
local s = t.suite("skipall", { timeout = 5000 })
s:before_all(function(rig) io.open("$T/before_all.ran", "w"):close() end)
s:case("needs usbboot", { requires = { "usbboot" } }, function(rig) end)
return s
EOF
F_RIG=$RIG F_REPORTS=$T/skipall F_SUCCESS_RE=NONE fault "every case skipped: the run passes" 0 \
	"1 skipped" $(R skipall "$T/skipall.lua")
if [ -e "$T/before_all.ran" ]; then nok "before_all does not run when every case skips"; else ok "before_all does not run when every case skips"; fi
cat >"$T/loadloop.lua" <<'EOF'
local t = require "rigor.test"
while true do end
EOF
F_RIG=$RIG fault "a suite file that loops at load time" 2 "did not finish within" \
	$(R loadloop "$T/loadloop.lua")
printf 'local s = (\n' >"$T/syntax.lua"
F_RIG=$RIG fault "a suite file with a syntax error" 2 "syntax.lua:2:" $(R syntax "$T/syntax.lua")
printf 'return 42\n' >"$T/nosuite.lua"
F_RIG=$RIG fault "a file that defines no suite" 2 "defines no suite" $(R nosuite "$T/nosuite.lua")
F_RIG=$RIG fault "a missing suite file" 2 "cannot read '.*nosuch.lua'" $(R missing "$T/nosuch.lua")
suite fine 'assert(rig.power:off())'
F_RIG=$RIG fault "an unknown run option" 2 "unknown option '--frobnicate'" \
	$(R opt "$T/fine.lua") --frobnicate
: >"$T/afile"
F_RIG=$RIG fault "a report in a directory that is a file" 2 "cannot write JUnit report" \
	"$RIGOR" --rig "$RIG" run --junit "$T/afile/junit.xml" "$T/fine.lua"
mkdir -p "$T/adir.xml"
F_RIG=$RIG fault "a report path that is a directory" 2 "cannot write JSON report" \
	"$RIGOR" --rig "$RIG" run --json "$T/adir.xml" "$T/fine.lua"

# ---- reports ----
TMO=30000 suite rmrep "os.execute('rm -rf $T/rmrep')"
F_RIG=$RIG fault "the report directory vanishes mid-run: exit 3, not a pass" 3 \
	"cannot write '.*rmrep/junit.xml'" $(R rmrep "$T/rmrep.lua")
TMO=30000 suite killed 'require("rigor.core").sleep(30000)'
mkdir -p "$T/killed"
for f in junit.xml results.json results.tap; do echo stale >"$T/killed/$f"; done
F_SUCCESS_RE=NONE fault "SIGKILL mid-run: exit 137" 137 "" env SIG_MARK="$T/sig.mark" "$SIG" KILL 1 \
	$RIGOR --rig $RIG run --junit $T/killed/junit.xml --json $T/killed/results.json \
	--tap $T/killed/results.tap "$T/killed.lua"
if ls "$T/killed" | grep -Eq '^(junit.xml|results.json|results.tap)$'; then
	nok "a killed run leaves no report, not the stale one of an earlier run"
else
	ok "a killed run leaves no report, not the stale one of an earlier run"
fi
"$RIGOR" --rig "$RIG" power off >/dev/null 2>&1 ||
	echo "# the lock of the killed run was not released"

# ---- signals during runs (to the whole process group, as a terminal sends them) ----
TMO=30000 suite sexe 'os.execute("sleep 30")'
F_RIG=$RIG F_REPORTS=$T/sint fault "SIGINT while a case runs a command: exit 130, not a pass" 130 \
	"interrupted by SIGINT" env SIG_MARK="$T/sig.mark" "$SIG" INT 1 $(R sint "$T/sexe.lua")
TMO=30000 suite sbusy 'while true do end'
F_RIG=$RIG F_REPORTS=$T/sterm fault "SIGTERM during a busy loop: exit 143" 143 \
	"interrupted by SIGTERM" env SIG_MARK="$T/sig.mark" "$SIG" TERM 1 $(R sterm "$T/sbusy.lua")
TMO=30000 suite ssleep 'require("rigor.core").sleep(30000)'
F_RIG=$RIG F_REPORTS=$T/shup fault "SIGHUP (terminal closed): exit 129, cleaned up" 129 \
	"interrupted by SIGHUP" env SIG_MARK="$T/sig.mark" "$SIG" HUP 1 $(R shup "$T/ssleep.lua")
F_RIG=$RIG F_REPORTS=$T/squit fault "SIGQUIT: exit 131, cleaned up" 131 \
	"interrupted by SIGQUIT" env SIG_MARK="$T/sig.mark" "$SIG" QUIT 1 $(R squit "$T/ssleep.lua")
TMO=30000 suite spop 'for i = 1, 100 do io.popen("sleep 0.05; echo x"):read("a") end' 'while true do pcall(os.execute, "sleep 1") end'
F_RIG=$RIG F_REPORTS=$T/spop fault "SIGINT with pcall around os.execute: still interrupted" 130 \
	"interrupted by SIGINT" env SIG_MARK="$T/sig.mark" "$SIG" INT 2 $(R spop "$T/spop.lua")
cat >"$T/sba.lua" <<'EOF'
local t = require "rigor.test"
local s = t.suite("sba", { timeout = 60000 })
s:before_all(function(rig) assert(rig.power:on()); io.open(os.getenv("SIG_MARK"), "w"):close(); os.execute("sleep 30") end)
s:case("c", function(rig) end)
return s
EOF
F_RIG=$RIG F_REPORTS=$T/sba fault "SIGTERM during before_all" 143 "interrupted by SIGTERM" \
	env SIG_MARK="$T/sig.mark" "$SIG" TERM 1 $(R sba "$T/sba.lua")
F_RIG=$RIG F_REPORTS=$T/pipe F_SUCCESS_RE=NONE fault "stdout closed early (| head): no SIGPIPE death" 0 "" \
	sh -c "$(R pipe "$T/fine.lua") | head -c 1 >/dev/null"

# ---- rig files ----
printf 'rig { name = "loop", power = sim {} }\nwhile true do end\n' >"$T/loop-rig.lua"
fault "a rig file with an endless loop" 2 "loop-rig.lua:2: the rig file did not finish within" \
	"$RIGOR" --rig "$T/loop-rig.lua" power status
printf 'local t = {}\nfor i = 1, 1e9 do t[i] = string.rep("x", 1000) .. i end\nrig { name = "m" }\n' >"$T/mem-rig.lua"
fault "a rig file that eats memory" 2 "not enough memory|did not finish within" \
	"$RIGOR" --rig "$T/mem-rig.lua" power status
printf 'rig { name = "p" }\nwhile true do pcall(function() while true do end end) end\n' >"$T/pc-rig.lua"
fault "a rig file looping around pcall" 2 "did not finish within|pcall" \
	"$RIGOR" --rig "$T/pc-rig.lua" power status
fault "SIGINT while a rig file loads: exit 130" 130 "interrupted" \
	"$SIG" INT 1 "$RIGOR" --rig "$T/loop-rig.lua" power status
mkdir -p "$T/rigpath"
cp "$T/loop-rig.lua" "$T/rigpath/"
cp "$RIG" "$T/rigpath/"
F_SUCCESS_RE=NONE fault "rigor list rigs with a looping rig file on the path" 0 "loop-rig.lua .*invalid" \
	env RIGOR_RIG_PATH="$T/rigpath" "$RIGOR" list rigs
fault "a missing rig file" 2 "rig file '.*nosuch-rig.lua' does not exist" "$RIGOR" --rig "$T/nosuch-rig.lua" power status
printf 'rig { name = "s", power = sim { min_off_ms = "soon" } }\n' >"$T/bad-rig.lua"
fault "a rig parameter of the wrong type" 2 "bad-rig.lua:1: power \(sim\): parameter 'min_off_ms' must be an integer" \
	"$RIGOR" --rig "$T/bad-rig.lua" power status

# ---- rigor lua ----
printf 'assert(rig.power:on())\nio.open(os.getenv("SIG_MARK"), "w"):close()\nwhile true do end\n' >"$T/busy.lua"
F_RIG=$RIG fault "SIGINT to rigor lua in a busy loop: exit 130, DUT off" 130 "interrupted" \
	env SIG_MARK="$T/sig.mark" "$SIG" INT 1 "$RIGOR" --rig "$RIG" lua "$T/busy.lua"
printf 'assert(rig.power:on())\nio.open(os.getenv("SIG_MARK"), "w"):close()\nwhile true do pcall(os.execute, "sleep 5") end\n' >"$T/busyx.lua"
F_RIG=$RIG fault "SIGTERM to rigor lua in a pcall(os.execute) loop: exit 143" 143 "interrupted" \
	env SIG_MARK="$T/sig.mark" "$SIG" TERM 1 "$RIGOR" --rig "$RIG" lua "$T/busyx.lua"
printf 'assert(rig.power:off())\nos.exit(5)\n' >"$T/exit5.lua"
F_RIG=$RIG F_SUCCESS_RE=NONE fault "os.exit(5) in rigor lua exits 5 after cleanup" 5 "" \
	"$RIGOR" --rig "$RIG" lua "$T/exit5.lua"

# ---- locks and concurrency ----
# The holder keeps the rig until its flag file is removed (30 s at most), not for a fixed
# time: on a loaded machine (sanitizers, parallel builds) starting the contender can take
# longer than any fixed hold, and the contender must still find the rig held.
cat >"$T/hold.lua" <<EOF
assert(rig.power:off())
local core, t0 = require("rigor.core"), require("rigor.core").now_ms()
while io.open("$T/hold.flag") and core.now_ms() - t0 < 30000 do core.sleep(50) end
EOF
# hold: start a holder of the rig and return once it holds the lock; unhold ends it
cat >"$T/hold.sh" <<EOF
: >'$T/hold.flag'
'$RIGOR' --rig '$RIG' lua '$T/hold.lua' &
i=0
until '$RIGOR' --rig '$RIG' who | grep -q 'held by'; do
	i=\$((i + 1)); [ \$i -gt 200 ] && break; sleep 0.02
done
EOF
F_RIG=$RIG fault "a second run on a held rig is refused busy" 3 "busy|held by" \
	sh -c ". '$T/hold.sh'; $(R busy "$T/fine.lua"); rc=\$?; rm -f '$T/hold.flag'; wait; exit \$rc"
F_RIG=$RIG fault "SIGTERM while waiting for the lock" 143 "interrupted" \
	sh -c ". '$T/hold.sh'; '$SIG' TERM 1 '$RIGOR' --rig '$RIG' --wait 30 run '$T/fine.lua'; rc=\$?; rm -f '$T/hold.flag'; wait; exit \$rc"

fault_done
tap_done
