/*
 * test_kcodec — the Kafka wire codec (broker/kafka/codec.h), its CRC-32C
 * and its decompression: every primitive round-trips at its limits; every
 * truncation, overlong varint, lying length or count, flipped bit and
 * malformed record is refused without reading past the input (inputs are
 * copied to buffers of their exact size, so the ASan build catches any
 * over-read); batches built here parse back record by record; batches
 * encoded by another Kafka client (sarama's test vectors, CRCs and
 * compressed payloads computed by Go's libraries) parse and iterate; each
 * codec decompresses what its own library compressed, refuses corrupt data
 * and stops at the output limit.
 */
#include "broker/kafka/codec.h"
#include "broker/kafka/compress.h"
#include "broker/kafka/crc32c.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* The writer of each test and whatever it allocated, freed at teardown. */
static struct kw w;
static void **owned;
static size_t nowned, capowned;

static void *keep(void *p)
{
    cr_assert_not_null(p);
    if (nowned == capowned) {
        capowned = capowned ? 2 * capowned : 64;
        owned = realloc(owned, capowned * sizeof(*owned));
        cr_assert_not_null(owned);
    }
    owned[nowned++] = p;
    return p;
}

static void teardown(void)
{
    kw_free(&w);
    while (nowned > 0)
        free(owned[--nowned]);
    free(owned);
    owned = NULL;
    capowned = 0;
}

static void setup(void)
{
    cr_assert(kcrc32c_available(), "this machine has no SSE4.2 crc32 instruction");
    kw_init(&w);
}

TestSuite(kcodec, .init = setup, .fini = teardown);

/* A copy of n bytes in a buffer of exactly n bytes (freed at teardown). */
static uint8_t *exact(const void *p, size_t n)
{
    uint8_t *c = keep(malloc(n ? n : 1));
    if (n)
        memcpy(c, p, n);
    return c;
}

/* Hex text to bytes (freed at teardown); *n its length. */
static uint8_t *unhex(const char *s, size_t *n)
{
    size_t len = strlen(s);
    cr_assert_eq(len % 2, 0);
    uint8_t *b = keep(malloc(len / 2 + 1));
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        cr_assert_eq(sscanf(s + 2 * i, "%2x", &v), 1);
        b[i] = (uint8_t)v;
    }
    *n = len / 2;
    return b;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* Rewrites batchLength for a batch of total bytes and recomputes its CRC:
 * how a test makes a consistent batch out of edited bytes. */
static void reseal(uint8_t *b, size_t total)
{
    put_be32(b + 8, (uint32_t)(total - 12));
    put_be32(b + KBATCH_CRC_AT, kcrc32c(0, b + KBATCH_CRC_FROM, total - KBATCH_CRC_FROM));
}

/* A sealed batch with the given header fields and records bytes, in out. */
static void raw_batch(struct kw *out, int16_t attributes, int32_t last_delta, int32_t count,
                      const void *records, size_t n)
{
    kw_i64(out, 0);  /* base offset */
    kw_i32(out, 0);  /* batch length, sealed below */
    kw_i32(out, -1); /* leader epoch */
    kw_i8(out, 2);
    kw_i32(out, 0); /* crc, sealed below */
    kw_i16(out, attributes);
    kw_i32(out, last_delta);
    kw_i64(out, 1000);
    kw_i64(out, 1000);
    kw_i64(out, -1);
    kw_i16(out, -1);
    kw_i32(out, -1);
    kw_i32(out, count);
    kw_raw(out, records, n);
    cr_assert_eq(out->err, 0);
    reseal(out->p, out->len);
}

/* Iterates a whole batch; returns the first result that is not 1, and the
 * number of records before it. */
static int iterate(const uint8_t *buf, size_t len, size_t max_out, int *nrec)
{
    struct kbatch b;
    size_t used;
    int rc = kbatch_parse(buf, len, &b, &used);
    *nrec = 0;
    if (rc)
        return rc;
    struct krec_iter it;
    struct krecord rec;
    rc = kbatch_records_begin(&it, &b, max_out);
    while (rc == 0 && (rc = kbatch_records_next(&it, &rec)) == 1) {
        (*nrec)++;
        rc = 0;
    }
    kbatch_records_end(&it);
    return rc;
}

/* ================================================================ primitives */

Test(kcodec, fixed_integers_round_trip_big_endian_at_their_limits)
{
    kw_i8(&w, INT8_MIN);
    kw_i8(&w, INT8_MAX);
    kw_i16(&w, INT16_MIN);
    kw_i16(&w, -1);
    kw_i32(&w, INT32_MIN);
    kw_i32(&w, 0x01020304);
    kw_i64(&w, INT64_MIN);
    kw_i64(&w, INT64_MAX);
    kw_i64(&w, 0x0102030405060708);
    cr_assert_eq(w.err, 0);
    cr_assert_eq(w.len, 2 + 4 + 8 + 24);
    static const uint8_t be[] = {1, 2, 3, 4};
    cr_assert_arr_eq(w.p + 10, be, 4, "int32 is big-endian");
    struct kr r;
    kr_init(&r, exact(w.p, w.len), w.len);
    cr_assert_eq(kr_i8(&r), INT8_MIN);
    cr_assert_eq(kr_i8(&r), INT8_MAX);
    cr_assert_eq(kr_i16(&r), INT16_MIN);
    cr_assert_eq(kr_i16(&r), -1);
    cr_assert_eq(kr_i32(&r), INT32_MIN);
    cr_assert_eq(kr_i32(&r), 0x01020304);
    cr_assert_eq(kr_i64(&r), INT64_MIN);
    cr_assert_eq(kr_i64(&r), INT64_MAX);
    cr_assert_eq(kr_i64(&r), 0x0102030405060708);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(kr_left(&r), 0);
}

Test(kcodec, reading_past_the_end_is_a_sticky_error)
{
    static const uint8_t two[] = {0x12, 0x34};
    struct kr r;
    kr_init(&r, exact(two, 2), 2);
    cr_assert_eq(kr_i32(&r), 0);
    cr_assert_eq(r.err, -EBADMSG);
    cr_assert_eq(kr_i8(&r), 0, "bytes are left, but the error sticks");
    cr_assert_eq(kr_left(&r), 0);
    cr_assert_null(kr_raw(&r, 0));
    kr_init(&r, NULL, 0);
    cr_assert_eq(kr_i8(&r), 0);
    cr_assert_eq(r.err, -EBADMSG);
}

Test(kcodec, uvarints_round_trip_in_their_shortest_form)
{
    static const struct {
        uint32_t v;
        size_t n;
    } cases[] = {{0, 1},        {1, 1},
                 {127, 1},      {128, 2},
                 {300, 2},      {16383, 2},
                 {16384, 3},    {(1u << 21) - 1, 3},
                 {1u << 21, 4}, {(1u << 28) - 1, 4},
                 {1u << 28, 5}, {UINT32_MAX, 5}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kw_free(&w);
        kw_uvarint(&w, cases[i].v);
        cr_assert_eq(w.len, cases[i].n, "%u takes %zu bytes", cases[i].v, cases[i].n);
        struct kr r;
        kr_init(&r, exact(w.p, w.len), w.len);
        cr_assert_eq(kr_uvarint(&r), cases[i].v);
        cr_assert_eq(r.err, 0);
        cr_assert_eq(kr_left(&r), 0);
    }
    kw_free(&w);
    kw_uvarint(&w, 300);
    static const uint8_t leb300[] = {0xac, 0x02};
    cr_assert_arr_eq(w.p, leb300, 2);
}

