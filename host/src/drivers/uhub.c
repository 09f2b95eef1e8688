/* SPDX-License-Identifier: MIT */
/*
 * uhub: DUT power from one port of a USB hub that really switches VBUS per port.
 *
 * Two ways to switch, chosen at open time for each logical hub:
 *  - the kernel's sysfs attribute <hub>:<cfg>.0/<hub>-port<N>/disable (Linux >= 6.0),
 *    "1" = off, "0" = on, read back for get. Preferred: the kernel knows about the change,
 *    so device nodes do not linger and the hub driver does not power the port back up.
 *  - hub class requests over libusb-1.0 (older kernels): Set/ClearPortFeature(PORT_POWER)
 *    and GetPortStatus, after reading the hub descriptor to refuse hubs without per-port
 *    power switching.
 * A USB3 hub is two logical hubs (a USB2 and a USB3 half) sharing the physical ports; VBUS
 * stays up while either half powers a port, so both are switched. The companion is the
 * sysfs port's `peer` link, else the other-generation hub with the same serial, else the
 * one at the same port path on another bus. The state lives in the hub: nothing is held
 * open between calls. Hubs, their ports and the ports' attributes are all reached through
 * libudev (tests give it a fake /sys through umockdev's preload, UMOCKDEV_DIR).
 *
 * The hub lookup and the port switch are the rig_hubport_*() functions (internal.h), so the
 * network role's uplink through a USB network adapter (drivers/network.c) switches its
 * port with the same code as the power back-end here.
 */
#define LOG_PREFIX "uhub"
#include <assert.h>
#include <errno.h>
#include <libudev.h>
#include <libusb.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../internal.h"

#define LOC_MAX RIG_HUBPORT_LOC_MAX
#define PATH_LEN RIG_HUBPORT_PATH_MAX

/* Hub class requests (USB 2.0 11.24, USB 3.2 10.16). */
#define DT_HUB 0x29
#define DT_SS_HUB 0x2a
#define PORT_FEAT_POWER 8
#define USB2_PORT_POWER 0x0100
#define USB3_PORT_POWER 0x0200
#define LPSM_MASK 0x03
#define LPSM_GANGED 0x00
#define LPSM_PPPS 0x01

struct uhub_conf {
	char *hub;                  /* location "1-1.4" */
	struct rig_usb_match usb;   /* ...or the hub's serial number (usb_path: as hub) */
	int port;
};

/* ---- sysfs ---- */

/* snprintf that says whether it fitted. */
__attribute__((format(printf, 3, 4)))
static bool fmt(char *buf, size_t len, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, len, f, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < len;
}

/* The usb_device's kernel name: "1-1.4", or "usb2" for root hub "2". */
static void dev_name(const char *loc, char *buf, size_t len)
{
	if (strchr(loc, '-'))
		snprintf(buf, len, "%s", loc);
	else
		snprintf(buf, len, "usb%s", loc);
}

/*
 * The syspath of the hub's port @port: /sys/bus/usb/devices/<loc>:<cfg>.0/<loc>-port<N>,
 * or for a root hub .../<bus>-0:<cfg>.0/usb<bus>-port<N>, with the hub's configuration.
 * @hub may be NULL (configuration 1).
 */
static void port_path(struct udev_device *hub, const char *loc, int port, char *buf, size_t len)
{
	const char *cfg = hub ? udev_device_get_sysattr_value(hub, "bConfigurationValue") : NULL;
	char name[LOC_MAX + 8];

	if (!cfg || !cfg[0])
		cfg = "1";
	dev_name(loc, name, sizeof(name));
	if (strchr(loc, '-'))
		fmt(buf, len, "/sys/bus/usb/devices/%s:%s.0/%s-port%d", loc, cfg, name, port);
	else
		fmt(buf, len, "/sys/bus/usb/devices/%s-0:%s.0/%s-port%d", loc, cfg, name, port);
}

