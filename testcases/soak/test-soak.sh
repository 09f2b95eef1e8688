#!/bin/sh
# SPDX-License-Identifier: MIT
# The short soak for make test (docs/soak.md): testcases/soak/soak.sh for
# $SOAK_TEST_SECONDS (default 60) and at least 3 cycles, each with a flash and a boot to
# the login prompt, as TAP. SKIPs without qemu-system-x86_64 or the OS images. Its scratch
# directory is removed when it passes and kept (and named) when it fails.
T=$(mktemp -d /tmp/rigor-soak-XXXXXX) || exit 1
SOAK_TAP=1 SOAK_SECONDS=${SOAK_TEST_SECONDS:-60} SOAK_MIN_CYCLES=3 SOAK_DIR=$T \
	"$(dirname "$0")/soak.sh"
rc=$?
if [ $rc = 0 ]; then rm -rf "$T"; else echo "# soak logs kept in $T"; fi
exit $rc
