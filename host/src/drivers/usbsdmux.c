/* SPDX-License-Identifier: MIT */
/*
 * usbsdmux: the SD mux of a Linux Automation (formerly Pengutronix) USB-SD-Mux, classic
 * or FAST, through SG_IO on its /dev/sg* node (docs/hardware/usbsdmux.md).
 *
 * The mux is a Microchip USB2642 card reader with a GPIO expander on the reader's
 * auxiliary I2C bus. The expander's outputs cut the card's data lines and supply, select
 * the side and tell the reader whether a card is present. The reader passes I2C
 * transfers through one vendor SCSI command (opcode 0xCF; 0x23 = write, 0x22 =
 * write-then-read), which reaches the reader through /dev/sg* even with no medium,
 * so we need neither the block device nor the upstream Python tool.
 *
 * Which expander (classic: PCA9536 at 0x41; FAST: TCA6408 at 0x20, other pins) comes
 * from the SCSI INQUIRY product the reader's EEPROM sets: "sdmux HS-SD/MMC" or
 * "sdFST HS-SD/MMC". Another answer means the sg node is some other device.
 *
 * Every switch goes through "off" first, then waits discharge_ms with the card
 * unpowered, then selects the side while the card is still cut off and connects it:
 * the card never sees a glitch, and every switch power-cycles it. The register values
 * and their order are those of the upstream `usbsdmux` tool, which the tests run
 * against the same emulation. On the FAST the two user GPIOs share the output register,
 * so it is read-modify-written; its pins start as inputs whose pull resistors select the
 * DUT, so that state is driven before the first change (as upstream does).
 *
 * "off" (card unpowered and disconnected from both sides) is the mux's own safe state:
 * the front end has no separate card-power role, so that is where card power lives.
 *
 * The sg node is found in sysfs by USB identity and kept open while the rig is open; a
 * node that went away is looked up again at the start of the next call (the sg number
 * changes on replug). Each SG_IO carries our timeout to the kernel, which aborts the
 * command when it runs out (-1: no limit, 0: 1 ms). The ioctl itself cannot be
 * interrupted, so the cancel flag is only seen between transfers and during the wait.
 */
#define LOG_PREFIX "usbsdmux"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <scsi/sg.h>

#include "../internal.h"

#define MUX_VID 0x0424               /* Microchip USB2642 card reader */
#define MUX_PID 0x4041
#define DISCHARGE_MS 1000            /* upstream's wait for the card supply to drop */
#define SENSE_MAX 64
#define INQUIRY_LEN 96

/* Vendor command of the USB2642 ("I2C over USB"): CDB byte 1 */
#define OP_VENDOR 0xCF
#define OP_I2C_WRITE 0x23
#define OP_I2C_WRITE_READ 0x22
#define OP_INQUIRY 0x12
#define XFER_LEN 512                 /* the reader wants a 512-byte data phase */

/* Expander registers (PCA9536 and TCA6408 alike) */
#define REG_INPUT 0x00
#define REG_OUTPUT 0x01
#define REG_CONFIG 0x03              /* bit set = input */

/* SCSI and Linux SCSI result bytes */
#define SAM_STAT_CHECK_CONDITION 0x02
#define HOST_NO_CONNECT 0x01
#define HOST_TIME_OUT 0x03
#define DRIVER_TIMEOUT 0x06
#define DRIVER_SENSE 0x08
#define SENSE_UNIT_ATTENTION 0x6

/* One model: its expander and what each pin does (a set bit means what the name says). */
struct mux_model {
	const char *name;
	const char *inquiry;         /* INQUIRY product identification, trailing blanks cut */
	uint8_t addr;                /* 7-bit I2C address of the expander */
	uint8_t dat_off, pwr_off, sel_dut, no_card;
	uint8_t mask;                /* output bits a switch owns (others: read-modify-write) */
	uint8_t outputs;             /* pins driven once the mux is first used */
};

