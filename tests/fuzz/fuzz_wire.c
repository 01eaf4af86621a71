/*
 * fuzz_wire — libFuzzer target over the cluster port's pure codec
 * (broker/net/wire.c): the frame header, the checksum and every body
 * decoder, with round-trip oracles.
 *
 * INPUT.  Any bytes.  The first WIRE_HDR bytes go to wire_hdr_decode; the
 * rest ("the body") goes to every body decoder whatever the header says and
 * whether or not the checksum matches, so that the decoders see arbitrary
 * bodies and not only the 1 in 2^64 that carry a right checksum.
 *
 * ORACLES (abort() on failure, so that libFuzzer reports and saves the
 * input; ASan/UBSan catch reads past the body, leaks and undefined
 * behaviour on their own):
 *   - a header that decodes reports the raw fields; one whose checksum
 *     matches a body of its length is exactly the frame wire_begin /
 *     wire_end build around that body (the framing is canonical);
 *   - every body that decodes re-encodes, through the matching encoder, to
 *     a body of the same length that decodes to equal fields; for all but
 *     REFUSE (whose text is sanitized) to the very same bytes: the codec is
 *     canonical, one encoding per message;
 *   - a HELLO decoded as HELLO has an all-zero mac;
 *   - a RAFT body that decodes with a large max_entries decodes with a
 *     small one exactly when its entry count fits the small bound;
 *   - a refused body leaves nothing to free; a decoded CALL's status is 0
 *     or -errno, its data lies inside the body, WRITE_REQ's lengths sum to
 *     its data, REPAIR_RESP holds exactly n entries that wire_repair_put
 *     writes back to the same bytes.
 */
#include "broker/net/wire.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Bounds for the raft decoder: the netport's, and a small one. */
#define BIG_ENTRIES   65536
#define SMALL_ENTRIES 3

static struct wire_buf wb;

/* Aborts with a message naming the broken property. */
#define ORACLE(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_wire: oracle failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The body of the frame in wb. */
static const uint8_t *wb_body(void)
{
    return wb.p + WIRE_HDR;
}

static size_t wb_body_len(void)
{
    return wb.len - WIRE_HDR;
}

/* ------------------------------------------------------------ header */

static void check_header(const uint8_t *data, size_t size)
{
    struct wire_hdr h;
    if (wire_hdr_decode(data, &h) != 0)
        return;
    ORACLE(h.type == data[5] && h.type > 0 && h.type < WIRE_NTYPES);
    ORACLE(h.length == ((uint32_t)data[8] | (uint32_t)data[9] << 8 | (uint32_t)data[10] << 16 |
                        (uint32_t)data[11] << 24));
    ORACLE(h.length <= WIRE_MAX_BODY);
    const uint8_t *body = data + WIRE_HDR;
    size_t rest = size - WIRE_HDR;
    if (h.length > rest || !wire_check(data, &h, body))
        return;
    /* A verified frame is what the builder makes of its body. */
    wire_begin(&wb, (enum wire_type)h.type);
    wire_put_bytes(&wb, body, h.length);
    ORACLE(wire_end(&wb) == 0);
    ORACLE(wb.len == WIRE_HDR + h.length);
    ORACLE(memcmp(wb.p, data, wb.len) == 0);
}

/* ------------------------------------------------------------ bodies */

static void hello_eq(const struct wire_hello *a, const struct wire_hello *b)
{
    ORACLE(a->cluster_id == b->cluster_id && a->from == b->from && a->to == b->to);
    ORACLE(a->max_version == b->max_version && a->incarnation == b->incarnation &&
           a->known == b->known && a->auth == b->auth);
    ORACLE(memcmp(a->nonce, b->nonce, WIRE_NONCE_BYTES) == 0);
    ORACLE(memcmp(a->mac, b->mac, WIRE_MAC_BYTES) == 0);
}

static void check_hello(const uint8_t *body, size_t len, enum wire_type t)
{
    struct wire_hello h, h2;
    if (wire_hello_decode(body, len, t, &h) != 0)
        return;
    ORACLE(h.auth <= 1);
    if (t == WIRE_HELLO) {
        static const uint8_t zero[WIRE_MAC_BYTES];
        ORACLE(memcmp(h.mac, zero, WIRE_MAC_BYTES) == 0);
    }
    ORACLE(wire_hello_encode(&wb, t, &h) == 0);
    ORACLE(wb_body_len() == len && memcmp(wb_body(), body, len) == 0);
    ORACLE(wire_hello_decode(wb_body(), wb_body_len(), t, &h2) == 0);
    hello_eq(&h, &h2);
}

