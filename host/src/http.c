/* SPDX-License-Identifier: MIT */
/*
 * HTTP client over libcurl (see rig_http.h). Each call gets its own easy handle, driven
 * by a private multi handle in 100 ms slices so the cancel flag ends a transfer
 * promptly even while connecting (libcurl's progress callback can be a second apart
 * when nothing moves). CURLcode is translated to rig_err here and nowhere else.
 */
#define LOG_PREFIX "http"
#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "internal.h"
#include "rig_http.h"

#define DEFAULT_MAX_LEN (64u << 20)
#define SLICE_MS 100
#define MAX_RETRY_AFTER_MS 60000
#define MAX_BACKOFF_MS 300000

/* libcurl wants curl_global_init() once per process before any thread uses it. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct xfer {
	struct rig_ctx *ctx;
	struct rig_http_resp *resp;
	size_t cap, hcap, max_len;
	bool too_big, nomem;
};

void rig_http_req_init(struct rig_http_req *req)
{
	memset(req, 0, sizeof(*req));
	req->method = "GET";
	req->timeout_ms = -1;
	req->verify_tls = true;
	req->backoff_ms = 250;
}

bool rig_http_idempotent(const char *method)
{
	static const char *const idem[] = { "GET", "HEAD", "PUT", "DELETE", "OPTIONS" };

	for (size_t i = 0; i < RIG_ARRAY_SIZE(idem); i++)
		if (!strcasecmp(method, idem[i]))
			return true;
	return false;
}

static void clear_headers(struct rig_http_resp *resp)
{
	for (size_t i = 0; i < resp->nheaders; i++) {
		free(resp->headers[i].name);
		free(resp->headers[i].value);
	}
	resp->nheaders = 0;
}

void rig_http_resp_release(struct rig_http_resp *resp)
{
	clear_headers(resp);
	free(resp->headers);
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

const char *rig_http_resp_header(const struct rig_http_resp *resp, const char *name)
{
	for (size_t i = 0; i < resp->nheaders; i++)
		if (!strcasecmp(resp->headers[i].name, name))
			return resp->headers[i].value;
	return NULL;
}

/* ---- redaction ---- */

struct out {
	char *buf;
	size_t len, n;
};

static void put(struct out *o, const char *s, size_t n)
{
	while (n-- && o->n + 1 < o->len)
		o->buf[o->n++] = *s++;
	o->buf[o->n] = 0;
}

static bool secret_name(const char *s, size_t n)
{
	static const char *const words[] = { "key", "token", "secret", "password", "auth" };
	char low[64];

	if (n >= sizeof(low))
		n = sizeof(low) - 1;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)s[i]);
	low[n] = 0;
	for (size_t i = 0; i < RIG_ARRAY_SIZE(words); i++)
		if (strstr(low, words[i]))
			return true;
	return false;
}

void rig_http_redact_url(const char *url, char *buf, size_t len)
{
	struct out o = { buf, len, 0 };
	const char *p = strstr(url, "://"), *auth_end, *at, *q, *frag;

	if (!len)
		return;
	buf[0] = 0;
	p = p ? p + 3 : url;
	put(&o, url, (size_t)(p - url));
	auth_end = p + strcspn(p, "/?#");
	at = memchr(p, '@', (size_t)(auth_end - p));
	if (at) {
		put(&o, "***@", 4);
		p = at + 1;
	}
	q = strchr(p, '?');
	frag = strchr(p, '#');
	if (!q || (frag && frag < q)) {
		put(&o, p, strlen(p));
		return;
	}
	put(&o, p, (size_t)(q + 1 - p));
	p = q + 1;
	while (*p && *p != '#') {
		size_t pn = strcspn(p, "&#");
		const char *eq = memchr(p, '=', pn);

		if (eq && secret_name(p, (size_t)(eq - p))) {
			put(&o, p, (size_t)(eq + 1 - p));
			put(&o, "***", 3);
		} else {
			put(&o, p, pn);
		}
		p += pn;
		if (*p == '&')
			put(&o, p++, 1);
	}
	put(&o, p, strlen(p));
}

