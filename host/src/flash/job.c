/* SPDX-License-Identifier: MIT */
/*
 * rig_flash_image(): the job that runs the stages. Prepare (source, bmap, target), then the
 * write phase: the decode ring (ring.c) fills chunks in its thread; here each chunk is
 * checked (gzip CRCs, bmap range digests, that it is a disk image) and handed to the
 * compare-write stage (delta.c), whose writer thread queues what it wrote for the read-back
 * thread (verify.c). Then the read-back is drained, the target flushed, files injected.
 */
#define LOG_PREFIX "flash"
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "flash_internal.h"
#include "../internal.h"
#include "../rig_http.h"

#define VBLK 4096u

struct job {
	struct rig_ctx *ctx;  /* cancel flag, deadline and log; read, never waited on */
	const struct rig_flash_opts *o;
	struct fl_err *e;
	struct rig_flash_stats *st;
	const char *image;
	struct fl_src *src;
	struct fl_bmap bm;
	bool have_bm;
	const char *url;      /* the image's URL as given (with any credentials), or NULL */
	char bmap_shown[512]; /* a bmap URL, redacted */
	bool sparse;          /* raw image + bmap: the ring reads only mapped ranges */
	struct fl_target t;
	bool gone;            /* the target path no longer names what was written */
	uint64_t gran;        /* compare and digest granularity */

	struct fl_ring *ring;
	struct fl_delta *delta;
	struct fl_verify *verify;
	struct fl_filehash *hash; /* the image file's SHA-256 when the decoder cannot take it */

	/* gzip CRC-32 and ISIZE of each member, when the decoder leaves them to us (zlib) */
	struct {
		bool deferred;
		size_t idx;       /* next member to check */
		uint32_t crc;
		uint64_t start;
	} gz;
	/* the bmap's ranges as the chunks pass: which range, its digest so far */
	struct {
		size_t ri;
		EVP_MD_CTX *md;
		bool open;
	} walk;

	/* time and progress */
	int timeout_ms;       /* o->timeout_ms cut to the context's deadline */
	double deadline;
	double t_start;
	double phase_t0, last_report;
	enum rig_flash_phase phase;
	uint64_t phase_total;
	uint64_t in_done, in_total; /* write phase: the image file read so far, its size */
};

static void report(struct job *j, uint64_t done, bool force)
{
	struct rig_flash_progress p;
	double now;

	if (!j->o->progress)
		return;
	now = fl_now();
	if (!force && now - j->last_report < 0.1)
		return;
	j->last_report = now;
	memset(&p, 0, sizeof(p));
	p.phase = j->phase;
	p.done = done;
	p.total = j->phase_total;
	/* "done" reports the whole job: mapped bytes over the total time. */
	p.elapsed = now - (j->phase == RIG_FLASH_PHASE_DONE ? j->t_start : j->phase_t0);
	p.rate = p.elapsed > 0 ? (double)done / p.elapsed : 0;
	p.written = j->st->bytes_written;
	p.skipped = j->st->bytes_skipped;
	if (j->phase == RIG_FLASH_PHASE_WRITE && j->in_total) {
		p.in_done = j->in_done;
		p.in_total = j->in_total;
	}
	j->o->progress(&p, j->o->progress_user);
}

static void phase_begin(struct job *j, enum rig_flash_phase ph, uint64_t total)
{
	rig_dbg(j->ctx, "phase %s", rig_flash_phase_name(ph));
	j->phase = ph;
	j->phase_total = total;
	j->phase_t0 = fl_now();
	report(j, ph == RIG_FLASH_PHASE_DONE ? total : 0, true);
}

/* Cancel and deadline, checked between chunks. */
static int interrupted(struct job *j, uint64_t off)
{
	if (rig_ctx_cancelled(j->ctx)) {
		j->st->fail_offset = off;
		return fl_err_set(j->e, -EINTR, "cancelled at offset %" PRIu64 " (%" PRIu64
				  " bytes written, %" PRIu64 " skipped)", off,
				  j->st->bytes_written, j->st->bytes_skipped);
	}
	if (j->deadline > 0 && fl_now() > j->deadline) {
		j->st->fail_offset = off;
		return fl_err_set(j->e, -ETIMEDOUT, "timed out after %d ms at offset %" PRIu64,
				  j->timeout_ms, off);
	}
	return 0;
}

