# SPDX-License-Identifier: MIT
# Flash engine: $(BUILD)/librigflash.a, the rigor-flash-tool test driver, tests and `make bench`.
# The lead links the archive into rigor with:  $(BUILD)/librigflash.a $(FLASH_LIBS)
# and compiles users of host/src/rig_flash.h with $(FLASH_CFLAGS). The engine works under
# librig's context (cancel, deadline, log, error), so its programs link librig after it.

FLASH_PKGS   := zlib liblzma libzstd libarchive libxml-2.0 libcrypto blkid
# ISA-L (libisal-dev) makes gzip decoding ~3x faster; without it zlib is used.
ifneq ($(shell $(PKG_CONFIG) --exists libisal && echo yes),)
FLASH_PKGS   += libisal
FLASH_DEFS   := -DHAVE_ISAL
endif
FLASH_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(FLASH_PKGS))
FLASH_LIBS   := $(shell $(PKG_CONFIG) --libs $(FLASH_PKGS)) -lbz2 -lpthread
FLASH_LIB    := $(BUILD)/librigflash.a

FLASH_SRCS := $(wildcard host/src/flash/*.c)
FLASH_OBJS := $(FLASH_SRCS:%.c=$(BUILD)/%.o)
FLASH_TOOL := $(BUILD)/rigor-flash-tool
FLASH_TOOL_OBJ := $(BUILD)/host/src/flash/tool/rigor-flash-tool.o
FLASH_UNIT := $(BUILD)/tests/flash/test-flash-unit
FLASH_UNIT_OBJ := $(BUILD)/host/tests/flash/test_flash_unit.o

# -Wdeclaration-after-statement per CONVENTIONS hygiene; hidden by default, RIG_API exports.
FLASH_CC_FLAGS := $(CFLAGS_COMMON) -Wdeclaration-after-statement -fvisibility=hidden \
	-pthread -D_GNU_SOURCE $(FLASH_DEFS) $(FLASH_CFLAGS)

$(BUILD)/host/src/flash/%.o: host/src/flash/%.c
	@mkdir -p $(@D)
	$(CC) $(FLASH_CC_FLAGS) -c -o $@ $<

$(BUILD)/host/tests/flash/%.o: host/tests/flash/%.c
	@mkdir -p $(@D)
	$(CC) $(FLASH_CC_FLAGS) -c -o $@ $<

$(FLASH_LIB): $(FLASH_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

# librig is named by path: host.mk, which defines it, is read after this file.
$(FLASH_TOOL): $(FLASH_TOOL_OBJ) $(FLASH_LIB) $(BUILD)/librig.a
	$(CC) $(LDFLAGS_COMMON) -pthread -o $@ $(FLASH_TOOL_OBJ) $(FLASH_LIB) $(BUILD)/librig.a \
		$(FLASH_LIB) $(HOST_PKG_LIBS) $(FLASH_LIBS) -lm

$(FLASH_UNIT): $(FLASH_UNIT_OBJ) $(FLASH_LIB) $(BUILD)/librig.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_COMMON) -pthread -o $@ $(FLASH_UNIT_OBJ) $(FLASH_LIB) $(BUILD)/librig.a \
		$(FLASH_LIB) $(HOST_PKG_LIBS) $(FLASH_LIBS) -lm $(shell $(PKG_CONFIG) --libs cmocka)

# part_compare: libblkid's reading against the hand-written parser it replaced, which
# only this test program still builds (host/tests/flash/fixtures/part_hand.c).
PART_COMPARE := $(BUILD)/tests/flash/part_compare
PART_COMPARE_OBJS := $(BUILD)/host/tests/flash/part_compare.o \
	$(BUILD)/host/tests/flash/fixtures/part_hand_wrap.o
$(BUILD)/host/tests/flash/part_compare.o: FLASH_CC_FLAGS += -Ihost/src
$(BUILD)/host/tests/flash/fixtures/part_hand_wrap.o: FLASH_CC_FLAGS += -Ihost/src -Ihost/src/flash
$(PART_COMPARE): $(PART_COMPARE_OBJS) $(FLASH_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_COMMON) -pthread -o $@ $(PART_COMPARE_OBJS) $(FLASH_LIB) $(FLASH_LIBS)
TESTS += host/tests/flash/part-blkid.sh
TEST_DEPS += $(PART_COMPARE)
DEPFILES += $(PART_COMPARE_OBJS:.o=.d)

BINS += $(FLASH_LIB) $(FLASH_TOOL)
TESTS += $(FLASH_UNIT) host/tests/flash/test-flash.sh host/tests/faults/flash.sh \
	host/tests/flash/flash-url.sh
TEST_DEPS += $(FLASH_UNIT) $(FLASH_TOOL)
DEPFILES += $(FLASH_OBJS:.o=.d) $(FLASH_TOOL_OBJ:.o=.d) $(FLASH_UNIT_OBJ:.o=.d)

# Benchmarks (not part of test). SIZE_MB sets the image size (default 1024), RUNS the runs.
# Run as root, `make bench` ends with the card-like target (scripts/bench-card, the CARD
# lines: a loop device throttled to CARD_WRITE_MBPS=20 and CARD_READ_MBPS=40 MB/s; its
# 'booted' job needs `make os-image`); `make bench-card` runs only that part.
SIZE_MB ?= 1024
RUNS ?= 3
.PHONY: bench-card
bench: all
	SIZE_MB=$(SIZE_MB) RUNS=$(RUNS) BUILD=$(BUILD) scripts/bench-flash
	SIZE_MB=$(SIZE_MB) BUILD=$(BUILD) scripts/bench-card
bench-card: all
	SIZE_MB=$(SIZE_MB) BUILD=$(BUILD) scripts/bench-card
