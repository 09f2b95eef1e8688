/* SPDX-License-Identifier: MIT */
/* Unit tests of librig: descriptions, the front-end invariants, sim faults, locks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "internal.h"
#include "rig_flash.h"
#include "fixtures/rigfx.h"


static int setup(void **state)
{
	*state = rigfx_new("test");
	return 0;
}

static int teardown(void **state)
{
	rigfx_release(*state);
	return 0;
}

/* A full sim rig; @power_extra lets a test add a power parameter. */
static struct rig_desc *sim_desc(struct fx *f, bool inverted, int min_off)
{
	struct rig_desc *d = rig_desc_new(f->ctx, "test.lua");
	int p;

	rig_desc_set_str(d, -1, "name", "t", 1);
	rig_desc_set_str(d, -1, "device_type", "raspberrypi4-64", 2);
	rig_desc_add_cap(d, "sd", 3);
	p = rig_desc_add_part(d, "power", NULL, "sim", 4);
	rig_desc_set_bool(d, p, "inverted", inverted, 4);
	rig_desc_set_int(d, p, "min_off_ms", min_off, 4);
	rig_desc_set_int(d, p, "timeout_ms", 300, 4);
	rig_desc_add_part(d, "sdmux", NULL, "sim", 5);
	p = rig_desc_add_part(d, "button", "boot", "sim", 6);
	rig_desc_set_int(d, p, "press_ms", 30, 6);
	p = rig_desc_add_part(d, "button", "reset", "sim", 7);
	rig_desc_set_bool(d, p, "active_low", true, 7);
	p = rig_desc_add_part(d, "console", NULL, "sim", 8);
	rig_desc_set_int(d, p, "line_ms", 5, 8);
	rig_desc_add_part(d, "usbboot", NULL, "sim", 9);
	rig_desc_add_part(d, "storage", NULL, "sim", 10);
	return d;
}

static void open_sim(struct fx *f, bool inverted, int min_off)
{
	f->d = sim_desc(f, inverted, min_off);
	assert_int_equal(rig_open(f->ctx, f->d, &f->rig), 0);
}

static long long sim_state(struct fx *f, const char *key)
{
	char path[128];
	struct rig_kv *kv;
	long long v;

	snprintf(path, sizeof(path), "%s/t.sim", f->dir);
	kv = rig_kv_load(path);
	v = rig_kv_get_int(kv, key, -1);
	rig_kv_free(kv);
	return v;
}

/* ---- errors ---- */

static void test_errors(void **state)
{
	(void)state;
	assert_string_equal(rig_err_name(RIG_E_PERM), "RIG_E_PERM");
	assert_string_equal(rig_err_name(RIG_E_TIMEOUT), "RIG_E_TIMEOUT");
	assert_string_equal(rig_strerror(RIG_E_PERM), "refused by interlock");
	assert_int_equal(RIG_E_NODEV, -ENODEV);
	assert_string_equal(rig_err_name(-12345), "RIG_E_OTHER");
}

/* ---- descriptions ---- */

static void test_desc_valid(void **state)
{
	struct fx *f = *state;

	f->d = sim_desc(f, false, 100);
	assert_int_equal(rig_desc_validate(f->d), 0);
	assert_string_equal(rig_desc_problems(f->d), "");
	assert_string_equal(rig_desc_name(f->d), "t");
	/* validating twice does not duplicate or invent problems */
	assert_int_equal(rig_desc_validate(f->d), 0);
}

