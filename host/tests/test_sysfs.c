/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the USB identity helpers (sysfs.c over libudev, usb.c's parsing) against
 * a fake /sys tree laid out as the kernel does (uevent files, subsystem links), which
 * libudev reads through umockdev's preload (UMOCKDEV_DIR): the program re-executes itself
 * under libumockdev-preload when started without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "fixtures/umockfx.h"

static char root[64];

static void mkdirs(const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *s = path + strlen(root) + 1; *s; s++) {
		if (*s == '/') {
			*s = 0;
			mkdir(path, 0755);
			*s = '/';
		}
	}
	mkdir(path, 0755);
}

static void put(const char *dir, const char *name, const char *val);

/* @dir/subsystem -> the subsystem's directory, as libudev reads a device's subsystem. */
static void subsystem(const char *dir, const char *where)
{
	char target[512], link[512];

	snprintf(target, sizeof(target), "%s/sys/%s", root, where);
	snprintf(link, sizeof(link), "%s/%s/subsystem", root, dir);
	unlink(link);
	assert_int_equal(symlink(target, link), 0);
}

/* A device directory libudev accepts: a uevent file (@uevent lines) and its subsystem. */
static void device(const char *dir, const char *where, const char *uevent)
{
	put(dir, "uevent", uevent);
	subsystem(dir, where);
}

