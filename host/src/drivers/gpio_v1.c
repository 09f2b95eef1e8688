/* SPDX-License-Identifier: MIT */
/*
 * gpio: DUT power, SD mux select and buttons on Linux GPIO lines, through libgpiod v1
 * (the line table in gpio_lines.c). The driver only drives raw levels; inversion is the
 * front end's job.
 *
 * State retention: libgpiod does not promise what a line does once its request is
 * released, so by default the requests live in a per-rig *holder*, the program
 * rigor-gpio-holder (host/holder/, protocol in gpio_holder.h), which this driver starts
 * on the first switch and talks to over <rig>.gpio.sock in the state directory. With
 * `in_process = true` the lines are held by the rig object instead (rigor run, Lua) and
 * released at rig_close(). docs/hardware/gpio.md has the full design.
 */
#define LOG_PREFIX "gpio"
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../gpio_holder.h"
#include "../internal.h"

#define HOLDER_DEFAULT_IDLE_MS 1000
#define SPAWN_WAIT_MS 2000

struct gpio_conf {
	char *chip;         /* chip name, path, number or label */
	char *line;         /* line name (preferred), else... */
	int offset;         /* ...the offset on the chip */
	bool open_drain;
	char *enable_line;  /* sdmux: optional enable (off) line, by name */
	int host_level;     /* sdmux: select level for the host side */
	int enable_level;   /* sdmux: enable_line level that connects the card */
	bool in_process;    /* hold lines in the rig object, not in a holder process */
	int idle_ms;        /* holder: exit after this long idle at rest; -1 never */
};

/* ---- the rig side: one shared object per rig, serving all its gpio parts ---- */

struct gpio_rig {
	struct rig_ctx *ctx;
	bool in_process;
	int idle_ms;
	struct rig_gpio_table *t;   /* in process, and to read as is when no holder runs */
	int fd;             /* holder connection, -1 none */
	char sock[108];
	char pidf[4200];
};

struct gpio_priv {
	struct gpio_rig *g;
	struct rig_gpio_line line, enable;  /* enable.chip NULL: no enable line */
};

static void gpio_rig_destroy(void *obj)
{
	struct gpio_rig *g = obj;

	if (g->fd >= 0)
		close(g->fd);
	rig_gpio_table_free(g->t);
	free(g);
}

static void *gpio_rig_create(struct rig_part *p, int *rc)
{
	const struct gpio_conf *c = p->conf;
	struct gpio_rig *g = calloc(1, sizeof(*g));
	struct rig_ctx *ctx = rig_part_ctx(p);
	const char *dir = rig_ctx_state_dir(ctx);
	int n;

	if (!g || !(g->t = rig_gpio_table_new())) {
		free(g);
		*rc = RIG_E_NOMEM;
		return NULL;
	}
	g->ctx = ctx;
	g->fd = -1;
	g->in_process = c->in_process;
	g->idle_ms = c->idle_ms ? c->idle_ms : HOLDER_DEFAULT_IDLE_MS;
	n = snprintf(g->sock, sizeof(g->sock), "%s/%s.gpio.sock", dir, rig_part_rig_name(p));
	snprintf(g->pidf, sizeof(g->pidf), "%s/%s.gpio.pid", dir, rig_part_rig_name(p));
	if (!g->in_process && (size_t)n >= sizeof(g->sock)) {
		gpio_rig_destroy(g);
		*rc = rig_part_fail(p, RIG_E_INVAL,
				    "state directory '%s' is too long for the GPIO holder's socket; use a shorter RIGOR_STATE_DIR or in_process = true",
				    dir);
		return NULL;
	}
	return g;
}

static int holder_connect(struct gpio_rig *g)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, g->sock, strlen(g->sock) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/*
 * The holder program: $RIGOR_GPIO_HOLDER, else rigor-gpio-holder beside the running
 * program (build/ in the tree, $(PREFIX)/bin once installed).
 */
static int holder_prog(char *buf, size_t len)
{
	const char *env = getenv("RIGOR_GPIO_HOLDER");
	char exe[PATH_MAX];
	ssize_t n;
	char *slash;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return 0;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return RIG_E_NOENT;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	*slash = 0;
	return (size_t)snprintf(buf, len, "%s/" RIG_GPIO_HOLDER_PROG, exe) < len ? 0 : RIG_E_NOENT;
}

/*
 * Start the holder program, double-forked so it is nobody's child and the command can
 * exit. Only what the program must not inherit is done between fork and exec: every fd
 * closed (above all the rig's lock file, or the rig would stay locked), the caller's
 * signal dispositions and mask undone (the CLI's SIGTERM flag must not outlive it), a new
 * session. Two callers may both start one: the holder's flock on the pid file lets one
 * live. Returns 0 or a negative error.
 */
