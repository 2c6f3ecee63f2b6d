/*
 * Budgets, request rates and usage rows on PostgreSQL (store.h), exact
 * across every host that shares the database.
 *
 * A hold is taken in a transaction that first locks its key's row
 * (SELECT ... FOR UPDATE): holds of one key are taken one after the
 * other, whichever host asks, while other keys go on beside them.  The
 * transaction then reads, in one statement and so one snapshot, what the
 * period has settled, what the others hold, and the key's requests of the
 * last minute, and decides as SQLite's does (budget_decide()).  A usage
 * row replaces its request's hold by what it used in one transaction, so
 * whatever a hold-taker reads, settled plus held never falls below the
 * truth.  Holds carry a lease (their "expires"): one whose process died
 * on this host is charged as SQLite's are (budget.h), and any past its
 * lease, a dead host's among them, is released.
 *
 * The holds a process's threads ask for meanwhile share one transaction
 * and its commit (core/batch.h), their keys locked in the order of their
 * ids, the same for every host, so that two batches never wait for each
 * other.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/batch.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/proc.h"
#include "core/str.h"
#include "budget.h"
#include "keys.h"
#include "pg_impl.h"
#include "record.h"
#include "record_sql.h"

#define RECLAIM_EVERY_MS	10000

static const struct pg_stmt stmts[PGS_N] = {
	[PGS_KEY_LOCK] = { "llmgw_key_lock",
	    "SELECT 1 FROM keys WHERE id = $1 FOR UPDATE", 1 },
	[PGS_ROOM] = { "llmgw_room",
	    "SELECT (SELECT coalesce(sum(tokens), 0) FROM budget_use"
	    "   WHERE key_id = $1 AND period = $2),"
	    " (SELECT coalesce(sum(tokens), 0) FROM reservations"
	    "   WHERE key_id = $1 AND period = $2),"
	    " count(*), coalesce(min(ts), 0)"
	    " FROM rate_hits WHERE key_id = $1 AND ts >= $3::bigint", 3 },
	[PGS_RATE_HIT] = { "llmgw_rate_hit",
	    "WITH gone AS (DELETE FROM rate_hits WHERE key_id = $1"
	    "   AND ts < $3::bigint)"
	    " INSERT INTO rate_hits (key_id, ts) VALUES ($1, $2)", 3 },
	[PGS_RESERVE] = { "llmgw_reserve",
	    "INSERT INTO reservations (id, key_id, period, tokens, host, pid,"
	    " start, expires, ts, route, model) VALUES ($1, $2, $3, $4, $5,"
	    " $6, $7, $8, $9, $10, $11)", 11 },
	[PGS_EXTEND] = { "llmgw_extend",
	    "UPDATE reservations SET tokens = $2 WHERE id = $1", 2 },
	[PGS_UNRESERVE] = { "llmgw_unreserve",
	    "DELETE FROM reservations WHERE id = $1 RETURNING tokens", 1 },
	[PGS_USAGE_INSERT] = { "llmgw_usage_insert",
	    "INSERT INTO usage (" RECORD_SQL_COLUMNS ") VALUES ($1, $2, $3,"
	    " $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,"
	    " $18, $19, $20) ON CONFLICT (id) DO NOTHING", PG_RECORD_NPARAMS },
	[PGS_HOLD_ROW] = { "llmgw_hold_row",
	    "DELETE FROM usage WHERE id = $1 AND hold_charged"
	    " RETURNING input_tokens", 1 },
	/* The period as budget_period() names it. */
	[PGS_CHARGE] = { "llmgw_charge",
	    "INSERT INTO budget_use (key_id, period, tokens)"
	    " SELECT id, to_char(to_timestamp($2::bigint / 1000.0)"
	    "   AT TIME ZONE 'UTC', CASE budget_period WHEN 'month'"
	    "   THEN 'YYYY-MM' ELSE 'YYYY-MM-DD' END), $3::bigint"
	    " FROM keys WHERE id = $1 AND budget_tokens IS NOT NULL"
	    " ON CONFLICT (key_id, period) DO UPDATE"
	    " SET tokens = budget_use.tokens + excluded.tokens", 3 },
	[PGS_OVERSHOOT] = { "llmgw_overshoot",
	    "UPDATE keys SET max_overshoot = greatest(max_overshoot,"
	    " $2::bigint) WHERE id = $1", 2 },
};

