/* null_relay.c — the floor of bench_peer.py's one-way latency: the hops a
 * message takes between two headless peers (a pipe into the sender, a TCP
 * connection, a pipe out of the receiver), through two relays that do
 * nothing else. Built for the benchmark; not installed.
 *
 *   null_relay listen PORT   accepts one connection on 127.0.0.1:PORT,
 *                            prints "ready", then copies it to stdout;
 *   null_relay connect PORT  copies stdin to a connection to it. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int
copy(int in, int out)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0)
				return 1;
			off += w;
		}
	}
	return n < 0;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;
	int one = 1, fd, port = argc == 3 ? atoi(argv[2]) : 0;

	if (port <= 0 || port > 65535 ||
	    (strcmp(argv[1], "listen") != 0 && strcmp(argv[1], "connect") != 0)) {
		fprintf(stderr, "usage: null_relay listen|connect PORT\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) {
		perror("null_relay: socket");
		return 1;
	}
	if (strcmp(argv[1], "listen") == 0) {
		int s = fd;
		(void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 1) < 0) {
			perror("null_relay: listen");
			return 1;
		}
		printf("ready\n");
		fflush(stdout);
		if ((fd = accept(s, NULL, NULL)) < 0) {
			perror("null_relay: accept");
			return 1;
		}
		close(s);
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		return copy(fd, STDOUT_FILENO);
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("null_relay: connect");
		return 1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return copy(STDIN_FILENO, fd);
}
