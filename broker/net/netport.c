/*
 * netport — see netport.h.
 *
 * A connection's life (conn_set() is the one place its state changes):
 *   C_DIALING   outbound, TCP connect in progress
 *   C_HELLO     TCP up, handshake in progress (outbound: HELLO sent, waiting
 *               for HELLO_OK; inbound: waiting for HELLO)
 *   C_AUTH      inbound: HELLO_OK sent, waiting for the dialer's AUTH
 *   C_UP        handshake done: the peer's connection
 *   C_CLOSING   uv_close called; freed in its close callback
 * Edges: DIALING -> HELLO | CLOSING, HELLO -> AUTH | UP | CLOSING,
 * AUTH -> UP | CLOSING, UP -> CLOSING.
 *
 * THE HANDSHAKE (three frames, with or without cluster.secret)
 *   dialer -> HELLO     ids, cluster id, incarnations, auth flag, nonce Nd
 *   acceptor            refuses (and closes) a foreign cluster, an id that is
 *                       not configured or calls from another address, a
 *                       wrong direction, or an auth flag unlike its own;
 *                       else -> HELLO_OK: its own fields, nonce Na, and
 *                       MAC_k('A', HELLO body ++ HELLO_OK body before the mac)
 *   dialer              checks the acceptor's MAC (else closes: it does not
 *                       know the secret), -> AUTH: MAC_k('D', the same
 *                       transcript), and is up
 *   acceptor            checks the dialer's MAC (else refuses and closes);
 *                       only now does the connection become the peer's: an
 *                       older one is replaced, the incarnations are reported
 *                       and the peer is up.
 * k is the key of cluster.secret (auth.h), all zero without one.  Nothing of
 * the node's state is touched by a connection before its proof is checked,
 * and the nonces make every transcript new, so a recorded handshake
 * replays nothing.  Frames after the handshake are not authenticated (the
 * port is for a private network: see README).
 *
 * Reading is incremental: the 20-byte header is gathered first and checked,
 * then exactly `length` body bytes, then the checksum; a frame is dispatched
 * only whole and verified.
 */
#include "broker/net/netport.h"
#include "broker/log.h"
#include "broker/net/auth.h"
#include "broker/net/wire.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define TICK_MS          500
#define PING_MS          1000
#define SILENCE_MS       5000
#define HANDSHAKE_MS     5000
#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   5000
#define HELLO_MAX_BODY   1024
#define MAX_STRANGERS    64 /* inbound connections not identified yet */
#define MAX_RAFT_ENTRIES 65536

enum conn_state { C_DIALING, C_HELLO, C_AUTH, C_UP, C_CLOSING };

#define HS_MAX 128 /* a HELLO body (checked: HELLO_MAX_BODY would allow more) */

struct peer;

struct conn {
    struct netport *np;
    uv_tcp_t tcp;
    uv_connect_t connect;
    enum conn_state state;
    bool outbound;
    struct peer *peer; /* outbound: from the start; inbound: once authenticated */
    struct peer *claimed;        /* inbound, C_AUTH: who its HELLO says it is */
    struct wire_hello hello;     /* inbound, C_AUTH: that HELLO */
    uint8_t hs_d[HS_MAX], hs_a[HS_MAX]; /* the HELLO body, the HELLO_OK body before its mac */
    size_t hs_dlen, hs_alen;
    uint8_t hdr[WIRE_HDR];
    size_t hdr_got;
    struct wire_hdr h;
    uint8_t *body;
    size_t body_got;
    size_t queued; /* bytes handed to uv_write, not yet written */
    uint64_t since_ms, last_rx_ms, last_ping_ms;
    uint64_t ping_nonce, ping_ns; /* the last PING sent: only its PONG counts */
    struct conn *prev, *next;
};

struct peer {
    struct netport *np;
    struct mk_peer cfg;
    struct conn *conn; /* up, or (dialer) being set up */
    bool dialer;       /* we dial it (our id is lower) */
    uv_timer_t retry;
    uint64_t backoff_ms;
    /* counters for .cluster */
    uint64_t connects, frames_in, frames_out, bytes_in, bytes_out, bad_frames, dropped;
    uint64_t refusals; /* it refused us, or we refused it */
    int64_t rtt_us;    /* last ping round trip, -1 unknown */
    char last_error[96];
};

