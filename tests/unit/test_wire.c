/*
 * test_wire — the cluster port's frame codec: every message round-trips,
 * and every malformed frame or body is refused (bad header fields, any
 * flipped byte, any truncation, trailing bytes, lying counts and lengths)
 * without reading past the frame or allocating by a count it carries.
 * CALL bodies too: every kind round-trips, and a refused one leaves
 * nothing to free.
 */
#include "broker/net/wire.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static struct wire_buf b;

static void teardown(void)
{
    wire_buf_free(&b);
}

TestSuite(wire, .fini = teardown);

/* Checks the frame in b as a receiver does; returns the header. */
static struct wire_hdr frame_ok(void)
{
    struct wire_hdr h;
    cr_assert_geq(b.len, WIRE_HDR);
    cr_assert_eq(wire_hdr_decode(b.p, &h), 0);
    cr_assert_eq(h.length, b.len - WIRE_HDR);
    cr_assert(wire_check(b.p, &h, b.p + WIRE_HDR));
    return h;
}

static const uint8_t payload1[] = "order 17 paid\n";
static const uint8_t payload2[] = "";

static void make_raft(struct raft_msg *m, struct raft_entry *es)
{
    memset(m, 0, sizeof(*m));
    m->type = RAFT_MSG_APPEND;
    m->reject = true;
    m->from = 1;
    m->to = 3;
    m->term = 7;
    m->index = 41;
    m->log_term = 6;
    m->commit = 40;
    m->hint_index = 5;
    m->hint_term = 2;
    es[0] = (struct raft_entry){.term = 7,
                                .index = 42,
                                .type = RAFT_ENTRY_NORMAL,
                                .buf = payload1,
                                .len = sizeof(payload1) - 1};
    es[1] = (struct raft_entry){
        .term = 7, .index = 43, .type = RAFT_ENTRY_NOOP, .buf = payload2, .len = 0};
    m->entries = es;
    m->n_entries = 2;
}

Test(wire, hello_round_trips)
{
    struct wire_hello h = {.cluster_id = 0x1122334455667788ull,
                           .from = 2,
                           .to = 3,
                           .max_version = 1,
                           .incarnation = 0x0102030405060708ull,
                           .known = 0xf1f2f3f4f5f6f7f8ull,
                           .auth = 1},
                      out;
    for (int i = 0; i < WIRE_NONCE_BYTES; i++)
        h.nonce[i] = (uint8_t)(i + 1);
    for (int i = 0; i < WIRE_MAC_BYTES; i++)
        h.mac[i] = (uint8_t)(0xa0 + i);
    cr_assert_eq(wire_hello_encode(&b, WIRE_HELLO, &h), 0);
    struct wire_hdr hd = frame_ok();
    cr_assert_eq(hd.type, WIRE_HELLO);
    cr_assert_eq(hd.length, 8 + 4 + 4 + 1 + 8 + 8 + 1 + 32, "the layout of wire.h");
    cr_assert_eq(wire_hello_decode(b.p + WIRE_HDR, hd.length, WIRE_HELLO, &out), 0);
    cr_assert_eq(out.cluster_id, h.cluster_id);
    cr_assert_eq(out.from, 2);
    cr_assert_eq(out.to, 3);
    cr_assert_eq(out.max_version, 1);
    cr_assert_eq(out.incarnation, h.incarnation);
    cr_assert_eq(out.known, h.known);
    cr_assert_eq(out.auth, 1);
    cr_assert_arr_eq(out.nonce, h.nonce, WIRE_NONCE_BYTES);
    uint8_t zero[WIRE_MAC_BYTES] = {0};
    cr_assert_arr_eq(out.mac, zero, WIRE_MAC_BYTES, "a HELLO carries no mac");
    /* A HELLO is not a HELLO_OK: the mac is missing. */
    cr_assert_eq(wire_hello_decode(b.p + WIRE_HDR, hd.length, WIRE_HELLO_OK, &out), -EBADMSG);

    cr_assert_eq(wire_hello_encode(&b, WIRE_HELLO_OK, &h), 0);
    hd = frame_ok();
    cr_assert_eq(hd.length, 8 + 4 + 4 + 1 + 8 + 8 + 1 + 32 + 32);
    cr_assert_eq(wire_hello_decode(b.p + WIRE_HDR, hd.length, WIRE_HELLO_OK, &out), 0);
    cr_assert_arr_eq(out.mac, h.mac, WIRE_MAC_BYTES);
    cr_assert_eq(wire_hello_decode(b.p + WIRE_HDR, hd.length, WIRE_HELLO, &out), -EBADMSG,
                 "bytes left over");
    /* auth is 0 or 1 */
    b.p[WIRE_HDR + 33] = 2;
    cr_assert_eq(wire_hello_decode(b.p + WIRE_HDR, hd.length, WIRE_HELLO_OK, &out), -EBADMSG);
}

Test(wire, auth_round_trips_and_only_32_bytes_are_a_proof)
{
    uint8_t mac[WIRE_MAC_BYTES], out[WIRE_MAC_BYTES];
    for (int i = 0; i < WIRE_MAC_BYTES; i++)
        mac[i] = (uint8_t)(3 * i);
    cr_assert_eq(wire_auth_encode(&b, mac), 0);
    struct wire_hdr hd = frame_ok();
    cr_assert_eq(hd.type, WIRE_AUTH);
    cr_assert_eq(hd.length, WIRE_MAC_BYTES);
    cr_assert_eq(wire_auth_decode(b.p + WIRE_HDR, hd.length, out), 0);
    cr_assert_arr_eq(out, mac, WIRE_MAC_BYTES);
    for (size_t k = 0; k < WIRE_MAC_BYTES; k++)
        cr_assert_eq(wire_auth_decode(b.p + WIRE_HDR, k, out), -EBADMSG);
    cr_assert_eq(wire_auth_decode(b.p + WIRE_HDR, WIRE_MAC_BYTES + 1, out), -EBADMSG);
}

