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

/* --- input streams (source.c and one decode_*.c per format) --- */
struct fl_src;
struct fl_bmap;
FL_PRIV int fl_src_open(const char *path, int threads, struct fl_src **out, struct fl_err *e);
/* True if @image names an http:// or https:// URL rather than a file. */
FL_PRIV bool fl_is_url(const char *image);
/*
 * Opens an http(s) image as a stream (rig_http_stream_*): no random access, so no bmap-guided
 * skipping, no zip; messages name the URL redacted. @timeout_ms bounds the download.
 */
FL_PRIV int fl_src_open_url(const char *url, struct rig_ctx *ctx, const struct rig_flash_opts *o,
			    int timeout_ms, struct fl_src **out, struct fl_err *e);
/* The URL's resumed connections so far (and in @why the last break); 0 for a file. */
FL_PRIV int fl_src_resumes(const struct fl_src *s, char *why, size_t whylen);
/*
 * Reads what the decoder left of the input (bytes after its stream's end) into the
 * SHA-256 of the file, so the hash covers every byte. Call once the decoder is done.
 */
FL_PRIV int fl_src_drain(struct fl_src *s, struct fl_err *e);
/* True if the decoder does not read the file in order (a zip): no SHA-256 from it. */
FL_PRIV bool fl_src_unhashed_by_decoder(const struct fl_src *s);
/* The image as messages name it: its path, or its URL redacted. */
FL_PRIV const char *fl_src_name(const struct fl_src *s);
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
/* The decoder's name ("gzip-isal", "xz", ...), for the debug log. */
FL_PRIV const char *fl_src_decoder_name(const struct fl_src *s);
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
/*
 * The SHA-256 of the image file, taken from the bytes the decoder read: true and @md set
 * once the whole file went through the decoder in order (raw without bmap, gzip, single
 * stream xz, zstd, bzip2), false otherwise (a bmap skipped parts, a zip entry, libarchive).
 */
FL_PRIV bool fl_src_file_sha256(struct fl_src *s, unsigned char md[32]);
FL_PRIV int fl_detect_magic(const unsigned char *b, size_t n, enum rig_flash_format *fmt);
/*
 * Checks the first @n decoded bytes of image @path (@fmt: its container) look like a disk
 * image: not text, not a container rigor cannot read. Returns 0 or -EINVAL (message in e).
 */
FL_PRIV int fl_image_check_head(const unsigned char *b, size_t n, const char *path,
				enum rig_flash_format fmt, struct fl_err *e);
/* True if descriptor @fd is the image file itself (same inode or same block device). */
FL_PRIV bool fl_src_same_file(const struct fl_src *s, int fd);

/*
 * One decoder per container format (decode_<format>.c), chosen in source.c from a static
 * array by the format the magic bytes name; the first entry for a format wins, so a faster
 * build-gated decoder is listed before the portable one. The core (source.c) opens and checks
 * the file, owns the input buffer and allocates priv_size bytes of zeroed private state.
 */
struct fl_decoder_ops {
	const char *name;
	enum rig_flash_format fmt;
	size_t priv_size;
	/* Sets up the decoder; s->in holds the first bytes (s->in_len is still 0). */
	int (*open)(struct fl_src *s, int threads, struct fl_err *e);
	/* Decoded bytes into buf: count, 0 at the end, or -errno with the message in e. */
	long (*read)(struct fl_src *s, unsigned char *buf, size_t len, struct fl_err *e);
	/* Optional: releases what open() set up, also after a failed open(). */
	void (*close)(struct fl_src *s);
	/* Optional: fl_src_set_map(), fl_src_stop(), fl_src_bytes_skipped(). */
	int (*set_map)(struct fl_src *s, const struct fl_bmap *bm, int threads, struct fl_err *e);
	void (*stop)(struct fl_src *s);
	uint64_t (*skipped)(const struct fl_src *s);
	/* Optional: the input read so far, when the decoder reads the file itself. */
	uint64_t (*bytes_in)(const struct fl_src *s);
	/* Optional: a gzip decoder that leaves the CRC check to the consumer. */
	bool (*gz_member)(struct fl_src *s, size_t i, struct fl_gz_member *m);
};

