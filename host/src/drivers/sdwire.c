/* SPDX-License-Identifier: MIT */
/*
 * sdwire: the SD mux of a Tizen SDWire or Badgerd SDWireC, through the CBUS bit-bang
 * of its FTDI FT200X, with libusb-1.0 directly (docs/hardware/sdwire.md).
 *
 * CBUS0 drives the mux select (SOCKET_SEL). One vendor request on EP0 switches it:
 * SIO_SET_BITMODE (0x40/0x0B) with wValue = BITMODE_CBUS << 8 | mask, wIndex 1, where
 * the mask's high nibble makes CBUS0..3 outputs and its low nibble sets their levels:
 * 0xF1 (CBUS0 high) = host ("TS"), 0xF0 = DUT. SIO_READ_PINS (0xC0/0x0C) answers one
 * byte whose bit 0 is the level of CBUS0: that is how `get` reads the side back. This
 * is what sd-mux-ctrl does through libftdi; we need neither libftdi's EEPROM code nor
 * its detaching of ftdi_sio: usbfs lets vendor requests to EP0 through without
 * claiming an interface. The hardware has no "off" position.
 *
 * Devices are told apart by their USB serial (written by `sd-mux-ctrl --set-serial`);
 * with none given there must be exactly one SDWire. The handle is kept while the rig
 * is open and found again after the device went away and came back.
 *
 * libusb's timeout 0 means "forever"; ours -1 does. Each part has its own libusb
 * context, so two rigs (or two muxes) in one process do not share state.
 */
#define LOG_PREFIX "sdwire"
#include <stdlib.h>
#include <string.h>

#include <libusb.h>

#include "../internal.h"

#define SDWIRE_VID 0x04e8
#define SDWIRE_PID 0x6001
#define SDWIRE_PRODUCT "sd-wire"
#define FTDI_OUT 0x40               /* vendor | device | host-to-device */
#define FTDI_IN 0xC0
#define SIO_SET_BITMODE 0x0B
#define SIO_READ_PINS 0x0C
#define BITMODE_CBUS 0x20
#define FTDI_INDEX 1                /* interface A */
#define CBUS_HOST 0xF1              /* CBUS0..3 outputs, CBUS0 high: host ("TS") */
#define CBUS_DUT 0xF0
#define STRING_TIMEOUT_MS 1000
#define SEEN_MAX 768

struct sdwire_conf {
	/* no serial: the only SDWire attached; no vid_pid: 04e8:6001 and product "sd-wire" */
	struct rig_usb_match usb;
};

struct sdwire_priv {
	libusb_context *usb;
	libusb_device_handle *h;    /* NULL until found, and after the device went away */
	int vid, pid;
	bool check_product;
	char where[160];            /* "serial X at 1-1.4", for messages */
};

/* Translate a LIBUSB_ERROR_* at the boundary; records the message on the part. */
static int usb_fail(struct rig_part *p, int r, const char *what, int timeout_ms)
{
	switch (r) {
	case LIBUSB_ERROR_NO_DEVICE:
		return rig_part_fail(p, RIG_E_NODEV, "%s: the SDWire is gone (unplugged?)", what);
	case LIBUSB_ERROR_TIMEOUT:
		return rig_part_fail(p, RIG_E_TIMEOUT, "%s: no answer within %d ms", what,
				     timeout_ms);
	case LIBUSB_ERROR_PIPE:
		return rig_part_fail(p, RIG_E_IO, "%s: device stalled the request", what);
	case LIBUSB_ERROR_ACCESS:
		return rig_part_fail(p, RIG_E_IO,
				     "%s: permission denied: install the udev rule in docs/hardware/sdwire.md",
				     what);
	case LIBUSB_ERROR_NO_MEM:
		return rig_part_fail(p, RIG_E_NOMEM, "%s: out of memory", what);
	case LIBUSB_ERROR_BUSY:
		return rig_part_fail(p, RIG_E_BUSY, "%s: the device is busy", what);
	case LIBUSB_ERROR_INTERRUPTED:
		return rig_part_fail(p, RIG_E_INTR, "%s: interrupted", what);
	default:
		return rig_part_fail(p, RIG_E_IO, "%s: %s", what, libusb_strerror(r));
	}
}

