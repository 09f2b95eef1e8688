/* SPDX-License-Identifier: MIT */
/**
 * @file rig_http.h
 * @brief librig HTTP client: one blocking request at a time, with timeouts, retries of
 *        idempotent methods and cancellation through the context. No Lua here.
 *
 * Used by the Lua module `rigor.http` (and through it by the balena client) and by
 * back-ends that talk HTTP (network PDUs). Built on the libcurl easy API driven by a
 * private multi handle, one handle per call: nothing is shared between calls.
 *
 * @section rc Return codes
 * rig_http_do() returns 0 when an HTTP response arrived, *whatever its status*: a 404 or a
 * 503 is a response, reported in rig_http_resp::status. Transport failures are negative
 * ::rig_err values translated from libcurl's CURLcode at this boundary:
 *  - ::RIG_E_TIMEOUT the request (with its retries) did not finish within timeout_ms, or
 *                    within the context's deadline (rig_ctx_set_deadline());
 *  - ::RIG_E_INTR    the context's cancel flag was raised (rig_ctx_set_cancel());
 *  - ::RIG_E_IO      connection refused or reset, name resolution failed, the server
 *                    closed the connection early, TLS handshake or certificate failure;
 *  - ::RIG_E_PROTO   the server's reply was not HTTP, or too many redirects;
 *  - ::RIG_E_INVAL   malformed URL, or a scheme other than http/https;
 *  - ::RIG_E_NOMEM   out of memory, or a body larger than rig_http_req::max_len.
 * The detail ("GET http://host/path: Failed to connect to ... Connection refused") is
 * recorded on the context with first-error-wins semantics (rig_ctx_errmsg()). Values of
 * query parameters whose names look like credentials (key, token, secret, password,
 * auth) are replaced by "***" in every message and log line; request headers and bodies
 * are never logged.
 *
 * @section retries Retries
 * Only idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) are retried, and only after
 * a connection-level failure (refused, reset, closed early, resolution failure) or a
 * 408, 429, 500, 502, 503 or 504 response. Attempt n (n >= 1) waits
 * backoff_ms * 2^(n-1) (at most 5 minutes) before it starts, or the response's
 * Retry-After (in seconds, at most 60) if that is longer; the wait is cut short by the cancel flag and never outlasts the
 * overall timeout. When the retries are used up, the last response (status 503, say) is
 * returned with 0, or the last transport error.
 *
 * @section proxy Proxies
 * libcurl's environment handling applies: http_proxy, https_proxy, all_proxy (and upper
 * case forms, except HTTP_PROXY) and no_proxy.
 *
 * @section ts Thread safety
 * Calls on different contexts may run in parallel. libcurl's global initialisation runs
 * once per process, guarded by pthread_once() (the only process-wide state; it is never
 * torn down).
 *
 * @section dbg Debugging
 * At level dbg (RIGOR_DEBUG=dbg) each attempt logs one line under the module "http":
 * method, redacted URL, status or error, and the time taken.
 */
#ifndef RIGOR_HOST_RIG_HTTP_H
#define RIGOR_HOST_RIG_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rig.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A request. Set up with rig_http_req_init(), then fill in what differs; the struct and
 * everything it points to belong to the caller and are only read during rig_http_do().
 */
struct rig_http_req {
	const char *method;     /**< "GET" (when NULL), "POST", "PUT", "PATCH", ... */
	const char *url;        /**< http:// or https:// URL; required */
	/** Extra request headers as "Name: value" strings; NULL-terminated, or NULL. "Name:"
	 * removes a header libcurl would add. */
	const char *const *headers;
	const void *body;       /**< request body (may be NULL) */
	size_t len;             /**< bytes of @ref body */
	/** Bound for the whole call, retries and waits included: -1 forever, 0 fails with
	 * ::RIG_E_TIMEOUT at once, > 0 milliseconds. Also cut by the context's deadline. */
	int timeout_ms;
	bool verify_tls;        /**< check the server certificate and host name (default true) */
	/** PEM file of CA certificates to verify the server against instead of the system's
	 * (an openBalena with its own CA); NULL = the system's. */
	const char *ca_file;
	int retries;            /**< extra attempts for idempotent methods (default 0) */
	int backoff_ms;         /**< wait before the first retry, doubled each time (default 250) */
	size_t max_len;         /**< largest accepted body; 0 = 64 MiB */
};

