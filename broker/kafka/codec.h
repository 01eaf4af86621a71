/*
 * codec — the Kafka wire protocol's encodings: a pure codec, no I/O, no
 * state beyond the buffers handed in.  (kafka-clients.md sections 1, 4, 5;
 * https://kafka.apache.org/protocol.html.)
 *
 * PRIMITIVES (all fixed-size integers big-endian, as Kafka)
 *   int8/16/32/64      two's complement
 *   uvarint            unsigned LEB128, at most 5 bytes, value < 2^32
 *                      (KIP-482 compact lengths and counts, tag numbers)
 *   varint / varlong   zigzag LEB128 (protobuf sint32/sint64), at most 5 /
 *                      10 bytes (the fields of a record)
 *   STRING / BYTES     int16 / int32 length, -1 = null, then the bytes
 *   COMPACT_*          uvarint length + 1, 0 = null, then the bytes
 *   ARRAY              int32 count, -1 = null; COMPACT_ARRAY uvarint count+1
 *   tagged fields      uvarint n, then n x (uvarint tag, uvarint size, size
 *                      bytes); we only ever send n = 0 (section 1: librdkafka
 *                      2.0.2 mis-skips received tags)
 *
 * Decoding faces hostile input.  struct kr never reads past its buffer;
 * every length and count is checked against the bytes left before use, so
 * a caller that sizes an allocation by a count kr_array() returned allocates
 * at most (bytes left / min_elem_size) elements.  Errors are sticky: after
 * the first one every read returns 0 / NULL, and the caller checks r->err
 * once when done.
 *
 * RECORD BATCH v2 (magic 2): see the layout in kafka-clients.md section 5
 * and the comment at kbatch_parse().  Parsing checks the header and the
 * CRC-32C; the record iterator decompresses (compress.h) and checks every
 * record's framing.  The builder writes uncompressed batches for Fetch.
 */
#ifndef MK_KAFKA_CODEC_H
#define MK_KAFKA_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ================================================================ reading */

/* A reader over a borrowed buffer (it must outlive every pointer the reader
 * hands out: strings and bytes point into it). */
struct kr {
    const uint8_t *p; /* the buffer */
    size_t len;       /* its size */
    size_t at;        /* bytes consumed, <= len */
    int err;          /* 0, or -EBADMSG after the first bad read (sticky) */
};

/* Starts reading len bytes at p. */
void kr_init(struct kr *r, const void *p, size_t len);

/* Bytes not yet read (0 after an error). */
size_t kr_left(const struct kr *r);

/* Fixed-size big-endian integers; 0 once r->err is set. */
int8_t kr_i8(struct kr *r);
int16_t kr_i16(struct kr *r);
int32_t kr_i32(struct kr *r);
int64_t kr_i64(struct kr *r);

/* n raw bytes: a pointer into the buffer, or NULL (with r->err set) when
 * fewer are left.  For n == 0 a non-NULL pointer at the current position. */
const uint8_t *kr_raw(struct kr *r, size_t n);

/* Unsigned LEB128 of at most 5 bytes and 32 bits: a sixth byte, or a fifth
 * byte above 0x0f, is an error. */
uint32_t kr_uvarint(struct kr *r);

/* Zigzag LEB128 of at most 5 bytes (32 bits). */
int32_t kr_varint(struct kr *r);

/* Zigzag LEB128 of at most 10 bytes (64 bits: a tenth byte above 0x01 is an
 * error). */
int64_t kr_varlong(struct kr *r);

/* Strings and byte strings.  Each returns the length and sets *s to the
 * bytes inside the buffer; -1 with *s = NULL is null; an empty one is 0 with
 * a non-NULL *s.  A length below -1 or beyond the bytes left is an error:
 * then the result is 0 and *s NULL.  No terminating NUL: use the length. */
int32_t kr_string(struct kr *r, const uint8_t **s);         /* int16 length */
int32_t kr_compact_string(struct kr *r, const uint8_t **s); /* uvarint length + 1 */
int32_t kr_bytes(struct kr *r, const uint8_t **s);          /* int32 length */
int32_t kr_compact_bytes(struct kr *r, const uint8_t **s);  /* uvarint length + 1 */

/* Array counts: -1 is null.  Each element takes at least min_elem_size
 * bytes (taken as 1 if 0: every Kafka element takes at least one), so a
 * count above kr_left() / min_elem_size cannot be honest and is an error
 * (result 0).  The elements follow and are read by the caller. */
int32_t kr_array(struct kr *r, size_t min_elem_size);         /* int32 count */
int32_t kr_compact_array(struct kr *r, size_t min_elem_size); /* uvarint count + 1 */

/* Skips a tagged-field section (all tags are unknown to us). */
void kr_skip_tags(struct kr *r);

/* ================================================================ writing */

/* A growable output buffer, owned: kw_free() releases it.  On the first
 * failure err is set (sticky) and every later write is a no-op; the caller
 * checks err once when done:
 *   -ENOMEM    an allocation failed
 *   -EMSGSIZE  a length did not fit its field (a STRING over 32767 bytes,
 *              a record or batch over 2^31 - 1)
 *   -EINVAL    a length below -1 was passed
 *   -ENOTSUP   kbatch_build_end() on a CPU without the crc32 instruction */
