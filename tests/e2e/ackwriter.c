/*
 * ackwriter — a producer that records what was acknowledged.
 *
 *   ackwriter [-n COUNT] [-b BATCH] [-l MIN:MAX] [-r] FILE ACKLOG TAG
 *
 * Appends records to FILE (a partition file on a minikafka mount), BATCH
 * records per write(2), and after each write() has returned the full length
 * appends the highest sequence number of that batch to ACKLOG (a file on a
 * normal file system). Because the writes are sequential, every record with a
 * sequence number <= the last line of ACKLOG was acknowledged by the daemon;
 * the crash test checks that exactly those survive a kill -9, in order, once.
 *
 * Record format (one line):  TAG SEQ LEN PAYLOAD
 * where SEQ counts from 0, PAYLOAD is LEN copies of the letter 'a' + SEQ % 26
 * and LEN is a pseudo-random length in [MIN, MAX] derived from SEQ, so a torn
 * (cut) or garbled record never parses. verify_log.py checks the format.
 *
 * -n COUNT  stop after COUNT records (default 0: until a write fails)
 * -r        reopen FILE for every batch (exercises open/flush/release)
 *
 * Exit status: 0 when COUNT records were written, 2 when a write failed (the
 * expected end when the daemon is killed), 1 on usage or local errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned rec_len(unsigned long long seq, unsigned min, unsigned max)
{
	unsigned long long x = seq * 0x9E3779B97F4A7C15ull;
	x ^= x >> 29;
	return min + (unsigned)(x % (max - min + 1));
}

/* Writes exactly len bytes to a local file or exits. */
static void write_local(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			perror("ackwriter: ack log write");
			exit(1);
		}
		buf += n;
		len -= (size_t)n;
	}
}

int main(int argc, char **argv)
{
	unsigned long long count = 0, seq = 0;
	unsigned batch = 1, min = 1, max = 64;
	int reopen = 0, opt;

	while ((opt = getopt(argc, argv, "n:b:l:r")) != -1) {
		switch (opt) {
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 'b': batch = (unsigned)atoi(optarg); break;
		case 'l':
			if (sscanf(optarg, "%u:%u", &min, &max) != 2 || min > max)
				goto usage;
			break;
		case 'r': reopen = 1; break;
		default: goto usage;
		}
	}
	if (argc - optind != 3 || batch == 0)
		goto usage;
	const char *path = argv[optind], *ackpath = argv[optind + 1];
	const char *tag = argv[optind + 2];

	int ack = open(ackpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (ack < 0) {
		perror(ackpath);
		return 1;
	}
	size_t cap = (size_t)batch * (max + strlen(tag) + 64);
	char *buf = malloc(cap);
	if (!buf)
		return 1;
	int fd = -1;
	for (;;) {
		if (count && seq >= count)
			break;
		size_t len = 0;
		unsigned long long first = seq;
		for (unsigned i = 0; i < batch && (!count || seq < count); i++, seq++) {
			unsigned l = rec_len(seq, min, max);
			len += (size_t)sprintf(buf + len, "%s %llu %u ", tag, seq, l);
			memset(buf + len, 'a' + (int)(seq % 26), l);
			len += l;
			buf[len++] = '\n';
		}
		if (fd < 0) {
			fd = open(path, O_WRONLY | O_APPEND);
			if (fd < 0) {
				fprintf(stderr, "ackwriter %s: open: %s after %llu records\n", tag,
					strerror(errno), first);
				return 2;
			}
		}
		ssize_t n;
		do
			n = write(fd, buf, len);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)len) {
			fprintf(stderr, "ackwriter %s: write returned %zd (%s) after %llu records\n",
				tag, n, n < 0 ? strerror(errno) : "short", first);
			return 2;
		}
		/* Acknowledged: the daemon returned from write(). */
		char line[32];
		int ll = snprintf(line, sizeof line, "%llu\n", seq - 1);
		write_local(ack, line, (size_t)ll);
		if (reopen) {
			if (close(fd) != 0) {
				fprintf(stderr, "ackwriter %s: close: %s\n", tag, strerror(errno));
				return 2;
			}
			fd = -1;
		}
	}
	if (fd >= 0 && close(fd) != 0) {
		fprintf(stderr, "ackwriter %s: close: %s\n", tag, strerror(errno));
		return 2;
	}
	free(buf);
	close(ack);
	return 0;
usage:
	fprintf(stderr, "usage: ackwriter [-n COUNT] [-b BATCH] [-l MIN:MAX] [-r] FILE ACKLOG TAG\n");
	return 1;
}
