/*
 * llmgw-admin's commands, one file per group (admin_spool.c, ...), and
 * what they share: the loaded configuration, table output, exit codes.
 */
#ifndef ADMIN_H
#define ADMIN_H

#include <stdio.h>

struct conf;

/* Exit statuses of every command. */
#define ADMIN_OK	0
#define ADMIN_FAIL	1	/* the command could not do its job */
#define ADMIN_USAGE	2	/* the command line was wrong */

struct admin {
	struct conf	*conf;
	const char	*conf_path;
	int		 conf_required;
};

/*
 * A command: "argv[0]" is its last word ("status"); options follow.
 * Returns an ADMIN_ status.
 */
struct admin_cmd {
	const char	*group;		/* "spool" */
	const char	*name;		/* "status" */
	const char	*args;		/* usage after the name */
	const char	*help;		/* one line */
	int		 (*run)(struct admin *, int argc, char *argv[]);
};

extern const struct admin_cmd	admin_spool_cmds[];

/* Print "usage: llmgw-admin <group> <name> <args>" to "fp". */
void	 admin_usage(FILE *fp, const struct admin_cmd *);

/*
 * Report a usage error: the message, then the usage line, on stderr.
 * Returns ADMIN_USAGE.
 */
int	 admin_usage_error(const struct admin_cmd *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/* Report a failure on stderr; returns ADMIN_FAIL. */
int	 admin_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Handle "--help" and reject other options for commands that take none;
 * returns -1 to go on, or the status to exit with.
 */
int	 admin_no_options(const struct admin_cmd *, int argc, char *argv[]);

/* A human duration: "3s", "2m5s", "1h2m", "3d4h"; "-" for negative. */
void	 admin_age(long long ms, char *out, size_t size);

#endif /* ADMIN_H */
