/* SPDX-License-Identifier: MIT */
/*
 * Block-parallel xz reading for images flashed with a bmap.
 *
 * A multi-block .xz file (xz -T0, the default since xz 5.4) carries an index of its blocks.
 * With a bmap, only blocks holding at least one mapped byte need decoding: the rest of the
 * image never reaches the target. On a typical OS image the unmapped tail is long runs of
 * zeros, which LZMA decodes at only ~500 MB/s per core, so skipping them saves a third of the
 * decode time. The blocks that are needed are decoded by a small pool of workers, in order,
 * each into its own slot; skipped blocks read as zeros.
 *
 * Files without a usable index (one block, a truncated or corrupt tail, blocks too large for
 * the slot budget, an index too large for INDEX_MEMLIMIT) are left to liblzma's streaming
 * decoder, whose errors are the reference.
 *
 * A worker takes block k only when the reader has released block k - nslot from the same
 * slot (the slot's turn), so slots are filled in order. Workers read the compressed bytes
 * in IN_CHUNK pieces and decode OUT_CHUNK at a time, looking at the stop flag in between:
 * fl_xzb_stop() (a cancelled flash) does not wait for whole blocks to be decoded.
 */
#include <errno.h>
#include <lzma.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flash_internal.h"

#define MAX_BLOCK (256u << 20) /* bigger blocks: streaming decoder */
#define MAX_THREADS 16
#define SLOT_BUDGET (UINT64_C(1) << 30)
#define IN_CHUNK (1u << 20)     /* compressed bytes read at a time by a worker */
#define OUT_CHUNK (4u << 20)    /* decompressed bytes between two looks at the stop flag */
#define INDEX_MEMLIMIT (UINT64_C(64) << 20) /* bigger indexes: streaming decoder */

struct xblk {
	uint64_t coff, csize;  /* the whole block in the file: header, data, padding, check */
	uint64_t uoff, usize;
	uint64_t unpadded;
	lzma_check check;
	long need;             /* index among the needed blocks, or -1 */
};

struct xslot {
	long k;                /* needed-block index held, -1 if free */
	long turn;             /* the needed block this slot takes next: k, k + nslot, ... */
	bool ready;
	int err;
	unsigned char *out;
};

struct xworker {
	struct fl_xzb *x;
	unsigned char *in;     /* IN_CHUNK bytes of compressed input */
};

struct fl_xzb {
	int fd;
	const char *path;
	struct xblk *b;
	size_t nb;
	long *needed;          /* block numbers of the needed blocks, in order */
	long nneeded;
	uint64_t total;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct xslot *slot;
	unsigned int nslot, nthr;
	pthread_t th[MAX_THREADS];
	struct xworker w[MAX_THREADS];
	long next;             /* next needed block a worker may claim */
	bool stop;
	uint64_t in_bytes;
	char errmsg[256];
	int errcode;

	/* reader */
	uint64_t pos;
	size_t bi;
};

/* Reads the index with liblzma's file-info decoder (it seeks to each stream's footer). */
static lzma_index *read_index(int fd, uint64_t fsize)
{
	lzma_stream st = LZMA_STREAM_INIT;
	lzma_index *idx = NULL;
	unsigned char buf[8192];
	uint64_t pos = 0;
	lzma_ret r;

	if (lzma_file_info_decoder(&st, &idx, INDEX_MEMLIMIT, fsize) != LZMA_OK)
		return NULL;
	for (;;) {
		if (st.avail_in == 0) {
			ssize_t n = pread(fd, buf, sizeof(buf), (off_t)pos);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			st.next_in = buf;
			st.avail_in = (size_t)n;
			pos += (uint64_t)n;
		}
		r = lzma_code(&st, LZMA_RUN);
		if (r == LZMA_SEEK_NEEDED) {
			pos = st.seek_pos;
			st.avail_in = 0;
			continue;
		}
		if (r == LZMA_STREAM_END) {
			lzma_end(&st);
			return idx;
		}
		if (r != LZMA_OK)
			break;
	}
	lzma_end(&st);
	if (idx)
		lzma_index_end(idx, NULL);
	return NULL;
}

uint64_t fl_xz_uncompressed_size(int fd, uint64_t fsize)
{
	lzma_index *idx = read_index(fd, fsize);
	uint64_t n;

	if (!idx)
		return 0;
	n = lzma_index_uncompressed_size(idx);
	lzma_index_end(idx, NULL);
	return n;
}

