/* SPDX-License-Identifier: MIT */
/*
 * rigor run / lua / list: the commands that hand over to Lua (host/lua, rigl.h). Their
 * options are parsed there, by rigor.runner; this file supplies the rig and the errors.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "rigl.h"

#include <jansson.h>

/*
 * Lock and open the selected rig. From then on signals are the Lua runtime's business
 * (it arms and disarms cases), so the context's cancel flag is cleared.
 */
static int open_rig(void *arg, struct rig **rig)
{
	struct cli *c = arg;
	/* cases use the console and the controls together: the whole rig */
	int rc = cli_open_rig_scope(c, RIG_LOCK_ALL);

	if (rc)
		return rc;
	rig_ctx_set_cancel(c->ctx, NULL);
	*rig = c->rig;
	return 0;
}

static void print_error(void *arg, const char *msg)
{
	(void)arg;
	cli_error("%s", msg);
}

static struct rigl_env env_of(struct cli *c, bool with_rig)
{
	return (struct rigl_env){
		.ctx = c->ctx,
		.luadir = cli_lua_dir(),
		.sig = &cli_signal,
		.color = isatty(1) && !getenv("NO_COLOR"),
		.open_rig = with_rig ? open_rig : NULL,
		.error = print_error,
		.arg = c,
	};
}

/* Put the DUT in its safe state after a run or script that did not end cleanly. */
static void make_safe(struct cli *c)
{
	if (!c->rig)
		return;
	rig_ctx_set_cancel(c->ctx, NULL);
	if (rig_safe(c->rig) < 0)
		cli_error("could not put the rig in its safe state: %s", rig_errmsg(c->rig));
}

int cmd_run(struct cli *c, int argc, char **argv)
{
	struct rigl_env env = env_of(c, true);
	int code = rigl_run(&env, argc - 1, argv + 1);

	/* The runner already did this unless it crashed; doing it twice is harmless. */
	if (code == EXIT_INFRA || code >= 128)
		make_safe(c);
	if (cli_signal && code < 128)
		code = cli_signal_exit();
	return code;
}

/* argv of `rigor lua`: everything after FILE belongs to the script, --help included. */
int cmd_lua(struct cli *c, int argc, char **argv)
{
	/* Only a rig asked for explicitly is opened (and locked). */
	struct rigl_env env = env_of(c, c->rig_explicit);
	int code;

	if (argc < 2) {
		cli_error("lua: which script?");
		return EXIT_USAGE;
	}
	code = rigl_script(&env, argc - 1, argv + 1);
	/* interrupted: the DUT is not left powered behind a script that stopped midway */
	if (cli_signal)
		make_safe(c);
	if (cli_signal)
		code = cli_signal_exit();
	return code;
}

/* One rig file of `list rigs`, as a line or (--json) an element of @arr. */
static void list_rig(struct cli *c, const char *name, const char *path, json_t *arr)
{
	struct rig_desc *desc = NULL;
	json_t *caps, *j;
	bool valid;

	if (rigl_load_rigfile(c->ctx, path, &desc) < 0)
		return;
	valid = rig_desc_validate(desc) == 0;
	if (!arr) {
		if (valid)
			printf("  %-14s %-18s %s\n", rig_desc_name(desc),
			       rig_desc_device_type(desc) ? rig_desc_device_type(desc) : "-", path);
		else
			printf("  %-14s %-18s %s (invalid: run 'rigor check %s')\n", name, "-", path,
			       path);
		rig_desc_free(desc);
		return;
	}
	caps = json_array();
	for (size_t i = 0; caps && rig_desc_cap(desc, i); i++)
		json_array_append_new(caps, rig_json_string(rig_desc_cap(desc, i)));
	j = json_pack("{s:o, s:o, s:o, s:o, s:b, s:o}", "name",
		      rig_json_string(valid ? rig_desc_name(desc) : name), "device_type",
		      valid && rig_desc_device_type(desc) ? rig_json_string(rig_desc_device_type(desc))
							  : json_null(),
		      "file", rig_json_string(path), "capabilities", caps ? caps : json_array(), "valid",
		      valid, "problems", rig_json_string(rig_desc_problems(desc)));
	json_array_append_new(arr, j);
	rig_desc_free(desc);
}

