/* SPDX-License-Identifier: MIT */
#define LOG_PREFIX "ctx"
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static const struct {
	int code;
	const char *name;
	const char *text;
} errs[] = {
	{ RIG_OK, "RIG_OK", "success" },
	{ RIG_E_PERM, "RIG_E_PERM", "refused by interlock" },
	{ RIG_E_NOENT, "RIG_E_NOENT", "not found" },
	{ RIG_E_INTR, "RIG_E_INTR", "interrupted" },
	{ RIG_E_IO, "RIG_E_IO", "input/output error" },
	{ RIG_E_NOMEM, "RIG_E_NOMEM", "out of memory" },
	{ RIG_E_BUSY, "RIG_E_BUSY", "rig busy" },
	{ RIG_E_NODEV, "RIG_E_NODEV", "no such device" },
	{ RIG_E_INVAL, "RIG_E_INVAL", "invalid argument" },
	{ RIG_E_PROTO, "RIG_E_PROTO", "protocol error" },
	{ RIG_E_NOTSUP, "RIG_E_NOTSUP", "not supported by this back-end" },
	{ RIG_E_TIMEOUT, "RIG_E_TIMEOUT", "timed out" },
	{ RIG_E_CORRUPT, "RIG_E_CORRUPT", "corrupt or truncated data" },
	{ RIG_E_NOSPC, "RIG_E_NOSPC", "does not fit the target" },
	{ RIG_E_ROFS, "RIG_E_ROFS", "read-only target" },
};

struct rig_ctx_saved rig_ctx_cleanup_begin(struct rig_ctx *ctx, int max_ms)
{
	struct rig_ctx_saved saved = { .cancel = ctx->cancel, .deadline = ctx->deadline };

	ctx->cancel = NULL;
	ctx->deadline = rig_now_ms() + max_ms;
	return saved;
}

void rig_ctx_cleanup_end(struct rig_ctx *ctx, struct rig_ctx_saved saved)
{
	ctx->cancel = saved.cancel;
	ctx->deadline = saved.deadline;
}

int rig_err_from_errno(int rc)
{
	switch (rc) {
	case -EINVAL:
	case -EBADMSG:
	case -ENOSPC:
	case -ENOENT:
	case -EPERM:
	case -EINTR:
	case -ETIMEDOUT:
	case -ENODEV:
	case -EBUSY:
	case -ENOMEM:
	case -ENOTSUP:
	case -EIO:
	case -EROFS:
		return rc;      /* enum rig_err has the same values */
	default:        /* other OS failures */
		return RIG_E_IO;
	}
}

const char *rig_strerror(int err)
{
	for (size_t i = 0; i < RIG_ARRAY_SIZE(errs); i++)
		if (errs[i].code == err)
			return errs[i].text;
	return err < 0 ? strerror(-err) : "success";
}

const char *rig_err_name(int err)
{
	for (size_t i = 0; i < RIG_ARRAY_SIZE(errs); i++)
		if (errs[i].code == err)
			return errs[i].name;
	return "RIG_E_OTHER";
}

int64_t rig_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rig_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum rig_log_level level_from_env(void)
{
	static const char *const names[] = { "none", "err", "warn", "info", "dbg" };
	const char *s = getenv("RIGOR_DEBUG");

	if (!s || !*s)
		return RIG_LOG_WARN;
	for (size_t i = 0; i < RIG_ARRAY_SIZE(names); i++)
		if (!strcasecmp(s, names[i]))
			return (enum rig_log_level)i;
	return atoi(s) > 0 ? RIG_LOG_DBG : RIG_LOG_WARN;
}

/* Where locks and state go when a user of the rig is not alone: one place for the host. */
#ifndef RIG_LOCK_DIR_DEFAULT
#define RIG_LOCK_DIR_DEFAULT "/run/lock/rigor"
#endif
#define RIG_LOCK_GROUP "rigor"

/* The directory a user had to himself before the host-wide default existed. */
static char *per_user_dir(void)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	char buf[4096];

	if (xdg && *xdg)
		snprintf(buf, sizeof(buf), "%s/rigor", xdg);
	else
		snprintf(buf, sizeof(buf), "/tmp/rigor-%u", (unsigned)getuid());
	return strdup(buf);
}

/*
 * RIGOR_LOCK_DIR and RIGOR_STATE_DIR each default to the other, so setting one keeps
 * locks and the state they protect (the power state the interlock reads) together.
 * A state directory given alone stays private to its user, as it always was.
 */
static int default_dirs(struct rig_ctx *ctx)
{
	const char *lock = getenv("RIGOR_LOCK_DIR");
	const char *state = getenv("RIGOR_STATE_DIR");

	lock = lock && *lock ? lock : NULL;
	state = state && *state ? state : NULL;
	ctx->lock_shared = !state || lock;
	ctx->lock_default = !state && !lock;
	if (!lock)
		lock = state ? state : RIG_LOCK_DIR_DEFAULT;
	if (!state)
		state = lock;
	ctx->lock_dir = strdup(lock);
	ctx->state_dir = strdup(state);
	return ctx->lock_dir && ctx->state_dir ? 0 : RIG_E_NOMEM;
}