static void test_desc_every_mistake(void **state)
{
	struct fx *f = *state;
	struct rig_desc *d = rig_desc_new(f->ctx, "bad.lua");
	const char *p;
	int i;

	f->d = d;
	rig_desc_set_int(d, -1, "device_type", 3, 2);                 /* wrong type */
	rig_desc_set_str(d, -1, "colour", "red", 3);                  /* unknown rig key */
	rig_desc_add_part(d, "powr", NULL, "sim", 4);                 /* unknown role */
	rig_desc_add_part(d, "sdmux", NULL, "nosuch", 5);             /* unknown back-end */
	rig_desc_add_part(d, "storage", NULL, "file", 6);             /* missing 'path' */
	i = rig_desc_add_part(d, "power", NULL, "sim", 7);
	rig_desc_set_str(d, i, "min_off_ms", "soon", 8);              /* wrong type */
	rig_desc_set_int(d, i, "voltage", 5, 9);                      /* unknown param */
	rig_desc_add_part(d, "power", NULL, "sim", 10);               /* duplicate role */
	rig_desc_add_part(d, "button", NULL, "sim", 11);              /* button without name */
	rig_desc_problem(d, 12, "loader saw something");              /* kept by validate */
	assert_int_equal(rig_desc_validate(d), 10);
	p = rig_desc_problems(d);
	assert_non_null(strstr(p, "bad.lua:12: loader saw something"));
	assert_non_null(strstr(p, "bad.lua:2: rig key 'device_type' must be a string, not an integer"));
	assert_non_null(strstr(p, "bad.lua:3: unknown rig key 'colour'"));
	/* a file the loader could not read has no keys: no "no name" on top of its errors */
	assert_null(strstr(p, "the rig has no name"));
	assert_non_null(strstr(p, "bad.lua:4: unknown role 'powr'"));
	assert_non_null(strstr(p, "bad.lua:5: unknown back-end 'nosuch' for role sdmux (available: "));
	assert_non_null(strstr(p, ", sim"));   /* among others: the list grows with back-ends */
	assert_non_null(strstr(p, "bad.lua:6: storage (file): missing parameter 'path'"));
	assert_non_null(strstr(p, "bad.lua:8: power (sim): parameter 'min_off_ms' must be an integer, not a string"));
	assert_non_null(strstr(p, "bad.lua:9: power (sim): unknown parameter 'voltage' (known: timeout_ms, inverted, min_off_ms, mv, ma)"));
	assert_non_null(strstr(p, "bad.lua:10: role 'power' given twice (first at line 7)"));
	assert_non_null(strstr(p, "bad.lua:11: a button needs a name"));
	/* an invalid description never opens */
	assert_int_equal(rig_open(f->ctx, d, &f->rig), RIG_E_INVAL);
	assert_null(f->rig);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "unknown role 'powr'"));
}

static void test_desc_no_name(void **state)
{
	struct fx *f = *state;

	f->d = rig_desc_new(f->ctx, "anon.lua");
	rig_desc_add_part(f->d, "power", NULL, "sim", 2);
	assert_int_equal(rig_desc_validate(f->d), 1);
	assert_string_equal(rig_desc_problems(f->d),
			    "anon.lua: the rig has no name (add name = \"...\")\n");
	rig_desc_problem(f->d, -1, "anon.lua:9: a located message");
	assert_non_null(strstr(rig_desc_problems(f->d), "\nanon.lua:9: a located message\n"));
}

static void test_registry(void **state)
{
	enum rig_role role;
	const char *name, *help;
	size_t n = 0;
	bool seen[RIG_ROLE_COUNT] = { false };

	(void)state;
	while (rig_backend_info(n, &role, &name, &help) == 0) {
		assert_non_null(rig_role_name(role));
		assert_true(strlen(help) > 10);
		if (!strcmp(name, "sim"))
			seen[role] = true;
		n++;
	}
	for (int r = 0; r < RIG_ROLE_COUNT; r++)
		assert_true(seen[r]);   /* a sim back-end for every role */
	assert_int_equal(rig_role_from_name("button"), RIG_ROLE_BUTTON);
	assert_int_equal(rig_role_from_name("nope"), RIG_E_INVAL);
}

/* ---- power, interlock, inversion ---- */

static void test_power_and_interlock(void **state)
{
	struct fx *f = *state;

	open_sim(f, false, 0);
	assert_true(rig_has_cap(f->rig, "sd"));
	assert_false(rig_has_cap(f->rig, "usbboot"));
	assert_int_equal(rig_power_set(f->rig, true), 0);
	assert_int_equal(rig_power_get(f->rig), 1);
	/* mux to the host while powered: refused, and the mux does not move */
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_DUT), 0);
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_HOST), RIG_E_PERM);
	assert_non_null(strstr(rig_errmsg(f->rig), "interlock"));
	assert_int_equal(rig_sdmux_get(f->rig), RIG_MUX_DUT);
	rig_clear_error(f->rig);
	/* off: allowed */
	assert_int_equal(rig_power_set(f->rig, false), 0);
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_HOST), 0);
	assert_int_equal(rig_sdmux_get(f->rig), RIG_MUX_HOST);
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_OFF), 0);
	assert_int_equal(rig_sdmux_get(f->rig), RIG_MUX_OFF);
}

static void test_power_inverted(void **state)
{
	struct fx *f = *state;

	open_sim(f, true, 0);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	assert_int_equal(sim_state(f, "power"), 0);     /* NC relay: the raw line is off */
	assert_int_equal(rig_power_get(f->rig), 1);     /* but the DUT is on */
	assert_int_equal(rig_power_set(f->rig, false), 0);
	assert_int_equal(sim_state(f, "power"), 1);
	assert_int_equal(rig_power_get(f->rig), 0);
}

static void test_min_off_time(void **state)
{
	struct fx *f = *state;
	int64_t t0;

	open_sim(f, false, 300);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	assert_int_equal(rig_power_set(f->rig, false), 0);
	t0 = rig_now_ms();
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_HOST), 0);   /* waits out min_off */
	assert_true(rig_now_ms() - t0 >= 250);
	t0 = rig_now_ms();
	assert_int_equal(rig_power_cycle(f->rig, -1), 0);
	assert_true(rig_now_ms() - t0 >= 250);
	assert_int_equal(rig_power_get(f->rig), 1);
}

