/* SPDX-License-Identifier: MIT */
/**
 * @file rig_flash.h
 * @brief rigor flash engine: write a disk image to an SD card, USB disk or file, fast and
 *        verified, and read/write files inside the image's boot partition.
 *
 * # Overview
 * rig_flash_image() takes an image in any supported container (raw, gzip, xz single- or
 * multi-block, zstd, bzip2, or a zip holding exactly one image), optionally a bmap file
 * (bmaptool 1.x or 2.x format, SHA-1 or SHA-256), and writes it to a target, which is either a
 * block device or a regular file. It
 *  - detects the input format by its magic bytes, never by its file name;
 *  - finds "IMAGE.bmap" or "IMAGE-without-compression-suffix.bmap" next to the image unless a
 *    bmap is given or rig_flash_opts::no_bmap is set; only mapped ranges are written and every
 *    range's checksum is checked while the data streams past;
 *  - runs decompression in its own thread (xz multi-block streams are decoded by several
 *    threads) so that decoding overlaps with writing;
 *  - compares each mapped block with what the target already holds and writes only the blocks
 *    that differ ("delta", the default; rig_flash_opts::full writes everything);
 *  - in a third thread, pushes each written range to the device, drops it from the page cache
 *    and reads it back (O_DIRECT), comparing it with a per-4-KiB-block digest of what was
 *    written (rig_flash_opts::verify, the default), so verification overlaps with writing;
 *  - flushes the target (fdatasync) before returning success;
 *  - optionally copies files into a FAT partition of the freshly written target
 *    (rig_flash_opts::inject) and reads them back.
 *
 * # What it refuses, and what a failure leaves behind
 * The image must be a regular file or a block device holding a disk image: whole 512-byte
 * sectors, not empty, not a text file, not a container rigor cannot read (qcow2, 7z, tar,
 * Android sparse, ...). Those are refused with -EINVAL before the target is opened, as are
 * character devices (/dev/zero), FIFOs, sockets and directories, which would never end or
 * never start. A decoded stream is held to the same rules as it arrives.
 *
 * The target is a block device or an existing regular file. A regular file stands for a card:
 * its size is fixed and an image that does not fit fails with -ENOSPC ("image is larger than
 * the card"), before writing when the size is known in advance, else at the first write past
 * the end. A new file is created (and sized to the image) only with rig_flash_opts::create,
 * and never under /dev or on a devtmpfs.
 *
 * A failure before the first write leaves the target byte-for-byte unchanged. A failure after
 * it (corrupt data further in, a verify mismatch, cancel, timeout, an I/O error) erases the
 * first and the last MiB of the target (partition tables, boot sector, backup GPT) and
 * flushes it, so a half-written card cannot boot; the message says so
 * ("...; the card was invalidated (first and last MiB erased) so it cannot boot") and
 * rig_flash_stats::invalidated is set. A file the call created is removed instead, and
 * rig_flash_stats::removed is set (the message does not say so: it may have been a scratch
 * file of the caller's).
 *
 * The rig_part_* calls parse MBR/GPT partition tables of an image or a device, find a
 * partition by number or label (GPT name, FAT or ext4 volume label) and copy files in and out
 * of FAT (with mtools) or out of ext4 (with debugfs).
 *
 * # Return codes
 * The flash calls follow librig's convention (rig.h): 0 on success, a negative ::rig_err on
 * failure, and a lowercase detail message recorded on the ::rig_ctx passed in
 * (rig_ctx_errmsg()). The first error since rig_ctx_clear_error() wins, so the message names
 * the root cause (for example the offset where a write failed), not the failures it caused.
 * The same code always means the same class of failure, so a caller (a Lua suite through
 * rig:flash()) can act on it without reading the message:
 *  - RIG_E_INVAL   bad argument or input that is not a usable image: empty, not whole
 *                  sectors, text, an unsupported container, a special file or directory, a
 *                  malformed bmap, zip without exactly one image, image == target;
 *  - RIG_E_CORRUPT corrupt or truncated compressed input, a bmap checksum mismatch, or an
 *                  image file whose SHA-256 is not rig_flash_opts::sha256;
 *  - RIG_E_NOSPC   the target (a card, or a file standing for one) is smaller than the image;
 *  - RIG_E_IO      read-back verification found different data, the target reported EIO,
 *                  the file system holding a file target is full, or another OS failure
 *                  (the message names the call);
 *  - RIG_E_NODEV   the target disappeared (or a file target was removed or replaced);
 *  - RIG_E_ROFS    the target is read-only (a card's write-protect switch);
 *  - RIG_E_BUSY    the target is in use (mounted, held, or O_EXCL refused);
 *  - RIG_E_PERM    a safety rule refused the target (system disk, not removable);
 *  - RIG_E_INTR    cancelled through the context's cancel flag (rig_ctx_set_cancel());
 *  - RIG_E_TIMEOUT the call exceeded its timeout_ms or the context's deadline;
 *  - RIG_E_NOENT   a file, partition or entry was not found: the image, the bmap, or a
 *                  target that does not exist ("no such device" under /dev);
 *  - RIG_E_NOTSUP  the operation is not supported for this file system;
 *  - RIG_E_NOMEM   out of memory.
 * Where an option of the call would have changed the outcome (a missing file target and
 * rig_flash_opts::create, a fixed disk and rig_flash_opts::force), rig_flash_stats::hint says
 * so, for the caller to name its own switch for it; the message does not.
 *
 * The rig_part_* calls still take `char *err, size_t errlen` for their message and return
 * negative errno values (the same numbers as the codes above).
 *
 * # Thread safety
 * There is no global state. Different calls may run in parallel on different targets. The
 * progress callback is called from the thread that called rig_flash_image(). The library
 * never prints and never exits; child processes (mtools, debugfs) have their output captured.
 * A ::rig_ctx is used by one thread at a time: give parallel flashes a context each.
 *
 * # Debugging
 * rig_flash_stats records what was done per phase. With the context's log level at
 * RIG_LOG_DBG (RIGOR_DEBUG=1), the engine logs its decoder, bmap and target and each phase
 * under the module name "flash". rig_flash_opts::fault lets tests inject a write error or
 * corrupt the target between writing and reading back.
 */