struct rig_ctx *rig_ctx_new(void)
{
	struct rig_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	ctx->level = level_from_env();
	if (default_dirs(ctx) < 0) {
		free(ctx->lock_dir);
		free(ctx->state_dir);
		free(ctx);
		return NULL;
	}
	return ctx;
}

void rig_ctx_free(struct rig_ctx *ctx)
{
	if (!ctx)
		return;
	rig_usb_ctx_release(ctx);
	free(ctx->state_dir);
	free(ctx->lock_dir);
	free(ctx);
}

void rig_ctx_set_log_cb(struct rig_ctx *ctx, rig_log_cb cb, void *user)
{
	ctx->log_cb = cb;
	ctx->log_user = user;
}

void rig_ctx_set_log_level(struct rig_ctx *ctx, enum rig_log_level level)
{
	ctx->level = level;
}

void rig_ctx_set_cancel(struct rig_ctx *ctx, volatile sig_atomic_t *flag)
{
	ctx->cancel = flag;
}

void rig_ctx_set_deadline(struct rig_ctx *ctx, int64_t deadline)
{
	ctx->deadline = deadline;
}

int rig_ctx_clamp(const struct rig_ctx *ctx, int timeout_ms)
{
	int64_t left;

	if (!ctx->deadline)
		return timeout_ms;
	left = ctx->deadline - rig_now_ms();
	if (left < 0)
		left = 0;
	if (left > INT_MAX)
		left = INT_MAX;
	return timeout_ms < 0 || left < timeout_ms ? (int)left : timeout_ms;
}

bool rig_ctx_cancelled(const struct rig_ctx *ctx)
{
	return ctx->cancel && *ctx->cancel;
}

static int replace_dir(char **slot, const char *dir)
{
	char *d = strdup(dir);

	if (!d)
		return RIG_E_NOMEM;
	free(*slot);
	*slot = d;
	return 0;
}

int rig_ctx_set_state_dir(struct rig_ctx *ctx, const char *dir)
{
	bool both = !strcmp(ctx->state_dir, ctx->lock_dir) && ctx->lock_default;
	int rc = replace_dir(&ctx->state_dir, dir);

	/* as RIGOR_STATE_DIR alone: the locks follow an overridden default */
	if (rc == 0 && both) {
		rc = replace_dir(&ctx->lock_dir, dir);
		ctx->lock_shared = ctx->lock_default = ctx->lock_ready = false;
	}
	return rc;
}

const char *rig_ctx_state_dir(const struct rig_ctx *ctx)
{
	return ctx->state_dir;
}

int rig_ctx_set_lock_dir(struct rig_ctx *ctx, const char *dir)
{
	int rc = replace_dir(&ctx->lock_dir, dir);

	if (rc == 0) {
		ctx->lock_shared = true;
		ctx->lock_default = ctx->lock_ready = false;
	}
	return rc;
}

const char *rig_ctx_lock_dir(const struct rig_ctx *ctx)
{
	return ctx->lock_dir;
}

