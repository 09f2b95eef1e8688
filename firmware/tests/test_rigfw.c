// SPDX-License-Identifier: MIT
/* Unit tests of the firmware core against the fake HAL: every command, interlock and fault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rigfw.h"
#include "test_hal.h"

static struct rigfw fw;

/* decoded frames the firmware sent since the last collect() */
static struct rigproto_msg got[64];
static int ngot, nbad;

static void collect_cb(void *user, const struct rigproto_frame *f, int err)
{
	(void)user;
	if (err || ngot >= 64 || rigproto_msg_decode(f, &got[ngot]) < 0) {
		nbad++;
		return;
	}
	ngot++;
}

static void collect(void)
{
	struct rigproto_ctx ctx;

	rigproto_init(&ctx, collect_cb, NULL);
	ngot = nbad = 0;
	rigproto_poll(&ctx, test_hal.tx, test_hal.tx_len);
	test_hal.tx_len = 0;
	assert_int_equal(nbad, 0);
}

static void feed(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rigfw_isr_rx(&fw, b[i]);
	rigfw_task(&fw);
}

static int write_rx(void *user, const uint8_t *buf, size_t len)
{
	(void)user;
	for (size_t i = 0; i < len; i++)
		rigfw_isr_rx(&fw, buf[i]);
	return 0;
}

static int write_buf(void *user, const uint8_t *buf, size_t len)
{
	memcpy(user, buf, len);
	return 0;
}

static uint8_t seq;

/* send a request and return the one reply (asserting there is exactly one, plus events) */
static const struct rigproto_msg *request(struct rigproto_msg *m)
{
	struct rigproto_out out;
	const struct rigproto_msg *rep = NULL;

	m->seq = ++seq;
	rigproto_out_init(&out, write_rx, NULL);
	assert_true(rigproto_msg_encode(&out, m) > 0);
	rigfw_task(&fw);
	collect();
	for (int i = 0; i < ngot; i++) {
		if (got[i].type & RIGPROTO_REPLY) {
			assert_null(rep);
			rep = &got[i];
		}
	}
	if (rep) {
		assert_int_equal(rep->type, m->type | RIGPROTO_REPLY);
		assert_int_equal(rep->seq, m->seq);
	}
	return rep;
}

static uint8_t simple(uint8_t type)
{
	struct rigproto_msg m = { .type = type };
	const struct rigproto_msg *r = request(&m);

	assert_non_null(r);
	return r->status;
}

static uint8_t power(bool on)
{
	struct rigproto_msg m = { .type = RIGPROTO_POWER_SET, .u.power.on = on };
	const struct rigproto_msg *r = request(&m);

	assert_non_null(r);
	return r->status;
}

static const struct rigproto_msg *mux_req(uint8_t side)
{
	struct rigproto_msg m = { .type = RIGPROTO_MUX_SET, .u.mux.side = side };

	return request(&m);
}

static void advance(uint32_t ms)
{
	/* step in sample-sized increments so periodic work runs like on hardware */
	while (ms) {
		uint32_t step = ms < RIGFW_SAMPLE_PERIOD_MS ? ms : RIGFW_SAMPLE_PERIOD_MS;

		test_hal.now += step;
		ms -= step;
		rigfw_task(&fw);
	}
}

/* switch the mux and wait for the deferred reply */
static uint8_t mux(uint8_t side)
{
	const struct rigproto_msg *r = mux_req(side);

	if (r)
		return r->status;
	advance(fw.cfg.mux_settle_ms);
	collect();
	for (int i = 0; i < ngot; i++)
		if (got[i].type == (RIGPROTO_MUX_SET | RIGPROTO_REPLY))
			return got[i].status;
	fail_msg("no deferred mux reply");
	return 0xFF;
}

static int find_event(uint8_t type)
{
	for (int i = 0; i < ngot; i++)
		if (got[i].type == type)
			return i;
	return -1;
}

static int setup(void **state)
{
	(void)state;
	test_hal_reset();
	rigfw_init(&fw);
	collect();
	return 0;
}

