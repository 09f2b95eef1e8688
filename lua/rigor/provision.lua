-- SPDX-License-Identifier: MIT
--- rigor.provision: put balenaOS on the device under test and see it come online.
--
--   local provision = require "rigor.provision"
--   local dev = assert(provision.run(rig, { fleet = "myorg/myfleet", version = "5.3.10",
--                                           image = "balena.img.zst" }))
--
-- Steps: download a config.json for the fleet and device type (a fresh provisioning key
-- and a uuid chosen here, so the device can be found) -> rig:flash(image, { files =
-- { ["config.json"] = ... } }) -> card to the DUT, power on -> follow the console while
-- polling the API until the device is online. The console output is kept (last 4 KiB)
-- and quoted, redacted, when the device does not come online.
local balena = require "rigor.balena"
local core = require "rigor.core"

local M = {}

local CONSOLE_KEEP = 4096

--- Provision @rig. opts: balena (a client; default balena.new{} from the environment),
-- fleet (slug or id), device_type (default rig.device_type), version (the balenaOS version
-- whose provisioning protocol the image speaks, for /download-config: balena.CONFIG_VERSION_HELP),
-- image (path), uuid (default: a new one), config (table merged into
-- config.json), options (extra /download-config parameters), timeout (ms until online,
-- default 15 min), key_expiry (the provisioning key's lifetime, seconds or an ISO 8601
-- date; default the timeout plus 10 min, so no key outlives the run by long: the device
-- needs it only to register), on_console (function(text), called with console output), log
-- (function(line)). Returns the device table and { uuid =, config = } or nil, message, code.
-- Raises when the build has no flashing (rig.flash missing).
function M.run(rig, opts)
	assert(type(opts) == "table" and opts.fleet and opts.version and opts.image,
		"provision.run(rig, {fleet=, version=, image=}) expected")
	local client = opts.balena or balena.new{}
	local log = function(fmt, ...)
		if opts.log then opts.log(client:redact(string.format(fmt, ...))) end
	end
	if type(rig.flash) ~= "function" then
		error("provision: flashing is not available in this build (no rig:flash)", 2)
	end
	local device_type = opts.device_type or rig.device_type
	log("config.json for balenaOS %s from /download-config: the provisioning protocol the image " ..
		"speaks, which may differ from its own version (docs/lua-api.md, 'Which version to ask for')",
		tostring(opts.version))
	local cfg, msg, code = client:download_config{ fleet = opts.fleet, device_type = device_type,
		version = opts.version, options = opts.options,
		key_expiry = opts.key_expiry or ((opts.timeout or 15 * 60 * 1000) // 1000 + 600) }
	if not cfg then return nil, "provision: " .. msg, code end
	local uuid = opts.uuid or balena.uuid()
	cfg.uuid = uuid
	for k, v in pairs(opts.config or {}) do cfg[k] = v end
	log("flashing %s for device %s (%s, fleet %s)", opts.image, uuid, device_type, tostring(opts.fleet))

	if rig.power then rig.power:off() end
	local ok, fmsg, fcode = rig:flash(opts.image, { files = { ["config.json"] = core.json_encode(cfg, 2) } })
	if not ok then return nil, client:redact("provision: flashing failed: " .. tostring(fmsg)), fcode end
	if rig.sdmux then
		ok, fmsg, fcode = rig.sdmux:set("dut")
		if not ok then return nil, "provision: " .. tostring(fmsg), fcode end
	end
	ok, fmsg, fcode = rig.power:on()
	if not ok then return nil, "provision: " .. tostring(fmsg), fcode end
	log("powered on; waiting for %s to come online", uuid)

	local tail = ""
	local function follow(ms)
		if not rig.console then return core.sleep(ms) end
		local t_end = core.now_ms() + ms
		repeat
			local data = rig.console:read(math.max(0, t_end - core.now_ms()))
			if data then
				tail = (tail .. data):sub(-CONSOLE_KEEP)
				if opts.on_console then opts.on_console(data) end
			end
		until core.now_ms() >= t_end
	end
	local dev, wmsg, wcode = client:wait_online(uuid, opts.timeout or 15 * 60 * 1000,
		{ sleep = follow, interval = opts.interval, max_interval = opts.max_interval })
	if not dev then
		if tail ~= "" then
			wmsg = wmsg .. "\nlast console output:\n" .. client:redact(tail)
		end
		return nil, "provision: " .. wmsg, wcode
	end
	return dev, { uuid = uuid, config = cfg }
end

return M
