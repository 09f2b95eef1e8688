# SPDX-License-Identifier: MIT
# make soak: the soak of the virtual rig (docs/soak.md). One `rigor lua` process runs
# testcases/soak/soak.lua for $(SOAK_SECONDS): cycles of flash, SD mux, power, boot to the
# login prompt, console I/O, buttons and telemetry through rigfw-sim. It fails on an
# error in any cycle, on fd or RSS growth of rigor, rigfw-sim, rigor-backend or
# rigor-vboard beyond a bounded slack, on a lock left held and on a process left behind.
#
#   make soak                       5 minutes
#   make soak SOAK_SECONDS=7200     2 hours
#
# Output and logs in $(SOAK_DIR) (soak.out, rig-events.log, rig/*.log). make test runs a
# short one (testcases/soak/test-soak.sh: 60 s or $SOAK_TEST_SECONDS, at least 3 cycles).
SOAK_SECONDS ?= 300
SOAK_DIR ?= $(BUILD)/soak

.PHONY: soak
soak: $(BUILD)/rigor $(FW_SIM) os-image
	@BUILD=$(BUILD) SOAK_SECONDS=$(SOAK_SECONDS) SOAK_DIR=$(SOAK_DIR) testcases/soak/soak.sh

TESTS += testcases/soak/test-soak.sh
TEST_DEPS += $(BUILD)/rigor $(FW_SIM) $(if $(OS_IMAGES),os-image-for-test)
