/* SPDX-License-Identifier: MIT */
/* bzip2: libbz2, one thread; concatenated streams (pbzip2, lbzip2) continue. */
#include <bzlib.h>
#include <errno.h>
#include <string.h>

#include "flash_internal.h"

struct bz {
	bz_stream b;
	bool init;
};

static int bz_open(struct fl_src *s, int threads, struct fl_err *e)
{
	struct bz *z = s->priv;

	if (BZ2_bzDecompressInit(&z->b, 0, 0) != BZ_OK)
		return fl_err_set(e, -ENOMEM, "cannot initialise the bzip2 decoder");
	z->init = true;
	return 0;
}

static long bz_read(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	struct bz *z = s->priv;
	bz_stream *b = &z->b;
	int r, f;

	b->next_out = (char *)buf;
	b->avail_out = (unsigned int)len;
	while (b->avail_out && !s->done) {
		f = fl_src_fill(s, e);
		if (f < 0)
			return f;
		if (f == 0)
			return fl_err_set(e, -EBADMSG, "truncated bzip2 stream '%s'", s->path);
		b->next_in = (char *)s->in + s->in_pos;
		b->avail_in = (unsigned int)(s->in_len - s->in_pos);
		r = BZ2_bzDecompress(b);
		s->in_pos = s->in_len - b->avail_in;
		if (r == BZ_STREAM_END) {
			if (fl_src_fill(s, e) > 0) {
				unsigned int left = b->avail_out;

				BZ2_bzDecompressEnd(b);
				z->init = false;
				memset(b, 0, sizeof(*b));
				if (BZ2_bzDecompressInit(b, 0, 0) != BZ_OK)
					return fl_err_set(e, -ENOMEM, "bzip2 re-init failed");
				z->init = true;
				b->next_out = (char *)buf + (len - left);
				b->avail_out = left;
			} else {
				s->done = true;
			}
		} else if (r != BZ_OK) {
			return fl_err_set(e, -EBADMSG, "corrupt bzip2 stream '%s' (error %d)",
					  s->path, r);
		}
	}
	return (long)(len - b->avail_out);
}

static void bz_close(struct fl_src *s)
{
	struct bz *z = s->priv;

	if (z->init)
		BZ2_bzDecompressEnd(&z->b);
}

const struct fl_decoder_ops fl_dec_bzip2 = {
	.name = "bzip2",
	.fmt = RIG_FLASH_FMT_BZIP2,
	.priv_size = sizeof(struct bz),
	.open = bz_open,
	.read = bz_read,
	.close = bz_close,
};
