// SPDX-License-Identifier: MIT
/*
 * rigfw core. All hardware state changes go through a handful of helpers (set_power,
 * mux_break, mux_make, safe_state) so the interlocks live in one place.
 */
#include "rigfw.h"

#include <string.h>

#include "hal.h"

#define INA219_REG_SHUNT 0x01
#define INA219_REG_BUS 0x02

/* wrap-safe "a is at or after b" */
static bool time_reached(uint32_t now, uint32_t when)
{
	return (int32_t)(now - when) >= 0;
}

static int uart_write(void *user, const uint8_t *buf, size_t len)
{
	(void)user;
	hal_uart_write(buf, len);
	return 0;
}

static void send(struct rigfw *fw, const struct rigproto_msg *m)
{
	/* the UART write cannot fail, so the stream never turns sticky-bad */
	(void)rigproto_msg_encode(&fw->tx, m);
}

static void reply(struct rigfw *fw, uint8_t type, uint8_t seq, uint8_t status)
{
	(void)rigproto_reply_status(&fw->tx, type, seq, status);
}

static void event(struct rigfw *fw, struct rigproto_msg *m)
{
	m->seq = fw->evt_seq++;
	send(fw, m);
}

static void set_out(enum hal_out o, bool on)
{
	if (hal_gpio_get(o) != on)
		hal_gpio_set(o, on);
}

static void stats_clear(struct rigfw *fw)
{
	fw->n = 0;
	fw->mv_sum = 0;
	fw->ma_sum = 0;
}

static void set_power(struct rigfw *fw, bool on)
{
	/*
	 * A sample from before the switch describes a DUT that is no longer there: take the next
	 * one in this task pass, before the host's next request is read, and start the statistics
	 * over, so "power on" followed by a telemetry request shows the DUT powered.
	 */
	if (fw->power != on) {
		fw->next_sample_ms = fw->now;
		stats_clear(fw);
	}
	fw->power = on;
	set_out(HAL_OUT_DUT_POWER, on);
}

/* Disconnect the card from both sides and unpower it. */
static void mux_break(struct rigfw *fw)
{
	set_out(HAL_OUT_MUX_ENABLE, false);
	set_out(HAL_OUT_SD_POWER, false);
	fw->mux = RIGPROTO_MUX_OFF;
}

static void mux_make(struct rigfw *fw, uint8_t side)
{
	set_out(HAL_OUT_MUX_HOST, side == RIGPROTO_MUX_HOST);
	set_out(HAL_OUT_SD_POWER, true);
	set_out(HAL_OUT_MUX_ENABLE, true);
	fw->mux = side;
}

static void button_set(struct rigfw *fw, unsigned int i, bool held)
{
	if (held)
		fw->buttons |= (uint8_t)(1u << i);
	else
		fw->buttons &= (uint8_t)~(1u << i);
	fw->buttons_timed &= (uint8_t)~(1u << i);
	set_out((enum hal_out)(HAL_OUT_BUTTON0 + i), held);
}

/* DUT off, card disconnected, buttons released; a pending mux switch is abandoned. */
static void safe_state(struct rigfw *fw)
{
	unsigned int i;

	set_power(fw, false);
	mux_break(fw);
	set_out(HAL_OUT_MUX_HOST, false);
	fw->mux_pending = false;
	for (i = 0; i < RIGPROTO_BUTTONS; i++)
		button_set(fw, i, false);
}

static void on_frame(void *user, const struct rigproto_frame *f, int err);

