/*
 * wire — the frames of the cluster port: a pure codec, no I/O.
 *
 * FRAME (all integers little-endian)
 *   off size  field
 *     0    4  magic      "MKP1" (0x31504b4d read as LE u32)
 *     4    1  version    WIRE_VERSION
 *     5    1  type       enum wire_type
 *     6    2  flags      0 (reserved: a frame with other bits set is refused)
 *     8    4  length     bytes of the body that follows, <= WIRE_MAX_BODY
 *    12    8  check      xxh3-64 of bytes 0..11 and of the body, seeded
 *                        with WIRE_SEED
 *    20    -  body       `length` bytes, laid out per type (below)
 *
 * A receiver reads the 20-byte header, checks magic, version, flags, type
 * and length before it reserves anything, then reads the body and checks
 * the checksum before it decodes.  Any failure is a bad frame: the
 * connection is closed, nothing of the frame is used.  Every length and
 * count inside a body is checked against what remains of it before use, so
 * a lying count can never read past the frame or allocate unboundedly.
 *
 * BODIES
 *   HELLO / HELLO_OK   cluster_id u64, from u32, to u32, max_version u8,
 *                      incarnation u64 (the sender's data dir's, random at
 *                      its creation), known u64 (the incarnation the sender
 *                      last saw of the receiver, 0: none), auth u8 (1: the
 *                      sender has a cluster.secret, else 0), nonce (32
 *                      random bytes); HELLO_OK only: mac (32 bytes, the
 *                      acceptor's proof, see netport.c)
 *                      (the dialer sends HELLO, the acceptor answers
 *                      HELLO_OK or WIRE_REFUSE and closes)
 *   AUTH               mac (32 bytes): the dialer's proof; the acceptor
 *                      treats the connection as its peer's only after it
 *                      verified it (or refuses and closes)
 *   REFUSE             reason u8 (enum wire_refusal), text (u16 len, bytes)
 *   PING / PONG        nonce u64, sent_ns u64 (PONG echoes both)
 *   RAFT               group u64, then one raft message:
 *                        type u8, bits u8 (1 reject, 2 transfer),
 *                        from u64, to u64, term u64, index u64, log_term u64,
 *                        commit u64, hint_index u64, hint_term u64,
 *                        n_entries u32, entries: term u64, index u64,
 *                        type u8, len u32, bytes;
 *                        snapshot (SNAPSHOT only): conf_n u8 (<= 16),
 *                        servers: id u64, voter u8; data len u32, bytes
 *   CALL               a request between brokers or its answer:
 *                        kind u8 (enum wire_call_kind), req u64, then
 *                        META_REQ    line (u32 len, bytes): a metadata record
 *                        META_RESP   status i32, off u64, leader u32
 *                        WRITE_REQ   group u64, producer u64, seq u64,
 *                                    n u32 (>= 1), lens n x u32 (each >= 1),
 *                                    then the records' bytes (the sum of
 *                                    lens: exactly what is left)
 *                        WRITE_RESP  group u64, status i32, off u64, term u64,
 *                                    leader u32
 *                        QUIESCE     group u64, term u64, commit u64, isr u32
 *                                    (bit i: replica i of the group in sync)
 *                        READ_REQ    group u64, pos u64, size u32
 *                        READ_RESP   group u64, status i32, end u64, then
 *                                    the bytes
 *                        SYNC_REQ    group u64 (0: the metadata group)
 *                        SYNC_RESP   group u64, status i32, off u64: the
 *                                    leader's commit offset (ReadIndex)
 *                        REPAIR_REQ  group u64, off u64, n u32 (1..256): the
 *                                    committed entries [off, off + n)
 *                        REPAIR_RESP group u64, status i32, off u64, n u32,
 *                                    then n entries, each: ts u64, flags
 *                                    u32, len u32, aux_len u32, side data,
 *                                    record bytes (exactly what is left)
 *                        INFO        the rest: "kafka=HOST:PORT" (or empty), what
 *                                    this node tells its peers about itself
 *                                    once connected (at most 512 bytes)
 *                        TRANSFER    group u64, to u32: hand the group's
 *                                    leadership to node `to` (setfattr
 *                                    user.leader; no answer)
 *                                    (what is left, at most READ_MAX)
 */
