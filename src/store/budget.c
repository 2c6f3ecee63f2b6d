#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/proc.h"
#include "core/str.h"
#include "budget.h"
#include "db.h"
#include "dbpool.h"
#include "keys.h"
#include "record_sql.h"

#define RECLAIM_EVERY_MS	10000

static const char prune_sql[] =
    "DELETE FROM rate_hits WHERE key_id = ?1 AND ts < ?2";
static const char count_sql[] =
    "SELECT count(*), min(ts) FROM rate_hits WHERE key_id = ?1";
static const char hit_sql[] =
    "INSERT INTO rate_hits (key_id, ts) VALUES (?1, ?2)";
static const char used_sql[] =
    "SELECT tokens FROM budget_use WHERE key_id = ?1 AND period = ?2";
static const char held_sql[] =
    "SELECT coalesce(sum(tokens), 0) FROM reservations"
    " WHERE key_id = ?1 AND period = ?2";
static const char reserve_sql[] =
    "INSERT INTO reservations (id, key_id, period, tokens, pid, start,"
    " expires, ts, route, model) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
    " ?9, ?10)";
static const char charge_hold_sql[] =
    "INSERT OR IGNORE INTO usage (id, request_id, ts, key_id, route, model,"
    " status, input_tokens, total_ms, partial, hold_charged, upstream_error)"
    " VALUES (?1, ?1, ?2, ?3, coalesce(?4, 'unknown'), ?5, 0, ?6, 0, 1, 1,"
    " 'llmgw died while serving it: its hold was charged')";
static const char extend_sql[] =
    "UPDATE reservations SET tokens = ?2 WHERE id = ?1";
static const char unreserve_sql[] = "DELETE FROM reservations WHERE id = ?1";
static const char key_period_sql[] =
    "SELECT coalesce(budget_period, 'day') FROM keys"
    " WHERE id = ?1 AND budget_tokens IS NOT NULL";
static const char charge_sql[] =
    "INSERT INTO budget_use (key_id, period, tokens) VALUES (?1, ?2, ?3)"
    " ON CONFLICT (key_id, period) DO UPDATE"
    " SET tokens = tokens + excluded.tokens";

static atomic_llong	 last_reclaim;

void
budget_period(const char *kind, int64_t now, char *out, size_t size,
    long *secs_left)
{
	struct tm	 tm, end;
	time_t		 t = (time_t)(now / 1000), e;

	gmtime_r(&t, &tm);
	end = tm;
	end.tm_hour = end.tm_min = end.tm_sec = 0;
	if (strcmp(kind, "month") == 0) {
		snprintf(out, size, "%04d-%02d", tm.tm_year + 1900,
		    tm.tm_mon + 1);
		end.tm_mday = 1;
		end.tm_mon++;
	} else {
		snprintf(out, size, "%04d-%02d-%02d", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday);
		end.tm_mday++;
	}
	e = timegm(&end);
	*secs_left = (long)(e - t) > 0 ? (long)(e - t) : 1;
}

/* Run one statement of the transaction; its first column, or -1. */
static int64_t
run(struct dbconn *c, enum db_slot slot, const char *sql, const char *key,
    const char *period, int64_t n, int64_t *second, struct err *err)
{
	sqlite3_stmt	*st;
	int64_t		 v = 0;
	int		 rc;

	if ((st = dbconn_stmt(c, slot, sql, err)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (period != NULL)
		sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
	else if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, n);
	if (sqlite3_bind_parameter_count(st) >= 3)
		sqlite3_bind_int64(st, 3, n);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		v = sqlite3_column_int64(st, 0);
		if (second != NULL)
			*second = sqlite3_column_int64(st, 1);
	} else if (rc != SQLITE_DONE) {
		err_set(err, "%s", sqlite3_errmsg(c->db));
		v = -1;
	}
	sqlite3_reset(st);
	return v;
}

/*
 * Charge the hold of a request whose process died: a usage row marked
 * hold_charged, with the hold as its input tokens (at least what it had
 * used: a hold grows before what it covers), and the budget charged, once.
 * Within the caller's transaction.
 */