Test(wire, refuse_round_trips_and_text_is_made_printable)
{
    struct wire_refuse r;
    cr_assert_eq(wire_refuse_encode(&b, WIRE_REFUSE_CLUSTER, "cluster 5\x01 not 7"), 0);
    struct wire_hdr hd = frame_ok();
    cr_assert_eq(wire_refuse_decode(b.p + WIRE_HDR, hd.length, &r), 0);
    cr_assert_eq(r.reason, WIRE_REFUSE_CLUSTER);
    cr_assert_str_eq(r.text, "cluster 5? not 7");
}

Test(wire, ping_round_trips)
{
    struct wire_ping p = {.nonce = 9, .sent_ns = 123456789}, out;
    cr_assert_eq(wire_ping_encode(&b, WIRE_PONG, &p), 0);
    struct wire_hdr hd = frame_ok();
    cr_assert_eq(hd.type, WIRE_PONG);
    cr_assert_eq(wire_ping_decode(b.p + WIRE_HDR, hd.length, &out), 0);
    cr_assert_eq(out.nonce, 9);
    cr_assert_eq(out.sent_ns, 123456789);
}

Test(wire, raft_append_round_trips_with_entries)
{
    struct raft_msg m, out;
    struct raft_entry es[2], *got;
    make_raft(&m, es);
    cr_assert_eq(wire_raft_encode(&b, 0xabcdef, &m), 0);
    struct wire_hdr hd = frame_ok();
    uint64_t group;
    cr_assert_eq(wire_raft_decode(b.p + WIRE_HDR, hd.length, 16, &group, &out, &got), 0);
    cr_assert_eq(group, 0xabcdef);
    cr_assert_eq(out.type, RAFT_MSG_APPEND);
    cr_assert(out.reject);
    cr_assert_not(out.transfer);
    cr_assert_eq(out.from, 1);
    cr_assert_eq(out.to, 3);
    cr_assert_eq(out.term, 7);
    cr_assert_eq(out.index, 41);
    cr_assert_eq(out.log_term, 6);
    cr_assert_eq(out.commit, 40);
    cr_assert_eq(out.hint_index, 5);
    cr_assert_eq(out.hint_term, 2);
    cr_assert_eq(out.n_entries, 2);
    cr_assert_eq(out.entries[0].index, 42);
    cr_assert_eq(out.entries[0].len, sizeof(payload1) - 1);
    cr_assert_eq(memcmp(out.entries[0].buf, payload1, out.entries[0].len), 0);
    cr_assert_eq(out.entries[1].type, RAFT_ENTRY_NOOP);
    cr_assert_eq(out.entries[1].len, 0);
    free(got);
}

Test(wire, raft_snapshot_round_trips_with_conf_and_data)
{
    struct raft_msg m = {.type = RAFT_MSG_SNAPSHOT,
                         .from = 2,
                         .to = 1,
                         .term = 3,
                         .index = 1000,
                         .log_term = 2},
                    out;
    m.snap_conf.n = 3;
    for (unsigned i = 0; i < 3; i++)
        m.snap_conf.servers[i] = (struct raft_server){.id = i + 1, .voter = i != 2};
    m.snap_data = "state";
    m.snap_len = 5;
    cr_assert_eq(wire_raft_encode(&b, 0, &m), 0);
    struct wire_hdr hd = frame_ok();
    uint64_t group;
    struct raft_entry *got;
    cr_assert_eq(wire_raft_decode(b.p + WIRE_HDR, hd.length, 16, &group, &out, &got), 0);
    cr_assert_eq(out.snap_conf.n, 3);
    cr_assert(out.snap_conf.servers[0].voter);
    cr_assert_not(out.snap_conf.servers[2].voter);
    cr_assert_eq(out.snap_conf.servers[2].id, 3);
    cr_assert_eq(out.snap_len, 5);
    cr_assert_eq(memcmp(out.snap_data, "state", 5), 0);
    cr_assert_null(got);
}

/* ------------------------------------------------------------ refusals */

Test(wire, header_fields_out_of_range_are_refused)
{
    struct wire_ping p = {1, 2};
    cr_assert_eq(wire_ping_encode(&b, WIRE_PING, &p), 0);
    struct wire_hdr h;
    uint8_t hdr[WIRE_HDR];
    memcpy(hdr, b.p, WIRE_HDR);
    hdr[0] ^= 1;
    cr_assert_eq(wire_hdr_decode(hdr, &h), -EBADMSG, "magic");
    memcpy(hdr, b.p, WIRE_HDR);
    hdr[4] = WIRE_VERSION + 1;
    cr_assert_eq(wire_hdr_decode(hdr, &h), -EPROTO, "version");
    hdr[4] = WIRE_VERSION - 1;
    cr_assert_eq(wire_hdr_decode(hdr, &h), -EPROTO, "an older version");
    memcpy(hdr, b.p, WIRE_HDR);
    hdr[5] = 0;
    cr_assert_eq(wire_hdr_decode(hdr, &h), -EBADMSG, "type 0");
    hdr[5] = WIRE_NTYPES;
    cr_assert_eq(wire_hdr_decode(hdr, &h), -EBADMSG, "unknown type");
    memcpy(hdr, b.p, WIRE_HDR);
    hdr[7] = 0x80;
    cr_assert_eq(wire_hdr_decode(hdr, &h), -EBADMSG, "flags");
    memcpy(hdr, b.p, WIRE_HDR);
    uint32_t big = WIRE_MAX_BODY + 1;
    memcpy(hdr + 8, &big, 4); /* little-endian machine */
    cr_assert_eq(wire_hdr_decode(hdr, &h), -EBADMSG, "length over the limit");
}

/* Any single flipped bit anywhere in a frame is caught: by the header
 * checks or by the checksum. */
Test(wire, every_flipped_bit_is_caught)
{
    struct raft_msg m;
    struct raft_entry es[2];
    make_raft(&m, es);
    cr_assert_eq(wire_raft_encode(&b, 5, &m), 0);
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b.p[i] ^= (uint8_t)(1u << bit);
            struct wire_hdr h;
            bool ok = wire_hdr_decode(b.p, &h) == 0 && h.length == b.len - WIRE_HDR &&
                      wire_check(b.p, &h, b.p + WIRE_HDR);
            b.p[i] ^= (uint8_t)(1u << bit);
            cr_assert_not(ok, "flip of bit %d of byte %zu went unnoticed", bit, i);
        }
    }
}

