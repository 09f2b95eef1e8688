-- SPDX-License-Identifier: MIT
-- The cloud suite's API calls (testcases/cloud.lua, rigor.provision, rigor.balena), made
-- against a balena API with no device in the loop: this script plays the device's part
-- (registers with the provisioning key, reports its state with its device key), so it
-- runs anywhere the API is reachable. It leaves nothing behind: the provisioning keys it
-- mints expire, and the device it registered is deleted at the end, also after a failure.
--
--   rigor lua host/tests/real_api.lua LABEL
--
-- Environment: RIGOR_BALENA_API (default balenaCloud), RIGOR_BALENA_API_KEY (a user API
-- key; required), RIGOR_BALENA_FLEET (slug, required), RIGOR_BALENA_DEVICE_TYPE (default
-- the fleet's), RIGOR_CONFIG_OS_VERSION (default 6.0.0), RIGOR_REAL_API_ONLINE_MS (wait for
-- the heartbeat, default 60000). Prints unnumbered TAP lines, each prefixed with LABEL
-- (host/tests/real_api.sh numbers them); exits 1 when a check failed.
local core = require "rigor.core"
local http = require "rigor.http"
local balena = require "rigor.balena"

local label = arg[1] or "api"
local FLEET = assert(os.getenv("RIGOR_BALENA_FLEET"), "RIGOR_BALENA_FLEET not set")
local VERSION = os.getenv("RIGOR_CONFIG_OS_VERSION") or "6.0.0"
local ONLINE_MS = tonumber(os.getenv("RIGOR_REAL_API_ONLINE_MS") or "") or 60000
local tc = dofile("host/tests/tapcheck.lua")(label)
local check = tc.check

local b = balena.new{ timeout = 20000 }
local registered       -- the uuid to delete, once registered

local function run()
	local me, msg = b:whoami()
	if not check(me and (me.actorType == "user" or me.username), "whoami: the key is a user's", msg) then
		return
	end
	local fleet
	fleet, msg = b:fleet(FLEET)
	if not check(fleet and math.type(fleet.id) == "integer", "fleet " .. FLEET, msg) then return end
	local dt = os.getenv("RIGOR_BALENA_DEVICE_TYPE")
	if not dt or dt == "" then
		local id = type(fleet.is_for__device_type) == "table" and fleet.is_for__device_type.__id
		local r = id and b:call("GET", "/v7/device_type(" .. id .. ")?$select=slug")
		dt = r and r.d and r.d[1] and r.d[1].slug
		if not check(dt, "the fleet's device type", r) then return end
	end

	-- provisioning, as rigor.provision does it: a key that expires, a uuid chosen here
	local cfg
	cfg, msg = b:download_config{ fleet = fleet, device_type = dt, version = VERSION, key_expiry = 600 }
	if not check(cfg and type(cfg.apiKey) == "string" and cfg.apiKey ~= b.api_key and
			cfg.applicationId == fleet.id,
			"download_config: a fresh provisioning key (10 min), not the user's key", msg) then
		return
	end
	local uuid = balena.uuid()
	local dev
	dev, msg = b:register{ fleet_id = fleet.id, device_type = dt, uuid = uuid,
		provisioning_key = cfg.apiKey }
	if not check(dev and dev.uuid == uuid and type(dev.api_key) == "string",
			"register with the provisioning key", msg) then
		return
	end
	registered = uuid
	local n
	n, msg = b:fleet_devices_with_uuid(FLEET, uuid)
	check(n == 1, "one device with the uuid in the fleet (the cloud suite's scoped count)", msg or n)
	local d
	d, msg = b:device(uuid)
	check(d and d.uuid == uuid and not balena.is_online(d),
		"device(uuid) with every field the suites select; not online before a heartbeat",
		msg or core.json_encode(d or {}))

	-- the device's part: target state and a state report with its own key = a heartbeat
	local auth = { Authorization = "Bearer " .. dev.api_key }
	local r = http.request{ url = b.endpoint .. "/device/v3/" .. uuid .. "/state", headers = auth,
		timeout = 20000 }
	check(r and r.status == 200, "the device fetches its target state", r and r.status)
	local reported = "balenaOS " .. VERSION
	r = http.json{ method = "PATCH", url = b.endpoint .. "/device/v3/state", headers = auth,
		timeout = 20000, body = { [uuid] = { os_version = reported, os_variant = "prod", status = "Idle" } } }
	check(r and r.status >= 200 and r.status < 300, "the device reports its state",
		r and (r.status .. " " .. r.body))
	d, msg = b:wait_online(uuid, ONLINE_MS)
	check(d and d.api_heartbeat_state == "online",
		"online by the API heartbeat within " .. ONLINE_MS .. " ms", msg)
	check(d and d.is_connected_to_vpn ~= true,
		"no VPN connection from a device that only polls the API (the heartbeat is apart)",
		d and tostring(d.is_connected_to_vpn))
	check(b:os_version(uuid) == reported, "os_version is what the device reported", b:os_version(uuid))

	-- a key that expired is refused (the API may also refuse to mint one)
	local late, lmsg, lcode = b:download_config{ fleet = fleet, device_type = dt, version = VERSION,
		key_expiry = -60 }
	if late then
		local x, xmsg, xcode = b:register{ fleet_id = fleet.id, device_type = dt,
			provisioning_key = late.apiKey }
		if x then b:remove_device(x.uuid) end
		check(x == nil and xcode == "HTTP_401", "a provisioning key past its expiry is refused (401)",
			xmsg or "registered")
	else
		check(lcode == "HTTP_400", "a provisioning key past its expiry is refused (400 when minted)", lmsg)
	end

	-- the cloud suite's cleanup
	local ok
	ok, msg = b:remove_device(uuid)
	check(ok == true, "remove_device", msg)
	registered = nil
	local gone, _, gcode = b:device(uuid)
	check(gone == nil and gcode == "RIG_E_NOENT", "the device is gone", gcode)
	check(b:fleet_devices_with_uuid(FLEET, uuid) == 0, "no device with the uuid left in the fleet")
end

local ok, err = pcall(run)
check(ok, "no error", err)
if registered then
	local r, msg = b:remove_device(registered)
	check(r, "device " .. registered .. " deleted after the failure", msg)
end
os.exit(tc.status())