/* Records the first error, naming the block; call with x->mu held. */
static void set_err(struct fl_xzb *x, int code, const char *what, long bn, const char *detail)
{
	const struct xblk *b = &x->b[bn];

	if (x->errcode)
		return;
	x->errcode = code;
	snprintf(x->errmsg, sizeof(x->errmsg), "%s xz stream '%s': block %ld (decompressed "
		 "bytes %llu-%llu)%s%s", what, x->path, bn + 1, (unsigned long long)b->uoff,
		 (unsigned long long)(b->uoff + b->usize - 1), detail ? ": " : "",
		 detail ? detail : "");
}

static bool stopped(struct fl_xzb *x)
{
	bool stop;

	pthread_mutex_lock(&x->mu);
	stop = x->stop;
	pthread_mutex_unlock(&x->mu);
	return stop;
}

/* Reads len bytes at offset off of block bn; returns 0, -EINTR if stopped, or -errno. */
static int read_at(struct fl_xzb *x, long bn, unsigned char *buf, size_t len, uint64_t off)
{
	const struct xblk *b = &x->b[bn];
	size_t got = 0;
	int rc = 0;

	while (got < len) {
		ssize_t n = pread(x->fd, buf + got, len - got, (off_t)(b->coff + off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EBADMSG;
			break;
		}
		got += (size_t)n;
	}
	pthread_mutex_lock(&x->mu);
	x->in_bytes += got;
	if (rc == -EBADMSG)
		set_err(x, rc, "truncated", bn, "the file ends inside the block");
	else if (rc)
		set_err(x, rc, "cannot read", bn, strerror(-rc));
	else if (x->stop)
		rc = -EINTR;
	pthread_mutex_unlock(&x->mu);
	return rc;
}

static const char *lzma_detail(lzma_ret r)
{
	switch (r) {
	case LZMA_OPTIONS_ERROR: return "unsupported options";
	case LZMA_UNSUPPORTED_CHECK: return "unsupported integrity check";
	default: return "data error";
	}
}

/*
 * Decodes block bn into out, reading its compressed bytes IN_CHUNK at a time into in. Looks
 * at the stop flag between chunks so that closing the reader does not wait for whole blocks.
 */
static int decode_block(struct fl_xzb *x, long bn, unsigned char *out, unsigned char *in)
{
	const struct xblk *b = &x->b[bn];
	lzma_filter filters[LZMA_FILTERS_MAX + 1];
	lzma_stream st = LZMA_STREAM_INIT;
	lzma_block blk;
	size_t n0 = b->csize < IN_CHUNK ? (size_t)b->csize : IN_CHUNK;
	uint64_t cpos = n0;
	lzma_ret r;
	int rc;

	rc = read_at(x, bn, in, n0, 0);
	if (rc)
		return rc;
	memset(&blk, 0, sizeof(blk));
	for (size_t i = 0; i <= LZMA_FILTERS_MAX; i++)
		filters[i] = (lzma_filter){ .id = LZMA_VLI_UNKNOWN, .options = NULL };
	blk.version = 1;
	blk.check = b->check;
	blk.filters = filters;
	blk.header_size = lzma_block_header_size_decode(in[0]);
	/* 0 marks the index, not a block: the index and the file disagree. */
	r = in[0] == 0 || blk.header_size > n0 ? LZMA_DATA_ERROR :
	    lzma_block_header_decode(&blk, NULL, in);
	if (r == LZMA_OK)
		r = lzma_block_compressed_size(&blk, b->unpadded);
	if (r == LZMA_OK && blk.uncompressed_size != LZMA_VLI_UNKNOWN &&
	    blk.uncompressed_size != b->usize)
		r = LZMA_DATA_ERROR;
	if (r == LZMA_OK) {
		blk.uncompressed_size = b->usize; /* the decoder checks it */
		r = lzma_block_decoder(&st, &blk);
	}
	/* The decoder keeps what it needs: the options go now. */
	for (size_t i = 0; i < LZMA_FILTERS_MAX && filters[i].id != LZMA_VLI_UNKNOWN; i++)
		free(filters[i].options);
	st.next_in = in + blk.header_size;
	st.avail_in = n0 - blk.header_size;
	while (r == LZMA_OK) {
		uint64_t room = b->usize - st.total_out;

		if (st.avail_in == 0 && cpos < b->csize) {
			size_t want = b->csize - cpos < IN_CHUNK ? (size_t)(b->csize - cpos) :
								   IN_CHUNK;

			rc = read_at(x, bn, in, want, cpos);
			if (rc)
				break;
			cpos += want;
			st.next_in = in;
			st.avail_in = want;
		} else if (stopped(x)) {
			rc = -EINTR;
			break;
		}
		st.next_out = out + st.total_out;
		st.avail_out = room < OUT_CHUNK ? (size_t)room : OUT_CHUNK;
		r = lzma_code(&st, cpos == b->csize ? LZMA_FINISH : LZMA_RUN);
	}
	if (!rc && r == LZMA_STREAM_END && st.total_out != b->usize)
		r = LZMA_DATA_ERROR;
	lzma_end(&st);
	if (rc || r == LZMA_STREAM_END)
		return rc;
	rc = r == LZMA_MEM_ERROR ? -ENOMEM : -EBADMSG;
	pthread_mutex_lock(&x->mu);
	if (rc == -ENOMEM)
		set_err(x, rc, "out of memory decoding", bn, NULL);
	else
		set_err(x, rc, "corrupt", bn, lzma_detail(r));
	pthread_mutex_unlock(&x->mu);
	return rc;
}

static void *worker(void *arg)
{
	struct xworker *w = arg;
	struct fl_xzb *x = w->x;

	pthread_mutex_lock(&x->mu);
	for (;;) {
		struct xslot *s;
		long k;
		int rc;

		if (x->stop || x->next >= x->nneeded || x->errcode)
			break;
		k = x->next++;
		s = &x->slot[k % x->nslot];
		/*
		 * Wait for this block's turn, not merely for a free slot: a later block that maps
		 * to the same slot must not take it first, or the reader waits for k forever.
		 */
		while (s->turn != k && !x->stop && !x->errcode)
			pthread_cond_wait(&x->cv, &x->mu);
		if (x->stop || x->errcode)
			break;
		s->k = k;
		s->ready = false;
		pthread_mutex_unlock(&x->mu);
		rc = decode_block(x, x->needed[k], s->out, w->in);
		pthread_mutex_lock(&x->mu);
		s->err = rc;
		s->ready = true;
		pthread_cond_broadcast(&x->cv);
	}
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

void fl_xzb_stop(struct fl_xzb *x)
{
	if (!x)
		return;
	pthread_mutex_lock(&x->mu);
	x->stop = true;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
}

void fl_xzb_close(struct fl_xzb *x)
{
	if (!x)
		return;
	fl_xzb_stop(x);
	for (unsigned int i = 0; i < x->nthr; i++)
		pthread_join(x->th[i], NULL);
	for (unsigned int i = 0; i < MAX_THREADS; i++)
		free(x->w[i].in);
	for (unsigned int i = 0; x->slot && i < x->nslot; i++)
		free(x->slot[i].out);
	free(x->slot);
	free(x->needed);
	free(x->b);
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->cv);
	free(x);
}

int fl_xzb_open(int fd, const char *path, uint64_t fsize, int threads,
		bool (*wanted)(void *user, uint64_t a, uint64_t b), void *user,
		struct fl_xzb **out, struct fl_err *e)
{
	struct fl_xzb *x;
	lzma_index *idx;
	lzma_index_iter it;
	uint64_t maxb = 0;
	size_t i;

	*out = NULL;
	idx = read_index(fd, fsize);
	if (!idx)
		return 0;
	if (lzma_index_block_count(idx) < 2) {
		lzma_index_end(idx, NULL);
		return 0;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		lzma_index_end(idx, NULL);
		return fl_err_set(e, -ENOMEM, "out of memory");
	}
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cv, NULL);
	x->fd = fd;
	x->path = path;
	x->nb = (size_t)lzma_index_block_count(idx);
	x->b = calloc(x->nb, sizeof(*x->b));
	x->needed = calloc(x->nb, sizeof(*x->needed));
	if (!x->b || !x->needed) {
		lzma_index_end(idx, NULL);
		goto nomem;
	}
	lzma_index_iter_init(&it, idx);
	for (i = 0; i < x->nb && !lzma_index_iter_next(&it, LZMA_INDEX_ITER_BLOCK); i++) {
		struct xblk *b = &x->b[i];

		b->coff = it.block.compressed_file_offset;
		b->csize = it.block.total_size;
		b->unpadded = it.block.unpadded_size;
		b->uoff = it.block.uncompressed_file_offset;
		b->usize = it.block.uncompressed_size;
		b->check = it.stream.flags->check;
		b->need = -1;
		if (b->usize > maxb)
			maxb = b->usize;
		if (b->usize && wanted(user, b->uoff, b->uoff + b->usize)) {
			b->need = x->nneeded;
			x->needed[x->nneeded++] = (long)i;
		}
	}
	x->total = lzma_index_uncompressed_size(idx);
	lzma_index_end(idx, NULL);
	if (i != x->nb || maxb > MAX_BLOCK) {
		fl_xzb_close(x);
		return 0; /* not for us: the streaming decoder takes it */
	}
	x->nthr = threads > 0 ? (unsigned int)threads : lzma_cputhreads();
	if (x->nthr == 0)
		x->nthr = 1;
	if (x->nthr > MAX_THREADS)
		x->nthr = MAX_THREADS;
	/* Each slot holds a whole block: keep the slots within a memory budget. */
	while (x->nthr > 1 && (x->nthr + 1) * maxb > SLOT_BUDGET)
		x->nthr--;
	x->nslot = x->nthr + 1;
	x->slot = calloc(x->nslot, sizeof(*x->slot));
	if (!x->slot)
		goto nomem;
	for (i = 0; i < x->nslot; i++) {
		x->slot[i].k = -1;
		x->slot[i].turn = (long)i;
		x->slot[i].out = malloc(maxb ? maxb : 1);
		if (!x->slot[i].out)
			goto nomem;
	}
	for (i = 0; i < x->nthr; i++) {
		x->w[i].x = x;
		x->w[i].in = malloc(IN_CHUNK);
		if (!x->w[i].in)
			goto nomem;
	}
	for (i = 0; i < x->nthr; i++) {
		if (pthread_create(&x->th[i], NULL, worker, &x->w[i])) {
			x->nthr = (unsigned int)i;
			fl_xzb_close(x);
			return fl_err_set(e, -EAGAIN, "cannot start the xz decoder threads");
		}
	}
	*out = x;
	return 1;
nomem:
	x->nthr = 0; /* no thread started yet */
	fl_xzb_close(x);
	return fl_err_set(e, -ENOMEM, "out of memory");
}

