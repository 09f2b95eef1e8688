/* SPDX-License-Identifier: MIT */
/*
 * The flash pipeline: a decoder thread fills 4 MiB chunks; the calling thread checks bmap
 * digests, compares each mapped block with the target (delta), writes the blocks that differ
 * and keeps a 64-bit digest of every mapped block; after the flush the target is dropped from
 * the page cache and read back against those digests.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "flash_internal.h"

#define CHUNK (4u << 20)
#define NSLOT 4
#define VBLK 4096u
#define HPAGE_SHIFT 18
#define HPAGE (1u << HPAGE_SHIFT)
#define HPAGES (1u << 14) /* 2^32 digests: 16 TiB at 4 KiB */

struct vitem {
	uint64_t a, b;
};

struct slot {
	unsigned char *buf;
	size_t len;
	uint64_t off;
	uint64_t in;          /* image file bytes read when the slot was filled */
	bool eof;
	int err;
};

struct job {
	const struct rig_flash_opts *o;
	struct fl_err *e;
	struct rig_flash_stats *st;
	struct fl_src *src;
	struct fl_bmap bm;
	bool have_bm;
	bool sparse;          /* raw image + bmap: only mapped ranges are read */
	bool pushed;          /* put_range_raw() queued its own read-back work */
	struct fl_target t;
	const char *target;
	const char *image;
	bool wrote;           /* a write to the target began: a failure must invalidate it */
	bool gone;            /* the target path no longer names what was written */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct slot slots[NSLOT];
	unsigned int head, tail, count;
	bool stop;
	struct fl_err perr;
	char perrbuf[512];

	uint64_t gran;        /* digest granularity */
	uint64_t **hpage;     /* digests, HPAGE per page; pages never move once allocated */
	unsigned char *rbuf;  /* aligned buffer for delta reads */

	/* Verifier thread: reads back ranges shortly after they were written. */
	pthread_t vth;
	bool vth_started, vdone, vstop, vexited;
	pthread_mutex_t vmu;
	pthread_cond_t vcv;
	struct vitem *vq;
	size_t vq_len, vq_cap, vq_head;
	int vrc;
	uint64_t vbytes, vfail;
	struct fl_err verr;
	char verrbuf[512];
	int vfd;              /* descriptor for read-back: O_DIRECT if vdirect */
	bool vdirect;
	unsigned int vlbs;
	unsigned char *vbuf;
	uint64_t file_size;   /* regular file targets: current size */

	bool gz_deferred;     /* gzip CRCs are checked here (zlib build) */
	size_t gz_idx;        /* next gzip member to check */
	uint32_t gz_crc;
	uint64_t gz_start;
	size_t ri;            /* current bmap range */
	EVP_MD_CTX *md;
	EVP_MD_CTX *pmd;      /* digest in the sparse producer */
	char pmdmsg[256];
	bool md_open;

	double deadline;
	double t_start;
	double phase_t0, last_report;
	enum rig_flash_phase phase;
	uint64_t phase_total;
	uint64_t in_done, in_total; /* write phase: the image file read so far, its size */
};

static void *verifier(void *arg);
static int verifier_finish(struct job *j, bool drain);

void rig_flash_opts_init(struct rig_flash_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->verify = true;
	o->timeout_ms = -1;
	o->fault.write_offset = -1;
	o->fault.corrupt_offset = -1;
}

const char *rig_flash_phase_name(enum rig_flash_phase phase)
{
	switch (phase) {
	case RIG_FLASH_PHASE_PREPARE: return "prepare";
	case RIG_FLASH_PHASE_WRITE: return "write";
	case RIG_FLASH_PHASE_SYNC: return "sync";
	case RIG_FLASH_PHASE_VERIFY: return "verify";
	case RIG_FLASH_PHASE_INJECT: return "inject";
	case RIG_FLASH_PHASE_DONE: return "done";
	}
	return "unknown";
}

double rig_flash_progress_fraction(const struct rig_flash_progress *p)
{
	double f;

	if (p->total)
		f = (double)p->done / (double)p->total;
	else if (p->in_total)
		f = (double)p->in_done / (double)p->in_total;
	else
		return -1;
	/* an xz index can understate what a (corrupt) stream goes on to produce */
	return f > 1 ? 1 : f;
}

int rig_flash_progress_format(const struct rig_flash_progress *p, char *buf, size_t len)
{
	const double MiB = 1048576.0;
	char size[96] = "", pct[16] = "", eta[32] = "";
	double f = rig_flash_progress_fraction(p), left = -1;

	if (p->total) {
		snprintf(size, sizeof(size), " %.1f/%.1f MiB", (double)p->done / MiB,
			 (double)p->total / MiB);
		if (p->rate > 0 && p->done < p->total)
			left = (double)(p->total - p->done) / p->rate;
	} else if (p->in_total) {
		/* decoded size unknown: how much of the image file was read is the measure */
		snprintf(size, sizeof(size), " %.1f MiB (image file %.1f/%.1f MiB read)",
			 (double)p->done / MiB, (double)p->in_done / MiB,
			 (double)p->in_total / MiB);
		if (p->in_done && p->in_done < p->in_total && p->elapsed > 0)
			left = p->elapsed * (double)(p->in_total - p->in_done) / (double)p->in_done;
	} else if (p->done) {
		snprintf(size, sizeof(size), " %.1f MiB", (double)p->done / MiB);
	}
	if (f >= 0)
		snprintf(pct, sizeof(pct), " %3d%%", (int)(100.0 * f));
	if (left >= 0)
		snprintf(eta, sizeof(eta), "  eta %.0fs", left);
	return snprintf(buf, len, "%-7s%s%s  %.1f MB/s%s  (written %.1f MiB, skipped %.1f MiB)",
			rig_flash_phase_name(p->phase), size, pct, p->rate / 1e6, eta,
			(double)p->written / MiB, (double)p->skipped / MiB);
}

static void report(struct job *j, uint64_t done, bool force)
{
	struct rig_flash_progress p;
	double now;

	if (!j->o->progress)
		return;
	now = fl_now();
	if (!force && now - j->last_report < 0.1)
		return;
	j->last_report = now;
	memset(&p, 0, sizeof(p));
	p.phase = j->phase;
	p.done = done;
	p.total = j->phase_total;
	/* "done" reports the whole job: mapped bytes over the total time. */
	p.elapsed = now - (j->phase == RIG_FLASH_PHASE_DONE ? j->t_start : j->phase_t0);
	p.rate = p.elapsed > 0 ? (double)done / p.elapsed : 0;
	p.written = j->st->bytes_written;
	p.skipped = j->st->bytes_skipped;
	if (j->phase == RIG_FLASH_PHASE_WRITE && j->in_total) {
		p.in_done = j->in_done;
		p.in_total = j->in_total;
	}
	j->o->progress(&p, j->o->progress_user);
}

