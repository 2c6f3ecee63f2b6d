/*
 * The consumer's side of the spool (see spool.h): claiming records,
 * settling them, and putting back what writers and consumers that died
 * left behind.  A consumer is one thread.
 */
#ifndef SPOOL_READER_H
#define SPOOL_READER_H

#include <stddef.h>

#include "spool.h"

struct err;
struct spool;

/* One record a consumer holds. */
struct spool_item {
	char	 base[SPOOL_NAME_MAX];	/* its name in new/, without ,aN */
	char	 cur[SPOOL_NAME_MAX];	/* its name in cur/ */
	int	 attempts;		/* failed deliveries so far */
	char	*data;			/* the record; freed by spool_item_free */
	size_t	 len;
};

enum spool_claim {
	SPOOL_CLAIMED = 0,	/* "item" filled */
	SPOOL_TAKEN,		/* another consumer took it first */
	SPOOL_UNCLAIMED,	/* it could not be claimed; "err" says why */
	SPOOL_UNREADABLE	/* claimed (in cur/ as item->cur) but it could
				 * not be read; "err" says why */
};

/* Claim new/"name": rename it into cur/ and read it. */
enum spool_claim spool_claim(struct spool *, const char *name,
	    struct spool_item *, struct err *);
/* Delivered: remove it from cur/. */
int	 spool_done(struct spool *, struct spool_item *, struct err *);
/* Not delivered now: back to new/, "attempts" failed attempts counted. */
int	 spool_release(struct spool *, struct spool_item *, int attempts,
	    struct err *);
/*
 * Given up after "attempts" attempts: into failed/, with the time, the
 * attempts and "reason" in failed/<base>.reason.
 */
int	 spool_fail(struct spool *, struct spool_item *, int attempts,
	    const char *reason, struct err *);
void	 spool_item_free(struct spool_item *);

/*
 * Put records claimed by consumers that are no longer running, and
 * claimed at least "min_age_ms" ago, back into new/.  Returns how many, or
 * -1 with "err" set.
 */
long	 spool_reclaim(struct spool *, long min_age_ms, struct err *);
/*
 * Move the segments writers left in tmp/ (see spool_put()), unlocked and
 * last written at least "min_age_ms" ago, into new/: their whole records,
 * a record cut short by a crash dropped.  Returns how many, or -1 with
 * "err" set.
 */
long	 spool_recover(struct spool *, long min_age_ms, struct err *);
/*
 * Remove tmp/ files older than "min_age_ms", segments aside: writers of
 * single files that crashed.
 */
long	 spool_clean_tmp(struct spool *, long min_age_ms, struct err *);

/*
 * For a consumer taking a file of several records apart: write one of
 * them as file "name" of its own, whole and synced if the spool syncs,
 * into new/ (as name,a<attempts>) or, given a "reason", into failed/ with
 * it.  A file of that name already there is taken to be this one (written
 * before a crash).  0, or -1 with "err" set.
 */
int	 spool_put_name(struct spool *, const char *name, const char *data,
	    size_t len, int attempts, const char *reason, struct err *);

#endif /* SPOOL_READER_H */