#ifndef RIG_FLASH_H
#define RIG_FLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef RIG_API
#define RIG_API __attribute__((visibility("default")))
#endif

struct rig_ctx;

/** Input container, detected from magic bytes. Append-only. */
enum rig_flash_format {
	RIG_FLASH_FMT_RAW = 0,
	RIG_FLASH_FMT_GZIP,
	RIG_FLASH_FMT_XZ,
	RIG_FLASH_FMT_ZSTD,
	RIG_FLASH_FMT_BZIP2,
	RIG_FLASH_FMT_ZIP,
};

/** Phase reported to the progress callback. Append-only. */
enum rig_flash_phase {
	RIG_FLASH_PHASE_PREPARE = 0, /**< opening, parsing bmap, safety checks */
	RIG_FLASH_PHASE_WRITE,       /**< decompress + compare + write (done = image offset;
				      total = the bmap's image size, else the decoded size the
				      image declares (zstd, zip) or its xz index gives, else 0
				      and in_done/in_total measure it) */
	RIG_FLASH_PHASE_SYNC,        /**< flushing the target */
	RIG_FLASH_PHASE_VERIFY,      /**< finishing the read-back that ran alongside the writes
				      (done = bytes verified, rate since writing began) */
	RIG_FLASH_PHASE_INJECT,      /**< copying files into partitions (done = files) */
	RIG_FLASH_PHASE_DONE,        /**< once, at the end (done = mapped bytes, rate over the
				      whole call) */
};

