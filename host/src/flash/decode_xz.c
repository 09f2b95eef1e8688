/* SPDX-License-Identifier: MIT */
/*
 * xz: liblzma's threaded stream decoder, or, with a bmap over a multi-block file, the
 * block-parallel reader of xzblocks.c that decodes only the blocks holding mapped data.
 */
#include <errno.h>
#include <lzma.h>
#include <string.h>

#include "flash_internal.h"

struct xz {
	lzma_stream x;             /* zeroed is LZMA_STREAM_INIT */
	struct fl_xzb *xzb;
};

static int xz_open(struct fl_src *s, int threads, struct fl_err *e)
{
	struct xz *z = s->priv;
	lzma_mt mt;

	memset(&mt, 0, sizeof(mt));
	mt.threads = threads > 0 ? (uint32_t)threads : lzma_cputhreads();
	if (mt.threads == 0)
		mt.threads = 1;
	mt.flags = LZMA_CONCATENATED;
	/* A few small reads at the end of the file; 0 when the tail is unreadable. */
	if (s->fd >= 0)   /* a URL's index is at its end, not yet downloaded */
		s->size_index = fl_xz_uncompressed_size(s->fd, s->file_size);
	mt.memlimit_threading = UINT64_C(1) << 30;
	mt.memlimit_stop = UINT64_MAX;
	if (lzma_stream_decoder_mt(&z->x, &mt) != LZMA_OK)
		return fl_err_set(e, -ENOMEM, "cannot initialise the xz decoder");
	return 0;
}

/* True if any mapped block of the bmap lies in [a, b) of the image. */
static bool map_wanted(void *user, uint64_t a, uint64_t b)
{
	const struct fl_bmap *bm = user;
	size_t lo = 0, hi = bm->n;

	/* first range whose end is past a */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((bm->r[mid].last + 1) * bm->block_size <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < bm->n && bm->r[lo].first * bm->block_size < b;
}

static int xz_set_map(struct fl_src *s, const struct fl_bmap *bm, int threads, struct fl_err *e)
{
	struct xz *z = s->priv;
	int rc;

	/* a URL is read in order: every block is decoded, the bmap still limits the writes */
	if (s->in_bytes || z->xzb || s->fd < 0)
		return 0;
	rc = fl_xzb_open(s->fd, s->path, s->file_size, threads, map_wanted, (void *)bm, &z->xzb,
			 e);
	if (z->xzb)
		fl_src_unhashed(s); /* blocks are read out of order, the unmapped ones never */
	return rc < 0 ? rc : 0;
}

static void xz_stop(struct fl_src *s)
{
	struct xz *z = s->priv;

	fl_xzb_stop(z->xzb);
}

static uint64_t xz_skipped(const struct fl_src *s)
{
	const struct xz *z = s->priv;

	return z->xzb ? fl_xzb_skipped(z->xzb) : 0;
}

static uint64_t xz_bytes_in(const struct fl_src *s)
{
	const struct xz *z = s->priv;

	return z->xzb ? fl_xzb_bytes_in(z->xzb) : s->in_bytes;
}

static long xz_read(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	struct xz *z = s->priv;
	lzma_stream *x = &z->x;
	lzma_ret r;
	int f;

	if (z->xzb)
		return fl_xzb_read(z->xzb, buf, len, e);

	x->next_out = buf;
	x->avail_out = len;
	while (x->avail_out && !s->done) {
		if (x->avail_in == 0) {
			f = fl_src_fill(s, e);
			if (f < 0)
				return f;
			x->next_in = s->in + s->in_pos;
			x->avail_in = s->in_len - s->in_pos;
			s->in_pos = s->in_len;
		}
		r = lzma_code(x, s->in_eof && x->avail_in == 0 ? LZMA_FINISH : LZMA_RUN);
		if (r == LZMA_STREAM_END) {
			s->done = true;
		} else if (r == LZMA_BUF_ERROR) {
			return fl_err_set(e, -EBADMSG, "truncated xz stream '%s'", s->path);
		} else if (r != LZMA_OK) {
			return fl_err_set(e, r == LZMA_MEM_ERROR ? -ENOMEM : -EBADMSG,
					  "corrupt xz stream '%s' (liblzma error %d%s)", s->path,
					  (int)r, r == LZMA_DATA_ERROR ? ", data error" :
					  r == LZMA_FORMAT_ERROR ? ", not xz" : "");
		} else if (s->in_eof && x->avail_in == 0 && x->avail_out) {
			/* LZMA_FINISH with no progress means the input ended early. */
			if (x->avail_out == len)
				return fl_err_set(e, -EBADMSG, "truncated xz stream '%s'",
						  s->path);
			break;
		}
	}
	return (long)(len - x->avail_out);
}

static void xz_close(struct fl_src *s)
{
	struct xz *z = s->priv;

	lzma_end(&z->x);
	fl_xzb_close(z->xzb);
}

const struct fl_decoder_ops fl_dec_xz = {
	.name = "xz",
	.fmt = RIG_FLASH_FMT_XZ,
	.priv_size = sizeof(struct xz),
	.open = xz_open,
	.read = xz_read,
	.close = xz_close,
	.set_map = xz_set_map,
	.stop = xz_stop,
	.skipped = xz_skipped,
	.bytes_in = xz_bytes_in,
};