static atomic_llong	 last_reclaim;

/* Run statement "n"; its first column of its first row in "*v" (if
 * any).  1 a row, 0 none, -1 with the connection's err set. */
static int
one(struct pg *c, enum pg_stmt_id n, const char *const *v, long long *out)
{
	PGresult	*res;
	int		 rows;

	if ((res = pg_run(c, stmts, n, v, &c->err)) == NULL)
		return -1;
	rows = PQresultStatus(res) == PGRES_TUPLES_OK ? PQntuples(res) :
	    atoi(PQcmdTuples(res));
	if (rows > 0 && out != NULL && PQresultStatus(res) ==
	    PGRES_TUPLES_OK && PQnfields(res) > 0)
		*out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rows > 0;
}

static int
begin(struct pg *c)
{
	return pg_exec(c, "BEGIN", "begin", &c->err);
}

static int
commit(struct pg *c)
{
	return pg_exec(c, "COMMIT", "commit", &c->err);
}

/* Charge the budget of key "key" with "tokens" used at "ts": 0, -1. */
static int
charge(struct pg *c, const char *key, int64_t ts, long tokens)
{
	const char	*v[3];
	char		 n[2][24];

	v[0] = key;
	v[1] = pg_num(n[0], ts);
	v[2] = pg_num(n[1], tokens);
	return one(c, PGS_CHARGE, v, NULL) == -1 ? -1 : 0;
}

struct reclaim_job {
	const char	*host;
	long		 n;
};

/*
 * Settle the holds of this host's dead processes (a usage row marked
 * hold_charged, as budget_reclaim() does for SQLite), and release every
 * hold past its lease: 0, or -1.
 */
static int
reclaim_job(struct pg *c, void *arg)
{
	struct reclaim_job	*j = arg;
	const char		*v[6];
	char			 now[24];
	PGresult		*res = NULL, *r;
	int			 i, ok, added;

	if (begin(c) == -1)
		return -1;
	v[0] = j->host;
	res = PQexecParams(c->conn, "SELECT id, key_id, tokens, ts, route,"
	    " model, pid, start FROM reservations WHERE host = $1", 1, NULL,
	    v, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK)
		goto fail_sql;
	for (i = 0; i < PQntuples(res); i++) {
		if (proc_alive(atol(PQgetvalue(res, i, 6)),
		    strtoull(PQgetvalue(res, i, 7), NULL, 10)))
			continue;
		v[0] = PQgetvalue(res, i, 0);
		v[1] = PQgetvalue(res, i, 3);
		v[2] = PQgetvalue(res, i, 1);
		v[3] = PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4);
		v[4] = PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5);
		v[5] = PQgetvalue(res, i, 2);
		r = PQexecParams(c->conn, "INSERT INTO usage (id, request_id,"
		    " ts, key_id, route, model, status, input_tokens,"
		    " total_ms, partial, hold_charged, upstream_error) VALUES"
		    " ($1, $1, $2, $3, coalesce($4, 'unknown'), $5, 0, $6, 0,"
		    " true, true, 'llmgw died while serving it: its hold was"
		    " charged') ON CONFLICT (id) DO NOTHING", 6, NULL, v, NULL,
		    NULL, 0);
		ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
		added = ok && atoi(PQcmdTuples(r)) > 0;
		PQclear(r);
		if (!ok)
			goto fail_sql;
		if ((added && charge(c, v[2], atoll(v[1]), atol(v[5])) ==
		    -1) || one(c, PGS_UNRESERVE, v, NULL) == -1)
			goto fail;
		j->n++;
	}
	PQclear(res);
	v[0] = pg_num(now, clock_wall_ms());
	res = PQexecParams(c->conn, "DELETE FROM reservations WHERE expires"
	    " < $1", 1, NULL, v, NULL, NULL, 0);
	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		goto fail_sql;
	j->n += atol(PQcmdTuples(res));
	PQclear(res);
	if (commit(c) == -1)
		return -1;
	atomic_store(&last_reclaim, clock_wall_ms());
	return 0;
