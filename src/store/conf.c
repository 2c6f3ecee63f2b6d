#include "config.h"

#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/analyzer.h"
#include "core/err.h"
#include "core/log.h"
#include "conf.h"
#include "conf_impl.h"
#include "conf_syntax.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR		"/etc"
#endif
#ifndef LLMGW_DB_DEFAULT
#define LLMGW_DB_DEFAULT	"/var/lib/llmgw/llmgw.db"
#endif
#ifndef LLMGW_SPOOL_DEFAULT
#define LLMGW_SPOOL_DEFAULT	"/var/spool/llmgw"
#endif

#define CONF_LINE_MAX	4096

enum conf_type {
	CT_STRING,		/* any text */
	CT_URL,			/* http:// or https:// */
	CT_INT,
	CT_DURATION,		/* milliseconds; "10s", "500ms", "2m" */
	CT_SIZE,		/* bytes; "64k", "1M" */
	CT_LIST,		/* comma or space separated words */
	CT_BOOL,		/* yes or no */
	CT_MODE,		/* octal file mode, like 0660 */
	CT_LOGLEVEL
};

struct conf_key {
	const char	*name;
	enum conf_type	 type;
	size_t		 off;
	long		 min, max;	/* for numbers */
	const char	*def;		/* default, in file syntax; NULL: unset */
	const char	*env;		/* environment override, or NULL */
};

#define OFF(f)	offsetof(struct conf, f)

