/* SPDX-License-Identifier: MIT */
/*
 * The uhub power back-end (drivers/uhub.c) through the library front end, and the network
 * role's uplink at a hub port (network = host { uplink_hub, uplink_port }: a USB network
 * adapter's VBUS, switched by the same rig_hubport code), two ways:
 *  - the kernel's sysfs `disable` attribute, on a fake /sys in a temporary directory
 *    read and written by the back-end through libudev, which umockdev's preload points at
 *    it (UMOCKDEV_DIR);
 *  - hub class requests over libusb, on hubs emulated by umockdev in this process
 *    (fixtures/usbhub.c), cross-checked with the upstream tool uhubctl run as a child on
 *    the same emulation: its status must agree with rigor's get, and its on/off must
 *    leave the hubs exactly as rigor's on/off do.
 * The program re-executes itself under libumockdev-preload when started without it.
 */
#define _GNU_SOURCE     /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixtures/usbhub.h"
#include "internal.h"
#include "fixtures/rigfx.h"
#include "fixtures/umockfx.h"

static struct usbhub_emu *emu;
static char *saved_umockdev_dir;
/*
 * Emulated hubs: a USB3 hub (two logical hubs), a USB2 hub, a ganged one, one without
 * switching, and a USB2 hub whose ports have the sysfs `disable` attribute (Linux >= 6.0).
 */
static int hub3_u2, hub3_u3, hub2, ganged, nops, kernel6;

/* ---- fake sysfs ---- */

static char sysroot[64];

static void put(const char *rel, const char *val)
{
	char path[512], *s;
	FILE *f;

	snprintf(path, sizeof(path), "%s/sys/bus/usb/devices/%s", sysroot, rel);
	for (s = path + strlen(sysroot) + 1; (s = strchr(s, '/')); s++) {
		*s = 0;
		mkdir(path, 0755);
		*s = '/';
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", val);
	fclose(f);
}

static char *get(const char *rel)
{
	static char buf[64];
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/sys/bus/usb/devices/%s", sysroot, rel);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

/*
 * Hub 1-1 (USB2 half, 4 ports) with its USB3 companion 2-1 (peer links on port 4), both
 * with serial HUBSER; hub 1-2 (4 ports, no peer).
 */
static int setup_sysfs(void **state)
{
	char path[512];

	snprintf(sysroot, sizeof(sysroot), "/tmp/rigor-uhubsys-XXXXXX");
	assert_non_null(mkdtemp(sysroot));
	for (int h = 0; h < 3; h++) {
		const char *loc = h == 0 ? "1-1" : h == 1 ? "2-1" : "1-2";
		char rel[128];

		snprintf(rel, sizeof(rel), "%s/bDeviceClass", loc);
		put(rel, "09");
		snprintf(rel, sizeof(rel), "%s/bConfigurationValue", loc);
		put(rel, "1");
		snprintf(rel, sizeof(rel), "%s/serial", loc);
		put(rel, h < 2 ? "HUBSER" : "OTHER");
		snprintf(rel, sizeof(rel), "%s/maxchild", loc);
		put(rel, "4");
		/* what libudev needs to take the directory for a USB device */
		snprintf(rel, sizeof(rel), "%s/uevent", loc);
		put(rel, "DEVTYPE=usb_device");
		snprintf(path, sizeof(path), "%s/sys/bus/usb/devices/%s/subsystem", sysroot, loc);
		assert_int_equal(symlink("/sys/bus/usb", path), 0);
		for (int port = 1; port <= 4; port++) {
			snprintf(rel, sizeof(rel), "%s:1.0/%s-port%d/disable", loc, loc, port);
			put(rel, "0");
		}
	}
	snprintf(path, sizeof(path), "%s/sys/bus/usb/devices/1-1:1.0/1-1-port4/peer", sysroot);
	assert_int_equal(symlink("../../2-1:1.0/2-1-port4", path), 0);
	snprintf(path, sizeof(path), "%s/sys/bus/usb/devices/2-1:1.0/2-1-port4/peer", sysroot);
	assert_int_equal(symlink("../../1-1:1.0/1-1-port4", path), 0);
	/* libudev (hubs, ports, their attributes) reads it through umockdev's preload */
	saved_umockdev_dir = getenv("UMOCKDEV_DIR") ? strdup(getenv("UMOCKDEV_DIR")) : NULL;
	setenv("UMOCKDEV_DIR", sysroot, 1);
	*state = rigfx_new("uhub");
	return 0;
}

static int teardown_sysfs(void **state)
{
	char cmd[128];

	rigfx_release(*state);
	/* back to the hub emulation's testbed, if there is one */
	if (saved_umockdev_dir)
		setenv("UMOCKDEV_DIR", saved_umockdev_dir, 1);
	else
		unsetenv("UMOCKDEV_DIR");
	free(saved_umockdev_dir);
	saved_umockdev_dir = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sysroot);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* A rig whose power is uhub { hub = @hub (or usb_serial = @serial), port = @port }. */
static int open_uhub(struct fx *f, const char *hub, const char *serial, int port, bool inverted,
		     int min_off_ms, int timeout_ms)
{
	int p;

	f->d = rig_desc_new(f->ctx, "uhub-test.lua");
	rig_desc_set_str(f->d, -1, "name", "u", 1);
	p = rig_desc_add_part(f->d, "power", NULL, "uhub", 2);
	if (hub)
		rig_desc_set_str(f->d, p, "hub", hub, 2);
	if (serial)
		rig_desc_set_str(f->d, p, "usb_serial", serial, 2);
	rig_desc_set_int(f->d, p, "port", port, 2);
	rig_desc_set_bool(f->d, p, "inverted", inverted, 2);
	rig_desc_set_int(f->d, p, "min_off_ms", min_off_ms, 2);
	if (timeout_ms)
		rig_desc_set_int(f->d, p, "timeout_ms", timeout_ms, 2);
	return rig_open(f->ctx, f->d, &f->rig);
}

static void test_sysfs_on_off(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uhub(f, "1-1", NULL, 4, false, 0, 0), 0);
	assert_int_equal(rig_power_set(f->rig, false), 0);
	assert_string_equal(get("1-1:1.0/1-1-port4/disable"), "1");
	assert_string_equal(get("2-1:1.0/2-1-port4/disable"), "1");    /* the USB3 half too */
	assert_string_equal(get("1-1:1.0/1-1-port3/disable"), "0");    /* neighbour untouched */
	assert_int_equal(rig_power_get(f->rig), 0);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	assert_string_equal(get("1-1:1.0/1-1-port4/disable"), "0");
	assert_string_equal(get("2-1:1.0/2-1-port4/disable"), "0");
	assert_int_equal(rig_power_get(f->rig), 1);
	/* get reads the kernel's attribute back, not a remembered state */
	put("1-1:1.0/1-1-port4/disable", "1");
	assert_int_equal(rig_power_get(f->rig), 1);                      /* the USB3 half still powers it */
	put("2-1:1.0/2-1-port4/disable", "1");
	assert_int_equal(rig_power_get(f->rig), 0);
}

static void test_sysfs_inverted(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uhub(f, "1-2", NULL, 2, true, 0, 0), 0);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	assert_string_equal(get("1-2:1.0/1-2-port2/disable"), "1");     /* on = port off */
	assert_int_equal(rig_power_get(f->rig), 1);
	assert_int_equal(rig_power_set(f->rig, false), 0);
	assert_string_equal(get("1-2:1.0/1-2-port2/disable"), "0");
	assert_int_equal(rig_power_get(f->rig), 0);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_sysfs_min_off(void **state)
{
	struct fx *f = *state;
	int64_t t0;

	assert_int_equal(open_uhub(f, "1-2", NULL, 1, false, 300, 0), 0);
	assert_int_equal(rig_power_set(f->rig, false), 0);
	t0 = now_ms();
	assert_int_equal(rig_power_set(f->rig, true), 0);
	assert_true(now_ms() - t0 >= 250);
	assert_string_equal(get("1-2:1.0/1-2-port1/disable"), "0");
}

static void test_sysfs_by_serial(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uhub(f, NULL, "HUBSER", 4, false, 0, 0), 0);
	assert_int_equal(rig_power_set(f->rig, false), 0);
	assert_string_equal(get("1-1:1.0/1-1-port4/disable"), "1");
	assert_string_equal(get("2-1:1.0/2-1-port4/disable"), "1");
	assert_string_equal(get("1-2:1.0/1-2-port4/disable"), "0");
}

