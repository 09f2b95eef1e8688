/* SPDX-License-Identifier: MIT */
/**
 * @file rigclient.h
 * @brief Minimal blocking rigproto client for the firmware integration tests (QEMU and
 *        rigfw-sim). Not the host driver: no retries, just enough to script a session.
 */
#ifndef RIGOR_FIRMWARE_TESTS_RIGCLIENT_H
#define RIGOR_FIRMWARE_TESTS_RIGCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rigproto.h"

#define RIGCLIENT_QUEUE 64

struct rigclient {
	int fd;
	struct rigproto_ctx rx;
	uint8_t seq;
	struct rigproto_msg q[RIGCLIENT_QUEUE]; /* decoded, not yet consumed */
	int nq;
	int rx_errors;  /* frames from the board that failed CRC/framing */
	int bad_msgs;   /* good frames that failed rigproto_msg_decode */
};

/** Connect to a unix stream socket, retrying for up to @p timeout_ms; fd or -1. */
int rigclient_connect_unix(const char *path, int timeout_ms);

void rigclient_init(struct rigclient *c, int fd);

/** Write raw bytes (for garbage/resync tests); 0 or -1. */
int rigclient_send_raw(struct rigclient *c, const void *buf, size_t len);

/** Encode and send @p m (its seq is set to the next client seq); 0 or -1. */
int rigclient_send(struct rigclient *c, struct rigproto_msg *m);

/**
 * Wait for a message of @p type (events or replies, exact type match), removing it from
 * the queue into @p out; other messages stay queued.
 * @return 0, or -1 on timeout/EOF
 */
int rigclient_wait(struct rigclient *c, uint8_t type, int timeout_ms, struct rigproto_msg *out);

/** Send a request and wait for the reply with the same seq. @return 0 or -1. */
int rigclient_request(struct rigclient *c, struct rigproto_msg *req, struct rigproto_msg *rep,
		      int timeout_ms);

/** Like rigclient_request() for a body-less request; returns the reply status or -1. */
int rigclient_simple(struct rigclient *c, uint8_t type, int timeout_ms);

/** Drop queued messages. */
void rigclient_flush(struct rigclient *c);

/* ---- tiny TAP helpers shared by the test programs ---- */

/** Print "ok N - name" or "not ok N - name" and count. @return @p ok */
bool tap_ok(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Print a diagnostic line "# ...". */
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** Print the plan "1..N" for the tests run so far; returns 0 if all passed, else 1. */
int tap_done(void);

#endif /* RIGOR_FIRMWARE_TESTS_RIGCLIENT_H */
