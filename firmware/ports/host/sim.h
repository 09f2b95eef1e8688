/* SPDX-License-Identifier: MIT */
/**
 * @file sim.h
 * @brief rigfw-sim: the rig-board firmware core running as a Linux process.
 *
 * The real core (firmware/core) and codec (firmware/proto) run unchanged on top of a
 * simulated HAL (this port). The simulated board has the same outputs as the real one, an
 * emulated INA219 that measures the DUT's supply injected over the control socket while the
 * power output is on (0 mV, 0 mA while it is off), a 1 ms clock, and an
 * independent watchdog that resets the simulated core when rigfw_task() stops running.
 *
 * Command line
 * ------------
 *     rigfw-sim --link unix:PATH | --link pty:PATH [--control unix:PATH] [--state FILE]
 *               [--mv N] [--ma N]
 *
 * - `--link unix:PATH`  listen on a unix stream socket; one host connection at a time (a new
 *                        connection replaces the old one). The byte stream is the board's
 *                        USART: rigproto frames as in docs/firmware-protocol.md.
 * - `--link pty:PATH`   create a pseudo-terminal and make PATH a symlink to its slave
 *                        (raw mode), for hosts that want a tty such as /dev/ttyUSB0.
 * - `--control unix:PATH` listen on a unix stream socket for the text control interface.
 * - `--state FILE`       after every output change, atomically rewrite FILE with the `get`
 *                        line below (for observers that prefer polling a file).
 * - `--mv N --ma N`      the DUT's supply as the sensor reads it while the power output is
 *                        on (default 5000 mV, 100 mA); with it off the sensor reads 0, 0.
 *
 * The process prints `rigfw-sim: ready` on stdout once every socket is listening, exits 0 on
 * SIGTERM, SIGINT or the `quit` control command (removing its sockets, symlink and state
 * file), and also receives SIGTERM when its parent dies (PR_SET_PDEATHSIG), so a crashed
 * test never leaves a simulator behind.
 *
 * Control interface
 * -----------------
 * Line based, ASCII, one command per line, one reply line per command: `ok ...` or
 * `err <reason>`. Several control clients may be connected at once.
 *
 * | command                         | effect                                               |
 * |---------------------------------|------------------------------------------------------|
 * | `get`                           | `ok power=0 mux=off mux_host=0 mux_enable=0 sd_power=0 buttons=0000 led=0 mv=5000 ma=100 sensor=ok boots=1 reason=power_on` |
 * | `set mv=N ma=N`                 | inject the voltage/current the INA219 measures while the power output is on (either or both) |
 * | `sensor ok` / `sensor fail`     | make every I2C transfer succeed / fail                |
 * | `reset [pin|power_on|software]` | hardware reset with that reset reason (default pin)   |
 * | `hang MS`                       | stop running the main loop for MS ms; beyond the 2 s hardware watchdog the board resets with reason watchdog |
 * | `quit`                          | exit 0                                               |
 *
 * In `get`: `mux` is the side actually connected (`off`, `host`, `dut`, derived from the
 * mux enable and select pins), `buttons` shows buttons 0..3 left to right (1 = pressed),
 * `mv`/`ma` are the injected supply (what the sensor reads only while `power=1`),
 * `boots` counts starts of the firmware, `reason` is the last reset reason.
 */
#ifndef RIGOR_FIRMWARE_PORTS_HOST_SIM_H
#define RIGOR_FIRMWARE_PORTS_HOST_SIM_H

#endif /* RIGOR_FIRMWARE_PORTS_HOST_SIM_H */
