/* SPDX-License-Identifier: MIT */
/*
 * The compare-write stage: for each mapped piece of the image, read what the target holds
 * (O_DIRECT where possible), write only the blocks that differ, coalesced into as few writes
 * as possible, and tell the verify stage what to read back. The compare runs in the calling
 * thread, the writes behind it in a writer thread (write-behind, below).
 *
 * Comparing costs a read of everything mapped. On a card that holds something else (a blank
 * card, another OS) that read buys nothing, and on a card behind a USB 2 mux it costs a
 * third of the flash. So after BLIND_AFTER bytes of pieces in which no block matched, the
 * next BLIND_SPAN bytes are written without comparing; then one piece is compared again
 * (a probe): if nothing matches, another span goes blind at once, if anything does, the
 * compare goes on as before. A re-flash of the next release matches almost everywhere and
 * never goes blind.
 *
 * Write-behind: a card is written at its own pace only while a write is waiting for it. With
 * each piece written by the caller in turn, the card sat idle while the next piece was
 * compared (a read of up to 4 MiB) or while the caller waited for a CPU, and a throttled
 * medium does not make up for idle time: that was most of what a first flash lost against
 * the write limit. So a piece's writes are copied into one of NBATCH buffers and a writer
 * thread writes them in order, then queues their read-back; meanwhile the caller compares
 * the next piece, reading on the card's read budget while the write uses the write budget.
 * The writer's first failure is kept and returned by the next fl_delta_put() or by
 * fl_delta_finish(); nothing is written after it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flash_internal.h"

/* 16 MiB queued: a 16 MiB xz block (xz --block-size=16MiB) decodes while the card is written */
#define NBATCH 4

struct wrun {
	uint64_t off;
	size_t len;
	bool push;                 /* queue its read-back once written */
};

/* One piece's writes, in its own copy of the data, for the writer thread. */
struct batch {
	unsigned char *buf;        /* data of [a, b) at buf + a % 4096 (keeps O_DIRECT alignment) */
	uint64_t a, b;
	struct wrun *run;
	size_t n, cap;
	bool push_all;             /* queue [a, b) for read-back after the writes */
	bool busy;                 /* queued or being written */
};

struct fl_delta {
	struct fl_target *t;
	const struct rig_flash_opts *o;
	struct rig_flash_stats *st;
	struct fl_verify *v;       /* NULL: no read-back */
	struct fl_err *e;
	uint64_t gran;             /* compare and digest granularity */
	uint64_t differ_run;       /* bytes of compared pieces in a row where nothing matched */
	uint64_t blind_left;       /* bytes still to write without comparing */
	unsigned char *rbuf;       /* aligned buffer for the compare reads */

	/* the writer thread: bt[].busy, next, quit, written, rc and fail_off are shared under mu */
	pthread_t th;
	bool started, quit;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch bt[NBATCH];
	unsigned int next;         /* the batch the writer takes next (they go in turn) */
	unsigned int fill;         /* the batch the caller fills next (the caller's only) */
	uint64_t written;          /* bytes the writer wrote, for st->bytes_written */
	int rc;                    /* the writer's first failure, message in werr */
	uint64_t fail_off;
	struct fl_err werr;
	char werrbuf[512];
};

#define BLIND_AFTER (32ull << 20)
#define BLIND_SPAN (128ull << 20)

static void *writer(void *arg);

int fl_delta_new(struct fl_delta **out, struct fl_target *t, const struct rig_flash_opts *o,
		 struct rig_flash_stats *st, struct fl_verify *v, uint64_t gran, struct fl_err *e)
{
	struct fl_delta *d = calloc(1, sizeof(*d));
	size_t i;

	*out = d;
	if (!d)
		return fl_err_set(e, -ENOMEM, "out of memory");
	d->t = t;
	d->o = o;
	d->st = st;
	d->v = v;
	d->e = e;
	d->gran = gran;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	fl_err_init(&d->werr, d->werrbuf, sizeof(d->werrbuf));
	if (posix_memalign((void **)&d->rbuf, 4096, FL_CHUNK + 65536))
		return fl_err_set(e, -ENOMEM, "out of memory");
	for (i = 0; i < NBATCH; i++)
		if (posix_memalign((void **)&d->bt[i].buf, 4096, FL_CHUNK + 4096))
			return fl_err_set(e, -ENOMEM, "out of memory");
	if (pthread_create(&d->th, NULL, writer, d))
		return fl_err_set(e, -EAGAIN, "cannot start the writer thread");
	d->started = true;
	return 0;
}

