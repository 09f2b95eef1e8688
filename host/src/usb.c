/* SPDX-License-Identifier: MIT */
/*
 * The USB layer every USB back-end goes through: the identity a rig file gives (parsed
 * once, by the core), one libusb context per rig context, one finder that lists every
 * device it saw when nothing or too much matches, one translation of libusb's errors, and
 * the one conversion of our timeouts to libusb's. Port paths ("1-1.4") are the kernel's
 * device names, so a rig file's usb_path means the same port here, to the udev lookups
 * of sysfs.c and to uhub. udev properties are read through libudev.
 */
#define LOG_PREFIX "usb"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libudev.h>
#include <libusb.h>

#include "internal.h"

/* USB allows 7 tiers (6 port numbers below the host); libusb fails past the array. */
#define PORTS_MAX 8

/* ---- identity: what a rig file says, parsed once by the core (desc.c) ---- */

void rig_usb_match_init(struct rig_usb_match *m)
{
	memset(m, 0, sizeof(*m));
	m->vid = m->pid = m->interface = -1;
}

bool rig_usb_match_empty(const struct rig_usb_match *m)
{
	return !m->serial[0] && m->vid < 0 && !m->port[0] && m->interface < 0 && !m->nprops;
}

/* 1 to 4 hex digits, then @stop; strtoul alone would take "0x", "+" and blanks. */
static bool hex16(const char *s, char stop, int *out, const char **end)
{
	int v = 0, n = 0;

	for (; isxdigit((unsigned char)*s) && n < 5; s++, n++)
		v = v * 16 + (isdigit((unsigned char)*s) ? *s - '0' : tolower((unsigned char)*s) - 'a' + 10);
	if (n < 1 || n > 4 || *s != stop)
		return false;
	*out = v;
	*end = s;
	return true;
}

int rig_usb_parse_vid_pid(const char *s, int *vid, int *pid)
{
	int v, p;

	if (!s || !hex16(s, ':', &v, &s) || !hex16(s + 1, 0, &p, &s))
		return RIG_E_INVAL;
	*vid = v;
	*pid = p;
	return 0;
}

bool rig_usb_port_valid(const char *s)
{
	int depth = 0;

	if (!isdigit((unsigned char)*s))
		return false;
	while (isdigit((unsigned char)*s))
		s++;
	if (!*s)
		return true;
	if (*s++ != '-')
		return false;
	for (;;) {
		if (!isdigit((unsigned char)*s) || ++depth > PORTS_MAX)
			return false;
		while (isdigit((unsigned char)*s))
			s++;
		if (!*s)
			return true;
		if (*s++ != '.')
			return false;
	}
}

bool rig_usb_key(const char *key)
{
	return !strcmp(key, "usb_serial") || !strcmp(key, "usb_path") ||
	       !strcmp(key, "vid_pid") || !strcmp(key, "udev") || !strncmp(key, "udev.", 5);
}

/* @val into @dst; false (and why in @err) when it does not fit. */
static bool put(char *dst, size_t len, const char *val, char *err, size_t errlen)
{
	if (strlen(val) >= len) {
		snprintf(err, errlen, "'%.40s...' is longer than %zu characters", val, len - 1);
		return false;
	}
	memcpy(dst, val, strlen(val) + 1);
	return true;
}

