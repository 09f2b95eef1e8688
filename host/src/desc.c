/* SPDX-License-Identifier: MIT */
/*
 * Rig descriptions: the parsed rig file, validated against the registry. Validation and
 * rig_open() share one walk (desc_fill_part) so what validates is exactly what opens.
 */
#define LOG_PREFIX "desc"
#include <stdlib.h>
#include <string.h>

#include "desc.h"

struct entry {
	char *key;
	enum rig_vtype type;
	char *s;
	long long i;
	bool b;
	int line;
};

struct dpart {
	char *role, *instance, *backend;
	int line;
	size_t n;
	struct entry *e;
};

struct rig_desc {
	struct rig_ctx *ctx;
	char *file;
	struct dpart rig;          /* rig-level entries */
	size_t nparts;
	struct dpart *parts;
	size_t ncaps;
	char **caps;
	char *problems;
	size_t plen;
	int nproblems;
	size_t base_len;          /* problems recorded by the loader, kept by validate */
	int base_n;
	bool validating;
	bool oom;
};

struct rig_desc *rig_desc_new(struct rig_ctx *ctx, const char *file)
{
	struct rig_desc *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->ctx = ctx;
	d->file = strdup(file ? file : "<rig>");
	if (!d->file) {
		free(d);
		return NULL;
	}
	return d;
}

static void dpart_release(struct dpart *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->e[i].key);
		free(p->e[i].s);
	}
	free(p->e);
	free(p->role);
	free(p->instance);
	free(p->backend);
}

void rig_desc_free(struct rig_desc *d)
{
	if (!d)
		return;
	dpart_release(&d->rig);
	for (size_t i = 0; i < d->nparts; i++)
		dpart_release(&d->parts[i]);
	free(d->parts);
	for (size_t i = 0; i < d->ncaps; i++)
		free(d->caps[i]);
	free(d->caps);
	free(d->problems);
	free(d->file);
	free(d);
}

void rig_desc_problem(struct rig_desc *d, int line, const char *fmt, ...)
{
	char msg[600], full[1024];
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		n = snprintf(full, sizeof(full), "%s:%d: %s\n", d->file, line, msg);
	else if (line < 0)   /* the message names its own location (a Lua error) */
		n = snprintf(full, sizeof(full), "%s\n", msg);
	else
		n = snprintf(full, sizeof(full), "%s: %s\n", d->file, msg);
	if (n >= (int)sizeof(full))
		n = sizeof(full) - 1;
	p = realloc(d->problems, d->plen + (size_t)n + 1);
	if (!p) {
		d->oom = true;
		return;
	}
	memcpy(p + d->plen, full, (size_t)n + 1);
	d->problems = p;
	d->plen += (size_t)n;
	d->nproblems++;
	if (!d->validating) {
		d->base_len = d->plen;
		d->base_n = d->nproblems;
	}
}

static struct dpart *part_at(struct rig_desc *d, int part)
{
	assert(part >= -1 && part < (int)d->nparts);
	return part < 0 ? &d->rig : &d->parts[part];
}

static struct entry *entry_add(struct rig_desc *d, int part, const char *key,
			       enum rig_vtype type, int line)
{
	struct dpart *p = part_at(d, part);
	struct entry *e = realloc(p->e, (p->n + 1) * sizeof(*e));

	if (!e)
		return NULL;
	p->e = e;
	e = &p->e[p->n];
	memset(e, 0, sizeof(*e));
	e->key = strdup(key);
	if (!e->key)
		return NULL;
	e->type = type;
	e->line = line;
	p->n++;
	return e;
}

int rig_desc_set_str(struct rig_desc *d, int part, const char *key, const char *v, int line)
{
	struct entry *e = entry_add(d, part, key, RIG_V_STR, line);

	if (!e || !(e->s = strdup(v)))
		return RIG_E_NOMEM;
	return 0;
}

int rig_desc_set_int(struct rig_desc *d, int part, const char *key, long long v, int line)
{
	struct entry *e = entry_add(d, part, key, RIG_V_INT, line);

	if (!e)
		return RIG_E_NOMEM;
	e->i = v;
	return 0;
}

