/* SPDX-License-Identifier: MIT */
/* rigor run / lua / list: the commands that hand over to Lua. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "cli.h"
#include "rigl.h"

static int msgh(lua_State *L)
{
	const char *m = lua_tostring(L, 1);

	if (!m && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
		return 1;
	luaL_traceback(L, L, m ? m : "(error object is not a string)", 1);
	return 1;
}

static int sort_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Append FILE, or every *.lua in DIR (sorted), to the Lua list at the top of the stack. */
static int add_path(lua_State *L, const char *p)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char *names[512];
	size_t n = 0;

	if (stat(p, &st) < 0) {
		cli_error("cannot read '%s': %s", p, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		lua_pushstring(L, p);
		lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
		return 0;
	}
	d = opendir(p);
	if (!d) {
		cli_error("cannot list '%s': %s", p, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) && n < 512) {
		size_t l = strlen(e->d_name);

		if (l > 4 && !strcmp(e->d_name + l - 4, ".lua") && e->d_name[0] != '.')
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), sort_strings);
	for (size_t i = 0; i < n; i++) {
		size_t pl = strlen(p);

		/* "testcases/" + "sim.lua" must not become "testcases//sim.lua" in messages */
		lua_pushfstring(L, "%s%s%s", p, pl && p[pl - 1] == '/' ? "" : "/", names[i]);
		lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
		free(names[i]);
	}
	return 0;
}

static lua_State *new_state(struct cli *c)
{
	lua_State *L = luaL_newstate();

	if (!L) {
		cli_error("out of memory");
		return NULL;
	}
	rigl_setup(L, c->ctx, cli_lua_dir(), &cli_signal);
	return L;
}

static void set_writer(lua_State *L, const char *field, FILE *f);

/*
 * Lock and open the selected rig and push it. From then on signals are the Lua runtime's
 * business (it arms and disarms cases), so the context's cancel flag is cleared.
 */
static int push_open_rig(struct cli *c, lua_State *L)
{
	int rc = cli_open_rig(c);

	if (rc)
		return rc;
	rig_ctx_set_cancel(c->ctx, NULL);
	rigl_push_rig(L, c->rig);
	return 0;
}

static int write_out(lua_State *L)
{
	FILE *f = lua_touserdata(L, lua_upvalueindex(1));
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);

	fwrite(s, 1, n, f);
	fflush(f);
	return 0;
}

static void set_writer(lua_State *L, const char *field, FILE *f)
{
	lua_pushlightuserdata(L, f);
	lua_pushcclosure(L, write_out, 1);
	lua_setfield(L, -2, field);
}

