/* SPDX-License-Identifier: MIT */
/*
 * A console over a link (link.c): what the socket and serial consoles share. A console
 * must outlive its link: a virtual board restarts and closes its socket, an adapter is
 * unplugged with the DUT, a hub glitches. None of these ends a run: reads time out while
 * the link is gone, it is opened again every retry_ms while a call waits, and with
 * `announce` a marker line goes into the console stream so the gap shows in the log.
 *
 * get_fd returns an epoll fd that stays the same across reconnects: it holds the link
 * while connected and a timer while gone, so an event loop wakes to retry.
 */
#define LOG_PREFIX "console"
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "../internal.h"

struct conlink {
	struct rig_conlink_conf c;
	char *uri;
	struct rig_usb_match usb;       /* copies of what c.opts points to */
	struct rig_line_settings line;
	struct rig_link *link;          /* NULL while gone */
	bool ever;                      /* the link was up once: a failure now is an outage */
	bool warned;                    /* the outage was logged */
	int epfd, tfd;
	char name[256];                 /* what the link reached, for messages */
	int64_t lost_mono, lost_wall, next_try;
	char marker[160];               /* injected into the stream after a reconnect */
	size_t marker_len, marker_off;
};

static struct conlink *get(const struct rig_part *p)
{
	return *(struct conlink **)p->priv;
}

/* ---- the stable fd ---- */

static void timer_arm(struct conlink *s, int ms)
{
	struct itimerspec its = { 0 };

	if (ms >= 0) {
		its.it_value.tv_sec = ms / 1000;
		its.it_value.tv_nsec = (long)(ms % 1000) * 1000000 + 1;
		its.it_interval.tv_nsec = (long)s->c.retry_ms * 1000000;
	}
	timerfd_settime(s->tfd, 0, &its, NULL);
}

static void timer_drain(struct conlink *s)
{
	uint64_t n;

	while (read(s->tfd, &n, sizeof(n)) > 0)
		;
}

/* ---- losing and finding the link ---- */

static void lost(struct rig_part *p, struct conlink *s)
{
	if (!s->link)
		return;
	if (s->c.announce) {
		rig_warn(rig_part_ctx(p), "%s: %s '%s' lost (%s); reconnecting every %d ms", p->label,
			 s->c.what, s->name, rig_link_gone_why(s->link), s->c.retry_ms);
		s->warned = true;
	} else {
		rig_dbg(rig_part_ctx(p), "%s: %s '%s' closed by the peer (%s)", p->label, s->c.what,
			s->name, rig_link_gone_why(s->link));
	}
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, rig_link_get_fd(s->link), NULL);
	rig_link_close(s->link);
	s->link = NULL;
	s->lost_mono = rig_now_ms();
	s->lost_wall = rig_wall_ms();
	s->next_try = s->lost_mono;     /* the peer may be back at once (a restarted listener) */
	timer_arm(s, s->c.retry_ms);
}

static void connected(struct rig_part *p, struct conlink *s, struct rig_link *l)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int64_t now = rig_now_ms();
	char hms[32];
	struct tm tm;
	time_t t;

	s->link = l;
	snprintf(s->name, sizeof(s->name), "%s", rig_link_name(l));
	ev.data.fd = rig_link_get_fd(l);
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
	timer_arm(s, -1);
	timer_drain(s);
	if (s->ever && s->c.announce) {
		t = (time_t)(s->lost_wall / 1000);
		localtime_r(&t, &tm);
		strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
		s->marker_len = (size_t)snprintf(s->marker, sizeof(s->marker),
			"\r\n[rigor: console lost at %s.%03d, reconnected after %lld ms]\r\n",
			hms, (int)(s->lost_wall % 1000), (long long)(now - s->lost_mono));
		s->marker_off = 0;
		rig_info(rig_part_ctx(p), "%s: %s back as '%s' after %lld ms", p->label, s->c.what,
			 s->name, (long long)(now - s->lost_mono));
	} else if (s->warned) {
		rig_info(rig_part_ctx(p), "%s: %s '%s' connected", p->label, s->c.what, s->name);
	}
	s->ever = true;
	s->warned = false;
}

/*
 * One attempt to open the link, when due. Returns 0 connected, RIG_E_NODEV not yet (try
 * again), or an error that retrying will not cure (recorded on the part).
 */
static int try_connect(struct rig_part *p, struct conlink *s)
{
	struct rig_link *l;
	char why[2048];
	int64_t now = rig_now_ms();
	int rc;

	if (now < s->next_try)
		return RIG_E_NODEV;
	s->next_try = now + s->c.retry_ms;
	rc = rig_link_open(rig_part_ctx(p), s->uri, &s->c.opts, 0, &l, why, sizeof(why));
	if (rc == 0) {
		connected(p, s, l);
		return 0;
	}
	/* An adapter coming back may show up half-enumerated: while in an outage, retry all. */
	if (rc != RIG_E_NODEV && rc != RIG_E_INTR && !s->ever)
		return rig_part_fail(p, rc, "%s", why);
	if (!s->warned)
		rig_warn(rig_part_ctx(p), "%s: %s; retrying", p->label, why);
	s->warned = true;
	return rc == RIG_E_INTR ? rc : RIG_E_NODEV;
}

/*
 * Wait for the link to come back, until @end.
 * Returns 0 when it is connected, RIG_E_TIMEOUT, RIG_E_INTR, or an error from try_connect().
 */
