/*
 * test_kafka — the Kafka wire protocol front end (broker/kafka) as a client
 * sees it: a single-node broker on a real libuv loop serves the Kafka port
 * on 127.0.0.1, and each test talks to it over plain nonblocking TCP
 * sockets, running the loop while it waits for whole answer frames.
 *
 * Requests are built with the codec's writers (kw_*, kbatch_build_*);
 * answers are decoded strictly with its readers (kr_*): every field of the
 * version's layout in order (Kafka's message schemas, clients/src/main/
 * resources/common/message/, and /work/shared/kafka-clients.md), and
 * then nothing may be left, so a field out of place, missing or extra
 * fails the test.  Every API is exercised at every version it advertises,
 * in table-driven loops over the versions.
 *
 * Malformed input: every truncation of the body of a few requests of each
 * API must close the connection or be answered with a well-formed error,
 * and the port must then still serve a fresh connection; frame sizes out
 * of range, unknown APIs and versions, and lying array counts close the
 * connection.
 *
 * Every wait is bounded (an answer 5 s, a close 5 s); the longest waits are
 * a few Fetch long polls of 200-300 ms and the groups' 300 ms initial
 * delay.  Answer frames and sockets are kept in static storage and freed
 * or closed at teardown, so a failing assertion leaks nothing.
 */
#include "broker/broker.h"
#include "broker/kafka/codec.h"
#include "broker/kafka/kafka.h"
#include "tests/unit/helpers.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <uv.h>

/* ------------------------------------------------------------- constants */

/* API keys (Kafka's numbering). */
enum {
    PRODUCE = 0,
    FETCH = 1,
    LIST_OFFSETS = 2,
    METADATA = 3,
    OFFSET_COMMIT = 8,
    OFFSET_FETCH = 9,
    FIND_COORDINATOR = 10,
    JOIN_GROUP = 11,
    HEARTBEAT = 12,
    LEAVE_GROUP = 13,
    SYNC_GROUP = 14,
    API_VERSIONS = 18,
    CREATE_TOPICS = 19,
    DELETE_TOPICS = 20,
    INIT_PRODUCER_ID = 22,
};

/* Kafka's error codes that the tests expect. */
enum {
    E_NONE = 0,
    E_OFFSET_OUT_OF_RANGE = 1,
    E_CORRUPT_MESSAGE = 2,
    E_UNKNOWN_TOPIC_OR_PARTITION = 3,
    E_COORDINATOR_NOT_AVAILABLE = 15,
    E_INVALID_TOPIC = 17,
    E_ILLEGAL_GENERATION = 22,
    E_UNKNOWN_MEMBER_ID = 25,
    E_UNSUPPORTED_VERSION = 35,
    E_TOPIC_ALREADY_EXISTS = 36,
    E_INVALID_PARTITIONS = 37,
    E_INVALID_REPLICATION_FACTOR = 38,
    E_INVALID_REQUEST = 42,
    E_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
    E_INVALID_RECORD = 87,
};

/* What ApiVersions must advertise (api.c's table; kafka-clients.md 2). */
static const struct {
    int16_t key, min, max;
} advertised[] = {
    {PRODUCE, 0, 7},       {FETCH, 4, 11},           {LIST_OFFSETS, 0, 3},
    {METADATA, 0, 6},      {API_VERSIONS, 0, 3},     {CREATE_TOPICS, 0, 4},
    {DELETE_TOPICS, 0, 3}, {INIT_PRODUCER_ID, 0, 1}, {OFFSET_COMMIT, 0, 7},
    {OFFSET_FETCH, 0, 5},  {FIND_COORDINATOR, 0, 2}, {JOIN_GROUP, 0, 5},
    {HEARTBEAT, 0, 3},     {LEAVE_GROUP, 0, 1},      {SYNC_GROUP, 0, 3},
};
#define NADVERTISED (sizeof(advertised) / sizeof(advertised[0]))

#define WAIT_MS 5000 /* the longest any answer or close may take */

/* ------------------------------------------------------------- fixture */

static char *tmp;
static uv_loop_t loop;
static struct broker *b;
static struct kafka *kp;
static struct mk_config cfg;
static uint16_t port;
static int32_t next_corr = 1;

/* A client socket and the answer bytes read from it, not yet a frame. */
struct cli {
    int fd; /* -1: slot free */
    uint8_t *buf;
    size_t len, cap;
};
#define MAXCLI 16
static struct cli clis[MAXCLI];

/* Answer frames handed to tests, freed at teardown. */
static void **kept;
static size_t nkept, capkept;

static void *keep(void *p)
{
    cr_assert_not_null(p);
    if (nkept == capkept) {
        capkept = capkept ? 2 * capkept : 64;
        kept = realloc(kept, capkept * sizeof(*kept));
        cr_assert_not_null(kept);
    }
    kept[nkept++] = p;
    return p;
}

static void setup(void)
{
    sysio_reset();
    mk_log_terminal_info(false); /* thousands of "closing" lines otherwise */
    for (int i = 0; i < MAXCLI; i++)
        clis[i] = (struct cli){.fd = -1};
    tmp = th_mkdtemp();
    cfg_defaults(&cfg);
    cfg.fsync = MK_FSYNC_NEVER;
    cfg.num_partitions = 2;
    cr_assert_eq(uv_loop_init(&loop), 0);
    long holder = 0;
    cr_assert_eq(broker_open(&b, tmp, &cfg, &holder), 0);
    uv_update_time(&loop);
    cr_assert_eq(broker_start(b, &loop), 0);
    port = (uint16_t)(th_free_ports(1) + 1);
    int rc = kafka_start(&kp, b, &loop, "127.0.0.1", port, NULL, 0);
    cr_assert_eq(rc, 0, "kafka_start: %s", rc == -ENOTSUP ? "no crc32 instruction" : strerror(-rc));
    /* As main.c does: Metadata lists the nodes whose Kafka address is known. */
    broker_set_kafka(b, "127.0.0.1", port);
    struct topic *t;
    cr_assert_eq(topic_create(b, "t", NULL, &t), 0);
}

static void cli_close(struct cli *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    *c = (struct cli){.fd = -1};
}

/* Stops the port and the broker as the daemon does (kafka_stop, then
 * broker_quiesce, then the loop drains; the port frees itself), and
 * returns how long the loop took to drain, in ms. */
static uint64_t stop_all(void)
{
    uint64_t t0 = uv_hrtime();
    if (kp) {
        kafka_stop(kp);
        kp = NULL;
    }
    if (b) {
        broker_quiesce(b);
        uint64_t deadline = t0 + 15ull * 1000000000ull;
        while (uv_loop_alive(&loop)) {
            cr_assert(uv_hrtime() < deadline, "the loop still runs 15 s after stopping");
            uv_run(&loop, UV_RUN_NOWAIT);
            usleep(500);
        }
        cr_assert_not(broker_busy(b));
        broker_close(b);
        b = NULL;
    }
    return (uv_hrtime() - t0) / 1000000;
}

static void teardown(void)
{
    for (int i = 0; i < MAXCLI; i++)
        cli_close(&clis[i]);
    stop_all();
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
    while (nkept > 0)
        free(kept[--nkept]);
    free(kept);
    kept = NULL;
    capkept = 0;
    th_rmdir(tmp);
}

TestSuite(kafka, .init = setup, .fini = teardown, .timeout = 60);

/* ------------------------------------------------------------- sockets */

static struct cli *cli_open(void)
{
    struct cli *c = NULL;
    for (int i = 0; i < MAXCLI && !c; i++)
        if (clis[i].fd < 0)
            c = &clis[i];
    cr_assert_not_null(c, "more than %d client sockets", MAXCLI);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    /* Loopback completes the handshake into the listen backlog: the loop
     * accepts it the next time it runs. */
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s", strerror(errno));
    cr_assert_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    return c;
}

/* Sends n bytes, running the loop while the socket is full; false when the
 * server closed the connection meanwhile (EPIPE, ECONNRESET). */
static bool cli_send(struct cli *c, const void *p, size_t n)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)WAIT_MS * 1000000ull;
    size_t off = 0;
    while (off < n) {
        ssize_t m = send(c->fd, (const uint8_t *)p + off, n - off, MSG_NOSIGNAL);
        if (m > 0) {
            off += (size_t)m;
            continue;
        }
        if (m < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return false;
        cr_assert(uv_hrtime() < deadline, "could not send %zu bytes within 5 s", n);
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(200);
    }
    return true;
}

