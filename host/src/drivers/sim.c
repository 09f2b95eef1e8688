/* SPDX-License-Identifier: MIT */
/*
 * sim: in-process back-ends for every role. They share one state file per rig
 * (<state dir>/<rig>.sim) so a `rigor power on` in one process is seen by
 * `rigor console` in the next, and a simulated board boots on the console when
 * power goes on with the mux on the DUT side. Faults are injected per part through
 * the same file: "fail", "hang", "gone", and "fail-once" (the next call fails, later
 * ones work: a glitch that a retry clears).
 */
#define LOG_PREFIX "sim"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../internal.h"

static void sim_path(const struct rig_part *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s.sim", rig_ctx_state_dir(rig_part_ctx(p)), rig_part_rig_name(p));
}

/* Read-modify-write one key under the state file's lock. */
static int sim_put(struct rig_part *p, const char *key, long long v)
{
	char path[4200];
	int lk, rc = RIG_E_NOMEM;
	struct rig_kv *kv;

	sim_path(p, path, sizeof(path));
	lk = rig_kv_lock(rig_part_ctx(p), path, RIG_KV_LOCK_MS);
	if (lk < 0)
		return rig_part_fail(p, lk, "sim state '%s': %s", path,
				     lk == RIG_E_BUSY ? "locked by another process for 5 s" : rig_err_name(lk));
	kv = rig_kv_load(path);
	if (kv && rig_kv_set_int(kv, key, v) == 0)
		rc = rig_kv_save(kv, path);
	rig_kv_free(kv);
	rig_kv_unlock(lk);
	return rc;
}

static long long sim_get(const struct rig_part *p, const char *key, long long dflt)
{
	char path[4200];
	struct rig_kv *kv;
	long long v;

	sim_path(p, path, sizeof(path));
	kv = rig_kv_load(path);
	if (!kv)
		return dflt;
	v = rig_kv_get_int(kv, key, dflt);
	rig_kv_free(kv);
	return v;
}

enum { F_OK_, F_FAIL, F_HANG, F_GONE, F_FAIL_ONCE, F_COUNT };

static int sim_inject(struct rig_part *p, const char *fault)
{
	static const char *const names[F_COUNT] = { "ok", "fail", "hang", "gone", "fail-once" };
	char key[160];

	snprintf(key, sizeof(key), "fault.%s", p->label);
	for (int i = 0; i < F_COUNT; i++)
		if (!strcmp(fault, names[i]))
			return sim_put(p, key, i);
	return rig_part_fail(p, RIG_E_INVAL,
			     "unknown fault '%s' (expected ok, fail, fail-once, hang or gone)", fault);
}

/* Apply an injected fault, if any: returns 0 to go on, or the error to return. */
static int sim_fault(struct rig_part *p, int timeout_ms)
{
	char key[160];
	int rc;

	snprintf(key, sizeof(key), "fault.%s", p->label);
	switch (sim_get(p, key, F_OK_)) {
	case F_FAIL_ONCE:
		rc = sim_put(p, key, F_OK_);
		if (rc < 0)
			return rc;
		return rig_part_fail(p, RIG_E_IO, "sim: injected failure (once)");
	case F_FAIL:
		return rig_part_fail(p, RIG_E_IO, "sim: injected failure");
	case F_HANG:
		/* A device that never answers: the call ends only by its timeout. */
		rc = rig_ctx_sleep(rig_part_ctx(p), timeout_ms < 0 ? 3600000 : timeout_ms);
		if (rc < 0)
			return rc;
		return rig_part_fail(p, RIG_E_TIMEOUT, "sim: no answer within %d ms", timeout_ms);
	case F_GONE:
		return rig_part_fail(p, RIG_E_NODEV, "sim: device disappeared");
	default:
		return 0;
	}
}

/* ---- power ---- */

struct power_conf {
	int mv, ma;
};

static int power_set(struct rig_part *p, bool on, int timeout_ms)
{
	int rc = sim_fault(p, timeout_ms);
	bool was = sim_get(p, "power", 0);

	if (rc < 0)
		return rc;
	if (on && !was) {
		/* A new boot: remember when and from which side of the mux. */
		sim_put(p, "boot_mux", sim_get(p, "mux", RIG_MUX_OFF));
		sim_put(p, "power_at", rig_wall_ms());
		sim_put(p, "boots", sim_get(p, "boots", 0) + 1);
	}
	return sim_put(p, "power", on);
}

static int power_get(struct rig_part *p, bool *on, int timeout_ms)
{
	int rc = sim_fault(p, timeout_ms);

	if (rc < 0)
		return rc;
	*on = sim_get(p, "power", 0) != 0;
	return 0;
}

