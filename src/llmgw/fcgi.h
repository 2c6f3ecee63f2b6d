/*
 * The FastCGI protocol for the responder role, both ways, read strictly.
 *
 * Everything a peer on the socket sends is parsed here, record by record
 * as the bytes come, and nothing it claims is believed: a record's
 * content goes straight to where it belongs (the parameters, the body, a
 * management request) within a cap, the parameters are decoded only once
 * they are whole, and every name and value length must fit in what came.
 * A connection in the middle of a request holds the state below and
 * nothing else: no thread waits on it, and its memory is what it sent,
 * within the caps.
 *
 * libfcgi's own reader allocates the parameter lengths a peer claims (and
 * asserts when that fails: one malformed record aborted llmgw) and
 * formats its GET_VALUES answer into a fixed buffer however many names
 * are asked.  llmgw uses libfcgi's protocol definitions (fastcgi.h) and
 * reads and writes the records itself.
 *
 * One request at a time per connection (FCGI_MPXS_CONNS is 0): a
 * BEGIN_REQUEST for another id while one is in progress is answered with
 * END_REQUEST (FCGI_CANT_MPX_CONN).  ABORT_REQUEST ends the request as a
 * client hang-up does.  GET_VALUES is answered; other management records
 * get UNKNOWN_TYPE.
 */
#ifndef FCGI_H
#define FCGI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/buf.h"

/* The most parameter bytes a request may carry; past it, 431. */
#define FCGI_PARAMS_MAX		(64 * 1024)
/* Answers to management records not yet written; past it, the peer is
 * not reading them and is cut off. */
#define FCGI_CTL_MAX		(64 * 1024)
/*
 * What one read from the socket takes, on the worker's stack: every page
 * of it is touched (the compiler probes large frames page by page), and a
 * page per worker is a page per open stream.  A request's parameters and
 * a chat body fit in one such read; a larger body takes a few more.
 */
#define FCGI_READ_CHUNK		(4 * 1024)

enum fcgi_state {
	FCGI_ST_IDLE = 0,		/* between requests */
	FCGI_ST_PARAMS,		/* a request begun, its parameters coming */
	FCGI_ST_STDIN,		/* its parameters whole, its body coming */
	FCGI_ST_READY,		/* the request is whole: being served */
	FCGI_ST_ENDED		/* answered; the connection is to be closed */
};

enum fcgi_result {
	FCGI_MORE = 0,		/* no whole request yet: wait for bytes */
	FCGI_REQUEST,		/* a request is whole: serve it */
	FCGI_CLOSED,		/* the peer closed the connection */
	FCGI_BAD		/* a protocol error: close, "why" says what */
};

/* How the body ended, for a request being served. */
enum fcgi_body {
	FCGI_BODY_WHOLE = 0,	/* all of it came */
	FCGI_BODY_OVER,		/* more than body_max: cut, not all read */
	FCGI_BODY_LATE		/* it did not come within the deadline */
};

struct fcgi {
	int		 fd;
	size_t		 body_max;	/* a body past this is cut */
	enum fcgi_state	 state;

	/* The record being read. */
	unsigned char	 hdr[8];
	size_t		 hdr_len;	/* bytes of "hdr" so far */
	int		 rec_type;
	unsigned	 rec_id;
	size_t		 content_left;	/* of the record's content */
	size_t		 padding_left;
	struct buf	*rec_to;	/* where its content goes; NULL: away */

	/* The request. */
	unsigned	 id;		/* 0: none */
	int		 keep_conn;	/* FCGI_KEEP_CONN */
	struct buf	 params;	/* PARAMS content, then decoded pairs */
	int		 params_over;	/* past FCGI_PARAMS_MAX */
	char		**env;		/* name, value, ..., NULL */
	size_t		 nenv;		/* pairs */
	size_t		 env_cap;
	struct buf	 body;		/* STDIN content */
	size_t		 body_read;	/* of it, taken by fcgi_body_read() */
	enum fcgi_body	 body_state;
	int		 stdin_eof;	/* the empty STDIN record came */
	int		 aborted;	/* ABORT_REQUEST, or the peer left */

	struct buf	 mgmt;		/* a GET_VALUES or BEGIN_REQUEST
					 * record's content */
	struct buf	 ctl;		/* records to send: answers to
					 * management records, refusals */
	struct buf	 out;		/* STDOUT content not yet sent */
	int		 sndbuf;	/* the socket's send buffer, for
					 * fcgi_room(); 0: not asked yet */
	int		 held_known;	/* "held_most" counts every write
					 * since SIOCOUTQ was last asked */
	size_t		 held_most;	/* what the socket holds, at most */
	char		 why[128];	/* after FCGI_BAD */
};

/* A connection on "fd" (borrowed); bodies past "body_max" are cut. */
void	 fcgi_init(struct fcgi *, int fd, size_t body_max);
void	 fcgi_free(struct fcgi *);
/* Between requests on a kept connection: memory kept up to BUF_KEEP. */
void	 fcgi_reset(struct fcgi *);

/*
 * Parse "n" bytes the peer sent.  Returns FCGI_REQUEST when they complete
 * a request (and on every later call while it is served), FCGI_BAD with
 * "why" set, or FCGI_MORE.  Answers it owes the peer are queued in "ctl".
 */
enum fcgi_result fcgi_parse(struct fcgi *, const char *p, size_t n);

/*
 * Read what the socket has, without waiting, and parse it.  FCGI_CLOSED
 * when the peer closed it (and, while a request is served, sets
 * "aborted"); on a read error FCGI_BAD.  Queued answers are written.
 */
enum fcgi_result fcgi_read(struct fcgi *);

/*
 * The request's deadline passed: a body still coming is cut short
 * (FCGI_REQUEST, body_state FCGI_BODY_LATE); a request whose parameters
 * are not whole is FCGI_BAD.
 */
enum fcgi_result fcgi_expire(struct fcgi *);

/* A parameter of the request being served, or NULL. */
const char	*fcgi_param(const struct fcgi *, const char *name);
/* How many it has (FCGI_PARAMS_MAX past the cap: more than any limit). */
size_t		 fcgi_nparams(const struct fcgi *);

/*
 * Up to "n" bytes of the body: the count, 0 at its end, -1 with errno
 * ETIMEDOUT after what came when it came late.
 */
ssize_t	 fcgi_body_read(struct fcgi *, char *, size_t n);

/*
 * Response bytes, queued (fcgi_out) and sent as STDOUT records
 * (fcgi_flush), or sent with the end of the request: the last STDOUT
 * records, an empty one, and END_REQUEST, in one write (fcgi_end).
 * Each returns 0, or -1 if the peer is gone.
 */
int	 fcgi_out(struct fcgi *, const char *, size_t);
int	 fcgi_flush(struct fcgi *);
int	 fcgi_end(struct fcgi *, int app_status);
/*
 * 1 if "n" bytes of response, queued and flushed now, would go without
 * waiting for the peer to read (nothing else queued, room in the socket);
 * asks the kernel only when the writes since it last asked leave it
 * unsure (fcgi_out.c).
 */
int	 fcgi_room(struct fcgi *, size_t n);

/* 1 if the connection can take another request after this one. */
int	 fcgi_reusable(const struct fcgi *);

#endif /* FCGI_H */
