/* SPDX-License-Identifier: MIT */
/*
 * serial: the DUT console on a USB-UART adapter (or any tty), through libserialport.
 *
 * The port is named by stable identity (USB serial, VID:PID, USB port path) resolved
 * in sysfs.c, or by a device path. An adapter that disappears mid-run (unplugged, reset
 * with the DUT, a hub that glitched) does not end the run: reads time out while it is
 * gone, the identity is resolved again every RECONNECT_MS, and when the port is back a
 * marker line goes into the console stream so the gap shows in the log.
 *
 * get_fd returns an epoll fd that stays the same across reconnects: it holds the port
 * while connected and a timer while gone, so an event loop wakes to retry.
 *
 * libserialport's timeouts treat 0 as "forever"; ours treat 0 as "poll". We never pass
 * ours through: we poll() the port's fd in cancellable slices and use the non-blocking
 * calls.
 */
#define LOG_PREFIX "serial"
#include <assert.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <libserialport.h>

#include "../internal.h"

#define RECONNECT_MS 200

struct serial_conf {
	struct rig_usb_match usb;
	char *device;
	int interface;
	int baud, bits, stopbits;
	char *parity, *flow;
};

struct serial_settings {
	int baud, bits, stopbits;
	enum sp_parity parity;
	enum sp_flowcontrol flow;
};

struct serial_priv {
	struct rig_usb_match match;    /* identity, when not a device path */
	bool if_default;               /* interface not given: prefer 0 among several */
	struct serial_settings set;
	bool opened;                   /* open ran: the fds below are ours */
	struct sp_port *port;          /* NULL while gone */
	int fd;                        /* the port's fd, -1 while gone */
	int epfd, tfd;                 /* get_fd: stable across reconnects */
	char dev[PATH_MAX];            /* what we opened */
	int64_t lost_mono, lost_wall, next_try;
	char marker[160];              /* injected into the stream after a reconnect */
	size_t marker_len, marker_off;
};

/* libserialport result to ours; the OS message is valid only after SP_ERR_FAIL. */
static int sp_fail(struct rig_part *p, enum sp_return r, const char *what, const char *dev)
{
	char *msg;
	int code;

	switch (r) {
	case SP_ERR_ARG:
		return rig_part_fail(p, RIG_E_INVAL, "%s '%s': invalid argument", what, dev);
	case SP_ERR_MEM:
		return rig_part_fail(p, RIG_E_NOMEM, "%s '%s': out of memory", what, dev);
	case SP_ERR_SUPP:
		return rig_part_fail(p, RIG_E_NOTSUP, "%s '%s': not supported by the port", what, dev);
	case SP_ERR_FAIL:
		code = errno == ENOENT || errno == ENODEV || errno == ENXIO ? RIG_E_NODEV : RIG_E_IO;
		msg = sp_last_error_message();
		rig_part_fail(p, code, "%s '%s': %s", what, dev, msg ? msg : "failed");
		sp_free_error_message(msg);
		return code;
	default:
		return RIG_E_IO;
	}
}

/* Parse the line settings once, at open. */
static int parse_settings(struct rig_part *p, const struct serial_conf *c, struct serial_settings *s)
{
	static const char *const parities[] = { "none", "odd", "even", "mark", "space" };
	static const enum sp_parity parity_v[] = { SP_PARITY_NONE, SP_PARITY_ODD, SP_PARITY_EVEN,
						   SP_PARITY_MARK, SP_PARITY_SPACE };
	static const char *const flows[] = { "none", "xonxoff", "rtscts", "dtrdsr" };
	static const enum sp_flowcontrol flow_v[] = { SP_FLOWCONTROL_NONE, SP_FLOWCONTROL_XONXOFF,
						      SP_FLOWCONTROL_RTSCTS, SP_FLOWCONTROL_DTRDSR };
	size_t i;

	s->baud = c->baud ? c->baud : 115200;
	s->bits = c->bits ? c->bits : 8;
	s->stopbits = c->stopbits ? c->stopbits : 1;
	if (s->baud < 0 || s->bits < 5 || s->bits > 8 || s->stopbits < 1 || s->stopbits > 2)
		return rig_part_fail(p, RIG_E_INVAL,
				     "bad line settings: baud %d, bits %d (5..8), stopbits %d (1 or 2)",
				     s->baud, s->bits, s->stopbits);
	for (i = 0; i < RIG_ARRAY_SIZE(parities) && c->parity && strcmp(c->parity, parities[i]); i++)
		;
	if (i == RIG_ARRAY_SIZE(parities))
		return rig_part_fail(p, RIG_E_INVAL,
				     "parity '%s': expected none, odd, even, mark or space", c->parity);
	s->parity = c->parity ? parity_v[i] : SP_PARITY_NONE;
	for (i = 0; i < RIG_ARRAY_SIZE(flows) && c->flow && strcmp(c->flow, flows[i]); i++)
		;
	if (i == RIG_ARRAY_SIZE(flows))
		return rig_part_fail(p, RIG_E_INVAL,
				     "flow '%s': expected none, xonxoff, rtscts or dtrdsr", c->flow);
	s->flow = c->flow ? flow_v[i] : SP_FLOWCONTROL_NONE;
	return 0;
}

