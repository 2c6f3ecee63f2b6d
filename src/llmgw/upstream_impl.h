/*
 * What the two halves of upstream.h share: the loop thread's
 * (upstream_loop.c) and the workers' (upstream.c).  Private to them.
 */
#ifndef UPSTREAM_IMPL_H
#define UPSTREAM_IMPL_H

#include <pthread.h>
#include <semaphore.h>
#include <stddef.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "upstream.h"

struct conf;

/* A worker's inbox: the loop pauses a transfer rather than grow it more. */
#define INBOX_MAX	(256 * 1024)
/*
 * libcurl's receive buffer per transfer.  SSE events are small; a large
 * buffer only costs memory per open stream.
 */
#define UPSTREAM_BUFFER	4096L
/*
 * Idle connections to the API kept for the next transfers.  libcurl's own
 * limit, four per transfer running at the moment one ends, closed and
 * reopened connections all the time under a steady load (3% of /chat
 * requests opened one: a TLS handshake each against the real API).
 */
#define IDLE_CONNECTIONS	256L
/* How often the loop looks for first-byte and idle timeouts. */
#define SCAN_MS		250
#define TICK_MS		1000

struct upstream_loop {
	CURLM		*multi;
	int		 epfd;
	int		 wakefd;		/* eventfd: workers wake the loop */
	pthread_t	 thread;
	long long	 timer_at;		/* libcurl's timer, as a
						 * clock_mono_ms() time; -1: none */
	struct call	*active;		/* in the multi handle */

	pthread_mutex_t	 lock;			/* guards what follows */
	struct call	*adds;			/* to start */
	struct call	*kicks;			/* to abort or resume */
	int		 wake_due;		/* the wakefd is written and the
						 * loop has not taken adds and
						 * kicks since */
	int		 stopping;
	int		 aborting;		/* end everything */
};

struct upstream {
	struct upstream_loop	*loop;
	CURL			*curl;
	char			 errbuf[CURL_ERROR_SIZE];
	/* The usual request headers, [0] for a whole body and [1] for a
	 * stream, built once for the configuration "headers_serial". */
	struct curl_slist	*headers[2];
	unsigned long		 headers_serial;
	/* A call's inbox and the buffer its worker takes it into, kept
	 * between calls while they are small. */
	struct buf		 inbox;
	struct buf		 take;
};

/*
 * One transfer, on the stack of the worker that waits for it.  The loop
 * thread owns the fields marked (loop); the worker reads res only once
 * "done" is set.  The loop never touches a call after setting "done",
 * but to wake its worker, which takes that wake-up before it leaves.
 */
struct call {
	struct upstream_loop		*loop;
	struct upstream			*up;
	const struct conf		*conf;
	struct upstream_result		*res;
	struct call			*next;		/* adds or active (loop) */
	struct call			*prev;		/* active (loop) */
	struct call			*knext;		/* kicks (loop lock) */
	int				 kicked;	/* (loop lock) */
	int				 finished;	/* (loop lock) no kicks now */
	int				 want_abort;	/* (loop lock) */
	int				 want_resume;	/* (loop lock) */
	long long			 t_start;	/* (loop) ms */
	long long			 t_last;	/* (loop) */
	int				 got_status;	/* (loop) */
	const char			*timed_out;	/* (loop) */
	int				 shut;		/* (loop) ended by a shutdown */

	int				 whole;		/* not a stream: the worker
							 * is woken for the end */
	const struct upstream_sink	*sink;		/* for the loop's relay */

	pthread_mutex_t			 lock;		/* guards what follows */
	sem_t				 wake;		/* posted for a sleeper */
	int				 sleeping;	/* worker waits on wake */
	struct buf			 inbox;		/* 2xx body for the worker */
	int				 paused;	/* inbox full: loop paused */
	int				 stopped;	/* worker asked to stop */
	int				 relaying;	/* the loop runs the sink */
	int				 want_sink;	/* ... and the worker waits
							 * for it */
	int				 done;
	CURLcode			 rc;
};

/*
 * With the call's lock held: whether its worker sleeps and is to be woken,
 * with upstream_call_wake() once the lock is released.  Woken under the
 * lock, it would only wait again for the lock (a futex and a context
 * switch more).
 */
int	 upstream_take_sleeper_locked(struct call *);
void	 upstream_call_wake(struct call *, int sleeping);

/*
 * With the loop's lock held, a call just added or kicked: whether the loop
 * is to be woken, with upstream_loop_wake() once the lock is released.  A
 * wake written and not yet answered covers every call added before the
 * loop takes them: under load most need no write of their own.
 */
int	 upstream_loop_wake_due_locked(struct upstream_loop *);

/* Wake the loop thread: a call was added or kicked, or it is to stop. */
void	 upstream_loop_wake(struct upstream_loop *);

/* Forget a result's response: for a new attempt, or a new head. */
void	 upstream_result_clear(struct upstream_result *);

/* libcurl's callbacks for a call, run in the loop thread. */
size_t	 upstream_on_header(char *, size_t, size_t, void *);
size_t	 upstream_on_write(char *, size_t, size_t, void *);

#endif /* UPSTREAM_IMPL_H */
