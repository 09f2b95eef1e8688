/* SPDX-License-Identifier: MIT */
/*
 * rpiboot: boot a Raspberry Pi in USB device mode (BCM2835/6/7, BCM2711, BCM2712; a
 * Compute Module with nRPIBOOT held) with libusb-1.0, in process, the way
 * raspberrypi/usbboot's rpiboot does (docs/hardware/cm4-usbboot.md):
 *
 *  1. ROM stage: the boot ROM (VID 0a5c, iSerialNumber index 0 or 3) takes a 24-byte
 *     boot message (the image length, then 20 zero bytes) and the second-stage image
 *     (bootcode.bin, bootcode4.bin on a BCM2711, bootcode5.bin on a BCM2712), each as a
 *     vendor control OUT carrying the length in wValue/wIndex followed by bulk OUT data
 *     in 16 KiB pieces, then answers a 4-byte return code on a control IN.
 *  2. The device leaves and comes back as the second stage (any other iSerialNumber
 *     index) at the same USB port. We wait for it against the deadline, woken by libusb
 *     hotplug events (or by polling the device list when there are none), never by
 *     sleeping a fixed time.
 *  3. File server: the second stage asks with 260-byte control IN requests (int32
 *     command, 256-byte name): GetFileSize is answered by a bare control OUT carrying
 *     the size, ReadFile by the size and the bytes, a missing file by size 0, Done ends.
 *
 * Files are looked up as rpiboot does: first DIR/<2710|2711|2712>/NAME (the SoC's
 * directory: 2710 for the BCM2835/2837), then, when DIR/bootfiles.bin exists (a tar
 * archive, as in the upstream mass-storage-gadget64 directory), the archive's
 * <2710|2711|2712>/NAME, then DIR/NAME. So one directory can serve every SoC. Names with
 * ".." are refused. rpiboot's built-in copies of bootcode.bin/start.elf, its -o
 * per-port overlay and signed boot (-s, BCM2835/2837 only) are not implemented.
 *
 * Unlike rpiboot we never sleep a fixed second before opening a device or reading the
 * ROM's return code: transfers wait on the device within their timeouts, and the return
 * code is only reported (rpiboot ignores it too). The libusb context is the rig
 * context's; the hotplug callback lives for one boot.
 *
 * The device is chosen by the rig file's USB identity: usb_path (port path, "1-1.3")
 * and/or usb_serial (the board's serial string, which every stage shows, as rpiboot -i
 * relies on); after the ROM stage it is followed by its port too.
 * Every stage logs a rig event, and every failure names the stage it happened in.
 */
#define LOG_PREFIX "rpiboot"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libusb.h>

#include "../internal.h"

#define BCM_VID 0x0a5c
#define CHUNK (16 * 1024)               /* bulk piece: usbfs memory is shared (rpiboot) */
#define CTRL_MS 1000                    /* rpiboot's bounds per transfer */
#define BULK_MS 5000
#define READ_MS 2000                    /* one wait for a file-server request; retried */
#define STALL_TRIES 3                   /* bulk pieces are retried after a STALL (balena) */
#define ROM_ROUNDS 3                    /* ROM stages in one boot before giving up */
#define REQ_LEN 260                     /* int32 command + 256-byte name */
#define SEEN_MAX 768

struct rpiboot_conf {
	struct rig_usb_match usb;   /* port "1-1.3" and/or the board's serial; empty: any */
};

/* One boot: everything lives here, nothing in file scope. */
struct boot {
	struct rig_part *p;
	struct rig_ctx *ctx;
	libusb_context *usb;
	const char *dir;
	int timeout_ms;
	struct rig_deadline end;    /* of the whole boot */
	bool hotplug;
	const char *stage;          /* for messages: "ROM stage", "file server", ... */
	char port[32];              /* the port followed after the ROM stage, "" before */
	int last_bus, last_addr;    /* the device handled last: never the next one */
	int rom_rc;                 /* the ROM's return code, -1 none read */
	char second[32];            /* the second-stage file sent last */
	bool bootfiles;             /* DIR/bootfiles.bin exists */
};

