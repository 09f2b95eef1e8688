/* SPDX-License-Identifier: MIT */
/* zstd: libzstd's streaming decoder; the frame header may declare the decoded size. */
#include <errno.h>
#include <unistd.h>
#include <zstd.h>

#include "flash_internal.h"

struct zst {
	ZSTD_DStream *zs;
	size_t last;               /* the last ZSTD_decompressStream() result: 0 at a frame end */
};

static int zst_open(struct fl_src *s, int threads, struct fl_err *e)
{
	struct zst *z = s->priv;
	unsigned long long cs;

	/* the frame header is in the first bytes, read from a file or a URL alike */
	if (s->head_len) {
		cs = ZSTD_getFrameContentSize(s->in, s->head_len < 32 ? s->head_len : 32);
		if (cs != ZSTD_CONTENTSIZE_UNKNOWN && cs != ZSTD_CONTENTSIZE_ERROR)
			s->size_hint = cs;
	}
	z->zs = ZSTD_createDStream();
	if (!z->zs || ZSTD_isError(ZSTD_initDStream(z->zs)))
		return fl_err_set(e, -ENOMEM, "cannot initialise the zstd decoder");
	return 0;
}

static long zst_read(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	struct zst *z = s->priv;
	ZSTD_outBuffer ob = { buf, len, 0 };
	int f;

	while (ob.pos < ob.size) {
		ZSTD_inBuffer ib;
		size_t r;

		f = fl_src_fill(s, e);
		if (f < 0)
			return f;
		if (f == 0) {
			if (z->last != 0 || s->in_bytes == 0)
				return fl_err_set(e, -EBADMSG, "truncated zstd stream '%s'",
						  s->path);
			break;
		}
		ib.src = s->in + s->in_pos;
		ib.size = s->in_len - s->in_pos;
		ib.pos = 0;
		r = ZSTD_decompressStream(z->zs, &ob, &ib);
		s->in_pos += ib.pos;
		if (ZSTD_isError(r))
			return fl_err_set(e, -EBADMSG, "corrupt zstd stream '%s': %s", s->path,
					  ZSTD_getErrorName(r));
		z->last = r;
	}
	return (long)ob.pos;
}

static void zst_close(struct fl_src *s)
{
	struct zst *z = s->priv;

	ZSTD_freeDStream(z->zs);
}

const struct fl_decoder_ops fl_dec_zstd = {
	.name = "zstd",
	.fmt = RIG_FLASH_FMT_ZSTD,
	.priv_size = sizeof(struct zst),
	.open = zst_open,
	.read = zst_read,
	.close = zst_close,
};
