/*
 * wire — see wire.h for the frame and body layouts.
 */
#include "broker/le.h"
#include "broker/net/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

/* ---------------------------------------------------------------- header */

int wire_hdr_decode(const uint8_t *buf, struct wire_hdr *h)
{
    if (le_get32(buf) != WIRE_MAGIC)
        return -EBADMSG;
    if (buf[4] != WIRE_VERSION)
        return -EPROTO;
    if (buf[5] == 0 || buf[5] >= WIRE_NTYPES || buf[6] || buf[7])
        return -EBADMSG;
    h->type = buf[5];
    h->length = le_get32(buf + 8);
    if (h->length > WIRE_MAX_BODY)
        return -EBADMSG;
    h->check = le_get64(buf + 12);
    return 0;
}

static uint64_t checksum(const uint8_t *hdr, const uint8_t *body, size_t len)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset_withSeed(&st, WIRE_SEED);
    XXH3_64bits_update(&st, hdr, 12);
    XXH3_64bits_update(&st, body, len);
    return XXH3_64bits_digest(&st);
}

bool wire_check(const uint8_t *hdr, const struct wire_hdr *h, const uint8_t *body)
{
    return checksum(hdr, body, h->length) == h->check;
}

/* ---------------------------------------------------------------- building */

void wire_buf_free(struct wire_buf *b)
{
    free(b->p);
    *b = (struct wire_buf){0};
}

static uint8_t *reserve(struct wire_buf *b, size_t n)
{
    if (b->failed)
        return NULL;
    if (n > WIRE_HDR + WIRE_MAX_BODY - b->len) {
        b->failed = b->too_big = true;
        return NULL;
    }
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n)
            nc *= 2;
        uint8_t *np = realloc(b->p, nc);
        if (!np) {
            b->failed = true;
            return NULL;
        }
        b->p = np;
        b->cap = nc;
    }
    uint8_t *at = b->p + b->len;
    b->len += n;
    return at;
}

void wire_begin(struct wire_buf *b, enum wire_type t)
{
    b->len = 0;
    b->failed = b->too_big = false;
    uint8_t *h = reserve(b, WIRE_HDR);
    if (!h)
        return;
    memset(h, 0, WIRE_HDR);
    le_put32(h, WIRE_MAGIC);
    h[4] = WIRE_VERSION;
    h[5] = (uint8_t)t;
}

int wire_end(struct wire_buf *b)
{
    if (b->failed)
        return b->too_big ? -EMSGSIZE : -ENOMEM;
    size_t body = b->len - WIRE_HDR;
    le_put32(b->p + 8, (uint32_t)body);
    le_put64(b->p + 12, checksum(b->p, b->p + WIRE_HDR, body));
    return 0;
}

void wire_put_u8(struct wire_buf *b, uint8_t v)
{
    uint8_t *p = reserve(b, 1);
    if (p)
        *p = v;
}

void wire_put_u16(struct wire_buf *b, uint16_t v)
{
    uint8_t *p = reserve(b, 2);
    if (p) {
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
    }
}

void wire_put_u32(struct wire_buf *b, uint32_t v)
{
    uint8_t *p = reserve(b, 4);
    if (p)
        le_put32(p, v);
}

void wire_put_u64(struct wire_buf *b, uint64_t v)
{
    uint8_t *p = reserve(b, 8);
    if (p)
        le_put64(p, v);
}

void wire_put_bytes(struct wire_buf *b, const void *src, size_t n)
{
    uint8_t *p = reserve(b, n);
    if (p && n)
        memcpy(p, src, n);
}

/* ---------------------------------------------------------------- reading */

void wire_rd_init(struct wire_rd *r, const uint8_t *body, size_t len)
{
    r->p = body;
    r->left = len;
    r->bad = false;
}

const uint8_t *wire_get_bytes(struct wire_rd *r, size_t n)
{
    if (r->bad || n > r->left) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *at = r->p;
    r->p += n;
    r->left -= n;
    return at;
}

