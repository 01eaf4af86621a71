/*
 * test_segment — the segment store's contract (broker/segment.h) and the
 * recovery rules written at the top of broker/segment.c: appends read back,
 * offsets and positions map both ways, a reopened segment is the same, and
 * recovery keeps exactly the valid prefix (torn tails cut, bad checks dropped,
 * unindexed complete lines rebuilt, stale bytes never validate).  Injected
 * ENOSPC, short writes and EIO through the sysio table.
 */
#include "broker/segment.h"
#include "broker/sysio.h"
#include "tests/unit/helpers.h"

#include <criterion/criterion.h>
#include <xxhash.h>

#define BASE_OFF 7
#define BASE_POS 1000

static char *dir;
static struct segment seg;
static char logp[PATH_MAX], idxp[PATH_MAX];

/* Three records; the second and third span the two pieces. */
static const char piece1[] = "alpha\nbra";
static const char piece2[] = "vo\ncharlie-long\n";
static const uint32_t lens3[] = {6, 6, 13};

static void setup(void)
{
    dir = th_mkdtemp();
    th_seg_path(logp, dir, BASE_OFF, "log");
    th_seg_path(idxp, dir, BASE_OFF, "idx");
    cr_assert_eq(seg_create(&seg, dir, BASE_OFF, BASE_POS, false), 0);
}

static void teardown(void)
{
    seg_close(&seg);
    th_rmdir(dir);
}

TestSuite(segment, .init = setup, .fini = teardown);

static void append3(int64_t ts)
{
    struct iovec iov[2] = {{(void *)piece1, sizeof(piece1) - 1},
                           {(void *)piece2, sizeof(piece2) - 1}};
    cr_assert_eq(seg_append(&seg, iov, 2, lens3, 3, ts), 0);
}

static void append_text(const char *text, int64_t ts)
{
    uint32_t lens[64];
    size_t n = th_lens(text, strlen(text), lens, 64);
    struct iovec iov = {(void *)text, strlen(text)};
    cr_assert_eq(seg_append(&seg, &iov, 1, lens, n, ts), 0);
}

/* Closes and reopens the segment, as a restart does. */
static void reopen(void)
{
    seg_close(&seg);
    cr_assert_eq(seg_open(&seg, dir, BASE_OFF), 0);
}

static void recover(uint64_t from, int64_t ts, uint64_t *ver, uint64_t *reb)
{
    cr_assert_eq(seg_recover(&seg, from, true, ts, ver, reb), 0);
}

/* ------------------------------------------------------------- append/read */

Test(segment, create_makes_empty_files_with_header)
{
    cr_assert_eq(seg.count, 0);
    cr_assert_eq(seg.bytes, 0);
    cr_assert_eq(seg.base_off, BASE_OFF);
    cr_assert_eq(seg.base_pos, BASE_POS);
    cr_assert_eq(th_size(logp), 0);
    cr_assert_eq(th_size(idxp), SEG_HDR_SIZE);
}

Test(segment, create_refuses_existing_files)
{
    struct segment other;
    cr_assert_eq(seg_create(&other, dir, BASE_OFF, 0, false), -EEXIST);
    /* The existing files are untouched. */
    cr_assert_eq(th_size(idxp), SEG_HDR_SIZE);
}

Test(segment, append_then_read_back_entries_and_bytes)
{
    append3(111);
    cr_assert_eq(seg.count, 3);
    cr_assert_eq(seg.bytes, 25);
    cr_assert_eq(seg.first_ts, 111);
    cr_assert_eq(seg.last_ts, 111);

    uint64_t pos = BASE_POS;
    for (uint64_t i = 0; i < 3; i++) {
        struct seg_entry e;
        cr_assert_eq(seg_entry(&seg, i, &e), 0);
        cr_assert_eq(e.pos, pos, "entry %" PRIu64, i);
        cr_assert_eq(e.len, lens3[i]);
        cr_assert_eq(e.ts, 111);
        cr_assert_eq(e.flags, 0);
        pos += e.len;
    }
    char buf[64];
    th_pread(seg.log_fd, buf, 25, 0);
    cr_assert_arr_eq(buf, "alpha\nbravo\ncharlie-long\n", 25);
    cr_assert_eq(th_size(logp), 25);
    cr_assert_eq(th_size(idxp), SEG_HDR_SIZE + 3 * SEG_ENTRY_SIZE);
}

Test(segment, second_append_continues_positions)
{
    append3(1);
    append_text("delta\n", 2);
    struct seg_entry e;
    cr_assert_eq(seg_entry(&seg, 3, &e), 0);
    cr_assert_eq(e.pos, BASE_POS + 25);
    cr_assert_eq(e.len, 6);
    cr_assert_eq(e.ts, 2);
    cr_assert_eq(seg.first_ts, 1);
    cr_assert_eq(seg.last_ts, 2);
}

Test(segment, entry_out_of_range_is_erange)
{
    append3(1);
    struct seg_entry e;
    cr_assert_eq(seg_entry(&seg, 3, &e), -ERANGE);
}

