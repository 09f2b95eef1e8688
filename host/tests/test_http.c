/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the HTTP client (http.c) against a loopback server run in a thread of
 * this test: canned responses by path, one connection at a time, "Connection: close".
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "rig_http.h"

/* ---- the server ---- */

struct server {
	int fd, port;
	pthread_t thread;
	pthread_mutex_t lock;
	int hits;               /* requests served since the last reset */
	int flaky;              /* /flaky answers 503 this many more times */
	char line[512];         /* last request line */
	char body[512];         /* last request body */
	char xtest[128];        /* last X-Test header */
	volatile int stop;
};

static struct server srv;

static void reply(int c, const char *status, const char *extra, const char *body)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf),
			 "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
			 status, strlen(body), extra, body);

	if (write(c, buf, (size_t)n) < 0)
		return;
}

static const char *find_header(const char *req, const char *name, char *out, size_t len)
{
	const char *p = strcasestr(req, name);
	size_t n;

	out[0] = 0;
	if (!p)
		return out;
	p += strlen(name);
	while (*p == ' ')
		p++;
	n = strcspn(p, "\r\n");
	if (n >= len)
		n = len - 1;
	memcpy(out, p, n);
	out[n] = 0;
	return out;
}

static void serve(int c)
{
	char req[8192], cl[32], path[256];
	size_t got = 0, want;
	char *end = NULL;
	ssize_t r;
	int flaky;

	req[0] = 0;
	while (got < sizeof(req) - 1 && !(end = strstr(req, "\r\n\r\n"))) {
		r = read(c, req + got, sizeof(req) - 1 - got);
		if (r <= 0)
			return;
		got += (size_t)r;
		req[got] = 0;
		if (req[0] == 0x16) {
			/* a TLS client hello: answer in plain HTTP, as a misconfigured server would */
			reply(c, "400 Bad Request", "", "plain http here");
			return;
		}
	}
	if (!end)
		return;
	want = (size_t)(end + 4 - req) + (size_t)atoi(find_header(req, "Content-Length:", cl, sizeof(cl)));
	while (got < want && got < sizeof(req) - 1) {
		r = read(c, req + got, sizeof(req) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		req[got] = 0;
	}
	pthread_mutex_lock(&srv.lock);
	srv.hits++;
	snprintf(srv.line, sizeof(srv.line), "%.*s", (int)strcspn(req, "\r\n"), req);
	snprintf(srv.body, sizeof(srv.body), "%s", end + 4);
	find_header(req, "X-Test:", srv.xtest, sizeof(srv.xtest));
	flaky = srv.flaky > 0 ? srv.flaky-- : 0;
	pthread_mutex_unlock(&srv.lock);
	sscanf(req, "%*s %255s", path);

	if (!strcmp(path, "/json")) {
		reply(c, "200 OK", "Content-Type: application/json\r\nX-Multi:  a b \r\n", "{\"ok\": true}");
	} else if (!strcmp(path, "/flaky")) {
		if (flaky)
			reply(c, "503 Service Unavailable", "", "busy");
		else
			reply(c, "200 OK", "", "finally");
	} else if (!strcmp(path, "/retry-after")) {
		if (flaky)
			reply(c, "503 Service Unavailable", "Retry-After: 1\r\n", "later");
		else
			reply(c, "200 OK", "", "now");
	} else if (!strcmp(path, "/always503")) {
		reply(c, "503 Service Unavailable", "", "busy");
	} else if (!strcmp(path, "/slow")) {
		/* answer after 5 s, or give up as soon as the client goes away */
		struct pollfd p = { .fd = c, .events = POLLIN };

		if (poll(&p, 1, 5000) == 0)
			reply(c, "200 OK", "", "slow");
	} else if (!strcmp(path, "/close")) {
		/* close without a reply */
	} else if (!strcmp(path, "/echo")) {
		reply(c, "200 OK", "", srv.body);
	} else if (!strcmp(path, "/redirect")) {
		reply(c, "302 Found", "Location: /json\r\n", "");
	} else if (!strcmp(path, "/big")) {
		char big[2001];

		memset(big, 'x', 2000);
		big[2000] = 0;
		reply(c, "200 OK", "", big);
	} else if (!strcmp(path, "http://rigor.invalid/proxied")) {
		reply(c, "200 OK", "", "via proxy");
	} else if (!strcmp(path, "/garbage")) {
		if (write(c, "SSH-2.0-nope\r\n\r\n", 16) < 0)
			return;
	} else {
		reply(c, "404 Not Found", "", "no such thing");
	}
}

static void *server_main(void *arg)
{
	(void)arg;
	while (!srv.stop) {
		struct pollfd p = { .fd = srv.fd, .events = POLLIN };
		int c;

		if (poll(&p, 1, 100) <= 0)
			continue;
		c = accept(srv.fd, NULL, NULL);
		if (c < 0)
			continue;
		serve(c);
		shutdown(c, SHUT_WR);
		close(c);
	}
	return NULL;
}

static int listen_any(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 16) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) < 0)
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

