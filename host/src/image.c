/* SPDX-License-Identifier: MIT */
/*
 * rig_image_inspect(): what an OS image is. The flash engine checks and decodes the image
 * (so inspect refuses exactly what `rigor flash` refuses, with the same words), libblkid
 * reads the partition table and file-system labels, and the engine's file reader (debugfs,
 * mtools) fetches os-release and the boot loader's files. Everything found is kept in one
 * jansson document: the getters read it and rig_image_to_json() prints it, so the JSON
 * and the C view cannot disagree.
 */
#define _GNU_SOURCE     /* memmem, strcasestr */
#define LOG_PREFIX "image"
#include <blkid/blkid.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "rig_flash.h"
#include "rig_image.h"

#define SCHEMA "rigor.image/1"
/* One file read from a partition when no deadline bounds it. */
#define CHILD_MS 30000

struct rig_image {
	json_t *doc;
};

/* The state of one inspection. */
struct insp {
	struct rig_ctx *ctx;
	const char *path;
	const char *raw;        /* the raw image: path, o->decoded or the temporary file */
	int64_t end;            /* rig_now_ms() deadline, INT64_MAX for none */
	json_t *doc;
	json_t *parts;          /* partition_table.partitions, borrowed from doc */
	/* FAT partitions listed once (rig_part_file_list()), for part_has() */
	struct {
		json_int_t num;
		char *list;         /* NULL: listing failed, ask per file */
	} fat[8];
	size_t n_fat;
};

void rig_image_opts_init(struct rig_image_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->timeout_ms = -1;
}

/* ---- strings from the image into JSON ---- */

/* Length of the valid UTF-8 sequence at @s (of @n bytes), 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned int c;

	if (s[0] < 0x80)
		return s[0] ? 1 : 0;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2, c = s[0] & 0x1F;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3, c = s[0] & 0x0F;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4, c = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3F);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
	    (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	return len;
}

/*
 * A JSON string of @n bytes at @s: valid UTF-8 is kept, any other byte (and NUL, which
 * many JSON readers refuse even escaped) becomes the four characters \xNN, as the run
 * reports show console bytes.
 */
static json_t *jstr_n(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	char *buf = malloc(n * 4 + 1);
	size_t i = 0, o = 0;
	json_t *j;

	if (!buf)
		return NULL;
	while (i < n) {
		size_t k = utf8_seq(u + i, n - i);

		if (k) {
			memcpy(buf + o, u + i, k);
			o += k;
			i += k;
		} else {
			o += (size_t)snprintf(buf + o, 5, "\\x%02X", u[i]);
			i++;
		}
	}
	j = json_stringn(buf, o);
	free(buf);
	return j;
}

static json_t *jstr(const char *s)
{
	return jstr_n(s ? s : "", s ? strlen(s) : 0);
}

static const char *jget_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ---- errors ---- */

