/*
 * llmgw-admin key create | list | show | revoke
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#include "core/clock.h"
#include "core/err.h"
#include "core/str.h"
#include "store/conf.h"
#include "store/keys.h"
#include "store/store.h"
#include "admin.h"

static int	key_create(struct admin *, int, char *[]);
static int	key_list(struct admin *, int, char *[]);
static int	key_show(struct admin *, int, char *[]);
static int	key_revoke(struct admin *, int, char *[]);

const struct admin_cmd admin_key_cmds[] = {
	{ "key", "create", "--name NAME [--budget-tokens N --period day|month] "
	    "[--rpm N] [--models LIST] [--expires DATE]",
	    "Make a key; its secret is printed once, on standard output.",
	    key_create },
	{ "key", "list", "",
	    "Every key, with its limits and use; never a secret.", key_list },
	{ "key", "show", "NAME|ID",
	    "One key in full, with what it used this period.", key_show },
	{ "key", "revoke", "NAME|ID",
	    "Refuse the key from now on, in every llmgw process.", key_revoke },
	{ NULL, NULL, NULL, NULL, NULL }
};

static int
name_ok(const char *s)
{
	size_t	 n = strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-");

	return n > 0 && n <= 64 && s[n] == '\0';
}

static int
parse_count(const char *s, long *out)
{
	char	*end;

	*out = strtol(s, &end, 10);
	return end != s && *end == '\0' && *out >= 1;
}

/* "a, b c" into "a,b,c"; 0, or -1 if a name is not a model name. */
static int
parse_models(const char *s, char *out, size_t size)
{
	const char	*p = s;
	size_t		 n, o = 0;

	while (*p != '\0') {
		p += strspn(p, ", \t");
		if ((n = strcspn(p, ", \t")) == 0)
			break;
		if (o + n + 2 > size)
			return -1;
		if (o > 0)
			out[o++] = ',';
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = '\0';
	return o > 0 ? 0 : -1;
}

static const char *
status_of(const struct key *k)
{
	switch (key_state(k, clock_wall_ms())) {
	case KEY_REVOKED:
		return "revoked";
	case KEY_EXPIRED:
		return "expired";
	case KEY_ACTIVE:
		break;
	}
	return "active";
}

/* What "key create" is to make: -1 to go on, or the status to exit with. */
static int
key_spec(struct key *spec, int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "name",		required_argument,	NULL, 'n' },
		{ "budget-tokens",	required_argument,	NULL, 'b' },
		{ "period",		required_argument,	NULL, 'p' },
		{ "rpm",		required_argument,	NULL, 'r' },
		{ "models",		required_argument,	NULL, 'm' },
		{ "expires",		required_argument,	NULL, 'e' },
		{ "help",		no_argument,		NULL, 'h' },
		{ NULL,			0,			NULL, 0 }
	};
	const struct admin_cmd	*c = &admin_key_cmds[0];
	long long		 when;
	int			 ch;

	memset(spec, 0, sizeof(*spec));
	spec->budget_tokens = spec->rpm = -1;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			if (!name_ok(optarg))
				return admin_usage_error(c, "--name: \"%s\": "
				    "1 to 64 letters, digits or ._@-", optarg);
			str_copy(spec->name, sizeof(spec->name), optarg);
			break;
		case 'b':
			if (!parse_count(optarg, &spec->budget_tokens))
				return admin_usage_error(c, "--budget-tokens: "
				    "\"%s\" is not a positive number", optarg);
			break;
		case 'p':
			if (strcmp(optarg, "day") != 0 &&
			    strcmp(optarg, "month") != 0)
				return admin_usage_error(c, "--period: \"%s\" "
				    "is not day or month", optarg);
			str_copy(spec->period, sizeof(spec->period), optarg);
			break;
		case 'r':
			if (!parse_count(optarg, &spec->rpm))
				return admin_usage_error(c, "--rpm: \"%s\" is "
				    "not a positive number", optarg);
			break;
		case 'm':
			if (parse_models(optarg, spec->models,
			    sizeof(spec->models)) == -1)
				return admin_usage_error(c, "--models: \"%s\" "
				    "is not a list of models", optarg);
			break;
		case 'e':
			if (admin_parse_time(optarg, &when) == -1)
				return admin_usage_error(c, "--expires: \"%s\" "
				    "is not a date (2026-12-31 or "
				    "2026-12-31T18:00Z)", optarg);
			if (when <= clock_wall_ms())
				return admin_usage_error(c, "--expires: %s is "
				    "in the past", optarg);
			spec->expires = when;
			break;
		case 'h':
			admin_usage(stdout, c);
			printf("%s\nA budget counts input, output and cache "
			    "tokens, per UTC day or month.\n", c->help);
			return ADMIN_OK;
		default:
			admin_usage(stderr, c);
			return ADMIN_USAGE;
		}
	}
	if (optind < argc)
		return admin_usage_error(c, "unexpected argument \"%s\"",
		    argv[optind]);
	if (spec->name[0] == '\0')
		return admin_usage_error(c, "--name NAME is needed");
	if ((spec->budget_tokens >= 0) != (spec->period[0] != '\0'))
		return admin_usage_error(c, "--budget-tokens and --period go "
		    "together");
	return -1;
}

