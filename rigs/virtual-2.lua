-- SPDX-License-Identifier: MIT
-- A second virtual rig, the same as rigs/virtual.lua but with its own directory, so both
-- can run at the same time without sharing anything: its own rigfw-sim (link socket), card
-- and internal disk files, console socket, balena API emulator (port) and, by its name,
-- its own lock. Start it with `scripts/virtual-rig start DIR virtual-2` and `. DIR/env`
-- (sets RIGOR_VIRTUAL2_DIR; default directory /tmp/rigor-virtual-2). docs/virtual-rig.md.
local dir = os.getenv("RIGOR_VIRTUAL2_DIR")
if dir == nil or dir == "" then dir = "/tmp/rigor-virtual-2" end

rig {
  name = "virtual-2",
  device_type = "qemux86-64",
  description = "second virtual rig: rigfw-sim + QEMU DUT (rigor-vboard) + balena API emulator",
  capabilities = { "sd", "serial", "virtual", "os-image", "balena", "flasher", "ssh" },

  power = rigfw { link = "unix:" .. dir .. "/link", min_off_ms = 50 },
  sdmux = rigfw { link = "unix:" .. dir .. "/link" },
  button = { boot = rigfw { link = "unix:" .. dir .. "/link", index = 0 } },
  console = socket { path = dir .. "/console" },
  storage = file { path = dir .. "/card.img" },
  -- the guest's SSH server on a loopback port, and its NIC link as the uplink switch
  network = vboard { path = dir .. "/net" },
}
