#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "store/spool.h"
#include "store/spool_admin.h"
#include "store/spool_reader.h"
#include "store/spool_writer.h"
#include "../tap.h"

static char	 dir[256];
/* The parent's spool, reachable in the children it forks (its closer
 * thread is not in them, so they cannot close it). */
static struct spool *volatile parent_spool;
static const char *self;	/* argv[0]: this program, for crash_after_put() */

static int
exists(const char *sub, const char *name)
{
	char	 p[512];

	snprintf(p, sizeof(p), "%s/%s/%s", dir, sub, name);
	return access(p, F_OK) == 0;
}

static long
count(struct spool *s, enum spool_dir d)
{
	char		**names;
	struct err	 err;
	long		 n = spool_list(s, d, &names, 100000, &err);

	spool_names_free(names, n);
	return n;
}

/*
 * Wait (up to 2 s) until no segment is open in tmp/: a segment moves into
 * new/ a moment after the last write.  Returns how many are left.
 */
static long
settle(struct spool *s)
{
	long	 n, tries;

	for (tries = 0; (n = count(s, SPOOL_TMP)) > 0 && tries < 200; tries++)
		usleep(10 * 1000);
	return n;
}

/* Make a claimed record look as if its claimant died long ago. */
static void
age_claims(void)
{
	char	 cmd[600];

	snprintf(cmd, sizeof(cmd), "cd %s/cur && for f in *; do "
	    "mv \"$f\" \"$(echo \"$f\" | sed 's/,c[0-9.]*$/,c999999999.1/')\";"
	    " done 2>/dev/null", dir);
	if (system(cmd) != 0)
		diag("renaming claims failed");
}

#define WRITERS		8
#define PER_WRITER	200

struct writer {
	struct spool	*s;
	int		 n;
	int		 failed;
};

static void *
write_many(void *arg)
{
	struct writer	*w = arg;
	struct err	 err;
	char		 rec[64];
	int		 i;

	for (i = 0; i < PER_WRITER; i++) {
		snprintf(rec, sizeof(rec), "{\"id\":\"g%d-%04d\"}", w->n, i);
		if (spool_put(w->s, rec, strlen(rec), &err) == -1)
			w->failed++;
	}
	return NULL;
}

/*
 * Writers at once: each record is in new/ exactly once, one per line,
 * and records share files (one segment).
 */
static void
writers_at_once(struct spool *s)
{
	struct writer	 w[WRITERS];
	pthread_t	 t[WRITERS];
	char		**names, path[512], line[128];
	long		 n, k, records = 0, dups = 0, failed = 0, files = 0;
	static char	 seen[WRITERS][PER_WRITER];
	FILE		*fp;
	struct err	 err;
	int		 i, g, j;

	for (i = 0; i < WRITERS; i++) {
		w[i].s = s;
		w[i].n = i;
		w[i].failed = 0;
		pthread_create(&t[i], NULL, write_many, &w[i]);
	}
	for (i = 0; i < WRITERS; i++) {
		pthread_join(t[i], NULL);
		failed += w[i].failed;
	}
	is_int(failed, 0, "%d writers at once: no write failed", WRITERS);
	is_int(settle(s), 0, "once the writers stop, no segment is left in "
	    "tmp/");
	n = spool_list(s, SPOOL_NEW, &names, 100000, &err);
	for (k = 0; k < n; k++) {
		if (strlen(names[k]) != 32)
			continue;	/* not one of the writers' files */
		snprintf(path, sizeof(path), "%s/new/%s", dir, names[k]);
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		files++;
		while (fgets(line, sizeof(line), fp) != NULL) {
			if (sscanf(line, "{\"id\":\"g%d-%d\"}", &g, &j) != 2 ||
			    g < 0 || g >= WRITERS || j < 0 || j >= PER_WRITER)
				continue;
			dups += seen[g][j]++ > 0;
			records++;
		}
		fclose(fp);
		unlink(path);
	}
	spool_names_free(names, n);
	is_int(records, WRITERS * PER_WRITER, "every record is there");
	is_int(dups, 0, "once");
	ok(files < records, "several to a file: %ld records in %ld files",
	    records, files);
}

