/* SPDX-License-Identifier: MIT */
/*
 * The rpiboot usbboot back-end (drivers/rpiboot.c) through the library front end, on a
 * BCM2711 (Raspberry Pi 4 / CM4) in USB boot mode emulated by umockdev in this process
 * (fixtures/bcm2711.c): the ROM stage, the re-enumeration, the file server, the ways
 * each can fail, and the Compute Module flash flow of rig_flash() (usbboot into mass
 * storage, flash the disk that appears, power off). Then the other SoCs the fixture
 * plays (BCM2835, BCM2837 with its second interface, BCM2712), each booted end to end:
 * the second stage and lookup directory its IDs call for. The tests assert the exact
 * bytes the emulated device received. The program re-executes itself under
 * libumockdev-preload when started without it.
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
#include <libusb.h>

#include "fixtures/bcm2711.h"
#include "internal.h"
#include "rig_flash.h"
#include "fixtures/rigfx.h"
#include "fixtures/umockfx.h"

#define PORT "1-1.3"
#define EVENTS_MAX 8192

struct soc_case;

struct tfx {
	struct fx *f;
	struct bcm2711_emu *emu;
	const struct soc_case *sc;  /* the SoC tests' parameter, NULL for the others */
	char boot[96];              /* the boot directory */
	char events[EVENTS_MAX];    /* every rig event, one per line */
	size_t elen;
};

static void on_event(void *user, const char *msg)
{
	struct tfx *t = user;

	if (t->elen < sizeof(t->events))
		t->elen += (size_t)snprintf(t->events + t->elen, sizeof(t->events) - t->elen,
					    "%s\n", msg);
}

/* Deterministic, not too regular bytes. */
static unsigned char *pattern(size_t n, unsigned int seed)
{
	unsigned char *b = malloc(n ? n : 1);
	unsigned int x = seed * 2654435761u + 1;

	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (unsigned char)(x >> 16);
	}
	return b;
}

static void write_file(const char *dir, const char *name, const void *data, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

/* A file of @n pattern bytes in the boot directory; returns its contents (caller frees). */
static unsigned char *boot_file(struct tfx *t, const char *name, size_t n, unsigned int seed)
{
	unsigned char *b = pattern(n, seed);

	write_file(t->boot, name, b, n);
	return b;
}

static int setup(void **state)
{
	struct tfx *t = calloc(1, sizeof(*t));

	assert_non_null(t);
	t->sc = *state;             /* cmocka's prestate, NULL without one */
	t->emu = bcm2711_emu_new();
	assert_non_null(t->emu);
	t->f = rigfx_new("rpiboot");
	snprintf(t->boot, sizeof(t->boot), "%s/boot", t->f->dir);
	assert_int_equal(mkdir(t->boot, 0755), 0);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tfx *t = *state;

	rigfx_release(t->f);
	bcm2711_emu_free(t->emu);
	free(t);
	return 0;
}

/* A rig whose usbboot is rpiboot { usb_path = @path, usb_serial = @serial } (NULL: unset). */
static int open_rig(struct tfx *t, const char *path, const char *serial, int timeout_ms)
{
	int p;

	t->f->d = rig_desc_new(t->f->ctx, "rpiboot-test.lua");
	rig_desc_set_str(t->f->d, -1, "name", "cm", 1);
	p = rig_desc_add_part(t->f->d, "usbboot", NULL, "rpiboot", 2);
	if (path)
		rig_desc_set_str(t->f->d, p, "usb_path", path, 2);
	if (serial)
		rig_desc_set_str(t->f->d, p, "usb_serial", serial, 2);
	if (timeout_ms)
		rig_desc_set_int(t->f->d, p, "timeout_ms", timeout_ms, 2);
	p = rig_open(t->f->ctx, t->f->d, &t->f->rig);
	if (p == 0)
		rig_set_event_cb(t->f->rig, on_event, t);
	return p;
}

static void has(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("'%s' not in:\n%s", needle, hay);
}

static const struct bcm2711_log *log_of(struct tfx *t)
{
	const struct bcm2711_log *l = bcm2711_emu_log(t->emu);

	if (l->error[0])
		fail_msg("the device saw a protocol error: %s", l->error);
	return l;
}

/* The boot message: the second stage's length, little-endian, then 20 zero bytes. */
static void check_boot_msg(const struct bcm2711_log *l, size_t len)
{
	assert_int_equal(l->boot_msg_len, 24);
	assert_int_equal(l->boot_msg[0] | l->boot_msg[1] << 8 | l->boot_msg[2] << 16 |
			 l->boot_msg[3] << 24, len);
	for (int i = 4; i < 24; i++)
		assert_int_equal(l->boot_msg[i], 0);
}

static void check_answer(const struct bcm2711_log *l, size_t i, unsigned int cmd,
			 const char *name, long long size, const unsigned char *data)
{
	assert_true(i < l->nans);
	assert_int_equal(l->ans[i].cmd, cmd);
	assert_string_equal(l->ans[i].name, name);
	assert_int_equal(l->ans[i].size, size);
	if (cmd == BCM2711_READ_FILE) {
		assert_int_equal(l->ans[i].len, size);
		if (size > 0)
			assert_memory_equal(l->ans[i].data, data, (size_t)size);
	} else {
		assert_int_equal(l->ans[i].len, 0);     /* GetFileSize: no bulk data */
	}
}

static void test_full_boot(void **state)
{
	struct tfx *t = *state;
	const struct bcm2711_req reqs[] = {
		{ BCM2711_GET_FILE_SIZE, "config.txt" }, { BCM2711_READ_FILE, "config.txt" },
		{ BCM2711_GET_FILE_SIZE, "start4.elf" }, { BCM2711_READ_FILE, "start4.elf" },
		{ BCM2711_DONE, "" },
	};
	/* sizes off the 16 KiB bulk pieces and the 512-byte packets */
	unsigned char *bc = boot_file(t, "bootcode4.bin", 40001, 1);
	unsigned char *cfg = boot_file(t, "config.txt", 37, 2);
	unsigned char *elf = boot_file(t, "start4.elf", 3 * 16384 + 512, 3);
	const struct bcm2711_log *l;

	assert_int_equal(bcm2711_emu_add_rom(t->emu, PORT, NULL, 0), 0);
	bcm2711_emu_set_requests(t->emu, reqs, RIG_ARRAY_SIZE(reqs));
	assert_int_equal(open_rig(t, PORT, NULL, 5000), 0);
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), 0);
	l = log_of(t);
	check_boot_msg(l, 40001);
	assert_int_equal(l->rom_boots, 1);
	assert_int_equal(l->second_len, 40001);
	assert_memory_equal(l->second, bc, 40001);
	assert_int_equal(l->retcode_reads, 1);
	assert_int_equal(l->nans, 5);
	check_answer(l, 0, BCM2711_GET_FILE_SIZE, "config.txt", 37, NULL);
	check_answer(l, 1, BCM2711_READ_FILE, "config.txt", 37, cfg);
	check_answer(l, 2, BCM2711_GET_FILE_SIZE, "start4.elf", 3 * 16384 + 512, NULL);
	check_answer(l, 3, BCM2711_READ_FILE, "start4.elf", 3 * 16384 + 512, elf);
	assert_true(l->done);
	assert_int_equal(l->ans[4].size, 0);    /* an empty name: answered size 0, as rpiboot */
	assert_int_equal(l->stalls, 0);
	has(t->events, "ROM stage: BCM2711 boot ROM (0a5c:2711) at 1-1.3\n");
	has(t->events, "ROM stage: sent bootcode4.bin (40001 bytes)\n");
	has(t->events, "waiting for re-enumeration\n");
	has(t->events, "file server: second stage (0a5c:2711) at 1-1.3");
	has(t->events, "file server: GetFileSize config.txt (37 bytes)\n");
	has(t->events, "file server: ReadFile start4.elf (49664 bytes)\n");
	has(t->events, "file server: Done (empty name)\nusbboot done\n");
	free(bc);
	free(cfg);
	free(elf);
}

