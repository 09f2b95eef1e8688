/* SPDX-License-Identifier: MIT */
/* Internals shared by the flash engine's files. Not installed. */
#ifndef RIG_FLASH_FLASH_INTERNAL_H
#define RIG_FLASH_FLASH_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../rig_flash.h"

#define FL_PRIV __attribute__((visibility("hidden")))
#define FL_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Sticky first-error message buffer. */
struct fl_err {
	char *buf;
	size_t len;
	int code;
};

FL_PRIV void fl_err_init(struct fl_err *e, char *buf, size_t len);
/* Records (code, message) unless an error is already recorded; returns the recorded code. */
FL_PRIV int fl_err_set(struct fl_err *e, int code, const char *fmt, ...) FL_PRINTF(3, 4);
/* Appends to the recorded message (what was done about the failure); the code stays. */
FL_PRIV void fl_err_append(struct fl_err *e, const char *fmt, ...) FL_PRINTF(2, 3);

FL_PRIV double fl_now(void);

/* --- input streams (source.c) --- */
struct fl_src;
FL_PRIV int fl_src_open(const char *path, int threads, struct fl_src **out, struct fl_err *e);
/* Reads up to len decompressed bytes; returns count, 0 at end, or -errno (message in e). */
FL_PRIV long fl_src_read(struct fl_src *s, void *buf, size_t len, struct fl_err *e);
/* Raw images only: reads at an offset (used to skip unmapped ranges). */
FL_PRIV long fl_src_pread(struct fl_src *s, void *buf, size_t len, uint64_t off,
			  struct fl_err *e);
/* gzip: the consumer checks CRC-32/ISIZE of each member (decompressed end offset 'end'). */
struct fl_gz_member {
	uint64_t end;
	uint32_t crc, isize;
};
/* True if the consumer must check gzip CRCs (zlib build); false with ISA-L. */
FL_PRIV bool fl_src_crc_deferred(const struct fl_src *s);
/* Copies member i if the decoder has finished it; false otherwise (or not gzip). */
FL_PRIV bool fl_src_gz_member(struct fl_src *s, size_t i, struct fl_gz_member *m);
FL_PRIV enum rig_flash_format fl_src_format(const struct fl_src *s);
/* Decompressed size if known in advance, else 0. */
FL_PRIV uint64_t fl_src_size_hint(const struct fl_src *s);
/*
 * The decoded size to show progress against: the size hint, else what the container's own
 * index says (xz), else 0. Never used to accept or refuse an image: an index can be wrong.
 */
FL_PRIV uint64_t fl_src_size_expected(const struct fl_src *s);
/* Size of the image file (or block device) itself, the compressed input. */
FL_PRIV uint64_t fl_src_file_size(const struct fl_src *s);
/* Bytes of the image file read so far; call from the thread that reads the source. */
FL_PRIV uint64_t fl_src_bytes_in(const struct fl_src *s);
FL_PRIV void fl_src_close(struct fl_src *s);
/*
 * With a bmap, tell the source which decompressed ranges matter. A multi-block xz image
 * then decodes only the blocks holding mapped bytes (in parallel); the rest reads as zeros.
 * Call before the first read. Returns 0 or -errno.
 */
struct fl_bmap;
FL_PRIV int fl_src_set_map(struct fl_src *s, const struct fl_bmap *bm, int threads,
			   struct fl_err *e);
/*
 * Called from another thread: a fl_src_read() waiting for decoder workers returns -EINTR
 * promptly instead of after the blocks in flight are decoded. Only the block-parallel xz
 * reader waits like that; for the other formats this does nothing.
 */
FL_PRIV void fl_src_stop(struct fl_src *s);
/* Decompressed bytes the source skipped without decoding (see fl_src_set_map). */
FL_PRIV uint64_t fl_src_bytes_skipped(const struct fl_src *s);
FL_PRIV int fl_detect_magic(const unsigned char *b, size_t n, enum rig_flash_format *fmt);
/*
 * Checks the first @n decoded bytes of image @path (@fmt: its container) look like a disk
 * image: not text, not a container rigor cannot read. Returns 0 or -EINVAL (message in e).
 */
FL_PRIV int fl_image_check_head(const unsigned char *b, size_t n, const char *path,
				enum rig_flash_format fmt, struct fl_err *e);
