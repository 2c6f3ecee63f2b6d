/*
 * The socket llmgw serves FastCGI on (listen.h).
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/err.h"
#include "listen.h"

#define LISTEN_BACKLOG	4096

/*
 * A unix socket at "path", made in a folder of its own that only we may
 * enter (mkdtemp), given its mode there, and only then renamed into
 * place: nobody can connect to it before it has its mode, and whoever
 * waits for the path (a web server, a test, systemd) can connect the
 * moment it appears.  A socket left by an earlier run is replaced; no
 * other file is.
 */
static int
listen_unix(const char *path, long mode, struct err *err)
{
	struct sockaddr_un	 sun;
	struct stat		 st;
	char			 dir[sizeof(sun.sun_path)], *slash;
	int			 fd = -1, rc;

	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		err_set(err, "listen %s: exists and is not a socket", path);
		return -1;
	}
	slash = strrchr(path, '/');
	rc = snprintf(dir, sizeof(dir), "%.*s/.llmgw.XXXXXX", (int)(slash -
	    path), path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (rc < 0 || (size_t)rc + 3 > sizeof(sun.sun_path)) {
		err_set(err, "listen %s: path too long", path);
		return -1;
	}
	if (mkdtemp(dir) == NULL) {
		err_set(err, "listen %s: a folder beside it: %s", path,
		    strerror(errno));
		return -1;
	}
	rc = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/s", dir);
	if (rc < 0 || (size_t)rc >= sizeof(sun.sun_path)) {
		err_set(err, "listen %s: path too long", path);
		goto fail;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1) {
		err_set(err, "listen %s: %s", path, strerror(errno));
		goto fail;
	}
	/* The web server's user must be able to connect. */
	if (chmod(sun.sun_path, (mode_t)mode) == -1) {
		err_set(err, "chmod %04lo %s: %s", mode, path,
		    strerror(errno));
		goto fail;
	}
	if (rename(sun.sun_path, path) == -1) {
		err_set(err, "listen %s: %s", path, strerror(errno));
		goto fail;
	}
	rmdir(dir);
	return fd;
fail:
	if (fd != -1)
		close(fd);
	unlink(sun.sun_path);
	rmdir(dir);
	return -1;
}

/* A TCP socket on "addr": "host:port", "[::1]:port" or ":port". */
static int
listen_inet(const char *addr, struct err *err)
{
	struct addrinfo		 hints, *res = NULL, *ai;
	char			 host[256];
	const char		*colon, *port;
	int			 fd = -1, on = 1, rc;

	if ((colon = strrchr(addr, ':')) == NULL || colon[1] == '\0') {
		err_set(err, "listen %s: expected a socket path, host:port, "
		    "[::1]:port or :port", addr);
		return -1;
	}
	if (addr[0] == '[' && colon > addr && colon[-1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr - 2),
		    addr + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr),
		    addr);
	port = colon + 1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host[0] != '\0' ? host : NULL, port, &hints,
	    &res)) != 0) {
		err_set(err, "listen %s: %s", addr, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol)) == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, LISTEN_BACKLOG) == 0)
			break;
		close(fd);
		fd = -1;
	}
	if (fd == -1)
		err_set(err, "listen %s: %s", addr, strerror(errno));
	freeaddrinfo(res);
	return fd;
}

int
listen_open(const char *addr, long mode, struct err *err)
{
	if (strchr(addr, '/') != NULL)
		return listen_unix(addr, mode, err);
	return listen_inet(addr, err);
}

static int
is_listening(int fd)
{
	int		 v = 0;
	socklen_t	 len = sizeof(v);

	return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 &&
	    v != 0;
}

int
listen_inherited(void)
{
	const char	*pid = getenv("LISTEN_PID"), *n = getenv("LISTEN_FDS");

	if (pid != NULL && n != NULL && strtol(pid, NULL, 10) == getpid() &&
	    strtol(n, NULL, 10) >= 1 && is_listening(3))
		return 3;
	if (is_listening(0))
		return 0;
	return -1;
}

int
listen_is_mod_fcgid(int fd)
{
	struct sockaddr_un	 sun;
	socklen_t		 len = sizeof(sun);
	const char		*base;

	memset(&sun, 0, sizeof(sun));
	if (getsockname(fd, (struct sockaddr *)&sun, &len) == -1 ||
	    sun.sun_family != AF_UNIX || sun.sun_path[0] == '\0')
		return 0;
	base = strrchr(sun.sun_path, '/');
	base = base != NULL ? base + 1 : sun.sun_path;
	return strspn(base, "0123456789") > 0 &&
	    base[strspn(base, "0123456789")] == '.' &&
	    strspn(base + strspn(base, "0123456789") + 1, "0123456789") ==
	    strlen(base + strspn(base, "0123456789") + 1) &&
	    base[strspn(base, "0123456789") + 1] != '\0';
}