/* SPDX-License-Identifier: MIT */
/*
 * tty: a serial device or pty through termios, raw. For ttys libserialport will not open
 * (a pty of QEMU's or of a test); the serial link is the one for USB-UART adapters.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "../internal.h"

struct tty_priv {
	int fd;
};

static const struct { int baud; speed_t speed; } speeds[] = {
	{ 1200, B1200 }, { 2400, B2400 }, { 4800, B4800 }, { 9600, B9600 }, { 19200, B19200 },
	{ 38400, B38400 }, { 57600, B57600 }, { 115200, B115200 }, { 230400, B230400 },
	{ 460800, B460800 }, { 921600, B921600 }, { 1000000, B1000000 }, { 1500000, B1500000 },
	{ 2000000, B2000000 }, { 3000000, B3000000 },
};

static int apply(int fd, const struct rig_line_settings *s, char *why, size_t whylen)
{
	static const tcflag_t sizes[] = { CS5, CS6, CS7, CS8 };
	struct termios tio;
	size_t i;

	/* Not a tty (a fifo in a test): nothing to set. */
	if (tcgetattr(fd, &tio) < 0)
		return 0;
	for (i = 0; i < RIG_ARRAY_SIZE(speeds) && speeds[i].baud != s->baud; i++)
		;
	if (i == RIG_ARRAY_SIZE(speeds) || s->bits < 5 || s->bits > 8 ||
	    s->parity == RIG_PARITY_MARK || s->parity == RIG_PARITY_SPACE ||
	    s->flow == RIG_FLOW_DTRDSR) {
		snprintf(why, whylen, "a tty: link cannot set %d baud, %d bits, mark/space parity or DTR/DSR flow; use a serial: link",
			 s->baud, s->bits);
		return RIG_E_NOTSUP;
	}
	cfmakeraw(&tio);
	cfsetispeed(&tio, speeds[i].speed);
	cfsetospeed(&tio, speeds[i].speed);
	tio.c_cflag = (tio.c_cflag & ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS)) |
		      sizes[s->bits - 5] | CLOCAL | CREAD;
	if (s->parity != RIG_PARITY_NONE)
		tio.c_cflag |= PARENB | (s->parity == RIG_PARITY_ODD ? PARODD : 0);
	if (s->stopbits == 2)
		tio.c_cflag |= CSTOPB;
	if (s->flow == RIG_FLOW_RTSCTS)
		tio.c_cflag |= CRTSCTS;
	if (s->flow == RIG_FLOW_XONXOFF)
		tio.c_iflag |= IXON | IXOFF;
	tcsetattr(fd, TCSANOW, &tio);
	return 0;
}

static int tty_open(struct rig_link *l, const char *target, const struct rig_link_opts *o,
		    struct rig_deadline d, char *why, size_t whylen)
{
	static const struct rig_line_settings dflt = RIG_LINE_DEFAULT;
	struct tty_priv *t = rig_link_priv(l);
	int e, rc;

	t->fd = open(target, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (t->fd < 0) {
		e = errno;
		snprintf(why, whylen, "cannot open serial port '%s': %s", target, strerror(e));
		return e == ENOENT || e == ENODEV || e == ENXIO ? RIG_E_NODEV : RIG_E_IO;
	}
	rc = apply(t->fd, o->line ? o->line : &dflt, why, whylen);
	if (rc < 0) {
		close(t->fd);
		t->fd = -1;
	}
	return rc;
}

static int tty_read(struct rig_link *l, void *buf, size_t len)
{
	struct tty_priv *t = rig_link_priv(l);
	ssize_t n = read(t->fd, buf, len);

	if (n > 0)
		return (int)n;
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	/* Raw mode (VMIN 1) with O_NONBLOCK: 0 bytes is a hangup, not "nothing yet". */
	return rig_link_set_gone(l, n < 0 ? strerror(errno) : "hangup");
}

static int tty_write(struct rig_link *l, const void *buf, size_t len)
{
	struct tty_priv *t = rig_link_priv(l);
	ssize_t n = write(t->fd, buf, len);

	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	return rig_link_set_gone(l, strerror(errno));
}

static int tty_get_fd(const struct rig_link *l)
{
	return ((struct tty_priv *)rig_link_priv(l))->fd;
}

static void tty_close(struct rig_link *l)
{
	struct tty_priv *t = rig_link_priv(l);

	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

const struct rig_link_ops rig_link_tty = {
	.scheme = "tty",
	.syntax = "tty:PATH",
	.priv_size = sizeof(struct tty_priv),
	.open = tty_open,
	.read = tty_read,
	.write = tty_write,
	.get_fd = tty_get_fd,
	.close = tty_close,
};