struct netport {
    uv_loop_t *loop;
    struct mk_config cfg;
    const struct mk_peer *self;
    uint64_t cluster;
    struct netport_ops ops;
    uv_tcp_t listener;
    uv_timer_t tick;
    struct peer peers[MK_MAX_PEERS];
    size_t npeers;
    struct conn *conns;
    size_t strangers;
    uint64_t refused, bad_frames, unroutable; /* unidentified senders */
    uint64_t ping_nonce;
    uint64_t stranger_events, stranger_log_ms;
    unsigned stranger_logged; /* lines since stranger_log_ms */
    char stranger_last[96];   /* the reason last logged */
    int open_handles;
    bool closing;
    struct wire_buf wb;
    uint8_t key[AUTH_KEY_BYTES]; /* cluster.secret's, or zero */
    bool has_key;
    uint8_t rbuf[64 << 10];
};

static uint64_t now_ms(const struct netport *np)
{
    return uv_now(np->loop);
}

static void np_handle_closed(struct netport *np);

/* ------------------------------------------------------------ peers */

static struct peer *peer_by_id(struct netport *np, uint32_t id)
{
    for (size_t i = 0; i < np->npeers; i++)
        if (np->peers[i].cfg.id == id)
            return &np->peers[i];
    return NULL;
}

/* The reason shown in .cluster (error="..."): quotes and backslashes,
 * which a peer's refusal text may carry, become ' and / so that the field
 * stays one quoted value. */
static void peer_error(struct peer *p, const char *fmt, const char *detail)
{
    snprintf(p->last_error, sizeof(p->last_error), fmt, detail);
    for (char *q = p->last_error; *q; q++)
        if (*q == '"')
            *q = '\'';
        else if (*q == '\\')
            *q = '/';
}

static void dial(struct peer *p);

static void on_retry(uv_timer_t *t)
{
    struct peer *p = t->data;
    if (!p->np->closing && !p->conn)
        dial(p);
}

static void schedule_retry(struct peer *p)
{
    if (p->np->closing || !p->dialer)
        return;
    uv_timer_start(&p->retry, on_retry, p->backoff_ms, 0);
    p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff_ms * 2;
}

/* ------------------------------------------------------------ connections */

static void conn_set(struct conn *c, enum conn_state to)
{
    enum conn_state from = c->state;
    assert((from == C_DIALING && (to == C_HELLO || to == C_CLOSING)) ||
           (from == C_HELLO && (to == C_AUTH || to == C_UP || to == C_CLOSING)) ||
           (from == C_AUTH && (to == C_UP || to == C_CLOSING)) ||
           (from == C_UP && to == C_CLOSING));
    (void)from;
    c->state = to;
}

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct netport *np = c->np;
    if (c->prev)
        c->prev->next = c->next;
    else
        np->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->body);
    free(c);
    np_handle_closed(np);
}

