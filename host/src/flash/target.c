/* SPDX-License-Identifier: MIT */
/* Opening the flash target and the safety rules for block devices. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "flash_internal.h"

#define MAX_DEVS 256

static int read_small(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

static bool dir_nonempty(const char *path, char *first, size_t len)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool any = false;

	if (!d)
		return false;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(first, len, "%s", de->d_name);
		any = true;
		break;
	}
	closedir(d);
	return any;
}

/*
 * Collects the whole disk and all its partitions, because flashing a disk destroys every
 * partition on it: a mounted /dev/sdb2 forbids writing /dev/sdb.
 */
int fl_blockdev_check(const char *path, unsigned int maj, unsigned int min, bool force,
		      enum rig_flash_hint *hint, struct fl_err *e)
{
	char sys[PATH_MAX], disk[PATH_MAX], p[PATH_MAX + 512], buf[256], name[256];
	dev_t devs[MAX_DEVS];
	size_t n = 0, i;
	DIR *d;
	struct dirent *de;
	FILE *mi;
	char *line = NULL;
	size_t cap = 0;
	bool removable = false;

	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u", maj, min);
	if (!realpath(p, sys))
		return fl_err_set(e, -ENODEV, "'%s' (%u:%u) has no sysfs entry", path, maj, min);
	snprintf(p, sizeof(p), "%s/partition", sys);
	if (access(p, F_OK) == 0) {
		snprintf(p, sizeof(p), "%s/..", sys);
		if (!realpath(p, disk))
			return fl_err_set(e, -ENODEV, "cannot find the disk of '%s'", path);
	} else {
		snprintf(disk, sizeof(disk), "%s", sys);
	}
	snprintf(p, sizeof(p), "%s/dev", disk);
	if (read_small(p, buf, sizeof(buf)) == 0) {
		unsigned int a, b;

		if (sscanf(buf, "%u:%u", &a, &b) == 2)
			devs[n++] = makedev(a, b);
	}
	d = opendir(disk);
	while (d && (de = readdir(d)) && n < MAX_DEVS) {
		unsigned int a, b;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s/partition", disk, de->d_name);
		if (access(p, F_OK))
			continue;
		snprintf(p, sizeof(p), "%s/%s/dev", disk, de->d_name);
		if (read_small(p, buf, sizeof(buf)) == 0 && sscanf(buf, "%u:%u", &a, &b) == 2)
			devs[n++] = makedev(a, b);
		snprintf(p, sizeof(p), "%s/%s/holders", disk, de->d_name);
		if (dir_nonempty(p, name, sizeof(name))) {
			closedir(d);
			return fl_err_set(e, -EBUSY, "refusing '%s': partition %s is in use by "
					  "'%s' (device mapper, LVM or RAID)", path, de->d_name,
					  name);
		}
	}
	if (d)
		closedir(d);
	snprintf(p, sizeof(p), "%s/holders", disk);
	if (dir_nonempty(p, name, sizeof(name)))
		return fl_err_set(e, -EBUSY, "refusing '%s': the disk is in use by '%s' (device "
				  "mapper, LVM or RAID)", path, name);

	mi = fopen("/proc/self/mountinfo", "re");
	while (mi && getline(&line, &cap, mi) > 0) {
		unsigned int a, b;
		char mnt[1024];

		/* id parent maj:min root mountpoint ... */
		if (sscanf(line, "%*u %*u %u:%u %*s %1023s", &a, &b, mnt) != 3)
			continue;
		for (i = 0; i < n; i++) {
			if (devs[i] != makedev(a, b))
				continue;
			fclose(mi);
			free(line);
			if (!strcmp(mnt, "/") || !strcmp(mnt, "/boot") || !strncmp(mnt, "/boot/", 6) ||
			    !strcmp(mnt, "/usr"))
				return fl_err_set(e, -EPERM, "refusing '%s': it holds the system "
						  "file system mounted on '%s'", path, mnt);
			return fl_err_set(e, -EBUSY, "refusing '%s': device %u:%u is mounted on "
					  "'%s'", path, a, b, mnt);
		}
	}
	if (mi)
		fclose(mi);
	free(line);

	snprintf(p, sizeof(p), "%s/removable", disk);
	if (read_small(p, buf, sizeof(buf)) == 0 && !strcmp(buf, "1"))
		removable = true;
	/* Card readers and SD muxes on USB often report removable=0; mmc is an SD slot. */
	if (strstr(disk, "/usb") || strstr(disk, "/mmc_host/") || strstr(disk, "/mmcblk"))
		removable = true;
	/* the system disk is refused whatever force says; this refusal is the caller's choice */
	if (!removable && !force)
		*hint = RIG_FLASH_HINT_FORCE;
	if (!removable && !force)
		return fl_err_set(e, -EPERM, "refusing '%s': not a removable or USB/SD disk",
				  path);
	return 0;
}

