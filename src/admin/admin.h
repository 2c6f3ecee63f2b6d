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
	const char	*name;		/* "status"; "": the group alone */
	const char	*args;		/* usage after the name */
	const char	*help;		/* one line */
	int		 (*run)(struct admin *, int argc, char *argv[]);
};

extern const struct admin_cmd	admin_spool_cmds[];
extern const struct admin_cmd	admin_key_cmds[];
extern const struct admin_cmd	admin_usage_cmds[];
extern const struct admin_cmd	admin_db_cmds[];

/*
 * Rows of text cells printed as an aligned table (numbers right-aligned),
 * as CSV or as a JSON array of objects keyed by the header.
 */
struct table;

enum table_format {
	TABLE_TEXT,
	TABLE_CSV,
	TABLE_JSON
};

struct table	*table_new(int ncols, const char *const *header);
/* Add a row of "ncols" cells (copied); 0, or -1 out of memory. */
int		 table_add(struct table *, const char *const *cells);
/* 0, or -1 out of memory (nothing printed). */
int		 table_print(struct table *, enum table_format, FILE *);
void		 table_free(struct table *);	/* NULL is fine */

/* Parse "table", "csv" or "json"; -1 if none. */
int		 table_format_parse(const char *);

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

/* A Unix ms time as "2026-11-24 09:30 UTC"; "-" for 0. */
void	 admin_time(long long ms, char *out, size_t size);

/*
 * A time given on the command line: "2026-11-24", "2026-11-24T09:30",
 * "2026-11-24T09:30:05Z", or a duration ("7d", "12h") meaning that long
 * ago.  Returns 0 with Unix ms in "*ms", or -1.
 */
int	 admin_parse_time(const char *, long long *ms);

#endif /* ADMIN_H */
