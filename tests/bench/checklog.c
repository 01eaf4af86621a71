/*
 * checklog — verify what writer appended, as read back through the file.
 *
 * Every line must be exactly RECSIZE bytes in writer's record layout, and in
 * each file the records of each writer id must appear with sequence numbers
 * 0, 1, 2, ... in order: nothing lost in the middle, duplicated, reordered or
 * torn, and no two appenders interleaved inside a record. Prints the total
 * number of records; exit status 1 on the first violation.
 *
 * -p: print "ID SEQ" for every record instead and check only the framing, for
 * a driver that knows which records may be missing (a write that failed may
 * or may not have been stored).
 *
 * usage: checklog [-s RECSIZE] [-p] FILE...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_WRITERS 100

static int opt_print;

static int check(const char *path, size_t recsize, unsigned long long *total)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		perror(path);
		return -1;
	}
	unsigned long long next[MAX_WRITERS] = { 0 }, line = 0;
	char *buf = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0;
	while ((len = getline(&buf, &cap, f)) > 0) {
		line++;
		unsigned id;
		unsigned long long seq;
		char sp1, sp2;
		if ((size_t)len != recsize || buf[len - 1] != '\n' ||
		    sscanf(buf, "%2u%c%12llu%c", &id, &sp1, &seq, &sp2) != 4 || sp1 != ' ' ||
		    sp2 != ' ' || id >= MAX_WRITERS || strspn(buf + 16, "x") != recsize - 17) {
			fprintf(stderr, "checklog: %s line %llu: malformed record (%zd bytes): %.40s\n",
			        path, line, len, buf);
			rc = -1;
			break;
		}
		if (opt_print) {
			printf("%u %llu\n", id, seq);
			continue;
		}
		if (seq != next[id]) {
			fprintf(stderr, "checklog: %s line %llu: writer %u sequence %llu, expected %llu\n",
			        path, line, id, seq, next[id]);
			rc = -1;
			break;
		}
		next[id]++;
	}
	if (rc == 0 && ferror(f)) {
		perror(path);
		rc = -1;
	}
	*total += line;
	free(buf);
	fclose(f);
	return rc;
}

int main(int argc, char **argv)
{
	size_t recsize = 100;
	int c;
	while ((c = getopt(argc, argv, "s:p")) != -1) {
		if (c == 's')
			recsize = strtoul(optarg, NULL, 10);
		else if (c == 'p')
			opt_print = 1;
		else
			return 2;
	}
	if (optind >= argc || recsize < 20) {
		fprintf(stderr, "usage: checklog [-s RECSIZE] [-p] FILE...\n");
		return 2;
	}
	unsigned long long total = 0;
	int rc = 0;
	for (int i = optind; i < argc; i++)
		rc |= check(argv[i], recsize, &total) != 0;
	if (!opt_print)
		printf("records=%llu\n", total);
	return rc ? 1 : 0;
}
