/*
 * tests/sim/bench.c -- proposals per second through the Raft core, no faults.
 *
 * A 3-server group runs in ONE thread: the leader and both followers, their
 * in-memory logs (a copy of every payload, persisted at once), message
 * delivery by direct call and the application of committed entries.  So the
 * figure is what one core sustains for the whole group's consensus work; in a
 * cluster each server does roughly a third of it.  Proposals are 16-byte
 * payloads, committed (on a majority) and applied on the leader before the
 * clock stops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "raft/raft.h"

#define NODES   3
#define PAYLOAD 16

struct ent {
    uint64_t term;
    uint8_t type;
    uint8_t len;
    unsigned char data[PAYLOAD];
};

struct node {
    uint64_t id;
    struct raft *r;
    struct ent *log; /* log[i] is index first + i */
    uint64_t first, n, cap;
    uint64_t snap_term; /* term of entry first - 1 */
    uint64_t applied_bytes;
};

static struct node nodes[NODES + 1];

static uint64_t s_first(void *ctx)
{
    return ((struct node *)ctx)->first;
}
static uint64_t s_last(void *ctx)
{
    struct node *nd = ctx;
    return nd->first + nd->n - 1;
}
static int s_term(void *ctx, uint64_t index, uint64_t *term)
{
    struct node *nd = ctx;
    if (index == nd->first - 1) {
        *term = nd->snap_term;
        return 0;
    }
    if (index < nd->first || index >= nd->first + nd->n)
        return -ENOENT;
    *term = nd->log[index - nd->first].term;
    return 0;
}
static int s_entries(void *ctx, uint64_t lo, uint64_t hi, struct raft_entry *out)
{
    struct node *nd = ctx;
    if (lo < nd->first || hi > nd->first + nd->n)
        return -ENOENT;
    for (uint64_t i = lo; i < hi; i++) {
        struct ent *e = &nd->log[i - nd->first];
        out[i - lo] = (struct raft_entry){e->term, i, e->type, e->data, e->len};
    }
    return 0;
}

static void persist(struct node *nd, const struct raft_entry *e, size_t n)
{
    uint64_t from = e[0].index;
    nd->n = from - nd->first; /* truncate */
    if (nd->n + n > nd->cap) {
        nd->cap = (nd->n + n) * 2;
        nd->log = realloc(nd->log, nd->cap * sizeof(*nd->log));
        if (!nd->log)
            exit(2);
    }
    for (size_t i = 0; i < n; i++) {
        struct ent *d = &nd->log[nd->n++];
        d->term = e[i].term;
        d->type = e[i].type;
        d->len = (uint8_t)e[i].len;
        memcpy(d->data, e[i].buf, e[i].len);
    }
}

/* Retention: keep memory bounded by dropping applied entries. */
static void compact(struct node *nd)
{
    uint64_t applied = raft_applied(nd->r);
    if (nd->n < 262144 || applied < nd->first + 131072)
        return;
    uint64_t k = applied - nd->first + 1 - 1024;
    nd->snap_term = nd->log[k - 1].term;
    memmove(nd->log, nd->log + k, (nd->n - k) * sizeof(*nd->log));
    nd->n -= k;
    nd->first += k;
}

static void pump_all(void)
{
    for (bool busy = true; busy;) {
        busy = false;
        for (int k = 1; k <= NODES; k++) {
            struct node *nd = &nodes[k];
            while (raft_has_ready(nd->r)) {
                busy = true;
                struct raft_ready rd;
                if (raft_ready(nd->r, &rd) != 0)
                    exit(2);
                uint64_t li = 0, lt = 0;
                if (rd.n_entries) {
                    persist(nd, rd.entries, rd.n_entries);
                    li = rd.entries[rd.n_entries - 1].index;
                    lt = rd.entries[rd.n_entries - 1].term;
                }
                for (size_t i = 0; i < rd.n_msgs; i++)
                    raft_step(nodes[rd.msgs[i].to].r, &rd.msgs[i]);
                for (uint64_t i = rd.apply_lo; i <= rd.apply_hi; i++)
                    nd->applied_bytes += nd->log[i - nd->first].len;
                raft_advance(nd->r);
                if (li)
                    raft_persisted(nd->r, li, lt);
                compact(nd);
            }
        }
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void setup(void)
{
    struct raft_conf conf = {.n = NODES};
    for (int k = 1; k <= NODES; k++)
        conf.servers[k - 1] = (struct raft_server){(uint64_t)k, true};
    for (int k = 1; k <= NODES; k++) {
        struct node *nd = &nodes[k];
        raft_free(nd->r);
        free(nd->log);
        memset(nd, 0, sizeof(*nd));
        nd->id = (uint64_t)k;
        nd->first = 1;
        struct raft_options o = {.id = nd->id,
                                 .pre_vote = true,
                                 .check_quorum = true,
                                 .seed = 42,
                                 .conf = &conf,
                                 .max_inflight = 64,
                                 .max_msg_entries = 4096};
        o.log = (struct raft_log_ops){nd, s_first, s_last, s_term, s_entries, NULL, NULL};
        if (raft_new(&o, &nd->r) != 0)
            exit(2);
    }
    /* Elect n1: tick it alone past its election timeout. */
    while (raft_role(nodes[1].r) != RAFT_LEADER) {
        raft_tick(nodes[1].r);
        pump_all();
    }
}

/* total proposals, `per_call` payloads per raft_propose, `per_ready`
 * proposals between two rounds of Ready processing. */
static void run(uint64_t total, unsigned per_call, unsigned per_ready)
{
    setup();
    struct raft *l = nodes[1].r;
    unsigned char payload[PAYLOAD];
    struct raft_buf bufs[1024];
    for (unsigned i = 0; i < per_call; i++)
        bufs[i] = (struct raft_buf){payload, PAYLOAD};
    double t0 = now_s();
    uint64_t done = 0;
    while (done < total) {
        for (unsigned k = 0; k < per_ready; k += per_call) {
            memcpy(payload, &done, 8);
            if (raft_propose(l, bufs, per_call, NULL) != 0)
                exit(3);
            done += per_call;
        }
        pump_all();
    }
    while (raft_applied(l) < raft_last_index(l)) {
        raft_tick(l);
        pump_all();
    }
    double t = now_s() - t0;
    printf("raft-bench: %8llu proposals, %4u per raft_propose, %5u per Ready: "
           "%6.2f M proposals/s committed+applied (3 servers on one core)\n",
           (unsigned long long)total, per_call, per_ready, (double)total / t / 1e6);
}

int main(int argc, char **argv)
{
    uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 4000000;
    run(total, 1, 1);
    run(total, 1, 64);
    run(total, 64, 1024);
    run(total, 1024, 4096);
    for (int k = 1; k <= NODES; k++) {
        raft_free(nodes[k].r);
        free(nodes[k].log);
    }
    return 0;
}
