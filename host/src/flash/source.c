/* SPDX-License-Identifier: MIT */
/* Input images: format detection by magic and one pull-style decoder per format. */
#include <archive.h>
#include <archive_entry.h>
#include <bzlib.h>
#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "flash_internal.h"

#define IN_BUF (1u << 20)

struct fl_src {
	enum rig_flash_format fmt;
	int fd;
	const char *path;
	uint64_t in_bytes;
	uint64_t size_hint;
	unsigned char *in;
	size_t in_len, in_pos;
	bool in_eof;
	bool done;
	union {
		z_stream z;
		lzma_stream x;
		bz_stream b;
	} u;
	ZSTD_DStream *zs;
	size_t zs_last;
	struct archive *ar;
	bool inited;
};

int fl_detect_magic(const unsigned char *b, size_t n, enum rig_flash_format *fmt)
{
	static const unsigned char xz[6] = { 0xFD, '7', 'z', 'X', 'Z', 0 };
	static const unsigned char zst[4] = { 0x28, 0xB5, 0x2F, 0xFD };

	*fmt = RIG_FLASH_FMT_RAW;
	if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b)
		*fmt = RIG_FLASH_FMT_GZIP;
	else if (n >= 6 && !memcmp(b, xz, 6))
		*fmt = RIG_FLASH_FMT_XZ;
	else if (n >= 4 && !memcmp(b, zst, 4))
		*fmt = RIG_FLASH_FMT_ZSTD;
	else if (n >= 4 && b[0] == 'B' && b[1] == 'Z' && b[2] == 'h' && b[3] >= '1' && b[3] <= '9')
		*fmt = RIG_FLASH_FMT_BZIP2;
	else if (n >= 4 && b[0] == 'P' && b[1] == 'K' &&
		 ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6)))
		*fmt = RIG_FLASH_FMT_ZIP;
	return 0;
}

const char *rig_flash_format_name(enum rig_flash_format fmt)
{
	switch (fmt) {
	case RIG_FLASH_FMT_RAW: return "raw";
	case RIG_FLASH_FMT_GZIP: return "gzip";
	case RIG_FLASH_FMT_XZ: return "xz";
	case RIG_FLASH_FMT_ZSTD: return "zstd";
	case RIG_FLASH_FMT_BZIP2: return "bzip2";
	case RIG_FLASH_FMT_ZIP: return "zip";
	}
	return "unknown";
}

int rig_flash_format_detect(const char *path, enum rig_flash_format *fmt, char *err,
			    size_t errlen)
{
	struct fl_err e;
	unsigned char b[8];
	ssize_t n;
	int fd;

	fl_err_init(&e, err, errlen);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fl_err_set(&e, -errno, "cannot open '%s': %s", path, strerror(errno));
	n = read(fd, b, sizeof(b));
	close(fd);
	if (n < 0)
		return fl_err_set(&e, -errno, "cannot read '%s': %s", path, strerror(errno));
	return fl_detect_magic(b, (size_t)n, fmt);
}

/* Refills the compressed input buffer; returns -errno, 0 or 1 if data is available. */
static int fill(struct fl_src *s, struct fl_err *e)
{
	ssize_t n;

	if (s->in_pos < s->in_len)
		return 1;
	if (s->in_eof)
		return 0;
	do
		n = read(s->fd, s->in, IN_BUF);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fl_err_set(e, -errno, "cannot read '%s': %s", s->path, strerror(errno));
	s->in_len = (size_t)n;
	s->in_pos = 0;
	s->in_bytes += (uint64_t)n;
	if (n == 0)
		s->in_eof = true;
	return n > 0;
}

static int zip_pick(struct fl_src *s, struct fl_err *e);

