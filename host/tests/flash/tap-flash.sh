# SPDX-License-Identifier: MIT
# Shared by the flash engine's shell tests (test-flash.sh, flash-url.sh), sourced after
# they cd into their scratch directory: TAP points numbered in $n, failures counted in
# $fails; a failing point quotes ./err (the last command's stderr).
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; [ -f err ] && sed 's/^/# /' err | head -5; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
# check NAME SHELL-CONDITION
check() { if eval "$2"; then ok "$1"; else nok "$1"; fi; }
# json KEY FILE: the value of "KEY" in a one-line JSON document (as printed by --json)
json() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" "$2"; }
