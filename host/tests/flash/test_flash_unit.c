/* SPDX-License-Identifier: MIT */
/* Unit tests of the flash engine: bmap and partition parsers, library-level cancel/faults. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <lzma.h>
#include <zlib.h>

#include "../../src/flash/flash_internal.h"

static char tmpdir[512];

static void path_in_tmp(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* ---- progress lines ---- */

/* Whatever total is known gives a percentage and an ETA; an unknown one is never "0.0". */
static void test_progress_format(void **state)
{
	struct rig_flash_progress p;
	char line[256];

	(void)state;
	memset(&p, 0, sizeof(p));
	p.phase = RIG_FLASH_PHASE_WRITE;
	p.done = 64u << 20;
	p.total = 256u << 20;
	p.elapsed = 2;
	p.rate = (double)p.done / p.elapsed;
	rig_flash_progress_format(&p, line, sizeof(line));
	assert_non_null(strstr(line, "64.0/256.0 MiB  25%"));
	assert_non_null(strstr(line, "eta 6s"));
	assert_true(rig_flash_progress_fraction(&p) == 0.25);

	/* xz or gzip without a decoded size: the image file read so far is the measure */
	p.total = 0;
	p.in_done = 10u << 20;
	p.in_total = 40u << 20;
	rig_flash_progress_format(&p, line, sizeof(line));
	assert_null(strstr(line, "/0.0"));
	assert_non_null(strstr(line, "64.0 MiB (image file 10.0/40.0 MiB read)  25%"));
	assert_non_null(strstr(line, "eta 6s"));
	assert_true(rig_flash_progress_fraction(&p) == 0.25);

	/* nothing to measure against: no total, no percentage, no ETA */
	p.in_done = p.in_total = 0;
	rig_flash_progress_format(&p, line, sizeof(line));
	assert_null(strstr(line, "/0.0"));
	assert_null(strstr(line, "%"));
	assert_null(strstr(line, "eta"));
	assert_true(rig_flash_progress_fraction(&p) < 0);
	p.phase = RIG_FLASH_PHASE_SYNC;
	p.done = 0;
	rig_flash_progress_format(&p, line, sizeof(line));
	assert_int_equal(strncmp(line, "sync ", 5), 0);
	assert_non_null(strstr(line, "MB/s"));
	*strstr(line, "MB/s") = 0;
	assert_null(strstr(line, "MiB")); /* no size before the rate */
}

/* ---- format detection ---- */

static void test_magic(void **state)
{
	static const struct {
		const char *b;
		size_t n;
		enum rig_flash_format f;
	} cases[] = {
		{ "\x1f\x8b\x08", 3, RIG_FLASH_FMT_GZIP },
		{ "\xfd" "7zXZ\0", 6, RIG_FLASH_FMT_XZ },
		{ "\x28\xb5\x2f\xfd", 4, RIG_FLASH_FMT_ZSTD },
		{ "BZh9", 4, RIG_FLASH_FMT_BZIP2 },
		{ "BZh0", 4, RIG_FLASH_FMT_RAW },
		{ "PK\x03\x04", 4, RIG_FLASH_FMT_ZIP },
		{ "PK\x05\x06", 4, RIG_FLASH_FMT_ZIP },
		{ "\xfd" "7zX", 4, RIG_FLASH_FMT_RAW },
		{ "", 0, RIG_FLASH_FMT_RAW },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum rig_flash_format f;

		fl_detect_magic((const unsigned char *)cases[i].b, cases[i].n, &f);
		assert_int_equal(f, cases[i].f);
	}
	assert_string_equal(rig_flash_format_name(RIG_FLASH_FMT_ZSTD), "zstd");
}

static void test_opts_defaults(void **state)
{
	struct rig_flash_opts o;

	(void)state;
	memset(&o, 0x5a, sizeof(o));
	rig_flash_opts_init(&o);
	assert_true(o.verify);
	assert_false(o.full);
	assert_false(o.force);
	assert_null(o.bmap);
	assert_int_equal(o.timeout_ms, -1);
	assert_int_equal(o.fault.write_offset, -1);
	assert_int_equal(o.fault.corrupt_offset, -1);
}

/* ---- bmap ---- */

#define BMAP2_HEAD "<?xml version=\"1.0\" ?>\n<bmap version=\"2.0\">\n" \
	"<ImageSize> 40960 </ImageSize>\n<BlockSize> 4096 </BlockSize>\n" \
	"<BlocksCount> 10 </BlocksCount>\n"
#define ZERO64 "0000000000000000000000000000000000000000000000000000000000000000"

