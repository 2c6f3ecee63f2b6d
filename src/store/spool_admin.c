/*
 * What llmgw-admin does to a spool: count its records, retry and purge
 * what failed.
 */
#include "config.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "spool_admin.h"
#include "spool_impl.h"

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
		if (spool_hold(s, err) == 0) {
			for (i = 0; i < n; i++) {
				if (fstatat(s->fds[d], names[i], &sb,
				    AT_SYMLINK_NOFOLLOW) == -1)
					continue;
				t = spool_unix_ms(&sb.st_mtim);
				if (st->oldest_ms[d] == 0 ||
				    t < st->oldest_ms[d])
					st->oldest_ms[d] = t;
			}
			spool_unhold(s);
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
	if (spool_hold(s, err) == -1) {
		spool_names_free(names, n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		spool_parse_name(names[i], base, sizeof(base), &attempts, NULL,
		    NULL);
		if (spool_rename_new(s->fds[SPOOL_FAILED], names[i],
		    s->fds[SPOOL_NEW], base) == -1)
			continue;
		snprintf(reason, sizeof(reason), "%s.reason", names[i]);
		unlinkat(s->fds[SPOOL_FAILED], reason, 0);
		done++;
	}
	spool_unhold(s);
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
	if (spool_hold(s, err) == -1) {
		spool_names_free(names, n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		snprintf(reason, sizeof(reason), "%s.reason", names[i]);
		/* Its age as a failure: when the reason was written. */
		if ((a = spool_age_ms(s->fds[SPOOL_FAILED], reason, 1)) == -1)
			a = spool_age_ms(s->fds[SPOOL_FAILED], names[i], 0);
		if (a < age)
			continue;
		if (unlinkat(s->fds[SPOOL_FAILED], names[i], 0) == 0)
			done++;
		unlinkat(s->fds[SPOOL_FAILED], reason, 0);
	}
	spool_unhold(s);
	spool_names_free(names, n);
	return done;
}
