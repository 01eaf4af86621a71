/*
 * test_wire — the cluster port's frame codec: every message round-trips,
 * and every malformed frame or body is refused (bad header fields, any
 * flipped byte, any truncation, trailing bytes, lying counts and lengths)
 * without reading past the frame or allocating by a count it carries.
 */
#include "broker/net/wire.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
                           .max_version = 1},
                      out;
    cr_assert_eq(wire_hello_encode(&b, WIRE_HELLO, &h), 0);
    struct wire_hdr hd = frame_ok();
    cr_assert_eq(hd.type, WIRE_HELLO);
    cr_assert_eq(wire_hello_decode(b.p + WIRE_HDR, hd.length, &out), 0);
    cr_assert_eq(out.cluster_id, h.cluster_id);
    cr_assert_eq(out.from, 2);
    cr_assert_eq(out.to, 3);
    cr_assert_eq(out.max_version, 1);
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
    hdr[4] = 2;
    cr_assert_eq(wire_hdr_decode(hdr, &h), -EPROTO, "version");
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

    struct wire_hello hl = {1, 2, 3, 1}, ho;
    cr_assert_eq(wire_hello_encode(&b, WIRE_HELLO, &hl), 0);
    for (size_t k = 0; k < b.len - WIRE_HDR; k++)
        cr_assert_eq(wire_hello_decode(b.p + WIRE_HDR, k, &ho), -EBADMSG);
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
