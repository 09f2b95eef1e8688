/* SPDX-License-Identifier: MIT */
/*
 * Byte-stream links: the front end over the back-ends in link/. The back-ends only move
 * bytes without blocking; every wait happens here, in rig_ctx_poll(), so the caller's
 * timeout, the case deadline and the cancel flag bound all of them the same way.
 */
#define LOG_PREFIX "link"
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Alphabetical; chosen by the URI's scheme. */
static const struct rig_link_ops *const link_backends[] = {
	&rig_link_serial,
	&rig_link_tty,
	&rig_link_unix,
};

struct rig_link {
	const struct rig_link_ops *ops;
	struct rig_ctx *ctx;
	char name[4096];
	char gone[128];
	void *priv;
};

void *rig_link_priv(const struct rig_link *l)
{
	return l->priv;
}

struct rig_ctx *rig_link_ctx(const struct rig_link *l)
{
	return l->ctx;
}

void rig_link_set_name(struct rig_link *l, const char *name)
{
	snprintf(l->name, sizeof(l->name), "%s", name);
}

int rig_link_set_gone(struct rig_link *l, const char *why)
{
	snprintf(l->gone, sizeof(l->gone), "%s", why);
	return RIG_E_NODEV;
}

const char *rig_link_name(const struct rig_link *l)
{
	return l->name;
}

const char *rig_link_gone_why(const struct rig_link *l)
{
	return l->gone[0] ? l->gone : "gone";
}

int rig_link_get_fd(const struct rig_link *l)
{
	return l->ops->get_fd(l);
}

static int bad_uri(const char *uri, char *why, size_t whylen)
{
	size_t off = (size_t)snprintf(why, whylen, "link '%s': expected ", uri);

	for (size_t i = 0; i < RIG_ARRAY_SIZE(link_backends) && off < whylen; i++)
		off += (size_t)snprintf(why + off, whylen - off, "%s%s",
					i ? (i + 1 == RIG_ARRAY_SIZE(link_backends) ? " or " : ", ") : "",
					link_backends[i]->syntax);
	return RIG_E_INVAL;
}

int rig_link_open(struct rig_ctx *ctx, const char *uri, const struct rig_link_opts *o,
		  int timeout_ms, struct rig_link **out, char *why, size_t whylen)
{
	static const struct rig_link_opts none;
	const struct rig_link_ops *ops = NULL;
	const char *colon = strchr(uri, ':');
	struct rig_link *l;
	int rc;

	*out = NULL;
	if (whylen)
		why[0] = 0;
	for (size_t i = 0; colon && i < RIG_ARRAY_SIZE(link_backends); i++)
		if (strlen(link_backends[i]->scheme) == (size_t)(colon - uri) &&
		    !strncmp(uri, link_backends[i]->scheme, (size_t)(colon - uri)))
			ops = link_backends[i];
	if (!ops)
		return bad_uri(uri, why, whylen);
	if (rig_ctx_cancelled(ctx))
		return RIG_E_INTR;
	l = calloc(1, sizeof(*l));
	if (!l || (ops->priv_size && !(l->priv = calloc(1, ops->priv_size)))) {
		free(l);
		return RIG_E_NOMEM;
	}
	l->ops = ops;
	l->ctx = ctx;
	rig_link_set_name(l, colon + 1);
	rc = ops->open(l, colon + 1, o ? o : &none, rig_deadline_start(rig_ctx_clamp(ctx, timeout_ms)),
		       why, whylen);
	if (rc < 0) {
		free(l->priv);
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

void rig_link_close(struct rig_link *l)
{
	if (!l)
		return;
	l->ops->close(l);
	free(l->priv);
	free(l);
}

int rig_link_read(struct rig_link *l, void *buf, size_t len, int timeout_ms)
{
	struct rig_deadline d = rig_deadline_start(timeout_ms);

	for (;;) {
		int rc = l->ops->read(l, buf, len);

		if (rc != 0)
			return rc;
		rc = rig_ctx_poll(l->ctx, l->ops->get_fd(l), POLLIN, rig_deadline_left_ms(d));
		if (rc == RIG_E_TIMEOUT || rc == RIG_E_INTR)
			return rc;
		if (rc < 0)
			return rig_link_set_gone(l, strerror(-rc));
		/*
		 * Readable but nothing to read is how a tty that went away and a socket whose
		 * peer closed look: the back-end's next read says which.
		 */
	}
}

int rig_link_write(struct rig_link *l, const void *buf, size_t len, size_t *done,
		   int timeout_ms)
{
	struct rig_deadline d = rig_deadline_start(timeout_ms);
	const char *b = buf;
	size_t n = 0;

	if (!done)
		done = &n;
	*done = 0;
	while (*done < len) {
		int rc = l->ops->write(l, b + *done, len - *done);

		if (rc < 0)
			return rc;
		*done += (size_t)rc;
		if (*done == len)
			break;
		/* A poll error (a tty's hangup) is left to the next write to report. */
		rc = rig_ctx_poll(l->ctx, l->ops->get_fd(l), POLLOUT, rig_deadline_left_ms(d));
		if (rc == RIG_E_TIMEOUT || rc == RIG_E_INTR)
			return rc;
	}
	return (int)len;
}
