#!/bin/sh
# SPDX-License-Identifier: MIT
# CLI behaviour: exit codes, help, rig-file errors with file:line, locking, the interlock.
# Prints TAP.
T=$(mktemp -d /tmp/rigor-cli-XXXXXX)
. host/tests/tap.sh
export RIGOR_STATE_DIR=$T/state
R=host/tests/rigs
trap 'kill $bg 2>/dev/null; rm -rf "$T"' EXIT


run 0 "--help" $RIGOR --help
has "$T/out" "exit status: 0 passed, 1 test failures, 2 usage" "--help lists exit codes"
for c in run list drivers check power sdmux button console usbboot storage who lua sim; do
	run 0 "$c --help" $RIGOR $c --help
	has "$T/out" "^usage: rigor .*$c" "$c --help prints its usage"
done
printf 'print("script got " .. arg[1])\n' >"$T/args.lua"
run 0 "lua FILE --help goes to the script" $RIGOR lua "$T/args.lua" --help
has "$T/out" "^script got --help" "script saw --help"
run 2 "help for an unknown command" $RIGOR help nosuch
has "$T/err" "'nosuch' is not a rigor command" "help names the unknown command"
run 2 "--wait needs a number" $RIGOR --wait soon who
run 2 "unknown command" $RIGOR frobnicate
has "$T/err" "'frobnicate' is not a rigor command" "unknown command is named"
run 2 "no command" $RIGOR

run 0 "drivers" $RIGOR drivers
for role in power sdmux button console usbboot storage; do
	has "$T/out" "^$role +sim " "drivers lists the $role sim back-end"
done
has "$T/out" "^sdmux +usbsdmux +Linux Automation USB-SD-Mux" "drivers lists the usbsdmux back-end"
has "$T/out" "^usbboot +rpiboot +Raspberry Pi" "drivers lists the rpiboot back-end"

# rig files: every mistake reported with file:line, exit 2
run 2 "unknown role" $RIGOR --rig $R/bad-role.lua power status
has "$T/err" "bad-role.lua:3: unknown role 'powr'" "unknown role has file:line"
run 2 "unknown back-end" $RIGOR --rig $R/bad-backend.lua power status
has "$T/err" "bad-backend.lua:3: unknown back-end 'relay9000' for role power \(available: .*sim.*\)" "unknown back-end lists alternatives"
run 2 "bad parameters" $RIGOR --rig $R/bad-param.lua check $R/bad-param.lua
has "$T/err" "bad-param.lua:3: power \(sim\): parameter 'min_off_ms' must be an integer, not a string" "wrong type reported"
has "$T/err" "bad-param.lua:6: storage \(file\): missing parameter 'path'" "missing parameter reported"
has "$T/err" "bad-param.lua:7: console \(sim\): unknown parameter 'baud'" "unknown parameter reported"
has "$T/err" "has 3 problems" "all three problems counted"
run 2 "bad USB identities" $RIGOR check $R/bad-usb.lua
has "$T/err" "bad-usb.lua:3: sdmux \(sdwire\): parameter 'vid_pid': 'not-an-id' is not a USB VID:PID" "check rejects a malformed vid_pid with file:line"
has "$T/err" "bad-usb.lua:4: console \(serial\): parameter 'udev.ID-MODEL': 'ID-MODEL' is not a udev property name" "a bad udev property name is reported"
has "$T/err" "bad-usb.lua:7: storage \(usb\): parameter 'udev' must be a table of udev properties" "udev must be a table"
has "$T/err" "has 3 problems" "the good USB keys are no problem"
run 2 "syntax error" $RIGOR --rig $R/bad-syntax.lua power status
has "$T/err" "bad-syntax.lua:3: '}' expected \(to close '\{' at line 1\) near 'power'" "syntax error has file:line"
run 2 "no rig table" $RIGOR --rig $R/no-rig.lua power status
has "$T/err" "no rig \{ \.\.\. \} in the file" "file without rig{} reported"
run 2 "button without name" $RIGOR --rig $R/bad-button.lua power status
has "$T/err" "bad-button.lua:3: a button needs a name" "unnamed button reported"
run 2 "missing rig" $RIGOR --rig nosuchrig power status
has "$T/err" "no rig 'nosuchrig'" "missing rig is named"
# A source-tree path typed in another directory: say the file is missing, offer the rig of
# that name on the rig path, and never look for "X.lua.lua".
case $RIGOR in /*) abs=$RIGOR ;; *) abs=$PWD/$RIGOR ;; esac
mkdir -p "$T/elsewhere"
run 2 "path-like --rig that does not exist" env -C "$T/elsewhere" "$abs" --rig rigs/virtual.lua power status
has "$T/err" "rig file 'rigs/virtual.lua' does not exist \(relative to $T/elsewhere\)" "missing rig file is called missing"
has "$T/err" "did you mean --rig virtual \(.*/rigs/virtual\.lua\)" "missing rig file suggests the rig of that name"
if grep -q "\.lua\.lua" "$T/err"; then nok "no X.lua.lua in the message"; else ok "no X.lua.lua in the message"; fi

