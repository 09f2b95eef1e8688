/* SPDX-License-Identifier: MIT */
/*
 * The GPIO line table (libgpiod v1) and the holder's wire codec, declared in
 * gpio_holder.h: shared by the gpio back-end (gpio_v1.c) and the holder program, which
 * links only this file and libgpiod. Everything libgpiod-v1-specific lives here, so a v2
 * variant can replace it.
 */
#include <errno.h>
#include <gpiod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gpio_holder.h"
#include "../rig.h"

#define RIG_GPIO_CONSUMER "rigor"


struct gline {
	char *chip, *name;
	int offset;
	bool open_drain;
	int rest;
	int value;          /* last value driven, -1 none */
	struct gpiod_chip *c;
	struct gpiod_line *l;
};

struct rig_gpio_table {
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

static void spec_name(const struct rig_gpio_line *s, char *buf, size_t len)
{
	if (s->name)
		snprintf(buf, len, "'%s' on chip '%s'", s->name, s->chip);
	else
		snprintf(buf, len, "%d of chip '%s'", s->offset, s->chip);
}

/* Open the chip and find the line (no request). Returns 0 or a code, with @msg set. */
static int line_lookup(const struct rig_gpio_line *s, struct gpiod_chip **cp,
		       struct gpiod_line **lp,
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

static int request_failed(struct gpiod_line *l, const struct rig_gpio_line *s, int e,
			  char *msg,
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

static bool spec_matches(const struct gline *g, const struct rig_gpio_line *s)
{
	if (strcmp(g->chip, s->chip))
		return false;
	if (s->name)
		return g->name && !strcmp(g->name, s->name);
	return !g->name && g->offset == s->offset;
}

static struct gline *table_find(struct rig_gpio_table *t, const struct rig_gpio_line *s)
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

struct rig_gpio_table *rig_gpio_table_new(void)
{
	return calloc(1, sizeof(struct rig_gpio_table));
}

void rig_gpio_table_free(struct rig_gpio_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		gline_release(&t->v[i]);
		free(t->v[i].chip);
		free(t->v[i].name);
	}
	free(t->v);
	free(t);
}

int rig_gpio_line_check(const struct rig_gpio_line *s, char *msg, size_t len)
{
	struct gpiod_chip *c;
	struct gpiod_line *l;
	int rc = line_lookup(s, &c, &l, msg, len);

	if (rc == 0)
		gpiod_chip_close(c);
	return rc;
}

int rig_gpio_table_set(struct rig_gpio_table *t, const struct rig_gpio_line *s, int value,
		       char *msg, size_t len)
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
		if (gpiod_line_request_output_flags(g->l, RIG_GPIO_CONSUMER,
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
 * Through the request when held: the level we drive, read back from the kernel. The "as
 * is" request otherwise, so a read never disturbs a relay someone else set.
 */
int rig_gpio_table_get(struct rig_gpio_table *t, const struct rig_gpio_line *s, int *value, char *msg,
		     size_t len)
{
	struct gline *g = table_find(t, s);
	struct gpiod_line_request_config cfg = {
		.consumer = RIG_GPIO_CONSUMER, .request_type = GPIOD_LINE_REQUEST_DIRECTION_AS_IS,
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

bool rig_gpio_table_at_rest(const struct rig_gpio_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct gline *g = &t->v[i];

		if (!g->l || g->rest == RIG_GPIO_REST_ANY)
			continue;
		if (g->rest == RIG_GPIO_REST_NEVER || g->value != g->rest)
			return false;
	}
	return true;
}

/* ---- the holder's wire codec ---- */

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

int rig_gpio_req_format(char *buf, size_t len, enum rig_gpio_op op, const struct rig_gpio_line *s,
			int value)
{
	int n;

	if (op == RIG_GPIO_PING || op == RIG_GPIO_QUIT)
		n = snprintf(buf, len, "%c", (char)op);
	else if (op == RIG_GPIO_SET)
		n = snprintf(buf, len, "S\t%s\t%s\t%d\t%d\t%d\t%d", s->chip, s->name ? s->name : "",
			     s->offset, s->open_drain, s->rest, value);
	else
		n = snprintf(buf, len, "G\t%s\t%s\t%d\t%d\t%d", s->chip, s->name ? s->name : "",
			     s->offset, s->open_drain, s->rest);
	return n < 0 || (size_t)n >= len ? RIG_E_INVAL : n;
}

int rig_gpio_req_parse(char *buf, enum rig_gpio_op *op, struct rig_gpio_line *s, int *value)
{
	char *f[8];
	int n = split(buf, f, 8);

	if (n == 1 && (!strcmp(f[0], "P") || !strcmp(f[0], "Q"))) {
		*op = (enum rig_gpio_op)f[0][0];
		return 0;
	}
	if (n < 4 || !((f[0][0] == 'S' && n == 7) || f[0][0] == 'G') || f[0][1])
		return RIG_E_PROTO;
	*op = (enum rig_gpio_op)f[0][0];
	s->chip = f[1];
	s->name = f[2][0] ? f[2] : NULL;
	s->offset = atoi(f[3]);
	s->open_drain = n > 4 && atoi(f[4]);
	s->rest = n > 5 ? atoi(f[5]) : RIG_GPIO_REST_NEVER;
	*value = *op == RIG_GPIO_SET ? atoi(f[6]) != 0 : 0;
	return 0;
}

int rig_gpio_rep_format(char *buf, size_t len, int code, int value, const char *msg)
{
	int n = snprintf(buf, len, "%d\t%d\t%s", code, value, msg);

	return n < 0 ? 0 : (size_t)n >= len ? (int)len - 1 : n;
}

int rig_gpio_rep_parse(char *buf, int *code, int *value, const char **msg)
{
	char *f[3];

	if (split(buf, f, 3) != 3)
		return RIG_E_PROTO;
	*code = atoi(f[0]);
	*value = atoi(f[1]);
	*msg = f[2];
	return 0;
}