void rigfw_init(struct rigfw *fw)
{
	struct rigproto_msg m;
	static const uint8_t delim = 0;

	memset(fw, 0, sizeof(*fw));
	fw->now = hal_time_ms();
	rigproto_init(&fw->rx, on_frame, fw);
	rigproto_out_init(&fw->tx, uart_write, fw);
	fw->cfg.oc_limit_ma = RIGFW_DEFAULT_OC_LIMIT_MA;
	fw->cfg.host_wdt_ms = RIGFW_DEFAULT_HOST_WDT_MS;
	fw->cfg.mux_settle_ms = RIGFW_DEFAULT_MUX_SETTLE_MS;
	/* force every output, whatever the port left there */
	hal_gpio_set(HAL_OUT_DUT_POWER, false);
	hal_gpio_set(HAL_OUT_MUX_ENABLE, false);
	hal_gpio_set(HAL_OUT_SD_POWER, false);
	hal_gpio_set(HAL_OUT_MUX_HOST, false);
	for (unsigned int i = 0; i < RIGPROTO_BUTTONS; i++)
		hal_gpio_set((enum hal_out)(HAL_OUT_BUTTON0 + i), false);
	hal_gpio_set(HAL_OUT_LED, false);
	fw->mux = RIGPROTO_MUX_OFF;
	fw->reset_reason = hal_reset_reason();
	fw->host_seen_ms = fw->now;
	fw->next_sample_ms = fw->now;
	hal_wdt_start(RIGFW_HW_WDT_MS);

	hal_uart_write(&delim, 1);
	memset(&m, 0, sizeof(m));
	m.type = RIGPROTO_EVT_BOOT;
	m.u.boot.reset_reason = fw->reset_reason;
	m.u.boot.version = RIGPROTO_VERSION;
	m.u.boot.fw_major = RIGFW_FW_MAJOR;
	m.u.boot.fw_minor = RIGFW_FW_MINOR;
	m.u.boot.fw_patch = RIGFW_FW_PATCH;
	event(fw, &m);
}

void rigfw_isr_rx(struct rigfw *fw, uint8_t byte)
{
	uint16_t head = fw->q_head;

	if ((uint16_t)(head - fw->q_tail) >= RIGFW_RX_QUEUE_SIZE) {
		fw->q_drops++;
		return;
	}
	fw->q[head & (RIGFW_RX_QUEUE_SIZE - 1)] = byte;
	fw->q_head = (uint16_t)(head + 1);
}

/* ---- request handlers ---------------------------------------------------------------- */

static uint8_t do_power_set(struct rigfw *fw, bool on)
{
	if (!on) {
		set_power(fw, false);
		return RIGPROTO_ST_OK;
	}
	if (fw->mux_pending)
		return RIGPROTO_ST_BUSY;
	if (fw->mux == RIGPROTO_MUX_HOST)
		return RIGPROTO_ST_INTERLOCK;
	if (fw->faults & RIGPROTO_FAULTS_LATCHED)
		return RIGPROTO_ST_FAULT;
	set_power(fw, true);
	return RIGPROTO_ST_OK;
}

/* Returns the status to send now, or 0xFF when the reply is deferred until settled. */
static uint8_t do_mux_set(struct rigfw *fw, uint8_t side, uint8_t seq)
{
	if (fw->mux_pending)
		return RIGPROTO_ST_BUSY;
	if (side == RIGPROTO_MUX_HOST && fw->power)
		return RIGPROTO_ST_INTERLOCK;
	if (side == fw->mux)
		return RIGPROTO_ST_OK;
	mux_break(fw);
	if (side == RIGPROTO_MUX_OFF)
		return RIGPROTO_ST_OK;
	fw->mux_pending = true;
	fw->mux_target = side;
	fw->mux_seq = seq;
	fw->mux_t0 = fw->now;
	return 0xFF;
}

static void mux_poll(struct rigfw *fw)
{
	if (!fw->mux_pending || !time_reached(fw->now, fw->mux_t0 + fw->cfg.mux_settle_ms))
		return;
	fw->mux_pending = false;
	/* power is refused while pending, so the interlock still holds here */
	mux_make(fw, fw->mux_target);
	reply(fw, RIGPROTO_MUX_SET, fw->mux_seq, RIGPROTO_ST_OK);
}