/* ---- libcurl callbacks ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
	struct xfer *x = user;
	struct rig_http_resp *r = x->resp;
	size_t n = size * nmemb;

	if (r->len + n > x->max_len) {
		x->too_big = true;
		return 0;
	}
	if (r->len + n + 1 > x->cap) {
		size_t cap = x->cap ? x->cap : 4096;
		char *b;

		while (cap < r->len + n + 1)
			cap *= 2;
		b = realloc(r->body, cap);
		if (!b) {
			x->nomem = true;
			return 0;
		}
		r->body = b;
		x->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = 0;
	return n;
}

static char *trimdup(const char *s, size_t n)
{
	char *d;

	n = strnlen(s, n);   /* a NUL (invalid in HTTP) ends the text: trim what is kept */
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		n--;
	d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user)
{
	struct xfer *x = user;
	struct rig_http_resp *r = x->resp;
	size_t n = size * nmemb;
	const char *colon = memchr(data, ':', n);
	struct rig_http_header h;

	if (n >= 5 && !memcmp(data, "HTTP/", 5)) {
		/* a new response (after a redirect or 100 Continue): keep only the last's */
		clear_headers(r);
		return n;
	}
	if (!colon)
		return n;
	if (r->nheaders == x->hcap) {
		size_t cap = x->hcap ? x->hcap * 2 : 16;
		struct rig_http_header *hs = realloc(r->headers, cap * sizeof(*hs));

		if (!hs) {
			x->nomem = true;
			return 0;
		}
		r->headers = hs;
		x->hcap = cap;
	}
	h.name = trimdup(data, (size_t)(colon - data));
	h.value = trimdup(colon + 1, n - (size_t)(colon + 1 - data));
	if (!h.name || !h.value) {
		free(h.name);
		free(h.value);
		x->nomem = true;
		return 0;
	}
	for (char *s = h.name; *s; s++)
		*s = (char)tolower((unsigned char)*s);
	r->headers[r->nheaders++] = h;
	return n;
}

static int on_progress(void *user, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
	struct xfer *x = user;

	return rig_ctx_cancelled(x->ctx);
}

/* ---- one attempt ---- */

static CURLcode perform(struct rig_ctx *ctx, CURLM *multi, CURL *easy)
{
	CURLcode cc = CURLE_OK;
	CURLMsg *m;
	int running = 1, left;

	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
		return CURLE_OUT_OF_MEMORY;
	for (;;) {
		if (curl_multi_perform(multi, &running) != CURLM_OK) {
			cc = CURLE_OUT_OF_MEMORY;
			break;
		}
		if (!running)
			break;
		if (rig_ctx_cancelled(ctx)) {
			cc = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		if (curl_multi_poll(multi, NULL, 0, SLICE_MS, NULL) != CURLM_OK) {
			cc = CURLE_OUT_OF_MEMORY;
			break;
		}
	}
	if (!running) {
		while ((m = curl_multi_info_read(multi, &left)))
			if (m->msg == CURLMSG_DONE && m->easy_handle == easy)
				cc = m->data.result;
	}
	curl_multi_remove_handle(multi, easy);
	return cc;
}

/* CURLcode -> rig_err, and whether a retry may help. */
static int translate(CURLcode cc, bool *transient)
{
	*transient = false;
	switch (cc) {
	case CURLE_OK:
		return 0;
	case CURLE_OPERATION_TIMEDOUT:
		return RIG_E_TIMEOUT;
	case CURLE_ABORTED_BY_CALLBACK:
		return RIG_E_INTR;
	case CURLE_OUT_OF_MEMORY:
		return RIG_E_NOMEM;
	case CURLE_URL_MALFORMAT:
	case CURLE_BAD_FUNCTION_ARGUMENT:
		return RIG_E_INVAL;
	case CURLE_UNSUPPORTED_PROTOCOL:  /* the URL's scheme is checked first: HTTP/0.9 */
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_TOO_MANY_REDIRECTS:
	case CURLE_HTTP2:
	case CURLE_BAD_CONTENT_ENCODING:
		return RIG_E_PROTO;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		*transient = true;
		return RIG_E_IO;
	default:
		/* TLS (CURLE_SSL_*, CURLE_PEER_FAILED_VERIFICATION) and the rest */
		return RIG_E_IO;
	}
}

static bool transient_status(int status)
{
	return status == 408 || status == 429 || status == 500 || status == 502 ||
	       status == 503 || status == 504;
}

static int retry_after_ms(const struct rig_http_resp *resp)
{
	const char *v = rig_http_resp_header(resp, "retry-after");
	char *end;
	long s;

	if (!v)
		return 0;
	s = strtol(v, &end, 10);
	if (end == v || *end || s < 0)
		return 0;   /* an HTTP-date: ignored */
	return s > MAX_RETRY_AFTER_MS / 1000 ? MAX_RETRY_AFTER_MS : (int)s * 1000;
}

#define SET(opt, val) do { if (cc == CURLE_OK) cc = curl_easy_setopt(easy, opt, val); } while (0)

/* What every rigor transfer shares: the schemes, redirects, user agent and TLS checks. */
static CURLcode setup_common(CURL *easy, const char *url, bool verify_tls, const char *ca_file,
			     char *errbuf)
{
	CURLcode cc = CURLE_OK;

	SET(CURLOPT_URL, url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, 5L);
	SET(CURLOPT_USERAGENT, "rigor/" RIGOR_VERSION);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_SSL_VERIFYPEER, verify_tls ? 1L : 0L);
	SET(CURLOPT_SSL_VERIFYHOST, verify_tls ? 2L : 0L);
	if (ca_file)
		SET(CURLOPT_CAINFO, ca_file);
	return cc;
}

