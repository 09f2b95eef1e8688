-- SPDX-License-Identifier: MIT
-- A USB-powered DUT (a Raspberry Pi Zero 2 W in gadget mode: power and console over one
-- cable) fed from port 4 of a USB hub that switches VBUS per port (docs/hardware/uhub.md).
-- Find the hub's location and the port with `uhubctl` (or `lsusb -t`); a USB3 hub shows
-- up twice (e.g. 1-1 and 2-1): name either half, rigor switches both. Check the file with
-- `rigor --rig rigs/examples/uhub.lua check`.
rig {
  name = "pizero-uhub",
  device_type = "raspberrypi0-2w-64",
  capabilities = { "serial" },

  power = uhub {
    hub = "1-1",          -- location as uhubctl prints it: bus 1, root port 1
    port = 4,             -- 1-based, as `uhubctl -p 4`
    min_off_ms = 2000,    -- let the DUT's capacitors drain before powering it again
    timeout_ms = 2000,    -- bound for each USB request to the hub
  },
  -- Alternative: a hub with a serial number, found wherever it is plugged in:
  --   power = uhub { usb_serial = "HUB0001", port = 4 },

  -- The DUT's USB gadget serial port, found by its USB path behind the same hub port.
  console = serial { usb_path = "1-1.4" },
  storage = sim {},
}