/* A file the device asks for that is not there: size 0 and no data, and it goes on. */
static void test_missing_file(void **state)
{
	struct tfx *t = *state;
	const struct bcm2711_req reqs[] = {
		{ BCM2711_GET_FILE_SIZE, "pieeprom.upd" }, { BCM2711_READ_FILE, "pieeprom.upd" },
		{ BCM2711_GET_FILE_SIZE, "../etc/passwd" },     /* refused: outside DIR */
		{ BCM2711_GET_FILE_SIZE, "config.txt" }, { BCM2711_READ_FILE, "config.txt" },
		{ BCM2711_GET_FILE_SIZE, "empty.txt" }, { BCM2711_READ_FILE, "empty.txt" },
		{ BCM2711_DONE, "" },
	};
	unsigned char *bc = boot_file(t, "bootcode4.bin", 1000, 4);
	unsigned char *cfg = boot_file(t, "config.txt", 5, 5);
	const struct bcm2711_log *l;

	write_file(t->boot, "empty.txt", "", 0);
	write_file(t->f->dir, "etc-passwd", "secret", 6);
	assert_int_equal(bcm2711_emu_add_rom(t->emu, PORT, NULL, 0), 0);
	bcm2711_emu_set_requests(t->emu, reqs, RIG_ARRAY_SIZE(reqs));
	assert_int_equal(open_rig(t, PORT, NULL, 5000), 0);
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), 0);
	l = log_of(t);
	assert_int_equal(l->nans, 8);
	check_answer(l, 0, BCM2711_GET_FILE_SIZE, "pieeprom.upd", 0, NULL);
	check_answer(l, 1, BCM2711_READ_FILE, "pieeprom.upd", 0, NULL);
	check_answer(l, 2, BCM2711_GET_FILE_SIZE, "../etc/passwd", 0, NULL);
	check_answer(l, 3, BCM2711_GET_FILE_SIZE, "config.txt", 5, NULL);
	check_answer(l, 4, BCM2711_READ_FILE, "config.txt", 5, cfg);
	check_answer(l, 5, BCM2711_GET_FILE_SIZE, "empty.txt", 0, NULL);
	check_answer(l, 6, BCM2711_READ_FILE, "empty.txt", 0, NULL);
	assert_true(l->done);
	has(t->events, "file server: GetFileSize pieeprom.upd: not in '");
	has(t->events, "answered size 0");
	free(bc);
	free(cfg);
}

/*
 * The upstream mass-storage-gadget64 layout: bootfiles.bin, a tar of 2711/<file>; a file
 * in DIR/2711/ overrides the archive's; other names fall back to DIR/<file>.
 */
static void test_bootfiles_archive(void **state)
{
	struct tfx *t = *state;
	const struct bcm2711_req reqs[] = {
		{ BCM2711_READ_FILE, "boot.img" },      /* from the archive */
		{ BCM2711_READ_FILE, "config.txt" },    /* DIR/2711/config.txt over the archive's */
		{ BCM2711_READ_FILE, "cmdline.txt" },   /* DIR/cmdline.txt */
		{ BCM2711_DONE, "" },
	};
	char stage[160], cmd[512];
	unsigned char *bc, *img, *cfg, *cmdline;
	const struct bcm2711_log *l;

	snprintf(stage, sizeof(stage), "%s/stage", t->f->dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/2711 %s/2711", stage, t->boot);
	assert_int_equal(system(cmd), 0);
	bc = pattern(20000, 6);
	img = pattern(70000, 7);
	cfg = pattern(11, 8);
	cmdline = pattern(9, 9);
	snprintf(cmd, sizeof(cmd), "%s/2711", stage);
	write_file(cmd, "bootcode4.bin", bc, 20000);
	write_file(cmd, "boot.img", img, 70000);
	write_file(cmd, "config.txt", "archive", 7);
	snprintf(cmd, sizeof(cmd), "tar -C %s -cf %s/bootfiles.bin 2711", stage, t->boot);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/2711", t->boot);
	write_file(cmd, "config.txt", cfg, 11);
	write_file(t->boot, "cmdline.txt", cmdline, 9);
	assert_int_equal(bcm2711_emu_add_rom(t->emu, PORT, NULL, 0), 0);
	bcm2711_emu_set_requests(t->emu, reqs, RIG_ARRAY_SIZE(reqs));
	assert_int_equal(open_rig(t, PORT, NULL, 5000), 0);
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), 0);
	l = log_of(t);
	check_boot_msg(l, 20000);
	assert_memory_equal(l->second, bc, 20000);
	check_answer(l, 0, BCM2711_READ_FILE, "boot.img", 70000, img);
	check_answer(l, 1, BCM2711_READ_FILE, "config.txt", 11, cfg);
	check_answer(l, 2, BCM2711_READ_FILE, "cmdline.txt", 9, cmdline);
	free(bc);
	free(img);
	free(cfg);
	free(cmdline);
}

/* The device is not there yet when the boot starts: found when it arrives (hotplug). */
static void test_waits_for_device(void **state)
{
	struct tfx *t = *state;
	const struct bcm2711_req reqs[] = { { BCM2711_DONE, "" } };
	unsigned char *bc = boot_file(t, "bootcode4.bin", 512, 10);
	int64_t t0;

	bcm2711_emu_set_requests(t->emu, reqs, 1);
	assert_int_equal(open_rig(t, PORT, NULL, 5000), 0);
	assert_int_equal(bcm2711_emu_add_rom(t->emu, PORT, NULL, 300), 0);
	t0 = rig_now_ms();
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), 0);
	assert_true(rig_now_ms() - t0 >= 250);
	assert_true(rig_now_ms() - t0 < 3000);
	assert_memory_equal(log_of(t)->second, bc, 512);
	free(bc);
}

