/*
 * What all threads of one llmgw process share.
 *
 * The configuration and what is built from it (the usage store, the spool,
 * the OpenAPI documents) form a generation.  SIGHUP builds a new one from
 * the file; requests that are running keep the generation they started
 * with, which is freed when the last of them lets go.
 */
#ifndef APP_H
#define APP_H

#include <stdatomic.h>
#include <stddef.h>

struct conf;
struct err;
struct metrics;
struct server;
struct spool;
struct upstream_loop;
struct store;

struct gen {
	struct conf	*conf;
	struct store	*db;	/* usage, keys, budgets */
	struct usage	*usage;	/* usage rows, written in groups */
	struct spool	*spool;
	char		*openapi;	/* OpenAPI 3.1 document, JSON */
	size_t		 openapi_len;
	char		*docs;		/* the same, as an HTML page */
	size_t		 docs_len;
	atomic_int	 refs;
};

struct app {
	struct gen		*gen;		/* current; see app_hold() */
	struct upstream_loop	*loop;		/* every upstream transfer */
	struct metrics		*metrics;
	/* NULL until it runs, and in CGI; atomic: workers read it (for
	 * /metrics) while server_start() has yet to return it. */
	struct server		*_Atomic server;
	const char		*conf_path;	/* for reloads; borrowed */
	int			 conf_required;
	long			 threads;	/* --threads, or 0 */
	int			 single;	/* one worker (mod_fcgid) */
};

/*
 * Takes "conf" (loaded from "path"; "required" as for conf_load()), which
 * "threads" (--threads, or 0) and "single" (one worker: mod_fcgid)
 * override, now and on every reload.  Returns NULL with "err" set.
 */
struct app	*app_new(struct conf *, const char *path, int required,
		    long threads, int single, struct err *);
void		 app_free(struct app *);	/* NULL is fine */

/* The current generation, held until app_drop(). */
struct gen	*app_hold(struct app *);
void		 app_drop(struct gen *);

/*
 * Read the configuration file again and make it current.  Returns 0, or
 * -1 with "err" set ("file:line: message") and the old one still current.
 */
int		 app_reload(struct app *, struct err *);

#endif /* APP_H */