enum { RX_TIMEOUT = -1, RX_CLOSED = 0, RX_FRAME = 1 };

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Runs the loop and reads until a whole answer frame arrived (RX_FRAME:
 * *frame malloc'ed, the bytes after the size), the server closed the
 * connection (RX_CLOSED: EOF or a reset), or ms passed (RX_TIMEOUT). */
static int cli_recv(struct cli *c, int ms, uint8_t **frame, size_t *len)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)ms * 1000000ull;
    for (;;) {
        if (c->len >= 4) {
            uint32_t size = be32(c->buf);
            cr_assert(size >= 4 && size <= (64u << 20), "an answer frame of %u bytes", size);
            if (c->len - 4 >= size) {
                *frame = malloc(size);
                cr_assert_not_null(*frame);
                memcpy(*frame, c->buf + 4, size);
                *len = size;
                memmove(c->buf, c->buf + 4 + size, c->len - 4 - size);
                c->len -= 4 + size;
                return RX_FRAME;
            }
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        if (c->cap - c->len < 65536) {
            c->cap = c->len + 65536;
            c->buf = realloc(c->buf, c->cap);
            cr_assert_not_null(c->buf);
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n > 0) {
            c->len += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return RX_CLOSED;
        if (uv_hrtime() >= deadline)
            return RX_TIMEOUT;
        usleep(200);
    }
}

/* Waits for the server to close c: no answer may come first. */
static void expect_closed(struct cli *c, const char *what)
{
    uint8_t *f = NULL;
    size_t n;
    int rc = cli_recv(c, WAIT_MS, &f, &n);
    free(f);
    cr_assert_eq(rc, RX_CLOSED, "%s: %s instead of a closed connection", what,
                 rc == RX_FRAME ? "an answer" : "nothing within 5 s");
}

/* ------------------------------------------------------------- requests */

/* A request frame being built: size placeholder, header v1 (v2 for the
 * flexible ApiVersions v3+), body. */
struct rq {
    struct kw w;
    int32_t corr;
    size_t body_at; /* where the body starts in w.p */
};

static void rq_begin(struct rq *q, int16_t api, int16_t v)
{
    kw_init(&q->w);
    q->corr = next_corr++;
    kw_reserve(&q->w, 4);
    kw_i16(&q->w, api);
    kw_i16(&q->w, v);
    kw_i32(&q->w, q->corr);
    kw_string(&q->w, "mk-test", 7); /* client id: int16 length in v1 and v2 */
    if (api == API_VERSIONS && v >= 3)
        kw_empty_tags(&q->w);
    q->body_at = q->w.len;
}

/* Completes the frame; its buffer is freed at teardown. */
static void rq_end(struct rq *q)
{
    cr_assert_eq(q->w.err, 0);
    keep(q->w.p);
    kw_put_i32_at(&q->w, 0, (int32_t)(q->w.len - 4));
}

static void rq_send(struct cli *c, struct rq *q)
{
    cr_assert(cli_send(c, q->w.p, q->w.len), "the server closed the connection before a request");
}

/* The next answer on c, which must be corr's: a reader over its body (the
 * response header is v0 for every version served: none but ApiVersions v3
 * is flexible, and ApiVersions always answers with header v0). */
static struct kr answer(struct cli *c, int32_t corr)
{
    uint8_t *f;
    size_t n;
    int rc = cli_recv(c, WAIT_MS, &f, &n);
    cr_assert_eq(rc, RX_FRAME, "request %d: %s", corr,
                 rc == RX_CLOSED ? "the server closed the connection" : "no answer within 5 s");
    keep(f);
    struct kr r;
    kr_init(&r, f, n);
    int32_t got = kr_i32(&r);
    cr_assert_eq(got, corr, "an answer to request %d came where %d's was due", got, corr);
    return r;
}

static struct kr call(struct cli *c, struct rq *q)
{
    int32_t corr = q->corr;
    rq_send(c, q);
    return answer(c, corr);
}

/* ---- one builder per API: body fields in the schema's order */

static void rq_api_versions(struct rq *q, int16_t v)
{
    rq_begin(q, API_VERSIONS, v);
    if (v >= 3) {
        kw_compact_string(&q->w, "mk-test", 7);
        kw_compact_string(&q->w, "1.0", 3);
        kw_empty_tags(&q->w);
    }
    rq_end(q);
}

/* names NULL with n -1: a null array (all topics, v1+). */
static void rq_metadata(struct rq *q, int16_t v, const char *const *names, int n, bool allow)
{
    rq_begin(q, METADATA, v);
    kw_array(&q->w, n);
    for (int i = 0; i < n; i++)
        kw_string(&q->w, names[i], names[i] ? (int32_t)strlen(names[i]) : -1);
    if (v >= 4)
        kw_i8(&q->w, allow);
    rq_end(q);
}

struct ppart {
    int32_t idx;
    const uint8_t *recs;
    int32_t len;
};
struct ptopic {
    const char *name;
    int n;
    struct ppart p[4];
};

static void rq_produce(struct rq *q, int16_t v, int16_t acks, const struct ptopic *ts, int nt)
{
    rq_begin(q, PRODUCE, v);
    if (v >= 3)
        kw_string(&q->w, NULL, -1); /* transactional id */
    kw_i16(&q->w, acks);
    kw_i32(&q->w, 5000);
    kw_array(&q->w, nt);
    for (int i = 0; i < nt; i++) {
        kw_string(&q->w, ts[i].name, ts[i].name ? (int32_t)strlen(ts[i].name) : -1);
        kw_array(&q->w, ts[i].n);
        for (int j = 0; j < ts[i].n; j++) {
            kw_i32(&q->w, ts[i].p[j].idx);
            kw_bytes(&q->w, ts[i].p[j].recs, ts[i].p[j].len);
        }
    }
    rq_end(q);
}

struct fpart {
    int32_t idx;
    int64_t off;
    int32_t max;
};
struct ftopic {
    const char *name;
    int n;
    struct fpart p[4];
};

static void rq_fetch(struct rq *q, int16_t v, int32_t max_wait, int32_t min_bytes,
                     const struct ftopic *ts, int nt)
{
    rq_begin(q, FETCH, v);
    kw_i32(&q->w, -1); /* replica id */
    kw_i32(&q->w, max_wait);
    kw_i32(&q->w, min_bytes);
    kw_i32(&q->w, 1 << 20); /* max bytes (v3+) */
    kw_i8(&q->w, 0);        /* isolation level (v4+) */
    if (v >= 7) {
        kw_i32(&q->w, 0);  /* session id */
        kw_i32(&q->w, -1); /* session epoch */
    }
    kw_array(&q->w, nt);
    for (int i = 0; i < nt; i++) {
        kw_string(&q->w, ts[i].name, ts[i].name ? (int32_t)strlen(ts[i].name) : -1);
        kw_array(&q->w, ts[i].n);
        for (int j = 0; j < ts[i].n; j++) {
            kw_i32(&q->w, ts[i].p[j].idx);
            if (v >= 9)
                kw_i32(&q->w, -1); /* current leader epoch */
            kw_i64(&q->w, ts[i].p[j].off);
            if (v >= 5)
                kw_i64(&q->w, -1); /* log start offset (followers) */
            kw_i32(&q->w, ts[i].p[j].max);
        }
    }
    if (v >= 7)
        kw_array(&q->w, 0); /* forgotten topics */
    if (v >= 11)
        kw_string(&q->w, "", 0); /* rack id */
    rq_end(q);
}

struct lpart {
    int32_t idx;
    int64_t ts;
};
struct ltopic {
    const char *name;
    int n;
    struct lpart p[4];
};

static void rq_list_offsets(struct rq *q, int16_t v, const struct ltopic *ts, int nt)
{
    rq_begin(q, LIST_OFFSETS, v);
    kw_i32(&q->w, -1); /* replica id */
    if (v >= 2)
        kw_i8(&q->w, 0); /* isolation level */
    kw_array(&q->w, nt);
    for (int i = 0; i < nt; i++) {
        kw_string(&q->w, ts[i].name, ts[i].name ? (int32_t)strlen(ts[i].name) : -1);
        kw_array(&q->w, ts[i].n);
        for (int j = 0; j < ts[i].n; j++) {
            kw_i32(&q->w, ts[i].p[j].idx);
            kw_i64(&q->w, ts[i].p[j].ts);
            if (v == 0)
                kw_i32(&q->w, 1); /* max number of offsets */
        }
    }
    rq_end(q);
}

struct ctopic {
    const char *name;
    int32_t parts;
    int16_t rf;
};

static void rq_create_topics(struct rq *q, int16_t v, const struct ctopic *ts, int n,
                             bool validate_only)
{
    rq_begin(q, CREATE_TOPICS, v);
    kw_array(&q->w, n);
    for (int i = 0; i < n; i++) {
        kw_string(&q->w, ts[i].name, ts[i].name ? (int32_t)strlen(ts[i].name) : -1);
        kw_i32(&q->w, ts[i].parts);
        kw_i16(&q->w, ts[i].rf);
        kw_array(&q->w, 0); /* manual assignments */
        kw_array(&q->w, 1); /* configs */
        kw_string(&q->w, "retention.ms", 12);
        kw_string(&q->w, NULL, -1);
    }
    kw_i32(&q->w, 5000);
    if (v >= 1)
        kw_i8(&q->w, validate_only);
    rq_end(q);
}

static void rq_delete_topics(struct rq *q, int16_t v, const char *const *names, int n)
{
    rq_begin(q, DELETE_TOPICS, v);
    kw_array(&q->w, n);
    for (int i = 0; i < n; i++)
        kw_string(&q->w, names[i], names[i] ? (int32_t)strlen(names[i]) : -1);
    kw_i32(&q->w, 5000);
    rq_end(q);
}

static void rq_init_producer_id(struct rq *q, int16_t v, const char *tid)
{
    rq_begin(q, INIT_PRODUCER_ID, v);
    kw_string(&q->w, tid, tid ? (int32_t)strlen(tid) : -1);
    kw_i32(&q->w, 60000);
    rq_end(q);
}

static void rq_find_coordinator(struct rq *q, int16_t v, const char *key, int8_t type)
{
    rq_begin(q, FIND_COORDINATOR, v);
    kw_string(&q->w, key, (int32_t)strlen(key));
    if (v >= 1)
        kw_i8(&q->w, type);
    rq_end(q);
}

static void rq_join_group(struct rq *q, int16_t v, const char *group, const char *member,
                          const char *meta)
{
    rq_begin(q, JOIN_GROUP, v);
    kw_string(&q->w, group, (int32_t)strlen(group));
    kw_i32(&q->w, 10000); /* session timeout */
    if (v >= 1)
        kw_i32(&q->w, 10000); /* rebalance timeout */
    kw_string(&q->w, member, (int32_t)strlen(member));
    if (v >= 5)
        kw_string(&q->w, NULL, -1); /* group instance id */
    kw_string(&q->w, "consumer", 8);
    kw_array(&q->w, 1);
    kw_string(&q->w, "range", 5);
    kw_bytes(&q->w, meta, (int32_t)strlen(meta));
    rq_end(q);
}

static void rq_sync_group(struct rq *q, int16_t v, const char *group, int32_t gen,
                          const char *member, const char *assignment)
{
    rq_begin(q, SYNC_GROUP, v);
    kw_string(&q->w, group, (int32_t)strlen(group));
    kw_i32(&q->w, gen);
    kw_string(&q->w, member, (int32_t)strlen(member));
    if (v >= 3)
        kw_string(&q->w, NULL, -1); /* group instance id */
    kw_array(&q->w, 1);
    kw_string(&q->w, member, (int32_t)strlen(member));
    kw_bytes(&q->w, assignment, (int32_t)strlen(assignment));
    rq_end(q);
}

static void rq_heartbeat(struct rq *q, int16_t v, const char *group, int32_t gen,
                         const char *member)
{
    rq_begin(q, HEARTBEAT, v);
    kw_string(&q->w, group, (int32_t)strlen(group));
    kw_i32(&q->w, gen);
    kw_string(&q->w, member, (int32_t)strlen(member));
    if (v >= 3)
        kw_string(&q->w, NULL, -1);
    rq_end(q);
}

static void rq_leave_group(struct rq *q, int16_t v, const char *group, const char *member)
{
    rq_begin(q, LEAVE_GROUP, v);
    kw_string(&q->w, group, (int32_t)strlen(group));
    kw_string(&q->w, member, (int32_t)strlen(member));
    rq_end(q);
}

struct opart {
    int32_t idx;
    int64_t off;
    const char *meta;
};

/* topic NULL: a null topic name. */
static void rq_offset_commit(struct rq *q, int16_t v, const char *group, int32_t gen,
                             const char *member, const char *topic, const struct opart *ps, int n)
{
    rq_begin(q, OFFSET_COMMIT, v);
    kw_string(&q->w, group, (int32_t)strlen(group));
    if (v >= 1) {
        kw_i32(&q->w, gen);
        kw_string(&q->w, member, (int32_t)strlen(member));
    }
    if (v >= 7)
        kw_string(&q->w, NULL, -1); /* group instance id */
    if (v >= 2 && v <= 4)
        kw_i64(&q->w, -1); /* retention time */
    kw_array(&q->w, 1);
    kw_string(&q->w, topic, topic ? (int32_t)strlen(topic) : -1);
    kw_array(&q->w, n);
    for (int i = 0; i < n; i++) {
        kw_i32(&q->w, ps[i].idx);
        kw_i64(&q->w, ps[i].off);
        if (v >= 6)
            kw_i32(&q->w, -1); /* committed leader epoch */
        if (v == 1)
            kw_i64(&q->w, -1); /* commit timestamp */
        kw_string(&q->w, ps[i].meta, ps[i].meta ? (int32_t)strlen(ps[i].meta) : -1);
    }
    rq_end(q);
}

/* ntopics -1: a null topic array (every committed offset, v2+); topic
 * NULL: a null topic name. */
static void rq_offset_fetch(struct rq *q, int16_t v, const char *group, int ntopics,
                            const char *topic, const int32_t *parts, int n)
{
    rq_begin(q, OFFSET_FETCH, v);
    kw_string(&q->w, group, (int32_t)strlen(group));
    kw_array(&q->w, ntopics);
    if (ntopics == 1) {
        kw_string(&q->w, topic, topic ? (int32_t)strlen(topic) : -1);
        kw_array(&q->w, n);
        for (int i = 0; i < n; i++)
            kw_i32(&q->w, parts[i]);
    }
    rq_end(q);
}

/* ------------------------------------------------------------- strict readers */

static int8_t r8(struct kr *r, const char *what)
{
    int8_t v = kr_i8(r);
    cr_assert_eq(r->err, 0, "the answer ends before %s", what);
    return v;
}

static int16_t r16(struct kr *r, const char *what)
{
    int16_t v = kr_i16(r);
    cr_assert_eq(r->err, 0, "the answer ends before %s", what);
    return v;
}

static int32_t r32(struct kr *r, const char *what)
{
    int32_t v = kr_i32(r);
    cr_assert_eq(r->err, 0, "the answer ends before %s", what);
    return v;
}

static int64_t r64(struct kr *r, const char *what)
{
    int64_t v = kr_i64(r);
    cr_assert_eq(r->err, 0, "the answer ends before %s", what);
    return v;
}

/* An array count in 0..max (nullable: -1 allowed too). */
static int32_t rarr(struct kr *r, const char *what, int32_t max, bool nullable)
{
    int32_t n = kr_array(r, 1);
    cr_assert_eq(r->err, 0, "a bad count for %s", what);
    cr_assert((nullable && n == -1) || (n >= 0 && n <= max), "%s: %d elements (expected %s0..%d)",
              what, n, nullable ? "-1 or " : "", max);
    return n;
}

/* A STRING into buf, NUL-terminated; its length, -1 when null. */
static int32_t rstr(struct kr *r, const char *what, char *buf, size_t cap)
{
    const uint8_t *s;
    int32_t len = kr_string(r, &s);
    cr_assert_eq(r->err, 0, "a bad string for %s", what);
    buf[0] = '\0';
    if (len < 0)
        return -1;
    cr_assert_lt((size_t)len, cap, "%s: %d bytes", what, len);
    memcpy(buf, s, (size_t)len);
    buf[len] = '\0';
    return len;
}

static int32_t rbytes(struct kr *r, const char *what, const uint8_t **p)
{
    int32_t len = kr_bytes(r, p);
    cr_assert_eq(r->err, 0, "bad bytes for %s", what);
    return len;
}

static void rend(struct kr *r, const char *what)
{
    cr_assert_eq(r->err, 0, "the %s answer does not parse", what);
    cr_assert_eq(kr_left(r), 0, "%zu bytes left after the %s answer", kr_left(r), what);
}

static void rtags(struct kr *r, const char *what)
{
    uint32_t n = kr_uvarint(r);
    cr_assert_eq(r->err, 0, "the answer ends before the tags of %s", what);
    cr_assert_eq(n, 0, "tags sent in %s (librdkafka 2.0.2 mis-skips them)", what);
}

/* ------------------------------------------------------------- decoders
 *
 * Each reads one API's answer body in its version's layout, every field in
 * order, asserts nothing is left, and returns how many error codes in it
 * are not 0. */

struct av_resp {
    int16_t err;
    int32_t n;
    struct {
        int16_t key, min, max;
    } a[32];
    int32_t throttle;
};

static int dec_api_versions(struct kr *r, int16_t v, struct av_resp *o)
{
    memset(o, 0, sizeof(*o));
    o->throttle = -1;
    o->err = r16(r, "error_code");
    if (v >= 3) {
        o->n = (int32_t)kr_uvarint(r) - 1; /* compact array */
        cr_assert(r->err == 0 && o->n >= 0 && o->n <= 32, "a bad compact count of api keys");
    } else {
        o->n = rarr(r, "api_keys", 32, false);
    }
    for (int32_t i = 0; i < o->n; i++) {
        o->a[i].key = r16(r, "api_key");
        o->a[i].min = r16(r, "min_version");
        o->a[i].max = r16(r, "max_version");
        if (v >= 3)
            rtags(r, "an api key");
    }
    if (v >= 1)
        o->throttle = r32(r, "throttle_time_ms");
    if (v >= 3)
        rtags(r, "ApiVersions");
    rend(r, "ApiVersions");
    return o->err != 0;
}

struct md_part {
    int16_t err;
    int32_t idx, leader;
    int32_t nrep, nisr, noff;
    int32_t rep[8], isr[8];
};
struct md_topic {
    int16_t err;
    char name[256];
    int8_t internal;
    int32_t nparts;
    struct md_part p[8];
};
struct md_resp {
    int32_t throttle;
    int32_t nbrokers;
    struct {
        int32_t id;
        char host[256];
        int32_t port;
        int32_t rack_len;
    } br[4];
    int32_t cluster_len;
    char cluster[64];
    int32_t controller;
    int32_t ntopics;
    struct md_topic t[16];
};

static int dec_metadata(struct kr *r, int16_t v, struct md_resp *o)
{
    int nerr = 0;
    memset(o, 0, sizeof(*o));
    o->throttle = o->controller = -2;
    if (v >= 3)
        o->throttle = r32(r, "throttle_time_ms");
    o->nbrokers = rarr(r, "brokers", 4, false);
    for (int32_t i = 0; i < o->nbrokers; i++) {
        o->br[i].id = r32(r, "node_id");
        rstr(r, "host", o->br[i].host, sizeof(o->br[i].host));
        o->br[i].port = r32(r, "port");
        char rack[64];
        o->br[i].rack_len = v >= 1 ? rstr(r, "rack", rack, sizeof(rack)) : -1;
    }
    if (v >= 2)
        o->cluster_len = rstr(r, "cluster_id", o->cluster, sizeof(o->cluster));
    if (v >= 1)
        o->controller = r32(r, "controller_id");
    o->ntopics = rarr(r, "topics", 16, false);
    for (int32_t i = 0; i < o->ntopics; i++) {
        struct md_topic *t = &o->t[i];
        t->err = r16(r, "topic error_code");
        nerr += t->err != 0;
        rstr(r, "topic name", t->name, sizeof(t->name));
        t->internal = v >= 1 ? r8(r, "is_internal") : -1;
        t->nparts = rarr(r, "partitions", 8, false);
        for (int32_t j = 0; j < t->nparts; j++) {
            struct md_part *p = &t->p[j];
            p->err = r16(r, "partition error_code");
            nerr += p->err != 0;
            p->idx = r32(r, "partition_index");
            p->leader = r32(r, "leader_id");
            p->nrep = rarr(r, "replica_nodes", 8, false);
            for (int32_t q = 0; q < p->nrep; q++)
                p->rep[q] = r32(r, "replica");
            p->nisr = rarr(r, "isr_nodes", 8, false);
            for (int32_t q = 0; q < p->nisr; q++)
                p->isr[q] = r32(r, "isr");
            p->noff = -1;
            if (v >= 5) {
                p->noff = rarr(r, "offline_replicas", 8, false);
                for (int32_t q = 0; q < p->noff; q++)
                    r32(r, "offline replica");
            }
        }
    }
    rend(r, "Metadata");
    return nerr;
}

struct pr_part {
    int32_t idx;
    int16_t err;
    int64_t base, log_append_time, log_start;
};
struct pr_resp {
    int32_t ntopics;
    struct {
        char name[256];
        int32_t nparts;
        struct pr_part p[4];
    } t[4];
    int32_t throttle;
};

static int dec_produce(struct kr *r, int16_t v, struct pr_resp *o)
{
    int nerr = 0;
    memset(o, 0, sizeof(*o));
    o->ntopics = rarr(r, "responses", 4, false);
    for (int32_t i = 0; i < o->ntopics; i++) {
        rstr(r, "topic name", o->t[i].name, sizeof(o->t[i].name));
        o->t[i].nparts = rarr(r, "partition_responses", 4, false);
        for (int32_t j = 0; j < o->t[i].nparts; j++) {
            struct pr_part *p = &o->t[i].p[j];
            p->idx = r32(r, "index");
            p->err = r16(r, "error_code");
            nerr += p->err != 0;
            p->base = r64(r, "base_offset");
            p->log_append_time = v >= 2 ? r64(r, "log_append_time_ms") : -2;
            p->log_start = v >= 5 ? r64(r, "log_start_offset") : -2;
        }
    }
    o->throttle = v >= 1 ? r32(r, "throttle_time_ms (last in Produce)") : -2;
    rend(r, "Produce");
    return nerr;
}

struct fe_part {
    int32_t idx;
    int16_t err;
    int64_t hwm, lso, log_start;
    int32_t naborted, preferred;
    const uint8_t *recs;
    int32_t recs_len;
};
struct fe_resp {
    int32_t throttle;
    int16_t err;
    int32_t session;
    int32_t ntopics;
    struct {
        char name[256];
        int32_t nparts;
        struct fe_part p[4];
    } t[4];
};

static int dec_fetch(struct kr *r, int16_t v, struct fe_resp *o)
{
    int nerr = 0;
    memset(o, 0, sizeof(*o));
    o->throttle = r32(r, "throttle_time_ms (first in Fetch v1+)");
    o->err = o->session = -2;
    if (v >= 7) {
        o->err = r16(r, "top error_code");
        nerr += o->err != 0;
        o->session = r32(r, "session_id");
    }
    o->ntopics = rarr(r, "responses", 4, false);
    for (int32_t i = 0; i < o->ntopics; i++) {
        rstr(r, "topic", o->t[i].name, sizeof(o->t[i].name));
        o->t[i].nparts = rarr(r, "partitions", 4, false);
        for (int32_t j = 0; j < o->t[i].nparts; j++) {
            struct fe_part *p = &o->t[i].p[j];
            p->idx = r32(r, "partition_index");
            p->err = r16(r, "error_code");
            nerr += p->err != 0;
            p->hwm = r64(r, "high_watermark");
            p->lso = r64(r, "last_stable_offset");
            p->log_start = v >= 5 ? r64(r, "log_start_offset") : -2;
            p->naborted = rarr(r, "aborted_transactions", 16, true);
            for (int32_t q = 0; q < p->naborted; q++) {
                r64(r, "aborted producer_id");
                r64(r, "aborted first_offset");
            }
            p->preferred = v >= 11 ? r32(r, "preferred_read_replica") : -2;
            p->recs_len = rbytes(r, "records", &p->recs);
        }
    }
    rend(r, "Fetch");
    return nerr;
}

struct lo_part {
    int32_t idx;
    int16_t err;
    int32_t noffs;
    int64_t offs[4];
    int64_t ts, off;
};
struct lo_resp {
    int32_t throttle;
    int32_t ntopics;
    struct {
        char name[256];
        int32_t nparts;
        struct lo_part p[4];
    } t[4];
};

static int dec_list_offsets(struct kr *r, int16_t v, struct lo_resp *o)
{
    int nerr = 0;
    memset(o, 0, sizeof(*o));
    o->throttle = v >= 2 ? r32(r, "throttle_time_ms") : -2;
    o->ntopics = rarr(r, "topics", 4, false);
    for (int32_t i = 0; i < o->ntopics; i++) {
        rstr(r, "name", o->t[i].name, sizeof(o->t[i].name));
        o->t[i].nparts = rarr(r, "partitions", 4, false);
        for (int32_t j = 0; j < o->t[i].nparts; j++) {
            struct lo_part *p = &o->t[i].p[j];
            p->idx = r32(r, "partition_index");
            p->err = r16(r, "error_code");
            nerr += p->err != 0;
            p->noffs = -2;
            p->ts = p->off = -2;
            if (v == 0) {
                p->noffs = rarr(r, "old_style_offsets", 4, false);
                for (int32_t q = 0; q < p->noffs; q++)
                    p->offs[q] = r64(r, "old style offset");
            } else {
                p->ts = r64(r, "timestamp");
                p->off = r64(r, "offset");
            }
        }
    }
    rend(r, "ListOffsets");
    return nerr;
}

struct ct_resp {
    int32_t throttle;
    int32_t n;
    struct {
        char name[256];
        int16_t err;
        int32_t msg_len;
        char msg[256];
    } t[8];
};

static int dec_create_topics(struct kr *r, int16_t v, struct ct_resp *o)
{
    int nerr = 0;
    memset(o, 0, sizeof(*o));
    o->throttle = v >= 2 ? r32(r, "throttle_time_ms") : -2;
    o->n = rarr(r, "topics", 8, false);
    for (int32_t i = 0; i < o->n; i++) {
        rstr(r, "name", o->t[i].name, sizeof(o->t[i].name));
        o->t[i].err = r16(r, "error_code");
        nerr += o->t[i].err != 0;
        o->t[i].msg_len = v >= 1 ? rstr(r, "error_message", o->t[i].msg, sizeof(o->t[i].msg)) : -2;
    }
    rend(r, "CreateTopics");
    return nerr;
}

static int dec_delete_topics(struct kr *r, int16_t v, struct ct_resp *o)
{
    int nerr = 0;
    memset(o, 0, sizeof(*o));
    o->throttle = v >= 1 ? r32(r, "throttle_time_ms") : -2;
    o->n = rarr(r, "responses", 8, false);
    for (int32_t i = 0; i < o->n; i++) {
        rstr(r, "name", o->t[i].name, sizeof(o->t[i].name));
        o->t[i].err = r16(r, "error_code");
        nerr += o->t[i].err != 0;
        o->t[i].msg_len = -2;
    }
    rend(r, "DeleteTopics");
    return nerr;
}

struct ip_resp {
    int32_t throttle;
    int16_t err;
    int64_t pid;
    int16_t epoch;
};

static int dec_init_producer_id(struct kr *r, int16_t v, struct ip_resp *o)
{
    (void)v;
    o->throttle = r32(r, "throttle_time_ms");
    o->err = r16(r, "error_code");
    o->pid = r64(r, "producer_id");
    o->epoch = r16(r, "producer_epoch");
    rend(r, "InitProducerId");
    return o->err != 0;
}

struct fc_resp {
    int32_t throttle;
    int16_t err;
    int32_t msg_len;
    int32_t node;
    char host[256];
    int32_t port;
};

static int dec_find_coordinator(struct kr *r, int16_t v, struct fc_resp *o)
{
    char msg[256];
    o->throttle = v >= 1 ? r32(r, "throttle_time_ms") : -2;
    o->err = r16(r, "error_code");
    o->msg_len = v >= 1 ? rstr(r, "error_message", msg, sizeof(msg)) : -2;
    o->node = r32(r, "node_id");
    rstr(r, "host", o->host, sizeof(o->host));
    o->port = r32(r, "port");
    rend(r, "FindCoordinator");
    return o->err != 0;
}

struct jg_resp {
    int32_t throttle;
    int16_t err;
    int32_t gen;
    char protocol[256], leader[256], member[256];
    int32_t n;
    struct {
        char id[256];
        int32_t instance_len;
        uint8_t meta[64];
        int32_t meta_len;
    } m[4];
};

static int dec_join_group(struct kr *r, int16_t v, struct jg_resp *o)
{
    memset(o, 0, sizeof(*o));
    o->throttle = v >= 2 ? r32(r, "throttle_time_ms") : -2;
    o->err = r16(r, "error_code");
    o->gen = r32(r, "generation_id");
    rstr(r, "protocol_name", o->protocol, sizeof(o->protocol));
    rstr(r, "leader", o->leader, sizeof(o->leader));
    rstr(r, "member_id", o->member, sizeof(o->member));
    o->n = rarr(r, "members", 4, false);
    for (int32_t i = 0; i < o->n; i++) {
        rstr(r, "member member_id", o->m[i].id, sizeof(o->m[i].id));
        char inst[256];
        o->m[i].instance_len = v >= 5 ? rstr(r, "group_instance_id", inst, sizeof(inst)) : -2;
        const uint8_t *meta;
        o->m[i].meta_len = rbytes(r, "metadata", &meta);
        cr_assert_leq(o->m[i].meta_len, 64);
        if (o->m[i].meta_len > 0)
            memcpy(o->m[i].meta, meta, (size_t)o->m[i].meta_len);
    }
    rend(r, "JoinGroup");
    return o->err != 0;
}

struct sg_resp {
    int32_t throttle;
    int16_t err;
    int32_t len;
    char data[256];
};

static int dec_sync_group(struct kr *r, int16_t v, struct sg_resp *o)
{
    memset(o, 0, sizeof(*o));
    o->throttle = v >= 1 ? r32(r, "throttle_time_ms") : -2;
    o->err = r16(r, "error_code");
    const uint8_t *d;
    o->len = rbytes(r, "assignment", &d);
    cr_assert_lt(o->len, 256);
    if (o->len > 0)
        memcpy(o->data, d, (size_t)o->len);
    rend(r, "SyncGroup");
    return o->err != 0;
}

struct hb_resp {
    int32_t throttle;
    int16_t err;
};

/* Heartbeat 0-3 and LeaveGroup 0-1: throttle (v1+), error code. */
static int dec_heartbeat(struct kr *r, int16_t v, struct hb_resp *o)
{
    o->throttle = v >= 1 ? r32(r, "throttle_time_ms") : -2;
    o->err = r16(r, "error_code");
    rend(r, "Heartbeat/LeaveGroup");
    return o->err != 0;
}

struct oc_resp {
    int32_t throttle;
    int32_t ntopics;
    struct {
        char name[256];
        int32_t nparts;
        struct {
            int32_t idx;
            int16_t err;
        } p[4];
    } t[4];
};

static int dec_offset_commit(struct kr *r, int16_t v, struct oc_resp *o)
{
    int nerr = 0;
    memset(o, 0, sizeof(*o));
    o->throttle = v >= 3 ? r32(r, "throttle_time_ms") : -2;
    o->ntopics = rarr(r, "topics", 4, false);
    for (int32_t i = 0; i < o->ntopics; i++) {
        rstr(r, "name", o->t[i].name, sizeof(o->t[i].name));
        o->t[i].nparts = rarr(r, "partitions", 4, false);
        for (int32_t j = 0; j < o->t[i].nparts; j++) {
            o->t[i].p[j].idx = r32(r, "partition_index");
            o->t[i].p[j].err = r16(r, "error_code");
            nerr += o->t[i].p[j].err != 0;
        }
    }
    rend(r, "OffsetCommit");
    return nerr;
}

struct of_resp {
    int32_t throttle;
    int32_t ntopics;
    struct {
        char name[256];
        int32_t nparts;
        struct {
            int32_t idx;
            int64_t off;
            int32_t epoch;
            int32_t meta_len;
            char meta[256];
            int16_t err;
        } p[4];
    } t[4];
    int16_t err;
};

static int dec_offset_fetch(struct kr *r, int16_t v, struct of_resp *o)
{
    int nerr = 0;
    memset(o, 0, sizeof(*o));
    o->throttle = v >= 3 ? r32(r, "throttle_time_ms") : -2;
    o->ntopics = rarr(r, "topics", 4, false);
    for (int32_t i = 0; i < o->ntopics; i++) {
        rstr(r, "name", o->t[i].name, sizeof(o->t[i].name));
        o->t[i].nparts = rarr(r, "partitions", 4, false);
        for (int32_t j = 0; j < o->t[i].nparts; j++) {
            o->t[i].p[j].idx = r32(r, "partition_index");
            o->t[i].p[j].off = r64(r, "committed_offset");
            o->t[i].p[j].epoch = v >= 5 ? r32(r, "committed_leader_epoch") : -2;
            o->t[i].p[j].meta_len =
                rstr(r, "metadata", o->t[i].p[j].meta, sizeof(o->t[i].p[j].meta));
            o->t[i].p[j].err = r16(r, "error_code");
            nerr += o->t[i].p[j].err != 0;
        }
    }
    o->err = v >= 2 ? r16(r, "top error_code") : -2;
    nerr += v >= 2 && o->err != 0;
    rend(r, "OffsetFetch");
    return nerr;
}

/* ------------------------------------------------------------- records */

/* A record as produced and as expected back. */
struct trec {
    const char *key;
    int32_t klen; /* -1: null */
    const char *val;
    int32_t vlen; /* -1: null */
    int nh;
    const char *hk[2];
    const char *hv[2];
    int32_t hvlen[2]; /* -1: a null header value */
    int64_t ts;       /* -1 when checking: any (an append time) */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One uncompressed RecordBatch v2 of recs into w (a producer's, baseOffset 0). */
static void put_batch(struct kw *w, const struct trec *recs, int n)
{
    struct kbatch_builder bb;
    kbatch_build_begin(&bb, w, 0, recs[0].ts);
    for (int i = 0; i < n; i++) {
        struct kw h;
        kw_init(&h);
        for (int j = 0; j < recs[i].nh; j++)
            kw_record_header(&h, recs[i].hk[j], (int32_t)strlen(recs[i].hk[j]), recs[i].hv[j],
                             recs[i].hvlen[j]);
        kbatch_build_add(&bb, i, recs[i].ts, recs[i].key, recs[i].klen, recs[i].val, recs[i].vlen,
                         recs[i].nh, h.p, h.len);
        int err = h.err;
        kw_free(&h);
        cr_assert_eq(err, 0);
    }
    cr_assert_eq(kbatch_build_end(&bb), 0);
}

static bool same(const uint8_t *p, int32_t len, const char *want, int32_t want_len)
{
    return len == want_len && (len <= 0 || !memcmp(p, want, (size_t)len));
}

/* The records field of a Fetch answer holds exactly want[0..n), at offsets
 * first, first + 1, ... */
static void check_records(const uint8_t *p, int32_t len, int64_t first, const struct trec *want,
                          int n)
{
    cr_assert_gt(len, 0, "no records where %d were due", n);
    size_t at = 0;
    int i = 0;
    while (at < (size_t)len) {
        struct kbatch bt;
        size_t used;
        cr_assert_eq(kbatch_parse(p + at, (size_t)len - at, &bt, &used), 0,
                     "a batch that does not parse");
        cr_assert_eq(bt.magic, 2);
        struct krec_iter it;
        cr_assert_eq(kbatch_records_begin(&it, &bt, 1 << 20), 0);
        struct krecord rec;
        int rc;
        while ((rc = kbatch_records_next(&it, &rec)) == 1) {
            cr_assert_lt(i, n, "more records than the %d expected", n);
            const struct trec *t = &want[i];
            cr_assert_eq(bt.base_offset + rec.offset_delta, first + i,
                         "record %d at offset %" PRId64, i, bt.base_offset + rec.offset_delta);
            if (t->ts >= 0)
                cr_assert_eq(bt.base_ts + rec.ts_delta, t->ts, "record %d's timestamp", i);
            else
                cr_assert_gt(bt.base_ts + rec.ts_delta, 0);
            cr_assert(same(rec.key, rec.key_len, t->key, t->klen), "record %d's key (%d bytes)", i,
                      rec.key_len);
            cr_assert(same(rec.value, rec.value_len, t->val, t->vlen),
                      "record %d's value (%d bytes)", i, rec.value_len);
            cr_assert_eq(rec.nheaders, t->nh, "record %d's header count", i);
            struct kr hr;
            kr_init(&hr, rec.headers, rec.headers_len);
            for (int j = 0; j < t->nh; j++) {
                const uint8_t *hk, *hv;
                int32_t hkl, hvl;
                cr_assert_eq(kheaders_next(&hr, &hk, &hkl, &hv, &hvl), 1);
                cr_assert(same(hk, hkl, t->hk[j], (int32_t)strlen(t->hk[j])),
                          "record %d header %d's key", i, j);
                cr_assert(same(hv, hvl, t->hv[j], t->hvlen[j]), "record %d header %d's value", i,
                          j);
            }
            const uint8_t *hk, *hv;
            int32_t hkl, hvl;
            cr_assert_eq(kheaders_next(&hr, &hk, &hkl, &hv, &hvl), 0);
            i++;
        }
        cr_assert_eq(rc, 0, "a record that does not parse");
        kbatch_records_end(&it);
        at += used;
    }
    cr_assert_eq(i, n, "%d records where %d were due", i, n);
}

/* Produces recs (one batch) to topic/part with Produce v7, acks -1; the base offset. */
static int64_t produce(struct cli *c, const char *topic, int32_t part, const struct trec *recs,
                       int n)
{
    struct kw batch;
    kw_init(&batch);
    put_batch(&batch, recs, n);
    keep(batch.p);
    struct ptopic pt = {topic, 1, {{part, batch.p, (int32_t)batch.len}}};
    struct rq q;
    rq_produce(&q, 7, -1, &pt, 1);
    struct kr r = call(c, &q);
    struct pr_resp o;
    cr_assert_eq(dec_produce(&r, 7, &o), 0, "error %d producing", o.t[0].p[0].err);
    return o.t[0].p[0].base;
}

/* n simple records "r<i>" with key "k<i>", timestamps from ts0 a second apart. */
static void simple_recs(struct trec *recs, int n, char (*bufs)[2][16], int64_t ts0)
{
    for (int i = 0; i < n; i++) {
        int kl = snprintf(bufs[i][0], 16, "k%d", i);
        int vl = snprintf(bufs[i][1], 16, "r%d", i);
        recs[i] = (struct trec){
            .key = bufs[i][0], .klen = kl, .val = bufs[i][1], .vlen = vl, .ts = ts0 + 1000 * i};
    }
}

static int32_t node(void)
{
    return (int32_t)broker_config(b)->node_id;
}

/* A Metadata request on a fresh connection is answered: the port serves. */
static void assert_serving(void)
{
    struct cli *c = cli_open();
    struct rq q;
    rq_metadata(&q, 1, NULL, 0, false);
    struct kr r = call(c, &q);
    struct md_resp o;
    dec_metadata(&r, 1, &o);
    cr_assert_eq(o.nbrokers, 1);
    cr_assert_eq(o.ntopics, 0);
    cli_close(c);
}

/* ================================================================ ApiVersions */

static void check_advertised(const struct av_resp *o)
{
    cr_assert_eq(o->n, (int32_t)NADVERTISED, "%d APIs advertised", o->n);
    for (size_t i = 0; i < NADVERTISED; i++) {
        bool found = false;
        for (int32_t j = 0; j < o->n && !found; j++) {
            if (o->a[j].key != advertised[i].key)
                continue;
            found = true;
            cr_assert_eq(o->a[j].min, advertised[i].min, "api %d's min", advertised[i].key);
            cr_assert_eq(o->a[j].max, advertised[i].max, "api %d's max", advertised[i].key);
        }
        cr_assert(found, "api %d is not advertised", advertised[i].key);
    }
}

Test(kafka, api_versions_answers_every_version_in_its_layout)
{
    struct cli *c = cli_open();
    for (int16_t v = 0; v <= 3; v++) {
        struct rq q;
        rq_api_versions(&q, v);
        struct kr r = call(c, &q);
        struct av_resp o;
        dec_api_versions(&r, v, &o);
        cr_assert_eq(o.err, E_NONE, "v%d", v);
        check_advertised(&o);
        if (v >= 1)
            cr_assert_eq(o.throttle, 0);
    }
}

Test(kafka, api_versions_above_3_answer_error_35_in_the_v0_layout_with_the_ranges)
{
    struct cli *c = cli_open();
    const int16_t vs[] = {4, 5, 9, 127, INT16_MAX};
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
        struct rq q;
        rq_api_versions(&q, vs[i]); /* header v2 and a v3 body, as a newer client sends */
        struct kr r = call(c, &q);
        struct av_resp o;
        dec_api_versions(&r, 0, &o); /* header v0, body v0: no throttle, no tags */
        cr_assert_eq(o.err, E_UNSUPPORTED_VERSION, "v%d", vs[i]);
        check_advertised(&o);
    }
    /* and the connection goes on: the client steps down */
    struct rq q;
    rq_api_versions(&q, 3);
    struct kr r = call(c, &q);
    struct av_resp o;
    dec_api_versions(&r, 3, &o);
    cr_assert_eq(o.err, E_NONE);
}

/* KIP-511: the v3 client software name and version must parse; when they
 * do not, INVALID_REQUEST in the v3 layout (librdkafka then drops to v0). */
Test(kafka, api_versions_v3_with_a_body_that_does_not_parse_answers_invalid_request)
{
    struct cli *c = cli_open();
    for (int body = 0; body < 3; body++) {
        struct rq q;
        rq_begin(&q, API_VERSIONS, 3);
        if (body == 1)
            kw_uvarint(&q.w, 200); /* a name longer than the frame */
        if (body == 2) {
            kw_compact_string(&q.w, "x", 1);
            kw_compact_string(&q.w, "1", 1); /* and no tags */
        }
        rq_end(&q);
        struct kr r = call(c, &q);
        struct av_resp o;
        dec_api_versions(&r, 3, &o);
        cr_assert_eq(o.err, E_INVALID_REQUEST, "body %d: error %d", body, o.err);
    }
}

/* ================================================================ Metadata */

static void check_brokers(const struct md_resp *o, int16_t v)
{
    cr_assert_eq(o->nbrokers, 1, "v%d: %d brokers", v, o->nbrokers);
    cr_assert_eq(o->br[0].id, node());
    cr_assert_str_eq(o->br[0].host, "127.0.0.1");
    cr_assert_eq(o->br[0].port, port);
    if (v >= 1)
        cr_assert_eq(o->br[0].rack_len, -1, "rack must be null");
    if (v >= 2) {
        char id[64];
        snprintf(id, sizeof(id), "mk-%016" PRIx64, broker_cluster_id(b));
        cr_assert_str_eq(o->cluster, id);
    }
    if (v >= 1)
        cr_assert_eq(o->controller, node(), "the controller must be a listed broker");
    if (v >= 3)
        cr_assert_eq(o->throttle, 0);
}

static void check_topic_t(const struct md_topic *t, int16_t v, int32_t nparts)
{
    cr_assert_eq(t->err, E_NONE, "topic %s: error %d", t->name, t->err);
    if (v >= 1)
        cr_assert_eq(t->internal, 0);
    cr_assert_eq(t->nparts, nparts, "topic %s: %d partitions", t->name, t->nparts);
    for (int32_t j = 0; j < t->nparts; j++) {
        cr_assert_eq(t->p[j].err, E_NONE);
        cr_assert_eq(t->p[j].idx, j);
        cr_assert_eq(t->p[j].leader, node());
        cr_assert_eq(t->p[j].nrep, 1);
        cr_assert_eq(t->p[j].rep[0], node());
        cr_assert_eq(t->p[j].nisr, 1);
        cr_assert_eq(t->p[j].isr[0], node());
        cr_assert_eq(t->p[j].noff, v >= 5 ? 0 : -1);
    }
}

Test(kafka, metadata_answers_every_version_in_its_layout)
{
    struct cli *c = cli_open();
    for (int16_t v = 0; v <= 6; v++) {
        struct rq q;
        /* all topics: an empty array in v0, null from v1 */
        if (v == 0)
            rq_metadata(&q, v, NULL, 0, false);
        else
            rq_metadata(&q, v, NULL, -1, false);
        struct kr r = call(c, &q);
        struct md_resp o;
        dec_metadata(&r, v, &o);
        check_brokers(&o, v);
        cr_assert_eq(o.ntopics, 1, "v%d: %d topics", v, o.ntopics);
        cr_assert_str_eq(o.t[0].name, "t");
        check_topic_t(&o.t[0], v, 2);
    }
}

Test(kafka, metadata_empty_topic_list_is_all_topics_in_v0_and_none_from_v1)
{
    struct cli *c = cli_open();
    for (int16_t v = 0; v <= 6; v++) {
        struct rq q;
        rq_metadata(&q, v, NULL, 0, true);
        struct kr r = call(c, &q);
        struct md_resp o;
        dec_metadata(&r, v, &o);
        check_brokers(&o, v);
        cr_assert_eq(o.ntopics, v == 0 ? 1 : 0, "v%d: %d topics", v, o.ntopics);
    }
}

Test(kafka, metadata_names_unknown_and_invalid_topics_with_their_errors)
{
    struct cli *c = cli_open();
    const char *names[] = {"nope", "bad/name", "t"};
    for (int16_t v = 4; v <= 6; v++) { /* v0-3 auto-create: the next test */
        struct rq q;
        rq_metadata(&q, v, names, 3, false);
        struct kr r = call(c, &q);
        struct md_resp o;
        dec_metadata(&r, v, &o);
        check_brokers(&o, v);
        cr_assert_eq(o.ntopics, 3);
        cr_assert_str_eq(o.t[0].name, "nope");
        cr_assert_eq(o.t[0].err, E_UNKNOWN_TOPIC_OR_PARTITION, "v%d", v);
        cr_assert_eq(o.t[0].nparts, 0);
        cr_assert_str_eq(o.t[1].name, "bad/name");
        cr_assert_eq(o.t[1].err, E_INVALID_TOPIC, "v%d", v);
        cr_assert_str_eq(o.t[2].name, "t");
        check_topic_t(&o.t[2], v, 2);
    }
    cr_assert_null(topic_find(b, "nope"), "a topic made without allow_auto_topic_creation");
}

/* Versions without AllowAutoTopicCreation take its default, true (as
 * Kafka does): a kafka-python producer (Metadata v1) makes its topic. */
Test(kafka, metadata_v0_to_v3_create_missing_topics)
{
    struct cli *c = cli_open();
    for (int16_t v = 0; v <= 3; v++) {
        char name[16];
        snprintf(name, sizeof(name), "old%d", v);
        const char *names[] = {name, "bad/name"};
        struct rq q;
        rq_metadata(&q, v, names, 2, false);
        struct kr r = call(c, &q);
        struct md_resp o;
        dec_metadata(&r, v, &o);
        cr_assert_eq(o.ntopics, 2);
        cr_assert_str_eq(o.t[0].name, name);
        cr_assert_eq(o.t[0].err, 0, "v%d", v);
        cr_assert_not_null(topic_find(b, name), "v%d made %s", v, name);
        cr_assert_eq(o.t[1].err, E_INVALID_TOPIC, "v%d", v);
    }
}

Test(kafka, metadata_from_v4_creates_missing_topics_when_allowed)
{
    struct cli *c = cli_open();
    for (int16_t v = 4; v <= 6; v++) {
        char name[16];
        snprintf(name, sizeof(name), "auto%d", v);
        const char *names[] = {name};
        struct rq q;
        rq_metadata(&q, v, names, 1, true);
        struct kr r = call(c, &q);
        struct md_resp o;
        dec_metadata(&r, v, &o);
        cr_assert_eq(o.ntopics, 1);
        cr_assert_str_eq(o.t[0].name, name);
        check_topic_t(&o.t[0], v, 2);
        cr_assert_not_null(topic_find(b, name));
    }
}

/* ================================================================ Produce */

Test(kafka, produce_v3_to_v7_answer_the_base_offset_in_their_layout)
{
    struct cli *c = cli_open();
    char bufs[2][2][16];
    struct trec recs[2];
    simple_recs(recs, 2, bufs, now_ms());
    struct kw batch;
    kw_init(&batch);
    put_batch(&batch, recs, 2);
    keep(batch.p);
    for (int16_t v = 3; v <= 7; v++) {
        struct ptopic pt[2] = {
            {"t", 2, {{0, batch.p, (int32_t)batch.len}, {7, batch.p, (int32_t)batch.len}}},
            {"nope", 1, {{0, batch.p, (int32_t)batch.len}}},
        };
        struct rq q;
        rq_produce(&q, v, -1, pt, 2);
        struct kr r = call(c, &q);
        struct pr_resp o;
        dec_produce(&r, v, &o);
        cr_assert_eq(o.ntopics, 2);
        cr_assert_str_eq(o.t[0].name, "t");
        cr_assert_eq(o.t[0].nparts, 2);
        struct pr_part *p = &o.t[0].p[0];
        cr_assert_eq(p->idx, 0);
        cr_assert_eq(p->err, E_NONE, "v%d: error %d", v, p->err);
        cr_assert_eq(p->base, 2 * (v - 3), "v%d: base offset %" PRId64, v, p->base);
        cr_assert_eq(p->log_append_time, -1, "CreateTime: log_append_time -1");
        if (v >= 5)
            cr_assert_eq(p->log_start, 0);
        p = &o.t[0].p[1];
        cr_assert_eq(p->idx, 7);
        cr_assert_eq(p->err, E_UNKNOWN_TOPIC_OR_PARTITION);
        cr_assert_eq(p->base, -1);
        cr_assert_str_eq(o.t[1].name, "nope");
        cr_assert_eq(o.t[1].nparts, 1);
        cr_assert_eq(o.t[1].p[0].err, E_UNKNOWN_TOPIC_OR_PARTITION);
        cr_assert_eq(o.t[1].p[0].base, -1);
        cr_assert_eq(o.throttle, 0);
    }
    struct part_info pi;
    part_info(topic_part(topic_find(b, "t"), 0), &pi);
    cr_assert_eq(pi.next_off, 10);
}

/* Kafka answers a partition that failed with LogStartOffset -1
 * (ProduceResponse.PartitionResponse(Errors), INVALID_OFFSET). */
Test(kafka, produce_errors_answer_log_start_offset_minus_1)
{
    struct cli *c = cli_open();
    char bufs[1][2][16];
    struct trec recs[1];
    simple_recs(recs, 1, bufs, now_ms());
    struct kw batch;
    kw_init(&batch);
    put_batch(&batch, recs, 1);
    keep(batch.p);
    for (int16_t v = 5; v <= 7; v++) {
        struct ptopic pt[2] = {{"t", 1, {{7, batch.p, (int32_t)batch.len}}},
                               {"nope", 1, {{0, batch.p, (int32_t)batch.len}}}};
        struct rq q;
        rq_produce(&q, v, 1, pt, 2);
        struct kr r = call(c, &q);
        struct pr_resp o;
        dec_produce(&r, v, &o);
        cr_assert_eq(o.t[0].p[0].err, E_UNKNOWN_TOPIC_OR_PARTITION);
        cr_assert_eq(o.t[0].p[0].log_start, -1,
                     "v%d: log_start_offset %" PRId64 " for an unknown partition", v,
                     o.t[0].p[0].log_start);
        cr_assert_eq(o.t[1].p[0].err, E_UNKNOWN_TOPIC_OR_PARTITION);
        cr_assert_eq(o.t[1].p[0].log_start, -1,
                     "v%d: log_start_offset %" PRId64 " for an unknown topic", v,
                     o.t[1].p[0].log_start);
    }
}

Test(kafka, produce_with_acks_other_than_0_1_and_minus_1_is_refused)
{
    struct cli *c = cli_open();
    char bufs[1][2][16];
    struct trec recs[1];
    simple_recs(recs, 1, bufs, now_ms());
    struct kw batch;
    kw_init(&batch);
    put_batch(&batch, recs, 1);
    keep(batch.p);
    const int16_t acks[] = {2, -2, 100};
    for (size_t i = 0; i < sizeof(acks) / sizeof(acks[0]); i++) {
        struct ptopic pt = {"t", 1, {{0, batch.p, (int32_t)batch.len}}};
        struct rq q;
        rq_produce(&q, 7, acks[i], &pt, 1);
        struct kr r = call(c, &q);
        struct pr_resp o;
        dec_produce(&r, 7, &o);
        cr_assert_eq(o.t[0].p[0].err, 21, "acks %d: error %d (INVALID_REQUIRED_ACKS is 21)",
                     acks[i], o.t[0].p[0].err);
        cr_assert_eq(o.t[0].p[0].base, -1);
    }
    struct part_info pi;
    part_info(topic_part(topic_find(b, "t"), 0), &pi);
    cr_assert_eq(pi.next_off, 0);
}

Test(kafka, produce_v0_to_v2_answer_unsupported_version_per_partition)
{
    struct cli *c = cli_open();
    /* A v1 message set would follow here; its bytes are never looked at. */
    static const uint8_t msgset[26] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 14, 1, 2, 3, 4, 1, 0};
    for (int16_t v = 0; v <= 2; v++) {
        struct ptopic pt = {"t", 2, {{0, msgset, sizeof(msgset)}, {1, msgset, sizeof(msgset)}}};
        struct rq q;
        rq_produce(&q, v, 1, &pt, 1);
        struct kr r = call(c, &q);
        struct pr_resp o;
        dec_produce(&r, v, &o);
        cr_assert_eq(o.ntopics, 1);
        cr_assert_str_eq(o.t[0].name, "t");
        cr_assert_eq(o.t[0].nparts, 2);
        for (int j = 0; j < 2; j++) {
            cr_assert_eq(o.t[0].p[j].idx, j);
            cr_assert_eq(o.t[0].p[j].err, E_UNSUPPORTED_VERSION, "v%d: error %d", v,
                         o.t[0].p[j].err);
            cr_assert_eq(o.t[0].p[j].base, -1);
            if (v >= 2)
                cr_assert_eq(o.t[0].p[j].log_append_time, -1);
        }
        if (v >= 1)
            cr_assert_eq(o.throttle, 0);
    }
    struct part_info pi;
    part_info(topic_part(topic_find(b, "t"), 0), &pi);
    cr_assert_eq(pi.next_off, 0, "a Produce v0-2 appended records");
}

Test(kafka, produce_of_a_corrupt_or_old_format_batch_is_refused_and_appends_nothing)
{
    struct cli *c = cli_open();
    char bufs[2][2][16];
    struct trec recs[2];
    simple_recs(recs, 2, bufs, now_ms());
    struct kw crc, magic, two;
    kw_init(&crc);
    kw_init(&magic);
    kw_init(&two);
    put_batch(&crc, recs, 2);
    crc.p[crc.len - 1] ^= 1; /* a value byte: the CRC no longer matches */
    put_batch(&magic, recs, 2);
    magic.p[16] = 1; /* magic 1: a v1 message set */
    put_batch(&two, recs, 2);
    put_batch(&two, recs, 2); /* two batches for one partition */
    keep(crc.p);
    keep(magic.p);
    keep(two.p);
    struct ptopic pt = {"t",
                        3,
                        {{0, crc.p, (int32_t)crc.len},
                         {1, magic.p, (int32_t)magic.len},
                         {0, two.p, (int32_t)two.len}}};
    struct rq q;
    rq_produce(&q, 7, -1, &pt, 1);
    struct kr r = call(c, &q);
    struct pr_resp o;
    dec_produce(&r, 7, &o);
    cr_assert_eq(o.t[0].nparts, 3);
    cr_assert_eq(o.t[0].p[0].err, E_CORRUPT_MESSAGE, "a bad CRC: error %d", o.t[0].p[0].err);
    cr_assert_eq(o.t[0].p[1].err, E_INVALID_RECORD, "magic 1: error %d", o.t[0].p[1].err);
    cr_assert_eq(o.t[0].p[2].err, E_INVALID_RECORD, "two batches: error %d", o.t[0].p[2].err);
    for (int j = 0; j < 3; j++)
        cr_assert_eq(o.t[0].p[j].base, -1);
    for (uint32_t i = 0; i < 2; i++) {
        struct part_info pi;
        part_info(topic_part(topic_find(b, "t"), i), &pi);
        cr_assert_eq(pi.next_off, 0, "partition %u got records", i);
    }
}

Test(kafka, produce_with_acks_0_gets_no_answer)
{
    struct cli *c = cli_open();
    char bufs[2][2][16];
    struct trec recs[2];
    simple_recs(recs, 2, bufs, now_ms());
    struct kw batch;
    kw_init(&batch);
    put_batch(&batch, recs, 2);
    keep(batch.p);
    for (int16_t v = 3; v <= 7; v++) {
        struct ptopic pt = {"t", 1, {{0, batch.p, (int32_t)batch.len}}};
        struct rq q;
        rq_produce(&q, v, 0, &pt, 1);
        rq_send(c, &q);
        /* The next request's answer is the next frame. */
        rq_api_versions(&q, 0);
        struct kr r = call(c, &q);
        struct av_resp o;
        dec_api_versions(&r, 0, &o);
        cr_assert_eq(o.err, E_NONE);
    }
    /* and the records are there */
    struct ltopic lt = {"t", 1, {{0, -1}}};
    struct rq q;
    rq_list_offsets(&q, 1, &lt, 1);
    struct kr r = call(c, &q);
    struct lo_resp o;
    dec_list_offsets(&r, 1, &o);
    cr_assert_eq(o.t[0].p[0].off, 10);
    /* nothing else is owed on the connection */
    uint8_t *f = NULL;
    size_t n;
    cr_assert_eq(cli_recv(c, 100, &f, &n), RX_TIMEOUT, "an answer to a Produce with acks 0");
    free(f);
}

/* ================================================================ Fetch */

/* What the Fetch tests produce: keys and no keys, an empty and a null
 * value, bytes that are not text ('\n' and NUL inside), headers with and
 * without values. */
static const char bin[] = {'a', '\n', 0, 'b', '\n'};
static struct trec mixed[4];

static void make_mixed(int64_t ts0)
{
    mixed[0] = (struct trec){.key = "key0",
                             .klen = 4,
                             .val = "value zero",
                             .vlen = 10,
                             .nh = 1,
                             .hk = {"h"},
                             .hv = {"x"},
                             .hvlen = {1},
                             .ts = ts0};
    mixed[1] = (struct trec){.key = NULL,
                             .klen = -1,
                             .val = bin,
                             .vlen = sizeof(bin),
                             .nh = 2,
                             .hk = {"a", "b"},
                             .hv = {"1", NULL},
                             .hvlen = {1, -1},
                             .ts = ts0 + 5};
    mixed[2] = (struct trec){.key = "", .klen = 0, .val = "", .vlen = 0, .ts = ts0 + 7};
    mixed[3] = (struct trec){.key = "gone", .klen = 4, .val = NULL, .vlen = -1, .ts = ts0 + 9};
}

static void fetch(struct cli *c, int16_t v, int32_t max_wait, const struct ftopic *ts, int nt,
                  struct fe_resp *o)
{
    struct rq q;
    rq_fetch(&q, v, max_wait, 1, ts, nt);
    struct kr r = call(c, &q);
    dec_fetch(&r, v, o);
}

Test(kafka, produced_records_come_back_through_fetch_as_they_were_produced)
{
    struct cli *c = cli_open();
    make_mixed(now_ms() - 1000);
    cr_assert_eq(produce(c, "t", 0, mixed, 4), 0);
    cr_assert_eq(produce(c, "t", 0, mixed, 4), 4);
    struct ftopic ft = {"t", 1, {{0, 0, 1 << 20}}};
    struct fe_resp o;
    fetch(c, 11, 100, &ft, 1, &o);
    struct trec want[8];
    memcpy(want, mixed, sizeof(mixed));
    memcpy(want + 4, mixed, sizeof(mixed));
    cr_assert_eq(o.t[0].p[0].err, E_NONE);
    cr_assert_eq(o.t[0].p[0].hwm, 8);
    check_records(o.t[0].p[0].recs, o.t[0].p[0].recs_len, 0, want, 8);
    /* from the middle: the answer starts at the offset asked for */
    ft.p[0].off = 5;
    fetch(c, 11, 100, &ft, 1, &o);
    check_records(o.t[0].p[0].recs, o.t[0].p[0].recs_len, 5, want + 5, 3);
}

Test(kafka, fetch_answers_every_version_from_4_to_11_in_its_layout)
{
    struct cli *c = cli_open();
    make_mixed(now_ms() - 1000);
    cr_assert_eq(produce(c, "t", 0, mixed, 4), 0);
    for (int16_t v = 4; v <= 11; v++) {
        struct ftopic ft = {"t", 2, {{0, 0, 1 << 20}, {1, 0, 1 << 20}}};
        struct fe_resp o;
        fetch(c, v, 100, &ft, 1, &o);
        cr_assert_eq(o.throttle, 0);
        if (v >= 7) {
            cr_assert_eq(o.err, E_NONE);
            cr_assert_eq(o.session, 0, "no fetch sessions: session_id 0");
        }
        cr_assert_eq(o.ntopics, 1);
        cr_assert_str_eq(o.t[0].name, "t");
        cr_assert_eq(o.t[0].nparts, 2);
        struct fe_part *p = &o.t[0].p[0];
        cr_assert_eq(p->idx, 0);
        cr_assert_eq(p->err, E_NONE, "v%d: error %d", v, p->err);
        cr_assert_eq(p->hwm, 4);
        cr_assert_eq(p->lso, 4, "last_stable_offset = the high watermark");
        if (v >= 5)
            cr_assert_eq(p->log_start, 0);
        cr_assert_leq(p->naborted, 0, "aborted transactions: none");
        if (v >= 11)
            cr_assert_eq(p->preferred, -1, "preferred_read_replica must be -1");
        check_records(p->recs, p->recs_len, 0, mixed, 4);
        p = &o.t[0].p[1];
        cr_assert_eq(p->idx, 1);
        cr_assert_eq(p->err, E_NONE);
        cr_assert_eq(p->hwm, 0);
        cr_assert_eq(p->lso, 0);
        if (v >= 5)
            cr_assert_eq(p->log_start, 0);
        if (v >= 11)
            cr_assert_eq(p->preferred, -1);
        cr_assert_leq(p->recs_len, 0, "records for an empty partition");
    }
}

Test(kafka, fetch_of_unknown_topics_and_partitions_answers_error_3_at_once)
{
    struct cli *c = cli_open();
    for (int16_t v = 4; v <= 11; v++) {
        struct ftopic ft[2] = {{"nope", 1, {{0, 0, 1 << 20}}}, {"t", 1, {{9, 0, 1 << 20}}}};
        uint64_t t0 = uv_hrtime();
        struct fe_resp o;
        fetch(c, v, 3000, ft, 2, &o);
        uint64_t ms = (uv_hrtime() - t0) / 1000000;
        cr_assert_lt(ms, 1000, "v%d: an answer with errors only took %" PRIu64 " ms", v, ms);
        cr_assert_eq(o.ntopics, 2);
        cr_assert_str_eq(o.t[0].name, "nope");
        cr_assert_str_eq(o.t[1].name, "t");
        for (int i = 0; i < 2; i++) {
            struct fe_part *p = &o.t[i].p[0];
            cr_assert_eq(p->idx, i == 0 ? 0 : 9);
            cr_assert_eq(p->err, E_UNKNOWN_TOPIC_OR_PARTITION);
            cr_assert_eq(p->hwm, -1);
            cr_assert_eq(p->lso, -1);
            if (v >= 5)
                cr_assert_eq(p->log_start, -1);
            cr_assert_leq(p->recs_len, 0);
        }
    }
}

Test(kafka, fetch_above_the_end_or_below_the_start_is_offset_out_of_range_at_once)
{
    struct cli *c = cli_open();
    char bufs[3][2][16];
    struct trec recs[3];
    simple_recs(recs, 3, bufs, now_ms());
    cr_assert_eq(produce(c, "t", 0, recs, 3), 0);
    const int64_t offs[] = {4, 1000, -1};
    for (int16_t v = 4; v <= 11; v++) {
        for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
            struct ftopic ft = {"t", 1, {{0, offs[i], 1 << 20}}};
            uint64_t t0 = uv_hrtime();
            struct fe_resp o;
            fetch(c, v, 3000, &ft, 1, &o);
            uint64_t ms = (uv_hrtime() - t0) / 1000000;
            cr_assert_lt(ms, 1000, "OFFSET_OUT_OF_RANGE took %" PRIu64 " ms", ms);
            struct fe_part *p = &o.t[0].p[0];
            cr_assert_eq(p->err, E_OFFSET_OUT_OF_RANGE, "v%d at %" PRId64 ": error %d", v, offs[i],
                         p->err);
            cr_assert_eq(p->hwm, 3);
            cr_assert_leq(p->recs_len, 0);
        }
    }
}

