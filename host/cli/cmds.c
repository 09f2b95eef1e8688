/* SPDX-License-Identifier: MIT */
/* Manual control: power, sdmux, button, console, usbboot, storage, who, drivers, check. */
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "rig_flash.h"

#define RIG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int bad_usage(const char *cmd, const char *fmt, const char *arg)
{
	char msg[256];

	snprintf(msg, sizeof(msg), fmt, arg ? arg : "");
	cli_error("%s: %s (see 'rigor %s --help')", cmd, msg, cmd);
	return EXIT_USAGE;
}

/* Accept --json after the command too, as users type it there. */
static void strip_json(struct cli *c, int *argc, char **argv)
{
	int j = 0;

	for (int i = 0; i < *argc; i++) {
		if (!strcmp(argv[i], "--json"))
			c->json = true;
		else
			argv[j++] = argv[i];
	}
	*argc = j;
}

int cmd_drivers(struct cli *c, int argc, char **argv)
{
	enum rig_role role;
	const char *name, *help;

	(void)c;
	if (argc > 1)
		return bad_usage("drivers", "takes no arguments", NULL);
	for (size_t i = 0; !rig_backend_info(i, &role, &name, &help); i++)
		printf("%-8s %-10s %s\n", rig_role_name(role), name, help);
	return 0;
}

int cmd_check(struct cli *c, int argc, char **argv)
{
	int worst = 0;

	if (argc < 2) {
		char path[4096];

		if (cli_load_desc(c))
			return EXIT_USAGE;
		cli_rig_path(c->rig_arg, path, sizeof(path));
		printf("%s: ok (rig '%s')\n", path, rig_desc_name(c->desc));
		return 0;
	}
	for (int i = 1; i < argc; i++) {
		struct cli one = *c;

		one.rig_arg = argv[i];
		one.desc = NULL;
		if (cli_load_desc(&one))
			worst = EXIT_USAGE;
		else
			printf("%s: ok (rig '%s')\n", argv[i], rig_desc_name(one.desc));
		rig_desc_free(one.desc);
	}
	return worst;
}

static int print_power(struct cli *c)
{
	struct rig_power_reading r;
	int on = rig_power_get(c->rig);
	int mrc;

	if (on < 0)
		return cli_fail(c, on, "power status");
	mrc = rig_power_measure(c->rig, &r);
	rig_clear_error(c->rig);
	if (c->json) {
		json_t *o = json_pack("{s:o,s:s}", "rig", rig_json_string(rig_name(c->rig)), "power",
				      on ? "on" : "off");

		if (o && mrc == 0) {
			json_object_set_new(o, "mv", json_integer(r.mv));
			json_object_set_new(o, "ma", json_integer(r.ma));
		}
		return cli_json_print(o);
	} else if (mrc == 0) {
		printf("power: %s (%d mV, %d mA)\n", on ? "on" : "off", r.mv, r.ma);
	} else {
		printf("power: %s\n", on ? "on" : "off");
	}
	return 0;
}

int cmd_power(struct cli *c, int argc, char **argv)
{
	static const char *const verbs[] = { "on", "off", "cycle", "status" };
	int off_ms = -1, rc, verb = -1;

	strip_json(c, &argc, argv);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--off-ms") && i + 1 < argc)
			off_ms = atoi(argv[++i]);
		else if (verb < 0)
			for (int v = 0; v < 4; v++)
				verb = !strcmp(argv[i], verbs[v]) ? v : verb;
		else
			return bad_usage("power", "unexpected argument '%s'", argv[i]);
		if (verb < 0 && argv[i][0] != '-')
			return bad_usage("power", "unknown action '%s' (expected on, off, cycle or status)",
					 argv[i]);
	}
	if (verb < 0)
		return bad_usage("power", "which action: on, off, cycle or status?", NULL);
	rc = cli_open_rig(c);
	if (rc)
		return rc;
	switch (verb) {
	case 0: rc = rig_power_set(c->rig, true); break;
	case 1: rc = rig_power_set(c->rig, false); break;
	case 2: rc = rig_power_cycle(c->rig, off_ms); break;
	default: return print_power(c);
	}
	if (rc < 0)
		return cli_fail(c, rc, "power");
	return print_power(c);
}

