/*
 * kload — the Kafka load generator of `make bench` (librdkafka).
 *
 * Three modes, each a bounded run that prints one line of key=value pairs on
 * stdout and exits 1 on any error (a failed delivery, a missing or malformed
 * record, a time limit passed), so the driver tells "slow" from "broken":
 *
 *   produce  N records of SIZE bytes to one partition (-p P) or round robin
 *            over all partitions of the topic (-p -1). The producer is tuned
 *            for throughput (linger.ms, batch.num.messages=10000, a deep
 *            queue); the run lasts from the first produce() until the last
 *            delivery report, and every report must say success.
 *            Prints records, secs, rec_per_s, mb_per_s, cpu_pct (this
 *            process, % of one core, over the timed part) and unordered:
 *            reports whose offset is not above the previous one of their
 *            partition (a batch retried after a leader change: without
 *            idempotence Kafka stores it twice; the driver decides).
 *   consume  N records from the beginning of partition P with librdkafka's
 *            simple consumer (consume_start: assign() without a group, so no
 *            coordinator), fetch settings tuned for throughput (16 MiB per
 *            partition per fetch, a deep local queue). Every value must
 *            be SIZE bytes in the layout below with sequence numbers rising
 *            (one kload produce run per partition; with -R a sequence number
 *            not above the previous one, a record stored twice, is counted
 *            in repeats instead). Offsets must rise. Prints records, secs,
 *            rec_per_s, mb_per_s, cpu_pct, repeats.
 *   latency  records to partition P at a fixed RATE for SECS seconds, after
 *            WARMUP seconds at the same rate that are not counted; a consumer
 *            in this process, assigned at the partition's end before the
 *            first record is sent, reads them back. Each value carries its
 *            send time (CLOCK_MONOTONIC, the same clock in both threads).
 *            linger.ms=0 and Nagle off. Prints the end-to-end (send to
 *            consumed) p50/p99/p99.9/max in microseconds, and the same for
 *            the producer's acknowledgement (send to delivery report).
 *
 * Value layout (SIZE bytes, SIZE >= 40, no newline: the mount shows each
 * value followed by one '\n', as a line):
 *     "KL SSSSSSSSSSSS TTTTTTTTTTTTTTTTTTTT xxxx...x"
 * K is 'K' for counted records and 'W' for latency warm-up ones; S is the
 * sequence from 0 in this run; T the send time in ns (0 for produce).
 *
 * Every loop is bounded: -T LIMIT seconds (default 120) for the whole run;
 * past it the run fails.
 *
 * usage: kload produce -b HOST:PORT -t TOPIC [-p P|-1] [-n N] [-s SIZE]
 *                      [-a ACKS] [-l LINGER_MS] [-T LIMIT] [-X key=value]...
 *        kload consume -b HOST:PORT -t TOPIC [-p P] -n N [-s SIZE] [-T LIMIT] [-R]
 *                      [-X key=value]...
 *        kload latency -b HOST:PORT -t TOPIC [-p P] [-r RATE] [-d SECS]
 *                      [-w WARMUP] [-a ACKS] [-s SIZE] [-T LIMIT] [-X k=v]...
 * -X sets any other librdkafka property (applied to the producer and the
 * consumer alike, after kload's own settings).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#define MAX_X   32
#define HDR_LEN 37 /* "KL SSSSSSSSSSSS TTTTTTTTTTTTTTTTTTTT " */

