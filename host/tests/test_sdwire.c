/* SPDX-License-Identifier: MIT */
/*
 * The sdwire back-end (drivers/sdwire.c) through the library front end, on FT200X
 * devices emulated by umockdev (fixtures/ft200x.c) in this process: the tests assert
 * the CBUS requests the emulated devices really received. Each test gets a fresh
 * testbed. The cross-check runs libftdi's Python binding (the library sd-mux-ctrl is
 * built on) against the same emulation and compares its requests with ours. The program
 * re-executes itself under libumockdev-preload when started without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixtures/ft200x.h"
#include "internal.h"
#include "fixtures/rigfx.h"
#include "fixtures/umockfx.h"

#ifndef SDWIRE_LIBFTDI_PY
#define SDWIRE_LIBFTDI_PY "host/tests/sdwire_libftdi.py"
#endif
#define PYTHON "/usr/bin/python3"

struct sfx {
	struct fx *f;
	struct ft200x_emu *emu;
};

static int setup(void **state)
{
	struct sfx *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->emu = ft200x_emu_new();
	assert_non_null(s->emu);
	s->f = rigfx_new("sdwire");
	*state = s;
	return 0;
}

static int teardown(void **state)
{
	struct sfx *s = *state;

	rigfx_release(s->f);        /* closes the rig (and its libusb context) first */
	ft200x_emu_free(s->emu);
	free(s);
	return 0;
}

/* A rig with a sim power part and an sdwire mux; @serial/@path NULL: not set. */
static struct rig_desc *sdwire_desc(struct fx *f, const char *serial, const char *path,
				    int timeout_ms)
{
	struct rig_desc *d = rig_desc_new(f->ctx, "sdwire-test.lua");
	int p;

	rig_desc_set_str(d, -1, "name", "sdw", 1);
	p = rig_desc_add_part(d, "power", NULL, "sim", 2);
	rig_desc_set_int(d, p, "min_off_ms", 0, 2);
	p = rig_desc_add_part(d, "sdmux", NULL, "sdwire", 3);
	if (serial)
		rig_desc_set_str(d, p, "usb_serial", serial, 3);
	if (path)
		rig_desc_set_str(d, p, "usb_path", path, 3);
	if (timeout_ms)
		rig_desc_set_int(d, p, "timeout_ms", timeout_ms, 3);
	rig_desc_set_int(d, p, "settle_ms", 0, 3);
	return d;
}

static int open_rig(struct sfx *s, const char *serial, const char *path, int timeout_ms)
{
	s->f->d = sdwire_desc(s->f, serial, path, timeout_ms);
	return rig_open(s->f->ctx, s->f->d, &s->f->rig);
}

static int add_sdwire(struct sfx *s, const char *port, const char *serial)
{
	int dev = ft200x_emu_add(s->emu, port, FT200X_SDWIRE_VID, FT200X_SDWIRE_PID, "sd-wire",
				 serial);

	assert_true(dev >= 0);
	return dev;
}

static struct ft200x_state st(struct sfx *s, int dev)
{
	struct ft200x_state x;

	assert_int_equal(ft200x_emu_state(s->emu, dev, &x), 0);
	return x;
}

static void test_set_get(void **state)
{
	struct sfx *s = *state;
	int dev = add_sdwire(s, "1-1.2", "sdw-A");

	assert_int_equal(open_rig(s, "sdw-A", NULL, 0), 0);
	assert_int_equal(rig_power_set(s->f->rig, false), 0);
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_DUT), 0);
	/* sd-mux-ctrl's request: SET_BITMODE, wValue BITMODE_CBUS << 8 | 0xF0, wIndex 1 */
	assert_int_equal(st(s, dev).bitmode, 0x20F0);
	assert_int_equal(st(s, dev).windex, 1);
	assert_int_equal(st(s, dev).pins & 1, 0);
	assert_int_equal(rig_sdmux_get(s->f->rig), RIG_MUX_DUT);
	assert_int_equal(st(s, dev).read_count, 1);     /* read back from the device */
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_HOST), 0);
	assert_int_equal(st(s, dev).bitmode, 0x20F1);
	assert_int_equal(rig_sdmux_get(s->f->rig), RIG_MUX_HOST);
	assert_int_equal(st(s, dev).set_count, 2);
	assert_int_equal(st(s, dev).stalls, 0);
}

