/* SPDX-License-Identifier: MIT */
/*
 * rigor.core: what the Lua test framework needs from C. Clock and sleep, case deadlines
 * and signals (a count hook raises an abort error, so even a busy Lua loop ends), and
 * JSON through jansson.
 */
#define _GNU_SOURCE 1 /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lrig.h"

#define RT_KEY "rigor.runtime"
#define ARRAY_MT "rigor.array"

/*
 * The runtime hangs off the state's extra space (copied into every coroutine created
 * later), not a registry lookup: the hook asks for it on every call.
 */
struct rigl_rt *rigl_rt(lua_State *L)
{
	struct rigl_rt *rt = *(struct rigl_rt **)lua_getextraspace(L);

	assert(rt);
	return rt;
}

static const char *rigl_sig_name(int sig)
{
	switch (sig) {
	case SIGTERM: return "SIGTERM";
	case SIGHUP: return "SIGHUP";
	case SIGQUIT: return "SIGQUIT";
	default: return "SIGINT";
	}
}

/* Push { rigor_abort = kind, message = msg }, printable through __tostring. */
static void push_abort(lua_State *L, const char *kind, const char *msg)
{
	lua_createtable(L, 0, 3);
	lua_pushstring(L, kind);
	lua_setfield(L, -2, "rigor_abort");
	lua_pushstring(L, msg);
	lua_setfield(L, -2, "message");
	luaL_setmetatable(L, "rigor.error");
}

int rigl_abort(lua_State *L, const char *kind, const char *msg)
{
	push_abort(L, kind, msg);
	return lua_error(L);
}

bool rigl_abort_due(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);

	return rt->armed && ((rt->sig && *rt->sig) || (rt->deadline && rig_now_ms() >= rt->deadline));
}

void rigl_check_abort(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);

	if (!rt->armed)
		return;
	if (rt->sig && *rt->sig) {
		char msg[64];

		snprintf(msg, sizeof(msg), "interrupted by %s", rigl_sig_name(*rt->sig));
		rigl_abort(L, rigl_sig_name(*rt->sig), msg);
	}
	if (rt->deadline && rig_now_ms() >= rt->deadline)
		rigl_abort_deadline(L);
}

int rigl_abort_deadline(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);
	char msg[96];

	snprintf(msg, sizeof(msg), "case timed out after %lld ms",
		 (long long)(rt->deadline - rt->armed_at));
	return rigl_abort(L, "timeout", msg);
}

int rigl_clamp(lua_State *L, int timeout_ms)
{
	struct rigl_rt *rt = rigl_rt(L);
	int64_t left;

	rigl_check_abort(L);
	if (!rt->armed || !rt->deadline)
		return timeout_ms;
	left = rt->deadline - rig_now_ms();
	if (timeout_ms < 0 || left < timeout_ms)
		return (int)(left > 0 ? left : 0);
	return timeout_ms;
}

/*
 * The hook runs on every call (so a loop around a slow C function is checked at each
 * call, not every 1000 instructions) and every 1000 instructions (a busy loop). Once an
 * abort is due it runs on every instruction: a case whose own pcall catches the abort
 * then raises again at the first instruction after that pcall, so no catch can keep it.
 * The only way out is disarming inside an xpcall message handler (hooks do not run
 * there), which is what the runner does.
 */
#define HOOK_MASK (LUA_MASKCALL | LUA_MASKCOUNT)

static void hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	if (rigl_abort_due(L)) {
		lua_sethook(L, hook, HOOK_MASK, 1);
		rigl_check_abort(L);
	}
}

static int c_now_ms(lua_State *L)
{
	lua_pushinteger(L, rig_now_ms());
	return 1;
}

static int c_wall_ms(lua_State *L)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	return 1;
}

static int c_sleep(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);
	int ms = (int)luaL_checkinteger(L, 1);

	rig_ctx_sleep(rt->ctx, rigl_clamp(L, ms));
	rigl_check_abort(L);
	return 0;
}

static int c_arm(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);

	rt->deadline = luaL_optinteger(L, 1, 0);
	rt->armed_at = rig_now_ms();
	rt->armed = true;
	rig_ctx_set_cancel(rt->ctx, rt->sig);
	rig_ctx_set_deadline(rt->ctx, rt->deadline);
	lua_sethook(L, hook, HOOK_MASK, 1000);
	return 0;
}