static const char *opt_broker = "127.0.0.1:9092";
static const char *opt_topic;
static int32_t opt_part = 0;
static uint64_t opt_count = 1000000;
static size_t opt_size = 100;
static const char *opt_acks = "-1";
static int opt_linger = 5;
static double opt_limit = 120;
static double opt_rate = 10000, opt_secs = 10, opt_warmup = 1;
static int opt_repeats; /* consume: a sequence number not above the last is counted, not an error */
static const char *opt_x[MAX_X];
static int n_x;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of this process (all threads), ns. */
static uint64_t cpu_ns(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
	       (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

static uint64_t t_deadline; /* now_ns() past which the run fails */
static int past_deadline(void) { return now_ns() > t_deadline; }
static int ms_left(void)
{
	uint64_t t = now_ns();
	return t >= t_deadline ? 0 : (int)((t_deadline - t) / 1000000u);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("kload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* --- configuration ----------------------------------------------------------- */

static void set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char err[256];
	if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK)
		die("%s=%s: %s", k, v, err);
}

/* The -X properties, "key=value" each. */
static void set_x(rd_kafka_conf_t *conf)
{
	for (int i = 0; i < n_x; i++) {
		char k[128];
		const char *eq = strchr(opt_x[i], '=');
		if (!eq || eq == opt_x[i] || (size_t)(eq - opt_x[i]) >= sizeof k)
			die("-X %s: expected key=value", opt_x[i]);
		memcpy(k, opt_x[i], (size_t)(eq - opt_x[i]));
		k[eq - opt_x[i]] = '\0';
		set(conf, k, eq + 1);
	}
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if (level <= 4) /* warnings and worse: a failing run should say why */
		fprintf(stderr, "kload: librdkafka %s: %s\n", fac, buf);
}

static rd_kafka_conf_t *base_conf(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	set(conf, "bootstrap.servers", opt_broker);
	set(conf, "client.id", "kload");
	set(conf, "log.connection.close", "false");
	rd_kafka_conf_set_log_cb(conf, log_cb);
	return conf;
}

static rd_kafka_t *new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
	char err[512];
	set_x(conf);
	rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
	if (!rk)
		die("rd_kafka_new: %s", err);
	return rk;
}

/* Partitions of the topic (asks the broker; the topic must exist). */
static int topic_partitions(rd_kafka_t *rk)
{
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, opt_topic, NULL);
	const struct rd_kafka_metadata *md;
	int n = -1;
	while (!past_deadline()) {
		rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 5000);
		if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (md->topic_cnt == 1 && md->topics[0].err == 0 && md->topics[0].partition_cnt > 0) {
				n = md->topics[0].partition_cnt;
				int ok = 1;
				for (int i = 0; i < n; i++)
					ok &= md->topics[0].partitions[i].leader >= 0;
				rd_kafka_metadata_destroy(md);
				if (ok)
					break;
				n = -1;
			} else {
				rd_kafka_metadata_destroy(md);
			}
		}
		usleep(100000);
	}
	rd_kafka_topic_destroy(t);
	if (n < 0)
		die("topic %s: no metadata with a leader for every partition", opt_topic);
	return n;
}

/* --- values ------------------------------------------------------------------ */

static void value_fill(char *v, char kind, uint64_t seq, uint64_t ts)
{
	char h[HDR_LEN + 1];
	snprintf(h, sizeof h, "%cL %012" PRIu64 " %020" PRIu64 " ", kind, seq % 1000000000000u, ts);
	memcpy(v, h, HDR_LEN);
}

/* Parses a value; 0 if it is one of ours of SIZE bytes. */
static int value_parse(const char *v, size_t len, char *kind, uint64_t *seq, uint64_t *ts)
{
	if (len != opt_size || (v[0] != 'K' && v[0] != 'W') || v[1] != 'L' || v[2] != ' ' || v[15] != ' ' ||
	    v[36] != ' ')
		return -1;
	uint64_t s = 0, t = 0;
	for (int i = 3; i < 15; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		s = s * 10 + (uint64_t)(v[i] - '0');
	}
	for (int i = 16; i < 36; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		t = t * 10 + (uint64_t)(v[i] - '0');
	}
	*kind = v[0];
	*seq = s;
	*ts = t;
	return 0;
}

/* --- percentiles ------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}
static double pct_us(const uint64_t *sorted, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return (double)sorted[i < n ? i : n - 1] / 1000.0;
}

/* --- produce ----------------------------------------------------------------- */

