/*
 * tests/sim/sim.c -- deterministic simulator for the Raft core.
 *
 * One process runs a whole cluster in virtual time from a seed.  Everything
 * random (faults, delays, the core's own PRNG seeds) derives from that seed,
 * and events are ordered by (time, sequence number), so a seed replays the
 * same schedule byte for byte: `sim --trace SEED` prints it.
 *
 * Model.  Each node has a "disk" (hard state, log, log start with its
 * snapshot) that survives crashes, and volatile state (the raft instance,
 * the queue of disk writes not yet completed, the state machine).  Disk
 * writes of entries complete after a random delay, in FIFO order; a crash
 * drops the queue.  Hard state is written before messages leave (the order
 * raft.h demands).  The network loses, duplicates, delays (so reorders)
 * messages and honours symmetric and asymmetric partitions.
 *
 * Wipes.  In some mixes a crashed node may come back with its disk erased
 * (empty log, term 0, no vote), as after a disk replacement, flagged
 * rebuilding (raft.h, REBUILDING); the flag is durable until a Ready says
 * rebuilt.  Like a careful operator, the simulator wipes a node only if no
 * other wiped node still rebuilds, only if all other nodes that have a
 * configuration agree on one of at least 3 voters, the last change being
 * 100 ms old (so the nodes not rebuilding are a majority of every
 * configuration in use: a wipe amid a half-applied change can leave no
 * electable node, as a dead one would), never changes the configuration
 * while one rebuilds, and only wipes a node that has been down longer than
 * any message stays in flight (the assumption raft.h states).  The checks
 * below hold across wipes: they are global, not per node.  Leaving
 * rebuilding is checked against its promise: the disk then holds every
 * entry known committed when the node came back.
 *
 * A run has a fault phase (the mix's faults plus client proposals,
 * leadership transfers, membership changes and log compaction) and a
 * healing phase (no faults, every node up): at its end a leader must exist,
 * have committed its whole log, and every member must have applied it.
 *
 * Checked after every event: one leader per term; Log Matching (an
 * (index, term) pair always names the same payload and the same previous
 * term); leader completeness (a new leader holds every committed entry);
 * state-machine safety (every applied entry equals the one every other node
 * applied at that index, snapshots carry the same state); commit never
 * moves back in a node's lifetime; no proposal value is committed twice;
 * acknowledged proposals are never lost; a rebuilding node stays a
 * follower.  At the liveness deadline no member may still be rebuilding.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raft/raft.h"

/* ======================================================================== */
/* Utilities                                                                */
/* ======================================================================== */

#define MAXU 9 /* servers: up to 7 initial voters + 2 joiners */

static uint64_t rnd_state;
static uint64_t rnd(void)
{
    /* splitmix64 */
    uint64_t z = (rnd_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static unsigned rn(unsigned n)
{
    return n ? (unsigned)(rnd() % n) : 0;
}
static bool chance(double p)
{
    return (double)(rnd() >> 11) / 9007199254740992.0 < p;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "sim: out of memory\n");
        exit(2);
    }
    return p;
}
static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "sim: out of memory\n");
        exit(2);
    }
    return p;
}

static uint64_t fnv(uint64_t h, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001B3ULL;
    return h;
}

/* ---- trace: only formatted when tracing (a failing seed is re-run) ---- */

static int tracing;  /* 0 off, 1 ring buffer, 2 stdout */
static uint64_t now; /* virtual milliseconds */
#define RING 600
static char *ring[RING];
static size_t ring_n;

#define TR(...)                                                                                    \
    do {                                                                                           \
        if (tracing)                                                                               \
            trace_line(__VA_ARGS__);                                                               \
    } while (0)

__attribute__((format(printf, 1, 2))) static void trace_line(const char *fmt, ...)
{
    char buf[512];
    int k = snprintf(buf, sizeof(buf), "%7llu.%03llu ", (unsigned long long)(now / 1000),
                     (unsigned long long)(now % 1000));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + k, sizeof(buf) - (size_t)k, fmt, ap);
    va_end(ap);
    if (tracing == 2) {
        puts(buf);
        return;
    }
    free(ring[ring_n % RING]);
    ring[ring_n % RING] = strdup(buf);
    ring_n++;
}

/* ======================================================================== */
/* Fault mixes                                                              */
/* ======================================================================== */

struct mix {
    const char *name;
    double loss, dup;
    unsigned delay_max; /* ms; delays are uniform in [1, delay_max] */
    double p_partition, p_crash, p_slow, p_transfer, p_conf, p_compact;
    unsigned disk_max; /* ms */
    double p_cut;      /* a new leader is crashed or isolated within ~20 ms */
    double p_wipe;     /* a restart (when allowed) comes with an empty disk */
};

static const struct mix mixes[] = {
    /* name       loss  dup  delay part  crash slow  xfer  conf  compact disk cut  wipe */
    {"calm", 0, 0, 3, 0, 0, 0, 0.05, 0, 0.05, 2, 0, 0},
    {"lossy", 0.2, 0.1, 40, 0, 0, 0.1, 0.05, 0, 0.05, 3, 0, 0},
    {"partition", 0.02, 0.02, 10, 0.3, 0, 0.05, 0.05, 0, 0.05, 3, 0.6, 0},
    {"crash", 0.02, 0.02, 10, 0, 0.25, 0, 0.05, 0, 0.2, 25, 0.6, 0.2},
    {"membership", 0.05, 0.05, 10, 0.05, 0.05, 0, 0.15, 0.4, 0.2, 5, 0.05, 0},
    {"chaos", 0.1, 0.05, 30, 0.2, 0.15, 0.1, 0.1, 0.2, 0.2, 20, 0.4, 0.2},
    /* Disk losses amid partitions, no membership changes (so CheckQuorum
     * is sometimes off): stale leaders meet wiped nodes. */
    {"wipe", 0.05, 0.05, 10, 0.3, 0.25, 0.05, 0.05, 0, 0.2, 10, 0.6, 0.5},
};
#define NMIX (sizeof(mixes) / sizeof(mixes[0]))
static const unsigned sizes[] = {1, 3, 5, 7};

#define FAULT_MS         4000 /* fault phase */
#define PROPOSE_UNTIL_MS 2000 /* proposals continue this long after healing */
#define LIVE_MS          6000 /* liveness deadline after healing */
#define TICK_MS          10

/* ======================================================================== */
/* Cluster state                                                            */
/* ======================================================================== */

struct dentry {
    uint64_t term, index;
    uint8_t type;
    uint32_t len;
    unsigned char *buf;
};

/* What survives a crash. */
struct disk {
    uint64_t term, vote;
    uint64_t first; /* index of log[0] */
    struct dentry *log;
    size_t n, cap;
    uint64_t snap_index, snap_term, snap_hash; /* log start and its state */
    struct raft_conf snap_conf;
    bool rebuilding; /* wiped and not yet rebuilt (raft_options.rebuilding) */
};

/* A queued disk write. */
struct wop {
    bool reset;
    uint64_t done; /* completion time */
    struct dentry *ents;
    size_t n;
    uint64_t snap_index, snap_term, snap_hash;
    struct raft_conf conf;
    struct wop *next;
};

struct node {
    uint64_t id;
    bool up;
    unsigned incarnation;
    struct raft *r;
    struct disk d;
    struct wop *wq, *wq_tail;
    unsigned tick_ms;
    uint64_t down_since;   /* time of the last crash */
    uint64_t rebuild_need; /* highest index known committed when wiped */
    /* state machine: hash of applied NORMAL values, per index */
    uint64_t sm_base; /* index of hist[0] */
    uint64_t *hist;
    size_t hist_n, hist_cap;
    /* checker */
    uint64_t seen_commit;
    bool was_leader;
    uint64_t was_leader_term;
    uint64_t lead_commit_term; /* term of its last commit as leader */
    uint64_t lead_commit;
    unsigned char snap_buf[16];
};