static void test_measure(void **state)
{
	struct fx *f = *state;
	struct rig_power_reading r;

	open_sim(f, false, 0);
	assert_int_equal(rig_power_measure(f->rig, &r), 0);
	assert_int_equal(r.ma, 0);
	rig_power_set(f->rig, true);
	assert_int_equal(rig_power_measure(f->rig, &r), 0);
	assert_true(r.mv > 4000 && r.ma > 0);
}

/* ---- buttons ---- */

static void test_buttons(void **state)
{
	struct fx *f = *state;

	open_sim(f, false, 0);
	assert_int_equal(rig_button_count(f->rig), 2);
	assert_string_equal(rig_button_name(f->rig, 0), "boot");
	assert_int_equal(rig_button_press(f->rig, "boot", -1), 0);
	assert_int_equal(sim_state(f, "button.boot.presses"), 1);
	assert_int_equal(sim_state(f, "button.boot.level"), 0);       /* released after */
	/* active-low: held means the raw line is low */
	assert_int_equal(rig_button_set(f->rig, "reset", true), 0);
	assert_int_equal(sim_state(f, "button.reset.level"), 0);
	assert_int_equal(rig_button_set(f->rig, "reset", false), 0);
	assert_int_equal(sim_state(f, "button.reset.level"), 1);
	assert_int_equal(rig_button_press(f->rig, "nope", 10), RIG_E_NOENT);
	assert_non_null(strstr(rig_errmsg(f->rig), "buttons: boot, reset"));
}

/* ---- faults ---- */

static void test_faults(void **state)
{
	struct fx *f = *state;
	int64_t t0;

	open_sim(f, false, 0);
	assert_int_equal(rig_inject(f->rig, RIG_ROLE_POWER, NULL, "fail"), 0);
	assert_int_equal(rig_power_set(f->rig, true), RIG_E_IO);
	assert_non_null(strstr(rig_errmsg(f->rig), "power: sim: injected failure"));
	rig_clear_error(f->rig);
	assert_int_equal(rig_inject(f->rig, RIG_ROLE_POWER, NULL, "hang"), 0);
	t0 = rig_now_ms();
	assert_int_equal(rig_power_set(f->rig, true), RIG_E_TIMEOUT);   /* timeout_ms = 300 */
	assert_true(rig_now_ms() - t0 >= 280 && rig_now_ms() - t0 < 3000);
	rig_clear_error(f->rig);
	assert_int_equal(rig_inject(f->rig, RIG_ROLE_SDMUX, NULL, "gone"), 0);
	assert_int_equal(rig_sdmux_get(f->rig), RIG_E_NODEV);
	rig_clear_error(f->rig);
	assert_int_equal(rig_inject(f->rig, RIG_ROLE_POWER, NULL, "bogus"), RIG_E_INVAL);
	rig_clear_error(f->rig);
	assert_int_equal(rig_inject(f->rig, RIG_ROLE_POWER, NULL, "ok"), 0);
	assert_int_equal(rig_power_set(f->rig, true), 0);
}

static void test_first_error_wins(void **state)
{
	struct fx *f = *state;

	open_sim(f, false, 0);
	rig_inject(f->rig, RIG_ROLE_POWER, NULL, "gone");
	assert_int_equal(rig_power_set(f->rig, true), RIG_E_NODEV);
	assert_int_equal(rig_button_press(f->rig, "nope", 1), RIG_E_NOENT);
	assert_non_null(strstr(rig_errmsg(f->rig), "device disappeared"));
}

static void test_safe_state(void **state)
{
	struct fx *f = *state;

	open_sim(f, false, 0);
	rig_power_set(f->rig, true);
	rig_button_set(f->rig, "boot", true);
	/* a failing button does not stop the power from going off */
	rig_inject(f->rig, RIG_ROLE_BUTTON, "boot", "fail");
	assert_int_equal(rig_safe(f->rig), RIG_E_IO);
	assert_int_equal(sim_state(f, "power"), 0);
	rig_inject(f->rig, RIG_ROLE_BUTTON, "boot", "ok");
	rig_clear_error(f->rig);
	assert_int_equal(rig_safe(f->rig), 0);
}

static void test_cancel(void **state)
{
	struct fx *f = *state;
	volatile sig_atomic_t flag = 1;
	int64_t t0 = rig_now_ms();

	rig_ctx_set_cancel(f->ctx, &flag);
	assert_int_equal(rig_ctx_sleep(f->ctx, 5000), RIG_E_INTR);
	assert_true(rig_now_ms() - t0 < 1000);
	rig_ctx_set_cancel(f->ctx, NULL);
	assert_int_equal(rig_ctx_sleep(f->ctx, 1), 0);
}

