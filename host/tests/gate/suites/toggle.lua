-- SPDX-License-Identifier: MIT
-- Cases a, b and c fail when their letter is in $GATE_FAIL ("a,c"): one suite whose
-- outcome a gate file chooses, for the baseline diff.
local t = require "rigor.test"
local s = t.suite("toggle", {})
for _, name in ipairs({ "a", "b", "c" }) do
  s:case(name, function()
    local fail = "," .. (os.getenv("GATE_FAIL") or "") .. ","
    t.assert.eq(fail:find("," .. name .. ",", 1, true), nil, "case " .. name .. " is told to fail")
  end)
end