void rigl_watch_signals(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);

	rt->deadline = 0;
	rt->armed_at = rig_now_ms();
	rt->armed = true;
	lua_sethook(L, hook, HOOK_MASK, 1000);
}

static int c_disarm(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);

	rt->armed = false;
	rt->deadline = 0;
	rig_ctx_set_cancel(rt->ctx, NULL);
	rig_ctx_set_deadline(rt->ctx, 0);
	lua_sethook(L, NULL, 0, 0);
	return 0;
}

static int c_interrupted(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);

	if (rt->sig && *rt->sig)
		lua_pushstring(L, rigl_sig_name(*rt->sig));
	else
		lua_pushnil(L);
	return 1;
}

/* ---- os.exit, os.execute, io.popen, debug.sethook for scripts ---- */

/*
 * os.exit() would end the process without the runner's cleanup: reports unwritten, the
 * DUT left powered, a success exit for a run that never finished. It raises instead; the
 * runner fails the case, `rigor lua` exits with the code after its cleanup.
 */
static int c_exit(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);
	int code = EXIT_SUCCESS;
	char msg[160];

	if (lua_isboolean(L, 1))
		code = lua_toboolean(L, 1) ? EXIT_SUCCESS : EXIT_FAILURE;
	else if (!lua_isnoneornil(L, 1))
		code = (int)luaL_checkinteger(L, 1);
	rt->exit_called = true;
	rt->exit_code = code;
	snprintf(msg, sizeof(msg),
		 "os.exit(%d) called: a script ends by returning or raising an error, so that "
		 "cleanup runs and the reports are written", code);
	push_abort(L, "exit", msg);
	lua_pushinteger(L, code);
	lua_setfield(L, -2, "exit_code");
	return lua_error(L);
}

static int c_exit_called(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);

	/* taken once: the runner asks after each case */
	if (!rt->exit_called)
		return 0;
	rt->exit_called = false;
	lua_pushinteger(L, rt->exit_code);
	return 1;
}

/* Kill the child's process group: politely, then for good after 2 s. */
static void reap_group(pid_t pid, int *status)
{
	int64_t end = rig_now_ms() + 2000;

	kill(-pid, SIGTERM);
	while (waitpid(pid, status, WNOHANG) == 0) {
		if (rig_now_ms() >= end) {
			kill(-pid, SIGKILL);
			waitpid(pid, status, 0);
			break;
		}
		poll(NULL, 0, 20);
	}
	kill(-pid, SIGKILL);   /* whatever the shell left behind in its group */
}


/*
 * In a child of spawn() or start(), before exec: its own process group (so a kill of the
 * group reaches whatever it starts), @pdeath when rigor dies, and the signal dispositions
 * and mask of a fresh process rather than rigor's.
 */
static void child_setup(int pdeath)
{
	sigset_t none;

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, pdeath);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * spawn(cmd [, input [, capture]]): run `sh -c cmd` in its own process group, feeding
 * @input to its stdin (else it inherits ours) and, with @capture, collecting its stdout.
 * The wait is polled, so a signal to rigor or the case deadline kills the whole group and
 * raises the abort instead of being lost in system()'s ignored SIGINT. Returns what
 * os.execute returns, plus the output.
 */
/* One output pipe of a child: kept in malloc memory (no Lua call can raise while a child runs). */
struct exec_sink {
	int fd;
	char *buf;
	size_t len, got, max;
};

static void exec_drain(struct exec_sink *s)
{
	char tmp[4096];
	ssize_t r = read(s->fd, tmp, sizeof(tmp));

	if (r > 0) {
		size_t room = s->got >= s->max ? 0 : s->max - s->got;
		size_t keep = room < (size_t)r ? room : (size_t)r;
		char *nb = keep ? realloc(s->buf, s->len + keep) : s->buf;

		if (nb) {
			memcpy(nb + s->len, tmp, keep);
			s->buf = nb;
			s->len += keep;
		}
		s->got += (size_t)r;
	} else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
		close(s->fd);
		s->fd = -1;
	}
}