int rig_usb_match_set(struct rig_usb_match *m, const char *key, const char *val, char *err,
		      size_t errlen)
{
	const char *name;

	if (!rig_usb_key(key))
		return RIG_E_NOENT;
	if (!strcmp(key, "udev"))
		return 0;
	if (!strcmp(key, "usb_serial"))
		return put(m->serial, sizeof(m->serial), val, err, errlen) ? 0 : RIG_E_INVAL;
	if (!strcmp(key, "vid_pid")) {
		if (rig_usb_parse_vid_pid(val, &m->vid, &m->pid) == 0)
			return 0;
		snprintf(err, errlen, "'%.60s' is not a USB VID:PID (hex, like \"0403:6015\")", val);
		return RIG_E_INVAL;
	}
	if (!strcmp(key, "usb_path")) {
		if (rig_usb_port_valid(val))
			return put(m->port, sizeof(m->port), val, err, errlen) ? 0 : RIG_E_INVAL;
		snprintf(err, errlen,
			 "'%.60s' is not a USB port path (like \"1-1.4\": bus, then ports; lsusb -t)",
			 val);
		return RIG_E_INVAL;
	}
	name = key + 5;         /* "udev.NAME" */
	if (!*name || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name)) {
		snprintf(err, errlen, "'%.60s' is not a udev property name (letters, digits, _)", name);
		return RIG_E_INVAL;
	}
	if (m->nprops == RIG_USB_PROPS_MAX) {
		snprintf(err, errlen, "more than %d udev properties", RIG_USB_PROPS_MAX);
		return RIG_E_INVAL;
	}
	if (!put(m->prop[m->nprops].name, sizeof(m->prop[0].name), name, err, errlen) ||
	    !put(m->prop[m->nprops].value, sizeof(m->prop[0].value), val, err, errlen))
		return RIG_E_INVAL;
	m->nprops++;
	return 0;
}

int rig_usb_match_describe(const struct rig_usb_match *m, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = 0;
#define ADD(...) do { if (o < len) o += (size_t)snprintf(buf + o, len - o, __VA_ARGS__); } while (0)
	if (m->serial[0])
		ADD("%susb_serial=%s", o ? " " : "", m->serial);
	if (m->vid >= 0)
		ADD("%svid_pid=%04x:%04x", o ? " " : "", (unsigned)m->vid, (unsigned)m->pid);
	if (m->port[0])
		ADD("%susb_path=%s", o ? " " : "", m->port);
	if (m->interface >= 0)
		ADD("%sinterface=%d", o ? " " : "", m->interface);
	for (int i = 0; i < m->nprops; i++)
		ADD("%sudev.%s=%s", o ? " " : "", m->prop[i].name, m->prop[i].value);
#undef ADD
	return o ? 0 : RIG_E_INVAL;
}

/* ---- libusb devices ---- */

int rig_usb_port_format(struct libusb_device *dev, char *buf, size_t len)
{
	uint8_t ports[PORTS_MAX];
	int n = libusb_get_port_numbers(dev, ports, (int)sizeof(ports));
	int o = snprintf(buf, len, "%u", libusb_get_bus_number(dev));

	/* n < 0 (a chain longer than libusb allows): the bus alone, as if a root hub */
	for (int i = 0; i < n && o >= 0 && (size_t)o < len; i++)
		o += snprintf(buf + o, len - (size_t)o, "%c%u", i ? '.' : '-', ports[i]);
	return o >= 0 && (size_t)o < len ? o : RIG_E_INVAL;
}

unsigned int rig_usb_timeout(int timeout_ms)
{
	if (timeout_ms < 0)
		return 0;
	return timeout_ms == 0 ? 1 : (unsigned int)timeout_ms;
}

bool rig_usb_port_match(struct libusb_device *dev, const char *want, char *buf, size_t len)
{
	bool fits = rig_usb_port_format(dev, buf, len) >= 0;

	return !want || (fits && !strcmp(buf, want));
}

/* ---- one libusb context per rig context ---- */

int rig_usb_ctx(struct rig_ctx *ctx, libusb_context **out)
{
	int r;

	if (!ctx->usb) {
		r = libusb_init(&ctx->usb);
		if (r < 0) {
			ctx->usb = NULL;
			return rig_usb_code(r);
		}
	}
	*out = ctx->usb;
	return 0;
}

void rig_usb_ctx_release(struct rig_ctx *ctx)
{
	if (ctx->usb)
		libusb_exit(ctx->usb);
	ctx->usb = NULL;
}

/* ---- one error translation ---- */

int rig_usb_code(int err)
{
	switch (err) {
	case LIBUSB_ERROR_NO_DEVICE:
	case LIBUSB_ERROR_NOT_FOUND: return RIG_E_NODEV;
	case LIBUSB_ERROR_TIMEOUT: return RIG_E_TIMEOUT;
	case LIBUSB_ERROR_NO_MEM: return RIG_E_NOMEM;
	case LIBUSB_ERROR_BUSY: return RIG_E_BUSY;
	case LIBUSB_ERROR_INTERRUPTED: return RIG_E_INTR;
	case LIBUSB_ERROR_NOT_SUPPORTED: return RIG_E_NOTSUP;
	case LIBUSB_ERROR_INVALID_PARAM: return RIG_E_INVAL;
	default: return err < 0 ? RIG_E_IO : err;
	}
}