/* True if descriptor @fd is the image file itself (same inode or same block device). */
FL_PRIV bool fl_src_same_file(const struct fl_src *s, int fd);

/* --- bmap (bmap.c) --- */
enum fl_csum { FL_CSUM_NONE = 0, FL_CSUM_SHA1, FL_CSUM_SHA256 };
struct fl_range {
	uint64_t first, last;          /* block numbers, inclusive */
	unsigned char digest[32];
	bool has_digest;
};
struct fl_bmap {
	uint64_t image_size;
	uint64_t block_size;
	uint64_t blocks;
	uint64_t mapped_blocks;
	enum fl_csum csum;
	size_t n;
	struct fl_range *r;
	int major, minor;
};
FL_PRIV int fl_bmap_load(const char *path, struct fl_bmap *bm, struct fl_err *e);
FL_PRIV int fl_bmap_parse(const char *text, size_t len, const char *name, struct fl_bmap *bm,
			  struct fl_err *e);
FL_PRIV void fl_bmap_release(struct fl_bmap *bm);
FL_PRIV size_t fl_csum_len(enum fl_csum c);

/* --- block-parallel xz (xzblocks.c) --- */
struct fl_xzb;
/*
 * Opens a reader that decodes only the blocks of a multi-block xz file for which
 * wanted(user, first, end) is true. Returns 1 with *out set, 0 (and *out NULL) if the file is
 * not suitable (one block, no readable index, huge blocks), or -errno.
 */
FL_PRIV int fl_xzb_open(int fd, const char *path, uint64_t fsize, int threads,
			bool (*wanted)(void *user, uint64_t a, uint64_t b), void *user,
			struct fl_xzb **out, struct fl_err *e);
FL_PRIV long fl_xzb_read(struct fl_xzb *x, void *buf, size_t len, struct fl_err *e);
FL_PRIV uint64_t fl_xzb_bytes_in(struct fl_xzb *x);
FL_PRIV uint64_t fl_xzb_skipped(const struct fl_xzb *x);
/*
 * The decoded size of the xz file (all its streams) from its index, or 0 if the index cannot
 * be read (a truncated or corrupt tail). Only an estimate until the data is decoded: the
 * streams' checks are what make it true.
 */
FL_PRIV uint64_t fl_xz_uncompressed_size(int fd, uint64_t fsize);
/*
 * Makes a fl_xzb_read() blocked in another thread (or the next one) return -EINTR, and the
 * workers give up their blocks within a chunk. Thread-safe; NULL is a no-op.
 */
FL_PRIV void fl_xzb_stop(struct fl_xzb *x);
FL_PRIV void fl_xzb_close(struct fl_xzb *x);

/* --- target (target.c) --- */
struct fl_target {
	int fd;          /* O_DIRECT if direct, else buffered */
	int fd_buf;      /* buffered descriptor for unaligned tails and cache control */
	bool direct;
	bool blockdev;
	uint64_t size;   /* device size, or current file size */
	unsigned int lbs;/* logical block size for O_DIRECT alignment */
	bool created;    /* a new file made for this flash (opts.create): removed on failure */
	bool grow;       /* a file that may grow (opts.create), not a card of fixed size */
	uint64_t limit;  /* most bytes the target may hold: its size, or for a created file the
			    free space of its file system */
	dev_t dev, rdev; /* identity, to notice a file target removed or replaced mid-way */
	ino_t ino;
};
FL_PRIV int fl_target_open(const char *path, const struct rig_flash_opts *o,
			   struct fl_target *t, struct fl_err *e);
FL_PRIV void fl_target_close(struct fl_target *t);
/*
 * Checks that @path still names the file or device @t opened. Returns 0, or -ENODEV with
 * the message naming what happened (removed, replaced).
 */
FL_PRIV int fl_target_check_path(const char *path, const struct fl_target *t,
				 struct fl_err *e);
/* Safety check of a block device (mounted, root, holders, removable). */
FL_PRIV int fl_blockdev_check(const char *path, unsigned int maj, unsigned int min, bool force,
			      struct fl_err *e);

/* --- child processes (fsfile.c) --- */
FL_PRIV int fl_run(char *const argv[], const char *in_file, char **out, size_t *outlen,
		   int timeout_ms, struct fl_err *e);

/* --- 64-bit block digest for read-back verification --- */
FL_PRIV uint64_t fl_hash64(const void *p, size_t n);

#endif
