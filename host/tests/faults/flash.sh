#!/bin/sh
# SPDX-License-Identifier: MIT
# The flash half of the fault matrix: every way an image, a bmap, a target or the user can
# go wrong, on the sim rig with a file-backed card (and `--target` for the target cases).
# Each case asserts the exit code, the message, no success line, the lock free and the DUT
# off, and the card: byte-for-byte unchanged when refused before writing, invalidated (no
# partition table or boot sector left) when it failed after writing. Prints TAP.
T=$(mktemp -d /tmp/rigor-faults-flash-XXXXXX)
. host/tests/tap.sh
. host/tests/faults/lib.sh
export RIGOR_STATE_DIR=$T/state
export PATH="$PATH:/sbin:/usr/sbin"
export MTOOLS_SKIP_CHECK=1
trap 'chattr -i "$T/ro.card" 2>/dev/null; rm -rf "$T"' EXIT

cat >"$T/rig.lua" <<EOR
rig {
  name = "faultflash",
  device_type = "raspberrypi4-64",
  power = sim { min_off_ms = 50 },
  sdmux = sim {},
  storage = file { path = "$T/card" },
}
EOR
R="$RIGOR --rig $T/rig.lua"
CARD=$T/card
F_TIMEOUT=${F_TIMEOUT:-120}

# --- fixtures -------------------------------------------------------------------------------
# The card holds an "old OS": data in its first and last MiB, holes between (128 MiB).
truncate -s 128M "$T/old.card"
head -c 2M /dev/urandom | dd of="$T/old.card" conv=notrunc status=none
head -c 1M /dev/urandom | dd of="$T/old.card" bs=1M seek=127 conv=notrunc status=none
OLD=$(fault_sha "$T/old.card")
# card: put the old OS back before a case
card() { cp --sparse=always "$T/old.card" "$CARD"; }

# a 16 MiB balenaOS-like image: MBR, FAT 'resin-boot', random data spread over it so that a
# stream cut or damaged half-way fails after the first chunks were written
truncate -s 16M "$T/os.img"
printf 'label: dos\nstart=2048, size=8192, type=c\nstart=10240, type=83\n' |
	sfdisk -q --no-tell-kernel "$T/os.img"
mkfs.vfat -n resin-boot --offset 2048 "$T/os.img" 4096 >/dev/null 2>&1
for m in 6 9 12 15; do
	head -c 512K /dev/urandom | dd of="$T/os.img" bs=1M seek=$m conv=notrunc status=none
