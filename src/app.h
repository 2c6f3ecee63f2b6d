/*
 * What all threads of one llmgw process share: the configuration, the
 * usage store and the documents served from memory.  Created once by
 * main() before the workers start and freed after they have stopped.
 */
#ifndef APP_H
#define APP_H

#include <stddef.h>

struct conf;
struct err;
struct spool;
struct upstream_loop;
struct usage_db;

struct app {
	struct conf		*conf;
	struct usage_db		*usage;
	struct upstream_loop	*loop;	/* every upstream transfer runs here */
	struct spool		*spool;	/* log records for llmgw-spoold */
	char		*openapi;	/* OpenAPI 3.1 document, JSON */
	size_t		 openapi_len;
	char		*docs;		/* the same, as an HTML page */
	size_t		 docs_len;
};

/* Takes "conf".  Returns NULL with "err" set. */
struct app	*app_new(struct conf *, struct err *);
void		 app_free(struct app *);	/* NULL is fine */

#endif /* APP_H */
