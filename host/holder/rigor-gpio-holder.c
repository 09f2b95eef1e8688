/* SPDX-License-Identifier: MIT */
/*
 * rigor-gpio-holder: owns the GPIO line requests of one rig between rigor commands, so a
 * relay stays closed after `rigor power on` has exited. Started by the gpio back-end
 * (host/src/drivers/gpio_v1.c) when nobody answers on the rig's socket; invocation and
 * wire protocol are in host/src/gpio_holder.h. It links only the line table
 * (drivers/gpio_lines.c) and libgpiod, like libgpiod's own gpio-manager beside libgpiod.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gpio_holder.h"
#include "internal.h"

#define MAX_CLIENTS 16
#define TICK_MS 200

struct holder {
	int lfd;
	int clients[MAX_CLIENTS];
	size_t nclients;
	struct rig_gpio_table *t;
	int idle_ms;
	const char *sock;
	ino_t ino;
	bool quit;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void serve_one(struct holder *h, int fd, char *req)
{
	char msg[RIG_GPIO_MSG_MAX] = "", out[RIG_GPIO_MSG_MAX + 32];
	struct rig_gpio_line s;
	enum rig_gpio_op op;
	int rc, value = 0, n;

	rc = rig_gpio_req_parse(req, &op, &s, &value);
	if (rc < 0)
		snprintf(msg, sizeof(msg), "bad request to the GPIO holder");
	else if (op == RIG_GPIO_SET)
		rc = rig_gpio_table_set(h->t, &s, value, msg, sizeof(msg));
	else if (op == RIG_GPIO_GET)
		rc = rig_gpio_table_get(h->t, &s, &value, msg, sizeof(msg));
	else if (op == RIG_GPIO_PING)
		value = (int)getpid();
	else
		h->quit = true;
	n = rig_gpio_rep_format(out, sizeof(out), rc, value, msg);
	if (send(fd, out, (size_t)n, MSG_NOSIGNAL) < 0)
		(void)0;    /* the client went away; its next request reconnects */
}

/* Our socket was removed or replaced (state dir deleted, a new holder): step down. */
static bool orphaned(const struct holder *h)
{
	struct stat st;

	return stat(h->sock, &st) < 0 || st.st_ino != h->ino;
}

static void serve(struct holder *h)
{
	int64_t rest_since = -1;

	while (!h->quit) {
		struct pollfd pfd[MAX_CLIENTS + 1];
		size_t npolled = h->nclients;
		int64_t now;
		int rc;

		pfd[0].fd = h->lfd;
		pfd[0].events = POLLIN;
		for (size_t i = 0; i < h->nclients; i++) {
			pfd[i + 1].fd = h->clients[i];
			pfd[i + 1].events = POLLIN;
		}
		rc = poll(pfd, npolled + 1, TICK_MS);
		if (rc < 0 && errno != EINTR)
			break;
		if (rc > 0 && (pfd[0].revents & POLLIN)) {
			int c = accept(h->lfd, NULL, NULL);

			if (c >= 0 && h->nclients < MAX_CLIENTS)
				h->clients[h->nclients++] = c;
			else if (c >= 0)
				close(c);
		}
		/* Only the clients polled above; one accepted just now waits for the next round. */
		for (size_t i = npolled; rc > 0 && i-- > 0;) {
			char buf[RIG_GPIO_MSG_MAX];
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
			serve_one(h, pfd[i + 1].fd, buf);
		}
		now = mono_ms();
		if (h->nclients || !rig_gpio_table_at_rest(h->t) || h->idle_ms < 0)
			rest_since = -1;
		else if (rest_since < 0)
			rest_since = now;
		if (rest_since >= 0 && now - rest_since >= h->idle_ms)
			break;
		if (orphaned(h))
			break;
	}
}

static int usage(const char *prog)
{
	fprintf(stderr, "usage: %s --socket PATH --pid-file PATH [--idle-ms N]\n", prog);
	return 2;
}

int main(int argc, char **argv)
{
	struct holder h = { .lfd = -1, .idle_ms = 1000 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *pidf = NULL;
	struct stat st;
	char pid[32];
	int pidfd;

	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && !strcmp(argv[i], "--socket"))
			h.sock = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--pid-file"))
			pidf = argv[++i];
		else if (i + 1 < argc && !strcmp(argv[i], "--idle-ms"))
			h.idle_ms = atoi(argv[++i]);
		else
			return usage(argv[0]);
	}
	if (!h.sock || !pidf)
		return usage(argv[0]);
	if (strlen(h.sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "rigor-gpio-holder: socket path '%s' is too long\n", h.sock);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	pidfd = open(pidf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (pidfd < 0) {
		fprintf(stderr, "rigor-gpio-holder: cannot open '%s': %s\n", pidf, strerror(errno));
		return 1;
	}
	/* Held for our whole life: a second holder for this rig leaves at once. */
	if (flock(pidfd, LOCK_EX | LOCK_NB) < 0)
		return 0;
	rig_file_share(pidfd, pidf);
	unlink(h.sock);     /* stale: its holder died without removing it */
	memcpy(sa.sun_path, h.sock, strlen(h.sock) + 1);
	h.lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (h.lfd < 0 || bind(h.lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(h.lfd, 8) < 0) {
		fprintf(stderr, "rigor-gpio-holder: cannot listen on '%s': %s\n", h.sock,
			strerror(errno));
		return 1;
	}
	/* in the host-wide directory another user's rigor connects too */
	rig_file_share(-1, h.sock);
	h.t = rig_gpio_table_new();
	if (!h.t)
		return 1;
	if (stat(h.sock, &st) == 0)
		h.ino = st.st_ino;
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(pidfd, 0) < 0 || pwrite(pidfd, pid, strlen(pid), 0) < 0)
		(void)0;
	serve(&h);
	rig_gpio_table_free(h.t);   /* releases the lines */
	if (!orphaned(&h))
		unlink(h.sock);
	if (ftruncate(pidfd, 0) < 0)
		(void)0;
	return 0;
}
