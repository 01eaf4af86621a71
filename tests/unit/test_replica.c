/*
 * test_replica — Raft over the real segment store: 3 replicas in one
 * process, each with its own partition directory, on a message bus the test
 * controls (every message goes through the cluster port's frame codec), with
 * fdatasync jobs in the real libuv thread pool.  Checked: a leader is
 * elected, committed records are identical on every replica at identical
 * byte positions (NOOPs take offsets, never bytes), a crashed leader's
 * successor keeps every committed record and the old leader catches up, hard
 * state survives a restart, a replica rebuilt from an empty directory behind
 * the leader's retained start is reset to it, and garbage records are
 * refused before they reach the log.
 */
#include "broker/net/wire.h"
#include "broker/replica.h"
#include "tests/unit/helpers.h"

#include <criterion/criterion.h>
#include <uv.h>

#define N        3
#define SEG_SIZE 1024

static uv_loop_t loop;
static char *tmp;

struct rep {
    char dir[PATH_MAX];
    struct plog log;
    struct replica *r;
    bool up;
    uint64_t commit_off, commit_pos;
};
static struct rep reps[N + 1]; /* ids 1..N */
static bool cut[N + 1][N + 1]; /* cut[a][b]: a's messages to b are lost */

/* ------------------------------------------------------------ the bus */

struct frame {
    uint64_t to;
    struct wire_buf b;
    struct frame *next;
};
static struct frame *q_head, *q_tail;

static void on_send(void *ctx, uint64_t to, const struct raft_msg *m)
{
    struct rep *from = ctx;
    (void)from;
    struct frame *f = calloc(1, sizeof(*f));
    cr_assert_eq(wire_raft_encode(&f->b, 1, m), 0);
    f->to = to;
    if (q_tail)
        q_tail->next = f;
    else
        q_head = f;
    q_tail = f;
}

static void on_committed(void *ctx, uint64_t off, uint64_t pos)
{
    struct rep *p = ctx;
    cr_assert_geq(off, p->commit_off, "commit moved back");
    cr_assert_geq(pos, p->commit_pos);
    p->commit_off = off;
    p->commit_pos = pos;
}

/* Delivers what is queued now (not what delivery produces). */
static void deliver(void)
{
    struct frame *f = q_head;
    q_head = q_tail = NULL;
    while (f) {
        struct frame *next = f->next;
        struct wire_hdr h;
        cr_assert_eq(wire_hdr_decode(f->b.p, &h), 0);
        uint64_t group;
        struct raft_msg m;
        struct raft_entry *es;
        cr_assert_eq(wire_raft_decode(f->b.p + WIRE_HDR, h.length, 4096, &group, &m, &es), 0);
        struct rep *to = &reps[f->to];
        if (getenv("REPLICA_TRACE"))
            fprintf(stderr, "%llu->%llu %s term %llu idx %llu/%llu n=%zu commit %llu rej %d\n",
                    (unsigned long long)m.from, (unsigned long long)m.to, raft_msg_name(m.type),
                    (unsigned long long)m.term, (unsigned long long)m.index,
                    (unsigned long long)m.log_term, m.n_entries, (unsigned long long)m.commit,
                    m.reject);
        if (to->up && !cut[m.from][m.to])
            cr_assert_eq(replica_step(to->r, &m), 0);
        free(es);
        wire_buf_free(&f->b);
        free(f);
        f = next;
    }
}

static void start(int id)
{
    struct rep *p = &reps[id];
    cr_assert_eq(plog_open_raft(&p->log, p->dir, true), 0);
    struct raft_conf conf = {.n = N};
    for (int i = 0; i < N; i++)
        conf.servers[i] = (struct raft_server){.id = (uint64_t)i + 1, .voter = true};
    struct replica_options o = {.id = (uint64_t)id,
                                .conf = &conf,
                                .election_ticks = 10,
                                .heartbeat_ticks = 1,
                                .seed = (uint64_t)id * 7919,
                                .segment_bytes = SEG_SIZE,
                                .max_record = 1048588,
                                .segment_ms = INT64_MAX / 2};
    struct replica_io io = {.ctx = p, .send = on_send, .committed = on_committed};
    cr_assert_eq(replica_open(&p->r, &loop, &p->log, &o, &io), 0);
    p->up = true;
    p->commit_off = p->commit_pos = 0;
}