/* Every truncated body and one with a byte too many is refused. */
Test(wire, truncated_or_overlong_bodies_are_refused)
{
    struct raft_msg m, out;
    struct raft_entry es[2], *got;
    make_raft(&m, es);
    cr_assert_eq(wire_raft_encode(&b, 5, &m), 0);
    size_t n = b.len - WIRE_HDR;
    uint8_t *body = malloc(n + 1);
    memcpy(body, b.p + WIRE_HDR, n);
    body[n] = 0;
    uint64_t group;
    for (size_t k = 0; k < n; k++)
        cr_assert_eq(wire_raft_decode(body, k, 16, &group, &out, &got), -EBADMSG,
                     "body cut to %zu of %zu bytes accepted", k, n);
    cr_assert_eq(wire_raft_decode(body, n + 1, 16, &group, &out, &got), -EBADMSG);
    free(body);

    struct wire_hello hl = {1, 2, 3, 1, 4, 5, 0, {0}, {0}}, ho;
    cr_assert_eq(wire_hello_encode(&b, WIRE_HELLO_OK, &hl), 0);
    for (size_t k = 0; k < b.len - WIRE_HDR; k++)
        cr_assert_eq(wire_hello_decode(b.p + WIRE_HDR, k, WIRE_HELLO_OK, &ho), -EBADMSG);
}

/* Offsets into an encoded APPEND body (see wire.h). */
#define OFF_TYPE    8
#define OFF_BITS    9
#define OFF_FROM    10
#define OFF_COUNT   (10 + 8 * 8)
#define OFF_ENTRY0  (OFF_COUNT + 4)
#define OFF_E0_TYPE (OFF_ENTRY0 + 16)
#define OFF_E0_LEN  (OFF_ENTRY0 + 17)

static int decode_patched(size_t off, const void *val, size_t n, size_t max_entries)
{
    struct raft_msg m, out;
    struct raft_entry es[2], *got = NULL;
    make_raft(&m, es);
    cr_assert_eq(wire_raft_encode(&b, 5, &m), 0);
    memcpy(b.p + WIRE_HDR + off, val, n);
    uint64_t group;
    int rc = wire_raft_decode(b.p + WIRE_HDR, b.len - WIRE_HDR, max_entries, &group, &out, &got);
    if (rc == 0)
        free(got);
    return rc;
}

Test(wire, lying_counts_and_lengths_are_refused)
{
    uint32_t huge = 0xffffffffu, three = 3, sixty = 60;
    cr_assert_eq(decode_patched(OFF_COUNT, &huge, 4, 1u << 30), -EBADMSG, "4 billion entries");
    cr_assert_eq(decode_patched(OFF_COUNT, &three, 4, 16), -EBADMSG, "one entry too many");
    cr_assert_eq(decode_patched(OFF_E0_LEN, &huge, 4, 16), -EBADMSG, "entry length past the end");
    cr_assert_eq(decode_patched(OFF_E0_LEN, &sixty, 4, 16), -EBADMSG, "entry length too long");
    cr_assert_eq(decode_patched(0, "", 0, 1), -EBADMSG, "more entries than the receiver takes");
    /* A count the body cannot hold is refused before anything is allocated
     * for it (160 GB here: the allocation would fail with ENOMEM). */
    uint32_t many = 0xf0000000u;
    cr_assert_eq(decode_patched(OFF_COUNT, &many, 4, SIZE_MAX), -EBADMSG, "count beyond the body");
}

Test(wire, bad_raft_fields_are_refused)
{
    uint8_t v = 0;
    uint64_t zero = 0;
    cr_assert_eq(decode_patched(OFF_TYPE, &v, 1, 16), -EBADMSG, "message type 0");
    v = RAFT_MSG_TYPES;
    cr_assert_eq(decode_patched(OFF_TYPE, &v, 1, 16), -EBADMSG, "unknown message type");
    v = 4;
    cr_assert_eq(decode_patched(OFF_BITS, &v, 1, 16), -EBADMSG, "unknown flag bits");
    cr_assert_eq(decode_patched(OFF_FROM, &zero, 8, 16), -EBADMSG, "from node 0");
    v = 3;
    cr_assert_eq(decode_patched(OFF_E0_TYPE, &v, 1, 16), -EBADMSG, "unknown entry type");
}

Test(wire, snapshot_with_too_many_servers_is_refused)
{
    struct raft_msg m = {.type = RAFT_MSG_SNAPSHOT, .from = 2, .to = 1, .term = 3}, out;
    m.snap_conf.n = 1;
    m.snap_conf.servers[0] = (struct raft_server){.id = 1, .voter = true};
    cr_assert_eq(wire_raft_encode(&b, 0, &m), 0);
    /* conf_n follows the (empty) entry count. */
    b.p[WIRE_HDR + OFF_COUNT + 4] = RAFT_MAX_SERVERS + 1;
    uint64_t group;
    struct raft_entry *got;
    cr_assert_eq(wire_raft_decode(b.p + WIRE_HDR, b.len - WIRE_HDR, 16, &group, &out, &got),
                 -EBADMSG);
}

Test(wire, a_body_over_the_limit_is_emsgsize_without_copying)
{
    static const uint8_t tiny[1];
    struct raft_entry e = {.term = 1, .index = 1, .buf = tiny, .len = WIRE_MAX_BODY + 1};
    struct raft_msg m = {
        .type = RAFT_MSG_APPEND, .from = 1, .to = 2, .entries = &e, .n_entries = 1};
    /* reserve() refuses before memcpy reads the (tiny) buffer. */
    cr_assert_eq(wire_raft_encode(&b, 0, &m), -EMSGSIZE);
    /* The buffer is reusable afterwards. */
    struct wire_ping p = {1, 2};
    cr_assert_eq(wire_ping_encode(&b, WIRE_PING, &p), 0);
    frame_ok();
}

/* ------------------------------------------------------------ calls */

static const uint8_t meta_line[] = "topic orders partitions 3\n";
/* Three records of a WRITE_REQ; one longer than 255 to use every byte of a
 * length. */
static uint32_t rec_lens[] = {3, 1, 260};
static uint8_t recs[3 + 1 + 260];
static uint8_t read_data[100];

