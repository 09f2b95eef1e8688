/* SPDX-License-Identifier: MIT */
/*
 * rigor.core: what the Lua test framework needs from C. Clock and sleep, case deadlines
 * and signals (a count hook raises an abort error, so even a busy Lua loop ends), and
 * JSON through jansson.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lrig.h"

#define RT_KEY "rigor.runtime"
#define ARRAY_MT "rigor.array"

struct rigl_rt *rigl_rt(lua_State *L)
{
	struct rigl_rt *rt;

	lua_getfield(L, LUA_REGISTRYINDEX, RT_KEY);
	rt = lua_touserdata(L, -1);
	lua_pop(L, 1);
	assert(rt);
	return rt;
}

static const char *sig_name(int sig)
{
	return sig == SIGTERM ? "SIGTERM" : "SIGINT";
}

/* Raise { rigor_abort = kind, message = msg }, printable through __tostring. */
int rigl_abort(lua_State *L, const char *kind, const char *msg)
{
	lua_createtable(L, 0, 2);
	lua_pushstring(L, kind);
	lua_setfield(L, -2, "rigor_abort");
	lua_pushstring(L, msg);
	lua_setfield(L, -2, "message");
	luaL_setmetatable(L, "rigor.error");
	return lua_error(L);
}

bool rigl_abort_due(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);

	return rt->armed && ((rt->sig && *rt->sig) || (rt->deadline && rig_now_ms() >= rt->deadline));
}

void rigl_check_abort(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);

	if (!rt->armed)
		return;
	if (rt->sig && *rt->sig) {
		char msg[64];

		snprintf(msg, sizeof(msg), "interrupted by %s", sig_name(*rt->sig));
		rigl_abort(L, sig_name(*rt->sig), msg);
	}
	if (rt->deadline && rig_now_ms() >= rt->deadline) {
		char msg[96];

		snprintf(msg, sizeof(msg), "case timed out after %lld ms",
			 (long long)(rt->deadline - rt->armed_at));
		rigl_abort(L, "timeout", msg);
	}
}

int rigl_clamp(lua_State *L, int timeout_ms)
{
	struct rigl_rt *rt = rigl_rt(L);
	int64_t left;

	rigl_check_abort(L);
	if (!rt->armed || !rt->deadline)
		return timeout_ms;
	left = rt->deadline - rig_now_ms();
	if (timeout_ms < 0 || left < timeout_ms)
		return (int)(left > 0 ? left : 0);
	return timeout_ms;
}

static void hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	rigl_check_abort(L);
}

static int c_now_ms(lua_State *L)
{
	lua_pushinteger(L, rig_now_ms());
	return 1;
}

static int c_wall_ms(lua_State *L)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	return 1;
}

static int c_sleep(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);
	int ms = (int)luaL_checkinteger(L, 1);

	rig_ctx_sleep(rt->ctx, rigl_clamp(L, ms));
	rigl_check_abort(L);
	return 0;
}

static int c_arm(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);

	rt->deadline = luaL_optinteger(L, 1, 0);
	rt->armed_at = rig_now_ms();
	rt->armed = true;
	rig_ctx_set_cancel(rt->ctx, rt->sig);
	rig_ctx_set_deadline(rt->ctx, rt->deadline);
	lua_sethook(L, hook, LUA_MASKCOUNT, 1000);
	return 0;
}

static int c_disarm(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);

	rt->armed = false;
	rt->deadline = 0;
	rig_ctx_set_cancel(rt->ctx, NULL);
	rig_ctx_set_deadline(rt->ctx, 0);
	lua_sethook(L, NULL, 0, 0);
	return 0;
}

static int c_interrupted(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);

	if (rt->sig && *rt->sig)
		lua_pushstring(L, sig_name(*rt->sig));
	else
		lua_pushnil(L);
	return 1;
}

static int c_mkdir_p(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	size_t n = strlen(path);
	char *buf = lua_newuserdatauv(L, n + 1, 0);

	memcpy(buf, path, n + 1);
	for (char *s = buf + 1; ; s++) {
		if (*s == '/' || !*s) {
			char c = *s;

			*s = 0;
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return luaL_fileresult(L, 0, buf);
			*s = c;
			if (!c)
				break;
		}
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int c_isatty(lua_State *L)
{
	lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
	return 1;
}

static int c_hostname(lua_State *L)
{
	char buf[256];

	if (gethostname(buf, sizeof(buf)) < 0)
		strcpy(buf, "localhost");
	buf[sizeof(buf) - 1] = 0;
	lua_pushstring(L, buf);
	return 1;
}

/* ---- JSON ---- */

static json_t *to_json(lua_State *L, int idx, int depth);

static bool is_array(lua_State *L, int idx)
{
	lua_Integer n = 0;
	bool marked = false;

	if (lua_getmetatable(L, idx)) {
		luaL_getmetatable(L, ARRAY_MT);
		marked = lua_rawequal(L, -1, -2);
		lua_pop(L, 2);
	}
	if (marked)
		return true;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
			lua_pop(L, 1);
			return false;
		}
		n++;
	}
	return n > 0 && n == (lua_Integer)lua_rawlen(L, idx);
}