uint8_t wire_get_u8(struct wire_rd *r)
{
    const uint8_t *p = wire_get_bytes(r, 1);
    return p ? p[0] : 0;
}

uint16_t wire_get_u16(struct wire_rd *r)
{
    const uint8_t *p = wire_get_bytes(r, 2);
    return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

uint32_t wire_get_u32(struct wire_rd *r)
{
    const uint8_t *p = wire_get_bytes(r, 4);
    return p ? le_get32(p) : 0;
}

uint64_t wire_get_u64(struct wire_rd *r)
{
    const uint8_t *p = wire_get_bytes(r, 8);
    return p ? le_get64(p) : 0;
}

bool wire_rd_done(const struct wire_rd *r)
{
    return !r->bad && r->left == 0;
}

/* ---------------------------------------------------------------- messages */

int wire_hello_encode(struct wire_buf *b, enum wire_type t, const struct wire_hello *h)
{
    wire_begin(b, t);
    wire_put_u64(b, h->cluster_id);
    wire_put_u32(b, h->from);
    wire_put_u32(b, h->to);
    wire_put_u8(b, h->max_version);
    wire_put_u64(b, h->incarnation);
    wire_put_u64(b, h->known);
    wire_put_u8(b, h->auth);
    wire_put_bytes(b, h->nonce, WIRE_NONCE_BYTES);
    if (t == WIRE_HELLO_OK)
        wire_put_bytes(b, h->mac, WIRE_MAC_BYTES);
    return wire_end(b);
}

int wire_hello_decode(const uint8_t *body, size_t len, enum wire_type t, struct wire_hello *h)
{
    struct wire_rd r;
    wire_rd_init(&r, body, len);
    h->cluster_id = wire_get_u64(&r);
    h->from = wire_get_u32(&r);
    h->to = wire_get_u32(&r);
    h->max_version = wire_get_u8(&r);
    h->incarnation = wire_get_u64(&r);
    h->known = wire_get_u64(&r);
    h->auth = wire_get_u8(&r);
    const uint8_t *n = wire_get_bytes(&r, WIRE_NONCE_BYTES);
    if (n)
        memcpy(h->nonce, n, WIRE_NONCE_BYTES);
    memset(h->mac, 0, WIRE_MAC_BYTES);
    if (t == WIRE_HELLO_OK) {
        const uint8_t *m = wire_get_bytes(&r, WIRE_MAC_BYTES);
        if (m)
            memcpy(h->mac, m, WIRE_MAC_BYTES);
    }
    if (h->auth > 1)
        return -EBADMSG;
    return wire_rd_done(&r) ? 0 : -EBADMSG;
}

int wire_auth_encode(struct wire_buf *b, const uint8_t mac[WIRE_MAC_BYTES])
{
    wire_begin(b, WIRE_AUTH);
    wire_put_bytes(b, mac, WIRE_MAC_BYTES);
    return wire_end(b);
}

int wire_auth_decode(const uint8_t *body, size_t len, uint8_t mac[WIRE_MAC_BYTES])
{
    if (len != WIRE_MAC_BYTES)
        return -EBADMSG;
    memcpy(mac, body, WIRE_MAC_BYTES);
    return 0;
}

int wire_refuse_encode(struct wire_buf *b, uint8_t reason, const char *text)
{
    size_t n = strlen(text);
    if (n >= sizeof(((struct wire_refuse *)0)->text))
        n = sizeof(((struct wire_refuse *)0)->text) - 1;
    wire_begin(b, WIRE_REFUSE);
    wire_put_u8(b, reason);
    wire_put_u16(b, (uint16_t)n);
    wire_put_bytes(b, text, n);
    return wire_end(b);
}

int wire_refuse_decode(const uint8_t *body, size_t len, struct wire_refuse *out)
{
    struct wire_rd r;
    wire_rd_init(&r, body, len);
    out->reason = wire_get_u8(&r);
    uint16_t n = wire_get_u16(&r);
    if (n >= sizeof(out->text))
        return -EBADMSG;
    const uint8_t *t = wire_get_bytes(&r, n);
    if (!wire_rd_done(&r))
        return -EBADMSG;
    memcpy(out->text, t, n);
    out->text[n] = '\0';
    /* Printable text only: it goes into the log. */
    for (uint16_t i = 0; i < n; i++)
        if ((unsigned char)out->text[i] < 0x20 || (unsigned char)out->text[i] > 0x7e)
            out->text[i] = '?';
    return 0;
}

int wire_ping_encode(struct wire_buf *b, enum wire_type t, const struct wire_ping *p)
{
    wire_begin(b, t);
    wire_put_u64(b, p->nonce);
    wire_put_u64(b, p->sent_ns);
    return wire_end(b);
}

int wire_ping_decode(const uint8_t *body, size_t len, struct wire_ping *p)
{
    struct wire_rd r;
    wire_rd_init(&r, body, len);
    p->nonce = wire_get_u64(&r);
    p->sent_ns = wire_get_u64(&r);
    return wire_rd_done(&r) ? 0 : -EBADMSG;
}

/* Smallest encoded entry: term, index, type, len. */
#define ENTRY_MIN (8 + 8 + 1 + 4)

int wire_raft_encode(struct wire_buf *b, uint64_t group, const struct raft_msg *m)
{
    wire_begin(b, WIRE_RAFT);
    wire_put_u64(b, group);
    wire_put_u8(b, m->type);
    wire_put_u8(b, (uint8_t)((m->reject ? 1 : 0) | (m->transfer ? 2 : 0)));
    wire_put_u64(b, m->from);
    wire_put_u64(b, m->to);
    wire_put_u64(b, m->term);
    wire_put_u64(b, m->index);
    wire_put_u64(b, m->log_term);
    wire_put_u64(b, m->commit);
    wire_put_u64(b, m->hint_index);
    wire_put_u64(b, m->hint_term);
    if (m->n_entries > UINT32_MAX)
        return -EMSGSIZE;
    wire_put_u32(b, (uint32_t)m->n_entries);
    for (size_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->len > UINT32_MAX)
            return -EMSGSIZE;
        wire_put_u64(b, e->term);
        wire_put_u64(b, e->index);
        wire_put_u8(b, e->type);
        wire_put_u32(b, (uint32_t)e->len);
        wire_put_bytes(b, e->buf, e->len);
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        if (m->snap_conf.n > RAFT_MAX_SERVERS || m->snap_len > UINT32_MAX)
            return -EINVAL;
        wire_put_u8(b, (uint8_t)m->snap_conf.n);
        for (unsigned i = 0; i < m->snap_conf.n; i++) {
            wire_put_u64(b, m->snap_conf.servers[i].id);
            wire_put_u8(b, m->snap_conf.servers[i].voter ? 1 : 0);
        }
        wire_put_u32(b, (uint32_t)m->snap_len);
        wire_put_bytes(b, m->snap_data, m->snap_len);
    }
    return wire_end(b);
}