/* The hub's usb_device; NULL if sysfs does not show it. */
static struct udev_device *hub_device(struct udev *udev, const char *loc)
{
	char path[LOC_MAX + 32], name[LOC_MAX + 8];

	dev_name(loc, name, sizeof(name));
	snprintf(path, sizeof(path), "/sys/bus/usb/devices/%s", name);
	return udev_device_new_from_syspath(udev, path);
}

/* The serial number sysfs shows for the hub at @loc into @buf; false if none. */
static bool hub_serial(struct udev *udev, const char *loc, char *buf, size_t len)
{
	struct udev_device *hub = udev ? hub_device(udev, loc) : NULL;
	const char *v = hub ? udev_device_get_sysattr_value(hub, "serial") : NULL;
	bool ok = v && fmt(buf, len, "%s", v);

	udev_device_unref(hub);
	return ok;
}

/* "../../usb2/2-1/2-1:1.0/2-1-port4" -> "2-1"; "usb2-port4" -> "2". */
static bool loc_from_port_path(const char *target, char *loc, size_t len)
{
	const char *base = strrchr(target, '/');
	char tmp[LOC_MAX + 16], *dash;

	base = base ? base + 1 : target;
	if (!fmt(tmp, sizeof(tmp), "%s", base))
		return false;
	dash = strstr(tmp, "-port");
	if (!dash)
		return false;
	*dash = 0;
	return fmt(loc, len, "%s", strncmp(tmp, "usb", 3) ? tmp : tmp + 3) &&
	       rig_usb_port_valid(loc);
}

/*
 * Find the hubs whose `serial` is @serial, through libudev: both halves of a USB3 hub carry
 * it. Fills up to 2 locations. @return the number found (may exceed 2), or a negative error.
 */
static int hubs_by_serial(struct rig_part *p, const char *serial, char loc[2][LOC_MAX])
{
	struct udev *udev = udev_new();
	struct udev_enumerate *en = udev ? udev_enumerate_new(udev) : NULL;
	struct udev_list_entry *e;
	int n = 0, rc;

	if (!en || udev_enumerate_add_match_subsystem(en, "usb") < 0 ||
	    udev_enumerate_add_match_property(en, "DEVTYPE", "usb_device") < 0 ||
	    udev_enumerate_add_match_sysattr(en, "bDeviceClass", "09") < 0 ||
	    udev_enumerate_add_match_sysattr(en, "serial", serial) < 0 ||
	    (rc = udev_enumerate_scan_devices(en)) < 0) {
		udev_enumerate_unref(en);
		udev_unref(udev);
		return rig_part_fail(p, RIG_E_NODEV, "cannot list USB hubs through udev to look for hub usb_serial=%s",
				     serial);
	}
	udev_list_entry_foreach(e, udev_enumerate_get_list_entry(en)) {
		const char *name = strrchr(udev_list_entry_get_name(e), '/');

		/* the kernel names root hub 2 "usb2", any other hub by its location */
		name = name ? name + 1 : udev_list_entry_get_name(e);
		if (n >= 2 || fmt(loc[n], LOC_MAX, "%s", strncmp(name, "usb", 3) ? name : name + 3))
			n++;
	}
	udev_enumerate_unref(en);
	udev_unref(udev);
	return n;
}

/*
 * Decide how @t's port is switched. @return 1 sysfs (t->port set), 0 libusb, or an error
 * (the hub's ports are in sysfs but @port is not one of them).
 */