/* Closes c; `why` (may be NULL) is logged once, for this connection. */
static void conn_close(struct conn *c, const char *why)
{
    if (c->state == C_CLOSING)
        return;
    struct netport *np = c->np;
    struct peer *p = c->peer;
    bool was_up = c->state == C_UP;
    if (!c->outbound && !p)
        np->strangers--;
    conn_set(c, C_CLOSING);
    if (p && p->conn == c) {
        p->conn = NULL;
        /* Logged once: a peer that stays down fails the same way on every
         * retry. */
        if (why && strcmp(why, p->last_error) != 0) {
            mk_log(MK_WARN, "peer %" PRIu32 " (%s:%u): %s", p->cfg.id, p->cfg.host, p->cfg.port,
                   why);
            peer_error(p, "%s", why);
        }
        if (was_up && np->ops.peer)
            np->ops.peer(np->ops.ctx, p->cfg.id, false);
        schedule_retry(p);
    } else if (why && !p) {
        /* Strangers (scanners, garbage, refusals) are logged once per
         * reason, at most 8 lines a minute: a scanner repeating itself, or
         * a stranger varying its text, cannot fill the log. */
        np->stranger_events++;
        uint64_t now = now_ms(np);
        if (!np->stranger_log_ms || now - np->stranger_log_ms >= 60000) {
            np->stranger_log_ms = now;
            np->stranger_logged = 0;
            np->stranger_last[0] = '\0';
        }
        if (np->stranger_logged < 8 &&
            strncmp(why, np->stranger_last, sizeof(np->stranger_last) - 1) != 0) {
            np->stranger_logged++;
            snprintf(np->stranger_last, sizeof(np->stranger_last), "%s", why);
            mk_log(MK_WARN,
                   "cluster port: connection from an unidentified node: %s (%" PRIu64
                   " such events so far)",
                   why, np->stranger_events);
        }
    }
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static struct conn *conn_new(struct netport *np, bool outbound, struct peer *p)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->np = np;
    c->outbound = outbound;
    c->peer = p;
    c->state = outbound ? C_DIALING : C_HELLO;
    c->since_ms = c->last_rx_ms = now_ms(np);
    if (uv_tcp_init(np->loop, &c->tcp) < 0) {
        free(c);
        return NULL;
    }
    np->open_handles++;
    c->tcp.data = c;
    c->connect.data = c;
    c->next = np->conns;
    if (np->conns)
        np->conns->prev = c;
    np->conns = c;
    return c;
}

/* ------------------------------------------------------------ sending */

struct wreq {
    uv_write_t req;
    struct conn *c;
    size_t len;
    uint8_t data[];
};

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;
    c->queued -= w->len;
    if (status < 0 && status != UV_ECANCELED)
        conn_close(c, uv_strerror(status));
    free(w);
}

/* Sends the frame in np->wb on c. */
static int send_frame(struct conn *c)
{
    struct netport *np = c->np;
    size_t len = np->wb.len;
    if (c->state == C_CLOSING || c->state == C_DIALING)
        return -ENOTCONN;
    if (c->queued + len > NETPORT_MAX_QUEUED) {
        if (c->peer)
            c->peer->dropped++;
        return -ENOBUFS;
    }
    struct wreq *w = malloc(sizeof(*w) + len);
    if (!w)
        return -ENOMEM;
    w->c = c;
    w->len = len;
    memcpy(w->data, np->wb.p, len);
    uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written);
    if (rc < 0) {
        free(w);
        conn_close(c, uv_strerror(rc));
        return rc;
    }
    c->queued += len;
    if (c->peer) {
        c->peer->frames_out++;
        c->peer->bytes_out += len;
    }
    return 0;
}

int netport_send_raft(struct netport *np, uint32_t to, uint64_t group, const struct raft_msg *m)
{
    struct peer *p = peer_by_id(np, to);
    if (!p || !p->conn || p->conn->state != C_UP)
        return -ENOTCONN;
    int rc = wire_raft_encode(&np->wb, group, m);
    return rc < 0 ? rc : send_frame(p->conn);
}

int netport_send_call(struct netport *np, uint32_t to, const struct wire_call *call)
{
    struct peer *p = peer_by_id(np, to);
    if (!p || !p->conn || p->conn->state != C_UP)
        return -ENOTCONN;
    int rc = wire_call_encode(&np->wb, call);
    return rc < 0 ? rc : send_frame(p->conn);
}

bool netport_connected(const struct netport *np, uint32_t id)
{
    for (size_t i = 0; i < np->npeers; i++)
        if (np->peers[i].cfg.id == id)
            return np->peers[i].conn && np->peers[i].conn->state == C_UP;
    return false;
}

/* Sends HELLO (dialer) or HELLO_OK (acceptor, after c->hs_d is set) and
 * keeps the body that the proofs cover. */
