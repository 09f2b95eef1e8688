// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for rig-file loading as the CLI does it (host/cli/rigor.c
 * cli_load_desc, run.c list_rigs): the input is the Lua source of a rig file, read by
 * rigl_load_rigfile() and checked by rig_desc_validate(). Every outcome but "out of
 * memory" is a description with a list of problems; validating twice gives the same list.
 */
#include "fuzzlua.h"

static struct rig_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ctx = fuzz_ctx_new();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rig_desc *d = NULL;
	char path[64], *first;
	int fd, rc, rc2;

	if (size > 64 << 10)
		return -1;
	fd = fuzz_memfd(data, size, 0, path, sizeof(path));
	rc = rigl_load_rigfile(ctx, path, &d);
	close(fd);
	if (rc < 0) {
		if (rc != RIG_E_NOMEM || d)
			abort();
		return 0;
	}
	rc = rig_desc_validate(d);
	if (rc < 0 && rc != RIG_E_NOMEM)
		abort();
	if (fuzz_verbose())
		fprintf(stderr, "rigfile: %d problem(s)\n%s", rc, rig_desc_problems(d));
	first = strdup(rig_desc_problems(d));
	if (!first)
		abort();
	if (rc > 0 && !first[0])
		abort();
	if (rc == 0) {
		/* a valid description names the rig */
		if (!rig_desc_name(d))
			abort();
		(void)rig_desc_device_type(d);
	}
	rc2 = rig_desc_validate(d);
	if (rc2 != rc || strcmp(first, rig_desc_problems(d)))
		abort();
	free(first);
	rig_desc_free(d);
	return 0;
}