static int power_measure(struct rig_part *p, struct rig_power_reading *r, int timeout_ms)
{
	const struct power_conf *c = p->conf;
	int rc = sim_fault(p, timeout_ms);
	bool on = sim_get(p, "power", 0);

	if (rc < 0)
		return rc;
	r->mv = on ? (c->mv ? c->mv : 5080) : 0;
	r->ma = on ? (c->ma ? c->ma : 420) : 0;
	return 0;
}

static const struct rig_param power_params[] = {
	{ "mv", RIG_P_INT, offsetof(struct power_conf, mv), false, "voltage measure() reports when on" },
	{ "ma", RIG_P_INT, offsetof(struct power_conf, ma), false, "current measure() reports when on" },
	RIG_PARAMS_END
};

static const struct rig_power_ops power_ops = {
	.set = power_set, .get = power_get, .measure = power_measure,
};

const struct rig_backend rig_power_sim = {
	.role = RIG_ROLE_POWER,
	.name = "sim",
	.help = "simulated DUT power switch with V/I readings and fault injection",
	.params = power_params,
	.conf_size = sizeof(struct power_conf),
	.inject = sim_inject,
	.ops.power = &power_ops,
};

/* ---- sdmux ---- */

static int mux_set(struct rig_part *p, enum rig_mux m, int timeout_ms)
{
	int rc = sim_fault(p, timeout_ms);

	return rc < 0 ? rc : sim_put(p, "mux", m);
}

static int mux_get(struct rig_part *p, enum rig_mux *m, int timeout_ms)
{
	int rc = sim_fault(p, timeout_ms);

	if (rc < 0)
		return rc;
	*m = (enum rig_mux)sim_get(p, "mux", RIG_MUX_OFF);
	return 0;
}

static const struct rig_sdmux_ops mux_ops = { .set = mux_set, .get = mux_get };

const struct rig_backend rig_sdmux_sim = {
	.role = RIG_ROLE_SDMUX,
	.name = "sim",
	.help = "simulated SD card mux (off/host/dut) with read-back and fault injection",
	.inject = sim_inject,
	.ops.sdmux = &mux_ops,
};

/* ---- button ---- */

static int button_set(struct rig_part *p, bool asserted, int timeout_ms)
{
	char key[160];
	int rc = sim_fault(p, timeout_ms);

	if (rc < 0)
		return rc;
	snprintf(key, sizeof(key), "%s.level", p->label);
	rc = sim_put(p, key, asserted);
	snprintf(key, sizeof(key), "%s.presses", p->label);
	if (rc == 0 && asserted != p->common.inverted)
		rc = sim_put(p, key, sim_get(p, key, 0) + 1);
	return rc;
}

static const struct rig_button_ops button_ops = { .set = button_set };

const struct rig_backend rig_button_sim = {
	.role = RIG_ROLE_BUTTON,
	.name = "sim",
	.help = "simulated button or boot strap (records level and press count)",
	.inject = sim_inject,
	.ops.button = &button_ops,
};

/* ---- console: a board that boots when powered with the card on its side ---- */

struct console_conf {
	int line_ms;
	char *hostname;
};

struct console_priv {
	long long boot;     /* which boot we are showing */
	size_t line;        /* next transcript line */
	char out[4096];     /* echo and shell replies not yet read */
	size_t outlen;
	char in[256];       /* the line being typed */
	size_t inlen;
};

static const char *const boot_ok[] = {
	"",
	"rigor-sim boot ROM",
	"boot: reading boot partition from SD card",
	"boot: loading kernel, initramfs, cmdline",
	"[    0.000000] Linux version 6.1.0-sim (rigor simulated board)",
	"[    0.412000] mmc0: new SD card at address 0001",
	"[    1.020000] EXT4-fs (mmcblk0p2): mounted filesystem",
	"Starting system...",
	"",
	"@HOST@ login: ",
};

static const char *const boot_nocard[] = {
	"",
	"rigor-sim boot ROM",
	"boot: no bootable media: SD card not present (is the mux on the DUT side?)",
	"boot: halted",
};

static size_t transcript(const struct rig_part *p, const char *const **lines)
{
	if (sim_get(p, "boot_mux", RIG_MUX_OFF) == RIG_MUX_DUT) {
		*lines = boot_ok;
		return RIG_ARRAY_SIZE(boot_ok);
	}
	*lines = boot_nocard;
	return RIG_ARRAY_SIZE(boot_nocard);
}