Test(kafka, fetch_at_the_high_watermark_waits_max_wait_and_answers_empty)
{
    struct cli *c = cli_open();
    struct ftopic ft = {"t", 1, {{1, 0, 1 << 20}}};
    uint64_t t0 = uv_hrtime();
    struct fe_resp o;
    fetch(c, 11, 200, &ft, 1, &o);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    cr_assert(ms >= 180 && ms < 2000, "max_wait 200 ms: answered after %" PRIu64 " ms", ms);
    cr_assert_eq(o.t[0].p[0].err, E_NONE);
    cr_assert_eq(o.t[0].p[0].hwm, 0);
    cr_assert_leq(o.t[0].p[0].recs_len, 0);
}

static int appended;
static void on_appended(void *arg, int status)
{
    (void)arg;
    cr_assert_eq(status, 0);
    appended++;
}

Test(kafka, a_waiting_fetch_is_answered_as_soon_as_a_record_is_appended)
{
    struct cli *c = cli_open();
    struct ftopic ft = {"t", 1, {{1, 0, 1 << 20}}};
    struct rq q;
    rq_fetch(&q, 11, 3000, 1, &ft, 1);
    int32_t corr = q.corr;
    uint64_t t0 = uv_hrtime();
    rq_send(c, &q);
    uint8_t *f = NULL;
    size_t n;
    cr_assert_eq(cli_recv(c, 100, &f, &n), RX_TIMEOUT,
                 "a Fetch at the end answered before max_wait");
    free(f);
    /* a record written as the mount writes it: no key, no headers */
    struct iovec iov = {"hello\n", 6};
    uint32_t len = 6;
    cr_assert_eq(
        part_append(topic_part(topic_find(b, "t"), 1), &iov, 1, &len, 1, on_appended, NULL), 0);
    struct kr r = answer(c, corr);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    cr_assert_lt(ms, 1500, "answered %" PRIu64 " ms after the Fetch (max_wait 3000)", ms);
    cr_assert_eq(appended, 1);
    struct fe_resp o;
    dec_fetch(&r, 11, &o);
    cr_assert_eq(o.t[0].p[0].err, E_NONE);
    cr_assert_eq(o.t[0].p[0].hwm, 1);
    struct trec want = {.key = NULL, .klen = -1, .val = "hello", .vlen = 5, .ts = -1};
    check_records(o.t[0].p[0].recs, o.t[0].p[0].recs_len, 0, &want, 1);
}

