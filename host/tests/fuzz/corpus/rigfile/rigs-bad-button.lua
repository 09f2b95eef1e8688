rig {
  name = "bad-button",
  button = sim {},
}
