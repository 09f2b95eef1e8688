/* SPDX-License-Identifier: MIT */
/*
 * USB identity of device nodes, through libudev: "the tty under USB port 1-1.4,
 * interface 1", "the disk with USB serial 000000001234", "the sg node whose udev
 * ID_SERIAL_SHORT is ...". Shared by the console, storage and usbsdmux back-ends. libudev
 * walks sysfs and reads the udev database (the properties a rig file's udev = { } names),
 * so this file only matches and explains; tests give libudev a fake /sys through
 * umockdev's preload (UMOCKDEV_DIR).
 */
#define LOG_PREFIX "sysfs"
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libudev.h>

#include "internal.h"

static const char *const class_subsys[] = {
	[RIG_DEV_TTY] = "tty", [RIG_DEV_BLOCK] = "block", [RIG_DEV_SG] = "scsi_generic",
};
static const char *const class_nouns[] = {
	[RIG_DEV_TTY] = "tty", [RIG_DEV_BLOCK] = "disk", [RIG_DEV_SG] = "sg node",
};

static void copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

/* Fill @id from node device @nd; RIG_E_NODEV when it is not on USB. */
static int usb_id_of(struct udev_device *nd, struct rig_usb_id *id)
{
	struct udev_device *usb, *intf;
	const char *v;

	memset(id, 0, sizeof(*id));
	id->interface = -1;
	copy(id->node, sizeof(id->node), udev_device_get_sysname(nd));
	v = udev_device_get_devnode(nd);
	if (v)
		copy(id->dev, sizeof(id->dev), v);
	else
		snprintf(id->dev, sizeof(id->dev), "/dev/%s", id->node);
	/* parents belong to @nd: not unref'd here */
	usb = udev_device_get_parent_with_subsystem_devtype(nd, "usb", "usb_device");
	if (!usb)
		return RIG_E_NODEV;
	intf = udev_device_get_parent_with_subsystem_devtype(nd, "usb", "usb_interface");
	if (intf && (v = udev_device_get_sysattr_value(intf, "bInterfaceNumber")))
		id->interface = (int)strtol(v, NULL, 16);
	v = udev_device_get_sysattr_value(usb, "idVendor");
	id->vid = v ? (int)strtol(v, NULL, 16) : -1;
	v = udev_device_get_sysattr_value(usb, "idProduct");
	id->pid = v ? (int)strtol(v, NULL, 16) : -1;
	copy(id->serial, sizeof(id->serial), udev_device_get_sysattr_value(usb, "serial"));
	copy(id->product, sizeof(id->product), udev_device_get_sysattr_value(usb, "product"));
	copy(id->port, sizeof(id->port), udev_device_get_sysname(usb));
	return 0;
}

int rig_sysfs_usb_id(enum rig_devclass cls, const char *node, struct rig_usb_id *id)
{
	struct udev *udev = udev_new();
	struct udev_device *nd;
	int rc;

	assert((unsigned)cls < RIG_ARRAY_SIZE(class_subsys));
	if (!udev)
		return RIG_E_NOMEM;
	nd = udev_device_new_from_subsystem_sysname(udev, class_subsys[cls], node);
	rc = nd ? usb_id_of(nd, id) : RIG_E_NODEV;
	udev_device_unref(nd);
	udev_unref(udev);
	return rc;
}

/*
 * A udev property of the node or, failing that, of its USB device (ID_SERIAL_SHORT is
 * the node's; a hand-written rule may tag either).
 */
static const char *prop(struct udev_device *nd, const char *name)
{
	struct udev_device *usb;
	const char *v = udev_device_get_property_value(nd, name);

	if (v)
		return v;
	usb = udev_device_get_parent_with_subsystem_devtype(nd, "usb", "usb_device");
	return usb ? udev_device_get_property_value(usb, name) : NULL;
}

static bool matches(const struct rig_usb_match *m, struct udev_device *nd,
		    const struct rig_usb_id *id)
{
	if (m->serial[0] && strcmp(m->serial, id->serial))
		return false;
	if (m->vid >= 0 && (m->vid != id->vid || m->pid != id->pid))
		return false;
	if (m->port[0] && strcmp(m->port, id->port))
		return false;
	if (m->interface >= 0 && m->interface != id->interface)
		return false;
	for (int i = 0; i < m->nprops; i++) {
		const char *v = prop(nd, m->prop[i].name);

		if (!v || strcmp(v, m->prop[i].value))
			return false;
	}
	return true;
}