static void test_sysfs_port_missing(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uhub(f, "1-2", NULL, 7, false, 0, 0), RIG_E_NOENT);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "hub 1-2 has no port 7"));
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "4 ports"));
}

/* A port that vanishes after open (hub unplugged) or shows a value the kernel never writes. */
static void test_sysfs_gone_or_odd(void **state)
{
	struct fx *f = *state;
	char cmd[256];

	assert_int_equal(open_uhub(f, "1-2", NULL, 3, false, 0, 0), 0);
	put("1-2:1.0/1-2-port3/disable", "x");
	assert_int_equal(rig_power_get(f->rig), RIG_E_PROTO);
	assert_non_null(strstr(rig_errmsg(f->rig), "unexpected 'x'"));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/sys/bus/usb/devices/1-2:1.0/1-2-port3'", sysroot);
	assert_int_equal(system(cmd), 0);
	rig_clear_error(f->rig);
	assert_int_equal(rig_power_set(f->rig, false), RIG_E_NODEV);
	assert_non_null(strstr(rig_errmsg(f->rig), "hub 1-2 is gone"));
}

static void test_bad_params(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uhub(f, "1-1/4", NULL, 4, false, 0, 0), RIG_E_INVAL);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "location like"));
	rig_desc_free(f->d);
	f->d = NULL;
	rig_ctx_clear_error(f->ctx);
	assert_int_equal(open_uhub(f, NULL, NULL, 4, false, 0, 0), RIG_E_INVAL);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "exactly one of hub"));
	rig_desc_free(f->d);
	f->d = NULL;
	rig_ctx_clear_error(f->ctx);
	assert_int_equal(open_uhub(f, "1-1", NULL, 0, false, 0, 0), RIG_E_INVAL);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "port must be"));
	rig_desc_free(f->d);
	f->d = NULL;
	rig_ctx_clear_error(f->ctx);
	assert_int_equal(open_uhub(f, NULL, "NOSUCH", 1, false, 0, 0), RIG_E_NODEV);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "usb_serial=NOSUCH"));
}

