/*
 * tests/unit/raft_core.c -- behaviours of the Raft core on a tiny in-memory
 * cluster with instant, lossless delivery (the simulator in tests/sim does
 * the adversarial part).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "raft/raft.h"

#define MAXN 4

struct tnode {
    uint64_t id;
    struct raft *r;
    struct raft_entry *log; /* payloads owned (malloc'd) */
    uint64_t first, n, snap_term;
    bool down; /* messages to it are dropped */
    uint64_t applied_values;
    struct raft_msg reset; /* a pending reset, applied at once */
};

static struct tnode nodes[MAXN + 1];
static unsigned nn;

static uint64_t t_first(void *ctx)
{
    return ((struct tnode *)ctx)->first;
}
static uint64_t t_last(void *ctx)
{
    struct tnode *t = ctx;
    return t->first + t->n - 1;
}
static int t_term(void *ctx, uint64_t index, uint64_t *term)
{
    struct tnode *t = ctx;
    if (index == t->first - 1) {
        *term = t->snap_term;
        return 0;
    }
    if (index < t->first || index >= t->first + t->n)
        return -ENOENT;
    *term = t->log[index - t->first].term;
    return 0;
}
static int t_entries(void *ctx, uint64_t lo, uint64_t hi, struct raft_entry *out)
{
    struct tnode *t = ctx;
    if (lo < t->first || hi > t->first + t->n)
        return -ENOENT;
    memcpy(out, t->log + (lo - t->first), (hi - lo) * sizeof(*out));
    return 0;
}

static size_t t_bytes(void *ctx, uint64_t lo, uint64_t hi)
{
    struct tnode *t = ctx;
    size_t sum = 0;
    for (uint64_t i = lo; i < hi && i >= t->first && i < t->first + t->n; i++)
        sum += t->log[i - t->first].len;
    return sum;
}

static size_t opt_max_bytes;   /* start(): raft_options.max_msg_bytes */
static size_t most_in_append;  /* pump(): the most entries one APPEND carried */

static void t_truncate(struct tnode *t, uint64_t from)
{
    while (t->n > 0 && t->first + t->n - 1 >= from)
        free((void *)t->log[--t->n].buf);
}

static void t_compact(struct tnode *t, uint64_t upto)
{
    uint64_t k = upto - t->first + 1;
    t->snap_term = t->log[k - 1].term;
    for (uint64_t i = 0; i < k; i++)
        free((void *)t->log[i].buf);
    memmove(t->log, t->log + k, (t->n - k) * sizeof(*t->log));
    t->n -= k;
    t->first = upto + 1;
}

static void pump(void)
{
    for (bool busy = true; busy;) {
        busy = false;
        for (unsigned k = 1; k <= nn; k++) {
            struct tnode *t = &nodes[k];
            while (raft_has_ready(t->r)) {
                busy = true;
                struct raft_ready rd;
                cr_assert_eq(raft_ready(t->r, &rd), 0);
                uint64_t ri = 0, rt = 0, li = 0, lt = 0;
                if (rd.reset) {
                    t_truncate(t, 0);
                    t->first = rd.snap.index + 1;
                    t->snap_term = rd.snap.log_term;
                    ri = rd.snap.index;
                    rt = rd.snap.log_term;
                }
                if (rd.n_entries) {
                    t_truncate(t, rd.entries[0].index);
                    t->log = realloc(t->log, (t->n + rd.n_entries) * sizeof(*t->log));
                    for (size_t i = 0; i < rd.n_entries; i++) {
                        struct raft_entry e = rd.entries[i];
                        void *b = malloc(e.len ? e.len : 1);
                        if (e.len)
                            memcpy(b, e.buf, e.len);
                        e.buf = b;
                        t->log[t->n++] = e;
                    }
                    li = rd.entries[rd.n_entries - 1].index;
                    lt = rd.entries[rd.n_entries - 1].term;
                }
                for (size_t i = 0; i < rd.n_msgs; i++) {
                    const struct raft_msg *m = &rd.msgs[i];
                    if (m->type == RAFT_MSG_APPEND && m->n_entries > most_in_append)
                        most_in_append = m->n_entries;
                    if (m->to >= 1 && m->to <= nn && !nodes[m->to].down && !t->down)
                        raft_step(nodes[m->to].r, m);
                }
                for (uint64_t i = rd.apply_lo; i <= rd.apply_hi; i++)
                    t->applied_values += t->log[i - t->first].type == RAFT_ENTRY_NORMAL;
                raft_advance(t->r);
                if (ri)
                    raft_reset_done(t->r, ri, rt);
                if (li)
                    raft_persisted(t->r, li, lt);
            }
        }
    }
}

