/*
 * The responder's side of the spool: records appended to a segment, and
 * the closer thread that syncs it and moves it into new/.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/io.h"
#include "core/log.h"
#include "core/reqid.h"
#include "core/str.h"
#include "perm.h"
#include "spool_impl.h"
#include "spool_writer.h"

#define SEGMENT_BYTES		(1024L * 1024)	/* a segment this big moves */
#define SEGMENT_MS		1000		/* ... and one this old */
#define SEGMENT_LINGER_MS	20	/* ... and one no write added to since */
#define SEGMENT_SYNC_MS		10	/* a write is synced this soon */
#define BACKLOG_BYTES		(64UL * 1024 * 1024)	/* full at this */
#define RETRY_FIRST_MS		50	/* the backlog: tried again after */
#define RETRY_MAX_MS		1000	/* ... this, doubling up to this */

/* A segment taken from the writers, to be finished without the lock. */
struct retired {
	int	 fd;
	char	 id[REQID_LEN + 1];
	off_t	 len;
	int	 dirty;		/* not synced since the last write */
};

/*
 * Records go into a segment, tmp/<id>.seg, under an exclusive flock while
 * it is open: each writer appends its record itself, with one write(2),
 * so a record is in the file (and survives a crash of llmgw) before its
 * request ends, and nobody waits for a disk.  The closer thread does the
 * rest: it syncs the segment SEGMENT_SYNC_MS after the first write not yet
 * synced (so a power loss loses at most the records of those last
 * milliseconds, as SQLite's synchronous=NORMAL does for the usage rows),
 * and moves it into new/ as <id> when it holds SEGMENT_BYTES, is
 * SEGMENT_MS old, or no write came for SEGMENT_LINGER_MS.  Under load,
 * writes share a file: no inode, link and directory sync for each (on
 * ext4 without a journal, finding a free inode among those freed lately
 * costs more than the write).  A writer that dies leaves its segment
 * unlocked in tmp/, for spool_recover() to move into new/.
 *
 * With s->seg.lock held: seg_open(), seg_detach().
 */
static int
seg_open(struct spool *s, struct err *err)
{
	char	 name[REQID_LEN + sizeof(SEGMENT_SUFFIX)];
	int	 fd;

	reqid_new(s->seg.id);
	snprintf(name, sizeof(name), "%s" SEGMENT_SUFFIX, s->seg.id);
	if ((fd = openat(s->fds[SPOOL_TMP], name, O_WRONLY | O_CREAT | O_EXCL |
	    O_APPEND | O_CLOEXEC, perm_file_mode())) == -1) {
		err_set(err, "spool: create %s/tmp/%s: %s", s->dir, name,
		    strerror(errno));
		return -1;
	}
	if (perm_fix(fd, 0) == -1 || flock(fd, LOCK_EX | LOCK_NB) == -1) {
		err_set(err, "spool: lock %s/tmp/%s: %s", s->dir, name,
		    strerror(errno));
		close(fd);
		unlinkat(s->fds[SPOOL_TMP], name, 0);
		return -1;
	}
	s->seg.fd = fd;
	s->seg.len = 0;
	s->seg.opened_ms = s->seg.last_ms = clock_mono_ms();
	s->seg.dirty_ms = 0;
	return 0;
}

/* Sync segment "id" through "fd"; a failure is counted, with its reason. */
static void
seg_sync(struct spool *s, int fd, const char *id)
{
	struct err	 err;

	if (fd == -1 || fdatasync(fd) == -1) {
		err_set(&err, "spool: fdatasync %s/tmp/%s" SEGMENT_SUFFIX ": %s",
		    s->dir, id, strerror(errno));
		spool_note_failure(s, &err);
	}
}

static void
seg_detach(struct spool *s, struct retired *r)
{
	r->fd = s->seg.fd;
	memcpy(r->id, s->seg.id, sizeof(r->id));
	r->len = s->seg.len;
	r->dirty = s->seg.dirty_ms != 0;
	s->seg.fd = -1;
	s->seg.dirty_ms = 0;
}

/*
 * Sync a detached segment and move it into new/, then close it.  If it
 * cannot move, it stays in tmp/, closed, and so unlocked: the consumer
 * moves its whole records.
 */
