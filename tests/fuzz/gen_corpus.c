/*
 * gen_corpus — writes the seed corpus of the fuzz targets:
 *   DIR/wire/seed-*   whole frames (header, checksum, body) of every type
 *                     and every CALL kind, built with wire.c's encoders, and
 *                     near misses (truncated, huge length, bad magic,
 *                     version, flags, checksum)
 *   DIR/port/seed-*   chunk sequences for fuzz_port (its format is at the
 *                     top of fuzz_port.c): handshakes followed by RAFT, CALL
 *                     and PING frames, refused HELLOs, a REFUSE or a wrong
 *                     AUTH in the middle of the handshake, truncated frames,
 *                     huge lengths, garbage, a second connection that
 *                     replaces the first
 * and, given CRASHDIR, the reproducers of the known bugs of README.md.
 * Usage: gen_corpus DIR [CRASHDIR] (make fuzz-corpus).  Deterministic: the same bytes
 * on every run, so the committed files can be regenerated and compared.
 * Files whose name does not start with "seed-" (found by the fuzzer) are
 * left alone.
 */
#include "broker/net/wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CLUSTER     0x317a7a75662d6b6dull /* fuzz_port's FUZZ_CLUSTER */
#define OP_HELLO    0x40
#define OP_AUTH     0x41
#define OP_NEW_CONN 0x42
#define OP_SPLIT    0x10 /* + type: a frame cut in two reads */
#define OP_PAUSE    0x43
#define OP_RAW      0x80

static const char *dir;
static struct wire_buf b;
static int files;

static void die(const char *what)
{
    fprintf(stderr, "gen_corpus: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void write_file(const char *sub, const char *name, const void *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/seed-%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        die(path);
    files++;
}

static void ok(int rc)
{
    if (rc != 0) {
        fprintf(stderr, "gen_corpus: an encoder failed: %d\n", rc);
        exit(1);
    }
}

/* ------------------------------------------------------------ messages */

static struct wire_hello hello(uint64_t cluster, uint32_t from, uint32_t to, uint8_t auth)
{
    struct wire_hello h = {.cluster_id = cluster,
                           .from = from,
                           .to = to,
                           .max_version = WIRE_VERSION,
                           .incarnation = 7,
                           .known = 0,
                           .auth = auth};
    for (int i = 0; i < WIRE_NONCE_BYTES; i++)
        h.nonce[i] = (uint8_t)(0xa0 + i);
    return h;
}

static const char pay1[] = "order 17 paid\n", pay2[] = "x";

/* RAFT message kinds the seeds carry. */
static void raft_append(uint64_t from)
{
    struct raft_entry es[2] = {
        {.term = 4, .index = 10, .type = RAFT_ENTRY_NORMAL, .buf = pay1, .len = sizeof(pay1) - 1},
        {.term = 4, .index = 11, .type = RAFT_ENTRY_NORMAL, .buf = pay2, .len = 1}};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = from,
                         .to = 2,
                         .term = 4,
                         .index = 9,
                         .log_term = 3,
                         .commit = 8,
                         .entries = es,
                         .n_entries = 2};
    ok(wire_raft_encode(&b, 0x100000002ull, &m));
}

static void raft_snapshot(void)
{
    static const char state[] = "snapshot state";
    struct raft_msg m = {.type = RAFT_MSG_SNAPSHOT,
                         .from = 1,
                         .to = 2,
                         .term = 5,
                         .index = 100,
                         .log_term = 5,
                         .snap_conf = {.n = 3,
                                       .servers = {{.id = 1, .voter = true},
                                                   {.id = 2, .voter = true},
                                                   {.id = 3, .voter = false}}},
                         .snap_data = state,
                         .snap_len = sizeof(state) - 1};
    ok(wire_raft_encode(&b, 7, &m));
}

static void raft_vote(void)
{
    struct raft_msg m = {
        .type = RAFT_MSG_VOTE, .transfer = true, .from = 1, .to = 2, .term = 6, .index = 3};
    ok(wire_raft_encode(&b, 0, &m));
}

static void raft_append_resp(void)
{
    struct raft_msg m = {.type = RAFT_MSG_APPEND_RESP,
                         .reject = true,
                         .from = 1,
                         .to = 2,
                         .term = 6,
                         .index = 30,
                         .hint_index = 12,
                         .hint_term = 2};
    ok(wire_raft_encode(&b, 0x200000001ull, &m));
}

