/* SPDX-License-Identifier: MIT */
/*
 * usb: the SD card as the host sees it, a whole-disk block device found through sysfs by
 * the USB identity of the card reader or mux (serial, port path, VID:PID), never by
 * /dev/sdX order, which changes with every replug.
 */
#define LOG_PREFIX "usbstorage"
#include <string.h>

#include "../internal.h"

struct usb_conf {
	char *usb_serial;
	char *usb_path;
	char *vid_pid;
};

static int usb_resolve(struct rig_part *p, char *buf, size_t len, char *why, size_t whylen)
{
	const struct usb_conf *c = p->conf;
	struct rig_usb_match m;
	struct rig_usb_id id;
	char msg[1024];
	int rc;

	rig_usb_match_init(&m);
	m.serial = c->usb_serial;
	m.port = c->usb_path;
	if (c->vid_pid && rig_usb_parse_vid_pid(c->vid_pid, &m.vid, &m.pid) < 0)
		return rig_part_fail(p, RIG_E_INVAL, "vid_pid '%s': expected VID:PID in hex, e.g. 0424:4041",
				     c->vid_pid);
	if (!c->usb_serial && !c->usb_path && !c->vid_pid)
		return rig_part_fail(p, RIG_E_INVAL,
				     "name the card reader: usb_serial, usb_path or vid_pid (see 'rigor storage status')");
	rc = rig_sysfs_find(NULL, RIG_DEV_BLOCK, &m, &id, msg, sizeof(msg));
	if (rc < 0)
		return rig_part_fail(p, rc, "%s", msg);
	snprintf(buf, len, "%s", id.dev);
	if (whylen)
		snprintf(why, whylen, "%s", msg);
	return 0;
}

static const struct rig_param usb_params[] = {
	{ "usb_serial", RIG_P_STR, offsetof(struct usb_conf, usb_serial), false,
	  "USB serial number of the card reader or mux" },
	{ "usb_path", RIG_P_STR, offsetof(struct usb_conf, usb_path), false,
	  "USB port path of the reader, e.g. 1-1.4" },
	{ "vid_pid", RIG_P_STR, offsetof(struct usb_conf, vid_pid), false,
	  "USB VID:PID of the reader, e.g. 0424:4041" },
	RIG_PARAMS_END
};

static const struct rig_storage_ops usb_ops = { .resolve = usb_resolve };

const struct rig_backend rig_storage_usb = {
	.role = RIG_ROLE_STORAGE,
	.name = "usb",
	.help = "the card as a USB block device, found by reader serial, port path or VID:PID",
	.params = usb_params,
	.conf_size = sizeof(struct usb_conf),
	.ops.storage = &usb_ops,
};