int rig_usb_fail(struct rig_part *p, int err, int timeout_ms, const char *fmt, ...)
{
	char what[RIG_ERRMSG_MAX - 160];
	const char *doc = p->be->doc ? p->be->doc : "docs/hardware/";
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	switch (err) {
	case LIBUSB_ERROR_NO_DEVICE:
		return rig_part_fail(p, rig_usb_code(err),
				     "%s: the device went away (unplugged, reset or powered off)", what);
	case LIBUSB_ERROR_TIMEOUT:
		if (timeout_ms >= 0)
			return rig_part_fail(p, rig_usb_code(err), "%s: no answer within %d ms", what,
					     timeout_ms);
		return rig_part_fail(p, rig_usb_code(err), "%s: timed out", what);
	case LIBUSB_ERROR_PIPE:
		return rig_part_fail(p, rig_usb_code(err), "%s: the device stalled the request", what);
	case LIBUSB_ERROR_ACCESS:
		return rig_part_fail(p, rig_usb_code(err),
				     "%s: permission denied: install the udev rule in %s (or run as root)",
				     what, doc);
	case LIBUSB_ERROR_BUSY:
		return rig_part_fail(p, rig_usb_code(err),
				     "%s: the device is busy (its interface claimed by another program?)",
				     what);
	default:
		return rig_part_fail(p, rig_usb_code(err), "%s: %s", what, libusb_strerror(err));
	}
}

/* ---- one finder ---- */