static int parse(const char *text, struct fl_bmap *bm, char *msg, size_t len)
{
	struct fl_err e;

	fl_err_init(&e, msg, len);
	return fl_bmap_parse(text, strlen(text), "t.bmap", bm, &e);
}

static void test_bmap_v2(void **state)
{
	const char *t = BMAP2_HEAD "<MappedBlocksCount> 4 </MappedBlocksCount>\n"
			"<ChecksumType> sha256 </ChecksumType>\n<BlockMap>\n"
			"<Range chksum=\"" ZERO64 "\"> 0-1 </Range>\n"
			"<Range chksum=\"" ZERO64 "\"> 5 </Range>\n"
			"<Range chksum=\"" ZERO64 "\"> 9 </Range>\n"
			"</BlockMap>\n</bmap>\n";
	struct fl_bmap bm;
	char msg[256];

	(void)state;
	assert_int_equal(parse(t, &bm, msg, sizeof(msg)), 0);
	assert_int_equal(bm.major, 2);
	assert_int_equal(bm.n, 3);
	assert_int_equal(bm.csum, FL_CSUM_SHA256);
	assert_int_equal(bm.r[0].first, 0);
	assert_int_equal(bm.r[0].last, 1);
	assert_int_equal(bm.r[1].first, 5);
	assert_int_equal(bm.r[2].last, 9);
	assert_true(bm.r[2].has_digest);
	assert_int_equal(bm.mapped_blocks, 4);
	fl_bmap_release(&bm);
}

/* A 1.4 bmap with a correct BmapFileSHA1 over the text with the value zeroed. */
static void test_bmap_v14_file_checksum(void **state)
{
	char text[2048], hex[41];
	unsigned char d[20];
	unsigned int dl;
	struct fl_bmap bm;
	char msg[256], *p;
	int i;

	(void)state;
	snprintf(text, sizeof(text),
		 "<?xml version=\"1.0\" ?>\n<bmap version=\"1.4\">\n"
		 "<ImageSize> 8192 </ImageSize>\n<BlockSize> 4096 </BlockSize>\n"
		 "<BlocksCount> 2 </BlocksCount>\n<MappedBlocksCount> 1 </MappedBlocksCount>\n"
		 "<BmapFileSHA1> %s </BmapFileSHA1>\n<BlockMap>\n"
		 "<Range sha1=\"1111111111111111111111111111111111111111\"> 1 </Range>\n"
		 "</BlockMap>\n</bmap>\n", "0000000000000000000000000000000000000000");
	EVP_Digest(text, strlen(text), d, &dl, EVP_sha1(), NULL);
	for (i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	p = strstr(text, "0000000000000000000000000000000000000000");
	memcpy(p, hex, 40);
	assert_int_equal(parse(text, &bm, msg, sizeof(msg)), 0);
	assert_int_equal(bm.csum, FL_CSUM_SHA1);
	assert_int_equal(bm.r[0].digest[0], 0x11);
	fl_bmap_release(&bm);
	/* One changed character anywhere breaks the file checksum. */
	p = strstr(text, "sha1=\"1111");
	p[7] = '2';
	assert_int_equal(parse(text, &bm, msg, sizeof(msg)), -EBADMSG);
	assert_non_null(strstr(msg, "checksum"));
}

static void test_bmap_malformed(void **state)
{
	static const char *const bad[] = {
		"not xml at all",
		"<foo version=\"2.0\"/>",
		"<bmap version=\"3.0\"><ImageSize>1</ImageSize></bmap>",
		"<bmap version=\"2.0\"><BlockSize>4096</BlockSize><BlocksCount>1</BlocksCount>"
		"<ChecksumType>sha256</ChecksumType><BlockMap/></bmap>",
		BMAP2_HEAD "<ChecksumType>md5</ChecksumType><BlockMap/></bmap>",
		BMAP2_HEAD "<BlockMap/></bmap>",
		BMAP2_HEAD "<ChecksumType>sha256</ChecksumType></bmap>",
		BMAP2_HEAD "<ChecksumType>sha256</ChecksumType><BlockMap>"
		"<Range> 5-3 </Range></BlockMap></bmap>",
		BMAP2_HEAD "<ChecksumType>sha256</ChecksumType><BlockMap>"
		"<Range> 0-4 </Range><Range> 3 </Range></BlockMap></bmap>",
		BMAP2_HEAD "<ChecksumType>sha256</ChecksumType><BlockMap>"
		"<Range> 10 </Range></BlockMap></bmap>",
		BMAP2_HEAD "<ChecksumType>sha256</ChecksumType><BlockMap>"
		"<Range> x </Range></BlockMap></bmap>",
		BMAP2_HEAD "<ChecksumType>sha256</ChecksumType><BlockMap>"
		"<Range chksum=\"abc\"> 1 </Range></BlockMap></bmap>",
		BMAP2_HEAD "<MappedBlocksCount> 3 </MappedBlocksCount>"
		"<ChecksumType>sha256</ChecksumType><BlockMap>"
		"<Range> 1 </Range></BlockMap></bmap>",
		"<bmap version=\"2.0\"><ImageSize>100</ImageSize><BlockSize>4096</BlockSize>"
		"<BlocksCount>7</BlocksCount><ChecksumType>sha256</ChecksumType><BlockMap/></bmap>",
		"<bmap version=\"2.0\"><ImageSize>4096</ImageSize><BlockSize>1000</BlockSize>"
		"<BlocksCount>5</BlocksCount><ChecksumType>sha256</ChecksumType><BlockMap/></bmap>",
		BMAP2_HEAD "<ChecksumType>sha256</ChecksumType><BlockMap><Other/></BlockMap></bmap>",
	};
	struct fl_bmap bm;
	char msg[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i], &bm, msg, sizeof(msg));

		if (rc != -EINVAL)
			fail_msg("case %zu: rc %d (%s)", i, rc, msg);
		assert_non_null(strstr(msg, "bmap"));
	}
}