static void
seg_retire(struct spool *s, const struct retired *r)
{
	char		 name[REQID_LEN + sizeof(SEGMENT_SUFFIX)];
	struct err	 err;

	if (r->fd == -1)
		return;
	if (s->sync && r->dirty)
		seg_sync(s, r->fd, r->id);
	snprintf(name, sizeof(name), "%s" SEGMENT_SUFFIX, r->id);
	if (spool_hold(s, &err) == 0) {
		if (r->len == 0)
			unlinkat(s->fds[SPOOL_TMP], name, 0);
		else if (spool_rename_new(s->fds[SPOOL_TMP], name, s->fds[SPOOL_NEW],
		    r->id) == -1) {
			err_set(&err, "spool: move tmp/%s to new/ in %s: %s",
			    name, s->dir, strerror(errno));
			spool_note_failure(s, &err);
		} else if (s->sync && fsync(s->fds[SPOOL_NEW]) == -1) {
			err_set(&err, "spool: fsync %s/new: %s", s->dir,
			    strerror(errno));
			spool_note_failure(s, &err);
		}
		spool_unhold(s);
	} else
		spool_note_failure(s, &err);
	close(r->fd);
}

/* With the lock held: when the open segment is to move into new/. */
static int64_t
seg_due_ms(const struct spool *s)
{
	int64_t	 due = s->seg.last_ms + SEGMENT_LINGER_MS;

	if (s->seg.len >= SEGMENT_BYTES)
		return 0;
	if (s->seg.opened_ms + SEGMENT_MS < due)
		due = s->seg.opened_ms + SEGMENT_MS;
	return due;
}

/*
 * The closer, with the lock held: sync the open segment, through a copy
 * of its fd and without the lock, so that writers go on meanwhile and one
 * may even set the segment aside.  Returns with the lock held.
 */
static void
closer_sync(struct spool *s)
{
	char	 id[REQID_LEN + 1];
	int	 fd;

	memcpy(id, s->seg.id, sizeof(id));
	s->seg.dirty_ms = 0;
	fd = dup(s->seg.fd);
	pthread_mutex_unlock(&s->seg.lock);
	seg_sync(s, fd, id);	/* a failed dup() is counted there too */
	if (fd != -1)
		close(fd);
	pthread_mutex_lock(&s->seg.lock);
}

/*
 * With the lock held: append "n" (1 or 2) pieces, "len" bytes of whole
 * records, to the open segment, opening one if there is none.  0, or -1
 * with "err" set and nothing of them in the file.
 */
static int
seg_append(struct spool *s, const struct iovec *iov, int n, size_t len,
    struct err *err)
{
	struct iovec	 left[2];	/* io_writev_all() moves through it */
	int		 rc;

	/* Only a new segment needs the folders: a write goes to its fd. */
	if (s->seg.fd == -1) {
		if (spool_hold(s, err) == -1)
			return -1;
		rc = seg_open(s, err);
		spool_unhold(s);
		if (rc == -1)
			return -1;
	}
	memcpy(left, iov, (size_t)n * sizeof(*iov));
	if (io_writev_all(s->seg.fd, left, n) == -1) {
		err_set(err, "spool: write %s/tmp/%s" SEGMENT_SUFFIX ": %s",
		    s->dir, s->seg.id, strerror(errno));
		/* No part of it may stay: cut back to the whole records, or
		 * leave the file, closed, to recovery, which does. */
		if (ftruncate(s->seg.fd, s->seg.len) == -1) {
			close(s->seg.fd);
			s->seg.fd = -1;
		}
		return -1;
	}
	s->seg.len += (off_t)len;
	s->seg.last_ms = clock_mono_ms();
	if (s->seg.dirty_ms == 0)
		s->seg.dirty_ms = s->seg.last_ms;
	return 0;
}

