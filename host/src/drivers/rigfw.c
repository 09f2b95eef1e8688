/* SPDX-License-Identifier: MIT */
/*
 * rigfw: the rigor rig board (firmware/), spoken to through the shared protocol codec
 * (firmware/proto/rigproto.c, compiled into librig too). One link per board is shared by
 * the board's power, mux and button parts. Every request carries a sequence number and
 * waits for the reply with that number; a board that reset (a boot event, or a link that
 * dropped) is greeted again with hello before the request is retried once.
 *
 * The protocol runs on a link (link.c): "unix:PATH" (rigfw-sim, or QEMU running the
 * real firmware with a socket chardev), "tty:PATH" (a serial device or pty, raw 115200
 * 8N1) or "serial:PATH" / "serial:usb_serial=XYZ" (libserialport at 115200 8N1, the port
 * found by USB identity).
 */
#define LOG_PREFIX "rigfw"
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "rigproto.h"

#define HELLO_RETRY_MS 250

struct rigfw_conf {
	char *link;
	int index;          /* buttons: output 0..3 */
	int oc_limit_ma;    /* power: overcurrent trip, 0 = board default */
};

struct rigfw_link {
	struct rig_ctx *ctx;
	char *spec;
	struct rig_link *link;  /* NULL: not connected */
	struct rig_deadline write_end;  /* the bound of the request being encoded */
	bool greeted;
	uint8_t seq;
	struct rigproto_ctx dec;
	/* the reply being waited for */
	uint8_t want_type, want_seq;
	bool got, rebooted;
	struct rigproto_msg reply;
	struct rigproto_hello_rep hello;
	unsigned int boots;
};

static void link_drop(struct rigfw_link *l)
{
	rig_link_close(l->link);
	l->link = NULL;
	l->greeted = false;
}

static void link_destroy(void *obj)
{
	struct rigfw_link *l = obj;

	link_drop(l);
	free(l->spec);
	free(l);
}

static void on_frame(void *user, const struct rigproto_frame *f, int err)
{
	struct rigfw_link *l = user;
	struct rigproto_msg m;

	if (err < 0 || rigproto_msg_decode(f, &m) < 0) {
		rig_dbg(l->ctx, "dropped a bad frame from the board (%d)", err);
		return;
	}
	if (m.type == RIGPROTO_EVT_BOOT) {
		/* The board restarted: it lost whatever we had not yet seen acknowledged. */
		l->rebooted = true;
		l->greeted = false;
		l->boots++;
		rig_info(l->ctx, "board on %s (re)started, reset reason %u", l->spec,
			 m.u.boot.reset_reason);
		return;
	}
	if (m.type == RIGPROTO_EVT_OVERCURRENT) {
		rig_warn(l->ctx, "board on %s: overcurrent trip at %d mA (limit %u mA): DUT power off",
			 l->spec, (int)m.u.overcurrent.ma, m.u.overcurrent.limit_ma);
		return;
	}
	if (m.type == RIGPROTO_EVT_HOST_WDT) {
		rig_warn(l->ctx, "board on %s: host watchdog fired: outputs made safe", l->spec);
		return;
	}
	if (m.type == (l->want_type | RIGPROTO_REPLY) && m.seq == l->want_seq) {
		l->reply = m;
		l->got = true;
	}
}

static int link_connect(struct rig_part *p, struct rigfw_link *l, int timeout_ms)
{
	const struct rig_link_opts o = { .what = "the rig board" };
	char why[2048];
	int rc = rig_link_open(l->ctx, l->spec, &o, timeout_ms, &l->link, why, sizeof(why));

	if (rc < 0)
		return rig_part_fail(p, rc == RIG_E_INVAL ? rc : RIG_E_NODEV, "%s", why);
	if (why[0])
		rig_dbg(l->ctx, "%s", why);
	rigproto_reset(&l->dec);
	return 0;
}

static int write_all(void *user, const uint8_t *buf, size_t len)
{
	struct rigfw_link *l = user;

	return rig_link_write(l->link, buf, len, NULL, rig_deadline_left_ms(l->write_end)) < 0 ?
	       RIGPROTO_E_IO : 0;
}

