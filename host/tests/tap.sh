# SPDX-License-Identifier: MIT
# Shared by the shell tests: TAP output and the checks they make. Source it after setting
# $T (a scratch directory). Each check prints "ok N - ..." or "not ok N - ..." with the
# captured output as diagnostics; tap_done prints the plan and exits.
BUILD=${BUILD:-build}
RIGOR=${RIGOR:-$BUILD/rigor}
n=0
fail=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
# The diagnostics always end with a newline: output without one must not swallow the next
# TAP line.
nok() {
	n=$((n + 1)); fail=1; echo "not ok $n - $1"
	{ cat "$T/out" 2>/dev/null; echo; cat "$T/err" 2>/dev/null; echo; } | grep -v '^$' | sed 's/^/# /' | tail -20
}
# run EXPECTED_RC DESCRIPTION CMD...: check the exit code; output in $T/out, $T/err
run() {
	want=$1 desc=$2
	shift 2
	"$@" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
	if [ "$rc" = "$want" ]; then ok "$desc (exit $rc)"; else echo "# got exit $rc, want $want"; nok "$desc"; fi
}
# has FILE REGEX DESCRIPTION
has() {
	if grep -Eq -- "$2" "$1"; then ok "$3"; else echo "# no /$2/ in $1:"; sed 's/^/#   /' "$1" 2>/dev/null | head -5; nok "$3"; fi
}
# wait_for PATH: until it exists (5 s at most)
wait_for() { i=0; while [ ! -e "$1" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done; }
tap_done() { echo "1..$n"; exit $fail; }
# Number a program's unnumbered TAP lines ("ok - ...", "not ok - ...") into ours.
tap_lua() {
	while IFS= read -r line; do
		case $line in
		"ok - "*"# SKIP"*) n=$((n + 1)); echo "ok $n - ${line#ok - }" ;;
		"ok - "*) ok "${line#ok - }" ;;
		"not ok - "*) n=$((n + 1)); fail=1; echo "not ok $n - ${line#not ok - }" ;;
		*) echo "$line" ;;
		esac
	done
}