static json_t *to_json(lua_State *L, int idx, int depth)
{
	idx = lua_absindex(L, idx);
	if (depth > 64)
		luaL_error(L, "json: nesting too deep (a cycle?)");
	switch (lua_type(L, idx)) {
	case LUA_TNIL: return json_null();
	case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		return lua_isinteger(L, idx) ? json_integer(lua_tointeger(L, idx))
					     : json_real(lua_tonumber(L, idx));
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		json_t *j = json_stringn(s, n);

		if (!j)
			luaL_error(L, "json: string is not valid UTF-8");
		return j;
	}
	case LUA_TLIGHTUSERDATA:
		if (!lua_touserdata(L, idx))
			return json_null();
		break;
	case LUA_TTABLE:
		if (is_array(L, idx)) {
			json_t *a = json_array();
			lua_Integer n = (lua_Integer)lua_rawlen(L, idx);

			for (lua_Integer i = 1; i <= n; i++) {
				lua_rawgeti(L, idx, i);
				json_array_append_new(a, to_json(L, -1, depth + 1));
				lua_pop(L, 1);
			}
			return a;
		} else {
			json_t *o = json_object();

			lua_pushnil(L);
			while (lua_next(L, idx)) {
				const char *k;

				lua_pushvalue(L, -2);
				k = lua_tostring(L, -1);
				if (k)
					json_object_set_new(o, k, to_json(L, -2, depth + 1));
				lua_pop(L, 2);
			}
			return o;
		}
	default:
		break;
	}
	luaL_error(L, "json: cannot encode a %s", luaL_typename(L, idx));
	return NULL;
}

/* The json_t tree must not leak when to_json raises: it lives in a boxed userdata. */
struct jbox {
	json_t *j;
};

static int jbox_gc(lua_State *L)
{
	struct jbox *b = lua_touserdata(L, 1);

	json_decref(b->j);
	b->j = NULL;
	return 0;
}

static struct jbox *push_jbox(lua_State *L)
{
	struct jbox *b = lua_newuserdatauv(L, sizeof(*b), 0);

	b->j = NULL;
	if (luaL_newmetatable(L, "rigor.jbox")) {
		lua_pushcfunction(L, jbox_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	return b;
}

static int c_json_encode(lua_State *L)
{
	int indent = (int)luaL_optinteger(L, 2, 0);
	struct jbox *b;
	char *s;

	lua_settop(L, 2);
	b = push_jbox(L);
	b->j = to_json(L, 1, 0);
	s = json_dumps(b->j, JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_INDENT(indent));
	if (!s)
		return luaL_error(L, "json: out of memory");
	lua_pushstring(L, s);
	free(s);
	return 1;
}

static void from_json(lua_State *L, json_t *j)
{
	luaL_checkstack(L, 4, "json too deep");
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;

		lua_createtable(L, 0, (int)json_object_size(j));
		json_object_foreach(j, k, v) {
			from_json(L, v);
			lua_setfield(L, -2, k);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;

		lua_createtable(L, (int)json_array_size(j), 0);
		json_array_foreach(j, i, v) {
			from_json(L, v);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		luaL_setmetatable(L, ARRAY_MT);
		break;
	}
	case JSON_STRING: lua_pushlstring(L, json_string_value(j), json_string_length(j)); break;
	case JSON_INTEGER: lua_pushinteger(L, json_integer_value(j)); break;
	case JSON_REAL: lua_pushnumber(L, json_real_value(j)); break;
	case JSON_TRUE: lua_pushboolean(L, 1); break;
	case JSON_FALSE: lua_pushboolean(L, 0); break;
	case JSON_NULL: lua_pushlightuserdata(L, NULL); break;
	}
}

static int c_json_decode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	json_error_t e;
	struct jbox *b = push_jbox(L);

	b->j = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (!b->j) {
		lua_pushnil(L);
		lua_pushfstring(L, "json: %s at line %d column %d", e.text, e.line, e.column);
		return 2;
	}
	from_json(L, b->j);
	return 1;
}

static int err_tostring(lua_State *L)
{
	lua_getfield(L, 1, "message");
	return 1;
}

static const luaL_Reg corelib[] = {
	{ "now_ms", c_now_ms },
	{ "wall_ms", c_wall_ms },
	{ "sleep", c_sleep },
	{ "arm", c_arm },
	{ "disarm", c_disarm },
	{ "interrupted", c_interrupted },
	{ "mkdir_p", c_mkdir_p },
	{ "isatty", c_isatty },
	{ "hostname", c_hostname },
	{ "json_encode", c_json_encode },
	{ "json_decode", c_json_decode },
	{ NULL, NULL },
};

static int luaopen_rigor_core(lua_State *L)
{
	luaL_newlib(L, corelib);
	luaL_newmetatable(L, ARRAY_MT);
	lua_setfield(L, -2, "array_mt");
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "null");
	lua_pushstring(L, RIGOR_VERSION);
	lua_setfield(L, -2, "version");
	return 1;
}

void rigl_setup(lua_State *L, struct rig_ctx *ctx, const char *luadir, volatile sig_atomic_t *sig)
{
	struct rigl_rt *rt = lua_newuserdatauv(L, sizeof(*rt), 0);

	memset(rt, 0, sizeof(*rt));
	rt->ctx = ctx;
	rt->sig = sig;
	lua_setfield(L, LUA_REGISTRYINDEX, RT_KEY);
	luaL_openlibs(L);
	luaL_newmetatable(L, "rigor.error");
	lua_pushcfunction(L, err_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
	rigl_register_rig(L);
	lua_getglobal(L, "package");
	lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", luadir, luadir);
	lua_getfield(L, -2, "path");
	lua_concat(L, 2);
	lua_setfield(L, -2, "path");
	lua_getfield(L, -1, "preload");
	lua_pushcfunction(L, luaopen_rigor_core);
	lua_setfield(L, -2, "rigor.core");
	lua_pushcfunction(L, luaopen_rigor_http);
	lua_setfield(L, -2, "rigor.http");
	lua_pop(L, 2);
}
