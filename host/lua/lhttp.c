/* SPDX-License-Identifier: MIT */
/*
 * rigor.http: HTTP requests from scripts over rig_http_do(). Transport failures (refused,
 * timeout, TLS) return nil, message, code; any HTTP status is a response. A request cut
 * short by the case deadline or a signal raises the case's abort error instead.
 */
#include <ctype.h>
#include <string.h>

#include <lauxlib.h>

#include "lrig.h"
#include "rig_http.h"

#define RESP_MT "rigor.http.resp"
#define DEFAULT_TIMEOUT_MS 30000

/* The response lives in a userdata until it is copied into Lua values, so a raise
 * (out of memory) while copying cannot leak it. */
static int resp_gc(lua_State *L)
{
	rig_http_resp_release(luaL_checkudata(L, 1, RESP_MT));
	return 0;
}

static struct rig_http_resp *push_resp(lua_State *L)
{
	struct rig_http_resp *r = lua_newuserdatauv(L, sizeof(*r), 0);

	memset(r, 0, sizeof(*r));
	if (luaL_newmetatable(L, RESP_MT)) {
		lua_pushcfunction(L, resp_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	return r;
}

static lua_Integer opt_int(lua_State *L, const char *field, lua_Integer dflt)
{
	lua_Integer v;
	int isnum;

	if (lua_getfield(L, 1, field) == LUA_TNIL) {
		lua_pop(L, 1);
		return dflt;
	}
	v = lua_tointegerx(L, -1, &isnum);
	if (!isnum)
		luaL_error(L, "bad field '%s' (integer expected, got %s)", field, luaL_typename(L, -1));
	lua_pop(L, 1);
	return v;
}

/* The request's header strings "Name: value", anchored in a table at @anchor and
 * listed, NULL-terminated, in a userdata (left on the stack). */
static const char **check_headers(lua_State *L, int anchor)
{
	const char **list;
	int n = 0;

	if (lua_getfield(L, 1, "headers") == LUA_TNIL) {
		lua_pop(L, 1);
		return NULL;
	}
	if (!lua_istable(L, -1))
		luaL_error(L, "bad field 'headers' (table expected, got %s)", luaL_typename(L, -1));
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1))
			luaL_error(L, "bad field 'headers' (name = string pairs expected)");
		lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
		if (strpbrk(lua_tostring(L, -1), "\r\n"))
			luaL_error(L, "bad field 'headers' (line break in header '%s')",
				   lua_tostring(L, -3));
		lua_rawseti(L, anchor, ++n);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	list = lua_newuserdatauv(L, sizeof(*list) * ((size_t)n + 1), 0);
	for (int i = 1; i <= n; i++) {
		lua_rawgeti(L, anchor, i);
		list[i - 1] = lua_tostring(L, -1);  /* anchored: stays valid */
		lua_pop(L, 1);
	}
	list[n] = NULL;
	return list;
}

/* Add name -> value to the table on top, joining repeated names with ", ". */
static void add_header(lua_State *L, const char *name, const char *value)
{
	if (lua_getfield(L, -1, name) == LUA_TSTRING) {
		lua_pushfstring(L, "%s, %s", lua_tostring(L, -1), value);
		lua_setfield(L, -3, name);
		lua_pop(L, 1);
		return;
	}
	lua_pop(L, 1);
	lua_pushstring(L, value);
	lua_setfield(L, -2, name);
}