static int
charge_hold(struct dbconn *c, sqlite3_stmt *held, struct err *err)
{
	sqlite3_stmt	*st;
	const char	*id = (const char *)sqlite3_column_text(held, 0);
	const char	*key = (const char *)sqlite3_column_text(held, 1);
	int64_t		 ts = sqlite3_column_int64(held, 3);
	long		 tokens = (long)sqlite3_column_int64(held, 2);

	if ((st = dbconn_stmt(c, DBS_CHARGE_HOLD, charge_hold_sql, err)) ==
	    NULL)
		return -1;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 2, ts);
	sqlite3_bind_text(st, 3, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_value(st, 4, sqlite3_column_value(held, 4));
	sqlite3_bind_value(st, 5, sqlite3_column_value(held, 5));
	sqlite3_bind_int64(st, 6, tokens);
	if (sqlite3_step(st) != SQLITE_DONE) {
		err_set(err, "%s", sqlite3_errmsg(c->db));
		return -1;
	}
	if (sqlite3_changes(c->db) > 0 &&
	    budget_charge(c, key, ts, tokens, err) == -1)
		return -1;
	return 0;
}

long
budget_reclaim(struct dbconn *c, struct err *err)
{
	sqlite3_stmt	*st = NULL, *del = NULL;
	long		 n = 0;
	int		 rc;

	if (dbconn_begin(c, err) == -1)
		return -1;
	if (sqlite3_prepare_v2(c->db, "SELECT id, key_id, tokens,"
	    " coalesce(ts, 0), route, model, pid, start FROM reservations",
	    -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(c->db, "DELETE FROM reservations WHERE id = ?1"
	    " OR expires < ?2", -1, &del, NULL) != SQLITE_OK) {
		err_set(err, "reclaim: %s", sqlite3_errmsg(c->db));
		goto fail;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		long long pid = sqlite3_column_int64(st, 6);
		long long start = sqlite3_column_int64(st, 7);

		if (proc_alive((long)pid, (unsigned long long)start))
			continue;
		if (charge_hold(c, st, err) == -1)
			goto fail;
		sqlite3_bind_text(del, 1, (const char *)sqlite3_column_text(st,
		    0), -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(del, 2, 0);
		if (sqlite3_step(del) != SQLITE_DONE) {
			err_set(err, "reclaim: %s", sqlite3_errmsg(c->db));
			goto fail;
		}
		n += sqlite3_changes(c->db);
		sqlite3_reset(del);
	}
	if (rc != SQLITE_DONE) {
		err_set(err, "reclaim: %s", sqlite3_errmsg(c->db));
		goto fail;
	}
	/* Past their time, their process alive but stuck: released; its
	 * row will settle what it used. */
	sqlite3_bind_null(del, 1);
	sqlite3_bind_int64(del, 2, clock_wall_ms());
	if (sqlite3_step(del) != SQLITE_DONE) {
		err_set(err, "reclaim: %s", sqlite3_errmsg(c->db));
		goto fail;
	}
	n += sqlite3_changes(c->db);
	sqlite3_finalize(st);
	sqlite3_finalize(del);
	if (dbconn_commit(c, err) == -1)
		goto rollback;
	atomic_store(&last_reclaim, clock_wall_ms());
	return n;
fail:
	sqlite3_finalize(st);
	sqlite3_finalize(del);
rollback:
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int
budget_decide(const struct key *k, const struct budget_claim *claim,
    const struct budget_seen *seen, int64_t now, struct budget_left *bl,
    long *retry_after, long *tokens)
{
	int64_t		 room = 0;

	bl->requests_limit = k->rpm;
	bl->tokens_limit = k->budget_tokens;
	*tokens = claim->tokens;
	if (k->budget_tokens >= 0) {
		room = k->budget_tokens - seen->used - seen->held;
		bl->tokens_left = (long)(room > 0 ? room : 0);
		bl->tokens_reset = seen->period_left;
	}
	if (k->rpm >= 0) {
		/* Until the oldest of the minute leaves it: this one, if it
		 * is the only one. */
		bl->requests_reset = seen->count > 0 ? (long)((seen->oldest +
		    60000 - now + 999) / 1000) : 60;
		if (bl->requests_reset < 1)
			bl->requests_reset = 1;
		if (seen->count >= k->rpm) {
			bl->requests_left = 0;
			*retry_after = bl->requests_reset;
			return 1;
		}
		bl->requests_left = (long)(k->rpm - seen->count - 1);
	}
	if (k->budget_tokens >= 0) {
		/* Short of the whole bound but with room for its least (a
		 * large max_tokens on a small budget): it holds all that is
		 * left, so that it runs alone, and its stream ends there. */
		if (*tokens > room) {
			if (claim->min_tokens <= 0 || room < claim->min_tokens) {
				*retry_after = seen->period_left;
				return 2;
			}
			*tokens = (long)room;
		}
		bl->tokens_left = (long)(room - *tokens);
	}
	return 0;
}

/* A claim on a key, as a job of dbpool_batch(). */
struct reserve_job {
	const struct key		*k;
	const struct budget_claim	*claim;
	struct reservation		*r;
	struct budget_left		*bl;
	long				*retry_after;
};

/*
 * One try, within the batch's transaction: 0 reserved, 1 rate, 2 spent,
 * -1 error (the batch rolls back what it did).
 */
static int
reserve_in(struct dbconn *c, struct reserve_job *j, struct err *err)
{
	const struct key *k = j->k;
	const struct budget_claim *claim = j->claim;
	struct reservation *r = j->r;
	struct budget_seen seen = { 0, 0, 0, 0, 0 };
	int64_t		 now = clock_wall_ms();
	sqlite3_stmt	*st;
	long		 tokens;
	int		 rc;

	if (k->budget_tokens >= 0) {
		budget_period(k->period, claim->ts_ms, r->period,
		    sizeof(r->period), &seen.period_left);
		if ((seen.used = run(c, DBS_BUDGET_USED, used_sql, k->id,
		    r->period, 0, NULL, err)) == -1 ||
		    (seen.held = run(c, DBS_BUDGET_RESERVED, held_sql, k->id,
		    r->period, 0, NULL, err)) == -1)
			return -1;
	}
	if (k->rpm >= 0 && (run(c, DBS_RPM_PRUNE, prune_sql, k->id, NULL,
	    now - 60000, NULL, err) == -1 ||
	    (seen.count = run(c, DBS_RPM_COUNT, count_sql, k->id, NULL, 0,
	    &seen.oldest, err)) == -1))
		return -1;
	if ((rc = budget_decide(k, claim, &seen, now, j->bl, j->retry_after,
	    &tokens)) != 0)
		return rc;
	if (k->rpm >= 0 && run(c, DBS_RPM_HIT, hit_sql, k->id, NULL, now,
	    NULL, err) == -1)
		return -1;
	if (k->budget_tokens >= 0) {
		str_copy(r->id, sizeof(r->id), claim->id);
		str_copy(r->key_id, sizeof(r->key_id), k->id);
		r->tokens = tokens;
		if ((st = dbconn_stmt(c, DBS_RESERVE, reserve_sql, err)) ==
		    NULL)
			return -1;
		sqlite3_bind_text(st, 1, r->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, r->key_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r->period, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, tokens);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)getpid());
		sqlite3_bind_int64(st, 6, (sqlite3_int64)proc_self_start());
		sqlite3_bind_int64(st, 7, now + claim->hold_ms);
		sqlite3_bind_int64(st, 8, claim->ts_ms);
		sqlite3_bind_text(st, 9, claim->route, -1, SQLITE_STATIC);
		record_sql_text(st, 10, claim->model);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			err_set(err, "%s", sqlite3_errmsg(c->db));
			return -1;
		}
	}
	return 0;
}

