/* SPDX-License-Identifier: MIT */
/* Input images: format detection by magic and one pull-style decoder per format. */
#include <archive.h>
#include <archive_entry.h>
#include <bzlib.h>
#include <errno.h>
#include <fcntl.h>
#include <lzma.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#ifdef HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#include "flash_internal.h"

#define IN_BUF (1u << 20)

struct fl_src {
	enum rig_flash_format fmt;
	int fd;
	const char *path;
	uint64_t in_bytes;
	uint64_t size_hint;
	uint64_t size_index;       /* xz: the decoded size its index gives, for progress only */
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
	/* gzip: the CRC is left to the consumer thread; members are recorded here. */
	unsigned char hist[8];     /* the 8 input bytes before s->in[0] */
	uint64_t dec_off;          /* decompressed bytes returned so far */
	pthread_mutex_t gz_mu;
	struct fl_gz_member *gz;
	size_t gz_n, gz_cap;
#ifdef HAVE_ISAL
	struct inflate_state *isal;
#endif
	/* zip fast path: the entry is read directly (stored, or deflate with ISA-L). */
	bool zfast;
	int zmethod;
	uint64_t zleft;            /* compressed bytes of the entry not yet read */
	uint64_t zusize;
	uint32_t zcrc_want, zcrc;
	/* xz with a bmap: the block-parallel reader (xzblocks.c) */
	struct fl_xzb *xzb;
	const struct fl_bmap *map;
	uint64_t file_size;
	dev_t dev, rdev;           /* identity: an image must not be its own target */
	ino_t ino;
	bool blockdev;
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
	/* Non-blocking: a FIFO must not hang a format query. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return fl_err_set(&e, -errno, "cannot open '%s': %s", path, strerror(errno));
	n = read(fd, b, sizeof(b));
	close(fd);
	if (n < 0)
		return fl_err_set(&e, -errno, "cannot read '%s': %s", path, strerror(errno));
	return fl_detect_magic(b, (size_t)n, fmt);
}

/*
 * The checks fl_src_open() makes before anything is written, for callers that only read an
 * image (rig_image_inspect()): same code, same messages.
 */
int rig_flash_image_check(const char *path, enum rig_flash_format *fmt, char *err,
			  size_t errlen)
{
	struct fl_src *s = NULL;
	struct fl_err e;
	int rc;

	fl_err_init(&e, err, errlen);
	rc = fl_src_open(path, 1, &s, &e);
	if (rc == 0 && fmt)
		*fmt = fl_src_format(s);
	fl_src_close(s);
	return rc;
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

	if (fstat(fd, &st) < 0)
		return false;
	if (s->blockdev)
		return S_ISBLK(st.st_mode) && st.st_rdev == s->rdev;
	return S_ISREG(st.st_mode) && st.st_dev == s->dev && st.st_ino == s->ino;
}

/* Refills the compressed input buffer; returns -errno, 0 or 1 if data is available. */
static int fill(struct fl_src *s, struct fl_err *e)
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
	do
		n = read(s->fd, s->in, s->zfast && s->zleft < IN_BUF ? (size_t)s->zleft : IN_BUF);
	while (n < 0 && errno == EINTR);
	if (s->zfast && n > 0)
		s->zleft -= (uint64_t)n;
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
	struct stat st;
	ssize_t n;
	int rc = 0;

