# SPDX-License-Identifier: MIT
# Firmware fragment of the top-level Makefile: the rigproto codec, the rigfw core on the host
# (rigfw-sim and unit tests), the STM32F1 cross build (`make firmware`), the libFuzzer target
# and the QEMU test. Everything goes to $(BUILD)/firmware/.

FW_OUT := $(BUILD)/firmware
FW_INC := -Ifirmware/proto -Ifirmware/core -Ifirmware/hal

# ---- host side (uses the shared flags, sanitizers included when SAN=1) ----

FW_HOST_CFLAGS := $(CFLAGS_COMMON) -Wdeclaration-after-statement $(FW_INC) -Ifirmware/ports/host -Ifirmware/tests
FW_CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null || echo -lcmocka)

$(FW_OUT)/host/%.o: firmware/%.c
	@mkdir -p $(@D)
	$(CC) $(FW_HOST_CFLAGS) -c $< -o $@

FW_SIM := $(FW_OUT)/host/rigfw-sim
FW_SIM_OBJS := $(addprefix $(FW_OUT)/host/,ports/host/sim.o core/rigfw.o proto/rigproto.o)
FW_TEST_RIGPROTO_OBJS := $(addprefix $(FW_OUT)/host/,tests/test_rigproto.o proto/rigproto.o)
FW_TEST_RIGFW_OBJS := $(addprefix $(FW_OUT)/host/,tests/test_rigfw.o tests/test_hal.o \
	core/rigfw.o proto/rigproto.o)
FW_TEST_SIM_OBJS := $(addprefix $(FW_OUT)/host/,tests/test_sim.o tests/rigclient.o \
	proto/rigproto.o)
FW_TEST_QEMU_OBJS := $(addprefix $(FW_OUT)/host/,tests/qemu/test_qemu.o tests/rigclient.o \
	proto/rigproto.o)

$(FW_SIM): $(FW_SIM_OBJS)
	$(CC) $(LDFLAGS_COMMON) $^ -o $@

$(FW_OUT)/tests/test_rigproto: $(FW_TEST_RIGPROTO_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_COMMON) $^ $(FW_CMOCKA_LIBS) -o $@

$(FW_OUT)/tests/test_rigfw: $(FW_TEST_RIGFW_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_COMMON) $^ $(FW_CMOCKA_LIBS) -o $@

$(FW_OUT)/tests/test_sim: $(FW_TEST_SIM_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_COMMON) $^ -o $@

$(FW_OUT)/tests/test_qemu: $(FW_TEST_QEMU_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_COMMON) $^ -o $@

# The codec object for the host library (librig links it: add $(FW_PROTO_OBJ) to its archive,
# or list firmware/proto/rigproto.c in EXTRA_LIB_SRCS, which maps to the same object).
FW_PROTO_OBJ := $(BUILD)/firmware/proto/rigproto.o
$(FW_PROTO_OBJ): firmware/proto/rigproto.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_COMMON) -fvisibility=hidden -Ifirmware/proto -c $< -o $@

# ---- fuzzing (clang + libFuzzer, always with ASan/UBSan; independent of SAN) ----

FW_FUZZ_CC ?= clang
FW_FUZZ := $(FW_OUT)/tests/fuzz_rigproto

$(FW_FUZZ): firmware/tests/fuzz/fuzz_rigproto.c firmware/proto/rigproto.c firmware/proto/rigproto.h
	@mkdir -p $(@D)
	$(FW_FUZZ_CC) -std=gnu11 -g -O1 $(WARNFLAGS) -Ifirmware/proto \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		firmware/tests/fuzz/fuzz_rigproto.c firmware/proto/rigproto.c -o $@

# ---- STM32F1 cross build (own flags: no sanitizers, no host warnings-as-options) ----

