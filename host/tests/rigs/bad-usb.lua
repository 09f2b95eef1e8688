rig {
  name = "bad-usb",
  sdmux = sdwire { vid_pid = "not-an-id" },
  console = serial {
    usb_path = "1-1.4", udev = { ID_SERIAL_SHORT = "A1", ["ID-MODEL"] = "x" },
  },
  storage = usb { udev = "ID_SERIAL_SHORT=A1" },
}