static int probe_sysfs(struct rig_part *p, struct rig_hubport_half *t, int port, char *peer,
		       size_t plen)
{
	struct udev *udev = udev_new();
	struct udev_device *hub, *pd = NULL, *other;
	char path[PATH_LEN], link[PATH_LEN + 8];
	int rc = 0;

	peer[0] = 0;
	if (!udev)
		return rig_part_fail(p, RIG_E_NOMEM, "cannot start libudev to look at hub %s",
				     t->loc);
	hub = hub_device(udev, t->loc);
	port_path(hub, t->loc, port, path, sizeof(path));
	pd = udev_device_new_from_syspath(udev, path);
	if (!pd) {
		const char *n = hub ? udev_device_get_sysattr_value(hub, "maxchild") : NULL;
		char first[PATH_LEN];

		/* no port 1 either: this kernel (or hub) shows no ports, libusb it is */
		port_path(hub, t->loc, 1, first, sizeof(first));
		other = udev_device_new_from_syspath(udev, first);
		if (other)
			rc = rig_part_fail(p, RIG_E_NOENT, "hub %s has no port %d (sysfs shows %s%s)",
					   t->loc, port, n ? n : "its ports", n ? " ports" : "");
		udev_device_unref(other);
		goto out;
	}
	/* the companion: `peer` links the port to the other half's port of a USB3 hub */
	snprintf(link, sizeof(link), "%s/peer", path);
	other = udev_device_new_from_syspath(udev, link);
	if (other && !loc_from_port_path(udev_device_get_sysname(other), peer, plen))
		peer[0] = 0;
	udev_device_unref(other);
	if (!udev_device_get_sysattr_value(pd, "disable"))
		goto out;     /* kernel < 6.0 */
	if (!fmt(t->port, sizeof(t->port), "%s", path))
		rc = rig_part_fail(p, RIG_E_INVAL, "sysfs path too long: %s", path);
	else
		rc = 1;
out:
	udev_device_unref(pd);
	udev_device_unref(hub);
	udev_unref(udev);
	return rc;
}

static int sysfs_errno(struct rig_part *p, const struct rig_hubport_half *t, int e,
		       const char *what)
{
	if (e == EACCES || e == EPERM)
		return rig_part_fail(p, RIG_E_IO,
				     "no permission to %s %s/disable: install the udev rule from docs/hardware/uhub.md (or run as root)",
				     what, t->port);
	if (e == ENOENT || e == ENODEV)
		return rig_part_fail(p, RIG_E_NODEV, "hub %s is gone (%s)", t->loc, t->port);
	return rig_part_fail(p, RIG_E_IO, "cannot %s %s/disable: %s", what, t->port, strerror(e));
}

/*
 * The port's device, new for each call: libudev caches attribute values in it, and the
 * hub (or uhubctl) may have switched the port since.
 */
static struct udev_device *port_device(const struct rig_hubport_half *t, struct udev **udev)
{
	*udev = udev_new();
	return *udev ? udev_device_new_from_syspath(*udev, t->port) : NULL;
}

static int sysfs_set(struct rig_part *p, const struct rig_hubport_half *t, bool on)
{
	struct udev *udev;
	struct udev_device *pd = port_device(t, &udev);
	int rc = pd ? udev_device_set_sysattr_value(pd, "disable", on ? "0" : "1")
		    : -(udev ? ENODEV : ENOMEM);

	udev_device_unref(pd);
	udev_unref(udev);
	return rc < 0 ? sysfs_errno(p, t, -rc, "write") : 0;
}

static int sysfs_get(struct rig_part *p, const struct rig_hubport_half *t, bool *on)
{
	struct udev *udev;
	struct udev_device *pd = port_device(t, &udev);
	const char *v = NULL;
	int rc = 0;

	errno = udev ? ENODEV : ENOMEM;
	if (pd)
		v = udev_device_get_sysattr_value(pd, "disable");
	if (!v)
		rc = sysfs_errno(p, t, errno ? errno : EIO, "read");
	else if ((v[0] != '0' && v[0] != '1') || (v[1] && v[1] != '\n'))
		rc = rig_part_fail(p, RIG_E_PROTO, "unexpected '%s' in %s/disable", v, t->port);
	else
		*on = v[0] == '0';
	udev_device_unref(pd);
	udev_unref(udev);
	return rc;
}

/* ---- libusb ---- */

/* A libusb error on hub @loc. */
static int usb_fail(struct rig_part *p, int e, const char *loc, const char *what, int tmo)
{
	return rig_usb_fail(p, e, tmo, "hub %s: %s", loc, what);
}