/* Another device at the port, the boot ROM at another port: neither is taken. */
static void test_wrong_device(void **state)
{
	struct tfx *t = *state;
	unsigned char *bc = boot_file(t, "bootcode4.bin", 512, 11);
	const char *msg;

	assert_int_equal(bcm2711_emu_add_device(t->emu, PORT, 0x1234, 0x5678), 0);
	assert_int_equal(bcm2711_emu_add_rom(t->emu, "1-2", NULL, 0), 0);
	assert_int_equal(open_rig(t, PORT, NULL, 300), 0);
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), RIG_E_NODEV);
	msg = rig_errmsg(t->f->rig);
	has(msg, "usbboot: waiting for the boot ROM: no Raspberry Pi in USB boot mode");
	has(msg, "at 1-1.3");
	has(msg, "within 300 ms");
	has(msg, "1234:5678 at 1-1.3 (not a Raspberry Pi boot device)");
	has(msg, "0a5c:2711 at 1-2 (another port)");
	assert_int_equal(log_of(t)->boot_msg_len, 0);       /* the ROM at 1-2 untouched */
	free(bc);
}

static void test_two_devices(void **state)
{
	struct tfx *t = *state;
	const struct bcm2711_req reqs[] = { { BCM2711_DONE, "" } };
	unsigned char *bc = boot_file(t, "bootcode4.bin", 512, 12);

	bcm2711_emu_set_requests(t->emu, reqs, 1);
	assert_int_equal(bcm2711_emu_add_rom(t->emu, "1-2", "aaaa0001", 0), 0);
	assert_int_equal(bcm2711_emu_add_rom(t->emu, PORT, "bbbb0002", 0), 0);
	/* neither path nor serial: which one? */
	assert_int_equal(open_rig(t, NULL, NULL, 300), 0);
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), RIG_E_INVAL);
	has(rig_errmsg(t->f->rig), "2 Raspberry Pi boot devices attached (");
	has(rig_errmsg(t->f->rig), "0a5c:2711 at 1-1.3");
	has(rig_errmsg(t->f->rig), "0a5c:2711 at 1-2");
	has(rig_errmsg(t->f->rig), "name one with usb_path");
	rig_close(t->f->rig);
	t->f->rig = NULL;
	rig_desc_free(t->f->d);
	/* by the board's serial, which the second stage shows too; followed by its port */
	assert_int_equal(open_rig(t, NULL, "bbbb0002", 5000), 0);
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), 0);
	assert_int_equal(log_of(t)->rom_boots, 1);
	has(t->events, "ROM stage: BCM2711 boot ROM (0a5c:2711) at 1-1.3\n");
	has(t->events, "file server: second stage (0a5c:2711) at 1-1.3");
	free(bc);
}

/* The second stage's file is missing: said before anything is sent, naming file and dir. */
static void test_missing_bootcode(void **state)
{
	struct tfx *t = *state;
	unsigned char *bc = boot_file(t, "bootcode.bin", 512, 13);     /* a Pi 3's, not a 4's */
	char want[256];

	assert_int_equal(bcm2711_emu_add_rom(t->emu, PORT, NULL, 0), 0);
	assert_int_equal(open_rig(t, PORT, NULL, 1000), 0);
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), RIG_E_NOENT);
	snprintf(want, sizeof(want),
		 "usbboot: ROM stage: bootcode4.bin (the second stage for the BCM2711 boot ROM at 1-1.3) not found in '%s'",
		 t->boot);
	has(rig_errmsg(t->f->rig), want);
	assert_int_equal(log_of(t)->boot_msg_len, 0);
	/* a directory with no second stage at all is refused before waiting for a device */
	rig_clear_error(t->f->rig);
	unlink(strcat(strcpy(want, t->boot), "/bootcode.bin"));
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), RIG_E_NOENT);
	has(rig_errmsg(t->f->rig), "no bootcode.bin, bootcode4.bin, bootcode5.bin or bootfiles.bin in '");
	rig_clear_error(t->f->rig);
	assert_int_equal(rig_usbboot(t->f->rig, "/nonexistent-rpiboot", -1), RIG_E_NOENT);
	has(rig_errmsg(t->f->rig), "boot directory '/nonexistent-rpiboot' does not exist");
	free(bc);
}

/* Unplugged while a file goes over the bulk endpoint, in either stage. */
static void test_gone_mid_transfer(void **state)
{
	struct tfx *t = *state;
	const struct bcm2711_req reqs[] = {
		{ BCM2711_GET_FILE_SIZE, "start4.elf" }, { BCM2711_READ_FILE, "start4.elf" },
		{ BCM2711_DONE, "" },
	};
	unsigned char *bc = boot_file(t, "bootcode4.bin", 50000, 14);
	unsigned char *elf = boot_file(t, "start4.elf", 60000, 15);
	const struct bcm2711_log *l;

	assert_int_equal(bcm2711_emu_add_rom(t->emu, PORT, NULL, 0), 0);
	bcm2711_emu_set_requests(t->emu, reqs, RIG_ARRAY_SIZE(reqs));
	bcm2711_emu_gone_in(t->emu, "start4.elf", 20000);
	assert_int_equal(open_rig(t, PORT, NULL, 5000), 0);
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), RIG_E_NODEV);
	has(rig_errmsg(t->f->rig),
	    "usbboot: file server: ReadFile start4.elf: after 16384 of 60000 bytes: the device went away");
	l = log_of(t);
	assert_int_equal(l->ans[1].len, 20000);
	assert_memory_equal(l->ans[1].data, elf, 20000);
	free(bc);
	free(elf);
}

static void test_gone_in_rom_stage(void **state)
{
	struct tfx *t = *state;
	unsigned char *bc = boot_file(t, "bootcode4.bin", 50000, 16);

	assert_int_equal(bcm2711_emu_add_rom(t->emu, PORT, NULL, 0), 0);
	bcm2711_emu_gone_in(t->emu, NULL, 40000);
	assert_int_equal(open_rig(t, PORT, NULL, 5000), 0);
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), RIG_E_NODEV);
	has(rig_errmsg(t->f->rig),
	    "usbboot: ROM stage: sending bootcode4.bin: after 32768 of 50000 bytes: the device went away");
	assert_int_equal(log_of(t)->rom_boots, 0);
	free(bc);
}

/* One STALL on the bulk endpoint: the halt is cleared and the piece sent again. */
static void test_stall_recovers(void **state)
{
	struct tfx *t = *state;
	const struct bcm2711_req reqs[] = {
		{ BCM2711_READ_FILE, "config.txt" }, { BCM2711_DONE, "done" },
	};
	unsigned char *bc = boot_file(t, "bootcode4.bin", 30000, 17);
	unsigned char *cfg = boot_file(t, "config.txt", 100, 18);
	const struct bcm2711_log *l;

	assert_int_equal(bcm2711_emu_add_rom(t->emu, PORT, NULL, 0), 0);
	bcm2711_emu_set_requests(t->emu, reqs, RIG_ARRAY_SIZE(reqs));
	bcm2711_emu_stall_bulk(t->emu, 1);
	assert_int_equal(open_rig(t, PORT, NULL, 5000), 0);
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), 0);
	l = log_of(t);
	assert_int_equal(l->stalls, 1);
	check_boot_msg(l, 30000);
	assert_memory_equal(l->second, bc, 30000);
	check_answer(l, 0, BCM2711_READ_FILE, "config.txt", 100, cfg);
	assert_int_equal(l->ans[1].size, -1);   /* a Done with a name: no answer */
	has(t->events, "file server: Done\nusbboot done\n");
	free(bc);
	free(cfg);
}

