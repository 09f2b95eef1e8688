/* SPDX-License-Identifier: MIT */
/*
 * Per-rig locks: flock() on a file in the state directory. The kernel drops the lock
 * when the holder dies, so a crashed run never leaves a stale lock. The holder writes
 * who it is into the file so a busy rig can say who holds it.
 */
#define LOG_PREFIX "lock"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

struct rig_lock {
	int fd;
};

static int lock_path(struct rig_ctx *ctx, const char *name, char *buf, size_t len)
{
	if (!*name || strchr(name, '/'))
		return rig_ctx_fail(ctx, RIG_E_INVAL, "bad rig name '%s' for a lock", name);
	snprintf(buf, len, "%s/%s.lock", rig_ctx_state_dir(ctx), name);
	return rig_ctx_ensure_state_dir(ctx);
}

static void read_holder(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = 0;
	buf[strcspn(buf, "\n")] = 0;
	if (!buf[0])
		snprintf(buf, len, "another process");
}

int rig_lock_acquire(struct rig_ctx *ctx, const char *name, const char *who, int timeout_ms,
		     struct rig_lock **out)
{
	struct rig_deadline d = rig_deadline_start(timeout_ms);
	char path[4200], info[1024], ts[64];
	struct rig_lock *lk;
	time_t now;
	int fd, rc;

	*out = NULL;
	rc = lock_path(ctx, name, path, sizeof(path));
	if (rc < 0)
		return rc;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return rig_ctx_fail(ctx, RIG_E_IO, "cannot open lock file '%s': %s", path,
				    strerror(errno));
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK || rig_deadline_expired(d)) {
			read_holder(fd, info, sizeof(info));
			close(fd);
			return rig_ctx_fail(ctx, RIG_E_BUSY,
					    "rig '%s' is busy: held by %s (use --wait SECONDS to wait for it)",
					    name, info);
		}
		rc = rig_ctx_sleep(ctx, 100);
		if (rc < 0) {
			close(fd);
			return rig_ctx_fail(ctx, rc, "interrupted while waiting for rig '%s'", name);
		}
	}
	now = time(NULL);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S%z", localtime(&now));
	snprintf(info, sizeof(info), "pid %d (%s) since %s\n", (int)getpid(), who ? who : "?", ts);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, info, strlen(info), 0) < 0)
		rig_warn(ctx, "cannot record the lock holder in '%s'", path);
	lk = calloc(1, sizeof(*lk));
	if (!lk) {
		close(fd);
		return RIG_E_NOMEM;
	}
	lk->fd = fd;
	*out = lk;
	return 0;
}

void rig_lock_release(struct rig_lock *lk)
{
	if (!lk)
		return;
	/* Empty the holder line first, so a reader never sees a dead holder as current. */
	if (ftruncate(lk->fd, 0) < 0)
		(void)0;
	close(lk->fd);
	free(lk);
}

int rig_lock_holder(struct rig_ctx *ctx, const char *name, char *buf, size_t len)
{
	char path[4200];
	int fd, held;

	if (lock_path(ctx, name, path, sizeof(path)) < 0)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	if (held)
		read_holder(fd, buf, len);
	close(fd);
	return held;
}