/* Every rig file on the rig path, the first of each base name; @arr: JSON, else lines. */
static void list_rigs(struct cli *c, json_t *arr)
{
	const char *const *dirs = cli_rig_dirs();
	char seen[64][256];
	size_t nseen = 0;

	if (!arr)
		printf("rigs:\n");
	for (size_t i = 0; dirs[i] && !cli_signal; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *e;

		while (d && !cli_signal && (e = readdir(d))) {
			size_t l = strlen(e->d_name);
			char path[4200];
			bool dup = false;

			if (l < 5 || strcmp(e->d_name + l - 4, ".lua"))
				continue;
			for (size_t s = 0; s < nseen; s++)
				dup |= !strcmp(seen[s], e->d_name);
			if (dup)
				continue;
			if (nseen < 64)
				snprintf(seen[nseen++], sizeof(seen[0]), "%s", e->d_name);
			snprintf(path, sizeof(path), "%s/%s", dirs[i], e->d_name);
			list_rig(c, e->d_name, path, arr);
		}
		if (d)
			closedir(d);
	}
}

int cmd_list(struct cli *c, int argc, char **argv)
{
	const char *what = argc > 1 && argv[1][0] != '-' && !strchr(argv[1], '/') &&
					   !strstr(argv[1], ".lua")
				   ? argv[1]
				   : "all";
	int first = strcmp(what, "all") ? 2 : 1;
	struct rigl_env env = env_of(c, false);

	for (int i = first; i < argc; i++)
		c->json |= !strcmp(argv[i], "--json");

	if (strcmp(what, "all") && strcmp(what, "rigs") && strcmp(what, "suites") &&
	    strcmp(what, "cases")) {
		cli_error("list: unknown kind '%s' (expected rigs, suites or cases)", what);
		return EXIT_USAGE;
	}
	if (c->json && !strcmp(what, "all")) {
		cli_error("list: with --json, say which: rigs, suites or cases");
		return EXIT_USAGE;
	}
	if (c->json && strcmp(what, "rigs")) {
		/* rigor.runner.cli_list takes --json among its words */
		char **args = calloc((size_t)argc + 1, sizeof(*args));
		int n = 0, code;

		if (!args) {
			cli_error("out of memory");
			return EXIT_INFRA;
		}
		args[n++] = "--json";
		for (int i = first; i < argc; i++)
			args[n++] = argv[i];
		code = rigl_list(&env, n, args, !strcmp(what, "suites"));
		free(args);
		return code;
	}
	if (c->json) {
		json_t *arr = json_array();

		list_rigs(c, arr);
		if (cli_signal) {
			json_decref(arr);
			return cli_signal_exit();
		}
		return cli_json_print(json_pack("{s:s, s:o}", "schema", "rigor.rigs/1", "rigs", arr)) < 0
			       ? EXIT_INFRA
			       : 0;
	}
	if (!strcmp(what, "all") || !strcmp(what, "rigs"))
		list_rigs(c, NULL);
	if (cli_signal)
		return cli_signal_exit();
	if (!strcmp(what, "rigs"))
		return 0;
	return rigl_list(&env, argc - first, argv + first, !strcmp(what, "suites"));
}

/* `rigor gate ...`: options, the plan and the cells are rigor.gate's (host/lua, lrun.c). */
int cmd_gate(struct cli *c, int argc, char **argv)
{
	struct rigl_env env = env_of(c, false);
	int code = rigl_gate(&env, argc - 1, argv + 1);

	if (cli_signal && code < 128)
		code = cli_signal_exit();
	return code;
}
