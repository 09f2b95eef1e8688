-- SPDX-License-Identifier: MIT
-- A Raspberry Pi 4 whose console is a USB-UART adapter (docs/hardware/serial.md), the
-- rest on the rigor rig board. The adapter is named by its USB serial number, so it is
-- found whichever /dev/ttyUSBn it gets and whichever port it is plugged into; if it drops
-- off the bus mid-run, rigor reconnects and marks the gap in the console log.
rig {
  name = "rpi4-serial",
  device_type = "raspberrypi4-64",
  capabilities = { "sd", "serial" },

  console = serial {
    usb_serial = "D30A1B2C",   -- udevadm info -q property /dev/ttyUSB0 | grep ID_SERIAL_SHORT
    baud = 115200,             -- the defaults: 115200 8N1, no flow control
    bits = 8,
    parity = "none",
    stopbits = 1,
    flow = "none",
  },
  -- Alternatives, most stable first:
  --   console = serial { vid_pid = "0403:6015" },            -- the only adapter of its kind
  --   console = serial { usb_path = "1-1.4", interface = 0 }, -- whatever is in that port
  --   console = serial { device = "/dev/serial/by-id/usb-FTDI_FT230X_Basic_UART_D30A1B2C-if00-port0" },

  power = rigfw { link = "serial:usb_serial=BOARD0001", min_off_ms = 2000 },
  sdmux = rigfw { link = "serial:usb_serial=BOARD0001", settle_ms = 100 },
  storage = sim {},
}