static enum rig_usb_verdict is_hub(void *user, const struct rig_usb_dev *cand, char *note,
				   size_t len)
{
	struct libusb_device_descriptor d;

	return libusb_get_device_descriptor(cand->dev, &d) == 0 &&
	       d.bDeviceClass == LIBUSB_CLASS_HUB ? RIG_USB_ACCEPT : RIG_USB_IGNORE;
}

/* The hub at @loc (a reference the caller unrefs), or NULL. */
static libusb_device *usb_find(struct rig_part *p, const char *loc,
			       struct libusb_device_descriptor *desc)
{
	struct rig_usb_want w = { .noun = "a hub", .filter = is_hub };
	struct rig_usb_match m;
	struct rig_usb_dev d;
	char list[512];

	rig_usb_match_init(&m);
	snprintf(m.port, sizeof(m.port), "%s", loc);
	if (rig_usb_find(rig_part_ctx(p), &m, &w, &d, NULL, list, sizeof(list)) < 0)
		return NULL;
	libusb_get_device_descriptor(d.dev, desc);
	return d.dev;
}

static int usb_open(struct rig_part *p, const struct rig_hubport_half *t,
		    libusb_device_handle **h, struct libusb_device_descriptor *desc)
{
	libusb_device *dev = usb_find(p, t->loc, desc);
	int rc;

	if (!dev)
		return rig_part_fail(p, RIG_E_NODEV,
				     "no USB hub at %s (list hubs with `uhubctl` or `lsusb -t`)", t->loc);
	rc = libusb_open(dev, h);
	libusb_unref_device(dev);
	return rc ? usb_fail(p, rc, t->loc, "open", 0) : 0;
}

/* Check the hub switches ports one by one and has @port; sets t->usb3. */
static int usb_check_hub(struct rig_part *p, struct rig_hubport_half *t, int port,
			 int timeout_ms)
{
	struct libusb_device_descriptor desc;
	libusb_device_handle *h;
	unsigned char d[16] = { 0 };
	int rc, lpsm;

	rc = usb_open(p, t, &h, &desc);
	if (rc < 0)
		return rc;
	t->usb3 = libusb_le16_to_cpu(desc.bcdUSB) >= 0x0300;
	rc = libusb_control_transfer(h, LIBUSB_ENDPOINT_IN | LIBUSB_REQUEST_TYPE_CLASS |
				     LIBUSB_RECIPIENT_DEVICE, LIBUSB_REQUEST_GET_DESCRIPTOR,
				     (t->usb3 ? DT_SS_HUB : DT_HUB) << 8, 0, d, sizeof(d),
				     rig_usb_timeout(timeout_ms));
	libusb_close(h);
	if (rc < 0)
		return usb_fail(p, rc, t->loc, "reading the hub descriptor", timeout_ms);
	if (rc < 7 || d[1] != (t->usb3 ? DT_SS_HUB : DT_HUB))
		return rig_part_fail(p, RIG_E_PROTO, "hub %s sent a bad hub descriptor (%d bytes)",
				     t->loc, rc);
	lpsm = d[3] & LPSM_MASK;
	if (lpsm == LPSM_GANGED && d[2] == 1)
		lpsm = LPSM_PPPS;     /* one port: ganged is per-port */
	if (lpsm != LPSM_PPPS)
		return rig_part_fail(p, RIG_E_NOTSUP,
				     "hub %s (%04x:%04x) cannot switch ports one by one: it reports %s power switching (wHubCharacteristics 0x%02x%02x); see docs/hardware/uhub.md for hubs that do",
				     t->loc, desc.idVendor, desc.idProduct,
				     lpsm == LPSM_GANGED ? "ganged" : "no", d[4], d[3]);
	if (port > d[2])
		return rig_part_fail(p, RIG_E_NOENT, "hub %s has no port %d (it has %u)", t->loc,
				     port, d[2]);
	return 0;
}

/*
 * The other-generation half of the hub at @loc: same serial when the hub has one, else the
 * same port path on another bus. Fills @out and returns true when found.
 */
