/* SPDX-License-Identifier: MIT */
/*
 * zip holding exactly one image: libarchive lists the entries; the image entry is then read
 * in place from its offset (stored, or deflated with ISA-L), else through libarchive.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "flash_internal.h"

struct zip {
	struct archive *ar;        /* libarchive path */
	bool fast;                 /* the entry is read in place */
	int method;                /* 0 stored, 8 deflate */
	void *inflate;             /* fl_zip_inflate() state, NULL without ISA-L */
	uint64_t usize;            /* decoded size the directory gives */
	uint64_t dec_off;          /* decoded bytes returned so far */
	uint32_t crc_want, crc;
};

/* Entries in a zip's end-of-central-directory record, or -1 if there is none to read. */
static long zip_entries(int fd, uint64_t size)
{
	unsigned char t[65557];
	size_t n = size < sizeof(t) ? (size_t)size : sizeof(t), i;

	if (n < 22 || pread(fd, t, n, (off_t)(size - n)) != (ssize_t)n)
		return -1;
	for (i = n - 22 + 1; i-- > 0;)
		if (t[i] == 'P' && t[i + 1] == 'K' && t[i + 2] == 5 && t[i + 3] == 6)
			return (long)(t[i + 10] | t[i + 11] << 8);
	return -1;
}

/* Names that are never the image inside a zip: sidecars that release zips carry. */
static bool zip_sidecar(const char *name)
{
	static const char *const skip[] = { ".bmap", ".txt", ".md", ".sha1", ".sha256", ".sig",
					    ".asc", ".json", ".sha512", ".md5" };
	size_t n = strlen(name), i;

	if (!strncmp(name, "__MACOSX/", 9))
		return true;
	for (i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
		size_t k = strlen(skip[i]);

		if (n >= k && !strcasecmp(name + n - k, skip[i]))
			return true;
	}
	return false;
}

static struct archive *zip_open(const char *path, struct fl_err *e)
{
	struct archive *a = archive_read_new();