/* Delivery reports; touched only by the thread serving rd_kafka_poll/flush. */
static uint64_t dr_ok, dr_failed;
static char dr_first_err[256];
static int64_t *dr_last_off; /* per partition: last offset reported, for the order check */
static uint64_t dr_unordered;
static uint64_t *ack_ns; /* latency mode: per record, send -> report */
static uint64_t *send_ns;
static size_t ack_cap;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk, (void)opaque;
	if (m->err) {
		if (dr_failed++ == 0)
			snprintf(dr_first_err, sizeof dr_first_err, "%s [%d]: %s", rd_kafka_topic_name(m->rkt),
				 (int)m->partition, rd_kafka_err2str(m->err));
		return;
	}
	dr_ok++;
	if (dr_last_off && m->partition >= 0) {
		if (m->offset <= dr_last_off[m->partition] && dr_unordered++ < 5)
			fprintf(stderr, "kload: partition %d: delivery report offset %" PRId64 " after %" PRId64 "\n",
				(int)m->partition, (int64_t)m->offset, dr_last_off[m->partition]);
		dr_last_off[m->partition] = m->offset;
	}
	uintptr_t i = (uintptr_t)m->_private;
	if (ack_ns && i > 0 && i - 1 < ack_cap)
		ack_ns[i - 1] = now_ns() - send_ns[i - 1];
}

static rd_kafka_t *new_producer(int latency)
{
	rd_kafka_conf_t *conf = base_conf();
	char v[32];
	set(conf, "acks", opt_acks);
	set(conf, "enable.idempotence", "false");
	set(conf, "compression.codec", "none");
	if (latency) {
		set(conf, "linger.ms", "0");
		set(conf, "socket.nagle.disable", "true");
	} else {
		snprintf(v, sizeof v, "%d", opt_linger);
		set(conf, "linger.ms", v);
		set(conf, "batch.num.messages", "10000");
		set(conf, "batch.size", "4000000");
		set(conf, "message.max.bytes", "8000000");
		set(conf, "queue.buffering.max.messages", "1000000");
		set(conf, "queue.buffering.max.kbytes", "1048576");
	}
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	return new_client(RD_KAFKA_PRODUCER, conf);
}

/* produce() one value, waiting (bounded) while the local queue is full. */
static void produce1(rd_kafka_t *rk, rd_kafka_topic_t *t, int32_t part, char *val, void *opaque)
{
	while (rd_kafka_produce(t, part, RD_KAFKA_MSG_F_COPY, val, opt_size, NULL, 0, opaque) == -1) {
		rd_kafka_resp_err_t e = rd_kafka_last_error();
		if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			die("produce to %s [%d]: %s", opt_topic, (int)part, rd_kafka_err2str(e));
		if (past_deadline())
			die("produce: still queue full after %.0f s", opt_limit);
		rd_kafka_poll(rk, 1);
	}
}

/* Waits for every delivery report of `want` records; dies on any failure. */
static void await_reports(rd_kafka_t *rk, uint64_t want)
{
	while (dr_ok + dr_failed < want && !past_deadline())
		rd_kafka_flush(rk, ms_left() < 100 ? ms_left() : 100);
	if (dr_failed)
		die("%" PRIu64 " of %" PRIu64 " deliveries failed; first: %s", dr_failed, want, dr_first_err);
	if (dr_ok < want)
		die("only %" PRIu64 " of %" PRIu64 " deliveries reported within %.0f s", dr_ok, want, opt_limit);
}

static int do_produce(void)
{
	rd_kafka_t *rk = new_producer(0);
	int np = topic_partitions(rk);
	if (opt_part >= np)
		die("partition %d: %s has %d", (int)opt_part, opt_topic, np);
	dr_last_off = malloc((size_t)np * sizeof *dr_last_off);
	for (int i = 0; i < np; i++)
		dr_last_off[i] = -1;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, opt_topic, NULL);
	char *val = malloc(opt_size);
	memset(val, 'x', opt_size);
	uint64_t c0 = cpu_ns(), t0 = now_ns();
	for (uint64_t i = 0; i < opt_count; i++) {
		value_fill(val, 'K', i, 0);
		produce1(rk, t, opt_part >= 0 ? opt_part : (int32_t)(i % (uint64_t)np), val, NULL);
		if ((i & 1023) == 0)
			rd_kafka_poll(rk, 0);
	}
	await_reports(rk, opt_count);
	uint64_t t1 = now_ns(), c1 = cpu_ns();
	double s = (double)(t1 - t0) / 1e9;
	printf("records=%" PRIu64 " secs=%.3f rec_per_s=%.0f mb_per_s=%.1f cpu_pct=%.0f partitions=%s"
	       " unordered=%" PRIu64 "\n",
	       opt_count, s, (double)opt_count / s, (double)opt_count * (double)opt_size / s / 1e6,
	       (double)(c1 - c0) / (double)(t1 - t0) * 100, opt_part >= 0 ? "1" : "all", dr_unordered);
	rd_kafka_topic_destroy(t);
	rd_kafka_destroy(rk);
	free(val);
	free(dr_last_off);
	return 0;
}

