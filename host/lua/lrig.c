/* SPDX-License-Identifier: MIT */
/*
 * Rig objects for scripts, shaped like liolib.c: one metatable per type, methods in
 * __index, a check function that raises on a closed object.
 *
 * Failure policy: outcomes a test may legitimately check (interlock refusal, an
 * unsupported operation, a missing button, an expect() that did not match) return
 * nil, message, code. Failures of the rig itself (I/O error, device gone, back-end
 * timeout, protocol error) raise { rigor_infra = true, message, code }, so the runner
 * reports them as infrastructure errors (exit 3), not as test failures.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lrig.h"

#define RIG_MT "rig.rig"

struct rigbox {
	struct rig *rig;
};

static const char *const role_mts[RIG_ROLE_COUNT] = {
	[RIG_ROLE_POWER] = "rig.power", [RIG_ROLE_SDMUX] = "rig.sdmux",
	[RIG_ROLE_BUTTON] = "rig.button", [RIG_ROLE_CONSOLE] = "rig.console",
	[RIG_ROLE_USBBOOT] = "rig.usbboot", [RIG_ROLE_STORAGE] = "rig.storage",
	[RIG_ROLE_NETWORK] = "rig.network",
};

struct rig *rigl_checkrig(lua_State *L, int idx)
{
	struct rigbox *b = luaL_checkudata(L, idx, RIG_MT);

	if (!b->rig)
		luaL_error(L, "attempt to use a closed rig");
	return b->rig;
}

/* Role objects are tables { rig = <rigbox>, name = button name }. */
static struct rig *checkrole(lua_State *L, enum rig_role role)
{
	struct rig *rig;
	bool ok = false;

	if (lua_getmetatable(L, 1)) {
		luaL_getmetatable(L, role_mts[role]);
		ok = lua_rawequal(L, -1, -2);
		lua_pop(L, 2);
	}
	if (!ok)
		luaL_typeerror(L, 1, role_mts[role]);
	lua_getfield(L, 1, "rig");
	rig = rigl_checkrig(L, -1);
	lua_pop(L, 1);
	return rig;
}

static bool infra_error(int rc)
{
	return rc == RIG_E_IO || rc == RIG_E_NODEV || rc == RIG_E_TIMEOUT || rc == RIG_E_PROTO ||
	       rc == RIG_E_BUSY || rc == RIG_E_NOMEM || rc == RIG_E_ROFS;
}

/* Turn a librig result into Lua results: true, nil+msg+code, or a raise. */
int rigl_result(lua_State *L, struct rig *rig, int rc)
{
	const char *msg;

	if (rc >= 0) {
		lua_pushboolean(L, 1);
		return 1;
	}
	msg = *rig_errmsg(rig) ? rig_errmsg(rig) : rig_strerror(rc);
	if ((rc == RIG_E_TIMEOUT || rc == RIG_E_INTR) && rigl_abort_due(L)) {
		/* cut short by the case deadline or a signal: that is the case's outcome */
		rig_clear_error(rig);
		rigl_check_abort(L);
	}
	if (rc == RIG_E_INTR) {
		rigl_check_abort(L);
		rigl_abort(L, "SIGINT", "interrupted");
	}
	if (infra_error(rc)) {
		lua_createtable(L, 0, 3);
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "rigor_infra");
		lua_pushstring(L, msg);
		lua_setfield(L, -2, "message");
		lua_pushstring(L, rig_err_name(rc));
		lua_setfield(L, -2, "code");
		luaL_setmetatable(L, "rigor.error");
		rig_clear_error(rig);
		return lua_error(L);
	}
	lua_pushnil(L);
	lua_pushstring(L, msg);
	lua_pushstring(L, rig_err_name(rc));
	rig_clear_error(rig);
	return 3;
}

/* ---- power ---- */

static int power_on(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_POWER);

	rigl_check_abort(L);
	return rigl_result(L, rig, rig_power_set(rig, true));
}