static void test_boot_safe_state(void **state)
{
	(void)state;
	test_hal_reset();
	for (int i = 0; i < HAL_OUT_COUNT; i++)
		test_hal.out[i] = true; /* whatever the port left behind */
	test_hal.reset_reason = RIGPROTO_RESET_WATCHDOG;
	rigfw_init(&fw);
	for (int i = 0; i < HAL_OUT_COUNT; i++)
		assert_false(test_hal.out[i]);
	assert_true(test_hal.wdt_started);
	assert_int_equal(test_hal.wdt_ms, RIGFW_HW_WDT_MS);
	assert_int_equal(test_hal.tx[0], 0); /* leading delimiter */
	collect();
	assert_int_equal(ngot, 1);
	assert_int_equal(got[0].type, RIGPROTO_EVT_BOOT);
	assert_int_equal(got[0].u.boot.reset_reason, RIGPROTO_RESET_WATCHDOG);
	assert_int_equal(got[0].u.boot.version, RIGPROTO_VERSION);
}

static void test_hello(void **state)
{
	struct rigproto_msg m = { .type = RIGPROTO_HELLO, .u.hello_req.version = RIGPROTO_VERSION };
	const struct rigproto_msg *r = request(&m);

	(void)state;
	assert_int_equal(r->status, RIGPROTO_ST_OK);
	assert_int_equal(r->u.hello.version, RIGPROTO_VERSION);
	assert_int_equal(r->u.hello.max_payload, RIGPROTO_MAX_PAYLOAD);
	assert_int_equal(r->u.hello.buttons, 4);
	assert_true(r->u.hello.caps & RIGPROTO_CAP_MUX);
	m.u.hello_req.version = 99;
	r = request(&m);
	assert_int_equal(r->status, RIGPROTO_ST_VERSION);
}

static void test_power(void **state)
{
	struct rigproto_msg m = { .type = RIGPROTO_POWER_GET };

	(void)state;
	assert_int_equal(power(true), RIGPROTO_ST_OK);
	assert_true(test_hal.out[HAL_OUT_DUT_POWER]);
	assert_true(request(&m)->u.power.on);
	advance(10);
	assert_true(test_hal.out[HAL_OUT_LED]);
	assert_int_equal(power(false), RIGPROTO_ST_OK);
	assert_false(test_hal.out[HAL_OUT_DUT_POWER]);
	assert_false(request(&m)->u.power.on);
}

static void test_mux_break_before_make(void **state)
{
	struct rigproto_msg g = { .type = RIGPROTO_MUX_GET };

	(void)state;
	assert_null(mux_req(RIGPROTO_MUX_DUT)); /* reply deferred */
	assert_false(test_hal.out[HAL_OUT_MUX_ENABLE]);
	advance(fw.cfg.mux_settle_ms - 1);
	collect();
	assert_int_equal(find_event(RIGPROTO_MUX_SET | RIGPROTO_REPLY), -1);
	assert_false(test_hal.out[HAL_OUT_MUX_ENABLE]);
	advance(1);
	collect();
	assert_true(find_event(RIGPROTO_MUX_SET | RIGPROTO_REPLY) >= 0);
	assert_true(test_hal.out[HAL_OUT_MUX_ENABLE]);
	assert_true(test_hal.out[HAL_OUT_SD_POWER]);
	assert_false(test_hal.out[HAL_OUT_MUX_HOST]);
	assert_int_equal(request(&g)->u.mux.side, RIGPROTO_MUX_DUT);
	/* dut -> host passes through off */
	assert_null(mux_req(RIGPROTO_MUX_HOST));
	assert_false(test_hal.out[HAL_OUT_MUX_ENABLE]);
	assert_false(test_hal.out[HAL_OUT_SD_POWER]);
	assert_int_equal(request(&g)->u.mux.side, RIGPROTO_MUX_OFF);
	advance(fw.cfg.mux_settle_ms);
	collect();
	assert_true(test_hal.out[HAL_OUT_MUX_HOST]);
	assert_true(test_hal.out[HAL_OUT_MUX_ENABLE]);
	/* off is immediate; same side is a no-op */
	assert_int_equal(mux(RIGPROTO_MUX_OFF), RIGPROTO_ST_OK);
	assert_false(test_hal.out[HAL_OUT_MUX_ENABLE]);
	assert_int_equal(mux(RIGPROTO_MUX_OFF), RIGPROTO_ST_OK);
}