done
bmaptool create "$T/os.img" >"$T/os.img.bmap" 2>/dev/null
gzip -n -c "$T/os.img" >"$T/os.img.gz"
xz -T1 -c "$T/os.img" >"$T/os.img.xz"
xz -T2 --block-size=1MiB -c "$T/os.img" >"$T/multi.img.xz"
zstd -q -c "$T/os.img" >"$T/os.img.zst"
bzip2 -c "$T/os.img" >"$T/os.img.bz2"
(cd "$T" && zip -q -X os.zip os.img)
flip() { python3 -c "
import sys
p=sys.argv[1]; b=bytearray(open(p,'rb').read()); i=int(len(b)*0.6); b[i]^=0x55; open(p,'wb').write(b)" "$1"; }
for f in os.img.gz os.img.xz multi.img.xz os.img.zst os.img.bz2 os.zip; do
	head -c $(( $(stat -c %s "$T/$f") * 6 / 10 )) "$T/$f" >"$T/trunc.$f"
	cp "$T/$f" "$T/bad.$f"
	flip "$T/bad.$f"
done
# a variant of the same size: the first MiBs match, the data at 12 MiB differs
cp "$T/os.img" "$T/variant.img"
head -c 512K /dev/urandom | dd of="$T/variant.img" bs=1M seek=12 conv=notrunc status=none
bmaptool create "$T/variant.img" >"$T/variant.img.bmap" 2>/dev/null
cp "$T/os.img" "$T/flipped.img"
printf 'X' | dd of="$T/flipped.img" bs=1 seek=$((12 * 1048576 + 7)) conv=notrunc status=none
# a small image (one chunk): a stream cut short is known bad before anything is written
head -c 2M "$T/os.img" | xz -T1 >"$T/small.img.xz"
head -c $(( $(stat -c %s "$T/small.img.xz") / 2 )) "$T/small.img.xz" >"$T/trunc.small.img.xz"
# empty and non-images
: >"$T/empty.img"
gzip -n -c "$T/empty.img" >"$T/empty.gz"
xz -c "$T/empty.img" >"$T/empty.xz"
zstd -q -c "$T/empty.img" >"$T/empty.zst"
bzip2 -c "$T/empty.img" >"$T/empty.bz2"
python3 -c "import zipfile,sys; zipfile.ZipFile(sys.argv[1],'w').close()" "$T/noentry.zip"
(cd "$T" && cp empty.img img.img && zip -q -X emptyentry.zip img.img && rm img.img)
head -c 6000 docs/flashing.md >"$T/notes.txt"
head -c 6144 docs/flashing.md >"$T/notes6k.txt"
gzip -n -c "$T/notes6k.txt" >"$T/notes.txt.gz"
head -c 100000 /dev/urandom >"$T/random.bin"
{ printf 'QFI\373\0\0\0\3'; head -c 1048568 /dev/zero; } >"$T/disk.qcow2"
(cd "$T" && tar cf - os.img | gzip -n >os.tar.gz)
head -c $((15 * 1048576 + 1000)) "$T/os.img" >"$T/trunc.img"
head -c 8M "$T/os.img" >"$T/half.img"
mkfifo "$T/fifo"
mkdir "$T/dir"
ln -s "$T/gone.img" "$T/dangling.img"
python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$T/sock"
# bmaps that are wrong
echo "<?xml version='1.0'?><bmap version='2.0'><ImageSize>" >"$T/broken.bmap"
sed 's/chksum="\(.\)/chksum="0\1/' "$T/os.img.bmap" | sed 's/chksum="0\(.\)\(.\)/chksum="\2\1/' >"$T/tampered.bmap"
python3 - "$T/os.img.bmap" "$T/past.bmap" <<'EOF'
import hashlib, re, sys
t = open(sys.argv[1]).read()
# a last range past BlocksCount, the file checksum recomputed so only the range is wrong
n = int(re.search(r'<BlocksCount>\s*(\d+)', t).group(1))
t = re.sub(r'(<Range chksum="[0-9a-f]+">)[^<]*(</Range>)(\s*</BlockMap>)',
           r'\g<1> %d-%d \g<2>\g<3>' % (n - 2, n + 5), t)
old = re.search(r'<BmapFileChecksum>\s*([0-9a-f]+)\s*</BmapFileChecksum>', t).group(1)
z = t.replace(old, '0' * len(old))
open(sys.argv[2], 'w').write(t.replace(old, hashlib.sha256(z.encode()).hexdigest()))
EOF
head -c 8M "$T/os.img" >"$T/other.img"
bmaptool create "$T/other.img" >"$T/other.img.bmap" 2>/dev/null
# a slow image for signals: base64 text decodes at a few tens of MB/s in LZMA
{ head -c 512 "$T/os.img"; head -c 72M /dev/urandom | base64 -w 0 | head -c $((96 * 1048576 - 512)); } >"$T/big.img"
xz -T1 -0 -c "$T/big.img" >"$T/big.img.xz"

# during CARD SNIPPET CMD...: run CMD; once CARD's first 4 KiB change (the first write
# landed), run SNIPPET ($p is CMD's pid); exit with CMD's status
cat >"$T/during.sh" <<'EOS'
card=$1 act=$2
shift 2
first=$(head -c 4096 "$card" | sha256sum)
"$@" &
p=$!
i=0
while [ $i -lt 3000 ] && kill -0 $p 2>/dev/null; do
	[ "$(head -c 4096 "$card" 2>/dev/null | sha256sum)" != "$first" ] && break
	sleep 0.02
	i=$((i + 1))
done
eval "$act"
wait $p
EOS
D="sh $T/during.sh"

# --- empty images, every format: refused before writing ------------------------------------
for f in empty.img empty.gz empty.xz empty.zst empty.bz2 emptyentry.zip; do
	card
	F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "empty image $f" 2 "is empty" $R flash "$T/$f"
done
card
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "zip without entries" 2 "holds no image" $R flash "$T/noentry.zip"

# --- not images -----------------------------------------------------------------------------
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "6000-byte text file" 2 "not a whole number of 512-byte sectors" $R flash "$T/notes.txt"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "6144-byte text file" 2 "looks like a text file" $R flash "$T/notes6k.txt"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "gzip of a text file" 2 "looks like a text file \(inside its gzip" $R flash "$T/notes.txt.gz"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "random bytes" 2 "512-byte sectors" $R flash "$T/random.bin"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "qcow2 disk" 2 "qcow image.*qemu-img convert" $R flash "$T/disk.qcow2"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "tar.gz of an image" 2 "tar archive \(inside its gzip" $R flash "$T/os.tar.gz"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "missing image" 2 "does not exist" $R flash "$T/nope.img.xz"

# --- special files as the image -------------------------------------------------------------
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD F_TIMEOUT=20 fault "/dev/zero as the image" 2 "character device" $R flash /dev/zero
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD F_TIMEOUT=20 fault "a FIFO as the image" 2 "FIFO" $R flash "$T/fifo"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "a directory as the image" 2 "is a directory" $R flash "$T/dir"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "a dangling symlink as the image" 2 "dangling symbolic link" $R flash "$T/dangling.img"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "a socket as the image" 2 "is a socket" $R flash "$T/sock"

# --- truncated and corrupt images -------------------------------------------------------------
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "raw image cut mid-sector" 2 "512-byte sectors" $R flash "$T/trunc.img"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "raw image shorter than its bmap" 2 "truncated image" $R flash "$T/half.img" --bmap "$T/os.img.bmap"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "small xz cut short (known bad before writing)" 2 "truncated xz" $R flash "$T/trunc.small.img.xz"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "truncated zip (no central directory)" 2 "corrupt or truncated zip" $R flash "$T/trunc.os.zip"
for f in os.img.gz os.img.xz os.img.zst os.img.bz2; do
	card
	F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=invalid fault "truncated $f (after writing)" 2 "truncated.*the card was invalidated" $R flash "$T/trunc.$f" --no-bmap
done
card
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=invalid fault "truncated multi-block xz with bmap" 2 "truncated.*invalidated" $R flash "$T/trunc.multi.img.xz" --bmap "$T/os.img.bmap"
for f in os.img.gz os.img.xz os.img.zst os.img.bz2 os.zip; do
	card
	F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=invalid fault "bit-flipped $f (after writing)" 2 "(corrupt|mismatch|CRC).*the card was invalidated" $R flash "$T/bad.$f" --no-bmap
done
card
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=invalid fault "bit-flipped multi-block xz with bmap" 2 "corrupt xz stream.*invalidated" $R flash "$T/bad.multi.img.xz" --bmap "$T/os.img.bmap"

# --- bmaps ------------------------------------------------------------------------------------
card
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "malformed bmap XML" 2 "bmap" $R flash "$T/os.img.xz" --bmap "$T/broken.bmap"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "bmap failing its own checksum" 2 "checksum" $R flash "$T/os.img.xz" --bmap "$T/tampered.bmap"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "bmap ranges past the image" 2 "bmap" $R flash "$T/os.img.xz" --bmap "$T/past.bmap"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "bmap of another (smaller) raw image" 2 "wrong bmap" $R flash "$T/os.img" --bmap "$T/other.img.bmap"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD fault "bmap file missing" 2 "bmap .* does not exist" $R flash "$T/os.img.xz" --bmap "$T/nope.bmap"
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$OLD F_TIMEOUT=20 fault "bmap is a FIFO" 2 "not a regular file" $R flash "$T/os.img.xz" --bmap "$T/fifo"
card
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=invalid fault "raw image with a byte changed at 12 MiB (bmap checksum)" 2 "checksum mismatch.*invalidated" $R flash "$T/flipped.img" --bmap "$T/os.img.bmap"
card
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=invalid fault "bmap of a same-size variant (checksum, after writing)" 2 "checksum mismatch.*invalidated" $R flash "$T/os.img.xz" --bmap "$T/variant.img.bmap"

# --- targets (--target) -----------------------------------------------------------------------
F_TARGET=/dev/rigor-no-such-card F_SHA=absent fault "missing device under /dev" 2 "no such device '/dev/rigor-no-such-card'" $RIGOR flash "$T/os.img.xz" --target /dev/rigor-no-such-card --force
F_TARGET=/dev/rigor-no-such-card F_SHA=absent fault "missing device under /dev, --create" 2 "no such device" $RIGOR flash "$T/os.img.xz" --target /dev/rigor-no-such-card --force --create
F_TARGET=$T/new.card F_SHA=absent fault "missing file target without --create" 2 "does not exist \(add --create" $RIGOR flash "$T/os.img.xz" --target "$T/new.card" --force
F_TARGET=$T/new.card F_SHA=absent fault "--create, then the image is corrupt: the new file is removed" 2 "was removed" $RIGOR flash "$T/bad.os.img.xz" --target "$T/new.card" --force --create
truncate -s 4M "$T/small.card"
head -c 1M /dev/urandom | dd of="$T/small.card" conv=notrunc status=none
SMALL=$(fault_sha "$T/small.card")
F_TARGET=$T/small.card F_SHA=$SMALL fault "card too small, size known (raw)" 2 "larger than the card \(16.0 MiB > 4.0 MiB\)" $RIGOR flash "$T/os.img" --target "$T/small.card" --force --no-bmap
F_TARGET=$T/small.card F_SHA=$SMALL fault "card too small, size known (bmap)" 2 "larger than the card \([0-9.]+ MiB > 4.0 MiB\)" $RIGOR flash "$T/os.img.xz" --target "$T/small.card" --force
F_TARGET=$T/small.card F_SHA=invalid fault "card too small, found while writing (xz)" 2 "larger than the card \(it goes on past 4.0 MiB\).*invalidated" $RIGOR flash "$T/os.img.xz" --target "$T/small.card" --force --no-bmap
[ "$(stat -c %s "$T/small.card")" = 4194304 ] && ok "a file card never grows" || nok "a file card never grows"
cp "$T/old.card" "$T/ro.card"
if chattr +i "$T/ro.card" 2>/dev/null; then
	F_TARGET=$T/ro.card F_SHA=$OLD fault "read-only (immutable) file target" 2 "read-only" $RIGOR flash "$T/os.img.xz" --target "$T/ro.card" --force
	chattr -i "$T/ro.card"
else
	F_TARGET=/sys/kernel/notes F_SHA=$(fault_sha /sys/kernel/notes) fault "read-only file target" 2 "read-only" $RIGOR flash "$T/os.img.xz" --target /sys/kernel/notes --force
fi
fault "a directory as the target" 2 "is a directory" $RIGOR flash "$T/os.img.xz" --target "$T/dir" --force
fault "/dev/null as the target" 2 "character device" $RIGOR flash "$T/os.img.xz" --target /dev/null --force
card
F_TARGET=$CARD F_SHA=$OLD fault "image and target are the same file" 2 "same file" $RIGOR flash "$CARD" --target "$CARD" --force
card
F_TARGET=$CARD F_SHA=absent fault "file target unlinked mid-flash" 3 "was removed while it was being flashed" \
	$D "$CARD" 'rm -f "$card"' $RIGOR flash "$T/big.img.xz" --target "$CARD" --force

# --- signals during a flash -------------------------------------------------------------------
card
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=invalid fault "SIGINT mid-flash" 130 "cancelled at offset.*invalidated" $D "$CARD" 'kill -INT $p' $R flash "$T/big.img.xz"
card
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=invalid fault "SIGTERM mid-flash" 143 "cancelled at offset.*invalidated" $D "$CARD" 'kill -TERM $p' $R flash "$T/big.img.xz"
card
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=invalid fault "SIGHUP mid-flash" 129 "cancelled at offset.*invalidated" $D "$CARD" 'kill -HUP $p' $R flash "$T/big.img.xz"
card
F_TARGET=$CARD F_SHA=invalid fault "SIGINT mid-flash with --target" 130 "cancelled at offset.*invalidated" $D "$CARD" 'kill -INT $p' $RIGOR flash "$T/big.img.xz" --target "$CARD" --force

# --- what the rig remembers -------------------------------------------------------------------
card
$R flash "$T/trunc.os.img.xz" >/dev/null 2>&1
F_RIG=$T/rig.lua fault "storage status names the failed flash" 0 "^card: invalidated: flashing '.*trunc.os.img.xz' failed .*truncated" $R storage status
F_RIG=$T/rig.lua fault "storage status --json names it too" 0 '"card":"invalidated".*"error":"truncated' $R storage status --json
$R flash "$T/notes.txt" >/dev/null 2>&1
F_RIG=$T/rig.lua fault "a refusal before writing leaves the record alone" 0 "^card: invalidated" $R storage status
cat >"$T/f.lua" <<'EOF'
local st, msg, code = rig:flash(arg[1])
assert(st == nil and code == "RIG_E_INVAL", tostring(code))
assert(msg:find("is empty"), msg)
st, msg, code = rig:flash(arg[2])
assert(st == nil and code == "RIG_E_CORRUPT" and msg:find("invalidated"), tostring(code) .. ": " .. tostring(msg))
st, msg, code = rig:flash(arg[3])
assert(st == nil and code == "RIG_E_NOSPC" and msg:find("larger than the card"), tostring(code) .. ": " .. tostring(msg))
st, msg, code = rig:flash(arg[4])
assert(st == nil and code == "RIG_E_NOENT", tostring(code) .. ": " .. tostring(msg))
print("lua-nil-msg-code")
EOF
card
truncate -s 160M "$T/toolarge.img"
printf '\125\252' | dd of="$T/toolarge.img" bs=1 seek=510 conv=notrunc 2>/dev/null   # an MBR signature
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=invalid fault "rig:flash returns nil, msg, code for bad input: RIG_E_INVAL (empty), RIG_E_CORRUPT (corrupt zstd), RIG_E_NOSPC (larger than the card), RIG_E_NOENT (missing)" 0 "lua-nil-msg-code" $R lua "$T/f.lua" "$T/empty.img" "$T/bad.os.img.zst" "$T/toolarge.img" "$T/nope.img"

# --- two flashes on one rig -------------------------------------------------------------------
card
cp --sparse=always "$T/old.card" "$T/expect.card"
dd if="$T/big.img" of="$T/expect.card" conv=notrunc status=none
EXPECT=$(fault_sha "$T/expect.card")
rm -f "$T/expect.card"
( $R flash "$T/big.img.xz" >"$T/first.out" 2>"$T/first.err"; echo $? >"$T/first.rc" ) &
i=0
first=$(head -c 4096 "$CARD" | sha256sum)
while [ $i -lt 3000 ] && [ ! -f "$T/first.rc" ] &&
      [ "$(head -c 4096 "$CARD" | sha256sum)" = "$first" ]; do sleep 0.02; i=$((i + 1)); done
fault "a second flash on a busy rig is refused" 3 "busy|locked|held" $R flash "$T/os.img.xz"
cat >"$T/first.sh" <<EOS
while [ ! -f "$T/first.rc" ]; do sleep 0.1; done
cat "$T/first.out"; cat "$T/first.err" >&2
exit \$(cat "$T/first.rc")
EOS
F_RIG=$T/rig.lua F_TARGET=$CARD F_SHA=$EXPECT fault "the first flash succeeds" 0 "^flashed " sh "$T/first.sh"
F_RIG=$T/rig.lua fault "a successful flash clears the record" 0 "^card: flashed with '.*big.img.xz'" $R storage status

fault_done
tap_done
