/*
 * test_groups — consumer groups (broker/groups.h) against a real single-node
 * broker on a libuv loop: Kafka's classic group protocol (join, sync,
 * heartbeat, leave; the first members held together for the initial delay;
 * rebalances when a member joins, leaves or misses its session timeout;
 * Kafka's error codes) and committed offsets, which are records of
 * __consumer_offsets and so survive a restart.
 *
 * Every wait is bounded (20 s); timeouts of members are the shortest the
 * module accepts (1000 ms), so the slowest test takes a few seconds.
 * Callback records live in static storage (jrec/srec): callbacks still held
 * when a failed test's teardown closes the broker land there, never in a
 * stack frame that is gone.
 */
#include "broker/broker.h"
#include "broker/groups.h"
#include "broker/sysio.h"
#include "tests/unit/helpers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <uv.h>

static char *tmp;
static uv_loop_t loop;
static struct broker *b;
static struct groups *gs;
static struct mk_config cfg;

/* ------------------------------------------------------------- records */

#define MAXM 8

/* What a join callback answered, copied (the answer lives during the call). */
struct joined {
    int calls;
    bool inside; /* the (last) callback ran inside group_join */
    int err;
    int32_t generation;
    char protocol[64], leader[128], member_id[128];
    size_t nmembers;
    char mid[MAXM][128];
    uint8_t meta[MAXM][64];
    size_t meta_len[MAXM];
    uint64_t at_ms; /* uv_now when it came */
};

struct synced {
    int calls;
    int err;
    uint8_t data[128];
    size_t len;
};

struct committed {
    int calls;
    int err;
};

static struct joined jpool[16];
static struct synced spool[16];
static struct committed cpool[16];
static size_t njrec, nsrec, ncrec;
static bool in_join; /* inside a group_join call */

static struct joined *jrec(void)
{
    cr_assert(njrec < sizeof(jpool) / sizeof(jpool[0]));
    return &jpool[njrec++];
}

static struct synced *srec(void)
{
    cr_assert(nsrec < sizeof(spool) / sizeof(spool[0]));
    return &spool[nsrec++];
}

static struct committed *crec(void)
{
    cr_assert(ncrec < sizeof(cpool) / sizeof(cpool[0]));
    return &cpool[ncrec++];
}

/* --------------------------------------------------------------- fixture */

static void setup(void)
{
    sysio_reset();
    tmp = th_mkdtemp();
    cfg_defaults(&cfg);
    cr_assert_eq(uv_loop_init(&loop), 0);
    b = NULL;
    gs = NULL;
    memset(jpool, 0, sizeof(jpool));
    memset(spool, 0, sizeof(spool));
    memset(cpool, 0, sizeof(cpool));
    njrec = nsrec = ncrec = 0;
}

static void open_broker(void)
{
    long holder = 0;
    cr_assert_eq(broker_open(&b, tmp, &cfg, &holder), 0);
    uv_update_time(&loop);
    cr_assert_eq(broker_start(b, &loop), 0);
    gs = broker_groups(b);
    cr_assert_not_null(gs);
}

/* Drains background work and closes the broker, as the daemon does at exit
 * (groups_close answers whatever is still held). */