/*
 * Where the port is now: the device path's target, or the node the USB identity
 * resolves to. @quiet: do not record errors (reconnect attempts).
 */
static int resolve(struct rig_part *p, const struct serial_conf *c, struct serial_priv *s,
		   char *dev, size_t len, bool quiet)
{
	struct rig_usb_id id;
	char why[2048], real[PATH_MAX];
	int rc;

	if (c->device) {
		if (!realpath(c->device, real))
			return quiet ? RIG_E_NODEV :
			       rig_part_fail(p, RIG_E_NODEV, "no serial port at '%s': %s", c->device,
					     strerror(errno));
		snprintf(dev, len, "%s", real);
		return 0;
	}
	rc = rig_sysfs_find(RIG_DEV_TTY, &s->match, &id, why, sizeof(why));
	if (rc == RIG_E_INVAL && s->if_default) {
		/* Several tty interfaces on one adapter (FT2232...): interface 0 by default. */
		struct rig_usb_match m = s->match;
		char why0[2048];

		m.interface = 0;
		if (rig_sysfs_find(RIG_DEV_TTY, &m, &id, why0, sizeof(why0)) == 0) {
			rc = 0;
			snprintf(why, sizeof(why), "%s", why0);
		}
	}
	if (rc < 0)
		return quiet ? rc : rig_part_fail(p, rc, "%s", why);
	if (!quiet)
		rig_dbg(rig_part_ctx(p), "%s", why);
	/* libserialport wants the node itself, under /dev, not a link to it */
	if (!realpath(id.dev, real))
		return quiet ? RIG_E_NODEV :
		       rig_part_fail(p, RIG_E_NODEV, "%s, but %s: %s", why, id.dev, strerror(errno));
	snprintf(dev, len, "%s", real);
	return 0;
}

/* Open @dev and apply the line settings. Returns the fd or a negative error. */
static int port_open(struct rig_part *p, const char *dev, const struct serial_settings *set,
		     struct sp_port **out, bool quiet)
{
	struct sp_port *port = NULL;
	enum sp_return r;
	const char *what = "cannot open serial port";
	bool is_open = false;
	int fd;

	r = sp_get_port_by_name(dev, &port);
	if (r == SP_OK) {
		r = sp_open(port, SP_MODE_READ_WRITE);
		is_open = r == SP_OK;
		if (is_open) {
			what = "cannot configure serial port";
			if ((r = sp_set_baudrate(port, set->baud)) == SP_OK &&
			    (r = sp_set_bits(port, set->bits)) == SP_OK &&
			    (r = sp_set_parity(port, set->parity)) == SP_OK &&
			    (r = sp_set_stopbits(port, set->stopbits)) == SP_OK)
				r = sp_set_flowcontrol(port, set->flow);
		}
	}
	if (r == SP_ERR_ARG && !port && !quiet) {
		/* What sp_get_port_by_name() says when /sys/class/tty has no such entry. */
		return rig_part_fail(p, RIG_E_NODEV,
				     "cannot open serial port '%s': not a tty listed in /sys/class/tty",
				     dev);
	}
	if (r != SP_OK) {
		/* the message first: closing may overwrite the OS error */
		int rc = quiet ? RIG_E_NODEV : sp_fail(p, r, what, dev);

		if (is_open)
			sp_close(port);
		sp_free_port(port);
		return rc;
	}
	sp_get_port_handle(port, &fd);
	*out = port;
	return fd;
}

