local t = require "rigor.test"
local s = t.suite("infra", { timeout = 5000 })
s:case("power switch vanishes", function(rig)
  assert(rig:inject("power", "gone"))
  rig.power:on()
end)
s:after_all(function(rig) rig:inject("power", "ok") end)
return s