static void test_interlock(void **state)
{
	struct sfx *s = *state;
	int dev = add_sdwire(s, "1-1.2", "sdw-A");

	assert_int_equal(open_rig(s, "sdw-A", NULL, 0), 0);
	assert_int_equal(rig_power_set(s->f->rig, false), 0);
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_DUT), 0);
	assert_int_equal(rig_power_set(s->f->rig, true), 0);
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_HOST), RIG_E_PERM);
	assert_non_null(strstr(rig_errmsg(s->f->rig), "interlock"));
	assert_int_equal(st(s, dev).set_count, 1);      /* refused before the wire */
	assert_int_equal(st(s, dev).bitmode, 0x20F0);
	rig_clear_error(s->f->rig);
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_DUT), 0);  /* to the DUT is fine */
	assert_int_equal(rig_power_set(s->f->rig, false), 0);
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_HOST), 0);
	assert_int_equal(st(s, dev).bitmode, 0x20F1);
}

static void test_off_not_supported(void **state)
{
	struct sfx *s = *state;
	int dev = add_sdwire(s, "1-2", "sdw-A");

	assert_int_equal(open_rig(s, NULL, NULL, 0), 0);    /* the only one: no serial needed */
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_OFF), RIG_E_NOTSUP);
	assert_non_null(strstr(rig_errmsg(s->f->rig), "no 'off' position"));
	assert_int_equal(st(s, dev).set_count, 0);
}

static void test_two_pick_by_serial(void **state)
{
	struct sfx *s = *state;
	int a = add_sdwire(s, "1-1.2", "sdw-A");
	int b = add_sdwire(s, "1-1.3", "sdw-B");

	assert_int_equal(open_rig(s, "sdw-B", NULL, 0), 0);
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_DUT), 0);
	assert_int_equal(st(s, b).bitmode, 0x20F0);
	assert_int_equal(st(s, a).bitmode, -1);         /* the other one untouched */
	assert_int_equal(st(s, a).set_count + st(s, a).read_count, 0);
}

static void test_two_pick_by_path(void **state)
{
	struct sfx *s = *state;
	int a = add_sdwire(s, "1-1.2", "sdw-A");
	int b = add_sdwire(s, "1-1.3", "sdw-B");

	assert_int_equal(open_rig(s, NULL, "1-1.2", 0), 0);
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_DUT), 0);
	assert_int_equal(st(s, a).bitmode, 0x20F0);
	assert_int_equal(st(s, b).bitmode, -1);
}

static void test_two_without_serial(void **state)
{
	struct sfx *s = *state;

	add_sdwire(s, "1-1.2", "sdw-A");
	add_sdwire(s, "1-1.3", "sdw-B");
	assert_int_equal(open_rig(s, NULL, NULL, 0), RIG_E_INVAL);
	assert_non_null(strstr(rig_ctx_errmsg(s->f->ctx), "2 SDWires attached"));
	assert_non_null(strstr(rig_ctx_errmsg(s->f->ctx), "serial 'sdw-A' at 1-1.2"));
	assert_non_null(strstr(rig_ctx_errmsg(s->f->ctx), "serial 'sdw-B' at 1-1.3"));
}

static void test_wrong_serial(void **state)
{
	struct sfx *s = *state;
	const char *msg;

	add_sdwire(s, "1-1.2", "sdw-A");
	add_sdwire(s, "1-1.3", "sdw-B");
	/* Same VID:PID but another product (a full-size sd-mux): not taken for an SDWire. */
	ft200x_emu_add(s->emu, "1-4", FT200X_SDWIRE_VID, FT200X_SDWIRE_PID, "sd-mux", "mux-1");
	assert_int_equal(open_rig(s, "sdw-C", NULL, 0), RIG_E_NODEV);
	msg = rig_ctx_errmsg(s->f->ctx);
	assert_non_null(strstr(msg, "sdmux:"));
	assert_non_null(strstr(msg, "no SDWire (usb_serial=sdw-C vid_pid=04e8:6001) found"));
	assert_non_null(strstr(msg, "serial 'sdw-A' at 1-1.2"));
	assert_non_null(strstr(msg, "serial 'sdw-B' at 1-1.3"));
	assert_non_null(strstr(msg, "at 1-4 (product 'sd-mux': not an SDWire)"));
}

static void test_none_attached(void **state)
{
	struct sfx *s = *state;

	assert_int_equal(open_rig(s, NULL, NULL, 0), RIG_E_NODEV);
	assert_non_null(strstr(rig_ctx_errmsg(s->f->ctx), "nothing with that VID:PID"));
}