static void close_broker(void)
{
    broker_quiesce(b);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_not(broker_busy(b));
    broker_close(b);
    b = NULL;
    gs = NULL;
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

TestSuite(groups, .init = setup, .fini = teardown, .timeout = 60);

/* --------------------------------------------------------------- helpers */

/* Runs the loop (without blocking) for ms milliseconds. */
static void run_for(int ms)
{
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000ull;
    while (uv_hrtime() < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

#define RUN_UNTIL(cond) TH_RUN_UNTIL(&loop, 20, cond)

struct where {
    int calls;
    int err;
    uint32_t node;
};

static void on_where(void *arg, int err, uint32_t node)
{
    struct where *w = arg;
    w->calls++;
    w->err = err;
    w->node = node;
}

static struct where where_rec;

/* Asks for the coordinator (making __consumer_offsets) and waits for it. */
static void start_coordinator(void)
{
    memset(&where_rec, 0, sizeof(where_rec));
    groups_coordinator(gs, on_where, &where_rec);
    RUN_UNTIL(where_rec.calls > 0);
    cr_assert_eq(where_rec.calls, 1);
    cr_assert_eq(where_rec.err, GERR_NONE);
    cr_assert_eq(where_rec.node, cfg.node_id);
}

/* A broker whose groups coordinate (the usual start of a test). */
static void start(void)
{
    open_broker();
    start_coordinator();
}

static void on_joined(void *arg, const struct group_joined *j)
{
    struct joined *o = arg;
    o->calls++;
    o->inside = in_join;
    o->err = j->err;
    o->generation = j->generation;
    o->at_ms = uv_now(&loop);
    cr_assert_not_null(j->protocol);
    cr_assert_not_null(j->leader);
    cr_assert_not_null(j->member_id);
    snprintf(o->protocol, sizeof(o->protocol), "%s", j->protocol);
    snprintf(o->leader, sizeof(o->leader), "%s", j->leader);
    snprintf(o->member_id, sizeof(o->member_id), "%s", j->member_id);
    cr_assert_leq(j->nmembers, MAXM);
    o->nmembers = j->nmembers;
    for (size_t i = 0; i < j->nmembers; i++) {
        snprintf(o->mid[i], sizeof(o->mid[i]), "%s", j->members[i].member_id);
        cr_assert_leq(j->members[i].meta_len, sizeof(o->meta[i]));
        if (j->members[i].meta_len)
            memcpy(o->meta[i], j->members[i].meta, j->members[i].meta_len);
        o->meta_len[i] = j->members[i].meta_len;
    }
}

/* A join request; zero fields take defaults (session and rebalance timeouts
 * 10 s, type "consumer", the one protocol "range" with metadata meta). */
struct jreq {
    const char *group, *member, *client, *type, *meta;
    int32_t session_ms, rebalance_ms;
    const struct group_protocol *protos;
    size_t nprotos;
};

static void join_req(const struct jreq *r, struct joined *out)
{
    const char *meta = r->meta ? r->meta : "m";
    struct group_protocol range = {"range", (const uint8_t *)meta, strlen(meta)};
    struct group_join j = {
        .group = r->group,
        .member_id = r->member ? r->member : "",
        .client_id = r->client ? r->client : "client",
        .client_host = "/127.0.0.1",
        .session_timeout_ms = r->session_ms ? r->session_ms : 10000,
        .rebalance_timeout_ms = r->rebalance_ms ? r->rebalance_ms : 10000,
        .protocol_type = r->type ? r->type : "consumer",
        .protocols = r->protos ? r->protos : &range,
        .nprotocols = r->protos ? r->nprotos : 1,
    };
    in_join = true;
    group_join(gs, &j, on_joined, out);
    in_join = false;
}

static void join(const char *group, const char *member, struct joined *out)
{
    join_req(&(struct jreq){.group = group, .member = member}, out);
}

static void on_synced(void *arg, int err, const uint8_t *data, size_t len)
{
    struct synced *s = arg;
    s->calls++;
    s->err = err;
    cr_assert_leq(len, sizeof(s->data));
    if (len)
        memcpy(s->data, data, len);
    s->len = len;
}

static void sync_group(const char *group, int32_t gen, const char *member,
                       const struct group_assignment *a, size_t n, struct synced *out)
{
    group_sync(gs, group, gen, member, a, n, on_synced, out);
}

static void on_committed(void *arg, int err)
{
    struct committed *c = arg;
    c->calls++;
    c->err = err;
}

/* Commits offs[0..n) and waits for the answer: its error. */
static int commit(const char *group, int32_t gen, const char *member, struct group_offset *offs,
                  size_t n)
{
    struct committed *c = crec();
    group_commit(gs, group, gen, member, offs, n, on_committed, c);
    RUN_UNTIL(c->calls > 0);
    run_for(5);
    cr_assert_eq(c->calls, 1, "commit answered %d times", c->calls);
    return c->err;
}

/* Commits one offset outside membership (generation -1, member ""). */
static int commit_one(const char *group, const char *topic, int32_t part, int64_t off,
                      const char *meta)
{
    struct group_offset o = {.topic = topic, .partition = part, .offset = off, .metadata = meta};
    int err = commit(group, -1, "", &o, 1);
    cr_assert_eq(o.err, err);
    return err;
}

/* Asserts the committed offset (and metadata) of (group, topic, part). */
static void assert_fetch(const char *group, const char *topic, int32_t part, int64_t want,
                         const char *want_meta)
{
    int64_t off = 12345;
    const char *meta = NULL;
    cr_assert_eq(group_fetch(gs, group, topic, part, &off, &meta), GERR_NONE);
    cr_assert_eq(off, want, "%s %s/%d: offset %" PRId64 ", want %" PRId64, group, topic, part, off,
                 want);
    cr_assert_not_null(meta);
    cr_assert_str_eq(meta, want_meta, "%s %s/%d: metadata '%s', want '%s'", group, topic, part,
                     meta, want_meta);
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Forms a stable group of n fresh members that join together (client ids
 * c0, c1 ..., metadata "meta-i", rebalance timeout rebalance_ms, 0: 10 s):
 * generation 1, member 0 leads, and the leader hands member i the
 * assignment "as-i". */
static void form_group_r(const char *group, size_t n, int32_t rebalance_ms, struct joined **m)
{
    char clients[MAXM][32], metas[MAXM][32];
    for (size_t i = 0; i < n; i++) {
        snprintf(clients[i], sizeof(clients[i]), "c%zu", i);
        snprintf(metas[i], sizeof(metas[i]), "meta-%zu", i);
        m[i] = jrec();
        join_req(&(struct jreq){.group = group,
                                .client = clients[i],
                                .meta = metas[i],
                                .rebalance_ms = rebalance_ms},
                 m[i]);
    }
    for (size_t i = 0; i < n; i++)
        RUN_UNTIL(m[i]->calls > 0);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(m[i]->calls, 1);
        cr_assert_eq(m[i]->err, GERR_NONE);
        cr_assert_eq(m[i]->generation, 1);
        cr_assert_str_eq(m[i]->leader, m[0]->member_id);
    }
    char data[MAXM][32];
    struct group_assignment as[MAXM];
    for (size_t i = 0; i < n; i++) {
        snprintf(data[i], sizeof(data[i]), "as-%zu", i);
        as[i] =
            (struct group_assignment){m[i]->member_id, (const uint8_t *)data[i], strlen(data[i])};
    }
    struct synced *s[MAXM];
    for (size_t i = n; i-- > 0;) { /* followers first, the leader last */
        s[i] = srec();
        sync_group(group, 1, m[i]->member_id, i ? NULL : as, i ? 0 : n, s[i]);
    }
    for (size_t i = 0; i < n; i++) {
        RUN_UNTIL(s[i]->calls > 0);
        cr_assert_eq(s[i]->err, GERR_NONE);
        cr_assert_eq(s[i]->len, strlen(data[i]));
        cr_assert_arr_eq(s[i]->data, data[i], s[i]->len);
    }
}

static void form_group(const char *group, size_t n, struct joined **m)
{
    form_group_r(group, n, 0, m);
}

/* The line of groups_status for group, copied into line ("" when absent). */
static void status_line(const char *group, char *line, size_t cap)
{
    char *st = groups_status(gs);
    cr_assert_not_null(st);
    line[0] = '\0';
    char head[300];
    snprintf(head, sizeof(head), "group=%s group.state=", group);
    for (char *l = st; *l;) {
        char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        if (len >= strlen(head) && !strncmp(l, head, strlen(head))) {
            snprintf(line, cap, "%.*s", (int)len, l);
            break;
        }
        l += len + (nl != NULL);
    }
    free(st);
}

/* ------------------------------------------------------- the coordinator */

Test(groups, the_coordinator_makes_the_offsets_topic_and_is_this_node)
{
    open_broker();
    cr_assert_null(topic_find(b, GROUPS_TOPIC));
    struct joined *j = jrec();
    join("g", "", j);
    cr_assert_eq(j->calls, 1, "an error is answered at once");
    cr_assert_eq(j->err, GERR_COORDINATOR_NOT_AVAILABLE,
                 "no offsets topic yet: nothing coordinates (err %d)", j->err);
    start_coordinator();
    struct topic *t = topic_find(b, GROUPS_TOPIC);
    cr_assert_not_null(t);
    cr_assert_eq(topic_partitions(t), 1);
    struct where w = {0};
    groups_coordinator(gs, on_where, &w); /* the topic exists: answered at once */
    RUN_UNTIL(w.calls > 0);
    cr_assert_eq(w.err, GERR_NONE);
    cr_assert_eq(w.node, cfg.node_id);
}

/* ------------------------------------------------------------ membership */

Test(groups, a_lone_member_gets_an_id_generation_1_and_leads_itself)
{
    start();
    struct joined *a = jrec();
    const uint8_t meta[] = {0, 1, 2, 'x', 0xff};
    struct group_protocol p = {"range", meta, sizeof(meta)};
    uint64_t t0 = uv_now(&loop);
    join_req(&(struct jreq){.group = "g", .client = "alice", .protos = &p, .nprotos = 1}, a);
    cr_assert_eq(a->calls, 0, "the first member of an empty group is held for the others");
    RUN_UNTIL(a->calls > 0);
    cr_assert_eq(a->calls, 1);
    cr_assert_not(a->inside);
    cr_assert_geq(a->at_ms - t0, 300, "answered after %" PRIu64 " ms, before the initial delay",
                  a->at_ms - t0);
    cr_assert_eq(a->err, GERR_NONE);
    cr_assert(has_prefix(a->member_id, "alice-") && strlen(a->member_id) > strlen("alice-"),
              "member id '%s'", a->member_id);
    cr_assert_eq(a->generation, 1);
    cr_assert_str_eq(a->protocol, "range");
    cr_assert_str_eq(a->leader, a->member_id);
    cr_assert_eq(a->nmembers, 1);
    cr_assert_str_eq(a->mid[0], a->member_id);
    cr_assert_eq(a->meta_len[0], sizeof(meta));
    cr_assert_arr_eq(a->meta[0], meta, sizeof(meta));

    struct synced *s = srec();
    struct group_assignment as = {a->member_id, (const uint8_t *)"\0part-0", 7};
    sync_group("g", 1, a->member_id, &as, 1, s);
    RUN_UNTIL(s->calls > 0);
    cr_assert_eq(s->calls, 1);
    cr_assert_eq(s->err, GERR_NONE);
    cr_assert_eq(s->len, 7);
    cr_assert_arr_eq(s->data, "\0part-0", 7);
    cr_assert_eq(group_heartbeat(gs, "g", 1, a->member_id), GERR_NONE);
    run_for(300);
    cr_assert_eq(group_heartbeat(gs, "g", 1, a->member_id), GERR_NONE);
}

Test(groups, new_members_get_distinct_ids)
{
    start();
    struct joined *a = jrec(), *c = jrec();
    join("g", "", a);
    join("g", "", c);
    RUN_UNTIL(a->calls && c->calls);
    cr_assert_eq(a->err, GERR_NONE);
    cr_assert_eq(c->err, GERR_NONE);
    cr_assert_str_neq(a->member_id, "");
    cr_assert_str_neq(a->member_id, c->member_id);
}

Test(groups, members_joining_within_the_initial_delay_share_one_generation)
{
    start();
    struct joined *a = jrec(), *f = jrec();
    join_req(&(struct jreq){.group = "g", .client = "a", .meta = "meta-a"}, a);
    run_for(100);
    join_req(&(struct jreq){.group = "g", .client = "f", .meta = "meta-f"}, f);
    cr_assert_eq(a->calls + f->calls, 0, "answered before the initial delay ended");
    RUN_UNTIL(a->calls && f->calls);
    cr_assert_eq(a->calls, 1);
    cr_assert_eq(f->calls, 1);
    cr_assert_eq(a->err, GERR_NONE);
    cr_assert_eq(f->err, GERR_NONE);
    cr_assert_eq(a->generation, 1);
    cr_assert_eq(f->generation, 1);
    cr_assert_str_eq(a->protocol, "range");
    cr_assert_str_eq(f->protocol, "range");
    cr_assert_str_eq(a->leader, a->member_id, "the longest standing member leads");
    cr_assert_str_eq(f->leader, a->member_id);
    cr_assert_str_neq(f->member_id, a->member_id);
    /* Only the leader learns the members, in the order they came. */
    cr_assert_eq(a->nmembers, 2);
    cr_assert_str_eq(a->mid[0], a->member_id);
    cr_assert_str_eq(a->mid[1], f->member_id);
    cr_assert_eq(a->meta_len[0], 6);
    cr_assert_arr_eq(a->meta[0], "meta-a", 6);
    cr_assert_eq(a->meta_len[1], 6);
    cr_assert_arr_eq(a->meta[1], "meta-f", 6);
    cr_assert_eq(f->nmembers, 0);

    /* The follower's sync waits for the leader's. */
    struct synced *sf = srec(), *sa = srec();
    sync_group("g", 1, f->member_id, NULL, 0, sf);
    run_for(300);
    cr_assert_eq(sf->calls, 0, "the follower's sync was answered before the leader's");
    cr_assert_eq(group_heartbeat(gs, "g", 1, f->member_id), GERR_NONE);
    struct group_assignment as[] = {{a->member_id, (const uint8_t *)"for-a", 5},
                                    {f->member_id, (const uint8_t *)"for-f\0!", 7}};
    sync_group("g", 1, a->member_id, as, 2, sa);
    RUN_UNTIL(sa->calls && sf->calls);
    cr_assert_eq(sa->calls, 1);
    cr_assert_eq(sf->calls, 1);
    cr_assert_eq(sa->err, GERR_NONE);
    cr_assert_eq(sf->err, GERR_NONE);
    cr_assert_eq(sa->len, 5);
    cr_assert_arr_eq(sa->data, "for-a", 5);
    cr_assert_eq(sf->len, 7);
    cr_assert_arr_eq(sf->data, "for-f\0!", 7);
    cr_assert_eq(group_heartbeat(gs, "g", 1, a->member_id), GERR_NONE);
    cr_assert_eq(group_heartbeat(gs, "g", 1, f->member_id), GERR_NONE);
    /* A sync once stable answers the assignment again. */
    struct synced *again = srec();
    sync_group("g", 1, f->member_id, NULL, 0, again);
    RUN_UNTIL(again->calls > 0);
    cr_assert_eq(again->err, GERR_NONE);
    cr_assert_eq(again->len, 7);
    cr_assert_arr_eq(again->data, "for-f\0!", 7);
}

Test(groups, a_joiner_makes_the_stable_members_join_again)
{
    start();
    struct joined *m[2];
    form_group("g", 2, m);
    struct joined *c = jrec();
    join_req(&(struct jreq){.group = "g", .client = "c", .meta = "meta-c"}, c);
    run_for(300);
    cr_assert_eq(c->calls, 0, "answered before the members joined again");
    cr_assert_eq(group_heartbeat(gs, "g", 1, m[0]->member_id), GERR_REBALANCE_IN_PROGRESS);
    cr_assert_eq(group_heartbeat(gs, "g", 1, m[1]->member_id), GERR_REBALANCE_IN_PROGRESS);
    struct joined *a2 = jrec(), *b2 = jrec();
    join_req(&(struct jreq){.group = "g", .member = m[0]->member_id, .meta = "meta-0"}, a2);
    run_for(200);
    cr_assert_eq(a2->calls + c->calls, 0, "completed without every member");
    join_req(&(struct jreq){.group = "g", .member = m[1]->member_id, .meta = "meta-1"}, b2);
    RUN_UNTIL(a2->calls && b2->calls && c->calls);
    struct joined *all[] = {a2, b2, c};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(all[i]->calls, 1);
        cr_assert_eq(all[i]->err, GERR_NONE);
        cr_assert_eq(all[i]->generation, 2);
        cr_assert_str_eq(all[i]->leader, m[0]->member_id, "the leader stays");
        cr_assert_str_eq(all[i]->protocol, "range");
    }
    cr_assert_str_eq(a2->member_id, m[0]->member_id);
    cr_assert_str_eq(b2->member_id, m[1]->member_id);
    cr_assert(has_prefix(c->member_id, "c-"), "member id '%s'", c->member_id);
    cr_assert_eq(a2->nmembers, 3);
    cr_assert_str_eq(a2->mid[0], m[0]->member_id);
    cr_assert_str_eq(a2->mid[1], m[1]->member_id);
    cr_assert_str_eq(a2->mid[2], c->member_id);
    cr_assert_arr_eq(a2->meta[2], "meta-c", 6);
    cr_assert_eq(b2->nmembers, 0);
    cr_assert_eq(c->nmembers, 0);

    /* The old generation is over. */
    struct synced *old = srec();
    sync_group("g", 1, m[1]->member_id, NULL, 0, old);
    RUN_UNTIL(old->calls > 0);
    cr_assert_eq(old->err, GERR_ILLEGAL_GENERATION);
    cr_assert_eq(old->len, 0);
    cr_assert_eq(group_heartbeat(gs, "g", 1, m[1]->member_id), GERR_ILLEGAL_GENERATION);

    struct synced *sb = srec(), *sc = srec(), *sa = srec();
    sync_group("g", 2, m[1]->member_id, NULL, 0, sb);
    sync_group("g", 2, c->member_id, NULL, 0, sc);
    struct group_assignment as[] = {{m[0]->member_id, (const uint8_t *)"A", 1},
                                    {m[1]->member_id, (const uint8_t *)"BB", 2},
                                    {c->member_id, (const uint8_t *)"CCC", 3}};
    sync_group("g", 2, m[0]->member_id, as, 3, sa);
    RUN_UNTIL(sa->calls && sb->calls && sc->calls);
    cr_assert_eq(sa->err, GERR_NONE);
    cr_assert_eq(sb->err, GERR_NONE);
    cr_assert_eq(sc->err, GERR_NONE);
    cr_assert_eq(sa->len, 1);
    cr_assert_eq(sb->len, 2);
    cr_assert_eq(sc->len, 3);
    cr_assert_arr_eq(sc->data, "CCC", 3);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(group_heartbeat(gs, "g", 2, m[i]->member_id), GERR_NONE);
    cr_assert_eq(group_heartbeat(gs, "g", 2, c->member_id), GERR_NONE);
}

/* Runs the loop until j is answered, heartbeating member (generation gen)
 * every 100 ms meanwhile: what it answers is not NONE. */
static void heartbeat_until_joined(const char *group, int32_t gen, const char *member,
                                   struct joined *j)
{
    uint64_t deadline = uv_hrtime() + 20ull * 1000000000ull, last = 0;
    while (!j->calls) {
        cr_assert(uv_hrtime() < deadline, "the rebalance never completed");
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
        if (!j->calls && uv_now(&loop) - last >= 100) {
            last = uv_now(&loop);
            int hb = group_heartbeat(gs, group, gen, member);
            cr_assert_eq(hb, GERR_REBALANCE_IN_PROGRESS, "heartbeat: %d", hb);
        }
    }
}

Test(groups, a_member_that_does_not_join_again_in_time_is_dropped)
{
    start();
    struct joined *m[2];
    form_group_r("g", 2, 1000, m);
    struct joined *c = jrec(), *a2 = jrec();
    uint64_t t0 = uv_now(&loop);
    join_req(&(struct jreq){.group = "g", .client = "c", .rebalance_ms = 1000}, c);
    join_req(&(struct jreq){.group = "g", .member = m[0]->member_id, .rebalance_ms = 1000}, a2);
    /* m[1] goes on heartbeating (its session lasts) but never joins again:
     * the rebalance timeout ends the join phase without it. */
    heartbeat_until_joined("g", 1, m[1]->member_id, a2);
    RUN_UNTIL(c->calls > 0);
    cr_assert_geq(a2->at_ms - t0, 1000, "completed after %" PRIu64 " ms", a2->at_ms - t0);
    cr_assert_eq(a2->err, GERR_NONE);
    cr_assert_eq(a2->generation, 2);
    cr_assert_str_eq(a2->leader, m[0]->member_id);
    cr_assert_eq(a2->nmembers, 2);
    cr_assert_str_eq(a2->mid[0], m[0]->member_id);
    cr_assert_str_eq(a2->mid[1], c->member_id);
    cr_assert_eq(c->err, GERR_NONE);
    cr_assert_eq(c->generation, 2);
    cr_assert_eq(group_heartbeat(gs, "g", 1, m[1]->member_id), GERR_UNKNOWN_MEMBER_ID);
    cr_assert_eq(group_heartbeat(gs, "g", 2, m[1]->member_id), GERR_UNKNOWN_MEMBER_ID);
}

/* Kafka's rebalance timeout bounds the whole join phase from its start: a
 * join that comes in meanwhile does not move the deadline on. */
Test(groups, the_rebalance_timeout_runs_from_the_start_of_the_rebalance)
{
    start();
    struct joined *m[2];
    form_group_r("g", 2, 1000, m);
    struct joined *c = jrec(), *a2 = jrec();
    uint64_t t0 = uv_now(&loop);
    join_req(&(struct jreq){.group = "g", .client = "c", .rebalance_ms = 1000}, c);
    run_for(600);
    join_req(&(struct jreq){.group = "g", .member = m[0]->member_id, .rebalance_ms = 1000}, a2);
    RUN_UNTIL(a2->calls && c->calls);
    cr_assert_eq(a2->err, GERR_NONE);
    cr_assert_eq(a2->generation, 2);
    cr_assert_eq(a2->nmembers, 2, "m[1] did not join again in time");
    uint64_t took = a2->at_ms - t0;
    cr_assert_geq(took, 1000);
    cr_assert_lt(took, 1450,
                 "the join phase lasted %" PRIu64 " ms: the rebalance timeout is 1000 ms (+ a "
                 "100 ms tick) from its start, not from the last join",
                 took);
}

Test(groups, an_unknown_member_id_is_refused_everywhere)
{
    start();
    struct joined *m[1];
    form_group("g", 1, m);
    struct joined *j = jrec();
    join("g", "nobody-1234", j);
    RUN_UNTIL(j->calls > 0);
    cr_assert_eq(j->err, GERR_UNKNOWN_MEMBER_ID);
    cr_assert_eq(j->generation, -1);
    struct synced *s = srec();
    sync_group("g", 1, "nobody-1234", NULL, 0, s);
    RUN_UNTIL(s->calls > 0);
    cr_assert_eq(s->err, GERR_UNKNOWN_MEMBER_ID);
    cr_assert_eq(group_heartbeat(gs, "g", 1, "nobody-1234"), GERR_UNKNOWN_MEMBER_ID);
    cr_assert_eq(group_leave(gs, "g", "nobody-1234"), GERR_UNKNOWN_MEMBER_ID);
    /* ... and in a group that does not exist. */
    struct joined *k = jrec();
    join("nogroup", "nobody-1234", k);
    RUN_UNTIL(k->calls > 0);
    cr_assert_eq(k->err, GERR_UNKNOWN_MEMBER_ID);
    cr_assert_eq(group_heartbeat(gs, "nogroup", 1, "nobody-1234"), GERR_UNKNOWN_MEMBER_ID);
    cr_assert_eq(group_leave(gs, "nogroup", "nobody-1234"), GERR_UNKNOWN_MEMBER_ID);
    /* The refusals left the group alone. */
    cr_assert_eq(group_heartbeat(gs, "g", 1, m[0]->member_id), GERR_NONE);
}

Test(groups, a_leave_makes_the_others_join_again_without_the_leaver)
{
    start();
    struct joined *m[2];
    form_group("g", 2, m);
    cr_assert_eq(group_leave(gs, "g", m[0]->member_id), GERR_NONE, "the leader leaves");
    cr_assert_eq(group_heartbeat(gs, "g", 1, m[1]->member_id), GERR_REBALANCE_IN_PROGRESS);
    cr_assert_eq(group_heartbeat(gs, "g", 1, m[0]->member_id), GERR_UNKNOWN_MEMBER_ID);
    cr_assert_eq(group_leave(gs, "g", m[0]->member_id), GERR_UNKNOWN_MEMBER_ID);
    struct joined *b2 = jrec();
    join_req(&(struct jreq){.group = "g", .member = m[1]->member_id, .meta = "meta-1"}, b2);
    RUN_UNTIL(b2->calls > 0);
    cr_assert_eq(b2->err, GERR_NONE);
    cr_assert_eq(b2->generation, 2);
    cr_assert_str_eq(b2->member_id, m[1]->member_id);
    cr_assert_str_eq(b2->leader, m[1]->member_id, "the remaining member leads");
    cr_assert_eq(b2->nmembers, 1);
    cr_assert_str_eq(b2->mid[0], m[1]->member_id);
    cr_assert_arr_eq(b2->meta[0], "meta-1", 6);
    struct synced *s = srec();
    struct group_assignment as = {m[1]->member_id, (const uint8_t *)"all", 3};
    sync_group("g", 2, m[1]->member_id, &as, 1, s);
    RUN_UNTIL(s->calls > 0);
    cr_assert_eq(s->err, GERR_NONE);
    cr_assert_eq(s->len, 3);
    cr_assert_eq(group_heartbeat(gs, "g", 2, m[1]->member_id), GERR_NONE);

    /* While it has a member, a commit from outside is refused ... */
    cr_assert_eq(commit_one("g", "t", 0, 5, NULL), GERR_UNKNOWN_MEMBER_ID);
    /* ... and once the last member left, the group is empty and takes it. */
    cr_assert_eq(group_leave(gs, "g", m[1]->member_id), GERR_NONE);
    char line[512];
    status_line("g", line, sizeof(line));
    if (line[0]) /* until the tick forgets the empty group */
        cr_assert(strstr(line, "group.state=Empty ") && strstr(line, " group.members=0"), "%s", line);
    cr_assert_eq(group_heartbeat(gs, "g", 2, m[1]->member_id), GERR_UNKNOWN_MEMBER_ID);
    cr_assert_eq(commit_one("g", "t", 0, 5, "simple"), GERR_NONE);
    assert_fetch("g", "t", 0, 5, "simple");
}

Test(groups, a_member_missing_its_session_timeout_is_dropped)
{
    start();
    struct joined *a = jrec(), *l = jrec();
    join_req(&(struct jreq){.group = "g", .client = "a", .session_ms = 10000}, a);
    join_req(&(struct jreq){.group = "g", .client = "late", .session_ms = 1000}, l);
    RUN_UNTIL(a->calls && l->calls);
    cr_assert_eq(a->err, GERR_NONE);
    cr_assert_eq(l->err, GERR_NONE);
    cr_assert_eq(a->generation, 1);
    cr_assert_eq(a->nmembers, 2);
    struct synced *sa = srec(), *sl = srec();
    struct group_assignment as[] = {{a->member_id, (const uint8_t *)"x", 1},
                                    {l->member_id, (const uint8_t *)"y", 1}};
    uint64_t quiet = uv_now(&loop); /* "late" is last heard of from here on */
    sync_group("g", 1, l->member_id, NULL, 0, sl);
    sync_group("g", 1, a->member_id, as, 2, sa);
    RUN_UNTIL(sa->calls && sl->calls);
    cr_assert_eq(sl->err, GERR_NONE);

    /* a heartbeats every 100 ms, "late" never: after its 1000 ms it goes. */
    int hb = GERR_NONE;
    uint64_t deadline = uv_hrtime() + 20ull * 1000000000ull, last = 0;
    while (hb == GERR_NONE) {
        cr_assert(uv_hrtime() < deadline, "the silent member was never dropped");
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
        if (uv_now(&loop) - last >= 100) {
            last = uv_now(&loop);
            hb = group_heartbeat(gs, "g", 1, a->member_id);
            if (uv_now(&loop) - quiet < 900)
                cr_assert_eq(hb, GERR_NONE, "dropped %" PRIu64 " ms after its last heartbeat",
                             uv_now(&loop) - quiet);
        }
    }
    cr_assert_eq(hb, GERR_REBALANCE_IN_PROGRESS);
    cr_assert_geq(uv_now(&loop) - quiet, 1000);
    cr_assert_eq(group_heartbeat(gs, "g", 1, l->member_id), GERR_UNKNOWN_MEMBER_ID);
    struct joined *a2 = jrec();
    join_req(&(struct jreq){.group = "g", .member = a->member_id, .session_ms = 10000}, a2);
    RUN_UNTIL(a2->calls > 0);
    cr_assert_eq(a2->err, GERR_NONE);
    cr_assert_eq(a2->generation, 2);
    cr_assert_str_eq(a2->leader, a->member_id);
    cr_assert_eq(a2->nmembers, 1);
    cr_assert_str_eq(a2->mid[0], a->member_id);
}

/* ------------------------------------------------------------- protocols */

Test(groups, the_protocol_chosen_is_common_to_all_in_the_first_members_order)
{
    start();
    struct group_protocol pa[] = {{"range", (const uint8_t *)"ra", 2},
                                  {"roundrobin", (const uint8_t *)"rr-a", 4}};
    struct group_protocol pb[] = {{"roundrobin", (const uint8_t *)"rr-b", 4},
                                  {"sticky", (const uint8_t *)"st-b", 4}};
    struct joined *a = jrec(), *bb = jrec();
    join_req(&(struct jreq){.group = "g", .protos = pa, .nprotos = 2}, a);
    join_req(&(struct jreq){.group = "g", .protos = pb, .nprotos = 2}, bb);
    RUN_UNTIL(a->calls && bb->calls);
    cr_assert_eq(a->err, GERR_NONE);
    cr_assert_eq(bb->err, GERR_NONE);
    cr_assert_str_eq(a->protocol, "roundrobin");
    cr_assert_str_eq(bb->protocol, "roundrobin");
    cr_assert_eq(a->nmembers, 2);
    cr_assert_eq(a->meta_len[0], 4);
    cr_assert_arr_eq(a->meta[0], "rr-a", 4, "each member's metadata for the chosen protocol");
    cr_assert_eq(a->meta_len[1], 4);
    cr_assert_arr_eq(a->meta[1], "rr-b", 4);

    /* Both support both: the first member's first choice wins. */
    struct group_protocol pc[] = {{"sticky", (const uint8_t *)"s", 1},
                                  {"range", (const uint8_t *)"r", 1}};
    struct group_protocol pd[] = {{"range", (const uint8_t *)"r", 1},
                                  {"sticky", (const uint8_t *)"s", 1}};
    struct joined *c = jrec(), *d = jrec();
    join_req(&(struct jreq){.group = "h", .protos = pc, .nprotos = 2}, c);
    join_req(&(struct jreq){.group = "h", .protos = pd, .nprotos = 2}, d);
    RUN_UNTIL(c->calls && d->calls);
    cr_assert_str_eq(c->protocol, "sticky");
    cr_assert_str_eq(d->protocol, "sticky");
}

Test(groups, a_joiner_sharing_no_protocol_is_refused)
{
    start();
    struct group_protocol pa[] = {{"range", (const uint8_t *)"ra", 2},
                                  {"roundrobin", (const uint8_t *)"rr-a", 4}};
    struct group_protocol px[] = {{"sticky", (const uint8_t *)"st", 2}};
    struct joined *a = jrec(), *x = jrec();
    join_req(&(struct jreq){.group = "g", .protos = pa, .nprotos = 2}, a);
    RUN_UNTIL(a->calls > 0);
    cr_assert_eq(a->err, GERR_NONE);
    join_req(&(struct jreq){.group = "g", .protos = px, .nprotos = 1}, x);
    RUN_UNTIL(x->calls > 0);
    cr_assert_eq(x->err, GERR_INCONSISTENT_GROUP_PROTOCOL);
    cr_assert_eq(x->generation, -1);
    /* Another protocol type, or none at all, is refused too. */
    struct joined *y = jrec(), *z = jrec();
    join_req(&(struct jreq){.group = "g", .type = "connect", .protos = pa, .nprotos = 2}, y);
    RUN_UNTIL(y->calls > 0);
    cr_assert_eq(y->err, GERR_INCONSISTENT_GROUP_PROTOCOL);
    join_req(&(struct jreq){.group = "g", .protos = pa, .nprotos = 0}, z);
    RUN_UNTIL(z->calls > 0);
    cr_assert_eq(z->err, GERR_INCONSISTENT_GROUP_PROTOCOL);
    /* None of it disturbed the group. */
    struct synced *s = srec();
    sync_group("g", 1, a->member_id, NULL, 0, s);
    RUN_UNTIL(s->calls > 0);
    cr_assert_eq(s->err, GERR_NONE);
    cr_assert_eq(group_heartbeat(gs, "g", 1, a->member_id), GERR_NONE);
    char line[512];
    status_line("g", line, sizeof(line));
    cr_assert(strstr(line, " group.members=1"), "%s", line);
}

Test(groups, a_session_timeout_out_of_range_is_refused)
{
    start();
    struct joined *lo = jrec(), *hi = jrec(), *ok = jrec(), *noname = jrec();
    join_req(&(struct jreq){.group = "g", .session_ms = 999}, lo);
    RUN_UNTIL(lo->calls > 0);
    cr_assert_eq(lo->err, GERR_INVALID_SESSION_TIMEOUT);
    join_req(&(struct jreq){.group = "g", .session_ms = 300001}, hi);
    RUN_UNTIL(hi->calls > 0);
    cr_assert_eq(hi->err, GERR_INVALID_SESSION_TIMEOUT);
    join_req(&(struct jreq){.group = "", .session_ms = 1000}, noname);
    RUN_UNTIL(noname->calls > 0);
    cr_assert_eq(noname->err, GERR_INVALID_GROUP_ID);
    join_req(&(struct jreq){.group = "g", .session_ms = 1000}, ok);
    RUN_UNTIL(ok->calls > 0);
    cr_assert_eq(ok->err, GERR_NONE, "1000 ms is the shortest accepted");
    cr_assert_eq(ok->generation, 1);
}

/* --------------------------------------------------------------- commits */

Test(groups, committed_offsets_are_fetched_back_with_their_metadata)
{
    start();
    struct group_offset offs[] = {
        {.topic = "orders", .partition = 0, .offset = 5, .metadata = "m5"},
        {.topic = "orders", .partition = 1, .offset = 7},
        {.topic = "users", .partition = 0, .offset = 1000000000000LL, .metadata = "x y"},
    };
    cr_assert_eq(commit("g", -1, "", offs, 3), GERR_NONE);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(offs[i].err, GERR_NONE);
    assert_fetch("g", "orders", 0, 5, "m5");
    assert_fetch("g", "orders", 1, 7, "");
    assert_fetch("g", "users", 0, 1000000000000LL, "x y");
    assert_fetch("g", "orders", 2, -1, ""); /* never committed */
    assert_fetch("g", "nosuch", 0, -1, "");
    assert_fetch("other", "orders", 0, -1, "");

    /* A later commit wins. */
    cr_assert_eq(commit_one("g", "orders", 0, 11, "m11"), GERR_NONE);
    assert_fetch("g", "orders", 0, 11, "m11");
    cr_assert_eq(commit_one("g", "orders", 0, 3, NULL), GERR_NONE);
    assert_fetch("g", "orders", 0, 3, "");
    assert_fetch("g", "orders", 1, 7, "");
    /* ... within one call too. */
    struct group_offset twice[] = {
        {.topic = "orders", .partition = 1, .offset = 8, .metadata = "first"},
        {.topic = "orders", .partition = 1, .offset = 9, .metadata = "second"},
    };
    cr_assert_eq(commit("g", -1, "", twice, 2), GERR_NONE);
    assert_fetch("g", "orders", 1, 9, "second");
}

Test(groups, commits_of_a_stale_generation_or_a_stranger_are_refused)
{
    start();
    struct joined *a = jrec();
    join("g", "", a);
    RUN_UNTIL(a->calls > 0);
    cr_assert_eq(a->generation, 1);
    struct synced *s = srec();
    sync_group("g", 1, a->member_id, NULL, 0, s);
    RUN_UNTIL(s->calls > 0);
    struct group_offset o = {.topic = "t", .partition = 0, .offset = 10, .metadata = "gen1"};
    cr_assert_eq(commit("g", 1, a->member_id, &o, 1), GERR_NONE);
    cr_assert_eq(o.err, GERR_NONE);
    assert_fetch("g", "t", 0, 10, "gen1");

    /* The lone member joins again: generation 2 at once. */
    struct joined *a2 = jrec();
    join("g", a->member_id, a2);
    RUN_UNTIL(a2->calls > 0);
    cr_assert_eq(a2->err, GERR_NONE);
    cr_assert_eq(a2->generation, 2);
    /* Until its sync the rebalance is not over. */
    o = (struct group_offset){.topic = "t", .partition = 0, .offset = 11};
    cr_assert_eq(commit("g", 2, a->member_id, &o, 1), GERR_REBALANCE_IN_PROGRESS);
    cr_assert_eq(o.err, GERR_REBALANCE_IN_PROGRESS);
    struct synced *s2 = srec();
    sync_group("g", 2, a->member_id, NULL, 0, s2);
    RUN_UNTIL(s2->calls > 0);
    cr_assert_eq(s2->err, GERR_NONE);

    struct group_offset stale[] = {
        {.topic = "t", .partition = 0, .offset = 99, .metadata = "stale"},
        {.topic = "t", .partition = 1, .offset = 99},
    };
    cr_assert_eq(commit("g", 1, a->member_id, stale, 2), GERR_ILLEGAL_GENERATION);
    cr_assert_eq(stale[0].err, GERR_ILLEGAL_GENERATION);
    cr_assert_eq(stale[1].err, GERR_ILLEGAL_GENERATION);
    assert_fetch("g", "t", 0, 10, "gen1");
    assert_fetch("g", "t", 1, -1, "");

    /* Not a member, while the group has members. */
    o = (struct group_offset){.topic = "t", .partition = 0, .offset = 77};
    cr_assert_eq(commit("g", -1, "", &o, 1), GERR_UNKNOWN_MEMBER_ID);
    cr_assert_eq(o.err, GERR_UNKNOWN_MEMBER_ID);
    o = (struct group_offset){.topic = "t", .partition = 0, .offset = 78};
    cr_assert_eq(commit("g", 2, "stranger-1", &o, 1), GERR_UNKNOWN_MEMBER_ID);
    assert_fetch("g", "t", 0, 10, "gen1");

    o = (struct group_offset){.topic = "t", .partition = 0, .offset = 12, .metadata = "gen2"};
    cr_assert_eq(commit("g", 2, a->member_id, &o, 1), GERR_NONE);
    assert_fetch("g", "t", 0, 12, "gen2");
    cr_assert_eq(group_heartbeat(gs, "g", 2, a->member_id), GERR_NONE);
}

struct listed {
    size_t n;
    char topic[8][32];
    int32_t part[8];
    int64_t off[8];
    char meta[8][32];
};

static void on_listed(void *arg, const char *topic, int32_t partition, int64_t offset,
                      const char *metadata)
{
    struct listed *l = arg;
    cr_assert_lt(l->n, 8);
    snprintf(l->topic[l->n], sizeof(l->topic[0]), "%s", topic);
    l->part[l->n] = partition;
    l->off[l->n] = offset;
    snprintf(l->meta[l->n], sizeof(l->meta[0]), "%s", metadata ? metadata : "(null)");
    l->n++;
}

/* Index of (topic, part) in l, or -1. */
static int listed_at(const struct listed *l, const char *topic, int32_t part)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->topic[i], topic) && l->part[i] == part)
            return (int)i;
    return -1;
}

