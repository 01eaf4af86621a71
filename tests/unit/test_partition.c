/*
 * test_partition — the broker's partitions and topics on a real libuv loop
 * (broker/broker.h): an append is acknowledged only after the loop ran its
 * fdatasync job, readers never see uncommitted bytes, concurrent appends share
 * fdatasyncs (group commit), a failed fdatasync or a full disk leaves nothing
 * behind, and topics grow, keep settings, delete and reopen as documented.
 */
#include "broker/broker.h"
#include "broker/record.h"
#include "broker/segment.h"
#include "broker/sysio.h"
#include "tests/unit/helpers.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <uv.h>

static char *tmp;
static uv_loop_t loop;
static struct broker *b;
static struct mk_config cfg;

/* fdatasync calls counted through the sysio table (thread-pool jobs call it). */
static atomic_int nsync;
static int (*real_fdatasync)(int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);

static int counting_fdatasync(int fd)
{
    atomic_fetch_add(&nsync, 1);
    return real_fdatasync(fd);
}

static int failing_fdatasync(int fd)
{
    (void)fd;
    atomic_fetch_add(&nsync, 1);
    return -EIO;
}

static ssize_t enospc_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    (void)fd;
    (void)iov;
    (void)cnt;
    (void)off;
    return -ENOSPC;
}

static void setup(void)
{
    sysio_reset();
    real_fdatasync = sysio.fdatasync;
    real_pwritev = sysio.pwritev;
    atomic_store(&nsync, 0);
    tmp = th_mkdtemp();
    cfg_defaults(&cfg);
    cr_assert_eq(uv_loop_init(&loop), 0);
    b = NULL;
}

static void open_broker(void)
{
    long holder = 0;
    cr_assert_eq(broker_open(&b, tmp, &cfg, &holder), 0);
    uv_update_time(&loop);
    broker_start(b, &loop);
}

/* Drains background work and closes the broker, as the daemon does at exit. */
static void close_broker(void)
{
    broker_quiesce(b);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_not(broker_busy(b));
    broker_close(b);
    b = NULL;
}

static void teardown(void)
{
    sysio_reset();
    if (b)
        close_broker();
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
    th_rmdir(tmp);
}

TestSuite(partition, .init = setup, .fini = teardown, .timeout = 60);

/* --------------------------------------------------------------- helpers */

struct ack {
    int calls;
    int status;
    int syncs; /* fdatasync calls seen when the callback ran */
    int order; /* sequence number of the callback among all acks */
};
static int ack_seq;

static void on_ack(void *arg, int status)
{
    struct ack *a = arg;
    a->calls++;
    a->status = status;
    a->syncs = atomic_load(&nsync);
    a->order = ack_seq++;
}

static int append(struct part *p, const char *text, struct ack *a)
{
    uint32_t lens[64];
    size_t n = th_lens(text, strlen(text), lens, 64);
    struct iovec iov = {(void *)text, strlen(text)};
    return part_append(p, &iov, 1, lens, n, on_ack, a);
}

/* Runs the loop until every ack in a[0..n) was called (or 20 s passed). */
static void run_until_acked(struct ack *a, size_t n)
{
    uint64_t deadline = uv_hrtime() + 20ull * 1000000000ull;
    for (;;) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += a[i].calls > 0;
        if (done == n)
            return;
        cr_assert(uv_hrtime() < deadline, "acks never came");
        uv_run(&loop, UV_RUN_ONCE);
    }
}

static void run_until_idle(void)
{
    uint64_t deadline = uv_hrtime() + 20ull * 1000000000ull;
    while (broker_busy(b)) {
        cr_assert(uv_hrtime() < deadline, "background work never ended");
        uv_run(&loop, UV_RUN_ONCE);
    }
}

static struct part *make_topic(const char *name)
{
    struct topic *t = NULL;
    cr_assert_eq(topic_create(b, name, NULL, &t), 0);
    cr_assert_not_null(t);
    struct part *p = topic_part(t, 0);
    cr_assert_not_null(p);
    return p;
}

/* The committed bytes of p from its first position, through part_read. */
static size_t read_all(struct part *p, char *buf, size_t cap)
{
    struct part_info pi;
    part_info(p, &pi);
    uint64_t pos = pi.first_pos;
    size_t got = 0;
    for (;;) {
        int fd;
        uint64_t fdoff;
        size_t n;
        cr_assert_eq(part_read(p, pos, cap - got, &fd, &fdoff, &n), 0);
        if (n == 0)
            return got;
        th_pread(fd, buf + got, n, fdoff);
        got += n;
        pos += n;
    }
}

static const char *log_path(char *buf, const char *topic, int part)
{
    return th_path(buf, "%s/topics/%s/%d/%020d.log", tmp, topic, part, 0);
}

/* ------------------------------------------------------------ group commit */

