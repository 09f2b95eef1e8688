// SPDX-License-Identifier: MIT
// rigor-agent: the device agent of the rigor test OS (docs/os-image.md).
//
// A stand-in for balena's registration script and supervisor, small enough to link
// statically: it reads config.json, registers the device with the provisioning key
// (POST /device/register) when needed, writes uuid/deviceApiKey/registered_at/deviceId
// back and drops apiKey, then reports its state (PATCH /device/v3/state) and reads its
// target state (GET /device/v3/<uuid>/state) every few seconds. After each report it asks
// the emulator for the device's pinned host OS release (GET /rigor/v1/device/<uuid>/hostos)
// and runs rigor-hup once per new target (docs/os-image.md).
//
// Plain HTTP/1.1 over TCP (the device reaches the loopback emulator through QEMU slirp);
// the host is an IPv4 address or "localhost" (no resolver in the initramfs). No libcurl,
// no JSON library: config.json is handled as a top-level object whose values are kept as
// raw JSON text, so unknown keys and nested objects survive a rewrite.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <libgen.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT_VERSION "rigor-agent 0.1"
#define MAXKEYS 128

static const char *g_log_path;
static int g_quiet;
static int g_err_console = 1; /* report errors on the console (else log only) */

static void vsay(int console, const char *fmt, va_list ap)
{
	char buf[2048];
	vsnprintf(buf, sizeof buf, fmt, ap);
	if (console && !g_quiet) {
		fprintf(stdout, "rigor-agent: %s\n", buf);
		fflush(stdout);
	}
	if (g_log_path) {
		FILE *f = fopen(g_log_path, "a");
		if (f) {
			fprintf(f, "%ld rigor-agent: %s\n", (long)time(NULL), buf);
			fclose(f);
		}
	}
}

/* A progress line on the console (and in the --log file). */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(1, fmt, ap);
	va_end(ap);
}

/* An error of the periodic report: on the console only when it starts failing. */
static void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(g_err_console, fmt, ap);
	va_end(ap);
}

/* A line for the --log file only. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(0, fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------- JSON (top level) */

struct jobj {
	int n;
	char *key[MAXKEYS]; /* decoded key */
	char *raw[MAXKEYS]; /* raw JSON value text */
};

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* Returns the end of the JSON string starting at p (p points at '"'), or NULL. */
static const char *skip_string(const char *p)
{
	for (p++; *p; p++) {
		if (*p == '\\') {
			if (!p[1])
				return NULL;
			p++;
		} else if (*p == '"') {
			return p + 1;
		}
	}
	return NULL;
}

static const char *skip_value(const char *p)
{
	p = skip_ws(p);
	if (*p == '"')
		return skip_string(p);
	if (*p == '{' || *p == '[') {
		int depth = 0;
		while (*p) {
			if (*p == '"') {
				p = skip_string(p);
				if (!p)
					return NULL;
				continue;
			}
			if (*p == '{' || *p == '[')
				depth++;
			else if (*p == '}' || *p == ']') {
				if (--depth == 0)
					return p + 1;
			}
			p++;
		}
		return NULL;
	}
	const char *s = p;
	while (*p && strchr(",}] \t\r\n", *p) == NULL)
		p++;
	return p == s ? NULL : p;
}

/* Decodes the JSON string at p (pointing at '"'); ASCII and \uXXXX < 0x80 only, others kept as '?'. */
static char *decode_string(const char *p, const char *end)
{
	char *out = malloc((size_t)(end - p) + 1), *o = out;
	if (!out)
		return NULL;
	for (p++; p < end - 1; p++) {
		if (*p != '\\') {
			*o++ = *p;
			continue;
		}
		p++;
		switch (*p) {
		case 'n': *o++ = '\n'; break;
		case 't': *o++ = '\t'; break;
		case 'r': *o++ = '\r'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'u': {
			unsigned v = 0;
			if (sscanf(p + 1, "%4x", &v) != 1)
				v = '?';
			*o++ = v < 0x80 ? (char)v : '?';
			p += 4;
			break;
		}
		default: *o++ = *p; break;
		}
	}
	*o = 0;
	return out;
}

static void jobj_free(struct jobj *o)
{
	for (int i = 0; i < o->n; i++) {
		free(o->key[i]);
		free(o->raw[i]);
	}
	o->n = 0;
}

static int jobj_parse(struct jobj *o, const char *text)
{
	memset(o, 0, sizeof *o);
	const char *p = skip_ws(text);
	if (*p != '{')
		return -1;
	p = skip_ws(p + 1);
	if (*p == '}')
		return 0;
	for (;;) {
		if (*p != '"' || o->n >= MAXKEYS)
			goto bad;
		const char *ke = skip_string(p);
		if (!ke)
			goto bad;
		char *key = decode_string(p, ke);
		p = skip_ws(ke);
		if (*p != ':') {
			free(key);
			goto bad;
		}
		const char *vs = skip_ws(p + 1), *ve = skip_value(vs);
		if (!ve) {
			free(key);
			goto bad;
		}
		o->key[o->n] = key;
		o->raw[o->n] = strndup(vs, (size_t)(ve - vs));
		o->n++;
		p = skip_ws(ve);
		if (*p == ',') {
			p = skip_ws(p + 1);
			continue;
		}
		if (*p == '}')
			return 0;
		goto bad;
	}
bad:
	jobj_free(o);
	return -1;
}

static int jobj_find(const struct jobj *o, const char *key)
{
	for (int i = 0; i < o->n; i++)
		if (strcmp(o->key[i], key) == 0)
			return i;
	return -1;
}

/* String value of key (decoded), a number/bool as its text; NULL if absent or null. Caller frees. */
static char *jobj_get(const struct jobj *o, const char *key)
{
	int i = jobj_find(o, key);
	if (i < 0 || strcmp(o->raw[i], "null") == 0)
		return NULL;
	const char *r = o->raw[i];
	if (r[0] == '"')
		return decode_string(r, r + strlen(r));
	return strdup(r);
}