#ifndef MK_WIRE_H
#define MK_WIRE_H

#include "raft/raft.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC    0x31504b4du /* "MKP1" */
#define WIRE_VERSION  2 /* 2: HELLO with auth and nonce, AUTH */
#define WIRE_HDR      20
#define WIRE_MAX_BODY ((64u << 20) + (1u << 20)) /* a 64 MiB record and its framing */
#define WIRE_SEED     0x6d696e696b61666bull      /* "minikafk" */

enum wire_type {
    WIRE_HELLO = 1,
    WIRE_HELLO_OK = 2,
    WIRE_REFUSE = 3,
    WIRE_PING = 4,
    WIRE_PONG = 5,
    WIRE_RAFT = 6,
    WIRE_CALL = 7,
    WIRE_AUTH = 8,
    WIRE_NTYPES
};

enum wire_refusal {
    WIRE_REFUSE_CLUSTER = 1, /* another cluster id */
    WIRE_REFUSE_NODE = 2,    /* unknown node id, or not addressed to us */
    WIRE_REFUSE_VERSION = 3,
    WIRE_REFUSE_DUPLICATE = 4, /* that peer is already connected */
    WIRE_REFUSE_AUTH = 5,      /* no, another or a wrong cluster.secret */
};

struct wire_hdr {
    uint8_t type;
    uint32_t length;
    uint64_t check;
};

/* Checks the first WIRE_HDR bytes of buf.  0, or -EBADMSG (bad magic,
 * flags, type or a length over WIRE_MAX_BODY), -EPROTO (version). */
int wire_hdr_decode(const uint8_t *buf, struct wire_hdr *h);

/* Whether body (h->length bytes) matches the header's checksum; hdr is the
 * header's raw bytes. */
bool wire_check(const uint8_t *hdr, const struct wire_hdr *h, const uint8_t *body);

/* ---- building frames ----------------------------------------------------- */

/* A growable frame under construction. */
struct wire_buf {
    uint8_t *p;
    size_t len, cap;
    bool failed;  /* an allocation failed or the body grew too big: unusable */
    bool too_big; /* the body passed WIRE_MAX_BODY */
};

void wire_buf_free(struct wire_buf *b);

/* Starts a frame of type t in b (reusing its memory), to be closed with
 * wire_end, which fills length and checksum.  0 or -ENOMEM; -EMSGSIZE when
 * the body passed WIRE_MAX_BODY. */
void wire_begin(struct wire_buf *b, enum wire_type t);
int wire_end(struct wire_buf *b);

void wire_put_u8(struct wire_buf *b, uint8_t v);
void wire_put_u16(struct wire_buf *b, uint16_t v);
void wire_put_u32(struct wire_buf *b, uint32_t v);
void wire_put_u64(struct wire_buf *b, uint64_t v);
void wire_put_bytes(struct wire_buf *b, const void *p, size_t n);

/* ---- reading bodies ------------------------------------------------------ */

/* A cursor over a body.  Reads past the end return zeroes and set bad:
 * check wire_rd_ok() once at the end of a decoder. */
struct wire_rd {
    const uint8_t *p;
    size_t left;
    bool bad;
};

void wire_rd_init(struct wire_rd *r, const uint8_t *body, size_t len);
uint8_t wire_get_u8(struct wire_rd *r);
uint16_t wire_get_u16(struct wire_rd *r);
uint32_t wire_get_u32(struct wire_rd *r);
uint64_t wire_get_u64(struct wire_rd *r);
/* n bytes in place (borrowed from the body), or NULL (and bad). */
const uint8_t *wire_get_bytes(struct wire_rd *r, size_t n);
/* No read failed and nothing is left over. */
bool wire_rd_done(const struct wire_rd *r);

/* ---- the messages -------------------------------------------------------- */

#define WIRE_NONCE_BYTES 32
#define WIRE_MAC_BYTES   32