/* A valid call of the given kind, every field it carries set to a value
 * unlike the others (and using all their bytes), so a swapped or narrowed
 * field shows. */
static uint8_t repair_data[2 * WIRE_REPAIR_ENTRY_HDR + 5];

static struct wire_call sample_call(uint8_t kind)
{
    for (size_t i = 0; i < sizeof(recs); i++)
        recs[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof(read_data); i++)
        read_data[i] = (uint8_t)(0xff - i);
    struct wire_call c = {.kind = kind, .req = 0xa1a2a3a4a5a6a7a0ull + kind};
    switch (kind) {
    case WIRE_META_REQ:
        c.data = meta_line;
        c.data_len = sizeof(meta_line) - 1;
        break;
    case WIRE_META_RESP:
        c.status = -ENOENT;
        c.off = 0xb1b2b3b4b5b6b7b8ull;
        c.leader = 0xc1c2c3c4u;
        break;
    case WIRE_WRITE_REQ:
        c.group = 0xd1d2d3d4d5d6d7d8ull;
        c.producer = 0xe1e2e3e4e5e6e7e8ull;
        c.seq = 0xf1f2f3f4f5f6f7f8ull;
        c.n = 3;
        c.lens = rec_lens;
        c.data = recs;
        c.data_len = sizeof(recs);
        break;
    case WIRE_WRITE_RESP:
        c.group = 0xd1d2d3d4d5d6d7d8ull;
        c.status = -EAGAIN;
        c.off = 0xb1b2b3b4b5b6b7b8ull;
        c.term = 0x9192939495969798ull;
        c.leader = 0xc1c2c3c4u;
        break;
    case WIRE_QUIESCE:
        c.group = 0xd1d2d3d4d5d6d7d8ull;
        c.term = 0x9192939495969798ull;
        c.commit = 0x8182838485868788ull;
        c.size = 0x80000005u; /* isr */
        break;
    case WIRE_READ_REQ:
        c.group = 0xd1d2d3d4d5d6d7d8ull;
        c.off = 0xb1b2b3b4b5b6b7b8ull; /* pos */
        c.size = 0x00012345u;
        break;
    case WIRE_READ_RESP:
        c.group = 0xd1d2d3d4d5d6d7d8ull;
        c.status = 0;
        c.off = 0xb1b2b3b4b5b6b7b8ull; /* end */
        c.data = read_data;
        c.data_len = sizeof(read_data);
        break;
    case WIRE_SYNC_REQ:
        c.group = 0xd1d2d3d4d5d6d7d8ull;
        break;
    case WIRE_SYNC_RESP:
        c.group = 0xd1d2d3d4d5d6d7d8ull;
        c.status = -ETIMEDOUT;
        c.off = 0xb1b2b3b4b5b6b7b8ull; /* commit */
        break;
    case WIRE_REPAIR_REQ:
        c.group = 0xd1d2d3d4d5d6d7d8ull;
        c.off = 0xb1b2b3b4b5b6b7b8ull;
        c.n = WIRE_REPAIR_MAX;
        break;
    case WIRE_TRANSFER:
        c.group = 0xd1d2d3d4d5d6d7d8ull;
        c.size = 0xc1c2c3c4u; /* to */
        break;
    case WIRE_INFO:
        c.data = (const uint8_t *)"kafka=127.0.0.1:9092";
        c.data_len = 20;
        break;
    case WIRE_REPAIR_RESP: {
        /* Two entries: a record with side data, a NOOP. */
        struct wire_repair_entry e1 = {.ts = 0x1112131415161718ll,
                                       .flags = 4,
                                       .len = 3,
                                       .aux_len = 2,
                                       .aux = (const uint8_t *)"ax",
                                       .rec = (const uint8_t *)"ab\n"},
                                 e2 = {.ts = 9, .flags = 1};
        wire_repair_put(repair_data, &e1);
        wire_repair_put(repair_data + wire_repair_size(&e1), &e2);
        c.group = 0xd1d2d3d4d5d6d7d8ull;
        c.status = 0;
        c.off = 0xb1b2b3b4b5b6b7b8ull;
        c.n = 2;
        c.data = repair_data;
        c.data_len = wire_repair_size(&e1) + wire_repair_size(&e2);
        break;
    }
    default:
        cr_assert_fail("no sample call of kind %u: add one", kind);
    }
    return c;
}

/* Encodes c into b and checks the frame as a receiver does: a CALL frame
 * of body_len bytes (the layout of wire.h). */
static void encode_call(const struct wire_call *c, size_t body_len)
{
    cr_assert_eq(wire_call_encode(&b, c), 0, "kind %u", c->kind);
    struct wire_hdr h = frame_ok();
    cr_assert_eq(h.type, WIRE_CALL);
    cr_assert_eq(h.length, body_len, "kind %u: body of %u bytes, not %zu", c->kind, h.length,
                 body_len);
}

/* Encodes c, decodes it into *out as a receiver does; kind and req always
 * come back, and data (when any) is borrowed from the frame.  Free *out with
 * wire_call_free. */
static void call_round_trip(const struct wire_call *c, size_t body_len, struct wire_call *out)
{
    encode_call(c, body_len);
    cr_assert_eq(wire_call_decode(b.p + WIRE_HDR, b.len - WIRE_HDR, out), 0, "kind %u", c->kind);
    cr_assert_eq(out->kind, c->kind);
    cr_assert_eq(out->req, c->req);
    if (out->data_len) {
        cr_assert_geq(out->data, b.p + WIRE_HDR);
        cr_assert_leq(out->data + out->data_len, b.p + b.len);
    }
    if (c->kind != WIRE_WRITE_REQ)
        cr_assert_null(out->lens);
}

/* Offsets into an encoded CALL body (see wire.h): after kind u8 and req u64. */
#define CALL_OFF        9
#define CALL_OFF_STATUS (CALL_OFF + 8) /* WRITE_RESP, READ_RESP, SYNC_RESP (after group) */
#define CALL_OFF_N      (CALL_OFF + 24)
#define CALL_OFF_LENS   (CALL_OFF_N + 4)