static void test_stall(void **state)
{
	struct sfx *s = *state;
	int dev = add_sdwire(s, "1-2", "sdw-A");

	assert_int_equal(open_rig(s, "sdw-A", NULL, 0), 0);
	ft200x_emu_set_fault(s->emu, dev, FT200X_STALL);
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_DUT), RIG_E_IO);
	assert_non_null(strstr(rig_errmsg(s->f->rig), "device stalled the request"));
	assert_int_equal(st(s, dev).stalls, 1);
	/* First error wins: the read's stall does not overwrite the switch's. */
	assert_int_equal(rig_sdmux_get(s->f->rig), RIG_E_IO);
	assert_non_null(strstr(rig_errmsg(s->f->rig), "switching to the DUT"));
	rig_clear_error(s->f->rig);
	ft200x_emu_set_fault(s->emu, dev, FT200X_OK);
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_DUT), 0);
	assert_int_equal(st(s, dev).bitmode, 0x20F0);
}

static void test_timeout(void **state)
{
	struct sfx *s = *state;
	int dev = add_sdwire(s, "1-2", "sdw-A");
	int64_t t0;

	assert_int_equal(open_rig(s, "sdw-A", NULL, 100), 0);
	ft200x_emu_set_fault(s->emu, dev, FT200X_TIMEOUT);
	t0 = rig_now_ms();
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_DUT), RIG_E_TIMEOUT);
	assert_true(rig_now_ms() - t0 >= 90);
	assert_true(rig_now_ms() - t0 < 2000);
	assert_non_null(strstr(rig_errmsg(s->f->rig), "no answer within 100 ms"));
	rig_clear_error(s->f->rig);
	ft200x_emu_set_fault(s->emu, dev, FT200X_OK);
	assert_int_equal(rig_sdmux_get(s->f->rig), RIG_MUX_HOST);  /* pins at power-up */
}

static void test_unplug_and_back(void **state)
{
	struct sfx *s = *state;
	int dev = add_sdwire(s, "1-1.2", "sdw-A"), again;

	assert_int_equal(open_rig(s, "sdw-A", NULL, 0), 0);
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_DUT), 0);
	ft200x_emu_unplug(s->emu, dev);
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_HOST), RIG_E_NODEV);
	assert_non_null(strstr(rig_errmsg(s->f->rig), "sdw-A"));
	assert_int_equal(st(s, dev).bitmode, 0x20F0);
	/* Plugged in again (a new device number): found again by its serial. */
	rig_clear_error(s->f->rig);
	again = add_sdwire(s, "1-1.2", "sdw-A");
	for (int i = 0; i < 100 && rig_sdmux_set(s->f->rig, RIG_MUX_HOST) < 0; i++) {
		rig_clear_error(s->f->rig);    /* libusb learns of it from a uevent */
		usleep(10000);
	}
	assert_int_equal(st(s, again).bitmode, 0x20F1);
	assert_int_equal(rig_sdmux_get(s->f->rig), RIG_MUX_HOST);
}

/* The device vanishes while a handle is open (ENODEV on every request). */
static void test_gone_mid_operation(void **state)
{
	struct sfx *s = *state;
	int dev = add_sdwire(s, "1-2", "sdw-A");

	assert_int_equal(open_rig(s, "sdw-A", NULL, 0), 0);
	assert_int_equal(rig_sdmux_get(s->f->rig), RIG_MUX_HOST);
	ft200x_emu_set_fault(s->emu, dev, FT200X_GONE);
	assert_int_equal(rig_sdmux_get(s->f->rig), RIG_E_NODEV);
	assert_non_null(rig_errmsg(s->f->rig)[0] ? rig_errmsg(s->f->rig) : NULL);
}

static void test_bad_vid_pid(void **state)
{
	struct sfx *s = *state;
	int p;

	s->f->d = rig_desc_new(s->f->ctx, "bad.lua");
	rig_desc_set_str(s->f->d, -1, "name", "b", 1);
	p = rig_desc_add_part(s->f->d, "sdmux", NULL, "sdwire", 2);
	rig_desc_set_str(s->f->d, p, "vid_pid", "sdwire", 2);
	assert_int_equal(rig_open(s->f->ctx, s->f->d, &s->f->rig), RIG_E_INVAL);
	assert_non_null(strstr(rig_ctx_errmsg(s->f->ctx), "parameter 'vid_pid': 'sdwire' is not a USB VID:PID"));
}

