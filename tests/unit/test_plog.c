/*
 * test_plog — the partition log (broker/plog.h): segments roll and continue
 * offsets and positions, positions never move, retention follows Kafka's
 * rules without touching the active segment or anything not yet durable,
 * truncation crosses segments, the term list only goes up, and reopening
 * recovers only what lies beyond the checkpoint and shows no torn record.
 */
#include "broker/plog.h"
#include "broker/sysio.h"
#include "tests/unit/helpers.h"

#include <criterion/criterion.h>

#define REC_LEN   10 /* "rec-NNNNN\n" */
#define SEG_BYTES 35 /* three records per segment */
#define NO_AGE    (INT64_MAX / 4)
#define TS        1000000

static char *tmp;
static char dir[PATH_MAX];
static struct plog lg;

static void setup(void)
{
    tmp = th_mkdtemp();
    th_path(dir, "%s/p", tmp);
    cr_assert_eq(plog_open(&lg, dir, true), 0);
}

static void teardown(void)
{
    if (lg.dir)
        plog_close(&lg);
    th_rmdir(tmp);
}

TestSuite(plog, .init = setup, .fini = teardown);

static void rec_text(char *buf, uint64_t off)
{
    snprintf(buf, REC_LEN + 1, "rec-%05" PRIu64 "\n", off);
}

