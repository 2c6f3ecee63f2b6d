#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_RANDOM_H
#include <sys/random.h>
#endif

#include <sqlite3.h>

#include "core/base64.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/sha256.h"
#include "core/str.h"
#include "dbpool.h"
#include "keys.h"

#define KEY_COLUMNS	"id, name, prefix, created, expires, revoked," \
			" budget_tokens, budget_period, rpm, models," \
			" max_overshoot"

static void
column_text(sqlite3_stmt *st, int i, char *out, size_t size)
{
	const unsigned char	*t = sqlite3_column_text(st, i);

	str_copy(out, size, t != NULL ? (const char *)t : "");
}

static void
row_to_key(sqlite3_stmt *st, struct key *k)
{
	memset(k, 0, sizeof(*k));
	column_text(st, 0, k->id, sizeof(k->id));
	column_text(st, 1, k->name, sizeof(k->name));
	column_text(st, 2, k->prefix, sizeof(k->prefix));
	k->created = sqlite3_column_int64(st, 3);
	k->expires = sqlite3_column_int64(st, 4);
	k->revoked = sqlite3_column_int64(st, 5);
	k->budget_tokens = sqlite3_column_type(st, 6) == SQLITE_NULL ? -1 :
	    (long)sqlite3_column_int64(st, 6);
	column_text(st, 7, k->period, sizeof(k->period));
	k->rpm = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 :
	    (long)sqlite3_column_int64(st, 8);
	column_text(st, 9, k->models, sizeof(k->models));
	k->max_overshoot = (long)sqlite3_column_int64(st, 10);
}

/*
 * Step "st" (prepared, bound) once: 1 with "k" filled from its row, 0 if
 * there is none, -1 with "err" set.
 */
static int
key_fetch(sqlite3 *db, sqlite3_stmt *st, struct key *k, struct err *err)
{
	int	 rc;

	switch (sqlite3_step(st)) {
	case SQLITE_ROW:
		row_to_key(st, k);
		rc = 1;
		break;
	case SQLITE_DONE:
		rc = 0;
		break;
	default:
		err_set(err, "key lookup: %s", sqlite3_errmsg(db));
		rc = -1;
		break;
	}
	sqlite3_reset(st);
	return rc;
}

int
keys_hash(const char *token, size_t len, char hash[KEY_HASH_LEN + 1])
{
	/* Not one of ours: no database round trip for it. */
	if (len != KEY_SECRET_LEN ||
	    strncmp(token, KEY_PREFIX, strlen(KEY_PREFIX)) != 0)
		return 0;
	sha256_hex(token, len, hash);
	return 1;
}

int
keys_lookup(struct dbpool *p, const char *token, size_t len,
    int64_t deadline_ms, struct key *k, struct err *err)
{
	static const char	 sql[] = "SELECT " KEY_COLUMNS
	    " FROM keys WHERE hash = ?1";
	struct dbconn		*c;
	sqlite3_stmt		*st;
	char			 hash[KEY_HASH_LEN + 1];
	int			 rc = -1;

	if (!keys_hash(token, len, hash))
		return 0;
	if ((c = dbpool_get(p, deadline_ms, err)) == NULL)
		return -1;
	if ((st = dbconn_stmt(c, DBS_KEY_BY_HASH, sql, err)) != NULL) {
		sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
		if ((rc = key_fetch(c->db, st, k, err)) == -1)
			err_prefix(err, "database %s", dbpool_path(p));
	}
	dbpool_put(p, c, rc == -1);
	return rc;
}

int
key_allows_model(const struct key *k, const char *model)
{
	const char	*p = k->models, *end;
	size_t		 n = strlen(model);

	if (*p == '\0')
		return 1;
	while (*p != '\0') {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) == n && strncmp(p, model, n) == 0)
			return 1;
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

enum key_state
key_state(const struct key *k, int64_t now)
{
	if (k->revoked != 0)
		return KEY_REVOKED;
	if (k->expires != 0 && now >= k->expires)
		return KEY_EXPIRED;
	return KEY_ACTIVE;
}

