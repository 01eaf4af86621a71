/*
 * fuzz_kafka — libFuzzer target over the Kafka port (broker/kafka/): its
 * frame reader, the request header, and every API handler's decoding,
 * RecordBatch parsing, record iteration and decompression (through
 * Produce) included, driven through the real server.c and handlers against
 * a real single-node broker, all on one libuv loop in this one thread.
 *
 * THE NODE UNDER TEST.  A broker in a fresh data dir under /dev/shm (or
 * $TMPDIR), fsync=never, message.max.bytes=65536, no background scrub,
 * topics t1 (1 partition, three line records) and t2 (3 partitions, empty),
 * its Kafka port started on 127.0.0.1 port 0 (an ephemeral port nobody
 * connects to; advertised as 127.0.0.1:9092).  The harness gives it its
 * connections through kafka_adopt_for_test() (kafka.h): one end of an
 * AF_UNIX socketpair becomes a connection exactly as an accepted TCP one,
 * so no port is involved and everything from on_alloc/on_read on is the
 * production path.  By default the node is made afresh for every input
 * (topics, records, groups and producer sequences then never depend on
 * earlier inputs, so a crash reproduces from its input alone);
 * FUZZ_KAFKA_FRESH=N keeps a node for N inputs (faster, less
 * reproducible), and a node whose partitions grew past 32 MiB, or that
 * holds more than 16 topics, is made afresh anyway (disk use stays
 * bounded).
 *
 * INPUT: one connection's bytes, how they are cut and how the peer leaves:
 *   byte 0, the mode:
 *     bits 0-3  0: the stream in one write; 1-14: pieces of CUT[bits]
 *               bytes (1, 2, 3, 4, 5, 7, 8, 13, 64, 100, 512, 1000, 4096,
 *               16384); 15: at the points listed after the fixes byte,
 *               [u8 n][n x u16 le offset into the stream]
 *               Each piece is read by the node before the next is sent (a
 *               size, header or body split across reads); after
 *               MAX_PIECES - 1 pieces the rest goes in one
 *     bit 4     small socket buffers (the kernel's least, about 4 KB) on
 *               both ends: the node reads little at a time, and its
 *               answers queue in libuv until the peer reads them
 *     bits 5-6  how the peer leaves once the last piece is sent:
 *               0  reads the answers until all is settled, then closes
 *               1  closes at once, answers unread, requests maybe unread
 *                  or at work (the node sees EOF, or ECONNRESET)
 *               2  waits until all is settled without reading the
 *                  answers, then closes with them unread (ECONNRESET)
 *               3  shuts down its writing side (EOF while requests are
 *                  at work), reads until settled, then closes
 *     bit 7     nudge: once settled with requests still owed (a Fetch
 *               waiting for data), one record is appended to every
 *               partition and the harness settles again, now waiting up to
 *               LONG_MS with nothing moving (so that a JoinGroup held for
 *               the group's initial delay is answered)
 *   byte 1, the fixes: bit 0 set, the CRC-32C of the RecordBatch of every
 *     partition of every Produce v3+ request is rewritten before the
 *     stream is sent (fix_crcs), so that the fuzzer's changes inside a
 *     batch (its count, deltas, records, compressed payload) get past the
 *     checksum; bits 1-7 are ignored
 *   the rest (after the cut list of mode 15): the stream, Kafka frames or
 *   garbage.
 * "Settled": the node has read everything sent, owes no answer on the
 * connection (kafka_view_for_test), has written out its answers, and the
 * harness read them, seen twice with the loop run in between; or IDLE_MS
 * passed with nothing moving (a Fetch or JoinGroup that waits).
 *
 * ORACLES (abort(), so that libFuzzer saves the input; ASan, UBSan and
 * LeakSanitizer catch the rest):
 *   - every answer is a whole frame, int32 size >= 4 and <= MAX_ANSWER,
 *     and its correlation id is that of a request, in the order of the
 *     requests (answers are a subsequence of the requests: none invented,
 *     none reordered); no answer follows a frame the node must close on
 *     (size below 8 or above 100 MiB, a header that does not parse, an API
 *     or version ApiVersions did not advertise);
 *   - with mode end 0, once settled on a connection the node kept open,
 *     every request was answered but Produce with acks 0: none lost;
 *   - the node frees the connection within STALL_MS of the peer leaving
 *     (waiting Fetches nudged meanwhile: finding 5), and then holds no
 *     Fetch timer either: a Fetch of a connection that is gone ends;
 *   - stopping the node (kafka_stop, broker_quiesce, as the daemon does)
 *     drains the loop within STALL_MS, and the broker is then idle.
 * Oracle messages go to the process's original stderr, so that they stay
 * visible with -close_fd_mask=2 (which silences the node's own log lines).
 *
 * FINDINGS (README.md): 3 (a Fetch waiting outlived its connection and the
 * port) and 4 (memchr/memcmp(NULL, p, 0) on null names) are fixed; their
 * reproducers are in tests/fuzz/crashes/ and the oracles above would
 * catch 3 again.  5 is worked around: a connection paused by back pressure
 * (512 requests in flight, the first a Fetch that waits) does not see its
 * peer leave; the harness nudges the partitions while it waits for the
 * node to free the connection, so that such Fetches end.
 * FUZZ_KAFKA_STRICT=1 does not, and the oracle then fails on such inputs.
 *
 * FUZZ_KAFKA_VERBOSE=1 prints a line per input (requests, answers, bad
 * frames, what the node still owed).
 */