static void start(unsigned n)
{
    memset(nodes, 0, sizeof(nodes));
    nn = n;
    struct raft_conf conf = {.n = n};
    for (unsigned k = 1; k <= n; k++)
        conf.servers[k - 1] = (struct raft_server){k, true};
    for (unsigned k = 1; k <= n; k++) {
        struct tnode *t = &nodes[k];
        t->id = k;
        t->first = 1;
        struct raft_options o = {.id = k,
                                 .pre_vote = true,
                                 .check_quorum = true,
                                 .seed = 7,
                                 .conf = &conf,
                                 .max_msg_bytes = opt_max_bytes};
        o.log = (struct raft_log_ops){t, t_first, t_last, t_term, t_entries, NULL, t_bytes};
        cr_assert_eq(raft_new(&o, &t->r), 0);
    }
}

static void stop(void)
{
    for (unsigned k = 1; k <= nn; k++) {
        raft_free(nodes[k].r);
        t_truncate(&nodes[k], 0);
        free(nodes[k].log);
    }
    nn = 0;
}

/* Tick only node k until it leads. */
static void elect(unsigned k)
{
    for (int i = 0; i < 100 && raft_role(nodes[k].r) != RAFT_LEADER; i++) {
        raft_tick(nodes[k].r);
        pump();
    }
    cr_assert_eq(raft_role(nodes[k].r), RAFT_LEADER);
}

static void tick_all(int times)
{
    for (int i = 0; i < times; i++) {
        for (unsigned k = 1; k <= nn; k++)
            if (!nodes[k].down)
                raft_tick(nodes[k].r);
        pump();
    }
}

static void propose(unsigned k, const char *s)
{
    struct raft_buf b = {s, strlen(s)};
    cr_assert_eq(raft_propose(nodes[k].r, &b, 1, NULL), 0);
    pump();
}

TestSuite(raft_core, .fini = stop);

Test(raft_core, single_server_elects_itself_and_commits_alone)
{
    start(1);
    elect(1);
    propose(1, "a");
    cr_assert_eq(raft_commit(nodes[1].r), 2); /* NOOP + "a" */
    cr_assert_eq(nodes[1].applied_values, 1);
}

Test(raft_core, three_servers_replicate_and_apply_everywhere)
{
    start(3);
    elect(1);
    for (int i = 0; i < 10; i++)
        propose(1, "record");
    tick_all(2); /* heartbeats carry the commit index */
    for (unsigned k = 1; k <= 3; k++) {
        cr_assert_eq(raft_commit(nodes[k].r), 11, "n%u", k);
        cr_assert_eq(nodes[k].applied_values, 10, "n%u", k);
        cr_assert_eq(raft_leader(nodes[k].r), 1);
    }
}

Test(raft_core, follower_refuses_proposals_with_enotleader)
{
    start(3);
    elect(1);
    struct raft_buf b = {"x", 1};
    cr_assert_eq(raft_propose(nodes[2].r, &b, 1, NULL), RAFT_ENOTLEADER);
}

Test(raft_core, batch_of_proposals_gets_consecutive_indexes)
{
    start(3);
    elect(1);
    struct raft_buf b[3] = {{"a", 1}, {"bb", 2}, {"", 0}};
    uint64_t index = 0;
    cr_assert_eq(raft_propose(nodes[1].r, b, 3, &index), 0);
    cr_assert_eq(index, 2);
    pump();
    cr_assert_eq(raft_commit(nodes[1].r), 4);
    cr_assert_eq(nodes[3].log[3].len, 0);
    cr_assert_eq(nodes[3].log[2].len, 2);
}

Test(raft_core, appends_stay_within_max_msg_bytes)
{
    opt_max_bytes = 100;
    start(3);
    opt_max_bytes = 0;
    elect(1);
    nodes[2].down = true; /* it falls behind: caught up later from storage */
    for (int i = 0; i < 40; i++)
        propose(1, "ten bytes.");
    most_in_append = 0;
    nodes[2].down = false;
    tick_all(30);
    cr_assert_eq(raft_commit(nodes[2].r), 41, "caught up (%llu)",
                 (unsigned long long)raft_commit(nodes[2].r));
    cr_assert_leq(most_in_append, 10, "100 bytes of 10-byte entries per APPEND, seen %zu",
                  most_in_append);
    cr_assert_geq(most_in_append, 2, "and more than one at a time");
}

Test(raft_core, transfer_hands_leadership_to_the_target)
{
    start(3);
    elect(1);
    propose(1, "a");
    cr_assert_eq(raft_transfer(nodes[1].r, 3), 0);
    pump();
    cr_assert_eq(raft_role(nodes[3].r), RAFT_LEADER);
    cr_assert_eq(raft_role(nodes[1].r), RAFT_FOLLOWER);
    cr_assert_eq(raft_term(nodes[3].r), raft_term(nodes[1].r));
}

Test(raft_core, cut_off_leader_steps_down_by_check_quorum)
{
    start(3);
    elect(1);
    nodes[1].down = true; /* isolated: nothing in or out */
    for (int i = 0; i < 30; i++) {
        raft_tick(nodes[1].r);
        pump();
    }
    cr_assert_neq(raft_role(nodes[1].r), RAFT_LEADER);
    struct raft_buf b = {"x", 1};
    cr_assert_eq(raft_propose(nodes[1].r, &b, 1, NULL), RAFT_ENOTLEADER);
}

