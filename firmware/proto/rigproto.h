/* SPDX-License-Identifier: MIT */
/**
 * @file rigproto.h
 * @brief rigor host <-> rig-board protocol codec (pure C, no I/O, no heap).
 *
 * The same rigproto.c is compiled into the rig-board firmware (firmware/core) and into the
 * host library (host/src). The wire format is specified byte by byte in
 * docs/firmware-protocol.md; this header is the manual for the C API.
 *
 * Overview
 * --------
 * - Framing: every frame is COBS-encoded and terminated by one 0x00 byte. The decoded frame is
 *   `type, seq, payload[0..RIGPROTO_MAX_PAYLOAD], crc16 (little endian)`. The CRC is
 *   CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0, check value
 *   0x29B1 for "123456789") over type, seq and payload. A lost byte, a burst of garbage or a
 *   truncated frame costs only that frame: the decoder restarts at the next 0x00.
 * - Requests (type 0x01..0x3F) are sent by the host with a sequence number of its choice; the
 *   firmware answers every request it decoded with exactly one reply of type
 *   `request | RIGPROTO_REPLY` carrying the same seq. The first payload byte of a reply is a
 *   wire status (enum rigproto_status); the reply body follows only when it is
 *   RIGPROTO_ST_OK.
 * - Events (type 0x40..0x7F) are pushed by the firmware at any time with their own
 *   incrementing seq, so the host can spot lost events.
 *
 * Receiving: rigproto_init() a caller-allocated struct rigproto_ctx with a callback, then feed
 * every received byte chunk to rigproto_poll(). The callback runs once per frame, good or bad.
 * Turn a good frame into a typed message with rigproto_msg_decode().
 *
 * Sending: rigproto_out_init() a struct rigproto_out with a write callback (or NULL for the
 * sizing mode, which only counts bytes), fill a struct rigproto_msg and call
 * rigproto_msg_encode().
 *
 * Return codes
 * ------------
 * Functions return 0 or a positive count on success and a negative errno value on failure
 * (enum rigproto_err, the rigor convention). Wire status bytes (enum rigproto_status) are a
 * separate, append-only numbering because errno values differ between libcs;
 * rigproto_status_to_err() converts one into the other.
 *
 * Errors are sticky: the first error seen by a struct rigproto_ctx or struct rigproto_out is
 * kept until rigproto_clear_error()/rigproto_out_init(), so a root cause is not overwritten by
 * the failures it causes. Decoding errors do not stop the decoder.
 *
 * Thread safety
 * -------------
 * No global state. A context must not be used from two threads (or an ISR and a main loop)
 * at once; different contexts are independent.
 *
 * Debugging
 * ---------
 * rigproto_ctx keeps counters (frames, CRC errors, framing errors, overruns) that firmware
 * reports in its status reply; rigproto_status_name() and rigproto_type_name() give printable
 * names for logs.
 *
 * Programmer errors (NULL pointers, a NULL frame callback) are caught by assert(). Field
 * values are data: rigproto_msg_encode() and rigproto_msg_decode() run the same range checks
 * and return RIGPROTO_E_INVAL, so a host driver can pass user input straight through.
 */
#ifndef RIGOR_FIRMWARE_PROTO_RIGPROTO_H
#define RIGOR_FIRMWARE_PROTO_RIGPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Protocol version carried in hello; bumped on any incompatible wire change. */
#define RIGPROTO_VERSION 1

/** Largest payload (bytes after type and seq, before the CRC). */
#define RIGPROTO_MAX_PAYLOAD 48
/** Largest decoded frame: type + seq + payload + crc16. */
#define RIGPROTO_MAX_RAW (2 + RIGPROTO_MAX_PAYLOAD + 2)
/** Largest frame on the wire: COBS adds one byte per 254, plus the 0x00 delimiter. */
#define RIGPROTO_MAX_FRAME (RIGPROTO_MAX_RAW + 1 + 1)
/** Size of the build id string field, including room for the terminating NUL. */
#define RIGPROTO_BUILD_ID_SIZE 17
/** Number of open-drain button/strap outputs. */
#define RIGPROTO_BUTTONS 4

/** Bit set in the type of every reply. */
#define RIGPROTO_REPLY 0x80