/* The parent's side of a child's stdin pipe @p once it has forked: the read end closed,
 * the write end non-blocking for pump_child(), or closed at once when there is nothing to
 * write (the child reads end of file). */
static void stdin_parent(int p[2], size_t inlen)
{
	close(p[0]);
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	if (inlen == 0) {
		close(p[1]);
		p[1] = -1;
	}
}

/* A child's stdin (what is left to write) and output pipes, for pump_child(). */
struct child_io {
	int infd;                  /* write end of its stdin pipe, non-blocking; -1 none */
	const char *in;
	size_t inlen, inoff;
	struct exec_sink *sink;    /* its output pipes */
	int nsink;
};

/*
 * Feeds @pid's stdin and drains its output pipes until it has exited and they are drained
 * (a background grandchild may hold a pipe open: it is not waited for). Ends early, with
 * the process group killed, when an abort is due (*killed; only while armed: disarmed
 * cleanup must still run its commands after a signal) or @dl passes (*timed_out).
 */
static void pump_child(lua_State *L, pid_t pid, struct child_io *io, struct rig_deadline dl,
		       int *status, bool *killed, bool *timed_out)
{
	bool exited = false;

	for (;;) {
		struct pollfd pf[4];
		nfds_t k = 0, nout;
		bool readable = false;

		if (rigl_abort_due(L)) {
			reap_group(pid, status);
			*killed = true;
			return;
		}
		if (!exited && waitpid(pid, status, WNOHANG) == pid)
			exited = true;
		if (!exited && rig_deadline_expired(dl)) {
			reap_group(pid, status);
			exited = *timed_out = true;
		}
		for (int i = 0; i < io->nsink; i++)
			if (io->sink[i].fd >= 0)
				pf[k++] = (struct pollfd){ .fd = io->sink[i].fd, .events = POLLIN };
		nout = k;
		if (io->infd >= 0 && !exited)
			pf[k++] = (struct pollfd){ .fd = io->infd, .events = POLLOUT };
		if (k == 0 && exited)
			return;
		if (poll(pf, k, exited ? 0 : 20) < 0 && errno != EINTR)
			return;
		for (nfds_t i = 0; i < nout; i++)
			readable |= pf[i].revents != 0;
		if (exited && !readable)
			return;
		for (nfds_t i = 0; i < k; i++) {
			if (!pf[i].revents)
				continue;
			if (i < nout) {
				for (int j = 0; j < io->nsink; j++)
					if (io->sink[j].fd == pf[i].fd)
						exec_drain(&io->sink[j]);
			} else {
				ssize_t w = write(io->infd, io->in + io->inoff, io->inlen - io->inoff);

				if (w > 0)
					io->inoff += (size_t)w;
				if ((w < 0 && errno != EAGAIN && errno != EINTR) ||
				    io->inoff >= io->inlen) {
					close(io->infd);
					io->infd = -1;
				}
			}
		}
	}
}