int rig_usb_id_describe(const struct rig_usb_id *id, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s (USB %04x:%04x", id->dev, (unsigned)id->vid,
			 (unsigned)id->pid);

	if (id->serial[0])
		n += snprintf(buf + n, len > (size_t)n ? len - (size_t)n : 0, " serial %s",
			      id->serial);
	n += snprintf(buf + n, len > (size_t)n ? len - (size_t)n : 0, " at %s", id->port);
	if (id->interface >= 0)
		n += snprintf(buf + n, len > (size_t)n ? len - (size_t)n : 0, " interface %d",
			      id->interface);
	if (id->product[0])
		n += snprintf(buf + n, len > (size_t)n ? len - (size_t)n : 0, ", %s", id->product);
	n += snprintf(buf + n, len > (size_t)n ? len - (size_t)n : 0, ")");
	return n;
}

/* Append to a bounded message; silently truncates. */
static void cat(char *buf, size_t len, size_t *o, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void cat(char *buf, size_t len, size_t *o, const char *fmt, ...)
{
	va_list ap;

	if (*o >= len)
		return;
	va_start(ap, fmt);
	*o += (size_t)vsnprintf(buf + *o, len - *o, fmt, ap);
	va_end(ap);
}

/* The class's devices in name order, as the old directory scan listed them. */
static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int rig_sysfs_find(enum rig_devclass cls, const struct rig_usb_match *m,
		   struct rig_usb_id *out, char *why, size_t whylen)
{
	char want[400], one[400], seen[2048] = "", cands[2048] = "";
	size_t so = 0, co = 0, wo = 0, n = 0;
	int nusb = 0, nmatch = 0, err = 0;
	struct udev *udev;
	struct udev_enumerate *en = NULL;
	struct udev_list_entry *e;
	const char **paths = NULL;

	assert((unsigned)cls < RIG_ARRAY_SIZE(class_subsys));
	if (whylen)
		why[0] = 0;
	if (rig_usb_match_describe(m, want, sizeof(want)) < 0) {
		cat(why, whylen, &wo, "no USB identity given (usb_serial, vid_pid, usb_path, udev)");
		return RIG_E_INVAL;
	}
	udev = udev_new();
	if (udev)
		en = udev_enumerate_new(udev);
	if (!en || udev_enumerate_add_match_subsystem(en, class_subsys[cls]) < 0 ||
	    (cls == RIG_DEV_BLOCK && udev_enumerate_add_match_property(en, "DEVTYPE", "disk") < 0) ||
	    (err = -udev_enumerate_scan_devices(en)) > 0) {
		cat(why, whylen, &wo, "no %s matches %s (cannot list %s devices through udev: %s)",
		    class_nouns[cls], want, class_subsys[cls], strerror(err ? err : ENOMEM));
		udev_enumerate_unref(en);
		udev_unref(udev);
		return RIG_E_NODEV;
	}
	udev_list_entry_foreach(e, udev_enumerate_get_list_entry(en))
		n++;
	paths = calloc(n ? n : 1, sizeof(*paths));
	n = 0;
	udev_list_entry_foreach(e, udev_enumerate_get_list_entry(en))
		if (paths)
			paths[n++] = udev_list_entry_get_name(e);
	qsort(paths, n, sizeof(*paths), by_name);
	for (size_t i = 0; i < n; i++) {
		struct udev_device *nd = udev_device_new_from_syspath(udev, paths[i]);
		struct rig_usb_id id;

		if (!nd)
			continue;
		/* whole disks only: a partition's DEVTYPE is "partition" */
		if (usb_id_of(nd, &id) < 0) {
			udev_device_unref(nd);
			continue;
		}
		nusb++;
		rig_usb_id_describe(&id, one, sizeof(one));
		cat(seen, sizeof(seen), &so, "%s%s", so ? ", " : "", one);
		if (matches(m, nd, &id)) {
			if (nmatch++ == 0 && out)
				*out = id;
			cat(cands, sizeof(cands), &co, "%s%s", co ? ", " : "", one);
		}
		udev_device_unref(nd);
	}
	free(paths);
	udev_enumerate_unref(en);
	udev_unref(udev);
	if (nmatch == 1) {
		cat(why, whylen, &wo, "%s matched %s", cands, want);
		return 0;
	}
	if (nmatch > 1) {
		cat(why, whylen, &wo, "%s is ambiguous: %d %ss match: %s; add %s", want, nmatch,
		    class_nouns[cls], cands,
		    m->interface < 0 ? "interface or usb_path" : "usb_path or usb_serial");
		return RIG_E_INVAL;
	}
	cat(why, whylen, &wo, "no %s matches %s (searched udev's %s devices: ", class_nouns[cls],
	    want, class_subsys[cls]);
	if (!nusb)
		cat(why, whylen, &wo, "no USB %ss present)", class_nouns[cls]);
	else
		cat(why, whylen, &wo, "USB %ss present: %s)", class_nouns[cls], seen);
	return RIG_E_NODEV;
}