static void port_close(struct sp_port *port)
{
	if (port) {
		sp_close(port);
		sp_free_port(port);
	}
}

/* ---- the stable fd ---- */

static void timer_arm(struct serial_priv *s, int ms)
{
	struct itimerspec its = { 0 };

	if (ms >= 0) {
		its.it_value.tv_sec = ms / 1000;
		its.it_value.tv_nsec = (long)(ms % 1000) * 1000000 + 1;
		its.it_interval.tv_nsec = ms > 0 ? (long)RECONNECT_MS * 1000000 : 0;
	}
	timerfd_settime(s->tfd, 0, &its, NULL);
}

static void timer_drain(struct serial_priv *s)
{
	uint64_t n;

	while (read(s->tfd, &n, sizeof(n)) > 0)
		;
}

/* ---- losing and finding the port ---- */

static void lost(struct rig_part *p, struct serial_priv *s, const char *why)
{
	if (!s->port)
		return;
	rig_warn(rig_part_ctx(p), "%s: console port '%s' lost (%s); reconnecting every %d ms",
		 p->label, s->dev, why, RECONNECT_MS);
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	port_close(s->port);
	s->port = NULL;
	s->fd = -1;
	s->lost_mono = rig_now_ms();
	s->lost_wall = rig_wall_ms();
	s->next_try = s->lost_mono + RECONNECT_MS;
	timer_arm(s, RECONNECT_MS);
}

/* One reconnect attempt when due. Returns true when the port is back. */
static bool try_reconnect(struct rig_part *p, struct serial_priv *s)
{
	const struct serial_conf *c = p->conf;
	struct epoll_event ev = { .events = EPOLLIN };
	char dev[PATH_MAX], hms[32];
	struct tm tm;
	time_t t;
	int fd;
	int64_t now = rig_now_ms();

	if (now < s->next_try)
		return false;
	s->next_try = now + RECONNECT_MS;
	if (resolve(p, c, s, dev, sizeof(dev), true) < 0)
		return false;
	fd = port_open(p, dev, &s->set, &s->port, true);
	if (fd < 0)
		return false;
	snprintf(s->dev, sizeof(s->dev), "%s", dev);
	s->fd = fd;
	ev.data.fd = fd;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
	timer_arm(s, -1);
	timer_drain(s);
	t = (time_t)(s->lost_wall / 1000);
	localtime_r(&t, &tm);
	strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
	s->marker_len = (size_t)snprintf(s->marker, sizeof(s->marker),
					 "\r\n[rigor: console lost at %s.%03d, reconnected after %lld ms]\r\n",
					 hms, (int)(s->lost_wall % 1000), (long long)(now - s->lost_mono));
	s->marker_off = 0;
	rig_info(rig_part_ctx(p), "%s: console port back as '%s' after %lld ms", p->label, dev,
		 (long long)(now - s->lost_mono));
	return true;
}

/*
 * Wait for the port to come back, until @end.
 * Returns 0 when it is connected, RIG_E_TIMEOUT, or RIG_E_INTR.
 */
static int wait_back(struct rig_part *p, struct serial_priv *s, struct rig_deadline end)
{
	for (;;) {
		int64_t left;
		int rc;

		timer_drain(s);     /* get_fd turns readable again at the next attempt */
		if (s->port || try_reconnect(p, s))
			return 0;
		if (rig_deadline_expired(end))
			return RIG_E_TIMEOUT;
		left = rig_deadline_left_ms(end);
		if (left < 0 || left > s->next_try - rig_now_ms())
			left = s->next_try - rig_now_ms();
		rc = rig_ctx_sleep(rig_part_ctx(p), left > 0 ? (int)left : 0);
		if (rc < 0)
			return rc;
	}
}

/* ---- ops ---- */