static void send_hello(struct conn *c, enum wire_type t, uint32_t to)
{
    struct netport *np = c->np;
    struct wire_hello h = {.cluster_id = np->cluster,
                           .from = np->cfg.node_id,
                           .to = to,
                           .max_version = WIRE_VERSION,
                           .incarnation = np->ops.incarnation,
                           .known = np->ops.known ? np->ops.known(np->ops.ctx, to) : 0,
                           .auth = np->has_key};
    auth_nonce(h.nonce, sizeof(h.nonce));
    if (wire_hello_encode(&np->wb, t, &h) < 0)
        return;
    size_t body = np->wb.len - WIRE_HDR;
    if (t == WIRE_HELLO) {
        memcpy(c->hs_d, np->wb.p + WIRE_HDR, body);
        c->hs_dlen = body;
    } else {
        /* The proof covers the body up to the mac itself. */
        c->hs_alen = body - WIRE_MAC_BYTES;
        memcpy(c->hs_a, np->wb.p + WIRE_HDR, c->hs_alen);
        auth_mac(np->key, AUTH_ACCEPTOR, c->hs_d, c->hs_dlen, c->hs_a, c->hs_alen, h.mac);
        if (wire_hello_encode(&np->wb, t, &h) < 0)
            return;
    }
    send_frame(c);
}

static void refuse(struct conn *c, uint8_t reason, const char *text)
{
    struct netport *np = c->np;
    np->refused++;
    if (c->peer)
        c->peer->refusals++;
    if (wire_refuse_encode(&np->wb, reason, text) == 0)
        send_frame(c);
    conn_close(c, text);
}

/* ------------------------------------------------------------ receiving */

static void up(struct conn *c, const struct wire_hello *h)
{
    struct netport *np = c->np;
    struct peer *p = c->peer;
    conn_set(c, C_UP);
    if (np->ops.hello)
        np->ops.hello(np->ops.ctx, p->cfg.id, h->incarnation, h->known);
    p->connects++;
    p->backoff_ms = BACKOFF_MIN_MS;
    p->last_error[0] = '\0';
    mk_log(MK_INFO, "peer %" PRIu32 " (%s:%u): connected", p->cfg.id, p->cfg.host, p->cfg.port);
    if (np->ops.peer)
        np->ops.peer(np->ops.ctx, p->cfg.id, true);
}

/* Whether c comes from p's configured address (a dialer binds its own peer
 * address before it connects).  Not proof of identity: anyone on that host
 * can use the address; cluster.secret (issue 8) will be. */
static bool from_its_address(struct conn *c, const struct peer *p)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[INET6_ADDRSTRLEN];
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family != AF_INET ||
        uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host)) < 0)
        return false;
    return strcmp(host, p->cfg.host) == 0;
}

/* An inbound HELLO (body: its raw bytes): who is it, and is it one of ours?
 * Only checked here; the connection becomes the peer's once its AUTH is. */
static void on_hello(struct conn *c, const struct wire_hello *h, const uint8_t *body, size_t len)
{
    struct netport *np = c->np;
    char why[160];
    struct peer *p = peer_by_id(np, h->from);
    if (h->cluster_id != np->cluster) {
        snprintf(why, sizeof(why),
                 "refused node %" PRIu32 ": cluster %016" PRIx64 ", not ours (%016" PRIx64 ")",
                 h->from, h->cluster_id, np->cluster);
        refuse(c, WIRE_REFUSE_CLUSTER, why);
        return;
    }
    if (p && !from_its_address(c, p)) {
        snprintf(why, sizeof(why),
                 "refused node %" PRIu32 ": it called from another address than %s", h->from,
                 p->cfg.host);
        refuse(c, WIRE_REFUSE_NODE, why);
        return;
    }
    if (!p || h->to != np->cfg.node_id || h->from >= np->cfg.node_id) {
        snprintf(why, sizeof(why), "refused node %" PRIu32 ": %s", h->from,
                 !p                         ? "not a configured peer"
                 : h->to != np->cfg.node_id ? "it wants another node"
                                            : "it should wait for our call");
        refuse(c, WIRE_REFUSE_NODE, why);
        return;
    }
    if (h->auth != np->has_key) {
        snprintf(why, sizeof(why), "refused node %" PRIu32 ": %s", h->from,
                 np->has_key ? "it has no cluster.secret, we have one"
                             : "it has a cluster.secret, we have none");
        refuse(c, WIRE_REFUSE_AUTH, why);
        return;
    }
    if (len > HS_MAX) {
        refuse(c, WIRE_REFUSE_VERSION, "refused: a HELLO longer than this version's");
        return;
    }
    memcpy(c->hs_d, body, len);
    c->hs_dlen = len;
    c->claimed = p;
    c->hello = *h;
    conn_set(c, C_AUTH);
    send_hello(c, WIRE_HELLO_OK, h->from);
}

