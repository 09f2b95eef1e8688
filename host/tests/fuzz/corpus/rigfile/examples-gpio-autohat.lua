-- SPDX-License-Identifier: MIT
-- A Raspberry Pi host driving a DUT through its own GPIO header, "AutoHAT" style
-- (docs/hardware/gpio.md): a relay board switches the DUT's supply, an SD mux moves
-- the DUT's card between the DUT and the Pi's card reader, and an open-drain
-- transistor pulls the DUT's boot strap. Lines are named, not numbered: run
-- `gpioinfo` on the host to see the names, and `rigor --rig rigs/examples/gpio-autohat.lua
-- check` after editing. The console is not wired up here; see serial-console.lua.
rig {
  name = "rpi4-autohat",
  device_type = "raspberrypi4-64",
  capabilities = { "sd" },

  -- Relay 1 of an optocoupled relay board whose inputs are active low: the relay
  -- closes (DUT on) when GPIO26 is driven low, so the front end inverts.
  power = gpio {
    chip = "pinctrl-bcm2711",
    line = "GPIO26",
    inverted = true,
    min_off_ms = 2000,
  },

  -- SD mux: GPIO20 selects the side (high = host card reader), GPIO21 drives the
  -- mux's /OE (low = card connected, high = card disconnected: "off").
  sdmux = gpio {
    chip = "pinctrl-bcm2711",
    line = "GPIO20",
    host_level = 1,
    enable_line = "GPIO21",
    enable_level = 0,
    settle_ms = 200,
  },

  button = {
    -- The DUT's boot strap (e.g. nRPIBOOT) through an open-drain stage: pressed
    -- pulls it low, released lets the DUT's pull-up win.
    boot = gpio {
      chip = "pinctrl-bcm2711",
      line = "GPIO16",
      open_drain = true,
      active_low = true,
      press_ms = 500,
    },
  },

  storage = sim {},
}
