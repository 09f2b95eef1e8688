// SPDX-License-Identifier: MIT
/*
 * rigproto: COBS framing, CRC-16/CCITT-FALSE and the typed message layouts. See rigproto.h
 * for the API and docs/firmware-protocol.md for the wire format.
 *
 * Encoding goes through the decoder's own range checks (encode_payload, then
 * rigproto_msg_decode on the result), so the two directions cannot disagree about what is
 * valid.
 */
#include "rigproto.h"

#include <assert.h>
#include <string.h>

#if defined(__linux__)
#include <errno.h>
_Static_assert(RIGPROTO_E_INVAL == -EINVAL && RIGPROTO_E_BADMSG == -EBADMSG &&
		       RIGPROTO_E_MSGSIZE == -EMSGSIZE && RIGPROTO_E_PROTO == -EPROTO &&
		       RIGPROTO_E_NOTSUP == -EOPNOTSUPP && RIGPROTO_E_IO == -EIO &&
		       RIGPROTO_E_PERM == -EPERM && RIGPROTO_E_BUSY == -EBUSY,
	       "rigproto error codes must be Linux errno values");
#endif

/* Body sizes on the wire (after the status byte for replies). */
enum {
	SZ_HELLO_REQ = 1,
	SZ_HELLO_REP = 10,
	SZ_BOOL = 1,
	SZ_BUTTON = 4,
	SZ_TELEMETRY = 36,
	SZ_STATUS_MIN = 18, /* + build id bytes */
	SZ_CONFIG = 8,
	SZ_EVT_BOOT = 5,
	SZ_EVT_OC = 6,
	SZ_EVT_WDT = 4,
	SZ_EVT_RXERR = 3,
};
_Static_assert(1 + SZ_STATUS_MIN + RIGPROTO_BUILD_ID_SIZE - 1 <= RIGPROTO_MAX_PAYLOAD,
	       "status reply must fit in the payload");
_Static_assert(1 + SZ_TELEMETRY <= RIGPROTO_MAX_PAYLOAD, "telemetry must fit");
_Static_assert(RIGPROTO_MAX_RAW < 254, "one COBS block per frame keeps the overhead at 1");

/* ---- CRC ----------------------------------------------------------------------------- */

uint16_t rigproto_crc16(uint16_t crc, const uint8_t *buf, size_t len)
{
	size_t i;
	int bit;

	for (i = 0; i < len; i++) {
		crc ^= (uint16_t)(buf[i] << 8);
		for (bit = 0; bit < 8; bit++)
			crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
	}
	return crc;
}

/* ---- decoder ------------------------------------------------------------------------- */

void rigproto_init(struct rigproto_ctx *ctx, rigproto_frame_cb cb, void *user)
{
	assert(ctx && cb);
	memset(ctx, 0, sizeof(*ctx));
	ctx->cb = cb;
	ctx->user = user;
}

void rigproto_reset(struct rigproto_ctx *ctx)
{
	assert(ctx);
	ctx->len = 0;
	ctx->code = 0;
	ctx->left = 0;
	ctx->skip = false;
}

int rigproto_error(const struct rigproto_ctx *ctx)
{
	assert(ctx);
	return ctx->err;
}

void rigproto_clear_error(struct rigproto_ctx *ctx)
{
	assert(ctx);
	ctx->err = 0;
}

static void rx_fail(struct rigproto_ctx *ctx, int err)
{
	if (!ctx->err)
		ctx->err = err;
	ctx->cb(ctx->user, NULL, err);
}

