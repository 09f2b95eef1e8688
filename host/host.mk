# SPDX-License-Identifier: MIT
# The host library (librig), its Lua binding and the rigor CLI.

RIGOR_VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo 0.1)
HOST_PKGS := lua5.4 jansson libserialport libgpiod libcurl libusb-1.0 blkid libudev
HOST_PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(HOST_PKGS))
HOST_PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(HOST_PKGS))

LIB_SRCS := $(wildcard host/src/*.c) $(wildcard host/src/drivers/*.c) $(wildcard host/src/link/*.c)
# The host<->firmware codec is one source compiled into both sides.
LIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS)) $(BUILD)/host/proto/rigproto.o
LUA_SRCS := $(wildcard host/lua/*.c)
LUA_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(LUA_SRCS))
CLI_SRCS := $(wildcard host/cli/*.c)
CLI_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(CLI_SRCS))
LIBRIG   := $(BUILD)/librig.a

# Where rigor finds its Lua modules: the source tree when run from build/, the
# installed copy otherwise (RIGOR_LUA_DIR overrides both at run time).
RIGOR_SRC_LUA := $(abspath lua)
RIGOR_INSTALL_LUA := $(PREFIX)/share/rigor/lua

HOST_CFLAGS := $(CFLAGS_COMMON) -fvisibility=hidden -Ihost/src -Ihost/lua -Ifirmware/proto $(HOST_PKG_CFLAGS) \
	-DRIGOR_SRC_LUA='"$(RIGOR_SRC_LUA)"' -DRIGOR_INSTALL_LUA='"$(RIGOR_INSTALL_LUA)"' \
	-DRIGOR_VERSION='"$(RIGOR_VERSION)"' -DRIGOR_SRC_RIGS='"$(abspath rigs)"' -DRIGOR_INSTALL_RIGS='"$(PREFIX)/share/rigor/rigs"'

$(BUILD)/host/%.o: host/%.c
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) $(FLASH_CFLAGS) -c $< -o $@

$(BUILD)/host/proto/rigproto.o: firmware/proto/rigproto.c
	@mkdir -p $(dir $@)
	$(CC) $(HOST_CFLAGS) -c $< -o $@

$(LIBRIG): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# The flash engine's archive (host/flash.mk) is named here, not through a variable, so
# the prerequisite is right whatever order the fragments are read in.
$(BUILD)/rigor: $(CLI_OBJS) $(LUA_OBJS) $(LIBRIG) $(BUILD)/librigflash.a
	$(CC) $(LDFLAGS_COMMON) -o $@ $(CLI_OBJS) $(LUA_OBJS) $(LIBRIG) $(FLASH_LIB) $(LIBRIG) \
		$(HOST_PKG_LIBS) $(FLASH_LIBS) -lm -lpthread

BINS += $(BUILD)/rigor

# The GPIO holder (host/src/gpio_holder.h): a program of its own, started by the gpio
# back-end and looked for beside rigor. It links only the line table, fileshare.c and libgpiod.
$(BUILD)/rigor-gpio-holder: $(BUILD)/host/holder/rigor-gpio-holder.o $(BUILD)/host/src/drivers/gpio_lines.o \
		$(BUILD)/host/src/fileshare.o
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(shell $(PKG_CONFIG) --libs libgpiod)
BINS += $(BUILD)/rigor-gpio-holder
DEPFILES += $(BUILD)/host/holder/rigor-gpio-holder.d
DEPFILES += $(LIB_OBJS:.o=.d) $(LUA_OBJS:.o=.d) $(CLI_OBJS:.o=.d)

# ---- C unit tests (cmocka) ----
HOST_TEST_SRCS := $(wildcard host/tests/test_*.c)
HOST_TESTS := $(patsubst host/tests/%.c,$(BUILD)/host/tests/%,$(HOST_TEST_SRCS))
CMOCKA_LIBS := $(shell $(PKG_CONFIG) --libs cmocka)

$(BUILD)/host/tests/%: $(BUILD)/host/tests/%.o $(LIBRIG) $(BUILD)/librigflash.a
	$(CC) $(LDFLAGS_COMMON) -o $@ $< $(LIBRIG) $(FLASH_LIB) $(LIBRIG) $(HOST_PKG_LIBS) $(FLASH_LIBS) $(CMOCKA_LIBS) -lm -lpthread

DEPFILES += $(HOST_TESTS:=.d)
TESTS += $(HOST_TESTS) host/tests/cli.sh host/tests/run.sh host/tests/rigfw.sh host/tests/flash_rig.sh \
	host/tests/faults/run.sh host/tests/image.sh
# locks for a shared lab: console apart from control, another Unix user, reservations
TESTS += host/tests/lock.sh
TEST_DEPS += $(HOST_TESTS)

# The serial back-end over a pty: a preload shim that lets libserialport 0.1.1 open ptys
# (built without sanitizers: it is preloaded ahead of them) and a pty "device".
$(BUILD)/host/tests/libptyshim.so: host/tests/fixtures/ptyshim.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 $(WARNFLAGS) -shared -fPIC $< -o $@ -ldl
$(BUILD)/host/tests/ptydev: host/tests/fixtures/ptydev.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 $(WARNFLAGS) $< -o $@ -lutil
TESTS += host/tests/serial.sh
TEST_DEPS += $(BUILD)/host/tests/libptyshim.so $(BUILD)/host/tests/ptydev

# The gpio back-end over umockdev: a gpiochip emulation (host/tests/fixtures/gpiochip.c,
# linked into test_gpio and the gpiochip-emu server of gpio.sh) and a preload shim that
# hands GPIO_GET_LINEHANDLE's new fd to the calling process (no sanitizers: preloaded).
UMOCKDEV_CFLAGS := $(shell $(PKG_CONFIG) --cflags umockdev-1.0)
UMOCKDEV_LIBS := $(shell $(PKG_CONFIG) --libs umockdev-1.0) -lpthread
# host/tests/fixtures/umockfx.c: what the emulations and their tests share (the re-exec
# under libumockdev-preload, the testbed, USB device records).
UMOCKFX_OBJ := $(BUILD)/host/tests/fixtures/umockfx.o
$(UMOCKFX_OBJ): HOST_CFLAGS += $(UMOCKDEV_CFLAGS)
DEPFILES += $(UMOCKFX_OBJ:.o=.d)
GPIOEMU_OBJ := $(BUILD)/host/tests/fixtures/gpiochip.o
$(GPIOEMU_OBJ) $(BUILD)/host/tests/fixtures/gpiochip_emu.o $(BUILD)/host/tests/test_gpio.o: \
	HOST_CFLAGS += $(UMOCKDEV_CFLAGS)
$(BUILD)/host/tests/test_gpio: $(GPIOEMU_OBJ) $(UMOCKFX_OBJ)
$(BUILD)/host/tests/test_gpio: HOST_PKG_LIBS += $(GPIOEMU_OBJ) $(UMOCKFX_OBJ) $(UMOCKDEV_LIBS)
$(BUILD)/host/tests/gpiochip-emu: $(BUILD)/host/tests/fixtures/gpiochip_emu.o $(GPIOEMU_OBJ) \
		$(UMOCKFX_OBJ)
	$(CC) $(LDFLAGS_COMMON) -o $@ $^ $(UMOCKDEV_LIBS)
$(BUILD)/host/tests/libgpiochipshim.so: host/tests/fixtures/gpiochip_shim.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 $(WARNFLAGS) -shared -fPIC $< -o $@ -ldl
TESTS += host/tests/gpio.sh
TESTS += host/tests/http.sh host/tests/real_api.sh
# rigor.shell over a socket console against a fake DUT (host/tests/fake_dut.py: a real shell
# on a pty behind a login prompt, with kernel noise, slowness and reboots injected)
TESTS += host/tests/shell.sh
# rigor.ssh and the network role against dropbear on loopback (production and development mode)
TESTS += host/tests/ssh.sh
# rigor gate over two sim rigs: retries, re-runs, quarantine, baseline, merge, schema, HTML in Chromium
TESTS += host/tests/gate.sh
# the labgrid recipe (rigs/labgrid, docs/labgrid.md) under labgrid's pytest plugin: sim rig,
# a too-slow board that must fail, ShellDriver on the virtual rig (QEMU and the OS image)
TESTS += host/tests/labgrid.sh
TEST_DEPS += $(BUILD)/host/tests/gpiochip-emu $(BUILD)/host/tests/libgpiochipshim.so
DEPFILES += $(GPIOEMU_OBJ:.o=.d) $(BUILD)/host/tests/fixtures/gpiochip_emu.d

# The sdwire back-end over umockdev: an FT200X emulation (host/tests/fixtures/ft200x.c,
# on the usbdevfs URB engine shared with usbhub.c) linked into test_sdwire, which
# re-executes itself under libumockdev-preload and cross-checks its requests against
# libftdi's Python binding (sdwire_libftdi.py).
USBDEVFS_OBJ := $(BUILD)/host/tests/fixtures/usbdevfs.o
FT200X_OBJ := $(BUILD)/host/tests/fixtures/ft200x.o $(USBDEVFS_OBJ)
$(FT200X_OBJ) $(BUILD)/host/tests/test_sdwire.o: HOST_CFLAGS += $(UMOCKDEV_CFLAGS)
$(BUILD)/host/tests/test_sdwire.o: HOST_CFLAGS += -DSDWIRE_LIBFTDI_PY='"$(abspath host/tests/sdwire_libftdi.py)"'
$(BUILD)/host/tests/test_sdwire: $(FT200X_OBJ) $(UMOCKFX_OBJ)
$(BUILD)/host/tests/test_sdwire: HOST_PKG_LIBS += $(FT200X_OBJ) $(UMOCKFX_OBJ) $(UMOCKDEV_LIBS)
DEPFILES += $(FT200X_OBJ:.o=.d)

# The uhub back-end: a fake sysfs tree, and USB hubs emulated over umockdev
# (host/tests/fixtures/usbhub.c, on the shared usbdevfs URB engine) linked into test_uhub,
# which re-executes itself under libumockdev-preload and cross-checks against uhubctl run
# on the same emulation.
USBHUB_OBJ := $(BUILD)/host/tests/fixtures/usbhub.o $(USBDEVFS_OBJ)
$(USBHUB_OBJ) $(BUILD)/host/tests/test_uhub.o: HOST_CFLAGS += $(UMOCKDEV_CFLAGS)
$(BUILD)/host/tests/test_uhub: $(USBHUB_OBJ) $(UMOCKFX_OBJ)
$(BUILD)/host/tests/test_uhub: HOST_PKG_LIBS += $(USBHUB_OBJ) $(UMOCKFX_OBJ) $(UMOCKDEV_LIBS)
DEPFILES += $(USBHUB_OBJ:.o=.d)

# The USB identity of device nodes through libudev (host/src/sysfs.c) on a fake /sys read
# through umockdev's preload.
$(BUILD)/host/tests/test_sysfs.o: HOST_CFLAGS += $(UMOCKDEV_CFLAGS)
$(BUILD)/host/tests/test_sysfs: $(UMOCKFX_OBJ)
$(BUILD)/host/tests/test_sysfs: HOST_PKG_LIBS += $(UMOCKFX_OBJ) $(UMOCKDEV_LIBS)

# The USB port-path helpers (host/src/usb.c) on devices enumerated from a umockdev testbed.
$(BUILD)/host/tests/test_usb.o: HOST_CFLAGS += $(UMOCKDEV_CFLAGS)
$(BUILD)/host/tests/test_usb: $(UMOCKFX_OBJ)
$(BUILD)/host/tests/test_usb: HOST_PKG_LIBS += $(UMOCKFX_OBJ) $(UMOCKDEV_LIBS)

# The rpiboot usbboot back-end: a Raspberry Pi in USB boot mode (BCM2711, and the
# BCM2835, BCM2837 and BCM2712 variants) emulated over umockdev
# (host/tests/fixtures/bcm2711.c, on the shared usbdevfs URB engine: boot ROM, file-server
# second stage, mass storage) linked into test_rpiboot, which re-executes itself under
# libumockdev-preload.
BCM2711_OBJ := $(BUILD)/host/tests/fixtures/bcm2711.o $(USBDEVFS_OBJ)
$(BCM2711_OBJ) $(BUILD)/host/tests/test_rpiboot.o: HOST_CFLAGS += $(UMOCKDEV_CFLAGS)
# upstream rpiboot's requests in each of its modes, replayed against the emulation
$(BUILD)/host/tests/test_rpiboot.o: HOST_CFLAGS += \
	-DRPIBOOT_TRANSCRIPT='"$(abspath host/tests/fixtures/rpiboot-upstream.txt)"'
$(BUILD)/host/tests/test_rpiboot.o: host/tests/fixtures/rpiboot-upstream.txt
$(BUILD)/host/tests/test_rpiboot: $(BCM2711_OBJ) $(UMOCKFX_OBJ)
$(BUILD)/host/tests/test_rpiboot: HOST_PKG_LIBS += $(BCM2711_OBJ) $(UMOCKFX_OBJ) $(UMOCKDEV_LIBS)
DEPFILES += $(BCM2711_OBJ:.o=.d)

# The usbsdmux back-end: USB-SD-Mux card readers emulated over umockdev
# (host/tests/fixtures/usbsdmux.c: SG_IO on /dev/sgN reaching an emulated GPIO expander)
# linked into test_usbsdmux, which re-executes itself under libumockdev-preload and
# cross-checks against the upstream usbsdmux tool run on the same emulation.
USBSDMUX_OBJ := $(BUILD)/host/tests/fixtures/usbsdmux.o
$(USBSDMUX_OBJ) $(BUILD)/host/tests/test_usbsdmux.o: HOST_CFLAGS += $(UMOCKDEV_CFLAGS)
$(BUILD)/host/tests/test_usbsdmux: $(USBSDMUX_OBJ) $(UMOCKFX_OBJ)
$(BUILD)/host/tests/test_usbsdmux: HOST_PKG_LIBS += $(USBSDMUX_OBJ) $(UMOCKFX_OBJ) $(UMOCKDEV_LIBS)
DEPFILES += $(USBSDMUX_OBJ:.o=.d)

install: $(BUILD)/rigor $(BUILD)/rigor-gpio-holder
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(RIGOR_INSTALL_LUA)/rigor \
		$(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/rigor/rigs
	install -m 755 $(BUILD)/rigor $(DESTDIR)$(PREFIX)/bin/rigor
	install -m 755 $(BUILD)/rigor-gpio-holder $(DESTDIR)$(PREFIX)/bin/rigor-gpio-holder
	cp -R lua/rigor $(DESTDIR)$(RIGOR_INSTALL_LUA)/
	install -m 644 docs/rigor.1 $(DESTDIR)$(PREFIX)/share/man/man1/rigor.1
	install -m 644 rigs/*.lua $(DESTDIR)$(PREFIX)/share/rigor/rigs/
	cp -R lua/schema $(DESTDIR)$(PREFIX)/share/rigor/