int rig_desc_set_bool(struct rig_desc *d, int part, const char *key, bool v, int line)
{
	struct entry *e = entry_add(d, part, key, RIG_V_BOOL, line);

	if (!e)
		return RIG_E_NOMEM;
	e->b = v;
	return 0;
}

int rig_desc_set_other(struct rig_desc *d, int part, const char *key, enum rig_vtype type,
		       int line)
{
	return entry_add(d, part, key, type, line) ? 0 : RIG_E_NOMEM;
}

int rig_desc_add_cap(struct rig_desc *d, const char *cap, int line)
{
	char **c = realloc(d->caps, (d->ncaps + 1) * sizeof(*c));

	(void)line;
	if (!c)
		return RIG_E_NOMEM;
	d->caps = c;
	if (!(c[d->ncaps] = strdup(cap)))
		return RIG_E_NOMEM;
	d->ncaps++;
	return 0;
}

int rig_desc_add_part(struct rig_desc *d, const char *role, const char *instance,
		      const char *backend, int line)
{
	struct dpart *p = realloc(d->parts, (d->nparts + 1) * sizeof(*p));

	if (!p)
		return RIG_E_NOMEM;
	d->parts = p;
	p = &d->parts[d->nparts];
	memset(p, 0, sizeof(*p));
	p->role = strdup(role);
	p->backend = strdup(backend);
	p->instance = instance ? strdup(instance) : NULL;
	p->line = line;
	if (!p->role || !p->backend || (instance && !p->instance)) {
		dpart_release(p);
		return RIG_E_NOMEM;
	}
	return (int)d->nparts++;
}

static const char *vtype_name(enum rig_vtype t)
{
	static const char *const n[] = { "a string", "an integer", "a boolean", "a number",
					 "a list", "a table" };
	return n[t];
}

static const char *ptype_name(enum rig_ptype t)
{
	static const char *const n[] = { "a string", "an integer", "a boolean", "a string" };
	return n[t];
}

/* Front-end settings, per role. Offsets are into struct rig_common. */
#define C(f) offsetof(struct rig_common, f)
static const struct rig_param common_all[] = {
	{ "timeout_ms", RIG_P_INT, C(timeout_ms), false, "bound for each back-end call" },
	RIG_PARAMS_END
};
static const struct rig_param common_power[] = {
	{ "inverted", RIG_P_BOOL, C(inverted), false, "normally-closed relay: on means open" },
	{ "min_off_ms", RIG_P_INT, C(min_off_ms), false, "minimum time off before on or mux to host" },
	RIG_PARAMS_END
};
static const struct rig_param common_sdmux[] = {
	{ "inverted", RIG_P_BOOL, C(inverted), false, "host and dut sides swapped" },
	{ "settle_ms", RIG_P_INT, C(settle_ms), false, "wait after switching" },
	RIG_PARAMS_END
};
static const struct rig_param common_button[] = {
	{ "active_low", RIG_P_BOOL, C(inverted), false, "pressed drives the line low" },
	{ "press_ms", RIG_P_INT, C(press_ms), false, "default press length" },
	RIG_PARAMS_END
};
static const struct rig_param common_usbboot[] = {
	{ "msd_dir", RIG_P_STR, C(msd_dir), false,
	  "boot files that make the DUT show its storage over USB (rigor flash boots them first)" },
	{ "boot_button", RIG_P_STR, C(boot_button), false,
	  "button held while the DUT powers on for USB boot (default: 'boot' if there is one)" },
	RIG_PARAMS_END
};
static const struct rig_param common_storage[] = {
	{ "allow_fixed", RIG_P_BOOL, C(allow_fixed), false,
	  "allow flashing a disk that is not removable (never the system disk)" },
	RIG_PARAMS_END
};
static const struct rig_param common_network[] = {
	{ "user", RIG_P_STR, C(user), false, "user to log in as over SSH (default root)" },
	{ "identity", RIG_P_STR, C(identity), false,
	  "private key file for SSH (default: the SSH client's own)" },
	RIG_PARAMS_END
};
#undef C

