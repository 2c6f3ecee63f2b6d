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
 * restart.  The writer (spool_writer.h), the reader (spool_reader.h) and
 * the administrator (spool_admin.h) each work on an open spool.
 */
struct spool	*spool_open(const char *dir, int sync);
/* Finish what the writer holds, then close.  NULL is fine. */
void		 spool_close(struct spool *);

/* Writes that failed since start, and the last reason ("" if none). */
unsigned long	 spool_failures(struct spool *, char *last, size_t size);

/*
 * Make sure the folders exist and that a file can be created in tmp/.
 * Returns 0, or -1 with "err" saying why not.
 */
int	 spool_check(const char *dir, struct err *);

/*
 * The names in folder "which", oldest first (names start with the time),
 * at most "max".  "*names" is allocated (free it with spool_names_free);
 * returns the count, or -1 with "err" set.
 */
long	 spool_list(struct spool *, enum spool_dir which, char ***names,
	    size_t max, struct err *);
void	 spool_names_free(char **names, long n);

/* The folder's name ("new"). */
const char	*spool_dir_name(enum spool_dir);

#endif /* SPOOL_H */