Test(partition, append_is_acknowledged_only_after_fdatasync)
{
    open_broker();
    struct part *p = make_topic("t");
    sysio.fdatasync = counting_fdatasync;
    struct ack a = {0};
    cr_assert_eq(append(p, "hello\n", &a), 0);
    cr_assert_eq(a.calls, 0, "acknowledged before the loop ran the fdatasync job");
    run_until_acked(&a, 1);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.status, 0);
    cr_assert_geq(a.syncs, 1, "acknowledged without an fdatasync");
    struct part_info pi;
    part_info(p, &pi);
    cr_assert_eq(pi.end_pos, 6);
    cr_assert_eq(pi.next_off, 1);
}

Test(partition, reads_never_show_uncommitted_records)
{
    open_broker();
    struct part *p = make_topic("t");
    struct ack a = {0};
    cr_assert_eq(append(p, "hello\n", &a), 0);
    struct part_info pi;
    part_info(p, &pi);
    cr_assert_eq(pi.end_pos, 0);
    cr_assert_eq(pi.next_off, 0);
    int fd;
    uint64_t fdoff;
    size_t n = 99;
    cr_assert_eq(part_read(p, 0, 100, &fd, &fdoff, &n), 0);
    cr_assert_eq(n, 0);
    run_until_acked(&a, 1);
    cr_assert_eq(part_read(p, 0, 100, &fd, &fdoff, &n), 0);
    cr_assert_eq(n, 6);
}

Test(partition, part_read_clamps_to_the_committed_end)
{
    open_broker();
    struct part *p = make_topic("t");
    struct ack a = {0}, c = {0};
    cr_assert_eq(append(p, "aaaa\n", &a), 0);
    run_until_acked(&a, 1);
    cr_assert_eq(append(p, "bbbbbbbb\n", &c), 0);
    int fd;
    uint64_t fdoff;
    size_t n;
    cr_assert_eq(part_read(p, 0, 100, &fd, &fdoff, &n), 0);
    cr_assert_eq(n, 5, "read past the commit point");
    cr_assert_eq(part_read(p, 3, 100, &fd, &fdoff, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(part_read(p, 5, 100, &fd, &fdoff, &n), 0);
    cr_assert_eq(n, 0);
    run_until_acked(&c, 1);
    char buf[64];
    cr_assert_eq(read_all(p, buf, sizeof(buf)), 14);
    cr_assert_arr_eq(buf, "aaaa\nbbbbbbbb\n", 14);
}

Test(partition, concurrent_appends_share_fdatasyncs)
{
    open_broker();
    struct part *p = make_topic("t");
    sysio.fdatasync = counting_fdatasync;
    enum { N = 8 };
    struct ack a[N] = {{0}};
    for (int i = 0; i < N; i++)
        cr_assert_eq(append(p, "rec\n", &a[i]), 0);
    run_until_acked(a, N);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(a[i].calls, 1);
        cr_assert_eq(a[i].status, 0);
        cr_assert_eq(a[i].order, i, "acks out of append order");
    }
    int syncs = atomic_load(&nsync);
    cr_assert_geq(syncs, 1);
    cr_assert_lt(syncs, N, "%d fdatasyncs for %d appends: no group commit", syncs, N);
    struct part_info pi;
    part_info(p, &pi);
    cr_assert_eq(pi.next_off, N);
    cr_assert_eq(pi.end_pos, 4 * N);
}

Test(partition, failed_fdatasync_fails_every_waiter_and_undoes_their_records)
{
    open_broker();
    struct part *p = make_topic("t");
    struct ack k = {0};
    cr_assert_eq(append(p, "keep\n", &k), 0);
    run_until_acked(&k, 1);
    cr_assert_eq(k.status, 0);

    sysio.fdatasync = failing_fdatasync;
    struct ack a[3] = {{0}};
    cr_assert_eq(append(p, "lost-1\n", &a[0]), 0);
    cr_assert_eq(append(p, "lost-2\nlost-3\n", &a[1]), 0);
    cr_assert_eq(append(p, "lost-4\n", &a[2]), 0);
    run_until_acked(a, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(a[i].calls, 1);
        cr_assert_eq(a[i].status, -EIO, "waiter %d", i);
    }
    struct part_info pi;
    part_info(p, &pi);
    cr_assert_eq(pi.end_pos, 5);
    cr_assert_eq(pi.next_off, 1);
    char lp[PATH_MAX];
    cr_assert_eq(th_size(log_path(lp, "t", 0)), 5, "uncommitted bytes left in the .log");

    sysio.fdatasync = real_fdatasync;
    struct ack c = {0};
    cr_assert_eq(append(p, "after\n", &c), 0);
    run_until_acked(&c, 1);
    cr_assert_eq(c.status, 0);
    char buf[64];
    cr_assert_eq(read_all(p, buf, sizeof(buf)), 11);
    cr_assert_arr_eq(buf, "keep\nafter\n", 11);
    part_info(p, &pi);
    cr_assert_eq(pi.next_off, 2);
}

Test(partition, enospc_on_write_is_returned_and_leaves_nothing)
{
    open_broker();
    struct part *p = make_topic("t");
    struct ack k = {0};
    cr_assert_eq(append(p, "keep\n", &k), 0);
    run_until_acked(&k, 1);

    sysio.pwritev = enospc_pwritev;
    struct ack a = {0};
    cr_assert_eq(append(p, "nope\n", &a), -ENOSPC);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(a.calls, 0, "the callback of a refused append ran");
    char lp[PATH_MAX], ip[PATH_MAX];
    log_path(lp, "t", 0);
    th_path(ip, "%s/topics/t/0/%020d.idx", tmp, 0);
    cr_assert_eq(th_size(lp), 5);
    cr_assert_eq(th_size(ip), SEG_HDR_SIZE + SEG_ENTRY_SIZE);
    struct part_info pi;
    part_info(p, &pi);
    cr_assert_eq(pi.end_pos, 5);

    sysio.pwritev = real_pwritev;
    cr_assert_eq(append(p, "later\n", &a), 0);
    run_until_acked(&a, 1);
    cr_assert_eq(a.status, 0);
    char buf[64];
    cr_assert_eq(read_all(p, buf, sizeof(buf)), 11);
    cr_assert_arr_eq(buf, "keep\nlater\n", 11);
}

Test(partition, fsync_never_commits_at_once)
{
    cfg.fsync = MK_FSYNC_NEVER;
    open_broker();
    struct part *p = make_topic("t");
    sysio.fdatasync = counting_fdatasync;
    struct ack a = {0};
    cr_assert_eq(append(p, "fast\n", &a), 0);
    cr_assert_eq(a.calls, 1, "not acknowledged before part_append returned");
    cr_assert_eq(a.status, 0);
    cr_assert_eq(atomic_load(&nsync), 0);
    struct part_info pi;
    part_info(p, &pi);
    cr_assert_eq(pi.end_pos, 5);
    cr_assert_eq(pi.next_off, 1);
}

Test(partition, part_sync_under_fsync_never_makes_data_durable)
{
    cfg.fsync = MK_FSYNC_NEVER;
    open_broker();
    struct part *p = make_topic("t");
    struct ack a = {0}, s = {0};
    cr_assert_eq(append(p, "x\n", &a), 0);
    sysio.fdatasync = counting_fdatasync;
    cr_assert_eq(part_sync(p, on_ack, &s), 0);
    run_until_acked(&s, 1);
    cr_assert_eq(s.status, 0);
    cr_assert_geq(s.syncs, 1);
}

Test(partition, empty_append_is_acknowledged_at_once)
{
    open_broker();
    struct part *p = make_topic("t");
    struct ack a = {0};
    cr_assert_eq(part_append(p, NULL, 0, NULL, 0, on_ack, &a), 0);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.status, 0);
}