/* ---- console and event log ---- */

static bool wait_for(struct rig *rig, const char *s, int ms)
{
	int64_t end = rig_now_ms() + ms;
	const char *data;

	while (rig_now_ms() < end) {
		rig_console_fill(rig, 50);
		rig_console_peek(rig, &data);
		if (strstr(data, s))
			return true;
	}
	return false;
}

static void test_console_boot_and_log(void **state)
{
	struct fx *f = *state;
	char log[128], buf[8192];
	const char *data;
	FILE *lf;
	size_t n;

	open_sim(f, false, 0);
	snprintf(log, sizeof(log), "%s/case.log", f->dir);
	assert_int_equal(rig_log_to(f->rig, log), 0);
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_DUT), 0);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	assert_true(wait_for(f->rig, "login: ", 3000));
	rig_console_consume(f->rig, rig_console_peek(f->rig, &data));
	assert_int_equal(rig_console_write(f->rig, "echo hello\n", 11, 1000), 11);
	assert_true(wait_for(f->rig, "hello\r\n# ", 2000));
	assert_int_equal(rig_console_fill(f->rig, 0), RIG_E_TIMEOUT);
	assert_int_equal(rig_log_to(f->rig, NULL), 0);
	lf = fopen(log, "r");
	assert_non_null(lf);
	n = fread(buf, 1, sizeof(buf) - 1, lf);
	buf[n] = 0;
	fclose(lf);
	assert_non_null(strstr(buf, "rig: sdmux dut"));
	assert_non_null(strstr(buf, "rig: power on"));
	assert_non_null(strstr(buf, "console: boot: reading boot partition"));
}

static char *slurp(const char *path, char *buf, size_t len)
{
	FILE *lf = fopen(path, "r");
	size_t n = 0;

	if (lf) {
		n = fread(buf, 1, len - 1, lf);
		fclose(lf);
	}
	buf[n] = 0;
	return buf;
}

/* Every line starts with a stamp "[HH:MM:SS.mmm] " followed by its source. */
static void assert_lines_stamped(const char *log)
{
	for (const char *l = log; *l; l = strchr(l, '\n') + 1) {
		if (l[0] != '[' || !strchr(l, ']') || strchr(l, ']') > strchr(l, '\n'))
			fail_msg("line not stamped: %.60s", l);
		if (!strchr(l, '\n'))
			fail_msg("log ends mid-line: %s", l);
	}
}

/* Console output that arrived before a log was switched goes to the old log. */
static void test_console_log_switch(void **state)
{
	struct fx *f = *state;
	char a[128], b[128], c[128], buf[8192];
	const char *data;

	open_sim(f, false, 0);
	snprintf(a, sizeof(a), "%s/a.log", f->dir);
	snprintf(b, sizeof(b), "%s/b.log", f->dir);
	snprintf(c, sizeof(c), "%s/c.log", f->dir);
	assert_int_equal(rig_log_to(f->rig, a), 0);
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_DUT), 0);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	usleep(150 * 1000);     /* the whole boot (10 lines, 5 ms apart), nobody reading */
	assert_int_equal(rig_log_to(f->rig, b), 0);
	assert_non_null(strstr(slurp(a, buf, sizeof(buf)), "console: rigor-sim login: "));
	assert_lines_stamped(buf);
	/* still there for the next expect, but not logged again */
	assert_true(wait_for(f->rig, "login: ", 1000));
	assert_null(strstr(slurp(b, buf, sizeof(buf)), "login: "));
	rig_console_consume(f->rig, rig_console_peek(f->rig, &data));

	/* Output that arrives while no log is open belongs to the log before. */
	assert_int_equal(rig_log_to(f->rig, NULL), 0);
	assert_int_equal(rig_power_set(f->rig, false), 0);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	usleep(150 * 1000);
	assert_int_equal(rig_log_to(f->rig, c), 0);
	assert_int_equal(rig_log_to(f->rig, NULL), 0);
	assert_non_null(strstr(slurp(b, buf, sizeof(buf)), "console: rigor-sim boot ROM"));
	assert_lines_stamped(buf);
	assert_string_equal(slurp(c, buf, sizeof(buf)), "");
	assert_int_equal(rig_errmsg(f->rig)[0], 0);
}