struct netmsg {
    struct raft_msg m;
    struct raft_entry *ents;
    unsigned char *data;
};

enum { EV_TICK, EV_MSG, EV_DISK, EV_CHAOS, EV_PROPOSE, EV_HEAL, EV_CUT };
struct ev {
    uint64_t time, seq;
    int kind, node;
    unsigned inc;
    struct netmsg *msg;
};

/* Proposal bookkeeping: value v (1..) was proposed at node/index/term. */
struct prop {
    uint64_t node, index, term;
    bool acked, healed;
};

static struct {
    const struct mix *mix;
    unsigned n, u; /* initial voters, universe */
    struct node nodes[MAXU + 1];
    bool blocked[MAXU + 1][MAXU + 1];
    double loss, dup;
    unsigned delay_max, disk_max;
    bool healed;
    uint64_t heal_time;
    /* raft options drawn per seed */
    unsigned max_msg_entries, max_inflight, heartbeat_ticks;
    bool pre_vote, check_quorum;
    /* events */
    struct ev *heap;
    size_t heap_n, heap_cap;
    uint64_t seq;
    /* checker */
    uint64_t *leader_of; /* per term */
    size_t leader_cap;
    uint64_t *gc_term, *gc_hash, *gc_val; /* per index: committed term, */
    uint8_t *gc_applied;                  /* applied hash, value       */
    size_t gc_cap;
    uint64_t gc_max;     /* highest index known committed */
    struct prop *props;  /* by value */
    uint64_t *val_index; /* index at which a value committed */
    size_t n_props, props_cap;
    /* Log Matching registry: (index, term) -> payload hash, prev term */
    struct reg {
        uint64_t index, term, hash, prev;
    } * reg;
    size_t reg_cap, reg_n;
    /* wipes */
    struct raft_conf boot; /* genesis configuration (as of index 0) */
    uint64_t conf_time;    /* of the last configuration change proposed */
    /* stats */
    uint64_t steps, commits, wipes, rebuilds;
    char failure[512];
    bool failed;
} S;

static __attribute__((format(printf, 1, 2))) void fail(const char *fmt, ...)
{
    if (S.failed)
        return;
    S.failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(S.failure, sizeof(S.failure), fmt, ap);
    va_end(ap);
    TR("FAILURE: %s", S.failure);
}

/* ---- event heap ---------------------------------------------------------- */

static bool ev_less(const struct ev *a, const struct ev *b)
{
    return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void push_ev(uint64_t time, int kind, int node, struct netmsg *msg)
{
    if (S.heap_n == S.heap_cap) {
        S.heap_cap = S.heap_cap ? 2 * S.heap_cap : 1024;
        S.heap = xrealloc(S.heap, S.heap_cap * sizeof(*S.heap));
    }
    struct ev e = {time, S.seq++, kind, node, node ? S.nodes[node].incarnation : 0, msg};
    size_t i = S.heap_n++;
    while (i > 0 && ev_less(&e, &S.heap[(i - 1) / 2])) {
        S.heap[i] = S.heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    S.heap[i] = e;
}

static struct ev pop_ev(void)
{
    struct ev top = S.heap[0];
    struct ev last = S.heap[--S.heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= S.heap_n)
            break;
        if (c + 1 < S.heap_n && ev_less(&S.heap[c + 1], &S.heap[c]))
            c++;
        if (!ev_less(&S.heap[c], &last))
            break;
        S.heap[i] = S.heap[c];
        i = c;
    }
    if (S.heap_n > 0)
        S.heap[i] = last;
    return top;
}

/* ---- growable checker arrays -------------------------------------------- */

static void gc_grow(uint64_t index)
{
    if (index < S.gc_cap)
        return;
    size_t cap = S.gc_cap ? S.gc_cap : 1024;
    while (cap <= index)
        cap *= 2;
    S.gc_term = xrealloc(S.gc_term, cap * sizeof(uint64_t));
    S.gc_hash = xrealloc(S.gc_hash, cap * sizeof(uint64_t));
    S.gc_val = xrealloc(S.gc_val, cap * sizeof(uint64_t));
    S.gc_applied = xrealloc(S.gc_applied, cap);
    for (size_t i = S.gc_cap; i < cap; i++) {
        S.gc_term[i] = S.gc_hash[i] = S.gc_val[i] = 0;
        S.gc_applied[i] = 0;
    }
    S.gc_cap = cap;
}

static uint64_t *leader_slot(uint64_t term)
{
    if (term >= S.leader_cap) {
        size_t cap = S.leader_cap ? S.leader_cap : 64;
        while (cap <= term)
            cap *= 2;
        S.leader_of = xrealloc(S.leader_of, cap * sizeof(uint64_t));
        memset(S.leader_of + S.leader_cap, 0, (cap - S.leader_cap) * sizeof(uint64_t));
        S.leader_cap = cap;
    }
    return &S.leader_of[term];
}

static struct reg *reg_find(uint64_t index, uint64_t term, bool insert)
{
    if (S.reg_n * 2 >= S.reg_cap) {
        size_t cap = S.reg_cap ? 2 * S.reg_cap : 4096;
        struct reg *old = S.reg;
        size_t oldcap = S.reg_cap;
        S.reg = calloc(cap, sizeof(*S.reg));
        if (!S.reg)
            exit(2);
        S.reg_cap = cap;
        S.reg_n = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].index) {
                struct reg *s = reg_find(old[i].index, old[i].term, true);
                *s = old[i];
            }
        free(old);
    }
    size_t h = (size_t)((index * 0x9E3779B97F4A7C15ULL) ^ (term * 0xC2B2AE3D27D4EB4FULL));
    for (size_t i = h & (S.reg_cap - 1);; i = (i + 1) & (S.reg_cap - 1)) {
        if (S.reg[i].index == index && S.reg[i].term == term)
            return &S.reg[i];
        if (S.reg[i].index == 0) {
            if (!insert)
                return NULL;
            S.reg[i].index = index;
            S.reg[i].term = term;
            S.reg_n++;
            return &S.reg[i];
        }
    }
}

/* ======================================================================== */
/* Disk as seen by the core (struct raft_log_ops)                           */
/* ======================================================================== */

static uint64_t d_first(void *ctx)
{
    return ((struct node *)ctx)->d.first;
}
static uint64_t d_last(void *ctx)
{
    struct disk *d = &((struct node *)ctx)->d;
    return d->first + d->n - 1;
}
static int d_term(void *ctx, uint64_t index, uint64_t *term)
{
    struct disk *d = &((struct node *)ctx)->d;
    if (index == d->first - 1) {
        *term = d->snap_term;
        return 0;
    }
    if (index < d->first || index >= d->first + d->n)
        return -ENOENT;
    *term = d->log[index - d->first].term;
    return 0;
}
static int d_entries(void *ctx, uint64_t lo, uint64_t hi, struct raft_entry *out)
{
    struct disk *d = &((struct node *)ctx)->d;
    if (lo < d->first || hi > d->first + d->n)
        return -ENOENT;
    for (uint64_t i = lo; i < hi; i++) {
        struct dentry *e = &d->log[i - d->first];
        out[i - lo] = (struct raft_entry){e->term, e->index, e->type, e->buf, e->len};
    }
    return 0;
}
static int d_snapshot(void *ctx, const void **data, size_t *len)
{
    struct node *nd = ctx;
    memcpy(nd->snap_buf, &nd->d.snap_index, 8);
    memcpy(nd->snap_buf + 8, &nd->d.snap_hash, 8);
    *data = nd->snap_buf;
    *len = 16;
    return 0;
}

static void dentry_free(struct dentry *e)
{
    free(e->buf);
}

