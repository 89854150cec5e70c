/* launch CMD ARGS...: runs CMD once and writes to file descriptor 3
 * "WALL USER SYS MAXRSS STATUS": the wall time from just before the spawn
 * to the return of wait4 (seconds), the user and system time and the peak
 * resident set size (KiB) that wait4 reports for the process and its
 * waited-for descendants, and the exit status (128+N for signal N).
 * A small static program, so that the child it spawns starts from a small
 * address space (the peak RSS of a spawned process counts the address space
 * it was spawned from until it executes its program). */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

int main(int argc, char **argv)
{
	struct timespec t0, t1;
	struct rusage ru;
	pid_t pid;
	int st;

	if (argc < 2 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0)
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (posix_spawnp(&pid, argv[1], NULL, NULL, argv + 1, environ) != 0)
		return 127;
	if (wait4(pid, &st, 0, &ru) < 0)
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dprintf(3, "%.9f %ld.%06ld %ld.%06ld %ld %d\n",
		(double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
		(long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
		(long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec,
		ru.ru_maxrss,
		WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return 0;
}
