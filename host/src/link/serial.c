/* SPDX-License-Identifier: MIT */
/*
 * serial: a serial port through libserialport, named by a device path or found by USB
 * identity in sysfs (sysfs.c). The identity is resolved at every open, so a caller that
 * reopens after a loss finds the adapter again wherever it was plugged back in.
 *
 * libserialport's timeouts treat 0 as "forever"; ours treat 0 as "poll". We never pass
 * ours through: only the non-blocking calls are used, and link.c waits in poll().
 */
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <libserialport.h>

#include "../internal.h"

struct serial_priv {
	struct sp_port *port;
	int fd;
};

/* libserialport result to ours; the OS message is valid only after SP_ERR_FAIL. */
static int sp_err(enum sp_return r, const char *what, const char *dev, char *why, size_t whylen)
{
	char *msg;
	int code;

	switch (r) {
	case SP_ERR_ARG:
		snprintf(why, whylen, "%s '%s': invalid argument", what, dev);
		return RIG_E_INVAL;
	case SP_ERR_MEM:
		snprintf(why, whylen, "%s '%s': out of memory", what, dev);
		return RIG_E_NOMEM;
	case SP_ERR_SUPP:
		snprintf(why, whylen, "%s '%s': not supported by the port", what, dev);
		return RIG_E_NOTSUP;
	case SP_ERR_FAIL:
		code = errno == ENOENT || errno == ENODEV || errno == ENXIO ? RIG_E_NODEV : RIG_E_IO;
		msg = sp_last_error_message();
		snprintf(why, whylen, "%s '%s': %s", what, dev, msg ? msg : "failed");
		sp_free_error_message(msg);
		return code;
	default:
		snprintf(why, whylen, "%s '%s': failed", what, dev);
		return RIG_E_IO;
	}
}

/* "usb_serial=X,vid_pid=V:P,usb_path=1-1.4,interface=N" into @m; @copy is cut up. */
static int parse_identity(char *copy, struct rig_usb_match *m)
{
	char *tok, *next;

	for (tok = copy; tok; tok = next) {
		char *eq = strchr(tok, '=');

		next = strchr(tok, ',');
		if (next)
			*next++ = 0;
		if (eq)
			*eq++ = 0;
		if (eq && !strcmp(tok, "usb_serial"))
			m->serial = eq;
		else if (eq && !strcmp(tok, "usb_path"))
			m->port = eq;
		else if (eq && !strcmp(tok, "interface"))
			m->interface = atoi(eq);
		else if (!eq || strcmp(tok, "vid_pid") || rig_usb_parse_vid_pid(eq, &m->vid, &m->pid) < 0)
			return RIG_E_INVAL;
	}
	return 0;
}

/* The device node to open: @path's target, or the tty the USB identity @m resolves to. */
static int resolve(const char *path, const struct rig_usb_match *m, bool if_default,
		   char *dev, size_t len, char *why, size_t whylen)
{
	struct rig_usb_id id;
	char real[PATH_MAX];
	int rc;

	if (path) {
		if (!realpath(path, real)) {
			snprintf(why, whylen, "no serial port at '%s': %s", path, strerror(errno));
			return RIG_E_NODEV;
		}
		snprintf(dev, len, "%s", real);
		return 0;
	}
	rc = rig_sysfs_find(NULL, RIG_DEV_TTY, m, &id, why, whylen);
	if (rc == RIG_E_INVAL && if_default) {
		/* Several tty interfaces on one adapter (FT2232...): interface 0 by default. */
		struct rig_usb_match m0 = *m;
		char why0[2048];

		m0.interface = 0;
		if (rig_sysfs_find(NULL, RIG_DEV_TTY, &m0, &id, why0, sizeof(why0)) == 0) {
			rc = 0;
			snprintf(why, whylen, "%s", why0);
		}
	}
	if (rc < 0)
		return rc;
	/* libserialport wants the node itself, under /dev, not a link to it */
	if (!realpath(id.dev, real)) {
		size_t n = strlen(why);

		snprintf(why + n, whylen - n, ", but %s: %s", id.dev, strerror(errno));
		return RIG_E_NODEV;
	}
	snprintf(dev, len, "%s", real);
	return 0;
}

