/* SPDX-License-Identifier: MIT */
/*
 * The GPIO holder: its wire protocol, and the line table it shares with the gpio back-end
 * (drivers/gpio_lines.c). Not installed.
 *
 * The holder (host/holder/rigor-gpio-holder.c, installed beside rigor) owns the line
 * requests of one rig, so that a line stays driven after the command that set it has
 * exited. The gpio back-end (drivers/gpio_v1.c) is its client: it connects to the rig's
 * socket and starts the program when nobody answers. docs/hardware/gpio.md has the design.
 *
 * Invocation:
 *   rigor-gpio-holder --socket PATH --pid-file PATH [--idle-ms N]
 * The holder takes an exclusive flock() on the pid file for its whole life (a second
 * holder for the same rig exits at once, with status 0), replaces a stale socket, listens,
 * writes its pid into the pid file and serves until it has been idle with every line at
 * its rest level for N ms (-1: never), its socket is removed or replaced, or SIGTERM.
 *
 * Wire protocol: a SOCK_SEQPACKET unix socket, one datagram each way per request, at
 * most RIG_GPIO_MSG_MAX bytes, fields separated by tabs:
 *   request  S chip name offset open_drain rest value     set a line (requested on first use)
 *            G chip name offset open_drain rest           get a line
 *            P                                            ping: value is the holder's pid
 *            Q                                            quit
 *   reply    code value message
 * name is empty for a line given by offset. code is 0 or a negative enum rig_err, and
 * message says what failed in the words an in-process call would use.
 */
#ifndef RIGOR_HOST_GPIO_HOLDER_H
#define RIGOR_HOST_GPIO_HOLDER_H

#include <stdbool.h>
#include <stddef.h>

#define RIG_GPIO_HOLDER_PROG "rigor-gpio-holder"
#define RIG_GPIO_MSG_MAX 512
#define RIG_GPIO_REST_NEVER (-1)    /* the line must stay held (mux select without enable line) */
#define RIG_GPIO_REST_ANY 2         /* the level does not matter once the other lines rest */

/* One line as the driver asks for it. The strings are the caller's. */
struct rig_gpio_line {
	const char *chip;   /* chip name, path, number or label */
	const char *name;   /* line name; NULL: by offset */
	int offset;
	bool open_drain;
	int rest;           /* the safe level 0/1, RIG_GPIO_REST_ANY or RIG_GPIO_REST_NEVER */
};

enum rig_gpio_op {
	RIG_GPIO_SET = 'S',
	RIG_GPIO_GET = 'G',
	RIG_GPIO_PING = 'P',
	RIG_GPIO_QUIT = 'Q',
};

/*
 * Encode a request into @buf (RIG_GPIO_MSG_MAX bytes are enough). @s is ignored for ping
 * and quit, @value for all but set. Returns the length, or RIG_E_INVAL if it does not fit.
 */
int rig_gpio_req_format(char *buf, size_t len, enum rig_gpio_op op, const struct rig_gpio_line *s,
			int value);
/*
 * Decode a request in place (@buf is NUL-terminated and cut up; @s points into it).
 * @retval 0 decoded
 * @retval RIG_E_PROTO not a request
 */
int rig_gpio_req_parse(char *buf, enum rig_gpio_op *op, struct rig_gpio_line *s, int *value);
/* Encode a reply. Returns the length (a long @msg is cut short). */
int rig_gpio_rep_format(char *buf, size_t len, int code, int value, const char *msg);
/*
 * Decode a reply in place; *@msg points into @buf.
 * @retval 0 decoded (the holder's code is in *@code)
 * @retval RIG_E_PROTO garbled
 */
int rig_gpio_rep_parse(char *buf, int *code, int *value, const char **msg);

/*
 * The line table: lines requested through libgpiod v1, kept until released. Used by the
 * holder and by the back-end in process (in_process = true) or to read a line as is.
 * Not thread-safe; one owner.
 */
struct rig_gpio_table;
/* A new empty table, or NULL on ENOMEM. Free with rig_gpio_table_free(). */
struct rig_gpio_table *rig_gpio_table_new(void);
/* Release every line and free the table. NULL is a no-op. */
void rig_gpio_table_free(struct rig_gpio_table *t);
/*
 * Drive @s to @value, requesting it as an output on first use (with @value as the initial
 * level: no glitch) and again when its drive mode changed. Does not block.
 * @retval 0 driven
 * @retval RIG_E_NODEV, RIG_E_NOENT no such chip or line; RIG_E_BUSY another consumer
 *         holds it; RIG_E_IO, RIG_E_NOMEM; @msg says which
 */
int rig_gpio_table_set(struct rig_gpio_table *t, const struct rig_gpio_line *s, int value,
		       char *msg, size_t len);
/*
 * Read @s: through its request when held, else through a short "as is" request that
 * changes neither direction nor value. Codes as rig_gpio_table_set().
 */
int rig_gpio_table_get(struct rig_gpio_table *t, const struct rig_gpio_line *s, int *value,
		       char *msg, size_t len);
/* Whether every held line is at its rest level (a REST_NEVER line never is). */
bool rig_gpio_table_at_rest(const struct rig_gpio_table *t);
/*
 * Look @s up without requesting it, to fail early on a missing chip or line name.
 * Returns 0 or a code as rig_gpio_table_set(), with @msg set.
 */
int rig_gpio_line_check(const struct rig_gpio_line *s, char *msg, size_t len);

#endif /* RIGOR_HOST_GPIO_HOLDER_H */