static void test_interlock_mux_to_host_while_powered(void **state)
{
	unsigned int writes;

	(void)state;
	assert_int_equal(mux(RIGPROTO_MUX_DUT), RIGPROTO_ST_OK);
	assert_int_equal(power(true), RIGPROTO_ST_OK);
	writes = test_hal.writes[HAL_OUT_MUX_HOST] + test_hal.writes[HAL_OUT_MUX_ENABLE];
	assert_int_equal(mux(RIGPROTO_MUX_HOST), RIGPROTO_ST_INTERLOCK);
	/* refused without touching the mux at all */
	assert_int_equal(test_hal.writes[HAL_OUT_MUX_HOST] + test_hal.writes[HAL_OUT_MUX_ENABLE],
			 writes);
	assert_true(test_hal.out[HAL_OUT_MUX_ENABLE]);
	assert_false(test_hal.out[HAL_OUT_MUX_HOST]);
	/* also from off */
	assert_int_equal(mux(RIGPROTO_MUX_OFF), RIGPROTO_ST_OK);
	assert_int_equal(mux(RIGPROTO_MUX_HOST), RIGPROTO_ST_INTERLOCK);
	assert_false(test_hal.out[HAL_OUT_MUX_HOST]);
}

static void test_interlock_power_while_mux_host(void **state)
{
	(void)state;
	assert_int_equal(mux(RIGPROTO_MUX_HOST), RIGPROTO_ST_OK);
	assert_int_equal(power(true), RIGPROTO_ST_INTERLOCK);
	assert_false(test_hal.out[HAL_OUT_DUT_POWER]);
	assert_int_equal(mux(RIGPROTO_MUX_DUT), RIGPROTO_ST_OK);
	assert_int_equal(power(true), RIGPROTO_ST_OK);
}

static void test_busy_while_settling(void **state)
{
	(void)state;
	assert_null(mux_req(RIGPROTO_MUX_HOST));
	assert_int_equal(mux_req(RIGPROTO_MUX_DUT)->status, RIGPROTO_ST_BUSY);
	assert_int_equal(power(true), RIGPROTO_ST_BUSY);
	assert_false(test_hal.out[HAL_OUT_DUT_POWER]);
	assert_int_equal(power(false), RIGPROTO_ST_OK); /* off is always allowed */
	advance(fw.cfg.mux_settle_ms);
	assert_true(test_hal.out[HAL_OUT_MUX_HOST]);
}

static void test_buttons(void **state)
{
	struct rigproto_msg m = { .type = RIGPROTO_BUTTON };

	(void)state;
	m.u.button = (struct rigproto_button){ .index = 2, .action = RIGPROTO_BTN_PRESS, .ms = 100 };
	assert_int_equal(request(&m)->status, RIGPROTO_ST_OK);
	assert_true(test_hal.out[HAL_OUT_BUTTON2]);
	advance(99);
	assert_true(test_hal.out[HAL_OUT_BUTTON2]);
	advance(1);
	assert_false(test_hal.out[HAL_OUT_BUTTON2]);

	m.u.button = (struct rigproto_button){ .index = 0, .action = RIGPROTO_BTN_HOLD };
	assert_int_equal(request(&m)->status, RIGPROTO_ST_OK);
	advance(5000);
	assert_true(test_hal.out[HAL_OUT_BUTTON0]);
	assert_int_equal(simple(RIGPROTO_STATUS), RIGPROTO_ST_OK);
	m.u.button.action = RIGPROTO_BTN_RELEASE;
	assert_int_equal(request(&m)->status, RIGPROTO_ST_OK);
	assert_false(test_hal.out[HAL_OUT_BUTTON0]);

	/* a hold cancels a pending timed release */
	m.u.button = (struct rigproto_button){ .index = 3, .action = RIGPROTO_BTN_PRESS, .ms = 10 };
	request(&m);
	m.u.button = (struct rigproto_button){ .index = 3, .action = RIGPROTO_BTN_HOLD };
	request(&m);
	advance(50);
	assert_true(test_hal.out[HAL_OUT_BUTTON3]);
}

