-- SPDX-License-Identifier: MIT
-- A sim rig of another device type (host/tests/gate.sh: a board named with a wrong rig).
rig {
  name = "gate-other", device_type = "otherboard", capabilities = { "sd" },
  power = sim {},
  sdmux = sim {},
  storage = sim { size_mb = 4 },
}