static void test_stall_fails(void **state)
{
	struct tfx *t = *state;
	unsigned char *bc = boot_file(t, "bootcode4.bin", 30000, 19);

	assert_int_equal(bcm2711_emu_add_rom(t->emu, PORT, NULL, 0), 0);
	bcm2711_emu_stall_bulk(t->emu, 100);
	assert_int_equal(open_rig(t, PORT, NULL, 5000), 0);
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), RIG_E_IO);
	has(rig_errmsg(t->f->rig),
	    "usbboot: ROM stage: sending the boot message: after 0 of 24 bytes (stalled 3 times): the device stalled the request");
	assert_int_equal(log_of(t)->stalls, 3);
	free(bc);
}

/* The ROM took the second stage, left, and never came back. */
static void test_reenum_timeout(void **state)
{
	struct tfx *t = *state;
	unsigned char *bc = boot_file(t, "bootcode4.bin", 512, 20);
	int64_t t0;

	assert_int_equal(bcm2711_emu_add_rom(t->emu, PORT, NULL, 0), 0);
	bcm2711_emu_no_reenum(t->emu);
	assert_int_equal(open_rig(t, PORT, NULL, 400), 0);
	t0 = rig_now_ms();
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), RIG_E_TIMEOUT);
	assert_true(rig_now_ms() - t0 >= 350);
	assert_true(rig_now_ms() - t0 < 3000);
	has(rig_errmsg(t->f->rig),
	    "usbboot: waiting for re-enumeration: the device did not come back at 1-1.3 as the second stage within the usbboot timeout (400 ms) after bootcode4.bin was sent");
	has(t->events, "ROM stage: sent bootcode4.bin (512 bytes)\nwaiting for re-enumeration\n");
	assert_int_equal(log_of(t)->rom_boots, 1);
	free(bc);
}

/* The caller's timeout wins over the part's; no device at all is RIG_E_NODEV. */
static void test_no_device(void **state)
{
	struct tfx *t = *state;
	unsigned char *bc = boot_file(t, "bootcode4.bin", 512, 21);
	int64_t t0;

	assert_int_equal(open_rig(t, PORT, NULL, 60000), 0);
	t0 = rig_now_ms();
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, 200), RIG_E_NODEV);
	assert_true(rig_now_ms() - t0 < 2000);
	has(rig_errmsg(t->f->rig), "nothing at that port");
	free(bc);
}

/* ---- the Compute Module flow: rig_flash() boots the eMMC into a USB disk first ---- */

static int open_cm4(struct tfx *t, const char *msd_dir, int timeout_ms)
{
	struct rig_desc *d = rig_desc_new(t->f->ctx, "cm4.lua");
	int p;

	rig_desc_set_str(d, -1, "name", "cm4", 1);
	p = rig_desc_add_part(d, "power", NULL, "sim", 2);
	rig_desc_set_int(d, p, "min_off_ms", 0, 2);
	p = rig_desc_add_part(d, "button", "boot", "sim", 3);
	p = rig_desc_add_part(d, "usbboot", NULL, "rpiboot", 4);
	rig_desc_set_str(d, p, "usb_path", PORT, 4);
	if (msd_dir)
		rig_desc_set_str(d, p, "msd_dir", msd_dir, 4);
	rig_desc_set_int(d, p, "timeout_ms", timeout_ms, 4);
	p = rig_desc_add_part(d, "storage", NULL, "usb", 5);
	rig_desc_set_str(d, p, "usb_path", PORT, 5);
	t->f->d = d;
	p = rig_open(t->f->ctx, d, &t->f->rig);
	if (p == 0)
		rig_set_event_cb(t->f->rig, on_event, t);
	return p;
}

/* @a before @b in the events. */
static void before(struct tfx *t, const char *a, const char *b)
{
	const char *pa = strstr(t->events, a), *pb = pa ? strstr(pa, b) : NULL;

	if (!pa || !pb)
		fail_msg("'%s' then '%s' not in:\n%s", a, b, t->events);
}

static void test_cm4_flash(void **state)
{
	struct tfx *t = *state;
	const struct bcm2711_req reqs[] = {
		{ BCM2711_GET_FILE_SIZE, "config.txt" }, { BCM2711_READ_FILE, "config.txt" },
		{ BCM2711_GET_FILE_SIZE, "boot.img" }, { BCM2711_READ_FILE, "boot.img" },
		{ BCM2711_DONE, "" },
	};
	unsigned char *bc = boot_file(t, "bootcode4.bin", 3000, 22);
	unsigned char *cfg = boot_file(t, "config.txt", 40, 23);
	unsigned char *img = boot_file(t, "boot.img", 90000, 24);
	unsigned char *os = pattern(1 << 20, 25), *got = malloc(1 << 20);
	char disk[128], image[128];
	struct rig_flash_opts o;
	struct rig_flash_stats st;
	const struct bcm2711_log *l;
	FILE *f;

	snprintf(disk, sizeof(disk), "%s/emmc.img", t->f->dir);
	snprintf(image, sizeof(image), "%s/os.img", t->f->dir);
	write_file(t->f->dir, "os.img", os, 1 << 20);
	f = fopen(disk, "w");
	assert_non_null(f);
	assert_int_equal(ftruncate(fileno(f), 4 << 20), 0);
	fclose(f);
	bcm2711_emu_set_requests(t->emu, reqs, RIG_ARRAY_SIZE(reqs));
	bcm2711_emu_set_msd(t->emu, disk);
	assert_int_equal(open_cm4(t, t->boot, 5000), 0);
	/* the ROM shows up when the DUT is powered with the strap held */
	assert_int_equal(bcm2711_emu_add_rom(t->emu, PORT, NULL, 100), 0);
	rig_flash_opts_init(&o);
	o.no_bmap = true;
	if (rig_flash(t->f->rig, image, &o, &st) != 0)
		fail_msg("rig_flash: %s\nevents:\n%s", rig_errmsg(t->f->rig), t->events);
	l = log_of(t);
	assert_memory_equal(l->second, bc, 3000);
	check_answer(l, 1, BCM2711_READ_FILE, "config.txt", 40, cfg);
	check_answer(l, 3, BCM2711_READ_FILE, "boot.img", 90000, img);
	assert_true(l->msd);
	/* the image landed on the disk the device showed */
	f = fopen(disk, "r");
	assert_non_null(f);
	assert_int_equal(fread(got, 1, 1 << 20, f), 1 << 20);
	fclose(f);
	assert_memory_equal(got, os, 1 << 20);
	assert_int_equal(st.bytes_verified, 1 << 20);
	/* and the sequence: strap, power, boot, release, disk, flash, power off */
	before(t, "power off\n", "button boot hold\n");
	before(t, "button boot hold\n", "power on\n");
	before(t, "power on\n", "usbboot from '");
	before(t, "ROM stage: sent bootcode4.bin (3000 bytes)\n", "file server: ReadFile boot.img (90000 bytes)\n");
	before(t, "usbboot done\n", "button boot release\n");
	before(t, "button boot release\n", "waiting for the DUT's storage to show up as a USB disk\n");
	before(t, "flash '", "flash done:");
	before(t, "flash done:", "power off\n");
	has(t->events, "(USB 0525:a4a5 serial msd-0001 at 1-1.3 interface 0");
	assert_int_equal(rig_power_get(t->f->rig), 0);
	free(bc);
	free(cfg);
	free(img);
	free(os);
	free(got);
}