int cmd_run(struct cli *c, int argc, char **argv)
{
	static const struct option_map { const char *opt, *field; } reports[] = {
		{ "--junit", "junit" }, { "--tap", "tap" }, { "--json", "json" },
	};
	const char *artifacts = "rigor-artifacts", *case_pat = NULL;
	bool quiet = false, color;
	lua_State *L;
	int rc, nfiles = 0, code;

	L = new_state(c);
	if (!L)
		return EXIT_INFRA;
	lua_newtable(L);                  /* args */
	lua_newtable(L);                  /* args.reporters */
	lua_newtable(L);                  /* args.files */
	lua_newtable(L);                  /* args.tags */
	for (int i = 1; i < argc; i++) {
		bool matched = false;

		for (size_t r = 0; r < sizeof(reports) / sizeof(reports[0]); r++) {
			if (strcmp(argv[i], reports[r].opt))
				continue;
			if (i + 1 >= argc) {
				cli_error("run: %s needs a file name", argv[i]);
				lua_close(L);
				return EXIT_USAGE;
			}
			lua_pushstring(L, argv[++i]);
			lua_setfield(L, -4, reports[r].field);   /* args.reporters */
			matched = true;
		}
		if (matched)
			continue;
		if (!strcmp(argv[i], "--tap-version")) {
			/* 13 for harnesses older than Test::Harness 3.48 (Debian 12's prove) */
			if (i + 1 >= argc || (strcmp(argv[i + 1], "13") && strcmp(argv[i + 1], "14"))) {
				cli_error("run: --tap-version takes 13 or 14");
				lua_close(L);
				return EXIT_USAGE;
			}
			lua_pushinteger(L, atoi(argv[++i]));
			lua_setfield(L, -4, "tap_version");   /* args.reporters */
		} else if (!strcmp(argv[i], "--case") && i + 1 < argc) {
			case_pat = argv[++i];
		} else if (!strcmp(argv[i], "--tag") && i + 1 < argc) {
			lua_pushstring(L, argv[++i]);
			lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
		} else if (!strcmp(argv[i], "--artifacts") && i + 1 < argc) {
			artifacts = argv[++i];
		} else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
			quiet = true;
		} else if (argv[i][0] == '-') {
			cli_error("run: unknown option '%s' (see 'rigor run --help')", argv[i]);
			lua_close(L);
			return EXIT_USAGE;
		} else {
			lua_pushvalue(L, -2);
			if (add_path(L, argv[i]) < 0) {
				lua_close(L);
				return EXIT_USAGE;
			}
			lua_pop(L, 1);
			nfiles++;
		}
	}
	if (!nfiles) {
		cli_error("run: which suites? give test files or directories (e.g. testcases/)");
		lua_close(L);
		return EXIT_USAGE;
	}
	lua_setfield(L, -4, "tags");
	lua_setfield(L, -3, "files");
	lua_pushboolean(L, !quiet);
	lua_setfield(L, -2, "human");
	lua_setfield(L, -2, "reporters");
	if (case_pat) {
		lua_pushstring(L, case_pat);
		lua_setfield(L, -2, "case");
	}
	lua_pushstring(L, artifacts);
	lua_setfield(L, -2, "artifacts");
	color = isatty(1) && !getenv("NO_COLOR");
	lua_pushboolean(L, color);
	lua_setfield(L, -2, "color");
	set_writer(L, "out", stdout);
	set_writer(L, "err", stderr);

	rc = push_open_rig(c, L);
	if (rc) {
		lua_close(L);
		return rc;
	}
	lua_setfield(L, -2, "rig");

	lua_pushcfunction(L, msgh);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "rigor.runner");
	if (lua_pcall(L, 1, 1, -3) != LUA_OK) {
		cli_error("cannot load the test runner from %s: %s", cli_lua_dir(), lua_tostring(L, -1));
		code = EXIT_INFRA;
	} else {
		lua_getfield(L, -1, "main");
		lua_pushvalue(L, -4);
		if (lua_pcall(L, 1, 1, -4) != LUA_OK) {
			cli_error("test runner failed: %s", lua_tostring(L, -1));
			code = EXIT_INFRA;
		} else {
			code = (int)luaL_optinteger(L, -1, EXIT_INFRA);
		}
	}
	if (code == EXIT_INFRA || code >= 128) {
		/* The runner already did this unless it crashed; doing it twice is harmless. */
		if (rig_safe(c->rig) < 0)
			cli_error("could not put the rig in its safe state: %s", rig_errmsg(c->rig));
	}
	lua_close(L);
	if (cli_signal && code < 128)
		code = cli_signal_exit();
	return code;
}

