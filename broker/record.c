/*
 * record — see record.h.
 */
#include "broker/le.h"
#include "broker/record.h"

#include <errno.h>
#include <string.h>

#define FIELD_HDR      3
#define FIELD_HDR_LONG 7

static size_t field_hdr_size(size_t vlen)
{
    return vlen < 0xffff ? FIELD_HDR : FIELD_HDR_LONG;
}

static size_t put_field_hdr(uint8_t *buf, uint8_t tag, size_t vlen)
{
    buf[0] = tag;
    if (vlen < 0xffff) {
        buf[1] = (uint8_t)vlen;
        buf[2] = (uint8_t)(vlen >> 8);
        return FIELD_HDR;
    }
    buf[1] = buf[2] = 0xff;
    le_put32(buf + 3, (uint32_t)vlen);
    return FIELD_HDR_LONG;
}

static size_t kafka_value_size(const struct rec_kafka *k)
{
    return 1 + 8 + ((k->flags & RK_KEY) ? 4 + (size_t)k->key_len : 0) + 4 + 4 + k->headers_len;
}

size_t aux_kafka_size(const struct rec_kafka *k)
{
    size_t v = kafka_value_size(k);
    return field_hdr_size(v) + v;
}

size_t aux_put_kafka(uint8_t *buf, const struct rec_kafka *k)
{
    size_t v = kafka_value_size(k);
    uint8_t *p = buf + put_field_hdr(buf, AUX_KAFKA, v);
    *p++ = k->flags;
    le_put64(p, (uint64_t)k->ts);
    p += 8;
    if (k->flags & RK_KEY) {
        le_put32(p, k->key_len);
        p += 4;
        if (k->key_len)
            memcpy(p, k->key, k->key_len);
        p += k->key_len;
    }
    le_put32(p, (uint32_t)k->nheaders);
    le_put32(p + 4, k->headers_len);
    p += 8;
    if (k->headers_len)
        memcpy(p, k->headers, k->headers_len);
    p += k->headers_len;
    return (size_t)(p - buf);
}

void aux_put_producer(uint8_t *buf, uint64_t id, uint64_t seq)
{
    put_field_hdr(buf, AUX_PRODUCER, 16);
    le_put64(buf + 3, id);
    le_put64(buf + 11, seq);
}

int aux_find(const uint8_t *aux, size_t len, uint8_t tag, const uint8_t **val, size_t *vlen)
{
    size_t at = 0;
    while (at < len) {
        if (len - at < FIELD_HDR)
            return -EBADMSG;
        size_t flen = (size_t)aux[at + 1] | (size_t)aux[at + 2] << 8, hdr = FIELD_HDR;
        if (flen == 0xffff) {
            if (len - at < FIELD_HDR_LONG)
                return -EBADMSG;
            flen = le_get32(aux + at + 3);
            hdr = FIELD_HDR_LONG;
        }
        if (flen > len - at - hdr)
            return -EBADMSG;
        if (aux[at] == tag) {
            *val = aux + at + hdr;
            *vlen = flen;
            return 0;
        }
        at += hdr + flen;
    }
    return -ENOENT;
}

int aux_get_producer(const uint8_t *aux, size_t len, uint64_t *id, uint64_t *seq)
{
    const uint8_t *v;
    size_t vlen;
    int rc = aux_find(aux, len, AUX_PRODUCER, &v, &vlen);
    if (rc < 0)
        return rc;
    if (vlen != 16)
        return -EBADMSG;
    *id = le_get64(v);
    *seq = le_get64(v + 8);
    return 0;
}

int aux_get_kafka(const uint8_t *aux, size_t len, struct rec_kafka *k)
{
    const uint8_t *v;
    size_t vlen;
    int rc = aux_find(aux, len, AUX_KAFKA, &v, &vlen);
    if (rc < 0)
        return rc;
    memset(k, 0, sizeof(*k));
    if (vlen < 9)
        return -EBADMSG;
    k->flags = v[0];
    k->ts = (int64_t)le_get64(v + 1);
    size_t at = 9;
    if (k->flags & RK_KEY) {
        if (vlen - at < 4)
            return -EBADMSG;
        k->key_len = le_get32(v + at);
        at += 4;
        if (k->key_len > vlen - at)
            return -EBADMSG;
        k->key = v + at;
        at += k->key_len;
    }
    if (vlen - at < 8)
        return -EBADMSG;
    k->nheaders = (int32_t)le_get32(v + at);
    k->headers_len = le_get32(v + at + 4);
    at += 8;
    if (k->nheaders < 0 || k->headers_len != vlen - at)
        return -EBADMSG;
    k->headers = v + at;
    return 0;
}

bool rec_is_line(const void *bytes, size_t len)
{
    return len > 0 && ((const uint8_t *)bytes)[len - 1] == '\n' &&
           (len == 1 || !memchr(bytes, '\n', len - 1));
}
