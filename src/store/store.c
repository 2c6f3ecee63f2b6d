#include "config.h"

#include <stdlib.h>

#include <sqlite3.h>

#include "core/err.h"
#include "budget.h"
#include "dbpool.h"
#include "keys.h"
#include "ledger.h"
#include "pg.h"
#include "store_impl.h"

struct store {
	const struct store_ops	*ops;
	void			*impl;
};

struct store *
store_new(const char *database, const char *program, int connections,
    struct err *err)
{
	struct store	*s;

#ifndef HAVE_POSTGRESQL
	if (pg_is_uri(database)) {
		/* pg_open() says why there is no PostgreSQL to open. */
		(void)pg_open(database, program, 0, err);
		return NULL;
	}
#endif
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		err_set(err, "out of memory");
		return NULL;
	}
#ifdef HAVE_POSTGRESQL
	s->ops = pg_is_uri(database) ? &store_pg_ops : &store_sqlite_ops;
#else
	s->ops = &store_sqlite_ops;
#endif
	if ((s->impl = s->ops->new(database, program, connections)) == NULL) {
		err_set(err, "out of memory");
		free(s);
		return NULL;
	}
	return s;
}

void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	s->ops->free(s->impl);
	free(s);
}

int
store_open(struct store *s, int64_t deadline_ms, struct err *err)
{
	return s->ops->open(s->impl, deadline_ms, err);
}

int
store_key_lookup(struct store *s, const char *token, size_t len,
    int64_t deadline_ms, struct key *k, struct err *err)
{
	return s->ops->key_lookup(s->impl, token, len, deadline_ms, k, err);
}

enum budget_verdict
store_reserve(struct store *s, const struct key *k,
    const struct budget_claim *claim, struct reservation *r,
    struct budget_left *left, long *retry_after, struct err *err)
{
	return s->ops->reserve(s->impl, k, claim, r, left, retry_after, err);
}

enum budget_verdict
store_extend(struct store *s, const struct key *k, struct reservation *r,
    long want, long need, int64_t deadline_ms, struct err *err)
{
	return s->ops->extend(s->impl, k, r, want, need, deadline_ms, err);
}

int
store_release(struct store *s, struct reservation *r, struct err *err)
{
	return s->ops->release(s->impl, r, err);
}

long
store_ledger_write(struct store *s, const struct record *rows, size_t n,
    int64_t deadline_ms, struct err *err)
{
	return s->ops->ledger_write(s->impl, rows, n, deadline_ms, err);
}

int
store_probe(struct store *s, int64_t deadline_ms, struct err *err)
{
	return s->ops->probe(s->impl, deadline_ms, err);
}

int
store_key_create(struct store *s, const struct key *spec, char *secret,
    struct key *out, struct err *err)
{
	return s->ops->key_create(s->impl, spec, secret, out, err);
}

int
store_key_get(struct store *s, const char *name_or_id, struct key *k,
    struct err *err)
{
	return s->ops->key_get(s->impl, name_or_id, k, err);
}

int
store_key_revoke(struct store *s, const char *id, struct err *err)
{
	return s->ops->key_revoke(s->impl, id, err);
}

int
store_key_each(struct store *s, void (*fn)(void *, const struct key *),
    void *arg, struct err *err)
{
	return s->ops->key_each(s->impl, fn, arg, err);
}

int
store_budget_spent(struct store *s, const struct key *k, long *settled,
    long *held, struct err *err)
{
	return s->ops->budget_spent(s->impl, k, settled, held, err);
}

/*
 * The SQLite backend: keys.c, budget.c and ledger.c over a dbpool; what
 * llmgw-admin does on one connection, taken as a writer.
 */

static void *
sqlite_new(const char *path, const char *program, int connections)
{
	(void)program;
	(void)connections;
	return dbpool_new(path);
}

static void
sqlite_free(void *impl)
{
	dbpool_free(impl);
}