static const struct rig_param *common_for(enum rig_role r)
{
	switch (r) {
	case RIG_ROLE_POWER: return common_power;
	case RIG_ROLE_SDMUX: return common_sdmux;
	case RIG_ROLE_BUTTON: return common_button;
	case RIG_ROLE_STORAGE: return common_storage;
	case RIG_ROLE_USBBOOT: return common_usbboot;
	case RIG_ROLE_NETWORK: return common_network;
	default: return NULL;
	}
}

/* A RIG_P_USB entry stands for every key of a USB identity (rig_usb_key()). */
static bool param_has(const struct rig_param *p, const char *key)
{
	return p->type == RIG_P_USB ? rig_usb_key(key) : !strcmp(p->name, key);
}

static const struct rig_param *find_param(const struct rig_param *ps, const char *key)
{
	for (; ps && ps->name; ps++)
		if (param_has(ps, key))
			return ps;
	return NULL;
}

static void list_params(char *buf, size_t len, const struct rig_param *const *sets, size_t nsets)
{
	size_t o = 0;

	buf[0] = 0;
	for (size_t s = 0; s < nsets; s++)
		for (const struct rig_param *p = sets[s]; p && p->name; p++)
			if (o < len)
				o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "",
						      p->type == RIG_P_USB ?
						      "usb_serial, usb_path, vid_pid, udev" : p->name);
}

static void common_defaults(struct rig_common *c, enum rig_role r)
{
	memset(c, 0, sizeof(*c));
	c->timeout_ms = 5000;
	c->min_off_ms = r == RIG_ROLE_POWER ? 500 : 0;
	c->press_ms = 200;
}

/* Store one entry into a typed struct. Returns false when the type does not match. */
static bool store(const struct rig_param *p, const struct entry *e, void *base, bool dry)
{
	char *b = base;

	switch (p->type) {
	case RIG_P_STR:
		if (e->type != RIG_V_STR)
			return false;
		if (!dry) {
			char **slot = (char **)(b + p->offset);

			free(*slot);
			*slot = strdup(e->s);
		}
		return true;
	case RIG_P_INT:
		if (e->type != RIG_V_INT)
			return false;
		if (!dry)
			*(int *)(b + p->offset) = (int)e->i;
		return true;
	case RIG_P_BOOL:
		if (e->type != RIG_V_BOOL)
			return false;
		if (!dry)
			*(bool *)(b + p->offset) = e->b;
		return true;
	case RIG_P_USB:
		/* the udev table itself; its entries come as "udev.NAME" strings */
		if (!strcmp(e->key, "udev"))
			return e->type == RIG_V_TABLE;
		return e->type == RIG_V_STR;
	}
	return false;
}

/*
 * A USB identity key into the part's struct rig_usb_match (into a scratch one when only
 * validating, so a bad value is reported by `rigor check` too). Returns the problems.
 */
static int store_usb(struct rig_desc *d, const char *label, const struct rig_param *p,
		     const struct entry *e, void *base, struct rig_usb_match *scratch)
{
	struct rig_usb_match *m = base ? (struct rig_usb_match *)((char *)base + p->offset)
				       : scratch;
	char why[200];

	if (e->type != RIG_V_STR)
		return 0;               /* the udev table: checked by store() */
	if (rig_usb_match_set(m, e->key, e->s, why, sizeof(why)) == 0)
		return 0;
	rig_desc_problem(d, e->line, "%s: parameter '%s': %s", label, e->key, why);
	return 1;
}

/* The entry @key of @dp, or NULL. */
static const struct entry *part_entry(const struct dpart *dp, const char *key, size_t keylen)
{
	for (size_t i = 0; i < dp->n; i++)
		if (strlen(dp->e[i].key) == keylen && !strncmp(dp->e[i].key, key, keylen))
			return &dp->e[i];
	return NULL;
}

