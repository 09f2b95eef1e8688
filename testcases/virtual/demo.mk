# SPDX-License-Identifier: MIT
# make demo (alias demo-virtual), the main job: the OS, cloud, flasher and hup suites on
# the virtual rig (rigs/virtual.lua; docs/virtual-rig.md, docs/hup.md).
# Builds the OS images, starts the virtual rig (scripts/virtual-rig: rigfw-sim, the balena
# API emulator with the host OS update payloads, rigor-vboard with OVMF and QEMU) in
# $(DEMO_VIRTUAL_DIR), runs testcases/os.lua, testcases/cloud.lua, testcases/flasher.lua
# and testcases/hup.lua, prints the verdict and the seconds from
# `rigor run` to the verdict, and always stops the rig. Not part of `make test` (it needs
# QEMU and the kernel package).
# Reports: $(BUILD)/demo/{junit.xml,results.tap,results.json,artifacts/}; rig logs in
# $(DEMO_VIRTUAL_DIR) (console.log, backend.log, vboard.log).
DEMO_VIRTUAL := $(BUILD)/demo
DEMO_VIRTUAL_DIR ?= $(abspath $(DEMO_VIRTUAL))/rig
DEMO_VIRTUAL_SUITES ?= testcases/os.lua testcases/cloud.lua testcases/flasher.lua testcases/hup.lua

.PHONY: demo demo-virtual
demo demo-virtual: $(BUILD)/rigor $(FW_SIM) os-image
	@scripts/virtual-rig stop $(DEMO_VIRTUAL_DIR) >/dev/null 2>&1; rm -rf $(DEMO_VIRTUAL) && mkdir -p $(DEMO_VIRTUAL)
	@BUILD=$(BUILD) scripts/virtual-rig start $(DEMO_VIRTUAL_DIR) || exit 1; \
	trap 'scripts/virtual-rig stop $(DEMO_VIRTUAL_DIR)' EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	. $(DEMO_VIRTUAL_DIR)/env; \
	start=$$(date +%s.%N); \
	$(BUILD)/rigor --rig rigs/virtual.lua run $(DEMO_VIRTUAL_SUITES) \
		--junit $(DEMO_VIRTUAL)/junit.xml --tap $(DEMO_VIRTUAL)/results.tap --json $(DEMO_VIRTUAL)/results.json \
		--artifacts $(DEMO_VIRTUAL)/artifacts; rc=$$?; \
	end=$$(date +%s.%N); \
	printf '\ndemo: verdict %s in %.1f s; reports in %s/ (junit.xml, results.tap, results.json, artifacts/)\n' \
		"$$( [ $$rc = 0 ] && echo PASS || echo "FAIL (exit $$rc)")" "$$(awk "BEGIN{print $$end - $$start}")" "$(DEMO_VIRTUAL)"; \
	exit $$rc

# make demo-gate: `rigor gate testcases/gates/demo.lua` over two virtual rigs at once
# (rigs/virtual.lua in $(DEMO_GATE_DIR)/rig1, rigs/virtual-2.lua in rig2): the os, cloud,
# flasher and hup suites as required cells, split over the two rigs, and an informative
# cell with a deliberately failing (quarantined) case. Prints the verdict, the wall time
# and where gate.md, gate.html and gate.json are; always stops both rigs. The exit code is
# the gate's (docs/release-gate.md). DEMO_GATE_ARGS adds options, e.g. --only-rig virtual
# for the one-rig comparison in docs/performance.md.
DEMO_GATE := $(BUILD)/demo-gate
DEMO_GATE_DIR ?= $(abspath $(DEMO_GATE))
DEMO_GATE_ARGS ?=

.PHONY: demo-gate
demo-gate: $(BUILD)/rigor $(FW_SIM) os-image
	@for r in rig1 rig2; do scripts/virtual-rig stop $(DEMO_GATE_DIR)/$$r >/dev/null 2>&1; done; \
	rm -rf $(DEMO_GATE) && mkdir -p $(DEMO_GATE)
	@trap 'scripts/virtual-rig stop $(DEMO_GATE_DIR)/rig1; scripts/virtual-rig stop $(DEMO_GATE_DIR)/rig2' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	BUILD=$(BUILD) scripts/virtual-rig start $(DEMO_GATE_DIR)/rig1 virtual || exit 1; \
	BUILD=$(BUILD) scripts/virtual-rig start $(DEMO_GATE_DIR)/rig2 virtual-2 || exit 1; \
	start=$$(date +%s.%N); \
	RIGOR_DEMO_GATE_DIR=$(DEMO_GATE_DIR) $(BUILD)/rigor gate testcases/gates/demo.lua \
		--out $(DEMO_GATE)/report $(DEMO_GATE_ARGS); rc=$$?; \
	end=$$(date +%s.%N); \
	printf '\ndemo-gate: exit %s in %.1f s; open %s/report/gate.html (also gate.md, gate.json)\n' \
		"$$rc" "$$(awk "BEGIN{print $$end - $$start}")" "$(DEMO_GATE)"; \
	exit $$rc
