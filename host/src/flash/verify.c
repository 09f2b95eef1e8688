/* SPDX-License-Identifier: MIT */
/*
 * The verify stage: a digest of every 4 KiB (or bmap block) written, and a thread that reads
 * each written range back shortly after it was written, bypassing the page cache, and
 * compares it with those digests. The writer hands ranges over with fl_verify_push() and
 * counts blocks it proved equal by an O_DIRECT compare with fl_verify_credit().
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "flash_internal.h"

#define HPAGE_SHIFT 18
#define HPAGE (1u << HPAGE_SHIFT)
#define HPAGES (1u << 14) /* 2^32 digests: 16 TiB at 4 KiB */

struct vitem {
	uint64_t a, b;
};

struct fl_verify {
	const struct fl_target *t;
	const struct rig_flash_opts *o;
	uint64_t gran;             /* digest granularity */
	uint64_t **hpage;          /* digests, HPAGE per page; pages never move once allocated */
	unsigned char *buf;

	pthread_t th;
	bool started, done, stop, exited;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct vitem *q;           /* ranges written and not yet read back */
	size_t len, cap, head;
	int rc;                    /* the thread's failure, message in err */
	uint64_t bytes, fail;
	struct fl_err err;
	char errbuf[512];
};

int fl_verify_new(struct fl_verify **out, const struct fl_target *t,
		  const struct rig_flash_opts *o, uint64_t gran, struct fl_err *e)
{
	struct fl_verify *v = calloc(1, sizeof(*v));

	*out = v;
	if (!v)
		return fl_err_set(e, -ENOMEM, "out of memory");
	v->t = t;
	v->o = o;
	v->gran = gran;
	pthread_mutex_init(&v->mu, NULL);
	pthread_cond_init(&v->cv, NULL);
	fl_err_init(&v->err, v->errbuf, sizeof(v->errbuf));
	if (posix_memalign((void **)&v->buf, 4096, FL_CHUNK + 65536) ||
	    !(v->hpage = calloc(HPAGES, sizeof(*v->hpage))))
		return fl_err_set(e, -ENOMEM, "out of memory");
	return 0;
}

int fl_verify_record(struct fl_verify *v, const unsigned char *p, uint64_t a, uint64_t b,
		     struct fl_err *e)
{
	uint64_t g = v->gran, x;

	for (x = a; x < b; x += g) {
		uint64_t idx = x / g, n = b - x < g ? b - x : g;
		uint64_t page = idx >> HPAGE_SHIFT;

		if (page >= HPAGES)
			return fl_err_set(e, -EFBIG, "image too large to verify");
		if (!v->hpage[page]) {
			v->hpage[page] = malloc(HPAGE * sizeof(uint64_t));
			if (!v->hpage[page])
				return fl_err_set(e, -ENOMEM, "out of memory");
		}
		v->hpage[page][idx & (HPAGE - 1)] = fl_hash64(p + (x - a), (size_t)n);
	}
	return 0;
}

/* Records the thread's failure at @off; its message is kept for the writer to report. */
static int vfail(struct fl_verify *v, int code, uint64_t off, const char *fmt, uint64_t a1,
		 uint64_t a2)
{
	char m[256];

	snprintf(m, sizeof(m), fmt, a1, a2);
	pthread_mutex_lock(&v->mu);
	v->fail = off;
	pthread_mutex_unlock(&v->mu);
	return fl_err_set(&v->err, code, "%s", m);
}