fail_sql:
	pg_error(c, "reclaim holds", &c->err);
fail:
	PQclear(res);
	return -1;
}

struct reserve_job {
	struct pg_pool			*pool;
	const struct key		*k;
	const struct budget_claim	*claim;
	struct reservation		*r;
	struct budget_left		*left;
	long				*retry_after;
	long				 tokens;	/* what it holds */
};

/*
 * One claim, in the batch's transaction: 0 reserved (its tokens in
 * j->tokens), 1 rate, 2 spent (nothing written), -1 error.
 */
static int
reserve_in(struct pg *c, struct reserve_job *j)
{
	const struct key		*k = j->k;
	const struct budget_claim	*claim = j->claim;
	struct reservation		*r = j->r;
	struct budget_seen		 seen = { 0, 0, 0, 0, 0 };
	int64_t				 now = clock_wall_ms();
	const char			*v[11];
	char				 n[8][24];
	PGresult			*res;
	int				 rc;

	r->period[0] = '\0';
	if (k->budget_tokens >= 0)
		budget_period(k->period, claim->ts_ms, r->period,
		    sizeof(r->period), &seen.period_left);
	v[0] = k->id;
	v[1] = r->period;
	v[2] = pg_num(n[0], now - 60000);
	if (one(c, PGS_KEY_LOCK, v, NULL) == -1 ||
	    (res = pg_run(c, stmts, PGS_ROOM, v, &c->err)) == NULL)
		return -1;
	seen.used = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	seen.held = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	seen.count = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	seen.oldest = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	PQclear(res);
	if ((rc = budget_decide(k, claim, &seen, now, j->left, j->retry_after,
	    &j->tokens)) != 0)
		return rc;
	v[1] = pg_num(n[1], now);
	if (k->rpm >= 0 && one(c, PGS_RATE_HIT, v, NULL) == -1)
		return -1;
	if (k->budget_tokens >= 0) {
		v[0] = claim->id;
		v[1] = k->id;
		v[2] = r->period;
		v[3] = pg_num(n[2], j->tokens);
		v[4] = pg_pool_host(j->pool);
		v[5] = pg_num(n[3], (long long)getpid());
		v[6] = pg_num(n[4], (long long)proc_self_start());
		v[7] = pg_num(n[5], now + claim->hold_ms);
		v[8] = pg_num(n[6], claim->ts_ms);
		v[9] = claim->route;
		v[10] = claim->model[0] != '\0' ? claim->model : NULL;
		if (one(c, PGS_RESERVE, v, NULL) == -1)
			return -1;
	}
	return 0;
}

/* A batch of claims, as one job of the pool. */
struct holds {
	struct batch_job *const *jobs;
	size_t		 n;
};

static int
holds_job(struct pg *c, void *arg)
{
	struct holds	*h = arg;
	size_t		 i;

	if (begin(c) == -1)
		return -1;
	for (i = 0; i < h->n; i++)
		if ((h->jobs[i]->rc = reserve_in(c, h->jobs[i]->arg)) == -1)
			return -1;	/* rolled back by the pool */
	return commit(c);
}

void
pg_run_holds(void *pool, struct batch_job *const *jobs, size_t n,
    int64_t deadline_ms)
{
	struct batch_job *sorted[BATCH_MAX], *t;
	struct holds	 h = { sorted, n };
	struct reserve_job *j;
	struct err	 err;
	size_t		 i, k;

	/* Keys locked in one order by every host's batches, so that two
	 * never wait for each other; a key's claims keep their order. */
	for (i = 0; i < n; i++) {
		t = jobs[i];
		for (k = i; k > 0 && strcmp(((struct reserve_job *)
		    sorted[k - 1]->arg)->k->id, ((struct reserve_job *)
		    t->arg)->k->id) > 0; k--)
			sorted[k] = sorted[k - 1];
		sorted[k] = t;
	}
	if (pg_pool_job(pool, deadline_ms, holds_job, &h, &err) == -1) {
		batch_fail_all(jobs, n, &err);
		return;
	}
	for (i = 0; i < n; i++) {
		j = jobs[i]->arg;
		if (jobs[i]->rc == 0 && j->k->budget_tokens >= 0) {
			str_copy(j->r->id, sizeof(j->r->id), j->claim->id);
			str_copy(j->r->key_id, sizeof(j->r->key_id), j->k->id);
			j->r->tokens = j->tokens;
		}
	}
}