Test(groups, fetch_all_lists_exactly_the_groups_offsets)
{
    start();
    struct group_offset go[] = {
        {.topic = "a", .partition = 0, .offset = 1, .metadata = "one"},
        {.topic = "a", .partition = 3, .offset = 2},
        {.topic = "b", .partition = 0, .offset = 3, .metadata = "three"},
    };
    cr_assert_eq(commit("g", -1, "", go, 3), GERR_NONE);
    cr_assert_eq(commit_one("g2", "a", 0, 50, "other"), GERR_NONE);
    cr_assert_eq(commit_one("gg", "c", 0, 60, NULL), GERR_NONE);
    cr_assert_eq(commit_one("g", "a", 3, 4, "four"), GERR_NONE); /* replaces, adds nothing */

    struct listed l = {0};
    cr_assert_eq(group_fetch_all(gs, "g", on_listed, &l), GERR_NONE);
    cr_assert_eq(l.n, 3, "%zu offsets listed", l.n);
    int i = listed_at(&l, "a", 0), k = listed_at(&l, "a", 3), m = listed_at(&l, "b", 0);
    cr_assert(i >= 0 && k >= 0 && m >= 0);
    cr_assert_eq(l.off[i], 1);
    cr_assert_str_eq(l.meta[i], "one");
    cr_assert_eq(l.off[k], 4);
    cr_assert_str_eq(l.meta[k], "four");
    cr_assert_eq(l.off[m], 3);
    cr_assert_str_eq(l.meta[m], "three");

    struct listed l2 = {0};
    cr_assert_eq(group_fetch_all(gs, "g2", on_listed, &l2), GERR_NONE);
    cr_assert_eq(l2.n, 1);
    cr_assert_str_eq(l2.topic[0], "a");
    cr_assert_eq(l2.part[0], 0);
    cr_assert_eq(l2.off[0], 50);
    cr_assert_str_eq(l2.meta[0], "other");

    struct listed none = {0};
    cr_assert_eq(group_fetch_all(gs, "nogroup", on_listed, &none), GERR_NONE);
    cr_assert_eq(none.n, 0);
}