int desc_fill_part(struct rig_desc *d, size_t idx, const struct rig_backend **bep,
		   struct rig_common *common, void *conf)
{
	struct dpart *dp = &d->parts[idx];
	const struct rig_param *sets[3];
	const struct rig_backend *be;
	struct rig_usb_match scratch;
	char label[128], known[512];
	int role = rig_role_from_name(dp->role);
	int bad = 0;

	if (role < 0) {
		rig_desc_problem(d, dp->line,
				 "unknown role '%s' (expected power, sdmux, button, console, usbboot, storage or network)",
				 dp->role);
		return 1;
	}
	be = rig_backend_find((enum rig_role)role, dp->backend);
	if (!be) {
		size_t o = 0;
		enum rig_role r;
		const char *n, *h;

		known[0] = 0;
		for (size_t i = 0; !rig_backend_info(i, &r, &n, &h); i++)
			if ((int)r == role && o < sizeof(known))
				o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", o ? ", " : "", n);
		rig_desc_problem(d, dp->line, "unknown back-end '%s' for role %s (available: %s)",
				 dp->backend, dp->role, known);
		return 1;
	}
	if (bep)
		*bep = be;
	snprintf(label, sizeof(label), "%s%s%s (%s)", dp->role, dp->instance ? "." : "",
		 dp->instance ? dp->instance : "", be->name);
	sets[0] = common_all;
	sets[1] = common_for(be->role);
	sets[2] = be->params;
	if (common)
		common_defaults(common, be->role);
	rig_usb_match_init(&scratch);
	for (const struct rig_param *p = be->params; conf && p && p->name; p++)
		if (p->type == RIG_P_USB)
			rig_usb_match_init((struct rig_usb_match *)((char *)conf + p->offset));
	for (size_t i = 0; i < dp->n; i++) {
		const struct entry *e = &dp->e[i];
		const struct rig_param *p = NULL;
		const char *dot = strchr(e->key, '.');
		void *base = conf;

		for (size_t s = 0; s < 3 && !p; s++) {
			p = find_param(sets[s], e->key);
			base = s < 2 ? (void *)common : conf;
		}
		if (!p && dot && part_entry(dp, e->key, (size_t)(dot - e->key))) {
			/* "x.y" from a table x = { y = ... }: the problem is reported for x */
			continue;
		}
		if (p && p->type == RIG_P_USB && store(p, e, base, true)) {
			bad += store_usb(d, label, p, e, base, &scratch);
		} else if (!p) {
			list_params(known, sizeof(known), sets, 3);
			rig_desc_problem(d, e->line, "%s: unknown parameter '%s' (known: %s)", label,
					 e->key, known);
			bad++;
		} else if (p->type == RIG_P_USB) {
			rig_desc_problem(d, e->line, "%s: parameter '%s' must be %s, not %s", label,
					 e->key, strcmp(e->key, "udev") ? "a string" :
					 "a table of udev properties (udev = { ID_SERIAL_SHORT = \"...\" })",
					 vtype_name(e->type));
			bad++;
		} else if (!store(p, e, base, base == NULL)) {
			rig_desc_problem(d, e->line, "%s: parameter '%s' must be %s, not %s", label,
					 e->key, ptype_name(p->type), vtype_name(e->type));
			bad++;
		}
	}
	for (const struct rig_param *p = be->params; p && p->name; p++) {
		bool found = false;

		for (size_t i = 0; i < dp->n && !found; i++)
			found = param_has(p, dp->e[i].key);
		if (p->required && !found) {
			rig_desc_problem(d, dp->line, "%s: missing parameter '%s' (%s: %s)", label,
					 p->name, ptype_name(p->type), p->help);
			bad++;
		}
	}
	return bad;
}

/* Free the strings a conf struct received from store(). */
void desc_release_conf(const struct rig_backend *be, void *conf)
{
	for (const struct rig_param *p = be->params; conf && p && p->name; p++)
		if (p->type == RIG_P_STR)
			free(*(char **)((char *)conf + p->offset));
}

static const struct entry *rig_entry(const struct rig_desc *d, const char *key)
{
	for (size_t i = 0; i < d->rig.n; i++)
		if (!strcmp(d->rig.e[i].key, key))
			return &d->rig.e[i];
	return NULL;
}