/* The dialer's AUTH: with a valid proof the connection becomes p's. */
static void on_auth(struct conn *c, const uint8_t mac[WIRE_MAC_BYTES])
{
    struct netport *np = c->np;
    struct peer *p = c->claimed;
    if (!auth_check(np->key, AUTH_DIALER, c->hs_d, c->hs_dlen, c->hs_a, c->hs_alen, mac)) {
        char why[120];
        snprintf(why, sizeof(why), "refused node %" PRIu32 ": %s", p->cfg.id,
                 np->has_key ? "its proof does not match our cluster.secret"
                             : "its proof does not match the handshake");
        refuse(c, WIRE_REFUSE_AUTH, why);
        return;
    }
    np->strangers--;
    c->peer = p;
    if (p->conn && p->conn != c) /* it restarted, or the old one died unseen */
        conn_close(p->conn, "replaced by a new connection from it");
    p->conn = c;
    up(c, &c->hello);
}

static void dispatch(struct conn *c)
{
    struct netport *np = c->np;
    const uint8_t *body = c->body;
    size_t len = c->h.length;
    struct peer *p = c->peer;
    int rc = 0;
    if (p && p->conn == c) {
        p->frames_in++;
        p->bytes_in += WIRE_HDR + len;
    }
    switch (c->state == C_UP ? 0 : c->outbound ? 1 : 2) {
    case 2: { /* inbound handshake */
        struct wire_hello h;
        uint8_t mac[WIRE_MAC_BYTES];
        if (c->state == C_AUTH) {
            struct wire_refuse r;
            if (c->h.type == WIRE_REFUSE && wire_refuse_decode(body, len, &r) == 0) {
                /* The dialer found our proof wrong (our secret differs), or
                 * says so: it proved nothing either, so this is a
                 * stranger's word, logged as such (once per reason, at
                 * most 8 lines a minute) and kept out of the peer's status. */
                char why[300];
                snprintf(why, sizeof(why), "it refused us: %s", r.text);
                conn_close(c, why);
                return;
            }
            if (c->h.type != WIRE_AUTH || wire_auth_decode(body, len, mac) < 0)
                goto bad;
            on_auth(c, mac);
            return;
        }
        if (c->h.type != WIRE_HELLO || wire_hello_decode(body, len, WIRE_HELLO, &h) < 0)
            goto bad;
        on_hello(c, &h, body, len);
        return;
    }
    case 1: { /* outbound handshake */
        struct wire_hello h;
        struct wire_refuse r;
        if (c->h.type == WIRE_REFUSE && wire_refuse_decode(body, len, &r) == 0) {
            p->refusals++;
            p->backoff_ms = BACKOFF_MAX_MS;
            char why[300];
            snprintf(why, sizeof(why), "it refused us: %s", r.text);
            conn_close(c, why);
            return;
        }
        if (c->h.type != WIRE_HELLO_OK || wire_hello_decode(body, len, WIRE_HELLO_OK, &h) < 0)
            goto bad;
        if (h.cluster_id != np->cluster || h.from != p->cfg.id || h.to != np->cfg.node_id) {
            p->refusals++;
            conn_close(c, "its HELLO_OK names another cluster or node");
            return;
        }
        c->hs_alen = len - WIRE_MAC_BYTES;
        if (h.auth != np->has_key ||
            !auth_check(np->key, AUTH_ACCEPTOR, c->hs_d, c->hs_dlen, body, c->hs_alen, h.mac)) {
            /* Said to it too, so that its log tells why (it may be ours
             * with a wrong secret file). */
            char why[120];
            snprintf(why, sizeof(why), "refused node %" PRIu32 ": %s", p->cfg.id,
                     np->has_key ? "its proof does not match our cluster.secret"
                                 : "its proof does not match the handshake");
            p->backoff_ms = BACKOFF_MAX_MS;
            refuse(c, WIRE_REFUSE_AUTH, why);
            return;
        }
        memcpy(c->hs_a, body, c->hs_alen);
        uint8_t mac[WIRE_MAC_BYTES];
        auth_mac(np->key, AUTH_DIALER, c->hs_d, c->hs_dlen, c->hs_a, c->hs_alen, mac);
        if (wire_auth_encode(&np->wb, mac) < 0 || send_frame(c) < 0)
            return;
        up(c, &h);
        return;
    }
    }
    switch (c->h.type) {
    case WIRE_PING:
    case WIRE_PONG: {
        struct wire_ping ping;
        if (wire_ping_decode(body, len, &ping) < 0)
            goto bad;
        if (c->h.type == WIRE_PING) {
            if (wire_ping_encode(&np->wb, WIRE_PONG, &ping) == 0)
                send_frame(c);
        } else if (ping.nonce == c->ping_nonce && ping.sent_ns == c->ping_ns) {
            p->rtt_us = (int64_t)((uv_hrtime() - c->ping_ns) / 1000);
        }
        return;
    }
    case WIRE_RAFT: {
        struct raft_msg m;
        struct raft_entry *es;
        uint64_t group;
        rc = wire_raft_decode(body, len, MAX_RAFT_ENTRIES, &group, &m, &es);
        if (rc == -ENOMEM)
            return; /* dropped: Raft resends */
        if (rc == 0 && (m.from != p->cfg.id || m.to != np->cfg.node_id)) {
            free(es);
            rc = -EBADMSG;
        }
        if (rc < 0)
            goto bad;
        if (np->ops.raft)
            np->ops.raft(np->ops.ctx, p->cfg.id, group, &m);
        else
            np->unroutable++;
        free(es);
        return;
    }
    case WIRE_CALL: {
        struct wire_call call;
        rc = wire_call_decode(body, len, &call);
        if (rc == -ENOMEM)
            return; /* dropped: the caller's timeout retries */
        if (rc < 0)
            goto bad;
        if (np->ops.call)
            np->ops.call(np->ops.ctx, p->cfg.id, &call);
        else
            np->unroutable++;
        wire_call_free(&call);
        return;
    }
    default:
        goto bad;
    }
bad:
    if (p)
        p->bad_frames++;
    else
        np->bad_frames++;
    conn_close(c, "bad frame: connection closed");
}