static void jobj_set_raw(struct jobj *o, const char *key, const char *raw)
{
	int i = jobj_find(o, key);
	if (i >= 0) {
		free(o->raw[i]);
		o->raw[i] = strdup(raw);
		return;
	}
	if (o->n >= MAXKEYS)
		return;
	o->key[o->n] = strdup(key);
	o->raw[o->n] = strdup(raw);
	o->n++;
}

static void json_quote(char *out, size_t cap, const char *s)
{
	size_t n = 0;
	if (cap < 3)
		return;
	out[n++] = '"';
	for (; *s && n + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	out[n++] = '"';
	out[n] = 0;
}

static void jobj_set_str(struct jobj *o, const char *key, const char *val)
{
	char q[1024];
	json_quote(q, sizeof q, val);
	jobj_set_raw(o, key, q);
}

static void jobj_del(struct jobj *o, const char *key)
{
	int i = jobj_find(o, key);
	if (i < 0)
		return;
	free(o->key[i]);
	free(o->raw[i]);
	memmove(&o->key[i], &o->key[i + 1], sizeof(char *) * (size_t)(o->n - i - 1));
	memmove(&o->raw[i], &o->raw[i + 1], sizeof(char *) * (size_t)(o->n - i - 1));
	o->n--;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
		n += r;
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf)
		buf[n] = 0;
	return buf;
}

/* Writes config.json atomically (temp file, fsync, rename, fsync of the directory): on the
 * device it lives on the FAT boot partition, which a power cut must not leave empty. */
static int jobj_write(const struct jobj *o, const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	fputs("{\n", f);
	for (int i = 0; i < o->n; i++) {
		char q[1024];
		json_quote(q, sizeof q, o->key[i]);
		fprintf(f, "  %s: %s%s\n", q, o->raw[i], i + 1 < o->n ? "," : "");
	}
	fputs("}\n", f);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	char dcopy[4096];
	snprintf(dcopy, sizeof dcopy, "%s", path);
	int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	sync();
	return 0;
}

/* ---------------------------------------------------------------- HTTP client */

struct url {
	char host[256];
	int port;
	char base[512]; /* path prefix, without trailing '/' */
};

static int parse_url(const char *s, struct url *u)
{
	memset(u, 0, sizeof *u);
	if (strncmp(s, "http://", 7) != 0)
		return -1;
	s += 7;
	size_t hl = strcspn(s, ":/");
	if (hl == 0 || hl >= sizeof u->host)
		return -1;
	memcpy(u->host, s, hl);
	s += hl;
	u->port = 80;
	if (*s == ':') {
		char *e;
		long p = strtol(s + 1, &e, 10);
		if (p <= 0 || p > 65535)
			return -1;
		u->port = (int)p;
		s = e;
	}
	snprintf(u->base, sizeof u->base, "%s", s);
	size_t bl = strlen(u->base);
	while (bl && u->base[bl - 1] == '/')
		u->base[--bl] = 0;
	return 0;
}

struct resp {
	int status;
	char *body;
};

