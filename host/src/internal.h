/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the library's modules and its back-ends. Not installed.
 */
#ifndef RIGOR_HOST_INTERNAL_H
#define RIGOR_HOST_INTERNAL_H

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>

#include "rig.h"

struct libusb_context;
struct libusb_device;
#define RIG_ERRMSG_MAX 512
#define RIG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- context ---- */

struct rig_ctx {
	rig_log_cb log_cb;
	void *log_user;
	enum rig_log_level level;
	volatile sig_atomic_t *cancel;
	int64_t deadline;          /* rig_now_ms() bound for every back-end call, 0 = none */
	char *state_dir;
	char *lock_dir;
	bool lock_shared;          /* lock_dir is for every user: created group-shared */
	bool lock_default;         /* lock_dir is the built-in default (may fall back) */
	bool lock_ready;           /* lock_dir checked (and made) once */
	char err[RIG_ERRMSG_MAX];
	int errcode;
	struct libusb_context *usb; /* rig_usb_ctx(): created on first use, one per rig context */
};

void rig_log(struct rig_ctx *ctx, enum rig_log_level lvl, const char *module, const char *fmt,
	     ...) __attribute__((format(printf, 4, 5)));
#define rig_err(ctx, ...) rig_log(ctx, RIG_LOG_ERR, LOG_PREFIX, __VA_ARGS__)
#define rig_warn(ctx, ...) rig_log(ctx, RIG_LOG_WARN, LOG_PREFIX, __VA_ARGS__)
#define rig_info(ctx, ...) rig_log(ctx, RIG_LOG_INFO, LOG_PREFIX, __VA_ARGS__)
#define rig_dbg(ctx, ...) rig_log(ctx, RIG_LOG_DBG, LOG_PREFIX, __VA_ARGS__)

