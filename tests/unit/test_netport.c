/*
 * test_netport — the cluster port over real loopback sockets on a real libuv
 * loop: two (or three) nodes in one process connect, carry Raft messages
 * both ways, refuse foreign clusters and unknown nodes, survive garbage
 * (closing only the connection it came on, counted), reconnect after a
 * restart, and bound what waits for a peer that stops reading.
 */
#include "broker/net/auth.h"
#include "broker/net/netport.h"
#include "broker/net/wire.h"

#include <arpa/inet.h>
#include "tests/unit/helpers.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uv_loop_t loop;
static uint16_t base_port;

struct node {
    struct netport *np;
    struct mk_config cfg;
    int ups, downs, hellos;
    int msgs;
    uint64_t last_group, last_term;
    uint32_t last_from;
    size_t last_entries;
    char last_payload[64];
};
static struct node nodes[4];

static void on_raft(void *ctx, uint32_t from, uint64_t group, const struct raft_msg *m)
{
    struct node *n = ctx;
    n->msgs++;
    n->last_from = from;
    n->last_group = group;
    n->last_term = m->term;
    n->last_entries = m->n_entries;
    if (m->n_entries && m->entries[0].len < sizeof(n->last_payload)) {
        memcpy(n->last_payload, m->entries[0].buf, m->entries[0].len);
        n->last_payload[m->entries[0].len] = '\0';
    }
}

static void on_hello(void *ctx, uint32_t id, uint64_t incarnation, uint64_t knew_us)
{
    (void)id;
    (void)incarnation;
    (void)knew_us;
    struct node *n = ctx;
    n->hellos++;
}

static void on_peer(void *ctx, uint32_t id, bool up)
{
    (void)id;
    struct node *n = ctx;
    if (up)
        n->ups++;
    else
        n->downs++;
}

/* Node i of a cluster of `count` on 127.0.0.1, ports base_port + id. */
static void config(int i, int count)
{
    struct mk_config *c = &nodes[i].cfg;
    cfg_defaults(c);
    c->node_id = (uint32_t)i;
    for (int k = 1; k <= count; k++) {
        char v[64];
        snprintf(v, sizeof(v), "%d@127.0.0.1:%u", k, (unsigned)(base_port + k));
        cr_assert_eq(cfg_set(c, "peer", v, NULL), 0);
    }
}

static void start(int i, uint64_t cluster)
{
    struct netport_ops ops = {
        .ctx = &nodes[i], .raft = on_raft, .peer = on_peer, .hello = on_hello};
    cr_assert_eq(netport_open(&nodes[i].np, &loop, &nodes[i].cfg, cluster, &ops), 0);
}

static void stop(int i)
{
    netport_close(nodes[i].np);
    nodes[i].np = NULL;
}

static void setup(void)
{
    /* As the daemon (main.c): a write to a peer that just closed is EPIPE,
     * not a signal that kills the process. */
    signal(SIGPIPE, SIG_IGN);
    memset(nodes, 0, sizeof(nodes));
    cr_assert_eq(uv_loop_init(&loop), 0);
    base_port = th_free_ports(9);
}

static void teardown(void)
{
    for (int i = 0; i < 4; i++)
        if (nodes[i].np)
            stop(i);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
}

TestSuite(netport, .init = setup, .fini = teardown, .timeout = 30);

#define RUN_UNTIL(secs, cond) TH_RUN_UNTIL(&loop, secs, cond)

static void run_for_ms(int ms)
{
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000ull;
    while (uv_hrtime() < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static int send_append(int from, int to, uint64_t group, const char *text)
{
    struct raft_entry e = {.term = 4, .index = 10, .buf = text, .len = strlen(text)};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = (uint64_t)from,
                         .to = (uint64_t)to,
                         .term = 4,
                         .index = 9,
                         .entries = &e,
                         .n_entries = 1};
    return netport_send_raft(nodes[from].np, (uint32_t)to, group, &m);
}

static char *status(int i)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    netport_status(nodes[i].np, f);
    fclose(f);
    return buf;
}

