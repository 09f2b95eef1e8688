# SPDX-License-Identifier: MIT
# rigor-backend: loopback emulator of the balena API subset (docs/backend-emulator.md).
# Tests: the emulator's own HTTP tests, and the cross-check with the official balena-sdk
# (installed with `npm ci` into $(BUILD)/backend/sdk-check at test time).
TESTS += testcases/backend/test-backend.py testcases/backend/sdk-check.sh
CLEAN_EXTRA += $(BUILD)/backend
