-- SPDX-License-Identifier: MIT
-- The demo gate's informative cell (testcases/gates/demo.lua): one case that passes and
-- one that fails on purpose (it waits for a console line the test OS never prints), so
-- `make demo-gate` shows a failing, re-run and quarantined case that does not fail the
-- release. Needs only a console; no image is flashed.
local t = require "rigor.test"
local A = t.assert

local s = t.suite("known-issue", { requires = { "serial" }, tags = { "demo" }, timeout = 30000 })

s:case("rig answers", function(rig)
	A.eq(rig.power:state(), "off")
end)

s:case("console shows the future banner", function(rig)
	rig.console:clear()
	A.not_nil(rig.console:expect("rigor OS 2%.0 banner", 1000), "banner on the console")
end)