static bool status_has(int i, const char *text)
{
    char *s = status(i);
    bool ok = strstr(s, text) != NULL;
    free(s);
    return ok;
}

/* A raw TCP connection to node i's port. */
static int raw_connect(int i)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(base_port + i)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Reads one whole frame from fd into buf (running the loop meanwhile, so
 * that the node under test answers); its type, or -1 if fd closed or 5 s
 * passed. */
static int raw_read_frame(int fd, uint8_t *buf, size_t cap, size_t *len)
{
    size_t got = 0, want = WIRE_HDR;
    uint64_t end = uv_hrtime() + 5000000000ull;
    struct wire_hdr h = {0};
    while (got < want && uv_hrtime() < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 1) <= 0)
            continue;
        ssize_t r = recv(fd, buf + got, want - got, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN))
            return -1;
        if (r > 0)
            got += (size_t)r;
        if (got == WIRE_HDR && want == WIRE_HDR) {
            cr_assert_eq(wire_hdr_decode(buf, &h), 0);
            cr_assert_leq(WIRE_HDR + h.length, cap);
            want = WIRE_HDR + h.length;
        }
    }
    if (got < want)
        return -1;
    *len = got;
    return h.type;
}

/* Connects to node `to` and plays node `from` of cluster `id` through the
 * handshake with `key` (NULL: no secret): HELLO, then, if the node answers
 * HELLO_OK, the AUTH it asks for (with a wrong proof if `bad_proof`).  b is
 * the caller's frame buffer, reused afterwards.  Returns the socket. */
static int raw_handshake(struct wire_buf *b, int to, uint64_t id, uint32_t from,
                         const uint8_t *key, bool bad_proof)
{
    int fd = raw_connect(to);
    struct wire_hello h = {.cluster_id = id,
                           .from = from,
                           .to = (uint32_t)to,
                           .max_version = WIRE_VERSION,
                           .incarnation = 7,
                           .auth = key != NULL};
    cr_assert_eq(wire_hello_encode(b, WIRE_HELLO, &h), 0);
    uint8_t hs_d[128];
    size_t dlen = b->len - WIRE_HDR;
    memcpy(hs_d, b->p + WIRE_HDR, dlen);
    cr_assert_eq(write(fd, b->p, b->len), (ssize_t)b->len);
    uint8_t f[512];
    size_t n;
    if (raw_read_frame(fd, f, sizeof(f), &n) != WIRE_HELLO_OK)
        return fd; /* refused: the caller checks how */
    uint8_t zero[AUTH_KEY_BYTES] = {0}, mac[AUTH_MAC_BYTES];
    auth_mac(key ? key : zero, AUTH_DIALER, hs_d, dlen, f + WIRE_HDR, n - WIRE_HDR - AUTH_MAC_BYTES,
             mac);
    if (bad_proof)
        mac[0] ^= 1;
    cr_assert_eq(wire_auth_encode(b, mac), 0);
    cr_assert_eq(write(fd, b->p, b->len), (ssize_t)b->len);
    return fd;
}

static int raw_hello(struct wire_buf *b, int to, uint64_t id, uint32_t from)
{
    return raw_handshake(b, to, id, from, NULL, false);
}

