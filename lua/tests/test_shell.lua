-- SPDX-License-Identifier: MIT
-- rigor.shell's pure parts: SHA-256 and base64 (what put/get check transfers with), shell
-- quoting, option checking. The console code path runs against a fake DUT in
-- host/tests/shell.sh.

local H = require "harness"
local shell = require "rigor.shell"

H.test("sha256 test vectors (FIPS 180-2)", function()
	H.eq(shell.sha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "empty")
	H.eq(shell.sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc")
	H.eq(shell.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
		"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "two blocks")
	H.eq(shell.sha256(string.rep("a", 1000000)),
		"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", "a million a's")
	-- lengths around the padding boundary (55, 56, 64 bytes)
	H.eq(shell.sha256(string.rep("a", 55)), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318", "55 bytes")
	H.eq(shell.sha256(string.rep("a", 56)), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a", "56 bytes")
	H.eq(shell.sha256(string.rep("a", 64)), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb", "64 bytes")
end)

H.test("base64 round trip and RFC 4648 vectors", function()
	local v = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==", fooba = "Zm9vYmE=",
		foobar = "Zm9vYmFy" }
	for plain, enc in pairs(v) do
		H.eq(shell.base64_encode(plain), enc, "encode '" .. plain .. "'")
		H.eq(shell.base64_decode(enc), plain, "decode '" .. enc .. "'")
	end
	local all = {}
	for i = 0, 255 do all[#all + 1] = string.char(i) end
	all = table.concat(all):rep(3)
	H.eq(shell.base64_decode(shell.base64_encode(all)), all, "every byte value survives")
	H.eq(shell.base64_decode("Zm9v\nYmFy\r\n"), "foobar", "line breaks are ignored")
	H.eq(shell.base64_decode("Zm9[YmFy"), nil, "a foreign character is refused")
	H.eq(shell.base64_decode("Zm9vY"), nil, "a truncated text is refused")
	H.eq(shell.base64_decode("Zg==Zm8="), nil, "padding only at the end")
end)

H.test("quote", function()
	H.eq(shell.quote("a b"), "'a b'", "spaces")
	H.eq(shell.quote("it's"), "'it'\\''s'", "a single quote")
end)

H.test("options are checked", function()
	local rig = { console = {} }
	local ok, e = pcall(shell.console, rig, { promt = "x" })
	H.ok(not ok and tostring(e):find("unknown option 'promt'", 1, true), "a misspelt option raises", tostring(e))
	local sh = shell.console(rig, { prompt = "me@box:.*%$", password = "pw" })
	H.eq(sh.o.prompt, "me@box:.*%$", "an option overrides its default")
	H.eq(sh.o.login_prompt, shell.DEFAULTS.login_prompt, "the others keep theirs")
	ok, e = pcall(sh.run, sh, "")
	H.ok(not ok and tostring(e):find("non%-empty"), "run('') raises", tostring(e))
end)

H.done()