static int connect_to(const struct url *u, int timeout_ms)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)u->port)};
	const char *h = strcmp(u->host, "localhost") == 0 ? "127.0.0.1" : u->host;
	if (inet_pton(AF_INET, h, &sa.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (errno != EINPROGRESS)
			goto fail;
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int r = poll(&pfd, 1, timeout_ms);
		if (r <= 0) {
			if (r == 0)
				errno = ETIMEDOUT;
			goto fail;
		}
		int err = 0;
		socklen_t el = sizeof err;
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			errno = err;
			goto fail;
		}
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	return fd;
fail: {
	int e = errno;
	close(fd);
	errno = e;
	return -1;
}
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One request with Connection: close. Returns 0 and fills r (status, body) or -1 (errno). */
static int http(const struct url *u, const char *method, const char *path, const char *token,
		const char *body, struct resp *r, int timeout_ms)
{
	memset(r, 0, sizeof *r);
	int fd = connect_to(u, timeout_ms);
	if (fd < 0)
		return -1;
	size_t bl = body ? strlen(body) : 0;
	char clen[96] = "";
	if (body)
		snprintf(clen, sizeof clen,
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n", bl);
	char *head = NULL;
	int hn = asprintf(&head,
			  "%s %s%s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: " AGENT_VERSION
			  "\r\nAccept: application/json\r\nConnection: close\r\n%s%s%s%s\r\n",
			  method, u->base, path, u->host, u->port,
			  token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "",
			  clen);
	if (hn < 0 || write_all(fd, head, (size_t)hn) || (body && write_all(fd, body, bl))) {
		int e = errno;
		if (hn >= 0)
			free(head);
		close(fd);
		errno = e;
		return -1;
	}
	free(head);
	size_t cap = 8192, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (!buf) {
			close(fd);
			errno = ENOMEM;
			return -1;
		}
		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				continue;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t got = recv(fd, buf + n, cap - n - 1, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			int e = errno == EAGAIN ? ETIMEDOUT : errno;
			free(buf);
			close(fd);
			errno = e;
			return -1;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	buf[n] = 0;
	int maj, min, st;
	char *hend = strstr(buf, "\r\n\r\n");
	if (sscanf(buf, "HTTP/%d.%d %d", &maj, &min, &st) != 3 || !hend) {
		free(buf);
		errno = EPROTO;
		return -1;
	}
	*hend = 0;
	char *bodyp = hend + 4;
	size_t have = n - (size_t)(bodyp - buf);
	const char *cl = strcasestr(buf, "\r\nContent-Length:");
	if (cl) {
		size_t want = (size_t)strtoul(cl + 17, NULL, 10);
		if (want < have)
			have = want;
	}
	r->status = st;
	r->body = strndup(bodyp, have);
	free(buf);
	return 0;
}

/* GET url into the file out (streamed: a payload can be larger than memory wants to
 * hold), for rigor-hup and rigor-rollback: busybox-static's wget crashes in the static
 * resolver. Returns 0, or -1 with a message on stderr; a partial file is removed. */
static int fetch(const char *url, const char *out, int timeout_ms)
{
	struct url u;
	if (parse_url(url, &u)) {
		fprintf(stderr, "rigor-agent: --fetch: '%s' is not an http://HOST[:PORT]/PATH URL\n", url);
		return -1;
	}
	int fd = connect_to(&u, timeout_ms);
	if (fd < 0) {
		fprintf(stderr, "rigor-agent: --fetch: cannot connect to %s:%d: %s\n", u.host, u.port,
			strerror(errno));
		return -1;
	}
	char *head = NULL;
	int hn = asprintf(&head,
			  "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: " AGENT_VERSION
			  "\r\nConnection: close\r\n\r\n",
			  *u.base ? u.base : "/", u.host, u.port);
	if (hn < 0 || write_all(fd, head, (size_t)hn)) {
		fprintf(stderr, "rigor-agent: --fetch: cannot send the request: %s\n", strerror(errno));
		free(head);
		close(fd);
		return -1;
	}
	free(head);
	int of = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (of < 0) {
		fprintf(stderr, "rigor-agent: --fetch: cannot write '%s': %s\n", out, strerror(errno));
		close(fd);
		return -1;
	}
	char buf[65536], hdr[8192];
	size_t hlen = 0;
	long long want = -1, got = 0;
	int in_body = 0, status = 0, rc = -1;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "rigor-agent: --fetch: %s after %lld bytes\n",
				errno == EAGAIN ? "timed out" : strerror(errno), got);
			goto out;
		}
		if (n == 0)
			break;
		const char *p = buf;
		size_t left = (size_t)n;
		if (!in_body) {
			size_t take = left < sizeof hdr - 1 - hlen ? left : sizeof hdr - 1 - hlen;
			memcpy(hdr + hlen, p, take);
			hlen += take;
			hdr[hlen] = 0;
			char *e = strstr(hdr, "\r\n\r\n");
			if (!e) {
				if (hlen == sizeof hdr - 1) {
					fprintf(stderr, "rigor-agent: --fetch: response header too long\n");
					goto out;
				}
				continue;
			}
			size_t hsize = (size_t)(e + 4 - hdr);
			int maj, min;
			if (sscanf(hdr, "HTTP/%d.%d %d", &maj, &min, &status) != 3) {
				fprintf(stderr, "rigor-agent: --fetch: not an HTTP response\n");
				goto out;
			}
			if (status != 200) {
				fprintf(stderr, "rigor-agent: --fetch: %s: HTTP %d\n", url, status);
				goto out;
			}
			*e = 0;
			const char *cl = strcasestr(hdr, "\r\nContent-Length:");
			if (cl)
				want = strtoll(cl + 17, NULL, 10);
			in_body = 1;
			/* the body bytes of this read: after the header within buf */
			size_t before = hlen - take; /* header bytes from earlier reads */
			p = buf + (hsize - before);
			left = (size_t)n - (hsize - before);
		}
		while (left) {
			ssize_t w = write(of, p, left);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				fprintf(stderr, "rigor-agent: --fetch: writing '%s': %s\n", out, strerror(errno));
				goto out;
			}
			p += w;
			left -= (size_t)w;
			got += w;
		}
	}
	if (!in_body)
		fprintf(stderr, "rigor-agent: --fetch: connection closed before the response\n");
	else if (want >= 0 && got != want)
		fprintf(stderr, "rigor-agent: --fetch: %lld of %lld bytes (connection dropped)\n", got, want);
	else if (fsync(of) && errno != EINVAL)
		fprintf(stderr, "rigor-agent: --fetch: fsync '%s': %s\n", out, strerror(errno));
	else
		rc = 0;
out:
	close(fd);
	if (close(of) && rc == 0) {
		fprintf(stderr, "rigor-agent: --fetch: closing '%s': %s\n", out, strerror(errno));
		rc = -1;
	}
	if (rc && strcmp(out, "/dev/null") != 0)
		unlink(out);
	return rc;
}

/* ---------------------------------------------------------------- device side */

struct agent {
	const char *config_path;
	const char *os_release_path;
	const char *api_override;
	int set_hostname;
	int interval_override; /* seconds, 0 = from config */
	int timeout_ms;
	const char *hup_path; /* host OS update program, "" = never update */
	/* the last target started, on resin-state: survives the reboot (and a rollback) */
	const char *hup_record;
};

/* The host OS update started by the agent (one at a time) and the targets already tried. */
struct hup_state {
	pid_t pid;	  /* running rigor-hup, 0 = none */
	char running[64]; /* its target */
	char tried[16][64];
	int ntried;
};

static char *os_release_field(const char *path, const char *field)
{
	char *text = read_file(path), *res = NULL;
	if (!text)
		return NULL;
	size_t fl = strlen(field);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, field, fl) == 0 && line[fl] == '=') {
			char *v = line + fl + 1;
			size_t vl = strlen(v);
			if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
				v[vl - 1] = 0;
				v++;
			}
			res = strdup(v);
			break;
		}
	}
	free(text);
	return res;
}

static int random_hex(char *out, size_t nbytes)
{
	unsigned char b[64];
	if (nbytes > sizeof b)
		return -1;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, b, nbytes) != (ssize_t)nbytes) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	for (size_t i = 0; i < nbytes; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	return 0;
}

static void ip_addresses(char *out, size_t cap)
{
	struct ifaddrs *ifa, *i;
	out[0] = 0;
	if (getifaddrs(&ifa) != 0)
		return;
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK))
			continue;
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof a);
		size_t l = strlen(out);
		snprintf(out + l, cap - l, "%s%s", l ? " " : "", a);
	}
	freeifaddrs(ifa);
}