static int c_spawn(lua_State *L)
{
	const char *cmd = luaL_checkstring(L, 1);
	size_t inlen = 0;
	const char *in = luaL_optlstring(L, 2, NULL, &inlen);
	bool capture = lua_toboolean(L, 3);
	int inp[2] = { -1, -1 }, outp[2] = { -1, -1 }, status = 0;
	bool killed = false, timed_out = false;
	struct exec_sink sink;
	struct child_io io;
	pid_t pid;

	if ((in && pipe2(inp, O_CLOEXEC) < 0) || (capture && pipe2(outp, O_CLOEXEC) < 0)) {
		int e = errno;

		close(inp[0]);
		close(inp[1]);
		return luaL_error(L, "cannot run '%s': %s", cmd, strerror(e));
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(inp[0]); close(inp[1]); close(outp[0]); close(outp[1]);
		return luaL_error(L, "cannot run '%s': %s", cmd, strerror(e));
	}
	if (pid == 0) {
		child_setup(SIGKILL);
		if (in)
			dup2(inp[0], 0);
		if (capture)
			dup2(outp[1], 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);   /* also here: no window where a kill(-pid) misses the group */
	if (in)
		stdin_parent(inp, inlen);
	if (capture)
		close(outp[1]);
	sink = (struct exec_sink){ .fd = capture ? outp[0] : -1, .max = SIZE_MAX };
	io = (struct child_io){ .infd = inp[1], .in = in, .inlen = inlen, .sink = &sink,
				.nsink = 1 };
	pump_child(L, pid, &io, rig_deadline_start(-1), &status, &killed, &timed_out);
	if (sink.fd >= 0)
		close(sink.fd);
	if (io.infd >= 0)
		close(io.infd);
	lua_pushlstring(L, sink.buf ? sink.buf : "", sink.len);
	free(sink.buf);
	if (killed)
		rigl_check_abort(L);   /* raises: it was due */
	if (WIFEXITED(status)) {
		if (WEXITSTATUS(status) == 0)
			lua_pushboolean(L, 1);
		else
			lua_pushnil(L);
		lua_pushliteral(L, "exit");
		lua_pushinteger(L, WEXITSTATUS(status));
	} else {
		lua_pushnil(L);
		lua_pushliteral(L, "signal");
		lua_pushinteger(L, WTERMSIG(status));
	}
	lua_rotate(L, -4, -1);   /* output last */
	return 4;
}

/*
 * Argument 1, a list of strings {program, args...}, as a NULL-terminated argv pushed as a
 * userdata (the strings stay referenced by the table). Raises when it is empty or holds
 * something else.
 */
static const char **check_argv(lua_State *L)
{
	const char **av;
	int n;

	luaL_checktype(L, 1, LUA_TTABLE);
	n = (int)luaL_len(L, 1);
	luaL_argcheck(L, n >= 1, 1, "empty argv");
	av = lua_newuserdatauv(L, sizeof(*av) * (size_t)(n + 1), 0);
	for (int i = 1; i <= n; i++) {
		lua_geti(L, 1, i);
		av[i - 1] = luaL_checkstring(L, -1);
		lua_pop(L, 1);
	}
	av[n] = NULL;
	return av;
}

/*
 * start(argv, opts): run argv[1] (searched in PATH) with arguments argv[2..] in its own
 * process group and return its pid at once; it is collected by wait(). opts.out: a file
 * that takes its stdout and stderr (created or truncated); opts.env: variables to set in
 * its environment (false removes one); opts.stdin: nil reads /dev/null. Unlike spawn(),
 * nothing here waits, so a caller can keep several children running at once (rigor gate:
 * one per rig). Returns pid, or nil and a message.
 */
static int c_start(lua_State *L)
{
	int fd = -1, devnull;
	const char **av;
	const char *out;
	pid_t pid;

	av = check_argv(L);
	out = lua_istable(L, 2) && lua_getfield(L, 2, "out") == LUA_TSTRING ? lua_tostring(L, -1)
									 : NULL;
	if (out && (fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		lua_pushnil(L);
		lua_pushfstring(L, "cannot create '%s': %s", out, strerror(errno));
		return 2;
	}
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(fd);
		close(devnull);
		lua_pushnil(L);
		lua_pushfstring(L, "cannot run '%s': %s", av[0], strerror(e));
		return 2;
	}
	if (pid == 0) {
		child_setup(SIGTERM);
		if (devnull >= 0)
			dup2(devnull, 0);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		/* the environment is changed in the child only: lua_next is safe after fork() */
		if (lua_istable(L, 2) && lua_getfield(L, 2, "env") == LUA_TTABLE) {
			lua_pushnil(L);
			while (lua_next(L, -2)) {
				if (lua_type(L, -2) == LUA_TSTRING) {
					if (lua_toboolean(L, -1) && lua_type(L, -1) != LUA_TBOOLEAN)
						setenv(lua_tostring(L, -2), lua_tostring(L, -1), 1);
					else if (!lua_toboolean(L, -1))
						unsetenv(lua_tostring(L, -2));
				}
				lua_pop(L, 1);
			}
		}
		execvp(av[0], (char *const *)av);
		dprintf(fd >= 0 ? fd : 2, "cannot run '%s': %s\n", av[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);
	close(fd);
	close(devnull);
	lua_pushinteger(L, pid);
	return 1;
}

/*
 * wait(timeout_ms [, through_signal]): the next child of start() to end, within timeout_ms
 * (-1: until one does, 0: poll). Returns pid, "exit", code or pid, "signal", signo; nil
 * when none ended in time, there is no child, or rigor was signalled (core.interrupted()
 * says which) unless @through_signal: the wait for children already told to stop.
 */
static int c_wait(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);
	struct rig_deadline dl = rig_deadline_start((int)luaL_optinteger(L, 1, -1));
	bool through = lua_toboolean(L, 2);
	int status;

	for (;;) {
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid > 0) {
			lua_pushinteger(L, pid);
			if (WIFEXITED(status)) {
				lua_pushliteral(L, "exit");
				lua_pushinteger(L, WEXITSTATUS(status));
			} else {
				lua_pushliteral(L, "signal");
				lua_pushinteger(L, WTERMSIG(status));
			}
			return 3;
		}
		if (pid < 0 || (!through && rt->sig && *rt->sig) || rig_deadline_expired(dl))
			break;
		int left = rig_deadline_left_ms(dl);

		poll(NULL, 0, left < 0 || left > 50 ? 50 : left);
	}
	lua_pushnil(L);
	return 1;
}

/*
 * exec(argv [, opts]): run argv[1] (searched in PATH) with arguments argv[2..] in its own
 * process group, without a shell, and wait for it within opts.timeout_ms (-1 or nil: no
 * bound of its own; the case deadline and signals still end it). opts.input: bytes for its
 * stdin (else /dev/null); opts.max_out: bytes kept of each of stdout and stderr (default
 * 16 MiB; the rest is read and dropped, and .cut says so). Returns a table { out = stdout,
 * err = stderr, how = "exit"|"signal"|"timeout", code = N, cut = bool }; on a timeout the
 * group is killed (TERM, then KILL after 2 s) and code is nil. Raises if it cannot fork.
 */
static int c_exec(lua_State *L)
{
	int timeout_ms, inp[2] = { -1, -1 }, outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
	size_t inlen = 0, max_out = 16u << 20;
	const char *in = NULL, **av;
	struct exec_sink sinks[2], *so = &sinks[0], *se = &sinks[1];
	struct child_io io;
	bool killed = false, timed_out = false;
	int status = 0, devnull = -1;
	pid_t pid;

	if (lua_isnoneornil(L, 2)) {
		lua_settop(L, 1);
		lua_newtable(L);
	}
	luaL_checktype(L, 2, LUA_TTABLE);
	av = check_argv(L);
	lua_getfield(L, 2, "timeout_ms");
	timeout_ms = (int)luaL_optinteger(L, -1, -1);
	lua_getfield(L, 2, "max_out");
	max_out = (size_t)luaL_optinteger(L, -1, (lua_Integer)max_out);
	lua_getfield(L, 2, "input");
	in = luaL_optlstring(L, -1, NULL, &inlen);   /* stays on the stack until the end */

	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
	    (in && pipe2(inp, O_CLOEXEC) < 0) ||
	    (!in && (devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)) {
		int e = errno;

		close(outp[0]); close(outp[1]); close(errp[0]); close(errp[1]);
		close(inp[0]); close(inp[1]);
		return luaL_error(L, "cannot run '%s': %s", av[0], strerror(e));
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(outp[0]); close(outp[1]); close(errp[0]); close(errp[1]);
		close(inp[0]); close(inp[1]); close(devnull);
		return luaL_error(L, "cannot run '%s': %s", av[0], strerror(e));
	}
	if (pid == 0) {
		child_setup(SIGKILL);
		dup2(in ? inp[0] : devnull, 0);
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		execvp(av[0], (char *const *)av);
		dprintf(2, "cannot run '%s': %s\n", av[0], strerror(errno));
		_exit(127);
	}
	setpgid(pid, pid);   /* also here: no window where a kill(-pid) misses the group */
	close(outp[1]);
	close(errp[1]);
	close(devnull);
	if (in)
		stdin_parent(inp, inlen);
	sinks[0] = (struct exec_sink){ .fd = outp[0], .max = max_out };
	sinks[1] = (struct exec_sink){ .fd = errp[0], .max = max_out };
	io = (struct child_io){ .infd = inp[1], .in = in, .inlen = inlen, .sink = sinks,
				.nsink = 2 };
	pump_child(L, pid, &io, rig_deadline_start(timeout_ms), &status, &killed, &timed_out);
	inp[1] = io.infd;
	if (so->fd >= 0)
		close(so->fd);
	if (se->fd >= 0)
		close(se->fd);
	if (inp[1] >= 0)
		close(inp[1]);
	lua_createtable(L, 0, 5);
	lua_pushlstring(L, so->buf ? so->buf : "", so->len);
	free(so->buf);
	lua_pushlstring(L, se->buf ? se->buf : "", se->len);
	free(se->buf);
	lua_setfield(L, -3, "err");
	lua_setfield(L, -2, "out");
	if (killed)
		rigl_check_abort(L);   /* raises: it was due */
	lua_pushboolean(L, so->got > so->len || se->got > se->len);
	lua_setfield(L, -2, "cut");
	if (timed_out) {
		lua_pushliteral(L, "timeout");
	} else if (WIFEXITED(status)) {
		lua_pushinteger(L, WEXITSTATUS(status));
		lua_setfield(L, -2, "code");
		lua_pushliteral(L, "exit");
	} else {
		lua_pushinteger(L, WTERMSIG(status));
		lua_setfield(L, -2, "code");
		lua_pushliteral(L, "signal");
	}
	lua_setfield(L, -2, "how");
	return 1;
}

/* state_dir(): the directory rigor keeps rig state in (RIGOR_STATE_DIR or its default). */
static int c_state_dir(lua_State *L)
{
	lua_pushstring(L, rig_ctx_state_dir(rigl_rt(L)->ctx));
	return 1;
}

/* kill(pid, signame): signal the process group of a start() child ("TERM", "KILL", "INT"). */
static int c_kill(lua_State *L)
{
	static const char *const names[] = { "TERM", "KILL", "INT", NULL };
	static const int sigs[] = { SIGTERM, SIGKILL, SIGINT };
	pid_t pid = (pid_t)luaL_checkinteger(L, 1);
	int sig = sigs[luaL_checkoption(L, 2, "TERM", names)];

	luaL_argcheck(L, pid > 1, 1, "not a child's pid");
	lua_pushboolean(L, kill(-pid, sig) == 0 || errno == ESRCH);
	return 1;
}

/* os.execute(cmd): c_spawn without capture; os.execute() still asks for a shell. */
static int c_execute(lua_State *L)
{
	if (lua_isnoneornil(L, 1)) {
		lua_pushboolean(L, access("/bin/sh", X_OK) == 0);
		return 1;
	}
	lua_settop(L, 1);
	lua_pushnil(L);
	lua_pushboolean(L, 0);
	c_spawn(L);
	lua_pop(L, 1);   /* no output */
	return 3;
}

/* debug.sethook would remove the case deadline; it is refused while a case is armed. */
static int c_sethook(lua_State *L)
{
	if (rigl_rt(L)->armed)
		return luaL_error(L, "debug.sethook is not available to test cases: it would "
				  "remove the case deadline and signal handling");
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 0);
	return 0;
}

