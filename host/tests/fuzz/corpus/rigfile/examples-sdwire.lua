-- SPDX-License-Identifier: MIT
-- A Raspberry Pi 4 whose SD card sits in an SDWire / SDWireC (docs/hardware/sdwire.md):
-- the SDWire moves the card between the DUT and the host's card reader (the SDWire's
-- own USB2640). The SDWire is named by the USB serial written into its FT200X with
-- `sd-mux-ctrl --set-serial`; find it with `lsusb -v -d 04e8:6001 | grep iSerial`.
-- Power and the console are on the rigor rig board here; any power back-end works,
-- and the interlock (no switch to the host while the DUT is powered) applies as usual.
rig {
  name = "rpi4-sdwire",
  device_type = "raspberrypi4-64",
  capabilities = { "sd" },

  sdmux = sdwire {
    usb_serial = "sdwire-07",  -- required when more than one SDWire is attached
    -- usb_path = "1-1.4",     -- or: the USB port of the SDWire's FTDI (udevadm info)
    timeout_ms = 1000,         -- per USB request
    settle_ms = 1000,          -- let the card reader re-enumerate the card after a switch
  },

  power = rigfw { link = "serial:usb_serial=BOARD0001", min_off_ms = 2000 },
  storage = sim {},
}
