/*
 * The route handlers, each answering one request begun by the dispatcher
 * (req.h).  Each answers whatever happens: an error is a response too.
 */
#ifndef ROUTES_H
#define ROUTES_H

struct req;

void	 chat_handle(struct req *, int stream);	/* POST /chat[/stream] */
void	 messages_handle(struct req *);		/* POST /v1/messages */
void	 ui_handle(struct req *);		/* POST /chat/ui */
void	 openai_handle(struct req *);	/* POST /v1/chat/completions */
/* GET /v1/models ("id" NULL), or GET /v1/models/{id}. */
void	 models_handle(struct req *, const char *id);
void	 count_handle(struct req *);	/* POST /v1/messages/count_tokens */
void	 meta_openapi(struct req *);		/* GET /openapi.json */
void	 meta_docs(struct req *);		/* GET /docs */
void	 meta_healthz(struct req *);		/* GET /healthz */
void	 meta_metrics(struct req *);		/* GET /metrics */

#endif /* ROUTES_H */