static int c_mkdir_p(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	size_t n = strlen(path);
	char *buf = lua_newuserdatauv(L, n + 1, 0);

	memcpy(buf, path, n + 1);
	for (char *s = buf + 1; ; s++) {
		if (*s == '/' || !*s) {
			char c = *s;

			*s = 0;
			if (mkdir(buf, 0755) < 0 && errno != EEXIST)
				return luaL_fileresult(L, 0, buf);
			*s = c;
			if (!c)
				break;
		}
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int c_isatty(lua_State *L)
{
	lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
	return 1;
}

static int c_hostname(lua_State *L)
{
	char buf[256];

	if (gethostname(buf, sizeof(buf)) < 0)
		strcpy(buf, "localhost");
	buf[sizeof(buf) - 1] = 0;
	lua_pushstring(L, buf);
	return 1;
}

/* ---- JSON ---- */

/* The json_t tree must not leak when to_json raises: it lives in a boxed userdata. */
struct jbox {
	json_t *j;
};

static int jbox_gc(lua_State *L)
{
	struct jbox *b = lua_touserdata(L, 1);

	json_decref(b->j);
	b->j = NULL;
	return 0;
}

static struct jbox *push_jbox(lua_State *L)
{
	struct jbox *b = lua_newuserdatauv(L, sizeof(*b), 0);

	b->j = NULL;
	if (luaL_newmetatable(L, "rigor.jbox")) {
		lua_pushcfunction(L, jbox_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	return b;
}

static json_t *to_json(lua_State *L, int idx, int depth);

static bool is_array(lua_State *L, int idx)
{
	lua_Integer n = 0;
	bool marked = false;

	if (lua_getmetatable(L, idx)) {
		luaL_getmetatable(L, ARRAY_MT);
		marked = lua_rawequal(L, -1, -2);
		lua_pop(L, 2);
	}
	if (marked)
		return true;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1) {
			lua_pop(L, 1);
			return false;
		}
		n++;
	}
	return n > 0 && n == (lua_Integer)lua_rawlen(L, idx);
}

static json_t *to_json(lua_State *L, int idx, int depth)
{
	idx = lua_absindex(L, idx);
	if (depth > 64)
		luaL_error(L, "json: nesting too deep (a cycle?)");
	luaL_checkstack(L, 6, "json too deep");   /* box, key, value, key copy, is_array */
	switch (lua_type(L, idx)) {
	case LUA_TNIL: return json_null();
	case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		return lua_isinteger(L, idx) ? json_integer(lua_tointeger(L, idx))
					     : json_real(lua_tonumber(L, idx));
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		json_t *j = json_stringn(s, n);

		if (!j)
			luaL_error(L, "json: string is not valid UTF-8");
		return j;
	}
	case LUA_TLIGHTUSERDATA:
		if (!lua_touserdata(L, idx))
			return json_null();
		break;
	case LUA_TTABLE: {
		/* boxed while it fills: a raise further down must not leak what is built */
		struct jbox *b = push_jbox(L);
		json_t *c;

		if (is_array(L, idx)) {
			lua_Integer n = (lua_Integer)lua_rawlen(L, idx);

			b->j = json_array();
			for (lua_Integer i = 1; i <= n; i++) {
				lua_rawgeti(L, idx, i);
				json_array_append_new(b->j, to_json(L, -1, depth + 1));
				lua_pop(L, 1);
			}
		} else {
			b->j = json_object();
			lua_pushnil(L);
			while (lua_next(L, idx)) {
				const char *k;

				lua_pushvalue(L, -2);
				k = lua_tostring(L, -1);
				if (k)
					json_object_set_new(b->j, k, to_json(L, -2, depth + 1));
				lua_pop(L, 2);
			}
		}
		c = b->j;
		b->j = NULL;
		lua_pop(L, 1);
		return c;
	}
	default:
		break;
	}
	luaL_error(L, "json: cannot encode a %s", luaL_typename(L, idx));
	return NULL;
}

static int c_json_encode(lua_State *L)
{
	int indent = (int)luaL_optinteger(L, 2, 0);
	struct jbox *b;
	char *s;

	lua_settop(L, 2);
	b = push_jbox(L);
	b->j = to_json(L, 1, 0);
	s = json_dumps(b->j, JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_INDENT(indent));
	if (!s)
		return luaL_error(L, "json: out of memory");
	lua_pushstring(L, s);
	free(s);
	return 1;
}

void rigl_push_json(lua_State *L, json_t *j, bool drop_nulls)
{
	luaL_checkstack(L, 4, "json too deep");
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;

		lua_createtable(L, 0, (int)json_object_size(j));
		json_object_foreach(j, k, v) {
			if (drop_nulls && json_is_null(v))
				continue;
			rigl_push_json(L, v, drop_nulls);
			lua_setfield(L, -2, k);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;

		lua_createtable(L, (int)json_array_size(j), 0);
		json_array_foreach(j, i, v) {
			rigl_push_json(L, v, drop_nulls);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		luaL_setmetatable(L, ARRAY_MT);
		break;
	}
	case JSON_STRING: lua_pushlstring(L, json_string_value(j), json_string_length(j)); break;
	case JSON_INTEGER: lua_pushinteger(L, json_integer_value(j)); break;
	case JSON_REAL: lua_pushnumber(L, json_real_value(j)); break;
	case JSON_TRUE: lua_pushboolean(L, 1); break;
	case JSON_FALSE: lua_pushboolean(L, 0); break;
	case JSON_NULL:
		if (drop_nulls)
			lua_pushnil(L);
		else
			lua_pushlightuserdata(L, NULL);
		break;
	}
}

static int c_json_decode(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	json_error_t e;
	struct jbox *b = push_jbox(L);

	b->j = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	if (!b->j) {
		lua_pushnil(L);
		lua_pushfstring(L, "json: %s at line %d column %d", e.text, e.line, e.column);
		return 2;
	}
	rigl_push_json(L, b->j, false);
	return 1;
}

static int err_tostring(lua_State *L)
{
	lua_getfield(L, 1, "message");
	return 1;
}

static const luaL_Reg corelib[] = {
	{ "now_ms", c_now_ms },
	{ "wall_ms", c_wall_ms },
	{ "sleep", c_sleep },
	{ "arm", c_arm },
	{ "disarm", c_disarm },
	{ "interrupted", c_interrupted },
	{ "exit_called", c_exit_called },
	{ "spawn", c_spawn },
	{ "start", c_start },
	{ "wait", c_wait },
	{ "kill", c_kill },
	{ "exec", c_exec },
	{ "state_dir", c_state_dir },
	{ "mkdir_p", c_mkdir_p },
	{ "isatty", c_isatty },
	{ "hostname", c_hostname },
	{ "json_encode", c_json_encode },
	{ "json_decode", c_json_decode },
	{ NULL, NULL },
};

static int luaopen_rigor_core(lua_State *L)
{
	luaL_newlib(L, corelib);
	luaL_newmetatable(L, ARRAY_MT);
	lua_setfield(L, -2, "array_mt");
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "null");
	lua_pushstring(L, RIGOR_VERSION);
	lua_setfield(L, -2, "version");
	{
		/* the running binary, so rigor.gate starts `rigor run` of the same build */
		char exe[4096];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

		if (n > 0) {
			exe[n] = 0;
			lua_pushstring(L, exe);
			lua_setfield(L, -2, "exe");
		}
	}
	return 1;
}

