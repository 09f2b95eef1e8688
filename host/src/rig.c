/* SPDX-License-Identifier: MIT */
/*
 * The front end: every role call passes here first. This file holds the invariants
 * (interlock, inversion, min off time, settle time, timeouts, the event log) so that
 * back-ends only do raw work.
 */
#define LOG_PREFIX "rig"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "desc.h"

#define CONSOLE_BUF_MAX (256 * 1024)

struct rig {
	struct rig_ctx *ctx;
	char *name, *device_type, *file;
	size_t ncaps;
	char **caps;
	struct rig_part *role[RIG_ROLE_COUNT]; /* single parts; buttons below */
	size_t nbuttons;
	struct rig_part **buttons;
	unsigned int present;                  /* roles the description has (bits) */
	bool uplink_cut;                       /* this process cut the DUT's uplink */
	unsigned int opened;                   /* roles rig_open_roles() opened */
	char *state_path;                      /* persisted front-end state */
	FILE *sink;                            /* rig_log_to() */
	char *sink_path;                       /* the open log, or the last one */
	long long sink_size;                   /* its size after our last write; -1: unknown */
	bool sink_nl;                          /* it ends with a newline (or is empty) */
	bool sink_mid;                         /* it ends inside a console line of ours */
	bool sink_cut;                         /* a console line was ended early (by another
						  line, or in an earlier log): "continued" */
	rig_event_cb event_cb;
	void *event_user;
	char *cbuf;                            /* console bytes not yet consumed */
	size_t clen, ccap;
	struct shared {
		char *key;
		void *obj;
		void (*destroy)(void *obj);
	} shared[8];
	char err[RIG_ERRMSG_MAX];
	int errcode;
};

/* ---- errors ---- */

int rig_set_error(struct rig *rig, int code, const char *fmt, ...)
{
	va_list ap;

	if (!rig->errcode) {
		rig->errcode = code;
		va_start(ap, fmt);
		vsnprintf(rig->err, sizeof(rig->err), fmt, ap);
		va_end(ap);
	}
	return code;
}

int rig_part_fail(struct rig_part *p, int code, const char *fmt, ...)
{
	struct rig *rig = p->rig;
	char msg[RIG_ERRMSG_MAX - 64];
	va_list ap;

	if (!rig->errcode) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		rig_set_error(rig, code, "%s: %s", p->label, msg);
	}
	return code;
}

const char *rig_errmsg(const struct rig *rig) { return rig->err; }

void rig_clear_error(struct rig *rig)
{
	rig->err[0] = 0;
	rig->errcode = 0;
}

/* The timeout for one back-end call: the part's, cut to the context deadline. */
static int tmo(const struct rig_part *p)
{
	return rig_ctx_clamp(p->rig->ctx, p->common.timeout_ms);
}

/* A back-end returned @rc without saying why: say it for it. */
static int fail_generic(struct rig_part *p, int rc, const char *what)
{
	if (rc == RIG_E_TIMEOUT)
		return rig_part_fail(p, rc, "%s timed out after %d ms", what, p->common.timeout_ms);
	return rig_part_fail(p, rc, "%s failed: %s", what, rig_strerror(rc));
}

struct rig_ctx *rig_part_ctx(const struct rig_part *p) { return p->rig->ctx; }
const char *rig_part_rig_name(const struct rig_part *p) { return p->rig->name; }
const char *rig_part_device_type(const struct rig_part *p) { return p->rig->device_type; }
const char *rig_name(const struct rig *rig) { return rig->name; }
const char *rig_device_type(const struct rig *rig) { return rig->device_type ? rig->device_type : ""; }
struct rig_ctx *rig_ctx(const struct rig *rig) { return rig->ctx; }

void *rig_part_shared(struct rig_part *p, const char *key, void *(*create)(struct rig_part *p,
		      int *rc), void (*destroy)(void *obj), int *rc)
{
	struct rig *rig = p->rig;
	size_t i;

	for (i = 0; i < RIG_ARRAY_SIZE(rig->shared) && rig->shared[i].key; i++)
		if (!strcmp(rig->shared[i].key, key))
			return rig->shared[i].obj;
	if (i == RIG_ARRAY_SIZE(rig->shared)) {
		*rc = rig_part_fail(p, RIG_E_NOMEM, "too many shared links in one rig");
		return NULL;
	}
	rig->shared[i].obj = create(p, rc);
	if (!rig->shared[i].obj)
		return NULL;
	rig->shared[i].key = strdup(key);
	rig->shared[i].destroy = destroy;
	if (!rig->shared[i].key) {
		destroy(rig->shared[i].obj);
		rig->shared[i].obj = NULL;
		*rc = RIG_E_NOMEM;
		return NULL;
	}
	return rig->shared[i].obj;
}

