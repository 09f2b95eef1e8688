/* SPDX-License-Identifier: MIT */
/*
 * rigor: main(), the command table, the options every command shares, and the helpers
 * that turn library results into messages and exit codes.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "rigl.h"

volatile sig_atomic_t cli_signal;

static const struct cmd commands[] = {
	{ "run", cmd_run,
	  "run [--case PATTERN] [--tag TAG] [--junit F] [--tap F [--tap-version 13|14]] [--json F] [--artifacts DIR] [-q] [--color|--no-color] [--list] FILE|DIR...",
	  "run test suites on the rig and write reports",
	  "  FILE|DIR          suite files, or directories of *.lua suites (sorted)\n"
	  "  --case PATTERN    run only cases whose 'suite/case' name matches (Lua pattern or substring)\n"
	  "  --tag TAG         run only cases with TAG; '!TAG' excludes; may repeat\n"
	  "  --junit F         write JUnit XML;  --tap F  TAP 14;  --json F  JSON\n"
	  "  --tap-version 13  write TAP 13 (Debian 12's prove rejects 14)\n"
	  "  --artifacts DIR   one log per case (rig events + console); default ./rigor-artifacts\n"
	  "  -q, --quiet       no live human report on stdout\n"
	  "  --color, --no-color  colour the live report (default: when stdout is a terminal)\n"
	  "  --list            dry run: print the selected cases and exit; the rig is not opened\n"
	  "  --OPT=VALUE       same as --OPT VALUE;  --  ends the options\n"
	  "After every case and at the end the rig is put in its safe state (DUT off).\n"
	  "SIGINT/SIGTERM abort the current case, clean up and exit 130/143." },
	{ "gate", cmd_gate,
	  "gate GATEFILE [--out DIR] [--baseline FILE|DIR] [--only-rig NAME]... [--only-board TYPE]... [--list] [-q] | gate merge --out DIR [--baseline FILE|DIR] GATE.json...",
	  "run a release's board x suite matrix over this host's rigs and decide",
	  "Runs every cell of GATEFILE (a Lua gate file, docs/release-gate.md): each rig runs its\n"
	  "cells one after another, different rigs in parallel (one 'rigor run' per cell).\n"
	  "A cell that ends in an infrastructure error is retried on the same rig, then on\n"
	  "another rig of its device type; a failing case is re-run to tell failed from flaky.\n"
	  "  --out DIR         reports: DIR/gate.json, gate.md, gate.html, one directory per\n"
	  "                    cell attempt (default ./rigor-gate)\n"
	  "  --baseline F|DIR  the previous release's gate.json (or a directory of them)\n"
	  "  --only-rig NAME   use only these rigs of the gate (may repeat)\n"
	  "  --only-board TYPE run only these boards (device types) here (may repeat)\n"
	  "  --list            print the planned cells and rigs; run nothing\n"
	  "  -q, --quiet       no live progress on stdout\n"
	  "  merge             combine the gate.json of several hosts into one report\n"
	  "Exit 0 the release passes; 1 a required cell has a real failure; 2 a bad gate file\n"
	  "or usage; 3 a required cell could not be run (infrastructure, no rig of its device\n"
	  "type, or its required cases only skipped); 128+N interrupted." },
	{ "list", cmd_list, "list [rigs|suites|cases] [--case PATTERN] [--tag TAG] [FILE|DIR...]",
	  "list rigs, suites and test cases",
	  "Without a kind: rigs, then the cases of the given suites (default: testcases/).\n"
	  "  --case PATTERN, --tag TAG   select as 'rigor run' does (suites: those with a selected case)\n"
	  "With --json (before or after the kind), one JSON document: 'list rigs' (schema\n"
	  "rigor.rigs/1: name, device_type, capabilities, file, problems of each rig file),\n"
	  "'list suites' (rigor.suites/1: name, cases, tags, file) or 'list cases'\n"
	  "(rigor.cases/1: id, suite, name, tags, file)." },
	{ "drivers", cmd_drivers, "drivers", "list every back-end: <role> <name> <description>", NULL },
	{ "check", cmd_check, "check [RIGFILE...]", "validate rig files and report every mistake",
	  "Without files: the selected rig (--rig, RIGOR_RIG, or 'sim'). Exit 2 on any problem." },
	{ "flash", cmd_flash,
	  "flash IMAGE|URL [--bmap F|URL | --no-bmap] [--sha256 HEX] [--no-verify] [--full] [--inject PART:SRC:DEST] [--stall-timeout S] [--retries N] [--progress auto|bar|plain|none] [--json] [--target PATH --force [--create]]",
	  "write an OS image to the rig's SD card, verified",
	  "The DUT is switched off and the card muxed to the host first; afterwards the card\n"
	  "stays on the host. Formats by content: raw, gzip, xz, zstd, bzip2, zip.\n"
	  "An http:// or https:// URL is streamed with no temporary copy (not a zip); a dropped\n"
	  "connection is resumed where the server accepts ranges; credentials never printed.\n"
	  "  --bmap F          write only the ranges F (a file or URL) maps (default:\n"
	  "                    IMAGE.bmap if present; none is looked for next to a URL)\n"
	  "  --sha256 HEX      the image file (local or downloaded) must have this SHA-256;\n"
	  "                    a mismatch fails (exit 2) and the card is invalidated\n"
	  "  --stall-timeout S a URL: fail when no byte arrives for S seconds (default 30)\n"
	  "  --retries N       a URL: resumes in a row without progress before failing (5)\n"
	  "  --no-verify       skip reading back what was written (default: verify)\n"
	  "  --full            write every mapped block (default: skip blocks already right)\n"
	  "  --inject P:S:D    copy local file S to D in partition P (index or label) after flashing\n"
	  "  --target PATH --force  flash PATH directly, without the rig or its interlock\n"
	  "  --create          make PATH as a new image file for --target (never under /dev)\n"
	  "Progress on stderr (a bar on a terminal, plain lines otherwise: every 5 s and each\n"
	  "phase's last state); --json prints stats.\n"
	  "  --progress MODE   auto (a bar on a terminal unless TERM is dumb or unset, else\n"
	  "                    plain), bar, plain (no control codes), none\n"
	  "Exit 2 for a bad image, bmap or target (corrupt data included), 3 for a rig or\n"
	  "infrastructure failure, 128+signal when interrupted. A flash that fails after writing\n"
	  "began erases the card's first and last MiB, so a half-written card never boots." },
	{ "image", cmd_image, "image inspect IMAGE [--json]",
	  "show what an OS image is: format, sha256, partitions, os-release, boot loader",
	  "Any format 'rigor flash' takes (raw, gzip, xz, zstd, bzip2, zip). Needs no rig and no\n"
	  "root and writes nothing: a compressed image is decoded to a sparse temporary file in\n"
	  "$TMPDIR (else /tmp), removed before the command ends.\n"
	  "  --json            one JSON document (schema rigor.image/1, see rigor(1))\n"
	  "Exit 2 for a missing file, an image that is not a disk image, corrupt or truncated,\n"
	  "or has no partition table; 3 when it cannot be read or decoded for other reasons." },
	{ "power", cmd_power, "power on|off|cycle|status [--off-ms MS] [--json]", "switch or show DUT power",
	  "  cycle             off, wait max(--off-ms, the rig's min_off_ms), on\n"
	  "  status            on/off, with mV and mA when the back-end measures\n"
	  "  --json            one JSON object on stdout" },
	{ "sdmux", cmd_sdmux, "sdmux host|dut|off|status [--json]", "switch or show the SD card mux",
	  "Switching to the host is refused while the DUT is powered (interlock, exit 2);\n"
	  "right after power-off it waits out the rest of the rig's min_off_ms." },
	{ "button", cmd_button, "button NAME [--hold MS | --down | --up]", "press, hold or release a button",
	  "  --hold MS         press for MS milliseconds (default: the button's press_ms)\n"
	  "  --down / --up     hold the button (or boot strap) / release it" },
	{ "console", cmd_console, "console [--log FILE] [--timeout SECONDS]",
	  "attach to the DUT console (Ctrl-] quits)",
	  "On a terminal: interactive, raw mode, Ctrl-] quits. Otherwise stdin is sent to the\n"
	  "DUT and the command ends --timeout seconds (default 1) after stdin closes.\n"
	  "  --log FILE        append everything (timestamped) to FILE;\n"
	  "                    default <state dir>/<rig>-console.log\n"
	  "It holds only the rig's console lock: power, sdmux, button and flash in other\n"
	  "processes go on while it is attached (a second console is refused, as is 'run')." },
	{ "usbboot", cmd_usbboot, "usbboot [--dir DIR] [--timeout SECONDS]", "boot the DUT over USB",
	  "  --dir DIR         boot files to serve (default: msd_dir of the rig file's usbboot)\n"
	  "  --timeout SECONDS default 30" },
	{ "storage", cmd_storage, "storage status [--json]", "show the flash target the rig resolves",
	  "Prints the block device or file the storage role resolves to, and why." },
	{ "who", cmd_who, "who [--json]", "show who holds the rig: control, console, reservation",
	  "Lists every holder of the rig's locks (the control lock: power, mux, buttons, usbboot,\n"
	  "storage, flash; the console lock: 'rigor console') and its reservation, with pid,\n"
	  "user, command and since when. Locks are host-wide: every user and tool sees them.\n"
	  "  --json            one JSON document (schema rigor.who/1)" },
	{ "acquire", cmd_acquire, "acquire [--pid PID] [--json]",
	  "reserve the rig across commands; prints a token",
	  "Prints a token; commands given it (RIGOR_TOKEN=TOKEN or --token TOKEN) may use the\n"
	  "rig, nobody else may, until 'rigor release' or the owner process exits.\n"
	  "  --pid PID         the owner (default: the parent process, e.g. the CI job's shell;\n"
	  "                    under sudo or a wrapper that exits, give --pid $$)\n"
	  "With RIGOR_TOKEN (or --token) set, that token is reserved (renewed, or another rig\n"
	  "added to it). Waits --wait SECONDS for a busy rig; exit 3 when it stays busy." },
	{ "release", cmd_release, "release [--force]", "end the rig's reservation",
	  "Ends the reservation of RIGOR_TOKEN (or --token).\n"
	  "  --force           end it whatever its token (an administrator's cleanup)" },
	{ "lua", cmd_lua, "lua FILE [ARGS...]",
	  "run a Lua script with rigor's modules (the rig as 'rig' with --rig)",
	  "Options after FILE go to the script (as arg[1..]). With --rig or RIGOR_RIG the rig is\n"
	  "opened and locked and given to the script as the global 'rig'." },
	{ "sim", cmd_sim, "sim inject ROLE FAULT [BUTTON]",
	  "test back-channel of sim back-ends (fail, fail-once, hang, gone, ok)",
	  "  FAULT             fail: calls fail (I/O error); fail-once: the next call fails;\n"
	  "                    hang: calls time out; gone: the device disappears; ok: clear" },
};

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("rigor: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_usage(FILE *f, const struct cmd *cmd)
{
	fprintf(f, "usage: rigor [--rig NAME|FILE] [--wait SECONDS] %s\n\n%s\n", cmd->usage, cmd->help);
	if (cmd->details)
		fprintf(f, "\n%s\n", cmd->details);
}

bool cli_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	}
	return false;
}

int cli_fail(struct cli *c, int rc, const char *what)
{
	const char *detail = c->rig && *rig_errmsg(c->rig) ? rig_errmsg(c->rig) : rig_ctx_errmsg(c->ctx);

	if (rc == RIG_E_INTR || cli_signal) {
		cli_error("%s: interrupted", what);
		return cli_signal_exit();
	}
	/* The detail already names the part ("power: ..."); @what is for bare codes. */
	if (*detail)
		cli_error("%s", detail);
	else
		cli_error("%s: %s", what, rig_strerror(rc));
	switch (rc) {
	case RIG_E_INVAL:
	case RIG_E_CORRUPT:     /* the image given is bad: on another rig it fails the same way */
	case RIG_E_NOSPC:
	case RIG_E_NOENT:
	case RIG_E_PERM:
	case RIG_E_NOTSUP:
		return EXIT_USAGE;
	default:
		return EXIT_INFRA;
	}
}