/* --- consume ----------------------------------------------------------------- */

static rd_kafka_t *new_consumer(int latency)
{
	rd_kafka_conf_t *conf = base_conf();
	set(conf, "enable.auto.commit", "false");
	set(conf, "enable.auto.offset.store", "false");
	set(conf, "enable.partition.eof", "false");
	set(conf, "check.crcs", "false");
	if (latency) {
		set(conf, "fetch.wait.max.ms", "100");
		set(conf, "fetch.min.bytes", "1");
		set(conf, "socket.nagle.disable", "true");
		set(conf, "fetch.error.backoff.ms", "10");
	} else {
		set(conf, "fetch.wait.max.ms", "100");
		set(conf, "fetch.min.bytes", "1");
		set(conf, "max.partition.fetch.bytes", "16777216");
		set(conf, "fetch.max.bytes", "67108864");
		set(conf, "receive.message.max.bytes", "100000000");
		set(conf, "queued.min.messages", "1000000");
		set(conf, "queued.max.messages.kbytes", "1048576");
	}
	return new_client(RD_KAFKA_CONSUMER, conf);
}

/* Starts fetching partition opt_part of t at off: the simple consumer, i.e.
 * assign() without a group (librdkafka's assign() wants a group.id, which
 * would bring a coordinator and __consumer_offsets into the measurement). */
static void start_at(rd_kafka_topic_t *t, int64_t off)
{
	if (rd_kafka_consume_start(t, opt_part, off) == -1)
		die("consume_start %s [%d]: %s", opt_topic, (int)opt_part, rd_kafka_err2str(rd_kafka_last_error()));
}

#define BATCH 10000

static int do_consume(void)
{
	rd_kafka_t *rk = new_consumer(0);
	int np = topic_partitions(rk);
	if (opt_part < 0 || opt_part >= np)
		die("partition %d: %s has %d", (int)opt_part, opt_topic, np);
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, opt_topic, NULL);
	rd_kafka_message_t **ms = malloc(BATCH * sizeof *ms);
	uint64_t got = 0, bad = 0, unordered = 0, repeats = 0, last = 0;
	int64_t last_off = -1;
	uint64_t c0 = cpu_ns(), t0 = now_ns();
	start_at(t, RD_KAFKA_OFFSET_BEGINNING);
	while (got < opt_count) {
		if (past_deadline())
			die("consume: %" PRIu64 " of %" PRIu64 " records within %.0f s", got, opt_count, opt_limit);
		/* consume_batch returns once it has that many or the time is up */
		uint64_t want = opt_count - got < BATCH ? opt_count - got : BATCH;
		ssize_t n = rd_kafka_consume_batch(t, opt_part, 100, ms, (size_t)want);
		if (n < 0)
			die("consume: %s", rd_kafka_err2str(rd_kafka_last_error()));
		for (ssize_t i = 0; i < n; i++) {
			rd_kafka_message_t *m = ms[i];
			if (m->err) {
				if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
					die("consume: %s", rd_kafka_message_errstr(m));
			} else if (got < opt_count) {
				char kind;
				uint64_t seq, ts;
				if (value_parse(m->payload, m->len, &kind, &seq, &ts) != 0)
					bad++;
				else if (got > 0 && seq <= last)
					*(opt_repeats ? &repeats : &unordered) += 1;
				else
					last = seq;
				if (m->offset <= last_off)
					unordered++;
				last_off = m->offset;
				got++;
			}
			rd_kafka_message_destroy(m);
		}
	}
	uint64_t t1 = now_ns(), c1 = cpu_ns();
	double s = (double)(t1 - t0) / 1e9;
	printf("records=%" PRIu64 " secs=%.3f rec_per_s=%.0f mb_per_s=%.1f cpu_pct=%.0f repeats=%" PRIu64 "\n", got,
	       s, (double)got / s, (double)got * (double)opt_size / s / 1e6, (double)(c1 - c0) / (double)(t1 - t0) * 100,
	       repeats);
	free(ms);
	rd_kafka_consume_stop(t, opt_part);
	rd_kafka_topic_destroy(t);
	rd_kafka_destroy(rk);
	if (bad || unordered)
		die("consume: %" PRIu64 " malformed values (expected %zu bytes in kload's layout), %" PRIu64
		    " out of order",
		    bad, opt_size, unordered);
	return 0;
}