static void raft_conf_entry(void)
{
    /* Servers 1 and 2, voters (the layout of raft_conf_encode). */
    static const uint8_t conf[RAFT_CONF_BYTES(2)] = {2, 1, 0, 0, 0, 0, 0, 0, 0, 1,
                                                     2, 0, 0, 0, 0, 0, 0, 0, 1};
    struct raft_entry e = {
        .term = 2, .index = 1, .type = RAFT_ENTRY_CONF, .buf = conf, .len = sizeof(conf)};
    struct raft_msg m = {
        .type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 2, .entries = &e, .n_entries = 1};
    ok(wire_raft_encode(&b, 1, &m));
}

static const uint32_t write_lens[3] = {3, 1, 5};

/* One CALL of each kind (kind from WIRE_META_REQ to WIRE_SYNC_RESP). */
static void call(uint8_t kind)
{
    static const char meta[] = "topic orders 3\n", recs[] = "abcdefghi", read[] = "bytes";
    struct wire_call c = {.kind = kind, .req = 1000 + kind};
    switch (kind) {
    case WIRE_META_REQ:
        c.data = (const uint8_t *)meta;
        c.data_len = sizeof(meta) - 1;
        break;
    case WIRE_META_RESP:
        c.status = -2;
        c.off = 17;
        c.leader = 1;
        break;
    case WIRE_WRITE_REQ:
        c.group = 0x100000003ull;
        c.producer = 9;
        c.seq = 4;
        c.n = 3;
        c.lens = (uint32_t *)write_lens;
        c.data = (const uint8_t *)recs;
        c.data_len = 9;
        break;
    case WIRE_WRITE_RESP:
        c.group = 0x100000003ull;
        c.off = 41;
        c.term = 3;
        c.leader = 2;
        break;
    case WIRE_QUIESCE:
        c.group = 5;
        c.term = 3;
        c.commit = 40;
        c.size = 3;
        break;
    case WIRE_READ_REQ:
        c.group = 5;
        c.off = 100;
        c.size = 4096;
        break;
    case WIRE_READ_RESP:
        c.group = 5;
        c.off = 105;
        c.data = (const uint8_t *)read;
        c.data_len = sizeof(read) - 1;
        break;
    case WIRE_SYNC_REQ:
        c.group = 0;
        break;
    case WIRE_SYNC_RESP:
        c.group = 0;
        c.off = 12;
        break;
    case WIRE_REPAIR_REQ:
        c.group = 5;
        c.off = 30;
        c.n = 2;
        break;
    case WIRE_REPAIR_RESP: {
        static uint8_t entries[2 * WIRE_REPAIR_ENTRY_HDR + 16];
        static const uint8_t aux[] = {1, 2, 3, 4};
        struct wire_repair_entry e1 = {.ts = 1700000000000,
                                       .flags = 1,
                                       .len = 5,
                                       .aux_len = 4,
                                       .aux = aux,
                                       .rec = (const uint8_t *)"hello"};
        struct wire_repair_entry e2 = {
            .ts = 1700000000001, .len = 3, .rec = (const uint8_t *)"abc"};
        size_t n1 = wire_repair_size(&e1), n2 = wire_repair_size(&e2);
        wire_repair_put(entries, &e1);
        wire_repair_put(entries + n1, &e2);
        c.group = 5;
        c.off = 30;
        c.n = 2;
        c.data = entries;
        c.data_len = n1 + n2;
        break;
    }
    case WIRE_TRANSFER:
        c.group = 0x100000003ull;
        c.size = 3; /* to: node 3 */
        break;
    default: /* a kind this generator does not know yet: its fields stay zero */
        break;
    }
    ok(wire_call_encode(&b, &c));
}

static const char *const call_names[WIRE_NCALLS] = {
    [WIRE_META_REQ] = "meta_req",       [WIRE_META_RESP] = "meta_resp",
    [WIRE_WRITE_REQ] = "write_req",     [WIRE_WRITE_RESP] = "write_resp",
    [WIRE_QUIESCE] = "quiesce",         [WIRE_READ_REQ] = "read_req",
    [WIRE_READ_RESP] = "read_resp",     [WIRE_SYNC_REQ] = "sync_req",
    [WIRE_SYNC_RESP] = "sync_resp",     [WIRE_REPAIR_REQ] = "repair_req",
    [WIRE_REPAIR_RESP] = "repair_resp", [WIRE_TRANSFER] = "transfer",
};

