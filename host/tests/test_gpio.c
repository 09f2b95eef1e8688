/* SPDX-License-Identifier: MIT */
/*
 * The gpio back-end (drivers/gpio_v1.c) through the library front end, on chips emulated
 * by umockdev (fixtures/gpiochip.c) in this process: the tests assert the levels the
 * emulated lines really carry. Lines are held in process here (in_process = true); the
 * holder process is tested from the CLI by gpio.sh. The program re-executes itself under
 * the preload (shim + libumockdev-preload) when started without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixtures/gpiochip.h"
#include "internal.h"
#include "fixtures/rigfx.h"
#include "fixtures/umockfx.h"

enum { RELAY1, RELAY2, SD_SEL, SD_EN, BOOT, RESET };

static struct gpiochip_emu *emu;   /* one emulated chip for the whole program */

/* umockdev notices a closed handle fd on its own thread: give it a moment. */
static int open_handles_settled(void)
{
	int n = gpiochip_emu_open_handles(emu);

	for (int i = 0; n && i < 200; i++) {
		usleep(5000);
		n = gpiochip_emu_open_handles(emu);
	}
	return n;
}


static int setup(void **state)
{
	*state = rigfx_new("gpio");
	return 0;
}

static int teardown(void **state)
{
	rigfx_release(*state);
	for (int i = 0; i < 8; i++) {
		gpiochip_emu_claim(emu, 0, (unsigned)i, NULL);
		gpiochip_emu_fail_set(emu, 0, (unsigned)i, 0);
	}
	/* Every request was released with the rig. */
	assert_int_equal(open_handles_settled(), 0);
	return 0;
}

static int add_gpio(struct rig_desc *d, const char *role, const char *inst, const char *chip,
		    const char *line, int l)
{
	int p = rig_desc_add_part(d, role, inst, "gpio", l);

	rig_desc_set_str(d, p, "chip", chip, l);
	if (line)
		rig_desc_set_str(d, p, "line", line, l);
	rig_desc_set_bool(d, p, "in_process", true, l);
	return p;
}

/* Power (NC relay: inverted), an SD mux with an enable line, two buttons. */
static struct rig_desc *gpio_desc(struct fx *f, const char *chip, const char *power_line)
{
	struct rig_desc *d = rig_desc_new(f->ctx, "gpio-test.lua");
	int p;

	rig_desc_set_str(d, -1, "name", "g", 1);
	p = add_gpio(d, "power", NULL, chip, power_line, 2);
	rig_desc_set_bool(d, p, "inverted", true, 2);
	rig_desc_set_int(d, p, "min_off_ms", 0, 2);
	p = add_gpio(d, "sdmux", NULL, "gpiochip0", "SD_SEL", 3);
	rig_desc_set_str(d, p, "enable_line", "SD_EN", 3);
	rig_desc_set_int(d, p, "host_level", 1, 3);
	p = add_gpio(d, "button", "boot", "pinctrl-emu", "BOOT", 4);
	rig_desc_set_bool(d, p, "active_low", true, 4);
	rig_desc_set_bool(d, p, "open_drain", true, 4);
	p = add_gpio(d, "button", "reset", "gpiochip0", NULL, 5);
	rig_desc_set_int(d, p, "offset", RESET, 5);
	return d;
}

static void open_rig(struct fx *f)
{
	f->d = gpio_desc(f, "gpiochip0", "RELAY1");
	assert_int_equal(rig_open(f->ctx, f->d, &f->rig), 0);
}

static int level(int off) { return gpiochip_emu_value(emu, 0, (unsigned)off); }

static void test_power_inverted(void **state)
{
	struct fx *f = *state;
	struct gpiochip_emu_line l;

	open_rig(f);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	/* A normally-closed relay: on = coil off = raw 0, and the line is ours. */
	assert_int_equal(gpiochip_emu_line(emu, 0, RELAY1, &l), 0);
	assert_true(l.requested && l.output && !l.open_drain);
	assert_string_equal(l.consumer, "rigor");
	assert_int_equal(l.value, 0);
	assert_int_equal(rig_power_get(f->rig), 1);
	assert_int_equal(rig_power_set(f->rig, false), 0);
	assert_int_equal(level(RELAY1), 1);
	assert_int_equal(rig_power_get(f->rig), 0);
	assert_int_equal(level(RELAY2), 0);   /* the neighbour untouched */
}