/* The store of keys, opened (and migrated) now: NULL with "err" set. */
static struct store *
admin_store(struct admin *a, struct err *err)
{
	struct store	*s;

	if ((s = store_new(a->conf->database, "llmgw-admin", 1, err)) ==
	    NULL)
		return NULL;
	if (store_open(s, 0, err) == -1) {
		store_free(s);
		return NULL;
	}
	return s;
}

static int
key_create(struct admin *a, int argc, char *argv[])
{
	struct key	 spec, k;
	struct err	 err;
	struct store	*db;
	char		 secret[KEY_SECRET_LEN + 1];
	int		 rc;

	if ((rc = key_spec(&spec, argc, argv)) != -1)
		return rc;
	if ((db = admin_store(a, &err)) == NULL)
		return admin_fail("%s", err.msg);
	rc = store_key_create(db, &spec, secret, &k, &err);
	store_free(db);
	if (rc == -1)
		return admin_fail("%s", err.msg);
	fprintf(stderr, "key %s (%s) created; its secret, below, is shown "
	    "only this once\n", k.id, k.name);
	printf("%s\n", secret);
	explicit_bzero(secret, sizeof(secret));
	return ADMIN_OK;
}

struct listing {
	struct table	*t;
	struct store	*db;
	int		 failed;
};

static void
budget_text(const struct key *k, char *out, size_t size)
{
	if (k->budget_tokens < 0)
		snprintf(out, size, "-");
	else
		snprintf(out, size, "%ld/%s", k->budget_tokens, k->period);
}

static void
list_one(void *arg, const struct key *k)
{
	struct listing	*l = arg;
	struct err	 err;
	char		 budget[48], used[32], rpm[24], expires[32], created[32];
	const char	*cells[10];
	long		 settled, held;

	budget_text(k, budget, sizeof(budget));
	if (k->budget_tokens >= 0 && store_budget_spent(l->db, k, &settled, &held,
	    &err) == 0)
		snprintf(used, sizeof(used), "%ld", settled);
	else
		snprintf(used, sizeof(used), "-");
	if (k->rpm >= 0)
		snprintf(rpm, sizeof(rpm), "%ld", k->rpm);
	else
		snprintf(rpm, sizeof(rpm), "-");
	admin_time(k->expires, expires, sizeof(expires));
	admin_time(k->created, created, sizeof(created));
	cells[0] = k->id;
	cells[1] = k->name;
	cells[2] = k->prefix;
	cells[3] = status_of(k);
	cells[4] = budget;
	cells[5] = used;
	cells[6] = rpm;
	cells[7] = k->models[0] != '\0' ? k->models : "any";
	cells[8] = expires;
	cells[9] = created;
	if (table_add(l->t, cells) == -1)
		l->failed = 1;
}