# The flash progress bar on a terminal (script(1) gives rigor a pty): the write phase of an
# xz image has the decoded total from the xz index and a percentage, never "64.0/0.0 MiB".
if command -v script >/dev/null && command -v xz >/dev/null; then
	head -c 4194304 /dev/urandom >"$T/bar.img" && xz -k -T1 "$T/bar.img"
	TERM=xterm script -qec "'$abs' flash '$T/bar.img.xz' --no-bmap --target '$T/bar.card' --force --create" \
		/dev/null </dev/null | tr '\r' '\n' >"$T/bar.out"
	has "$T/bar.out" '^\[#* *\] write +[0-9.]+/4\.0 MiB +[0-9]+%' "flash on a terminal: the xz write phase has its total and a percentage"
	has "$T/bar.out" '^\[#{30}\] done +4\.0/4\.0 MiB 100%' "flash on a terminal: the bar ends full at 100 %"
	if grep -q '/0\.0 MiB' "$T/bar.out"; then nok "flash on a terminal: never a 0.0 total"; else ok "flash on a terminal: never a 0.0 total"; fi
	# a scheduler's pseudo-terminal (LAVA, CI runners) says TERM=dumb: plain lines, no control codes
	TERM=dumb script -qec "'$abs' flash '$T/bar.img.xz' --no-bmap --target '$T/bar2.card' --force --create" \
		/dev/null </dev/null >"$T/dumb.out"
	has "$T/dumb.out" '^rigor: flash: done +4\.0/4\.0 MiB' "TERM=dumb on a pty: plain progress lines"
	# the pty turns each \n into \r\n; any other \r would be a redrawn bar
	if sed 's/\r$//' "$T/dumb.out" | grep -q "$(printf '\r\|\033')"; then nok "TERM=dumb on a pty: no carriage return or escape code"; else ok "TERM=dumb on a pty: no carriage return or escape code"; fi
	TERM=xterm script -qec "'$abs' flash '$T/bar.img.xz' --no-bmap --target '$T/bar3.card' --force --create --progress plain" \
		/dev/null </dev/null >"$T/plain.out"
	if grep -q "$(printf '\033')" "$T/plain.out" || ! grep -q '^rigor: flash: done' "$T/plain.out"; then nok "--progress plain on a terminal: lines, no escape code"; else ok "--progress plain on a terminal: lines, no escape code"; fi
else
	ok "# SKIP flash progress bar on a terminal: no script(1) or xz"