/** Snapshot passed to the progress callback. Valid only during the callback. */
struct rig_flash_progress {
	enum rig_flash_phase phase;
	uint64_t done;      /**< bytes of this phase done */
	uint64_t total;     /**< bytes of this phase expected, 0 if unknown */
	double rate;        /**< bytes per second over this phase so far */
	double elapsed;     /**< seconds since the phase started */
	uint64_t written;   /**< bytes written to the target so far */
	uint64_t skipped;   /**< mapped bytes skipped because the target already held them */
	uint64_t in_done;   /**< write phase of a compressed image: bytes of the image file read
			         so far (the decoder reads ahead up to a few MiB); else 0 */
	uint64_t in_total;  /**< write phase of a compressed image: the image file's size, so
			         in_done / in_total is the progress when total is 0; else 0 */
};

/**
 * Progress callback. Called at most about ten times a second per phase, plus once at the
 * start and once at the end of each phase. Must not call back into the same flash job.
 */
typedef void (*rig_flash_progress_fn)(const struct rig_flash_progress *p, void *user);

/** One file to copy into a partition of the target after flashing. */
struct rig_flash_inject {
	const char *part;  /**< partition: "1".."N" or a label such as "resin-boot" */
	const char *src;   /**< local file to copy */
	const char *dest;  /**< path inside the partition, e.g. "/config.json" */
	bool append;       /**< true: append src to dest (created if missing), e.g. config.txt */
};

/**
 * Options for rig_flash_image(). The caller owns it and its strings; embed it and call
 * rig_flash_opts_init() first, then set the fields you need. New fields are only ever added
 * with a default that keeps the old behaviour.
 */
struct rig_flash_opts {
	const char *bmap;      /**< bmap file; NULL: look next to the image */
	bool no_bmap;          /**< true: ignore any bmap, write the whole image */
	bool verify;           /**< read back and compare (default true) */
	bool full;             /**< true: write every mapped block; false (default): delta */
	bool force;            /**< allow a block device that is not removable */
	bool no_direct;        /**< never use O_DIRECT (default false: use it for devices) */
	int threads;           /**< decoder threads, 0 = number of CPUs */
	int timeout_ms;        /**< overall deadline, -1 (default) = none */
	rig_flash_progress_fn progress; /**< may be NULL */
	void *progress_user;   /**< passed to progress */
	const struct rig_flash_inject *inject; /**< files to copy in after flashing, or NULL */
	size_t n_inject;
	/**
	 * true: the target may be a new image file: created if missing (never under /dev or on
	 * a devtmpfs) and grown to the image's size, up to the free space of its file system.
	 * false (default): the target must exist, and a regular file keeps its size like a card.
	 */
	bool create;
	/**
	 * true: compute the SHA-256 of the image file while flashing it
	 * (rig_flash_stats::sha256). Where the decoder reads the whole file in order (raw
	 * without a bmap, gzip, xz without a bmap or single-block, zstd, bzip2) it hashes
	 * every byte as it reads it; otherwise (a bmap, a zip entry) a thread reads the whole
	 * file beside the writes. Either is cheaper than reading it again afterwards
	 * (rig_image_opts::sha256), but not free, so it is off by default.
	 */
	bool hash_image;
	/**
	 * The SHA-256 the image file must have, as 64 hex digits, or NULL. The bytes are hashed
	 * as they are read (for a URL, as they are downloaded), so a bmap no longer skips
	 * parts of the file. A mismatch found after writing began fails with RIG_E_CORRUPT
	 * and the target is invalidated, like corrupt data; a zip file is hashed before
	 * anything is written.
	 */
	const char *sha256;
	/** A URL: no byte received for this long fails with RIG_E_TIMEOUT (default 30000). */
	int stall_ms;
	/** A URL: resumes in a row without progress before giving up (default 5). */
	int retries;
	/** Fault injection for tests. Leave at the values rig_flash_opts_init() sets. */
	struct {
		int64_t write_offset;  /**< fail the write covering this target offset, -1 = off */
		int write_errno;       /**< errno to fail it with (EIO, ENODEV, ...) */
		int64_t corrupt_offset;/**< flip this byte after flushing, before read-back; -1 */
		int chunk_delay_ms;    /**< sleep this long per 4 MiB chunk (slow device), 0 */
	} fault;
};

