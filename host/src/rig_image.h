/* SPDX-License-Identifier: MIT */
/**
 * @file rig_image.h
 * @brief Image identity: what an OS image is, read without flashing it or being root.
 *
 * # Overview
 * rig_image_inspect() reads an image in any format rig_flash_image() takes (raw, gzip, xz,
 * zstd, bzip2, or a zip holding one image) and records
 *  - the container format, the size of the file as given, the raw (decoded) size and the
 *    SHA-256 of the file as given (what a release page publishes);
 *  - the partition table (libblkid): its type ("gpt" or "dos"), and for each partition its
 *    number, offset, size, type (GPT type GUID or MBR type byte, with a name for the common
 *    ones), GPT name, file system type, label and UUID;
 *  - `os-release` from the root partition (ext, through rig_part_file_read(), the read path
 *    of rig:read_file()): the first of resin-rootA, balena-rootA, flash-rootA, a partition
 *    named or labelled "*root*", then any other ext partition, that holds /etc/os-release
 *    or /usr/lib/os-release; balenaOS's copy on the boot partition (/os-release) only when
 *    no root partition has one. The image's *version* is its VERSION, else VERSION_ID;
 *  - the boot loader, from the FAT partitions and the MBR (rig_image_bootloader());
 *  - for a balenaOS-shaped image (a partition named or labelled resin-*, balena-* or
 *    flash-*): the device type slug (device-type.json on the boot partition, else the
 *    os-release SLUG) and whether the boot partition holds a config.json.
 *
 * # Nothing is written
 * A raw image is read in place. A compressed image is decoded to a temporary file by the
 * flash engine (rig_flash_image() onto a new, sparse file in a private directory under
 * rig_image_opts::tmpdir, $TMPDIR or /tmp), because the file-system readers (debugfs,
 * mtools) and libblkid need random access to the raw image, and decoding once is cheaper
 * than decoding again for every file read. The directory and the file are removed before
 * the call returns, on failure, cancel and timeout too. It needs free space for the
 * image's allocated blocks (sparse: the zero runs take none). The image itself is opened
 * read-only. rig_image_opts::decoded skips the decoding when the raw image is already
 * somewhere (the card rig_flash() just wrote).
 *
 * # Return codes
 * 0 on success, a negative ::rig_err on failure, with the detail in rig_ctx_errmsg():
 *  - ::RIG_E_NOENT  the image does not exist;
 *  - ::RIG_E_INVAL  not a disk image (empty, not whole sectors, text, ELF, qcow2 and the
 *                   other containers rig_flash_image() refuses), a corrupt or truncated
 *                   compressed image ("corrupt ..." / "truncated ..." in the message), an
 *                   image without a partition table (the message names a bare file system
 *                   when there is one);
 *  - ::RIG_E_IO     reading failed, or the temporary directory is full or not writable;
 *  - ::RIG_E_INTR, ::RIG_E_TIMEOUT  the context's cancel flag or deadline, or
 *                   rig_image_opts::timeout_ms;
 *  - ::RIG_E_NOMEM  out of memory.
 * A partition that cannot be read (a damaged file system, a missing debugfs) is not an
 * error: what it would have told is left out, and the JSON says nothing about it.
 *
 * # Thread safety
 * No global state; one context per thread as everywhere in librig. Blocks on file reads
 * and on the child processes (debugfs, mtype) it runs, each bounded by the timeout.
 */
#ifndef RIGOR_HOST_RIG_IMAGE_H
#define RIGOR_HOST_RIG_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rig.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What one image is. Opaque; made by rig_image_inspect(), freed by rig_image_free(). */
struct rig_image;

/**
 * Options for rig_image_inspect(). The caller owns it and its strings; call
 * rig_image_opts_init() first. New fields only ever come with a default that keeps the old
 * behaviour.
 */
struct rig_image_opts {
	/**
	 * Path of the raw image, already decoded: typically the card or file rig_flash() has
	 * just written this image to. Partitions and files are read there, nothing is decoded.
	 * NULL (default): decode a compressed image to a temporary file.
	 */
	const char *decoded;
	/** With @ref decoded: the raw size (a card is larger than its image); 0: its size. */
	uint64_t raw_size;
	/** true: only the file (format, sizes, sha256); no decoding, no partitions. */
	bool shallow;
	/** Where the temporary file goes; NULL (default): $TMPDIR, else /tmp. */
	const char *tmpdir;
	/** Overall bound of the call in ms, -1 (default) none; the context's deadline too. */
	int timeout_ms;
	/**
	 * The SHA-256 of the image file as 64 lowercase hex digits, when the caller has it
	 * already (rig_flash_stats::sha256, taken while the flash decoded the file): the file is
	 * then not read a second time to hash it. NULL (default): it is hashed here.
	 */
	const char *sha256;
};

/** Sets every field of @p o to its default. Nothing to release. */
RIG_API void rig_image_opts_init(struct rig_image_opts *o);

