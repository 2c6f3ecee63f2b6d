#include "config.h"

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "store/conf.h"
#include "store/conf_syntax.h"
#include "../tap.h"

static char	 path[256];

static struct conf *
load(const char *text, struct err *err)
{
	FILE	*fp;

	if ((fp = fopen(path, "w")) == NULL)
		return NULL;
	fputs(text, fp);
	fclose(fp);
	return conf_load(path, 1, err);
}

/* The message of a config that must fail, with the path cut off. */
static const char *
fails(const char *text)
{
	static struct err	 err;
	struct conf		*c;
	size_t			 n = strlen(path);

	if ((c = load(text, &err)) != NULL) {
		conf_free(c);
		return "(loaded)";
	}
	return strncmp(err.msg, path, n) == 0 ? err.msg + n : err.msg;
}

int
main(void)
{
	struct conf	*c;
	struct err	 err;
	long		 v;
	int		 b;

	snprintf(path, sizeof(path), "/tmp/llmgw-test-conf.%ld",
	    (long)getpid());
	unsetenv("ANTHROPIC_BASE_URL");
	unsetenv("ANTHROPIC_API_KEY");
	unsetenv("LLMGW_API_TOKEN");
	unsetenv("LLMGW_DB");
	unsetenv("LLMGW_SPOOL_DIR");

	c = conf_load(NULL, 0, &err);
	ok(c != NULL, "no file: embedded defaults");
	is_str(c->default_model, "claude-sonnet-4-6", "default model");
	is_int(c->default_max_tokens, 1024, "default max_tokens");
	is_str(c->upstream_url, "https://api.anthropic.com", "default API");
	is_str(c->anthropic_version, "2023-06-01", "anthropic-version");
	ok(c->api_token == NULL && c->api_key == NULL, "no secrets by default");
	ok(c->allowed_models == NULL, "any model by default");
	conf_free(c);

	c = conf_load("/nonexistent/llmgw.conf", 0, &err);
	ok(c != NULL, "a missing default file is fine");
	conf_free(c);
	ok(conf_load("/nonexistent/llmgw.conf", 1, &err) == NULL,
	    "a missing named file is an error");
	ok(strstr(err.msg, "No such file") != NULL, "saying so: %s", err.msg);

	c = load("# comment\n\n  threads = 8   # trailing comment\n"
	    "allowed_models = a, b c\n"
	    "api_token = \"s3cr#t \\\"quoted\\\"\"\n"
	    "idle_timeout = 1500ms\nbody_limit = 64k\n"
	    "default_model = b\nlog_level = debug\n", &err);
	ok(c != NULL, "a full file loads");
	if (c != NULL) {
		is_int(c->threads, 8, "number");
		is_str(c->allowed_models[0], "a", "list item 1");
		is_str(c->allowed_models[2], "c", "list item 3");
		ok(c->allowed_models[3] == NULL, "list ends");
		is_str(c->api_token, "s3cr#t \"quoted\"",
		    "quoted value keeps # and escapes");
		is_int(c->idle_timeout_ms, 1500, "duration in ms");
		is_int(c->body_limit, 65536, "size with suffix");
		ok(conf_model_allowed(c, "b") && !conf_model_allowed(c, "z"),
		    "allowed models are checked");
		is_str(c->path, path, "remembers its file");
		conf_free(c);
	}

	is_str(fails("threads = 4\nbogus = 1\n"), ":2: unknown key \"bogus\"",
	    "unknown key with its line");
	is_str(fails("threads = many\n"),
	    ":1: threads: \"many\" is not a whole number", "not a number");
	is_str(fails("threads = 0\n"), ":1: threads must be between 1 and "
	    "100000", "out of range");
	is_str(fails("idle_timeout = 5 parsecs\n"), ":1: idle_timeout: "
	    "\"5 parsecs\" is not a duration (like 500ms, 10s, 5m, 1h, 7d)",
	    "not a duration");
	is_str(fails("upstream_url = ftp://x\n"), ":1: upstream_url must "
	    "start with http:// or https://", "not a URL");
	is_str(fails("threads\n"), ":1: expected \"key = value\"",
	    "no equals sign");
	is_str(fails("threads =\n"), ":1: missing value for \"threads\"",
	    "no value");
	is_str(fails("api_token = \"open\n"), ":1: missing closing quote",
	    "open quote");
	is_str(fails("threads = 2\nthreads = 3\n"), ":2: \"threads\" is "
	    "already set on line 1", "set twice");
	is_str(fails("Threads = 2\n"), ":1: \"Threads\" is not a valid key "
	    "name", "key names are lower case");
	is_str(fails("log_level = loud\n"), ":1: log_level must be error, "
	    "warn, info or debug", "bad log level");
	is_str(fails("max_tokens_limit = 100\ndefault_max_tokens = 200\n"),
	    ":2: default_max_tokens (200) is above max_tokens_limit (100)",
	    "keys that disagree point at the later line");
	is_str(fails("allowed_models = a b\n"), ":1: default_model "
	    "\"claude-sonnet-4-6\" is not in allowed_models",
	    "the default model must be allowed");
	is_str(fails("api_key_file = /nonexistent/key\n"), ":1: api_key_file "
	    "/nonexistent/key: No such file or directory",
	    "unreadable key file");

	setenv("LLMGW_API_TOKEN", "from-env", 1);
	setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9", 1);
	setenv("LLMGW_DB", "/tmp/x.db", 1);
	c = load("api_token = from-file\n", &err);
	ok(c != NULL, "environment overrides load");
	if (c != NULL) {
		is_str(c->api_token, "from-env", "LLMGW_API_TOKEN wins");
		is_str(c->upstream_url, "http://127.0.0.1:9",
		    "ANTHROPIC_BASE_URL");
		is_str(c->database, "/tmp/x.db", "LLMGW_DB");
		conf_free(c);
	}
	setenv("ANTHROPIC_BASE_URL", "nope", 1);
	ok(conf_load(NULL, 0, &err) == NULL, "a bad environment value fails");
	is_str(err.msg, "environment variable ANTHROPIC_BASE_URL: upstream_url "
	    "must start with http:// or https://", "naming the variable");
	unsetenv("ANTHROPIC_BASE_URL");
	unsetenv("LLMGW_API_TOKEN");
	unsetenv("LLMGW_DB");

	ok(conf_parse_duration_ms("2m", &v, &err) == 0 && v == 120000,
	    "2m is 120000 ms");
	ok(conf_parse_duration_ms("-1s", &v, &err) == -1, "negative refused");
	ok(conf_parse_size("1M", &v, &err) == 0 && v == 1048576, "1M");
	ok(conf_parse_bool("yes", &b, &err) == 0 && b == 1, "yes");
	ok(conf_parse_bool("off", &b, &err) == 0 && b == 0, "off");
	ok(conf_parse_bool("maybe", &b, &err) == -1, "maybe is not a bool");
	ok(conf_keys()[0] != NULL, "the key list is exported");

	/* Secrets in files others may read. */
	c = load("api_token = t0ken\n", &err);
	ok(c != NULL && chmod(path, 0644) == 0, "a secret in a file");
	conf_free(c);
	c = conf_load(path, 1, &err);
	ok(c != NULL && strstr(c->warning, ":1: holds api_token but every "
	    "user may read it (mode 644); chmod o-r") != NULL,
	    "mode 644: a warning naming the line and key");
	conf_free(c);
	chmod(path, 0640);
	c = conf_load(path, 1, &err);
	ok(c != NULL && c->warning[0] == '\0', "mode 640: no warning");
	conf_free(c);
	c = load("threads = 2\n", &err);
	chmod(path, 0644);
	conf_free(c);
	c = conf_load(path, 1, &err);
	ok(c != NULL && c->warning[0] == '\0', "no secret: no warning");
	conf_free(c);
	is_str(fails("api_key_file = /dev/null\n"), ":1: api_key_file "
	    "/dev/null: not a regular file", "api_key_file must be a file");
	c = load("allow_root = yes\n", &err);
	ok(c != NULL && c->allow_root == 1, "allow_root");
	conf_free(c);

	/* Each model's own ceiling on max_tokens. */
	c = load("max_tokens_limit = 4096\n"
	    "model_max_tokens = claude-a:100000 claude-ab:2000\n", &err);
	ok(c != NULL && conf_max_tokens(c, "claude-a") == 100000 &&
	    conf_max_tokens(c, "claude-ab") == 2000, "model_max_tokens");
	ok(c != NULL && conf_max_tokens(c, "claude-") == 4096 &&
	    conf_max_tokens(c, "claude-abc") == 4096,
	    "another model: max_tokens_limit");
	ok(c != NULL && conf_max_tokens_any(c) == 100000, "the most of all");
	conf_free(c);
	c = conf_load(NULL, 0, &err);
	ok(c != NULL && conf_max_tokens(c, "claude-sonnet-4-6") == 128000,
	    "the default knows claude-sonnet-4-6");
	conf_free(c);
	ok(load("model_max_tokens = claude-a:0\n", &err) == NULL &&
	    strstr(err.msg, ":1: ") != NULL &&
	    strstr(err.msg, "model:tokens") != NULL, "a bad ceiling: file and line");
	ok(load("model_max_tokens = :5\n", &err) == NULL, "no model");
	ok(load("model_max_tokens = claude-a:5x\n", &err) == NULL,
	    "not a number");

	/* A postgresql:// database needs a build with libpq; a build
	 * without it (make distcheck's) refuses it at the line. */
	c = load("threads = 2\ndatabase = postgresql://llmgw@/llmgw\n", &err);
#ifdef HAVE_POSTGRESQL
	ok(c != NULL, "a postgresql:// database: taken");
#else
	ok(c == NULL && strstr(err.msg, ":2: database: this llmgw was built "
	    "without PostgreSQL") != NULL && strstr(err.msg, "libpq-dev") !=
	    NULL, "a postgresql:// database: refused at its line, saying "
	    "what to install: %s", err.msg);
#endif
	conf_free(c);

	/* The otlp sink needs its endpoint, and says where it was named. */
	is_str(fails("threads = 2\nsinks = sqlite, otlp\n"),
	    ":2: the otlp sink needs otlp_endpoint", "otlp without endpoint");
	c = load("sinks = otlp\notlp_endpoint = http://127.0.0.1:4318\n",
	    &err);
	ok(c != NULL && c->otlp_batch == 100 && c->otlp_timeout_ms == 10000,
	    "otlp: batch 100 and timeout 10s by default");
	conf_free(c);
	is_str(fails("sinks = zipkin\n"), ":1: sinks: unknown sink "
	    "\"zipkin\" (database, webhook, otlp, langfuse or jsonl)",
	    "an unknown sink");
	is_str(fails("sinks = langfuse\n"), ":1: the langfuse sink needs "
	    "langfuse_public_key (pk-lf-...)", "langfuse needs a public key");
	is_str(fails("sinks = langfuse\nlangfuse_public_key = pk-lf-1\n"),
	    ":1: the langfuse sink needs langfuse_secret_key_file (a file "
	    "holding sk-lf-...)", "and a file with the secret key");
	c = load("sinks = langfuse\nlangfuse_public_key = pk-lf-1\n"
	    "langfuse_secret_key_file = /etc/llmgw/langfuse.key\n", &err);
	ok(c != NULL && strcmp(c->langfuse_host,
	    "https://cloud.langfuse.com") == 0, "langfuse: Langfuse Cloud "
	    "unless langfuse_host says otherwise");
	conf_free(c);
	c = load("model_prices = claude-sonnet-4-6:3:15 m2:5:25:6.25:0.5\n",
	    &err);
	{
		struct model_price	 p, q;

		ok(c != NULL && conf_model_price(c, "claude-sonnet-4-6", &p) ==
		    0 && p.input == 3 && p.output == 15 && p.cache_write == 3.75 &&
		    p.cache_read > 0.2999 && p.cache_read < 0.3001,
		    "model_prices: input and output, cache prices derived");
		ok(c != NULL && conf_model_price(c, "m2", &q) == 0 &&
		    q.cache_write == 6.25 && q.cache_read == 0.5,
		    "model_prices: cache prices given");
		ok(c != NULL && conf_model_price(c, "m3", &q) == -1,
		    "model_prices: a model it does not name");
	}
	conf_free(c);
	is_str(fails("model_prices = claude:3\n"), ":1: model_prices: "
	    "\"claude:3\" is not model:input:output or model:input:output:"
	    "cache_write:cache_read (USD per million tokens)",
	    "model_prices: one price");
	ok(strstr(fails("model_prices = claude:3:-1\n"), "is not") != NULL,
	    "model_prices: a negative price");
	c = load("", &err);
	ok(c != NULL && c->content == LOG_CONTENT_NONE,
	    "log_content: none by default");
	conf_free(c);
	c = load("log_bodies = yes\n", &err);
	ok(c != NULL && c->content == LOG_CONTENT_FULL,
	    "log_bodies = yes: full");
	conf_free(c);
	c = load("log_content = metadata\n", &err);
	ok(c != NULL && c->content == LOG_CONTENT_METADATA,
	    "log_content = metadata");
	conf_free(c);
	is_str(fails("log_content = some\n"), ":1: log_content must be none, "
	    "metadata or full", "log_content: a word it does not know");
	is_str(fails("log_bodies = yes\nlog_content = none\n"), ":2: "
	    "log_bodies = yes is the older spelling of log_content = full; "
	    "keep one of them", "log_bodies and log_content that disagree");

	/* From text, as the fuzzer feeds it. */
	c = conf_load_text("fuzz", "threads = 3\n", 12, &err);
	ok(c != NULL && c->threads == 3, "conf_load_text");
	conf_free(c);
	ok(conf_load_text("fuzz", "threads\n", 8, &err) == NULL &&
	    strncmp(err.msg, "fuzz:1: ", 8) == 0, "errors name the text");
	c = conf_load_text("fuzz", "", 0, &err);
	ok(c != NULL, "empty text: the defaults");
	conf_free(c);
	unlink(path);
	return done_testing();
}