static int open_err(const char *path, int err, struct fl_err *e)
{
	if (err == EROFS || err == EACCES || err == EPERM)
		return fl_err_set(e, -EROFS, "target '%s' is read-only: %s", path, strerror(err));
	if (err == EBUSY)
		return fl_err_set(e, -EBUSY, "target '%s' is in use (exclusive open refused)",
				  path);
	return fl_err_set(e, -err, "cannot open target '%s': %s", path, strerror(err));
}

/*
 * Regular files get an O_DIRECT descriptor too, where the file system has one (not tmpfs):
 * written data then goes straight to the disk, so the read-back of one chunk overlaps the
 * write of the next instead of waiting for page-cache writeback first.
 */
static void file_direct(const char *path, int flags, const struct rig_flash_opts *o,
			struct fl_target *t)
{
	struct stat st;
	int fd;

	if (o->no_direct)
		return;
	fd = open(path, flags | O_DIRECT);
	if (fd < 0)
		return;
	t->fd = fd;
	t->direct = true;
	t->lbs = fstat(fd, &st) == 0 && st.st_blksize >= 512 && st.st_blksize <= 65536 &&
		 !(st.st_blksize & (st.st_blksize - 1)) ? (unsigned int)st.st_blksize : 4096;
}

/* True if @dev is a devtmpfs mount (the kernel's /dev, wherever it is mounted). */
static bool on_devtmpfs(dev_t dev)
{
	FILE *mi = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	bool yes = false;

	while (mi && !yes && getline(&line, &cap, mi) > 0) {
		unsigned int a, b;
		const char *sep = strstr(line, " - ");

		if (sscanf(line, "%*u %*u %u:%u", &a, &b) == 2 && makedev(a, b) == dev && sep &&
		    !strncmp(sep + 3, "devtmpfs ", 9))
			yes = true;
	}
	free(line);
	if (mi)
		fclose(mi);
	return yes;
}

/*
 * True if @path is in /dev or on a devtmpfs: a missing node there is a missing device, and a
 * regular file created there would fill RAM and look like a device to the next user.
 */
static bool dev_path(const char *path)
{
	char parent[PATH_MAX], real[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (!strncmp(path, "/dev/", 5))
		return true;
	if (!slash)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == path)
		snprintf(parent, sizeof(parent), "/");
	else
		snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
	if (realpath(parent, real) && (!strcmp(real, "/dev") || !strncmp(real, "/dev/", 5)))
		return true;
	return stat(parent, &st) == 0 && on_devtmpfs(st.st_dev);
}

static void remember(struct fl_target *t, const struct stat *st)
{
	t->dev = st->st_dev;
	t->ino = st->st_ino;
	t->rdev = st->st_rdev;
}

/* A new image file (opts.create): it may grow up to the free space of its file system. */
static int create_file(const char *path, const struct rig_flash_opts *o, struct fl_target *t,
		       struct fl_err *e)
{
	int flags = O_RDWR | O_CLOEXEC;
	struct statvfs vfs;
	struct stat st;

	if (dev_path(path))
		return fl_err_set(e, -EINVAL, "refusing to create '%s': /dev holds device nodes, "
				  "not image files (is the card plugged in?)", path);
	t->fd_buf = open(path, flags | O_CREAT | O_EXCL, 0644);
	if (t->fd_buf < 0)
		return open_err(path, errno, e);
	t->fd = t->fd_buf;
	t->created = true;
	t->grow = true;
	if (fstat(t->fd_buf, &st) == 0)
		remember(t, &st);
	t->limit = fstatvfs(t->fd_buf, &vfs) == 0 ? (uint64_t)vfs.f_bavail * vfs.f_frsize
						  : UINT64_MAX;
	file_direct(path, flags, o, t);
	return 0;
}

int fl_target_check_path(const char *path, const struct fl_target *t, struct fl_err *e)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return fl_err_set(e, -ENODEV, "target '%s' was removed while it was being flashed: "
				  "the image went to a file that no longer exists", path);
	if (t->blockdev ? !S_ISBLK(st.st_mode) || st.st_rdev != t->rdev
			: st.st_dev != t->dev || st.st_ino != t->ino)
		return fl_err_set(e, -ENODEV, "target '%s' was replaced while it was being flashed: "
				  "the image went to the %s that was there before", path,
				  t->blockdev ? "device" : "file");
	return 0;
}

