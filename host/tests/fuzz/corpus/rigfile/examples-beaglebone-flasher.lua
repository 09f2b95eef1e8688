-- SPDX-License-Identifier: MIT
-- A BeagleBone Black whose eMMC is written by a "flasher" SD card image
-- (docs/hardware/beaglebone-flasher.md). The microSD slot holds an SDWire's tongue, so
-- rigor writes the flasher image to the card from the host; a relay switches the 5 V
-- barrel input; an open-drain stage across the boot button S2 (SYSBOOT2) makes the
-- AM335x boot from the card instead of the eMMC while it is held at power-on. The flow
-- (a test case does it, see the doc): `rig:flash(flasher_image)`, `sdmux:set("dut")`,
-- hold `boot`, power on, release, wait on the console for the flasher to finish, power
-- off; then power on without the button and the board boots the new eMMC.
-- Check the file with `rigor --rig rigs/examples/beaglebone-flasher.lua check`.
rig {
  name = "bbb-flasher",
  device_type = "beaglebone-black",
  capabilities = { "sd", "serial", "flasher" },

  -- Relay on the 5 V barrel jack, input active low.
  power = gpio {
    chip = "pinctrl-bcm2711",
    line = "GPIO26",
    inverted = true,
    min_off_ms = 2000,        -- the BBB's PMIC needs a real power-off
  },

  -- The SDWire in the BBB's microSD slot; find its serial with
  -- `lsusb -v -d 04e8:6001 | grep iSerial`.
  sdmux = sdwire { usb_serial = "sdwire-bbb", settle_ms = 1000 },

  button = {
    -- S2 "boot": held at power-on, the ROM boots from the microSD card.
    boot = gpio {
      chip = "pinctrl-bcm2711",
      line = "GPIO16",
      open_drain = true,
      active_low = true,
      press_ms = 3000,
    },
  },

  -- The card as the host sees it: the SDWire's own card reader (a USB2640 behind the
  -- same hub as its FTDI). `rigor storage status` shows what it resolves to.
  storage = usb { usb_serial = "000000264001" },

  -- The BBB's 3.3 V debug header J1 through an FTDI TTL-232R-3V3 cable.
  console = serial { usb_serial = "FT9XK2L1" },
}
