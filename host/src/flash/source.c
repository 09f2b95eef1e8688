/* SPDX-License-Identifier: MIT */
/*
 * Input images: format detection by magic, the checks made before anything is written, the
 * input buffer the decoders share, and the choice of decoder (one decode_*.c per format).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flash_internal.h"
#include "../internal.h"
#include "../rig_http.h"

/* A URL's first bytes, read to detect its format and check it looks like a disk image. */
#define URL_HEAD (64u << 10)

/* First match per format wins: the build-gated faster decoder comes first. */
static const struct fl_decoder_ops *const decoders[] = {
	&fl_dec_bzip2,
#ifdef HAVE_ISAL
	&fl_dec_gzip_isal,
#endif
	&fl_dec_gzip,
	&fl_dec_raw,
	&fl_dec_xz,
	&fl_dec_zip,
	&fl_dec_zstd,
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

int rig_flash_format_detect(struct rig_ctx *ctx, const char *path, enum rig_flash_format *fmt)
{
	unsigned char b[8];
	ssize_t n;
	int fd;

	/* Non-blocking: a FIFO must not hang a format query. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return rig_ctx_fail(ctx, rig_err_from_errno(-errno), "cannot open '%s': %s", path,
				    strerror(errno));
	n = read(fd, b, sizeof(b));
	if (n < 0) {
		int err = errno;

		close(fd);
		return rig_ctx_fail(ctx, rig_err_from_errno(-err), "cannot read '%s': %s", path,
				    strerror(err));
	}
	close(fd);
	return fl_detect_magic(b, (size_t)n, fmt);
}

/*
 * The checks fl_src_open() makes before anything is written, for callers that only read an
 * image (rig_image_inspect()): same code, same messages.
 */
int rig_flash_image_check(struct rig_ctx *ctx, const char *path, enum rig_flash_format *fmt)
{
	struct fl_src *s = NULL;
	char msg[RIG_ERRMSG_MAX];
	struct fl_err e;
	int rc;

	fl_err_init(&e, msg, sizeof(msg));
	rc = fl_src_open(path, 1, &s, &e);
	if (rc == 0 && fmt)
		*fmt = fl_src_format(s);
	fl_src_close(s);
	if (rc < 0)
		return rig_ctx_fail(ctx, rig_err_from_errno(rc), "%s", msg);
	return 0;
}

/* Containers and files that are not disk images, by their first bytes. */
static const struct {
	size_t off, len;
	const char *magic;
	const char *what;
	const char *hint;
} not_images[] = {
	{ 0, 6, "7z\xBC\xAF\x27\x1C", "a 7-Zip archive", "extract the image from it first" },
	{ 0, 6, "Rar!\x1A\x07", "a RAR archive", "extract the image from it first" },
	{ 257, 5, "ustar", "a tar archive", "extract the image from it first" },
	{ 0, 4, "\x04\x22\x4D\x18", "lz4-compressed", "decompress it first (lz4 -d)" },
	{ 0, 4, "LZIP", "lzip-compressed", "decompress it first (lzip -d)" },
	{ 0, 4, "QFI\xFB", "a QEMU qcow image", "convert it first (qemu-img convert -O raw)" },
	{ 0, 4, "KDMV", "a VMware VMDK image", "convert it first (qemu-img convert -O raw)" },
	{ 0, 8, "vhdxfile", "a VHDX image", "convert it first (qemu-img convert -O raw)" },
	{ 0, 4, "\x3A\xFF\x26\xED", "an Android sparse image", "expand it first (simg2img)" },
	{ 0, 4, "\x7F" "ELF", "an ELF executable", "check it is the right file" },
};

int fl_image_check_head(const unsigned char *b, size_t n, const char *path,
			enum rig_flash_format fmt, struct fl_err *e)
{
	enum rig_flash_format inner;
	size_t i, text = 0, scan = n < 65536 ? n : 65536;
	char in[40] = "";

	if (fmt != RIG_FLASH_FMT_RAW)
		snprintf(in, sizeof(in), " (inside its %s stream)", rig_flash_format_name(fmt));
	for (i = 0; i < sizeof(not_images) / sizeof(not_images[0]); i++)
		if (n >= not_images[i].off + not_images[i].len &&
		    !memcmp(b + not_images[i].off, not_images[i].magic, not_images[i].len))
			return fl_err_set(e, -EINVAL, "'%s' is %s%s, not a disk image: %s", path,
					  not_images[i].what, in, not_images[i].hint);
	/* A raw file with such a magic was decoded as that format; inside one it is doubled. */
	fl_detect_magic(b, n, &inner);
	if (fmt != RIG_FLASH_FMT_RAW && inner != RIG_FLASH_FMT_RAW)
		return fl_err_set(e, -EINVAL, "'%s' is compressed twice (%s inside %s), not a disk "
				  "image: decompress it once first", path,
				  rig_flash_format_name(inner), rig_flash_format_name(fmt));
	/*
	 * Every disk image has zero bytes early on (partition tables, boot sectors and
	 * superblocks are full of them); a text file has none and is mostly printable.
	 */
	for (i = 0; i < scan; i++) {
		if (b[i] == 0)
			return 0;
		if ((b[i] >= 0x20 && b[i] < 0x7f) || b[i] == '\n' || b[i] == '\r' || b[i] == '\t')
			text++;
	}
	if (scan && text * 10 >= scan * 9)
		return fl_err_set(e, -EINVAL, "'%s' looks like a text file%s, not a disk image: "
				  "check it is the right file", path, in);
	return 0;
}

/* What a file is, for refusals: "a directory", "a FIFO", ... */
static const char *file_kind(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISFIFO(m))
		return "a FIFO (named pipe)";
	if (S_ISSOCK(m))
		return "a socket";
	return "not a regular file";
}

/*
 * Opens the image for reading and checks what can be checked before anything is written.
 * Character devices (/dev/zero), FIFOs and sockets never end or never start; a directory is
 * no image. open() of a FIFO blocks until a writer comes, so the kind is checked first and
 * the open is non-blocking (in case the path changed in between).
 */
static int open_image(struct fl_src *s, const char *path, struct stat *st, struct fl_err *e)
{
	struct stat lst;
	int err;

	if (stat(path, st) < 0) {
		err = errno;
		if (err == ENOENT && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode))
			return fl_err_set(e, -ENOENT, "image '%s' is a dangling symbolic link", path);
		if (err == ENOENT || err == ENOTDIR)
			return fl_err_set(e, -ENOENT, "image '%s' does not exist", path);
		return fl_err_set(e, err == EACCES ? -EINVAL : -err, "cannot open image '%s': %s",
				  path, strerror(err));
	}
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode))
		return fl_err_set(e, -EINVAL, "image '%s' is %s: an image is a regular file or a "
				  "block device", path, file_kind(st->st_mode));
	s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (s->fd < 0)
		return fl_err_set(e, errno == ENOENT ? -ENOENT : errno == EACCES ? -EINVAL : -errno,
				  "cannot open image '%s': %s", path, strerror(errno));
	if (fstat(s->fd, st) < 0)
		return fl_err_set(e, -errno, "cannot stat image '%s': %s", path, strerror(errno));
	if (!S_ISREG(st->st_mode) && !S_ISBLK(st->st_mode))
		return fl_err_set(e, -EINVAL, "image '%s' is %s: an image is a regular file or a "
				  "block device", path, file_kind(st->st_mode));
	(void)fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) & ~O_NONBLOCK);
	s->dev = st->st_dev;
	s->ino = st->st_ino;
	s->rdev = st->st_rdev;
	s->blockdev = S_ISBLK(st->st_mode);
	s->file_size = (uint64_t)st->st_size;
	if (s->blockdev) {
		uint64_t sz = 0;

		if (ioctl(s->fd, BLKGETSIZE64, &sz) < 0)
			return fl_err_set(e, -errno, "cannot get the size of image '%s': %s", path,
					  strerror(errno));
		s->file_size = sz;
	}
	if (s->file_size == 0)
		return fl_err_set(e, -EINVAL, "'%s' is empty: it holds no image", path);
	return 0;
}