/** One response header. Names are lower-cased; values have surrounding blanks removed. */
struct rig_http_header {
	char *name;
	char *value;
};

/**
 * A response, filled by rig_http_do(). The caller embeds it and frees what it holds with
 * rig_http_resp_release(). Headers are those of the final response (after redirects).
 */
struct rig_http_resp {
	int status;                       /**< HTTP status code (200, 404, ...) */
	struct rig_http_header *headers;  /**< @ref nheaders entries, in arrival order */
	size_t nheaders;
	char *body;                       /**< @ref len bytes plus a terminating NUL; never NULL after success */
	size_t len;
	int attempts;                     /**< attempts made (1 + retries used) */
};

/** Defaults: GET, timeout -1, verify_tls true, no retries, backoff 250 ms. */
RIG_API void rig_http_req_init(struct rig_http_req *req);

/**
 * Perform @p req and fill @p resp (which need not be initialised; on failure it is left
 * empty, and releasing it is still allowed). Blocks up to req->timeout_ms (and the
 * context's deadline); ends early with ::RIG_E_INTR when the context's cancel flag is
 * raised.
 * @retval 0 a response arrived (any status); release @p resp with rig_http_resp_release()
 * @retval RIG_E_TIMEOUT out of time
 * @retval RIG_E_INTR cancelled
 * @retval RIG_E_IO connection or TLS failure
 * @retval RIG_E_PROTO not an HTTP reply, or too many redirects
 * @retval RIG_E_INVAL bad URL or scheme
 * @retval RIG_E_NOMEM out of memory, or body larger than req->max_len
 */
RIG_API int rig_http_do(struct rig_ctx *ctx, const struct rig_http_req *req,
			struct rig_http_resp *resp);

/** Free what @p resp holds and empty it. Safe on an empty or already released response. */
RIG_API void rig_http_resp_release(struct rig_http_resp *resp);

/**
 * The value of response header @p name (lower case), or NULL. With several headers of
 * that name, the first. Owned by @p resp.
 */
RIG_API const char *rig_http_resp_header(const struct rig_http_resp *resp, const char *name);

/** Whether @p method ("GET", "put", ...) is idempotent, so rig_http_do() may retry it. */
RIG_API bool rig_http_idempotent(const char *method);

/**
 * Copy @p url into @p buf (always NUL-terminated) with user:password@ and the values of
 * credential-like query parameters (names containing key, token, secret, password,
 * auth, case-insensitive) replaced by "***". Used for every log line and message.
 */
RIG_API void rig_http_redact_url(const char *url, char *buf, size_t len);

/* ---------------------------------------------------------------------------------------- */
/* Streaming downloads                                                                        */

/**
 * A download read as a stream, for files too large to hold (disk images for rig_flash_image()).
 * Opaque; made by rig_http_stream_open(), freed by rig_http_stream_close().
 *
 * The bytes are the file's own: no Accept-Encoding is sent, so nothing is decoded on the way.
 * Redirects are followed (at most 5, http and https only). When the connection breaks off
 * and the first response said `Accept-Ranges: bytes`, the stream resumes with
 * `Range: bytes=N-` and checks the answer is the rest of the same file: status 206, a
 * Content-Range starting at N, the same total length, ETag and Last-Modified as the first
 * response where it gave them. Anything else fails with ::RIG_E_PROTO. Without range support
 * a break after the first byte fails with ::RIG_E_IO, saying so. Before resuming it waits
 * backoff_ms, doubled for each attempt in a row that brought no new byte (at most 8 s); the
 * stream gives up after @ref rig_http_stream_opts::retries such attempts in a row.
 */
struct rig_http_stream;

