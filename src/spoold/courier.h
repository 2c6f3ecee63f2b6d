/*
 * The records llmgw-spoold holds and their delivery: files claimed from
 * the spool's new/ (until spool_batch records are held; a file holds one
 * or more), each record offered to the usage sink (its usage row, should
 * llmgw not have written it) and every configured sink, a file removed
 * once all sinks have all of it.  A sink that fails is tried again with
 * exponential backoff; after spool_attempts attempts the record goes to
 * failed/ with the reason.  When the records of one file part ways, the
 * file is taken apart.  Records are never deleted undelivered.  One
 * thread.
 */
#ifndef COURIER_H
#define COURIER_H

#include <stddef.h>
#include <stdint.h>

struct conf;
struct courier;
struct err;
struct spool;

/*
 * A courier for "spool" with the sinks of "conf" (both borrowed until
 * courier_free(), or the next courier_reset()); "once" for --once, where
 * a failing sink ends the run instead of being waited for.  NULL if out
 * of memory.
 */
struct courier	*courier_new(const struct conf *, struct spool *, int once);
/* Give back what it holds (attempts kept), close the sinks, free.  NULL
 * is fine. */
void		 courier_free(struct courier *);

/* Give back all, close the sinks, and go on with "conf" and "spool". */
void		 courier_reset(struct courier *, const struct conf *,
		    struct spool *);

/* Open the sinks unless they are: 0, or -1 with "err" set (a sink that
 * cannot open is a failing sink; the next call tries again). */
int		 courier_open_sinks(struct courier *, struct err *);

/* Put back what consumers and writers that died left in the spool. */
void		 courier_housekeeping(struct courier *);

/* Claim files from new/ until spool_batch records are held. */
void		 courier_take(struct courier *);

/* One round: each held record that is due offered to each sink that has
 * not got it, then settled. */
void		 courier_deliver(struct courier *);

/* Give back what it holds: attempts so far are kept. */
void		 courier_release_all(struct courier *);

/* Records held now. */
size_t		 courier_held(const struct courier *);

/* The earliest retry due before "until" (Unix ms), else "until". */
int64_t		 courier_next_ms(const struct courier *, int64_t until);

/* --once: a sink failed in this run. */
int		 courier_failing(const struct courier *);

struct courier_status {
	unsigned long	 delivered;	/* records, since start */
	unsigned long	 failed;	/* ... moved to failed/ */
	char		 last_error[256];	/* "<time> <message>", or "" */
	unsigned long	 changes;	/* moves when anything above does */
};

void		 courier_status(const struct courier *,
		    struct courier_status *);

#endif /* COURIER_H */