/* A delimiter arrived: check and deliver what was collected. Returns 1 for a good frame. */
static int rx_finish(struct rigproto_ctx *ctx)
{
	struct rigproto_frame f;
	uint16_t crc;

	if (ctx->left != 0 || ctx->len < 4) {
		ctx->framing_errors++;
		rx_fail(ctx, RIGPROTO_E_BADMSG);
		return 0;
	}
	crc = rigproto_crc16(0xFFFF, ctx->buf, ctx->len - 2u);
	if ((crc & 0xFF) != ctx->buf[ctx->len - 2] || (crc >> 8) != ctx->buf[ctx->len - 1]) {
		ctx->crc_errors++;
		rx_fail(ctx, RIGPROTO_E_BADMSG);
		return 0;
	}
	f.type = ctx->buf[0];
	f.seq = ctx->buf[1];
	f.len = (uint8_t)(ctx->len - 4);
	f.payload = ctx->buf + 2;
	ctx->frames++;
	ctx->cb(ctx->user, &f, 0);
	return 1;
}

static void rx_append(struct rigproto_ctx *ctx, uint8_t b)
{
	if (ctx->len >= sizeof(ctx->buf)) {
		ctx->overruns++;
		ctx->skip = true;
		rx_fail(ctx, RIGPROTO_E_MSGSIZE);
		return;
	}
	ctx->buf[ctx->len++] = b;
}

int rigproto_poll(struct rigproto_ctx *ctx, const uint8_t *buf, size_t len)
{
	int good = 0;
	size_t i;

	assert(ctx && (buf || !len));
	for (i = 0; i < len; i++) {
		uint8_t b = buf[i];

		if (b == 0) {
			if (!ctx->skip && (ctx->code != 0 || ctx->len != 0))
				good += rx_finish(ctx);
			rigproto_reset(ctx);
			continue;
		}
		if (ctx->skip)
			continue;
		if (ctx->left == 0) {
			/* code byte; the previous block (if any, and if < 254 data bytes) ended in a
			 * zero that COBS removed */
			if (ctx->code != 0 && ctx->code != 0xFF)
				rx_append(ctx, 0);
			ctx->code = b;
			ctx->left = (uint8_t)(b - 1);
		} else {
			rx_append(ctx, b);
			ctx->left--;
		}
	}
	return good;
}

/* ---- encoder ------------------------------------------------------------------------- */

void rigproto_out_init(struct rigproto_out *out, rigproto_write_fn write, void *user)
{
	assert(out);
	out->write = write;
	out->user = user;
	out->bytes = 0;
	out->err = 0;
}

size_t rigproto_out_bytes(const struct rigproto_out *out)
{
	assert(out);
	return out->bytes;
}

int rigproto_out_error(const struct rigproto_out *out)
{
	assert(out);
	return out->err;
}

int rigproto_frame_write(struct rigproto_out *out, uint8_t type, uint8_t seq,
			 const uint8_t *payload, size_t len)
{
	uint8_t raw[RIGPROTO_MAX_RAW];
	uint8_t enc[RIGPROTO_MAX_FRAME];
	size_t n, i = 0, o = 0;
	uint16_t crc;

	assert(out && (payload || !len));
	if (out->err)
		return out->err;
	if (len > RIGPROTO_MAX_PAYLOAD)
		return RIGPROTO_E_MSGSIZE;
	raw[0] = type;
	raw[1] = seq;
	if (len)
		memcpy(raw + 2, payload, len);
	n = len + 2;
	crc = rigproto_crc16(0xFFFF, raw, n);
	raw[n++] = (uint8_t)(crc & 0xFF);
	raw[n++] = (uint8_t)(crc >> 8);

	/* COBS: each block is a code byte (data bytes + 1) followed by the non-zero data */
	for (;;) {
		size_t run = 0;

		while (i + run < n && raw[i + run] != 0 && run < 254)
			run++;
		enc[o++] = (uint8_t)(run + 1);
		memcpy(enc + o, raw + i, run);
		o += run;
		i += run;
		if (i == n)
			break;
		if (run == 254)
			continue;
		i++; /* the zero this block stands for */
		if (i == n) {
			enc[o++] = 1;
			break;
		}
	}
	enc[o++] = 0;

	if (out->write) {
		int rc = out->write(out->user, enc, o);

		if (rc < 0) {
			out->err = rc;
			return rc;
		}
	}
	out->bytes += o;
	return (int)o;
}