static void test_sdmux_interlock(void **state)
{
	struct fx *f = *state;

	open_rig(f);
	assert_int_equal(rig_power_set(f->rig, false), 0);
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_DUT), 0);
	assert_int_equal(level(SD_SEL), 0);
	assert_int_equal(level(SD_EN), 0);          /* enable_level 0: connected */
	assert_int_equal(rig_sdmux_get(f->rig), RIG_MUX_DUT);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_HOST), RIG_E_PERM);
	assert_int_equal(level(SD_SEL), 0);         /* refused before any line moved */
	rig_clear_error(f->rig);
	assert_int_equal(rig_power_set(f->rig, false), 0);
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_HOST), 0);
	assert_int_equal(level(SD_SEL), 1);
	assert_int_equal(level(SD_EN), 0);
	assert_int_equal(rig_sdmux_get(f->rig), RIG_MUX_HOST);
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_OFF), 0);
	assert_int_equal(level(SD_EN), 1);
	assert_int_equal(rig_sdmux_get(f->rig), RIG_MUX_OFF);
}

static void test_buttons(void **state)
{
	struct fx *f = *state;
	struct gpiochip_emu_line l;

	open_rig(f);
	assert_int_equal(rig_button_set(f->rig, "boot", true), 0);
	assert_int_equal(gpiochip_emu_line(emu, 0, BOOT, &l), 0);
	assert_true(l.output && l.open_drain);
	assert_int_equal(l.value, 0);               /* active low: pressed pulls down */
	assert_int_equal(rig_button_set(f->rig, "boot", false), 0);
	assert_int_equal(level(BOOT), 1);
	assert_int_equal(rig_button_press(f->rig, "reset", 20), 0);
	assert_int_equal(level(RESET), 0);          /* released after the press */
	assert_int_equal(rig_button_set(f->rig, "reset", true), 0);
	assert_int_equal(level(RESET), 1);
	assert_int_equal(rig_safe(f->rig), 0);
	assert_int_equal(level(RESET), 0);
	assert_int_equal(level(BOOT), 1);
	assert_int_equal(level(RELAY1), 1);         /* safe: power off (inverted) */
}

/* Released lines keep their level; a later rig reads it "as is" without driving it. */
static void test_release_and_read_as_is(void **state)
{
	struct fx *f = *state;
	struct gpiochip_emu_line l;

	open_rig(f);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	rig_close(f->rig);
	f->rig = NULL;
	assert_int_equal(open_handles_settled(), 0);
	assert_int_equal(gpiochip_emu_line(emu, 0, RELAY1, &l), 0);
	assert_false(l.requested);
	assert_int_equal(l.value, 0);
	assert_int_equal(rig_open(f->ctx, f->d, &f->rig), 0);
	assert_int_equal(rig_power_get(f->rig), 1);
	assert_int_equal(open_handles_settled(), 0);  /* reading did not keep it */
	assert_int_equal(gpiochip_emu_line(emu, 0, RELAY1, &l), 0);
	assert_int_equal(l.value, 0);
	assert_true(l.output);
}

static void test_chip_missing(void **state)
{
	struct fx *f = *state;

	f->d = gpio_desc(f, "gpiochip7", "RELAY1");
	assert_int_equal(rig_open(f->ctx, f->d, &f->rig), RIG_E_NODEV);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "cannot open GPIO chip 'gpiochip7'"));
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "power:"));
}

static void test_line_not_found(void **state)
{
	struct fx *f = *state;

	f->d = gpio_desc(f, "gpiochip0", "RELAY9");
	assert_int_equal(rig_open(f->ctx, f->d, &f->rig), RIG_E_NOENT);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "no line named 'RELAY9' on chip 'gpiochip0'"));
}

