#!/bin/sh
# SPDX-License-Identifier: MIT
# End-to-end tests of the flash engine through rigor-flash-tool. Prints TAP.
# Needs: mtools e2fsprogs dosfstools fdisk xz-utils zstd bzip2 gzip zip bmap-tools python3.
set -u
BUILD=${BUILD:-build}
TOOL=${FLASH_TOOL:-$BUILD/rigor-flash-tool}
case $TOOL in /*) ;; *) TOOL=$PWD/$TOOL ;; esac
RIGOR=${RIGOR:-$BUILD/rigor}
case $RIGOR in /*) ;; *) RIGOR=$PWD/$RIGOR ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
MKIMAGE=$HERE/../../../scripts/bench-flash-mkimage
W=$PWD/$BUILD/tmp/flash-test.$$
export PATH="$PATH:/sbin:/usr/sbin"
export MTOOLS_SKIP_CHECK=1
mkdir -p "$W"
trap 'umount "$W/mnt" 2>/dev/null; loops_free; chattr -i "$W/ro.out" 2>/dev/null; rm -rf "$W"' EXIT
cd "$W" || exit 1

. "$HERE/tap-flash.sh"
# expect_fail NAME PATTERN -- cmd...: command must fail and stderr must match PATTERN
expect_fail() {
	name=$1 pat=$2
	shift 3
	if "$@" >out.txt 2>err; then
		nok "$name (unexpectedly succeeded)"
	elif grep -q -- "$pat" err; then
		ok "$name"
	else
		nok "$name (message lacks '$pat')"
	fi
}

# --- fixtures ----------------------------------------------------------------------------
mkdir src && cp "$HERE"/*.c src/ 2>/dev/null
"$MKIMAGE" 12 img.img "$W/src" >mk.log 2>&1 || { echo "1..1"; echo "not ok 1 - mkimage"; cat mk.log; exit 1; }
SIZE=$(stat -c %s img.img)
MIB=$(awk "BEGIN { printf \"%.1f\", $SIZE / 1048576 }")
bmaptool create img.img >img.img.bmap 2>/dev/null
gzip -k -n img.img
xz -k -T1 img.img
xz -T2 --block-size=1MiB -c img.img >multi.img.xz
zstd -q -k img.img
bzip2 -k img.img
zip -q -X img.zip img.img
for f in img.img.gz img.img.xz multi.img.xz img.img.zst img.img.bz2 img.zip; do
	cp "$f" "trunc.$f"
	truncate -s $(( $(stat -c %s "$f") / 2 )) "trunc.$f"
	cp "$f" "bad.$f"
	# Flip one byte in the middle of the compressed data.
	python3 -c "
import sys
p=sys.argv[1]; b=bytearray(open(p,'rb').read()); i=len(b)//2; b[i]^=0x55; open(p,'wb').write(b)" "bad.$f"
done

# --- formats -----------------------------------------------------------------------------
for f in img.img img.img.gz img.img.xz multi.img.xz img.img.zst img.img.bz2 img.zip; do
	rm -f t.out
	if "$TOOL" flash "$f" t.out --no-bmap --json >j 2>err && cmp -s t.out img.img; then
		ok "flash $f without bmap is bit-identical"
	else
		nok "flash $f without bmap is bit-identical"
	fi
	rm -f t.out
	if "$TOOL" flash "$f" t.out --bmap img.img.bmap --json >j 2>err && cmp -s t.out img.img &&
	   [ "$(json bmap j)" = true ]; then
		ok "flash $f with bmap is bit-identical"
	else
		nok "flash $f with bmap is bit-identical"
	fi
done
for p in "img.img raw" "img.img.gz gzip" "img.img.xz xz" "img.img.zst zstd" "img.img.bz2 bzip2" "img.zip zip"; do
	set -- $p
	cp "$1" noext
	check "detect $2 by magic, not name" "[ \"\$(\"$TOOL\" detect noext)\" = $2 ]"
done
cp img.img.xz image.bin
rm -f t.out
check "flash xz named .bin (magic detection)" "\"$TOOL\" flash image.bin t.out --no-bmap >/dev/null 2>err && cmp -s t.out img.img"
rm -f t.out
"$TOOL" flash img.img.xz t.out --json >j 2>err
check "bmap found next to compressed image" "[ \"\$(json bmap j)\" = true ]"

for f in img.img.gz img.img.xz multi.img.xz img.img.zst img.img.bz2 img.zip; do
	rm -f t.out
	expect_fail "truncated $f is refused" "truncated" -- "$TOOL" flash "trunc.$f" t.out --no-bmap
	rm -f t.out
	expect_fail "corrupted $f is refused" "corrupt" -- "$TOOL" flash "bad.$f" t.out --no-bmap
done
# Multi-block xz with a bmap: only blocks holding mapped bytes are decoded, in parallel.
rm -f t.out
"$TOOL" flash multi.img.xz t.out --bmap img.img.bmap --json >j 2>err
check "multi-block xz with bmap leaves blocks without mapped data undecoded" \
	"[ \"\$(json undecoded j)\" -gt 0 ] && cmp -s t.out img.img"
rm -f t.out
"$TOOL" flash img.img.xz t.out --bmap img.img.bmap --json >j 2>err
check "single-block xz with bmap is decoded whole" "[ \"\$(json undecoded j)\" = 0 ] && cmp -s t.out img.img"
for t in 1 3; do
	rm -f t.out
	check "multi-block xz with bmap and $t decoder thread(s)" \
		"\"$TOOL\" flash multi.img.xz t.out --bmap img.img.bmap --threads $t >/dev/null 2>err && cmp -s t.out img.img"
done
head -c $((SIZE / 2)) img.img | xz -T2 --block-size=1MiB >cat.img.xz
tail -c +$((SIZE / 2 + 1)) img.img | xz -T2 --block-size=1MiB >>cat.img.xz
rm -f t.out
check "two concatenated multi-block xz streams with bmap" \
	"\"$TOOL\" flash cat.img.xz t.out --bmap img.img.bmap >/dev/null 2>err && cmp -s t.out img.img"
# Stream Padding (a multiple of four zero bytes) between and after the streams.
{ head -c $((SIZE / 2)) img.img | xz -T2 --block-size=1MiB; head -c 8 /dev/zero
  tail -c +$((SIZE / 2 + 1)) img.img | xz -T2 --block-size=1MiB; head -c 4 /dev/zero; } >pad.img.xz
rm -f t.out
"$TOOL" flash pad.img.xz t.out --bmap img.img.bmap --json >j 2>err
check "multi-block xz streams with stream padding, with bmap" \
	"[ \"\$(json undecoded j)\" -gt 0 ] && cmp -s t.out img.img"
cp multi.img.xz bad1.multi.xz
# a byte in the data of block 1 (the partition table: always mapped)
python3 -c "
import sys
p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[200]^=0x55; open(p,'wb').write(b)" bad1.multi.xz
rm -f t.out
expect_fail "corrupt mapped block of a multi-block xz with bmap" "corrupt xz stream.*block 1 " -- \
	"$TOOL" flash bad1.multi.xz t.out --bmap img.img.bmap
rm -f t.out
expect_fail "truncated multi-block xz with bmap" "truncated" -- "$TOOL" flash trunc.multi.img.xz t.out --bmap img.img.bmap
rm -f t.out
expect_fail "corrupted multi-block xz with bmap" "corrupt" -- "$TOOL" flash bad.multi.img.xz t.out --bmap img.img.bmap
# Timeout and cancel while the block decoders are busy: neither waits for whole blocks.
# Base64 of random bytes is mostly literals, which LZMA decodes slowly (~30 MB/s).
head -c 36M /dev/urandom | base64 -w 0 | head -c 48M >slow.img
xz -T2 -0 --block-size=16MiB -c slow.img >slow.img.xz
bmaptool create slow.img >slow.img.bmap 2>/dev/null
ms() { echo $(( $(date +%s%N) / 1000000 )); }
rm -f t.out
t0=$(ms)
"$TOOL" flash slow.img.xz t.out --bmap slow.img.bmap --threads 1 --no-verify >/dev/null 2>err
t_full=$(( $(ms) - t0 ))
rm -f t.out
t0=$(ms)
expect_fail "timeout while an xz block is decoded (multi-block xz, bmap)" "timed out after 100 ms" -- \
	"$TOOL" flash slow.img.xz t.out --bmap slow.img.bmap --threads 1 --no-verify --timeout 100
t_to=$(( $(ms) - t0 ))
check "the timeout does not wait for the block decoders (${t_to} ms, whole flash ${t_full} ms)" \
	"[ $((t_to * 3)) -lt $t_full ]"
rm -f t.out
"$TOOL" flash slow.img.xz t.out --bmap slow.img.bmap --threads 1 --no-verify >out.txt 2>err &
pid=$!
sleep 0.5
t0=$(ms)
kill -INT $pid
wait $pid
rc=$?
t_int=$(( $(ms) - t0 ))
check "SIGINT mid-flash of a multi-block xz with bmap stops promptly (${t_int} ms, whole flash ${t_full} ms)" \
	"[ $rc = 130 ] && grep -q 'cancelled at offset' err && [ $((t_int * 4)) -lt $t_full ]"
rm -f t.out slow.img slow.img.xz slow.img.bmap
# gzip: multi-member streams and trailer checks (the CRC is computed off the decoder thread).
head -c $((SIZE / 3)) img.img | gzip -n >multi.img.gz
tail -c +$((SIZE / 3 + 1)) img.img | gzip -n >>multi.img.gz
rm -f t.out
check "gzip with two members" "\"$TOOL\" flash multi.img.gz t.out --no-bmap >/dev/null 2>err && cmp -s t.out img.img"
head -c $((SIZE / 2)) img.img | bzip2 >multi.img.bz2
tail -c +$((SIZE / 2 + 1)) img.img | bzip2 >>multi.img.bz2
rm -f t.out
check "bzip2 with two streams" "\"$TOOL\" flash multi.img.bz2 t.out --no-bmap >/dev/null 2>err && cmp -s t.out img.img"
for k in 8 4; do
	cp multi.img.gz trailer$k.gz
	python3 -c "
import sys
p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)-int(sys.argv[2])]^=1; open(p,'wb').write(b)" trailer$k.gz $k
done
rm -f t.out
expect_fail "gzip CRC-32 mismatch" "CRC-32" -- "$TOOL" flash trailer8.gz t.out --no-bmap
rm -f t.out
expect_fail "gzip length mismatch" "length" -- "$TOOL" flash trailer4.gz t.out --no-bmap
head -c $((SIZE / 2)) img.img >half.img
expect_fail "truncated raw image with bmap" "truncated image" -- "$TOOL" flash half.img t.out --bmap img.img.bmap

# --- zip content rules ---------------------------------------------------------------------
echo readme >README.txt
zip -q -X none.zip README.txt
expect_fail "zip without image" "holds no image" -- "$TOOL" flash none.zip t.out
cp img.img other.img
zip -q -X two.zip img.img other.img
expect_fail "zip with two images" "candidate images" -- "$TOOL" flash two.zip t.out
zip -q -X side.zip img.img README.txt img.img.bmap
rm -f t.out
check "zip with image and sidecars" "\"$TOOL\" flash side.zip t.out --no-bmap >/dev/null 2>err && cmp -s t.out img.img"

zip -q -X -0 stored.zip img.img
rm -f t.out
check "zip with a stored (uncompressed) image" "\"$TOOL\" flash stored.zip t.out --no-bmap >/dev/null 2>err && cmp -s t.out img.img"
cp stored.zip badstored.zip
python3 -c "
import sys
p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)" badstored.zip
rm -f t.out
expect_fail "stored zip entry with a flipped byte" "CRC-32 mismatch" -- "$TOOL" flash badstored.zip t.out --no-bmap

# --- bmap ----------------------------------------------------------------------------------
echo "not xml" >broken.bmap
expect_fail "malformed bmap" "bmap" -- "$TOOL" flash img.img t.out --bmap broken.bmap
cp img.img flipped.img
off=$(sed -n 's/.*<Range[^>]*> *\([0-9]*\).*/\1/p' img.img.bmap | sed -n 3p)
printf 'X' | dd of=flipped.img bs=1 seek=$((off * 4096 + 7)) conv=notrunc status=none
expect_fail "image not matching bmap checksum" "checksum mismatch for blocks" -- "$TOOL" flash flipped.img t.out --bmap img.img.bmap
sed 's/chksum="\(.\)/chksum="0\1/' img.img.bmap | sed 's/chksum="0\(.\)\(.\)/chksum="\2\1/' >tampered.bmap
expect_fail "tampered bmap fails its own checksum" "bmap" -- "$TOOL" flash img.img t.out --bmap tampered.bmap
# bmaptool 1.4 format (SHA-1), converted from the 2.0 file.
python3 - img.img img.img.bmap v14.bmap <<'EOF'
import hashlib, re, sys
img, src, dst = sys.argv[1:4]
data = open(img, 'rb').read()
t = open(src).read()
bs = int(re.search(r'<BlockSize>\s*(\d+)', t).group(1))
def rng(m):
    a, _, b = m.group(2).strip().partition('-'); b = b or a
    h = hashlib.sha1(data[int(a) * bs:(int(b) + 1) * bs]).hexdigest()
    return '<Range sha1="%s"> %s </Range>' % (h, m.group(2).strip())