static int server_up(void **state)
{
	(void)state;
	pthread_mutex_init(&srv.lock, NULL);
	srv.fd = listen_any(&srv.port);
	if (srv.fd < 0)
		return -1;
	unsetenv("http_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("https_proxy");
	unsetenv("ALL_PROXY");
	unsetenv("all_proxy");
	return pthread_create(&srv.thread, NULL, server_main, NULL) ? -1 : 0;
}

static int server_down(void **state)
{
	(void)state;
	srv.stop = 1;
	pthread_join(srv.thread, NULL);
	close(srv.fd);
	return 0;
}

/* ---- per test ---- */

struct t {
	struct rig_ctx *ctx;
	struct rig_http_req req;
	struct rig_http_resp resp;
	char url[256];
};

static int setup(void **state)
{
	struct t *t = calloc(1, sizeof(*t));

	t->ctx = rig_ctx_new();
	rig_http_req_init(&t->req);
	t->req.url = t->url;
	t->req.timeout_ms = 5000;
	pthread_mutex_lock(&srv.lock);
	srv.hits = 0;
	srv.flaky = 0;
	srv.line[0] = 0;
	pthread_mutex_unlock(&srv.lock);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	rig_http_resp_release(&t->resp);
	rig_ctx_free(t->ctx);
	free(t);
	return 0;
}

static void at(struct t *t, const char *path)
{
	snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d%s", srv.port, path);
}

static int hits(void)
{
	int n;

	pthread_mutex_lock(&srv.lock);
	n = srv.hits;
	pthread_mutex_unlock(&srv.lock);
	return n;
}

static void get_json(void **state)
{
	struct t *t = *state;

	at(t, "/json");
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	assert_int_equal(t->resp.status, 200);
	assert_string_equal(t->resp.body, "{\"ok\": true}");
	assert_int_equal(t->resp.len, 12);
	assert_string_equal(rig_http_resp_header(&t->resp, "content-type"), "application/json");
	assert_string_equal(rig_http_resp_header(&t->resp, "x-multi"), "a b");
	assert_null(rig_http_resp_header(&t->resp, "x-none"));
	assert_int_equal(t->resp.attempts, 1);
	assert_string_equal(srv.line, "GET /json HTTP/1.1");
	/* releasing twice is fine */
	rig_http_resp_release(&t->resp);
	rig_http_resp_release(&t->resp);
}

static void status_404_is_a_response(void **state)
{
	struct t *t = *state;

	at(t, "/nope");
	t->req.retries = 3;
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	assert_int_equal(t->resp.status, 404);
	assert_string_equal(t->resp.body, "no such thing");
	assert_int_equal(hits(), 1);    /* 404 is not retried */
	assert_string_equal(rig_ctx_errmsg(t->ctx), "");
}

static void get_retries_503_with_backoff(void **state)
{
	struct t *t = *state;
	int64_t t0, ms;

	at(t, "/flaky");
	srv.flaky = 2;
	t->req.retries = 3;
	t->req.backoff_ms = 100;
	t0 = rig_now_ms();
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	ms = rig_now_ms() - t0;
	assert_int_equal(t->resp.status, 200);
	assert_string_equal(t->resp.body, "finally");
	assert_int_equal(t->resp.attempts, 3);
	assert_int_equal(hits(), 3);
	/* waits of 100 then 200 ms */
	assert_true(ms >= 300);
	assert_true(ms < 1500);
}

static void post_is_not_retried(void **state)
{
	struct t *t = *state;

	at(t, "/flaky");
	srv.flaky = 2;
	t->req.method = "POST";
	t->req.retries = 3;
	t->req.backoff_ms = 10;
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	assert_int_equal(t->resp.status, 503);
	assert_int_equal(t->resp.attempts, 1);
	assert_int_equal(hits(), 1);
	assert_false(rig_http_idempotent("POST"));
	assert_false(rig_http_idempotent("PATCH"));
	assert_true(rig_http_idempotent("get"));
	assert_true(rig_http_idempotent("PUT"));
	assert_true(rig_http_idempotent("DELETE"));
	assert_true(rig_http_idempotent("HEAD"));
	assert_true(rig_http_idempotent("OPTIONS"));
}

static void put_and_delete_are_retried(void **state)
{
	struct t *t = *state;

	at(t, "/flaky");
	srv.flaky = 1;
	t->req.method = "PUT";
	t->req.retries = 1;
	t->req.backoff_ms = 10;
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	assert_int_equal(t->resp.status, 200);
	assert_int_equal(hits(), 2);
	assert_string_equal(srv.line, "PUT /flaky HTTP/1.1");
	rig_http_resp_release(&t->resp);
	srv.flaky = 1;
	t->req.method = "DELETE";
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	assert_int_equal(t->resp.status, 200);
	assert_int_equal(hits(), 4);
	assert_string_equal(srv.line, "DELETE /flaky HTTP/1.1");
}

static void retries_used_up_return_the_last_response(void **state)
{
	struct t *t = *state;

	at(t, "/always503");
	t->req.retries = 2;
	t->req.backoff_ms = 10;
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	assert_int_equal(t->resp.status, 503);
	assert_int_equal(t->resp.attempts, 3);
	assert_int_equal(hits(), 3);
}

static void retry_after_is_honoured(void **state)
{
	struct t *t = *state;
	int64_t t0 = rig_now_ms(), ms;

	at(t, "/retry-after");
	srv.flaky = 1;
	t->req.retries = 1;
	t->req.backoff_ms = 10;
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	ms = rig_now_ms() - t0;
	assert_int_equal(t->resp.status, 200);
	assert_true(ms >= 1000);
	assert_true(ms < 2500);
}

static void no_retry_when_it_would_outlast_the_timeout(void **state)
{
	struct t *t = *state;
	int64_t t0 = rig_now_ms();

	at(t, "/always503");
	t->req.retries = 5;
	t->req.backoff_ms = 1000;
	t->req.timeout_ms = 500;
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	assert_int_equal(t->resp.status, 503);
	assert_int_equal(hits(), 1);
	assert_true(rig_now_ms() - t0 < 400);
}

static void timeout(void **state)
{
	struct t *t = *state;
	int64_t t0 = rig_now_ms(), ms;

	at(t, "/slow");
	t->req.timeout_ms = 300;
	t->req.retries = 2;   /* a timeout uses up the whole budget: no retry */
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_TIMEOUT);
	ms = rig_now_ms() - t0;
	assert_true(ms >= 290);
	assert_true(ms < 1500);
	assert_non_null(strstr(rig_ctx_errmsg(t->ctx), "timed out"));
	assert_non_null(strstr(rig_ctx_errmsg(t->ctx), "GET http://127.0.0.1"));
	assert_null(t->resp.body);
	assert_int_equal(hits(), 1);
}