Test(segment, find_pos_maps_every_byte_to_its_record)
{
    append3(1);
    uint64_t pos = BASE_POS;
    for (uint64_t i = 0; i < 3; i++) {
        for (uint32_t k = 0; k < lens3[i]; k++) {
            uint64_t idx = 99;
            cr_assert_eq(seg_find_pos(&seg, pos + k, &idx), 0);
            cr_assert_eq(idx, i, "position %" PRIu64, pos + k);
        }
        pos += lens3[i];
    }
    uint64_t idx;
    cr_assert_eq(seg_find_pos(&seg, BASE_POS - 1, &idx), -ERANGE);
    cr_assert_eq(seg_find_pos(&seg, BASE_POS + 25, &idx), -ERANGE);
}

Test(segment, find_pos_in_empty_segment_is_erange)
{
    uint64_t idx;
    cr_assert_eq(seg_find_pos(&seg, BASE_POS, &idx), -ERANGE);
}

Test(segment, reopen_sees_the_same_segment)
{
    append3(100);
    append_text("delta\n", 200);
    uint64_t salt = seg.salt;
    reopen();
    cr_assert_eq(seg.base_off, BASE_OFF);
    cr_assert_eq(seg.base_pos, BASE_POS);
    cr_assert_eq(seg.count, 4);
    cr_assert_eq(seg.bytes, 31);
    cr_assert_eq(seg.salt, salt);
    cr_assert_eq(seg.first_ts, 100);
    cr_assert_eq(seg.last_ts, 200);
    struct seg_entry e;
    cr_assert_eq(seg_entry(&seg, 2, &e), 0);
    cr_assert_eq(e.pos, BASE_POS + 12);
    cr_assert_eq(e.len, 13);
}

Test(segment, open_refuses_a_header_naming_another_base)
{
    char other[PATH_MAX];
    seg_close(&seg);
    cr_assert_eq(rename(logp, th_seg_path(other, dir, 8, "log")), 0);
    cr_assert_eq(rename(idxp, th_seg_path(other, dir, 8, "idx")), 0);
    cr_assert_eq(seg_open(&seg, dir, 8), -EBADMSG);
}

Test(segment, open_refuses_a_foreign_index)
{
    seg_close(&seg);
    th_flip(idxp, 0); /* magic */
    cr_assert_eq(seg_open(&seg, dir, BASE_OFF), -EBADMSG);
}

Test(segment, open_refuses_an_index_shorter_than_its_header)
{
    seg_close(&seg);
    th_truncate(idxp, 10);
    cr_assert_eq(seg_open(&seg, dir, BASE_OFF), -EBADMSG);
}

Test(segment, truncate_drops_a_suffix_from_both_files)
{
    append3(1);
    cr_assert_eq(seg_truncate(&seg, 1), 0);
    cr_assert_eq(seg.count, 1);
    cr_assert_eq(seg.bytes, 6);
    cr_assert_eq(th_size(logp), 6);
    cr_assert_eq(th_size(idxp), SEG_HDR_SIZE + SEG_ENTRY_SIZE);
    append_text("echo\n", 2);
    struct seg_entry e;
    cr_assert_eq(seg_entry(&seg, 1, &e), 0);
    cr_assert_eq(e.pos, BASE_POS + 6);
}

Test(segment, remove_unlinks_both_files)
{
    append3(1);
    cr_assert_eq(seg_remove(&seg, dir), 0);
    cr_assert_not(th_exists(logp));
    cr_assert_not(th_exists(idxp));
}

/* ---------------------------------------------------------------- recovery */

Test(segment, recovery_keeps_everything_valid)
{
    append3(1);
    append_text("delta\necho\n", 2);
    reopen();
    uint64_t ver = 0, reb = 9;
    recover(0, 42, &ver, &reb);
    cr_assert_eq(ver, 5);
    cr_assert_eq(reb, 0);
    cr_assert_eq(seg.count, 5);
    cr_assert_eq(seg.bytes, 36);
    cr_assert_eq(th_size(logp), 36);
    cr_assert_eq(th_size(idxp), SEG_HDR_SIZE + 5 * SEG_ENTRY_SIZE);
    cr_assert_eq(seg.last_ts, 2);
}

Test(segment, recovery_from_a_checkpoint_verifies_only_the_tail)
{
    append3(1);
    append_text("delta\necho\n", 2);
    reopen();
    uint64_t ver = 0, reb = 9;
    recover(3, 42, &ver, &reb);
    cr_assert_eq(ver, 2);
    cr_assert_eq(reb, 0);
    cr_assert_eq(seg.count, 5);
}

Test(segment, recovery_cuts_a_torn_log_tail)
{
    append3(1);
    th_append_raw(logp, "torn-garb", 9);
    reopen();
    cr_assert_eq(seg.bytes, 34);
    uint64_t ver, reb;
    recover(0, 42, &ver, &reb);
    cr_assert_eq(ver, 3);
    cr_assert_eq(reb, 0);
    cr_assert_eq(seg.count, 3);
    cr_assert_eq(seg.bytes, 25);
    cr_assert_eq(th_size(logp), 25);
    cr_assert_eq(th_size(idxp), SEG_HDR_SIZE + 3 * SEG_ENTRY_SIZE);
}