struct kw {
    uint8_t *p; /* the bytes written, malloc'ed (NULL before the first) */
    size_t len; /* bytes written */
    size_t cap; /* bytes allocated */
    int err;    /* 0 or a negative errno, sticky */
};

void kw_init(struct kw *w);
/* Frees the buffer and reinitializes w (so a second kw_free is harmless). */
void kw_free(struct kw *w);

void kw_i8(struct kw *w, int8_t v);
void kw_i16(struct kw *w, int16_t v);
void kw_i32(struct kw *w, int32_t v);
void kw_i64(struct kw *w, int64_t v);
void kw_uvarint(struct kw *w, uint32_t v);
void kw_varint(struct kw *w, int32_t v);
void kw_varlong(struct kw *w, int64_t v);

/* Strings and byte strings of len bytes at s; len -1 writes null (s is then
 * not read).  s is copied. */
void kw_string(struct kw *w, const void *s, int32_t len); /* int16 length */
void kw_compact_string(struct kw *w, const void *s, int32_t len);
void kw_bytes(struct kw *w, const void *s, int32_t len); /* int32 length */
void kw_compact_bytes(struct kw *w, const void *s, int32_t len);

/* Array counts, -1 = null (the caller writes the elements). */
void kw_array(struct kw *w, int32_t n);
void kw_compact_array(struct kw *w, int32_t n);

/* n bytes copied from p. */
void kw_raw(struct kw *w, const void *p, size_t n);

/* n zero bytes to fill later (a size, a CRC); returns their offset in w->p
 * (meaningless once w->err is set: the kw_put_*_at calls then do nothing). */
size_t kw_reserve(struct kw *w, size_t n);

/* Overwrites 4 bytes at offset at (from kw_reserve; at + 4 <= w->len). */
void kw_put_i32_at(struct kw *w, size_t at, int32_t v);
void kw_put_u32_at(struct kw *w, size_t at, uint32_t v);

/* An empty tagged-field section: one 0 byte. */
void kw_empty_tags(struct kw *w);

/* ================================================================ headers */

/* Request header v1, or v2 (v1 + tagged fields) for flexible versions.  The
 * client id is an int16-length nullable STRING in both. */
struct kreq_hdr {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    const uint8_t *client_id; /* into the reader's buffer; NULL when null */
    int32_t client_id_len;    /* -1 when null */
};

/* Reads a request header; with flexible, the tagged fields after it too.
 * Since only api_key and api_version tell whether the header is v2, a caller
 * may parse with flexible = false, look at h, and then call kr_skip_tags(r)
 * itself.  Returns r->err (0 or -EBADMSG); h is complete only on 0. */
int kreq_hdr_parse(struct kr *r, struct kreq_hdr *h, bool flexible);

/* Writes a response header: v0 (correlation id), or v1 (+ empty tags) when
 * flexible.  ApiVersions answers always use v0 (kafka-clients.md 1). */
void kresp_hdr_write(struct kw *w, int32_t correlation_id, bool flexible);

/* ================================================================ batches */

#define KBATCH_HDR                  61   /* bytes up to and including recordsCount */
#define KBATCH_MIN_LEN              49   /* the smallest batchLength: KBATCH_HDR - 12 */
#define KBATCH_CRC_AT               17   /* offset of the crc */
#define KBATCH_CRC_FROM             21   /* the CRC covers attributes to the end */
#define KBATCH_ATTR_CODEC           0x07 /* enum kcodec (compress.h) */
#define KBATCH_ATTR_LOG_APPEND_TIME 0x08
#define KBATCH_ATTR_TRANSACTIONAL   0x10
#define KBATCH_ATTR_CONTROL         0x20

/* A parsed batch header; records points into the buffer given to
 * kbatch_parse() and lives as long as it. */
struct kbatch {
    int64_t base_offset;
    int32_t batch_length; /* bytes after this field: total = 12 + batch_length */
    int32_t leader_epoch;
    int8_t magic; /* 2 */
    uint32_t crc; /* as stored, verified */
    int16_t attributes;
    int32_t last_offset_delta; /* >= 0 */
    int64_t base_ts, max_ts;
    int64_t producer_id; /* -1: none */
    int16_t producer_epoch;
    int32_t base_seq;
    int32_t count;          /* recordsCount, >= 0; checked against the records by the iterator */
    const uint8_t *records; /* the bytes after the header, compressed when attributes & 7 */
    size_t records_len;
};

/* Parses the batch at the start of buf (len bytes; more batches may
 * follow): *used is set to its total size, 12 + batch_length, on 0 and on
 * -EPROTO (a v0/v1 message has its size at the same place).  Returns
 *   0          b filled in, the CRC-32C over attributes..end verified
 *   -EPROTO    magic is not 2 (a v0/v1 message set: offset 16 is its magic
 *              too, so this is told apart before the v2 length check); the
 *              caller answers UNSUPPORTED_VERSION / CORRUPT_MESSAGE
 *   -EBADMSG   fewer than 12 + batch_length bytes, batch_length < 49, a CRC
 *              mismatch, count < 0 or last_offset_delta < 0
 *   -ENOTSUP   no crc32 instruction on this CPU (crc32c.h)
 * baseOffset and the leader epoch are outside the CRC, as in Kafka: a
 * broker may overwrite them (bytes 0..7 and 12..15) without recomputing it.
 * The records are not looked at: the iterator below checks them. */
