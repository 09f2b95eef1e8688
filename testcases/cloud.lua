-- SPDX-License-Identifier: MIT
-- Provisioning a balenaOS-shaped image (default: the rigor test OS) against a balena API
-- (the emulator of testcases/backend/, started by scripts/virtual-rig) with
-- rigor.provision and rigor.balena: the device comes online, reports the image's version,
-- keeps only its own device key on the card, and comes back after a reboot without
-- registering again. Needs the "os-image" and "balena" capabilities (rigs/virtual.lua);
-- SKIPPED elsewhere, and for an image that is not balenaOS-shaped (rig.image.balena: it
-- has no boot partition that takes a config.json). On a rig with the "flasher" capability
-- the boot strap is held so that the board boots the card.
--
-- What to expect comes from the image's identity (rig.image; docs/os-image.md "What the
-- suites read from the image"): the OS version the API reports is the image's VERSION
-- (else VERSION_ID), its balena device type is the rig's device_type, config.json is read
-- from its boot partition. Nothing is read from the DUT's console: "no new registration"
-- is the API's word (same id, same created_at, one device with the uuid) and the card's
-- (config.json keeps the uuid, the only name it could register under).
--
-- On a shared fleet (two rigs, a real balenaCloud fleet) the suite leaves nothing behind and
-- does not trip over other rigs: every check is scoped to its own device's uuid (never the
-- fleet's device count, which another rig's provisioning changes), the provisioning key it
-- mints expires (rigor.provision: the online timeout plus 10 min), and after the last case
-- it deletes the device it registered (RIGOR_CLOUD_KEEP_DEVICE=1 keeps it, for a look).
--
-- Environment: RIGOR_BALENA_API, RIGOR_BALENA_API_KEY (a user key; scripts/virtual-rig
-- writes both into DIR/env), RIGOR_BALENA_FLEET (default rigor/test), RIGOR_OS_IMAGE
-- (default build/os/rigor-os-1.0.img), RIGOR_VIRTUAL_GUEST_API (the API as the guest sees
-- it; put into config.json), RIGOR_CONFIG_OS_VERSION (the balenaOS version asked of
-- /download-config, default 6.0.0: the test OS numbers itself 1.0 but speaks the
-- provisioning protocol of balenaOS >= 2.7.8, a fleet provisioning key in apiKey),
-- RIGOR_ONLINE_TIMEOUT_MS (default 90000), RIGOR_CLOUD_KEEP_DEVICE (1: do not delete the
-- device at the end).
local t = require "rigor.test"
local core = require "rigor.core"
local balena = require "rigor.balena"
local provision = require "rigor.provision"
local testos = require "rigor.testos"
local A = t.assert

local IMAGE = os.getenv("RIGOR_OS_IMAGE") or "build/os/rigor-os-1.0.img"
local FLEET = os.getenv("RIGOR_BALENA_FLEET") or "rigor/test"
local CONFIG_VERSION = testos.config_os_version()
local ONLINE_MS = testos.env_int("RIGOR_ONLINE_TIMEOUT_MS", 90000)

local s = t.suite("cloud", { requires = { "os-image", "balena", "sd", "serial" },
	tags = { "cloud", "virtual" }, timeout = ONLINE_MS + 60000 })

local client        -- rigor.balena client
local image         -- rig.image: the identity of the image under test
local boot_part     -- its boot partition (number), where config.json is
local dev           -- { uuid, id, created_at } once provisioned

local registered = {}   -- uuids this run registered, deleted by after_all

-- devices in the fleet with @uuid: scoped so that other rigs' provisioning does not count
local function devices_with_uuid(uuid)
	return assert(client:fleet_devices_with_uuid(FLEET, uuid))
end

local strap_card_boot = testos.strap_card_boot

