// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the console expect matcher: rig.console:expect() / read() in
 * host/lua/lrig.c over the console buffer of host/src/rig.c (fill, peek, consume, the
 * keep-the-newest-half trim). A fake console back-end ("fuzz", put beside the real
 * registry with --wrap=rig_backend_find) delivers the input's stream in its chunks, and a
 * fake clock (--wrap=rig_now_ms) moves only when the console waits, so a run is
 * deterministic and never sleeps.
 *
 * Input: <n> then (n % 4 + 1) times <op> <len> <pattern bytes>, then the console stream as
 * chunks <len> <repeat> <bytes>; a chunk is delivered (repeat < 128 ? repeat + 1 :
 * (repeat - 127) * 64) times, as many times in one read as fit, up to 320 KiB in all, so
 * the buffer trim (at 256 KiB) is reached.
 * op bits 0-1: expect, expect plain, read, clear; bits 2-3: timeout 0, 50, 10000, -1 ms.
 *
 * Patterns are trusted (the test author writes them) and Lua's matcher backtracks: a
 * pattern with several quantifiers over a long output takes polynomial time by design.
 * So inputs whose Lua (non-plain) patterns have more than one quantifier character are
 * rejected, and with any Lua pattern the stream stops at 16 KiB; plain patterns of up to
 * 8 bytes get the whole 320 KiB.
 *
 * Findings: memory errors, UB, a raise other than a bad pattern or the console running
 * dry, a plain match that is not the pattern, a failure without RIG_E_TIMEOUT.
 */
#include "fuzzlua.h"
#include "internal.h"

#define STREAM_MAX (320u << 10)
#define STREAM_MAX_PATTERN (16u << 10)

struct stream {
	const uint8_t *p;   /* chunks not started yet */
	size_t n;
	const uint8_t *chunk;
	size_t clen, cpos, reps;
	size_t total, max;
};

static struct stream S;
static int64_t now_ms = 1000000;

int64_t __real_rig_now_ms(void);
int64_t __wrap_rig_now_ms(void);
const struct rig_backend *__real_rig_backend_find(enum rig_role role, const char *name);
const struct rig_backend *__wrap_rig_backend_find(enum rig_role role, const char *name);

int64_t __wrap_rig_now_ms(void)
{
	return now_ms;
}

static bool next_chunk(struct stream *s)
{
	if (s->total >= s->max)
		return false;   /* a read returns > 0 bytes or times out, never 0 */
	while (s->reps == 0 || s->cpos == s->clen) {
		if (s->reps > 0) {
			s->reps--;
			s->cpos = 0;
			if (s->reps > 0 && s->clen > 0)
				continue;
		}
		if (s->n < 2 || s->total >= s->max)
			return false;
		s->clen = s->p[0] < s->n - 2 ? s->p[0] : s->n - 2;
		s->reps = s->p[1] < 128 ? (size_t)s->p[1] + 1 : (size_t)(s->p[1] - 127) * 64;
		s->chunk = s->p + 2;
		s->cpos = 0;
		s->p += 2 + s->clen;
		s->n -= 2 + s->clen;
		if (s->clen == 0)
			s->reps = 0;
	}
	return true;
}

/* One read returns the rest of the current chunk, and more repeats of it if they fit. */
static int fake_read(struct rig_part *p, void *buf, size_t len, int timeout_ms)
{
	size_t got = 0;

	if (!next_chunk(&S)) {
		if (timeout_ms < 0)
			return rig_part_fail(p, RIG_E_NODEV, "fuzz console: no more output, ever");
		now_ms += timeout_ms;
		return RIG_E_TIMEOUT;
	}
	do {
		size_t n = S.clen - S.cpos;

		if (n > len - got)
			n = len - got;
		if (n > S.max - S.total)
			n = S.max - S.total;
		memcpy((char *)buf + got, S.chunk + S.cpos, n);
		S.cpos += n;
		S.total += n;
		got += n;
		if (S.cpos == S.clen && S.reps > 1) {
			S.reps--;
			S.cpos = 0;
		}
	} while (got < len && S.cpos < S.clen && S.total < S.max);
	return (int)got;
}

static int fake_write(struct rig_part *p, const void *buf, size_t len, int timeout_ms)
{
	(void)p;
	(void)buf;
	(void)timeout_ms;
	return (int)len;
}

static const struct rig_console_ops fake_ops = { .read = fake_read, .write = fake_write };
static const struct rig_backend fake_console = {
	.role = RIG_ROLE_CONSOLE,
	.name = "fuzz",
	.help = "fuzz input",
	.ops.console = &fake_ops,
};