	if (!s)
		return fl_err_set(e, -ENOMEM, "out of memory");
	s->path = path;
	s->fd = -1;
	rc = open_image(s, path, &st, e);
	if (rc)
		goto fail;
	(void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	s->in = malloc(IN_BUF);
	if (!s->in) {
		rc = fl_err_set(e, -ENOMEM, "out of memory");
		goto fail;
	}
	n = pread(s->fd, s->in, IN_BUF, 0);
	if (n < 0) {
		rc = fl_err_set(e, -errno, "cannot read image '%s': %s", path, strerror(errno));
		goto fail;
	}
	fl_detect_magic(s->in, (size_t)n, &s->fmt);
	switch (s->fmt) {
	case RIG_FLASH_FMT_RAW:
		/* Refused before anything is written: a raw image is whole sectors of an image. */
		s->size_hint = s->file_size;
		if (s->file_size % 512) {
			rc = fl_err_set(e, -EINVAL, "'%s' is %llu bytes, not a whole number of "
					"512-byte sectors, so it is not a disk image: check it is "
					"the right file (an image cut short can be padded with "
					"'truncate -s %%512 FILE', at your own risk)", path,
					(unsigned long long)s->file_size);
			goto fail;
		}
		rc = fl_image_check_head(s->in, (size_t)n, path, s->fmt, e);
		if (rc)
			goto fail;
		break;
	case RIG_FLASH_FMT_GZIP:
#ifdef HAVE_ISAL
		/* ISA-L's inflate is about 3x zlib's; it checks CRC-32 and ISIZE itself. */
		s->isal = malloc(sizeof(*s->isal));
		if (s->isal) {
			isal_inflate_init(s->isal);
			s->isal->crc_flag = ISAL_GZIP;
			break;
		}
		/* Without its state, fall back to zlib. */
#endif
		/*
		 * 15 + 16: gzip wrapper. The CRC-32 is not computed here (inflateValidate off):
		 * the consumer thread checks it against the trailers recorded below, which takes
		 * about 15 % of the work off the decoder thread, the bottleneck.
		 */
		if (inflateInit2(&s->u.z, 15 + 16) != Z_OK ||
		    inflateValidate(&s->u.z, 0) != Z_OK)
			rc = fl_err_set(e, -ENOMEM, "cannot initialise zlib");
		pthread_mutex_init(&s->gz_mu, NULL);
		break;
	case RIG_FLASH_FMT_XZ: {
		lzma_mt mt;

		memset(&mt, 0, sizeof(mt));
		mt.threads = threads > 0 ? (uint32_t)threads : lzma_cputhreads();
		if (mt.threads == 0)
			mt.threads = 1;
		mt.flags = LZMA_CONCATENATED;
		/* A few small reads at the end of the file; 0 when the tail is unreadable. */
		s->size_index = fl_xz_uncompressed_size(s->fd, s->file_size);
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
 * ISA-L) deflated, unencrypted, positions s->fd on its data. Returns true on success; false
 * means "use libarchive", never an error.
 */
static bool zip_fast(struct fl_src *s, const char *name)
{
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
		unsigned char z[56];
		uint64_t zo;

		if (i < 20 || get32(tail + i - 20) != 0x07064b50)
			return false;
		zo = get64(tail + i - 20 + 8);
		if (pread(s->fd, z, sizeof(z), (off_t)zo) != (ssize_t)sizeof(z) ||
		    get32(z) != 0x06064b50)
			return false;
		cdsize = get64(z + 40);
		cdoff = get64(z + 48);
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
		s->zmethod = (int)get16(c + 10);
		if ((get16(c + 8) & 1) || (s->zmethod != 0 && s->zmethod != 8))
			goto out;
#ifndef HAVE_ISAL
		if (s->zmethod == 8)
			goto out; /* libarchive's zlib path is as fast as ours would be */
#endif
		if (s->zmethod == 0 && csize != usize)
			goto out;
		r = pread(s->fd, lh, sizeof(lh), (off_t)lho);
		if (r != (ssize_t)sizeof(lh) || get32(lh) != 0x04034b50)
			goto out;
		pos = lho + 30 + get16(lh + 26) + get16(lh + 28);
		if (pos + csize > (uint64_t)st.st_size || lseek(s->fd, (off_t)pos, SEEK_SET) < 0)
			goto out;
		s->zleft = csize;
		s->zusize = usize;
		s->zcrc_want = get32(c + 16);
		s->size_hint = usize;
		ok = true;
		break;
	}
out:
	free(cd);
	return ok;
}

static long rd_zip_fast(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	size_t got = 0;
	int f;

	while (got < len && !s->done) {
		if (s->zmethod == 0) {
			size_t n;

			f = fill(s, e);
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
#ifdef HAVE_ISAL
		{
			struct inflate_state *st = s->isal;
			uint32_t before;
			int r;

			if (st->avail_in == 0) {
				f = fill(s, e);
				if (f < 0)
					return f;
				st->next_in = s->in + s->in_pos;
				st->avail_in = (uint32_t)(s->in_len - s->in_pos);
				s->in_pos = s->in_len;
			}
			st->next_out = buf + got;
			st->avail_out = (uint32_t)(len - got);
			before = st->avail_out;
			r = isal_inflate(st);
			got += before - st->avail_out;
			if (r < 0)
				return fl_err_set(e, -EBADMSG, "corrupt zip entry in '%s': invalid "
						  "deflate data", s->path);
			if (st->block_state == ISAL_BLOCK_FINISH) {
				s->zcrc = st->crc;
				s->done = true;
			} else if (st->avail_in == 0 && s->zleft == 0 && before == st->avail_out) {
				return fl_err_set(e, -EBADMSG, "truncated zip entry in '%s'", s->path);
			}
		}
#else
		return fl_err_set(e, -ENOTSUP, "zip method %d", s->zmethod);
#endif
	}
	if (s->zmethod == 0 && got)
		s->zcrc = (uint32_t)crc32(s->zcrc, buf, (uInt)got);
	s->dec_off += got;
	if (s->done) {
		if (s->dec_off != s->zusize)
			return fl_err_set(e, -EBADMSG, "corrupt zip entry in '%s': %llu bytes instead "
					  "of %llu", s->path, (unsigned long long)s->dec_off,
					  (unsigned long long)s->zusize);
		if (s->zcrc != s->zcrc_want)
			return fl_err_set(e, -EBADMSG, "corrupt zip entry in '%s': CRC-32 mismatch",
					  s->path);
	}
	return (long)got;
}

/* Pass 1 over the central directory: exactly one image entry; pass 2 positions on it. */
static int zip_pick(struct fl_src *s, struct fl_err *e)
{
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
#ifdef HAVE_ISAL
	s->isal = malloc(sizeof(*s->isal));
	if (s->isal) {
		isal_inflate_init(s->isal);
		s->isal->crc_flag = ISAL_GZIP_NO_HDR; /* raw deflate, CRC-32 computed */
	}
#endif
	if (zip_fast(s, first)) {
		s->zfast = true;
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
	s->ar = a;
	return 0;
}

/*
 * Read up to @len bytes into @buf, at @off (pread) or, with @off < 0, at the file
 * position (read); stops early only at end of file. Counts what it read as input.
 */
static long read_full(struct fl_src *s, void *buf, size_t len, int64_t off, struct fl_err *e)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = off < 0 ? read(s->fd, (char *)buf + got, len - got)
				    : pread(s->fd, (char *)buf + got, len - got, (off_t)(off + (int64_t)got));

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

static long rd_raw(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	return read_full(s, buf, len, -1, e);
}

/* Records a finished gzip member: its end offset and the CRC/ISIZE from its trailer. */
static int gz_record(struct fl_src *s, uint64_t end, struct fl_err *e)
{
	unsigned char t[8];
	size_t k = s->in_pos < 8 ? 8 - s->in_pos : 0;
	struct fl_gz_member *m;

	/* The trailer is the 8 bytes just consumed: partly in hist if the buffer is new. */
	memcpy(t, s->hist + 8 - k, k);
	memcpy(t + k, s->in + s->in_pos - (8 - k), 8 - k);
	pthread_mutex_lock(&s->gz_mu);
	if (s->gz_n == s->gz_cap) {
		size_t cap = s->gz_cap ? 2 * s->gz_cap : 16;
		void *p = realloc(s->gz, cap * sizeof(*s->gz));

		if (!p) {
			pthread_mutex_unlock(&s->gz_mu);
			return fl_err_set(e, -ENOMEM, "out of memory");
		}
		s->gz = p;
		s->gz_cap = cap;
	}
	m = &s->gz[s->gz_n++];
	m->end = end;
	m->crc = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
		 (uint32_t)t[3] << 24;
	m->isize = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 |
		   (uint32_t)t[7] << 24;
	pthread_mutex_unlock(&s->gz_mu);
	return 0;
}

bool fl_src_gz_member(struct fl_src *s, size_t i, struct fl_gz_member *m)
{
	bool ok = false;

	if (s->fmt != RIG_FLASH_FMT_GZIP)
		return false;
	pthread_mutex_lock(&s->gz_mu);
	if (i < s->gz_n) {
		*m = s->gz[i];
		ok = true;
	}
	pthread_mutex_unlock(&s->gz_mu);
	return ok;
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
			r = gz_record(s, s->dec_off + (len - z->avail_out), e);
			if (r < 0)
				return r;
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
	s->dec_off += len - z->avail_out;
	return (long)(len - z->avail_out);
}

#ifdef HAVE_ISAL
static long rd_gzip_isal(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	struct inflate_state *st = s->isal;
	int r, f;

	st->next_out = buf;
	st->avail_out = (uint32_t)len;
	while (st->avail_out && !s->done) {
		uint32_t before = st->avail_out;

		if (st->avail_in == 0) {
			f = fill(s, e);
			if (f < 0)
				return f;
			st->next_in = s->in + s->in_pos;
			st->avail_in = (uint32_t)(s->in_len - s->in_pos);
			s->in_pos = s->in_len;
		}
		r = isal_inflate(st);
		if (r < 0)
			return fl_err_set(e, -EBADMSG, "corrupt gzip stream '%s' near compressed "
					  "offset %llu: %s", s->path,
					  (unsigned long long)(s->in_bytes - st->avail_in),
					  r == ISAL_INCORRECT_CHECKSUM ? "CRC-32 or length mismatch" :
					  r == ISAL_INVALID_WRAPPER ? "bad header" : "invalid data");
		if (st->block_state == ISAL_BLOCK_FINISH) {
			/* Concatenated members (pigz -i, cat a.gz b.gz) continue. */
			uint8_t *ni = st->next_in;
			uint32_t ai = st->avail_in;

			if (ai == 0 && fill(s, e) > 0) {
				ni = s->in + s->in_pos;
				ai = (uint32_t)(s->in_len - s->in_pos);
				s->in_pos = s->in_len;
			}
			if (ai) {
				uint8_t *no = st->next_out;
				uint32_t ao = st->avail_out;

				isal_inflate_reset(st);
				st->crc_flag = ISAL_GZIP;
				st->next_in = ni;
				st->avail_in = ai;
				st->next_out = no;
				st->avail_out = ao;
			} else {
				s->done = true;
			}
		} else if (s->in_eof && st->avail_in == 0 && st->avail_out == before) {
			if (s->in_bytes == 0)
				return fl_err_set(e, -EBADMSG, "empty gzip file '%s'", s->path);
			return fl_err_set(e, -EBADMSG, "truncated gzip stream '%s' (ends at "
					  "compressed offset %llu)", s->path,
					  (unsigned long long)s->in_bytes);
		}
	}
	s->dec_off += len - st->avail_out;
	return (long)(len - st->avail_out);
}
#endif

bool fl_src_crc_deferred(const struct fl_src *s)
{
#ifdef HAVE_ISAL
	if (s->isal)
		return false;
#endif
	return s->fmt == RIG_FLASH_FMT_GZIP;
}

/* True if any mapped block of the bmap lies in [a, b) of the image. */
static bool map_wanted(void *user, uint64_t a, uint64_t b)
{
	const struct fl_bmap *bm = user;
	size_t lo = 0, hi = bm->n;

	/* first range whose end is past a */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if ((bm->r[mid].last + 1) * bm->block_size <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < bm->n && bm->r[lo].first * bm->block_size < b;
}

int fl_src_set_map(struct fl_src *s, const struct fl_bmap *bm, int threads, struct fl_err *e)
{
	int rc;

	if (s->fmt != RIG_FLASH_FMT_XZ || s->in_bytes || s->xzb)
		return 0;
	s->map = bm;
	rc = fl_xzb_open(s->fd, s->path, s->file_size, threads, map_wanted, (void *)bm, &s->xzb,
			 e);
	return rc < 0 ? rc : 0;
}

void fl_src_stop(struct fl_src *s)
{
	fl_xzb_stop(s->xzb);
}

uint64_t fl_src_bytes_skipped(const struct fl_src *s)
{
	return s->xzb ? fl_xzb_skipped(s->xzb) : 0;
}

static long rd_xz(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e)
{
	lzma_stream *x = &s->u.x;
	lzma_ret r;
	int f;

	if (s->xzb)
		return fl_xzb_read(s->xzb, buf, len, e);

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

	if (s->zfast)
		return rd_zip_fast(s, buf, len, e);
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
	case RIG_FLASH_FMT_GZIP:
#ifdef HAVE_ISAL
		if (s->isal)
			return rd_gzip_isal(s, buf, len, e);
#endif
		return rd_gzip(s, buf, len, e);
	case RIG_FLASH_FMT_XZ: return rd_xz(s, buf, len, e);
	case RIG_FLASH_FMT_ZSTD: return rd_zstd(s, buf, len, e);
	case RIG_FLASH_FMT_BZIP2: return rd_bzip2(s, buf, len, e);
	case RIG_FLASH_FMT_ZIP: return rd_zip(s, buf, len, e);
	}
	return fl_err_set(e, -EINVAL, "unknown format");
}

long fl_src_pread(struct fl_src *s, void *buf, size_t len, uint64_t off, struct fl_err *e)
{
	return read_full(s, buf, len, (int64_t)off, e);
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
	if (s->xzb)
		return fl_xzb_bytes_in(s->xzb);
	return s->in_bytes;
}

void fl_src_close(struct fl_src *s)
{
	if (!s)
		return;
	if (s->inited || s->fmt == RIG_FLASH_FMT_ZSTD || s->fmt == RIG_FLASH_FMT_XZ) {
		switch (s->fmt) {
		case RIG_FLASH_FMT_GZIP:
#ifdef HAVE_ISAL
			if (s->isal)
				break;
#endif
			if (s->inited) {
				inflateEnd(&s->u.z);
				pthread_mutex_destroy(&s->gz_mu);
			}
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
	fl_xzb_close(s->xzb);
	free(s->gz);
#ifdef HAVE_ISAL
	free(s->isal);
#endif
	ZSTD_freeDStream(s->zs);
	if (s->ar)
		archive_read_free(s->ar);
	free(s->in);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}
