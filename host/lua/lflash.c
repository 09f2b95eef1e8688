/* SPDX-License-Identifier: MIT */
/*
 * rig:flash(image [, opts]) and rig:read_file(part, path): the flash engine for scripts.
 * opts.files = { ["config.json"] = text, ... } are written into the boot partition after
 * the image, then read back and compared, so one call flashes, provisions and verifies.
 * A successful flash records the image's identity (rig_image_inspect() of the card just
 * written) as stats.image and rig.image, so suites and reports can say what they verified.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <lauxlib.h>

#include "lrig.h"
#include "rig_flash.h"
#include "rig_http.h"
#include "rig_image.h"

static const char *const boot_labels[] = { "resin-boot", "balena-boot", "flash-boot", NULL };

/* The partition to put files in: opts.partition, else the first boot label present. */
static int find_boot(const char *target, const char *want, char *out, size_t len, char *err,
		     size_t errlen)
{
	struct rig_part_table *t;
	struct rig_part_info info;
	int rc = rig_part_table_read(target, &t, err, errlen);

	if (rc < 0)
		return rc;
	for (size_t i = 0; !want && boot_labels[i]; i++)
		if (rig_part_table_find(t, boot_labels[i], &info, NULL, 0) == 0)
			want = boot_labels[i];
	if (!want) {
		rig_part_table_free(t);
		snprintf(err, errlen, "no boot partition (labels resin-boot, balena-boot, flash-boot); give opts.partition");
		return -ENOENT;
	}
	rc = rig_part_table_find(t, want, &info, err, errlen);
	rig_part_table_free(t);
	if (rc == 0)
		snprintf(out, len, "%s", want);
	return rc;
}

static void set_num(lua_State *L, const char *k, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, unsigned long long v)
{
	lua_pushinteger(L, (lua_Integer)v);
	lua_setfield(L, -2, k);
}

static void push_stats(lua_State *L, const struct rig_flash_stats *st)
{
	lua_createtable(L, 0, 16);
	lua_pushstring(L, rig_flash_format_name(st->format));
	lua_setfield(L, -2, "format");
	lua_pushboolean(L, st->bmap_used);
	lua_setfield(L, -2, "bmap");
	set_int(L, "image_size", st->image_size);
	set_int(L, "bytes_read", st->bytes_read);
	set_int(L, "decompressed", st->bytes_decompressed);
	set_int(L, "undecoded", st->bytes_undecoded);
	set_int(L, "mapped", st->bytes_mapped);
	set_int(L, "written", st->bytes_written);
	set_int(L, "skipped", st->bytes_skipped);
	set_int(L, "verified", st->bytes_verified);
	set_num(L, "mbps", st->mbps);
	set_int(L, "resumes", (unsigned long long)st->resumes);
	if (st->has_sha256) {
		lua_pushstring(L, st->sha256);
		lua_setfield(L, -2, "sha256");
	}
	lua_pushboolean(L, st->sha256_matched);
	lua_setfield(L, -2, "sha256_matched");
	lua_createtable(L, 0, 6);
	set_num(L, "prepare", st->t_prepare);
	set_num(L, "write", st->t_write);
	set_num(L, "sync", st->t_sync);
	set_num(L, "verify", st->t_verify);
	set_num(L, "inject", st->t_inject);
	set_num(L, "total", st->t_total);
	lua_setfield(L, -2, "seconds");
}

/*
 * Pushes the identity of @image for suites (docs/lua-api.md, rig.image): rigor.image/1
 * flattened for scripts: os_release is the fields, bootloader the kind, device_type and
 * config_json come up from "balena", partitions up from "partition_table". Read from the
 * card just written (@target, NULL when it is gone), else only from the file. Never fails
 * the flash: what cannot be read is left out, and at least name and path are there.
 */