static int setup(CURL *easy, const struct rig_http_req *req, const char *method,
		 struct curl_slist *hdrs, struct xfer *x, char *errbuf)
{
	CURLcode cc = setup_common(easy, req->url, req->verify_tls, req->ca_file, errbuf);

	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, x);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_HTTPHEADER, hdrs);
	if (!strcasecmp(method, "HEAD")) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (req->body || strcasecmp(method, "GET")) {
		/* a body, or a method that usually has one: send what there is (maybe 0 bytes) */
		if (req->body || strcasecmp(method, "DELETE")) {
			SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(req->body ? req->len : 0));
			SET(CURLOPT_POSTFIELDS, req->body ? req->body : "");
		}
		if (strcasecmp(method, "POST"))
			SET(CURLOPT_CUSTOMREQUEST, method);
	}
	return cc == CURLE_OK ? 0 : cc == CURLE_OUT_OF_MEMORY ? RIG_E_NOMEM : RIG_E_INVAL;
}

int rig_http_do(struct rig_ctx *ctx, const struct rig_http_req *req, struct rig_http_resp *resp)
{
	const char *method = req->method ? req->method : "GET";
	char errbuf[CURL_ERROR_SIZE], url[512];
	struct xfer x = { .ctx = ctx, .resp = resp };
	struct curl_slist *hdrs = NULL, *l;
	int64_t start = rig_now_ms(), deadline = 0, t0;
	int attempts, tmo, rc = 0;
	long oserr = 0;
	bool transient;
	CURLM *multi = NULL;
	CURL *easy = NULL;

	assert(ctx && req && req->url && resp);
	memset(resp, 0, sizeof(*resp));
	rig_http_redact_url(req->url, url, sizeof(url));
	attempts = 1 + (rig_http_idempotent(method) && req->retries > 0 ? req->retries : 0);
	x.max_len = req->max_len ? req->max_len : DEFAULT_MAX_LEN;
	tmo = rig_ctx_clamp(ctx, req->timeout_ms);
	if (tmo >= 0)
		deadline = start + tmo;
	if (strncasecmp(req->url, "http://", 7) && strncasecmp(req->url, "https://", 8))
		return rig_ctx_fail(ctx, RIG_E_INVAL, "%s %s: not an http:// or https:// URL",
				    method, url);
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return rig_ctx_fail(ctx, RIG_E_IO, "%s %s: cannot initialise libcurl: %s", method,
				    url, curl_easy_strerror(curl_init_rc));
	l = hdrs = curl_slist_append(NULL, "Expect:");
	for (size_t i = 0; l && req->headers && req->headers[i]; i++)
		l = hdrs = curl_slist_append(hdrs, req->headers[i]);
	easy = l ? curl_easy_init() : NULL;
	multi = easy ? curl_multi_init() : NULL;
	if (!multi) {
		rc = rig_ctx_fail(ctx, RIG_E_NOMEM, "%s %s: out of memory", method, url);
		goto out;
	}
	rc = setup(easy, req, method, hdrs, &x, errbuf);
	if (rc) {
		rig_ctx_fail(ctx, rc, "%s %s: cannot set up the request", method, url);
		goto out;
	}
	for (int n = 1; ; n++) {
		int64_t left = deadline ? deadline - rig_now_ms() : -1, backoff;
		int wait;
		CURLcode cc;

		if (deadline && left <= 0) {
			rig_http_resp_release(resp);
			rc = rig_ctx_fail(ctx, RIG_E_TIMEOUT, "%s %s: timed out after %lld ms",
					  method, url, (long long)(rig_now_ms() - start));
			goto out;
		}
		rig_http_resp_release(resp);
		x.cap = x.hcap = 0;
		x.too_big = x.nomem = false;
		errbuf[0] = 0;
		curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)(left > 0 ? left : 0));
		t0 = rig_now_ms();
		cc = perform(ctx, multi, easy);
		rc = translate(cc, &transient);
		if (x.nomem || x.too_big)
			rc = RIG_E_NOMEM;
		if (rc == 0) {
			long status = 0;

			curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
			resp->status = (int)status;
			resp->attempts = n;
			if (!resp->body) {
				resp->body = calloc(1, 1);
				if (!resp->body)
					rc = RIG_E_NOMEM;
			}
			rig_dbg(ctx, "%s %s -> %d (%lld ms, attempt %d)", method, url, resp->status,
				(long long)(rig_now_ms() - t0), n);
			if (rc || n >= attempts || !transient_status(resp->status))
				break;
			wait = retry_after_ms(resp);
		} else {
			if (curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &oserr) != CURLE_OK)
				oserr = 0;
			rig_dbg(ctx, "%s %s -> %s (%s, %lld ms, attempt %d)", method, url,
				rig_err_name(rc), *errbuf ? errbuf : curl_easy_strerror(cc),
				(long long)(rig_now_ms() - t0), n);
			if (!transient || n >= attempts)
				break;
			wait = 0;
		}
		backoff = (int64_t)req->backoff_ms << (n - 1 > 16 ? 16 : n - 1);
		if (wait < backoff)
			wait = backoff > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : (int)backoff;
		if (deadline && rig_now_ms() + wait >= deadline)
			break;  /* no time for another attempt: report this one */
		if (rig_ctx_sleep(ctx, wait) == RIG_E_INTR) {
			rig_http_resp_release(resp);
			rc = rig_ctx_fail(ctx, RIG_E_INTR, "%s %s: cancelled", method, url);
			goto out;
		}
	}
	if (rc == RIG_E_NOMEM && x.too_big)
		rig_ctx_fail(ctx, rc, "%s %s: response body larger than %zu bytes", method, url,
			     x.max_len);
	else if (rc == RIG_E_TIMEOUT)
		rig_ctx_fail(ctx, rc, "%s %s: timed out after %lld ms", method, url,
			     (long long)(rig_now_ms() - start));
	else if (rc == RIG_E_INTR)
		rig_ctx_fail(ctx, rc, "%s %s: cancelled", method, url);
	else if (rc)
		rig_ctx_fail(ctx, rc, "%s %s: %s%s%s", method, url,
			     *errbuf ? errbuf : rig_strerror(rc), oserr ? ": " : "",
			     oserr ? strerror((int)oserr) : "");