t = re.sub(r'<Range chksum="([0-9a-f]+)">([^<]*)</Range>', rng, t)
t = re.sub(r'<ChecksumType>[^<]*</ChecksumType>\s*', '', t)
t = t.replace('version="2.0"', 'version="1.4"')
t = re.sub(r'<BmapFileChecksum>[^<]*</BmapFileChecksum>', '<BmapFileSHA1> ' + '0' * 40 + ' </BmapFileSHA1>', t)
h = hashlib.sha1(t.encode()).hexdigest()
open(dst, 'w').write(t.replace('0' * 40, h))
EOF
rm -f t.out
check "bmap 1.4 (SHA-1) flashes" "\"$TOOL\" flash img.img t.out --bmap v14.bmap --json >j 2>err && cmp -s t.out img.img && [ \"\$(json bmap j)\" = true ]"

rm -f t.out
"$TOOL" flash img.img.xz t.out --progress >out.txt 2>prog.txt
check "progress lines name phases and sizes" "grep -q 'write .*MiB' prog.txt && grep -q 'verify' prog.txt && grep -q '^done' prog.txt || tr '\\r' '\\n' <prog.txt | grep -q '^done'"
# An xz image says its decoded size only in its index: every report has a total (or none
# at all), never "64.0/0.0 MiB".
tr '\r' '\n' <prog.txt >prog.lines
check "xz progress: the write phase has the index's total and a percentage, never a 0.0 total" \
	"grep -q '^write .*/$MIB MiB .*%' prog.lines && ! grep -q '/0\\.0 MiB' prog.lines"

