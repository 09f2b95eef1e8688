/* SPDX-License-Identifier: MIT */
/*
 * key=value files: the persisted front-end state of a rig and the state of sim back-ends.
 * They outlive a process because `rigor power on` and `rigor sdmux host` are separate
 * processes and the interlock must still see the power state and the time of power-off.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "internal.h"

struct rig_kv {
	size_t n, cap;
	char **keys, **vals;
};

struct rig_kv *rig_kv_load(const char *path)
{
	struct rig_kv *kv = calloc(1, sizeof(*kv));
	char line[1024];
	FILE *f;

	if (!kv)
		return NULL;
	f = fopen(path, "re");
	if (!f)
		return kv;
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '=');

		line[strcspn(line, "\n")] = 0;
		if (!eq)
			continue;
		*eq = 0;
		if (rig_kv_set(kv, line, eq + 1) < 0) {
			fclose(f);
			rig_kv_free(kv);
			return NULL;
		}
	}
	fclose(f);
	return kv;
}

void rig_kv_free(struct rig_kv *kv)
{
	if (!kv)
		return;
	for (size_t i = 0; i < kv->n; i++) {
		free(kv->keys[i]);
		free(kv->vals[i]);
	}
	free(kv->keys);
	free(kv->vals);
	free(kv);
}

const char *rig_kv_get(const struct rig_kv *kv, const char *key)
{
	for (size_t i = 0; i < kv->n; i++)
		if (!strcmp(kv->keys[i], key))
			return kv->vals[i];
	return NULL;
}

long long rig_kv_get_int(const struct rig_kv *kv, const char *key, long long dflt)
{
	const char *v = rig_kv_get(kv, key);

	return v && *v ? strtoll(v, NULL, 10) : dflt;
}

int rig_kv_set(struct rig_kv *kv, const char *key, const char *val)
{
	char *v = strdup(val);

	if (!v)
		return RIG_E_NOMEM;
	for (size_t i = 0; i < kv->n; i++) {
		if (!strcmp(kv->keys[i], key)) {
			free(kv->vals[i]);
			kv->vals[i] = v;
			return 0;
		}
	}
	if (kv->n == kv->cap) {
		size_t cap = kv->cap ? kv->cap * 2 : 8;
		char **k = realloc(kv->keys, cap * sizeof(*k));

		if (k)
			kv->keys = k;
		k = k ? realloc(kv->vals, cap * sizeof(*k)) : NULL;
		if (!k) {
			free(v);
			return RIG_E_NOMEM;
		}
		kv->vals = k;
		kv->cap = cap;
	}
	kv->keys[kv->n] = strdup(key);
	if (!kv->keys[kv->n]) {
		free(v);
		return RIG_E_NOMEM;
	}
	kv->vals[kv->n++] = v;
	return 0;
}

int rig_kv_set_int(struct rig_kv *kv, const char *key, long long val)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", val);
	return rig_kv_set(kv, key, buf);
}

int rig_kv_save(const struct rig_kv *kv, const char *path)
{
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	rig_file_share(fileno(f), tmp);
	for (size_t i = 0; i < kv->n; i++)
		fprintf(f, "%s=%s\n", kv->keys[i], kv->vals[i]);
	if (fclose(f) != 0 || rename(tmp, path) < 0) {
		int e = -errno;

		unlink(tmp);
		return e;
	}
	return 0;
}

int rig_kv_lock(struct rig_ctx *ctx, const char *path, int timeout_ms)
{
	struct rig_deadline d = rig_deadline_start(timeout_ms);
	char lck[4200];
	int fd;

	snprintf(lck, sizeof(lck), "%s.lck", path);
	fd = open(lck, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rig_file_share(fd, lck);
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int rc = errno == EWOULDBLOCK ? 0 : -errno;

		if (rc == 0 && rig_deadline_expired(d))
			rc = RIG_E_BUSY;
		if (rc == 0)
			rc = rig_ctx_sleep(ctx, 10);
		if (rc < 0) {
			close(fd);
			return rc;
		}
	}
	return fd;
}

void rig_kv_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
