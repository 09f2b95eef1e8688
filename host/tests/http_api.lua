-- SPDX-License-Identifier: MIT
-- rigor.http, rigor.balena and rigor.provision against host/tests/http_fake.py:
--   build/rigor lua host/tests/http_api.lua http://127.0.0.1:PORT
-- Prints unnumbered TAP lines without a plan (host/tests/http.sh adds it).
local core = require "rigor.core"
local http = require "rigor.http"
local balena = require "rigor.balena"
local provision = require "rigor.provision"

local base = assert(arg[1], "usage: http_api.lua BASE_URL")
local tc = dofile("host/tests/tapcheck.lua")()
local check = tc.check
local function elapsed(t0) return core.now_ms() - t0 end

-- ---- rigor.http ----
local r = http.request{ url = base .. "/json" }
check(r and r.status == 200 and r.body:find('"ok": true', 1, true) and r.attempts == 1,
	"GET returns status, body, attempts", r and r.body)
check(r and r.headers["content-type"] == "application/json", "header names are lower case")

r = http.json{ url = base .. "/json" }
check(r and r.json and r.json.ok == true and getmetatable(r.json.empty) == core.array_mt
	and r.json.list[2] == 2 and r.json.nothing == core.null, "http.json decodes JSON responses")

r = http.json{ method = "post", url = base .. "/echo", body = { a = 1, b = { "x" } },
	headers = { ["X-Rigor"] = "yes" } }
local echo = r and r.json
check(echo and echo.method == "POST" and echo.ctype == "application/json"
	and echo.accept == "application/json" and echo.x == "yes"
	and core.json_decode(echo.body).b[1] == "x", "http.json encodes a table body and sets headers",
	r and r.body)

r = http.json{ method = "PUT", url = base .. "/echo", body = "raw", headers = { ["content-type"] = "text/x" } }
check(r and r.json.ctype == "text/x" and r.json.body == "raw" and r.json.method == "PUT",
	"explicit content-type and string body kept", r and r.body)

r = http.request{ url = base .. "/status/404" }
check(r and r.status == 404 and r.body == "status 404", "404 is a response, not an error")

r = http.request{ url = base .. "/text" }
check(r and r.headers["x-dup"] == "a, b", "repeated headers are joined", r and r.headers["x-dup"])

local t0 = core.now_ms()
r = http.request{ url = base .. "/flaky?id=g&n=2", retries = 3, backoff = 50 }
check(r and r.status == 200 and r.attempts == 3 and elapsed(t0) >= 150,
	"GET is retried on 503 with backoff", r and r.attempts)

r = http.request{ method = "POST", url = base .. "/flaky?id=p&n=2", retries = 3, backoff = 10 }
check(r and r.status == 503 and r.attempts == 1, "POST is not retried", r and r.attempts)

t0 = core.now_ms()
local ok, msg, code = http.request{ url = base .. "/slow?s=2", timeout = 300 }
check(ok == nil and msg:find("timed out") and code == "RIG_E_TIMEOUT" and elapsed(t0) < 1500,
	"timeout returns nil, msg, RIG_E_TIMEOUT", msg)

core.arm(core.now_ms() + 200)
t0 = core.now_ms()
-- an abort raises again after any pcall: catch it the runner's way, disarming in the handler
local function caught(f, ...)
	return xpcall(f, function(e) core.disarm(); return e end, ...)
end
local pok, perr = caught(http.request, { url = base .. "/slow?s=2", timeout = 10000 })
core.disarm()
check(not pok and type(perr) == "table" and perr.rigor_abort == "timeout" and elapsed(t0) < 1500,
	"the case deadline cuts a request and raises the abort", tostring(perr))

ok, msg, code = http.request{ url = "http://127.0.0.1:1/" }
check(ok == nil and msg:find("refused") and code == "RIG_E_IO", "connection refused: nil, msg, RIG_E_IO", msg)