int wire_raft_decode(const uint8_t *body, size_t len, size_t max_entries, uint64_t *group,
                     struct raft_msg *m, struct raft_entry **entries)
{
    struct wire_rd r;
    wire_rd_init(&r, body, len);
    memset(m, 0, sizeof(*m));
    *entries = NULL;
    *group = wire_get_u64(&r);
    m->type = wire_get_u8(&r);
    uint8_t bits = wire_get_u8(&r);
    m->reject = bits & 1;
    m->transfer = bits & 2;
    m->from = wire_get_u64(&r);
    m->to = wire_get_u64(&r);
    m->term = wire_get_u64(&r);
    m->index = wire_get_u64(&r);
    m->log_term = wire_get_u64(&r);
    m->commit = wire_get_u64(&r);
    m->hint_index = wire_get_u64(&r);
    m->hint_term = wire_get_u64(&r);
    uint32_t n = wire_get_u32(&r);
    if (r.bad || m->type == 0 || m->type >= RAFT_MSG_TYPES || (bits & ~3u) || m->from == 0 ||
        m->to == 0)
        return -EBADMSG;
    /* The count must fit what is left before anything is allocated. */
    if (n > max_entries || n > r.left / ENTRY_MIN)
        return -EBADMSG;
    struct raft_entry *es = NULL;
    if (n) {
        es = calloc(n, sizeof(*es));
        if (!es)
            return -ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        es[i].term = wire_get_u64(&r);
        es[i].index = wire_get_u64(&r);
        es[i].type = wire_get_u8(&r);
        uint32_t elen = wire_get_u32(&r);
        es[i].buf = wire_get_bytes(&r, elen);
        es[i].len = elen;
        if (r.bad || es[i].type > RAFT_ENTRY_CONF)
            goto bad;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        uint8_t cn = wire_get_u8(&r);
        if (cn > RAFT_MAX_SERVERS)
            goto bad;
        m->snap_conf.n = cn;
        for (unsigned i = 0; i < cn; i++) {
            m->snap_conf.servers[i].id = wire_get_u64(&r);
            uint8_t v = wire_get_u8(&r);
            if (v > 1 || m->snap_conf.servers[i].id == 0)
                goto bad;
            m->snap_conf.servers[i].voter = v;
        }
        uint32_t sl = wire_get_u32(&r);
        m->snap_data = wire_get_bytes(&r, sl);
        m->snap_len = sl;
    }
    if (!wire_rd_done(&r))
        goto bad;
    m->entries = es;
    m->n_entries = n;
    *entries = es;
    return 0;
bad:
    free(es);
    return -EBADMSG;
}