const struct rig_backend *__wrap_rig_backend_find(enum rig_role role, const char *name)
{
	if (role == RIG_ROLE_CONSOLE && !strcmp(name, "fuzz"))
		return &fake_console;
	return __real_rig_backend_find(role, name);
}

static const char driver[] =
	"local rig, ops = ...\n"
	"local timeouts = { [0] = 0, 50, 10000, -1 }\n"
	"for _, op in ipairs(ops) do\n"
	"  local kind, tmo = op.op % 4, timeouts[(op.op >> 2) % 4]\n"
	"  if kind <= 1 then\n"
	"    local plain = kind == 1\n"
	"    local r = table.pack(pcall(rig.console.expect, rig.console, op.pat, tmo, plain))\n"
	"    if not r[1] then\n"
	"      local m = tostring(type(r[2]) == 'table' and r[2].message or r[2])\n"
	"      if not (m:find('pattern', 1, true) or m:find('no more output', 1, true)\n"
	"              or m:find('capture', 1, true) or m:find('%f', 1, true)) then\n"
	"        error('expect raised: ' .. m, 0)\n"
	"      end\n"
	"      return\n"
	"    elseif r[2] == nil then\n"
	"      assert(type(r[3]) == 'string' and r[4] == 'RIG_E_TIMEOUT', 'failure without timeout')\n"
	"    elseif plain then\n"
	"      assert(r[2] == op.pat and r.n == 2, 'plain match is not the pattern')\n"
	"    end\n"
	"  elseif kind == 2 then\n"
	"    local ok, d, msg, code = pcall(rig.console.read, rig.console, tmo)\n"
	"    if not ok then\n"
	"      assert(tostring(d.message or d):find('no more output', 1, true), tostring(d.message or d))\n"
	"      return\n"
	"    end\n"
	"    assert(type(d) == 'string' or (d == nil and code == 'RIG_E_TIMEOUT'), 'read result')\n"
	"  else\n"
	"    rig.console:clear()\n"
	"    assert(rig.console:read(0) == nil, 'clear left output')\n"
	"  end\n"
	"end\n";

static struct rig_ctx *ctx;
static struct rig_desc *desc;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ctx = fuzz_ctx_new();
	desc = rig_desc_new(ctx, "fuzz-rig");
	if (!desc || rig_desc_set_str(desc, -1, "name", "fuzz", 1) < 0 ||
	    rig_desc_add_part(desc, "console", NULL, "fuzz", 2) < 0 || rig_desc_validate(desc)) {
		fprintf(stderr, "fuzz rig: %s\n", desc ? rig_desc_problems(desc) : "no memory");
		abort();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	struct rig *rig;
	lua_State *L;
	size_t max = STREAM_MAX;
	int nops;

	if (size < 1 || size > 64 << 10)
		return -1;
	if (rig_open(ctx, desc, &rig) < 0) {
		fprintf(stderr, "rig_open failed\n");
		abort();
	}
	L = fuzz_lua_new(ctx);
	rigl_push_rig(L, rig);
	nops = 1 + *p++ % 4;
	lua_createtable(L, nops, 0);
	for (int i = 1; i <= nops && end - p >= 2; i++) {
		size_t len = p[1] < end - p - 2 ? p[1] : (size_t)(end - p - 2);
		int quant = 0;

		if (p[0] % 4 == 0) {
			for (size_t k = 0; k < len; k++)
				quant += p[2 + k] == '*' || p[2 + k] == '+' || p[2 + k] == '-' ||
					 p[2 + k] == '?';
			if (quant > 1) {
				lua_close(L);
				rig_close(rig);
				return -1;
			}
		}
		if ((p[0] % 4 == 0 || (p[0] % 4 == 1 && len > 8)))
			max = STREAM_MAX_PATTERN;
		lua_createtable(L, 0, 2);
		lua_pushinteger(L, p[0]);
		lua_setfield(L, -2, "op");
		lua_pushlstring(L, (const char *)p + 2, len);
		lua_setfield(L, -2, "pat");
		lua_rawseti(L, -2, i);
		p += 2 + len;
	}
	memset(&S, 0, sizeof(S));
	S.p = p;
	S.n = (size_t)(end - p);
	S.max = max;
	fuzz_lua_run(L, driver, "=fuzz_expect", 2);
	lua_close(L);
	rig_close(rig);
	return 0;
}
