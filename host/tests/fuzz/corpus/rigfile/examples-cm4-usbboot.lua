-- SPDX-License-Identifier: MIT
-- A Compute Module 4 on the official CM4 IO Board, its eMMC flashed over USB boot
-- (docs/hardware/cm4-usbboot.md). The IO board's micro-USB "USB slave" port goes to a
-- host port whose path `dmesg` shows when the CM4 comes up in USB boot mode
-- ("usb 1-1.3: New USB device found, idVendor=0a5c, idProduct=2711"); a relay switches
-- the board's 12 V supply and an open-drain stage pulls nRPIBOOT (the J2 "disable eMMC
-- boot" jumper pins) low. `rigor flash IMAGE` then does the whole job: power off, hold
-- nRPIBOOT, power on, boot rpiboot's mass-storage-gadget64 (the eMMC appears as a USB
-- disk at the same port), release, flash and verify, power off. Without the strap line,
-- fit the J2 jumper and leave out the button: the flow is the same, but the CM4 can then
-- only boot over USB. Check the file with `rigor --rig rigs/examples/cm4-usbboot.lua check`.
rig {
  name = "cm4-io",
  device_type = "raspberrypicm4-ioboard",
  capabilities = { "usbboot", "serial" },

  -- Relay on the 12 V barrel input, its input active low (DUT on = line low).
  power = gpio {
    chip = "pinctrl-bcm2711",
    line = "GPIO26",
    inverted = true,
    min_off_ms = 2000,
  },

  button = {
    -- nRPIBOOT, held low while the CM4 powers on: the boot ROM then waits for USB.
    boot = gpio {
      chip = "pinctrl-bcm2711",
      line = "GPIO16",
      open_drain = true,
      active_low = true,
    },
  },

  usbboot = rpiboot {
    usb_path = "1-1.3",     -- the host port the IO board's USB slave port is wired to
    -- usb_serial = "dc5a3b2e",  -- or the boot ROM's serial string (lsusb -v -d 0a5c:2711)
    -- The boot files that turn the eMMC into a USB disk: raspberrypi/usbboot's
    -- mass-storage-gadget64 (bootfiles.bin + config.txt). `rigor usbboot` without
    -- --dir boots these too.
    msd_dir = "/usr/share/rpiboot/mass-storage-gadget64",
    boot_button = "boot",   -- the default when a button is called "boot"
    timeout_ms = 60000,     -- the whole USB boot, then again the wait for the disk
  },

  -- The eMMC as the USB disk that appears at the same port once the gadget runs.
  storage = usb { usb_path = "1-1.3" },

  -- The CM4's UART0 (GPIO14/15 on the IO board's 40-pin header) via a USB-UART cable.
  console = serial { usb_serial = "D30A1B2C" },
}