/* ---------------------------------------------------------------- calls */

int wire_call_encode(struct wire_buf *b, const struct wire_call *c)
{
    wire_begin(b, WIRE_CALL);
    wire_put_u8(b, c->kind);
    wire_put_u64(b, c->req);
    switch (c->kind) {
    case WIRE_META_REQ:
        wire_put_u32(b, (uint32_t)c->data_len);
        wire_put_bytes(b, c->data, c->data_len);
        break;
    case WIRE_META_RESP:
        wire_put_u32(b, (uint32_t)c->status);
        wire_put_u64(b, c->off);
        wire_put_u32(b, c->leader);
        break;
    case WIRE_WRITE_REQ:
        wire_put_u64(b, c->group);
        wire_put_u64(b, c->producer);
        wire_put_u64(b, c->seq);
        wire_put_u32(b, c->n);
        for (uint32_t i = 0; i < c->n; i++)
            wire_put_u32(b, c->lens[i]);
        wire_put_bytes(b, c->data, c->data_len);
        break;
    case WIRE_WRITE_RESP:
        wire_put_u64(b, c->group);
        wire_put_u32(b, (uint32_t)c->status);
        wire_put_u64(b, c->off);
        wire_put_u64(b, c->term);
        wire_put_u32(b, c->leader);
        break;
    case WIRE_QUIESCE:
        wire_put_u64(b, c->group);
        wire_put_u64(b, c->term);
        wire_put_u64(b, c->commit);
        wire_put_u32(b, c->size);
        break;
    case WIRE_READ_REQ:
        wire_put_u64(b, c->group);
        wire_put_u64(b, c->off);
        wire_put_u32(b, c->size);
        break;
    case WIRE_READ_RESP:
        wire_put_u64(b, c->group);
        wire_put_u32(b, (uint32_t)c->status);
        wire_put_u64(b, c->off);
        wire_put_bytes(b, c->data, c->data_len);
        break;
    case WIRE_SYNC_REQ:
        wire_put_u64(b, c->group);
        break;
    case WIRE_SYNC_RESP:
        wire_put_u64(b, c->group);
        wire_put_u32(b, (uint32_t)c->status);
        wire_put_u64(b, c->off);
        break;
    case WIRE_REPAIR_REQ:
        wire_put_u64(b, c->group);
        wire_put_u64(b, c->off);
        wire_put_u32(b, c->n);
        break;
    case WIRE_TRANSFER:
        wire_put_u64(b, c->group);
        wire_put_u32(b, c->size);
        break;
    case WIRE_INFO:
        wire_put_bytes(b, c->data, c->data_len);
        break;
    case WIRE_REPAIR_RESP:
        wire_put_u64(b, c->group);
        wire_put_u32(b, (uint32_t)c->status);
        wire_put_u64(b, c->off);
        wire_put_u32(b, c->n);
        wire_put_bytes(b, c->data, c->data_len);
        break;
    default:
        b->failed = true;
        return -EINVAL;
    }
    return wire_end(b);
}