#include "broker/broker.h"
#include "broker/config.h"
#include "broker/kafka/codec.h"
#include "broker/kafka/crc32c.h"
#include "broker/kafka/kafka.h"
#include "broker/log.h"
#include "broker/sysio.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IDLE_MS      5            /* nothing moving: stop waiting for answers */
#define LONG_MS      600          /* the same after a nudge: a JoinGroup's rebalance ends */
#define STALL_MS     5000         /* the node must have let go by then */
#define NUDGE_MS     50           /* while waiting for it to let go: nudge this often */
#define MAX_PIECES   256          /* pieces of an input, at most */
#define MAX_FRAME    (100u << 20) /* server.c's bound on a request */
#define MAX_ANSWER   (256u << 20) /* no answer of ours comes near */
#define RESET_BYTES  (32u << 20)  /* partitions grown past this: a fresh node */
#define RESET_TOPICS 16
#define NAPI         64 /* API keys the harness tracks (ours are below 23) */

#define MODE_CUT(m)   ((m)&0x0f)
#define MODE_CUT_LIST 15
#define MODE_SMALL(m) (((m) >> 4) & 1)
#define MODE_END(m)   (((m) >> 5) & 3)
#define MODE_NUDGE(m) (((m) >> 7) & 1)
#define FIX_CRC       0x01
enum { END_SETTLE, END_AT_ONCE, END_UNREAD, END_HALF };

static const size_t CUT[15] = {0, 1, 2, 3, 4, 5, 7, 8, 13, 64, 100, 512, 1000, 4096, 16384};

/* ------------------------------------------------------------ reporting */

static FILE *report; /* a copy of the original stderr (see the constructor) */

__attribute__((constructor)) static void keep_stderr(void)
{
    int fd = dup(2);
    report = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!report)
        report = stderr;
    setvbuf(report, NULL, _IONBF, 0);
}

#define ORACLE(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(report, "fuzz_kafka: oracle failed: %s (%s:%d): ", #cond, __FILE__, __LINE__); \
            fprintf(report, __VA_ARGS__);                                                          \
            fputc('\n', report);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ the node */

static struct {
    bool inited;
    uv_loop_t loop;
    char base[PATH_MAX]; /* where data dirs go */
    char dir[PATH_MAX];  /* the node's data dir ("" when none) */
    struct mk_config cfg;
    struct broker *b;
    struct kafka *k;
    int base_handles; /* the port's handles when idle: its listener */
    uint64_t inputs, node_inputs, nodes;
    unsigned fresh_every; /* FUZZ_KAFKA_FRESH: inputs per node */
    int verbose;          /* FUZZ_KAFKA_VERBOSE: 1 a line per input, 2 and per answer */
    bool strict;
    /* what ApiVersions advertised (the first node is asked) */
    bool known[NAPI];
    int16_t vmin[NAPI], vmax[NAPI];
    int appends; /* the harness's appends not yet acknowledged */
} g;

static void on_appended(void *arg, int status)
{
    (void)arg;
    (void)status; /* -ESTALE for a partition deleted meanwhile, say */
    g.appends--;
}

/* One line record appended to every partition of every topic: wakes every
 * Fetch waiting on one (with data for it). */