static void test_button_bad_args(void **state)
{
	/* raw frames, because the encoder refuses these */
	static const uint8_t bad[][4] = {
		{ 4, RIGPROTO_BTN_HOLD, 0, 0 },  /* no button 4 */
		{ 0, 3, 0, 0 },                  /* no action 3 */
		{ 0, RIGPROTO_BTN_PRESS, 0, 0 }, /* press for 0 ms */
		{ 0, RIGPROTO_BTN_HOLD, 5, 0 },  /* hold with a duration */
	};
	struct rigproto_out out;

	(void)state;
	rigproto_out_init(&out, write_rx, NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rigproto_frame_write(&out, RIGPROTO_BUTTON, 7, bad[i], 4);
		rigfw_task(&fw);
		collect();
		assert_int_equal(ngot, 1);
		assert_int_equal(got[0].status, RIGPROTO_ST_BAD_ARG);
		assert_int_equal(got[0].seq, 7);
	}
	for (int i = HAL_OUT_BUTTON0; i <= HAL_OUT_BUTTON3; i++)
		assert_false(test_hal.out[i]);
}

static void test_overcurrent_trip(void **state)
{
	unsigned int led_writes;
	int e;

	(void)state;
	assert_int_equal(mux(RIGPROTO_MUX_DUT), RIGPROTO_ST_OK);
	assert_int_equal(power(true), RIGPROTO_ST_OK);
	test_hal.ma = RIGFW_DEFAULT_OC_LIMIT_MA; /* at the limit: fine */
	advance(50);
	assert_true(test_hal.out[HAL_OUT_DUT_POWER]);
	test_hal.ma = RIGFW_DEFAULT_OC_LIMIT_MA + 10;
	advance(RIGFW_SAMPLE_PERIOD_MS);
	assert_false(test_hal.out[HAL_OUT_DUT_POWER]);
	collect();
	e = find_event(RIGPROTO_EVT_OVERCURRENT);
	assert_true(e >= 0);
	assert_int_equal(got[e].u.overcurrent.ma, RIGFW_DEFAULT_OC_LIMIT_MA + 10);
	assert_int_equal(got[e].u.overcurrent.limit_ma, RIGFW_DEFAULT_OC_LIMIT_MA);
	assert_true(test_hal.out[HAL_OUT_MUX_ENABLE]); /* only power is cut */

	/* latched: power-on refused until cleared, LED blinks */
	test_hal.ma = 0;
	assert_int_equal(power(true), RIGPROTO_ST_FAULT);
	led_writes = test_hal.writes[HAL_OUT_LED];
	advance(1000);
	assert_true(test_hal.writes[HAL_OUT_LED] >= led_writes + 6);
	assert_int_equal(simple(RIGPROTO_FAULT_CLEAR), RIGPROTO_ST_OK);
	assert_int_equal(power(true), RIGPROTO_ST_OK);
	advance(100);
	collect();
	assert_int_equal(find_event(RIGPROTO_EVT_OVERCURRENT), -1);
}

static void test_overcurrent_ignored_when_off(void **state)
{
	(void)state;
	test_hal.ma = 60000;
	advance(100);
	collect();
	assert_int_equal(find_event(RIGPROTO_EVT_OVERCURRENT), -1);
	assert_int_equal(power(true), RIGPROTO_ST_OK);
	advance(RIGFW_SAMPLE_PERIOD_MS);
	assert_false(test_hal.out[HAL_OUT_DUT_POWER]);
}

