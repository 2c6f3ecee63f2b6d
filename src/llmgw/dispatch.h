/*
 * The dispatcher: takes each request a worker thread is handed, begins it
 * (struct req, req.h), sends it to its route, and ends it.  The server
 * (server.c) gives each worker thread a struct worker and calls
 * dispatch_serve(), ends the request with the web server, then calls
 * dispatch_after().
 */
#ifndef DISPATCH_H
#define DISPATCH_H

struct app;
struct conn;
struct err;
struct worker;

/* A worker thread's state: its request and reusable buffers. */
struct worker	*dispatch_worker_new(struct app *, struct err *);
void		 dispatch_worker_free(struct worker *);	/* NULL is fine */

/*
 * Serve one request on "conn".  When it returns, the response is written
 * (its end perhaps queued, for the caller's end of the request); the
 * caller ends the request and then calls dispatch_after(), which settles
 * the request's budget and queues its usage row without keeping the
 * client waiting.
 */
void		 dispatch_serve(struct worker *, struct conn *);
void		 dispatch_after(struct worker *);

#endif /* DISPATCH_H */