/*
 * Writes one after another, each alone (nothing waits when it ends),
 * still share a segment: it lingers 20 ms for more (each write here takes
 * a few ms even under valgrind).
 */
static void
linger(struct spool *s)
{
	struct spool_item	 it;
	struct err		 err;
	char			**names;
	long			 n;
	int			 i, failed = 0;

	for (i = 0; i < 3; i++)
		failed += spool_put(s, "{}", 2, &err) == -1;
	is_int(failed, 0, "three records, one after another");
	is_int(settle(s), 0, "then the segment moves on");
	n = spool_list(s, SPOOL_NEW, &names, 100, &err);
	ok(n == 1 && spool_claim(s, names[0], &it, &err) == 0 &&
	    it.len == 9, "one file, with the three");
	if (n == 1 && it.data != NULL) {
		spool_done(s, &it, &err);
		spool_item_free(&it);
	}
	spool_names_free(names, n);
}

/*
 * With a bound set, records that cannot be written wait in memory, and
 * the closer writes them, in order, once it can.  "blocker": a file where
 * new/ should be.
 */
static void
backlog(struct spool *s, const char *blocker)
{
	struct spool_backlog	 b;
	struct spool_item	 it;
	struct err		 err;
	char			**names;
	long			 n;
	int			 i;

	spool_keep(s, 2);
	ok(spool_put(s, "{\"w\":1}", 7, &err) == 1 &&
	    spool_put(s, "{\"w\":2}", 7, &err) == 1, "new/ is not a folder: "
	    "records kept in memory");
	spool_backlog(s, &b);
	ok(b.records == 2 && b.full && b.failing_ms > 0,
	    "two wait, at the bound");
	ok(spool_put(s, "{\"w\":3}", 7, &err) == 1 &&
	    spool_put(s, "{\"w\":4}", 7, &err) == 1, "up to twice the bound");
	ok(spool_put(s, "{\"w\":5}", 7, &err) == -1 &&
	    strstr(err.msg, "4 records wait") != NULL, "past it, refused: %s",
	    err.msg);
	unlink(blocker);
	for (i = 0; i < 300; i++) {	/* retries back off to 1 s */
		spool_backlog(s, &b);
		if (b.records == 0)
			break;
		usleep(10 * 1000);
	}
	is_int(b.records, 0, "once new/ is back, the closer writes them");
	settle(s);
	n = spool_list(s, SPOOL_NEW, &names, 10, &err);
	ok(n == 1 && spool_claim(s, names[0], &it, &err) == 0 &&
	    it.len == 32 && memcmp(it.data, "{\"w\":1}\n{\"w\":2}\n{\"w\":3}\n"
	    "{\"w\":4}\n", 32) == 0, "all four, in order, in one file");
	if (n == 1 && it.data != NULL) {
		spool_done(s, &it, &err);
		spool_item_free(&it);
	}
	spool_names_free(names, n);
	spool_keep(s, 0);
	close(open(blocker, O_CREAT | O_WRONLY, 0600));
}

/*
 * A record is in its segment when spool_put() returns, before any sync or
 * move: a writer killed (SIGKILL) right after it, with no spool_close()
 * and its closer gone with it, loses nothing: recovery moves the record
 * (or, on a slow day, the closer did before the kill).  The writer is this
 * program again, run by the name it was started with (see main), not a
 * fork of it: a fork of a process with threads may not start threads
 * (ThreadSanitizer says so).
 */
static void
crash_after_put(struct spool *s)
{
	struct spool_item	 it;
	struct err		 err;
	char			**names;
	long			 n, k;
	pid_t			 pid;
	int			 status, found = 0;

	if ((pid = fork()) == 0) {
		execl(self, self, "--put-and-die", dir, (char *)NULL);
		_exit(127);
	}
	ok(pid > 0 && waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) &&
	    WTERMSIG(status) == SIGKILL, "a writer puts a record and is "
	    "killed at once");
	ok(spool_recover(s, 0, &err) >= 0 && count(s, SPOOL_NEW) == 1 &&
	    count(s, SPOOL_TMP) == 0, "its segment is recovered into new/");
	n = spool_list(s, SPOOL_NEW, &names, 100, &err);
	for (k = 0; k < n; k++) {
		if (spool_claim(s, names[k], &it, &err) != 0)
			continue;
		found += it.len == 12 && memcmp(it.data, "{\"crash\":1}\n",
		    12) == 0;
		spool_done(s, &it, &err);
		spool_item_free(&it);
	}
	spool_names_free(names, n);
	is_int(found, 1, "with the record, whole, once");
}