static void seen_add(char *seen, size_t *o, const char *fmt, const char *a, const char *b)
{
	if (*o < SEEN_MAX)
		*o += (size_t)snprintf(seen + *o, SEEN_MAX - *o, fmt, *o ? ", " : "", a, b);
}

/*
 * Find the configured SDWire and keep a handle to it in the part. Everything seen on
 * the way goes into the error message, so a wrong serial shows the right one.
 */
static int sdwire_find(struct rig_part *p)
{
	const struct sdwire_conf *c = p->conf;
	struct sdwire_priv *pv = p->priv;
	libusb_device **list;
	libusb_device_handle *found = NULL;
	char seen[SEEN_MAX] = "", path[32], serial[128], product[128], want[300];
	size_t o = 0;
	ssize_t n;
	int nfound = 0, denied = 0, rc = 0;

	n = libusb_get_device_list(pv->usb, &list);
	if (n < 0)
		return usb_fail(p, (int)n, "listing USB devices", 0);
	for (ssize_t i = 0; i < n; i++) {
		struct libusb_device_descriptor d;
		libusb_device_handle *h;
		int r;

		if (libusb_get_device_descriptor(list[i], &d) < 0 || d.idVendor != pv->vid ||
		    d.idProduct != pv->pid)
			continue;
		if (!rig_usb_port_match(list[i], c->usb.port[0] ? c->usb.port : NULL, path,
					sizeof(path))) {
			seen_add(seen, &o, "%s%s at %s", "a device", path);
			continue;
		}
		r = libusb_open(list[i], &h);
		if (r < 0) {
			denied += r == LIBUSB_ERROR_ACCESS;
			seen_add(seen, &o, "%s%s (cannot open: %s)", path,
				 libusb_strerror(r));
			continue;
		}
		serial[0] = product[0] = 0;
		if (d.iSerialNumber &&
		    libusb_get_string_descriptor_ascii(h, d.iSerialNumber, (unsigned char *)serial,
						       sizeof(serial)) < 0)
			serial[0] = 0;
		if (d.iProduct &&
		    libusb_get_string_descriptor_ascii(h, d.iProduct, (unsigned char *)product,
						       sizeof(product)) < 0)
			product[0] = 0;
		if (pv->check_product && strcmp(product, SDWIRE_PRODUCT)) {
			seen_add(seen, &o, "%sproduct '%s' at %s (not an SDWire)", product, path);
			libusb_close(h);
			continue;
		}
		seen_add(seen, &o, "%sserial '%s' at %s", serial, path);
		if ((c->usb.serial[0] && strcmp(c->usb.serial, serial)) || found) {
			nfound += !c->usb.serial[0] || !strcmp(c->usb.serial, serial);
			libusb_close(h);
			continue;
		}
		found = h;
		nfound++;
		snprintf(pv->where, sizeof(pv->where), "serial '%s' at %s", serial, path);
	}
	libusb_free_device_list(list, 1);
	snprintf(want, sizeof(want), "SDWire (USB %04x:%04x%s%s%s%s%s)", (unsigned)pv->vid,
		 (unsigned)pv->pid, c->usb.serial[0] ? ", serial '" : "", c->usb.serial,
		 c->usb.serial[0] ? "'" : "", c->usb.port[0] ? " at " : "", c->usb.port);
	if (nfound == 0) {
		/* Unreadable candidates may include it: that is the error to fix, not absence. */
		rc = rig_part_fail(p, denied ? RIG_E_IO : RIG_E_NODEV, "no %s found; seen: %s%s", want,
				   o ? seen : "nothing with that VID:PID",
				   denied ? "; permission denied: install the udev rule in docs/hardware/sdwire.md" : "");
	} else if (nfound > 1) {
		rc = rig_part_fail(p, RIG_E_INVAL,
				   "%d SDWires attached; name one with usb_serial (or usb_path): %s",
				   nfound, seen);
	}
	if (rc < 0) {
		if (found)
			libusb_close(found);
		return rc;
	}
	pv->h = found;
	rig_dbg(rig_part_ctx(p), "using the SDWire with %s", pv->where);
	return 0;
}

