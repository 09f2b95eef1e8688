/* SPDX-License-Identifier: MIT */
/*
 * Rig locks and reservations (rig.h, Locking). Locks are flock()s, so the kernel drops
 * them with their holder and none goes stale. A reservation has to outlive the command
 * that made it, so it is a file instead, and it is only as alive as its owner process:
 * every reader checks the owner's pid and start time and ignores (or, under the locks,
 * removes) the reservation of an owner that has gone.
 */
#define LOG_PREFIX "lock"
#include <assert.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

enum { L_CONTROL, L_CONSOLE, L_COUNT };

static const char *const lock_suffix[L_COUNT] = { ".lock", ".console.lock" };
static const char *const lock_what[L_COUNT] = { "control", "console" };

struct rig_lock {
	int fd[L_COUNT];   /* -1: not taken */
};

/* A holder record with what liveness needs besides the public part. */
struct rec {
	struct rig_lock_holder h;
	unsigned long long start;   /* /proc/PID/stat starttime; 0 unknown */
};

static int file_path(struct rig_ctx *ctx, const char *name, const char *suffix, char *buf,
		     size_t len)
{
	int rc;

	if (!*name || strchr(name, '/'))
		return rig_ctx_fail(ctx, RIG_E_INVAL, "bad rig name '%s' for a lock", name);
	rc = rig_ctx_ensure_lock_dir(ctx);
	if (rc < 0)
		return rc;
	snprintf(buf, len, "%s/%s%s", rig_ctx_lock_dir(ctx), name, suffix);
	return 0;
}

/* Field 22 of /proc/PID/stat: 0 when the process does not exist, 1 when unknown. */
static unsigned long long proc_start(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		/* no /proc (or hidden): only kill() can tell */
		if (access("/proc/self/stat", R_OK) == 0)
			return 0;
		return kill(pid, 0) == 0 || errno == EPERM ? 1 : 0;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* the command name may hold spaces and ')': fields start after the last ')' */
	p = strrchr(buf, ')');
	/* a zombie has ended, whether or not its parent has reaped it yet */
	if (p && p[1] == ' ' && p[2] == 'Z')
		return 0;
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	if (p)
		start = strtoull(p + 1, NULL, 10);
	return start ? start : 1;
}

static bool rec_alive(const struct rec *r)
{
	unsigned long long now;

	if (r->h.pid <= 0)
		return false;
	now = proc_start(r->h.pid);
	return now != 0 && (now == 1 || r->start <= 1 || now == r->start);
}

/* A command line on one line of the record: tabs and controls become spaces. */
static void clean_copy(char *dst, size_t len, const char *src)
{
	size_t i;

	for (i = 0; src && src[i] && i + 1 < len; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? ' ' : src[i];
	dst[i] = 0;
}

static void rec_fill(struct rec *r, const char *what, int pid, const char *cmd, const char *token)
{
	struct passwd pw, *found = NULL;
	char buf[4096];

	memset(r, 0, sizeof(*r));
	snprintf(r->h.what, sizeof(r->h.what), "%s", what);
	r->h.pid = pid;
	r->start = proc_start(pid);
	r->h.uid = (unsigned int)getuid();
	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &found) == 0 && found)
		clean_copy(r->h.user, sizeof(r->h.user), found->pw_name);
	else
		snprintf(r->h.user, sizeof(r->h.user), "%u", r->h.uid);
	clean_copy(r->h.command, sizeof(r->h.command), cmd ? cmd : "?");
	r->h.since_ms = rig_wall_ms();
	clean_copy(r->h.token, sizeof(r->h.token), token ? token : "");
}

/* One line: "rigor-holder/1 PID START UID USER SINCE_MS TOKEN|- COMMAND", tab-separated. */
static int rec_format(const struct rec *r, char *buf, size_t len)
{
	return snprintf(buf, len, "rigor-holder/1\t%d\t%llu\t%u\t%s\t%lld\t%s\t%s\n", r->h.pid,
			r->start, r->h.uid, r->h.user, (long long)r->h.since_ms,
			r->h.token[0] ? r->h.token : "-", r->h.command);
}

