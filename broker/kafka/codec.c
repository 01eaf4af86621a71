/*
 * codec — see codec.h for the encodings and the contracts.
 *
 * One rule carries the reader's safety: every byte is taken through
 * kr_raw(), which checks the count against what is left; lengths and counts
 * are compared with kr_left() as 64-bit values before they become sizes, so
 * no sum or product of untrusted numbers can wrap.  The record iterator
 * decodes each record inside a sub-reader bounded by the record's own
 * length, so a record can neither read into its neighbour nor leave bytes
 * unaccounted for.
 */
#include "broker/kafka/codec.h"
#include "broker/kafka/compress.h"
#include "broker/kafka/crc32c.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- big-endian */

static uint64_t be_get(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void be_put(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t zigzag32(int32_t v)
{
    return (uint32_t)v << 1 ^ (v < 0 ? UINT32_MAX : 0);
}

static uint64_t zigzag64(int64_t v)
{
    return (uint64_t)v << 1 ^ (v < 0 ? UINT64_MAX : 0);
}

static int32_t unzigzag32(uint32_t u)
{
    return (int32_t)(u >> 1 ^ (0 - (u & 1)));
}

static int64_t unzigzag64(uint64_t u)
{
    return (int64_t)(u >> 1 ^ (0 - (u & 1)));
}

/* ================================================================ reading */

static const uint8_t no_bytes[1];

void kr_init(struct kr *r, const void *p, size_t len)
{
    /* a NULL buffer (len 0) still hands out non-NULL empty strings */
    *r = (struct kr){.p = p ? p : no_bytes, .len = p ? len : 0};
}

static void kr_fail(struct kr *r)
{
    if (!r->err)
        r->err = -EBADMSG;
}

size_t kr_left(const struct kr *r)
{
    return r->err ? 0 : r->len - r->at;
}

const uint8_t *kr_raw(struct kr *r, size_t n)
{
    if (r->err || n > r->len - r->at) {
        kr_fail(r);
        return NULL;
    }
    const uint8_t *at = r->p + r->at;
    r->at += n;
    return at;
}

static uint64_t kr_be(struct kr *r, int n)
{
    const uint8_t *p = kr_raw(r, (size_t)n);
    return p ? be_get(p, n) : 0;
}

int8_t kr_i8(struct kr *r)
{
    return (int8_t)kr_be(r, 1);
}

int16_t kr_i16(struct kr *r)
{
    return (int16_t)kr_be(r, 2);
}

int32_t kr_i32(struct kr *r)
{
    return (int32_t)kr_be(r, 4);
}

int64_t kr_i64(struct kr *r)
{
    return (int64_t)kr_be(r, 8);
}

/* LEB128 of at most nmax bytes whose last byte may be at most top (so the
 * value fits the type): anything longer or larger is an error. */
static uint64_t kr_leb(struct kr *r, int nmax, uint8_t top)
{
    uint64_t v = 0;
    for (int i = 0; i < nmax; i++) {
        const uint8_t *b = kr_raw(r, 1);
        if (!b)
            return 0;
        if (i == nmax - 1 && *b > top)
            break;
        v |= (uint64_t)(*b & 0x7f) << (7 * i);
        if (!(*b & 0x80))
            return v;
    }
    kr_fail(r);
    return 0;
}

uint32_t kr_uvarint(struct kr *r)
{
    return (uint32_t)kr_leb(r, 5, 0x0f);
}

int32_t kr_varint(struct kr *r)
{
    return unzigzag32((uint32_t)kr_leb(r, 5, 0x0f));
}

int64_t kr_varlong(struct kr *r)
{
    return unzigzag64(kr_leb(r, 10, 0x01));
}

/* The bytes of a string whose length field said n (-1: null). */
static int32_t kr_take(struct kr *r, int64_t n, const uint8_t **s)
{
    *s = NULL;
    if (r->err)
        return 0;
    if (n == -1)
        return -1;
    if (n < -1 || n > INT32_MAX || (uint64_t)n > kr_left(r)) {
        kr_fail(r);
        return 0;
    }
    *s = kr_raw(r, (size_t)n);
    return (int32_t)n;
}

/* A compact length: uvarint n + 1, 0 = null. */
static int64_t kr_compact_len(struct kr *r)
{
    return (int64_t)kr_uvarint(r) - 1;
}

int32_t kr_string(struct kr *r, const uint8_t **s)
{
    return kr_take(r, kr_i16(r), s);
}

int32_t kr_compact_string(struct kr *r, const uint8_t **s)
{
    return kr_take(r, kr_compact_len(r), s);
}

int32_t kr_bytes(struct kr *r, const uint8_t **s)
{
    return kr_take(r, kr_i32(r), s);
}

int32_t kr_compact_bytes(struct kr *r, const uint8_t **s)
{
    return kr_take(r, kr_compact_len(r), s);
}

static int32_t kr_count(struct kr *r, int64_t n, size_t min_elem_size)
{
    if (r->err)
        return 0;
    if (n == -1)
        return -1;
    if (min_elem_size == 0)
        min_elem_size = 1;
    if (n < -1 || n > INT32_MAX || (uint64_t)n > kr_left(r) / min_elem_size) {
        kr_fail(r);
        return 0;
    }
    return (int32_t)n;
}

int32_t kr_array(struct kr *r, size_t min_elem_size)
{
    return kr_count(r, kr_i32(r), min_elem_size);
}

int32_t kr_compact_array(struct kr *r, size_t min_elem_size)
{
    return kr_count(r, kr_compact_len(r), min_elem_size);
}

/* Each field takes at least two bytes, so a lying n ends at the first read
 * past the end. */
void kr_skip_tags(struct kr *r)
{
    uint32_t n = kr_uvarint(r);
    for (uint32_t i = 0; i < n && !r->err; i++) {
        (void)kr_uvarint(r); /* tag */
        uint32_t size = kr_uvarint(r);
        (void)kr_raw(r, size);
    }
}

/* ================================================================ writing */

void kw_init(struct kw *w)
{
    *w = (struct kw){0};
}

void kw_free(struct kw *w)
{
    free(w->p);
    kw_init(w);
}

static void kw_fail(struct kw *w, int err)
{
    if (!w->err)
        w->err = err;
}

/* n bytes at the end of the buffer to write into, or NULL. */
static uint8_t *kw_room(struct kw *w, size_t n)
{
    if (w->err)
        return NULL;
    if (n > SIZE_MAX / 4 - w->len) {
        kw_fail(w, -ENOMEM);
        return NULL;
    }
    if (w->len + n > w->cap) {
        size_t nc = w->cap ? w->cap : 256;
        while (nc < w->len + n)
            nc *= 2;
        uint8_t *np = realloc(w->p, nc);
        if (!np) {
            kw_fail(w, -ENOMEM);
            return NULL;
        }
        w->p = np;
        w->cap = nc;
    }
    uint8_t *at = w->p + w->len;
    w->len += n;
    return at;
}

static void kw_be(struct kw *w, uint64_t v, int n)
{
    uint8_t *p = kw_room(w, (size_t)n);
    if (p)
        be_put(p, v, n);
}

void kw_i8(struct kw *w, int8_t v)
{
    kw_be(w, (uint8_t)v, 1);
}

void kw_i16(struct kw *w, int16_t v)
{
    kw_be(w, (uint16_t)v, 2);
}

void kw_i32(struct kw *w, int32_t v)
{
    kw_be(w, (uint32_t)v, 4);
}

void kw_i64(struct kw *w, int64_t v)
{
    kw_be(w, (uint64_t)v, 8);
}

static void kw_leb(struct kw *w, uint64_t v)
{
    uint8_t buf[10];
    size_t n = 0;
    do {
        buf[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            buf[n] |= 0x80;
        n++;
    } while (v);
    kw_raw(w, buf, n);
}

void kw_uvarint(struct kw *w, uint32_t v)
{
    kw_leb(w, v);
}

void kw_varint(struct kw *w, int32_t v)
{
    kw_leb(w, zigzag32(v));
}

void kw_varlong(struct kw *w, int64_t v)
{
    kw_leb(w, zigzag64(v));
}

void kw_raw(struct kw *w, const void *p, size_t n)
{
    uint8_t *at = kw_room(w, n);
    if (at && n)
        memcpy(at, p, n);
}

/* The bytes of a string whose length was just written (none when null). */
static void kw_body(struct kw *w, const void *s, int32_t len)
{
    if (len > 0)
        kw_raw(w, s, (size_t)len);
}

static bool kw_len_ok(struct kw *w, int32_t len, int32_t max)
{
    if (len < -1)
        kw_fail(w, -EINVAL);
    else if (len > max)
        kw_fail(w, -EMSGSIZE);
    return !w->err;
}

void kw_string(struct kw *w, const void *s, int32_t len)
{
    if (!kw_len_ok(w, len, INT16_MAX))
        return;
    kw_i16(w, (int16_t)len);
    kw_body(w, s, len);
}

void kw_compact_string(struct kw *w, const void *s, int32_t len)
{
    if (!kw_len_ok(w, len, INT32_MAX))
        return;
    kw_uvarint(w, (uint32_t)((int64_t)len + 1));
    kw_body(w, s, len);
}

void kw_bytes(struct kw *w, const void *s, int32_t len)
{
    if (!kw_len_ok(w, len, INT32_MAX))
        return;
    kw_i32(w, len);
    kw_body(w, s, len);
}

void kw_compact_bytes(struct kw *w, const void *s, int32_t len)
{
    kw_compact_string(w, s, len);
}

void kw_array(struct kw *w, int32_t n)
{
    if (kw_len_ok(w, n, INT32_MAX))
        kw_i32(w, n);
}

void kw_compact_array(struct kw *w, int32_t n)
{
    if (kw_len_ok(w, n, INT32_MAX))
        kw_uvarint(w, (uint32_t)((int64_t)n + 1));
}

size_t kw_reserve(struct kw *w, size_t n)
{
    uint8_t *p = kw_room(w, n);
    if (!p)
        return 0;
    memset(p, 0, n);
    return (size_t)(p - w->p);
}

void kw_put_u32_at(struct kw *w, size_t at, uint32_t v)
{
    if (w->err)
        return;
    if (at > w->len || w->len - at < 4)
        kw_fail(w, -EINVAL);
    else
        be_put(w->p + at, v, 4);
}

void kw_put_i32_at(struct kw *w, size_t at, int32_t v)
{
    kw_put_u32_at(w, at, (uint32_t)v);
}

void kw_empty_tags(struct kw *w)
{
    kw_uvarint(w, 0);
}

/* ================================================================ headers */

int kreq_hdr_parse(struct kr *r, struct kreq_hdr *h, bool flexible)
{
    h->api_key = kr_i16(r);
    h->api_version = kr_i16(r);
    h->correlation_id = kr_i32(r);
    h->client_id_len = kr_string(r, &h->client_id);
    if (flexible)
        kr_skip_tags(r);
    return r->err;
}

void kresp_hdr_write(struct kw *w, int32_t correlation_id, bool flexible)
{
    kw_i32(w, correlation_id);
    if (flexible)
        kw_empty_tags(w);
}

/* ================================================================ batches */

#define KBATCH_MAGIC_AT 16

int kbatch_parse(const uint8_t *buf, size_t len, struct kbatch *b, size_t *used)
{
    if (len < KBATCH_MAGIC_AT + 1)
        return -EBADMSG;
    int64_t blen = (int32_t)be_get(buf + 8, 4);
    /* total = 12 + blen must hold the magic, at offset 16 in every format */
    if (blen < KBATCH_MAGIC_AT + 1 - 12 || (uint64_t)blen > len - 12)
        return -EBADMSG;
    size_t total = 12 + (size_t)blen;
    *used = total;
    if (buf[KBATCH_MAGIC_AT] != 2)
        return -EPROTO;
    if (blen < KBATCH_MIN_LEN)
        return -EBADMSG;
    if (!kcrc32c_available())
        return -ENOTSUP;
    if (kcrc32c(0, buf + KBATCH_CRC_FROM, total - KBATCH_CRC_FROM) !=
        (uint32_t)be_get(buf + KBATCH_CRC_AT, 4))
        return -EBADMSG;

    struct kr r;
    kr_init(&r, buf, total);
    struct kbatch h = {.base_offset = kr_i64(&r),
                       .batch_length = kr_i32(&r),
                       .leader_epoch = kr_i32(&r),
                       .magic = kr_i8(&r),
                       .crc = (uint32_t)kr_i32(&r),
                       .attributes = kr_i16(&r),
                       .last_offset_delta = kr_i32(&r),
                       .base_ts = kr_i64(&r),
                       .max_ts = kr_i64(&r),
                       .producer_id = kr_i64(&r),
                       .producer_epoch = kr_i16(&r),
                       .base_seq = kr_i32(&r),
                       .count = kr_i32(&r)};
    if (r.err || h.count < 0 || h.last_offset_delta < 0)
        return -EBADMSG;
    h.records = buf + KBATCH_HDR;
    h.records_len = total - KBATCH_HDR;
    *b = h;
    return 0;
}

int kbatch_records_begin(struct krec_iter *it, const struct kbatch *b, size_t max_out)
{
    *it = (struct krec_iter){.left = b->count, .last_delta = b->last_offset_delta};
    int codec = b->attributes & KBATCH_ATTR_CODEC;
    if (codec == KCODEC_NONE) {
        kr_init(&it->r, b->records, b->records_len);
        return 0;
    }
    size_t n;
    int rc = kdecompress(codec, b->records, b->records_len, max_out, &it->owned, &n);
    if (rc) {
        it->err = rc;
        return rc;
    }
    kr_init(&it->r, it->owned, n);
    return 0;
}

/* A varint length followed by that many bytes, -1 = null. */
static int32_t kr_var_bytes(struct kr *r, const uint8_t **s)
{
    return kr_take(r, kr_varint(r), s);
}

/* The fields of one record, r bounded by the record's length. */
static int record_decode(struct kr *r, struct krecord *rec)
{
    rec->attributes = kr_i8(r);
    rec->ts_delta = kr_varlong(r);
    rec->offset_delta = kr_varint(r);
    rec->key_len = kr_var_bytes(r, &rec->key);
    rec->value_len = kr_var_bytes(r, &rec->value);
    rec->nheaders = kr_varint(r);
    if (r->err || rec->nheaders < 0)
        return -EBADMSG;
    rec->headers_len = kr_left(r);
    rec->headers = kr_raw(r, 0);
    struct kr h;
    kr_init(&h, rec->headers, rec->headers_len);
    const uint8_t *k, *v;
    int32_t kl, vl;
    for (int32_t i = 0; i < rec->nheaders; i++)
        if (kheaders_next(&h, &k, &kl, &v, &vl) != 1)
            return -EBADMSG;
    return kr_left(&h) == 0 && !h.err ? 0 : -EBADMSG;
}

static int iter_fail(struct krec_iter *it)
{
    it->err = -EBADMSG;
    return it->err;
}

int kbatch_records_next(struct krec_iter *it, struct krecord *rec)
{
    if (it->err)
        return it->err;
    if (it->left == 0)
        return kr_left(&it->r) ? iter_fail(it) : 0;
    int32_t n = kr_varint(&it->r);
    if (n < 0)
        return iter_fail(it);
    const uint8_t *body = kr_raw(&it->r, (size_t)n);
    if (!body)
        return iter_fail(it);
    struct kr r;
    kr_init(&r, body, (size_t)n);
    if (record_decode(&r, rec) || rec->offset_delta < it->next_delta ||
        rec->offset_delta > it->last_delta)
        return iter_fail(it);
    it->next_delta = (int64_t)rec->offset_delta + 1;
    it->left--;
    return 1;
}

void kbatch_records_end(struct krec_iter *it)
{
    free(it->owned);
    it->owned = NULL;
}

int kheaders_next(struct kr *r, const uint8_t **key, int32_t *key_len, const uint8_t **val,
                  int32_t *val_len)
{
    if (r->err)
        return r->err;
    if (kr_left(r) == 0)
        return 0;
    *key_len = kr_var_bytes(r, key);
    if (*key_len < 0)
        kr_fail(r); /* header keys are never null */
    *val_len = kr_var_bytes(r, val);
    return r->err ? r->err : 1;
}

/* ---------------------------------------------------------------- building */

static size_t leb_size(uint64_t v)
{
    size_t n = 1;
    while (v >>= 7)
        n++;
    return n;
}

/* A varint length and its bytes (none when null, len -1). */
static size_t var_bytes_size(int32_t len)
{
    return leb_size(zigzag32(len)) + (len > 0 ? (size_t)len : 0);
}

void kbatch_build_begin(struct kbatch_builder *bb, struct kw *w, int64_t base_offset,
                        int64_t base_ts)
{
    *bb = (struct kbatch_builder){.w = w,
                                  .base_offset = base_offset,
                                  .base_ts = base_ts,
                                  .max_ts = base_ts,
                                  .leader_epoch = -1,
                                  .producer_id = -1,
                                  .producer_epoch = -1,
                                  .base_seq = -1};
    bb->start = kw_reserve(w, KBATCH_HDR);
}

void kw_record_header(struct kw *w, const void *key, int32_t key_len, const void *val,
                      int32_t val_len)
{
    if (key_len < 0 || val_len < -1) {
        kw_fail(w, -EINVAL);
        return;
    }
    kw_varint(w, key_len);
    kw_body(w, key, key_len);
    kw_varint(w, val_len);
    kw_body(w, val, val_len);
}

void kbatch_build_add(struct kbatch_builder *bb, int64_t offset, int64_t ts, const void *key,
                      int32_t key_len, const void *value, int32_t value_len, int32_t nheaders,
                      const void *headers, size_t headers_len)
{
    struct kw *w = bb->w;
    /* offsets from the caller's own log: out of order is a bug, refused */
    uint64_t delta = (uint64_t)offset - (uint64_t)bb->base_offset;
    if (offset < bb->base_offset || delta > INT32_MAX ||
        (bb->count > 0 && (int64_t)delta <= bb->last_delta) || key_len < -1 || value_len < -1 ||
        nheaders < 0) {
        kw_fail(w, -EINVAL);
        return;
    }
    int64_t ts_delta = (int64_t)((uint64_t)ts - (uint64_t)bb->base_ts);
    size_t body = 1 + leb_size(zigzag64(ts_delta)) + leb_size(zigzag32((int32_t)delta)) +
                  var_bytes_size(key_len) + var_bytes_size(value_len) +
                  leb_size(zigzag32(nheaders));
    if (headers_len > INT32_MAX || body + headers_len > INT32_MAX) {
        kw_fail(w, -EMSGSIZE);
        return;
    }
    kw_varint(w, (int32_t)(body + headers_len));
    kw_i8(w, 0);
    kw_varlong(w, ts_delta);
    kw_varint(w, (int32_t)delta);
    kw_varint(w, key_len);
    kw_body(w, key, key_len);
    kw_varint(w, value_len);
    kw_body(w, value, value_len);
    kw_varint(w, nheaders);
    kw_raw(w, headers, headers_len);
    if (bb->count == 0 || ts > bb->max_ts)
        bb->max_ts = ts;
    bb->count++;
    bb->last_delta = (int32_t)delta;
}

int kbatch_build_end(struct kbatch_builder *bb)
{
    struct kw *w = bb->w;
    if (w->err)
        return w->err;
    if (bb->attributes & KBATCH_ATTR_CODEC)
        kw_fail(w, -EINVAL);
    else if (!kcrc32c_available())
        kw_fail(w, -ENOTSUP);
    else if (w->len - bb->start - 12 > INT32_MAX)
        kw_fail(w, -EMSGSIZE);
    if (w->err)
        return w->err;
    size_t total = w->len - bb->start;
    uint8_t *h = w->p + bb->start;
    be_put(h, (uint64_t)bb->base_offset, 8);
    be_put(h + 8, total - 12, 4);
    be_put(h + 12, (uint32_t)bb->leader_epoch, 4);
    h[KBATCH_MAGIC_AT] = 2;
    be_put(h + 21, (uint16_t)bb->attributes, 2);
    be_put(h + 23, (uint32_t)bb->last_delta, 4);
    be_put(h + 27, (uint64_t)bb->base_ts, 8);
    be_put(h + 35, (uint64_t)bb->max_ts, 8);
    be_put(h + 43, (uint64_t)bb->producer_id, 8);
    be_put(h + 51, (uint16_t)bb->producer_epoch, 2);
    be_put(h + 53, (uint32_t)bb->base_seq, 4);
    be_put(h + 57, (uint32_t)bb->count, 4);
    be_put(h + KBATCH_CRC_AT, kcrc32c(0, h + KBATCH_CRC_FROM, total - KBATCH_CRC_FROM), 4);
    return 0;
}
