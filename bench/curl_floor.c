/*
 * The floor of llmgw's upstream side: the same POST to the stub's
 * /v1/messages that a /chat request makes, "inflight" at a time on one
 * libcurl multi handle driven as llmgw's loop thread drives it (its socket
 * and timer callbacks, epoll), for "secs" seconds, and nothing else: no
 * FastCGI, no JSON, no records.  Prints one line of JSON: the transfers
 * done, the failed ones, the CPU (user and system) this process used per
 * transfer, in microseconds, and its private dirty memory at the end in
 * KB (with "inflight" 1: the floor of one process that makes libcurl
 * transfers, as llmgw under mod_fcgid is).
 * With "body", that body instead (a streamed request: the floor of
 * relaying its events, which are read and dropped).
 *
 * usage: curl_floor url inflight secs [body]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

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

static double
cpu_seconds(void)
{
	struct rusage	 ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
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
	long			 inflight, i, done = 0, failed = 0;
	int			 running, left, nev, wait, flags;

	if (argc < 4 || argc > 5 ||
	    (inflight = strtol(argv[2], NULL, 10)) <= 0 ||
	    (secs = strtod(argv[3], NULL)) <= 0) {
		fprintf(stderr, "usage: curl_floor url inflight secs [body]\n");
		return 2;
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
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
		curl_multi_add_handle(multi, h);
	}
	cpu0 = cpu_seconds();
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
	    "\"per_second\": %.0f, \"private_dirty_kb\": %ld}\n", done, failed,
	    done > 0 ? (cpu_seconds() - cpu0) / (double)done * 1e6 : 0,
	    done / (mono_seconds() - t0), private_dirty_kb());
	/* The process ends here: its handles go with it. */
	return failed > 0 && done == 0;
}
