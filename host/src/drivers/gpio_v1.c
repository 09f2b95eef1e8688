/* SPDX-License-Identifier: MIT */
/*
 * gpio: DUT power, SD mux select and buttons on Linux GPIO lines, through libgpiod v1
 * (1.6.x). Everything libgpiod-v1-specific lives in this file so a v2 variant can
 * replace it. The driver only drives raw levels; inversion is the front end's job.
 *
 * State retention: libgpiod does not promise what a line does once its request is
 * released, so by default the requests live in a per-rig *holder*: a small daemon the
 * library forks on the first switch, which owns the line requests, is told new values
 * over a SOCK_SEQPACKET unix socket in the state directory (<rig>.gpio.sock) and exits
 * once no client is connected and every line has sat at its rest (safe) level for
 * idle_ms. One holder per rig is guaranteed by an flock() on <rig>.gpio.pid, which the
 * holder keeps for its whole life (the kernel drops it when the holder dies). With
 * `in_process = true` the lines are held by the rig object instead (rigor run, Lua) and
 * released at rig_close(). docs/hardware/gpio.md has the full design.
 *
 * Wire format of the holder (one datagram each way, fields separated by tabs):
 *   request  S chip name offset open_drain rest value | G chip name offset | Q | P
 *   reply    code value message        (code 0 = ok, else a negative rig_err)
 */
#define LOG_PREFIX "gpio"
#include <fcntl.h>
#include <gpiod.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../internal.h"

#define CONSUMER "rigor"
#define MSG_MAX 512
#define REST_NEVER (-1)     /* the line must stay held (mux select without enable line) */
#define REST_ANY 2          /* the level does not matter once the other lines rest */
#define HOLDER_MAX_CLIENTS 16
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

/* One line as the driver asks for it. */
struct gspec {
	const char *chip;
	const char *name;   /* NULL: by offset */
	int offset;
	bool open_drain;
	int rest;           /* 0/1, REST_ANY or REST_NEVER */
};

/* ---- the line table: libgpiod v1, used in process and inside the holder ---- */

struct gline {
	char *chip, *name;
	int offset;
	bool open_drain;
	int rest;
	int value;          /* last value driven, -1 none */
	struct gpiod_chip *c;
	struct gpiod_line *l;
};

struct gtable {
	size_t n;
	struct gline *v;
};

static int errno_code(int e)
{
	switch (e) {
	case ENOENT: case ENODEV: case ENXIO: return RIG_E_NODEV;
	case EBUSY: return RIG_E_BUSY;
	case ENOMEM: return RIG_E_NOMEM;
	case EINVAL: return RIG_E_INVAL;
	default: return RIG_E_IO;
	}
}

static void spec_name(const struct gspec *s, char *buf, size_t len)
{
	if (s->name)
		snprintf(buf, len, "'%s' on chip '%s'", s->name, s->chip);
	else
		snprintf(buf, len, "%d of chip '%s'", s->offset, s->chip);
}

/* Open the chip and find the line (no request). Returns 0 or a code, with @msg set. */
static int line_lookup(const struct gspec *s, struct gpiod_chip **cp, struct gpiod_line **lp,
		       char *msg, size_t len)
{
	struct gpiod_chip *c = gpiod_chip_open_lookup(s->chip);
	struct gpiod_line *l;
	int e;

	if (!c) {
		e = errno;
		snprintf(msg, len, "cannot open GPIO chip '%s': %s%s", s->chip, strerror(e),
			 e == EACCES ? " (see docs/hardware/gpio.md for udev rules)" : "");
		return errno_code(e);
	}
	if (s->name) {
		l = gpiod_chip_find_line(c, s->name);
		if (!l) {
			e = errno;
			gpiod_chip_close(c);
			if (e == ENOENT || e == 0) {
				snprintf(msg, len, "no line named '%s' on chip '%s' (list them with gpioinfo)",
					 s->name, s->chip);
				return RIG_E_NOENT;
			}
			snprintf(msg, len, "looking for line '%s' on chip '%s': %s", s->name, s->chip,
				 strerror(e));
			return errno_code(e);
		}
	} else {
		l = gpiod_chip_get_line(c, (unsigned int)s->offset);
		if (!l) {
			e = errno;
			snprintf(msg, len, "chip '%s' has no line %d (it has %u)", s->chip, s->offset,
				 gpiod_chip_num_lines(c));
			gpiod_chip_close(c);
			return e == EINVAL ? RIG_E_NOENT : errno_code(e);
		}
	}
	*cp = c;
	*lp = l;
	return 0;
}