/*
 * The writer of crash_after_put(): put a record into "path", then die as
 * a crash does, with no exit handlers.  Returns only if it cannot put.
 */
static int
put_and_die(const char *path)
{
	struct spool	*s;
	struct err	 err;

	if ((s = spool_open(path, 1)) == NULL ||
	    spool_put(s, "{\"crash\":1}", 11, &err) == -1)
		return 1;
	raise(SIGKILL);
	return 1;
}

/* Write tmp/<name> with "data", last changed long ago. */
static void
old_tmp_file(const char *name, const char *data)
{
	struct timespec	 old[2] = { { 1000, 0 }, { 1000, 0 } };
	char		 path[512];
	FILE		*fp;

	snprintf(path, sizeof(path), "%s/tmp/%s", dir, name);
	if ((fp = fopen(path, "w")) == NULL || fputs(data, fp) == EOF ||
	    fclose(fp) == EOF)
		diag("cannot write %s", path);
	utimensat(AT_FDCWD, path, old, 0);
}

static void
read_new(const char *name, char *out, size_t size)
{
	char	 path[512];
	FILE	*fp;
	size_t	 n = 0;

	snprintf(path, sizeof(path), "%s/new/%s", dir, name);
	if ((fp = fopen(path, "r")) != NULL) {
		n = fread(out, 1, size - 1, fp);
		fclose(fp);
		unlink(path);
	}
	out[n] = '\0';
}

/* Segments their writers left behind move into new/, whole records only. */
static void
recovery(struct spool *s)
{
	struct err	 err;
	char		 path[512], got[128];
	int		 fd;

	old_tmp_file("0008.seg", "{\"a\":1}\n{\"b\":2}\n{\"c\"");
	snprintf(path, sizeof(path), "%s/tmp/0008.seg", dir);
	fd = open(path, O_RDONLY);
	ok(fd != -1 && flock(fd, LOCK_EX) == 0, "a segment, locked by its "
	    "writer");
	is_int(spool_recover(s, 0, &err), 0, "a locked segment is its "
	    "writer's: left alone");
	close(fd);
	utimensat(AT_FDCWD, path, NULL, 0);
	is_int(spool_recover(s, 60000, &err), 0, "unlocked, but written "
	    "just now: left alone too");
	old_tmp_file("0008.seg", "{\"a\":1}\n{\"b\":2}\n{\"c\"");
	is_int(spool_recover(s, 1000, &err), 1, "its writer gone: recovered");
	ok(!exists("tmp", "0008.seg"), "out of tmp/");
	read_new("0008", got, sizeof(got));
	is_str(got, "{\"a\":1}\n{\"b\":2}\n", "into new/ as 0008, the "
	    "record cut short dropped");
	old_tmp_file("0009.seg", "{\"half");
	is_int(spool_recover(s, 1000, &err), 0, "a segment without a whole "
	    "record: nothing to recover");
	ok(!exists("tmp", "0009.seg") && !exists("new", "0009"), "and it is "
	    "removed");
	old_tmp_file("0010.seg", "{}\n");
	is_int(spool_clean_tmp(s, 0, &err), 0, "cleaning tmp/ leaves segments "
	    "to recovery");
	is_int(spool_recover(s, 1000, &err), 1, "which moves them");
	read_new("0010", got, sizeof(got));
	is_str(got, "{}\n", "whole");
}

