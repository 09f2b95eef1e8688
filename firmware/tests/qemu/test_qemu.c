// SPDX-License-Identifier: MIT
/*
 * Runs the real STM32F1 firmware image in qemu-system-arm -M stm32vldiscovery, talks
 * rigproto to it over USART1 (a unix socket chardev) and checks the GPIO register writes
 * that QEMU logs with -d unimp (GPIO is an unimplemented device on that machine, so every
 * BSRR write shows up in the log). Prints TAP.
 *
 * Pins (docs/hardware/rig-board.md): PB0 DUT power (high = on), PB1 mux select (high =
 * host), PB12 mux OE# (low = connected), PB13 SD power, PA0..PA3 buttons (low = pressed).
 *
 * Environment: RIGFW_ELF overrides the image path; QEMU overrides the emulator binary.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rigclient.h"

#ifndef RIGFW_ELF_PATH
#define RIGFW_ELF_PATH "build/firmware/stm32f1/rigfw.elf"
#endif

#define T 2000 /* ms: generous reply timeout */

static pid_t qemu_pid = -1;
static char dir[] = "/tmp/rigfw-qemu-XXXXXX";
static char sock_path[128], log_path[128], out_path[128];
static struct rigclient c;

/* ---- GPIO state from the unimp log ---- */

static uint32_t odr[5]; /* GPIOA..E output data as written through BSRR/BRR/ODR */
static unsigned int falls[5][16], rises[5][16]; /* level changes seen in the log */
static long log_off;

static void odr_write(int p, uint32_t v)
{
	for (int b = 0; b < 16; b++) {
		uint32_t was = (odr[p] >> b) & 1, now = (v >> b) & 1;

		if (was && !now)
			falls[p][b]++;
		if (!was && now)
			rises[p][b]++;
	}
	odr[p] = v;
}

static void log_sync(void)
{
	FILE *f = fopen(log_path, "r");
	char line[256];

	if (!f)
		return;
	if (fseek(f, log_off, SEEK_SET) < 0) {
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char port;
		unsigned int size, off, val;

		if (!strchr(line, '\n'))
			break; /* partial line: read it next time */
		log_off += (long)strlen(line);
		if (sscanf(line, "GPIO%c: unimplemented device write (size %u, offset 0x%x, value 0x%x)",
			   &port, &size, &off, &val) != 4 || port < 'A' || port > 'E')
			continue;
		if (off == 0x10) /* BSRR: reset bits, then set bits (set wins) */
			odr_write(port - 'A', (odr[port - 'A'] & ~(val >> 16)) | (val & 0xFFFF));
		else if (off == 0x14) /* BRR */
			odr_write(port - 'A', odr[port - 'A'] & ~(val & 0xFFFF));
		else if (off == 0x0C) /* ODR */
			odr_write(port - 'A', val & 0xFFFF);
	}
	fclose(f);
}

static int pin(char port, int bit)
{
	log_sync();
	return (int)((odr[port - 'A'] >> bit) & 1);
}

/* the log is written by another process: give it a moment to land */
static bool wait_pin(char port, int bit, int level, int timeout_ms)
{
	for (int waited = 0;; waited += 5) {
		if (pin(port, bit) == level)
			return true;
		if (waited >= timeout_ms)
			return false;
		usleep(5000);
	}
}

/* ---- process handling ---- */

static void stop_qemu(void)
{
	int status;

	if (qemu_pid <= 0)
		return;
	kill(qemu_pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(qemu_pid, &status, WNOHANG) == qemu_pid) {
			qemu_pid = -1;
			return;
		}
		usleep(10000);
	}
	kill(qemu_pid, SIGKILL);
	waitpid(qemu_pid, &status, 0);
	qemu_pid = -1;
}

static void cleanup(void)
{
	stop_qemu();
	unlink(sock_path);
	unlink(log_path);
	unlink(out_path);
	rmdir(dir);
}

static void on_signal(int sig)
{
	(void)sig;
	cleanup();
	_exit(1);
}

static bool start_qemu(const char *elf)
{
	const char *qemu = getenv("QEMU") ? getenv("QEMU") : "qemu-system-arm";
	char chardev[200];

	snprintf(chardev, sizeof(chardev), "socket,id=u0,path=%s,server=on,wait=on", sock_path);
	qemu_pid = fork();
	if (qemu_pid < 0)
		return false;
	if (qemu_pid == 0) {
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp(qemu, qemu, "-M", "stm32vldiscovery", "-kernel", elf, "-display", "none",
		       "-monitor", "none", "-d", "unimp", "-D", log_path, "-chardev", chardev,
		       "-serial", "chardev:u0", (char *)NULL);
		_exit(127);
	}
	return true;
}

