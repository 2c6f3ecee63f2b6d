/*
 * llmgw: the FastCGI responder.  Options in, modules wired, exit code out.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/err.h"
#include "core/log.h"
#include "store/conf.h"
#include "store/perm.h"
#include "app.h"
#include "conn.h"
#include "dispatch.h"
#include "listen.h"
#include "server.h"
#include "upstream.h"

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: llmgw [--config FILE] [--listen ADDR] "
	    "[--threads N] [--version] [--help]\n");
}

static void *
make_worker(void *arg, struct err *err)
{
	return dispatch_worker_new(arg, err);
}

static void
free_worker(void *w)
{
	dispatch_worker_free(w);
}

static void
serve(void *w, struct conn *conn)
{
	dispatch_serve(w, conn);
}

static void
after(void *w)
{
	dispatch_after(w);
}

static volatile int	 cgi_gone;

/*
 * The signals the main thread takes with sigwait().  They are blocked
 * before any thread starts (the upstream loop, the workers), so that
 * each thread inherits the mask and none dies of a SIGHUP meant for the
 * main thread, and before the socket exists, so that none that comes
 * once it does is lost.
 */
static void
control_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
}

static void
on_cgi_term(int sig)
{
	(void)sig;
	cgi_gone = 1;
}

/*
 * Plain CGI: one request on stdin/stdout, then exit.  A web server that
 * loses the client sends SIGTERM (then SIGKILL a few seconds later):
 * that stops the upstream transfer so the usage is still recorded.
 */
static int
run_cgi(struct app *app)
{
	struct sigaction	 sa;
	sigset_t		 set;
	struct worker		*w;
	struct conn		 conn;
	struct err		 err;
	char			 drain[4096];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_cgi_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	control_signals(&set);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);	/* this thread only */
	if ((w = dispatch_worker_new(app, &err)) == NULL) {
		log_error("%s", err.msg);
		return 1;
	}
	conn_init_cgi(&conn, &cgi_gone);
	dispatch_serve(w, &conn);
	/* A body we did not read (a refusal): take it, or the web server may
	 * drop the answer when we go. */
	while (!cgi_gone && read(STDIN_FILENO, drain, sizeof(drain)) > 0)
		;
	close(STDOUT_FILENO);		/* the web server has it all now */
	dispatch_after(w);
	dispatch_worker_free(w);
	return 0;
}

static void
pool_opts(const struct conf *c, struct server_opts *opts)
{
	opts->min_threads = c->threads;
	opts->max_threads = c->max_threads;
	opts->idle_ms = c->thread_idle_ms;
	/* A request, parameters and body, arrives whole within
	 * body_timeout of its first byte, or its connection is closed. */
	opts->request_ms = c->body_timeout_ms;
	opts->body_max = c->body_limit;
}

/* SIGHUP: a good new configuration replaces the old; a bad one is refused. */
static void
reload(struct app *app)
{
	struct server_opts	 opts;
	struct gen		*g;
	struct err		 err;

	if (app_reload(app, &err) == -1) {
		log_error("reload refused, keeping the old configuration: %s",
		    err.msg);
		return;
	}
	g = app_hold(app);
	pool_opts(g->conf, &opts);
	server_set_opts(app->server, &opts);
	app_drop(g);
	log_info("configuration reloaded");
}

/*
 * SIGTERM or SIGINT: stop accepting, give requests in progress
 * shutdown_timeout to finish, then end the streams still running (each
 * gets an error event and its usage is recorded) and, as a last resort,
 * cut their connections.
 */
static void
shut_down(struct app *app, long timeout_ms)
{
	long	 left;

	server_close(app->server);
	if ((left = server_drain(app->server, timeout_ms)) == 0)
		return;
	log_warn("%ld request%s still running after shutdown_timeout; "
	    "ending them", left, left == 1 ? "" : "s");
	upstream_loop_abort(app->loop);
	if ((left = server_drain(app->server, 5000)) == 0)
		return;
	log_warn("%ld request%s still running; closing their connections",
	    left, left == 1 ? "" : "s");
	server_interrupt(app->server);
}

/* FastCGI: serve until SIGTERM or SIGINT. */
static int
run_fastcgi(struct app *app, int fd)
{
	struct server_opts	 opts;
	struct server_ops	 ops = { make_worker, free_worker, serve, after,
				    NULL };
	struct err		 err;
	struct gen		*g;
	sigset_t		 set;
	long			 timeout;
	int			 sig;

	ops.arg = app;
	g = app_hold(app);
	pool_opts(g->conf, &opts);
	app_drop(g);

	/* Signals go to this thread only, through sigwait(). */
	control_signals(&set);

	if ((app->server = server_start(fd, &opts, &ops, &err)) == NULL) {
		log_error("%s", err.msg);
		return 1;
	}
	log_info("serving FastCGI with %ld to %ld threads%s",
	    opts.min_threads, opts.max_threads, app->single ?
	    " (mod_fcgid: one request at a time)" : "");
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP)
			reload(app);
		else
			log_info("signal %d ignored", sig);
	}
	g = app_hold(app);
	timeout = g->conf->shutdown_timeout_ms;
	app_drop(g);
	log_info("signal %d: stopping; requests in progress have %ld ms",
	    sig, timeout);
	shut_down(app, timeout);
	server_free(app->server);
	app->server = NULL;
	log_info("stopped");
	return 0;
}