/** Options of rig_http_stream_open(); set up with rig_http_stream_opts_init(). */
struct rig_http_stream_opts {
	int timeout_ms;   /**< bound for the whole download, -1 (default) none; cut by the
			       context's deadline */
	int stall_ms;     /**< no byte received for this long fails with ::RIG_E_TIMEOUT
			       (default 30000; -1 never) */
	int retries;      /**< resumes in a row without progress before giving up (default 5) */
	int backoff_ms;   /**< wait before the first resume, doubled per failed one (500) */
	bool verify_tls;  /**< check the server certificate (default true) */
	const char *ca_file; /**< CA bundle instead of the system's, or NULL */
};

/** Defaults: no overall timeout, 30 s stall, 5 retries, 500 ms backoff, TLS verified. */
RIG_API void rig_http_stream_opts_init(struct rig_http_stream_opts *o);

/**
 * Starts downloading @p url and waits for its response. Blocks until the response headers
 * arrived, at most the timeouts of @p o; the context's cancel flag ends it with ::RIG_E_INTR.
 * Messages name the URL redacted (rig_http_redact_url()).
 * @param out  set to the stream, which the caller frees with rig_http_stream_close()
 * @param err  the message on failure (not recorded on the context)
 * @retval 0 the server answered 200: read the body with rig_http_stream_read()
 * @retval RIG_E_NOENT   HTTP 404 or 410 (the message names the status and the URL)
 * @retval RIG_E_INVAL   another 4xx status (403, 401, ...), or not an http(s) URL
 * @retval RIG_E_IO      a 5xx status, or the server cannot be reached (after the retries)
 * @retval RIG_E_PROTO   a reply that is not HTTP, or another status
 * @retval RIG_E_TIMEOUT no response within stall_ms or timeout_ms
 * @retval RIG_E_INTR    cancelled
 * @retval RIG_E_NOMEM   out of memory
 */
RIG_API int rig_http_stream_open(struct rig_ctx *ctx, const char *url,
				 const struct rig_http_stream_opts *o,
				 struct rig_http_stream **out, char *err, size_t errlen);

/**
 * Reads up to @p len bytes of the file, resuming a broken connection as described above.
 * Blocks until at least one byte arrived, the end, or a failure. May be called from another
 * thread than the one that opened the stream (one at a time); it reads the context's cancel
 * flag only. Errors are sticky: every later call returns the same code.
 * @return the number of bytes (> 0), 0 at the end of the file, or a negative ::rig_err:
 *         ::RIG_E_TIMEOUT (stalled or out of time), ::RIG_E_INTR (cancelled or
 *         rig_http_stream_stop()), ::RIG_E_IO (connection lost and not resumable),
 *         ::RIG_E_PROTO (a resumed response that is not the rest of the file); the message is
 *         rig_http_stream_errmsg()
 */
RIG_API long rig_http_stream_read(struct rig_http_stream *s, void *buf, size_t len);

/** The file's length from the first response (Content-Length), or -1 if it gave none. */
RIG_API int64_t rig_http_stream_length(const struct rig_http_stream *s);

/**
 * How many times the stream resumed a broken connection; @p why (if not NULL) gets the last
 * break ("Connection died ... after 1048576 bytes").
 */
RIG_API int rig_http_stream_resumes(const struct rig_http_stream *s, char *why, size_t whylen);

/** The message of the stream's first error, "" if none. Owned by the stream. */
RIG_API const char *rig_http_stream_errmsg(const struct rig_http_stream *s);

/**
 * Makes a rig_http_stream_read() running in another thread (or the next one) return
 * ::RIG_E_INTR within about 100 ms. Thread-safe; NULL is a no-op.
 */
RIG_API void rig_http_stream_stop(struct rig_http_stream *s);

/** Ends the download and frees @p s. NULL is a no-op. */
RIG_API void rig_http_stream_close(struct rig_http_stream *s);

#ifdef __cplusplus
}
#endif

#endif /* RIGOR_HOST_RIG_HTTP_H */