static int left_ms(const struct insp *in)
{
	int64_t left;

	if (in->end == INT64_MAX)
		return -1;
	left = in->end - rig_now_ms();
	return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static int stopped(struct insp *in, const char *doing)
{
	if (rig_ctx_cancelled(in->ctx))
		return rig_ctx_fail(in->ctx, RIG_E_INTR, "interrupted while %s '%s'", doing,
				    in->path);
	if (in->end != INT64_MAX && rig_now_ms() >= in->end)
		return rig_ctx_fail(in->ctx, RIG_E_TIMEOUT, "timed out while %s '%s'",
				    doing, in->path);
	return 0;
}

/* ---- the file as given ---- */

static int hash_file(struct insp *in, char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE], *buf;
	unsigned int mdlen = 0, i;
	EVP_MD_CTX *mc;
	int fd, rc = 0;
	ssize_t n;

	fd = open(in->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return rig_ctx_fail(in->ctx, errno == ENOENT ? RIG_E_NOENT : RIG_E_IO,
				    "cannot open '%s': %s", in->path, strerror(errno));
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	buf = malloc(1u << 20);
	mc = EVP_MD_CTX_new();
	if (!buf || !mc || !EVP_DigestInit_ex(mc, EVP_sha256(), NULL)) {
		rc = rig_ctx_fail(in->ctx, RIG_E_NOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		n = read(fd, buf, 1u << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = rig_ctx_fail(in->ctx, RIG_E_IO, "cannot read '%s': %s", in->path,
					  strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(mc, buf, (size_t)n);
		rc = stopped(in, "hashing");
		if (rc)
			goto out;
	}
	EVP_DigestFinal_ex(mc, md, &mdlen);
	for (i = 0; i < mdlen && i < 32; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * i] = 0;
out:
	EVP_MD_CTX_free(mc);
	free(buf);
	close(fd);
	return rc;
}

/*
 * Decodes the image into @dir/image.raw with the flash engine: the same decoders, the same
 * refusals (text, ELF, qcow2 inside a stream, corrupt or truncated data) and the same
 * cancel and deadline handling as a flash. A new file, grown to the image and written only
 * where the image is not zero, so it is sparse.
 */
static int decode(struct insp *in, const char *tmp, uint64_t *raw_size)
{
	struct rig_flash_opts o;
	struct rig_flash_stats st;
	int rc;

	rig_flash_opts_init(&o);
	o.create = true;
	o.verify = false;
	o.no_bmap = true;
	o.threads = 0;
	o.timeout_ms = left_ms(in);
	rig_dbg(in->ctx, "decoding '%s' to '%s'", in->path, tmp);
	rc = rig_flash_image(in->ctx, in->path, tmp, &o, &st);
	if (rc == RIG_E_NOSPC) {
		char err[RIG_ERRMSG_MAX];

		/* the temporary directory is our trouble, not a card too small */
		snprintf(err, sizeof(err), "%s", rig_ctx_errmsg(in->ctx));
		rig_ctx_clear_error(in->ctx);
		return rig_ctx_fail(in->ctx, RIG_E_IO, "no room to decode '%s' in the "
				    "temporary directory (%s); set TMPDIR", in->path, err);
	}
	if (rc < 0)
		return rc;
	*raw_size = st.image_size;
	return 0;
}

/* ---- partitions (libblkid) ---- */

static const struct {
	const char *type, *name;
} type_names[] = {
	{ "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "EFI System" },
	{ "0fc63daf-8483-4772-8e79-3d69d8477de4", "Linux filesystem" },
	{ "21686148-6449-6e6f-744e-656564454649", "BIOS boot" },
	{ "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7", "Microsoft basic data" },
	{ "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", "Linux swap" },
	{ "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "Linux root (x86-64)" },
	{ "b921b045-1df0-41c3-af44-4c6f280d3fae", "Linux root (ARM-64)" },
	{ "e6d6d379-f507-44c2-a23c-238f2a3df928", "Linux LVM" },
	{ "0x01", "FAT12" },
	{ "0x04", "FAT16 <32M" },
	{ "0x05", "Extended" },
	{ "0x06", "FAT16" },
	{ "0x07", "HPFS/NTFS/exFAT" },
	{ "0x0b", "W95 FAT32" },
	{ "0x0c", "W95 FAT32 (LBA)" },
	{ "0x0e", "W95 FAT16 (LBA)" },
	{ "0x0f", "W95 Ext'd (LBA)" },
	{ "0x82", "Linux swap" },
	{ "0x83", "Linux" },
	{ "0x85", "Linux extended" },
	{ "0x8e", "Linux LVM" },
	{ "0xda", "Non-FS data" },
	{ "0xee", "GPT" },
	{ "0xef", "EFI (FAT-12/16/32)" },
};

static const char *type_name(const char *type)
{
	for (size_t i = 0; i < RIG_ARRAY_SIZE(type_names); i++)
		if (!strcasecmp(type_names[i].type, type))
			return type_names[i].name;
	return "";
}

/* TYPE, LABEL and UUID of the file system in [off, off + size) of @fd, into @p. */
static void probe_fs(int fd, uint64_t off, uint64_t size, json_t *p)
{
	blkid_probe pr = blkid_new_probe();
	const char *v;

	if (!pr)
		return;
	if (blkid_probe_set_device(pr, fd, (blkid_loff_t)off, (blkid_loff_t)size) == 0) {
		blkid_probe_enable_superblocks(pr, 1);
		blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_LABEL | BLKID_SUBLKS_TYPE |
						  BLKID_SUBLKS_UUID);
		if (blkid_do_safeprobe(pr) == 0) {
			if (blkid_probe_lookup_value(pr, "TYPE", &v, NULL) == 0)
				json_object_set_new(p, "fs", jstr(v));
			if (blkid_probe_lookup_value(pr, "LABEL", &v, NULL) == 0)
				json_object_set_new(p, "label", jstr(v));
			if (blkid_probe_lookup_value(pr, "UUID", &v, NULL) == 0)
				json_object_set_new(p, "uuid", jstr(v));
		}
	}
	blkid_free_probe(pr);
}

static int read_table(struct insp *in, uint64_t raw_size)
{
	blkid_probe pr = NULL;
	blkid_partlist ls;
	blkid_parttable tab;
	json_t *table;
	int fd, n, rc = 0;

	fd = open(in->raw, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return rig_ctx_fail(in->ctx, RIG_E_IO, "cannot open '%s': %s", in->raw,
				    strerror(errno));
	pr = blkid_new_probe();
	if (!pr || blkid_probe_set_device(pr, fd, 0, (blkid_loff_t)raw_size) != 0) {
		rc = rig_ctx_fail(in->ctx, RIG_E_IO, "libblkid cannot read '%s'", in->raw);
		goto out;
	}
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
	ls = blkid_probe_get_partitions(pr);
	tab = ls ? blkid_partlist_get_table(ls) : NULL;
	if (!tab) {
		/* A file system image without a table (an ext4 rootfs update payload) says so. */
		json_t *bare = json_object();
		const char *fs;

		probe_fs(fd, 0, raw_size, bare);
		fs = jget_str(bare, "fs");
		if (fs)
			rc = rig_ctx_fail(in->ctx, RIG_E_INVAL, "'%s' has no partition table: "
					  "it is a bare %s file system, not a disk image", in->path,
					  fs);
		else
			rc = rig_ctx_fail(in->ctx, RIG_E_INVAL, "'%s' has no partition table "
					  "(neither MBR nor GPT)", in->path);
		json_decref(bare);
		goto out;
	}
	table = json_object();
	json_object_set_new(in->doc, "partition_table", table);
	json_object_set_new(table, "type", jstr(blkid_parttable_get_type(tab)));
	json_object_set_new(table, "id", jstr(blkid_parttable_get_id(tab)));
	in->parts = json_array();
	json_object_set_new(table, "partitions", in->parts);
	n = blkid_partlist_numof_partitions(ls);
	for (int i = 0; i < n; i++) {
		blkid_partition par = blkid_partlist_get_partition(ls, i);
		uint64_t start = (uint64_t)blkid_partition_get_start(par) * 512;
		uint64_t size = (uint64_t)blkid_partition_get_size(par) * 512;
		unsigned long long flags = blkid_partition_get_flags(par);
		const char *ts = blkid_partition_get_type_string(par);
		char type[40];
		json_t *p = json_object();
		bool gpt = !strcmp(blkid_parttable_get_type(tab), "gpt");

		if (ts && *ts)
			snprintf(type, sizeof(type), "%s", ts);
		else
			snprintf(type, sizeof(type), "0x%02x", blkid_partition_get_type(par));
		for (char *c = type; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		json_object_set_new(p, "number", json_integer(blkid_partition_get_partno(par)));
		json_object_set_new(p, "start", json_integer((json_int_t)start));
		json_object_set_new(p, "size", json_integer((json_int_t)size));
		json_object_set_new(p, "type", jstr(type));
		json_object_set_new(p, "type_name", jstr(type_name(type)));
		json_object_set_new(p, "name", jstr(blkid_partition_get_name(par)));
		json_object_set_new(p, "bootable", json_boolean(gpt ? (flags & 4) : (flags & 0x80)));
		json_object_set_new(p, "fs", jstr(""));
		json_object_set_new(p, "label", jstr(""));
		json_object_set_new(p, "uuid", jstr(""));
		if (!blkid_partition_is_extended(par))
			probe_fs(fd, start, size, p);
		json_array_append_new(in->parts, p);
	}
out:
	blkid_free_probe(pr);
	close(fd);
	return rc;
}

/* ---- files inside partitions ---- */

/* Reads @file from partition @num; 0 and *data (free()) or a negative errno. */
static int part_read(struct insp *in, json_int_t num, const char *file, char **data, size_t *len)
{
	char part[24], err[256];
	int tmo = left_ms(in);

	snprintf(part, sizeof(part), "%lld", (long long)num);
	*data = NULL;
	if (tmo == 0)
		return -ETIMEDOUT;
	if (rig_ctx_cancelled(in->ctx))
		return -EINTR;
	return rig_part_file_read(in->raw, part, file, data, len, tmo < 0 ? CHILD_MS : tmo, err,
				  sizeof(err));
}

/* The listing of FAT partition @num, made once per inspection; NULL if it cannot be had. */
static const char *fat_list(struct insp *in, json_int_t num)
{
	char part[24], err[256];
	size_t i, len;
	char *list = NULL;
	int tmo = left_ms(in);

	for (i = 0; i < in->n_fat; i++)
		if (in->fat[i].num == num)
			return in->fat[i].list;
	if (tmo == 0 || rig_ctx_cancelled(in->ctx))
		return NULL;
	snprintf(part, sizeof(part), "%lld", (long long)num);
	if (rig_part_file_list(in->raw, part, &list, &len, tmo < 0 ? CHILD_MS : tmo, err,
			       sizeof(err)) < 0)
		list = NULL;
	if (in->n_fat < RIG_ARRAY_SIZE(in->fat)) {
		in->fat[in->n_fat].num = num;
		in->fat[in->n_fat++].list = list;
	} else {
		free(list);
		list = NULL;
	}
	return list;
}

/* True if the listing @list holds the file @file (case-insensitive, as FAT compares). */
static bool listed(const char *list, const char *file)
{
	size_t n = strlen(file);
	const char *l;

	for (l = list; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
		if (!strncasecmp(l, file, n) && (l[n] == '\n' || l[n] == 0))
			return true;
	return false;
}

/*
 * Whether FAT partition @num holds @file: from its listing (one mdir for every question,
 * where each question cost a reader process), else by reading the file.
 */
static bool part_has(struct insp *in, json_int_t num, const char *file)
{
	const char *list = fat_list(in, num);
	char *data;
	size_t len;
	bool yes;

	if (list)
		return listed(list, file);
	yes = part_read(in, num, file, &data, &len) == 0;
	free(data);
	return yes;
}

/* Partition string field, "" if absent. */
static const char *pstr(const json_t *p, const char *key)
{
	const char *s = jget_str(p, key);

	return s ? s : "";
}

static bool named(const json_t *p, const char *want)
{
	return !strcasecmp(pstr(p, "name"), want) || !strcasecmp(pstr(p, "label"), want);
}

static bool is_ext(const json_t *p)
{
	return !strncmp(pstr(p, "fs"), "ext", 3);
}

static bool is_fat(const json_t *p)
{
	return !strcmp(pstr(p, "fs"), "vfat");
}

/*
 * os-release(5): KEY=VALUE lines, the value optionally in single or double quotes, with
 * shell-style backslash escapes in double quotes and unquoted; '#' starts a comment line.
 * Returns the number of keys stored in @fields.
 */
static int parse_os_release(const char *s, size_t n, json_t *fields)
{
	const char *end = s + n;
	int count = 0;

	while (s < end) {
		const char *k = s, *ke;
		char *val = malloc((size_t)(end - s) + 1);
		size_t vn = 0;
		char q = 0;

		if (!val)
			return count;
		while (s < end && (*s == ' ' || *s == '\t'))
			s++;
		k = s;
		while (s < end && (isalnum((unsigned char)*s) || *s == '_'))
			s++;
		ke = s;
		if (ke == k || s >= end || *s != '=') {
			while (s < end && *s != '\n')   /* comment, blank or malformed line */
				s++;
			s += s < end;
			free(val);
			continue;
		}
		s++;
		while (s < end) {
			char c = *s;

			if (!q && (c == '\n'))
				break;
			if (!q && (c == '"' || c == '\'')) {
				q = c;
			} else if (q && c == q) {
				q = 0;
			} else if (c == '\\' && q != '\'' && s + 1 < end) {
				char nx = s[1];

				/* in double quotes only these are escapes; unquoted, any char */
				if (!q || nx == '"' || nx == '\\' || nx == '$' || nx == '`' || nx == '\n') {
					if (nx != '\n')
						val[vn++] = nx;
					s += 2;
					continue;
				}
				val[vn++] = c;
			} else {
				val[vn++] = c;
			}
			s++;
		}
		s += s < end;
		if (!q)   /* unquoted trailing blanks are not part of the value */
			while (vn && (val[vn - 1] == ' ' || val[vn - 1] == '\t' || val[vn - 1] == '\r'))
				vn--;
		{
			char key[128];

			snprintf(key, sizeof(key), "%.*s", (int)(ke - k), k);
			json_object_set_new(fields, key, jstr_n(val, vn));
			count++;
		}
		free(val);
	}
	return count;
}

static int os_release_from(struct insp *in, const json_t *p, const char *file)
{
	json_int_t num = json_integer_value(json_object_get(p, "number"));
	json_t *fields, *o;
	char *data;
	size_t len;
	int rc = part_read(in, num, file, &data, &len);

	if (rc < 0)
		return rc == -EINTR || rc == -ETIMEDOUT ? rc : 0;
	fields = json_object();
	if (parse_os_release(data, len, fields) == 0) {
		/* empty, or a symbolic link debugfs did not follow */
		json_decref(fields);
		free(data);
		return 0;
	}
	free(data);
	o = json_object();
	json_object_set_new(o, "partition", json_integer(num));
	json_object_set_new(o, "path", jstr(file));
	json_object_set_new(o, "fields", fields);
	json_object_set_new(in->doc, "os_release", o);
	return 1;
}

static int find_os_release(struct insp *in)
{
	static const char *const roots[] = { "resin-rootA", "balena-rootA", "flash-rootA",
					     "resin-root", "balena-root", NULL };
	static const char *const files[] = { "/etc/os-release", "/usr/lib/os-release" };
	size_t n = json_array_size(in->parts), i, k, pass;
	const char *ver;
	json_t *fields;
	int rc = 0;

	/* pass 0: the named root partitions; 1: "*root*"; 2: any other ext partition */
	for (pass = 0; pass < 3 && rc == 0; pass++) {
		for (i = 0; i < n && rc == 0; i++) {
			const json_t *p = json_array_get(in->parts, i);
			bool pick = false;

			if (!is_ext(p))
				continue;
			for (k = 0; pass == 0 && roots[k]; k++)
				pick = pick || named(p, roots[k]);
			if (pass == 1)
				pick = strcasestr(pstr(p, "name"), "root") ||
				       strcasestr(pstr(p, "label"), "root");
			if (pass == 2)
				pick = true;
			for (k = 0; pick && k < 2 && rc == 0; k++)
				rc = os_release_from(in, p, files[k]);
		}
	}
	/* balenaOS keeps a copy on its boot partition; use it only when no root had one */
	for (i = 0; i < n && rc == 0; i++) {
		const json_t *p = json_array_get(in->parts, i);

		if (is_fat(p) && (named(p, "resin-boot") || named(p, "balena-boot") ||
				  named(p, "flash-boot")))
			rc = os_release_from(in, p, "/os-release");
	}
	if (rc < 0)
		return rig_ctx_fail(in->ctx, rc == -EINTR ? RIG_E_INTR : RIG_E_TIMEOUT,
				    "%s while reading os-release of '%s'",
				    rc == -EINTR ? "interrupted" : "timed out", in->path);
	fields = json_object_get(json_object_get(in->doc, "os_release"), "fields");
	ver = jget_str(fields, "VERSION");
	if (!ver)
		ver = jget_str(fields, "VERSION_ID");
	if (ver)
		json_object_set_new(in->doc, "version", json_string(ver));
	return 0;
}

static void set_bootloader(struct insp *in, const char *kind, json_int_t part, const char *file)
{
	json_t *b = json_object();

	json_object_set_new(b, "kind", json_string(kind));
	if (part)
		json_object_set_new(b, "partition", json_integer(part));
	if (file)
		json_object_set_new(b, "file", json_string(file));
	json_object_set_new(in->doc, "bootloader", b);
}

/* The removable-media EFI loaders, by architecture. */
static const char *const efi_files[] = { "/EFI/BOOT/BOOTX64.EFI", "/EFI/BOOT/BOOTAA64.EFI",
					 "/EFI/BOOT/BOOTIA32.EFI", "/EFI/BOOT/BOOTARM.EFI",
					 "/EFI/BOOT/BOOTRISCV64.EFI" };

static bool find_efi(struct insp *in, const json_t *p, json_int_t num)
{
	for (size_t k = 0; k < RIG_ARRAY_SIZE(efi_files); k++) {
		char *data;
		size_t len;
		const char *kind = "uefi";

		if (!part_has(in, num, efi_files[k]) ||
		    part_read(in, num, efi_files[k], &data, &len) != 0)
			continue;
		if (memmem(data, len, "systemd-boot", 12))
			kind = "systemd-boot";
		else if (memmem(data, len, "GRUB", 4))
			kind = "grub-efi";
		free(data);
		set_bootloader(in, kind, num, efi_files[k]);
		(void)p;
		return true;
	}
	return false;
}

static void find_bootloader(struct insp *in)
{
	static const char *const uboot[] = { "/boot.scr", "/u-boot.bin", "/extlinux/extlinux.conf" };
	size_t n = json_array_size(in->parts), i, k;
	unsigned char mbr[512];
	bool code = false;
	int fd;

	for (i = 0; i < n; i++) {
		const json_t *p = json_array_get(in->parts, i);

		if (is_fat(p) && find_efi(in, p, json_integer_value(json_object_get(p, "number"))))
			return;
	}
	for (i = 0; i < n; i++) {
		const json_t *p = json_array_get(in->parts, i);
		json_int_t num = json_integer_value(json_object_get(p, "number"));

		if (!is_fat(p) || !part_has(in, num, "/config.txt"))
			continue;
		if (part_has(in, num, "/start4.elf") || part_has(in, num, "/start.elf") ||
		    part_has(in, num, "/start_cd.elf")) {
			set_bootloader(in, "raspberrypi", num, "/config.txt");
			return;
		}
	}
	for (i = 0; i < n; i++) {
		const json_t *p = json_array_get(in->parts, i);
		json_int_t num = json_integer_value(json_object_get(p, "number"));

		for (k = 0; is_fat(p) && k < RIG_ARRAY_SIZE(uboot); k++)
			if (part_has(in, num, uboot[k])) {
				set_bootloader(in, "u-boot", num, uboot[k]);
				return;
			}
	}
	/* Legacy BIOS: the first 440 bytes of the MBR are boot code (zeros when unused). */
	fd = open(in->raw, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd >= 0 && pread(fd, mbr, sizeof(mbr), 0) == (ssize_t)sizeof(mbr))
		for (i = 0; i < 440 && !code; i++)
			code = mbr[i] != 0;
	if (fd >= 0)
		close(fd);
	if (code && memmem(mbr, 440, "GRUB", 4))
		set_bootloader(in, "grub-bios", 0, NULL);
	else
		set_bootloader(in, code ? "bios" : "none", 0, NULL);
}

static void find_balena(struct insp *in)
{
	static const char *const prefixes[] = { "resin-", "balena-", "flash-" };
	static const char *const boots[] = { "resin-boot", "balena-boot", "flash-boot" };
	size_t n = json_array_size(in->parts), i, k;
	json_int_t boot = 0;
	bool shaped = false;
	json_t *b;

	for (i = 0; i < n; i++) {
		const json_t *p = json_array_get(in->parts, i);

		for (k = 0; k < RIG_ARRAY_SIZE(prefixes); k++)
			shaped = shaped || !strncasecmp(pstr(p, "name"), prefixes[k],
							strlen(prefixes[k])) ||
				 !strncasecmp(pstr(p, "label"), prefixes[k], strlen(prefixes[k]));
		for (k = 0; !boot && k < RIG_ARRAY_SIZE(boots); k++)
			if (named(p, boots[k]))
				boot = json_integer_value(json_object_get(p, "number"));
	}
	if (!shaped)
		return;
	b = json_object();
	json_object_set_new(in->doc, "balena", b);
	if (boot) {
		char *data;
		size_t len;

		json_object_set_new(b, "boot_partition", json_integer(boot));
		if (part_read(in, boot, "/device-type.json", &data, &len) == 0) {
			json_t *dt = json_loadb(data, len, 0, NULL);
			const char *slug = jget_str(dt, "slug");

			if (slug) {
				json_object_set_new(b, "device_type", jstr(slug));
				json_object_set_new(b, "device_type_from", json_string("device-type.json"));
			}
			json_decref(dt);
			free(data);
		}
		json_object_set_new(b, "config_json", json_boolean(part_has(in, boot, "/config.json")));
	}
	if (!json_object_get(b, "device_type")) {
		const char *slug = jget_str(json_object_get(json_object_get(in->doc, "os_release"),
							    "fields"), "SLUG");

		if (slug) {
			json_object_set_new(b, "device_type", json_string(slug));
			json_object_set_new(b, "device_type_from", json_string("os-release SLUG"));
		}
	}
}

/* ---- the call ---- */

static int inspect(struct insp *in, const struct rig_image_opts *o, char *tmpdir, size_t tmplen)
{
	enum rig_flash_format fmt;
	char hex[65], tmp[4200];
	const char *base = strrchr(in->path, '/');
	uint64_t raw_size = 0;
	struct stat st;
	int rc;

	rc = rig_flash_image_check(in->ctx, in->path, &fmt);
	if (rc < 0)
		return rc;
	if (stat(in->path, &st) < 0)
		return rig_ctx_fail(in->ctx, RIG_E_IO, "cannot stat '%s': %s", in->path,
				    strerror(errno));
	json_object_set_new(in->doc, "schema", json_string(SCHEMA));
	json_object_set_new(in->doc, "path", jstr(in->path));
	json_object_set_new(in->doc, "name", jstr(base && base[1] ? base + 1 : in->path));
	json_object_set_new(in->doc, "format", json_string(rig_flash_format_name(fmt)));
	if (S_ISBLK(st.st_mode)) {
		int fd = open(in->path, O_RDONLY | O_CLOEXEC);
		off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : 0;

		if (fd >= 0)
			close(fd);
		st.st_size = end > 0 ? end : 0;
	}
	json_object_set_new(in->doc, "size", json_integer((json_int_t)st.st_size));
	if (o->sha256 && strlen(o->sha256) == 64) {
		/* the flash engine hashed it as it decoded it */
		snprintf(hex, sizeof(hex), "%s", o->sha256);
	} else {
		rc = hash_file(in, hex);
		if (rc)
			return rc;
	}
	json_object_set_new(in->doc, "sha256", json_string(hex));
	/* every key is there, null until found, so readers need not guess the shape */
	json_object_set_new(in->doc, "raw_size", json_integer(0));
	json_object_set_new(in->doc, "decoded", json_string("no"));
	json_object_set_new(in->doc, "partition_table", json_null());
	json_object_set_new(in->doc, "os_release", json_null());
	json_object_set_new(in->doc, "version", json_null());
	json_object_set_new(in->doc, "bootloader", json_null());
	json_object_set_new(in->doc, "balena", json_null());
	if (fmt == RIG_FLASH_FMT_RAW)
		raw_size = (uint64_t)st.st_size;
	if (o->shallow) {
		json_object_set_new(in->doc, "decoded", json_string("no"));
		json_object_set_new(in->doc, "raw_size", json_integer((json_int_t)raw_size));
		return 0;
	}
	if (o->decoded) {
		struct stat ds;

		in->raw = o->decoded;
		raw_size = o->raw_size;
		if (!raw_size && stat(o->decoded, &ds) == 0 && S_ISREG(ds.st_mode))
			raw_size = (uint64_t)ds.st_size;
		if (!raw_size) {
			int fd = open(o->decoded, O_RDONLY | O_CLOEXEC);
			off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : 0;

			if (fd >= 0)
				close(fd);
			raw_size = end > 0 ? (uint64_t)end : 0;
		}
		json_object_set_new(in->doc, "decoded", json_string("given"));
	} else if (fmt == RIG_FLASH_FMT_RAW) {
		in->raw = in->path;
		json_object_set_new(in->doc, "decoded", json_string("in-place"));
	} else {
		const char *dir = o->tmpdir ? o->tmpdir : getenv("TMPDIR");

		snprintf(tmpdir, tmplen, "%s/rigor-image-XXXXXX", dir && *dir ? dir : "/tmp");
		if (!mkdtemp(tmpdir)) {
			rc = rig_ctx_fail(in->ctx, RIG_E_IO, "cannot create a temporary "
					  "directory '%s' to decode '%s' in: %s", tmpdir, in->path,
					  strerror(errno));
			tmpdir[0] = 0;
			return rc;
		}
		snprintf(tmp, sizeof(tmp), "%s/image.raw", tmpdir);
		rc = decode(in, tmp, &raw_size);
		if (rc)
			return rc;
		in->raw = tmp;
		json_object_set_new(in->doc, "decoded", json_string("temporary-file"));
	}
	json_object_set_new(in->doc, "raw_size", json_integer((json_int_t)raw_size));
	rc = read_table(in, raw_size);
	if (rc == 0)
		rc = find_os_release(in);
	if (rc == 0) {
		find_bootloader(in);
		find_balena(in);
		rc = stopped(in, "inspecting");
	}
	in->raw = NULL;   /* tmp goes out of scope */
	return rc;
}

/*
 * A card given as the decoded image is read by libblkid, debugfs and mtools, each opening
 * and closing it once per file looked up. On the last close of a block device the kernel
 * drops its page cache, so each of them would read the same partition table, FAT and
 * superblocks from the card again (tens of MB at card speed). One descriptor held open for
 * the whole inspection keeps what the first reader fetched. Returns it, or -1.
 */
static int hold_open(const struct rig_image_opts *o)
{
	struct stat st;

	if (!o->decoded || o->shallow || stat(o->decoded, &st) < 0 || !S_ISBLK(st.st_mode))
		return -1;
	return open(o->decoded, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}

int rig_image_inspect(struct rig_ctx *ctx, const char *path, const struct rig_image_opts *o,
		      struct rig_image **out)
{
	struct rig_image_opts def;
	struct insp in = { .ctx = ctx, .path = path };
	char tmpdir[4096] = "";
	int rc, tmo, hold;

	*out = NULL;
	if (!o) {
		rig_image_opts_init(&def);
		o = &def;
	}
	rig_ctx_clear_error(ctx);
	tmo = rig_ctx_clamp(ctx, o->timeout_ms);
	in.end = tmo < 0 ? INT64_MAX : rig_now_ms() + tmo;
	in.doc = json_object();
	if (!in.doc)
		return rig_ctx_fail(ctx, RIG_E_NOMEM, "out of memory");
	hold = hold_open(o);
	rc = inspect(&in, o, tmpdir, sizeof(tmpdir));
	if (hold >= 0)
		close(hold);
	for (size_t i = 0; i < in.n_fat; i++)
		free(in.fat[i].list);
	if (tmpdir[0]) {
		char tmp[4200];

		snprintf(tmp, sizeof(tmp), "%s/image.raw", tmpdir);
		if (unlink(tmp) < 0 && errno != ENOENT)
			rig_warn(ctx, "cannot remove '%s': %s", tmp, strerror(errno));
		if (rmdir(tmpdir) < 0)
			rig_warn(ctx, "cannot remove '%s': %s", tmpdir, strerror(errno));
	}
	if (rc == 0) {
		*out = calloc(1, sizeof(**out));
		if (!*out)
			rc = rig_ctx_fail(ctx, RIG_E_NOMEM, "out of memory");
		else
			(*out)->doc = in.doc;
	}
	if (rc)
		json_decref(in.doc);
	return rc;
}

void rig_image_free(struct rig_image *img)
{
	if (!img)
		return;
	json_decref(img->doc);
	free(img);
}

/* ---- getters ---- */

const char *rig_image_path(const struct rig_image *img)
{
	return jget_str(img->doc, "path");
}

const char *rig_image_name(const struct rig_image *img)
{
	return jget_str(img->doc, "name");
}

const char *rig_image_format(const struct rig_image *img)
{
	return jget_str(img->doc, "format");
}

uint64_t rig_image_size(const struct rig_image *img)
{
	return (uint64_t)json_integer_value(json_object_get(img->doc, "size"));
}

uint64_t rig_image_raw_size(const struct rig_image *img)
{
	return (uint64_t)json_integer_value(json_object_get(img->doc, "raw_size"));
}

const char *rig_image_sha256(const struct rig_image *img)
{
	return jget_str(img->doc, "sha256");
}

const char *rig_image_version(const struct rig_image *img)
{
	return jget_str(img->doc, "version");
}

const char *rig_image_os_release(const struct rig_image *img, const char *key)
{
	return jget_str(json_object_get(json_object_get(img->doc, "os_release"), "fields"), key);
}

const char *rig_image_bootloader(const struct rig_image *img)
{
	return jget_str(json_object_get(img->doc, "bootloader"), "kind");
}

bool rig_image_is_balena(const struct rig_image *img)
{
	return json_is_object(json_object_get(img->doc, "balena"));
}

const char *rig_image_device_type(const struct rig_image *img)
{
	return jget_str(json_object_get(img->doc, "balena"), "device_type");
}

int rig_image_has_config_json(const struct rig_image *img)
{
	json_t *v = json_object_get(json_object_get(img->doc, "balena"), "config_json");

	return v ? json_is_true(v) : -1;
}

static json_t *parts_of(const struct rig_image *img)
{
	return json_object_get(json_object_get(img->doc, "partition_table"), "partitions");
}

size_t rig_image_part_count(const struct rig_image *img)
{
	return json_array_size(parts_of(img));
}

int rig_image_part_get(const struct rig_image *img, size_t i, struct rig_image_part *p)
{
	const json_t *j = json_array_get(parts_of(img), i);

	if (!j)
		return RIG_E_NOENT;
	p->number = (unsigned int)json_integer_value(json_object_get(j, "number"));
	p->start = (uint64_t)json_integer_value(json_object_get(j, "start"));
	p->size = (uint64_t)json_integer_value(json_object_get(j, "size"));
	p->type = pstr(j, "type");
	p->type_name = pstr(j, "type_name");
	p->name = pstr(j, "name");
	p->fs = pstr(j, "fs");
	p->label = pstr(j, "label");
	p->uuid = pstr(j, "uuid");
	p->bootable = json_is_true(json_object_get(j, "bootable"));
	return 0;
}

char *rig_image_to_json(const struct rig_image *img, int indent)
{
	return json_dumps(img->doc, JSON_INDENT(indent < 0 ? 0 : indent > 31 ? 31 : indent));
}
