// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for rigor.core's JSON (host/lua/lcore.c over jansson): the input is a
 * response body as json_decode() sees it. What decodes must encode again (or refuse a
 * nesting deeper than the encoder's bound), decode to the same Lua value, and encode to
 * the same text; a failed decode returns nil and a message. Any other raise is a finding.
 */
#include "fuzzlua.h"

static const char driver[] =
	"local core = require 'rigor.core'\n"
	"local s = ...\n"
	"local function same(a, b, depth)\n"
	"  if type(a) ~= type(b) then return false end\n"
	"  if type(a) == 'number' then return math.type(a) == math.type(b) and a == b end\n"
	"  if type(a) ~= 'table' then return a == b end\n"
	"  if getmetatable(a) ~= getmetatable(b) then return false end\n"
	"  for k, v in pairs(a) do if not same(v, b[k], depth + 1) then return false end end\n"
	"  for k in pairs(b) do if a[k] == nil then return false end end\n"
	"  return true\n"
	"end\n"
	"local v, err = core.json_decode(s)\n"
	"if v == nil then\n"
	"  assert(type(err) == 'string' and err:find('^json: '), 'decode failure without message')\n"
	"  return\n"
	"end\n"
	"for _, indent in ipairs{ 0, 2 } do\n"
	"  local ok, e1 = pcall(core.json_encode, v, indent)\n"
	"  if not ok then\n"
	"    if tostring(e1):find('nesting too deep', 1, true) then return end\n"
	"    error('cannot encode a decoded value: ' .. tostring(e1))\n"
	"  end\n"
	"  local v2, err2 = core.json_decode(e1)\n"
	"  if v2 == nil then error('encoded text does not decode: ' .. err2 .. ': ' .. e1) end\n"
	"  if not same(v, v2, 0) then error('round trip changed the value: ' .. e1) end\n"
	"  local e2 = core.json_encode(v2, indent)\n"
	"  if e1 ~= e2 then error('encoding is not stable: ' .. e1 .. ' vs ' .. e2) end\n"
	"end\n";

static struct rig_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ctx = fuzz_ctx_new();
	return 0;
}

/* A fresh state per input: with one long-lived state every input would leave allocations
 * behind, and libFuzzer would run a full leak check after each. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lua_State *L;

	if (size > 256 << 10)
		return -1;
	L = fuzz_lua_new(ctx);
	lua_pushlstring(L, (const char *)data, size);
	fuzz_lua_run(L, driver, "=fuzz_json", 1);
	lua_close(L);
	return 0;
}