/* ---- the network role's uplink at a hub port, on the fake sysfs ---- */

/*
 * A rig whose network is host { address, uplink_hub = @hub, uplink_hub_serial = @serial,
 * uplink_port = @port (0: not given), cut/restore = @cmd (NULL: none) }, with
 * power = uhub { hub = "1-1", port = @power_port } when @power_port > 0.
 */
static int open_uplink(struct fx *f, const char *hub, const char *serial, int port,
		       const char *cmd, int power_port, int timeout_ms)
{
	int p;

	f->d = rig_desc_new(f->ctx, "uplink-test.lua");
	rig_desc_set_str(f->d, -1, "name", "n", 1);
	if (power_port > 0) {
		p = rig_desc_add_part(f->d, "power", NULL, "uhub", 2);
		rig_desc_set_str(f->d, p, "hub", "1-1", 2);
		rig_desc_set_int(f->d, p, "port", power_port, 2);
		rig_desc_set_int(f->d, p, "min_off_ms", 0, 2);
	}
	p = rig_desc_add_part(f->d, "network", NULL, "host", 3);
	rig_desc_set_str(f->d, p, "address", "192.168.7.20", 3);
	if (hub)
		rig_desc_set_str(f->d, p, "uplink_hub", hub, 3);
	if (serial)
		rig_desc_set_str(f->d, p, "uplink_hub_serial", serial, 3);
	if (port)
		rig_desc_set_int(f->d, p, "uplink_port", port, 3);
	if (cmd) {
		rig_desc_set_str(f->d, p, "cut", cmd, 3);
		rig_desc_set_str(f->d, p, "restore", cmd, 3);
	}
	if (timeout_ms)
		rig_desc_set_int(f->d, p, "timeout_ms", timeout_ms, 3);
	return rig_open(f->ctx, f->d, &f->rig);
}

/* Close the rig and its description so the test can open another. */
static void reopen(struct fx *f)
{
	rig_close(f->rig);
	f->rig = NULL;
	rig_desc_free(f->d);
	f->d = NULL;
	rig_ctx_clear_error(f->ctx);
}

static void test_uplink_sysfs(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uplink(f, "1-1", NULL, 4, NULL, 0, 0), 0);
	assert_int_equal(rig_network_uplink(f->rig, false, -1), 0);
	assert_string_equal(get("1-1:1.0/1-1-port4/disable"), "1");
	assert_string_equal(get("2-1:1.0/2-1-port4/disable"), "1");    /* the USB3 half too */
	assert_string_equal(get("1-1:1.0/1-1-port3/disable"), "0");    /* neighbour untouched */
	assert_int_equal(rig_network_uplink(f->rig, true, -1), 0);
	assert_string_equal(get("1-1:1.0/1-1-port4/disable"), "0");
	assert_string_equal(get("2-1:1.0/2-1-port4/disable"), "0");

	/* rig_safe() restores an uplink this process cut... */
	assert_int_equal(rig_network_uplink(f->rig, false, -1), 0);
	assert_string_equal(get("1-1:1.0/1-1-port4/disable"), "1");
	assert_int_equal(rig_safe(f->rig), 0);
	assert_string_equal(get("1-1:1.0/1-1-port4/disable"), "0");
	assert_string_equal(get("2-1:1.0/2-1-port4/disable"), "0");
	/* ...and leaves alone one cut by someone else (uhubctl, another rig) */
	put("1-1:1.0/1-1-port4/disable", "1");
	assert_int_equal(rig_safe(f->rig), 0);
	assert_string_equal(get("1-1:1.0/1-1-port4/disable"), "1");
}

static void test_uplink_sysfs_by_serial(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uplink(f, NULL, "OTHER", 2, NULL, 0, 0), 0);
	assert_int_equal(rig_network_uplink(f->rig, false, -1), 0);
	assert_string_equal(get("1-2:1.0/1-2-port2/disable"), "1");
	assert_string_equal(get("1-1:1.0/1-1-port2/disable"), "0");
	assert_int_equal(rig_network_uplink(f->rig, true, -1), 0);
	assert_string_equal(get("1-2:1.0/1-2-port2/disable"), "0");
}

