/*
 * llmgw-spoold: drain the spool directory into the configured sinks.
 *
 * One thread: the courier (courier.c) claims records and delivers them;
 * this file is the program around it.  inotify wakes it when a record
 * arrives; it also looks every spool_rescan, puts back what consumers and
 * writers that died left behind, keeps a status file for llmgw-admin,
 * and answers SIGHUP (reload) and SIGTERM (give back what it holds,
 * exit).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "store/conf.h"
#include "store/perm.h"
#include "store/spool_reader.h"
#include "courier.h"

struct spoold {
	struct conf	*conf;
	const char	*conf_path;
	int		 conf_required;
	struct spool	*spool;
	struct courier	*courier;
	int		 once;
	int		 inotify;
	int		 watch;
	unsigned long	 status_at;	/* the courier's changes, written */
};

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: llmgw-spoold [--config FILE] [--once] [--version] "
	    "[--help]\n");
}

/* Keep a small status file for llmgw-admin spool status. */
static void
write_status(struct spoold *d)
{
	struct courier_status	 st;
	char			 path[4096], tmp[4200];
	FILE			*fp;
	int			 fd;

	courier_status(d->courier, &st);
	if (st.changes == d->status_at)
		return;
	d->status_at = st.changes;
	if (snprintf(path, sizeof(path), "%s/.spoold-status",
	    d->conf->spool_dir) >= (int)sizeof(path))
		return;
	snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    perm_file_mode())) == -1)
		return;
	if (perm_fix(fd, 0) == -1 || (fp = fdopen(fd, "w")) == NULL) {
		close(fd);
		unlink(tmp);
		return;
	}
	fprintf(fp, "pid %ld\ntime %lld\ndelivered %lu\nfailed %lu\n"
	    "last_error %s\n", (long)getpid(), (long long)clock_wall_ms(),
	    st.delivered, st.failed, st.last_error);
	if (fclose(fp) != 0 || rename(tmp, path) == -1)
		unlink(tmp);
}

static void
watch_new(struct spoold *d)
{
	char	 path[4096];

	if (d->inotify == -1 || d->watch != -1)
		return;
	snprintf(path, sizeof(path), "%s/new", d->conf->spool_dir);
	d->watch = inotify_add_watch(d->inotify, path, IN_MOVED_TO |
	    IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF);
}

static void
drain_inotify(struct spoold *d)
{
	char				 buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event	*ev;
	ssize_t				 n;
	char				*p;

	while ((n = read(d->inotify, buf, sizeof(buf))) > 0)
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->mask & (IN_IGNORED | IN_DELETE_SELF |
			    IN_MOVE_SELF))
				d->watch = -1;	/* new/ went: watch again */
		}
}

static int
load_conf(struct spoold *d, struct err *err)
{
	struct conf	*c;

	if ((c = conf_load(d->conf_path, d->conf_required, err)) == NULL)
		return -1;
	conf_free(d->conf);
	d->conf = c;
	log_set_level((enum log_level)c->log_level);
	perm_set(c);
	log_use_syslog(strcmp(c->spoold_log, "syslog") == 0);
	if (c->warning[0] != '\0')
		log_warn("%s", c->warning);
	return 0;
}

/* SIGHUP: a new configuration if it is good, and reopened files. */
static void
reload(struct spoold *d)
{
	struct conf	*old = d->conf;
	struct spool	*spool;
	struct err	 err;

	d->conf = NULL;
	if (load_conf(d, &err) == -1) {
		d->conf = old;
		log_error("reload refused, keeping the old configuration: %s",
		    err.msg);
		return;
	}
	if ((spool = spool_open(d->conf->spool_dir, d->conf->spool_fsync)) ==
	    NULL) {
		conf_free(d->conf);
		d->conf = old;
		log_error("reload refused: out of memory");
		return;
	}
	courier_reset(d->courier, d->conf, spool);
	spool_close(d->spool);
	d->spool = spool;
	conf_free(old);
	if (courier_open_sinks(d->courier, &err) == -1)
		log_error("reload: %s; retrying on the next round", err.msg);
	d->watch = -1;
	log_info("configuration reloaded, files reopened");
}

/* --once: 1 when the run is over (0 when new/ is empty too). */
static int
once_over(struct spoold *d, int *rc)
{
	struct err	 err;
	char		**names;
	long		 left;

	if (courier_failing(d->courier)) {
		/* A sink is failing: cron tries again later. */
		*rc = 1;
		return 1;
	}
	if (courier_held(d->courier) > 0)
		return 0;
	if ((left = spool_list(d->spool, SPOOL_NEW, &names, 1, &err)) > 0) {
		spool_names_free(names, left);
		return 0;
	}
	spool_names_free(names, left < 0 ? 0 : left);
	*rc = 0;
	return 1;
}

/*
 * Sleep until a record comes, a retry is due, a rescan, or a signal.
 * Returns 0 to go on, 1 to stop (SIGTERM, SIGINT), -1 if it cannot wait.
 */
