// SPDX-License-Identifier: MIT
/* Unit tests of the rigproto codec: CRC, COBS framing, resync, every message layout,
 * sizing mode, sticky errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rigproto.h"

struct sink {
	uint8_t buf[4096];
	size_t len;
	int fail_after; /* fail the Nth write (1-based); 0 = never */
	int calls;
};

static int sink_write(void *user, const uint8_t *buf, size_t len)
{
	struct sink *s = user;

	s->calls++;
	if (s->fail_after && s->calls >= s->fail_after)
		return -32; /* -EPIPE */
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

struct got {
	struct rigproto_frame f[32];
	uint8_t payload[32][RIGPROTO_MAX_PAYLOAD];
	int errs[32];
	int n, nerr;
};

static void got_cb(void *user, const struct rigproto_frame *f, int err)
{
	struct got *g = user;

	if (err) {
		g->errs[g->nerr++] = err;
		return;
	}
	g->f[g->n] = *f;
	memcpy(g->payload[g->n], f->payload, f->len);
	g->f[g->n].payload = g->payload[g->n];
	g->n++;
}

static void test_crc(void **state)
{
	(void)state;
	assert_int_equal(rigproto_crc16(0xFFFF, (const uint8_t *)"123456789", 9), 0x29B1);
	assert_int_equal(rigproto_crc16(0xFFFF, NULL, 0), 0xFFFF);
}

/* The example in docs/firmware-protocol.md: power_set on, seq 7. */
static void test_known_vector(void **state)
{
	struct sink s = { 0 };
	struct rigproto_out out;
	struct rigproto_msg m = { .type = RIGPROTO_POWER_SET, .seq = 7, .u.power.on = true };
	static const uint8_t raw[] = { 0x02, 0x07, 0x01 };
	uint16_t crc = rigproto_crc16(0xFFFF, raw, 3);
	uint8_t want[8] = { 0x06, 0x02, 0x07, 0x01, 0, 0, 0x00 };

	(void)state;
	want[4] = (uint8_t)crc;
	want[5] = (uint8_t)(crc >> 8);
	assert_int_equal(crc, 0x2B4A);
	rigproto_out_init(&out, sink_write, &s);
	assert_int_equal(rigproto_msg_encode(&out, &m), 7);
	assert_memory_equal(s.buf, want, 7);

	/* power_set off has a zero byte in the payload: COBS replaces it */
	s.len = 0;
	m.u.power.on = false;
	assert_int_equal(rigproto_msg_encode(&out, &m), 7);
	assert_int_equal(s.buf[0], 0x03); /* 02 07, then the zero */
	assert_int_equal(s.buf[6], 0x00);
	for (int i = 0; i < 6; i++)
		assert_int_not_equal(s.buf[i], 0);
}

static void roundtrip(const struct rigproto_msg *m)
{
	struct sink s = { 0 };
	struct rigproto_out out, sz;
	struct rigproto_ctx ctx;
	struct got g = { 0 };
	struct rigproto_msg back;
	int n;

	rigproto_out_init(&sz, NULL, NULL);
	n = rigproto_msg_encode(&sz, m);
	assert_true(n > 0);
	assert_true(n <= RIGPROTO_MAX_FRAME);
	assert_int_equal(rigproto_out_bytes(&sz), (size_t)n);

	rigproto_out_init(&out, sink_write, &s);
	assert_int_equal(rigproto_msg_encode(&out, m), n);
	assert_int_equal(s.len, (size_t)n);
	for (int i = 0; i < n - 1; i++)
		assert_int_not_equal(s.buf[i], 0);
	assert_int_equal(s.buf[n - 1], 0);

	rigproto_init(&ctx, got_cb, &g);
	assert_int_equal(rigproto_poll(&ctx, s.buf, s.len), 1);
	assert_int_equal(g.n, 1);
	assert_int_equal(rigproto_msg_decode(&g.f[0], &back), 0);
	assert_int_equal(back.type, m->type);
	assert_int_equal(back.seq, m->seq);
	assert_int_equal(back.status, m->status);
	assert_memory_equal(&back.u, &m->u, sizeof(back.u));
}

static void test_roundtrip_all(void **state)
{
	struct rigproto_msg m;

	(void)state;
#define RT(init)                                   \
	do {                                       \
		memset(&m, 0, sizeof(m));          \
		init;                              \
		roundtrip(&m);                     \
	} while (0)
	RT((m.type = RIGPROTO_HELLO, m.seq = 1, m.u.hello_req.version = 1));
	RT((m.type = RIGPROTO_HELLO | RIGPROTO_REPLY, m.seq = 1, m.u.hello.version = 1,
	    m.u.hello.fw_major = 2, m.u.hello.fw_minor = 3, m.u.hello.fw_patch = 4,
	    m.u.hello.caps = 0xA5A50001u, m.u.hello.max_payload = 48, m.u.hello.buttons = 4));
	RT((m.type = RIGPROTO_POWER_SET, m.seq = 0, m.u.power.on = true));
	RT((m.type = RIGPROTO_POWER_SET, m.seq = 255, m.u.power.on = false));
	RT((m.type = RIGPROTO_POWER_SET | RIGPROTO_REPLY, m.seq = 3));
	RT((m.type = RIGPROTO_POWER_GET, m.seq = 3));
	RT((m.type = RIGPROTO_POWER_GET | RIGPROTO_REPLY, m.seq = 3, m.u.power.on = true));
	RT((m.type = RIGPROTO_MUX_SET, m.seq = 4, m.u.mux.side = RIGPROTO_MUX_HOST));
	RT((m.type = RIGPROTO_MUX_SET | RIGPROTO_REPLY, m.seq = 4,
	    m.status = RIGPROTO_ST_INTERLOCK));
	RT((m.type = RIGPROTO_MUX_GET | RIGPROTO_REPLY, m.seq = 4, m.u.mux.side = RIGPROTO_MUX_DUT));
	RT((m.type = RIGPROTO_BUTTON, m.seq = 5, m.u.button.index = 3,
	    m.u.button.action = RIGPROTO_BTN_PRESS, m.u.button.ms = 65535));
	RT((m.type = RIGPROTO_BUTTON, m.seq = 5, m.u.button.index = 0,
	    m.u.button.action = RIGPROTO_BTN_RELEASE));
	RT((m.type = RIGPROTO_TELEMETRY, m.seq = 6));
	RT((m.type = RIGPROTO_TELEMETRY | RIGPROTO_REPLY, m.seq = 6, m.u.telemetry.mv = 5012,
	    m.u.telemetry.ma = -3, m.u.telemetry.mv_min = 1, m.u.telemetry.mv_max = 0xFFFFFFFFu,
	    m.u.telemetry.mv_avg = 77, m.u.telemetry.ma_min = INT32_MIN,
	    m.u.telemetry.ma_max = INT32_MAX, m.u.telemetry.ma_avg = -1,
	    m.u.telemetry.samples = 1000));
	RT((m.type = RIGPROTO_TELEMETRY | RIGPROTO_REPLY, m.seq = 6, m.status = RIGPROTO_ST_IO));
	RT((m.type = RIGPROTO_STATUS | RIGPROTO_REPLY, m.seq = 8, m.u.status.power = true,
	    m.u.status.mux = RIGPROTO_MUX_DUT, m.u.status.sd_power = true, m.u.status.buttons = 9,
	    m.u.status.led = true, m.u.status.faults = 5, m.u.status.uptime_ms = 123456789,
	    m.u.status.reset_reason = RIGPROTO_RESET_WATCHDOG, m.u.status.fw_major = 1,
	    m.u.status.rx_errors = 65535, memcpy(m.u.status.build_id, "0123456789abcdef", 17)));
	RT((m.type = RIGPROTO_STATUS | RIGPROTO_REPLY, m.seq = 8));
	RT((m.type = RIGPROTO_CONFIG_SET, m.seq = 9, m.u.config.oc_limit_ma = 1,
	    m.u.config.host_wdt_ms = 3600000, m.u.config.mux_settle_ms = 10000));
	RT((m.type = RIGPROTO_CONFIG_GET | RIGPROTO_REPLY, m.seq = 9,
	    m.u.config.oc_limit_ma = 65535, m.u.config.host_wdt_ms = 0));
	RT((m.type = RIGPROTO_FAULT_CLEAR, m.seq = 10));
	RT((m.type = RIGPROTO_RESET | RIGPROTO_REPLY, m.seq = 11));
	RT((m.type = 0x3F | RIGPROTO_REPLY, m.seq = 12, m.status = RIGPROTO_ST_UNKNOWN_CMD));
	RT((m.type = RIGPROTO_EVT_BOOT, m.seq = 0, m.u.boot.reset_reason = 2, m.u.boot.version = 1,
	    m.u.boot.fw_patch = 9));
	RT((m.type = RIGPROTO_EVT_OVERCURRENT, m.seq = 1, m.u.overcurrent.ma = 4000,
	    m.u.overcurrent.limit_ma = 2500));
	RT((m.type = RIGPROTO_EVT_HOST_WDT, m.seq = 2, m.u.host_wdt.timeout_ms = 500));
	RT((m.type = RIGPROTO_EVT_RX_ERROR, m.seq = 3, m.u.rx_error.status = RIGPROTO_ST_CRC,
	    m.u.rx_error.count = 17));
#undef RT
}

static void test_encode_rejects_bad_fields(void **state)
{
	struct sink s = { 0 };
	struct rigproto_out out;
	struct rigproto_msg m;

	(void)state;
	rigproto_out_init(&out, sink_write, &s);
	memset(&m, 0, sizeof(m));
	m.type = RIGPROTO_MUX_SET;
	m.u.mux.side = 3;
	assert_int_equal(rigproto_msg_encode(&out, &m), RIGPROTO_E_INVAL);
	m.type = RIGPROTO_BUTTON;
	m.u.button.index = 4;
	assert_int_equal(rigproto_msg_encode(&out, &m), RIGPROTO_E_INVAL);
	m.type = RIGPROTO_CONFIG_SET;
	m.u.config.oc_limit_ma = 0;
	assert_int_equal(rigproto_msg_encode(&out, &m), RIGPROTO_E_INVAL);
	m.u.config.oc_limit_ma = 100;
	m.u.config.host_wdt_ms = 99;
	assert_int_equal(rigproto_msg_encode(&out, &m), RIGPROTO_E_INVAL);
	m.type = 0x30;
	assert_int_equal(rigproto_msg_encode(&out, &m), RIGPROTO_E_NOTSUP);
	m.type = 0x50;
	assert_int_equal(rigproto_msg_encode(&out, &m), RIGPROTO_E_NOTSUP);
	assert_int_equal(s.len, 0);
	/* these are not stream errors */
	assert_int_equal(rigproto_out_error(&out), 0);
	assert_int_equal(rigproto_frame_write(&out, 1, 1, s.buf, RIGPROTO_MAX_PAYLOAD + 1),
			 RIGPROTO_E_MSGSIZE);
}

static void test_decode_bad_payloads(void **state)
{
	struct rigproto_frame f;
	struct rigproto_msg m;
	uint8_t p[RIGPROTO_MAX_PAYLOAD] = { 0 };

	(void)state;
	f.payload = p;
	f.seq = 0;
	f.type = RIGPROTO_POWER_SET;
	f.len = 0;
	assert_int_equal(rigproto_msg_decode(&f, &m), RIGPROTO_E_PROTO);
	f.len = 1;
	p[0] = 2;
	assert_int_equal(rigproto_msg_decode(&f, &m), RIGPROTO_E_INVAL);
	f.type = RIGPROTO_STATUS;
	assert_int_equal(rigproto_msg_decode(&f, &m), RIGPROTO_E_PROTO);
	f.type = 0x21;
	f.len = 0;
	assert_int_equal(rigproto_msg_decode(&f, &m), RIGPROTO_E_NOTSUP);
	f.type = RIGPROTO_POWER_SET | RIGPROTO_REPLY;
	assert_int_equal(rigproto_msg_decode(&f, &m), RIGPROTO_E_PROTO); /* no status byte */
	f.len = 2;
	p[0] = RIGPROTO_ST_BUSY;
	assert_int_equal(rigproto_msg_decode(&f, &m), RIGPROTO_E_PROTO); /* error + body */
	f.len = 1;
	assert_int_equal(rigproto_msg_decode(&f, &m), 0);
	assert_int_equal(m.status, RIGPROTO_ST_BUSY);
	f.type = RIGPROTO_EVT_BOOT | RIGPROTO_REPLY;
	assert_int_equal(rigproto_msg_decode(&f, &m), RIGPROTO_E_NOTSUP);
	/* status reply whose build id length disagrees with the frame */
	f.type = RIGPROTO_STATUS | RIGPROTO_REPLY;
	memset(p, 0, sizeof(p));
	f.len = 1 + 18 + 3;
	p[18] = 4;
	assert_int_equal(rigproto_msg_decode(&f, &m), RIGPROTO_E_PROTO);
	p[18] = 3;
	p[19] = 'a';
	p[20] = 'b';
	p[21] = 'c';
	assert_int_equal(rigproto_msg_decode(&f, &m), 0);
	assert_string_equal(m.u.status.build_id, "abc");
	p[20] = 0; /* embedded NUL */
	assert_int_equal(rigproto_msg_decode(&f, &m), RIGPROTO_E_INVAL);
}

static size_t encode_to(uint8_t *buf, uint8_t type, uint8_t seq, const uint8_t *p, size_t n)
{
	struct sink s = { 0 };
	struct rigproto_out out;

	rigproto_out_init(&out, sink_write, &s);
	assert_true(rigproto_frame_write(&out, type, seq, p, n) > 0);
	memcpy(buf, s.buf, s.len);
	return s.len;
}

static void test_resync(void **state)
{
	uint8_t a[RIGPROTO_MAX_FRAME], b[RIGPROTO_MAX_FRAME], stream[512];
	static const uint8_t pa[] = { 0, 0, 1, 0, 2 };
	static const uint8_t junk[] = { 0x13, 0x37, 0xFF, 0x00, 0x00, 0x01, 0x00, 0x05, 0x05 };
	size_t na = encode_to(a, 0x11, 1, pa, sizeof(pa));
	size_t nb = encode_to(b, 0x12, 2, NULL, 0);
	struct rigproto_ctx ctx;
	struct got g = { 0 };
	size_t n = 0;

	(void)state;
	rigproto_init(&ctx, got_cb, &g);
	/* junk (whose tail swallows the first a), a, a with a dropped byte, a with a flipped
	 * bit, b */
	memcpy(stream + n, junk, sizeof(junk));
	n += sizeof(junk);
	memcpy(stream + n, a, na);
	n += na;
	memcpy(stream + n, a, na);
	n += na;
	memcpy(stream + n, a, 3);
	memcpy(stream + n + 3, a + 4, na - 4);
	n += na - 1;
	memcpy(stream + n, a, na);
	stream[n + 2] ^= 0x08;
	n += na;
	memcpy(stream + n, b, nb);
	n += nb;
	/* feed byte by byte to exercise partial frames */
	for (size_t i = 0; i < n; i++)
		rigproto_poll(&ctx, stream + i, 1);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.f[0].type, 0x11);
	assert_int_equal(g.f[0].len, sizeof(pa));
	assert_memory_equal(g.f[0].payload, pa, sizeof(pa));
	assert_int_equal(g.f[1].type, 0x12);
	assert_int_equal(g.f[1].seq, 2);
	assert_true(g.nerr >= 4);
	assert_int_equal(ctx.frames, 2);
	assert_true(ctx.crc_errors + ctx.framing_errors >= 4);
	assert_int_equal(rigproto_error(&ctx), RIGPROTO_E_BADMSG);
	rigproto_clear_error(&ctx);
	assert_int_equal(rigproto_error(&ctx), 0);
}