static int open_target(const char *path, const struct rig_flash_opts *o, struct fl_target *t,
		       struct fl_err *e)
{
	struct stat st;
	int flags = O_RDWR | O_CLOEXEC, rc;

	memset(t, 0, sizeof(*t));
	t->fd = t->fd_buf = t->rfd = -1;
	t->lbs = 512;
	t->path = path;
	if (stat(path, &st) < 0) {
		struct stat lst;

		if (errno != ENOENT)
			return fl_err_set(e, errno == ENOTDIR ? -ENOENT : -errno,
					  "cannot stat target '%s': %s", path, strerror(errno));
		if (lstat(path, &lst) == 0)
			return fl_err_set(e, -ENOENT, "target '%s' is a dangling symbolic link",
					  path);
		if (dev_path(path))
			return fl_err_set(e, -ENOENT, "no such device '%s'", path);
		if (!o->create) {
			t->hint = RIG_FLASH_HINT_CREATE;
			return fl_err_set(e, -ENOENT, "target '%s' does not exist", path);
		}
		return create_file(path, o, t, e);
	}
	if (S_ISBLK(st.st_mode)) {
		int ro = 0;
		uint64_t sz = 0;
		int ssz = 512;

		t->blockdev = true;
		rc = fl_blockdev_check(path, major(st.st_rdev), minor(st.st_rdev), o->force,
				       &t->hint, e);
		if (rc)
			return rc;
		t->fd_buf = open(path, flags | O_EXCL);
		if (t->fd_buf < 0)
			return open_err(path, errno, e);
		if (ioctl(t->fd_buf, BLKROGET, &ro) == 0 && ro) {
			fl_target_close(t);
			return fl_err_set(e, -EROFS, "target '%s' is read-only (write-protect switch "
					  "or read-only device)", path);
		}
		if (ioctl(t->fd_buf, BLKGETSIZE64, &sz) < 0) {
			rc = fl_err_set(e, -errno, "cannot get the size of '%s': %s", path,
					strerror(errno));
			fl_target_close(t);
			return rc;
		}
		if (ioctl(t->fd_buf, BLKSSZGET, &ssz) == 0 && ssz >= 512)
			t->lbs = (unsigned int)ssz;
		t->size = sz;
		t->limit = sz;
		remember(t, &st);
		t->fd = t->fd_buf;
		if (!o->no_direct) {
			/* A second descriptor for aligned direct I/O; the first stays for tails. */
			int fd = open(path, flags | O_DIRECT);

			if (fd >= 0) {
				t->fd = fd;
				t->direct = true;
			}
		}
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return fl_err_set(e, -EINVAL, "target '%s' is %s, neither a block device nor a "
				  "regular file", path, S_ISDIR(st.st_mode) ? "a directory" :
				  S_ISCHR(st.st_mode) ? "a character device" :
				  S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket" :
				  "a special file");
	/* Non-blocking: if the path became a FIFO since the stat, do not wait for a reader. */
	t->fd_buf = open(path, flags | O_NONBLOCK | O_NOCTTY);
	if (t->fd_buf < 0)
		return open_err(path, errno, e);
	if (fstat(t->fd_buf, &st) < 0 || !S_ISREG(st.st_mode)) {
		fl_target_close(t);
		return fl_err_set(e, -EINVAL, "target '%s' changed while it was opened", path);
	}
	(void)fcntl(t->fd_buf, F_SETFL, fcntl(t->fd_buf, F_GETFL) & ~O_NONBLOCK);
	remember(t, &st);
	t->size = (uint64_t)st.st_size;
	/* A file stands for a card: its size is fixed unless the caller asked for an image file. */
	t->limit = t->size;
	if (o->create) {
		struct statvfs vfs;

		if (fstatvfs(t->fd_buf, &vfs) == 0)
			t->limit += (uint64_t)vfs.f_bavail * vfs.f_frsize;
		else
			t->limit = UINT64_MAX;
		t->grow = true;
	}
	t->fd = t->fd_buf;
	file_direct(path, flags, o, t);
	return 0;
}

/* The read-back bypasses the page cache where it can: O_DIRECT on files too. */
static void open_readback(struct fl_target *t, const struct rig_flash_opts *o)
{
	t->rfd = t->fd_buf;
	t->rlbs = t->lbs;
	if (t->direct) {
		t->rfd = t->fd;
		t->rdirect = true;
	} else if (!o->no_direct) {
		int fd = open(t->path, O_RDONLY | O_DIRECT | O_CLOEXEC);

		if (fd >= 0) {
			t->rfd = fd;
			t->rdirect = true;
			t->rlbs = 4096;
		}
	}
}

int fl_target_open(const char *path, const struct rig_flash_opts *o, struct fl_target *t,
		   struct fl_err *e)
{
	int rc = open_target(path, o, t, e);