static bool rec_parse(struct rec *r, const char *what, char *line)
{
	char *f[8];
	int n = 0;

	memset(r, 0, sizeof(*r));
	snprintf(r->h.what, sizeof(r->h.what), "%s", what);
	line[strcspn(line, "\n")] = 0;
	for (char *s = line; n < 8; n++) {
		f[n] = s;
		if (n == 7)
			break;
		s = strchr(s, '\t');
		if (!s)
			return false;
		*s++ = 0;
	}
	if (strcmp(f[0], "rigor-holder/1"))
		return false;
	r->h.pid = atoi(f[1]);
	r->start = strtoull(f[2], NULL, 10);
	r->h.uid = (unsigned int)strtoul(f[3], NULL, 10);
	snprintf(r->h.user, sizeof(r->h.user), "%s", f[4]);
	r->h.since_ms = strtoll(f[5], NULL, 10);
	snprintf(r->h.token, sizeof(r->h.token), "%s", strcmp(f[6], "-") ? f[6] : "");
	snprintf(r->h.command, sizeof(r->h.command), "%s", f[7]);
	return r->h.pid > 0;
}

/* The record in an open lock file; an empty or foreign one reads as pid 0. */
static void rec_read_fd(int fd, const char *what, struct rec *r)
{
	char buf[1024];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = 0;
	if (!rec_parse(r, what, buf))
		snprintf(r->h.command, sizeof(r->h.command), "another process");
}

/* The reservation of @name: 1 live (in @r), 0 none; a dead one's path is left in @dead. */
static int reservation_read(struct rig_ctx *ctx, const char *name, struct rec *r, bool *dead)
{
	char path[4200], buf[1024];
	ssize_t n;
	int fd, rc = file_path(ctx, name, ".reservation", path, sizeof(path));

	*dead = false;
	if (rc < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	if (rec_parse(r, "reservation", buf) && rec_alive(r))
		return 1;
	*dead = true;
	return 0;
}

static void fmt_since(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S%z", &tm);
}

static void describe(const struct rec *r, char *buf, size_t len)
{
	char ts[64];

	if (!r->h.pid) {
		snprintf(buf, len, "another process");
		return;
	}
	fmt_since(r->h.since_ms, ts, sizeof(ts));
	snprintf(buf, len, "pid %d (%s), user %s, since %s", r->h.pid, r->h.command, r->h.user, ts);
}

static void drop(struct rig_lock *lk, bool clear)
{
	for (int i = 0; i < L_COUNT; i++) {
		if (lk->fd[i] < 0)
			continue;
		/* empty the record first, so a reader never sees a gone holder as current */
		if (clear && ftruncate(lk->fd[i], 0) < 0)
			(void)0;
		close(lk->fd[i]);
		lk->fd[i] = -1;
	}
}

static int open_lock(struct rig_ctx *ctx, const char *name, int i)
{
	char path[4200];
	int fd, rc = file_path(ctx, name, lock_suffix[i], path, sizeof(path));

	if (rc < 0)
		return rc;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0664);
	if (fd >= 0) {
		rig_file_share(fd, path);
		return fd;
	}
	/* another user's file we may not write: the lock still works, unnamed */
	if (errno == EACCES)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rig_ctx_fail(ctx, RIG_E_IO, "cannot open lock file '%s': %s", path,
				    strerror(errno));
	return fd;
}

/*
 * One attempt at every lock of @want (control first), then the reservation. On success
 * the locks stay taken; otherwise none is, and @why says what stood in the way.
 */
