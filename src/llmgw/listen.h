/*
 * The socket llmgw serves FastCGI on: one it makes (--listen, "listen"),
 * or one it inherits from a web server, spawn-fcgi or systemd.
 */
#ifndef LISTEN_H
#define LISTEN_H

struct err;

/*
 * A listening socket for "addr": a path ("/run/llmgw.sock", given "mode"),
 * "host:port", "[::1]:port" or ":port" (all addresses).  Returns the fd,
 * or -1 with "err" set.
 */
int	 listen_open(const char *addr, long mode, struct err *);

/*
 * The listening socket we were started with, if any: fd 0 as a web server
 * or spawn-fcgi passes it, or the first systemd socket (LISTEN_FDS).
 * Returns the fd, or -1 if there is none (plain CGI, or a terminal).
 */
int	 listen_inherited(void);

/*
 * 1 if "fd" is a socket Apache's mod_fcgid made, <FcgidIPCDir>/<pid>.<n>:
 * mod_fcgid sends such a process one request at a time.
 */
int	 listen_is_mod_fcgid(int fd);

#endif /* LISTEN_H */