/* --- latency ----------------------------------------------------------------- */

struct lat_consumer {
	rd_kafka_t *rk;
	rd_kafka_topic_t *t;
	uint64_t want;   /* counted records to read (set once the producer is done) */
	atomic_int done; /* the producer has sent everything: want is valid */
	uint64_t got, warm, bad, unordered;
	uint64_t *e2e_ns; /* per counted record; index = seq - first counted seq */
	size_t cap;
	uint64_t first; /* seq of the first counted record */
	atomic_int ready;
};

static void *lat_consume(void *arg)
{
	struct lat_consumer *c = arg;
	uint64_t last = 0;
	int any = 0;
	while (!past_deadline()) {
		if (atomic_load(&c->done) && c->got >= c->want)
			break;
		/* one at a time: a batch call waits for a full batch or its timeout */
		rd_kafka_message_t *m = rd_kafka_consume(c->t, opt_part, 20);
		if (m == NULL)
			continue;
		uint64_t t = now_ns();
		char kind;
		uint64_t seq, ts;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				die("latency consumer: %s", rd_kafka_message_errstr(m));
		} else if (value_parse(m->payload, m->len, &kind, &seq, &ts) != 0) {
			c->bad++;
		} else {
			if (any && seq <= last)
				c->unordered++;
			any = 1, last = seq;
			if (kind == 'W') {
				c->warm++;
			} else if (seq >= c->first && seq - c->first < c->cap) {
				c->e2e_ns[seq - c->first] = t - ts;
				c->got++;
			} else {
				c->bad++;
			}
		}
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = {.tv_sec = (time_t)(t / 1000000000u), .tv_nsec = (long)(t % 1000000000u)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int do_latency(void)
{
	if (opt_part < 0)
		die("latency: needs one partition (-p P)");
	rd_kafka_t *rk = new_producer(1);
	int np = topic_partitions(rk);
	if (opt_part >= np)
		die("partition %d: %s has %d", (int)opt_part, opt_topic, np);
	uint64_t nwarm = (uint64_t)(opt_rate * opt_warmup), ncount = (uint64_t)(opt_rate * opt_secs);
	uint64_t total = nwarm + ncount;
	if (ncount == 0 || ncount > 100000000)
		die("latency: rate x seconds must be 1..1e8 records");
	send_ns = calloc(total, sizeof *send_ns);
	ack_ns = calloc(total, sizeof *ack_ns);
	ack_cap = total;

	struct lat_consumer c = {.first = nwarm, .cap = ncount};
	c.e2e_ns = calloc(ncount, sizeof *c.e2e_ns);
	c.rk = new_consumer(1);
	int64_t lo, hi;
	rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(c.rk, opt_topic, opt_part, &lo, &hi, 10000);
	if (e)
		die("latency: watermarks of %s [%d]: %s", opt_topic, (int)opt_part, rd_kafka_err2str(e));
	c.t = rd_kafka_topic_new(c.rk, opt_topic, NULL);
	start_at(c.t, hi);
	pthread_t tid;
	pthread_create(&tid, NULL, lat_consume, &c);

	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, opt_topic, NULL);
	char *val = malloc(opt_size);
	memset(val, 'x', opt_size);
	double gap = 1e9 / opt_rate;
	uint64_t late = 0, c0 = cpu_ns(), t0 = now_ns(), tc = 0;
	for (uint64_t i = 0; i < total; i++) {
		uint64_t due = t0 + (uint64_t)((double)i * gap);
		uint64_t now = now_ns();
		if (now < due)
			sleep_until(due);
		else if (now > due + 1000000)
			late++; /* more than 1 ms behind schedule: the sender itself was held up */
		if (i == nwarm)
			tc = now_ns(), c0 = cpu_ns();
		send_ns[i] = now_ns();
		value_fill(val, i < nwarm ? 'W' : 'K', i, send_ns[i]);
		produce1(rk, t, opt_part, val, (void *)(uintptr_t)(i + 1));
		rd_kafka_poll(rk, 0);
		if (past_deadline())
			die("latency: still sending after %.0f s", opt_limit);
	}
	uint64_t t1 = now_ns();
	await_reports(rk, total);
	c.want = ncount;
	atomic_store(&c.done, 1);
	pthread_join(tid, NULL);
	uint64_t c1 = cpu_ns();
	if (c.got < ncount || c.bad || c.unordered)
		die("latency: consumer read %" PRIu64 " of %" PRIu64 " records (%" PRIu64 " malformed, %" PRIu64
		    " out of order)",
		    c.got, ncount, c.bad, c.unordered);
	qsort(c.e2e_ns, ncount, sizeof *c.e2e_ns, cmp_u64);
	qsort(ack_ns + nwarm, ncount, sizeof *ack_ns, cmp_u64);
	const uint64_t *a = ack_ns + nwarm;
	double s = (double)(t1 - tc) / 1e9;
	printf("records=%" PRIu64 " secs=%.3f rate=%.0f late=%" PRIu64
	       " p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f ack_p50_us=%.0f ack_p99_us=%.0f ack_p999_us=%.0f"
	       " cpu_pct=%.0f\n",
	       ncount, s, (double)ncount / s, late, pct_us(c.e2e_ns, ncount, 50), pct_us(c.e2e_ns, ncount, 99),
	       pct_us(c.e2e_ns, ncount, 99.9), pct_us(c.e2e_ns, ncount, 100), pct_us(a, ncount, 50),
	       pct_us(a, ncount, 99), pct_us(a, ncount, 99.9), (double)(c1 - c0) / (double)(now_ns() - tc) * 100);
	rd_kafka_topic_destroy(t);
	rd_kafka_destroy(rk);
	rd_kafka_consume_stop(c.t, opt_part);
	rd_kafka_topic_destroy(c.t);
	rd_kafka_destroy(c.rk);
	free(val);
	free(c.e2e_ns);
	free(send_ns);
	free(ack_ns);
	return 0;
}

/* --- main -------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: kload produce|consume|latency -b HOST:PORT -t TOPIC [-p P|-1] [-n N] [-s SIZE]\n"
			"             [-a ACKS] [-l LINGER_MS] [-r RATE] [-d SECS] [-w WARMUP] [-T LIMIT] [-R] [-X k=v]...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	int c;
	optind = 2;
	while ((c = getopt(argc, argv, "b:t:p:n:s:a:l:r:d:w:T:X:R")) != -1) {
		switch (c) {
		case 'b': opt_broker = optarg; break;
		case 't': opt_topic = optarg; break;
		case 'p': opt_part = (int32_t)atoi(optarg); break;
		case 'n': opt_count = strtoull(optarg, NULL, 10); break;
		case 's': opt_size = strtoul(optarg, NULL, 10); break;
		case 'a': opt_acks = optarg; break;
		case 'l': opt_linger = atoi(optarg); break;
		case 'r': opt_rate = atof(optarg); break;
		case 'd': opt_secs = atof(optarg); break;
		case 'w': opt_warmup = atof(optarg); break;
		case 'T': opt_limit = atof(optarg); break;
		case 'R': opt_repeats = 1; break;
		case 'X':
			if (n_x == MAX_X)
				die("at most %d -X options", MAX_X);
			opt_x[n_x++] = optarg;
			break;
		default: usage();
		}
	}
	if (!opt_topic || optind != argc || opt_size < HDR_LEN + 3 || opt_count == 0 || opt_rate <= 0)
		usage();
	t_deadline = now_ns() + (uint64_t)(opt_limit * 1e9);
	int rc;
	if (!strcmp(mode, "produce"))
		rc = do_produce();
	else if (!strcmp(mode, "consume"))
		rc = do_consume();
	else if (!strcmp(mode, "latency"))
		rc = do_latency();
	else
		usage();
	return rc;
}