long fl_xzb_read(struct fl_xzb *x, void *buf, size_t len, struct fl_err *e)
{
	unsigned char *p = buf;
	size_t done = 0;

	while (done < len && x->pos < x->total) {
		const struct xblk *b;
		uint64_t in_blk, n;

		while (x->bi < x->nb && x->pos >= x->b[x->bi].uoff + x->b[x->bi].usize)
			x->bi++;
		if (x->bi == x->nb)
			break;
		b = &x->b[x->bi];
		in_blk = x->pos - b->uoff;
		n = b->usize - in_blk;
		if (n > len - done)
			n = len - done;
		if (b->need < 0) {
			memset(p + done, 0, (size_t)n); /* unmapped: never written */
		} else {
			struct xslot *s = &x->slot[b->need % x->nslot];

			pthread_mutex_lock(&x->mu);
			while (!(s->k == b->need && s->ready) && !x->errcode && !x->stop)
				pthread_cond_wait(&x->cv, &x->mu);
			/* A block decoded before a later one failed is still delivered. */
			if (!(s->k == b->need && s->ready && !s->err)) {
				int code = x->errcode;

				pthread_mutex_unlock(&x->mu);
				/* errmsg is complete once errcode is seen under the lock, and stays */
				if (code)
					return fl_err_set(e, code, "%s", x->errmsg);
				return fl_err_set(e, -EINTR, "decoding of xz stream '%s' "
						  "stopped", x->path);
			}
			pthread_mutex_unlock(&x->mu);
			memcpy(p + done, s->out + in_blk, (size_t)n);
			if (in_blk + n == b->usize) {
				pthread_mutex_lock(&x->mu);
				s->k = -1;
				s->ready = false;
				s->turn += (long)x->nslot;
				pthread_cond_broadcast(&x->cv);
				pthread_mutex_unlock(&x->mu);
			}
		}
		done += (size_t)n;
		x->pos += n;
	}
	return (long)done;
}

uint64_t fl_xzb_bytes_in(struct fl_xzb *x)
{
	uint64_t n;

	pthread_mutex_lock(&x->mu);
	n = x->in_bytes;
	pthread_mutex_unlock(&x->mu);
	return n;
}

uint64_t fl_xzb_skipped(const struct fl_xzb *x)
{
	uint64_t n = 0;

	for (size_t i = 0; i < x->nb; i++)
		if (x->b[i].need < 0)
			n += x->b[i].usize;
	return n;
}