static int console_open(struct rig_part *p)
{
	struct console_priv *s = p->priv;
	const struct console_conf *c = p->conf;
	int64_t since;
	const char *const *lines;

	/* Attach like a real UART: what scrolled by before we opened is gone. */
	s->boot = sim_get(p, "boots", 0);
	if (sim_get(p, "power", 0)) {
		since = rig_wall_ms() - sim_get(p, "power_at", 0);
		s->line = (size_t)(since / (c->line_ms > 0 ? c->line_ms : 30));
		if (s->line > transcript(p, &lines))
			s->line = transcript(p, &lines);
	} else {
		s->line = 0;
	}
	return 0;
}

static void out_add(struct console_priv *s, const char *str, size_t n)
{
	if (n > sizeof(s->out) - s->outlen)
		n = sizeof(s->out) - s->outlen;
	memcpy(s->out + s->outlen, str, n);
	s->outlen += n;
}

static size_t take(struct console_priv *s, char *buf, size_t len)
{
	size_t n = s->outlen < len ? s->outlen : len;

	memcpy(buf, s->out, n);
	memmove(s->out, s->out + n, s->outlen - n);
	s->outlen -= n;
	return n;
}

static int console_read(struct rig_part *p, void *buf, size_t len, int timeout_ms)
{
	struct console_priv *s = p->priv;
	const struct console_conf *c = p->conf;
	int line_ms = c->line_ms > 0 ? c->line_ms : 30;
	struct rig_deadline end = rig_deadline_start(timeout_ms);
	int rc = sim_fault(p, timeout_ms);

	if (rc < 0)
		return rc;
	for (;;) {
		const char *const *lines;
		size_t nlines = transcript(p, &lines);
		bool on = sim_get(p, "power", 0);
		long long boot = sim_get(p, "boots", 0);

		if (s->outlen)
			return (int)take(s, buf, len);
		if (boot != s->boot) {
			s->boot = boot;
			s->line = 0;
		}
		if (on && s->line < nlines) {
			int64_t due = sim_get(p, "power_at", 0) + (int64_t)(s->line + 1) * line_ms;

			if (rig_wall_ms() >= due) {
				const char *l = lines[s->line++];
				const char *host = c->hostname ? c->hostname : "rigor-sim";
				const char *at = strstr(l, "@HOST@");

				if (at) {
					out_add(s, l, (size_t)(at - l));
					out_add(s, host, strlen(host));
					out_add(s, at + 6, strlen(at + 6));
				} else {
					out_add(s, l, strlen(l));
					out_add(s, "\r\n", 2);
				}
				continue;
			}
		}
		if (rig_deadline_expired(end))
			return RIG_E_TIMEOUT;
		rc = rig_ctx_sleep(rig_part_ctx(p), 5);
		if (rc < 0)
			return rc;
	}
}

/* The simulated shell knows two commands: "echo TEXT" and "hostname". */
static void shell_reply(const struct rig_part *p, struct console_priv *s)
{
	const struct console_conf *c = p->conf;
	const char *h = c->hostname ? c->hostname : "rigor-sim";

	if (s->inlen >= 5 && !memcmp(s->in, "echo ", 5)) {
		out_add(s, s->in + 5, s->inlen - 5);
		out_add(s, "\r\n", 2);
	} else if (s->inlen == 8 && !memcmp(s->in, "hostname", 8)) {
		out_add(s, h, strlen(h));
		out_add(s, "\r\n", 2);
	}
}

static int console_write(struct rig_part *p, const void *buf, size_t len, int timeout_ms)
{
	struct console_priv *s = p->priv;
	const char *b = buf;
	int rc = sim_fault(p, timeout_ms);
	const char *const *lines;
	bool shell;

	if (rc < 0)
		return rc;
	/* Only a booted board echoes: before the login prompt input is lost, as on a UART. */
	shell = sim_get(p, "power", 0) && transcript(p, &lines) == RIG_ARRAY_SIZE(boot_ok) &&
		s->line >= RIG_ARRAY_SIZE(boot_ok);
	for (size_t i = 0; shell && i < len; i++) {
		if (b[i] == '\r' || b[i] == '\n') {
			out_add(s, "\r\n", 2);
			shell_reply(p, s);
			out_add(s, "# ", 2);
			s->inlen = 0;
		} else {
			out_add(s, &b[i], 1);
			if (s->inlen < sizeof(s->in))
				s->in[s->inlen++] = b[i];
		}
	}
	return (int)len;
}

static const struct rig_param console_params[] = {
	{ "line_ms", RIG_P_INT, offsetof(struct console_conf, line_ms), false,
	  "time between simulated boot log lines" },
	{ "hostname", RIG_P_STR, offsetof(struct console_conf, hostname), false,
	  "name in the login prompt" },
	RIG_PARAMS_END
};

static const struct rig_console_ops console_ops = { .read = console_read, .write = console_write };