static void push_identity(lua_State *L, struct rig *rig, const char *image, const char *target,
			  const struct rig_flash_stats *st)
{
	struct rig_image_opts o;
	struct rig_image *img = NULL;
	json_t *j = NULL, *bal, *pt;
	char *text, shown[512];
	int rc;

	/* a URL is not downloaded again: its name, redacted URL and SHA-256 are what is known */
	if (strstr(image, "://")) {
		const char *base, *q;

		rig_http_redact_url(image, shown, sizeof(shown));
		q = shown + strcspn(shown, "?#");
		base = q;
		while (base > shown && base[-1] != '/')
			base--;
		lua_createtable(L, 0, 4);
		lua_pushlstring(L, base, (size_t)(q - base));
		lua_setfield(L, -2, "name");
		lua_pushstring(L, shown);
		lua_setfield(L, -2, "path");
		lua_pushstring(L, rig_flash_format_name(st->format));
		lua_setfield(L, -2, "format");
		if (st->has_sha256) {
			lua_pushstring(L, st->sha256);
			lua_setfield(L, -2, "sha256");
		}
		return;
	}
	rig_image_opts_init(&o);
	o.decoded = target;
	o.raw_size = st->image_size;
	o.sha256 = st->has_sha256 ? st->sha256 : NULL;
	o.shallow = target == NULL;
	o.timeout_ms = rigl_clamp(L, 60000);
	rc = rig_image_inspect(rig_ctx(rig), image, &o, &img);
	if (rc < 0 && !o.shallow) {
		/* a disk image without a table flashes fine; its identity is the file's */
		o.shallow = true;
		rc = rig_image_inspect(rig_ctx(rig), image, &o, &img);
	}
	rig_ctx_clear_error(rig_ctx(rig));
	text = rc == 0 ? rig_image_to_json(img, 0) : NULL;
	rig_image_free(img);
	if (text)
		j = json_loads(text, 0, NULL);
	free(text);
	if (!j) {
		const char *base = strrchr(image, '/');

		lua_createtable(L, 0, 2);
		lua_pushstring(L, base && base[1] ? base + 1 : image);
		lua_setfield(L, -2, "name");
		lua_pushstring(L, image);
		lua_setfield(L, -2, "path");
		return;
	}
	json_object_del(j, "schema");
	json_object_set(j, "os_release", json_object_get(json_object_get(j, "os_release"), "fields"));
	json_object_set(j, "bootloader", json_object_get(json_object_get(j, "bootloader"), "kind"));
	bal = json_object_get(j, "balena");
	if (json_is_object(bal)) {
		json_object_set(j, "device_type", json_object_get(bal, "device_type"));
		json_object_set(j, "config_json", json_object_get(bal, "config_json"));
	}
	json_object_set_new(j, "balena", json_boolean(json_is_object(bal)));
	pt = json_object_get(j, "partition_table");
	if (json_is_object(pt)) {
		json_object_set(j, "partitions", json_object_get(pt, "partitions"));
		json_object_set(j, "partition_table", json_object_get(pt, "type"));
	}
	rigl_push_json(L, j, true);   /* what is not known is left out (nil) */
	json_decref(j);
}

static int fail(lua_State *L, const char *msg, int rc)
{
	lua_pushnil(L);
	lua_pushstring(L, msg);
	lua_pushstring(L, rig_err_name(rc));
	return 3;
}