static int
sqlite_open(void *impl, int64_t deadline_ms, struct err *err)
{
	struct dbconn	*c;

	if ((c = dbpool_get(impl, deadline_ms, err)) == NULL)
		return -1;
	dbpool_put(impl, c, 0);
	return 0;
}

static int
sqlite_key_lookup(void *impl, const char *token, size_t len,
    int64_t deadline_ms, struct key *k, struct err *err)
{
	return keys_lookup(impl, token, len, deadline_ms, k, err);
}

static enum budget_verdict
sqlite_reserve(void *impl, const struct key *k,
    const struct budget_claim *claim, struct reservation *r,
    struct budget_left *left, long *retry_after, struct err *err)
{
	return budget_reserve(impl, k, claim, r, left, retry_after, err);
}

static enum budget_verdict
sqlite_extend(void *impl, const struct key *k, struct reservation *r,
    long want, long need, int64_t deadline_ms, struct err *err)
{
	return budget_extend(impl, k, r, want, need, deadline_ms, err);
}

static int
sqlite_release(void *impl, struct reservation *r, struct err *err)
{
	return budget_release(impl, r, err);
}

static long
sqlite_ledger_write(void *impl, const struct record *rows, size_t n,
    int64_t deadline_ms, struct err *err)
{
	return ledger_write(impl, rows, n, deadline_ms, err);
}

static int
sqlite_probe(void *impl, int64_t deadline_ms, struct err *err)
{
	return ledger_probe(impl, deadline_ms, err);
}

/* An admin job's connection: NULL with "err" set. */
static struct dbconn *
admin_conn(void *impl, struct err *err)
{
	struct dbconn	*c;

	if ((c = dbpool_get_writer(impl, 0, err)) == NULL)
		err_prefix(err, "database %s", dbpool_path(impl));
	return c;
}

static int
sqlite_key_create(void *impl, const struct key *spec, char *secret,
    struct key *out, struct err *err)
{
	struct dbconn	*c;
	int		 rc;

	if ((c = admin_conn(impl, err)) == NULL)
		return -1;
	rc = keys_create(c->db, spec, secret, out, err);
	dbpool_put(impl, c, 0);
	return rc;
}

static int
sqlite_key_get(void *impl, const char *name_or_id, struct key *k,
    struct err *err)
{
	struct dbconn	*c;
	int		 rc;

	if ((c = admin_conn(impl, err)) == NULL)
		return -1;
	rc = keys_get(c->db, name_or_id, k, err);
	dbpool_put(impl, c, 0);
	return rc;
}

static int
sqlite_key_revoke(void *impl, const char *id, struct err *err)
{
	struct dbconn	*c;
	int		 rc;

	if ((c = admin_conn(impl, err)) == NULL)
		return -1;
	rc = keys_revoke(c->db, id, err);
	dbpool_put(impl, c, 0);
	return rc;
}

static int
sqlite_key_each(void *impl, void (*fn)(void *, const struct key *),
    void *arg, struct err *err)
{
	struct dbconn	*c;
	int		 rc;

	if ((c = admin_conn(impl, err)) == NULL)
		return -1;
	rc = keys_each(c->db, fn, arg, err);
	dbpool_put(impl, c, 0);
	return rc;
}

static int
sqlite_budget_spent(void *impl, const struct key *k, long *settled,
    long *held, struct err *err)
{
	struct dbconn	*c;
	int		 rc;

	if ((c = admin_conn(impl, err)) == NULL)
		return -1;
	rc = budget_spent(c->db, k, settled, held, err);
	dbpool_put(impl, c, 0);
	return rc;
}

const struct store_ops store_sqlite_ops = {
	sqlite_new, sqlite_free, sqlite_open, sqlite_key_lookup,
	sqlite_reserve, sqlite_extend, sqlite_release, sqlite_ledger_write,
	sqlite_probe, sqlite_key_create, sqlite_key_get, sqlite_key_revoke,
	sqlite_key_each, sqlite_budget_spent
};