/* Decodes len bytes at body and expects a refusal that leaves nothing to
 * free; wire_call_free is called anyway (under ASan a double free or a
 * leak would be reported). */
static void refused(const uint8_t *body, size_t len, const char *what)
{
    struct wire_call c;
    int rc = wire_call_decode(body, len, &c);
    bool lens_left = c.lens != NULL;
    wire_call_free(&c);
    cr_assert_null(c.lens);
    cr_assert_eq(rc, -EBADMSG, "%s: decoded with %d", what, rc);
    cr_assert_not(lens_left, "%s: refused but left lens to free", what);
}

__attribute__((format(printf, 3, 4))) static void call_refused(const uint8_t *body, size_t len,
                                                               const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    refused(body, len, what);
}

/* The same on an exact copy of the body, so that a read past its end is an
 * ASan report (the frame buffer b has room behind the body). */
__attribute__((format(printf, 3, 4))) static void call_refused_copy(const uint8_t *body, size_t len,
                                                                    const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    uint8_t *copy = malloc(len ? len : 1);
    cr_assert_not_null(copy);
    memcpy(copy, body, len);
    refused(copy, len, what);
    free(copy);
}

/* Starts a CALL body by hand: kind and req. */
static void call_begin(uint8_t kind)
{
    wire_begin(&b, WIRE_CALL);
    wire_put_u8(&b, kind);
    wire_put_u64(&b, 42);
}

/* Closes the frame begun by call_begin, checks it as a receiver does, and
 * expects its body refused. */
static void call_end_refused(const char *what)
{
    cr_assert_eq(wire_end(&b), 0);
    struct wire_hdr h = frame_ok();
    cr_assert_eq(h.type, WIRE_CALL);
    call_refused(b.p + WIRE_HDR, h.length, "%s", what);
}

/* The same, expecting the body accepted (the bounds of the refusals). */
static void call_end_accepted(const char *what)
{
    cr_assert_eq(wire_end(&b), 0);
    struct wire_hdr h = frame_ok();
    struct wire_call c;
    int rc = wire_call_decode(b.p + WIRE_HDR, h.length, &c);
    wire_call_free(&c);
    cr_assert_eq(rc, 0, "%s: refused with %d", what, rc);
}

/* A WRITE_REQ by hand, up to and with its lens; the caller adds the bytes. */
static void write_req_begin(uint32_t n, const uint32_t *lens, size_t nlens)
{
    call_begin(WIRE_WRITE_REQ);
    wire_put_u64(&b, 1); /* group */
    wire_put_u64(&b, 2); /* producer */
    wire_put_u64(&b, 3); /* seq */
    wire_put_u32(&b, n);
    for (size_t i = 0; i < nlens; i++)
        wire_put_u32(&b, lens[i]);
}

Test(wire, call_meta_req_round_trips)
{
    struct wire_call c = sample_call(WIRE_META_REQ), out;
    call_round_trip(&c, 9 + 4 + c.data_len, &out);
    cr_assert_eq(out.data_len, sizeof(meta_line) - 1);
    cr_assert_eq(memcmp(out.data, meta_line, out.data_len), 0);
    wire_call_free(&out);
}

Test(wire, call_meta_resp_round_trips)
{
    struct wire_call c = sample_call(WIRE_META_RESP), out;
    call_round_trip(&c, 9 + 4 + 8 + 4, &out);
    cr_assert_eq(out.status, -ENOENT);
    cr_assert_eq(out.off, 0xb1b2b3b4b5b6b7b8ull);
    cr_assert_eq(out.leader, 0xc1c2c3c4u);
    wire_call_free(&out);
}

Test(wire, call_write_req_round_trips_with_every_record_length)
{
    struct wire_call c = sample_call(WIRE_WRITE_REQ), out;
    call_round_trip(&c, 9 + 24 + 4 + 3 * 4 + sizeof(recs), &out);
    cr_assert_eq(out.group, 0xd1d2d3d4d5d6d7d8ull);
    cr_assert_eq(out.producer, 0xe1e2e3e4e5e6e7e8ull);
    cr_assert_eq(out.seq, 0xf1f2f3f4f5f6f7f8ull);
    cr_assert_eq(out.n, 3);
    cr_assert_not_null(out.lens);
    cr_assert_neq(out.lens, rec_lens);
    for (uint32_t i = 0; i < out.n; i++)
        cr_assert_eq(out.lens[i], rec_lens[i], "lens[%u]", i);
    cr_assert_eq(out.data_len, sizeof(recs));
    cr_assert_eq(memcmp(out.data, recs, sizeof(recs)), 0);
    wire_call_free(&out);
    cr_assert_null(out.lens);
    wire_call_free(&out); /* twice is harmless */
}

Test(wire, call_write_resp_round_trips)
{
    struct wire_call c = sample_call(WIRE_WRITE_RESP), out;
    call_round_trip(&c, 9 + 8 + 4 + 8 + 8 + 4, &out);
    cr_assert_eq(out.group, 0xd1d2d3d4d5d6d7d8ull);
    cr_assert_eq(out.status, -EAGAIN);
    cr_assert_eq(out.off, 0xb1b2b3b4b5b6b7b8ull);
    cr_assert_eq(out.term, 0x9192939495969798ull);
    cr_assert_eq(out.leader, 0xc1c2c3c4u);
    wire_call_free(&out);
}

Test(wire, call_quiesce_round_trips)
{
    struct wire_call c = sample_call(WIRE_QUIESCE), out;
    call_round_trip(&c, 9 + 8 + 8 + 8 + 4, &out);
    cr_assert_eq(out.group, 0xd1d2d3d4d5d6d7d8ull);
    cr_assert_eq(out.term, 0x9192939495969798ull);
    cr_assert_eq(out.commit, 0x8182838485868788ull);
    cr_assert_eq(out.size, 0x80000005u, "isr");
    wire_call_free(&out);
}

Test(wire, call_read_req_round_trips)
{
    struct wire_call c = sample_call(WIRE_READ_REQ), out;
    call_round_trip(&c, 9 + 8 + 8 + 4, &out);
    cr_assert_eq(out.group, 0xd1d2d3d4d5d6d7d8ull);
    cr_assert_eq(out.off, 0xb1b2b3b4b5b6b7b8ull, "pos");
    cr_assert_eq(out.size, 0x00012345u);
    wire_call_free(&out);
}

