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

#include "admin.h"
#include "conf.h"
#include "err.h"
#include "log.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif

static const struct admin_cmd *const groups[] = {
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
			fprintf(fp, "  %s %s%s%s\n      %s\n", c->group, c->name,
			    c->args[0] != '\0' ? " " : "", c->args, c->help);
	fprintf(fp, "\n\"llmgw-admin COMMAND --help\" tells more.\n");
}

void
admin_usage(FILE *fp, const struct admin_cmd *c)
{
	fprintf(fp, "usage: llmgw-admin %s %s%s%s\n", c->group, c->name,
	    c->args[0] != '\0' ? " " : "", c->args);
}

int
admin_usage_error(const struct admin_cmd *c, const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "llmgw-admin %s %s: ", c->group, c->name);
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
			if (name != NULL && strcmp(c->name, name) == 0)
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
	a.conf_required = 1;
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
	if (a.conf_path == NULL &&
	    (a.conf_path = getenv("LLMGW_CONFIG")) == NULL) {
		a.conf_path = SYSCONFDIR "/llmgw.conf";
		a.conf_required = 0;
	}
	log_init("llmgw-admin", LOG_LEVEL_WARN);
	if ((a.conf = conf_load(a.conf_path, a.conf_required, &err)) ==
	    NULL) {
		fprintf(stderr, "llmgw-admin: %s\n", err.msg);
		return ADMIN_FAIL;
	}
	rc = cmd->run(&a, argc - 1, argv + 1);
	conf_free(a.conf);
	return rc;
}