static int request_failed(struct gpiod_line *l, const struct gspec *s, int e, char *msg,
			  size_t len)
{
	char what[160];

	spec_name(s, what, sizeof(what));
	if (e == EBUSY) {
		const char *who;

		gpiod_line_update(l);
		who = gpiod_line_consumer(l);
		snprintf(msg, len, "line %s is busy: requested by '%s'", what, who ? who : "the kernel");
		return RIG_E_BUSY;
	}
	snprintf(msg, len, "cannot request line %s: %s", what, strerror(e));
	return errno_code(e);
}

static bool spec_matches(const struct gline *g, const struct gspec *s)
{
	if (strcmp(g->chip, s->chip))
		return false;
	if (s->name)
		return g->name && !strcmp(g->name, s->name);
	return !g->name && g->offset == s->offset;
}

static struct gline *table_find(struct gtable *t, const struct gspec *s)
{
	for (size_t i = 0; i < t->n; i++)
		if (spec_matches(&t->v[i], s))
			return &t->v[i];
	return NULL;
}

static void gline_release(struct gline *g)
{
	if (g->l)
		gpiod_line_release(g->l);
	if (g->c)
		gpiod_chip_close(g->c);
	g->l = NULL;
	g->c = NULL;
}

static void table_clear(struct gtable *t)
{
	for (size_t i = 0; i < t->n; i++) {
		gline_release(&t->v[i]);
		free(t->v[i].chip);
		free(t->v[i].name);
	}
	free(t->v);
	t->v = NULL;
	t->n = 0;
}

/* Drive a line, requesting it as an output on first use. */
static int table_set(struct gtable *t, const struct gspec *s, int value, char *msg, size_t len)
{
	struct gline *g = table_find(t, s);
	char what[160];
	int rc;

	if (!g) {
		struct gline *v = realloc(t->v, (t->n + 1) * sizeof(*v));

		if (!v)
			return RIG_E_NOMEM;
		t->v = v;
		g = &v[t->n];
		memset(g, 0, sizeof(*g));
		g->chip = strdup(s->chip);
		g->name = s->name ? strdup(s->name) : NULL;
		if (!g->chip || (s->name && !g->name)) {
			free(g->chip);
			free(g->name);
			return RIG_E_NOMEM;
		}
		g->offset = s->offset;
		g->value = -1;
		t->n++;
	}
	g->rest = s->rest;
	if (g->l && g->open_drain != s->open_drain)
		gline_release(g);       /* the drive mode changed: request again */
	if (!g->l) {
		rc = line_lookup(s, &g->c, &g->l, msg, len);
		if (rc < 0)
			return rc;
		if (gpiod_line_request_output_flags(g->l, CONSUMER,
				s->open_drain ? GPIOD_LINE_REQUEST_FLAG_OPEN_DRAIN : 0, value) < 0) {
			rc = request_failed(g->l, s, errno, msg, len);
			gpiod_chip_close(g->c);
			g->c = NULL;
			g->l = NULL;
			return rc;
		}
		g->open_drain = s->open_drain;
		g->value = value;
		return 0;
	}
	if (gpiod_line_set_value(g->l, value) < 0) {
		int e = errno;

		spec_name(s, what, sizeof(what));
		snprintf(msg, len, "cannot set line %s to %d: %s", what, value, strerror(e));
		return errno_code(e) == RIG_E_NODEV ? RIG_E_NODEV : RIG_E_IO;
	}
	g->value = value;
	return 0;
}

/*
 * Read a line: through its request when held (the level we drive, read back from the
 * kernel), else through a short "as is" request that changes neither direction nor
 * value, so a read never disturbs a relay someone else set.
 */
