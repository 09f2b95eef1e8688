-- SPDX-License-Identifier: MIT
-- Needs a capability the gate's sim rigs lack: every case skips.
local t = require "rigor.test"
local s = t.suite("skip", { requires = { "usbboot" } })
s:case("needs usbboot", function() end)