static void disk_truncate(struct disk *d, uint64_t from)
{
    while (d->n > 0 && d->first + d->n - 1 >= from)
        dentry_free(&d->log[--d->n]);
}

static void disk_free(struct disk *d)
{
    disk_truncate(d, 0);
    free(d->log);
    memset(d, 0, sizeof(*d));
}

/* Conf as of index (for a snapshot taken at index): scan the dropped part. */
static void disk_compact(struct node *nd, uint64_t upto)
{
    struct disk *d = &nd->d;
    if (upto < d->first || upto >= d->first + d->n || upto > nd->sm_base + nd->hist_n - 1)
        return;
    size_t k = (size_t)(upto - d->first + 1);
    for (size_t i = 0; i < k; i++) {
        struct dentry *e = &d->log[i];
        if (e->type == RAFT_ENTRY_CONF)
            raft_conf_decode(e->buf, e->len, &d->snap_conf);
    }
    d->snap_index = upto;
    d->snap_term = d->log[k - 1].term;
    d->snap_hash = nd->hist[upto - nd->sm_base];
    for (size_t i = 0; i < k; i++)
        dentry_free(&d->log[i]);
    memmove(d->log, d->log + k, (d->n - k) * sizeof(*d->log));
    d->n -= k;
    d->first = upto + 1;
    TR("n%llu compacts its log up to %llu", (unsigned long long)nd->id, (unsigned long long)upto);
}

/* ======================================================================== */
/* Nodes                                                                    */
/* ======================================================================== */

static void sm_reset(struct node *nd, uint64_t index, uint64_t hash)
{
    nd->sm_base = index;
    nd->hist_n = 0;
    if (nd->hist_cap == 0) {
        nd->hist_cap = 256;
        nd->hist = xmalloc(nd->hist_cap * sizeof(uint64_t));
    }
    nd->hist[nd->hist_n++] = hash;
}

static void sm_push(struct node *nd, uint64_t hash)
{
    if (nd->hist_n == nd->hist_cap) {
        nd->hist_cap *= 2;
        nd->hist = xrealloc(nd->hist, nd->hist_cap * sizeof(uint64_t));
    }
    nd->hist[nd->hist_n++] = hash;
}

static void node_start(struct node *nd)
{
    struct raft_options o;
    memset(&o, 0, sizeof(o));
    o.id = nd->id;
    o.election_ticks = 10;
    o.heartbeat_ticks = S.heartbeat_ticks;
    o.max_inflight = S.max_inflight;
    o.max_msg_entries = S.max_msg_entries;
    o.pre_vote = S.pre_vote;
    o.check_quorum = S.check_quorum;
    o.seed = rnd();
    o.term = nd->d.term;
    o.vote = nd->d.vote;
    o.conf = &nd->d.snap_conf;
    o.rebuilding = nd->d.rebuilding;
    o.log = (struct raft_log_ops){nd, d_first, d_last, d_term, d_entries, d_snapshot, NULL};
    int rv = raft_new(&o, &nd->r);
    if (rv != 0) {
        fail("raft_new(n%llu): %d", (unsigned long long)nd->id, rv);
        return;
    }
    nd->up = true;
    nd->incarnation++;
    nd->seen_commit = raft_commit(nd->r);
    nd->was_leader = false;
    nd->lead_commit = 0;
    nd->lead_commit_term = 0;
    sm_reset(nd, nd->d.snap_index, nd->d.snap_hash);
    push_ev(now + 1 + rn(nd->tick_ms), EV_TICK, (int)nd->id, NULL);
}

static void node_crash(struct node *nd)
{
    TR("CRASH n%llu (loses %s)", (unsigned long long)nd->id,
       nd->wq ? "unwritten entries" : "nothing on disk");
    raft_free(nd->r);
    nd->r = NULL;
    nd->up = false;
    nd->down_since = now;
    nd->incarnation++;
    while (nd->wq) {
        struct wop *w = nd->wq;
        nd->wq = w->next;
        for (size_t i = 0; i < w->n; i++)
            dentry_free(&w->ents[i]);
        free(w->ents);
        free(w);
    }
    nd->wq_tail = NULL;
}

static unsigned conf_voters(const struct raft_conf *c)
{
    unsigned n = 0;
    for (unsigned i = 0; i < c->n; i++)
        n += c->servers[i].voter;
    return n;
}

static bool any_rebuilding(void)
{
    for (unsigned i = 1; i <= S.u; i++)
        if (S.nodes[i].d.rebuilding)
            return true;
    return false;
}

/* The latest configuration in a node's log (in memory if it is up). */
static void node_conf(struct node *nd, struct raft_conf *out)
{
    if (nd->up) {
        *out = *raft_conf(nd->r);
        return;
    }
    *out = nd->d.snap_conf;
    for (size_t i = nd->d.n; i-- > 0;)
        if (nd->d.log[i].type == RAFT_ENTRY_CONF) {
            raft_conf_decode(nd->d.log[i].buf, nd->d.log[i].len, out);
            return;
        }
}

static bool conf_same(const struct raft_conf *a, const struct raft_conf *b)
{
    if (a->n != b->n)
        return false;
    for (unsigned i = 0; i < a->n; i++) {
        int j = raft_conf_find(b, a->servers[i].id);
        if (j < 0 || b->servers[j].voter != a->servers[i].voter)
            return false;
    }
    return true;
}

/* The "wipe" fault, drawn when a crashed node restarts: its disk is
 * replaced by an empty one (genesis configuration as of index 0) and it
 * starts rebuilding.  Only when a careful operator would (see the header). */
static void maybe_wipe(struct node *nd)
{
    if (S.mix->p_wipe == 0 || !chance(S.mix->p_wipe))
        return;
    if (now - nd->down_since <= S.mix->delay_max || (S.conf_time && now < S.conf_time + 100))
        return;
    struct raft_conf ref, c;
    bool have = false;
    for (unsigned i = 1; i <= S.u; i++) {
        if (i == nd->id)
            continue;
        if (S.nodes[i].d.rebuilding)
            return;
        /* Joiners never added have no view (they never campaign, and no
         * candidate counts their votes); any other view must agree, even
         * that of a leader that removed itself and still leads. */
        node_conf(&S.nodes[i], have ? &c : &ref);
        if ((have ? &c : &ref)->n == 0)
            continue;
        if (have && !conf_same(&ref, &c))
            return;
        have = true;
    }
    if (!have || conf_voters(&ref) < 3)
        return;
    disk_free(&nd->d);
    nd->d.first = 1;
    if (nd->id <= S.n)
        nd->d.snap_conf = S.boot;
    nd->d.rebuilding = true;
    nd->rebuild_need = S.gc_max;
    S.wipes++;
    TR("WIPE n%llu: restarts with an empty disk, rebuilding", (unsigned long long)nd->id);
}

/* ---- network ------------------------------------------------------------- */

static const char *mname(int t)
{
    return raft_msg_name(t);
}

static const char *hint(const struct raft_msg *m)
{
    static char b[64];
    snprintf(b, sizeof(b), "%llu/%llu", (unsigned long long)m->hint_index,
             (unsigned long long)m->hint_term);
    return b;
}

/* Rebuilding marks of a message, for the trace. */
static const char *rmarks(const struct raft_msg *m)
{
    static char b[48];
    b[0] = 0;
    if ((m->type == RAFT_MSG_APPEND_RESP || m->type == RAFT_MSG_HEARTBEAT_RESP) && m->rebuilding)
        snprintf(b, sizeof(b), " REBUILDING life %04llx",
                 (unsigned long long)(m->rebuild_id & 0xffff));
    else if ((m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
              m->type == RAFT_MSG_SNAPSHOT) &&
             m->rebuild_commit)
        snprintf(b, sizeof(b), " rebuild_commit %llu for %04llx",
                 (unsigned long long)m->rebuild_commit,
                 (unsigned long long)(m->rebuild_for & 0xffff));
    return b;
}