Test(kafka, a_waiting_fetch_is_answered_as_soon_as_another_connection_produces)
{
    struct cli *c = cli_open(), *d = cli_open();
    struct ftopic ft = {"t", 1, {{0, 0, 1 << 20}}};
    struct rq q;
    rq_fetch(&q, 7, 3000, 1, &ft, 1);
    int32_t corr = q.corr;
    uint64_t t0 = uv_hrtime();
    rq_send(c, &q);
    uint8_t *f = NULL;
    size_t n;
    cr_assert_eq(cli_recv(c, 100, &f, &n), RX_TIMEOUT,
                 "a Fetch at the end answered before max_wait");
    free(f);
    make_mixed(now_ms());
    cr_assert_eq(produce(d, "t", 0, mixed, 2), 0);
    struct kr r = answer(c, corr);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    cr_assert_lt(ms, 1500, "answered %" PRIu64 " ms after the Fetch (max_wait 3000)", ms);
    struct fe_resp o;
    dec_fetch(&r, 7, &o);
    cr_assert_eq(o.t[0].p[0].hwm, 2);
    check_records(o.t[0].p[0].recs, o.t[0].p[0].recs_len, 0, mixed, 2);
}

Test(kafka, fetch_returns_at_least_one_whole_record_whatever_partition_max_bytes)
{
    struct cli *c = cli_open();
    char bufs[3][2][16];
    struct trec recs[3];
    simple_recs(recs, 3, bufs, now_ms());
    cr_assert_eq(produce(c, "t", 0, recs, 3), 0);
    struct ftopic ft = {"t", 1, {{0, 1, 1}}};
    struct fe_resp o;
    fetch(c, 11, 100, &ft, 1, &o);
    cr_assert_eq(o.t[0].p[0].err, E_NONE);
    check_records(o.t[0].p[0].recs, o.t[0].p[0].recs_len, 1, recs + 1, 1);
}