int
main(int argc, char *argv[])
{
	struct spool		*s;
	struct spool_item	 it;
	struct spool_stat	 st;
	struct err		 err;
	char			**names, id[32], path[512];
	long			 n;
	int			 i, won, pids[4], status;

	if (argc == 3 && strcmp(argv[1], "--put-and-die") == 0)
		return put_and_die(argv[2]);
	self = argv[0];
	snprintf(dir, sizeof(dir), "/tmp/llmgw-test-spool.%ld/deep/er",
	    (long)getpid());
	s = spool_open(dir, 1);
	ok(spool_put(s, "{\"a\":1}", 7, &err) == 0,
	    "put a record, making the folders");
	ok(settle(s) == 0, "its segment leaves tmp/ a moment later");
	n = spool_list(s, SPOOL_NEW, &names, 10, &err);
	ok(n == 1 && strlen(names[0]) == 32, "it is in new/, named by time: %s",
	    n == 1 ? names[0] : "?");
	if (n == 1) {
		ok(spool_claim(s, names[0], &it, &err) == 0 && it.len == 8 &&
		    memcmp(it.data, "{\"a\":1}\n", 8) == 0,
		    "read back: the record, as a line");
		spool_done(s, &it, &err);
		spool_item_free(&it);
	}
	spool_names_free(names, n);
	linger(s);
	/* new/ turned into a file: the write fails, and says why. */
	snprintf(path, sizeof(path), "%s/new", dir);
	rmdir(path);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	ok(spool_put(s, "{}", 2, &err) == -1, "new/ is not a folder: refused");
	{
		char last[256];

		is_int(spool_failures(s, last, sizeof(last)), 1,
		    "the failure is counted");
		ok(strstr(last, "not a directory") != NULL, "with its reason: %s",
		    last);
	}
	backlog(s, path);
	unlink(path);

	ok(spool_put_name(s, "0001", "{\"a\":1}", 7, 0, NULL, &err) == 0 &&
	    exists("new", "0001"), "put by name");
	ok(spool_put_name(s, "0001", "x", 1, 0, NULL, &err) == 0,
	    "the same name again: taken to be the same record");
	is_int(count(s, SPOOL_TMP), 0, "and the attempt leaves no tmp file");
	for (i = 2; i <= 5; i++) {
		snprintf(id, sizeof(id), "%04d", i);
		spool_put_name(s, id, "{}", 2, 0, NULL, &err);
	}
	n = spool_list(s, SPOOL_NEW, &names, 3, &err);
	ok(n == 3 && strcmp(names[0], "0001") == 0 &&
	    strcmp(names[2], "0003") == 0, "listed oldest first, at most 3");
	spool_names_free(names, n);

	ok(spool_claim(s, "0001", &it, &err) == 0, "claim");
	ok(it.len == 7 && memcmp(it.data, "{\"a\":1}", 7) == 0,
	    "an existing record is never replaced");
	ok(!exists("new", "0001") && count(s, SPOOL_CUR) == 1,
	    "moved to cur/");
	ok(strstr(it.cur, ",c") != NULL, "tagged with the claimant: %s",
	    it.cur);
	{
		struct spool_item it2;

		is_int(spool_claim(s, "0001", &it2, &err), SPOOL_TAKEN,
		    "a second claim loses, quietly");
	}
	ok(spool_release(s, &it, 1, &err) == 0, "release after a failed attempt");
	ok(exists("new", "0001,a1"), "back in new/ with one attempt counted");
	spool_item_free(&it);
	ok(spool_claim(s, "0001,a1", &it, &err) == 0 && it.attempts == 1,
	    "claim again: attempts read from the name");
	ok(spool_fail(s, &it, 2, "webhook said 500", &err) == 0, "give up");
	ok(exists("failed", "0001") && exists("failed", "0001.reason"),
	    "into failed/, with a reason beside it");
	spool_item_free(&it);
	ok(spool_claim(s, "0002", &it, &err) == 0 &&
	    spool_done(s, &it, &err) == 0, "claim and deliver");
	ok(!exists("cur", it.cur), "delivered records are removed");
	spool_item_free(&it);

	/* A claimant that died: its claim is reclaimed, a live one's not. */
	ok(spool_claim(s, "0003", &it, &err) == 0, "claim 0003");
	spool_item_free(&it);
	is_int(spool_reclaim(s, 0, &err), 0, "our own claim is not reclaimed");
	age_claims();
	is_int(spool_reclaim(s, 60000, &err), 0,
	    "a dead claimant's record waits for the timeout");
	is_int(spool_reclaim(s, 0, &err), 1, "then it is reclaimed");
	ok(exists("new", "0003"), "back in new/");

	ok(spool_stat(s, &st, &err) == 0, "status");
	ok(st.count[SPOOL_NEW] == 3 && st.count[SPOOL_FAILED] == 1 &&
	    st.count[SPOOL_CUR] == 0, "counts per folder (reasons not counted)");
	ok(st.oldest_ms[SPOOL_NEW] > 0, "oldest time known");
	is_int(spool_purge_failed(s, 3600000, &err), 0,
	    "purge keeps recent failures");
	is_int(spool_retry_failed(s, &err), 1, "retry: failed -> new");
	ok(exists("new", "0001") && !exists("failed", "0001.reason"),
	    "with attempts reset and the reason gone");

	/* Four processes race for 200 records: each is taken exactly once. */
	parent_spool = s;
	for (i = 0; i < 200; i++) {
		snprintf(id, sizeof(id), "r%04d", i);
		spool_put_name(s, id, "{}", 2, 0, NULL, &err);
	}
	for (i = 0; i < 4; i++) {
		if ((pids[i] = fork()) == 0) {
			struct spool *c = spool_open(dir, 0);
			long k, got = 0, m;

			m = spool_list(c, SPOOL_NEW, &names, 100000, &err);
			for (k = 0; k < m; k++)
				if (spool_claim(c, names[k], &it, &err) == 0) {
					got++;
					spool_done(c, &it, &err);
					spool_item_free(&it);
				}
			spool_names_free(names, m);
			spool_close(c);
			/* Not the parent's spool: its closer thread is not
			 * in this process. */
			_exit(got > 255 ? 255 : (int)got);
		}
	}
	won = 0;
	for (i = 0; i < 4; i++) {
		waitpid(pids[i], &status, 0);
		won += WEXITSTATUS(status);
	}
	is_int(won, 204, "200 records + 4 others claimed exactly once in all");
	is_int(count(s, SPOOL_NEW) + count(s, SPOOL_CUR), 0, "none left");

	writers_at_once(s);
	recovery(s);
	crash_after_put(s);

	/* A consumer taking a file apart writes records under names. */
	ok(spool_put_name(s, "0007.1", "{}", 2, 2, NULL, &err) == 0 &&
	    exists("new", "0007.1,a2"), "put by name into new/, attempts kept");
	ok(spool_put_name(s, "0007.1", "{}", 2, 2, NULL, &err) == 0,
	    "again (after a crash): already there is fine");
	ok(spool_put_name(s, "0007.2", "{}", 2, 10, "sink said 400", &err) ==
	    0 && exists("failed", "0007.2") && exists("failed", "0007.2.reason"),
	    "put by name into failed/, with the reason");
	is_int(spool_retry_failed(s, &err), 1, "and retried from there");
	snprintf(path, sizeof(path), "rm -f %s/new/0007.*", dir);
	if (system(path) != 0)
		diag("cleanup of 0007.* failed");

	/* tmp/ files of writers that crashed are cleaned up. */
	snprintf(path, sizeof(path), "%s/tmp/stale.1", dir);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	{
		struct timespec old[2] = { { 1000, 0 }, { 1000, 0 } };

		utimensat(AT_FDCWD, path, old, 0);
	}
	is_int(spool_clean_tmp(s, 3600000, &err), 1, "stale tmp file removed");
	is_int(spool_purge_failed(s, 0, &err), 0, "nothing failed to purge");

	ok(spool_check(dir, &err) == 0, "check: writable");
	ok(spool_check("/dev/null/x", &err) == -1, "check: not a directory");
	spool_close(s);
	snprintf(path, sizeof(path), "rm -rf /tmp/llmgw-test-spool.%ld",
	    (long)getpid());
	if (system(path) != 0)
		diag("cleanup failed");
	return done_testing();
}