Test(wire, call_read_resp_round_trips_with_and_without_bytes)
{
    struct wire_call c = sample_call(WIRE_READ_RESP), out;
    call_round_trip(&c, 9 + 8 + 4 + 8 + sizeof(read_data), &out);
    cr_assert_eq(out.group, 0xd1d2d3d4d5d6d7d8ull);
    cr_assert_eq(out.status, 0);
    cr_assert_eq(out.off, 0xb1b2b3b4b5b6b7b8ull, "end");
    cr_assert_eq(out.data_len, sizeof(read_data));
    cr_assert_eq(memcmp(out.data, read_data, sizeof(read_data)), 0);
    wire_call_free(&out);

    c.status = -EIO;
    c.data = NULL;
    c.data_len = 0;
    call_round_trip(&c, 9 + 8 + 4 + 8, &out);
    cr_assert_eq(out.group, 0xd1d2d3d4d5d6d7d8ull);
    cr_assert_eq(out.status, -EIO);
    cr_assert_eq(out.off, 0xb1b2b3b4b5b6b7b8ull);
    cr_assert_eq(out.data_len, 0);
    cr_assert_null(out.data);
    wire_call_free(&out);
}

Test(wire, call_sync_req_round_trips)
{
    struct wire_call c = sample_call(WIRE_SYNC_REQ), out;
    call_round_trip(&c, 9 + 8, &out);
    cr_assert_eq(out.group, 0xd1d2d3d4d5d6d7d8ull);
    wire_call_free(&out);
    c.group = 0; /* the metadata group */
    call_round_trip(&c, 9 + 8, &out);
    cr_assert_eq(out.group, 0);
    wire_call_free(&out);
}

Test(wire, call_sync_resp_round_trips)
{
    struct wire_call c = sample_call(WIRE_SYNC_RESP), out;
    call_round_trip(&c, 9 + 8 + 4 + 8, &out);
    cr_assert_eq(out.group, 0xd1d2d3d4d5d6d7d8ull);
    cr_assert_eq(out.status, -ETIMEDOUT);
    cr_assert_eq(out.off, 0xb1b2b3b4b5b6b7b8ull);
    wire_call_free(&out);
}

/* The bounds of the refusals below are accepted. */
Test(wire, call_limits_are_inclusive)
{
    static const uint8_t status_kinds[] = {WIRE_META_RESP, WIRE_WRITE_RESP, WIRE_READ_RESP,
                                           WIRE_SYNC_RESP};
    static const int32_t ok[] = {0, -1, -4095};
    struct wire_call out;
    for (size_t k = 0; k < sizeof(status_kinds); k++)
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
            struct wire_call c = sample_call(status_kinds[k]);
            c.status = ok[i];
            cr_assert_eq(wire_call_encode(&b, &c), 0);
            frame_ok();
            cr_assert_eq(wire_call_decode(b.p + WIRE_HDR, b.len - WIRE_HDR, &out), 0,
                         "kind %u, status %d", c.kind, ok[i]);
            cr_assert_eq(out.status, ok[i]);
            wire_call_free(&out);
        }

    struct wire_call c = sample_call(WIRE_READ_REQ);
    c.size = WIRE_READ_MAX;
    call_round_trip(&c, 9 + 8 + 8 + 4, &out);
    cr_assert_eq(out.size, WIRE_READ_MAX);
    wire_call_free(&out);

    uint8_t *big = calloc(WIRE_READ_MAX, 1);
    cr_assert_not_null(big);
    big[WIRE_READ_MAX - 1] = 0x5a;
    c = sample_call(WIRE_READ_RESP);
    c.data = big;
    c.data_len = WIRE_READ_MAX;
    call_round_trip(&c, 9 + 8 + 4 + 8 + WIRE_READ_MAX, &out);
    cr_assert_eq(out.data_len, WIRE_READ_MAX);
    cr_assert_eq(out.data[WIRE_READ_MAX - 1], 0x5a);
    wire_call_free(&out);
    free(big);

    /* n = left / 5: as many records as the bytes can hold, one byte each. */
    static const uint32_t ones[] = {1, 1};
    write_req_begin(2, ones, 2);
    wire_put_bytes(&b, "ab", 2);
    call_end_accepted("two 1-byte records");
    static const uint32_t one[] = {1};
    write_req_begin(1, one, 1);
    wire_put_bytes(&b, "a", 1);
    call_end_accepted("one 1-byte record");
    call_begin(WIRE_META_REQ);
    wire_put_u32(&b, 1);
    wire_put_u8(&b, 'x');
    call_end_accepted("a 1-byte metadata line");
}

/* ------------------------------------------------------------ call refusals */

Test(wire, call_of_unknown_kind_is_refused)
{
    call_begin(0);
    call_end_refused("kind 0, nothing after req");
    call_begin(0);
    wire_put_u64(&b, 1);
    call_end_refused("kind 0 with a SYNC_REQ-like body");
    call_begin(WIRE_NCALLS);
    call_end_refused("kind WIRE_NCALLS, nothing after req");
    call_begin(WIRE_NCALLS);
    wire_put_u64(&b, 1);
    call_end_refused("kind WIRE_NCALLS with a SYNC_REQ-like body");
    call_begin(0xff);
    wire_put_u64(&b, 1);
    call_end_refused("kind 255");
}

/* Every prefix of a valid body of every kind is refused, and so is a body
 * with a byte too many.  (READ_RESP's and INFO's bytes are what is left of the body, so
 * there a prefix or an extra byte is another valid answer: it is cut only
 * inside its fixed part, and given no bytes.) */