static int serial_open(struct rig_part *p)
{
	const struct serial_conf *c = p->conf;
	struct serial_priv *s = p->priv;
	struct epoll_event ev = { .events = EPOLLIN };
	int rc, fd;

	s->fd = s->epfd = s->tfd = -1;
	s->opened = true;
	s->match = c->usb;
	if (c->interface < 0)
		return rig_part_fail(p, RIG_E_INVAL, "interface %d: must be 0 or more", c->interface);
	s->if_default = c->interface == 0;
	s->match.interface = c->interface > 0 ? c->interface : -1;
	if (rig_usb_match_empty(&c->usb) && !c->device)
		return rig_part_fail(p, RIG_E_INVAL,
				     "no port given: set usb_serial, vid_pid, usb_path, udev or device");
	if (c->device && !rig_usb_match_empty(&c->usb))
		return rig_part_fail(p, RIG_E_INVAL,
				     "give either device or a USB identity (usb_serial, vid_pid, usb_path, udev), not both");
	rc = parse_settings(p, c, &s->set);
	if (rc < 0)
		return rc;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->epfd < 0 || s->tfd < 0)
		return rig_part_fail(p, RIG_E_IO, "epoll/timerfd: %s", strerror(errno));
	ev.data.fd = s->tfd;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->tfd, &ev);
	rc = resolve(p, c, s, s->dev, sizeof(s->dev), false);
	if (rc < 0)
		return rc;
	fd = port_open(p, s->dev, &s->set, &s->port, false);
	if (fd < 0)
		return fd;
	s->fd = fd;
	ev.data.fd = fd;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
	rig_dbg(rig_part_ctx(p), "%s: '%s' open at %d %d%c%d", p->label, s->dev, s->set.baud,
		s->set.bits, "NOEMS"[s->set.parity < 0 ? 0 : s->set.parity], s->set.stopbits);
	return 0;
}

static void serial_close(struct rig_part *p)
{
	struct serial_priv *s = p->priv;

	if (!s->opened)
		return;
	port_close(s->port);
	s->port = NULL;
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->tfd >= 0)
		close(s->tfd);
	s->epfd = s->tfd = -1;
}

static int serial_read(struct rig_part *p, void *buf, size_t len, int timeout_ms)
{
	struct serial_priv *s = p->priv;
	struct rig_deadline end = rig_deadline_start(timeout_ms);

	for (;;) {
		struct pollfd pfd;
		int rc;

		if (s->marker_off < s->marker_len) {
			size_t n = s->marker_len - s->marker_off;

			n = n < len ? n : len;
			memcpy(buf, s->marker + s->marker_off, n);
			s->marker_off += n;
			return (int)n;
		}
		if (!s->port) {
			rc = wait_back(p, s, end);
			if (rc < 0)
				return rc;
			continue;         /* the marker comes first */
		}
		rc = rig_ctx_poll(rig_part_ctx(p), s->fd, POLLIN, rig_deadline_left_ms(end));
		if (rc == RIG_E_TIMEOUT || rc == RIG_E_INTR)
			return rc;
		if (rc < 0) {
			lost(p, s, strerror(-rc));
			continue;
		}
		/* Readable: data, or a hangup (a gone tty reads as end of file or EIO). */
		pfd = (struct pollfd){ .fd = s->fd, .events = POLLIN };
		poll(&pfd, 1, 0);
		rc = sp_nonblocking_read(s->port, buf, len);
		if (rc > 0)
			return rc;
		lost(p, s, rc < 0 ? strerror(errno) :
			   pfd.revents & (POLLHUP | POLLERR) ? "hangup" : "end of file");
	}
}

static int serial_write(struct rig_part *p, const void *buf, size_t len, int timeout_ms)
{
	struct serial_priv *s = p->priv;
	const char *b = buf;
	size_t done = 0;
	struct rig_deadline end = rig_deadline_start(timeout_ms);

	while (done < len) {
		int rc;

		if (!s->port) {
			rc = wait_back(p, s, end);
			if (rc == RIG_E_TIMEOUT)
				return rig_part_fail(p, RIG_E_TIMEOUT,
						     "console port '%s' is gone and did not come back within %d ms",
						     s->dev, timeout_ms);
			if (rc < 0)
				return rc;
		}
		rc = rig_ctx_poll(rig_part_ctx(p), s->fd, POLLOUT, rig_deadline_left_ms(end));
		if (rc == RIG_E_TIMEOUT)
			return rig_part_fail(p, RIG_E_TIMEOUT,
					     "console port '%s' took no data for %d ms (flow control?)",
					     s->dev, timeout_ms);
		if (rc < 0 && rc != RIG_E_IO)
			return rc;
		rc = sp_nonblocking_write(s->port, b + done, len - done);
		if (rc > 0)
			done += (size_t)rc;
		else if (rc < 0 && errno != EAGAIN)
			lost(p, s, strerror(errno));
		else if (rc == 0) {
			struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };

			if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)))
				lost(p, s, "hangup");
		}
	}
	return (int)len;
}

