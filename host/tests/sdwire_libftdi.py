#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Drive an SDWire the way the upstream tool does (libftdi1's Python binding).

    sdwire_libftdi.py SERIAL host|dut|read

Opens 04e8:6001 by serial with libftdi (ftdi_usb_open_desc, as sd-mux-ctrl does),
for host/dut sends set_bitmode(0xF1 / 0xF0, BITMODE_CBUS) as sd-mux-ctrl's
selectTarget does, then reads the pins (ftdi_read_pins, as showStatus does) and prints
    pins=N side=host|dut
test_sdwire runs it under the same umockdev emulation as the rigor back-end, to check
that both put the same request on the wire. Exit status 2: libftdi failed.
"""
import sys

import ftdi1 as ftdi


def main():
    serial, action = sys.argv[1], sys.argv[2]
    ctx = ftdi.new()
    rc = ftdi.usb_open_desc(ctx, 0x04E8, 0x6001, None, serial)
    if rc < 0:
        print("usb_open_desc: %d %s" % (rc, ftdi.get_error_string(ctx)))
        return 2
    if action in ("host", "dut"):
        rc = ftdi.set_bitmode(ctx, 0xF1 if action == "host" else 0xF0, ftdi.BITMODE_CBUS)
        if rc < 0:
            print("set_bitmode: %d %s" % (rc, ftdi.get_error_string(ctx)))
            return 2
    rc, pins = ftdi.read_pins(ctx)
    if rc < 0:
        print("read_pins: %d %s" % (rc, ftdi.get_error_string(ctx)))
        return 2
    if isinstance(pins, (bytes, str)):
        pins = ord(pins)
    print("pins=%d side=%s" % (pins, "host" if pins & 1 else "dut"))
    ftdi.usb_close(ctx)
    ftdi.free(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
