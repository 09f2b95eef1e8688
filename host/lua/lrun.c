/* SPDX-License-Identifier: MIT */
/*
 * rigl_run(), rigl_list(), rigl_script(): the CLI's entries into Lua. Options are parsed
 * in Lua only (rigor.runner.parse_argv): the C side passes argv through and supplies what
 * only the host knows (writers, directory listing, opening the rig when it is needed).
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lrig.h"

enum { EXIT_USAGE = 2, EXIT_INFRA = 3 };

static int msgh(lua_State *L)
{
	const char *m = lua_tostring(L, 1);

	if (!m && luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
		return 1;
	luaL_traceback(L, L, m ? m : "(error object is not a string)", 1);
	return 1;
}

static void report(const struct rigl_env *env, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void report(const struct rigl_env *env, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	env->error(env->arg, msg);
}

static lua_State *new_state(const struct rigl_env *env)
{
	lua_State *L = luaL_newstate();

	if (!L) {
		report(env, "out of memory");
		return NULL;
	}
	rigl_setup(L, env->ctx, env->luadir, env->sig);
	return L;
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

struct names {
	const char *dir;
	char **v;
	size_t n;
};

static int sort_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Push the list of paths of @names (lightuserdata 1); run protected, so a raise frees nothing. */
static int push_names(lua_State *L)
{
	const struct names *nm = lua_touserdata(L, 1);
	size_t dl = strlen(nm->dir);

	lua_createtable(L, (int)nm->n, 0);
	for (size_t i = 0; i < nm->n; i++) {
		/* "testcases/" + "sim.lua" must not become "testcases//sim.lua" in messages */
		lua_pushfstring(L, "%s%s%s", nm->dir, dl && nm->dir[dl - 1] == '/' ? "" : "/",
				nm->v[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* env.expand(path): { path } for a file, the sorted *.lua of a directory; nil, msg. */
static int l_expand(lua_State *L)
{
	const char *p = luaL_checkstring(L, 1);
	struct names nm = { .dir = p };
	size_t cap = 0;
	struct stat st;
	struct dirent *e;
	DIR *d;
	int rc;

	if (stat(p, &st) < 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "cannot read '%s': %s", p, strerror(errno));
		return 2;
	}
	if (!S_ISDIR(st.st_mode)) {
		lua_createtable(L, 1, 0);
		lua_pushvalue(L, 1);
		lua_rawseti(L, -2, 1);
		return 1;
	}
	d = opendir(p);
	if (!d) {
		lua_pushnil(L);
		lua_pushfstring(L, "cannot list '%s': %s", p, strerror(errno));
		return 2;
	}
	rc = 0;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (l <= 4 || strcmp(e->d_name + l - 4, ".lua") || e->d_name[0] == '.')
			continue;
		if (nm.n == cap) {
			char **v = realloc(nm.v, (cap = cap ? cap * 2 : 16) * sizeof(*v));

			if (!v) {
				rc = -1;
				break;
			}
			nm.v = v;
		}
		nm.v[nm.n] = strdup(e->d_name);
		if (!nm.v[nm.n]) {
			rc = -1;
			break;
		}
		nm.n++;
	}
	closedir(d);
	if (!rc) {
		qsort(nm.v, nm.n, sizeof(*nm.v), sort_strings);
		lua_pushcfunction(L, push_names);
		lua_pushlightuserdata(L, &nm);
		rc = lua_pcall(L, 1, 1, 0);
	}
	for (size_t i = 0; i < nm.n; i++)
		free(nm.v[i]);
	free(nm.v);
	if (rc < 0)
		return luaL_error(L, "out of memory");
	if (rc != LUA_OK)
		return lua_error(L);
	return 1;
}

/* env.open_rig(): the rig object, or nil and the host's exit code */
static int l_open_rig(lua_State *L)
{
	const struct rigl_env *env = lua_touserdata(L, lua_upvalueindex(1));
	struct rig *rig = NULL;
	int rc = env->open_rig(env->arg, &rig);

	if (rc) {
		lua_pushnil(L);
		lua_pushinteger(L, rc);
		return 2;
	}
	rigl_push_rig(L, rig);
	return 1;
}

/* The env table of rigor.runner.cli/cli_list. */
static void push_env(lua_State *L, const struct rigl_env *env)
{
	lua_newtable(L);
	set_writer(L, "out", stdout);
	set_writer(L, "err", stderr);
	lua_pushboolean(L, env->color);
	lua_setfield(L, -2, "color");
	lua_pushcfunction(L, l_expand);
	lua_setfield(L, -2, "expand");
	lua_pushliteral(L, "testcases");
	lua_setfield(L, -2, "default");
	if (env->open_rig) {
		lua_pushlightuserdata(L, (void *)env);
		lua_pushcclosure(L, l_open_rig, 1);
		lua_setfield(L, -2, "open_rig");
	}
}

static void push_argv(lua_State *L, int argc, char **argv)
{
	lua_createtable(L, argc, 0);
	for (int i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i + 1);
	}
}

/* module[fn](argv, env[, suites_only]) with a traceback on errors; the exit code. */
static int call_module(const struct rigl_env *env, const char *module, const char *fn, int argc,
		       char **argv, int suites_only)
{
	lua_State *L = new_state(env);
	int code, nargs = suites_only < 0 ? 2 : 3;

	if (!L)
		return EXIT_INFRA;
	lua_pushcfunction(L, msgh);
	lua_getglobal(L, "require");
	lua_pushstring(L, module);
	if (lua_pcall(L, 1, 1, 1) != LUA_OK) {
		report(env, "cannot load %s from %s: %s", module, env->luadir, lua_tostring(L, -1));
		lua_close(L);
		return EXIT_INFRA;
	}
	lua_getfield(L, -1, fn);
	push_argv(L, argc, argv);
	push_env(L, env);
	if (suites_only >= 0)
		lua_pushboolean(L, suites_only);
	if (lua_pcall(L, nargs, 1, 1) != LUA_OK) {
		report(env, "%s failed: %s", module, lua_tostring(L, -1));
		code = EXIT_INFRA;
	} else {
		code = (int)luaL_optinteger(L, -1, EXIT_INFRA);
	}
	lua_close(L);
	return code;
}

int rigl_run(const struct rigl_env *env, int argc, char **argv)
{
	return call_module(env, "rigor.runner", "cli", argc, argv, -1);
}

int rigl_gate(const struct rigl_env *env, int argc, char **argv)
{
	return call_module(env, "rigor.gate", "cli", argc, argv, -1);
}

int rigl_list(const struct rigl_env *env, int argc, char **argv, bool suites_only)
{
	return call_module(env, "rigor.runner", "cli_list", argc, argv, suites_only);
}

int rigl_script(const struct rigl_env *env, int argc, char **argv)
{
	lua_State *L;
	int code = 0;

	if (argc < 1)
		return EXIT_USAGE;
	L = new_state(env);
	if (!L)
		return EXIT_INFRA;
	/* arg[0] is the script, arg[1..] its arguments, as lua(1) sets them */
	lua_createtable(L, argc, 1);
	for (int i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i);
	}
	lua_setglobal(L, "arg");
	if (env->open_rig) {
		struct rig *rig = NULL;
		int rc = env->open_rig(env->arg, &rig);

		if (rc) {
			lua_close(L);
			return rc;
		}
		rigl_push_rig(L, rig);
		lua_setglobal(L, "rig");
	}
	lua_pushcfunction(L, msgh);
	if (luaL_loadfile(L, argv[0]) != LUA_OK) {
		report(env, "%s", lua_tostring(L, -1));
		lua_close(L);
		return EXIT_USAGE;
	}
	for (int i = 1; i < argc; i++)
		lua_pushstring(L, argv[i]);
	rigl_watch_signals(L);
	if (lua_pcall(L, argc - 1, 1, 1) != LUA_OK) {
		code = rigl_exit_code(L);
		if (code < 0) {
			report(env, "%s", lua_tostring(L, -1));
			code = 1;
		}
	} else if (lua_isinteger(L, -1)) {
		code = (int)lua_tointeger(L, -1);
	}
	lua_close(L);
	return code;
}