/* One control request, finding the device again once if it went away since last time. */
static int sdwire_control(struct rig_part *p, uint8_t type, uint8_t req, uint16_t value,
			  unsigned char *data, uint16_t len, int timeout_ms, const char *what)
{
	struct sdwire_priv *pv = p->priv;
	int r, rc;

	for (int attempt = 0;; attempt++) {
		bool fresh = pv->h == NULL;

		if (fresh) {
			rc = sdwire_find(p);
			if (rc < 0)
				return rc;
		}
		r = libusb_control_transfer(pv->h, type, req, value, FTDI_INDEX, data, len,
					    rig_usb_timeout(timeout_ms));
		if (r >= 0)
			return r;
		if (r == LIBUSB_ERROR_NO_DEVICE) {
			libusb_close(pv->h);
			pv->h = NULL;
			if (!fresh && attempt == 0)
				continue;   /* a stale handle: the device may be back */
		}
		return usb_fail(p, r, what, timeout_ms);
	}
}

static int sdwire_set(struct rig_part *p, enum rig_mux m, int timeout_ms)
{
	uint8_t mask = m == RIG_MUX_HOST ? CBUS_HOST : CBUS_DUT;
	int r;

	if (m == RIG_MUX_OFF)
		return rig_part_fail(p, RIG_E_NOTSUP,
				     "an SDWire has no 'off' position: the card is always on the host or the DUT");
	r = sdwire_control(p, FTDI_OUT, SIO_SET_BITMODE, (uint16_t)(BITMODE_CBUS << 8 | mask),
			   NULL, 0, timeout_ms, m == RIG_MUX_HOST ? "switching to the host"
								  : "switching to the DUT");
	return r < 0 ? r : 0;
}

static int sdwire_get(struct rig_part *p, enum rig_mux *m, int timeout_ms)
{
	unsigned char pins = 0;
	int r = sdwire_control(p, FTDI_IN, SIO_READ_PINS, 0, &pins, 1, timeout_ms,
			       "reading the CBUS pins");

	if (r < 0)
		return r;
	if (r != 1)
		return rig_part_fail(p, RIG_E_PROTO, "reading the CBUS pins: %d bytes instead of 1",
				     r);
	*m = (pins & 1) ? RIG_MUX_HOST : RIG_MUX_DUT;
	return 0;
}

static void sdwire_close(struct rig_part *p)
{
	struct sdwire_priv *pv = p->priv;

	if (pv->h)
		libusb_close(pv->h);
	pv->h = NULL;
	if (pv->usb)
		libusb_exit(pv->usb);
	pv->usb = NULL;
}

static int sdwire_open(struct rig_part *p)
{
	const struct sdwire_conf *c = p->conf;
	struct sdwire_priv *pv = p->priv;
	int r;

	pv->check_product = c->usb.vid < 0;
	pv->vid = pv->check_product ? SDWIRE_VID : c->usb.vid;
	pv->pid = pv->check_product ? SDWIRE_PID : c->usb.pid;
	r = libusb_init(&pv->usb);
	if (r < 0) {
		pv->usb = NULL;
		return usb_fail(p, r, "starting libusb", 0);
	}
	r = sdwire_find(p);
	if (r < 0)
		sdwire_close(p);    /* the core does not call close() after a failed open() */
	return r;
}

#define P(f) offsetof(struct sdwire_conf, f)
static const struct rig_param sdwire_params[] = {
	{ "usb", RIG_P_USB, P(usb), false, "the SDWire's FTDI: usb_serial (lsusb -v: iSerial; required when several are attached), usb_path, vid_pid when re-programmed (default 04e8:6001 with product 'sd-wire'), udev" },
	RIG_PARAMS_END
};
#undef P

static const struct rig_sdmux_ops sdwire_ops = { .set = sdwire_set, .get = sdwire_get };

const struct rig_backend rig_sdmux_sdwire = {
	.role = RIG_ROLE_SDMUX,
	.name = "sdwire",
	.help = "SDWire / SDWireC SD mux (FTDI FT200X CBUS0) over libusb, chosen by USB serial",
	.params = sdwire_params,
	.conf_size = sizeof(struct sdwire_conf),
	.priv_size = sizeof(struct sdwire_priv),
	.open = sdwire_open,
	.close = sdwire_close,
	.ops.sdmux = &sdwire_ops,
};
