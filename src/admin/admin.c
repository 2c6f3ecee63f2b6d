/*
 * llmgw-admin: the administration tool.  Options in, one command run,
 * exit status out (0 done, 1 failed, 2 usage error).
 */
#include "config.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/analyzer.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "store/conf.h"
#include "store/perm.h"
#include "store/conf_syntax.h"
#include "admin.h"

static const struct admin_cmd *const groups[] = {
	admin_key_cmds,
	admin_usage_cmds,
	admin_db_cmds,
	admin_spool_cmds,
};

#define NGROUPS	(sizeof(groups) / sizeof(groups[0]))

static void
usage(FILE *fp)
{
	const struct admin_cmd	*c;
	size_t			 g;

	fprintf(fp, "usage: llmgw-admin [--config FILE] COMMAND [ARGS]\n"
	    "       llmgw-admin --version | --help\n\ncommands:\n");
	for (g = 0; g < NGROUPS; g++)
		for (c = groups[g]; c->name != NULL; c++)
			fprintf(fp, "  %s%s%s%s%s\n      %s\n", c->group,
			    c->name[0] != '\0' ? " " : "", c->name,
			    c->args[0] != '\0' ? " " : "", c->args, c->help);
	fprintf(fp, "\n\"llmgw-admin COMMAND --help\" tells more.\n");
}

void
admin_usage(FILE *fp, const struct admin_cmd *c)
{
	fprintf(fp, "usage: llmgw-admin %s%s%s%s%s\n", c->group,
	    c->name[0] != '\0' ? " " : "", c->name,
	    c->args[0] != '\0' ? " " : "", c->args);
}

int
admin_usage_error(const struct admin_cmd *c, const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "llmgw-admin %s%s%s: ", c->group,
	    c->name[0] != '\0' ? " " : "", c->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	admin_usage(stderr, c);
	return ADMIN_USAGE;
}

int
admin_fail(const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "llmgw-admin: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return ADMIN_FAIL;
}

int
admin_no_options(const struct admin_cmd *c, int argc, char *argv[])
{
	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		admin_usage(stdout, c);
		printf("%s\n", c->help);
		return ADMIN_OK;
	}
	if (argc > 1)
		return admin_usage_error(c, "unexpected argument \"%s\"",
		    argv[1]);
	return -1;
}