static void check_auth(const uint8_t *body, size_t len)
{
    uint8_t mac[WIRE_MAC_BYTES], mac2[WIRE_MAC_BYTES];
    if (wire_auth_decode(body, len, mac) != 0)
        return;
    ORACLE(wire_auth_encode(&wb, mac) == 0);
    ORACLE(wb_body_len() == len && memcmp(wb_body(), body, len) == 0);
    ORACLE(wire_auth_decode(wb_body(), wb_body_len(), mac2) == 0);
    ORACLE(memcmp(mac, mac2, WIRE_MAC_BYTES) == 0);
}

static void check_refuse(const uint8_t *body, size_t len)
{
    struct wire_refuse r, r2;
    if (wire_refuse_decode(body, len, &r) != 0)
        return;
    size_t n = strlen(r.text);
    ORACLE(n < sizeof(r.text));
    for (size_t i = 0; i < n; i++)
        ORACLE((unsigned char)r.text[i] >= 0x20 && (unsigned char)r.text[i] <= 0x7e);
    ORACLE(wire_refuse_encode(&wb, r.reason, r.text) == 0);
    /* Same length: the decoder keeps every byte (a NUL becomes '?'). */
    ORACLE(wb_body_len() == len);
    ORACLE(wire_refuse_decode(wb_body(), wb_body_len(), &r2) == 0);
    ORACLE(r.reason == r2.reason && strcmp(r.text, r2.text) == 0);
    /* Printable bytes are kept as they were. */
    for (size_t i = 0; i < n; i++)
        if (body[3 + i] >= 0x20 && body[3 + i] <= 0x7e)
            ORACLE(r.text[i] == (char)body[3 + i]);
        else
            ORACLE(r.text[i] == '?');
}

static void check_ping(const uint8_t *body, size_t len)
{
    struct wire_ping p, p2;
    if (wire_ping_decode(body, len, &p) != 0)
        return;
    for (int t = WIRE_PING; t <= WIRE_PONG; t++) {
        ORACLE(wire_ping_encode(&wb, (enum wire_type)t, &p) == 0);
        ORACLE(wb_body_len() == len && memcmp(wb_body(), body, len) == 0);
        ORACLE(wire_ping_decode(wb_body(), wb_body_len(), &p2) == 0);
        ORACLE(p.nonce == p2.nonce && p.sent_ns == p2.sent_ns);
    }
}

static void raft_eq(const struct raft_msg *a, const struct raft_msg *b)
{
    ORACLE(a->type == b->type && a->reject == b->reject && a->transfer == b->transfer);
    ORACLE(a->from == b->from && a->to == b->to && a->term == b->term);
    ORACLE(a->index == b->index && a->log_term == b->log_term && a->commit == b->commit);
    ORACLE(a->hint_index == b->hint_index && a->hint_term == b->hint_term);
    ORACLE(a->n_entries == b->n_entries);
    for (size_t i = 0; i < a->n_entries; i++) {
        const struct raft_entry *x = &a->entries[i], *y = &b->entries[i];
        ORACLE(x->term == y->term && x->index == y->index && x->type == y->type);
        ORACLE(x->len == y->len);
        ORACLE(x->len == 0 || memcmp(x->buf, y->buf, x->len) == 0);
    }
    ORACLE(a->snap_conf.n == b->snap_conf.n);
    for (unsigned i = 0; i < a->snap_conf.n; i++)
        ORACLE(a->snap_conf.servers[i].id == b->snap_conf.servers[i].id &&
               a->snap_conf.servers[i].voter == b->snap_conf.servers[i].voter);
    ORACLE(a->snap_len == b->snap_len);
    ORACLE(a->snap_len == 0 || memcmp(a->snap_data, b->snap_data, a->snap_len) == 0);
}

static void check_raft(const uint8_t *body, size_t len)
{
    struct raft_msg m, m2, ms;
    struct raft_entry *es = NULL, *es2 = NULL, *ess = NULL;
    uint64_t group, group2, groups;
    int rc = wire_raft_decode(body, len, BIG_ENTRIES, &group, &m, &es);
    int rcs = wire_raft_decode(body, len, SMALL_ENTRIES, &groups, &ms, &ess);
    ORACLE(rc == 0 || rc == -EBADMSG || rc == -ENOMEM);
    ORACLE(rcs == 0 || rcs == -EBADMSG || rcs == -ENOMEM);
    if (rc != 0) {
        /* A refusal leaves nothing to free. */
        ORACLE(es == NULL);
        ORACLE(rcs != 0 && ess == NULL);
        return;
    }
    ORACLE(es == m.entries && (m.n_entries == 0) == (es == NULL));
    ORACLE(m.n_entries <= BIG_ENTRIES && m.from != 0 && m.to != 0);
    ORACLE(m.type > 0 && m.type < RAFT_MSG_TYPES);
    if (m.type != RAFT_MSG_SNAPSHOT)
        ORACLE(m.snap_conf.n == 0 && m.snap_len == 0);
    if (m.n_entries <= SMALL_ENTRIES) {
        ORACLE(rcs == 0 && groups == group);
        raft_eq(&m, &ms);
    } else {
        ORACLE(rcs == -EBADMSG && ess == NULL);
    }
    free(ess);

    ORACLE(wire_raft_encode(&wb, group, &m) == 0);
    ORACLE(wb_body_len() == len && memcmp(wb_body(), body, len) == 0);
    ORACLE(wire_raft_decode(wb_body(), wb_body_len(), BIG_ENTRIES, &group2, &m2, &es2) == 0);
    ORACLE(group == group2);
    raft_eq(&m, &m2);
    free(es2);
    free(es);
}

