/* SPDX-License-Identifier: MIT */
/*
 * socket: the DUT console on a unix stream socket, as a virtual board (QEMU, or
 * testcases/virtual/rigor-vboard) offers it. The connection is made on the first read or
 * write, not at open, so a rig whose board is not running yet still switches power.
 * When the peer closes (the virtual board restarted) the next call reconnects; while
 * nothing listens, calls retry until their timeout.
 */
#define LOG_PREFIX "socket"
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../internal.h"

#define RETRY_MS 50

struct sock_conf {
	char *path;
};

struct sock_priv {
	int fd;         /* -1: not connected */
	bool warned;    /* "cannot connect" logged once per outage */
};

static int sock_open(struct rig_part *p)
{
	const struct sock_conf *c = p->conf;
	struct sock_priv *s = p->priv;
	struct sockaddr_un sa;

	s->fd = -1;
	if (strlen(c->path) >= sizeof(sa.sun_path))
		return rig_part_fail(p, RIG_E_INVAL, "socket path '%s' is too long (%zu bytes at most)",
				     c->path, sizeof(sa.sun_path) - 1);
	return 0;
}

static void sock_drop(struct sock_priv *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static void sock_close(struct rig_part *p)
{
	sock_drop(p->priv);
}

/* One connection attempt: 0 connected, or a negative errno. */
static int try_connect(struct rig_part *p, struct sock_priv *s)
{
	const struct sock_conf *c = p->conf;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		e = -errno;
		close(fd);
		return e;
	}
	s->fd = fd;
	if (s->warned)
		rig_info(rig_part_ctx(p), "%s: console socket '%s' connected", p->label, c->path);
	s->warned = false;
	return 0;
}

/*
 * Connect if not connected, retrying until @end. Returns 0,
 * RIG_E_TIMEOUT (nothing listening; error not recorded), RIG_E_INTR, or another error.
 */
static int ensure(struct rig_part *p, struct sock_priv *s, struct rig_deadline end)
{
	const struct sock_conf *c = p->conf;

	for (;;) {
		int rc, left;

		if (s->fd >= 0)
			return 0;
		rc = try_connect(p, s);
		if (rc == 0)
			return 0;
		if (rc != -ENOENT && rc != -ECONNREFUSED && rc != -EAGAIN)
			return rig_part_fail(p, RIG_E_IO, "cannot connect to console socket '%s': %s",
					     c->path, strerror(-rc));
		if (!s->warned)
			rig_warn(rig_part_ctx(p), "%s: cannot connect to console socket '%s' (%s); retrying",
				 p->label, c->path, strerror(-rc));
		s->warned = true;
		if (rig_deadline_expired(end))
			return RIG_E_TIMEOUT;
		left = rig_deadline_left_ms(end);
		rc = rig_ctx_sleep(rig_part_ctx(p), left >= 0 && left < RETRY_MS ? left : RETRY_MS);
		if (rc < 0)
			return rc;
	}
}

static int sock_read(struct rig_part *p, void *buf, size_t len, int timeout_ms)
{
	struct sock_priv *s = p->priv;
	struct rig_deadline end = rig_deadline_start(timeout_ms);

	for (;;) {
		ssize_t r;
		int rc = ensure(p, s, end);

		if (rc < 0)
			return rc;
		rc = rig_ctx_poll(rig_part_ctx(p), s->fd, POLLIN, rig_deadline_left_ms(end));
		if (rc == RIG_E_TIMEOUT || rc == RIG_E_INTR)
			return rc;
		if (rc < 0) {
			sock_drop(s);
			continue;
		}
		r = read(s->fd, buf, len);
		if (r > 0)
			return (int)r;
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		/* End of file or an error: the board went away; reconnect (until the timeout). */
		rig_dbg(rig_part_ctx(p), "%s: console socket closed by the peer (%s)", p->label,
			r < 0 ? strerror(errno) : "end of file");
		sock_drop(s);
		if (rig_deadline_expired(end))
			return RIG_E_TIMEOUT;
	}
}

static int sock_write(struct rig_part *p, const void *buf, size_t len, int timeout_ms)
{
	const struct sock_conf *c = p->conf;
	struct sock_priv *s = p->priv;
	const char *b = buf;
	size_t done = 0;
	struct rig_deadline end = rig_deadline_start(timeout_ms);

	while (done < len) {
		ssize_t w;
		int rc = ensure(p, s, end);

		if (rc == RIG_E_TIMEOUT)
			return rig_part_fail(p, RIG_E_TIMEOUT,
					     "nothing listens on console socket '%s' (waited %d ms)",
					     c->path, timeout_ms);
		if (rc < 0)
			return rc;
		rc = rig_ctx_poll(rig_part_ctx(p), s->fd, POLLOUT, rig_deadline_left_ms(end));
		if (rc == RIG_E_TIMEOUT)
			return rig_part_fail(p, RIG_E_TIMEOUT,
					     "console socket '%s' took no data for %d ms", c->path,
					     timeout_ms);
		if (rc == RIG_E_INTR)
			return rc;
		if (rc < 0) {
			sock_drop(s);
			continue;
		}
		w = send(s->fd, b + done, len - done, MSG_NOSIGNAL);
		if (w > 0) {
			done += (size_t)w;
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			/* Peer gone (EPIPE, ECONNRESET): reconnect and send the rest. */
			rig_dbg(rig_part_ctx(p), "%s: console socket lost (%s); reconnecting", p->label,
				strerror(errno));
			sock_drop(s);
		}
	}
	return (int)len;
}

static int sock_get_fd(struct rig_part *p)
{
	struct sock_priv *s = p->priv;

	return s->fd >= 0 ? s->fd : RIG_E_NODEV;
}

static const struct rig_param sock_params[] = {
	{ "path", RIG_P_STR, offsetof(struct sock_conf, path), true,
	  "unix stream socket the virtual board serves its console on" },
	RIG_PARAMS_END
};

static const struct rig_console_ops sock_ops = {
	.read = sock_read, .write = sock_write, .get_fd = sock_get_fd,
};

const struct rig_backend rig_console_socket = {
	.role = RIG_ROLE_CONSOLE,
	.name = "socket",
	.help = "console on a unix stream socket (virtual board); reconnects when the peer restarts",
	.params = sock_params,
	.conf_size = sizeof(struct sock_conf),
	.priv_size = sizeof(struct sock_priv),
	.open = sock_open,
	.close = sock_close,
	.ops.console = &sock_ops,
};
