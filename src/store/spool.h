/*
 * The spool directory: log records handed from the responder to
 * llmgw-spoold, maildir style, so that none is lost and none is seen half
 * written.
 *
 *   tmp/     records being written: a responder's segment, <id>.seg, or
 *            a consumer's file <name>.<pid> (a crash leaves them here:
 *            segments are recovered, other files removed after a while)
 *   new/     complete records, waiting: <id>, or <id>,a<N> after N
 *            failed delivery attempts
 *   cur/     records a consumer has claimed: <name>,c<pid>.<start>, the
 *            claimant's pid and start time, so a dead claimant is known
 *   failed/  records given up on, each with <name>.reason beside it
 *
 * The responder appends records to a segment (spool_put()), which is
 * renamed into new/ whole.  A consumer writing a record by name creates
 * tmp/<name>.<pid>, writes and fsyncs it, renames it into new/ (never
 * over an existing file) and fsyncs new/; on Linux the file is made
 * without a name and linked into new/ instead.  A file holds one record,
 * or several, one JSON object per line.  A consumer claims a record by
 * renaming it into cur/: rename is atomic, so of several consumers
 * exactly one wins.  Nothing is deleted undelivered.
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct err;
struct spool;

enum spool_dir {
	SPOOL_TMP = 0,
	SPOOL_NEW,
	SPOOL_CUR,
	SPOOL_FAILED,
	SPOOL_NDIRS
};

#define SPOOL_NAME_MAX	160

/*
 * Open the spool at "dir" (made, with its folders, if missing); "sync"
 * says whether to fsync.  Fails only for memory: the folders are
 * (re)opened on use, so a spool that comes back is used without a
 * restart.
 */
struct spool	*spool_open(const char *dir, int sync);
void		 spool_close(struct spool *);	/* NULL is fine */

/*
 * Write one record, "len" bytes of JSON on one line.  Thread-safe: each
 * record is appended, with one write(2), to the open segment,
 * tmp/<id>.seg, which the closer thread syncs (if the spool syncs) 10 ms
 * after the first write it has not synced, and moves into new/ as <id>
 * 20 ms after a write that no other followed, or once it is 1 s old or
 * holds 1 MB (so a file holds one or more records, one per line, under a
 * time-ordered name).  Returns once the record is in the segment, so a
 * crash of the process cannot lose it (a power loss, only if it was
 * written in the last 10 ms): 0, or -1 with "err" set (counted; see
 * spool_failures()), in which case it is not there.  A failed sync is
 * counted too.  Not across fork(): the closer is a thread.
 */
int	 spool_put(struct spool *, const char *data, size_t len,
	    struct err *);

/*
 * For a consumer taking a file of several records apart: write one of
 * them as file "name" of its own, whole and synced if the spool syncs,
 * into new/ (as name,a<attempts>) or, given a "reason", into failed/ with
 * it.  A file of that name already there is taken to be this one (written
 * before a crash).  0, or -1 with "err" set.
 */
int	 spool_put_name(struct spool *, const char *name, const char *data,
	    size_t len, int attempts, const char *reason, struct err *);

/* Writes that failed since start, and the last reason ("" if none). */
unsigned long	 spool_failures(struct spool *, char *last, size_t size);

/*
 * Make sure the folders exist and that a file can be created in tmp/.
 * Returns 0, or -1 with "err" saying why not.
 */
int	 spool_check(const char *dir, struct err *);

/* One record a consumer holds. */
struct spool_item {
	char	 base[SPOOL_NAME_MAX];	/* its name in new/, without ,aN */
	char	 cur[SPOOL_NAME_MAX];	/* its name in cur/ */
	int	 attempts;		/* failed deliveries so far */
	char	*data;			/* the record; freed by spool_item_free */
	size_t	 len;
};

/*
 * The names in folder "which", oldest first (names start with the time),
 * at most "max".  "*names" is allocated (free it with spool_names_free);
 * returns the count, or -1 with "err" set.
 */
long	 spool_list(struct spool *, enum spool_dir which, char ***names,
	    size_t max, struct err *);
void	 spool_names_free(char **names, long n);

/*
 * Claim new/"name": rename it into cur/ and read it.  Returns 0 with
 * "item" filled; 1 if another consumer took it first; -1 with "err" set
 * if it could not be claimed; -2 with "err" set if it was claimed (it is
 * in cur/ as item->cur) but could not be read.
 */
int	 spool_claim(struct spool *, const char *name, struct spool_item *,
	    struct err *);
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

struct spool_stat {
	long	 count[SPOOL_NDIRS];
	int64_t	 oldest_ms[SPOOL_NDIRS];	/* Unix ms; 0: empty */
};

/* Count each folder's records and find the oldest. */
int	 spool_stat(struct spool *, struct spool_stat *, struct err *);

/* failed/ -> new/, attempts reset; returns how many, or -1. */
long	 spool_retry_failed(struct spool *, struct err *);
/* Delete failed/ records older than "age_ms"; returns how many, or -1. */
long	 spool_purge_failed(struct spool *, long age_ms, struct err *);

/* The folder's name ("new"). */
const char	*spool_dir_name(enum spool_dir);

#endif /* SPOOL_H */
