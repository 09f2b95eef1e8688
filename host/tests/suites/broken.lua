local t = require "rigor.test"
local s = t.suite("broken"
return s