/** C API error codes: negative errno values (rigor convention 4). */
enum rigproto_err {
	RIGPROTO_OK = 0,
	RIGPROTO_E_INVAL = -22,    /**< -EINVAL: a message field is out of range */
	RIGPROTO_E_BADMSG = -74,   /**< -EBADMSG: CRC mismatch or COBS framing error */
	RIGPROTO_E_MSGSIZE = -90,  /**< -EMSGSIZE: frame or payload longer than the maximum */
	RIGPROTO_E_PROTO = -71,    /**< -EPROTO: valid frame, but its payload is malformed */
	RIGPROTO_E_NOTSUP = -95,   /**< -EOPNOTSUPP: unknown message type */
	RIGPROTO_E_IO = -5,        /**< -EIO: the write callback failed */
	RIGPROTO_E_PERM = -1,      /**< -EPERM: refused by an interlock or a latched fault */
	RIGPROTO_E_BUSY = -16,     /**< -EBUSY: the board is busy (e.g. mux settling) */
};
/* The values above are Linux errno numbers written out so that the firmware (newlib, whose
 * errno numbers differ) and the host agree; rigproto.c checks them against <errno.h> on the
 * host. */

/** Message types. Append-only: values never change once released. */
enum rigproto_type {
	/* requests, host -> board; reply type is request | RIGPROTO_REPLY */
	RIGPROTO_HELLO = 0x01,       /**< version/capability handshake */
	RIGPROTO_POWER_SET = 0x02,   /**< switch DUT power */
	RIGPROTO_POWER_GET = 0x03,   /**< read DUT power */
	RIGPROTO_MUX_SET = 0x04,     /**< select the SD mux side (reply after settling) */
	RIGPROTO_MUX_GET = 0x05,     /**< read the SD mux side */
	RIGPROTO_BUTTON = 0x06,      /**< press for N ms, hold or release a button/strap */
	RIGPROTO_TELEMETRY = 0x07,   /**< read mV/mA now plus min/max/avg since last read */
	RIGPROTO_STATUS = 0x08,      /**< outputs, faults, uptime, reset reason, version */
	RIGPROTO_CONFIG_SET = 0x09,  /**< set limits and timeouts */
	RIGPROTO_CONFIG_GET = 0x0A,  /**< read limits and timeouts */
	RIGPROTO_FAULT_CLEAR = 0x0B, /**< clear latched faults */
	RIGPROTO_RESET = 0x0C,       /**< reply, then reset the board */
	/* events, board -> host */
	RIGPROTO_EVT_BOOT = 0x40,        /**< the firmware (re)started; also the ready banner */
	RIGPROTO_EVT_OVERCURRENT = 0x41, /**< DUT power tripped */
	RIGPROTO_EVT_HOST_WDT = 0x42,    /**< host silent too long: outputs made safe */
	RIGPROTO_EVT_RX_ERROR = 0x43,    /**< a received frame was dropped (CRC, framing, size) */
};

/** Wire status, first byte of every reply. Append-only. */
enum rigproto_status {
	RIGPROTO_ST_OK = 0,
	RIGPROTO_ST_UNKNOWN_CMD = 1, /**< request type not implemented */
	RIGPROTO_ST_BAD_LEN = 2,     /**< payload length wrong for this request */
	RIGPROTO_ST_BAD_ARG = 3,     /**< a field is out of range */
	RIGPROTO_ST_BUSY = 4,        /**< try again later (mux settling) */
	RIGPROTO_ST_INTERLOCK = 5,   /**< refused: would connect the card to the host while the
	                              *   DUT is powered, or power the DUT with the card at the host */
	RIGPROTO_ST_FAULT = 6,       /**< refused: a latched fault must be cleared first */
	RIGPROTO_ST_CRC = 7,         /**< frame CRC mismatch (only in RIGPROTO_EVT_RX_ERROR) */
	RIGPROTO_ST_FRAMING = 8,     /**< COBS framing error (only in RIGPROTO_EVT_RX_ERROR) */
	RIGPROTO_ST_TOO_LONG = 9,    /**< frame too long (only in RIGPROTO_EVT_RX_ERROR) */
	RIGPROTO_ST_VERSION = 10,    /**< hello: protocol version not supported */
	RIGPROTO_ST_IO = 11,         /**< a hardware access failed (e.g. current sensor) */
	RIGPROTO_ST_COUNT
};

/** SD mux side. */
enum rigproto_mux {
	RIGPROTO_MUX_OFF = 0,  /**< card disconnected from both sides and unpowered */
	RIGPROTO_MUX_HOST = 1, /**< card on the host's reader */
	RIGPROTO_MUX_DUT = 2,  /**< card in the DUT */
};

/** Button action. */
enum rigproto_button_action {
	RIGPROTO_BTN_RELEASE = 0, /**< release now */
	RIGPROTO_BTN_HOLD = 1,    /**< hold until released */
	RIGPROTO_BTN_PRESS = 2,   /**< hold for ms milliseconds, then release */
};