struct wire_hello {
    uint64_t cluster_id;
    uint32_t from, to;
    uint8_t max_version;
    uint64_t incarnation, known;
    uint8_t auth; /* 0 or 1 */
    uint8_t nonce[WIRE_NONCE_BYTES];
    uint8_t mac[WIRE_MAC_BYTES]; /* HELLO_OK only (zero in a decoded HELLO) */
};
/* t is WIRE_HELLO or WIRE_HELLO_OK (only the latter carries mac). */
int wire_hello_encode(struct wire_buf *b, enum wire_type t, const struct wire_hello *h);
int wire_hello_decode(const uint8_t *body, size_t len, enum wire_type t, struct wire_hello *h);

int wire_auth_encode(struct wire_buf *b, const uint8_t mac[WIRE_MAC_BYTES]);
int wire_auth_decode(const uint8_t *body, size_t len, uint8_t mac[WIRE_MAC_BYTES]);

struct wire_refuse {
    uint8_t reason;
    char text[256];
};
int wire_refuse_encode(struct wire_buf *b, uint8_t reason, const char *text);
int wire_refuse_decode(const uint8_t *body, size_t len, struct wire_refuse *r);

struct wire_ping {
    uint64_t nonce, sent_ns;
};
int wire_ping_encode(struct wire_buf *b, enum wire_type t, const struct wire_ping *p);
int wire_ping_decode(const uint8_t *body, size_t len, struct wire_ping *p);

/* A raft message of group `group`.  Decoding borrows entry payloads and
 * snapshot data from the body and stores the entries in *entries (malloc'ed,
 * at most max_entries; the caller frees it). */
int wire_raft_encode(struct wire_buf *b, uint64_t group, const struct raft_msg *m);
int wire_raft_decode(const uint8_t *body, size_t len, size_t max_entries, uint64_t *group,
                     struct raft_msg *m, struct raft_entry **entries);

/* ---- calls between brokers (CALL frames) -------------------------------- */

enum wire_call_kind {
    WIRE_META_REQ = 1,
    WIRE_META_RESP,
    WIRE_WRITE_REQ,
    WIRE_WRITE_RESP,
    WIRE_QUIESCE,
    WIRE_READ_REQ,
    WIRE_READ_RESP,
    WIRE_SYNC_REQ,
    WIRE_SYNC_RESP,
    WIRE_REPAIR_REQ,
    WIRE_REPAIR_RESP,
    WIRE_TRANSFER,
    WIRE_INFO,
    WIRE_NCALLS
};

#define WIRE_REPAIR_MAX       256 /* entries per REPAIR_RESP */
#define WIRE_REPAIR_ENTRY_HDR 20

/* One entry of a REPAIR_RESP: a replica's good copy of a committed entry
 * (its index fields, side data and record bytes; aux and rec borrowed). */
struct wire_repair_entry {
    int64_t ts;
    uint32_t flags, len, aux_len;
    const uint8_t *aux, *rec;
};
size_t wire_repair_size(const struct wire_repair_entry *e);
/* Writes e at out (wire_repair_size bytes); with aux or rec NULL their
 * bytes are left for the caller to fill in place. */
void wire_repair_put(uint8_t *out, const struct wire_repair_entry *e);
/* The entry at *at of REPAIR_RESP data: 0 (and *at moves past it), 1 at the
 * end, -EBADMSG when what is left is not a whole entry. */
int wire_repair_next(const uint8_t *data, size_t len, size_t *at, struct wire_repair_entry *e);

#define WIRE_READ_MAX (1u << 20)
#define WIRE_INFO_MAX 512

/* One call.  Which fields are meaningful depends on kind (see BODIES);
 * decoding borrows data from the body and mallocs lens (the caller frees
 * it: wire_call_free). */
struct wire_call {
    uint8_t kind;
    uint64_t req;
    int32_t status;
    uint32_t leader;
    uint64_t group, producer, seq, off, term, commit;
    uint32_t size;
    uint32_t n;
    uint32_t *lens;
    const uint8_t *data;
    size_t data_len;
};

int wire_call_encode(struct wire_buf *b, const struct wire_call *c);
int wire_call_decode(const uint8_t *body, size_t len, struct wire_call *c);
void wire_call_free(struct wire_call *c);

#endif