fi
run 0 "flash --progress none" "$abs" flash "$T/bar.img.xz" --no-bmap --target "$T/bar4.card" --force --create --progress none
if grep -q "rigor: flash: write\|rigor: flash: done" "$T/err"; then nok "--progress none: no progress lines"; else ok "--progress none: no progress lines"; fi
run 2 "flash --progress with a bad mode" "$abs" flash "$T/bar.img.xz" --target "$T/bar5.card" --force --create --progress fancy
has "$T/err" "--progress takes auto, bar, plain or none, not 'fancy'" "the bad mode is named with the choices"
run 2 "bare .lua --rig that does not exist" env -C "$T/elsewhere" "$abs" --rig nosuchrig.lua power status
has "$T/err" "rig file 'nosuchrig.lua' does not exist" "missing .lua file without a namesake"
if grep -q "did you mean\|\.lua\.lua" "$T/err"; then nok "no suggestion without a namesake"; else ok "no suggestion without a namesake"; fi
run 0 "check rigs/sim.lua" $RIGOR check rigs/sim.lua
for f in rigs/*.lua rigs/examples/*.lua; do
	run 0 "shipped rig file $f validates" $RIGOR check "$f"
done
run 0 "RIGOR_RIG selects a rig" env RIGOR_RIG=rigs/sim.lua $RIGOR power status

# manual control on the sim rig
run 0 "power off" $RIGOR power off
run 0 "power on" $RIGOR power on
has "$T/out" "^power: on \(5100 mV, 450 mA\)" "power on shows mV/mA"
run 0 "power status --json" $RIGOR power status --json
has "$T/out" '^\{"rig":"sim","power":"on","mv":5100,"ma":450\}$' "power status JSON"
run 2 "interlock refuses mux to host while powered" $RIGOR sdmux host
has "$T/err" "interlock: refusing to switch the SD card to the host while the DUT is powered" "interlock explains itself"
run 0 "sdmux status" $RIGOR sdmux status
has "$T/out" "^sdmux: off" "mux did not move"
run 0 "power cycle" $RIGOR power cycle
run 0 "power off again" $RIGOR power off
run 0 "mux to host after power off" $RIGOR --json sdmux host
has "$T/out" '"sdmux":"host"' "sdmux JSON"
run 2 "unknown mux side" $RIGOR sdmux sideways
run 2 "unknown power action" $RIGOR power sideways
run 0 "button press" $RIGOR button boot --hold 10
run 0 "button hold" $RIGOR button boot --down
run 0 "button release" $RIGOR button boot --up
run 2 "unknown button" $RIGOR button nope
has "$T/err" "has no button 'nope' \(buttons: boot, reset\)" "unknown button lists buttons"
run 0 "storage status" $RIGOR storage status
has "$T/out" "^target: .*/sim.card" "storage resolves the virtual card"
run 2 "usbboot without --dir" $RIGOR usbboot
has "$T/err" "give a directory, or msd_dir in the usbboot entry" "usbboot without --dir and msd_dir says what to do"
run 2 "list unknown kind" $RIGOR list widgets
run 0 "list cases --case" $RIGOR list cases --case interlock testcases/sim.lua
has "$T/out" "^basics/interlock keeps the card" "list cases --case prints the match"
if [ "$(wc -l <"$T/out")" = 1 ]; then ok "list cases --case prints only the match"; else nok "list cases --case prints only the match"; fi
run 0 "list cases --tag (default testcases/)" $RIGOR list cases --tag smoke --case=power
has "$T/out" "^basics/power switches and measures \[smoke\]" "list cases --tag --case=P from testcases/"
run 0 "list cases --tag that nothing has" $RIGOR list cases --tag no-such-tag testcases/sim.lua
if [ -s "$T/out" ]; then nok "list cases --tag: nothing selected, nothing printed"; else ok "list cases --tag: nothing selected, nothing printed"; fi
run 0 "list suites --tag" $RIGOR list suites --tag smoke testcases/sim.lua
has "$T/out" "^basics \([0-9]+ cases\)" "list suites --tag counts the selected cases"
run 2 "list refuses run's options" $RIGOR list cases --junit x.xml
has "$T/err" "list: unknown option '--junit'" "list names the option it refuses"