static int
key_list(struct admin *a, int argc, char *argv[])
{
	static const char *const header[] = { "ID", "NAME", "PREFIX", "STATUS",
	    "BUDGET", "USED", "RPM", "MODELS", "EXPIRES", "CREATED" };
	struct listing	 l;
	struct err	 err;
	int		 rc;

	if ((rc = admin_no_options(&admin_key_cmds[1], argc, argv)) != -1)
		return rc;
	memset(&l, 0, sizeof(l));
	if ((l.db = admin_store(a, &err)) == NULL)
		return admin_fail("%s", err.msg);
	if ((l.t = table_new(10, header)) == NULL) {
		store_free(l.db);
		return admin_fail("out of memory");
	}
	rc = store_key_each(l.db, list_one, &l, &err);
	store_free(l.db);
	if (rc == -1 || l.failed) {
		table_free(l.t);
		return admin_fail("%s", l.failed ? "out of memory" : err.msg);
	}
	rc = table_print(l.t, TABLE_TEXT, stdout);
	table_free(l.t);
	return rc == 0 ? ADMIN_OK : admin_fail("out of memory");
}

/* The key named on the command line, with "db" opened. */
static int
one_key(struct admin *a, const struct admin_cmd *c, int argc, char *argv[],
    struct store **db, struct key *k)
{
	struct err	 err;
	int		 rc;

	if (argc > 1 && strcmp(argv[1], "--help") == 0) {
		admin_usage(stdout, c);
		printf("%s\n", c->help);
		return ADMIN_OK;
	}
	if (argc != 2)
		return admin_usage_error(c, argc < 2 ? "which key?" :
		    "one key at a time");
	if ((*db = admin_store(a, &err)) == NULL)
		return admin_fail("%s", err.msg);
	if ((rc = store_key_get(*db, argv[1], k, &err)) != 1) {
		store_free(*db);
		return rc == 0 ? admin_fail("no key is named \"%s\" (see "
		    "llmgw-admin key list)", argv[1]) : admin_fail("%s",
		    err.msg);
	}
	return -1;
}

static int
key_show(struct admin *a, int argc, char *argv[])
{
	struct key	 k;
	struct err	 err;
	struct store	*db;
	char		 t[32], budget[48];
	long		 settled = 0, held = 0;
	int		 rc;

	if ((rc = one_key(a, &admin_key_cmds[2], argc, argv, &db, &k)) != -1)
		return rc;
	rc = store_budget_spent(db, &k, &settled, &held, &err);
	store_free(db);
	if (rc == -1)
		return admin_fail("%s", err.msg);
	budget_text(&k, budget, sizeof(budget));
	printf("id:       %s\nname:     %s\nprefix:   %s...\nstatus:   %s\n",
	    k.id, k.name, k.prefix, status_of(&k));
	printf("budget:   %s\n", budget);
	if (k.budget_tokens >= 0) {
		printf("used:     %ld settled, %ld held by requests running, "
		    "%ld left this %s\n", settled, held, k.budget_tokens -
		    settled - held > 0 ? k.budget_tokens - settled - held : 0,
		    k.period);
		printf("overshoot: %ld tokens, the most a request cost past "
		    "what it held\n", k.max_overshoot);
	}
	if (k.rpm >= 0)
		printf("rpm:      %ld\n", k.rpm);
	else
		printf("rpm:      -\n");
	printf("models:   %s\n", k.models[0] != '\0' ? k.models : "any");
	admin_time(k.expires, t, sizeof(t));
	printf("expires:  %s\n", t);
	admin_time(k.created, t, sizeof(t));
	printf("created:  %s\n", t);
	if (k.revoked != 0) {
		admin_time(k.revoked, t, sizeof(t));
		printf("revoked:  %s\n", t);
	}
	return ADMIN_OK;
}

static int
key_revoke(struct admin *a, int argc, char *argv[])
{
	struct key	 k;
	struct err	 err;
	struct store	*db;
	int		 rc;

	if ((rc = one_key(a, &admin_key_cmds[3], argc, argv, &db, &k)) != -1)
		return rc;
	if (k.revoked != 0) {
		store_free(db);
		printf("key %s (%s) was revoked already\n", k.id, k.name);
		return ADMIN_OK;
	}
	rc = store_key_revoke(db, k.id, &err);
	store_free(db);
	if (rc == -1)
		return admin_fail("%s", err.msg);
	printf("key %s (%s) revoked\n", k.id, k.name);
	return ADMIN_OK;
}
