/* SPDX-License-Identifier: MIT */
/* Files inside partitions: mtools for FAT, debugfs for ext2/3/4, run with argv (no shell). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flash_internal.h"

extern char **environ;

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct buf *b, const char *d, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

/*
 * Runs argv[0] (searched in PATH) with stdin from in_file or /dev/null, collecting stdout in
 * *out (if out is non-NULL) and stderr for the message. Non-zero exit: -EIO, or -ENOENT when
 * the tool says a file was not found.
 */
int fl_run(char *const argv[], const char *in_file, char **out, size_t *outlen, int timeout_ms,
	   struct fl_err *e)
{
	posix_spawn_file_actions_t fa;
	struct buf ob = { 0 }, eb = { 0 };
	int op[2] = { -1, -1 }, ep[2] = { -1, -1 };
	char **env;
	size_t n = 0, i;
	pid_t pid;
	int rc, status = 0;
	double deadline = timeout_ms >= 0 ? fl_now() + timeout_ms / 1000.0 : 0;
	bool timed_out = false;

	while (environ[n])
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (!env)
		return fl_err_set(e, -ENOMEM, "out of memory");
	for (i = 0; i < n; i++)
		env[i] = environ[i];
	env[n] = (char *)"MTOOLS_SKIP_CHECK=1"; /* images have odd geometries; that is fine */
	if (pipe2(op, O_CLOEXEC) || pipe2(ep, O_CLOEXEC)) {
		rc = fl_err_set(e, -errno, "pipe: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in_file ? in_file : "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, op[1], 1);
	posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	close(op[1]);
	close(ep[1]);
	op[1] = ep[1] = -1;
	if (rc) {
		rc = fl_err_set(e, rc == ENOENT ? -ENOENT : -rc, "cannot run '%s': %s%s", argv[0],
				strerror(rc), rc == ENOENT ? " (install mtools / e2fsprogs)" : "");
		goto out;
	}
	for (;;) {
		struct pollfd pf[2] = { { op[0], POLLIN, 0 }, { ep[0], POLLIN, 0 } };
		int wait = -1, k;
		char chunk[65536];

		if (op[0] < 0 && ep[0] < 0)
			break;
		if (deadline > 0) {
			wait = (int)((deadline - fl_now()) * 1000);
			if (wait <= 0) {
				timed_out = true;
				break;
			}
		}
		if (poll(pf, 2, wait) < 0 && errno != EINTR)
			break;
		for (k = 0; k < 2; k++) {
			int *fd = k ? &ep[0] : &op[0];
			ssize_t r;

			if (*fd < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(*fd, chunk, sizeof(chunk));
			if (r > 0) {
				if (buf_add(k ? &eb : &ob, chunk, (size_t)r)) {
					timed_out = false;
					kill(pid, SIGKILL);
				}
			} else if (r == 0 || errno != EINTR) {
				close(*fd);
				*fd = -1;
			}
		}
	}
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (timed_out) {
		rc = fl_err_set(e, -ETIMEDOUT, "'%s' did not finish within %d ms", argv[0],
				timeout_ms);
		goto out;
	}
	/* debugfs exits 0 even when a request fails; its message is on stderr. */
	if (!WIFEXITED(status) || WEXITSTATUS(status) ||
	    (eb.p && (strstr(eb.p, "File not found") || strstr(eb.p, "not found by ext2_lookup")))) {
		char *msg = eb.p ? eb.p : (char *)"";
		size_t l;

		/* Skip debugfs' version banner; keep one line. */
		if (!strncmp(msg, "debugfs ", 8) && strchr(msg, '\n'))
			msg = strchr(msg, '\n') + 1;
		l = strcspn(msg, "\n");
		rc = fl_err_set(e, strstr(msg, "not found") || strstr(msg, "No such file") ?
				-ENOENT : -EIO, "%s failed: %.*s", argv[0], (int)l, msg);
		goto out;
	}
	if (out) {
		if (!ob.p && buf_add(&ob, "", 0)) {
			rc = fl_err_set(e, -ENOMEM, "out of memory");
			goto out;
		}
		*out = ob.p;
		*outlen = ob.len;
		ob.p = NULL;
	}
	rc = 0;
out:
	for (i = 0; i < 2; i++) {
		if (op[i] >= 0)
			close(op[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	free(ob.p);
	free(eb.p);
	free(env);
	return rc;
}

static int locate(const char *image, const char *part, struct rig_part_info *info,
		  struct rig_part_table **tp, struct fl_err *e)
{
	char msg[256];
	int rc = rig_part_table_read(image, tp, msg, sizeof(msg));

	if (rc)
		return fl_err_set(e, rc, "%s", msg);
	rc = rig_part_table_find(*tp, part, info, msg, sizeof(msg));
	if (rc) {
		rig_part_table_free(*tp);
		*tp = NULL;
		return fl_err_set(e, rc, "'%s': %s", image, msg);
	}
	return 0;
}

static int fat_read(const char *spec, const char *path, char **data, size_t *len, int tmo,
		    struct fl_err *e)
{
	char dst[1024];
	char *argv[] = { (char *)"mtype", (char *)"-i", (char *)spec, dst, NULL };

	snprintf(dst, sizeof(dst), "::%s%s", path[0] == '/' ? "" : "/", path);
	return fl_run(argv, NULL, data, len, tmo, e);
}

int rig_part_file_read(const char *image, const char *part, const char *path, char **data,
		       size_t *len, int timeout_ms, char *err, size_t errlen)
{
	struct rig_part_table *t = NULL;
	struct rig_part_info info;
	struct fl_err e;
	char spec[4200], req[1100];
	int rc;

	fl_err_init(&e, err, errlen);
	*data = NULL;
	*len = 0;
	rc = locate(image, part, &info, &t, &e);
	if (rc)
		return rc;
	if (info.fs == RIG_PART_FS_FAT) {
		snprintf(spec, sizeof(spec), "%s@@%" PRIu64, image, info.start);
		rc = fat_read(spec, path, data, len, timeout_ms, &e);
	} else if (info.fs == RIG_PART_FS_EXT) {
		char *argv[] = { (char *)"debugfs", (char *)"-R", req, spec, NULL };

		if (strchr(path, '"')) {
			rc = fl_err_set(&e, -EINVAL, "path '%s' contains a quote", path);
		} else {
			snprintf(req, sizeof(req), "cat \"%s\"", path);
			snprintf(spec, sizeof(spec), "%s?offset=%" PRIu64, image, info.start);
			rc = fl_run(argv, NULL, data, len, timeout_ms, &e);
		}
	} else {
		rc = fl_err_set(&e, -ENOTSUP, "partition '%s' of '%s' holds no FAT or ext file "
				"system", part, image);
	}
	rig_part_table_free(t);
	return rc;
}

int rig_part_file_list(const char *image, const char *part, char **list, size_t *len,
		       int timeout_ms, char *err, size_t errlen)
{
	struct rig_part_table *t = NULL;
	struct rig_part_info info;
	struct fl_err e;
	char spec[4200], m[512];
	char *argv[] = { (char *)"mdir", (char *)"-/", (char *)"-b", (char *)"-i", spec,
			 (char *)"::/", NULL };
	char *out = NULL, *r, *w;
	size_t n = 0;
	int rc;

	fl_err_init(&e, m, sizeof(m));
	*list = NULL;
	*len = 0;
	rc = locate(image, part, &info, &t, &e);
	if (!rc && info.fs != RIG_PART_FS_FAT)
		rc = fl_err_set(&e, -ENOTSUP, "partition '%s' of '%s' is not FAT; only FAT can be "
				"listed", part, image);
	if (!rc) {
		snprintf(spec, sizeof(spec), "%s@@%" PRIu64, image, info.start);
		rc = fl_run(argv, NULL, &out, &n, timeout_ms, &e);
		/* mdir says "File not found" for a file system without files: an empty list */
		if (rc == -ENOENT && strstr(m, "File not found")) {
			free(out);
			out = NULL;
			rc = 0;
		}
	}
	rig_part_table_free(t);
	if (rc) {
		free(out);
		if (err && errlen)
			snprintf(err, errlen, "%s", m);
		return rc;
	}
	if (!out && !(out = strdup("")))
		return fl_err_set(&e, -ENOMEM, "out of memory");
	/* "::/EFI/BOOT/BOOTX64.EFI" -> "/EFI/BOOT/BOOTX64.EFI" */
	for (r = w = out; *r;) {
		if ((r == out || r[-1] == '\n') && r[0] == ':' && r[1] == ':')
			r += 2;
		else
			*w++ = *r++;
	}
	*w = 0;
	*list = out;
	*len = (size_t)(w - out);
	return 0;
}

int rig_part_file_write(const char *image, const char *part, const char *path,
			const void *data, size_t len, bool append, int timeout_ms, char *err,
			size_t errlen)
{
	struct rig_part_table *t = NULL;
	struct rig_part_info info;
	struct fl_err e;
	char spec[4200], dst[1024], tmp[4200];
	char *old = NULL;
	size_t oldlen = 0, i;
	const char *dir = getenv("TMPDIR");
	int rc, fd = -1;
	double deadline = timeout_ms >= 0 ? fl_now() + timeout_ms / 1000.0 : 0;

	fl_err_init(&e, err, errlen);
	rc = locate(image, part, &info, &t, &e);
	if (rc)
		return rc;
	if (info.fs != RIG_PART_FS_FAT) {
		rc = fl_err_set(&e, -ENOTSUP, "partition '%s' of '%s' is not FAT; only FAT can be "
				"written", part, image);
		goto out;
	}
	snprintf(spec, sizeof(spec), "%s@@%" PRIu64, image, info.start);
	snprintf(dst, sizeof(dst), "::%s%s", path[0] == '/' ? "" : "/", path);
	if (append) {
		struct fl_err e2;
		char m2[256];

		fl_err_init(&e2, m2, sizeof(m2));
		rc = fat_read(spec, path, &old, &oldlen, timeout_ms, &e2);
		if (rc && rc != -ENOENT) {
			rc = fl_err_set(&e, rc, "%s", m2);
			goto out;
		}
	}
	snprintf(tmp, sizeof(tmp), "%s/rigflash-XXXXXX", dir && *dir ? dir : "/tmp");
	fd = mkstemp(tmp);
	if (fd < 0) {
		rc = fl_err_set(&e, -errno, "cannot create a temporary file: %s", strerror(errno));
		goto out;
	}
	if ((oldlen && write(fd, old, oldlen) != (ssize_t)oldlen) ||
	    (len && write(fd, data, len) != (ssize_t)len)) {
		rc = fl_err_set(&e, -EIO, "cannot write temporary file '%s'", tmp);
		goto out;
	}
	/* Parent directories; mmd fails harmlessly when one exists. */
	for (i = 3; dst[i]; i++) {
		if (dst[i] == '/') {
			struct fl_err ignore;
			char d[1024];
			char *argv[] = { (char *)"mmd", (char *)"-i", spec, d, NULL };

			snprintf(d, sizeof(d), "%.*s", (int)i, dst);
			fl_err_init(&ignore, NULL, 0);
			fl_run(argv, NULL, NULL, NULL, timeout_ms, &ignore);
		}
	}
	{
		char *argv[] = { (char *)"mcopy", (char *)"-i", spec, (char *)"-D", (char *)"o",
				 tmp, dst, NULL };
		int left = deadline > 0 ? (int)((deadline - fl_now()) * 1000) : -1;

		if (deadline > 0 && left <= 0)
			rc = fl_err_set(&e, -ETIMEDOUT, "timed out writing '%s'", path);
		else
			rc = fl_run(argv, NULL, NULL, NULL, left, &e);
	}
out:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	free(old);
	rig_part_table_free(t);
	return rc;
}