/* Send one request and wait for its reply. Returns 0, or a negative error; no retry. */
static int exchange(struct rig_part *p, struct rigfw_link *l, struct rigproto_msg *req,
		    int timeout_ms)
{
	struct rigproto_out out;
	struct rig_deadline end = rig_deadline_start(timeout_ms);
	uint8_t buf[256];

	req->seq = ++l->seq;
	l->want_type = req->type;
	l->want_seq = req->seq;
	l->got = false;
	l->rebooted = false;
	l->write_end = end;
	rigproto_out_init(&out, write_all, l);
	if (rigproto_msg_encode(&out, req) < 0) {
		/* a frame cut short is garbage to the board: start again on a new link */
		link_drop(l);
		return rig_ctx_cancelled(l->ctx) ? RIG_E_INTR : RIG_E_NODEV;
	}
	while (!l->got) {
		int n;

		if (l->rebooted)
			return RIG_E_PROTO;    /* the board reset before answering */
		if (rig_deadline_expired(end))
			return RIG_E_TIMEOUT;
		n = rig_link_read(l->link, buf, sizeof(buf), rig_deadline_left_ms(end));
		if (n == RIG_E_TIMEOUT || n == RIG_E_INTR)
			return n;
		if (n < 0) {
			link_drop(l);
			return RIG_E_NODEV;
		}
		rigproto_poll(&l->dec, buf, (size_t)n);
		rigproto_clear_error(&l->dec);
	}
	return 0;
}

static int hello(struct rig_part *p, struct rigfw_link *l, int timeout_ms)
{
	struct rigproto_msg m = { .type = RIGPROTO_HELLO };
	int rc;

	/*
	 * A board that is still starting drops what arrives before its UART is enabled, and
	 * its boot banner may race our hello: hello is idempotent, so resend it every
	 * HELLO_RETRY_MS until the caller's timeout.
	 */
	struct rig_deadline end = rig_deadline_start(timeout_ms);

	do {
		int left = rig_deadline_left_ms(end);

		m.type = RIGPROTO_HELLO;
		m.u.hello_req.version = RIGPROTO_VERSION;
		rc = exchange(p, l, &m, left >= 0 && left < HELLO_RETRY_MS ? left : HELLO_RETRY_MS);
	} while ((rc == RIG_E_TIMEOUT || rc == RIG_E_PROTO) && !rig_deadline_expired(end));
	if (rc < 0)
		return rc;
	if (l->reply.status != RIGPROTO_ST_OK)
		return rig_part_fail(p, RIG_E_PROTO, "board on '%s' refused protocol version %d (%s)",
				     l->spec, RIGPROTO_VERSION, rigproto_status_name(l->reply.status));
	l->hello = l->reply.u.hello;
	l->greeted = true;
	rig_dbg(l->ctx, "board on %s: protocol %u, firmware %u.%u.%u, caps 0x%x", l->spec,
		l->hello.version, l->hello.fw_major, l->hello.fw_minor, l->hello.fw_patch,
		(unsigned)l->hello.caps);
	return 0;
}

static int status_error(struct rig_part *p, const struct rigproto_msg *rep)
{
	const char *name = rigproto_status_name(rep->status);

	switch (rep->status) {
	case RIGPROTO_ST_INTERLOCK:
		return rig_part_fail(p, RIG_E_PERM, "the rig board refused: interlock (%s)", name);
	case RIGPROTO_ST_FAULT:
		/* an overcurrent or host-watchdog trip is the rig's trouble, not the test's */
		return rig_part_fail(p, RIG_E_IO,
				     "the rig board has a latched fault (overcurrent or host watchdog); power the DUT off and clear it");
	case RIGPROTO_ST_BUSY:
		return rig_part_fail(p, RIG_E_BUSY, "the rig board is busy");
	case RIGPROTO_ST_BAD_ARG:
	case RIGPROTO_ST_BAD_LEN:
		return rig_part_fail(p, RIG_E_INVAL, "the rig board rejected an argument (%s)", name);
	case RIGPROTO_ST_UNKNOWN_CMD:
		return rig_part_fail(p, RIG_E_NOTSUP, "the rig board does not know this command");
	default:
		return rig_part_fail(p, RIG_E_IO, "the rig board failed: %s", name);
	}
}

