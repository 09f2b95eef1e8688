/* SPDX-License-Identifier: MIT */
/* Raw images: the file is the image; refused before writing unless it is whole sectors. */
#include <errno.h>

#include "flash_internal.h"

static int raw_open(struct fl_src *s, int threads, struct fl_err *e)
{
	s->size_hint = s->file_size;
	if (s->file_size % 512)
		return fl_err_set(e, -EINVAL, "'%s' is %llu bytes, not a whole number of "
				  "512-byte sectors, so it is not a disk image: check it is "
				  "the right file (an image cut short can be padded with "
				  "'truncate -s %%512 FILE', at your own risk)", s->path,
				  (unsigned long long)s->file_size);
	/* a URL that gave no length (0): its size is checked when its end arrives */
	return fl_image_check_head(s->in, s->head_len, s->path, s->fmt, e);
}

static long raw_read(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	return fl_src_read_full(s, buf, len, -1, e);
}

const struct fl_decoder_ops fl_dec_raw = {
	.name = "raw",
	.fmt = RIG_FLASH_FMT_RAW,
	.open = raw_open,
	.read = raw_read,
};