int rig_desc_validate(struct rig_desc *d)
{
	static const char *const rig_keys[] = { "name", "device_type", "description" };
	int first_line[RIG_ROLE_COUNT] = { 0 };

	/* Back to what the loader found, so validating twice does not double the list. */
	d->plen = d->base_len;
	d->nproblems = d->base_n;
	if (d->problems)
		d->problems[d->plen] = 0;
	d->validating = true;
	/* File order, so buttons list as written (Lua tables do not keep order). Stable. */
	for (size_t i = 1; i < d->nparts; i++) {
		struct dpart t = d->parts[i];
		size_t j = i;

		for (; j > 0 && d->parts[j - 1].line > t.line; j--)
			d->parts[j] = d->parts[j - 1];
		d->parts[j] = t;
	}

	for (size_t i = 0; i < d->rig.n; i++) {
		const struct entry *e = &d->rig.e[i];
		bool known = false;

		for (size_t k = 0; k < RIG_ARRAY_SIZE(rig_keys); k++)
			known |= !strcmp(e->key, rig_keys[k]);
		if (!known)
			rig_desc_problem(d, e->line,
					 "unknown rig key '%s' (expected name, device_type, description, capabilities, or a role)",
					 e->key);
		else if (e->type != RIG_V_STR)
			rig_desc_problem(d, e->line, "rig key '%s' must be a string, not %s", e->key,
					 vtype_name(e->type));
	}
	if (!rig_entry(d, "name") && d->base_n == 0)   /* a file that did not load has no keys */
		rig_desc_problem(d, 0, "the rig has no name (add name = \"...\")");
	for (size_t i = 0; i < d->nparts; i++) {
		struct dpart *dp = &d->parts[i];
		int role = rig_role_from_name(dp->role);

		if (role >= 0 && role != RIG_ROLE_BUTTON) {
			if (first_line[role])
				rig_desc_problem(d, dp->line, "role '%s' given twice (first at line %d)",
						 dp->role, first_line[role]);
			first_line[role] = dp->line ? dp->line : -1;
		}
		if (role == RIG_ROLE_BUTTON && (!dp->instance || !*dp->instance))
			rig_desc_problem(d, dp->line, "a button needs a name (button = { boot = ... })");
		for (size_t j = 0; role == RIG_ROLE_BUTTON && dp->instance && j < i; j++)
			if (d->parts[j].instance && !strcmp(d->parts[j].instance, dp->instance) &&
			    !strcmp(d->parts[j].role, "button"))
				rig_desc_problem(d, dp->line, "button '%s' given twice", dp->instance);
		desc_fill_part(d, i, NULL, NULL, NULL);
	}
	d->validating = false;
	if (d->oom)
		return RIG_E_NOMEM;
	return d->nproblems;
}

const char *rig_desc_problems(const struct rig_desc *d)
{
	return d->problems ? d->problems : "";
}

static const char *rig_str(const struct rig_desc *d, const char *key)
{
	const struct entry *e = rig_entry(d, key);

	return e && e->type == RIG_V_STR ? e->s : NULL;
}

const char *rig_desc_name(const struct rig_desc *d) { return rig_str(d, "name"); }
const char *rig_desc_device_type(const struct rig_desc *d) { return rig_str(d, "device_type"); }
const char *rig_desc_file(const struct rig_desc *d) { return d->file; }
struct rig_ctx *desc_ctx(const struct rig_desc *d) { return d->ctx; }
size_t desc_nparts(const struct rig_desc *d) { return d->nparts; }
const char *desc_part_instance(const struct rig_desc *d, size_t i) { return d->parts[i].instance; }
size_t desc_ncaps(const struct rig_desc *d) { return d->ncaps; }
const char *rig_desc_cap(const struct rig_desc *d, size_t i) { return i < d->ncaps ? d->caps[i] : NULL; }
const char *desc_cap(const struct rig_desc *d, size_t i) { return d->caps[i]; }
