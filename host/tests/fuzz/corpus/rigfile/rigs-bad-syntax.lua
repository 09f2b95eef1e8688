rig {
  name = "bad-syntax"
  power = sim {},
}