Test(groups, per_offset_errors_leave_the_others_committed)
{
    start();
    char big[4098];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0'; /* 4097 bytes: one more than a commit's metadata may hold */
    char longtopic[300];
    memset(longtopic, 't', sizeof(longtopic) - 1);
    longtopic[sizeof(longtopic) - 1] = '\0';
    struct group_offset offs[] = {
        {.topic = "t", .partition = 0, .offset = 1, .metadata = big},
        {.topic = "t", .partition = 1, .offset = 2, .metadata = big + 1}, /* 4096: fits */
        {.topic = longtopic, .partition = 0, .offset = 3},
    };
    cr_assert_eq(commit("g", -1, "", offs, 3), GERR_NONE);
    cr_assert_eq(offs[0].err, GERR_OFFSET_METADATA_TOO_LARGE);
    cr_assert_eq(offs[1].err, GERR_NONE);
    cr_assert_eq(offs[2].err, GERR_UNKNOWN_TOPIC_OR_PARTITION);
    assert_fetch("g", "t", 0, -1, "");
    assert_fetch("g", "t", 1, 2, big + 1);
}

/* ------------------------------------------------------------- durability */

/* The committed bytes of p, through part_read (malloc'ed, NUL-terminated). */
static char *read_part(struct part *p)
{
    struct part_info pi;
    part_info(p, &pi);
    size_t cap = (size_t)(pi.end_pos - pi.first_pos) + 1, got = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    for (uint64_t pos = pi.first_pos;;) {
        int fd;
        uint64_t fdoff;
        size_t n;
        cr_assert_eq(part_read(p, pos, cap - 1 - got, &fd, &fdoff, &n), 0);
        if (n == 0)
            break;
        th_pread(fd, buf + got, n, fdoff);
        got += n;
        pos += n;
    }
    buf[got] = '\0';
    return buf;
}

