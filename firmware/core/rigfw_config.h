/* SPDX-License-Identifier: MIT */
/**
 * @file rigfw_config.h
 * @brief Every size, period and default of the rig-board firmware, in one place.
 *
 * Override any value with -D on the compiler command line; the guards below reject values
 * the core cannot work with.
 */
#ifndef RIGOR_FIRMWARE_CORE_RIGFW_CONFIG_H
#define RIGOR_FIRMWARE_CORE_RIGFW_CONFIG_H

#include "rigproto.h"

/** Firmware version, reported by hello, status and the boot event. */
#define RIGFW_FW_MAJOR 0
#define RIGFW_FW_MINOR 1
#define RIGFW_FW_PATCH 0

/** Build identifier (e.g. a git hash), at most 16 characters; set by the build. */
#ifndef RIGFW_BUILD_ID
#define RIGFW_BUILD_ID "dev"
#endif

/** Receive queue between the UART interrupt and rigfw_task(); a power of two. */
#ifndef RIGFW_RX_QUEUE_SIZE
#define RIGFW_RX_QUEUE_SIZE 256
#endif

/** Current/voltage sampling period. */
#ifndef RIGFW_SAMPLE_PERIOD_MS
#define RIGFW_SAMPLE_PERIOD_MS 10
#endif

/** After a failed sensor read, wait this long before trying again. */
#ifndef RIGFW_SENSOR_RETRY_MS
#define RIGFW_SENSOR_RETRY_MS 1000
#endif

/** Independent hardware watchdog timeout; rigfw_task() must run more often than this. */
#ifndef RIGFW_HW_WDT_MS
#define RIGFW_HW_WDT_MS 2000
#endif

/** LED blink half-period while a latched fault is present. */
#ifndef RIGFW_LED_BLINK_MS
#define RIGFW_LED_BLINK_MS 125
#endif

/** Power-up defaults of the host-settable configuration (see struct rigproto_config). */
#ifndef RIGFW_DEFAULT_OC_LIMIT_MA
#define RIGFW_DEFAULT_OC_LIMIT_MA 2500
#endif
#ifndef RIGFW_DEFAULT_HOST_WDT_MS
#define RIGFW_DEFAULT_HOST_WDT_MS 0
#endif
#ifndef RIGFW_DEFAULT_MUX_SETTLE_MS
#define RIGFW_DEFAULT_MUX_SETTLE_MS 50
#endif

/** INA219 current/voltage monitor: 7-bit I2C address and shunt resistor in milliohm. */
#ifndef RIGFW_INA219_ADDR
#define RIGFW_INA219_ADDR 0x40
#endif
#ifndef RIGFW_SHUNT_MOHM
#define RIGFW_SHUNT_MOHM 100
#endif

#if (RIGFW_RX_QUEUE_SIZE & (RIGFW_RX_QUEUE_SIZE - 1)) != 0
#error "RIGFW_RX_QUEUE_SIZE must be a power of two"
#endif
#if RIGFW_RX_QUEUE_SIZE < 2 * RIGPROTO_MAX_FRAME || RIGFW_RX_QUEUE_SIZE > 32768
#error "RIGFW_RX_QUEUE_SIZE must hold two full frames and fit a uint16_t index"
#endif
#if RIGFW_SAMPLE_PERIOD_MS < 1 || RIGFW_SAMPLE_PERIOD_MS >= RIGFW_HW_WDT_MS
#error "RIGFW_SAMPLE_PERIOD_MS must be 1 .. RIGFW_HW_WDT_MS-1"
#endif
#if RIGFW_HW_WDT_MS < 100 || RIGFW_HW_WDT_MS > 20000
#error "RIGFW_HW_WDT_MS must be 100 .. 20000 (IWDG range)"
#endif
#if RIGFW_DEFAULT_OC_LIMIT_MA < 1 || RIGFW_DEFAULT_OC_LIMIT_MA > 65535
#error "RIGFW_DEFAULT_OC_LIMIT_MA must be 1 .. 65535"
#endif
#if RIGFW_DEFAULT_HOST_WDT_MS != 0 && \
	(RIGFW_DEFAULT_HOST_WDT_MS < 100 || RIGFW_DEFAULT_HOST_WDT_MS > 3600000)
#error "RIGFW_DEFAULT_HOST_WDT_MS must be 0 or 100 .. 3600000"
#endif
#if RIGFW_DEFAULT_MUX_SETTLE_MS > 10000
#error "RIGFW_DEFAULT_MUX_SETTLE_MS must be at most 10000"
#endif
#if RIGFW_SHUNT_MOHM < 1
#error "RIGFW_SHUNT_MOHM must be positive"
#endif

#endif /* RIGOR_FIRMWARE_CORE_RIGFW_CONFIG_H */
