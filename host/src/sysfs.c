/* SPDX-License-Identifier: MIT */
/*
 * USB identity of device nodes, read from sysfs: "the tty under USB port 1-1.4,
 * interface 1", "the disk with USB serial 000000001234". Shared by the console back-ends
 * and the flash engine. Everything is read below an optional root prefix so the tests can
 * build a fake /sys in a temporary directory.
 */
#define LOG_PREFIX "sysfs"
#include <assert.h>
#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static const char *const class_dirs[] = {
	[RIG_DEV_TTY] = "tty", [RIG_DEV_BLOCK] = "block", [RIG_DEV_SG] = "scsi_generic",
};
static const char *const class_nouns[] = {
	[RIG_DEV_TTY] = "tty", [RIG_DEV_BLOCK] = "disk", [RIG_DEV_SG] = "sg node",
};

const char *rig_sysfs_root(const char *root)
{
	if (root)
		return root;
	root = getenv("RIGOR_SYSFS_ROOT");
	return root ? root : "";
}

/* @dir/@name into @buf; false when it does not fit. */
static bool join(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n >= 0 && (size_t)n < len;
}

/* Read the first line of @dir/@name into @buf; false if missing or empty. */
static bool read_attr(const char *dir, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX + 64];
	FILE *f;
	size_t n;

	buf[0] = 0;
	if (!join(path, sizeof(path), dir, name))
		return false;
	f = fopen(path, "re");
	if (!f)
		return false;
	if (!fgets(buf, (int)len, f))
		buf[0] = 0;
	fclose(f);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return n > 0;
}

static bool has_attr(const char *dir, const char *name)
{
	char path[PATH_MAX + 64];

	return join(path, sizeof(path), dir, name) && access(path, F_OK) == 0;
}

/* The DEVNAME from the node's uevent, else the node name itself. */
static void dev_name(const char *classpath, const char *node, char *buf, size_t len)
{
	char path[PATH_MAX + 64], line[256];
	FILE *f;

	snprintf(buf, len, "/dev/%s", node);
	if (!join(path, sizeof(path), classpath, "uevent"))
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "DEVNAME=", 8)) {
			line[strcspn(line, "\n")] = 0;
			if (!join(buf, len, "/dev", line + 8))
				snprintf(buf, len, "/dev/%s", node);
			break;
		}
	}
	fclose(f);
}

int rig_sysfs_usb_id(const char *root, enum rig_devclass cls, const char *node,
		     struct rig_usb_id *id)
{
	char classpath[PATH_MAX], real[PATH_MAX], top[PATH_MAX], v[64];
	size_t toplen;

	assert((unsigned)cls < RIG_ARRAY_SIZE(class_dirs));
	root = rig_sysfs_root(root);
	memset(id, 0, sizeof(*id));
	id->interface = -1;
	snprintf(id->node, sizeof(id->node), "%s", node);
	snprintf(classpath, sizeof(classpath), "%s/sys/class/%s/%s", root, class_dirs[cls], node);
	if (!realpath(classpath, real))
		return RIG_E_NODEV;
	snprintf(classpath, sizeof(classpath), "%s/sys", root);
	if (!realpath(classpath, top))
		return RIG_E_NODEV;
	dev_name(real, node, id->dev, sizeof(id->dev));
	toplen = strlen(top);
	/* Walk up from the node to the USB device, noting the interface on the way. */
	for (;;) {
		char *slash = strrchr(real, '/');

		if (!slash || (size_t)(slash - real) <= toplen)
			return RIG_E_NODEV;    /* not on USB */
		*slash = 0;
		if (id->interface < 0 && read_attr(real, "bInterfaceNumber", v, sizeof(v)))
			id->interface = (int)strtol(v, NULL, 16);
		if (has_attr(real, "idVendor") && has_attr(real, "idProduct"))
			break;
	}
	read_attr(real, "idVendor", v, sizeof(v));
	id->vid = (int)strtol(v, NULL, 16);
	read_attr(real, "idProduct", v, sizeof(v));
	id->pid = (int)strtol(v, NULL, 16);
	read_attr(real, "serial", id->serial, sizeof(id->serial));
	read_attr(real, "product", id->product, sizeof(id->product));
	snprintf(id->port, sizeof(id->port), "%s", strrchr(real, '/') + 1);
	return 0;
}

static bool matches(const struct rig_usb_match *m, const struct rig_usb_id *id)
{
	if (m->serial[0] && strcmp(m->serial, id->serial))
		return false;
	if (m->vid >= 0 && (m->vid != id->vid || m->pid != id->pid))
		return false;
	if (m->port[0] && strcmp(m->port, id->port))
		return false;
	if (m->interface >= 0 && m->interface != id->interface)
		return false;
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

int rig_sysfs_find(const char *root, enum rig_devclass cls, const struct rig_usb_match *m,
		   struct rig_usb_id *out, char *why, size_t whylen)
{
	char want[256], dir[PATH_MAX], one[400];
	char seen[2048] = "", cands[2048] = "";
	size_t so = 0, co = 0, wo = 0;
	struct dirent **ents = NULL;
	int n, serr, nusb = 0, nmatch = 0;
	struct rig_usb_id id;

	assert((unsigned)cls < RIG_ARRAY_SIZE(class_dirs));
	if (whylen)
		why[0] = 0;
	root = rig_sysfs_root(root);
	if (rig_usb_match_describe(m, want, sizeof(want)) < 0) {
		cat(why, whylen, &wo, "no USB identity given (usb_serial, vid_pid, usb_path)");
		return RIG_E_INVAL;
	}
	snprintf(dir, sizeof(dir), "%s/sys/class/%s", root, class_dirs[cls]);
	n = scandir(dir, &ents, NULL, alphasort);
	serr = errno;
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		char part[PATH_MAX + 300];

		if (name[0] == '.')
			continue;
		if (cls == RIG_DEV_BLOCK) {
			/* whole disks only: a partition has a "partition" attribute */
			snprintf(part, sizeof(part), "%s/%s", dir, name);
			if (has_attr(part, "partition"))
				continue;
		}
		if (rig_sysfs_usb_id(root, cls, name, &id) < 0)
			continue;
		nusb++;
		rig_usb_id_describe(&id, one, sizeof(one));
		cat(seen, sizeof(seen), &so, "%s%s", so ? ", " : "", one);
		if (!matches(m, &id))
			continue;
		if (nmatch++ == 0 && out)
			*out = id;
		cat(cands, sizeof(cands), &co, "%s%s", co ? ", " : "", one);
	}
	for (int i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
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
	cat(why, whylen, &wo, "no %s matches %s (searched %s: ", class_nouns[cls], want, dir);
	if (n < 0)
		cat(why, whylen, &wo, "cannot read it: %s)", strerror(serr));
	else if (!nusb)
		cat(why, whylen, &wo, "no USB %ss present)", class_nouns[cls]);
	else
		cat(why, whylen, &wo, "USB %ss present: %s)", class_nouns[cls], seen);
	return RIG_E_NODEV;
}
