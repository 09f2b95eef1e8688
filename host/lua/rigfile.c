/* SPDX-License-Identifier: MIT */
/*
 * Rig files are Lua, evaluated in an empty environment where any unknown global is a
 * back-end constructor: `power = sim { min_off_ms = 200 }`. The constructor records
 * its line, so every mistake can be reported as file:line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "rigl.h"

#define BACKEND_MT "rigor.rigfile.backend"

/*
 * A rig file is configuration: it is read by every command and by `rigor list rigs` for
 * each file on the rig path, so one endless loop or runaway table must not hang or
 * exhaust them. The file runs with a time budget, a memory budget, and the process's
 * cancel flag (SIGINT/SIGTERM), checked from a count hook.
 */
#define RIGFILE_BUDGET_MS 3000
#define RIGFILE_MEM_MAX (64u << 20)
#define RIGFILE_MAX_BUTTONS 256

struct budget {
	struct rig_ctx *ctx;
	int64_t end_ms;
	size_t mem;
	bool cancelled;
	bool out_of_time;
};

static struct budget *budget_of(lua_State *L)
{
	return *(struct budget **)lua_getextraspace(L);
}

static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct budget *b = ud;

	if (!ptr)
		osize = 0;
	if (nsize == 0) {
		free(ptr);
		b->mem -= osize;
		return NULL;
	}
	if (nsize > osize && b->mem + (nsize - osize) > RIGFILE_MEM_MAX)
		return NULL;
	ptr = realloc(ptr, nsize);
	if (ptr)
		b->mem += nsize - osize;
	return ptr;
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
	struct budget *b = budget_of(L);

	if (rig_ctx_cancelled(b->ctx)) {
		b->cancelled = true;
		luaL_error(L, "interrupted while reading the rig file");
	}
	if (rig_now_ms() >= b->end_ms) {
		b->out_of_time = true;
		/* once out of time, every instruction raises, so no pcall in the file can hold on */
		lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
		lua_getinfo(L, "Sl", ar);
		luaL_error(L, "%s:%d: the rig file did not finish within %d ms (an endless loop?)",
			   ar->short_src, ar->currentline, RIGFILE_BUDGET_MS);
	}
}

static int current_line(lua_State *L)
{
	lua_Debug ar;

	if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
		return ar.currentline;
	return 0;
}

/* backend{params}: a marker table { name, line, params } */
static int backend_ctor(lua_State *L)
{
	lua_settop(L, 1);
	if (!lua_istable(L, 1))
		return luaL_error(L, "back-end '%s' takes a table of parameters: %s { ... }",
				  lua_tostring(L, lua_upvalueindex(1)),
				  lua_tostring(L, lua_upvalueindex(1)));
	lua_createtable(L, 0, 3);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_setfield(L, -2, "name");
	lua_pushinteger(L, current_line(L));
	lua_setfield(L, -2, "line");
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "params");
	luaL_setmetatable(L, BACKEND_MT);
	return 1;
}

static int env_index(lua_State *L)
{
	lua_settop(L, 2);
	if (lua_type(L, 2) != LUA_TSTRING)
		return 0;
	lua_pushvalue(L, 2);
	lua_pushcclosure(L, backend_ctor, 1);
	return 1;
}

static int rig_call(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, LUA_REGISTRYINDEX, "rigor.rigfile.result");
	if (!lua_isnil(L, -1))
		return luaL_error(L, "rig { ... } given twice");
	lua_createtable(L, 0, 2);
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "t");
	lua_pushinteger(L, current_line(L));
	lua_setfield(L, -2, "line");
	lua_setfield(L, LUA_REGISTRYINDEX, "rigor.rigfile.result");
	return 0;
}

static enum rig_vtype vtype_of(lua_State *L, int idx)
{
	switch (lua_type(L, idx)) {
	case LUA_TSTRING: return RIG_V_STR;
	case LUA_TBOOLEAN: return RIG_V_BOOL;
	case LUA_TNUMBER: return lua_isinteger(L, idx) ? RIG_V_INT : RIG_V_NUM;
	default: return RIG_V_TABLE;
	}
}

/* Store the value at the top of the stack under key @k. */
static int put_value(lua_State *L, struct rig_desc *d, int part, const char *k, int line)
{
	switch (vtype_of(L, -1)) {
	case RIG_V_STR: return rig_desc_set_str(d, part, k, lua_tostring(L, -1), line);
	case RIG_V_BOOL: return rig_desc_set_bool(d, part, k, lua_toboolean(L, -1), line);
	case RIG_V_INT: return rig_desc_set_int(d, part, k, lua_tointeger(L, -1), line);
	default: return rig_desc_set_other(d, part, k, vtype_of(L, -1), line);
	}
}

