-- SPDX-License-Identifier: MIT
-- "coin" fails one time in two: odd runs (counted in $GATE_TEST_DIR/coin.count) pass.
local t = require "rigor.test"
local s = t.suite("flaky", {})
s:case("steady", function() end)
s:case("coin", function()
  local p = assert(os.getenv("GATE_TEST_DIR"), "GATE_TEST_DIR is not set") .. "/coin.count"
  local f = io.open(p, "r")
  local n = f and tonumber(f:read("l")) or 0
  if f then f:close() end
  f = assert(io.open(p, "w"))
  f:write(tostring(n + 1), "\n")
  f:close()
  t.assert.eq(n % 2, 1, "odd runs pass")
end)