pok, perr = pcall(http.request, {})
check(not pok and tostring(perr):find("url"), "a missing url raises", perr)
pok, perr = pcall(http.request, { url = base, body = {} })
check(not pok and tostring(perr):find("http.json"), "a table body to request raises", perr)
pok, perr = pcall(http.request, { url = base, headers = { X = "a\r\nInjected: 1" } })
check(not pok and tostring(perr):find("line break"), "header injection raises", perr)

r = http.json{ url = base .. "/badjson" }
check(r and r.json == nil and r.json_error and r.body == "{not json", "undecodable JSON: json_error, body kept")

check(http.redact_url("http://h/p?apikey=S3CRET&x=1") == "http://h/p?apikey=***&x=1", "http.redact_url")
check(http.idempotent("GET") and not http.idempotent("POST"), "http.idempotent")
r = http.request{ url = base .. "/json", verify = false }
check(r and r.status == 200, "verify = false is accepted")

-- TLS: a self-signed certificate is refused unless trusted through ca_file or verify = false
local tls_base, cert = arg[2], arg[3]
if tls_base and tls_base ~= "" then
	ok, msg, code = http.request{ url = tls_base .. "/json" }
	check(ok == nil and code == "RIG_E_IO" and msg:find("certificate"), "TLS: an untrusted certificate is RIG_E_IO", msg)
	r, msg = http.request{ url = tls_base .. "/json", ca_file = cert }
	check(r and r.status == 200, "TLS: trusted through ca_file", msg)
	r, msg = http.request{ url = tls_base .. "/json", verify = false }
	check(r and r.status == 200, "TLS: verify = false skips the check", msg)
	local bt = balena.new{ endpoint = tls_base, api_key = "USERKEY-0123456789abcdef", ca_file = cert }
	check(bt:whoami(), "TLS: balena client with ca_file")
else
	for _, name in ipairs{ "TLS: untrusted", "TLS: ca_file", "TLS: verify = false", "TLS: balena" } do
		print("ok - " .. name .. " # SKIP no openssl")
	end
end