/* With the lock held: a write failed; when to try the backlog again. */
static void
backlog_wait(struct spool *s, const struct err *err)
{
	int64_t	 now = clock_mono_ms();

	if (s->seg.failing_since == 0) {
		s->seg.failing_since = now;
		s->seg.retry_gap_ms = RETRY_FIRST_MS;
		log_error("spool: records wait in memory: %s", err->msg);
	}
	s->seg.retry_ms = now + s->seg.retry_gap_ms;
	s->seg.retry_gap_ms = s->seg.retry_gap_ms * 2 > RETRY_MAX_MS ?
	    RETRY_MAX_MS : s->seg.retry_gap_ms * 2;
}

/* With the lock held: write the backlog, in order.  0 if it is written
 * (or there is none), else -1, its failure counted. */
static int
backlog_flush(struct spool *s)
{
	struct iovec	 iov;
	struct err	 err;

	if (s->seg.backlog.len == 0)
		return 0;
	iov.iov_base = s->seg.backlog.data;
	iov.iov_len = s->seg.backlog.len;
	if (seg_append(s, &iov, 1, iov.iov_len, &err) == -1) {
		spool_note_failure(s, &err);
		backlog_wait(s, &err);
		return -1;
	}
	log_info("spool: %zu records written, after %lld ms in memory",
	    s->seg.nbacklog, (long long)(clock_mono_ms() -
	    s->seg.failing_since));
	buf_free(&s->seg.backlog);	/* an outage's worth: give it back */
	s->seg.nbacklog = 0;
	s->seg.failing_since = 0;
	return 0;
}

/* With the lock held: keep a record that could not be written.  0, or -1
 * with "err" set if the backlog has no room (left as it was if none is
 * kept at all). */
static int
backlog_keep(struct spool *s, const struct iovec *iov, int n, size_t len,
    struct err *err)
{
	char	 why[ERR_MAX];
	size_t	 before = s->seg.backlog.len;
	int	 i, rc = 0;

	if (s->seg.keep == 0)
		return -1;
	if (s->seg.nbacklog >= 2 * s->seg.keep ||
	    s->seg.backlog.len + len > 2 * BACKLOG_BYTES) {
		pthread_mutex_lock(&s->errlock);
		str_copy(why, sizeof(why), s->last_error);
		pthread_mutex_unlock(&s->errlock);
		err_set(err, "spool: %zu records wait in memory already, and "
		    "no more are kept (%s)", s->seg.nbacklog, why);
		return -1;
	}
	for (i = 0; i < n; i++)
		rc |= buf_add(&s->seg.backlog, iov[i].iov_base,
		    iov[i].iov_len);
	if (rc == -1) {
		s->seg.backlog.len = before;
		err_set(err, "spool: out of memory keeping a record");
		return -1;
	}
	s->seg.nbacklog++;
	return 0;
}

/* The closer: syncs the open segment, moves it on when it is due, and
 * writes the backlog when it may. */
static void *
closer_main(void *arg)
{
	struct spool	*s = arg;
	struct retired	 r;
	struct timespec	 until;
	int64_t		 now, next;

	(void)pthread_setname_np(pthread_self(), "llmgw-spool");
	pthread_mutex_lock(&s->seg.lock);
	while (!s->seg.stop) {
		now = clock_mono_ms();
		if (s->seg.backlog.len > 0 && s->seg.retry_ms <= now) {
			(void)backlog_flush(s);
			continue;
		}
		if (s->seg.fd == -1 && s->seg.backlog.len == 0) {
			s->seg.closer_idle = 1;
			pthread_cond_wait(&s->seg.wake, &s->seg.lock);
			s->seg.closer_idle = 0;
			continue;
		}
		next = s->seg.backlog.len > 0 ? s->seg.retry_ms : INT64_MAX;
		if (s->seg.fd != -1) {
			if (seg_due_ms(s) <= now) {
				seg_detach(s, &r);
				pthread_mutex_unlock(&s->seg.lock);
				seg_retire(s, &r);
				pthread_mutex_lock(&s->seg.lock);
				continue;
			}
			if (seg_due_ms(s) < next)
				next = seg_due_ms(s);
		}
		if (s->sync && s->seg.dirty_ms != 0) {
			if (s->seg.dirty_ms + SEGMENT_SYNC_MS <= now) {
				closer_sync(s);
				continue;
			}
			if (s->seg.dirty_ms + SEGMENT_SYNC_MS < next)
				next = s->seg.dirty_ms + SEGMENT_SYNC_MS;
		}
		until = clock_after_ms(CLOCK_MONOTONIC, next - now);
		pthread_cond_timedwait(&s->seg.wake, &s->seg.lock, &until);
	}
	pthread_mutex_unlock(&s->seg.lock);
	return NULL;
}