static const char *call_name(uint8_t kind)
{
    static char other[32];
    if (call_names[kind])
        return call_names[kind];
    snprintf(other, sizeof(other), "kind%u", kind);
    return other;
}

/* ------------------------------------------------------------ wire seeds */

static void wire_frame(const char *name)
{
    write_file("wire", name, b.p, b.len);
}

static void wire_seeds(void)
{
    struct wire_hello h = hello(CLUSTER, 1, 2, 0);
    ok(wire_hello_encode(&b, WIRE_HELLO, &h));
    wire_frame("hello");
    memset(h.mac, 0x5c, sizeof(h.mac));
    h.from = 2;
    h.to = 1;
    ok(wire_hello_encode(&b, WIRE_HELLO_OK, &h));
    wire_frame("hello_ok");
    uint8_t mac[WIRE_MAC_BYTES];
    memset(mac, 0x36, sizeof(mac));
    ok(wire_auth_encode(&b, mac));
    wire_frame("auth");
    ok(wire_refuse_encode(&b, WIRE_REFUSE_CLUSTER, "refused node 1: cluster 1, not ours (2)"));
    wire_frame("refuse");
    struct wire_ping p = {.nonce = 3, .sent_ns = 123456789};
    ok(wire_ping_encode(&b, WIRE_PING, &p));
    wire_frame("ping");
    ok(wire_ping_encode(&b, WIRE_PONG, &p));
    wire_frame("pong");
    raft_append(1);
    wire_frame("raft_append");
    raft_snapshot();
    wire_frame("raft_snapshot");
    raft_vote();
    wire_frame("raft_vote");
    raft_append_resp();
    wire_frame("raft_append_resp");
    raft_conf_entry();
    wire_frame("raft_conf_entry");
    for (uint8_t k = WIRE_META_REQ; k < WIRE_NCALLS; k++) {
        char name[64];
        call(k);
        snprintf(name, sizeof(name), "call_%s", call_name(k));
        wire_frame(name);
    }

    /* Near misses. */
    raft_append(1);
    write_file("wire", "truncated", b.p, b.len / 2);
    ok(wire_ping_encode(&b, WIRE_PING, &p));
    b.p[WIRE_HDR + 3] ^= 1;
    wire_frame("bad_checksum");
    ok(wire_ping_encode(&b, WIRE_PING, &p));
    b.p[0] = 'X';
    wire_frame("bad_magic");
    ok(wire_ping_encode(&b, WIRE_PING, &p));
    b.p[4] = 1;
    wire_frame("old_version");
    ok(wire_ping_encode(&b, WIRE_PING, &p));
    b.p[6] = 1;
    wire_frame("flags");
    /* A header announcing the largest body allowed, and one past it. */
    ok(wire_ping_encode(&b, WIRE_PING, &p));
    b.p[8] = (uint8_t)WIRE_MAX_BODY;
    b.p[9] = (uint8_t)(WIRE_MAX_BODY >> 8);
    b.p[10] = (uint8_t)(WIRE_MAX_BODY >> 16);
    b.p[11] = (uint8_t)(WIRE_MAX_BODY >> 24);
    wire_frame("max_length");
    memset(b.p + 8, 0xff, 4);
    wire_frame("huge_length");
}

/* ------------------------------------------------------------ port seeds */

/* A chunk sequence under construction. */
static uint8_t seq[16384];
static size_t seq_len;

static void chunk(uint8_t op, const void *p, size_t n)
{
    if (seq_len + 3 + n > sizeof(seq)) {
        fprintf(stderr, "gen_corpus: a port seed is too long\n");
        exit(1);
    }
    seq[seq_len++] = op;
    seq[seq_len++] = (uint8_t)n;
    seq[seq_len++] = (uint8_t)(n >> 8);
    memcpy(seq + seq_len, p, n);
    seq_len += n;
}

/* The frame in b as a harness-framed chunk: its type and body. */
static void chunk_frame(void)
{
    chunk(b.p[5], b.p + WIRE_HDR, b.len - WIRE_HDR);
}

/* The frame in b as a harness-framed chunk sent in two parts, cut after
 * `cut` bytes. */
static void chunk_split(uint8_t cut)
{
    uint8_t body[4096];
    size_t n = b.len - WIRE_HDR;
    body[0] = cut;
    memcpy(body + 1, b.p + WIRE_HDR, n);
    chunk((uint8_t)(OP_SPLIT + b.p[5]), body, n + 1);
}

