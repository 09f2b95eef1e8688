local t = require "rigor.test"
local s = t.suite("mixed", { timeout = 5000 })
s:case("passes", function(rig) assert(rig.power:on()) end)
s:case("fails", function(rig)
  assert(rig.power:on())
  t.assert.eq(rig.power:state(), "off", "power state")
end)
return s