/** What would have changed a refusal, for the caller to name its own switch. Append-only. */
enum rig_flash_hint {
	RIG_FLASH_HINT_NONE = 0,
	RIG_FLASH_HINT_CREATE,    /**< the file target does not exist: rig_flash_opts::create */
	RIG_FLASH_HINT_FORCE,     /**< a fixed (not removable) disk: rig_flash_opts::force */
};

/** Results of rig_flash_image(), filled also on failure as far as the job got. */
struct rig_flash_stats {
	enum rig_flash_format format;
	bool bmap_used;           /**< a bmap restricted and checked the written ranges */
	bool direct_io;           /**< target was written with O_DIRECT */
	bool target_is_blockdev;
	uint64_t image_size;      /**< decompressed image size (known at the end) */
	uint64_t bytes_read;      /**< compressed input consumed */
	uint64_t bytes_decompressed;
	uint64_t bytes_undecoded; /**< xz with bmap: bytes of blocks holding no mapped data, not decoded */
	uint64_t bytes_mapped;    /**< bytes in mapped ranges (== image_size without bmap) */
	uint64_t bytes_written;   /**< bytes written to the target */
	uint64_t bytes_skipped;   /**< mapped bytes not written because they already matched */
	uint64_t bytes_verified;  /**< bytes read back and found equal */
	uint64_t fail_offset;     /**< on failure: target offset reached or found bad */
	double t_prepare, t_write, t_sync, t_verify, t_inject, t_total; /**< seconds */
	double mbps;              /**< bytes_mapped / t_total in MB/s (10^6) */
	bool target_written;      /**< a write to the target began (so a failure invalidated it) */
	bool invalidated;         /**< on failure: the first and last MiB were erased and flushed */
	bool removed;             /**< on failure: the file this call created was removed */
	enum rig_flash_hint hint; /**< on a refusal: the option that would have changed it */
	bool has_sha256;          /**< rig_flash_opts::hash_image and the whole file was read */
	char sha256[65];          /**< SHA-256 of the image file, lowercase hex, "" if none */
	/**
	 * Mapped bytes written without comparing first: after 32 MiB in a row where nothing
	 * matched (a blank card or another OS), 128 MiB at a time are written blind, then one
	 * piece is compared again. Included in bytes_written.
	 */
	uint64_t bytes_blind;
	/** rig_flash_opts::sha256 was given and the image file's SHA-256 matched it. */
	bool sha256_matched;
	/** A URL: how many times a broken connection was resumed (Range requests). */
	int resumes;
};

/** Sets every field of @p o to its default. Does not allocate; nothing to release. */
RIG_API void rig_flash_opts_init(struct rig_flash_opts *o);