struct wr {
	uint8_t *p;
	size_t n;
};

static void put8(struct wr *w, uint32_t v)
{
	w->p[w->n++] = (uint8_t)v;
}

static void put16(struct wr *w, uint32_t v)
{
	put8(w, v & 0xFF);
	put8(w, (v >> 8) & 0xFF);
}

static void put32(struct wr *w, uint32_t v)
{
	put16(w, v & 0xFFFF);
	put16(w, v >> 16);
}

/* Serialise the body of @msg; 0 or RIGPROTO_E_NOTSUP. */
static int encode_payload(const struct rigproto_msg *m, struct wr *w)
{
	const bool reply = m->type & RIGPROTO_REPLY;
	const unsigned int t = m->type & (unsigned int)~RIGPROTO_REPLY;
	size_t idlen;

	if (reply) {
		put8(w, m->status);
		if (t < RIGPROTO_HELLO || t >= RIGPROTO_EVT_BOOT)
			return RIGPROTO_E_NOTSUP;
		if (m->status != RIGPROTO_ST_OK)
			return 0; /* any request, even an unknown one, can be refused */
		switch (t) {
		case RIGPROTO_HELLO:
			put8(w, m->u.hello.version);
			put8(w, m->u.hello.fw_major);
			put8(w, m->u.hello.fw_minor);
			put8(w, m->u.hello.fw_patch);
			put32(w, m->u.hello.caps);
			put8(w, m->u.hello.max_payload);
			put8(w, m->u.hello.buttons);
			return 0;
		case RIGPROTO_POWER_GET:
			put8(w, m->u.power.on);
			return 0;
		case RIGPROTO_MUX_GET:
			put8(w, m->u.mux.side);
			return 0;
		case RIGPROTO_TELEMETRY:
			put32(w, m->u.telemetry.mv);
			put32(w, (uint32_t)m->u.telemetry.ma);
			put32(w, m->u.telemetry.mv_min);
			put32(w, m->u.telemetry.mv_max);
			put32(w, m->u.telemetry.mv_avg);
			put32(w, (uint32_t)m->u.telemetry.ma_min);
			put32(w, (uint32_t)m->u.telemetry.ma_max);
			put32(w, (uint32_t)m->u.telemetry.ma_avg);
			put32(w, m->u.telemetry.samples);
			return 0;
		case RIGPROTO_STATUS:
			put8(w, m->u.status.power);
			put8(w, m->u.status.mux);
			put8(w, m->u.status.sd_power);
			put8(w, m->u.status.buttons);
			put8(w, m->u.status.led);
			put16(w, m->u.status.faults);
			put32(w, m->u.status.uptime_ms);
			put8(w, m->u.status.reset_reason);
			put8(w, m->u.status.fw_major);
			put8(w, m->u.status.fw_minor);
			put8(w, m->u.status.fw_patch);
			put16(w, m->u.status.rx_errors);
			idlen = 0;
			while (idlen < RIGPROTO_BUILD_ID_SIZE - 1 && m->u.status.build_id[idlen])
				idlen++;
			put8(w, idlen);
			memcpy(w->p + w->n, m->u.status.build_id, idlen);
			w->n += idlen;
			return 0;
		case RIGPROTO_CONFIG_GET:
			put16(w, m->u.config.oc_limit_ma);
			put32(w, m->u.config.host_wdt_ms);
			put16(w, m->u.config.mux_settle_ms);
			return 0;
		case RIGPROTO_POWER_SET:
		case RIGPROTO_MUX_SET:
		case RIGPROTO_BUTTON:
		case RIGPROTO_CONFIG_SET:
		case RIGPROTO_FAULT_CLEAR:
		case RIGPROTO_RESET:
			return 0;
		default:
			return RIGPROTO_E_NOTSUP;
		}
	}
	switch (t) {
	case RIGPROTO_HELLO:
		put8(w, m->u.hello_req.version);
		return 0;
	case RIGPROTO_POWER_SET:
		put8(w, m->u.power.on);
		return 0;
	case RIGPROTO_MUX_SET:
		put8(w, m->u.mux.side);
		return 0;
	case RIGPROTO_BUTTON:
		put8(w, m->u.button.index);
		put8(w, m->u.button.action);
		put16(w, m->u.button.ms);
		return 0;
	case RIGPROTO_CONFIG_SET:
		put16(w, m->u.config.oc_limit_ma);
		put32(w, m->u.config.host_wdt_ms);
		put16(w, m->u.config.mux_settle_ms);
		return 0;
	case RIGPROTO_POWER_GET:
	case RIGPROTO_MUX_GET:
	case RIGPROTO_TELEMETRY:
	case RIGPROTO_STATUS:
	case RIGPROTO_CONFIG_GET:
	case RIGPROTO_FAULT_CLEAR:
	case RIGPROTO_RESET:
		return 0;
	case RIGPROTO_EVT_BOOT:
		put8(w, m->u.boot.reset_reason);
		put8(w, m->u.boot.version);
		put8(w, m->u.boot.fw_major);
		put8(w, m->u.boot.fw_minor);
		put8(w, m->u.boot.fw_patch);
		return 0;
	case RIGPROTO_EVT_OVERCURRENT:
		put32(w, (uint32_t)m->u.overcurrent.ma);
		put16(w, m->u.overcurrent.limit_ma);
		return 0;
	case RIGPROTO_EVT_HOST_WDT:
		put32(w, m->u.host_wdt.timeout_ms);
		return 0;
	case RIGPROTO_EVT_RX_ERROR:
		put8(w, m->u.rx_error.status);
		put16(w, m->u.rx_error.count);
		return 0;
	default:
		return RIGPROTO_E_NOTSUP;
	}
}