static int count_records(const uint8_t *p, int32_t len)
{
    int n = 0;
    for (size_t at = 0; at < (size_t)len;) {
        struct kbatch bt;
        size_t used;
        cr_assert_eq(kbatch_parse(p + at, (size_t)len - at, &bt, &used), 0);
        n += bt.count;
        at += used;
    }
    return n;
}

/* Fetch reads the log a few hundred entries at a time: answers that span
 * several such reads, start inside one or stop at a size limit inside one
 * hold every record once, in order. */
Test(kafka, fetch_answers_spanning_hundreds_of_entries_hold_each_record_once_in_order)
{
    enum { N = 700 };
    struct cli *c = cli_open();
    static char bufs[N][2][16];
    static struct trec recs[N];
    simple_recs(recs, N, bufs, now_ms() - 1000000);
    cr_assert_eq(produce(c, "t", 0, recs, N), 0);
    struct ftopic ft = {"t", 1, {{0, 0, 1 << 20}}};
    struct fe_resp o;
    fetch(c, 11, 100, &ft, 1, &o);
    cr_assert_eq(o.t[0].p[0].hwm, N);
    check_records(o.t[0].p[0].recs, o.t[0].p[0].recs_len, 0, recs, N);
    ft.p[0].off = 300;
    fetch(c, 11, 100, &ft, 1, &o);
    check_records(o.t[0].p[0].recs, o.t[0].p[0].recs_len, 300, recs + 300, N - 300);
    ft.p[0].off = 250;
    ft.p[0].max = 4000; /* some records: fewer than the ~450 left */
    fetch(c, 11, 100, &ft, 1, &o);
    int k = count_records(o.t[0].p[0].recs, o.t[0].p[0].recs_len);
    cr_assert(k >= 1 && k < N - 250, "%d records within 4000 bytes", k);
    check_records(o.t[0].p[0].recs, o.t[0].p[0].recs_len, 250, recs + 250, k);
}

