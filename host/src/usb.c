/* SPDX-License-Identifier: MIT */
/*
 * USB port paths of libusb devices ("1-1.4"), shared by the back-ends that find their
 * device with libusb (sdwire, uhub, rpiboot) so that a rig file's usb_path means the same
 * port to each of them, and to the sysfs lookups in sysfs.c (the kernel's device name);
 * and the one conversion of our timeouts to libusb's.
 */
#define LOG_PREFIX "usb"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