/**
 * Writes @p image to @p target.
 *
 * Blocks until done, failed, cancelled or timed out. The target is a block device (opened
 * with O_EXCL, refused if it or one of its partitions is mounted, holds / or /boot, is held
 * by another device such as LVM, or is not removable unless o->force) or an existing regular
 * file of fixed size (with o->create: created if missing and grown to the image's size;
 * never truncated, so delta works). At the end a file target's path must still name the
 * file that was written (RIG_E_NODEV otherwise). A failure after the first write invalidates
 * the target (see the overview).
 *
 * @param ctx    the context: its cancel flag and deadline stop the call, its log gets the
 *               engine's debug lines and its error the detail message (rig_ctx_errmsg())
 * @param image  path of the image (any supported format), or an http:// or https:// URL:
 *               streamed through the decoders with no temporary copy (not a zip), resumed
 *               with range requests after a dropped connection (rig_http.h,
 *               rig_http_stream_open()); no bmap is looked for next to it; credentials in it
 *               appear in no message (redacted as ***@)
 * @param target path of the block device or file to write
 * @param o      options, or NULL for the defaults
 * @param st     statistics out, or NULL; filled even on failure
 * @retval 0 the image is on the target, flushed and (unless disabled) verified
 * @retval RIG_E_CORRUPT corrupt/truncated input, bmap checksum mismatch (message names range),
 *                       or the image file's SHA-256 differs from o->sha256 (message names
 *                       both)
 * @retval RIG_E_NOSPC   target smaller than the image / mapped size
 * @retval RIG_E_IO      read-back mismatch (message names the first bad offset), a device
 *                       error, a full file system under a file target, another OS failure
 * @retval RIG_E_NODEV   target vanished (message names the offset), or was removed or replaced
 * @retval RIG_E_ROFS    target read-only
 * @retval RIG_E_BUSY    target in use or mounted
 * @retval RIG_E_PERM    target is a system disk, or not removable without o->force
 *                       (st->hint is RIG_FLASH_HINT_FORCE)
 * @retval RIG_E_INTR    cancelled; st->fail_offset tells how far it got
 * @retval RIG_E_TIMEOUT o->timeout_ms or the context's deadline passed
 * @retval RIG_E_IO      (a URL) a 5xx status, or the connection broke off and the server
 *                       does not accept ranges, or resuming failed o->retries times in a row
 * @retval RIG_E_PROTO   (a URL) a resumed response that is not the rest of the same file
 * @retval RIG_E_TIMEOUT (a URL) no byte for o->stall_ms
 * @retval RIG_E_NOENT   the image (HTTP 404 for a URL), the bmap or the target does not exist (a missing file
 *                       target without o->create: st->hint is RIG_FLASH_HINT_CREATE)
 * @retval RIG_E_INVAL   not an image (empty, not whole sectors, text, special file, unsupported
 *                       container), malformed bmap, bad zip content, target under /dev to create,
 *                       o->sha256 not 64 hex digits, a zip URL, an HTTP 4xx other than 404/410
 * @retval RIG_E_NOMEM   out of memory
 * Thread safety: safe to call concurrently for different targets with different contexts.
 */
RIG_API int rig_flash_image(struct rig_ctx *ctx, const char *image, const char *target,
			    const struct rig_flash_opts *o, struct rig_flash_stats *st);

/**
 * Detects the container format of @p path from its first bytes. Does not block (a FIFO is
 * opened non-blocking).
 * @retval 0 and *fmt set
 * @retval RIG_E_NOENT the file does not exist
 * @retval RIG_E_IO    it cannot be read (message in rig_ctx_errmsg())
 */
RIG_API int rig_flash_format_detect(struct rig_ctx *ctx, const char *path,
				    enum rig_flash_format *fmt);

/**
 * Checks what rig_flash_image() checks of @p image before it writes anything, without a
 * target and without decoding: a regular file or block device, not empty; a raw image is
 * whole 512-byte sectors and not text, an ELF file, qcow2 or another container rigor cannot
 * read; a zip holds exactly one image. What a compressed stream holds is checked only as it
 * is decoded (rig_flash_image()), so a corrupt or truncated one passes here. Reads the first
 * MiB (and a zip's directory); does not block otherwise.
 * @param fmt    set to the container format, or NULL
 * @retval 0 the image can be given to rig_flash_image()
 * @retval RIG_E_NOENT   the image does not exist (or is a dangling symbolic link)
 * @retval RIG_E_INVAL   not an image (message says what it is instead)
 * @retval RIG_E_CORRUPT a zip whose directory cannot be read
 * @retval RIG_E_IO      it cannot be read
 */
RIG_API int rig_flash_image_check(struct rig_ctx *ctx, const char *path,
				  enum rig_flash_format *fmt);

/** Static lowercase name of @p fmt ("raw", "gzip", "xz", "zstd", "bzip2", "zip"). */
RIG_API const char *rig_flash_format_name(enum rig_flash_format fmt);

/** Static lowercase name of @p phase ("prepare", "write", "sync", "verify", "inject", "done"). */
RIG_API const char *rig_flash_phase_name(enum rig_flash_phase phase);

/**
 * How far the phase of @p p is, from 0 to 1: done / total, else (a compressed image whose
 * decoded size is not known) in_done / in_total.
 * @retval -1 nothing is known to measure against (prepare, sync)
 */
RIG_API double rig_flash_progress_fraction(const struct rig_flash_progress *p);