static int cmp_names(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The .log files of the offsets partition's directory, in order, one after
 * the other (malloc'ed, NUL-terminated). */
static char *read_log_files(void)
{
    char dir[PATH_MAX], path[PATH_MAX];
    th_path(dir, "%s/topics/%s/0", tmp, GROUPS_TOPIC);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
    char *names[64];
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len > 4 && !strcmp(e->d_name + len - 4, ".log")) {
            cr_assert_lt(n, 64);
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_names);
    char *all = calloc(1, 1);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        char *text = th_slurp(th_path(path, "%s/%s", dir, names[i]), &len);
        all = realloc(all, at + len + 1);
        cr_assert_not_null(all);
        memcpy(all + at, text, len);
        at += len;
        all[at] = '\0';
        free(text);
        free(names[i]);
    }
    cr_assert_gt(n, 0, "no .log file in %s", dir);
    return all;
}

Test(groups, commits_survive_a_restart_as_lines_of_the_offsets_topic)
{
    start();
    const char *g = "my group%1";
    struct group_offset offs[] = {
        {.topic = "orders", .partition = 0, .offset = 42, .metadata = "m42"},
        {.topic = "orders", .partition = 1, .offset = 7},
    };
    cr_assert_eq(commit(g, -1, "", offs, 2), GERR_NONE);
    cr_assert_eq(commit_one(g, "orders", 0, 43, "m43"), GERR_NONE);
    cr_assert_eq(commit_one("plain", "t", 2, 0, NULL), GERR_NONE);
    close_broker();

    open_broker(); /* the same data dir: nothing in memory any more */
    assert_fetch(g, "orders", 0, 43, "m43");
    assert_fetch(g, "orders", 1, 7, "");
    assert_fetch("plain", "t", 2, 0, "");
    assert_fetch(g, "orders", 2, -1, "");
    struct listed l = {0};
    cr_assert_eq(group_fetch_all(gs, g, on_listed, &l), GERR_NONE);
    cr_assert_eq(l.n, 2);

    const char *want = "commit group=my%20group%251 topic=orders partition=0 offset=42\n"
                       "commit group=my%20group%251 topic=orders partition=1 offset=7\n"
                       "commit group=my%20group%251 topic=orders partition=0 offset=43\n"
                       "commit group=plain topic=t partition=2 offset=0\n";
    struct topic *t = topic_find(b, GROUPS_TOPIC);
    cr_assert_not_null(t);
    struct part *p = topic_part(t, 0);
    struct part_info pi;
    part_info(p, &pi);
    cr_assert_eq(pi.next_off - pi.first_off, 4, "one record per commit");
    char *text = read_part(p);
    cr_assert_str_eq(text, want);
    free(text);
    char *files = read_log_files();
    cr_assert_str_eq(files, want);
    free(files);

    /* A commit after the restart folds on top of what was read back. */
    cr_assert_eq(commit_one(g, "orders", 1, 8, "m8"), GERR_NONE);
    assert_fetch(g, "orders", 1, 8, "m8");
    assert_fetch(g, "orders", 0, 43, "m43");
}

