/*
 * The consumer's side of the spool: claiming records, settling them, and
 * putting back what writers and consumers that died left behind.  A
 * consumer is one thread; no locking is needed beyond the folders'.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "core/proc.h"
#include "core/str.h"
#include "spool_impl.h"
#include "spool_reader.h"

#define SPOOL_RECORD_MAX	(64L * 1024 * 1024)	/* one file, read back */

/*
 * failed/<base>.reason: when, after how many attempts, why.  Written
 * whole under its name (never seen empty or half-written) before the
 * record goes there: a crash in between leaves a harmless orphan, which
 * the next failure of that record replaces.  0, or -1 with "err" set.
 */
static int
write_reason(struct spool *s, const char *base, int attempts,
    const char *reason, struct err *err)
{
	char	 name[SPOOL_NAME_MAX + 8], when[32], *text;
	time_t	 now = time(NULL);
	int	 len, rc;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	snprintf(name, sizeof(name), "%s.reason", base);
	if ((len = asprintf(&text, "%s after %d attempt%s: %s\n", when,
	    attempts, attempts == 1 ? "" : "s", reason)) == -1) {
		err_set(err, "spool: failed/%s in %s: out of memory", name,
		    s->dir);
		return -1;
	}
	if ((rc = spool_hold(s, err)) == 0) {
		if (unlinkat(s->fds[SPOOL_FAILED], name, 0) == -1 &&
		    errno != ENOENT) {
			err_set(err, "spool: remove the old failed/%s in %s: %s",
			    name, s->dir, strerror(errno));
			rc = -1;
		}
		spool_unhold(s);
	}
	if (rc == 0)
		rc = spool_put_file(s, SPOOL_FAILED, name, text, (size_t)len, 0,
		    err);
	free(text);
	return rc;
}

int
spool_fail(struct spool *s, struct spool_item *it, int attempts,
    const char *reason, struct err *err)
{
	int	 rc = 0;

	if (write_reason(s, it->base, attempts, reason, err) == -1 ||
	    spool_hold(s, err) == -1)
		return -1;
	if (renameat(s->fds[SPOOL_CUR], it->cur, s->fds[SPOOL_FAILED],
	    it->base) == -1) {
		err_set(err, "spool: move cur/%s to failed/ in %s: %s",
		    it->cur, s->dir, strerror(errno));
		rc = -1;
	}
	spool_unhold(s);
	return rc;
}

int
spool_put_name(struct spool *s, const char *name, const char *data,
    size_t len, int attempts, const char *reason, struct err *err)
{
	char	 as[SPOOL_NAME_MAX];

	if (reason != NULL)
		return write_reason(s, name, attempts, reason, err) == -1 ? -1 :
		    spool_put_file(s, SPOOL_FAILED, name, data, len, 1, err);
	if (attempts <= 0)
		return spool_put_file(s, SPOOL_NEW, name, data, len, 1, err);
	if (snprintf(as, sizeof(as), "%s,a%d", name, attempts) >=
	    (int)sizeof(as)) {
		err_set(err, "spool: name too long: %s", name);
		return -1;
	}
	return spool_put_file(s, SPOOL_NEW, as, data, len, 1, err);
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

enum spool_claim
spool_claim(struct spool *s, const char *name, struct spool_item *it,
    struct err *err)
{
	unsigned long long	 self_start = proc_self_start();
	enum spool_claim	 rc = SPOOL_CLAIMED;
	int			 n;

	memset(it, 0, sizeof(*it));
	spool_parse_name(name, it->base, sizeof(it->base), &it->attempts, NULL,
	    NULL);
	if (it->attempts > 0)
		n = snprintf(it->cur, sizeof(it->cur), "%s,a%d,c%ld.%llu",
		    it->base, it->attempts, (long)getpid(), self_start);
	else
		n = snprintf(it->cur, sizeof(it->cur), "%s,c%ld.%llu",
		    it->base, (long)getpid(), self_start);
	if (n >= (int)sizeof(it->cur)) {
		err_set(err, "spool: name too long: %s", name);
		return SPOOL_UNCLAIMED;
	}
	if (spool_hold(s, err) == -1)
		return SPOOL_UNCLAIMED;
	if (renameat(s->fds[SPOOL_NEW], name, s->fds[SPOOL_CUR], it->cur) ==
	    -1) {
		if (errno == ENOENT)
			rc = SPOOL_TAKEN;
		else {
			err_set(err, "spool: claim new/%s in %s: %s", name,
			    s->dir, strerror(errno));
			rc = SPOOL_UNCLAIMED;
		}
	} else if (read_record(s->fds[SPOOL_CUR], it->cur, it, err) == -1) {
		err_prefix(err, "spool: cur/ in %s", s->dir);
		rc = SPOOL_UNREADABLE;
	}
	spool_unhold(s);
	return rc;
}

int
spool_done(struct spool *s, struct spool_item *it, struct err *err)
{
	int	 rc = 0;

	if (spool_hold(s, err) == -1)
		return -1;
	if (unlinkat(s->fds[SPOOL_CUR], it->cur, 0) == -1) {
		err_set(err, "spool: remove cur/%s in %s: %s", it->cur, s->dir,
		    strerror(errno));
		rc = -1;
	}
	spool_unhold(s);
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
	if (spool_hold(s, err) == -1)
		return -1;
	if (renameat(s->fds[SPOOL_CUR], it->cur, s->fds[SPOOL_NEW], name) ==
	    -1) {
		err_set(err, "spool: return cur/%s to new/ in %s: %s", it->cur,
		    s->dir, strerror(errno));
		rc = -1;
	}
	spool_unhold(s);
	return rc;
}

void
spool_item_free(struct spool_item *it)
{
	free(it->data);
	it->data = NULL;
	it->len = 0;
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
	if (spool_hold(s, err) == -1) {
		spool_names_free(names, n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		spool_parse_name(names[i], base, sizeof(base), &attempts, &pid,
		    &start);
		/* A live claimant holds it, even a slow one. */
		if (proc_alive(pid, start))
			continue;
		if (spool_age_ms(s->fds[SPOOL_CUR], names[i], 0) < min_age_ms)
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
	spool_unhold(s);
	spool_names_free(names, n);
	return done;
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
	    spool_stat_age_ms(&st, 1) < min_age_ms) {
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
	if (spool_rename_new(s->fds[SPOOL_TMP], name, s->fds[SPOOL_NEW], id) == -1 ||
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
	if (spool_hold(s, err) == 0) {
		for (i = 0; i < n && rc != -1; i++)
			if (spool_is_segment(names[i]) && (rc = recover_segment(s,
			    names[i], min_age_ms, err)) == 0)
				done++;
		spool_unhold(s);
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
	if (spool_hold(s, err) == 0) {
		for (i = 0; i < n; i++)
			if (!spool_is_segment(names[i]) &&
			    spool_age_ms(s->fds[SPOOL_TMP], names[i], 1) >=
			    min_age_ms &&
			    unlinkat(s->fds[SPOOL_TMP], names[i], 0) == 0)
				done++;
		spool_unhold(s);
	}
	spool_names_free(names, n);
	return done;
}