out:
	if (rc)
		rig_http_resp_release(resp);
	if (multi)
		curl_multi_cleanup(multi);
	if (easy)
		curl_easy_cleanup(easy);
	curl_slist_free_all(hdrs);
	return rc;
}

/* ---- streaming download (rig_http_stream_*) ---- */

#define STREAM_MAX_BACKOFF_MS 8000

struct rig_http_stream {
	struct rig_ctx *ctx;          /* read only: its cancel flag (from the reading thread) */
	struct rig_http_stream_opts o;
	char *url;
	char shown[512];              /* the URL as messages show it (redacted) */
	CURLM *multi;
	CURL *easy;
	char errbuf[CURL_ERROR_SIZE];
	unsigned char *buf;           /* received, not yet read: [pos, len) */
	size_t cap, len, pos;
	uint64_t got;                 /* bytes of the file received: where a resume starts */
	uint64_t got0;                /* ... when the current attempt started */
	int64_t length;               /* the file's length, -1 unknown */
	char etag[256], lastmod[128]; /* of the first response, to check a resumed one */
	bool ranges;                  /* the first response said Accept-Ranges: bytes */
	struct {                      /* the current attempt's response */
		long status;
		char reason[64];
		char etag[256], lastmod[128];
		bool ranges, checked;
		int64_t clen, cr_first, cr_total;
	} r;
	bool eof;
	int resumes, fails;
	char last_drop[160];
	int64_t deadline, last_data;
	int stop;                     /* rig_http_stream_stop(), from any thread */
	int err;
	char msg[RIG_ERRMSG_MAX];
};

