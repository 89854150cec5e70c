// SPDX-License-Identifier: GPL-2.0
/*
 * Loopback UDP for the smoke workload (busybox has no UDP client or
 * server): one socket sends a datagram to a second one on 127.0.0.1, which
 * must receive it intact; exits 0 when it does.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 5 };
	socklen_t len = sizeof(a);
	static const char msg[] = "over-udp";
	char buf[64];
	int rx, tx;
	ssize_t n;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rx = socket(AF_INET, SOCK_DGRAM, 0);
	tx = socket(AF_INET, SOCK_DGRAM, 0);
	if (rx < 0 || tx < 0 || bind(rx, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(rx, (struct sockaddr *)&a, &len) ||
	    setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))) {
		perror("udp: socket");
		return 1;
	}
	if (sendto(tx, msg, sizeof(msg), 0, (struct sockaddr *)&a, sizeof(a)) != sizeof(msg)) {
		perror("udp: sendto");
		return 1;
	}
	n = recv(rx, buf, sizeof(buf), 0);
	if (n != sizeof(msg) || memcmp(buf, msg, sizeof(msg))) {
		fprintf(stderr, "udp: nothing or something else received\n");
		return 1;
	}
	return 0;
}
