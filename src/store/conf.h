/*
 * llmgw.conf: read and checked once at start (and again on SIGHUP), then
 * shared read-only by every thread.  The format is "key = value" lines;
 * see llmgw.conf(5).  Every key has a built-in default, so no file at all
 * is a valid configuration.
 */
#ifndef CONF_H
#define CONF_H

#include <stddef.h>

struct err;

/* What of a request's messages its record carries (log_content). */
enum log_content {
	LOG_CONTENT_NONE,	/* none: counts and times only */
	LOG_CONTENT_METADATA,	/* ... and the texts' sizes in bytes */
	LOG_CONTENT_FULL	/* ... and the prompt and reply texts */
};

struct conf {
	/* Told apart from every other configuration this process loads,
	 * even one at the same address: for what is built from one. */
	unsigned long	 serial;

	/* Upstream: the Anthropic Messages API. */
	char	*upstream_url;
	char	*api_key;		/* secret; never logged */
	char	*api_key_file;
	char	*anthropic_version;
	char	*default_model;
	char	**allowed_models;	/* NULL-terminated; NULL: any model */
	long	 default_max_tokens;
	long	 max_tokens_limit;	/* for a model not in the list below */
	char	**model_max_tokens;	/* "model:N": a model's own ceiling */
	long	 connect_timeout_ms;
	long	 first_byte_timeout_ms;
	long	 idle_timeout_ms;
	long	 total_timeout_ms;
	long	 retries;
	long	 retry_base_ms;
	long	 retry_max_ms;

	/* Clients. */
	char	*api_token;		/* secret; NULL: no static token */
	long	 body_limit;
	long	 body_timeout_ms;	/* the most a body may take to come */

	/* Storage. */
	char	*database;
	char	*spool_dir;
	int	 spool_fsync;
	int	 log_bodies;		/* the older log_content = full */
	char	*log_content;		/* "none", "metadata" or "full" */
	int	 content;		/* ... as enum log_content */
	long	 database_wait_ms;	/* a request's waits for it, at most */
	long	 database_connections;	/* to PostgreSQL, per process */
	long	 backlog_max;		/* rows, records kept in memory */
	char	*on_record_failure;	/* "refuse" or "serve" */
	int	 serve_unrecorded;	/* ... it is "serve" */

	/* Budgets. */
	int	 budget_count_tokens;	/* count the input upstream first */
	int	 forward_upstream_ratelimit;	/* anthropic-ratelimit-* on */
	long	 server_tool_reserve;	/* tokens held per server tool use;
					 * 0: no server tools on a budget */
	long	 server_tool_uses;	/* uses held for a tool without
					 * max_uses */

	/* llmgw-spoold. */
	char	**sinks;		/* "database" (or "sqlite"), "webhook",
					 * "otlp", "langfuse", "jsonl" */
	char	*sink_database;		/* NULL: the database */
	char	*webhook_url;
	char	*webhook_header;	/* secret; never logged */
	long	 webhook_timeout_ms;
	long	 webhook_batch;
	char	*otlp_endpoint;		/* the sink posts to .../v1/traces */
	char	*otlp_headers_file;	/* "Name: value" lines; secret */
	long	 otlp_timeout_ms;		/* also the langfuse sink's */
	long	 otlp_batch;			/* also the langfuse sink's */
	char	*langfuse_host;		/* its .../api/public/otel/v1/traces */
	char	*langfuse_public_key;
	char	*langfuse_secret_key_file;	/* secret */
	char	*langfuse_environment;	/* NULL: Langfuse's default */
	char	**model_prices;		/* "model:in:out[:write:read]", USD
					 * per million tokens */
	char	*jsonl_path;		/* "-": standard output */
	long	 spool_attempts;
	long	 spool_retry_base_ms;
	long	 spool_retry_max_ms;
	long	 spool_reclaim_ms;
	long	 spool_rescan_ms;
	long	 spool_batch;
	char	*spoold_log;		/* "stderr" or "syslog" */

	/* Operations. */
	long	 keepalive_ms;		/* SSE comment after this silence */
	long	 shutdown_timeout_ms;
	int	 access_log;
	char	*metrics_token;		/* secret; NULL: /metrics answers
					 * loopback peers only */
	char	*file_group;		/* may read the files we make */
	long	 file_gid;		/* its id; -1: none */

	/* Process. */
	char	*listen;
	long	 listen_mode;		/* of a unix socket we create */
	long	 threads;
	long	 max_threads;
	long	 thread_idle_ms;
	int	 log_level;

	int	 allow_root;		/* llmgw may run as root */

	char	*messages_url;		/* upstream_url + "/v1/messages" */
	char	*count_url;		/* ... + "/count_tokens" */
	char	*models_url;		/* upstream_url + "/v1/models" */
	char	*path;			/* file read, or NULL for none */
	char	 warning[512];		/* for the log at start, or "" */
};

/*
 * The configuration file to read: "given" (--config), else
 * $LLMGW_CONFIG, both "required", else SYSCONFDIR/llmgw.conf, which may
 * be missing.
 */
const char	*conf_locate(const char *given, int *required);

/*
 * Read the configuration from "path" (NULL: no file, embedded defaults),
 * then apply environment overrides.  "required" says whether a missing
 * file is an error (it is when the user named it).  Returns a new config,
 * or NULL with "err" set to "file:line: message".
 */
struct conf	*conf_load(const char *path, int required, struct err *);

/* As conf_load(), from "len" bytes of "text" called "name" in messages. */
struct conf	*conf_load_text(const char *name, const char *text, size_t len,
		    struct err *);
void		 conf_free(struct conf *);	/* NULL is fine */

/*
 * The most max_tokens a request for "model" may ask: its entry in
 * model_max_tokens, else max_tokens_limit; and the most of all of them.
 */
long		 conf_max_tokens(const struct conf *, const char *model);
long		 conf_max_tokens_any(const struct conf *);

/* A model's prices from model_prices, USD per million tokens. */
struct model_price {
	double	 input, output;
	double	 cache_write, cache_read;	/* 1.25 and 0.1 times the
						 * input's unless given */
};

/* 0 and "model"'s prices, or -1 if model_prices has none for it. */
int		 conf_model_price(const struct conf *, const char *model,
		    struct model_price *);

/* Whether "model" may be requested. */
int		 conf_model_allowed(const struct conf *, const char *model);

/* The names of all keys the parser accepts, NULL-terminated. */
const char *const *conf_keys(void);

#endif /* CONF_H */