static int io_error(struct job *j, const char *what, uint64_t off, int err)
{
	j->st->fail_offset = off;
	return fl_target_fail(&j->t, what, off, err, j->e);
}

/* --- checks on the decoded stream ---------------------------------------------------------- */

static int range_digest_check(struct job *j, const struct fl_range *r)
{
	char m[256];

	j->walk.open = false;
	if (!r->has_digest || fl_bmap_digest_ok(&j->bm, j->walk.md, r))
		return 0;
	j->st->fail_offset = r->first * j->bm.block_size;
	return fl_err_set(j->e, -EBADMSG, "%s", fl_bmap_digest_msg(&j->bm, r, m, sizeof(m)));
}

/* gzip CRC-32 and ISIZE of every member, computed here rather than in the decoder. */
static int gz_check(struct job *j, const struct fl_slot *s)
{
	const unsigned char *p = s->buf;
	uint64_t pos = s->off, left = s->len;
	struct fl_gz_member m;

	for (;;) {
		if (fl_src_gz_member(j->src, j->gz.idx, &m) && m.end <= pos + left) {
			uint64_t n = m.end - pos;

			j->gz.crc = (uint32_t)crc32(j->gz.crc, p, (uInt)n);
			if (j->gz.crc != m.crc ||
			    (uint32_t)(m.end - j->gz.start) != m.isize) {
				j->st->fail_offset = j->gz.start;
				return fl_err_set(j->e, -EBADMSG, "corrupt gzip stream: %s mismatch "
						  "in the member at decompressed offset %" PRIu64,
						  j->gz.crc != m.crc ? "CRC-32" : "length",
						  j->gz.start);
			}
			p += n;
			pos += n;
			left -= n;
			j->gz.crc = (uint32_t)crc32(0, NULL, 0);
			j->gz.start = m.end;
			j->gz.idx++;
			continue;
		}
		j->gz.crc = (uint32_t)crc32(j->gz.crc, p, (uInt)left);
		return 0;
	}
}

/* Hands the mapped parts of a chunk to the compare-write stage, checking range digests. */
static int consume(struct job *j, const struct fl_slot *s)
{
	uint64_t off = s->off, end = s->off + s->len;
	int rc;

	if (!j->have_bm)
		return fl_delta_put(j->delta, s->buf, off, end);
	if (end > j->bm.image_size) {
		j->st->fail_offset = j->bm.image_size;
		return fl_err_set(j->e, -EINVAL, "image is larger than the bmap's ImageSize %"
				  PRIu64 ": wrong bmap for this image?", j->bm.image_size);
	}
	while (j->walk.ri < j->bm.n) {
		const struct fl_range *r = &j->bm.r[j->walk.ri];
		uint64_t rs = r->first * j->bm.block_size;
		uint64_t re = (r->last + 1) * j->bm.block_size, a, b;

		if (re > j->bm.image_size)
			re = j->bm.image_size;
		if (rs >= end)
			break;
		a = rs > off ? rs : off;
		b = re < end ? re : end;
		/* the sparse reader checks the digests itself, in its thread */
		if (r->has_digest && !j->walk.open && !j->sparse) {
			fl_bmap_digest_init(&j->bm, j->walk.md);
			j->walk.open = true;
		}
		if (a < b) {
			if (r->has_digest && !j->sparse)
				EVP_DigestUpdate(j->walk.md, s->buf + (a - off), (size_t)(b - a));
			rc = fl_delta_put(j->delta, s->buf + (a - off), a, b);
			if (rc)
				return rc;
		}
		if (re > end)
			break;
		if (!j->sparse) {
			rc = range_digest_check(j, r);
			if (rc)
				return rc;
		}
		j->walk.ri++;
	}
	return 0;
}

/* The whole decoded stream of @total bytes has arrived: is it a disk image? */
static int total_check(struct job *j, uint64_t total)
{
	const char *fmt = rig_flash_format_name(j->st->format);

	j->st->fail_offset = total;
	if (total == 0)
		return fl_err_set(j->e, -EINVAL, "'%s' is empty: its %s stream holds no image",
				  j->image, fmt);
	if (total % 512)
		return fl_err_set(j->e, -EINVAL, "'%s' decodes to %" PRIu64 " bytes, not a whole "
				  "number of 512-byte sectors, so it is not a disk image: check "
				  "it is the right file", j->image, total);
	if (j->st->format == RIG_FLASH_FMT_RAW && fl_src_size_hint(j->src) &&
	    total != fl_src_size_hint(j->src))
		return fl_err_set(j->e, -EBADMSG, "image '%s' changed while it was being flashed: "
				  "it had %" PRIu64 " bytes, %" PRIu64 " were read", j->image,
				  fl_src_size_hint(j->src), total);
	return 0;
}