void wire_call_free(struct wire_call *c)
{
    free(c->lens);
    c->lens = NULL;
}

int wire_call_decode(const uint8_t *body, size_t len, struct wire_call *c)
{
    struct wire_rd r;
    memset(c, 0, sizeof(*c));
    wire_rd_init(&r, body, len);
    c->kind = wire_get_u8(&r);
    c->req = wire_get_u64(&r);
    switch (c->kind) {
    case WIRE_META_REQ: {
        uint32_t n = wire_get_u32(&r);
        if (r.bad || n == 0 || n > r.left)
            return -EBADMSG;
        c->data = wire_get_bytes(&r, n);
        c->data_len = n;
        break;
    }
    case WIRE_META_RESP:
        c->status = (int32_t)wire_get_u32(&r);
        c->off = wire_get_u64(&r);
        c->leader = wire_get_u32(&r);
        break;
    case WIRE_WRITE_REQ: {
        c->group = wire_get_u64(&r);
        c->producer = wire_get_u64(&r);
        c->seq = wire_get_u64(&r);
        c->n = wire_get_u32(&r);
        /* Every record has a length (4 bytes) and at least one byte. */
        if (r.bad || c->n == 0 || c->n > r.left / 5)
            return -EBADMSG;
        c->lens = malloc((size_t)c->n * sizeof(*c->lens));
        if (!c->lens)
            return -ENOMEM;
        uint64_t sum = 0;
        for (uint32_t i = 0; i < c->n; i++) {
            c->lens[i] = wire_get_u32(&r);
            if (c->lens[i] == 0)
                r.bad = true;
            sum += c->lens[i];
        }
        if (r.bad || sum != r.left) {
            wire_call_free(c);
            return -EBADMSG;
        }
        c->data_len = r.left;
        c->data = wire_get_bytes(&r, r.left);
        break;
    }
    case WIRE_WRITE_RESP:
        c->group = wire_get_u64(&r);
        c->status = (int32_t)wire_get_u32(&r);
        c->off = wire_get_u64(&r);
        c->term = wire_get_u64(&r);
        c->leader = wire_get_u32(&r);
        break;
    case WIRE_QUIESCE:
        c->group = wire_get_u64(&r);
        c->term = wire_get_u64(&r);
        c->commit = wire_get_u64(&r);
        c->size = wire_get_u32(&r);
        break;
    case WIRE_READ_REQ:
        c->group = wire_get_u64(&r);
        c->off = wire_get_u64(&r);
        c->size = wire_get_u32(&r);
        if (c->size > WIRE_READ_MAX)
            r.bad = true;
        break;
    case WIRE_READ_RESP:
        c->group = wire_get_u64(&r);
        c->status = (int32_t)wire_get_u32(&r);
        c->off = wire_get_u64(&r);
        if (r.left > WIRE_READ_MAX)
            r.bad = true;
        c->data_len = r.left;
        c->data = r.left ? wire_get_bytes(&r, r.left) : NULL;
        break;
    case WIRE_SYNC_REQ:
        c->group = wire_get_u64(&r);
        break;
    case WIRE_SYNC_RESP:
        c->group = wire_get_u64(&r);
        c->status = (int32_t)wire_get_u32(&r);
        c->off = wire_get_u64(&r);
        break;
    case WIRE_REPAIR_REQ:
        c->group = wire_get_u64(&r);
        c->off = wire_get_u64(&r);
        c->n = wire_get_u32(&r);
        if (c->n == 0 || c->n > WIRE_REPAIR_MAX)
            r.bad = true;
        break;
    case WIRE_TRANSFER:
        c->group = wire_get_u64(&r);
        c->size = wire_get_u32(&r);
        break;
    case WIRE_INFO:
        if (r.left > WIRE_INFO_MAX)
            r.bad = true;
        c->data_len = r.left;
        c->data = r.left ? wire_get_bytes(&r, r.left) : NULL;
        break;
    case WIRE_REPAIR_RESP: {
        c->group = wire_get_u64(&r);
        c->status = (int32_t)wire_get_u32(&r);
        c->off = wire_get_u64(&r);
        c->n = wire_get_u32(&r);
        if (c->n > WIRE_REPAIR_MAX)
            r.bad = true;
        c->data_len = r.left;
        c->data = r.left ? wire_get_bytes(&r, r.left) : NULL;
        /* The entries must be exactly what is there: n of them. */
        size_t at = 0;
        uint32_t k = 0;
        struct wire_repair_entry e;
        int rc;
        while (!r.bad && (rc = wire_repair_next(c->data, c->data_len, &at, &e)) == 0)
            k++;
        if (!r.bad && (rc != 1 || k != c->n || (c->status < 0 && k != 0)))
            r.bad = true;
        break;
    }
    default:
        return -EBADMSG;
    }
    /* Statuses are 0 or a negative errno. */
    if ((c->kind == WIRE_META_RESP || c->kind == WIRE_WRITE_RESP || c->kind == WIRE_READ_RESP ||
         c->kind == WIRE_SYNC_RESP || c->kind == WIRE_REPAIR_RESP) &&
        (c->status > 0 || c->status < -4095))
        r.bad = true;
    if (!wire_rd_done(&r)) {
        wire_call_free(c);
        return -EBADMSG;
    }
    return 0;
}