/* Each wrong network entry is refused at open with a message naming the fields. */
static void test_uplink_bad_params(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *hub, *serial;
		int port;
		const char *cmd;
		int rc;
		const char *msg;
	} bad[] = {
		{ "1-1", NULL, 4, "true", RIG_E_INVAL,
		  "give either cut and restore commands or uplink_hub (or uplink_hub_serial) with uplink_port, not both" },
		{ "1-1", NULL, 0, NULL, RIG_E_INVAL, "uplink_hub needs uplink_port = N" },
		{ NULL, "HUBSER", 0, NULL, RIG_E_INVAL, "uplink_hub_serial needs uplink_port = N" },
		{ NULL, NULL, 3, NULL, RIG_E_INVAL,
		  "name the hub by exactly one of uplink_hub (location like \"1-1.4\") or uplink_hub_serial" },
		{ "1-1", "HUBSER", 3, NULL, RIG_E_INVAL, "exactly one of uplink_hub" },
		{ "1-1/4", NULL, 3, NULL, RIG_E_INVAL,
		  "uplink_hub must be a USB location like \"1-1.4\" (see `uhubctl` or `lsusb -t`), not '1-1/4'" },
		{ "1-1", NULL, 256, NULL, RIG_E_INVAL, "uplink_port must be 1..255" },
		{ "1-2", NULL, 7, NULL, RIG_E_NOENT, "hub 1-2 has no port 7 (sysfs shows 4 ports)" },
		{ NULL, "NOSUCH", 1, NULL, RIG_E_NODEV, "no USB hub with uplink_hub_serial=NOSUCH" },
	};

	for (size_t i = 0; i < RIG_ARRAY_SIZE(bad); i++) {
		int rc = open_uplink(f, bad[i].hub, bad[i].serial, bad[i].port, bad[i].cmd, 0, 0);

		if (rc != bad[i].rc || !strstr(rig_ctx_errmsg(f->ctx), bad[i].msg))
			fail_msg("case %zu: rc %d (want %d), message '%s' (want '%s')", i, rc,
				 bad[i].rc, rig_ctx_errmsg(f->ctx), bad[i].msg);
		/* the message says which part of the rig file */
		assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "network"));
		reopen(f);
	}
	/* and nothing was switched on the way */
	for (int port = 1; port <= 4; port++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "1-1:1.0/1-1-port%d/disable", port);
		assert_string_equal(get(rel), "0");
	}
}

/* No commands and no hub port: cut says what to add. */
static void test_uplink_none(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uplink(f, NULL, NULL, 0, NULL, 0, 0), 0);
	assert_int_equal(rig_network_uplink(f->rig, false, -1), RIG_E_NOTSUP);
	assert_non_null(strstr(rig_errmsg(f->rig), "uplink_hub = \"1-1\" and uplink_port = N"));
	assert_non_null(strstr(rig_errmsg(f->rig), "cut = \"...\""));
}

/* A raised cancel flag stops the cut before either half of the hub is switched. */
static void test_uplink_cancelled(void **state)
{
	struct fx *f = *state;
	volatile sig_atomic_t flag = 1;

	assert_int_equal(open_uplink(f, "1-1", NULL, 4, NULL, 0, 0), 0);
	rig_ctx_set_cancel(f->ctx, &flag);
	assert_int_equal(rig_network_uplink(f->rig, false, -1), RIG_E_INTR);
	assert_non_null(strstr(rig_errmsg(f->rig), "hub 1-1 port 4: interrupted"));
	assert_string_equal(get("1-1:1.0/1-1-port4/disable"), "0");
	assert_string_equal(get("2-1:1.0/2-1-port4/disable"), "0");
	flag = 0;
	rig_clear_error(f->rig);
	assert_int_equal(rig_network_uplink(f->rig, false, -1), 0);
	assert_string_equal(get("1-1:1.0/1-1-port4/disable"), "1");
	rig_ctx_set_cancel(f->ctx, NULL);
}

/* The hub unplugged after open: the cut fails naming it, and is not recorded as done. */
static void test_uplink_gone(void **state)
{
	struct fx *f = *state;
	char cmd[256];

	assert_int_equal(open_uplink(f, "1-2", NULL, 3, NULL, 0, 0), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/sys/bus/usb/devices/1-2:1.0/1-2-port3'", sysroot);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(rig_network_uplink(f->rig, false, -1), RIG_E_NODEV);
	assert_non_null(strstr(rig_errmsg(f->rig), "hub 1-2 is gone"));
	rig_clear_error(f->rig);
	assert_int_equal(rig_safe(f->rig), 0);       /* no restore attempted: nothing was cut */
}

/* ---- libusb on the umockdev emulation ---- */

static int setup_usb(void **state)
{
	for (unsigned int p = 1; p <= 4; p++) {
		usbhub_emu_set_power(emu, hub3_u2, p, true);
		usbhub_emu_set_power(emu, hub3_u3, p, true);
		usbhub_emu_set_power(emu, hub2, p, true);
		usbhub_emu_set_power(emu, kernel6, p, true);
	}
	for (int h = 0; h < 6; h++) {
		usbhub_emu_stall(emu, h, false);
		usbhub_emu_hang(emu, h, false);
	}
	*state = rigfx_new("uhub");
	return 0;
}

static int teardown_usb(void **state)
{
	rigfx_release(*state);
	return 0;
}

static void test_usb_on_off_both_halves(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uhub(f, "1-1", NULL, 4, false, 0, 0), 0);
	assert_int_equal(rig_power_set(f->rig, false), 0);
	assert_int_equal(usbhub_emu_power(emu, hub3_u2, 4), 0);
	assert_int_equal(usbhub_emu_power(emu, hub3_u3, 4), 0);   /* the companion 2-1 too */
	assert_int_equal(usbhub_emu_power(emu, hub3_u2, 3), 1);
	assert_int_equal(rig_power_get(f->rig), 0);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	assert_int_equal(usbhub_emu_power(emu, hub3_u2, 4), 1);
	assert_int_equal(usbhub_emu_power(emu, hub3_u3, 4), 1);
	assert_int_equal(rig_power_get(f->rig), 1);
	/* GetPortStatus is read back: a change from outside shows */
	usbhub_emu_set_power(emu, hub3_u2, 4, false);
	assert_int_equal(rig_power_get(f->rig), 1);               /* USB3 half still on */
	usbhub_emu_set_power(emu, hub3_u3, 4, false);
	assert_int_equal(rig_power_get(f->rig), 0);
}