static int load_config(const struct agent *ag, struct jobj *cfg)
{
	char *text = read_file(ag->config_path);
	if (!text) {
		say("cannot read %s: %s", ag->config_path, strerror(errno));
		return -1;
	}
	int r = jobj_parse(cfg, text);
	free(text);
	if (r)
		say("%s: not a JSON object", ag->config_path);
	return r;
}

static int api_url(const struct agent *ag, const struct jobj *cfg, struct url *u)
{
	char *ep = ag->api_override ? strdup(ag->api_override) : jobj_get(cfg, "apiEndpoint");
	if (!ep) {
		say("config.json has no apiEndpoint");
		return -1;
	}
	int r = parse_url(ep, u);
	if (r)
		say("unsupported apiEndpoint %s (only http://<IPv4>[:port])", ep);
	free(ep);
	return r;
}

static int is_dev(const struct jobj *cfg)
{
	char *d = jobj_get(cfg, "developmentMode");
	int dev = d && strcmp(d, "true") == 0;
	free(d);
	return dev;
}

/* Ensures uuid and deviceApiKey exist (generated like balena: 16 random bytes as hex). */
static int ensure_identity(const struct agent *ag, struct jobj *cfg)
{
	char *uuid = jobj_get(cfg, "uuid"), *key = jobj_get(cfg, "deviceApiKey");
	int changed = 0;
	char hex[80];
	if (!uuid || !*uuid) {
		if (random_hex(hex, 16))
			return -1;
		jobj_set_str(cfg, "uuid", hex);
		say("generated uuid=%s", hex);
		changed = 1;
	}
	if (!key || !*key) {
		if (random_hex(hex, 16))
			return -1;
		jobj_set_str(cfg, "deviceApiKey", hex);
		changed = 1;
	}
	free(uuid);
	free(key);
	if (changed && jobj_write(cfg, ag->config_path)) {
		say("cannot write %s: %s", ag->config_path, strerror(errno));
		return -1;
	}
	return 0;
}

static void apply_hostname(const struct agent *ag, const struct jobj *cfg)
{
	char *h = jobj_get(cfg, "hostname"), *uuid = jobj_get(cfg, "uuid");
	char name[64] = "";
	if (h && *h)
		snprintf(name, sizeof name, "%s", h);
	else if (uuid && strlen(uuid) >= 7)
		snprintf(name, sizeof name, "%.7s", uuid);
	if (*name) {
		if (!ag->set_hostname)
			say("hostname would be %s", name);
		else if (sethostname(name, strlen(name)) == 0)
			say("hostname %s", name);
		else
			say("sethostname %s: %s", name, strerror(errno));
	}
	free(h);
	free(uuid);
}

/* Returns 1 registered now, 0 nothing to do, -1 failed (retry later). */
static int provision(const struct agent *ag, struct jobj *cfg, const char *os_version)
{
	char *prov = jobj_get(cfg, "apiKey");
	if (!prov || !*prov) {
		free(prov);
		return 0; /* no provisioning key: already provisioned (or never will be) */
	}
	int rc = -1;
	struct url u;
	char *uuid = jobj_get(cfg, "uuid"), *key = jobj_get(cfg, "deviceApiKey");
	char *app = jobj_get(cfg, "applicationId"), *dt = jobj_get(cfg, "deviceType");
	char *user = jobj_get(cfg, "userId");
	char body[4096], q[6][600];
	struct resp r = {0};
	if (api_url(ag, cfg, &u))
		goto out;
	if (!app || !dt) {
		say("config.json lacks applicationId or deviceType; cannot register");
		goto out;
	}
	json_quote(q[0], sizeof q[0], uuid);
	json_quote(q[1], sizeof q[1], key);
	json_quote(q[2], sizeof q[2], dt);
	json_quote(q[3], sizeof q[3], AGENT_VERSION);
	json_quote(q[4], sizeof q[4], os_version ? os_version : "");
	json_quote(q[5], sizeof q[5], is_dev(cfg) ? "dev" : "prod");
	snprintf(body, sizeof body,
		 "{\"user\": %s, \"application\": %s, \"device_type\": %s, \"uuid\": %s, "
		 "\"api_key\": %s, \"supervisor_version\": %s, \"os_version\": %s, \"os_variant\": %s}",
		 user ? user : "null", app, q[2], q[0], q[1], q[3], q[4], q[5]);
	if (http(&u, "POST", "/device/register", prov, body, &r, ag->timeout_ms)) {
		say("register: %s:%d: %s", u.host, u.port, strerror(errno));
		goto out;
	}
	char devid[32] = "";
	if (r.status == 201) {
		struct jobj resp;
		if (jobj_parse(&resp, r.body) == 0) {
			char *id = jobj_get(&resp, "id");
			if (id)
				snprintf(devid, sizeof devid, "%s", id);
			free(id);
			jobj_free(&resp);
		}
		say("registered uuid=%s id=%s", uuid, devid);
	} else if (r.status == 409) {
		/* Already known (e.g. config.json restored): balena's supervisor does a key exchange. */
		char path[512];
		struct resp r2 = {0};
		snprintf(path, sizeof path, "/v7/device?$filter=uuid%%20eq%%20'%s'&$select=id", uuid);
		if (http(&u, "GET", path, prov, NULL, &r2, ag->timeout_ms) == 0 && r2.status == 200) {
			const char *p = strstr(r2.body, "\"id\"");
			p = p ? strchr(p, ':') : NULL;
			long id = p ? strtol(p + 1, NULL, 10) : 0;
			if (id > 0)
				snprintf(devid, sizeof devid, "%ld", id);
		}
		free(r2.body);
		memset(&r2, 0, sizeof r2);
		if (!*devid) {
			say("register: 409 and the device is not visible to the provisioning key");
			goto out;
		}
		snprintf(path, sizeof path, "/api-key/device/%s/device-key", devid);
		snprintf(body, sizeof body, "{\"apiKey\": %s}", q[1]);
		if (http(&u, "POST", path, prov, body, &r2, ag->timeout_ms) || r2.status != 200) {
			say("key exchange failed (HTTP %d)", r2.status);
			free(r2.body);
			goto out;
		}
		free(r2.body);
		say("uuid=%s already registered (409): key exchange done, id=%s", uuid, devid);
	} else {
		say("register: HTTP %d %s", r.status, r.body ? r.body : "");
		goto out;
	}
	char ts[32];
	snprintf(ts, sizeof ts, "%ld", (long)time(NULL));
	jobj_set_raw(cfg, "registered_at", ts);
	if (*devid)
		jobj_set_raw(cfg, "deviceId", devid);
	jobj_del(cfg, "apiKey");
	if (jobj_write(cfg, ag->config_path)) {
		say("cannot write %s: %s", ag->config_path, strerror(errno));
		goto out;
	}
	rc = 1;
out:
	free(r.body);
	free(prov);
	free(uuid);
	free(key);
	free(app);
	free(dt);
	free(user);
	return rc;
}