/**
 * Formats one plain progress line without newline, e.g.
 * "write   412.0/1024.0 MiB  40%  85.3 MB/s  eta 7s  (written 300.0 MiB, skipped 112.0 MiB)",
 * or, when only the image file's progress is known,
 * "write   412.0 MiB (image file 98.0/245.0 MiB read)  40%  85.3 MB/s  eta 7s  (...)".
 * Sizes that are not known are left out, never shown as 0.0.
 * @return the length snprintf() would return (the line is truncated to @p len).
 */
RIG_API int rig_flash_progress_format(const struct rig_flash_progress *p, char *buf,
				      size_t len);

/**
 * Finds the bmap that rig_flash_image() would use for @p image when none is given:
 * IMAGE.bmap, then IMAGE without its last suffix (".gz", ".xz", ".zst", ".bz2", ".zip") +
 * ".bmap", then that without ".img"/".raw" + ".bmap".
 * @return a malloc'd path the caller frees with free(), or NULL if none exists.
 */
RIG_API char *rig_flash_bmap_find(const char *image);

/* ---------------------------------------------------------------------------------------- */
/* Partitions and files inside them                                                           */

/** Parsed partition table of an image or device. Opaque; free with rig_part_table_free(). */
struct rig_part_table;

/** Partition table kind. Append-only. */
enum rig_part_scheme { RIG_PART_MBR = 1, RIG_PART_GPT = 2 };

/** File system found at the start of a partition. Append-only. */
enum rig_part_fs { RIG_PART_FS_UNKNOWN = 0, RIG_PART_FS_FAT, RIG_PART_FS_EXT };

/** Description of one partition; strings point into the table and live as long as it. */
struct rig_part_info {
	unsigned int index;   /**< 1-based, as Linux numbers them (MBR logical from 5) */
	uint64_t start;       /**< byte offset in the image/device */
	uint64_t size;        /**< bytes */
	unsigned int mbr_type;/**< MBR type byte, 0 for GPT */
	const char *type_guid;/**< GPT type GUID text, "" for MBR */
	const char *name;     /**< GPT partition name, "" for MBR */
	const char *fs_label; /**< FAT or ext volume label, "" if none */
	enum rig_part_fs fs;
	bool bootable;        /**< MBR active flag / GPT legacy-BIOS-bootable attribute */
};

/**
 * Reads and parses the partition table of @p path (image file or block device).
 * Reads the GPT if the MBR is protective (type 0xEE), otherwise the MBR and its extended
 * chain. Also reads each partition's file-system label. Blocks on disk reads only.
 * @param out  set to a new table the caller frees with rig_part_table_free()
 * @retval 0 success
 * @retval -EINVAL no valid table (no 0x55AA signature, bad GPT header/CRC, entries outside
 *                 the disk, overlapping partitions, extended-partition loop)
 * @retval -errno  cannot read @p path
 */
RIG_API int rig_part_table_read(const char *path, struct rig_part_table **out, char *err,
				size_t errlen);

/** Frees @p t. NULL is a no-op. */
RIG_API void rig_part_table_free(struct rig_part_table *t);

/** Partition scheme of @p t. */
RIG_API enum rig_part_scheme rig_part_table_scheme(const struct rig_part_table *t);

/** Number of partitions in @p t (positions 0..count-1 for rig_part_table_get()). */
RIG_API size_t rig_part_table_count(const struct rig_part_table *t);

/**
 * Fills @p info with the partition at position @p pos (0-based, in table order).
 * @retval 0 success; -ENOENT if pos >= count.
 */
RIG_API int rig_part_table_get(const struct rig_part_table *t, size_t pos,
			       struct rig_part_info *info);

/**
 * Finds a partition by @p sel: a decimal number is a partition index ("1"), anything else is
 * matched against the GPT name, then against the file-system label (case-insensitive, so
 * "resin-boot" matches the FAT label "RESIN-BOOT").
 * @retval 0 found; -ENOENT not found (message lists what exists).
 */
RIG_API int rig_part_table_find(const struct rig_part_table *t, const char *sel,
				struct rig_part_info *info, char *err, size_t errlen);

