-- SPDX-License-Identifier: MIT
-- "broken" fails every time.
local t = require "rigor.test"
local s = t.suite("always", {})
s:case("ok", function() end)
s:case("broken", function() t.assert.eq("got", "want", "always fails") end)