static int
wait_for_work(struct spoold *d, int sigfd, int64_t *next_scan)
{
	struct pollfd		 pfd[2];
	struct signalfd_siginfo	 si;
	int64_t			 now, wake;

	now = clock_wall_ms();
	if (*next_scan <= now)
		*next_scan = now + d->conf->spool_rescan_ms;
	/* --once does not wait: it only looks for a signal. */
	wake = d->once ? now : courier_next_ms(d->courier, *next_scan);
	pfd[0].fd = sigfd;
	pfd[0].events = POLLIN;
	pfd[1].fd = d->inotify;
	pfd[1].events = POLLIN;
	if (poll(pfd, d->inotify != -1 ? 2 : 1, wake > now ? (int)(wake -
	    now) : 0) == -1 && errno != EINTR) {
		log_error("poll: %s", strerror(errno));
		return -1;
	}
	if (d->inotify != -1 && (pfd[1].revents & POLLIN))
		drain_inotify(d);
	if ((pfd[0].revents & POLLIN) == 0 ||
	    read(sigfd, &si, sizeof(si)) != sizeof(si))
		return 0;
	if (si.ssi_signo == SIGHUP) {
		reload(d);
		return 0;
	}
	log_info("signal %u: stopping", si.ssi_signo);
	return 1;
}

static int
run(struct spoold *d, int sigfd)
{
	struct err	 err;
	int64_t		 now, next_scan = 0, next_house = 0;
	int		 rc = 0, w;

	for (;;) {
		now = clock_wall_ms();
		if (courier_open_sinks(d->courier, &err) == -1)
			log_error("%s", err.msg);
		if (now >= next_house) {
			courier_housekeeping(d->courier);
			next_house = now + d->conf->spool_rescan_ms * 6;
		}
		watch_new(d);
		courier_take(d->courier);
		courier_deliver(d->courier);
		write_status(d);
		if (d->once && once_over(d, &rc))
			break;
		if ((w = wait_for_work(d, sigfd, &next_scan)) != 0) {
			rc = w == -1;
			break;
		}
	}
	courier_release_all(d->courier);
	return rc;
}

/* Read the command line: -1 to go on, or the status to exit with. */
static int
parse_options(int argc, char *argv[], struct spoold *d)
{
	static const struct option longopts[] = {
		{ "config",	required_argument,	NULL, 'c' },
		{ "once",	no_argument,		NULL, 'o' },
		{ "version",	no_argument,		NULL, 'V' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	int	 ch;

	while ((ch = getopt_long(argc, argv, "c:oVh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			d->conf_path = optarg;
			break;
		case 'o':
			d->once = 1;
			break;
		case 'V':
			printf("llmgw-spoold %s\n", PACKAGE_VERSION);
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
		fprintf(stderr, "llmgw-spoold: unexpected argument \"%s\"\n",
		    argv[optind]);
		usage(stderr);
		return 2;
	}
	return -1;
}

/* SIGTERM, SIGINT and SIGHUP, read from a signalfd: the fd, or -1. */
static int
signals(void)
{
	sigset_t	 set;
	int		 fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((fd = signalfd(-1, &set, SFD_CLOEXEC)) == -1)
		log_error("signalfd: %s", strerror(errno));
	return fd;
}

int
main(int argc, char *argv[])
{
	struct spoold	 d;
	struct err	 err;
	int		 sigfd = -1, rc;

	memset(&d, 0, sizeof(d));
	d.inotify = d.watch = -1;
	if ((rc = parse_options(argc, argv, &d)) != -1)
		return rc;
	d.conf_path = conf_locate(d.conf_path, &d.conf_required);
	log_init("llmgw-spoold", LOG_LEVEL_INFO);
	if (load_conf(&d, &err) == -1) {
		fprintf(stderr, "llmgw-spoold: %s\n", err.msg);
		return 1;
	}
	rc = 1;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("curl_global_init failed");
		conf_free(d.conf);
		return 1;
	}
	if ((sigfd = signals()) == -1)
		goto out;
	if (!d.once && (d.inotify = inotify_init1(IN_NONBLOCK |
	    IN_CLOEXEC)) == -1)
		log_warn("inotify: %s; looking every %ld ms instead",
		    strerror(errno), d.conf->spool_rescan_ms);
	if ((d.spool = spool_open(d.conf->spool_dir, d.conf->spool_fsync)) ==
	    NULL || (d.courier = courier_new(d.conf, d.spool, d.once)) ==
	    NULL) {
		log_error("out of memory");
		goto out;
	}
	if (!d.once)
		log_info("draining %s", d.conf->spool_dir);
	rc = run(&d, sigfd);
out:
	courier_free(d.courier);
	spool_close(d.spool);
	if (d.inotify != -1)
		close(d.inotify);
	if (sigfd != -1)
		close(sigfd);
	conf_free(d.conf);
	curl_global_cleanup();
	log_use_syslog(0);
	return rc;
}