static int serial_get_fd(struct rig_part *p)
{
	struct serial_priv *s = p->priv;

	return s->epfd;
}

static const struct rig_param serial_params[] = {
	{ "usb", RIG_P_USB, offsetof(struct serial_conf, usb), false,
	  "the adapter: usb_serial (udevadm info: ID_SERIAL_SHORT), vid_pid (\"0403:6015\"), usb_path (\"1-1.4\"), udev" },
	{ "interface", RIG_P_INT, offsetof(struct serial_conf, interface), false,
	  "USB interface of multi-port adapters (default 0 when several match)" },
	{ "device", RIG_P_STR, offsetof(struct serial_conf, device), false,
	  "device path, last resort (prefer /dev/serial/by-id/...)" },
	{ "baud", RIG_P_INT, offsetof(struct serial_conf, baud), false, "baud rate (115200)" },
	{ "bits", RIG_P_INT, offsetof(struct serial_conf, bits), false, "data bits 5..8 (8)" },
	{ "parity", RIG_P_STR, offsetof(struct serial_conf, parity), false,
	  "none, odd, even, mark or space (none)" },
	{ "stopbits", RIG_P_INT, offsetof(struct serial_conf, stopbits), false, "1 or 2 (1)" },
	{ "flow", RIG_P_STR, offsetof(struct serial_conf, flow), false,
	  "none, xonxoff, rtscts or dtrdsr (none)" },
	RIG_PARAMS_END
};

static const struct rig_console_ops serial_ops = {
	.read = serial_read, .write = serial_write, .get_fd = serial_get_fd,
};

const struct rig_backend rig_console_serial = {
	.role = RIG_ROLE_CONSOLE,
	.name = "serial",
	.help = "USB-UART or other tty by USB serial, VID:PID, port path or device; survives replugging",
	.params = serial_params,
	.conf_size = sizeof(struct serial_conf),
	.priv_size = sizeof(struct serial_priv),
	.open = serial_open,
	.close = serial_close,
	.ops.console = &serial_ops,
};

/* ---- links for other back-ends (rigfw "serial:...") ---- */

int rig_serial_link_open(struct rig_part *p, const char *spec, struct sp_port **port)
{
	struct serial_settings set = { 115200, 8, 1, SP_PARITY_NONE, SP_FLOWCONTROL_NONE };
	struct rig_usb_match m;
	struct rig_usb_id id;
	char dev[PATH_MAX], why[2048], bad[200], *copy, *tok, *next;
	int rc = 0, r;

	*port = NULL;
	if (spec[0] == '/') {
		if (!realpath(spec, dev))
			return rig_part_fail(p, RIG_E_NODEV, "no serial port at '%s': %s", spec,
					     strerror(errno));
		return port_open(p, dev, &set, port, false);
	}
	rig_usb_match_init(&m);
	copy = strdup(spec);
	if (!copy)
		return RIG_E_NOMEM;
	for (tok = copy; tok && rc == 0; tok = next) {
		char *eq = strchr(tok, '=');

		next = strchr(tok, ',');
		if (next)
			*next++ = 0;
		if (eq)
			*eq++ = 0;
		if (eq && !strcmp(tok, "interface")) {
			m.interface = atoi(eq);
			continue;
		}
		r = eq ? rig_usb_match_set(&m, tok, eq, bad, sizeof(bad)) : RIG_E_NOENT;
		if (r == RIG_E_NOENT)
			rc = rig_part_fail(p, RIG_E_INVAL,
					   "serial link '%s': expected a /dev path or usb_serial=, vid_pid=, usb_path=, interface=, udev.NAME=",
					   spec);
		else if (r < 0)
			rc = rig_part_fail(p, RIG_E_INVAL, "serial link '%s': %s: %s", spec, tok, bad);
	}
	if (rc == 0) {
		rc = rig_sysfs_find(RIG_DEV_TTY, &m, &id, why, sizeof(why));
		if (rc < 0)
			rig_part_fail(p, rc, "%s", why);
	}
	free(copy);
	if (rc < 0)
		return rc;
	if (!realpath(id.dev, dev))
		return rig_part_fail(p, RIG_E_NODEV, "%s, but %s: %s", why, id.dev, strerror(errno));
	return port_open(p, dev, &set, port, false);
}

void rig_serial_link_close(struct sp_port *port)
{
	port_close(port);
}