static void test_overrun(void **state)
{
	uint8_t junk[300], a[RIGPROTO_MAX_FRAME];
	uint8_t big[RIGPROTO_MAX_PAYLOAD], fb[RIGPROTO_MAX_FRAME];
	size_t na = encode_to(a, 0x11, 1, NULL, 0), nf;
	struct rigproto_ctx ctx;
	struct got g = { 0 };

	(void)state;
	memset(junk, 0x42, sizeof(junk));
	rigproto_init(&ctx, got_cb, &g);
	assert_int_equal(rigproto_poll(&ctx, junk, sizeof(junk)), 0);
	assert_int_equal(g.nerr, 1); /* reported once, then skipped */
	assert_int_equal(g.errs[0], RIGPROTO_E_MSGSIZE);
	assert_int_equal(rigproto_poll(&ctx, a, na), 0); /* its delimiter ends the junk */
	assert_int_equal(rigproto_poll(&ctx, a, na), 1);
	assert_int_equal(ctx.overruns, 1);
	/* first error stays */
	rigproto_poll(&ctx, (const uint8_t *)"\x01\x00", 2);
	assert_int_equal(rigproto_error(&ctx), RIGPROTO_E_MSGSIZE);
	/* a maximal frame fits exactly */
	memset(big, 0xAB, sizeof(big));
	nf = encode_to(fb, 0x11, 1, big, sizeof(big));
	assert_int_equal(nf, RIGPROTO_MAX_FRAME);
	assert_int_equal(rigproto_poll(&ctx, fb, nf), 1);
}