Test(raft_core, followers_elect_a_new_leader_when_the_old_one_is_gone)
{
    start(3);
    elect(1);
    propose(1, "a");
    nodes[1].down = true;
    tick_all(60);
    unsigned leaders = 0;
    for (unsigned k = 2; k <= 3; k++)
        leaders += raft_role(nodes[k].r) == RAFT_LEADER;
    cr_assert_eq(leaders, 1);
}

Test(raft_core, lagging_follower_is_reset_to_the_leaders_log_start)
{
    start(3);
    elect(1);
    nodes[3].down = true;
    for (int i = 0; i < 20; i++)
        propose(1, "r");
    /* Retention on the leader: drop everything applied. */
    t_compact(&nodes[1], raft_applied(nodes[1].r));
    nodes[3].down = false;
    tick_all(20);
    cr_assert_eq(nodes[3].first, raft_applied(nodes[1].r) + 1);
    cr_assert_eq(raft_commit(nodes[3].r), raft_commit(nodes[1].r));
}

Test(raft_core, learner_is_added_caught_up_and_promoted)
{
    start(3);
    /* n3 starts outside the configuration. */
    raft_free(nodes[3].r);
    struct raft_conf conf = {.n = 2, .servers = {{1, true}, {2, true}}};
    for (unsigned k = 1; k <= 2; k++) {
        raft_free(nodes[k].r);
        struct raft_options o = {
            .id = k, .pre_vote = true, .check_quorum = true, .seed = 7, .conf = &conf};
        o.log = (struct raft_log_ops){&nodes[k], t_first, t_last, t_term, t_entries, NULL, NULL};
        cr_assert_eq(raft_new(&o, &nodes[k].r), 0);
    }
    struct raft_options o = {.id = 3, .pre_vote = true, .check_quorum = true, .seed = 7};
    o.log = (struct raft_log_ops){&nodes[3], t_first, t_last, t_term, t_entries, NULL, NULL};
    cr_assert_eq(raft_new(&o, &nodes[3].r), 0);
    elect(1);
    propose(1, "a");
    cr_assert_eq(raft_propose_conf(nodes[1].r, RAFT_CONF_ADD_LEARNER, 3, NULL), 0);
    pump();
    tick_all(3);
    const struct raft_conf *c = raft_conf(nodes[3].r);
    cr_assert_eq(c->n, 3);
    cr_assert_eq(raft_conf_find(c, 3) >= 0 && !c->servers[raft_conf_find(c, 3)].voter, 1);
    cr_assert_eq(raft_propose_conf(nodes[1].r, RAFT_CONF_ADD_VOTER, 3, NULL), 0);
    pump();
    tick_all(3);
    c = raft_conf(nodes[3].r);
    cr_assert(c->servers[raft_conf_find(c, 3)].voter);
    cr_assert_eq(raft_commit(nodes[3].r), raft_commit(nodes[1].r));
}

Test(raft_core, second_membership_change_waits_for_the_first)
{
    start(3);
    elect(1);
    cr_assert_eq(raft_propose_conf(nodes[1].r, RAFT_CONF_ADD_LEARNER, 4, NULL), 0);
    cr_assert_eq(raft_propose_conf(nodes[1].r, RAFT_CONF_REMOVE, 2, NULL), -EBUSY);
    pump();
}

Test(raft_core, conf_entries_round_trip)
{
    struct raft_conf c = {.n = 2, .servers = {{7, true}, {1ULL << 40, false}}}, d;
    unsigned char buf[RAFT_CONF_BYTES(2)];
    cr_assert_eq(raft_conf_encode(&c, buf), sizeof(buf));
    cr_assert_eq(raft_conf_decode(buf, sizeof(buf), &d), 0);
    cr_assert_eq(d.n, 2);
    cr_assert_eq(d.servers[1].id, 1ULL << 40);
    cr_assert_eq(d.servers[1].voter, false);
    cr_assert_eq(raft_conf_decode(buf, sizeof(buf) - 1, &d), -EINVAL);
}

Test(raft_core, restart_keeps_term_and_log_from_persisted_state_only)
{
    start(1);
    elect(1);
    propose(1, "a");
    uint64_t term = raft_term(nodes[1].r);
    raft_free(nodes[1].r);
    struct raft_conf conf = {.n = 1, .servers = {{1, true}}};
    struct raft_options o = {.id = 1, .seed = 9, .conf = &conf, .term = term, .vote = 1};
    o.log = (struct raft_log_ops){&nodes[1], t_first, t_last, t_term, t_entries, NULL, NULL};
    cr_assert_eq(raft_new(&o, &nodes[1].r), 0);
    cr_assert_eq(raft_last_index(nodes[1].r), 2);
    cr_assert_eq(raft_role(nodes[1].r), RAFT_FOLLOWER);
    elect(1);
    cr_assert_eq(raft_term(nodes[1].r), term + 1);
    pump();
    cr_assert_eq(raft_commit(nodes[1].r), 3);
}