static bool is_backend(lua_State *L, int idx);

/*
 * A back-end parameter: as put_value(), and a table of named values (udev = { ID_X = "y" })
 * also as one "k.NAME" entry each, after the table's own entry, for parameters that take
 * one (the core reports the table for every other parameter).
 */
static int put_params(lua_State *L, struct rig_desc *d, int part, const char *k, int line)
{
	int rc = put_value(L, d, part, k, line);

	if (rc < 0 || !lua_istable(L, -1) || is_backend(L, -1))
		return rc;
	lua_pushnil(L);
	while (rc == 0 && lua_next(L, -2)) {
		if (lua_type(L, -2) == LUA_TSTRING) {
			char key[256];

			snprintf(key, sizeof(key), "%s.%s", k, lua_tostring(L, -2));
			rc = put_value(L, d, part, key, line);
		}
		lua_pop(L, 1);
	}
	return rc;
}

static bool is_backend(lua_State *L, int idx)
{
	bool r = false;

	idx = lua_absindex(L, idx);
	if (lua_getmetatable(L, idx)) {
		luaL_getmetatable(L, BACKEND_MT);
		r = lua_rawequal(L, -1, -2);
		lua_pop(L, 2);
	}
	return r;
}

/* The marker at the top of the stack becomes a part of @role. */
static int add_part(lua_State *L, struct rig_desc *d, const char *role, const char *inst)
{
	int part, line, rc = 0;

	lua_getfield(L, -1, "line");
	line = (int)lua_tointeger(L, -1);
	lua_getfield(L, -2, "name");
	part = rig_desc_add_part(d, role, inst, lua_tostring(L, -1), line);
	lua_pop(L, 2);
	if (part < 0)
		return part;
	lua_getfield(L, -1, "params");
	lua_pushnil(L);
	while (rc == 0 && lua_next(L, -2)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			rig_desc_problem(d, line, "%s: parameter names must be strings", role);
		else
			rc = put_params(L, d, part, lua_tostring(L, -2), line);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return rc;
}

/* Push a sorted list of the string keys of the table at the top (Lua keeps no order). */
static void push_sorted_keys(lua_State *L)
{
	int t = lua_gettop(L);
	lua_Integer n = 0;

	lua_newtable(L);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) == LUA_TSTRING) {
			lua_pushvalue(L, -1);
			lua_rawseti(L, t + 1, ++n);
		}
	}
	luaL_requiref(L, "table", luaopen_table, 0);
	lua_getfield(L, -1, "sort");
	lua_pushvalue(L, t + 1);
	lua_call(L, 1, 0);
	lua_pop(L, 1);
}

static int convert(lua_State *L, struct rig_desc *d, int line)
{
	int rc = 0, t = lua_gettop(L);
	lua_Integer nkeys;

	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			rig_desc_problem(d, line, "rig keys must be names, not %s", luaL_typename(L, -2));
		lua_pop(L, 1);
	}
	push_sorted_keys(L);
	nkeys = (lua_Integer)lua_rawlen(L, -1);
	for (lua_Integer ki = 1; rc == 0 && ki <= nkeys; ki++) {
		const char *k;

		lua_rawgeti(L, t + 1, ki);
		lua_pushvalue(L, -1);
		lua_gettable(L, t);          /* stack: ..., keys, key, value */
		k = lua_tostring(L, -2);

		if (!strcmp(k, "capabilities")) {
			if (!lua_istable(L, -1)) {
				rig_desc_problem(d, line, "capabilities must be a list of strings");
			} else {
				lua_Integer n = luaL_len(L, -1);
				bool bad = false;

				/* stop at the first bad entry: # of a table with holes can be 2^40 */
				for (lua_Integer i = 1; rc == 0 && !bad && i <= n; i++) {
					lua_geti(L, -1, i);
					bad = lua_type(L, -1) != LUA_TSTRING;
					if (bad)
						rig_desc_problem(d, line, "capability %lld must be a string",
								 (long long)i);
					else
						rc = rig_desc_add_cap(d, lua_tostring(L, -1), line);
					lua_pop(L, 1);
				}
			}
		} else if (!strcmp(k, "button") && lua_istable(L, -1) && !is_backend(L, -1)) {
			int nb = 0;

			lua_pushnil(L);
			while (rc == 0 && lua_next(L, -2)) {
				if (++nb > RIGFILE_MAX_BUTTONS) {
					/* validation compares every pair: 60000 took 11 s */
					rig_desc_problem(d, line, "more than %d buttons",
							 RIGFILE_MAX_BUTTONS);
					lua_pop(L, 2);
					break;
				}
				/* a NUL in a name would cut it short: "\0a" and "\0b" both named "" */
				if (lua_type(L, -2) != LUA_TSTRING || !is_backend(L, -1) ||
				    strlen(lua_tostring(L, -2)) != lua_rawlen(L, -2))
					rig_desc_problem(d, line,
							 "button entries must be name = backend { ... }");
				else
					rc = add_part(L, d, "button", lua_tostring(L, -2));
				lua_pop(L, 1);
			}
		} else if (is_backend(L, -1)) {
			rc = add_part(L, d, k, NULL);
		} else {
			rc = put_value(L, d, -1, k, line);
		}
		lua_pop(L, 2);
	}
	lua_pop(L, 1);
	return rc;
}