	if (!a) {
		fl_err_set(e, -ENOMEM, "out of memory");
		return NULL;
	}
	archive_read_support_format_zip_seekable(a);
	if (archive_read_open_filename(a, path, FL_IN_BUF) != ARCHIVE_OK) {
		fl_err_set(e, -EBADMSG, "corrupt or truncated zip '%s': %s", path,
			   archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

static uint32_t get16(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t get32(const unsigned char *p)
{
	return get16(p) | get16(p + 2) << 16;
}

static uint64_t get64(const unsigned char *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/*
 * Finds entry 'name' in the central directory (ZIP64 aware) and, if it is stored or (with
 * ISA-L) deflated, unencrypted, positions s->fd on its data (s->in_limit: its length). Returns true on success; false
 * means "use libarchive", never an error.
 */
static bool zip_fast(struct fl_src *s, const char *name)
{
	struct zip *z = s->priv;
	unsigned char tail[65557], *cd = NULL, lh[30];
	struct stat st;
	uint64_t cdoff, cdsize, pos;
	size_t n, i, nl = strlen(name);
	ssize_t r;
	bool ok = false;

	if (fstat(s->fd, &st) < 0 || st.st_size < 22)
		return false;
	n = (size_t)(st.st_size < (off_t)sizeof(tail) ? st.st_size : (off_t)sizeof(tail));
	if (pread(s->fd, tail, n, st.st_size - (off_t)n) != (ssize_t)n)
		return false;
	for (i = n - 22 + 1; i-- > 0;)
		if (get32(tail + i) == 0x06054b50)
			break;
	if (i == (size_t)-1)
		return false;
	cdsize = get32(tail + i + 12);
	cdoff = get32(tail + i + 16);
	if (cdoff == 0xFFFFFFFF || cdsize == 0xFFFFFFFF) {
		unsigned char z64[56];
		uint64_t zo;

		if (i < 20 || get32(tail + i - 20) != 0x07064b50)
			return false;
		zo = get64(tail + i - 20 + 8);
		if (pread(s->fd, z64, sizeof(z64), (off_t)zo) != (ssize_t)sizeof(z64) ||
		    get32(z64) != 0x06064b50)
			return false;
		cdsize = get64(z64 + 40);
		cdoff = get64(z64 + 48);
	}
	if (cdsize > (64u << 20) || cdoff + cdsize > (uint64_t)st.st_size)
		return false;
	cd = malloc(cdsize ? cdsize : 1);
	if (!cd || pread(s->fd, cd, cdsize, (off_t)cdoff) != (ssize_t)cdsize)
		goto out;
	for (pos = 0; pos + 46 <= cdsize;) {
		const unsigned char *c = cd + pos;
		uint32_t fl = get16(c + 28), xl = get16(c + 30), cl = get16(c + 32);
		uint64_t csize = get32(c + 20), usize = get32(c + 24), lho = get32(c + 42);
		const unsigned char *x, *xe;

		if (get32(c) != 0x02014b50 || pos + 46 + fl + xl + cl > cdsize)
			goto out;
		if (fl != nl || memcmp(c + 46, name, nl)) {
			pos += 46 + fl + xl + cl;
			continue;
		}
		/* ZIP64 extra field: only the fields whose 32-bit value is all ones. */
		for (x = c + 46 + fl, xe = x + xl; x + 4 <= xe; x += 4 + get16(x + 2)) {
			const unsigned char *f = x + 4, *fe = f + get16(x + 2);

			if (get16(x) != 1)
				continue;
			if (usize == 0xFFFFFFFF && f + 8 <= fe) {
				usize = get64(f);
				f += 8;
			}
			if (csize == 0xFFFFFFFF && f + 8 <= fe) {
				csize = get64(f);
				f += 8;
			}
			if (lho == 0xFFFFFFFF && f + 8 <= fe)
				lho = get64(f);
		}
		z->method = (int)get16(c + 10);
		if ((get16(c + 8) & 1) || (z->method != 0 && z->method != 8))
			goto out;
		if (z->method == 8 && !z->inflate)
			goto out; /* no ISA-L: libarchive's zlib path is as fast as ours would be */
		if (z->method == 0 && csize != usize)
			goto out;
		r = pread(s->fd, lh, sizeof(lh), (off_t)lho);
		if (r != (ssize_t)sizeof(lh) || get32(lh) != 0x04034b50)
			goto out;
		pos = lho + 30 + get16(lh + 26) + get16(lh + 28);
		if (pos + csize > (uint64_t)st.st_size || lseek(s->fd, (off_t)pos, SEEK_SET) < 0)
			goto out;
		s->in_limit = csize;
		z->usize = usize;
		z->crc_want = get32(c + 16);
		s->size_hint = usize;
		ok = true;
		break;
	}
out:
	free(cd);
	return ok;
}

static long zip_read_fast(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	struct zip *z = s->priv;
	size_t got = 0;
	int f;

	while (got < len && !s->done) {
		if (z->method == 0) {
			size_t n;

			f = fl_src_fill(s, e);
			if (f < 0)
				return f;
			if (f == 0) {
				s->done = true;
				break;
			}
			n = s->in_len - s->in_pos < len - got ? s->in_len - s->in_pos : len - got;
			memcpy(buf + got, s->in + s->in_pos, n);
			s->in_pos += n;
			got += n;
			continue;
		}
		f = fl_zip_inflate(z->inflate, s, buf, len, &got, &s->done, &z->crc, e);
		if (f < 0)
			return f;
	}
	if (z->method == 0 && got)
		z->crc = (uint32_t)crc32(z->crc, buf, (uInt)got);
	z->dec_off += got;
	if (s->done) {
		if (z->dec_off != z->usize)
			return fl_err_set(e, -EBADMSG, "corrupt zip entry in '%s': %llu bytes instead "
					  "of %llu", s->path, (unsigned long long)z->dec_off,
					  (unsigned long long)z->usize);
		if (z->crc != z->crc_want)
			return fl_err_set(e, -EBADMSG, "corrupt zip entry in '%s': CRC-32 mismatch",
					  s->path);
	}
	return (long)got;
}

/* Pass 1 over the central directory: exactly one image entry; pass 2 positions on it. */
static int zip_open_src(struct fl_src *s, int threads, struct fl_err *e)
{
	struct zip *z = s->priv;
	struct archive *a;
	struct archive_entry *ent;
	char first[256] = "", second[256] = "";
	int idx = -1, i = 0, count = 0, r;

	/* libarchive calls a zip without entries an unrecognized format; it holds no image. */
	if (zip_entries(s->fd, s->file_size) == 0)
		return fl_err_set(e, -EINVAL, "zip '%s' holds no image (it has no entries)",
				  s->path);
	a = zip_open(s->path, e);
	if (!a)
		return e->code;
	while ((r = archive_read_next_header(a, &ent)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(ent);

		if (archive_entry_filetype(ent) == AE_IFREG && name && !zip_sidecar(name)) {
			if (count == 0) {
				snprintf(first, sizeof(first), "%s", name);
				idx = i;
				if (archive_entry_size_is_set(ent))
					s->size_hint = (uint64_t)archive_entry_size(ent);
			} else if (count == 1) {
				snprintf(second, sizeof(second), "%s", name);
			}
			count++;
		}
		i++;
	}
	if (r != ARCHIVE_EOF) {
		fl_err_set(e, -EBADMSG, "corrupt or truncated zip '%s': %s", s->path,
			   archive_error_string(a));
		archive_read_free(a);
		return e->code;
	}
	archive_read_free(a);
	if (count == 0)
		return fl_err_set(e, -EINVAL, "zip '%s' holds no image", s->path);
	if (count > 1)
		return fl_err_set(e, -EINVAL,
				  "zip '%s' holds %d candidate images ('%s', '%s'%s); expected one",
				  s->path, count, first, second, count > 2 ? ", ..." : "");
	if (fl_zip_inflate_size()) {
		z->inflate = malloc(fl_zip_inflate_size());
		if (!z->inflate)
			return fl_err_set(e, -ENOMEM, "out of memory");
		fl_zip_inflate_init(z->inflate);
	}
	/* only the entry is read, or libarchive reads the file itself */
	fl_src_unhashed(s);
	if (zip_fast(s, first)) {
		z->fast = true;
		return 0;
	}
	a = zip_open(s->path, e);
	if (!a)
		return e->code;
	for (i = 0; i <= idx; i++) {
		if (archive_read_next_header(a, &ent) != ARCHIVE_OK) {
			fl_err_set(e, -EBADMSG, "corrupt zip '%s': %s", s->path,
				   archive_error_string(a));
			archive_read_free(a);
			return e->code;
		}
	}
	z->ar = a;
	return 0;
}

static long zip_read(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	struct zip *z = s->priv;
	size_t got = 0;

	if (z->fast)
		return zip_read_fast(s, buf, len, e);
	while (got < len && !s->done) {
		la_ssize_t n = archive_read_data(z->ar, buf + got, len - got);

		if (n < 0)
			return fl_err_set(e, -EBADMSG, "corrupt zip entry in '%s': %s", s->path,
					  archive_error_string(z->ar));
		if (n == 0)
			s->done = true;
		got += (size_t)n;
	}
	s->in_bytes = (uint64_t)archive_filter_bytes(z->ar, -1);
	return (long)got;
}

static void zip_close(struct fl_src *s)
{
	struct zip *z = s->priv;

	if (z->ar)
		archive_read_free(z->ar);
	free(z->inflate);
}

const struct fl_decoder_ops fl_dec_zip = {
	.name = "zip",
	.fmt = RIG_FLASH_FMT_ZIP,
	.priv_size = sizeof(struct zip),
	.open = zip_open_src,
	.read = zip_read,
	.close = zip_close,
};