int cmd_sdmux(struct cli *c, int argc, char **argv)
{
	int m, rc;

	strip_json(c, &argc, argv);
	if (argc != 2)
		return bad_usage("sdmux", "which side: host, dut, off, or status?", NULL);
	m = rig_mux_from_name(argv[1]);
	if (m < 0 && strcmp(argv[1], "status"))
		return bad_usage("sdmux", "unknown side '%s' (expected host, dut, off or status)", argv[1]);
	rc = cli_open_rig(c);
	if (rc)
		return rc;
	if (m >= 0 && (rc = rig_sdmux_set(c->rig, (enum rig_mux)m)) < 0)
		return cli_fail(c, rc, "sdmux");
	rc = rig_sdmux_get(c->rig);
	if (rc < 0)
		return cli_fail(c, rc, "sdmux status");
	if (c->json)
		return cli_json_print(json_pack("{s:o,s:s}", "rig", rig_json_string(rig_name(c->rig)),
						"sdmux", rig_mux_name((enum rig_mux)rc)));
	printf("sdmux: %s\n", rig_mux_name((enum rig_mux)rc));
	return 0;
}

int cmd_button(struct cli *c, int argc, char **argv)
{
	const char *name = NULL;
	int ms = -1, mode = 0, rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--hold") && i + 1 < argc) {
			ms = atoi(argv[++i]);
			if (ms < 0)
				return bad_usage("button", "--hold takes milliseconds >= 0, not '%s'", argv[i]);
		} else if (!strcmp(argv[i], "--down")) {
			mode = 1;
		} else if (!strcmp(argv[i], "--up")) {
			mode = 2;
		} else if (!name && argv[i][0] != '-') {
			name = argv[i];
		} else {
			return bad_usage("button", "unexpected argument '%s'", argv[i]);
		}
	}
	if (!name)
		return bad_usage("button", "which button? (its name in the rig file)", NULL);
	rc = cli_open_rig(c);
	if (rc)
		return rc;
	if (mode)
		rc = rig_button_set(c->rig, name, mode == 1);
	else
		rc = rig_button_press(c->rig, name, ms);
	if (rc < 0)
		return cli_fail(c, rc, "button");
	printf("button %s: %s\n", name, mode == 1 ? "held" : mode == 2 ? "released" : "pressed");
	return 0;
}

/*
 * Interactive console: raw terminal, stdin to the DUT, DUT to stdout, Ctrl-] quits.
 * Without a terminal it forwards stdin and ends --timeout seconds after stdin closes.
 */
int cmd_console(struct cli *c, int argc, char **argv)
{
	const char *log = NULL;
	char logpath[4200];
	int timeout_s = -1, rc, ret = 0;
	bool tty = isatty(0), in_open = true;
	struct termios saved, raw;
	int64_t idle_since = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--log") && i + 1 < argc)
			log = argv[++i];
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout_s = atoi(argv[++i]);
		else
			return bad_usage("console", "unexpected argument '%s'", argv[i]);
	}
	/* a viewer never stands in the way of power, mux, buttons or flashing */
	rc = cli_open_rig_scope(c, RIG_LOCK_CONSOLE);
	if (rc)
		return rc;
	if (!log) {
		snprintf(logpath, sizeof(logpath), "%s/%s-console.log", rig_ctx_state_dir(c->ctx),
			 rig_name(c->rig));
		log = logpath;
	}
	if ((rc = rig_log_to(c->rig, log)) < 0)
		return cli_fail(c, rc, "console log");
	if (tty) {
		fprintf(stderr, "rigor: console of rig '%s' (log: %s); Ctrl-] quits\r\n", rig_name(c->rig), log);
		tcgetattr(0, &saved);
		raw = saved;
		cfmakeraw(&raw);
		tcsetattr(0, TCSANOW, &raw);
	}
	for (;;) {
		struct pollfd pfd = { .fd = 0, .events = POLLIN };
		const char *data;
		size_t n;

		if (cli_signal)
			break;
		rc = rig_console_fill(c->rig, 20);
		if (rc < 0 && rc != RIG_E_TIMEOUT && rc != RIG_E_INTR) {
			ret = cli_fail(c, rc, "console");
			break;
		}
		n = rig_console_peek(c->rig, &data);
		if (n) {
			fwrite(data, 1, n, stdout);
			fflush(stdout);
			rig_console_consume(c->rig, n);
		}
		if (in_open && poll(&pfd, 1, 0) > 0) {
			char buf[256];
			ssize_t r = read(0, buf, sizeof(buf));

			if (r <= 0) {
				in_open = false;
				idle_since = rig_now_ms();
			} else if (tty && memchr(buf, 0x1d, (size_t)r)) {
				break;
			} else if ((rc = rig_console_write(c->rig, buf, (size_t)r, 5000)) < 0) {
				ret = cli_fail(c, rc, "console write");
				break;
			}
		}
		if (!in_open && timeout_s >= 0 && rig_now_ms() - idle_since > timeout_s * 1000)
			break;
		if (!in_open && timeout_s < 0 && !tty && rig_now_ms() - idle_since > 1000)
			break;
	}
	if (tty) {
		tcsetattr(0, TCSANOW, &saved);
		fprintf(stderr, "\nrigor: console closed\n");
	}
	if (cli_signal && !ret)
		ret = cli_signal_exit();
	return ret;
}

