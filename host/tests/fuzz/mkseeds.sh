#!/bin/sh
# SPDX-License-Identifier: MIT
# Regenerates the seed corpora in host/tests/fuzz/corpus/ from real tools (bmaptool,
# sfdisk, mkfs.vfat, mke2fs) and real rigor inputs (rigs/, host/tests/rigs/, balena API
# answers as host/tests/http_fake.py gives them). Run from the top of the tree:
#   host/tests/fuzz/mkseeds.sh [target...]
# Regression seeds (crashers that were fixed, named regress-*) are kept, not regenerated.
set -eu
C=host/tests/fuzz/corpus
T=$(mktemp -d /tmp/rigor-seeds-XXXXXX)
trap 'rm -rf "$T"' EXIT
targets=${*:-bmap part rigfile json balena http expect}

clean() { mkdir -p "$C/$1"; find "$C/$1" -type f ! -name 'regress-*' -delete; }

# ---- bmap: bmaptool create on sparse images, plus the 1.x form (sha1 per range) ----
seeds_bmap() {
	clean bmap
	truncate -s 1M "$T/a.img"
	printf 'boot' | dd of="$T/a.img" bs=4096 seek=0 conv=notrunc status=none
	printf 'data' | dd of="$T/a.img" bs=4096 seek=10 conv=notrunc status=none
	printf 'more' | dd of="$T/a.img" bs=4096 seek=11 conv=notrunc status=none
	printf 'tail' | dd of="$T/a.img" bs=4096 seek=255 conv=notrunc status=none
	bmaptool -q create -o "$C/bmap/v2-sha256-ranges.bmap" "$T/a.img"
	bmaptool -q create --no-checksum -o "$C/bmap/v2-no-checksum.bmap" "$T/a.img"
	truncate -s 10000 "$T/b.img"   # not a multiple of the block size
	head -c 10000 /dev/zero | tr '\0' 'x' | dd of="$T/b.img" conv=notrunc status=none
	bmaptool -q create -o "$C/bmap/v2-partial-block.bmap" "$T/b.img"
	truncate -s 64K "$T/c.img"     # nothing mapped
	bmaptool -q create -o "$C/bmap/v2-empty.bmap" "$T/c.img"
	# bmap 1.4: SHA-1 per range in a "sha1" attribute, BmapFileSHA1 over the file
	python3 - "$T/a.img" "$C/bmap/v1.4-sha1.bmap" <<'PY'
import hashlib, sys
img = open(sys.argv[1], 'rb').read()
bs = 4096
ranges = [(0, 0), (10, 11), (255, 255)]
def rsha(a, b): return hashlib.sha1(img[a * bs:(b + 1) * bs]).hexdigest()
body = ''.join('        <Range sha1="%s"> %s </Range>\n' % (rsha(a, b), '%d-%d' % (a, b) if a != b else a)
               for a, b in ranges)
tpl = ('<?xml version="1.0" ?>\n<bmap version="1.4">\n    <ImageSize> %d </ImageSize>\n'
       '    <BlockSize> %d </BlockSize>\n    <BlocksCount> %d </BlocksCount>\n'
       '    <MappedBlocksCount> 4 </MappedBlocksCount>\n    <BmapFileSHA1> %s </BmapFileSHA1>\n'
       '    <BlockMap>\n%s    </BlockMap>\n</bmap>\n')
z = tpl % (len(img), bs, len(img) // bs, '0' * 40, body)
h = hashlib.sha1(z.encode()).hexdigest()
open(sys.argv[2], 'w').write(tpl % (len(img), bs, len(img) // bs, h, body))
PY
}

# ---- part: 64 MiB images (the fuzz target pads its input with zeros to 64 MiB), kept
# only up to the last byte the reader looks at: tables, EBRs, 2 KiB of each file system ----
fs() {  # fs TYPE LABEL FILE: a file system image of 40 MiB
	rm -f "$3"
	truncate -s 40M "$3"
	case $1 in
	fat16) mkfs.vfat -F 16 -n "$2" "$3" >/dev/null ;;
	fat32) mkfs.vfat -F 32 -n "$2" "$3" >/dev/null ;;
	ext4) mke2fs -q -t ext4 -L "$2" "$3" ;;
	esac
}
put() {  # put FSFILE IMG LBA [SECTOR]: the first 2 KiB of the file system at LBA
	dd if="$1" of="$2" bs=2048 count=1 seek="$3" oflag=seek_bytes conv=notrunc status=none
}
seed_part() {  # seed_part NAME BYTES: keep the first BYTES of $T/d.img
	head -c "$2" "$T/d.img" >"$C/part/$1"
}
seeds_part() {
	clean part
	fs fat16 BOOT "$T/f16"; fs fat32 resin-boot "$T/f32"; fs ext4 resin-rootA "$T/e4"
	# MBR: FAT32 boot partition, ext4 after it
	rm -f "$T/d.img"; truncate -s 64M "$T/d.img"
	printf 'start=8, size=81920, type=c, bootable\nstart=81928, size=40960, type=83\n' |
		sfdisk -q --no-reread "$T/d.img" >/dev/null
	put "$T/f32" "$T/d.img" $((8 * 512))
	seed_part mbr-fat32-ext4 $((8 * 512 + 2048))
	# MBR: ext4 first, FAT16 second (both labels inside the prefix: small partitions)
	rm -f "$T/d.img"; truncate -s 64M "$T/d.img"
	printf 'start=8, size=16, type=83\nstart=24, size=16, type=6\n' |
		sfdisk -q --no-reread "$T/d.img" >/dev/null
	put "$T/e4" "$T/d.img" $((8 * 512)); put "$T/f16" "$T/d.img" $((24 * 512))
	seed_part mbr-ext4-fat16 $((24 * 512 + 2048))
	# MBR with an extended partition and three logical ones (an EBR chain)
	rm -f "$T/d.img"; truncate -s 64M "$T/d.img"
	printf 'start=8, size=16, type=6\nstart=32, size=120000, type=5\nstart=40, size=16, type=83\nstart=64, size=16, type=c\nstart=96, size=100000, type=83\n' |
		sfdisk -q --no-reread "$T/d.img" >/dev/null
	put "$T/f16" "$T/d.img" $((8 * 512)); put "$T/f32" "$T/d.img" $((64 * 512))
	seed_part mbr-extended $((96 * 512 + 2048))
	# GPT, 512-byte sectors: named partitions, FAT32 and ext4 labels, a legacy-boot flag
	rm -f "$T/d.img"; truncate -s 64M "$T/d.img"
	printf 'label: gpt\nfirst-lba: 34\nstart=40, size=16, type=uefi, name="resin-boot", attrs="LegacyBIOSBootable"\nstart=56, size=16, type=linux, name="resin-rootA"\nstart=72, size=81920, type=linux, name="resin-data"\n' |
		sfdisk -q --no-reread "$T/d.img" >/dev/null
	put "$T/f32" "$T/d.img" $((40 * 512)); put "$T/e4" "$T/d.img" $((56 * 512))
	seed_part gpt-named $((56 * 512 + 2048))
	# GPT, 4096-byte sectors (sfdisk here cannot make them: written directly)
	python3 - "$T/f16" "$C/part/gpt-4k" <<'PY'
import struct, sys, uuid, zlib
ss, nent, esz = 4096, 128, 128
def ent(tguid, first, last, name):
    return (uuid.UUID(tguid).bytes_le + uuid.uuid5(uuid.NAMESPACE_DNS, name).bytes_le +
            struct.pack('<QQQ', first, last, 0) + name.encode('utf-16-le').ljust(72, b'\0'))
ents = (ent('C12A7328-F81F-11D2-BA4B-00A0C93EC93B', 8, 23, 'boot') +
        ent('0FC63DAF-8483-4772-8E79-3D69D8477DE4', 24, 4119, 'root')).ljust(nent * esz, b'\0')
last = (64 << 20) // ss - 6
hdr = struct.pack('<8sIIIIQQQQ16sQIII', b'EFI PART', 0x10000, 92, 0, 0, 1, (64 << 20) // ss - 1,
                  6, last, uuid.UUID(int=1).bytes_le, 2, nent, esz, zlib.crc32(ents))
hdr = hdr[:16] + struct.pack('<I', zlib.crc32(hdr)) + hdr[20:]
mbr = bytearray(512)
mbr[446:462] = struct.pack('<BBBBBBBBII', 0, 0, 2, 0, 0xEE, 0xFF, 0xFF, 0xFF, 1, 0xFFFFFFFF)
mbr[510:512] = b'\x55\xaa'
img = bytearray(8 * ss)
img[0:512] = mbr
img[ss:ss + len(hdr)] = hdr
img[2 * ss:2 * ss + len(ents)] = ents
img += open(sys.argv[1], 'rb').read(2048)
open(sys.argv[2], 'wb').write(img)
PY
	# GPT with no file systems and many entries in use
	rm -f "$T/d.img"; truncate -s 64M "$T/d.img"
	{ echo 'label: gpt'; echo 'first-lba: 34'
	  i=0; while [ $i -lt 12 ]; do echo "start=$((40 + i * 8)), size=8, type=linux, name=\"p$i\""; i=$((i + 1)); done
	} | sfdisk -q --no-reread "$T/d.img" >/dev/null
	seed_part gpt-12 $((34 * 512))
}