static int table_get(struct gtable *t, const struct gspec *s, int *value, char *msg,
		     size_t len)
{
	struct gline *g = table_find(t, s);
	struct gpiod_line_request_config cfg = {
		.consumer = CONSUMER, .request_type = GPIOD_LINE_REQUEST_DIRECTION_AS_IS,
	};
	struct gpiod_chip *c;
	struct gpiod_line *l;
	char what[160];
	int rc, v;

	spec_name(s, what, sizeof(what));
	if (g && g->l) {
		v = gpiod_line_get_value(g->l);
		if (v < 0) {
			snprintf(msg, len, "cannot read line %s: %s", what, strerror(errno));
			return RIG_E_IO;
		}
		*value = v;
		return 0;
	}
	rc = line_lookup(s, &c, &l, msg, len);
	if (rc < 0)
		return rc;
	if (gpiod_line_request(l, &cfg, 0) < 0) {
		rc = request_failed(l, s, errno, msg, len);
		gpiod_chip_close(c);
		return rc;
	}
	v = gpiod_line_get_value(l);
	if (v < 0)
		snprintf(msg, len, "cannot read line %s: %s", what, strerror(errno));
	gpiod_line_release(l);
	gpiod_chip_close(c);
	if (v < 0)
		return RIG_E_IO;
	*value = v;
	return 0;
}

static bool table_at_rest(const struct gtable *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct gline *g = &t->v[i];

		if (!g->l || g->rest == REST_ANY)
			continue;
		if (g->rest == REST_NEVER || g->value != g->rest)
			return false;
	}
	return true;
}

/* ---- the holder process ---- */

struct holder {
	int lfd;
	int clients[HOLDER_MAX_CLIENTS];
	size_t nclients;
	struct gtable t;
	int idle_ms;
	const char *sock;
	ino_t ino;
	bool quit;
};

/* Split @buf at tabs into at most @max fields; returns the count. */
static int split(char *buf, char **f, int max)
{
	int n = 0;

	while (n < max) {
		f[n++] = buf;
		buf = strchr(buf, '\t');
		if (!buf)
			break;
		*buf++ = 0;
	}
	return n;
}

static void holder_request(struct holder *h, int fd, char *req)
{
	char *f[8], msg[MSG_MAX] = "", out[MSG_MAX + 32];
	struct gspec s;
	int n = split(req, f, 8), rc = RIG_E_PROTO, value = 0;

	if (n >= 4 && (f[0][0] == 'S' || f[0][0] == 'G')) {
		s.chip = f[1];
		s.name = f[2][0] ? f[2] : NULL;
		s.offset = atoi(f[3]);
		s.open_drain = n > 4 && atoi(f[4]);
		s.rest = n > 5 ? atoi(f[5]) : REST_NEVER;
		if (f[0][0] == 'S' && n == 7) {
			value = atoi(f[6]) != 0;
			rc = table_set(&h->t, &s, value, msg, sizeof(msg));
		} else if (f[0][0] == 'G') {
			rc = table_get(&h->t, &s, &value, msg, sizeof(msg));
		}
	} else if (n == 1 && f[0][0] == 'P') {
		rc = 0;
		value = (int)getpid();
	} else if (n == 1 && f[0][0] == 'Q') {
		rc = 0;
		h->quit = true;
	}
	if (rc == RIG_E_PROTO && !msg[0])
		snprintf(msg, sizeof(msg), "bad request to the GPIO holder");
	n = snprintf(out, sizeof(out), "%d\t%d\t%s", rc, value, msg);
	if (send(fd, out, (size_t)n, MSG_NOSIGNAL) < 0)
		(void)0;    /* the client went away; its next request reconnects */
}

/* Our socket was removed or replaced (state dir deleted, a new holder): step down. */
static bool holder_orphaned(const struct holder *h)
{
	struct stat st;

	return stat(h->sock, &st) < 0 || st.st_ino != h->ino;
}