/* Feeds n received bytes through the frame reader; stops once c closes. */
static void feed(struct conn *c, const uint8_t *data, size_t n)
{
    struct netport *np = c->np;
    while (n > 0 && c->state != C_CLOSING) {
        if (c->hdr_got < WIRE_HDR) {
            size_t k = WIRE_HDR - c->hdr_got < n ? WIRE_HDR - c->hdr_got : n;
            memcpy(c->hdr + c->hdr_got, data, k);
            c->hdr_got += k;
            data += k;
            n -= k;
            if (c->hdr_got < WIRE_HDR)
                return;
            int rc = wire_hdr_decode(c->hdr, &c->h);
            if (rc == 0 && c->state != C_UP && c->h.length > HELLO_MAX_BODY)
                rc = -EBADMSG;
            if (rc == 0 && (c->body = malloc(c->h.length ? c->h.length : 1)) == NULL)
                rc = -ENOMEM;
            if (rc < 0) {
                if (c->peer)
                    c->peer->bad_frames++;
                else
                    np->bad_frames++;
                conn_close(c, rc == -EPROTO   ? "bad frame (unknown version): connection closed"
                              : rc == -ENOMEM ? "out of memory for a frame"
                                              : "bad frame header: connection closed");
                return;
            }
            c->body_got = 0;
        }
        size_t k = c->h.length - c->body_got < n ? c->h.length - c->body_got : n;
        memcpy(c->body + c->body_got, data, k);
        c->body_got += k;
        data += k;
        n -= k;
        if (c->body_got < c->h.length)
            return;
        bool ok = wire_check(c->hdr, &c->h, c->body);
        c->hdr_got = 0;
        if (!ok) {
            if (c->peer)
                c->peer->bad_frames++;
            else
                np->bad_frames++;
            conn_close(c, "bad frame checksum: connection closed");
        } else {
            c->last_rx_ms = now_ms(np);
            dispatch(c);
        }
        free(c->body);
        c->body = NULL;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = h->data;
    *buf = uv_buf_init((char *)c->np->rbuf, sizeof(c->np->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? "connection closed by the peer" : uv_strerror((int)nread));
        return;
    }
    feed(c, (const uint8_t *)buf->base, (size_t)nread);
}

/* ------------------------------------------------------------ dialing */

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->state == C_CLOSING)
        return;
    if (status < 0) {
        conn_close(c, uv_strerror(status));
        return;
    }
    conn_set(c, C_HELLO);
    c->since_ms = c->last_rx_ms = now_ms(c->np);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    send_hello(c, WIRE_HELLO, c->peer->cfg.id);
}