/* What to send: a whole file, a member of bootfiles.bin, or bytes in memory. */
struct src {
	int fd;                     /* -1: @mem */
	const unsigned char *mem;
	off_t off;
	size_t size;
	char where[PATH_MAX + 512];
};

static bool boot_pid(int pid)
{
	return pid == 0x2763 || pid == 0x2764 || pid == 0x2711 || pid == 0x2712;
}

/* iSerialNumber index 0 or 3 is a boot ROM; the second stage uses any other. */
static bool rom_stage(const struct libusb_device_descriptor *d)
{
	return d->iSerialNumber == 0 || d->iSerialNumber == 3;
}

static const char *soc_dir(int pid)
{
	return pid == 0x2712 ? "2712" : pid == 0x2711 ? "2711" : "2710";
}

static const char *second_stage_name(int pid)
{
	return pid == 0x2712 ? "bootcode5.bin" : pid == 0x2711 ? "bootcode4.bin" : "bootcode.bin";
}

static const char *soc_name(int pid)
{
	return pid == 0x2712 ? "BCM2712" : pid == 0x2711 ? "BCM2711" : pid == 0x2764 ? "BCM2837"
										 : "BCM2835";
}

/* ---- time ---- */

/* What is left of the boot's time; INT_MAX for a boot without a bound. */
static int left_ms(const struct boot *b)
{
	int left = rig_deadline_left_ms(b->end);

	return left < 0 ? INT_MAX : left;
}

/* A libusb timeout: @cap cut to what is left; 0 when nothing is (libusb's 0 is forever). */
static unsigned int xfer_ms(const struct boot *b, int cap)
{
	int left = left_ms(b);

	return (unsigned int)(left < cap ? left : cap);
}

/* ---- errors ---- */

static int fail(struct boot *b, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct boot *b, int code, const char *fmt, ...)
{
	char msg[RIG_ERRMSG_MAX - 96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return rig_part_fail(b->p, code, "%s: %s", b->stage, msg);
}

/* A libusb error, named with the stage and what was being done. */
static int usb_fail(struct boot *b, int r, const char *what)
{
	return rig_usb_fail(b->p, r, -1, "%s: %s", b->stage, what);
}

/* ---- boot files ---- */

static void src_close(struct src *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static bool open_plain(const char *path, struct src *s)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return false;
	}
	s->fd = fd;
	s->off = 0;
	s->size = (size_t)st.st_size;
	snprintf(s->where, sizeof(s->where), "%s", path);
	return true;
}

/* Find @name (case-insensitive, as rpiboot) in the tar archive @path. */
static bool open_member(const char *path, const char *name, struct src *s)
{
	unsigned char h[512];
	struct stat st;
	off_t pos = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return false;
	}
	while (pos + 512 <= st.st_size && pread(fd, h, sizeof(h), pos) == (ssize_t)sizeof(h)) {
		char mname[101], msize[13];
		unsigned long long size;

		if (!h[0])
			break;                          /* the end-of-archive blocks */
		memcpy(mname, h, 100);
		mname[100] = 0;
		memcpy(msize, h + 124, 12);
		msize[12] = 0;
		size = strtoull(msize, NULL, 8);
		if (pos + 512 + (off_t)size > st.st_size)
			break;                          /* truncated: stop, do not serve garbage */
		if (!strcasecmp(mname, name)) {
			s->fd = fd;
			s->off = pos + 512;
			s->size = (size_t)size;
			snprintf(s->where, sizeof(s->where), "%s:%s", path, mname);
			return true;
		}
		pos += 512 + (off_t)((size + 511) & ~511ULL);
	}
	close(fd);
	return false;
}

/*
 * Look @name up for a device with @pid, in rpiboot's order. Returns true with @s open,
 * false when it is not there (or refused).
 */
