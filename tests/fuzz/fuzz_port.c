/*
 * fuzz_port — libFuzzer target over a real netport (broker/net/netport.c):
 * its handshake and its incremental frame reader, fed over real loopback
 * TCP on a real libuv loop, all in this one thread.
 *
 * THE NODE UNDER TEST.  Started once, at the first input: node 2 of a
 * two-node cluster on 127.0.0.1 (cluster id FUZZ_CLUSTER, no
 * cluster.secret, so the proofs use the all-zero key), listening on a port
 * 32007-32757 ending in 7, picked by the pid, a port in use skipped: above
 * what the unit tests (12000-30999, probed), the e2e scripts (17000-27000)
 * and the chaos run (27000-31999, checked with ss) take, below the
 * ephemeral range (32768-) that the harness's own connections use.  Node 1 is
 * configured on 127.0.0.1 and does not exist: the lower id dials, so node 2
 * never calls it, and the harness plays it.  Its ops callbacks count what
 * they are given and read every borrowed byte, so that ASan sees a bad
 * borrow.
 *
 * INPUT: a sequence of chunks [u8 op][u16 le len][len bytes] (a last chunk
 * may be cut short; fewer than 3 bytes left are sent raw):
 *   0x00-0x08  a frame of that wire type around the bytes, with a right
 *              header and checksum (so the fuzzer gets past the checksum);
 *              type 0 is invalid and only its header says so
 *   0x40       the harness's own valid HELLO from node 1 (auth 0, a random
 *              nonce); the bytes are ignored
 *   0x41       flush what was written, read the node's HELLO_OK and answer
 *              with the right AUTH proof for the first HELLO framed on this
 *              connection (0x40 or 0x01), so the post-handshake dispatch is
 *              reachable; nothing when no HELLO_OK comes
 *   0x80-0xff  the bytes raw: garbage, truncated frames, huge lengths
 *   other      the bytes raw too, except these additions to the brief:
 *   0x10-0x18  as 0x00-0x08 with the frame around bytes[1..], sent in two
 *              parts cut after bytes[0] bytes, the node reading the first
 *              part before the second is sent (a header or body split
 *              across reads)
 *   0x42       open another connection, from 127.0.0.2 if bytes[0] is odd
 *              (not node 1's address) else from 127.0.0.1, and send what
 *              follows on it, the earlier ones staying open: a handshake on
 *              it replaces the first (at most FUZZ_SOCKS connections per
 *              input; further 0x42 are ignored)
 *   0x43       flush and wait until the node has read everything
 * After the last chunk the harness runs the loop until every connection
 * is settled (the node read and answered everything: its socket has no
 * unread byte, nothing waits to be written, the harness read all) or closed
 * by the node, or IDLE_MS pass with nothing happening; then it disconnects,
 * with an RST when the input's size is even, with a FIN when odd (either
 * can land in the middle of a frame), and runs the loop until the node has
 * freed every connection.
 *
 * ORACLES (abort() on failure; ASan/UBSan and LeakSanitizer on their own):
 *   - the node frees every connection within STALL_MS of its peer leaving
 *     (no stall, no connection left behind), and reports the peer down as
 *     often as up, up at most once at a time;
 *   - every frame the node sends is well formed: a valid header and
 *     checksum, HELLO_OK (from 2 to 1, our cluster, no auth, its own
 *     incarnation; its proof right when the transcript is known), REFUSE
 *     (a known reason), PING or PONG; at most one HELLO_OK per connection;
 *   - the callbacks only see what the netport's contract says: node 1, up,
 *     a Raft message from 1 to 2, a CALL whose record lengths sum to its
 *     data;
 *   - .cluster (netport_status) stays parseable: exactly the port line and
 *     the peer line, every field key=value in the documented order, numbers
 *     whole, printable, error="..." ending the line, counters never going
 *     back, the peer down after every input and connects equal to the ups;
 *     a quote inside error="..." is a known bug (README.md, Findings),
 *     reported once and fatal only with FUZZ_PORT_STRICT set;
 *   - every CANARY_EVERY inputs, a fresh connection still completes the
 *     handshake and gets its PING answered (the node keeps no bad state).
 * Oracle messages go to the process's original stderr, so that they stay
 * visible when libFuzzer runs with -close_fd_mask=2 (which silences the
 * node's own log lines).
 */
