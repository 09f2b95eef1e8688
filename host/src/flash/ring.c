/* SPDX-License-Identifier: MIT */
/*
 * The decode stage: a thread fills FL_NSLOT chunks of decoded image ahead of the writer, so
 * decoding overlaps with comparing, writing and reading back. Its state is the ring and the
 * source; the writer sees only filled slots.
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "flash_internal.h"

struct fl_ring {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct fl_slot slots[FL_NSLOT];
	unsigned int head, tail, count;
	bool stop;
	pthread_t th;
	bool started;
	struct fl_src *src;
	const struct fl_bmap *sparse; /* raw image + bmap: read only the mapped ranges */
	EVP_MD_CTX *md;               /* the sparse reader's range digests */
	struct fl_err err;            /* the decoder's first error, for slot.err */
	char errbuf[512];
};

int fl_ring_new(struct fl_ring **out, struct fl_src *src, const struct fl_bmap *sparse,
		struct fl_err *e)
{
	struct fl_ring *r = calloc(1, sizeof(*r));
	size_t i;

	*out = r;
	if (!r)
		return fl_err_set(e, -ENOMEM, "out of memory");
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->src = src;
	r->sparse = sparse;
	fl_err_init(&r->err, r->errbuf, sizeof(r->errbuf));
	for (i = 0; i < FL_NSLOT; i++)
		if (posix_memalign((void **)&r->slots[i].buf, 4096, FL_CHUNK))
			return fl_err_set(e, -ENOMEM, "out of memory");
	if (sparse && !(r->md = EVP_MD_CTX_new()))
		return fl_err_set(e, -ENOMEM, "out of memory");
	return 0;
}

/* Waits for a free slot; NULL if the consumer asked to stop. */
static struct fl_slot *slot_get(struct fl_ring *r)
{
	struct fl_slot *s = NULL;

	pthread_mutex_lock(&r->mu);
	while (r->count == FL_NSLOT && !r->stop)
		pthread_cond_wait(&r->cv, &r->mu);
	if (!r->stop)
		s = &r->slots[r->head];
	pthread_mutex_unlock(&r->mu);
	return s;
}

static void slot_put(struct fl_ring *r)
{
	pthread_mutex_lock(&r->mu);
	r->head = (r->head + 1) % FL_NSLOT;
	r->count++;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Raw image with a bmap: read only the mapped ranges, as bmaptool does. */
static void *producer_sparse(void *arg)
{
	struct fl_ring *r = arg;
	const struct fl_bmap *bm = r->sparse;
	struct fl_slot *s;
	char msg[256];
	size_t i;

	/* The range digests are computed here too: this thread is otherwise idle. */
	for (i = 0; i < bm->n; i++) {
		const struct fl_range *rg = &bm->r[i];
		uint64_t a = rg->first * bm->block_size;
		uint64_t b = (rg->last + 1) * bm->block_size;

		if (b > bm->image_size)
			b = bm->image_size;
		if (rg->has_digest)
			fl_bmap_digest_init(bm, r->md);
		while (a < b) {
			size_t want = (size_t)(b - a < FL_CHUNK ? b - a : FL_CHUNK);
			long n;

			s = slot_get(r);
			if (!s)
				return NULL;
			n = fl_src_pread(r->src, s->buf, want, a, &r->err);
			s->off = a;
			s->in = 0; /* the total is the bmap's: input progress is not needed */
			s->len = n > 0 ? (size_t)n : 0;
			s->err = n < 0 ? (int)n : 0;
			if (n >= 0 && (size_t)n < want)
				s->err = fl_err_set(&r->err, -EBADMSG, "truncated image: it ends at "
						    "%" PRIu64 " bytes but its bmap maps data "
						    "up to %" PRIu64, a + (uint64_t)n, b);
			if (!s->err && rg->has_digest) {
				EVP_DigestUpdate(r->md, s->buf, s->len);
				if (a + want == b && !fl_bmap_digest_ok(bm, r->md, rg))
					s->err = fl_err_set(&r->err, -EBADMSG, "%s",
							    fl_bmap_digest_msg(bm, rg, msg,
									       sizeof(msg)));
			}
			s->eof = s->err != 0;
			slot_put(r);
			if (s->eof)
				return NULL;
			a += want;
		}
	}
	s = slot_get(r);
	if (!s)
		return NULL;
	s->off = bm->image_size;
	s->len = 0;
	s->err = 0;
	s->eof = true;
	slot_put(r);
	return NULL;
}

static void *producer(void *arg)
{
	struct fl_ring *r = arg;
	uint64_t off = 0;

	for (;;) {
		struct fl_slot *s;
		size_t got = 0;
		long n = 0;

		s = slot_get(r);
		if (!s)
			return NULL;

		while (got < FL_CHUNK) {
			n = fl_src_read(r->src, s->buf + got, FL_CHUNK - got, &r->err);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		s->len = got;
		s->off = off;
		/* read here, by the source's thread; the slot hands it over under the lock */
		s->in = fl_src_bytes_in(r->src);
		s->err = n < 0 ? (int)n : 0;
		s->eof = n <= 0;
		off += got;
		slot_put(r);
		if (s->eof)
			return NULL;
	}
}

int fl_ring_start(struct fl_ring *r, struct fl_err *e)
{
	if (pthread_create(&r->th, NULL, r->sparse ? producer_sparse : producer, r))
		return fl_err_set(e, -EAGAIN, "cannot start the decoder thread");
	r->started = true;
	return 0;
}

/* pthread_cond_wait() for at most ms milliseconds (the condition uses CLOCK_REALTIME). */
static void cond_wait_ms(pthread_cond_t *cv, pthread_mutex_t *mu, long ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += ms * 1000 * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
	}
	pthread_cond_timedwait(cv, mu, &ts);
}

const struct fl_slot *fl_ring_next(struct fl_ring *r, long ms)
{
	const struct fl_slot *s = NULL;

	pthread_mutex_lock(&r->mu);
	if (r->count == 0)
		cond_wait_ms(&r->cv, &r->mu, ms);
	if (r->count)
		s = &r->slots[r->tail];
	pthread_mutex_unlock(&r->mu);
	return s;
}

void fl_ring_done(struct fl_ring *r, bool stop)
{
	pthread_mutex_lock(&r->mu);
	r->tail = (r->tail + 1) % FL_NSLOT;
	r->count--;
	if (stop)
		r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

void fl_ring_stop(struct fl_ring *r)
{
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	/* the decoder may be waiting for xz blocks that are no longer needed */
	fl_src_stop(r->src);
}

void fl_ring_join(struct fl_ring *r)
{
	if (r->started)
		pthread_join(r->th, NULL);
	r->started = false;
}

const char *fl_ring_errmsg(const struct fl_ring *r)
{
	return r->errbuf;
}

void fl_ring_free(struct fl_ring *r)
{
	size_t i;

	if (!r)
		return;
	if (r->started) {
		fl_ring_stop(r);
		fl_ring_join(r);
	}
	for (i = 0; i < FL_NSLOT; i++)
		free(r->slots[i].buf);
	EVP_MD_CTX_free(r->md);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
}