# JSON output is valid whatever the strings hold: a state directory (so the sim card's
# path) with '"', '\' and a newline, a rig name with those and a byte that is not UTF-8
# (shown as U+FFFD)
json_ok() { python3 -c 'import json,sys; json.load(sys.stdin)' <"$1" 2>"$T/err"; }
json_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(ascii(eval(sys.argv[1])))' "$2" <"$1"; }
H="$T/st\"ate\\dir
x"
mkdir -p "$H"
printf 'rig {\n  name = "ev\\"il\\\\rig\\n\\xff",\n  power = sim { mv = 5000, ma = 100 },\n  sdmux = sim {},\n  storage = sim { size_mb = 1 },\n}\n' >"$T/hostile.lua"
head -c 65536 /dev/zero >"$T/img\"q\\b.img"
for cmd in "power status" "sdmux status" "storage status"; do
	# shellcheck disable=SC2086
	run 0 "hostile strings: $cmd --json" env RIGOR_STATE_DIR="$H" $RIGOR --rig "$T/hostile.lua" $cmd --json
	if json_ok "$T/out"; then ok "hostile strings: $cmd --json parses"; else nok "hostile strings: $cmd --json parses"; fi
	if [ "$(json_get "$T/out" 'd["rig"]')" = "'ev\"il\\\\rig\\n\\ufffd'" ]; then ok "$cmd --json: rig name kept, bad byte as U+FFFD"; else json_get "$T/out" 'd["rig"]' >"$T/err"; nok "$cmd --json: rig name kept, bad byte as U+FFFD"; fi
done
json_get "$T/out" 'd["target"]' >"$T/tgt"
has "$T/tgt" 'st"ate\\\\dir\\nx/' "storage status --json: the target path with '\"', '\\' and a newline"
run 0 "hostile strings: flash --json" env RIGOR_STATE_DIR="$H" $RIGOR --rig "$T/hostile.lua" flash "$T/img\"q\\b.img" --json
if json_ok "$T/out"; then ok "hostile strings: flash --json parses"; else nok "hostile strings: flash --json parses"; fi
json_get "$T/out" '(d["target"], d["format"], d["written"] >= 0, d["seconds"]["total"] >= 0)' >"$T/fl"
has "$T/fl" "st\"ate.*'raw', True, True" "flash --json: target path, format and figures"
run 0 "storage status --json after a flash" env RIGOR_STATE_DIR="$H" $RIGOR --rig "$T/hostile.lua" storage status --json
json_get "$T/out" 'd["image"]' >"$T/im"
has "$T/im" 'img"q' "storage status --json: the flashed image path with '\"' and '\\'"