/* Reclaim dead holds and lapsed leases now: how many, or -1. */
static long
reclaim_now(struct pg_pool *pool, int64_t deadline_ms)
{
	struct reclaim_job	 rj = { pg_pool_host(pool), 0 };
	struct err		 ignored;

	return pg_pool_job(pool, deadline_ms, reclaim_job, &rj, &ignored) ==
	    -1 ? -1 : rj.n;
}

enum budget_verdict
pg_reserve(void *pool, const struct key *k, const struct budget_claim *claim,
    struct reservation *r, struct budget_left *left, long *retry_after,
    struct err *err)
{
	struct reserve_job	 j = { pool, k, claim, r, left, retry_after, 0 };
	int			 rc;

	if (budget_start(k, r, left))
		return BUDGET_OK;
	if (clock_wall_ms() - atomic_load(&last_reclaim) > RECLAIM_EVERY_MS)
		(void)reclaim_now(pool, claim->deadline_ms);
	/* Its hold shares a commit with the holds taken meanwhile. */
	rc = batch_submit(pg_pool_holds(pool), &j, claim->deadline_ms, err);
	/* Short of tokens: what dead processes and lapsed leases hold may
	 * be the reason. */
	if (rc == 2 && reclaim_now(pool, claim->deadline_ms) > 0)
		rc = batch_submit(pg_pool_holds(pool), &j, claim->deadline_ms,
		    err);
	if (rc != 0)
		r->id[0] = '\0';
	if (rc == -1)
		err_prefix(err, "budget of key %s", k->id);
	return rc == 0 ? BUDGET_OK : rc == 1 ? BUDGET_RATE : rc == 2 ?
	    BUDGET_SPENT : BUDGET_ERROR;
}

struct extend_job {
	const struct key	*k;
	struct reservation	*r;
	long			 want, need;
};

static int
extend_job(struct pg *c, void *arg)
{
	struct extend_job	*j = arg;
	const char		*v[3];
	char			 n[2][24];
	PGresult		*res;
	int64_t			 used, held, room;
	long			 tokens;

	v[0] = j->k->id;
	v[1] = j->r->period;
	v[2] = pg_num(n[0], clock_wall_ms());
	if (begin(c) == -1 || one(c, PGS_KEY_LOCK, v, NULL) == -1 ||
	    (res = pg_run(c, stmts, PGS_ROOM, v, &c->err)) == NULL)
		return -1;
	used = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	held = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	/* The room for this hold: the budget less what is settled and what
	 * the others hold. */
	room = j->k->budget_tokens - used - (held - j->r->tokens);
	if (room < j->need)
		return 2;
	tokens = j->want < room ? j->want : (long)room;
	v[0] = j->r->id;
	v[1] = pg_num(n[1], tokens);
	if (one(c, PGS_EXTEND, v, NULL) == -1 || commit(c) == -1)
		return -1;
	j->r->tokens = tokens;
	return 0;
}

enum budget_verdict
pg_extend(void *pool, const struct key *k, struct reservation *r, long want,
    long need, int64_t deadline_ms, struct err *err)
{
	struct extend_job	 j = { k, r, want, need };
	int			 rc;

	if (r->id[0] == '\0' || need <= r->tokens)
		return BUDGET_OK;
	if ((rc = pg_pool_job(pool, deadline_ms, extend_job, &j, err)) == -1)
		err_prefix(err, "extend the hold of %s", r->id);
	return rc == 0 ? BUDGET_OK : rc == 2 ? BUDGET_SPENT : BUDGET_ERROR;
}

