#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/proc.h"
#include "core/reqid.h"
#include "core/str.h"
#include "spool.h"

#define SPOOL_RECORD_MAX	(64L * 1024 * 1024)	/* one file, read back */
#define SEGMENT_BYTES		(1024L * 1024)	/* a segment this big moves */
#define SEGMENT_MS		1000		/* ... and one this old */
#define SEGMENT_LINGER_MS	20	/* ... and one no write added to since */
#define SEGMENT_SYNC_MS		10	/* a write is synced this soon */
#define SEGMENT_SUFFIX		".seg"

static const char *const subdirs[SPOOL_NDIRS] = { "tmp", "new", "cur",
	"failed" };

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
	}			 seg;
};

const char *
spool_dir_name(enum spool_dir d)
{
	return subdirs[d];
}

/* mkdir -p, happy when the directory is already there. */
static int
make_dirs(const char *path, struct err *err)
{
	char		 p[PATH_MAX];
	struct stat	 st;
	size_t		 i;

	if (str_copy(p, sizeof(p), path)) {
		err_set(err, "spool: %s: path too long", path);
		return -1;
	}
	for (i = 1; ; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		if (mkdir(p, 0750) == -1 && (errno != EEXIST ||
		    stat(p, &st) == -1 || !S_ISDIR(st.st_mode))) {
			err_set(err, "spool: mkdir %s: %s", p, errno ==
			    EEXIST ? "exists and is not a directory" :
			    strerror(errno));
			return -1;
		}
		if (path[i] == '\0')
			return 0;
		p[i] = '/';
	}
}

/* With the write lock held: (re)open the folders. */
static int
open_dirs(struct spool *s, struct err *err)
{
	char	 path[PATH_MAX];
	int	 i, fd;

	for (i = 0; i < SPOOL_NDIRS; i++) {
		if (s->fds[i] != -1) {
			close(s->fds[i]);
			s->fds[i] = -1;
		}
	}
	for (i = 0; i < SPOOL_NDIRS; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", s->dir,
		    subdirs[i]) >= (int)sizeof(path)) {
			err_set(err, "spool: %s: path too long", s->dir);
			return -1;
		}
		if (make_dirs(path, err) == -1)
			return -1;
		if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
		    -1) {
			err_set(err, "spool: open %s: %s", path,
			    strerror(errno));
			return -1;
		}
		s->fds[i] = fd;
	}
	return 0;
}

/* Whether the folders we hold are still the ones in the file system. */
static int
dirs_current(struct spool *s)
{
	struct stat	 st;

	return s->fds[SPOOL_NEW] != -1 &&
	    fstat(s->fds[SPOOL_NEW], &st) == 0 && st.st_nlink > 0 &&
	    s->fds[SPOOL_TMP] != -1 &&
	    fstat(s->fds[SPOOL_TMP], &st) == 0 && st.st_nlink > 0;
}

/* Take the read lock with the folders open; -1 with "err" if we cannot. */
static int
hold(struct spool *s, struct err *err)
{
	pthread_rwlock_rdlock(&s->lock);
	if (dirs_current(s))
		return 0;
	pthread_rwlock_unlock(&s->lock);
	pthread_rwlock_wrlock(&s->lock);
	if (!dirs_current(s) && open_dirs(s, err) == -1) {
		pthread_rwlock_unlock(&s->lock);
		return -1;
	}
	pthread_rwlock_unlock(&s->lock);
	pthread_rwlock_rdlock(&s->lock);
	return 0;
}

static void
unhold(struct spool *s)
{
	pthread_rwlock_unlock(&s->lock);
}

/* A segment taken from the writers, to be finished without the lock. */
struct retired {
	int	 fd;
	char	 id[REQID_LEN + 1];
	off_t	 len;
	int	 dirty;		/* not synced since the last write */
};

static void	seg_detach(struct spool *, struct retired *);
static void	seg_retire(struct spool *, const struct retired *);