void rigl_setup(lua_State *L, struct rig_ctx *ctx, const char *luadir, volatile sig_atomic_t *sig)
{
	struct rigl_rt *rt = lua_newuserdatauv(L, sizeof(*rt), 0);

	memset(rt, 0, sizeof(*rt));
	rt->ctx = ctx;
	rt->sig = sig;
	*(struct rigl_rt **)lua_getextraspace(L) = rt;
	lua_setfield(L, LUA_REGISTRYINDEX, RT_KEY);   /* keeps it alive */
	luaL_openlibs(L);
	luaL_newmetatable(L, "rigor.error");
	lua_pushcfunction(L, err_tostring);
	lua_setfield(L, -2, "__tostring");
	lua_pop(L, 1);
	rigl_register_rig(L);
	lua_getglobal(L, "package");
	lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", luadir, luadir);
	lua_getfield(L, -2, "path");
	lua_concat(L, 2);
	lua_setfield(L, -2, "path");
	lua_getfield(L, -1, "preload");
	lua_pushcfunction(L, luaopen_rigor_core);
	lua_setfield(L, -2, "rigor.core");
	lua_pushcfunction(L, luaopen_rigor_http);
	lua_setfield(L, -2, "rigor.http");
	lua_pop(L, 2);

	lua_getglobal(L, "os");
	lua_pushcfunction(L, c_exit);
	lua_setfield(L, -2, "exit");
	lua_pushcfunction(L, c_execute);
	lua_setfield(L, -2, "execute");
	lua_pop(L, 1);
	lua_getglobal(L, "debug");
	lua_getfield(L, -1, "sethook");
	lua_pushcclosure(L, c_sethook, 1);
	lua_setfield(L, -2, "sethook");
	lua_pop(L, 1);
	/* io.popen over spawn, in Lua (rigor/proc.lua) */
	lua_getglobal(L, "require");
	lua_pushliteral(L, "rigor.proc");
	if (lua_pcall(L, 1, 0, 0) != LUA_OK)
		lua_pop(L, 1);   /* an old module tree: io.popen stays the stock one */
}

int rigl_exit_code(lua_State *L)
{
	struct rigl_rt *rt = rigl_rt(L);

	return rt->exit_called ? rt->exit_code : -1;
}
