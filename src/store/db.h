/*
 * The llmgw database: opening a connection the way every process must
 * (a rollback journal, nothing mapped, busy timeout, foreign keys) and
 * bringing the schema up to date.
 * The schema version lives in PRAGMA user_version; db.c holds the
 * migrations, applied in order, each in one BEGIN IMMEDIATE transaction,
 * so several processes starting at once do not trip over each other.
 */
#ifndef DB_H
#define DB_H

#include <stdint.h>

struct err;
struct sqlite3;

#define DB_BUSY_TIMEOUT_MS	5000
#define DB_JOURNAL		"PRAGMA journal_mode = TRUNCATE"

/* The schema version this build writes. */
int		 db_schema_version(void);

/*
 * Open "path", creating it if needed, and migrate it.  Returns the
 * connection (close with sqlite3_close), or NULL with "err" set.
 */
struct sqlite3	*db_open(const char *path, struct err *);
/*
 * As db_open(), its waits for other connections' locks left to "busy"
 * with "arg" (an sqlite3_busy_handler(), from its first read on; "arg"
 * must outlive the connection), which may end them at a job's deadline
 * with db_busy_sleep().
 */
struct sqlite3	*db_open_until(const char *path, int (*busy)(void *, int),
		    void *arg, struct err *);

/* Open an existing database without migrating, for inspection. */
struct sqlite3	*db_open_existing(const char *path, int readonly,
		    struct err *);

/*
 * Bring an open connection's schema up to date.  Returns 0, or -1 with
 * "err" set (the schema is then as it was).
 */
int		 db_migrate(struct sqlite3 *, const char *path, struct err *);

/*
 * Leave WAL mode (see db.c), waiting up to "wait_ms" for the other
 * connections to close.  0, or -1 with "err" set.
 */
int		 db_journal(struct sqlite3 *, long wait_ms, struct err *);

/*
 * SQLite's busy handler, until the monotonic ms at "deadline_ms": its
 * sleeps (1 ms, then longer, after "count" calls) without its fixed
 * timeout, which restarts at each statement.  1 to try again, 0 not.
 */
int		 db_busy_sleep(const int64_t *deadline_ms, int count);

/* Run SQL without results; returns 0 or -1 with "err" set. */
int		 db_exec(struct sqlite3 *, const char *sql, struct err *);

#endif /* DB_H */