/* Another writer (the runner) appends to the same file: lines never run together. */
static void test_console_log_other_writer(void **state)
{
	struct fx *f = *state;
	char log[128], buf[8192];
	const char *data;
	FILE *other;

	open_sim(f, false, 0);
	snprintf(log, sizeof(log), "%s/case.log", f->dir);
	assert_int_equal(rig_log_to(f->rig, log), 0);
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_DUT), 0);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	assert_true(wait_for(f->rig, "login: ", 3000));
	rig_console_consume(f->rig, rig_console_peek(f->rig, &data));
	other = fopen(log, "a");
	assert_non_null(other);
	/* as the runner does: end the console's unfinished line, then write its own */
	fputs("\n[00:00:00.000] runner: between\n", other);
	fflush(other);
	assert_int_equal(rig_console_write(f->rig, "echo hi\n", 8, 1000), 8);
	assert_true(wait_for(f->rig, "hi\r\n# ", 2000));
	fputs("\n[00:00:00.000] runner: unfinished", other);
	fflush(other);
	assert_int_equal(rig_sdmux_set(f->rig, RIG_MUX_DUT), 0);
	fclose(other);
	assert_int_equal(rig_log_to(f->rig, NULL), 0);
	slurp(log, buf, sizeof(buf));
	assert_non_null(strstr(buf, "console: rigor-sim login: \n[00:00:00.000] runner: between\n["));
	assert_non_null(strstr(buf, "] console (continued): echo hi\n"));
	assert_non_null(strstr(buf, "] console: # \n[00:00:00.000] runner: unfinished\n["));
	assert_null(strstr(buf, "\n\n"));
	assert_lines_stamped(buf);
}

static void test_console_no_card(void **state)
{
	struct fx *f = *state;

	open_sim(f, false, 0);
	rig_sdmux_set(f->rig, RIG_MUX_HOST);
	rig_power_set(f->rig, true);
	assert_true(wait_for(f->rig, "no bootable media", 3000));
}

static void test_usbboot_and_storage(void **state)
{
	struct fx *f = *state;
	char path[256], why[256];

	open_sim(f, false, 0);
	assert_int_equal(rig_usbboot(f->rig, "/nonexistent", 100), RIG_E_NOENT);
	rig_clear_error(f->rig);
	assert_int_equal(rig_usbboot(f->rig, f->dir, 100), RIG_E_NODEV);   /* DUT off */
	rig_clear_error(f->rig);
	rig_power_set(f->rig, true);
	assert_int_equal(rig_usbboot(f->rig, f->dir, 100), 0);
	assert_int_equal(rig_storage_resolve(f->rig, path, sizeof(path), why, sizeof(why)), 0);
	assert_non_null(strstr(path, "/t.card"));
	assert_int_equal(access(path, F_OK), 0);
}

/*
 * The Compute Module flash flow whose disk never shows up: the wait ends at the case
 * deadline (well before the usbboot part's timeout_ms), says so, and leaves the DUT off
 * with the strap released, though the deadline has passed by then.
 */
static void test_cm_flash_deadline(void **state)
{
	struct fx *f = *state;
	struct rig_flash_opts o;
	struct rig_flash_stats st;
	char nodisk[128];
	int64_t t0;
	int p, power;

	f->d = rig_desc_new(f->ctx, "test.lua");
	rig_desc_set_str(f->d, -1, "name", "t", 1);
	power = rig_desc_add_part(f->d, "power", NULL, "sim", 2);
	rig_desc_add_part(f->d, "button", "boot", "sim", 3);
	p = rig_desc_add_part(f->d, "usbboot", NULL, "sim", 4);
	rig_desc_set_str(f->d, p, "msd_dir", f->dir, 4);
	rig_desc_set_int(f->d, p, "timeout_ms", 20000, 4);
	snprintf(nodisk, sizeof(nodisk), "%s/no-disk", f->dir);
	p = rig_desc_add_part(f->d, "storage", NULL, "file", 5);
	rig_desc_set_str(f->d, p, "path", nodisk, 5);
	assert_int_equal(rig_open(f->ctx, f->d, &f->rig), 0);
	rig_flash_opts_init(&o);

	/* the minimum off time (sim default) outlasts the deadline: out of time, not cancelled */
	rig_ctx_set_deadline(f->ctx, rig_now_ms() + 100);
	assert_int_equal(rig_flash(f->rig, "/nonexistent.img", &o, &st), RIG_E_TIMEOUT);
	rig_ctx_set_deadline(f->ctx, 0);
	if (!strstr(rig_errmsg(f->rig), "out of time while waiting for the minimum off time"))
		fail_msg("message: %s", rig_errmsg(f->rig));
	assert_int_equal(sim_state(f, "power"), 0);
	assert_int_equal(sim_state(f, "button.boot.level"), 0);
	assert_int_equal(sim_state(f, "button.boot.presses"), 1);
	rig_clear_error(f->rig);
	rig_close(f->rig);
	f->rig = NULL;

	rig_desc_set_int(f->d, power, "min_off_ms", 0, 2);
	assert_int_equal(rig_open(f->ctx, f->d, &f->rig), 0);
	t0 = rig_now_ms();
	rig_ctx_set_deadline(f->ctx, t0 + 300);
	assert_int_equal(rig_flash(f->rig, "/nonexistent.img", &o, &st), RIG_E_TIMEOUT);
	rig_ctx_set_deadline(f->ctx, 0);
	assert_true(rig_now_ms() - t0 < 3000);
	if (!strstr(rig_errmsg(f->rig), "did not show up as a USB disk before the case deadline"))
		fail_msg("message: %s", rig_errmsg(f->rig));
	assert_int_equal(sim_state(f, "power"), 0);
	assert_int_equal(sim_state(f, "button.boot.level"), 0);
	assert_int_equal(sim_state(f, "button.boot.presses"), 2);
	assert_int_equal(sim_state(f, "usbboots"), 1);
}