FW_XCC := arm-none-eabi-gcc
FW_XSIZE := arm-none-eabi-size
FW_XOBJCOPY := arm-none-eabi-objcopy
FW_BUILD_ID := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo dev)
FW_XCFLAGS := -mcpu=cortex-m3 -mthumb -Os -g -std=gnu11 $(WARNFLAGS) -Wdeclaration-after-statement \
	-ffunction-sections -fdata-sections -MMD -MP $(FW_INC) -Ifirmware/ports/stm32f1 \
	-DRIGFW_BUILD_ID='"$(FW_BUILD_ID)"'
FW_XLDFLAGS := -mcpu=cortex-m3 -mthumb --specs=nano.specs -nostartfiles \
	-Tfirmware/ports/stm32f1/link.ld -Wl,--gc-sections -Wl,--no-warn-rwx-segments
FW_X_SRCS := ports/stm32f1/startup.c ports/stm32f1/hal.c ports/stm32f1/main.c \
	core/rigfw.c proto/rigproto.c
FW_X_OBJS := $(addprefix $(FW_OUT)/stm32f1/obj/,$(FW_X_SRCS:.c=.o))
FW_ELF := $(FW_OUT)/stm32f1/rigfw.elf
FW_BIN := $(FW_OUT)/stm32f1/rigfw.bin

$(FW_OUT)/stm32f1/obj/%.o: firmware/%.c
	@mkdir -p $(@D)
	$(FW_XCC) $(FW_XCFLAGS) -c $< -o $@

# STM32F103C8: 64 KiB flash, 20 KiB RAM; link.ld already caps RAM at 8 KiB for QEMU.
$(FW_ELF): $(FW_X_OBJS) firmware/ports/stm32f1/link.ld
	$(FW_XCC) $(FW_XLDFLAGS) -Wl,-Map=$(@:.elf=.map) $(FW_X_OBJS) -lc -lgcc -o $@
	@$(FW_XSIZE) -A $@ | awk ' \
		$$1 == ".isr_vector" || $$1 == ".text" || $$1 == ".ARM.exidx" { flash += $$2 } \
		$$1 == ".data" { flash += $$2; ram += $$2 } \
		$$1 == ".bss" || $$1 == ".stack" { ram += $$2 } \
		END { printf "rigfw.elf: flash %d / 65536 bytes, RAM %d / 20480 bytes (incl. stack; QEMU limit 8192)\n", flash, ram; \
		      if (flash > 65536 || ram > 20480 || ram > 8192) { print "rigfw.elf: does not fit" > "/dev/stderr"; exit 1 } }' \
		|| { rm -f $@; exit 1; }

$(FW_BIN): $(FW_ELF)
	$(FW_XOBJCOPY) -O binary $< $@

firmware: $(FW_ELF) $(FW_BIN)

# the integration tests find their subjects relative to the top directory
$(FW_OUT)/host/tests/test_sim.o: FW_HOST_CFLAGS += -DRIGFW_SIM_PATH='"$(FW_SIM)"'
$(FW_OUT)/host/tests/qemu/test_qemu.o: FW_HOST_CFLAGS += -DRIGFW_ELF_PATH='"$(FW_ELF)"'


# ---- registration with the top-level Makefile ----

BINS += $(FW_SIM)
TESTS += $(FW_OUT)/tests/test_rigproto $(FW_OUT)/tests/test_rigfw \
	firmware/tests/fuzz/run-fuzz $(FW_OUT)/tests/test_sim $(FW_OUT)/tests/test_qemu
TEST_DEPS += $(FW_OUT)/tests/test_rigproto $(FW_OUT)/tests/test_rigfw $(FW_FUZZ) \
	$(FW_SIM) $(FW_OUT)/tests/test_sim $(FW_OUT)/tests/test_qemu $(FW_ELF)
DEPFILES += $(FW_PROTO_OBJ:.o=.d) $(FW_SIM_OBJS:.o=.d) $(FW_TEST_RIGPROTO_OBJS:.o=.d) $(FW_TEST_RIGFW_OBJS:.o=.d) \
	$(FW_TEST_SIM_OBJS:.o=.d) $(FW_TEST_QEMU_OBJS:.o=.d) $(FW_X_OBJS:.o=.d)
