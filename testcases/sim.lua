-- SPDX-License-Identifier: MIT
-- Sample suite: power, SD mux, buttons and console. Runs on any rig with those roles;
-- on the sim rig the console shows a board that boots when powered with the card.
local t = require "rigor.test"
local A = t.assert

local s = t.suite("basics", { requires = { "sd", "serial" }, tags = { "smoke" }, timeout = 30000 })

s:before_each(function(rig)
  -- every case starts from a known state: DUT off, card on the DUT side
  assert(rig.power:off())
  assert(rig.sdmux:set("dut"))
end)

s:case("power switches and measures", function(rig)
  assert(rig.power:on())
  A.eq(rig.power:state(), "on")
  local m, err = rig.power:measure()
  if not m then t.skip("this rig cannot measure: " .. err) end
  A.gt(m.mv, 4500, "DUT supply voltage (mV)")
  A.gt(m.ma, 0, "DUT current (mA)")
  assert(rig.power:off())
  A.eq(rig.power:state(), "off")
end)

s:case("interlock keeps the card from the host while powered", function(rig)
  assert(rig.power:on())
  local ok, msg, code = rig.sdmux:set("host")
  A.is_nil(ok, "switching the mux to the host while powered must be refused")
  A.match(msg, "interlock")
  A.eq(code, "RIG_E_PERM")
  A.eq(rig.sdmux:get(), "dut")
  assert(rig.power:off())
  assert(rig.sdmux:set("host"))
  A.eq(rig.sdmux:get(), "host")
end)

s:case("boots to a login prompt from the card", function(rig)
  assert(rig.power:on())
  A.not_nil(rig.console:expect("reading boot partition", 10000))
  A.not_nil(rig.console:expect("login: ", 20000))
  assert(rig.console:sendline("echo rigor-was-here"))
  A.not_nil(rig.console:expect("rigor%-was%-here\r?\n", 5000))
end)

s:case("without the card the boot ROM stops", function(rig)
  assert(rig.sdmux:set("off"))   -- card disconnected from both sides
  assert(rig.power:on())
  A.not_nil(rig.console:expect("no bootable media", 10000))
end)

s:case("power cycle reboots", function(rig)
  assert(rig.power:on())
  A.not_nil(rig.console:expect("login: ", 20000))
  assert(rig.power:cycle())
  A.not_nil(rig.console:expect("boot ROM", 10000))
  A.not_nil(rig.console:expect("login: ", 20000))
end)

s:case("buttons press and hold", function(rig)
  for name, button in pairs(rig.button) do
    assert(button:press(20), "press " .. name)
    assert(button:hold())
    assert(button:release())
  end
end)

s:case("USB boot serves a directory", { requires = { "usbboot" } }, function(rig)
  assert(rig.power:on())
  assert(rig.usbboot:boot(".", 5000))
end)

s:case("flasher rigs have a boot strap", { requires = { "flasher" } }, function(rig)
  -- only rigs that declare the 'flasher' capability run this (rigs/virtual.lua: the card
  -- boots only with button.boot held; testcases/flasher.lua); the sim rig skips it
  A.not_nil(rig.button.boot, "a flasher rig selects the card with button.boot")
end)

return s
