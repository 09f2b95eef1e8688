# SPDX-License-Identifier: MIT
# rigor: one GNU Makefile for the host controller, the firmware and the tests.
# Each area owns a fragment (host/host.mk, host/flash.mk, firmware/firmware.mk, lua/lua.mk)
# that adds to the variables below; this file only holds what they share.
#
#   make            build build/rigor (and the firmware simulator)
#   make test       build and run every test; ends with "N passed, N failed"
#   make test SAN=1 the same under AddressSanitizer/UBSan (outputs in build/san/)
#   make test ONLY='host/tests/%.sh'  only the test programs matching these make patterns
#   make demo       the main job: os and cloud suites on the virtual rig (QEMU board)
#   make demo-gate  rigor gate over two virtual rigs at once (docs/release-gate.md)
#   make debian-image  a Debian 12 image from Debian packages (mmdebstrap; as root)
#   make demo-debian   the os suite against that Debian image on the virtual rig
#   make demo-sim   the sample suite on the sim rig (no QEMU, a few seconds)
#   make test-lava  the LAVA kit with Debian's LAVA, offline (root; scripts/install-lava first)
#   make firmware   cross-build the STM32F1 rig-board firmware
#   make bench      benchmarks (not part of test; as root also the card-like CARD lines)
#   make install    PREFIX=/usr/local DESTDIR=

.SUFFIXES:
.DELETE_ON_ERROR:
.SECONDARY:
.DEFAULT_GOAL := all

PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?= 0
PKG_CONFIG ?= pkg-config

ifeq ($(SAN),1)
BUILD   ?= build/san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   ?= build
SANFLAGS :=
endif

CC      ?= cc
WARNFLAGS := -Wall -Wextra -Werror -Wshadow -Wvla -Wmissing-prototypes \
	-Wstrict-prototypes -Wno-unused-parameter
OPTFLAGS ?= -O2 -g
CFLAGS_COMMON := -std=gnu11 $(OPTFLAGS) $(WARNFLAGS) $(SANFLAGS) -MMD -MP
LDFLAGS_COMMON := $(SANFLAGS)

# Every fragment appends: BINS (built by `all`), TESTS (programs that print TAP; run by
# scripts/run-tests), TEST_DEPS (built before tests run), CLEAN_EXTRA.
BINS :=
TESTS :=
TEST_DEPS :=
DEPFILES :=

# flash.mk first: host.mk links its archive into rigor and the C tests.
include host/flash.mk
include host/host.mk
-include firmware/firmware.mk
-include lua/lua.mk
-include testcases/backend/backend.mk
-include testcases/os/os.mk
-include testcases/virtual/virtual.mk
-include testcases/virtual/demo.mk
-include testcases/debian/debian.mk
-include testcases/soak/soak.mk
-include host/fuzz.mk
-include rigs/lava/lava.mk

.PHONY: all test check demo demo-sim bench install clean firmware fuzz soak
all: $(BINS)

# ONLY narrows the run while working on one area; CI and the README run them all.
ONLY ?= %
RUN_TESTS = $(filter $(ONLY),$(TESTS))
test: $(BINS) $(TEST_DEPS)
	@$(if $(RUN_TESTS),,echo "make test: ONLY='$(ONLY)' matches no test program" >&2; exit 2;) \
	BUILD=$(BUILD) perl scripts/run-tests $(RUN_TESTS)

check: test

# The quick demo on the sim rig (no QEMU): the sample suite. `make demo` (the main job on
# the virtual rig) is in testcases/virtual/demo.mk.
DEMO := $(BUILD)/demo-sim
demo-sim: $(BUILD)/rigor
	@rm -rf $(DEMO) && mkdir -p $(DEMO)
	@start=$$(date +%s.%N); \
	RIGOR_STATE_DIR=$(abspath $(DEMO))/state $(BUILD)/rigor --rig $(DEMO_RIG) run \
		--junit $(DEMO)/junit.xml --tap $(DEMO)/results.tap --json $(DEMO)/results.json \
		--artifacts $(DEMO)/artifacts $(DEMO_SUITES); rc=$$?; \
	end=$$(date +%s.%N); \
	printf '\ndemo-sim: verdict %s in %.1f s; reports in %s/ (junit.xml, results.tap, results.json, artifacts/)\n' \
		"$$( [ $$rc = 0 ] && echo PASS || echo "FAIL (exit $$rc)")" "$$(awk "BEGIN{print $$end - $$start}")" "$(DEMO)"; \
	exit $$rc
DEMO_RIG ?= sim
DEMO_SUITES ?= testcases/sim.lua

clean:
	rm -rf build

-include $(DEPFILES)
