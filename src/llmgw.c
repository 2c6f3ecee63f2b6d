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

#include "app.h"
#include "conf.h"
#include "conn.h"
#include "err.h"
#include "handler.h"
#include "log.h"
#include "server.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR	"/etc"
#endif

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: llmgw [--config FILE] [--listen ADDR] "
	    "[--threads N] [--version] [--help]\n");
}

static void *
make_worker(void *arg, struct err *err)
{
	return worker_new(arg, err);
}

static void
free_worker(void *w)
{
	worker_free(w);
}

static void
serve(void *w, struct conn *conn)
{
	handler_serve(w, conn);
}

static void
after(void *w)
{
	handler_after(w);
}

/* Plain CGI: one request on stdin/stdout, then exit. */
static int
run_cgi(struct app *app)
{
	struct worker	*w;
	struct conn	 conn;
	struct err	 err;

	if ((w = worker_new(app, &err)) == NULL) {
		log_error("%s", err.msg);
		return 1;
	}
	conn_init_cgi(&conn);
	handler_serve(w, &conn);
	fflush(stdout);
	close(STDOUT_FILENO);		/* the web server has it all now */
	handler_after(w);
	worker_free(w);
	return 0;
}

/* FastCGI: serve until SIGTERM or SIGINT. */
static int
run_fastcgi(struct app *app, int fd)
{
	struct server_opts	 opts;
	struct server_ops	 ops = { make_worker, free_worker, serve, after,
				    NULL };
	struct server		*srv;
	struct err		 err;
	sigset_t		 set;
	int			 sig;

	ops.arg = app;
	opts.min_threads = app->conf->threads;
	opts.max_threads = app->conf->max_threads;
	opts.idle_ms = app->conf->thread_idle_ms;

	/* Signals go to this thread only, through sigwait(). */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if ((srv = server_start(fd, &opts, &ops, &err)) == NULL) {
		log_error("%s", err.msg);
		return 1;
	}
	log_info("serving FastCGI with %ld to %ld threads",
	    opts.min_threads, opts.max_threads);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT)
			break;
		log_info("signal %d ignored", sig);
	}
	log_info("signal %d: stopping; requests in progress finish first",
	    sig);
	server_stop(srv);
	log_info("stopped");
	return 0;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "listen",	required_argument,	NULL, 'l' },
		{ "threads",	required_argument,	NULL, 't' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	struct conf	*conf;
	struct app	*app;
	struct err	 err;
	const char	*path = NULL, *listen_addr = NULL, *gw;
	char		*end;
	long		 threads = 0;
	int		 ch, fd, required = 1, rc;

	while ((ch = getopt_long(argc, argv, "c:l:t:Vh", longopts, NULL)) !=
	    -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'l':
			listen_addr = optarg;
			break;
		case 't':
			errno = 0;
			threads = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || threads < 1 ||
			    threads > 100000) {
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
	if (path == NULL && (path = getenv("LLMGW_CONFIG")) == NULL) {
		path = SYSCONFDIR "/llmgw.conf";
		required = 0;
	}
	if ((conf = conf_load(path, required, &err)) == NULL) {
		fprintf(stderr, "llmgw: %s\n", err.msg);
		return 1;
	}
	log_init("llmgw", (enum log_level)conf->log_level);
	if (threads > 0) {
		conf->threads = threads;
		if (conf->max_threads < threads)
			conf->max_threads = threads;
	}
	if (listen_addr == NULL)
		listen_addr = conf->listen;
	if (conf->api_token == NULL)
		log_warn("no api_token is configured: every chat request "
		    "will be refused with 401");
	if (conf->api_key == NULL)
		log_warn("no API key is configured (api_key, api_key_file or "
		    "ANTHROPIC_API_KEY): the upstream will refuse requests");

	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("curl_global_init failed");
		conf_free(conf);
		return 1;
	}
	if ((app = app_new(conf, &err)) == NULL) {
		log_error("%s", err.msg);
		curl_global_cleanup();
		return 1;
	}
	if (listen_addr != NULL) {
		if ((fd = server_listen(listen_addr, &err)) == -1) {
			log_error("%s", err.msg);
			rc = 1;
			goto out;
		}
	} else
		fd = server_inherited();

	if (fd != -1) {
		if (server_init(&err) == -1) {
			log_error("%s", err.msg);
			close(fd);
			rc = 1;
			goto out;
		}
		rc = run_fastcgi(app, fd);
	} else if ((gw = getenv("GATEWAY_INTERFACE")) != NULL && *gw != '\0')
		rc = run_cgi(app);
	else {
		fprintf(stderr, "llmgw: no FastCGI socket on standard input "
		    "and not run as CGI: start it from a web server, or give "
		    "--listen ADDR\n");
		usage(stderr);
		rc = 2;
	}
out:
	app_free(app);
	curl_global_cleanup();
	return rc;
}
