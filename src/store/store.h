/*
 * The state llmgw keeps: API keys, the budget holds and settlements of
 * each key, its requests of the last minute, and one usage row per
 * request that reached the upstream.  One interface, two backends:
 *
 *   - SQLite, for a database that is a path: one host, its processes
 *     sharing one file (keys.h, budget.h, ledger.h over dbpool.h);
 *   - PostgreSQL, for a postgresql:// URI: every host that names the same
 *     database shares one state (pg_store.c, pg_budget.c).
 *
 * Either way a budget is exact across every process that uses the store:
 * a hold is taken in a transaction that no other hold of the same key
 * runs beside, and a usage row replaces its request's hold by what it
 * used, in one transaction.  A store never fails to be made but for
 * memory: it connects on first use, and again after it lost the database,
 * so each call may fail (with "err" set) and the next one work.
 */
#ifndef STORE_H
#define STORE_H

#include <stddef.h>
#include <stdint.h>

#include "budget.h"

struct err;
struct key;
struct record;
struct store;

/*
 * The store named by "database" (a path or URI), for "program", with at
 * most "connections" open to PostgreSQL.  NULL with "err" set.
 */
struct store	*store_new(const char *database, const char *program,
		    int connections, struct err *);
void		 store_free(struct store *);	/* NULL is fine */

/* Open (and migrate) it now: 0, or -1 with "err" set. */
int		 store_open(struct store *, int64_t deadline_ms, struct err *);

/* The key whose secret is "token" (keys_lookup() in keys.h). */
int		 store_key_lookup(struct store *, const char *token,
		    size_t len, int64_t deadline_ms, struct key *,
		    struct err *);

/* As budget_reserve(), budget_extend() and budget_release(). */
enum budget_verdict store_reserve(struct store *, const struct key *,
		    const struct budget_claim *, struct reservation *,
		    struct budget_left *, long *retry_after, struct err *);
enum budget_verdict store_extend(struct store *, const struct key *,
		    struct reservation *, long want, long need,
		    int64_t deadline_ms, struct err *);
int		 store_release(struct store *, struct reservation *,
		    struct err *);

/* As ledger_write() and ledger_probe(). */
long		 store_ledger_write(struct store *, const struct record *,
		    size_t n, int64_t deadline_ms, struct err *);
int		 store_probe(struct store *, int64_t deadline_ms,
		    struct err *);

/* For llmgw-admin: as keys_create(), keys_get(), keys_revoke(),
 * keys_each() and budget_spent(). */
int		 store_key_create(struct store *, const struct key *spec,
		    char *secret, struct key *out, struct err *);
int		 store_key_get(struct store *, const char *name_or_id,
		    struct key *, struct err *);
int		 store_key_revoke(struct store *, const char *id,
		    struct err *);
int		 store_key_each(struct store *,
		    void (*fn)(void *, const struct key *), void *arg,
		    struct err *);
int		 store_budget_spent(struct store *, const struct key *,
		    long *settled, long *held, struct err *);

#endif /* STORE_H */
