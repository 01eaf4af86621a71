/*
 * test_record — the side data of records (broker/record.h): fields round
 * trip, long fields use the u32 length, unknown tags are skipped, and
 * anything that does not parse is refused, never read past its end.
 */
#include "broker/record.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

TestSuite(record);

Test(record, producer_and_kafka_fields_round_trip_side_by_side)
{
    uint8_t buf[256];
    aux_put_producer(buf, 7, 99);
    struct rec_kafka k = {.flags = RK_KEY | RK_VALUE_NULL,
                          .ts = -5,
                          .key = (const uint8_t *)"k\0y",
                          .key_len = 3,
                          .nheaders = 1,
                          .headers = (const uint8_t *)"\x02h\x02v",
                          .headers_len = 4};
    size_t n = AUX_PRODUCER_LEN + aux_put_kafka(buf + AUX_PRODUCER_LEN, &k);
    cr_assert_eq(n, AUX_PRODUCER_LEN + aux_kafka_size(&k));
    uint64_t id, seq;
    cr_assert_eq(aux_get_producer(buf, n, &id, &seq), 0);
    cr_assert_eq(id, 7);
    cr_assert_eq(seq, 99);
    struct rec_kafka b;
    cr_assert_eq(aux_get_kafka(buf, n, &b), 0);
    cr_assert_eq(b.flags, RK_KEY | RK_VALUE_NULL);
    cr_assert_eq(b.ts, -5);
    cr_assert_eq(b.key_len, 3);
    cr_assert_arr_eq(b.key, "k\0y", 3);
    cr_assert_eq(b.nheaders, 1);
    cr_assert_eq(b.headers_len, 4);
    cr_assert_arr_eq(b.headers, "\x02h\x02v", 4);
}

Test(record, a_null_key_takes_no_room)
{
    uint8_t buf[64];
    struct rec_kafka k = {.ts = 1};
    size_t n = aux_put_kafka(buf, &k);
    cr_assert_eq(n, 3 + 1 + 8 + 8);
    struct rec_kafka b;
    cr_assert_eq(aux_get_kafka(buf, n, &b), 0);
    cr_assert_eq(b.flags & RK_KEY, 0);
    cr_assert_null(b.key);
    cr_assert_eq(aux_get_producer(buf, n, &(uint64_t){0}, &(uint64_t){0}), -ENOENT);
}

Test(record, a_field_of_64_kib_or_more_has_a_long_length)
{
    size_t klen = 70000;
    uint8_t *key = malloc(klen), *buf = malloc(klen + 64);
    memset(key, 'x', klen);
    struct rec_kafka k = {.flags = RK_KEY, .key = key, .key_len = (uint32_t)klen};
    size_t n = aux_put_kafka(buf, &k);
    cr_assert_eq(n, aux_kafka_size(&k));
    cr_assert_eq(buf[1], 0xff);
    cr_assert_eq(buf[2], 0xff);
    struct rec_kafka b;
    cr_assert_eq(aux_get_kafka(buf, n, &b), 0);
    cr_assert_eq(b.key_len, klen);
    cr_assert_eq(aux_get_kafka(buf, n - 1, &b), -EBADMSG, "cut by one byte");
    free(key);
    free(buf);
}

Test(record, every_cut_of_the_fields_is_refused_or_incomplete_never_overread)
{
    uint8_t buf[128];
    aux_put_producer(buf, 1, 2);
    struct rec_kafka k = {.flags = RK_KEY, .key = (const uint8_t *)"key", .key_len = 3};
    size_t n = AUX_PRODUCER_LEN + aux_put_kafka(buf + AUX_PRODUCER_LEN, &k);
    for (size_t cut = 0; cut < n; cut++) {
        /* A copy of exactly `cut` bytes: ASan catches any read past it. */
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, buf, cut);
        struct rec_kafka b;
        int rc = aux_get_kafka(c, cut, &b);
        cr_assert(rc == -EBADMSG || rc == -ENOENT, "cut at %zu: %d", cut, rc);
        free(c);
    }
}

Test(record, inconsistent_kafka_fields_are_refused)
{
    uint8_t buf[64];
    struct rec_kafka k = {.flags = RK_KEY, .key = (const uint8_t *)"key", .key_len = 3};
    size_t n = aux_put_kafka(buf, &k);
    struct rec_kafka b;
    buf[3 + 9] = 200; /* the key length, past the field */
    cr_assert_eq(aux_get_kafka(buf, n, &b), -EBADMSG);
    n = aux_put_kafka(buf, &k);
    buf[n - 8] = 0xff; /* a negative header count */
    buf[n - 5] = 0xff;
    cr_assert_eq(aux_get_kafka(buf, n, &b), -EBADMSG);
}

Test(record, unknown_tags_are_skipped)
{
    uint8_t buf[64] = {9, 2, 0, 'x', 'y'};
    size_t n = 5 + aux_put_kafka(buf + 5, &(struct rec_kafka){.ts = 3});
    struct rec_kafka b;
    cr_assert_eq(aux_get_kafka(buf, n, &b), 0);
    cr_assert_eq(b.ts, 3);
}

Test(record, a_line_is_bytes_with_one_newline_at_the_end)
{
    cr_assert(rec_is_line("abc\n", 4));
    cr_assert(rec_is_line("\n", 1));
    cr_assert_not(rec_is_line("a\nb\n", 4));
    cr_assert_not(rec_is_line("abc", 3));
    cr_assert_not(rec_is_line("", 0));
}
