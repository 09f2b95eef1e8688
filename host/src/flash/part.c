/* SPDX-License-Identifier: MIT */
/*
 * Partition tables (MBR with its extended chain, GPT with 512 or 4096-byte sectors) and
 * file-system labels of images and devices, read by libblkid: the images are untrusted,
 * and libblkid is the parser udev, the kernel's tools and `rigor image inspect` already
 * trust. What is left here is policy on top of it: a table whose partitions overlap,
 * start at sector 0 or run past the end is refused, as the flash engine must not write
 * files into it. host/tests/flash/part-blkid.sh holds the proof that libblkid reads
 * every image the earlier hand-written parser read, with the same result.
 */
#include <blkid/blkid.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flash_internal.h"

#define MAX_PARTS 128

struct part {
	struct rig_part_info info;
	char guid[37];
	char name[216];
	char label[17];
};

struct rig_part_table {
	enum rig_part_scheme scheme;
	size_t n;
	struct part p[MAX_PARTS];
};

/*
 * The file system at the start of a partition: FAT and ext are what the flash engine can
 * copy files in and out of. The label is LABEL, else (a FAT whose root directory has no
 * volume entry) the boot sector's LABEL_FATBOOT; "NO NAME" is no label.
 */
static void probe_fs(int fd, struct part *p)
{
	blkid_probe pr = blkid_new_probe();
	const char *type = NULL, *label = NULL;

	p->info.fs = RIG_PART_FS_UNKNOWN;
	if (!pr)
		return;
	if (blkid_probe_set_device(pr, fd, (blkid_loff_t)p->info.start,
				   (blkid_loff_t)p->info.size) == 0) {
		blkid_probe_enable_superblocks(pr, 1);
		blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_LABEL | BLKID_SUBLKS_TYPE);
		if (blkid_do_safeprobe(pr) == 0) {
			blkid_probe_lookup_value(pr, "TYPE", &type, NULL);
			if (blkid_probe_lookup_value(pr, "LABEL", &label, NULL) != 0)
				blkid_probe_lookup_value(pr, "LABEL_FATBOOT", &label, NULL);
		}
	}
	if (type && (!strcmp(type, "vfat") || !strcmp(type, "msdos")))
		p->info.fs = RIG_PART_FS_FAT;
	else if (type && (!strcmp(type, "ext2") || !strcmp(type, "ext3") || !strcmp(type, "ext4")))
		p->info.fs = RIG_PART_FS_EXT;
	if (p->info.fs != RIG_PART_FS_UNKNOWN && label && strcmp(label, "NO NAME")) {
		size_t i;

		/* printable ASCII only, as it goes into messages and partition selectors */
		for (i = 0; i < sizeof(p->label) - 1 && isprint((unsigned char)label[i]); i++)
			p->label[i] = label[i];
		for (p->label[i] = 0; i && p->label[i - 1] == ' '; i--)
			p->label[i - 1] = 0;
	}
	blkid_free_probe(pr);
}

static bool is_ext(unsigned int type)
{
	return type == 0x05 || type == 0x0F || type == 0x85;
}

static int validate(const struct rig_part_table *t, uint64_t disk, const char *path,
		    struct fl_err *e)
{
	size_t i, k;

	for (i = 0; i < t->n; i++) {
		const struct rig_part_info *a = &t->p[i].info;

		if (disk && a->start + a->size > disk)
			return fl_err_set(e, -EINVAL, "'%s': partition %u (%" PRIu64 "+%" PRIu64
					  ") extends beyond the end (%" PRIu64 " bytes)", path,
					  a->index, a->start, a->size, disk);
		if (a->start == 0)
			return fl_err_set(e, -EINVAL, "'%s': partition %u starts at sector 0",
					  path, a->index);
		for (k = i + 1; k < t->n; k++) {
			const struct rig_part_info *b = &t->p[k].info;

			if (is_ext(a->mbr_type) || is_ext(b->mbr_type))
				continue;
			if (a->start < b->start + b->size && b->start < a->start + a->size)
				return fl_err_set(e, -EINVAL, "'%s': partitions %u and %u overlap",
						  path, a->index, b->index);
		}
	}
	return 0;
}