Test(wire, call_truncated_or_overlong_bodies_are_refused)
{
    for (uint8_t kind = 1; kind < WIRE_NCALLS; kind++) {
        struct wire_call c = sample_call(kind);
        bool rest = kind == WIRE_READ_RESP || kind == WIRE_INFO; /* bodies ending in "the rest" */
        if (rest) {
            c.data = NULL;
            c.data_len = 0;
        }
        cr_assert_eq(wire_call_encode(&b, &c), 0);
        size_t n = b.len - WIRE_HDR;
        for (size_t k = 0; k < n; k++)
            call_refused_copy(b.p + WIRE_HDR, k, "kind %u cut to %zu of %zu bytes", kind, k, n);
        if (rest)
            continue;
        wire_put_u8(&b, 0);
        cr_assert_eq(wire_end(&b), 0);
        frame_ok();
        call_refused_copy(b.p + WIRE_HDR, n + 1, "kind %u with a trailing byte", kind);
        wire_put_bytes(&b, "garbage", 7);
        cr_assert_eq(wire_end(&b), 0);
        frame_ok();
        call_refused_copy(b.p + WIRE_HDR, n + 8, "kind %u with 8 trailing bytes", kind);
    }
}

Test(wire, call_meta_req_with_a_bad_length_is_refused)
{
    call_begin(WIRE_META_REQ);
    wire_put_u32(&b, 0);
    call_end_refused("length 0, nothing after");
    call_begin(WIRE_META_REQ);
    wire_put_u32(&b, 0);
    wire_put_bytes(&b, "abc", 3);
    call_end_refused("length 0, bytes after");
    call_begin(WIRE_META_REQ);
    wire_put_u32(&b, 4);
    wire_put_bytes(&b, "abc", 3);
    call_end_refused("length one more than what is left");
    call_begin(WIRE_META_REQ);
    wire_put_u32(&b, 0xffffffffu);
    wire_put_bytes(&b, "abc", 3);
    call_end_refused("length 4 GiB");
    call_begin(WIRE_META_REQ);
    wire_put_u32(&b, 2);
    wire_put_bytes(&b, "abc", 3);
    call_end_refused("length one less than what is left");
}

Test(wire, call_write_req_with_bad_counts_or_lengths_is_refused)
{
    write_req_begin(0, NULL, 0);
    call_end_refused("n = 0, nothing after");
    write_req_begin(0, NULL, 0);
    wire_put_bytes(&b, "abcde", 5);
    call_end_refused("n = 0, bytes after");

    static const uint32_t ones[] = {1, 1};
    write_req_begin(3, ones, 2);
    wire_put_bytes(&b, "ab", 2);
    call_end_refused("n = 3 with 10 bytes left (left / 5 = 2)");

    static const uint32_t zero_last[] = {3, 0}, zero_first[] = {0, 3};
    write_req_begin(2, zero_last, 2);
    wire_put_bytes(&b, "abc", 3); /* the sum is right */
    call_end_refused("a zero record length (last)");
    write_req_begin(2, zero_first, 2);
    wire_put_bytes(&b, "abc", 3);
    call_end_refused("a zero record length (first)");

    static const uint32_t three_five[] = {3, 5};
    write_req_begin(2, three_five, 2);
    wire_put_bytes(&b, "abcdefg", 7);
    call_end_refused("lens sum to one more than the bytes left");
    write_req_begin(2, three_five, 2);
    wire_put_bytes(&b, "abcdefghi", 9);
    call_end_refused("lens sum to one less than the bytes left");
    write_req_begin(2, three_five, 2);
    call_end_refused("lens and no bytes");
    /* 0xffffffff + 3 is 2 in 32 bits: the sum must not wrap. */
    static const uint32_t wrap[] = {0xffffffffu, 3};
    write_req_begin(2, wrap, 2);
    wire_put_bytes(&b, "ab", 2);
    call_end_refused("lens whose sum wraps 32 bits to the bytes left");
}

/* Caps this test's address space (Criterion runs each test in a process of
 * its own) at what it maps now and 512 MiB more, so that an allocation by a
 * lying count fails instead of succeeding by overcommit. */
static void cap_address_space(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    cr_assert_not_null(f);
    unsigned long pages;
    cr_assert_eq(fscanf(f, "%lu", &pages), 1);
    fclose(f);
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_AS, &rl), 0);
    rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + (512u << 20);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < cap)
        return;
    rl.rlim_cur = cap;
    cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
}

/* Counts the rest of the body cannot hold are refused before lens is
 * allocated for them: without the check the decoder would allocate and fill
 * 16 GiB (4 GiB) here; under the cap that is -ENOMEM, or an ASan
 * out-of-memory report. */
Test(wire, call_write_req_count_is_bounded_before_allocating)
{
    static const uint32_t one[] = {1};
    write_req_begin(0xffffffffu, one, 1);
    wire_put_bytes(&b, "a", 1);
    cap_address_space();
    call_end_refused("n = 4 billion with 5 bytes left");
    write_req_begin(0x40000000u, one, 1);
    for (int i = 0; i < 64; i++)
        wire_put_u32(&b, 1);
    call_end_refused("n = 2^30 with 260 bytes left");
}

Test(wire, call_read_sizes_over_the_limit_are_refused)
{
    call_begin(WIRE_READ_REQ);
    wire_put_u64(&b, 1); /* group */
    wire_put_u64(&b, 0); /* pos */
    wire_put_u32(&b, WIRE_READ_MAX + 1);
    call_end_refused("READ_REQ size WIRE_READ_MAX + 1");
    call_begin(WIRE_READ_REQ);
    wire_put_u64(&b, 1);
    wire_put_u64(&b, 0);
    wire_put_u32(&b, 0xffffffffu);
    call_end_refused("READ_REQ size 4 GiB");

    uint8_t *big = calloc(WIRE_READ_MAX + 1, 1);
    cr_assert_not_null(big);
    call_begin(WIRE_READ_RESP);
    wire_put_u64(&b, 1); /* group */
    wire_put_u32(&b, 0); /* status */
    wire_put_u64(&b, 0); /* end */
    wire_put_bytes(&b, big, WIRE_READ_MAX + 1);
    free(big);
    call_end_refused("READ_RESP with WIRE_READ_MAX + 1 bytes");
}

/* Statuses are 0 or a negative errno: anything else in a valid body of
 * each kind that carries one is refused. */
