-- SPDX-License-Identifier: MIT
-- A call-recording fake of the rig object the C binding provides, for framework tests.
--
--   local rig = require("fake_rig").new{ name = "bench", caps = {"power", "console"} }
--   rig.power:on(); rig.calls --> { "power:on" }
--
-- Like the real rig, log_to(path) appends events (and console bytes) to path until
-- log_to(nil). Knobs: opts.safe_fails (safe() returns nil, msg), opts.safe_raises,
-- opts.console (bytes console:expect() "receives" and logs).

local M = {}

local Rig = {}
Rig.__index = Rig

local function record(rig, what)
	rig.calls[#rig.calls + 1] = what
	if rig.logf then
		rig.logf:write("event: ", what, "\n")
		rig.logf:flush()
	end
end

function M.new(opts)
	opts = opts or {}
	local rig = setmetatable({
		name = opts.name or "fake",
		device_type = opts.device_type or "sim",
		capabilities = opts.caps or { "power", "sdmux", "console" },
		calls = {},
		opts = opts,
	}, Rig)
	local caps = {}
	for _, c in ipairs(rig.capabilities) do
		caps[c] = true
	end
	rig.capset = caps
	if caps.power then
		rig.power = {
			on = function() record(rig, "power:on"); rig.powered = true; return true end,
			off = function() record(rig, "power:off"); rig.powered = false; return true end,
			get = function() return rig.powered and "on" or "off" end,
			-- a hardware failure the caller must handle
			broken = function() record(rig, "power:broken"); return nil, "relay stuck", -5 end,
			-- an infrastructure error (the rig itself is unusable)
			infra = function()
				record(rig, "power:infra")
				error(setmetatable({ rigor_infra = true, message = "rig board not responding" },
					{ __tostring = function(e) return e.message end }))
			end,
		}
	end
	if caps.sdmux then
		rig.mux_state = "host"
		rig.sdmux = {
			get = function() return rig.mux_state end,
			set = function(_, to) record(rig, "sdmux:" .. to); rig.mux_state = to; return true end,
		}
	end
	if caps.console then
		rig.console = {
			expect = function(_, what, timeout)
				record(rig, "console:expect " .. what)
				local bytes = opts.console or ""
				if rig.logf then
					rig.logf:write(bytes)
					rig.logf:flush()
				end
				if bytes:find(what, 1, true) then
					return what
				end
				return nil, "timeout waiting for '" .. what .. "'", -110
			end,
		}
	end
	return rig
end

function Rig:has(cap)
	return self.capset[cap] == true
end

function Rig:safe()
	record(self, "safe")
	self.powered = false
	if self.opts.safe_raises then
		error("safe() exploded")
	end
	if self.opts.safe_fails then
		return nil, "cannot reach power switch", -5
	end
	return true
end

function Rig:log_to(path)
	if self.logf then
		self.logf:close()
		self.logf = nil
	end
	self.calls[#self.calls + 1] = "log_to:" .. (path and "path" or "nil")
	self.log_paths = self.log_paths or {}
	if path then
		self.log_paths[#self.log_paths + 1] = path
		local f, err = io.open(path, "a")
		if not f then
			return nil, err
		end
		self.logf = f
	end
	return true
end

--- rig:flash(image): records the call and, as the real binding does, leaves a new identity
--- table in rig.image (opts.identity(image) makes it, else a default from the path).
function Rig:flash(image)
	record(self, "flash:" .. tostring(image))
	local id = self.opts.identity and self.opts.identity(image) or {
		name = tostring(image):match("[^/]*$"), path = image, format = "raw",
		sha256 = string.rep("ab", 32), version = "1.0", os_release = { ID = "fake-os" },
	}
	self.image = id
	return { format = id.format, image = id }
end

--- The calls recorded, without log_to bookkeeping, as one string ("a,b,c").
function Rig:trace()
	local t = {}
	for _, c in ipairs(self.calls) do
		if not c:find("^log_to:") then
			t[#t + 1] = c
		end
	end
	return table.concat(t, ",")
end

return M