static void test_config(void **state)
{
	struct rigproto_msg m = { .type = RIGPROTO_CONFIG_SET };
	struct rigproto_msg g = { .type = RIGPROTO_CONFIG_GET };
	const struct rigproto_msg *r;
	struct rigproto_out out;
	static const uint8_t bad_wdt[8] = { 0xE8, 0x03, 50, 0, 0, 0, 10, 0 }; /* 50 ms */
	static const uint8_t bad_oc[8] = { 0, 0, 0, 0, 0, 0, 10, 0 };

	(void)state;
	r = request(&g);
	assert_int_equal(r->u.config.oc_limit_ma, RIGFW_DEFAULT_OC_LIMIT_MA);
	assert_int_equal(r->u.config.host_wdt_ms, RIGFW_DEFAULT_HOST_WDT_MS);
	assert_int_equal(r->u.config.mux_settle_ms, RIGFW_DEFAULT_MUX_SETTLE_MS);
	m.u.config = (struct rigproto_config){ 1000, 2000, 5 };
	assert_int_equal(request(&m)->status, RIGPROTO_ST_OK);
	r = request(&g);
	assert_int_equal(r->u.config.oc_limit_ma, 1000);
	assert_int_equal(r->u.config.host_wdt_ms, 2000);
	assert_int_equal(r->u.config.mux_settle_ms, 5);

	rigproto_out_init(&out, write_rx, NULL);
	rigproto_frame_write(&out, RIGPROTO_CONFIG_SET, 1, bad_wdt, 8);
	rigproto_frame_write(&out, RIGPROTO_CONFIG_SET, 2, bad_oc, 8);
	rigproto_frame_write(&out, RIGPROTO_CONFIG_SET, 3, bad_oc, 7);
	rigfw_task(&fw);
	collect();
	assert_int_equal(ngot, 3);
	assert_int_equal(got[0].status, RIGPROTO_ST_BAD_ARG);
	assert_int_equal(got[1].status, RIGPROTO_ST_BAD_ARG);
	assert_int_equal(got[2].status, RIGPROTO_ST_BAD_LEN);
	assert_int_equal(request(&g)->u.config.oc_limit_ma, 1000);
}

static void test_host_watchdog(void **state)
{
	struct rigproto_msg m = { .type = RIGPROTO_CONFIG_SET };
	int e;

	(void)state;
	m.u.config = (struct rigproto_config){ 2500, 500, 0 };
	assert_int_equal(request(&m)->status, RIGPROTO_ST_OK);
	assert_int_equal(mux(RIGPROTO_MUX_DUT), RIGPROTO_ST_OK);
	assert_int_equal(power(true), RIGPROTO_ST_OK);
	m.type = RIGPROTO_BUTTON;
	m.u.button = (struct rigproto_button){ .index = 1, .action = RIGPROTO_BTN_HOLD };
	request(&m);
	/* traffic keeps it fed */
	for (int i = 0; i < 5; i++) {
		advance(400);
		assert_int_equal(simple(RIGPROTO_STATUS), RIGPROTO_ST_OK);
	}
	assert_true(test_hal.out[HAL_OUT_DUT_POWER]);
	advance(499);
	collect();
	assert_int_equal(find_event(RIGPROTO_EVT_HOST_WDT), -1);
	advance(1);
	collect();
	e = find_event(RIGPROTO_EVT_HOST_WDT);
	assert_true(e >= 0);
	assert_int_equal(got[e].u.host_wdt.timeout_ms, 500);
	assert_false(test_hal.out[HAL_OUT_DUT_POWER]);
	assert_false(test_hal.out[HAL_OUT_MUX_ENABLE]);
	assert_false(test_hal.out[HAL_OUT_SD_POWER]);
	assert_false(test_hal.out[HAL_OUT_BUTTON1]);
	/* fires once, then needs clearing */
	advance(2000);
	collect();
	assert_int_equal(find_event(RIGPROTO_EVT_HOST_WDT), -1);
	assert_int_equal(power(true), RIGPROTO_ST_FAULT);
	assert_int_equal(simple(RIGPROTO_FAULT_CLEAR), RIGPROTO_ST_OK);
	assert_int_equal(power(true), RIGPROTO_ST_OK);
}

