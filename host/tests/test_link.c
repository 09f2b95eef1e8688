/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the byte-stream links (host/src/link.c, link/unix.c, link/tty.c): the URI
 * schemes, bytes both ways, the peer going away, timeouts and the cancel flag. The serial
 * link (libserialport) is tested from the CLI by serial.sh, over a pty and a fake sysfs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pty.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "fixtures/rigfx.h"

static int setup(void **state)
{
	*state = rigfx_new("link");
	return 0;
}

static int teardown(void **state)
{
	rigfx_release(*state);
	return 0;
}

static int listen_at(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static void test_bad_uri(void **state)
{
	struct fx *f = *state;
	struct rig_link *l = (struct rig_link *)&l;
	char why[256];

	assert_int_equal(rig_link_open(f->ctx, "carrier-pigeon:x", NULL, 0, &l, why, sizeof(why)),
			 RIG_E_INVAL);
	assert_null(l);
	assert_string_equal(why, "link 'carrier-pigeon:x': expected serial:PATH|usb_serial=X, "
			    "tty:PATH or unix:PATH");
	assert_int_equal(rig_link_open(f->ctx, "/dev/ttyUSB0", NULL, 0, &l, why, sizeof(why)),
			 RIG_E_INVAL);
	assert_int_equal(rig_link_open(f->ctx, "serial:frobnicate=1", NULL, 0, &l, why, sizeof(why)),
			 RIG_E_INVAL);
	assert_non_null(strstr(why, "expected a /dev path or usb_serial="));
	rig_link_close(NULL);
}

static void test_unix(void **state)
{
	struct fx *f = *state;
	const struct rig_link_opts o = { .what = "the test peer" };
	struct rig_link *l;
	char path[128], uri[160], why[256], buf[16];
	int lfd, peer;
	size_t done;

	snprintf(path, sizeof(path), "%s/sock", f->dir);
	snprintf(uri, sizeof(uri), "unix:%s", path);
	/* nothing listens: worth retrying, and the message names the peer */
	assert_int_equal(rig_link_open(f->ctx, uri, &o, 0, &l, why, sizeof(why)), RIG_E_NODEV);
	assert_non_null(strstr(why, "cannot connect to the test peer at '"));

	lfd = listen_at(path);
	assert_int_equal(rig_link_open(f->ctx, uri, &o, 0, &l, why, sizeof(why)), 0);
	assert_string_equal(rig_link_name(l), path);
	peer = accept(lfd, NULL, NULL);
	assert_true(peer >= 0);
	assert_true(rig_link_get_fd(l) >= 0);

	assert_int_equal(rig_link_write(l, "ping", 4, &done, 1000), 4);
	assert_int_equal(done, 4);
	assert_int_equal(read(peer, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);

	/* nothing to read: the timeout ends the wait */
	assert_int_equal(rig_link_read(l, buf, sizeof(buf), 30), RIG_E_TIMEOUT);
	assert_int_equal(write(peer, "pong", 4), 4);
	assert_int_equal(rig_link_read(l, buf, sizeof(buf), 1000), 4);
	assert_memory_equal(buf, "pong", 4);

	/* the peer leaves: reads and writes say so */
	close(peer);
	assert_int_equal(rig_link_read(l, buf, sizeof(buf), 1000), RIG_E_NODEV);
	assert_string_equal(rig_link_gone_why(l), "end of file");
	rig_link_close(l);

	/* cancelled while waiting for bytes */
	{
		volatile sig_atomic_t cancel = 0;

		assert_int_equal(rig_link_open(f->ctx, uri, &o, 0, &l, why, sizeof(why)), 0);
		peer = accept(lfd, NULL, NULL);
		rig_ctx_set_cancel(f->ctx, &cancel);
		cancel = 1;
		assert_int_equal(rig_link_read(l, buf, sizeof(buf), -1), RIG_E_INTR);
		assert_int_equal(rig_link_write(l, "x", 1, NULL, -1), 1);   /* no wait: sent */
		rig_ctx_set_cancel(f->ctx, NULL);
		rig_link_close(l);
		close(peer);
	}
	close(lfd);
}

static void test_tty(void **state)
{
	struct fx *f = *state;
	struct rig_link *l;
	char name[64], uri[96], why[256], buf[16];
	int master, slave;

	assert_int_equal(openpty(&master, &slave, name, NULL, NULL), 0);
	snprintf(uri, sizeof(uri), "tty:%s", name);
	assert_int_equal(rig_link_open(f->ctx, uri, NULL, 0, &l, why, sizeof(why)), 0);
	close(slave);
	assert_int_equal(write(master, "hello", 5), 5);
	assert_int_equal(rig_link_read(l, buf, sizeof(buf), 1000), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(rig_link_write(l, "ok", 2, NULL, 1000), 2);
	assert_int_equal(read(master, buf, sizeof(buf)), 2);
	assert_int_equal(rig_link_read(l, buf, sizeof(buf), 20), RIG_E_TIMEOUT);
	/* the other end hangs up */
	close(master);
	assert_int_equal(rig_link_read(l, buf, sizeof(buf), 1000), RIG_E_NODEV);
	rig_link_close(l);

	assert_int_equal(rig_link_open(f->ctx, "tty:/nonexistent/tty", NULL, 0, &l, why, sizeof(why)),
			 RIG_E_NODEV);
	assert_non_null(strstr(why, "cannot open serial port '/nonexistent/tty'"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_uri, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tty, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