/* What every decoder shares; the decoders read and advance the input buffer directly. */
struct fl_src {
	const struct fl_decoder_ops *ops;
	void *priv;                /* ops->priv_size bytes, zeroed */
	enum rig_flash_format fmt;
	int fd;
	const char *path;
	uint64_t in_bytes;         /* image file bytes read by fl_src_fill()/fl_src_read_full() */
	uint64_t in_limit;         /* most bytes fl_src_fill() may still read (a zip entry) */
	uint64_t size_hint;        /* decoded size declared by the container, 0 if unknown */
	uint64_t size_index;       /* xz: the decoded size its index gives, for progress only */
	unsigned char *in;         /* FL_IN_BUF bytes of input */
	size_t in_len, in_pos;
	bool in_eof;
	bool done;                 /* the decoder reached the end of its stream */
	unsigned char hist[8];     /* the 8 input bytes before in[0] (a gzip trailer) */
	uint64_t file_size;
	dev_t dev, rdev;           /* identity: an image must not be its own target */
	ino_t ino;
	bool blockdev;
	void *md;                  /* EVP_MD_CTX of the file's SHA-256 (fl_src_hash_file()) */
	bool unhashable;           /* not read whole and in order: no SHA-256 from the decoder */
	size_t head_len;           /* bytes of in[] the decoder's open() may look at */
	struct rig_http_stream *http; /* a URL: the input comes from here, fd is -1 */
	unsigned char *pre;        /* a URL: the first bytes, read to detect the format, */
	size_t pre_len, pre_pos;   /* given to the decoder before the rest of the stream */
	char *shown;               /* a URL: redacted, what path points to */
};

#define FL_IN_BUF (1u << 20)

/* Refills the input buffer if it is used up: 1 data available, 0 end of file, -errno. */
FL_PRIV int fl_src_fill(struct fl_src *s, struct fl_err *e);
/*
 * Reads up to @len bytes at @off (pread) or, with @off < 0, at the file position (read);
 * stops early only at end of file. Counts what it read as input.
 */
FL_PRIV long fl_src_read_full(struct fl_src *s, void *buf, size_t len, int64_t off,
			      struct fl_err *e);
/* The file is no longer read in order from its start: no SHA-256 of it from the decoder. */
FL_PRIV void fl_src_unhashed(struct fl_src *s);
/* Asks for the file's SHA-256 (fl_src_file_sha256()); call before the first read. */
FL_PRIV int fl_src_hash_file(struct fl_src *s, struct fl_err *e);

FL_PRIV extern const struct fl_decoder_ops fl_dec_raw, fl_dec_gzip, fl_dec_xz, fl_dec_zstd,
	fl_dec_bzip2, fl_dec_zip;
#ifdef HAVE_ISAL
FL_PRIV extern const struct fl_decoder_ops fl_dec_gzip_isal;
#endif

/*
 * Raw deflate of a zip entry read in place (decode_gzip_isal.c with ISA-L, else
 * decode_noisal.c, where fl_zip_inflate_size() is 0 and libarchive decodes the entry).
 */
FL_PRIV size_t fl_zip_inflate_size(void);
FL_PRIV void fl_zip_inflate_init(void *state);
/*
 * Inflates into @buf from the source's input; adds to *got; *finished at the entry's end,
 * with its CRC-32 in *crc. Returns 0 or -EBADMSG.
 */