Test(segment, recovery_cuts_a_record_truncated_in_the_middle)
{
    append3(1);
    th_truncate(logp, 12 + 5); /* inside "charlie-long\n" */
    reopen();
    uint64_t ver, reb;
    recover(0, 42, &ver, &reb);
    cr_assert_eq(ver, 2);
    cr_assert_eq(reb, 0);
    cr_assert_eq(seg.count, 2);
    cr_assert_eq(seg.bytes, 12);
    cr_assert_eq(th_size(logp), 12);
    cr_assert_eq(th_size(idxp), SEG_HDR_SIZE + 2 * SEG_ENTRY_SIZE);
}

Test(segment, recovery_drops_a_last_record_whose_newline_is_gone)
{
    append3(1);
    th_flip(logp, 24); /* the last '\n' */
    reopen();
    uint64_t ver, reb;
    recover(0, 42, &ver, &reb);
    cr_assert_eq(ver, 2);
    cr_assert_eq(reb, 0);
    cr_assert_eq(seg.count, 2);
    cr_assert_eq(seg.bytes, 12);
    cr_assert_eq(th_size(logp), 12);
    cr_assert_eq(th_size(idxp), SEG_HDR_SIZE + 2 * SEG_ENTRY_SIZE);
}

/* A byte flipped inside a record: its entry and every later one fail; the
 * lines are still complete, so they come back only as rebuilt entries
 * (timestamp = rebuild_ts), never as verified ones. */
Test(segment, recovery_drops_the_entry_of_a_corrupted_record_and_all_after)
{
    append3(1);
    th_flip(logp, 6 + 2); /* "bravo" -> "brAvo" */
    reopen();
    uint64_t ver, reb;
    recover(0, 42, &ver, &reb);
    cr_assert_eq(ver, 1);
    cr_assert_eq(reb, 2);
    struct seg_entry e;
    cr_assert_eq(seg_entry(&seg, 0, &e), 0);
    cr_assert_eq(e.ts, 1);
    for (uint64_t i = 1; i < 3; i++) {
        cr_assert_eq(seg_entry(&seg, i, &e), 0);
        cr_assert_eq(e.ts, 42, "entry %" PRIu64 " should be rebuilt", i);
        cr_assert_eq(e.len, lens3[i]);
    }
}

Test(segment, recovery_drops_a_corrupted_index_entry_and_all_after)
{
    append3(1);
    append_text("delta\n", 1);
    th_flip(idxp, SEG_HDR_SIZE + 1 * SEG_ENTRY_SIZE + 8); /* entry 1's timestamp */
    th_truncate(logp, 24); /* and the log ends torn inside record 2 */
    reopen();
    uint64_t ver, reb;
    recover(0, 42, &ver, &reb);
    cr_assert_eq(ver, 1);
    cr_assert_eq(reb, 1); /* "bravo\n" is complete and comes back */
    cr_assert_eq(seg.count, 2);
    cr_assert_eq(seg.bytes, 12);
    struct seg_entry e;
    cr_assert_eq(seg_entry(&seg, 1, &e), 0);
    cr_assert_eq(e.ts, 42);
    cr_assert_eq(e.pos, BASE_POS + 6);
    cr_assert_eq(th_size(logp), 12);
    cr_assert_eq(th_size(idxp), SEG_HDR_SIZE + 2 * SEG_ENTRY_SIZE);
}

Test(segment, recovery_drops_an_entry_with_a_wrong_position)
{
    append3(1);
    th_flip(idxp, SEG_HDR_SIZE + 2 * SEG_ENTRY_SIZE + 0); /* entry 2's position */
    th_append_raw(logp, "x", 1);                          /* and a torn tail */
    reopen();
    uint64_t ver, reb;
    recover(0, 42, &ver, &reb);
    cr_assert_eq(ver, 2);
    cr_assert_eq(reb, 1);
    cr_assert_eq(seg.count, 3);
    cr_assert_eq(seg.bytes, 25);
    struct seg_entry e;
    cr_assert_eq(seg_entry(&seg, 2, &e), 0);
    cr_assert_eq(e.pos, BASE_POS + 12);
    cr_assert_eq(e.ts, 42);
}

