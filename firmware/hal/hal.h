/* SPDX-License-Identifier: MIT */
/**
 * @file hal.h
 * @brief Link-time hardware abstraction used by the portable firmware core (rigfw_*).
 *
 * Each port (firmware/ports/<target>/) provides exactly these functions; there is no vtable.
 * The core is the only caller. Ports in the tree:
 * - ports/stm32f1: the rig board (registers, USART1, I2C1, IWDG, SysTick);
 * - ports/host:    rigfw-sim, a Linux process (socket/pty link, control socket);
 * - tests/test_hal.c: a recording fake for the cmocka unit tests.
 *
 * Rules for implementations:
 * - Never wait on a hardware flag without a bound (QEMU does not model most peripherals, so a
 *   flag may never change). Return -ETIMEDOUT-style errors instead.
 * - Interrupt handlers only hand data to the core through rigfw_isr_rx(); all processing
 *   happens in rigfw_task() on the main loop.
 * - Outputs are logical: "on" means asserted (DUT powered, button pressed, mux enabled); the
 *   port applies the electrical polarity (active-low, open-drain).
 *
 * Thread safety: all functions except hal_time_ms() are called from the main loop only.
 */
#ifndef RIGOR_FIRMWARE_HAL_HAL_H
#define RIGOR_FIRMWARE_HAL_HAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Named digital outputs. */
enum hal_out {
	HAL_OUT_DUT_POWER = 0, /**< DUT supply load switch; on = powered */
	HAL_OUT_MUX_HOST,      /**< SD mux select; on = card to host, off = card to DUT */
	HAL_OUT_MUX_ENABLE,    /**< SD mux enable; off = card disconnected from both sides */
	HAL_OUT_SD_POWER,      /**< SD card supply; on = powered */
	HAL_OUT_BUTTON0,       /**< open-drain button/strap 0; on = pulled low (pressed) */
	HAL_OUT_BUTTON1,
	HAL_OUT_BUTTON2,
	HAL_OUT_BUTTON3,
	HAL_OUT_LED,           /**< status LED; on = lit */
	HAL_OUT_COUNT
};

/**
 * Bring up clocks, pins (in the safe state: DUT unpowered, mux disabled, card unpowered,
 * buttons released), the host UART with its receive interrupt, the millisecond timer and
 * the sensor bus. Called once, before rigfw_init(). Does not start the watchdog.
 */
void hal_init(void);

/** Drive a named output to its logical state. */
void hal_gpio_set(enum hal_out out, bool on);

/** Read back the logical state last driven on a named output. */
bool hal_gpio_get(enum hal_out out);

/**
 * Send bytes to the host. Blocks until the bytes are handed to the hardware (bounded: a
 * stuck transmitter drops the rest). Bytes are dropped when no host is connected.
 */
void hal_uart_write(const uint8_t *buf, size_t len);

/** Milliseconds since boot; wraps after 49 days (the core uses wrap-safe differences). */
uint32_t hal_time_ms(void);

/**
 * Combined I2C write-then-read transaction (repeated start) with a bounded wait.
 * @param addr 7-bit address
 * @param w    bytes to write first (register pointer), @p wlen may be 0
 * @param r    buffer for @p rlen bytes to read afterwards, @p rlen may be 0
 * @retval 0   ok
 * @retval <0  negative errno value (no acknowledge, bus timeout)
 */
int hal_i2c_xfer(uint8_t addr, const uint8_t *w, size_t wlen, uint8_t *r, size_t rlen);

/** Start the independent hardware watchdog with about @p ms timeout. Cannot be stopped. */
void hal_wdt_start(uint32_t ms);

/** Reload the hardware watchdog. Only rigfw_task() calls this. */
void hal_wdt_kick(void);

/** Why the board last reset, as enum rigproto_reset_reason. */
uint8_t hal_reset_reason(void);

/** Reset the board now (software reset). Does not return on hardware. */
void hal_reset(void);

/** Sleep until the next interrupt or for at most a millisecond. */
void hal_idle(void);

#endif /* RIGOR_FIRMWARE_HAL_HAL_H */
