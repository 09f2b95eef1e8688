// SPDX-License-Identifier: MIT
/* Blocking test client over a stream fd; see rigclient.h. */
#define _GNU_SOURCE
#include "rigclient.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rigclient_connect_unix(const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long end = now_ms() + timeout_ms;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	do {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		usleep(10000);
	} while (now_ms() < end);
	return -1;
}

static void on_frame(void *user, const struct rigproto_frame *f, int err)
{
	struct rigclient *c = user;

	if (err) {
		c->rx_errors++;
		return;
	}
	if (c->nq >= RIGCLIENT_QUEUE) {
		memmove(c->q, c->q + 1, sizeof(c->q[0]) * (RIGCLIENT_QUEUE - 1));
		c->nq--;
	}
	if (rigproto_msg_decode(f, &c->q[c->nq]) < 0) {
		c->bad_msgs++;
		return;
	}
	c->nq++;
}

void rigclient_init(struct rigclient *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	rigproto_init(&c->rx, on_frame, c);
}

int rigclient_send_raw(struct rigclient *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(c->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_cb(void *user, const uint8_t *buf, size_t len)
{
	return rigclient_send_raw(user, buf, len) < 0 ? -EIO : 0;
}

int rigclient_send(struct rigclient *c, struct rigproto_msg *m)
{
	struct rigproto_out out;

	m->seq = ++c->seq;
	rigproto_out_init(&out, write_cb, c);
	return rigproto_msg_encode(&out, m) > 0 ? 0 : -1;
}

static int take(struct rigclient *c, uint8_t type, int seq, struct rigproto_msg *out)
{
	for (int i = 0; i < c->nq; i++) {
		if (c->q[i].type == type && (seq < 0 || c->q[i].seq == seq)) {
			if (out)
				*out = c->q[i];
			memmove(c->q + i, c->q + i + 1, sizeof(c->q[0]) * (size_t)(c->nq - i - 1));
			c->nq--;
			return 0;
		}
	}
	return -1;
}

static int wait_for(struct rigclient *c, uint8_t type, int seq, int timeout_ms,
		    struct rigproto_msg *out)
{
	long long end = now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		uint8_t buf[256];
		long long left;
		ssize_t n;

		if (take(c, type, seq, out) == 0)
			return 0;
		left = end - now_ms();
		if (left <= 0)
			return -1;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = read(c->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		rigproto_poll(&c->rx, buf, (size_t)n);
	}
}

int rigclient_wait(struct rigclient *c, uint8_t type, int timeout_ms, struct rigproto_msg *out)
{
	return wait_for(c, type, -1, timeout_ms, out);
}

int rigclient_request(struct rigclient *c, struct rigproto_msg *req, struct rigproto_msg *rep,
		      int timeout_ms)
{
	if (rigclient_send(c, req) < 0)
		return -1;
	return wait_for(c, (uint8_t)(req->type | RIGPROTO_REPLY), req->seq, timeout_ms, rep);
}

int rigclient_simple(struct rigclient *c, uint8_t type, int timeout_ms)
{
	struct rigproto_msg m = { .type = type }, r;

	if (rigclient_request(c, &m, &r, timeout_ms) < 0)
		return -1;
	return r.status;
}

void rigclient_flush(struct rigclient *c)
{
	c->nq = 0;
}

static int tap_n, tap_fail;

bool tap_ok(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", ok ? "" : "not ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		tap_fail++;
	return ok;
}

void tap_diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_fail ? 1 : 0;
}