Test(segment, recovery_rebuilds_entries_for_lines_beyond_the_index)
{
    append3(5);
    append_text("delta\necho\n", 5);
    th_truncate(idxp, SEG_HDR_SIZE + 2 * SEG_ENTRY_SIZE);
    reopen();
    cr_assert_eq(seg.count, 2);
    uint64_t ver, reb;
    recover(0, 77, &ver, &reb);
    cr_assert_eq(ver, 2);
    cr_assert_eq(reb, 3);
    cr_assert_eq(seg.count, 5);
    cr_assert_eq(seg.bytes, 36);
    cr_assert_eq(seg.last_ts, 77);
    cr_assert_eq(th_size(idxp), SEG_HDR_SIZE + 5 * SEG_ENTRY_SIZE);
    static const uint32_t want_len[] = {6, 6, 13, 6, 5};
    uint64_t pos = BASE_POS;
    for (uint64_t i = 0; i < 5; i++) {
        struct seg_entry e;
        cr_assert_eq(seg_entry(&seg, i, &e), 0);
        cr_assert_eq(e.pos, pos);
        cr_assert_eq(e.len, want_len[i]);
        cr_assert_eq(e.ts, i < 2 ? 5 : 77);
        pos += e.len;
    }
    /* The rebuilt entries carry valid checks: a second recovery verifies all. */
    reopen();
    recover(0, 99, &ver, &reb);
    cr_assert_eq(ver, 5);
    cr_assert_eq(reb, 0);
}

Test(segment, recovery_of_an_index_with_a_partial_entry_ignores_it)
{
    append3(5);
    th_truncate(idxp, SEG_HDR_SIZE + 2 * SEG_ENTRY_SIZE + 10);
    reopen();
    uint64_t ver, reb;
    recover(0, 77, &ver, &reb);
    cr_assert_eq(ver, 2);
    cr_assert_eq(reb, 1);
    cr_assert_eq(seg.count, 3);
    cr_assert_eq(th_size(idxp), SEG_HDR_SIZE + 3 * SEG_ENTRY_SIZE);
}

/* Entries written for the same records by another incarnation of the file
 * (another salt) fail their checks. */
Test(segment, stale_index_from_another_salt_does_not_validate)
{
    char dir2[PATH_MAX], idx2[PATH_MAX];
    th_path(dir2, "%s/other", dir);
    cr_assert_eq(mkdir(dir2, 0755), 0);
    struct segment twin;
    cr_assert_eq(seg_create(&twin, dir2, BASE_OFF, BASE_POS, false), 0);
    cr_assert_neq(twin.salt, seg.salt);
    struct iovec iov[2] = {{(void *)piece1, sizeof(piece1) - 1},
                           {(void *)piece2, sizeof(piece2) - 1}};
    cr_assert_eq(seg_append(&twin, iov, 2, lens3, 3, 1), 0);
    seg_close(&twin);
    append3(1);
    seg_close(&seg);

    /* Our header (our salt), the twin's entries: same positions, lengths,
     * timestamps and bytes, only the salt differs. */
    size_t n;
    char *theirs = th_slurp(th_seg_path(idx2, dir2, BASE_OFF, "idx"), &n);
    char *ours = th_slurp(idxp, NULL);
    memcpy(theirs, ours, SEG_HDR_SIZE);
    cr_assert_neq(memcmp(theirs + SEG_HDR_SIZE, ours + SEG_HDR_SIZE, n - SEG_HDR_SIZE), 0);
    unlink(idxp);
    th_append_raw(idxp, theirs, n);
    free(theirs);
    free(ours);

    cr_assert_eq(seg_open(&seg, dir, BASE_OFF), 0);
    cr_assert_eq(seg.count, 3);
    uint64_t ver, reb;
    recover(0, 42, &ver, &reb);
    cr_assert_eq(ver, 0);
    cr_assert_eq(reb, 3);
    struct seg_entry e;
    cr_assert_eq(seg_entry(&seg, 0, &e), 0);
    cr_assert_eq(e.ts, 42);
}

/* ------------------------------------------------------ injected failures */

static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int pwritev_calls, pwritev_fail_at;

/* Call number pwritev_fail_at writes 3 bytes for real (a disk filling up),
 * every later call fails with ENOSPC. */
static ssize_t short_then_enospc(int fd, const struct iovec *iov, int cnt, off_t off)
{
    int call = ++pwritev_calls;
    if (call < pwritev_fail_at)
        return real_pwritev(fd, iov, cnt, off);
    if (call == pwritev_fail_at) {
        struct iovec one = {iov[0].iov_base, iov[0].iov_len < 3 ? iov[0].iov_len : 3};
        return real_pwritev(fd, &one, 1, off);
    }
    return -ENOSPC;
}

static void inject_enospc_at(int call)
{
    real_pwritev = sysio.pwritev;
    pwritev_calls = 0;
    pwritev_fail_at = call;
    sysio.pwritev = short_then_enospc;
}

static void assert_unchanged_after_failed_append(void)
{
    cr_assert_eq(seg.count, 3);
    cr_assert_eq(seg.bytes, 25);
    cr_assert_eq(th_size(logp), 25);
    cr_assert_eq(th_size(idxp), SEG_HDR_SIZE + 3 * SEG_ENTRY_SIZE);
    sysio_reset();
    /* The segment goes on where it was, and recovery finds nothing torn. */
    append_text("delta\n", 3);
    reopen();
    uint64_t ver, reb;
    recover(0, 42, &ver, &reb);
    cr_assert_eq(ver, 4);
    cr_assert_eq(reb, 0);
    cr_assert_eq(seg.bytes, 31);
    char buf[31];
    th_pread(seg.log_fd, buf, 31, 0);
    cr_assert_arr_eq(buf, "alpha\nbravo\ncharlie-long\ndelta\n", 31);
}