-- provision once; later cases reuse the device (each also works alone: it provisions)
local function ensure_provisioned(rig)
	if dev then return dev end
	strap_card_boot(rig)
	local guest_api = os.getenv("RIGOR_VIRTUAL_GUEST_API")
	local d, info = provision.run(rig, {
		balena = client, fleet = FLEET, version = CONFIG_VERSION, image = IMAGE,
		config = { apiEndpoint = guest_api, rigorReportInterval = 5 },
		timeout = ONLINE_MS, log = function(line) t.log("%s", line) end,
	})
	if type(info) == "table" then registered[#registered + 1] = info.uuid end
	A.ok(d, info)   -- on failure: the message, with the redacted console tail
	dev = { uuid = info.uuid, id = d.id }
	local full = assert(client:device(dev.uuid, "id,uuid,created_at"))
	dev.created_at = full.created_at
	t.log("device %s (id %s) online", dev.uuid, tostring(dev.id))
	return dev
end

s:before_all(function(rig)
	testos.need_image(IMAGE, "OS image")
	if (os.getenv("RIGOR_BALENA_API") or "") == "" then
		t.skip("RIGOR_BALENA_API not set (scripts/virtual-rig start DIR; . DIR/env)")
	end
	client = balena.new{ timeout = 10000 }
	local me, msg = client:whoami()
	assert(me, "the balena API does not answer: " .. tostring(msg))
	-- the image's identity, read back from the card by the flash
	image = assert(rig:flash(IMAGE)).image
	if not image.balena then
		t.skip("not a balenaOS-shaped image (" .. image.name .. "): it has no boot partition for config.json")
	end
	boot_part = assert(testos.boot_partition(image), "no boot partition in " .. image.name)
	assert(image.version, "no VERSION or VERSION_ID in " .. image.name .. "'s os-release")
	if image.device_type then
		A.eq(image.device_type, rig.device_type, "the image's balena device type vs the rig's device_type")
	end
	t.log("image %s: version %s, device type %s, sha256 %s", image.name, image.version,
		tostring(image.device_type), image.sha256)
end)

s:after_all(function()
	if not client then return end
	for _, uuid in ipairs(registered) do
		if os.getenv("RIGOR_CLOUD_KEEP_DEVICE") == "1" then
			t.log("device %s kept (RIGOR_CLOUD_KEEP_DEVICE=1)", uuid)
		else
			local ok, msg, code = client:remove_device(uuid)
			if ok then
				t.log("device %s deleted from %s", uuid, FLEET)
			elseif code ~= "RIG_E_NOENT" then
				error("could not delete device " .. uuid .. " from " .. FLEET .. ": " .. tostring(msg))
			end
		end
	end
	registered = {}
end)

s:case("provisioned device comes online", function(rig)
	dev = nil
	local d = ensure_provisioned(rig)
	A.eq(devices_with_uuid(d.uuid), 1, "devices with uuid " .. d.uuid .. " in " .. FLEET)
	A.truthy(balena.is_online(assert(client:device(d.uuid))))
end)

s:case("reported OS version is the image's", function(rig)
	local d = ensure_provisioned(rig)
	A.eq(client:os_version(d.uuid), image.version, "the API's os_version vs the image's VERSION")
end)

-- balena cloud suite "os-config: service on boot": the device fetched its service
-- configuration (GET /os/v1/config) after it registered. balena reads os-config's journal
-- line; the API side is what any image can be checked by: the emulator records the fetch.
s:case("os-config fetched on boot (/os/v1/config)", function(rig)
	local d = ensure_provisioned(rig)
	local state = client:call("GET", "/__rigor/state")
	if type(state) ~= "table" or type(state.device) ~= "table" then
		t.skip("not the emulator: a real API does not tell which devices fetched /os/v1/config")
	end
	local rec
	for _, x in ipairs(state.device) do
		if x.uuid == d.uuid then rec = x end
	end
	A.ok(rec, "device " .. d.uuid .. " in the emulator's state")
	A.gt(rec.os_config_fetches or 0, 0, "GET /os/v1/config requests with the device key")
	A.ok(rec.os_config_fetched_at >= rec.created_at, "fetched after registering: " ..
		tostring(rec.os_config_fetched_at) .. " vs created " .. tostring(rec.created_at))
	t.log("/os/v1/config fetched %d time(s), last at %s", rec.os_config_fetches, rec.os_config_fetched_at)
end)

s:case("config.json keeps the device key, not the provisioning key", function(rig)
	local d = ensure_provisioned(rig)
	assert(rig.power:off())
	assert(rig.sdmux:set("host"))
	local text = assert(rig:read_file(boot_part, "/config.json"))
	local cfg = A.ok(core.json_decode(text))
	A.eq(cfg.uuid, d.uuid, "config.json uuid")
	A.type(cfg.deviceApiKey, "string", "config.json deviceApiKey")
	A.gt(#cfg.deviceApiKey, 0, "config.json deviceApiKey length")
	A.is_nil(cfg.apiKey, "config.json must not keep the provisioning key apiKey")
end)

s:case("back online after a reboot, same uuid, no new registration", function(rig)
	local d = ensure_provisioned(rig)
	assert(rig.power:off())
	-- on the emulator: move its clock past the heartbeat timeout, so "online" below
	-- needs a heartbeat from the rebooted device (not needed on a real API)
	local adv = client:call("POST", "/__rigor/clock", { advance_ms = 3600 * 1000 })
	if adv then
		A.falsy(balena.is_online(assert(client:device(d.uuid))), "offline once the clock moved on")
	else
		t.log("no /__rigor/clock (not the emulator): only waiting for online")
	end
	assert(rig.sdmux:set("dut"))
	strap_card_boot(rig)
	rig.console:clear()
	assert(rig.power:on())
	-- online again: on the emulator only after a heartbeat of this boot
	local on = A.ok(client:wait_online(d.uuid, ONLINE_MS))
	A.eq(on.uuid, d.uuid)
	A.eq(on.id, d.id, "device id")
	A.eq(devices_with_uuid(d.uuid), 1, "devices with uuid " .. d.uuid .. " (a second registration?)")
	local full = assert(client:device(d.uuid, "id,uuid,created_at"))
	A.eq(full.created_at, d.created_at, "created_at")
	-- the card still names the same device (no new uuid made on this boot)
	assert(rig.power:off())
	assert(rig.sdmux:set("host"))
	local cfg = A.ok(core.json_decode(assert(rig:read_file(boot_part, "/config.json"))))
	A.eq(cfg.uuid, d.uuid, "config.json uuid after the reboot")
end)

return s
