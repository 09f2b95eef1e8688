rig {
  name = "bad-backend",
  power = relay9000 { port = 1 },
}