Test(kafka, fetch_mixes_records_written_through_the_mount_and_by_producers)
{
    struct cli *c = cli_open();
    make_mixed(now_ms() - 1000);
    cr_assert_eq(produce(c, "t", 0, mixed, 2), 0);
    struct iovec iov = {"line a\nline b\n", 14};
    uint32_t lens[2] = {7, 7};
    cr_assert_eq(
        part_append(topic_part(topic_find(b, "t"), 0), &iov, 1, lens, 2, on_appended, NULL), 0);
    TH_RUN_UNTIL(&loop, 5, appended == 1);
    cr_assert_eq(produce(c, "t", 0, mixed + 2, 2), 4);
    struct trec want[6] = {mixed[0],
                           mixed[1],
                           {.key = NULL, .klen = -1, .val = "line a", .vlen = 6, .ts = -1},
                           {.key = NULL, .klen = -1, .val = "line b", .vlen = 6, .ts = -1},
                           mixed[2],
                           mixed[3]};
    for (int64_t from = 0; from < 6; from++) {
        struct ftopic ft = {"t", 1, {{0, from, 1 << 20}}};
        struct fe_resp o;
        fetch(c, 11, 100, &ft, 1, &o);
        cr_assert_eq(o.t[0].p[0].hwm, 6);
        check_records(o.t[0].p[0].recs, o.t[0].p[0].recs_len, from, want + from, (int)(6 - from));
    }
}

/* A key and headers of more than 64 KiB (the side data read at once) come
 * back whole, with the records around them. */
Test(kafka, fetch_returns_records_whose_side_data_exceeds_64_kib)
{
    struct cli *c = cli_open();
    enum { BIG = 100000 };
    char *key = keep(malloc(BIG)), *hval = keep(malloc(BIG));
    for (int i = 0; i < BIG; i++) {
        key[i] = (char)('a' + i % 26);
        hval[i] = (char)('A' + i % 26);
    }
    int64_t ts = now_ms();
    struct trec recs[3] = {
        {.key = "small", .klen = 5, .val = "v0", .vlen = 2, .ts = ts},
        {.key = key,
         .klen = BIG,
         .val = "v1",
         .vlen = 2,
         .nh = 1,
         .hk = {"big"},
         .hv = {hval},
         .hvlen = {BIG},
         .ts = ts + 1},
        {.key = "after", .klen = 5, .val = "v2", .vlen = 2, .ts = ts + 2},
    };
    for (int i = 0; i < 3; i++)
        cr_assert_eq(produce(c, "t", 0, recs + i, 1), i);
    for (int64_t from = 0; from < 3; from++) {
        struct ftopic ft = {"t", 1, {{0, from, 1 << 20}}};
        struct fe_resp o;
        fetch(c, 11, 100, &ft, 1, &o);
        cr_assert_eq(o.t[0].p[0].err, E_NONE);
        check_records(o.t[0].p[0].recs, o.t[0].p[0].recs_len, from, recs + from, (int)(3 - from));
    }
}

/* A Fetch whose client went away while it waited ends at its max_wait:
 * its timer and partition watches are let go, nothing is owed, and the
 * port serves on. */
Test(kafka, a_fetch_outliving_its_connection_ends_at_its_max_wait)
{
    struct kafka_test_view v0, v;
    kafka_view_for_test(kp, &v0);
    struct cli *c = cli_open();
    struct ftopic ft = {"t", 2, {{0, 0, 1 << 20}, {1, 0, 1 << 20}}};
    struct rq q;
    rq_fetch(&q, 11, 300, 1, &ft, 1);
    rq_send(c, &q);
    uint8_t *f = NULL;
    size_t n;
    cr_assert_eq(cli_recv(c, 100, &f, &n), RX_TIMEOUT);
    free(f);
    cli_close(c);
    assert_serving();
    TH_RUN_UNTIL(&loop, 5, (kafka_view_for_test(kp, &v), v.handles == v0.handles && v.conns == 0));
    cr_assert_eq(v.owed, 0);
    assert_serving();
}

/* ================================================================ order */

Test(kafka, answers_come_back_in_request_order_behind_a_waiting_fetch)
{
    struct cli *c = cli_open();
    struct ftopic ft = {"t", 1, {{0, 0, 1 << 20}}};
    struct rq q[3];
    rq_fetch(&q[0], 11, 300, 1, &ft, 1);
    rq_metadata(&q[1], 1, NULL, 0, false);
    rq_api_versions(&q[2], 2);
    /* one write: the three are pipelined */
    struct kw all;
    kw_init(&all);
    int32_t corr[3];
    for (int i = 0; i < 3; i++) {
        kw_raw(&all, q[i].w.p, q[i].w.len);
        corr[i] = q[i].corr;
    }
    uint64_t t0 = uv_hrtime();
    keep(all.p);
    cr_assert(cli_send(c, all.p, all.len));
    struct kr r = answer(c, corr[0]);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    cr_assert_geq(ms, 250, "the Fetch answered after %" PRIu64 " ms (max_wait 300)", ms);
    struct fe_resp fo;
    dec_fetch(&r, 11, &fo);
    cr_assert_leq(fo.t[0].p[0].recs_len, 0);
    r = answer(c, corr[1]);
    struct md_resp mo;
    dec_metadata(&r, 1, &mo);
    check_brokers(&mo, 1);
    r = answer(c, corr[2]);
    struct av_resp ao;
    dec_api_versions(&r, 2, &ao);
    cr_assert_eq(ao.err, E_NONE);
}

Test(kafka, many_pipelined_requests_of_every_kind_are_answered_in_order)
{
    struct cli *c = cli_open();
    struct kw all;
    kw_init(&all);
    enum { N = 60 };
    int32_t corr[N];
    int16_t api[N], ver[N];
    for (int i = 0; i < N; i++) {
        struct rq q;
        switch (i % 5) {
        case 0:
            ver[i] = (int16_t)(i / 5 % 4);
            rq_api_versions(&q, ver[i]);
            break;
        case 1:
            ver[i] = (int16_t)(i / 5 % 7);
            rq_metadata(&q, ver[i], NULL, 0, false);
            break;
        case 2: {
            ver[i] = (int16_t)(i / 5 % 4);
            struct ltopic lt = {"t", 1, {{0, -1}}};
            rq_list_offsets(&q, ver[i], &lt, 1);
            break;
        }
        case 3: {
            ver[i] = (int16_t)(4 + i / 5 % 8);
            struct ftopic ft = {"t", 1, {{1, 0, 1 << 20}}};
            rq_fetch(&q, ver[i], 0, 0, &ft, 1);
            break;
        }
        default:
            ver[i] = (int16_t)(i / 5 % 2);
            rq_init_producer_id(&q, ver[i], NULL);
            break;
        }
        api[i] = (int16_t)(i % 5);
        corr[i] = q.corr;
        kw_raw(&all, q.w.p, q.w.len);
    }
    keep(all.p);
    cr_assert(cli_send(c, all.p, all.len));
    for (int i = 0; i < N; i++) {
        struct kr r = answer(c, corr[i]);
        switch (api[i]) {
        case 0: {
            struct av_resp o;
            cr_assert_eq(dec_api_versions(&r, ver[i], &o), 0);
            break;
        }
        case 1: {
            struct md_resp o;
            cr_assert_eq(dec_metadata(&r, ver[i], &o), 0);
            break;
        }
        case 2: {
            struct lo_resp o;
            cr_assert_eq(dec_list_offsets(&r, ver[i], &o), 0);
            break;
        }
        case 3: {
            struct fe_resp o;
            cr_assert_eq(dec_fetch(&r, ver[i], &o), 0);
            break;
        }
        default: {
            struct ip_resp o;
            cr_assert_eq(dec_init_producer_id(&r, ver[i], &o), 0);
            break;
        }
        }
    }
}

Test(kafka, a_request_sent_byte_by_byte_is_answered)
{
    struct cli *c = cli_open();
    struct rq q;
    rq_api_versions(&q, 3);
    int32_t corr = q.corr;
    for (size_t i = 0; i < q.w.len; i++) {
        cr_assert(cli_send(c, q.w.p + i, 1));
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(200);
    }
    struct kr r = answer(c, corr);
    struct av_resp o;
    dec_api_versions(&r, 3, &o);
    cr_assert_eq(o.err, E_NONE);
    check_advertised(&o);
}

/* ================================================================ ListOffsets */

Test(kafka, list_offsets_answers_every_version_in_its_layout)
{
    struct cli *c = cli_open();
    char bufs[4][2][16];
    struct trec recs[4];
    simple_recs(recs, 4, bufs, now_ms());
    cr_assert_eq(produce(c, "t", 0, recs, 4), 0);
    for (int16_t v = 0; v <= 3; v++) {
        struct ltopic lt[2] = {{"t", 3, {{0, -1}, {1, -2}, {9, -1}}}, {"nope", 1, {{0, -2}}}};
        struct rq q;
        rq_list_offsets(&q, v, lt, 2);
        struct kr r = call(c, &q);
        struct lo_resp o;
        dec_list_offsets(&r, v, &o);
        if (v >= 2)
            cr_assert_eq(o.throttle, 0);
        cr_assert_eq(o.ntopics, 2);
        cr_assert_str_eq(o.t[0].name, "t");
        cr_assert_eq(o.t[0].nparts, 3);
        const int32_t idx[3] = {0, 1, 9};
        const int64_t off[3] = {4, 0, -1};
        for (int j = 0; j < 3; j++) {
            struct lo_part *p = &o.t[0].p[j];
            cr_assert_eq(p->idx, idx[j]);
            cr_assert_eq(p->err, j == 2 ? E_UNKNOWN_TOPIC_OR_PARTITION : E_NONE,
                         "v%d partition %d: %d", v, idx[j], p->err);
            if (v == 0) {
                if (j < 2) {
                    cr_assert_eq(p->noffs, 1);
                    cr_assert_eq(p->offs[0], off[j]);
                } else {
                    cr_assert_eq(p->noffs, 0);
                }
            } else {
                cr_assert_eq(p->ts, -1);
                cr_assert_eq(p->off, off[j], "v%d partition %d: offset %" PRId64, v, idx[j],
                             p->off);
            }
        }
        cr_assert_str_eq(o.t[1].name, "nope");
        cr_assert_eq(o.t[1].nparts, 1);
        cr_assert_eq(o.t[1].p[0].err, E_UNKNOWN_TOPIC_OR_PARTITION);
        if (v >= 1)
            cr_assert_eq(o.t[1].p[0].off, -1);
    }
    /* -2 on a partition with records: its first offset */
    struct ltopic lt = {"t", 1, {{0, -2}}};
    struct rq q;
    rq_list_offsets(&q, 1, &lt, 1);
    struct kr r = call(c, &q);
    struct lo_resp o;
    dec_list_offsets(&r, 1, &o);
    cr_assert_eq(o.t[0].p[0].off, 0);
}

Test(kafka, list_offsets_by_timestamp_finds_the_first_record_at_or_after_it)
{
    struct cli *c = cli_open();
    int64_t ts0 = now_ms() - 60000;
    char bufs[4][2][16];
    struct trec recs[4];
    simple_recs(recs, 4, bufs, ts0); /* at ts0, +1 s, +2 s, +3 s */
    cr_assert_eq(produce(c, "t", 0, recs, 4), 0);
    for (int16_t v = 1; v <= 3; v++) {
        struct ltopic lt = {"t", 3, {{0, ts0 + 1500}, {0, ts0}, {0, ts0 + 10000000}}};
        struct rq q;
        rq_list_offsets(&q, v, &lt, 1);
        struct kr r = call(c, &q);
        struct lo_resp o;
        dec_list_offsets(&r, v, &o);
        struct lo_part *p = o.t[0].p;
        cr_assert_eq(p[0].err, E_NONE);
        cr_assert_eq(p[0].off, 2, "v%d: offset %" PRId64, v, p[0].off);
        cr_assert_eq(p[0].ts, ts0 + 2000);
        cr_assert_eq(p[1].off, 0);
        cr_assert_eq(p[1].ts, ts0);
        cr_assert_eq(p[2].err, E_NONE);
        cr_assert_eq(p[2].off, -1, "none that late: offset -1");
        cr_assert_eq(p[2].ts, -1);
    }
}

/* ================================================================ topics */

Test(kafka, create_topics_answers_every_version_in_its_layout)
{
    struct cli *c = cli_open();
    for (int16_t v = 0; v <= 4; v++) {
        char name[16], dflt[16], badp[16], badrf[16];
        snprintf(name, sizeof(name), "ct%d", v);
        snprintf(dflt, sizeof(dflt), "ct%d-d", v);
        snprintf(badp, sizeof(badp), "ct%d-p", v);
        snprintf(badrf, sizeof(badrf), "ct%d-rf", v);
        struct ctopic ts[5] = {
            {name, 3, 1}, {dflt, -1, -1}, {badp, 0, 1}, {badrf, 1, 2}, {"a/b", 1, 1}};
        struct rq q;
        rq_create_topics(&q, v, ts, 5, false);
        struct kr r = call(c, &q);
        struct ct_resp o;
        dec_create_topics(&r, v, &o);
        if (v >= 2)
            cr_assert_eq(o.throttle, 0);
        cr_assert_eq(o.n, 5);
        const int16_t want[5] = {E_NONE, E_NONE, E_INVALID_PARTITIONS, E_INVALID_REPLICATION_FACTOR,
                                 E_INVALID_TOPIC};
        for (int i = 0; i < 5; i++) {
            cr_assert_str_eq(o.t[i].name, ts[i].name);
            cr_assert_eq(o.t[i].err, want[i], "v%d %s: error %d", v, ts[i].name, o.t[i].err);
            if (v >= 1) {
                if (want[i] == E_NONE)
                    cr_assert_eq(o.t[i].msg_len, -1, "no error: a null message");
                else
                    cr_assert_gt(o.t[i].msg_len, 0, "an error comes with its message");
            }
        }
        cr_assert_eq(topic_partitions(topic_find(b, name)), 3);
        cr_assert_eq(topic_partitions(topic_find(b, dflt)), 2, "-1 partitions: num.partitions");
        cr_assert_null(topic_find(b, badp));
        cr_assert_null(topic_find(b, badrf));
        /* again: it exists */
        rq_create_topics(&q, v, ts, 1, false);
        r = call(c, &q);
        dec_create_topics(&r, v, &o);
        cr_assert_eq(o.t[0].err, E_TOPIC_ALREADY_EXISTS);
        /* a name given twice: INVALID_REQUEST for both, neither made */
        char dup[16];
        snprintf(dup, sizeof(dup), "ct%d-2x", v);
        struct ctopic twice[2] = {{dup, 1, 1}, {dup, 1, 1}};
        rq_create_topics(&q, v, twice, 2, false);
        r = call(c, &q);
        dec_create_topics(&r, v, &o);
        cr_assert_eq(o.n, 2);
        cr_assert_eq(o.t[0].err, E_INVALID_REQUEST);
        cr_assert_eq(o.t[1].err, E_INVALID_REQUEST);
        cr_assert_null(topic_find(b, dup));
        if (v >= 1) {
            /* validate only: answered as if made, not made */
            char vo[16];
            snprintf(vo, sizeof(vo), "ct%d-vo", v);
            struct ctopic t1 = {vo, 1, 1};
            rq_create_topics(&q, v, &t1, 1, true);
            r = call(c, &q);
            dec_create_topics(&r, v, &o);
            cr_assert_eq(o.t[0].err, E_NONE);
            cr_assert_null(topic_find(b, vo), "validate_only made the topic");
        }
    }
}

Test(kafka, delete_topics_answers_every_version_in_its_layout)
{
    struct cli *c = cli_open();
    for (int16_t v = 0; v <= 3; v++) {
        char name[16], nope[16];
        snprintf(name, sizeof(name), "dt%d", v);
        snprintf(nope, sizeof(nope), "nope%d", v);
        struct topic *t;
        cr_assert_eq(topic_create(b, name, NULL, &t), 0);
        const char *names[] = {name, nope};
        struct rq q;
        rq_delete_topics(&q, v, names, 2);
        struct kr r = call(c, &q);
        struct ct_resp o;
        dec_delete_topics(&r, v, &o);
        if (v >= 1)
            cr_assert_eq(o.throttle, 0);
        cr_assert_eq(o.n, 2);
        cr_assert_str_eq(o.t[0].name, name);
        cr_assert_eq(o.t[0].err, E_NONE, "v%d: error %d", v, o.t[0].err);
        cr_assert_str_eq(o.t[1].name, nope);
        cr_assert_eq(o.t[1].err, E_UNKNOWN_TOPIC_OR_PARTITION);
        cr_assert_null(topic_find(b, name));
        /* a name given twice: INVALID_REQUEST for both, the topic stays */
        const char *twice[] = {"t", "t"};
        rq_delete_topics(&q, v, twice, 2);
        r = call(c, &q);
        dec_delete_topics(&r, v, &o);
        cr_assert_eq(o.n, 2);
        cr_assert_eq(o.t[0].err, E_INVALID_REQUEST);
        cr_assert_eq(o.t[1].err, E_INVALID_REQUEST);
        cr_assert_not_null(topic_find(b, "t"));
    }
}