/* ---- helpers ---- */

struct capture {
	uint8_t *buf;
	size_t len;
};

static int capture_write(void *user, const uint8_t *buf, size_t len)
{
	struct capture *cap = user;

	memcpy(cap->buf + cap->len, buf, len);
	cap->len += len;
	return 0;
}

static int mux_set(uint8_t side)
{
	struct rigproto_msg m = { .type = RIGPROTO_MUX_SET, .u.mux.side = side }, r;

	return rigclient_request(&c, &m, &r, T) < 0 ? -1 : r.status;
}

static int power_set(bool on)
{
	struct rigproto_msg m = { .type = RIGPROTO_POWER_SET, .u.power.on = on }, r;

	return rigclient_request(&c, &m, &r, T) < 0 ? -1 : r.status;
}

static int button(uint8_t i, uint8_t action, uint16_t ms)
{
	struct rigproto_msg m = { .type = RIGPROTO_BUTTON }, r;

	m.u.button = (struct rigproto_button){ .index = i, .action = action, .ms = ms };
	return rigclient_request(&c, &m, &r, T) < 0 ? -1 : r.status;
}

static int config_set(uint16_t oc, uint32_t wdt, uint16_t settle)
{
	struct rigproto_msg m = { .type = RIGPROTO_CONFIG_SET }, r;

	m.u.config = (struct rigproto_config){ oc, wdt, settle };
	return rigclient_request(&c, &m, &r, T) < 0 ? -1 : r.status;
}

static bool status(struct rigproto_msg *r)
{
	struct rigproto_msg m = { .type = RIGPROTO_STATUS };

	return rigclient_request(&c, &m, r, T) == 0 && r->status == RIGPROTO_ST_OK;
}