static void test_bmap_find(void **state)
{
	char img[600], bmap[600], *p;

	(void)state;
	path_in_tmp(img, sizeof(img), "find.img.xz");
	path_in_tmp(bmap, sizeof(bmap), "find.bmap");
	write_file(img, "x", 1);
	assert_null(rig_flash_bmap_find(img));
	write_file(bmap, "x", 1);
	p = rig_flash_bmap_find(img);
	assert_non_null(p);
	assert_string_equal(p, bmap);
	free(p);
	path_in_tmp(bmap, sizeof(bmap), "find.img.bmap");
	write_file(bmap, "x", 1);
	p = rig_flash_bmap_find(img);
	assert_string_equal(p, bmap);
	free(p);
}

/* ---- partitions ---- */

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void put64(unsigned char *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static void mbr_entry(unsigned char *disk, unsigned char *sect, int i, int boot, int type,
		      uint32_t start, uint32_t n)
{
	unsigned char *e = sect + 446 + 16 * i;

	(void)disk;
	e[0] = (unsigned char)boot;
	e[4] = (unsigned char)type;
	put32(e + 8, start);
	put32(e + 12, n);
	sect[510] = 0x55;
	sect[511] = 0xAA;
}

#define DISK_SECTORS 4096 /* 2 MiB */

static unsigned char *mbr_disk(void)
{
	unsigned char *d = calloc(DISK_SECTORS, 512), *fat;

	assert_non_null(d);
	mbr_entry(d, d, 0, 0x80, 0x0c, 64, 512);
	mbr_entry(d, d, 1, 0, 0x83, 576, 512);
	mbr_entry(d, d, 2, 0, 0x05, 1088, 2048);
	/* EBR 1 at 1088: logical at +32, next EBR at ext+1024. */
	mbr_entry(d, d + 1088 * 512, 0, 0, 0x83, 32, 256);
	mbr_entry(d, d + 1088 * 512, 1, 0, 0x05, 1024, 1024);
	mbr_entry(d, d + (1088 + 1024) * 512, 0, 0, 0x83, 32, 512);
	/*
	 * A FAT16 boot sector with a label in partition 1: a BPB mtools and libblkid accept
	 * (512-byte sectors, 1 per cluster, 1 reserved, 2 FATs of 2 sectors, 16 root entries,
	 * 512 sectors, media 0xF8), the label in the extended BPB.
	 */
	fat = d + 64 * 512;
	memcpy(fat, "\xeb\x3c\x90mkfs.fat", 11);
	fat[0x0C] = 2;          /* 512 bytes per sector */
	fat[0x0D] = 1;
	fat[0x0E] = 1;
	fat[0x10] = 2;
	fat[0x11] = 16;
	fat[0x14] = 2;          /* 512 sectors */
	fat[0x15] = 0xF8;
	fat[0x16] = 2;
	fat[0x18] = 32;
	fat[0x1A] = 2;
	fat[0x26] = 0x29;
	memcpy(fat + 0x2B, "RESIN-BOOT ", 11);
	memcpy(fat + 0x36, "FAT16   ", 8);
	fat[510] = 0x55;
	fat[511] = 0xAA;
	return d;
}

static int read_table(unsigned char *d, size_t len, struct rig_part_table **t, char *msg,
		      size_t mlen)
{
	char path[600];

	path_in_tmp(path, sizeof(path), "disk.img");
	write_file(path, d, len);
	return rig_part_table_read(path, t, msg, mlen);
}

static void test_part_mbr(void **state)
{
	unsigned char *d = mbr_disk();
	struct rig_part_table *t;
	struct rig_part_info in;
	char msg[256];

	(void)state;
	assert_int_equal(read_table(d, DISK_SECTORS * 512, &t, msg, sizeof(msg)), 0);
	assert_int_equal(rig_part_table_scheme(t), RIG_PART_MBR);
	assert_int_equal(rig_part_table_count(t), 5);
	assert_int_equal(rig_part_table_get(t, 3, &in), 0);
	assert_int_equal(in.index, 5);
	assert_int_equal(in.start, (1088 + 32) * 512);
	assert_int_equal(rig_part_table_get(t, 4, &in), 0);
	assert_int_equal(in.index, 6);
	assert_int_equal(in.start, (1088 + 1024 + 32) * 512);
	assert_int_equal(rig_part_table_get(t, 5, &in), -ENOENT);
	assert_int_equal(rig_part_table_find(t, "resin-boot", &in, msg, sizeof(msg)), 0);
	assert_int_equal(in.index, 1);
	assert_int_equal(in.fs, RIG_PART_FS_FAT);
	assert_true(in.bootable);
	assert_int_equal(rig_part_table_find(t, "6", &in, msg, sizeof(msg)), 0);
	assert_int_equal(in.size, 512 * 512);
	assert_int_equal(rig_part_table_find(t, "resin-data", &in, msg, sizeof(msg)), -ENOENT);
	assert_non_null(strstr(msg, "resin-data"));
	rig_part_table_free(t);
	rig_part_table_free(NULL);
	free(d);
}

static void test_part_mbr_bad(void **state)
{
	struct rig_part_table *t;
	char msg[256];
	unsigned char *d;

	(void)state;
	d = mbr_disk();
	d[510] = 0;
	assert_int_equal(read_table(d, DISK_SECTORS * 512, &t, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "no partition table"));
	free(d);

	d = mbr_disk();
	d[446 + 16] = 0x12; /* bad boot flag */
	assert_int_equal(read_table(d, DISK_SECTORS * 512, &t, msg, sizeof(msg)), -EINVAL);
	free(d);

	d = mbr_disk();
	put32(d + 446 + 16 + 8, 100); /* p2 overlaps p1 */
	assert_int_equal(read_table(d, DISK_SECTORS * 512, &t, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "overlap"));
	free(d);

	d = mbr_disk();
	put32(d + 446 + 16 + 12, 100000); /* beyond the end */
	assert_int_equal(read_table(d, DISK_SECTORS * 512, &t, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "beyond"));
	free(d);

	/* The second EBR links back into the chain: it ends there, each partition once. */
	d = mbr_disk();
	d[(1088 + 1024) * 512 + 446 + 16 + 4] = 0x05;
	put32(d + (1088 + 1024) * 512 + 446 + 16 + 12, 10);
	put32(d + (1088 + 1024) * 512 + 446 + 16 + 8, 1);
	assert_int_equal(read_table(d, DISK_SECTORS * 512, &t, msg, sizeof(msg)), 0);
	assert_int_equal(rig_part_table_count(t), 5);
	rig_part_table_free(t);
	free(d);

	d = mbr_disk();
	assert_int_equal(read_table(d, 100, &t, msg, sizeof(msg)), -EINVAL);
	free(d);
}

static unsigned char *gpt_disk(void)
{
	unsigned char *d = calloc(DISK_SECTORS, 512), *h = NULL, *e;
	static const char *const names[] = { "resin-boot", "resin-rootA" };
	int i, k;

	assert_non_null(d);
	mbr_entry(d, d, 0, 0, 0xEE, 1, DISK_SECTORS - 1);
	e = d + 2 * 512;
	for (i = 0; i < 2; i++) {
		unsigned char *en = e + 128 * i;

		memset(en, 0x11 + i, 16);               /* type */
		memset(en + 16, 0x21 + i, 16);          /* unique */
		put64(en + 32, 64 + 512 * (uint64_t)i);
		put64(en + 40, 64 + 512 * (uint64_t)i + 511);
		for (k = 0; names[i][k]; k++)
			en[56 + 2 * k] = (unsigned char)names[i][k];
	}
	h = d + 512;
	memcpy(h, "EFI PART", 8);
	put32(h + 8, 0x00010000);
	put32(h + 12, 92);
	put64(h + 24, 1);
	put64(h + 32, DISK_SECTORS - 1);
	put64(h + 40, 34);
	put64(h + 48, DISK_SECTORS - 34);
	put64(h + 72, 2);
	put32(h + 80, 128);
	put32(h + 84, 128);
	put32(h + 88, (uint32_t)crc32(0, e, 128 * 128));
	put32(h + 16, (uint32_t)crc32(0, h, 92));
	return d;
}

static void test_part_gpt(void **state)
{
	unsigned char *d = gpt_disk();
	struct rig_part_table *t;
	struct rig_part_info in;
	char msg[256];

	(void)state;
	assert_int_equal(read_table(d, DISK_SECTORS * 512, &t, msg, sizeof(msg)), 0);
	assert_int_equal(rig_part_table_scheme(t), RIG_PART_GPT);
	assert_int_equal(rig_part_table_count(t), 2);
	assert_int_equal(rig_part_table_find(t, "resin-rootA", &in, msg, sizeof(msg)), 0);
	assert_int_equal(in.index, 2);
	assert_int_equal(in.start, 576 * 512);
	assert_string_equal(in.type_guid, "12121212-1212-1212-1212-121212121212");
	rig_part_table_free(t);

	/* This disk has no backup GPT: a bad checksum in the primary leaves no table. */
	d[2 * 512 + 60] ^= 1; /* entry array CRC */
	assert_int_equal(read_table(d, DISK_SECTORS * 512, &t, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "no valid GPT"));
	free(d);

	d = gpt_disk();
	d[512 + 30] ^= 1; /* header CRC */
	assert_int_equal(read_table(d, DISK_SECTORS * 512, &t, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "no valid GPT"));
	free(d);

	d = gpt_disk();
	memset(d + 512, 0, 8); /* protective MBR without GPT */
	assert_int_equal(read_table(d, DISK_SECTORS * 512, &t, msg, sizeof(msg)), -EINVAL);
	free(d);
}

/* ---- library-level flashing ---- */

#define IMG_SIZE (16u << 20)

static void make_image(char *path, size_t len)
{
	unsigned char *b = malloc(IMG_SIZE);
	uint32_t x = 12345;
	size_t i;

	assert_non_null(b);
	for (i = 0; i < IMG_SIZE; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (unsigned char)(x >> 16);
	}
	path_in_tmp(path, len, "lib.img");
	write_file(path, b, IMG_SIZE);
	free(b);
}

struct cancel_ctx {
	volatile int flag;
	int calls;
};

static void cancel_after_4m(const struct rig_flash_progress *p, void *user)
{
	struct cancel_ctx *c = user;
	char line[200];

	c->calls++;
	assert_true(rig_flash_progress_format(p, line, sizeof(line)) > 0);
	if (p->phase == RIG_FLASH_PHASE_WRITE && p->done >= (4u << 20))
		c->flag = 1;
}

static void test_flash_cancel(void **state)
{
	struct rig_flash_opts o;
	struct rig_flash_stats st;
	struct cancel_ctx c = { 0, 0 };
	char img[600], out[600], msg[512];

	(void)state;
	make_image(img, sizeof(img));
	path_in_tmp(out, sizeof(out), "lib.out");
	unlink(out);
	rig_flash_opts_init(&o);
	o.progress = cancel_after_4m;
	o.progress_user = &c;
	o.cancel = &c.flag;
	o.create = true;
	o.fault.chunk_delay_ms = 120; /* lets each chunk's progress through the throttle */
	assert_int_equal(rig_flash_image(img, out, &o, &st, msg, sizeof(msg)), -EINTR);
	assert_int_equal(st.fail_offset, 4u << 20);
	assert_true(st.bytes_written <= (4u << 20));
	assert_non_null(strstr(msg, "cancelled at offset 4194304"));
	assert_true(c.calls >= 2);
	/* the file this flash created is not left behind half-written */
	assert_true(st.target_written);
	assert_non_null(strstr(msg, "was removed"));
	assert_int_equal(access(out, F_OK), -1);
}

/* True if the first and the last MiB of @path are zeros (a card that cannot boot). */
static bool wiped(const char *path)
{
	static unsigned char b[1 << 20];
	struct stat st;
	bool ok = false;
	int fd = open(path, O_RDONLY);
	size_t i;

	if (fd < 0 || fstat(fd, &st) < 0)
		goto out;
	if (pread(fd, b, sizeof(b), 0) != (ssize_t)sizeof(b))
		goto out;
	for (i = 0; i < sizeof(b); i++)
		if (b[i])
			goto out;
	if (pread(fd, b, sizeof(b), st.st_size - (off_t)sizeof(b)) != (ssize_t)sizeof(b))
		goto out;
	for (i = 0; i < sizeof(b); i++)
		if (b[i])
			goto out;
	ok = true;
out:
	if (fd >= 0)
		close(fd);
	return ok;
}

static void test_flash_faults(void **state)
{
	struct rig_flash_opts o;
	struct rig_flash_stats st;
	char img[600], out[600], msg[512];

	(void)state;
	make_image(img, sizeof(img));
	path_in_tmp(out, sizeof(out), "lib.out");
	unlink(out);
	rig_flash_opts_init(&o);
	/* without create a missing file is not a card */
	assert_int_equal(rig_flash_image(img, out, &o, &st, msg, sizeof(msg)), -ENOENT);
	assert_non_null(strstr(msg, "does not exist"));
	assert_false(st.target_written);
	o.create = true;
	assert_int_equal(rig_flash_image(img, out, &o, &st, msg, sizeof(msg)), 0);
	assert_int_equal(st.bytes_written, IMG_SIZE);
	assert_int_equal(st.bytes_verified, IMG_SIZE);
	assert_int_equal(st.format, RIG_FLASH_FMT_RAW);
	o.create = false;

	o.full = true;
	o.fault.corrupt_offset = 5 * 4096 + 17;
	assert_int_equal(rig_flash_image(img, out, &o, &st, msg, sizeof(msg)), -EIO);
	assert_int_equal(st.fail_offset, 5 * 4096);
	assert_non_null(strstr(msg, "offset 20480"));
	/* written, then found wrong: the card is made unbootable and the message says so */
	assert_true(st.invalidated);
	assert_non_null(strstr(msg, "the card was invalidated"));
	assert_true(wiped(out));

	rig_flash_opts_init(&o);
	o.full = true;
	o.fault.write_offset = 6 << 20;
	o.fault.write_errno = ENODEV;
	assert_int_equal(rig_flash_image(img, out, &o, &st, msg, sizeof(msg)), -ENODEV);
	assert_int_equal(st.fail_offset, 6 << 20);
	assert_non_null(strstr(msg, "vanished"));

	rig_flash_opts_init(&o);
	o.timeout_ms = 0;
	assert_int_equal(rig_flash_image(img, out, &o, &st, msg, sizeof(msg)), -ETIMEDOUT);

	assert_int_equal(rig_flash_image("/nonexistent/x.img", out, NULL, NULL, msg,
					 sizeof(msg)), -ENOENT);
	assert_non_null(strstr(msg, "/nonexistent/x.img"));
	/* NULL err buffer is allowed. */
	assert_int_equal(rig_flash_image("/nonexistent/x.img", out, NULL, NULL, NULL, 0),
			 -ENOENT);
}

static void test_first_error_wins(void **state)
{
	struct fl_err e;
	char msg[64];

	(void)state;
	fl_err_init(&e, msg, sizeof(msg));
	assert_int_equal(fl_err_set(&e, -EIO, "root cause %d", 1), -EIO);
	assert_int_equal(fl_err_set(&e, -EINVAL, "consequence"), -EIO);
	assert_string_equal(msg, "root cause 1");
}

static void test_hash(void **state)
{
	unsigned char a[4096] = { 0 }, b[4096] = { 0 };

	(void)state;
	assert_true(fl_hash64(a, sizeof(a)) == fl_hash64(b, sizeof(b)));
	b[4095] = 1;
	assert_true(fl_hash64(a, sizeof(a)) != fl_hash64(b, sizeof(b)));
	b[4095] = 0;
	b[0] = 0x80;
	assert_true(fl_hash64(a, sizeof(a)) != fl_hash64(b, sizeof(b)));
	assert_true(fl_hash64(a, 100) != fl_hash64(a, 101));
}

/*
 * Robustness: thousands of random mutations of valid inputs must be rejected or accepted
 * cleanly (run under ASan/UBSan with make test SAN=1). Deterministic seed.
 */
static uint32_t rnd(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

static void test_parsers_survive_mutations(void **state)
{
	const char *base = BMAP2_HEAD "<MappedBlocksCount> 4 </MappedBlocksCount>\n"
			   "<ChecksumType> sha256 </ChecksumType>\n<BlockMap>\n"
			   "<Range chksum=\"" ZERO64 "\"> 0-1 </Range>\n"
			   "<Range chksum=\"" ZERO64 "\"> 5 </Range>\n"
			   "<Range chksum=\"" ZERO64 "\"> 9 </Range>\n"
			   "</BlockMap>\n</bmap>\n";
	size_t len = strlen(base), i, k;
	char *buf = malloc(len + 1), msg[256];
	uint32_t x = 0x12345678;
	struct fl_bmap bm;
	unsigned char *d;
	struct rig_part_table *t;

	(void)state;
	for (i = 0; i < 3000; i++) {
		memcpy(buf, base, len + 1);
		for (k = 0; k < 1 + rnd(&x) % 4; k++)
			buf[rnd(&x) % len] = (char)(rnd(&x) % 2 ? "0123456789-<>\"/ ax"[rnd(&x) % 17] :
						      (char)rnd(&x));
		buf[len] = 0;
		{
			struct fl_err e;

			fl_err_init(&e, msg, sizeof(msg));
			if (fl_bmap_parse(buf, len, "m.bmap", &bm, &e) == 0)
				fl_bmap_release(&bm);
		}
	}
	free(buf);
	for (i = 0; i < 300; i++) {
		d = (i % 2) ? gpt_disk() : mbr_disk();
		for (k = 0; k < 1 + rnd(&x) % 3; k++) {
			/* Hit the tables (first 3 sectors, EBRs) more often than the rest. */
			size_t at = rnd(&x) % 2 ? rnd(&x) % (3 * 512) :
						  (1088 + rnd(&x) % 1200) * 512 + 446 + rnd(&x) % 66;
			d[at] = (unsigned char)rnd(&x);
		}
		if (read_table(d, DISK_SECTORS * 512, &t, msg, sizeof(msg)) == 0) {
			struct rig_part_info in;

			for (k = 0; rig_part_table_get(t, k, &in) == 0; k++)
				assert_true(in.start + in.size <= DISK_SECTORS * 512);
			rig_part_table_free(t);
		}
		free(d);
	}
}

/* ---- block-parallel xz ---- */

/* Writes an xz file of n blocks of bs bytes each (block i filled from seed i). */
static void make_xz_blocks(const char *path, unsigned char *data, size_t n, size_t bs)
{
	lzma_mt mt = { .threads = 1, .block_size = bs, .preset = 0, .check = LZMA_CHECK_CRC32 };
	lzma_stream st = LZMA_STREAM_INIT;
	size_t cap = n * bs + (n + 1) * 256 + 4096;
	unsigned char *out = malloc(cap);
	size_t i;

	assert_non_null(out);
	for (i = 0; i < n * bs; i++)
		data[i] = (unsigned char)((i / bs) * 7 + (i % 13 == 0 ? i : 0));
	assert_int_equal(lzma_stream_encoder_mt(&st, &mt), LZMA_OK);
	st.next_in = data;
	st.avail_in = n * bs;
	st.next_out = out;
	st.avail_out = cap;
	assert_int_equal(lzma_code(&st, LZMA_FINISH), LZMA_STREAM_END);
	write_file(path, out, cap - st.avail_out);
	lzma_end(&st);
	free(out);
}

static bool want_all(void *user, uint64_t a, uint64_t b)
{
	(void)user;
	(void)a;
	(void)b;
	return true;
}

/* An xz file of nb blocks of bs bytes in the temporary directory, what it holds and a buffer. */
struct xzfx {
	size_t size;                    /* nb * bs, uncompressed */
	unsigned char *data, *got;      /* the content; room to read it into */
	char path[600];
};

/* Writes the file; the alarm (until xzfx_release) turns a hang into a failure. */
static void xzfx_init(struct xzfx *f, size_t nb, size_t bs)
{
	f->size = nb * bs;
	f->data = malloc(f->size);
	f->got = malloc(f->size);
	assert_non_null(f->data);
	assert_non_null(f->got);
	path_in_tmp(f->path, sizeof(f->path), "small.xz");
	make_xz_blocks(f->path, f->data, nb, bs);
	alarm(60);
}

static void xzfx_release(struct xzfx *f)
{
	alarm(0);
	unlink(f->path);
	free(f->data);
	free(f->got);
}

/* Reads @x into @got in @chunk-byte calls until it ends or fails; *@done: bytes read. */
static long xzb_read_all(struct fl_xzb *x, unsigned char *got, size_t chunk, size_t *done,
			 struct fl_err *e)
{
	long n;

	while ((n = fl_xzb_read(x, got + *done, chunk, e)) > 0)
		*done += (size_t)n;
	return n;
}

/*
 * Many tiny blocks and more workers than cores: a worker woken for its slot must not lose it to
 * a later block that maps to the same slot (that deadlocked the reader). The alarm turns a
 * hang into a failure.
 */
static void test_xzb_many_small_blocks(void **state)
{
	struct xzfx f;
	char msg[256];
	struct fl_xzb *x;
	struct fl_err e;
	int fd, round;

	(void)state;
	xzfx_init(&f, 3000, 512);
	for (round = 0; round < 20; round++) {
		size_t done = 0;

		fl_err_init(&e, msg, sizeof(msg));
		fd = open(f.path, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(fl_xzb_open(fd, f.path, (uint64_t)lseek(fd, 0, SEEK_END), 16,
					     want_all, NULL, &x, &e), 1);
		assert_int_equal(xzb_read_all(x, f.got, 97, &done, &e), 0);
		assert_int_equal(done, f.size);
		assert_memory_equal(f.got, f.data, f.size);
		fl_xzb_close(x);
		close(fd);
	}
	xzfx_release(&f);
}

/* fl_xzb_stop() wakes a waiting reader with -EINTR; a corrupt block names itself. */
static void test_xzb_stop_and_corrupt(void **state)
{
	struct xzfx f;
	unsigned char *got;
	char msg[256];
	struct fl_xzb *x;
	struct fl_err e;
	struct stat sb;
	size_t done = 0;
	int fd;

	(void)state;
	xzfx_init(&f, 400, 4096);
	got = f.got;
	fl_err_init(&e, msg, sizeof(msg));
	fd = open(f.path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(fl_xzb_open(fd, f.path, (uint64_t)sb.st_size, 4, want_all, NULL, &x, &e),
			 1);
	assert_true(fl_xzb_read(x, got, 10, &e) == 10);
	fl_xzb_stop(x);
	assert_int_equal(fl_xzb_read(x, got, f.size, &e), -EINTR);
	assert_non_null(strstr(msg, "stopped"));
	fl_xzb_close(x);

	/* flip a byte in the middle: it lands in some block's compressed data */
	assert_int_equal(pread(fd, got, 1, sb.st_size / 2), 1);
	got[0] ^= 0x55;
	assert_int_equal(pwrite(fd, got, 1, sb.st_size / 2), 1);
	fl_err_init(&e, msg, sizeof(msg));
	assert_int_equal(fl_xzb_open(fd, f.path, (uint64_t)sb.st_size, 4, want_all, NULL, &x, &e),
			 1);
	assert_int_equal(xzb_read_all(x, got, 4000, &done, &e), -EBADMSG);
	assert_true(done < f.size);
	assert_memory_equal(got, f.data, done);
	assert_non_null(strstr(msg, "corrupt xz stream"));
	assert_non_null(strstr(msg, ": block "));
	fl_xzb_close(x);
	close(fd);
	xzfx_release(&f);
}

static int setup(void **state)
{
	const char *b = getenv("BUILD");

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp/flash-unit.%d", b ? b : "build", (int)getpid());
	mkdir(b ? b : "build", 0755);
	{
		char t[600];

		snprintf(t, sizeof(t), "%s/tmp", b ? b : "build");
		mkdir(t, 0755);
	}
	return mkdir(tmpdir, 0755);
}

static int teardown(void **state)
{
	static const char *const names[] = { "find.img.xz", "find.bmap", "find.img.bmap",
					     "disk.img", "lib.img", "lib.out" };
	char p[600];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		path_in_tmp(p, sizeof(p), names[i]);
		unlink(p);
	}
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_progress_format),
		cmocka_unit_test(test_magic),
		cmocka_unit_test(test_opts_defaults),
		cmocka_unit_test(test_bmap_v2),
		cmocka_unit_test(test_bmap_v14_file_checksum),
		cmocka_unit_test(test_bmap_malformed),
		cmocka_unit_test(test_bmap_find),
		cmocka_unit_test(test_part_mbr),
		cmocka_unit_test(test_part_mbr_bad),
		cmocka_unit_test(test_part_gpt),
		cmocka_unit_test(test_flash_cancel),
		cmocka_unit_test(test_flash_faults),
		cmocka_unit_test(test_first_error_wins),
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_parsers_survive_mutations),
		cmocka_unit_test(test_xzb_many_small_blocks),
		cmocka_unit_test(test_xzb_stop_and_corrupt),
	};

	return cmocka_run_group_tests_name("flash", tests, setup, teardown);
}
