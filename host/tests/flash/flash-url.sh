#!/bin/sh
# SPDX-License-Identifier: MIT
# `rigor flash URL` against a loopback HTTP server of images (image_server.py): every
# streamed format, --sha256, a connection dropped mid-stream with and without range support,
# a 404, a stall, cancel, redirects and credentials kept out of the output. Prints TAP.
# Needs: python3 (Debian's, /usr/bin/python3), xz-utils zstd bzip2 gzip zip bmap-tools.
set -u
BUILD=${BUILD:-build}
RIGOR=${RIGOR:-$BUILD/rigor}
case $RIGOR in /*) ;; *) RIGOR=$PWD/$RIGOR ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
W=$PWD/$BUILD/tmp/flash-url.$$
SRV=
mkdir -p "$W"
trap '[ -n "$SRV" ] && kill "$SRV" 2>/dev/null; rm -rf "$W"' EXIT
cd "$W" || exit 1

. "$HERE/tap-flash.sh"
# A blank "card": a file of fixed size, as a target with --target --force (no --create).
card() { rm -f card; head -c "$SIZE" /dev/zero >card; }
flash() { "$RIGOR" flash "$@" --target card --force --progress none; }
# The card holds neither the image nor a bootable half: its first MiB is zeros.
blank_head() { [ "$(head -c 1048576 card | tr -d '\000' | wc -c)" -eq 0 ]; }

# --- fixtures: a sparse 3 MiB image with an MBR signature and scattered data ---------------
"$PY" - <<'EOF' || { echo "1..1"; echo "not ok 1 - fixtures"; exit 1; }
import random
r = random.Random(7)
size = 3 << 20
with open("img.img", "wb") as f:
    f.truncate(size)
    f.write(bytes(446) + bytes([0x80, 0, 0, 0, 0x83]) + bytes(59) + b"\x55\xaa")
    for off in (4096, 65536, 1 << 20, (1 << 20) + 300000, 2 << 20, size - 8192):
        f.seek(off)
        f.write(bytes(r.getrandbits(8) for _ in range(8192)))
EOF
SIZE=$(stat -c %s img.img)
gzip -k -n img.img
xz -k -T1 img.img
zstd -q -k img.img
bzip2 -k img.img
zip -q -X img.zip img.img
bmaptool create img.img >img.bmap 2>/dev/null
sha() { sha256sum "$1" | cut -c1-64; }

"$PY" "$HERE/image_server.py" "$W" port 2>server.log &
SRV=$!
i=0
while [ ! -s port ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s port ] || { echo "1..1"; echo "not ok 1 - image server did not start"; cat server.log; exit 1; }
U=http://127.0.0.1:$(cat port)

# --- every streamed format is byte-identical to flashing the local file --------------------
for f in img.img img.img.gz img.img.xz img.img.zst img.img.bz2; do
	rm -f ref.out t.out
	"$RIGOR" flash "$f" --no-bmap --target ref.out --force --create --progress none >/dev/null 2>err
	if "$RIGOR" flash "$U/plain/$f" --target t.out --force --create --progress none \
		--json >j 2>err && cmp -s t.out img.img && cmp -s t.out ref.out &&
	   grep -q "\"source\":\"$U/plain/$f\"" j; then
		ok "flash $f from a URL is byte-identical to flashing the file"
	else
		nok "flash $f from a URL is byte-identical to flashing the file"
	fi
done
card
check "a zip from a URL is refused clearly, before writing" \
	'! flash "$U/plain/img.zip" 2>err && grep -q "zip archive, which cannot be flashed from a URL" err && blank_head'

# --- --sha256 ------------------------------------------------------------------------------
card
check "--sha256 of the downloaded file matches" \
	'flash "$U/plain/img.img.xz" --sha256 "$(sha img.img.xz)" --json >j 2>err &&
	 [ "$(json sha256_matched j)" = true ] && cmp -s card img.img'
card
BAD=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
flash "$U/plain/img.img.xz" --sha256 $BAD >out 2>err
rc=$?
check "a wrong --sha256 fails (exit $rc), names expected and got, invalidates the card" \
	'[ $rc -ne 0 ] && grep -q "SHA-256 mismatch" err && grep -q "expected $BAD" err &&
	 grep -q "got $(sha img.img.xz)" err && grep -q invalidated err && blank_head &&
	 ! grep -q flashed out'
card
check "a wrong --sha256 fails for a local file too" \
	'! flash img.img.gz --no-bmap --sha256 $BAD 2>err && grep -q "SHA-256 mismatch" err && blank_head'
card
check "--sha256 of a local zip is checked before writing" \
	'! flash img.zip --sha256 $BAD 2>err && grep -q "SHA-256 mismatch" err &&
	 ! grep -q invalidated err && flash img.zip --sha256 "$(sha img.zip)" >/dev/null 2>err &&
	 cmp -s card img.img'
check "--sha256 that is not 64 hex digits is refused" \
	'! flash "$U/plain/img.img" --sha256 abc 2>err && grep -q "not 64 hexadecimal digits" err'

# --- a connection dropped mid-stream -------------------------------------------------------
card
check "dropped once, the server accepts ranges: resumed, byte-identical, logged" \
	'flash "$U/drop-once/img.img.xz?drop=20000" --json >j 2>err && cmp -s card img.img &&
	 [ "$(json resumes j)" = 1 ] && grep -q "broke off and was resumed 1 time" err &&
	 grep -q "range=bytes=20000- -> 206" server.log'
card
check "dropped on every response (raw, 300 kB each): resumed until done" \
	'flash "$U/drop-always/img.img?drop=300000" --json >j 2>err && cmp -s card img.img &&
	 [ "$(json resumes j)" -ge 9 ]'
card
check "dropped, the server does not accept ranges: a clear error, card not reported good" \
	'! flash "$U/drop-noranges/img.img?drop=1500000" >out 2>err &&
	 grep -q "does not accept ranges" err && grep -q "broke off after 1500000 bytes" err &&
	 ! grep -q flashed out'
card
check "a resumed response from a changed file is refused" \
	'! flash "$U/changed/img.img.gz?drop=20000" 2>err && grep -q "changed on the server" err'

# --- HTTP errors, stall, cancel ----------------------------------------------------------
card
flash "$U/plain/missing.img" >out 2>err
rc=$?
check "404 names the status and the URL (exit $rc), card untouched" \
	'[ $rc -eq 2 ] && grep -q "HTTP 404" err && grep -q "$U/plain/missing.img" err && blank_head'
check "403 and 500 name their status" \
	'! flash "$U/status/403" 2>err && grep -q "HTTP 403" err &&
	 ! flash "$U/status/500" 2>err && grep -q "HTTP 500" err'
card
# Generous bound: the stall limit is 2 s; a loaded machine may take a few seconds more.
t0=$(date +%s)
flash "$U/stall/img.img?drop=1500000" --stall-timeout 2 >out 2>err
rc=$? t=$(($(date +%s) - t0))
check "a stalled download times out (after ${t} s, exit $rc)" \
	'[ $rc -ne 0 ] && grep -q "stalled: no data for 2 s after 1500000 bytes" err &&
	 [ $t -ge 2 ] && [ $t -le 20 ]'
card
# Ctrl-C while the server sends nothing: the default 30 s stall limit must not hold it up.
# The download notices the cancel flag within about 100 ms; 10 s allows for a loaded machine
# (and the sanitizer build) and is still far below the 30 s a missed cancel would take.
t0=$(date +%s)
"$RIGOR" flash "$U/stall/img.img?drop=1500000" --target card --force --progress none \
	>out 2>err &
pid=$!
sleep 1
kill -INT $pid
wait $pid
rc=$? t=$(($(date +%s) - t0))
check "SIGINT cancels a stalled download promptly (${t} s, exit $rc)" \
	'[ $rc -ne 0 ] && grep -q cancelled err && [ $t -le 10 ]'

# --- redirects, credentials, bmap ---------------------------------------------------------
card
check "a redirect is followed" 'flash "$U/redirect/img.img.bz2" >/dev/null 2>err && cmp -s card img.img'
AU=http://user:secret@127.0.0.1:$(cat port)
card
check "credentials in the URL are used and never printed" \
	'flash "$AU/auth/img.img.gz" --json >j 2>err && cmp -s card img.img &&
	 flash "$AU/auth/img.img.gz" >out 2>>err && ! grep -q secret j out err &&
	 grep -qF "***@127.0.0.1" j'
check "credentials stay out of an error message" \
	'! flash "$AU/plain/missing.img" >out 2>err && grep -q "HTTP 404" err && ! grep -q secret out err'
card
check "a local bmap limits a URL's writes to the mapped ranges" \
	'flash "$U/plain/img.img.xz" --bmap img.bmap --full --json >j 2>err && cmp -s card img.img &&
	 [ "$(json bmap j)" = true ] && [ "$(json written j)" -lt "$SIZE" ]'
card
check "a bmap given as a URL too" \
	'flash "$U/plain/img.img.zst" --bmap "$U/plain/img.bmap" --full --json >j 2>err &&
	 cmp -s card img.img && [ "$(json written j)" -lt "$SIZE" ]'

# --- rig mode and Lua: rig:flash(URL) on the sim rig ---------------------------------------
export RIGOR_STATE_DIR=$W/state
cat >rig.lua <<EOR
rig {
  name = "urlrig",
  power = sim { min_off_ms = 50 },
  sdmux = sim {},
  storage = file { path = "$W/card" },
}
EOR
R="$RIGOR --rig $W/rig.lua"
card
check "rigor flash URL on the sim rig" \
	'$R flash "$U/plain/img.img.zst" --progress none >out 2>err && cmp -s card img.img &&
	 grep -q "flashed $U/plain/img.img.zst (zstd)" out'
cat >good.lua <<'EOL'
local url, good = arg[1], arg[2]
local st = assert(rig:flash(url, { sha256 = good }))
assert(st.sha256_matched == true and st.sha256 == good, tostring(st.sha256))
assert(rig.image.name == "img.img.xz", rig.image.name)
assert(not rig.image.path:find("secret", 1, true), rig.image.path)
assert(rig.image.sha256 == good and rig.image.format == "xz")
print("lua-url-ok")
EOL
cat >bad.lua <<'EOL'
local url, bad = arg[1], arg[2]
local ok, msg, code = rig:flash(url, { sha256 = bad })
assert(ok == nil and code == "RIG_E_CORRUPT", tostring(code))
assert(msg:find("SHA-256 mismatch", 1, true) and msg:find("expected " .. bad, 1, true), msg)
assert(not msg:find("secret", 1, true), msg)
print("lua-url-bad-ok")
EOL
card
check "rig:flash(URL, { sha256 }): matched, rig.image from the download, redacted" \
	'$R lua good.lua "$AU/auth/img.img.xz" "$(sha img.img.xz)" >out 2>err &&
	 grep -q lua-url-ok out && cmp -s card img.img'
# A blank card again: a card that already holds every byte is not written, so not erased.
card
check "rig:flash(URL, { sha256 = wrong }): nil, msg, RIG_E_CORRUPT; the card invalidated" \
	'$R lua bad.lua "$AU/auth/img.img.xz" $BAD >out 2>err && grep -q lua-url-bad-ok out &&
	 blank_head'
check "the rig's record says invalidated, names the URL redacted" \
	'$R storage status >out 2>err; grep -q "invalidated" out && grep -qF "***@127.0.0.1" out &&
	 ! grep -q secret out "$RIGOR_STATE_DIR"/* 2>/dev/null'

echo "1..$n"
[ $fails -eq 0 ]