# list suites and cases --json: one document, valid JSON whatever the names hold
mkdir -p "$T/hs"
printf 'local T = require "rigor.test"\nlocal s = T.suite("ev\\"il\\\\s\\255\\1", { tags = { "t\\254" } })\ns:case("c\\n\\"q\\"", function() end)\ns:case("plain", { tags = { "x" } }, function() end)\nreturn s\n' >"$T/hs/h.lua"
run 0 "list cases --json, hostile names" $RIGOR --json list cases "$T/hs/h.lua"
if json_ok "$T/out"; then ok "list cases --json parses"; else nok "list cases --json parses"; fi
# py_ok FILE EXPR DESCRIPTION: EXPR (Python, the document as d) holds
py_ok() { if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert eval(sys.argv[2])' "$1" "$2" 2>"$T/err"; then ok "$3"; else nok "$3"; fi; }
py_ok "$T/out" 'd["schema"] == "rigor.cases/1" and len(d["cases"]) == 2 and d["cases"][0]["name"] == "c\n\"q\"" and d["cases"][1]["tags"] == ["t\\xFE", "x"] and d["cases"][0]["suite"] == "ev\"il\\s\\xFF\x01"' "list cases --json: names with quotes, newlines, controls and bad bytes kept"
run 0 "list suites --json after the kind" $RIGOR list suites --json "$T/hs/h.lua"
if json_ok "$T/out"; then ok "list suites --json parses"; else nok "list suites --json parses"; fi
py_ok "$T/out" 'd["schema"] == "rigor.suites/1" and d["suites"][0]["cases"] == 2 and d["suites"][0]["tags"] == ["t\\xFE"]' "list suites --json: count and tags"
run 0 "list cases --json, nothing selected" $RIGOR --json list cases --tag none "$T/hs/h.lua"
json_get "$T/out" 'd["cases"]' >"$T/ln"
has "$T/ln" "^\[\]$" "an empty selection is an empty array"
run 2 "list --json without a kind" $RIGOR --json list
has "$T/err" "say which: rigs, suites or cases" "list --json asks which"

# console: power on with the card on the DUT side, the sim board boots to a login prompt
# The console attaches first and power goes on from another process while it is attached
# (the console holds only the console lock): attaching after the boot would show nothing,
# as a real UART does, and a slow start (sanitizers, a loaded machine) would miss it.
$RIGOR power off >/dev/null 2>&1
$RIGOR sdmux dut >/dev/null 2>&1
(i=0; until $RIGOR who 2>/dev/null | grep -q console || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
 $RIGOR power on >/dev/null 2>&1) &
run 0 "console shows the boot" $RIGOR console --timeout 4 --log $T/console.log
wait $!
has "$T/out" "login: " "console reached the login prompt"
# The sim board's early lines depend on how long after power-on the console attaches (slow
# under the sanitizers); the login prompt is its last line and is always there.
if grep -q "console: .*login: " $T/console.log; then ok "console log written"; else nok "console log written"; fi

# interactive: a terminal (script(1) provides one), keystrokes reach the DUT, Ctrl-] quits
(sleep 1; printf 'echo tty-ok\r'; sleep 0.5; printf '\035') |
	timeout 20 script -qfec "$RIGOR console" /dev/null >"$T/tty.out" 2>&1
rc=$?
if [ $rc = 0 ]; then ok "interactive console quits on Ctrl-]"; else echo "# exit $rc"; nok "interactive console quits on Ctrl-]"; fi
has "$T/tty.out" "^tty-ok" "interactive console: typed command answered"
has "$T/tty.out" "console closed" "interactive console: closing message"

# infrastructure errors: exit 3
run 0 "inject a vanished power switch" $RIGOR sim inject power gone
run 3 "device gone is an infrastructure error" $RIGOR power on
has "$T/err" "power: sim: device disappeared" "device-gone message"
run 0 "clear the fault" $RIGOR sim inject power ok

# locking: a second control command finds the rig busy, with who holds it; --wait waits
# (a console does not hold the controls: host/tests/lock.sh)
$RIGOR button boot --hold 2000 >/dev/null 2>&1 </dev/null &
bg=$!
sleep 0.5
run 3 "busy rig" $RIGOR power status
has "$T/err" "rig 'sim' is busy: control held by pid $bg \(rigor button boot --hold 2000\), user [^ ]+, since" "busy rig names the holder"
run 0 "who names the holder" $RIGOR who
has "$T/out" "control +held by pid $bg" "who output"
run 0 "--wait waits for the lock" $RIGOR --wait 10 power off
wait $bg 2>/dev/null
run 0 "who after release" $RIGOR who
has "$T/out" "is free" "lock released when the holder exits"
# a killed holder never leaves a stale lock
$RIGOR button boot --hold 30000 >/dev/null 2>&1 </dev/null &
bg=$!
sleep 0.5
kill -9 $bg
wait $bg 2>/dev/null
run 0 "lock of a killed process is free" $RIGOR power off
$RIGOR button boot --up >/dev/null 2>&1

tap_done