/* Stops the writer after the write in progress; the queued ones are dropped. */
static void writer_stop(struct fl_delta *d)
{
	if (!d->started)
		return;
	pthread_mutex_lock(&d->mu);
	d->quit = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	pthread_join(d->th, NULL);
	d->started = false;
	d->st->bytes_written = d->written;
}

void fl_delta_free(struct fl_delta *d)
{
	size_t i;

	if (!d)
		return;
	writer_stop(d);
	for (i = 0; i < NBATCH; i++) {
		free(d->bt[i].buf);
		free(d->bt[i].run);
	}
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	free(d->rbuf);
	free(d);
}

static int io_error(struct fl_delta *d, const char *what, uint64_t off, int err)
{
	d->st->fail_offset = off;
	return fl_target_fail(d->t, what, off, err, d->e);
}

/* The writer's failure at @off (message from fl_target_fail() into werr). */
static int wfail(struct fl_delta *d, const char *what, uint64_t off, int err)
{
	int rc = fl_target_fail(d->t, what, off, err, &d->werr);

	pthread_mutex_lock(&d->mu);
	d->fail_off = off;
	pthread_mutex_unlock(&d->mu);
	return rc;
}

static void count_written(struct fl_delta *d, uint64_t n)
{
	pthread_mutex_lock(&d->mu);
	d->written += n;
	pthread_mutex_unlock(&d->mu);
}

/* In the writer thread. */
static int write_run(struct fl_delta *d, const unsigned char *p, uint64_t off, size_t len)
{
	const struct rig_flash_opts *o = d->o;
	const struct fl_target *t = d->t;
	bool aligned = t->direct && off % t->lbs == 0 && len % t->lbs == 0 &&
		       (uintptr_t)p % t->lbs == 0;
	int fd = aligned ? t->fd : t->fd_buf;
	size_t done = 0;

	if (o->fault.write_offset >= 0 && (uint64_t)o->fault.write_offset >= off &&
	    (uint64_t)o->fault.write_offset < off + len) {
		count_written(d, (uint64_t)o->fault.write_offset - off);
		return wfail(d, "write", (uint64_t)o->fault.write_offset,
			     o->fault.write_errno ? o->fault.write_errno : EIO);
	}
	while (done < len) {
		ssize_t n = pwrite(fd, p + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && fd != t->fd_buf) {
			fd = t->fd_buf; /* O_DIRECT refused this request: buffered instead */
			continue;
		}
		if (n < 0)
			return wfail(d, "write", off + done, errno);
		if (n == 0)
			return wfail(d, "write", off + done, ENOSPC);
		done += (size_t)n;
		count_written(d, (uint64_t)n);
	}
	return 0;
}

/* In the writer thread: a piece's writes, each then queued for reading back. */
static int write_batch(struct fl_delta *d, const struct batch *bt)
{
	const unsigned char *base = bt->buf + bt->a % 4096 - bt->a;
	uint64_t fail = 0;
	size_t i;
	int rc = 0;

	for (i = 0; i < bt->n && !rc; i++) {
		const struct wrun *r = &bt->run[i];

		rc = write_run(d, base + r->off, r->off, r->len);
		if (!rc && r->push)
			rc = fl_verify_push(d->v, r->off, r->off + r->len, &fail, &d->werr);
	}
	if (!rc && bt->push_all)
		rc = fl_verify_push(d->v, bt->a, bt->b, &fail, &d->werr);
	if (rc && fail) {
		pthread_mutex_lock(&d->mu);
		d->fail_off = fail;
		pthread_mutex_unlock(&d->mu);
	}
	return rc;
}

