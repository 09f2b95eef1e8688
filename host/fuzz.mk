# SPDX-License-Identifier: MIT
# libFuzzer targets for the host parsers of untrusted input (docs/fuzzing.md):
#
#   bmap     fl_bmap_parse()                       host/src/flash/bmap.c
#   part     rig_part_table_read() + FS labels     host/src/flash/part.c
#   rigfile  rigl_load_rigfile() + validate        host/lua/rigfile.c, host/src/desc.c
#   json     rigor.core json_decode/json_encode    host/lua/lcore.c (jansson)
#   balena   rigor.balena over http.json, fake     lua/rigor/balena.lua, lhttp.c json_src,
#            request returning the input                 lcore.c
#   http     raw HTTP responses from a loopback    host/src/http.c callbacks, lhttp.c,
#            server to rigor.http.request/json     libcurl
#   expect   console:expect/read over a fake       host/lua/lrig.c, host/src/rig.c buffer
#            console delivering the input in chunks
#
# Always clang + libFuzzer + ASan/UBSan, whatever SAN says: the library is compiled again
# for them (coverage-instrumented, $(BUILD)/fuzz/obj/), the gcc objects are not reused.
#
#   make fuzz                        every target for FUZZ_SECONDS (60) each, fresh scratch
#                                    corpora in $(BUILD)/fuzz-work, crashers in
#                                    $(BUILD)/fuzz-artifacts
#   make fuzz FUZZ_SECONDS=3600 FUZZ_TARGETS="bmap part"
#
# `make test` replays every seed corpus (host/tests/fuzz/corpus/<target>/) and fuzzes each
# target for FUZZ_TEST_SECONDS (2) through host/tests/fuzz/run-fuzz.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS_ALL := bmap part rigfile json balena http expect
FUZZ_TARGETS ?= $(FUZZ_TARGETS_ALL)
FUZZ_OUT := $(BUILD)/fuzz

FUZZ_SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 -g -O1 $(WARNFLAGS) $(FUZZ_SANFLAGS) -MMD -MP -fvisibility=hidden \
	-Ihost/src -Ihost/lua -Ifirmware/proto $(HOST_PKG_CFLAGS) $(FLASH_CFLAGS) \
	-DRIGOR_SRC_LUA='"$(RIGOR_SRC_LUA)"' -DRIGOR_INSTALL_LUA='"$(RIGOR_INSTALL_LUA)"' \
	-DRIGOR_VERSION='"$(RIGOR_VERSION)"' -DRIGOR_SRC_RIGS='"$(abspath rigs)"' \
	-DRIGOR_INSTALL_RIGS='"$(PREFIX)/share/rigor/rigs"'

# The library, the flash engine, the Lua binding and the codec, instrumented for coverage.
FUZZ_LIB_SRCS := $(LIB_SRCS) $(FLASH_SRCS) $(LUA_SRCS) firmware/proto/rigproto.c
FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_OUT)/obj/%.o,$(FUZZ_LIB_SRCS))
FUZZ_LIB := $(FUZZ_OUT)/librig-fuzz.a
FUZZ_BINS := $(patsubst %,$(FUZZ_OUT)/fuzz_%,$(FUZZ_TARGETS_ALL))

$(FUZZ_OUT)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# The flash engine's own flags (flash.mk): _GNU_SOURCE, ISA-L.
$(FUZZ_OUT)/obj/host/src/flash/%.o: FUZZ_CFLAGS += -Wdeclaration-after-statement -pthread \
	-D_GNU_SOURCE $(FLASH_DEFS)

$(FUZZ_LIB): $(FUZZ_LIB_OBJS)
	rm -f $@ && $(AR) rcs $@ $^

# A target links its harness with what it pulls from the archive. --wrap lets the expect
# harness put a fake console back-end beside the real registry and drive the clock.
FUZZ_WRAP_expect := -Wl,--wrap=rig_backend_find -Wl,--wrap=rig_now_ms
$(FUZZ_OUT)/fuzz_%: host/tests/fuzz/fuzz_%.c host/tests/fuzz/fuzzlua.h $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -D_GNU_SOURCE -DFUZZ_LUA_DIR='"$(abspath lua)"' $< \
		$(FUZZ_LIB) $(FUZZ_WRAP_$*) $(HOST_PKG_LIBS) $(FLASH_LIBS) -lm -lpthread -o $@

DEPFILES += $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_BINS:=.d)
TESTS += host/tests/fuzz/run-fuzz
TEST_DEPS += $(FUZZ_BINS)
CLEAN_EXTRA += $(FUZZ_OUT)

# The campaign: FUZZ_SECONDS per target, one target at a time.
fuzz: $(FUZZ_BINS)
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TARGETS="$(FUZZ_TARGETS)" \
		FUZZ_CAMPAIGN=1 host/tests/fuzz/run-fuzz
