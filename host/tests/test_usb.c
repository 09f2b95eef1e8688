/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the USB port-path helpers (usb.c) on libusb devices enumerated from a
 * umockdev testbed: root hubs, hubs several tiers deep, two-digit port numbers, a second
 * bus. The program re-executes itself under libumockdev-preload when started without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libusb.h>
#include <umockdev.h>

#include "fixtures/umockfx.h"
#include "internal.h"

/* Where each device sits; its idProduct is its index here + 1, so the test can find it. */
static const char *const paths[] = {
	"1", "2",                                       /* root hubs */
	"1-1", "1-1.4", "1-1.4.2", "1-3",
	"2-10", "2-10.12",
	"1-2", "1-2.1", "1-2.1.1", "1-2.1.1.1", "1-2.1.1.1.1", "1-2.1.1.1.1.7",
};

struct tfx {
	UMockdevTestbed *tb;
	libusb_context *usb;
	libusb_device **list;
	ssize_t n;
};

/* sysfs device path: "usbB" then every prefix of the port path ("1-1", "1-1.4", ...). */
static void syspath(const char *path, char *buf, size_t len)
{
	const char *dash = strchr(path, '-'), *p;
	size_t o = (size_t)snprintf(buf, len, "/devices/pci0000:00/0000:00:14.0/usb%.*s",
				    (int)(dash ? (size_t)(dash - path) : strlen(path)), path);

	for (p = dash; p && *p; p = strchr(p + 1, '.')) {
		const char *next = strchr(p + 1, '.');

		o += (size_t)snprintf(buf + o, len - o, "/%.*s",
				      (int)(next ? (size_t)(next - path) : strlen(path)), path);
		if (!next)
			break;
	}
}

static void add_device(UMockdevTestbed *tb, size_t i)
{
	const char *path = paths[i];
	unsigned int bus = (unsigned int)atoi(path), devnum = 1;
	char sys[256], *rec;
	bool root = !strchr(path, '-');

	/* device numbers: root hubs 1, the rest in order after them */
	if (!root)
		devnum = (unsigned int)i + 1;
	syspath(path, sys, sizeof(sys));
	rec = g_strdup_printf("P: %s\nN: bus/usb/%03u/%03u\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\n"
			      "E: DEVNAME=/dev/bus/usb/%03u/%03u\n"
			      "A: busnum=%u\\n\nA: devnum=%u\\n\nA: bConfigurationValue=1\\n\n"
			      "A: speed=480\\n\nA: idVendor=1d6b\\n\nA: idProduct=%04x\\n\n"
			      "H: descriptors=12010002090001406b1d%02x%02x000100000001"
			      "0902190001010080" "00" "0904000001090000" "00" "0705810304000c\n",
			      sys, bus, devnum, bus, devnum, bus, devnum, (unsigned int)i + 1,
			      (unsigned int)(i + 1) & 0xff, (unsigned int)(i + 1) >> 8);
	assert_true(umockdev_testbed_add_from_string(tb, rec, NULL));
	g_free(rec);
}

static int setup(void **state)
{
	struct tfx *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->tb = umockdev_testbed_new();
	for (size_t i = 0; i < RIG_ARRAY_SIZE(paths); i++)
		add_device(t->tb, i);
	assert_int_equal(libusb_init(&t->usb), 0);
	t->n = libusb_get_device_list(t->usb, &t->list);
	assert_int_equal(t->n, RIG_ARRAY_SIZE(paths));
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tfx *t = *state;

	libusb_free_device_list(t->list, 1);
	libusb_exit(t->usb);
	g_object_unref(t->tb);
	free(t);
	return 0;
}

/* The device the test put at paths[@i]. */
static libusb_device *dev_at(struct tfx *t, size_t i)
{
	for (ssize_t k = 0; k < t->n; k++) {
		struct libusb_device_descriptor d;

		assert_int_equal(libusb_get_device_descriptor(t->list[k], &d), 0);
		if (d.idProduct == i + 1)
			return t->list[k];
	}
	fail_msg("no device for %s", paths[i]);
	return NULL;
}

static size_t index_of(const char *path)
{
	for (size_t i = 0; i < RIG_ARRAY_SIZE(paths); i++)
		if (!strcmp(paths[i], path))
			return i;
	fail_msg("%s is not in the testbed", path);
	return 0;
}

/* Every device's path is the one its sysfs name gives. */
static void test_format(void **state)
{
	struct tfx *t = *state;
	char buf[32];

	for (size_t i = 0; i < RIG_ARRAY_SIZE(paths); i++) {
		memset(buf, 'x', sizeof(buf));
		assert_int_equal(rig_usb_port_format(dev_at(t, i), buf, sizeof(buf)),
				 strlen(paths[i]));
		assert_string_equal(buf, paths[i]);
	}
}

/* A buffer too small: an error, and as much of the path as fits. */
static void test_format_too_small(void **state)
{
	struct tfx *t = *state;
	libusb_device *dev = dev_at(t, index_of("1-2.1.1.1.1.7"));
	char buf[14];

	assert_int_equal(rig_usb_port_format(dev, buf, 5), RIG_E_INVAL);
	assert_string_equal(buf, "1-2.");
	assert_int_equal(rig_usb_port_format(dev, buf, 13), RIG_E_INVAL);
	assert_int_equal(rig_usb_port_format(dev, buf, 14), 13);
	assert_string_equal(buf, "1-2.1.1.1.1.7");
	assert_int_equal(rig_usb_port_format(dev_at(t, index_of("2")), buf, 2), 1);
	assert_string_equal(buf, "2");
}

static void test_match(void **state)
{
	struct tfx *t = *state;
	libusb_device *dev = dev_at(t, index_of("1-1.4.2"));
	char buf[32], small[4];

	/* NULL matches any port, and still says where the device is */
	assert_true(rig_usb_port_match(dev, NULL, buf, sizeof(buf)));
	assert_string_equal(buf, "1-1.4.2");
	assert_true(rig_usb_port_match(dev, "1-1.4.2", buf, sizeof(buf)));
	/* the hub above it, a longer path, another bus, a root hub: all other ports */
	assert_false(rig_usb_port_match(dev, "1-1.4", buf, sizeof(buf)));
	assert_false(rig_usb_port_match(dev, "1-1.4.2.1", buf, sizeof(buf)));
	assert_false(rig_usb_port_match(dev, "2-1.4.2", buf, sizeof(buf)));
	assert_false(rig_usb_port_match(dev, "1", buf, sizeof(buf)));
	assert_false(rig_usb_port_match(dev, "", buf, sizeof(buf)));
	assert_false(rig_usb_port_match(dev_at(t, index_of("1-1.4")), "1-1.4.2", buf,
					sizeof(buf)));
	assert_true(rig_usb_port_match(dev_at(t, index_of("2-10.12")), "2-10.12", buf,
				       sizeof(buf)));
	assert_false(rig_usb_port_match(dev_at(t, index_of("2-10.12")), "2-1.12", buf,
					sizeof(buf)));
	assert_true(rig_usb_port_match(dev_at(t, index_of("1")), "1", buf, sizeof(buf)));
	/* a truncated path matches no port (a prefix of the real one least of all) */
	assert_false(rig_usb_port_match(dev, "1-1", small, sizeof(small)));
	assert_false(rig_usb_port_match(dev, "1-1.4.2", small, sizeof(small)));
	assert_true(rig_usb_port_match(dev, NULL, small, sizeof(small)));
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_too_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_match, setup, teardown),
	};

	(void)argc;
	umockfx_ensure_preload(argv, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