const char *const *cli_rig_dirs(void)
{
	static const char *dirs[12];
	static char envcopy[4096];
	size_t n = 0;
	const char *env = getenv("RIGOR_RIG_PATH");

	if (dirs[0])
		return dirs;
	if (env && *env) {
		char *s = envcopy;

		snprintf(envcopy, sizeof(envcopy), "%s", env);
		while (s && n < 8) {
			char *colon = strchr(s, ':');

			if (colon)
				*colon++ = 0;
			if (*s)
				dirs[n++] = s;
			s = colon;
		}
	}
	dirs[n++] = "rigs";
	dirs[n++] = RIGOR_SRC_RIGS;
	dirs[n++] = RIGOR_INSTALL_RIGS;
	dirs[n] = NULL;
	return dirs;
}

/* A --rig argument with a '/' or a .lua suffix names a file; anything else is a rig name. */
static bool rig_arg_is_path(const char *arg)
{
	size_t n = strlen(arg);

	return strchr(arg, '/') || (n > 4 && !strcmp(arg + n - 4, ".lua"));
}

int cli_rig_path(const char *arg, char *buf, size_t len)
{
	const char *const *dirs = cli_rig_dirs();

	if (rig_arg_is_path(arg)) {
		snprintf(buf, len, "%s", arg);
		return access(buf, R_OK) == 0 ? 0 : RIG_E_NOENT;
	}
	for (size_t i = 0; dirs[i]; i++) {
		snprintf(buf, len, "%s/%s.lua", dirs[i], arg);
		if (access(buf, R_OK) == 0)
			return 0;
	}
	return RIG_E_NOENT;
}

