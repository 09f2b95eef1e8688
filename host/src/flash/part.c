/* SPDX-License-Identifier: MIT */
/* MBR (with extended chain) and GPT parsing, plus FAT/ext volume labels. */
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
#include <zlib.h>

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

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int rd(int fd, void *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		got += (size_t)n;
	}
	return 0;
}

static void guid_str(const unsigned char *g, char *out)
{
	snprintf(out, 37, "%08" PRIX32 "-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X", le32(g),
		 g[4] | g[5] << 8, g[6] | g[7] << 8, g[8], g[9], g[10], g[11], g[12], g[13],
		 g[14], g[15]);
}

/* UTF-16LE (BMP only) to UTF-8. */
static void name_utf8(const unsigned char *u, size_t units, char *out, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < units; i++) {
		unsigned int c = u[2 * i] | u[2 * i + 1] << 8;

		if (!c)
			break;
		if (c < 0x80 && o + 1 < len) {
			out[o++] = (char)c;
		} else if (c < 0x800 && o + 2 < len) {
			out[o++] = (char)(0xC0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3F));
		} else if (o + 3 < len) {
			out[o++] = (char)(0xE0 | c >> 12);
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
			out[o++] = (char)(0x80 | (c & 0x3F));
		}
	}
	out[o] = 0;
}

static void trim_label(const unsigned char *src, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n && src[i] && isprint(src[i]); i++)
		out[i] = (char)src[i];
	out[i] = 0;
	while (i && out[i - 1] == ' ')
		out[--i] = 0;
	if (!strcmp(out, "NO NAME"))
		out[0] = 0;
}

/* Looks at the first 2 KiB of a partition for a FAT boot sector or an ext superblock. */
static void probe_fs(int fd, struct part *p)
{
	unsigned char b[2048];

	p->info.fs = RIG_PART_FS_UNKNOWN;
	if (p->info.size < sizeof(b) || rd(fd, b, sizeof(b), p->info.start))
		return;
	if (b[1024 + 0x38] == 0x53 && b[1024 + 0x39] == 0xEF) {
		p->info.fs = RIG_PART_FS_EXT;
		trim_label(b + 1024 + 0x78, 16, p->label);
		return;
	}
	if (b[510] == 0x55 && b[511] == 0xAA) {
		if (!memcmp(b + 0x52, "FAT32", 5)) {
			p->info.fs = RIG_PART_FS_FAT;
			trim_label(b + 0x47, 11, p->label);
		} else if (!memcmp(b + 0x36, "FAT", 3)) {
			p->info.fs = RIG_PART_FS_FAT;
			trim_label(b + 0x2B, 11, p->label);
		}
	}
}

static struct part *add(struct rig_part_table *t, struct fl_err *e)
{
	struct part *p;

	if (t->n == MAX_PARTS) {
		fl_err_set(e, -EINVAL, "more than %d partitions", MAX_PARTS);
		return NULL;
	}
	p = &t->p[t->n++];
	memset(p, 0, sizeof(*p));
	p->info.type_guid = p->guid;
	p->info.name = p->name;
	p->info.fs_label = p->label;
	return p;
}

static int parse_gpt(int fd, uint64_t disk, const char *path, struct rig_part_table *t,
		     struct fl_err *e)
{
	static const unsigned int sizes[] = { 512, 4096 };
	unsigned char h[512], *ents = NULL;
	unsigned int ss = 0, i;
	uint64_t first, last, elba;
	uint32_t nent, esz, hsz, crc;

	for (i = 0; i < 2; i++) {
		if (rd(fd, h, sizeof(h), sizes[i]) == 0 && !memcmp(h, "EFI PART", 8)) {
			ss = sizes[i];
			break;
		}
	}
	if (!ss)
		return fl_err_set(e, -EINVAL, "'%s': protective MBR but no GPT header", path);
	hsz = le32(h + 12);
	if (hsz < 92 || hsz > sizeof(h))
		return fl_err_set(e, -EINVAL, "'%s': bad GPT header size %u", path, hsz);
	crc = le32(h + 16);
	memset(h + 16, 0, 4);
	if (crc32(0, h, hsz) != crc)
		return fl_err_set(e, -EINVAL, "'%s': GPT header checksum mismatch", path);
	first = le64(h + 40);
	last = le64(h + 48);
	elba = le64(h + 72);
	nent = le32(h + 80);
	esz = le32(h + 84);
	/* last < size / ss, so no LBA below it overflows when turned into bytes */
	if (esz < 128 || esz > 4096 || nent > 1024 || first > last ||
	    last >= (disk ? disk : UINT64_MAX) / ss)
		return fl_err_set(e, -EINVAL, "'%s': implausible GPT header (entries %u x %u, "
				  "usable LBA %" PRIu64 "-%" PRIu64 ")", path, nent, esz, first,
				  last);
	ents = malloc((size_t)nent * esz);
	if (!ents)
		return fl_err_set(e, -ENOMEM, "out of memory");
	if (rd(fd, ents, (size_t)nent * esz, elba * ss)) {
		free(ents);
		return fl_err_set(e, -EINVAL, "'%s': GPT entries unreadable", path);
	}
	if (crc32(0, ents, nent * esz) != le32(h + 88)) {
		free(ents);
		return fl_err_set(e, -EINVAL, "'%s': GPT entry array checksum mismatch", path);
	}
	t->scheme = RIG_PART_GPT;
	for (i = 0; i < nent; i++) {
		const unsigned char *en = ents + (size_t)i * esz;
		static const unsigned char zero[16];
		uint64_t s, l;
		struct part *p;

		if (!memcmp(en, zero, 16))
			continue;
		s = le64(en + 32);
		l = le64(en + 40);
		if (s < first || l > last || l < s) {
			free(ents);
			return fl_err_set(e, -EINVAL, "'%s': GPT partition %u (LBA %" PRIu64 "-%"
					  PRIu64 ") lies outside the usable area", path, i + 1, s, l);
		}
		p = add(t, e);
		if (!p) {
			free(ents);
			return e->code;
		}
		p->info.index = i + 1;
		p->info.start = s * ss;
		p->info.size = (l - s + 1) * ss;
		p->info.bootable = (le64(en + 48) & 4) != 0;
		guid_str(en, p->guid);
		name_utf8(en + 56, (esz - 56) / 2 < 36 ? (esz - 56) / 2 : 36, p->name,
			  sizeof(p->name));
	}
	free(ents);
	return 0;
}