/* ---- locks ---- */

static void test_lock(void **state)
{
	struct fx *f = *state;
	struct rig_lock *a = NULL, *b = NULL, *con = NULL;
	struct rig_lock_holder h[4];
	int64_t t0;

	assert_int_equal(rig_lock_holders(f->ctx, "t", h, 4), 0);
	assert_int_equal(rig_lock_acquire(f->ctx, "t", RIG_LOCK_CONTROL, "rigor test", NULL, 0, &a), 0);
	assert_int_equal(rig_lock_holders(f->ctx, "t", h, 4), 1);
	assert_string_equal(h[0].what, "control");
	assert_string_equal(h[0].command, "rigor test");
	assert_int_equal(h[0].pid, getpid());
	/* a console viewer does not wait for the controls, nor they for it */
	assert_int_equal(rig_lock_acquire(f->ctx, "t", RIG_LOCK_CONSOLE, "viewer", NULL, 0, &con), 0);
	assert_int_equal(rig_lock_holders(f->ctx, "t", h, 4), 2);
	assert_string_equal(h[1].what, "console");
	t0 = rig_now_ms();
	assert_int_equal(rig_lock_acquire(f->ctx, "t", RIG_LOCK_CONTROL, "second", NULL, 300, &b),
			 RIG_E_BUSY);
	assert_true(rig_now_ms() - t0 >= 250);
	assert_null(b);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "rig 't' is busy: control held by pid"));
	rig_lock_release(a);
	rig_ctx_clear_error(f->ctx);
	assert_int_equal(rig_lock_acquire(f->ctx, "t", RIG_LOCK_ALL, "run", NULL, 0, &b), RIG_E_BUSY);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "console held by pid"));
	rig_lock_release(con);
	rig_ctx_clear_error(f->ctx);
	assert_int_equal(rig_lock_acquire(f->ctx, "t", RIG_LOCK_ALL, "run", NULL, 0, &b), 0);
	rig_lock_release(b);
	assert_int_equal(rig_lock_holders(f->ctx, "t", h, 4), 0);
	assert_int_equal(rig_lock_acquire(f->ctx, "../x", RIG_LOCK_ALL, "bad", NULL, 0, &b), RIG_E_INVAL);
}

static void test_reservation(void **state)
{
	struct fx *f = *state;
	struct rig_lock *a = NULL;
	struct rig_lock_holder h[4];
	char tok[64] = "", tok2[64] = "";
	pid_t child;

	assert_int_equal(rig_reservation_acquire(f->ctx, "t", getpid(), "owner", 0, tok, sizeof(tok)), 0);
	assert_int_equal(strlen(tok), 32);
	assert_int_equal(rig_lock_holders(f->ctx, "t", h, 4), 1);
	assert_string_equal(h[0].what, "reservation");
	assert_string_equal(h[0].token, tok);
	assert_int_equal(h[0].pid, getpid());
	assert_int_equal(rig_lock_acquire(f->ctx, "t", RIG_LOCK_CONSOLE, "x", NULL, 0, &a), RIG_E_BUSY);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "rig 't' is reserved by pid"));
	rig_ctx_clear_error(f->ctx);
	assert_int_equal(rig_lock_acquire(f->ctx, "t", RIG_LOCK_CONTROL, "x", "nope", 0, &a), RIG_E_BUSY);
	rig_ctx_clear_error(f->ctx);
	/* another token cannot take it over; the same token renews it */
	assert_int_equal(rig_reservation_acquire(f->ctx, "t", getpid(), "o", 0, tok2, sizeof(tok2)),
			 RIG_E_BUSY);
	rig_ctx_clear_error(f->ctx);
	assert_int_equal(rig_reservation_acquire(f->ctx, "t", getpid(), "o", 0, tok, sizeof(tok)), 0);
	assert_int_equal(rig_lock_acquire(f->ctx, "t", RIG_LOCK_ALL, "x", tok, 0, &a), 0);
	rig_lock_release(a);
	assert_int_equal(rig_reservation_release(f->ctx, "t", "nope", false), RIG_E_BUSY);
	rig_ctx_clear_error(f->ctx);
	assert_int_equal(rig_reservation_release(f->ctx, "t", tok, false), 0);
	assert_int_equal(rig_reservation_release(f->ctx, "t", tok, false), RIG_E_NOENT);
	rig_ctx_clear_error(f->ctx);
	/* a token whose reservation is gone is refused at once, not waited for */
	assert_int_equal(rig_lock_acquire(f->ctx, "t", RIG_LOCK_CONTROL, "x", tok, 5000, &a), RIG_E_BUSY);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "has no reservation for token"));
	rig_ctx_clear_error(f->ctx);

	/* the owner's end ends the reservation: no stale lock */
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	tok[0] = 0;
	assert_int_equal(rig_reservation_acquire(f->ctx, "t", child, "job", 0, tok, sizeof(tok)), 0);
	assert_int_equal(rig_lock_acquire(f->ctx, "t", RIG_LOCK_CONTROL, "x", NULL, 0, &a), RIG_E_BUSY);
	rig_ctx_clear_error(f->ctx);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	assert_int_equal(rig_lock_holders(f->ctx, "t", h, 4), 0);
	assert_int_equal(rig_lock_acquire(f->ctx, "t", RIG_LOCK_CONTROL, "x", NULL, 0, &a), 0);
	rig_lock_release(a);
	assert_int_equal(rig_reservation_acquire(f->ctx, "t", child, "job", 0, tok, sizeof(tok)),
			 RIG_E_NOENT);
	rig_ctx_clear_error(f->ctx);
}