/* One state report (PATCH /device/v3/state) and target-state read. 0 ok, -1 failed. */
static int report(const struct agent *ag, const struct jobj *cfg, const char *os_version,
		  const char *status, int verbose)
{
	struct url u;
	char *uuid = jobj_get(cfg, "uuid"), *key = jobj_get(cfg, "deviceApiKey");
	int rc = -1;
	struct resp r = {0};
	if (!uuid || !key || api_url(ag, cfg, &u))
		goto out;
	char ips[256], q[5][600], body[4096];
	ip_addresses(ips, sizeof ips);
	json_quote(q[0], sizeof q[0], uuid);
	json_quote(q[1], sizeof q[1], os_version ? os_version : "");
	json_quote(q[2], sizeof q[2], AGENT_VERSION);
	json_quote(q[3], sizeof q[3], status);
	json_quote(q[4], sizeof q[4], ips);
	snprintf(body, sizeof body,
		 "{%s: {\"status\": %s, \"os_version\": %s, \"os_variant\": \"%s\", "
		 "\"supervisor_version\": %s, \"ip_address\": %s, \"api_port\": 48484}}",
		 q[0], q[3], q[1], is_dev(cfg) ? "dev" : "prod", q[2], q[4]);
	if (http(&u, "PATCH", "/device/v3/state", key, body, &r, ag->timeout_ms)) {
		err("state report: %s:%d: %s", u.host, u.port, strerror(errno));
		goto out;
	}
	if (r.status / 100 != 2) {
		err("state report: HTTP %d %s", r.status, r.body ? r.body : "");
		goto out;
	}
	free(r.body);
	memset(&r, 0, sizeof r);
	char path[256];
	snprintf(path, sizeof path, "/device/v3/%s/state", uuid);
	if (http(&u, "GET", path, key, NULL, &r, ag->timeout_ms) || r.status / 100 != 2) {
		err("target state: %s", r.status ? "HTTP error" : strerror(errno));
		goto out;
	}
	if (verbose)
		say("state reported (os_version=%s, status=%s)", os_version ? os_version : "", status);
	else
		note("state reported (os_version=%s, status=%s)", os_version ? os_version : "", status);
	rc = 0;
out:
	free(r.body);
	free(uuid);
	free(key);
	return rc;
}

/* balenaOS's os-config: on boot, GET /os/v1/config (the VPN client configuration, legacy
 * SSH keys, config overrides) with the device key, logging "Service configuration
 * retrieved" as os-config does. Nothing here uses the answer: there is no VPN. */
static int os_config_fetch(const struct agent *ag, const struct jobj *cfg)
{
	struct url u;
	char *key = jobj_get(cfg, "deviceApiKey");
	struct resp r = {0};
	struct jobj o = {0};
	int rc = -1;
	if (!key || api_url(ag, cfg, &u))
		goto out;
	if (http(&u, "GET", "/os/v1/config", key, NULL, &r, ag->timeout_ms) || r.status != 200) {
		note("os-config: %s", r.status ? "HTTP error" : strerror(errno));
		goto out;
	}
	if (jobj_parse(&o, r.body) || jobj_find(&o, "services") < 0) {
		note("os-config: not a service configuration");
		goto out;
	}
	say("Service configuration retrieved");
	rc = 0;
out:
	jobj_free(&o);
	free(r.body);
	free(key);
	return rc;
}

/* Logs how a finished rigor-hup ended. */
static void hup_reaped(struct hup_state *h, int status)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		say("host OS update to %s written, rebooting", h->running);
	else if (WIFEXITED(status))
		say("host OS update to %s failed (exit %d)", h->running, WEXITSTATUS(status));
	else
		say("host OS update to %s failed (signal %d)", h->running,
		    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	h->pid = 0;
}

/* Reaps a finished rigor-hup without blocking (block != 0: waits for it). */
static void hup_poll(struct hup_state *h, int block)
{
	int status;
	if (h->pid <= 0)
		return;
	pid_t r;
	do
		r = waitpid(h->pid, &status, block ? 0 : WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == h->pid)
		hup_reaped(h, status);
	else if (r < 0)
		h->pid = 0;
}

/* After a successful report: GET /rigor/v1/device/<uuid>/hostos (emulator only) and, when
 * the target differs from the running VERSION and was not tried since start, start
 * `rigor-hup -u <apiEndpoint><url> -s <sha256>` in the background. */
