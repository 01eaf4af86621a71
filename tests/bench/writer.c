/*
 * writer — small-record append load generator for `make bench`.
 *
 * Every thread opens its own descriptor on its target with O_WRONLY|O_APPEND
 * and issues exactly one write() per record (optionally followed by
 * fdatasync(), the durable baseline on a plain file system), timing each call
 * with CLOCK_MONOTONIC. With one FILE all threads share it; with as many FILEs
 * as threads, thread i writes FILE i.
 *
 * Record layout (RECSIZE bytes, newline included), checked by checklog:
 *     "WW SSSSSSSSSSSS xxxx...x\n"   WW = thread id, S = per-thread sequence
 *
 * Output is one line of key=value pairs on stdout; exit status 1 on any error
 * (failed or short write), so the driver can tell "slow" from "broken".
 *
 * usage: writer [-t THREADS] [-d SECONDS | -n COUNT] [-s RECSIZE] [-S] [-c] FILE...
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64

/* Per-thread state; samples are owned by the thread until it is joined. */
struct worker {
	pthread_t tid;
	int id;
	const char *path;
	uint64_t done;     /* records written (write returned the full record) */
	uint64_t *lat_ns;  /* one sample per record */
	size_t lat_cap;
	int err;           /* errno of the first failure, 0 if none */
};

static int opt_sync;       /* fdatasync after every write */
static int opt_create;     /* O_CREAT (plain files; minikafka refuses creation) */
static size_t opt_recsize = 100;
static uint64_t opt_count; /* records per thread, 0 = run for opt_seconds */
static double opt_seconds = 3.0;
static atomic_int stop;
static pthread_barrier_t start_barrier;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	char *rec = malloc(opt_recsize);
	int fd = open(w->path, O_WRONLY | O_APPEND | (opt_create ? O_CREAT : 0), 0644);
	if (fd < 0 || rec == NULL) {
		w->err = fd < 0 ? errno : ENOMEM;
		fprintf(stderr, "writer: open %s: %s\n", w->path, strerror(w->err));
	}
	pthread_barrier_wait(&start_barrier);
	if (w->err)
		goto out;
	memset(rec, 'x', opt_recsize);
	rec[opt_recsize - 1] = '\n';
	for (uint64_t seq = 0; !atomic_load_explicit(&stop, memory_order_relaxed); seq++) {
		if (opt_count && seq >= opt_count)
			break;
		char head[32];
		int n = snprintf(head, sizeof head, "%02d %012llu ", w->id, (unsigned long long)seq);
		memcpy(rec, head, (size_t)n);
		if (w->done == w->lat_cap) {
			size_t cap = w->lat_cap ? w->lat_cap * 2 : 1 << 16;
			uint64_t *p = realloc(w->lat_ns, cap * sizeof *p);
			if (p == NULL) {
				w->err = ENOMEM;
				break;
			}
			w->lat_ns = p;
			w->lat_cap = cap;
		}
		uint64_t t0 = now_ns();
		ssize_t r = write(fd, rec, opt_recsize);
		if (r != (ssize_t)opt_recsize) {
			w->err = r < 0 ? errno : EIO;
			fprintf(stderr, "writer: write %s: %s (returned %zd)\n", w->path,
			        strerror(w->err), r);
			break;
		}
		if (opt_sync && fdatasync(fd) != 0) {
			w->err = errno;
			fprintf(stderr, "writer: fdatasync %s: %s\n", w->path, strerror(w->err));
			break;
		}
		w->lat_ns[w->done++] = now_ns() - t0;
	}
	if (close(fd) != 0 && !w->err) {
		w->err = errno;
		fprintf(stderr, "writer: close %s: %s\n", w->path, strerror(w->err));
	}
out:
	free(rec);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples, in microseconds. */
static double pct_us(const uint64_t *s, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)s[k - 1] / 1000.0;
}

static void usage(void)
{
	fprintf(stderr, "usage: writer [-t THREADS] [-d SECONDS | -n COUNT] [-s RECSIZE] "
	                "[-S] [-c] FILE...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int threads = 1, c;
	while ((c = getopt(argc, argv, "t:d:n:s:Sc")) != -1) {
		switch (c) {
		case 't': threads = atoi(optarg); break;
		case 'd': opt_seconds = atof(optarg); break;
		case 'n': opt_count = strtoull(optarg, NULL, 10); break;
		case 's': opt_recsize = strtoul(optarg, NULL, 10); break;
		case 'S': opt_sync = 1; break;
		case 'c': opt_create = 1; break;
		default: usage();
		}
	}
	int nfiles = argc - optind;
	if (threads < 1 || threads > MAX_THREADS || opt_recsize < 20 || nfiles < 1 ||
	    (nfiles != 1 && nfiles != threads) || (!opt_count && opt_seconds <= 0))
		usage();

	static struct worker w[MAX_THREADS];
	pthread_barrier_init(&start_barrier, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++) {
		w[i].id = i;
		w[i].path = argv[optind + (nfiles == 1 ? 0 : i)];
		if (pthread_create(&w[i].tid, NULL, run, &w[i]) != 0) {
			perror("writer: pthread_create");
			return 1;
		}
	}
	pthread_barrier_wait(&start_barrier);
	uint64_t t0 = now_ns();
	if (!opt_count) {
		struct timespec d = { (time_t)opt_seconds,
		                      (long)((opt_seconds - (double)(time_t)opt_seconds) * 1e9) };
		while (nanosleep(&d, &d) != 0 && errno == EINTR)
			;
		atomic_store(&stop, 1);
	}
	uint64_t total = 0;
	int failed = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		total += w[i].done;
		failed |= w[i].err != 0;
	}
	double secs = (double)(now_ns() - t0) / 1e9;

	uint64_t *all = malloc((total ? total : 1) * sizeof *all);
	if (all == NULL) {
		perror("writer: malloc");
		return 1;
	}
	size_t n = 0;
	for (int i = 0; i < threads; i++) {
		memcpy(all + n, w[i].lat_ns, w[i].done * sizeof *all);
		n += w[i].done;
		free(w[i].lat_ns);
	}
	qsort(all, n, sizeof *all, cmp_u64);
	printf("threads=%d files=%d sync=%d records=%llu seconds=%.3f rec_per_s=%.0f "
	       "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f errors=%d\n",
	       threads, nfiles, opt_sync, (unsigned long long)total, secs,
	       secs > 0 ? (double)total / secs : 0.0, pct_us(all, n, 50), pct_us(all, n, 99),
	       pct_us(all, n, 99.9), n ? (double)all[n - 1] / 1000.0 : 0.0, failed);
	free(all);
	return failed ? 1 : 0;
}
