-- SPDX-License-Identifier: MIT
-- The Lua binding, run by rigor itself: build/rigor --rig sim lua host/tests/lua_api.lua
-- Prints TAP.
local core = require "rigor.core"
local n, failed = 0, 0
local function check(cond, name, detail)
  n = n + 1
  if cond then print("ok " .. n .. " - " .. name)
  else failed = failed + 1; print("not ok " .. n .. " - " .. name); print("# " .. tostring(detail)) end
end

-- rig object
check(rig.name == "sim" and rig.device_type == "raspberrypi4-64", "rig name and device type")
check(rig:has("sd") and not rig:has("flasher"), "capabilities")
check(tostring(rig) == "rig (sim)", "tostring")
check(rig.button.boot and rig.button.reset and not rig.button.nope, "buttons by name")

-- expected failures: nil, message, code
assert(rig.power:off()); assert(rig.sdmux:set("dut")); assert(rig.power:on())
local ok, msg, code = rig.sdmux:set("host")
check(ok == nil and msg:find("interlock") and code == "RIG_E_PERM", "interlock returns nil, msg, code", msg)
check(rig.power:state() == "on", "power state")
local m = rig.power:measure()
check(m.mv == 5100 and m.ma == 450, "measure", m and m.mv)

-- misuse raises
local ok2, err2 = pcall(rig.sdmux.set, rig.sdmux, "sideways")
check(not ok2 and tostring(err2):find("invalid option 'sideways'"), "bad enum raises", err2)
local ok3, err3 = pcall(rig.power.on, rig.sdmux)
check(not ok3 and tostring(err3):find("rig.power expected"), "wrong object raises", err3)

-- console
check(rig.console:expect("login: ", 10000) == "login: ", "expect returns the match")
local cap = { rig.console:expect("(%w+)%s+login", 10) }
check(cap[1] == nil and cap[2]:find("no match for") and cap[3] == "RIG_E_TIMEOUT", "expect timeout: nil, msg, code", cap[2])
assert(rig.console:sendline("echo abc123"))
local a, b = rig.console:expect("(abc)(%d+)", 2000)
check(a == "abc" and b == "123", "expect returns captures", a)
rig.console:clear()
local r, rmsg = rig.console:read(50)
check(r == nil and rmsg == "timeout", "read times out", r)

-- infrastructure failures raise a table marked rigor_infra
assert(rig:inject("power", "gone"))
local ok4, e4 = pcall(rig.power.on, rig.power)
check(not ok4 and type(e4) == "table" and e4.rigor_infra and e4.code == "RIG_E_NODEV"
      and tostring(e4):find("device disappeared"), "device gone raises an infra error", tostring(e4))
assert(rig:inject("power", "ok"))

-- case deadline aborts blocking calls and busy Lua loops. An abort raises again at every
-- instruction after a pcall, so these catch it the runner's way: disarm in the handler.
local function caught(f)
	return xpcall(f, function(e) core.disarm(); return e end)
end
core.arm(core.now_ms() + 150)
local t0 = core.now_ms()
local ok5, e5 = caught(function() return rig.console:expect("never appears", 60000) end)
core.disarm()
check(not ok5 and e5.rigor_abort == "timeout" and core.now_ms() - t0 < 2000, "deadline aborts expect", tostring(e5))
core.arm(core.now_ms() + 100)
local ok6, e6 = caught(function() while true do end end)
core.disarm()
check(not ok6 and e6.rigor_abort == "timeout", "deadline aborts a busy loop", tostring(e6))
-- a hung back-end call is cut by the case deadline, not by its own (longer) timeout
assert(rig:inject("power", "hang"))
core.arm(core.now_ms() + 200)
t0 = core.now_ms()
local ok8, e8 = caught(function() return rig.power:on() end)
core.disarm()
assert(rig:inject("power", "ok"))
check(not ok8 and type(e8) == "table" and e8.rigor_abort == "timeout" and core.now_ms() - t0 < 1500,
      "deadline cuts a hung back-end call", tostring(e8))
core.arm(core.now_ms() + 100)
t0 = core.now_ms()
local ok9, e9 = caught(function() return rig.button.boot:press(5000) end)
core.disarm()
check(not ok9 and e9.rigor_abort == "timeout" and core.now_ms() - t0 < 1500, "deadline cuts a long press", tostring(e9))
check(rig.power:state() == "off" or true, "rig usable after an abort")
local ok7 = pcall(function() core.sleep(20) end)
check(ok7, "disarmed: no abort")

-- the process functions under rigor (lcore.c, rigor/proc.lua)
local p = io.popen("printf 'one\\ntwo\\n3.5 rest'")
check(p:read("l") == "one" and p:read("L") == "two\n" and p:read("n") == 3.5 and p:read("a") == " rest"
      and p:read("l") == nil, "io.popen read formats")
local pc1, pc2, pc3 = p:close()
check(pc1 == true and pc2 == "exit" and pc3 == 0, "io.popen close gives the exit status", tostring(pc3))
local lines = {}
for l in io.popen("seq 3"):lines() do lines[#lines + 1] = l end
check(table.concat(lines, ",") == "1,2,3", "io.popen lines", table.concat(lines, ","))
local wf = os.tmpname()
local w = io.popen("cat > " .. wf, "w")
w:write("written ", 42)
local wc = w:close()
local got = io.open(wf):read("a")
os.remove(wf)
check(wc == true and got == "written 42", "io.popen 'w' feeds the command at close", got)
local f1, f2, f3 = io.popen("exit 7"):close()
check(f1 == nil and f2 == "exit" and f3 == 7, "io.popen of a failing command", tostring(f3))
local e1, e2, e3 = os.execute("exit 3")
check(e1 == nil and e2 == "exit" and e3 == 3, "os.execute exit status", tostring(e3))
local k1, k2, k3 = os.execute("kill -TERM $$")
check(k1 == nil and k2 == "signal" and k3 == 15, "os.execute killed by a signal", tostring(k3))
check(os.execute() == true, "os.execute() says a shell is there")
check(os.execute("yes | head -c 10 >/dev/null") == true, "a command's SIGPIPE is not ignored (yes | head ends)")
local xok, xerr = pcall(os.exit, 3)
check(not xok and type(xerr) == "table" and xerr.rigor_abort == "exit" and xerr.exit_code == 3,
      "os.exit raises instead of exiting", tostring(xerr))

-- JSON (jansson)
local j = core.json_encode({ b = 1, a = { 1, 2, "x" }, e = setmetatable({}, core.array_mt), t = true })
check(j == '{"a": [1, 2, "x"], "b": 1, "e": [], "t": true}', "json_encode", j)
local v = core.json_decode('{"x": [1, {"y": null}], "s": "\\u00e9"}')
check(v.x[1] == 1 and v.x[2].y == core.null and v.s == "é", "json_decode")
check(core.json_decode('"a\\u0000b"') == "a\0b", "json_decode keeps NUL")
local okj, ej = pcall(core.json_encode, "\xff\xfe")
check(not okj and tostring(ej):find("not valid UTF%-8"), "json_encode rejects invalid UTF-8", ej)
check(math.abs(core.wall_ms() - os.time() * 1000) < 2000, "wall_ms")
local bad, berr = core.json_decode("{")
check(bad == nil and berr:find("json:"), "json_decode error", berr)

assert(rig:safe())
check(rig.power:state() == "off", "safe state powers off")
print("1.." .. n)
return failed == 0 and 0 or 1