static bool lookup(const struct boot *b, int pid, const char *name, struct src *s)
{
	char path[PATH_MAX + 300], member[300];

	*s = (struct src){ .fd = -1 };
	while (*name == '/')
		name++;
	if (!*name || strstr(name, ".."))
		return false;                   /* nothing outside DIR */
	snprintf(path, sizeof(path), "%s/%s/%s", b->dir, soc_dir(pid), name);
	if (open_plain(path, s))
		return true;
	if (b->bootfiles) {
		snprintf(path, sizeof(path), "%s/bootfiles.bin", b->dir);
		snprintf(member, sizeof(member), "%s/%s", soc_dir(pid), name);
		if (open_member(path, member, s))
			return true;
	}
	snprintf(path, sizeof(path), "%s/%s", b->dir, name);
	return open_plain(path, s);
}

/* ---- transfers ---- */

/* Announce @len bytes with a vendor control OUT: wValue/wIndex carry the length. */
static int announce(struct boot *b, libusb_device_handle *h, size_t len, const char *what)
{
	unsigned int ms = xfer_ms(b, CTRL_MS);
	int r;

	if (!ms)
		return fail(b, RIG_E_TIMEOUT, "%s: out of time (usbboot timeout %d ms)", what,
			    b->timeout_ms);
	r = libusb_control_transfer(h, LIBUSB_REQUEST_TYPE_VENDOR | LIBUSB_RECIPIENT_DEVICE |
				    LIBUSB_ENDPOINT_OUT, 0, (uint16_t)(len & 0xffff),
				    (uint16_t)(len >> 16), NULL, 0, ms);
	return r < 0 ? usb_fail(b, r, what) : 0;
}

/*
 * write(len, data): the length on EP0, then @len bytes from @s (unused when @len is 0)
 * on bulk endpoint @ep in 16 KiB pieces. A STALLed piece is retried after clearing the
 * halt, as balena's usbboot port does (rpiboot gives up at once).
 */
static int ep_write(struct boot *b, libusb_device_handle *h, unsigned char ep,
		    const struct src *s, size_t len, const char *what)
{
	unsigned char *buf;
	size_t done = 0;
	int rc = announce(b, h, len, what), stalls = 0;

	if (rc < 0 || !len)
		return rc;
	buf = malloc(CHUNK);
	if (!buf)
		return fail(b, RIG_E_NOMEM, "%s: out of memory", what);
	while (done < len) {
		size_t n = len - done < CHUNK ? len - done : CHUNK, got = 0;
		unsigned int ms;
		int r, sent = 0;
		char msg[256];

		if (rig_ctx_cancelled(b->ctx)) {
			rc = fail(b, RIG_E_INTR, "%s: interrupted after %zu of %zu bytes", what, done, len);
			goto out;
		}
		if (s->fd < 0) {
			memcpy(buf, s->mem + done, n);
			got = n;
		}
		while (got < n) {
			ssize_t k = pread(s->fd, buf + got, n - got, s->off + (off_t)(done + got));

			if (k <= 0) {
				rc = fail(b, k < 0 ? -errno : RIG_E_IO, "%s: cannot read '%s': %s", what,
					  s->where, k < 0 ? strerror(errno) : "file shrank");
				goto out;
			}
			got += (size_t)k;
		}
		ms = xfer_ms(b, BULK_MS);
		if (!ms) {
			rc = fail(b, RIG_E_TIMEOUT, "%s: out of time after %zu of %zu bytes (usbboot timeout %d ms)",
				  what, done, len, b->timeout_ms);
			goto out;
		}
		r = libusb_bulk_transfer(h, ep, buf, (int)n, &sent, ms);
		done += (size_t)(sent > 0 ? sent : 0);
		if (r == LIBUSB_ERROR_PIPE && ++stalls < STALL_TRIES) {
			rig_dbg(b->ctx, "%s: bulk STALL at byte %zu, clearing the halt and retrying",
				what, done);
			libusb_clear_halt(h, ep);
			continue;
		}
		if (r < 0) {
			snprintf(msg, sizeof(msg), "%s: after %zu of %zu bytes%s", what, done, len,
				 r == LIBUSB_ERROR_PIPE ? " (stalled 3 times)" : "");
			rc = usb_fail(b, r, msg);
			goto out;
		}
		stalls = 0;
	}
out:
	free(buf);
	return rc;
}

