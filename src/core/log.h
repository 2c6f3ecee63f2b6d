/*
 * Operator log on stderr, which the web server keeps (lighttpd's
 * server.errorlog, Apache's ErrorLog, nginx's error_log).  Every line is
 * written with one write(2), so lines of concurrent threads never mix.
 */
#ifndef LOG_H
#define LOG_H

#include <stddef.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG
};

/* "prog" is borrowed for the life of the process. */
void	 log_init(const char *prog, enum log_level);
void	 log_set_level(enum log_level);
/* Send lines to syslog (facility daemon) instead of stderr, or back. */
void	 log_use_syslog(int on);
int	 log_enabled(enum log_level);
/* Parse "error", "warn", "info" or "debug"; -1 if none of those. */
int	 log_level_parse(const char *);

void	 log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
/*
 * An error line that ends with "len" bytes of data, whole, however long:
 * for records that could not be stored anywhere else.
 */
void	 log_error_blob(const char *what, const char *data, size_t len);

/* An access-log line: "<time> <prog>[<pid>]: access: <text>", at info. */
void	 log_access(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif /* LOG_H */