/* ---- events ---- */

/*
 * The log has other writers: the runner appends its own lines to the same file through
 * its own handle. So before writing, look at how the file really ends, and start every
 * line of ours on a line of its own. A console line of ours that someone else's line
 * (or our own event line) interrupted goes on later as "console (continued)".
 */
static void sink_cut_line(struct rig *rig)
{
	if (rig->sink_mid) {
		rig->sink_mid = false;
		rig->sink_cut = true;
	}
}

static void sink_sync(struct rig *rig)
{
	int fd = fileno(rig->sink);
	struct stat st;
	char last = '\n';

	if (fstat(fd, &st) < 0 || (long long)st.st_size == rig->sink_size)
		return;
	if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
		last = '\n';
	sink_cut_line(rig);
	rig->sink_nl = last == '\n';
	rig->sink_size = st.st_size;
}

static void sink_flush(struct rig *rig)
{
	struct stat st;

	fflush(rig->sink);
	rig->sink_size = fstat(fileno(rig->sink), &st) < 0 ? -1 : (long long)st.st_size;
}

/* Start a line "[HH:MM:SS.mmm] @who: " (after sink_sync). */
static void sink_line(struct rig *rig, const char *who)
{
	char ts[64];
	struct timespec now;
	struct tm tm;

	sink_cut_line(rig);
	if (!rig->sink_nl)
		fputc('\n', rig->sink);
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	fprintf(rig->sink, "[%s.%03ld] %s: ", ts, now.tv_nsec / 1000000, who);
	rig->sink_nl = false;
}

void rig_event(struct rig *rig, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rig_info(rig->ctx, "%s: %s", rig->name, msg);
	if (rig->sink) {
		sink_sync(rig);
		sink_line(rig, "rig");
		fprintf(rig->sink, "%s\n", msg);
		rig->sink_nl = true;
		sink_flush(rig);
	}
	if (rig->event_cb)
		rig->event_cb(rig->event_user, msg);
}

static int sink_open(struct rig *rig, const char *path)
{
	rig->sink = fopen(path, "a+e");    /* '+': sink_sync() reads the last byte */
	if (!rig->sink)
		return -errno;
	/* the default log is in the state directory every user of the rig shares */
	rig_file_share(fileno(rig->sink), path);
	rig->sink_size = -1;
	rig->sink_nl = true;
	rig->sink_mid = false;     /* sink_cut stays: a console line can go on in the next log */
	return 0;
}

static void sink_close(struct rig *rig)
{
	sink_sync(rig);
	sink_cut_line(rig);
	if (!rig->sink_nl)
		fputc('\n', rig->sink);
	fclose(rig->sink);
	rig->sink = NULL;
}

static void sink_console(struct rig *rig, const char *buf, size_t n, const char *who);

/*
 * Read what the console has pending into the console buffer (and, with a log open, into
 * the log). Returns how many bytes came; they are the last ones in the buffer. A failure
 * is left for the next real read to report.
 */
static size_t console_drain(struct rig *rig)
{
	struct rig_part *p = rig->role[RIG_ROLE_CONSOLE];
	int had = rig->errcode, rc;
	size_t n = 0;

	/* The cap keeps the drained bytes clear of rig_console_fill()'s compaction. */
	while (p && p->priv && n < 64 * 1024 && (rc = rig_console_fill(rig, 0)) > 0)
		n += (size_t)rc;
	if (!had && rig->errcode) {
		rig_dbg(rig->ctx, "console not drained: %s", rig->err);
		rig_clear_error(rig);
	}
	return n < rig->clen ? n : rig->clen;
}

int rig_log_to(struct rig *rig, const char *path)
{
	size_t early = 0;
	char *copy;
	int rc;

	/*
	 * Console bytes belong to the log that was open when they arrived: read what is
	 * pending before switching. What came while no log was open goes to the last one.
	 */
	if (rig->sink) {
		console_drain(rig);
		sink_close(rig);
	} else if (path) {
		bool cut = rig->sink_cut;

		early = console_drain(rig);
		rig->sink_cut = cut;        /* as it was before them: they are logged below */
		if (early && rig->sink_path && sink_open(rig, rig->sink_path) == 0) {
			sink_console(rig, rig->cbuf + rig->clen - early, early, "console");
			sink_close(rig);
			early = 0;
		}
	}
	if (!path)
		return 0;
	copy = strdup(path);
	if (!copy)
		return rig_set_error(rig, RIG_E_NOMEM, "out of memory");
	rc = sink_open(rig, path);
	if (rc < 0) {
		free(copy);
		return rig_set_error(rig, rc, "cannot open log '%s': %s", path, strerror(-rc));
	}
	free(rig->sink_path);
	rig->sink_path = copy;
	/* The first log: what was pending is older than it, and says so. */
	if (early)
		sink_console(rig, rig->cbuf + rig->clen - early, early, "console (earlier)");
	return 0;
}