static void do_button(struct rigfw *fw, const struct rigproto_button *b)
{
	switch (b->action) {
	case RIGPROTO_BTN_RELEASE:
		button_set(fw, b->index, false);
		break;
	case RIGPROTO_BTN_HOLD:
		button_set(fw, b->index, true);
		break;
	default:
		button_set(fw, b->index, true);
		fw->buttons_timed |= (uint8_t)(1u << b->index);
		fw->button_until[b->index] = fw->now + b->ms;
		break;
	}
}

static void fill_telemetry(struct rigfw *fw, struct rigproto_telemetry *t)
{
	t->mv = fw->mv;
	t->ma = fw->ma;
	t->samples = fw->n;
	if (fw->n) {
		t->mv_min = fw->mv_min;
		t->mv_max = fw->mv_max;
		t->mv_avg = (uint32_t)(fw->mv_sum / fw->n);
		t->ma_min = fw->ma_min;
		t->ma_max = fw->ma_max;
		t->ma_avg = (int32_t)(fw->ma_sum / (int64_t)fw->n);
	} else {
		t->mv_min = t->mv_max = t->mv_avg = fw->mv;
		t->ma_min = t->ma_max = t->ma_avg = fw->ma;
	}
	stats_clear(fw);
}

static void fill_status(struct rigfw *fw, struct rigproto_status_body *s)
{
	s->power = fw->power;
	s->mux = fw->mux;
	s->sd_power = hal_gpio_get(HAL_OUT_SD_POWER);
	s->buttons = fw->buttons;
	s->led = fw->led;
	s->faults = fw->faults;
	s->uptime_ms = fw->now;
	s->reset_reason = fw->reset_reason;
	s->fw_major = RIGFW_FW_MAJOR;
	s->fw_minor = RIGFW_FW_MINOR;
	s->fw_patch = RIGFW_FW_PATCH;
	s->rx_errors = fw->rx_errors;
	memcpy(s->build_id, RIGFW_BUILD_ID, sizeof(RIGFW_BUILD_ID) < RIGPROTO_BUILD_ID_SIZE ?
					     sizeof(RIGFW_BUILD_ID) : RIGPROTO_BUILD_ID_SIZE - 1);
}

static void rx_error(struct rigfw *fw, int err)
{
	struct rigproto_msg m;

	if (fw->rx_errors != UINT16_MAX)
		fw->rx_errors++;
	memset(&m, 0, sizeof(m));
	m.type = RIGPROTO_EVT_RX_ERROR;
	if (err == RIGPROTO_E_MSGSIZE)
		m.u.rx_error.status = RIGPROTO_ST_TOO_LONG;
	else if (fw->rx.crc_errors != fw->last_crc_errors)
		m.u.rx_error.status = RIGPROTO_ST_CRC;
	else
		m.u.rx_error.status = RIGPROTO_ST_FRAMING;
	fw->last_crc_errors = fw->rx.crc_errors;
	m.u.rx_error.count = fw->rx_errors;
	event(fw, &m);
}

