// SPDX-License-Identifier: MIT
/*
 * Drives rigfw-sim over its link socket (rigproto) and its control socket (text), checking
 * outputs, injected telemetry and faults, resets, the hardware watchdog, the pty link and a
 * clean exit on SIGTERM. Prints TAP. RIGFW_SIM overrides the simulator path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "rigclient.h"

#ifndef RIGFW_SIM_PATH
#define RIGFW_SIM_PATH "build/firmware/host/rigfw-sim"
#endif

#define T 2000

static char dir[] = "/tmp/rigfw-sim-XXXXXX";
static char link_path[128], ctl_path[128], state_path[128], pty_path[128];
static pid_t pids[2] = { -1, -1 };
static int ctl_fd = -1;
static struct rigclient c;

static pid_t spawn(const char *sim, char *const extra[])
{
	pid_t pid = fork();

	if (pid == 0) {
		char *argv[16];
		int n = 0, fd = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0)
			dup2(fd, 1);
		argv[n++] = (char *)sim;
		while (*extra)
			argv[n++] = *extra++;
		argv[n] = NULL;
		execv(sim, argv);
		_exit(127);
	}
	return pid;
}

/* SIGTERM and wait; returns the exit status or -1 */
static int terminate(pid_t *pid)
{
	int status;

	if (*pid <= 0)
		return -1;
	kill(*pid, SIGTERM);
	for (int i = 0; i < 300; i++) {
		if (waitpid(*pid, &status, WNOHANG) == *pid) {
			*pid = -1;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
		usleep(10000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, &status, 0);
	*pid = -1;
	return -1;
}

static void cleanup(void)
{
	terminate(&pids[0]);
	terminate(&pids[1]);
	unlink(link_path);
	unlink(ctl_path);
	unlink(state_path);
	unlink(pty_path);
	rmdir(dir);
}

static void on_signal(int sig)
{
	(void)sig;
	cleanup();
	_exit(1);
}

/* one control command, one reply line */
static bool ctl(const char *cmd, char *reply, size_t size)
{
	char buf[512];
	size_t len = 0;

	if (dprintf(ctl_fd, "%s\n", cmd) < 0)
		return false;
	while (len < sizeof(buf) - 1) {
		struct pollfd p = { .fd = ctl_fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, T) <= 0)
			return false;
		n = read(ctl_fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return false;
		len += (size_t)n;
		buf[len] = '\0';
		if (strchr(buf, '\n')) {
			*strchr(buf, '\n') = '\0';
			snprintf(reply, size, "%s", buf);
			return true;
		}
	}
	return false;
}

/* value of key in the `get` line, or NULL */
static const char *get_field(const char *key)
{
	static char line[512];
	static char val[64];
	char pat[40];
	const char *p;

	if (!ctl("get", line, sizeof(line)) || strncmp(line, "ok ", 3))
		return NULL;
	snprintf(pat, sizeof(pat), " %s=", key);
	p = strstr(line, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	snprintf(val, sizeof(val), "%.*s", (int)strcspn(p, " "), p);
	return val;
}

static bool field_is(const char *key, const char *want)
{
	const char *v = get_field(key);

	return v && !strcmp(v, want);
}

static bool wait_field(const char *key, const char *want, int timeout_ms)
{
	for (int w = 0;; w += 10) {
		if (field_is(key, want))
			return true;
		if (w >= timeout_ms)
			return false;
		usleep(10000);
	}
}

static int req(struct rigproto_msg *m, struct rigproto_msg *r)
{
	return rigclient_request(&c, m, r, T) < 0 ? -1 : r->status;
}

static int power_set(bool on)
{
	struct rigproto_msg m = { .type = RIGPROTO_POWER_SET, .u.power.on = on }, r;

	return req(&m, &r);
}

static int mux_set(uint8_t side)
{
	struct rigproto_msg m = { .type = RIGPROTO_MUX_SET, .u.mux.side = side }, r;

	return req(&m, &r);
}

/*
 * Telemetry until a reading of @mv, @ma comes back (2 s at most): the core samples every
 * 10 ms, so the first reply after a change may still hold the sample before it.
 */
static bool telemetry_is(uint32_t mv, int32_t ma, struct rigproto_msg *r)
{
	for (int i = 0; i < 200; i++) {
		struct rigproto_msg m = { .type = RIGPROTO_TELEMETRY };

		if (req(&m, r) == RIGPROTO_ST_OK && r->u.telemetry.samples > 0 &&
		    r->u.telemetry.mv == mv && r->u.telemetry.ma == ma)
			return true;
		usleep(10000);
	}
	return false;
}

static bool ok_reply(const char *cmd)
{
	char r[256];

	return ctl(cmd, r, sizeof(r)) && !strcmp(r, "ok");
}

int main(void)
{
	const char *sim = getenv("RIGFW_SIM") ? getenv("RIGFW_SIM") : RIGFW_SIM_PATH;
	char link_arg[150], ctl_arg[150], pty_arg[150], reply[256];
	struct rigproto_msg m, r, ev;
	int fd, rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(link_path, sizeof(link_path), "%s/link.sock", dir);
	snprintf(ctl_path, sizeof(ctl_path), "%s/ctl.sock", dir);
	snprintf(state_path, sizeof(state_path), "%s/state", dir);
	snprintf(pty_path, sizeof(pty_path), "%s/tty", dir);
	snprintf(link_arg, sizeof(link_arg), "unix:%s", link_path);
	snprintf(ctl_arg, sizeof(ctl_arg), "unix:%s", ctl_path);
	snprintf(pty_arg, sizeof(pty_arg), "pty:%s", pty_path);
	atexit(cleanup);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);

	pids[0] = spawn(sim, (char *const[]){ "--link", link_arg, "--control", ctl_arg, "--state",
					     state_path, NULL });
	fd = rigclient_connect_unix(link_path, 5000);
	ctl_fd = rigclient_connect_unix(ctl_path, 5000);
	if (!tap_ok(fd >= 0 && ctl_fd >= 0, "rigfw-sim started, link and control connected")) {
		printf("Bail out! cannot start '%s'\n", sim);
		return 1;
	}
	rigclient_init(&c, fd);

	/* the boot event went out before we connected; a reset from the control side shows it */
	tap_ok(field_is("power", "0") && field_is("mux", "off") && field_is("sd_power", "0") &&
		       field_is("buttons", "0000"),
	       "safe at start: power off, mux off, card unpowered, buttons released");
	tap_ok(ok_reply("reset power_on") && rigclient_wait(&c, RIGPROTO_EVT_BOOT, T, &ev) == 0 &&
		       ev.u.boot.reset_reason == RIGPROTO_RESET_POWER_ON,
	       "control reset: boot event with reason power_on");

	m = (struct rigproto_msg){ .type = RIGPROTO_HELLO, .u.hello_req.version = RIGPROTO_VERSION };
	tap_ok(req(&m, &r) == RIGPROTO_ST_OK && r.u.hello.version == RIGPROTO_VERSION,
	       "hello handshake");

	/* The INA219 is behind the power switch: nothing to measure while it is open. */
	tap_ok(telemetry_is(0, 0, &r), "power off: telemetry reads 0 mV, 0 mA (%u mV, %d mA)",
	       r.u.telemetry.mv, r.u.telemetry.ma);

	tap_ok(mux_set(RIGPROTO_MUX_DUT) == RIGPROTO_ST_OK && field_is("mux", "dut") &&
		       field_is("sd_power", "1"),
	       "mux -> dut visible on the control socket");
	tap_ok(power_set(true) == RIGPROTO_ST_OK && field_is("power", "1") && field_is("led", "1"),
	       "power on visible (power=1, led=1)");
	tap_ok(telemetry_is(5000, 100, &r),
	       "power on: telemetry reads the nominal 5000 mV, 100 mA (%u mV, %d mA)",
	       r.u.telemetry.mv, r.u.telemetry.ma);
	tap_ok(mux_set(RIGPROTO_MUX_HOST) == RIGPROTO_ST_INTERLOCK && field_is("mux", "dut"),
	       "mux -> host while powered: interlock");
	{
		FILE *f = fopen(state_path, "r");
		char line[512] = "";

		if (f) {
			if (!fgets(line, sizeof(line), f))
				line[0] = '\0';
			fclose(f);
		}
		tap_ok(strstr(line, "power=1 mux=dut") != NULL, "state file tracks outputs");
	}

	/* telemetry injection */
	tap_ok(ok_reply("set mv=12000 ma=800"), "inject 12 V / 800 mA");
	for (int i = 0; i < 200; i++) { /* until a sample taken after the injection shows up */
		usleep(10000);
		m = (struct rigproto_msg){ .type = RIGPROTO_TELEMETRY };
		rc = req(&m, &r);
		if (rc == RIGPROTO_ST_OK && r.u.telemetry.mv == 12000 && r.u.telemetry.samples > 0)
			break;
	}
	tap_ok(rc == RIGPROTO_ST_OK && r.u.telemetry.mv == 12000 &&
		       r.u.telemetry.ma == 800 && r.u.telemetry.samples > 0,
	       "telemetry reads back the injected values (%u mV, %d mA, %u samples)",
	       r.u.telemetry.mv, r.u.telemetry.ma, r.u.telemetry.samples);

	/* overcurrent */
	rigclient_flush(&c);
	tap_ok(ok_reply("set ma=3000") && rigclient_wait(&c, RIGPROTO_EVT_OVERCURRENT, T, &ev) == 0 &&
		       ev.u.overcurrent.ma == 3000 && wait_field("power", "0", 500),
	       "overcurrent: event and power cut");
	tap_ok(telemetry_is(0, 0, &r), "power cut: telemetry reads 0 mV, 0 mA (%u mV, %d mA)",
	       r.u.telemetry.mv, r.u.telemetry.ma);
	ok_reply("set ma=100");
	tap_ok(power_set(true) == RIGPROTO_ST_FAULT, "power on refused while overcurrent latched");
	tap_ok(rigclient_simple(&c, RIGPROTO_FAULT_CLEAR, T) == RIGPROTO_ST_OK &&
		       power_set(true) == RIGPROTO_ST_OK && field_is("power", "1"),
	       "fault clear, power on");

	/* sensor fault */
	rc = ok_reply("sensor fail") ? -1 : -2;
	for (int i = 0; rc == -1 && i < 200; i++) {
		usleep(10000);
		if (rigclient_simple(&c, RIGPROTO_TELEMETRY, T) == RIGPROTO_ST_IO)
			rc = 0;
	}
	tap_ok(rc == 0, "sensor failure: telemetry i/o error");
	ok_reply("sensor ok");

	/* buttons */
	m = (struct rigproto_msg){ .type = RIGPROTO_BUTTON };
	m.u.button = (struct rigproto_button){ .index = 1, .action = RIGPROTO_BTN_PRESS, .ms = 1000 };
	tap_ok(req(&m, &r) == RIGPROTO_ST_OK && field_is("buttons", "0100") &&
		       wait_field("buttons", "0000", 4000),
	       "button 1 press 1000 ms seen and released");

	/* host watchdog */
	m = (struct rigproto_msg){ .type = RIGPROTO_CONFIG_SET };
	m.u.config = (struct rigproto_config){ 2500, 200, 50 };
	rigclient_flush(&c);
	tap_ok(req(&m, &r) == RIGPROTO_ST_OK && rigclient_wait(&c, RIGPROTO_EVT_HOST_WDT, T, &ev) == 0 &&
		       wait_field("power", "0", 500) && field_is("mux", "off"),
	       "host watchdog: event, power off, mux off");
	m.u.config.host_wdt_ms = 0;
	req(&m, &r);
	rigclient_simple(&c, RIGPROTO_FAULT_CLEAR, T);

	/* hardware watchdog: a hung main loop resets the board */
	mux_set(RIGPROTO_MUX_DUT);
	power_set(true);
	rigclient_flush(&c);
	tap_ok(ok_reply("hang 3000") && rigclient_wait(&c, RIGPROTO_EVT_BOOT, 5000, &ev) == 0 &&
		       ev.u.boot.reset_reason == RIGPROTO_RESET_WATCHDOG &&
		       field_is("reason", "watchdog") && field_is("power", "0") &&
		       field_is("mux", "off"),
	       "hung core: hardware watchdog reset, outputs safe, reason watchdog");
	tap_ok(ok_reply("hang 100") && (usleep(300000), 1) &&
		       rigclient_simple(&c, RIGPROTO_STATUS, T) == RIGPROTO_ST_OK &&
		       field_is("reason", "watchdog"),
	       "short stall below the watchdog timeout: no reset");

	/* software reset */
	rigclient_flush(&c);
	tap_ok(rigclient_simple(&c, RIGPROTO_RESET, T) == RIGPROTO_ST_OK &&
		       rigclient_wait(&c, RIGPROTO_EVT_BOOT, T, &ev) == 0 &&
		       ev.u.boot.reset_reason == RIGPROTO_RESET_SOFTWARE,
	       "reset command: boot event with reason software");

	tap_ok(ctl("frobnicate", reply, sizeof(reply)) && !strncmp(reply, "err ", 4) &&
		       ctl("set mv=abc", reply, sizeof(reply)) && !strncmp(reply, "err ", 4),
	       "control errors answered with err");
	tap_ok(c.rx_errors == 0 && c.bad_msgs == 0, "no corrupt frames from the simulator");

	/* pty link on a second instance */
	pids[1] = spawn(sim, (char *const[]){ "--link", pty_arg, NULL });
	{
		int tty = -1;
		struct termios t;
		struct rigclient pc;

		for (int i = 0; i < 200 && tty < 0; i++) {
			tty = open(pty_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
			if (tty < 0)
				usleep(10000);
		}
		if (tty >= 0 && tcgetattr(tty, &t) == 0) {
			cfmakeraw(&t);
			tcsetattr(tty, TCSANOW, &t);
		}
		rigclient_init(&pc, tty);
		m = (struct rigproto_msg){ .type = RIGPROTO_HELLO,
					   .u.hello_req.version = RIGPROTO_VERSION };
		tap_ok(tty >= 0 && rigclient_request(&pc, &m, &r, T) == 0 &&
			       r.status == RIGPROTO_ST_OK,
		       "pty link: hello answered");
		if (tty >= 0)
			close(tty);
	}
	tap_ok(terminate(&pids[1]) == 0 && access(pty_path, F_OK) != 0,
	       "pty instance exits 0 on SIGTERM and removes its symlink");

	close(fd);
	close(ctl_fd);
	tap_ok(terminate(&pids[0]) == 0 && access(link_path, F_OK) != 0 &&
		       access(ctl_path, F_OK) != 0,
	       "exits 0 on SIGTERM and removes its sockets");
	return tap_done();
}
