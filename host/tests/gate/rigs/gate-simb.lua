-- SPDX-License-Identifier: MIT
-- A sim rig for host/tests/gate.sh: two of the same device type, so a cell can move.
rig {
  name = "gate-simb", device_type = "simboard", capabilities = { "sd", "serial" },
  power = sim { min_off_ms = 10, mv = 5100, ma = 450 },
  sdmux = sim { settle_ms = 1 },
  console = sim { line_ms = 1, hostname = "simb" },
  storage = sim { size_mb = 4 },
}