static const struct mux_model models[] = {
	{ "USB-SD-Mux", "sdmux HS-SD/MMC", 0x41, 0x01, 0x02, 0x04, 0x08, 0xFF, 0x0F },
	{ "USB-SD-Mux FAST", "sdFST HS-SD/MMC", 0x20, 0x04, 0x02, 0x01, 0x08, 0x0F, 0x3F },
};
#define MODEL_FAST (&models[1])

struct usbsdmux_conf {
	struct rig_usb_match usb;   /* the card reader (the mux's serial); no vid_pid: 0424:4041 */
	int discharge_ms;       /* 0: DISCHARGE_MS, -1: none */
};

struct usbsdmux_priv {
	int fd;                             /* the sg node, -1 when not open */
	const struct mux_model *model;
	bool taken_over;                    /* FAST: power-on pull-up state driven on this fd */
	struct rig_usb_match match;
	char where[400];                    /* "/dev/sg2 (USB 0424:4041 serial ... at 1-1.1, ...)" */
};

/* What one call has done so far: a stale node may be looked up again only before it did anything. */
struct op {
	int timeout_ms;
	bool reused;            /* the node was open before this call */
	int done;               /* successful transfers */
};

#define STALE 1             /* internal: the kept node is gone; start the call again */
#define UNIT_ATTENTION 2    /* internal: the reader was reset; send the command again */

static unsigned int sg_timeout(int timeout_ms)
{
	if (timeout_ms < 0)
		return UINT_MAX;
	return timeout_ms == 0 ? 1 : (unsigned int)timeout_ms;
}

static void mux_drop(struct usbsdmux_priv *pv)
{
	if (pv->fd >= 0)
		close(pv->fd);
	pv->fd = -1;
	pv->taken_over = false;
}

/* "sense key 0x5, ASC 0x24, ASCQ 0x00" from fixed or descriptor sense data. */
static void sense_describe(const uint8_t *sb, unsigned int n, char *buf, size_t len)
{
	unsigned int code = n ? sb[0] & 0x7f : 0;

	if ((code == 0x70 || code == 0x71) && n >= 14)
		snprintf(buf, len, "sense key 0x%x, ASC 0x%02x, ASCQ 0x%02x", sb[2] & 0xfu, sb[12],
			 sb[13]);
	else if ((code == 0x72 || code == 0x73) && n >= 4)
		snprintf(buf, len, "sense key 0x%x, ASC 0x%02x, ASCQ 0x%02x", sb[1] & 0xfu, sb[2],
			 sb[3]);
	else
		snprintf(buf, len, "no sense data");
}

/* The sense key of fixed or descriptor sense data, -1 if none. */
static int sense_key(const uint8_t *sb, unsigned int n)
{
	unsigned int code = n ? sb[0] & 0x7f : 0;

	if ((code == 0x70 || code == 0x71) && n >= 3)
		return sb[2] & 0xf;
	if ((code == 0x72 || code == 0x73) && n >= 2)
		return sb[1] & 0xf;
	return -1;
}

/*
 * One SCSI command on the open node. @dir is SG_DXFER_TO_DEV or SG_DXFER_FROM_DEV.
 * Returns 0, STALE (see struct op), UNIT_ATTENTION when @ua_ok and the reader reported
 * a reset (nothing recorded), or a negative error recorded on the part.
 */