void rig_set_event_cb(struct rig *rig, rig_event_cb cb, void *user)
{
	rig->event_cb = cb;
	rig->event_user = user;
}

/* ---- persisted front-end state ---- */

static void state_save(struct rig *rig, const char *key, long long v)
{
	int lk = rig_kv_lock(rig->ctx, rig->state_path, RIG_KV_LOCK_MS);
	struct rig_kv *kv;
	char k2[64];

	if (lk < 0) {
		rig_warn(rig->ctx, "rig state '%s' not saved: %s", rig->state_path, rig_err_name(lk));
		return;
	}
	kv = rig_kv_load(rig->state_path);
	if (kv) {
		snprintf(k2, sizeof(k2), "%s_at", key);
		rig_kv_set_int(kv, key, v);
		rig_kv_set_int(kv, k2, rig_wall_ms());
		if (rig_kv_save(kv, rig->state_path) < 0)
			rig_warn(rig->ctx, "cannot save rig state to '%s'", rig->state_path);
	}
	rig_kv_free(kv);
	rig_kv_unlock(lk);
}

/* Returns the saved value (or @dflt) and, in @at, its wall-clock time in ms (or 0). */
static long long state_load(struct rig *rig, const char *key, long long dflt, int64_t *at)
{
	struct rig_kv *kv = rig_kv_load(rig->state_path);
	char k2[64];
	long long v;

	if (!kv)
		return dflt;
	snprintf(k2, sizeof(k2), "%s_at", key);
	v = rig_kv_get_int(kv, key, dflt);
	if (at)
		*at = rig_kv_get_int(kv, k2, 0);
	rig_kv_free(kv);
	return v;
}

/* ---- open / close ---- */

static void part_free(struct rig_part *p)
{
	if (!p)
		return;
	if (p->priv && p->be->close)
		p->be->close(p);
	desc_release_conf(p->be, p->conf);
	free(p->common.msd_dir);
	free(p->common.user);
	free(p->common.identity);
	free(p->common.boot_button);
	free(p->conf);
	free(p->priv);
	free(p->label);
	free(p->instance);
	free(p);
}

static char *xstrdup0(const char *s) { return s ? strdup(s) : NULL; }

int rig_open(struct rig_ctx *ctx, struct rig_desc *d, struct rig **out)
{
	return rig_open_roles(ctx, d, RIG_ROLES_ALL, out);
}

int rig_open_roles(struct rig_ctx *ctx, struct rig_desc *d, unsigned int roles, struct rig **out)
{
	struct rig *rig;
	size_t n = desc_nparts(d);
	char path[4200];
	int rc;

	*out = NULL;
	rc = rig_desc_validate(d);
	if (rc != 0)
		return rig_ctx_fail(ctx, rc < 0 ? rc : RIG_E_INVAL, "invalid rig description:\n%s",
				    rig_desc_problems(d));
	rc = rig_ctx_ensure_state_dir(ctx);
	if (rc < 0)
		return rc;
	rig = calloc(1, sizeof(*rig));
	if (!rig)
		return RIG_E_NOMEM;
	rig->ctx = ctx;
	rig->opened = roles;
	rig->name = strdup(rig_desc_name(d));
	rig->device_type = xstrdup0(rig_desc_device_type(d));
	rig->file = strdup(rig_desc_file(d));
	snprintf(path, sizeof(path), "%s/%s.state", rig_ctx_state_dir(ctx), rig->name);
	rig->state_path = strdup(path);
	rig->ncaps = desc_ncaps(d);
	rig->caps = calloc(rig->ncaps + 1, sizeof(char *));
	rig->buttons = calloc(n + 1, sizeof(*rig->buttons));
	if (!rig->name || !rig->file || !rig->state_path || !rig->caps || !rig->buttons)
		goto oom;
	for (size_t i = 0; i < rig->ncaps; i++)
		if (!(rig->caps[i] = strdup(desc_cap(d, i))))
			goto oom;
	for (size_t i = 0; i < n; i++) {
		const struct rig_backend *be = NULL;
		struct rig_part *p = calloc(1, sizeof(*p));
		const char *inst = desc_part_instance(d, i);
		char label[128];

		if (!p)
			goto oom;
		/* The registry entry tells conf/priv sizes; validation already passed. */
		desc_fill_part(d, i, &be, NULL, NULL);
		rig->present |= RIG_ROLE_BIT(be->role);
		/* another process may be using it (the console of a control command) */
		if (!(roles & RIG_ROLE_BIT(be->role))) {
			free(p);
			continue;
		}
		p->be = be;
		p->rig = rig;
		p->conf = calloc(1, be->conf_size ? be->conf_size : 1);
		p->instance = xstrdup0(inst);
		snprintf(label, sizeof(label), "%s%s%s", rig_role_name(be->role), inst ? "." : "",
			 inst ? inst : "");
		p->label = strdup(label);
		if (!p->conf || !p->label || (inst && !p->instance)) {
			part_free(p);
			goto oom;
		}
		desc_fill_part(d, i, NULL, &p->common, p->conf);
		if (be->role == RIG_ROLE_BUTTON)
			rig->buttons[rig->nbuttons++] = p;
		else
			rig->role[be->role] = p;
		p->priv = calloc(1, be->priv_size ? be->priv_size : 1);
		if (!p->priv)
			goto oom;
		if (be->open) {
			rc = be->open(p);
			if (rc < 0) {
				if (!rig->errcode)
					fail_generic(p, rc, "open");
				rig_ctx_fail(ctx, rc, "rig '%s': %s", rig->name, rig->err);
				/* close() must not run for a part whose open failed */
				free(p->priv);
				p->priv = NULL;
				rig_close(rig);
				return rc;
			}
		}
	}
	*out = rig;
	return 0;
oom:
	rig_close(rig);
	return rig_ctx_fail(ctx, RIG_E_NOMEM, "out of memory opening rig");
}