/* Append to a bounded list, ", " between entries; silently truncates. */
static void list_add(char *buf, size_t len, size_t *o, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void list_add(char *buf, size_t len, size_t *o, const char *fmt, ...)
{
	va_list ap;

	if (*o >= len)
		return;
	if (*o)
		*o += (size_t)snprintf(buf + *o, len - *o, ", ");
	va_start(ap, fmt);
	if (*o < len)
		*o += (size_t)vsnprintf(buf + *o, len - *o, fmt, ap);
	va_end(ap);
}

/* "04e8:6001 serial 'A' at 1-1.2" */
static void describe(const struct rig_usb_dev *c, char *buf, size_t len)
{
	snprintf(buf, len, "%04x:%04x%s%s%s at %s", (unsigned)c->vid, (unsigned)c->pid,
		 c->serial[0] ? " serial '" : "", c->serial, c->serial[0] ? "'" : "", c->port);
}

/* Serial and product of @dev; a libusb error when it cannot be opened. */
static int read_strings(libusb_device *dev, const struct libusb_device_descriptor *d,
			struct rig_usb_dev *c)
{
	libusb_device_handle *h;
	int r = libusb_open(dev, &h);

	if (r < 0)
		return r;
	if (d->iSerialNumber &&
	    libusb_get_string_descriptor_ascii(h, d->iSerialNumber, (unsigned char *)c->serial,
					       (int)sizeof(c->serial)) < 0)
		c->serial[0] = 0;
	if (d->iProduct &&
	    libusb_get_string_descriptor_ascii(h, d->iProduct, (unsigned char *)c->product,
					       (int)sizeof(c->product)) < 0)
		c->product[0] = 0;
	libusb_close(h);
	return 0;
}

/* Whether the usb_device at @port has every udev property of @m; the first that differs in @bad. */
static bool props_match(struct udev *udev, const struct rig_usb_match *m, const char *port,
			char *bad, size_t len)
{
	struct udev_device *ud;
	char name[40];
	bool ok = true;

	if (!m->nprops)
		return true;
	/* the kernel names a root hub "usb1", any other device by its port path */
	snprintf(name, sizeof(name), "%s%s", strchr(port, '-') ? "" : "usb", port);
	ud = udev ? udev_device_new_from_subsystem_sysname(udev, "usb", name) : NULL;
	for (int i = 0; i < m->nprops && ok; i++) {
		const char *v = ud ? udev_device_get_property_value(ud, m->prop[i].name) : NULL;

		ok = v && !strcmp(v, m->prop[i].value);
		if (!ok)
			snprintf(bad, len, "%s=%s", m->prop[i].name, v ? v : "(unset)");
	}
	udev_device_unref(ud);
	return ok;
}

int rig_usb_find(struct rig_ctx *ctx, const struct rig_usb_match *m,
		 const struct rig_usb_want *w, struct rig_usb_dev *out, int *n, char *list,
		 size_t len)
{
	libusb_context *usb = NULL;
	libusb_device **devs;
	struct udev *udev = m->nprops ? udev_new() : NULL;
	char seen[1536] = "", cands[1536] = "";
	size_t so = 0, co = 0;
	ssize_t nd;
	int found = 0, denied = 0, rc = rig_usb_ctx(ctx, &usb);

	memset(out, 0, sizeof(*out));
	if (n)
		*n = 0;
	if (len)
		list[0] = 0;
	if (rc < 0)
		goto done;
	nd = libusb_get_device_list(usb, &devs);
	if (nd < 0) {
		rc = rig_usb_code((int)nd);
		goto done;
	}
	for (ssize_t i = 0; i < nd; i++) {
		struct libusb_device_descriptor d;
		struct rig_usb_dev c = { .dev = devs[i] };
		enum rig_usb_verdict v = RIG_USB_ACCEPT;
		char one[400], note[160] = "";
		bool at_port;
		int r;

		if (libusb_get_device_descriptor(devs[i], &d) < 0)
			continue;
		c.vid = d.idVendor;
		c.pid = d.idProduct;
		if (rig_usb_port_format(devs[i], c.port, sizeof(c.port)) < 0)
			continue;
		at_port = m->port[0] && !strcmp(m->port, c.port);
		if (m->vid >= 0 && (m->vid != c.vid || m->pid != c.pid))
			v = RIG_USB_IGNORE;
		else if (w->filter)
			v = w->filter(w->user, &c, note, sizeof(note));
		describe(&c, one, sizeof(one));
		if (v == RIG_USB_IGNORE) {
			if (at_port)
				list_add(seen, sizeof(seen), &so, "%s (not %s)", one, w->noun);
			continue;
		}
		if (m->port[0] && !at_port) {
			list_add(seen, sizeof(seen), &so, "%s (another port)", one);
			continue;
		}
		if (v == RIG_USB_REJECT) {
			list_add(seen, sizeof(seen), &so, "%s (%s)", one, note);
			continue;
		}
		if (w->strings || w->product || m->serial[0]) {
			r = read_strings(devs[i], &d, &c);
			if (r < 0) {
				denied += r == LIBUSB_ERROR_ACCESS;
				list_add(seen, sizeof(seen), &so, "%s (cannot open: %s)", one,
					 libusb_strerror(r));
				continue;
			}
			describe(&c, one, sizeof(one));
		}
		if (w->product && strcmp(c.product, w->product)) {
			list_add(seen, sizeof(seen), &so, "%s (product '%s': not %s)", one,
				 c.product, w->noun);
			continue;
		}
		if (m->serial[0] && strcmp(m->serial, c.serial)) {
			list_add(seen, sizeof(seen), &so, "%s", one);
			continue;
		}
		if (!props_match(udev, m, c.port, note, sizeof(note))) {
			list_add(seen, sizeof(seen), &so, "%s (udev %s)", one, note);
			continue;
		}
		list_add(seen, sizeof(seen), &so, "%s", one);
		list_add(cands, sizeof(cands), &co, "%s", one);
		if (found++ == 0) {
			*out = c;
			out->dev = libusb_ref_device(devs[i]);
		}
	}
	libusb_free_device_list(devs, 1);
	if (n)
		*n = found;
	if (found == 1) {
		snprintf(list, len, "%s", cands);
		rc = 0;
	} else if (found > 1) {
		libusb_unref_device(out->dev);
		out->dev = NULL;
		snprintf(list, len, "%s", cands);
		rc = RIG_E_INVAL;
	} else {
		snprintf(list, len, "%s%s", seen,
			 denied ? "; permission denied: install the udev rule for it" : "");
		rc = denied ? RIG_E_IO : RIG_E_NODEV;
	}
done:
	if (udev)
		udev_unref(udev);
	return rc;
}