static int l_flash(lua_State *L)
{
	struct rig *rig = rigl_checkrig(L, 1);
	const char *image = luaL_checkstring(L, 2);
	struct rig_flash_opts o;
	struct rig_flash_stats st;
	char target[4096], why[256], part[64], err[1024];
	int rc, nfiles = 0;
	bool have_target;

	rig_flash_opts_init(&o);
	o.hash_image = true;    /* for rig.image.sha256, so the image is not read again */
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		lua_getfield(L, 3, "bmap");
		o.bmap = lua_tostring(L, -1);
		lua_getfield(L, 3, "verify");
		o.verify = lua_isnil(L, -1) ? true : lua_toboolean(L, -1);
		lua_getfield(L, 3, "full");
		o.full = lua_toboolean(L, -1);
		lua_pop(L, 2);   /* keep the bmap string on the stack while flashing */
		lua_getfield(L, 3, "sha256");
		if (!lua_isnil(L, -1) && !lua_isstring(L, -1))
			return luaL_error(L, "opts.sha256: a string of 64 hex digits");
		o.sha256 = lua_tostring(L, -1);   /* kept on the stack too */
		lua_getfield(L, 3, "stall_timeout");
		if (!lua_isnil(L, -1))
			o.stall_ms = (int)(luaL_checknumber(L, -1) * 1000);
		lua_getfield(L, 3, "retries");
		if (!lua_isnil(L, -1))
			o.retries = (int)luaL_checkinteger(L, -1);
		lua_pop(L, 2);
	}
	rigl_check_abort(L);
	rc = rig_flash(rig, image, &o, &st);
	if (rc < 0) {
		rigl_result(L, rig, rc);   /* raises for infrastructure errors and aborts */
		return 3;
	}
	push_stats(L, &st);
	/* a Compute Module's eMMC left with its power: only the image file can be read */
	have_target = rig_storage_access(rig, target, sizeof(target), why, sizeof(why)) == 0;
	rig_clear_error(rig);
	push_identity(L, rig, image, have_target ? target : NULL, &st);
	lua_getiuservalue(L, 1, 1);        /* rig.image: the rig's fields live in its user value */
	lua_pushvalue(L, -2);
	lua_setfield(L, -2, "image");
	lua_pop(L, 1);
	lua_setfield(L, -2, "image");
	if (lua_isnoneornil(L, 3))
		return 1;
	lua_getfield(L, 3, "files");
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 1;
	}
	luaL_checktype(L, -1, LUA_TTABLE);
	if (!have_target)
		/* files go in through the CLI's --inject there */
		return fail(L, "opts.files: the flashed disk is gone (the DUT was powered off after flashing over USB boot)",
			    RIG_E_NODEV);
	lua_getfield(L, 3, "partition");
	rc = find_boot(target, lua_tostring(L, -1), part, sizeof(part), err, sizeof(err));
	lua_pop(L, 1);
	if (rc < 0)
		return fail(L, err, rc);
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		size_t n, got_len = 0;
		const char *name = lua_tostring(L, -2), *data = lua_tolstring(L, -1, &n);
		char dest[512], *got = NULL;

		if (!name || !data)
			return luaL_error(L, "opts.files: names and contents must be strings");
		snprintf(dest, sizeof(dest), "%s%s", name[0] == '/' ? "" : "/", name);
		rc = rig_part_file_write(target, part, dest, data, n, false, 30000, err, sizeof(err));
		if (rc == 0)
			rc = rig_part_file_read(target, part, dest, &got, &got_len, 30000, err, sizeof(err));
		if (rc == 0 && (got_len != n || memcmp(got, data, n))) {
			snprintf(err, sizeof(err), "%s:%s reads back different from what was written", part, dest);
			rc = -EIO;
		}
		free(got);
		if (rc < 0)
			return fail(L, err, rc);
		nfiles++;
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	lua_pushinteger(L, nfiles);
	lua_setfield(L, -2, "files");
	lua_pushstring(L, part);
	lua_setfield(L, -2, "partition");
	return 1;
}

/* rig:read_file(part, path) -> contents, from the storage target (FAT or ext). */
static int l_read_file(lua_State *L)
{
	struct rig *rig = rigl_checkrig(L, 1);
	const char *part = luaL_checkstring(L, 2), *path = luaL_checkstring(L, 3);
	char target[4096], why[256], err[1024];
	char *data = NULL;
	size_t n = 0;
	/* through the interlock: never read a card the powered DUT may be writing */
	int rc = rig_storage_access(rig, target, sizeof(target), why, sizeof(why));

	if (rc < 0)
		return rigl_result(L, rig, rc);
	rc = rig_part_file_read(target, part, path, &data, &n, rigl_clamp(L, 30000), err, sizeof(err));
	if (rc < 0)
		return fail(L, err, rc);
	lua_pushlstring(L, data, n);
	free(data);
	return 1;
}

void rigl_register_flash(lua_State *L)
{
	static const luaL_Reg meth[] = {
		{ "flash", l_flash }, { "read_file", l_read_file }, { NULL, NULL },
	};

	luaL_getmetatable(L, "rig.rig");
	lua_getfield(L, -1, "methods");
	luaL_setfuncs(L, meth, 0);
	lua_pop(L, 2);
}