Test(wire, call_statuses_out_of_range_are_refused)
{
    static const struct {
        uint8_t kind;
        size_t off;
    } at[] = {{WIRE_META_RESP, CALL_OFF},
              {WIRE_WRITE_RESP, CALL_OFF_STATUS},
              {WIRE_READ_RESP, CALL_OFF_STATUS},
              {WIRE_SYNC_RESP, CALL_OFF_STATUS}};
    static const int32_t bad[] = {1, 4095, INT32_MAX, -4096, INT32_MIN};
    for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
        struct wire_call c = sample_call(at[k].kind), out;
        cr_assert_eq(wire_call_encode(&b, &c), 0);
        /* Unpatched it decodes, with the status where wire.h puts it. */
        cr_assert_eq(wire_call_decode(b.p + WIRE_HDR, b.len - WIRE_HDR, &out), 0);
        int32_t was;
        memcpy(&was, b.p + WIRE_HDR + at[k].off, 4); /* little-endian machine */
        cr_assert_eq(was, c.status, "kind %u: status not at offset %zu", c.kind, at[k].off);
        wire_call_free(&out);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            memcpy(b.p + WIRE_HDR + at[k].off, &bad[i], 4);
            cr_assert_eq(wire_end(&b), 0);
            frame_ok();
            call_refused(b.p + WIRE_HDR, b.len - WIRE_HDR, "kind %u, status %d", c.kind, bad[i]);
        }
    }
}

/* A WRITE_REQ refused after its lens were allocated frees them and leaves
 * none behind: wire_call_free afterwards is harmless (no double free under
 * ASan), and nothing leaks (LeakSanitizer, valgrind). */
Test(wire, call_refused_after_allocating_lens_leaves_nothing_to_free)
{
    struct wire_call c = sample_call(WIRE_WRITE_REQ), out;
    cr_assert_eq(wire_call_encode(&b, &c), 0);
    size_t n = b.len - WIRE_HDR;
    /* Cut inside the bytes: the lens are read, then the sum is wrong. */
    for (size_t k = CALL_OFF_LENS + 3 * 4; k < n; k++) {
        cr_assert_eq(wire_call_decode(b.p + WIRE_HDR, k, &out), -EBADMSG);
        cr_assert_null(out.lens, "cut to %zu", k);
        wire_call_free(&out);
    }
    /* A zero length among them. */
    uint32_t zero = 0;
    memcpy(b.p + WIRE_HDR + CALL_OFF_LENS + 4, &zero, 4);
    cr_assert_eq(wire_call_decode(b.p + WIRE_HDR, n, &out), -EBADMSG);
    cr_assert_null(out.lens);
    wire_call_free(&out);
    /* The same struct decodes a good call afterwards, and frees it. */
    c = sample_call(WIRE_WRITE_REQ);
    call_round_trip(&c, n, &out);
    cr_assert_eq(out.n, 3);
    wire_call_free(&out);
    cr_assert_null(out.lens);
}

Test(wire, repair_resp_entries_must_be_exactly_n_whole_ones)
{
    struct wire_call c = sample_call(WIRE_REPAIR_RESP), out;
    cr_assert_eq(wire_call_encode(&b, &c), 0);
    struct wire_hdr h = frame_ok();
    cr_assert_eq(wire_call_decode(b.p + WIRE_HDR, h.length, &out), 0);
    cr_assert_eq(out.n, 2);
    size_t at = 0;
    struct wire_repair_entry e;
    cr_assert_eq(wire_repair_next(out.data, out.data_len, &at, &e), 0);
    cr_assert_eq(e.ts, 0x1112131415161718ll);
    cr_assert_eq(e.flags, 4);
    cr_assert_eq(e.len, 3);
    cr_assert_eq(e.aux_len, 2);
    cr_assert_arr_eq(e.aux, "ax", 2);
    cr_assert_arr_eq(e.rec, "ab\n", 3);
    cr_assert_eq(wire_repair_next(out.data, out.data_len, &at, &e), 0);
    cr_assert_eq(e.flags, 1);
    cr_assert_eq(e.len + e.aux_len, 0);
    cr_assert_eq(wire_repair_next(out.data, out.data_len, &at, &e), 1, "the end");
    wire_call_free(&out);
    /* A count that lies, either way, or a failure that carries entries. */
    for (int k = 0; k < 3; k++) {
        struct wire_call bad = c;
        if (k == 0)
            bad.n = 1;
        else if (k == 1)
            bad.n = 3;
        else
            bad.status = -EIO;
        cr_assert_eq(wire_call_encode(&b, &bad), 0);
        h = frame_ok();
        cr_assert_eq(wire_call_decode(b.p + WIRE_HDR, h.length, &out), -EBADMSG, "case %d", k);
    }
    /* An entry whose lengths run past the data. */
    uint8_t d[WIRE_REPAIR_ENTRY_HDR + 2];
    struct wire_repair_entry big = {.len = 0xffffffffu, .aux_len = 1};
    wire_repair_put(d, &big);
    at = 0;
    cr_assert_eq(wire_repair_next(d, sizeof(d), &at, &e), -EBADMSG);
    big = (struct wire_repair_entry){.len = 1, .aux_len = 0xfffffffeu};
    wire_repair_put(d, &big);
    at = 0;
    cr_assert_eq(wire_repair_next(d, sizeof(d), &at, &e), -EBADMSG);
    for (size_t k = 1; k < WIRE_REPAIR_ENTRY_HDR; k++) {
        at = 0;
        cr_assert_eq(wire_repair_next(repair_data, k, &at, &e), -EBADMSG, "a header cut to %zu", k);
    }
}

Test(wire, info_carries_text_up_to_its_limit)
{
    struct wire_call c = {.kind = WIRE_INFO, .data = (const uint8_t *)"kafka=h:1", .data_len = 9}, out;
    call_round_trip(&c, 9 + 9, &out);
    cr_assert_eq(out.data_len, 9);
    cr_assert_eq(memcmp(out.data, "kafka=h:1", 9), 0);
    wire_call_free(&out);
    static uint8_t big[WIRE_INFO_MAX + 1];
    memset(big, 'x', sizeof(big));
    c.data = big;
    c.data_len = sizeof(big);
    cr_assert_eq(wire_call_encode(&b, &c), 0);
    call_refused_copy(b.p + WIRE_HDR, b.len - WIRE_HDR, "an INFO of %zu bytes", sizeof(big));
}