/*
 * A file named on the command line is missing or unreadable. The usual cause is a path
 * relative to the source tree typed elsewhere ("rigs/virtual.lua" from $HOME), so say which
 * directory it was relative to and point at a rig of the same base name on the rig path.
 */
static void report_rig_file(const char *arg)
{
	const char *const *dirs = cli_rig_dirs();
	const char *base = strrchr(arg, '/') ? strrchr(arg, '/') + 1 : arg;
	size_t n = strlen(base);
	char cwd[4096], where[4200] = "", found[4096] = "";
	int err = access(arg, R_OK) == 0 ? 0 : errno;

	if (err && err != ENOENT) {
		cli_error("cannot read rig file '%s': %s", arg, strerror(err));
		return;
	}
	if (n > 4 && !strcmp(base + n - 4, ".lua"))
		n -= 4;
	for (size_t i = 0; n && dirs[i] && !*found; i++) {
		snprintf(found, sizeof(found), "%s/%.*s.lua", dirs[i], (int)n, base);
		if (access(found, R_OK) != 0)
			*found = 0;
	}
	if (arg[0] != '/' && getcwd(cwd, sizeof(cwd)))
		snprintf(where, sizeof(where), " (relative to %s)", cwd);
	if (*found)
		cli_error("rig file '%s' does not exist%s; did you mean --rig %.*s (%s)?", arg, where,
			  (int)n, base, found);
	else
		cli_error("rig file '%s' does not exist%s (see 'rigor list rigs')", arg, where);
}