static int power_off(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_POWER);

	rigl_check_abort(L);
	return rigl_result(L, rig, rig_power_set(rig, false));
}

static int power_cycle(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_POWER);

	rigl_check_abort(L);
	return rigl_result(L, rig, rig_power_cycle(rig, (int)luaL_optinteger(L, 2, -1)));
}

static int power_state(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_POWER);
	int rc = rig_power_get(rig);

	if (rc < 0)
		return rigl_result(L, rig, rc);
	lua_pushstring(L, rc ? "on" : "off");
	return 1;
}

static int power_measure(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_POWER);
	struct rig_power_reading r;
	int rc = rig_power_measure(rig, &r);

	if (rc < 0)
		return rigl_result(L, rig, rc);
	lua_createtable(L, 0, 2);
	lua_pushinteger(L, r.mv);
	lua_setfield(L, -2, "mv");
	lua_pushinteger(L, r.ma);
	lua_setfield(L, -2, "ma");
	return 1;
}

static const luaL_Reg power_meth[] = {
	{ "on", power_on }, { "off", power_off }, { "cycle", power_cycle },
	{ "state", power_state }, { "measure", power_measure }, { NULL, NULL },
};

/* ---- sdmux ---- */

static const char *const mux_opts[] = { "off", "host", "dut", NULL };

static int mux_set(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_SDMUX);
	int m = luaL_checkoption(L, 2, NULL, mux_opts);

	rigl_check_abort(L);
	return rigl_result(L, rig, rig_sdmux_set(rig, (enum rig_mux)m));
}

static int mux_get(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_SDMUX);
	int rc = rig_sdmux_get(rig);

	if (rc < 0)
		return rigl_result(L, rig, rc);
	lua_pushstring(L, rig_mux_name((enum rig_mux)rc));
	return 1;
}

static const luaL_Reg sdmux_meth[] = {
	{ "set", mux_set }, { "get", mux_get }, { NULL, NULL },
};

/* ---- buttons ---- */

static const char *button_name(lua_State *L)
{
	const char *n;

	lua_getfield(L, 1, "name");
	n = lua_tostring(L, -1);
	lua_pop(L, 1);   /* the role table keeps the string alive */
	return n;
}

static int button_press(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_BUTTON);
	int ms = (int)luaL_optinteger(L, 2, -1);

	if (ms < -1)
		return luaL_argerror(L, 2, "press length must be >= 0 ms (or -1 for the rig's press_ms)");
	rigl_check_abort(L);
	return rigl_result(L, rig, rig_button_press(rig, button_name(L), ms));
}

static int button_hold(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_BUTTON);

	return rigl_result(L, rig, rig_button_set(rig, button_name(L), true));
}

static int button_release(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_BUTTON);

	return rigl_result(L, rig, rig_button_set(rig, button_name(L), false));
}

static const luaL_Reg button_meth[] = {
	{ "press", button_press }, { "hold", button_hold }, { "release", button_release },
	{ NULL, NULL },
};

/* ---- console ---- */

/* Tail of the buffered output, for "expected X, last output was ..." messages. */
static void push_tail(lua_State *L, struct rig *rig)
{
	const char *data;
	size_t n = rig_console_peek(rig, &data);

	if (n > 200) {
		data += n - 200;
		n = 200;
	}
	lua_pushlstring(L, data, n);
}

/*
 * expect(pattern [, timeout_ms [, plain]]): wait until the console output matches a
 * Lua pattern. Returns the match (or its captures) and consumes output up to its end.
 */