/*
 * One request with the recovery rules: connect and greet when needed; if the board
 * reset or the link dropped, greet again and retry once (requests are idempotent:
 * set power, set mux, hold/release). A board that does not answer within the timeout
 * is an infrastructure error, and the link is dropped so the next call starts clean.
 */
static int call(struct rig_part *p, struct rigproto_msg *req, int timeout_ms)
{
	struct rigfw_link *l = p->priv ? *(struct rigfw_link **)p->priv : NULL;
	struct rigproto_msg keep = *req;
	int rc = 0;

	for (int attempt = 0; attempt < 2; attempt++) {
		*req = keep;
		if (!l->link && (rc = link_connect(p, l, timeout_ms)) < 0)
			return rc;
		if (!l->greeted && (rc = hello(p, l, timeout_ms)) < 0)
			goto retry;
		rc = exchange(p, l, req, timeout_ms);
		if (rc == 0)
			break;
retry:
		if (rc == RIG_E_TIMEOUT) {
			link_drop(l);
			return rig_part_fail(p, RIG_E_TIMEOUT,
					     "the rig board on '%s' did not answer within %d ms", l->spec,
					     timeout_ms);
		}
		if (rc != RIG_E_PROTO && rc != RIG_E_NODEV)
			return rc;
		rig_info(l->ctx, "board on %s: %s; greeting it again", l->spec,
			 rc == RIG_E_NODEV ? "link dropped" : "board reset");
		l->greeted = false;
	}
	if (rc < 0)
		return rig_part_fail(p, rc, "lost the rig board on '%s' (%s)", l->spec, rig_strerror(rc));
	*req = l->reply;
	return req->status == RIGPROTO_ST_OK ? 0 : status_error(p, req);
}

static void *link_create(struct rig_part *p, int *rc)
{
	const struct rigfw_conf *c = p->conf;
	struct rigfw_link *l = calloc(1, sizeof(*l));

	if (!l || !(l->spec = strdup(c->link))) {
		free(l);
		*rc = RIG_E_NOMEM;
		return NULL;
	}
	l->ctx = rig_part_ctx(p);
	rigproto_init(&l->dec, on_frame, l);
	return l;
}

/* Parts keep a pointer to the shared link in priv. Connecting waits for first use. */
static int rigfw_open(struct rig_part *p)
{
	const struct rigfw_conf *c = p->conf;
	int rc = 0;
	struct rigfw_link *l = rig_part_shared(p, c->link, link_create, link_destroy, &rc);

	if (!l)
		return rc;
	*(struct rigfw_link **)p->priv = l;
	if (p->be->role == RIG_ROLE_BUTTON && (c->index < 0 || c->index >= RIGPROTO_BUTTONS))
		return rig_part_fail(p, RIG_E_INVAL, "index %d out of range 0..%d", c->index,
				     RIGPROTO_BUTTONS - 1);
	if (p->be->role == RIG_ROLE_POWER && c->oc_limit_ma > 0) {
		struct rigproto_msg m = { .type = RIGPROTO_CONFIG_GET };

		rc = call(p, &m, p->common.timeout_ms);
		if (rc < 0)
			return rc;
		m.type = RIGPROTO_CONFIG_SET;
		m.u.config.oc_limit_ma = (uint16_t)c->oc_limit_ma;
		return call(p, &m, p->common.timeout_ms);
	}
	return 0;
}

/* ---- power ---- */

static int power_set(struct rig_part *p, bool on, int timeout_ms)
{
	struct rigproto_msg m = { .type = RIGPROTO_POWER_SET };

	m.u.power.on = on;
	return call(p, &m, timeout_ms);
}

static int power_get(struct rig_part *p, bool *on, int timeout_ms)
{
	struct rigproto_msg m = { .type = RIGPROTO_POWER_GET };
	int rc = call(p, &m, timeout_ms);

	if (rc == 0)
		*on = m.u.power.on;
	return rc;
}

