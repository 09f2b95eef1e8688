// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for HTTP responses as rigor.http sees them: the input is the raw bytes
 * a server sends back (status line, headers, body), served by a thread on a loopback
 * socket to rigor.http.request / http.json (host/lua/lhttp.c over rig_http_do() in
 * host/src/http.c and libcurl). Covers the header and body callbacks (name lower-casing,
 * value trimming, a new response after 1xx, the size limit), the Lua header table (joined
 * repeats) and http.json's content-type check and decoding.
 *
 * Inputs with a Location header are skipped: a redirect could point anywhere.
 * Findings: memory errors, leaks, UB, a raise, a response whose header names are not
 * lower case or whose values keep surrounding blanks, a failure without message or code.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>

#include "fuzzlua.h"

static int lfd, port;
/* The response to serve: a copy, since a connection may outlive the input (the client
 * can stop reading once it has what Content-Length promised). */
static pthread_mutex_t resp_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *resp_data;
static size_t resp_size;

/* Read until the client stops sending or timeout_ms pass without data. */
static void drain(int fd, int timeout_ms, bool until_headers)
{
	char buf[4096];
	size_t seen = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (poll(&p, 1, timeout_ms) > 0) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n <= 0)
			return;
		seen += (size_t)n;
		if (until_headers && memmem(buf, (size_t)n, "\r\n\r\n", 4))
			return;   /* requests here have no body beyond what came with the headers */
	}
	(void)seen;
}

static void *server(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		size_t off = 0, len;
		uint8_t *data;

		if (fd < 0)
			continue;
		drain(fd, 1000, true);
		pthread_mutex_lock(&resp_lock);
		len = resp_size;
		data = malloc(len ? len : 1);
		if (data)
			memcpy(data, resp_data, len);
		pthread_mutex_unlock(&resp_lock);
		while (data && off < len) {
			ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL);

			if (n <= 0)
				break;
			off += (size_t)n;
		}
		free(data);
		shutdown(fd, SHUT_WR);
		drain(fd, 1000, false);
		close(fd);
	}
	return NULL;
}

static const char driver[] =
	"local http = require 'rigor.http'\n"
	"local url, use_json = ...\n"
	"local f = use_json and http.json or http.request\n"
	"local r, msg, code = f{ url = url, timeout = 2000, max_len = 65536 }\n"
	"if not r then\n"
	"  assert(type(msg) == 'string' and type(code) == 'string', 'failure without message or code')\n"
	"  return\n"
	"end\n"
	"assert(math.type(r.status) == 'integer' and type(r.body) == 'string', 'response fields')\n"
	"for k, v in pairs(r.headers) do\n"
	"  assert(type(k) == 'string' and type(v) == 'string', 'header types')\n"
	"  assert(k == k:lower(), 'header name not lower case: ' .. k)\n"
	"  -- repeats are joined with ', ' (an empty repeat leaves the separator at the end)\n"
	"  local last, n = v, 1\n"
	"  while n > 0 do last, n = last:gsub(', $', '') end\n"
	"  assert(not v:find('^[ \\t]') and not last:find('[ \\t\\r\\n]$'), 'header value not trimmed: ' .. v)\n"
	"end\n"
	"if use_json and r.json_error then assert(type(r.json_error) == 'string') end\n";

static struct rig_ctx *ctx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	pthread_t th;

	(void)argc;
	(void)argv;
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	ctx = fuzz_ctx_new();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(lfd, 16) < 0 || getsockname(lfd, (struct sockaddr *)&a, &alen) < 0 ||
	    pthread_create(&th, NULL, server, NULL)) {
		perror("fuzz_http: loopback server");
		abort();
	}
	port = ntohs(a.sin_port);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char url[64];
	lua_State *L;

	if (size < 1 || size > 64 << 10)
		return -1;
	for (size_t i = 0; i + 8 <= size; i++)
		if (!strncasecmp((const char *)data + i, "location", 8))
			return -1;
	pthread_mutex_lock(&resp_lock);
	free(resp_data);
	resp_size = size - 1;
	resp_data = malloc(resp_size ? resp_size : 1);
	if (!resp_data)
		abort();
	memcpy(resp_data, data + 1, resp_size);
	pthread_mutex_unlock(&resp_lock);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v7/device", port);
	L = fuzz_lua_new(ctx);
	lua_pushstring(L, url);
	lua_pushboolean(L, data[0] & 1);
	fuzz_lua_cover(L);
	fuzz_lua_run(L, driver, "=fuzz_http", 2);
	lua_close(L);
	return 0;
}