/* No device in USB boot mode: the flow fails, releases the strap and powers off. */
static void test_cm4_flash_fails_powers_off(void **state)
{
	struct tfx *t = *state;
	unsigned char *bc = boot_file(t, "bootcode4.bin", 512, 26);
	char image[128];
	struct rig_flash_opts o;
	struct rig_flash_stats st;

	snprintf(image, sizeof(image), "%s/os.img", t->f->dir);
	write_file(t->f->dir, "os.img", bc, 512);
	assert_int_equal(open_cm4(t, t->boot, 300), 0);
	rig_flash_opts_init(&o);
	assert_int_equal(rig_flash(t->f->rig, image, &o, &st), RIG_E_NODEV);
	has(rig_errmsg(t->f->rig), "usbboot: waiting for the boot ROM: no Raspberry Pi in USB boot mode");
	before(t, "button boot hold\n", "power on\n");
	before(t, "power on\n", "button boot release\n");
	before(t, "button boot release\n", "power off\n");
	assert_int_equal(rig_power_get(t->f->rig), 0);
	assert_int_equal(st.bytes_written, 0);
	free(bc);
}

/* rig_usbboot(NULL) boots msd_dir; without one it says where to put it. */
static void test_msd_dir_default(void **state)
{
	struct tfx *t = *state;
	const struct bcm2711_req reqs[] = { { BCM2711_DONE, "" } };
	unsigned char *bc = boot_file(t, "bootcode4.bin", 700, 27);

	assert_int_equal(open_rig(t, PORT, NULL, 300), 0);
	assert_int_equal(rig_usbboot(t->f->rig, NULL, -1), RIG_E_INVAL);
	has(rig_errmsg(t->f->rig), "give a directory, or msd_dir in the usbboot entry of rpiboot-test.lua");
	rig_close(t->f->rig);
	t->f->rig = NULL;
	rig_desc_free(t->f->d);
	t->f->d = NULL;
	bcm2711_emu_set_requests(t->emu, reqs, 1);
	assert_int_equal(bcm2711_emu_add_rom(t->emu, PORT, NULL, 0), 0);
	assert_int_equal(open_cm4(t, t->boot, 5000), 0);
	assert_int_equal(rig_usbboot(t->f->rig, NULL, -1), 0);
	assert_memory_equal(log_of(t)->second, bc, 700);
	free(bc);
}

/* ---- the other SoCs: their IDs, interface, second stage and lookup directory ---- */

struct soc_case {
	enum bcm_soc soc;
	const char *name;           /* as the events name it */
	unsigned int rom_pid, fs_pid;
	const char *second;         /* the second stage its ROM must get */
	const char *dir;            /* its lookup directory */
	int iface;                  /* the ROM's vendor interface */
	unsigned int ep;            /* and that interface's bulk OUT endpoint */
	const char *files[2];       /* what its second stage asks for */
};

static const struct soc_case soc_2835 = {
	BCM_2835, "BCM2835", 0x2763, 0x2764, "bootcode.bin", "2710", 0, 0x01,
	{ "start.elf", "fixup.dat" },
};
static const struct soc_case soc_2837 = {
	BCM_2837, "BCM2837", 0x2764, 0x2764, "bootcode.bin", "2710", 1, 0x03,
	{ "start.elf", "fixup.dat" },
};
static const struct soc_case soc_2711 = {
	BCM_2711, "BCM2711", 0x2711, 0x2711, "bootcode4.bin", "2711", 0, 0x01,
	{ "start4.elf", "fixup4.dat" },
};
static const struct soc_case soc_2712 = {
	BCM_2712, "BCM2712", 0x2712, 0x2712, "bootcode5.bin", "2712", 0, 0x01,
	{ "boot.img", "config.txt" },
};

/* The three second stages, in the order of their SoC directories 2710, 2711, 2712. */
static const char *const seconds[] = { "bootcode.bin", "bootcode4.bin", "bootcode5.bin" };
static const char *const soc_dirs[] = { "2710", "2711", "2712" };

static size_t soc_index(const struct soc_case *sc)
{
	return sc->soc == BCM_2712 ? 2 : sc->soc == BCM_2711 ? 1 : 0;
}

/* What every SoC boot shows: the ROM, its interface and endpoints, the events. */
static void check_soc_boot(struct tfx *t, const struct bcm2711_log *l,
			   const unsigned char *second, size_t len)
{
	const struct soc_case *sc = t->sc;
	char want[160];

	check_boot_msg(l, len);
	assert_int_equal(l->rom_boots, 1);
	assert_int_equal(l->second_len, len);
	assert_memory_equal(l->second, second, len);
	assert_int_equal(l->retcode_reads, 1);
	assert_int_equal(l->rom_iface, sc->iface);
	assert_int_equal(l->rom_ep, sc->ep);
	assert_int_equal(l->fs_iface, 0);
	assert_true(l->done);
	snprintf(want, sizeof(want), "ROM stage: %s boot ROM (0a5c:%04x) at 1-1.3\n", sc->name,
		 sc->rom_pid);
	has(t->events, want);
	snprintf(want, sizeof(want), "ROM stage: sent %s (%zu bytes)\n", sc->second, len);
	has(t->events, want);
	snprintf(want, sizeof(want), "file server: second stage (0a5c:%04x) at 1-1.3", sc->fs_pid);
	has(t->events, want);
	has(t->events, "usbboot done\n");
}

/*
 * A full boot: the ROM gets its own second stage out of a directory that has all three,
 * and the second stage every byte of the files it asks for.
 */