static void nudge(void)
{
    static const char rec[] = "nudge\n";
    uint32_t len = sizeof(rec) - 1;
    size_t nt = topic_count(g.b);
    for (size_t i = 0; i < nt; i++) {
        struct topic *t = topic_at(g.b, i);
        for (uint32_t j = 0; j < topic_partitions(t); j++) {
            struct iovec iov = {(void *)rec, len};
            g.appends++;
            if (part_append(topic_part(t, j), &iov, 1, &len, 1, on_appended, NULL) < 0)
                g.appends--;
        }
    }
}

static uint64_t node_bytes(void)
{
    uint64_t n = 0;
    size_t nt = topic_count(g.b);
    for (size_t i = 0; i < nt; i++) {
        struct topic *t = topic_at(g.b, i);
        for (uint32_t j = 0; j < topic_partitions(t); j++) {
            struct part_info pi;
            part_info(topic_part(t, j), &pi);
            n += pi.end_pos - pi.first_pos;
        }
    }
    return n;
}

/* Runs the loop once without blocking, then sleeps up to 1 ms for it. */
static void spin(bool moved)
{
    uv_run(&g.loop, UV_RUN_NOWAIT);
    if (!moved) {
        struct pollfd p = {.fd = uv_backend_fd(&g.loop), .events = POLLIN};
        int t = uv_backend_timeout(&g.loop);
        poll(&p, 1, t < 0 || t > 1 ? 1 : t);
    }
}

static void on_changed(void *arg, int status)
{
    *(int *)arg = status;
}

static void set(const char *key, const char *value)
{
    const char *why;
    ORACLE(cfg_set(&g.cfg, key, value, &why) == 0, "%s=%s: %s", key, value, why);
}

static void node_start(void)
{
    snprintf(g.dir, sizeof(g.dir), "%s/mk-fuzz-kafka-%ld-%" PRIu64, g.base, (long)getpid(),
             g.nodes++);
    ORACLE(mkdir(g.dir, 0700) == 0, "mkdir %s: %s", g.dir, strerror(errno));
    cfg_defaults(&g.cfg);
    set("fsync", "never");
    set("message.max.bytes", "65536");
    set("scrub.bytes.per.sec", "0");
    long holder = 0;
    int rc = broker_open(&g.b, g.dir, &g.cfg, &holder);
    ORACLE(rc == 0, "broker_open %s: %s", g.dir, strerror(-rc));
    uv_update_time(&g.loop);
    ORACLE((rc = broker_start(g.b, &g.loop)) == 0, "broker_start: %s", strerror(-rc));
    struct topic *t1;
    ORACLE((rc = topic_create(g.b, "t1", NULL, &t1)) == 0, "topic t1: %s", strerror(-rc));
    int st = 1;
    struct broker_change_req cr = {
        .kind = BC_CREATE, .topic = "t2", .value = "3", .own = *broker_root_owner(g.b)};
    cr.own.mode = 0755;
    ORACLE(broker_change(g.b, &cr, on_changed, &st) == 0 && st == 0, "topic t2: %d", st);
    static const char recs[] = "a\nbb\nccc\n";
    uint32_t lens[] = {2, 3, 4};
    struct iovec iov = {(void *)recs, sizeof(recs) - 1};
    g.appends++;
    ORACLE(part_append(topic_part(t1, 0), &iov, 1, lens, 3, on_appended, NULL) == 0, "append");
    rc = kafka_start(&g.k, g.b, &g.loop, "127.0.0.1", 0, "127.0.0.1", 9092);
    ORACLE(rc == 0, "kafka_start: %s", rc == -ENOTSUP ? "no crc32 instruction" : uv_strerror(rc));
    broker_set_kafka(g.b, "127.0.0.1", 9092);
    struct kafka_test_view v;
    kafka_view_for_test(g.k, &v);
    g.base_handles = v.handles;
    g.node_inputs = 0;
    uint64_t start = now_ms();
    while (g.appends > 0) {
        spin(false);
        ORACLE(now_ms() - start < STALL_MS, "the first records were not acknowledged");
    }
}

/* Waits until the port holds no Fetch timer: a Fetch of a connection that
 * is gone ends at once (finding 3, fixed in a3f379c), so nothing of an
 * input outlives it but what the groups hold. */
