-- SPDX-License-Identifier: MIT
-- A Raspberry Pi 4 on the rigor rig board (docs/hardware/rig-board.md). The board is
-- named by its USB-UART bridge's stable by-id path, never /dev/ttyUSBn. Its console is
-- not wired up in this example (serial back-ends come with the hardware back-ends).
rig {
  name = "rpi4-rigboard",
  device_type = "raspberrypi4-64",
  capabilities = { "sd" },

  power = rigfw {
    link = "tty:/dev/serial/by-id/usb-FTDI_FT230X_Basic_UART_D30A1B2C-if00-port0",
    min_off_ms = 2000,
    oc_limit_ma = 3000,
  },
  sdmux = rigfw {
    link = "tty:/dev/serial/by-id/usb-FTDI_FT230X_Basic_UART_D30A1B2C-if00-port0",
    settle_ms = 100,
  },
  button = {
    boot = rigfw {
      link = "tty:/dev/serial/by-id/usb-FTDI_FT230X_Basic_UART_D30A1B2C-if00-port0",
      index = 0, press_ms = 500,
    },
  },
  storage = sim {},
}