/* read(len): a vendor control IN of @len bytes. Returns bytes read or LIBUSB_ERROR_*. */
static int ep_read(libusb_device_handle *h, void *buf, size_t len, unsigned int ms)
{
	return libusb_control_transfer(h, LIBUSB_REQUEST_TYPE_VENDOR | LIBUSB_RECIPIENT_DEVICE |
				       LIBUSB_ENDPOINT_IN, 0, (uint16_t)(len & 0xffff),
				       (uint16_t)(len >> 16), buf, (uint16_t)len, ms);
}

/*
 * Open @dev and claim its vendor interface: interface 0 (bulk OUT 0x01) when it has one,
 * interface 1 (bulk OUT 0x03) when a BCM2837 also shows mass storage as interface 0.
 * The endpoint is read from the descriptor when it has one.
 */
static int dev_open(struct boot *b, libusb_device *dev, libusb_device_handle **hp,
		    unsigned char *ep, int *iface)
{
	struct libusb_config_descriptor *cfg = NULL;
	libusb_device_handle *h;
	int r;

	*iface = 0;
	*ep = 0x01;
	if (libusb_get_active_config_descriptor(dev, &cfg) == 0) {
		if (cfg->bNumInterfaces > 1) {
			*iface = 1;
			*ep = 0x03;
		}
		if (*iface < cfg->bNumInterfaces && cfg->interface[*iface].num_altsetting > 0) {
			const struct libusb_interface_descriptor *id = &cfg->interface[*iface].altsetting[0];

			for (int i = 0; i < id->bNumEndpoints; i++) {
				const struct libusb_endpoint_descriptor *e = &id->endpoint[i];

				if ((e->bmAttributes & 3) == LIBUSB_TRANSFER_TYPE_BULK &&
				    !(e->bEndpointAddress & LIBUSB_ENDPOINT_IN)) {
					*ep = e->bEndpointAddress;
					break;
				}
			}
		}
		libusb_free_config_descriptor(cfg);
	}
	r = libusb_open(dev, &h);
	if (r < 0)
		return usb_fail(b, r, "opening the device");
	if (libusb_kernel_driver_active(h, *iface) == 1)
		libusb_detach_kernel_driver(h, *iface);
	r = libusb_claim_interface(h, *iface);
	if (r < 0) {
		libusb_close(h);
		return usb_fail(b, r, "claiming its interface");
	}
	*hp = h;
	return 0;
}

static void dev_close(libusb_device_handle *h, int iface)
{
	libusb_release_interface(h, iface);
	libusb_close(h);
}

/* ---- finding the device ---- */

/* The finder's filter: Broadcom boot devices, and never the one handled last. */
static enum rig_usb_verdict boot_device(void *user, const struct rig_usb_dev *cand,
					char *note, size_t len)
{
	const struct boot *b = user;

	if (cand->vid != BCM_VID || !boot_pid(cand->pid))
		return RIG_USB_IGNORE;
	if (libusb_get_bus_number(cand->dev) == b->last_bus &&
	    libusb_get_device_address(cand->dev) == b->last_addr) {
		snprintf(note, len, "the device just booted, not yet gone");
		return RIG_USB_REJECT;
	}
	return RIG_USB_ACCEPT;
}

/*
 * Look once for the device to talk to next: a Broadcom boot device at the configured
 * (or followed) port, with the configured serial, and not the one handled last. Returns 1 with *@out referenced, 0 when there is none yet, or an error
 * (several candidates). What was seen goes into @seen.
 */