/* Every key the file may hold; llmgw.conf(5) documents each. */
static const struct conf_key conf_keys_table[] = {
	{ "upstream_url", CT_URL, OFF(upstream_url), 0, 0,
	    "https://api.anthropic.com", "ANTHROPIC_BASE_URL" },
	{ "api_key", CT_STRING, OFF(api_key), 0, 0, NULL, "ANTHROPIC_API_KEY" },
	{ "api_key_file", CT_STRING, OFF(api_key_file), 0, 0, NULL, NULL },
	{ "anthropic_version", CT_STRING, OFF(anthropic_version), 0, 0,
	    "2023-06-01", NULL },
	{ "default_model", CT_STRING, OFF(default_model), 0, 0,
	    "claude-sonnet-4-6", NULL },
	{ "allowed_models", CT_LIST, OFF(allowed_models), 0, 0, NULL, NULL },
	{ "default_max_tokens", CT_INT, OFF(default_max_tokens), 1, 1000000,
	    "1024", NULL },
	{ "max_tokens_limit", CT_INT, OFF(max_tokens_limit), 1, 1000000,
	    "8192", NULL },
	{ "model_max_tokens", CT_LIST, OFF(model_max_tokens), 0, 0,
	    "claude-opus-4-6:128000 claude-sonnet-4-6:128000 "
	    "claude-opus-4-5:64000 claude-sonnet-4-5:64000 "
	    "claude-haiku-4-5:64000 claude-opus-4-1:32000 "
	    "claude-sonnet-4-0:64000", NULL },
	{ "connect_timeout", CT_DURATION, OFF(connect_timeout_ms), 1,
	    3600000, "10s", NULL },
	{ "first_byte_timeout", CT_DURATION, OFF(first_byte_timeout_ms), 1,
	    86400000, "120s", NULL },
	{ "idle_timeout", CT_DURATION, OFF(idle_timeout_ms), 1, 86400000,
	    "60s", NULL },
	{ "total_timeout", CT_DURATION, OFF(total_timeout_ms), 1, 86400000,
	    "600s", NULL },
	{ "retries", CT_INT, OFF(retries), 0, 10, "2", NULL },
	{ "retry_base", CT_DURATION, OFF(retry_base_ms), 1, 60000, "500ms",
	    NULL },
	{ "retry_max", CT_DURATION, OFF(retry_max_ms), 1, 300000, "8s", NULL },
	{ "api_token", CT_STRING, OFF(api_token), 0, 0, NULL,
	    "LLMGW_API_TOKEN" },
	{ "body_limit", CT_SIZE, OFF(body_limit), 64, 64L * 1024 * 1024,
	    "1M", NULL },
	{ "body_timeout", CT_DURATION, OFF(body_timeout_ms), 100, 3600000,
	    "30s", NULL },
	{ "database", CT_STRING, OFF(database), 0, 0, LLMGW_DB_DEFAULT,
	    "LLMGW_DB" },
	{ "spool_dir", CT_STRING, OFF(spool_dir), 0, 0, LLMGW_SPOOL_DEFAULT,
	    "LLMGW_SPOOL_DIR" },
	{ "spool_fsync", CT_BOOL, OFF(spool_fsync), 0, 0, "yes", NULL },
	{ "log_bodies", CT_BOOL, OFF(log_bodies), 0, 0, "no", NULL },
	{ "log_content", CT_STRING, OFF(log_content), 0, 0, NULL, NULL },
	{ "database_wait", CT_DURATION, OFF(database_wait_ms), 10, 600000,
	    "2s", NULL },
	{ "database_connections", CT_INT, OFF(database_connections), 1, 1000,
	    "8", NULL },
	{ "backlog_max", CT_INT, OFF(backlog_max), 1, 10000000, "10000",
	    NULL },
	{ "on_record_failure", CT_STRING, OFF(on_record_failure), 0, 0,
	    "refuse", NULL },
	{ "forward_upstream_ratelimit", CT_BOOL,
	    OFF(forward_upstream_ratelimit), 0, 0, "no", NULL },
	{ "budget_count_tokens", CT_BOOL, OFF(budget_count_tokens), 0, 0,
	    "yes", NULL },
	{ "server_tool_reserve", CT_INT, OFF(server_tool_reserve), 0,
	    10000000, "0", NULL },
	{ "server_tool_uses", CT_INT, OFF(server_tool_uses), 1, 1000, "10",
	    NULL },
	{ "sinks", CT_LIST, OFF(sinks), 0, 0, "database", NULL },
	{ "sink_database", CT_STRING, OFF(sink_database), 0, 0, NULL, NULL },
	{ "webhook_url", CT_URL, OFF(webhook_url), 0, 0, NULL, NULL },
	{ "webhook_header", CT_STRING, OFF(webhook_header), 0, 0, NULL,
	    NULL },
	{ "webhook_timeout", CT_DURATION, OFF(webhook_timeout_ms), 1,
	    3600000, "10s", NULL },
	{ "webhook_batch", CT_INT, OFF(webhook_batch), 1, 10000, "50", NULL },
	{ "otlp_endpoint", CT_URL, OFF(otlp_endpoint), 0, 0, NULL, NULL },
	{ "otlp_headers_file", CT_STRING, OFF(otlp_headers_file), 0, 0, NULL,
	    NULL },
	{ "otlp_timeout", CT_DURATION, OFF(otlp_timeout_ms), 1, 3600000,
	    "10s", NULL },
	{ "otlp_batch", CT_INT, OFF(otlp_batch), 1, 10000, "100", NULL },
	{ "langfuse_host", CT_URL, OFF(langfuse_host), 0, 0,
	    "https://cloud.langfuse.com", NULL },
	{ "langfuse_public_key", CT_STRING, OFF(langfuse_public_key), 0, 0,
	    NULL, NULL },
	{ "langfuse_secret_key_file", CT_STRING,
	    OFF(langfuse_secret_key_file), 0, 0, NULL, NULL },
	{ "langfuse_environment", CT_STRING, OFF(langfuse_environment), 0, 0,
	    NULL, NULL },
	{ "model_prices", CT_LIST, OFF(model_prices), 0, 0, NULL, NULL },
	{ "jsonl_path", CT_STRING, OFF(jsonl_path), 0, 0, NULL, NULL },
	{ "spool_attempts", CT_INT, OFF(spool_attempts), 1, 1000, "10",
	    NULL },
	{ "spool_retry_base", CT_DURATION, OFF(spool_retry_base_ms), 1,
	    3600000, "1s", NULL },
	{ "spool_retry_max", CT_DURATION, OFF(spool_retry_max_ms), 1,
	    86400000, "5m", NULL },
	{ "spool_reclaim_after", CT_DURATION, OFF(spool_reclaim_ms), 0,
	    86400000, "60s", NULL },
	{ "spool_rescan", CT_DURATION, OFF(spool_rescan_ms), 10, 3600000,
	    "5s", NULL },
	{ "spool_batch", CT_INT, OFF(spool_batch), 1, 100000, "100", NULL },
	{ "spoold_log", CT_STRING, OFF(spoold_log), 0, 0, "stderr", NULL },
	{ "keepalive_interval", CT_DURATION, OFF(keepalive_ms), 0, 3600000,
	    "15s", NULL },
	{ "shutdown_timeout", CT_DURATION, OFF(shutdown_timeout_ms), 0,
	    86400000, "30s", NULL },
	{ "access_log", CT_BOOL, OFF(access_log), 0, 0, "yes", NULL },
	{ "metrics_token", CT_STRING, OFF(metrics_token), 0, 0, NULL, NULL },
	{ "file_group", CT_STRING, OFF(file_group), 0, 0, NULL, NULL },
	{ "listen", CT_STRING, OFF(listen), 0, 0, NULL, NULL },
	{ "listen_mode", CT_MODE, OFF(listen_mode), 0, 0777, "0660", NULL },
	{ "threads", CT_INT, OFF(threads), 1, 100000, "4", NULL },
	{ "max_threads", CT_INT, OFF(max_threads), 1, 100000, "1024", NULL },
	{ "thread_idle", CT_DURATION, OFF(thread_idle_ms), 100, 86400000,
	    "30s", NULL },
	{ "log_level", CT_LOGLEVEL, OFF(log_level), 0, 0, "info", NULL },
	{ "allow_root", CT_BOOL, OFF(allow_root), 0, 0, "no",
	    "LLMGW_ALLOW_ROOT" },
};