int cmd_usbboot(struct cli *c, int argc, char **argv)
{
	const char *dir = NULL;
	int timeout_s = 30, rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout_s = atoi(argv[++i]);
		else
			return bad_usage("usbboot", "unexpected argument '%s'", argv[i]);
	}
	/* without --dir: the usbboot part's msd_dir (rig_usbboot says when there is none) */
	rc = cli_open_rig(c);
	if (rc)
		return rc;
	rc = rig_usbboot(c->rig, dir, timeout_s * 1000);
	if (rc < 0)
		return cli_fail(c, rc, "usbboot");
	printf("usbboot: done\n");
	return 0;
}

int cmd_storage(struct cli *c, int argc, char **argv)
{
	char path[4096], why[512], at[64] = "";
	struct rig_flash_record fr;
	int rc;

	strip_json(c, &argc, argv);
	if (argc != 2 || strcmp(argv[1], "status"))
		return bad_usage("storage", "expected 'status'", NULL);
	rc = cli_open_rig(c);
	if (rc)
		return rc;
	rc = rig_storage_resolve(c->rig, path, sizeof(path), why, sizeof(why));
	if (rc < 0)
		return cli_fail(c, rc, "storage");
	/* what the last flash left on the card: a failed one says why it will not boot */
	rig_flash_record_get(c->rig, &fr);
	if (fr.at_ms) {
		time_t t = (time_t)(fr.at_ms / 1000);

		strftime(at, sizeof(at), "%Y-%m-%d %H:%M:%S", localtime(&t));
	}
	if (c->json) {
		return cli_json_print(json_pack("{s:o,s:o,s:o,s:s,s:o,s:I,s:o}",
			"rig", rig_json_string(rig_name(c->rig)), "target", rig_json_string(path),
			"why", rig_json_string(why), "card", rig_flash_card_name(fr.card),
			"image", rig_json_string(fr.image), "at_ms", (json_int_t)fr.at_ms,
			"error", rig_json_string(fr.why)));
	}
	printf("target: %s\nresolved: %s\n", path, why);
	if (fr.card == RIG_FLASH_CARD_FLASHED)
		printf("card: flashed with '%s' at %s\n", fr.image, at);
	else if (fr.card != RIG_FLASH_CARD_UNKNOWN)
		printf("card: %s: flashing '%s' failed at %s: %s\n", rig_flash_card_name(fr.card),
		       fr.image, at, fr.why);
	return 0;
}

static json_t *holder_json(const struct rig_lock_holder *h)
{
	char ts[64];
	time_t t = (time_t)(h->since_ms / 1000);
	json_t *o;

	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S%z", localtime(&t));
	o = json_pack("{s:s,s:i,s:I,s:o,s:o,s:o,s:I}", "what", h->what, "pid", h->pid,
		      "uid", (json_int_t)h->uid, "user", rig_json_string(h->user), "command",
		      rig_json_string(h->command), "since", rig_json_string(ts), "since_ms",
		      (json_int_t)h->since_ms);
	if (o && h->token[0])
		json_object_set_new(o, "token", rig_json_string(h->token));
	return o;
}

