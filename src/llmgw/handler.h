/*
 * Serving requests.  The accept loop (server.c) gives each worker thread
 * a struct worker, then hands it one request at a time.
 */
#ifndef HANDLER_H
#define HANDLER_H

struct app;
struct conn;
struct err;
struct worker;

/* Per-thread state: an upstream handle and reusable buffers. */
struct worker	*worker_new(struct app *, struct err *);
void		 worker_free(struct worker *);	/* NULL is fine */

/*
 * Serve one request on "conn".  When it returns, the response is written
 * and flushed; the caller ends the request (FCGX_Finish_r), and then calls
 * handler_after(), which records usage without keeping the client waiting.
 */
void		 handler_serve(struct worker *, struct conn *);
void		 handler_after(struct worker *);

#endif /* HANDLER_H */
