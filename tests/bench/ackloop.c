/*
 * ackloop — the failover probe of `make bench`'s cluster section.
 *
 * Appends RECSIZE-byte records in writer's layout ("WW SSSSSSSSSSSS xxx\n",
 * WW = ID, sequence from 0; checklog verifies them) to FILE, one write() per
 * record, one after the other. After every write() that returned the whole
 * record it appends "SEQ START END\n" to ACKLOG (a local file, unbuffered,
 * so the driver can poll it while the loop runs); START and END are the
 * CLOCK_REALTIME times just before and just after the write(), in the format
 * of bash's $EPOCHREALTIME, so the driver can compare them with the moment it
 * sent kill -9: the first record whose START is after the kill is the first
 * write the cluster acknowledged after it.
 *
 * A failed or short write is logged as "SEQ START END FAIL ERRNO" (the
 * record may or may not have been stored) and the loop goes on with the next
 * sequence number; after 10 failures it gives up (exit 1). Bounded: stops
 * (exit 0) as soon as STOPFILE exists (checked before every write), after
 * COUNT records (-n, default 1000000) or after SECONDS (-d, default 120).
 *
 * usage: ackloop [-s RECSIZE] [-i ID] [-n COUNT] [-d SECONDS] FILE ACKLOG STOPFILE
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_real(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr, "usage: ackloop [-s RECSIZE] [-i ID] [-n COUNT] [-d SECONDS] FILE ACKLOG "
	                "STOPFILE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	size_t recsize = 100;
	unsigned long long count = 1000000;
	double seconds = 120;
	int id = 0, c;
	while ((c = getopt(argc, argv, "s:i:n:d:")) != -1) {
		switch (c) {
		case 's': recsize = strtoul(optarg, NULL, 10); break;
		case 'i': id = atoi(optarg); break;
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 'd': seconds = atof(optarg); break;
		default: usage();
		}
	}
	if (argc - optind != 3 || recsize < 20 || id < 0 || id > 99 || seconds <= 0)
		usage();
	const char *path = argv[optind], *ackpath = argv[optind + 1], *stopfile = argv[optind + 2];
	int fd = open(path, O_WRONLY | O_APPEND);
	if (fd < 0) {
		fprintf(stderr, "ackloop: open %s: %s\n", path, strerror(errno));
		return 1;
	}
	int ack = open(ackpath, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0644);
	if (ack < 0) {
		fprintf(stderr, "ackloop: open %s: %s\n", ackpath, strerror(errno));
		return 1;
	}
	char *rec = malloc(recsize);
	if (rec == NULL)
		return 1;
	memset(rec, 'x', recsize);
	rec[recsize - 1] = '\n';
	double deadline = now_mono() + seconds;
	int failures = 0;
	for (unsigned long long seq = 0; seq < count; seq++) {
		if (access(stopfile, F_OK) == 0 || now_mono() > deadline)
			break;
		char head[32], line[96];
		int n = snprintf(head, sizeof head, "%02d %012llu ", id, seq);
		memcpy(rec, head, (size_t)n);
		double t0 = now_real();
		ssize_t r = write(fd, rec, recsize);
		double t1 = now_real();
		int k;
		if (r != (ssize_t)recsize) {
			int e = r < 0 ? errno : EIO;
			fprintf(stderr, "ackloop: write %s (record %llu) after %.3f s: %s (returned %zd)\n",
			        path, seq, t1 - t0, r < 0 ? strerror(e) : "short write", r);
			k = snprintf(line, sizeof line, "%llu %.6f %.6f FAIL %d\n", seq, t0, t1, e);
			if (write(ack, line, (size_t)k) != k || ++failures == 10)
				return 1;
			continue;
		}
		k = snprintf(line, sizeof line, "%llu %.6f %.6f\n", seq, t0, t1);
		if (write(ack, line, (size_t)k) != k) {
			fprintf(stderr, "ackloop: write %s: %s\n", ackpath, strerror(errno));
			return 1;
		}
	}
	if (close(fd) != 0) {
		fprintf(stderr, "ackloop: close %s: %s\n", path, strerror(errno));
		return 1;
	}
	close(ack);
	free(rec);
	return 0;
}
