#!/bin/sh
# SPDX-License-Identifier: MIT
# rigor-lava-run (docs/lava.md, way B) without LAVA: what it tells LAVA for each rigor case
# and each rigor exit code, on the sim rig. LAVA's helpers (lava-test-case, -set, -raise,
# -reference) are stand-ins that record their arguments; make test-lava runs the real ones.
# Prints TAP.
T=$(mktemp -d "${TMPDIR:-/tmp}/rigor-lava-XXXXXX")
. host/tests/tap.sh
trap 'rm -rf "$T"' EXIT
RIGOR=$(cd "$(dirname "$RIGOR")" && pwd)/$(basename "$RIGOR")
export RIGOR_STATE_DIR=$T/state RIGOR_RIG=sim RIGOR
unset RIGOR_LAVA_ARTIFACTS RIGOR_LAVA_ARTIFACTS_URL LAVA_JOB_ID
mkdir -p "$T/bin"
for h in lava-test-case lava-test-set lava-test-reference lava-test-raise; do
	# the real lava-test-raise always exits 1
	printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n[ %s != lava-test-raise ]\n' "$h" "$T" "$h" >"$T/bin/$h"
	chmod 755 "$T/bin/$h"
done
PATH=$T/bin:$PATH
LR=rigs/lava/bin/rigor-lava-run
SUITES="testcases/sim.lua rigs/lava/test/fail.lua"

# shellcheck disable=SC2086
run 0 "a failed rigor case is a result: rigor-lava-run exits 0 (lava-test-shell's set -e)" $LR --out "$T/o1" -- $SUITES
has "$T/calls" "^lava-test-set start basics$" "each rigor suite is a LAVA test set"
has "$T/calls" "^lava-test-case power-switches-and-measures --result pass --measurement [0-9]+\.[0-9]{3} --units s$" "a passing case: pass, its duration in seconds"
has "$T/calls" "^lava-test-case flasher-rigs-have-a-boot-strap --result skip " "a skipped case: skip"
has "$T/calls" "^lava-test-case hostname-is-the-lab-s --result fail " "a failing case: fail, with a LAVA-safe name"
has "$T/out" "^rigor: fail lava-fail/hostname is the lab's: hostname: expected \"lab-dut-7\", got \"sim-dut\" \(.*fail.lua:9\)$" "the failure's message and place go to the log before the result"
has "$T/calls" "^lava-test-reference rigor-junit --result pass --reference file://$T/o1/junit.xml$" "rigor's junit.xml is referenced"
[ -s "$T/o1/junit.xml" ] && [ -s "$T/o1/results.json" ] && [ -d "$T/o1/artifacts" ] && ok "rigor's reports are kept in --out" || nok "rigor's reports are kept in --out"
n_cases=$(grep -c '^lava-test-case' "$T/calls")
[ "$n_cases" = 9 ] && ok "one LAVA test case per rigor case (9)" || nok "one LAVA test case per rigor case (got $n_cases)"
grep -q lava-test-raise "$T/calls" && nok "no lava-test-raise for exit 1" || ok "no lava-test-raise for exit 1"

: >"$T/calls"
run 0 "--convert reports an archived results.json" $LR --convert "$T/o1/results.json"
n2=$(grep -c '^lava-test-case' "$T/calls")
[ "$n2" = 9 ] && ! grep -q 'raise\|reference' "$T/calls" && ok "--convert: the same 9 cases, no raise, no reference" || nok "--convert: 9 cases, no raise (got $n2)"

: >"$T/calls"
$RIGOR --rig sim sim inject sdmux fail >/dev/null
# shellcheck disable=SC2086
run 3 "rigor exit 3 (infrastructure): rigor-lava-run exits 3" $LR --out "$T/o2" -- $SUITES
$RIGOR --rig sim sim inject sdmux ok >/dev/null
has "$T/calls" "^lava-test-raise rigor run: exit 3: basics/.*sdmux: sim: injected failure$" "exit 3 calls lava-test-raise with rigor's first error"

: >"$T/calls"
run 3 "a suite that does not exist: rigor-lava-run exits 3" $LR --out "$T/o3" -- "$T/nosuch.lua"
has "$T/calls" "^lava-test-raise rigor run: exit 2" "rigor's exit 2 (usage) ends the job too"

: >"$T/calls"
run 3 "rigor that cannot be started: rigor-lava-run exits 3" $LR --rigor "$T/no-rigor" --out "$T/o5" -- testcases/sim.lua
has "$T/calls" "^lava-test-raise rigor-lava-run: cannot run '$T/no-rigor': No such file or directory" "and says so through lava-test-raise"

run 2 "no suite: a usage error" $LR --out "$T/o4"
has "$T/err" "no suite given" "the usage error says what is missing"

: >"$T/calls"
(cd "$T" && LAVA_JOB_ID=7 RIGOR_LAVA_ARTIFACTS=$T/store RIGOR_LAVA_ARTIFACTS_URL=https://lab.example/rigor \
	"$OLDPWD/$LR" -- "$OLDPWD/testcases/sim.lua" >"$T/out" 2>"$T/err")
has "$T/calls" "^lava-test-reference rigor-junit --result pass --reference https://lab.example/rigor/job-7/junit.xml$" "RIGOR_LAVA_ARTIFACTS_URL: the report's URL, one directory per LAVA job"
[ -s "$T/store/job-7/results.json" ] && ok "RIGOR_LAVA_ARTIFACTS: reports in job-ID/" || nok "RIGOR_LAVA_ARTIFACTS: reports in job-ID/"
tap_done
