/*
 * test_framing — line framing of written bytes (fs/framing.h): every complete
 * '\n'-terminated line is one record, held bytes join the first record, and
 * message.max.bytes bounds every record, complete or partial.
 */
#include "fs/framing.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

static struct frame fr;

static void setup(void)
{
    memset(&fr, 0xab, sizeof(fr)); /* frame_split must initialise every field */
}

static void teardown(void)
{
    frame_free(&fr);
}

TestSuite(framing, .init = setup, .fini = teardown);

static int split(size_t held, const char *s, uint32_t max)
{
    return frame_split(held, s, strlen(s), max, &fr);
}

Test(framing, lines_split_into_records)
{
    cr_assert_eq(split(0, "one\ntwo\nthree\n", 100), 0);
    cr_assert_eq(fr.nrec, 3);
    cr_assert_eq(fr.lens[0], 4);
    cr_assert_eq(fr.lens[1], 4);
    cr_assert_eq(fr.lens[2], 6);
    cr_assert_eq(fr.complete, 14);
}

Test(framing, trailing_partial_line_is_left_out)
{
    cr_assert_eq(split(0, "one\ntwo\nthr", 100), 0);
    cr_assert_eq(fr.nrec, 2);
    cr_assert_eq(fr.complete, 8);
}

Test(framing, held_bytes_are_joined_to_the_first_record)
{
    cr_assert_eq(split(5, "ab\ncd\n", 100), 0);
    cr_assert_eq(fr.nrec, 2);
    cr_assert_eq(fr.lens[0], 5 + 3);
    cr_assert_eq(fr.lens[1], 3);
    cr_assert_eq(fr.complete, 6);
}

Test(framing, no_newline_completes_nothing)
{
    cr_assert_eq(split(3, "partial", 100), 0);
    cr_assert_eq(fr.nrec, 0);
    cr_assert_eq(fr.complete, 0);
    cr_assert_null(fr.lens);
}

Test(framing, empty_input_completes_nothing)
{
    cr_assert_eq(frame_split(0, "", 0, 100, &fr), 0);
    cr_assert_eq(fr.nrec, 0);
    cr_assert_eq(fr.complete, 0);
}

Test(framing, empty_lines_are_records)
{
    cr_assert_eq(split(0, "\n\nx\n\n", 100), 0);
    cr_assert_eq(fr.nrec, 4);
    cr_assert_eq(fr.lens[0], 1);
    cr_assert_eq(fr.lens[1], 1);
    cr_assert_eq(fr.lens[2], 2);
    cr_assert_eq(fr.lens[3], 1);
    cr_assert_eq(fr.complete, 5);
}

Test(framing, many_records_grow_the_length_array)
{
    char buf[3 * 1000 + 1];
    for (int i = 0; i < 1000; i++)
        memcpy(buf + 3 * i, "ab\n", 3);
    buf[3000] = '\0';
    cr_assert_eq(split(0, buf, 100), 0);
    cr_assert_eq(fr.nrec, 1000);
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(fr.lens[i], 3, "record %d", i);
    cr_assert_eq(fr.complete, 3000);
}

Test(framing, record_of_exactly_max_bytes_passes)
{
    cr_assert_eq(split(0, "12345\n", 5), 0);
    cr_assert_eq(fr.nrec, 1);
    cr_assert_eq(fr.lens[0], 6);
}

Test(framing, record_one_byte_over_max_is_emsgsize)
{
    cr_assert_eq(split(0, "ok\n123456\n", 5), -EMSGSIZE);
    cr_assert_eq(fr.nrec, 0);
    cr_assert_null(fr.lens);
}

Test(framing, held_bytes_count_toward_the_limit)
{
    cr_assert_eq(split(3, "12\n", 5), 0); /* 3 + 2 = 5 */
    frame_free(&fr);
    cr_assert_eq(split(4, "12\n", 5), -EMSGSIZE); /* 4 + 2 = 6 */
}

Test(framing, partial_tail_of_exactly_max_bytes_passes)
{
    cr_assert_eq(split(0, "a\n12345", 5), 0);
    cr_assert_eq(fr.nrec, 1);
    cr_assert_eq(fr.complete, 2);
}

Test(framing, over_long_partial_tail_is_emsgsize)
{
    cr_assert_eq(split(0, "a\n123456", 5), -EMSGSIZE);
    cr_assert_eq(fr.nrec, 0);
}

Test(framing, held_bytes_plus_partial_over_max_is_emsgsize)
{
    cr_assert_eq(split(4, "12", 5), -EMSGSIZE);
    frame_free(&fr);
    cr_assert_eq(split(3, "12", 5), 0);
}

Test(framing, nul_bytes_inside_records_are_kept)
{
    static const char data[] = {'a', '\0', 'b', '\n', '\0', '\n', 'z'};
    cr_assert_eq(frame_split(0, data, sizeof(data), 100, &fr), 0);
    cr_assert_eq(fr.nrec, 2);
    cr_assert_eq(fr.lens[0], 4);
    cr_assert_eq(fr.lens[1], 2);
    cr_assert_eq(fr.complete, 6);
}

Test(framing, free_resets_the_frame)
{
    cr_assert_eq(split(0, "a\nb\n", 10), 0);
    frame_free(&fr);
    cr_assert_null(fr.lens);
    cr_assert_eq(fr.nrec, 0);
    cr_assert_eq(fr.complete, 0);
}

/* After a refusal, `continues` tells the file whether the refused record
 * goes on beyond this write (its rest must be refused too) or ended in it
 * (the next write starts a new record). */
Test(framing, a_refused_record_whole_in_the_write_does_not_continue)
{
    cr_assert_eq(split(0, "ok\ntoolong\n", 4), -EMSGSIZE);
    cr_assert_not(fr.continues);
}

Test(framing, a_refused_record_begun_in_held_bytes_ends_in_this_write)
{
    cr_assert_eq(split(3, "ab\n", 4), -EMSGSIZE);
    cr_assert_not(fr.continues);
}

Test(framing, a_refused_unterminated_tail_continues)
{
    cr_assert_eq(split(0, "ok\ntoolong", 4), -EMSGSIZE);
    cr_assert(fr.continues);
}

Test(framing, held_bytes_too_long_with_no_newline_continue)
{
    cr_assert_eq(split(3, "ab", 4), -EMSGSIZE);
    cr_assert(fr.continues);
}

/* Whether the refused record includes the held bytes: only then do they go
 * (else they belong to a valid record, which the writer may still finish). */
Test(framing, a_later_over_long_record_leaves_the_held_bytes_alone)
{
    cr_assert_eq(split(3, "def\ntoolong\n", 6), -EMSGSIZE);
    cr_assert_not(fr.uses_held);
    cr_assert_eq(split(3, "toolong\n", 4), -EMSGSIZE);
    cr_assert(fr.uses_held);
    cr_assert_eq(split(3, "ab", 4), -EMSGSIZE);
    cr_assert(fr.uses_held);
    cr_assert_eq(split(0, "ok\ntoolong", 4), -EMSGSIZE);
    cr_assert_not(fr.uses_held);
}