static int holder_spawn(struct rig_part *p, struct gpio_rig *g)
{
	char prog[PATH_MAX], idle[16];
	char *const argv[] = { prog, "--socket", g->sock, "--pid-file", g->pidf, "--idle-ms", idle,
			       NULL };
	long max = sysconf(_SC_OPEN_MAX);
	int status;
	pid_t pid;

	if (holder_prog(prog, sizeof(prog)) < 0 || access(prog, X_OK) < 0)
		return rig_part_fail(p, RIG_E_NOENT,
				     "no GPIO holder program at '%s': install rigor-gpio-holder beside rigor, set RIGOR_GPIO_HOLDER, or use in_process = true",
				     prog);
	snprintf(idle, sizeof(idle), "%d", g->idle_ms);
	pid = fork();
	if (pid == 0) {
		sigset_t mask;
		int null = open("/dev/null", O_RDWR);

		setsid();
		if (fork() != 0)
			_exit(0);
		for (int fd = 0; fd < 3; fd++)
			dup2(null, fd);
		for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
			close(fd);
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				signal(sig, SIG_DFL);
		sigemptyset(&mask);
		sigprocmask(SIG_SETMASK, &mask, NULL);
		execv(prog, argv);
		_exit(127);
	}
	if (pid < 0)
		return rig_part_fail(p, RIG_E_IO, "cannot start the GPIO holder: %s", strerror(errno));
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rig_dbg(g->ctx, "started %s for '%s'", prog, g->sock);
	return 0;
}

/*
 * Connect to the rig's holder; with @spawn, start one when none runs and wait for it
 * until @d, at most SPAWN_WAIT_MS.
 */
static int holder_ensure(struct rig_part *p, struct gpio_rig *g, bool spawn, struct rig_deadline d)
{
	struct rig_deadline start = rig_deadline_start(SPAWN_WAIT_MS);
	bool spawned = false;
	int fd, rc;

	if (g->fd >= 0)
		return 0;
	for (;;) {
		fd = holder_connect(g);
		if (fd >= 0) {
			g->fd = fd;
			return 0;
		}
		if (fd != -ECONNREFUSED && fd != -ENOENT)
			return rig_part_fail(p, RIG_E_IO, "cannot reach the GPIO holder at '%s': %s",
					     g->sock, strerror(-fd));
		if (!spawn)
			return RIG_E_NOENT;
		if (!spawned) {
			rc = rig_ctx_ensure_state_dir(g->ctx);
			if (rc == 0)
				rc = holder_spawn(p, g);
			if (rc < 0)
				return rc;
			spawned = true;
		}
		if (rig_deadline_expired(start) || rig_deadline_expired(d))
			return rig_part_fail(p, RIG_E_TIMEOUT, "the GPIO holder at '%s' did not start",
					     g->sock);
		rc = rig_ctx_sleep(g->ctx, 20);
		if (rc < 0)
			return rc;
	}
}

