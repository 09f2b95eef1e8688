/* SPDX-License-Identifier: MIT */
/*
 * gzip and zip's raw deflate with ISA-L, whose inflate is about 3x zlib's and checks CRC-32
 * and ISIZE itself. Built only with libisal (host/flash.mk defines HAVE_ISAL).
 */
#ifdef HAVE_ISAL
#include <errno.h>
#include <isa-l/igzip_lib.h>

#include "flash_internal.h"

/* Hands the source's unread input to the inflate state when it has used up its own. */
static int feed(struct inflate_state *st, struct fl_src *s, struct fl_err *e)
{
	int f;

	if (st->avail_in)
		return 1;
	f = fl_src_fill(s, e);
	if (f < 0)
		return f;
	st->next_in = s->in + s->in_pos;
	st->avail_in = (uint32_t)(s->in_len - s->in_pos);
	s->in_pos = s->in_len;
	return f;
}

static int gzi_open(struct fl_src *s, int threads, struct fl_err *e)
{
	struct inflate_state *st = s->priv;

	isal_inflate_init(st);
	st->crc_flag = ISAL_GZIP;
	return 0;
}

static long gzi_read(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	struct inflate_state *st = s->priv;
	int r, f;

	st->next_out = buf;
	st->avail_out = (uint32_t)len;
	while (st->avail_out && !s->done) {
		uint32_t before = st->avail_out;

		f = feed(st, s, e);
		if (f < 0)
			return f;
		r = isal_inflate(st);
		if (r < 0)
			return fl_err_set(e, -EBADMSG, "corrupt gzip stream '%s' near compressed "
					  "offset %llu: %s", s->path,
					  (unsigned long long)(s->in_bytes - st->avail_in),
					  r == ISAL_INCORRECT_CHECKSUM ? "CRC-32 or length mismatch" :
					  r == ISAL_INVALID_WRAPPER ? "bad header" : "invalid data");
		if (st->block_state == ISAL_BLOCK_FINISH) {
			/* Concatenated members (pigz -i, cat a.gz b.gz) continue. */
			uint8_t *ni = st->next_in;
			uint32_t ai = st->avail_in;

			if (ai == 0 && fl_src_fill(s, e) > 0) {
				ni = s->in + s->in_pos;
				ai = (uint32_t)(s->in_len - s->in_pos);
				s->in_pos = s->in_len;
			}
			if (ai) {
				uint8_t *no = st->next_out;
				uint32_t ao = st->avail_out;

				isal_inflate_reset(st);
				st->crc_flag = ISAL_GZIP;
				st->next_in = ni;
				st->avail_in = ai;
				st->next_out = no;
				st->avail_out = ao;
			} else {
				s->done = true;
			}
		} else if (s->in_eof && st->avail_in == 0 && st->avail_out == before) {
			if (s->in_bytes == 0)
				return fl_err_set(e, -EBADMSG, "empty gzip file '%s'", s->path);
			return fl_err_set(e, -EBADMSG, "truncated gzip stream '%s' (ends at "
					  "compressed offset %llu)", s->path,
					  (unsigned long long)s->in_bytes);
		}
	}
	return (long)(len - st->avail_out);
}

const struct fl_decoder_ops fl_dec_gzip_isal = {
	.name = "gzip-isal",
	.fmt = RIG_FLASH_FMT_GZIP,
	.priv_size = sizeof(struct inflate_state),
	.open = gzi_open,
	.read = gzi_read,
};

size_t fl_zip_inflate_size(void)
{
	return sizeof(struct inflate_state);
}

void fl_zip_inflate_init(void *state)
{
	struct inflate_state *st = state;

	isal_inflate_init(st);
	st->crc_flag = ISAL_GZIP_NO_HDR; /* raw deflate, CRC-32 computed */
}

int fl_zip_inflate(void *state, struct fl_src *s, unsigned char *buf, size_t len, size_t *got,
		   bool *finished, uint32_t *crc, struct fl_err *e)
{
	struct inflate_state *st = state;
	uint32_t before;
	int r, f;

	f = feed(st, s, e);
	if (f < 0)
		return f;
	st->next_out = buf + *got;
	st->avail_out = (uint32_t)(len - *got);
	before = st->avail_out;
	r = isal_inflate(st);
	*got += before - st->avail_out;
	if (r < 0)
		return fl_err_set(e, -EBADMSG, "corrupt zip entry in '%s': invalid deflate data",
				  s->path);
	if (st->block_state == ISAL_BLOCK_FINISH) {
		*crc = st->crc;
		*finished = true;
	} else if (st->avail_in == 0 && s->in_limit == 0 && before == st->avail_out) {
		return fl_err_set(e, -EBADMSG, "truncated zip entry in '%s'", s->path);
	}
	return 0;
}
#endif