struct spool *
spool_open(const char *dir, int sync)
{
	struct spool		*s;
	pthread_condattr_t	 attr;
	int			 i;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	if ((s->dir = strdup(dir)) == NULL) {
		free(s);
		return NULL;
	}
	s->sync = sync;
	s->seg.fd = -1;
	for (i = 0; i < SPOOL_NDIRS; i++)
		s->fds[i] = -1;
	pthread_rwlock_init(&s->lock, NULL);
	pthread_mutex_init(&s->seg.lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->seg.wake, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&s->errlock, NULL);
	return s;
}

void
spool_close(struct spool *s)
{
	struct retired	 r;
	int		 i;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->seg.lock);
	s->seg.stop = 1;
	pthread_cond_signal(&s->seg.wake);
	pthread_mutex_unlock(&s->seg.lock);
	if (s->seg.closer_runs)
		pthread_join(s->seg.closer, NULL);
	if (s->seg.fd != -1) {
		seg_detach(s, &r);
		seg_retire(s, &r);
	}
	for (i = 0; i < SPOOL_NDIRS; i++)
		if (s->fds[i] != -1)
			close(s->fds[i]);
	pthread_mutex_destroy(&s->seg.lock);
	pthread_cond_destroy(&s->seg.wake);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->errlock);
	free(s->dir);
	free(s);
}