#define NKEYS	(sizeof(conf_keys_table) / sizeof(conf_keys_table[0]))

/* The keys whose values are secrets: never logged, and a file holding
 * one should not be readable by every user. */
static const char *const conf_secret_keys[] = {
	"api_key", "api_token", "webhook_header", "metrics_token", NULL
};

const char *const *
conf_keys(void)
{
	static const char	*names[NKEYS + 1];
	size_t			 i;

	for (i = 0; i < NKEYS; i++)
		names[i] = conf_keys_table[i].name;
	names[NKEYS] = NULL;
	return names;
}

ANALYZER_LEAKS_OFF	/* a field is freed by conf_free() */
/* A text value: "k" is CT_STRING or CT_URL. */
static int
set_text(struct conf *c, const struct conf_key *k, const char *value,
    struct err *err)
{
	char	**field = (char **)((char *)c + k->off), *s;

	if (k->type == CT_URL && strncmp(value, "http://", 7) != 0 &&
	    strncmp(value, "https://", 8) != 0) {
		err_set(err, "%s must start with http:// or https://", k->name);
		return -1;
	}
	if (*value == '\0') {
		err_set(err, "%s must not be empty", k->name);
		return -1;
	}
	if ((s = strdup(value)) == NULL) {
		err_set(err, "out of memory");
		return -1;
	}
	free(*field);
	*field = s;
	return 0;
}
ANALYZER_LEAKS_ON

/* A number of kind "k->type", in its range: 0, or -1 with "err". */
static int
parse_number(const struct conf_key *k, const char *value, long *v,
    struct err *err)
{
	int	 rc = 0;

