# SPDX-License-Identifier: MIT
# make test-lava: the LAVA integration kit (rigs/lava/, docs/lava.md) with Debian 12's LAVA
# on this machine, offline: way A on the virtual rig and way B on the sim rig with lava-run,
# injected rig faults, and jobs through lava-server + scheduler + worker + PostgreSQL.
# Needs root and scripts/install-lava first; not part of `make test`.
.PHONY: test-lava
test-lava: $(BUILD)/rigor $(FW_SIM) os-image
	@BUILD=$(BUILD) rigs/lava/test/test-lava.sh

# rigor-lava-run's mapping of rigor cases and exit codes to LAVA, without LAVA (stand-ins
# for lava-test-case and friends): part of make test.
TESTS += rigs/lava/test/lava-run-results.sh