static void test_telemetry(void **state)
{
	struct rigproto_msg m = { .type = RIGPROTO_TELEMETRY };
	const struct rigproto_msg *r;

	(void)state;
	test_hal.mv = 5000;
	test_hal.ma = 100;
	advance(RIGFW_SAMPLE_PERIOD_MS);
	r = request(&m); /* clears the statistics */
	assert_int_equal(r->status, RIGPROTO_ST_OK);
	test_hal.mv = 4800;
	test_hal.ma = -50;
	advance(RIGFW_SAMPLE_PERIOD_MS);
	test_hal.mv = 5200;
	test_hal.ma = 250;
	advance(RIGFW_SAMPLE_PERIOD_MS);
	r = request(&m);
	assert_int_equal(r->status, RIGPROTO_ST_OK);
	assert_int_equal(r->u.telemetry.samples, 2);
	assert_int_equal(r->u.telemetry.mv, 5200);
	assert_int_equal(r->u.telemetry.ma, 250);
	assert_int_equal(r->u.telemetry.mv_min, 4800);
	assert_int_equal(r->u.telemetry.mv_max, 5200);
	assert_int_equal(r->u.telemetry.mv_avg, 5000);
	assert_int_equal(r->u.telemetry.ma_min, -50);
	assert_int_equal(r->u.telemetry.ma_max, 250);
	assert_int_equal(r->u.telemetry.ma_avg, 100);
	/* right after a read: no samples, stats = last value */
	r = request(&m);
	assert_int_equal(r->u.telemetry.samples, 0);
	assert_int_equal(r->u.telemetry.mv_avg, 5200);
}

/* The first telemetry after a power switch is sampled after it, not up to 10 ms before. */
static void test_telemetry_after_power_switch(void **state)
{
	struct rigproto_msg m = { .type = RIGPROTO_TELEMETRY };
	const struct rigproto_msg *r;

	(void)state;
	test_hal.mv = 0;
	test_hal.ma = 0;
	advance(RIGFW_SAMPLE_PERIOD_MS);
	request(&m);
	test_hal.mv = 5000; /* what the sensor sees once the switch is closed */
	test_hal.ma = 100;
	assert_int_equal(power(true), RIGPROTO_ST_OK);
	r = request(&m); /* no time passed: only a sample taken on the switch can show it */
	assert_int_equal(r->status, RIGPROTO_ST_OK);
	assert_int_equal(r->u.telemetry.mv, 5000);
	assert_int_equal(r->u.telemetry.ma, 100);
	assert_int_equal(r->u.telemetry.samples, 1);
	assert_int_equal(r->u.telemetry.mv_min, 5000); /* the statistics start at the switch */
	test_hal.mv = 0;
	test_hal.ma = 0;
	assert_int_equal(power(false), RIGPROTO_ST_OK);
	r = request(&m);
	assert_int_equal(r->u.telemetry.mv, 0);
	assert_int_equal(r->u.telemetry.ma, 0);
}

static void test_sensor_failure(void **state)
{
	struct rigproto_msg m = { .type = RIGPROTO_TELEMETRY };
	struct rigproto_msg s = { .type = RIGPROTO_STATUS };
	unsigned int xfers;

	(void)state;
	test_hal.i2c_err = -110;
	advance(RIGFW_SAMPLE_PERIOD_MS);
	assert_int_equal(request(&m)->status, RIGPROTO_ST_IO);
	assert_true(request(&s)->u.status.faults & RIGPROTO_FAULT_SENSOR);
	/* backs off instead of hammering a dead bus */
	xfers = test_hal.i2c_xfers;
	advance(RIGFW_SENSOR_RETRY_MS / 2);
	assert_int_equal(test_hal.i2c_xfers, xfers);
	test_hal.i2c_err = 0;
	advance(RIGFW_SENSOR_RETRY_MS);
	assert_int_equal(request(&m)->status, RIGPROTO_ST_OK);
	assert_false(request(&s)->u.status.faults & RIGPROTO_FAULT_SENSOR);
	/* a sensor failure is not a latched fault: power still allowed */
	assert_int_equal(power(true), RIGPROTO_ST_OK);
}