static void test_usb_inverted_usb2_hub(void **state)
{
	struct fx *f = *state;
	unsigned int n0 = usbhub_emu_switches(emu, hub3_u3);

	assert_int_equal(open_uhub(f, "1-2", NULL, 2, true, 0, 0), 0);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	assert_int_equal(usbhub_emu_power(emu, hub2, 2), 0);
	assert_int_equal(rig_power_get(f->rig), 1);
	assert_int_equal(rig_power_set(f->rig, false), 0);
	assert_int_equal(usbhub_emu_power(emu, hub2, 2), 1);
	assert_int_equal(rig_power_get(f->rig), 0);
	assert_int_equal(usbhub_emu_switches(emu, hub3_u3), n0);  /* no companion touched */
}

static void test_usb_by_serial(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uhub(f, NULL, "HUB3SER", 1, false, 0, 0), 0);
	assert_int_equal(rig_power_set(f->rig, false), 0);
	assert_int_equal(usbhub_emu_power(emu, hub3_u2, 1), 0);
	assert_int_equal(usbhub_emu_power(emu, hub3_u3, 1), 0);
}

static void test_usb_refuses_ganged(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uhub(f, "1-3", NULL, 1, false, 0, 0), RIG_E_NOTSUP);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "ganged power switching"));
	assert_int_equal(usbhub_emu_switches(emu, ganged), 0);
	rig_desc_free(f->d);
	f->d = NULL;
	rig_ctx_clear_error(f->ctx);
	assert_int_equal(open_uhub(f, "1-4", NULL, 1, false, 0, 0), RIG_E_NOTSUP);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "no power switching"));
	assert_int_equal(usbhub_emu_switches(emu, nops), 0);
}

static void test_usb_missing(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uhub(f, "1-2", NULL, 7, false, 0, 0), RIG_E_NOENT);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "hub 1-2 has no port 7 (it has 4)"));
	rig_desc_free(f->d);
	f->d = NULL;
	rig_ctx_clear_error(f->ctx);
	assert_int_equal(open_uhub(f, "1-9", NULL, 1, false, 0, 0), RIG_E_NODEV);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "no USB hub at 1-9"));
}

static void test_usb_stall(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uhub(f, "1-2", NULL, 1, false, 0, 0), 0);
	usbhub_emu_stall(emu, hub2, true);
	assert_int_equal(rig_power_set(f->rig, false), RIG_E_IO);
	assert_non_null(strstr(rig_errmsg(f->rig), "the device stalled the request"));
	assert_int_equal(usbhub_emu_power(emu, hub2, 1), 1);
}

static void test_usb_timeout(void **state)
{
	struct fx *f = *state;
	int64_t t0;

	assert_int_equal(open_uhub(f, "1-2", NULL, 1, false, 0, 150), 0);
	usbhub_emu_hang(emu, hub2, true);
	t0 = now_ms();
	assert_int_equal(rig_power_get(f->rig), RIG_E_TIMEOUT);
	assert_true(now_ms() - t0 >= 140);
	assert_true(now_ms() - t0 < 2000);
	assert_non_null(strstr(rig_errmsg(f->rig), "no answer within 150 ms"));
}

/*
 * The uplink adapter on port 3 of the USB3 hub whose port 4 powers the DUT: each part
 * switches its own port on both halves, and rig_safe() restores the uplink and powers
 * the DUT off.
 */
static void test_uplink_usb(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uplink(f, "1-1", NULL, 3, NULL, 4, 0), 0);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	assert_int_equal(rig_network_uplink(f->rig, false, -1), 0);
	assert_int_equal(usbhub_emu_power(emu, hub3_u2, 3), 0);
	assert_int_equal(usbhub_emu_power(emu, hub3_u3, 3), 0);   /* the companion 2-1 too */
	assert_int_equal(usbhub_emu_power(emu, hub3_u2, 4), 1);   /* the DUT keeps power */
	assert_int_equal(usbhub_emu_power(emu, hub3_u2, 2), 1);
	assert_int_equal(rig_network_uplink(f->rig, true, -1), 0);
	assert_int_equal(usbhub_emu_power(emu, hub3_u2, 3), 1);
	assert_int_equal(usbhub_emu_power(emu, hub3_u3, 3), 1);

	assert_int_equal(rig_network_uplink(f->rig, false, -1), 0);
	assert_int_equal(rig_safe(f->rig), 0);
	assert_int_equal(usbhub_emu_power(emu, hub3_u2, 3), 1);
	assert_int_equal(usbhub_emu_power(emu, hub3_u3, 3), 1);
	assert_int_equal(usbhub_emu_power(emu, hub3_u2, 4), 0);   /* safe: DUT off */
	assert_int_equal(usbhub_emu_power(emu, hub3_u3, 4), 0);
}