static int scan(struct boot *b, libusb_device **out, char *seen)
{
	const struct rpiboot_conf *c = b->p->conf;
	struct rig_usb_match m = c->usb;
	struct rig_usb_want w = { .noun = "a Raspberry Pi boot device", .filter = boot_device,
				  .user = b };
	struct rig_usb_dev d;
	int n, rc;

	/*
	 * After the ROM stage the device is followed by its port; a usb_serial must still
	 * match, as with rpiboot -i: the board shows its serial at every stage.
	 */
	if (b->port[0])
		snprintf(m.port, sizeof(m.port), "%s", b->port);
	*out = NULL;
	rc = rig_usb_find(b->ctx, &m, &w, &d, &n, seen, SEEN_MAX);
	if (rc == RIG_E_INVAL)
		return fail(b, RIG_E_INVAL,
			    "%d Raspberry Pi boot devices attached (%s); name one with usb_path (or usb_serial) in the rig file",
			    n, seen);
	if (rc == RIG_E_NODEV || rc == RIG_E_IO)
		return 0;       /* not there yet, or not readable yet: keep waiting */
	if (rc < 0)
		return fail(b, rc, "listing USB devices: %s", rig_strerror(rc));
	*out = d.dev;
	return 1;
}

static int LIBUSB_CALL on_hotplug(libusb_context *usb, libusb_device *dev,
				  libusb_hotplug_event ev, void *user)
{
	return 0;       /* only here to wake libusb_handle_events(); stay registered */
}

/*
 * Wait for the next device (see scan()) until the deadline: woken by hotplug events,
 * or polling the device list every 10 ms without them. @reenum: the device is coming
 * back after the ROM stage (the timeout message says so).
 */
static int wait_device(struct boot *b, bool reenum, libusb_device **out)
{
	const struct rpiboot_conf *c = b->p->conf;
	char seen[SEEN_MAX];
	int rc;

	for (;;) {
		int left;

		rc = scan(b, out, seen);
		if (rc != 0)
			return rc < 0 ? rc : 0;
		if (rig_ctx_cancelled(b->ctx))
			return fail(b, RIG_E_INTR, "interrupted while waiting for the device");
		left = left_ms(b);
		if (!left)
			break;
		if (b->hotplug) {
			struct timeval tv = { .tv_sec = 0, .tv_usec = (left < 100 ? left : 100) * 1000 };

			libusb_handle_events_timeout_completed(b->usb, &tv, NULL);
		} else {
			rig_ctx_sleep(b->ctx, left < 10 ? left : 10);
		}
	}
	if (reenum) {
		char rom[48] = "";

		if (b->rom_rc > 0)
			snprintf(rom, sizeof(rom), "; the ROM returned 0x%x", (unsigned)b->rom_rc);
		return fail(b, RIG_E_TIMEOUT,
			    "the device did not come back at %s as the second stage within the usbboot timeout (%d ms) after %s was sent%s; seen: %s",
			    b->port, b->timeout_ms, b->second, rom, seen[0] ? seen : "nothing there");
	}
	return fail(b, RIG_E_NODEV,
		    "no Raspberry Pi in USB boot mode (0a5c:2763/2764/2711/2712%s%s%s%s%s) appeared within %d ms; is it powered with nRPIBOOT held, and its USB port wired as the rig file says? seen: %s",
		    c->usb.port[0] ? " at " : "", c->usb.port, c->usb.serial[0] ? ", serial '" : "",
		    c->usb.serial, c->usb.serial[0] ? "'" : "", b->timeout_ms,
		    seen[0] ? seen : c->usb.port[0] ? "nothing at that port" : "no Broadcom boot device");
}

/* ---- the stages ---- */

