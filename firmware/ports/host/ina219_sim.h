/* SPDX-License-Identifier: MIT */
/**
 * @file ina219_sim.h
 * @brief Register values an INA219 would show for a given bus voltage and current; used by
 *        the simulator HAL and the unit-test HAL to feed the core's real INA219 code.
 */
#ifndef RIGOR_FIRMWARE_PORTS_HOST_INA219_SIM_H
#define RIGOR_FIRMWARE_PORTS_HOST_INA219_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "rigfw_config.h"

/** Shunt voltage register (LSB 10 uV) for @p ma through a RIGFW_SHUNT_MOHM shunt. */
static inline uint16_t ina219_sim_shunt(int32_t ma)
{
	int32_t raw = ma * RIGFW_SHUNT_MOHM / 10;

	if (raw > 32767)
		raw = 32767;
	if (raw < -32768)
		raw = -32768;
	return (uint16_t)(int16_t)raw;
}

/** Bus voltage register (bits 15..3, LSB 4 mV) for @p mv, clamped to the 32 V range. */
static inline uint16_t ina219_sim_bus(int32_t mv)
{
	if (mv < 0)
		mv = 0;
	if (mv > 32764)
		mv = 32764;
	return (uint16_t)((mv / 4) << 3);
}

/**
 * Answer a register read (big-endian, as on the wire); 0 or -1 for an unknown register.
 * @p mv and @p ma are the DUT's supply while @p powered. The INA219 sits between the
 * high-side switch and the DUT (docs/hardware/rig-board.md), so with the switch open it sees
 * no bus voltage and no current through its shunt: 0 mV, 0 mA.
 */
static inline int ina219_sim_read(uint8_t reg, bool powered, int32_t mv, int32_t ma,
				  uint8_t out[2])
{
	uint16_t v;

	if (!powered)
		mv = ma = 0;
	if (reg == 0x01)
		v = ina219_sim_shunt(ma);
	else if (reg == 0x02)
		v = ina219_sim_bus(mv);
	else if (reg == 0x00)
		v = 0x399F; /* power-on default configuration */
	else
		return -1;
	out[0] = (uint8_t)(v >> 8);
	out[1] = (uint8_t)v;
	return 0;
}

#endif /* RIGOR_FIRMWARE_PORTS_HOST_INA219_SIM_H */