static void test_uplink_usb_refused(void **state)
{
	struct fx *f = *state;

	assert_int_equal(open_uplink(f, "1-3", NULL, 1, NULL, 0, 0), RIG_E_NOTSUP);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "hub 1-3 (1a40:0101) cannot switch ports one by one: it reports ganged power switching"));
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "docs/hardware/uhub.md"));
	reopen(f);
	assert_int_equal(open_uplink(f, "1-4", NULL, 1, NULL, 0, 0), RIG_E_NOTSUP);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "no power switching"));
	reopen(f);
	assert_int_equal(open_uplink(f, "1-9", NULL, 1, NULL, 0, 0), RIG_E_NODEV);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "no USB hub at 1-9 (list hubs with `uhubctl` or `lsusb -t`)"));
	reopen(f);
	assert_int_equal(open_uplink(f, "1-2", NULL, 5, NULL, 0, 0), RIG_E_NOENT);
	assert_non_null(strstr(rig_ctx_errmsg(f->ctx), "hub 1-2 has no port 5 (it has 4)"));
	assert_int_equal(usbhub_emu_switches(emu, ganged), 0);
	assert_int_equal(usbhub_emu_switches(emu, nops), 0);
}

/*
 * A hub that stops answering: the cut returns RIG_E_TIMEOUT after the caller's timeout
 * (120 ms here, not the part's 5 s), and is not recorded as done. The upper bound is
 * generous: the machine may be loaded; it only has to be well under the part's timeout.
 */
static void test_uplink_usb_timeout(void **state)
{
	struct fx *f = *state;
	int64_t t0, dt;
	unsigned int n0;

	assert_int_equal(open_uplink(f, "1-2", NULL, 1, NULL, 0, 5000), 0);
	n0 = usbhub_emu_switches(emu, hub2);
	usbhub_emu_hang(emu, hub2, true);
	t0 = now_ms();
	assert_int_equal(rig_network_uplink(f->rig, false, 120), RIG_E_TIMEOUT);
	dt = now_ms() - t0;
	assert_true(dt >= 110);
	assert_true(dt < 2500);
	assert_non_null(strstr(rig_errmsg(f->rig), "no answer within 120 ms"));
	assert_int_equal(usbhub_emu_power(emu, hub2, 1), 1);
	usbhub_emu_hang(emu, hub2, false);
	rig_clear_error(f->rig);
	assert_int_equal(rig_safe(f->rig), 0);
	assert_int_equal(usbhub_emu_switches(emu, hub2), n0);      /* nothing to restore */
}

/* ---- cross-check with uhubctl on the same emulation ---- */

static bool have_uhubctl(void)
{
	return system("command -v uhubctl >/dev/null 2>&1") == 0;
}

/*
 * Run uhubctl with @args; output in @out. Its sysfs attempt finds no `disable` attribute
 * in the testbed (as on Linux < 6.0), so it uses the hub requests, as rigor does here.
 */
static void uhubctl(const char *args, char *out, size_t len)
{
	char cmd[256];
	size_t n;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "uhubctl %s 2>&1", args);
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(out, 1, len - 1, p);
	out[n] = 0;
	if (pclose(p) != 0)
		fail_msg("uhubctl %s failed:\n%s", args, out);
}

/* Every port of the switchable hubs: what one on/off must leave identical. */
static void snapshot(char *s)
{
	int hubs[3] = { hub3_u2, hub3_u3, hub2 }, k = 0;

	for (int h = 0; h < 3; h++)
		for (unsigned int p = 1; p <= 4; p++)
			s[k++] = (char)('0' + usbhub_emu_power(emu, hubs[h], p));
	s[k] = 0;
}

/* uhubctl's status line for @port of hub @loc says off (0) or power (1), -1 not shown. */
static int uhubctl_port(const char *out, const char *loc, int port)
{
	char head[64], line[32];
	const char *s, *e;

	snprintf(head, sizeof(head), "status for hub %s [", loc);
	s = strstr(out, head);
	if (!s)
		return -1;
	snprintf(line, sizeof(line), "  Port %d: ", port);
	s = strstr(s, line);
	if (!s)
		return -1;
	e = strchr(s, '\n');
	if (e && memmem(s, (size_t)(e - s), " off", 4))
		return 0;
	if (e && memmem(s, (size_t)(e - s), " power", 6))
		return 1;
	return -1;
}