static int console_expect(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_CONSOLE);
	const char *pat = luaL_checkstring(L, 2);
	int timeout = (int)luaL_optinteger(L, 3, 10000);
	int plain = lua_toboolean(L, 4);
	struct rig_deadline end = rig_deadline_start(timeout);

	lua_settop(L, 4);   /* results of string.find start at index 6 */
	for (;;) {
		const char *data;
		size_t n = rig_console_peek(rig, &data);
		int nres, rc, left;

		/* string.find(data, pat, 1, plain) */
		lua_getglobal(L, "string");
		lua_getfield(L, -1, "find");
		lua_pushlstring(L, data, n);
		lua_pushvalue(L, 2);
		lua_pushinteger(L, 1);
		lua_pushboolean(L, plain);
		lua_call(L, 4, LUA_MULTRET);
		nres = lua_gettop(L) - 5;
		if (!lua_isnil(L, 6)) {
			lua_Integer s = lua_tointeger(L, 6), e = lua_tointeger(L, 7);

			if (nres > 2) {
				rig_console_consume(rig, (size_t)e);
				return nres - 2;
			}
			lua_pushlstring(L, data + s - 1, (size_t)(e - s + 1));
			rig_console_consume(rig, (size_t)e);
			return 1;
		}
		lua_settop(L, 4);
		left = rigl_clamp(L, rig_deadline_left_ms(end));
		if (left == 0 && rig_deadline_expired(end))
			rc = RIG_E_TIMEOUT;
		else
			rc = rig_console_fill(rig, left);
		if (rc == RIG_E_TIMEOUT) {
			rigl_check_abort(L);
			if (!rig_deadline_expired(end))
				continue;
			lua_pushnil(L);
			lua_pushfstring(L, "console: no match for '%s' within %d ms; last output: ", pat,
					timeout);
			push_tail(L, rig);
			lua_concat(L, 2);
			lua_pushstring(L, "RIG_E_TIMEOUT");
			return 3;
		}
		if (rc < 0)
			return rigl_result(L, rig, rc);
	}
}

static int console_send(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_CONSOLE);
	size_t n;
	const char *s = luaL_checklstring(L, 2, &n);

	rigl_check_abort(L);
	return rigl_result(L, rig, rig_console_write(rig, s, n, rigl_clamp(L, 5000)));
}

static int console_sendline(lua_State *L)
{
	luaL_checkstring(L, 2);
	lua_settop(L, 2);
	lua_pushliteral(L, "\n");
	lua_concat(L, 2);
	return console_send(L);
}

/* read([timeout_ms]): whatever arrives (buffered first), or nil, "timeout". */
static int console_read(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_CONSOLE);
	int timeout = (int)luaL_optinteger(L, 2, 0);
	const char *data;
	size_t n = rig_console_peek(rig, &data);
	int rc;

	if (n == 0) {
		rc = rig_console_fill(rig, rigl_clamp(L, timeout));
		if (rc == RIG_E_TIMEOUT) {
			rigl_check_abort(L);
			lua_pushnil(L);
			lua_pushliteral(L, "timeout");
			lua_pushstring(L, "RIG_E_TIMEOUT");
			return 3;
		}
		if (rc < 0)
			return rigl_result(L, rig, rc);
		n = rig_console_peek(rig, &data);
	}
	lua_pushlstring(L, data, n);
	rig_console_consume(rig, n);
	return 1;
}

static int console_clear(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_CONSOLE);
	const char *data;

	while (rig_console_fill(rig, 0) > 0)
		;
	rig_console_consume(rig, rig_console_peek(rig, &data));
	return 0;
}

static const luaL_Reg console_meth[] = {
	{ "expect", console_expect }, { "send", console_send }, { "sendline", console_sendline },
	{ "read", console_read }, { "clear", console_clear }, { NULL, NULL },
};

/* ---- usbboot, storage ---- */

static int usbboot_boot(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_USBBOOT);
	const char *dir = luaL_optstring(L, 2, NULL);     /* nil: the rig file's msd_dir */
	int timeout = (int)luaL_optinteger(L, 3, -1);

	return rigl_result(L, rig, rig_usbboot(rig, dir, rigl_clamp(L, timeout)));
}