static int try_take(struct rig_ctx *ctx, const char *name, struct rig_lock *lk, unsigned want,
		    const char *token, bool must_match, char *why, size_t whylen)
{
	struct rec r;
	bool dead;
	char desc[700];
	int rc;

	for (int i = 0; i < L_COUNT; i++) {
		if (!(want & (1u << i)))
			continue;
		if (flock(lk->fd[i], LOCK_EX | LOCK_NB) == 0)
			continue;
		if (errno != EWOULDBLOCK) {
			drop(lk, false);
			return rig_ctx_fail(ctx, RIG_E_IO, "cannot lock rig '%s': %s", name,
					    strerror(errno));
		}
		rec_read_fd(lk->fd[i], lock_what[i], &r);
		describe(&r, desc, sizeof(desc));
		snprintf(why, whylen, "rig '%s' is busy: %s held by %s", name, lock_what[i], desc);
		for (int j = 0; j < i; j++)
			if (want & (1u << j))
				flock(lk->fd[j], LOCK_UN);
		return RIG_E_BUSY;
	}
	rc = reservation_read(ctx, name, &r, &dead);
	if (rc < 0)
		return rc;
	if (rc == 0 && dead) {
		char path[4200];

		/* its owner is gone: no stale reservation survives a look under the locks */
		file_path(ctx, name, ".reservation", path, sizeof(path));
		if (unlink(path) == 0)
			rig_info(ctx, "rig '%s': removed the reservation of a process that exited", name);
	}
	if (rc == 1 && !(token && *token && !strcmp(token, r.h.token))) {
		describe(&r, desc, sizeof(desc));
		snprintf(why, whylen,
			 "rig '%s' is reserved by %s, for %s (run with its RIGOR_TOKEN, or wait for 'rigor release')",
			 name, desc, token && *token ? "another token" : "a token");
		rc = RIG_E_BUSY;
	} else if (rc == 0 && must_match && token && *token) {
		snprintf(why, whylen,
			 "rig '%s' has no reservation for token '%s' (it was released, or the process that owned it exited)",
			 name, token);
		rc = RIG_E_NOENT;   /* no wait brings it back */
	}
	if (rc < 0) {
		for (int i = 0; i < L_COUNT; i++)
			if (want & (1u << i))
				flock(lk->fd[i], LOCK_UN);
		return rc;
	}
	return 0;
}

/* Take (waiting up to @timeout_ms) the locks of @want; on success @lk holds them. */
static int take(struct rig_ctx *ctx, const char *name, unsigned want, const char *token,
		bool must_match, int timeout_ms, struct rig_lock *lk)
{
	struct rig_deadline d = rig_deadline_start(timeout_ms);
	char why[1200] = "";
	int rc;

	for (int i = 0; i < L_COUNT; i++)
		lk->fd[i] = -1;
	for (int i = 0; i < L_COUNT; i++) {
		if (!(want & (1u << i)))
			continue;
		lk->fd[i] = open_lock(ctx, name, i);
		if (lk->fd[i] < 0) {
			rc = lk->fd[i];
			lk->fd[i] = -1;
			drop(lk, false);
			return rc;
		}
	}
	for (;;) {
		rc = try_take(ctx, name, lk, want, token, must_match, why, sizeof(why));
		if (rc == RIG_E_NOENT) {
			drop(lk, false);
			return rig_ctx_fail(ctx, RIG_E_BUSY, "%s", why);
		}
		if (rc != RIG_E_BUSY)
			break;
		if (rig_deadline_expired(d)) {
			drop(lk, false);
			return rig_ctx_fail(ctx, RIG_E_BUSY, "%s (use --wait SECONDS to wait for it)",
					    why);
		}
		rc = rig_ctx_sleep(ctx, 100);
		if (rc < 0) {
			drop(lk, false);
			return rig_ctx_fail(ctx, rc, "interrupted while waiting for rig '%s'", name);
		}
	}
	if (rc < 0)
		drop(lk, false);
	return rc;
}

int rig_lock_acquire(struct rig_ctx *ctx, const char *name, unsigned int scope, const char *who,
		     const char *token, int timeout_ms, struct rig_lock **out)
{
	struct rig_lock *lk;
	char line[1024];
	struct rec r;
	int rc;

	assert(scope >= RIG_LOCK_CONTROL && scope <= RIG_LOCK_ALL);
	*out = NULL;
	lk = calloc(1, sizeof(*lk));
	if (!lk)
		return RIG_E_NOMEM;
	rc = take(ctx, name, scope, token, true, timeout_ms, lk);
	if (rc < 0) {
		free(lk);
		return rc;
	}
	for (int i = 0; i < L_COUNT; i++) {
		if (lk->fd[i] < 0)
			continue;
		rec_fill(&r, lock_what[i], (int)getpid(), who, NULL);
		rec_format(&r, line, sizeof(line));
		if (ftruncate(lk->fd[i], 0) < 0 || pwrite(lk->fd[i], line, strlen(line), 0) < 0)
			rig_warn(ctx, "cannot record the %s lock holder of rig '%s'", lock_what[i],
				 name);
	}
	*out = lk;
	return 0;
}