static void test_uhubctl_agrees(void **state)
{
	struct fx *f = *state;
	char out[8192], after_rigor_off[32], after_rigor_on[32], s[32];

	if (!have_uhubctl())
		skip();
	assert_int_equal(open_uhub(f, "1-1", NULL, 4, false, 0, 0), 0);

	/* rigor switches, uhubctl reads: both halves as rigor's get says */
	assert_int_equal(rig_power_set(f->rig, false), 0);
	snapshot(after_rigor_off);
	uhubctl("-l 1-1 -p 4", out, sizeof(out));
	assert_int_equal(uhubctl_port(out, "1-1", 4), 0);
	assert_int_equal(uhubctl_port(out, "2-1", 4), 0);     /* uhubctl pairs 2-1 with 1-1 */
	assert_int_equal(rig_power_get(f->rig), 0);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	snapshot(after_rigor_on);
	uhubctl("-l 1-1 -p 4", out, sizeof(out));
	assert_int_equal(uhubctl_port(out, "1-1", 4), 1);
	assert_int_equal(uhubctl_port(out, "2-1", 4), 1);
	assert_int_equal(rig_power_get(f->rig), 1);

	/* uhubctl switches: the hubs end up exactly as rigor leaves them, rigor reads it */
	uhubctl("-l 1-1 -p 4 -a off", out, sizeof(out));
	snapshot(s);
	assert_string_equal(s, after_rigor_off);
	assert_int_equal(rig_power_get(f->rig), 0);
	uhubctl("-l 1-1 -p 4 -a on", out, sizeof(out));
	snapshot(s);
	assert_string_equal(s, after_rigor_on);
	assert_int_equal(rig_power_get(f->rig), 1);

	/* and uhubctl, too, leaves the ganged hub and the one without switching alone */
	uhubctl("", out, sizeof(out));
	assert_null(strstr(out, "status for hub 1-3 "));
	assert_null(strstr(out, "status for hub 1-4 "));
	assert_non_null(strstr(out, "status for hub 1-2 ["));
}

/* The testbed's sysfs attribute of the kernel6 hub's @port. */
static char *kernel_disable(unsigned int port)
{
	static char buf[16];
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/bus/usb/devices/1-5:1.0/1-5-port%u/disable", port);
	f = fopen(path, "r");      /* redirected into the testbed by the preload */
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
	return buf;
}

/*
 * Linux >= 6.0: rigor and uhubctl both switch through the kernel's `disable` attribute
 * (no hub request is sent), and each reads what the other did.
 */
static void test_uhubctl_sysfs_agrees(void **state)
{
	struct fx *f = *state;
	char out[8192];

	if (!have_uhubctl())
		skip();
	assert_int_equal(open_uhub(f, "1-5", NULL, 2, false, 0, 0), 0);
	assert_int_equal(rig_power_set(f->rig, false), 0);
	assert_string_equal(kernel_disable(2), "1");
	assert_string_equal(kernel_disable(1), "0");
	uhubctl("-l 1-5 -p 2", out, sizeof(out));
	assert_int_equal(uhubctl_port(out, "1-5", 2), 0);
	assert_int_equal(rig_power_set(f->rig, true), 0);
	assert_string_equal(kernel_disable(2), "0");
	uhubctl("-l 1-5 -p 2 -a off", out, sizeof(out));
	assert_string_equal(kernel_disable(2), "1");
	assert_int_equal(rig_power_get(f->rig), 0);
	uhubctl("-l 1-5 -p 2 -a on", out, sizeof(out));
	assert_string_equal(kernel_disable(2), "0");
	assert_int_equal(rig_power_get(f->rig), 1);
	/* neither sent a hub class request: both used the attribute */
	assert_int_equal(usbhub_emu_switches(emu, kernel6), 0);
}

/*
 * The uplink at a hub port, read back by uhubctl: through hub requests (1-1, both halves)
 * and through the kernel's attribute (1-5); uhubctl's own switching is what rigor then
 * restores from.
 */
static void test_uhubctl_uplink(void **state)
{
	struct fx *f = *state;
	char out[8192];

	if (!have_uhubctl())
		skip();
	assert_int_equal(open_uplink(f, "1-1", NULL, 2, NULL, 0, 0), 0);
	assert_int_equal(rig_network_uplink(f->rig, false, -1), 0);
	uhubctl("-l 1-1 -p 2", out, sizeof(out));
	assert_int_equal(uhubctl_port(out, "1-1", 2), 0);
	assert_int_equal(uhubctl_port(out, "2-1", 2), 0);
	assert_int_equal(rig_network_uplink(f->rig, true, -1), 0);
	uhubctl("-l 1-1 -p 2", out, sizeof(out));
	assert_int_equal(uhubctl_port(out, "1-1", 2), 1);
	assert_int_equal(uhubctl_port(out, "2-1", 2), 1);
	/* cut by rigor, switched off once more by uhubctl: rig_safe() still restores it */
	assert_int_equal(rig_network_uplink(f->rig, false, -1), 0);
	uhubctl("-l 1-1 -p 2 -a off", out, sizeof(out));
	assert_int_equal(rig_safe(f->rig), 0);
	uhubctl("-l 1-1 -p 2", out, sizeof(out));
	assert_int_equal(uhubctl_port(out, "1-1", 2), 1);
	assert_int_equal(uhubctl_port(out, "2-1", 2), 1);

	reopen(f);
	assert_int_equal(open_uplink(f, "1-5", NULL, 3, NULL, 0, 0), 0);
	assert_int_equal(rig_network_uplink(f->rig, false, -1), 0);
	assert_string_equal(kernel_disable(3), "1");
	assert_string_equal(kernel_disable(2), "0");
	uhubctl("-l 1-5 -p 3", out, sizeof(out));
	assert_int_equal(uhubctl_port(out, "1-5", 3), 0);
	assert_int_equal(rig_network_uplink(f->rig, true, -1), 0);
	assert_string_equal(kernel_disable(3), "0");
	uhubctl("-l 1-5 -p 3", out, sizeof(out));
	assert_int_equal(uhubctl_port(out, "1-5", 3), 1);
	assert_int_equal(usbhub_emu_switches(emu, kernel6), 0);   /* the attribute, no request */
}

