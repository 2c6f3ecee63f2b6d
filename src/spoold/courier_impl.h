/*
 * What the two halves of the courier share (courier.c: the records in
 * hand and their files; courier_round.c: one round of delivery); private
 * to them.
 */
#ifndef COURIER_IMPL_H
#define COURIER_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "store/conf.h"
#include "store/record.h"
#include "store/spool_reader.h"
#include "courier.h"

#define MAX_SINKS	8
#define USAGE_SINK	0	/* always the first (sink_usage.c): taking a
				 * record again is harmless there */
#define DELIVERY_MAX	1024	/* records offered to a sink at once */
#define TMP_MAX_AGE	(3600L * 1000)	/* a writer that died an hour ago */
#define SEGMENT_MIN_AGE	1000L	/* ms: a newer segment may not be locked yet */

/* A spool file in hand: one record, or several written together. */
struct claim {
	struct spool_item	 item;
	size_t			 records;
	size_t			 left;		/* its records held */
	size_t			 pending;	/* ... and not yet delivered */
	int			 split;		/* to be taken apart */
};

/* A record in hand. */
struct held {
	struct claim		*claim;
	size_t			 index;		/* its line in the file */
	const char		*json;		/* within claim->item.data */
	size_t			 len;
	struct record		 rec;
	unsigned		 done;		/* bit per sink that has it */
	int			 delivered;	/* all have it; its file waits */
	int			 sent;		/* offered to a sink this round */
	int			 tries;		/* failed rounds, this one included */
	int			 invalid;	/* a receiver refused it as such */
	int			 denied;	/* ... refused our credentials */
	int			 denials;	/* rounds so, in a row */
	int64_t			 next_ms;	/* when to try again */
	char			 why[256];	/* the last failure */
};

struct courier {
	const struct conf	*conf;		/* borrowed */
	struct spool		*spool;		/* borrowed */
	struct sink		*sinks[MAX_SINKS];
	int			 nsinks;
	struct held		*held;
	size_t			 nheld;
	size_t			 held_cap;
	int			 once;
	int			 once_failed;	/* --once: a sink failed */
	struct courier_status	 status;
};

/* Whether record "h" goes to failed/: refused as invalid, or out of
 * attempts. */
static inline int
courier_gives_up(const struct courier *d, const struct held *h)
{
	return h->invalid || h->tries >= d->conf->spool_attempts;
}

/* Log that the record of file "name" goes to failed/, and why. */
void	 courier_log_failed(const char *name, const struct held *,
	    const char *why);

/* The last error, for llmgw-admin spool status. */
void	 courier_note_error(struct courier *, const char *msg);
/* Forget held record "i"; its file too once none of it is held. */
void	 courier_drop_held(struct courier *, size_t i);
/* Forget the held records of "c" (and "c"), first settling its file
 * ("done": delivered, removed). */
void	 courier_drop_claim(struct courier *, struct claim *c, int done);
/* Take file "c" of several records apart (courier.c says how). */
void	 courier_split(struct courier *, struct claim *c);

#endif /* COURIER_IMPL_H */
