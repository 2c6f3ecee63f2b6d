/*
 * Reading and validating the body of POST /chat and /chat/stream:
 * {"message": str, "model": str = default, "max_tokens": int = default,
 * "include_usage": bool = false}.
 * Problems are reported the way FastAPI (Pydantic 2) reports them, so the
 * reference service's clients understand them: a JSON array of
 * {"type", "loc", "msg", "input"[, "ctx"]} objects, one per problem.
 */
#ifndef REQUEST_H
#define REQUEST_H

#include <stddef.h>

struct buf;
struct conf;

#define REQ_MAX_DEPTH		32	/* JSON nesting accepted in a body */
#define REQ_MODEL_MAX		128	/* longest model name */

struct chat_req {
	char	*message;	/* valid UTF-8, no NUL inside */
	size_t	 message_len;
	char	*model;
	long	 max_tokens;
	int	 include_usage;	/* a stream ends with an "event: usage" */
	int	 server_tools;	/* tools the API runs itself (web search,
				 * web fetch, code execution) */
	long	 server_tool_uses;	/* ... the uses they may make */
};

/*
 * Validate the "len" bytes at "body" (followed by a NUL, as in a struct
 * buf).  Returns 0 with "req" filled (free it with chat_req_free()), or
 * -1 with the JSON array of problems appended to "problems" and "req"
 * left empty.
 */
int	 chat_req_parse(const struct conf *, const char *body, size_t len,
	    struct chat_req *req, struct buf *problems);
void	 chat_req_free(struct chat_req *);

/*
 * The body of POST /v1/messages, checked only as far as llmgw must: a JSON
 * object with a model it allows and a max_tokens within the ceiling, and
 * "stream".  The upstream checks the rest.  Returns 0 with req->model,
 * req->max_tokens, the server tools and their uses (max_uses, or
 * server_tool_uses for one without) and "*stream" set (req->message
 * stays NULL), or -1 with the reason in "why".
 */
int	 messages_req_parse(const struct conf *, const char *body, size_t len,
	    struct chat_req *req, int *stream, char *why, size_t whylen);

/*
 * The body of POST /chat/ui, the Vercel AI SDK's chat request: checked
 * as chat_req_parse() checks /chat's (a located 422 list in "problems"
 * on -1), with the conversation's Messages API body, streamed, appended
 * to "up" on 0 (req->message_len: the bytes of all its text).
 */
int	 ui_req_parse(const struct conf *, const char *body, size_t len,
	    struct chat_req *req, struct buf *up, struct buf *problems);

/*
 * The body for the Messages API's count_tokens from a /v1/messages body
 * (already checked by messages_req_parse()): the fields it takes (model,
 * messages, system, tools, tool_choice, thinking), appended to "out".
 * 0, or -1 if out of memory.
 */
int	 messages_count_body(const char *body, size_t len, struct buf *out);

/*
 * 1 if a Content-Type value is one FastAPI reads as JSON: none at all,
 * application/json or application/<anything>+json, with parameters.
 */
int	 request_is_json_lax(const char *content_type);

/* 1 if a Content-Type value names JSON ("application/json; charset=.."). */
int	 request_is_json(const char *content_type);

/*
 * 1 if a client's header value is safe to pass on upstream: printable
 * ASCII (no CR or LF to smuggle a header), at most REQ_HEADER_MAX bytes.
 * NULL (absent) is fine.
 */
#define REQ_HEADER_MAX		256

/* The most CGI variables (headers and all) a request may carry; web
 * servers allow about 100 headers. */
#define REQ_PARAMS_MAX		1000
int	 request_header_ok(const char *v);

#endif /* REQUEST_H */