static void test_idle_delimiters_and_reset(void **state)
{
	uint8_t a[RIGPROTO_MAX_FRAME];
	size_t na = encode_to(a, 0x11, 1, NULL, 0);
	struct rigproto_ctx ctx;
	struct got g = { 0 };

	(void)state;
	rigproto_init(&ctx, got_cb, &g);
	assert_int_equal(rigproto_poll(&ctx, (const uint8_t *)"\0\0\0", 3), 0);
	assert_int_equal(g.nerr, 0);
	rigproto_poll(&ctx, a, 3);
	rigproto_reset(&ctx);
	assert_int_equal(rigproto_poll(&ctx, a, na), 1);
	assert_int_equal(g.nerr, 0);
	assert_int_equal(rigproto_poll(&ctx, NULL, 0), 0);
}

static void test_sticky_write_error(void **state)
{
	struct sink s = { .fail_after = 2 };
	struct rigproto_out out;
	struct rigproto_msg m = { .type = RIGPROTO_STATUS };

	(void)state;
	rigproto_out_init(&out, sink_write, &s);
	assert_true(rigproto_msg_encode(&out, &m) > 0);
	assert_int_equal(rigproto_msg_encode(&out, &m), -32);
	assert_int_equal(rigproto_out_error(&out), -32);
	s.fail_after = 0;
	assert_int_equal(rigproto_msg_encode(&out, &m), -32); /* stays failed */
	assert_int_equal(rigproto_reply_status(&out, 1, 1, 0), -32);
	assert_int_equal(s.calls, 2);
	rigproto_out_init(&out, sink_write, &s);
	assert_true(rigproto_msg_encode(&out, &m) > 0);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(rigproto_status_name(RIGPROTO_ST_INTERLOCK), "interlock");
	assert_string_equal(rigproto_status_name(200), "?");
	assert_string_equal(rigproto_type_name(RIGPROTO_MUX_SET | RIGPROTO_REPLY), "mux_set");
	assert_string_equal(rigproto_type_name(0x7F), "?");
	for (unsigned int i = 0; i < RIGPROTO_ST_COUNT; i++)
		assert_string_not_equal(rigproto_status_name(i), "?");
	assert_int_equal(rigproto_status_to_err(RIGPROTO_ST_OK), 0);
	assert_int_equal(rigproto_status_to_err(RIGPROTO_ST_INTERLOCK), RIGPROTO_E_PERM);
	assert_int_equal(rigproto_status_to_err(RIGPROTO_ST_BUSY), RIGPROTO_E_BUSY);
	assert_int_equal(rigproto_status_to_err(RIGPROTO_ST_BAD_ARG), RIGPROTO_E_INVAL);
	assert_int_equal(rigproto_status_to_err(RIGPROTO_ST_UNKNOWN_CMD), RIGPROTO_E_NOTSUP);
	assert_int_equal(rigproto_status_to_err(RIGPROTO_ST_CRC), RIGPROTO_E_BADMSG);
	assert_int_equal(rigproto_status_to_err(99), RIGPROTO_E_IO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc),
		cmocka_unit_test(test_known_vector),
		cmocka_unit_test(test_roundtrip_all),
		cmocka_unit_test(test_encode_rejects_bad_fields),
		cmocka_unit_test(test_decode_bad_payloads),
		cmocka_unit_test(test_resync),
		cmocka_unit_test(test_overrun),
		cmocka_unit_test(test_idle_delimiters_and_reset),
		cmocka_unit_test(test_sticky_write_error),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests_name("rigproto codec", tests, NULL, NULL);
}
