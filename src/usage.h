/*
 * Token usage in SQLite: one row per request that reached the upstream.
 */
#ifndef USAGE_H
#define USAGE_H

struct dbpool;
struct err;
struct record;

/*
 * Store one record ("rec" is borrowed).  Returns 0, or -1 with "err" set,
 * in which case nothing was stored.
 */
int	 usage_add(struct dbpool *, const struct record *rec, struct err *);

/* A real write to prove the database is usable: 0, or -1 with "err". */
int	 usage_check(struct dbpool *, struct err *);

#endif /* USAGE_H */
