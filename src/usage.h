/*
 * Token usage in SQLite: one row per request that reached the upstream.
 *
 * A struct usage_db is shared by all threads.  Behind it is a small pool
 * of connections, each with its statements prepared once; a thread takes
 * one for the length of a write, so no connection is ever used by two
 * threads at a time, and the pool is only as large as the number of
 * writes that happened at the same moment.  If the database cannot be
 * opened, every call tries again, so a database that comes back (disk
 * freed, permissions fixed) is used without a restart.
 */
#ifndef USAGE_H
#define USAGE_H

struct err;
struct record;
struct usage_db;


/* Never fails: the database is opened on first use. */
struct usage_db	*usage_new(const char *path);
void		 usage_free(struct usage_db *);	/* NULL is fine */

/*
 * Store one record ("rec" is borrowed).  Returns 0, or -1 with "err" set,
 * in which case nothing was stored.
 */
int	 usage_add(struct usage_db *, const struct record *rec,
	    struct err *err);

/* A real write to prove the database is usable: 0, or -1 with "err". */
int	 usage_check(struct usage_db *, struct err *err);

#endif /* USAGE_H */