static void on_frame(void *user, const struct rigproto_frame *f, int err)
{
	struct rigfw *fw = user;
	struct rigproto_msg req, rep;
	uint8_t st = RIGPROTO_ST_OK;
	int rc;

	if (err) {
		rx_error(fw, err);
		return;
	}
	/* any intact frame proves the host is alive */
	fw->host_seen_ms = fw->now;
	if (f->type & RIGPROTO_REPLY || f->type >= RIGPROTO_EVT_BOOT || f->type == 0)
		return; /* not a request: nothing to answer */
	rc = rigproto_msg_decode(f, &req);
	if (rc == RIGPROTO_E_NOTSUP) {
		reply(fw, f->type, f->seq, RIGPROTO_ST_UNKNOWN_CMD);
		return;
	}
	if (rc == RIGPROTO_E_PROTO) {
		reply(fw, f->type, f->seq, RIGPROTO_ST_BAD_LEN);
		return;
	}
	if (rc < 0) {
		reply(fw, f->type, f->seq, RIGPROTO_ST_BAD_ARG);
		return;
	}

	memset(&rep, 0, sizeof(rep));
	rep.type = (uint8_t)(f->type | RIGPROTO_REPLY);
	rep.seq = f->seq;
	switch (f->type) {
	case RIGPROTO_HELLO:
		if (req.u.hello_req.version != RIGPROTO_VERSION) {
			st = RIGPROTO_ST_VERSION;
			break;
		}
		rep.u.hello.version = RIGPROTO_VERSION;
		rep.u.hello.fw_major = RIGFW_FW_MAJOR;
		rep.u.hello.fw_minor = RIGFW_FW_MINOR;
		rep.u.hello.fw_patch = RIGFW_FW_PATCH;
		rep.u.hello.caps = RIGPROTO_CAP_POWER | RIGPROTO_CAP_MUX | RIGPROTO_CAP_BUTTONS |
				   RIGPROTO_CAP_TELEMETRY | RIGPROTO_CAP_HOST_WDT |
				   RIGPROTO_CAP_SD_POWER;
		rep.u.hello.max_payload = RIGPROTO_MAX_PAYLOAD;
		rep.u.hello.buttons = RIGPROTO_BUTTONS;
		break;
	case RIGPROTO_POWER_SET:
		st = do_power_set(fw, req.u.power.on);
		break;
	case RIGPROTO_POWER_GET:
		rep.u.power.on = fw->power;
		break;
	case RIGPROTO_MUX_SET:
		st = do_mux_set(fw, req.u.mux.side, f->seq);
		if (st == 0xFF) {
			mux_poll(fw); /* settle time 0 completes at once */
			return;
		}
		break;
	case RIGPROTO_MUX_GET:
		rep.u.mux.side = fw->mux;
		break;
	case RIGPROTO_BUTTON:
		do_button(fw, &req.u.button);
		break;
	case RIGPROTO_TELEMETRY:
		if (!fw->have_sample || (fw->faults & RIGPROTO_FAULT_SENSOR))
			st = RIGPROTO_ST_IO;
		else
			fill_telemetry(fw, &rep.u.telemetry);
		break;
	case RIGPROTO_STATUS:
		fill_status(fw, &rep.u.status);
		break;
	case RIGPROTO_CONFIG_SET:
		fw->cfg = req.u.config;
		fw->host_seen_ms = fw->now;
		break;
	case RIGPROTO_CONFIG_GET:
		rep.u.config = fw->cfg;
		break;
	case RIGPROTO_FAULT_CLEAR:
		fw->faults &= (uint16_t)~RIGPROTO_FAULTS_LATCHED;
		break;
	case RIGPROTO_RESET:
		fw->reset_pending = true;
		break;
	default:
		st = RIGPROTO_ST_UNKNOWN_CMD; /* decoded but not handled: cannot happen */
		break;
	}
	if (st != RIGPROTO_ST_OK)
		reply(fw, f->type, f->seq, st);
	else
		send(fw, &rep);
}

/* ---- periodic work ------------------------------------------------------------------- */

static int ina219_read(uint8_t reg, uint16_t *v)
{
	uint8_t b[2];
	int rc = hal_i2c_xfer(RIGFW_INA219_ADDR, &reg, 1, b, 2);

	if (rc < 0)
		return rc;
	*v = (uint16_t)(b[0] << 8 | b[1]);
	return 0;
}

static void trip_overcurrent(struct rigfw *fw)
{
	struct rigproto_msg m;

	set_power(fw, false);
	fw->faults |= RIGPROTO_FAULT_OVERCURRENT;
	memset(&m, 0, sizeof(m));
	m.type = RIGPROTO_EVT_OVERCURRENT;
	m.u.overcurrent.ma = fw->ma;
	m.u.overcurrent.limit_ma = fw->cfg.oc_limit_ma;
	event(fw, &m);
}

