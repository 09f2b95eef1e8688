-- SPDX-License-Identifier: MIT
-- rigor.testos's pure parts: the supply verdict the os suite's under-voltage check makes
-- from rig telemetry.

local H = require "harness"
local testos = require "rigor.testos"

H.test("supply_verdict", function()
	local ok, summary, low = testos.supply_verdict({ { mv = 5010, ma = 120 }, { mv = 4790, ma = 480 },
		{ mv = 4980, ma = 300 } }, 5000, 5)
	H.eq(ok, true, "4790 mV is above 4750 mV (5000 mV - 5 %)")
	H.eq(low.mv, 4790, "the lowest sample")
	H.ok(summary:find("3 samples, min 4790 mV (floor 4750 mV = 5000 mV - 5 %), max 480 mA", 1, true),
		"the summary names count, minimum, floor and peak current", summary)
	ok, summary, low = testos.supply_verdict({ { mv = 5000, ma = 100 }, { mv = 4749, ma = 900 } }, 5000, 5)
	H.eq(ok, false, "one sample at 4749 mV fails")
	H.eq(low.ma, 900, "the failing sample is returned")
	H.eq(testos.supply_verdict({ { mv = 4750, ma = 0 } }, 5000, 5), true, "exactly at the floor passes")
	H.eq(testos.supply_verdict({ { mv = 11500, ma = 0 } }, 12000, 5), true, "a 12 V rating")
	ok, summary = testos.supply_verdict({}, 5000, 5)
	H.eq(ok, false, "no samples is not a pass")
	H.eq(summary, "no telemetry samples", "and says so")
end)

H.done()