# rigor flash with stderr not a terminal: plain lines, each phase's last report among them.
# The write phase of xz has a total with and without a bmap (index or bmap image size);
# gzip and bzip2 do not tell theirs, so the image file read so far measures the flash.
for a in "img.img.xz --no-bmap" "multi.img.xz --no-bmap" "img.img.xz --bmap img.img.bmap" \
	 "multi.img.xz --bmap img.img.bmap"; do
	set -- $a
	rm -f t.out
	"$RIGOR" flash "$@" --target t.out --force --create >out.txt 2>prog.txt
	check "rigor flash $*: plain write line with total and percentage, never a 0.0 total" \
		"grep -q '^rigor: flash: write  *$MIB/$MIB MiB 100%' prog.txt && ! grep -q '/0\\.0 MiB' prog.txt && cmp -s t.out img.img"
done
for f in img.img.gz img.img.bz2; do
	rm -f t.out
	"$RIGOR" flash $f --no-bmap --target t.out --force --create >out.txt 2>prog.txt
	check "rigor flash $f: progress through the image file, never a 0.0 total" \
		"grep -q '^rigor: flash: write  *$MIB MiB (image file [0-9.]*/[0-9.]* MiB read) 100%' prog.txt && ! grep -q '/0\\.0 MiB' prog.txt"