int fl_src_open(const char *path, int threads, struct fl_src **out, struct fl_err *e)
{
	struct fl_src *s = calloc(1, sizeof(*s));
	unsigned char magic[8];
	struct stat st;
	ssize_t n;
	int rc = 0;

	if (!s)
		return fl_err_set(e, -ENOMEM, "out of memory");
	s->path = path;
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0) {
		rc = fl_err_set(e, -errno, "cannot open image '%s': %s", path, strerror(errno));
		free(s);
		return rc;
	}
	if (fstat(s->fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(s->fd);
		free(s);
		return fl_err_set(e, -EISDIR, "image '%s' is a directory", path);
	}
	(void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	n = pread(s->fd, magic, sizeof(magic), 0);
	if (n < 0) {
		rc = fl_err_set(e, -errno, "cannot read image '%s': %s", path, strerror(errno));
		goto fail;
	}
	fl_detect_magic(magic, (size_t)n, &s->fmt);
	s->in = malloc(IN_BUF);
	if (!s->in) {
		rc = fl_err_set(e, -ENOMEM, "out of memory");
		goto fail;
	}
	switch (s->fmt) {
	case RIG_FLASH_FMT_RAW:
		s->size_hint = (uint64_t)st.st_size;
		break;
	case RIG_FLASH_FMT_GZIP:
		/* 15 + 32: accept gzip and zlib headers. */
		if (inflateInit2(&s->u.z, 15 + 32) != Z_OK)
			rc = fl_err_set(e, -ENOMEM, "cannot initialise zlib");
		break;
	case RIG_FLASH_FMT_XZ: {
		lzma_mt mt;

		memset(&mt, 0, sizeof(mt));
		mt.threads = threads > 0 ? (uint32_t)threads : lzma_cputhreads();
		if (mt.threads == 0)
			mt.threads = 1;
		mt.flags = LZMA_CONCATENATED;
		mt.memlimit_threading = UINT64_C(1) << 30;
		mt.memlimit_stop = UINT64_MAX;
		s->u.x = (lzma_stream)LZMA_STREAM_INIT;
		if (lzma_stream_decoder_mt(&s->u.x, &mt) != LZMA_OK)
			rc = fl_err_set(e, -ENOMEM, "cannot initialise the xz decoder");
		break;
	}
	case RIG_FLASH_FMT_ZSTD: {
		unsigned char hdr[32];
		ssize_t h = pread(s->fd, hdr, sizeof(hdr), 0);
		unsigned long long cs;

		if (h > 0) {
			cs = ZSTD_getFrameContentSize(hdr, (size_t)h);
			if (cs != ZSTD_CONTENTSIZE_UNKNOWN && cs != ZSTD_CONTENTSIZE_ERROR)
				s->size_hint = cs;
		}
		s->zs = ZSTD_createDStream();
		if (!s->zs || ZSTD_isError(ZSTD_initDStream(s->zs)))
			rc = fl_err_set(e, -ENOMEM, "cannot initialise the zstd decoder");
		break;
	}
	case RIG_FLASH_FMT_BZIP2:
		if (BZ2_bzDecompressInit(&s->u.b, 0, 0) != BZ_OK)
			rc = fl_err_set(e, -ENOMEM, "cannot initialise the bzip2 decoder");
		break;
	case RIG_FLASH_FMT_ZIP:
		rc = zip_pick(s, e);
		break;
	}
	if (rc)
		goto fail;
	s->inited = true;
	*out = s;
	return 0;
fail:
	fl_src_close(s);
	return rc;
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
	if (archive_read_open_filename(a, path, IN_BUF) != ARCHIVE_OK) {
		fl_err_set(e, -EBADMSG, "corrupt or truncated zip '%s': %s", path,
			   archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

/* Pass 1 over the central directory: exactly one image entry; pass 2 positions on it. */
static int zip_pick(struct fl_src *s, struct fl_err *e)
{
	struct archive *a = zip_open(s->path, e);
	struct archive_entry *ent;
	char first[256] = "", second[256] = "";
	int idx = -1, i = 0, count = 0, r;

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
	s->ar = a;
	return 0;
}

static long rd_raw(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(s->fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fl_err_set(e, -errno, "cannot read '%s': %s", s->path,
					  strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
		s->in_bytes += (uint64_t)n;
	}
	return (long)got;
}

static long rd_gzip(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	z_stream *z = &s->u.z;
	int r;

	z->next_out = buf;
	z->avail_out = (uInt)len;
	while (z->avail_out && !s->done) {
		r = fill(s, e);
		if (r < 0)
			return r;
		if (r == 0) {
			if (s->in_bytes == 0)
				return fl_err_set(e, -EBADMSG, "empty gzip file '%s'", s->path);
			return fl_err_set(e, -EBADMSG,
					  "truncated gzip stream '%s' (ends at compressed offset "
					  "%llu)", s->path, (unsigned long long)s->in_bytes);
		}
		z->next_in = s->in + s->in_pos;
		z->avail_in = (uInt)(s->in_len - s->in_pos);
		r = inflate(z, Z_NO_FLUSH);
		s->in_pos = s->in_len - z->avail_in;
		if (r == Z_STREAM_END) {
			/* Concatenated members (pigz -i, cat a.gz b.gz) continue. */
			if (fill(s, e) > 0) {
				if (inflateReset(z) != Z_OK)
					return fl_err_set(e, -EBADMSG, "gzip reset failed");
			} else {
				s->done = true;
			}
		} else if (r != Z_OK && r != Z_BUF_ERROR) {
			return fl_err_set(e, -EBADMSG, "corrupt gzip stream '%s' near compressed "
					  "offset %llu: %s", s->path,
					  (unsigned long long)(s->in_bytes - (s->in_len - s->in_pos)),
					  z->msg ? z->msg : "data error");
		}
	}
	return (long)(len - z->avail_out);
}

static long rd_xz(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	lzma_stream *x = &s->u.x;
	lzma_ret r;
	int f;

	x->next_out = buf;
	x->avail_out = len;
	while (x->avail_out && !s->done) {
		if (x->avail_in == 0) {
			f = fill(s, e);
			if (f < 0)
				return f;
			x->next_in = s->in + s->in_pos;
			x->avail_in = s->in_len - s->in_pos;
			s->in_pos = s->in_len;
		}
		r = lzma_code(x, s->in_eof && x->avail_in == 0 ? LZMA_FINISH : LZMA_RUN);
		if (r == LZMA_STREAM_END) {
			s->done = true;
		} else if (r == LZMA_BUF_ERROR) {
			return fl_err_set(e, -EBADMSG, "truncated xz stream '%s'", s->path);
		} else if (r != LZMA_OK) {
			return fl_err_set(e, r == LZMA_MEM_ERROR ? -ENOMEM : -EBADMSG,
					  "corrupt xz stream '%s' (liblzma error %d%s)", s->path,
					  (int)r, r == LZMA_DATA_ERROR ? ", data error" :
					  r == LZMA_FORMAT_ERROR ? ", not xz" : "");
		} else if (s->in_eof && x->avail_in == 0 && x->avail_out) {
			/* LZMA_FINISH with no progress means the input ended early. */
			if (x->avail_out == len)
				return fl_err_set(e, -EBADMSG, "truncated xz stream '%s'",
						  s->path);
			break;
		}
	}
	return (long)(len - x->avail_out);
}

static long rd_zstd(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	ZSTD_outBuffer ob = { buf, len, 0 };
	int f;

	while (ob.pos < ob.size) {
		ZSTD_inBuffer ib;
		size_t r;

		f = fill(s, e);
		if (f < 0)
			return f;
		if (f == 0) {
			if (s->zs_last != 0 || s->in_bytes == 0)
				return fl_err_set(e, -EBADMSG, "truncated zstd stream '%s'",
						  s->path);
			break;
		}
		ib.src = s->in + s->in_pos;
		ib.size = s->in_len - s->in_pos;
		ib.pos = 0;
		r = ZSTD_decompressStream(s->zs, &ob, &ib);
		s->in_pos += ib.pos;
		if (ZSTD_isError(r))
			return fl_err_set(e, -EBADMSG, "corrupt zstd stream '%s': %s", s->path,
					  ZSTD_getErrorName(r));
		s->zs_last = r;
	}
	return (long)ob.pos;
}

static long rd_bzip2(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	bz_stream *b = &s->u.b;
	int r, f;

	b->next_out = (char *)buf;
	b->avail_out = (unsigned int)len;
	while (b->avail_out && !s->done) {
		f = fill(s, e);
		if (f < 0)
			return f;
		if (f == 0)
			return fl_err_set(e, -EBADMSG, "truncated bzip2 stream '%s'", s->path);
		b->next_in = (char *)s->in + s->in_pos;
		b->avail_in = (unsigned int)(s->in_len - s->in_pos);
		r = BZ2_bzDecompress(b);
		s->in_pos = s->in_len - b->avail_in;
		if (r == BZ_STREAM_END) {
			/* pbzip2 and lbzip2 write concatenated streams. */
			if (fill(s, e) > 0) {
				unsigned int left = b->avail_out;

				BZ2_bzDecompressEnd(b);
				memset(b, 0, sizeof(*b));
				if (BZ2_bzDecompressInit(b, 0, 0) != BZ_OK)
					return fl_err_set(e, -ENOMEM, "bzip2 re-init failed");
				b->next_out = (char *)buf + (len - left);
				b->avail_out = left;
			} else {
				s->done = true;
			}
		} else if (r != BZ_OK) {
			return fl_err_set(e, -EBADMSG, "corrupt bzip2 stream '%s' (error %d)",
					  s->path, r);
		}
	}
	return (long)(len - b->avail_out);
}

static long rd_zip(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	size_t got = 0;

	while (got < len && !s->done) {
		la_ssize_t n = archive_read_data(s->ar, buf + got, len - got);

		if (n < 0)
			return fl_err_set(e, -EBADMSG, "corrupt zip entry in '%s': %s", s->path,
					  archive_error_string(s->ar));
		if (n == 0)
			s->done = true;
		got += (size_t)n;
	}
	s->in_bytes = (uint64_t)archive_filter_bytes(s->ar, -1);
	return (long)got;
}

long fl_src_read(struct fl_src *s, void *buf, size_t len, struct fl_err *e)
{
	switch (s->fmt) {
	case RIG_FLASH_FMT_RAW: return rd_raw(s, buf, len, e);
	case RIG_FLASH_FMT_GZIP: return rd_gzip(s, buf, len, e);
	case RIG_FLASH_FMT_XZ: return rd_xz(s, buf, len, e);
	case RIG_FLASH_FMT_ZSTD: return rd_zstd(s, buf, len, e);
	case RIG_FLASH_FMT_BZIP2: return rd_bzip2(s, buf, len, e);
	case RIG_FLASH_FMT_ZIP: return rd_zip(s, buf, len, e);
	}
	return fl_err_set(e, -EINVAL, "unknown format");
}

long fl_src_pread(struct fl_src *s, void *buf, size_t len, uint64_t off, struct fl_err *e)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(s->fd, (char *)buf + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fl_err_set(e, -errno, "cannot read '%s': %s", s->path,
					  strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
		s->in_bytes += (uint64_t)n;
	}
	return (long)got;
}

enum rig_flash_format fl_src_format(const struct fl_src *s)
{
	return s->fmt;
}

uint64_t fl_src_size_hint(const struct fl_src *s)
{
	return s->size_hint;
}

uint64_t fl_src_bytes_in(const struct fl_src *s)
{
	return s->in_bytes;
}

void fl_src_close(struct fl_src *s)
{
	if (!s)
		return;
	if (s->inited || s->fmt == RIG_FLASH_FMT_ZSTD || s->fmt == RIG_FLASH_FMT_XZ) {
		switch (s->fmt) {
		case RIG_FLASH_FMT_GZIP:
			if (s->inited)
				inflateEnd(&s->u.z);
			break;
		case RIG_FLASH_FMT_XZ:
			lzma_end(&s->u.x);
			break;
		case RIG_FLASH_FMT_BZIP2:
			if (s->inited)
				BZ2_bzDecompressEnd(&s->u.b);
			break;
		default:
			break;
		}
	}
	ZSTD_freeDStream(s->zs);
	if (s->ar)
		archive_read_free(s->ar);
	free(s->in);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}
