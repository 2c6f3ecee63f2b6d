/*
 * Inside the PostgreSQL modules (pg.c: connections, schema, request log;
 * pg_store.c and pg_budget.c: keys, budgets, usage rows): one connection
 * and what they share to run statements on it.  Built with libpq only.
 */
#ifndef PG_IMPL_H
#define PG_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "core/err.h"
#include "budget.h"

struct key;
struct record;

struct pg {
	struct pg	*next;		/* in a pool's idle list */
	PGconn		*conn;
	char		*uri;		/* secret: may hold a password */
	char		 program[32];
	char		 name[320];
	uint64_t	 prepared;	/* bit n: statement n, on this
					 * connection */
	struct err	 err;		/* what its job ran into */
};

/* The statements prepared once per connection, by number. */
enum pg_stmt_id {
	PGS_KEY_BY_HASH,
	PGS_HEALTH,
	PGS_KEY_LOCK,
	PGS_ROOM,
	PGS_RATE_HIT,
	PGS_RESERVE,
	PGS_EXTEND,
	PGS_UNRESERVE,
	PGS_USAGE_INSERT,
	PGS_HOLD_ROW,
	PGS_CHARGE,
	PGS_OVERSHOOT,
	PGS_N			/* at most 63 */
};

struct pg_stmt {
	const char	*name;
	const char	*sql;
	int		 nparams;
};

/* Connect, or connect again: 0, or -1 with "err" set. */
int		 pg_connect(struct pg *, struct err *);

/* libpq's last error, one line, after the name and "what". */
void		 pg_error(struct pg *, const char *what, struct err *);

/* Run "sql" (one or more statements, no results): 0, or -1. */
int		 pg_exec(struct pg *, const char *sql, const char *what,
		    struct err *);

/* ROLLBACK what is open, if the connection is still there. */
void		 pg_rollback(struct pg *);

/*
 * Run statement "n" of "stmts" (prepared on first use) with the "nv"
 * values "v" (text; NULL for SQL's NULL).  The result (free with
 * PQclear), or NULL with "err" set.
 */
PGresult	*pg_run(struct pg *, const struct pg_stmt *stmts,
		    enum pg_stmt_id n, const char *const *v, struct err *);

/*
 * The values of a record's columns, as RECORD_SQL_COLUMNS lists them
 * (record_sql.h), into "v"; "num" holds the numbers' text.
 */
#define PG_RECORD_NPARAMS	20
void		 pg_record_params(const struct record *r,
		    const char *v[PG_RECORD_NPARAMS],
		    char num[PG_RECORD_NPARAMS][24]);

/* A number's text, into "buf" (at least 24 bytes). */
const char	*pg_num(char *buf, long long v);

/*
 * A pool of connections (pg_store.c).  pg_pool_job() runs "job" on one
 * of them by "deadline_ms" (monotonic; 0: the default), once more on a
 * new connection if the one it took was lost; "job" returns -1 with its
 * connection's "err" set, or what pg_pool_job() returns.
 */
struct pg_pool;
int		 pg_pool_job(struct pg_pool *, int64_t deadline_ms,
		    int (*job)(struct pg *, void *), void *arg, struct err *);
const char	*pg_pool_host(const struct pg_pool *);

/* The pool's batch of budget holds (core/batch.h), which
 * pg_run_holds() runs: every claim in one transaction. */
struct batch	*pg_pool_holds(struct pg_pool *);
struct batch_job;
void		 pg_run_holds(void *pool, struct batch_job *const *jobs,
		    size_t n, int64_t deadline_ms);

/* Budgets and usage rows (pg_budget.c), as store_ops asks. */
enum budget_verdict pg_reserve(void *pool, const struct key *,
		    const struct budget_claim *, struct reservation *,
		    struct budget_left *, long *retry_after, struct err *);
enum budget_verdict pg_extend(void *pool, const struct key *,
		    struct reservation *, long want, long need,
		    int64_t deadline_ms, struct err *);
int		 pg_release(void *pool, struct reservation *, struct err *);
long		 pg_ledger_write(void *pool, const struct record *, size_t n,
		    int64_t deadline_ms, struct err *);
int		 pg_budget_spent(void *pool, const struct key *,
		    long *settled, long *held, struct err *);

#endif /* PG_IMPL_H */
