/* SPDX-License-Identifier: MIT */
/*
 * gzip with zlib, for builds without ISA-L. The CRC-32 is not computed here
 * (inflateValidate off): the consumer thread checks it against the trailers recorded
 * below, which takes about 15 % of the work off the decoder thread, the bottleneck.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "flash_internal.h"

struct gz {
	z_stream z;
	bool z_init;
	uint64_t dec_off;          /* decompressed bytes returned so far */
	pthread_mutex_t mu;        /* members are read by the consumer thread */
	struct fl_gz_member *m;
	size_t n, cap;
};

static int gz_open(struct fl_src *s, int threads, struct fl_err *e)
{
	struct gz *g = s->priv;

	pthread_mutex_init(&g->mu, NULL);
	/* 15 + 16: gzip wrapper */
	if (inflateInit2(&g->z, 15 + 16) != Z_OK)
		return fl_err_set(e, -ENOMEM, "cannot initialise zlib");
	g->z_init = true;
	if (inflateValidate(&g->z, 0) != Z_OK)
		return fl_err_set(e, -ENOMEM, "cannot initialise zlib");
	return 0;
}

/* Records a finished gzip member: its end offset and the CRC/ISIZE from its trailer. */
static int gz_record(struct fl_src *s, uint64_t end, struct fl_err *e)
{
	struct gz *g = s->priv;
	unsigned char t[8];
	size_t k = s->in_pos < 8 ? 8 - s->in_pos : 0;
	struct fl_gz_member *m;

	/* The trailer is the 8 bytes just consumed: partly in hist if the buffer is new. */
	memcpy(t, s->hist + 8 - k, k);
	memcpy(t + k, s->in + s->in_pos - (8 - k), 8 - k);
	pthread_mutex_lock(&g->mu);
	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 16;
		void *p = realloc(g->m, cap * sizeof(*g->m));

		if (!p) {
			pthread_mutex_unlock(&g->mu);
			return fl_err_set(e, -ENOMEM, "out of memory");
		}
		g->m = p;
		g->cap = cap;
	}
	m = &g->m[g->n++];
	m->end = end;
	m->crc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
		 (uint32_t)t[3] << 24;
	m->isize = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 |
		   (uint32_t)t[7] << 24;
	pthread_mutex_unlock(&g->mu);
	return 0;
}

static bool gz_member(struct fl_src *s, size_t i, struct fl_gz_member *m)
{
	struct gz *g = s->priv;
	bool ok = false;

	pthread_mutex_lock(&g->mu);
	if (i < g->n) {
		*m = g->m[i];
		ok = true;
	}
	pthread_mutex_unlock(&g->mu);
	return ok;
}

static long gz_read(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	struct gz *g = s->priv;
	z_stream *z = &g->z;
	int r;

	z->next_out = buf;
	z->avail_out = (uInt)len;
	while (z->avail_out && !s->done) {
		r = fl_src_fill(s, e);
		if (r < 0)
			return r;
		if (r == 0) {
			if (s->in_bytes == 0)
				return fl_err_set(e, -EBADMSG, "empty gzip file '%s'", s->path);
			return fl_err_set(e, -EBADMSG,
					  "truncated gzip stream '%s' (ends at compressed offset "
					  "%llu)", s->path, (unsigned long long)s->in_bytes);
		}
		z->next_in = s->in + s->in_pos;
		z->avail_in = (uInt)(s->in_len - s->in_pos);
		r = inflate(z, Z_NO_FLUSH);
		s->in_pos = s->in_len - z->avail_in;
		if (r == Z_STREAM_END) {
			r = gz_record(s, g->dec_off + (len - z->avail_out), e);
			if (r < 0)
				return r;
			/* Concatenated members (pigz -i, cat a.gz b.gz) continue. */
			if (fl_src_fill(s, e) > 0) {
				if (inflateReset(z) != Z_OK)
					return fl_err_set(e, -EBADMSG, "gzip reset failed");
			} else {
				s->done = true;
			}
		} else if (r != Z_OK && r != Z_BUF_ERROR) {
			return fl_err_set(e, -EBADMSG, "corrupt gzip stream '%s' near compressed "
					  "offset %llu: %s", s->path,
					  (unsigned long long)(s->in_bytes - (s->in_len - s->in_pos)),
					  z->msg ? z->msg : "data error");
		}
	}
	g->dec_off += len - z->avail_out;
	return (long)(len - z->avail_out);
}

static void gz_close(struct fl_src *s)
{
	struct gz *g = s->priv;

	if (g->z_init)
		inflateEnd(&g->z);
	pthread_mutex_destroy(&g->mu);
	free(g->m);
}

const struct fl_decoder_ops fl_dec_gzip = {
	.name = "gzip-zlib",
	.fmt = RIG_FLASH_FMT_GZIP,
	.priv_size = sizeof(struct gz),
	.open = gz_open,
	.read = gz_read,
	.close = gz_close,
	.gz_member = gz_member,
};
