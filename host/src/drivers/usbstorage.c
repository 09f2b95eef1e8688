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
	struct rig_usb_match usb;
};

static int usb_resolve(struct rig_part *p, char *buf, size_t len, char *why, size_t whylen)
{
	const struct usb_conf *c = p->conf;
	struct rig_usb_id id;
	char msg[1024];
	int rc;

	if (rig_usb_match_empty(&c->usb))
		return rig_part_fail(p, RIG_E_INVAL,
				     "name the card reader: usb_serial, usb_path, vid_pid or udev (see 'rigor storage status')");
	rc = rig_sysfs_find(RIG_DEV_BLOCK, &c->usb, &id, msg, sizeof(msg));
	if (rc < 0)
		return rig_part_fail(p, rc, "%s", msg);
	snprintf(buf, len, "%s", id.dev);
	if (whylen)
		snprintf(why, whylen, "%s", msg);
	return 0;
}

static const struct rig_param usb_params[] = {
	{ "usb", RIG_P_USB, offsetof(struct usb_conf, usb), false,
	  "the card reader or mux: usb_serial, usb_path (1-1.4), vid_pid (0424:4041), udev" },
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
