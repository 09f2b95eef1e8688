/* SPDX-License-Identifier: MIT */
/* The rigor command line: a table of commands, each option parsing plus library calls. */
#ifndef RIGOR_HOST_CLI_H
#define RIGOR_HOST_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "rig_json.h"

#include "rig.h"

/* Exit codes (docs/rigor.1, EXIT STATUS). */
enum {
	EXIT_PASS = 0,
	EXIT_TESTFAIL = 1,
	EXIT_USAGE = 2,
	EXIT_INFRA = 3,
};

struct cli {
	struct rig_ctx *ctx;
	const char *rig_arg;    /* --rig or RIGOR_RIG */
	bool rig_explicit;      /* chosen by --rig or RIGOR_RIG, not the default */
	int wait_s;             /* --wait */
	const char *token;      /* --token or RIGOR_TOKEN: a reservation's (rigor acquire) */
	bool json;
	int verbose;
	const char *argv0;
	char cmdline[512];      /* recorded as the lock holder */
	/* Set by the one CLI open helper: */
	struct rig_desc *desc;
	struct rig *rig;
	struct rig_lock *lock;
};

struct cmd {
	const char *name;
	int (*fn)(struct cli *c, int argc, char **argv);
	const char *usage;
	const char *help;       /* one line, for the command list */
	const char *details;    /* options and behaviour, for COMMAND --help */
};

extern volatile sig_atomic_t cli_signal;
/* The exit code of a command stopped by a signal: 128 + the signal (SIGINT when none). */
int cli_signal_exit(void);

void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the usage of @cmd to @f. */
void cli_usage(FILE *f, const struct cmd *cmd);
/* Whether argv has -h/--help, which each command answers with its usage. */
bool cli_wants_help(int argc, char **argv);
/* Map a library error to an exit code, printing @what and the detail. */
int cli_fail(struct cli *c, int rc, const char *what);
/* Resolve --rig to a file path (rig name looked up on the rig path). */
int cli_rig_path(const char *arg, char *buf, size_t len);
/* Load and validate the rig description; prints every problem. Returns 0 or an exit code. */
int cli_load_desc(struct cli *c);
/*
 * Load, lock and open the rig for control (power, mux, buttons, usbboot, storage, flash):
 * the console is left to whoever holds the console lock. Returns 0 or an exit code.
 */
int cli_open_rig(struct cli *c);
/* The same for @scope (enum rig_lock_scope): opens the parts that scope covers. */
int cli_open_rig_scope(struct cli *c, unsigned int scope);
void cli_close_rig(struct cli *c);
/* The directory rigor's Lua modules are read from. */
const char *cli_lua_dir(void);
/* Directories searched for rig files, in order; NULL-terminated, static storage. */
const char *const *cli_rig_dirs(void);

/*
 * JSON output (json.c). Every JSON document the CLI prints is built with jansson, its
 * strings with rig_json_string() (rig_json.h).
 * cli_json_print(): print @doc compactly on one line of stdout and drop the reference.
 * Returns 0, or EXIT_INFRA when @doc is NULL or cannot be encoded (out of memory).
 */
int cli_json_print(json_t *doc);

int cmd_run(struct cli *c, int argc, char **argv);
int cmd_flash(struct cli *c, int argc, char **argv);
int cmd_image(struct cli *c, int argc, char **argv);
int cmd_lua(struct cli *c, int argc, char **argv);
int cmd_list(struct cli *c, int argc, char **argv);
int cmd_gate(struct cli *c, int argc, char **argv);
int cmd_drivers(struct cli *c, int argc, char **argv);
int cmd_power(struct cli *c, int argc, char **argv);
int cmd_sdmux(struct cli *c, int argc, char **argv);
int cmd_button(struct cli *c, int argc, char **argv);
int cmd_console(struct cli *c, int argc, char **argv);
int cmd_usbboot(struct cli *c, int argc, char **argv);
int cmd_storage(struct cli *c, int argc, char **argv);
int cmd_who(struct cli *c, int argc, char **argv);
int cmd_acquire(struct cli *c, int argc, char **argv);
int cmd_release(struct cli *c, int argc, char **argv);
int cmd_check(struct cli *c, int argc, char **argv);
int cmd_sim(struct cli *c, int argc, char **argv);

#endif