/* Runs under lua_pcall, so a raise anywhere (even out of memory) is caught. */
static int load_protected(lua_State *L)
{
	struct rig_desc *d = lua_touserdata(L, 1);
	const char *path = lua_tostring(L, 2);
	int line, rc;

	luaL_newmetatable(L, BACKEND_MT);
	lua_pop(L, 1);
	if (luaL_loadfilex(L, path, "t") != LUA_OK) {
		rig_desc_problem(d, -1, "%s", lua_tostring(L, -1));
		return 0;
	}
	/* _ENV: rig(), string, os.getenv, and back-end constructors for any other name. */
	lua_createtable(L, 0, 4);                       /* env */
	lua_pushcfunction(L, rig_call);
	lua_setfield(L, -2, "rig");
	luaL_requiref(L, "string", luaopen_string, 0);
	lua_setfield(L, -2, "string");
	luaL_requiref(L, "os", luaopen_os, 0);          /* env, os */
	lua_createtable(L, 0, 1);                       /* env, os, myos */
	lua_getfield(L, -2, "getenv");
	lua_setfield(L, -2, "getenv");
	lua_setfield(L, -3, "os");
	lua_pop(L, 1);                                  /* env */
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, env_index);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
	lua_setupvalue(L, -2, 1);                       /* chunk's _ENV */
	if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
		const char *m = lua_tostring(L, -1);

		/* Lua's message starts with "file:line:" when it knows where */
		rig_desc_problem(d, m && strstr(m, path) == m ? -1 : 0, "%s", m ? m : "error");
		return 0;
	}
	lua_getfield(L, LUA_REGISTRYINDEX, "rigor.rigfile.result");
	if (lua_isnil(L, -1)) {
		rig_desc_problem(d, 0, "no rig { ... } in the file");
		return 0;
	}
	lua_getfield(L, -1, "line");
	line = (int)lua_tointeger(L, -1);
	lua_getfield(L, -2, "t");
	rc = convert(L, d, line);
	lua_pushinteger(L, rc);
	return 1;
}

int rigl_load_rigfile(struct rig_ctx *ctx, const char *path, struct rig_desc **out)
{
	struct rig_desc *d = rig_desc_new(ctx, path);
	struct budget b = { .ctx = ctx, .end_ms = rig_now_ms() + RIGFILE_BUDGET_MS };
	lua_State *L;
	int rc = 0;

	*out = NULL;
	if (!d)
		return RIG_E_NOMEM;
	L = lua_newstate(budget_alloc, &b);
	if (!L) {
		rig_desc_free(d);
		return RIG_E_NOMEM;
	}
	*(struct budget **)lua_getextraspace(L) = &b;
	lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1000);
	lua_pushcfunction(L, load_protected);
	lua_pushlightuserdata(L, d);
	lua_pushstring(L, path);
	if (lua_pcall(L, 2, 1, 0) != LUA_OK)
		rc = RIG_E_NOMEM;   /* only allocation can fail outside the chunk's own pcall */
	else
		rc = (int)lua_tointeger(L, -1);
	lua_close(L);
	if (b.cancelled && rc >= 0)
		rc = RIG_E_INTR;
	if (rc < 0) {
		rig_desc_free(d);
		return rc;
	}
	*out = d;
	return 0;
}
