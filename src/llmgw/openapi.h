/*
 * The OpenAPI 3.1 description of llmgw's routes, and the /docs page made
 * from it.  The document is compiled in (openapi.json) and completed at
 * start with what the configuration decides: the default model, the
 * allowed models, the max_tokens ceiling.
 */
#ifndef OPENAPI_H
#define OPENAPI_H

#include <stddef.h>

struct conf;
struct err;

/*
 * Build both documents.  On success "*json" and "*html" are allocated
 * (the caller frees them) and 0 is returned; on failure -1 with "err".
 */
int	 openapi_build(const struct conf *, char **json, size_t *json_len,
	    char **html, size_t *html_len, struct err *);

#endif /* OPENAPI_H */