static const luaL_Reg usbboot_meth[] = { { "boot", usbboot_boot }, { NULL, NULL } };

static int storage_path(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_STORAGE);
	char path[4096], why[512];
	int rc = rig_storage_resolve(rig, path, sizeof(path), why, sizeof(why));

	if (rc < 0)
		return rigl_result(L, rig, rc);
	lua_pushstring(L, path);
	lua_pushstring(L, why);
	return 2;
}

static const luaL_Reg storage_meth[] = { { "path", storage_path }, { NULL, NULL } };

/* ---- network ---- */

/* address([timeout_ms]) -> host, port */
static int network_address(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_NETWORK);
	int timeout = (int)luaL_optinteger(L, 2, -1);
	char host[256];
	int port = 0, rc;

	rigl_check_abort(L);
	rc = rig_network_address(rig, host, sizeof(host), &port, rigl_clamp(L, timeout));
	if (rc < 0)
		return rigl_result(L, rig, rc);
	lua_pushstring(L, host);
	lua_pushinteger(L, port);
	return 2;
}

/* login() -> user, identity (nil: the SSH client's own keys) */
static int network_login(lua_State *L)
{
	struct rig *rig = checkrole(L, RIG_ROLE_NETWORK);
	const char *id = rig_network_identity(rig);

	lua_pushstring(L, rig_network_user(rig));
	if (id)
		lua_pushstring(L, id);
	else
		lua_pushnil(L);
	return 2;
}

static int network_uplink(lua_State *L, bool up)
{
	struct rig *rig = checkrole(L, RIG_ROLE_NETWORK);
	int timeout = (int)luaL_optinteger(L, 2, -1);

	rigl_check_abort(L);
	return rigl_result(L, rig, rig_network_uplink(rig, up, rigl_clamp(L, timeout)));
}

static int network_cut(lua_State *L) { return network_uplink(L, false); }
static int network_restore(lua_State *L) { return network_uplink(L, true); }

static const luaL_Reg network_meth[] = {
	{ "address", network_address }, { "login", network_login }, { "cut", network_cut },
	{ "restore", network_restore }, { NULL, NULL },
};

/* ---- the rig ---- */

static int rig_l_has(lua_State *L)
{
	lua_pushboolean(L, rig_has_cap(rigl_checkrig(L, 1), luaL_checkstring(L, 2)));
	return 1;
}

static int rig_l_safe(lua_State *L)
{
	struct rig *rig = rigl_checkrig(L, 1);

	return rigl_result(L, rig, rig_safe(rig));
}

static int rig_l_log_to(lua_State *L)
{
	struct rig *rig = rigl_checkrig(L, 1);

	return rigl_result(L, rig, rig_log_to(rig, luaL_optstring(L, 2, NULL)));
}

static int rig_l_inject(lua_State *L)
{
	static const char *const roles[] = { "power", "sdmux", "button", "console", "usbboot",
					     "storage", "network", NULL };
	struct rig *rig = rigl_checkrig(L, 1);
	int role = luaL_checkoption(L, 2, NULL, roles);
	const char *fault = luaL_checkstring(L, 3);

	return rigl_result(L, rig, rig_inject(rig, (enum rig_role)role, luaL_optstring(L, 4, NULL), fault));
}

static int rig_l_tostring(lua_State *L)
{
	struct rigbox *b = luaL_checkudata(L, 1, RIG_MT);

	if (b->rig)
		lua_pushfstring(L, "rig (%s)", rig_name(b->rig));
	else
		lua_pushliteral(L, "rig (closed)");
	return 1;
}

static const luaL_Reg rig_meth[] = {
	{ "has", rig_l_has }, { "safe", rig_l_safe }, { "log_to", rig_l_log_to },
	{ "inject", rig_l_inject }, { NULL, NULL },
};