void rig_close(struct rig *rig)
{
	if (!rig)
		return;
	rig_log_to(rig, NULL);
	for (int r = 0; r < RIG_ROLE_COUNT; r++)
		part_free(rig->role[r]);
	for (size_t i = 0; i < rig->nbuttons; i++)
		part_free(rig->buttons[i]);
	for (size_t i = 0; i < RIG_ARRAY_SIZE(rig->shared) && rig->shared[i].key; i++) {
		rig->shared[i].destroy(rig->shared[i].obj);
		free(rig->shared[i].key);
	}
	for (size_t i = 0; rig->caps && i < rig->ncaps; i++)
		free(rig->caps[i]);
	free(rig->caps);
	free(rig->buttons);
	free(rig->cbuf);
	free(rig->name);
	free(rig->device_type);
	free(rig->file);
	free(rig->state_path);
	free(rig->sink_path);
	free(rig);
}

bool rig_has_cap(const struct rig *rig, const char *cap)
{
	for (size_t i = 0; i < rig->ncaps; i++)
		if (!strcmp(rig->caps[i], cap))
			return true;
	return false;
}

const char *rig_cap(const struct rig *rig, size_t i)
{
	return i < rig->ncaps ? rig->caps[i] : NULL;
}

bool rig_has_role(const struct rig *rig, enum rig_role role)
{
	assert((unsigned)role < RIG_ROLE_COUNT);
	return (rig->present & RIG_ROLE_BIT(role)) != 0;
}

const char *rig_backend_name(const struct rig *rig, enum rig_role role)
{
	assert((unsigned)role < RIG_ROLE_COUNT);
	if (role == RIG_ROLE_BUTTON)
		return rig->nbuttons ? rig->buttons[0]->be->name : NULL;
	return rig->role[role] ? rig->role[role]->be->name : NULL;
}

static struct rig_part *need(struct rig *rig, enum rig_role role)
{
	struct rig_part *p = rig->role[role];

	if (!p && (rig->present & RIG_ROLE_BIT(role)))
		rig_set_error(rig, RIG_E_NOTSUP,
			      "rig '%s': this command did not open its %s (it holds only the %s lock)",
			      rig->name, rig_role_name(role),
			      role == RIG_ROLE_CONSOLE ? "control" : "console");
	else if (!p)
		rig_set_error(rig, RIG_E_NOENT, "rig '%s' has no %s (add a '%s' entry to %s)", rig->name,
			 rig_role_name(role), rig_role_name(role), rig->file);
	return p;
}

static struct rig_part *find_button(struct rig *rig, const char *name)
{
	for (size_t i = 0; i < rig->nbuttons; i++)
		if (!strcmp(rig->buttons[i]->instance, name))
			return rig->buttons[i];
	return NULL;
}

static struct rig_part *need_button(struct rig *rig, const char *name);

int rig_inject(struct rig *rig, enum rig_role role, const char *button, const char *fault)
{
	struct rig_part *p;

	if (role == RIG_ROLE_BUTTON) {
		if (!button)
			return rig_set_error(rig, RIG_E_INVAL, "which button? name it");
		if (!(p = need_button(rig, button)))
			return RIG_E_NOENT;
	} else if (!(p = need(rig, role))) {
		return RIG_E_NOENT;
	}
	if (!p->be->inject)
		return rig_part_fail(p, RIG_E_NOTSUP, "back-end '%s' cannot inject faults",
				     p->be->name);
	rig_event(rig, "%s inject %s", p->label, fault);
	return p->be->inject(p, fault);
}

