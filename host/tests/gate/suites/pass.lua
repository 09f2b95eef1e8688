-- SPDX-License-Identifier: MIT
-- Passes; its first case switches power, so an injected power fault makes it an infrastructure error.
local t = require "rigor.test"
local s = t.suite("pass", { requires = { "sd" } })
s:case("power", function(rig) assert(rig.power:on()); assert(rig.power:off()) end)
s:case("arith", function() t.assert.eq(1 + 1, 2) end)