static void timeout_zero_fails_at_once(void **state)
{
	struct t *t = *state;

	at(t, "/json");
	t->req.timeout_ms = 0;
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_TIMEOUT);
	assert_int_equal(hits(), 0);
}

static void ctx_deadline_bounds_the_call(void **state)
{
	struct t *t = *state;
	int64_t t0 = rig_now_ms();

	at(t, "/slow");
	t->req.timeout_ms = -1;
	rig_ctx_set_deadline(t->ctx, t0 + 200);
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_TIMEOUT);
	assert_true(rig_now_ms() - t0 < 1500);
}

static volatile sig_atomic_t cancel_flag;

static void *raise_flag(void *arg)
{
	(void)arg;
	usleep(200 * 1000);
	cancel_flag = 2;
	return NULL;
}

static void cancel_flag_ends_the_call(void **state)
{
	struct t *t = *state;
	int64_t t0 = rig_now_ms(), ms;
	pthread_t th;

	at(t, "/slow");
	t->req.timeout_ms = 10000;
	cancel_flag = 0;
	rig_ctx_set_cancel(t->ctx, &cancel_flag);
	pthread_create(&th, NULL, raise_flag, NULL);
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_INTR);
	ms = rig_now_ms() - t0;
	pthread_join(th, NULL);
	assert_true(ms >= 190);
	assert_true(ms < 800);
	assert_non_null(strstr(rig_ctx_errmsg(t->ctx), "cancelled"));
}