static void sample(struct rigfw *fw)
{
	uint16_t shunt, bus;

	if (!time_reached(fw->now, fw->next_sample_ms))
		return;
	if (ina219_read(INA219_REG_SHUNT, &shunt) < 0 || ina219_read(INA219_REG_BUS, &bus) < 0) {
		fw->faults |= RIGPROTO_FAULT_SENSOR;
		fw->next_sample_ms = fw->now + RIGFW_SENSOR_RETRY_MS;
		return;
	}
	fw->faults &= (uint16_t)~RIGPROTO_FAULT_SENSOR;
	fw->next_sample_ms = fw->now + RIGFW_SAMPLE_PERIOD_MS;
	/* shunt LSB 10 uV; bus voltage in bits 15..3, LSB 4 mV */
	fw->ma = (int32_t)(int16_t)shunt * 10 / RIGFW_SHUNT_MOHM;
	fw->mv = (uint32_t)(bus >> 3) * 4;
	fw->have_sample = true;
	if (fw->n == 0 || fw->mv < fw->mv_min)
		fw->mv_min = fw->mv;
	if (fw->n == 0 || fw->mv > fw->mv_max)
		fw->mv_max = fw->mv;
	if (fw->n == 0 || fw->ma < fw->ma_min)
		fw->ma_min = fw->ma;
	if (fw->n == 0 || fw->ma > fw->ma_max)
		fw->ma_max = fw->ma;
	fw->mv_sum += fw->mv;
	fw->ma_sum += fw->ma;
	if (fw->n != UINT32_MAX)
		fw->n++;
	if (fw->power && fw->ma > (int32_t)fw->cfg.oc_limit_ma)
		trip_overcurrent(fw);
}

static void host_wdt_poll(struct rigfw *fw)
{
	struct rigproto_msg m;

	if (!fw->cfg.host_wdt_ms || (fw->faults & RIGPROTO_FAULT_HOST_WDT))
		return;
	if (!time_reached(fw->now, fw->host_seen_ms + fw->cfg.host_wdt_ms))
		return;
	safe_state(fw);
	fw->faults |= RIGPROTO_FAULT_HOST_WDT;
	memset(&m, 0, sizeof(m));
	m.type = RIGPROTO_EVT_HOST_WDT;
	m.u.host_wdt.timeout_ms = fw->cfg.host_wdt_ms;
	event(fw, &m);
}

static void buttons_poll(struct rigfw *fw)
{
	unsigned int i;

	for (i = 0; i < RIGPROTO_BUTTONS; i++)
		if ((fw->buttons_timed & (1u << i)) && time_reached(fw->now, fw->button_until[i]))
			button_set(fw, i, false);
}

static void led_poll(struct rigfw *fw)
{
	bool on = fw->power;

	if (fw->faults & RIGPROTO_FAULTS_LATCHED)
		on = (fw->now / RIGFW_LED_BLINK_MS) & 1;
	fw->led = on;
	set_out(HAL_OUT_LED, on);
}

void rigfw_task(struct rigfw *fw)
{
	uint8_t chunk[32];

	hal_wdt_kick();
	fw->now = hal_time_ms();
	for (;;) {
		uint16_t head = fw->q_head, tail = fw->q_tail;
		size_t n = 0;

		while (tail != head && n < sizeof(chunk))
			chunk[n++] = fw->q[tail++ & (RIGFW_RX_QUEUE_SIZE - 1)];
		if (!n)
			break;
		fw->q_tail = tail;
		rigproto_poll(&fw->rx, chunk, n);
		if (fw->reset_pending)
			break;
	}
	if (fw->reset_pending) {
		safe_state(fw);
		hal_reset();
		return;
	}
	mux_poll(fw);
	buttons_poll(fw);
	sample(fw);
	host_wdt_poll(fw);
	led_poll(fw);
}