/* One exchange with the holder. Returns the holder's code; @msg gets its message. */
static int holder_call(struct rig_part *p, struct gpio_rig *g, const char *req, int *value,
		       char *msg, size_t len, int timeout_ms)
{
	char buf[RIG_GPIO_MSG_MAX + 32];
	const char *m;
	ssize_t n;
	int rc, code;

	if (send(g->fd, req, strlen(req), MSG_NOSIGNAL) < 0)
		return RIG_E_NODEV;
	rc = rig_ctx_poll(g->ctx, g->fd, POLLIN, timeout_ms);
	if (rc < 0) {
		if (rc == RIG_E_TIMEOUT)
			snprintf(msg, len, "the GPIO holder did not answer within %d ms", timeout_ms);
		return rc;
	}
	n = recv(g->fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return RIG_E_NODEV;
	buf[n] = 0;
	if (rig_gpio_rep_parse(buf, &code, value, &m) < 0) {
		snprintf(msg, len, "garbled answer from the GPIO holder");
		return RIG_E_PROTO;
	}
	snprintf(msg, len, "%s", m);
	return code;
}

static int via_holder(struct rig_part *p, struct gpio_rig *g, const struct rig_gpio_line *s, int set,
		      int *value, char *msg, size_t len, struct rig_deadline d)
{
	char req[RIG_GPIO_MSG_MAX];
	int rc = 0;

	if (rig_gpio_req_format(req, sizeof(req), set ? RIG_GPIO_SET : RIG_GPIO_GET, s, *value) < 0) {
		snprintf(msg, len, "chip or line name too long for the GPIO holder");
		return RIG_E_INVAL;
	}
	/* A holder that exited (idle) or died between calls is started again, once. */
	for (int attempt = 0; attempt < 2; attempt++) {
		rc = holder_ensure(p, g, set, d);
		if (rc == RIG_E_NOENT && !set)
			return rig_gpio_table_get(g->t, s, value, msg, len);  /* none runs: read as is */
		if (rc < 0)
			return rc;
		rc = holder_call(p, g, req, value, msg, len, rig_deadline_left_ms(d));
		if (rc == RIG_E_TIMEOUT || rc == RIG_E_INTR) {
			close(g->fd);   /* a late answer must not be taken for the next one */
			g->fd = -1;
		}
		if (rc != RIG_E_NODEV || msg[0])
			break;
		close(g->fd);
		g->fd = -1;
	}
	return rc;
}

/*
 * Drive (@set) or read one line, in process or through the holder, within @d (the op's
 * timeout_ms, which the front end has already cut to the case's deadline).
 */
static int line_io(struct rig_part *p, const struct rig_gpio_line *s, bool set, int *value,
		   struct rig_deadline d)
{
	struct gpio_rig *g = ((struct gpio_priv *)p->priv)->g;
	char msg[RIG_GPIO_MSG_MAX] = "";
	int rc;

	if (g->in_process)
		rc = set ? rig_gpio_table_set(g->t, s, *value, msg, sizeof(msg))
			 : rig_gpio_table_get(g->t, s, value, msg, sizeof(msg));
	else
		rc = via_holder(p, g, s, set, value, msg, sizeof(msg), d);
	if (rc < 0 && msg[0])
		return rig_part_fail(p, rc, "%s", msg);
	if (rc == RIG_E_NODEV)
		return rig_part_fail(p, rc, "the GPIO holder for this rig went away");
	return rc;
}

static int gpio_open(struct rig_part *p)
{
	const struct gpio_conf *c = p->conf;
	struct gpio_priv *pv = p->priv;
	char msg[RIG_GPIO_MSG_MAX];
	int rc = 0;

	if (c->offset < 0)
		return rig_part_fail(p, RIG_E_INVAL, "offset must be >= 0, not %d", c->offset);
	if (c->idle_ms < -1)
		return rig_part_fail(p, RIG_E_INVAL, "idle_ms must be >= 0 or -1 (never), not %d",
				     c->idle_ms);
	if ((c->host_level | c->enable_level) & ~1)
		return rig_part_fail(p, RIG_E_INVAL, "host_level and enable_level must be 0 or 1");
	pv->g = rig_part_shared(p, "gpio", gpio_rig_create, gpio_rig_destroy, &rc);
	if (!pv->g)
		return rc;
	pv->line = (struct rig_gpio_line){ .chip = c->chip, .name = c->line, .offset = c->offset,
				   .open_drain = c->open_drain };
	switch (p->be->role) {
	case RIG_ROLE_POWER:
	case RIG_ROLE_BUTTON:
		/* Rest = the raw level of "off" / "released" after the front end's inversion. */
		pv->line.rest = p->common.inverted ? 1 : 0;
		break;
	default:
		pv->line.rest = c->enable_line ? RIG_GPIO_REST_ANY : RIG_GPIO_REST_NEVER;
		if (c->enable_line)
			pv->enable = (struct rig_gpio_line){ .chip = c->chip, .name = c->enable_line,
						     .open_drain = c->open_drain,
						     .rest = !c->enable_level };
		break;
	}
	/* Fail early on a missing chip or line name: look them up without requesting. */
	for (int i = 0; i < 2; i++) {
		const struct rig_gpio_line *s = i ? &pv->enable : &pv->line;

		if (!s->chip)
			continue;
		rc = rig_gpio_line_check(s, msg, sizeof(msg));
		if (rc < 0)
			return rig_part_fail(p, rc, "%s", msg);
	}
	return 0;
}

/* ---- power ---- */

static int power_set(struct rig_part *p, bool on, int timeout_ms)
{
	int v = on;

	return line_io(p, &((struct gpio_priv *)p->priv)->line, true, &v,
		       rig_deadline_start(timeout_ms));
}

static int power_get(struct rig_part *p, bool *on, int timeout_ms)
{
	int v = 0, rc = line_io(p, &((struct gpio_priv *)p->priv)->line, false, &v,
				rig_deadline_start(timeout_ms));

	*on = v != 0;
	return rc;
}

/* ---- sdmux: select line host/dut, optional enable line for off ---- */

static int mux_set(struct rig_part *p, enum rig_mux m, int timeout_ms)
{
	const struct gpio_conf *c = p->conf;
	struct gpio_priv *pv = p->priv;
	int sel = m == RIG_MUX_HOST ? c->host_level : !c->host_level;
	int en = m == RIG_MUX_OFF ? !c->enable_level : c->enable_level;
	struct rig_deadline d = rig_deadline_start(timeout_ms);   /* one bound for all steps */
	int rc;

	if (!pv->enable.chip) {
		if (m == RIG_MUX_OFF)
			return rig_part_fail(p, RIG_E_NOTSUP,
					     "this mux has no enable_line, so it cannot switch the card off");
		return line_io(p, &pv->line, true, &sel, d);
	}
	/* Disconnect first, move the select line, connect: the card never sees the wrong side. */
	rc = line_io(p, &pv->enable, true, &(int){ !c->enable_level }, d);
	if (rc == 0 && m != RIG_MUX_OFF)
		rc = line_io(p, &pv->line, true, &sel, d);
	if (rc == 0 && m != RIG_MUX_OFF)
		rc = line_io(p, &pv->enable, true, &en, d);
	return rc;
}

static int mux_get(struct rig_part *p, enum rig_mux *m, int timeout_ms)
{
	const struct gpio_conf *c = p->conf;
	struct gpio_priv *pv = p->priv;
	struct rig_deadline d = rig_deadline_start(timeout_ms);
	int v = 0, rc;

	if (pv->enable.chip) {
		rc = line_io(p, &pv->enable, false, &v, d);
		if (rc < 0)
			return rc;
		if (v != c->enable_level) {
			*m = RIG_MUX_OFF;
			return 0;
		}
	}
	rc = line_io(p, &pv->line, false, &v, d);
	if (rc == 0)
		*m = v == c->host_level ? RIG_MUX_HOST : RIG_MUX_DUT;
	return rc;
}

/* ---- button ---- */

static int button_set(struct rig_part *p, bool asserted, int timeout_ms)
{
	int v = asserted;

	return line_io(p, &((struct gpio_priv *)p->priv)->line, true, &v,
		       rig_deadline_start(timeout_ms));
}

#define P(f) offsetof(struct gpio_conf, f)
#define COMMON_PARAMS \
	{ "chip", RIG_P_STR, P(chip), true, "GPIO chip: name (gpiochip0), label (pinctrl-bcm2711), number or path" }, \
	{ "line", RIG_P_STR, P(line), false, "line name as gpioinfo shows it (preferred: stable)" }, \
	{ "offset", RIG_P_INT, P(offset), false, "line offset on the chip, when there is no line name" }, \
	{ "open_drain", RIG_P_BOOL, P(open_drain), false, "drive low only, let the line float high" }, \
	{ "in_process", RIG_P_BOOL, P(in_process), false, "hold lines only while the rig is open (no holder process)" }, \
	{ "idle_ms", RIG_P_INT, P(idle_ms), false, "holder exits after this long unused with lines at rest (default 1000, -1 never)" }

static const struct rig_param line_params[] = { COMMON_PARAMS, RIG_PARAMS_END };
static const struct rig_param mux_params[] = {
	COMMON_PARAMS,
	{ "enable_line", RIG_P_STR, P(enable_line), false, "optional line (same chip) that disconnects the card: the 'off' side" },
	{ "host_level", RIG_P_INT, P(host_level), false, "level of 'line' that selects the host (default 0; dut is the other)" },
	{ "enable_level", RIG_P_INT, P(enable_level), false, "level of enable_line that connects the card (default 0, as for an /OE pin)" },
	RIG_PARAMS_END
};
#undef P

static const struct rig_power_ops power_ops = { .set = power_set, .get = power_get };
static const struct rig_sdmux_ops mux_ops = { .set = mux_set, .get = mux_get };
static const struct rig_button_ops button_ops = { .set = button_set };

const struct rig_backend rig_power_gpio = {
	.role = RIG_ROLE_POWER,
	.name = "gpio",
	.help = "relay or load switch on a Linux GPIO line (libgpiod v1), held by a holder process",
	.params = line_params,
	.conf_size = sizeof(struct gpio_conf),
	.priv_size = sizeof(struct gpio_priv),
	.open = gpio_open,
	.ops.power = &power_ops,
};

const struct rig_backend rig_sdmux_gpio = {
	.role = RIG_ROLE_SDMUX,
	.name = "gpio",
	.help = "SD mux select line (host/dut) plus optional enable line (off) on Linux GPIO",
	.params = mux_params,
	.conf_size = sizeof(struct gpio_conf),
	.priv_size = sizeof(struct gpio_priv),
	.open = gpio_open,
	.ops.sdmux = &mux_ops,
};

const struct rig_backend rig_button_gpio = {
	.role = RIG_ROLE_BUTTON,
	.name = "gpio",
	.help = "button or boot strap on a Linux GPIO line (push-pull or open-drain)",
	.params = line_params,
	.conf_size = sizeof(struct gpio_conf),
	.priv_size = sizeof(struct gpio_priv),
	.open = gpio_open,
	.ops.button = &button_ops,
};
