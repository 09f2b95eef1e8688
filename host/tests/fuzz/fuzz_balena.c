// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the balena client's response handling (lua/rigor/balena.lua over
 * http.json in host/lua/lhttp.c and json_decode in host/lua/lcore.c). rigor.http.request
 * is replaced by a fake that answers each request with the next record of the input, so
 * the real http.json (content-type check, JSON decoding) and the real client run on it.
 *
 * Input: one byte choosing the client call, then records separated by 0x1E, each
 *   <content-type selector> <status selector> <body bytes...>
 * When the records run out, a request fails as a transport error would.
 *
 * Findings: any raise out of a client call (the client promises nil, message, code), a
 * failure without message or code, and the API key showing in a message or log line.
 */
#include "fuzzlua.h"

struct feed {
	const uint8_t *p;
	size_t n;
};

static const int statuses[16] = { 200, 200, 200, 201, 204, 400, 401, 403, 404, 409, 429, 500,
				  503, 302, 100, 299 };
static const char *const ctypes[8] = { "application/json", "application/json; charset=utf-8",
				       "text/plain", NULL, "application/problem+json",
				       "text/html", "", "application/json" };

/* request(t): the next record as { status, body, headers, attempts }, or nil, msg, code */
static int fake_request(lua_State *L)
{
	struct feed *f = lua_touserdata(L, lua_upvalueindex(1));
	const uint8_t *end;
	size_t len;

	luaL_checktype(L, 1, LUA_TTABLE);
	if (lua_getfield(L, 1, "url") != LUA_TSTRING)
		return luaL_error(L, "fake request: no url");
	if (f->n < 2) {
		lua_pushnil(L);
		lua_pushliteral(L, "fake: connection refused");
		lua_pushliteral(L, "RIG_E_IO");
		return 3;
	}
	end = memchr(f->p + 2, 0x1E, f->n - 2);
	len = end ? (size_t)(end - f->p) : f->n;
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, statuses[f->p[1] % 16]);
	lua_setfield(L, -2, "status");
	lua_pushlstring(L, (const char *)f->p + 2, len - 2);
	lua_setfield(L, -2, "body");
	lua_pushinteger(L, 1);
	lua_setfield(L, -2, "attempts");
	lua_newtable(L);
	if (ctypes[f->p[0] % 8]) {
		lua_pushstring(L, ctypes[f->p[0] % 8]);
		lua_setfield(L, -2, "content-type");
	}
	lua_setfield(L, -2, "headers");
	f->p += end ? len + 1 : len;
	f->n -= end ? len + 1 : len;
	return 1;
}

static const char driver[] =
	"local which = ...\n"
	"local balena = require 'rigor.balena'\n"
	"local KEY = 'FUZZKEY-0123456789abcdef'\n"
	"local UUID = '0123456789abcdef0123456789abcdef'\n"
	"local lines = {}\n"
	"local b = balena.new{ endpoint = 'https://api.example.test', api_key = KEY, retries = 0,\n"
	"  log = function(l) lines[#lines + 1] = l end }\n"
	"local DT = 'raspberrypi4-64'\n"
	"local calls = {\n"
	"  function() return b:whoami() end,\n"
	"  function() return b:fleet('MyOrg/MyFleet') end,\n"
	"  function() return b:fleet(1234) end,\n"
	"  function() return b:download_config{ fleet = 'myorg/myfleet', device_type = DT, version = '5.3.10' } end,\n"
	"  function() return b:download_config{ fleet = 42, device_type = DT, version = '5.3.10' } end,\n"
	"  function() return b:register{ fleet_id = 42, device_type = DT, provisioning_key = 'PROVKEY-0123456789', uuid = UUID } end,\n"
	"  function() return b:device(UUID) end,\n"
	"  function() return b:wait_online(UUID, 0, { sleep = function() end }) end,\n"
	"  function() return b:os_version(UUID) end,\n"
	"  function() return b:supervisor_version(UUID) end,\n"
	"  function() return b:call('GET', '/v7/device') end,\n"
	"}\n"
	"local n = which % #calls + 1\n"
	"local r = table.pack(pcall(calls[n]))\n"
	"if not r[1] then error('balena call ' .. n .. ' raised: ' .. tostring(r[2]), 0) end\n"
	"if r[2] == nil and not (n >= 9 and n <= 10 and r[3] == nil) then\n"
	"  assert(type(r[3]) == 'string' and type(r[4]) == 'string', 'failure without message and code')\n"
	"  assert(not r[3]:find(KEY, 1, true), 'API key in a message: ' .. r[3])\n"
	"  assert(not r[3]:find('PROVKEY-0123456789', 1, true), 'provisioning key in a message: ' .. r[3])\n"
	"end\n"
	"for _, l in ipairs(lines) do assert(not l:find(KEY, 1, true), 'API key in a log line: ' .. l) end\n";

static struct rig_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ctx = fuzz_ctx_new();
	return 0;
}

/* A fresh state per input (see fuzz_json.c); the fake request reads the input's records. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct feed f;
	lua_State *L;

	if (size < 1 || size > 256 << 10)
		return -1;
	f.p = data + 1;
	f.n = size - 1;
	L = fuzz_lua_new(ctx);
	/* package.loaded['rigor.http'].request = fake; http.json looks it up per call */
	lua_getglobal(L, "require");
	lua_pushliteral(L, "rigor.http");
	lua_call(L, 1, 1);
	lua_pushlightuserdata(L, &f);
	lua_pushcclosure(L, fake_request, 1);
	lua_setfield(L, -2, "request");
	lua_pop(L, 1);
	lua_pushinteger(L, data[0]);
	fuzz_lua_cover(L);
	fuzz_lua_run(L, driver, "=fuzz_balena", 1);
	lua_close(L);
	return 0;
}
