#!/bin/sh
# SPDX-License-Identifier: MIT
# The labgrid recipe (rigs/labgrid, docs/labgrid.md) run by labgrid's pytest plugin: on
# the sim rig (power cycle, login prompt, login, hostname; the ShellDriver test SKIPs
# there), a rig whose board boots too slowly for the test's bound (the test must fail),
# and, when QEMU and the OS image are there, the ShellDriver test on the virtual rig. Prints TAP; SKIPs without python3-labgrid and python3-pytest
# (scripts/install-deps). RIGOR_LABGRID_KEEP=1 keeps the scratch directory.
T=$(mktemp -d /tmp/rigor-labgrid-XXXXXX)
. host/tests/tap.sh
V=$T/rig
cleanup() {
	[ -f "$V/env" ] && BUILD=$BUILD scripts/virtual-rig stop "$V" >/dev/null 2>&1
	if [ "$fail" = 0 ] && [ -z "$RIGOR_LABGRID_KEEP" ]; then rm -rf "$T"; else echo "# logs kept in $T"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# Debian's python3 (python3-labgrid and python3-pytest are Debian packages), not another
# python3 that may come first on PATH
PY=/usr/bin/python3
if ! $PY -c 'import labgrid.pytestplugin, pytest' 2>"$T/err"; then
	echo "ok 1 # SKIP labgrid's pytest plugin is not importable by $PY (install python3-labgrid and python3-pytest: scripts/install-deps): $(tail -1 "$T/err")"
	echo "1..1"
	exit 0
fi
export RIGOR_STATE_DIR=$T/state PYTHONDONTWRITEBYTECODE=1
unset LG_ENV LG_RIGOR_RIG LG_RIGOR_STRAP LG_RIGOR_BOOT_S
export LG_RIGOR="$(pwd)/$RIGOR"
# the recipe's test with the recipe's environment (no cache or bytecode left in the tree)
LG="$PY -m pytest -p no:cacheprovider --lg-env rigs/labgrid/env.yaml rigs/labgrid/test_rigor.py -rs"

# ---- the sim rig ----
start=$(date +%s)
run 0 "pytest --lg-env on the sim rig" $LG --junitxml "$T/sim.xml"
echo "# $(($(date +%s) - start)) s"
has "$T/out" "1 passed, 1 skipped" "the boot/login test passed, the ShellDriver test skipped"
has "$T/out" "SKIPPED .*the sim rig's board has no POSIX shell" "the skip says why"
$PY - "$T/sim.xml" >"$T/out" 2>&1 <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
cases = {c.get("name"): c for c in root.iter("testcase")}
c = cases["test_boot_login_command"]
assert c.find("failure") is None and c.find("error") is None and c.find("skipped") is None, "not passed"
props = {p.get("name"): p.get("value") for p in root.iter("property")}
assert props.get("ENV_CONFIG", "").endswith("rigs/labgrid/env.yaml"), props
print("junit ok", sorted(props))
EOF
[ $? = 0 ] && ok "junit.xml: the case passed, labgrid's ENV_CONFIG property" || nok "junit.xml: the case passed, labgrid's ENV_CONFIG property"
# the console holds only the console lock and labgrid ended it: nothing is left holding the rig
run 0 "who after the run" $RIGOR --rig sim who
has "$T/out" "is free" "labgrid's console and power commands left the rig free"
has "$RIGOR_STATE_DIR/sim-console.log" "sim-dut login: " "rigor console's log has the login prompt labgrid waited for"

# ---- a board that does not reach its prompt in time: the test fails ----
# the sim rig with 3 s between console lines (about 30 s to the prompt), a 3 s bound
sed -e 's/name = "sim"/name = "lg-slow"/' -e 's/line_ms = 20/line_ms = 3000/' rigs/sim.lua >"$T/slow.lua"
run 1 "a board too slow for LG_RIGOR_BOOT_S=3: the test fails" env LG_RIGOR_RIG="$T/slow.lua" LG_RIGOR_BOOT_S=3 $LG -k test_boot_login_command
has "$T/out" "1 failed, 1 deselected" "one failure"
has "$T/out" "^> +console.expect\\(LOGIN, timeout=BOOT_S\\)" "it failed waiting for the login prompt"
has "$T/out" "pexpect.exceptions.TIMEOUT" "with a pexpect timeout"

# ---- the virtual rig: QEMU behind rigfw-sim, the card flashed, the boot strap held ----
IMG=$BUILD/os/rigor-os-1.0.img
if ! command -v qemu-system-x86_64 >/dev/null; then
	ok "# SKIP the virtual rig: qemu-system-x86_64 not installed"
elif [ ! -f "$IMG" ]; then
	ok "# SKIP the virtual rig: no $IMG (make os-image)"
else
	in_rig() { (. "$V/env" && exec "$@"); }
	run 0 "virtual-rig start" env BUILD="$BUILD" scripts/virtual-rig start "$V" virtual
	run 0 "flash the test OS to the card" in_rig "$LG_RIGOR" flash "$IMG"
	# Only the ShellDriver test: it boots, logs in and runs commands too, and one QEMU boot
	# keeps this part near a minute (two took 93 s, and 174 s at load 15). ShellDriver's
	# login_timeout in env.yaml is 300 s: QEMU without KVM on 2 shared cores.
	start=$(date +%s)
	run 0 "pytest --lg-env on the virtual rig: the ShellDriver test" in_rig env LG_RIGOR_RIG=virtual \
		LG_RIGOR_STRAP=boot $LG -k test_shell_driver --junitxml "$T/virtual.xml"
	echo "# $(($(date +%s) - start)) s"
	has "$T/out" "1 passed, 1 deselected" "ShellDriver on rigor's console: login, run_check, an exit code"
	# rigfw-sim's pins file: buttons=B0B1B2B3, the strap is output 0
	run 0 "the strap was released afterwards" grep -q "buttons=0" "$V/pins"
	run 0 "virtual-rig stop" env BUILD="$BUILD" scripts/virtual-rig stop "$V"
fi
tap_done