/* Whether the other side closed fd (runs the loop meanwhile). */
static bool closed_by_peer(int fd)
{
    char b[256];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    uv_run(&loop, UV_RUN_NOWAIT);
    if (poll(&p, 1, 0) <= 0)
        return false;
    ssize_t r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

/* ------------------------------------------------------------ tests */

Test(netport, two_nodes_connect_and_carry_raft_messages_both_ways)
{
    config(1, 2);
    config(2, 2);
    start(1, 77);
    start(2, 77);
    RUN_UNTIL(5, netport_connected(nodes[1].np, 2) && netport_connected(nodes[2].np, 1));
    cr_assert_eq(nodes[1].ups, 1);
    cr_assert_eq(nodes[2].ups, 1);
    cr_assert_eq(send_append(1, 2, 0x100000002ull, "hello from 1"), 0);
    cr_assert_eq(send_append(2, 1, 7, "and from 2"), 0);
    RUN_UNTIL(5, nodes[2].msgs == 1 && nodes[1].msgs == 1);
    cr_assert_eq(nodes[2].last_from, 1);
    cr_assert_eq(nodes[2].last_group, 0x100000002ull);
    cr_assert_eq(nodes[2].last_term, 4);
    cr_assert_eq(nodes[2].last_entries, 1);
    cr_assert_str_eq(nodes[2].last_payload, "hello from 1");
    cr_assert_str_eq(nodes[1].last_payload, "and from 2");
    cr_assert(status_has(1, "peer=2 addr=127.0.0.1:"));
    cr_assert(status_has(1, "state=connected"));
}

Test(netport, sending_to_a_peer_that_is_down_is_enotconn)
{
    config(1, 2);
    start(1, 77);
    cr_assert_eq(send_append(1, 2, 1, "x"), -ENOTCONN);
    run_for_ms(300);
    cr_assert(status_has(1, "state=down"), "%s", status(1));
}

Test(netport, a_foreign_cluster_is_refused)
{
    config(1, 2);
    config(2, 2);
    start(1, 77);
    start(2, 78);
    RUN_UNTIL(5, status_has(1, "refusals=1") && status_has(2, "refused=1"));
    run_for_ms(300);
    cr_assert_not(netport_connected(nodes[1].np, 2));
    cr_assert_not(netport_connected(nodes[2].np, 1));
    cr_assert_eq(nodes[1].ups + nodes[2].ups, 0);
    cr_assert(status_has(1, "it refused us"), "%s", status(1));
}

Test(netport, a_node_that_is_not_configured_is_refused)
{
    /* A HELLO of the right cluster from node 9, which node 2 does not know. */
    config(2, 2);
    uint64_t id = 77;
    start(2, id);
    int fd = raw_connect(2);
    struct wire_buf b = {0};
    struct wire_hello h = {
        .cluster_id = id, .from = 9, .to = 2, .max_version = WIRE_VERSION, .incarnation = 7};
    cr_assert_eq(wire_hello_encode(&b, WIRE_HELLO, &h), 0);
    cr_assert_eq(write(fd, b.p, b.len), (ssize_t)b.len);
    RUN_UNTIL(5, closed_by_peer(fd));
    cr_assert(status_has(2, "refused=1"), "%s", status(2));
    close(fd);
    wire_buf_free(&b);
}

Test(netport, garbage_closes_only_its_connection_and_is_counted)
{
    config(1, 2);
    config(2, 2);
    start(1, 77);
    start(2, 77);
    RUN_UNTIL(5, netport_connected(nodes[1].np, 2));
    const char *junk[] = {"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                          "MKP1\x01\x06\x00\x00\xff\xff\xff\x7f" /* a 2 GiB body */
                          "\x00\x00\x00\x00\x00\x00\x00\x00"};
    size_t lens[] = {27, 20};
    for (int k = 0; k < 2; k++) {
        int fd = raw_connect(2);
        cr_assert_eq(write(fd, junk[k], lens[k]), (ssize_t)lens[k]);
        RUN_UNTIL(5, closed_by_peer(fd));
        close(fd);
    }
    /* Both refused at the header, before any body was reserved. */
    cr_assert(status_has(2, "bad.frames=2"), "%s", status(2));
    /* The real peer connection was not touched. */
    cr_assert(netport_connected(nodes[1].np, 2));
    cr_assert_eq(send_append(1, 2, 3, "still here"), 0);
    RUN_UNTIL(5, nodes[2].msgs == 1);
}

Test(netport, a_bad_checksum_from_a_peer_closes_that_connection_and_it_reconnects)
{
    config(1, 2);
    config(2, 2);
    start(2, 77);
    /* Play node 1 by hand: handshake, then a frame with one flipped byte. */
    struct wire_buf b = {0};
    int fd = raw_hello(&b, 2, 77, 1);
    RUN_UNTIL(5, nodes[2].ups == 1);
    struct wire_ping p = {1, 2};
    cr_assert_eq(wire_ping_encode(&b, WIRE_PING, &p), 0);
    b.p[b.len - 1] ^= 1;
    cr_assert_eq(write(fd, b.p, b.len), (ssize_t)b.len);
    RUN_UNTIL(5, closed_by_peer(fd));
    RUN_UNTIL(5, nodes[2].downs == 1);
    cr_assert(status_has(2, "bad.frames=1"), "%s", status(2));
    close(fd);
    wire_buf_free(&b);
    /* The real node 1 connects fine afterwards. */
    start(1, 77);
    RUN_UNTIL(5, netport_connected(nodes[2].np, 1));
}

Test(netport, a_restarted_peer_is_reconnected)
{
    config(1, 2);
    config(2, 2);
    start(1, 77);
    start(2, 77);
    RUN_UNTIL(5, netport_connected(nodes[1].np, 2));
    stop(2);
    RUN_UNTIL(5, nodes[1].downs == 1);
    start(2, 77);
    RUN_UNTIL(10, netport_connected(nodes[1].np, 2) && netport_connected(nodes[2].np, 1));
    cr_assert(status_has(1, "connects=2"), "%s", status(1));
    cr_assert_eq(send_append(1, 2, 1, "again"), 0);
    RUN_UNTIL(5, nodes[2].msgs == 1);
}

Test(netport, a_peer_that_stops_reading_gets_a_bounded_queue)
{
    config(2, 2);
    start(2, 77);
    /* Node 1 played by hand: it handshakes, then never reads. */
    struct wire_buf b = {0};
    int fd = raw_hello(&b, 2, 77, 1);
    RUN_UNTIL(5, nodes[2].ups == 1);
    size_t big = 1u << 20;
    char *payload = malloc(big);
    memset(payload, 'x', big);
    struct raft_entry e = {.term = 1, .index = 1, .buf = payload, .len = big};
    struct raft_msg m = {
        .type = RAFT_MSG_APPEND, .from = 2, .to = 1, .term = 1, .entries = &e, .n_entries = 1};
    int rc = 0, sent = 0;
    for (int k = 0; k < 200 && rc == 0; k++) {
        rc = netport_send_raft(nodes[2].np, 1, 1, &m);
        if (rc == 0)
            sent++;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    cr_assert_eq(rc, -ENOBUFS, "200 MiB queued for a peer that does not read");
    cr_assert_leq((size_t)sent * big, NETPORT_MAX_QUEUED + (16u << 20),
                  "%d MiB accepted before the queue was full", sent);
    cr_assert(status_has(2, "dropped=1"), "%s", status(2));
    free(payload);
    close(fd);
    wire_buf_free(&b);
}

Test(netport, cluster_ids_follow_the_sorted_peer_list)
{
    struct mk_config a, c;
    cfg_defaults(&a);
    cfg_defaults(&c);
    cr_assert_eq(cfg_set(&a, "peer", "1@127.0.0.1:7001", NULL), 0);
    cr_assert_eq(cfg_set(&a, "peer", "2@127.0.0.2:7001", NULL), 0);
    cr_assert_eq(cfg_set(&c, "peer", "2@127.0.0.2:7001", NULL), 0);
    cr_assert_eq(cfg_set(&c, "peer", "1@127.0.0.1:7001", NULL), 0);
    cr_assert_eq(netport_cluster_id(&a), netport_cluster_id(&c));
    cr_assert_eq(cfg_set(&c, "peer", "3@127.0.0.3:7001", NULL), 0);
    cr_assert_neq(netport_cluster_id(&a), netport_cluster_id(&c));
}

/* A HELLO naming node 1 from an address that is not node 1's is refused:
 * here node 1 is configured on 127.0.0.2 and the caller is on 127.0.0.1. */
Test(netport, a_hello_from_another_address_than_the_nodes_is_refused)
{
    struct mk_config *c = &nodes[2].cfg;
    cfg_defaults(c);
    c->node_id = 2;
    char v[64];
    snprintf(v, sizeof(v), "1@127.0.0.2:%u", (unsigned)(base_port + 1));
    cr_assert_eq(cfg_set(c, "peer", v, NULL), 0);
    snprintf(v, sizeof(v), "2@127.0.0.1:%u", (unsigned)(base_port + 2));
    cr_assert_eq(cfg_set(c, "peer", v, NULL), 0);
    start(2, 77);
    struct wire_buf b = {0};
    int fd = raw_hello(&b, 2, 77, 1);
    RUN_UNTIL(5, closed_by_peer(fd));
    cr_assert_eq(nodes[2].ups, 0, "an impostor was taken for node 1");
    cr_assert(status_has(2, "refused=1"), "%s", status(2));
    close(fd);
    wire_buf_free(&b);
}

/* A RAFT frame that decodes but names other nodes closes the connection
 * (and leaks nothing: ASan and valgrind runs check). */
Test(netport, a_raft_message_for_another_node_closes_the_connection)
{
    config(1, 2);
    config(2, 2);
    start(2, 77);
    struct wire_buf b = {0};
    int fd = raw_hello(&b, 2, 77, 1);
    RUN_UNTIL(5, nodes[2].ups == 1);
    struct raft_entry e = {.term = 1, .index = 1, .buf = "x\n", .len = 2};
    struct raft_msg m = {
        .type = RAFT_MSG_APPEND, .from = 1, .to = 3, .term = 1, .entries = &e, .n_entries = 1};
    cr_assert_eq(wire_raft_encode(&b, 1, &m), 0);
    cr_assert_eq(write(fd, b.p, b.len), (ssize_t)b.len);
    RUN_UNTIL(5, closed_by_peer(fd));
    cr_assert(status_has(2, "bad.frames=1"), "%s", status(2));
    cr_assert_eq(nodes[2].msgs, 0);
    close(fd);
    wire_buf_free(&b);
}

/* ------------------------------------------------------------ cluster.secret */

static void set_key(int i, uint8_t fill)
{
    nodes[i].cfg.has_key = true;
    memset(nodes[i].cfg.key, fill, sizeof(nodes[i].cfg.key));
}

Test(netport, nodes_with_the_same_secret_connect)
{
    config(1, 2);
    config(2, 2);
    set_key(1, 0x5a);
    set_key(2, 0x5a);
    start(1, 77);
    start(2, 77);
    RUN_UNTIL(5, netport_connected(nodes[1].np, 2) && netport_connected(nodes[2].np, 1));
    cr_assert_eq(nodes[1].hellos + nodes[2].hellos, 2);
    cr_assert(status_has(1, "secret=yes"), "%s", status(1));
    cr_assert_eq(send_append(1, 2, 5, "authenticated"), 0);
    RUN_UNTIL(5, nodes[2].msgs == 1);
}

Test(netport, a_node_with_another_secret_is_refused_and_touches_nothing)
{
    config(1, 2);
    config(2, 2);
    set_key(1, 0x5a);
    set_key(2, 0x5b);
    start(1, 77);
    start(2, 77);
    /* Node 1 (the dialer) finds node 2's proof wrong and hangs up before
     * it proves anything itself. */
    RUN_UNTIL(5, status_has(1, "refusals=1"));
    run_for_ms(300);
    cr_assert_eq(nodes[1].ups + nodes[2].ups, 0);
    cr_assert_eq(nodes[1].hellos + nodes[2].hellos, 0, "an incarnation was taken from a stranger");
    cr_assert(status_has(1, "its proof does not match our cluster.secret"), "%s", status(1));
}

Test(netport, a_secret_on_one_side_only_is_refused_with_a_clear_reason)
{
    config(1, 2);
    config(2, 2);
    set_key(2, 0x5a);
    start(1, 77);
    start(2, 77);
    RUN_UNTIL(5, status_has(1, "refusals=1"));
    run_for_ms(200);
    cr_assert_eq(nodes[1].ups + nodes[2].ups, 0);
    cr_assert(status_has(1, "it has no cluster.secret, we have one"), "%s", status(1));
}

/* An impostor that knows the ids, the cluster id and the address but not
 * the secret: its wrong proof is refused, and the real peer's connection
 * is not replaced. */
Test(netport, a_wrong_proof_is_refused_and_the_real_peer_stays_connected)
{
    config(1, 2);
    config(2, 2);
    set_key(1, 0x11);
    set_key(2, 0x11);
    start(1, 77);
    start(2, 77);
    RUN_UNTIL(5, netport_connected(nodes[1].np, 2) && netport_connected(nodes[2].np, 1));
    uint8_t wrong[AUTH_KEY_BYTES];
    memset(wrong, 0x12, sizeof(wrong));
    struct wire_buf b = {0};
    for (int k = 0; k < 2; k++) {
        /* k = 0: another key; k = 1: the right key's proof with a bit flipped. */
        uint8_t right[AUTH_KEY_BYTES];
        memset(right, 0x11, sizeof(right));
        int fd = raw_handshake(&b, 2, 77, 1, k == 0 ? wrong : right, k == 1);
        RUN_UNTIL(5, closed_by_peer(fd));
        close(fd);
    }
    cr_assert(status_has(2, "refused=2"), "%s", status(2));
    cr_assert_eq(nodes[2].ups, 1, "an impostor replaced the real peer");
    cr_assert_eq(nodes[2].hellos, 1);
    cr_assert_eq(nodes[2].downs, 0);
    cr_assert_eq(send_append(1, 2, 5, "still the real one"), 0);
    RUN_UNTIL(5, nodes[2].msgs == 1);
    wire_buf_free(&b);
}

/* The dialer checks the acceptor too: a fake node 2 that cannot prove the
 * secret never becomes node 1's peer. */
Test(netport, a_dialer_refuses_an_acceptor_without_the_proof)
{
    config(1, 2);
    set_key(1, 0x33);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(base_port + 2)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(ls, 4), 0);
    start(1, 77);
    int fd = -1;
    for (int k = 0; k < 5000 && fd < 0; k++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        struct pollfd p = {.fd = ls, .events = POLLIN};
        if (poll(&p, 1, 1) > 0)
            fd = accept(ls, NULL, NULL);
    }
    cr_assert_geq(fd, 0, "node 1 never dialed");
    uint8_t f[512];
    size_t n;
    cr_assert_eq(raw_read_frame(fd, f, sizeof(f), &n), WIRE_HELLO);
    struct wire_hello h = {.cluster_id = 77, .from = 2, .to = 1, .max_version = WIRE_VERSION, .auth = 1};
    memset(h.mac, 0x77, sizeof(h.mac)); /* a guess */
    struct wire_buf b = {0};
    cr_assert_eq(wire_hello_encode(&b, WIRE_HELLO_OK, &h), 0);
    cr_assert_eq(write(fd, b.p, b.len), (ssize_t)b.len);
    RUN_UNTIL(5, closed_by_peer(fd));
    cr_assert_eq(nodes[1].ups + nodes[1].hellos, 0);
    cr_assert(status_has(1, "its proof does not match our cluster.secret"), "%s", status(1));
    close(fd);
    close(ls);
    wire_buf_free(&b);
}

/* A node listens where cluster.listen says, not on its peer address. */
Test(netport, cluster_listen_moves_the_listener)
{
    config(1, 2);
    config(2, 2);
    char v[32];
    snprintf(v, sizeof(v), "127.0.0.1:%u", (unsigned)(base_port + 9));
    cr_assert_eq(cfg_set(&nodes[2].cfg, "cluster.listen", v, NULL), 0);
    start(2, 77);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(base_port + 2)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_neq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "it still listens on its peer address");
    close(fd);
    fd = raw_connect(9);
    close(fd);
    cr_assert(status_has(2, v), "%s", status(2));
}