static int h_request(lua_State *L)
{
	struct rig_ctx *ctx = rigl_rt(L)->ctx;
	struct rig_http_req req;
	struct rig_http_resp *resp;
	char method[16];
	const char *s;
	size_t n;
	int rc, anchor, asked;
	bool by_deadline;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	lua_newtable(L);
	anchor = lua_gettop(L);
	rig_http_req_init(&req);
	if (lua_getfield(L, 1, "url") != LUA_TSTRING)
		return luaL_error(L, "bad field 'url' (string expected, got %s)", luaL_typename(L, -1));
	req.url = lua_tostring(L, -1);
	lua_rawseti(L, anchor, -1);     /* anchored: the string stays valid */
	if (lua_getfield(L, 1, "method") != LUA_TNIL) {
		s = luaL_tolstring(L, -1, &n);
		if (n == 0 || n >= sizeof(method))
			return luaL_error(L, "bad field 'method' ('%s')", s);
		for (size_t i = 0; i <= n; i++)
			method[i] = (char)toupper((unsigned char)s[i]);
		req.method = method;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	if (lua_getfield(L, 1, "body") != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING)
			return luaL_error(L, "bad field 'body' (string expected, got %s; use http.json "
					  "for tables)", luaL_typename(L, -1));
		req.body = lua_tolstring(L, -1, &req.len);
		lua_rawseti(L, anchor, 0);   /* anchored */
	} else {
		lua_pop(L, 1);
	}
	req.headers = check_headers(L, anchor);
	req.timeout_ms = (int)opt_int(L, "timeout", DEFAULT_TIMEOUT_MS);
	req.retries = (int)opt_int(L, "retries", 0);
	req.backoff_ms = (int)opt_int(L, "backoff", req.backoff_ms);
	req.max_len = (size_t)opt_int(L, "max_len", 0);
	if (lua_getfield(L, 1, "verify") != LUA_TNIL)
		req.verify_tls = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (lua_getfield(L, 1, "ca_file") != LUA_TNIL) {
		req.ca_file = luaL_tolstring(L, -1, NULL);
		lua_rawseti(L, anchor, -2);   /* anchored */
	}
	lua_pop(L, 1);
	if (req.timeout_ms < -1 || req.retries < 0 || req.backoff_ms < 0)
		return luaL_error(L, "bad timeout, retries or backoff (negative)");
	asked = req.timeout_ms;
	req.timeout_ms = rigl_clamp(L, asked);
	/*
	 * Cut to the case deadline: then a timeout is the deadline's, even when it comes a
	 * millisecond before rig_now_ms() reaches it (libcurl times the request on its own
	 * clock, to the microsecond).
	 */
	by_deadline = rigl_rt(L)->armed && rigl_rt(L)->deadline && req.timeout_ms >= 0 &&
		      (asked < 0 || req.timeout_ms < asked);

	resp = push_resp(L);
	rig_ctx_clear_error(ctx);
	rc = rig_http_do(ctx, &req, resp);
	if (rc < 0) {
		if (rc == RIG_E_TIMEOUT && by_deadline) {
			rig_ctx_clear_error(ctx);
			rigl_abort_deadline(L);
		}
		if ((rc == RIG_E_TIMEOUT || rc == RIG_E_INTR) && rigl_abort_due(L)) {
			rig_ctx_clear_error(ctx);
			rigl_check_abort(L);
		}
		if (rc == RIG_E_INTR) {
			rig_ctx_clear_error(ctx);
			rigl_abort(L, "SIGINT", "interrupted");
		}
		lua_pushnil(L);
		lua_pushstring(L, *rig_ctx_errmsg(ctx) ? rig_ctx_errmsg(ctx) : rig_strerror(rc));
		lua_pushstring(L, rig_err_name(rc));
		rig_ctx_clear_error(ctx);
		return 3;
	}
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, resp->status);
	lua_setfield(L, -2, "status");
	lua_pushlstring(L, resp->body, resp->len);
	lua_setfield(L, -2, "body");
	lua_pushinteger(L, resp->attempts);
	lua_setfield(L, -2, "attempts");
	lua_createtable(L, 0, (int)resp->nheaders);
	for (size_t i = 0; i < resp->nheaders; i++)
		add_header(L, resp->headers[i].name, resp->headers[i].value);
	lua_setfield(L, -2, "headers");
	rig_http_resp_release(resp);
	return 1;
}

static int h_idempotent(lua_State *L)
{
	lua_pushboolean(L, rig_http_idempotent(luaL_checkstring(L, 1)));
	return 1;
}

static int h_redact_url(lua_State *L)
{
	const char *url = luaL_checkstring(L, 1);
	luaL_Buffer b;
	size_t n = strlen(url) + 16;

	rig_http_redact_url(url, luaL_buffinitsize(L, &b, n), n);
	luaL_addsize(&b, strlen(b.b));
	luaL_pushresult(&b);
	return 1;
}

/* http.json in Lua: header defaults are case-insensitive table work, clearer in Lua. */
static const char json_src[] =
	"local M, core = ...\n"
	"local function has(h, name)\n"
	"  for k in pairs(h) do if type(k) == 'string' and k:lower() == name then return true end end\n"
	"  return false\n"
	"end\n"
	"function M.json(t)\n"
	"  local r, h = {}, {}\n"
	"  for k, v in pairs(t) do r[k] = v end\n"
	"  for k, v in pairs(t.headers or {}) do h[k] = v end\n"
	"  r.headers = h\n"
	"  if type(r.body) == 'table' or r.body == core.null then r.body = core.json_encode(r.body) end\n"
	"  if r.body ~= nil and not has(h, 'content-type') then h['Content-Type'] = 'application/json' end\n"
	"  if not has(h, 'accept') then h['Accept'] = 'application/json' end\n"
	"  local resp, msg, code = M.request(r)\n"
	"  if not resp then return nil, msg, code end\n"
	"  local ct = resp.headers['content-type'] or ''\n"
	"  if ct:find('json', 1, true) and resp.body:find('%S') then\n"
	"    local v, err = core.json_decode(resp.body)\n"
	"    if v == nil then resp.json_error = err else resp.json = v end\n"
	"  end\n"
	"  return resp\n"
	"end\n";

static const luaL_Reg httplib[] = {
	{ "request", h_request },
	{ "idempotent", h_idempotent },
	{ "redact_url", h_redact_url },
	{ NULL, NULL },
};

int luaopen_rigor_http(lua_State *L)
{
	luaL_newlib(L, httplib);
	if (luaL_loadbufferx(L, json_src, sizeof(json_src) - 1, "=rigor.http", "t") != LUA_OK)
		return lua_error(L);
	lua_pushvalue(L, -2);
	lua_getglobal(L, "require");
	lua_pushstring(L, "rigor.core");
	lua_call(L, 1, 1);
	lua_call(L, 2, 0);
	return 1;
}