#include "broker/config.h"
#include "broker/log.h"
#include "broker/net/auth.h"
#include "broker/net/netport.h"
#include "broker/net/wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CLUSTER     0x317a7a75662d6b6dull /* "mk-fuzz1" */
#define FUZZ_INCARNATION 0x1122334455667788ull
#define FUZZ_SOCKS       4
#define IDLE_MS          20   /* nothing happening: stop waiting */
#define STALL_MS         5000 /* the node must have freed a connection by then */
#define CANARY_EVERY     64
#define RX_CAP           4096 /* the node sends frames of at most ~300 bytes */
#define NODE_MAX_FRAME   1024
#define HS_MAX           128
#define PORT_BASE        32000 /* the node listens on PORT_BASE + 10 * slot + 7 */
#define PORT_SLOTS       76    /* up to 32757: node 1's port + 1 stays below 32768 */

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
            fprintf(report, "fuzz_port: oracle failed: %s (%s:%d): ", #cond, __FILE__, __LINE__);  \
            fprintf(report, __VA_ARGS__);                                                          \
            fputc('\n', report);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------ the node */

static struct {
    bool started;
    uv_loop_t loop;
    struct netport *np;
    struct mk_config cfg;
    uint16_t port, port1;
    struct wire_buf wb; /* the harness's frames */
    uint64_t inputs;
    bool verbose; /* FUZZ_PORT_VERBOSE set: a line per input */
    bool strict;  /* FUZZ_PORT_STRICT set: known bugs are fatal too */
    uint64_t quote_seen;
    /* what the callbacks saw */
    uint64_t hellos, ups, downs, raft_msgs, calls, known_calls;
    volatile uint64_t sink; /* bytes read from borrowed data */
    /* .cluster counters of the last check (they never go back) */
    uint64_t refused, bad_frames, unroutable;
    uint64_t p_connects, p_frames_in, p_frames_out, p_bytes_in, p_bytes_out, p_dropped,
        p_bad_frames, p_refusals;
} g;

static void touch(const void *p, size_t n)
{
    const volatile uint8_t *b = p;
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += b[i];
    g.sink += s;
}

static uint64_t on_known(void *ctx, uint32_t id)
{
    (void)ctx;
    ORACLE(id == 1, "known() for node %" PRIu32, id);
    g.known_calls++;
    return 0x99;
}

static void on_hello(void *ctx, uint32_t id, uint64_t incarnation, uint64_t knew_us)
{
    (void)ctx;
    (void)incarnation;
    (void)knew_us;
    ORACLE(id == 1, "hello() for node %" PRIu32, id);
    g.hellos++;
}

static void on_raft(void *ctx, uint32_t from, uint64_t group, const struct raft_msg *m)
{
    (void)ctx;
    ORACLE(from == 1 && m->from == 1 && m->to == 2,
           "raft() from %" PRIu32 " (%" PRIu64 " to %" PRIu64 ")", from, m->from, m->to);
    ORACLE(g.ups == g.downs + 1, "raft() while the peer is not up");
    ORACLE(m->type > 0 && m->type < RAFT_MSG_TYPES, "raft() of type %u", m->type);
    ORACLE(m->n_entries == 0 || m->entries != NULL, "raft(): %zu entries at NULL", m->n_entries);
    touch(m, sizeof(*m));
    touch(&group, sizeof(group));
    for (size_t i = 0; i < m->n_entries; i++) {
        touch(&m->entries[i], sizeof(m->entries[i]));
        touch(m->entries[i].buf, m->entries[i].len);
    }
    ORACLE(m->snap_conf.n <= RAFT_MAX_SERVERS, "raft(): snapshot of %u servers", m->snap_conf.n);
    touch(m->snap_data, m->snap_len);
    g.raft_msgs++;
}

static void on_call(void *ctx, uint32_t from, const struct wire_call *c)
{
    (void)ctx;
    ORACLE(from == 1, "call() from %" PRIu32, from);
    ORACLE(g.ups == g.downs + 1, "call() while the peer is not up");
    ORACLE(c->kind >= WIRE_META_REQ && c->kind < WIRE_NCALLS, "call() of kind %u", c->kind);
    touch(c, sizeof(*c));
    touch(c->data, c->data_len);
    if (c->kind == WIRE_WRITE_REQ) {
        uint64_t sum = 0;
        touch(c->lens, (size_t)c->n * sizeof(*c->lens));
        for (uint32_t i = 0; i < c->n; i++)
            sum += c->lens[i];
        ORACLE(c->n >= 1 && sum == c->data_len,
               "WRITE_REQ: %" PRIu32 " lens sum to %" PRIu64 ", data %zu", c->n, sum, c->data_len);
    }
    g.calls++;
}

static void on_peer(void *ctx, uint32_t id, bool up)
{
    (void)ctx;
    ORACLE(id == 1, "peer() for node %" PRIu32, id);
    if (up) {
        ORACLE(g.ups == g.downs, "peer 1 up twice");
        g.ups++;
    } else {
        ORACLE(g.ups == g.downs + 1, "peer 1 down while not up");
        g.downs++;
    }
}

static void start_node(void)
{
    signal(SIGPIPE, SIG_IGN);
    ORACLE(auth_init() == 0, "auth_init");
    mk_log_terminal_info(false);
    mk_log_node(2);
    ORACLE(uv_loop_init(&g.loop) == 0, "uv_loop_init");
    struct netport_ops ops = {.ctx = &g,
                              .incarnation = FUZZ_INCARNATION,
                              .known = on_known,
                              .hello = on_hello,
                              .raft = on_raft,
                              .call = on_call,
                              .peer = on_peer};
    unsigned slot = (unsigned)getpid() % PORT_SLOTS;
    int rc = -EADDRINUSE;
    for (unsigned k = 0; k < PORT_SLOTS && rc == -EADDRINUSE; k++) {
        g.port = (uint16_t)(PORT_BASE + ((slot + k) % PORT_SLOTS) * 10 + 7);
        g.port1 = (uint16_t)(g.port + 1);
        cfg_defaults(&g.cfg);
        char v[64];
        snprintf(v, sizeof(v), "1@127.0.0.1:%u", (unsigned)g.port1);
        ORACLE(cfg_set(&g.cfg, "peer", v, NULL) == 0, "peer %s", v);
        snprintf(v, sizeof(v), "2@127.0.0.1:%u", (unsigned)g.port);
        ORACLE(cfg_set(&g.cfg, "peer", v, NULL) == 0, "peer %s", v);
        g.cfg.node_id = 2;
        rc = netport_open(&g.np, &g.loop, &g.cfg, FUZZ_CLUSTER, &ops);
        if (rc == -EADDRINUSE) /* the failed listener closes on the loop */
            uv_run(&g.loop, UV_RUN_NOWAIT);
    }
    ORACLE(rc == 0, "netport_open: %s", strerror(-rc));
    fprintf(report, "fuzz_port: node 2 listens on 127.0.0.1:%u\n", (unsigned)g.port);
    g.verbose = getenv("FUZZ_PORT_VERBOSE") != NULL;
    g.strict = getenv("FUZZ_PORT_STRICT") != NULL;
    g.started = true;
}

/* ------------------------------------------------------------ the node's connections */

/* What the node's handles look like now (uv_walk over its loop). */
struct node_view {
    int conns;   /* TCP handles other than the listener, closing ones included */
    int closing; /* of which uv_close was called */
    /* an accepted connection to a harness socket, found by the socket's port */
    uint16_t want_port;
    bool found;
    bool found_quiet; /* it read everything and has nothing left to write */
};

static void walk_cb(uv_handle_t *h, void *arg)
{
    struct node_view *v = arg;
    if (h->type != UV_TCP)
        return;
    uv_os_fd_t fd;
    bool closing = uv_is_closing(h);
    if (uv_fileno(h, &fd) == 0) {
        int listening = 0;
        socklen_t l = sizeof(listening);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) == 0 && listening)
            return;
    }
    v->conns++;
    if (closing) {
        v->closing++;
        return;
    }
    if (!v->want_port || uv_fileno(h, &fd) != 0)
        return;
    struct sockaddr_in peer;
    socklen_t pl = sizeof(peer);
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 || ntohs(peer.sin_port) != v->want_port)
        return;
    int unread = 0;
    v->found = true;
    v->found_quiet = ioctl(fd, FIONREAD, &unread) == 0 && unread == 0 &&
                     uv_stream_get_write_queue_size((uv_stream_t *)h) == 0;
}