/* Push a role object { rig = box, name = name } with the role's metatable. */
static void push_role(lua_State *L, int box, enum rig_role role, const char *name)
{
	lua_createtable(L, 0, 2);
	lua_pushvalue(L, box);
	lua_setfield(L, -2, "rig");
	if (name) {
		lua_pushstring(L, name);
		lua_setfield(L, -2, "name");
	}
	luaL_setmetatable(L, role_mts[role]);
}

/*
 * The rig's fields (name, roles, ...) live in its user value, a table built once when
 * the rig is pushed; __index looks there, then in the methods.
 */
static int rig_l_index(lua_State *L)
{
	luaL_checkudata(L, 1, RIG_MT);
	lua_getiuservalue(L, 1, 1);
	lua_pushvalue(L, 2);
	if (lua_rawget(L, -2) != LUA_TNIL)
		return 1;
	luaL_getmetatable(L, RIG_MT);
	lua_getfield(L, -1, "methods");
	lua_pushvalue(L, 2);
	lua_rawget(L, -2);
	return 1;
}

void rigl_push_rig(lua_State *L, struct rig *rig)
{
	struct rigbox *b = lua_newuserdatauv(L, sizeof(*b), 1);
	int box = lua_gettop(L);
	static const enum rig_role single[] = { RIG_ROLE_POWER, RIG_ROLE_SDMUX, RIG_ROLE_CONSOLE,
						RIG_ROLE_USBBOOT, RIG_ROLE_STORAGE,
						RIG_ROLE_NETWORK };

	b->rig = NULL;
	luaL_setmetatable(L, RIG_MT);
	b->rig = rig;
	lua_createtable(L, 0, 12);
	lua_pushstring(L, rig_name(rig));
	lua_setfield(L, -2, "name");
	lua_pushstring(L, rig_device_type(rig));
	lua_setfield(L, -2, "device_type");
	lua_newtable(L);
	for (size_t i = 0; rig_cap(rig, i); i++) {
		lua_pushstring(L, rig_cap(rig, i));
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "capabilities");
	for (size_t i = 0; i < sizeof(single) / sizeof(single[0]); i++) {
		if (!rig_has_role(rig, single[i]))
			continue;
		push_role(L, box, single[i], NULL);
		lua_setfield(L, -2, rig_role_name(single[i]));
	}
	lua_newtable(L);
	for (size_t i = 0; i < rig_button_count(rig); i++) {
		push_role(L, box, RIG_ROLE_BUTTON, rig_button_name(rig, i));
		lua_setfield(L, -2, rig_button_name(rig, i));
	}
	lua_setfield(L, -2, "button");
	lua_setiuservalue(L, box, 1);
}

void rigl_forget_rig(lua_State *L, int idx)
{
	struct rigbox *b = luaL_checkudata(L, idx, RIG_MT);

	b->rig = NULL;
}

void rigl_register_rig(lua_State *L)
{
	static const luaL_Reg *const meths[RIG_ROLE_COUNT] = {
		[RIG_ROLE_POWER] = power_meth, [RIG_ROLE_SDMUX] = sdmux_meth,
		[RIG_ROLE_BUTTON] = button_meth, [RIG_ROLE_CONSOLE] = console_meth,
		[RIG_ROLE_USBBOOT] = usbboot_meth, [RIG_ROLE_STORAGE] = storage_meth,
		[RIG_ROLE_NETWORK] = network_meth,
	};

	luaL_newmetatable(L, RIG_MT);
	lua_pushcfunction(L, rig_l_index);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, rig_l_tostring);
	lua_setfield(L, -2, "__tostring");
	luaL_newlib(L, rig_meth);
	lua_setfield(L, -2, "methods");
	lua_pop(L, 1);
	for (int r = 0; r < RIG_ROLE_COUNT; r++) {
		luaL_newmetatable(L, role_mts[r]);
		lua_newtable(L);
		luaL_setfuncs(L, meths[r], 0);
		lua_setfield(L, -2, "__index");
		lua_pop(L, 1);
	}
	rigl_register_flash(L);
}
