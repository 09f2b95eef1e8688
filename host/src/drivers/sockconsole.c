/* SPDX-License-Identifier: MIT */
/*
 * socket: the DUT console on a unix stream socket, as a virtual board (QEMU, or
 * testcases/virtual/rigor-vboard) offers it; a console over a unix: link (conlink.c).
 * The connection is made on the first read or write, not at open, so a rig whose board
 * is not running yet still switches power. When the peer closes (the virtual board
 * restarted) the next call reconnects; while nothing listens, calls retry until their
 * timeout. A restart is routine here, so it is logged for debugging only, and no marker
 * goes into the stream.
 */
#define LOG_PREFIX "socket"
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "../internal.h"

#define RETRY_MS 50

struct sock_conf {
	char *path;
};

static int sock_open(struct rig_part *p)
{
	const struct sock_conf *c = p->conf;
	struct rig_conlink_conf cc = {
		.opts.what = "the console socket", .what = "console socket", .retry_ms = RETRY_MS,
		.lazy = true,
	};
	size_t max = sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1;
	char uri[sizeof("unix:") + sizeof(((struct sockaddr_un *)NULL)->sun_path)];

	if (strlen(c->path) > max)
		return rig_part_fail(p, RIG_E_INVAL, "socket path '%s' is too long (%zu bytes at most)",
				     c->path, max);
	snprintf(uri, sizeof(uri), "unix:%s", c->path);
	cc.uri = uri;
	return rig_conlink_open(p, &cc);
}

static const struct rig_param sock_params[] = {
	{ "path", RIG_P_STR, offsetof(struct sock_conf, path), true,
	  "unix stream socket the virtual board serves its console on" },
	RIG_PARAMS_END
};

const struct rig_backend rig_console_socket = {
	.role = RIG_ROLE_CONSOLE,
	.name = "socket",
	.help = "console on a unix stream socket (virtual board); reconnects when the peer restarts",
	.params = sock_params,
	.conf_size = sizeof(struct sock_conf),
	.priv_size = RIG_CONLINK_PRIV_SIZE,
	.open = sock_open,
	.close = rig_conlink_close,
	.ops.console = &rig_conlink_ops,
};