static void wait_timers(void)
{
    uint64_t start = now_ms();
    for (;;) {
        struct kafka_test_view v;
        kafka_view_for_test(g.k, &v);
        if (v.handles == g.base_handles && g.appends == 0)
            return;
        ORACLE(now_ms() - start < STALL_MS,
               "%d handles of the port still open (%d when idle) %d ms after its last "
               "connection was freed: a Fetch outlived its connection",
               v.handles, g.base_handles, STALL_MS);
        spin(false);
    }
}

/* Stops the node as the daemon does (the port, then the broker) and drains
 * the loop; removes its data dir. */
static void node_stop(void)
{
    kafka_stop(g.k); /* ends waiting Fetches too (finding 3) */
    g.k = NULL;
    broker_quiesce(g.b);
    uint64_t start = now_ms();
    while (uv_loop_alive(&g.loop)) {
        spin(false);
        ORACLE(now_ms() - start < STALL_MS, "the loop still runs %d ms after the node stopped",
               STALL_MS);
    }
    ORACLE(!broker_busy(g.b), "the broker is busy with nothing left on the loop");
    broker_close(g.b);
    g.b = NULL;
    sys_remove_tree(g.dir);
    g.dir[0] = '\0';
}

static void at_exit(void)
{
    if (g.b)
        node_stop();
    uv_loop_close(&g.loop);
}

/* Data dirs of harnesses that died (a crash leaves its dir behind). */
static void remove_stale_dirs(void)
{
    DIR *d = opendir(g.base);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid;
        if (sscanf(e->d_name, "mk-fuzz-kafka-%ld-", &pid) != 1 || pid == (long)getpid() ||
            kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", g.base, e->d_name);
        sys_remove_tree(path);
    }
    closedir(d);
}

/* ------------------------------------------------------------ the peer */

/* A request of the stream as the harness reads it. */
struct req {
    int16_t api, version;
    int32_t corr;
    bool no_reply; /* Produce with acks 0 */
};

static struct {
    int fd;               /* the harness's end, -1 once closed */
    int sfd;              /* the node's end: valid while the view shows the connection */
    const uint8_t *out;   /* the stream */
    size_t out_len, sent; /* its bytes, and those sent */
    size_t avail;         /* may be sent: up to here */
    bool dead;            /* the node closed (EPIPE, ECONNRESET or EOF) */
    bool reading;         /* answers are read */
    bool half;            /* shutdown(SHUT_WR) done */
    uint8_t *rx;          /* answers received, not yet parsed */
    size_t rx_len, rx_cap;
    uint64_t rx_total;
    struct req *reqs; /* what the stream asks, in order, up to the first frame the node
                         must close on (or the end) */
    size_t nreqs, cap_reqs;
    bool closes;    /* the stream holds a frame the node must close on */
    size_t matched; /* requests answered or passed over */
    size_t answers;
} pe;

/* Reads the stream's frames as the node must (server.c, api.c): the
 * requests it will take, up to the first frame it must close on. */
static void scan_requests(void)
{
    pe.nreqs = 0;
    pe.closes = false;
    size_t at = 0;
    while (pe.out_len - at >= 4) {
        const uint8_t *p = pe.out + at;
        uint32_t size = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (size < 8 || size > MAX_FRAME) {
            pe.closes = true;
            return;
        }
        if (pe.out_len - at - 4 < size)
            return; /* cut short: never taken */
        struct kr r;
        kr_init(&r, p + 4, size);
        struct kreq_hdr h;
        if (kreq_hdr_parse(&r, &h, false) < 0) {
            pe.closes = true;
            return;
        }
        bool known = h.api_key >= 0 && h.api_key < NAPI && g.known[h.api_key] &&
                     h.api_version >= 0 &&
                     (h.api_key == 18 /* ApiVersions: any version */ ||
                      (h.api_version >= g.vmin[h.api_key] && h.api_version <= g.vmax[h.api_key]));
        if (!known) {
            pe.closes = true;
            return;
        }
        /* Only ApiVersions v3 is flexible among what we advertise (api.c). */
        if (h.api_key == 18 && h.api_version == 3) {
            kr_skip_tags(&r);
            if (r.err) {
                pe.closes = true;
                return;
            }
        }
        struct req q = {.api = h.api_key, .version = h.api_version, .corr = h.correlation_id};
        if (h.api_key == 0) { /* Produce: acks 0 is answered with nothing */
            if (h.api_version >= 3) {
                const uint8_t *s;
                kr_string(&r, &s);
            }
            int16_t acks = kr_i16(&r);
            q.no_reply = !r.err && acks == 0;
        }
        if (pe.nreqs == pe.cap_reqs) {
            pe.cap_reqs = pe.cap_reqs ? 2 * pe.cap_reqs : 64;
            pe.reqs = realloc(pe.reqs, pe.cap_reqs * sizeof(*pe.reqs));
            ORACLE(pe.reqs != NULL, "out of memory");
        }
        pe.reqs[pe.nreqs++] = q;
        at += 4 + size;
    }
}