int kbatch_parse(const uint8_t *buf, size_t len, struct kbatch *b, size_t *used);

/* A decoded record; the pointers go into the iterator's records (valid until
 * kbatch_records_end(), and as long as the batch's buffer when it was not
 * compressed). */
struct krecord {
    int8_t attributes;    /* unused by Kafka, 0 */
    int64_t ts_delta;     /* timestamp - base_ts */
    int32_t offset_delta; /* offset - base_offset, in 0..last_offset_delta, increasing */
    const uint8_t *key;   /* NULL when null */
    int32_t key_len;      /* -1 when null */
    const uint8_t *value;
    int32_t value_len;      /* -1 when null */
    int32_t nheaders;       /* >= 0 */
    const uint8_t *headers; /* the header section after its count, raw, as stored */
    size_t headers_len;     /* (already checked: kheaders_next over it cannot fail) */
};

/* Iteration state over one batch's records.  Fields are private. */
struct krec_iter {
    struct kr r;        /* over the (decompressed) records */
    uint8_t *owned;     /* the decompressed records, or NULL */
    int32_t left;       /* records still to come per the header's count */
    int32_t last_delta; /* the header's last_offset_delta */
    int64_t next_delta; /* the smallest offset_delta the next record may carry */
    int err;            /* sticky */
};

/* Starts iterating b's records, decompressing them first when
 * attributes & 7 is not 0 into a buffer of at most max_out bytes that the
 * iterator owns.  Returns 0, or kdecompress()'s errors (-EBADMSG, -EMSGSIZE,
 * -ENOTSUP for codecs 5..7, -ENOMEM).  Call kbatch_records_end() after
 * either. */
int kbatch_records_begin(struct krec_iter *it, const struct kbatch *b, size_t max_out);

/* The next record: 1 with *rec filled in, 0 after exactly b->count records
 * when no byte is left, or -EBADMSG: fewer records than count, bytes left
 * after them, a record length beyond what is left, fields that do not fill
 * the record length exactly, a negative key/value length other than -1, a
 * negative header count, a header with a null key, headers that do not fill
 * the rest of the record, an offset delta out of order or above
 * last_offset_delta.  Errors are sticky. */
int kbatch_records_next(struct krec_iter *it, struct krecord *rec);

/* Frees what the iterator owns; harmless after a failed begin. */
void kbatch_records_end(struct krec_iter *it);

/* Iterates a record's headers: kr_init(&r, rec.headers, rec.headers_len),
 * then each call returns 1 with the next header (key never null; *val NULL
 * and *val_len -1 for a null value), 0 at the end, or -EBADMSG. */
int kheaders_next(struct kr *r, const uint8_t **key, int32_t *key_len, const uint8_t **val,
                  int32_t *val_len);

/* Builds one uncompressed batch into w (for Fetch answers): begin writes a
 * 61-byte header placeholder at w->len, add appends a record, end fills in
 * batchLength, recordsCount, lastOffsetDelta, maxTimestamp and the CRC.
 * Between begin and end the caller may set leader_epoch, attributes
 * (timestamp type / transactional bits; the codec bits must stay 0),
 * producer_id, producer_epoch and base_seq (defaults -1, 0, -1, -1, -1).
 * Nothing else may be written to w in between. */
struct kbatch_builder {
    struct kw *w;
    size_t start; /* offset of the batch in w->p */
    int64_t base_offset, base_ts;
    int64_t max_ts; /* of the records added; base_ts while there are none */
    int32_t count;
    int32_t last_delta;
    int32_t leader_epoch;
    int16_t attributes;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_seq;
};

void kbatch_build_begin(struct kbatch_builder *bb, struct kw *w, int64_t base_offset,
                        int64_t base_ts);

/* Appends the record at offset (base_offset <= offset < base_offset + 2^31,
 * increasing from one call to the next) with timestamp ts; key and value of
 * key_len / value_len bytes, -1 = null; headers_len bytes of an already
 * encoded header section holding nheaders headers (as krecord.headers).
 * All is copied. */
void kbatch_build_add(struct kbatch_builder *bb, int64_t offset, int64_t ts, const void *key,
                      int32_t key_len, const void *value, int32_t value_len, int32_t nheaders,
                      const void *headers, size_t headers_len);

/* Appends one record header to w, encoded as in a record's header section
 * (varint key length, key, varint value length, value; val_len -1 = null):
 * how a caller makes the headers argument of kbatch_build_add(). */
void kw_record_header(struct kw *w, const void *key, int32_t key_len, const void *val,
                      int32_t val_len);

/* Completes the batch; returns w->err (0, -ENOMEM, -EMSGSIZE, -ENOTSUP). */
int kbatch_build_end(struct kbatch_builder *bb);

#endif