static int do_rom_stage(struct boot *b, libusb_device *dev, int pid)
{
	const char *name = second_stage_name(pid);
	unsigned char msg[24] = { 0 }, ret[4];
	libusb_device_handle *h;
	struct src s, m;
	unsigned char ep;
	char what[64];
	int iface, rc, r;

	b->stage = "ROM stage";
	if (!lookup(b, pid, name, &s))
		return fail(b, RIG_E_NOENT, "%s (the second stage for the %s boot ROM at %s) not found in '%s' or its %s/%s",
			    name, soc_name(pid), b->port, b->dir, soc_dir(pid),
			    b->bootfiles ? ", nor in its bootfiles.bin" : "");
	if (s.size > INT32_MAX) {
		src_close(&s);
		return fail(b, RIG_E_INVAL, "'%s' is too large for a second stage", s.where);
	}
	rc = dev_open(b, dev, &h, &ep, &iface);
	if (rc < 0) {
		src_close(&s);
		return rc;
	}
	rig_event(b->p->rig, "ROM stage: %s boot ROM (0a5c:%04x) at %s", soc_name(pid),
		  (unsigned)pid, b->port);
	/* The boot message: the image length, little-endian; no signature (20 zero bytes). */
	msg[0] = (unsigned char)(s.size & 0xff);
	msg[1] = (unsigned char)(s.size >> 8 & 0xff);
	msg[2] = (unsigned char)(s.size >> 16 & 0xff);
	msg[3] = (unsigned char)(s.size >> 24 & 0xff);
	m = (struct src){ .fd = -1, .mem = msg, .size = sizeof(msg), .where = "the boot message" };
	rc = ep_write(b, h, ep, &m, sizeof(msg), "sending the boot message");
	snprintf(what, sizeof(what), "sending %s", name);
	if (rc == 0)
		rc = ep_write(b, h, ep, &s, s.size, what);
	src_close(&s);
	if (rc == 0) {
		snprintf(b->second, sizeof(b->second), "%s", name);
		rig_event(b->p->rig, "ROM stage: sent %s (%zu bytes)", name, s.size);
		/*
		 * The ROM's verdict. rpiboot prints it and goes on either way; the ROM may
		 * already have jumped to the second stage and left, so a failed read is fine.
		 */
		b->rom_rc = -1;
		r = ep_read(h, ret, sizeof(ret), xfer_ms(b, BULK_MS) ? xfer_ms(b, BULK_MS) : 1);
		if (r == (int)sizeof(ret)) {
			b->rom_rc = (int)((unsigned)ret[0] | (unsigned)ret[1] << 8 |
					  (unsigned)ret[2] << 16 | (unsigned)ret[3] << 24);
			if (b->rom_rc)
				rig_warn(b->ctx, "the boot ROM returned 0x%x for %s", (unsigned)b->rom_rc,
					 name);
		} else {
			rig_dbg(b->ctx, "no return code from the ROM (%s): it may have started %s already",
				r < 0 ? libusb_strerror(r) : "short read", name);
		}
	}
	dev_close(h, iface);
	return rc;
}

/* Answer one GetFileSize or ReadFile request. */
static int serve(struct boot *b, libusb_device_handle *h, unsigned char ep, int pid,
		 unsigned int cmd, const char *name, unsigned int *served)
{
	const char *verb = cmd == 0 ? "GetFileSize" : "ReadFile";
	char what[300];
	struct src s;
	int rc;

	snprintf(what, sizeof(what), "%s %s", verb, name);
	if (!lookup(b, pid, name, &s)) {
		/* The protocol's "no such file": size 0, no data. The firmware probes files. */
		rig_event(b->p->rig, "file server: %s: not in '%s', answered size 0", what, b->dir);
		return announce(b, h, 0, what);
	}
	if (s.size > UINT32_MAX) {
		src_close(&s);
		return fail(b, RIG_E_INVAL, "%s: '%s' is too large to serve", what, s.where);
	}
	rig_event(b->p->rig, "file server: %s (%zu bytes)", what, s.size);
	/* GetFileSize: the size alone, on EP0. ReadFile: the size, then the bytes. */
	rc = cmd == 0 ? announce(b, h, s.size, what) : ep_write(b, h, ep, &s, s.size, what);
	src_close(&s);
	*served += rc == 0;
	return rc;
}