-- ---- rigor.balena ----
local USER_KEY = "USERKEY-0123456789abcdef"
local R = balena.redact
check(R("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer ***", "redact: bearer token")
check(R('{"apiKey": "pk1", "deviceApiKey":"dk", "name": "n"}') == '{"apiKey": "***", "deviceApiKey":"***", "name": "n"}',
	"redact: JSON key members", R('{"apiKey": "pk1", "deviceApiKey":"dk", "name": "n"}'))
check(R("GET /x?apikey=abc&api_key=def&token=t&y=2") == "GET /x?apikey=***&api_key=***&token=***&y=2",
	"redact: query parameters", R("GET /x?apikey=abc&api_key=def&token=t&y=2"))
check(R("key is hunter2secret here", { "hunter2secret" }) == "key is *** here", "redact: known secrets")
check(R("a%b(c)", { "a%b(c)" }) == "***", "redact: secrets with pattern characters")
check(R("nothing to hide") == "nothing to hide", "redact: leaves other text alone")

local logs = {}
local b = balena.new{ endpoint = base .. "/", api_key = USER_KEY, log = function(l) logs[#logs + 1] = l end,
	retries = 1, backoff = 20 }
check(b.endpoint == base, "endpoint without trailing slash")
local me = b:whoami()
check(me and me.username == "tester", "whoami", me)

local bad = balena.new{ endpoint = base, api_key = "WRONGKEY-secret-1234", log = function(l) logs[#logs + 1] = l end }
ok, msg, code = bad:whoami()
check(ok == nil and code == "HTTP_401" and not msg:find("WRONGKEY-secret-1234", 1, true)
	and msg:find("***", 1, true), "errors name the status and redact the key", msg)

local fleet = b:fleet("TestOrg/TestFleet")
check(fleet and fleet.id == 42 and fleet.slug == "testorg/testfleet", "fleet by slug ($filter, $select)", fleet)
local f2, f3 = b:fleet(string.rep("F", 32)), b:fleet(42)
check(f2 and f2.id == 42 and f3 and f3.slug == "testorg/testfleet", "fleet by uuid and by id", msg)
ok, msg, code = b:fleet("nobody/nothing")
check(ok == nil and code == "RIG_E_NOENT", "unknown fleet: RIG_E_NOENT", msg)

local cfg = b:download_config{ fleet = "testorg/testfleet", device_type = "raspberrypi4-64", version = "5.3.10" }
check(cfg and cfg.applicationId == 42 and cfg.deviceType == "raspberrypi4-64" and cfg.apiKey:find("^PROVKEY"),
	"download_config returns config.json", cfg)
check(b:redact("key " .. cfg.apiKey) == "key ***", "the provisioning key becomes a secret")
-- the version picks the provisioning protocol: before 2.7.8 the API would answer with the
-- user's own key, so the client does not ask, and says why
for _, v in ipairs{ "1.0", "2.7.7", "v2.0.0" } do
	local nlog = #logs
	ok, msg, code = b:download_config{ fleet = "testorg/testfleet", device_type = "raspberrypi4-64", version = v }
	check(ok == nil and code == "RIG_E_INVAL" and msg:find("balenaOS " .. v, 1, true)
		and msg:find("before 2.7.8", 1, true) and msg:find("your own API key", 1, true)
		and msg:find("6.0.0", 1, true) and msg:find("Which version to ask for", 1, true)
		and #logs == nlog, "download_config refuses balenaOS " .. v .. " without asking, saying why", msg)
end
for _, v in ipairs{ "2.7.8", "2.80.3.dev", "6.0.0" } do
	ok, msg = b:download_config{ fleet = "testorg/testfleet", device_type = "raspberrypi4-64", version = v }
	check(ok and ok.apiKey:find("^PROVKEY"), "download_config asks for balenaOS " .. v, msg)
end

local uuid = balena.uuid()
check(#uuid == 32 and uuid:match("^%x+$") and uuid ~= balena.uuid(), "uuid: 32 hex digits, fresh each time")
local dev = b:register{ fleet_id = 42, device_type = "raspberrypi4-64", uuid = uuid, provisioning_key = cfg.apiKey }
check(dev and dev.uuid == uuid and dev.id and dev.api_key, "register with the provisioning key", dev)
ok, msg, code = b:register{ fleet_id = 42, device_type = "raspberrypi4-64", uuid = uuid, provisioning_key = cfg.apiKey }
check(ok == nil and code == "HTTP_409", "registering twice: HTTP_409", msg)

local d = b:device(uuid)
check(d and d.uuid == uuid and d.is_online == false and d.os_version == nil, "device by uuid, nulls as nil", d)
ok, msg, code = b:device("00000000000000000000000000000000")
check(ok == nil and code == "RIG_E_NOENT", "unknown device: RIG_E_NOENT", msg)

t0 = core.now_ms()
ok, msg, code = b:wait_online(uuid, 500, { interval = 100 })
check(ok == nil and code == "RIG_E_TIMEOUT" and msg:find("not online") and elapsed(t0) >= 500 and elapsed(t0) < 2000,
	"wait_online times out", msg)

core.arm(core.now_ms() + 300)
t0 = core.now_ms()
pok, perr = caught(b.wait_online, b, uuid, 60000, { interval = 100 })
core.disarm()
check(not pok and type(perr) == "table" and perr.rigor_abort == "timeout" and elapsed(t0) < 1500,
	"wait_online ends at the case deadline", tostring(perr))

assert(http.json{ method = "POST", url = base .. "/_test/online", body = { uuid = uuid, after = 2 } })
t0 = core.now_ms()
d = b:wait_online(uuid, 5000, { interval = 50 })
check(d and d.api_heartbeat_state == "online" and balena.is_online(d), "wait_online sees the device come online", d)
check(b:os_version(uuid) == "balenaOS 5.3.10", "os_version")
check(b:supervisor_version(uuid) == "16.1.0", "supervisor_version")

local leaked = {}
for _, l in ipairs(logs) do
	if l:find(USER_KEY, 1, true) or l:find("PROVKEY", 1, true) or l:find("WRONGKEY", 1, true) then
		leaked[#leaked + 1] = l
	end
end
check(#logs > 5 and #leaked == 0, "log lines never hold keys (" .. #logs .. " lines)", table.concat(leaked, "\n"))

ok, msg, code = balena.new{ endpoint = "http://127.0.0.1:1", api_key = USER_KEY, retries = 0 }:whoami()
check(ok == nil and code == "RIG_E_IO" and msg:find("^balena: "), "transport failure: RIG_E_IO", msg)

-- ---- rigor.provision with a fake rig ----
local function fake_rig(opts)
	local calls = {}
	local rg = { device_type = "raspberrypi4-64", calls = calls }
	rg.power = {
		off = function() calls[#calls + 1] = "power off"; return true end,
		on = function()
			calls[#calls + 1] = "power on"
			if opts.boots then
				-- the "device" boots: it registers with the provisioning key from config.json
				local c = core.json_decode(rg.files["config.json"])
				local dv = balena.new{ endpoint = base }
				assert(dv:register{ fleet_id = c.applicationId, device_type = c.deviceType,
					uuid = c.uuid, provisioning_key = c.apiKey })
				assert(http.json{ method = "POST", url = base .. "/_test/online", body = { uuid = c.uuid, after = 1 } })
			end
			return true
		end,
	}
	rg.sdmux = { set = function(_, side) calls[#calls + 1] = "sdmux " .. side; return true end }
	local lines = { "U-Boot 2023.01\n", "Starting kernel ...\n", "" }
	rg.console = { read = function(_, ms)
		local l = table.remove(lines, 1)
		if l and l ~= "" then return l end
		if rg.files then
			-- a chatty boot script that prints the provisioning key
			lines[#lines + 1] = "config apiKey=" .. core.json_decode(rg.files["config.json"]).apiKey .. "\n"
		end
		core.sleep(math.min(ms, 20))
		return nil, "timeout", "RIG_E_TIMEOUT"
	end }
	if not opts.noflash then
		rg.flash = function(self, image, fo)
			calls[#calls + 1] = "flash " .. image
			if opts.flash_fails then return nil, "write error at 4096", "RIG_E_IO" end
			self.files = fo.files
			return { bytes = 1 }
		end
	end
	return rg
end

pok, perr = pcall(provision.run, fake_rig{ noflash = true }, { balena = b, fleet = "testorg/testfleet",
	version = "5.3.10", image = "x.img" })
check(not pok and tostring(perr):find("flashing is not available in this build"), "no rig:flash: a clear error", perr)

local rg = fake_rig{ boots = true }
local console = {}
local pdev, info = provision.run(rg, { balena = b, fleet = "testorg/testfleet", version = "5.3.10",
	image = "balena.img", timeout = 5000, interval = 50, config = { persistentLogging = true },
	on_console = function(s) console[#console + 1] = s end })
local written = rg.files and core.json_decode(rg.files["config.json"])
check(pdev and balena.is_online(pdev) and info.uuid == pdev.uuid, "provision: the device comes online", info)
check(written and written.uuid == info.uuid and written.applicationId == 42 and written.persistentLogging == true
	and written.apiKey:find("^PROVKEY"), "provision: config.json with uuid, fleet and overrides", rg.files)
check(table.concat(rg.calls, ",") == "power off,flash balena.img,sdmux dut,power on",
	"provision: power off, flash, card to DUT, power on", table.concat(rg.calls, ","))
check(table.concat(console):find("Starting kernel"), "provision: follows the console")

rg = fake_rig{}
t0 = core.now_ms()
ok, msg, code = provision.run(rg, { balena = b, fleet = "testorg/testfleet", version = "5.3.10",
	image = "balena.img", timeout = 400, interval = 50 })
check(ok == nil and code == "RIG_E_TIMEOUT" and msg:find("Starting kernel") and msg:find("apiKey=***", 1, true)
	and not msg:find("PROVKEY"), "provision timeout quotes the console, redacted", msg)

ok, msg, code = provision.run(fake_rig{ flash_fails = true }, { balena = b, fleet = "testorg/testfleet",
	version = "5.3.10", image = "balena.img" })
check(ok == nil and msg:find("flashing failed: write error") and code == "RIG_E_IO", "provision: flash failure", msg)

os.exit(tc.status())
