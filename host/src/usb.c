/* SPDX-License-Identifier: MIT */
/*
 * USB port paths of libusb devices ("1-1.4"), shared by the back-ends that find their
 * device with libusb (sdwire, uhub, rpiboot) so that a rig file's usb_path means the same
 * port to each of them, and to the sysfs lookups in sysfs.c (the kernel's device name);
 * and the one conversion of our timeouts to libusb's.
 */
#define LOG_PREFIX "usb"
#include <stdio.h>
#include <string.h>

#include <libusb.h>

#include "internal.h"

/* USB allows 7 tiers (6 port numbers below the host); libusb fails past the array. */
#define PORTS_MAX 8

int rig_usb_port_format(struct libusb_device *dev, char *buf, size_t len)
{
	uint8_t ports[PORTS_MAX];
	int n = libusb_get_port_numbers(dev, ports, (int)sizeof(ports));
	int o = snprintf(buf, len, "%u", libusb_get_bus_number(dev));

	/* n < 0 (a chain longer than libusb allows): the bus alone, as if a root hub */
	for (int i = 0; i < n && o >= 0 && (size_t)o < len; i++)
		o += snprintf(buf + o, len - (size_t)o, "%c%u", i ? '.' : '-', ports[i]);
	return o >= 0 && (size_t)o < len ? o : RIG_E_INVAL;
}

unsigned int rig_usb_timeout(int timeout_ms)
{
	if (timeout_ms < 0)
		return 0;
	return timeout_ms == 0 ? 1 : (unsigned int)timeout_ms;
}

bool rig_usb_port_match(struct libusb_device *dev, const char *want, char *buf, size_t len)
{
	bool fits = rig_usb_port_format(dev, buf, len) >= 0;

	return !want || (fits && !strcmp(buf, want));
}