/*
 * The table libblkid finds with @ss-byte sectors. A file has no sector size of its own:
 * libblkid assumes 512, so a GPT written for 4096-byte sectors is only found by asking
 * again. Returns the probe (the caller frees it) or NULL when there is no table.
 */
static blkid_probe probe_table(int fd, unsigned int ss, blkid_partlist *ls)
{
	blkid_probe pr = blkid_new_probe();

	if (!pr)
		return NULL;
	if (blkid_probe_set_device(pr, fd, 0, 0) == 0 && blkid_probe_set_sectorsize(pr, ss) == 0) {
		blkid_probe_enable_partitions(pr, 1);
		blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
		*ls = blkid_probe_get_partitions(pr);
		if (*ls && blkid_partlist_get_table(*ls))
			return pr;
	}
	blkid_free_probe(pr);
	return NULL;
}

/* Fills @t from libblkid's list: entries of the top table only, not nested ones (BSD...). */
static int fill(struct rig_part_table *t, blkid_partlist ls, const char *path, struct fl_err *e)
{
	blkid_parttable root = blkid_partlist_get_table(ls);
	const char *type = blkid_parttable_get_type(root);
	int n = blkid_partlist_numof_partitions(ls);

	if (!strcmp(type, "gpt"))
		t->scheme = RIG_PART_GPT;
	else if (!strcmp(type, "dos"))
		t->scheme = RIG_PART_MBR;
	else
		return fl_err_set(e, -EINVAL, "'%s' has a %s partition table, not MBR or GPT", path,
				  type);
	for (int i = 0; i < n; i++) {
		blkid_partition par = blkid_partlist_get_partition(ls, i);
		blkid_parttable pt = blkid_partition_get_table(par);
		unsigned long long flags = blkid_partition_get_flags(par);
		blkid_loff_t start = blkid_partition_get_start(par);
		blkid_loff_t size = blkid_partition_get_size(par);
		const char *s;
		struct part *p;

		if (pt != root)
			continue;     /* a table nested in a partition (BSD, Minix...) */
		/*
		 * libblkid 2.38 takes a GPT entry whose last LBA lies before its first (the
		 * size wraps) for one inside the usable area: found by fuzz_part.
		 */
		if (start < 0 || size <= 0 || start > INT64_MAX / 512 || size > INT64_MAX / 512)
			return fl_err_set(e, -EINVAL, "'%s': partition %d has an implausible extent "
					  "(sector %lld, %lld sectors)", path,
					  blkid_partition_get_partno(par), (long long)start,
					  (long long)size);
		if (t->n == MAX_PARTS)
			return fl_err_set(e, -EINVAL, "more than %d partitions", MAX_PARTS);
		p = &t->p[t->n++];
		memset(p, 0, sizeof(*p));
		p->info.type_guid = p->guid;
		p->info.name = p->name;
		p->info.fs_label = p->label;
		p->info.index = (unsigned int)blkid_partition_get_partno(par);
		p->info.start = (uint64_t)start * 512;
		p->info.size = (uint64_t)size * 512;
		if (t->scheme == RIG_PART_GPT) {
			p->info.bootable = (flags & 4) != 0;   /* legacy BIOS bootable */
			s = blkid_partition_get_type_string(par);
			for (size_t k = 0; s && s[k] && k < sizeof(p->guid) - 1; k++)
				p->guid[k] = (char)toupper((unsigned char)s[k]);
			s = blkid_partition_get_name(par);
			snprintf(p->name, sizeof(p->name), "%s", s ? s : "");
		} else {
			p->info.bootable = flags == 0x80;
			p->info.mbr_type = (unsigned int)blkid_partition_get_type(par);
		}
	}
	return 0;
}

