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
 * the slot budget) are left to liblzma's streaming decoder, whose errors are the reference.
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

struct xblk {
	uint64_t coff, csize;  /* the whole block in the file: header, data, padding, check */
	uint64_t uoff, usize;
	uint64_t unpadded;
	lzma_check check;
	long need;             /* index among the needed blocks, or -1 */
};

struct xslot {
	long k;                /* needed-block index held, -1 if free */
	bool ready;
	int err;
	unsigned char *out;
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

	if (lzma_file_info_decoder(&st, &idx, UINT64_MAX, fsize) != LZMA_OK)
		return NULL;
	for (;;) {
		if (st.avail_in == 0) {
			ssize_t n = pread(fd, buf, sizeof(buf), (off_t)pos);

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

static void set_err(struct fl_xzb *x, int code, const char *what, const struct xblk *b,
		    long bn, int lret)
{
	if (x->errcode)
		return;
	x->errcode = code;
	snprintf(x->errmsg, sizeof(x->errmsg), "%s xz stream '%s': block %ld (decompressed "
		 "bytes %llu-%llu)%s%s", what, x->path, bn + 1, (unsigned long long)b->uoff,
		 (unsigned long long)(b->uoff + b->usize - 1), lret ? ", liblzma error " : "",
		 lret == LZMA_DATA_ERROR ? "data error" : lret == LZMA_OPTIONS_ERROR ?
		 "unsupported options" : lret ? "in the block" : "");
}

static int decode_block(struct fl_xzb *x, long bn, unsigned char *out)
{
	const struct xblk *b = &x->b[bn];
	lzma_filter filters[LZMA_FILTERS_MAX + 1];
	lzma_block blk;
	unsigned char *in = malloc(b->csize);
	size_t in_pos, out_pos = 0, got = 0;
	lzma_ret r;
	int rc = 0;

	if (!in) {
		pthread_mutex_lock(&x->mu);
		set_err(x, -ENOMEM, "out of memory decoding", b, bn, 0);
		pthread_mutex_unlock(&x->mu);
		return -ENOMEM;
	}
	while (got < b->csize) {
		ssize_t n = pread(x->fd, in + got, b->csize - got, (off_t)(b->coff + got));

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
	if (rc)
		set_err(x, rc, rc == -EBADMSG ? "truncated" : "unreadable", b, bn, 0);
	pthread_mutex_unlock(&x->mu);
	if (rc) {
		free(in);
		return rc;
	}
	memset(&blk, 0, sizeof(blk));
	for (size_t i = 0; i <= LZMA_FILTERS_MAX; i++)
		filters[i] = (lzma_filter){ .id = LZMA_VLI_UNKNOWN, .options = NULL };
	blk.version = 1;
	blk.check = b->check;
	blk.filters = filters;
	blk.header_size = lzma_block_header_size_decode(in[0]);
	r = in[0] == 0 || blk.header_size > b->csize ? LZMA_DATA_ERROR :
	    lzma_block_header_decode(&blk, NULL, in);
	if (r == LZMA_OK)
		r = lzma_block_compressed_size(&blk, b->unpadded);
	if (r == LZMA_OK && blk.uncompressed_size != LZMA_VLI_UNKNOWN &&
	    blk.uncompressed_size != b->usize)
		r = LZMA_DATA_ERROR;
	if (r == LZMA_OK) {
		in_pos = blk.header_size;
		r = lzma_block_buffer_decode(&blk, NULL, in, &in_pos, b->csize, out, &out_pos,
					     b->usize);
		if (r == LZMA_OK && out_pos != b->usize)
			r = LZMA_DATA_ERROR;
	}
	for (size_t i = 0; i < LZMA_FILTERS_MAX && filters[i].id != LZMA_VLI_UNKNOWN; i++)
		free(filters[i].options);
	free(in);
	if (r == LZMA_OK)
		return 0;
	rc = r == LZMA_MEM_ERROR ? -ENOMEM : -EBADMSG;
	pthread_mutex_lock(&x->mu);
	set_err(x, rc, "corrupt", b, bn, (int)r);
	pthread_mutex_unlock(&x->mu);
	return rc;
}

static void *worker(void *arg)
{
	struct fl_xzb *x = arg;

	pthread_mutex_lock(&x->mu);
	for (;;) {
		struct xslot *s;
		long k;
		int rc;

		if (x->stop || x->next >= x->nneeded || x->errcode)
			break;
		k = x->next++;
		s = &x->slot[k % x->nslot];
		while (s->k != -1 && !x->stop)
			pthread_cond_wait(&x->cv, &x->mu);
		if (x->stop)
			break;
		s->k = k;
		s->ready = false;
		pthread_mutex_unlock(&x->mu);
		rc = decode_block(x, x->needed[k], s->out);
		pthread_mutex_lock(&x->mu);
		s->err = rc;
		s->ready = true;
		pthread_cond_broadcast(&x->cv);
	}
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

void fl_xzb_close(struct fl_xzb *x)
{
	if (!x)
		return;
	pthread_mutex_lock(&x->mu);
	x->stop = true;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	for (unsigned int i = 0; i < x->nthr; i++)
		pthread_join(x->th[i], NULL);
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
	if (!x->b || !x->needed)
		goto nomem;
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
		x->slot[i].out = malloc(maxb ? maxb : 1);
		if (!x->slot[i].out)
			goto nomem;
	}
	for (i = 0; i < x->nthr; i++) {
		if (pthread_create(&x->th[i], NULL, worker, x)) {
			x->nthr = (unsigned int)i;
			fl_xzb_close(x);
			return fl_err_set(e, -EAGAIN, "cannot start the xz decoder threads");
		}
	}
	*out = x;
	return 1;
nomem:
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
			while (!(s->k == b->need && s->ready) && !x->errcode)
				pthread_cond_wait(&x->cv, &x->mu);
			if (x->errcode || s->err) {
				int code = x->errcode ? x->errcode : s->err;

				pthread_mutex_unlock(&x->mu);
				return fl_err_set(e, code, "%s", x->errmsg);
			}
			pthread_mutex_unlock(&x->mu);
			memcpy(p + done, s->out + in_blk, (size_t)n);
			if (in_blk + n == b->usize) {
				pthread_mutex_lock(&x->mu);
				s->k = -1;
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