FL_PRIV int fl_zip_inflate(void *state, struct fl_src *s, unsigned char *buf, size_t len,
			   size_t *got, bool *finished, uint32_t *crc, struct fl_err *e);

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
/* Range digests (@md: an EVP_MD_CTX) in the bmap's checksum type. */
FL_PRIV void fl_bmap_digest_init(const struct fl_bmap *bm, void *md);
FL_PRIV bool fl_bmap_digest_ok(const struct fl_bmap *bm, void *md, const struct fl_range *r);
FL_PRIV const char *fl_bmap_digest_msg(const struct fl_bmap *bm, const struct fl_range *r,
				       char *m, size_t len);

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
	const char *path;
	int fd;          /* O_DIRECT if direct, else buffered */
	int fd_buf;      /* buffered descriptor for unaligned tails and cache control */
	bool direct;
	bool blockdev;
	uint64_t size;   /* device size, or current file size (grown as the image is written) */
	unsigned int lbs;/* logical block size for O_DIRECT alignment */
	bool created;    /* a new file made for this flash (opts.create): removed on failure */
	bool grow;       /* a file that may grow (opts.create), not a card of fixed size */
	bool touched;    /* a write (or a resize) began: a failure must invalidate the target */
	uint64_t limit;  /* most bytes the target may hold: its size, or for a created file the
			    free space of its file system */
	dev_t dev, rdev; /* identity, to notice a file target removed or replaced mid-way */
	ino_t ino;
	enum rig_flash_hint hint; /* a refused open: the option that would have allowed it */
	int rfd;         /* descriptor for reading back: O_DIRECT if rdirect, else fd_buf */
	bool rdirect;
	unsigned int rlbs;
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
/* Safety check of a block device (mounted, root, holders, removable; *hint set if force
 * would allow it). */
FL_PRIV int fl_blockdev_check(const char *path, unsigned int maj, unsigned int min, bool force,
			      enum rig_flash_hint *hint, struct fl_err *e);
/*
 * Records the failure of @what ("write", "read", "flush", ...) at @off with errno @err as
 * the error class a caller can act on: -ENODEV (vanished), -EIO (a full file system under a
 * file target, or a device error), -EROFS, or -err. Returns the recorded code.
 */
FL_PRIV int fl_target_fail(const struct fl_target *t, const char *what, uint64_t off, int err,
			   struct fl_err *e);
/*
 * The image does not fit: @need is its size when @known, else the offset it reached. A file
 * target is a card of fixed size; it is never grown past it. Returns -ENOSPC.
 */
FL_PRIV int fl_target_too_small(const struct fl_target *t, uint64_t need, bool known,
				struct fl_err *e);
/*
 * Erases the first and the last MiB of the target and flushes it, reopening the path if the
 * target was closed. Returns 0 or -errno with the reason in @why.
 */
FL_PRIV int fl_target_invalidate(struct fl_target *t, char *why, size_t whylen);

/* --- pipeline stages: decode ring (ring.c), compare-write (delta.c), verify (verify.c) --- */
#define FL_CHUNK (4u << 20)
#define FL_NSLOT 4

/* One chunk of decoded image, handed from the decoder thread to the writer. */
struct fl_slot {
	unsigned char *buf;
	size_t len;
	uint64_t off;
	uint64_t in;          /* image file bytes read when the slot was filled */
	bool eof;
	int err;              /* decoding failed after len bytes; message: fl_ring_errmsg() */
};

struct fl_ring;
/* @sparse: a raw image with a bmap, whose mapped ranges alone are read (and digested). */
FL_PRIV int fl_ring_new(struct fl_ring **out, struct fl_src *src, const struct fl_bmap *sparse,
			struct fl_err *e);
FL_PRIV int fl_ring_start(struct fl_ring *r, struct fl_err *e);
/* The next filled slot, waiting at most @ms; NULL if none yet. Give it back with _done(). */
FL_PRIV const struct fl_slot *fl_ring_next(struct fl_ring *r, long ms);
/* Returns the slot to the decoder; @stop: the decoder is to stop instead of refilling. */
FL_PRIV void fl_ring_done(struct fl_ring *r, bool stop);
FL_PRIV void fl_ring_stop(struct fl_ring *r);
FL_PRIV void fl_ring_join(struct fl_ring *r);
FL_PRIV const char *fl_ring_errmsg(const struct fl_ring *r);
/* Stops and joins the decoder if it still runs; NULL is a no-op. */
FL_PRIV void fl_ring_free(struct fl_ring *r);