/* The frame in b, or its first n bytes, as raw bytes. */
static void chunk_raw(size_t n)
{
    chunk(OP_RAW, b.p, n < b.len ? n : b.len);
}

static void handshake(void)
{
    chunk(OP_HELLO, NULL, 0);
    chunk(OP_AUTH, NULL, 0);
}

static void ping(enum wire_type t)
{
    struct wire_ping p = {.nonce = 11, .sent_ns = 22};
    ok(wire_ping_encode(&b, t, &p));
}

static void port_seed(const char *name)
{
    write_file("port", name, seq, seq_len);
    seq_len = 0;
}

static void port_seeds(void)
{
    handshake();
    port_seed("handshake");

    handshake();
    ping(WIRE_PING);
    chunk_frame();
    port_seed("handshake_ping");

    handshake();
    ping(WIRE_PONG);
    chunk_frame();
    port_seed("handshake_pong");

    handshake();
    raft_append(1);
    chunk_frame();
    port_seed("handshake_raft_append");

    handshake();
    raft_snapshot();
    chunk_frame();
    raft_vote();
    chunk_frame();
    raft_append_resp();
    chunk_frame();
    raft_conf_entry();
    chunk_frame();
    port_seed("handshake_raft_kinds");

    handshake();
    raft_append(3); /* from a node that is not the connection's */
    chunk_frame();
    port_seed("handshake_raft_wrong_from");

    handshake();
    for (uint8_t k = WIRE_META_REQ; k < WIRE_NCALLS; k++) {
        call(k);
        chunk_frame();
    }
    port_seed("handshake_calls");

    handshake();
    ping(WIRE_PING);
    chunk_frame();
    raft_append(1);
    chunk_frame();
    call(WIRE_WRITE_REQ);
    chunk_frame();
    ping(WIRE_PONG);
    chunk_frame();
    call(WIRE_READ_RESP);
    chunk_frame();
    port_seed("handshake_mixed");

    /* The HELLO framed by the fuzzer's own chunk, then the harness's AUTH. */
    struct wire_hello h = hello(CLUSTER, 1, 2, 0);
    ok(wire_hello_encode(&b, WIRE_HELLO, &h));
    chunk_frame();
    chunk(OP_AUTH, NULL, 0);
    ping(WIRE_PING);
    chunk_frame();
    port_seed("own_hello_handshake");

    /* HELLOs the node refuses. */
    static const struct {
        const char *name;
        uint64_t cluster;
        uint32_t from, to;
        uint8_t auth;
    } refused[] = {
        {"hello_foreign_cluster", CLUSTER + 1, 1, 2, 0}, {"hello_unknown_node", CLUSTER, 9, 2, 0},
        {"hello_from_itself", CLUSTER, 2, 2, 0},         {"hello_to_another", CLUSTER, 1, 3, 0},
        {"hello_with_secret", CLUSTER, 1, 2, 1},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        h = hello(refused[i].cluster, refused[i].from, refused[i].to, refused[i].auth);
        ok(wire_hello_encode(&b, WIRE_HELLO, &h));
        chunk_frame();
        chunk(OP_AUTH, NULL, 0);
        port_seed(refused[i].name);
    }

    /* Disconnecting, refusing or proving wrong in the middle of it. */
    chunk(OP_HELLO, NULL, 0);
    port_seed("hello_then_leave");

    chunk(OP_HELLO, NULL, 0);
    ok(wire_refuse_encode(&b, WIRE_REFUSE_AUTH, "refused node 2: its proof does not match"));
    chunk_frame();
    port_seed("hello_then_refuse");

    uint8_t mac[WIRE_MAC_BYTES] = {0};
    chunk(OP_HELLO, NULL, 0);
    chunk(WIRE_AUTH, mac, sizeof(mac));
    port_seed("hello_then_wrong_proof");

    chunk(OP_HELLO, NULL, 0);
    chunk(WIRE_AUTH, mac, sizeof(mac) - 1);
    port_seed("hello_then_short_auth");

    chunk(OP_HELLO, NULL, 0);
    chunk(OP_AUTH, NULL, 0);
    chunk(OP_HELLO, NULL, 0);
    port_seed("second_hello_when_up");

    /* Frames before any handshake. */
    ping(WIRE_PING);
    chunk_frame();
    port_seed("ping_before_hello");

    raft_append(1);
    chunk_frame();
    port_seed("raft_before_hello");

    chunk(0, "x", 1); /* type 0 */
    port_seed("type_zero");

    static uint8_t big[1100];
    memset(big, 'B', sizeof(big));
    chunk(WIRE_HELLO, big, 1025); /* over the 1 KiB allowed before the handshake */
    port_seed("big_hello");

    /* Truncated frames, bad checksums, huge lengths, garbage. */
    handshake();
    raft_append(1);
    chunk_raw(b.len - 3);
    port_seed("handshake_truncated_raft");

    handshake();
    ping(WIRE_PING);
    chunk_raw(WIRE_HDR - 5);
    port_seed("handshake_truncated_header");

    handshake();
    ping(WIRE_PING);
    b.p[WIRE_HDR] ^= 0x40;
    chunk_raw(b.len);
    port_seed("handshake_bad_checksum");

    handshake();
    ping(WIRE_PING);
    memset(b.p + 8, 0, 4);
    b.p[11] = 0x04; /* 64 MiB announced, allowed once up: reserved, never sent */
    chunk_raw(WIRE_HDR);
    port_seed("handshake_huge_length");

    ping(WIRE_PING);
    memset(b.p + 8, 0xff, 4);
    chunk_raw(WIRE_HDR);
    port_seed("huge_length");

    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    chunk(OP_RAW, http, sizeof(http) - 1);
    port_seed("http");

    /* A second connection from node 1 replaces the first. */
    handshake();
    ping(WIRE_PING);
    chunk_frame();
    chunk(OP_NEW_CONN, NULL, 0);
    handshake();
    ping(WIRE_PING);
    chunk_frame();
    port_seed("replaced_by_second_connection");

    /* Frames cut across reads: in the header, in the body, in a HELLO. */
    handshake();
    ping(WIRE_PING);
    chunk_split(7);
    port_seed("split_header");

    handshake();
    raft_append(1);
    chunk_split(WIRE_HDR + 30);
    port_seed("split_body");

    h = hello(CLUSTER, 1, 2, 0);
    ok(wire_hello_encode(&b, WIRE_HELLO, &h));
    chunk_split(WIRE_HDR);
    chunk(OP_AUTH, NULL, 0);
    port_seed("split_hello");

    handshake();
    ping(WIRE_PING);
    chunk_raw(10);
    chunk(OP_PAUSE, NULL, 0);
    chunk(OP_RAW, b.p + 10, b.len - 10);
    port_seed("pause_in_raw_frame");

    /* Node 1's HELLO from another address. */
    chunk(OP_NEW_CONN, "\x01", 1);
    handshake();
    port_seed("hello_from_other_address");

    /* Strangers in every state at once. */
    chunk(OP_HELLO, NULL, 0);
    chunk(OP_NEW_CONN, NULL, 0);
    chunk(OP_RAW, "MKP1", 4);
    chunk(OP_NEW_CONN, NULL, 0);
    port_seed("three_strangers");
}