static struct netmsg *msg_copy(const struct raft_msg *m)
{
    struct netmsg *c = xmalloc(sizeof(*c));
    c->m = *m;
    c->ents = NULL;
    c->data = NULL;
    size_t bytes = m->snap_len;
    for (size_t i = 0; i < m->n_entries; i++)
        bytes += m->entries[i].len;
    if (bytes)
        c->data = xmalloc(bytes);
    size_t off = 0;
    if (m->n_entries) {
        c->ents = xmalloc(m->n_entries * sizeof(*c->ents));
        for (size_t i = 0; i < m->n_entries; i++) {
            c->ents[i] = m->entries[i];
            if (m->entries[i].len) {
                memcpy(c->data + off, m->entries[i].buf, m->entries[i].len);
                c->ents[i].buf = c->data + off;
                off += m->entries[i].len;
            }
        }
    }
    c->m.entries = c->ents;
    if (m->snap_len) {
        memcpy(c->data + off, m->snap_data, m->snap_len);
        c->m.snap_data = c->data + off;
    }
    return c;
}

static void msg_free(struct netmsg *c)
{
    free(c->ents);
    free(c->data);
    free(c);
}

static void net_send(const struct raft_msg *m)
{
    if (m->to == 0 || m->to > S.u || S.blocked[m->from][m->to] || chance(S.loss)) {
        TR("  n%llu -> n%llu %s dropped", (unsigned long long)m->from, (unsigned long long)m->to,
           mname(m->type));
        return;
    }
    int copies = chance(S.dup) ? 2 : 1;
    for (int i = 0; i < copies; i++)
        push_ev(now + 1 + rn(S.delay_max), EV_MSG, 0, msg_copy(m));
}

/* ---- the Ready loop ------------------------------------------------------ */

static uint64_t entry_hash(const struct raft_entry *e)
{
    uint64_t h = fnv(0xcbf29ce484222325ULL, &e->type, 1);
    return fnv(h, e->buf, e->len);
}

static uint64_t entry_value(const struct dentry *e)
{
    uint64_t v = 0;
    if (e->type == RAFT_ENTRY_NORMAL && e->len >= 8)
        memcpy(&v, e->buf, 8);
    return v;
}

static void wq_push(struct node *nd, struct wop *w)
{
    uint64_t done = now + rn(S.disk_max + 1);
    if (nd->wq_tail && nd->wq_tail->done > done)
        done = nd->wq_tail->done;
    w->done = done;
    w->next = NULL;
    if (nd->wq_tail)
        nd->wq_tail->next = w;
    else
        nd->wq = w;
    nd->wq_tail = w;
    push_ev(done, EV_DISK, (int)nd->id, NULL);
}

/* Apply committed entry index (read from the disk, where it must be). */
static void apply_one(struct node *nd, uint64_t index)
{
    struct disk *d = &nd->d;
    if (index < d->first || index >= d->first + d->n) {
        fail("n%llu told to apply %llu which is not on its disk [%llu, %llu]",
             (unsigned long long)nd->id, (unsigned long long)index, (unsigned long long)d->first,
             (unsigned long long)(d->first + d->n - 1));
        return;
    }
    if (index != nd->sm_base + nd->hist_n) {
        fail("n%llu applies %llu out of order (next %llu)", (unsigned long long)nd->id,
             (unsigned long long)index, (unsigned long long)(nd->sm_base + nd->hist_n));
        return;
    }
    struct dentry *e = &d->log[index - d->first];
    uint64_t v = entry_value(e);
    uint64_t h = nd->hist[nd->hist_n - 1];
    if (e->type == RAFT_ENTRY_NORMAL)
        h = fnv(h, e->buf, e->len);
    sm_push(nd, h);
    gc_grow(index);
    if (!S.gc_applied[index]) {
        S.gc_applied[index] = 1;
        S.gc_hash[index] = h;
        S.gc_val[index] = v;
        if (S.gc_term[index] == 0)
            S.gc_term[index] = e->term;
        S.commits++;
        if (v) {
            if (v > S.n_props) {
                fail("applied unknown value %llu", (unsigned long long)v);
                return;
            }
            if (S.val_index[v] && S.val_index[v] != index) {
                fail("value %llu committed twice: at %llu and %llu", (unsigned long long)v,
                     (unsigned long long)S.val_index[v], (unsigned long long)index);
                return;
            }
            S.val_index[v] = index;
        }
    }
    if (S.gc_hash[index] != h || S.gc_val[index] != v || S.gc_term[index] != e->term) {
        fail("state machine safety: n%llu applied index %llu term %llu value %llu, "
             "others applied term %llu value %llu",
             (unsigned long long)nd->id, (unsigned long long)index, (unsigned long long)e->term,
             (unsigned long long)v, (unsigned long long)S.gc_term[index],
             (unsigned long long)S.gc_val[index]);
        return;
    }
    TR("  n%llu applies %llu (term %llu, %s %llu)", (unsigned long long)nd->id,
       (unsigned long long)index, (unsigned long long)e->term,
       e->type == RAFT_ENTRY_NORMAL ? "value"
       : e->type == RAFT_ENTRY_CONF ? "conf"
                                    : "noop",
       (unsigned long long)v);
    if (v) {
        struct prop *p = &S.props[v];
        if (p->node == nd->id && p->index == index && p->term == e->term && !p->acked) {
            p->acked = true;
            TR("  value %llu acknowledged to its client", (unsigned long long)v);
        }
    }
}

