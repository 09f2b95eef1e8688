/* SPDX-License-Identifier: MIT */
/**
 * @file rigl.h
 * @brief What the rigor CLI asks of the Lua side: run suites, list them, run a script,
 * read a rig file. No Lua type appears here, so the CLI never includes lua.h; the
 * binding's lua_State entry points are in rigl_lua.h.
 *
 * Scripts see the module `rigor.core` (clock, sleep, case deadlines, signals, JSON) and
 * rig objects (`rig.power:on()`, `rig.console:expect(...)`); see docs/lua-api.md.
 *
 * Exit codes returned below are rigor's (rigor(1), EXIT STATUS): 0 passed, 1 test
 * failures, 2 usage, 3 infrastructure, 128 + N stopped by signal N.
 */
#ifndef RIGOR_HOST_RIGL_H
#define RIGOR_HOST_RIGL_H

#include <signal.h>
#include <stdbool.h>

#include "rig.h"

/**
 * What a Lua run needs from its host. The caller owns it and everything it points to;
 * it must outlive the call it is passed to.
 */
struct rigl_env {
	struct rig_ctx *ctx;
	/** Directory of rigor's Lua modules (rigor/runner.lua, ...). */
	const char *luadir;
	/** Set to the signal number by the process's SIGINT/SIGTERM handler. */
	volatile sig_atomic_t *sig;
	/** Default of `rigor run --color/--no-color` (e.g. stdout is a terminal). */
	bool color;
	/**
	 * Open (and lock) the rig, called at most once and only when it is needed: not for
	 * `rigor run --list`. Returns 0 and *rig (the caller keeps ownership and closes it after
	 * the call returns), or an exit code. NULL: no rig (rigl_script() without --rig).
	 */
	int (*open_rig)(void *arg, struct rig **rig);
	/** Print one error line (no trailing newline) for the user. Required. */
	void (*error)(void *arg, const char *msg);
	void *arg;              /**< passed to open_rig() and error() */
};

/**
 * `rigor run ARGS...`: @p argv (@p argc words, without the command name) goes to
 * rigor.runner.cli, the one parser of run's options (docs/rigor.1); suites run on the rig
 * from @p env->open_rig and reports go to stdout/stderr and the files asked for.
 * Blocks until the run ends; a signal (@p env->sig) aborts the current case.
 * @return the run's exit code: 0, 1, 2 (usage), 3 (infrastructure, also when the runner
 *         cannot be loaded or raises), 128 + N.
 */
int rigl_run(const struct rigl_env *env, int argc, char **argv);
/**
 * `rigor list suites|cases ARGS...`: [--case PATTERN] [--tag TAG]... [FILE|DIR...]
 * (default: testcases). Prints suites (@p suites_only) or cases; never opens a rig.
 * @return 0, 2 (a usage error or a suite that fails to load), 3 (runner not loadable).
 */
int rigl_list(const struct rigl_env *env, int argc, char **argv, bool suites_only);
/**
 * `rigor gate ARGS...`: @p argv (without the command name) goes to rigor.gate.cli, which
 * reads the gate file and runs its cells as `rigor run` processes (the binary of this
 * process); it never opens a rig itself. A signal (@p env->sig) stops every cell.
 * @return the gate's exit code: 0 passes, 1 a required failure, 2 usage or a bad gate
 *         file, 3 a required cell could not be run, 128 + N.
 */
int rigl_gate(const struct rigl_env *env, int argc, char **argv);
/**
 * `rigor lua FILE ARGS...`: run the script @p argv[0] with `arg` and `...` set from
 * @p argv[1..]; the global `rig` is set when @p env->open_rig is given.
 * @return the script's os.exit() code or returned integer, 0, 1 (an error), 2 (the file
 *         cannot be loaded), or the exit code of open_rig().
 */
int rigl_script(const struct rigl_env *env, int argc, char **argv);
/**
 * Read a rig file into a new description. Syntax and run-time errors of the file become
 * problems of the description, so the caller reports everything with rig_desc_validate().
 * @return 0 and *out (free with rig_desc_free()), or RIG_E_NOMEM.
 */
int rigl_load_rigfile(struct rig_ctx *ctx, const char *path, struct rig_desc **out);

#endif