static void cancel_flag_ends_the_backoff(void **state)
{
	struct t *t = *state;
	int64_t t0 = rig_now_ms();
	pthread_t th;

	at(t, "/always503");
	t->req.retries = 3;
	t->req.backoff_ms = 5000;
	t->req.timeout_ms = 30000;
	cancel_flag = 0;
	rig_ctx_set_cancel(t->ctx, &cancel_flag);
	pthread_create(&th, NULL, raise_flag, NULL);
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_INTR);
	pthread_join(th, NULL);
	assert_true(rig_now_ms() - t0 < 1500);
	assert_int_equal(hits(), 1);
}

static void closed_early_is_io_and_retried(void **state)
{
	struct t *t = *state;

	at(t, "/close");
	t->req.retries = 2;
	t->req.backoff_ms = 10;
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_IO);
	assert_int_equal(hits(), 3);
	assert_non_null(strstr(rig_ctx_errmsg(t->ctx), "GET http://127.0.0.1"));
	rig_ctx_clear_error(t->ctx);
	t->req.method = "POST";
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_IO);
	assert_int_equal(hits(), 4);
}

static void connection_refused(void **state)
{
	struct t *t = *state;
	int port, fd = listen_any(&port);

	close(fd);  /* nothing listens there now */
	snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d/x", port);
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_IO);
	print_message("# %s\n", rig_ctx_errmsg(t->ctx));
	assert_non_null(strstr(rig_ctx_errmsg(t->ctx), "refused"));
}

static void first_error_wins(void **state)
{
	struct t *t = *state;

	at(t, "/close");
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_IO);
	at(t, "/slow");
	t->req.timeout_ms = 100;
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_TIMEOUT);
	assert_non_null(strstr(rig_ctx_errmsg(t->ctx), "/close"));
}

static void tls_failure_is_io(void **state)
{
	struct t *t = *state;

	/* a TLS client hello to a plain HTTP server */
	snprintf(t->url, sizeof(t->url), "https://127.0.0.1:%d/json", srv.port);
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_IO);
	print_message("# %s\n", rig_ctx_errmsg(t->ctx));
	assert_true(strlen(rig_ctx_errmsg(t->ctx)) > 20);
}

static void not_http_is_proto(void **state)
{
	struct t *t = *state;

	at(t, "/garbage");
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_PROTO);
}

static void bad_scheme_is_inval(void **state)
{
	struct t *t = *state;

	snprintf(t->url, sizeof(t->url), "file:///etc/passwd");
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_INVAL);
}