/*
 * Start the closer, with every signal blocked: they are for the thread
 * that waits for them (plain CGI's, too, which starts it).
 */
static void
start_closer(struct spool *s)
{
	sigset_t	 all, was;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &was);
	if (pthread_create(&s->seg.closer, NULL, closer_main, s) == 0)
		s->seg.closer_runs = 1;
	pthread_sigmask(SIG_SETMASK, &was, NULL);
}

int
spool_put(struct spool *s, const char *data, size_t len, struct err *err)
{
	struct iovec	 iov[2];
	struct retired	 r;
	size_t		 all = len;
	int		 n = 1, rc = -1;

	iov[0].iov_base = (void *)data;
	iov[0].iov_len = len;
	if (len == 0 || data[len - 1] != '\n') {
		iov[1].iov_base = (void *)"\n";
		iov[1].iov_len = 1;
		n = 2;
		all++;
	}
	pthread_mutex_lock(&s->seg.lock);	/* before spool_hold(): the order */
	if (!s->seg.closer_runs)
		start_closer(s);
	if (s->seg.backlog.len == 0) {
		if (seg_append(s, iov, n, all, err) == 0)
			rc = 0;
		else {
			spool_note_failure(s, err);
			if (backlog_keep(s, iov, n, all, err) == 0) {
				backlog_wait(s, err);
				rc = 1;
			}
		}
	} else if (backlog_keep(s, iov, n, all, err) == 0)
		/* After the records before it, which may go now. */
		rc = backlog_flush(s) == 0 ? 0 : 1;
	/* A closer waiting for a time sees a write when it wakes: waking it
	 * for every write would cost a switch each. */
	if (s->seg.closer_idle)
		pthread_cond_signal(&s->seg.wake);
	r.fd = -1;
	if (!s->seg.closer_runs && s->seg.fd != -1)
		seg_detach(s, &r);	/* no closer: finished now */
	pthread_mutex_unlock(&s->seg.lock);
	seg_retire(s, &r);
	return rc;
}

void
spool_keep(struct spool *s, size_t max)
{
	pthread_mutex_lock(&s->seg.lock);
	s->seg.keep = max;
	pthread_mutex_unlock(&s->seg.lock);
}

void
spool_backlog(struct spool *s, struct spool_backlog *b)
{
	pthread_mutex_lock(&s->seg.lock);
	b->records = s->seg.nbacklog;
	b->bytes = s->seg.backlog.len;
	b->full = b->records >= s->seg.keep || b->bytes >= BACKLOG_BYTES;
	b->failing_ms = s->seg.failing_since == 0 ? 0 :
	    clock_mono_ms() - s->seg.failing_since + 1;
	pthread_mutex_unlock(&s->seg.lock);
}

void
spool_writer_stop(struct spool *s)
{
	struct retired	 r;
	char		 what[ERR_MAX + 64];

	pthread_mutex_lock(&s->seg.lock);
	s->seg.stop = 1;
	pthread_cond_signal(&s->seg.wake);
	pthread_mutex_unlock(&s->seg.lock);
	if (s->seg.closer_runs)
		pthread_join(s->seg.closer, NULL);
	/* One last try for the backlog; what stays goes to the log. */
	pthread_mutex_lock(&s->seg.lock);
	if (backlog_flush(s) == -1) {
		pthread_mutex_lock(&s->errlock);
		snprintf(what, sizeof(what), "spool: %zu records not written "
		    "(%s); records", s->seg.nbacklog, s->last_error);
		pthread_mutex_unlock(&s->errlock);
		log_error_blob(what, s->seg.backlog.data, s->seg.backlog.len);
	}
	pthread_mutex_unlock(&s->seg.lock);
	if (s->seg.fd != -1) {
		seg_detach(s, &r);
		seg_retire(s, &r);
	}
}