void rig_http_stream_opts_init(struct rig_http_stream_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = -1;
	o->stall_ms = 30000;
	o->retries = 5;
	o->backoff_ms = 500;
	o->verify_tls = true;
}

static int sfail(struct rig_http_stream *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* First error wins: the stream keeps its message, as it may be read in another thread. */
static int sfail(struct rig_http_stream *s, int code, const char *fmt, ...)
{
	va_list ap;

	if (s->err)
		return s->err;
	s->err = code;
	va_start(ap, fmt);
	vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
	va_end(ap);
	return code;
}

static void hcopy(char *dst, size_t len, const char *v, size_t n)
{
	if (n >= len)
		n = len - 1;
	memcpy(dst, v, n);
	dst[n] = 0;
	while (n && (dst[n - 1] == '\r' || dst[n - 1] == '\n' || dst[n - 1] == ' '))
		dst[--n] = 0;
}

static size_t stream_header(char *data, size_t size, size_t nmemb, void *user)
{
	struct rig_http_stream *s = user;
	size_t n = size * nmemb, k;
	const char *v;
	char val[256];

	if (n >= 5 && !memcmp(data, "HTTP/", 5)) {
		/* a new response (a redirect's, then the file's): "HTTP/1.1 404 Not Found" */
		const char *sp = memchr(data, ' ', n), *sp2;

		memset(&s->r, 0, sizeof(s->r));
		s->r.clen = s->r.cr_first = s->r.cr_total = -1;
		if (sp) {
			s->r.status = strtol(sp + 1, NULL, 10);
			sp2 = memchr(sp + 1, ' ', n - (size_t)(sp + 1 - data));
			if (sp2)
				hcopy(s->r.reason, sizeof(s->r.reason), sp2 + 1,
				      n - (size_t)(sp2 + 1 - data));
		}
		return n;
	}
	v = memchr(data, ':', n);
	if (!v)
		return n;
	k = (size_t)(v - data);
	v++;
	while (v < data + n && (*v == ' ' || *v == '\t'))
		v++;
	hcopy(val, sizeof(val), v, n - (size_t)(v - data));
	if (k == 4 && !strncasecmp(data, "etag", 4))
		snprintf(s->r.etag, sizeof(s->r.etag), "%s", val);
	else if (k == 13 && !strncasecmp(data, "last-modified", 13))
		snprintf(s->r.lastmod, sizeof(s->r.lastmod), "%.127s", val);
	else if (k == 13 && !strncasecmp(data, "accept-ranges", 13))
		s->r.ranges = !strcasecmp(val, "bytes");
	else if (k == 14 && !strncasecmp(data, "content-length", 14))
		s->r.clen = strtoll(val, NULL, 10);
	else if (k == 13 && !strncasecmp(data, "content-range", 13)) {
		long long a, b, t;

		/* "bytes 100-199/1000"; an unknown total (an asterisk) leaves cr_total at -1 */
		if (sscanf(val, "bytes %lld-%lld/%lld", &a, &b, &t) == 3)
			s->r.cr_total = t;
		if (sscanf(val, "bytes %lld-%lld", &a, &b) == 2)
			s->r.cr_first = a;
	}
	return n;
}

/*
 * The response to an attempt is known (its first body byte, or its end): is it the file,
 * or, for a resumed attempt, the rest of the same file?
 */
static int check_response(struct rig_http_stream *s)
{
	long st = s->r.status;

	s->r.checked = true;
	if (s->got == 0 && st == 200) {
		s->length = s->r.clen;
		s->ranges = s->r.ranges;
		snprintf(s->etag, sizeof(s->etag), "%s", s->r.etag);
		snprintf(s->lastmod, sizeof(s->lastmod), "%s", s->r.lastmod);
		return 0;
	}
	if (s->got && st == 206) {
		if (s->r.cr_first != (int64_t)s->got)
			return sfail(s, RIG_E_PROTO, "cannot resume '%s' at byte %llu: the server "
				     "answered with a range starting at %lld", s->shown,
				     (unsigned long long)s->got, (long long)s->r.cr_first);
		if ((s->length >= 0 && s->r.cr_total >= 0 && s->r.cr_total != s->length) ||
		    (*s->etag && strcmp(s->etag, s->r.etag)) ||
		    (*s->lastmod && strcmp(s->lastmod, s->r.lastmod)))
			return sfail(s, RIG_E_PROTO, "cannot resume '%s' at byte %llu: the file "
				     "changed on the server (its length, ETag or Last-Modified "
				     "differ from the first response)", s->shown,
				     (unsigned long long)s->got);
		return 0;
	}
	if (s->got && st == 200)
		return sfail(s, RIG_E_PROTO, "cannot resume '%s' at byte %llu: the server ignored "
			     "the range request (HTTP 200 instead of 206)", s->shown,
			     (unsigned long long)s->got);
	if (st == 404 || st == 410)
		return sfail(s, RIG_E_NOENT, "cannot download '%s': HTTP %ld %s", s->shown, st,
			     *s->r.reason ? s->r.reason : "Not Found");
	return sfail(s, st >= 500 ? RIG_E_IO : st >= 400 ? RIG_E_INVAL : RIG_E_PROTO,
		     "cannot download '%s': HTTP %ld%s%s", s->shown, st, *s->r.reason ? " " : "",
		     s->r.reason);
}

static size_t stream_body(char *data, size_t size, size_t nmemb, void *user)
{
	struct rig_http_stream *s = user;
	size_t n = size * nmemb;

	if (!s->r.checked && check_response(s))
		return 0;
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 65536;
		unsigned char *b;

		while (cap < s->len + n)
			cap *= 2;
		b = realloc(s->buf, cap);
		if (!b) {
			sfail(s, RIG_E_NOMEM, "out of memory");
			return 0;
		}
		s->buf = b;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, data, n);
	s->len += n;
	s->got += n;
	if (n)
		s->last_data = rig_now_ms();
	return n;
}

