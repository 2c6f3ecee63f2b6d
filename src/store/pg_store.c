/*
 * The PostgreSQL store (store.h): a small pool of connections per
 * process, the keys, and the health row; budgets and usage rows are
 * pg_budget.c's.  Each job takes a connection for its length, so no
 * connection is used by two threads at once; at most "max" are open, and
 * a job that finds them all busy waits for one until its deadline.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/batch.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/str.h"
#include "db.h"
#include "keys.h"
#include "pg.h"
#include "pg_impl.h"
#include "store_impl.h"

struct pg_pool {
	pthread_mutex_t	 lock;
	pthread_cond_t	 freed;
	struct pg	*idle;
	int		 open;		/* connections made, idle or in use */
	int		 max;
	int		 migrated;
	char		*uri;		/* secret: may hold a password */
	char		 program[32];
	char		 name[320];	/* the last connection's, for
					 * messages */
	char		 host[256];	/* this host, in the holds it makes */
	struct batch	*holds;		/* pg_reserve()'s claims */
};

#define KEY_COLUMNS	"id, name, prefix, created, expires, revoked," \
			" budget_tokens, budget_period, rpm, models," \
			" max_overshoot"

static const struct pg_stmt stmts[PGS_N] = {
	[PGS_KEY_BY_HASH] = { "llmgw_key_by_hash",
	    "SELECT " KEY_COLUMNS " FROM keys WHERE hash = $1", 1 },
	[PGS_HEALTH] = { "llmgw_health", "INSERT INTO health (id, ts)"
	    " VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET ts = excluded.ts",
	    1 },
};

static void *
pool_new(const char *uri, const char *program, int max)
{
	struct pg_pool		*p;
	pthread_condattr_t	 ca;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	if ((p->uri = strdup(uri)) == NULL ||
	    (p->holds = batch_new("PostgreSQL", pg_run_holds, p)) == NULL) {
		free(p->uri);
		free(p);
		return NULL;
	}
	p->max = max > 0 ? max : 1;
	str_copy(p->program, sizeof(p->program), program);
	str_copy(p->name, sizeof(p->name), "PostgreSQL");
	if (gethostname(p->host, sizeof(p->host)) == -1)
		str_copy(p->host, sizeof(p->host), "localhost");
	p->host[sizeof(p->host) - 1] = '\0';
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->freed, &ca);
	pthread_condattr_destroy(&ca);
	return p;
}

static void
pool_free(void *arg)
{
	struct pg_pool	*p = arg;
	struct pg	*c;

	if (p == NULL)
		return;
	while ((c = p->idle) != NULL) {
		p->idle = c->next;
		pg_close(c);
	}
	batch_free(p->holds);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->freed);
	explicit_bzero(p->uri, strlen(p->uri));
	free(p->uri);
	free(p);
}

struct batch *
pg_pool_holds(struct pg_pool *p)
{
	return p->holds;
}

const char *
pg_pool_host(const struct pg_pool *p)
{
	return p->host;
}

/* A new connection, migrated if it is the pool's first: NULL, "err". */
static struct pg *
conn_new(struct pg_pool *p, struct err *err)
{
	struct pg	*c;
	int		 migrated;

	pthread_mutex_lock(&p->lock);
	migrated = p->migrated;
	pthread_mutex_unlock(&p->lock);
	if ((c = pg_open(p->uri, p->program, !migrated, err)) == NULL)
		return NULL;
	pthread_mutex_lock(&p->lock);
	p->migrated = 1;
	str_copy(p->name, sizeof(p->name), c->name);
	pthread_mutex_unlock(&p->lock);
	return c;
}

/*
 * A connection for one job, by "deadline_ms" (monotonic; 0: the
 * default).  "*reused" says whether it was open before (and so may have
 * been lost since).  NULL with "err" set.
 */
static struct pg *
pool_get(struct pg_pool *p, int64_t deadline_ms, int *reused,
    struct err *err)
{
	struct pg	*c;
	struct timespec	 ts;