static void call_eq(const struct wire_call *a, const struct wire_call *b)
{
    ORACLE(a->kind == b->kind && a->req == b->req && a->status == b->status);
    ORACLE(a->leader == b->leader && a->group == b->group && a->producer == b->producer);
    ORACLE(a->seq == b->seq && a->off == b->off && a->term == b->term && a->commit == b->commit);
    ORACLE(a->size == b->size && a->n == b->n);
    ORACLE((a->lens == NULL) == (b->lens == NULL));
    if (a->lens)
        ORACLE(memcmp(a->lens, b->lens, (size_t)a->n * sizeof(*a->lens)) == 0);
    ORACLE(a->data_len == b->data_len);
    ORACLE(a->data_len == 0 || memcmp(a->data, b->data, a->data_len) == 0);
}

/* A REPAIR_RESP that decodes holds exactly n whole entries, each of which
 * wire_repair_put writes back to the same bytes. */
static void check_repair_entries(const struct wire_call *c)
{
    static uint8_t out[4096 + WIRE_REPAIR_ENTRY_HDR];
    struct wire_repair_entry e;
    size_t at = 0;
    uint32_t k = 0;
    int rc;
    ORACLE(c->n <= WIRE_REPAIR_MAX);
    while ((rc = wire_repair_next(c->data, c->data_len, &at, &e)) == 0) {
        size_t n = wire_repair_size(&e);
        ORACLE(n >= WIRE_REPAIR_ENTRY_HDR && at >= n && at <= c->data_len);
        const uint8_t *was = c->data + at - n;
        ORACLE(e.aux_len == 0 || e.aux == was + WIRE_REPAIR_ENTRY_HDR);
        ORACLE(e.len == 0 || e.rec == was + WIRE_REPAIR_ENTRY_HDR + e.aux_len);
        if (n <= sizeof(out)) { /* -max_len bounds them in practice */
            wire_repair_put(out, &e);
            ORACLE(memcmp(out, was, n) == 0);
        }
        k++;
    }
    ORACLE(rc == 1 && at == c->data_len && k == c->n);
}

static void check_call(const uint8_t *body, size_t len)
{
    struct wire_call c, c2;
    int rc = wire_call_decode(body, len, &c);
    ORACLE(rc == 0 || rc == -EBADMSG || rc == -ENOMEM);
    if (rc != 0) {
        ORACLE(c.lens == NULL); /* a refusal leaves nothing to free */
        return;
    }
    ORACLE(c.kind >= WIRE_META_REQ && c.kind < WIRE_NCALLS);
    ORACLE(c.status <= 0 && c.status >= -4095);
    ORACLE(c.data_len <= len);
    ORACLE(c.data_len == 0 || (c.data >= body && c.data + c.data_len <= body + len));
    if (c.kind == WIRE_WRITE_REQ) {
        uint64_t sum = 0;
        ORACLE(c.n >= 1 && c.lens != NULL);
        for (uint32_t i = 0; i < c.n; i++) {
            ORACLE(c.lens[i] >= 1);
            sum += c.lens[i];
        }
        ORACLE(sum == c.data_len);
    } else {
        ORACLE(c.lens == NULL);
    }
    if (c.kind == WIRE_READ_REQ)
        ORACLE(c.size <= WIRE_READ_MAX);
    if (c.kind == WIRE_READ_RESP)
        ORACLE(c.data_len <= WIRE_READ_MAX);
    if (c.kind == WIRE_REPAIR_RESP)
        check_repair_entries(&c);

    ORACLE(wire_call_encode(&wb, &c) == 0);
    ORACLE(wb_body_len() == len && memcmp(wb_body(), body, len) == 0);
    ORACLE(wire_call_decode(wb_body(), wb_body_len(), &c2) == 0);
    call_eq(&c, &c2);
    wire_call_free(&c2);
    wire_call_free(&c);
    ORACLE(c.lens == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < WIRE_HDR)
        return 0;
    check_header(data, size);
    const uint8_t *body = data + WIRE_HDR;
    size_t len = size - WIRE_HDR;
    check_hello(body, len, WIRE_HELLO);
    check_hello(body, len, WIRE_HELLO_OK);
    check_auth(body, len);
    check_refuse(body, len);
    check_ping(body, len);
    check_raft(body, len);
    check_call(body, len);
    return 0;
}