/* (Re)starts the request from byte s->got. */
static int stream_start(struct rig_http_stream *s)
{
	char range[48];

	curl_multi_remove_handle(s->multi, s->easy);
	if (s->got) {
		snprintf(range, sizeof(range), "%llu-", (unsigned long long)s->got);
		curl_easy_setopt(s->easy, CURLOPT_RANGE, range);
	}
	s->errbuf[0] = 0;
	s->got0 = s->got;
	s->last_data = rig_now_ms();
	memset(&s->r, 0, sizeof(s->r));
	if (curl_multi_add_handle(s->multi, s->easy) != CURLM_OK)
		return sfail(s, RIG_E_NOMEM, "out of memory");
	return 0;
}

/* Waits @ms before a resume, in slices, ending early on cancel, stop or the deadline. */
static int stream_wait(struct rig_http_stream *s, int ms)
{
	int64_t end = rig_now_ms() + ms;

	while (rig_now_ms() < end) {
		struct timespec ts = { 0, SLICE_MS * 1000000L };

		if (__atomic_load_n(&s->stop, __ATOMIC_RELAXED) || rig_ctx_cancelled(s->ctx))
			return sfail(s, RIG_E_INTR, "download of '%s' cancelled", s->shown);
		if (s->deadline && rig_now_ms() >= s->deadline)
			return sfail(s, RIG_E_TIMEOUT, "download of '%s' timed out after %llu bytes",
				     s->shown, (unsigned long long)s->got);
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* An attempt ended with @cc: the end of the file, a resume, or the failure. */
static int stream_done(struct rig_http_stream *s, CURLcode cc)
{
	bool transient;
	int rc, wait;

	if (s->err)
		return s->err;
	if (cc == CURLE_OK && !s->r.checked && check_response(s))
		return s->err;
	rc = translate(cc, &transient);
	if (rc == 0 && (s->length < 0 || s->got >= (uint64_t)s->length)) {
		s->eof = true;
		return 0;
	}
	if (rc == 0) {
		transient = true;     /* the server closed early without saying so */
		snprintf(s->errbuf, sizeof(s->errbuf), "connection closed early");
	}
	if (!transient)
		return sfail(s, rc, "cannot download '%s': %s", s->shown,
			     *s->errbuf ? s->errbuf : curl_easy_strerror(cc));
	snprintf(s->last_drop, sizeof(s->last_drop), "%.120s after %llu bytes",
		 *s->errbuf ? s->errbuf : curl_easy_strerror(cc), (unsigned long long)s->got);
	if (s->got && !s->ranges)
		return sfail(s, RIG_E_IO, "the download of '%s' broke off after %llu bytes (%s) "
			     "and the server does not accept ranges (no 'Accept-Ranges: bytes'), "
			     "so it cannot be resumed: check the server or download the image "
			     "first", s->shown, (unsigned long long)s->got,
			     *s->errbuf ? s->errbuf : curl_easy_strerror(cc));
	/* Only attempts that brought nothing count towards the limit. */
	s->fails = s->got > s->got0 ? 1 : s->fails + 1;
	if (s->fails > s->o.retries)
		return sfail(s, RIG_E_IO, "cannot download '%s': %s after %llu bytes, %d attempt%s "
			     "in a row without progress", s->shown,
			     *s->errbuf ? s->errbuf : curl_easy_strerror(cc),
			     (unsigned long long)s->got, s->fails, s->fails == 1 ? "" : "s");
	wait = s->o.backoff_ms << (s->fails - 1 > 8 ? 8 : s->fails - 1);
	if (wait > STREAM_MAX_BACKOFF_MS)
		wait = STREAM_MAX_BACKOFF_MS;
	rc = stream_wait(s, wait);
	if (rc)
		return rc;
	s->resumes++;
	return stream_start(s);
}

/* One slice: runs libcurl, then waits up to SLICE_MS for its sockets. */
static int stream_step(struct rig_http_stream *s)
{
	int64_t now = rig_now_ms();
	int running = 0, left;
	CURLMsg *m;

	if (__atomic_load_n(&s->stop, __ATOMIC_RELAXED) || rig_ctx_cancelled(s->ctx))
		return sfail(s, RIG_E_INTR, "download of '%s' cancelled after %llu bytes", s->shown,
			     (unsigned long long)s->got);
	if (s->deadline && now >= s->deadline)
		return sfail(s, RIG_E_TIMEOUT, "download of '%s' timed out after %llu bytes",
			     s->shown, (unsigned long long)s->got);
	if (s->o.stall_ms >= 0 && now - s->last_data > s->o.stall_ms)
		return sfail(s, RIG_E_TIMEOUT, "download of '%s' stalled: no data for %d s after "
			     "%llu bytes", s->shown, (s->o.stall_ms + 999) / 1000,
			     (unsigned long long)s->got);
	if (curl_multi_perform(s->multi, &running) != CURLM_OK)
		return sfail(s, RIG_E_NOMEM, "out of memory");
	while ((m = curl_multi_info_read(s->multi, &left)))
		if (m->msg == CURLMSG_DONE && m->easy_handle == s->easy)
			return stream_done(s, m->data.result);
	if (s->err)
		return s->err;
	if (s->pos < s->len)
		return 0;
	if (curl_multi_poll(s->multi, NULL, 0, SLICE_MS, NULL) != CURLM_OK)
		return sfail(s, RIG_E_NOMEM, "out of memory");
	return 0;
}

int rig_http_stream_open(struct rig_ctx *ctx, const char *url,
			 const struct rig_http_stream_opts *o, struct rig_http_stream **out,
			 char *err, size_t errlen)
{
	struct rig_http_stream *s;
	CURLcode cc = CURLE_OK;
	CURL *easy;
	int tmo, rc;

	assert(ctx && url && o && out);
	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return RIG_E_NOMEM;
	}
	s->ctx = ctx;
	s->o = *o;
	s->length = -1;
	rig_http_redact_url(url, s->shown, sizeof(s->shown));
	tmo = rig_ctx_clamp(ctx, o->timeout_ms);
	if (tmo >= 0)
		s->deadline = rig_now_ms() + tmo;
	if (strncasecmp(url, "http://", 7) && strncasecmp(url, "https://", 8)) {
		rc = sfail(s, RIG_E_INVAL, "'%s' is not an http:// or https:// URL", s->shown);
		goto out;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		rc = sfail(s, RIG_E_IO, "cannot initialise libcurl: %s",
			   curl_easy_strerror(curl_init_rc));
		goto out;
	}
	s->url = strdup(url);
	easy = s->easy = s->url ? curl_easy_init() : NULL;
	s->multi = easy ? curl_multi_init() : NULL;
	if (!s->multi) {
		rc = sfail(s, RIG_E_NOMEM, "out of memory");
		goto out;
	}
	cc = setup_common(easy, url, o->verify_tls, o->ca_file, s->errbuf);
	/* no Accept-Encoding: the bytes hashed and decoded are the file's own */
	SET(CURLOPT_WRITEFUNCTION, stream_body);
	SET(CURLOPT_WRITEDATA, s);
	SET(CURLOPT_HEADERFUNCTION, stream_header);
	SET(CURLOPT_HEADERDATA, s);
	if (cc != CURLE_OK) {
		rc = sfail(s, cc == CURLE_OUT_OF_MEMORY ? RIG_E_NOMEM : RIG_E_INVAL,
			   "cannot set up the download of '%s'", s->shown);
		goto out;
	}
	rc = stream_start(s);
	/* until the response says what it is: a 404 fails here, before anything is written */
	while (!rc && !s->r.checked && !s->eof)
		rc = stream_step(s);
out:
	if (rc) {
		snprintf(err, errlen, "%s", s->msg);
		rig_http_stream_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

long rig_http_stream_read(struct rig_http_stream *s, void *buf, size_t len)
{
	size_t n;

	assert(s && buf);
	while (s->pos == s->len) {
		int rc;

		if (s->err)
			return s->err;
		if (s->eof)
			return 0;
		s->pos = s->len = 0;
		rc = stream_step(s);
		if (rc)
			return rc;
	}
	n = s->len - s->pos < len ? s->len - s->pos : len;
	memcpy(buf, s->buf + s->pos, n);
	s->pos += n;
	return (long)n;
}

int64_t rig_http_stream_length(const struct rig_http_stream *s)
{
	return s->length;
}

int rig_http_stream_resumes(const struct rig_http_stream *s, char *why, size_t whylen)
{
	if (why && whylen)
		snprintf(why, whylen, "%s", s->last_drop);
	return s->resumes;
}

const char *rig_http_stream_errmsg(const struct rig_http_stream *s)
{
	return s->msg;
}

void rig_http_stream_stop(struct rig_http_stream *s)
{
	if (s)
		__atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
}

void rig_http_stream_close(struct rig_http_stream *s)
{
	if (!s)
		return;
	if (s->multi) {
		if (s->easy)
			curl_multi_remove_handle(s->multi, s->easy);
		curl_multi_cleanup(s->multi);
	}
	if (s->easy)
		curl_easy_cleanup(s->easy);
	free(s->buf);
	free(s->url);
	free(s);
}