static void body_method_and_headers_are_sent(void **state)
{
	struct t *t = *state;
	const char *hdrs[] = { "X-Test: hello", "Content-Type: text/plain", NULL };

	at(t, "/echo");
	t->req.method = "PATCH";
	t->req.body = "some body";
	t->req.len = 9;
	t->req.headers = hdrs;
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	assert_string_equal(srv.line, "PATCH /echo HTTP/1.1");
	assert_string_equal(t->resp.body, "some body");
	assert_string_equal(srv.xtest, "hello");
	rig_http_resp_release(&t->resp);
	/* POST without a body sends Content-Length: 0 */
	t->req.method = "POST";
	t->req.body = NULL;
	t->req.len = 0;
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	assert_string_equal(srv.line, "POST /echo HTTP/1.1");
	assert_int_equal(t->resp.len, 0);
	assert_non_null(t->resp.body);
}

static void redirects_are_followed(void **state)
{
	struct t *t = *state;

	at(t, "/redirect");
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	assert_int_equal(t->resp.status, 200);
	assert_string_equal(t->resp.body, "{\"ok\": true}");
	/* only the final response's headers */
	assert_null(rig_http_resp_header(&t->resp, "location"));
}

static void body_size_limit(void **state)
{
	struct t *t = *state;

	at(t, "/big");
	t->req.max_len = 1000;
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), RIG_E_NOMEM);
	assert_non_null(strstr(rig_ctx_errmsg(t->ctx), "larger than 1000"));
	t->req.max_len = 0;
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	assert_int_equal(t->resp.len, 2000);
}

static void proxy_environment(void **state)
{
	struct t *t = *state;
	char proxy[64];
	int port, fd = listen_any(&port);

	close(fd);
	/* http_proxy sends the request to the proxy, in absolute form */
	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", srv.port);
	setenv("http_proxy", proxy, 1);
	unsetenv("no_proxy");
	snprintf(t->url, sizeof(t->url), "http://rigor.invalid/proxied");
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	assert_string_equal(t->resp.body, "via proxy");
	assert_string_equal(srv.line, "GET http://rigor.invalid/proxied HTTP/1.1");
	rig_http_resp_release(&t->resp);
	/* no_proxy bypasses a (dead) proxy for loopback */
	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", port);
	setenv("http_proxy", proxy, 1);
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	at(t, "/json");
	assert_int_equal(rig_http_do(t->ctx, &t->req, &t->resp), 0);
	assert_int_equal(t->resp.status, 200);
	unsetenv("http_proxy");
	unsetenv("no_proxy");
}

static void redact_url(void **state)
{
	char buf[256];

	(void)state;
	rig_http_redact_url("https://u:pw@api.example/v7/device?apikey=SECRET&$select=id&x_token=T2#f",
			    buf, sizeof(buf));
	assert_string_equal(buf, "https://***@api.example/v7/device?apikey=***&$select=id&x_token=***#f");
	rig_http_redact_url("http://h/p?a=1&Api_Key=K", buf, sizeof(buf));
	assert_string_equal(buf, "http://h/p?a=1&Api_Key=***");
	rig_http_redact_url("http://h/p@x", buf, sizeof(buf));
	assert_string_equal(buf, "http://h/p@x");
	rig_http_redact_url("http://h/p?apikey=LONGSECRET", buf, 20);
	assert_int_equal(strlen(buf), 19);
	assert_null(strstr(buf, "LONG"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(get_json),
		T(status_404_is_a_response),
		T(get_retries_503_with_backoff),
		T(post_is_not_retried),
		T(put_and_delete_are_retried),
		T(retries_used_up_return_the_last_response),
		T(retry_after_is_honoured),
		T(no_retry_when_it_would_outlast_the_timeout),
		T(timeout),
		T(timeout_zero_fails_at_once),
		T(ctx_deadline_bounds_the_call),
		T(cancel_flag_ends_the_call),
		T(cancel_flag_ends_the_backoff),
		T(closed_early_is_io_and_retried),
		T(connection_refused),
		T(first_error_wins),
		T(tls_failure_is_io),
		T(not_http_is_proto),
		T(bad_scheme_is_inval),
		T(body_method_and_headers_are_sent),
		T(redirects_are_followed),
		T(body_size_limit),
		T(proxy_environment),
		T(redact_url),
#undef T
	};

	return cmocka_run_group_tests(tests, server_up, server_down);
}
