#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static const char	*log_prog = "llmgw";
static atomic_int	 log_level = LOG_LEVEL_INFO;
static atomic_int	 log_syslog;
static atomic_long	 log_pid;	/* none of our programs forks */
static const char *const log_names[] = { "error", "warn", "info", "debug" };
static const int	 log_prios[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
			    LOG_DEBUG };

void
log_use_syslog(int on)
{
	if (on && !atomic_load(&log_syslog))
		openlog(log_prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!on && atomic_load(&log_syslog))
		closelog();
	atomic_store(&log_syslog, on);
}

/* Our pid, asked of the kernel once rather than for every line. */
static long
self_pid(void)
{
	long	 pid = atomic_load(&log_pid);

	if (pid == 0) {
		pid = (long)getpid();
		atomic_store(&log_pid, pid);
	}
	return pid;
}

void
log_init(const char *prog, enum log_level level)
{
	log_prog = prog;
	atomic_store(&log_level, level);
}

void
log_set_level(enum log_level level)
{
	atomic_store(&log_level, level);
}

int
log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&log_level);
}

int
log_level_parse(const char *s)
{
	size_t	 i;

	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (strcmp(s, log_names[i]) == 0)
			return (int)i;
	return -1;
}

static void
log_write(const char *line, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		n = write(STDERR_FILENO, line, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;		/* nowhere left to report it */
		line += n;
		len -= (size_t)n;
	}
}

static void
log_vline_as(enum log_level level, const char *tag, const char *fmt,
    va_list ap)
{
	char		 line[2048];
	struct tm	 tm;
	time_t		 now;
	int		 i, n, m;
	int		 saved = errno;

	if (!log_enabled(level))
		return;
	if (atomic_load(&log_syslog)) {
		vsnprintf(line, sizeof(line), fmt, ap);
		syslog(log_prios[level], "%s", line);
		errno = saved;
		return;
	}
	now = time(NULL);
	gmtime_r(&now, &tm);
	n = snprintf(line, sizeof(line),
	    "%04d-%02d-%02dT%02d:%02d:%02dZ %s[%ld]: %s: ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, log_prog, self_pid(), tag);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	if ((size_t)(n + m) > sizeof(line) - 2)
		m = (int)sizeof(line) - 2 - n;	/* truncated: keep the \n */
	/* What an upstream or a client said may be in the message: one
	 * line per entry, whatever it held. */
	for (i = n; i < n + m; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	n += m;
	line[n++] = '\n';
	log_write(line, (size_t)n);
	errno = saved;
}

static void
log_vline(enum log_level level, const char *fmt, va_list ap)
{
	log_vline_as(level, log_names[level], fmt, ap);
}

#define LOG_FN(name, level)					\
void								\
name(const char *fmt, ...)					\
{								\
	va_list	 ap;						\
								\
	va_start(ap, fmt);					\
	log_vline(level, fmt, ap);				\
	va_end(ap);						\
}

LOG_FN(log_error, LOG_LEVEL_ERROR)
LOG_FN(log_warn, LOG_LEVEL_WARN)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_debug, LOG_LEVEL_DEBUG)

void
log_error_blob(const char *what, const char *data, size_t len)
{
	char		 head[512];
	struct iovec	 iov[3];
	struct tm	 tm;
	time_t		 now = time(NULL);
	size_t		 off = 0, skip;
	ssize_t		 n;
	int		 i, h;

	gmtime_r(&now, &tm);
	h = snprintf(head, sizeof(head), "%04d-%02d-%02dT%02d:%02d:%02dZ "
	    "%s[%ld]: error: %s: ", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, log_prog,
	    self_pid(), what);
	if (h < 0 || (size_t)h >= sizeof(head))
		h = (int)sizeof(head) - 1;
	iov[0].iov_base = head;
	iov[0].iov_len = (size_t)h;
	iov[1].iov_base = (void *)data;
	iov[1].iov_len = len;
	iov[2].iov_base = "\n";
	iov[2].iov_len = 1;
	/* One writev: the line stays whole when the pipe allows. */
	for (;;) {
		for (i = 0, skip = off; i < 3 && skip >= iov[i].iov_len; i++)
			skip -= iov[i].iov_len;
		if (i == 3)
			return;
		iov[i].iov_base = (char *)iov[i].iov_base + skip;
		iov[i].iov_len -= skip;
		n = writev(STDERR_FILENO, iov + i, 3 - i);
		iov[i].iov_base = (char *)iov[i].iov_base - skip;
		iov[i].iov_len += skip;
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

void
log_access(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vline_as(LOG_LEVEL_INFO, "access", fmt, ap);
	va_end(ap);
}