Test(segment, short_write_then_enospc_in_log_leaves_segment_unchanged)
{
    append3(1);
    inject_enospc_at(1);
    cr_assert_eq(
        seg_append(&seg, &(struct iovec){"golf\nhotel\n", 11}, 1, (uint32_t[]){5, 6}, 2, 2),
        -ENOSPC);
    cr_assert_geq(pwritev_calls, 2, "the short write must have been retried");
    assert_unchanged_after_failed_append();
}

Test(segment, enospc_in_index_write_truncates_the_log_back)
{
    append3(1);
    inject_enospc_at(2); /* the .log write succeeds, the .idx write fails part-way */
    cr_assert_eq(
        seg_append(&seg, &(struct iovec){"golf\nhotel\n", 11}, 1, (uint32_t[]){5, 6}, 2, 2),
        -ENOSPC);
    cr_assert_geq(pwritev_calls, 3);
    assert_unchanged_after_failed_append();
}

static int fail_fd = -1;
static int eio_on_fd(int fd)
{
    return fd == fail_fd ? -EIO : 0;
}

Test(segment, sync_returns_injected_eio_from_fdatasync)
{
    append3(1);
    fail_fd = seg.log_fd;
    sysio.fdatasync = eio_on_fd;
    cr_assert_eq(seg_sync(&seg, false), -EIO);
    cr_assert_eq(seg_sync(&seg, true), -EIO);
}

Test(segment, sync_with_index_returns_eio_of_the_index)
{
    append3(1);
    fail_fd = seg.idx_fd;
    sysio.fdatasync = eio_on_fd;
    cr_assert_eq(seg_sync(&seg, false), 0);
    cr_assert_eq(seg_sync(&seg, true), -EIO);
}

Test(segment, real_sync_succeeds)
{
    append3(1);
    cr_assert_eq(seg_sync(&seg, true), 0);
}

/* ------------------------------------------------------------------- names */

Test(segment, parse_name_accepts_kafka_style_names)
{
    uint64_t v = 1;
    cr_assert_eq(seg_parse_name("00000000000000000000.log", &v), 0);
    cr_assert_eq(v, 0);
    cr_assert_eq(seg_parse_name("00000000000000000042.log", &v), 0);
    cr_assert_eq(v, 42);
    cr_assert_eq(seg_parse_name("18446744073709551615.log", &v), 0);
    cr_assert_eq(v, UINT64_MAX);
}

Test(segment, parse_name_rejects_other_names)
{
    static const char *bad[] = {
        "00000000000000000042.idx",
        "0000000000000000042.log",
        "000000000000000000042.log",
        "0000000000000000004a.log",
        "-0000000000000000042.log",
        "00000000000000000042.log.tmp",
        "18446744073709551616.log",
        "99999999999999999999.log",
        "terms",
        "checkpoint",
        ".log",
        "",
        "00000000000000000042.LOG",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 12345;
        cr_assert_eq(seg_parse_name(bad[i], &v), -EINVAL, "accepted \"%s\"", bad[i]);
        cr_assert_eq(v, 12345, "\"%s\" wrote the output", bad[i]);
    }
}

/* ------------------------------------------------- entry kinds, side data */

static char auxp[PATH_MAX];

/* record "a\n", a NOOP, a CONF with side data, record "bb\n" with side data */
static void append_mixed(void)
{
    static const char bytes[] = "a\nbb\n";
    struct iovec iov = {(void *)bytes, 5};
    struct seg_item items[4] = {
        {.len = 2, .kind = SEG_RECORD},
        {.len = 0, .kind = SEG_NOOP},
        {.len = 0, .kind = SEG_CONF, .aux = "conf-1-2-3", .aux_len = 10},
        {.len = 3, .kind = SEG_RECORD, .aux = "key=k1", .aux_len = 6},
    };
    cr_assert_eq(seg_append_items(&seg, &iov, 1, items, 4, 5000), 0);
}