int rigproto_msg_encode(struct rigproto_out *out, const struct rigproto_msg *msg)
{
	uint8_t payload[RIGPROTO_MAX_PAYLOAD];
	struct wr w = { payload, 0 };
	struct rigproto_frame f;
	struct rigproto_msg check;
	int rc;

	assert(out && msg);
	if (out->err)
		return out->err;
	rc = encode_payload(msg, &w);
	if (rc < 0)
		return rc;
	f.type = msg->type;
	f.seq = msg->seq;
	f.len = (uint8_t)w.n;
	f.payload = payload;
	rc = rigproto_msg_decode(&f, &check);
	if (rc < 0)
		return rc;
	return rigproto_frame_write(out, msg->type, msg->seq, payload, w.n);
}

int rigproto_reply_status(struct rigproto_out *out, uint8_t req_type, uint8_t seq,
			  uint8_t status)
{
	struct rigproto_msg m;

	memset(&m, 0, sizeof(m));
	m.type = (uint8_t)(req_type | RIGPROTO_REPLY);
	m.seq = seq;
	m.status = status;
	return rigproto_msg_encode(out, &m);
}

/* ---- message decoding ---------------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t n;
};

static uint8_t get8(struct rd *r)
{
	r->n--;
	return *r->p++;
}

static uint16_t get16(struct rd *r)
{
	uint16_t v = get8(r);

	return (uint16_t)(v | (uint16_t)get8(r) << 8);
}

static uint32_t get32(struct rd *r)
{
	uint32_t v = get16(r);

	return v | (uint32_t)get16(r) << 16;
}

static int get_bool(struct rd *r, bool *v)
{
	uint8_t b = get8(r);

	if (b > 1)
		return RIGPROTO_E_INVAL;
	*v = b;
	return 0;
}

static int check_config(const struct rigproto_config *c)
{
	if (c->oc_limit_ma == 0 || c->mux_settle_ms > 10000)
		return RIGPROTO_E_INVAL;
	if (c->host_wdt_ms != 0 && (c->host_wdt_ms < 100 || c->host_wdt_ms > 3600000))
		return RIGPROTO_E_INVAL;
	return 0;
}

static int get_config(struct rd *r, struct rigproto_config *c)
{
	c->oc_limit_ma = get16(r);
	c->host_wdt_ms = get32(r);
	c->mux_settle_ms = get16(r);
	return check_config(c);
}

static int decode_reply(unsigned int t, struct rd *r, struct rigproto_msg *m)
{
	size_t idlen;

	switch (t) {
	case RIGPROTO_HELLO:
		if (r->n != SZ_HELLO_REP)
			return RIGPROTO_E_PROTO;
		m->u.hello.version = get8(r);
		m->u.hello.fw_major = get8(r);
		m->u.hello.fw_minor = get8(r);
		m->u.hello.fw_patch = get8(r);
		m->u.hello.caps = get32(r);
		m->u.hello.max_payload = get8(r);
		m->u.hello.buttons = get8(r);
		return 0;
	case RIGPROTO_POWER_GET:
		if (r->n != SZ_BOOL)
			return RIGPROTO_E_PROTO;
		return get_bool(r, &m->u.power.on);
	case RIGPROTO_MUX_GET:
		if (r->n != SZ_BOOL)
			return RIGPROTO_E_PROTO;
		m->u.mux.side = get8(r);
		return m->u.mux.side > RIGPROTO_MUX_DUT ? RIGPROTO_E_INVAL : 0;
	case RIGPROTO_TELEMETRY:
		if (r->n != SZ_TELEMETRY)
			return RIGPROTO_E_PROTO;
		m->u.telemetry.mv = get32(r);
		m->u.telemetry.ma = (int32_t)get32(r);
		m->u.telemetry.mv_min = get32(r);
		m->u.telemetry.mv_max = get32(r);
		m->u.telemetry.mv_avg = get32(r);
		m->u.telemetry.ma_min = (int32_t)get32(r);
		m->u.telemetry.ma_max = (int32_t)get32(r);
		m->u.telemetry.ma_avg = (int32_t)get32(r);
		m->u.telemetry.samples = get32(r);
		return 0;
	case RIGPROTO_STATUS:
		if (r->n < SZ_STATUS_MIN)
			return RIGPROTO_E_PROTO;
		if (get_bool(r, &m->u.status.power) < 0)
			return RIGPROTO_E_INVAL;
		m->u.status.mux = get8(r);
		if (get_bool(r, &m->u.status.sd_power) < 0)
			return RIGPROTO_E_INVAL;
		m->u.status.buttons = get8(r);
		if (get_bool(r, &m->u.status.led) < 0)
			return RIGPROTO_E_INVAL;
		m->u.status.faults = get16(r);
		m->u.status.uptime_ms = get32(r);
		m->u.status.reset_reason = get8(r);
		m->u.status.fw_major = get8(r);
		m->u.status.fw_minor = get8(r);
		m->u.status.fw_patch = get8(r);
		m->u.status.rx_errors = get16(r);
		idlen = get8(r);
		if (idlen != r->n || idlen > RIGPROTO_BUILD_ID_SIZE - 1)
			return RIGPROTO_E_PROTO;
		memcpy(m->u.status.build_id, r->p, idlen);
		m->u.status.build_id[idlen] = '\0';
		if (memchr(r->p, 0, idlen) || m->u.status.mux > RIGPROTO_MUX_DUT)
			return RIGPROTO_E_INVAL;
		r->n = 0;
		return 0;
	case RIGPROTO_CONFIG_GET:
		if (r->n != SZ_CONFIG)
			return RIGPROTO_E_PROTO;
		return get_config(r, &m->u.config);
	case RIGPROTO_POWER_SET:
	case RIGPROTO_MUX_SET:
	case RIGPROTO_BUTTON:
	case RIGPROTO_CONFIG_SET:
	case RIGPROTO_FAULT_CLEAR:
	case RIGPROTO_RESET:
		return r->n ? RIGPROTO_E_PROTO : 0;
	default:
		return RIGPROTO_E_NOTSUP;
	}
}

static int decode_other(unsigned int t, struct rd *r, struct rigproto_msg *m)
{
	switch (t) {
	case RIGPROTO_HELLO:
		if (r->n != SZ_HELLO_REQ)
			return RIGPROTO_E_PROTO;
		m->u.hello_req.version = get8(r);
		return m->u.hello_req.version ? 0 : RIGPROTO_E_INVAL;
	case RIGPROTO_POWER_SET:
		if (r->n != SZ_BOOL)
			return RIGPROTO_E_PROTO;
		return get_bool(r, &m->u.power.on);
	case RIGPROTO_MUX_SET:
		if (r->n != SZ_BOOL)
			return RIGPROTO_E_PROTO;
		m->u.mux.side = get8(r);
		return m->u.mux.side > RIGPROTO_MUX_DUT ? RIGPROTO_E_INVAL : 0;
	case RIGPROTO_BUTTON:
		if (r->n != SZ_BUTTON)
			return RIGPROTO_E_PROTO;
		m->u.button.index = get8(r);
		m->u.button.action = get8(r);
		m->u.button.ms = get16(r);
		if (m->u.button.index >= RIGPROTO_BUTTONS || m->u.button.action > RIGPROTO_BTN_PRESS)
			return RIGPROTO_E_INVAL;
		if ((m->u.button.action == RIGPROTO_BTN_PRESS) != (m->u.button.ms != 0))
			return RIGPROTO_E_INVAL;
		return 0;
	case RIGPROTO_CONFIG_SET:
		if (r->n != SZ_CONFIG)
			return RIGPROTO_E_PROTO;
		return get_config(r, &m->u.config);
	case RIGPROTO_POWER_GET:
	case RIGPROTO_MUX_GET:
	case RIGPROTO_TELEMETRY:
	case RIGPROTO_STATUS:
	case RIGPROTO_CONFIG_GET:
	case RIGPROTO_FAULT_CLEAR:
	case RIGPROTO_RESET:
		return r->n ? RIGPROTO_E_PROTO : 0;
	case RIGPROTO_EVT_BOOT:
		if (r->n != SZ_EVT_BOOT)
			return RIGPROTO_E_PROTO;
		m->u.boot.reset_reason = get8(r);
		m->u.boot.version = get8(r);
		m->u.boot.fw_major = get8(r);
		m->u.boot.fw_minor = get8(r);
		m->u.boot.fw_patch = get8(r);
		return 0;
	case RIGPROTO_EVT_OVERCURRENT:
		if (r->n != SZ_EVT_OC)
			return RIGPROTO_E_PROTO;
		m->u.overcurrent.ma = (int32_t)get32(r);
		m->u.overcurrent.limit_ma = get16(r);
		return 0;
	case RIGPROTO_EVT_HOST_WDT:
		if (r->n != SZ_EVT_WDT)
			return RIGPROTO_E_PROTO;
		m->u.host_wdt.timeout_ms = get32(r);
		return 0;
	case RIGPROTO_EVT_RX_ERROR:
		if (r->n != SZ_EVT_RXERR)
			return RIGPROTO_E_PROTO;
		m->u.rx_error.status = get8(r);
		m->u.rx_error.count = get16(r);
		return 0;
	default:
		return RIGPROTO_E_NOTSUP;
	}
}

int rigproto_msg_decode(const struct rigproto_frame *frame, struct rigproto_msg *msg)
{
	struct rd r;
	unsigned int t;

	assert(frame && msg && (frame->payload || !frame->len));
	memset(msg, 0, sizeof(*msg));
	msg->type = frame->type;
	msg->seq = frame->seq;
	r.p = frame->payload;
	r.n = frame->len;
	if (r.n > RIGPROTO_MAX_PAYLOAD)
		return RIGPROTO_E_PROTO;
	t = frame->type & (unsigned int)~RIGPROTO_REPLY;
	if (!(frame->type & RIGPROTO_REPLY))
		return decode_other(t, &r, msg);
	if (t < RIGPROTO_HELLO || t >= RIGPROTO_EVT_BOOT)
		return RIGPROTO_E_NOTSUP;
	if (r.n < 1)
		return RIGPROTO_E_PROTO;
	msg->status = get8(&r);
	if (msg->status != RIGPROTO_ST_OK)
		return r.n ? RIGPROTO_E_PROTO : 0;
	return decode_reply(t, &r, msg);
}

/* ---- names --------------------------------------------------------------------------- */