int main(int argc, char **argv)
{
	const char *elf = getenv("RIGFW_ELF") ? getenv("RIGFW_ELF") : RIGFW_ELF_PATH;
	struct rigproto_msg m, r, ev;
	int fd, rc;

	(void)argc;
	(void)argv;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (access(elf, R_OK) != 0) {
		printf("1..0 # SKIP no firmware image '%s'\n", elf);
		return 0;
	}
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/uart.sock", dir);
	snprintf(log_path, sizeof(log_path), "%s/unimp.log", dir);
	snprintf(out_path, sizeof(out_path), "%s/qemu.out", dir);
	atexit(cleanup);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);

	fd = start_qemu(elf) ? rigclient_connect_unix(sock_path, 10000) : -1;
	if (!tap_ok(fd >= 0, "qemu stm32vldiscovery started, USART1 socket connected")) {
		printf("Bail out! cannot start qemu\n");
		return 1;
	}
	rigclient_init(&c, fd);

	/* --- boot --- */
	tap_ok(rigclient_wait(&c, RIGPROTO_EVT_BOOT, 5000, &ev) == 0 &&
		       ev.u.boot.version == RIGPROTO_VERSION,
	       "boot event (ready banner) received");
	tap_ok(wait_pin('B', 12, 1, 1000) && pin('B', 0) == 0 && pin('B', 13) == 0 &&
		       pin('A', 0) && pin('A', 1) && pin('A', 2) && pin('A', 3),
	       "safe at boot: DUT unpowered (PB0=0), mux disabled (PB12=1), card unpowered, "
	       "buttons released");

	m = (struct rigproto_msg){ .type = RIGPROTO_HELLO, .u.hello_req.version = RIGPROTO_VERSION };
	rc = rigclient_request(&c, &m, &r, T);
	tap_ok(rc == 0 && r.status == RIGPROTO_ST_OK && r.u.hello.version == RIGPROTO_VERSION &&
		       r.u.hello.buttons == 4 && (r.u.hello.caps & RIGPROTO_CAP_MUX),
	       "hello handshake");
	m.u.hello_req.version = 7;
	rc = rigclient_request(&c, &m, &r, T);
	tap_ok(rc == 0 && r.status == RIGPROTO_ST_VERSION, "hello with unsupported version refused");

	tap_ok(status(&r) && !r.u.status.power && r.u.status.mux == RIGPROTO_MUX_OFF &&
		       r.u.status.build_id[0],
	       "status: power off, mux off, build id '%s'", r.u.status.build_id);

	/* --- config --- */
	tap_ok(config_set(1500, 0, 20) == RIGPROTO_ST_OK, "config set");
	m = (struct rigproto_msg){ .type = RIGPROTO_CONFIG_GET };
	tap_ok(rigclient_request(&c, &m, &r, T) == 0 && r.u.config.oc_limit_ma == 1500 &&
		       r.u.config.mux_settle_ms == 20 && r.u.config.host_wdt_ms == 0,
	       "config get returns what was set");

	/* --- mux and power with interlocks --- */
	tap_ok(mux_set(RIGPROTO_MUX_DUT) == RIGPROTO_ST_OK && wait_pin('B', 12, 0, 500) &&
		       pin('B', 13) == 1 && pin('B', 1) == 0,
	       "mux -> dut: PB12 OE# low, PB13 card power on, PB1 select dut");
	tap_ok(power_set(true) == RIGPROTO_ST_OK && wait_pin('B', 0, 1, 500), "power on: PB0 high");
	tap_ok(mux_set(RIGPROTO_MUX_HOST) == RIGPROTO_ST_INTERLOCK && pin('B', 1) == 0 &&
		       pin('B', 12) == 0,
	       "mux -> host while powered: interlock, mux untouched");
	tap_ok(power_set(false) == RIGPROTO_ST_OK && wait_pin('B', 0, 0, 500), "power off: PB0 low");
	tap_ok(mux_set(RIGPROTO_MUX_HOST) == RIGPROTO_ST_OK && wait_pin('B', 1, 1, 500) &&
		       pin('B', 12) == 0,
	       "mux -> host: PB1 high, connected");
	tap_ok(power_set(true) == RIGPROTO_ST_INTERLOCK && pin('B', 0) == 0,
	       "power on while card at host: interlock, PB0 stays low");
	tap_ok(mux_set(RIGPROTO_MUX_OFF) == RIGPROTO_ST_OK && wait_pin('B', 12, 1, 500) &&
		       pin('B', 13) == 0,
	       "mux -> off: PB12 high, card unpowered");

	/* --- buttons --- */
	{
		/* count edges, so a press that is already over when the log is read still counts */
		unsigned int f0, r0;
		bool ok;

		log_sync();
		f0 = falls[0][0];
		r0 = rises[0][0];
		ok = button(0, RIGPROTO_BTN_PRESS, 100) == RIGPROTO_ST_OK;
		for (int i = 0; ok && i < 400 && !(falls[0][0] > f0 && rises[0][0] > r0); i++) {
			usleep(5000);
			log_sync();
		}
		tap_ok(ok && falls[0][0] == f0 + 1 && rises[0][0] == r0 + 1 && pin('A', 0) == 1,
		       "button 0 pressed 100 ms: PA0 pulled low once, then released");
	}
	tap_ok(button(3, RIGPROTO_BTN_HOLD, 0) == RIGPROTO_ST_OK && wait_pin('A', 3, 0, 500),
	       "button 3 hold: PA3 low");
	tap_ok(button(3, RIGPROTO_BTN_RELEASE, 0) == RIGPROTO_ST_OK && wait_pin('A', 3, 1, 500),
	       "button 3 release: PA3 high");

	/* --- telemetry without a sensor (QEMU has no I2C) --- */
	tap_ok(rigclient_simple(&c, RIGPROTO_TELEMETRY, T) == RIGPROTO_ST_IO &&
		       status(&r) && (r.u.status.faults & RIGPROTO_FAULT_SENSOR),
	       "telemetry: i/o error and sensor fault flag (no INA219 on this machine)");
	{
		/* the encoder refuses unknown types, so frame it by hand */
		uint8_t buf[RIGPROTO_MAX_FRAME];
		struct capture cap = { buf, 0 };
		struct rigproto_out out;

		rigproto_out_init(&out, capture_write, &cap);
		rigproto_frame_write(&out, 0x3E, 77, NULL, 0);
		rigclient_send_raw(&c, buf, cap.len);
		tap_ok(rigclient_wait(&c, 0x3E | RIGPROTO_REPLY, T, &r) == 0 && r.seq == 77 &&
			       r.status == RIGPROTO_ST_UNKNOWN_CMD,
		       "unknown command refused");
	}

	/* --- resync --- */
	{
		uint8_t junk[200];
		uint8_t frame[RIGPROTO_MAX_FRAME];
		int n = 0;

		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)(i * 37 + 1) | 1; /* no zero bytes */
		rigclient_flush(&c);
		rigclient_send_raw(&c, junk, sizeof(junk));
		rigclient_send_raw(&c, "", 1);
		tap_ok(rigclient_wait(&c, RIGPROTO_EVT_RX_ERROR, T, &ev) == 0 &&
			       ev.u.rx_error.status == RIGPROTO_ST_TOO_LONG,
		       "garbage: rx error event (too long)");
		tap_ok(status(&r), "resynchronised after garbage");

		/* a frame with one byte dropped, then an intact one */
		{
			struct rigproto_out out;
			struct capture cap = { frame, 0 };
			uint8_t cut[RIGPROTO_MAX_FRAME];

			m = (struct rigproto_msg){ .type = RIGPROTO_POWER_GET, .seq = 200 };
			rigproto_out_init(&out, capture_write, &cap);
			n = rigproto_msg_encode(&out, &m);
			memcpy(cut, frame, 2);
			memcpy(cut + 2, frame + 3, (size_t)n - 3);
			rigclient_flush(&c);
			rigclient_send_raw(&c, cut, (size_t)n - 1);
			rigclient_send_raw(&c, frame, (size_t)n);
			tap_ok(rigclient_wait(&c, RIGPROTO_EVT_RX_ERROR, T, &ev) == 0 &&
				       rigclient_wait(&c, RIGPROTO_POWER_GET | RIGPROTO_REPLY, T,
						      &r) == 0 &&
				       r.seq == 200,
			       "dropped byte: rx error event, next frame answered");
		}
	}

	/* --- pipelining --- */
	{
		uint8_t first = 0;
		bool ok = true;

		rigclient_flush(&c);
		for (int i = 0; i < 20; i++) {
			m = (struct rigproto_msg){ .type = RIGPROTO_STATUS };
			ok &= rigclient_send(&c, &m) == 0;
			if (i == 0)
				first = m.seq;
		}
		for (int i = 0; ok && i < 20; i++)
			ok = rigclient_wait(&c, RIGPROTO_STATUS | RIGPROTO_REPLY, T, &r) == 0 &&
			     r.seq == (uint8_t)(first + i);
		tap_ok(ok, "20 pipelined requests answered in order");
	}

	/* --- host watchdog --- */
	tap_ok(mux_set(RIGPROTO_MUX_DUT) == RIGPROTO_ST_OK && power_set(true) == RIGPROTO_ST_OK &&
		       config_set(1500, 300, 20) == RIGPROTO_ST_OK && wait_pin('B', 0, 1, 500),
	       "armed host watchdog (300 ms) with DUT powered");
	tap_ok(rigclient_wait(&c, RIGPROTO_EVT_HOST_WDT, 3000, &ev) == 0 &&
		       ev.u.host_wdt.timeout_ms == 300 && wait_pin('B', 0, 0, 500) &&
		       wait_pin('B', 12, 1, 500),
	       "host silent: watchdog event, PB0 low, mux disabled");
	tap_ok(power_set(true) == RIGPROTO_ST_FAULT && pin('B', 0) == 0,
	       "power on refused while the fault is latched");
	tap_ok(config_set(1500, 0, 20) == RIGPROTO_ST_OK &&
		       rigclient_simple(&c, RIGPROTO_FAULT_CLEAR, T) == RIGPROTO_ST_OK &&
		       power_set(true) == RIGPROTO_ST_OK && wait_pin('B', 0, 1, 500),
	       "fault cleared, power on again");

	/* --- reset --- */
	rigclient_flush(&c);
	tap_ok(rigclient_simple(&c, RIGPROTO_RESET, T) == RIGPROTO_ST_OK &&
		       rigclient_wait(&c, RIGPROTO_EVT_BOOT, 5000, &ev) == 0,
	       "reset command: reply, then a new boot event");
	tap_ok(wait_pin('B', 0, 0, 500) && pin('B', 12) == 1 && status(&r) && !r.u.status.power &&
		       r.u.status.uptime_ms < 5000,
	       "after reset: DUT unpowered, mux disabled, uptime restarted");
	tap_ok(c.rx_errors == 0 && c.bad_msgs == 0, "no corrupt frames from the firmware");

	close(fd);
	stop_qemu();
	tap_ok(qemu_pid == -1, "qemu terminated");
	return tap_done();
}