/* A re-programmed FT200X (factory 0403:6015): vid_pid given, product not checked. */
static void test_vid_pid(void **state)
{
	struct sfx *s = *state;
	int dev = ft200x_emu_add(s->emu, "1-3", 0x0403, 0x6015, "FT200X USB I2C", "FT1234");
	int p;

	s->f->d = rig_desc_new(s->f->ctx, "v.lua");
	rig_desc_set_str(s->f->d, -1, "name", "v", 1);
	p = rig_desc_add_part(s->f->d, "sdmux", NULL, "sdwire", 2);
	rig_desc_set_str(s->f->d, p, "vid_pid", "0403:6015", 2);
	rig_desc_set_str(s->f->d, p, "usb_serial", "FT1234", 2);
	assert_int_equal(rig_open(s->f->ctx, s->f->d, &s->f->rig), 0);
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_DUT), 0);
	assert_int_equal(st(s, dev).bitmode, 0x20F0);
}

/* Run the libftdi helper; returns its exit status, its output line in @out. */
static int libftdi(const char *serial, const char *action, char *out, size_t len)
{
	char cmd[512];
	FILE *p;
	int rc;

	snprintf(cmd, sizeof(cmd), PYTHON " %s %s %s 2>&1", SDWIRE_LIBFTDI_PY, serial, action);
	p = popen(cmd, "r");
	assert_non_null(p);
	out[0] = 0;
	if (!fgets(out, (int)len, p))
		out[0] = 0;
	out[strcspn(out, "\n")] = 0;
	rc = pclose(p);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/*
 * Cross-check with the upstream library: for each side, the request rigor puts on the
 * wire (wValue, wIndex) equals libftdi's set_bitmode(0xF1/0xF0, BITMODE_CBUS), as
 * sd-mux-ctrl sends it; and each reads back what the other set.
 */
static void test_libftdi_crosscheck(void **state)
{
	struct sfx *s = *state;
	int dev = add_sdwire(s, "1-1.2", "sdw-X");
	const enum rig_mux sides[] = { RIG_MUX_HOST, RIG_MUX_DUT };
	char out[256];

	if (system(PYTHON " -c 'import ftdi1' 2>/dev/null") != 0) {
		print_message("python3-ftdi1 is not installed: skipping the libftdi cross-check\n");
		skip();
	}
	assert_int_equal(open_rig(s, "sdw-X", NULL, 0), 0);
	for (size_t i = 0; i < RIG_ARRAY_SIZE(sides); i++) {
		const char *name = rig_mux_name(sides[i]);
		struct ft200x_state ours, theirs;

		ft200x_emu_reset_log(s->emu, dev);
		assert_int_equal(rig_sdmux_set(s->f->rig, sides[i]), 0);
		ours = st(s, dev);
		/* libftdi reads the side rigor set */
		if (libftdi("sdw-X", "read", out, sizeof(out)) != 0)
		fail_msg("libftdi: %s", out);
		assert_non_null(strstr(out, name));
		ft200x_emu_reset_log(s->emu, dev);
		assert_int_equal(libftdi("sdw-X", name, out, sizeof(out)), 0);
		theirs = st(s, dev);
		assert_int_equal(theirs.set_count, 1);
		assert_int_equal(ours.bitmode, theirs.bitmode);
		assert_int_equal(ours.windex, theirs.windex);
		assert_int_equal(ours.pins, theirs.pins);
		assert_int_equal(theirs.stalls, 0);
		/* rigor reads the side libftdi set */
		assert_int_equal(rig_sdmux_get(s->f->rig), (int)sides[i]);
	}
	/* And the other way round: libftdi sets dut after rigor set host. */
	assert_int_equal(rig_sdmux_set(s->f->rig, RIG_MUX_HOST), 0);
	assert_int_equal(libftdi("sdw-X", "dut", out, sizeof(out)), 0);
	assert_string_equal(out, "pins=0 side=dut");    /* CBUS0..3 driven low */
	assert_int_equal(rig_sdmux_get(s->f->rig), RIG_MUX_DUT);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_set_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interlock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_off_not_supported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_pick_by_serial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_pick_by_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_without_serial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_serial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_none_attached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stall, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unplug_and_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_mid_operation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_vid_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vid_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_libftdi_crosscheck, setup, teardown),
	};

	(void)argc;
	umockfx_ensure_preload(argv, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
