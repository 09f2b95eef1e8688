/* SPDX-License-Identifier: MIT */
/**
 * @file rigl_lua.h
 * @brief The Lua binding's lua_State entry points: for host/lua itself and for programs
 * that embed the binding (the fuzz targets). The CLI uses rigl.h, which has no Lua type.
 */
#ifndef RIGOR_HOST_RIGL_LUA_H
#define RIGOR_HOST_RIGL_LUA_H

#include <signal.h>

#include <lua.h>

#include "rigl.h"

/**
 * Prepare @p L for rigor scripts: standard libraries, package.path pointing at rigor's
 * Lua modules (@p luadir), and `rigor.core` in package.preload. @p sig is the flag the
 * process's SIGINT/SIGTERM handler sets (its value is the signal number); it interrupts
 * armed cases.
 */
void rigl_setup(lua_State *L, struct rig_ctx *ctx, const char *luadir,
		volatile sig_atomic_t *sig);
/**
 * Make signals (the @p sig flag of rigl_setup()) end the script running on @p L even when
 * no case is armed: a busy loop, a pcall or a child process cannot hold on to them. Used
 * by `rigor lua`; `rigor run` arms per case instead.
 */
void rigl_watch_signals(lua_State *L);
/**
 * The code a script asked for with os.exit() (which raises instead of exiting, so cleanup
 * runs), or -1 when it did not call it.
 */
int rigl_exit_code(lua_State *L);
/** Push a rig object for @p rig. The caller keeps ownership; see rigl_forget_rig(). */
void rigl_push_rig(lua_State *L, struct rig *rig);
/** Mark the rig object at @p idx closed, so later use raises instead of touching freed memory. */
void rigl_forget_rig(lua_State *L, int idx);

#endif