void rig_lock_release(struct rig_lock *lk)
{
	if (!lk)
		return;
	drop(lk, true);
	free(lk);
}

int rig_lock_holders(struct rig_ctx *ctx, const char *name, struct rig_lock_holder *h,
		     size_t max)
{
	struct rec r;
	bool dead;
	int n = 0, rc;

	for (int i = 0; i < L_COUNT; i++) {
		char path[4200];
		int fd;

		rc = file_path(ctx, name, lock_suffix[i], path, sizeof(path));
		if (rc < 0)
			return rc;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* a shared lock is refused only while someone holds it */
		if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
			rec_read_fd(fd, lock_what[i], &r);
			if ((size_t)n < max)
				h[n] = r.h;
			n++;
		}
		close(fd);
	}
	rc = reservation_read(ctx, name, &r, &dead);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		if ((size_t)n < max)
			h[n] = r.h;
		n++;
	}
	return n;
}

/* 32 hex digits from the kernel's random source. */
static int new_token(char *buf, size_t len)
{
	unsigned char raw[16];

	if (len < 33 || getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return RIG_E_IO;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

static int reservation_write(struct rig_ctx *ctx, const char *name, const struct rec *r)
{
	char path[4200], tmp[4300], line[1024];
	int fd, rc = file_path(ctx, name, ".reservation", path, sizeof(path));
	size_t n;

	if (rc < 0)
		return rc;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0664);
	if (fd < 0)
		return rig_ctx_fail(ctx, RIG_E_IO, "cannot write '%s': %s", tmp, strerror(errno));
	rig_file_share(fd, tmp);
	n = (size_t)rec_format(r, line, sizeof(line));
	/* readers take no lock: they see the old file or the whole new one */
	if (write(fd, line, n) != (ssize_t)n || close(fd) < 0 || rename(tmp, path) < 0) {
		int e = errno;

		unlink(tmp);
		return rig_ctx_fail(ctx, RIG_E_IO, "cannot write '%s': %s", path, strerror(e));
	}
	return 0;
}

int rig_reservation_acquire(struct rig_ctx *ctx, const char *name, int owner_pid,
			    const char *who, int timeout_ms, char *token, size_t len)
{
	struct rig_lock lk;
	struct rec r;
	int rc;

	if (owner_pid <= 0 || proc_start(owner_pid) == 0)
		return rig_ctx_fail(ctx, RIG_E_NOENT, "no running process %d to own the reservation",
				    owner_pid);
	if (!token[0] && (rc = new_token(token, len)) < 0)
		return rig_ctx_fail(ctx, rc, "cannot make a token: %s", strerror(errno));
	/* both locks: nobody may be using the rig while it is given to the token (the
	 * token's own reservation is no obstacle: this renews it) */
	rc = take(ctx, name, RIG_LOCK_ALL, token, false, timeout_ms, &lk);
	if (rc < 0)
		return rc;
	rec_fill(&r, "reservation", owner_pid, who, token);
	rc = reservation_write(ctx, name, &r);
	drop(&lk, false);
	return rc;
}

int rig_reservation_release(struct rig_ctx *ctx, const char *name, const char *token, bool force)
{
	char path[4200], desc[700];
	struct rec r;
	bool dead;
	int rc = reservation_read(ctx, name, &r, &dead);

	if (rc < 0)
		return rc;
	if (rc == 0)
		return rig_ctx_fail(ctx, RIG_E_NOENT, "rig '%s' is not reserved", name);
	if (!force && (!token || strcmp(token, r.h.token))) {
		describe(&r, desc, sizeof(desc));
		return rig_ctx_fail(ctx, RIG_E_BUSY,
				    "rig '%s' is reserved for %s by %s (give its token, or --force)",
				    name, token && *token ? "another token" : "a token", desc);
	}
	file_path(ctx, name, ".reservation", path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		return rig_ctx_fail(ctx, RIG_E_IO, "cannot remove '%s': %s", path, strerror(errno));
	return 0;
}