static void test_kv(void **state)
{
	struct fx *f = *state;
	char path[128];
	struct rig_kv *kv;

	snprintf(path, sizeof(path), "%s/kv", f->dir);
	kv = rig_kv_load(path);
	assert_null(rig_kv_get(kv, "a"));
	rig_kv_set(kv, "a", "1");
	rig_kv_set_int(kv, "b", -42);
	rig_kv_set(kv, "a", "2");
	assert_int_equal(rig_kv_save(kv, path), 0);
	rig_kv_free(kv);
	kv = rig_kv_load(path);
	assert_string_equal(rig_kv_get(kv, "a"), "2");
	assert_int_equal(rig_kv_get_int(kv, "b", 0), -42);
	assert_int_equal(rig_kv_get_int(kv, "c", 7), 7);
	rig_kv_free(kv);
}

/* The deadline value: forever, a poll, a bound that runs out. */
static void test_deadline(void **state)
{
	struct rig_deadline never = rig_deadline_start(-1), now = rig_deadline_start(0);
	struct rig_deadline soon = rig_deadline_start(150);
	int left = rig_deadline_left_ms(soon);

	(void)state;
	assert_int_equal(rig_deadline_left_ms(never), -1);
	assert_false(rig_deadline_expired(never));
	assert_int_equal(rig_deadline_left_ms(now), 0);
	assert_true(rig_deadline_expired(now));
	assert_true(left > 0 && left <= 150);
	assert_false(rig_deadline_expired(soon));
	usleep(200 * 1000);
	assert_true(rig_deadline_expired(soon));
	assert_int_equal(rig_deadline_left_ms(soon), 0);
}

/* rig_ctx_poll() ends at the context's deadline (a case's), like rig_ctx_sleep(). */
static void test_poll_clamped(void **state)
{
	struct fx *f = *state;
	int pfd[2];
	int64_t t0;

	assert_int_equal(pipe(pfd), 0);
	rig_ctx_set_deadline(f->ctx, rig_now_ms() + 200);
	t0 = rig_now_ms();
	/* nothing to read and no bound of its own: only the context's deadline ends it */
	assert_int_equal(rig_ctx_poll(f->ctx, pfd[0], POLLIN, -1), RIG_E_TIMEOUT);
	assert_true(rig_now_ms() - t0 >= 150);
	assert_true(rig_now_ms() - t0 < 5000);    /* generous: a loaded CI machine */
	rig_ctx_set_deadline(f->ctx, 0);
	assert_int_equal(write(pfd[1], "x", 1), 1);
	assert_int_equal(rig_ctx_poll(f->ctx, pfd[0], POLLIN, -1), 1);
	close(pfd[0]);
	close(pfd[1]);
}