static bool usb_companion(struct rig_part *p, libusb_context *usb, const char *loc, char *out,
			  size_t len)
{
	struct libusb_device_descriptor desc, d2;
	libusb_device *dev = usb_find(p, loc, &desc), **list;
	char serial[256] = "", s2[256], l2[LOC_MAX];
	const char *path = strchr(loc, '-');
	struct udev *udev;
	bool usb3, found = false;
	ssize_t n;

	if (!dev)
		return false;
	libusb_unref_device(dev);
	usb3 = libusb_le16_to_cpu(desc.bcdUSB) >= 0x0300;
	udev = udev_new();
	if (!hub_serial(udev, loc, serial, sizeof(serial)))
		serial[0] = 0;
	n = libusb_get_device_list(usb, &list);
	for (ssize_t i = 0; i < n; i++) {
		const char *p2;

		if (libusb_get_device_descriptor(list[i], &d2) != 0 ||
		    d2.bDeviceClass != LIBUSB_CLASS_HUB ||
		    (libusb_le16_to_cpu(d2.bcdUSB) >= 0x0300) == usb3)
			continue;
		if (rig_usb_port_format(list[i], l2, sizeof(l2)) < 0)
			continue;
		if (serial[0] && hub_serial(udev, l2, s2, sizeof(s2)) && !strcmp(s2, serial)) {
			snprintf(out, len, "%s", l2);
			found = true;
			break;
		}
		p2 = strchr(l2, '-');
		if (!found && path && p2 && !strcmp(path, p2)) {
			snprintf(out, len, "%s", l2);
			found = true;
		}
	}
	if (n >= 0)
		libusb_free_device_list(list, 1);
	udev_unref(udev);
	return found;
}

static int usb_set(struct rig_part *p, const struct rig_hubport_half *t, int port, bool on,
		   int timeout_ms)
{
	struct libusb_device_descriptor desc;
	libusb_device_handle *h;
	int rc = usb_open(p, t, &h, &desc);

	if (rc < 0)
		return rc;
	rc = libusb_control_transfer(h, LIBUSB_REQUEST_TYPE_CLASS | LIBUSB_RECIPIENT_OTHER,
				     on ? LIBUSB_REQUEST_SET_FEATURE : LIBUSB_REQUEST_CLEAR_FEATURE,
				     PORT_FEAT_POWER, (uint16_t)port, NULL, 0,
				     rig_usb_timeout(timeout_ms));
	libusb_close(h);
	return rc < 0 ? usb_fail(p, rc, t->loc, on ? "SetPortFeature(PORT_POWER)"
				 : "ClearPortFeature(PORT_POWER)", timeout_ms) : 0;
}

static int usb_get(struct rig_part *p, const struct rig_hubport_half *t, int port, bool *on,
		   int timeout_ms)
{
	struct libusb_device_descriptor desc;
	libusb_device_handle *h;
	unsigned char st[4];
	int rc = usb_open(p, t, &h, &desc);

	if (rc < 0)
		return rc;
	rc = libusb_control_transfer(h, LIBUSB_ENDPOINT_IN | LIBUSB_REQUEST_TYPE_CLASS |
				     LIBUSB_RECIPIENT_OTHER, LIBUSB_REQUEST_GET_STATUS, 0,
				     (uint16_t)port, st, sizeof(st), rig_usb_timeout(timeout_ms));
	libusb_close(h);
	if (rc < 0)
		return usb_fail(p, rc, t->loc, "GetPortStatus", timeout_ms);
	if (rc < 2)
		return rig_part_fail(p, RIG_E_PROTO, "hub %s sent %d bytes of port status", t->loc, rc);
	*on = (st[0] | st[1] << 8) & (t->usb3 ? USB3_PORT_POWER : USB2_PORT_POWER);
	return 0;
}

/* ---- one hub port, for the power back-end below and the network role ---- */