/* Checks the whole answers received so far (and drops them). */
static void parse_answers(void)
{
    size_t at = 0;
    while (pe.rx_len - at >= 4) {
        const uint8_t *p = pe.rx + at;
        uint32_t size = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        ORACLE(size >= 4 && size <= MAX_ANSWER, "an answer of %" PRIu32 " bytes", size);
        if (pe.rx_len - at - 4 < size)
            break;
        int32_t corr =
            (int32_t)((uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7]);
        size_t i = pe.matched;
        while (i < pe.nreqs && pe.reqs[i].corr != corr)
            i++;
        ORACLE(i < pe.nreqs,
               "answer %zu (correlation id %" PRId32 ", %" PRIu32 " bytes) is for no request "
               "left: %zu requests, %zu answered or passed over%s",
               pe.answers, corr, size, pe.nreqs, pe.matched,
               pe.closes ? " (then a frame the node closes on)" : "");
        pe.matched = i + 1;
        pe.answers++;
        if (g.verbose > 1) {
            fprintf(report,
                    "fuzz_kafka:   answer to api %d v%d (%" PRIu32 " bytes):", pe.reqs[i].api,
                    pe.reqs[i].version, size);
            for (uint32_t k = 4; k < size + 4 && k < 4 + 48; k++)
                fprintf(report, " %02x", p[k]);
            fputc('\n', report);
        }
        at += 4 + size;
    }
    memmove(pe.rx, pe.rx + at, pe.rx_len - at);
    pe.rx_len -= at;
}

