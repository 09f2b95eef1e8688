rig {
  name = "bad-param",
  power = sim {
    min_off_ms = "a while",
  },
  storage = file {},
  console = sim { baud = 115200 },
}