	switch (k->type) {
	case CT_INT:
		if (conf_parse_long(value, v, err) != (int)strlen(value)) {
			err_set(err, "\"%s\" is not a whole number", value);
			rc = -1;
		}
		break;
	case CT_MODE:
		rc = conf_parse_mode(value, v, err);
		break;
	case CT_DURATION:
		rc = conf_parse_duration_ms(value, v, err);
		break;
	default:	/* CT_SIZE */
		rc = conf_parse_size(value, v, err);
		break;
	}
	if (rc == -1) {
		err_prefix(err, "%s", k->name);
		return -1;
	}
	if (*v >= k->min && *v <= k->max)
		return 0;
	if (k->type == CT_DURATION)
		err_set(err, "%s must be between %ldms and %ldms", k->name,
		    k->min, k->max);
	else if (k->type == CT_MODE)
		err_set(err, "%s must be between 0 and 0777", k->name);
	else
		err_set(err, "%s must be between %ld and %ld", k->name, k->min,
		    k->max);
	return -1;
}

/* Store "value" for key "k"; "err" gets a message without location. */
static int
conf_set(struct conf *c, const struct conf_key *k, const char *value,
    struct err *err)
{
	void	*field = (char *)c + k->off;
	long	 v;
	char	**list;
	int	 flag;

	switch (k->type) {
	case CT_URL:
	case CT_STRING:
		return set_text(c, k, value, err);
	case CT_LIST:
		if ((list = conf_list_parse(value, err)) == NULL) {
			err_prefix(err, "%s", k->name);
			return -1;
		}
		conf_list_free(*(char ***)field);
		*(char ***)field = list;
		return 0;
	case CT_BOOL:
		if (conf_parse_bool(value, &flag, err) == -1) {
			err_prefix(err, "%s", k->name);
			return -1;
		}
		*(int *)field = flag;
		return 0;
	case CT_LOGLEVEL:
		if ((flag = log_level_parse(value)) == -1) {
			err_set(err, "%s must be error, warn, info or debug",
			    k->name);
			return -1;
		}
		*(int *)field = flag;
		return 0;
	case CT_INT:
	case CT_MODE:
	case CT_DURATION:
	case CT_SIZE:
		break;
	}
	if (parse_number(k, value, &v, err) == -1)
		return -1;
	*(long *)field = v;
	return 0;
}

static const struct conf_key *
conf_key_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(conf_keys_table[i].name, name) == 0)
			return &conf_keys_table[i];
	return NULL;
}