	if (deadline_ms == 0)
		deadline_ms = clock_mono_ms() + DB_BUSY_TIMEOUT_MS;
	ts.tv_sec = (time_t)(deadline_ms / 1000);
	ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
	pthread_mutex_lock(&p->lock);
	while (p->idle == NULL && p->open >= p->max)
		if (pthread_cond_timedwait(&p->freed, &p->lock, &ts) ==
		    ETIMEDOUT) {
			err_set(err, "%s: all %d connections of this process "
			    "stayed busy (database_connections)", p->name,
			    p->max);
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
	if ((c = p->idle) != NULL) {
		p->idle = c->next;
		pthread_mutex_unlock(&p->lock);
		*reused = 1;
		return c;
	}
	p->open++;
	pthread_mutex_unlock(&p->lock);
	*reused = 0;
	if ((c = conn_new(p, err)) == NULL) {
		pthread_mutex_lock(&p->lock);
		p->open--;
		pthread_cond_signal(&p->freed);
		pthread_mutex_unlock(&p->lock);
	}
	return c;
}

/* Give "c" back; one whose connection was lost is closed. */
static void
pool_put(struct pg_pool *p, struct pg *c)
{
	int	 lost;

	pg_rollback(c);
	lost = PQstatus(c->conn) != CONNECTION_OK;
	pthread_mutex_lock(&p->lock);
	if (lost) {
		p->open--;
	} else {
		c->next = p->idle;
		p->idle = c;
	}
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
	if (lost)
		pg_close(c);
}

int
pg_pool_job(struct pg_pool *p, int64_t deadline_ms,
    int (*job)(struct pg *, void *), void *arg, struct err *err)
{
	struct pg	*c;
	int		 reused, rc, again;

	do {
		if ((c = pool_get(p, deadline_ms, &reused, err)) == NULL)
			return -1;
		rc = job(c, arg);
		/* A connection kept from before the server restarted fails
		 * at its first use: once more, on a new one. */
		again = rc == -1 && reused && PQstatus(c->conn) !=
		    CONNECTION_OK;
		if (rc == -1 && !again)
			err_set(err, "%s", c->err.msg);
		pool_put(p, c);
	} while (again);
	return rc;
}

static int
pool_open_job(struct pg *c, void *arg)
{
	(void)c;
	(void)arg;
	return 0;
}

static int
pool_open(void *arg, int64_t deadline_ms, struct err *err)
{
	return pg_pool_job(arg, deadline_ms, pool_open_job, NULL, err);
}

static const char *
column(const PGresult *res, int row, int i)
{
	return PQgetisnull(res, row, i) ? "" : PQgetvalue(res, row, i);
}

static long long
column_num(const PGresult *res, int row, int i, long long null)
{
	return PQgetisnull(res, row, i) ? null :
	    strtoll(PQgetvalue(res, row, i), NULL, 10);
}

static void
row_to_key(const PGresult *res, int row, struct key *k)
{
	memset(k, 0, sizeof(*k));
	str_copy(k->id, sizeof(k->id), column(res, row, 0));
	str_copy(k->name, sizeof(k->name), column(res, row, 1));
	str_copy(k->prefix, sizeof(k->prefix), column(res, row, 2));
	k->created = column_num(res, row, 3, 0);
	k->expires = column_num(res, row, 4, 0);
	k->revoked = column_num(res, row, 5, 0);
	k->budget_tokens = (long)column_num(res, row, 6, -1);
	str_copy(k->period, sizeof(k->period), column(res, row, 7));
	k->rpm = (long)column_num(res, row, 8, -1);
	str_copy(k->models, sizeof(k->models), column(res, row, 9));
	k->max_overshoot = (long)column_num(res, row, 10, 0);
}

struct key_job {
	const char	*text;		/* a hash, a name or id */
	const char	*sql;		/* NULL: the prepared lookup */
	struct key	*k;
	void		(*each)(void *, const struct key *);
	void		*arg;
	int		 found;
};

static int
key_job(struct pg *c, void *arg)
{
	struct key_job	*j = arg;
	const char	*v[1] = { j->text };
	PGresult	*res;
	int		 i;

	if (j->sql == NULL)
		res = pg_run(c, stmts, PGS_KEY_BY_HASH, v, &c->err);
	else if ((res = PQexecParams(c->conn, j->sql, j->text != NULL ? 1 : 0,
	    NULL, v, NULL, NULL, 0)) == NULL ||
	    PQresultStatus(res) != PGRES_TUPLES_OK) {
		PQclear(res);
		pg_error(c, "read keys", &c->err);
		res = NULL;
	}
	if (res == NULL)
		return -1;
	for (i = 0; i < PQntuples(res); i++) {
		row_to_key(res, i, j->k);
		if (j->each != NULL)
			j->each(j->arg, j->k);
	}
	j->found = PQntuples(res) > 0;
	PQclear(res);
	return 0;
}

static int
pg_key_lookup(void *arg, const char *token, size_t len, int64_t deadline_ms,
    struct key *k, struct err *err)
{
	char		 hash[KEY_HASH_LEN + 1];
	struct key_job	 j = { hash, NULL, k, NULL, NULL, 0 };

