local t = require "rigor.test"
local s = t.suite("slow", { timeout = 60000 })
s:case("waits for a prompt that never comes", function(rig)
  assert(rig.power:on())
  io.stderr:write("slow-case-started\n")
  rig.console:expect("this never appears", 50000)
end)
s:case("never reached", function() end)
return s
