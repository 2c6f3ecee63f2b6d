/*
 * The floor of llmgw's upstream side: the same POST to the stub's
 * /v1/messages that a /chat request makes, "inflight" at a time on one
 * libcurl multi handle driven as llmgw's loop thread drives it (its socket
 * and timer callbacks, epoll), for "secs" seconds, and nothing else: no
 * FastCGI, no JSON, no records.  Prints one line of JSON: the transfers
 * done, the failed ones, the CPU (user and system) this process used per
 * transfer, in microseconds, its context switches per transfer, the
 * transfers per second, and its private dirty memory at the end in
 * KB (with "inflight" 1: the floor of one process that makes libcurl
 * transfers, as llmgw under mod_fcgid is).
 * With "body", that body instead (a streamed request: the floor of
 * receiving its events, which are read and dropped).  With -r, every
 * piece libcurl hands over is also written, in one write(2), to a Unix
 * socket of the transfer's own, which a child process reads and drops:
 * the floor of a relay built on libcurl, one read and one write per event
 * (the child's CPU, the reading end's, is not counted, as the web
 * server's part of llmgw's is counted apart).
 *
 * usage: curl_floor [-r] url inflight secs [body]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define BODY	"{\"model\":\"claude-sonnet-4-6\",\"max_tokens\":1024," \
		"\"messages\":[{\"role\":\"user\",\"content\":" \
		"\"Hello there, how are you?\"}]}"

static int	 epfd;
static double	 timer_at = -1;		/* monotonic seconds; -1: none */

static double	mono_seconds(void);

static int
on_socket(CURL *h, curl_socket_t fd, int what, void *arg, void *sockp)
{
	struct epoll_event	 ev;

	(void)h;
	(void)arg;
	(void)sockp;
	memset(&ev, 0, sizeof(ev));
	ev.data.fd = fd;
	if (what == CURL_POLL_REMOVE)
		return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) == -1 &&
		    errno != EBADF && errno != ENOENT ? -1 : 0;
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) |
	    (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == -1 &&
	    (errno != ENOENT || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1))
		return -1;
	return 0;
}

static int
on_timer(CURLM *multi, long ms, void *arg)
{
	(void)multi;
	(void)arg;
	timer_at = ms < 0 ? -1 : mono_seconds() + ms / 1e3;
	return 0;
}

static size_t
discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* -r: the piece goes on to the transfer's socket, as a relay's would. */
static size_t
relay(char *p, size_t size, size_t n, void *arg)
{
	int	 fd = *(int *)arg;
	size_t	 off = 0;
	ssize_t	 w;

	while (off < size * n) {
		if ((w = write(fd, p + off, size * n - off)) == -1) {
			if (errno == EINTR)
				continue;
			return 0;	/* libcurl fails the transfer */
		}
		off += (size_t)w;
	}
	return size * n;
}

/*
 * The reading ends of the "n" relay sockets, drained and dropped by a
 * child process until every one is closed.  Returns the child's pid, or
 * -1.  The parent keeps the writing ends, socks[2i].
 */
static pid_t
start_drain(int *socks, long n)
{
	struct epoll_event	 ev, evs[64];
	char			 buf[65536];
	long			 i, open = n;
	ssize_t			 got;
	pid_t			 pid;
	int			 dfd, nev;

	for (i = 0; i < n; i++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
		    &socks[2 * i]) == -1)
			return -1;
	if ((pid = fork()) != 0) {
		for (i = 0; i < n; i++)
			close(socks[2 * i + 1]);
		return pid;
	}
	if ((dfd = epoll_create1(0)) == -1)
		_exit(1);
	for (i = 0; i < n; i++) {
		close(socks[2 * i]);
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.fd = socks[2 * i + 1];
		if (epoll_ctl(dfd, EPOLL_CTL_ADD, ev.data.fd, &ev) == -1)
			_exit(1);
	}
	while (open > 0) {
		if ((nev = epoll_wait(dfd, evs, 64, -1)) == -1) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		for (i = 0; i < nev; i++)
			if ((got = read(evs[i].data.fd, buf, sizeof(buf))) ==
			    0 || (got == -1 && errno != EINTR)) {
				epoll_ctl(dfd, EPOLL_CTL_DEL, evs[i].data.fd,
				    NULL);
				close(evs[i].data.fd);
				open--;
			}
	}
	_exit(0);
}