/* What the command line says. */
struct options {
	const char	*config;	/* --config, or NULL */
	const char	*listen;	/* --listen, or NULL */
	long		 threads;	/* --threads, or 0 */
};

/* Read the command line: -1 to go on, or the status to exit with. */
static int
parse_options(int argc, char *argv[], struct options *o)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "listen",	required_argument,	NULL, 'l' },
		{ "threads",	required_argument,	NULL, 't' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	char	*end;
	int	 ch;

	memset(o, 0, sizeof(*o));
	while ((ch = getopt_long(argc, argv, "c:l:t:Vh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			o->config = optarg;
			break;
		case 'l':
			o->listen = optarg;
			break;
		case 't':
			errno = 0;
			o->threads = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || o->threads < 1 ||
			    o->threads > 100000) {
				fprintf(stderr, "llmgw: --threads: \"%s\" is "
				    "not a number from 1 to 100000\n", optarg);
				usage(stderr);
				return 2;
			}
			break;
		case 'V':
			printf("llmgw %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "llmgw: unexpected argument \"%s\"\n",
		    argv[optind]);
		usage(stderr);
		return 2;
	}
	return -1;
}

/* What the operator should know of a configuration at start: 0, or -1 if
 * llmgw must not run with it. */
static int
check_start(const struct conf *conf)
{
	if (geteuid() == 0 && !conf->allow_root) {
		log_error("refusing to run as root: run llmgw as its own user "
		    "(the web server's, or llmgw), or set allow_root = yes in "
		    "llmgw.conf (LLMGW_ALLOW_ROOT=yes) if you mean it");
		return -1;
	}
	if (conf->warning[0] != '\0')
		log_warn("%s", conf->warning);
	if (conf->api_token == NULL)
		log_info("no api_token is configured: only keys made with "
		    "llmgw-admin key create are accepted");
	if (conf->api_key == NULL)
		log_warn("no API key is configured (api_key, api_key_file or "
		    "ANTHROPIC_API_KEY): the upstream will refuse requests");
	return 0;
}

/* Serve on "fd" (FastCGI), or one CGI request, or say how to start. */
static int
run(struct app *app, int fd)
{
	const char	*gw = getenv("GATEWAY_INTERFACE");

	if (fd != -1)
		return run_fastcgi(app, fd);
	if (gw != NULL && *gw != '\0')
		return run_cgi(app);
	fprintf(stderr, "llmgw: no FastCGI socket on standard input and not "
	    "run as CGI: start it from a web server, or give --listen ADDR\n");
	usage(stderr);
	return 2;
}

int
main(int argc, char *argv[])
{
	struct options	 o;
	struct conf	*conf = NULL;
	struct app	*app = NULL;
	struct err	 err;
	sigset_t	 set;
	const char	*path, *listen_addr;
	int		 fd = -1, required, rc, curl = 0;

	if ((rc = parse_options(argc, argv, &o)) != -1)
		return rc;
	path = conf_locate(o.config, &required);
	if ((conf = conf_load(path, required, &err)) == NULL) {
		fprintf(stderr, "llmgw: %s\n", err.msg);
		return 1;
	}
	log_init("llmgw", (enum log_level)conf->log_level);
	rc = 1;
	perm_set(conf);
	if (check_start(conf) == -1)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	control_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		err_set(&err, "curl_global_init failed");
		goto fail;
	}
	curl = 1;
	listen_addr = o.listen != NULL ? o.listen : conf->listen;
	if (listen_addr != NULL) {
		if ((fd = listen_open(listen_addr, conf->listen_mode,
		    &err)) == -1)
			goto fail;
	} else
		fd = listen_inherited();
	app = app_new(conf, path, required, o.threads, fd != -1 &&
	    listen_addr == NULL && listen_is_mod_fcgid(fd), &err);
	conf = NULL;		/* the app's now, or freed */
	if (app == NULL)
		goto fail;
	rc = run(app, fd);
	goto out;
fail:
	log_error("%s", err.msg);
	if (fd != -1)
		close(fd);
out:
	app_free(app);
	conf_free(conf);
	if (curl)
		curl_global_cleanup();
	return rc;
}
