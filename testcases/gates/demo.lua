-- SPDX-License-Identifier: MIT
-- The demo gate (`make demo-gate`, docs/release-gate.md): release 1.0 of the rigor test OS
-- on the two virtual rigs (rigs/virtual.lua and rigs/virtual-2.lua, both qemux86-64),
-- started by the make target in $RIGOR_DEMO_GATE_DIR/rig1 and rig2. Each virtual rig has
-- its own balena API emulator, so each gets the environment its start wrote (env_file).
-- The os, cloud, flasher and hup suites are required; testcases/gates/known-issue.lua is
-- an informative cell with one deliberately failing case, also quarantined, so the
-- report shows both without failing the gate.
local dir = os.getenv("RIGOR_DEMO_GATE_DIR") or "build/demo-gate"

release {
  version = "1.0",
  description = "rigor test OS 1.0 on the virtual rigs",
  image = "build/os/rigor-os-1.0.img",
  retries = { infra = 1, rerun = 1 },
}

board "qemux86-64" {
  rigs = { "virtual", "virtual-2" },
  capabilities = { "os-image", "flasher" },
  -- longest first (hup takes about 5 minutes, the others 1 to 2): with no baseline to
  -- order them by, cells start in this order and the two rigs finish close together
  suites = { "testcases/hup.lua", "testcases/os.lua", "testcases/cloud.lua", "testcases/flasher.lua" },
  informative = { "testcases/gates/known-issue.lua" },
}

rig "virtual" { env_file = dir .. "/rig1/env" }
rig "virtual-2" { env_file = dir .. "/rig2/env" }

quarantine "known-issue/console shows the future banner" {
  reason = "demo: the test OS has no such banner yet; shows how a known failure is carried",
  expires = "2099-12-31",
}
