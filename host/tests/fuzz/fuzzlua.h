/* SPDX-License-Identifier: MIT */
/*
 * What the host fuzz targets share: the libFuzzer entry point's prototype, the input as a
 * file (the parsers under test take paths), and a Lua state set up as rigor sets up its
 * scripts, with a helper that runs a driver chunk and aborts on any raise, so a Lua error
 * the driver did not expect is a finding like a crash.
 */
#ifndef RIGOR_HOST_TESTS_FUZZ_FUZZLUA_H
#define RIGOR_HOST_TESTS_FUZZ_FUZZLUA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "rigl_lua.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* FUZZ_VERBOSE=1 makes a target say what it made of each input (for writing seeds). */
static inline bool fuzz_verbose(void)
{
	static int v = -1;

	if (v < 0)
		v = getenv("FUZZ_VERBOSE") != NULL;
	return v;
}

/* A scratch state directory (rig_ctx wants one; nothing is written for these targets). */
static inline void fuzz_state_dir(void)
{
	static char dir[] = "/tmp/rigor-fuzz-XXXXXX";

	if (!getenv("RIGOR_STATE_DIR") && mkdtemp(dir))
		setenv("RIGOR_STATE_DIR", dir, 1);
}

/* The context every Lua-side target runs on, over a scratch state directory. */
static inline struct rig_ctx *fuzz_ctx_new(void)
{
	struct rig_ctx *c;

	fuzz_state_dir();
	c = rig_ctx_new();
	if (!c)
		abort();
	return c;
}

/*
 * The input as an in-memory file, extended with zeros to @size_to if larger than the
 * input. Returns the descriptor (close it) and its /proc path in @path.
 */
static inline int fuzz_memfd(const uint8_t *data, size_t size, size_t size_to, char *path,
			     size_t len)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	size_t off = 0;

	if (fd < 0) {
		perror("memfd_create");
		abort();
	}
	while (off < size) {
		ssize_t n = write(fd, data + off, size - off);

		if (n <= 0) {
			perror("write");
			abort();
		}
		off += (size_t)n;
	}
	if (size_to > size && ftruncate(fd, (off_t)size_to) < 0) {
		perror("ftruncate");
		abort();
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

/* A Lua state as `rigor lua` makes it: standard libraries, rigor.core, rigor.http. */
static inline lua_State *fuzz_lua_new(struct rig_ctx *ctx)
{
	static volatile sig_atomic_t sig;
	lua_State *L = luaL_newstate();

	if (!L)
		abort();
	rigl_setup(L, ctx, FUZZ_LUA_DIR, &sig);
	return L;
}

/*
 * Coverage of Lua code for libFuzzer: the system liblua is not instrumented, so without
 * this the fuzzer cannot see which lines of lua/rigor/ an input reached. A line hook
 * counts (chunk, previous line, line) edges in libFuzzer's extra counters.
 */
static uint8_t fuzz_lua_edges[1 << 14] __attribute__((section("__libfuzzer_extra_counters")));

static inline void fuzz_lua_line(lua_State *L, lua_Debug *ar)
{
	static uint32_t prev;
	uint32_t h = 2166136261u;

	if (!lua_getinfo(L, "S", ar))
		return;
	for (const char *s = ar->short_src; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	h = (h ^ (uint32_t)ar->currentline) * 16777619u;
	fuzz_lua_edges[(h ^ prev) % sizeof(fuzz_lua_edges)]++;
	prev = h >> 1;
}

static inline void fuzz_lua_cover(lua_State *L)
{
	lua_sethook(L, fuzz_lua_line, LUA_MASKLINE, 0);
}

/*
 * Run @src (named @name) with the @nargs values on top of the stack as its `...`. A raise
 * is a finding: print it and abort.
 */
static inline void fuzz_lua_run(lua_State *L, const char *src, const char *name, int nargs)
{
	if (luaL_loadbufferx(L, src, strlen(src), name, "t") != LUA_OK) {
		fprintf(stderr, "fuzz driver does not compile: %s\n", lua_tostring(L, -1));
		abort();
	}
	lua_insert(L, -nargs - 1);
	if (lua_pcall(L, nargs, 0, 0) != LUA_OK) {
		const char *m = luaL_tolstring(L, -1, NULL);

		fprintf(stderr, "uncaught Lua error: %s\n", m);
		abort();
	}
}

#endif
