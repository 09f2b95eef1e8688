// SPDX-License-Identifier: MIT
/*
 * rigfw-sim: the firmware core on a simulated HAL. Interface documented in sim.h.
 *
 * One poll() loop stands in for the interrupt controller: link bytes are handed to
 * rigfw_isr_rx() only while the core's queue has room (like the USART holding RXNE), and
 * rigfw_task() runs after every wake-up, at least once a millisecond.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "hal.h"
#include "ina219_sim.h"
#include "rigfw.h"
#include "sim.h"

#define MAX_CTL 8

struct ctl_client {
	int fd;
	char buf[256];
	size_t len;
};

/* The simulated board. File scope because hal.h functions take no context: this port is
 * a program with exactly one board. */
static struct {
	struct rigfw fw;
	bool out[HAL_OUT_COUNT];
	uint64_t t0_ms;
	int32_t mv, ma;
	bool sensor_fail;
	bool wdt_on;
	uint32_t wdt_ms, wdt_kick;
	uint8_t reason;
	unsigned int boots;
	/* DUT power-ons (off to on), for a board model that polls the state file: a short
	 * cut between two polls still shows as a new count */
	unsigned int power_ons;
	int pending_reset; /* -1 none, else reset reason */
	bool hung;
	uint32_t hang_until;
	/* link */
	bool link_pty;
	char *link_path;
	int link_listen, link_fd, pty_slave;
	/* control */
	char *ctl_path;
	int ctl_listen;
	struct ctl_client ctl[MAX_CTL];
	char *state_path;
	bool state_dirty;
} sim = {
	.link_listen = -1, .link_fd = -1, .pty_slave = -1, .ctl_listen = -1, .pending_reset = -1,
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- hal.h ----------------------------------------------------------------------------- */

void hal_init(void)
{
	memset(sim.out, 0, sizeof(sim.out));
	sim.wdt_on = false;
	sim.state_dirty = true;
}

void hal_gpio_set(enum hal_out out, bool on)
{
	if (sim.out[out] != on)
		sim.state_dirty = true;
	if (out == HAL_OUT_DUT_POWER && on && !sim.out[out])
		sim.power_ons++;
	sim.out[out] = on;
}

bool hal_gpio_get(enum hal_out out)
{
	return sim.out[out];
}

void hal_uart_write(const uint8_t *buf, size_t len)
{
	while (len && sim.link_fd >= 0) {
		ssize_t n = sim.link_pty ? write(sim.link_fd, buf, len) :
					   send(sim.link_fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = sim.link_fd, .events = POLLOUT };

			if (poll(&p, 1, 100) <= 0)
				return; /* host not reading: drop, like a UART */
			continue;
		}
		if (n <= 0) {
			if (!sim.link_pty) {
				close(sim.link_fd);
				sim.link_fd = -1;
			}
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

uint32_t hal_time_ms(void)
{
	return (uint32_t)(mono_ms() - sim.t0_ms);
}

int hal_i2c_xfer(uint8_t addr, const uint8_t *w, size_t wlen, uint8_t *r, size_t rlen)
{
	if (sim.sensor_fail)
		return -ETIMEDOUT;
	if (addr != RIGFW_INA219_ADDR || wlen != 1 || rlen != 2)
		return -ENXIO;
	return ina219_sim_read(w[0], sim.out[HAL_OUT_DUT_POWER], sim.mv, sim.ma, r) < 0 ? -EIO : 0;
}

void hal_wdt_start(uint32_t ms)
{
	sim.wdt_on = true;
	sim.wdt_ms = ms;
	sim.wdt_kick = hal_time_ms();
}

void hal_wdt_kick(void)
{
	sim.wdt_kick = hal_time_ms();
}

uint8_t hal_reset_reason(void)
{
	return sim.reason;
}

void hal_reset(void)
{
	sim.pending_reset = RIGPROTO_RESET_SOFTWARE;
}

void hal_idle(void)
{
}

/* ---- board --------------------------------------------------------------------------- */

static void board_boot(uint8_t reason)
{
	sim.reason = reason;
	sim.boots++;
	sim.hung = false;
	sim.pending_reset = -1;
	hal_init();
	rigfw_init(&sim.fw);
}

static const char *mux_name(void)
{
	if (!sim.out[HAL_OUT_MUX_ENABLE])
		return "off";
	return sim.out[HAL_OUT_MUX_HOST] ? "host" : "dut";
}

static const char *reason_name(uint8_t r)
{
	static const char *const names[] = { "unknown", "power_on", "pin", "software",
					     "watchdog", "brownout", "low_power" };

	return r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

static int state_line(char *buf, size_t size)
{
	return snprintf(buf, size,
			"power=%d mux=%s mux_host=%d mux_enable=%d sd_power=%d buttons=%d%d%d%d "
			"led=%d mv=%d ma=%d sensor=%s boots=%u reason=%s power_ons=%u",
			sim.out[HAL_OUT_DUT_POWER], mux_name(), sim.out[HAL_OUT_MUX_HOST],
			sim.out[HAL_OUT_MUX_ENABLE], sim.out[HAL_OUT_SD_POWER],
			sim.out[HAL_OUT_BUTTON0], sim.out[HAL_OUT_BUTTON1],
			sim.out[HAL_OUT_BUTTON2], sim.out[HAL_OUT_BUTTON3], sim.out[HAL_OUT_LED],
			(int)sim.mv, (int)sim.ma, sim.sensor_fail ? "fail" : "ok", sim.boots,
			reason_name(sim.reason), sim.power_ons);
}

static void state_write(void)
{
	char line[256], tmp[4200];
	FILE *f;

	sim.state_dirty = false;
	if (!sim.state_path)
		return;
	state_line(line, sizeof(line));
	snprintf(tmp, sizeof(tmp), "%s.tmp", sim.state_path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%s\n", line);
	if (fclose(f) == 0)
		rename(tmp, sim.state_path);
}

/* ---- sockets ------------------------------------------------------------------------- */

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "rigfw-sim: socket path too long '%s'\n", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		fprintf(stderr, "rigfw-sim: cannot listen on '%s': %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int open_pty(const char *path)
{
	struct termios t;
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	const char *name;

	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || !(name = ptsname(m))) {
		fprintf(stderr, "rigfw-sim: cannot create a pty: %s\n", strerror(errno));
		return -1;
	}
	/* keep the slave open so the master never sees a hang-up between host sessions */
	sim.pty_slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (sim.pty_slave < 0 || tcgetattr(sim.pty_slave, &t) < 0) {
		fprintf(stderr, "rigfw-sim: cannot open '%s': %s\n", name, strerror(errno));
		return -1;
	}
	cfmakeraw(&t);
	cfsetspeed(&t, B115200);
	tcsetattr(sim.pty_slave, TCSANOW, &t);
	unlink(path);
	if (symlink(name, path) < 0) {
		fprintf(stderr, "rigfw-sim: cannot link '%s': %s\n", path, strerror(errno));
		return -1;
	}
	return m;
}

static void ctl_reply(struct ctl_client *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (send(c->fd, line, (size_t)n, MSG_NOSIGNAL) < 0) {
		/* the client went away; its POLLHUP closes it */
	}
}

/* next blank-separated word of *p (NUL-terminated in place), or NULL */
static char *next_word(char **p)
{
	char *w = *p + strspn(*p, " \t\r");

	if (!*w)
		return NULL;
	*p = w + strcspn(w, " \t\r");
	if (**p)
		*(*p)++ = '\0';
	return w;
}

static void ctl_command(struct ctl_client *c, char *line)
{
	char *save = line, *cmd = next_word(&save), *arg;

	if (!cmd) {
		ctl_reply(c, "err empty command");
	} else if (!strcmp(cmd, "get")) {
		char st[256];

		state_line(st, sizeof(st));
		ctl_reply(c, "ok %s", st);
	} else if (!strcmp(cmd, "set")) {
		int32_t mv = sim.mv, ma = sim.ma;
		bool bad = false;

		while ((arg = next_word(&save))) {
			char *end;
			long v;

			if (!strncmp(arg, "mv=", 3)) {
				v = strtol(arg + 3, &end, 10);
				bad |= *end || v < 0 || v > 100000;
				mv = (int32_t)v;
			} else if (!strncmp(arg, "ma=", 3)) {
				v = strtol(arg + 3, &end, 10);
				bad |= *end || v < -100000 || v > 100000;
				ma = (int32_t)v;
			} else {
				bad = true;
			}
		}
		if (bad) {
			ctl_reply(c, "err usage: set mv=N ma=N");
			return;
		}
		sim.mv = mv;
		sim.ma = ma;
		sim.state_dirty = true;
		ctl_reply(c, "ok");
	} else if (!strcmp(cmd, "sensor")) {
		arg = next_word(&save);
		if (!arg || (strcmp(arg, "ok") && strcmp(arg, "fail"))) {
			ctl_reply(c, "err usage: sensor ok|fail");
			return;
		}
		sim.sensor_fail = !strcmp(arg, "fail");
		sim.state_dirty = true;
		ctl_reply(c, "ok");
	} else if (!strcmp(cmd, "reset")) {
		uint8_t r = RIGPROTO_RESET_PIN;

		arg = next_word(&save);
		if (arg && !strcmp(arg, "power_on"))
			r = RIGPROTO_RESET_POWER_ON;
		else if (arg && !strcmp(arg, "software"))
			r = RIGPROTO_RESET_SOFTWARE;
		else if (arg && strcmp(arg, "pin")) {
			ctl_reply(c, "err usage: reset [pin|power_on|software]");
			return;
		}
		board_boot(r);
		ctl_reply(c, "ok");
	} else if (!strcmp(cmd, "hang")) {
		char *end;
		long ms;

		arg = next_word(&save);
		ms = arg ? strtol(arg, &end, 10) : -1;
		if (!arg || *end || ms < 1 || ms > 600000) {
			ctl_reply(c, "err usage: hang MS");
			return;
		}
		sim.hung = true;
		sim.hang_until = hal_time_ms() + (uint32_t)ms;
		ctl_reply(c, "ok");
	} else if (!strcmp(cmd, "quit")) {
		ctl_reply(c, "ok");
		stop = 1;
	} else {
		ctl_reply(c, "err unknown command '%s'", cmd);
	}
}

static void ctl_close(struct ctl_client *c)
{
	close(c->fd);
	c->fd = -1;
	c->len = 0;
}

static void ctl_read(struct ctl_client *c)
{
	ssize_t n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
	char *nl;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		ctl_close(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	while ((nl = memchr(c->buf, '\n', c->len))) {
		size_t used = (size_t)(nl - c->buf) + 1;

		*nl = '\0';
		ctl_command(c, c->buf);
		if (c->fd < 0)
			return;
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
	}
	if (c->len == sizeof(c->buf) - 1) {
		ctl_reply(c, "err line too long");
		c->len = 0;
	}
}

static void link_read(void)
{
	uint8_t buf[RIGFW_RX_QUEUE_SIZE];
	size_t room = RIGFW_RX_QUEUE_SIZE - (uint16_t)(sim.fw.q_head - sim.fw.q_tail);
	ssize_t n;

	if (!room)
		return;
	n = read(sim.link_fd, buf, room);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		if (!sim.link_pty) {
			close(sim.link_fd);
			sim.link_fd = -1;
		}
		return;
	}
	for (ssize_t i = 0; i < n; i++)
		rigfw_isr_rx(&sim.fw, buf[i]);
}

static int parse_unix(const char *spec, const char *what, char **path)
{
	if (strncmp(spec, "unix:", 5) || !spec[5]) {
		fprintf(stderr, "rigfw-sim: %s must be unix:PATH, not '%s'\n", what, spec);
		return -1;
	}
	*path = strdup(spec + 5);
	return *path ? 0 : -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: rigfw-sim --link unix:PATH|pty:PATH [--control unix:PATH] "
			"[--state FILE] [--mv N] [--ma N]\n");
}

static void cleanup(void)
{
	for (int i = 0; i < MAX_CTL; i++)
		if (sim.ctl[i].fd >= 0)
			ctl_close(&sim.ctl[i]);
	if (sim.link_fd >= 0)
		close(sim.link_fd);
	if (sim.link_listen >= 0)
		close(sim.link_listen);
	if (sim.pty_slave >= 0)
		close(sim.pty_slave);
	if (sim.ctl_listen >= 0)
		close(sim.ctl_listen);
	if (sim.link_path)
		unlink(sim.link_path);
	if (sim.ctl_path)
		unlink(sim.ctl_path);
	if (sim.state_path)
		unlink(sim.state_path);
	free(sim.link_path);
	free(sim.ctl_path);
	free(sim.state_path);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int rc = 1;

	sim.mv = 5000;
	sim.ma = 100;
	for (int i = 0; i < MAX_CTL; i++)
		sim.ctl[i].fd = -1;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!val) {
			usage();
			return 2;
		}
		i++;
		if (!strcmp(opt, "--link")) {
			if (!strncmp(val, "pty:", 4) && val[4]) {
				sim.link_pty = true;
				sim.link_path = strdup(val + 4);
			} else if (parse_unix(val, "--link", &sim.link_path) < 0) {
				return 2;
			}
		} else if (!strcmp(opt, "--control")) {
			if (parse_unix(val, "--control", &sim.ctl_path) < 0)
				return 2;
		} else if (!strcmp(opt, "--state")) {
			sim.state_path = strdup(val);
		} else if (!strcmp(opt, "--mv")) {
			sim.mv = atoi(val);
		} else if (!strcmp(opt, "--ma")) {
			sim.ma = atoi(val);
		} else {
			usage();
			return 2;
		}
	}
	if (!sim.link_path) {
		usage();
		return 2;
	}

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (sim.link_pty) {
		sim.link_fd = open_pty(sim.link_path);
		if (sim.link_fd < 0)
			goto out;
	} else {
		sim.link_listen = listen_unix(sim.link_path);
		if (sim.link_listen < 0)
			goto out;
	}
	if (sim.ctl_path) {
		sim.ctl_listen = listen_unix(sim.ctl_path);
		if (sim.ctl_listen < 0)
			goto out;
	}

	sim.t0_ms = mono_ms();
	board_boot(RIGPROTO_RESET_POWER_ON);
	printf("rigfw-sim: ready\n");
	fflush(stdout);

	while (!stop) {
		struct pollfd pfd[3 + MAX_CTL];
		int n = 0, link_i = -1, llisten_i = -1, clisten_i = -1, ctl_i[MAX_CTL];
		uint32_t now;

		if (sim.link_fd >= 0) {
			link_i = n;
			pfd[n++] = (struct pollfd){ .fd = sim.link_fd, .events = POLLIN };
		}
		if (sim.link_listen >= 0) {
			llisten_i = n;
			pfd[n++] = (struct pollfd){ .fd = sim.link_listen, .events = POLLIN };
		}
		if (sim.ctl_listen >= 0) {
			clisten_i = n;
			pfd[n++] = (struct pollfd){ .fd = sim.ctl_listen, .events = POLLIN };
		}
		for (int i = 0; i < MAX_CTL; i++) {
			ctl_i[i] = -1;
			if (sim.ctl[i].fd >= 0) {
				ctl_i[i] = n;
				pfd[n++] = (struct pollfd){ .fd = sim.ctl[i].fd, .events = POLLIN };
			}
		}
		if (poll(pfd, (nfds_t)n, 1) < 0 && errno != EINTR)
			break;
		if (stop)
			break;

		if (llisten_i >= 0 && (pfd[llisten_i].revents & POLLIN)) {
			int fd = accept4(sim.link_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

			if (fd >= 0) {
				if (sim.link_fd >= 0)
					close(sim.link_fd);
				sim.link_fd = fd;
				link_i = -1; /* stale index */
			}
		}
		if (link_i >= 0 && sim.link_fd >= 0 && (pfd[link_i].revents & (POLLIN | POLLHUP)))
			link_read();
		if (clisten_i >= 0 && (pfd[clisten_i].revents & POLLIN)) {
			int fd = accept4(sim.ctl_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

			for (int i = 0; fd >= 0 && i < MAX_CTL; i++) {
				if (sim.ctl[i].fd < 0) {
					sim.ctl[i].fd = fd;
					sim.ctl[i].len = 0;
					fd = -1;
				}
			}
			if (fd >= 0)
				close(fd); /* too many control clients */
		}
		for (int i = 0; i < MAX_CTL; i++)
			if (ctl_i[i] >= 0 && sim.ctl[i].fd >= 0 &&
			    (pfd[ctl_i[i]].revents & (POLLIN | POLLHUP | POLLERR)))
				ctl_read(&sim.ctl[i]);

		now = hal_time_ms();
		if (sim.hung && (int32_t)(now - sim.hang_until) >= 0)
			sim.hung = false;
		if (!sim.hung)
			rigfw_task(&sim.fw);
		if (sim.pending_reset >= 0)
			board_boot((uint8_t)sim.pending_reset);
		else if (sim.wdt_on && hal_time_ms() - sim.wdt_kick > sim.wdt_ms)
			board_boot(RIGPROTO_RESET_WATCHDOG);
		if (sim.state_dirty)
			state_write();
	}
	rc = 0;
out:
	cleanup();
	return rc;
}