/* ------------------------------------------------------------ auth_load */

static char *secret_file(const char *content, size_t len, mode_t mode)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/mk-secret-%d", getpid());
    unlink(path);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
    chmod(path, mode);
    return path;
}

Test(auth, a_secret_file_gives_a_key_and_bad_ones_are_refused_with_a_reason)
{
    cr_assert_eq(auth_init(), 0);
    uint8_t k1[AUTH_KEY_BYTES], k2[AUTH_KEY_BYTES], k3[AUTH_KEY_BYTES];
    const char *why = NULL;
    const char *good = "0123456789abcdef0123456789abcdef";
    cr_assert_eq(auth_load(secret_file(good, 32, 0600), k1, &why), 0);
    cr_assert_eq(auth_load(secret_file(good, 32, 0400), k2, &why), 0);
    cr_assert_arr_eq(k1, k2, AUTH_KEY_BYTES, "the same bytes give the same key");
    cr_assert_eq(auth_load(secret_file("1123456789abcdef0123456789abcdef", 32, 0600), k3, &why), 0);
    cr_assert_arr_neq(k1, k3, AUTH_KEY_BYTES);
    cr_assert_eq(auth_load(secret_file(good, 32, 0640), k3, &why), -EPERM);
    cr_assert(strstr(why, "chmod 600"), "%s", why);
    cr_assert_eq(auth_load(secret_file(good, 32, 0604), k3, &why), -EPERM);
    cr_assert_eq(auth_load(secret_file(good, 15, 0600), k3, &why), -EINVAL, "15 bytes are too few");
    cr_assert(strstr(why, "16 to 65536"), "%s", why);
    cr_assert_eq(auth_load(secret_file(good, 16, 0600), k3, &why), 0);
    cr_assert_eq(auth_load("/nonexistent/secret", k3, &why), -ENOENT);
    cr_assert_eq(auth_load("/tmp", k3, &why), -EINVAL);
    unlink(secret_file(good, 1, 0600));
}