/* reserve_in() as a job, its errors naming the key. */
static int
try_reserve(struct dbconn *c, void *arg, struct err *err)
{
	struct reserve_job *j = arg;
	int		 rc;

	if ((rc = reserve_in(c, j, err)) == -1)
		err_prefix(err, "budget of key %s", j->k->id);
	return rc;
}

/* Reclaim dead holds now, in a transaction of its own: how many. */
static long
reclaim_now(struct dbpool *p, int64_t deadline_ms)
{
	struct dbconn	*c;
	struct err	 ignored;
	long		 n;

	if ((c = dbpool_get_writer(p, deadline_ms, &ignored)) == NULL)
		return -1;
	n = budget_reclaim(c, &ignored);
	dbpool_put(p, c, n == -1);
	return n;
}

int
budget_start(const struct key *k, struct reservation *r,
    struct budget_left *left)
{
	memset(r, 0, sizeof(*r));
	memset(left, 0, sizeof(*left));
	left->requests_limit = left->tokens_limit = -1;
	return k->budget_tokens < 0 && k->rpm < 0;
}

enum budget_verdict
budget_reserve(struct dbpool *p, const struct key *k,
    const struct budget_claim *claim, struct reservation *r,
    struct budget_left *left, long *retry_after, struct err *err)
{
	struct reserve_job job = { k, claim, r, left, retry_after };
	int		 rc;

	if (budget_start(k, r, left))
		return BUDGET_OK;
	if (clock_wall_ms() - atomic_load(&last_reclaim) > RECLAIM_EVERY_MS)
		(void)reclaim_now(p, claim->deadline_ms);
	/* Its hold shares a commit with the holds taken meanwhile. */
	rc = dbpool_batch(p, claim->deadline_ms, try_reserve, &job, err);
	/* Short of tokens: what dead processes hold may be the reason
	 * (charged, it may stay short). */
	if (rc == 2 && reclaim_now(p, claim->deadline_ms) > 0)
		rc = dbpool_batch(p, claim->deadline_ms, try_reserve, &job,
		    err);
	if (rc != 0)
		r->id[0] = '\0';	/* rolled back */
	return rc == 0 ? BUDGET_OK : rc == 1 ? BUDGET_RATE : rc == 2 ?
	    BUDGET_SPENT : BUDGET_ERROR;
}