static void put(const char *dir, const char *name, const char *val)
{
	char path[512];
	FILE *f;

	mkdirs(dir);
	snprintf(path, sizeof(path), "%s/%s/%s", root, dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", val);
	fclose(f);
}

/* /sys/class/<cls>/<node> -> ../../devices/<devpath>, as the kernel links them. */
static void node(const char *cls, const char *node, const char *devpath)
{
	char dir[256], target[512], link[512];

	snprintf(dir, sizeof(dir), "sys/devices/%s", devpath);
	mkdirs(dir);
	snprintf(dir, sizeof(dir), "sys/class/%s", cls);
	mkdirs(dir);
	snprintf(target, sizeof(target), "../../devices/%s", devpath);
	snprintf(link, sizeof(link), "%s/sys/class/%s/%s", root, cls, node);
	assert_int_equal(symlink(target, link), 0);
	snprintf(dir, sizeof(dir), "sys/devices/%s", devpath);
	snprintf(target, sizeof(target), "class/%s", cls);
	snprintf(link, sizeof(link), "DEVTYPE=%s",
		 strcmp(cls, "block") ? "" : strchr(node + 2, '1') ? "partition" : "disk");
	device(dir, target, strcmp(cls, "block") ? "" : link);
}

/* A USB interface directory: bInterfaceNumber @num. */
static void usbif(const char *dir, const char *num)
{
	put(dir, "bInterfaceNumber", num);
	device(dir, "bus/usb", "DEVTYPE=usb_interface");
}

static void usbdev(const char *dir, const char *vid, const char *pid, const char *serial,
		   const char *product)
{
	put(dir, "idVendor", vid);
	put(dir, "idProduct", pid);
	device(dir, "bus/usb", "DEVTYPE=usb_device");
	if (serial)
		put(dir, "serial", serial);
	if (product)
		put(dir, "product", product);
}

#define HUB "pci0000:00/0000:00:14.0/usb1"
#define HUB2 "pci0000:00/0000:00:14.0/usb2"

static int setup(void **state)
{
	snprintf(root, sizeof(root), "/tmp/rigor-sysfs-XXXXXX");
	assert_non_null(mkdtemp(root));
	/* hubs: they have USB attributes too, and must not be mistaken for adapters */
	usbdev("sys/devices/" HUB, "1d6b", "0002", "0000:00:14.0", "xHCI Host Controller");
	usbdev("sys/devices/" HUB "/1-1", "05e3", "0608", NULL, "USB2.0 Hub");
	/* a built-in UART: not on USB */
	node("tty", "ttyS0", "platform/serial8250/tty/ttyS0");
	/* two FT230X adapters, serials A1 and B2 */
	usbdev("sys/devices/" HUB "/1-1/1-1.4", "0403", "6015", "A1", "FT230X Basic UART");
	usbif("sys/devices/" HUB "/1-1/1-1.4/1-1.4:1.0", "00");
	node("tty", "ttyUSB0", HUB "/1-1/1-1.4/1-1.4:1.0/ttyUSB0/tty/ttyUSB0");
	usbdev("sys/devices/" HUB "/1-1/1-1.2", "0403", "6015", "B2", "FT230X Basic UART");
	usbif("sys/devices/" HUB "/1-1/1-1.2/1-1.2:1.0", "00");
	node("tty", "ttyUSB1", HUB "/1-1/1-1.2/1-1.2:1.0/ttyUSB1/tty/ttyUSB1");
	/* a dual-port FT2232: one serial, two interfaces */
	usbdev("sys/devices/" HUB "/1-2", "0403", "6010", "C3", "Dual RS232-HS");
	usbif("sys/devices/" HUB "/1-2/1-2:1.0", "00");
	usbif("sys/devices/" HUB "/1-2/1-2:1.1", "01");
	node("tty", "ttyUSB2", HUB "/1-2/1-2:1.0/ttyUSB2/tty/ttyUSB2");
	node("tty", "ttyUSB3", HUB "/1-2/1-2:1.1/ttyUSB3/tty/ttyUSB3");
	/* a CDC ACM board with a uevent naming its node */
	usbdev("sys/devices/" HUB2 "/2-1", "2e8a", "000a", "E6", "Pico");
	usbif("sys/devices/" HUB2 "/2-1/2-1:1.0", "00");
	node("tty", "ttyACM0", HUB2 "/2-1/2-1:1.0/tty/ttyACM0");
	put("sys/devices/" HUB2 "/2-1/2-1:1.0/tty/ttyACM0", "uevent",
	    "MAJOR=166\nMINOR=0\nDEVNAME=ttyACM0\nID_SERIAL_SHORT=E6-udev");
	/* a USB card reader: disk sda with partition sda1, and sg0 */
	usbdev("sys/devices/" HUB2 "/2-3", "05e3", "0749", "SD9", "USB Storage");
	usbif("sys/devices/" HUB2 "/2-3/2-3:1.0", "00");
#define SCSI HUB2 "/2-3/2-3:1.0/host0/target0:0:0/0:0:0:0"
	node("block", "sda", SCSI "/block/sda");
	node("block", "sda1", SCSI "/block/sda/sda1");
	put("sys/devices/" SCSI "/block/sda/sda1", "partition", "1");
	node("scsi_generic", "sg0", SCSI "/scsi_generic/sg0");
	setenv("UMOCKDEV_DIR", root, 1);
	*state = NULL;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static int find(enum rig_devclass cls, const char *serial, const char *vid_pid,
		const char *port, int interface, struct rig_usb_id *id, char *why, size_t len)
{
	struct rig_usb_match m;

	rig_usb_match_init(&m);
	snprintf(m.serial, sizeof(m.serial), "%s", serial ? serial : "");
	snprintf(m.port, sizeof(m.port), "%s", port ? port : "");
	m.interface = interface;
	if (vid_pid)
		assert_int_equal(rig_usb_parse_vid_pid(vid_pid, &m.vid, &m.pid), 0);
	return rig_sysfs_find(cls, &m, id, why, len);
}

static void test_by_serial(void **state)
{
	struct rig_usb_id id;
	char why[2048];

	assert_int_equal(find(RIG_DEV_TTY, "A1", NULL, NULL, -1, &id, why, sizeof(why)), 0);
	assert_string_equal(id.dev, "/dev/ttyUSB0");
	assert_string_equal(id.port, "1-1.4");
	assert_string_equal(id.product, "FT230X Basic UART");
	assert_int_equal(id.vid, 0x0403);
	assert_int_equal(id.pid, 0x6015);
	assert_int_equal(id.interface, 0);
	assert_non_null(strstr(why, "/dev/ttyUSB0"));
	assert_non_null(strstr(why, "matched usb_serial=A1"));
	assert_int_equal(find(RIG_DEV_TTY, "B2", NULL, NULL, -1, &id, why, sizeof(why)), 0);
	assert_string_equal(id.dev, "/dev/ttyUSB1");
}

static void test_ambiguous(void **state)
{
	struct rig_usb_id id;
	char why[2048];

	assert_int_equal(find(RIG_DEV_TTY, NULL, "0403:6015", NULL, -1, &id, why, sizeof(why)),
			 RIG_E_INVAL);
	assert_non_null(strstr(why, "vid_pid=0403:6015 is ambiguous: 2 ttys match"));
	assert_non_null(strstr(why, "/dev/ttyUSB0 (USB 0403:6015 serial A1 at 1-1.4"));
	assert_non_null(strstr(why, "/dev/ttyUSB1 (USB 0403:6015 serial B2 at 1-1.2"));
	assert_null(strstr(why, "ttyUSB2"));
	/* narrowed by the port path */
	assert_int_equal(find(RIG_DEV_TTY, NULL, "0403:6015", "1-1.2", -1, &id, why, sizeof(why)), 0);
	assert_string_equal(id.dev, "/dev/ttyUSB1");
	assert_non_null(strstr(why, "vid_pid=0403:6015 usb_path=1-1.2"));
}

static void test_interfaces(void **state)
{
	struct rig_usb_id id;
	char why[2048];

	assert_int_equal(find(RIG_DEV_TTY, "C3", NULL, NULL, -1, &id, why, sizeof(why)), RIG_E_INVAL);
	assert_non_null(strstr(why, "interface 0"));
	assert_non_null(strstr(why, "interface 1"));
	assert_non_null(strstr(why, "add interface"));
	assert_int_equal(find(RIG_DEV_TTY, "C3", NULL, NULL, 1, &id, why, sizeof(why)), 0);
	assert_string_equal(id.dev, "/dev/ttyUSB3");
	assert_int_equal(find(RIG_DEV_TTY, NULL, NULL, "1-2", 0, &id, why, sizeof(why)), 0);
	assert_string_equal(id.dev, "/dev/ttyUSB2");
	assert_int_equal(find(RIG_DEV_TTY, "C3", NULL, NULL, 2, &id, why, sizeof(why)), RIG_E_NODEV);
}

static void test_no_match(void **state)
{
	struct rig_usb_id id;
	char why[4096];

	assert_int_equal(find(RIG_DEV_TTY, "NOPE", NULL, NULL, -1, &id, why, sizeof(why)),
			 RIG_E_NODEV);
	assert_non_null(strstr(why, "no tty matches usb_serial=NOPE (searched udev's tty devices: USB ttys present: "));
	/* what was there, so the user can copy the right serial */
	assert_non_null(strstr(why, "serial A1"));
	assert_non_null(strstr(why, "serial B2"));
	assert_non_null(strstr(why, "/dev/ttyACM0"));
	assert_null(strstr(why, "ttyS0"));      /* not on USB */
	/* a tree without the class directory */
	assert_int_equal(find(RIG_DEV_SG, "NOPE", NULL, "9-9", -1, &id, why, sizeof(why)),
			 RIG_E_NODEV);
	assert_non_null(strstr(why, "no sg node matches usb_serial=NOPE usb_path=9-9"));
}

static void test_empty_root(void **state)
{
	struct rig_usb_match m;
	char why[1024], empty[128];

	snprintf(empty, sizeof(empty), "%s/empty", root);
	mkdir(empty, 0755);
	setenv("UMOCKDEV_DIR", empty, 1);
	rig_usb_match_init(&m);
	snprintf(m.serial, sizeof(m.serial), "A1");
	assert_int_equal(rig_sysfs_find(RIG_DEV_TTY, &m, NULL, why, sizeof(why)), RIG_E_NODEV);
	setenv("UMOCKDEV_DIR", root, 1);
	assert_non_null(strstr(why, "no USB ttys present"));
	/* nothing to match on */
	rig_usb_match_init(&m);
	assert_int_equal(rig_sysfs_find(RIG_DEV_TTY, &m, NULL, why, sizeof(why)), RIG_E_INVAL);
	assert_non_null(strstr(why, "no USB identity"));
}

static void test_acm_block_sg(void **state)
{
	struct rig_usb_id id;
	char why[2048];

	assert_int_equal(find(RIG_DEV_TTY, NULL, "2e8a:000a", NULL, -1, &id, why, sizeof(why)), 0);
	assert_string_equal(id.dev, "/dev/ttyACM0");
	assert_string_equal(id.port, "2-1");
	assert_int_equal(id.interface, 0);
	/* the whole disk, not its partition */
	assert_int_equal(find(RIG_DEV_BLOCK, "SD9", NULL, NULL, -1, &id, why, sizeof(why)), 0);
	assert_string_equal(id.dev, "/dev/sda");
	assert_string_equal(id.port, "2-3");
	assert_int_equal(find(RIG_DEV_SG, NULL, NULL, "2-3", -1, &id, why, sizeof(why)), 0);
	assert_string_equal(id.dev, "/dev/sg0");
	/* udev properties: the node's own (from its uevent here) */
	{
		struct rig_usb_match m;

		rig_usb_match_init(&m);
		assert_int_equal(rig_usb_match_set(&m, "udev.ID_SERIAL_SHORT", "E6-udev", why,
						   sizeof(why)), 0);
		assert_int_equal(rig_sysfs_find(RIG_DEV_TTY, &m, &id, why, sizeof(why)), 0);
		assert_string_equal(id.dev, "/dev/ttyACM0");
		assert_non_null(strstr(why, "matched udev.ID_SERIAL_SHORT=E6-udev"));
		/* and of its USB device (DEVTYPE is in every usb_device's uevent) */
		rig_usb_match_init(&m);
		snprintf(m.port, sizeof(m.port), "1-2");
		assert_int_equal(rig_usb_match_set(&m, "udev.DEVTYPE", "usb_device", why,
						   sizeof(why)), 0);
		assert_int_equal(rig_sysfs_find(RIG_DEV_TTY, &m, &id, why, sizeof(why)), RIG_E_INVAL);
		rig_usb_match_init(&m);
		assert_int_equal(rig_usb_match_set(&m, "udev.ID_SERIAL_SHORT", "nope", why,
						   sizeof(why)), 0);
		assert_int_equal(rig_sysfs_find(RIG_DEV_TTY, &m, &id, why, sizeof(why)), RIG_E_NODEV);
	}
	/* the disk reader is not a tty */
	assert_int_equal(find(RIG_DEV_TTY, "SD9", NULL, NULL, -1, &id, why, sizeof(why)), RIG_E_NODEV);
}

static void test_usb_id(void **state)
{
	struct rig_usb_id id;
	char buf[256];

	assert_int_equal(rig_sysfs_usb_id(RIG_DEV_TTY, "ttyS0", &id), RIG_E_NODEV);
	assert_int_equal(rig_sysfs_usb_id(RIG_DEV_TTY, "ttyUSB9", &id), RIG_E_NODEV);
	assert_int_equal(rig_sysfs_usb_id(RIG_DEV_TTY, "ttyUSB3", &id), 0);
	assert_string_equal(id.serial, "C3");
	assert_string_equal(id.port, "1-2");
	assert_int_equal(id.interface, 1);
	rig_usb_id_describe(&id, buf, sizeof(buf));
	assert_string_equal(buf, "/dev/ttyUSB3 (USB 0403:6010 serial C3 at 1-2 interface 1, Dual RS232-HS)");
}

static void test_parse(void **state)
{
	struct rig_usb_match m;
	int v = 0, p = 0;
	char buf[128];

	assert_int_equal(rig_usb_parse_vid_pid("0403:6015", &v, &p), 0);
	assert_int_equal(v, 0x0403);
	assert_int_equal(p, 0x6015);
	assert_int_equal(rig_usb_parse_vid_pid("2E8A:a", &v, &p), 0);
	assert_int_equal(p, 0xa);
	assert_int_equal(rig_usb_parse_vid_pid("0403", &v, &p), RIG_E_INVAL);
	assert_int_equal(rig_usb_parse_vid_pid("0403:", &v, &p), RIG_E_INVAL);
	assert_int_equal(rig_usb_parse_vid_pid("04031:6015", &v, &p), RIG_E_INVAL);
	assert_int_equal(rig_usb_parse_vid_pid("0403:6015x", &v, &p), RIG_E_INVAL);
	assert_int_equal(rig_usb_parse_vid_pid("xyz:6015", &v, &p), RIG_E_INVAL);
	/* strtoul would take these */
	assert_int_equal(rig_usb_parse_vid_pid("0x4:6015", &v, &p), RIG_E_INVAL);
	assert_int_equal(rig_usb_parse_vid_pid(" 403:6015", &v, &p), RIG_E_INVAL);
	assert_int_equal(rig_usb_parse_vid_pid("0403:+601", &v, &p), RIG_E_INVAL);
	assert_true(rig_usb_port_valid("1-1.4"));
	assert_true(rig_usb_port_valid("2"));
	assert_false(rig_usb_port_valid("1-"));
	assert_false(rig_usb_port_valid("1-1..4"));
	assert_false(rig_usb_port_valid("usb1"));
	assert_false(rig_usb_port_valid("1-1.2.3.4.5.6.7.8.9"));
	rig_usb_match_init(&m);
	assert_int_equal(rig_usb_match_describe(&m, buf, sizeof(buf)), RIG_E_INVAL);
	snprintf(m.serial, sizeof(m.serial), "A1");
	m.interface = 2;
	assert_int_equal(rig_usb_match_describe(&m, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "usb_serial=A1 interface=2");
	/* rig-file keys, as the core parses them */
	rig_usb_match_init(&m);
	assert_int_equal(rig_usb_match_set(&m, "vid_pid", "0403:6015", buf, sizeof(buf)), 0);
	assert_int_equal(rig_usb_match_set(&m, "usb_path", "1-1.4", buf, sizeof(buf)), 0);
	assert_int_equal(rig_usb_match_set(&m, "udev", "", buf, sizeof(buf)), 0);
	assert_int_equal(rig_usb_match_set(&m, "udev.ID_MODEL", "FT230X", buf, sizeof(buf)), 0);
	assert_int_equal(rig_usb_match_set(&m, "usb_path", "1-1,4", buf, sizeof(buf)), RIG_E_INVAL);
	assert_non_null(strstr(buf, "not a USB port path"));
	assert_int_equal(rig_usb_match_set(&m, "vid_pid", "not-an-id", buf, sizeof(buf)), RIG_E_INVAL);
	assert_non_null(strstr(buf, "'not-an-id' is not a USB VID:PID"));
	assert_int_equal(rig_usb_match_set(&m, "udev.ID-X", "1", buf, sizeof(buf)), RIG_E_INVAL);
	assert_int_equal(rig_usb_match_set(&m, "baud", "1", buf, sizeof(buf)), RIG_E_NOENT);
	assert_int_equal(rig_usb_match_describe(&m, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "vid_pid=0403:6015 usb_path=1-1.4 udev.ID_MODEL=FT230X");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_by_serial),
		cmocka_unit_test(test_ambiguous),
		cmocka_unit_test(test_interfaces),
		cmocka_unit_test(test_no_match),
		cmocka_unit_test(test_empty_root),
		cmocka_unit_test(test_acm_block_sg),
		cmocka_unit_test(test_usb_id),
		cmocka_unit_test(test_parse),
	};

	(void)argc;
	umockfx_ensure_preload(argv, NULL);
	return cmocka_run_group_tests(tests, setup, teardown);
}