/* The lines of "fp", named "name" in messages. */
static int
conf_read_lines(struct conf *c, FILE *fp, const char *name,
    unsigned long *seen, struct err *err)
{
	char			 line[CONF_LINE_MAX + 2];
	char			*key, *value;
	const struct conf_key	*k;
	unsigned long		 lineno = 0;
	size_t			 len;
	int			 rc;

	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		len = strlen(line);
		if (len > CONF_LINE_MAX) {
			err_set(err, "%s:%lu: line longer than %d bytes", name,
			    lineno, CONF_LINE_MAX);
			return -1;
		}
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (strlen(line) != len) {
			err_set(err, "%s:%lu: NUL byte in line", name, lineno);
			return -1;
		}
		if ((rc = conf_split(line, &key, &value, err)) == -1) {
			err_prefix(err, "%s:%lu", name, lineno);
			return -1;
		}
		if (rc == 0)
			continue;
		if ((k = conf_key_find(key)) == NULL) {
			err_set(err, "%s:%lu: unknown key \"%s\"", name, lineno,
			    key);
			return -1;
		}
		if (seen[k - conf_keys_table] != 0) {
			err_set(err, "%s:%lu: \"%s\" is already set on line %lu",
			    name, lineno, key, seen[k - conf_keys_table]);
			return -1;
		}
		seen[k - conf_keys_table] = lineno;
		if (conf_set(c, k, value, err) == -1) {
			err_prefix(err, "%s:%lu", name, lineno);
			return -1;
		}
	}
	if (ferror(fp)) {
		err_set(err, "%s: %s", name, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * A secret in a file every user may read is worth a warning, not a
 * refusal: the admin may have good reasons, and a gateway that will not
 * start is an outage.
 */
static void
conf_check_exposed(struct conf *c, int fd, const char *name,
    const unsigned long *seen)
{
	struct stat		 sb;
	const char *const	*p;
	unsigned long		 line;

	if (fd == -1 || fstat(fd, &sb) == -1 || !(sb.st_mode & S_IROTH))
		return;
	for (p = conf_secret_keys; *p != NULL; p++) {
		line = seen[conf_key_find(*p) - conf_keys_table];
		if (line != 0) {
			snprintf(c->warning, sizeof(c->warning), "%s:%lu: "
			    "holds %s but every user may read it (mode %03o); "
			    "chmod o-r %s", name, line, *p,
			    (unsigned)(sb.st_mode & 0777), name);
			return;
		}
	}
}

static int
conf_read_file(struct conf *c, const char *path, int required,
    unsigned long *seen, struct err *err)
{
	FILE	*fp;
	int	 rc;

	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT && !required)
			return 0;
		err_set(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((c->path = strdup(path)) == NULL) {
		err_set(err, "%s: out of memory", path);
		fclose(fp);
		return -1;
	}
	if ((rc = conf_read_lines(c, fp, path, seen, err)) == 0)
		conf_check_exposed(c, fileno(fp), path, seen);
	fclose(fp);
	return rc;
}

static int
conf_read_secret_file(struct conf *c, struct err *err)
{
	FILE		*fp;
	struct stat	 sb;
	char		 line[1024];
	size_t		 len;
	int		 fd;

	/* Non-blocking, so that a FIFO cannot hang the start. */
	if ((fd = open(c->api_key_file, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) ==
	    -1 || fstat(fd, &sb) == -1) {
		err_set(err, "api_key_file %s: %s", c->api_key_file,
		    strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		err_set(err, "api_key_file %s: not a regular file",
		    c->api_key_file);
		close(fd);
		return -1;
	}
	if ((sb.st_mode & S_IROTH) && c->warning[0] == '\0')
		snprintf(c->warning, sizeof(c->warning), "api_key_file %s: "
		    "every user may read it (mode %03o); chmod o-r %s",
		    c->api_key_file, (unsigned)(sb.st_mode & 0777),
		    c->api_key_file);
	if ((fp = fdopen(fd, "r")) == NULL) {
		err_set(err, "api_key_file %s: %s", c->api_key_file,
		    strerror(errno));
		close(fd);
		return -1;
	}
	if (fgets(line, sizeof(line), fp) == NULL) {
		err_set(err, "api_key_file %s: empty file", c->api_key_file);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	len = strcspn(line, "\r\n");
	line[len] = '\0';
	if (len == 0) {
		err_set(err, "api_key_file %s: empty first line",
		    c->api_key_file);
		return -1;
	}
	free(c->api_key);
	if ((c->api_key = strdup(line)) == NULL) {
		err_set(err, "out of memory");
		return -1;
	}
	return 0;
}

unsigned long
conf_line_of(const unsigned long *seen, const char *key)
{
	return seen[conf_key_find(key) - conf_keys_table];
}

static atomic_ulong	 serials;	/* configurations built so far */

/*
 * The defaults, then the file's lines (read by "reader"), then the secret
 * file and the environment, then the checks across keys.
 */
static struct conf *
conf_build(int (*reader)(struct conf *, const void *, unsigned long *,
    struct err *), const void *arg, struct err *err)
{
	struct conf		*c;
	const struct conf_key	*k;
	const char		*v;
	unsigned long		 seen[NKEYS];	/* line each key was set on */
	size_t			 i;

	memset(seen, 0, sizeof(seen));
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		err_set(err, "out of memory");
		return NULL;
	}
	c->serial = atomic_fetch_add(&serials, 1) + 1;
	for (i = 0; i < NKEYS; i++) {
		k = &conf_keys_table[i];
		if (k->def != NULL && conf_set(c, k, k->def, err) == -1) {
			err_prefix(err, "built-in default");
			goto fail;
		}
	}
	if (reader(c, arg, seen, err) == -1)
		goto fail;
	if (c->api_key_file != NULL && conf_read_secret_file(c, err) == -1) {
		if (c->path != NULL)
			err_prefix(err, "%s:%lu", c->path,
			    seen[conf_key_find("api_key_file") - conf_keys_table]);
		goto fail;
	}
	for (i = 0; i < NKEYS; i++) {
		k = &conf_keys_table[i];
		if (k->env == NULL || (v = getenv(k->env)) == NULL ||
		    *v == '\0')
			continue;
		if (conf_set(c, k, v, err) == -1) {
			err_prefix(err, "environment variable %s", k->env);
			goto fail;
		}
	}
	if (conf_check(c, seen, err) == -1)
		goto fail;
	if (asprintf(&c->messages_url, "%s%sv1/messages", c->upstream_url,
	    c->upstream_url[strlen(c->upstream_url) - 1] == '/' ? "" : "/") ==
	    -1) {
		c->messages_url = NULL;
		err_set(err, "out of memory");
		goto fail;
	}
	if (asprintf(&c->count_url, "%s/count_tokens", c->messages_url) ==
	    -1) {
		c->count_url = NULL;
		err_set(err, "out of memory");
		goto fail;
	}
	if (asprintf(&c->models_url, "%.*smodels", (int)(strlen(
	    c->messages_url) - 8), c->messages_url) == -1) {
		c->models_url = NULL;
		err_set(err, "out of memory");
		goto fail;
	}
	return c;
fail:
	conf_free(c);
	return NULL;
}

struct file_arg {
	const char	*path;
	int		 required;
};

static int
read_named_file(struct conf *c, const void *arg, unsigned long *seen,
    struct err *err)
{
	const struct file_arg	*f = arg;

	if (f->path == NULL)
		return 0;
	return conf_read_file(c, f->path, f->required, seen, err);
}

const char *
conf_locate(const char *given, int *required)
{
	*required = 1;
	if (given != NULL)
		return given;
	if ((given = getenv("LLMGW_CONFIG")) != NULL)
		return given;
	*required = 0;
	return SYSCONFDIR "/llmgw.conf";
}

struct conf *
conf_load(const char *path, int required, struct err *err)
{
	struct file_arg	 f = { path, required };

	return conf_build(read_named_file, &f, err);
}

struct text_arg {
	const char	*name;
	const char	*text;
	size_t		 len;
};

static int
read_text(struct conf *c, const void *arg, unsigned long *seen,
    struct err *err)
{
	const struct text_arg	*t = arg;
	FILE			*fp;
	int			 rc;

	if (t->len == 0)
		return 0;
	if ((c->path = strdup(t->name)) == NULL ||
	    (fp = fmemopen((void *)(uintptr_t)t->text, t->len, "r")) == NULL) {
		err_set(err, "%s: %s", t->name, strerror(errno));
		return -1;
	}
	rc = conf_read_lines(c, fp, t->name, seen, err);
	fclose(fp);
	return rc;
}

struct conf *
conf_load_text(const char *name, const char *text, size_t len,
    struct err *err)
{
	struct text_arg	 t = { name, text, len };

	return conf_build(read_text, &t, err);
}

void
conf_free(struct conf *c)
{
	size_t	 i;

	if (c == NULL)
		return;
	for (i = 0; i < NKEYS; i++) {
		void *field = (char *)c + conf_keys_table[i].off;

		switch (conf_keys_table[i].type) {
		case CT_STRING:
		case CT_URL:
			free(*(char **)field);
			break;
		case CT_LIST:
			conf_list_free(*(char ***)field);
			break;
		default:
			break;
		}
	}
	free(c->messages_url);
	free(c->count_url);
	free(c->models_url);
	free(c->path);
	free(c);
}