static int file_server(struct boot *b, libusb_device *dev, int pid)
{
	unsigned char req[REQ_LEN + 1];
	libusb_device_handle *h;
	unsigned char ep;
	unsigned int served = 0, errors = 0;
	int iface, rc;

	b->stage = "file server";
	rc = dev_open(b, dev, &h, &ep, &iface);
	if (rc < 0)
		return rc;
	rig_event(b->p->rig, "file server: second stage (0a5c:%04x) at %s, serving '%s'",
		  (unsigned)pid, b->port, b->dir);
	for (;;) {
		unsigned int ms = xfer_ms(b, READ_MS), cmd;
		const char *name = (const char *)req + 4;
		int r;

		if (rig_ctx_cancelled(b->ctx)) {
			rc = fail(b, RIG_E_INTR, "interrupted");
			break;
		}
		if (!ms) {
			rc = fail(b, RIG_E_TIMEOUT,
				  "no request from the device within the usbboot timeout (%d ms) after %u files",
				  b->timeout_ms, served);
			break;
		}
		memset(req, 0, sizeof(req));
		r = ep_read(h, req, REQ_LEN, ms);
		if (r == LIBUSB_ERROR_TIMEOUT)
			continue;               /* it is loading; ask again until the deadline */
		if ((r == LIBUSB_ERROR_NO_DEVICE || r == LIBUSB_ERROR_IO) && served) {
			/* rpiboot's end of session too: it started what it loaded, without Done */
			rig_event(b->p->rig, "file server: the device left without Done after %u files",
				  served);
			break;
		}
		if (r == LIBUSB_ERROR_NO_DEVICE || r == LIBUSB_ERROR_IO) {
			rc = usb_fail(b, LIBUSB_ERROR_NO_DEVICE, "waiting for its first request");
			break;
		}
		if (r < 0 && ++errors < 3) {
			rig_dbg(b->ctx, "reading a request: %s; asking again", libusb_strerror(r));
			continue;
		}
		if (r < 0) {
			rc = usb_fail(b, r, "reading a request (3 times)");
			break;
		}
		if (r < 4) {
			rc = fail(b, RIG_E_PROTO, "a request of %d bytes (expected %d)", r, REQ_LEN);
			break;
		}
		errors = 0;
		cmd = (unsigned)req[0] | (unsigned)req[1] << 8 | (unsigned)req[2] << 16 |
		      (unsigned)req[3] << 24;
		if (!name[0]) {
			/* an empty name is a Done too; rpiboot answers it with size 0 */
			rig_event(b->p->rig, "file server: Done (empty name)");
			libusb_control_transfer(h, LIBUSB_REQUEST_TYPE_VENDOR, 0, 0, 0, NULL, 0,
						xfer_ms(b, CTRL_MS) ? xfer_ms(b, CTRL_MS) : 1);
			break;
		}
		if (name[0] == '*' && cmd != 2) {
			/* BCM2711/2712 metadata "PROPERTY*VALUE": acknowledged, logged */
			rig_dbg(b->ctx, "metadata %s", name + 1);
			rc = announce(b, h, 0, "acknowledging metadata");
			if (rc < 0)
				break;
			continue;
		}
		if (cmd == 2) {
			rig_event(b->p->rig, "file server: Done");
			break;
		}
		if (cmd > 2) {
			rc = fail(b, RIG_E_PROTO, "unknown command %u for '%.64s'", cmd, name);
			break;
		}
		rc = serve(b, h, ep, pid, cmd, name, &served);
		if (rc < 0)
			break;
	}
	dev_close(h, iface);
	return rc;
}