/* ----------------------------------------------------------------- status */

Test(groups, status_lists_each_group_with_its_state_generation_and_members)
{
    start();
    struct joined *m[2];
    form_group("g", 2, m);
    char line[512], want[512];
    status_line("g", line, sizeof(line));
    snprintf(want, sizeof(want),
             "group=g group.state=Stable group.generation=1 group.protocol=range "
             "group.leader=%s group.members=2",
             m[0]->member_id);
    cr_assert_str_eq(line, want);

    struct joined *c = jrec();
    join_req(&(struct jreq){.group = "g", .client = "c"}, c);
    status_line("g", line, sizeof(line));
    snprintf(want, sizeof(want),
             "group=g group.state=PreparingRebalance group.generation=1 group.protocol=range "
             "group.leader=%s group.members=3",
             m[0]->member_id);
    cr_assert_str_eq(line, want);

    struct joined *a2 = jrec(), *b2 = jrec();
    join("g", m[0]->member_id, a2);
    join("g", m[1]->member_id, b2);
    RUN_UNTIL(a2->calls && b2->calls && c->calls);
    status_line("g", line, sizeof(line));
    snprintf(want, sizeof(want),
             "group=g group.state=CompletingRebalance group.generation=2 group.protocol=range "
             "group.leader=%s group.members=3",
             m[0]->member_id);
    cr_assert_str_eq(line, want);

    /* Another group shows on its own line. */
    struct joined *h = jrec();
    join("h", "", h);
    RUN_UNTIL(h->calls > 0);
    status_line("h", line, sizeof(line));
    snprintf(want, sizeof(want),
             "group=h group.state=CompletingRebalance group.generation=1 group.protocol=range "
             "group.leader=%s group.members=1",
             h->member_id);
    cr_assert_str_eq(line, want);
    status_line("g", line, sizeof(line));
    cr_assert(strstr(line, "group.generation=2 "), "%s", line);
}

