-- SPDX-License-Identifier: MIT
-- A BeagleBone Black booting from a microSD card in a Linux Automation USB-SD-Mux
-- (docs/hardware/usbsdmux.md). The mux moves the card between the DUT and its own card
-- reader (a Microchip USB2642), and "off" cuts the card's supply: every switch goes
-- through off, so the card is power-cycled each time. The same USB serial names the mux
-- and its card reader's disk, so storage = usb finds the flash target through it.
-- Find the serial with `udevadm info -q property -n /dev/sgN | grep ID_SERIAL_SHORT`
-- (or `ls /dev/usb-sd-mux/` with the upstream udev rule). Check the file with
-- `rigor --rig rigs/examples/usbsdmux.lua check`.
rig {
  name = "bbb-usbsdmux",
  device_type = "beaglebone-black",
  capabilities = { "sd", "serial" },

  sdmux = usbsdmux {
    usb_serial = "000000000420",  -- required when more than one USB-SD-Mux is attached
    -- usb_path = "1-1.2.1",      -- or: the port path of the mux's card reader (its hub + ".1")
    discharge_ms = 1000,          -- card unpowered on each switch (the default)
    timeout_ms = 3000,            -- per SCSI command, as the upstream tool uses
    settle_ms = 2000,             -- let the reader report the card before flashing
  },

  storage = usb { usb_serial = "000000000420" },   -- the mux's reader, in host mode
  power = rigfw { link = "serial:usb_serial=BOARD0001", min_off_ms = 2000 },
  console = serial { usb_serial = "FTDI0042" },
}