/* ---- repair entries ------------------------------------------------------- */

size_t wire_repair_size(const struct wire_repair_entry *e)
{
    return WIRE_REPAIR_ENTRY_HDR + (size_t)e->aux_len + e->len;
}

void wire_repair_put(uint8_t *out, const struct wire_repair_entry *e)
{
    le_put64(out, (uint64_t)e->ts);
    le_put32(out + 8, e->flags);
    le_put32(out + 12, e->len);
    le_put32(out + 16, e->aux_len);
    if (e->aux_len && e->aux)
        memcpy(out + WIRE_REPAIR_ENTRY_HDR, e->aux, e->aux_len);
    if (e->len && e->rec)
        memcpy(out + WIRE_REPAIR_ENTRY_HDR + e->aux_len, e->rec, e->len);
}

int wire_repair_next(const uint8_t *data, size_t len, size_t *at, struct wire_repair_entry *e)
{
    if (*at == len)
        return 1;
    struct wire_rd r;
    wire_rd_init(&r, data + *at, len - *at);
    e->ts = (int64_t)wire_get_u64(&r);
    e->flags = wire_get_u32(&r);
    e->len = wire_get_u32(&r);
    e->aux_len = wire_get_u32(&r);
    if (r.bad || e->len > r.left || e->aux_len > r.left - e->len)
        return -EBADMSG;
    e->aux = e->aux_len ? wire_get_bytes(&r, e->aux_len) : NULL;
    e->rec = e->len ? wire_get_bytes(&r, e->len) : NULL;
    *at = len - r.left;
    return 0;
}