/* A state file's lock held elsewhere: rig_kv_lock() gives up after its bound, or at cancel. */
static void test_kv_lock_bound(void **state)
{
	struct fx *f = *state;
	volatile sig_atomic_t cancel = 0;
	char path[128], lck[160];
	int held, fd;
	int64_t t0;

	snprintf(path, sizeof(path), "%s/kv", f->dir);
	snprintf(lck, sizeof(lck), "%s.lck", path);
	fd = rig_kv_lock(f->ctx, path, 0);
	assert_true(fd >= 0);
	rig_kv_unlock(fd);
	/* another open file description holds it (as another process would) */
	held = open(lck, O_RDWR);
	assert_true(held >= 0);
	assert_int_equal(flock(held, LOCK_EX), 0);
	t0 = rig_now_ms();
	assert_int_equal(rig_kv_lock(f->ctx, path, 200), RIG_E_BUSY);
	assert_true(rig_now_ms() - t0 >= 150);
	cancel = 1;
	rig_ctx_set_cancel(f->ctx, &cancel);
	assert_int_equal(rig_kv_lock(f->ctx, path, -1), RIG_E_INTR);
	rig_ctx_set_cancel(f->ctx, NULL);
	close(held);
	fd = rig_kv_lock(f->ctx, path, 200);
	assert_true(fd >= 0);
	rig_kv_unlock(fd);
}

/* ---- network ---- */

/* Open a rig whose only part is network = host { ... } with @cut/@restore (may be NULL). */
static void open_net(struct fx *f, const char *cut, const char *restore, int timeout_ms)
{
	int p;

	rig_close(f->rig);
	rig_desc_free(f->d);
	f->rig = NULL;
	f->d = rig_desc_new(f->ctx, "test.lua");
	rig_desc_set_str(f->d, -1, "name", "t", 1);
	p = rig_desc_add_part(f->d, "network", NULL, "host", 2);
	rig_desc_set_str(f->d, p, "address", "10.9.8.7", 2);
	rig_desc_set_str(f->d, p, "user", "admin", 2);
	rig_desc_set_int(f->d, p, "timeout_ms", timeout_ms, 2);
	if (cut) {
		rig_desc_set_str(f->d, p, "cut", cut, 2);
		rig_desc_set_str(f->d, p, "restore", restore, 2);
	}
	assert_int_equal(rig_open(f->ctx, f->d, &f->rig), 0);
}

static void test_network(void **state)
{
	struct fx *f = *state;
	char host[64], restored[160], cmd[256];
	int port = 0;
	int64_t t0;
	struct stat st;

	/* the address as given, the default port, the login from the rig file */
	open_net(f, NULL, NULL, 5000);
	assert_int_equal(rig_network_address(f->rig, host, sizeof(host), &port, -1), 0);
	assert_string_equal(host, "10.9.8.7");
	assert_int_equal(port, 22222);
	assert_string_equal(rig_network_user(f->rig), "admin");
	assert_null(rig_network_identity(f->rig));
	assert_int_equal(rig_network_address(f->rig, host, 4, &port, -1), RIG_E_INVAL);
	rig_clear_error(f->rig);
	/* no cut/restore commands: not supported, and the message says what to add */
	assert_int_equal(rig_network_uplink(f->rig, false, -1), RIG_E_NOTSUP);
	assert_non_null(strstr(rig_errmsg(f->rig), "cut = "));
	rig_clear_error(f->rig);

	/* a failing command: RIG_E_IO with its status and output */
	open_net(f, "echo no way >&2; exit 4", "sleep 30", 300);
	assert_int_equal(rig_network_uplink(f->rig, false, -1), RIG_E_IO);
	if (!strstr(rig_errmsg(f->rig), "exit status 4") || !strstr(rig_errmsg(f->rig), "no way"))
		fail_msg("message: %s", rig_errmsg(f->rig));
	rig_clear_error(f->rig);
	/* a hanging one is killed at the part's timeout_ms (300 ms; 5 s allowed for a loaded
	 * machine) */
	t0 = rig_now_ms();
	assert_int_equal(rig_network_uplink(f->rig, true, -1), RIG_E_TIMEOUT);
	assert_true(rig_now_ms() - t0 < 5000);
	rig_clear_error(f->rig);

	/* rig_safe() restores an uplink this process cut, and only then */
	snprintf(restored, sizeof(restored), "%s/restored", f->dir);
	snprintf(cmd, sizeof(cmd), "touch '%s'", restored);
	open_net(f, "true", cmd, 5000);
	assert_int_equal(rig_safe(f->rig), 0);
	assert_int_equal(stat(restored, &st), -1);
	assert_int_equal(rig_network_uplink(f->rig, false, -1), 0);
	assert_int_equal(rig_safe(f->rig), 0);
	assert_int_equal(stat(restored, &st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_registry),
		cmocka_unit_test_setup_teardown(test_desc_valid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_desc_every_mistake, setup, teardown),
		cmocka_unit_test_setup_teardown(test_desc_no_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_power_and_interlock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_power_inverted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_min_off_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_measure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_buttons, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_error_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_safe_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_boot_and_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_log_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_log_other_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_console_no_card, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usbboot_and_storage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cm_flash_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reservation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv, setup, teardown),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test_setup_teardown(test_poll_clamped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv_lock_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_network, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