static void hostos_check(const struct agent *ag, const struct jobj *cfg, const char *os_version,
			 struct hup_state *h)
{
	struct url u;
	char *uuid = jobj_get(cfg, "uuid"), *key = jobj_get(cfg, "deviceApiKey");
	char *ep = NULL, *target = NULL, *url = NULL, *sha = NULL;
	struct resp r = {0};
	struct jobj o = {0};
	hup_poll(h, 0);
	if (!ag->hup_path || !*ag->hup_path || h->pid > 0 || !uuid || !key ||
	    api_url(ag, cfg, &u))
		goto out;
	char path[256];
	snprintf(path, sizeof path, "/rigor/v1/device/%s/hostos", uuid);
	if (http(&u, "GET", path, key, NULL, &r, ag->timeout_ms) || r.status != 200) {
		note("host OS target: %s", r.status ? "HTTP error" : strerror(errno));
		goto out;
	}
	if (jobj_parse(&o, r.body)) {
		note("host OS target: not a JSON object");
		goto out;
	}
	target = jobj_get(&o, "target");
	if (!target || !*target || (os_version && strcmp(target, os_version) == 0) ||
	    strlen(target) >= sizeof h->running)
		goto out;
	for (int i = 0; i < h->ntried; i++)
		if (strcmp(h->tried[i], target) == 0)
			goto out;
	url = jobj_get(&o, "url");
	sha = jobj_get(&o, "sha256");
	if (!url || !sha || url[0] != '/') {
		note("host OS target %s has no payload", target);
		goto out;
	}
	if (h->ntried < (int)(sizeof h->tried / sizeof h->tried[0]))
		snprintf(h->tried[h->ntried++], sizeof h->tried[0], "%s", target);
	/* A target that was started before and rolled back (the rollback files sit next to
	 * the record on resin-state) is not started again: an update that fails its health
	 * checks would otherwise loop, update and roll back, for as long as the pin stays. */
	if (ag->hup_record && *ag->hup_record) {
		char *last = read_file(ag->hup_record), *dir = strdup(ag->hup_record);
		int rolled_back = 0;
		if (dir) {
			char f[600];
			const char *d = dirname(dir);
			snprintf(f, sizeof f, "%s/rollback-health-triggered", d);
			rolled_back = access(f, F_OK) == 0;
			snprintf(f, sizeof f, "%s/rollback-altboot-triggered", d);
			rolled_back |= access(f, F_OK) == 0;
		}
		if (last)
			last[strcspn(last, "\n")] = 0;
		int again = last && strcmp(last, target) == 0 && rolled_back;
		free(last);
		free(dir);
		if (again) {
			say("host OS update to %s rolled back before; not started again (pin another release)",
			    target);
			goto out;
		}
		FILE *rf = fopen(ag->hup_record, "w");
		if (!rf || fprintf(rf, "%s\n", target) < 0 || fclose(rf) != 0)
			note("cannot record the update target in %s: %s", ag->hup_record, strerror(errno));
	}
	ep = ag->api_override ? strdup(ag->api_override) : jobj_get(cfg, "apiEndpoint");
	if (!ep)
		goto out;
	size_t el = strlen(ep);
	while (el && ep[el - 1] == '/')
		ep[--el] = 0;
	char full[1024];
	snprintf(full, sizeof full, "%s%s", ep, url);
	say("host OS update to %s", target);
	note("running %s -u %s -s %s", ag->hup_path, full, sha);
	fflush(stdout);
	pid_t p = fork();
	if (p < 0) {
		say("host OS update to %s failed (fork: %s)", target, strerror(errno));
		goto out;
	}
	if (p == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		execl(ag->hup_path, ag->hup_path, "-u", full, "-s", sha, (char *)NULL);
		fprintf(stderr, "rigor-agent: cannot run %s: %s\n", ag->hup_path, strerror(errno));
		_exit(127);
	}
	h->pid = p;
	snprintf(h->running, sizeof h->running, "%s", target);
out:
	jobj_free(&o);
	free(r.body);
	free(uuid);
	free(key);
	free(ep);
	free(target);
	free(url);
	free(sha);
}

static int report_interval(const struct agent *ag, const struct jobj *cfg)
{
	if (ag->interval_override > 0)
		return ag->interval_override;
	char *s = jobj_get(cfg, "rigorReportInterval");
	int v = s ? atoi(s) : 0;
	free(s);
	if (v <= 0) {
		s = jobj_get(cfg, "appUpdatePollInterval");
		v = s ? atoi(s) / 1000 : 0;
		free(s);
	}
	return v > 0 ? v : 5;
}

/*
 * config.json's os.<name> for --ssh-keys and --udev-rules: 1 with *raw its JSON text
 * (inside @os, which the caller then frees), 0 when os or os.<name> is absent or null,
 * -1 when "os" is not an object (said on stderr, ending "; no <what>").
 */
static int os_member(const struct agent *ag, const struct jobj *cfg, struct jobj *os,
		     const char *name, const char *what, const char **raw)
{
	int i = jobj_find(cfg, "os");
	if (i < 0 || strcmp(skip_ws(cfg->raw[i]), "null") == 0)
		return 0;
	if (jobj_parse(os, cfg->raw[i])) {
		fprintf(stderr, "rigor-agent: %s: \"os\" is not an object; no %s\n", ag->config_path, what);
		return -1;
	}
	int k = jobj_find(os, name);
	if (k < 0 || strcmp(skip_ws(os->raw[k]), "null") == 0) {
		jobj_free(os);
		return 0;
	}
	*raw = skip_ws(os->raw[k]);
	return 1;
}

/*
 * --ssh-keys FILE: config.json's os.sshKeys (a list of public key lines) written to FILE
 * as authorized_keys, mode 600; prints "development" when developmentMode is true, else
 * "production", for rigor-init to start the SSH server in that mode (balenaOS: os.sshKeys
 * are root's keys; developmentMode also lets root in without a password). A malformed
 * os or sshKeys is an error (exit 1) and FILE is left empty: no key is better than a guess.
 */
