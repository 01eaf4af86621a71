/*
 * waitsize — poll stat(PATH) every 200 us until it succeeds with st_size ==
 * SIZE (or SIZE is -1 and stat merely succeeds), then print the wall-clock
 * time (CLOCK_REALTIME, seconds with microseconds, the format of bash's
 * $EPOCHREALTIME) so the driver can subtract the daemon's exec time.
 * Gives up after TIMEOUT seconds: prints the last size or error, exits 1.
 *
 * usage: waitsize PATH SIZE TIMEOUT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: waitsize PATH SIZE TIMEOUT\n");
		return 2;
	}
	long long want = strtoll(argv[2], NULL, 10);
	double timeout = atof(argv[3]);
	struct timespec start, now, nap = { 0, 200000 };
	clock_gettime(CLOCK_MONOTONIC, &start);
	struct stat st;
	int last_err = 0;
	long long last_size = -1;
	for (;;) {
		if (stat(argv[1], &st) == 0) {
			last_size = (long long)st.st_size;
			if (want < 0 || last_size == want)
				break;
		} else {
			last_err = errno;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 >
		    timeout) {
			fprintf(stderr, "waitsize: %s: gave up after %.0f s: size %lld, last error %s\n",
			        argv[1], timeout, last_size, last_err ? strerror(last_err) : "none");
			return 1;
		}
		nanosleep(&nap, NULL);
	}
	clock_gettime(CLOCK_REALTIME, &now);
	printf("%lld.%06ld\n", (long long)now.tv_sec, now.tv_nsec / 1000);
	return 0;
}