const struct rig_backend rig_console_sim = {
	.role = RIG_ROLE_CONSOLE,
	.name = "sim",
	.help = "simulated serial console of a board that boots when powered with the card",
	.params = console_params,
	.conf_size = sizeof(struct console_conf),
	.priv_size = sizeof(struct console_priv),
	.open = console_open,
	.inject = sim_inject,
	.ops.console = &console_ops,
};

/* ---- usbboot ---- */

static int usbboot_boot(struct rig_part *p, const char *dir, int timeout_ms)
{
	struct stat st;
	int rc = sim_fault(p, timeout_ms);

	if (rc < 0)
		return rc;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return rig_part_fail(p, RIG_E_NOENT, "boot directory '%s' does not exist", dir);
	if (!sim_get(p, "power", 0))
		return rig_part_fail(p, RIG_E_NODEV,
				     "no device in USB boot mode (is the DUT powered with its boot strap held?)");
	return sim_put(p, "usbboots", sim_get(p, "usbboots", 0) + 1);
}

static const struct rig_usbboot_ops usbboot_ops = { .boot = usbboot_boot };

const struct rig_backend rig_usbboot_sim = {
	.role = RIG_ROLE_USBBOOT,
	.name = "sim",
	.help = "simulated USB boot port (needs DUT power, serves a directory)",
	.inject = sim_inject,
	.ops.usbboot = &usbboot_ops,
};

/* ---- storage ---- */

struct storage_conf {
	char *path;
	int size_mb;
};

static int storage_resolve_file(struct rig_part *p, const char *path, int size_mb, char *buf,
				size_t len, char *why, size_t whylen, bool create)
{
	struct stat st;
	int fd;

	if (stat(path, &st) < 0) {
		if (!create)
			return rig_part_fail(p, RIG_E_NODEV, "target file '%s' does not exist", path);
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0)
			rig_file_share(fd, path);
		if (fd < 0 || ftruncate(fd, (off_t)size_mb << 20) < 0) {
			int e = -errno;

			if (fd >= 0)
				close(fd);
			return rig_part_fail(p, e, "cannot create virtual card '%s': %s", path,
					     strerror(-e));
		}
		close(fd);
	}
	snprintf(buf, len, "%s", path);
	if (whylen)
		snprintf(why, whylen, "%s", create ? "virtual card image (sim back-end)"
						   : "plain file named by the rig file");
	return 0;
}

static int storage_sim_resolve(struct rig_part *p, char *buf, size_t len, char *why, size_t whylen)
{
	const struct storage_conf *c = p->conf;
	char path[4200];
	int rc = sim_fault(p, 0);

	if (rc < 0)
		return rc;
	if (c->path)
		snprintf(path, sizeof(path), "%s", c->path);
	else
		snprintf(path, sizeof(path), "%s/%s.card", rig_ctx_state_dir(rig_part_ctx(p)),
			 rig_part_rig_name(p));
	return storage_resolve_file(p, path, c->size_mb > 0 ? c->size_mb : 64, buf, len, why,
				    whylen, true);
}

static int storage_file_resolve(struct rig_part *p, char *buf, size_t len, char *why,
				size_t whylen)
{
	const struct storage_conf *c = p->conf;

	return storage_resolve_file(p, c->path, 0, buf, len, why, whylen, false);
}

static const struct rig_param storage_sim_params[] = {
	{ "path", RIG_P_STR, offsetof(struct storage_conf, path), false,
	  "card image file (default: <state dir>/<rig>.card)" },
	{ "size_mb", RIG_P_INT, offsetof(struct storage_conf, size_mb), false,
	  "size of a new card image" },
	RIG_PARAMS_END
};

static const struct rig_param storage_file_params[] = {
	{ "path", RIG_P_STR, offsetof(struct storage_conf, path), true, "the target file" },
	RIG_PARAMS_END
};

static const struct rig_storage_ops storage_sim_ops = { .resolve = storage_sim_resolve };
static const struct rig_storage_ops storage_file_ops = { .resolve = storage_file_resolve };

const struct rig_backend rig_storage_sim = {
	.role = RIG_ROLE_STORAGE,
	.name = "sim",
	.help = "simulated SD card: an image file created on first use",
	.params = storage_sim_params,
	.conf_size = sizeof(struct storage_conf),
	.inject = sim_inject,
	.ops.storage = &storage_sim_ops,
};

const struct rig_backend rig_storage_file = {
	.role = RIG_ROLE_STORAGE,
	.name = "file",
	.help = "a plain file as the flash target (virtual SD card)",
	.params = storage_file_params,
	.conf_size = sizeof(struct storage_conf),
	.ops.storage = &storage_file_ops,
};