Test(kafka, init_producer_id_answers_v0_and_v1)
{
    struct cli *c = cli_open();
    for (int16_t v = 0; v <= 1; v++) {
        struct rq q;
        rq_init_producer_id(&q, v, NULL);
        struct kr r = call(c, &q);
        struct ip_resp o;
        dec_init_producer_id(&r, v, &o);
        cr_assert_eq(o.throttle, 0);
        cr_assert_eq(o.err, E_NONE);
        cr_assert_geq(o.pid, 0);
        cr_assert_eq(o.epoch, 0);
        /* transactions are not served */
        rq_init_producer_id(&q, v, "tx");
        r = call(c, &q);
        dec_init_producer_id(&r, v, &o);
        cr_assert_eq(o.err, E_TRANSACTIONAL_ID_AUTHORIZATION_FAILED);
        cr_assert_eq(o.pid, -1);
        cr_assert_eq(o.epoch, -1);
    }
}

/* ================================================================ groups */

Test(kafka, find_coordinator_answers_every_version_in_its_layout)
{
    struct cli *c = cli_open();
    for (int16_t v = 0; v <= 2; v++) {
        struct rq q;
        rq_find_coordinator(&q, v, "g", 0);
        struct kr r = call(c, &q);
        struct fc_resp o;
        dec_find_coordinator(&r, v, &o);
        cr_assert_eq(o.err, E_NONE, "v%d: error %d", v, o.err);
        if (v >= 1) {
            cr_assert_eq(o.throttle, 0);
            cr_assert_eq(o.msg_len, -1);
        }
        cr_assert_eq(o.node, node());
        cr_assert_str_eq(o.host, "127.0.0.1");
        cr_assert_eq(o.port, port);
        if (v >= 1) {
            /* a transaction coordinator: not served */
            rq_find_coordinator(&q, v, "tx", 1);
            r = call(c, &q);
            dec_find_coordinator(&r, v, &o);
            cr_assert_eq(o.err, E_COORDINATOR_NOT_AVAILABLE);
            cr_assert_eq(o.node, -1);
        }
    }
}

Test(kafka, join_sync_heartbeat_and_leave_answer_every_version_in_their_layout)
{
    struct cli *c = cli_open();
    struct rq q;
    rq_find_coordinator(&q, 0, "g0", 0); /* makes the offsets topic, as clients do first */
    struct kr r = call(c, &q);
    struct fc_resp fo;
    cr_assert_eq(dec_find_coordinator(&r, 0, &fo), 0);
    /* JoinGroup v0-5, one group each, pipelined: the groups' initial delays run together */
    struct rq jq[6];
    for (int16_t v = 0; v <= 5; v++) {
        char group[8], meta[8];
        snprintf(group, sizeof(group), "g%d", v);
        snprintf(meta, sizeof(meta), "M%d", v);
        rq_join_group(&jq[v], v, group, "", meta);
    }
    int32_t corr[6];
    for (int v = 0; v <= 5; v++) {
        corr[v] = jq[v].corr;
        rq_send(c, &jq[v]);
    }
    char member[6][256];
    int32_t gen[6];
    for (int16_t v = 0; v <= 5; v++) {
        r = answer(c, corr[v]);
        struct jg_resp o;
        dec_join_group(&r, v, &o);
        cr_assert_eq(o.err, E_NONE, "JoinGroup v%d: error %d", v, o.err);
        if (v >= 2)
            cr_assert_eq(o.throttle, 0);
        cr_assert_geq(o.gen, 1);
        cr_assert_str_eq(o.protocol, "range");
        cr_assert_neq(o.member[0], '\0', "a new member gets an id");
        cr_assert_str_eq(o.leader, o.member, "a lone member leads");
        cr_assert_eq(o.n, 1, "the leader gets the members");
        cr_assert_str_eq(o.m[0].id, o.member);
        if (v >= 5)
            cr_assert_eq(o.m[0].instance_len, -1);
        char meta[8];
        int ml = snprintf(meta, sizeof(meta), "M%d", v);
        cr_assert(same(o.m[0].meta, o.m[0].meta_len, meta, ml), "the member's metadata");
        snprintf(member[v], sizeof(member[v]), "%s", o.member);
        gen[v] = o.gen;
    }
    /* SyncGroup v0-3 on g0-g3: the leader's assignment comes back */
    for (int16_t v = 0; v <= 3; v++) {
        char group[8], data[8];
        snprintf(group, sizeof(group), "g%d", v);
        int dl = snprintf(data, sizeof(data), "A%d", v);
        rq_sync_group(&q, v, group, gen[v], member[v], data);
        r = call(c, &q);
        struct sg_resp o;
        dec_sync_group(&r, v, &o);
        cr_assert_eq(o.err, E_NONE, "SyncGroup v%d: error %d", v, o.err);
        if (v >= 1)
            cr_assert_eq(o.throttle, 0);
        cr_assert(same((const uint8_t *)o.data, o.len, data, dl), "the assignment");
    }
    /* Heartbeat v0-3 on g0-g3: stable; a stale generation, a stranger */
    for (int16_t v = 0; v <= 3; v++) {
        char group[8];
        snprintf(group, sizeof(group), "g%d", v);
        struct hb_resp o;
        rq_heartbeat(&q, v, group, gen[v], member[v]);
        r = call(c, &q);
        dec_heartbeat(&r, v, &o);
        cr_assert_eq(o.err, E_NONE, "Heartbeat v%d: error %d", v, o.err);
        if (v >= 1)
            cr_assert_eq(o.throttle, 0);
        rq_heartbeat(&q, v, group, gen[v] + 1, member[v]);
        r = call(c, &q);
        dec_heartbeat(&r, v, &o);
        cr_assert_eq(o.err, E_ILLEGAL_GENERATION);
        rq_heartbeat(&q, v, group, gen[v], "nobody");
        r = call(c, &q);
        dec_heartbeat(&r, v, &o);
        cr_assert_eq(o.err, E_UNKNOWN_MEMBER_ID);
    }
    /* LeaveGroup v0-1 on g4-g5 */
    for (int16_t v = 0; v <= 1; v++) {
        char group[8];
        snprintf(group, sizeof(group), "g%d", 4 + v);
        rq_leave_group(&q, v, group, member[4 + v]);
        r = call(c, &q);
        struct hb_resp o;
        dec_heartbeat(&r, v, &o);
        cr_assert_eq(o.err, E_NONE, "LeaveGroup v%d: error %d", v, o.err);
        if (v >= 1)
            cr_assert_eq(o.throttle, 0);
        rq_leave_group(&q, v, group, member[4 + v]);
        r = call(c, &q);
        dec_heartbeat(&r, v, &o);
        cr_assert_eq(o.err, E_UNKNOWN_MEMBER_ID, "a second leave");
    }
}

Test(kafka, offset_commit_and_fetch_answer_every_version_in_their_layout)
{
    struct cli *c = cli_open();
    struct rq q;
    rq_find_coordinator(&q, 0, "oc", 0);
    struct kr r = call(c, &q);
    struct fc_resp fo;
    cr_assert_eq(dec_find_coordinator(&r, 0, &fo), 0);
    /* OffsetCommit v0-7 from a consumer outside any generation (-1, "") */
    for (int16_t v = 0; v <= 7; v++) {
        char meta[8];
        snprintf(meta, sizeof(meta), "m%d", v);
        struct opart ps[1] = {{0, 100 + v, meta}};
        rq_offset_commit(&q, v, "oc", -1, "", "t", ps, 1);
        r = call(c, &q);
        struct oc_resp o;
        dec_offset_commit(&r, v, &o);
        if (v >= 3)
            cr_assert_eq(o.throttle, 0);
        cr_assert_eq(o.ntopics, 1);
        cr_assert_str_eq(o.t[0].name, "t");
        cr_assert_eq(o.t[0].nparts, 1);
        cr_assert_eq(o.t[0].p[0].idx, 0);
        cr_assert_eq(o.t[0].p[0].err, E_NONE, "OffsetCommit v%d: error %d", v, o.t[0].p[0].err);
    }
    /* OffsetFetch v0-5: partition 0 committed last at 107, partition 1 never */
    for (int16_t v = 0; v <= 5; v++) {
        const int32_t parts[2] = {0, 1};
        rq_offset_fetch(&q, v, "oc", 1, "t", parts, 2);
        r = call(c, &q);
        struct of_resp o;
        dec_offset_fetch(&r, v, &o);
        if (v >= 3)
            cr_assert_eq(o.throttle, 0);
        if (v >= 2)
            cr_assert_eq(o.err, E_NONE);
        cr_assert_eq(o.ntopics, 1);
        cr_assert_str_eq(o.t[0].name, "t");
        cr_assert_eq(o.t[0].nparts, 2);
        cr_assert_eq(o.t[0].p[0].idx, 0);
        cr_assert_eq(o.t[0].p[0].err, E_NONE);
        cr_assert_eq(o.t[0].p[0].off, 107, "OffsetFetch v%d: offset %" PRId64, v, o.t[0].p[0].off);
        cr_assert_str_eq(o.t[0].p[0].meta, "m7");
        cr_assert_eq(o.t[0].p[1].idx, 1);
        cr_assert_eq(o.t[0].p[1].err, E_NONE);
        cr_assert_eq(o.t[0].p[1].off, -1, "nothing committed: -1");
        cr_assert_leq(o.t[0].p[1].meta_len, 0);
        if (v >= 5) {
            cr_assert_eq(o.t[0].p[0].epoch, -1);
            cr_assert_eq(o.t[0].p[1].epoch, -1);
        }
    }
    /* v2+: a null topic array lists every committed offset of the group */
    for (int16_t v = 2; v <= 5; v++) {
        rq_offset_fetch(&q, v, "oc", -1, NULL, NULL, 0);
        r = call(c, &q);
        struct of_resp o;
        dec_offset_fetch(&r, v, &o);
        cr_assert_eq(o.err, E_NONE);
        cr_assert_eq(o.ntopics, 1);
        cr_assert_str_eq(o.t[0].name, "t");
        cr_assert_eq(o.t[0].nparts, 1);
        cr_assert_eq(o.t[0].p[0].off, 107);
        cr_assert_str_eq(o.t[0].p[0].meta, "m7");
    }
}

/* ================================================================ bad frames */

/* Sends raw bytes on a fresh connection, expects it closed, then checks
 * that the port still serves. */
static void expect_close_on(const void *p, size_t n, const char *what)
{
    struct cli *c = cli_open();
    if (cli_send(c, p, n))
        expect_closed(c, what);
    cli_close(c);
    assert_serving();
}

Test(kafka, frame_sizes_below_8_close_the_connection)
{
    for (uint32_t size = 0; size < 8; size++) {
        uint8_t f[12] = {0, 0, 0, (uint8_t)size, 0, 18, 0, 0, 0, 0, 0, 1};
        char what[32];
        snprintf(what, sizeof(what), "frame size %u", size);
        expect_close_on(f, 4 + size, what);
    }
}

Test(kafka, frame_sizes_beyond_100_mib_close_the_connection)
{
    const uint32_t sizes[] = {0x7fffffffu, 0x80000000u, 0xffffffffu, (100u << 20) + 1};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t f[24] = {(uint8_t)(sizes[i] >> 24),
                         (uint8_t)(sizes[i] >> 16),
                         (uint8_t)(sizes[i] >> 8),
                         (uint8_t)sizes[i],
                         0,
                         18,
                         0,
                         0,
                         0,
                         0,
                         0,
                         1,
                         0,
                         0};
        char what[32];
        snprintf(what, sizeof(what), "frame size 0x%x", sizes[i]);
        expect_close_on(f, sizeof(f), what);
    }
}

Test(kafka, unknown_api_keys_close_the_connection)
{
    const int16_t keys[] = {4, 17, 21, 23, 42, 99, 1000, -1, INT16_MAX};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        struct rq q;
        rq_begin(&q, keys[i], 0);
        kw_i32(&q.w, 0);
        rq_end(&q);
        char what[32];
        snprintf(what, sizeof(what), "api key %d", keys[i]);
        expect_close_on(q.w.p, q.w.len, what);
    }
}

Test(kafka, versions_never_advertised_close_the_connection)
{
    const struct {
        int16_t api, v;
    } bad[] = {{PRODUCE, 8},       {PRODUCE, -1},      {FETCH, 3},
               {FETCH, 0},         {FETCH, 12},        {LIST_OFFSETS, 4},
               {METADATA, 7},      {METADATA, 9},      {API_VERSIONS, -1},
               {CREATE_TOPICS, 5}, {DELETE_TOPICS, 4}, {INIT_PRODUCER_ID, 2},
               {OFFSET_COMMIT, 8}, {OFFSET_FETCH, 6},  {FIND_COORDINATOR, 3},
               {JOIN_GROUP, 6},    {HEARTBEAT, 4},     {LEAVE_GROUP, 2},
               {SYNC_GROUP, 4}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rq q;
        rq_begin(&q, bad[i].api, bad[i].v);
        kw_i32(&q.w, 0);
        kw_i32(&q.w, 0);
        rq_end(&q);
        char what[48];
        snprintf(what, sizeof(what), "api %d version %d", bad[i].api, bad[i].v);
        expect_close_on(q.w.p, q.w.len, what);
    }
}

Test(kafka, headers_that_do_not_parse_close_the_connection)
{
    /* api key, version, correlation id, then a client id cut short */
    const uint8_t cut[] = {0, 0, 0, 9, 0, 3, 0, 1, 0, 0, 0, 1, 0};
    expect_close_on(cut, sizeof(cut), "a client id cut short");
    const uint8_t lying[] = {0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, 'a', 'b', 0, 0};
    expect_close_on(lying, sizeof(lying), "a client id longer than the frame");
    const uint8_t neg[] = {0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xfe, 0, 0, 0, 0};
    expect_close_on(neg, sizeof(neg), "a client id length of -2");
    /* ApiVersions v3: header v2 without its tag byte */
    const uint8_t notags[] = {0, 0, 0, 10, 0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff};
    struct cli *c = cli_open();
    cr_assert(cli_send(c, notags, sizeof(notags)));
    uint8_t *f = NULL;
    size_t n;
    int rc = cli_recv(c, WAIT_MS, &f, &n);
    cr_assert_neq(rc, RX_TIMEOUT);
    if (rc == RX_FRAME) { /* allowed only as a well-formed error */
        keep(f);
        struct kr r;
        kr_init(&r, f, n);
        cr_assert_eq(kr_i32(&r), 1);
        struct av_resp o;
        cr_assert_gt(dec_api_versions(&r, 3, &o), 0);
    }
    cli_close(c);
    assert_serving();
}