static void pump(struct node *nd)
{
    while (!S.failed && nd->r && raft_has_ready(nd->r)) {
        struct raft_ready rd;
        if (raft_ready(nd->r, &rd) != 0) {
            fail("raft_ready failed");
            return;
        }
        if (rd.role_changed)
            TR("n%llu is %s in term %llu (leader n%llu)", (unsigned long long)nd->id,
               raft_role_name(rd.role), (unsigned long long)raft_term(nd->r),
               (unsigned long long)rd.leader);
        /* Leaders cut off right after winning leave entries of their
         * term on few servers: the ground of Raft's Figure 8. */
        if (rd.role_changed && rd.role == RAFT_LEADER && !S.healed && chance(S.mix->p_cut))
            push_ev(now + rn(20), EV_CUT, (int)nd->id, NULL);
        /* ... and right after they commit (above all their first
         * commit, which covers the previous terms' tail). */
        if (rd.role == RAFT_LEADER && !S.healed && rd.commit > nd->lead_commit) {
            bool first = nd->lead_commit_term != raft_term(nd->r);
            nd->lead_commit_term = raft_term(nd->r);
            if (chance(first ? S.mix->p_cut : S.mix->p_cut / 20))
                push_ev(now + rn(3), EV_CUT, (int)nd->id, NULL);
        }
        if (rd.role == RAFT_LEADER)
            nd->lead_commit = rd.commit;
        if (rd.reset) {
            uint64_t idx, hash;
            memcpy(&idx, rd.snap.snap_data, 8);
            memcpy(&hash, (const char *)rd.snap.snap_data + 8, 8);
            TR("n%llu resets its log to start after %llu (term %llu)", (unsigned long long)nd->id,
               (unsigned long long)rd.snap.index, (unsigned long long)rd.snap.log_term);
            gc_grow(idx);
            if (idx != rd.snap.index || (S.gc_applied[idx] && S.gc_hash[idx] != hash)) {
                fail("snapshot at %llu carries a state that differs from the "
                     "applied one",
                     (unsigned long long)idx);
                return;
            }
            sm_reset(nd, idx, hash);
            struct wop *w = xmalloc(sizeof(*w));
            memset(w, 0, sizeof(*w));
            w->reset = true;
            w->snap_index = rd.snap.index;
            w->snap_term = rd.snap.log_term;
            w->snap_hash = hash;
            w->conf = rd.snap.snap_conf;
            wq_push(nd, w);
        }
        if (rd.n_entries) {
            struct wop *w = xmalloc(sizeof(*w));
            memset(w, 0, sizeof(*w));
            w->n = rd.n_entries;
            w->ents = xmalloc(w->n * sizeof(*w->ents));
            for (size_t i = 0; i < w->n; i++) {
                const struct raft_entry *e = &rd.entries[i];
                /* Log Matching, inductively: (index, term) names
                 * one payload and one previous term. */
                uint64_t prev = 0, h = entry_hash(e);
                bool prev_ok = raft_log_term(nd->r, e->index - 1, &prev) == 0;
                struct reg *g = reg_find(e->index, e->term, true);
                if (g->hash == 0)
                    g->hash = h;
                if (g->prev == 0 && prev_ok)
                    g->prev = prev + 1;
                if (g->hash != h || (prev_ok && g->prev != prev + 1)) {
                    fail("log matching: n%llu has entry %llu term %llu that "
                         "differs from another log's",
                         (unsigned long long)nd->id, (unsigned long long)e->index,
                         (unsigned long long)e->term);
                    return;
                }
                w->ents[i] = (struct dentry){e->term, e->index, e->type, (uint32_t)e->len, NULL};
                if (e->len) {
                    w->ents[i].buf = xmalloc(e->len);
                    memcpy(w->ents[i].buf, e->buf, e->len);
                }
            }
            TR("n%llu writes entries %llu..%llu (term %llu..%llu)", (unsigned long long)nd->id,
               (unsigned long long)rd.entries[0].index,
               (unsigned long long)rd.entries[w->n - 1].index,
               (unsigned long long)rd.entries[0].term,
               (unsigned long long)rd.entries[w->n - 1].term);
            wq_push(nd, w);
        }
        if (rd.hs_changed) {
            nd->d.term = rd.term;
            nd->d.vote = rd.vote;
            TR("n%llu persists term %llu vote n%llu", (unsigned long long)nd->id,
               (unsigned long long)rd.term, (unsigned long long)rd.vote);
        }
        if (rd.rebuilt) {
            if (!nd->d.rebuilding) {
                fail("n%llu reports rebuilt without rebuilding", (unsigned long long)nd->id);
                return;
            }
            /* What leaving promises: the disk holds everything that
             * was committed when the node came back. */
            struct disk *d = &nd->d;
            uint64_t need = nd->rebuild_need, last = d->first + d->n - 1;
            if (need > last) {
                fail("n%llu left rebuilding with its disk ending at %llu, but %llu was "
                     "committed when it came back",
                     (unsigned long long)nd->id, (unsigned long long)last,
                     (unsigned long long)need);
                return;
            }
            for (uint64_t i = d->first; i <= need; i++)
                if (S.gc_term[i] && d->log[i - d->first].term != S.gc_term[i]) {
                    fail("n%llu left rebuilding with entry %llu of term %llu, but term %llu "
                         "was committed there",
                         (unsigned long long)nd->id, (unsigned long long)i,
                         (unsigned long long)d->log[i - d->first].term,
                         (unsigned long long)S.gc_term[i]);
                    return;
                }
            nd->d.rebuilding = false;
            S.rebuilds++;
            TR("n%llu rebuilt (commit %llu, log up to %llu): clears its flag",
               (unsigned long long)nd->id, (unsigned long long)rd.commit,
               (unsigned long long)raft_last_index(nd->r));
        }
        for (size_t i = 0; i < rd.n_msgs; i++) {
            const struct raft_msg *m = &rd.msgs[i];
            TR("  n%llu -> n%llu %s term %llu idx %llu/%llu n=%zu commit %llu%s%s%s",
               (unsigned long long)m->from, (unsigned long long)m->to, mname(m->type),
               (unsigned long long)m->term, (unsigned long long)m->index,
               (unsigned long long)m->log_term, m->n_entries, (unsigned long long)m->commit,
               m->reject ? " REJECT hint " : "", m->reject ? hint(m) : "", rmarks(m));
            net_send(m);
        }
        for (uint64_t i = rd.apply_lo; i <= rd.apply_hi && !S.failed; i++)
            apply_one(nd, i);
        raft_advance(nd->r);
    }
}

/* ---- per-step checks ------------------------------------------------------ */

static void check_node(struct node *nd)
{
    if (!nd->up || S.failed)
        return;
    struct raft *r = nd->r;
    uint64_t term = raft_term(r), c = raft_commit(r);
    if (c < nd->seen_commit) {
        fail("commit index of n%llu moved back from %llu to %llu", (unsigned long long)nd->id,
             (unsigned long long)nd->seen_commit, (unsigned long long)c);
        return;
    }
    /* Everything a node considers committed is the one committed entry. */
    gc_grow(c);
    for (uint64_t i = nd->seen_commit + 1; i <= c; i++) {
        uint64_t t;
        if (raft_log_term(r, i, &t) != 0)
            continue; /* jumped over by a reset */
        if (S.gc_term[i] == 0)
            S.gc_term[i] = t;
        else if (S.gc_term[i] != t) {
            fail("n%llu commits index %llu with term %llu, but term %llu was "
                 "committed there",
                 (unsigned long long)nd->id, (unsigned long long)i, (unsigned long long)t,
                 (unsigned long long)S.gc_term[i]);
            return;
        }
    }
    if (c > S.gc_max)
        S.gc_max = c;
    nd->seen_commit = c;
    if (raft_rebuilding(r) && (raft_role(r) != RAFT_FOLLOWER || !nd->d.rebuilding)) {
        fail("n%llu is %s in term %llu while rebuilding%s", (unsigned long long)nd->id,
             raft_role_name(raft_role(r)), (unsigned long long)term,
             nd->d.rebuilding ? "" : " (its flag is cleared)");
        return;
    }
    if (raft_role(r) != RAFT_LEADER) {
        nd->was_leader = false;
        return;
    }
    uint64_t *slot = leader_slot(term);
    if (*slot && *slot != nd->id) {
        fail("two leaders in term %llu: n%llu and n%llu", (unsigned long long)term,
             (unsigned long long)*slot, (unsigned long long)nd->id);
        return;
    }
    *slot = nd->id;
    if (nd->was_leader && nd->was_leader_term == term)
        return;
    nd->was_leader = true;
    nd->was_leader_term = term;
    /* Leader completeness. */
    for (uint64_t i = 1; i <= S.gc_max; i++) {
        uint64_t t;
        if (S.gc_term[i] == 0)
            continue;
        if (raft_log_term(r, i, &t) != 0) {
            if (i >= nd->d.first)
                goto missing;
            continue; /* compacted: it was applied here */
        }
        if (t != S.gc_term[i])
            goto missing;
        continue;
    missing:
        fail("leader completeness: n%llu leads term %llu without committed entry %llu "
             "(term %llu)",
             (unsigned long long)nd->id, (unsigned long long)term, (unsigned long long)i,
             (unsigned long long)S.gc_term[i]);
        return;
    }
}

/* ======================================================================== */
/* Events                                                                   */
/* ======================================================================== */

static struct node *node_of(uint64_t id)
{
    return &S.nodes[id];
}

static void on_tick(struct node *nd)
{
    raft_tick(nd->r);
    pump(nd);
    push_ev(now + nd->tick_ms, EV_TICK, (int)nd->id, NULL);
}