	if (rc == 0)
		open_readback(t, o);
	return rc;
}

void fl_target_close(struct fl_target *t)
{
	if (t->rfd >= 0 && t->rfd != t->fd && t->rfd != t->fd_buf)
		close(t->rfd);
	t->rfd = -1;
	if (t->fd >= 0 && t->fd != t->fd_buf)
		close(t->fd);
	if (t->fd_buf >= 0)
		close(t->fd_buf);
	t->fd = t->fd_buf = -1;
}

int fl_target_fail(const struct fl_target *t, const char *what, uint64_t off, int err,
		   struct fl_err *e)
{
	if (err == ENODEV || err == ENXIO || err == ENOMEDIUM)
		return fl_err_set(e, -ENODEV, "target '%s' vanished: %s failed at offset %"
				  PRIu64 ": %s", t->path, what, off, strerror(err));
	/*
	 * The size was checked before writing, so this is the file system under a file target
	 * filling up (a sparse file): the host's trouble, not a card too small for the image.
	 */
	if (err == ENOSPC || err == EFBIG)
		return fl_err_set(e, -EIO, "no space left for target '%s': %s failed at offset %"
				  PRIu64, t->path, what, off);
	if (err == EROFS || err == EPERM || err == EACCES)
		return fl_err_set(e, -EROFS, "target '%s' is read-only: %s failed at offset %"
				  PRIu64, t->path, what, off);
	return fl_err_set(e, -err, "%s failed at offset %" PRIu64 " of '%s': %s", what,
			  off, t->path, strerror(err));
}

int fl_target_too_small(const struct fl_target *t, uint64_t need, bool known, struct fl_err *e)
{
	const double MiB = 1048576.0;
	const char *what = t->grow ? "the free space of its file system" : "the card";

	if (!known)
		return fl_err_set(e, -ENOSPC, "target '%s' is too small: the image is larger "
				  "than %s (it goes on past %.1f MiB)", t->path, what,
				  (double)t->limit / MiB);
	return fl_err_set(e, -ENOSPC, "target '%s' is too small: the image is larger than %s "
			  "(%.1f MiB > %.1f MiB)", t->path, what, (double)need / MiB,
			  (double)t->limit / MiB);
}

#define WIPE (1u << 20)

static int pwrite_all(int fd, const unsigned char *p, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, p + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

/*
 * The first MiB holds the MBR, the primary GPT and the boot code of every common layout;
 * the last holds a backup GPT, the new image's or the old card's, from which UEFI firmware
 * would otherwise restore the old table over half-written partitions. Runs without the
 * cancel flag or the deadline: it is what a cancel or a timeout must still do.
 */
int fl_target_invalidate(struct fl_target *t, char *why, size_t whylen)
{
	int fd = t->fd_buf, rc = 0;
	unsigned char *z = NULL;
	uint64_t size = t->size, tail;
	struct stat st;

	if (fd < 0) {
		/* Closed after the flush (inject runs on the path): reopen the same file. */
		fd = open(t->path, O_RDWR | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0 ||
		    (t->blockdev ? st.st_rdev != t->rdev
				 : st.st_dev != t->dev || st.st_ino != t->ino)) {
			snprintf(why, whylen, "%s", fd < 0 ? strerror(errno) : "it changed");
			if (fd >= 0)
				close(fd);
			return -ENODEV;
		}
	}
	if (!t->blockdev)
		size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : t->size;
	z = calloc(1, WIPE);
	if (!z)
		rc = -ENOMEM;
	if (!rc)
		rc = pwrite_all(fd, z, size < WIPE ? (size_t)size : WIPE, 0);
	if (!rc && size > WIPE) {
		tail = size - WIPE < WIPE ? WIPE : size - WIPE;
		rc = pwrite_all(fd, z, (size_t)(size - tail), tail);
	}
	if (!rc && fdatasync(fd) < 0)
		rc = -errno;
	if (rc)
		snprintf(why, whylen, "%s", strerror(-rc));
	free(z);
	if (fd != t->fd_buf)
		close(fd);
	return rc;
}