static void check_mixed(void)
{
    struct seg_entry e;
    char buf[32];
    cr_assert_eq(seg.count, 4);
    cr_assert_eq(seg.bytes, 5, "entries that are not records take no bytes");
    cr_assert_eq(seg_entry(&seg, 0, &e), 0);
    cr_assert_eq(seg_kind_of(&e), SEG_RECORD);
    cr_assert_eq(e.pos, BASE_POS);
    cr_assert_eq(e.aux_len, 0);
    cr_assert_eq(seg_entry(&seg, 1, &e), 0);
    cr_assert_eq(seg_kind_of(&e), SEG_NOOP);
    cr_assert_eq(e.len, 0);
    cr_assert_eq(e.pos, BASE_POS + 2, "a NOOP sits where the next record starts");
    cr_assert_eq(seg_entry(&seg, 2, &e), 0);
    cr_assert_eq(seg_kind_of(&e), SEG_CONF);
    cr_assert_eq(e.aux_len, 10);
    cr_assert_eq(seg_read_aux(&seg, &e, buf), 0);
    cr_assert_eq(memcmp(buf, "conf-1-2-3", 10), 0);
    cr_assert_eq(seg_entry(&seg, 3, &e), 0);
    cr_assert_eq(seg_kind_of(&e), SEG_RECORD);
    cr_assert_eq(e.pos, BASE_POS + 2, "the record after them keeps its position");
    cr_assert_eq(e.len, 3);
    cr_assert_eq(e.aux_off, 10);
    cr_assert_eq(seg_read_aux(&seg, &e, buf), 0);
    cr_assert_eq(memcmp(buf, "key=k1", 6), 0);
    uint64_t i;
    cr_assert_eq(seg_find_pos(&seg, BASE_POS + 2, &i), 0);
    cr_assert_eq(i, 3, "position -> offset finds the record, not the entries before it");
    cr_assert_eq(seg_find_pos(&seg, BASE_POS + 1, &i), 0);
    cr_assert_eq(i, 0);
}

Test(segment, entries_of_other_kinds_take_offsets_but_no_positions)
{
    append_mixed();
    check_mixed();
    char buf[8];
    cr_assert_eq(pread(seg.log_fd, buf, 5, 0), 5);
    cr_assert_eq(memcmp(buf, "a\nbb\n", 5), 0, "the .log holds exactly the records' bytes");
}

Test(segment, kinds_and_side_data_survive_a_reopen_and_recovery)
{
    append_mixed();
    reopen();
    uint64_t ver, reb;
    recover(0, 1, &ver, &reb);
    cr_assert_eq(ver, 4);
    cr_assert_eq(reb, 0);
    check_mixed();
}

Test(segment, a_flipped_byte_of_side_data_cuts_its_entry_and_all_after)
{
    append_mixed();
    th_seg_path(auxp, dir, BASE_OFF, "aux");
    th_flip(auxp, 3); /* inside the CONF's data */
    reopen();
    uint64_t ver, reb;
    recover(0, 1, &ver, &reb);
    cr_assert_eq(ver, 2, "record and NOOP stay; the CONF fails its check");
    /* The line "bb\n" beyond the valid entries is rebuilt as a plain record
     * (single-node recovery): its side data is not claimed. */
    cr_assert_eq(reb, 1);
    struct seg_entry e;
    cr_assert_eq(seg_entry(&seg, 2, &e), 0);
    cr_assert_eq(seg_kind_of(&e), SEG_RECORD);
    cr_assert_eq(e.aux_len, 0);
    cr_assert_eq(th_size(auxp), 0, "the unclaimed side data is cut");
}

Test(segment, a_short_aux_file_cuts_the_entries_it_no_longer_backs)
{
    append_mixed();
    th_seg_path(auxp, dir, BASE_OFF, "aux");
    th_truncate(auxp, 12); /* CONF's 10 bytes stay, the key is cut short */
    reopen();
    uint64_t ver;
    recover(0, 1, &ver, NULL);
    cr_assert_eq(ver, 3);
    cr_assert_eq(th_size(auxp), 10);
}

Test(segment, truncate_drops_side_data_with_its_entries)
{
    append_mixed();
    cr_assert_eq(seg_truncate(&seg, 2), 0);
    th_seg_path(auxp, dir, BASE_OFF, "aux");
    cr_assert_eq(th_size(auxp), 0);
    cr_assert_eq(seg.bytes, 2);
    cr_assert_eq(th_size(idxp), SEG_HDR_SIZE + 2 * SEG_ENTRY_SIZE);
    append_mixed();
    reopen();
    uint64_t ver;
    recover(0, 1, &ver, NULL);
    cr_assert_eq(ver, 6);
}

Test(segment, items_that_break_the_kinds_rules_are_einval)
{
    struct iovec iov = {(void *)"x\n", 2};
    struct seg_item noop_with_bytes = {.len = 2, .kind = SEG_NOOP};
    struct seg_item empty_record = {.len = 0, .kind = SEG_RECORD};
    struct seg_item bad_kind = {.len = 0, .kind = 4};
    cr_assert_eq(seg_append_items(&seg, &iov, 1, &noop_with_bytes, 1, 1), -EINVAL);
    cr_assert_eq(seg_append_items(&seg, &iov, 0, &empty_record, 1, 1), -EINVAL);
    cr_assert_eq(seg_append_items(&seg, &iov, 0, &bad_kind, 1, 1), -EINVAL);
    cr_assert_eq(seg.count, 0);
}

