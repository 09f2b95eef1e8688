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
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

static int setup(CURL *easy, const struct rig_http_req *req, const char *method,
		 struct curl_slist *hdrs, struct xfer *x, char *errbuf)
{
	CURLcode cc = CURLE_OK;

#define SET(opt, val) do { if (cc == CURLE_OK) cc = curl_easy_setopt(easy, opt, val); } while (0)
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, 5L);
	SET(CURLOPT_USERAGENT, "rigor/" RIGOR_VERSION);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, x);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, x);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, req->verify_tls ? 1L : 0L);
	SET(CURLOPT_SSL_VERIFYHOST, req->verify_tls ? 2L : 0L);
	if (req->ca_file)
		SET(CURLOPT_CAINFO, req->ca_file);
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
#undef SET
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
