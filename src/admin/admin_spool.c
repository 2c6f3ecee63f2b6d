/*
 * llmgw-admin spool status | retry | purge --older-than DURATION
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "store/conf.h"
#include "store/conf_syntax.h"
#include "store/spool_admin.h"
#include "admin.h"

static int	spool_status(struct admin *, int, char *[]);
static int	spool_retry(struct admin *, int, char *[]);
static int	spool_purge(struct admin *, int, char *[]);

const struct admin_cmd admin_spool_cmds[] = {
	{ "spool", "status", "",
	    "Records per spool folder, the oldest waiting, the last error.",
	    spool_status },
	{ "spool", "retry", "",
	    "Move every record in failed/ back to new/ for another try.",
	    spool_retry },
	{ "spool", "purge", "--older-than DURATION",
	    "Delete failed/ records that failed more than DURATION ago.",
	    spool_purge },
	{ NULL, NULL, NULL, NULL, NULL }
};

/* What llmgw-spoold last said in .spoold-status, if anything. */
static void
print_consumer(const char *dir)
{
	char	 path[4096], line[512], err[512] = "";
	long	 pid = 0;
	unsigned long delivered = 0, failed = 0;
	long long t = 0;
	FILE	*fp;

	snprintf(path, sizeof(path), "%s/.spoold-status", dir);
	if ((fp = fopen(path, "r")) == NULL) {
		printf("consumer: no llmgw-spoold has run on this spool\n");
		return;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, "pid ", 4) == 0)
			pid = strtol(line + 4, NULL, 10);
		else if (strncmp(line, "time ", 5) == 0)
			t = strtoll(line + 5, NULL, 10);
		else if (strncmp(line, "delivered ", 10) == 0)
			delivered = strtoul(line + 10, NULL, 10);
		else if (strncmp(line, "failed ", 7) == 0)
			failed = strtoul(line + 7, NULL, 10);
		else if (strncmp(line, "last_error ", 11) == 0)
			snprintf(err, sizeof(err), "%s", line + 11);
	}
	fclose(fp);
	{
		char	 age[32];

		admin_age(clock_wall_ms() - t, age, sizeof(age));
		printf("consumer: pid %ld (%s), last seen %s ago, %lu "
		    "delivered, %lu failed\n", pid, pid > 0 && kill((pid_t)pid,
		    0) == 0 ? "running" : "not running", age, delivered,
		    failed);
	}
	printf("last error: %s\n", err[0] != '\0' ? err : "none");
}

static int
spool_status(struct admin *a, int argc, char *argv[])
{
	struct spool		*s;
	struct spool_stat	 st;
	struct err		 err;
	char			 age[32];
	int			 rc, d;

	if ((rc = admin_no_options(&admin_spool_cmds[0], argc, argv)) != -1)
		return rc;
	if ((s = spool_open(a->conf->spool_dir, 0)) == NULL)
		return admin_fail("out of memory");
	if (spool_stat(s, &st, &err) == -1) {
		spool_close(s);
		return admin_fail("%s", err.msg);
	}
	spool_close(s);
	printf("spool: %s\n", a->conf->spool_dir);
	printf("%-8s %8s  %s\n", "folder", "files", "oldest");
	for (d = 0; d < SPOOL_NDIRS; d++) {
		if (st.count[d] > 0)
			admin_age(clock_wall_ms() - st.oldest_ms[d], age,
			    sizeof(age));
		else
			snprintf(age, sizeof(age), "-");
		printf("%-8s %8ld  %s\n", spool_dir_name((enum spool_dir)d),
		    st.count[d], age);
	}
	print_consumer(a->conf->spool_dir);
	return ADMIN_OK;
}

static int
spool_retry(struct admin *a, int argc, char *argv[])
{
	struct spool	*s;
	struct err	 err;
	long		 n;
	int		 rc;

	if ((rc = admin_no_options(&admin_spool_cmds[1], argc, argv)) != -1)
		return rc;
	if ((s = spool_open(a->conf->spool_dir, 1)) == NULL)
		return admin_fail("out of memory");
	n = spool_retry_failed(s, &err);
	spool_close(s);
	if (n == -1)
		return admin_fail("%s", err.msg);
	printf("%ld record%s moved from failed/ to new/\n", n,
	    n == 1 ? "" : "s");
	return ADMIN_OK;
}

static int
spool_purge(struct admin *a, int argc, char *argv[])
{
	const struct admin_cmd	*c = &admin_spool_cmds[2];
	struct spool		*s;
	struct err		 err;
	long			 age = -1, n;
	int			 i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			admin_usage(stdout, c);
			printf("%s\nDURATION is like 30m, 12h or 7d.\n",
			    c->help);
			return ADMIN_OK;
		}
		if (strcmp(argv[i], "--older-than") == 0 && i + 1 < argc) {
			if (conf_parse_duration_ms(argv[++i], &age, &err) ==
			    -1)
				return admin_usage_error(c, "--older-than: %s",
				    err.msg);
		} else
			return admin_usage_error(c, "unexpected argument "
			    "\"%s\"", argv[i]);
	}
	if (age == -1)
		return admin_usage_error(c, "--older-than DURATION is needed "
		    "(records are never purged by accident)");
	if ((s = spool_open(a->conf->spool_dir, 1)) == NULL)
		return admin_fail("out of memory");
	n = spool_purge_failed(s, age, &err);
	spool_close(s);
	if (n == -1)
		return admin_fail("%s", err.msg);
	printf("%ld failed record%s deleted\n", n, n == 1 ? "" : "s");
	return ADMIN_OK;
}