static void test_soc_boot(void **state)
{
	struct tfx *t = *state;
	const struct soc_case *sc = t->sc;
	const struct bcm2711_req reqs[] = {
		{ BCM2711_GET_FILE_SIZE, sc->files[0] }, { BCM2711_READ_FILE, sc->files[0] },
		{ BCM2711_GET_FILE_SIZE, sc->files[1] }, { BCM2711_READ_FILE, sc->files[1] },
		{ BCM2711_GET_FILE_SIZE, "missing.txt" }, { BCM2711_DONE, "" },
	};
	unsigned char *sec[3], *f0 = boot_file(t, sc->files[0], 70001, 43),
			      *f1 = boot_file(t, sc->files[1], 123, 44);
	const size_t sizes[] = { 20011, 30011, 40011 };
	size_t k = soc_index(sc);
	const struct bcm2711_log *l;
	char want[160];

	for (size_t i = 0; i < 3; i++)
		sec[i] = boot_file(t, seconds[i], sizes[i], 40 + (unsigned int)i);
	assert_int_equal(bcm2711_emu_add_soc(t->emu, sc->soc, PORT, NULL, 0), 0);
	bcm2711_emu_set_requests(t->emu, reqs, RIG_ARRAY_SIZE(reqs));
	assert_int_equal(open_rig(t, PORT, NULL, 5000), 0);
	if (rig_usbboot(t->f->rig, t->boot, -1) != 0)
		fail_msg("rig_usbboot: %s\nevents:\n%s", rig_errmsg(t->f->rig), t->events);
	l = log_of(t);
	check_soc_boot(t, l, sec[k], sizes[k]);
	assert_int_equal(l->fs_ep, 0x01);
	assert_int_equal(l->nans, 6);
	check_answer(l, 0, BCM2711_GET_FILE_SIZE, sc->files[0], 70001, NULL);
	check_answer(l, 1, BCM2711_READ_FILE, sc->files[0], 70001, f0);
	check_answer(l, 2, BCM2711_GET_FILE_SIZE, sc->files[1], 123, NULL);
	check_answer(l, 3, BCM2711_READ_FILE, sc->files[1], 123, f1);
	check_answer(l, 4, BCM2711_GET_FILE_SIZE, "missing.txt", 0, NULL);
	snprintf(want, sizeof(want), "file server: ReadFile %s (70001 bytes)\n", sc->files[0]);
	has(t->events, want);
	for (size_t i = 0; i < 3; i++)
		free(sec[i]);
	free(f0);
	free(f1);
}

/*
 * One directory for every SoC, without bootfiles.bin: DIR/<2710|2711|2712>/NAME first
 * (the second stage is only there), then DIR/NAME, as rpiboot looks files up.
 */
static void test_soc_dirs(void **state)
{
	struct tfx *t = *state;
	const struct soc_case *sc = t->sc;
	const struct bcm2711_req reqs[] = {
		{ BCM2711_READ_FILE, "config.txt" },    /* in every SoC directory and in DIR */
		{ BCM2711_READ_FILE, "cmdline.txt" },   /* only in DIR */
		{ BCM2711_DONE, "" },
	};
	unsigned char *sec[3], *cfg[3], *cmdline = boot_file(t, "cmdline.txt", 17, 50);
	size_t k = soc_index(sc);
	char sub[160];

	free(boot_file(t, "config.txt", 33, 51));     /* DIR/config.txt: loses to the SoC's */
	for (size_t i = 0; i < 3; i++) {
		snprintf(sub, sizeof(sub), "%s/%s", t->boot, soc_dirs[i]);
		assert_int_equal(mkdir(sub, 0755), 0);
		sec[i] = pattern(5000 + i, 52 + (unsigned int)i);
		write_file(sub, seconds[i], sec[i], 5000 + i);
		cfg[i] = pattern(40 + i, 55 + (unsigned int)i);
		write_file(sub, "config.txt", cfg[i], 40 + i);
	}
	assert_int_equal(bcm2711_emu_add_soc(t->emu, sc->soc, PORT, NULL, 0), 0);
	bcm2711_emu_set_requests(t->emu, reqs, RIG_ARRAY_SIZE(reqs));
	assert_int_equal(open_rig(t, PORT, NULL, 5000), 0);
	if (rig_usbboot(t->f->rig, t->boot, -1) != 0)
		fail_msg("rig_usbboot: %s\nevents:\n%s", rig_errmsg(t->f->rig), t->events);
	check_soc_boot(t, log_of(t), sec[k], 5000 + k);
	check_answer(log_of(t), 0, BCM2711_READ_FILE, "config.txt", 40 + (long long)k, cfg[k]);
	check_answer(log_of(t), 1, BCM2711_READ_FILE, "cmdline.txt", 17, cmdline);
	for (size_t i = 0; i < 3; i++) {
		free(sec[i]);
		free(cfg[i]);
	}
	free(cmdline);
}

/*
 * bootfiles.bin holding 2710/, 2711/ and 2712/: each SoC gets its own members, over
 * decoys of the same names in DIR.
 */
static void test_soc_bootfiles(void **state)
{
	struct tfx *t = *state;
	const struct soc_case *sc = t->sc;
	const struct bcm2711_req reqs[] = {
		{ BCM2711_GET_FILE_SIZE, "boot.img" }, { BCM2711_READ_FILE, "boot.img" },
		{ BCM2711_DONE, "" },
	};
	unsigned char *sec[3], *img[3];
	size_t k = soc_index(sc);
	char stage[160], dir[200], cmd[512];

	snprintf(stage, sizeof(stage), "%s/stage", t->f->dir);
	for (size_t i = 0; i < 3; i++) {
		snprintf(dir, sizeof(dir), "%s/%s", stage, soc_dirs[i]);
		snprintf(cmd, sizeof(cmd), "mkdir -p %s", dir);
		assert_int_equal(system(cmd), 0);
		sec[i] = pattern(9000 + i, 60 + (unsigned int)i);
		write_file(dir, seconds[i], sec[i], 9000 + i);
		img[i] = pattern(33000 + i, 63 + (unsigned int)i);
		write_file(dir, "boot.img", img[i], 33000 + i);
		free(boot_file(t, seconds[i], 100, 66));    /* decoys in DIR */
	}
	free(boot_file(t, "boot.img", 100, 67));
	snprintf(cmd, sizeof(cmd), "tar -C %s -cf %s/bootfiles.bin 2710 2711 2712", stage, t->boot);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(bcm2711_emu_add_soc(t->emu, sc->soc, PORT, NULL, 0), 0);
	bcm2711_emu_set_requests(t->emu, reqs, RIG_ARRAY_SIZE(reqs));
	assert_int_equal(open_rig(t, PORT, NULL, 5000), 0);
	if (rig_usbboot(t->f->rig, t->boot, -1) != 0)
		fail_msg("rig_usbboot: %s\nevents:\n%s", rig_errmsg(t->f->rig), t->events);
	check_soc_boot(t, log_of(t), sec[k], 9000 + k);
	check_answer(log_of(t), 0, BCM2711_GET_FILE_SIZE, "boot.img", 33000 + (long long)k, NULL);
	check_answer(log_of(t), 1, BCM2711_READ_FILE, "boot.img", 33000 + (long long)k, img[k]);
	for (size_t i = 0; i < 3; i++) {
		free(sec[i]);
		free(img[i]);
	}
}

/* A directory for another SoC: said in the ROM stage, naming the file and where it looked. */
static void test_soc_wrong_dir(void **state)
{
	struct tfx *t = *state;
	const struct soc_case *sc = t->sc;
	size_t k = soc_index(sc);
	char want[400];

	/* every second stage but this SoC's, at the top and in the other SoC directories */
	for (size_t i = 0; i < 3; i++) {
		char sub[160];

		if (i == k)
			continue;
		free(boot_file(t, seconds[i], 64, 70));
		snprintf(sub, sizeof(sub), "%s/%s", t->boot, soc_dirs[i]);
		assert_int_equal(mkdir(sub, 0755), 0);
		write_file(sub, seconds[k], "not mine", 8);
	}
	assert_int_equal(bcm2711_emu_add_soc(t->emu, sc->soc, PORT, NULL, 0), 0);
	assert_int_equal(open_rig(t, PORT, NULL, 1000), 0);
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), RIG_E_NOENT);
	snprintf(want, sizeof(want),
		 "usbboot: ROM stage: %s (the second stage for the %s boot ROM at 1-1.3) not found in '%s' or its %s/",
		 sc->second, sc->name, t->boot, sc->dir);
	has(rig_errmsg(t->f->rig), want);
	assert_int_equal(log_of(t)->boot_msg_len, 0);
}

