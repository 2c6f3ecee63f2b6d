/*
 * Inside the store (store.h): what each backend provides.  store.c holds
 * the SQLite one, over keys.c, budget.c and ledger.c; pg_store.c the
 * PostgreSQL one.
 */
#ifndef STORE_IMPL_H
#define STORE_IMPL_H

#include "store.h"

/* What each backend provides. */
struct store_ops {
	void	*(*new)(const char *database, const char *program,
		    int connections);
	void	 (*free)(void *);
	int	 (*open)(void *, int64_t deadline_ms, struct err *);
	int	 (*key_lookup)(void *, const char *token, size_t len,
		    int64_t deadline_ms, struct key *, struct err *);
	enum budget_verdict (*reserve)(void *, const struct key *,
		    const struct budget_claim *, struct reservation *,
		    struct budget_left *, long *retry_after, struct err *);
	enum budget_verdict (*extend)(void *, const struct key *,
		    struct reservation *, long want, long need,
		    int64_t deadline_ms, struct err *);
	int	 (*release)(void *, struct reservation *, struct err *);
	long	 (*ledger_write)(void *, const struct record *, size_t n,
		    int64_t deadline_ms, struct err *);
	int	 (*probe)(void *, int64_t deadline_ms, struct err *);
	int	 (*key_create)(void *, const struct key *spec, char *secret,
		    struct key *out, struct err *);
	int	 (*key_get)(void *, const char *name_or_id, struct key *,
		    struct err *);
	int	 (*key_revoke)(void *, const char *id, struct err *);
	int	 (*key_each)(void *, void (*fn)(void *, const struct key *),
		    void *arg, struct err *);
	int	 (*budget_spent)(void *, const struct key *, long *settled,
		    long *held, struct err *);
};

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops;

#endif /* STORE_IMPL_H */