/** Why the board last reset. */
enum rigproto_reset_reason {
	RIGPROTO_RESET_UNKNOWN = 0,
	RIGPROTO_RESET_POWER_ON = 1,
	RIGPROTO_RESET_PIN = 2,
	RIGPROTO_RESET_SOFTWARE = 3,
	RIGPROTO_RESET_WATCHDOG = 4, /**< the independent hardware watchdog fired */
	RIGPROTO_RESET_BROWNOUT = 5,
	RIGPROTO_RESET_LOW_POWER = 6,
};

/** Bits of rigproto_status_body.faults. */
enum rigproto_fault {
	RIGPROTO_FAULT_OVERCURRENT = 1u << 0, /**< latched: power tripped */
	RIGPROTO_FAULT_HOST_WDT = 1u << 1,    /**< latched: host watchdog fired */
	RIGPROTO_FAULT_SENSOR = 1u << 2,      /**< not latched: last sensor read failed */
};
/** Faults that block power-on until RIGPROTO_FAULT_CLEAR. */
#define RIGPROTO_FAULTS_LATCHED (RIGPROTO_FAULT_OVERCURRENT | RIGPROTO_FAULT_HOST_WDT)

/** Capability bits in the hello reply. */
enum rigproto_cap {
	RIGPROTO_CAP_POWER = 1u << 0,
	RIGPROTO_CAP_MUX = 1u << 1,
	RIGPROTO_CAP_BUTTONS = 1u << 2,
	RIGPROTO_CAP_TELEMETRY = 1u << 3,
	RIGPROTO_CAP_HOST_WDT = 1u << 4,
	RIGPROTO_CAP_SD_POWER = 1u << 5,
};

/* ---- typed message bodies ------------------------------------------------------------ */

/** RIGPROTO_HELLO request. */
struct rigproto_hello_req {
	uint8_t version; /**< protocol version the host speaks */
};

/** RIGPROTO_HELLO reply. */
struct rigproto_hello_rep {
	uint8_t version;     /**< protocol version the board speaks */
	uint8_t fw_major, fw_minor, fw_patch;
	uint32_t caps;       /**< enum rigproto_cap bits */
	uint8_t max_payload; /**< RIGPROTO_MAX_PAYLOAD of the board */
	uint8_t buttons;     /**< number of button outputs */
};

/** RIGPROTO_POWER_SET request and RIGPROTO_POWER_GET reply. */
struct rigproto_power {
	bool on;
};

/** RIGPROTO_MUX_SET request and RIGPROTO_MUX_GET reply. */
struct rigproto_mux_body {
	uint8_t side; /**< enum rigproto_mux */
};

/** RIGPROTO_BUTTON request. */
struct rigproto_button {
	uint8_t index;  /**< 0 .. RIGPROTO_BUTTONS-1 */
	uint8_t action; /**< enum rigproto_button_action */
	uint16_t ms;    /**< press duration, 1..65535, only for RIGPROTO_BTN_PRESS (else 0) */
};

/** RIGPROTO_TELEMETRY reply. Statistics cover the samples since the previous read. */
struct rigproto_telemetry {
	uint32_t mv;             /**< last bus voltage sample */
	int32_t ma;              /**< last current sample (negative = reverse) */
	uint32_t mv_min, mv_max, mv_avg;
	int32_t ma_min, ma_max, ma_avg;
	uint32_t samples;        /**< samples in the statistics; 0 means min/max/avg = last */
};

/** RIGPROTO_STATUS reply. */
struct rigproto_status_body {
	bool power;          /**< DUT power switch */
	uint8_t mux;         /**< enum rigproto_mux (the side actually connected) */
	bool sd_power;       /**< SD card supply */
	uint8_t buttons;     /**< bit n set = button n held */
	bool led;
	uint16_t faults;     /**< enum rigproto_fault bits */
	uint32_t uptime_ms;
	uint8_t reset_reason; /**< enum rigproto_reset_reason */
	uint8_t fw_major, fw_minor, fw_patch;
	uint16_t rx_errors;  /**< frames dropped since boot (saturating) */
	char build_id[RIGPROTO_BUILD_ID_SIZE]; /**< NUL-terminated, at most 16 characters */
};

/** RIGPROTO_CONFIG_SET request and RIGPROTO_CONFIG_GET reply. */
struct rigproto_config {
	uint16_t oc_limit_ma;   /**< overcurrent trip level, 1..65535 mA */
	uint32_t host_wdt_ms;   /**< 0 = host watchdog off, else 100..3600000 ms */
	uint16_t mux_settle_ms; /**< break-before-make pause when switching the mux, 0..10000 */
};