/* A crash: the replica stops at once; what the page cache holds stays (as
 * after kill -9). */
static void crash(int id)
{
    struct rep *p = &reps[id];
    replica_close(p->r);
    uv_run(&loop, UV_RUN_NOWAIT);
    p->r = NULL;
    p->up = false;
    plog_close(&p->log);
}

static void setup(void)
{
    memset(reps, 0, sizeof(reps));
    memset(cut, 0, sizeof(cut));
    q_head = q_tail = NULL;
    tmp = th_mkdtemp();
    cr_assert_eq(uv_loop_init(&loop), 0);
    for (int i = 1; i <= N; i++)
        th_path(reps[i].dir, "%s/r%d", tmp, i);
    for (int i = 1; i <= N; i++)
        start(i);
}

static void teardown(void)
{
    for (int i = 1; i <= N; i++)
        if (reps[i].up)
            crash(i);
    uv_run(&loop, UV_RUN_DEFAULT);
    while (q_head) {
        struct frame *f = q_head;
        q_head = f->next;
        wire_buf_free(&f->b);
        free(f);
    }
    cr_assert_eq(uv_loop_close(&loop), 0);
    th_rmdir(tmp);
}

TestSuite(replica, .init = setup, .fini = teardown, .timeout = 60);

/* One round: a tick everywhere, messages delivered, sync jobs finished. */
static void round_once(void)
{
    for (int i = 1; i <= N; i++)
        if (reps[i].up)
            replica_tick(reps[i].r);
    for (int k = 0; k < 4; k++) {
        deliver();
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    usleep(200);
}

static int leader(void)
{
    for (int i = 1; i <= N; i++)
        if (reps[i].up && raft_role(replica_raft(reps[i].r)) == RAFT_LEADER)
            return i;
    return 0;
}

#define ROUNDS_UNTIL(max, cond)                                                                    \
    do {                                                                                           \
        int k_;                                                                                    \
        for (k_ = 0; k_ < (max) && !(cond); k_++)                                                  \
            round_once();                                                                          \
        cr_assert((cond), "not reached in %d rounds: %s", (max), #cond);                           \
    } while (0)

/* Proposes `n` records "id-K\n" at the leader. */
static void propose(int lead, int from, int n)
{
    char buf[4096];
    uint32_t lens[64];
    size_t at = 0;
    cr_assert_leq(n, 64);
    for (int k = 0; k < n; k++) {
        int len = snprintf(buf + at, sizeof(buf) - at, "rec-%06d\n", from + k);
        lens[k] = (uint32_t)len;
        at += (size_t)len;
    }
    struct iovec iov = {buf, at};
    uint64_t first, term;
    cr_assert_eq(
        replica_propose(reps[lead].r, &iov, 1, lens, (size_t)n, 1000 + from, NULL, &first, &term), 0);
}

/* The committed bytes of replica id, as its partition file shows them. */
static char *committed_bytes(int id, size_t *len)
{
    struct rep *p = &reps[id];
    size_t n = p->commit_pos - plog_first_pos(&p->log);
    char *out = malloc(n + 1);
    size_t got = 0;
    uint64_t pos = plog_first_pos(&p->log);
    while (got < n) {
        int fd;
        uint64_t fdoff;
        size_t k;
        cr_assert_eq(plog_locate(&p->log, pos, n - got, &fd, &fdoff, &k), 0);
        cr_assert_gt(k, 0);
        th_pread(fd, out + got, k, fdoff);
        got += k;
        pos += k;
    }
    out[n] = '\0';
    *len = n;
    return out;
}

static bool all_committed(uint64_t off)
{
    for (int i = 1; i <= N; i++)
        if (reps[i].up && reps[i].commit_off < off)
            return false;
    return true;
}

/* Every up replica shows the same committed bytes at the same positions. */
static void assert_identical(void)
{
    size_t l0 = 0;
    char *b0 = NULL;
    uint64_t pos0 = 0, first0 = 0;
    for (int i = 1; i <= N; i++) {
        if (!reps[i].up)
            continue;
        size_t l;
        char *b = committed_bytes(i, &l);
        if (!b0) {
            b0 = b;
            l0 = l;
            pos0 = reps[i].commit_pos;
            first0 = plog_first_pos(&reps[i].log);
            continue;
        }
        cr_assert_eq(reps[i].commit_pos, pos0, "replica %d ends at another position", i);
        cr_assert_eq(plog_first_pos(&reps[i].log), first0);
        cr_assert_eq(l, l0);
        if (memcmp(b, b0, l) != 0) {
            size_t d = 0;
            while (b[d] == b0[d])
                d++;
            if (getenv("REPLICA_DUMP")) {
                FILE *f1 = fopen("/tmp/rep_a.txt", "w"), *f2 = fopen("/tmp/rep_b.txt", "w");
                fwrite(b0, 1, l0, f1);
                fwrite(b, 1, l, f2);
                fclose(f1);
                fclose(f2);
            }
            for (int k = 1; k <= N; k++)
                for (size_t g = 0; getenv("REPLICA_DUMP") && g < reps[k].log.nsegs; g++)
                    fprintf(stderr, "r%d seg %zu: off %llu pos %llu count %llu bytes %llu\n", k, g,
                            (unsigned long long)reps[k].log.segs[g].base_off,
                            (unsigned long long)reps[k].log.segs[g].base_pos,
                            (unsigned long long)reps[k].log.segs[g].count,
                            (unsigned long long)reps[k].log.segs[g].bytes);
            cr_assert_fail("replica %d shows other bytes from position %zu", i, d);
        }
        free(b);
    }
    free(b0);
}

/* ------------------------------------------------------------ tests */

Test(replica, a_leader_is_elected_and_records_are_identical_everywhere)
{
    ROUNDS_UNTIL(300, leader() != 0);
    int lead = leader();
    for (int k = 0; k < 10; k++)
        propose(lead, k * 20, 20);
    /* 200 records plus the leader's NOOP. */
    ROUNDS_UNTIL(300, all_committed(201));
    assert_identical();
    size_t len;
    char *b = committed_bytes(1, &len);
    cr_assert_eq(len, 200 * 11, "the NOOP shows no bytes");
    cr_assert_eq(memcmp(b, "rec-000000\nrec-000001\n", 22), 0);
    free(b);
    struct seg_entry e;
    cr_assert_eq(plog_entry(&reps[1].log, 0, &e), 0);
    cr_assert_eq(seg_kind_of(&e), SEG_NOOP, "offset 0 is the first leader's NOOP");
    cr_assert_eq(plog_entry(&reps[2].log, 5, &e), 0);
    cr_assert_eq(e.ts, 1000, "followers keep the leader's timestamp (%lld)", (long long)e.ts);
    cr_assert_gt(reps[1].log.nsegs, 1, "segments rolled on every replica");
}

Test(replica, a_crashed_leader_is_replaced_and_catches_up)
{
    ROUNDS_UNTIL(300, leader() != 0);
    int old = leader();
    propose(old, 0, 30);
    ROUNDS_UNTIL(300, all_committed(31));
    crash(old);
    ROUNDS_UNTIL(300, leader() != 0 && leader() != old);
    int lead = leader();
    propose(lead, 30, 30);
    ROUNDS_UNTIL(300, reps[lead].commit_off >= 62);
    start(old);
    ROUNDS_UNTIL(300, all_committed(62));
    assert_identical();
    size_t len;
    char *b = committed_bytes(old, &len);
    cr_assert_eq(len, 60 * 11, "every committed record, once");
    free(b);
}

Test(replica, an_uncommitted_suffix_of_a_cut_off_leader_is_replaced)
{
    ROUNDS_UNTIL(300, leader() != 0);
    int old = leader();
    propose(old, 0, 5);
    ROUNDS_UNTIL(300, all_committed(6));
    /* Cut the leader off, let it write records nobody else gets. */
    for (int i = 1; i <= N; i++)
        cut[old][i] = cut[i][old] = i != old;
    propose(old, 100, 10);
    ROUNDS_UNTIL(500, leader() != 0 && leader() != old);
    int lead = leader();
    propose(lead, 200, 7);
    for (int i = 1; i <= N; i++)
        cut[old][i] = cut[i][old] = false;
    ROUNDS_UNTIL(500, all_committed(reps[lead].commit_off) && reps[lead].commit_off >= 14 &&
                          raft_role(replica_raft(reps[old].r)) != RAFT_LEADER);
    ROUNDS_UNTIL(300, all_committed(reps[lead].commit_off));
    assert_identical();
    size_t len;
    char *b = committed_bytes(old, &len);
    cr_assert_null(strstr(b, "rec-000100"), "the cut-off leader's records are gone");
    cr_assert_not_null(strstr(b, "rec-000200"));
    free(b);
}

Test(replica, hard_state_survives_a_restart)
{
    ROUNDS_UNTIL(300, leader() != 0);
    int lead = leader();
    uint64_t term = raft_term(replica_raft(reps[lead].r));
    crash(lead);
    start(lead);
    cr_assert_geq(raft_term(replica_raft(reps[lead].r)), term);
    cr_assert_eq(reps[lead].log.hs_vote, (uint64_t)lead, "it voted for itself");
}

Test(replica, a_follower_behind_the_leaders_retained_start_is_reset_to_it)
{
    ROUNDS_UNTIL(300, leader() != 0);
    int lead = leader();
    propose(lead, 0, 10);
    ROUNDS_UNTIL(300, all_committed(11));
    /* One follower is cut off while 800 records are written and retention
     * deletes the oldest segments on the two others. */
    int victim = lead == 1 ? 2 : 1;
    for (int i = 1; i <= N; i++)
        cut[victim][i] = cut[i][victim] = i != victim;
    for (int k = 0; k < 20; k++)
        propose(lead, 10 + k * 40, 40);
    int other = 6 - lead - victim;
    ROUNDS_UNTIL(500, reps[lead].commit_off >= 811 && reps[other].commit_off >= 811);
    for (int i = 1; i <= N; i++) {
        if (i == victim)
            continue;
        size_t del = 0;
        cr_assert_eq(plog_retain(&reps[i].log, INT64_MAX / 4, 0, -1, reps[i].commit_off, &del), 0);
        cr_assert_geq(del, 1);
    }
    uint64_t first = plog_first_off(&reps[lead].log);
    uint64_t first_pos = plog_first_pos(&reps[lead].log);
    cr_assert_gt(first, plog_next_off(&reps[victim].log),
                 "the victim is behind the leader's start");
    for (int i = 1; i <= N; i++)
        cut[victim][i] = cut[i][victim] = false;
    ROUNDS_UNTIL(500, reps[victim].commit_off >= 811);
    cr_assert_eq(plog_first_off(&reps[victim].log), first, "it starts at the leader's start");
    cr_assert_eq(plog_first_pos(&reps[victim].log), first_pos, "at the same byte position");
    cr_assert_eq(plog_term_at(&reps[victim].log, first - 1),
                 plog_term_at(&reps[lead].log, first - 1));
    assert_identical();
    /* And it keeps up afterwards, across a restart. */
    crash(victim);
    start(victim);
    propose(lead, 900, 5);
    ROUNDS_UNTIL(300, all_committed(816));
    assert_identical();
}

Test(replica, garbage_records_are_refused_before_the_log)
{
    ROUNDS_UNTIL(300, leader() != 0);
    int lead = leader();
    int f = lead == 1 ? 2 : 1;
    uint64_t next = plog_next_off(&reps[f].log);
    static const char bad[] = "\x01\x00 not a payload"; /* too short, no newline */
    struct raft_entry e = {.term = raft_term(replica_raft(reps[lead].r)),
                           .index = next + 1,
                           .type = RAFT_ENTRY_NORMAL,
                           .buf = bad,
                           .len = sizeof(bad) - 1};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = (uint64_t)lead,
                         .to = (uint64_t)f,
                         .term = e.term,
                         .index = next,
                         .log_term = plog_term_at(&reps[f].log, next - 1),
                         .entries = &e,
                         .n_entries = 1};
    cr_assert_eq(replica_step(reps[f].r, &m), -EBADMSG);
    cr_assert_eq(plog_next_off(&reps[f].log), next);
    /* Payload codec edges. */
    int64_t ts;
    const uint8_t *a, *r;
    uint32_t al, rl;
    uint8_t buf[REPLICA_PAYLOAD_HDR + 4];
    replica_payload_encode(buf, 5, "k", 1, "ab\n", 3);
    cr_assert_eq(replica_payload_decode(buf, sizeof(buf), &ts, &a, &al, &r, &rl), 0);
    cr_assert_eq(ts, 5);
    cr_assert_eq(al, 1);
    cr_assert_eq(rl, 3);
    buf[10] = 200; /* side data longer than the payload */
    cr_assert_eq(replica_payload_decode(buf, sizeof(buf), &ts, &a, &al, &r, &rl), -EBADMSG);
}