Test(kafka, huge_array_counts_close_the_connection_without_allocating)
{
    /* Each count claims 0x7fffffff (or -2) elements in a body of ~20 bytes.
     * The codec refuses a count above what the bytes left could hold, so
     * nothing is sized by it (under ASan an allocation of the count's size
     * would abort the test). */
    const int32_t counts[] = {0x7fffffff, 0x10000000, -2};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        struct rq q;
        for (int which = 0; which < 9; which++) {
            switch (which) {
            case 0: /* Metadata topics */
                rq_begin(&q, METADATA, 1);
                kw_i32(&q.w, counts[i]);
                break;
            case 1: /* Produce topics */
                rq_begin(&q, PRODUCE, 7);
                kw_string(&q.w, NULL, -1);
                kw_i16(&q.w, 1);
                kw_i32(&q.w, 1000);
                kw_i32(&q.w, counts[i]);
                break;
            case 2: /* Produce partitions */
                rq_begin(&q, PRODUCE, 3);
                kw_string(&q.w, NULL, -1);
                kw_i16(&q.w, 1);
                kw_i32(&q.w, 1000);
                kw_i32(&q.w, 1);
                kw_string(&q.w, "t", 1);
                kw_i32(&q.w, counts[i]);
                break;
            case 3: /* Fetch topics */
                rq_begin(&q, FETCH, 4);
                kw_i32(&q.w, -1);
                kw_i32(&q.w, 100);
                kw_i32(&q.w, 1);
                kw_i32(&q.w, 1000);
                kw_i8(&q.w, 0);
                kw_i32(&q.w, counts[i]);
                break;
            case 4: /* CreateTopics topics */
                rq_begin(&q, CREATE_TOPICS, 0);
                kw_i32(&q.w, counts[i]);
                break;
            case 5: /* DeleteTopics names */
                rq_begin(&q, DELETE_TOPICS, 0);
                kw_i32(&q.w, counts[i]);
                break;
            case 6: /* JoinGroup protocols */
                rq_begin(&q, JOIN_GROUP, 0);
                kw_string(&q.w, "g", 1);
                kw_i32(&q.w, 10000);
                kw_string(&q.w, "", 0);
                kw_string(&q.w, "consumer", 8);
                kw_i32(&q.w, counts[i]);
                break;
            case 7: /* OffsetCommit topics */
                rq_begin(&q, OFFSET_COMMIT, 2);
                kw_string(&q.w, "g", 1);
                kw_i32(&q.w, -1);
                kw_string(&q.w, "", 0);
                kw_i64(&q.w, -1);
                kw_i32(&q.w, counts[i]);
                break;
            default: /* ListOffsets topics */
                rq_begin(&q, LIST_OFFSETS, 1);
                kw_i32(&q.w, -1);
                kw_i32(&q.w, counts[i]);
                break;
            }
            for (int j = 0; j < 16; j++)
                kw_i8(&q.w, 0);
            rq_end(&q);
            char what[48];
            snprintf(what, sizeof(what), "request %d with count %d", which, counts[i]);
            expect_close_on(q.w.p, q.w.len, what);
        }
    }
}

/* ================================================================ truncations */

typedef void (*build_fn)(struct rq *q, int16_t v);
typedef int (*decode_fn)(struct kr *r, int16_t v);

/* Every truncation of the body of build(v)'s request, with the frame size
 * adjusted to the cut, is sent on a fresh connection: the server must close
 * it or answer a well-formed error (decode: the strict layout, errors > 0),
 * and a fresh connection must be served afterwards. */
static void truncations(build_fn build, decode_fn decode, int16_t v)
{
    struct rq q;
    build(&q, v);
    cr_assert_gt(q.w.len, q.body_at, "a request without a body");
    int16_t api = (int16_t)(q.w.p[4] << 8 | q.w.p[5]);
    static uint8_t f[8192];
    cr_assert_leq(q.w.len, sizeof(f));
    for (size_t cut = q.body_at; cut < q.w.len; cut++) {
        memcpy(f, q.w.p, cut);
        uint32_t size = (uint32_t)(cut - 4);
        f[0] = (uint8_t)(size >> 24);
        f[1] = (uint8_t)(size >> 16);
        f[2] = (uint8_t)(size >> 8);
        f[3] = (uint8_t)size;
        struct cli *c = cli_open();
        bool sent = cli_send(c, f, cut);
        if (sent) {
            uint8_t *a = NULL;
            size_t n;
            int rc = cli_recv(c, WAIT_MS, &a, &n);
            cr_assert_neq(rc, RX_TIMEOUT,
                          "api %d v%d cut to %zu of %zu body bytes: neither an answer nor a close",
                          api, v, cut - q.body_at, q.w.len - q.body_at);
            if (rc == RX_FRAME) {
                keep(a);
                struct kr r;
                kr_init(&r, a, n);
                cr_assert_eq(kr_i32(&r), q.corr);
                int nerr = decode(&r, v);
                cr_assert_gt(nerr, 0, "api %d v%d cut to %zu body bytes: answered without an error",
                             api, v, cut - q.body_at);
            }
        }
        cli_close(c);
        assert_serving();
    }
}

#define ANY(name, type)                                                                            \
    static int any_##name(struct kr *r, int16_t v)                                                 \
    {                                                                                              \
        type o;                                                                                    \
        return dec_##name(r, v, &o);                                                               \
    }
ANY(api_versions, struct av_resp)
ANY(metadata, struct md_resp)
ANY(produce, struct pr_resp)
ANY(fetch, struct fe_resp)
ANY(list_offsets, struct lo_resp)
ANY(create_topics, struct ct_resp)
ANY(delete_topics, struct ct_resp)
ANY(init_producer_id, struct ip_resp)
ANY(find_coordinator, struct fc_resp)
ANY(join_group, struct jg_resp)
ANY(sync_group, struct sg_resp)
ANY(heartbeat, struct hb_resp)
ANY(offset_commit, struct oc_resp)
ANY(offset_fetch, struct of_resp)

static void b_api_versions(struct rq *q, int16_t v)
{
    rq_api_versions(q, v);
}

static void b_metadata(struct rq *q, int16_t v)
{
    const char *names[] = {"t", "another-topic-name"};
    rq_metadata(q, v, names, 2, false);
}

static void b_produce(struct rq *q, int16_t v)
{
    struct trec recs[2] = {{.key = "k",
                            .klen = 1,
                            .val = "v",
                            .vlen = 1,
                            .nh = 1,
                            .hk = {"h"},
                            .hv = {"x"},
                            .hvlen = {1},
                            .ts = 1000},
                           {.key = NULL, .klen = -1, .val = "w", .vlen = 1, .ts = 1001}};
    struct kw batch;
    kw_init(&batch);
    put_batch(&batch, recs, 2);
    keep(batch.p);
    struct ptopic pt = {"t", 1, {{0, batch.p, (int32_t)batch.len}}};
    rq_produce(q, v, 1, &pt, 1);
}

static void b_fetch(struct rq *q, int16_t v)
{
    struct ftopic ft[2] = {{"t", 2, {{0, 0, 1 << 20}, {1, 0, 1 << 20}}},
                           {"another-topic-name", 1, {{0, 0, 1 << 20}}}};
    rq_fetch(q, v, 100, 1, ft, 2);
}

static void b_list_offsets(struct rq *q, int16_t v)
{
    struct ltopic lt[2] = {{"t", 2, {{0, -1}, {1, -2}}}, {"another-topic-name", 1, {{0, -1}}}};
    rq_list_offsets(q, v, lt, 2);
}

static void b_create_topics(struct rq *q, int16_t v)
{
    struct ctopic ct = {"made", 1, 1};
    rq_create_topics(q, v, &ct, 1, false);
}

static void b_delete_topics(struct rq *q, int16_t v)
{
    const char *names[] = {"t", "another-topic-name"};
    rq_delete_topics(q, v, names, 2);
}

static void b_init_producer_id(struct rq *q, int16_t v)
{
    rq_init_producer_id(q, v, NULL);
}

static void b_find_coordinator(struct rq *q, int16_t v)
{
    rq_find_coordinator(q, v, "grp", 0);
}

static void b_join_group(struct rq *q, int16_t v)
{
    rq_join_group(q, v, "grp", "", "meta");
}

static void b_sync_group(struct rq *q, int16_t v)
{
    rq_sync_group(q, v, "grp", 1, "member-1", "assignment");
}

static void b_heartbeat(struct rq *q, int16_t v)
{
    rq_heartbeat(q, v, "grp", 1, "member-1");
}

static void b_leave_group(struct rq *q, int16_t v)
{
    rq_leave_group(q, v, "grp", "member-1");
}

static void b_offset_commit(struct rq *q, int16_t v)
{
    struct opart ps[2] = {{0, 5, "meta"}, {1, 6, NULL}};
    rq_offset_commit(q, v, "grp", -1, "", "another-topic-name", ps, 2);
}

static void b_offset_fetch(struct rq *q, int16_t v)
{
    const int32_t parts[2] = {0, 1};
    rq_offset_fetch(q, v, "grp", 1, "another-topic-name", parts, 2);
}

Test(kafka, truncated_api_versions_requests_close_or_answer_an_error)
{
    truncations(b_api_versions, any_api_versions, 3);
}

Test(kafka, truncated_metadata_requests_close_or_answer_an_error)
{
    for (int16_t v = 0; v <= 6; v += 2)
        truncations(b_metadata, any_metadata, v);
}

Test(kafka, truncated_produce_requests_close_or_answer_an_error)
{
    truncations(b_produce, any_produce, 3);
    truncations(b_produce, any_produce, 7);
    truncations(b_produce, any_produce, 0);
}

Test(kafka, truncated_fetch_requests_close_or_answer_an_error)
{
    const int16_t vs[] = {4, 5, 7, 9, 11};
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++)
        truncations(b_fetch, any_fetch, vs[i]);
}

Test(kafka, truncated_list_offsets_requests_close_or_answer_an_error)
{
    for (int16_t v = 0; v <= 3; v++)
        truncations(b_list_offsets, any_list_offsets, v);
}

Test(kafka, truncated_create_topics_requests_close_or_answer_an_error)
{
    truncations(b_create_topics, any_create_topics, 0);
    truncations(b_create_topics, any_create_topics, 4);
    cr_assert_null(topic_find(b, "made"));
}

Test(kafka, truncated_delete_topics_requests_close_or_answer_an_error)
{
    truncations(b_delete_topics, any_delete_topics, 0);
    truncations(b_delete_topics, any_delete_topics, 3);
    cr_assert_not_null(topic_find(b, "t"));
}

Test(kafka, truncated_init_producer_id_requests_close_or_answer_an_error)
{
    truncations(b_init_producer_id, any_init_producer_id, 0);
    truncations(b_init_producer_id, any_init_producer_id, 1);
}

Test(kafka, truncated_find_coordinator_requests_close_or_answer_an_error)
{
    for (int16_t v = 0; v <= 2; v++)
        truncations(b_find_coordinator, any_find_coordinator, v);
}

Test(kafka, truncated_join_group_requests_close_or_answer_an_error)
{
    truncations(b_join_group, any_join_group, 0);
    truncations(b_join_group, any_join_group, 5);
}

Test(kafka, truncated_sync_group_requests_close_or_answer_an_error)
{
    truncations(b_sync_group, any_sync_group, 0);
    truncations(b_sync_group, any_sync_group, 3);
}

Test(kafka, truncated_heartbeat_requests_close_or_answer_an_error)
{
    truncations(b_heartbeat, any_heartbeat, 0);
    truncations(b_heartbeat, any_heartbeat, 3);
}

Test(kafka, truncated_leave_group_requests_close_or_answer_an_error)
{
    truncations(b_leave_group, any_heartbeat, 0);
    truncations(b_leave_group, any_heartbeat, 1);
}

Test(kafka, truncated_offset_commit_requests_close_or_answer_an_error)
{
    truncations(b_offset_commit, any_offset_commit, 0);
    truncations(b_offset_commit, any_offset_commit, 1);
    truncations(b_offset_commit, any_offset_commit, 7);
}

Test(kafka, truncated_offset_fetch_requests_close_or_answer_an_error)
{
    truncations(b_offset_fetch, any_offset_fetch, 1);
    truncations(b_offset_fetch, any_offset_fetch, 5);
}

/* ================================================================ null names */

/* A request with a null topic name (not nullable in these versions) is
 * answered with an error for it or closes the connection: never a crash. */
static void expect_error_or_close(struct rq *q, decode_fn decode, int16_t v, const char *what)
{
    struct cli *c = cli_open();
    int32_t corr = q->corr;
    bool sent = cli_send(c, q->w.p, q->w.len);
    if (sent) {
        uint8_t *a = NULL;
        size_t n;
        int rc = cli_recv(c, WAIT_MS, &a, &n);
        cr_assert_neq(rc, RX_TIMEOUT, "%s: neither an answer nor a close", what);
        if (rc == RX_FRAME) {
            keep(a);
            struct kr r;
            kr_init(&r, a, n);
            cr_assert_eq(kr_i32(&r), corr);
            cr_assert_gt(decode(&r, v), 0, "%s: answered without an error", what);
        }
    }
    cli_close(c);
    assert_serving();
}

Test(kafka, null_topic_names_get_an_error_or_a_close)
{
    struct rq q;
    const char *names[] = {NULL};
    rq_metadata(&q, 1, names, 1, false);
    expect_error_or_close(&q, any_metadata, 1, "Metadata");
    rq_metadata(&q, 4, names, 1, true);
    expect_error_or_close(&q, any_metadata, 4, "Metadata with auto-creation");
    struct ftopic ft = {NULL, 1, {{0, 0, 1 << 20}}};
    rq_fetch(&q, 11, 100, 1, &ft, 1);
    expect_error_or_close(&q, any_fetch, 11, "Fetch");
    struct ltopic lt = {NULL, 1, {{0, -1}}};
    rq_list_offsets(&q, 1, &lt, 1);
    expect_error_or_close(&q, any_list_offsets, 1, "ListOffsets");
    struct ctopic ct = {NULL, 1, 1};
    rq_create_topics(&q, 4, &ct, 1, false);
    expect_error_or_close(&q, any_create_topics, 4, "CreateTopics");
    rq_delete_topics(&q, 1, names, 1);
    expect_error_or_close(&q, any_delete_topics, 1, "DeleteTopics");
    struct kw batch;
    kw_init(&batch);
    struct trec rec = {.key = NULL, .klen = -1, .val = "v", .vlen = 1, .ts = 1};
    put_batch(&batch, &rec, 1);
    keep(batch.p);
    struct ptopic pt = {NULL, 1, {{0, batch.p, (int32_t)batch.len}}};
    rq_produce(&q, 7, 1, &pt, 1);
    expect_error_or_close(&q, any_produce, 7, "Produce");
}

Test(kafka, two_null_topic_names_in_delete_topics_get_an_error_or_a_close)
{
    struct rq q;
    const char *names[] = {NULL, NULL};
    rq_delete_topics(&q, 1, names, 2);
    expect_error_or_close(&q, any_delete_topics, 1, "DeleteTopics with two null names");
}

Test(kafka, a_null_topic_name_in_offset_commit_gets_an_error_or_a_close)
{
    struct cli *c = cli_open();
    struct rq q;
    rq_find_coordinator(&q, 0, "g", 0);
    struct kr r = call(c, &q);
    struct fc_resp fo;
    cr_assert_eq(dec_find_coordinator(&r, 0, &fo), 0);
    struct opart ps[1] = {{0, 5, "m"}};
    rq_offset_commit(&q, 2, "g", -1, "", NULL, ps, 1);
    expect_error_or_close(&q, any_offset_commit, 2, "OffsetCommit");
}

Test(kafka, a_null_topic_name_in_offset_fetch_gets_an_error_or_a_close)
{
    struct cli *c = cli_open();
    struct rq q;
    rq_find_coordinator(&q, 0, "g", 0);
    struct kr r = call(c, &q);
    struct fc_resp fo;
    cr_assert_eq(dec_find_coordinator(&r, 0, &fo), 0);
    const int32_t parts[1] = {0};
    rq_offset_fetch(&q, 1, "g", 1, NULL, parts, 1);
    expect_error_or_close(&q, any_offset_fetch, 1, "OffsetFetch");
}

/* ================================================================ stopping */

/* kafka.h: kafka_stop "closes the port and every connection; their pending
 * work is answered to no one".  A Fetch long poll of the closed connection
 * must not hold the loop (a daemon's exit) for its max_wait. */
Test(kafka, stopping_the_port_ends_a_waiting_fetch_at_once)
{
    struct cli *c = cli_open();
    struct ftopic ft = {"t", 1, {{0, 0, 1 << 20}}};
    struct rq q;
    rq_fetch(&q, 11, 4000, 1, &ft, 1);
    rq_send(c, &q);
    uint8_t *f = NULL;
    size_t n;
    cr_assert_eq(cli_recv(c, 100, &f, &n), RX_TIMEOUT);
    free(f);
    uint64_t ms = stop_all();
    cr_assert_lt(ms, 1000,
                 "the loop drained %" PRIu64 " ms after kafka_stop (the Fetch's max_wait: 4000)",
                 ms);
}