static double
cpu_seconds(void)
{
	struct rusage	 ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Context switches of this process so far, voluntary and not. */
static long
switches(void)
{
	struct rusage	 ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return 0;
	return ru.ru_nvcsw + ru.ru_nivcsw;
}

/* Private_Dirty of this process, in KB; -1 where Linux does not say. */
static long
private_dirty_kb(void)
{
	FILE	*f;
	char	 line[256];
	long	 kb = -1;

	if ((f = fopen("/proc/self/smaps_rollup", "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Private_Dirty: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static double
mono_seconds(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char *argv[])
{
	struct curl_slist	*headers = NULL;
	CURLM			*multi;
	CURLMsg			*msg;
	CURL			*h;
	struct epoll_event	 evs[64];
	double			 secs, cpu0, t0, now;
	long			 switches0;
	long			 inflight, i, done = 0, failed = 0;
	int			 running, left, nev, wait, flags, relaying;
	int			*socks = NULL;
	pid_t			 drain = -1;

	relaying = argc > 1 && strcmp(argv[1], "-r") == 0;
	argc -= relaying;
	argv += relaying;
	if (argc < 4 || argc > 5 ||
	    (inflight = strtol(argv[2], NULL, 10)) <= 0 ||
	    (secs = strtod(argv[3], NULL)) <= 0) {
		fprintf(stderr,
		    "usage: curl_floor [-r] url inflight secs [body]\n");
		return 2;
	}
	if (relaying && ((socks = calloc(2 * inflight, sizeof(int))) == NULL ||
	    (drain = start_drain(socks, inflight)) == -1)) {
		fprintf(stderr, "curl_floor: no relay sockets: %s\n",
		    strerror(errno));
		return 1;
	}
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) == -1 ||
	    curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
	    (multi = curl_multi_init()) == NULL) {
		fprintf(stderr, "curl_floor: libcurl would not start\n");
		return 1;
	}
	/* The headers llmgw sends. */
	headers = curl_slist_append(headers, "Expect:");
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "Accept: application/json");
	headers = curl_slist_append(headers, "anthropic-version: 2023-06-01");
	headers = curl_slist_append(headers, "x-api-key: stub");
	if (headers == NULL) {
		fprintf(stderr, "curl_floor: out of memory\n");
		return 1;
	}
	curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 256L);
	curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, on_timer);
	for (i = 0; i < inflight; i++) {
		if ((h = curl_easy_init()) == NULL) {
			fprintf(stderr, "curl_floor: curl_easy_init failed\n");
			return 1;
		}
		curl_easy_setopt(h, CURLOPT_URL, argv[1]);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS,
		    argc == 5 ? argv[4] : BODY);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 4096L);
		curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, discard);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION,
		    relaying ? relay : discard);
		if (relaying)
			curl_easy_setopt(h, CURLOPT_WRITEDATA, &socks[2 * i]);
		curl_multi_add_handle(multi, h);
	}
	cpu0 = cpu_seconds();
	switches0 = switches();
	t0 = mono_seconds();
	/* New transfers for "secs"; then those in flight end, so that the
	 * CPU counted is that of whole transfers. */
	running = 1;
	while (mono_seconds() - t0 < secs || running > 0) {
		now = mono_seconds();
		wait = timer_at < 0 ? 100 : timer_at <= now ? 0 :
		    (int)((timer_at - now) * 1e3) + 1;
		nev = epoll_wait(epfd, evs, 64, wait > 100 ? 100 : wait);
		for (i = 0; i < nev; i++) {
			flags = (evs[i].events & EPOLLIN ?
			    CURL_CSELECT_IN : 0) |
			    (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
			    (evs[i].events & (EPOLLERR | EPOLLHUP) ?
			    CURL_CSELECT_ERR : 0);
			curl_multi_socket_action(multi, evs[i].data.fd, flags,
			    &running);
		}
		if (timer_at >= 0 && mono_seconds() >= timer_at) {
			timer_at = -1;
			curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0,
			    &running);
		}
		while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			h = msg->easy_handle;
			if (msg->data.result != CURLE_OK)
				failed++;
			else
				done++;
			curl_multi_remove_handle(multi, h);
			if (mono_seconds() - t0 < secs &&
			    curl_multi_add_handle(multi, h) == CURLM_OK)
				running++;
		}
	}
	printf("{\"transfers\": %ld, \"failed\": %ld, \"cpu_us\": %.2f, "
	    "\"switches\": %.2f, \"per_second\": %.0f, "
	    "\"private_dirty_kb\": %ld}\n", done, failed,
	    done > 0 ? (cpu_seconds() - cpu0) / (double)done * 1e6 : 0,
	    done > 0 ? (switches() - switches0) / (double)done : 0,
	    done / (mono_seconds() - t0), private_dirty_kb());
	/* The process ends here and its handles go with it; the relay
	 * sockets are closed first, so that the drain ends, and waited for. */
	if (relaying) {
		for (i = 0; i < inflight; i++)
			close(socks[2 * i]);
		waitpid(drain, NULL, 0);
	}
	return failed > 0 && done == 0;
}