int cli_load_desc(struct cli *c)
{
	char path[4096];
	int rc;

	if (cli_rig_path(c->rig_arg, path, sizeof(path)) < 0) {
		if (rig_arg_is_path(c->rig_arg))
			report_rig_file(c->rig_arg);
		else
			cli_error("no rig '%s': no %s.lua in $RIGOR_RIG_PATH, ./rigs, %s or %s "
				  "(see 'rigor list rigs')",
				  c->rig_arg, c->rig_arg, RIGOR_SRC_RIGS, RIGOR_INSTALL_RIGS);
		return EXIT_USAGE;
	}
	rc = rigl_load_rigfile(c->ctx, path, &c->desc);
	if (rc < 0)
		return cli_fail(c, rc, "loading rig file");
	rc = rig_desc_validate(c->desc);
	if (rc != 0) {
		fprintf(stderr, "%s", rig_desc_problems(c->desc));
		cli_error("rig file '%s' has %d problem%s", path, rc, rc == 1 ? "" : "s");
		return EXIT_USAGE;
	}
	return 0;
}

int cli_open_rig(struct cli *c)
{
	return cli_open_rig_scope(c, RIG_LOCK_CONTROL);
}

int cli_open_rig_scope(struct cli *c, unsigned int scope)
{
	static const unsigned int roles[] = {
		[RIG_LOCK_CONTROL] = RIG_ROLES_CONTROL,
		[RIG_LOCK_CONSOLE] = RIG_ROLE_BIT(RIG_ROLE_CONSOLE),
		[RIG_LOCK_ALL] = RIG_ROLES_ALL,
	};
	int rc = cli_load_desc(c);

	if (rc)
		return rc;
	rig_ctx_set_cancel(c->ctx, &cli_signal);
	rc = rig_lock_acquire(c->ctx, rig_desc_name(c->desc), scope, c->cmdline, c->token,
			      c->wait_s < 0 ? -1 : c->wait_s * 1000, &c->lock);
	if (rc < 0)
		return cli_fail(c, rc, "locking");
	rc = rig_open_roles(c->ctx, c->desc, roles[scope], &c->rig);
	if (rc < 0)
		return cli_fail(c, rc, "opening rig");
	return 0;
}

void cli_close_rig(struct cli *c)
{
	rig_close(c->rig);
	c->rig = NULL;
	rig_lock_release(c->lock);
	c->lock = NULL;
	rig_desc_free(c->desc);
	c->desc = NULL;
}

const char *cli_lua_dir(void)
{
	const char *env = getenv("RIGOR_LUA_DIR");

	if (env && *env)
		return env;
	if (access(RIGOR_SRC_LUA "/rigor/runner.lua", R_OK) == 0)
		return RIGOR_SRC_LUA;
	return RIGOR_INSTALL_LUA;
}

int cli_signal_exit(void)
{
	return 128 + (cli_signal ? cli_signal : SIGINT);
}