/* Why a wait (rig_ctx_sleep) ended early: the cancel flag or the case deadline. */
static const char *stopped_by(int rc)
{
	return rc == RIG_E_INTR ? "interrupted" : "out of time";
}

/* ---- power ---- */

static int power_raw_set(struct rig_part *p, bool on)
{
	int rc = p->be->ops.power->set(p, p->common.inverted ? !on : on, tmo(p));

	if (rc < 0 && !p->rig->errcode)
		fail_generic(p, rc, on ? "power on" : "power off");
	return rc;
}

/* Time left of the minimum off time, in ms (0 when none). */
static int off_time_left(struct rig *rig)
{
	struct rig_part *p = rig->role[RIG_ROLE_POWER];
	int64_t at = 0, left;

	if (!p || state_load(rig, "power", -1, &at) != 0 || !at)
		return 0;
	left = at + p->common.min_off_ms - rig_wall_ms();
	return left > 0 ? (int)(left < p->common.min_off_ms ? left : p->common.min_off_ms) : 0;
}

int rig_power_set(struct rig *rig, bool on)
{
	struct rig_part *p = need(rig, RIG_ROLE_POWER);
	int rc, wait;

	if (!p)
		return RIG_E_NOENT;
	if (on && (wait = off_time_left(rig)) > 0) {
		rig_dbg(rig->ctx, "waiting %d ms of min_off_ms", wait);
		rc = rig_ctx_sleep(rig->ctx, wait);
		if (rc < 0)
			return rig_set_error(rig, rc, "%s while waiting for the minimum off time",
					     stopped_by(rc));
	}
	rc = power_raw_set(p, on);
	if (rc < 0)
		return rc;
	state_save(rig, "power", on);
	rig_event(rig, "power %s", on ? "on" : "off");
	return 0;
}

int rig_power_cycle(struct rig *rig, int off_ms)
{
	struct rig_part *p = need(rig, RIG_ROLE_POWER);
	int rc;

	if (!p)
		return RIG_E_NOENT;
	rc = rig_power_set(rig, false);
	if (rc < 0)
		return rc;
	if (off_ms >= 0 && off_ms > p->common.min_off_ms) {
		rc = rig_ctx_sleep(rig->ctx, off_ms);
		if (rc < 0)
			return rig_set_error(rig, rc, "interrupted during power cycle");
	}
	return rig_power_set(rig, true);
}

int rig_power_get(struct rig *rig)
{
	struct rig_part *p = need(rig, RIG_ROLE_POWER);
	long long v;

	if (!p)
		return RIG_E_NOENT;
	if (p->be->ops.power->get) {
		bool on;
		int rc = p->be->ops.power->get(p, &on, tmo(p));

		if (rc < 0)
			return rig->errcode ? rc : fail_generic(p, rc, "reading power state");
		return (p->common.inverted ? !on : on) ? 1 : 0;
	}
	v = state_load(rig, "power", -1, NULL);
	if (v < 0)
		return rig_part_fail(p, RIG_E_NOENT,
				     "power state unknown (the back-end cannot read it back); switch it once");
	return v ? 1 : 0;
}

int rig_power_measure(struct rig *rig, struct rig_power_reading *r)
{
	struct rig_part *p = need(rig, RIG_ROLE_POWER);
	int rc;

	if (!p)
		return RIG_E_NOENT;
	if (!p->be->ops.power->measure)
		return rig_part_fail(p, RIG_E_NOTSUP, "back-end '%s' cannot measure voltage or current",
				     p->be->name);
	rc = p->be->ops.power->measure(p, r, tmo(p));
	return rc < 0 && !rig->errcode ? fail_generic(p, rc, "measuring") : rc;
}

/* ---- SD mux ---- */

static const char *const mux_names[] = { "off", "host", "dut" };

const char *rig_mux_name(enum rig_mux m)
{
	return (unsigned)m < 3 ? mux_names[m] : "?";
}

int rig_mux_from_name(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, mux_names[i]))
			return i;
	return RIG_E_INVAL;
}

static enum rig_mux mux_swap(const struct rig_part *p, enum rig_mux m)
{
	if (!p->common.inverted || m == RIG_MUX_OFF)
		return m;
	return m == RIG_MUX_HOST ? RIG_MUX_DUT : RIG_MUX_HOST;
}

