-- SPDX-License-Identifier: MIT
-- The simulated rig: every role served by an in-process 'sim' back-end. It needs no
-- hardware, keeps its state in the state directory, and its console shows a board that
-- boots when powered with the SD card on its side. See docs/rig-files.md.
rig {
  name = "sim",
  device_type = "raspberrypi4-64",
  description = "simulated rig: no hardware needed",
  capabilities = { "sd", "serial", "usbboot" },

  power = sim { min_off_ms = 200, mv = 5100, ma = 450 },
  sdmux = sim { settle_ms = 20 },
  button = {
    boot = sim { press_ms = 100 },
    reset = sim { active_low = true },
  },
  console = sim { line_ms = 20, hostname = "sim-dut" },
  usbboot = sim {},
  storage = sim { size_mb = 16 },
}