static int sg_submit(struct rig_part *p, struct op *op, const uint8_t *cdb, unsigned int cdblen,
		     int dir, uint8_t *buf, unsigned int len, const char *what, bool ua_ok)
{
	struct usbsdmux_priv *pv = p->priv;
	uint8_t sense[SENSE_MAX];
	struct sg_io_hdr h;
	char sd[80];

	memset(&h, 0, sizeof(h));
	memset(sense, 0, sizeof(sense));
	h.interface_id = 'S';
	h.dxfer_direction = dir;
	h.cmd_len = (unsigned char)cdblen;
	h.mx_sb_len = sizeof(sense);
	h.dxfer_len = len;
	h.dxferp = buf;
	h.cmdp = (unsigned char *)cdb;
	h.sbp = sense;
	h.timeout = sg_timeout(op->timeout_ms);
	if (ioctl(pv->fd, SG_IO, &h) < 0) {
		int e = errno;

		switch (e) {
		case ENODEV:
		case ENXIO:
			mux_drop(pv);
			if (op->reused && op->done == 0)
				return STALE;
			return rig_part_fail(p, RIG_E_NODEV, "%s: the %s is gone (unplugged?): %s",
					     what, pv->model ? pv->model->name : "USB-SD-Mux",
					     pv->where);
		case EINTR:
			return rig_part_fail(p, RIG_E_INTR, "%s: interrupted", what);
		case ENOMEM:
			return rig_part_fail(p, RIG_E_NOMEM, "%s: out of memory", what);
		default:
			return rig_part_fail(p, RIG_E_IO, "%s: SG_IO on %s failed: %s", what,
					     pv->where, strerror(e));
		}
	}
	if (h.host_status == HOST_TIME_OUT || (h.driver_status & 0x0f) == DRIVER_TIMEOUT)
		return rig_part_fail(p, RIG_E_TIMEOUT, "%s: no answer within %d ms", what,
				     op->timeout_ms);
	if (h.host_status == HOST_NO_CONNECT) {
		mux_drop(pv);
		return rig_part_fail(p, RIG_E_NODEV, "%s: the card reader is gone (unplugged?): %s",
				     what, pv->where);
	}
	if (h.host_status)
		return rig_part_fail(p, RIG_E_IO, "%s: host adapter error 0x%02x", what,
				     h.host_status);
	if (h.status == SAM_STAT_CHECK_CONDITION) {
		if (ua_ok && sense_key(sense, h.sb_len_wr) == SENSE_UNIT_ATTENTION)
			return UNIT_ATTENTION;
		sense_describe(sense, h.sb_len_wr, sd, sizeof(sd));
		return rig_part_fail(p, RIG_E_IO, "%s: the card reader answered CHECK CONDITION (%s)%s",
				     what, sd, cdb[0] == OP_VENDOR ?
				     ": the I2C transfer to the GPIO expander failed" : "");
	}
	if (h.status)
		return rig_part_fail(p, RIG_E_IO, "%s: SCSI status 0x%02x", what, h.status);
	if (h.driver_status & ~DRIVER_SENSE)
		return rig_part_fail(p, RIG_E_IO, "%s: driver error 0x%02x", what, h.driver_status);
	op->done++;
	return 0;
}

/* sg_submit(), once more after a unit attention (the first command after a reset gets one). */
static int sg_cmd(struct rig_part *p, struct op *op, const uint8_t *cdb, unsigned int cdblen,
		  int dir, uint8_t *buf, unsigned int len, const char *what)
{
	int rc;

	/* The ioctl cannot be interrupted: the cancel flag is seen between commands. */
	if (rig_ctx_cancelled(rig_part_ctx(p)))
		return rig_part_fail(p, RIG_E_INTR, "%s: interrupted", what);
	rc = sg_submit(p, op, cdb, cdblen, dir, buf, len, what, true);

	if (rc == UNIT_ATTENTION) {
		rig_dbg(rig_part_ctx(p), "%s: unit attention, once more", what);
		rc = sg_submit(p, op, cdb, cdblen, dir, buf, len, what, false);
	}
	return rc;
}

/* Write @val to expander register @reg. */
static int reg_write(struct rig_part *p, struct op *op, uint8_t reg, uint8_t val,
		     const char *what)
{
	const struct mux_model *mm = ((struct usbsdmux_priv *)p->priv)->model;
	uint8_t cdb[16] = { OP_VENDOR, OP_I2C_WRITE, (uint8_t)(mm->addr << 1), 0, 0, 2 };
	uint8_t data[XFER_LEN] = { reg, val };

	return sg_cmd(p, op, cdb, sizeof(cdb), SG_DXFER_TO_DEV, data, sizeof(data), what);
}

