/*
 * What the parsers of request bodies share (request.c, request_ui.c):
 * FastAPI's list of problems, each located under "body", and the checks
 * of the fields several bodies have.  Private to them.
 */
#ifndef REQUEST_IMPL_H
#define REQUEST_IMPL_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct buf;
struct chat_req;
struct conf;

/*
 * The problems found in a body: the items of a JSON array in "b".  An
 * append that fails (out of memory) is remembered in "failed", and the
 * list is then replaced by one saying so (req_problems_end()).
 */
struct problems {
	struct buf	*b;
	int		 failed;
};

/*
 * Append one problem.  "loc": the JSON items after "body" in its
 * location ("\"messages\",2,\"parts\""), NULL for the body itself;
 * "input" is JSON text or NULL for null; "ctx" a JSON object's text or
 * NULL.
 */
void	 req_problem_at(struct problems *, const char *type, const char *loc,
	    const char *msg, const char *input, const char *ctx);
/* The location of top-level field "field", quoted as JSON, in "out";
 * NULL for NULL (the body itself). */
const char *req_loc_of(const char *field, char *out, size_t size);

/* As req_problem_at(), with the offending cJSON value as "input". */
void	 req_problem_item_at(struct problems *, const char *type,
	    const char *loc, const char *msg, const cJSON *item,
	    const char *ctx);
/* Close the list: 0 if it is empty, else -1 (with the list whole). */
int	 req_problems_end(struct problems *);

/*
 * The body as a JSON object: scanned (depth, UTF-8, NUL) before cJSON
 * reads it.  The object, or NULL with the problem appended.
 */
cJSON	*req_parse_object(const char *body, size_t len, struct problems *);

/* "model" and "max_tokens" (absent: the configured defaults) into "req". */
void	 req_check_model(const struct conf *, const cJSON *item,
	    struct chat_req *, struct problems *);
void	 req_check_max_tokens(const struct conf *, const cJSON *item,
	    struct chat_req *, struct problems *);

#endif /* REQUEST_IMPL_H */
