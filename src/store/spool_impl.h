/*
 * What the parts of the spool share (spool.c, spool_writer.c,
 * spool_reader.c, spool_admin.c); private to them.
 *
 * The folders are opened on use and held under a read-write lock: most
 * operations take it for reading (spool_hold()); one that finds a folder
 * gone (deleted, or the spool moved) reopens them all, for writing.
 */
#ifndef SPOOL_IMPL_H
#define SPOOL_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "core/buf.h"
#include "core/reqid.h"
#include "spool.h"

struct err;

#define SEGMENT_SUFFIX		".seg"

extern const char *const spool_subdirs[SPOOL_NDIRS];

struct spool {
	char			*dir;
	int			 sync;
	pthread_rwlock_t	 lock;	/* writers of "fds" take it for writing */
	int			 fds[SPOOL_NDIRS];
	atomic_ulong		 failures;
	pthread_mutex_t		 errlock;
	char			 last_error[256];
	struct segment {	/* the writers' and the closer's */
		pthread_mutex_t	 lock;	/* guards what follows; writers
					 * hold it for one write */
		pthread_cond_t	 wake;	/* for the closer: a write after
					 * idling, or stop */
		int		 fd;		/* -1: none open */
		char		 id[REQID_LEN + 1];
		off_t		 len;		/* bytes of whole records */
		int64_t		 opened_ms;
		int64_t		 last_ms;	/* the last write */
		int64_t		 dirty_ms;	/* the first write not synced;
						 * 0: none */
		pthread_t	 closer;
		int		 closer_runs;
		int		 closer_idle;	/* waits untimed: signal it */
		int		 stop;
		struct buf	 backlog;	/* records not yet written,
						 * one per line */
		size_t		 nbacklog;	/* ... how many */
		size_t		 keep;		/* the bound; 0: none kept */
		int64_t		 retry_ms;	/* when the closer tries them */
		long		 retry_gap_ms;	/* ... doubling */
		int64_t		 failing_since;	/* 0: writes work */
	}			 seg;
};

/* Take the read lock with the folders open; -1 with "err" if we cannot. */
int	 spool_hold(struct spool *, struct err *);
void	 spool_unhold(struct spool *);

/* Stop the closer and finish the open segment (spool_writer.c). */
void	 spool_writer_stop(struct spool *);

/* rename that never replaces: renameat2, or link and unlink without it. */
int	 spool_rename_new(int fromfd, const char *from, int tofd,
	    const char *to);

/* Count a failed write, keeping its reason for spool_failures(). */
void	 spool_note_failure(struct spool *, const struct err *);

/*
 * Write "data" as file "name" in folder "to", whole or not at all, and
 * durably if the spool syncs.  "exist_ok": a file of that name already
 * there is this one (written before a crash), not an error.  0, or -1
 * with "err" set.
 */
int	 spool_put_file(struct spool *, enum spool_dir to, const char *name,
	    const char *data, size_t len, int exist_ok, struct err *);

/* Split "<base>,a<N>,c<pid>.<start>" into its parts; "pid" and "start"
 * may be NULL. */
void	 spool_parse_name(const char *name, char *base, size_t size,
	    int *attempts, long *pid, unsigned long long *start);

/* 1 if "name" is a writer's segment, tmp/<id>.seg. */
int	 spool_is_segment(const char *name);

/* Unix ms of a time; the age in ms of a file's last change: its data, or
 * its status (a rename sets that); -1 if it cannot be read. */
int64_t	 spool_unix_ms(const struct timespec *);
int64_t	 spool_stat_age_ms(const struct stat *, int use_mtime);
int64_t	 spool_age_ms(int dirfd, const char *name, int use_mtime);

#endif /* SPOOL_IMPL_H */