/** RIGPROTO_EVT_BOOT. */
struct rigproto_evt_boot {
	uint8_t reset_reason; /**< enum rigproto_reset_reason */
	uint8_t version;      /**< protocol version */
	uint8_t fw_major, fw_minor, fw_patch;
};

/** RIGPROTO_EVT_OVERCURRENT. */
struct rigproto_evt_overcurrent {
	int32_t ma;           /**< the sample that tripped */
	uint16_t limit_ma;    /**< the configured limit */
};

/** RIGPROTO_EVT_HOST_WDT. */
struct rigproto_evt_host_wdt {
	uint32_t timeout_ms;
};

/** RIGPROTO_EVT_RX_ERROR. */
struct rigproto_evt_rx_error {
	uint8_t status;   /**< RIGPROTO_ST_CRC, _FRAMING or _TOO_LONG */
	uint16_t count;   /**< rx errors since boot (saturating) */
};

/**
 * One message, typed by @c type. The reply bit in @c type selects the reply layout; for a
 * reply, @c status comes first on the wire and the body is present only if it is
 * RIGPROTO_ST_OK. Messages with no body (e.g. RIGPROTO_POWER_GET requests, the
 * RIGPROTO_POWER_SET reply) use no union member.
 */
struct rigproto_msg {
	uint8_t type;   /**< enum rigproto_type, optionally | RIGPROTO_REPLY */
	uint8_t seq;
	uint8_t status; /**< replies only: enum rigproto_status */
	union {
		struct rigproto_hello_req hello_req;
		struct rigproto_hello_rep hello;
		struct rigproto_power power;
		struct rigproto_mux_body mux;
		struct rigproto_button button;
		struct rigproto_telemetry telemetry;
		struct rigproto_status_body status;
		struct rigproto_config config;
		struct rigproto_evt_boot boot;
		struct rigproto_evt_overcurrent overcurrent;
		struct rigproto_evt_host_wdt host_wdt;
		struct rigproto_evt_rx_error rx_error;
	} u;
};

/* ---- decoder ------------------------------------------------------------------------- */

/** One decoded frame, valid only during the callback. */
struct rigproto_frame {
	uint8_t type;
	uint8_t seq;
	uint8_t len;            /**< payload length */
	const uint8_t *payload; /**< points into the context's buffer */
};

/**
 * Called by rigproto_poll() once per frame.
 * @param user  the pointer given to rigproto_init()
 * @param frame the frame if @p err is 0, else NULL
 * @param err   0, RIGPROTO_E_BADMSG (CRC or COBS error, or shorter than 4 bytes) or
 *              RIGPROTO_E_MSGSIZE (longer than RIGPROTO_MAX_RAW; the rest up to the next
 *              0x00 was skipped)
 */
typedef void (*rigproto_frame_cb)(void *user, const struct rigproto_frame *frame, int err);

/**
 * Decoder state. Allocated by the caller (static, on the stack or in a struct); treat the
 * fields as private and use the accessors.
 */
struct rigproto_ctx {
	rigproto_frame_cb cb;
	void *user;
	uint8_t buf[RIGPROTO_MAX_RAW];
	uint8_t len;       /* decoded bytes so far */
	uint8_t code;      /* current COBS code byte, 0 = expecting one */
	uint8_t left;      /* data bytes left in the current COBS block */
	bool skip;         /* dropping bytes up to the next 0x00 */
	int err;           /* sticky first error */
	uint32_t frames, crc_errors, framing_errors, overruns;
};

/**
 * Initialise a decoder. Never fails; does not allocate.
 * @param ctx  caller-allocated context
 * @param cb   frame callback, must not be NULL
 * @param user passed to @p cb
 */
void rigproto_init(struct rigproto_ctx *ctx, rigproto_frame_cb cb, void *user);

/**
 * Feed received bytes. Calls the callback for each complete frame (0x00 delimiter seen),
 * synchronously, before returning. Partial frames are kept for the next call. Never blocks.
 * @param buf bytes received, may be NULL if @p len is 0
 * @return the number of good frames delivered (>= 0). Bad frames are reported through the
 *         callback and recorded as the sticky error; they do not make this fail.
 */
int rigproto_poll(struct rigproto_ctx *ctx, const uint8_t *buf, size_t len);

/** Drop a partial frame, e.g. after reopening the link. Keeps counters and the error. */
void rigproto_reset(struct rigproto_ctx *ctx);