/* ------------------------------------------------------------------ bugs */

/* A group name longer than joins accept (255 bytes): the commit must be
 * refused (INVALID_GROUP_ID) or kept; never acknowledged and then lost. */
Test(groups, a_commit_for_a_long_group_name_is_refused_or_kept)
{
    start();
    char g[301];
    memset(g, 'g', sizeof(g) - 1);
    g[sizeof(g) - 1] = '\0';
    int err = commit_one(g, "t", 0, 17, "meta");
    if (err == GERR_NONE)
        assert_fetch(g, "t", 0, 17, "meta");
    else
        cr_assert_eq(err, GERR_INVALID_GROUP_ID, "err %d", err);
}

/* The longest group a Kafka string carries with the longest metadata: the
 * record's key must be built in bounds (ASan: stack-buffer-overflow). */
Test(groups, a_commit_with_a_long_group_and_the_longest_metadata_stays_in_bounds)
{
    start();
    static char g[1001], meta[4097];
    memset(g, 'g', sizeof(g) - 1);
    memset(meta, 'm', sizeof(meta) - 1);
    int err = commit_one(g, "t", 0, 17, meta);
    if (err == GERR_NONE)
        assert_fetch(g, "t", 0, 17, meta);
    else
        cr_assert_eq(err, GERR_INVALID_GROUP_ID, "err %d", err);
}

static int (*real_fdatasync)(int);
static int slow_fdatasync(int fd)
{
    usleep(100 * 1000);
    return real_fdatasync(fd);
}

/* The daemon stops while a commit waits for its fdatasync: the commit is
 * answered once, and nothing touches the freed groups state. */
Test(groups, closing_with_a_commit_in_flight_answers_it_safely)
{
    start();
    real_fdatasync = sysio.fdatasync;
    sysio.fdatasync = slow_fdatasync;
    static struct group_offset o = {.topic = "t", .partition = 0, .offset = 5};
    struct committed *c = crec();
    group_commit(gs, "g", -1, "", &o, 1, on_committed, c);
    close_broker();
    cr_assert_eq(c->calls, 1);
}