/* ------------------------------------------------------------------ topics */

Test(partition, topic_create_refuses_bad_names_and_duplicates)
{
    open_broker();
    struct topic *t;
    cr_assert_eq(topic_create(b, ".hidden", NULL, &t), -EINVAL);
    cr_assert_eq(topic_create(b, "a/b", NULL, &t), -EINVAL);
    make_topic("orders");
    cr_assert_eq(topic_create(b, "orders", NULL, &t), -EEXIST);
    cr_assert_eq(topic_count(b), 1);
    char p[PATH_MAX];
    cr_assert_not(th_exists(th_path(p, "%s/topics/.hidden", tmp)));
}

Test(partition, topic_partitions_grow_and_never_shrink)
{
    cfg.num_partitions = 2;
    open_broker();
    make_topic("t");
    struct topic *t = topic_find(b, "t");
    cr_assert_eq(topic_partitions(t), 2);
    cr_assert_eq(topic_set(b, t, "partitions", "4"), 0);
    cr_assert_eq(topic_partitions(t), 4);
    cr_assert_not_null(topic_part(t, 3));
    char p[PATH_MAX];
    cr_assert(th_exists(th_path(p, "%s/topics/t/3", tmp)));
    cr_assert_eq(topic_set(b, t, "partitions", "3"), -EINVAL);
    cr_assert_eq(topic_set(b, t, "partitions", "0"), -EINVAL);
    cr_assert_eq(topic_set(b, t, "partitions", "many"), -EINVAL);
    cr_assert_eq(topic_set(b, t, "partitions", "4"), 0, "the same count is no change");
    cr_assert_eq(topic_partitions(t), 4);
    char buf[32];
    cr_assert_eq(topic_get(b, t, "partitions", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "4");

    struct ack a = {0};
    cr_assert_eq(append(topic_part(t, 3), "new\n", &a), 0);
    run_until_acked(&a, 1);
    cr_assert_eq(a.status, 0);
    close_broker();
    open_broker();
    t = topic_find(b, "t");
    cr_assert_not_null(t);
    cr_assert_eq(topic_partitions(t), 4);
    struct part_info pi;
    part_info(topic_part(t, 3), &pi);
    cr_assert_eq(pi.next_off, 1);
}

Test(partition, topic_settings_get_set_unset)
{
    open_broker();
    make_topic("t");
    struct topic *t = topic_find(b, "t");
    char buf[32];
    cr_assert_eq(topic_get(b, t, "retention.ms", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "604800000");
    cr_assert_eq(topic_set(b, t, "retention.ms", "1000"), 0);
    cr_assert_eq(topic_get(b, t, "retention.ms", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "1000");
    cr_assert_eq(topic_set(b, t, "retention.ms", "-2"), -EINVAL);
    cr_assert_eq(topic_set(b, t, "segment.bytes", "12"), -EINVAL);
    cr_assert_eq(topic_get(b, t, "retention.ms", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "1000", "a refused value changed the setting");
    cr_assert_eq(topic_get(b, t, "no.such", buf, sizeof(buf)), -ENOENT);
    cr_assert_eq(topic_set(b, t, "no.such", "1"), -ENOENT);
    cr_assert_eq(topic_unset(b, t, "no.such"), -ENOENT);
    cr_assert_eq(topic_unset(b, t, "partitions"), -EPERM);
    cr_assert_eq(topic_unset(b, t, "retention.ms"), 0);
    cr_assert_eq(topic_get(b, t, "retention.ms", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "604800000");
}

Test(partition, topic_settings_survive_a_restart)
{
    open_broker();
    make_topic("t");
    cr_assert_eq(topic_set(b, topic_find(b, "t"), "segment.bytes", "4096"), 0);
    cr_assert_eq(topic_set(b, topic_find(b, "t"), "retention.bytes", "-1"), 0);
    close_broker();
    open_broker();
    char buf[32];
    struct topic *t = topic_find(b, "t");
    cr_assert_not_null(t);
    cr_assert_eq(topic_get(b, t, "segment.bytes", buf, sizeof(buf)), 0);
    cr_assert_str_eq(buf, "4096");
}

Test(partition, topic_segment_bytes_override_rolls_segments)
{
    open_broker();
    struct part *p = make_topic("t");
    cr_assert_eq(topic_set(b, topic_find(b, "t"), "segment.bytes", "64"), 0);
    struct ack a[4] = {{0}};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(append(p, "0123456789012345678901234567890\n", &a[i]), 0);
    run_until_acked(a, 4);
    struct part_info pi;
    part_info(p, &pi);
    cr_assert_eq(pi.segments, 2);
    char buf[256];
    cr_assert_eq(read_all(p, buf, sizeof(buf)), 128);
}

/* The once-a-second housekeeping applies retention (reads below the first
 * retained position then fail with ENODATA, positions above keep their bytes)
 * and writes the index checkpoint at the commit point. */
Test(partition, housekeeping_applies_retention_and_checkpoints)
{
    open_broker();
    struct part *p = make_topic("t");
    struct topic *t = topic_find(b, "t");
    cr_assert_eq(topic_set(b, t, "segment.bytes", "64"), 0);
    cr_assert_eq(topic_set(b, t, "retention.bytes", "0"), 0);
    static const char rec[] = "0123456789012345678901234567890\n"; /* 32 bytes */
    struct ack a[5] = {{0}};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(append(p, rec, &a[i]), 0);
    run_until_acked(a, 5);
    struct part_info pi;
    part_info(p, &pi);
    cr_assert_eq(pi.segments, 3);
    cr_assert_eq(pi.first_pos, 0);

    char ck[PATH_MAX];
    th_path(ck, "%s/topics/t/0/checkpoint", tmp);
    uint64_t deadline = uv_hrtime() + 10ull * 1000000000ull;
    for (;;) {
        part_info(p, &pi);
        if (pi.segments == 1 && th_exists(ck) && !broker_busy(b))
            break;
        cr_assert(uv_hrtime() < deadline, "housekeeping never ran");
        uv_run(&loop, UV_RUN_ONCE);
    }
    cr_assert_eq(pi.first_pos, 128);
    cr_assert_eq(pi.first_off, 4);
    cr_assert_eq(pi.end_pos, 160);
    int fd;
    uint64_t fdoff;
    size_t n;
    cr_assert_eq(part_read(p, 0, 10, &fd, &fdoff, &n), -ENODATA);
    cr_assert_eq(part_read(p, 127, 10, &fd, &fdoff, &n), -ENODATA);
    char buf[64];
    cr_assert_eq(read_all(p, buf, sizeof(buf)), 32);
    cr_assert_arr_eq(buf, rec, 32);
    char *text = th_slurp(ck, NULL);
    cr_assert_str_eq(text, "5\n");
    free(text);
}

Test(partition, topic_delete_makes_a_held_partition_stale)
{
    open_broker();
    struct part *p = make_topic("t");
    struct ack a = {0};
    cr_assert_eq(append(p, "x\n", &a), 0);
    run_until_acked(&a, 1);
    part_ref(p);
    cr_assert_eq(topic_delete(b, "t"), 0);
    cr_assert(part_deleted(p));
    cr_assert_null(part_topic(p));
    cr_assert_null(topic_find(b, "t"));
    cr_assert_eq(topic_count(b), 0);
    struct ack c = {0};
    cr_assert_eq(append(p, "y\n", &c), -ESTALE);
    int fd;
    uint64_t fdoff;
    size_t n;
    cr_assert_eq(part_read(p, 0, 10, &fd, &fdoff, &n), -ESTALE);
    cr_assert_eq(part_sync(p, on_ack, &c), -ESTALE);
    cr_assert_eq(c.calls, 0);
    char path[PATH_MAX];
    cr_assert_not(th_exists(th_path(path, "%s/topics/t", tmp)));
    run_until_idle();
    cr_assert_not(th_exists(th_path(path, "%s/trash/del-1", tmp)), "files not removed");
    part_unref(p);
    cr_assert_eq(topic_delete(b, "t"), -ENOENT);
    /* The name is free again, for a new and empty topic. */
    struct part *q = make_topic("t");
    struct part_info pi;
    part_info(q, &pi);
    cr_assert_eq(pi.next_off, 0);
    cr_assert_neq(topic_id(topic_find(b, "t")), 1);
}

Test(partition, a_waiter_is_answered_once_when_its_topic_is_deleted)
{
    open_broker();
    struct part *p = make_topic("t");
    struct ack a = {0};
    cr_assert_eq(append(p, "x\n", &a), 0);
    cr_assert_eq(topic_delete(b, "t"), 0);
    run_until_acked(&a, 1);
    run_until_idle();
    cr_assert_eq(a.calls, 1);
}

/* ------------------------------------------------------------------ broker */

Test(partition, broker_open_twice_on_one_dir_is_ebusy)
{
    open_broker();
    struct broker *other = NULL;
    long holder = 0;
    cr_assert_eq(broker_open(&other, tmp, &cfg, &holder), -EBUSY);
    cr_assert_null(other);
    cr_assert_eq(holder, (long)getpid());
}

Test(partition, close_and_reopen_keeps_every_record)
{
    open_broker();
    struct part *p = make_topic("t");
    enum { ROUNDS = 5, PER = 10 };
    struct ack a[ROUNDS] = {{0}};
    char text[PER * 8 + 1], all[ROUNDS * PER * 8 + 1];
    size_t total = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < PER; i++)
            snprintf(text + 8 * i, 9, "r%03u-%02u\n", (unsigned)r % 1000u, (unsigned)i % 100u);
        memcpy(all + total, text, PER * 8);
        total += PER * 8;
        cr_assert_eq(append(p, text, &a[r]), 0);
    }
    run_until_acked(a, ROUNDS);
    close_broker();

    open_broker();
    struct broker_recovery rec;
    broker_recovery(b, &rec);
    cr_assert_eq(rec.topics, 1);
    cr_assert_eq(rec.partitions, 1);
    cr_assert_eq(rec.verified, 0, "a clean close leaves nothing to verify");
    cr_assert_eq(rec.dropped_bytes, 0);
    struct topic *t = topic_find(b, "t");
    cr_assert_not_null(t);
    p = topic_part(t, 0);
    struct part_info pi;
    part_info(p, &pi);
    cr_assert_eq(pi.next_off, ROUNDS * PER);
    cr_assert_eq(pi.end_pos, total);
    char buf[sizeof(all)];
    cr_assert_eq(read_all(p, buf, sizeof(buf)), total);
    cr_assert_arr_eq(buf, all, total);
}

Test(partition, status_lists_topics_and_partitions)
{
    open_broker();
    struct part *p = make_topic("orders");
    struct ack a = {0};
    cr_assert_eq(append(p, "x\n", &a), 0);
    run_until_acked(&a, 1);
    char *text;
    size_t len;
    cr_assert_eq(broker_status(b, &text, &len), 0);
    cr_assert_eq(strlen(text), len);
    cr_assert_not_null(strstr(text, "topic=orders "));
    cr_assert_not_null(strstr(text, "partition=orders/0 "));
    cr_assert_not_null(strstr(text, " offset.next=1 "));
    cr_assert_not_null(strstr(text, " position.end=2 "));
    free(text);
}

/* A writer answered by the group commit often sends its next record at once:
 * an append made from inside an acknowledgement must start exactly one new
 * fdatasync job and be acknowledged in turn (the loop's one-request-at-a-time
 * writers chain like this). */
struct chain {
    struct part *p;
    int left, acked, status;
};

static void on_chain(void *arg, int status)
{
    struct chain *c = arg;
    c->acked++;
    if (status != 0)
        c->status = status;
    if (status == 0 && c->left-- > 0) {
        static const char rec[] = "next\n";
        uint32_t len = sizeof(rec) - 1;
        struct iovec iov = {(void *)rec, len};
        cr_assert_eq(part_append(c->p, &iov, 1, &len, 1, on_chain, c), 0);
    }
}

Test(partition, an_append_from_an_acknowledgement_is_committed_in_turn)
{
    open_broker();
    struct part *p = make_topic("t");
    /* A second append queued behind the first, so that the first job ends
     * with waiters left over while the chain adds more. */
    struct chain c = {.p = p, .left = 20};
    struct ack other = {0};
    static const char rec[] = "first\n";
    uint32_t len = sizeof(rec) - 1;
    struct iovec iov = {(void *)rec, len};
    cr_assert_eq(part_append(p, &iov, 1, &len, 1, on_chain, &c), 0);
    cr_assert_eq(append(p, "other\n", &other), 0);
    for (int i = 0; i < 2000 && (c.acked < 21 || other.calls < 1); i++)
        uv_run(&loop, UV_RUN_ONCE);
    cr_assert_eq(c.status, 0);
    cr_assert_eq(c.acked, 21);
    cr_assert_eq(other.calls, 1);
    struct part_info pi;
    part_info(p, &pi);
    cr_assert_eq(pi.next_off, 22);
}

/* ------------------------------------------------- data dir and ownership */

static int (*real_open)(const char *, int, mode_t);
static int enospc_open_for_create(const char *path, int flags, mode_t mode)
{
    if (flags & O_CREAT)
        return -ENOSPC; /* a full disk: nothing new can be made */
    return real_open(path, flags, mode);
}

Test(partition, a_reopen_writes_no_metadata_so_a_full_disk_can_start)
{
    open_broker();
    make_topic("t");
    close_broker();
    real_open = sysio.open;
    sysio.open = enospc_open_for_create;
    open_broker(); /* asserts success */
    sysio_reset();
    cr_assert_not_null(topic_find(b, "t"));
}

Test(partition, a_dir_that_is_not_ours_is_refused_and_left_untouched)
{
    char path[PATH_MAX];
    th_append_raw(th_path(path, "%s/notes.txt", tmp), "mine\n", 5);
    cr_assert_eq(broker_dir_check(tmp), -ENOTEMPTY);
    struct broker *other = NULL;
    long holder = 0;
    cr_assert_eq(broker_open(&other, tmp, &cfg, &holder), -ENOTEMPTY);
    cr_assert_not(th_exists(th_path(path, "%s/.lock", tmp)));
    cr_assert_not(th_exists(th_path(path, "%s/meta", tmp)));
    cr_assert(th_exists(th_path(path, "%s/notes.txt", tmp)));
}

Test(partition, an_empty_dir_or_one_with_lost_and_found_is_accepted)
{
    char path[PATH_MAX];
    cr_assert_eq(broker_dir_check(tmp), 0);
    cr_assert_eq(mkdir(th_path(path, "%s/lost+found", tmp), 0700), 0);
    cr_assert_eq(broker_dir_check(tmp), 0);
    open_broker();
    /* Once it has a meta file, anything else in it is no reason to refuse. */
    th_append_raw(th_path(path, "%s/mine.txt", tmp), "x\n", 2);
    cr_assert_eq(broker_dir_check(tmp), 0);
}

Test(partition, the_trash_keeps_what_minikafka_did_not_put_there)
{
    open_broker();
    make_topic("gone");
    cr_assert_eq(topic_delete(b, "gone"), 0);
    close_broker();
    char path[PATH_MAX], left[PATH_MAX];
    th_append_raw(th_path(path, "%s/trash/precious", tmp), "keep\n", 5);
    cr_assert_eq(mkdir(th_path(left, "%s/trash/new-77", tmp), 0755), 0);
    open_broker();
    cr_assert(th_exists(path));
    cr_assert_not(th_exists(left), "an interrupted create is cleaned up");
}

Test(partition, owners_and_modes_persist)
{
    open_broker();
    struct mk_owner o = {.uid = 65534, .gid = 65534, .mode = 0750};
    struct topic *t = NULL;
    cr_assert_eq(topic_create(b, "owned", &o, &t), 0);
    cr_assert_eq(topic_owner(t)->uid, 65534);
    struct mk_owner o2 = {.uid = 12, .gid = 34, .mode = 01777};
    cr_assert_eq(topic_set_owner(b, t, &o2), 0);
    struct mk_owner root = {.uid = 5, .gid = 6, .mode = 01777};
    cr_assert_eq(broker_set_root_owner(b, &root), 0);
    /* Without an owner, a topic gets the root's, mode 0755. */
    struct topic *plain = NULL;
    cr_assert_eq(topic_create(b, "plain", NULL, &plain), 0);
    cr_assert_eq(topic_owner(plain)->uid, 5);
    cr_assert_eq(topic_owner(plain)->mode, 0755);
    close_broker();
    open_broker();
    t = topic_find(b, "owned");
    cr_assert_not_null(t);
    cr_assert_eq(topic_owner(t)->uid, 12);
    cr_assert_eq(topic_owner(t)->gid, 34);
    cr_assert_eq(topic_owner(t)->mode, 01777);
    cr_assert_eq(broker_root_owner(b)->uid, 5);
    cr_assert_eq(broker_root_owner(b)->gid, 6);
    cr_assert_eq(broker_root_owner(b)->mode, 01777);
}

Test(partition, a_topic_of_many_partitions_is_synced_once_not_per_file)
{
    cfg.num_partitions = 50;
    open_broker();
    sysio.fdatasync = counting_fdatasync;
    struct topic *t;
    cr_assert_eq(topic_create(b, "many", NULL, &t), 0);
    int creating = atomic_load(&nsync);
    /* Four fdatasyncs per partition's segment would be 200; the topic
     * file and its directories are a handful, the rest is one syncfs. */
    cr_assert_lt(creating, 20, "%d fdatasyncs to create 50 partitions", creating);
    cr_assert_eq(topic_partitions(t), 50);
    atomic_store(&nsync, 0);
    cr_assert_eq(topic_set(b, t, "partitions", "100"), 0);
    cr_assert_lt(atomic_load(&nsync), 20, "%d fdatasyncs to add 50 partitions",
                 atomic_load(&nsync));
    close_broker();
    /* All of it is there after a restart, and takes records. */
    sysio.fdatasync = real_fdatasync;
    open_broker();
    t = topic_find(b, "many");
    cr_assert_not_null(t);
    cr_assert_eq(topic_partitions(t), 100);
    struct ack a = {0};
    cr_assert_eq(append(topic_part(t, 99), "x\n", &a), 0);
    run_until_acked(&a, 1);
    cr_assert_eq(a.status, 0);
}

/* ------------------------------------------- records with side data (Kafka's) */

struct placed {
    int calls, status, syncs;
    uint64_t first;
};

static void on_placed(void *arg, int status, uint64_t first)
{
    struct placed *pl = arg;
    pl->calls++;
    pl->status = status;
    pl->first = first;
    pl->syncs = atomic_load(&nsync);
}

static void run_until_placed(struct placed *pl)
{
    uint64_t deadline = uv_hrtime() + 20ull * 1000000000ull;
    while (!pl->calls) {
        cr_assert(uv_hrtime() < deadline, "no answer");
        uv_run(&loop, UV_RUN_ONCE);
    }
}

Test(partition, records_with_side_data_and_newlines_read_back_whole_after_a_restart)
{
    sysio.fdatasync = counting_fdatasync;
    open_broker();
    struct part *p = make_topic("k");
    struct ack a = {0};
    cr_assert_eq(append(p, "plain\n", &a), 0);
    run_until_acked(&a, 1);
    /* Record 1: a value of two lines, a key; record 2: bytes 0 and 255. */
    static const char bytes[] = "two\nlines\n\0\xff\n";
    uint8_t aux[64];
    struct rec_kafka k = {.flags = RK_KEY, .ts = 1234, .key = (const uint8_t *)"key", .key_len = 3};
    size_t alen = aux_put_kafka(aux, &k);
    const struct part_rec recs[] = {{.len = 10, .aux = aux, .aux_len = (uint32_t)alen},
                                    {.len = 3}};
    struct iovec iov = {(void *)bytes, sizeof(bytes) - 1};
    struct placed pl = {0};
    cr_assert_eq(part_append_recs(p, &iov, 1, recs, 2, NULL, on_placed, &pl), 0);
    run_until_placed(&pl);
    cr_assert_eq(pl.status, 0);
    cr_assert_eq(pl.first, 1);
    /* Once more, now in the indexed segment the first one rolled to. */
    int before = atomic_load(&nsync);
    struct placed pl2 = {0};
    cr_assert_eq(part_append_recs(p, &iov, 1, recs, 2, NULL, on_placed, &pl2), 0);
    run_until_placed(&pl2);
    cr_assert_eq(pl2.status, 0);
    cr_assert_eq(pl2.first, 3);
    cr_assert_eq(pl2.syncs - before, 3, "the .log, .idx and .aux are synced before the answer");
    close_broker();

    open_broker();
    p = topic_part(topic_find(b, "k"), 0);
    struct part_info pi;
    part_info(p, &pi);
    cr_assert_eq(pi.next_off, 5);
    struct part_entry e;
    uint8_t got[64];
    cr_assert_eq(part_entry(p, 1, &e, got, sizeof(got)), 0);
    cr_assert(e.record);
    cr_assert_eq(e.pos, 6);
    cr_assert_eq(e.len, 10, "one record of two lines");
    cr_assert_eq(e.aux_len, alen);
    struct rec_kafka back;
    cr_assert_eq(aux_get_kafka(got, e.aux_len, &back), 0);
    cr_assert_eq(back.ts, 1234);
    cr_assert_eq(back.key_len, 3);
    cr_assert_arr_eq(back.key, "key", 3);
    cr_assert_eq(part_entry(p, 2, &e, NULL, 0), 0);
    cr_assert_eq(e.len, 3);
    cr_assert_eq(part_entry(p, 5, &e, NULL, 0), -ERANGE);
    cr_assert_eq(part_entry(p, 1, &e, got, 2), -EMSGSIZE);
    char all[64];
    cr_assert_eq(read_all(p, all, sizeof(all)), 6 + 2 * (sizeof(bytes) - 1));
    cr_assert_arr_eq(all + 6, bytes, sizeof(bytes) - 1, "the file shows the bytes as they are");
}

Test(partition, records_that_do_not_end_in_a_newline_are_refused)
{
    open_broker();
    struct part *p = make_topic("k");
    const struct part_rec r = {.len = 3};
    struct iovec iov = {(void *)"abc", 3};
    struct placed pl = {0};
    cr_assert_eq(part_append_recs(p, &iov, 1, &r, 1, NULL, on_placed, &pl), -EINVAL);
    const struct part_rec r2 = {.len = 4};
    cr_assert_eq(part_append_recs(p, &iov, 1, &r2, 1, NULL, on_placed, &pl), -EINVAL, "past the bytes");
    cr_assert_eq(pl.calls, 0);
}

Test(partition, offset_for_time_finds_the_first_record_at_or_after_it)
{
    open_broker();
    struct part *p = make_topic("t");
    struct ack a[3] = {{0}};
    cr_assert_eq(append(p, "a\nb\n", &a[0]), 0);
    run_until_acked(a, 1);
    struct part_entry e;
    cr_assert_eq(part_entry(p, 1, &e, NULL, 0), 0);
    int64_t t1 = e.ts;
    usleep(20000);
    cr_assert_eq(append(p, "c\n", &a[1]), 0);
    run_until_acked(&a[1], 1);
    cr_assert_eq(part_entry(p, 2, &e, NULL, 0), 0);
    cr_assert_gt(e.ts, t1);
    cr_assert_eq(part_offset_for_time(p, 0), 0);
    cr_assert_eq(part_offset_for_time(p, t1), 0);
    cr_assert_eq(part_offset_for_time(p, t1 + 1), 2);
    cr_assert_eq(part_offset_for_time(p, e.ts), 2);
    cr_assert_eq(part_offset_for_time(p, e.ts + 1), 3, "none: the end");
}

Test(partition, part_entries_reads_a_run_with_its_side_data_and_stops_at_a_segment_end)
{
    open_broker();
    struct part *p = make_topic("k");
    struct ack a = {0};
    cr_assert_eq(append(p, "plain\n", &a), 0); /* offset 0, no side data */
    run_until_acked(&a, 1);
    /* Offsets 1..3 with side data of 3 sizes (an indexed segment: a roll). */
    uint8_t aux[3][64];
    size_t alen[3];
    struct part_rec recs[3];
    for (int i = 0; i < 3; i++) {
        struct rec_kafka k = {.flags = RK_KEY, .ts = 100 + i, .key = (const uint8_t *)"kkkk", .key_len = (uint32_t)i + 1};
        alen[i] = aux_put_kafka(aux[i], &k);
        recs[i] = (struct part_rec){.len = 2, .aux = aux[i], .aux_len = (uint32_t)alen[i]};
    }
    struct iovec iov = {(void *)"a\nb\nc\n", 6};
    struct placed pl = {0};
    cr_assert_eq(part_append_recs(p, &iov, 1, recs, 3, NULL, on_placed, &pl), 0);
    run_until_placed(&pl);
    cr_assert_eq(pl.status, 0);
    struct part_entry e[8];
    size_t at[8], n;
    uint8_t buf[256];
    cr_assert_eq(part_entries(p, 0, 8, e, at, &n, buf, sizeof(buf)), 0);
    cr_assert_eq(n, 1, "the first segment ends after offset 0");
    cr_assert_eq(e[0].aux_len, 0);
    cr_assert_eq(part_entries(p, 1, 8, e, at, &n, buf, sizeof(buf)), 0);
    cr_assert_eq(n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(e[i].pos, 6 + 2 * (uint64_t)i);
        cr_assert_eq(e[i].aux_len, alen[i]);
        struct rec_kafka back;
        cr_assert_eq(aux_get_kafka(buf + at[i], e[i].aux_len, &back), 0);
        cr_assert_eq(back.ts, 100 + i);
        cr_assert_eq(back.key_len, (uint32_t)i + 1);
    }
    cr_assert_eq(part_entries(p, 1, 2, e, at, &n, buf, sizeof(buf)), 0);
    cr_assert_eq(n, 2, "at most max");
    cr_assert_eq(part_entries(p, 1, 8, e, at, &n, buf, alen[0] + alen[1]), 0);
    cr_assert_eq(n, 2, "as many as whose side data fits");
    cr_assert_eq(part_entries(p, 1, 8, e, at, &n, buf, alen[0] - 1), -EMSGSIZE, "not even the first");
    cr_assert_eq(part_entries(p, 4, 8, e, at, &n, buf, sizeof(buf)), 0);
    cr_assert_eq(n, 0, "at the commit point");
}