struct fl_verify;
FL_PRIV int fl_verify_new(struct fl_verify **out, const struct fl_target *t,
			  const struct rig_flash_opts *o, uint64_t gran, struct fl_err *e);
FL_PRIV int fl_verify_start(struct fl_verify *v, struct fl_err *e);
/* True once the read-back thread runs (NULL: false). */
FL_PRIV bool fl_verify_running(const struct fl_verify *v);
/* Keeps the digests of [a, b), whose data starts at @p, for the read-back. */
FL_PRIV int fl_verify_record(struct fl_verify *v, const unsigned char *p, uint64_t a,
			     uint64_t b, struct fl_err *e);
/*
 * Queues the written range [a, b) for reading back. A failure of the read-back thread
 * found meanwhile is returned (its message into @e, its offset into *fail_off).
 */
FL_PRIV int fl_verify_push(struct fl_verify *v, uint64_t a, uint64_t b, uint64_t *fail_off,
			   struct fl_err *e);
/* Counts @n bytes as verified: an O_DIRECT compare found them equal. */
FL_PRIV void fl_verify_credit(struct fl_verify *v, uint64_t n);
/* Called about ten times a second while draining; non-zero stops the read-back. */
typedef int (*fl_verify_tick_fn)(void *user, uint64_t verified, uint64_t fail_off);
/*
 * Ends the read-back thread: @drain waits until every queued range is read back, else it
 * stops at once. Returns 0, the thread's failure, or the error already in @e.
 */
FL_PRIV int fl_verify_finish(struct fl_verify *v, bool drain, fl_verify_tick_fn tick,
			     void *user, uint64_t *verified, uint64_t *fail_off,
			     struct fl_err *e);
FL_PRIV void fl_verify_free(struct fl_verify *v);

struct fl_delta;
/* @v: the verify stage, or NULL without read-back. Errors go to @e. */
FL_PRIV int fl_delta_new(struct fl_delta **out, struct fl_target *t,
			 const struct rig_flash_opts *o, struct rig_flash_stats *st,
			 struct fl_verify *v, uint64_t gran, struct fl_err *e);
/*
 * Compares the mapped piece [a, b) of the image whose data starts at @p and queues the
 * writes of what differs (a copy: @p may be reused at once). Returns 0, or the first failure,
 * also one of an earlier piece's write or read-back queued meanwhile.
 */
FL_PRIV int fl_delta_put(struct fl_delta *d, const unsigned char *p, uint64_t a, uint64_t b);
/* Waits until every queued write is done and queued for read-back; 0 or the failure. */
FL_PRIV int fl_delta_finish(struct fl_delta *d);
/* Stops the writer after the write in progress (the queued ones are dropped); NULL: no-op. */
FL_PRIV void fl_delta_free(struct fl_delta *d);

/* --- the image file's SHA-256 beside the flash (filehash.c) --- */
struct fl_filehash;
/*
 * Starts a thread that reads the @size bytes of the file open as @fd (pread, from its start)
 * and takes their SHA-256. @fd must stay open until fl_filehash_finish() or _free().
 * Returns 0, or -ENOMEM/-EAGAIN with *out to be freed.
 */
FL_PRIV int fl_filehash_start(struct fl_filehash **out, int fd, uint64_t size,
			      struct fl_err *e);
/* Waits for the thread; true and @md set if it read and hashed the whole file. */
FL_PRIV bool fl_filehash_finish(struct fl_filehash *h, unsigned char md[32]);
/* Stops the thread if it still runs; NULL is a no-op. */
FL_PRIV void fl_filehash_free(struct fl_filehash *h);

/* --- child processes (fsfile.c) --- */
FL_PRIV int fl_run(char *const argv[], const char *in_file, char **out, size_t *outlen,
		   int timeout_ms, struct fl_err *e);

/* --- 64-bit block digest for read-back verification --- */
FL_PRIV uint64_t fl_hash64(const void *p, size_t n);

#endif