static void *writer(void *arg)
{
	struct fl_delta *d = arg;

	pthread_mutex_lock(&d->mu);
	for (;;) {
		struct batch *bt = &d->bt[d->next];
		int rc;

		while (!bt->busy && !d->quit)
			pthread_cond_wait(&d->cv, &d->mu);
		if (d->quit)
			break;
		pthread_mutex_unlock(&d->mu);
		rc = write_batch(d, bt);
		pthread_mutex_lock(&d->mu);
		bt->busy = false;
		d->next = (d->next + 1) % NBATCH;
		pthread_cond_broadcast(&d->cv);
		if (rc) {
			d->rc = rc;
			break;
		}
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/*
 * Brings the writer's count into the stats and returns its failure (the root cause, into
 * d->e). With @idle, first waits until it wrote everything queued.
 */
static int writer_sync(struct fl_delta *d, bool idle)
{
	unsigned int i;
	int rc;

	pthread_mutex_lock(&d->mu);
	for (i = 0; idle && i < NBATCH; i++)
		while (d->bt[i].busy && !d->rc)
			pthread_cond_wait(&d->cv, &d->mu);
	d->st->bytes_written = d->written;
	rc = d->rc;
	if (rc)
		d->st->fail_offset = d->fail_off;
	pthread_mutex_unlock(&d->mu);
	return rc ? fl_err_set(d->e, rc, "%s", d->werrbuf) : 0;
}

/* The next batch to fill, once the writer is done with it; NULL after a writer failure. */
static struct batch *batch_get(struct fl_delta *d)
{
	struct batch *bt = &d->bt[d->fill];
	bool busy;

	pthread_mutex_lock(&d->mu);
	while (bt->busy && !d->rc)
		pthread_cond_wait(&d->cv, &d->mu);
	busy = bt->busy;
	pthread_mutex_unlock(&d->mu);
	if (busy)
		return NULL;
	bt->n = 0;
	bt->push_all = false;
	return bt;
}

static int batch_add(struct fl_delta *d, struct batch *bt, uint64_t off, size_t len, bool push)
{
	if (bt->n == bt->cap) {
		size_t cap = bt->cap ? 2 * bt->cap : 64;
		struct wrun *r = realloc(bt->run, cap * sizeof(*r));

		if (!r)
			return fl_err_set(d->e, -ENOMEM, "out of memory");
		bt->run = r;
		bt->cap = cap;
	}
	bt->run[bt->n].off = off;
	bt->run[bt->n].len = len;
	bt->run[bt->n].push = push;
	bt->n++;
	d->t->touched = true;
	return 0;
}

/* Hands the filled batch for [a, b) of the image at @p to the writer. */
static void batch_submit(struct fl_delta *d, struct batch *bt, const unsigned char *p,
			 uint64_t a, uint64_t b)
{
	if (!bt->n && !bt->push_all)
		return;
	bt->a = a;
	bt->b = b;
	if (bt->n)
		memcpy(bt->buf + a % 4096, p, (size_t)(b - a));
	pthread_mutex_lock(&d->mu);
	bt->busy = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	d->fill = (d->fill + 1) % NBATCH;
}

int fl_delta_finish(struct fl_delta *d)
{
	return writer_sync(d, true);
}

/* Reads what the target holds at [off, off+len) into d->rbuf; returns bytes available. */
static long read_target(struct fl_delta *d, uint64_t off, size_t len, bool *direct)
{
	const struct fl_target *t = d->t;
	size_t done = 0;
	size_t want;
	int fd = t->fd, dfd = -1;
	unsigned int lbs = 512;

	if (off >= t->size)
		return 0;
	want = (size_t)(t->size - off < len ? t->size - off : len);
	/* Bypass the page cache when we can: what the device holds is what counts. */
	if (t->direct) {
		dfd = t->fd;
		lbs = t->lbs;
	} else if (t->rdirect) {
		dfd = t->rfd;
		lbs = t->rlbs;
	}
	if (dfd >= 0) {
		/* O_DIRECT needs lbs-aligned lengths; read a little more if needed. */
		size_t r = (want + lbs - 1) / lbs * lbs;

		if (off % lbs || (t->blockdev && off + r > t->size)) {
			fd = t->fd_buf;
		} else {
			fd = dfd;
			want = r;
		}
	}
	while (done < want) {
		ssize_t n = pread(fd, d->rbuf + done, want - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && fd != t->fd_buf) {
			fd = t->fd_buf;
			continue;
		}
		if (n < 0)
			return io_error(d, "read", off + done, errno);
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*direct = fd == dfd;
	return (long)(done < len ? done : len);
}

static bool is_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* True if [a, b) of a regular-file target is one hole (reads as zeros). */
static bool is_hole(const struct fl_target *t, uint64_t a, uint64_t b)
{
	off_t h;

	if (b > t->size)
		return false;
	h = lseek(t->fd_buf, (off_t)a, SEEK_DATA);
	if (h < 0)
		return errno == ENXIO; /* no data after a */
	return (uint64_t)h >= b;
}

/* Queues the differing blocks of [a, b) into @bt and says which read-backs follow. */
static int put(struct fl_delta *d, struct batch *bt, const unsigned char *p, uint64_t a,
	       uint64_t b)
{
	struct fl_target *t = d->t;
	uint64_t len = b - a, g = d->gran, x, run = UINT64_MAX, skipped0;
	bool verify = fl_verify_running(d->v);
	long have = 0;
	bool dread = false, hole = false;
	int rc;

	if (b > t->limit) {
		d->st->fail_offset = a < t->limit ? t->limit : a;
		return fl_target_too_small(t, t->limit, false, d->e);
	}
	if (!t->blockdev && b > t->size) {
		/* A new image file: grow first so untouched parts read back as zeros (holes). */
		t->touched = true;
		if (ftruncate(t->fd_buf, (off_t)b) < 0)
			return io_error(d, "extend", a, errno);
		t->size = b;
	}
	if (d->v) {
		rc = fl_verify_record(d->v, p, a, b, d->e);
		if (rc)
			return rc;
	}
	if (d->o->full || d->blind_left) {
		if (!d->o->full) {
			d->blind_left -= len < d->blind_left ? len : d->blind_left;
			d->st->bytes_blind += len;
		}
		return batch_add(d, bt, a, (size_t)len, verify);
	}

	if (!t->blockdev && is_hole(t, a, b)) {
		/* A hole reads as zeros: compare with zeros instead of reading. */
		hole = true;
		have = (long)len;
	} else {
		have = read_target(d, a, (size_t)len, &dread);
	}
	if (have < 0)
		return (int)have;
	/*
	 * An O_DIRECT compare already proved what the device holds for the skipped blocks, so
	 * only the written runs need reading back (a re-flash reads the card once, not twice).
	 * Otherwise the whole piece is read back after its writes.
	 */
	dread = dread && verify;
	bt->push_all = verify && !dread;
	skipped0 = d->st->bytes_skipped;
	for (x = a; x < b; x += g) {
		uint64_t n = b - x < g ? b - x : g;
		bool same = hole ? is_zero(p + (x - a), (size_t)n) :
			    x + n <= a + (uint64_t)have &&
			    !memcmp(p + (x - a), d->rbuf + (x - a), (size_t)n);

		if (same) {
			d->st->bytes_skipped += n;
			if (dread)
				fl_verify_credit(d->v, n);
			if (run != UINT64_MAX) {
				rc = batch_add(d, bt, run, (size_t)(x - run), dread);
				if (rc)
					return rc;
				run = UINT64_MAX;
			}
		} else if (run == UINT64_MAX) {
			run = x;
		}
	}
	if (hole || d->st->bytes_skipped > skipped0) {
		d->differ_run = 0;
	} else if ((d->differ_run += len) >= BLIND_AFTER) {
		d->blind_left = BLIND_SPAN;   /* differ_run stays: a failed probe goes blind again */
	}
	if (run != UINT64_MAX)
		return batch_add(d, bt, run, (size_t)(b - run), dread);
	return 0;
}

int fl_delta_put(struct fl_delta *d, const unsigned char *p, uint64_t a, uint64_t b)
{
	struct batch *bt = batch_get(d);
	int rc;

	/* the writer's failure is the root cause: it stops the flash before anything else */
	rc = writer_sync(d, false);
	if (rc || !bt)
		return rc ? rc : fl_err_set(d->e, -EIO, "the writer thread stopped");
	rc = put(d, bt, p, a, b);
	if (!rc)
		batch_submit(d, bt, p, a, b);
	return rc;
}