static int write_ssh_keys(const struct agent *ag, const char *out)
{
	struct jobj cfg, os;
	int rc = 1, nkeys = 0;
	FILE *f;
	if (load_config(ag, &cfg))
		return 1;
	f = fopen(out, "w");
	if (!f) {
		fprintf(stderr, "rigor-agent: cannot write %s: %s\n", out, strerror(errno));
		jobj_free(&cfg);
		return 1;
	}
	fchmod(fileno(f), 0600);
	const char *p = NULL;
	int m = os_member(ag, &cfg, &os, "sshKeys", "SSH keys", &p);
	if (m <= 0) {
		rc = m < 0;
		goto done;
	}
	if (*p != '[') {
		fprintf(stderr, "rigor-agent: %s: os.sshKeys is not a list; no SSH keys\n", ag->config_path);
		goto done_os;
	}
	p = skip_ws(p + 1);
	while (*p && *p != ']') {
		const char *e = *p == '"' ? skip_string(p) : NULL;
		if (!e) {
			fprintf(stderr, "rigor-agent: %s: os.sshKeys[%d] is not a string; no SSH keys\n",
				ag->config_path, nkeys);
			goto done_os;
		}
		char *key = decode_string(p, e);
		if (key && strchr(key, '\n') == NULL)
			fprintf(f, "%s\n", key), nkeys++;
		free(key);
		p = skip_ws(e);
		if (*p == ',')
			p = skip_ws(p + 1);
	}
	rc = 0;
done_os:
	jobj_free(&os);
done:
	if (fclose(f) && !rc)
		rc = 1;
	if (rc) {
		/* nothing half-written: an empty file */
		f = fopen(out, "w");
		if (f)
			fclose(f);
	}
	if (!rc)
		printf("%s\n", is_dev(&cfg) ? "development" : "production");
	jobj_free(&cfg);
	return rc;
}

/*
 * --udev-rules DIR: config.json's os.udevRules (an object of name -> rule text) written to
 * DIR/<name>.rules, as balenaOS's os-udevrules does into /etc/udev/rules.d; rigor-init
 * gives /run/udev/rules.d, which udevd reads too. A name with a '/' or a value that is not
 * a string is an error (exit 1), and nothing is written then.
 */
static int write_udev_rules(const struct agent *ag, const char *dir)
{
	struct jobj cfg, os, rules;
	const char *raw = NULL;
	int rc = 1, n = 0;
	if (load_config(ag, &cfg))
		return 1;
	int m = os_member(ag, &cfg, &os, "udevRules", "udev rules", &raw);
	if (m <= 0) {
		jobj_free(&cfg);
		return m < 0;
	}
	if (jobj_parse(&rules, raw)) {
		fprintf(stderr, "rigor-agent: %s: os.udevRules is not an object; no udev rules\n", ag->config_path);
		goto done_os;
	}
	for (int r = 0; r < rules.n; r++) {
		const char *v = skip_ws(rules.raw[r]);
		if (!*rules.key[r] || strchr(rules.key[r], '/') || *v != '"') {
			fprintf(stderr, "rigor-agent: %s: os.udevRules \"%s\": a name without '/' and a string "
				"rule expected; no udev rules\n", ag->config_path, rules.key[r]);
			goto done_rules;
		}
	}
	for (int r = 0; r < rules.n; r++) {
		char path[512];
		char *text = jobj_get(&rules, rules.key[r]);
		FILE *f;
		snprintf(path, sizeof path, "%s/%s.rules", dir, rules.key[r]);
		f = text ? fopen(path, "w") : NULL;
		if (!f || fprintf(f, "%s\n", text) < 0 || fclose(f)) {
			fprintf(stderr, "rigor-agent: cannot write %s: %s\n", path, strerror(errno));
			free(text);
			goto done_rules;
		}
		free(text);
		n++;
	}
	printf("%d\n", n);
	rc = 0;
done_rules:
	jobj_free(&rules);
done_os:
	jobj_free(&os);
	jobj_free(&cfg);
	return rc;
}

/*
 * --get KEY: one config.json setting for rigor-init (ntpServers, dnsServers,
 * persistentLogging, ...), which has no JSON parser of its own.
 */
static int print_config_key(const struct agent *ag, const char *key)
{
	struct jobj cfg;
	char *v;
	if (load_config(ag, &cfg))
		return 2;
	int found;
	v = jobj_get(&cfg, key);
	found = v != NULL;
	if (found)
		printf("%s\n", v);
	free(v);
	jobj_free(&cfg);
	return found ? 0 : 1;
}

static volatile sig_atomic_t g_stop;
static void on_term(int s)
{
	g_stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rigor-agent [--config FILE] [--os-release FILE] [--api URL] [--interval S]\n"
		"                   [--once] [--reports N] [--daemon] [--register-wait S]\n"
		"                   [--set-hostname] [--timeout MS] [--log FILE] [--quiet]\n"
		"                   [--hup PROGRAM] [--hup-record FILE]\n"
		"       rigor-agent --fetch URL --out FILE [--timeout MS]\n"
		"       rigor-agent [--config FILE] --ssh-keys FILE\n"
		"       rigor-agent [--config FILE] --get KEY\n"
		"       rigor-agent [--config FILE] --udev-rules DIR\n"
		"Device agent of the rigor test OS (docs/os-image.md). Defaults: --config\n"
		"/mnt/boot/config.json, --os-release /etc/os-release, API from config.json apiEndpoint.\n"
		"  --once           register if needed, report state once, exit (0 = ok)\n"
		"  --reports N      stop after N state reports\n"
		"  --daemon         after the first report (or --register-wait S of retries),\n"
		"                   continue in the background\n"
		"  --set-hostname   set the hostname from config.json hostname / uuid prefix\n"
		"  --hup PROGRAM    host OS update program run when the device is pinned to another\n"
		"                   OS release (default /usr/sbin/rigor-hup; \"\" = never; not\n"
		"                   with --once)\n"
		"  --hup-record FILE  the last update target started (default\n"
		"                   /mnt/state/rigor-agent-hup-target): a target that was rolled back\n"
		"                   (rollback-*-triggered next to FILE) is not started again\n"
		"  --ssh-keys FILE  write config.json os.sshKeys to FILE (authorized_keys) and\n"
		"                   print development or production (developmentMode); exit\n"
		"  --udev-rules DIR write config.json os.udevRules as DIR/<name>.rules, print\n"
		"                   how many; exit\n"
		"  --get KEY        print config.json's top-level KEY (a string decoded, other\n"
		"                   values as JSON text) and exit; exit status 1 when absent or null,\n"
		"                   2 when config.json cannot be read\n"
		"  --fetch URL      GET URL (http://ADDRESS[:PORT]/PATH) into --out FILE and exit\n"
		"                   (0 = a complete 200 response; for rigor-hup and rigor-rollback)\n");
}