static void test_line_busy(void **state)
{
	struct fx *f = *state;

	open_rig(f);
	gpiochip_emu_claim(emu, 0, RELAY1, "spi0");
	assert_int_equal(rig_power_set(f->rig, true), RIG_E_BUSY);
	assert_non_null(strstr(rig_errmsg(f->rig), "busy: requested by 'spi0'"));
	gpiochip_emu_claim(emu, 0, RELAY1, NULL);
	rig_clear_error(f->rig);
	assert_int_equal(rig_power_set(f->rig, true), 0);   /* a retry requests it */
	assert_int_equal(level(RELAY1), 0);
}

static void test_set_fails(void **state)
{
	struct fx *f = *state;

	open_rig(f);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	gpiochip_emu_fail_set(emu, 0, RELAY1, EIO);
	assert_int_equal(rig_power_set(f->rig, false), RIG_E_IO);
	assert_non_null(strstr(rig_errmsg(f->rig), "cannot set line 'RELAY1' on chip 'gpiochip0' to 1"));
	assert_int_equal(level(RELAY1), 0);                 /* unchanged */
	/* First error wins: a second failure does not overwrite the first message. */
	gpiochip_emu_fail_set(emu, 0, RELAY1, ENODEV);
	assert_int_equal(rig_power_set(f->rig, false), RIG_E_NODEV);
	assert_non_null(strstr(rig_errmsg(f->rig), "Input/output error"));
}

static void test_bad_params(void **state)
{
	struct fx *f = *state;
	int p;

	f->d = rig_desc_new(f->ctx, "bad.lua");
	rig_desc_set_str(f->d, -1, "name", "b", 1);
	p = add_gpio(f->d, "sdmux", NULL, "gpiochip0", "SD_SEL", 2);
	rig_desc_set_int(f->d, p, "host_level", 2, 2);
	assert_int_equal(rig_open(f->ctx, f->d, &f->rig), RIG_E_INVAL);
	rig_desc_free(f->d);
	/* The schema: chip is required, unknown keys are reported. */
	f->d = rig_desc_new(f->ctx, "bad.lua");
	rig_desc_set_str(f->d, -1, "name", "b", 1);
	p = rig_desc_add_part(f->d, "power", NULL, "gpio", 2);
	rig_desc_set_str(f->d, p, "pin", "RELAY1", 2);
	assert_int_equal(rig_desc_validate(f->d), 2);
	assert_non_null(strstr(rig_desc_problems(f->d), "missing parameter 'chip'"));
	assert_non_null(strstr(rig_desc_problems(f->d), "unknown parameter 'pin'"));
}

/* A mux without an enable line cannot switch off, and says so. */
static void test_mux_without_enable(void **state)
{
	struct fx *f = *state;

	f->d = rig_desc_new(f->ctx, "m.lua");
	rig_desc_set_str(f->d, -1, "name", "m", 1);
	add_gpio(f->d, "sdmux", NULL, "gpiochip0", "SD_SEL", 2);
	assert_int_equal(rig_open(f->ctx, f->d, &f->rig), 0);
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_HOST), 0);
	assert_int_equal(level(SD_SEL), 0);         /* host_level defaults to 0 */
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_DUT), 0);
	assert_int_equal(level(SD_SEL), 1);
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_OFF), RIG_E_NOTSUP);
	assert_non_null(strstr(rig_errmsg(f->rig), "no enable_line"));
}

int main(int argc, char **argv)
{
	static const char *const names[8] = { "RELAY1", "RELAY2", "SD_SEL", "SD_EN", "BOOT",
					      "RESET", NULL, NULL };
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_power_inverted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sdmux_interlock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buttons, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_and_read_as_is, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chip_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_line_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_params, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mux_without_enable, setup, teardown),
	};
	int rc;

	(void)argc;
	umockfx_ensure_preload(argv, "libgpiochipshim");
	emu = gpiochip_emu_new();
	if (!emu || gpiochip_emu_add_chip(emu, "pinctrl-emu", 8, names) != 0) {
		fprintf(stderr, "test_gpio: cannot set up the gpiochip emulation\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	gpiochip_emu_free(emu);
	return rc;
}
