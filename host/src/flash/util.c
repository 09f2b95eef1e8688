/* SPDX-License-Identifier: MIT */
/* Small helpers: sticky error, clock, block digest. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "flash_internal.h"

void fl_err_init(struct fl_err *e, char *buf, size_t len)
{
	e->buf = buf;
	e->len = buf ? len : 0;
	e->code = 0;
	if (e->len)
		buf[0] = 0;
}

int fl_err_set(struct fl_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e->code)
		return e->code; /* the first error is the root cause; keep it */
	e->code = code;
	if (e->len) {
		va_start(ap, fmt);
		vsnprintf(e->buf, e->len, fmt, ap);
		va_end(ap);
	}
	return code;
}

void fl_err_append(struct fl_err *e, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	if (!e->len)
		return;
	n = strlen(e->buf);
	if (n + 1 >= e->len)
		return;
	va_start(ap, fmt);
	vsnprintf(e->buf + n, e->len - n, fmt, ap);
	va_end(ap);
}

double fl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline uint64_t rd64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/*
 * A non-cryptographic 64-bit digest in the style of xxHash64 (four independent lanes so the
 * multiplies pipeline). It only has to notice accidental corruption of a 4 KiB block; the
 * bmap's SHA digests guard against a wrong source.
 */
uint64_t fl_hash64(const void *data, size_t n)
{
	const uint64_t P1 = 0x9E3779B185EBCA87ULL, P2 = 0xC2B2AE3D27D4EB4FULL;
	const unsigned char *p = data;
	uint64_t a = P1 + P2, b = P2, c = 0, d = 0 - P1, h;
	size_t i = 0;

	for (; i + 32 <= n; i += 32) {
		a = rotl(a + rd64(p + i) * P2, 31) * P1;
		b = rotl(b + rd64(p + i + 8) * P2, 31) * P1;
		c = rotl(c + rd64(p + i + 16) * P2, 31) * P1;
		d = rotl(d + rd64(p + i + 24) * P2, 31) * P1;
	}
	h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + (uint64_t)n;
	for (; i < n; i++)
		h = rotl(h ^ (p[i] * P1), 11) * P2;
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	return h;
}