/* argv of `rigor lua`: everything after FILE belongs to the script, --help included. */
int cmd_lua(struct cli *c, int argc, char **argv)
{
	lua_State *L;
	int code = 0, rc;

	if (argc < 2) {
		cli_error("lua: which script?");
		return EXIT_USAGE;
	}
	L = new_state(c);
	if (!L)
		return EXIT_INFRA;
	lua_createtable(L, argc, 1);
	for (int i = 1; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - 1);
	}
	lua_setglobal(L, "arg");
	if (c->rig_explicit) {
		/* Only a rig asked for explicitly is opened (and locked). */
		rc = push_open_rig(c, L);
		if (rc) {
			lua_close(L);
			return rc;
		}
		lua_setglobal(L, "rig");
	}
	lua_pushcfunction(L, msgh);
	if (luaL_loadfile(L, argv[1]) != LUA_OK) {
		cli_error("%s", lua_tostring(L, -1));
		lua_close(L);
		return EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++)
		lua_pushstring(L, argv[i]);
	rigl_watch_signals(L);
	if (lua_pcall(L, argc - 2, 1, 1) != LUA_OK) {
		code = rigl_exit_code(L);
		if (code < 0) {
			cli_error("%s", lua_tostring(L, -1));
			code = 1;
		}
	} else if (lua_isinteger(L, -1)) {
		code = (int)lua_tointeger(L, -1);
	}
	if (cli_signal && c->rig) {
		/* interrupted: the DUT is not left powered behind a script that stopped midway */
		rig_ctx_set_cancel(c->ctx, NULL);
		if (rig_safe(c->rig) < 0)
			cli_error("could not put the rig in its safe state: %s", rig_errmsg(c->rig));
	}
	lua_close(L);
	if (cli_signal)
		code = cli_signal_exit();
	return code;
}

static void list_rigs(struct cli *c)
{
	const char *const *dirs = cli_rig_dirs();
	char seen[64][256];
	size_t nseen = 0;

	printf("rigs:\n");
	for (size_t i = 0; dirs[i] && !cli_signal; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *e;

		while (d && (e = readdir(d))) {
			size_t l = strlen(e->d_name);
			char path[4200];
			struct rig_desc *desc = NULL;
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
			if (rigl_load_rigfile(c->ctx, path, &desc) < 0) {
				if (cli_signal)
					break;
				continue;
			}
			if (rig_desc_validate(desc) == 0)
				printf("  %-14s %-18s %s\n", rig_desc_name(desc),
				       rig_desc_device_type(desc) ? rig_desc_device_type(desc) : "-", path);
			else
				printf("  %-14s %-18s %s (invalid: run 'rigor check %s')\n", e->d_name, "-",
				       path, path);
			rig_desc_free(desc);
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
	lua_State *L;
	int code = 0;

	if (strcmp(what, "all") && strcmp(what, "rigs") && strcmp(what, "suites") &&
	    strcmp(what, "cases")) {
		cli_error("list: unknown kind '%s' (expected rigs, suites or cases)", what);
		return EXIT_USAGE;
	}
	if (!strcmp(what, "all") || !strcmp(what, "rigs"))
		list_rigs(c);
	if (cli_signal)
		return cli_signal_exit();
	if (!strcmp(what, "rigs"))
		return 0;
	L = new_state(c);
	if (!L)
		return EXIT_INFRA;
	lua_pushcfunction(L, msgh);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "rigor.runner");
	if (lua_pcall(L, 1, 1, 1) != LUA_OK) {
		cli_error("cannot load the test runner: %s", lua_tostring(L, -1));
		lua_close(L);
		return EXIT_INFRA;
	}
	lua_getfield(L, -1, "list");
	lua_newtable(L);
	lua_newtable(L);
	for (int i = first; i < argc; i++)
		if (add_path(L, argv[i]) < 0)
			code = EXIT_USAGE;
	if (argc <= first)
		add_path(L, "testcases");
	lua_setfield(L, -2, "files");
	lua_pushboolean(L, !strcmp(what, "suites"));
	lua_setfield(L, -2, "suites_only");
	set_writer(L, "out", stdout);
	set_writer(L, "err", stderr);
	if (lua_pcall(L, 1, 1, 1) != LUA_OK) {
		cli_error("list: %s", lua_tostring(L, -1));
		code = EXIT_USAGE;
	} else if (lua_isinteger(L, -1) && !code) {
		code = (int)lua_tointeger(L, -1);
	}
	lua_close(L);
	return code;
}