Test(segment, a_format_1_segment_is_read_and_appended_to_as_it_is)
{
    th_write_v1_segment(dir, 0, 0, "old-1\nold-2\n");
    struct segment v1;
    cr_assert_eq(seg_open(&v1, dir, 0), 0);
    cr_assert_eq(v1.version, 1);
    cr_assert_eq(v1.count, 2);
    uint64_t ver;
    cr_assert_eq(seg_recover(&v1, 0, true, 1, &ver, NULL), 0);
    cr_assert_eq(ver, 2, "format 1 checks still validate");
    struct iovec iov = {(void *)"new-3\n", 6};
    uint32_t len = 6;
    cr_assert_eq(seg_append(&v1, &iov, 1, &len, 1, 43), 0);
    struct seg_item noop = {.len = 0, .kind = SEG_NOOP};
    cr_assert_eq(seg_append_items(&v1, &iov, 0, &noop, 1, 44), -EOPNOTSUPP);
    seg_close(&v1);
    cr_assert_eq(seg_open(&v1, dir, 0), 0);
    cr_assert_eq(seg_recover(&v1, 0, true, 1, &ver, NULL), 0);
    cr_assert_eq(ver, 3);
    cr_assert_eq(th_size(th_seg_path(auxp, dir, 0, "idx")), SEG_HDR_SIZE + 3 * SEG_ENTRY_SIZE_V1);
    seg_close(&v1);
}

/* An entry whose check is valid but whose side data does not continue the
 * previous entry's (overlapping ranges) is not accepted: recovery keeps the
 * .aux ranges dense and in entry order. */
Test(segment, side_data_ranges_must_continue_each_other)
{
    append_mixed();
    /* Rewrite entry 3 (the keyed record) to claim the CONF's side data. */
    int fd = open(idxp, O_RDWR);
    unsigned char ent[SEG_ENTRY_SIZE];
    cr_assert_eq(pread(fd, ent, sizeof(ent), SEG_HDR_SIZE + 3 * SEG_ENTRY_SIZE), SEG_ENTRY_SIZE);
    uint64_t off = 0;
    uint32_t alen = 6;
    memcpy(ent + 24, &off, 8);
    memcpy(ent + 32, &alen, 4);
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset_withSeed(st, seg.salt);
    XXH3_64bits_update(st, "bb\n", 3);
    XXH3_64bits_update(st, "conf-1", 6);
    uint64_t check = XXH3_64bits_withSeed(ent, 40, XXH3_64bits_digest(st));
    XXH3_freeState(st);
    memcpy(ent + 40, &check, 8);
    cr_assert_eq(pwrite(fd, ent, sizeof(ent), SEG_HDR_SIZE + 3 * SEG_ENTRY_SIZE), SEG_ENTRY_SIZE);
    close(fd);
    reopen();
    uint64_t ver;
    recover(0, 1, &ver, NULL);
    cr_assert_eq(ver, 3, "the entry claiming another's side data is cut");
}

/* ------------------------------------------------------------ verify/repair */

/* Damage made while the files were closed (bit rot, a stray write, a cut)
 * is found by seg_verify, never skipped: in the .log, the .idx and the
 * .aux; what was checked once is not read again; seg_repair puts it back. */
Test(segment, verify_finds_a_flipped_byte_in_each_file_and_only_there)
{
    const char aux[] = "side";
    struct seg_item it[3] = {{.len = 6, .kind = SEG_RECORD},
                             {.len = 6, .kind = SEG_RECORD, .aux = aux, .aux_len = 4},
                             {.len = 13, .kind = SEG_RECORD}};
    struct iovec iov[2] = {{(void *)piece1, sizeof(piece1) - 1},
                           {(void *)piece2, sizeof(piece2) - 1}};
    cr_assert_eq(seg_append_items(&seg, iov, 2, it, 3, 5), 0);
    uint64_t bad = 99;
    cr_assert_eq(seg_verify(&seg, 0, 3, &bad), 0, "what this process wrote is known good");
    th_seg_path(auxp, dir, BASE_OFF, "aux");
    const struct {
        const char *path;
        off_t at;
        uint64_t want_bad;
    } cases[] = {
        {logp, 6 + 1, 1},                                /* a record's byte */
        {auxp, 2, 1},                                    /* its side data */
        {idxp, SEG_HDR_SIZE + 2 * SEG_ENTRY_SIZE + 8, 2}, /* the third entry's timestamp */
        {logp, 6 + 6 + 12, 2},                           /* the last '\n' */
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        th_flip(cases[k].path, cases[k].at);
        reopen();
        cr_assert_eq(seg.vcount, 0, "nothing checked after an open");
        cr_assert_eq(seg_verify(&seg, 0, 3, &bad), -EBADMSG, "case %zu not found", k);
        cr_assert_eq(bad, cases[k].want_bad, "case %zu: damage at %" PRIu64, k, bad);
        cr_assert_eq(seg.vcount, cases[k].want_bad, "the good prefix counts as checked");
        /* A check from the middle past the damage passes. */
        if (cases[k].want_bad == 1)
            cr_assert_eq(seg_verify(&seg, 2, 3, &bad), 0);
        th_flip(cases[k].path, cases[k].at); /* undo */
        reopen();
        cr_assert_eq(seg_verify(&seg, 0, 3, &bad), 0, "case %zu undone", k);
        cr_assert_eq(seg.vcount, 3);
        cr_assert_eq(seg.vend, BASE_POS + 25);
    }
}

