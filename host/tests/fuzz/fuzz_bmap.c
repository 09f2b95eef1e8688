// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the bmap parser: arbitrary bytes go through fl_bmap_parse() as
 * the text of a .bmap file (bmaptool 1.x and 2.x). What it accepts must be a consistent
 * map: ranges in order, inside the image, adding up to the mapped block count.
 */
#include <errno.h>
#include <libxml/parser.h>

#include "../../src/flash/flash_internal.h"
#include "fuzzlua.h"

static void quiet(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	xmlInitParser();
	xmlSetGenericErrorFunc(NULL, quiet);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fl_bmap bm;
	struct fl_err e;
	char err[256];
	uint64_t next = 0, mapped = 0;
	int rc;

	if (size > 1 << 20)
		return -1;
	fl_err_init(&e, err, sizeof(err));
	rc = fl_bmap_parse((const char *)data, size, "fuzz.bmap", &bm, &e);
	if (fuzz_verbose())
		fprintf(stderr, "bmap: %s (version %d.%d, %zu ranges, %llu mapped)\n", rc ? err : "ok",
			bm.major, bm.minor, bm.n, (unsigned long long)bm.mapped_blocks);
	if (rc) {
		/* a failure says why, with a negative errno and a message */
		if (rc > 0 || !err[0] || rc != e.code)
			abort();
		if (bm.r || bm.n)
			abort();
		return 0;
	}
	if (bm.major < 1 || bm.major > 2 || bm.block_size < 512 ||
	    (bm.block_size & (bm.block_size - 1)) || bm.csum == FL_CSUM_NONE)
		abort();
	if ((bm.image_size + bm.block_size - 1) / bm.block_size != bm.blocks)
		abort();
	for (size_t i = 0; i < bm.n; i++) {
		const struct fl_range *r = &bm.r[i];

		if (r->first < next || r->last < r->first || r->last >= bm.blocks)
			abort();
		next = r->last + 1;
		mapped += r->last - r->first + 1;
	}
	if (mapped != bm.mapped_blocks)
		abort();
	fl_bmap_release(&bm);
	return 0;
}