static void on_signal(int sig)
{
	cli_signal = sig;
}

static void log_cb(void *user, enum rig_log_level level, const char *module, const char *msg)
{
	static const char *const names[] = { "", "error", "warning", "info", "debug" };

	(void)user;
	fprintf(stderr, "rigor: %s: %s: %s\n", names[level], module, msg);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: rigor [--rig NAME|FILE] [--wait SECONDS] [--token T] [--json] [-v] COMMAND [ARGS]\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nThe rig is --rig, else $RIGOR_RIG, else 'sim'. 'rigor COMMAND --help' for details;\n"
		   "exit status: 0 passed, 1 test failures, 2 usage or configuration error,\n"
		   "3 infrastructure error, 128+N interrupted by signal N (129 SIGHUP, 130 SIGINT,\n"
		   "131 SIGQUIT, 143 SIGTERM). See rigor(1).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rig", required_argument, NULL, 'r' }, { "wait", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },      { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },      { "version", no_argument, NULL, 'V' },
		{ "token", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	struct cli c = { .wait_s = 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	size_t o = 0;
	int opt, rc;

	/* Global options come before the command; "+" stops at the first non-option. */
	while ((opt = getopt_long(argc, argv, "+r:w:jvhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'r': c.rig_arg = optarg; c.rig_explicit = true; break;
		case 'w': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*end || end == optarg || v < -1 || v > 86400) {
				cli_error("--wait takes seconds (0..86400, -1 forever), not '%s'", optarg);
				return EXIT_USAGE;
			}
			c.wait_s = (int)v;
			break;
		}
		case 'j': c.json = true; break;
		case 't': c.token = optarg; break;
		case 'v': c.verbose++; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("rigor %s\n", RIGOR_VERSION); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!c.rig_arg && getenv("RIGOR_RIG") && *getenv("RIGOR_RIG")) {
		c.rig_arg = getenv("RIGOR_RIG");
		c.rig_explicit = true;
	}
	if (!c.rig_arg)
		c.rig_arg = "sim";
	/* children (gate cells, commands a suite runs) use the rig under the same token */
	if (c.token && *c.token)
		setenv("RIGOR_TOKEN", c.token, 1);
	if (!c.token && getenv("RIGOR_TOKEN") && *getenv("RIGOR_TOKEN"))
		c.token = getenv("RIGOR_TOKEN");
	for (int i = 0; i < argc && o < sizeof(c.cmdline) - 2; i++)
		o += (size_t)snprintf(c.cmdline + o, sizeof(c.cmdline) - o, "%s%s", i ? " " : "",
				      i ? argv[i] : "rigor");
	/* A closed terminal (SIGHUP) or SIGQUIT must not skip the cleanup either: every
	 * catchable end becomes the same orderly stop, exit 128 + signal. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	c.argv0 = argv[0];
	c.ctx = rig_ctx_new();
	if (!c.ctx) {
		cli_error("out of memory");
		return EXIT_INFRA;
	}
	/* from the start: reading a rig file can be interrupted too */
	rig_ctx_set_cancel(c.ctx, &cli_signal);
	rig_ctx_set_log_cb(c.ctx, log_cb, NULL);
	if (c.verbose)
		rig_ctx_set_log_level(c.ctx, c.verbose > 1 ? RIG_LOG_DBG : RIG_LOG_INFO);
	argc -= optind;
	argv += optind;
	if (!strcmp(argv[0], "help")) {
		for (size_t i = 0; argc > 1 && i < sizeof(commands) / sizeof(commands[0]); i++)
			if (!strcmp(argv[1], commands[i].name)) {
				cli_usage(stdout, &commands[i]);
				rig_ctx_free(c.ctx);
				return 0;
			}
		if (argc > 1)
			cli_error("help: '%s' is not a rigor command; see 'rigor --help'", argv[1]);
		else
			usage(stdout);
		rig_ctx_free(c.ctx);
		return argc > 1 ? EXIT_USAGE : 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[0], commands[i].name))
			continue;
		/* after `lua FILE` the options are the script's own */
		if (cli_wants_help(strcmp(argv[0], "lua") || argc < 2 ? argc : 2, argv)) {
			cli_usage(stdout, &commands[i]);
			rc = 0;
		} else {
			optind = 1;
			rc = commands[i].fn(&c, argc, argv);
		}
		cli_close_rig(&c);
		rig_ctx_free(c.ctx);
		return rc;
	}
	cli_error("'%s' is not a rigor command; see 'rigor --help'", argv[0]);
	rig_ctx_free(c.ctx);
	return EXIT_USAGE;
}