static void on_msg(struct netmsg *c)
{
    struct node *nd = node_of(c->m.to);
    if (!nd->up || S.blocked[c->m.from][c->m.to]) {
        msg_free(c);
        return;
    }
    TR("n%llu <- n%llu %s term %llu idx %llu/%llu n=%zu commit %llu%s%s",
       (unsigned long long)c->m.to, (unsigned long long)c->m.from, mname(c->m.type),
       (unsigned long long)c->m.term, (unsigned long long)c->m.index,
       (unsigned long long)c->m.log_term, c->m.n_entries, (unsigned long long)c->m.commit,
       c->m.reject ? " REJECT" : "", rmarks(&c->m));
    int rv = raft_step(nd->r, &c->m);
    msg_free(c);
    if (rv != 0)
        fail("raft_step: %d", rv);
    pump(nd);
}

static void on_disk(struct node *nd)
{
    struct wop *w = nd->wq;
    if (!w || w->done > now)
        return;
    nd->wq = w->next;
    if (!nd->wq)
        nd->wq_tail = NULL;
    struct disk *d = &nd->d;
    if (w->reset) {
        disk_truncate(d, 0);
        d->first = w->snap_index + 1;
        d->snap_index = w->snap_index;
        d->snap_term = w->snap_term;
        d->snap_hash = w->snap_hash;
        d->snap_conf = w->conf;
        TR("n%llu disk: reset to %llu done", (unsigned long long)nd->id,
           (unsigned long long)w->snap_index);
        raft_reset_done(nd->r, w->snap_index, w->snap_term);
    } else {
        uint64_t from = w->ents[0].index;
        disk_truncate(d, from);
        if (from != d->first + d->n)
            fail("n%llu writes entry %llu after a log ending at %llu", (unsigned long long)nd->id,
                 (unsigned long long)from, (unsigned long long)(d->first + d->n - 1));
        if (d->n + w->n > d->cap) {
            d->cap = (d->n + w->n) * 2;
            d->log = xrealloc(d->log, d->cap * sizeof(*d->log));
        }
        memcpy(d->log + d->n, w->ents, w->n * sizeof(*w->ents));
        d->n += w->n;
        struct dentry *last = &w->ents[w->n - 1];
        TR("n%llu disk: entries up to %llu durable", (unsigned long long)nd->id,
           (unsigned long long)last->index);
        raft_persisted(nd->r, last->index, last->term);
    }
    free(w->ents);
    free(w);
    pump(nd);
}

static int up_leaders(struct node **out)
{
    int k = 0;
    for (unsigned i = 1; i <= S.u; i++)
        if (S.nodes[i].up && raft_role(S.nodes[i].r) == RAFT_LEADER)
            out[k++] = &S.nodes[i];
    return k;
}

static void on_propose(void)
{
    struct node *ls[MAXU];
    int k = up_leaders(ls);
    if (k > 0) {
        struct node *nd = ls[rn((unsigned)k)];
        unsigned n = 1 + rn(4);
        struct raft_buf b[4];
        uint64_t vals[4];
        unsigned char pad[4][24];
        if (S.n_props + n + 1 >= S.props_cap) {
            S.props_cap = S.props_cap ? 2 * S.props_cap : 1024;
            S.props = xrealloc(S.props, S.props_cap * sizeof(*S.props));
            S.val_index = xrealloc(S.val_index, S.props_cap * sizeof(uint64_t));
        }
        for (unsigned i = 0; i < n; i++) {
            vals[i] = S.n_props + 1 + i;
            memcpy(pad[i], &vals[i], 8);
            memset(pad[i] + 8, (int)vals[i], 16);
            b[i].buf = pad[i];
            b[i].len = 8 + rn(17);
        }
        uint64_t index;
        int rv = raft_propose(nd->r, b, n, &index);
        if (rv == 0) {
            for (unsigned i = 0; i < n; i++) {
                uint64_t v = ++S.n_props;
                S.props[v] = (struct prop){nd->id, index + i, raft_term(nd->r), false, S.healed};
                S.val_index[v] = 0;
            }
            TR("client proposes values %llu..%llu to n%llu at %llu", (unsigned long long)vals[0],
               (unsigned long long)vals[n - 1], (unsigned long long)nd->id,
               (unsigned long long)index);
            pump(nd);
        } else if (rv != -EBUSY) {
            fail("raft_propose on a leader: %d", rv);
        }
    } else {
        /* A follower refuses and tells the caller to go elsewhere. */
        for (unsigned i = 1; i <= S.u; i++)
            if (S.nodes[i].up) {
                struct raft_buf b = {"x", 1};
                if (raft_propose(S.nodes[i].r, &b, 1, NULL) != RAFT_ENOTLEADER)
                    fail("raft_propose on a non-leader did not refuse");
                break;
            }
    }
    if (!S.healed || now < S.heal_time + PROPOSE_UNTIL_MS)
        push_ev(now + 5 + rn(30), EV_PROPOSE, 0, NULL);
}

static void random_partition(void)
{
    memset(S.blocked, 0, sizeof(S.blocked));
    unsigned kind = rn(3);
    if (kind == 0) {
        /* symmetric: two sides */
        bool side[MAXU + 1];
        for (unsigned i = 1; i <= S.u; i++)
            side[i] = chance(0.5);
        for (unsigned i = 1; i <= S.u; i++)
            for (unsigned j = 1; j <= S.u; j++)
                S.blocked[i][j] = side[i] != side[j];
        TR("PARTITION symmetric");
    } else if (kind == 1) {
        /* asymmetric: some one-way links cut */
        unsigned k = 1 + rn(S.u * 2);
        for (unsigned x = 0; x < k; x++)
            S.blocked[1 + rn(S.u)][1 + rn(S.u)] = true;
        TR("PARTITION asymmetric (%u links)", k);
    } else {
        /* isolate one node (often the leader) in one or both ways */
        struct node *ls[MAXU];
        int nl = up_leaders(ls);
        unsigned v = nl && chance(0.7) ? (unsigned)ls[0]->id : 1 + rn(S.u);
        bool in = chance(0.7), out = chance(0.7);
        for (unsigned j = 1; j <= S.u; j++) {
            S.blocked[v][j] = out;
            S.blocked[j][v] = in;
        }
        TR("PARTITION isolates n%u (in %d out %d)", v, in, out);
    }
    for (unsigned i = 0; i <= S.u; i++)
        S.blocked[i][i] = false;
}

static void on_chaos(void)
{
    const struct mix *m = S.mix;
    if (chance(m->p_partition)) {
        if (chance(0.4)) {
            memset(S.blocked, 0, sizeof(S.blocked));
            TR("PARTITION healed");
        } else {
            random_partition();
        }
    }
    if (chance(m->p_crash)) {
        unsigned v = 1 + rn(S.u);
        struct node *nd = node_of(v);
        if (nd->up)
            node_crash(nd);
        else {
            TR("RESTART n%u", v);
            maybe_wipe(nd);
            node_start(nd);
            pump(nd);
        }
    }
    if (chance(m->p_slow)) {
        unsigned v = 1 + rn(S.u);
        node_of(v)->tick_ms = chance(0.5) ? TICK_MS : TICK_MS + rn(3 * TICK_MS);
        TR("n%u ticks every %u ms", v, node_of(v)->tick_ms);
    }
    struct node *ls[MAXU];
    int nl = up_leaders(ls);
    if (nl && chance(m->p_transfer)) {
        struct node *l = ls[rn((unsigned)nl)];
        const struct raft_conf *c = raft_conf(l->r);
        const struct raft_server *s = &c->servers[rn(c->n)];
        int rv = raft_transfer(l->r, s->id);
        TR("TRANSFER n%llu -> n%llu: %d", (unsigned long long)l->id, (unsigned long long)s->id, rv);
        pump(l);
    }
    if (nl && chance(m->p_conf)) {
        struct node *l = ls[rn((unsigned)nl)];
        const struct raft_conf *c = raft_conf(l->r);
        uint64_t id = 1 + rn(S.u);
        int i = raft_conf_find(c, id);
        enum raft_conf_op op;
        if (i < 0)
            op = chance(0.7) ? RAFT_CONF_ADD_LEARNER : RAFT_CONF_ADD_VOTER;
        else if (!c->servers[i].voter)
            op = chance(0.8) ? RAFT_CONF_ADD_VOTER : RAFT_CONF_REMOVE;
        else
            op = RAFT_CONF_REMOVE;
        /* No configuration change while a node rebuilds. */
        int rv = any_rebuilding() ? -EPERM : raft_propose_conf(l->r, op, id, NULL);
        TR("CONF on n%llu: %s n%llu: %d", (unsigned long long)l->id,
           op == RAFT_CONF_ADD_LEARNER ? "add learner"
           : op == RAFT_CONF_ADD_VOTER ? "add voter"
                                       : "remove",
           (unsigned long long)id, rv);
        if (rv == 0)
            S.conf_time = now;
        pump(l);
    }
    if (chance(m->p_compact)) {
        struct node *nd = node_of(1 + rn(S.u));
        if (nd->up) {
            uint64_t applied = nd->sm_base + nd->hist_n - 1;
            uint64_t keep = rn(4) == 0 ? 0 : rn(20);
            if (applied > keep)
                disk_compact(nd, applied - keep);
        }
    }
    push_ev(now + 20 + rn(60), EV_CHAOS, 0, NULL);
}