	if (!keys_hash(token, len, hash))
		return 0;
	if (pg_pool_job(arg, deadline_ms, key_job, &j, err) == -1)
		return -1;
	return j.found;
}

static int
pg_key_get(void *arg, const char *name_or_id, struct key *k,
    struct err *err)
{
	struct key_job	 j = { name_or_id, "SELECT " KEY_COLUMNS " FROM keys"
	    " WHERE name = $1 OR id = $1", k, NULL, NULL, 0 };

	if (pg_pool_job(arg, 0, key_job, &j, err) == -1)
		return -1;
	return j.found;
}

static int
pg_key_each(void *arg, void (*fn)(void *, const struct key *), void *fnarg,
    struct err *err)
{
	struct key	 k;
	struct key_job	 j = { NULL, "SELECT " KEY_COLUMNS " FROM keys"
	    " ORDER BY name", &k, fn, fnarg, 0 };

	return pg_pool_job(arg, 0, key_job, &j, err);
}

struct create_job {
	const struct key	*k;
	const char		*hash;
};

static const char *
text_or_null(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}

static int
create_job(struct pg *c, void *arg)
{
	struct create_job	*j = arg;
	const struct key	*k = j->k;
	const char		*v[10], *state;
	char			 n[4][24];
	PGresult		*res;
	int			 ok;

	v[0] = k->id;
	v[1] = k->name;
	v[2] = j->hash;
	v[3] = k->prefix;
	v[4] = pg_num(n[0], k->created);
	v[5] = k->expires != 0 ? pg_num(n[1], k->expires) : NULL;
	v[6] = k->budget_tokens >= 0 ? pg_num(n[2], k->budget_tokens) : NULL;
	v[7] = k->budget_tokens >= 0 ? k->period : NULL;
	v[8] = k->rpm >= 0 ? pg_num(n[3], k->rpm) : NULL;
	v[9] = text_or_null(k->models);
	res = PQexecParams(c->conn, "INSERT INTO keys (id, name, hash, prefix,"
	    " created, expires, budget_tokens, budget_period, rpm, models)"
	    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)", 10, NULL, v,
	    NULL, NULL, 0);
	ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) :
	    NULL;
	if (!ok && state != NULL && strcmp(state, "23505") == 0)
		err_set(&c->err, "a key named \"%s\" exists already", k->name);
	else if (!ok)
		pg_error(c, "store the key", &c->err);
	PQclear(res);
	return ok ? 0 : -1;
}

static int
pg_key_create(void *arg, const struct key *spec, char *secret,
    struct key *out, struct err *err)
{
	char			 hash[KEY_HASH_LEN + 1];
	struct create_job	 j = { out, hash };

	if (keys_mint(spec, secret, out, hash, err) == -1)
		return -1;
	if (pg_pool_job(arg, 0, create_job, &j, err) == -1) {
		explicit_bzero(secret, KEY_SECRET_LEN + 1);
		return -1;
	}
	return 0;
}

struct exec_job {
	const char	*sql;
	const char	*v[2];
	int		 nv;
	const char	*what;
};

static int
exec_job(struct pg *c, void *arg)
{
	struct exec_job	*j = arg;
	PGresult	*res;
	int		 ok;

	res = PQexecParams(c->conn, j->sql, j->nv, NULL, j->v, NULL, NULL, 0);
	ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!ok)
		pg_error(c, j->what, &c->err);
	return ok ? 0 : -1;
}

static int
pg_key_revoke(void *arg, const char *id, struct err *err)
{
	char		 now[24];
	struct exec_job	 j = { "UPDATE keys SET revoked = $2 WHERE id = $1"
	    " AND revoked IS NULL", { id, pg_num(now, clock_wall_ms()) }, 2,
	    "revoke the key" };

	return pg_pool_job(arg, 0, exec_job, &j, err);
}

static int
health_job(struct pg *c, void *arg)
{
	const char	*v[1];
	char		 now[24];
	PGresult	*res;

	(void)arg;
	v[0] = pg_num(now, (long long)time(NULL));
	if ((res = pg_run(c, stmts, PGS_HEALTH, v, &c->err)) == NULL)
		return -1;
	PQclear(res);
	return 0;
}

static int
pg_probe(void *arg, int64_t deadline_ms, struct err *err)
{
	return pg_pool_job(arg, deadline_ms, health_job, NULL, err);
}

static void *
pg_new(const char *uri, const char *program, int connections)
{
	return pool_new(uri, program, connections);
}

const struct store_ops store_pg_ops = {
	pg_new, pool_free, pool_open, pg_key_lookup, pg_reserve, pg_extend,
	pg_release, pg_ledger_write, pg_probe, pg_key_create, pg_key_get,
	pg_key_revoke, pg_key_each, pg_budget_spent
};