/* Appends `n` records, one plog_append each, in `term` at time ts. */
static int append_n(size_t n, uint64_t term, int64_t ts)
{
    for (size_t i = 0; i < n; i++) {
        char buf[REC_LEN + 1];
        rec_text(buf, plog_next_off(&lg));
        struct iovec iov = {buf, REC_LEN};
        uint32_t len = REC_LEN;
        int rc = plog_append(&lg, term, ts, &iov, 1, &len, 1, SEG_BYTES, NO_AGE);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void reopen(void)
{
    plog_close(&lg);
    cr_assert_eq(plog_open(&lg, dir, false), 0);
}

/* Makes logs and indexes durable and writes the checkpoint at `off`. */
static void checkpoint(uint64_t off)
{
    struct plog_sync s;
    cr_assert_eq(plog_sync_prepare(&lg, 0, true, &s), 0);
    cr_assert_eq(plog_sync_run(&s), 0);
    cr_assert_eq(plog_checkpoint_write(dir, off), 0);
    lg.ckpt_off = off;
}

/* The record at offset off reads back as written, through plog_locate. */
static void assert_record_at(uint64_t off)
{
    struct seg_entry e;
    cr_assert_eq(plog_entry(&lg, off, &e), 0, "offset %" PRIu64, off);
    cr_assert_eq(e.pos, off * REC_LEN);
    cr_assert_eq(e.len, REC_LEN);
    int fd;
    uint64_t fdoff;
    size_t n;
    cr_assert_eq(plog_locate(&lg, e.pos, REC_LEN, &fd, &fdoff, &n), 0);
    cr_assert_eq(n, REC_LEN);
    char got[REC_LEN], want[REC_LEN + 1];
    th_pread(fd, got, REC_LEN, fdoff);
    rec_text(want, off);
    cr_assert_arr_eq(got, want, REC_LEN, "offset %" PRIu64, off);
    uint64_t back;
    cr_assert_eq(plog_offset_of(&lg, e.pos + REC_LEN - 1, &back), 0);
    cr_assert_eq(back, off);
}

/* ------------------------------------------------------------------ basics */

Test(plog, open_creates_an_empty_log)
{
    char p[PATH_MAX];
    cr_assert_eq(lg.nsegs, 1);
    cr_assert_eq(plog_first_off(&lg), 0);
    cr_assert_eq(plog_next_off(&lg), 0);
    cr_assert_eq(plog_first_pos(&lg), 0);
    cr_assert_eq(plog_end_pos(&lg), 0);
    cr_assert(th_exists(th_seg_path(p, dir, 0, "log")));
    cr_assert(th_exists(th_seg_path(p, dir, 0, "idx")));
}

Test(plog, open_without_create_refuses_a_missing_dir)
{
    char p[PATH_MAX];
    struct plog other;
    cr_assert_eq(plog_open(&other, th_path(p, "%s/missing", tmp), false), -ENOENT);
}

Test(plog, empty_append_does_nothing)
{
    cr_assert_eq(plog_append(&lg, 1, TS, NULL, 0, NULL, 0, SEG_BYTES, NO_AGE), 0);
    cr_assert_eq(plog_next_off(&lg), 0);
    cr_assert_eq(lg.nterms, 0);
}

Test(plog, roll_by_size_continues_offsets_and_positions)
{
    cr_assert_eq(append_n(7, 1, TS), 0);
    cr_assert_eq(lg.nsegs, 3);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(lg.segs[i].base_off, 3 * i, "segment %zu", i);
        cr_assert_eq(lg.segs[i].base_pos, 3 * i * REC_LEN, "segment %zu", i);
    }
    cr_assert_eq(lg.segs[0].count, 3);
    cr_assert_eq(lg.segs[2].count, 1);
    cr_assert_eq(plog_next_off(&lg), 7);
    cr_assert_eq(plog_end_pos(&lg), 70);
    cr_assert_eq(plog_bytes(&lg), 70);
    char p[PATH_MAX];
    cr_assert(th_exists(th_seg_path(p, dir, 3, "log")));
    cr_assert(th_exists(th_seg_path(p, dir, 6, "idx")));
    for (uint64_t off = 0; off < 7; off++)
        assert_record_at(off);
}

Test(plog, a_batch_larger_than_a_segment_stays_in_one_segment)
{
    cr_assert_eq(append_n(1, 1, TS), 0);
    char buf[5 * REC_LEN + 1];
    uint32_t lens[5];
    for (int i = 0; i < 5; i++) {
        rec_text(buf + i * REC_LEN, 1 + (uint64_t)i);
        lens[i] = REC_LEN;
    }
    struct iovec iov = {buf, 5 * REC_LEN};
    cr_assert_eq(plog_append(&lg, 1, TS, &iov, 1, lens, 5, SEG_BYTES, NO_AGE), 0);
    cr_assert_eq(lg.nsegs, 2);
    cr_assert_eq(lg.segs[1].base_off, 1);
    cr_assert_eq(lg.segs[1].count, 5);
    for (uint64_t off = 0; off < 6; off++)
        assert_record_at(off);
}

Test(plog, roll_by_age)
{
    char buf[] = "aaaaaaaaa\n";
    uint32_t len = REC_LEN;
    struct iovec iov = {buf, REC_LEN};
    cr_assert_eq(plog_append(&lg, 1, TS, &iov, 1, &len, 1, 1 << 20, 1000), 0);
    cr_assert_eq(plog_append(&lg, 1, TS + 999, &iov, 1, &len, 1, 1 << 20, 1000), 0);
    cr_assert_eq(lg.nsegs, 1);
    cr_assert_eq(plog_append(&lg, 1, TS + 1000, &iov, 1, &len, 1, 1 << 20, 1000), 0);
    cr_assert_eq(lg.nsegs, 2);
    cr_assert_eq(lg.segs[1].base_off, 2);
}

Test(plog, roll_of_an_empty_active_segment_does_nothing)
{
    cr_assert_eq(plog_roll(&lg), 0);
    cr_assert_eq(lg.nsegs, 1);
    cr_assert_eq(append_n(1, 1, TS), 0);
    cr_assert_eq(plog_roll(&lg), 0);
    cr_assert_eq(lg.nsegs, 2);
    cr_assert_eq(plog_active(&lg)->base_off, 1);
    cr_assert_eq(plog_active(&lg)->base_pos, REC_LEN);
}

Test(plog, locate_never_crosses_a_segment_end)
{
    cr_assert_eq(append_n(7, 1, TS), 0);
    int fd;
    uint64_t fdoff;
    size_t n;
    cr_assert_eq(plog_locate(&lg, 25, 1000, &fd, &fdoff, &n), 0);
    cr_assert_eq(n, 5);
    cr_assert_eq(fd, lg.segs[0].log_fd);
    cr_assert_eq(fdoff, 25);
    cr_assert_eq(plog_locate(&lg, 30, 1000, &fd, &fdoff, &n), 0);
    cr_assert_eq(fd, lg.segs[1].log_fd);
    cr_assert_eq(fdoff, 0);
    cr_assert_eq(n, 30);
    cr_assert_eq(plog_locate(&lg, 70, 1000, &fd, &fdoff, &n), 0);
    cr_assert_eq(n, 0, "at the end");
    cr_assert_eq(plog_locate(&lg, 700, 1000, &fd, &fdoff, &n), 0);
    cr_assert_eq(n, 0, "beyond the end");
}

/* --------------------------------------------------------------- retention */

Test(plog, positions_stay_stable_across_roll_and_retention)
{
    cr_assert_eq(append_n(10, 1, TS), 0); /* segments at 0, 3, 6, 9 */
    size_t deleted = 0;
    cr_assert_eq(plog_retain(&lg, TS, -1, 40, plog_next_off(&lg), &deleted), 0);
    cr_assert_eq(deleted, 2);
    cr_assert_eq(plog_first_off(&lg), 6);
    cr_assert_eq(plog_first_pos(&lg), 60);
    cr_assert_eq(plog_end_pos(&lg), 100);
    for (uint64_t off = 6; off < 10; off++)
        assert_record_at(off);
    cr_assert_eq(append_n(1, 1, TS), 0);
    assert_record_at(10);
}

Test(plog, reads_below_the_first_position_after_retention_are_enodata)
{
    cr_assert_eq(append_n(7, 1, TS), 0);
    size_t deleted;
    cr_assert_eq(plog_retain(&lg, TS, -1, 0, plog_next_off(&lg), &deleted), 0);
    cr_assert_eq(deleted, 2);
    int fd;
    uint64_t fdoff, off;
    size_t n;
    struct seg_entry e;
    cr_assert_eq(plog_locate(&lg, 0, 10, &fd, &fdoff, &n), -ENODATA);
    cr_assert_eq(plog_locate(&lg, 59, 10, &fd, &fdoff, &n), -ENODATA);
    cr_assert_eq(plog_locate(&lg, 60, 10, &fd, &fdoff, &n), 0);
    cr_assert_eq(n, 10);
    cr_assert_eq(plog_offset_of(&lg, 5, &off), -ENODATA);
    cr_assert_eq(plog_entry(&lg, 0, &e), -ERANGE);
    char p[PATH_MAX];
    cr_assert_not(th_exists(th_seg_path(p, dir, 0, "log")));
    cr_assert_not(th_exists(th_seg_path(p, dir, 3, "idx")));
}

/* Kafka: delete the oldest segment while what remains is >= retention.bytes. */
Test(plog, retention_by_bytes_keeps_at_least_the_limit)
{
    cr_assert_eq(append_n(10, 1, TS), 0); /* 30 + 30 + 30 + 10 = 100 bytes */
    size_t deleted = 9;
    cr_assert_eq(plog_retain(&lg, TS, -1, 71, plog_next_off(&lg), &deleted), 0);
    cr_assert_eq(deleted, 0, "70 would remain, below 71");
    cr_assert_eq(plog_retain(&lg, TS, -1, 60, plog_next_off(&lg), &deleted), 0);
    cr_assert_eq(deleted, 1, "70 remains >= 60, then 40 would not");
    cr_assert_eq(plog_bytes(&lg), 70);
    cr_assert_eq(plog_retain(&lg, TS, -1, 40, plog_next_off(&lg), &deleted), 0);
    cr_assert_eq(deleted, 1, "40 remains >= 40");
    cr_assert_eq(plog_bytes(&lg), 40);
    cr_assert_eq(plog_retain(&lg, TS, -1, -1, plog_next_off(&lg), &deleted), 0);
    cr_assert_eq(deleted, 0, "-1 keeps everything");
}

Test(plog, retention_never_deletes_the_active_segment)
{
    cr_assert_eq(append_n(10, 1, TS), 0);
    size_t deleted;
    cr_assert_eq(plog_retain(&lg, INT64_MAX / 2, 0, 0, plog_next_off(&lg), &deleted), 0);
    cr_assert_eq(deleted, 3);
    cr_assert_eq(lg.nsegs, 1);
    cr_assert_eq(plog_first_off(&lg), 9);
    assert_record_at(9);
    cr_assert_eq(plog_retain(&lg, INT64_MAX / 2, 0, 0, plog_next_off(&lg), &deleted), 0);
    cr_assert_eq(deleted, 0);
    cr_assert_eq(lg.nsegs, 1);
}

Test(plog, retention_by_age_deletes_only_old_segments)
{
    cr_assert_eq(append_n(3, 1, TS), 0);
    cr_assert_eq(append_n(3, 1, TS + 5000), 0);
    cr_assert_eq(append_n(1, 1, TS + 9000), 0);
    size_t deleted;
    cr_assert_eq(plog_retain(&lg, TS + 1000, 1000, -1, plog_next_off(&lg), &deleted), 0);
    cr_assert_eq(deleted, 0, "exactly retention.ms old is kept");
    cr_assert_eq(plog_retain(&lg, TS + 1001, 1000, -1, plog_next_off(&lg), &deleted), 0);
    cr_assert_eq(deleted, 1);
    cr_assert_eq(plog_first_off(&lg), 3);
    cr_assert_eq(plog_retain(&lg, INT64_MAX / 2, -1, -1, plog_next_off(&lg), &deleted), 0);
    cr_assert_eq(deleted, 0, "-1 keeps forever");
    cr_assert_eq(plog_retain(&lg, INT64_MAX / 2, 1000, -1, plog_next_off(&lg), &deleted), 0);
    cr_assert_eq(deleted, 1);
    cr_assert_eq(lg.nsegs, 1);
}

Test(plog, retention_never_deletes_beyond_the_durable_offset)
{
    cr_assert_eq(append_n(10, 1, TS), 0);
    size_t deleted;
    cr_assert_eq(plog_retain(&lg, INT64_MAX / 2, 0, 0, 2, &deleted), 0);
    cr_assert_eq(deleted, 0, "segment 0 ends at 3, beyond durable 2");
    cr_assert_eq(plog_retain(&lg, INT64_MAX / 2, 0, 0, 5, &deleted), 0);
    cr_assert_eq(deleted, 1);
    cr_assert_eq(plog_first_off(&lg), 3);
}

/* --------------------------------------------------------------- truncate */

Test(plog, truncate_across_segments)
{
    cr_assert_eq(append_n(8, 1, TS), 0); /* segments at 0, 3, 6 */
    cr_assert_eq(plog_truncate(&lg, 4), 0);
    cr_assert_eq(lg.nsegs, 2);
    cr_assert_eq(plog_next_off(&lg), 4);
    cr_assert_eq(plog_end_pos(&lg), 40);
    char p[PATH_MAX];
    cr_assert_not(th_exists(th_seg_path(p, dir, 6, "log")));
    cr_assert_not(th_exists(th_seg_path(p, dir, 6, "idx")));
    cr_assert_eq(th_size(th_seg_path(p, dir, 3, "log")), REC_LEN);
    cr_assert_eq(th_size(th_seg_path(p, dir, 3, "idx")), SEG_HDR_SIZE + SEG_ENTRY_SIZE);
    /* The log goes on from the cut. */
    cr_assert_eq(append_n(3, 1, TS), 0);
    for (uint64_t off = 0; off < 7; off++)
        assert_record_at(off);
    reopen();
    cr_assert_eq(plog_next_off(&lg), 7);
    cr_assert_eq(lg.rec.dropped_bytes, 0);
}

Test(plog, truncate_at_a_segment_base_removes_that_segment)
{
    cr_assert_eq(append_n(7, 1, TS), 0);
    cr_assert_eq(plog_truncate(&lg, 3), 0);
    cr_assert_eq(lg.nsegs, 1);
    cr_assert_eq(plog_next_off(&lg), 3);
    cr_assert_eq(plog_end_pos(&lg), 30);
}

Test(plog, truncate_at_or_beyond_the_end_does_nothing_and_below_first_is_erange)
{
    cr_assert_eq(append_n(7, 1, TS), 0);
    cr_assert_eq(plog_truncate(&lg, 7), 0);
    cr_assert_eq(plog_truncate(&lg, 100), 0);
    cr_assert_eq(plog_next_off(&lg), 7);
    size_t deleted;
    cr_assert_eq(plog_retain(&lg, TS, -1, 0, 7, &deleted), 0);
    cr_assert_eq(plog_truncate(&lg, 2), -ERANGE);
    cr_assert_eq(plog_next_off(&lg), 7);
}

Test(plog, truncate_pulls_the_checkpoint_back)
{
    cr_assert_eq(append_n(7, 1, TS), 0);
    checkpoint(7);
    cr_assert_eq(plog_truncate(&lg, 5), 0);
    cr_assert_eq(lg.ckpt_off, 5);
    char p[PATH_MAX];
    char *text = th_slurp(th_path(p, "%s/checkpoint", dir), NULL);
    cr_assert_str_eq(text, "5\n");
    free(text);
}

/* ------------------------------------------------------------------- terms */

Test(plog, term_list_records_where_each_term_starts)
{
    cr_assert_eq(append_n(2, 1, TS), 0);
    cr_assert_eq(append_n(3, 3, TS), 0);
    cr_assert_eq(lg.nterms, 2);
    cr_assert_eq(plog_term_at(&lg, 0), 1);
    cr_assert_eq(plog_term_at(&lg, 1), 1);
    cr_assert_eq(plog_term_at(&lg, 2), 3);
    cr_assert_eq(plog_term_at(&lg, 4), 3);
    cr_assert_eq(plog_term_at(&lg, 5), 0, "beyond the log");
    char p[PATH_MAX];
    char *text = th_slurp(th_path(p, "%s/terms", dir), NULL);
    cr_assert_str_eq(text, "1 0\n3 2\n");
    free(text);
    reopen();
    cr_assert_eq(lg.nterms, 2);
    cr_assert_eq(plog_term_at(&lg, 1), 1);
    cr_assert_eq(plog_term_at(&lg, 2), 3);
}

Test(plog, a_lower_term_is_refused_and_appends_nothing)
{
    cr_assert_eq(append_n(2, 1, TS), 0);
    cr_assert_eq(append_n(1, 3, TS), 0);
    cr_assert_eq(append_n(1, 2, TS), -EINVAL);
    cr_assert_eq(plog_next_off(&lg), 3);
    cr_assert_eq(lg.nterms, 2);
    cr_assert_eq(append_n(1, 3, TS), 0, "the same term goes on");
    cr_assert_eq(lg.nterms, 2);
}

Test(plog, truncate_drops_terms_that_start_beyond_the_cut)
{
    cr_assert_eq(append_n(2, 1, TS), 0);
    cr_assert_eq(append_n(2, 3, TS), 0);
    cr_assert_eq(plog_truncate(&lg, 2), 0);
    cr_assert_eq(lg.nterms, 1);
    cr_assert_eq(plog_term_at(&lg, 1), 1);
    cr_assert_eq(append_n(1, 2, TS), 0, "a new leader's lower term after the cut");
    cr_assert_eq(plog_term_at(&lg, 2), 2);
    reopen();
    cr_assert_eq(lg.nterms, 2);
    cr_assert_eq(plog_term_at(&lg, 2), 2);
}

/* ---------------------------------------------------------------- recovery */

Test(plog, reopen_recovers_only_beyond_the_checkpoint)
{
    cr_assert_eq(append_n(10, 1, TS), 0); /* segments at 0, 3, 6, 9 */
    checkpoint(7);
    reopen();
    cr_assert_eq(lg.ckpt_off, 7);
    cr_assert_eq(lg.rec.segments, 4);
    cr_assert_eq(lg.rec.verified, 3, "entries 7, 8, 9 (segment 6 from its entry 1)");
    cr_assert_eq(lg.rec.rebuilt, 0);
    cr_assert_eq(lg.rec.dropped_bytes, 0);
    cr_assert_eq(plog_next_off(&lg), 10);
    for (uint64_t off = 0; off < 10; off++)
        assert_record_at(off);
}

Test(plog, reopen_with_checkpoint_at_the_end_verifies_nothing)
{
    cr_assert_eq(append_n(10, 1, TS), 0);
    checkpoint(10);
    reopen();
    cr_assert_eq(lg.rec.verified, 0);
    cr_assert_eq(plog_next_off(&lg), 10);
}

Test(plog, reopen_without_checkpoint_verifies_everything)
{
    cr_assert_eq(append_n(10, 1, TS), 0);
    reopen();
    cr_assert_eq(lg.rec.verified, 10);
    cr_assert_eq(plog_next_off(&lg), 10);
}

Test(plog, checkpoint_beyond_the_log_is_clamped)
{
    cr_assert_eq(append_n(4, 1, TS), 0);
    cr_assert_eq(plog_checkpoint_write(dir, 1000), 0);
    reopen();
    cr_assert_eq(lg.ckpt_off, 4);
}

/* After a crash: unindexed complete lines in the active .log and a torn last
 * line.  Reopening indexes the lines and cuts the torn bytes. */
Test(plog, crash_state_reopens_without_a_torn_record)
{
    cr_assert_eq(append_n(5, 1, TS), 0); /* segments at 0, 3 */
    checkpoint(3);
    char p[PATH_MAX];
    th_seg_path(p, dir, 3, "log");
    th_append_raw(p, "rec-00005\nrec-00006\nrec-000", 27);
    reopen();
    cr_assert_eq(lg.rec.rebuilt, 2);
    cr_assert_eq(lg.rec.dropped_bytes, 7);
    cr_assert_eq(lg.rec.verified, 2);
    cr_assert_eq(plog_next_off(&lg), 7);
    cr_assert_eq(plog_end_pos(&lg), 70);
    cr_assert_eq(th_size(p), 40);
    for (uint64_t off = 0; off < 7; off++)
        assert_record_at(off);
    cr_assert_eq(append_n(1, 1, TS), 0);
    assert_record_at(7);
}

Test(plog, crash_state_with_a_stale_index_tail_reopens_clean)
{
    cr_assert_eq(append_n(5, 1, TS), 0);
    char p[PATH_MAX];
    th_seg_path(p, dir, 3, "idx");
    th_truncate(p, SEG_HDR_SIZE + SEG_ENTRY_SIZE + 7); /* entry 4 half-written */
    th_seg_path(p, dir, 3, "log");
    th_truncate(p, 15); /* record 4 torn */
    reopen();
    cr_assert_eq(plog_next_off(&lg), 4);
    cr_assert_eq(plog_end_pos(&lg), 40);
    cr_assert_eq(lg.rec.dropped_bytes, 5);
    for (uint64_t off = 0; off < 4; off++)
        assert_record_at(off);
}

Test(plog, leftover_empty_last_segment_with_a_broken_index_is_removed)
{
    cr_assert_eq(append_n(4, 1, TS), 0); /* segments at 0, 3 */
    char lp[PATH_MAX], ip[PATH_MAX];
    th_seg_path(lp, dir, 4, "log");
    th_seg_path(ip, dir, 4, "idx");
    th_append_raw(lp, "", 0);
    th_append_raw(ip, "mkid", 4); /* header cut short by the crash */
    reopen();
    cr_assert_eq(lg.nsegs, 2);
    cr_assert_eq(plog_next_off(&lg), 4);
    cr_assert_not(th_exists(lp));
    cr_assert_not(th_exists(ip));
    cr_assert_eq(append_n(1, 1, TS), 0);
    assert_record_at(4);
}

Test(plog, leftover_empty_last_segment_without_an_index_is_removed)
{
    cr_assert_eq(append_n(4, 1, TS), 0);
    char lp[PATH_MAX];
    th_seg_path(lp, dir, 4, "log");
    th_append_raw(lp, "", 0);
    reopen();
    cr_assert_eq(lg.nsegs, 2);
    cr_assert_not(th_exists(lp));
}

Test(plog, a_broken_index_under_a_non_empty_log_is_not_silently_dropped)
{
    cr_assert_eq(append_n(4, 1, TS), 0);
    plog_close(&lg);
    char ip[PATH_MAX];
    th_flip(th_seg_path(ip, dir, 3, "idx"), 0);
    cr_assert_eq(plog_open(&lg, dir, false), -EBADMSG);
}

/* seg_remove unlinks the .idx first ("a .log without .idx is recognisable
 * leftovers", segment.c).  A crash between the two unlinks of retention
 * leaves the oldest segment as a lone .log: the log must still open. */
Test(plog, a_crash_between_the_unlinks_of_retention_leaves_an_openable_log)
{
    cr_assert_eq(append_n(7, 1, TS), 0); /* segments at 0, 3, 6 */
    plog_close(&lg);
    char p[PATH_MAX];
    cr_assert_eq(unlink(th_seg_path(p, dir, 0, "idx")), 0);
    cr_assert_eq(plog_open(&lg, dir, false), 0);
    cr_assert_eq(plog_first_off(&lg), 3);
    cr_assert_eq(plog_next_off(&lg), 7);
    for (uint64_t off = 3; off < 7; off++)
        assert_record_at(off);
}

/* The same crash in plog_truncate, which removes segments from the end: the
 * last segment is a lone, non-empty .log of records being dropped. */
Test(plog, a_crash_between_the_unlinks_of_truncate_leaves_an_openable_log)
{
    cr_assert_eq(append_n(7, 1, TS), 0); /* segments at 0, 3, 6 */
    plog_close(&lg);
    char p[PATH_MAX];
    cr_assert_eq(unlink(th_seg_path(p, dir, 6, "idx")), 0);
    cr_assert_eq(plog_open(&lg, dir, false), 0);
    cr_assert_eq(plog_next_off(&lg), 6);
    cr_assert_not(th_exists(th_seg_path(p, dir, 6, "log")));
    for (uint64_t off = 0; off < 6; off++)
        assert_record_at(off);
}

/* A sealed segment that recovery shortens leaves a gap: the later segments
 * can no longer be reached and go. */
Test(plog, segments_beyond_a_gap_are_removed)
{
    cr_assert_eq(append_n(7, 1, TS), 0); /* segments at 0, 3, 6 */
    plog_close(&lg);
    char p[PATH_MAX];
    th_flip(th_seg_path(p, dir, 0, "log"), 29); /* '\n' of record 2 */
    cr_assert_eq(plog_open(&lg, dir, false), 0);
    cr_assert_eq(lg.nsegs, 1);
    cr_assert_eq(plog_next_off(&lg), 2);
    cr_assert_eq(plog_end_pos(&lg), 20);
    cr_assert_eq(lg.rec.dropped_bytes, 10 + 30 + 10);
    cr_assert_not(th_exists(th_seg_path(p, dir, 3, "log")));
    cr_assert_not(th_exists(th_seg_path(p, dir, 6, "idx")));
}

/* -------------------------------------------------------------- durability */

Test(plog, sync_prepare_covers_segments_from_a_position_on)
{
    cr_assert_eq(append_n(7, 1, TS), 0);
    struct plog_sync s;
    cr_assert_eq(plog_sync_prepare(&lg, 35, false, &s), 0);
    cr_assert_eq(s.nfds, 2);
    cr_assert_eq(plog_sync_run(&s), 0);
    cr_assert_null(s.fds);
    /* With the index: .log, .idx and .aux of each of the 3 segments. */
    cr_assert_eq(plog_sync_prepare(&lg, 0, true, &s), 0);
    cr_assert_eq(s.nfds, 9);
    cr_assert_eq(plog_sync_run(&s), 0);
}

static int eio(int fd)
{
    (void)fd;
    return -EIO;
}

Test(plog, sync_run_reports_fdatasync_failure)
{
    cr_assert_eq(append_n(2, 1, TS), 0);
    struct plog_sync s;
    cr_assert_eq(plog_sync_prepare(&lg, 0, true, &s), 0);
    sysio.fdatasync = eio;
    cr_assert_eq(plog_sync_run(&s), -EIO);
    cr_assert_null(s.fds);
}

static int (*real_rename)(const char *, const char *);
static int rename_fails(const char *a, const char *b)
{
    (void)a;
    (void)b;
    return -ENOSPC;
}

Test(plog, a_term_that_cannot_be_recorded_appends_nothing)
{
    cr_assert_eq(append_n(2, 1, TS), 0);
    real_rename = sysio.rename;
    sysio.rename = rename_fails;
    cr_assert_eq(append_n(1, 2, TS), -ENOSPC);
    cr_assert_eq(plog_next_off(&lg), 2);
    cr_assert_eq(lg.nterms, 1);
    sysio.rename = real_rename;
    cr_assert_eq(append_n(1, 2, TS), 0);
    cr_assert_eq(plog_term_at(&lg, 2), 2);
}

/* ------------------------------------------------------ entries of other kinds */

static int append_noop_conf(uint64_t term)
{
    struct seg_item items[2] = {{.len = 0, .kind = SEG_NOOP},
                                {.len = 0, .kind = SEG_CONF, .aux = "123", .aux_len = 3}};
    return plog_append_items(&lg, term, TS, NULL, 0, items, 2, SEG_BYTES, NO_AGE);
}

Test(plog, noop_and_conf_entries_take_offsets_not_positions)
{
    cr_assert_eq(append_n(3, 1, TS), 0);
    uint64_t end = plog_end_pos(&lg);
    cr_assert_eq(append_noop_conf(2), 0);
    cr_assert_eq(plog_next_off(&lg), 5);
    cr_assert_eq(plog_end_pos(&lg), end, "no bytes for them in the partition file");
    cr_assert_eq(plog_term_at(&lg, 3), 2);
    cr_assert_eq(append_n(1, 2, TS), 0);
    struct seg_entry e;
    cr_assert_eq(plog_entry(&lg, 5, &e), 0);
    cr_assert_eq(e.pos, end, "the next record starts where the last one ended");
    uint64_t off;
    cr_assert_eq(plog_offset_of(&lg, end, &off), 0);
    cr_assert_eq(off, 5);
    cr_assert_eq(plog_entry(&lg, 4, &e), 0);
    cr_assert_eq(seg_kind_of(&e), SEG_CONF);
    char buf[3];
    cr_assert_eq(plog_read_aux(&lg, 4, &e, buf), 0);
    cr_assert_eq(memcmp(buf, "123", 3), 0);
    reopen();
    cr_assert_eq(plog_next_off(&lg), 6);
    cr_assert_eq(plog_end_pos(&lg), end + REC_LEN);
    cr_assert_eq(lg.rec.rebuilt, 0);
}

Test(plog, truncation_takes_side_data_and_kinds_along)
{
    cr_assert_eq(append_n(2, 1, TS), 0);
    cr_assert_eq(append_noop_conf(2), 0);
    cr_assert_eq(append_n(2, 2, TS), 0);
    cr_assert_eq(plog_truncate(&lg, 3), 0);
    cr_assert_eq(plog_next_off(&lg), 3);
    struct seg_entry e;
    cr_assert_eq(plog_entry(&lg, 2, &e), 0);
    cr_assert_eq(seg_kind_of(&e), SEG_NOOP);
    char p[PATH_MAX];
    cr_assert_eq(th_size(th_seg_path(p, dir, 0, "aux")), 0);
}

/* An empty partition directory (setup made a segment in it). */
static void fresh_dir(void)
{
    cr_assert_eq(sys_remove_tree(dir), 0);
    cr_assert_eq(mkdir(dir, 0755), 0);
}

/* A partition written by the previous release (format 1 index): its records
 * read back, plain records still go into its active segment, and the first
 * entry of another kind starts a format 2 segment. */
Test(plog, a_format_1_log_is_upgraded_at_the_first_entry_of_another_kind)
{
    plog_close(&lg);
    char p[PATH_MAX];
    fresh_dir();
    th_write_v1_segment(dir, 0, 0, "old-0\nold-1\n");
    cr_assert_eq(plog_open(&lg, dir, false), 0);
    cr_assert_eq(plog_next_off(&lg), 2);
    cr_assert_eq(plog_active(&lg)->version, 1);
    cr_assert_eq(append_n(1, 1, TS), 0);
    cr_assert_eq(plog_active(&lg)->version, 1, "plain records stay in the format 1 segment");
    cr_assert_eq(append_noop_conf(2), 0);
    cr_assert_eq(lg.nsegs, 2);
    cr_assert_eq(plog_active(&lg)->version, 2);
    cr_assert_eq(plog_active(&lg)->base_off, 3);
    cr_assert(th_exists(th_seg_path(p, dir, 3, "aux")));
    reopen();
    cr_assert_eq(plog_next_off(&lg), 5);
    cr_assert_eq(plog_end_pos(&lg), 12 + REC_LEN);
    cr_assert_eq(lg.segs[0].version, 1);
}

Test(plog, an_empty_format_1_active_segment_is_upgraded_in_place)
{
    plog_close(&lg);
    char p[PATH_MAX];
    fresh_dir();
    th_write_v1_segment(dir, 0, 0, "old-0\n");
    th_write_v1_segment(dir, 1, 6, "");
    cr_assert_eq(plog_open(&lg, dir, false), 0);
    cr_assert_eq(lg.nsegs, 2);
    cr_assert_eq(append_noop_conf(1), 0);
    cr_assert_eq(lg.nsegs, 2);
    cr_assert_eq(plog_active(&lg)->version, 2);
    cr_assert_eq(plog_active(&lg)->base_off, 1);
    cr_assert(th_exists(th_seg_path(p, dir, 1, "aux")));
    reopen();
    cr_assert_eq(plog_next_off(&lg), 3);
    cr_assert_eq(plog_end_pos(&lg), 6);
}

/* ------------------------------------------------------------ Raft logs */

static void reopen_raft(void)
{
    plog_close(&lg);
    cr_assert_eq(plog_open_raft(&lg, dir, false), 0);
}

Test(plog, a_raft_log_never_rebuilds_entries_from_lines)
{
    cr_assert_eq(append_n(3, 1, TS), 0);
    checkpoint(3);
    /* Two lines in the .log whose index entries never reached the disk. */
    char p[PATH_MAX];
    th_seg_path(p, dir, 0, "log");
    th_append_raw(p, "rec-00003\nrec-00004\n", 20);
    reopen_raft();
    cr_assert_eq(plog_next_off(&lg), 3, "unindexed lines are not entries of a Raft log");
    cr_assert_eq(plog_end_pos(&lg), 3 * REC_LEN);
    cr_assert_eq(lg.rec.rebuilt, 0);
    cr_assert_eq(th_size(p), 3 * REC_LEN, "and they are cut from the .log");
    /* The same files opened as a single node's log would rebuild them. */
    th_append_raw(p, "rec-00003\n", 10);
    reopen();
    cr_assert_eq(plog_next_off(&lg), 4);
    cr_assert_eq(lg.rec.rebuilt, 1);
}

Test(plog, hard_state_survives_a_reopen)
{
    plog_close(&lg);
    cr_assert_eq(plog_open_raft(&lg, dir, false), 0);
    cr_assert_eq(lg.hs_term, 0);
    cr_assert_eq(lg.hs_vote, 0);
    cr_assert_eq(plog_hardstate_write(&lg, 7, 3), 0);
    cr_assert_eq(plog_hardstate_write(&lg, 8, 0), 0);
    reopen_raft();
    cr_assert_eq(lg.hs_term, 8);
    cr_assert_eq(lg.hs_vote, 0);
}

Test(plog, an_unreadable_hard_state_refuses_to_open)
{
    plog_close(&lg);
    char p[PATH_MAX];
    th_append_raw(th_path(p, "%s/raftstate", dir), "7 x\n", 4);
    cr_assert_eq(plog_open_raft(&lg, dir, false), -EBADMSG,
                 "a vote must never be forgotten silently");
}

Test(plog, term_of_the_entry_before_the_first_is_known)
{
    cr_assert_eq(append_n(3, 2, TS), 0);
    cr_assert_eq(append_n(4, 5, TS), 0); /* 3 records per segment: 3 segments */
    size_t deleted;
    cr_assert_eq(plog_retain(&lg, TS + 1, 0, -1, plog_next_off(&lg), &deleted), 0);
    cr_assert_geq(deleted, 1);
    uint64_t first = plog_first_off(&lg);
    cr_assert_gt(first, 0);
    cr_assert_eq(plog_term_at(&lg, first - 1), first - 1 < 3 ? 2 : 5);
    cr_assert_eq(plog_term_at(&lg, first - 2), 0, "below that: not retained");
}

Test(plog, reset_starts_the_log_at_the_leaders_start)
{
    cr_assert_eq(append_n(5, 1, TS), 0);
    cr_assert_eq(plog_reset(&lg, 1000, 50000, 9), 0);
    cr_assert_eq(plog_first_off(&lg), 1000);
    cr_assert_eq(plog_next_off(&lg), 1000);
    cr_assert_eq(plog_first_pos(&lg), 50000);
    cr_assert_eq(plog_end_pos(&lg), 50000);
    cr_assert_eq(plog_term_at(&lg, 999), 9);
    cr_assert_eq(append_n(2, 10, TS), 0);
    reopen_raft();
    cr_assert_eq(plog_first_off(&lg), 1000);
    cr_assert_eq(plog_next_off(&lg), 1002);
    cr_assert_eq(plog_first_pos(&lg), 50000);
    cr_assert_eq(plog_end_pos(&lg), 50000 + 2 * REC_LEN);
    cr_assert_eq(plog_term_at(&lg, 999), 9);
    cr_assert_eq(plog_term_at(&lg, 1000), 10);
    int fd;
    uint64_t fdoff;
    size_t n;
    cr_assert_eq(plog_locate(&lg, 49999, 10, &fd, &fdoff, &n), -ENODATA);
    cr_assert_eq(plog_reset(&lg, 10, 100, 1), -EINVAL, "a log start never moves back");
}

Test(plog, a_reset_cut_short_is_finished_at_open)
{
    cr_assert_eq(append_n(7, 1, TS), 0);
    plog_close(&lg);
    /* The crash came right after the start file was written. */
    char p[PATH_MAX];
    th_append_raw(th_path(p, "%s/start", dir), "500 9000 4\n", 11);
    cr_assert_eq(plog_open_raft(&lg, dir, false), 0);
    cr_assert_eq(lg.nsegs, 1);
    cr_assert_eq(plog_first_off(&lg), 500);
    cr_assert_eq(plog_next_off(&lg), 500);
    cr_assert_eq(plog_end_pos(&lg), 9000);
    cr_assert_eq(plog_term_at(&lg, 499), 4);
    cr_assert_not(th_exists(th_seg_path(p, dir, 0, "log")), "the old segments are gone");
    cr_assert(th_exists(th_seg_path(p, dir, 500, "idx")));
}

/* A reset below the log end (a follower whose divergent tail reaches past
 * the leader's start): nothing of the old log survives, also when the
 * process dies right after the start file was written. */
Test(plog, a_reset_below_the_end_drops_everything_even_cut_short)
{
    plog_close(&lg);
    cr_assert_eq(plog_open_raft(&lg, dir, false), 0);
    cr_assert_eq(append_n(7, 1, TS), 0); /* segments [0-2] [3-5] [6] */
    cr_assert_eq(plog_reset(&lg, 4, 40, 1), 0);
    cr_assert_eq(plog_first_off(&lg), 4);
    cr_assert_eq(plog_next_off(&lg), 4);
    cr_assert_eq(append_n(1, 2, TS), 0);
    reopen_raft();
    cr_assert_eq(plog_first_off(&lg), 4);
    cr_assert_eq(plog_next_off(&lg), 5);
    cr_assert_eq(plog_term_at(&lg, 4), 2);
    cr_assert_eq(plog_term_at(&lg, 3), 1);
}

Test(plog, a_crash_between_start_file_and_removal_is_finished_at_open)
{
    plog_close(&lg);
    cr_assert_eq(plog_open_raft(&lg, dir, false), 0);
    cr_assert_eq(append_n(7, 3, TS), 0);
    /* What plog_reset(4, 40, 3) has done when it dies after the start file:
     * the suffix from 4 is gone, the old segments are still there, the
     * terms file still lists term 3 from 0. */
    cr_assert_eq(plog_truncate(&lg, 4), 0);
    plog_close(&lg);
    char p[PATH_MAX];
    th_append_raw(th_path(p, "%s/start", dir), "4 40 3\n", 7);
    cr_assert_eq(plog_open_raft(&lg, dir, false), 0);
    cr_assert_eq(plog_first_off(&lg), 4, "segments beginning below the start are gone");
    cr_assert_eq(plog_next_off(&lg), 4);
    cr_assert_eq(plog_end_pos(&lg), 40);
    cr_assert_eq(lg.nterms, 0, "terms beginning below the start are gone");
    cr_assert_eq(append_n(1, 2, TS), 0, "an older term than the dropped ones is fine now");
    cr_assert_eq(plog_term_at(&lg, 3), 3);
}

/* ENOSPC while the reset creates its segment: the log keeps a segment (no
 * crash, no empty array) and a reopen finishes the reset. */
static int (*real_open2)(const char *, int, mode_t);
static int enospc_create(const char *path, int flags, mode_t mode)
{
    if ((flags & O_CREAT) && strstr(path, "00000000000000000500"))
        return -ENOSPC;
    return real_open2(path, flags, mode);
}

Test(plog, a_reset_that_cannot_create_its_segment_leaves_a_usable_log)
{
    plog_close(&lg);
    cr_assert_eq(plog_open_raft(&lg, dir, false), 0);
    cr_assert_eq(append_n(4, 1, TS), 0);
    real_open2 = sysio.open;
    sysio.open = enospc_create;
    cr_assert_eq(plog_reset(&lg, 500, 9000, 2), -ENOSPC);
    sysio_reset();
    cr_assert_geq(lg.nsegs, 1);
    (void)plog_next_off(&lg); /* must not read outside the segment array */
    reopen_raft();
    cr_assert_eq(plog_first_off(&lg), 500);
    cr_assert_eq(plog_end_pos(&lg), 9000);
    cr_assert_eq(plog_term_at(&lg, 499), 2);
}

Test(plog, a_term_whose_first_entry_a_crash_took_back_is_forgotten)
{
    cr_assert_eq(append_n(2, 1, TS), 0);
    checkpoint(2);
    char lp[PATH_MAX], ip[PATH_MAX];
    th_seg_path(lp, dir, 0, "log");
    th_seg_path(ip, dir, 0, "idx");
    long long lsize = th_size(lp), isize = th_size(ip);
    /* A new term's first entry: the terms file is replaced durably at once,
     * the entry's bytes are lost in the crash. */
    cr_assert_eq(append_n(1, 3, TS), 0);
    cr_assert_eq(lg.nsegs, 1, "still one segment");
    cr_assert_eq(lg.nterms, 2);
    plog_close(&lg);
    cr_assert_eq(truncate(lp, lsize), 0);
    cr_assert_eq(truncate(ip, isize), 0);
    cr_assert_eq(plog_open_raft(&lg, dir, false), 0);
    cr_assert_eq(plog_next_off(&lg), 2);
    cr_assert_eq(lg.nterms, 1, "term 3 describes no entry any more");
    cr_assert_eq(append_n(1, 2, TS), 0, "an entry of a lower term may follow the cut");
    cr_assert_eq(plog_term_at(&lg, 2), 2);
    reopen_raft();
    cr_assert_eq(plog_term_at(&lg, 2), 2);
    cr_assert_eq(plog_term_at(&lg, 1), 1);
}

/* --------------------------------------------------- records that are not lines */

static int append_opaque(const char *text, uint32_t len)
{
    struct iovec iov = {(void *)text, len};
    struct seg_item it = {.len = len, .kind = SEG_RECORD, .opaque = true};
    return plog_append_items(&lg, 1, TS, &iov, 1, &it, 1, 1 << 20, NO_AGE);
}

Test(plog, a_record_that_is_not_a_line_rolls_to_an_indexed_segment)
{
    cr_assert_eq(append_n(2, 1, TS), 0);
    cr_assert_not(plog_active(&lg)->indexed);
    cr_assert_eq(append_opaque("x\ny\n", 4), 0);
    cr_assert_eq(lg.nsegs, 2, "the lines keep their segment, rebuildable");
    cr_assert(plog_active(&lg)->indexed);
    cr_assert_eq(plog_active(&lg)->base_off, 2);
    /* Plain records after it stay in the indexed segment. */
    cr_assert_eq(append_n(1, 1, TS), 0);
    cr_assert_eq(lg.nsegs, 2);
    /* A durability pass from there syncs the index and side data too. */
    struct plog_sync s;
    cr_assert_eq(plog_sync_prepare(&lg, plog_active(&lg)->base_pos, false, &s), 0);
    cr_assert_eq(s.nfds, 3);
    cr_assert_eq(plog_sync_run(&s), 0);
    cr_assert_eq(plog_sync_prepare(&lg, 0, false, &s), 0);
    cr_assert_eq(s.nfds, 1 + 3, "the first segment's .log only");
    cr_assert_eq(plog_sync_run(&s), 0);
}

Test(plog, an_empty_active_segment_becomes_indexed_in_place)
{
    cr_assert_eq(append_opaque("x\ny\n", 4), 0);
    cr_assert_eq(lg.nsegs, 1);
    cr_assert(plog_active(&lg)->indexed);
    reopen();
    cr_assert(plog_active(&lg)->indexed);
    struct seg_entry e;
    cr_assert_eq(plog_entry(&lg, 0, &e), 0);
    cr_assert_eq(e.len, 4);
}

Test(plog, a_raft_log_needs_no_indexed_segments)
{
    plog_close(&lg);
    cr_assert_eq(plog_open_raft(&lg, dir, false), 0);
    cr_assert_eq(append_opaque("x\ny\n", 4), 0);
    cr_assert_not(plog_active(&lg)->indexed, "a Raft log never rebuilds lines anyway");
}