static void dial(struct peer *p)
{
    struct netport *np = p->np;
    struct conn *c = conn_new(np, true, p);
    if (!c) {
        schedule_retry(p);
        return;
    }
    p->conn = c;
    struct sockaddr_in src, dst;
    uv_ip4_addr(np->self->host, 0, &src);
    uv_ip4_addr(p->cfg.host, p->cfg.port, &dst);
    int rc = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
    if (rc == 0)
        rc = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&dst, on_connect);
    if (rc < 0)
        conn_close(c, uv_strerror(rc));
    else
        uv_tcp_nodelay(&c->tcp, 1);
}

/* ------------------------------------------------------------ accepting */

static void on_connection(uv_stream_t *server, int status)
{
    struct netport *np = server->data;
    if (status < 0 || np->closing)
        return;
    struct conn *c = conn_new(np, false, NULL);
    if (!c)
        return;
    np->strangers++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || np->strangers > MAX_STRANGERS) {
        conn_close(c, np->strangers > MAX_STRANGERS ? "too many unidentified connections" : NULL);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ------------------------------------------------------------ the tick */

static void on_tick(uv_timer_t *t)
{
    struct netport *np = t->data;
    uint64_t now = now_ms(np);
    for (struct conn *c = np->conns, *next; c; c = next) {
        next = c->next;
        if ((c->state == C_HELLO || c->state == C_AUTH) && now - c->since_ms > HANDSHAKE_MS) {
            conn_close(c, "no handshake within 5 s");
        } else if (c->state == C_UP && now - c->last_rx_ms > SILENCE_MS) {
            conn_close(c, "silent for 5 s: connection closed");
        } else if (c->state == C_UP && now - c->last_ping_ms >= PING_MS) {
            struct wire_ping p = {.nonce = ++np->ping_nonce, .sent_ns = uv_hrtime()};
            c->ping_nonce = p.nonce;
            c->ping_ns = p.sent_ns;
            c->last_ping_ms = now;
            if (wire_ping_encode(&np->wb, WIRE_PING, &p) == 0)
                send_frame(c);
        }
    }
}

/* ------------------------------------------------------------ open/close */

uint64_t netport_cluster_id(const struct mk_config *cfg)
{
    /* Sorted by id, so the order of the options does not matter. */
    const struct mk_peer *sorted[MK_MAX_PEERS];
    size_t n = cfg->npeers;
    for (size_t i = 0; i < n; i++)
        sorted[i] = &cfg->peers[i];
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && sorted[j - 1]->id > sorted[j]->id; j--) {
            const struct mk_peer *t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    char text[MK_MAX_PEERS * 40];
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%" PRIu32 "@%s:%u\n",
                                sorted[i]->id, sorted[i]->host, sorted[i]->port);
    return XXH3_64bits(text, len);
}

/* Every handle (listener, tick, retry timers, connections) is counted in
 * open_handles; the netport is freed when the last one has closed. */
static void np_handle_closed(struct netport *np)
{
    if (--np->open_handles == 0 && np->closing) {
        wire_buf_free(&np->wb);
        sodium_memzero(np->key, sizeof(np->key));
        free(np);
    }
}

static void on_np_handle_closed(uv_handle_t *h)
{
    np_handle_closed(h->data);
}

static void on_peer_timer_closed(uv_handle_t *h)
{
    struct peer *p = h->data;
    np_handle_closed(p->np);
}

