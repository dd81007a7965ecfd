/*
 * accept.c: the shim's accept() and close(), which civetweb calls instead
 * of libc's.
 *
 * Admission has to happen when a connection is accepted: once civetweb
 * has queued it, a worker thread waits on it until its request arrives or
 * times out, so a connection over a limit would hold a worker as long as
 * any other.  civetweb 1.15 has no callback at accept time and never shows
 * a connection's socket, so the shim defines accept() itself.  The dynamic
 * linker binds libcivetweb's call of accept() to the executable's
 * definition (the executable comes first in symbol lookup, and the linker
 * exports it because a linked library references it); this accept() takes
 * the connection with libc's accept4() and passes it through
 * conns_admit().  A refused connection gets a short JSON answer, written
 * without waiting, and is closed at once: 429 too_many_connections over
 * the per-client limit, 503 server_busy when no worker can be freed.
 * Nothing else in the shim accepts connections.
 *
 * close() is the shim's for the same reason: the connection table must
 * forget a socket before its descriptor is closed and reused, or the
 * watchdog could shut down whatever gets that number next (civetweb's
 * connection_close callback misses sockets it closes without serving
 * them, as after a failed TLS handshake).  It costs one array lookup for
 * every other descriptor (libpq's, the log's).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "accept.h"
#include "conns.h"

/*
 * libc's accept4() is declared only under _GNU_SOURCE, which would also
 * turn accept()'s declared address argument into a transparent union that
 * this definition could not match.
 */
extern int	accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);

/*
 * A descriptor kept in reserve: when the process runs out of them, accept
 * fails and the listening socket stays readable, so civetweb's accept loop
 * would spin; closing the spare lets the shim take the connection, refuse
 * it and close it.
 */
static int spare_fd = -1;

/* Opens the spare descriptor. */
void
accept_reserve_fd(void)
{
	if (spare_fd < 0)
		spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Writes a refusal, if the socket takes it at once, and closes the connection. */
static void
refuse(int fd, int status)
{
	char		msg[512],
				date[64];
	const char *body = status == CONNS_TOO_MANY_FROM_CLIENT ?
		"{\"error\": \"too many connections from this address; retry later\", \"code\": \"too_many_connections\"}\n" :
		"{\"error\": \"the server is busy; retry later\", \"code\": \"server_busy\"}\n";
	time_t		now = time(NULL);
	struct tm	tm;
	int			n;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	n = snprintf(msg, sizeof(msg),
				 "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
				 "Content-Length: %zu\r\nCache-Control: no-store\r\nRetry-After: 1\r\n\r\n%s",
				 status, status == CONNS_TOO_MANY_FROM_CLIENT ? "Too Many Requests" : "Service Unavailable",
				 date, strlen(body), body);
	if (n > 0 && (size_t) n < sizeof(msg))
		(void) send(fd, msg, (size_t) n, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

/* civetweb's accept(): libc's, then admission. */
int
accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	struct sockaddr_storage peer;
	socklen_t	len = sizeof(peer);
	int			c = accept4(fd, (struct sockaddr *) &peer, &len, SOCK_CLOEXEC);
	int			verdict;

	if (c < 0)
	{
		int			err = errno;

		if ((err == EMFILE || err == ENFILE) && spare_fd >= 0)
		{
			close(spare_fd);
			c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0)
			{
				refuse(c, CONNS_BUSY);
				conns_count_refused_busy();
			}
			spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		}
		errno = err;
		return -1;
	}
	if (addr && addrlen)
	{
		memcpy(addr, &peer, *addrlen < len ? *addrlen : len);
		*addrlen = len;
	}
	/* The shim listens on IPv4 only; anything else is civetweb's alone. */
	if (peer.ss_family != AF_INET)
		return c;
	verdict = conns_admit(c, (const struct sockaddr_in *) &peer);
	if (verdict == CONNS_ADMIT)
		return c;
	refuse(c, verdict);
	/* civetweb treats a failed accept as "nothing to do" and polls again. */
	errno = EAGAIN;
	return -1;
}

/*
 * close() for the whole process: the connection table forgets the
 * descriptor first, then the kernel closes it (the system call itself, as
 * libc's close() makes it; the shim does not use thread cancellation).
 */
int
close(int fd)
{
	conns_forget_fd(fd);
	return (int) syscall(SYS_close, fd);
}