/* Checks one chunk and writes it. */
static int take(struct job *j, const struct fl_slot *s)
{
	int rc;

	if (j->o->fault.chunk_delay_ms > 0)
		usleep((useconds_t)j->o->fault.chunk_delay_ms * 1000);
	rc = interrupted(j, s->off);
	if (!rc && j->gz.deferred && !s->err)
		rc = gz_check(j, s);
	/* A small stream fits in the first chunk: these then refuse it before any write. */
	if (!rc && !s->err && s->eof && !j->sparse)
		rc = total_check(j, s->off + s->len);
	if (!rc && !s->err && s->off == 0 && s->len && j->st->format != RIG_FLASH_FMT_RAW)
		rc = fl_image_check_head(s->buf, s->len, j->image, j->st->format, j->e);
	/* A chunk that ends in a decoding error is not written: the flash fails anyway. */
	if (!rc && s->err) {
		j->st->fail_offset = s->off + s->len;
		rc = fl_err_set(j->e, s->err, "%s", fl_ring_errmsg(j->ring));
	}
	if (!rc && s->len) {
		j->st->bytes_decompressed += s->len;
		rc = consume(j, s);
	}
	return rc;
}

static int verify_tick(void *user, uint64_t verified, uint64_t fail_off)
{
	struct job *j = user;

	j->st->bytes_verified = verified;
	report(j, verified, false);
	return interrupted(j, fail_off);
}

static void verify_stop(struct job *j)
{
	fl_verify_finish(j->verify, false, NULL, NULL, &j->st->bytes_verified,
			 &j->st->fail_offset, j->e);
}

/*
 * The image file's SHA-256, as lowercase hex in st->sha256: the decoder's if it read the
 * whole file, else the one filehash.c read beside the writes.
 */
static void take_hash(struct job *j)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[32];
	size_t i;

	if (j->st->has_sha256 || !j->src ||
	    (!fl_src_file_sha256(j->src, md) && !fl_filehash_finish(j->hash, md)))
		return;
	for (i = 0; i < 32; i++) {
		j->st->sha256[2 * i] = digits[md[i] >> 4];
		j->st->sha256[2 * i + 1] = digits[md[i] & 15];
	}
	j->st->sha256[64] = 0;
	j->st->has_sha256 = true;
}

/*
 * The decoded stream ended well: do the bytes read (downloaded) have the SHA-256 the caller
 * named? Checked before the read-back is finished, so a mismatch is never reported good.
 */
static int sha256_check(struct job *j)
{
	int rc = fl_src_drain(j->src, j->e);

	if (rc)
		return rc;
	take_hash(j);
	j->st->fail_offset = j->st->bytes_decompressed;
	if (!j->st->has_sha256)
		return fl_err_set(j->e, -EIO, "the SHA-256 of '%s' could not be taken (%" PRIu64
				  " bytes read)", j->image, fl_src_bytes_in(j->src));
	if (strcasecmp(j->st->sha256, j->o->sha256))
		return fl_err_set(j->e, -EBADMSG, "SHA-256 mismatch for '%s': expected %s, got %s "
				  "(%" PRIu64 " bytes read): not the image that was meant, or it "
				  "changed", j->image, j->o->sha256, j->st->sha256,
				  fl_src_bytes_in(j->src));
	j->st->sha256_matched = true;
	return 0;
}

