-- SPDX-License-Identifier: MIT
-- Takes $GATE_SLOW_MS (default 0) milliseconds: the baseline's slower-duration flag.
local t = require "rigor.test"
local core = require "rigor.core"
local s = t.suite("slow", {})
s:case("waits", function() core.sleep(tonumber(os.getenv("GATE_SLOW_MS") or "0")) end)