const char *rigproto_status_name(unsigned int status)
{
	static const char *const names[RIGPROTO_ST_COUNT] = {
		[RIGPROTO_ST_OK] = "ok",
		[RIGPROTO_ST_UNKNOWN_CMD] = "unknown command",
		[RIGPROTO_ST_BAD_LEN] = "bad length",
		[RIGPROTO_ST_BAD_ARG] = "bad argument",
		[RIGPROTO_ST_BUSY] = "busy",
		[RIGPROTO_ST_INTERLOCK] = "interlock",
		[RIGPROTO_ST_FAULT] = "fault latched",
		[RIGPROTO_ST_CRC] = "crc error",
		[RIGPROTO_ST_FRAMING] = "framing error",
		[RIGPROTO_ST_TOO_LONG] = "frame too long",
		[RIGPROTO_ST_VERSION] = "unsupported version",
		[RIGPROTO_ST_IO] = "i/o error",
	};

	return status < RIGPROTO_ST_COUNT ? names[status] : "?";
}

const char *rigproto_type_name(unsigned int type)
{
	switch (type & (unsigned int)~RIGPROTO_REPLY) {
	case RIGPROTO_HELLO: return "hello";
	case RIGPROTO_POWER_SET: return "power_set";
	case RIGPROTO_POWER_GET: return "power_get";
	case RIGPROTO_MUX_SET: return "mux_set";
	case RIGPROTO_MUX_GET: return "mux_get";
	case RIGPROTO_BUTTON: return "button";
	case RIGPROTO_TELEMETRY: return "telemetry";
	case RIGPROTO_STATUS: return "status";
	case RIGPROTO_CONFIG_SET: return "config_set";
	case RIGPROTO_CONFIG_GET: return "config_get";
	case RIGPROTO_FAULT_CLEAR: return "fault_clear";
	case RIGPROTO_RESET: return "reset";
	case RIGPROTO_EVT_BOOT: return "evt_boot";
	case RIGPROTO_EVT_OVERCURRENT: return "evt_overcurrent";
	case RIGPROTO_EVT_HOST_WDT: return "evt_host_wdt";
	case RIGPROTO_EVT_RX_ERROR: return "evt_rx_error";
	default: return "?";
	}
}

int rigproto_status_to_err(unsigned int status)
{
	switch (status) {
	case RIGPROTO_ST_OK: return 0;
	case RIGPROTO_ST_BUSY: return RIGPROTO_E_BUSY;
	case RIGPROTO_ST_INTERLOCK:
	case RIGPROTO_ST_FAULT: return RIGPROTO_E_PERM;
	case RIGPROTO_ST_BAD_ARG: return RIGPROTO_E_INVAL;
	case RIGPROTO_ST_UNKNOWN_CMD: return RIGPROTO_E_NOTSUP;
	case RIGPROTO_ST_BAD_LEN:
	case RIGPROTO_ST_VERSION: return RIGPROTO_E_PROTO;
	case RIGPROTO_ST_CRC:
	case RIGPROTO_ST_FRAMING:
	case RIGPROTO_ST_TOO_LONG: return RIGPROTO_E_BADMSG;
	default: return RIGPROTO_E_IO;
	}
}