int rig_sdmux_set(struct rig *rig, enum rig_mux m)
{
	struct rig_part *p = need(rig, RIG_ROLE_SDMUX);
	int rc;

	assert((unsigned)m < 3);
	if (!p)
		return RIG_E_NOENT;
	if (m == RIG_MUX_HOST && rig->role[RIG_ROLE_POWER]) {
		int on = rig_power_get(rig);
		int wait;

		if (on != 0) {
			/* Unknown counts as powered: the card may be in use by the DUT. */
			rig_clear_error(rig);
			return rig_set_error(rig, RIG_E_PERM,
					"interlock: refusing to switch the SD card to the host while the DUT is %s; power it off first ('rigor power off' or rig.power:off())",
					on > 0 ? "powered" : "in an unknown power state");
		}
		wait = off_time_left(rig);
		if (wait > 0) {
			rc = rig_ctx_sleep(rig->ctx, wait);
			if (rc < 0)
				return rig_set_error(rig, rc, "%s while waiting for the minimum off time",
						     stopped_by(rc));
		}
	}
	rc = p->be->ops.sdmux->set(p, mux_swap(p, m), tmo(p));
	if (rc < 0)
		return rig->errcode ? rc : fail_generic(p, rc, "switching");
	state_save(rig, "mux", m);
	rig_event(rig, "sdmux %s", rig_mux_name(m));
	if (p->common.settle_ms > 0) {
		rc = rig_ctx_sleep(rig->ctx, p->common.settle_ms);
		if (rc < 0)
			return rig_set_error(rig, rc, "%s while the mux settles", stopped_by(rc));
	}
	return 0;
}

int rig_sdmux_get(struct rig *rig)
{
	struct rig_part *p = need(rig, RIG_ROLE_SDMUX);
	long long v;

	if (!p)
		return RIG_E_NOENT;
	if (p->be->ops.sdmux->get) {
		enum rig_mux m;
		int rc = p->be->ops.sdmux->get(p, &m, tmo(p));

		if (rc < 0)
			return rig->errcode ? rc : fail_generic(p, rc, "reading the mux side");
		return (int)mux_swap(p, m);
	}
	v = state_load(rig, "mux", -1, NULL);
	if (v < 0 || v > 2)
		return rig_part_fail(p, RIG_E_NOENT, "mux side unknown; switch it once");
	return (int)v;
}

/* ---- buttons ---- */

size_t rig_button_count(const struct rig *rig) { return rig->nbuttons; }

const char *rig_button_name(const struct rig *rig, size_t i)
{
	return i < rig->nbuttons ? rig->buttons[i]->instance : NULL;
}

static struct rig_part *need_button(struct rig *rig, const char *name)
{
	struct rig_part *p = find_button(rig, name);
	char known[256];
	size_t o = 0;

	if (p)
		return p;
	known[0] = 0;
	for (size_t i = 0; i < rig->nbuttons && o < sizeof(known); i++)
		o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", i ? ", " : "",
				      rig->buttons[i]->instance);
	rig_set_error(rig, RIG_E_NOENT, "rig '%s' has no button '%s' (buttons: %s)", rig->name, name,
		 o ? known : "none");
	return NULL;
}

static int button_raw(struct rig_part *p, bool pressed)
{
	int rc = p->be->ops.button->set(p, p->common.inverted ? !pressed : pressed, tmo(p));

	if (rc < 0 && !p->rig->errcode)
		fail_generic(p, rc, pressed ? "press" : "release");
	return rc;
}

int rig_button_set(struct rig *rig, const char *name, bool pressed)
{
	struct rig_part *p = need_button(rig, name);
	int rc;

	if (!p)
		return RIG_E_NOENT;
	rc = button_raw(p, pressed);
	if (rc == 0)
		rig_event(rig, "button %s %s", name, pressed ? "hold" : "release");
	return rc;
}

int rig_button_press(struct rig *rig, const char *name, int ms)
{
	struct rig_part *p = need_button(rig, name);
	int rc, rc2;

	if (!p)
		return RIG_E_NOENT;
	if (ms < 0)
		ms = p->common.press_ms;
	rc = button_raw(p, true);
	if (rc < 0)
		return rc;
	rig_event(rig, "button %s press %d ms", name, ms);
	rc = rig_ctx_sleep(rig->ctx, ms);
	/* Release even when interrupted or past the case deadline: a held strap must not
	 * outlive the press, so the release gets the part's own time. */
	if (rc < 0) {
		struct rig_ctx_saved saved = rig_ctx_cleanup_begin(rig->ctx, RIG_CLEANUP_MAX_MS);

		rc2 = button_raw(p, false);
		rig_ctx_cleanup_end(rig->ctx, saved);
	} else {
		rc2 = button_raw(p, false);
	}
	if (rc < 0)
		return rig_set_error(rig, rc, "%s while pressing button '%s'", stopped_by(rc),
				     name);
	return rc2;
}