/* Read expander register @reg into *@val. */
static int reg_read(struct rig_part *p, struct op *op, uint8_t reg, uint8_t *val,
		    const char *what)
{
	const struct mux_model *mm = ((struct usbsdmux_priv *)p->priv)->model;
	uint8_t cdb[16] = { OP_VENDOR, OP_I2C_WRITE_READ, (uint8_t)(mm->addr << 1),
			    (uint8_t)((mm->addr << 1) | 1), 0, 1, 1, reg };
	uint8_t data[XFER_LEN] = { 0 };
	int rc = sg_cmd(p, op, cdb, sizeof(cdb), SG_DXFER_FROM_DEV, data, sizeof(data), what);

	if (rc == 0)
		*val = data[0];
	return rc;
}

/* Set the output bits the mux owns to @val (the others kept when the model shares them). */
static int out_set(struct rig_part *p, struct op *op, uint8_t val, const char *what)
{
	const struct mux_model *mm = ((struct usbsdmux_priv *)p->priv)->model;
	uint8_t cur = 0;
	int rc;

	if (mm->mask != 0xFF) {
		rc = reg_read(p, op, REG_OUTPUT, &cur, what);
		if (rc)
			return rc;
		val = (uint8_t)((cur & ~mm->mask) | (val & mm->mask));
	}
	return reg_write(p, op, REG_OUTPUT, val, what);
}

/* Make @pins outputs (a configuration bit set means input). */
static int make_outputs(struct rig_part *p, struct op *op, uint8_t pins, const char *what)
{
	uint8_t cfg = 0;
	int rc = reg_read(p, op, REG_CONFIG, &cfg, what);

	if (rc || !(cfg & pins))
		return rc;
	return reg_write(p, op, REG_CONFIG, (uint8_t)(cfg & ~pins), what);
}

/* INQUIRY: which model the node at pv->fd is. */
static int mux_identify(struct rig_part *p, struct op *op)
{
	struct usbsdmux_priv *pv = p->priv;
	uint8_t cdb[6] = { OP_INQUIRY, 0, 0, 0, INQUIRY_LEN, 0 };
	uint8_t d[INQUIRY_LEN] = { 0 };
	char vendor[9], product[17];
	int rc = sg_cmd(p, op, cdb, sizeof(cdb), SG_DXFER_FROM_DEV, d, sizeof(d),
			"reading the SCSI INQUIRY");

	if (rc)
		return rc;
	memcpy(vendor, d + 8, 8);
	memcpy(product, d + 16, 16);
	vendor[8] = product[16] = 0;
	for (int i = 7; i >= 0 && (vendor[i] == ' ' || !vendor[i]); i--)
		vendor[i] = 0;
	for (int i = 15; i >= 0 && (product[i] == ' ' || !product[i]); i--)
		product[i] = 0;
	for (size_t i = 0; i < RIG_ARRAY_SIZE(models); i++)
		if (!strcmp(product, models[i].inquiry)) {
			pv->model = &models[i];
			return 0;
		}
	mux_drop(pv);
	return rig_part_fail(p, RIG_E_NODEV,
			     "%s is not a USB-SD-Mux: its SCSI INQUIRY says vendor '%s', product '%s' (a USB-SD-Mux says '%s' or '%s')",
			     pv->where, vendor, product, models[0].inquiry, models[1].inquiry);
}

