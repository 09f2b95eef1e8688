-- SPDX-License-Identifier: MIT
-- The balena client against the backend emulator (testcases/backend/rigor-backend with its
-- built-in seed): build/rigor lua host/tests/http_backend.lua http://127.0.0.1:PORT
-- Prints unnumbered TAP lines without a plan (host/tests/http.sh adds it).
local core = require "rigor.core"
local http = require "rigor.http"
local balena = require "rigor.balena"

local base = assert(arg[1], "usage: http_backend.lua BASE_URL")
local USER_KEY = "rigorUserApiKey0000000000000000000"
local tc = dofile("host/tests/tapcheck.lua")("backend")
local check = tc.check
local function show(v) return type(v) == "table" and core.json_encode(v) or tostring(v) end

local logs = {}
local b = balena.new{ endpoint = base, api_key = USER_KEY, log = function(l) logs[#logs + 1] = l end }
local me, msg = b:whoami()
check(me and me.username == "rigor", "whoami", msg or show(me))
local fleet
fleet, msg = b:fleet("rigor/test")
check(fleet and math.type(fleet.id) == "integer" and fleet.slug == "rigor/test", "fleet by slug", msg or show(fleet))
local cfg
cfg, msg = b:download_config{ fleet = "rigor/test", device_type = "raspberrypi4-64", version = "5.3.10" }
check(cfg and cfg.applicationId == (fleet and fleet.id) and type(cfg.apiKey) == "string", "download_config", msg or show(cfg))
local code
_, msg, code = b:download_config{ fleet = "rigor/test", device_type = "raspberrypi4-64", version = "banana" }
check(code == "HTTP_400" and msg:find("no longer supported", 1, true) and msg:find("6.0.0", 1, true)
	and msg:find("Which version to ask for", 1, true), "an HTTP 400 about the version says which to ask for", msg)
local uuid = balena.uuid()
local dev
dev, msg = b:register{ fleet_id = cfg and cfg.applicationId or 1, device_type = "raspberrypi4-64", uuid = uuid,
	provisioning_key = cfg and cfg.apiKey or "none" }
check(dev and dev.uuid == uuid and type(dev.api_key) == "string", "register", msg or show(dev))
local d
d, msg = b:device(uuid)
check(d and d.uuid == uuid and not balena.is_online(d), "device, not yet online", msg or show(d))
local ok, code
ok, msg, code = b:wait_online(uuid, 300, { interval = 50 })
check(ok == nil and code == "RIG_E_TIMEOUT", "wait_online times out", msg)

-- the "supervisor": fetch the target state and report versions with the device key
local dk = dev and dev.api_key or "none"
local r = http.request{ url = base .. "/device/v3/" .. uuid .. "/state", headers = { Authorization = "Bearer " .. dk } }
check(r and r.status == 200, "device fetches its target state", r and r.status)
r = http.json{ method = "PATCH", url = base .. "/device/v3/state", headers = { Authorization = "Bearer " .. dk },
	body = { [uuid] = { os_version = "balenaOS 5.3.10", supervisor_version = "16.1.0", os_variant = "prod" } } }
check(r and r.status >= 200 and r.status < 300, "device reports its state", r and (r.status .. " " .. r.body))
d, msg = b:wait_online(uuid, 5000, { interval = 50 })
check(d and balena.is_online(d), "wait_online sees it online", msg or show(d))
check(b:os_version(uuid) == "balenaOS 5.3.10", "os_version", b:os_version(uuid))
check(b:supervisor_version(uuid) == "16.1.0", "supervisor_version", b:supervisor_version(uuid))

-- host OS releases (added through the emulator's control endpoint) and pinning
for _, v in ipairs{ "5.3.10", "6.0.13" } do
	http.json{ method = "POST", url = base .. "/__rigor/hostos",
		body = { device_type = "raspberrypi4-64", version = v } }
end
local rels
rels, msg = b:os_releases("raspberrypi4-64")
check(rels and #rels == 2 and rels[1].raw_version == "5.3.10" and rels[2].raw_version == "6.0.13"
	and math.type(rels[2].id) == "integer", "os_releases lists the host OS releases", msg or show(rels))
rels, msg = b:os_releases("raspberrypi3")
check(rels and #rels == 0, "os_releases of a type without releases is empty", msg or show(rels))
local t
t, msg = b:os_target(uuid)
check(t and t.os_version == "balenaOS 5.3.10" and t.target == nil,
	"os_target: reported version, not pinned (the releases came after the first report)", msg or show(t))
ok, msg = b:pin_os_release(uuid, "6.0.13")
t = b:os_target(uuid)
check(ok == true and t and t.target == "6.0.13", "pin_os_release to 6.0.13, read back", msg or show(t))
ok, msg, code = b:pin_os_release(uuid, "9.9.9")
check(ok == nil and code == "RIG_E_NOENT", "pin_os_release to an unknown version: RIG_E_NOENT", msg)
ok, msg, code = b:pin_os_release(uuid, "5.3.10")
check(ok == nil and code == "HTTP_400" and msg:find("downgrade", 1, true), "pin_os_release refuses a downgrade (HTTP_400)", msg)
ok, msg = b:pin_os_release(uuid, nil)
t = b:os_target(uuid)
check(ok == true and t and t.target == nil, "pin_os_release(uuid, nil) unpins", msg or show(t))

-- a shared fleet's hygiene: provisioning keys that expire, by the API's clock; devices
-- deleted at the end
local function register_with(key_expiry)
	local c, m = b:download_config{ fleet = "rigor/test", device_type = "raspberrypi4-64",
		version = "6.0.13", key_expiry = key_expiry }
	if not c then return nil, m end
	return b:register{ fleet_id = c.applicationId, device_type = "raspberrypi4-64",
		provisioning_key = c.apiKey }
end
local reg1, reg2, code2
reg1, msg = register_with(600)
check(reg1 and reg1.uuid, "a provisioning key that expires in 600 s registers a device", msg)
reg2, msg, code2 = register_with(-60)
check(reg2 == nil and code2 == "HTTP_401", "an expired provisioning key is refused (HTTP_401)", msg)
-- move the API's clock 2 h on: a key dated by the host's clock would be born expired
http.json{ method = "POST", url = base .. "/__rigor/clock", body = { advance_ms = 2 * 3600 * 1000 } }
b:whoami()
check(b.clock_skew and b.clock_skew >= 7190 and b.clock_skew <= 7210,
	"the client reads the API's clock from its Date header (2 h ahead)", b.clock_skew)
reg2, msg = register_with(600)
check(reg2 and reg2.uuid, "key expiry counts from the API's clock, not the host's", msg)
check(balena.http_date("Thu, 03 Dec 2026 08:40:05 GMT") == 1796287205 and
	balena.http_date("Sun, 29 Feb 2032 23:59:59 GMT") == 1961711999 and
	balena.http_date("yesterday") == nil, "http_date", balena.http_date("Thu, 03 Dec 2026 08:40:05 GMT"))
if reg1 then
	ok, msg = b:remove_device(reg1.uuid)
	local gone, _, gcode = b:device(reg1.uuid)
	check(ok == true and gone == nil and gcode == "RIG_E_NOENT", "remove_device deletes the device", msg)
	ok, msg, code = b:remove_device(reg1.uuid)
	check(ok == nil and code == "RIG_E_NOENT", "remove_device of a deleted device: RIG_E_NOENT", msg)
end

local leaked = {}
for _, l in ipairs(logs) do
	if l:find(USER_KEY, 1, true) or (cfg and l:find(cfg.apiKey, 1, true)) then leaked[#leaked + 1] = l end
end
check(#leaked == 0, "no keys in log lines", table.concat(leaked, "\n"))
os.exit(tc.status())