static bool is_ext(unsigned int type)
{
	return type == 0x05 || type == 0x0F || type == 0x85;
}

static int parse_mbr(int fd, const unsigned char *mbr, uint64_t disk, const char *path,
		     struct rig_part_table *t, struct fl_err *e)
{
	uint64_t ext_start = 0, ext_size = 0;
	unsigned int i, idx = 5, hops = 0;

	t->scheme = RIG_PART_MBR;
	for (i = 0; i < 4; i++) {
		const unsigned char *en = mbr + 446 + 16 * i;
		unsigned int type = en[4];
		uint64_t s = le32(en + 8), n = le32(en + 12);
		struct part *p;

		if (en[0] != 0 && en[0] != 0x80)
			return fl_err_set(e, -EINVAL, "'%s': MBR entry %u has bad boot flag 0x%02x",
					  path, i + 1, en[0]);
		if (!type || !n)
			continue;
		p = add(t, e);
		if (!p)
			return e->code;
		p->info.index = i + 1;
		p->info.start = s * 512;
		p->info.size = n * 512;
		p->info.mbr_type = type;
		p->info.bootable = en[0] == 0x80;
		if (is_ext(type)) {
			ext_start = s;
			ext_size = n;
		}
	}
	/* Logical partitions: a chain of EBRs, each pointing to the next (relative to ext). */
	if (ext_start) {
		uint64_t ebr = ext_start;

		for (;;) {
			unsigned char b[512];
			struct part *p;
			uint64_t s, n, next;

			if (++hops > MAX_PARTS)
				return fl_err_set(e, -EINVAL, "'%s': extended partition chain loops",
						  path);
			if (rd(fd, b, sizeof(b), ebr * 512) || b[510] != 0x55 || b[511] != 0xAA)
				return fl_err_set(e, -EINVAL, "'%s': bad extended boot record at "
						  "LBA %" PRIu64, path, ebr);
			s = le32(b + 446 + 8);
			n = le32(b + 446 + 12);
			if (b[446 + 4] && n) {
				p = add(t, e);
				if (!p)
					return e->code;
				p->info.index = idx++;
				p->info.start = (ebr + s) * 512;
				p->info.size = n * 512;
				p->info.mbr_type = b[446 + 4];
				p->info.bootable = b[446] == 0x80;
				if ((ebr + s + n) > ext_start + ext_size)
					return fl_err_set(e, -EINVAL, "'%s': logical partition %u "
							  "exceeds the extended partition", path,
							  p->info.index);
			}
			next = le32(b + 446 + 16 + 8);
			if (!b[446 + 16 + 4] || !next)
				break;
			if (ext_start + next <= ebr)
				return fl_err_set(e, -EINVAL, "'%s': extended partition chain loops",
						  path);
			ebr = ext_start + next;
		}
	}
	(void)disk;
	return 0;
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

int rig_part_table_read(const char *path, struct rig_part_table **out, char *err,
			size_t errlen)
{
	struct rig_part_table *t;
	unsigned char mbr[512];
	struct fl_err e;
	struct stat st;
	uint64_t disk = 0;
	bool gpt = false;
	int fd, rc, i;
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
	t = calloc(1, sizeof(*t));
	if (!t) {
		close(fd);
		return fl_err_set(&e, -ENOMEM, "out of memory");
	}
	rc = rd(fd, mbr, sizeof(mbr), 0);
	if (rc) {
		rc = fl_err_set(&e, rc == -ENODATA ? -EINVAL : rc, "'%s': cannot read the first "
				"sector%s", path, rc == -ENODATA ? " (file too short)" : "");
		goto out;
	}
	if (mbr[510] != 0x55 || mbr[511] != 0xAA) {
		rc = fl_err_set(&e, -EINVAL, "'%s' has no partition table (no 0x55AA signature)",
				path);
		goto out;
	}
	for (i = 0; i < 4; i++)
		if (mbr[446 + 16 * i + 4] == 0xEE)
			gpt = true;
	rc = gpt ? parse_gpt(fd, disk, path, t, &e) : parse_mbr(fd, mbr, disk, path, t, &e);
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