/* Reads what the node sent; whether anything came. */
static bool peer_rx(void)
{
    bool any = false;
    while (pe.fd >= 0 && pe.reading && !pe.dead) {
        if (pe.rx_cap - pe.rx_len < 65536) {
            pe.rx_cap = pe.rx_cap ? 2 * pe.rx_cap : 131072;
            pe.rx = realloc(pe.rx, pe.rx_cap);
            ORACLE(pe.rx != NULL, "out of memory");
        }
        ssize_t n = recv(pe.fd, pe.rx + pe.rx_len, pe.rx_cap - pe.rx_len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        any = true;
        if (n <= 0) {
            pe.dead = true;
            break;
        }
        pe.rx_len += (size_t)n;
        pe.rx_total += (uint64_t)n;
        parse_answers();
    }
    return any;
}

/* Sends what may be sent; whether anything went. */
static bool peer_tx(void)
{
    bool any = false;
    while (pe.fd >= 0 && !pe.dead && !pe.half && pe.sent < pe.avail) {
        ssize_t n = send(pe.fd, pe.out + pe.sent, pe.avail - pe.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        any = true;
        if (n < 0) { /* EPIPE, ECONNRESET: the node closed */
            pe.dead = true;
            break;
        }
        pe.sent += (size_t)n;
    }
    return any;
}

/* Bytes sent that the node has not read yet; 0 once it closed. */
static int node_unread(const struct kafka_test_view *v)
{
    int n = 0;
    if (v->conns == 0 || ioctl(pe.sfd, FIONREAD, &n) != 0)
        return 0;
    return n;
}

enum want {
    W_READ,    /* the node read everything that may be sent */
    W_SETTLED, /* and owes nothing, and its answers were read */
    W_FREED,   /* it let go of the connection (the peer left) */
};

/* Runs the loop and the peer until `w` holds (true), or nothing moved for
 * idle_ms (false; W_FREED: STALL_MS in all, then it is a bug). */
static bool run_until(enum want w, unsigned idle_ms)
{
    uint64_t start = now_ms(), last = start, last_nudge = start;
    struct kafka_test_view was = {0}, v;
    int was_unread = -1, settled = 0;
    for (;;) {
        bool moved = w != W_FREED && peer_tx();
        uv_run(&g.loop, UV_RUN_NOWAIT);
        if (w != W_FREED)
            moved |= peer_rx();
        kafka_view_for_test(g.k, &v);
        int unread = node_unread(&v);
        moved |= v.requests != was.requests || v.owed != was.owed || v.conns != was.conns ||
                 v.handles != was.handles || unread != was_unread;
        was = v;
        was_unread = unread;
        uint64_t now = now_ms();
        if (moved)
            last = now;
        bool done = false;
        switch (w) {
        case W_READ:
            done = v.conns == 0 || pe.dead || (pe.sent == pe.avail && unread == 0);
            break;
        case W_SETTLED:
            settled = v.conns == 0 || pe.dead || (pe.sent == pe.avail && unread == 0 && v.owed == 0)
                          ? settled + 1
                          : 0;
            done = settled >= 2; /* seen twice, the loop run in between */
            break;
        case W_FREED:
            done = v.conns == 0;
            ORACLE(done || now - start < STALL_MS,
                   "the node kept the connection %d ms after its peer left (%zu requests owed, "
                   "%d handles)",
                   STALL_MS, v.owed, v.handles);
            /* Finding 5: back pressure (512 requests in flight) stops
             * reading, and so seeing the EOF; a Fetch that waits at the
             * head holds it.  Nudged (but with FUZZ_KAFKA_STRICT), waiting
             * Fetches end and the node reads again. */
            if (!done && !g.strict && v.handles > g.base_handles + 1 &&
                now - last_nudge >= NUDGE_MS) {
                nudge();
                last_nudge = now;
            }
            break;
        }
        if (done)
            return true;
        if (w != W_FREED && now - last >= idle_ms)
            return false;
        if (moved || settled)
            continue;
        struct pollfd p[2] = {{.fd = uv_backend_fd(&g.loop), .events = POLLIN},
                              {.fd = pe.fd, .events = POLLIN}};
        poll(p, pe.fd >= 0 && pe.reading && !pe.dead && w != W_FREED ? 2 : 1, 1);
    }
}

/* The pieces the stream is sent in: ends[i] is where piece i ends. */
static size_t pieces(uint8_t mode, const uint8_t **data, size_t *size, size_t *ends, size_t cap)
{
    size_t n = 0;
    if (MODE_CUT(mode) == MODE_CUT_LIST) {
        size_t k = *size ? (*data)[0] : 0;
        const uint8_t *list = *data + 1;
        size_t have = *size ? (*size - 1) / 2 : 0;
        if (k > have)
            k = have;
        size_t skip = *size ? 1 + 2 * k : 0;
        *data += skip;
        *size -= skip;
        for (size_t i = 0; i < k && n < cap - 1; i++) {
            size_t at = (size_t)list[2 * i] | (size_t)list[2 * i + 1] << 8;
            if (at > 0 && at < *size)
                ends[n++] = at;
        }
        /* In order, each once. */
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && ends[j - 1] > ends[j]; j--) {
                size_t t = ends[j];
                ends[j] = ends[j - 1];
                ends[j - 1] = t;
            }
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (m == 0 || ends[m - 1] != ends[i])
                ends[m++] = ends[i];
        n = m;
    } else if (MODE_CUT(mode)) {
        size_t step = CUT[MODE_CUT(mode)];
        for (size_t at = step; at < *size && n < cap - 1; at += step)
            ends[n++] = at;
    }
    ends[n++] = *size;
    return n;
}

/* ------------------------------------------------------------ CRCs */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Rewrites the CRC-32C of the RecordBatch v2 at the start of each records
 * field of the Produce v3+ requests of the stream (len bytes at p), so that
 * the fuzzer's changes inside a batch reach the record iterator and the
 * decompressors instead of stopping at the checksum.  Frames and fields
 * are walked as h_produce reads them; whatever does not parse is left as
 * it is. */
static void fix_crcs(uint8_t *p, size_t len)
{
    size_t at = 0;
    while (len - at >= 4) {
        uint32_t size = be32(p + at);
        if (size < 8 || size > len - at - 4)
            return;
        struct kr r;
        kr_init(&r, p + at + 4, size);
        struct kreq_hdr h;
        if (kreq_hdr_parse(&r, &h, false) == 0 && h.api_key == 0 && h.api_version >= 3) {
            const uint8_t *s;
            kr_string(&r, &s); /* transactional id */
            kr_i16(&r);
            kr_i32(&r);
            int32_t nt = kr_array(&r, 6);
            for (int32_t i = 0; i < nt && !r.err; i++) {
                kr_string(&r, &s);
                int32_t np = kr_array(&r, 8);
                for (int32_t j = 0; j < np && !r.err; j++) {
                    kr_i32(&r);
                    const uint8_t *b;
                    int32_t n = kr_bytes(&r, &b);
                    if (n < KBATCH_HDR || b[16] != 2)
                        continue;
                    uint32_t total = 12 + be32(b + 8);
                    if (be32(b + 8) > (uint32_t)n - 12 || total < KBATCH_HDR)
                        continue;
                    uint8_t *m = p + (b - p); /* the stream's own bytes */
                    uint32_t crc = kcrc32c(0, m + KBATCH_CRC_FROM, total - KBATCH_CRC_FROM);
                    m[17] = (uint8_t)(crc >> 24);
                    m[18] = (uint8_t)(crc >> 16);
                    m[19] = (uint8_t)(crc >> 8);
                    m[20] = (uint8_t)crc;
                }
            }
        }
        at += 4 + size;
    }
}

/* ------------------------------------------------------------ the input */

static void first_start(void)
{
    g.inited = true;
    g.verbose = getenv("FUZZ_KAFKA_VERBOSE") ? atoi(getenv("FUZZ_KAFKA_VERBOSE")) : 0;
    g.strict = getenv("FUZZ_KAFKA_STRICT") != NULL;
    const char *fe = getenv("FUZZ_KAFKA_FRESH");
    g.fresh_every = fe && atoi(fe) > 0 ? (unsigned)atoi(fe) : 1;
    const char *tmp = getenv("TMPDIR");
    struct stat st;
    snprintf(g.base, sizeof(g.base), "%s",
             stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                 ? "/dev/shm"
             : tmp && *tmp ? tmp
                           : "/tmp");
    remove_stale_dirs();
    signal(SIGPIPE, SIG_IGN);
    mk_log_terminal_info(false);
    ORACLE(uv_loop_init(&g.loop) == 0, "uv_loop_init");
    atexit(at_exit);
    node_start();

    /* What the port advertises, asked through the port itself. */
    int sv[2];
    ORACLE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    ORACLE(kafka_adopt_for_test(g.k, sv[1]) == 0, "kafka_adopt_for_test");
    static const uint8_t av0[] = {0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff};
    ORACLE(send(sv[0], av0, sizeof(av0), MSG_NOSIGNAL) == (ssize_t)sizeof(av0), "send");
    uint8_t buf[1024];
    size_t got = 0;
    uint64_t start = now_ms();
    while (got < 4 || got < 4 + ((size_t)buf[2] << 8 | buf[3])) {
        spin(false);
        ssize_t n = recv(sv[0], buf + got, sizeof(buf) - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        ORACLE(now_ms() - start < STALL_MS && (n != 0 && got < sizeof(buf)),
               "no answer to ApiVersions v0");
    }
    struct kr r;
    kr_init(&r, buf + 4, got - 4);
    ORACLE(kr_i32(&r) == 1 && kr_i16(&r) == 0, "ApiVersions v0: a bad answer");
    int32_t n = kr_array(&r, 6);
    for (int32_t i = 0; i < n; i++) {
        int16_t key = kr_i16(&r), lo = kr_i16(&r), hi = kr_i16(&r);
        if (!r.err && key >= 0 && key < NAPI) {
            g.known[key] = true;
            g.vmin[key] = lo;
            g.vmax[key] = hi;
        }
    }
    ORACLE(!r.err && n > 0 && g.known[18], "ApiVersions v0: a bad list");
    close(sv[0]);
    start = now_ms();
    for (;;) {
        struct kafka_test_view v;
        kafka_view_for_test(g.k, &v);
        if (v.conns == 0 && v.handles == g.base_handles)
            break;
        spin(false);
        ORACLE(now_ms() - start < STALL_MS, "the first connection was not freed");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g.inited)
        first_start();
    else if (!g.b)
        node_start();
    g.inputs++;
    g.node_inputs++;
    if (size == 0)
        return 0;
    uint8_t mode = data[0], fix = size > 1 ? data[1] : 0;
    data += size > 1 ? 2 : 1;
    size -= size > 1 ? 2 : 1;
    static size_t ends[MAX_PIECES];
    size_t npieces = pieces(mode, &data, &size, ends, MAX_PIECES);
    /* The stream, in a copy the harness may change. */
    static uint8_t *copy;
    static size_t copy_cap;
    if (size > copy_cap) {
        copy_cap = size;
        copy = realloc(copy, copy_cap);
        ORACLE(copy != NULL, "out of memory");
    }
    if (size)
        memcpy(copy, data, size);
    data = copy;
    if (fix & FIX_CRC)
        fix_crcs(copy, size);

    int sv[2];
    ORACLE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %s",
           strerror(errno));
    pe.fd = sv[0];
    pe.sfd = sv[1];
    pe.out = data;
    pe.out_len = size;
    pe.sent = pe.avail = 0;
    pe.dead = pe.half = false;
    pe.reading = MODE_END(mode) != END_UNREAD;
    pe.rx_len = 0;
    pe.rx_total = 0;
    pe.matched = pe.answers = 0;
    scan_requests();
    ORACLE(kafka_adopt_for_test(g.k, sv[1]) == 0, "kafka_adopt_for_test");
    struct kafka_test_view v0;
    kafka_view_for_test(g.k, &v0);

    int end = MODE_END(mode);
    if (MODE_SMALL(mode)) {
        /* The kernel's least: the node reads a few KB at a time and its
         * answers queue in libuv until the peer reads. */
        int small = 1;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    }
    /* Each piece read by the node before the next is sent; the last one
     * only sent when the peer leaves at once. */
    for (size_t i = 0; i < npieces && !pe.dead; i++) {
        pe.avail = i + 1 < MAX_PIECES ? ends[i] : size;
        if (pe.avail == size && end == END_AT_ONCE)
            peer_tx(); /* what fits in the socket now; the rest is never sent */
        else
            run_until(W_READ, IDLE_MS);
        if (pe.avail == size)
            break;
    }
    bool settled = false;
    if (end != END_AT_ONCE) {
        if (end == END_HALF) {
            shutdown(pe.fd, SHUT_WR); /* what was not sent yet never is */
            pe.half = true;
        }
        settled = run_until(W_SETTLED, IDLE_MS);
        struct kafka_test_view v;
        kafka_view_for_test(g.k, &v);
        if (MODE_NUDGE(mode) && v.conns && v.owed) {
            nudge();
            settled = run_until(W_SETTLED, LONG_MS);
        }
    }
    struct kafka_test_view v;
    kafka_view_for_test(g.k, &v);
    if (end == END_SETTLE && settled && v.conns && !pe.dead && pe.sent == size) {
        /* The node keeps the connection and owes nothing: every request it
         * took was answered, but Produce with acks 0. */
        size_t want = 0, took = (size_t)(v.requests - v0.requests);
        for (size_t i = 0; i < pe.nreqs; i++)
            want += !pe.reqs[i].no_reply;
        ORACLE(took == pe.nreqs, "the node took %zu requests of the %zu whole ones sent", took,
               pe.nreqs);
        ORACLE(pe.answers == want, "%zu answers to %zu requests (%zu needing one)", pe.answers,
               pe.nreqs, want);
        ORACLE(pe.rx_len == 0, "%zu bytes of an answer cut short", pe.rx_len);
    }
    if (g.verbose)
        fprintf(report,
                "fuzz_kafka: input %" PRIu64 " (%zu bytes, mode %02x, %zu pieces): %zu requests "
                "(%s), node took %" PRIu64 ", %zu answers (%" PRIu64 " bytes), bad frames +%" PRIu64
                ", owed %zu, %s\n",
                g.inputs, size, mode, npieces, pe.nreqs,
                pe.closes ? "then one it closes on" : "all", v.requests - v0.requests, pe.answers,
                pe.rx_total, v.bad_frames - v0.bad_frames, v.owed,
                v.conns ? (settled ? "settled" : "idle") : "closed by the node");

    /* The peer leaves: with unread answers the node sees ECONNRESET. */
    close(pe.fd);
    pe.fd = -1;
    run_until(W_FREED, 0);
    wait_timers();

    if (g.node_inputs >= g.fresh_every || topic_count(g.b) > RESET_TOPICS ||
        node_bytes() > RESET_BYTES)
        node_stop();
    return 0;
}
