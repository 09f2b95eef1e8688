-- SPDX-License-Identifier: MIT
--- rigor.balena: a small client for the balena API (balenaCloud or openBalena), enough to
-- provision a device under test and check that it came online.
--
--   local balena = require "rigor.balena"
--   local b = balena.new{}      -- RIGOR_BALENA_API, RIGOR_BALENA_API_KEY from the environment
--   local cfg = assert(b:download_config{ fleet = "myorg/myfleet", device_type = "raspberrypi4-64",
--                                         version = "5.3.10" })
--   local dev = assert(b:wait_online(cfg.uuid, 10 * 60 * 1000))
--
-- Endpoints (the same ones balena-sdk, balena-cli and balenaOS use; see
-- docs/lua-api.md and the balena API reference):
--   GET  /actor/v1/whoami (falls back to /user/v1/whoami on 404)  whoami()
--   GET  /v7/application?$filter=slug eq '<slug>'&$select=...       fleet()
--   POST /download-config {appId, deviceType, version, ...}          download_config()
--   POST /device/register {application, device_type, uuid, api_key} register()
--   GET  /v7/device?$filter=uuid eq '<uuid>'&$select=...             device(), wait_online()
--   DELETE /v7/device?$filter=uuid eq '<uuid>'                        remove_device()
-- Authentication is "Authorization: Bearer <key>" (a user API key or session token; the
-- fleet's provisioning key for /device/register).
--
-- Failures return nil, message, code: code is a librig name ("RIG_E_IO", "RIG_E_TIMEOUT")
-- for transport failures, "HTTP_<status>" for an HTTP error status, "RIG_E_NOENT" when the
-- fleet or device does not exist. Every message and log line passes through redact(), so
-- API keys, tokens and provisioning keys never reach logs or reports.
local http = require "rigor.http"
local core = require "rigor.core"

local M = {}
local Client = {}
Client.__index = Client

M.DEFAULT_ENDPOINT = "https://api.balena-cloud.com"
-- Fields of the v7 device resource that tests look at (balena-sdk src/types/v7.ts).
M.DEVICE_FIELDS = "id,uuid,device_name,is_online,api_heartbeat_state,is_connected_to_vpn," ..
	"os_version,os_variant,supervisor_version,status,provisioning_state,provisioning_progress," ..
	"last_connectivity_event,ip_address"
M.FLEET_FIELDS = "id,uuid,app_name,slug,is_for__device_type"

-- ---- redaction ----

local function escape_pattern(s)
	return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

local SECRET_WORDS = { "[Kk]ey", "KEY", "[Tt]oken", "TOKEN", "[Ss]ecret", "[Pp]assword" }

--- Replace credentials in @s by "***": every string in @secrets (a list), bearer tokens,
-- and the values of JSON members, query or form parameters and "name: value" pairs whose
-- names contain key, token, secret or password (apiKey, api_key, deviceApiKey, apikey=...).
-- Non-strings are converted with tostring().
function M.redact(s, secrets)
	s = tostring(s)
	for _, secret in ipairs(secrets or {}) do
		if type(secret) == "string" and #secret >= 4 then
			s = s:gsub(escape_pattern(secret), "***")
		end
	end
	s = s:gsub("([Bb]earer%s+)[^%s\"',;]+", "%1***")
	for _, w in ipairs(SECRET_WORDS) do
		-- "apiKey": "value"
		s = s:gsub('("[%w_%-]*' .. w .. '[%w_%-]*"%s*:%s*")[^"]*"', '%1***"')
		-- apikey=value (query strings, form bodies, key=value logs)
		s = s:gsub("([%w_%-]*" .. w .. "[%w_%-]*=)[^&%s\"',;]+", "%1***")
	end
	return s
end

--- This client's redaction: M.redact with every secret the client has seen.
function Client:redact(s)
	return M.redact(s, self._secrets)
end

function Client:_secret(s)
	if type(s) == "string" and s ~= "" then
		table.insert(self._secrets, s)
	end
end

function Client:log(fmt, ...)
	if self._log then
		self._log(self:redact(string.format(fmt, ...)))
	end
end

-- ---- helpers ----

local function urlencode(s)
	return (tostring(s):gsub("[^%w%-_%.!~%*'%(%)]", function(c)
		return string.format("%%%02X", c:byte())
	end))
end

-- An OData string literal: quotes doubled inside single quotes.
local function odata_string(s)
	return "'" .. tostring(s):gsub("'", "''") .. "'"
end

local function query(params)
	local out = {}
	for _, kv in ipairs(params) do
		out[#out + 1] = kv[1] .. "=" .. urlencode(kv[2])
	end
	return "?" .. table.concat(out, "&")
end

local function nonnull(v)
	if v == core.null then return nil end
	return v
end

--- 32 hex characters from /dev/urandom, as balenaOS and balena-register-device make them.
function M.uuid()
	local f = io.open("/dev/urandom", "rb")
	local bytes = f and f:read(16)
	if f then f:close() end
	if not bytes or #bytes ~= 16 then
		local t = {}
		for i = 1, 16 do t[i] = string.char(math.random(0, 255)) end
		bytes = table.concat(t)
	end
	return (bytes:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

-- ---- the client ----

--- Create a client. opts: endpoint (default $RIGOR_BALENA_API or balenaCloud), api_key
-- (default $RIGOR_BALENA_API_KEY), timeout (ms per call, default 30000), retries (for GET,
-- default 2), backoff (ms, default 500), verify (TLS, default true), ca_file (PEM CA bundle
-- for an openBalena with its own CA; default the system's), log (function(line);
-- default: stderr when RIGOR_DEBUG is set), http (the rigor.http module; tests may replace it).
function M.new(opts)
	opts = opts or {}
	local self = setmetatable({}, Client)
	self.endpoint = (opts.endpoint or os.getenv("RIGOR_BALENA_API") or M.DEFAULT_ENDPOINT):gsub("/+$", "")
	self.api_key = opts.api_key or os.getenv("RIGOR_BALENA_API_KEY")
	if self.api_key == "" then self.api_key = nil end
	self.timeout = opts.timeout or 30000
	self.retries = opts.retries or 2
	self.backoff = opts.backoff or 500
	self.verify = opts.verify ~= false
	self.ca_file = opts.ca_file
	self.http = opts.http or http
	self._secrets = {}
	self:_secret(self.api_key)
	self._log = opts.log
	if self._log == nil and (os.getenv("RIGOR_DEBUG") or "") ~= "" then
		self._log = function(line) io.stderr:write("balena: ", line, "\n") end
	end
	return self
end

--- One API call. Returns the decoded JSON (or the raw body when it is not JSON) and the
-- response, or nil, message, code.
function Client:call(method, path, body, token)
	local headers = {}
	token = token or self.api_key
	if token then headers.Authorization = "Bearer " .. token end
	local t0 = core.now_ms()
	local resp, msg, code = self.http.json{
		method = method, url = self.endpoint .. path, headers = headers, body = body,
		timeout = self.timeout, verify = self.verify, ca_file = self.ca_file, backoff = self.backoff,
		retries = http.idempotent(method) and self.retries or 0,
	}
	if not resp then
		msg = self:redact(msg)
		self:log("%s %s failed: %s", method, path, msg)
		return nil, "balena: " .. msg, code
	end
	self:log("%s %s -> %d (%d ms)", method, path, resp.status, core.now_ms() - t0)
	local server_time = M.http_date(resp.headers and resp.headers.date)
	if server_time then self.clock_skew = server_time - os.time() end
	if resp.status < 200 or resp.status > 299 then
		local detail = resp.body:gsub("%s+", " "):sub(1, 300)
		return nil, self:redact(string.format("balena: %s %s%s: HTTP %d %s", method,
			self.endpoint, path, resp.status, detail)), "HTTP_" .. resp.status
	end
	if resp.json ~= nil then return resp.json, resp end
	return resp.body, resp
end

--- Who the API key belongs to: { id, actorType, username, email, ... }.
-- GET an OData collection at @path: its list of records (`d`), or nil, message, code.
-- @noun ("device", "fleet"...) and @name: with them, an empty list is nil, "balena: no
-- <noun> <name>", "RIG_E_NOENT", and the first record is returned alone.
function Client:_get_d(path, noun, name)
	local r, msg, code = self:call("GET", path)
	if r == nil then return nil, msg, code end
	local d = type(r) == "table" and r.d
	local what = "balena: unexpected answer to GET " .. path:match("^[^?]*")
	if type(d) ~= "table" then return nil, what, "RIG_E_PROTO" end
	if not noun then return d end
	if d[1] == nil then return nil, "balena: no " .. noun .. " " .. tostring(name), "RIG_E_NOENT" end
	if type(d[1]) ~= "table" then return nil, what, "RIG_E_PROTO" end
	return d[1]
end

function Client:whoami()
	local me, msg, code = self:call("GET", "/actor/v1/whoami")
	if not me and code == "HTTP_404" then
		return self:call("GET", "/user/v1/whoami")  -- older open-balena-api
	end
	return me, msg, code
end

--- The fleet (v7 application) with slug "org/name" (case-insensitive), uuid or numeric id:
-- { id, uuid, app_name, slug, is_for__device_type }.
function Client:fleet(slug)
	local path
	if math.type(slug) == "integer" then
		path = "/v7/application(" .. slug .. ")" .. query{ { "$select", M.FLEET_FIELDS } }
	else
		-- as balena-sdk application.get(): lower case; a 32-hex-digit string is a uuid
		local s = tostring(slug):lower()
		local field = (#s == 32 and s:match("^%x+$")) and "uuid" or "slug"
		path = "/v7/application" .. query{
			{ "$filter", field .. " eq " .. odata_string(s) },
			{ "$select", M.FLEET_FIELDS } }
	end
	return self:_get_d(path, "fleet", slug)
end

--- Why the version matters, said where a caller meets it: the API picks the provisioning
-- protocol from it (docs/lua-api.md, "Which version to ask for").
M.CONFIG_VERSION_HELP = "the version selects the provisioning protocol the image's agent " ..
	"speaks, not a label: a balenaOS image's own os-release VERSION, 6.0.0 for an image that " ..
	"numbers itself otherwise but speaks today's protocol (the rigor test OS, 1.0); " ..
	"docs/lua-api.md, 'Which version to ask for'"

-- "2.7.8", "v6.0.13", "2.80.3.dev", "2.113.0+rev1" as { major, minor, patch }; nil otherwise
local function os_version_tuple(v)
	local a, b, c = tostring(v):match("^v?(%d+)%.(%d+)%.(%d+)")
	if a then return { tonumber(a), tonumber(b), tonumber(c) } end
	a, b = tostring(v):match("^v?(%d+)%.(%d+)$")
	if a then return { tonumber(a), tonumber(b), 0 } end
end

local function version_before(v, w)
	for i = 1, 3 do
		if v[i] ~= w[i] then return v[i] < w[i] end
	end
	return false
end

--- A config.json for a new device of the fleet, as a table, holding a fresh provisioning
-- key in apiKey. opts: fleet (slug, id or fleet table), device_type (slug), version (the
-- balenaOS version whose provisioning protocol the image speaks, required by the API; see
-- M.CONFIG_VERSION_HELP), developmentMode, network ("ethernet"/"wifi"), key_expiry (the
-- provisioning key's lifetime: seconds from now, or an ISO 8601 date; balena-sdk's
-- device.register uses 600 s; default none, as the API's), options (extra
-- /download-config parameters: wifiSsid, appUpdatePollInterval, ...).
-- A version before 2.7.8 is refused ("RIG_E_INVAL") without asking: the API would answer
-- with the caller's own API key in apiKey, which must never land on a card.
function Client:download_config(opts)
	assert(type(opts) == "table" and opts.fleet and opts.device_type and opts.version,
		"download_config{fleet=, device_type=, version=} expected")
	local vt = os_version_tuple(opts.version)
	if vt and version_before(vt, { 2, 7, 8 }) then
		return nil, string.format("balena: not asking /download-config for balenaOS %s: " ..
			"before 2.7.8 the API puts your own API key into config.json, not a fleet " ..
			"provisioning key; %s", tostring(opts.version), M.CONFIG_VERSION_HELP), "RIG_E_INVAL"
	end
	local fleet_id = opts.fleet
	if type(fleet_id) == "table" then
		fleet_id = fleet_id.id
	elseif math.type(fleet_id) ~= "integer" then
		local f, msg, code = self:fleet(fleet_id)
		if not f then return nil, msg, code end
		fleet_id = f.id
	end
	local body = { appId = fleet_id, deviceType = opts.device_type, version = opts.version,
		developmentMode = opts.developmentMode, network = opts.network }
	if opts.key_expiry ~= nil then
		body.provisioningKeyExpiryDate = self:expiry_date(opts.key_expiry)
	end
	for k, v in pairs(opts.options or {}) do body[k] = v end
	local cfg, msg, code = self:call("POST", "/download-config", body)
	if cfg == nil then
		if code == "HTTP_400" and msg:lower():find("version", 1, true) then
			msg = msg .. " (" .. M.CONFIG_VERSION_HELP .. ")"
		end
		return nil, msg, code
	end
	if type(cfg) ~= "table" then
		return nil, "balena: /download-config did not return JSON", "RIG_E_PROTO"
	end
	self:_secret(cfg.apiKey)
	self:_secret(cfg.deviceApiKey)
	return cfg
end

--- Register a device as balenaOS does on first boot. opts: fleet_id, device_type,
-- provisioning_key (config.json apiKey), uuid (default: a new one), api_key (device key
-- to create; default: the server makes one). Returns { id, uuid, api_key }.
function Client:register(opts)
	assert(type(opts) == "table" and opts.fleet_id and opts.device_type and opts.provisioning_key,
		"register{fleet_id=, device_type=, provisioning_key=} expected")
	self:_secret(opts.provisioning_key)
	self:_secret(opts.api_key)
	local dev, msg, code = self:call("POST", "/device/register", {
		application = opts.fleet_id, device_type = opts.device_type,
		uuid = opts.uuid or M.uuid(), api_key = opts.api_key,
	}, opts.provisioning_key)
	if dev == nil then return nil, msg, code end
	if type(dev) ~= "table" then
		return nil, "balena: /device/register did not return JSON", "RIG_E_PROTO"
	end
	self:_secret(dev.api_key)
	return dev
end

--- The device with @uuid (fields M.DEVICE_FIELDS, or @select), JSON nulls as nil.
function Client:device(uuid, select)
	local path = "/v7/device" .. query{
		{ "$filter", "uuid eq " .. odata_string(uuid) },
		{ "$select", select or M.DEVICE_FIELDS } }
	local rec, msg, code = self:_get_d(path, "device", uuid)
	if not rec then return nil, msg, code end
	local dev = {}
	for k, v in pairs(rec) do dev[k] = nonnull(v) end
	return dev
end

--- How many devices of the fleet with slug @fleet have @uuid (0 or 1: the API keeps uuids
-- unique). Scoped to the uuid, so that other rigs provisioning into the same fleet at the
-- same time do not change the answer, as a count of the fleet's devices would.
function Client:fleet_devices_with_uuid(fleet, uuid)
	local d, msg, code = self:_get_d("/v7/device" .. query{
		{ "$filter", "belongs_to__application/slug eq " .. odata_string(tostring(fleet):lower()) ..
			" and uuid eq " .. odata_string(uuid) },
		{ "$select", "id" } })
	if not d then return nil, msg, code end
	return #d
end

--- Delete the device @uuid (as balena-sdk device.remove: DELETE /v7/device?$filter=uuid
-- eq '<uuid>'). Returns true, or nil, message, code ("RIG_E_NOENT" when there is no such
-- device, e.g. already deleted).
function Client:remove_device(uuid)
	local d, msg, code = self:device(uuid, "id")
	if not d then return nil, msg, code end
	local r, derr, dcode = self:call("DELETE", "/v7/device" .. query{
		{ "$filter", "uuid eq " .. odata_string(uuid) } })
	if r == nil then return nil, derr, dcode end
	return true
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
	Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

--- Seconds since the epoch of an HTTP Date header ("Thu, 03 Dec 2026 08:40:00 GMT"), or nil.
function M.http_date(text)
	local d, mon, y, h, mi, sec = tostring(text or ""):match(
		"^%a+, (%d%d?) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
	local m = MONTHS[mon or ""]
	if not m then return nil end
	y, d = tonumber(y), tonumber(d)
	-- days since 1970-01-01 of a proleptic Gregorian date (os.time() would take it as local)
	local yy = m <= 2 and y - 1 or y
	local era = yy // 400
	local yoe = yy - era * 400
	local doy = (153 * (m > 2 and m - 3 or m + 9) + 2) // 5 + d - 1
	local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
	local days = era * 146097 + doe - 719468
	return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
end

--- An API date for @v: seconds from now (a number) by the API's clock (the Date header of
-- the client's last answer; the host's clock before any), or an ISO 8601 date string as
-- given. A host whose clock is off, or an emulator whose clock was moved on, still gets a
-- key that lives as long as asked.
function Client:expiry_date(v)
	if type(v) == "number" then
		return os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + (self.clock_skew or 0) + math.floor(v))
	end
	assert(type(v) == "string", "key_expiry: seconds from now or an ISO 8601 date expected")
	return v
end

--- Whether a device table says the device is online: the API heartbeat (set when the
-- supervisor polls with its device key) or the VPN (is_online).
function M.is_online(dev)
	return dev ~= nil and (dev.api_heartbeat_state == "online" or dev.is_online == true)
end

--- Poll device(@uuid) until it is online. Waits @interval (default 1000 ms) after the first
-- poll, growing by half each time up to @max_interval (default 10000 ms). Absent devices
-- and transport errors are retried. opts.sleep(ms) replaces core.sleep (provisioning
-- follows the console meanwhile). Inside a case, waits end at the case deadline.
-- Returns the device, or nil, message, "RIG_E_TIMEOUT".
function Client:wait_online(uuid, timeout_ms, opts)
	opts = opts or {}
	timeout_ms = timeout_ms or 600000
	local sleep = opts.sleep or core.sleep
	local interval, max_interval = opts.interval or 1000, opts.max_interval or 10000
	local t0 = core.now_ms()
	local deadline = t0 + timeout_ms
	local last = "never seen"
	while true do
		local dev, msg = self:device(uuid)
		if M.is_online(dev) then
			self:log("device %s online after %d ms", uuid, core.now_ms() - t0)
			return dev
		end
		if dev then
			last = string.format("api_heartbeat_state=%s is_online=%s status=%s",
				tostring(dev.api_heartbeat_state), tostring(dev.is_online), tostring(dev.status))
		else
			last = msg
		end
		local left = deadline - core.now_ms()
		if left <= 0 then
			return nil, self:redact(string.format("balena: device %s not online after %d ms (last: %s)",
				uuid, core.now_ms() - t0, last)), "RIG_E_TIMEOUT"
		end
		sleep(math.min(interval, left))
		interval = math.min(math.floor(interval * 1.5), max_interval)
	end
end

--- The OS version the device reports (os_version, "balenaOS 5.3.10"), or nil if none yet.
function Client:os_version(uuid)
	local dev, msg, code = self:device(uuid, "os_version")
	if not dev then return nil, msg, code end
	return dev.os_version
end

--- The supervisor version the device reports, or nil if none yet.
function Client:supervisor_version(uuid)
	local dev, msg, code = self:device(uuid, "supervisor_version")
	if not dev then return nil, msg, code end
	return dev.supervisor_version
end

--- The final, valid host OS releases of device type @device_type (slug), as
-- balena-sdk os.getAvailableOsVersions finds them (releases of the host application
-- for the type): a list of { id, raw_version, semver, variant, phase }, in API order.
-- An unknown device type or one without host OS releases gives an empty list.
function Client:os_releases(device_type)
	local path = "/v7/application" .. query{
		{ "$select", "id" },
		{ "$expand", "owns__release($select=id,raw_version,semver,variant,phase;" ..
			"$filter=is_final eq true and is_invalidated eq false and status eq 'success')" },
		{ "$filter", "is_host eq true and is_for__device_type/any(dt:dt/slug eq " ..
			odata_string(device_type) .. ")" } }
	local d, msg, code = self:_get_d(path)
	if not d then return nil, msg, code end
	local out = {}
	for _, app in ipairs(d) do
		for _, rel in ipairs(type(app) == "table" and app.owns__release or {}) do
			local t = {}
			for k, v in pairs(rel) do t[k] = nonnull(v) end
			out[#out + 1] = t
		end
	end
	return out
end

--- Pin the device @uuid to the host OS release whose raw_version is @version (as
-- balena-sdk device.pinToOsRelease: PATCH device {should_be_operated_by__release}); the
-- device's update agent then installs it. @version nil unpins. Returns true, or nil,
-- message, code ("RIG_E_NOENT" for an unknown device or version; the API refuses other
-- device types' releases and downgrades with "HTTP_400").
function Client:pin_os_release(uuid, version)
	local path = "/v7/device" .. query{
		{ "$filter", "uuid eq " .. odata_string(uuid) },
		{ "$select", "id" },
		{ "$expand", "is_of__device_type($select=slug)" } }
	local dev, msg, code = self:_get_d(path, "device", uuid)
	if not dev then return nil, msg, code end
	local target = core.null
	if version ~= nil then
		local dt = type(dev.is_of__device_type) == "table" and dev.is_of__device_type[1]
		if type(dt) ~= "table" or type(dt.slug) ~= "string" then
			return nil, "balena: unexpected answer to GET /v7/device", "RIG_E_PROTO"
		end
		local rels
		rels, msg, code = self:os_releases(dt.slug)
		if not rels then return nil, msg, code end
		for _, rel in ipairs(rels) do
			if rel.raw_version == version then target = rel.id end
		end
		if target == core.null then
			return nil, string.format("balena: no OS release %s for %s", version, dt.slug), "RIG_E_NOENT"
		end
	end
	local r, perr, pcode = self:call("PATCH",
		"/v7/device" .. query{ { "$filter", "id in (" .. dev.id .. ")" } },
		{ should_be_operated_by__release = target })
	if r == nil then return nil, perr, pcode end
	return true
end

--- The device's OS as the API sees it: { os_version = reported version or nil,
-- target = raw_version of the pinned OS release or nil }.
function Client:os_target(uuid)
	local path = "/v7/device" .. query{
		{ "$filter", "uuid eq " .. odata_string(uuid) },
		{ "$select", "id,os_version" },
		{ "$expand", "should_be_operated_by__release($select=id,raw_version)" } }
	local dev, msg, code = self:_get_d(path, "device", uuid)
	if not dev then return nil, msg, code end
	local rel = type(dev.should_be_operated_by__release) == "table" and
		dev.should_be_operated_by__release[1]
	return { os_version = nonnull(dev.os_version),
		target = type(rel) == "table" and nonnull(rel.raw_version) or nil }
end

M.Client = Client
return M