static struct node_view node_view(uint16_t want_port)
{
    struct node_view v = {.want_port = want_port};
    uv_walk(&g.loop, walk_cb, &v);
    return v;
}

/* ------------------------------------------------------------ harness sockets */

struct sock {
    int fd;
    uint16_t port; /* its local port */
    bool dead;     /* closed by the node (EOF, RST) or a write failed */
    uint8_t *out;  /* bytes waiting to be sent */
    size_t out_len, out_cap, out_off;
    bool queued_any;       /* any bytes were queued on it */
    bool transcript_known; /* the first bytes queued were a harness-framed HELLO */
    uint8_t hs_d[HS_MAX];  /* the first HELLO body framed on it */
    size_t hs_dlen;
    uint8_t rx[RX_CAP];
    size_t rx_len;
    int hello_oks;
    uint8_t hs_a[HS_MAX]; /* the node's HELLO_OK body before its mac */
    size_t hs_alen;
    uint8_t mac[WIRE_MAC_BYTES];
    int pongs;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Connects s to the node from address src (127.0.0.1: node 1's). */
static void sock_open(struct sock *s, const char *src_addr)
{
    memset(s, 0, sizeof(*s));
    for (int attempt = 0;; attempt++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ORACLE(fd >= 0, "socket: %s", strerror(errno));
        int one = 1;
        /* The port is picked at connect time, where TIME_WAIT ones to the
         * node can be reused (tcp_tw_reuse covers loopback). */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
        inet_pton(AF_INET, src_addr, &src.sin_addr);
        inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
        dst.sin_port = htons(g.port);
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) == 0 &&
            connect(fd, (struct sockaddr *)&dst, sizeof(dst)) == 0) {
            struct sockaddr_in me;
            socklen_t ml = sizeof(me);
            ORACLE(getsockname(fd, (struct sockaddr *)&me, &ml) == 0, "getsockname");
            s->fd = fd;
            s->port = ntohs(me.sin_port);
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
            return;
        }
        int e = errno;
        close(fd);
        /* Out of ports or a full backlog: let the loop accept, then retry. */
        ORACLE(attempt < 200, "cannot connect to the node: %s", strerror(e));
        uv_run(&g.loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static void out_add(struct sock *s, const void *p, size_t n)
{
    if (n == 0)
        return;
    if (s->out_len + n > s->out_cap) {
        size_t nc = s->out_cap ? s->out_cap : 1024;
        while (nc < s->out_len + n)
            nc *= 2;
        s->out = realloc(s->out, nc);
        ORACLE(s->out != NULL, "out of memory");
        s->out_cap = nc;
    }
    memcpy(s->out + s->out_len, p, n);
    s->out_len += n;
    s->queued_any = true;
}

static void add_raw(struct sock *s, const uint8_t *p, size_t n)
{
    out_add(s, p, n);
}

/* Appends a harness-framed frame of type t around body. */
static void add_frame(struct sock *s, uint8_t t, const uint8_t *body, size_t n)
{
    if (t == WIRE_HELLO && s->hs_dlen == 0 && n <= HS_MAX) {
        memcpy(s->hs_d, body, n);
        s->hs_dlen = n;
        s->transcript_known = !s->queued_any;
    }
    wire_begin(&g.wb, (enum wire_type)t); /* type 0 too: only the receiver checks */
    wire_put_bytes(&g.wb, body, n);
    ORACLE(wire_end(&g.wb) == 0, "wire_end");
    out_add(s, g.wb.p, g.wb.len);
}

static void add_hello(struct sock *s)
{
    struct wire_hello h = {.cluster_id = FUZZ_CLUSTER,
                           .from = 1,
                           .to = 2,
                           .max_version = WIRE_VERSION,
                           .incarnation = 7,
                           .known = FUZZ_INCARNATION,
                           .auth = 0};
    auth_nonce(h.nonce, sizeof(h.nonce));
    ORACLE(wire_hello_encode(&g.wb, WIRE_HELLO, &h) == 0, "wire_hello_encode");
    uint8_t body[HS_MAX];
    size_t n = g.wb.len - WIRE_HDR;
    memcpy(body, g.wb.p + WIRE_HDR, n);
    add_frame(s, WIRE_HELLO, body, n);
}

/* Checks one whole frame the node sent on s. */
static void node_frame(struct sock *s, const uint8_t *f, const struct wire_hdr *h)
{
    const uint8_t *body = f + WIRE_HDR;
    switch (h->type) {
    case WIRE_HELLO_OK: {
        struct wire_hello ok;
        ORACLE(wire_hello_decode(body, h->length, WIRE_HELLO_OK, &ok) == 0, "a bad HELLO_OK");
        ORACLE(ok.cluster_id == FUZZ_CLUSTER && ok.from == 2 && ok.to == 1 && ok.auth == 0 &&
                   ok.max_version == WIRE_VERSION && ok.incarnation == FUZZ_INCARNATION,
               "HELLO_OK fields: cluster %016" PRIx64 " from %" PRIu32 " to %" PRIu32,
               ok.cluster_id, ok.from, ok.to);
        ORACLE(++s->hello_oks == 1, "a second HELLO_OK on one connection");
        s->hs_alen = h->length - WIRE_MAC_BYTES;
        memcpy(s->hs_a, body, s->hs_alen);
        memcpy(s->mac, ok.mac, WIRE_MAC_BYTES);
        if (s->transcript_known) {
            static const uint8_t zero[AUTH_KEY_BYTES];
            ORACLE(
                auth_check(zero, AUTH_ACCEPTOR, s->hs_d, s->hs_dlen, s->hs_a, s->hs_alen, ok.mac),
                "the node's proof does not match the transcript");
        }
        break;
    }
    case WIRE_REFUSE: {
        struct wire_refuse r;
        ORACLE(wire_refuse_decode(body, h->length, &r) == 0, "a bad REFUSE");
        ORACLE(r.reason >= WIRE_REFUSE_CLUSTER && r.reason <= WIRE_REFUSE_AUTH, "REFUSE reason %u",
               r.reason);
        break;
    }
    case WIRE_PING:
    case WIRE_PONG: {
        struct wire_ping p;
        ORACLE(wire_ping_decode(body, h->length, &p) == 0, "a bad PING/PONG");
        if (h->type == WIRE_PONG)
            s->pongs++;
        break;
    }
    default:
        ORACLE(false, "the node sent a frame of type %u to an inbound connection", h->type);
    }
}

/* Reads what the node sent on s; whether anything came. */
static bool sock_rx(struct sock *s)
{
    bool any = false;
    while (!s->dead) {
        ssize_t r = recv(s->fd, s->rx + s->rx_len, sizeof(s->rx) - s->rx_len, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        any = true;
        if (r <= 0) {
            s->dead = true;
            break;
        }
        s->rx_len += (size_t)r;
        size_t at = 0;
        while (s->rx_len - at >= WIRE_HDR) {
            struct wire_hdr h;
            const uint8_t *f = s->rx + at;
            ORACLE(wire_hdr_decode(f, &h) == 0, "the node sent a bad header");
            ORACLE(h.length <= NODE_MAX_FRAME, "the node sent a frame of %" PRIu32 " bytes",
                   h.length);
            if (s->rx_len - at < WIRE_HDR + h.length)
                break;
            ORACLE(wire_check(f, &h, f + WIRE_HDR), "the node sent a bad checksum");
            node_frame(s, f, &h);
            at += WIRE_HDR + h.length;
        }
        memmove(s->rx, s->rx + at, s->rx_len - at);
        s->rx_len -= at;
    }
    return any;
}

/* Sends what it can of s's pending bytes; whether anything went. */
static bool sock_tx(struct sock *s)
{
    bool any = false;
    while (!s->dead && s->out_off < s->out_len) {
        ssize_t w =
            send(s->fd, s->out + s->out_off, s->out_len - s->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            break;
        any = true;
        if (w < 0) { /* EPIPE, ECONNRESET: the node closed it */
            s->dead = true;
            break;
        }
        s->out_off += (size_t)w;
    }
    if (s->dead || s->out_off == s->out_len)
        s->out_off = s->out_len = 0;
    return any;
}

/* Whether the node has read and answered everything sent on s. */
static bool sock_settled(struct sock *s)
{
    if (s->dead)
        return true;
    if (s->out_len)
        return false;
    int unsent = 0, unread = 0;
    if (ioctl(s->fd, SIOCOUTQNSD, &unsent) != 0 || unsent || ioctl(s->fd, FIONREAD, &unread) != 0 ||
        unread)
        return false;
    struct node_view v = node_view(s->port);
    return v.found && v.found_quiet;
}

static struct sock socks[FUZZ_SOCKS];
static int nsocks;

enum wait_for { W_HELLO_OK, W_SETTLED, W_FREED };

/* Runs the loop (and the harness's sockets) until `what` holds, or IDLE_MS
 * pass with nothing moving (W_FREED: STALL_MS in all, then it is a bug). */
static void run_until(enum wait_for what, struct sock *cur)
{
    uint64_t start = now_ns(), last = start;
    int settled_twice = 0;
    for (;;) {
        bool moved = false;
        for (int i = 0; i < nsocks; i++)
            if (what != W_FREED)
                moved |= sock_tx(&socks[i]);
        int before = node_view(0).conns;
        uv_run(&g.loop, UV_RUN_NOWAIT);
        moved |= node_view(0).conns != before;
        for (int i = 0; i < nsocks; i++)
            if (what != W_FREED)
                moved |= sock_rx(&socks[i]);
        uint64_t now = now_ns();
        if (moved)
            last = now;
        bool done = false;
        switch (what) {
        case W_HELLO_OK:
            /* Or the node answered everything else: none is coming. */
            settled_twice = sock_settled(cur) ? settled_twice + 1 : 0;
            done = cur->dead || cur->hello_oks > 0 || settled_twice >= 2;
            break;
        case W_SETTLED: {
            bool all = true;
            for (int i = 0; i < nsocks && all; i++)
                all = sock_settled(&socks[i]);
            /* Seen twice, with the loop run between: nothing in flight. */
            settled_twice = all ? settled_twice + 1 : 0;
            done = settled_twice >= 2;
            break;
        }
        case W_FREED:
            done = node_view(0).conns == 0;
            ORACLE(done || now - start < (uint64_t)STALL_MS * 1000000,
                   "the node kept a connection %d ms after its peer left", STALL_MS);
            break;
        }
        if (done)
            return;
        if (what != W_FREED && now - last >= (uint64_t)IDLE_MS * 1000000)
            return;
        if (moved || settled_twice)
            continue;
        /* Sleep until the node's loop or a harness socket has something. */
        struct pollfd p[FUZZ_SOCKS + 1];
        int n = 0;
        p[n++] = (struct pollfd){.fd = uv_backend_fd(&g.loop), .events = POLLIN};
        for (int i = 0; i < nsocks && what != W_FREED; i++)
            if (!socks[i].dead)
                p[n++] =
                    (struct pollfd){.fd = socks[i].fd,
                                    .events = (short)(POLLIN | (socks[i].out_len ? POLLOUT : 0))};
        poll(p, (nfds_t)n, 1);
    }
}

/* Answers the node's HELLO_OK on s with the right proof. */
static void answer_hello_ok(struct sock *s)
{
    run_until(W_HELLO_OK, s);
    if (s->dead || s->hello_oks == 0 || s->hs_dlen == 0)
        return;
    static const uint8_t zero[AUTH_KEY_BYTES];
    uint8_t mac[AUTH_MAC_BYTES];
    auth_mac(zero, AUTH_DIALER, s->hs_d, s->hs_dlen, s->hs_a, s->hs_alen, mac);
    add_frame(s, WIRE_AUTH, mac, sizeof(mac));
}

static void close_all(bool rst)
{
    for (int i = 0; i < nsocks; i++) {
        struct sock *s = &socks[i];
        if (rst) {
            struct linger l = {.l_onoff = 1, .l_linger = 0};
            setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        close(s->fd);
        free(s->out);
        s->out = NULL;
    }
    run_until(W_FREED, NULL);
    nsocks = 0;
}

/* ------------------------------------------------------------ .cluster */

/* Reads `key=` at *p and its value (quoted or up to a space or newline)
 * into val; aborts unless it is there, well formed. */
static void field(const char **p, const char *key, char *val, size_t cap, const char *line)
{
    size_t kl = strlen(key);
    ORACLE(strncmp(*p, key, kl) == 0 && (*p)[kl] == '=', "expected %s= in: %s", key, line);
    const char *v = *p + kl + 1, *end;
    if (*v == '"') {
        end = strchr(v + 1, '"');
        ORACLE(end != NULL, "unterminated %s in: %s", key, line);
        end++;
    } else {
        end = v + strcspn(v, " \n");
    }
    ORACLE(*end == ' ' || *end == '\n', "%s=... is not followed by a space or newline in: %s", key,
           line);
    size_t n = (size_t)(end - v);
    ORACLE(n < cap, "%s too long in: %s", key, line);
    memcpy(val, v, n);
    val[n] = '\0';
    for (size_t i = 0; i < n; i++)
        ORACLE(val[i] >= 0x20 && val[i] <= 0x7e, "%s has a control byte in: %s", key, line);
    *p = *end == ' ' ? end + 1 : end;
}

static uint64_t number(const char **p, const char *key, const char *line)
{
    char v[32], *end;
    field(p, key, v, sizeof(v), line);
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    ORACLE(v[0] >= '0' && v[0] <= '9' && *end == '\0' && errno == 0, "%s=%s is not a number: %s",
           key, v, line);
    return n;
}

/* A counter that must never go back; updates the kept copy. */
static void counter(const char **p, const char *key, uint64_t *kept, const char *line)
{
    uint64_t n = number(p, key, line);
    ORACLE(n >= *kept, "%s went back from %" PRIu64 " to %" PRIu64 ": %s", key, *kept, n, line);
    *kept = n;
}

static void check_status(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ORACLE(f != NULL, "open_memstream");
    netport_status(g.np, f);
    fclose(f);
    char want[64], v[128];
    const char *line = buf, *p = buf;

    snprintf(want, sizeof(want), "127.0.0.1:%u", (unsigned)g.port);
    field(&p, "port", v, sizeof(v), line);
    ORACLE(strcmp(v, want) == 0, "port=%s", v);
    field(&p, "listen", v, sizeof(v), line);
    ORACLE(strcmp(v, want) == 0, "listen=%s", v);
    field(&p, "secret", v, sizeof(v), line);
    ORACLE(strcmp(v, "no") == 0, "secret=%s", v);
    field(&p, "cluster.id", v, sizeof(v), line);
    ORACLE(strtoull(v, NULL, 16) == FUZZ_CLUSTER && strlen(v) == 16, "cluster.id=%s", v);
    counter(&p, "refused", &g.refused, line);
    counter(&p, "bad.frames", &g.bad_frames, line);
    counter(&p, "unroutable", &g.unroutable, line);
    ORACLE(*p == '\n', "the port line goes on: %s", line);
    line = p = p + 1;

    field(&p, "peer", v, sizeof(v), line);
    ORACLE(strcmp(v, "1") == 0, "peer=%s", v);
    snprintf(want, sizeof(want), "127.0.0.1:%u", (unsigned)g.port1);
    field(&p, "addr", v, sizeof(v), line);
    ORACLE(strcmp(v, want) == 0, "addr=%s", v);
    field(&p, "state", v, sizeof(v), line);
    ORACLE(strcmp(v, "down") == 0, "state=%s after its connections closed: %s", v, line);
    field(&p, "rtt.us", v, sizeof(v), line);
    ORACLE(strcmp(v, "-1") == 0 || (v[0] >= '0' && v[0] <= '9'), "rtt.us=%s", v);
    counter(&p, "connects", &g.p_connects, line);
    ORACLE(g.p_connects == g.ups, "connects=%" PRIu64 " but %" PRIu64 " ups", g.p_connects, g.ups);
    counter(&p, "frames.in", &g.p_frames_in, line);
    counter(&p, "frames.out", &g.p_frames_out, line);
    counter(&p, "bytes.in", &g.p_bytes_in, line);
    counter(&p, "bytes.out", &g.p_bytes_out, line);
    ORACLE(number(&p, "queued", line) == 0, "queued while down: %s", line);
    counter(&p, "dropped", &g.p_dropped, line);
    counter(&p, "bad.frames", &g.p_bad_frames, line);
    counter(&p, "refusals", &g.p_refusals, line);
    /* The last field: error="TEXT" up to the end of the line. */
    ORACLE(strncmp(p, "error=\"", 7) == 0, "expected error=\"...\" in: %s", line);
    const char *text = p + 7, *nl = strchr(text, '\n');
    ORACLE(nl && nl > text && nl[-1] == '"' && nl[1] == '\0', "error=... does not end the line: %s",
           line);
    for (const char *q = text; q < nl; q++)
        ORACLE(*q >= 0x20 && *q <= 0x7e, "error=... has a control byte: %s", line);
    const char *quote = memchr(text, '"', (size_t)(nl - 1 - text));
    /* Fixed (tests/fuzz/README.md, "Findings"): a REFUSE sent by a
     * connection still in its handshake landed in the claimed peer's error,
     * quotes included; tests/fuzz/corpus/port/regress-refuse-quote replays it. */
    ORACLE(!quote, "a quote inside error=\"...\": %s", line);
    (void)g.quote_seen;
    free(buf);
}

/* ------------------------------------------------------------ canary */

/* A fresh, well-behaved node 1 still gets in and gets its PING answered. */
static void canary(void)
{
    uint64_t ups = g.ups;
    nsocks = 1;
    struct sock *s = &socks[0];
    sock_open(s, "127.0.0.1");
    add_hello(s);
    answer_hello_ok(s);
    struct wire_ping ping = {.nonce = g.inputs, .sent_ns = 1};
    ORACLE(wire_ping_encode(&g.wb, WIRE_PING, &ping) == 0, "wire_ping_encode");
    out_add(s, g.wb.p, g.wb.len);
    uint64_t start = now_ns();
    while (!s->dead && s->pongs == 0 && now_ns() - start < (uint64_t)STALL_MS * 1000000)
        run_until(W_SETTLED, s);
    ORACLE(!s->dead && s->pongs == 1 && g.ups == ups + 1,
           "canary: a well-behaved node 1 is no longer let in (dead %d, pongs %d, ups %" PRIu64
           " -> %" PRIu64 ")",
           s->dead, s->pongs, ups, g.ups);
    close_all(true);
    check_status();
}

/* ------------------------------------------------------------ the input */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g.started)
        start_node();
    g.inputs++;
    nsocks = 1;
    sock_open(&socks[0], "127.0.0.1");
    struct sock *cur = &socks[0];
    size_t i = 0;
    while (size - i >= 3) {
        uint8_t op = data[i];
        size_t n = (size_t)data[i + 1] | (size_t)data[i + 2] << 8;
        i += 3;
        if (n > size - i)
            n = size - i;
        const uint8_t *b = data + i;
        i += n;
        if (op <= WIRE_AUTH) {
            add_frame(cur, op, b, n);
        } else if (op >= 0x10 && op <= 0x10 + WIRE_AUTH) {
            /* The first byte says where the frame is cut in two reads. */
            size_t cut = n ? b[0] : 0;
            size_t at = cur->out_len;
            add_frame(cur, op - 0x10, n ? b + 1 : b, n ? n - 1 : 0);
            size_t whole = cur->out_len - at;
            uint8_t *rest = malloc(whole);
            ORACLE(rest != NULL, "out of memory");
            memcpy(rest, cur->out + at, whole);
            cur->out_len = at;
            if (cut > whole)
                cut = whole;
            out_add(cur, rest, cut);
            run_until(W_SETTLED, NULL);
            out_add(cur, rest + cut, whole - cut);
            free(rest);
        } else if (op == 0x40) {
            add_hello(cur);
        } else if (op == 0x41) {
            answer_hello_ok(cur);
        } else if (op == 0x42) {
            if (nsocks < FUZZ_SOCKS) {
                cur = &socks[nsocks++];
                sock_open(cur, n && (b[0] & 1) ? "127.0.0.2" : "127.0.0.1");
            }
        } else if (op == 0x43) {
            run_until(W_SETTLED, NULL);
        } else {
            add_raw(cur, b, n);
        }
    }
    add_raw(cur, data + i, size - i);
    run_until(W_SETTLED, NULL);
    int pongs = 0;
    for (int k = 0; k < nsocks; k++)
        pongs += socks[k].pongs;
    close_all(size % 2 == 0);
    ORACLE(g.ups == g.downs, "peer 1 still up after its connections closed");
    check_status();
    if (g.verbose)
        fprintf(report,
                "fuzz_port: input %" PRIu64 " (%zu bytes): ups %" PRIu64 " raft %" PRIu64
                " calls %" PRIu64 " refused %" PRIu64 " bad.frames %" PRIu64 "+%" PRIu64
                " pongs %d\n",
                g.inputs, size, g.ups, g.raft_msgs, g.calls, g.refused, g.bad_frames,
                g.p_bad_frames, pongs);
    if (g.inputs % CANARY_EVERY == 0)
        canary();
    return 0;
}