/* ---- safe state ---- */

int rig_safe(struct rig *rig)
{
	int first = 0;

	for (size_t i = 0; i < rig->nbuttons; i++) {
		int rc = button_raw(rig->buttons[i], false);

		if (rc < 0 && !first)
			first = rc;
	}
	if (rig->uplink_cut) {
		/* a case that cut the uplink must not leave the next one without it */
		int rc = rig_network_uplink(rig, true, -1);

		if (rc < 0 && !first)
			first = rc;
	}
	if (rig->role[RIG_ROLE_POWER]) {
		int rc = power_raw_set(rig->role[RIG_ROLE_POWER], false);

		if (rc < 0 && !first)
			first = rc;
		if (rc == 0)
			state_save(rig, "power", 0);
	}
	rig_event(rig, first ? "safe state: FAILED (%s)" : "safe state: DUT power off%s",
	      first ? rig->err : "");
	return first;
}

/* ---- console ---- */

static void sink_console(struct rig *rig, const char *buf, size_t n, const char *who)
{
	if (!rig->sink) {
		/* not logged; but does the next logged byte start a line? */
		while (n > 0 && buf[n - 1] == '\r')
			n--;
		if (n > 0)
			rig->sink_cut = buf[n - 1] != '\n';
		return;
	}
	sink_sync(rig);
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\r')
			continue;
		if (!rig->sink_mid) {
			if (buf[i] == '\n' && rig->sink_cut) {
				/* all that was left of the cut line was its end */
				rig->sink_cut = false;
				continue;
			}
			sink_line(rig, rig->sink_cut ? "console (continued)" : who);
			rig->sink_cut = false;
			rig->sink_mid = true;
		}
		fputc(buf[i], rig->sink);
		rig->sink_nl = buf[i] == '\n';
		rig->sink_mid = !rig->sink_nl;
	}
	sink_flush(rig);
}

int rig_console_fill(struct rig *rig, int timeout_ms)
{
	struct rig_part *p = need(rig, RIG_ROLE_CONSOLE);
	int rc;

	if (!p)
		return RIG_E_NOENT;
	if (rig->ccap - rig->clen < 4096) {
		size_t cap = rig->ccap ? rig->ccap * 2 : 16384;
		char *b;

		if (cap > CONSOLE_BUF_MAX) {
			/* Keep the newest half: an expect() never needs what scrolled away. */
			size_t keep = rig->clen / 2;

			memmove(rig->cbuf, rig->cbuf + rig->clen - keep, keep);
			rig->clen = keep;
			cap = rig->ccap;
		}
		b = realloc(rig->cbuf, cap);
		if (!b)
			return rig_set_error(rig, RIG_E_NOMEM, "out of memory for console buffer");
		rig->cbuf = b;
		rig->ccap = cap;
	}
	if (rig_ctx_cancelled(rig->ctx))
		return RIG_E_INTR;
	rc = p->be->ops.console->read(p, rig->cbuf + rig->clen, rig->ccap - rig->clen - 1,
				      rig_ctx_clamp(rig->ctx, timeout_ms));
	if (rc == RIG_E_TIMEOUT || rc == RIG_E_INTR)
		return rc;
	if (rc < 0)
		return rig->errcode ? rc : fail_generic(p, rc, "reading");
	sink_console(rig, rig->cbuf + rig->clen, (size_t)rc, "console");
	rig->clen += (size_t)rc;
	rig->cbuf[rig->clen] = 0;
	return rc;
}

size_t rig_console_peek(struct rig *rig, const char **data)
{
	*data = rig->cbuf ? rig->cbuf : "";
	return rig->clen;
}

void rig_console_consume(struct rig *rig, size_t n)
{
	assert(n <= rig->clen);
	if (n == 0)
		return;   /* also before the first fill, when cbuf is still NULL */
	memmove(rig->cbuf, rig->cbuf + n, rig->clen - n);
	rig->clen -= n;
	if (rig->cbuf)
		rig->cbuf[rig->clen] = 0;
}

int rig_console_write(struct rig *rig, const void *buf, size_t len, int timeout_ms)
{
	struct rig_part *p = need(rig, RIG_ROLE_CONSOLE);
	int rc;

	if (!p)
		return RIG_E_NOENT;
	rc = p->be->ops.console->write(p, buf, len, rig_ctx_clamp(rig->ctx, timeout_ms));
	return rc < 0 && !rig->errcode ? fail_generic(p, rc, "writing") : rc;
}

int rig_console_fd(struct rig *rig)
{
	struct rig_part *p = rig->role[RIG_ROLE_CONSOLE];

	if (!p || !p->be->ops.console->get_fd)
		return RIG_E_NOTSUP;
	return p->be->ops.console->get_fd(p);
}

