// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the partition-table and file-system label reader: the input is the
 * start of a 64 MiB disk image (the rest reads as zeros), given to rig_part_table_read()
 * as a file. MBR with its extended chain, GPT (512 and 4096-byte sectors), FAT and ext
 * labels. What it accepts must be a consistent table, and lookups by number and label
 * must work on it.
 */
#include <ctype.h>
#include <errno.h>

#include "rig_flash.h"
#include "fuzzlua.h"

#define DISK_SIZE (64u << 20)

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
	fd = fuzz_memfd(data, size, DISK_SIZE, path, sizeof(path));
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