static void holder_run(struct holder *h)
{
	int64_t rest_since = -1;

	while (!h->quit) {
		struct pollfd pfd[HOLDER_MAX_CLIENTS + 1];
		size_t npolled = h->nclients;
		int64_t now;
		int rc;

		pfd[0].fd = h->lfd;
		pfd[0].events = POLLIN;
		for (size_t i = 0; i < h->nclients; i++) {
			pfd[i + 1].fd = h->clients[i];
			pfd[i + 1].events = POLLIN;
		}
		rc = poll(pfd, npolled + 1, 200);
		if (rc < 0 && errno != EINTR)
			break;
		if (rc > 0 && (pfd[0].revents & POLLIN)) {
			int c = accept(h->lfd, NULL, NULL);

			if (c >= 0 && h->nclients < HOLDER_MAX_CLIENTS)
				h->clients[h->nclients++] = c;
			else if (c >= 0)
				close(c);
		}
		/* Only the clients polled above; one accepted just now waits for the next round. */
		for (size_t i = npolled; rc > 0 && i-- > 0;) {
			char buf[MSG_MAX];
			ssize_t len;

			if (!pfd[i + 1].revents)
				continue;
			len = recv(pfd[i + 1].fd, buf, sizeof(buf) - 1, 0);
			if (len <= 0) {
				close(pfd[i + 1].fd);
				h->clients[i] = h->clients[--h->nclients];
				continue;
			}
			buf[len] = 0;
			holder_request(h, pfd[i + 1].fd, buf);
		}
		now = rig_now_ms();
		if (h->nclients || !table_at_rest(&h->t) || h->idle_ms < 0)
			rest_since = -1;
		else if (rest_since < 0)
			rest_since = now;
		if (rest_since >= 0 && now - rest_since >= h->idle_ms)
			break;
		if (holder_orphaned(h))
			break;
	}
	table_clear(&h->t);
}

/*
 * The holder's life, in the grandchild of the caller: drop everything inherited
 * (above all the rig's lock file, or the rig would stay locked), detach, serve.
 */