static int
release_job(struct pg *c, void *arg)
{
	const char	*v[1] = { arg };

	return one(c, PGS_UNRESERVE, v, NULL) == -1 ? -1 : 0;
}

int
pg_release(void *pool, struct reservation *r, struct err *err)
{
	int	 rc;

	if (r->id[0] == '\0')
		return 0;
	if ((rc = pg_pool_job(pool, 0, release_job, r->id, err)) == -1)
		err_prefix(err, "release the budget held by %s", r->id);
	r->id[0] = '\0';
	return rc;
}

/* One row and what it settles, as ledger.c's add_row(): 1 new, 0, -1. */
static int
add_row(struct pg *c, const struct record *r)
{
	const char	*v[PG_RECORD_NPARAMS], *w[2];
	char		 n[PG_RECORD_NPARAMS][24], m[24];
	long long	 charged = 0, held = -1;
	long		 used;
	int		 added, rc;

	used = r->input_tokens + r->output_tokens +
	    r->cache_creation_input_tokens + r->cache_read_input_tokens;
	pg_record_params(r, v, n);
	w[0] = r->id;
	if ((added = one(c, PGS_USAGE_INSERT, v, NULL)) == -1)
		return -1;
	if (!added && r->key[0] != '\0') {
		/* A row there already that charged a dead process's hold is
		 * the estimate this one replaces. */
		if ((rc = one(c, PGS_HOLD_ROW, w, &charged)) == -1)
			return -1;
		if (rc == 1 && (added = one(c, PGS_USAGE_INSERT, v, NULL)) ==
		    -1)
			return -1;
	}
	if (r->key[0] == '\0')
		return added;
	if (one(c, PGS_UNRESERVE, w, &held) == -1 ||
	    (added && charge(c, r->key, r->ts_ms, used - (long)charged) == -1))
		return -1;
	if (held >= 0 && used > held) {
		w[0] = r->key;
		w[1] = pg_num(m, used - held);
		if (one(c, PGS_OVERSHOOT, w, NULL) == -1)
			return -1;
	}
	return added;
}

struct ledger_job {
	const struct record	*rows;
	size_t			 n;
	long			 added;
};

static int
ledger_job(struct pg *c, void *arg)
{
	struct ledger_job	*j = arg;
	size_t			 i;
	int			 rc;

	j->added = 0;
	if (begin(c) == -1)
		return -1;
	for (i = 0; i < j->n; i++) {
		if (!j->rows[i].upstream)
			continue;
		if ((rc = add_row(c, &j->rows[i])) == -1) {
			err_prefix(&c->err, "usage row %s", j->rows[i].id);
			return -1;
		}
		j->added += rc;
	}
	return commit(c);
}

long
pg_ledger_write(void *pool, const struct record *rows, size_t n,
    int64_t deadline_ms, struct err *err)
{
	struct ledger_job	 j = { rows, n, 0 };

	if (pg_pool_job(pool, deadline_ms, ledger_job, &j, err) == -1)
		return -1;
	return j.added;
}

struct spent_job {
	const struct key	*k;
	long			 settled, held;
};

static int
spent_job(struct pg *c, void *arg)
{
	struct spent_job	*j = arg;
	const char		*v[3];
	char			 period[12], n[24];
	long			 left;
	PGresult		*res;

	budget_period(j->k->period, clock_wall_ms(), period, sizeof(period),
	    &left);
	v[0] = j->k->id;
	v[1] = period;
	v[2] = pg_num(n, clock_wall_ms());
	if ((res = pg_run(c, stmts, PGS_ROOM, v, &c->err)) == NULL)
		return -1;
	j->settled = atol(PQgetvalue(res, 0, 0));
	j->held = atol(PQgetvalue(res, 0, 1));
	PQclear(res);
	return 0;
}

int
pg_budget_spent(void *pool, const struct key *k, long *settled, long *held,
    struct err *err)
{
	struct spent_job	 j = { k, 0, 0 };

	*settled = *held = 0;
	if (k->budget_tokens < 0)
		return 0;
	if (pg_pool_job(pool, 0, spent_job, &j, err) == -1)
		return -1;
	*settled = j.settled;
	*held = j.held;
	return 0;
}