static int write_phase(struct job *j)
{
	uint64_t pos = 0;
	int rc = 0;
	bool eof = false;

	if (j->verify) {
		rc = fl_verify_start(j->verify, j->e);
		if (rc)
			return rc;
	}
	rc = fl_ring_start(j->ring, j->e);
	if (rc) {
		verify_stop(j);
		return rc;
	}
	while (!eof) {
		const struct fl_slot *s;

		/* A slow decoder (a whole xz block per chunk) must not hold off cancel/deadline. */
		while (!(s = fl_ring_next(j->ring, 50)) && !(rc = interrupted(j, pos)))
			;
		if (!s)
			break;
		rc = take(j, s);
		eof = s->eof;
		pos = s->off + s->len; /* the slot is the decoder's again after this */
		j->in_done = s->in;
		fl_ring_done(j->ring, rc != 0);
		if (rc)
			break;
		report(j, pos, false);
	}
	if (rc)
		fl_ring_stop(j->ring);
	fl_ring_join(j->ring);
	/* the last pieces are still being written: their failure counts as the write's */
	if (!rc)
		rc = fl_delta_finish(j->delta);
	j->st->resumes = fl_src_resumes(j->src, NULL, 0);
	if (!rc && j->o->sha256)
		rc = sha256_check(j);
	if (rc)
		verify_stop(j);
	j->st->bytes_read = fl_src_bytes_in(j->src);
	j->st->bytes_undecoded = fl_src_bytes_skipped(j->src);
	j->st->image_size = j->sparse ? j->bm.image_size : j->st->bytes_decompressed;
	if (rc)
		return rc;
	if (j->have_bm) {
		if (j->st->image_size < j->bm.image_size) {
			j->st->fail_offset = j->st->bytes_decompressed;
			return fl_err_set(j->e, -EBADMSG, "image ends at %" PRIu64 " bytes but its "
					  "bmap says %" PRIu64 ": truncated image or wrong bmap",
					  j->st->bytes_decompressed, j->bm.image_size);
		}
		j->st->bytes_mapped = j->bm.mapped_blocks * j->bm.block_size;
		if (j->bm.n && (j->bm.r[j->bm.n - 1].last + 1) * j->bm.block_size >
			       j->bm.image_size)
			j->st->bytes_mapped -= (j->bm.r[j->bm.n - 1].last + 1) * j->bm.block_size -
					       j->bm.image_size;
	} else {
		j->st->bytes_mapped = j->st->bytes_decompressed;
		if (j->t.grow && j->t.size < j->st->image_size &&
		    ftruncate(j->t.fd_buf, (off_t)j->st->image_size) < 0)
			return io_error(j, "extend", j->t.size, errno);
	}
	report(j, j->st->bytes_decompressed, true);
	return 0;
}

/* --- injection --------------------------------------------------------------------------- */