/* ---- usbboot and storage ---- */

bool rig_storage_allow_fixed(const struct rig *rig)
{
	const struct rig_part *p = rig->role[RIG_ROLE_STORAGE];

	return p && p->common.allow_fixed;
}

const struct rig_common *rig_usbboot_common(const struct rig *rig)
{
	const struct rig_part *p = rig->role[RIG_ROLE_USBBOOT];

	return p ? &p->common : NULL;
}

int rig_usbboot(struct rig *rig, const char *dir, int timeout_ms)
{
	struct rig_part *p = need(rig, RIG_ROLE_USBBOOT);
	struct stat st;
	int rc;

	if (!p)
		return RIG_E_NOENT;
	if (!dir)
		dir = p->common.msd_dir;
	if (!dir)
		return rig_part_fail(p, RIG_E_INVAL,
				     "which boot files? give a directory, or msd_dir in the usbboot entry of %s",
				     rig->file);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return rig_part_fail(p, RIG_E_NOENT, "boot directory '%s' does not exist", dir);
	rig_event(rig, "usbboot from '%s'", dir);
	rc = p->be->ops.usbboot->boot(p, dir, rig_ctx_clamp(rig->ctx, timeout_ms < 0 ? p->common.timeout_ms : timeout_ms));
	if (rc < 0)
		return rig->errcode ? rc : fail_generic(p, rc, "usbboot");
	rig_event(rig, "usbboot done");
	return 0;
}

int rig_storage_access(struct rig *rig, char *buf, size_t len, char *why, size_t whylen)
{
	if (rig->role[RIG_ROLE_SDMUX]) {
		int m = rig_sdmux_get(rig);

		if (m < 0)
			return m;
		if (m != RIG_MUX_HOST)
			return rig_set_error(rig, RIG_E_PERM,
					     "interlock: the SD card is on the %s side; reading or writing it from the host needs the DUT off and the card on the host ('rigor power off && rigor sdmux host', or rig.power:off() and rig.sdmux:set(\"host\"))",
					     m == RIG_MUX_DUT ? "DUT's" : "switched-off");
	}
	return rig_storage_resolve(rig, buf, len, why, whylen);
}

int rig_storage_resolve(struct rig *rig, char *buf, size_t len, char *why, size_t whylen)
{
	struct rig_part *p = need(rig, RIG_ROLE_STORAGE);
	int rc;

	if (!p)
		return RIG_E_NOENT;
	if (whylen)
		why[0] = 0;
	rc = p->be->ops.storage->resolve(p, buf, len, why, whylen);
	return rc < 0 && !rig->errcode ? fail_generic(p, rc, "resolving the target") : rc;
}

/* ---- network ---- */

int rig_network_address(struct rig *rig, char *host, size_t len, int *port, int timeout_ms)
{
	struct rig_part *p = need(rig, RIG_ROLE_NETWORK);
	int rc;

	if (!p)
		return RIG_E_NOENT;
	assert(host && len && port);
	host[0] = 0;
	*port = 22;
	rc = p->be->ops.network->address(p, host, len, port,
		rig_ctx_clamp(rig->ctx, timeout_ms < 0 ? p->common.timeout_ms : timeout_ms));
	return rc < 0 && !rig->errcode ? fail_generic(p, rc, "finding the DUT's address") : rc;
}

const char *rig_network_user(const struct rig *rig)
{
	const struct rig_part *p = rig->role[RIG_ROLE_NETWORK];

	if (!p)
		return NULL;
	return p->common.user ? p->common.user : "root";
}

const char *rig_network_identity(const struct rig *rig)
{
	const struct rig_part *p = rig->role[RIG_ROLE_NETWORK];

	return p ? p->common.identity : NULL;
}

int rig_network_uplink(struct rig *rig, bool up, int timeout_ms)
{
	struct rig_part *p = need(rig, RIG_ROLE_NETWORK);
	int rc;

	if (!p)
		return RIG_E_NOENT;
	if (!p->be->ops.network->uplink)
		return rig_part_fail(p, RIG_E_NOTSUP,
				     "%s the uplink: the network entry of %s gives no way (add cut = \"...\" and restore = \"...\" commands)",
				     up ? "cannot restore" : "cannot cut", rig->file);
	rig_event(rig, "uplink %s", up ? "restore" : "cut");
	rc = p->be->ops.network->uplink(p, up,
		rig_ctx_clamp(rig->ctx, timeout_ms < 0 ? p->common.timeout_ms : timeout_ms));
	if (rc < 0)
		return rig->errcode ? rc : fail_generic(p, rc, up ? "restoring the uplink" : "cutting the uplink");
	rig->uplink_cut = !up;
	return 0;
}