/* mkdir -p @dir's parents (0755) and @dir itself (@mode); 1 made, 0 existed, -errno. */
static int make_dir(const char *dir, mode_t mode, char *failed, size_t flen)
{
	char buf[4096];
	size_t n = strlen(dir);
	int made = 0;

	if (n + 1 >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, n + 1);
	for (char *s = buf + 1; ; s++) {
		if (*s == '/' || !*s) {
			char c = *s;

			*s = 0;
			made = mkdir(buf, c ? 0755 : mode) == 0;
			if (!made && errno != EEXIST) {
				snprintf(failed, flen, "%s", buf);
				return -errno;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	return made;
}

/*
 * Members of group 'rigor' share the directory: setgid so files made in it stay in the
 * group. Without the group (or when we may not give the directory to it) the only way
 * every user can take a lock in it is a world-writable directory; say so.
 */
static void share_dir(struct rig_ctx *ctx, const char *dir)
{
	struct group gr, *g = NULL;
	char buf[4096];

	if (getgrnam_r(RIG_LOCK_GROUP, &gr, buf, sizeof(buf), &g) == 0 && g &&
	    chown(dir, (uid_t)-1, g->gr_gid) == 0 && chmod(dir, 02775) == 0)
		return;
	if (chmod(dir, 0777) < 0)
		return;
	rig_warn(ctx, "created the lock directory '%s' writable by every user: %s", dir,
		 g ? "cannot give it to group '" RIG_LOCK_GROUP "' (not a member)"
		   : "there is no group '" RIG_LOCK_GROUP "' on this host (docs/architecture.md, Locking)");
}

static int ensure_private_dir(struct rig_ctx *ctx, const char *dir)
{
	char failed[4096] = "";
	int rc = make_dir(dir, 0700, failed, sizeof(failed));

	if (rc < 0)
		return rig_ctx_fail(ctx, rc, "cannot create state directory '%s': %s", failed,
				    strerror(-rc));
	return 0;
}

int rig_ctx_ensure_lock_dir(struct rig_ctx *ctx)
{
	char failed[4096] = "";
	int rc;

	if (ctx->lock_ready)
		return 0;
	if (!ctx->lock_shared) {
		rc = ensure_private_dir(ctx, ctx->lock_dir);
		ctx->lock_ready = rc == 0;
		return rc;
	}
	rc = make_dir(ctx->lock_dir, 0775, failed, sizeof(failed));
	if (rc > 0)
		share_dir(ctx, ctx->lock_dir);
	if (rc >= 0 && access(ctx->lock_dir, R_OK | W_OK | X_OK) < 0) {
		rc = -errno;
		snprintf(failed, sizeof(failed), "%s", ctx->lock_dir);
	}
	if (rc >= 0) {
		ctx->lock_ready = true;
		return 0;
	}
	if (ctx->lock_default) {
		/* a host without /run/lock, or a user outside the group: carry on, alone */
		char *alone = per_user_dir();
		bool state_too = !strcmp(ctx->state_dir, ctx->lock_dir);

		if (!alone || (state_too && replace_dir(&ctx->state_dir, alone) < 0)) {
			free(alone);
			return RIG_E_NOMEM;
		}
		rig_warn(ctx, "cannot use the host's lock directory '%s' (%s: %s); using '%s', "
			 "so other users and tools do not see this rig's locks (join group '"
			 RIG_LOCK_GROUP "' or set RIGOR_LOCK_DIR)",
			 ctx->lock_dir, failed, strerror(-rc), alone);
		free(ctx->lock_dir);
		ctx->lock_dir = alone;
		ctx->lock_shared = ctx->lock_default = false;
		return rig_ctx_ensure_lock_dir(ctx);
	}
	return rig_ctx_fail(ctx, RIG_E_IO,
			    "cannot use lock directory '%s' (%s: %s)%s", ctx->lock_dir, failed,
			    strerror(-rc),
			    rc == -EACCES ? "; join group '" RIG_LOCK_GROUP "' or set RIGOR_LOCK_DIR" : "");
}

int rig_ctx_ensure_state_dir(struct rig_ctx *ctx)
{
	/* the state shares the lock directory: made (or fallen back) with it */
	if (!strcmp(ctx->state_dir, ctx->lock_dir))
		return rig_ctx_ensure_lock_dir(ctx);
	return ensure_private_dir(ctx, ctx->state_dir);
}

const char *rig_ctx_errmsg(const struct rig_ctx *ctx)
{
	return ctx->err;
}

void rig_ctx_clear_error(struct rig_ctx *ctx)
{
	ctx->err[0] = 0;
	ctx->errcode = 0;
}

int rig_ctx_fail(struct rig_ctx *ctx, int code, const char *fmt, ...)
{
	va_list ap;

	if (!ctx->errcode) {
		ctx->errcode = code;
		va_start(ap, fmt);
		vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
		va_end(ap);
		rig_log(ctx, RIG_LOG_DBG, "error", "%s (%s)", ctx->err, rig_err_name(code));
	}
	return code;
}

void rig_log(struct rig_ctx *ctx, enum rig_log_level lvl, const char *module, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (lvl > ctx->level || !ctx->log_cb)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctx->log_cb(ctx->log_user, lvl, module, msg);
}

/* Slices keep a raised cancel flag from waiting out a long timeout. */
#define SLICE_MS 50

int rig_ctx_sleep(struct rig_ctx *ctx, int ms)
{
	int span = rig_ctx_clamp(ctx, ms);
	struct rig_deadline d = rig_deadline_start(span < 0 ? 0 : span);

	for (;;) {
		int left = rig_deadline_left_ms(d);
		struct timespec ts;

		if (rig_ctx_cancelled(ctx))
			return RIG_E_INTR;
		if (left <= 0)
			return ctx->deadline && rig_now_ms() >= ctx->deadline && ms > 0 ? RIG_E_TIMEOUT : 0;
		if (left > SLICE_MS)
			left = SLICE_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)left * 1000000L;
		nanosleep(&ts, NULL);
	}
}

struct rig_deadline rig_deadline_start(int timeout_ms)
{
	return (struct rig_deadline){ .end = timeout_ms < 0 ? INT64_MAX : rig_now_ms() + timeout_ms };
}

int rig_deadline_left_ms(struct rig_deadline d)
{
	int64_t left;

	if (d.end == INT64_MAX)
		return -1;
	left = d.end - rig_now_ms();
	return left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
}

bool rig_deadline_expired(struct rig_deadline d)
{
	return d.end != INT64_MAX && rig_now_ms() >= d.end;
}

int rig_ctx_poll(struct rig_ctx *ctx, int fd, short events, int timeout_ms)
{
	/* cut to the context's deadline, as rig_ctx_sleep() is: a case's bound ends the wait */
	struct rig_deadline d = rig_deadline_start(rig_ctx_clamp(ctx, timeout_ms));

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		int left = rig_deadline_left_ms(d);
		int rc;

		if (rig_ctx_cancelled(ctx))
			return RIG_E_INTR;
		rc = poll(&pfd, 1, left < 0 || left > SLICE_MS ? SLICE_MS : left);
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (rc == 0 && rig_deadline_expired(d))
			return RIG_E_TIMEOUT;
	}
}