done

# --- delta and verify --------------------------------------------------------------------
head -c "$SIZE" /dev/urandom >t.out
"$TOOL" flash img.img.zst t.out --no-bmap --json >j 2>err
check "delta: garbage target ends bit-identical" "cmp -s t.out img.img"
"$TOOL" flash img.img.zst t.out --no-bmap --json >j 2>err
check "delta: re-flash writes nothing" "[ \"\$(json written j)\" = 0 ] && [ \"\$(json skipped j)\" = $SIZE ]"
cp img.img variant.img
printf 'CHANGED!' | dd of=variant.img bs=1 seek=$((5 * 1048576 + 10)) conv=notrunc status=none
printf 'CHANGED!' | dd of=variant.img bs=1 seek=$((9 * 1048576 + 4000)) conv=notrunc status=none
"$TOOL" flash variant.img t.out --no-bmap --json >j 2>err
check "delta: two changed blocks -> 8192 bytes written" "[ \"\$(json written j)\" = 8192 ] && cmp -s t.out variant.img"
"$TOOL" flash img.img t.out --no-bmap --full --json >j 2>err
check "full: every block written" "[ \"\$(json written j)\" = $SIZE ] && cmp -s t.out img.img"
expect_fail "verify catches corruption between write and read-back" "differs from the image in the 4096-byte block at offset 1048576" -- "$TOOL" flash img.img t.out --no-bmap --full --fault-corrupt 1048677
"$TOOL" flash img.img t.out --no-bmap --no-verify --json >j 2>err
check "no-verify skips read-back" "[ \"\$(json verified j)\" = 0 ]"
# a target that holds something else: after 32 MiB where nothing matched, 128 MiB go blind
# (written without the compare read), then a probe; matching data resets it
head -c $((48 << 20)) /dev/urandom >big.img
head -c $((48 << 20)) /dev/urandom >big.out
"$TOOL" flash big.img big.out --no-bmap --json >j 2>err
check "delta: a target of other data goes blind after 32 MiB, and ends bit-identical" \
	"[ \"\$(json blind j)\" = $((16 << 20)) ] && [ \"\$(json written j)\" = $((48 << 20)) ] && cmp -s big.out big.img"