/* A BCM2835 and a BCM2711 attached at once: named by port, each gets its own boot. */
static void test_mixed_socs(void **state)
{
	struct tfx *t = *state;
	const struct bcm2711_req reqs[] = { { BCM2711_READ_FILE, "start.elf" }, { BCM2711_DONE, "" } };
	unsigned char *bc = boot_file(t, "bootcode.bin", 3000, 80);
	unsigned char *bc4 = boot_file(t, "bootcode4.bin", 4000, 81);
	unsigned char *elf = boot_file(t, "start.elf", 20000, 82);
	const struct bcm2711_log *l;

	bcm2711_emu_set_requests(t->emu, reqs, RIG_ARRAY_SIZE(reqs));
	assert_int_equal(bcm2711_emu_add_soc(t->emu, BCM_2835, "1-2", NULL, 0), 0);
	assert_int_equal(bcm2711_emu_add_soc(t->emu, BCM_2711, PORT, NULL, 0), 0);
	assert_int_equal(open_rig(t, NULL, NULL, 300), 0);
	assert_int_equal(rig_usbboot(t->f->rig, t->boot, -1), RIG_E_INVAL);
	has(rig_errmsg(t->f->rig), "2 Raspberry Pi boot devices attached (");
	has(rig_errmsg(t->f->rig), "0a5c:2763 at 1-2");
	has(rig_errmsg(t->f->rig), "0a5c:2711 at 1-1.3");
	rig_close(t->f->rig);
	t->f->rig = NULL;
	rig_desc_free(t->f->d);
	/* the BCM2835 by its port; its second stage (another PID) is followed there */
	assert_int_equal(open_rig(t, "1-2", NULL, 5000), 0);
	if (rig_usbboot(t->f->rig, t->boot, -1) != 0)
		fail_msg("rig_usbboot: %s\nevents:\n%s", rig_errmsg(t->f->rig), t->events);
	l = log_of(t);
	assert_int_equal(l->rom_boots, 1);
	assert_memory_equal(l->second, bc, 3000);
	check_answer(l, 0, BCM2711_READ_FILE, "start.elf", 20000, elf);
	has(t->events, "ROM stage: BCM2835 boot ROM (0a5c:2763) at 1-2\n");
	has(t->events, "ROM stage: sent bootcode.bin (3000 bytes)\n");
	has(t->events, "file server: second stage (0a5c:2764) at 1-2");
	free(bc);
	free(bc4);
	free(elf);
}

/* ---- upstream rpiboot's requests, replayed (fixtures/rpiboot-upstream.txt) ---- */

#define BOARD "10000000c0ffee42"

/* One run of rpiboot as the transcript tells it, on libusb directly. */
struct replay {
	struct tfx *t;
	libusb_context *usb;
	libusb_device_handle *h;
	int iface, last_serial, iserial;
	unsigned char ep;
	bool by_serial, metadata;
	char serial_num[256];
	unsigned int nmeta;
	const unsigned char *second;
	size_t second_len;
	const char *where;          /* "rpiboot-upstream.txt:NN" for messages */
};

/* ep_write(): the length on EP0, then the bytes in pieces of at most 16 KiB. */
static void replay_write(struct replay *r, const void *buf, size_t len)
{
	size_t done = 0;

	assert_int_equal(libusb_control_transfer(r->h, LIBUSB_REQUEST_TYPE_VENDOR, 0,
						 (uint16_t)(len & 0xffff), (uint16_t)(len >> 16),
						 NULL, 0, 1000), 0);
	while (done < len) {
		int n = len - done < 16384 ? (int)(len - done) : 16384, sent = 0;

		if (libusb_bulk_transfer(r->h, r->ep, (unsigned char *)buf + done, n, &sent, 5000))
			fail_msg("%s: bulk OUT refused after %zu of %zu bytes", r->where, done, len);
		done += (size_t)sent;
	}
}

static int replay_read(struct replay *r, void *buf, size_t len)
{
	return libusb_control_transfer(r->h, LIBUSB_REQUEST_TYPE_VENDOR | LIBUSB_ENDPOINT_IN, 0,
				       (uint16_t)(len & 0xffff), (uint16_t)(len >> 16), buf,
				       (uint16_t)len, 20000);
}

/* One look through the bus, as open_device_with_vid() or open_device_with_serialno(). */
static bool replay_find_once(struct replay *r)
{
	libusb_device **list;
	ssize_t n = libusb_get_device_list(r->usb, &list);

	for (ssize_t i = 0; i < n && !r->h; i++) {
		struct libusb_device_descriptor d;
		libusb_device_handle *h;
		unsigned char s[33] = "";

		if (libusb_get_device_descriptor(list[i], &d) < 0 || d.idVendor != BCM2711_VID)
			continue;
		if (libusb_open(list[i], &h) < 0)
			continue;
		if (r->by_serial &&
		    (libusb_get_string_descriptor_ascii(h, d.iSerialNumber, s, 31) < 0 ||
		     strncmp(BOARD, (char *)s, 32))) {
			libusb_close(h);
			continue;
		}
		/* main(): the stage handled last is never talked to twice */
		if (d.iSerialNumber == r->last_serial) {
			libusb_close(h);
			continue;
		}
		r->h = h;
		r->iserial = d.iSerialNumber;
	}
	if (n >= 0)
		libusb_free_device_list(list, 1);
	return r->h != NULL;
}

static void replay_serve(struct replay *r)
{
	static const char config[] = "arm_64bit=1\nenable_uart=1\n";
	struct { unsigned char cmd[4]; char name[256]; } m;

	for (;;) {
		int got;
		unsigned int cmd;

		memset(&m, 0, sizeof(m));
		got = replay_read(r, &m, sizeof(m));
		if (got == LIBUSB_ERROR_NO_DEVICE || got == LIBUSB_ERROR_IO)
			return;
		assert_true(got >= 0);
		cmd = m.cmd[0] | m.cmd[1] << 8 | m.cmd[2] << 16 | (unsigned)m.cmd[3] << 24;
		if (!m.name[0]) {
			replay_write(r, NULL, 0);
			return;
		}
		if (m.name[0] == '*' && cmd != 2) {
			r->nmeta += r->metadata;
			replay_write(r, NULL, 0);
			continue;
		}
		if (cmd == 2)
			return;
		assert_true(cmd < 2);
		if (strcmp(m.name, "config.txt"))
			replay_write(r, NULL, 0);               /* no such file */
		else if (cmd == 0)
			assert_int_equal(libusb_control_transfer(r->h, LIBUSB_REQUEST_TYPE_VENDOR, 0,
								 sizeof(config) - 1, 0, NULL, 0,
								 1000), 0);
		else
			replay_write(r, config, sizeof(config) - 1);
	}
}

