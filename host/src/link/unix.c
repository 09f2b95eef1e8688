/* SPDX-License-Identifier: MIT */
/*
 * unix: a unix stream socket (rigfw-sim, QEMU's socket chardevs, the virtual board's
 * console). The connect is non-blocking: a listener with a full backlog is "nothing there
 * now", like one that is not running, and the caller decides whether to try again.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../internal.h"

struct unix_priv {
	int fd;
};

static int unix_open(struct rig_link *l, const char *target, const struct rig_link_opts *o,
		     struct rig_deadline d, char *why, size_t whylen)
{
	struct unix_priv *u = rig_link_priv(l);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *what = o->what ? o->what : "the socket";
	int e;

	u->fd = -1;
	if (strlen(target) >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "socket path '%s' is too long (%zu bytes at most)", target,
			 sizeof(sa.sun_path) - 1);
		return RIG_E_INVAL;
	}
	memcpy(sa.sun_path, target, strlen(target) + 1);
	u->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (u->fd < 0) {
		e = errno;
		snprintf(why, whylen, "socket: %s", strerror(e));
		return e == ENOMEM || e == ENOBUFS ? RIG_E_NOMEM : RIG_E_IO;
	}
	if (connect(u->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno == EINPROGRESS)
		return 0;
	e = errno;
	close(u->fd);
	u->fd = -1;
	snprintf(why, whylen, "cannot connect to %s at '%s': %s", what, target, strerror(e));
	return e == ENOENT || e == ECONNREFUSED || e == EAGAIN ? RIG_E_NODEV : RIG_E_IO;
}

static int unix_read(struct rig_link *l, void *buf, size_t len)
{
	struct unix_priv *u = rig_link_priv(l);
	ssize_t n = recv(u->fd, buf, len, 0);

	if (n > 0)
		return (int)n;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return rig_link_set_gone(l, n < 0 ? strerror(errno) : "end of file");
}

static int unix_write(struct rig_link *l, const void *buf, size_t len)
{
	struct unix_priv *u = rig_link_priv(l);
	ssize_t n = send(u->fd, buf, len, MSG_NOSIGNAL);

	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	return rig_link_set_gone(l, strerror(errno));   /* EPIPE, ECONNRESET: the peer left */
}

static int unix_get_fd(const struct rig_link *l)
{
	return ((struct unix_priv *)rig_link_priv(l))->fd;
}

static void unix_close(struct rig_link *l)
{
	struct unix_priv *u = rig_link_priv(l);

	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
}

const struct rig_link_ops rig_link_unix = {
	.scheme = "unix",
	.syntax = "unix:PATH",
	.priv_size = sizeof(struct unix_priv),
	.open = unix_open,
	.read = unix_read,
	.write = unix_write,
	.get_fd = unix_get_fd,
	.close = unix_close,
};
