/*
 * test_cluster — three brokers in one process, each with its own data dir,
 * its cluster port on 127.0.0.1 and the metadata group between them: a
 * topic proposed at the leader appears in every broker's registry with the
 * same id and partition count; settings and deletion follow; the rules give
 * every node the same answer; a broker restarted applies nothing twice and
 * catches up on what it missed.
 */
#include "broker/cluster.h"
#include "broker/internal.h"
#include "broker/metadata.h"
#include "raft/raft.h"
#include "tests/unit/helpers.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <uv.h>

#define N 3

static uv_loop_t loop;
static char *tmp;
static struct broker *bk[N + 1];
static struct mk_config cfgs[N + 1];
static char dirs[N + 1][PATH_MAX];

static void config(int i, uint16_t base)
{
    cfg_defaults(&cfgs[i]);
    cfgs[i].node_id = (uint32_t)i;
    cfgs[i].num_partitions = 1;
    for (int k = 1; k <= N; k++) {
        char v[64];
        snprintf(v, sizeof(v), "%d@127.0.0.1:%u", k, (unsigned)(base + k));
        cr_assert_eq(cfg_set(&cfgs[i], "peer", v, NULL), 0);
    }
}

static void start(int i)
{
    long holder;
    cr_assert_eq(broker_open(&bk[i], dirs[i], &cfgs[i], &holder), 0);
    cr_assert_eq(broker_start(bk[i], &loop), 0);
}

static void stop(int i)
{
    broker_quiesce(bk[i]);
    for (int k = 0; k < 200 && broker_busy(bk[i]); k++)
        uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    broker_close(bk[i]);
    bk[i] = NULL;
}

static void setup(void)
{
    /* As the daemon (main.c): a write to a peer that just closed is EPIPE,
     * not a signal that kills the process. */
    signal(SIGPIPE, SIG_IGN);
    tmp = th_mkdtemp();
    cr_assert_eq(uv_loop_init(&loop), 0);
    uint16_t base = th_free_ports(N);
    for (int i = 1; i <= N; i++) {
        th_path(dirs[i], "%s/n%d", tmp, i);
        cr_assert_eq(mkdir(dirs[i], 0755), 0);
        config(i, base);
        start(i);
    }
}

static void teardown(void)
{
    for (int i = 1; i <= N; i++)
        if (bk[i])
            stop(i);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0, "a handle was left open");
    th_rmdir(tmp);
}

TestSuite(cluster, .init = setup, .fini = teardown, .timeout = 60);

#define RUN_UNTIL(secs, cond) TH_RUN_UNTIL(&loop, secs, cond)

/* The node all live brokers agree leads the metadata group, or 0. */
static int leader(void)
{
    uint64_t l = 0;
    for (int i = 1; i <= N; i++) {
        if (!bk[i])
            continue;
        uint64_t x = cluster_meta_leader(bk[i]->cluster);
        if (!x || (l && x != l))
            return 0;
        l = x;
    }
    return l && bk[l] ? (int)l : 0;
}

struct result {
    int calls, status;
};

static void on_done(void *arg, int status)
{
    struct result *r = arg;
    r->calls++;
    r->status = status;
}

static int propose(int at, const struct meta_op *op)
{
    struct result r = {0};
    int rc = cluster_meta_propose(bk[at]->cluster, op, on_done, &r);
    if (rc < 0)
        return rc;
    RUN_UNTIL(10, r.calls == 1);
    return r.status;
}

static struct meta_op create_op(const char *name, uint32_t parts)
{
    struct meta_op op = {
        .kind = META_CREATE, .partitions = parts, .uid = 0, .gid = 0, .mode = 0755};
    strcpy(op.topic, name);
    return op;
}

static bool everywhere(const char *name, uint64_t id, uint32_t parts)
{
    for (int i = 1; i <= N; i++) {
        if (!bk[i])
            continue;
        struct topic *t = topic_find(bk[i], name);
        if (!t || topic_id(t) != id || topic_partitions(t) != parts)
            return false;
    }
    return true;
}

static bool nowhere(const char *name)
{
    for (int i = 1; i <= N; i++)
        if (bk[i] && topic_find(bk[i], name))
            return false;
    return true;
}

Test(cluster, a_topic_created_through_the_group_appears_on_every_node_with_one_id)
{
    RUN_UNTIL(15, leader() != 0);
    int l = leader();
    int f = l == 1 ? 2 : 1;
    struct meta_op op = create_op("orders", 3);
    cr_assert_eq(cluster_meta_propose(bk[f]->cluster, &op, on_done, NULL), RAFT_ENOTLEADER,
                 "followers do not propose (forwarding comes next)");
    cr_assert_eq(propose(l, &op), 0);
    struct topic *t = topic_find(bk[l], "orders");
    cr_assert_not_null(t);
    uint64_t id = topic_id(t);
    RUN_UNTIL(10, everywhere("orders", id, 3));
    /* The same name again: refused the same way everywhere. */
    cr_assert_eq(propose(l, &op), -EEXIST);
    /* A setting, then deletion. */
    struct meta_op set = {.kind = META_SET, .id = id};
    strcpy(set.topic, "orders");
    strcpy(set.key, "retention.ms");
    strcpy(set.value, "3600000");
    cr_assert_eq(propose(l, &set), 0);
    for (int i = 1; i <= N; i++) {
        char buf[32];
        RUN_UNTIL(10, topic_get(bk[i], topic_find(bk[i], "orders"), "retention.ms", buf,
                                sizeof(buf)) == 0 &&
                          !strcmp(buf, "3600000"));
    }
    struct meta_op del = {.kind = META_DELETE, .id = id};
    strcpy(del.topic, "orders");
    cr_assert_eq(propose(l, &del), 0);
    RUN_UNTIL(10, nowhere("orders"));
    cr_assert_eq(propose(l, &del), -ENOENT, "a topic that is gone");
    /* Recreated: a new id, never the old one. */
    cr_assert_eq(propose(l, &op), 0);
    t = topic_find(bk[l], "orders");
    cr_assert_gt(topic_id(t), id);
    RUN_UNTIL(10, everywhere("orders", topic_id(t), 3));
}

Test(cluster, a_restarted_node_applies_nothing_twice_and_catches_up)
{
    RUN_UNTIL(15, leader() != 0);
    int l = leader();
    struct meta_op a = create_op("a", 1), b2 = create_op("b", 2);
    cr_assert_eq(propose(l, &a), 0);
    uint64_t ida = topic_id(topic_find(bk[l], "a"));
    RUN_UNTIL(10, everywhere("a", ida, 1));
    int f = l == 3 ? 2 : 3;
    stop(f);
    cr_assert_eq(propose(l, &b2), 0, "two of three still commit");
    uint64_t idb = topic_id(topic_find(bk[l], "b"));
    start(f);
    RUN_UNTIL(15, everywhere("b", idb, 2));
    cr_assert(everywhere("a", ida, 1));
    cr_assert_eq(topic_count(bk[f]), 2, "nothing applied twice");
    uint64_t applied = cluster_meta_applied(bk[f]->cluster);
    cr_assert_geq(applied, 3, "the applied offset moved past both creates");
}