static void test_status(void **state)
{
	struct rigproto_msg m = { .type = RIGPROTO_STATUS };
	struct rigproto_msg b = { .type = RIGPROTO_BUTTON };
	const struct rigproto_msg *r;

	(void)state;
	assert_int_equal(mux(RIGPROTO_MUX_DUT), RIGPROTO_ST_OK);
	assert_int_equal(power(true), RIGPROTO_ST_OK);
	b.u.button = (struct rigproto_button){ .index = 3, .action = RIGPROTO_BTN_HOLD };
	request(&b);
	advance(20);
	r = request(&m);
	assert_int_equal(r->status, RIGPROTO_ST_OK);
	assert_true(r->u.status.power);
	assert_int_equal(r->u.status.mux, RIGPROTO_MUX_DUT);
	assert_true(r->u.status.sd_power);
	assert_int_equal(r->u.status.buttons, 0x08);
	assert_true(r->u.status.led);
	assert_int_equal(r->u.status.faults, 0);
	assert_int_equal(r->u.status.uptime_ms, test_hal.now);
	assert_int_equal(r->u.status.reset_reason, RIGPROTO_RESET_POWER_ON);
	assert_int_equal(r->u.status.fw_minor, RIGFW_FW_MINOR);
	assert_string_equal(r->u.status.build_id, RIGFW_BUILD_ID);
}

static void test_unknown_and_bad_len(void **state)
{
	struct rigproto_out out;
	static const uint8_t two[2] = { 1, 1 };

	(void)state;
	rigproto_out_init(&out, write_rx, NULL);
	rigproto_frame_write(&out, 0x3E, 9, NULL, 0);
	rigproto_frame_write(&out, RIGPROTO_POWER_SET, 10, two, 2);
	rigproto_frame_write(&out, RIGPROTO_POWER_SET, 11, two, 1); /* the good one */
	rigproto_frame_write(&out, RIGPROTO_EVT_BOOT, 12, NULL, 0); /* not a request */
	rigproto_frame_write(&out, RIGPROTO_POWER_GET | RIGPROTO_REPLY, 13, two, 1);
	rigfw_task(&fw);
	collect();
	assert_int_equal(ngot, 3);
	assert_int_equal(got[0].type, 0x3E | RIGPROTO_REPLY);
	assert_int_equal(got[0].status, RIGPROTO_ST_UNKNOWN_CMD);
	assert_int_equal(got[1].status, RIGPROTO_ST_BAD_LEN);
	assert_int_equal(got[1].seq, 10);
	assert_int_equal(got[2].status, RIGPROTO_ST_OK);
	assert_int_equal(got[2].seq, 11);
	assert_true(test_hal.out[HAL_OUT_DUT_POWER]);
}

static void test_rx_errors_and_resync(void **state)
{
	uint8_t frame[RIGPROTO_MAX_FRAME];
	struct rigproto_msg m = { .type = RIGPROTO_POWER_GET, .seq = 5 };
	struct rigproto_out out;
	size_t n;
	uint8_t junk[100];

	(void)state;
	/* capture one encoded request */
	rigproto_out_init(&out, write_buf, frame);
	n = (size_t)rigproto_msg_encode(&out, &m);
	/* corrupt one byte: CRC error event, no reply */
	frame[3] ^= 0x40;
	feed(frame, n);
	collect();
	assert_int_equal(ngot, 1);
	assert_int_equal(got[0].type, RIGPROTO_EVT_RX_ERROR);
	assert_true(got[0].u.rx_error.status == RIGPROTO_ST_CRC ||
		    got[0].u.rx_error.status == RIGPROTO_ST_FRAMING);
	frame[3] ^= 0x40;
	/* drop a byte: error, then the next intact frame is answered */
	feed(frame, 2);
	feed(frame + 3, n - 3);
	feed(frame, n);
	collect();
	assert_int_equal(ngot, 2);
	assert_int_equal(got[0].type, RIGPROTO_EVT_RX_ERROR);
	assert_int_equal(got[1].type, RIGPROTO_POWER_GET | RIGPROTO_REPLY);
	/* garbage without delimiters overflows the frame buffer: too-long, then resync */
	memset(junk, 0x55, sizeof(junk));
	feed(junk, sizeof(junk));
	feed(frame, n);
	collect();
	assert_int_equal(ngot, 1);
	assert_int_equal(got[0].u.rx_error.status, RIGPROTO_ST_TOO_LONG);
	assert_int_equal(got[0].u.rx_error.count, 3);
	/* the frame right after the junk is lost (its delimiter ends the junk); the next works */
	feed(frame, n);
	collect();
	assert_int_equal(ngot, 1);
	assert_int_equal(got[0].type, RIGPROTO_POWER_GET | RIGPROTO_REPLY);
	assert_int_equal(got[0].seq, 5);
}

