rig {
  name = "bad-role",
  powr = sim {},
}