/* Reads [off, off+len) of the target into v->buf bypassing the page cache if possible. */
static long vread(struct fl_verify *v, uint64_t off, size_t len)
{
	const struct fl_target *t = v->t;
	int fd = t->rfd;
	size_t want = len, done = 0;

	if (t->rdirect) {
		if (off % t->rlbs)
			fd = t->fd_buf;
		else
			want = (len + t->rlbs - 1) / t->rlbs * t->rlbs;
	}
	while (done < want) {
		ssize_t n = pread(fd, v->buf + done, want - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && fd != t->fd_buf) {
			fd = t->fd_buf;
			want = len;
			continue;
		}
		if (n < 0) {
			int err = errno;

			return vfail(v, err == ENODEV || err == ENXIO ? -ENODEV : -err, off + done,
				     "read-back failed at offset %" PRIu64 "%.0" PRIu64, off + done,
				     0);
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (long)(done < len ? done : len);
}

static int corrupt_for_test(struct fl_verify *v)
{
	unsigned char c;
	off_t at = (off_t)v->o->fault.corrupt_offset;

	if (pread(v->t->fd_buf, &c, 1, at) != 1)
		return vfail(v, -EIO, (uint64_t)at, "test corruption read at %" PRIu64 "%.0" PRIu64,
			     (uint64_t)at, 0);
	c ^= 0xff;
	if (pwrite(v->t->fd_buf, &c, 1, at) != 1 || fdatasync(v->t->fd_buf) < 0)
		return vfail(v, -EIO, (uint64_t)at, "test corruption write at %" PRIu64 "%.0"
			     PRIu64, (uint64_t)at, 0);
	return 0;
}

static bool vstopped(struct fl_verify *v)
{
	bool stop;

	pthread_mutex_lock(&v->mu);
	stop = v->stop;
	pthread_mutex_unlock(&v->mu);
	return stop;
}

static int verify_item(struct fl_verify *v, uint64_t a, uint64_t b)
{
	uint64_t g = v->gran;
	int64_t co = v->o->fault.corrupt_offset;
	int rc;

	if (co >= 0 && (uint64_t)co >= a && (uint64_t)co < b) {
		rc = corrupt_for_test(v);
		if (rc)
			return rc;
	}
	/*
	 * Push this range to the device and drop it from the page cache, so the read below is
	 * answered by the device. For O_DIRECT writes there is nothing dirty and this is cheap.
	 */
	(void)sync_file_range(v->t->fd_buf, (off_t)a, (off_t)(b - a),
			      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
			      SYNC_FILE_RANGE_WAIT_AFTER);
	(void)posix_fadvise(v->t->fd_buf, (off_t)a, (off_t)(b - a), POSIX_FADV_DONTNEED);
	while (a < b) {
		size_t len = (size_t)(b - a < FL_CHUNK ? b - a : FL_CHUNK);
		uint64_t x;
		long have;

		if (vstopped(v))
			return 0;
		have = vread(v, a, len);
		if (have < 0)
			return (int)have;
		for (x = 0; x < len; x += g) {
			uint64_t n = len - x < g ? len - x : g, idx = (a + x) / g;

			if (x + n > (uint64_t)have)
				return vfail(v, -EIO, a + (uint64_t)have, "verify failed: the target "
					     "ends at %" PRIu64 " bytes, before the image does%.0"
					     PRIu64, a + (uint64_t)have, 0);
			if (fl_hash64(v->buf + x, (size_t)n) !=
			    v->hpage[idx >> HPAGE_SHIFT][idx & (HPAGE - 1)])
				return vfail(v, -EIO, a + x, "verify failed: the target differs from "
					     "the image in the %" PRIu64 "-byte block at offset %"
					     PRIu64, n, a + x);
		}
		a += len;
		pthread_mutex_lock(&v->mu);
		v->bytes += len;
		pthread_cond_broadcast(&v->cv);
		pthread_mutex_unlock(&v->mu);
	}
	return 0;
}

static void *verifier(void *arg)
{
	struct fl_verify *v = arg;

	for (;;) {
		struct vitem it;
		int rc;

		pthread_mutex_lock(&v->mu);
		while (v->head == v->len && !v->done && !v->stop)
			pthread_cond_wait(&v->cv, &v->mu);
		if (v->stop || v->head == v->len) {
			v->exited = true;
			pthread_cond_broadcast(&v->cv);
			pthread_mutex_unlock(&v->mu);
			return NULL;
		}
		it = v->q[v->head++];
		pthread_mutex_unlock(&v->mu);
		rc = verify_item(v, it.a, it.b);
		if (rc) {
			pthread_mutex_lock(&v->mu);
			v->rc = rc;
			v->exited = true;
			pthread_cond_broadcast(&v->cv);
			pthread_mutex_unlock(&v->mu);
			return NULL;
		}
	}
}

int fl_verify_start(struct fl_verify *v, struct fl_err *e)
{
	if (pthread_create(&v->th, NULL, verifier, v))
		return fl_err_set(e, -EAGAIN, "cannot start the verifier thread");
	v->started = true;
	return 0;
}

bool fl_verify_running(const struct fl_verify *v)
{
	return v && v->started;
}

/* The thread failed earlier: its message is the root cause of what follows. */
static int thread_failed(struct fl_verify *v, int rc, uint64_t fail, uint64_t *fail_off,
			 struct fl_err *e)
{
	*fail_off = fail;
	return fl_err_set(e, rc, "%s", v->errbuf);
}

int fl_verify_push(struct fl_verify *v, uint64_t a, uint64_t b, uint64_t *fail_off,
		   struct fl_err *e)
{
	uint64_t fail;
	int rc;

	pthread_mutex_lock(&v->mu);
	if (v->len > v->head && v->q[v->len - 1].b == a) {
		v->q[v->len - 1].b = b; /* extend the previous piece */
	} else {
		if (v->len == v->cap) {
			size_t cap = v->cap ? 2 * v->cap : 256;
			struct vitem *q = realloc(v->q, cap * sizeof(*q));

			if (!q) {
				pthread_mutex_unlock(&v->mu);
				return fl_err_set(e, -ENOMEM, "out of memory");
			}
			v->q = q;
			v->cap = cap;
		}
		v->q[v->len].a = a;
		v->q[v->len].b = b;
		v->len++;
	}
	rc = v->rc;
	fail = v->fail;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->mu);
	return rc ? thread_failed(v, rc, fail, fail_off, e) : 0;
}

void fl_verify_credit(struct fl_verify *v, uint64_t n)
{
	pthread_mutex_lock(&v->mu);
	v->bytes += n;
	pthread_mutex_unlock(&v->mu);
}

int fl_verify_finish(struct fl_verify *v, bool drain, fl_verify_tick_fn tick, void *user,
		     uint64_t *verified, uint64_t *fail_off, struct fl_err *e)
{
	int rc;

	if (!v || !v->started)
		return 0;
	pthread_mutex_lock(&v->mu);
	if (drain)
		v->done = true;
	else
		v->stop = true;
	pthread_cond_broadcast(&v->cv);
	while (!v->exited) {
		struct timespec ts;
		uint64_t done, fail;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&v->cv, &v->mu, &ts);
		done = v->bytes;
		fail = v->fail;
		pthread_mutex_unlock(&v->mu);
		if (drain) {
			*verified = done;
			/* cancel or deadline while draining: stop reading back */
			if (tick && tick(user, done, fail) && !vstopped(v)) {
				pthread_mutex_lock(&v->mu);
				v->stop = true;
				pthread_cond_broadcast(&v->cv);
				pthread_mutex_unlock(&v->mu);
			}
		}
		pthread_mutex_lock(&v->mu);
	}
	pthread_mutex_unlock(&v->mu);
	pthread_join(v->th, NULL);
	v->started = false;
	*verified = v->bytes;
	rc = v->rc;
	if (rc)
		return thread_failed(v, rc, v->fail, fail_off, e);
	return e->code;
}

void fl_verify_free(struct fl_verify *v)
{
	size_t i;

	if (!v)
		return;
	if (v->started) {
		uint64_t verified, fail;
		struct fl_err scratch;

		fl_err_init(&scratch, NULL, 0);
		fl_verify_finish(v, false, NULL, NULL, &verified, &fail, &scratch);
	}
	if (v->hpage)
		for (i = 0; i < HPAGES; i++)
			free(v->hpage[i]);
	free(v->hpage);
	free(v->buf);
	free(v->q);
	pthread_mutex_destroy(&v->mu);
	pthread_cond_destroy(&v->cv);
	free(v);
}