static int wait_back(struct rig_part *p, struct conlink *s, struct rig_deadline end)
{
	for (;;) {
		int64_t left;
		int rc;

		timer_drain(s);     /* get_fd turns readable again at the next attempt */
		if (s->link)
			return 0;
		rc = try_connect(p, s);
		if (rc != RIG_E_NODEV)
			return rc;
		if (rig_deadline_expired(end))
			return RIG_E_TIMEOUT;
		left = rig_deadline_left_ms(end);
		if (left < 0 || left > s->next_try - rig_now_ms())
			left = s->next_try - rig_now_ms();
		rc = rig_ctx_sleep(rig_part_ctx(p), left > 0 ? (int)left : 0);
		if (rc < 0)
			return rc;
	}
}

/* ---- the back-end's open and close ---- */

int rig_conlink_open(struct rig_part *p, const struct rig_conlink_conf *c)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct conlink *s = calloc(1, sizeof(*s));
	struct rig_link *l;
	char why[2048];
	int rc;

	if (!s || !(s->uri = strdup(c->uri))) {
		free(s);
		return RIG_E_NOMEM;
	}
	*(struct conlink **)p->priv = s;
	s->c = *c;
	s->epfd = s->tfd = -1;
	if (c->opts.usb) {
		s->usb = *c->opts.usb;
		s->c.opts.usb = &s->usb;
	}
	if (c->opts.line) {
		s->line = *c->opts.line;
		s->c.opts.line = &s->line;
	}
	snprintf(s->name, sizeof(s->name), "%s", strchr(c->uri, ':') ? strchr(c->uri, ':') + 1 : c->uri);
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->epfd < 0 || s->tfd < 0) {
		rc = rig_part_fail(p, RIG_E_IO, "epoll/timerfd: %s", strerror(errno));
		goto fail;
	}
	ev.data.fd = s->tfd;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->tfd, &ev);
	if (c->lazy) {
		timer_arm(s, 0);    /* an event loop's first wake-up makes the first attempt */
		return 0;
	}
	rc = rig_link_open(rig_part_ctx(p), s->uri, &s->c.opts, 0, &l, why, sizeof(why));
	if (rc < 0) {
		rc = rig_part_fail(p, rc, "%s", why);
		goto fail;
	}
	if (why[0])
		rig_dbg(rig_part_ctx(p), "%s", why);
	connected(p, s, l);
	rig_dbg(rig_part_ctx(p), "%s: '%s' open", p->label, s->name);
	return 0;
fail:
	/* the front end runs no close() for a part whose open failed */
	rig_conlink_close(p);
	return rc;
}

void rig_conlink_close(struct rig_part *p)
{
	struct conlink *s = get(p);

	if (!s)
		return;
	rig_link_close(s->link);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->tfd >= 0)
		close(s->tfd);
	free(s->uri);
	free(s);
	*(struct conlink **)p->priv = NULL;
}

/* ---- ops ---- */

static int conlink_read(struct rig_part *p, void *buf, size_t len, int timeout_ms)
{
	struct conlink *s = get(p);
	struct rig_deadline end = rig_deadline_start(timeout_ms);

	for (;;) {
		int rc;

		if (s->marker_off < s->marker_len) {
			size_t n = s->marker_len - s->marker_off;

			n = n < len ? n : len;
			memcpy(buf, s->marker + s->marker_off, n);
			s->marker_off += n;
			return (int)n;
		}
		if (!s->link) {
			rc = wait_back(p, s, end);
			if (rc < 0)
				return rc;
			continue;         /* the marker comes first */
		}
		rc = rig_link_read(s->link, buf, len, rig_deadline_left_ms(end));
		if (rc > 0 || rc == RIG_E_TIMEOUT || rc == RIG_E_INTR)
			return rc;
		lost(p, s);
	}
}

static int conlink_write(struct rig_part *p, const void *buf, size_t len, int timeout_ms)
{
	struct conlink *s = get(p);
	const char *b = buf;
	size_t done = 0;
	struct rig_deadline end = rig_deadline_start(timeout_ms);

	while (done < len) {
		size_t n = 0;
		int rc;

		if (!s->link) {
			rc = wait_back(p, s, end);
			if (rc == RIG_E_TIMEOUT)
				return rig_part_fail(p, RIG_E_TIMEOUT,
						     s->ever ? "%s '%s' is gone and did not come back within %d ms"
							     : "nothing answers on %s '%s' (waited %d ms)",
						     s->c.what, s->name, timeout_ms);
			if (rc < 0)
				return rc;
		}
		rc = rig_link_write(s->link, b + done, len - done, &n, rig_deadline_left_ms(end));
		done += n;
		if (rc == RIG_E_TIMEOUT)
			return rig_part_fail(p, RIG_E_TIMEOUT,
					     "%s '%s' took no data for %d ms (flow control?)", s->c.what,
					     s->name, timeout_ms);
		if (rc == RIG_E_INTR)
			return rc;
		if (rc < 0)
			lost(p, s);     /* reconnect and send the rest */
	}
	return (int)len;
}

static int conlink_get_fd(struct rig_part *p)
{
	return get(p)->epfd;
}

const struct rig_console_ops rig_conlink_ops = {
	.read = conlink_read, .write = conlink_write, .get_fd = conlink_get_fd,
};
