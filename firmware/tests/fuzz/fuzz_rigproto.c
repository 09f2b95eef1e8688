// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the rigproto decoder: arbitrary bytes go through rigproto_poll()
 * (split at a fuzzer-chosen point to exercise partial frames), every good frame through
 * rigproto_msg_decode(), and every decoded message is re-encoded and must decode to the
 * same value.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rigproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	uint8_t buf[RIGPROTO_MAX_FRAME];
	size_t len;
};

static int sink_write(void *user, const uint8_t *buf, size_t len)
{
	struct sink *s = user;

	if (len > sizeof(s->buf) - s->len)
		abort(); /* an encoded frame is longer than RIGPROTO_MAX_FRAME */
	memcpy(s->buf + s->len, buf, len);
	s->len += len;
	return 0;
}

static void check_cb(void *user, const struct rigproto_frame *f, int err)
{
	struct rigproto_msg a, b;
	struct rigproto_out out;
	struct sink s = { .len = 0 };
	int *frames = user;

	if (err) {
		if (f || (err != RIGPROTO_E_BADMSG && err != RIGPROTO_E_MSGSIZE))
			abort();
		return;
	}
	if (!f || f->len > RIGPROTO_MAX_PAYLOAD)
		abort();
	(*frames)++;
	if (rigproto_msg_decode(f, &a) < 0)
		return;
	rigproto_out_init(&out, sink_write, &s);
	if (rigproto_msg_encode(&out, &a) <= 0)
		abort(); /* everything the decoder accepts, the encoder must produce */
	{
		struct rigproto_frame g;
		uint8_t raw[RIGPROTO_MAX_RAW];
		size_t i = 0, o = 0;

		/* undo COBS by hand (independent of the decoder) */
		while (i < s.len && s.buf[i] != 0) {
			uint8_t code = s.buf[i++];

			for (uint8_t k = 1; k < code; k++)
				raw[o++] = s.buf[i++];
			if (code != 0xFF && s.buf[i] != 0)
				raw[o++] = 0;
		}
		if (o < 4)
			abort();
		g.type = raw[0];
		g.seq = raw[1];
		g.len = (uint8_t)(o - 4);
		g.payload = raw + 2;
		if (rigproto_msg_decode(&g, &b) < 0 || memcmp(&a, &b, sizeof(a)) != 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rigproto_ctx ctx;
	int frames = 0, good;
	size_t split = size ? data[0] % (size + 1) : 0;

	rigproto_init(&ctx, check_cb, &frames);
	good = rigproto_poll(&ctx, data, split);
	good += rigproto_poll(&ctx, data + split, size - split);
	if (good != frames || (uint32_t)frames != ctx.frames)
		abort();
	return 0;
}
