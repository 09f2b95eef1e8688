// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the partition-table and file-system label reader: the input is the
 * start of a 64 MiB disk image (the rest reads as zeros), given to rig_part_table_read()
 * as a file. MBR with its extended chain, GPT (512 and 4096-byte sectors), FAT and ext
 * labels. What it accepts must be a consistent table, and lookups by number and label
 * must work on it.
 *
 * A fuzzer cannot forge CRC-32s, so unless bit 0 of the first byte (MBR boot code, which
 * the reader ignores) is set, the harness recomputes the GPT header and entry-array CRCs
 * the way a real GPT has them; the entries behind the header then get fuzzed too.
 */
#include <ctype.h>
#include <errno.h>
#include <zlib.h>

#include "rig_flash.h"
#include "fuzzlua.h"

#define DISK_SIZE (64u << 20)

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* CRC-32 of the disk bytes [off, off + len): the input, then zeros. */
static uint32_t disk_crc(const uint8_t *d, size_t size, uint64_t off, uint64_t len)
{
	static const uint8_t zero[4096];
	uLong crc = crc32(0, NULL, 0);

	if (off < size) {
		size_t n = size - off < len ? (size_t)(size - off) : (size_t)len;

		crc = crc32(crc, d + off, (uInt)n);
		len -= n;
	}
	while (len) {
		size_t n = len < sizeof(zero) ? (size_t)len : sizeof(zero);

		crc = crc32(crc, zero, (uInt)n);
		len -= n;
	}
	return (uint32_t)crc;
}

static void fix_gpt_crcs(uint8_t *d, size_t size)
{
	static const unsigned int sizes[] = { 512, 4096 };

	for (int i = 0; i < 2; i++) {
		uint8_t *h = d + sizes[i];
		uint32_t hsz, nent, esz;
		uint64_t elba;

		if (size < sizes[i] + 92 || memcmp(h, "EFI PART", 8))
			continue;
		hsz = rd32(h + 12);
		nent = rd32(h + 80);
		esz = rd32(h + 84);
		memcpy(&elba, h + 72, 8);   /* little-endian host */
		if (hsz < 92 || hsz > 512 || size < sizes[i] + hsz)
			return;
		if (nent <= 1024 && esz <= 4096 && elba < DISK_SIZE / sizes[i] &&
		    elba * sizes[i] + (uint64_t)nent * esz <= DISK_SIZE)
			wr32(h + 88, disk_crc(d, size, elba * sizes[i], (uint64_t)nent * esz));
		wr32(h + 16, 0);
		wr32(h + 16, (uint32_t)crc32(0, h, hsz));
		return;
	}
}

static void check_str(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n >= max)
		abort();
}

/* rig_part_table_find() reads an all-digit selector as a partition number. */
static bool by_label(const char *s)
{
	char *end;

	if (!*s)
		return false;
	(void)strtoul(s, &end, 10);
	return *end != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rig_part_table *t = NULL;
	struct rig_part_info a, b;
	char path[64], err[512];
	size_t n;
	int fd, rc;

	if (size > DISK_SIZE)
		return -1;
	if (size > 0 && !(data[0] & 1)) {
		uint8_t *copy = malloc(size);

		if (!copy)
			abort();
		memcpy(copy, data, size);
		fix_gpt_crcs(copy, size);
		fd = fuzz_memfd(copy, size, DISK_SIZE, path, sizeof(path));
		free(copy);
	} else {
		fd = fuzz_memfd(data, size, DISK_SIZE, path, sizeof(path));
	}
	rc = rig_part_table_read(path, &t, err, sizeof(err));
	close(fd);
	if (fuzz_verbose())
		fprintf(stderr, "part: %s\n", rc ? err : "ok");
	if (rc) {
		if (rc > 0 || t || !err[0])
			abort();
		return 0;
	}
	n = rig_part_table_count(t);
	if (n > 128 || (rig_part_table_scheme(t) != RIG_PART_MBR &&
			rig_part_table_scheme(t) != RIG_PART_GPT))
		abort();
	for (size_t i = 0; i < n; i++) {
		char sel[16];

		if (rig_part_table_get(t, i, &a))
			abort();
		if (a.start == 0 || a.start + a.size > DISK_SIZE || a.start + a.size < a.start)
			abort();
		check_str(a.type_guid, 37);
		check_str(a.name, 216);
		check_str(a.fs_label, 17);
		for (const char *s = a.fs_label; *s; s++)
			if (!isprint((unsigned char)*s))
				abort();
		if (fuzz_verbose())
			fprintf(stderr, "  %u start %llu size %llu type 0x%02x '%s' name '%s' fs %d "
				"label '%s'%s\n", a.index, (unsigned long long)a.start,
				(unsigned long long)a.size, a.mbr_type, a.type_guid, a.name, a.fs,
				a.fs_label, a.bootable ? " boot" : "");
		snprintf(sel, sizeof(sel), "%u", a.index);
		if (rig_part_table_find(t, sel, &b, err, sizeof(err)) || b.index != a.index)
			abort();
		if (by_label(a.fs_label) && rig_part_table_find(t, a.fs_label, &b, err, sizeof(err)))
			abort();
		if (by_label(a.name) && rig_part_table_find(t, a.name, &b, err, sizeof(err)))
			abort();
	}
	if (rig_part_table_get(t, n, &a) != -ENOENT)
		abort();
	if (rig_part_table_find(t, "no-such-label", &b, err, sizeof(err)) != -ENOENT || !err[0])
		abort();
	rig_part_table_free(t);
	return 0;
}
