/*
 * The spool's folders: opening them, writing a file whole, listing, and
 * the helpers its parts share (spool_impl.h).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/analyzer.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/io.h"
#include "core/reqid.h"
#include "core/str.h"
#include "perm.h"
#include "spool_impl.h"

const char *const spool_subdirs[SPOOL_NDIRS] = { "tmp", "new", "cur",
	"failed" };

const char *
spool_dir_name(enum spool_dir d)
{
	return spool_subdirs[d];
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
		if (mkdir(p, perm_dir_mode()) == 0) {
			if (perm_fix_path(p, 1) == -1) {
				err_set(err, "spool: chmod %s: %s", p,
				    strerror(errno));
				return -1;
			}
		} else if (errno != EEXIST || stat(p, &st) == -1 ||
		    !S_ISDIR(st.st_mode)) {
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
		    spool_subdirs[i]) >= (int)sizeof(path)) {
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

int
spool_hold(struct spool *s, struct err *err)
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

void
spool_unhold(struct spool *s)
{
	pthread_rwlock_unlock(&s->lock);
}

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
	buf_init(&s->seg.backlog, BUF_NOCAP);
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
	int	 i;

	if (s == NULL)
		return;
	spool_writer_stop(s);
	for (i = 0; i < SPOOL_NDIRS; i++)
		if (s->fds[i] != -1)
			close(s->fds[i]);
	pthread_mutex_destroy(&s->seg.lock);
	pthread_cond_destroy(&s->seg.wake);
	buf_free(&s->seg.backlog);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->errlock);
	free(s->dir);
	free(s);
}

int
spool_rename_new(int fromfd, const char *from, int tofd, const char *to)
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

void
spool_note_failure(struct spool *s, const struct err *err)
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
	    perm_file_mode())) == -1)
		return 1;
	if (perm_fix(fd, 0) == -1 || io_write_all(fd, data, len) == -1 ||
	    (s->sync && fsync(fd) == -1)) {
		err_set(err, "spool: write %s/%s/%s: %s", s->dir, spool_subdirs[to],
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
		err_set(err, "spool: link %s/%s in %s: %s", spool_subdirs[to], name,
		    s->dir, strerror(e));
		errno = e;	/* EEXIST is for the caller to judge */
		return -1;
	}
	if (close(fd) == -1) {
		err_set(err, "spool: close %s/%s/%s: %s", s->dir, spool_subdirs[to],
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
int
spool_put_file(struct spool *s, enum spool_dir to, const char *name,
    const char *data, size_t len, int exist_ok, struct err *err)
{
	char	 tmp[SPOOL_NAME_MAX + 24];
	int	 fd = -1, created = 0, rc;

	if (spool_hold(s, err) == -1)
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
	    O_CLOEXEC, perm_file_mode())) == -1) {
		err_set(err, "spool: create %s/tmp/%s: %s", s->dir, tmp,
		    strerror(errno));
		goto fail;
	}
	created = 1;
	if (perm_fix(fd, 0) == -1) {
		err_set(err, "spool: chmod %s/tmp/%s: %s", s->dir, tmp,
		    strerror(errno));
		goto fail;
	}
	if (io_write_all(fd, data, len) == -1) {
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
	if (spool_rename_new(s->fds[SPOOL_TMP], tmp, s->fds[to], name) == -1 &&
	    !(exist_ok && errno == EEXIST)) {
		err_set(err, "spool: rename tmp/%s to %s/%s in %s: %s", tmp,
		    spool_subdirs[to], name, s->dir, strerror(errno));
		goto fail;
	}
	if (exist_ok)
		unlinkat(s->fds[SPOOL_TMP], tmp, 0);	/* if it was there */
	created = 0;
linked:
	/* The new name itself must survive a power loss too. */
	if (s->sync && fsync(s->fds[to]) == -1) {
		err_set(err, "spool: fsync %s/%s: %s", s->dir, spool_subdirs[to],
		    strerror(errno));
		spool_unhold(s);
		return -1;	/* it is there; only its durability is in doubt */
	}
	spool_unhold(s);
	return 0;
fail:
	if (fd != -1)
		close(fd);
	if (created)
		unlinkat(s->fds[SPOOL_TMP], tmp, 0);
	spool_unhold(s);
	return -1;
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
	if (spool_hold(s, err) == 0) {
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
		spool_unhold(s);
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

ANALYZER_LEAKS_OFF	/* the names are the caller's to free */
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
	if (spool_hold(s, err) == -1)
		return -1;
	fd = openat(s->fds[which], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	spool_unhold(s);
	if (fd == -1 || (d = fdopendir(fd)) == NULL) {
		err_set(err, "spool: read %s/%s: %s", s->dir, spool_subdirs[which],
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
	err_set(err, "spool: out of memory listing %s", spool_subdirs[which]);
	return -1;
}
ANALYZER_LEAKS_ON

void
spool_parse_name(const char *name, char *base, size_t size, int *attempts,
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

int64_t
spool_unix_ms(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000 + t->tv_nsec / 1000000;
}

/* Age in ms of a file's last change: its data, or its status (a rename
 * sets that). */
int64_t
spool_stat_age_ms(const struct stat *st, int use_mtime)
{
	return clock_wall_ms() - spool_unix_ms(use_mtime ? &st->st_mtim :
	    &st->st_ctim);
}

int64_t
spool_age_ms(int dirfd, const char *name, int use_mtime)
{
	struct stat	 st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1)
		return -1;
	return spool_stat_age_ms(&st, use_mtime);
}

int
spool_is_segment(const char *name)
{
	size_t	 n = strlen(name), k = strlen(SEGMENT_SUFFIX);

	return n > k && strcmp(name + n - k, SEGMENT_SUFFIX) == 0;
}
