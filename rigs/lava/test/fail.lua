-- SPDX-License-Identifier: MIT
-- make test-lava: one case that fails on purpose, so a failed rigor case is seen to reach
-- LAVA as a failed LAVA test case (and the job still completes).
local t = require "rigor.test"

local s = t.suite("lava-fail", { requires = { "serial" } })

s:case("hostname is the lab's", function(rig)
  t.assert.eq("sim-dut", "lab-dut-7", "hostname")
end)