void
admin_age(long long ms, char *out, size_t size)
{
	long long	 s = ms / 1000;

	if (ms < 0)
		snprintf(out, size, "-");
	else if (s < 60)
		snprintf(out, size, "%llds", s);
	else if (s < 3600)
		snprintf(out, size, "%lldm%llds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(out, size, "%lldh%lldm", s / 3600, s % 3600 / 60);
	else
		snprintf(out, size, "%lldd%lldh", s / 86400, s % 86400 / 3600);
}

void
admin_time(long long ms, char *out, size_t size)
{
	struct tm	 tm;
	time_t		 t = (time_t)(ms / 1000);

	if (ms == 0) {
		snprintf(out, size, "-");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%d %H:%M UTC", &tm);
}

int
admin_parse_time(const char *s, long long *ms)
{
	struct err	 err;
	struct tm	 tm;
	const char	*end;
	long		 ago;

	if (conf_parse_duration_ms(s, &ago, &err) == 0 &&
	    strspn(s, "0123456789") < strlen(s)) {
		*ms = clock_wall_ms() - ago;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	if ((end = strptime(s, "%Y-%m-%d", &tm)) == NULL)
		return -1;
	if (*end == 'T' || *end == ' ') {
		if ((end = strptime(end + 1, "%H:%M", &tm)) == NULL)
			return -1;
		if (*end == ':' && (end = strptime(end + 1, "%S", &tm)) == NULL)
			return -1;
		if (*end == 'Z')
			end++;
	}
	if (*end != '\0')
		return -1;
	*ms = (long long)timegm(&tm) * 1000;
	return 0;
}

struct table {
	int	 ncols;
	char	**cells;	/* rows * ncols, header first */
	size_t	 nrows;
	size_t	 cap;
};

struct table *
table_new(int ncols, const char *const *header)
{
	struct table	*t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->ncols = ncols;
	if (table_add(t, header) == -1) {
		table_free(t);
		return NULL;
	}
	return t;
}

ANALYZER_LEAKS_OFF	/* each cell is freed by table_free() */
int
table_add(struct table *t, const char *const *cells)
{
	char	**n, **row;
	int	 i;

	if (t->nrows == t->cap) {
		t->cap = t->cap == 0 ? 16 : t->cap * 2;
		if ((n = realloc(t->cells, t->cap * (size_t)t->ncols *
		    sizeof(*n))) == NULL)
			return -1;
		t->cells = n;
	}
	row = t->cells + t->nrows * (size_t)t->ncols;
	for (i = 0; i < t->ncols; i++)
		if ((row[i] = strdup(cells[i] != NULL ? cells[i] : "")) ==
		    NULL) {
			while (i-- > 0)		/* the row is not counted */
				free(row[i]);
			return -1;
		}
	t->nrows++;
	return 0;
}
ANALYZER_LEAKS_ON

void
table_free(struct table *t)
{
	size_t	 i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nrows * (size_t)t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

int
table_format_parse(const char *s)
{
	if (strcmp(s, "table") == 0)
		return TABLE_TEXT;
	if (strcmp(s, "csv") == 0)
		return TABLE_CSV;
	if (strcmp(s, "json") == 0)
		return TABLE_JSON;
	return -1;
}

/* A whole cell that reads as a number ("2026-12-04" does not). */
static int
is_number(const char *s)
{
	char	*end;

	if (*s == '\0' || strspn(s, "0123456789.-") != strlen(s))
		return 0;
	(void)strtod(s, &end);
	return *end == '\0';
}

/* A cell: row "r", column "c". */
static const char *
cell_at(const struct table *t, size_t r, int c)
{
	return t->cells[r * (size_t)t->ncols + (size_t)c];
}

static void
print_csv(const struct table *t, FILE *fp)
{
	const char	*cell;
	size_t		 r;
	int		 c;

	for (r = 0; r < t->nrows; r++)
		for (c = 0; c < t->ncols; c++) {
			cell = cell_at(t, r, c);
			if (strpbrk(cell, ",\"\n") != NULL) {
				fputc('"', fp);
				for (; *cell != '\0'; cell++) {
					if (*cell == '"')
						fputc('"', fp);
					fputc(*cell, fp);
				}
				fputc('"', fp);
			} else
				fputs(cell, fp);
			fputc(c + 1 == t->ncols ? '\n' : ',', fp);
		}
}

/* An array of objects keyed by the header: 0, or -1 out of memory. */
static int
print_json(const struct table *t, FILE *fp)
{
	struct buf	 b;
	const char	*cell;
	size_t		 r;
	int		 c, rc;

	buf_init(&b, BUF_NOCAP);
	rc = buf_addc(&b, '[');
	for (r = 1; r < t->nrows; r++) {
		rc |= buf_adds(&b, r == 1 ? "{" : ",\n{");
		for (c = 0; c < t->ncols; c++) {
			cell = cell_at(t, r, c);
			if (c > 0)
				rc |= buf_addc(&b, ',');
			rc |= json_add_cstr(&b, cell_at(t, 0, c));
			rc |= buf_addc(&b, ':');
			if (is_number(cell))
				rc |= buf_adds(&b, cell);
			else if (strcmp(cell, "-") == 0)
				rc |= buf_adds(&b, "null");
			else
				rc |= json_add_cstr(&b, cell);
		}
		rc |= buf_addc(&b, '}');
	}
	rc |= buf_adds(&b, "]\n");
	if (rc == 0)
		fputs(buf_str(&b), fp);
	buf_free(&b);
	return rc;
}

static void
print_text(const struct table *t, FILE *fp)
{
	const char	*cell;
	size_t		 r, w[32];
	int		 c;

	for (c = 0; c < t->ncols && c < 32; c++) {
		w[c] = 0;
		for (r = 0; r < t->nrows; r++)
			if (strlen(cell_at(t, r, c)) > w[c])
				w[c] = strlen(cell_at(t, r, c));
	}
	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols && c < 32; c++) {
			cell = cell_at(t, r, c);
			if (c + 1 == t->ncols)
				fprintf(fp, "%s", cell);
			else if (r > 0 && is_number(cell))
				fprintf(fp, "%*s  ", (int)w[c], cell);
			else
				fprintf(fp, "%-*s  ", (int)w[c], cell);
		}
		fputc('\n', fp);
	}
}

int
table_print(struct table *t, enum table_format f, FILE *fp)
{
	switch (f) {
	case TABLE_CSV:
		print_csv(t, fp);
		return 0;
	case TABLE_JSON:
		return print_json(t, fp);
	case TABLE_TEXT:
		break;
	}
	print_text(t, fp);
	return 0;
}

static const struct admin_cmd *
find(const char *group, const char *name, int *group_known)
{
	const struct admin_cmd	*c;
	size_t			 g;

	*group_known = 0;
	for (g = 0; g < NGROUPS; g++)
		for (c = groups[g]; c->name != NULL; c++) {
			if (strcmp(c->group, group) != 0)
				continue;
			*group_known = 1;
			if (c->name[0] == '\0' ||
			    (name != NULL && strcmp(c->name, name) == 0))
				return c;
		}
	return NULL;
}

static void
group_usage(FILE *fp, const char *group)
{
	const struct admin_cmd	*c;
	size_t			 g;

	for (g = 0; g < NGROUPS; g++)
		for (c = groups[g]; c->name != NULL; c++)
			if (strcmp(c->group, group) == 0)
				admin_usage(fp, c);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	const struct admin_cmd	*cmd;
	struct admin		 a;
	struct err		 err;
	int			 ch, known, rc;

	memset(&a, 0, sizeof(a));
	/* Options stop at the command: "+" keeps getopt from permuting. */
	while ((ch = getopt_long(argc, argv, "+c:Vh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			a.conf_path = optarg;
			break;
		case 'V':
			printf("llmgw-admin %s\n", PACKAGE_VERSION);
			return ADMIN_OK;
		case 'h':
			usage(stdout);
			return ADMIN_OK;
		default:
			usage(stderr);
			return ADMIN_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		fprintf(stderr, "llmgw-admin: no command given\n");
		usage(stderr);
		return ADMIN_USAGE;
	}
	cmd = find(argv[0], argc > 1 ? argv[1] : NULL, &known);
	if (cmd == NULL) {
		if (!known) {
			fprintf(stderr, "llmgw-admin: unknown command \"%s\"\n",
			    argv[0]);
			usage(stderr);
		} else if (argc > 1 && strcmp(argv[1], "--help") == 0) {
			group_usage(stdout, argv[0]);
			return ADMIN_OK;
		} else {
			if (argc > 1)
				fprintf(stderr, "llmgw-admin: unknown command "
				    "\"%s %s\"\n", argv[0], argv[1]);
			else
				fprintf(stderr, "llmgw-admin: \"%s\" needs a "
				    "command\n", argv[0]);
			group_usage(stderr, argv[0]);
		}
		return ADMIN_USAGE;
	}
	a.conf_path = conf_locate(a.conf_path, &a.conf_required);
	log_init("llmgw-admin", LOG_LEVEL_WARN);
	if ((a.conf = conf_load(a.conf_path, a.conf_required, &err)) ==
	    NULL) {
		fprintf(stderr, "llmgw-admin: %s\n", err.msg);
		return ADMIN_FAIL;
	}
	perm_set(a.conf);
	/* A command sees its own name first, then its arguments. */
	rc = cmd->name[0] == '\0' ? cmd->run(&a, argc, argv) :
	    cmd->run(&a, argc - 1, argv + 1);
	conf_free(a.conf);
	return rc;
}