Test(kcodec, varints_are_zigzag_and_round_trip)
{
    static const struct {
        int32_t v;
        uint8_t enc[5];
        size_t n;
    } cases[] = {{0, {0x00}, 1},
                 {-1, {0x01}, 1},
                 {1, {0x02}, 1},
                 {-2, {0x03}, 1},
                 {-64, {0x7f}, 1},
                 {64, {0x80, 0x01}, 2},
                 {INT32_MAX, {0xfe, 0xff, 0xff, 0xff, 0x0f}, 5},
                 {INT32_MIN, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kw_free(&w);
        kw_varint(&w, cases[i].v);
        cr_assert_eq(w.len, cases[i].n);
        cr_assert_arr_eq(w.p, cases[i].enc, cases[i].n, "encoding of %d", cases[i].v);
        struct kr r;
        kr_init(&r, exact(w.p, w.len), w.len);
        cr_assert_eq(kr_varint(&r), cases[i].v);
        cr_assert_eq(r.err, 0);
        cr_assert_eq(kr_left(&r), 0);
    }
}

Test(kcodec, varlongs_round_trip_up_to_ten_bytes)
{
    static const int64_t vals[] = {0, -1, 1, INT32_MIN, (int64_t)1 << 62, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        kw_free(&w);
        kw_varlong(&w, vals[i]);
        struct kr r;
        kr_init(&r, exact(w.p, w.len), w.len);
        cr_assert_eq(kr_varlong(&r), vals[i]);
        cr_assert_eq(r.err, 0);
        cr_assert_eq(kr_left(&r), 0);
    }
    kw_free(&w);
    kw_varlong(&w, INT64_MIN);
    static const uint8_t min[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    cr_assert_eq(w.len, 10);
    cr_assert_arr_eq(w.p, min, 10);
}

/* Decodes one LEB128 form from n bytes; returns r.err. */
static int leb_err(int kind, const uint8_t *p, size_t n)
{
    struct kr r;
    kr_init(&r, exact(p, n), n);
    if (kind == 0)
        (void)kr_uvarint(&r);
    else if (kind == 1)
        (void)kr_varint(&r);
    else
        (void)kr_varlong(&r);
    return r.err;
}

Test(kcodec, overlong_and_oversized_varints_are_refused)
{
    static const uint8_t six[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    cr_assert_eq(leb_err(0, six, 6), -EBADMSG, "a sixth uvarint byte");
    cr_assert_eq(leb_err(1, six, 6), -EBADMSG, "a sixth varint byte");
    static const uint8_t big5[] = {0xff, 0xff, 0xff, 0xff, 0x10};
    cr_assert_eq(leb_err(0, big5, 5), -EBADMSG, "a uvarint above 2^32 - 1");
    static const uint8_t max5[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    cr_assert_eq(leb_err(0, max5, 5), 0);
    static const uint8_t eleven[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x00};
    cr_assert_eq(leb_err(2, eleven, 11), -EBADMSG, "an eleventh varlong byte");
    static const uint8_t big10[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    cr_assert_eq(leb_err(2, big10, 10), -EBADMSG, "a varlong above 64 bits");
    /* a non-minimal form is accepted, as by Kafka's ByteUtils */
    static const uint8_t padded[] = {0x80, 0x00};
    cr_assert_eq(leb_err(0, padded, 2), 0);
}

Test(kcodec, truncated_varints_are_refused)
{
    static const uint8_t cont[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    for (size_t n = 0; n < 5; n++) {
        cr_assert_eq(leb_err(0, cont, n), -EBADMSG, "uvarint cut to %zu bytes", n);
        cr_assert_eq(leb_err(1, cont, n), -EBADMSG, "varint cut to %zu bytes", n);
    }
    for (size_t n = 0; n < 10; n++)
        cr_assert_eq(leb_err(2, cont, n), -EBADMSG, "varlong cut to %zu bytes", n);
}

/* ================================================================ strings, arrays */

Test(kcodec, strings_and_bytes_tell_null_from_empty)
{
    kw_string(&w, NULL, -1);
    kw_string(&w, "", 0);
    kw_string(&w, "abc", 3);
    kw_compact_string(&w, NULL, -1);
    kw_compact_string(&w, "", 0);
    kw_compact_string(&w, "abc", 3);
    kw_bytes(&w, NULL, -1);
    kw_bytes(&w, "", 0);
    kw_bytes(&w, "\0\xff", 2);
    kw_compact_bytes(&w, NULL, -1);
    kw_compact_bytes(&w, "", 0);
    kw_compact_bytes(&w, "\0\xff", 2);
    cr_assert_eq(w.err, 0);
    static const uint8_t enc[] = {0xff, 0xff, 0,   0,    0,    3,    'a',  'b', 'c', 0,   1, 4,
                                  'a',  'b',  'c', 0xff, 0xff, 0xff, 0xff, 0,   0,   0,   0, 0,
                                  0,    0,    2,   0,    0xff, 0,    1,    3,   0,   0xff};
    cr_assert_eq(w.len, sizeof(enc));
    cr_assert_arr_eq(w.p, enc, sizeof(enc));

    struct kr r;
    kr_init(&r, exact(w.p, w.len), w.len);
    int32_t (*rd[4])(struct kr *, const uint8_t **) = {kr_string, kr_compact_string, kr_bytes,
                                                       kr_compact_bytes};
    for (int k = 0; k < 4; k++) {
        const uint8_t *s = (const uint8_t *)"x";
        cr_assert_eq(rd[k](&r, &s), -1, "kind %d: null", k);
        cr_assert_null(s);
        cr_assert_eq(rd[k](&r, &s), 0, "kind %d: empty", k);
        cr_assert_not_null(s, "an empty string is not null");
        int32_t n = rd[k](&r, &s);
        cr_assert_eq(n, k < 2 ? 3 : 2);
        cr_assert_arr_eq(s, k < 2 ? "abc" : "\0\xff", (size_t)n);
    }
    cr_assert_eq(r.err, 0);
    cr_assert_eq(kr_left(&r), 0);
}

/* Reads one string of the given kind from n bytes; returns r.err, and
 * checks an error leaves 0 and NULL. */
static int string_err(int kind, const uint8_t *p, size_t n)
{
    int32_t (*rd[4])(struct kr *, const uint8_t **) = {kr_string, kr_compact_string, kr_bytes,
                                                       kr_compact_bytes};
    struct kr r;
    kr_init(&r, exact(p, n), n);
    const uint8_t *s = p;
    int32_t len = rd[kind](&r, &s);
    if (r.err) {
        cr_assert_eq(len, 0);
        cr_assert_null(s);
    }
    return r.err;
}

Test(kcodec, string_lengths_beyond_the_input_or_below_minus_one_are_refused)
{
    static const uint8_t s16_long[] = {0, 4, 'a', 'b', 'c'};
    cr_assert_eq(string_err(0, s16_long, sizeof(s16_long)), -EBADMSG);
    cr_assert_eq(string_err(0, s16_long, 4), -EBADMSG);
    static const uint8_t s16_neg[] = {0xff, 0xfe};
    cr_assert_eq(string_err(0, s16_neg, 2), -EBADMSG, "int16 length -2");
    static const uint8_t c_long[] = {5, 'a', 'b', 'c'};
    cr_assert_eq(string_err(1, c_long, sizeof(c_long)), -EBADMSG);
    static const uint8_t c_huge[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 'a'};
    cr_assert_eq(string_err(1, c_huge, sizeof(c_huge)), -EBADMSG, "compact length 2^32 - 2");
    cr_assert_eq(string_err(3, c_huge, sizeof(c_huge)), -EBADMSG);
    static const uint8_t b_huge[] = {0x7f, 0xff, 0xff, 0xff, 'a', 'b', 'c'};
    cr_assert_eq(string_err(2, b_huge, sizeof(b_huge)), -EBADMSG, "int32 length 2^31 - 1");
    static const uint8_t b_neg[] = {0xff, 0xff, 0xff, 0xfe};
    cr_assert_eq(string_err(2, b_neg, 4), -EBADMSG, "int32 length -2");
    static const uint8_t b_min[] = {0x80, 0, 0, 0};
    cr_assert_eq(string_err(2, b_min, 4), -EBADMSG, "int32 length INT32_MIN");
    static const uint8_t fits[] = {0, 0, 0, 3, 'a', 'b', 'c'};
    cr_assert_eq(string_err(2, fits, sizeof(fits)), 0);
}

Test(kcodec, arrays_tell_null_from_empty)
{
    kw_array(&w, -1);
    kw_array(&w, 0);
    kw_array(&w, 2);
    kw_raw(&w, "ab", 2);
    kw_compact_array(&w, -1);
    kw_compact_array(&w, 0);
    kw_compact_array(&w, 2);
    kw_raw(&w, "ab", 2);
    cr_assert_eq(w.err, 0);
    struct kr r;
    kr_init(&r, exact(w.p, w.len), w.len);
    cr_assert_eq(kr_array(&r, 1), -1);
    cr_assert_eq(kr_array(&r, 1), 0);
    cr_assert_eq(kr_array(&r, 1), 2);
    cr_assert_not_null(kr_raw(&r, 2));
    cr_assert_eq(kr_compact_array(&r, 1), -1);
    cr_assert_eq(kr_compact_array(&r, 1), 0);
    cr_assert_eq(kr_compact_array(&r, 0), 2, "min_elem_size 0 counts as 1");
    cr_assert_not_null(kr_raw(&r, 2));
    cr_assert_eq(r.err, 0);
    cr_assert_eq(kr_left(&r), 0);
}

/* Reads one array count (compact or not) with min_elem_size m; returns it,
 * and r.err in *err. */
static int32_t count_of(bool compact, const uint8_t *p, size_t n, size_t m, int *err)
{
    struct kr r;
    kr_init(&r, exact(p, n), n);
    int32_t c = compact ? kr_compact_array(&r, m) : kr_array(&r, m);
    *err = r.err;
    return c;
}

/* A count the rest cannot hold is refused by the reader itself, so a
 * caller that allocates count elements after kr_array() allocates at most
 * what the bytes left could describe. */
Test(kcodec, array_counts_larger_than_the_input_are_refused_before_any_allocation)
{
    int err;
    uint8_t big[14] = {0x7f, 0xff, 0xff, 0xff};
    cr_assert_eq(count_of(false, big, sizeof(big), 1, &err), 0);
    cr_assert_eq(err, -EBADMSG, "2^31 - 1 elements in 10 bytes");
    uint8_t three[4 + 12] = {0, 0, 0, 3};
    cr_assert_eq(count_of(false, three, 4 + 11, 4, &err), 0);
    cr_assert_eq(err, -EBADMSG, "3 elements of >= 4 bytes in 11 bytes");
    cr_assert_eq(count_of(false, three, 4 + 12, 4, &err), 3);
    cr_assert_eq(err, 0, "3 elements of >= 4 bytes in 12 bytes");
    static const uint8_t neg[] = {0xff, 0xff, 0xff, 0xfe, 0};
    cr_assert_eq(count_of(false, neg, sizeof(neg), 1, &err), 0);
    cr_assert_eq(err, -EBADMSG, "count -2");
    static const uint8_t chuge[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0};
    cr_assert_eq(count_of(true, chuge, sizeof(chuge), 1, &err), 0);
    cr_assert_eq(err, -EBADMSG, "compact count 2^32 - 2");
    static const uint8_t cfour[] = {5, 0, 0, 0};
    cr_assert_eq(count_of(true, cfour, sizeof(cfour), 1, &err), 0);
    cr_assert_eq(err, -EBADMSG, "compact count 4 in 3 bytes");
}

Test(kcodec, tagged_fields_are_skipped)
{
    kw_uvarint(&w, 2);
    kw_uvarint(&w, 0);
    kw_uvarint(&w, 3);
    kw_raw(&w, "abc", 3);
    kw_uvarint(&w, 300); /* a two-byte tag number */
    kw_uvarint(&w, 0);
    kw_i8(&w, 0x7f);
    struct kr r;
    kr_init(&r, exact(w.p, w.len), w.len);
    kr_skip_tags(&r);
    cr_assert_eq(kr_i8(&r), 0x7f);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(kr_left(&r), 0);

    static const uint8_t long_field[] = {1, 0, 10, 'a', 'b'};
    kr_init(&r, exact(long_field, sizeof(long_field)), sizeof(long_field));
    kr_skip_tags(&r);
    cr_assert_eq(r.err, -EBADMSG, "a field longer than the input");
    static const uint8_t many[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0};
    kr_init(&r, exact(many, sizeof(many)), sizeof(many));
    kr_skip_tags(&r);
    cr_assert_eq(r.err, -EBADMSG, "2^32 - 1 fields in 2 bytes");
    static const uint8_t none[] = {0};
    kr_init(&r, exact(none, 1), 1);
    kr_skip_tags(&r);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(kr_left(&r), 0);
}

/* ================================================================ writer */

Test(kcodec, the_writer_refuses_lengths_that_do_not_fit_and_stays_failed)
{
    static char big[INT16_MAX + 1];
    kw_string(&w, big, INT16_MAX);
    cr_assert_eq(w.err, 0);
    size_t len = w.len;
    kw_string(&w, big, INT16_MAX + 1);
    cr_assert_eq(w.err, -EMSGSIZE);
    kw_i8(&w, 1);
    kw_raw(&w, "abc", 3);
    cr_assert_eq(w.len, len, "writes after the error are no-ops");
    kw_free(&w);
    kw_bytes(&w, "a", -2);
    cr_assert_eq(w.err, -EINVAL);
    kw_free(&w);
    kw_compact_array(&w, -2);
    cr_assert_eq(w.err, -EINVAL);
}

Test(kcodec, reserved_bytes_are_filled_in_later)
{
    size_t at = kw_reserve(&w, 4);
    kw_raw(&w, "xy", 2);
    size_t at2 = kw_reserve(&w, 4);
    kw_put_i32_at(&w, at, (int32_t)(w.len - 4));
    kw_put_u32_at(&w, at2, 0xdeadbeef);
    kw_empty_tags(&w);
    cr_assert_eq(w.err, 0);
    static const uint8_t want[] = {0, 0, 0, 6, 'x', 'y', 0xde, 0xad, 0xbe, 0xef, 0};
    cr_assert_eq(w.len, sizeof(want));
    cr_assert_arr_eq(w.p, want, sizeof(want));
    kw_put_u32_at(&w, w.len - 3, 1);
    cr_assert_eq(w.err, -EINVAL, "a put past the end");
}

/* ================================================================ headers */

/* Produce v7 from "rdkafka", correlation id 0x01020304. */
static const uint8_t hdr_v1[] = {0, 0, 0, 7, 1, 2, 3, 4, 0, 7, 'r', 'd', 'k', 'a', 'f', 'k', 'a'};
/* ApiVersions v3 (flexible): null client id, one tagged field of 2 bytes. */
static const uint8_t hdr_v2[] = {0, 18, 0, 3, 0, 0, 0, 9, 0xff, 0xff, 1, 5, 2, 'h', 'i'};

Test(kcodec, request_header_v1_parses)
{
    struct kr r;
    struct kreq_hdr h;
    kr_init(&r, exact(hdr_v1, sizeof(hdr_v1)), sizeof(hdr_v1));
    cr_assert_eq(kreq_hdr_parse(&r, &h, false), 0);
    cr_assert_eq(h.api_key, 0);
    cr_assert_eq(h.api_version, 7);
    cr_assert_eq(h.correlation_id, 0x01020304);
    cr_assert_eq(h.client_id_len, 7);
    cr_assert_arr_eq(h.client_id, "rdkafka", 7);
    cr_assert_eq(kr_left(&r), 0);
}

Test(kcodec, request_header_v2_has_a_nullable_int16_client_id_and_tags)
{
    struct kr r;
    struct kreq_hdr h;
    uint8_t *buf = exact(hdr_v2, sizeof(hdr_v2));
    kr_init(&r, buf, sizeof(hdr_v2));
    cr_assert_eq(kreq_hdr_parse(&r, &h, true), 0);
    cr_assert_eq(h.api_key, 18);
    cr_assert_eq(h.api_version, 3);
    cr_assert_eq(h.correlation_id, 9);
    cr_assert_eq(h.client_id_len, -1);
    cr_assert_null(h.client_id);
    cr_assert_eq(kr_left(&r), 0);
    /* parsed as v1 first, the caller then skips the tags itself */
    kr_init(&r, buf, sizeof(hdr_v2));
    cr_assert_eq(kreq_hdr_parse(&r, &h, false), 0);
    cr_assert_eq(kr_left(&r), 5);
    kr_skip_tags(&r);
    cr_assert_eq(r.err, 0);
    cr_assert_eq(kr_left(&r), 0);
}

Test(kcodec, request_headers_cut_at_any_byte_are_refused)
{
    for (size_t cut = 0; cut < sizeof(hdr_v1); cut++) {
        struct kr r;
        struct kreq_hdr h;
        kr_init(&r, exact(hdr_v1, cut), cut);
        cr_assert_eq(kreq_hdr_parse(&r, &h, false), -EBADMSG, "v1 cut to %zu bytes", cut);
    }
    for (size_t cut = 0; cut < sizeof(hdr_v2); cut++) {
        struct kr r;
        struct kreq_hdr h;
        kr_init(&r, exact(hdr_v2, cut), cut);
        cr_assert_eq(kreq_hdr_parse(&r, &h, true), -EBADMSG, "v2 cut to %zu bytes", cut);
    }
}

Test(kcodec, response_headers_are_v0_or_v1)
{
    kresp_hdr_write(&w, 0x0a0b0c0d, false);
    kresp_hdr_write(&w, -1, true);
    static const uint8_t want[] = {0x0a, 0x0b, 0x0c, 0x0d, 0xff, 0xff, 0xff, 0xff, 0};
    cr_assert_eq(w.len, sizeof(want));
    cr_assert_arr_eq(w.p, want, sizeof(want));
}

/* ================================================================ crc32c */

Test(kcodec, crc32c_matches_the_published_check_values)
{
    uint8_t zeros[32] = {0}, ones[32], inc[32];
    memset(ones, 0xff, sizeof(ones));
    for (int i = 0; i < 32; i++)
        inc[i] = (uint8_t)i;
    cr_assert_eq(kcrc32c(0, "123456789", 9), 0xe3069283u);
    cr_assert_eq(kcrc32c(0, zeros, 32), 0x8a9136aau);
    cr_assert_eq(kcrc32c(0, ones, 32), 0x62a8ab43u);
    cr_assert_eq(kcrc32c(0, inc, 32), 0x46dd794eu);
    cr_assert_eq(kcrc32c(0, NULL, 0), 0);
}

/* The 8-byte steps and the byte tail agree at every alignment and split. */
Test(kcodec, crc32c_chains_at_any_split_and_alignment)
{
    uint8_t buf[80];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t start = 0; start < 9; start++) {
        const uint8_t *p = buf + start;
        size_t n = sizeof(buf) - start;
        uint8_t *ex = exact(p, n);
        uint32_t whole = kcrc32c(0, ex, n);
        for (size_t split = 0; split <= n; split++)
            cr_assert_eq(kcrc32c(kcrc32c(0, ex, split), ex + split, n - split), whole,
                         "start %zu split %zu", start, split);
    }
}

/* ================================================================ batches */

/* The records of the sample batch: keys null and not, values null, empty,
 * with a newline, binary with 0x00 and 0xff; headers with a null value;
 * offsets with a gap; timestamps out of order. */
struct sample {
    int64_t off, ts;
    const char *key;
    int32_t key_len;
    const char *val;
    int32_t val_len;
    int nheaders;
};
static const struct sample samples[] = {
    {100, 1000, NULL, -1, "line one\n", 9, 0},
    {101, 999, "k", 1, "", 0, 2},
    {103, 1500, "\0\xff\n", 3, NULL, -1, 0},
    {104, 2000, "", 0, "\xff\0\0\xfe\n\0", 6, 1},
};
#define NSAMPLES (int)(sizeof(samples) / sizeof(samples[0]))

/* The header section of sample i (in hw, which the caller frees). */
static void sample_headers(int i, struct kw *hw)
{
    kw_init(hw);
    if (samples[i].nheaders == 2) {
        kw_record_header(hw, "h1", 2, "v\n1", 3);
        kw_record_header(hw, "h2", 2, NULL, -1);
    } else if (samples[i].nheaders == 1) {
        kw_record_header(hw, "bin", 3, "\0\xff", 2);
    }
    cr_assert_eq(hw->err, 0);
}

/* The sample batch into out; returns its offset there. */
static size_t build_sample(struct kw *out)
{
    struct kbatch_builder bb;
    kbatch_build_begin(&bb, out, 100, 1000);
    for (int i = 0; i < NSAMPLES; i++) {
        struct kw hw;
        sample_headers(i, &hw);
        kbatch_build_add(&bb, samples[i].off, samples[i].ts, samples[i].key, samples[i].key_len,
                         samples[i].val, samples[i].val_len, samples[i].nheaders, hw.p, hw.len);
        kw_free(&hw);
    }
    cr_assert_eq(kbatch_build_end(&bb), 0);
    return bb.start;
}

static void assert_bytes(const uint8_t *got, int32_t got_len, const char *want, int32_t want_len)
{
    cr_assert_eq(got_len, want_len);
    if (want_len < 0)
        cr_assert_null(got);
    else
        cr_assert_arr_eq(got, want, (size_t)want_len);
}

/* Checks the iterator yields exactly the sample records, then 0. */
static void check_sample_records(struct krec_iter *it)
{
    struct krecord rec;
    for (int i = 0; i < NSAMPLES; i++) {
        cr_assert_eq(kbatch_records_next(it, &rec), 1, "record %d", i);
        cr_assert_eq(rec.attributes, 0);
        cr_assert_eq(rec.offset_delta, samples[i].off - 100);
        cr_assert_eq(rec.ts_delta, samples[i].ts - 1000);
        assert_bytes(rec.key, rec.key_len, samples[i].key, samples[i].key_len);
        assert_bytes(rec.value, rec.value_len, samples[i].val, samples[i].val_len);
        cr_assert_eq(rec.nheaders, samples[i].nheaders);
        struct kw hw;
        sample_headers(i, &hw);
        cr_assert_eq(rec.headers_len, hw.len);
        if (hw.len)
            cr_assert_arr_eq(rec.headers, hw.p, hw.len);
        kw_free(&hw);
    }
    cr_assert_eq(kbatch_records_next(it, &rec), 0);
    cr_assert_eq(kbatch_records_next(it, &rec), 0, "the end stays the end");
}

Test(kcodec, a_built_batch_parses_back_record_by_record)
{
    build_sample(&w);
    kw_raw(&w, "next batch", 10); /* what follows the batch is not its business */
    size_t total = w.len - 10;
    uint8_t *buf = exact(w.p, w.len);
    struct kbatch b;
    size_t used;
    cr_assert_eq(kbatch_parse(buf, w.len, &b, &used), 0);
    cr_assert_eq(used, total);
    cr_assert_eq(b.base_offset, 100);
    cr_assert_eq(b.batch_length, (int32_t)(total - 12));
    cr_assert_eq(b.leader_epoch, -1);
    cr_assert_eq(b.magic, 2);
    cr_assert_eq(b.attributes, 0);
    cr_assert_eq(b.last_offset_delta, 4);
    cr_assert_eq(b.base_ts, 1000);
    cr_assert_eq(b.max_ts, 2000);
    cr_assert_eq(b.producer_id, -1);
    cr_assert_eq(b.producer_epoch, -1);
    cr_assert_eq(b.base_seq, -1);
    cr_assert_eq(b.count, NSAMPLES);
    cr_assert_eq(b.records, buf + KBATCH_HDR);
    cr_assert_eq(b.records_len, total - KBATCH_HDR);

    struct krec_iter it;
    cr_assert_eq(kbatch_records_begin(&it, &b, 0), 0, "max_out matters only when compressed");
    check_sample_records(&it);
    kbatch_records_end(&it);
}

Test(kcodec, record_headers_iterate_with_null_values)
{
    build_sample(&w);
    struct kbatch b;
    size_t used;
    cr_assert_eq(kbatch_parse(exact(w.p, w.len), w.len, &b, &used), 0);
    struct krec_iter it;
    struct krecord rec;
    cr_assert_eq(kbatch_records_begin(&it, &b, 0), 0);
    cr_assert_eq(kbatch_records_next(&it, &rec), 1);
    cr_assert_eq(kbatch_records_next(&it, &rec), 1);
    struct kr r;
    kr_init(&r, rec.headers, rec.headers_len);
    const uint8_t *k, *v;
    int32_t kl, vl;
    cr_assert_eq(kheaders_next(&r, &k, &kl, &v, &vl), 1);
    assert_bytes(k, kl, "h1", 2);
    assert_bytes(v, vl, "v\n1", 3);
    cr_assert_eq(kheaders_next(&r, &k, &kl, &v, &vl), 1);
    assert_bytes(k, kl, "h2", 2);
    assert_bytes(v, vl, NULL, -1);
    cr_assert_eq(kheaders_next(&r, &k, &kl, &v, &vl), 0);
    kbatch_records_end(&it);
}

Test(kcodec, an_empty_batch_has_no_records)
{
    struct kbatch_builder bb;
    kbatch_build_begin(&bb, &w, 7, 5000);
    cr_assert_eq(kbatch_build_end(&bb), 0);
    cr_assert_eq(w.len, KBATCH_HDR);
    struct kbatch b;
    size_t used;
    cr_assert_eq(kbatch_parse(exact(w.p, w.len), w.len, &b, &used), 0);
    cr_assert_eq(b.count, 0);
    cr_assert_eq(b.max_ts, 5000);
    struct krec_iter it;
    struct krecord rec;
    cr_assert_eq(kbatch_records_begin(&it, &b, 0), 0);
    cr_assert_eq(kbatch_records_next(&it, &rec), 0);
    kbatch_records_end(&it);
}

Test(kcodec, the_builder_refuses_offsets_out_of_order)
{
    struct kbatch_builder bb;
    kbatch_build_begin(&bb, &w, 10, 0);
    kbatch_build_add(&bb, 10, 0, NULL, -1, "a", 1, 0, NULL, 0);
    cr_assert_eq(w.err, 0);
    kbatch_build_add(&bb, 10, 0, NULL, -1, "a", 1, 0, NULL, 0);
    cr_assert_eq(w.err, -EINVAL, "the same offset twice");
    cr_assert_eq(kbatch_build_end(&bb), -EINVAL);
    kw_free(&w);
    kbatch_build_begin(&bb, &w, 10, 0);
    kbatch_build_add(&bb, 9, 0, NULL, -1, "a", 1, 0, NULL, 0);
    cr_assert_eq(kbatch_build_end(&bb), -EINVAL, "an offset below the base");
    kw_free(&w);
    kbatch_build_begin(&bb, &w, 0, 0);
    kbatch_build_add(&bb, (int64_t)INT32_MAX + 1, 0, NULL, -1, "a", 1, 0, NULL, 0);
    cr_assert_eq(kbatch_build_end(&bb), -EINVAL, "a delta over 2^31 - 1");
}

Test(kcodec, batches_cut_at_any_byte_are_refused)
{
    build_sample(&w);
    for (size_t cut = 0; cut < w.len; cut++) {
        struct kbatch b;
        size_t used;
        cr_assert_eq(kbatch_parse(exact(w.p, cut), cut, &b, &used), -EBADMSG, "cut to %zu", cut);
    }
}

/* A batch whose length and CRC were fixed up after its records were cut
 * passes the header checks; the records themselves must then fail. */
Test(kcodec, resealed_batches_with_cut_records_fail_in_the_iterator)
{
    build_sample(&w);
    for (size_t cut = KBATCH_HDR; cut < w.len; cut++) {
        uint8_t *buf = exact(w.p, cut);
        reseal(buf, cut);
        int n;
        cr_assert_eq(iterate(buf, cut, 0, &n), -EBADMSG, "records cut to %zu bytes",
                     cut - KBATCH_HDR);
        cr_assert_lt(n, NSAMPLES);
    }
}

/* Kafka leaves baseOffset and the leader epoch outside the CRC, so a broker
 * can assign them without recomputing it; every other bit is covered. */
Test(kcodec, every_flipped_bit_under_the_crc_is_detected)
{
    build_sample(&w);
    for (size_t i = 0; i < w.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *buf = exact(w.p, w.len);
            buf[i] ^= (uint8_t)(1 << bit);
            struct kbatch b;
            size_t used;
            int rc = kbatch_parse(buf, w.len, &b, &used);
            if (i < 8 || (i >= 12 && i < 16))
                cr_assert_eq(rc, 0, "byte %zu is outside the CRC", i);
            else if (i == 16)
                cr_assert_eq(rc, -EPROTO, "the magic byte");
            else
                cr_assert_eq(rc, -EBADMSG, "byte %zu bit %d", i, bit);
            free(owned[--nowned]);
        }
    }
}

Test(kcodec, other_magics_are_unsupported_not_corrupt)
{
    build_sample(&w);
    uint8_t *buf = exact(w.p, w.len);
    buf[16] = 1;
    struct kbatch b;
    size_t used = 0;
    cr_assert_eq(kbatch_parse(buf, w.len, &b, &used), -EPROTO);
    cr_assert_eq(used, w.len);
    /* a v1 message (offset, size 22, crc, magic 1, attributes, timestamp,
     * null key, value "a" cut short) and a v0 one: shorter than a v2 header */
    static const uint8_t v1[] = {0, 0, 0, 0, 0, 0, 0, 5, 0, 0,    0,    22,   1,    2, 3, 4, 1,
                                 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    cr_assert_eq(kbatch_parse(exact(v1, sizeof(v1)), sizeof(v1), &b, &used), -EPROTO);
    cr_assert_eq(used, sizeof(v1));
    static const uint8_t v0[] = {0, 0, 0, 0, 0, 0,    0,    0,    0,    0, 0, 14, 1,
                                 2, 3, 4, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0,  0};
    cr_assert_eq(kbatch_parse(exact(v0, sizeof(v0)), sizeof(v0), &b, &used), -EPROTO);
}

Test(kcodec, batch_lengths_below_the_v2_header_are_refused)
{
    build_sample(&w);
    uint8_t *buf = exact(w.p, w.len);
    struct kbatch b;
    size_t used;
    /* 5..8: the magic is there but not the CRC's start: nothing may be
     * computed over a negative range */
    static const int32_t lens[] = {KBATCH_MIN_LEN - 1, 20, 8, 5, 4, 0, -1, INT32_MIN};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        put_be32(buf + 8, (uint32_t)lens[i]);
        cr_assert_eq(kbatch_parse(buf, w.len, &b, &used), -EBADMSG, "batch length %d", lens[i]);
    }
    put_be32(buf + 8, (uint32_t)(w.len - 11));
    cr_assert_eq(kbatch_parse(buf, w.len, &b, &used), -EBADMSG, "one byte beyond the buffer");
}

Test(kcodec, negative_counts_and_offset_deltas_are_refused)
{
    build_sample(&w);
    struct kbatch b;
    size_t used;
    uint8_t *buf = exact(w.p, w.len);
    put_be32(buf + 57, UINT32_MAX);
    reseal(buf, w.len);
    cr_assert_eq(kbatch_parse(buf, w.len, &b, &used), -EBADMSG, "count -1");
    buf = exact(w.p, w.len);
    put_be32(buf + 23, UINT32_MAX);
    reseal(buf, w.len);
    cr_assert_eq(kbatch_parse(buf, w.len, &b, &used), -EBADMSG, "last offset delta -1");
}

/* The count is only compared with the records as they come: a lying count
 * allocates nothing and fails at the first missing record. */
Test(kcodec, record_counts_must_match_the_records_exactly)
{
    build_sample(&w);
    static const int32_t counts[] = {NSAMPLES + 1, NSAMPLES - 1, 0, INT32_MAX};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        uint8_t *buf = exact(w.p, w.len);
        put_be32(buf + 57, (uint32_t)counts[i]);
        reseal(buf, w.len);
        int n;
        cr_assert_eq(iterate(buf, w.len, 0, &n), -EBADMSG, "count %d", counts[i]);
        cr_assert_eq(n, counts[i] < NSAMPLES ? counts[i] : NSAMPLES);
    }
}

/* One hand-made records section per malformation (zigzag varints: 0x01 is
 * -1, 0x02 is 1, 0x0c is 6). */
Test(kcodec, malformed_records_are_refused)
{
    static const struct {
        const char *what;
        uint8_t bytes[16];
        size_t n;
        int32_t count, last_delta;
        int want; /* 0: iterates to the end */
    } cases[] = {
        {"a minimal record", {0x0c, 0, 0, 0, 0x01, 0x01, 0}, 7, 1, 0, 0},
        {"a header with a null value", {0x12, 0, 0, 0, 1, 1, 2, 2, 'a', 1}, 10, 1, 0, 0},
        {"a length beyond the rest", {0x0e, 0, 0, 0, 1, 1, 0}, 7, 1, 0, -EBADMSG},
        {"a length short of the fields", {0x0a, 0, 0, 0, 1, 1, 0, 0}, 8, 1, 0, -EBADMSG},
        {"a byte after the fields", {0x0e, 0, 0, 0, 1, 1, 0, 0xff}, 8, 1, 0, -EBADMSG},
        {"a negative length", {0x01, 0, 0, 0, 1, 1, 0}, 7, 1, 0, -EBADMSG},
        {"an empty record", {0x00}, 1, 1, 0, -EBADMSG},
        {"a key length of -2", {0x0c, 0, 0, 0, 0x03, 1, 0}, 7, 1, 0, -EBADMSG},
        {"a value longer than the record", {0x0c, 0, 0, 0, 1, 0x08, 0}, 7, 1, 0, -EBADMSG},
        {"a header count of -1", {0x0c, 0, 0, 0, 1, 1, 0x01}, 7, 1, 0, -EBADMSG},
        {"a header with a null key", {0x10, 0, 0, 0, 1, 1, 2, 1, 1}, 9, 1, 0, -EBADMSG},
        {"two headers counted, one there", {0x12, 0, 0, 0, 1, 1, 4, 2, 'a', 1}, 10, 1, 0, -EBADMSG},
        {"an offset delta above the last", {0x0c, 0, 0, 0x04, 1, 1, 0}, 7, 1, 1, -EBADMSG},
        {"offset deltas not increasing",
         {0x0c, 0, 0, 0x02, 1, 1, 0, 0x0c, 0, 0, 0x02, 1, 1, 0},
         14,
         2,
         1,
         -EBADMSG},
        {"a truncated varint in a record", {0x04, 0, 0xff}, 3, 1, 0, -EBADMSG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kw_free(&w);
        raw_batch(&w, 0, cases[i].last_delta, cases[i].count, cases[i].bytes, cases[i].n);
        int n;
        cr_assert_eq(iterate(exact(w.p, w.len), w.len, 0, &n), cases[i].want, "%s", cases[i].what);
    }
}

/* Batches encoded by sarama (IBM/sarama record_test.go): an independent
 * implementation's CRC-32C and its Go-compressed payloads. */
static const char *const sarama_empty =
    "0000000000000000000000310000000002595fb7dd00000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000";
static const char *const sarama_batches[] = {
    /* uncompressed */
    "0000000000000000000000460000000002547961fd000000000000000001588dcd59380000000000"
    "00000000000000000000000000000000000000000128000a00080102030406050607020608090a04"
    "0b0c",
    /* gzip */
    "00000000000000000000005f0000000002e74acea5000100000000000001588dcd59380000000000"
    "0000000000000000000000000000000000000000011f8b080000096e8800ff001500eaff28000a00"
    "080102030406050607020608090a040b0c0300adc9586715000000",
    /* snappy (raw) */
    "000000000000000000000048000000000215009f61000200000000000001588dcd59380000000000"
    "000000000000000000000000000000000000000001155028000a0008010203040605060702060809"
    "0a040b0c",
    /* lz4 frame */
    "0000000000000000000000590000000002a94a77c5000300000000000001588dcd59380000000000"
    "00000000000000000000000000000000000000000104224d186470b91500008028000a0008010203"
    "0406050607020608090a040b0c000000000c3bef92",
};

Test(kcodec, batches_from_another_client_parse_and_iterate)
{
    size_t n;
    struct kbatch b;
    size_t used;
    uint8_t *buf = unhex(sarama_empty, &n);
    cr_assert_eq(kbatch_parse(exact(buf, n), n, &b, &used), 0, "empty batch, CRC 595fb7dd");
    cr_assert_eq(b.count, 0);
    for (int codec = 0; codec < 4; codec++) {
        buf = unhex(sarama_batches[codec], &n);
        buf = exact(buf, n);
        cr_assert_eq(kbatch_parse(buf, n, &b, &used), 0, "codec %d", codec);
        cr_assert_eq(used, n);
        cr_assert_eq(b.attributes & KBATCH_ATTR_CODEC, codec);
        cr_assert_eq(b.base_ts, 1479847795000);
        cr_assert_eq(b.count, 1);
        struct krec_iter it;
        struct krecord rec;
        cr_assert_eq(kbatch_records_begin(&it, &b, 1 << 20), 0, "codec %d", codec);
        cr_assert_eq(kbatch_records_next(&it, &rec), 1, "codec %d", codec);
        cr_assert_eq(rec.ts_delta, 5);
        cr_assert_eq(rec.offset_delta, 0);
        assert_bytes(rec.key, rec.key_len, "\1\2\3\4", 4);
        assert_bytes(rec.value, rec.value_len, "\5\6\7", 3);
        cr_assert_eq(rec.nheaders, 1);
        struct kr r;
        kr_init(&r, rec.headers, rec.headers_len);
        const uint8_t *k, *v;
        int32_t kl, vl;
        cr_assert_eq(kheaders_next(&r, &k, &kl, &v, &vl), 1);
        assert_bytes(k, kl, "\10\11\12", 3);
        assert_bytes(v, vl, "\13\14", 2);
        cr_assert_eq(kheaders_next(&r, &k, &kl, &v, &vl), 0);
        cr_assert_eq(kbatch_records_next(&it, &rec), 0);
        kbatch_records_end(&it);
    }
}

Test(kcodec, our_builder_reproduces_another_clients_bytes)
{
    size_t n;
    const uint8_t *want = unhex(sarama_batches[0], &n);
    struct kbatch_builder bb;
    kbatch_build_begin(&bb, &w, 0, 1479847795000);
    bb.leader_epoch = 0;
    bb.producer_id = 0;
    bb.producer_epoch = 0;
    bb.base_seq = 0;
    struct kw hw;
    kw_init(&hw);
    kw_record_header(&hw, "\10\11\12", 3, "\13\14", 2);
    kbatch_build_add(&bb, 0, 1479847795005, "\1\2\3\4", 4, "\5\6\7", 3, 1, hw.p, hw.len);
    kw_free(&hw);
    bb.max_ts = 0; /* sarama leaves maxTimestamp 0 in this vector */
    cr_assert_eq(kbatch_build_end(&bb), 0);
    cr_assert_eq(w.len, n);
    cr_assert_arr_eq(w.p, want, n, "byte for byte, CRC 547961fd included");
}

/* ================================================================ decompression */

/* What the codecs' own libraries make of in, malloc'ed (freed at teardown). */
static uint8_t *gzip_with(const uint8_t *in, size_t n, int window_bits, size_t *out_len)
{
    z_stream zs = {0};
    cr_assert_eq(deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)n);
    uint8_t *out = keep(malloc(cap));
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

static uint8_t *snappy_raw(const uint8_t *in, size_t n, size_t *out_len)
{
    *out_len = snappy_max_compressed_length(n);
    uint8_t *out = keep(malloc(*out_len));
    cr_assert_eq(snappy_compress((const char *)in, n, (char *)out, out_len), SNAPPY_OK);
    return out;
}

/* The xerial framing of the Java client: header, then blocks of up to
 * block bytes of input, each with a big-endian length. */
static uint8_t *snappy_xerial(const uint8_t *in, size_t n, size_t block, size_t *out_len)
{
    static const uint8_t hdr[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    size_t cap = 16 + (n / block + 1) * (4 + snappy_max_compressed_length(block));
    uint8_t *out = keep(malloc(cap));
    memcpy(out, hdr, 16);
    size_t at = 16;
    for (size_t i = 0; i < n; i += block) {
        size_t in_n = n - i < block ? n - i : block, z = cap - at - 4;
        cr_assert_eq(snappy_compress((const char *)in + i, in_n, (char *)out + at + 4, &z),
                     SNAPPY_OK);
        put_be32(out + at, (uint32_t)z);
        at += 4 + z;
    }
    *out_len = at;
    return out;
}

static uint8_t *lz4_frame(const uint8_t *in, size_t n, size_t *out_len)
{
    size_t cap = LZ4F_compressFrameBound(n, NULL);
    uint8_t *out = keep(malloc(cap));
    *out_len = LZ4F_compressFrame(out, cap, in, n, NULL);
    cr_assert(!LZ4F_isError(*out_len), "%s", LZ4F_getErrorName(*out_len));
    return out;
}

static uint8_t *zstd_frame(const uint8_t *in, size_t n, size_t *out_len)
{
    size_t cap = ZSTD_compressBound(n);
    uint8_t *out = keep(malloc(cap));
    *out_len = ZSTD_compress(out, cap, in, n, 3);
    cr_assert(!ZSTD_isError(*out_len), "%s", ZSTD_getErrorName(*out_len));
    return out;
}

/* The forms tested: gzip, zlib, snappy raw, snappy xerial, lz4, zstd. */
enum form { F_GZIP, F_ZLIB, F_SNAPPY, F_XERIAL, F_LZ4, F_ZSTD, NFORMS };
static const int form_codec[NFORMS] = {KCODEC_GZIP,   KCODEC_GZIP, KCODEC_SNAPPY,
                                       KCODEC_SNAPPY, KCODEC_LZ4,  KCODEC_ZSTD};
static const char *const form_name[NFORMS] = {"gzip",          "zlib", "snappy",
                                              "snappy-xerial", "lz4",  "zstd"};

static uint8_t *compress_as(enum form f, const uint8_t *in, size_t n, size_t *out_len)
{
    switch (f) {
    case F_GZIP:
        return gzip_with(in, n, 15 + 16, out_len);
    case F_ZLIB:
        return gzip_with(in, n, 15, out_len);
    case F_SNAPPY:
        return snappy_raw(in, n, out_len);
    case F_XERIAL:
        return snappy_xerial(in, n, 32 * 1024, out_len);
    case F_LZ4:
        return lz4_frame(in, n, out_len);
    default:
        return zstd_frame(in, n, out_len);
    }
}

/* 200 KiB of log lines with some binary bytes among them. */
static uint8_t *text(size_t *n)
{
    size_t cap = 200 * 1024;
    uint8_t *t = keep(malloc(cap));
    size_t at = 0;
    for (unsigned i = 0; at < cap; i++) {
        char line[64];
        int k = snprintf(line, sizeof(line), "order %u paid %u\n%c%c", i, i * 7919 % 1000,
                         (char)(i & 0xff), (char)0xff);
        size_t m = (size_t)k < cap - at ? (size_t)k : cap - at;
        memcpy(t + at, line, m);
        at += m;
    }
    *n = cap;
    return t;
}

Test(kcodec, each_codec_decompresses_what_its_library_compressed)
{
    size_t n;
    const uint8_t *t = text(&n);
    for (int f = 0; f < NFORMS; f++) {
        size_t zn;
        const uint8_t *z = compress_as(f, t, n, &zn);
        z = exact(z, zn);
        uint8_t *out;
        size_t out_len;
        cr_assert_eq(kdecompress(form_codec[f], z, zn, n, &out, &out_len), 0, "%s", form_name[f]);
        cr_assert_eq(out_len, n, "%s", form_name[f]);
        cr_assert_arr_eq(out, t, n, "%s", form_name[f]);
        free(out);
    }
}

Test(kcodec, each_codec_decompresses_empty_input_to_an_allocated_empty_buffer)
{
    for (int f = 0; f < NFORMS; f++) {
        size_t zn;
        const uint8_t *z = compress_as(f, (const uint8_t *)"", 0, &zn);
        z = exact(z, zn);
        uint8_t *out;
        size_t out_len = 1;
        cr_assert_eq(kdecompress(form_codec[f], z, zn, 0, &out, &out_len), 0, "%s", form_name[f]);
        cr_assert_eq(out_len, 0);
        cr_assert_not_null(out);
        free(out);
    }
}

Test(kcodec, concatenated_gzip_members_and_frames_decompress_in_order)
{
    for (int f = 0; f < NFORMS; f++) {
        if (f == F_SNAPPY || f == F_XERIAL)
            continue; /* not a streaming format */
        size_t an, bn;
        const uint8_t *a = compress_as(f, (const uint8_t *)"first ", 6, &an);
        const uint8_t *b = compress_as(f, (const uint8_t *)"second", 6, &bn);
        uint8_t *both = keep(malloc(an + bn));
        memcpy(both, a, an);
        memcpy(both + an, b, bn);
        uint8_t *out;
        size_t out_len;
        cr_assert_eq(kdecompress(form_codec[f], both, an + bn, 100, &out, &out_len), 0, "%s",
                     form_name[f]);
        assert_bytes(out, (int32_t)out_len, "first second", 12);
        free(out);
    }
}

static void assert_refused(int codec, const uint8_t *in, size_t n, size_t max_out, int want,
                           const char *what)
{
    uint8_t *out = (uint8_t *)"x";
    size_t out_len = 1;
    cr_assert_eq(kdecompress(codec, exact(in, n), n, max_out, &out, &out_len), want, "%s", what);
    cr_assert_null(out, "%s", what);
    cr_assert_eq(out_len, 0);
}

Test(kcodec, corrupt_compressed_data_is_refused)
{
    static const uint8_t msg[] = "a record or two, a record or two, a record or two\n";
    char what[64];
    for (int f = 0; f < NFORMS; f++) {
        size_t zn;
        const uint8_t *z = compress_as(f, msg, sizeof(msg), &zn);
        for (size_t cut = 0; cut < zn; cut++) {
            if (f == F_XERIAL && cut == 16)
                continue; /* a xerial stream of no blocks is an empty one */
            snprintf(what, sizeof(what), "%s cut to %zu of %zu", form_name[f], cut, zn);
            assert_refused(form_codec[f], z, cut, 1 << 20, -EBADMSG, what);
        }
        uint8_t *tail = keep(malloc(zn + 3));
        memcpy(tail, z, zn);
        memcpy(tail + zn, "\x01\x02\x03", 3);
        snprintf(what, sizeof(what), "%s with 3 bytes after it", form_name[f]);
        assert_refused(form_codec[f], tail, zn + 3, 1 << 20, -EBADMSG, what);
    }
    static const uint8_t junk[] = "this is not compressed at all, not at all";
    for (int c = KCODEC_GZIP; c <= KCODEC_ZSTD; c++)
        assert_refused(c, junk, sizeof(junk), 1 << 20, -EBADMSG, "junk");
    /* gzip's trailer carries a CRC-32 of the data */
    size_t zn;
    uint8_t *z = gzip_with(msg, sizeof(msg), 31, &zn);
    z[zn - 6] ^= 1;
    assert_refused(KCODEC_GZIP, z, zn, 1 << 20, -EBADMSG, "gzip with a flipped CRC bit");
    /* a xerial block whose length runs past the end */
    z = snappy_xerial(msg, sizeof(msg), 1024, &zn);
    put_be32(z + 16, (uint32_t)zn);
    assert_refused(KCODEC_SNAPPY, z, zn, 1 << 20, -EBADMSG, "xerial block past the end");
}

/* A megabyte of zeros compresses to a few hundred bytes or less: the limit,
 * not the input's size or its own claims, bounds the output. */
Test(kcodec, output_beyond_max_out_is_refused)
{
    size_t n = 1 << 20;
    uint8_t *zeros = keep(calloc(1, n));
    char what[64];
    for (int f = 0; f < NFORMS; f++) {
        size_t zn;
        const uint8_t *z = compress_as(f, zeros, n, &zn);
        z = exact(z, zn);
        snprintf(what, sizeof(what), "%s, %zu bytes to 1 MiB - 1", form_name[f], zn);
        assert_refused(form_codec[f], z, zn, n - 1, -EMSGSIZE, what);
        assert_refused(form_codec[f], z, zn, 0, -EMSGSIZE, what);
        uint8_t *out;
        size_t out_len;
        cr_assert_eq(kdecompress(form_codec[f], z, zn, n, &out, &out_len), 0,
                     "%s: exactly max_out is fine", form_name[f]);
        cr_assert_eq(out_len, n);
        free(out);
    }
}

Test(kcodec, unknown_codecs_are_not_supported)
{
    static const int codecs[] = {KCODEC_NONE, 5, 6, 7, -1};
    for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
        assert_refused(codecs[i], (const uint8_t *)"abc", 3, 100, -ENOTSUP, "unknown codec");
    raw_batch(&w, 5, 0, 1, "\x0c\0\0\0\1\1\0", 7);
    int n;
    cr_assert_eq(iterate(exact(w.p, w.len), w.len, 1 << 20, &n), -ENOTSUP);
}

/* The sample batch with its records compressed as form f, sealed. */
static void compressed_sample(enum form f, struct kw *out)
{
    struct kw plain;
    kw_init(&plain);
    build_sample(&plain);
    size_t zn;
    const uint8_t *z = compress_as(f, plain.p + KBATCH_HDR, plain.len - KBATCH_HDR, &zn);
    kw_raw(out, plain.p, KBATCH_HDR);
    kw_raw(out, z, zn);
    cr_assert_eq(out->err, 0);
    out->p[22] |= (uint8_t)form_codec[f]; /* the low byte of the attributes */
    reseal(out->p, out->len);
    kw_free(&plain);
}

Test(kcodec, compressed_batches_iterate_for_every_codec)
{
    for (int f = 0; f < NFORMS; f++) {
        kw_free(&w);
        compressed_sample(f, &w);
        struct kbatch b;
        size_t used;
        cr_assert_eq(kbatch_parse(exact(w.p, w.len), w.len, &b, &used), 0, "%s", form_name[f]);
        cr_assert_eq(b.attributes & KBATCH_ATTR_CODEC, form_codec[f]);
        struct krec_iter it;
        cr_assert_eq(kbatch_records_begin(&it, &b, 1 << 20), 0, "%s", form_name[f]);
        check_sample_records(&it);
        kbatch_records_end(&it);
    }
}

Test(kcodec, compressed_batches_over_max_out_or_corrupt_are_refused)
{
    for (int f = 0; f < NFORMS; f++) {
        kw_free(&w);
        compressed_sample(f, &w);
        int n;
        cr_assert_eq(iterate(exact(w.p, w.len), w.len, 16, &n), -EMSGSIZE, "%s", form_name[f]);
        uint8_t *buf = exact(w.p, w.len - 1);
        reseal(buf, w.len - 1);
        cr_assert_eq(iterate(buf, w.len - 1, 1 << 20, &n), -EBADMSG, "%s cut by one", form_name[f]);
        struct kbatch b;
        size_t used;
        struct krec_iter it;
        struct krecord rec;
        cr_assert_eq(kbatch_parse(buf, w.len - 1, &b, &used), 0);
        cr_assert_eq(kbatch_records_begin(&it, &b, 1 << 20), -EBADMSG);
        cr_assert_eq(kbatch_records_next(&it, &rec), -EBADMSG, "the error sticks");
        kbatch_records_end(&it);
    }
}