int rig_part_table_read(const char *path, struct rig_part_table **out, char *err,
			size_t errlen)
{
	static const unsigned int sizes[] = { 512, 4096 };
	struct rig_part_table *t = NULL;
	blkid_partlist ls = NULL;
	blkid_probe pr = NULL;
	unsigned char mbr[512];
	struct fl_err e;
	struct stat st;
	uint64_t disk = 0;
	ssize_t got;
	int fd, rc;
	size_t k;

	fl_err_init(&e, err, errlen);
	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fl_err_set(&e, -errno, "cannot open '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) == 0) {
		if (S_ISBLK(st.st_mode))
			(void)ioctl(fd, BLKGETSIZE64, &disk);
		else
			disk = (uint64_t)st.st_size;
	}
	/* for the message only: what libblkid found nothing in */
	got = pread(fd, mbr, sizeof(mbr), 0);
	if (got < 0) {
		rc = fl_err_set(&e, -errno, "'%s': cannot read the first sector: %s", path,
				strerror(errno));
		goto out;
	}
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]) && !pr; k++)
		pr = probe_table(fd, sizes[k], &ls);
	if (!pr) {
		bool pmbr = got == (ssize_t)sizeof(mbr);

		for (k = 0; pmbr && k < 4 && mbr[446 + 16 * k + 4] != 0xEE; k++)
			;
		if (got < (ssize_t)sizeof(mbr))
			rc = fl_err_set(&e, -EINVAL, "'%s': cannot read the first sector (file too short)",
					path);
		else if (mbr[510] != 0x55 || mbr[511] != 0xAA)
			rc = fl_err_set(&e, -EINVAL, "'%s' has no partition table (no 0x55AA signature)",
					path);
		else if (k < 4)
			rc = fl_err_set(&e, -EINVAL, "'%s': protective MBR but no valid GPT (neither the primary nor the backup header and entries pass libblkid's checks: signature, checksums, usable area)",
					path);
		else
			rc = fl_err_set(&e, -EINVAL, "'%s' has no partition table libblkid accepts (an MBR entry with a boot flag other than 0x00 or 0x80, or a file system's boot sector)",
					path);
		goto out;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		rc = fl_err_set(&e, -ENOMEM, "out of memory");
		goto out;
	}
	rc = fill(t, ls, path, &e);
	if (!rc)
		rc = validate(t, disk, path, &e);
	if (rc)
		goto out;
	for (k = 0; k < t->n; k++)
		if (!is_ext(t->p[k].info.mbr_type))
			probe_fs(fd, &t->p[k]);
	*out = t;
	t = NULL;
out:
	blkid_free_probe(pr);
	free(t);
	close(fd);
	return rc;
}

void rig_part_table_free(struct rig_part_table *t)
{
	free(t);
}

enum rig_part_scheme rig_part_table_scheme(const struct rig_part_table *t)
{
	return t->scheme;
}

size_t rig_part_table_count(const struct rig_part_table *t)
{
	return t->n;
}

int rig_part_table_get(const struct rig_part_table *t, size_t pos, struct rig_part_info *info)
{
	if (pos >= t->n)
		return -ENOENT;
	*info = t->p[pos].info;
	return 0;
}

int rig_part_table_find(const struct rig_part_table *t, const char *sel,
			struct rig_part_info *info, char *err, size_t errlen)
{
	struct fl_err e;
	char list[256] = "";
	size_t i, o = 0;
	char *end;
	unsigned long idx;

	fl_err_init(&e, err, errlen);
	idx = strtoul(sel, &end, 10);
	if (*sel && !*end) {
		for (i = 0; i < t->n; i++)
			if (t->p[i].info.index == idx) {
				*info = t->p[i].info;
				return 0;
			}
	} else {
		for (i = 0; i < t->n; i++)
			if (t->p[i].name[0] && !strcasecmp(t->p[i].name, sel)) {
				*info = t->p[i].info;
				return 0;
			}
		for (i = 0; i < t->n; i++)
			if (t->p[i].label[0] && !strcasecmp(t->p[i].label, sel)) {
				*info = t->p[i].info;
				return 0;
			}
	}
	for (i = 0; i < t->n && o < sizeof(list) - 1; i++) {
		const struct part *p = &t->p[i];
		int n = snprintf(list + o, sizeof(list) - o, "%s%u%s%s%s", i ? ", " : "",
				 p->info.index, p->name[0] || p->label[0] ? "=" : "",
				 p->name[0] ? p->name : p->label, "");

		if (n < 0)
			break;
		o += (size_t)n;
	}
	return fl_err_set(&e, -ENOENT, "no partition '%s' (have: %s)", sel,
			  t->n ? list : "none");
}