static void phase_begin(struct job *j, enum rig_flash_phase ph, uint64_t total)
{
	j->phase = ph;
	j->phase_total = total;
	j->phase_t0 = fl_now();
	report(j, ph == RIG_FLASH_PHASE_DONE ? total : 0, true);
}

/* Cancel and deadline, checked between chunks. */
static int interrupted(struct job *j, uint64_t off)
{
	if (j->o->cancel && *j->o->cancel) {
		j->st->fail_offset = off;
		return fl_err_set(j->e, -EINTR, "cancelled at offset %" PRIu64 " (%" PRIu64
				  " bytes written, %" PRIu64 " skipped)", off,
				  j->st->bytes_written, j->st->bytes_skipped);
	}
	if (j->deadline > 0 && fl_now() > j->deadline) {
		j->st->fail_offset = off;
		return fl_err_set(j->e, -ETIMEDOUT, "timed out after %d ms at offset %" PRIu64,
				  j->o->timeout_ms, off);
	}
	return 0;
}

static bool digest_ok(struct job *j, EVP_MD_CTX *md, const struct fl_range *r)
{
	unsigned char got[EVP_MAX_MD_SIZE];
	unsigned int gl = 0;

	EVP_DigestFinal_ex(md, got, &gl);
	return !memcmp(got, r->digest, fl_csum_len(j->bm.csum));
}

static const char *digest_msg(struct job *j, const struct fl_range *r, char *m, size_t len)
{
	snprintf(m, len, "bmap checksum mismatch for blocks %" PRIu64 "-%" PRIu64 " (bytes %"
		 PRIu64 "-%" PRIu64 "): image and bmap do not match or the image is corrupt",
		 r->first, r->last, r->first * j->bm.block_size,
		 (r->last + 1) * j->bm.block_size - 1);
	return m;
}

/* pthread_cond_wait() for at most ms milliseconds (the condition uses CLOCK_REALTIME). */
static void cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ms * 1000 * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}

/* --- decoder thread ---------------------------------------------------------------------- */

/* Waits for a free slot; NULL if the consumer asked to stop. */
static struct slot *slot_get(struct job *j)
{
	struct slot *s = NULL;

	pthread_mutex_lock(&j->mu);
	while (j->count == NSLOT && !j->stop)
		pthread_cond_wait(&j->cv, &j->mu);
	if (!j->stop)
		s = &j->slots[j->head];
	pthread_mutex_unlock(&j->mu);
	return s;
}