static int power_measure(struct rig_part *p, struct rig_power_reading *r, int timeout_ms)
{
	struct rigproto_msg m = { .type = RIGPROTO_TELEMETRY };
	int rc = call(p, &m, timeout_ms);

	if (rc == 0) {
		r->mv = (int)m.u.telemetry.mv;
		r->ma = (int)m.u.telemetry.ma;
	}
	return rc;
}

/* ---- sdmux ---- */

static int mux_set(struct rig_part *p, enum rig_mux side, int timeout_ms)
{
	static const uint8_t map[] = { [RIG_MUX_OFF] = RIGPROTO_MUX_OFF,
				       [RIG_MUX_HOST] = RIGPROTO_MUX_HOST,
				       [RIG_MUX_DUT] = RIGPROTO_MUX_DUT };
	struct rigproto_msg m = { .type = RIGPROTO_MUX_SET };

	m.u.mux.side = map[side];
	return call(p, &m, timeout_ms);
}

static int mux_get(struct rig_part *p, enum rig_mux *side, int timeout_ms)
{
	struct rigproto_msg m = { .type = RIGPROTO_MUX_GET };
	int rc = call(p, &m, timeout_ms);

	if (rc < 0)
		return rc;
	switch (m.u.mux.side) {
	case RIGPROTO_MUX_HOST: *side = RIG_MUX_HOST; break;
	case RIGPROTO_MUX_DUT: *side = RIG_MUX_DUT; break;
	default: *side = RIG_MUX_OFF; break;
	}
	return 0;
}

/* ---- buttons ---- */

static int button_set(struct rig_part *p, bool asserted, int timeout_ms)
{
	const struct rigfw_conf *c = p->conf;
	struct rigproto_msg m = { .type = RIGPROTO_BUTTON };

	m.u.button.index = (uint8_t)c->index;
	m.u.button.action = asserted ? RIGPROTO_BTN_HOLD : RIGPROTO_BTN_RELEASE;
	return call(p, &m, timeout_ms);
}

#define LINK_PARAM { "link", RIG_P_STR, offsetof(struct rigfw_conf, link), true, \
		     "how to reach the board: unix:PATH, tty:PATH or serial:PATH|usb_serial=X" }

static const struct rig_param power_params[] = {
	LINK_PARAM,
	{ "oc_limit_ma", RIG_P_INT, offsetof(struct rigfw_conf, oc_limit_ma), false,
	  "overcurrent trip level set on the board at open" },
	RIG_PARAMS_END
};
static const struct rig_param mux_params[] = { LINK_PARAM, RIG_PARAMS_END };
static const struct rig_param button_params[] = {
	LINK_PARAM,
	{ "index", RIG_P_INT, offsetof(struct rigfw_conf, index), true, "board output 0..3" },
	RIG_PARAMS_END
};

static const struct rig_power_ops power_ops = {
	.set = power_set, .get = power_get, .measure = power_measure,
};
static const struct rig_sdmux_ops mux_ops = { .set = mux_set, .get = mux_get };
static const struct rig_button_ops button_ops = { .set = button_set };

const struct rig_backend rig_power_rigfw = {
	.role = RIG_ROLE_POWER,
	.name = "rigfw",
	.help = "rigor rig board: DUT power switch with voltage/current telemetry",
	.params = power_params,
	.conf_size = sizeof(struct rigfw_conf),
	.priv_size = sizeof(struct rigfw_link *),
	.open = rigfw_open,
	.ops.power = &power_ops,
};

const struct rig_backend rig_sdmux_rigfw = {
	.role = RIG_ROLE_SDMUX,
	.name = "rigfw",
	.help = "rigor rig board: SD mux select and card power, interlocked in firmware",
	.params = mux_params,
	.conf_size = sizeof(struct rigfw_conf),
	.priv_size = sizeof(struct rigfw_link *),
	.open = rigfw_open,
	.ops.sdmux = &mux_ops,
};

const struct rig_backend rig_button_rigfw = {
	.role = RIG_ROLE_BUTTON,
	.name = "rigfw",
	.help = "rigor rig board: open-drain button or boot-strap output",
	.params = button_params,
	.conf_size = sizeof(struct rigfw_conf),
	.priv_size = sizeof(struct rigfw_link *),
	.open = rigfw_open,
	.ops.button = &button_ops,
};
