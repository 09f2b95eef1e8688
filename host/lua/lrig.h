/* SPDX-License-Identifier: MIT */
/* Internals shared by the binding's files. */
#ifndef RIGOR_HOST_LRIG_H
#define RIGOR_HOST_LRIG_H

#include <assert.h>
#include <stdbool.h>

#include "rigl_lua.h"

struct rigl_rt {
	struct rig_ctx *ctx;
	volatile sig_atomic_t *sig;
	bool armed;
	int64_t deadline;   /* absolute rig_now_ms(), 0 = none */
	int64_t armed_at;
	bool exit_called;   /* os.exit() was called (and raised) */
	int exit_code;
};

struct rigl_rt *rigl_rt(lua_State *L);
/* Raise a deadline or signal abort if one is due (only while armed). */
void rigl_check_abort(lua_State *L);
/* Whether rigl_check_abort() would raise now. */
bool rigl_abort_due(lua_State *L);
/* Raise the case-deadline abort (armed with a deadline), due or not. */
int rigl_abort_deadline(lua_State *L);
/* Clamp a timeout to the armed case deadline; raises if it already passed. */
int rigl_clamp(lua_State *L, int timeout_ms);
int rigl_abort(lua_State *L, const char *kind, const char *msg);
void rigl_register_rig(lua_State *L);
/* rigor.http (lhttp.c), for package.preload */
int luaopen_rigor_http(lua_State *L);
void rigl_register_flash(lua_State *L);
/* The rig of the rig object at @idx; raises if it is not one or is closed. */
struct rig *rigl_checkrig(lua_State *L, int idx);
/* A librig result as Lua results (true / nil,msg,code) or a raise (infra, aborts). */
int rigl_result(lua_State *L, struct rig *rig, int rc);
/*
 * A jansson value as a Lua value (lcore.c), arrays with rigor.core's array metatable. JSON
 * null is core.null, or with @drop_nulls nil, so null object members are left out.
 */
typedef struct json_t json_t;
void rigl_push_json(lua_State *L, json_t *j, bool drop_nulls);

#endif