/**
 * Reads what @p path is (see the overview). Blocks until done; honours the context's
 * cancel flag and deadline.
 * @param ctx  context: cancel flag, deadline, log, and the error message on failure
 * @param path image file (any format rig_flash_image() takes) or block device
 * @param o    options, or NULL for the defaults
 * @param out  set to a new image description the caller frees with rig_image_free()
 * @retval 0 success
 * @retval RIG_E_NOENT  @p path does not exist
 * @retval RIG_E_INVAL  not a disk image, corrupt or truncated, or no partition table
 * @retval RIG_E_IO     cannot read it, or the temporary file cannot be written
 * @retval RIG_E_INTR   cancelled
 * @retval RIG_E_TIMEOUT  o->timeout_ms or the context's deadline passed
 * @retval RIG_E_NOMEM  out of memory
 */
RIG_API int rig_image_inspect(struct rig_ctx *ctx, const char *path,
			      const struct rig_image_opts *o, struct rig_image **out);

/** Frees @p img and every string it handed out. NULL is a no-op. */
RIG_API void rig_image_free(struct rig_image *img);

/*
 * Getters. Strings belong to the image and live until rig_image_free(); a getter returns
 * NULL when the image does not say (no os-release, not balenaOS-shaped, a shallow look).
 */

/** The path as given. */
RIG_API const char *rig_image_path(const struct rig_image *img);
/** The file name without directories ("rigor-os-1.0.img.gz"). */
RIG_API const char *rig_image_name(const struct rig_image *img);
/** Container: "raw", "gzip", "xz", "zstd", "bzip2" or "zip" (rig_flash_format_name()). */
RIG_API const char *rig_image_format(const struct rig_image *img);
/** Size in bytes of the file as given. */
RIG_API uint64_t rig_image_size(const struct rig_image *img);
/** Size in bytes of the raw image; 0 for a shallow look at a compressed image. */
RIG_API uint64_t rig_image_raw_size(const struct rig_image *img);
/** SHA-256 of the file as given, 64 lowercase hex digits. */
RIG_API const char *rig_image_sha256(const struct rig_image *img);
/** The image's version: os-release VERSION, else VERSION_ID; NULL if neither. */
RIG_API const char *rig_image_version(const struct rig_image *img);
/**
 * A value of the image's os-release (@p key such as "ID", "VERSION_ID", "PRETTY_NAME"),
 * unquoted and unescaped as os-release(5) says; NULL if absent or no os-release was found.
 */
RIG_API const char *rig_image_os_release(const struct rig_image *img, const char *key);
/**
 * The boot loader: "grub-efi", "systemd-boot", "uefi" (another EFI loader), "raspberrypi"
 * (config.txt and start*.elf on a FAT partition), "u-boot" (boot.scr, u-boot.bin or
 * extlinux/extlinux.conf), "grub-bios" (GRUB's boot code in the MBR), "bios" (other MBR
 * boot code) or "none"; NULL for a shallow look.
 */
RIG_API const char *rig_image_bootloader(const struct rig_image *img);
/** Whether the image is balenaOS-shaped (partitions resin-*, balena-* or flash-*). */
RIG_API bool rig_image_is_balena(const struct rig_image *img);
/** balenaOS-shaped: the device type slug ("raspberrypi4-64"), NULL if not found. */
RIG_API const char *rig_image_device_type(const struct rig_image *img);
/**
 * balenaOS-shaped: whether the boot partition holds /config.json.
 * @retval 1 present  @retval 0 absent  @retval -1 not balenaOS-shaped, or not looked at
 */
RIG_API int rig_image_has_config_json(const struct rig_image *img);
/** Number of partitions (0 for a shallow look). */
RIG_API size_t rig_image_part_count(const struct rig_image *img);

/** One partition; strings belong to the image ("" when there is none, never NULL). */
struct rig_image_part {
	unsigned int number;  /**< as Linux numbers it (MBR logical partitions from 5) */
	uint64_t start;       /**< byte offset in the raw image */
	uint64_t size;        /**< bytes */
	const char *type;     /**< GPT type GUID (lowercase) or MBR type ("0x83") */
	const char *type_name;/**< "EFI System", "Linux filesystem", "W95 FAT32 (LBA)", or "" */
	const char *name;     /**< GPT partition name */
	const char *fs;       /**< file system as libblkid names it ("vfat", "ext4") */
	const char *label;    /**< file-system label */
	const char *uuid;     /**< file-system UUID */
	bool bootable;        /**< MBR active flag, GPT legacy BIOS bootable attribute */
};

/**
 * Fills @p p with partition @p i (0-based, in table order).
 * @retval 0 success  @retval RIG_E_NOENT @p i >= rig_image_part_count()
 */
RIG_API int rig_image_part_get(const struct rig_image *img, size_t i, struct rig_image_part *p);

/**
 * Everything above as one JSON document (schema "rigor.image/1", docs/rigor.1), encoded
 * by jansson: valid UTF-8 JSON whatever the image's strings hold (bytes that are not UTF-8
 * are shown as \\xNN).
 * @param indent spaces per level, 0 for one line
 * @return a malloc'd NUL-terminated string the caller frees with free(), or NULL when out
 *         of memory
 */
RIG_API char *rig_image_to_json(const struct rig_image *img, int indent);

#ifdef __cplusplus
}
#endif
#endif /* RIGOR_HOST_RIG_IMAGE_H */