static int
random_bytes(unsigned char *p, size_t n, struct err *err)
{
	ssize_t	 r;

	while (n > 0) {
#ifdef HAVE_GETRANDOM
		r = getrandom(p, n, 0);
#else
		errno = ENOSYS;
		r = -1;
#endif
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			err_set(err, "getrandom: %s", strerror(errno));
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int
keys_mint(const struct key *spec, char *secret, struct key *out,
    char hash[KEY_HASH_LEN + 1], struct err *err)
{
	unsigned char	 raw[32], idraw[6];
	int		 i;

	if (random_bytes(raw, sizeof(raw), err) == -1 ||
	    random_bytes(idraw, sizeof(idraw), err) == -1)
		return -1;
	memcpy(secret, KEY_PREFIX, strlen(KEY_PREFIX));
	base64_encode(raw, sizeof(raw), secret + strlen(KEY_PREFIX),
	    BASE64_URL);
	explicit_bzero(raw, sizeof(raw));
	sha256_hex(secret, strlen(secret), hash);
	*out = *spec;
	out->id[0] = 'k';
	for (i = 0; i < 6; i++)
		snprintf(out->id + 1 + 2 * i, 3, "%02x", idraw[i]);
	str_copy(out->prefix, sizeof(out->prefix), secret);
	out->prefix[strlen(KEY_PREFIX) + 6] = '\0';
	out->created = clock_wall_ms();
	out->revoked = 0;
	return 0;
}

int
keys_create(struct sqlite3 *db, const struct key *spec, char *secret,
    struct key *out, struct err *err)
{
	static const char	 sql[] = "INSERT INTO keys (id, name, hash,"
	    " prefix, created, expires, budget_tokens, budget_period, rpm,"
	    " models) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
	char			 hash[KEY_HASH_LEN + 1];
	sqlite3_stmt		*st = NULL;
	int			 rc = -1;

	if (keys_mint(spec, secret, out, hash, err) == -1)
		return -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, out->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, out->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, out->prefix, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, out->created);
	if (out->expires != 0)
		sqlite3_bind_int64(st, 6, out->expires);
	if (out->budget_tokens >= 0) {
		sqlite3_bind_int64(st, 7, out->budget_tokens);
		sqlite3_bind_text(st, 8, out->period, -1, SQLITE_STATIC);
	}
	if (out->rpm >= 0)
		sqlite3_bind_int64(st, 9, out->rpm);
	if (out->models[0] != '\0')
		sqlite3_bind_text(st, 10, out->models, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	rc = 0;
	goto out;
fail:
	if (sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE)
		err_set(err, "a key named \"%s\" exists already", spec->name);
	else
		err_set(err, "store the key: %s", sqlite3_errmsg(db));
	explicit_bzero(secret, KEY_SECRET_LEN + 1);
out:
	sqlite3_finalize(st);
	return rc;
}

int
keys_get(struct sqlite3 *db, const char *name_or_id, struct key *k,
    struct err *err)
{
	static const char	 sql[] = "SELECT " KEY_COLUMNS
	    " FROM keys WHERE name = ?1 OR id = ?1";
	sqlite3_stmt		*st;
	int			 rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		err_set(err, "%s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_text(st, 1, name_or_id, -1, SQLITE_STATIC);
	rc = key_fetch(db, st, k, err);
	sqlite3_finalize(st);
	return rc;
}

int
keys_revoke(struct sqlite3 *db, const char *id, struct err *err)
{
	sqlite3_stmt	*st;
	int		 rc = -1;

	if (sqlite3_prepare_v2(db, "UPDATE keys SET revoked = ?2 WHERE id = ?1"
	    " AND revoked IS NULL", -1, &st, NULL) != SQLITE_OK) {
		err_set(err, "%s", sqlite3_errmsg(db));
		return -1;
	}
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, clock_wall_ms());
	if (sqlite3_step(st) == SQLITE_DONE)
		rc = 0;
	else
		err_set(err, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc;
}

int
keys_each(struct sqlite3 *db, void (*fn)(void *, const struct key *),
    void *arg, struct err *err)
{
	sqlite3_stmt	*st;
	struct key	 k;
	int		 rc;

	if (sqlite3_prepare_v2(db, "SELECT " KEY_COLUMNS " FROM keys ORDER BY"
	    " name", -1, &st, NULL) != SQLITE_OK) {
		err_set(err, "%s", sqlite3_errmsg(db));
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_to_key(st, &k);
		fn(arg, &k);
	}
	if (rc != SQLITE_DONE)
		err_set(err, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}
