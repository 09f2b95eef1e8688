// SPDX-License-Identifier: MIT
/* Fake HAL for unit tests; see test_hal.h. */
#include "test_hal.h"

#include <string.h>

#include "ina219_sim.h"
#include "rigfw_config.h"

struct test_hal test_hal;

void test_hal_reset(void)
{
	memset(&test_hal, 0, sizeof(test_hal));
	test_hal.now = 1000;
	test_hal.reset_reason = RIGPROTO_RESET_POWER_ON;
	test_hal.mv = 5000;
	test_hal.ma = 100;
}

void hal_init(void)
{
}

void hal_gpio_set(enum hal_out out, bool on)
{
	test_hal.out[out] = on;
	test_hal.writes[out]++;
}

bool hal_gpio_get(enum hal_out out)
{
	return test_hal.out[out];
}

void hal_uart_write(const uint8_t *buf, size_t len)
{
	if (len > sizeof(test_hal.tx) - test_hal.tx_len)
		len = sizeof(test_hal.tx) - test_hal.tx_len;
	memcpy(test_hal.tx + test_hal.tx_len, buf, len);
	test_hal.tx_len += len;
}

uint32_t hal_time_ms(void)
{
	return test_hal.now;
}

int hal_i2c_xfer(uint8_t addr, const uint8_t *w, size_t wlen, uint8_t *r, size_t rlen)
{
	test_hal.i2c_xfers++;
	if (test_hal.i2c_err)
		return test_hal.i2c_err;
	if (addr != RIGFW_INA219_ADDR || wlen != 1 || rlen != 2)
		return -6; /* -ENXIO: nobody answered */
	/* The core's tests set the readings directly, power or not (e.g. no trip while off). */
	return ina219_sim_read(w[0], true, test_hal.mv, test_hal.ma, r) < 0 ? -5 : 0;
}

void hal_wdt_start(uint32_t ms)
{
	test_hal.wdt_started = true;
	test_hal.wdt_ms = ms;
}

void hal_wdt_kick(void)
{
	test_hal.wdt_kicks++;
}

uint8_t hal_reset_reason(void)
{
	return test_hal.reset_reason;
}

void hal_reset(void)
{
	test_hal.resets++;
}

void hal_idle(void)
{
}