int cmd_who(struct cli *c, int argc, char **argv)
{
	struct rig_lock_holder h[4];
	const char *name;
	json_t *arr;
	int rc, n;

	strip_json(c, &argc, argv);
	if (argc > 1)
		return bad_usage("who", "unexpected argument '%s'", argv[1]);
	rc = cli_load_desc(c);
	if (rc)
		return rc;
	name = rig_desc_name(c->desc);
	n = rig_lock_holders(c->ctx, name, h, RIG_ARRAY_SIZE(h));
	if (n < 0)
		return cli_fail(c, n, "who");
	if (n > (int)RIG_ARRAY_SIZE(h))
		n = (int)RIG_ARRAY_SIZE(h);
	if (c->json) {
		arr = json_array();
		for (int i = 0; arr && i < n; i++)
			json_array_append_new(arr, holder_json(&h[i]));
		return cli_json_print(json_pack("{s:s,s:o,s:o,s:b,s:o}", "schema", "rigor.who/1",
						"rig", rig_json_string(name), "lock_dir",
						rig_json_string(rig_ctx_lock_dir(c->ctx)), "free", n == 0,
						"holders", arr));
	}
	if (n == 0) {
		printf("rig '%s' is free\n", name);
		return 0;
	}
	printf("rig '%s' is held:\n", name);
	for (int i = 0; i < n; i++) {
		char ts[64];
		time_t t = (time_t)(h[i].since_ms / 1000);

		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S%z", localtime(&t));
		if (!h[i].pid)
			printf("  %-11s held by another process (not yet named)\n", h[i].what);
		else
			printf("  %-11s held by pid %d (%s), user %s, since %s%s%s\n", h[i].what, h[i].pid,
			       h[i].command, h[i].user, ts, h[i].token[0] ? ", token " : "",
			       h[i].token);
	}
	return 0;
}

/* The command line of @pid (NUL-separated in /proc), one line; "?" when unknown. */
static void proc_cmdline(int pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	f = fopen(path, "re");
	n = f ? fread(buf, 1, len - 1, f) : 0;
	if (f)
		fclose(f);
	while (n > 0 && buf[n - 1] == 0)
		n--;
	for (size_t i = 0; i < n; i++)
		buf[i] = buf[i] ? buf[i] : ' ';
	buf[n] = 0;
	if (!n)
		snprintf(buf, len, "?");
}

int cmd_acquire(struct cli *c, int argc, char **argv)
{
	char token[64] = "", owner_cmd[160], who[800];
	int pid = (int)getppid(), rc;

	strip_json(c, &argc, argv);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--pid") && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);

			if (*end || v <= 0 || v > INT_MAX)
				return bad_usage("acquire", "--pid takes a process id, not '%s'", argv[i]);
			pid = (int)v;
		} else {
			return bad_usage("acquire", "unexpected argument '%s'", argv[i]);
		}
	}
	if (c->token)
		snprintf(token, sizeof(token), "%s", c->token);
	rc = cli_load_desc(c);
	if (rc)
		return rc;
	proc_cmdline(pid, owner_cmd, sizeof(owner_cmd));
	snprintf(who, sizeof(who), "%s (by %s)", owner_cmd, c->cmdline);
	rig_ctx_set_cancel(c->ctx, &cli_signal);
	rc = rig_reservation_acquire(c->ctx, rig_desc_name(c->desc), pid, who,
				     c->wait_s < 0 ? -1 : c->wait_s * 1000, token, sizeof(token));
	if (rc < 0)
		return cli_fail(c, rc, "acquire");
	if (c->json)
		return cli_json_print(json_pack("{s:s,s:o,s:o,s:i}", "schema", "rigor.acquire/1",
						"rig", rig_json_string(rig_desc_name(c->desc)), "token",
						rig_json_string(token), "owner_pid", pid));
	printf("%s\n", token);
	return 0;
}

int cmd_release(struct cli *c, int argc, char **argv)
{
	bool force = false;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--force"))
			force = true;
		else
			return bad_usage("release", "unexpected argument '%s'", argv[i]);
	}
	if (!c->token && !force)
		return bad_usage("release", "which reservation? set RIGOR_TOKEN or give --token (or --force)",
				 NULL);
	rc = cli_load_desc(c);
	if (rc)
		return rc;
	rc = rig_reservation_release(c->ctx, rig_desc_name(c->desc), c->token, force);
	if (rc < 0)
		return cli_fail(c, rc, "release");
	fprintf(stderr, "rigor: rig '%s' released\n", rig_desc_name(c->desc));
	return 0;
}

int cmd_sim(struct cli *c, int argc, char **argv)
{
	int role, rc;

	if (argc < 4 || strcmp(argv[1], "inject"))
		return bad_usage("sim", "expected: sim inject ROLE FAULT [BUTTON]", NULL);
	role = rig_role_from_name(argv[2]);
	if (role < 0)
		return bad_usage("sim", "unknown role '%s'", argv[2]);
	rc = cli_open_rig(c);
	if (rc)
		return rc;
	rc = rig_inject(c->rig, (enum rig_role)role, argc > 4 ? argv[4] : NULL, argv[3]);
	if (rc < 0)
		return cli_fail(c, rc, "sim inject");
	printf("%s%s%s: %s\n", argv[2], argc > 4 ? "." : "", argc > 4 ? argv[4] : "", argv[3]);
	return 0;
}