static void on_cut(struct node *nd)
{
    if (S.mix->p_crash > 0 && (S.mix->p_partition == 0 || chance(0.5))) {
        node_crash(nd);
        return;
    }
    for (unsigned j = 1; j <= S.u; j++)
        if (j != nd->id)
            S.blocked[nd->id][j] = S.blocked[j][nd->id] = true;
    TR("PARTITION isolates new leader n%llu", (unsigned long long)nd->id);
}

static void on_heal(void)
{
    S.healed = true;
    S.heal_time = now;
    S.loss = S.dup = 0;
    S.delay_max = 3;
    S.disk_max = 2;
    memset(S.blocked, 0, sizeof(S.blocked));
    TR("HEAL: faults stop, every node restarts");
    for (unsigned i = 1; i <= S.u; i++) {
        struct node *nd = node_of(i);
        nd->tick_ms = TICK_MS;
        if (!nd->up) {
            maybe_wipe(nd);
            node_start(nd);
            pump(nd);
        }
    }
}

/* Liveness, at the deadline: a leader for the highest term, whose whole log
 * is committed and applied by every member; every proposal it accepted in
 * this term acknowledged; and progress since the heal. */
static void check_liveness(void)
{
    struct node *ls[MAXU];
    int nl = up_leaders(ls);
    struct node *l = NULL;
    for (int i = 0; i < nl; i++)
        if (!l || raft_term(ls[i]->r) > raft_term(l->r))
            l = ls[i];
    if (!l) {
        fail("liveness: no leader %d ms after the faults stopped", LIVE_MS);
        return;
    }
    uint64_t last = raft_last_index(l->r), c = raft_commit(l->r);
    if (c != last) {
        fail("liveness: leader n%llu has committed %llu of %llu", (unsigned long long)l->id,
             (unsigned long long)c, (unsigned long long)last);
        return;
    }
    const struct raft_conf *conf = raft_conf(l->r);
    for (unsigned i = 0; i < conf->n; i++) {
        struct node *nd = node_of(conf->servers[i].id);
        if (raft_applied(nd->r) < c) {
            fail("liveness: member n%llu applied %llu of %llu", (unsigned long long)nd->id,
                 (unsigned long long)raft_applied(nd->r), (unsigned long long)c);
            return;
        }
        if (raft_rebuilding(nd->r)) {
            fail("liveness: member n%llu still rebuilding %d ms after the faults stopped",
                 (unsigned long long)nd->id, LIVE_MS);
            return;
        }
    }
    bool progress = false;
    for (uint64_t v = 1; v <= S.n_props; v++) {
        struct prop *p = &S.props[v];
        if (p->node == l->id && p->term == raft_term(l->r) && !p->acked) {
            fail("liveness: value %llu accepted by the leader never acknowledged",
                 (unsigned long long)v);
            return;
        }
        progress |= p->healed && p->acked;
    }
    if (!progress)
        fail("liveness: no proposal acknowledged after the faults stopped");
}

/* ======================================================================== */
/* One seed                                                                 */
/* ======================================================================== */

static void free_all(void)
{
    tracing = 0;
    for (unsigned i = 1; i <= MAXU; i++) {
        struct node *nd = &S.nodes[i];
        if (nd->up)
            node_crash(nd);
        disk_free(&nd->d);
        free(nd->hist);
    }
    while (S.heap_n > 0) {
        struct ev e = pop_ev();
        if (e.msg)
            msg_free(e.msg);
    }
    free(S.heap);
    free(S.leader_of);
    free(S.gc_term);
    free(S.gc_hash);
    free(S.gc_val);
    free(S.gc_applied);
    free(S.props);
    free(S.val_index);
    free(S.reg);
}

struct result {
    uint64_t steps, commits, wipes, rebuilds;
    bool failed;
    char why[512];
};

static struct result run_seed(uint64_t seed)
{
    memset(&S, 0, sizeof(S));
    now = 0;
    rnd_state = seed * 0xD1B54A32D192ED03ULL + 12345;
    S.mix = &mixes[seed % NMIX];
    S.n = sizes[(seed / NMIX) % 4];
    bool membership = S.mix->p_conf > 0;
    S.u = S.n + (membership ? 2 : 0);
    S.loss = S.mix->loss;
    S.dup = S.mix->dup;
    S.delay_max = S.mix->delay_max;
    S.disk_max = S.mix->disk_max;
    static const unsigned ents[] = {1, 1, 3, 64};
    static const unsigned infl[] = {1, 4, 16, 256};
    S.max_msg_entries = ents[rn(4)];
    S.max_inflight = infl[rn(4)];
    S.heartbeat_ticks = 1 + rn(2);
    /* PreVote and CheckQuorum protect liveness against removed servers:
     * always on with membership changes, usually on otherwise. */
    S.pre_vote = membership || rn(4) != 0;
    S.check_quorum = membership || rn(4) != 0;
    TR("seed %llu: mix %s, %u voters (+%u joiners), %u entries/msg, %u in flight, "
       "heartbeat %u ticks, prevote %d, checkquorum %d",
       (unsigned long long)seed, S.mix->name, S.n, S.u - S.n, S.max_msg_entries, S.max_inflight,
       S.heartbeat_ticks, S.pre_vote, S.check_quorum);

    struct raft_conf boot;
    memset(&boot, 0, sizeof(boot));
    for (unsigned i = 1; i <= S.n; i++)
        boot.servers[boot.n++] = (struct raft_server){i, true};
    S.boot = boot;
    for (unsigned i = 1; i <= S.u; i++) {
        struct node *nd = node_of(i);
        nd->id = i;
        nd->d.first = 1;
        if (i <= S.n)
            nd->d.snap_conf = boot;
        nd->tick_ms = TICK_MS;
        node_start(nd);
    }
    push_ev(50, EV_PROPOSE, 0, NULL);
    push_ev(100, EV_CHAOS, 0, NULL);
    push_ev(FAULT_MS, EV_HEAL, 0, NULL);
    uint64_t deadline = FAULT_MS + LIVE_MS;
    while (!S.failed && S.heap_n > 0) {
        struct ev e = pop_ev();
        if (e.time > deadline) {
            if (e.msg)
                msg_free(e.msg);
            break;
        }
        now = e.time;
        S.steps++;
        struct node *nd = e.node ? node_of((uint64_t)e.node) : NULL;
        switch (e.kind) {
        case EV_TICK:
            if (nd->up && e.inc == nd->incarnation)
                on_tick(nd);
            break;
        case EV_MSG:
            on_msg(e.msg);
            break;
        case EV_DISK:
            if (nd->up && e.inc == nd->incarnation)
                on_disk(nd);
            break;
        case EV_CHAOS:
            if (!S.healed)
                on_chaos();
            break;
        case EV_PROPOSE:
            on_propose();
            break;
        case EV_HEAL:
            on_heal();
            break;
        case EV_CUT:
            if (nd->up && e.inc == nd->incarnation && !S.healed)
                on_cut(nd);
            break;
        }
        for (unsigned i = 1; i <= S.u && !S.failed; i++)
            check_node(node_of(i));
    }
    now = deadline;
    if (!S.failed)
        check_liveness();
    struct result res = {S.steps, S.commits, S.wipes, S.rebuilds, S.failed, ""};
    memcpy(res.why, S.failure, sizeof(res.why));
    free_all();
    return res;
}