int main(int argc, char **argv)
{
	static const char cid[] = "5f2d4c1e9a3b47d08e6f1a2b3c4d5e6f";
	const struct usbhub_emu_hub hubs[] = {
		{ "1-1", 2, false, 4, USBHUB_EMU_PPPS, 0x0bda, 0x5411, "HUB3SER", cid, false },
		{ "2-1", 2, true, 4, USBHUB_EMU_PPPS, 0x0bda, 0x0411, "HUB3SER", cid, false },
		{ "1-2", 3, false, 4, USBHUB_EMU_PPPS, 0x05e3, 0x0608, NULL, NULL, false },
		{ "1-3", 4, false, 4, USBHUB_EMU_GANGED, 0x1a40, 0x0101, NULL, NULL, false },
		{ "1-4", 5, false, 4, USBHUB_EMU_NOPS, 0x1a40, 0x0201, NULL, NULL, false },
		{ "1-5", 6, false, 4, USBHUB_EMU_PPPS, 0x05e3, 0x0608, NULL, NULL, true },
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sysfs_on_off, setup_sysfs, teardown_sysfs),
		cmocka_unit_test_setup_teardown(test_sysfs_inverted, setup_sysfs, teardown_sysfs),
		cmocka_unit_test_setup_teardown(test_sysfs_min_off, setup_sysfs, teardown_sysfs),
		cmocka_unit_test_setup_teardown(test_sysfs_by_serial, setup_sysfs, teardown_sysfs),
		cmocka_unit_test_setup_teardown(test_sysfs_port_missing, setup_sysfs, teardown_sysfs),
		cmocka_unit_test_setup_teardown(test_sysfs_gone_or_odd, setup_sysfs, teardown_sysfs),
		cmocka_unit_test_setup_teardown(test_bad_params, setup_sysfs, teardown_sysfs),
		cmocka_unit_test_setup_teardown(test_uplink_sysfs, setup_sysfs, teardown_sysfs),
		cmocka_unit_test_setup_teardown(test_uplink_sysfs_by_serial, setup_sysfs, teardown_sysfs),
		cmocka_unit_test_setup_teardown(test_uplink_bad_params, setup_sysfs, teardown_sysfs),
		cmocka_unit_test_setup_teardown(test_uplink_none, setup_sysfs, teardown_sysfs),
		cmocka_unit_test_setup_teardown(test_uplink_cancelled, setup_sysfs, teardown_sysfs),
		cmocka_unit_test_setup_teardown(test_uplink_gone, setup_sysfs, teardown_sysfs),
		cmocka_unit_test_setup_teardown(test_usb_on_off_both_halves, setup_usb, teardown_usb),
		cmocka_unit_test_setup_teardown(test_usb_inverted_usb2_hub, setup_usb, teardown_usb),
		cmocka_unit_test_setup_teardown(test_usb_by_serial, setup_usb, teardown_usb),
		cmocka_unit_test_setup_teardown(test_usb_refuses_ganged, setup_usb, teardown_usb),
		cmocka_unit_test_setup_teardown(test_usb_missing, setup_usb, teardown_usb),
		cmocka_unit_test_setup_teardown(test_usb_stall, setup_usb, teardown_usb),
		cmocka_unit_test_setup_teardown(test_usb_timeout, setup_usb, teardown_usb),
		cmocka_unit_test_setup_teardown(test_uplink_usb, setup_usb, teardown_usb),
		cmocka_unit_test_setup_teardown(test_uplink_usb_refused, setup_usb, teardown_usb),
		cmocka_unit_test_setup_teardown(test_uplink_usb_timeout, setup_usb, teardown_usb),
		cmocka_unit_test_setup_teardown(test_uhubctl_agrees, setup_usb, teardown_usb),
		cmocka_unit_test_setup_teardown(test_uhubctl_sysfs_agrees, setup_usb, teardown_usb),
		cmocka_unit_test_setup_teardown(test_uhubctl_uplink, setup_usb, teardown_usb),
	};
	int *idx[] = { &hub3_u2, &hub3_u3, &hub2, &ganged, &nops, &kernel6 };
	int rc;

	(void)argc;
	umockfx_ensure_preload(argv, NULL);
	emu = usbhub_emu_new();
	if (!emu) {
		fprintf(stderr, "test_uhub: cannot set up the hub emulation\n");
		return 1;
	}
	for (size_t i = 0; i < RIG_ARRAY_SIZE(hubs); i++) {
		*idx[i] = usbhub_emu_add(emu, &hubs[i]);
		if (*idx[i] < 0) {
			fprintf(stderr, "test_uhub: cannot add hub %s\n", hubs[i].path);
			return 1;
		}
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	usbhub_emu_free(emu);
	return rc;
}