static void replay_step(struct replay *r, char *line)
{
	unsigned char ret[4], msg[24] = { 0 };
	struct libusb_config_descriptor *cfg;
	int left = 5000;

	if (!strcmp(line, "find vid") || !strcmp(line, "find serial")) {
		while (!replay_find_once(r) && left > 0) {
			usleep(5000);
			left -= 5;
		}
		if (!r->h)
			fail_msg("%s: '%s' found no device within 5 s (serial at this stage: not %s?)",
				 r->where, line, BOARD);
	} else if (!strcmp(line, "claim")) {
		assert_int_equal(libusb_get_active_config_descriptor(libusb_get_device(r->h), &cfg), 0);
		r->iface = cfg->bNumInterfaces == 1 ? 0 : 1;
		r->ep = r->iface ? 3 : 1;
		libusb_free_config_descriptor(cfg);
		assert_int_equal(libusb_claim_interface(r->h, r->iface), 0);
	} else if (!strcmp(line, "serial")) {
		r->serial_num[0] = 0;
		libusb_get_string_descriptor_ascii(r->h, (uint8_t)r->iserial,
						   (unsigned char *)r->serial_num,
						   sizeof(r->serial_num));
	} else if (!strcmp(line, "write boot-message")) {
		msg[0] = (unsigned char)(r->second_len & 0xff);
		msg[1] = (unsigned char)(r->second_len >> 8);
		replay_write(r, msg, sizeof(msg));
	} else if (!strcmp(line, "write second-stage")) {
		replay_write(r, r->second, r->second_len);
	} else if (!strcmp(line, "read 4")) {
		assert_int_equal(replay_read(r, ret, sizeof(ret)), 4);
		assert_memory_equal(ret, "\0\0\0\0", 4);
	} else if (!strcmp(line, "close")) {
		libusb_release_interface(r->h, r->iface);
		libusb_close(r->h);
		r->h = NULL;
		r->last_serial = r->iserial;
	} else if (!strcmp(line, "serve")) {
		replay_serve(r);
	} else if (!strcmp(line, "metadata")) {
		/* rpiboot -j writes DIR/<serial_num>.json */
		if (!r->nmeta || strcmp(r->serial_num, BOARD))
			fail_msg("%s: -j would write %u properties to '%s.json', not '%s.json'",
				 r->where, r->nmeta, r->serial_num, BOARD);
	} else {
		fail_msg("%s: unknown transcript step '%s'", r->where, line);
	}
}

/* End the scenario under way: the board saw no protocol error and ran the file server to its end. */
static void replay_end(struct replay *r)
{
	const struct bcm2711_log *l;

	if (!r->usb)
		return;
	if (r->h)
		libusb_close(r->h);
	libusb_exit(r->usb);
	r->usb = NULL;
	r->h = NULL;
	l = log_of(r->t);
	assert_int_equal(l->rom_boots, 1);
	assert_int_equal(l->second_len, r->second_len);
	assert_memory_equal(l->second, r->second, r->second_len);
	assert_true(l->done);
}

/* A fresh board (serial BOARD) and a fresh libusb for a run with @args. */
static void replay_begin(struct replay *r, const char *args)
{
	const struct bcm2711_req reqs[] = {
		{ BCM2711_GET_FILE_SIZE, "config.txt" }, { BCM2711_READ_FILE, "config.txt" },
		{ BCM2711_GET_FILE_SIZE, "*SERIAL*" BOARD },
		{ BCM2711_GET_FILE_SIZE, "*MAC_ADDRESS*dc:a6:32:00:00:01" },
		{ BCM2711_GET_FILE_SIZE, "pieeprom.sig" }, { BCM2711_DONE, "" },
	};

	replay_end(r);
	bcm2711_emu_free(r->t->emu);
	r->t->emu = bcm2711_emu_new();
	assert_non_null(r->t->emu);
	assert_int_equal(bcm2711_emu_add_rom(r->t->emu, PORT, BOARD, 0), 0);
	bcm2711_emu_set_requests(r->t->emu, reqs, RIG_ARRAY_SIZE(reqs));
	assert_int_equal(libusb_init(&r->usb), 0);
	r->by_serial = strstr(args, "-i BOARD") != NULL;
	r->metadata = strstr(args, "-j DIR") != NULL;
	r->last_serial = -1;
	r->nmeta = 0;
}

/*
 * Upstream rpiboot's request sequence in each of its modes (default, -d, -i, -j) is
 * accepted by the emulated board, and the serial it finds and names the board by is the
 * board's at every stage (the second stage once showed its manufacturer instead).
 */
static void test_upstream_transcript(void **state)
{
	struct tfx *t = *state;
	struct replay r = { .t = t, .last_serial = -1 };
	unsigned char *image = pattern(20000, 7);
	char line[256], where[64];
	int lineno = 0, nscen = 0, nsteps = 0;
	FILE *f = fopen(RPIBOOT_TRANSCRIPT, "r");

	if (!f)
		fail_msg("cannot open %s", RPIBOOT_TRANSCRIPT);
	r.second = image;
	r.second_len = 20000;
	r.where = where;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		snprintf(where, sizeof(where), "rpiboot-upstream.txt:%d", ++lineno);
		if (!line[0] || line[0] == '#')
			continue;
		if (!strncmp(line, "scenario ", 9)) {
			replay_begin(&r, line + 9);
			nscen++;
			continue;
		}
		assert_non_null(r.usb);
		replay_step(&r, line);
		nsteps++;
	}
	fclose(f);
	replay_end(&r);
	free(image);
	print_message("replayed %d scenarios, %d requests steps\n", nscen, nsteps);
	assert_int_equal(nscen, 5);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full_boot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_transcript, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bootfiles_archive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waits_for_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_devices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_bootcode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_mid_transfer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_in_rom_stage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stall_recovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stall_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reenum_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cm4_flash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cm4_flash_fails_powers_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_msd_dir_default, setup, teardown),
#define SOC_TESTS(sc) \
		cmocka_unit_test_prestate_setup_teardown(test_soc_boot, setup, teardown, (void *)&sc), \
		cmocka_unit_test_prestate_setup_teardown(test_soc_dirs, setup, teardown, (void *)&sc), \
		cmocka_unit_test_prestate_setup_teardown(test_soc_bootfiles, setup, teardown, (void *)&sc), \
		cmocka_unit_test_prestate_setup_teardown(test_soc_wrong_dir, setup, teardown, (void *)&sc)
		SOC_TESTS(soc_2835),
		SOC_TESTS(soc_2837),
		SOC_TESTS(soc_2711),
		SOC_TESTS(soc_2712),
#undef SOC_TESTS
		cmocka_unit_test_setup_teardown(test_mixed_socs, setup, teardown),
	};

	(void)argc;
	umockfx_ensure_preload(argv, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