int main(int argc, char **argv)
{
	struct agent ag = {.config_path = "/mnt/boot/config.json",
			   .os_release_path = "/etc/os-release",
			   .timeout_ms = 5000,
			   .hup_path = "/usr/sbin/rigor-hup",
			   .hup_record = "/mnt/state/rigor-agent-hup-target"};
	struct hup_state hup = {0};
	int once = 0, daemonize = 0, max_reports = -1, register_wait = 20;
	const char *fetch_url = NULL, *fetch_out = NULL, *ssh_keys = NULL, *get_key = NULL;
	const char *udev_dir = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && (i++, 1))
		if (ARG("--config"))
			ag.config_path = v;
		else if (ARG("--os-release"))
			ag.os_release_path = v;
		else if (ARG("--api"))
			ag.api_override = *v ? v : NULL;
		else if (ARG("--interval"))
			ag.interval_override = atoi(v);
		else if (ARG("--reports"))
			max_reports = atoi(v);
		else if (ARG("--register-wait"))
			register_wait = atoi(v);
		else if (ARG("--timeout"))
			ag.timeout_ms = atoi(v);
		else if (ARG("--log"))
			g_log_path = v;
		else if (ARG("--hup"))
			ag.hup_path = v;
		else if (ARG("--hup-record"))
			ag.hup_record = v;
		else if (ARG("--fetch"))
			fetch_url = v;
		else if (ARG("--out"))
			fetch_out = v;
		else if (ARG("--ssh-keys"))
			ssh_keys = v;
		else if (ARG("--get"))
			get_key = v;
		else if (ARG("--udev-rules"))
			udev_dir = v;
		else if (strcmp(a, "--once") == 0)
			once = 1, max_reports = 1;
		else if (strcmp(a, "--daemon") == 0)
			daemonize = 1;
		else if (strcmp(a, "--set-hostname") == 0)
			ag.set_hostname = 1;
		else if (strcmp(a, "--quiet") == 0)
			g_quiet = 1;
		else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
#undef ARG
	}
	signal(SIGPIPE, SIG_IGN);
	if (fetch_url || fetch_out) {
		if (!fetch_url || !fetch_out) {
			fprintf(stderr, "rigor-agent: --fetch and --out go together\n");
			return 2;
		}
		return fetch(fetch_url, fetch_out, ag.timeout_ms) ? 1 : 0;
	}
	if (ssh_keys)
		return write_ssh_keys(&ag, ssh_keys);
	if (get_key)
		return print_config_key(&ag, get_key);
	if (udev_dir)
		return write_udev_rules(&ag, udev_dir);
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);

	struct jobj cfg;
	if (load_config(&ag, &cfg))
		return 1;
	int rc = 0;
	char *os_version = os_release_field(ag.os_release_path, "VERSION");
	if (!os_version)
		say("no VERSION in %s", ag.os_release_path);
	if (ensure_identity(&ag, &cfg)) {
		rc = 1;
		goto done;
	}
	apply_hostname(&ag, &cfg);

	/* Registration: retried every 2 s, for register_wait s in the foreground. */
	int registered = jobj_find(&cfg, "apiKey") < 0;
	time_t t0 = time(NULL);
	while (!registered && !g_stop) {
		if (provision(&ag, &cfg, os_version) >= 0) {
			registered = 1;
			break;
		}
		if (once || time(NULL) - t0 >= register_wait)
			break;
		sleep(2);
	}
	if (!registered && once) {
		rc = 1;
		goto done;
	}

	int reports = 0, last = -1, first = 1; /* last report: -1 none, 0 ok, 1 failed */
	int os_config = 0;                      /* /os/v1/config fetched since start */
	int interval = report_interval(&ag, &cfg);
	if (registered) {
		int r = report(&ag, &cfg, os_version, "Idle", 1);
		last = r != 0;
		first = 0;
		if (r == 0)
			reports++;
		if (once) {
			rc = r ? 1 : 0;
			goto done;
		}
		if (r == 0)
			os_config = os_config_fetch(&ag, &cfg) == 0;
		if (r == 0 && !daemonize)
			hostos_check(&ag, &cfg, os_version, &hup);
	}
	if (daemonize) {
		pid_t p = fork();
		if (p < 0) {
			rc = 1;
			goto done;
		}
		if (p > 0)
			goto done;
		setsid();
	}
	while (!g_stop && (max_reports < 0 || reports < max_reports)) {
		if (!first)
			sleep((unsigned)interval);
		first = 0;
		if (g_stop)
			break;
		if (!registered) {
			if (provision(&ag, &cfg, os_version) < 0)
				continue;
			registered = 1;
		}
		/* The console gets the first success, the first failure and every change between
		 * them; everything goes to the --log file. */
		g_err_console = last != 1;
		int r = report(&ag, &cfg, os_version, "Idle", last != 0);
		if (r == 0) {
			reports++;
			if (!os_config)
				os_config = os_config_fetch(&ag, &cfg) == 0;
			hostos_check(&ag, &cfg, os_version, &hup);
		} else {
			hup_poll(&hup, 0);
		}
		last = r != 0;
	}
	/* A running update is waited for, so that its result is logged. */
	hup_poll(&hup, 1);
done:
	jobj_free(&cfg);
	free(os_version);
	return rc;
}
