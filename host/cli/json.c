/* SPDX-License-Identifier: MIT */
/* JSON on stdout: every document the CLI prints is built with jansson (rigor(1), JSON). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_json_print(json_t *doc)
{
	char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;

	json_decref(doc);
	if (!s) {
		cli_error("out of memory");
		return EXIT_INFRA;
	}
	puts(s);
	free(s);
	return 0;
}
