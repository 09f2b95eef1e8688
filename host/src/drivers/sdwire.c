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
 * libusb's timeout 0 means "forever"; ours -1 does. The libusb context is the rig
 * context's (usb.c), as are the finder and the error translation.
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

struct sdwire_conf {
	/* no serial: the only SDWire attached; no vid_pid: 04e8:6001 and product "sd-wire" */
	struct rig_usb_match usb;
};

struct sdwire_priv {
	libusb_device_handle *h;    /* NULL until found, and after the device went away */
	int vid, pid;
	bool check_product;
	char where[200];            /* "serial X at 1-1.4", for messages */
};

/*
 * Find the configured SDWire and keep a handle to it in the part. The finder lists
 * everything it saw in the message, so a wrong serial shows the right one.
 */
static int sdwire_find(struct rig_part *p)
{
	const struct sdwire_conf *c = p->conf;
	struct sdwire_priv *pv = p->priv;
	struct rig_usb_match m = c->usb;
	struct rig_usb_want w = {
		.noun = "an SDWire", .product = pv->check_product ? SDWIRE_PRODUCT : NULL,
		.strings = true,
	};
	struct rig_usb_dev d;
	char list[1024], want[300];
	int n, r, rc;

	m.vid = pv->vid;
	m.pid = pv->pid;
	rc = rig_usb_find(rig_part_ctx(p), &m, &w, &d, &n, list, sizeof(list));
	rig_usb_match_describe(&m, want, sizeof(want));
	if (rc == RIG_E_INVAL)
		return rig_part_fail(p, rc, "%d SDWires attached; name one with usb_serial (or usb_path): %s",
				     n, list);
	if (rc < 0)
		/* Unreadable candidates may include it: that is the error to fix, not absence. */
		return rig_part_fail(p, rc, "no SDWire (%s) found; seen: %s%s", want,
				     list[0] ? list : "nothing with that VID:PID",
				     rc == RIG_E_IO ? " in docs/hardware/sdwire.md" : "");
	r = libusb_open(d.dev, &pv->h);
	libusb_unref_device(d.dev);
	if (r < 0) {
		pv->h = NULL;
		return rig_usb_fail(p, r, -1, "opening the SDWire at %s", d.port);
	}
	snprintf(pv->where, sizeof(pv->where), "serial '%s' at %s", d.serial, d.port);
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
		return rig_usb_fail(p, r, timeout_ms, "%s", what);
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
}

static int sdwire_open(struct rig_part *p)
{
	const struct sdwire_conf *c = p->conf;
	struct sdwire_priv *pv = p->priv;
	int r;

	pv->check_product = c->usb.vid < 0;
	pv->vid = pv->check_product ? SDWIRE_VID : c->usb.vid;
	pv->pid = pv->check_product ? SDWIRE_PID : c->usb.pid;
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
	.doc = "docs/hardware/sdwire.md",
	.params = sdwire_params,
	.conf_size = sizeof(struct sdwire_conf),
	.priv_size = sizeof(struct sdwire_priv),
	.open = sdwire_open,
	.close = sdwire_close,
	.ops.sdmux = &sdwire_ops,
};