static void slot_put(struct job *j)
{
	pthread_mutex_lock(&j->mu);
	j->head = (j->head + 1) % NSLOT;
	j->count++;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

/* Raw image with a bmap: read only the mapped ranges, as bmaptool does. */
static void *producer_sparse(void *arg)
{
	struct job *j = arg;
	struct slot *s;
	size_t i;

	/* The range digests are computed here too: this thread is otherwise idle. */
	for (i = 0; i < j->bm.n; i++) {
		const struct fl_range *r = &j->bm.r[i];
		uint64_t a = r->first * j->bm.block_size;
		uint64_t b = (r->last + 1) * j->bm.block_size;

		if (b > j->bm.image_size)
			b = j->bm.image_size;
		if (r->has_digest)
			EVP_DigestInit_ex(j->pmd, j->bm.csum == FL_CSUM_SHA1 ? EVP_sha1() :
					  EVP_sha256(), NULL);
		while (a < b) {
			size_t want = (size_t)(b - a < CHUNK ? b - a : CHUNK);
			long n;

			s = slot_get(j);
			if (!s)
				return NULL;
			n = fl_src_pread(j->src, s->buf, want, a, &j->perr);
			s->off = a;
			s->in = 0; /* the total is the bmap's: input progress is not needed */
			s->len = n > 0 ? (size_t)n : 0;
			s->err = n < 0 ? (int)n : 0;
			if (n >= 0 && (size_t)n < want)
				s->err = fl_err_set(&j->perr, -EBADMSG, "truncated image: it ends at "
						    "%" PRIu64 " bytes but its bmap maps data "
						    "up to %" PRIu64, a + (uint64_t)n, b);
			if (!s->err && r->has_digest) {
				EVP_DigestUpdate(j->pmd, s->buf, s->len);
				if (a + want == b && !digest_ok(j, j->pmd, r))
					s->err = fl_err_set(&j->perr, -EBADMSG, "%s",
							    digest_msg(j, r, j->pmdmsg,
								       sizeof(j->pmdmsg)));
			}
			s->eof = s->err != 0;
			slot_put(j);
			if (s->eof)
				return NULL;
			a += want;
		}
	}
	s = slot_get(j);
	if (!s)
		return NULL;
	s->off = j->bm.image_size;
	s->len = 0;
	s->err = 0;
	s->eof = true;
	slot_put(j);
	return NULL;
}

static void *producer(void *arg)
{
	struct job *j = arg;
	uint64_t off = 0;

	for (;;) {
		struct slot *s;
		size_t got = 0;
		long n = 0;

		s = slot_get(j);
		if (!s)
			return NULL;

		while (got < CHUNK) {
			n = fl_src_read(j->src, s->buf + got, CHUNK - got, &j->perr);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		s->len = got;
		s->off = off;
		/* read here, by the source's thread; the slot hands it over under the lock */
		s->in = fl_src_bytes_in(j->src);
		s->err = n < 0 ? (int)n : 0;
		s->eof = n <= 0;
		off += got;
		slot_put(j);
		if (s->eof)
			return NULL;
	}
}

/* --- writing ----------------------------------------------------------------------------- */

static int io_error(struct job *j, const char *what, uint64_t off, int err)
{
	j->st->fail_offset = off;
	if (err == ENODEV || err == ENXIO || err == ENOMEDIUM)
		return fl_err_set(j->e, -ENODEV, "target '%s' vanished: %s failed at offset %"
				  PRIu64 ": %s", j->target, what, off, strerror(err));
	/*
	 * The size was checked before writing, so this is the file system under a file target
	 * filling up (a sparse file): the host's trouble, not a card too small for the image.
	 */
	if (err == ENOSPC || err == EFBIG)
		return fl_err_set(j->e, -EIO, "no space left for target '%s': %s failed at offset %"
				  PRIu64, j->target, what, off);
	if (err == EROFS || err == EPERM || err == EACCES)
		return fl_err_set(j->e, -EROFS, "target '%s' is read-only: %s failed at offset %"
				  PRIu64, j->target, what, off);
	return fl_err_set(j->e, -err, "%s failed at offset %" PRIu64 " of '%s': %s", what,
			  off, j->target, strerror(err));
}

static int write_run(struct job *j, const unsigned char *p, uint64_t off, size_t len)
{
	const struct rig_flash_opts *o = j->o;
	bool aligned = j->t.direct && off % j->t.lbs == 0 && len % j->t.lbs == 0 &&
		       (uintptr_t)p % j->t.lbs == 0;
	int fd = aligned ? j->t.fd : j->t.fd_buf;
	size_t done = 0;

	j->wrote = true;

	if (o->fault.write_offset >= 0 && (uint64_t)o->fault.write_offset >= off &&
	    (uint64_t)o->fault.write_offset < off + len) {
		j->st->bytes_written += (uint64_t)o->fault.write_offset - off;
		return io_error(j, "write", (uint64_t)o->fault.write_offset,
				o->fault.write_errno ? o->fault.write_errno : EIO);
	}
	while (done < len) {
		ssize_t n = pwrite(fd, p + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && fd != j->t.fd_buf) {
			fd = j->t.fd_buf; /* O_DIRECT refused this request: buffered instead */
			continue;
		}
		if (n < 0)
			return io_error(j, "write", off + done, errno);
		if (n == 0)
			return io_error(j, "write", off + done, ENOSPC);
		done += (size_t)n;
		j->st->bytes_written += (uint64_t)n;
	}
	return 0;
}

/* Reads what the target holds at [off, off+len) into j->rbuf; returns bytes available. */
static long read_target(struct job *j, int fd, uint64_t off, size_t len, bool *direct)
{
	size_t done = 0;
	uint64_t lim = j->t.blockdev ? j->t.size : j->file_size;
	size_t want;
	int dfd = -1;
	unsigned int lbs = 512;

	if (off >= lim)
		return 0;
	want = (size_t)(lim - off < len ? lim - off : len);
	/* Bypass the page cache when we can: what the device holds is what counts. */
	if (j->t.direct) {
		dfd = j->t.fd;
		lbs = j->t.lbs;
	} else if (j->vdirect) {
		dfd = j->vfd;
		lbs = j->vlbs;
	}
	if (fd == j->t.fd && dfd >= 0) {
		/* O_DIRECT needs lbs-aligned lengths; read a little more if needed. */
		size_t r = (want + lbs - 1) / lbs * lbs;

		if (off % lbs || (j->t.blockdev && off + r > j->t.size)) {
			fd = j->t.fd_buf;
		} else {
			fd = dfd;
			want = r;
		}
	}
	while (done < want) {
		ssize_t n = pread(fd, j->rbuf + done, want - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && fd != j->t.fd_buf) {
			fd = j->t.fd_buf;
			continue;
		}
		if (n < 0)
			return io_error(j, "read", off + done, errno);
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*direct = fd == dfd;
	return (long)(done < len ? done : len);
}

static int verify_push(struct job *j, uint64_t a, uint64_t b);
static void verify_credit(struct job *j, uint64_t n);

static bool is_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && !memcmp(p, p + 1, n - 1));
}

/* True if [a, b) of a regular-file target is one hole (reads as zeros). */
static bool is_hole(struct job *j, uint64_t a, uint64_t b)
{
	off_t d;

	if (b > j->file_size)
		return false;
	d = lseek(j->t.fd_buf, (off_t)a, SEEK_DATA);
	if (d < 0)
		return errno == ENXIO; /* no data after a */
	return (uint64_t)d >= b;
}

/*
 * The image does not fit: @need is its size when @known, else the offset it reached. A file
 * target is a card of fixed size; it is never grown past it.
 */
static int too_big(struct job *j, uint64_t need, bool known)
{
	const double MiB = 1048576.0;

	const char *what = j->t.grow ? "the free space of its file system" : "the card";

	if (!known)
		return fl_err_set(j->e, -ENOSPC, "target '%s' is too small: the image is larger "
				  "than %s (it goes on past %.1f MiB)", j->target, what,
				  (double)j->t.limit / MiB);
	return fl_err_set(j->e, -ENOSPC, "target '%s' is too small: the image is larger than %s "
			  "(%.1f MiB > %.1f MiB)", j->target, what, (double)need / MiB,
			  (double)j->t.limit / MiB);
}

/* Writes the mapped piece [a, b) of the image whose data starts at p. */
static int put_range_raw(struct job *j, const unsigned char *p, uint64_t a, uint64_t b)
{
	uint64_t len = b - a, g = j->gran, x;
	long have = 0;
	bool dread = false, hole = false;
	int rc;

	j->pushed = false;

	if (b > j->t.limit) {
		j->st->fail_offset = a < j->t.limit ? j->t.limit : a;
		return too_big(j, j->t.limit, false);
	}
	if (!j->t.blockdev && b > j->file_size) {
		/* A new image file: grow first so untouched parts read back as zeros (holes). */
		j->wrote = true;
		if (ftruncate(j->t.fd_buf, (off_t)b) < 0)
			return io_error(j, "extend", a, errno);
		j->file_size = b;
	}
	/* Digests for the read-back. */
	for (x = a; x < b; x += g) {
		uint64_t idx = x / g, n = b - x < g ? b - x : g;
		uint64_t page = idx >> HPAGE_SHIFT;

		if (page >= HPAGES)
			return fl_err_set(j->e, -EFBIG, "image too large to verify");
		if (!j->hpage[page]) {
			j->hpage[page] = malloc(HPAGE * sizeof(uint64_t));
			if (!j->hpage[page])
				return fl_err_set(j->e, -ENOMEM, "out of memory");
		}
		j->hpage[page][idx & (HPAGE - 1)] = fl_hash64(p + (x - a), (size_t)n);
	}
	if (j->o->full)
		return write_run(j, p, a, (size_t)len);

	if (!j->t.blockdev && is_hole(j, a, b)) {
		/* A hole reads as zeros: compare with zeros instead of reading. */
		hole = true;
		have = (long)len;
	} else {
		have = read_target(j, j->t.fd, a, (size_t)len, &dread);
	}
	if (have < 0)
		return (int)have;
	/*
	 * An O_DIRECT compare already proved what the device holds for the skipped blocks, so
	 * only the written runs need reading back (a re-flash reads the card once, not twice).
	 */
	dread = dread && j->vth_started;
	j->pushed = dread;
	/* Coalesce differing blocks into as few writes as possible. */
	{
		uint64_t run = UINT64_MAX;

		for (x = a; x < b; x += g) {
			uint64_t n = b - x < g ? b - x : g;
			bool same = hole ? is_zero(p + (x - a), (size_t)n) :
				    x + n <= a + (uint64_t)have &&
				    !memcmp(p + (x - a), j->rbuf + (x - a), (size_t)n);

			if (same) {
				j->st->bytes_skipped += n;
				if (dread)
					verify_credit(j, n);
				if (run != UINT64_MAX) {
					rc = write_run(j, p + (run - a), run, (size_t)(x - run));
					if (!rc && dread)
						rc = verify_push(j, run, x);
					if (rc)
						return rc;
					run = UINT64_MAX;
				}
			} else if (run == UINT64_MAX) {
				run = x;
			}
		}
		if (run != UINT64_MAX) {
			rc = write_run(j, p + (run - a), run, (size_t)(b - run));
			if (!rc && dread)
				rc = verify_push(j, run, b);
			return rc;
		}
	}
	return 0;
}

/* Hands [a, b) to the verifier once it is written. */
static int verify_push(struct job *j, uint64_t a, uint64_t b)
{
	uint64_t fail;
	int rc = 0;

	pthread_mutex_lock(&j->vmu);
	if (j->vq_len > j->vq_head && j->vq[j->vq_len - 1].b == a) {
		j->vq[j->vq_len - 1].b = b; /* extend the previous piece */
	} else {
		if (j->vq_len == j->vq_cap) {
			size_t cap = j->vq_cap ? 2 * j->vq_cap : 256;
			struct vitem *q = realloc(j->vq, cap * sizeof(*q));

			if (!q) {
				pthread_mutex_unlock(&j->vmu);
				return fl_err_set(j->e, -ENOMEM, "out of memory");
			}
			j->vq = q;
			j->vq_cap = cap;
		}
		j->vq[j->vq_len].a = a;
		j->vq[j->vq_len].b = b;
		j->vq_len++;
	}
	rc = j->vrc;
	fail = j->vfail;
	pthread_cond_broadcast(&j->vcv);
	pthread_mutex_unlock(&j->vmu);
	if (rc) {
		/* The verifier failed earlier: its message is the root cause. */
		j->st->fail_offset = fail;
		return fl_err_set(j->e, rc, "%s", j->verrbuf);
	}
	return 0;
}

static void verify_credit(struct job *j, uint64_t n)
{
	pthread_mutex_lock(&j->vmu);
	j->vbytes += n;
	pthread_mutex_unlock(&j->vmu);
}

static int put_range(struct job *j, const unsigned char *p, uint64_t a, uint64_t b)
{
	int rc = put_range_raw(j, p, a, b);

	if (rc || !j->vth_started || j->pushed)
		return rc;
	return verify_push(j, a, b);
}

static int range_digest_check(struct job *j, const struct fl_range *r)
{
	char m[256];

	j->md_open = false;
	if (!r->has_digest || digest_ok(j, j->md, r))
		return 0;
	j->st->fail_offset = r->first * j->bm.block_size;
	return fl_err_set(j->e, -EBADMSG, "%s", digest_msg(j, r, m, sizeof(m)));
}

/* gzip CRC-32 and ISIZE of every member, computed here rather than in the decoder. */
static int gz_check(struct job *j, const struct slot *s)
{
	const unsigned char *p = s->buf;
	uint64_t pos = s->off, left = s->len;
	struct fl_gz_member m;

	for (;;) {
		if (fl_src_gz_member(j->src, j->gz_idx, &m) && m.end <= pos + left) {
			uint64_t n = m.end - pos;

			j->gz_crc = (uint32_t)crc32(j->gz_crc, p, (uInt)n);
			if (j->gz_crc != m.crc ||
			    (uint32_t)(m.end - j->gz_start) != m.isize) {
				j->st->fail_offset = j->gz_start;
				return fl_err_set(j->e, -EBADMSG, "corrupt gzip stream: %s mismatch "
						  "in the member at decompressed offset %" PRIu64,
						  j->gz_crc != m.crc ? "CRC-32" : "length",
						  j->gz_start);
			}
			p += n;
			pos += n;
			left -= n;
			j->gz_crc = (uint32_t)crc32(0, NULL, 0);
			j->gz_start = m.end;
			j->gz_idx++;
			continue;
		}
		j->gz_crc = (uint32_t)crc32(j->gz_crc, p, (uInt)left);
		return 0;
	}
}

static int consume(struct job *j, const struct slot *s)
{
	uint64_t off = s->off, end = s->off + s->len;
	int rc;

	if (!j->have_bm)
		return put_range(j, s->buf, off, end);
	if (end > j->bm.image_size) {
		j->st->fail_offset = j->bm.image_size;
		return fl_err_set(j->e, -EINVAL, "image is larger than the bmap's ImageSize %"
				  PRIu64 ": wrong bmap for this image?", j->bm.image_size);
	}
	while (j->ri < j->bm.n) {
		const struct fl_range *r = &j->bm.r[j->ri];
		uint64_t rs = r->first * j->bm.block_size;
		uint64_t re = (r->last + 1) * j->bm.block_size, a, b;

		if (re > j->bm.image_size)
			re = j->bm.image_size;
		if (rs >= end)
			break;
		a = rs > off ? rs : off;
		b = re < end ? re : end;
		if (r->has_digest && !j->md_open && !j->sparse) {
			EVP_DigestInit_ex(j->md, j->bm.csum == FL_CSUM_SHA1 ? EVP_sha1() :
				    EVP_sha256(), NULL);
			j->md_open = true;
		}
		if (a < b) {
			if (r->has_digest && !j->sparse)
				EVP_DigestUpdate(j->md, s->buf + (a - off), (size_t)(b - a));
			rc = put_range(j, s->buf + (a - off), a, b);
			if (rc)
				return rc;
		}
		if (re > end)
			break;
		if (!j->sparse) {
			rc = range_digest_check(j, r);
			if (rc)
				return rc;
		}
		j->ri++;
	}
	return 0;
}

/* The whole decoded stream of @total bytes has arrived: is it a disk image? */
static int total_check(struct job *j, uint64_t total)
{
	const char *fmt = rig_flash_format_name(j->st->format);

	j->st->fail_offset = total;
	if (total == 0)
		return fl_err_set(j->e, -EINVAL, "'%s' is empty: its %s stream holds no image",
				  j->image, fmt);
	if (total % 512)
		return fl_err_set(j->e, -EINVAL, "'%s' decodes to %" PRIu64 " bytes, not a whole "
				  "number of 512-byte sectors, so it is not a disk image: check "
				  "it is the right file", j->image, total);
	if (j->st->format == RIG_FLASH_FMT_RAW && total != fl_src_size_hint(j->src))
		return fl_err_set(j->e, -EBADMSG, "image '%s' changed while it was being flashed: "
				  "it had %" PRIu64 " bytes, %" PRIu64 " were read", j->image,
				  fl_src_size_hint(j->src), total);
	return 0;
}

static int write_phase(struct job *j)
{
	pthread_t th;
	uint64_t pos = 0;
	int rc = 0;
	bool eof = false;

	if (j->o->verify) {
		if (pthread_create(&j->vth, NULL, verifier, j))
			return fl_err_set(j->e, -EAGAIN, "cannot start the verifier thread");
		j->vth_started = true;
	}
	if (pthread_create(&th, NULL, j->sparse ? producer_sparse : producer, j)) {
		verifier_finish(j, false);
		return fl_err_set(j->e, -EAGAIN, "cannot start the decoder thread");
	}
	while (!eof) {
		struct slot *s;

		pthread_mutex_lock(&j->mu);
		/* A slow decoder (a whole xz block per chunk) must not hold off cancel/deadline. */
		while (j->count == 0 && !rc) {
			cond_wait_ms(&j->cv, &j->mu, 50);
			if (j->count == 0) {
				pthread_mutex_unlock(&j->mu);
				rc = interrupted(j, pos);
				pthread_mutex_lock(&j->mu);
			}
		}
		if (rc) {
			j->stop = true;
			pthread_cond_broadcast(&j->cv);
			pthread_mutex_unlock(&j->mu);
			break;
		}
		s = &j->slots[j->tail];
		pthread_mutex_unlock(&j->mu);

		if (j->o->fault.chunk_delay_ms > 0)
			usleep((useconds_t)j->o->fault.chunk_delay_ms * 1000);
		rc = interrupted(j, s->off);
		if (!rc && j->gz_deferred && !s->err)
			rc = gz_check(j, s);
		/* A small stream fits in the first chunk: these then refuse it before any write. */
		if (!rc && !s->err && s->eof && !j->sparse)
			rc = total_check(j, s->off + s->len);
		if (!rc && !s->err && s->off == 0 && s->len && j->st->format != RIG_FLASH_FMT_RAW)
			rc = fl_image_check_head(s->buf, s->len, j->image, j->st->format, j->e);
		/* A chunk that ends in a decoding error is not written: the flash fails anyway. */
		if (!rc && s->err) {
			j->st->fail_offset = s->off + s->len;
			rc = fl_err_set(j->e, s->err, "%s", j->perrbuf);
		}
		if (!rc && s->len) {
			j->st->bytes_decompressed += s->len;
			rc = consume(j, s);
		}
		eof = s->eof;
		pos = s->off + s->len; /* the slot is the decoder's again after this */
		j->in_done = s->in;
		pthread_mutex_lock(&j->mu);
		j->tail = (j->tail + 1) % NSLOT;
		j->count--;
		if (rc)
			j->stop = true;
		pthread_cond_broadcast(&j->cv);
		pthread_mutex_unlock(&j->mu);
		if (rc)
			break;
		report(j, pos, false);
	}
	if (rc)
		fl_src_stop(j->src); /* the decoder may be waiting for blocks we no longer need */
	pthread_join(th, NULL);
	if (rc)
		verifier_finish(j, false);
	j->st->bytes_read = fl_src_bytes_in(j->src);
	j->st->bytes_undecoded = fl_src_bytes_skipped(j->src);
	j->st->image_size = j->sparse ? j->bm.image_size : j->st->bytes_decompressed;
	if (rc)
		return rc;
	if (j->have_bm) {
		if (j->st->image_size < j->bm.image_size) {
			j->st->fail_offset = j->st->bytes_decompressed;
			return fl_err_set(j->e, -EBADMSG, "image ends at %" PRIu64 " bytes but its "
					  "bmap says %" PRIu64 ": truncated image or wrong bmap",
					  j->st->bytes_decompressed, j->bm.image_size);
		}
		j->st->bytes_mapped = j->bm.mapped_blocks * j->bm.block_size;
		if (j->bm.n && (j->bm.r[j->bm.n - 1].last + 1) * j->bm.block_size >
			       j->bm.image_size)
			j->st->bytes_mapped -= (j->bm.r[j->bm.n - 1].last + 1) * j->bm.block_size -
					       j->bm.image_size;
	} else {
		j->st->bytes_mapped = j->st->bytes_decompressed;
		if (j->t.grow && j->file_size < j->st->image_size &&
		    ftruncate(j->t.fd_buf, (off_t)j->st->image_size) < 0)
			return io_error(j, "extend", j->file_size, errno);
	}
	report(j, j->st->bytes_decompressed, true);
	return 0;
}

/* --- verification ------------------------------------------------------------------------ */

static int vfail(struct job *j, int code, uint64_t off, const char *fmt, uint64_t a1, uint64_t a2)
{
	char m[256];

	snprintf(m, sizeof(m), fmt, a1, a2);
	pthread_mutex_lock(&j->vmu);
	j->vfail = off;
	pthread_mutex_unlock(&j->vmu);
	return fl_err_set(&j->verr, code, "%s", m);
}

/* Reads [off, off+len) of the target into j->vbuf bypassing the page cache if possible. */
static long vread(struct job *j, uint64_t off, size_t len)
{
	int fd = j->vfd;
	size_t want = len, done = 0;

	if (j->vdirect) {
		if (off % j->vlbs)
			fd = j->t.fd_buf;
		else
			want = (len + j->vlbs - 1) / j->vlbs * j->vlbs;
	}
	while (done < want) {
		ssize_t n = pread(fd, j->vbuf + done, want - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && fd != j->t.fd_buf) {
			fd = j->t.fd_buf;
			want = len;
			continue;
		}
		if (n < 0) {
			int err = errno;

			return vfail(j, err == ENODEV || err == ENXIO ? -ENODEV : -err, off + done,
				     "read-back failed at offset %" PRIu64 "%.0" PRIu64, off + done,
				     0);
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (long)(done < len ? done : len);
}

static int corrupt_for_test(struct job *j)
{
	unsigned char c;
	off_t at = (off_t)j->o->fault.corrupt_offset;

	if (pread(j->t.fd_buf, &c, 1, at) != 1)
		return vfail(j, -EIO, (uint64_t)at, "test corruption read at %" PRIu64 "%.0" PRIu64,
			     (uint64_t)at, 0);
	c ^= 0xff;
	if (pwrite(j->t.fd_buf, &c, 1, at) != 1 || fdatasync(j->t.fd_buf) < 0)
		return vfail(j, -EIO, (uint64_t)at, "test corruption write at %" PRIu64 "%.0"
			     PRIu64, (uint64_t)at, 0);
	return 0;
}

static bool vstopped(struct job *j)
{
	bool stop;

	pthread_mutex_lock(&j->vmu);
	stop = j->vstop;
	pthread_mutex_unlock(&j->vmu);
	return stop;
}

static int verify_item(struct job *j, uint64_t a, uint64_t b)
{
	uint64_t g = j->gran;
	int64_t co = j->o->fault.corrupt_offset;
	int rc;

	if (co >= 0 && (uint64_t)co >= a && (uint64_t)co < b) {
		rc = corrupt_for_test(j);
		if (rc)
			return rc;
	}
	/*
	 * Push this range to the device and drop it from the page cache, so the read below is
	 * answered by the device. For O_DIRECT writes there is nothing dirty and this is cheap.
	 */
	(void)sync_file_range(j->t.fd_buf, (off_t)a, (off_t)(b - a), SYNC_FILE_RANGE_WAIT_BEFORE |
			      SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
	(void)posix_fadvise(j->t.fd_buf, (off_t)a, (off_t)(b - a), POSIX_FADV_DONTNEED);
	while (a < b) {
		size_t len = (size_t)(b - a < CHUNK ? b - a : CHUNK);
		uint64_t x;
		long have;

		if (vstopped(j))
			return 0;
		have = vread(j, a, len);
		if (have < 0)
			return (int)have;
		for (x = 0; x < len; x += g) {
			uint64_t n = len - x < g ? len - x : g, idx = (a + x) / g;

			if (x + n > (uint64_t)have)
				return vfail(j, -EIO, a + (uint64_t)have, "verify failed: the target "
					     "ends at %" PRIu64 " bytes, before the image does%.0"
					     PRIu64, a + (uint64_t)have, 0);
			if (fl_hash64(j->vbuf + x, (size_t)n) !=
			    j->hpage[idx >> HPAGE_SHIFT][idx & (HPAGE - 1)])
				return vfail(j, -EIO, a + x, "verify failed: the target differs from "
					     "the image in the %" PRIu64 "-byte block at offset %"
					     PRIu64, n, a + x);
		}
		a += len;
		pthread_mutex_lock(&j->vmu);
		j->vbytes += len;
		pthread_cond_broadcast(&j->vcv);
		pthread_mutex_unlock(&j->vmu);
	}
	return 0;
}

static void *verifier(void *arg)
{
	struct job *j = arg;

	for (;;) {
		struct vitem it;
		int rc;

		pthread_mutex_lock(&j->vmu);
		while (j->vq_head == j->vq_len && !j->vdone && !j->vstop)
			pthread_cond_wait(&j->vcv, &j->vmu);
		if (j->vstop || j->vq_head == j->vq_len) {
			j->vexited = true;
			pthread_cond_broadcast(&j->vcv);
			pthread_mutex_unlock(&j->vmu);
			return NULL;
		}
		it = j->vq[j->vq_head++];
		pthread_mutex_unlock(&j->vmu);
		rc = verify_item(j, it.a, it.b);
		if (rc) {
			pthread_mutex_lock(&j->vmu);
			j->vrc = rc;
			j->vexited = true;
			pthread_cond_broadcast(&j->vcv);
			pthread_mutex_unlock(&j->vmu);
			return NULL;
		}
	}
}

/* Ends the verifier: waits for it to drain (report progress meanwhile) or stops it. */
static int verifier_finish(struct job *j, bool drain)
{
	int rc;

	if (!j->vth_started)
		return 0;
	pthread_mutex_lock(&j->vmu);
	if (drain)
		j->vdone = true;
	else
		j->vstop = true;
	pthread_cond_broadcast(&j->vcv);
	while (!j->vexited) {
		struct timespec ts;
		uint64_t done;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&j->vcv, &j->vmu, &ts);
		done = j->vbytes;
		pthread_mutex_unlock(&j->vmu);
		if (drain) {
			j->st->bytes_verified = done;
			report(j, done, false);
			if (interrupted(j, j->vfail) && !vstopped(j)) {
				pthread_mutex_lock(&j->vmu);
				j->vstop = true;
				pthread_cond_broadcast(&j->vcv);
				pthread_mutex_unlock(&j->vmu);
			}
		}
		pthread_mutex_lock(&j->vmu);
	}
	pthread_mutex_unlock(&j->vmu);
	pthread_join(j->vth, NULL);
	j->vth_started = false;
	j->st->bytes_verified = j->vbytes;
	rc = j->vrc;
	if (rc) {
		j->st->fail_offset = j->vfail;
		return fl_err_set(j->e, rc, "%s", j->verrbuf);
	}
	return j->e->code;
}

/* --- injection --------------------------------------------------------------------------- */

static int slurp(const char *path, char **data, size_t *len, struct fl_err *e)
{
	FILE *f = fopen(path, "rbe");
	char *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (!f)
		return fl_err_set(e, -errno, "cannot open '%s': %s", path, strerror(errno));
	for (;;) {
		if (n == cap) {
			char *p = realloc(buf, cap ? 2 * cap : 65536);

			if (!p) {
				free(buf);
				fclose(f);
				return fl_err_set(e, -ENOMEM, "out of memory");
			}
			buf = p;
			cap = cap ? 2 * cap : 65536;
		}
		r = fread(buf + n, 1, cap - n, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	*data = buf;
	*len = n;
	return 0;
}

static int inject_phase(struct job *j)
{
	char msg[512];
	size_t i;
	int rc = 0;
	int tmo = -1;

	phase_begin(j, RIG_FLASH_PHASE_INJECT, j->o->n_inject);
	for (i = 0; i < j->o->n_inject && !rc; i++) {
		const struct rig_flash_inject *in = &j->o->inject[i];
		char *data = NULL, *back = NULL;
		size_t len = 0, blen = 0;

		if (j->deadline > 0) {
			tmo = (int)((j->deadline - fl_now()) * 1000);
			if (tmo <= 0)
				return fl_err_set(j->e, -ETIMEDOUT, "timed out before injecting '%s'",
						  in->dest);
		}
		rc = slurp(in->src, &data, &len, j->e);
		if (rc)
			break;
		rc = rig_part_file_write(j->target, in->part, in->dest, data, len, in->append,
					 tmo, msg, sizeof(msg));
		if (!rc)
			rc = rig_part_file_read(j->target, in->part, in->dest, &back, &blen, tmo,
						msg, sizeof(msg));
		if (rc) {
			fl_err_set(j->e, rc, "injecting '%s' into partition '%s': %s", in->dest,
				   in->part, msg);
		} else if (blen < len || memcmp(back + (blen - len), data, len) ||
			   (!in->append && blen != len)) {
			rc = fl_err_set(j->e, -EIO, "injected '%s' reads back different", in->dest);
		}
		free(data);
		free(back);
		report(j, i + 1, true);
	}
	return rc;
}

/* --- after a failure ---------------------------------------------------------------------- */

#define WIPE (1u << 20)

static int pwrite_all(int fd, const unsigned char *p, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, p + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

/*
 * Erases the first and the last MiB of the target and flushes it. The first holds the MBR,
 * the primary GPT and the boot code of every common layout; the last holds a backup GPT,
 * the new image's or the old card's, from which UEFI firmware would otherwise restore the
 * old table over half-written partitions. Runs without the cancel flag or the deadline: it
 * is what a cancel or a timeout must still do.
 */
static int invalidate(struct job *j, char *why, size_t whylen)
{
	int fd = j->t.fd_buf, rc = 0;
	unsigned char *z = NULL;
	uint64_t size = j->t.size, tail;
	struct stat st;

	if (fd < 0) {
		/* Closed after the flush (inject runs on the path): reopen the same file. */
		fd = open(j->target, O_RDWR | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0 ||
		    (j->t.blockdev ? st.st_rdev != j->t.rdev
				   : st.st_dev != j->t.dev || st.st_ino != j->t.ino)) {
			snprintf(why, whylen, "%s", fd < 0 ? strerror(errno) : "it changed");
			if (fd >= 0)
				close(fd);
			return -ENODEV;
		}
	}
	if (!j->t.blockdev)
		size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : j->file_size;
	z = calloc(1, WIPE);
	if (!z)
		rc = -ENOMEM;
	if (!rc)
		rc = pwrite_all(fd, z, size < WIPE ? (size_t)size : WIPE, 0);
	if (!rc && size > WIPE) {
		tail = size - WIPE < WIPE ? WIPE : size - WIPE;
		rc = pwrite_all(fd, z, (size_t)(size - tail), tail);
	}
	if (!rc && fdatasync(fd) < 0)
		rc = -errno;
	if (rc)
		snprintf(why, whylen, "%s", strerror(-rc));
	free(z);
	if (fd != j->t.fd_buf)
		close(fd);
	return rc;
}

/*
 * A flash failed after it began writing: what the target holds is neither the old card nor
 * the new image. Make sure it cannot boot, or remove the file this call created, and say so.
 */
static void after_failure(struct job *j)
{
	char why[128];
	struct fl_err scratch;

	if (j->t.created) {
		fl_err_init(&scratch, NULL, 0);
		if (fl_target_check_path(j->target, &j->t, &scratch) == 0 && unlink(j->target) == 0)
			fl_err_append(j->e, "; the new file '%s' was removed", j->target);
		return;
	}
	if (invalidate(j, why, sizeof(why)) == 0) {
		j->st->invalidated = true;
		fl_err_append(j->e, "; the card was invalidated (first and last MiB erased) so it "
			      "cannot boot");
	} else {
		fl_err_append(j->e, "; erasing its first and last MiB failed too (%s): it may hold "
			      "a partial image", why);
	}
}

/* A bmap named by the caller must be a readable regular file: open() of a FIFO would hang. */
static int bmap_check(const char *path, struct fl_err *e)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return fl_err_set(e, errno == ENOENT || errno == ENOTDIR ? -ENOENT : -EINVAL,
				  "bmap '%s' %s", path, errno == ENOENT || errno == ENOTDIR ?
				  "does not exist" : strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fl_err_set(e, -EINVAL, "bmap '%s' is not a regular file", path);
	return 0;
}

/* --- entry point ------------------------------------------------------------------------- */

int rig_flash_image(const char *image, const char *target, const struct rig_flash_opts *opts,
		    struct rig_flash_stats *st_out, char *err, size_t errlen)
{
	struct rig_flash_opts defaults;
	struct rig_flash_stats st_local;
	struct fl_err e;
	struct job j;
	char *bmap_path = NULL;
	double t0 = fl_now(), t, t_write0 = 0;
	int rc;
	size_t i;

	if (!opts) {
		rig_flash_opts_init(&defaults);
		opts = &defaults;
	}
	fl_err_init(&e, err, errlen);
	memset(&j, 0, sizeof(j));
	j.o = opts;
	j.e = &e;
	j.st = st_out ? st_out : &st_local;
	memset(j.st, 0, sizeof(*j.st));
	j.target = target;
	j.image = image;
	j.t.fd = j.t.fd_buf = -1;
	j.gran = VBLK;
	j.t_start = t0;
	fl_err_init(&j.perr, j.perrbuf, sizeof(j.perrbuf));
	fl_err_init(&j.verr, j.verrbuf, sizeof(j.verrbuf));
	j.vfd = -1;
	pthread_mutex_init(&j.mu, NULL);
	pthread_cond_init(&j.cv, NULL);
	pthread_mutex_init(&j.vmu, NULL);
	pthread_cond_init(&j.vcv, NULL);
	if (opts->timeout_ms >= 0)
		j.deadline = t0 + opts->timeout_ms / 1000.0 + (opts->timeout_ms == 0 ? 1e-9 : 0);
	phase_begin(&j, RIG_FLASH_PHASE_PREPARE, 0);

	rc = fl_src_open(image, opts->threads, &j.src, &e);
	if (rc)
		goto out;
	j.st->format = fl_src_format(j.src);
	j.gz_deferred = fl_src_crc_deferred(j.src);
	if (!opts->no_bmap) {
		if (opts->bmap)
			bmap_path = strdup(opts->bmap);
		else
			bmap_path = rig_flash_bmap_find(image);
		if (bmap_path) {
			rc = bmap_check(bmap_path, &e);
			if (rc)
				goto out;
			rc = fl_bmap_load(bmap_path, &j.bm, &e);
			if (rc)
				goto out;
			if (!j.bm.n || !j.bm.mapped_blocks) {
				rc = fl_err_set(&e, -EINVAL, "bmap '%s' maps no blocks: there is "
						"nothing to write", bmap_path);
				goto out;
			}
			j.have_bm = true;
			j.st->bmap_used = true;
			rc = fl_src_set_map(j.src, &j.bm, opts->threads, &e);
			if (rc)
				goto out;
			if (j.st->format == RIG_FLASH_FMT_RAW) {
				uint64_t fsz = fl_src_size_hint(j.src);

				if (fsz < j.bm.image_size) {
					rc = fl_err_set(&e, -EBADMSG, "image ends at %" PRIu64
							" bytes but its bmap says %" PRIu64 ": "
							"truncated image or wrong bmap", fsz,
							j.bm.image_size);
					goto out;
				}
				if (fsz > j.bm.image_size) {
					rc = fl_err_set(&e, -EINVAL, "image is larger than the "
							"bmap's ImageSize %" PRIu64 ": wrong bmap "
							"for this image?", j.bm.image_size);
					goto out;
				}
				j.sparse = true;
			} else if (fl_src_size_hint(j.src) &&
				   fl_src_size_hint(j.src) != j.bm.image_size) {
				/* zip and zstd tell their size: a wrong bmap is refused up front. */
				rc = fl_err_set(&e, -EINVAL, "image decodes to %" PRIu64 " bytes "
						"but its bmap says %" PRIu64 ": wrong bmap for this "
						"image?", fl_src_size_hint(j.src), j.bm.image_size);
				goto out;
			}
			if (j.bm.block_size < j.gran)
				j.gran = j.bm.block_size;
		}
	}
	rc = fl_target_open(target, opts, &j.t, &e);
	if (rc)
		goto out;
	if (fl_src_same_file(j.src, j.t.fd_buf)) {
		rc = fl_err_set(&e, -EINVAL, "image '%s' and target '%s' are the same file", image,
				target);
		goto out;
	}
	j.vfd = j.t.fd_buf;
	j.vlbs = j.t.lbs;
	if (j.t.direct) {
		j.vfd = j.t.fd;
		j.vdirect = true;
	} else if (!opts->no_direct) {
		/* Regular files: read back with O_DIRECT where the file system allows it. */
		int fd = open(target, O_RDONLY | O_DIRECT | O_CLOEXEC);

		if (fd >= 0) {
			j.vfd = fd;
			j.vdirect = true;
			j.vlbs = 4096;
		}
	}
	j.st->direct_io = j.t.direct;
	j.st->target_is_blockdev = j.t.blockdev;
	j.file_size = j.t.size;
	{
		uint64_t need = j.have_bm ? j.bm.image_size : fl_src_size_hint(j.src);

		if (j.have_bm && j.bm.n)
			need = (j.bm.r[j.bm.n - 1].last + 1) * j.bm.block_size;
		if (j.have_bm && need > j.bm.image_size)
			need = j.bm.image_size;
		if (need > j.t.limit) {
			rc = too_big(&j, need, true);
			goto out;
		}
		j.phase_total = need;
		/* New image files become as long as the image (never shorter than they were). */
		if (j.t.grow && j.have_bm && j.file_size < j.bm.image_size) {
			j.wrote = true;
			if (ftruncate(j.t.fd_buf, (off_t)j.bm.image_size) < 0) {
				rc = io_error(&j, "extend", j.file_size, errno);
				goto out;
			}
			j.file_size = j.bm.image_size;
		}
	}
	for (i = 0; i < NSLOT; i++) {
		if (posix_memalign((void **)&j.slots[i].buf, 4096, CHUNK)) {
			rc = fl_err_set(&e, -ENOMEM, "out of memory");
			goto out;
		}
	}
	if (posix_memalign((void **)&j.rbuf, 4096, CHUNK + 65536) ||
	    posix_memalign((void **)&j.vbuf, 4096, CHUNK + 65536) ||
	    !(j.hpage = calloc(HPAGES, sizeof(*j.hpage))) || !(j.md = EVP_MD_CTX_new()) ||
	    !(j.pmd = EVP_MD_CTX_new())) {
		rc = fl_err_set(&e, -ENOMEM, "out of memory");
		goto out;
	}
	rc = interrupted(&j, 0);
	if (rc)
		goto out;
	t = fl_now();
	j.st->t_prepare = t - t0;

	/*
	 * Progress needs a total: the bmap's image size, else the decoded size the container
	 * declares (zstd, zip) or its index gives (xz). Failing those (gzip, bzip2, an xz with an
	 * unreadable index), the image file read so far tells how far the flash is.
	 */
	if (j.st->format != RIG_FLASH_FMT_RAW && !j.sparse)
		j.in_total = fl_src_file_size(j.src);
	phase_begin(&j, RIG_FLASH_PHASE_WRITE, j.have_bm ? j.bm.image_size :
		    fl_src_size_expected(j.src));
	t_write0 = j.phase_t0;
	rc = write_phase(&j);
	j.st->t_write = fl_now() - t;
	if (rc)
		goto out;

	if (opts->verify) {
		/* Most ranges were read back while later ones were written; finish the rest. */
		t = fl_now();
		/* The read-back started with the writes: its rate counts from then. */
		j.phase = RIG_FLASH_PHASE_VERIFY;
		j.phase_total = j.st->bytes_mapped;
		j.phase_t0 = t_write0;
		rc = verifier_finish(&j, true);
		report(&j, j.st->bytes_verified, true);
		j.st->t_verify = fl_now() - t;
		if (rc)
			goto out;
	}
	t = fl_now();
	phase_begin(&j, RIG_FLASH_PHASE_SYNC, 0);
	if (fdatasync(j.t.fd_buf) < 0) {
		rc = io_error(&j, "flush", 0, errno);
		goto out;
	}
	j.st->t_sync = fl_now() - t;
	/* A file removed or replaced meanwhile took the image with it: that is no success. */
	rc = fl_target_check_path(target, &j.t, &e);
	if (rc) {
		j.gone = true;
		goto out;
	}
	fl_target_close(&j.t);

	if (opts->n_inject) {
		t = fl_now();
		rc = inject_phase(&j);
		j.st->t_inject = fl_now() - t;
		if (rc)
			goto out;
	}
	phase_begin(&j, RIG_FLASH_PHASE_DONE, j.st->bytes_mapped);
out:
	verifier_finish(&j, false);
	if (j.vfd >= 0 && j.vfd != j.t.fd && j.vfd != j.t.fd_buf)
		close(j.vfd);
	j.vfd = -1;
	j.st->target_written = j.wrote;
	if (rc < 0 && j.wrote && !j.gone)
		after_failure(&j);
	if (j.src && !j.st->bytes_read)
		j.st->bytes_read = fl_src_bytes_in(j.src);
	fl_target_close(&j.t);
	fl_src_close(j.src);
	fl_bmap_release(&j.bm);
	for (i = 0; i < NSLOT; i++)
		free(j.slots[i].buf);
	free(j.rbuf);
	free(j.vbuf);
	if (j.hpage)
		for (i = 0; i < HPAGES; i++)
			free(j.hpage[i]);
	free(j.hpage);
	free(j.vq);
	pthread_mutex_destroy(&j.vmu);
	pthread_cond_destroy(&j.vcv);
	free(bmap_path);
	EVP_MD_CTX_free(j.md);
	EVP_MD_CTX_free(j.pmd);
	pthread_mutex_destroy(&j.mu);
	pthread_cond_destroy(&j.cv);
	j.st->t_total = fl_now() - t0;
	if (j.st->t_total > 0)
		j.st->mbps = (double)j.st->bytes_mapped / j.st->t_total / 1e6;
	return rc;
}
