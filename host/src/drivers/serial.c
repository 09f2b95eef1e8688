/* SPDX-License-Identifier: MIT */
/*
 * serial: the DUT console on a USB-UART adapter (or any tty), through libserialport: a
 * console over a serial: link (conlink.c, link/serial.c).
 *
 * The port is named by stable identity (USB serial, VID:PID, USB port path) resolved
 * in sysfs.c, or by a device path. An adapter that disappears mid-run (unplugged, reset
 * with the DUT, a hub that glitched) does not end the run: reads time out while it is
 * gone, the identity is resolved again every RECONNECT_MS, and when the port is back a
 * marker line goes into the console stream so the gap shows in the log.
 */
#define LOG_PREFIX "serial"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"

#define RECONNECT_MS 200

struct serial_conf {
	char *usb_serial, *vid_pid, *usb_path, *device;
	int interface;
	int baud, bits, stopbits;
	char *parity, *flow;
};

/* Parse the line settings once, at open. */
static int parse_settings(struct rig_part *p, const struct serial_conf *c,
			  struct rig_line_settings *s)
{
	static const char *const parities[] = { "none", "odd", "even", "mark", "space" };
	static const enum rig_parity parity_v[] = { RIG_PARITY_NONE, RIG_PARITY_ODD, RIG_PARITY_EVEN,
						    RIG_PARITY_MARK, RIG_PARITY_SPACE };
	static const char *const flows[] = { "none", "xonxoff", "rtscts", "dtrdsr" };
	static const enum rig_flow flow_v[] = { RIG_FLOW_NONE, RIG_FLOW_XONXOFF, RIG_FLOW_RTSCTS,
						RIG_FLOW_DTRDSR };
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
	s->parity = c->parity ? parity_v[i] : RIG_PARITY_NONE;
	for (i = 0; i < RIG_ARRAY_SIZE(flows) && c->flow && strcmp(c->flow, flows[i]); i++)
		;
	if (i == RIG_ARRAY_SIZE(flows))
		return rig_part_fail(p, RIG_E_INVAL,
				     "flow '%s': expected none, xonxoff, rtscts or dtrdsr", c->flow);
	s->flow = c->flow ? flow_v[i] : RIG_FLOW_NONE;
	return 0;
}

static int serial_open(struct rig_part *p)
{
	const struct serial_conf *c = p->conf;
	struct rig_usb_match m;
	struct rig_line_settings set;
	struct rig_conlink_conf cc = {
		.what = "console port", .retry_ms = RECONNECT_MS, .announce = true,
	};
	char uri[4200];
	int rc;

	rig_usb_match_init(&m);
	m.serial = c->usb_serial;
	m.port = c->usb_path;
	if (c->vid_pid && rig_usb_parse_vid_pid(c->vid_pid, &m.vid, &m.pid) < 0)
		return rig_part_fail(p, RIG_E_INVAL, "vid_pid '%s': expected hex VID:PID like 0403:6015",
				     c->vid_pid);
	if (c->interface < 0)
		return rig_part_fail(p, RIG_E_INVAL, "interface %d: must be 0 or more", c->interface);
	m.interface = c->interface > 0 ? c->interface : -1;
	if (!m.serial && m.vid < 0 && !m.port && !c->device)
		return rig_part_fail(p, RIG_E_INVAL,
				     "no port given: set usb_serial, vid_pid, usb_path or device");
	if (c->device && (m.serial || m.vid >= 0 || m.port))
		return rig_part_fail(p, RIG_E_INVAL,
				     "give either device or a USB identity (usb_serial, vid_pid, usb_path), not both");
	rc = parse_settings(p, c, &set);
	if (rc < 0)
		return rc;
	cc.opts.line = &set;
	if (!c->device) {
		cc.opts.usb = &m;
		cc.opts.usb_if_default = c->interface == 0;
	}
	if ((size_t)snprintf(uri, sizeof(uri), "serial:%s", c->device ? c->device : "") >= sizeof(uri))
		return rig_part_fail(p, RIG_E_INVAL, "device path too long");
	cc.uri = uri;
	rc = rig_conlink_open(p, &cc);
	if (rc == 0)
		rig_dbg(rig_part_ctx(p), "%s: at %d %d%c%d", p->label, set.baud, set.bits,
			"NOEMS"[set.parity], set.stopbits);
	return rc;
}

static const struct rig_param serial_params[] = {
	{ "usb_serial", RIG_P_STR, offsetof(struct serial_conf, usb_serial), false,
	  "USB serial number of the adapter (udevadm info: ID_SERIAL_SHORT)" },
	{ "vid_pid", RIG_P_STR, offsetof(struct serial_conf, vid_pid), false,
	  "USB vendor:product in hex, e.g. \"0403:6015\"" },
	{ "usb_path", RIG_P_STR, offsetof(struct serial_conf, usb_path), false,
	  "USB port path, e.g. \"1-1.4\" (the adapter's sysfs name)" },
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

const struct rig_backend rig_console_serial = {
	.role = RIG_ROLE_CONSOLE,
	.name = "serial",
	.help = "USB-UART or other tty by USB serial, VID:PID, port path or device; survives replugging",
	.params = serial_params,
	.conf_size = sizeof(struct serial_conf),
	.priv_size = RIG_CONLINK_PRIV_SIZE,
	.open = serial_open,
	.close = rig_conlink_close,
	.ops.console = &rig_conlink_ops,
};