/* Record the first error on the context; returns @code so callers can `return rig_ctx_fail(...)`. */
int rig_ctx_fail(struct rig_ctx *ctx, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* @timeout_ms bounded by the context's deadline (rig_ctx_set_deadline()). */
int rig_ctx_clamp(const struct rig_ctx *ctx, int timeout_ms);
/* Create the state directory if needed; returns 0 or a negative error. */
int rig_ctx_ensure_state_dir(struct rig_ctx *ctx);
/*
 * Create the lock directory if needed (group 'rigor', setgid, 2775 when shared), or
 * fall back from an unusable built-in default to a per-user one, logging a warning.
 * Returns 0 or a negative error (with the context's message set).
 */
int rig_ctx_ensure_lock_dir(struct rig_ctx *ctx);
/*
 * A file just created in a shared directory (setgid and group-writable, or
 * world-writable) gets the same reach (0664 or 0666), whatever the umask, so every
 * user of the rig can open it later. @path names the file; @fd < 0: change it by path
 * (a unix socket). Only a file of our own is changed; failures are ignored. fileshare.c.
 */
void rig_file_share(int fd, const char *path);
/* poll() one fd for @events, in slices so the cancel flag is honoured.
 * Returns 1 ready, RIG_E_TIMEOUT, RIG_E_INTR or RIG_E_IO. */
int rig_ctx_poll(struct rig_ctx *ctx, int fd, short events, int timeout_ms);
int64_t rig_wall_ms(void);

/* ---- small key=value state files, shared by the front end and sim back-ends ---- */

struct rig_kv;
/* Read @path (missing file = empty). Returns NULL on ENOMEM. */
struct rig_kv *rig_kv_load(const char *path);
void rig_kv_free(struct rig_kv *kv);
const char *rig_kv_get(const struct rig_kv *kv, const char *key);
long long rig_kv_get_int(const struct rig_kv *kv, const char *key, long long dflt);
int rig_kv_set(struct rig_kv *kv, const char *key, const char *val);
int rig_kv_set_int(struct rig_kv *kv, const char *key, long long val);
/* Write atomically (temp file + rename). */
int rig_kv_save(const struct rig_kv *kv, const char *path);
/*
 * Lock @path.lck exclusively (flock) for a read-modify-write, waiting at most @timeout_ms
 * through @ctx (cancel and the context's deadline end the wait too). Returns the lock's
 * fd, RIG_E_BUSY when another process held it the whole time, RIG_E_INTR, or -errno.
 * Holders keep it for one load and save: RIG_KV_LOCK_MS is a generous bound for callers.
 */
#define RIG_KV_LOCK_MS 5000
int rig_kv_lock(struct rig_ctx *ctx, const char *path, int timeout_ms);

/*
 * The flash engine and other errno-speaking code to enum rig_err: the codes librig names
 * pass through (-EBADMSG is RIG_E_CORRUPT, -ENOSPC RIG_E_NOSPC), anything else is RIG_E_IO.
 */
int rig_err_from_errno(int rc);

/*
 * Clean-up that must happen after a cancel or past the case deadline (releasing a strap,
 * powering off): rig_ctx_cleanup_begin() lifts the cancel flag and gives a fresh deadline
 * of @max_ms, rig_ctx_cleanup_end() puts both back. Back-ends that talk to a device give up
 * at once when the flag is up or the deadline has passed, so the step would otherwise fail.
 */
struct rig_ctx_saved {
	volatile sig_atomic_t *cancel;
	int64_t deadline;
};
struct rig_ctx_saved rig_ctx_cleanup_begin(struct rig_ctx *ctx, int max_ms);
#define RIG_CLEANUP_MAX_MS 10000
void rig_ctx_cleanup_end(struct rig_ctx *ctx, struct rig_ctx_saved saved);
void rig_kv_unlock(int fd);

/* ---- parameters: back-ends declare a schema, the core fills a typed struct ---- */

enum rig_ptype {
	RIG_P_STR,   /* char *, owned by the part */
	RIG_P_INT,   /* int */
	RIG_P_BOOL,  /* bool */
	/*
	 * struct rig_usb_match, parsed and checked by the core: one schema entry claims the
	 * rig-file keys usb_serial, usb_path, vid_pid and the table udev = { NAME = "value" }
	 * (its name is only used in messages; see docs/rig-files.md "USB identity").
	 */
	RIG_P_USB,
};

struct rig_param {
	const char *name;
	enum rig_ptype type;
	size_t offset;      /* into the back-end's conf struct */
	bool required;
	const char *help;
};
#define RIG_PARAMS_END { NULL, 0, 0, false, NULL }

/* ---- role operations: raw work only, the front end (rig.c) holds the invariants ---- */

struct rig_part;

struct rig_power_ops {
	int (*set)(struct rig_part *p, bool on, int timeout_ms);
	int (*get)(struct rig_part *p, bool *on, int timeout_ms);                   /* optional */
	int (*measure)(struct rig_part *p, struct rig_power_reading *r, int timeout_ms); /* opt. */
};

struct rig_sdmux_ops {
	int (*set)(struct rig_part *p, enum rig_mux m, int timeout_ms);
	int (*get)(struct rig_part *p, enum rig_mux *m, int timeout_ms);            /* optional */
};

struct rig_button_ops {
	/* Raw level: the front end has already applied active_low. */
	int (*set)(struct rig_part *p, bool asserted, int timeout_ms);
};

struct rig_console_ops {
	/* Return bytes read (> 0), RIG_E_TIMEOUT, or another error. */
	int (*read)(struct rig_part *p, void *buf, size_t len, int timeout_ms);
	int (*write)(struct rig_part *p, const void *buf, size_t len, int timeout_ms);
	int (*get_fd)(struct rig_part *p);                                          /* optional */
};

struct rig_usbboot_ops {
	int (*boot)(struct rig_part *p, const char *dir, int timeout_ms);
};

struct rig_storage_ops {
	int (*resolve)(struct rig_part *p, char *buf, size_t len, char *why, size_t whylen);
};

struct rig_network_ops {
	/* The DUT's SSH address; RIG_E_NOENT when there is none yet. */
	int (*address)(struct rig_part *p, char *host, size_t len, int *port, int timeout_ms);
	int (*uplink)(struct rig_part *p, bool up, int timeout_ms);                 /* optional */
};

/*
 * A back-end. All fields are mandatory except those marked optional; the front end
 * returns RIG_E_NOTSUP for a missing optional op and never calls through NULL.
 */
struct rig_backend {
	enum rig_role role;
	const char *name;
	const char *help;               /* one line for `rigor drivers` */
	const char *doc;                /* optional: its page, named in permission errors */
	const struct rig_param *params; /* may be NULL: no parameters */
	size_t conf_size;               /* parsed parameters, allocated by the core */
	size_t priv_size;               /* per-instance private data, zeroed */
	int (*open)(struct rig_part *p);                            /* optional */
	void (*close)(struct rig_part *p);                          /* optional */
	int (*inject)(struct rig_part *p, const char *fault);       /* optional */
	union {
		const struct rig_power_ops *power;
		const struct rig_sdmux_ops *sdmux;
		const struct rig_button_ops *button;
		const struct rig_console_ops *console;
		const struct rig_usbboot_ops *usbboot;
		const struct rig_storage_ops *storage;
		const struct rig_network_ops *network;
	} ops;
};

const struct rig_backend *rig_backend_find(enum rig_role role, const char *name);

/* Front-end settings every part of a role has, parsed by the core. */
struct rig_common {
	int timeout_ms;     /* per back-end call */
	bool inverted;      /* power: NC relay; button: active-low; sdmux: sides swapped */
	int min_off_ms;     /* power */
	int press_ms;       /* button default press */
	int settle_ms;      /* sdmux */
	bool allow_fixed;   /* storage: a non-removable disk may be flashed */
	char *msd_dir;      /* usbboot: boot files that show the DUT's storage over USB */
	char *boot_button;  /* usbboot: the button holding the DUT in USB boot mode */
	char *user;         /* network: login user for SSH */
	char *identity;     /* network: private key file for SSH */
};

struct rig_part {
	struct rig *rig;
	const struct rig_backend *be;
	char *instance;     /* button name, else NULL */
	char *label;        /* "power", "button.boot": used in events and messages */
	struct rig_common common;
	void *conf;         /* be->conf_size bytes, filled from params */
	void *priv;         /* be->priv_size bytes, zeroed */
};

/* What back-ends may ask of their rig. */
struct rig_ctx *rig_part_ctx(const struct rig_part *p);
const char *rig_part_rig_name(const struct rig_part *p);
const char *rig_part_device_type(const struct rig_part *p);
/* Record the first error on the rig with the part's label as prefix; returns @code. */
int rig_part_fail(struct rig_part *p, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Resources several parts of one rig share (one serial link to a rig board serves its
 * power, mux and buttons). Returns the object stored under @key, creating it with
 * @create on first use; @destroy runs when the rig closes. Returns NULL and the error in
 * *rc when @create fails.
 */
void *rig_part_shared(struct rig_part *p, const char *key, void *(*create)(struct rig_part *p,
	int *rc), void (*destroy)(void *obj), int *rc);

/*
 * ---- USB identity: what a rig file names (parsed in usb.c, once, by desc.c) and the
 * device nodes that have it (sysfs.c, through libudev) ----
 */

/* Which class of device node to look for. */
enum rig_devclass {
	RIG_DEV_TTY,    /* udev subsystem tty: serial ports */
	RIG_DEV_BLOCK,  /* block, DEVTYPE disk: whole disks (partitions are skipped) */
	RIG_DEV_SG,     /* scsi_generic: sg nodes */
};

#define RIG_USB_PROPS_MAX 4

/*
 * What to match; empty or negative fields match anything. Set up with
 * rig_usb_match_init(); a part's is filled from its rig file by the core (RIG_P_USB), so
 * back-ends never parse identity strings. Plain data: no release needed.
 */
struct rig_usb_match {
	char serial[128];       /* USB serial number string (iSerial), "" = any */
	int vid, pid;           /* idVendor/idProduct, -1 = any */
	char port[64];          /* USB port path, the usb_device's kernel name "1-1.4", "" = any */
	int interface;          /* bInterfaceNumber, -1 = any */
	int nprops;             /* udev properties that must all be equal (ID_SERIAL_SHORT...) */
	struct {
		char name[64];
		char value[128];
	} prop[RIG_USB_PROPS_MAX];
};

/* The USB identity of one device node. */
struct rig_usb_id {
	char node[64];          /* class entry: "ttyUSB0", "sdb", "sg2" */
	char dev[96];           /* device node: "/dev/ttyUSB0" (from uevent DEVNAME) */
	char port[64];          /* USB port path "1-1.4" */
	char serial[128];       /* "" when the device has none */
	char product[128];      /* "" when the device has none */
	int vid, pid;
	int interface;          /* -1 when not under an interface */
};

void rig_usb_match_init(struct rig_usb_match *m);
/* Parse "0403:6015" (hex) into @vid and @pid. Returns 0 or RIG_E_INVAL. */
int rig_usb_parse_vid_pid(const char *s, int *vid, int *pid);
/* Whether @s is a USB port path: "<bus>" or "<bus>-<port>[.<port>]..." (7 tiers at most). */
bool rig_usb_port_valid(const char *s);
/*
 * Whether rig-file key @key is one of a USB identity's: "usb_serial", "usb_path",
 * "vid_pid", "udev" (the table itself) or "udev.NAME" (one of its entries).
 */
bool rig_usb_key(const char *key);
/*
 * Set the field of @m that rig-file key @key names (see rig_usb_key(); "udev" itself is a
 * no-op) from string @val, checking it. On RIG_E_INVAL @err gets why, without the key.
 * @retval 0 set
 * @retval RIG_E_INVAL a malformed value, a value too long, or too many udev properties
 * @retval RIG_E_NOENT @key is not a USB identity key
 */
int rig_usb_match_set(struct rig_usb_match *m, const char *key, const char *val, char *err,
		      size_t errlen);
/* Whether @m leaves every field open (matches any device). */
bool rig_usb_match_empty(const struct rig_usb_match *m);
/* "usb_serial=A1 interface=0" into @buf. Returns 0, or RIG_E_INVAL when @m matches anything. */
int rig_usb_match_describe(const struct rig_usb_match *m, char *buf, size_t len);
/* "/dev/ttyUSB0 (USB 0403:6015 serial A1 at 1-1.4 interface 0, FT230X Basic UART)". */
int rig_usb_id_describe(const struct rig_usb_id *id, char *buf, size_t len);
/*
 * USB identity of class device @node ("ttyUSB0"), through libudev. Does not block on
 * devices; reads sysfs and the udev database only.
 * @retval 0 filled
 * @retval RIG_E_NODEV no such device, or it is not on USB
 * @retval RIG_E_NOMEM libudev could not start
 */
int rig_sysfs_usb_id(enum rig_devclass cls, const char *node, struct rig_usb_id *id);
/*
 * Find the one device node of class @cls (block: whole disks only) whose USB identity
 * matches @m, udev properties included (the node's, else its USB device's), and fill
 * @out (may be NULL). @why (may be 0 bytes) gets one line: on success what matched, on
 * failure the error message (what was searched and every USB node seen), ready for
 * rig_part_fail("%s").
 * @retval 0 exactly one match
 * @retval RIG_E_NODEV nothing matched
 * @retval RIG_E_INVAL several matched (the candidates are listed), or @m is empty
 */
int rig_sysfs_find(enum rig_devclass cls, const struct rig_usb_match *m,
		   struct rig_usb_id *out, char *why, size_t whylen);

/* ---- the USB layer over libusb (usb.c): one context, one finder, one error mapping ---- */

/*
 * @ctx's libusb context in *@out, created on first use and ended by rig_ctx_free(), so
 * every USB back-end of every rig on @ctx shares one (as libsigrok's sr_context does).
 * Not thread-safe: like the rest of @ctx, one thread at a time.
 * @retval 0 *@out set
 * @retval <0 libusb_init() failed (as rig_usb_code()); nothing recorded
 */
int rig_usb_ctx(struct rig_ctx *ctx, struct libusb_context **out);
/* End @ctx's libusb context, if any (rig_ctx_free()). */
void rig_usb_ctx_release(struct rig_ctx *ctx);
/*
 * The one translation of LIBUSB_ERROR_* to enum rig_err: NO_DEVICE and NOT_FOUND are
 * RIG_E_NODEV, TIMEOUT RIG_E_TIMEOUT, NO_MEM RIG_E_NOMEM, BUSY RIG_E_BUSY, INTERRUPTED
 * RIG_E_INTR, NOT_SUPPORTED RIG_E_NOTSUP, INVALID_PARAM RIG_E_INVAL; ACCESS, PIPE,
 * OVERFLOW, IO and OTHER are RIG_E_IO. A value >= 0 is returned unchanged.
 */
int rig_usb_code(int err);
/*
 * Record libusb error @err on @p as "<fmt...>: <what it means>" (a timeout names
 * @timeout_ms when >= 0; permission denied names the back-end's doc page for the udev
 * rule) and return rig_usb_code(@err).
 */
int rig_usb_fail(struct rig_part *p, int err, int timeout_ms, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* What a finder's filter says of one device. */
enum rig_usb_verdict {
	RIG_USB_IGNORE,     /* not the kind of device wanted: listed only when at the wanted port */
	RIG_USB_REJECT,     /* the right kind but not usable now: listed, with the filter's note */
	RIG_USB_ACCEPT,
};

/* One USB device as rig_usb_find() saw it. */
struct rig_usb_dev {
	struct libusb_device *dev;  /* the found device: referenced, libusb_unref_device() */
	int vid, pid;
	char port[32];              /* "1-1.4" */
	char serial[128];           /* "" when it has none or it was not read */
	char product[128];
};

/* What a back-end wants beyond its struct rig_usb_match. */
struct rig_usb_want {
	const char *noun;           /* "an SDWire": "(not an SDWire)" in the list of what was seen */
	const char *product;        /* the product string it must have, NULL: any */
	bool strings;               /* read serial and product of every candidate (else only
				       when a serial or product is to be matched) */
	/* optional: the kind of device (@cand has no strings yet); may write a note */
	enum rig_usb_verdict (*filter)(void *user, const struct rig_usb_dev *cand,
				       char *note, size_t len);
	void *user;
};

/*
 * The one finder of libusb devices: look once through @ctx's device list for the device
 * that matches @m (vid_pid, usb_path, usb_serial, udev properties) and @w. Does not block
 * beyond reading string descriptors (opening each candidate when strings are needed).
 * @list (may be 0 bytes) gets every device seen, one after another ("04e8:6001 serial 'A'
 * at 1-1.2 (another port)", ...), for the caller's message: on success the one found, on
 * RIG_E_INVAL the candidates, on RIG_E_NODEV everything seen ("" when nothing was).
 * *@n (may be NULL) gets the number of matches.
 * @retval 0 exactly one: *@out filled, out->dev referenced
 * @retval RIG_E_NODEV none
 * @retval RIG_E_IO none, but some candidates could not be opened (permission: @list says)
 * @retval RIG_E_INVAL several
 * @retval other libusb_init() or listing failed (rig_usb_code())
 */
int rig_usb_find(struct rig_ctx *ctx, const struct rig_usb_match *m,
		 const struct rig_usb_want *w, struct rig_usb_dev *out, int *n, char *list,
		 size_t len);

/*
 * The port path of @dev as the kernel names the device in sysfs, the form of a rig file's
 * usb_path: "1-1.4" (bus 1, root-hub port 1, hub port 4), "1" for a root hub. Reads
 * libusb's copy of the topology; does not block or open the device.
 * @retval >0 the length of the path written to @buf
 * @retval RIG_E_INVAL it does not fit in @len bytes (@buf holds as much as fits)
 */
int rig_usb_port_format(struct libusb_device *dev, char *buf, size_t len);
/*
 * Whether @dev sits at port path @want ("1-1.4"; NULL matches every port, "1-1" does not
 * match a device at "1-1.4"). Fills @buf with @dev's path, as rig_usb_port_format() does,
 * for the caller's messages.
 */
bool rig_usb_port_match(struct libusb_device *dev, const char *want, char *buf, size_t len);
/*
 * Our timeout (@timeout_ms: -1 forever, 0 poll) as libusb's synchronous calls take it (0
 * forever): -1 gives 0, 0 gives 1 ms.
 */
unsigned int rig_usb_timeout(int timeout_ms);

/*
 * ---- VBUS of one USB hub port (drivers/uhub.c): the uhub power back-end and the network
 * role's uplink through a USB network adapter (drivers/network.c) switch ports with it ----
 *
 * The hub must switch its ports one by one (per-port power switching). A port is switched
 * through the kernel's sysfs `disable` attribute (Linux >= 6.0) or, on older kernels, with
 * hub class requests over libusb; a USB3 hub's two logical hubs (USB2 and USB3 half) are
 * switched together, found by the port's `peer` link, the hub's serial or its port path.
 * The state lives in the hub: nothing is held open between calls, so there is nothing to
 * release, and another tool (uhubctl) may switch the port in between.
 */

/* Where the port is, as a rig file names it. */
struct rig_hubport_conf {
	const char *hub;        /* the hub's location "1-1.4" (as uhubctl, lsusb -t), or NULL */
	const char *serial;     /* ...or its serial number (iSerial), or NULL: exactly one */
	int port;               /* 1-based, as uhubctl -p counts */
	/* the rig-file keys these came from, named in messages ("hub", "usb_serial", "port") */
	const char *hub_key, *serial_key, *port_key;
};

#define RIG_HUBPORT_LOC_MAX 40
#define RIG_HUBPORT_PATH_MAX (PATH_MAX + 64)

/*
 * One hub port found by rig_hubport_init(). Plain data the caller embeds (a back-end's
 * private data): no release. The fields are uhub.c's.
 */
struct rig_hubport {
	struct libusb_context *usb;      /* libusb mode only: the rig context's */
	int port;
	int n;                           /* logical hubs: 1, or 2 for a USB3 hub */
	struct rig_hubport_half {
		char loc[RIG_HUBPORT_LOC_MAX];
		char port[RIG_HUBPORT_PATH_MAX]; /* the port's sysfs device, "" = libusb */
		bool usb3;                       /* libusb: which wPortStatus bit is power */
	} t[2];
};

/*
 * Find the hub and port @c names and check it can be switched, filling @hp: the hub by
 * location or by serial, its USB3 companion, and how the port is switched. Hub requests
 * (libusb mode: reading the hub descriptor) wait at most @timeout_ms each. Errors are
 * recorded on @p, naming @c's keys where the rig file is wrong.
 * @retval 0 @hp is ready for rig_hubport_set() and rig_hubport_get()
 * @retval RIG_E_INVAL port out of 1..255, not exactly one of hub and serial, a malformed
 *         location, or several hubs with that serial
 * @retval RIG_E_NODEV no hub at that location or with that serial
 * @retval RIG_E_NOENT the hub has no such port
 * @retval RIG_E_NOTSUP the hub cannot switch its ports one by one (ganged or none)
 * @retval RIG_E_PROTO, RIG_E_IO, RIG_E_TIMEOUT, RIG_E_NOMEM the hub or libusb failed
 */
int rig_hubport_init(struct rig_part *p, struct rig_hubport *hp, const struct rig_hubport_conf *c,
		     int timeout_ms);
/*
 * Switch the port's VBUS on or off (both halves of a USB3 hub). Blocks up to @timeout_ms
 * per hub request in libusb mode; a sysfs write does not wait on the hub. The context's
 * cancel flag is checked before anything is switched, not between the two halves.
 * @retval 0 switched
 * @retval RIG_E_INTR cancelled before switching
 * @retval RIG_E_NODEV the hub is gone
 * @retval RIG_E_IO no permission (the message names the udev rule), or the hub refused
 * @retval RIG_E_TIMEOUT the hub did not answer within @timeout_ms
 */
int rig_hubport_set(struct rig_part *p, const struct rig_hubport *hp, bool on, int timeout_ms);
/*
 * Read back from the hub whether the port has VBUS (a USB3 hub's port has it while
 * either half powers it) into *@on. Blocks and sees the cancel flag as rig_hubport_set().
 * @retval 0 *@on set
 * @retval RIG_E_PROTO the hub or sysfs answered something unexpected
 * @retval other as rig_hubport_set()
 */
int rig_hubport_get(struct rig_part *p, const struct rig_hubport *hp, bool *on, int timeout_ms);

/* ---- byte-stream links (link.c and link/): the rig board's link and the consoles ---- */

/*
 * A link is one open byte stream to a device, named by a URI: "unix:PATH" (a unix stream
 * socket: rigfw-sim, QEMU chardevs, the virtual board's console), "tty:PATH" (a tty
 * through termios) or "serial:PATH" / "serial:usb_serial=X,vid_pid=V:P,usb_path=1-1.4,
 * interface=N" (libserialport, the port found by USB identity in sysfs). A link does not
 * reconnect by itself: when a call returns RIG_E_NODEV the peer is gone, and the caller
 * closes the link and opens a new one when it wants to (rigfw greets the board again,
 * the console retries until its timeout). The back-ends are the const tables in link/.
 */
struct rig_link;

enum rig_parity { RIG_PARITY_NONE, RIG_PARITY_ODD, RIG_PARITY_EVEN, RIG_PARITY_MARK,
		  RIG_PARITY_SPACE };
enum rig_flow { RIG_FLOW_NONE, RIG_FLOW_XONXOFF, RIG_FLOW_RTSCTS, RIG_FLOW_DTRDSR };

/* Line settings of tty and serial links; the other links ignore them. */
struct rig_line_settings {
	int baud, bits, stopbits;
	enum rig_parity parity;
	enum rig_flow flow;
};
#define RIG_LINE_DEFAULT { 115200, 8, 1, RIG_PARITY_NONE, RIG_FLOW_NONE }

/* What a link is opened with besides its URI. Zeroed = defaults. */
struct rig_link_opts {
	const char *what;                       /* "the rig board": names the peer in messages */
	const struct rig_line_settings *line;   /* NULL: 115200 8N1, no flow control */
	/*
	 * serial: find the port by this USB identity instead of the URI's target ("serial:"
	 * with nothing after the colon). With @usb_if_default, several ttys of one adapter
	 * (FT2232...) resolve to interface 0.
	 */
	const struct rig_usb_match *usb;
	bool usb_if_default;
};

/* A link back-end. All ops are mandatory; read and write never block. */
struct rig_link_ops {
	const char *scheme;     /* "serial": matched against the URI up to its colon */
	const char *syntax;     /* "serial:PATH|usb_serial=X", for the message on a bad URI */
	size_t priv_size;       /* per-link private data, zeroed, rig_link_priv() */
	/*
	 * Open @target (the URI after "scheme:"), waiting at most until @d. Returns 0 or a
	 * negative error with the message in @why; RIG_E_NODEV means nothing is there now
	 * (not plugged in, nothing listening) and a later attempt may succeed. On success
	 * @why may hold one line on what was found (the USB identity that matched).
	 */
	int (*open)(struct rig_link *l, const char *target, const struct rig_link_opts *o,
		    struct rig_deadline d, char *why, size_t whylen);
	/* > 0 bytes read, 0 nothing now, RIG_E_NODEV the peer is gone (rig_link_set_gone()). */
	int (*read)(struct rig_link *l, void *buf, size_t len);
	/* >= 0 bytes written, RIG_E_NODEV the peer is gone. */
	int (*write)(struct rig_link *l, const void *buf, size_t len);
	/* The fd to poll(): POLLIN for read, POLLOUT for write. */
	int (*get_fd)(const struct rig_link *l);
	void (*close)(struct rig_link *l);
};

/*
 * Open a link to @uri for @ctx (cancel flag, deadline, log), waiting at most @timeout_ms
 * (-1 forever, 0 one attempt). @o may be NULL. *@out is closed with rig_link_close().
 * @why gets the error message, or on success what was found (possibly empty).
 * @retval 0 opened
 * @retval RIG_E_INVAL unknown scheme or a malformed target
 * @retval RIG_E_NODEV nothing there now (worth retrying); RIG_E_TIMEOUT, RIG_E_INTR
 * @retval RIG_E_NOMEM, RIG_E_IO, other errors of the back-end
 */
int rig_link_open(struct rig_ctx *ctx, const char *uri, const struct rig_link_opts *o,
		  int timeout_ms, struct rig_link **out, char *why, size_t whylen);
/* Close and free a link. NULL is a no-op. */
void rig_link_close(struct rig_link *l);
/*
 * Read what is there (up to @len bytes), waiting at most @timeout_ms for the first byte.
 * @retval >0 bytes read
 * @retval RIG_E_TIMEOUT, RIG_E_INTR nothing came in time, or cancelled
 * @retval RIG_E_NODEV the peer is gone (end of file, hangup): close the link
 */
int rig_link_read(struct rig_link *l, void *buf, size_t len, int timeout_ms);
/*
 * Write all @len bytes, waiting at most @timeout_ms for the link to take them. @done (may
 * be NULL) gets how many were taken, also when the call fails.
 * @retval @len done
 * @retval RIG_E_TIMEOUT, RIG_E_INTR not all taken (the rest is not sent)
 * @retval RIG_E_NODEV the peer is gone: close the link
 */
int rig_link_write(struct rig_link *l, const void *buf, size_t len, size_t *done,
		   int timeout_ms);
/* The fd to poll() (POLLIN: rig_link_read() has data or news of a loss). */
int rig_link_get_fd(const struct rig_link *l);
/* What the link reached: the socket path, or the tty device a serial link resolved to. */
const char *rig_link_name(const struct rig_link *l);
/* Why the peer was found gone ("end of file", "hangup", an errno text). */
const char *rig_link_gone_why(const struct rig_link *l);

/* For link back-ends. */
void *rig_link_priv(const struct rig_link *l);
struct rig_ctx *rig_link_ctx(const struct rig_link *l);
void rig_link_set_name(struct rig_link *l, const char *name);
/* Record why the peer is gone; returns RIG_E_NODEV. */
int rig_link_set_gone(struct rig_link *l, const char *why);
/*
 * For links over one plain fd whose private data begins with `int fd` (unix:, tty:):
 * get_fd and close ops, and the result of a non-blocking read() or write() that returned
 * @n: the byte count, 0 for EAGAIN/EINTR, else gone with strerror() or @eof_why on 0 bytes
 * (NULL: 0 bytes is just 0).
 */
int rig_link_fd_get_fd(const struct rig_link *l);
void rig_link_fd_close(struct rig_link *l);
int rig_link_fd_result(struct rig_link *l, ssize_t n, const char *eof_why);

extern const struct rig_link_ops rig_link_serial, rig_link_tty, rig_link_unix;

/* ---- a console over a link (drivers/conlink.c): the socket and serial consoles ---- */

/*
 * The console's link is reopened whenever it is lost (the virtual board restarted, the
 * adapter was unplugged), every @retry_ms while a call waits; reads time out while it is
 * gone. The console back-ends differ only in how they name the link and in these flags.
 */
struct rig_conlink_conf {
	const char *uri;                /* "unix:PATH", "serial:/dev/ttyUSB0" (copied) */
	struct rig_link_opts opts;      /* copied, with what it points to */
	const char *what;               /* "console socket": names the link in messages */
	int retry_ms;
	bool lazy;      /* connect on first use: the rig opens while nothing is there yet */
	bool announce;  /* a loss is a warning and leaves a marker line in the console stream */
};
/* What a console back-end using conlink sets as its priv_size. */
#define RIG_CONLINK_PRIV_SIZE sizeof(void *)
/* The back-end's open: set up the console of @p (and connect, unless @c->lazy). */
int rig_conlink_open(struct rig_part *p, const struct rig_conlink_conf *c);
/* The back-end's close. */
void rig_conlink_close(struct rig_part *p);
/* The back-end's ops. get_fd is an epoll fd that stays the same across reconnects. */
extern const struct rig_console_ops rig_conlink_ops;

/* For library modules beside rig.c: record the first error on a rig, log an event. */
int rig_set_error(struct rig *rig, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void rig_event(struct rig *rig, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether the rig file allows flashing a non-removable disk (storage allow_fixed). */
bool rig_storage_allow_fixed(const struct rig *rig);
/* The usbboot part's front-end settings (msd_dir, boot_button, timeout_ms), or NULL. */
const struct rig_common *rig_usbboot_common(const struct rig *rig);

/* Register back-ends here (defined in their driver files). */
extern const struct rig_backend rig_power_sim, rig_sdmux_sim, rig_button_sim,
	rig_console_sim, rig_usbboot_sim, rig_storage_sim, rig_storage_file, rig_storage_usb,
	rig_network_host, rig_network_sim, rig_network_vboard,
	rig_power_gpio, rig_sdmux_gpio, rig_button_gpio,
	rig_power_rigfw, rig_sdmux_rigfw, rig_button_rigfw, rig_console_serial,
	rig_sdmux_sdwire, rig_power_uhub, rig_console_socket,
	rig_sdmux_usbsdmux, rig_usbboot_rpiboot;

#endif /* RIGOR_HOST_INTERNAL_H */