int rig_hubport_init(struct rig_part *p, struct rig_hubport *hp, const struct rig_hubport_conf *c,
		     int timeout_ms)
{
	char found[2][LOC_MAX], peer[LOC_MAX];
	int rc, sys;

	memset(hp, 0, sizeof(*hp));
	if (c->port < 1 || c->port > 255)
		return rig_part_fail(p, RIG_E_INVAL,
				     "%s must be 1..255 (the hub's port, as uhubctl -p counts), not %d",
				     c->port_key, c->port);
	if (!c->hub == !c->serial)
		return rig_part_fail(p, RIG_E_INVAL, "name the hub by exactly one of %s (location "
				     "like \"1-1.4\") or %s", c->hub_key, c->serial_key);
	hp->port = c->port;
	if (c->hub) {
		if (!rig_usb_port_valid(c->hub))
			return rig_part_fail(p, RIG_E_INVAL,
					     "%s must be a USB location like \"1-1.4\" (see `uhubctl` or `lsusb -t`), not '%s'",
					     c->hub_key, c->hub);
		if (!fmt(hp->t[0].loc, LOC_MAX, "%s", c->hub))
			return rig_part_fail(p, RIG_E_INVAL, "hub location '%s' is too long", c->hub);
		hp->n = 1;
	} else {
		rc = hubs_by_serial(p, c->serial, found);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return rig_part_fail(p, RIG_E_NODEV,
					     "no USB hub with %s=%s (list hubs and their serials with `uhubctl` or `lsusb -v`)",
					     c->serial_key, c->serial);
		if (rc > 2)
			return rig_part_fail(p, RIG_E_INVAL,
					     "%d hubs have %s=%s (%s, %s, ...): name it by %s = location",
					     rc, c->serial_key, c->serial, found[0], found[1], c->hub_key);
		hp->n = rc;
		for (int i = 0; i < rc; i++)
			fmt(hp->t[i].loc, LOC_MAX, "%s", found[i]);
	}

	/* sysfs first: the port's disable attribute, and its peer for the companion. */
	sys = probe_sysfs(p, &hp->t[0], c->port, peer, sizeof(peer));
	if (sys < 0)
		return sys;
	if (hp->n == 1 && peer[0]) {
		snprintf(hp->t[1].loc, LOC_MAX, "%s", peer);
		hp->n = 2;
	}
	if (hp->n == 2) {
		rc = probe_sysfs(p, &hp->t[1], c->port, peer, sizeof(peer));
		if (rc < 0)
			return rc;
		sys += rc;
	}
	if (sys == hp->n) {
		rig_dbg(rig_part_ctx(p), "%s port %d through sysfs%s%s", hp->t[0].loc, c->port,
			hp->n == 2 ? ", with its companion " : "", hp->n == 2 ? hp->t[1].loc : "");
		return 0;
	}

	/* libusb for all of them: one way to switch the two halves. */
	for (int i = 0; i < 2; i++)
		hp->t[i].port[0] = 0;
	rc = rig_usb_ctx(rig_part_ctx(p), &hp->usb);
	if (rc < 0)
		return rig_part_fail(p, rc, "cannot initialise libusb: %s", rig_strerror(rc));
	if (hp->n == 1 && usb_companion(p, hp->usb, hp->t[0].loc, hp->t[1].loc, LOC_MAX))
		hp->n = 2;
	for (int i = 0; i < hp->n; i++) {
		rc = usb_check_hub(p, &hp->t[i], c->port, timeout_ms);
		if (rc < 0)
			return rc;
	}
	rig_dbg(rig_part_ctx(p), "%s port %d through libusb%s%s", hp->t[0].loc, c->port,
		hp->n == 2 ? ", with its companion " : "", hp->n == 2 ? hp->t[1].loc : "");
	return 0;
}

