/* SPDX-License-Identifier: MIT */
/**
 * @file test_hal.h
 * @brief Recording fake of hal.h for the core unit tests: outputs, a manual clock, captured
 *        UART bytes, an emulated INA219 with fault injection, watchdog and reset counters.
 *        Reset it with test_hal_reset() at the start of every test.
 */
#ifndef RIGOR_FIRMWARE_TESTS_TEST_HAL_H
#define RIGOR_FIRMWARE_TESTS_TEST_HAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hal.h"

struct test_hal {
	bool out[HAL_OUT_COUNT];
	unsigned int writes[HAL_OUT_COUNT]; /* hal_gpio_set calls per output */
	uint32_t now;
	uint8_t tx[8192];
	size_t tx_len;
	int32_t mv, ma;       /* what the INA219 measures */
	int i2c_err;          /* non-zero: every transfer fails with this */
	unsigned int i2c_xfers;
	bool wdt_started;
	uint32_t wdt_ms;
	unsigned int wdt_kicks;
	uint8_t reset_reason;
	unsigned int resets;
};

extern struct test_hal test_hal;

void test_hal_reset(void);

#endif /* RIGOR_FIRMWARE_TESTS_TEST_HAL_H */