/* ------------------------------------------------------------ known bugs */

/* Reproducers of the findings of README.md, kept in the port corpus so that
 * fuzz-replay replays them (the bugs are fixed; the oracles are fatal). */
static void crash_seeds(const char *crashes)
{
    /* A connection in its handshake (HELLO sent, no AUTH yet) sends REFUSE
     * with a quote: it lands in peer 1's error="..." in .cluster. */
    static const char text[] = "it is \"quoted\" here";
    chunk(OP_HELLO, NULL, 0);
    ok(wire_refuse_encode(&b, WIRE_REFUSE_AUTH, text));
    chunk_frame();
    char path[4096];
    snprintf(path, sizeof(path), "%s/regress-refuse-quote", crashes);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(seq, 1, seq_len, f) != seq_len || fclose(f) != 0)
        die(path);
    seq_len = 0;
    files++;
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: gen_corpus DIR [CRASHDIR] (writes DIR/wire/seed-*, "
                        "DIR/port/seed-* and the known bugs' reproducers in CRASHDIR)\n");
        return 2;
    }
    dir = argv[1];
    char path[4096];
    snprintf(path, sizeof(path), "%s/wire", dir);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        die(dir);
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        die(path);
    snprintf(path, sizeof(path), "%s/port", dir);
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        die(path);
    wire_seeds();
    port_seeds();
    if (argc == 3) {
        if (mkdir(argv[2], 0755) < 0 && errno != EEXIST)
            die(argv[2]);
        crash_seeds(argv[2]);
    }
    wire_buf_free(&b);
    printf("gen_corpus: %d seed files in %s/wire and %s/port\n", files, dir, dir);
    return 0;
}