/**
 * Reads file @p path from partition @p part of @p image (image file or device) into a new
 * buffer. FAT uses mtools (mcopy), ext2/3/4 uses debugfs; both run as child processes with an
 * argv (no shell).
 * @param data    set to a malloc'd buffer (NUL-terminated for convenience, NUL not counted);
 *                the caller frees it with free()
 * @param len     set to the file length
 * @param timeout_ms deadline for the child process, -1 = none
 * @retval 0 success
 * @retval -ENOENT partition or file not found
 * @retval -ENOTSUP unknown file system
 * @retval -ETIMEDOUT child did not finish in time (it is killed)
 * @retval -errno other failures (message has the tool's stderr)
 */
RIG_API int rig_part_file_read(const char *image, const char *part, const char *path,
			       char **data, size_t *len, int timeout_ms, char *err,
			       size_t errlen);

/**
 * Lists every file and directory of the FAT partition @p part of @p image (image file or
 * device) with one child process (mtools' mdir), so that a caller looking for several files
 * need not start one reader per file. One path per line, from the root ("/EFI/BOOT/BOOTX64.EFI"),
 * a directory with a trailing '/'; FAT names compare case-insensitively.
 * @param list    set to a malloc'd, NUL-terminated buffer; the caller frees it with free()
 * @param len     set to its length
 * @param timeout_ms deadline for the child process, -1 = none
 * @retval 0 success (an empty file system gives an empty list)
 * @retval -ENOENT partition not found
 * @retval -ENOTSUP the partition is not FAT
 * @retval -ETIMEDOUT, -errno as rig_part_file_read()
 */
RIG_API int rig_part_file_list(const char *image, const char *part, char **list, size_t *len,
			       int timeout_ms, char *err, size_t errlen);

/**
 * Writes @p len bytes at @p data as file @p path in the FAT partition @p part of @p image,
 * replacing an existing file and creating missing parent directories.
 * @param append true: append to the existing file (created if missing) instead
 * @retval 0 success
 * @retval -ENOTSUP the partition is not FAT
 * @retval -ENOENT partition not found
 * @retval -ETIMEDOUT, -errno as rig_part_file_read()
 */
RIG_API int rig_part_file_write(const char *image, const char *part, const char *path,
				const void *data, size_t len, bool append, int timeout_ms,
				char *err, size_t errlen);

/* ---------------------------------------------------------------------------------------- */
/* Rig mode: what the last flash left on a rig's card (host/src/flash_rig.c, in librig)       */

struct rig;

/** State of a rig's card as its last rig_flash() left it. Append-only. */
enum rig_flash_card {
	RIG_FLASH_CARD_UNKNOWN = 0,  /**< no flash recorded since the state directory was made */
	RIG_FLASH_CARD_FLASHED,      /**< the last flash succeeded */
	RIG_FLASH_CARD_INVALIDATED,  /**< the last flash failed after writing; the card was
				       erased so it cannot boot */
	RIG_FLASH_CARD_PARTIAL,      /**< it failed and erasing failed too: it may hold a
				       partial image */
};

/** The record rig_flash() keeps in the rig's state directory (RIGOR_STATE_DIR). */
struct rig_flash_record {
	enum rig_flash_card card;
	char image[512];    /**< the image of that flash, "" if unknown */
	char why[768];      /**< for a failed flash: the error message */
	int64_t at_ms;      /**< wall-clock time of the flash in ms since the epoch, 0 if unknown */
};

/**
 * Reads what the last rig_flash() on @p rig recorded: the card is flashed, invalidated by a
 * failed flash (and why), or unknown. A successful flash clears a failure. Does not block
 * beyond reading one small file.
 * @retval 0 success (@p r filled; RIG_FLASH_CARD_UNKNOWN when nothing is recorded)
 */
RIG_API int rig_flash_record_get(struct rig *rig, struct rig_flash_record *r);

/** Static name of @p c: "unknown", "flashed", "invalidated", "half-written". */
RIG_API const char *rig_flash_card_name(enum rig_flash_card c);

#ifdef __cplusplus
}
#endif
#endif /* RIG_FLASH_H */