seeds_rigfile() {
	clean rigfile
	for f in rigs/*.lua rigs/examples/*.lua host/tests/rigs/*.lua; do
		[ -f "$f" ] && cp "$f" "$C/rigfile/$(basename "$(dirname "$f")")-$(basename "$f")"
	done
	cat >"$C/rigfile/buttons-caps.lua" <<'R'
local base = os.getenv("RIGOR_NO_SUCH_VAR") or "sim"
rig {
	name = "fz-" .. string.format("%02d", 7), device_type = "raspberrypi4-64",
	description = [[a rig]], capabilities = { "hdmi", "usb", 3 },
	power = sim { min_off_ms = 100, inverted = true, timeout_ms = 1.5 },
	sdmux = sim { settle_ms = "x" },
	button = { boot = sim {}, reset = sim { press_ms = 50, active_low = false }, [1] = sim {} },
	console = sim { line_ms = 1, hostname = "dut" },
	storage = sim {}, usbboot = sim { msd_dir = "/tmp" },
	power2 = nosuch { a = {} }, extra = 12,
}
R
	cat >"$C/rigfile/errors.lua" <<'R'
rig { name = "twice" }
rig { name = "again" }
R
	printf 'rig { name = "x", button = sim { }, power = sim "s" }\n' >"$C/rigfile/ctor-misuse.lua"
	printf 'error({})\n' >"$C/rigfile/error-table.lua"
	printf 'local t = setmetatable\nrig(t)\n' >"$C/rigfile/global-ctor.lua"
}

seeds_json() {
	clean json
	printf '{"id":1234,"actorType":"user","username":"gh_me","email":"me@example.com","jwt_secret":null}' >"$C/json/whoami"
	printf '{"d":[{"id":42,"uuid":"0123456789abcdef0123456789abcdef","app_name":"myfleet","slug":"myorg/myfleet","is_for__device_type":{"__id":31}}]}' >"$C/json/application"
	printf '{"d":[]}' >"$C/json/empty-d"
	printf '{"applicationId":42,"deviceType":"raspberrypi4-64","apiKey":"PROV-abc","apiEndpoint":"https://api.balena-cloud.com","appUpdatePollInterval":900000,"listenPort":48484,"vpnPort":443,"developmentMode":true,"persistentLogging":false,"os":{"network":{"connectivity":{"uri":"https://api.balena-cloud.com/connectivity-check","interval":"3600"}}},"wifiSsid":"","ratio":0.25,"big":9007199254740993,"neg":-1e-7}\n' >"$C/json/config-json"
	printf '{\n  "d": [\n    {\n      "id": 7,\n      "uuid": "abc",\n      "is_online": false,\n      "api_heartbeat_state": "online",\n      "os_version": "balenaOS 5.3.10",\n      "ip_address": null,\n      "status": "Idle"\n    }\n  ]\n}' >"$C/json/device-indented"
	printf '[1,2.5,"x",true,false,null,[],{},[[]],{"a":{"b":[{}]}}]' >"$C/json/mixed-array"
	printf '"caf\\u00e9 \\ud83d\\ude00 \\u0000 tab\\t nl\\n"' >"$C/json/string-escapes"
	printf '{"1":"one","2":"two","":"empty","k\\"q":1}' >"$C/json/odd-keys"
	printf '%s' '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]' >"$C/json/deep-64"
	printf '12345678901234567890' >"$C/json/int-overflow"
	printf '{"a":1,"a":2}' >"$C/json/duplicate-key"
}

# balena: <call byte> then records <ctype> <status> <body> separated by 0x1E (see
# fuzz_balena.c); ctype 0 = application/json, 2 = text/plain; status 0 = 200, 8 = 404.
rec() { printf '%b' "$1"; printf '%s' "$2"; }
seeds_balena() {
	clean balena
	S='\036'
	{ printf '\000'; rec '\000\000' '{"id":1,"actorType":"user","username":"me"}'; } >"$C/balena/whoami"
	{ printf '\000'; rec '\002\010' 'Not Found'; printf "$S"; rec '\000\000' '{"id":1,"username":"me"}'; } >"$C/balena/whoami-404"
	{ printf '\001'; rec '\000\000' '{"d":[{"id":42,"uuid":"0123456789abcdef0123456789abcdef","app_name":"myfleet","slug":"myorg/myfleet","is_for__device_type":{"__id":31}}]}'; } >"$C/balena/fleet"
	{ printf '\002'; rec '\000\000' '{"d":[]}'; } >"$C/balena/fleet-none"
	{ printf '\003'; rec '\000\000' '{"d":[{"id":42}]}'; printf "$S"; rec '\001\003' '{"applicationId":42,"apiKey":"PROV-abc","deviceApiKey":"DEV-xyz","deviceType":"raspberrypi4-64"}'; } >"$C/balena/download-config"
	{ printf '\004'; rec '\002\005' 'bad request: apiKey=FUZZKEY-0123456789abcdef'; } >"$C/balena/download-config-400"
	{ printf '\005'; rec '\000\003' '{"id":9,"uuid":"0123456789abcdef0123456789abcdef","api_key":"DEVKEY-1234"}'; } >"$C/balena/register"
	{ printf '\006'; rec '\000\000' '{"d":[{"id":7,"uuid":"0123456789abcdef0123456789abcdef","is_online":false,"api_heartbeat_state":"offline","os_version":null,"status":"Idle"}]}'; } >"$C/balena/device"
	{ printf '\007'; rec '\000\000' '{"d":[{"is_online":true}]}'; } >"$C/balena/wait-online"
	{ printf '\007'; rec '\000\014' 'Service Unavailable'; } >"$C/balena/wait-online-503"
	{ printf '\010'; rec '\000\000' '{"d":[{"os_version":"balenaOS 5.3.10"}]}'; } >"$C/balena/os-version"
	{ printf '\011'; rec '\003\000' '{"d":[{"supervisor_version":"16.1.0"}]}'; } >"$C/balena/supervisor-no-ctype"
	{ printf '\012'; rec '\002\000' 'plain text body'; } >"$C/balena/call-text"
	{ printf '\012'; rec '\000\000' '   '; } >"$C/balena/call-blank-json"
	{ printf '\012'; rec '\000\000' '{"broken":'; } >"$C/balena/call-bad-json"
}

# http: <flags> then the raw response (flags bit 0: through http.json)
seeds_http() {
	clean http
	{ printf '\001'; printf 'HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: 27\r\nX-Dup: a\r\nx-dup:  b \r\n\r\n{"d":[{"is_online":true}]}\n'; } >"$C/http/json-200"
	{ printf '\000'; printf 'HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nNot Found'; } >"$C/http/text-404-close"
	{ printf '\001'; printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n5\r\n{"a":\r\n3\r\n12}\r\n0\r\nX-Trailer: t\r\n\r\n'; } >"$C/http/chunked-trailer"
	{ printf '\000'; printf 'HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\nRetry-After: 3\r\n\r\nok'; } >"$C/http/continue-201"
	{ printf '\001'; printf 'HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 120\r\n\r\n{"error":"busy"'; } >"$C/http/503-bad-json"
	{ printf '\000'; printf 'HTTP/1.1 204 No Content\r\n:empty-name\r\nNoColon\r\n\tFolded: x\r\nA: \t \r\n\r\n'; } >"$C/http/odd-headers"
	{ printf '\000'; printf 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort'; } >"$C/http/short-body"
}

# expect: <nops - 1> then <op> <len> <pattern>, then chunks <len> <repeat> <bytes> (see
# fuzz_expect.c). op: 0 expect, 1 plain, 2 read, 3 clear; + 4 * timeout index.
op() { printf '%b' "$1"; printf "\\$(printf %03o ${#2})"; printf '%s' "$2"; }
chunk() { printf "\\$(printf %03o ${#2})"; printf '%b' "$1"; printf '%s' "$2"; }
seeds_expect() {
	clean expect
	{ printf '\000'; op '\004' 'login:'; chunk '\000' 'U-Boot 2023.01'; chunk '\000' "
Starting kernel ...
"; chunk '\000' 'rigor-sim login: '; } >"$C/expect/login"
	{ printf '\001'; op '\005' '# '; op '\010' 'balenaOS (%d+)%.(%d+)'; chunk '\000' 'root@dut:~# '; chunk '\000' 'cat /etc/os-release
balenaOS 5.3'; chunk '\000' '.10
'; } >"$C/expect/captures"
	{ printf '\002'; op '\002' ''; op '\003' ''; op '\000' '()x'; chunk '\000' 'abc'; chunk '\001' 'x'; } >"$C/expect/read-clear"
	{ printf '\000'; op '\004' 'never'; chunk '\377' 'noise noise noise noise noise noise noise noise noise noise noise noise
'; } >"$C/expect/big-timeout"
	{ printf '\000'; op '\005' 'end'; chunk '\377' 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'; chunk '\000' 'end'; } >"$C/expect/trim-then-match"
	{ printf '\000'; op '\000' '[a-'; chunk '\000' 'a'; } >"$C/expect/bad-pattern"
	{ printf '\000'; op '\014' 'x'; } >"$C/expect/forever-dry"
}

for t in $targets; do "seeds_$t"; done