static void test_hw_watchdog_kicked_by_task_only(void **state)
{
	unsigned int k = test_hal.wdt_kicks;

	(void)state;
	rigfw_task(&fw);
	assert_int_equal(test_hal.wdt_kicks, k + 1);
	for (int i = 0; i < 500; i++)
		rigfw_isr_rx(&fw, 0x11);
	assert_int_equal(test_hal.wdt_kicks, k + 1);
	assert_true(fw.q_drops >= 500 - RIGFW_RX_QUEUE_SIZE);
	rigfw_task(&fw);
	assert_int_equal(test_hal.wdt_kicks, k + 2);
}

static void test_reset_command(void **state)
{
	(void)state;
	assert_int_equal(mux(RIGPROTO_MUX_DUT), RIGPROTO_ST_OK);
	assert_int_equal(power(true), RIGPROTO_ST_OK);
	assert_int_equal(simple(RIGPROTO_RESET), RIGPROTO_ST_OK);
	assert_int_equal(test_hal.resets, 1);
	assert_false(test_hal.out[HAL_OUT_DUT_POWER]);
	assert_false(test_hal.out[HAL_OUT_MUX_ENABLE]);
}

static void test_time_wrap(void **state)
{
	struct rigproto_msg m = { .type = RIGPROTO_BUTTON };

	(void)state;
	test_hal_reset();
	test_hal.now = UINT32_MAX - 20;
	rigfw_init(&fw);
	collect();
	m.u.button = (struct rigproto_button){ .index = 0, .action = RIGPROTO_BTN_PRESS, .ms = 50 };
	request(&m);
	advance(40);
	assert_true(test_hal.out[HAL_OUT_BUTTON0]);
	advance(10);
	assert_false(test_hal.out[HAL_OUT_BUTTON0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boot_safe_state),
		cmocka_unit_test_setup(test_hello, setup),
		cmocka_unit_test_setup(test_power, setup),
		cmocka_unit_test_setup(test_mux_break_before_make, setup),
		cmocka_unit_test_setup(test_interlock_mux_to_host_while_powered, setup),
		cmocka_unit_test_setup(test_interlock_power_while_mux_host, setup),
		cmocka_unit_test_setup(test_busy_while_settling, setup),
		cmocka_unit_test_setup(test_buttons, setup),
		cmocka_unit_test_setup(test_button_bad_args, setup),
		cmocka_unit_test_setup(test_overcurrent_trip, setup),
		cmocka_unit_test_setup(test_overcurrent_ignored_when_off, setup),
		cmocka_unit_test_setup(test_config, setup),
		cmocka_unit_test_setup(test_host_watchdog, setup),
		cmocka_unit_test_setup(test_telemetry, setup),
		cmocka_unit_test_setup(test_telemetry_after_power_switch, setup),
		cmocka_unit_test_setup(test_sensor_failure, setup),
		cmocka_unit_test_setup(test_status, setup),
		cmocka_unit_test_setup(test_unknown_and_bad_len, setup),
		cmocka_unit_test_setup(test_rx_errors_and_resync, setup),
		cmocka_unit_test_setup(test_hw_watchdog_kicked_by_task_only, setup),
		cmocka_unit_test_setup(test_reset_command, setup),
		cmocka_unit_test(test_time_wrap),
	};

	return cmocka_run_group_tests_name("rigfw core", tests, NULL, NULL);
}