bool fl_src_same_file(const struct fl_src *s, int fd)
{
	struct stat st;

	if (s->fd < 0)
		return false;
	if (fstat(fd, &st) < 0)
		return false;
	if (s->blockdev)
		return S_ISBLK(st.st_mode) && st.st_rdev == s->rdev;
	return S_ISREG(st.st_mode) && st.st_dev == s->dev && st.st_ino == s->ino;
}

/* Keeps the file's SHA-256 while it is read from its start in order. */
static void hash_input(struct fl_src *s, const void *p, size_t n)
{
	if (s->md && n)
		EVP_DigestUpdate(s->md, p, n);
}

void fl_src_unhashed(struct fl_src *s)
{
	EVP_MD_CTX_free(s->md);
	s->md = NULL;
	s->unhashable = true;
}

/* The next bytes of the input: the file, or a URL's first bytes and then its stream. */
static ssize_t in_read(struct fl_src *s, void *buf, size_t len, struct fl_err *e)
{
	ssize_t n;

	if (s->http) {
		long r;

		if (s->pre_pos < s->pre_len) {
			n = (ssize_t)(s->pre_len - s->pre_pos < len ? s->pre_len - s->pre_pos : len);
			memcpy(buf, s->pre + s->pre_pos, (size_t)n);
			s->pre_pos += (size_t)n;
			return n;
		}
		r = rig_http_stream_read(s->http, buf, len);
		if (r < 0)
			return fl_err_set(e, (int)r, "%s", rig_http_stream_errmsg(s->http));
		/* a length the server did not give is known at the end */
		if (r == 0 && !s->file_size)
			s->file_size = s->in_bytes;
		return r;
	}
	do
		n = read(s->fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fl_err_set(e, -errno, "cannot read '%s': %s", s->path, strerror(errno));
	return n;
}

int fl_src_fill(struct fl_src *s, struct fl_err *e)
{
	ssize_t n;

	if (s->in_pos < s->in_len)
		return 1;
	if (s->in_eof)
		return 0;
	/* Keep the tail of the consumed input: the gzip trailer may straddle two reads. */
	if (s->in_len >= 8) {
		memcpy(s->hist, s->in + s->in_len - 8, 8);
	} else if (s->in_len) {
		memmove(s->hist, s->hist + s->in_len, 8 - s->in_len);
		memcpy(s->hist + 8 - s->in_len, s->in, s->in_len);
	}
	n = in_read(s, s->in, s->in_limit < FL_IN_BUF ? (size_t)s->in_limit : FL_IN_BUF, e);
	if (n < 0)
		return (int)n;
	s->in_limit -= (uint64_t)n;
	s->in_len = (size_t)n;
	s->in_pos = 0;
	s->in_bytes += (uint64_t)n;
	hash_input(s, s->in, (size_t)n);
	if (n == 0)
		s->in_eof = true;
	return n > 0;
}

long fl_src_read_full(struct fl_src *s, void *buf, size_t len, int64_t off, struct fl_err *e)
{
	size_t got = 0;

	if (off >= 0)
		fl_src_unhashed(s);
	while (got < len) {
		ssize_t n;

		if (off < 0) {
			n = in_read(s, (char *)buf + got, len - got, e);
			if (n < 0)
				return n;
		} else {
			n = pread(s->fd, (char *)buf + got, len - got, (off_t)(off + (int64_t)got));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return fl_err_set(e, -errno, "cannot read '%s': %s", s->path,
						  strerror(errno));
		}
		if (n == 0)
			break;
		hash_input(s, (char *)buf + got, (size_t)n);
		got += (size_t)n;
		s->in_bytes += (uint64_t)n;
	}
	return (long)got;
}

bool fl_src_file_sha256(struct fl_src *s, unsigned char md[32])
{
	unsigned int len = 0;

	/* only a file read to its end, in order, has its hash here */
	if (!s->md || s->in_bytes != s->file_size)
		return false;
	EVP_DigestFinal_ex(s->md, md, &len);
	fl_src_unhashed(s);
	return len == 32;
}

const char *fl_src_decoder_name(const struct fl_src *s)
{
	return s->ops->name;
}

static const struct fl_decoder_ops *decoder_for(enum rig_flash_format fmt)
{
	for (size_t i = 0; i < sizeof(decoders) / sizeof(decoders[0]); i++)
		if (decoders[i]->fmt == fmt)
			return decoders[i];
	return NULL;
}

static int choose_decoder(struct fl_src *s, int threads, struct fl_err *e);

int fl_src_open(const char *path, int threads, struct fl_src **out, struct fl_err *e)
{
	struct fl_src *s = calloc(1, sizeof(*s));
	struct stat st;
	ssize_t n;
	int rc = 0;

	if (!s)
		return fl_err_set(e, -ENOMEM, "out of memory");
	s->path = path;
	s->fd = -1;
	s->in_limit = UINT64_MAX;
	rc = open_image(s, path, &st, e);
	if (rc)
		goto fail;
	(void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	s->in = malloc(FL_IN_BUF);
	if (!s->in) {
		rc = fl_err_set(e, -ENOMEM, "out of memory");
		goto fail;
	}
	n = pread(s->fd, s->in, FL_IN_BUF, 0);
	if (n < 0) {
		rc = fl_err_set(e, -errno, "cannot read image '%s': %s", path, strerror(errno));
		goto fail;
	}
	s->head_len = (size_t)n;
	rc = choose_decoder(s, threads, e);
	if (rc)
		goto fail;
	*out = s;
	return 0;
fail:
	fl_src_close(s);
	return rc;
}

/* Picks the decoder by the first bytes in s->in (s->head_len of them) and opens it. */
static int choose_decoder(struct fl_src *s, int threads, struct fl_err *e)
{
	fl_detect_magic(s->in, s->head_len, &s->fmt);
	s->ops = decoder_for(s->fmt);
	s->priv = calloc(1, s->ops->priv_size ? s->ops->priv_size : 1);
	if (!s->priv)
		return fl_err_set(e, -ENOMEM, "out of memory");
	return s->ops->open(s, threads, e);
}

bool fl_is_url(const char *image)
{
	return !strncasecmp(image, "http://", 7) || !strncasecmp(image, "https://", 8);
}

int fl_src_open_url(const char *url, struct rig_ctx *ctx, const struct rig_flash_opts *o,
		    int timeout_ms, struct fl_src **out, struct fl_err *e)
{
	struct fl_src *s = calloc(1, sizeof(*s));
	struct rig_http_stream_opts ho;
	char msg[RIG_ERRMSG_MAX];
	int64_t len;
	long n;
	int rc;

	if (!s)
		return fl_err_set(e, -ENOMEM, "out of memory");
	s->fd = -1;
	s->in_limit = UINT64_MAX;
	s->shown = malloc(512);
	s->in = malloc(FL_IN_BUF);
	s->pre = malloc(URL_HEAD);
	if (!s->shown || !s->in || !s->pre) {
		rc = fl_err_set(e, -ENOMEM, "out of memory");
		goto fail;
	}
	rig_http_redact_url(url, s->shown, 512);
	s->path = s->shown;
	rig_http_stream_opts_init(&ho);
	ho.timeout_ms = timeout_ms;
	ho.stall_ms = o->stall_ms;
	ho.retries = o->retries;
	rc = rig_http_stream_open(ctx, url, &ho, &s->http, msg, sizeof(msg));
	if (rc) {
		fl_err_set(e, rc, "%s", msg);
		goto fail;
	}
	len = rig_http_stream_length(s->http);
	s->file_size = len > 0 ? (uint64_t)len : 0;
	if (len == 0) {
		rc = fl_err_set(e, -EINVAL, "'%s' is empty: it holds no image", s->shown);
		goto fail;
	}
	/* the first bytes name the format; they are handed to the decoder after its open() */
	while (s->pre_len < URL_HEAD) {
		n = rig_http_stream_read(s->http, s->pre + s->pre_len, URL_HEAD - s->pre_len);
		if (n < 0) {
			rc = fl_err_set(e, (int)n, "%s", rig_http_stream_errmsg(s->http));
			goto fail;
		}
		if (n == 0)
			break;
		s->pre_len += (size_t)n;
	}
	if (!s->pre_len) {
		rc = fl_err_set(e, -EINVAL, "'%s' is empty: it holds no image", s->shown);
		goto fail;
	}
	memcpy(s->in, s->pre, s->pre_len);
	s->head_len = s->pre_len;
	if (s->pre_len < URL_HEAD && !s->file_size)
		s->file_size = s->pre_len;
	fl_detect_magic(s->in, s->head_len, &s->fmt);
	if (s->fmt == RIG_FLASH_FMT_ZIP) {
		rc = fl_err_set(e, -EINVAL, "'%s' is a zip archive, which cannot be flashed from a "
				"URL (its directory is at its end): download it first, or use a raw, "
				"gzip, xz, zstd or bzip2 image", s->shown);
		goto fail;
	}
	rc = choose_decoder(s, o->threads, e);
	if (rc)
		goto fail;
	*out = s;
	return 0;
fail:
	fl_src_close(s);
	return rc;
}

int fl_src_resumes(const struct fl_src *s, char *why, size_t whylen)
{
	if (why && whylen)
		why[0] = 0;
	return s->http ? rig_http_stream_resumes(s->http, why, whylen) : 0;
}

int fl_src_drain(struct fl_src *s, struct fl_err *e)
{
	int rc;

	if (!s->md)
		return 0;
	for (;;) {
		s->in_pos = s->in_len;
		rc = fl_src_fill(s, e);
		if (rc <= 0)
			return rc;
	}
}

/* The file's hash is taken only for a caller that wants it: it costs the decoder thread. */
int fl_src_hash_file(struct fl_src *s, struct fl_err *e)
{
	if (s->in_bytes || s->md || s->unhashable)
		return 0;
	s->md = EVP_MD_CTX_new();
	if (!s->md || !EVP_DigestInit_ex(s->md, EVP_sha256(), NULL)) {
		fl_src_unhashed(s);
		return fl_err_set(e, -ENOMEM, "out of memory");
	}
	return 0;
}

long fl_src_read(struct fl_src *s, void *buf, size_t len, struct fl_err *e)
{
	return s->ops->read(s, buf, len, e);
}

long fl_src_pread(struct fl_src *s, void *buf, size_t len, uint64_t off, struct fl_err *e)
{
	return fl_src_read_full(s, buf, len, (int64_t)off, e);
}

bool fl_src_crc_deferred(const struct fl_src *s)
{
	return s->ops->gz_member != NULL;
}

bool fl_src_gz_member(struct fl_src *s, size_t i, struct fl_gz_member *m)
{
	return s->ops->gz_member && s->ops->gz_member(s, i, m);
}

int fl_src_set_map(struct fl_src *s, const struct fl_bmap *bm, int threads, struct fl_err *e)
{
	return s->ops->set_map ? s->ops->set_map(s, bm, threads, e) : 0;
}

void fl_src_stop(struct fl_src *s)
{
	rig_http_stream_stop(s->http);
	if (s->ops->stop)
		s->ops->stop(s);
}

uint64_t fl_src_bytes_skipped(const struct fl_src *s)
{
	return s->ops->skipped ? s->ops->skipped(s) : 0;
}

enum rig_flash_format fl_src_format(const struct fl_src *s)
{
	return s->fmt;
}

uint64_t fl_src_size_hint(const struct fl_src *s)
{
	return s->size_hint;
}

uint64_t fl_src_size_expected(const struct fl_src *s)
{
	return s->size_hint ? s->size_hint : s->size_index;
}

uint64_t fl_src_file_size(const struct fl_src *s)
{
	return s->file_size;
}

uint64_t fl_src_bytes_in(const struct fl_src *s)
{
	return s->ops->bytes_in ? s->ops->bytes_in(s) : s->in_bytes;
}

void fl_src_close(struct fl_src *s)
{
	if (!s)
		return;
	if (s->priv && s->ops->close)
		s->ops->close(s);
	free(s->priv);
	fl_src_unhashed(s);
	free(s->in);
	rig_http_stream_close(s->http);
	free(s->pre);
	free(s->shown);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

bool fl_src_unhashed_by_decoder(const struct fl_src *s)
{
	return s->unhashable;
}

const char *fl_src_name(const struct fl_src *s)
{
	return s->path;
}