/* Find the node in sysfs, open it and tell the model. */
static int mux_find(struct rig_part *p, struct op *op)
{
	struct usbsdmux_priv *pv = p->priv;
	struct rig_usb_id id;
	char why[1536];
	int rc = rig_sysfs_find(RIG_DEV_SG, &pv->match, &id, why, sizeof(why));

	if (rc < 0)
		return rig_part_fail(p, rc, "no USB-SD-Mux: %s%s", why,
				     rc == RIG_E_NODEV && strstr(why, "no USB sg nodes present") ?
				     "; is the sg module loaded (modprobe sg)?" : "");
	rig_usb_id_describe(&id, pv->where, sizeof(pv->where));
	pv->fd = open(id.dev, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (pv->fd < 0) {
		int e = errno;

		if (e == EACCES || e == EPERM)
			return rig_part_fail(p, RIG_E_IO,
					     "cannot open %s: permission denied: install the udev rule in docs/hardware/usbsdmux.md",
					     pv->where);
		if (e == EBUSY)
			return rig_part_fail(p, RIG_E_BUSY, "cannot open %s: it is open exclusively elsewhere",
					     pv->where);
		return rig_part_fail(p, e == ENOENT || e == ENODEV || e == ENXIO ? RIG_E_NODEV : RIG_E_IO,
				     "cannot open %s: %s", pv->where, strerror(e));
	}
	op->reused = false;
	pv->model = NULL;
	rc = mux_identify(p, op);
	if (rc) {
		/* Not kept: the next call must ask again which model it is. */
		mux_drop(pv);
		return rc;
	}
	rig_dbg(rig_part_ctx(p), "using the %s at %s", pv->model->name, pv->where);
	return 0;
}

/*
 * Start a call: the node open, the model known and, on a FAST fresh from power-on, the
 * state its pull resistors select (DUT, card connected) driven, so that read-modify-write
 * keeps it.
 */
static int mux_begin(struct rig_part *p, struct op *op, int timeout_ms)
{
	struct usbsdmux_priv *pv = p->priv;
	const struct mux_model *mm;
	uint8_t cfg = 0;
	int rc;

	op->timeout_ms = timeout_ms;
	op->reused = pv->fd >= 0;
	op->done = 0;
	if (pv->fd < 0 && (rc = mux_find(p, op)) < 0)
		return rc;
	mm = pv->model;
	if (mm != MODEL_FAST || pv->taken_over)
		return 0;
	rc = reg_read(p, op, REG_CONFIG, &cfg, "reading the expander configuration");
	if (rc == 0 && cfg == 0xFF) {
		rc = reg_write(p, op, REG_OUTPUT, mm->sel_dut | mm->no_card,
			       "taking over the power-on state");
		if (rc == 0)
			rc = reg_write(p, op, REG_CONFIG, (uint8_t)(cfg & ~mm->outputs),
				       "taking over the power-on state");
	}
	if (rc == 0)
		pv->taken_over = true;
	return rc;
}

/* Card cut off from both sides and unpowered; the select line on the host. */
static int mux_off(struct rig_part *p, struct op *op)
{
	const struct mux_model *mm = ((struct usbsdmux_priv *)p->priv)->model;
	const char *what = "disconnecting the card";
	int rc = out_set(p, op, mm->dat_off | mm->pwr_off | mm->no_card, what);

	if (rc == 0 && mm != MODEL_FAST)
		rc = make_outputs(p, op, mm->outputs, what);
	return rc;
}

static int set_once(struct rig_part *p, enum rig_mux m, int timeout_ms)
{
	const struct usbsdmux_conf *c = p->conf;
	struct usbsdmux_priv *pv = p->priv;
	const struct mux_model *mm;
	int wait = c->discharge_ms ? c->discharge_ms : DISCHARGE_MS;
	struct op op;
	int rc = mux_begin(p, &op, timeout_ms);

	if (rc)
		return rc;
	mm = pv->model;
	rc = mux_off(p, &op);
	if (rc)
		return rc;
	if (wait > 0) {
		rc = rig_ctx_sleep(rig_part_ctx(p), wait);
		if (rc < 0)
			return rig_part_fail(p, rc, "%s while the card discharged (it is off)",
					     rc == RIG_E_INTR ? "interrupted" : "timed out");
	}
	switch (m) {
	case RIG_MUX_OFF:
		return 0;
	case RIG_MUX_DUT:
		/* Select while the card is still cut off, then connect it. */
		rc = out_set(p, &op, mm->dat_off | mm->pwr_off | mm->sel_dut | mm->no_card,
			     "selecting the DUT");
		if (rc == 0)
			rc = out_set(p, &op, mm->sel_dut | mm->no_card,
				     "connecting the card to the DUT");
		return rc;
	case RIG_MUX_HOST:
		/* The off state has already selected the host: connect, and show the card. */
		return out_set(p, &op, 0, "connecting the card to the host");
	}
	return RIG_E_INVAL;
}

static int usbsdmux_set(struct rig_part *p, enum rig_mux m, int timeout_ms)
{
	int rc = set_once(p, m, timeout_ms);

	return rc == STALE ? set_once(p, m, timeout_ms) : rc;
}

static int get_once(struct rig_part *p, enum rig_mux *m, int timeout_ms)
{
	struct usbsdmux_priv *pv = p->priv;
	struct op op;
	uint8_t in = 0;
	int rc = mux_begin(p, &op, timeout_ms);

	if (rc == 0)
		rc = reg_read(p, &op, REG_INPUT, &in, "reading the expander's pins");
	if (rc)
		return rc;
	/* Data and power are cut together: one of them tells "off". */
	if (in & pv->model->pwr_off)
		*m = RIG_MUX_OFF;
	else
		*m = (in & pv->model->sel_dut) ? RIG_MUX_DUT : RIG_MUX_HOST;
	return 0;
}

static int usbsdmux_get(struct rig_part *p, enum rig_mux *m, int timeout_ms)
{
	int rc = get_once(p, m, timeout_ms);

	return rc == STALE ? get_once(p, m, timeout_ms) : rc;
}

static void usbsdmux_close(struct rig_part *p)
{
	mux_drop(p->priv);
}

static int usbsdmux_open(struct rig_part *p)
{
	const struct usbsdmux_conf *c = p->conf;
	struct usbsdmux_priv *pv = p->priv;
	struct op op = { 0 };
	int rc;

	pv->fd = -1;
	pv->match = c->usb;
	if (pv->match.vid < 0) {
		pv->match.vid = MUX_VID;
		pv->match.pid = MUX_PID;
	}
	if (c->discharge_ms < -1)
		return rig_part_fail(p, RIG_E_INVAL, "discharge_ms %d: use -1 (none) or more",
				     c->discharge_ms);
	op.timeout_ms = rig_ctx_clamp(rig_part_ctx(p), p->common.timeout_ms);
	rc = mux_find(p, &op);
	if (rc < 0)
		mux_drop(pv);       /* the core does not call close() after a failed open() */
	return rc;
}

#define P(f) offsetof(struct usbsdmux_conf, f)
static const struct rig_param usbsdmux_params[] = {
	{ "usb", RIG_P_USB, P(usb), false, "the mux's card reader: usb_serial (udevadm: ID_SERIAL_SHORT of its sg node; required when several are attached), usb_path (1-1.1), vid_pid when re-programmed (default 0424:4041), udev" },
	{ "discharge_ms", RIG_P_INT, P(discharge_ms), false, "time the card stays unpowered on every switch (default 1000, -1 none)" },
	RIG_PARAMS_END
};
#undef P

static const struct rig_sdmux_ops usbsdmux_ops = { .set = usbsdmux_set, .get = usbsdmux_get };

const struct rig_backend rig_sdmux_usbsdmux = {
	.role = RIG_ROLE_SDMUX,
	.name = "usbsdmux",
	.help = "Linux Automation USB-SD-Mux (classic and FAST) over SG_IO: host, dut and off (card unpowered)",
	.doc = "docs/hardware/usbsdmux.md",
	.params = usbsdmux_params,
	.conf_size = sizeof(struct usbsdmux_conf),
	.priv_size = sizeof(struct usbsdmux_priv),
	.open = usbsdmux_open,
	.close = usbsdmux_close,
	.ops.sdmux = &usbsdmux_ops,
};