"$TOOL" flash big.img big.out --no-bmap --json >j 2>err
check "delta: a re-flash over matching data never goes blind" "[ \"\$(json blind j)\" = 0 ] && [ \"\$(json written j)\" = 0 ]"
rm -f big.img big.out

# --- failures while writing -----------------------------------------------------------------
rm -f t.out
expect_fail "target vanishing (ENODEV) names the offset" "vanished: write failed at offset 2097152" -- "$TOOL" flash img.img t.out --no-bmap --full --fault-write 2097152:19
rm -f t.out
expect_fail "EIO while writing names the offset" "write failed at offset 3145728" -- "$TOOL" flash img.img t.out --no-bmap --full --fault-write 3145728:5
rm -f t.out
"$TOOL" flash img.img t.out --no-bmap --full --fault-delay 400 >out.txt 2>err &
pid=$!
sleep 0.6
kill -INT $pid
wait $pid
rc=$?
check "SIGINT stops the flash with status 130" "[ $rc = 130 ] && grep -q 'cancelled at offset' err"
rm -f t.out
expect_fail "timeout" "timed out" -- "$TOOL" flash img.img t.out --no-bmap --fault-delay 100 --timeout 150

# --- not images: refused before the target is touched ----------------------------------------
head -c "$SIZE" /dev/urandom >card.out
CARD_SHA=$(sha256sum card.out | cut -d' ' -f1)
unchanged() { [ "$(sha256sum card.out | cut -d' ' -f1)" = "$CARD_SHA" ]; }
: >empty.img
gzip -n -c empty.img >empty.gz
head -c 6000 "$HERE/test-flash.sh" >notes.txt
head -c 6144 "$HERE/test-flash.sh" >notes6k.txt
gzip -n -c notes6k.txt >notes.gz
python3 -c "import zipfile; zipfile.ZipFile('noentry.zip','w').close()"
{ printf 'QFI\373\0\0\0\3'; head -c 4088 /dev/zero; } >disk.qcow2
mkfifo fifo
for c in "empty.img:is empty: it holds no image" "empty.gz:is empty: its gzip stream holds no image" \
	 "notes.txt:not a whole number of 512-byte sectors" "notes6k.txt:looks like a text file" \
	 "notes.gz:looks like a text file (inside its gzip stream)" "noentry.zip:holds no image" \
	 "disk.qcow2:qemu-img convert" "/dev/zero:is a character device" "fifo:is a FIFO" \
	 "adir-missing/x.img:does not exist"; do
	f=${c%%:*} pat=${c#*:}
	expect_fail "not an image: $f" "$pat" -- timeout 20 "$TOOL" flash "$f" card.out
	check "not an image: $f leaves the target unchanged" unchanged
done
expect_fail "image and target are the same file" "same file" -- "$TOOL" flash card.out card.out
check "same file: unchanged" unchanged

# --- file targets are cards of fixed size; new files only on request, never in /dev ------------
truncate -s 4M small.out
expect_fail "file card smaller than the image (size known)" "larger than the card (12.0 MiB > 4.0 MiB)" -- \
	"$TOOL" flash img.img small.out --no-bmap --no-create
check "the small card was not grown" "[ \$(stat -c %s small.out) = 4194304 ]"
expect_fail "file card smaller than the image (found while writing)" "larger than the card (it goes on past 4.0 MiB)" -- \
	"$TOOL" flash img.img.xz small.out --no-bmap --no-create
check "the small card was not grown, and was invalidated" \
	"[ \$(stat -c %s small.out) = 4194304 ] && grep -q 'invalidated' err && cmp -s -n 1048576 small.out /dev/zero"
expect_fail "no file is created under /dev" "no such device" -- "$TOOL" flash img.img /dev/rigor-test-no-card
check "nothing appeared under /dev" "[ ! -e /dev/rigor-test-no-card ]"

# --- after a write began, a failure leaves a card that cannot boot --------------------------
cp img.img card.out
# random data at the end, so a stream cut in half fails after the first chunks were written
{ head -c 8M img.img; head -c 4M /dev/urandom; } | xz -T1 >late.img.xz
head -c $(( $(stat -c %s late.img.xz) / 2 )) late.img.xz >trunc.late.img.xz
expect_fail "truncated stream after writing: the card is invalidated" "truncated.*the card was invalidated (first and last MiB erased) so it cannot boot" -- \
	"$TOOL" flash trunc.late.img.xz card.out --no-bmap --full
check "first and last MiB are zeros" "cmp -s -n 1048576 card.out /dev/zero && tail -c 1048576 card.out | cmp -s -n 1048576 - /dev/zero"
cp img.img card.out
expect_fail "ENOSPC while writing (file system full) invalidates" "no space left.*invalidated" -- \
	"$TOOL" flash img.img card.out --no-bmap --full --fault-write 5242880:28
check "ENOSPC: first MiB zeros" "cmp -s -n 1048576 card.out /dev/zero"
rm -f new.out
expect_fail "a file created for the flash is removed when it fails" "the new file 'new.out' was removed" -- \
	"$TOOL" flash bad.img.img.xz new.out --no-bmap
check "no half-written new file left" "[ ! -e new.out ]"
cp img.img card.out
CARD_SHA=$(sha256sum card.out | cut -d' ' -f1)
expect_fail "a failure before writing leaves the card as it was" "corrupt" -- "$TOOL" flash bad1.multi.xz card.out --bmap img.img.bmap --no-verify
check "card byte-for-byte unchanged" "unchanged || ! grep -q invalidated err"
# a file target replaced mid-flash: the image went to an inode the path no longer names
cp img.img card.out
"$TOOL" flash img.img card.out --no-bmap --full --fault-delay 300 >out.txt 2>err &
pid=$!
sleep 0.5
cp img.img card.new && mv card.new card.out
wait $pid
rc=$?
check "file target replaced mid-flash fails (no success)" "[ $rc != 0 ] && grep -q 'was replaced while it was being flashed' err && ! grep -q '^flashed' out.txt"

# --- refusals ------------------------------------------------------------------------------
mkdir adir
expect_fail "directory target" "is a directory, neither a block device" -- "$TOOL" flash img.img adir
cp img.img ro.out && chmod 444 ro.out
if [ "$(id -u)" != 0 ]; then
	expect_fail "read-only target" "read-only" -- "$TOOL" flash img.img ro.out
elif chattr +i ro.out 2>/dev/null; then
	expect_fail "read-only (immutable) target" "read-only" -- "$TOOL" flash img.img ro.out
	chattr -i ro.out
else
	expect_fail "read-only target (sysfs)" "read-only" -- "$TOOL" flash img.img /sys/kernel/notes
fi
rootdev=$(findmnt -n -o SOURCE / 2>/dev/null)
if [ -b "$rootdev" ]; then
	expect_fail "disk holding / is refused" "refusing" -- "$TOOL" flash img.img "$rootdev" --force
else
	skip "disk holding / is refused" "root is not on a block device"
fi
spare=
if command -v lsblk >/dev/null; then
	# An unmounted, non-removable, zero-sized disk (e.g. an unconfigured zram) is safe to try.
	spare=$(lsblk -dbnro NAME,SIZE,RM,MOUNTPOINT 2>/dev/null | awk '$2 == 0 && $3 == 0 && $4 == "" {print "/dev/" $1; exit}')
fi
if [ -n "$spare" ] && [ -b "$spare" ]; then
	expect_fail "non-removable disk is refused" "not a removable" -- "$TOOL" flash img.img "$spare"
	expect_fail "target smaller than image is refused" "too small" -- "$TOOL" flash img.img "$spare" --force
else
	skip "non-removable disk is refused" "no zero-sized spare disk"
	skip "target smaller than image is refused" "no zero-sized spare disk"
fi

# --- block devices (loop devices; root only) ---------------------------------------------
loop_new() { # loop_new [losetup options] FILE: prints the device, remembers it for cleanup
	d=$(losetup -f --show "$@" 2>/dev/null) || return 1
	echo "$d" >>"$W/loops"
	echo "$d"
}
loops_free() {
	[ -f "$W/loops" ] && while read -r d; do losetup -d "$d" 2>/dev/null; done <"$W/loops"
	rm -f "$W/loops"
}
if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null && truncate -s 16M loop.img &&
   L=$(loop_new loop.img); then
	expect_fail "loop device (not removable) needs force" "not a removable" -- "$TOOL" flash img.img.xz "$L"
	"$TOOL" flash img.img.xz "$L" --force --no-bmap --json >j 2>err
	check "block device: O_DIRECT flash is bit-identical" "[ \"\$(json direct j)\" = true ] && cmp -s -n $SIZE \"$L\" img.img"
	"$TOOL" flash img.img.gz "$L" --force --no-bmap --json >j 2>err
	check "block device: re-flash writes nothing, verifies all" "[ \"\$(json written j)\" = 0 ] && [ \"\$(json verified j)\" = $SIZE ]"
	"$TOOL" flash variant.img "$L" --force --no-bmap --json >j 2>err
	check "block device: delta writes the two changed blocks" "[ \"\$(json written j)\" = 8192 ] && cmp -s -n $SIZE \"$L\" variant.img"
	"$TOOL" cat "$L" resin-boot /config.json >c 2>err
	check "block device: read config.json after flashing" "grep -q applicationId c"
	expect_fail "block device: verify catches corruption" "block at offset 2097152" -- "$TOOL" flash img.img "$L" --force --no-bmap --full --fault-corrupt 2097153
	check "block device: a failed flash leaves the first and last MiB zeroed" \
		"grep -q 'the card was invalidated' err && cmp -s -n 1048576 \"$L\" /dev/zero && tail -c 1048576 \"$L\" | cmp -s -n 1048576 - /dev/zero"
	truncate -s 4M small.img
	if S=$(loop_new small.img); then
		expect_fail "block device smaller than the image" "too small" -- "$TOOL" flash img.img.xz "$S" --force
	else
		skip "block device smaller than the image" "no loop device"
	fi
	if R=$(loop_new -r loop.img); then
		expect_fail "read-only block device" "read-only" -- "$TOOL" flash img.img.xz "$R" --force
	else
		skip "read-only block device" "no read-only loop device"
	fi
	truncate -s 8M fat.img && mkfs.vfat fat.img >/dev/null 2>&1
	mkdir -p mnt
	if M=$(loop_new fat.img) && mount "$M" mnt 2>/dev/null; then
		expect_fail "mounted block device" "is mounted on" -- "$TOOL" flash img.img.xz "$M" --force
		umount mnt
	else
		skip "mounted block device" "cannot mount here"
	fi
else
	for t in "loop device (not removable) needs force" "block device: O_DIRECT flash" \
		 "block device: re-flash" "block device: delta" "block device: verify" \
		 "block device: read config.json" "block device smaller than the image" \
		 "read-only block device" "mounted block device"; do
		skip "$t" "needs root and loop devices"
	done
fi
loops_free

# --- partitions and files ------------------------------------------------------------------
"$TOOL" part list img.img >pl 2>err
check "part list: MBR with three labelled partitions" "grep -q '^1 .*fs=fat label=RESIN-BOOT' pl && grep -q '^2 .*label=resin-rootA' pl && grep -q '^3 .*label=resin-state' pl"
truncate -s 4M gpt.img
printf 'label: gpt\nstart=1MiB, size=1MiB, name="resin-boot"\nsize=1MiB, name=resin-rootA\n' | sfdisk -q gpt.img >/dev/null 2>&1
"$TOOL" part list gpt.img >pl 2>err
check "part list: GPT names" "grep -q '^1 .*name=resin-boot' pl && grep -q '^2 .*name=resin-rootA' pl && grep -q '^scheme gpt' pl"
head -c 1M /dev/zero >nopt.img
expect_fail "no partition table" "no partition table" -- "$TOOL" part list nopt.img
cp gpt.img badgpt.img
printf 'XX' | dd of=badgpt.img bs=1 seek=$((512 + 40)) conv=notrunc status=none
"$TOOL" part list badgpt.img >pl 2>err
check "corrupt primary GPT header: read from the backup header, as the kernel does" "grep -q '^2 .*name=resin-rootA' pl"
printf 'XX' | dd of=badgpt.img bs=1 seek=$((4 * 1024 * 1024 - 512 + 40)) conv=notrunc status=none
expect_fail "both GPT headers corrupt" "protective MBR but no valid GPT" -- "$TOOL" part list badgpt.img
"$TOOL" cat img.img resin-boot /config.json >c 2>err
check "cat config.json from FAT by label" "grep -q applicationId c"
"$TOOL" cat img.img resin-rootA /etc/os-release >c 2>err
check "cat os-release from ext4 by label" "grep -q balenaOS c"
"$TOOL" cat img.img 2 /etc/os-release >c 2>err
check "cat from partition by index" "grep -q balenaOS c"
expect_fail "cat missing file" "not found" -- "$TOOL" cat img.img resin-boot /nope.txt
expect_fail "cat from missing partition" "no partition" -- "$TOOL" cat img.img resin-nope /x
"$TOOL" ls img.img resin-boot >ls 2>err
check "ls lists the FAT partition from its root, one path a line" \
	"grep -qx /config.json ls && ! grep -q '^::' ls && ! grep -qi '/nope.txt' ls"
expect_fail "ls of an ext4 partition" "not FAT" -- "$TOOL" ls img.img resin-rootA
expect_fail "ls of a missing partition" "no partition" -- "$TOOL" ls img.img resin-nope
echo '{"applicationId":42}' >new.json
"$TOOL" put img.img resin-boot new.json /config.json 2>err && "$TOOL" cat img.img resin-boot /config.json >c 2>>err
check "put replaces config.json" "cmp -s c new.json"
echo 'dtoverlay=rig' >line.txt
"$TOOL" put img.img resin-boot line.txt /config.txt --append 2>err && "$TOOL" cat img.img resin-boot /config.txt >c 2>>err
check "put --append adds to config.txt" "grep -q enable_uart c && tail -n1 c | grep -q dtoverlay=rig"
"$TOOL" put img.img resin-boot line.txt /sub/dir/x.txt 2>err && "$TOOL" cat img.img 1 /sub/dir/x.txt >c 2>>err
check "put creates parent directories" "cmp -s c line.txt"
expect_fail "put into ext4 is refused" "not FAT" -- "$TOOL" put img.img resin-rootA line.txt /x
rm -f t.out
echo '{"applicationId":7}' >inj.json
"$TOOL" flash img.img.xz t.out --inject resin-boot:inj.json:/config.json --append 1:line.txt:/config.txt >out.txt 2>err &&
	"$TOOL" cat t.out resin-boot /config.json >c 2>>err && "$TOOL" cat t.out 1 /config.txt >c2 2>>err
check "flash with inject + append" "cmp -s c inj.json && tail -n1 c2 | grep -q dtoverlay=rig"

echo "1..$n"
[ "$fails" = 0 ]
