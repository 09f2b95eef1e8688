/* SPDX-License-Identifier: MIT */
/**
 * @file rigfw.h
 * @brief Portable rig-board firmware core: command handling, interlocks, faults, watchdogs.
 *
 * The core talks to hardware only through hal.h and to the host only through rigproto. A
 * port's main() looks like:
 *
 *     static struct rigfw fw;
 *     void USART1_IRQHandler(void) { ... rigfw_isr_rx(&fw, byte); }
 *     int main(void) { hal_init(); rigfw_init(&fw); for (;;) { rigfw_task(&fw); hal_idle(); } }
 *
 * Safety rules enforced here (each has a unit test in firmware/tests/test_rigfw.c):
 * - After rigfw_init() the DUT is unpowered, the SD mux is disabled (card connected to
 *   neither side, card unpowered) and all buttons are released.
 * - The mux is never connected to the host while the DUT is powered, and the DUT is never
 *   powered while the card is connected to the host: both answer RIGPROTO_ST_INTERLOCK.
 * - Mux changes are break-before-make: disconnect and unpower the card, wait mux_settle_ms,
 *   then connect the new side. The reply is sent when the switch is complete; mux and power
 *   requests meanwhile answer RIGPROTO_ST_BUSY.
 * - A current sample above oc_limit_ma while powered switches the DUT off, latches
 *   RIGPROTO_FAULT_OVERCURRENT and sends RIGPROTO_EVT_OVERCURRENT.
 * - With host_wdt_ms set, no valid frame from the host for that long puts every output in
 *   the safe state, latches RIGPROTO_FAULT_HOST_WDT and sends RIGPROTO_EVT_HOST_WDT.
 * - A latched fault refuses power-on (RIGPROTO_ST_FAULT) until RIGPROTO_FAULT_CLEAR.
 * - rigfw_task() is the only place that reloads the independent hardware watchdog, so a hung
 *   main loop resets the board (reset reason RIGPROTO_RESET_WATCHDOG).
 *
 * Thread safety: rigfw_isr_rx() may run in an interrupt while rigfw_task() runs; every other
 * function belongs to the main loop. No heap; all sizes are in rigfw_config.h.
 */
#ifndef RIGOR_FIRMWARE_CORE_RIGFW_H
#define RIGOR_FIRMWARE_CORE_RIGFW_H

#include <stdbool.h>
#include <stdint.h>

#include "rigfw_config.h"
#include "rigproto.h"

/** Firmware state; one per board, allocated by the port. Fields are private. */
struct rigfw {
	struct rigproto_ctx rx;
	struct rigproto_out tx;
	/* interrupt -> task byte queue (single producer, single consumer) */
	uint8_t q[RIGFW_RX_QUEUE_SIZE];
	volatile uint16_t q_head; /* written by the ISR */
	volatile uint16_t q_tail; /* written by the task */
	volatile uint16_t q_drops;
	struct rigproto_config cfg;
	uint8_t reset_reason;
	uint8_t evt_seq;
	uint16_t faults;
	uint16_t rx_errors;
	uint32_t last_crc_errors;
	uint32_t now;
	/* outputs */
	bool power;
	uint8_t mux;          /* side connected now */
	bool mux_pending;     /* break done, waiting mux_settle_ms */
	uint8_t mux_target;
	uint8_t mux_seq;      /* seq of the mux_set request to answer when done */
	uint32_t mux_t0;
	uint8_t buttons;      /* held bits */
	uint8_t buttons_timed;
	uint32_t button_until[RIGPROTO_BUTTONS];
	bool led;
	/* host watchdog */
	uint32_t host_seen_ms;
	/* sensor */
	uint32_t next_sample_ms;
	bool have_sample;
	uint32_t mv;
	int32_t ma;
	uint32_t n, mv_min, mv_max;
	int32_t ma_min, ma_max;
	uint64_t mv_sum;
	int64_t ma_sum;
	bool reset_pending;
};

/**
 * Put the outputs in the safe state, load the default configuration, start the hardware
 * watchdog and send RIGPROTO_EVT_BOOT (preceded by a 0x00 so the host decoder is in sync).
 * Call after hal_init(), and again to model a reset in simulations.
 */
void rigfw_init(struct rigfw *fw);

/**
 * Hand one received byte to the core. Interrupt-safe, constant time; drops the byte (and
 * counts it) when the queue is full.
 */
void rigfw_isr_rx(struct rigfw *fw, uint8_t byte);

/**
 * Do all pending work: decode queued bytes and answer requests, run timers (buttons, mux
 * settle, host watchdog, LED), sample the sensor and check the overcurrent limit, and reload
 * the hardware watchdog. Never blocks beyond the bounded HAL calls. Call it in a loop.
 */
void rigfw_task(struct rigfw *fw);

#endif /* RIGOR_FIRMWARE_CORE_RIGFW_H */
