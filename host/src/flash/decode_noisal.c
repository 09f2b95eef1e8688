/* SPDX-License-Identifier: MIT */
/* Without ISA-L a deflated zip entry is left to libarchive (its zlib is as fast as ours). */
#ifndef HAVE_ISAL
#include <errno.h>

#include "flash_internal.h"

size_t fl_zip_inflate_size(void)
{
	return 0;
}

void fl_zip_inflate_init(void *state)
{
}

int fl_zip_inflate(void *state, struct fl_src *s, unsigned char *buf, size_t len, size_t *got,
		   bool *finished, uint32_t *crc, struct fl_err *e)
{
	return fl_err_set(e, -ENOTSUP, "zip deflate without ISA-L");
}
#endif
