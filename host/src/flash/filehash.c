/* SPDX-License-Identifier: MIT */
/*
 * The image file's SHA-256 when the decoder cannot take it in passing: a bmap lets it skip
 * unmapped parts of a raw image or decode an xz file's blocks out of order. A thread then
 * reads the whole file beside the flash, which is bound by the card, not by the CPU or the
 * host's disk, so the identity of what was flashed costs no time after the last write.
 * It reads with pread() on the source's own descriptor: the same file the flash decodes,
 * without moving the decoder's file position.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flash_internal.h"

#define HBUF (1u << 20)

struct fl_filehash {
	int fd;
	uint64_t size;
	pthread_t th;
	bool started;
	atomic_bool stop;
	bool ok;                   /* the whole file was read and hashed */
	unsigned char md[32];
};

static void *hasher(void *arg)
{
	struct fl_filehash *h = arg;
	EVP_MD_CTX *mc = EVP_MD_CTX_new();
	unsigned char *buf = malloc(HBUF);
	uint64_t off = 0;
	unsigned int len = 0;

	if (!mc || !buf || !EVP_DigestInit_ex(mc, EVP_sha256(), NULL))
		goto out;
	while (!atomic_load(&h->stop)) {
		ssize_t n = pread(h->fd, buf, HBUF, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		EVP_DigestUpdate(mc, buf, (size_t)n);
		off += (uint64_t)n;
	}
	/* a file that changed size meanwhile has no hash that names what was flashed */
	h->ok = !atomic_load(&h->stop) && off == h->size &&
		EVP_DigestFinal_ex(mc, h->md, &len) && len == 32;
out:
	free(buf);
	EVP_MD_CTX_free(mc);
	return NULL;
}

int fl_filehash_start(struct fl_filehash **out, int fd, uint64_t size, struct fl_err *e)
{
	struct fl_filehash *h = calloc(1, sizeof(*h));

	*out = h;
	if (!h)
		return fl_err_set(e, -ENOMEM, "out of memory");
	h->fd = fd;
	h->size = size;
	atomic_init(&h->stop, false);
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	if (pthread_create(&h->th, NULL, hasher, h))
		return fl_err_set(e, -EAGAIN, "cannot start the image hash thread");
	h->started = true;
	return 0;
}

bool fl_filehash_finish(struct fl_filehash *h, unsigned char md[32])
{
	if (!h || !h->started)
		return false;
	pthread_join(h->th, NULL);
	h->started = false;
	if (h->ok)
		memcpy(md, h->md, 32);
	return h->ok;
}

void fl_filehash_free(struct fl_filehash *h)
{
	if (!h)
		return;
	if (h->started) {
		atomic_store(&h->stop, true);
		pthread_join(h->th, NULL);
	}
	free(h);
}
