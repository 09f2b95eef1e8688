/* SPDX-License-Identifier: MIT */
/*
 * The compare-write stage: for each mapped piece of the image, read what the target holds
 * (O_DIRECT where possible), write only the blocks that differ, coalesced into as few writes
 * as possible, and tell the verify stage what to read back. Runs in the calling thread.
 *
 * Comparing costs a read of everything mapped. On a card that holds something else (a blank
 * card, another OS) that read buys nothing, and on a card behind a USB 2 mux it costs a
 * third of the flash. So after BLIND_AFTER bytes of pieces in which no block matched, the
 * next BLIND_SPAN bytes are written without comparing; then one piece is compared again
 * (a probe): if nothing matches, another span goes blind at once, if anything does, the
 * compare goes on as before. A re-flash of the next release matches almost everywhere and
 * never goes blind.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flash_internal.h"

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
};

#define BLIND_AFTER (32ull << 20)
#define BLIND_SPAN (128ull << 20)

int fl_delta_new(struct fl_delta **out, struct fl_target *t, const struct rig_flash_opts *o,
		 struct rig_flash_stats *st, struct fl_verify *v, uint64_t gran, struct fl_err *e)
{
	struct fl_delta *d = calloc(1, sizeof(*d));

	*out = d;
	if (!d)
		return fl_err_set(e, -ENOMEM, "out of memory");
	d->t = t;
	d->o = o;
	d->st = st;
	d->v = v;
	d->e = e;
	d->gran = gran;
	if (posix_memalign((void **)&d->rbuf, 4096, FL_CHUNK + 65536))
		return fl_err_set(e, -ENOMEM, "out of memory");
	return 0;
}

void fl_delta_free(struct fl_delta *d)
{
	if (!d)
		return;
	free(d->rbuf);
	free(d);
}

static int io_error(struct fl_delta *d, const char *what, uint64_t off, int err)
{
	d->st->fail_offset = off;
	return fl_target_fail(d->t, what, off, err, d->e);
}

static int write_run(struct fl_delta *d, const unsigned char *p, uint64_t off, size_t len)
{
	const struct rig_flash_opts *o = d->o;
	struct fl_target *t = d->t;
	bool aligned = t->direct && off % t->lbs == 0 && len % t->lbs == 0 &&
		       (uintptr_t)p % t->lbs == 0;
	int fd = aligned ? t->fd : t->fd_buf;
	size_t done = 0;

	t->touched = true;

	if (o->fault.write_offset >= 0 && (uint64_t)o->fault.write_offset >= off &&
	    (uint64_t)o->fault.write_offset < off + len) {
		d->st->bytes_written += (uint64_t)o->fault.write_offset - off;
		return io_error(d, "write", (uint64_t)o->fault.write_offset,
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
			return io_error(d, "write", off + done, errno);
		if (n == 0)
			return io_error(d, "write", off + done, ENOSPC);
		done += (size_t)n;
		d->st->bytes_written += (uint64_t)n;
	}
	return 0;
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

/* Writes the differing blocks of [a, b); *pushed: their read-back is already queued. */
static int put(struct fl_delta *d, const unsigned char *p, uint64_t a, uint64_t b,
	       bool *pushed)
{
	struct fl_target *t = d->t;
	uint64_t len = b - a, g = d->gran, x, run = UINT64_MAX, skipped0;
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
	if (d->o->full)
		return write_run(d, p, a, (size_t)len);
	if (d->blind_left) {
		d->blind_left -= len < d->blind_left ? len : d->blind_left;
		d->st->bytes_blind += len;
		return write_run(d, p, a, (size_t)len);
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
	 */
	dread = dread && fl_verify_running(d->v);
	*pushed = dread;
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
				rc = write_run(d, p + (run - a), run, (size_t)(x - run));
				if (!rc && dread)
					rc = fl_verify_push(d->v, run, x, &d->st->fail_offset,
							    d->e);
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
	if (run != UINT64_MAX) {
		rc = write_run(d, p + (run - a), run, (size_t)(b - run));
		if (!rc && dread)
			rc = fl_verify_push(d->v, run, b, &d->st->fail_offset, d->e);
		return rc;
	}
	return 0;
}

int fl_delta_put(struct fl_delta *d, const unsigned char *p, uint64_t a, uint64_t b)
{
	bool pushed = false;
	int rc = put(d, p, a, b, &pushed);

	if (rc || !fl_verify_running(d->v) || pushed)
		return rc;
	return fl_verify_push(d->v, a, b, &d->st->fail_offset, d->e);
}