Test(auth, a_proof_binds_its_role_and_both_halves_of_the_transcript)
{
    cr_assert_eq(auth_init(), 0);
    uint8_t key[AUTH_KEY_BYTES], mac[AUTH_MAC_BYTES];
    memset(key, 9, sizeof(key));
    const uint8_t a[] = "hello from the dialer", b[] = "hello_ok from the acceptor";
    auth_mac(key, AUTH_DIALER, a, sizeof(a), b, sizeof(b), mac);
    cr_assert(auth_check(key, AUTH_DIALER, a, sizeof(a), b, sizeof(b), mac));
    cr_assert_not(auth_check(key, AUTH_ACCEPTOR, a, sizeof(a), b, sizeof(b), mac), "reflected");
    cr_assert_not(auth_check(key, AUTH_DIALER, a, sizeof(a) - 1, b, sizeof(b), mac));
    cr_assert_not(auth_check(key, AUTH_DIALER, b, sizeof(b), a, sizeof(a), mac));
    /* The boundary between the halves counts: "ab"+"c" is not "a"+"bc". */
    uint8_t m1[AUTH_MAC_BYTES], m2[AUTH_MAC_BYTES];
    auth_mac(key, AUTH_DIALER, (const uint8_t *)"ab", 2, (const uint8_t *)"c", 1, m1);
    auth_mac(key, AUTH_DIALER, (const uint8_t *)"a", 1, (const uint8_t *)"bc", 2, m2);
    cr_assert_arr_neq(m1, m2, AUTH_MAC_BYTES);
    key[0] ^= 1;
    cr_assert_not(auth_check(key, AUTH_DIALER, a, sizeof(a), b, sizeof(b), mac));
}
