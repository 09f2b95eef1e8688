-- SPDX-License-Identifier: MIT
-- io.popen for rigor scripts, over rigor.core.spawn. The stock popen waits in pclose()
-- and read() with no bound, and its child shares rigor's process group, so a case
-- deadline or Ctrl-C could be lost inside it. Here the command runs in its own process
-- group under the case deadline and the signal flag (both kill the whole group and end
-- the case). The price: a "r" command runs to completion when popen() is called and its
-- output is then read from memory; a "w" command runs at close() with what was written.
local core = require "rigor.core"

local M = {}

local File = {}
File.__index = File
File.__name = "rigor.popen"

function File:__tostring()
	return self.closed and "file (closed)" or string.format("file (popen %q)", self.cmd)
end

local function check_open(f)
	if f.closed then
		error("attempt to use a closed file", 3)
	end
end

local function read_one(f, fmt)
	local data, pos = f.data, f.pos
	if type(fmt) == "number" then
		if pos > #data then
			return nil
		end
		f.pos = pos + math.floor(fmt)
		return data:sub(pos, f.pos - 1)
	end
	fmt = tostring(fmt):gsub("^%*", "")
	local c = fmt:sub(1, 1)
	if c == "a" then
		f.pos = #data + 1
		return data:sub(pos)
	elseif c == "l" or c == "L" then
		if pos > #data then
			return nil
		end
		local e = data:find("\n", pos, true)
		f.pos = (e or #data) + 1
		if c == "L" or not e then
			return data:sub(pos, e or #data)
		end
		return data:sub(pos, e - 1)
	elseif c == "n" then
		local s, e = data:find("^%s*[-+]?[%w%.]+", pos)
		if not s then
			return nil
		end
		f.pos = e + 1
		return tonumber((data:sub(s, e):gsub("^%s+", "")))
	end
	error("bad argument to 'read' (invalid format)", 3)
end

function File:read(...)
	check_open(self)
	if self.mode ~= "r" then
		return nil, "file not opened for reading"
	end
	local n = select("#", ...)
	if n == 0 then
		return read_one(self, "l")
	end
	local out = {}
	for i = 1, n do
		out[i] = read_one(self, (select(i, ...)))
		if out[i] == nil then
			return table.unpack(out, 1, i)
		end
	end
	return table.unpack(out, 1, n)
end

function File:lines(...)
	local fmts = table.pack(...)
	return function()
		return self:read(table.unpack(fmts, 1, fmts.n))
	end
end

function File:write(...)
	check_open(self)
	if self.mode ~= "w" then
		return nil, "file not opened for writing"
	end
	for i = 1, select("#", ...) do
		self.wbuf[#self.wbuf + 1] = tostring((select(i, ...)))
	end
	return self
end

function File:close()
	check_open(self)
	self.closed = true
	if self.mode == "w" then
		local ok, how, code = core.spawn(self.cmd, table.concat(self.wbuf), false)
		return ok, how, code
	end
	return self.ok, self.how, self.code
end

function File:flush()
	return self
end

function File:setvbuf()
	return true
end

function File:seek()
	return nil, "cannot seek on a pipe"
end

File.__close = function(f)
	if not f.closed then
		f:close()
	end
end
File.__gc = File.__close

function M.popen(cmd, mode)
	if type(cmd) ~= "string" then
		error("bad argument #1 to 'popen' (string expected, got " .. type(cmd) .. ")", 2)
	end
	mode = mode or "r"
	if mode ~= "r" and mode ~= "w" then
		error("bad argument #2 to 'popen' (invalid mode)", 2)
	end
	local f = setmetatable({ cmd = cmd, mode = mode, pos = 1, wbuf = {} }, File)
	if mode == "r" then
		f.ok, f.how, f.code, f.data = core.spawn(cmd, nil, true)
	end
	return f
end

io.popen = M.popen

return M