static int slurp(const char *path, char **data, size_t *len, struct fl_err *e)
{
	FILE *f = fopen(path, "rbe");
	char *buf = NULL;
	size_t cap = 0, n = 0, r;

	if (!f)
		return fl_err_set(e, -errno, "cannot open '%s': %s", path, strerror(errno));
	for (;;) {
		if (n == cap) {
			char *p = realloc(buf, cap ? 2 * cap : 65536);

			if (!p) {
				free(buf);
				fclose(f);
				return fl_err_set(e, -ENOMEM, "out of memory");
			}
			buf = p;
			cap = cap ? 2 * cap : 65536;
		}
		r = fread(buf + n, 1, cap - n, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	*data = buf;
	*len = n;
	return 0;
}

static int inject_phase(struct job *j)
{
	char msg[512];
	size_t i;
	int rc = 0;
	int tmo = -1;

	phase_begin(j, RIG_FLASH_PHASE_INJECT, j->o->n_inject);
	for (i = 0; i < j->o->n_inject && !rc; i++) {
		const struct rig_flash_inject *in = &j->o->inject[i];
		char *data = NULL, *back = NULL;
		size_t len = 0, blen = 0;

		if (j->deadline > 0) {
			tmo = (int)((j->deadline - fl_now()) * 1000);
			if (tmo <= 0)
				return fl_err_set(j->e, -ETIMEDOUT, "timed out before injecting '%s'",
						  in->dest);
		}
		rc = slurp(in->src, &data, &len, j->e);
		if (rc)
			break;
		rc = rig_part_file_write(j->t.path, in->part, in->dest, data, len, in->append,
					 tmo, msg, sizeof(msg));
		if (!rc)
			rc = rig_part_file_read(j->t.path, in->part, in->dest, &back, &blen, tmo,
						msg, sizeof(msg));
		if (rc) {
			fl_err_set(j->e, rc, "injecting '%s' into partition '%s': %s", in->dest,
				   in->part, msg);
		} else if (blen < len || memcmp(back + (blen - len), data, len) ||
			   (!in->append && blen != len)) {
			rc = fl_err_set(j->e, -EIO, "injected '%s' reads back different", in->dest);
		}
		free(data);
		free(back);
		report(j, i + 1, true);
	}
	return rc;
}

/* --- after a failure ---------------------------------------------------------------------- */

/*
 * A flash failed after it began writing: what the target holds is neither the old card nor
 * the new image. Make sure it cannot boot, or remove the file this call created, and say so.
 */
static void after_failure(struct job *j)
{
	char why[128];
	struct fl_err scratch;

	if (j->t.created) {
		fl_err_init(&scratch, NULL, 0);
		/* not in the message: the file was the caller's (maybe a scratch file) */
		if (fl_target_check_path(j->t.path, &j->t, &scratch) == 0 &&
		    unlink(j->t.path) == 0) {
			j->st->removed = true;
			rig_dbg(j->ctx, "the new file '%s' was removed", j->t.path);
		}
		return;
	}
	if (fl_target_invalidate(&j->t, why, sizeof(why)) == 0) {
		j->st->invalidated = true;
		fl_err_append(j->e, "; the card was invalidated (first and last MiB erased) so it "
			      "cannot boot");
	} else {
		fl_err_append(j->e, "; erasing its first and last MiB failed too (%s): it may hold "
			      "a partial image", why);
	}
}

/* --- preparing ----------------------------------------------------------------------------- */

/* A bmap named by the caller must be a readable regular file: open() of a FIFO would hang. */
static int bmap_check(const char *path, struct fl_err *e)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return fl_err_set(e, errno == ENOENT || errno == ENOTDIR ? -ENOENT : -EINVAL,
				  "bmap '%s' %s", path, errno == ENOENT || errno == ENOTDIR ?
				  "does not exist" : strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fl_err_set(e, -EINVAL, "bmap '%s' is not a regular file", path);
	return 0;
}

/* A bmap given as a URL: small, so fetched whole, then parsed like a file's. */
static int bmap_fetch(struct job *j, const char *url)
{
	struct rig_http_req req;
	struct rig_http_resp resp;
	int rc;

	rig_http_redact_url(url, j->bmap_shown, sizeof(j->bmap_shown));
	rig_http_req_init(&req);
	req.url = url;
	req.timeout_ms = j->timeout_ms;
	req.retries = 2;
	rc = rig_http_do(j->ctx, &req, &resp);
	if (rc < 0)
		return fl_err_set(j->e, rc, "cannot download bmap: %s", rig_ctx_errmsg(j->ctx));
	if (resp.status != 200)
		rc = fl_err_set(j->e, resp.status == 404 || resp.status == 410 ? -ENOENT : -EIO,
				"cannot download bmap '%s': HTTP %d", j->bmap_shown, resp.status);
	else
		rc = fl_bmap_parse(resp.body, resp.len, j->bmap_shown, &j->bm, j->e);
	rig_http_resp_release(&resp);
	return rc;
}

/* Finds, loads and checks the bmap against the image; none found is no error. */
static int load_bmap(struct job *j, const char *image)
{
	const struct rig_flash_opts *o = j->o;
	struct fl_err *e = j->e;
	char *path;
	int rc;

	if (o->no_bmap)
		return 0;
	/* nothing is looked for next to a URL: that would take a request per guess */
	if (!o->bmap && fl_is_url(image))
		return 0;
	if (o->bmap && fl_is_url(o->bmap)) {
		rc = bmap_fetch(j, o->bmap);
		path = NULL;
	} else {
		path = o->bmap ? strdup(o->bmap) : rig_flash_bmap_find(image);
		if (!path)
			return o->bmap ? fl_err_set(e, -ENOMEM, "out of memory") : 0;
		rc = bmap_check(path, e);
		if (!rc)
			rc = fl_bmap_load(path, &j->bm, e);
	}
	if (!rc && (!j->bm.n || !j->bm.mapped_blocks))
		rc = fl_err_set(e, -EINVAL, "bmap '%s' maps no blocks: there is nothing to write",
				path ? path : j->bmap_shown);
	free(path);
	if (rc)
		return rc;
	j->have_bm = true;
	j->st->bmap_used = true;
	/* skipping parts of the file would leave them out of its SHA-256 */
	rc = o->sha256 ? 0 : fl_src_set_map(j->src, &j->bm, o->threads, e);
	if (rc)
		return rc;
	if (j->st->format == RIG_FLASH_FMT_RAW && !fl_src_size_hint(j->src)) {
		/* a URL that gave no length: the bmap's size is checked as the data arrives */
	} else if (j->st->format == RIG_FLASH_FMT_RAW) {
		uint64_t fsz = fl_src_size_hint(j->src);

		if (fsz < j->bm.image_size)
			return fl_err_set(e, -EBADMSG, "image ends at %" PRIu64 " bytes but its bmap "
					  "says %" PRIu64 ": truncated image or wrong bmap", fsz,
					  j->bm.image_size);
		if (fsz > j->bm.image_size)
			return fl_err_set(e, -EINVAL, "image is larger than the bmap's ImageSize %"
					  PRIu64 ": wrong bmap for this image?", j->bm.image_size);
		/* mapped ranges only, read at their offsets: a file, and no SHA-256 wanted */
		j->sparse = !fl_is_url(image) && !o->sha256;
	} else if (fl_src_size_hint(j->src) && fl_src_size_hint(j->src) != j->bm.image_size) {
		/* zip and zstd tell their size: a wrong bmap is refused up front. */
		return fl_err_set(e, -EINVAL, "image decodes to %" PRIu64 " bytes but its bmap "
				  "says %" PRIu64 ": wrong bmap for this image?",
				  fl_src_size_hint(j->src), j->bm.image_size);
	}
	if (j->bm.block_size < j->gran)
		j->gran = j->bm.block_size;
	return 0;
}

static bool sha256_valid(const char *hex)
{
	size_t i;

	for (i = 0; hex[i]; i++)
		if (!isxdigit((unsigned char)hex[i]))
			return false;
	return i == 64;
}

/*
 * A zip's entry is decoded from inside the file, so the decoder does not hash the file: it
 * is hashed here, before anything is written (one more read of it).
 */
static int sha256_before(struct job *j, const char *path)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char md[32], *buf = malloc(1u << 20);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int mdlen = 0;
	int fd = -1, rc = 0;
	ssize_t n;

	if (!buf || !c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) {
		rc = fl_err_set(j->e, -ENOMEM, "out of memory");
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = fl_err_set(j->e, -errno, "cannot open '%s': %s", path, strerror(errno));
		goto out;
	}
	while ((n = read(fd, buf, 1u << 20)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = fl_err_set(j->e, -errno, "cannot read '%s': %s", path, strerror(errno));
			goto out;
		}
		EVP_DigestUpdate(c, buf, (size_t)n);
		if ((rc = interrupted(j, 0)))
			goto out;
	}
	EVP_DigestFinal_ex(c, md, &mdlen);
	for (unsigned int i = 0; i < 32; i++) {
		j->st->sha256[2 * i] = digits[md[i] >> 4];
		j->st->sha256[2 * i + 1] = digits[md[i] & 15];
	}
	j->st->sha256[64] = 0;
	j->st->has_sha256 = true;
	if (strcasecmp(j->st->sha256, j->o->sha256))
		rc = fl_err_set(j->e, -EBADMSG, "SHA-256 mismatch for '%s': expected %s, got %s: "
				"not the image that was meant, or it changed", path, j->o->sha256,
				j->st->sha256);
	else
		j->st->sha256_matched = true;
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(c);
	free(buf);
	return rc;
}

/* Checks the image fits and sizes a new image file; returns the bytes to be written. */
static int size_target(struct job *j, uint64_t *need_out)
{
	uint64_t need = j->have_bm ? j->bm.image_size : fl_src_size_hint(j->src);

	if (j->have_bm && j->bm.n)
		need = (j->bm.r[j->bm.n - 1].last + 1) * j->bm.block_size;
	if (j->have_bm && need > j->bm.image_size)
		need = j->bm.image_size;
	if (need > j->t.limit)
		return fl_target_too_small(&j->t, need, true, j->e);
	*need_out = need;
	/* New image files become as long as the image (never shorter than they were). */
	if (j->t.grow && j->have_bm && j->t.size < j->bm.image_size) {
		j->t.touched = true;
		if (ftruncate(j->t.fd_buf, (off_t)j->bm.image_size) < 0)
			return io_error(j, "extend", j->t.size, errno);
		j->t.size = j->bm.image_size;
	}
	return 0;
}

static int prepare(struct job *j, const char *image, const char *target)
{
	const struct rig_flash_opts *o = j->o;
	uint64_t need = 0;
	int rc;

	if (o->sha256 && !sha256_valid(o->sha256))
		return fl_err_set(j->e, -EINVAL, "SHA-256 '%s' is not 64 hexadecimal digits",
				  o->sha256);
	if (fl_is_url(image))
		rc = fl_src_open_url(image, j->ctx, o, j->timeout_ms, &j->src, j->e);
	else
		rc = fl_src_open(image, o->threads, &j->src, j->e);
	if (rc)
		return rc;
	/* messages name a URL redacted, as the source does */
	j->image = fl_src_name(j->src);
	image = j->image;
	j->st->format = fl_src_format(j->src);
	j->gz.deferred = fl_src_crc_deferred(j->src);
	rc = load_bmap(j, j->url ? j->url : image);
	if (!rc && (o->hash_image || o->sha256))
		rc = fl_src_hash_file(j->src, j->e);
	if (!rc && o->sha256 && fl_src_unhashed_by_decoder(j->src))
		rc = sha256_before(j, j->url ? j->url : image);
	if (rc)
		return rc;
	rig_dbg(j->ctx, "'%s': %s, decoder %s%s", image, rig_flash_format_name(j->st->format),
		fl_src_decoder_name(j->src), j->have_bm ? (j->sparse ? ", bmap, mapped ranges only"
					       : ", bmap") : "");
	rc = fl_target_open(target, o, &j->t, j->e);
	j->st->hint = j->t.hint;
	if (rc)
		return rc;
	rig_dbg(j->ctx, "target '%s': %s, %s", target, j->t.blockdev ? "block device" : "file",
		j->t.direct ? "O_DIRECT" : "buffered");
	if (fl_src_same_file(j->src, j->t.fd_buf))
		return fl_err_set(j->e, -EINVAL, "image '%s' and target '%s' are the same file",
				  image, target);
	j->st->direct_io = j->t.direct;
	j->st->target_is_blockdev = j->t.blockdev;
	rc = size_target(j, &need);
	if (rc)
		return rc;
	j->phase_total = need;
	if (o->verify && (rc = fl_verify_new(&j->verify, &j->t, o, j->gran, j->e)))
		return rc;
	rc = fl_ring_new(&j->ring, j->src, j->sparse ? &j->bm : NULL, j->e);
	if (!rc)
		rc = fl_delta_new(&j->delta, &j->t, o, j->st, j->verify, j->gran, j->e);
	if (!rc && !(j->walk.md = EVP_MD_CTX_new()))
		rc = fl_err_set(j->e, -ENOMEM, "out of memory");
	return rc ? rc : interrupted(j, 0);
}

/* --- entry point ------------------------------------------------------------------------- */

static int run(struct job *j, const char *image, const char *target)
{
	const struct rig_flash_opts *o = j->o;
	double t = j->t_start, t_write0;
	int rc;

	phase_begin(j, RIG_FLASH_PHASE_PREPARE, 0);
	rc = prepare(j, image, target);
	if (rc)
		return rc;
	t = fl_now();
	j->st->t_prepare = t - j->t_start;

	/*
	 * Progress needs a total: the bmap's image size, else the decoded size the container
	 * declares (zstd, zip) or its index gives (xz). Failing those (gzip, bzip2, an xz with an
	 * unreadable index), the image file read so far tells how far the flash is.
	 */
	if (j->st->format != RIG_FLASH_FMT_RAW && !j->sparse)
		j->in_total = fl_src_file_size(j->src);
	/*
	 * A bmap makes the decoder skip parts of the file (raw) or read it out of order (xz
	 * blocks): the identity's SHA-256 is then read beside the writes, not after them.
	 */
	if (o->hash_image && (j->sparse || j->src->unhashable)) {
		rc = fl_filehash_start(&j->hash, j->src->fd, fl_src_file_size(j->src), j->e);
		if (rc)
			return rc;
	}
	phase_begin(j, RIG_FLASH_PHASE_WRITE, j->have_bm ? j->bm.image_size :
		    fl_src_size_expected(j->src));
	t_write0 = j->phase_t0;
	rc = write_phase(j);
	j->st->t_write = fl_now() - t;
	if (j->st->resumes) {
		char why[160];

		fl_src_resumes(j->src, why, sizeof(why));
		rig_warn(j->ctx, "the download of '%s' broke off and was resumed %d time%s (last: "
			 "%s)", j->image, j->st->resumes, j->st->resumes == 1 ? "" : "s", why);
	}
	if (rc)
		return rc;

	if (j->verify) {
		/* Most ranges were read back while later ones were written; finish the rest. */
		t = fl_now();
		/* The read-back started with the writes: its rate counts from then. */
		j->phase = RIG_FLASH_PHASE_VERIFY;
		j->phase_total = j->st->bytes_mapped;
		j->phase_t0 = t_write0;
		rc = fl_verify_finish(j->verify, true, verify_tick, j, &j->st->bytes_verified,
				      &j->st->fail_offset, j->e);
		report(j, j->st->bytes_verified, true);
		j->st->t_verify = fl_now() - t;
		if (rc)
			return rc;
	}
	t = fl_now();
	phase_begin(j, RIG_FLASH_PHASE_SYNC, 0);
	if (fdatasync(j->t.fd_buf) < 0)
		return io_error(j, "flush", 0, errno);
	j->st->t_sync = fl_now() - t;
	/* A file removed or replaced meanwhile took the image with it: that is no success. */
	rc = fl_target_check_path(target, &j->t, j->e);
	if (rc) {
		j->gone = true;
		return rc;
	}
	fl_target_close(&j->t);

	if (o->n_inject) {
		t = fl_now();
		rc = inject_phase(j);
		j->st->t_inject = fl_now() - t;
		if (rc)
			return rc;
	}
	phase_begin(j, RIG_FLASH_PHASE_DONE, j->st->bytes_mapped);
	return 0;
}

int rig_flash_image(struct rig_ctx *ctx, const char *image, const char *target,
		    const struct rig_flash_opts *opts, struct rig_flash_stats *st_out)
{
	struct rig_flash_opts defaults;
	struct rig_flash_stats st_local;
	char msg[RIG_ERRMSG_MAX];
	struct fl_err e;
	struct job j;
	int rc;

	assert(ctx && image && target);
	if (!opts) {
		rig_flash_opts_init(&defaults);
		opts = &defaults;
	}
	fl_err_init(&e, msg, sizeof(msg));
	memset(&j, 0, sizeof(j));
	j.ctx = ctx;
	j.o = opts;
	j.e = &e;
	j.st = st_out ? st_out : &st_local;
	memset(j.st, 0, sizeof(*j.st));
	j.image = image;
	j.url = fl_is_url(image) ? image : NULL;
	j.t.fd = j.t.fd_buf = j.t.rfd = -1;
	j.t.path = target;
	j.gran = VBLK;
	j.t_start = fl_now();
	j.timeout_ms = rig_ctx_clamp(ctx, opts->timeout_ms);
	if (j.timeout_ms >= 0)
		j.deadline = j.t_start + j.timeout_ms / 1000.0 + (j.timeout_ms == 0 ? 1e-9 : 0);

	rc = run(&j, image, target);

	/*
	 * the stages stop before the target they use is invalidated and closed; the writer
	 * first, as it queues read-backs
	 */
	fl_delta_free(j.delta);
	fl_verify_free(j.verify);
	fl_ring_free(j.ring);
	if (rc == 0)
		take_hash(&j);
	fl_filehash_free(j.hash);
	j.st->target_written = j.t.touched;
	if (rc < 0 && j.t.touched && !j.gone)
		after_failure(&j);
	if (j.src && !j.st->bytes_read)
		j.st->bytes_read = fl_src_bytes_in(j.src);
	fl_target_close(&j.t);
	fl_src_close(j.src);
	fl_bmap_release(&j.bm);
	EVP_MD_CTX_free(j.walk.md);
	j.st->t_total = fl_now() - j.t_start;
	if (j.st->t_total > 0)
		j.st->mbps = (double)j.st->bytes_mapped / j.st->t_total / 1e6;
	if (rc < 0)
		return rig_ctx_fail(ctx, rig_err_from_errno(rc), "%s", msg[0] ? msg : strerror(-rc));
	rig_dbg(ctx, "done: %" PRIu64 " bytes written, %" PRIu64 " skipped, %" PRIu64
		" verified in %.2f s", j.st->bytes_written, j.st->bytes_skipped,
		j.st->bytes_verified, j.st->t_total);
	return 0;
}