int netport_open(struct netport **out, uv_loop_t *loop, const struct mk_config *cfg,
                 uint64_t cluster_id, const struct netport_ops *ops)
{
    struct netport *np = calloc(1, sizeof(*np));
    if (!np)
        return -ENOMEM;
    np->loop = loop;
    np->cfg = *cfg;
    np->cluster = cluster_id;
    np->ops = *ops;
    np->self = cfg_peer(&np->cfg, cfg->node_id);
    if (!np->self) {
        free(np);
        return -EINVAL;
    }
    np->has_key = cfg->has_key;
    if (cfg->has_key)
        memcpy(np->key, cfg->key, AUTH_KEY_BYTES);
    memset(np->cfg.key, 0, sizeof(np->cfg.key)); /* one copy of the key is enough */
    const struct mk_peer *at = cfg->listen.port ? &cfg->listen : np->self;
    struct sockaddr_in addr;
    uv_ip4_addr(at->host, at->port, &addr);
    uv_tcp_init(loop, &np->listener);
    np->listener.data = np;
    np->open_handles++;
    int rc = uv_tcp_bind(&np->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&np->listener, 64, on_connection);
    if (rc < 0) {
        np->closing = true;
        uv_close((uv_handle_t *)&np->listener, on_np_handle_closed);
        return rc;
    }
    uv_timer_init(loop, &np->tick);
    np->tick.data = np;
    np->open_handles++;
    uv_timer_start(&np->tick, on_tick, TICK_MS, TICK_MS);
    for (size_t i = 0; i < cfg->npeers; i++) {
        if (cfg->peers[i].id == cfg->node_id)
            continue;
        struct peer *p = &np->peers[np->npeers++];
        p->np = np;
        p->cfg = cfg->peers[i];
        p->dialer = cfg->node_id < p->cfg.id;
        p->backoff_ms = BACKOFF_MIN_MS;
        p->rtt_us = -1;
        uv_timer_init(loop, &p->retry);
        p->retry.data = p;
        np->open_handles++;
        if (p->dialer)
            dial(p);
    }
    *out = np;
    return 0;
}

void netport_close(struct netport *np)
{
    if (np->closing)
        return;
    np->closing = true;
    for (struct conn *c = np->conns, *next; c; c = next) {
        next = c->next;
        conn_close(c, NULL);
    }
    for (size_t i = 0; i < np->npeers; i++)
        uv_close((uv_handle_t *)&np->peers[i].retry, on_peer_timer_closed);
    uv_close((uv_handle_t *)&np->tick, on_np_handle_closed);
    uv_close((uv_handle_t *)&np->listener, on_np_handle_closed);
}

/* ------------------------------------------------------------ status */

void netport_status(const struct netport *np, FILE *f)
{
    fprintf(f,
            "port=%s:%u listen=%s:%u secret=%s cluster.id=%016" PRIx64 " refused=%" PRIu64
            " bad.frames=%" PRIu64 " unroutable=%" PRIu64 "\n",
            np->self->host, np->self->port,
            np->cfg.listen.port ? np->cfg.listen.host : np->self->host,
            np->cfg.listen.port ? np->cfg.listen.port : np->self->port,
            np->has_key ? "yes" : "no", np->cluster, np->refused, np->bad_frames, np->unroutable);
    for (size_t i = 0; i < np->npeers; i++) {
        const struct peer *p = &np->peers[i];
        const char *state = !p->conn ? "down" : p->conn->state == C_UP ? "connected" : "connecting";
        fprintf(f,
                "peer=%" PRIu32 " addr=%s:%u state=%s rtt.us=%" PRId64 " connects=%" PRIu64
                " frames.in=%" PRIu64 " frames.out=%" PRIu64 " bytes.in=%" PRIu64
                " bytes.out=%" PRIu64 " queued=%zu dropped=%" PRIu64 " bad.frames=%" PRIu64
                " refusals=%" PRIu64 " error=\"%s\"\n",
                p->cfg.id, p->cfg.host, p->cfg.port, state, p->rtt_us, p->connects, p->frames_in,
                p->frames_out, p->bytes_in, p->bytes_out, p->conn ? p->conn->queued : (size_t)0,
                p->dropped, p->bad_frames, p->refusals, p->last_error);
    }
}
