-- SPDX-License-Identifier: MIT
-- The virtual rig: rigfw-sim as the rig board, testcases/virtual/rigor-vboard as the DUT
-- (QEMU x86_64 with OVMF booting the card file or its internal disk), the balena API emulator behind
-- it. Start it with `scripts/virtual-rig start DIR` and `. DIR/env` (sets
-- RIGOR_VIRTUAL_DIR); without the variable the default directory /tmp/rigor-virtual is
-- used. `make demo` runs testcases/os.lua, testcases/cloud.lua, testcases/flasher.lua and
-- testcases/hup.lua on it. rigs/virtual-2.lua is a second one that can run at the same time.
-- docs/virtual-rig.md.
local dir = os.getenv("RIGOR_VIRTUAL_DIR")
if dir == nil or dir == "" then dir = "/tmp/rigor-virtual" end

rig {
  name = "virtual",
  device_type = "qemux86-64",
  description = "virtual rig: rigfw-sim + QEMU DUT (rigor-vboard) + balena API emulator",
  -- "virtual" and "os-image" select testcases/os.lua and testcases/cloud.lua; "flasher":
  -- the DUT has internal storage (DIR/internal.img) and boots the card only while the
  -- boot strap (button.boot, rig-board output 0) is held at power-on (testcases/flasher.lua)
  capabilities = { "sd", "serial", "virtual", "os-image", "balena", "flasher", "ssh" },

  power = rigfw { link = "unix:" .. dir .. "/link", min_off_ms = 50 },
  sdmux = rigfw { link = "unix:" .. dir .. "/link" },
  button = { boot = rigfw { link = "unix:" .. dir .. "/link", index = 0 } },
  console = socket { path = dir .. "/console" },
  storage = file { path = dir .. "/card.img" },
  -- the guest's SSH server on a loopback port, and its NIC link as the uplink switch
  network = vboard { path = dir .. "/net" },
}