Test(segment, verify_finds_a_cut_log_and_repair_puts_it_back)
{
    append3(7);
    struct seg_entry good[3];
    char bytes[32];
    for (uint64_t i = 0; i < 3; i++)
        cr_assert_eq(seg_entry(&seg, i, &good[i]), 0);
    th_read(logp, bytes, 25);
    th_truncate(logp, 9); /* into the second record */
    reopen();
    seg.bytes = 25; /* as plog_open sets a sealed segment: from the index */
    uint64_t bad;
    cr_assert_eq(seg_verify(&seg, 0, 3, &bad), -EBADMSG);
    cr_assert_eq(bad, 1);
    for (uint64_t i = 1; i < 3; i++)
        cr_assert_eq(seg_repair(&seg, i, &good[i], bytes + good[i].pos - BASE_POS, NULL), 0);
    cr_assert_eq(seg_verify(&seg, 0, 3, &bad), 0);
    reopen();
    cr_assert_eq(seg.bytes, 25, "the file grew back");
    cr_assert_eq(seg_verify(&seg, 0, 3, &bad), 0, "and checks after a reopen");
    char back[32];
    th_read(logp, back, 25);
    cr_assert_arr_eq(back, bytes, 25);
}

Test(segment, repair_rewrites_a_damaged_index_entry_with_a_fresh_check)
{
    append3(7);
    struct seg_entry e1;
    cr_assert_eq(seg_entry(&seg, 1, &e1), 0);
    th_flip(idxp, SEG_HDR_SIZE + SEG_ENTRY_SIZE + 16); /* entry 1's length */
    reopen();
    uint64_t bad;
    cr_assert_eq(seg_verify(&seg, 0, 3, &bad), -EBADMSG);
    cr_assert_eq(bad, 1);
    cr_assert_eq(seg_repair(&seg, 1, &e1, "bravo\n", NULL), 0);
    cr_assert_eq(seg_verify(&seg, 0, 3, &bad), 0);
    struct seg_entry back;
    cr_assert_eq(seg_entry(&seg, 1, &back), 0);
    cr_assert_eq(back.len, 6);
}

/* ------------------------------------------------------- indexed segments */

Test(segment, an_indexed_segment_rebuilds_no_lines_so_no_record_is_split)
{
    cr_assert_eq(seg_set_indexed(&seg), 0);
    /* One record whose value holds a '\n' (a Kafka record), one plain. */
    static const char text[] = "two\nlines\nplain\n";
    const struct seg_item items[] = {{.len = 10, .kind = SEG_RECORD, .opaque = true},
                                     {.len = 6, .kind = SEG_RECORD}};
    struct iovec iov = {(void *)text, sizeof(text) - 1};
    cr_assert_eq(seg_append_items(&seg, &iov, 1, items, 2, 5), 0);
    /* A power cut took the index entries but the .log bytes stayed. */
    th_truncate(idxp, SEG_HDR_SIZE);
    reopen();
    cr_assert(seg.indexed, "the flag is in the header");
    uint64_t ver, reb;
    recover(0, 77, &ver, &reb);
    cr_assert_eq(reb, 0, "an indexed segment rebuilds nothing");
    cr_assert_eq(seg.count, 0);
    cr_assert_eq(seg.bytes, 0, "bytes without entries are cut, never read as lines");
    cr_assert_eq(th_size(logp), 0);
}

Test(segment, an_indexed_segment_keeps_what_its_index_covers)
{
    cr_assert_eq(seg_set_indexed(&seg), 0);
    static const char text[] = "a\nb\n";
    const struct seg_item item = {.len = 4, .kind = SEG_RECORD, .opaque = true};
    struct iovec iov = {(void *)text, 4};
    cr_assert_eq(seg_append_items(&seg, &iov, 1, &item, 1, 5), 0);
    reopen();
    uint64_t ver, reb;
    recover(0, 77, &ver, &reb);
    cr_assert_eq(ver, 1);
    cr_assert_eq(seg.count, 1);
    struct seg_entry e;
    cr_assert_eq(seg_entry(&seg, 0, &e), 0);
    cr_assert_eq(e.len, 4, "one record of two lines, whole");
}

Test(segment, only_an_empty_format_2_segment_becomes_indexed)
{
    append3(5);
    cr_assert_eq(seg_set_indexed(&seg), -EINVAL);
    cr_assert_not(seg.indexed);
    reopen();
    cr_assert_not(seg.indexed);
}

Test(segment, open_refuses_unknown_header_flags)
{
    seg_close(&seg);
    int fd = open(idxp, O_RDWR);
    cr_assert_geq(fd, 0);
    unsigned char f = 0x80;
    cr_assert_eq(pwrite(fd, &f, 1, 6), 1);
    close(fd);
    cr_assert_eq(seg_open(&seg, dir, BASE_OFF), -EBADMSG);
    /* teardown closes seg: make it a valid segment again */
    f = 0;
    fd = open(idxp, O_RDWR);
    cr_assert_eq(pwrite(fd, &f, 1, 6), 1);
    close(fd);
    cr_assert_eq(seg_open(&seg, dir, BASE_OFF), 0);
}