/* Write all of "iov", or fail: 0, or -1 with errno. */
static int
writev_all(int fd, struct iovec *iov, int n)
{
	ssize_t	 w;

	while (n > 0) {
		if ((w = writev(fd, iov, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int
write_all(int fd, const char *p, size_t n)
{
	struct iovec	 iov;

	iov.iov_base = (void *)p;
	iov.iov_len = n;
	return writev_all(fd, &iov, 1);
}

/* rename that never replaces: renameat2, or link and unlink without it. */
static int
rename_new(int fromfd, const char *from, int tofd, const char *to)
{
#ifdef RENAME_NOREPLACE
	if (renameat2(fromfd, from, tofd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
#endif
	if (linkat(fromfd, from, tofd, to, 0) == -1)
		return -1;
	return unlinkat(fromfd, from, 0);
}

static void
note_failure(struct spool *s, const struct err *err)
{
	atomic_fetch_add(&s->failures, 1);
	pthread_mutex_lock(&s->errlock);
	str_copy(s->last_error, sizeof(s->last_error), err->msg);
	pthread_mutex_unlock(&s->errlock);
}

/*
 * Linux: the file written with no name yet, then linked into its folder
 * whole.  One directory operation instead of two (make in tmp/, rename),
 * and no rename that locks two directories against the other writers.
 * 0, 1 if the system cannot (the caller goes the portable way), or -1.
 * A name already there is EEXIST, for the caller to judge.
 */
static int
put_unnamed(struct spool *s, enum spool_dir to, const char *name,
    const char *data, size_t len, struct err *err)
{
#ifdef O_TMPFILE
	char	 path[64];
	int	 fd, e;

	if ((fd = openat(s->fds[to], ".", O_TMPFILE | O_WRONLY | O_CLOEXEC,
	    0640)) == -1)
		return 1;
	if (write_all(fd, data, len) == -1 || (s->sync && fsync(fd) == -1)) {
		err_set(err, "spool: write %s/%s/%s: %s", s->dir, subdirs[to],
		    name, strerror(errno));
		close(fd);
		return -1;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, path, s->fds[to], name, AT_SYMLINK_FOLLOW) ==
	    -1) {
		e = errno;
		close(fd);
		if (e == ENOENT)
			return 1;	/* no /proc */
		err_set(err, "spool: link %s/%s in %s: %s", subdirs[to], name,
		    s->dir, strerror(e));
		errno = e;	/* EEXIST is for the caller to judge */
		return -1;
	}
	if (close(fd) == -1) {
		err_set(err, "spool: close %s/%s/%s: %s", s->dir, subdirs[to],
		    name, strerror(errno));
		unlinkat(s->fds[to], name, 0);
		return -1;
	}
	return 0;
#else
	(void)s; (void)to; (void)name; (void)data; (void)len; (void)err;
	return 1;
#endif
}

/*
 * Write "data" as file "name" in folder "to", whole or not at all, and
 * durably if the spool syncs.  "exist_ok": a file of that name already
 * there is this one (written before a crash), not an error.  0, or -1
 * with "err" set.
 */
static int
put_file(struct spool *s, enum spool_dir to, const char *name,
    const char *data, size_t len, int exist_ok, struct err *err)
{
	char	 tmp[SPOOL_NAME_MAX + 24];
	int	 fd = -1, created = 0, rc;

	if (hold(s, err) == -1)
		return -1;
	if ((rc = put_unnamed(s, to, name, data, len, err)) == 0)
		goto linked;
	if (rc == -1) {
		if (exist_ok && errno == EEXIST)
			goto linked;
		goto fail;
	}
	snprintf(tmp, sizeof(tmp), "%s.%ld", name, (long)getpid());
	if ((fd = openat(s->fds[SPOOL_TMP], tmp, O_WRONLY | O_CREAT | O_EXCL |
	    O_CLOEXEC, 0640)) == -1) {
		err_set(err, "spool: create %s/tmp/%s: %s", s->dir, tmp,
		    strerror(errno));
		goto fail;
	}
	created = 1;
	if (write_all(fd, data, len) == -1) {
		err_set(err, "spool: write %s/tmp/%s: %s", s->dir, tmp,
		    strerror(errno));
		goto fail;
	}
	if (s->sync && fsync(fd) == -1) {
		err_set(err, "spool: fsync %s/tmp/%s: %s", s->dir, tmp,
		    strerror(errno));
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		err_set(err, "spool: close %s/tmp/%s: %s", s->dir, tmp,
		    strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename_new(s->fds[SPOOL_TMP], tmp, s->fds[to], name) == -1 &&
	    !(exist_ok && errno == EEXIST)) {
		err_set(err, "spool: rename tmp/%s to %s/%s in %s: %s", tmp,
		    subdirs[to], name, s->dir, strerror(errno));
		goto fail;
	}
	if (exist_ok)
		unlinkat(s->fds[SPOOL_TMP], tmp, 0);	/* if it was there */
	created = 0;
linked:
	/* The new name itself must survive a power loss too. */
	if (s->sync && fsync(s->fds[to]) == -1) {
		err_set(err, "spool: fsync %s/%s: %s", s->dir, subdirs[to],
		    strerror(errno));
		unhold(s);
		return -1;	/* it is there; only its durability is in doubt */
	}
	unhold(s);
	return 0;
fail:
	if (fd != -1)
		close(fd);
	if (created)
		unlinkat(s->fds[SPOOL_TMP], tmp, 0);
	unhold(s);
	return -1;
}

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
	    O_APPEND | O_CLOEXEC, 0640)) == -1) {
		err_set(err, "spool: create %s/tmp/%s: %s", s->dir, name,
		    strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
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
		note_failure(s, &err);
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
	if (hold(s, &err) == 0) {
		if (r->len == 0)
			unlinkat(s->fds[SPOOL_TMP], name, 0);
		else if (rename_new(s->fds[SPOOL_TMP], name, s->fds[SPOOL_NEW],
		    r->id) == -1) {
			err_set(&err, "spool: move tmp/%s to new/ in %s: %s",
			    name, s->dir, strerror(errno));
			note_failure(s, &err);
		} else if (s->sync && fsync(s->fds[SPOOL_NEW]) == -1) {
			err_set(&err, "spool: fsync %s/new: %s", s->dir,
			    strerror(errno));
			note_failure(s, &err);
		}
		unhold(s);
	} else
		note_failure(s, &err);
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

/* The closer: syncs the open segment, and moves it on when it is due. */
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
		if (s->seg.fd == -1) {
			s->seg.closer_idle = 1;
			pthread_cond_wait(&s->seg.wake, &s->seg.lock);
			s->seg.closer_idle = 0;
			continue;
		}
		now = clock_mono_ms();
		if ((next = seg_due_ms(s)) <= now) {
			seg_detach(s, &r);
			pthread_mutex_unlock(&s->seg.lock);
			seg_retire(s, &r);
			pthread_mutex_lock(&s->seg.lock);
			continue;
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
	int		 n = 1, rc = 0;

	iov[0].iov_base = (void *)data;
	iov[0].iov_len = len;
	if (len == 0 || data[len - 1] != '\n') {
		iov[1].iov_base = (void *)"\n";
		iov[1].iov_len = 1;
		n = 2;
	}
	pthread_mutex_lock(&s->seg.lock);	/* before hold(): the order */
	if (!s->seg.closer_runs)
		start_closer(s);
	/* Only a new segment needs the folders: a write goes to its fd. */
	if (s->seg.fd == -1) {
		if (hold(s, err) == -1) {
			rc = -1;
			goto out;
		}
		rc = seg_open(s, err);
		unhold(s);
		if (rc == -1)
			goto out;
	}
	if (writev_all(s->seg.fd, iov, n) == -1) {
		err_set(err, "spool: write %s/tmp/%s" SEGMENT_SUFFIX ": %s",
		    s->dir, s->seg.id, strerror(errno));
		rc = -1;
		/* No part of it may stay: cut back to the whole records, or
		 * leave the file, closed, to recovery, which does. */
		if (ftruncate(s->seg.fd, s->seg.len) == -1) {
			close(s->seg.fd);
			s->seg.fd = -1;
		}
	} else {
		s->seg.len += (off_t)(len + (n == 2));
		s->seg.last_ms = clock_mono_ms();
		if (s->seg.dirty_ms == 0)
			s->seg.dirty_ms = s->seg.last_ms;
	}
	/* A closer waiting for a time sees this when it wakes: waking it
	 * for every write would cost a switch each. */
	if (s->seg.closer_idle)
		pthread_cond_signal(&s->seg.wake);
out:
	r.fd = -1;
	if (!s->seg.closer_runs && s->seg.fd != -1)
		seg_detach(s, &r);	/* no closer: finished now */
	pthread_mutex_unlock(&s->seg.lock);
	seg_retire(s, &r);
	if (rc == -1)
		note_failure(s, err);
	return rc;
}

/*
 * failed/<base>.reason: when, after how many attempts, why.  Written
 * before the record goes there: a crash in between leaves a harmless
 * orphan.  0, or -1 with "err" set.
 */
static int
write_reason(struct spool *s, const char *base, int attempts,
    const char *reason, struct err *err)
{
	char	 name[SPOOL_NAME_MAX + 8], when[32];
	time_t	 now = time(NULL);
	int	 fd, rc = 0;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	snprintf(name, sizeof(name), "%s.reason", base);
	if (hold(s, err) == -1)
		return -1;
	if ((fd = openat(s->fds[SPOOL_FAILED], name, O_WRONLY | O_CREAT |
	    O_TRUNC | O_CLOEXEC, 0640)) == -1 ||
	    dprintf(fd, "%s after %d attempt%s: %s\n", when, attempts,
	    attempts == 1 ? "" : "s", reason) < 0 ||
	    (s->sync && fsync(fd) == -1)) {
		err_set(err, "spool: write failed/%s in %s: %s", name, s->dir,
		    strerror(errno));
		rc = -1;
	}
	if (fd != -1)
		close(fd);
	unhold(s);
	return rc;
}

int
spool_fail(struct spool *s, struct spool_item *it, int attempts,
    const char *reason, struct err *err)
{
	int	 rc = 0;

	if (write_reason(s, it->base, attempts, reason, err) == -1 ||
	    hold(s, err) == -1)
		return -1;
	if (renameat(s->fds[SPOOL_CUR], it->cur, s->fds[SPOOL_FAILED],
	    it->base) == -1) {
		err_set(err, "spool: move cur/%s to failed/ in %s: %s",
		    it->cur, s->dir, strerror(errno));
		rc = -1;
	}
	unhold(s);
	return rc;
}

int
spool_put_name(struct spool *s, const char *name, const char *data,
    size_t len, int attempts, const char *reason, struct err *err)
{
	char	 as[SPOOL_NAME_MAX];

	if (reason != NULL)
		return write_reason(s, name, attempts, reason, err) == -1 ? -1 :
		    put_file(s, SPOOL_FAILED, name, data, len, 1, err);
	if (attempts <= 0)
		return put_file(s, SPOOL_NEW, name, data, len, 1, err);
	if (snprintf(as, sizeof(as), "%s,a%d", name, attempts) >=
	    (int)sizeof(as)) {
		err_set(err, "spool: name too long: %s", name);
		return -1;
	}
	return put_file(s, SPOOL_NEW, as, data, len, 1, err);
}

unsigned long
spool_failures(struct spool *s, char *last, size_t size)
{
	pthread_mutex_lock(&s->errlock);
	str_copy(last, size, s->last_error);
	pthread_mutex_unlock(&s->errlock);
	return atomic_load(&s->failures);
}

int
spool_check(const char *dir, struct err *err)
{
	struct spool	*s;
	char		 id[REQID_LEN + 2];
	int		 rc, fd = -1;

	if ((s = spool_open(dir, 0)) == NULL) {
		err_set(err, "spool: out of memory");
		return -1;
	}
	rc = -1;
	if (hold(s, err) == 0) {
		/* Write a byte: a full disk still lets us create files. */
		id[0] = '.';
		reqid_new(id + 1);
		if ((fd = openat(s->fds[SPOOL_TMP], id, O_WRONLY | O_CREAT |
		    O_EXCL | O_CLOEXEC, 0600)) == -1 ||
		    write(fd, "", 1) != 1 || fsync(fd) == -1)
			err_set(err, "spool: cannot write files in %s/tmp: %s",
			    dir, strerror(errno));
		else
			rc = 0;
		if (fd != -1) {
			close(fd);
			unlinkat(s->fds[SPOOL_TMP], id, 0);
		}
		unhold(s);
	}
	spool_close(s);
	return rc;
}

/* The consumer's side.  A consumer is one thread; no locking needed. */

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
spool_names_free(char **names, long n)
{
	long	 i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int
is_record_name(enum spool_dir which, const char *name)
{
	size_t	 n = strlen(name);

	if (name[0] == '.' || n >= SPOOL_NAME_MAX)
		return 0;
	if (which == SPOOL_FAILED && n > 7 && strcmp(name + n - 7,
	    ".reason") == 0)
		return 0;
	return 1;
}

long
spool_list(struct spool *s, enum spool_dir which, char ***out, size_t max,
    struct err *err)
{
	DIR		*d;
	struct dirent	*de;
	char		**names = NULL, **nn;
	size_t		 n = 0, cap = 0;
	int		 fd;

	*out = NULL;
	if (hold(s, err) == -1)
		return -1;
	fd = openat(s->fds[which], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	unhold(s);
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		err_set(err, "spool: read %s/%s: %s", s->dir, subdirs[which],
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (!is_record_name(which, de->d_name))
			continue;
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			if ((nn = realloc(names, cap * sizeof(*nn))) == NULL)
				goto nomem;
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			goto nomem;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	while (n > max)
		free(names[--n]);
	*out = names;
	return (long)n;
nomem:
	closedir(d);
	spool_names_free(names, (long)n);
	err_set(err, "spool: out of memory listing %s", subdirs[which]);
	return -1;
}

/* Split "<base>,a<N>,c<pid>.<start>" into its parts. */
static void
parse_name(const char *name, char *base, size_t size, int *attempts,
    long *pid, unsigned long long *start)
{
	const char	*p;

	p = strchr(name, ',');
	snprintf(base, size, "%.*s", (int)(p != NULL ? (size_t)(p - name) :
	    strlen(name)), name);
	*attempts = 0;
	if (pid != NULL)
		*pid = 0;
	if (start != NULL)
		*start = 0;
	for (; p != NULL; p = strchr(p + 1, ',')) {
		if (p[1] == 'a')
			*attempts = atoi(p + 2);
		else if (p[1] == 'c' && pid != NULL && start != NULL)
			sscanf(p + 2, "%ld.%llu", pid, start);
	}
	if (*attempts < 0)
		*attempts = 0;
}

static int
read_record(int dirfd, const char *name, struct spool_item *it,
    struct err *err)
{
	struct stat	 st;
	ssize_t		 r;
	size_t		 got = 0;
	int		 fd;

	if ((fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		err_set(err, "open %s: %s", name, strerror(errno));
		goto fail;
	}
	if (st.st_size > SPOOL_RECORD_MAX) {
		err_set(err, "record is %lld bytes, more than %ld",
		    (long long)st.st_size, SPOOL_RECORD_MAX);
		goto fail;
	}
	if ((it->data = malloc((size_t)st.st_size + 1)) == NULL) {
		err_set(err, "out of memory reading %s", name);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, it->data + got, (size_t)st.st_size - got);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			err_set(err, "read %s: %s", name, r == 0 ?
			    "file shrank" : strerror(errno));
			goto fail;
		}
		got += (size_t)r;
	}
	it->data[got] = '\0';
	it->len = got;
	close(fd);
	return 0;
fail:
	if (fd != -1)
		close(fd);
	free(it->data);
	it->data = NULL;
	return -1;
}

int
spool_claim(struct spool *s, const char *name, struct spool_item *it,
    struct err *err)
{
	unsigned long long	 self_start = proc_self_start();
	int			 rc;

	memset(it, 0, sizeof(*it));
	parse_name(name, it->base, sizeof(it->base), &it->attempts, NULL,
	    NULL);
	if (it->attempts > 0)
		rc = snprintf(it->cur, sizeof(it->cur), "%s,a%d,c%ld.%llu",
		    it->base, it->attempts, (long)getpid(), self_start);
	else
		rc = snprintf(it->cur, sizeof(it->cur), "%s,c%ld.%llu",
		    it->base, (long)getpid(), self_start);
	if (rc >= (int)sizeof(it->cur)) {
		err_set(err, "spool: name too long: %s", name);
		return -1;
	}
	if (hold(s, err) == -1)
		return -1;
	if (renameat(s->fds[SPOOL_NEW], name, s->fds[SPOOL_CUR], it->cur) ==
	    -1) {
		rc = errno == ENOENT ? 1 : -1;
		if (rc == -1)
			err_set(err, "spool: claim new/%s in %s: %s", name,
			    s->dir, strerror(errno));
		unhold(s);
		return rc;
	}
	rc = read_record(s->fds[SPOOL_CUR], it->cur, it, err);
	unhold(s);
	if (rc == -1) {
		err_prefix(err, "spool: cur/ in %s", s->dir);
		return -2;
	}
	return 0;
}

int
spool_done(struct spool *s, struct spool_item *it, struct err *err)
{
	int	 rc = 0;

	if (hold(s, err) == -1)
		return -1;
	if (unlinkat(s->fds[SPOOL_CUR], it->cur, 0) == -1) {
		err_set(err, "spool: remove cur/%s in %s: %s", it->cur, s->dir,
		    strerror(errno));
		rc = -1;
	}
	unhold(s);
	return rc;
}

int
spool_release(struct spool *s, struct spool_item *it, int attempts,
    struct err *err)
{
	char	 name[SPOOL_NAME_MAX];
	int	 rc = 0;

	if (attempts <= 0)
		str_copy(name, sizeof(name), it->base);
	else if (snprintf(name, sizeof(name), "%s,a%d", it->base, attempts) >=
	    (int)sizeof(name)) {
		err_set(err, "spool: name too long: %s", it->base);
		return -1;
	}
	if (hold(s, err) == -1)
		return -1;
	if (renameat(s->fds[SPOOL_CUR], it->cur, s->fds[SPOOL_NEW], name) ==
	    -1) {
		err_set(err, "spool: return cur/%s to new/ in %s: %s", it->cur,
		    s->dir, strerror(errno));
		rc = -1;
	}
	unhold(s);
	return rc;
}


void
spool_item_free(struct spool_item *it)
{
	free(it->data);
	it->data = NULL;
	it->len = 0;
}

static int64_t
unix_ms(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000 + t->tv_nsec / 1000000;
}

/* Age in ms of a file's last change: its data, or its status (a rename
 * sets that). */
static int64_t
stat_age_ms(const struct stat *st, int use_mtime)
{
	return clock_wall_ms() - unix_ms(use_mtime ? &st->st_mtim :
	    &st->st_ctim);
}

static int64_t
age_ms(int dirfd, const char *name, int use_mtime)
{
	struct stat	 st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -1;
	return stat_age_ms(&st, use_mtime);
}

long
spool_reclaim(struct spool *s, long min_age_ms, struct err *err)
{
	char			**names, base[SPOOL_NAME_MAX], to[SPOOL_NAME_MAX];
	unsigned long long	 start;
	long			 n, i, done = 0, pid;
	int			 attempts;

	if ((n = spool_list(s, SPOOL_CUR, &names, (size_t)LONG_MAX, err)) ==
	    -1)
		return -1;
	if (hold(s, err) == -1) {
		spool_names_free(names, n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		parse_name(names[i], base, sizeof(base), &attempts, &pid,
		    &start);
		/* A live claimant holds it, even a slow one. */
		if (proc_alive(pid, start))
			continue;
		if (age_ms(s->fds[SPOOL_CUR], names[i], 0) < min_age_ms)
			continue;
		if (attempts > 0 && snprintf(to, sizeof(to), "%s,a%d", base,
		    attempts) >= (int)sizeof(to))
			continue;
		if (attempts == 0)
			str_copy(to, sizeof(to), base);
		if (renameat(s->fds[SPOOL_CUR], names[i], s->fds[SPOOL_NEW],
		    to) == 0)
			done++;
	}
	unhold(s);
	spool_names_free(names, n);
	return done;
}

static int
is_segment(const char *name)
{
	size_t	 n = strlen(name), k = strlen(SEGMENT_SUFFIX);

	return n > k && strcmp(name + n - k, SEGMENT_SUFFIX) == 0;
}

/*
 * The length of the whole lines of the file "fd" of "size" bytes: up to
 * its last newline, read backwards a block at a time.  -1 on error.
 */
static off_t
whole_lines(int fd, off_t size)
{
	char	 block[8192];
	off_t	 at = size;
	ssize_t	 r, i;

	while (at > 0) {
		r = at < (off_t)sizeof(block) ? (ssize_t)at :
		    (ssize_t)sizeof(block);
		if (pread(fd, block, (size_t)r, at - r) != r)
			return -1;
		for (i = r - 1; i >= 0; i--)
			if (block[i] == '\n')
				return at - r + i + 1;
		at -= r;
	}
	return 0;
}

/*
 * One segment its writer left: cut to its whole records, synced, and moved
 * into new/ (or removed, if none is whole).  0 if done, 1 if it is not
 * left (locked, or too young), -1 with "err" set.
 */
static int
recover_segment(struct spool *s, const char *name, long min_age_ms,
    struct err *err)
{
	char		 id[SPOOL_NAME_MAX];
	struct stat	 st;
	off_t		 keep;
	int		 fd, rc = -1;

	if ((fd = openat(s->fds[SPOOL_TMP], name, O_RDWR | O_CLOEXEC)) ==
	    -1) {
		if (errno == ENOENT)
			return 1;	/* moved meanwhile */
		err_set(err, "spool: open %s/tmp/%s: %s", s->dir, name,
		    strerror(errno));
		return -1;
	}
	/* Its writer holds the lock while it lives; a brand new file may not
	 * be locked yet, hence the age. */
	if (flock(fd, LOCK_EX | LOCK_NB) == -1 || fstat(fd, &st) == -1 ||
	    stat_age_ms(&st, 1) < min_age_ms) {
		close(fd);
		return 1;
	}
	snprintf(id, sizeof(id), "%.*s", (int)(strlen(name) -
	    strlen(SEGMENT_SUFFIX)), name);
	if ((keep = whole_lines(fd, st.st_size)) == -1 ||
	    (keep < st.st_size && ftruncate(fd, keep) == -1) ||
	    (s->sync && keep > 0 && fsync(fd) == -1)) {
		err_set(err, "spool: recover %s/tmp/%s: %s", s->dir, name,
		    strerror(errno));
		goto out;
	}
	if (keep == 0) {
		if (unlinkat(s->fds[SPOOL_TMP], name, 0) == -1)
			err_set(err, "spool: remove %s/tmp/%s: %s", s->dir,
			    name, strerror(errno));
		else
			rc = 1;		/* no record in it */
		goto out;
	}
	if (rename_new(s->fds[SPOOL_TMP], name, s->fds[SPOOL_NEW], id) == -1 ||
	    (s->sync && fsync(s->fds[SPOOL_NEW]) == -1)) {
		err_set(err, "spool: move tmp/%s to new/ in %s: %s", name,
		    s->dir, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

long
spool_recover(struct spool *s, long min_age_ms, struct err *err)
{
	char	**names;
	long	 n, i, done = 0;
	int	 rc = 0;

	if ((n = spool_list(s, SPOOL_TMP, &names, (size_t)LONG_MAX, err)) ==
	    -1)
		return -1;
	if (hold(s, err) == 0) {
		for (i = 0; i < n && rc != -1; i++)
			if (is_segment(names[i]) && (rc = recover_segment(s,
			    names[i], min_age_ms, err)) == 0)
				done++;
		unhold(s);
	} else
		rc = -1;
	spool_names_free(names, n);
	return rc == -1 ? -1 : done;
}

long
spool_clean_tmp(struct spool *s, long min_age_ms, struct err *err)
{
	char	**names;
	long	 n, i, done = 0;

	if ((n = spool_list(s, SPOOL_TMP, &names, (size_t)LONG_MAX, err)) ==
	    -1)
		return -1;
	if (hold(s, err) == 0) {
		for (i = 0; i < n; i++)
			if (!is_segment(names[i]) &&
			    age_ms(s->fds[SPOOL_TMP], names[i], 1) >=
			    min_age_ms &&
			    unlinkat(s->fds[SPOOL_TMP], names[i], 0) == 0)
				done++;
		unhold(s);
	}
	spool_names_free(names, n);
	return done;
}

int
spool_stat(struct spool *s, struct spool_stat *st, struct err *err)
{
	struct stat	 sb;
	char		**names;
	long		 n, i;
	int		 d;
	int64_t		 t;

	memset(st, 0, sizeof(*st));
	for (d = 0; d < SPOOL_NDIRS; d++) {
		if ((n = spool_list(s, (enum spool_dir)d, &names,
		    (size_t)LONG_MAX, err)) == -1)
			return -1;
		st->count[d] = n;
		if (hold(s, err) == 0) {
			for (i = 0; i < n; i++) {
				if (fstatat(s->fds[d], names[i], &sb,
				    AT_SYMLINK_NOFOLLOW) == -1)
					continue;
				t = unix_ms(&sb.st_mtim);
				if (st->oldest_ms[d] == 0 ||
				    t < st->oldest_ms[d])
					st->oldest_ms[d] = t;
			}
			unhold(s);
		}
		spool_names_free(names, n);
	}
	return 0;
}

long
spool_retry_failed(struct spool *s, struct err *err)
{
	char	**names, base[SPOOL_NAME_MAX], reason[SPOOL_NAME_MAX + 8];
	long	 n, i, done = 0;
	int	 attempts;

	if ((n = spool_list(s, SPOOL_FAILED, &names, (size_t)LONG_MAX,
	    err)) == -1)
		return -1;
	if (hold(s, err) == -1) {
		spool_names_free(names, n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		parse_name(names[i], base, sizeof(base), &attempts, NULL,
		    NULL);
		if (rename_new(s->fds[SPOOL_FAILED], names[i],
		    s->fds[SPOOL_NEW], base) == -1)
			continue;
		snprintf(reason, sizeof(reason), "%s.reason", names[i]);
		unlinkat(s->fds[SPOOL_FAILED], reason, 0);
		done++;
	}
	unhold(s);
	spool_names_free(names, n);
	return done;
}

long
spool_purge_failed(struct spool *s, long age, struct err *err)
{
	char	**names, reason[SPOOL_NAME_MAX + 8];
	long	 n, i, done = 0;
	int64_t	 a;

	if ((n = spool_list(s, SPOOL_FAILED, &names, (size_t)LONG_MAX,
	    err)) == -1)
		return -1;
	if (hold(s, err) == -1) {
		spool_names_free(names, n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		snprintf(reason, sizeof(reason), "%s.reason", names[i]);
		/* Its age as a failure: when the reason was written. */
		if ((a = age_ms(s->fds[SPOOL_FAILED], reason, 1)) == -1)
			a = age_ms(s->fds[SPOOL_FAILED], names[i], 0);
		if (a < age)
			continue;
		if (unlinkat(s->fds[SPOOL_FAILED], names[i], 0) == 0)
			done++;
		unlinkat(s->fds[SPOOL_FAILED], reason, 0);
	}
	unhold(s);
	spool_names_free(names, n);
	return done;
}