static int port_open(struct serial_priv *s, const char *dev, const struct rig_line_settings *set,
		     char *why, size_t whylen)
{
	static const enum sp_parity parity[] = {
		[RIG_PARITY_NONE] = SP_PARITY_NONE, [RIG_PARITY_ODD] = SP_PARITY_ODD,
		[RIG_PARITY_EVEN] = SP_PARITY_EVEN, [RIG_PARITY_MARK] = SP_PARITY_MARK,
		[RIG_PARITY_SPACE] = SP_PARITY_SPACE,
	};
	static const enum sp_flowcontrol flow[] = {
		[RIG_FLOW_NONE] = SP_FLOWCONTROL_NONE, [RIG_FLOW_XONXOFF] = SP_FLOWCONTROL_XONXOFF,
		[RIG_FLOW_RTSCTS] = SP_FLOWCONTROL_RTSCTS, [RIG_FLOW_DTRDSR] = SP_FLOWCONTROL_DTRDSR,
	};
	struct sp_port *port = NULL;
	const char *what = "cannot open serial port";
	bool is_open = false;
	enum sp_return r;

	r = sp_get_port_by_name(dev, &port);
	if (r == SP_OK) {
		r = sp_open(port, SP_MODE_READ_WRITE);
		is_open = r == SP_OK;
		if (is_open) {
			what = "cannot configure serial port";
			if ((r = sp_set_baudrate(port, set->baud)) == SP_OK &&
			    (r = sp_set_bits(port, set->bits)) == SP_OK &&
			    (r = sp_set_parity(port, parity[set->parity])) == SP_OK &&
			    (r = sp_set_stopbits(port, set->stopbits)) == SP_OK)
				r = sp_set_flowcontrol(port, flow[set->flow]);
		}
	}
	if (r == SP_ERR_ARG && !port) {
		/* What sp_get_port_by_name() says when /sys/class/tty has no such entry. */
		snprintf(why, whylen, "cannot open serial port '%s': not a tty listed in /sys/class/tty",
			 dev);
		return RIG_E_NODEV;
	}
	if (r != SP_OK) {
		/* the message first: closing may overwrite the OS error */
		int rc = sp_err(r, what, dev, why, whylen);

		if (is_open)
			sp_close(port);
		sp_free_port(port);
		return rc;
	}
	sp_get_port_handle(port, &s->fd);
	s->port = port;
	return 0;
}

static int serial_open(struct rig_link *l, const char *target, const struct rig_link_opts *o,
		       struct rig_deadline d, char *why, size_t whylen)
{
	static const struct rig_line_settings dflt = RIG_LINE_DEFAULT;
	struct serial_priv *s = rig_link_priv(l);
	struct rig_usb_match m;
	char dev[PATH_MAX], found[2048], *copy = NULL;
	int rc;

	s->fd = -1;
	rig_usb_match_init(&m);
	if (o->usb) {
		m = *o->usb;
	} else if (strchr(target, '=')) {
		copy = strdup(target);
		if (!copy)
			return RIG_E_NOMEM;
		if (parse_identity(copy, &m) < 0 || (!m.serial && m.vid < 0 && !m.port)) {
			free(copy);
			snprintf(why, whylen,
				 "serial link '%s': expected a /dev path or usb_serial=, vid_pid=, usb_path=, interface=",
				 target);
			return RIG_E_INVAL;
		}
	}
	rc = resolve(o->usb || copy ? NULL : target, &m, o->usb_if_default, dev, sizeof(dev), why,
		     whylen);
	free(copy);
	if (rc < 0)
		return rc;
	rig_link_set_name(l, dev);
	/* keep what resolve() found for the caller's debug line; an error replaces it */
	snprintf(found, sizeof(found), "%s", why);
	rc = port_open(s, dev, o->line ? o->line : &dflt, why, whylen);
	if (rc == 0)
		snprintf(why, whylen, "%s", found);
	return rc;
}

/*
 * libserialport reads 0 bytes both when nothing is there and when the tty is gone: look
 * before reading, so readable-then-empty is known to be the end.
 */
static int serial_read(struct rig_link *l, void *buf, size_t len)
{
	struct serial_priv *s = rig_link_priv(l);
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	int rc;

	poll(&pfd, 1, 0);
	rc = sp_nonblocking_read(s->port, buf, len);
	if (rc > 0)
		return rc;
	if (rc < 0)
		return rig_link_set_gone(l, strerror(errno));
	if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))
		return rig_link_set_gone(l, "hangup");
	if (pfd.revents & POLLIN)
		return rig_link_set_gone(l, "end of file");
	return 0;
}

static int serial_write(struct rig_link *l, const void *buf, size_t len)
{
	struct serial_priv *s = rig_link_priv(l);
	struct pollfd pfd = { .fd = s->fd, .events = POLLOUT };
	int rc = sp_nonblocking_write(s->port, buf, len);

	if (rc > 0)
		return rc;
	if (rc < 0 && errno != EAGAIN)
		return rig_link_set_gone(l, strerror(errno));
	if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)))
		return rig_link_set_gone(l, "hangup");
	return 0;
}

static int serial_get_fd(const struct rig_link *l)
{
	return ((struct serial_priv *)rig_link_priv(l))->fd;
}

static void serial_close(struct rig_link *l)
{
	struct serial_priv *s = rig_link_priv(l);

	if (s->port) {
		sp_close(s->port);
		sp_free_port(s->port);
	}
	s->port = NULL;
	s->fd = -1;
}

const struct rig_link_ops rig_link_serial = {
	.scheme = "serial",
	.syntax = "serial:PATH|usb_serial=X",
	.priv_size = sizeof(struct serial_priv),
	.open = serial_open,
	.read = serial_read,
	.write = serial_write,
	.get_fd = serial_get_fd,
	.close = serial_close,
};