enum budget_verdict
budget_extend(struct dbpool *p, const struct key *k, struct reservation *r,
    long want, long need, int64_t deadline_ms, struct err *err)
{
	struct dbconn	*c;
	int64_t		 used, held, room;
	long		 tokens;
	int		 rc = -1;

	if (r->id[0] == '\0' || need <= r->tokens)
		return BUDGET_OK;
	if ((c = dbpool_get_writer(p, deadline_ms, err)) == NULL)
		return BUDGET_ERROR;
	if (dbconn_begin(c, err) == -1)
		goto out;
	if ((used = run(c, DBS_BUDGET_USED, used_sql, k->id, r->period, 0,
	    NULL, err)) == -1 ||
	    (held = run(c, DBS_BUDGET_RESERVED, held_sql, k->id, r->period, 0,
	    NULL, err)) == -1)
		goto out;
	/* The room for this hold: the budget less what is settled and what
	 * the others hold. */
	room = k->budget_tokens - used - (held - r->tokens);
	if (room < need) {
		rc = 2;
		goto out;
	}
	tokens = want < room ? want : (long)room;
	if (run(c, DBS_EXTEND, extend_sql, r->id, NULL, tokens, NULL, err) ==
	    -1 || dbconn_commit(c, err) == -1)
		goto out;
	r->tokens = tokens;
	rc = 0;
out:
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	dbpool_put(p, c, rc == -1);
	if (rc == -1)
		err_prefix(err, "database %s: extend the hold of %s",
		    dbpool_path(p), r->id);
	return rc == 0 ? BUDGET_OK : rc == 2 ? BUDGET_SPENT : BUDGET_ERROR;
}

int
budget_unreserve(struct dbconn *c, const char *id, struct err *err)
{
	return run(c, DBS_UNRESERVE, unreserve_sql, id, NULL, 0, NULL,
	    err) == -1 ? -1 : 0;
}

int
budget_release(struct dbpool *p, struct reservation *r, struct err *err)
{
	struct dbconn	*c;
	int		 rc;

	if (r->id[0] == '\0')
		return 0;
	if ((c = dbpool_get_writer(p, 0, err)) == NULL)
		return -1;
	rc = budget_unreserve(c, r->id, err);
	dbpool_put(p, c, rc == -1);
	if (rc == -1)
		err_prefix(err, "database %s: release the budget held by %s",
		    dbpool_path(p), r->id);
	r->id[0] = '\0';
	return rc;
}

int
budget_charge(struct dbconn *c, const char *key_id, int64_t ts_ms,
    long tokens, struct err *err)
{
	sqlite3_stmt	*st;
	char		 kind[8] = "", period[12];
	long		 left;
	int		 rc;

	if ((st = dbconn_stmt(c, DBS_KEY_PERIOD, key_period_sql, err)) == NULL)
		return -1;
	sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		str_copy(kind, sizeof(kind),
		    (const char *)sqlite3_column_text(st, 0));
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		err_set(err, "%s", sqlite3_errmsg(c->db));
		return -1;
	}
	if (rc == SQLITE_DONE)
		return 0;		/* no such key, or no budget */
	budget_period(kind, ts_ms, period, sizeof(period), &left);
	return run(c, DBS_CHARGE, charge_sql, key_id, period, tokens, NULL,
	    err) == -1 ? -1 : 0;
}

int
budget_spent(struct sqlite3 *db, const struct key *k, long *settled,
    long *held, struct err *err)
{
	sqlite3_stmt	*st;
	char		 period[12];
	long		 left;
	int		 i;
	const char	*sql[2] = { used_sql, held_sql };
	long		*out[2] = { settled, held };

	*settled = *held = 0;
	if (k->budget_tokens < 0)
		return 0;
	budget_period(k->period, clock_wall_ms(), period, sizeof(period), &left);
	for (i = 0; i < 2; i++) {
		if (sqlite3_prepare_v2(db, sql[i], -1, &st, NULL) != SQLITE_OK) {
			err_set(err, "%s", sqlite3_errmsg(db));
			return -1;
		}
		sqlite3_bind_text(st, 1, k->id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, period, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			*out[i] = (long)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	return 0;
}