/** The first error since init or rigproto_clear_error(), or 0. */
int rigproto_error(const struct rigproto_ctx *ctx);

/** Forget the sticky error. */
void rigproto_clear_error(struct rigproto_ctx *ctx);

/* ---- encoder ------------------------------------------------------------------------- */

/**
 * Write callback: write all @p len bytes or fail.
 * @return 0 on success, a negative errno value on failure (becomes the sticky error).
 */
typedef int (*rigproto_write_fn)(void *user, const uint8_t *buf, size_t len);

/** Output stream; caller-allocated. */
struct rigproto_out {
	rigproto_write_fn write; /* NULL: sizing mode */
	void *user;
	size_t bytes;            /* bytes written (or counted) since init */
	int err;                 /* sticky first error */
};

/**
 * Initialise an output stream.
 * @param write the write callback, or NULL for the sizing mode, in which nothing is written
 *              and rigproto_out_bytes() tells how many bytes the encoding would take
 * @param user  passed to @p write
 */
void rigproto_out_init(struct rigproto_out *out, rigproto_write_fn write, void *user);

/** Bytes written (or counted) since rigproto_out_init(). */
size_t rigproto_out_bytes(const struct rigproto_out *out);

/** The first error of this stream, or 0. */
int rigproto_out_error(const struct rigproto_out *out);

/**
 * Encode and write one frame with a raw payload (COBS, CRC and delimiter added). The whole
 * frame is handed to the write callback in chunks; the caller serialises access to the link.
 * Does nothing and returns the sticky error if the stream already failed.
 * @retval >0                  bytes written for this frame
 * @retval RIGPROTO_E_MSGSIZE  @p len > RIGPROTO_MAX_PAYLOAD
 * @retval <0                  the error returned by the write callback (sticky)
 */
int rigproto_frame_write(struct rigproto_out *out, uint8_t type, uint8_t seq,
			 const uint8_t *payload, size_t len);

/**
 * Encode and write one typed message.
 * @retval >0                  bytes written
 * @retval RIGPROTO_E_INVAL    a field is out of range (e.g. mux side 7)
 * @retval RIGPROTO_E_NOTSUP   @p msg->type is not a known message type
 * @retval <0                  the error returned by the write callback (sticky)
 */
int rigproto_msg_encode(struct rigproto_out *out, const struct rigproto_msg *msg);

/**
 * Decode a frame delivered by the callback into a typed message. @p msg is fully
 * overwritten (zeroed, then filled).
 * @retval 0                  ok
 * @retval RIGPROTO_E_NOTSUP  unknown type (reply to a request with RIGPROTO_ST_UNKNOWN_CMD)
 * @retval RIGPROTO_E_PROTO   payload length wrong for this type (RIGPROTO_ST_BAD_LEN)
 * @retval RIGPROTO_E_INVAL   a field is out of range (RIGPROTO_ST_BAD_ARG)
 */
int rigproto_msg_decode(const struct rigproto_frame *frame, struct rigproto_msg *msg);

/**
 * Encode a status-only reply (also used for every error reply) to request @p req_type.
 * @return as rigproto_msg_encode()
 */
int rigproto_reply_status(struct rigproto_out *out, uint8_t req_type, uint8_t seq,
			  uint8_t status);

/* ---- helpers ------------------------------------------------------------------------- */

/** CRC-16/CCITT-FALSE of @p len bytes, continuing from @p crc (start with 0xFFFF). */
uint16_t rigproto_crc16(uint16_t crc, const uint8_t *buf, size_t len);

/** Printable name of a wire status ("interlock"); "?" for unknown values. Never NULL. */
const char *rigproto_status_name(unsigned int status);

/** Printable name of a message type ("power_set", "evt_boot"), ignoring the reply bit;
 *  "?" for unknown values. Never NULL. */
const char *rigproto_type_name(unsigned int type);

/**
 * Map a wire status to a C API error: OK -> 0, BUSY -> RIGPROTO_E_BUSY, INTERLOCK and FAULT
 * -> RIGPROTO_E_PERM, BAD_ARG -> RIGPROTO_E_INVAL, UNKNOWN_CMD -> RIGPROTO_E_NOTSUP,
 * BAD_LEN/VERSION -> RIGPROTO_E_PROTO, CRC/FRAMING/TOO_LONG -> RIGPROTO_E_BADMSG, IO and
 * unknown values -> RIGPROTO_E_IO.
 */
int rigproto_status_to_err(unsigned int status);

#ifdef __cplusplus
}
#endif

#endif /* RIGOR_FIRMWARE_PROTO_RIGPROTO_H */