static void __attribute__((noreturn)) holder_main(int lfd, int pidfd, const char *sock,
						 int idle_ms)
{
	struct holder h = { .lfd = lfd, .idle_ms = idle_ms, .sock = sock };
	struct stat st;
	char pid[32];
	long max = sysconf(_SC_OPEN_MAX);
	sigset_t mask;
	int null;

	for (int fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
		if (fd != lfd && fd != pidfd)
			close(fd);
	null = open("/dev/null", O_RDWR);
	for (int fd = 0; fd < 3; fd++)
		if (null >= 0)
			dup2(null, fd);
		else
			close(fd);
	if (null > 2)
		close(null);
	/* The caller's handlers (the CLI's SIGTERM flag) must not outlive it: SIGTERM ends us. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigemptyset(&mask);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(pidfd, 0) < 0 || pwrite(pidfd, pid, strlen(pid), 0) < 0)
		(void)0;
	if (stat(sock, &st) == 0)
		h.ino = st.st_ino;
	holder_run(&h);
	if (!holder_orphaned(&h))
		unlink(sock);
	if (ftruncate(pidfd, 0) < 0)
		(void)0;
	_exit(0);
}

/* ---- the rig side: one shared object per rig, serving all its gpio parts ---- */

struct gpio_rig {
	struct rig_ctx *ctx;
	bool in_process;
	int idle_ms;
	struct gtable t;    /* in process */
	int fd;             /* holder connection, -1 none */
	char sock[108];
	char pidf[4200];
};

struct gpio_priv {
	struct gpio_rig *g;
	struct gspec line, enable;  /* enable.chip NULL: no enable line */
};

static void gpio_rig_destroy(void *obj)
{
	struct gpio_rig *g = obj;

	if (g->fd >= 0)
		close(g->fd);
	table_clear(&g->t);
	free(g);
}

static void *gpio_rig_create(struct rig_part *p, int *rc)
{
	const struct gpio_conf *c = p->conf;
	struct gpio_rig *g = calloc(1, sizeof(*g));
	struct rig_ctx *ctx = rig_part_ctx(p);
	const char *dir = rig_ctx_state_dir(ctx);
	int n;

	if (!g) {
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
		free(g);
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
 * Start a holder: under the pid file's lock (so two callers never start two), bind the
 * socket here, so the caller can connect the moment fork() returns, then double-fork so
 * the holder is nobody's child. Returns 0 (also when another caller is starting one),
 * or a negative error.
 */
static int holder_spawn(struct rig_part *p, struct gpio_rig *g)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int pidfd, lfd, status;
	pid_t pid;

	pidfd = open(g->pidf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (pidfd < 0)
		return rig_part_fail(p, RIG_E_IO, "cannot open '%s': %s", g->pidf, strerror(errno));
	if (flock(pidfd, LOCK_EX | LOCK_NB) < 0) {
		close(pidfd);
		return 0;   /* a holder lives (or is being started): its socket will answer */
	}
	unlink(g->sock);    /* stale: its holder died without removing it */
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	memcpy(sa.sun_path, g->sock, strlen(g->sock) + 1);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 8) < 0) {
		int e = errno;

		if (lfd >= 0)
			close(lfd);
		close(pidfd);
		return rig_part_fail(p, RIG_E_IO, "cannot listen on '%s': %s", g->sock, strerror(e));
	}
	pid = fork();
	if (pid == 0) {
		setsid();
		if (fork() != 0)
			_exit(0);
		holder_main(lfd, pidfd, g->sock, g->idle_ms);
	}
	close(lfd);
	close(pidfd);
	if (pid < 0) {
		unlink(g->sock);
		return rig_part_fail(p, RIG_E_IO, "cannot start the GPIO holder: %s", strerror(errno));
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	rig_dbg(g->ctx, "started a GPIO holder for '%s'", g->sock);
	return 0;
}

/*
 * Connect to the rig's holder; with @spawn, start one when none runs and wait for it
 * until @d, at most SPAWN_WAIT_MS.
 */
static int holder_ensure(struct rig_part *p, struct gpio_rig *g, bool spawn, struct rig_deadline d)
{
	struct rig_deadline start = rig_deadline_start(SPAWN_WAIT_MS);
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
		rc = rig_ctx_ensure_state_dir(g->ctx);
		if (rc == 0)
			rc = holder_spawn(p, g);
		if (rc < 0)
			return rc;
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
	char buf[MSG_MAX + 32], *f[3];
	ssize_t n;
	int rc;

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
	if (split(buf, f, 3) != 3) {
		snprintf(msg, len, "garbled answer from the GPIO holder");
		return RIG_E_PROTO;
	}
	rc = atoi(f[0]);
	*value = atoi(f[1]);
	snprintf(msg, len, "%s", f[2]);
	return rc;
}

static int via_holder(struct rig_part *p, struct gpio_rig *g, const struct gspec *s, int set,
		      int *value, char *msg, size_t len, struct rig_deadline d)
{
	char req[MSG_MAX];
	int rc = 0;

	if (set)
		snprintf(req, sizeof(req), "S\t%s\t%s\t%d\t%d\t%d\t%d", s->chip, s->name ? s->name : "",
			 s->offset, s->open_drain, s->rest, *value);
	else
		snprintf(req, sizeof(req), "G\t%s\t%s\t%d\t%d\t%d", s->chip, s->name ? s->name : "",
			 s->offset, s->open_drain, s->rest);
	/* A holder that exited (idle) or died between calls is started again, once. */
	for (int attempt = 0; attempt < 2; attempt++) {
		rc = holder_ensure(p, g, set, d);
		if (rc == RIG_E_NOENT && !set)
			return table_get(&g->t, s, value, msg, len);  /* none runs: read as is */
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
static int line_io(struct rig_part *p, const struct gspec *s, bool set, int *value,
		   struct rig_deadline d)
{
	struct gpio_rig *g = ((struct gpio_priv *)p->priv)->g;
	char msg[MSG_MAX] = "";
	int rc;

	if (g->in_process)
		rc = set ? table_set(&g->t, s, *value, msg, sizeof(msg))
			 : table_get(&g->t, s, value, msg, sizeof(msg));
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
	struct gpiod_chip *chip;
	struct gpiod_line *line;
	char msg[MSG_MAX];
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
	pv->line = (struct gspec){ .chip = c->chip, .name = c->line, .offset = c->offset,
				   .open_drain = c->open_drain };
	switch (p->be->role) {
	case RIG_ROLE_POWER:
	case RIG_ROLE_BUTTON:
		/* Rest = the raw level of "off" / "released" after the front end's inversion. */
		pv->line.rest = p->common.inverted ? 1 : 0;
		break;
	default:
		pv->line.rest = c->enable_line ? REST_ANY : REST_NEVER;
		if (c->enable_line)
			pv->enable = (struct gspec){ .chip = c->chip, .name = c->enable_line,
						     .open_drain = c->open_drain,
						     .rest = !c->enable_level };
		break;
	}
	/* Fail early on a missing chip or line name: look them up without requesting. */
	for (int i = 0; i < 2; i++) {
		const struct gspec *s = i ? &pv->enable : &pv->line;

		if (!s->chip)
			continue;
		rc = line_lookup(s, &chip, &line, msg, sizeof(msg));
		if (rc < 0)
			return rig_part_fail(p, rc, "%s", msg);
		gpiod_chip_close(chip);
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