static int rpiboot_boot(struct rig_part *p, const char *dir, int timeout_ms)
{
	const struct rpiboot_conf *c = p->conf;
	struct boot b = {
		.p = p, .ctx = rig_part_ctx(p), .dir = dir, .timeout_ms = timeout_ms,
		.end = rig_deadline_start(timeout_ms),
		.stage = "waiting for the boot ROM", .last_bus = -1, .last_addr = -1, .rom_rc = -1,
	};
	libusb_hotplug_callback_handle hp;
	char path[PATH_MAX + 32];
	struct stat st;
	unsigned int roms = 0;
	bool done = false;
	int r, rc = 0;

	snprintf(path, sizeof(path), "%s/bootfiles.bin", dir);
	b.bootfiles = stat(path, &st) == 0 && S_ISREG(st.st_mode);
	if (!b.bootfiles) {
		/* Say now, not after the DUT is in the ROM, that the directory cannot boot it. */
		static const int pids[] = { 0x2764, 0x2711, 0x2712 };
		bool any = false;

		for (size_t i = 0; i < RIG_ARRAY_SIZE(pids) && !any; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, second_stage_name(pids[i]));
			any = stat(path, &st) == 0;
			snprintf(path, sizeof(path), "%s/%s/%s", dir, soc_dir(pids[i]),
				 second_stage_name(pids[i]));
			any = any || stat(path, &st) == 0;
		}
		if (!any)
			return rig_part_fail(p, RIG_E_NOENT,
					     "no bootcode.bin, bootcode4.bin, bootcode5.bin or bootfiles.bin in '%s' (nor 2710/bootcode.bin, 2711/bootcode4.bin or 2712/bootcode5.bin): not a USB boot directory",
					     dir);
	}
	r = rig_usb_ctx(b.ctx, &b.usb);
	if (r < 0)
		return rig_part_fail(p, r, "starting libusb: %s", rig_strerror(r));
	b.hotplug = libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG) &&
		    libusb_hotplug_register_callback(b.usb, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED,
						     0, LIBUSB_HOTPLUG_MATCH_ANY,
						     LIBUSB_HOTPLUG_MATCH_ANY,
						     LIBUSB_HOTPLUG_MATCH_ANY, on_hotplug, NULL,
						     &hp) == 0;
	rig_dbg(b.ctx, "waiting for a boot device%s%s (%s)", c->usb.port[0] ? " at " : "",
		c->usb.port, b.hotplug ? "hotplug" : "polling");
	while (!done && rc == 0) {
		struct libusb_device_descriptor d;
		libusb_device *dev;
		bool reenum = b.last_bus >= 0;

		if (reenum)
			rig_event(p->rig, "waiting for re-enumeration");
		rc = wait_device(&b, reenum, &dev);
		if (rc < 0)
			break;
		libusb_get_device_descriptor(dev, &d);
		rig_usb_port_format(dev, b.port, sizeof(b.port));
		if (rom_stage(&d) && ++roms > ROM_ROUNDS) {
			rc = fail(&b, RIG_E_IO,
				  "the device came back as a boot ROM %u times: %s did not start (is it the right file for a %s?)",
				  roms - 1, b.second, soc_name(d.idProduct));
		} else if (rom_stage(&d)) {
			rc = do_rom_stage(&b, dev, d.idProduct);
		} else {
			rc = file_server(&b, dev, d.idProduct);
			done = true;
		}
		b.last_bus = libusb_get_bus_number(dev);
		b.last_addr = libusb_get_device_address(dev);
		b.stage = "waiting for re-enumeration";
		libusb_unref_device(dev);
	}
	if (b.hotplug)
		libusb_hotplug_deregister_callback(b.usb, hp);
	return rc;
}

#define P(f) offsetof(struct rpiboot_conf, f)
static const struct rig_param rpiboot_params[] = {
	{ "usb", RIG_P_USB, P(usb), false,
	  "usb_path: the USB port the DUT's USB boot port is wired to, e.g. 1-1.3 (udevadm info, lsusb -t), needed when more than one could be there; usb_serial: the board's serial, as rpiboot -i takes it" },
	RIG_PARAMS_END
};
#undef P

static const struct rig_usbboot_ops rpiboot_ops = { .boot = rpiboot_boot };

const struct rig_backend rig_usbboot_rpiboot = {
	.role = RIG_ROLE_USBBOOT,
	.name = "rpiboot",
	.help = "Raspberry Pi / Compute Module USB boot (BCM2835-2712 ROM + file server) over libusb",
	.doc = "docs/hardware/cm4-usbboot.md",
	.params = rpiboot_params,
	.conf_size = sizeof(struct rpiboot_conf),
	.ops.usbboot = &rpiboot_ops,
};