int rig_hubport_set(struct rig_part *p, const struct rig_hubport *hp, bool on, int timeout_ms)
{
	int rc = 0;

	assert(hp->n > 0);
	/*
	 * Hub requests cannot be interrupted, so the cancel flag is seen before the first;
	 * once begun, both halves of a USB3 hub are switched (each bounded by @timeout_ms),
	 * never only one, which would leave VBUS up.
	 */
	if (rig_ctx_cancelled(rig_part_ctx(p)))
		return rig_part_fail(p, RIG_E_INTR, "hub %s port %d: interrupted before switching",
				     hp->t[0].loc, hp->port);
	for (int i = 0; i < hp->n && rc == 0; i++)
		rc = hp->t[i].port[0] ? sysfs_set(p, &hp->t[i], on)
				      : usb_set(p, &hp->t[i], hp->port, on, timeout_ms);
	return rc;
}

/* VBUS is up while either half of a USB3 hub powers the port. */
int rig_hubport_get(struct rig_part *p, const struct rig_hubport *hp, bool *on, int timeout_ms)
{
	bool any = false, v = false;
	int rc = 0;

	assert(hp->n > 0);
	if (rig_ctx_cancelled(rig_part_ctx(p)))
		return rig_part_fail(p, RIG_E_INTR, "hub %s port %d: interrupted", hp->t[0].loc,
				     hp->port);
	for (int i = 0; i < hp->n && rc == 0; i++) {
		rc = hp->t[i].port[0] ? sysfs_get(p, &hp->t[i], &v)
				      : usb_get(p, &hp->t[i], hp->port, &v, timeout_ms);
		any = any || v;
	}
	if (rc == 0)
		*on = any;
	return rc;
}

/* ---- the power back-end ---- */

static int uhub_open(struct rig_part *p)
{
	const struct uhub_conf *c = p->conf;
	const struct rig_hubport_conf hc = {
		.hub = c->hub ? c->hub : c->usb.port[0] ? c->usb.port : NULL,
		.serial = c->usb.serial[0] ? c->usb.serial : NULL,
		.port = c->port,
		.hub_key = "hub", .serial_key = "usb_serial", .port_key = "port",
	};

	if (c->usb.vid >= 0 || c->usb.nprops)
		return rig_part_fail(p, RIG_E_INVAL, "a hub is named by its location (hub or usb_path) "
				     "or usb_serial, not by vid_pid or udev properties");
	if (c->hub && c->usb.port[0])
		return rig_part_fail(p, RIG_E_INVAL, "name the hub by exactly one of hub (location "
				     "like \"1-1.4\") or usb_serial; usb_path is the same as hub");
	return rig_hubport_init(p, p->priv, &hc,
				rig_ctx_clamp(rig_part_ctx(p), p->common.timeout_ms));
}

static int uhub_set(struct rig_part *p, bool on, int timeout_ms)
{
	return rig_hubport_set(p, p->priv, on, timeout_ms);
}

static int uhub_get(struct rig_part *p, bool *on, int timeout_ms)
{
	return rig_hubport_get(p, p->priv, on, timeout_ms);
}

#define P(f) offsetof(struct uhub_conf, f)
static const struct rig_param uhub_params[] = {
	{ "hub", RIG_P_STR, P(hub), false, "hub location as uhubctl and lsusb -t show it: \"1-1.4\"" },
	{ "usb", RIG_P_USB, P(usb), false, "...or the hub's usb_serial (usb_path: the same as hub)" },
	{ "port", RIG_P_INT, P(port), true, "port of that hub the DUT is powered from (1-based)" },
	RIG_PARAMS_END
};
#undef P

static const struct rig_power_ops uhub_power_ops = { .set = uhub_set, .get = uhub_get };

const struct rig_backend rig_power_uhub = {
	.role = RIG_ROLE_POWER,
	.name = "uhub",
	.help = "VBUS of one USB hub port (hubs with per-port power switching), sysfs or libusb",
	.doc = "docs/hardware/uhub.md",
	.params = uhub_params,
	.conf_size = sizeof(struct uhub_conf),
	.priv_size = sizeof(struct rig_hubport),
	.open = uhub_open,
	.ops.power = &uhub_power_ops,
};