/* ======================================================================== */
/* Driver                                                                   */
/* ======================================================================== */

struct stats {
    uint64_t seeds[NMIX], steps[NMIX], commits[NMIX], wipes[NMIX], rebuilds[NMIX];
    double cpu[NMIX];
    int64_t first_fail; /* -1 none */
    uint64_t n_fail;
    char why[512];
};

static double clock_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool keep_going; /* count failing seeds instead of stopping */

static void run_range(uint64_t start, uint64_t count, unsigned job, unsigned jobs, struct stats *st)
{
    memset(st, 0, sizeof(*st));
    st->first_fail = -1;
    for (uint64_t s = start; s < start + count; s++) {
        /* Stripe by blocks of NMIX seeds so every worker gets
         * every mix. */
        if ((s / NMIX) % jobs != job)
            continue;
        double t0 = clock_s(CLOCK_MONOTONIC);
        struct result r = run_seed(s);
        if (getenv("SIM_VERBOSE"))
            fprintf(stderr, "seed %llu steps %llu commits %llu %.3f s\n", (unsigned long long)s,
                    (unsigned long long)r.steps, (unsigned long long)r.commits,
                    clock_s(CLOCK_MONOTONIC) - t0);
        unsigned mi = (unsigned)(s % NMIX);
        st->seeds[mi]++;
        st->steps[mi] += r.steps;
        st->commits[mi] += r.commits;
        st->wipes[mi] += r.wipes;
        st->rebuilds[mi] += r.rebuilds;
        st->cpu[mi] += clock_s(CLOCK_MONOTONIC) - t0;
        if (r.failed) {
            if (st->first_fail < 0) {
                st->first_fail = (int64_t)s;
                memcpy(st->why, r.why, sizeof(st->why));
            }
            st->n_fail++;
            if (!keep_going)
                return;
        }
    }
}

static void print_trace_of(uint64_t seed)
{
    tracing = 1;
    ring_n = 0;
    struct result r = run_seed(seed);
    tracing = 0;
    size_t from = ring_n > RING ? ring_n - RING : 0;
    printf("---- last %zu trace lines of seed %llu (full trace: sim --trace %llu) ----\n",
           ring_n - from, (unsigned long long)seed, (unsigned long long)seed);
    for (size_t i = from; i < ring_n; i++)
        puts(ring[i % RING]);
    printf("---- %s\n", r.failed ? r.why : "(did not fail again?)");
    for (size_t i = 0; i < RING; i++) {
        free(ring[i]);
        ring[i] = NULL;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: sim [--seeds N] [--start S] [--jobs J] [--trace SEED] [-q]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    uint64_t start = 0, count = 2400;
    unsigned jobs = 2;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
            count = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--start") && i + 1 < argc)
            start = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
            jobs = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "-q"))
            quiet = true;
        else if (!strcmp(argv[i], "--keep-going"))
            keep_going = true;
        else if (!strcmp(argv[i], "--trace") && i + 1 < argc) {
            tracing = 2;
            struct result r = run_seed(strtoull(argv[++i], NULL, 10));
            printf("%s\n", r.failed ? r.why : "OK");
            return r.failed ? 1 : 0;
        } else
            usage();
    }
    if (jobs < 1)
        jobs = 1;
    double t0 = clock_s(CLOCK_MONOTONIC);
    struct stats total;
    memset(&total, 0, sizeof(total));
    total.first_fail = -1;
    int fds[64][2];
    pid_t pids[64];
    if (jobs > 64)
        jobs = 64;
    for (unsigned j = 0; j < jobs; j++) {
        if (pipe(fds[j]) != 0)
            return 2;
        fflush(stdout);
        pids[j] = fork();
        if (pids[j] < 0)
            return 2;
        if (pids[j] == 0) {
            struct stats st;
            run_range(start, count, j, jobs, &st);
            ssize_t w = write(fds[j][1], &st, sizeof(st));
            _exit(w == (ssize_t)sizeof(st) ? 0 : 3);
        }
        close(fds[j][1]);
    }
    bool broken = false;
    for (unsigned j = 0; j < jobs; j++) {
        struct stats st;
        ssize_t rd = read(fds[j][0], &st, sizeof(st));
        close(fds[j][0]);
        int status;
        waitpid(pids[j], &status, 0);
        if (rd != (ssize_t)sizeof(st) || !WIFEXITED(status) || WEXITSTATUS(status)) {
            fprintf(stderr, "sim: worker %u crashed (status %d)\n", j, status);
            broken = true;
            continue;
        }
        for (unsigned m = 0; m < NMIX; m++) {
            total.seeds[m] += st.seeds[m];
            total.steps[m] += st.steps[m];
            total.commits[m] += st.commits[m];
            total.wipes[m] += st.wipes[m];
            total.rebuilds[m] += st.rebuilds[m];
            total.cpu[m] += st.cpu[m];
        }
        total.n_fail += st.n_fail;
        if (st.first_fail >= 0 && (total.first_fail < 0 || st.first_fail < total.first_fail)) {
            total.first_fail = st.first_fail;
            memcpy(total.why, st.why, sizeof(total.why));
        }
    }
    double wall = clock_s(CLOCK_MONOTONIC) - t0;
    uint64_t seeds = 0;
    for (unsigned m = 0; m < NMIX; m++) {
        seeds += total.seeds[m];
        if (!quiet) {
            printf("sim: mix %-10s seeds %6llu  steps %11llu  commits %9llu  "
                   "cpu %7.1f s",
                   mixes[m].name, (unsigned long long)total.seeds[m],
                   (unsigned long long)total.steps[m], (unsigned long long)total.commits[m],
                   total.cpu[m]);
            if (mixes[m].p_wipe > 0)
                printf("  wipes %llu (rebuilt %llu)", (unsigned long long)total.wipes[m],
                       (unsigned long long)total.rebuilds[m]);
            printf("\n");
        }
    }
    if (total.first_fail >= 0) {
        if (keep_going)
            printf("sim: %llu of %llu seeds failed\n", (unsigned long long)total.n_fail,
                   (unsigned long long)seeds);
        printf("sim: FAILED at seed %lld: %s\n", (long long)total.first_fail, total.why);
        printf("sim: rerun with: make sim SEEDS=1 START=%lld\n", (long long)total.first_fail);
        print_trace_of((uint64_t)total.first_fail);
        printf("sim: FAILED seed %lld after %.1f s\n", (long long)total.first_fail, wall);
        return 1;
    }
    if (broken)
        return 2;
    printf("sim: OK: %llu seeds from %llu (node counts 1,3,5,7 x %zu mixes) in %.1f s wall\n",
           (unsigned long long)seeds, (unsigned long long)start, NMIX, wall);
    return 0;
}
