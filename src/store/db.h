/*
 * The llmgw database: opening a connection the way every process must
 * (WAL, busy timeout, foreign keys) and bringing the schema up to date.
 * The schema version lives in PRAGMA user_version; db.c holds the
 * migrations, applied in order, each in one BEGIN IMMEDIATE transaction,
 * so several processes starting at once do not trip over each other.
 */
#ifndef DB_H
#define DB_H

struct err;
struct sqlite3;

#define DB_BUSY_TIMEOUT_MS	5000

/* The schema version this build writes. */
int		 db_schema_version(void);

/*
 * Open "path", creating it if needed, and migrate it.  Returns the
 * connection (close with sqlite3_close), or NULL with "err" set.
 */
struct sqlite3	*db_open(const char *path, struct err *);

/* Open an existing database without migrating, for inspection. */
struct sqlite3	*db_open_existing(const char *path, int readonly,
		    struct err *);

/*
 * Bring an open connection's schema up to date.  Returns 0, or -1 with
 * "err" set (the schema is then as it was).
 */
int		 db_migrate(struct sqlite3 *, const char *path, struct err *);

/* Run SQL without results; returns 0 or -1 with "err" set. */
int		 db_exec(struct sqlite3 *, const char *sql, struct err *);

#endif /* DB_H */
