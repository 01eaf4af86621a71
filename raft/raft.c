/*
 * raft/raft.c -- the Raft state machine: elections (PreVote, CheckQuorum,
 * TimeoutNow), replication (pipelined, fast back-off), commit, membership
 * changes one server at a time, rebuilding a server that lost its disk, and
 * the Ready/Advance output queue.
 *
 * Every input function mutates the state and queues outputs; nothing here
 * performs I/O.  Outgoing APPEND messages are queued as index ranges and
 * resolved into entry arrays only in raft_ready(), so that many proposals
 * made between two Readys travel in one message, and so that a queued
 * message never refers to memory that has moved in the meantime.
 *
 * Lines tagged "MUTANT:<name>" are the hooks tests/sim/mutants.sh rewrites
 * (on a copy) to prove the simulator catches classic Raft bugs.
 */
#include "raft/raft.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "raft/log.h"

/* ======================================================================== */
/* Types                                                                    */
/* ======================================================================== */

enum pr_state { PR_PROBE, PR_REPLICATE, PR_SNAPSHOT };

/* What the leader knows of one server's log. */
struct progress {
    uint64_t id;
    bool voter;
    uint8_t state;      /* enum pr_state */
    bool paused;        /* PROBE: one APPEND out, wait for an answer */
    bool recent_active; /* heard from since the last CheckQuorum round */
    uint64_t match;     /* highest index known to match the leader's log */
    uint64_t next;      /* next index to send */
    uint64_t pending_snap;
    unsigned stall; /* ticks with APPENDs/snapshot out and no progress */
    /* The server answers marked as rebuilding, in its life rebuild_id: not
     * counted for commit; fence = our NOOP appended when we learned it. */
    bool rebuilding;
    uint64_t rebuild_id, fence;
    /* In-flight APPENDs (REPLICATE): last index of each, oldest first. */
    uint64_t *infl;
    unsigned infl_head, infl_n;
};

/* A queued output message.  APPEND carries entries [lo, hi] (none if
 * hi < lo); SNAPSHOT is resolved against the storage at raft_ready(). */
struct out_msg {
    struct raft_msg m;
    uint64_t lo, hi;
};

struct conf_rec {
    uint64_t index; /* log index of the entry (or of the log start) */
    struct raft_conf conf;
};

struct raft {
    /* options */
    uint64_t id;
    unsigned election_ticks, heartbeat_ticks, max_inflight, max_msg_entries;
    size_t max_msg_bytes;
    bool pre_vote, check_quorum;
    uint64_t rng;

    /* persistent state (as last handed out in hs_* of a Ready) */
    uint64_t term, vote;
    uint64_t hs_term, hs_vote;

    enum raft_role role;
    bool role_changed;
    uint64_t leader;
    uint64_t commit, applied;

    unsigned elapsed, hb_elapsed, rand_timeout;

    struct rlog log;
    uint64_t handed; /* last index handed to the caller for writing */

    /* membership: history of configurations, newest last; rec[0] is
     * the configuration as of the log start. */
    struct conf_rec *confs;
    size_t n_confs, cap_confs;

    /* elections: per server of the current conf, 1 granted, -1 refused */
    int8_t votes[RAFT_MAX_SERVERS];

    /* leader */
    struct progress prs[RAFT_MAX_SERVERS];
    unsigned n_prs;
    uint64_t term_start; /* index of this leader's NOOP */
    uint64_t transferee;
    unsigned transfer_elapsed;
    bool bcast; /* new entries to push out at the next Ready */
    bool commit_bcast; /* the commit index moved: tell the followers at once */

    /* follower: acknowledgements (only of durable entries) */
    uint64_t ack_limit; /* highest index known to match this term's leader */
    uint64_t acked;     /* highest index acknowledged in this term */

    /* rebuilding (see REBUILDING in raft.h) */
    bool rebuilding;
    bool rebuilt_ready;      /* left the mode; not yet reported in a Ready */
    uint64_t rebuild_id;     /* of this life, drawn at raft_new */
    uint64_t rebuild_target; /* smallest rebuild_commit of this term, or 0 */

    /* output queue */
    struct out_msg *out;
    size_t n_out, cap_out;
    struct raft_msg *rd_msgs;
    size_t cap_rd_msgs;
    void **arena; /* allocations that live until raft_advance */
    size_t n_arena, cap_arena;
    bool reset_ready;
    struct raft_msg reset_snap;
    void *reset_data;
    uint64_t rd_apply_hi, rd_last;
    bool in_ready;
};

/* ======================================================================== */
/* Small helpers                                                            */
/* ======================================================================== */

static uint64_t rng_next(struct raft *r)
{
    /* xorshift64* */
    uint64_t x = r->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

const char *raft_role_name(enum raft_role role)
{
    static const char *const names[] = {"follower", "precandidate", "candidate", "leader"};
    return (unsigned)role < 4 ? names[role] : "?";
}

const char *raft_msg_name(int type)
{
    static const char *const names[RAFT_MSG_TYPES] = {
        "?",          "APPEND",       "APPEND_RESP", "HEARTBEAT", "HEARTBEAT_RESP",
        "PREVOTE",    "PREVOTE_RESP", "VOTE",        "VOTE_RESP", "SNAPSHOT",
        "TIMEOUT_NOW"};
    return type > 0 && type < RAFT_MSG_TYPES ? names[type] : "?";
}

static uint64_t stable_index(const struct raft *r)
{
    return r->log.reset_pending ? 0 : r->log.u_off - 1;
}

static uint64_t last_index(const struct raft *r)
{
    return rlog_last(&r->log);
}

static uint64_t last_term(const struct raft *r)
{
    return rlog_term0(&r->log, last_index(r));
}

/* ======================================================================== */
/* Configurations                                                           */
/* ======================================================================== */

int raft_conf_find(const struct raft_conf *conf, uint64_t id)
{
    for (unsigned i = 0; i < conf->n; i++)
        if (conf->servers[i].id == id)
            return (int)i;
    return -1;
}

size_t raft_conf_encode(const struct raft_conf *conf, void *buf)
{
    unsigned char *p = buf;
    *p++ = (unsigned char)conf->n;
    for (unsigned i = 0; i < conf->n; i++) {
        uint64_t id = conf->servers[i].id;
        for (int b = 0; b < 8; b++)
            *p++ = (unsigned char)(id >> (8 * b));
        *p++ = conf->servers[i].voter ? 1 : 0;
    }
    return RAFT_CONF_BYTES(conf->n);
}

int raft_conf_decode(const void *buf, size_t len, struct raft_conf *out)
{
    const unsigned char *p = buf;
    if (len < 1 || p[0] > RAFT_MAX_SERVERS || len != RAFT_CONF_BYTES(p[0]))
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->n = p[0];
    p++;
    for (unsigned i = 0; i < out->n; i++) {
        uint64_t id = 0;
        for (int b = 0; b < 8; b++)
            id |= (uint64_t)p[b] << (8 * b);
        p += 8;
        if (id == 0 || *p > 1)
            return -EINVAL;
        out->servers[i].id = id;
        out->servers[i].voter = *p++ == 1;
    }
    return 0;
}

static const struct raft_conf *cur_conf(const struct raft *r)
{
    return &r->confs[r->n_confs - 1].conf;
}

static uint64_t cur_conf_index(const struct raft *r)
{
    return r->confs[r->n_confs - 1].index;
}

static bool is_voter(const struct raft *r, uint64_t id)
{
    int i = raft_conf_find(cur_conf(r), id);
    return i >= 0 && cur_conf(r)->servers[i].voter;
}

/* The configuration this server campaigns and counts votes in: its latest
 * one if it is a voter there.  Otherwise, while the latest is uncommitted,
 * the one before it: a leader that removed itself and lost its leadership
 * before the removal committed must be able to win again and finish the
 * change, or the remaining voters (lacking the entry) could never elect
 * anybody.  Consecutive configurations differ by one server, so their
 * majorities intersect and election safety holds. */
static const struct raft_conf *elect_conf(const struct raft *r)
{
    const struct raft_conf *c = cur_conf(r);
    int i = raft_conf_find(c, r->id);
    if (i >= 0 && c->servers[i].voter)
        return c;
    if (r->n_confs < 2 || cur_conf_index(r) <= r->commit)
        return NULL;
    c = &r->confs[r->n_confs - 2].conf;
    i = raft_conf_find(c, r->id);
    return i >= 0 && c->servers[i].voter ? c : NULL;
}

static unsigned n_voters(const struct raft *r)
{
    unsigned n = 0;
    for (unsigned i = 0; i < cur_conf(r)->n; i++)
        n += cur_conf(r)->servers[i].voter;
    return n;
}

static const struct raft_conf *conf_at(const struct raft *r, uint64_t index)
{
    size_t i = r->n_confs;
    while (i > 1 && r->confs[i - 1].index > index)
        i--;
    return &r->confs[i - 1].conf;
}

static struct progress *pr_find(struct raft *r, uint64_t id)
{
    for (unsigned i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

static void pr_reset(struct raft *r, struct progress *pr)
{
    pr->state = PR_PROBE;
    pr->paused = false;
    pr->match = 0;
    pr->next = last_index(r) + 1;
    pr->stall = 0;
    pr->infl_head = pr->infl_n = 0;
    pr->recent_active = pr->id == r->id;
    pr->rebuilding = false;
    pr->rebuild_id = pr->fence = 0;
}

/* Make the progress set mirror the current configuration, keeping what is
 * known of servers that stay. */
static void sync_progress(struct raft *r)
{
    const struct raft_conf *c = cur_conf(r);
    struct progress old[RAFT_MAX_SERVERS];
    unsigned n_old = r->n_prs;
    memcpy(old, r->prs, sizeof(old));
    r->n_prs = 0;
    for (unsigned i = 0; i < c->n; i++) {
        struct progress *pr = &r->prs[r->n_prs];
        struct progress *was = NULL;
        for (unsigned j = 0; j < n_old; j++)
            if (old[j].id == c->servers[i].id)
                was = &old[j];
        if (was) {
            *pr = *was;
            was->infl = NULL;
        } else {
            memset(pr, 0, sizeof(*pr));
            pr->id = c->servers[i].id;
            pr->infl = NULL;
            pr_reset(r, pr);
        }
        pr->voter = c->servers[i].voter;
        r->n_prs++;
    }
    /* Inflight rings: reuse freed ones, allocate lazily in infl_push. */
    for (unsigned j = 0; j < n_old; j++)
        free(old[j].infl);
}

/* A configuration entry at index is now in the log. */
static int conf_push(struct raft *r, uint64_t index, const struct raft_conf *conf)
{
    if (r->n_confs == r->cap_confs) {
        size_t cap = r->cap_confs ? 2 * r->cap_confs : 4;
        struct conf_rec *c = realloc(r->confs, cap * sizeof(*c));
        if (!c)
            return -ENOMEM;
        r->confs = c;
        r->cap_confs = cap;
    }
    r->confs[r->n_confs].index = index;
    r->confs[r->n_confs].conf = *conf;
    r->n_confs++;
    if (r->role == RAFT_LEADER)
        sync_progress(r);
    return 0;
}

/* Scan freshly appended entries for configuration changes. */
static int conf_scan(struct raft *r, const struct raft_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (e[i].type != RAFT_ENTRY_CONF)
            continue;
        struct raft_conf c;
        if (raft_conf_decode(e[i].buf, e[i].len, &c) != 0)
            continue;
        int rv = conf_push(r, e[i].index, &c);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* ======================================================================== */
/* Output queue                                                             */
/* ======================================================================== */

static struct out_msg *queue_msg(struct raft *r, uint8_t type, uint64_t to)
{
    if (r->n_out == r->cap_out) {
        size_t cap = r->cap_out ? 2 * r->cap_out : 16;
        struct out_msg *o = realloc(r->out, cap * sizeof(*o));
        if (!o)
            return NULL;
        r->out = o;
        r->cap_out = cap;
    }
    struct out_msg *o = &r->out[r->n_out++];
    memset(o, 0, sizeof(*o));
    o->m.type = type;
    o->m.from = r->id;
    o->m.to = to;
    o->m.term = r->term;
    o->lo = 1;
    o->hi = 0;
    /* A rebuilding server marks what a leader counts from it. */
    if (r->rebuilding && (type == RAFT_MSG_APPEND_RESP || type == RAFT_MSG_HEARTBEAT_RESP)) {
        o->m.rebuilding = true;
        o->m.rebuild_id = r->rebuild_id;
    }
    return o;
}

/* Out of memory while queueing a message is handled like its loss: Raft
 * tolerates lost messages, and the next tick retries. */
static void send_simple(struct raft *r, uint8_t type, uint64_t to, uint64_t term, bool reject)
{
    struct out_msg *o = queue_msg(r, type, to);
    if (!o)
        return;
    o->m.term = term;
    o->m.reject = reject;
}

/* Queued APPENDs from an earlier leadership may name entries that are gone. */
static void drop_queued_appends(struct raft *r)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n_out; i++)
        if (r->out[i].m.type != RAFT_MSG_APPEND && r->out[i].m.type != RAFT_MSG_SNAPSHOT)
            r->out[k++] = r->out[i];
    r->n_out = k;
}

static void *arena_alloc(struct raft *r, size_t bytes)
{
    if (r->n_arena == r->cap_arena) {
        size_t cap = r->cap_arena ? 2 * r->cap_arena : 16;
        void **a = realloc(r->arena, cap * sizeof(*a));
        if (!a)
            return NULL;
        r->arena = a;
        r->cap_arena = cap;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (p)
        r->arena[r->n_arena++] = p;
    return p;
}

/* ======================================================================== */
/* Role transitions                                                         */
/* ======================================================================== */

static bool legal_edge(enum raft_role from, enum raft_role to)
{
    switch (from) {
    case RAFT_FOLLOWER:
        return to == RAFT_FOLLOWER || to == RAFT_PRECANDIDATE || to == RAFT_CANDIDATE;
    case RAFT_PRECANDIDATE:
        return to == RAFT_FOLLOWER || to == RAFT_PRECANDIDATE || to == RAFT_CANDIDATE;
    case RAFT_CANDIDATE:
        return to == RAFT_FOLLOWER || to == RAFT_PRECANDIDATE || to == RAFT_CANDIDATE ||
               to == RAFT_LEADER;
    case RAFT_LEADER:
        return to == RAFT_FOLLOWER;
    }
    return false;
}

static void reset_timers(struct raft *r)
{
    r->elapsed = 0;
    r->hb_elapsed = 0;
    r->rand_timeout = r->election_ticks + (unsigned)(rng_next(r) % r->election_ticks);
}

/* The one place that changes r->role. */
static void transition(struct raft *r, enum raft_role to)
{
    bool legal = legal_edge(r->role, to);
    assert(legal);
    (void)legal;
    if (r->role != to)
        r->role_changed = true;
    r->role = to;
    reset_timers(r);
    r->transferee = 0;
    memset(r->votes, 0, sizeof(r->votes));
}

static void become_follower(struct raft *r, uint64_t term, uint64_t leader)
{
    if (term > r->term) {
        r->term = term;
        r->vote = 0;
        r->ack_limit = 0;
        r->acked = 0;
        r->rebuild_target = 0;
    }
    if (r->role == RAFT_LEADER)
        r->bcast = false;
    transition(r, RAFT_FOLLOWER);
    r->leader = leader;
}

static void send_append(struct raft *r, struct progress *pr);
static void bcast_append(struct raft *r);

static int become_leader(struct raft *r)
{
    transition(r, RAFT_LEADER);
    r->leader = r->id;
    sync_progress(r);
    for (unsigned i = 0; i < r->n_prs; i++)
        pr_reset(r, &r->prs[i]);
    /* The NOOP lets this leader commit (and so learn the commit index
     * of) everything before its term. */
    struct raft_buf none = {NULL, 0};
    int rv = rlog_append_bufs(&r->log, r->term, RAFT_ENTRY_NOOP, &none, 1);
    if (rv != 0)
        return rv;
    r->term_start = last_index(r);
    r->bcast = true;
    return 0;
}

/* Count this round's votes among the voters of the current configuration:
 * 1 won, -1 lost, 0 undecided. */
static int tally(const struct raft *r)
{
    const struct raft_conf *c = elect_conf(r);
    if (!c)
        return -1;
    unsigned yes = 0, no = 0, n = 0;
    for (unsigned i = 0; i < c->n; i++) {
        if (!c->servers[i].voter)
            continue;
        n++;
        yes += r->votes[i] > 0;
        no += r->votes[i] < 0;
    }
    unsigned q = n / 2 + 1;
    if (yes >= q)
        return 1;
    if (n - no < q)
        return -1;
    return 0;
}

static void record_vote(struct raft *r, uint64_t id, bool granted)
{
    const struct raft_conf *c = elect_conf(r);
    int i = c ? raft_conf_find(c, id) : -1;
    if (i >= 0 && r->votes[i] == 0)
        r->votes[i] = granted ? 1 : -1;
}

static int campaign(struct raft *r, bool pre, bool transfer);

/* The election round may already be decided (single voter). */
static int after_tally(struct raft *r)
{
    int t = tally(r);
    if (t > 0) {
        if (r->role == RAFT_PRECANDIDATE)
            return campaign(r, false, false);
        return become_leader(r);
    }
    if (t < 0)
        become_follower(r, r->term, 0);
    return 0;
}

static int campaign(struct raft *r, bool pre, bool transfer)
{
    const struct raft_conf *c = elect_conf(r);
    if (!c || r->rebuilding) /* a rebuilding server stays a follower */
        return 0;
    uint8_t type;
    uint64_t term;
    if (pre) {
        transition(r, RAFT_PRECANDIDATE);
        r->leader = 0;
        type = RAFT_MSG_PREVOTE;
        term = r->term + 1;
    } else {
        transition(r, RAFT_CANDIDATE);
        r->term++;
        r->vote = r->id;
        r->leader = 0;
        r->ack_limit = r->acked = 0;
        type = RAFT_MSG_VOTE;
        term = r->term;
    }
    record_vote(r, r->id, true);
    for (unsigned i = 0; i < c->n; i++) {
        if (!c->servers[i].voter || c->servers[i].id == r->id)
            continue;
        struct out_msg *o = queue_msg(r, type, c->servers[i].id);
        if (!o)
            continue;
        o->m.term = term;
        o->m.index = last_index(r);
        o->m.log_term = last_term(r);
        o->m.transfer = transfer;
    }
    return after_tally(r);
}

/* ======================================================================== */
/* Leader: replication                                                      */
/* ======================================================================== */

static void pr_probe(struct progress *pr)
{
    pr->state = PR_PROBE;
    pr->paused = false;
    pr->next = pr->match + 1;
    pr->infl_head = pr->infl_n = 0;
    pr->stall = 0;
}

static void pr_replicate(struct progress *pr)
{
    pr->state = PR_REPLICATE;
    pr->paused = false;
    pr->next = pr->match + 1;
    pr->infl_head = pr->infl_n = 0;
    pr->stall = 0;
}

static bool infl_push(struct raft *r, struct progress *pr, uint64_t last)
{
    if (!pr->infl) {
        pr->infl = malloc(r->max_inflight * sizeof(*pr->infl));
        if (!pr->infl)
            return false;
    }
    pr->infl[(pr->infl_head + pr->infl_n) % r->max_inflight] = last;
    pr->infl_n++;
    return true;
}

static void infl_free_to(struct raft *r, struct progress *pr, uint64_t index)
{
    while (pr->infl_n > 0 && pr->infl[pr->infl_head] <= index) {
        pr->infl_head = (pr->infl_head + 1) % r->max_inflight;
        pr->infl_n--;
    }
}

/* What a leader tells a rebuilding server: its commit index once that
 * covers the fence of the server's life (see REBUILDING). */
static void stamp_rebuild(const struct raft *r, const struct progress *pr, struct raft_msg *m)
{
    if (pr->rebuilding && r->commit >= pr->fence) {
        m->rebuild_commit = r->commit;
        m->rebuild_for = pr->rebuild_id;
    }
}

static void send_snapshot(struct raft *r, struct progress *pr)
{
    struct out_msg *o = queue_msg(r, RAFT_MSG_SNAPSHOT, pr->id);
    if (!o)
        return;
    stamp_rebuild(r, pr, &o->m);
    pr->state = PR_SNAPSHOT;
    pr->pending_snap = rlog_first(&r->log) - 1;
    pr->stall = 0;
}

/* Send pr what it lacks, if the flow control allows.  Returns true if a
 * message was queued. */
static bool send_append1(struct raft *r, struct progress *pr, bool allow_empty)
{
    if (pr->id == r->id || pr->state == PR_SNAPSHOT)
        return false;
    if (pr->state == PR_PROBE && pr->paused)
        return false;
    if (pr->state == PR_REPLICATE && pr->infl_n >= r->max_inflight)
        return false;
    uint64_t last = last_index(r);
    uint64_t prev = pr->next - 1, prev_term;
    if (prev < rlog_first(&r->log) - 1 || rlog_term(&r->log, prev, &prev_term) != 0) {
        send_snapshot(r, pr);
        return true;
    }
    uint64_t n = last > prev ? min64(last - prev, r->max_msg_entries) : 0;
    if (r->max_msg_bytes && n > 1 && rlog_bytes(&r->log, prev + 1, prev + n) > r->max_msg_bytes) {
        /* The most entries that stay within max_msg_bytes, at least one. */
        uint64_t lo = 1, hi = n;
        while (lo < hi) {
            uint64_t mid = lo + (hi - lo + 1) / 2;
            if (rlog_bytes(&r->log, prev + 1, prev + mid) <= r->max_msg_bytes)
                lo = mid;
            else
                hi = mid - 1;
        }
        n = lo;
    }
    /* An empty APPEND is still a probe: a server we know nothing about
     * (next = last + 1, match = 0) must be asked where its log ends. */
    if (n == 0 && !allow_empty && !(pr->state == PR_PROBE && pr->match < last))
        return false;
    if (pr->state == PR_REPLICATE && n > 0 && !infl_push(r, pr, prev + n))
        return false;
    struct out_msg *o = queue_msg(r, RAFT_MSG_APPEND, pr->id);
    if (!o)
        return false;
    o->m.index = prev;
    o->m.log_term = prev_term;
    o->m.commit = r->commit;
    stamp_rebuild(r, pr, &o->m);
    o->lo = prev + 1;
    o->hi = prev + n;
    if (pr->state == PR_REPLICATE)
        pr->next = prev + n + 1;
    else
        pr->paused = true;
    return true;
}

static void send_append(struct raft *r, struct progress *pr)
{
    while (send_append1(r, pr, false) && pr->state == PR_REPLICATE)
        ;
}

static void bcast_append(struct raft *r)
{
    for (unsigned i = 0; i < r->n_prs; i++)
        send_append(r, &r->prs[i]);
}

static void bcast_heartbeat(struct raft *r)
{
    for (unsigned i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        if (pr->id == r->id)
            continue;
        struct out_msg *o = queue_msg(r, RAFT_MSG_HEARTBEAT, pr->id);
        if (o) {
            o->m.commit = min64(pr->match, r->commit);
            stamp_rebuild(r, pr, &o->m);
        }
    }
}

/* Advance the commit index to what a majority of voters have persisted, if
 * that entry is of the current term (Raft §5.4.2). */
static void maybe_commit(struct raft *r)
{
    uint64_t m[RAFT_MAX_SERVERS];
    unsigned n = 0;
    for (unsigned i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        if (!pr->voter)
            continue;
        uint64_t v = pr->id == r->id ? stable_index(r) : pr->match;
        if (pr->rebuilding) /* its log may lack what it acknowledged */
            v = 0;
        unsigned j = n++;
        while (j > 0 && m[j - 1] < v) {
            m[j] = m[j - 1];
            j--;
        }
        m[j] = v;
    }
    if (n == 0)
        return;
    uint64_t c = m[n / 2]; /* the (n/2+1)-th highest */
    if (c <= r->commit)
        return;
    if (rlog_term0(&r->log, c) != r->term) /* MUTANT:commit_term */
        return;
    r->commit = c;
    r->commit_bcast = true; /* followers learn it now, not at the next tick */
    /* A leader that removed itself leaves once the removal commits. */
    if (cur_conf_index(r) <= r->commit && raft_conf_find(cur_conf(r), r->id) < 0)
        become_follower(r, r->term, 0);
}

/* Fast back-off: the largest index k <= hint_index whose term in our log is
 * <= hint_term; the follower's log matches ours at most up to there. */
static uint64_t backoff(struct raft *r, uint64_t hint_index, uint64_t hint_term, uint64_t floor)
{
    uint64_t k = min64(hint_index, last_index(r));
    while (k > floor) {
        uint64_t t;
        if (rlog_term(&r->log, k, &t) != 0 || t <= hint_term)
            break;
        k--;
    }
    return k;
}

/* A response of pr says whether it rebuilds.  Learning of a new life that
 * does, forget its log (our match may predate the loss) and append the
 * fence of that life. */
static int note_rebuilding(struct raft *r, struct progress *pr, const struct raft_msg *m)
{
    if (!m->rebuilding) {
        pr->rebuilding = false; /* it holds what was committed: counts again */
        return 0;
    }
    if (pr->rebuilding && pr->rebuild_id == m->rebuild_id)
        return 0;
    pr_reset(r, pr);
    pr->recent_active = true;
    pr->rebuilding = true;
    pr->rebuild_id = m->rebuild_id;
    struct raft_buf none = {NULL, 0};
    int rv = rlog_append_bufs(&r->log, r->term, RAFT_ENTRY_NOOP, &none, 1);
    if (rv != 0)
        return rv;
    pr->fence = last_index(r);
    r->bcast = true;
    return 0;
}

static int leader_append_resp(struct raft *r, const struct raft_msg *m)
{
    struct progress *pr = pr_find(r, m->from);
    if (!pr)
        return 0;
    pr->recent_active = true;
    int rv = note_rebuilding(r, pr, m);
    if (rv != 0)
        return rv;
    if (m->reject) {
        if (pr->state == PR_REPLICATE) {
            if (m->index <= pr->match)
                return 0; /* stale */
        } else if (pr->state == PR_PROBE) {
            if (m->index != pr->next - 1)
                return 0; /* stale */
        } else {
            return 0;
        }
        uint64_t k = backoff(r, min64(m->hint_index, m->index), m->hint_term, pr->match);
        pr_probe(pr);
        pr->next = max64(pr->match + 1, k + 1);
        send_append(r, pr);
        return 0;
    }
    bool progressed = m->index > pr->match;
    uint64_t old_match = pr->match;
    if (progressed) {
        pr->match = m->index;
        pr->stall = 0;
    }
    /* Leave PROBE only on an answer to the probe itself (an older ack
     * would restart a whole window of APPENDs for nothing). */
    if ((pr->state == PR_PROBE && m->index >= pr->next - 1) ||
        (pr->state == PR_SNAPSHOT && pr->match >= pr->pending_snap))
        pr_replicate(pr);
    else if (pr->state == PR_REPLICATE) {
        infl_free_to(r, pr, m->index);
        if (pr->next <= pr->match)
            pr->next = pr->match + 1;
    }
    if (progressed)
        maybe_commit(r);
    if (r->role != RAFT_LEADER)
        return 0;
    /* Entries committed before this follower had them: it learns so now
     * (a commit that moved just now is told to every follower anyway). */
    if (progressed && !r->commit_bcast && old_match < r->commit) {
        struct out_msg *o = queue_msg(r, RAFT_MSG_HEARTBEAT, pr->id);
        if (o) {
            o->m.commit = min64(pr->match, r->commit);
            stamp_rebuild(r, pr, &o->m);
        }
    }
    if (r->transferee == pr->id && pr->match == last_index(r))
        send_simple(r, RAFT_MSG_TIMEOUT_NOW, pr->id, r->term, false);
    send_append(r, pr);
    return 0;
}

static int leader_heartbeat_resp(struct raft *r, const struct raft_msg *m)
{
    struct progress *pr = pr_find(r, m->from);
    if (!pr)
        return 0;
    pr->recent_active = true;
    int rv = note_rebuilding(r, pr, m);
    if (rv != 0)
        return rv;
    if (pr->state == PR_PROBE)
        pr->paused = false;
    if (pr->match < last_index(r))
        send_append(r, pr);
    return 0;
}

static int tick_leader(struct raft *r)
{
    r->hb_elapsed++;
    r->elapsed++;
    if (r->transferee && ++r->transfer_elapsed >= r->election_ticks)
        r->transferee = 0;
    if (r->elapsed >= r->election_ticks) {
        r->elapsed = 0;
        if (r->check_quorum) {
            unsigned active = 0, n = 0;
            for (unsigned i = 0; i < r->n_prs; i++) {
                struct progress *pr = &r->prs[i];
                if (!pr->voter)
                    continue;
                n++;
                active += pr->recent_active || pr->id == r->id;
            }
            if (n > 0 && active < n / 2 + 1) {
                become_follower(r, r->term, 0);
                return 0;
            }
        }
        for (unsigned i = 0; i < r->n_prs; i++)
            r->prs[i].recent_active = r->prs[i].id == r->id;
    }
    /* Retransmission: APPENDs or a snapshot out for too long without an
     * answer are presumed lost; probe again from the known match. */
    unsigned limit = r->election_ticks / 2 > 2 ? r->election_ticks / 2 : 2;
    for (unsigned i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        if (pr->id == r->id)
            continue;
        bool waiting = (pr->state == PR_REPLICATE && pr->infl_n > 0) || pr->state == PR_SNAPSHOT ||
                       (pr->state == PR_PROBE && pr->paused);
        if (!waiting) {
            pr->stall = 0;
            continue;
        }
        if (++pr->stall >= limit) {
            pr_probe(pr);
            send_append(r, pr);
        }
    }
    if (r->hb_elapsed >= r->heartbeat_ticks) {
        r->hb_elapsed = 0;
        bcast_heartbeat(r);
    }
    return 0;
}

/* ======================================================================== */
/* Follower                                                                 */
/* ======================================================================== */

static void send_ack(struct raft *r, uint64_t index)
{
    struct out_msg *o = queue_msg(r, RAFT_MSG_APPEND_RESP, r->leader);
    if (!o)
        return;
    o->m.index = index;
    if (index > r->acked)
        r->acked = index;
}

/* Acknowledge newly durable entries that match this term's leader. */
static void maybe_ack(struct raft *r)
{
    if (r->role != RAFT_FOLLOWER || r->leader == 0 || r->leader == r->id)
        return;
    uint64_t idx = min64(stable_index(r), r->ack_limit);
    if (idx > r->acked)
        send_ack(r, idx);
}

/* Leave rebuilding once the log, durable and matching this term's leader,
 * reaches the leader's certified commit index (see REBUILDING). */
static void maybe_rebuilt(struct raft *r)
{
    if (!r->rebuilding || r->rebuild_target == 0 || r->role != RAFT_FOLLOWER || r->leader == 0)
        return;
    /* Entries up to our commit index are committed, so match any leader. */
    uint64_t held = min64(stable_index(r), max64(r->ack_limit, r->commit));
    if (held < r->rebuild_target) /* MUTANT:rebuild_exit */
        return;
    r->rebuilding = false;
    r->rebuilt_ready = true;
    r->rebuild_target = 0;
    /* We may have voted in this term before the loss: only for the leader
     * from now on (it has won the term already). */
    if (r->vote == 0)
        r->vote = r->leader;
    /* An unmarked acknowledgement: the leader counts us again. */
    send_ack(r, held);
}

static void truncate_from(struct raft *r, uint64_t index)
{
    assert(index > r->commit);
    rlog_truncate(&r->log, index);
    if (r->handed >= index)
        r->handed = index - 1;
    while (r->n_confs > 1 && r->confs[r->n_confs - 1].index >= index)
        r->n_confs--;
    drop_queued_appends(r);
}

static int follower_append(struct raft *r, const struct raft_msg *m)
{
    uint64_t prev = m->index;
    if (prev < r->commit) {
        /* Everything up to commit matches already; acknowledge what
         * of it is durable (a commit index learned from the leader
         * can be ahead of this server's disk). */
        send_ack(r, min64(r->commit, stable_index(r)));
        return 0;
    }
    uint64_t last = last_index(r), t;
    if (prev > last || rlog_term(&r->log, prev, &t) != 0 || t != m->log_term) {
        /* Hint: the largest k <= prev with term(k) <= m->log_term. */
        uint64_t k = min64(prev, last);
        while (k > r->commit && rlog_term0(&r->log, k) > m->log_term)
            k--;
        struct out_msg *o = queue_msg(r, RAFT_MSG_APPEND_RESP, m->from);
        if (!o)
            return 0;
        o->m.reject = true;
        o->m.index = prev;
        o->m.hint_index = k;
        o->m.hint_term = rlog_term0(&r->log, k);
        return 0;
    }
    size_t n = m->n_entries, j = 0;
    for (; j < n; j++) {
        const struct raft_entry *e = &m->entries[j];
        if (e->index > last)
            break;
        if (rlog_term0(&r->log, e->index) != e->term) { /* MUTANT:truncate */
            truncate_from(r, e->index);
            break;
        }
    }
    if (j < n) {
        int rv = rlog_append_entries(&r->log, &m->entries[j], n - j);
        if (rv != 0)
            return rv;
        rv = conf_scan(r, &m->entries[j], n - j);
        if (rv != 0)
            return rv;
    }
    uint64_t last_new = prev + n;
    r->ack_limit = max64(r->ack_limit, last_new);
    uint64_t c = min64(m->commit, last_new); /* MUTANT:commit_clamp */
    if (c > r->commit)
        r->commit = c;
    /* Acknowledge only what is durable; the rest is acknowledged from
     * raft_persisted(). */
    if (min64(stable_index(r), r->ack_limit) >= last_new) /* MUTANT:ack_durable */
        send_ack(r, last_new);
    return 0;
}

static void follower_heartbeat(struct raft *r, const struct raft_msg *m)
{
    uint64_t c = min64(m->commit, last_index(r));
    /* The leader capped m->commit to its match for us, which may predate
     * the loss of our log: trust only what an APPEND proved to match. */
    if (r->rebuilding)
        c = min64(c, r->ack_limit);
    if (c > r->commit)
        r->commit = c;
    send_simple(r, RAFT_MSG_HEARTBEAT_RESP, m->from, r->term, false);
}

static int follower_snapshot(struct raft *r, const struct raft_msg *m)
{
    if (m->index <= r->commit) {
        send_ack(r, min64(r->commit, stable_index(r)));
        return 0;
    }
    uint64_t t;
    if (rlog_term(&r->log, m->index, &t) == 0 && t == m->log_term) {
        /* We have that entry: it is committed, so is our prefix. */
        r->commit = m->index;
        r->ack_limit = max64(r->ack_limit, m->index);
        maybe_ack(r);
        return 0;
    }
    void *data = NULL;
    if (m->snap_len) {
        data = malloc(m->snap_len);
        if (!data)
            return -ENOMEM;
        memcpy(data, m->snap_data, m->snap_len);
    }
    free(r->reset_data);
    r->reset_data = data;
    r->reset_snap = *m;
    r->reset_snap.snap_data = data;
    r->reset_snap.entries = NULL;
    r->reset_snap.n_entries = 0;
    r->reset_ready = true;
    rlog_reset(&r->log, m->index, m->log_term);
    drop_queued_appends(r);
    r->handed = m->index;
    r->commit = m->index;
    r->applied = m->index;
    r->n_confs = 0;
    int rv = conf_push(r, m->index, &m->snap_conf);
    if (rv != 0)
        return rv;
    r->ack_limit = max64(r->ack_limit, m->index);
    return 0;
}

/* ======================================================================== */
/* Votes                                                                    */
/* ======================================================================== */

static void handle_vote(struct raft *r, const struct raft_msg *m)
{
    bool pre = m->type == RAFT_MSG_PREVOTE;
    uint64_t lt = last_term(r);
    bool log_ok = m->log_term > lt || (m->log_term == lt && m->index >= last_index(r));
    log_ok = log_ok; /* MUTANT:log_ok */
    bool can;
    if (pre)
        can = m->term > r->term;
    else
        can = r->vote == m->from || (r->vote == 0 && r->leader == 0); /* MUTANT:vote_once */
    /* It may have voted in this term, or for a log it no longer holds,
     * before it lost its disk. */
    if (r->rebuilding) /* MUTANT:rebuild_vote */
        can = false;
    uint8_t type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
    if (can && log_ok) {
        send_simple(r, type, m->from, pre ? m->term : r->term, false);
        if (!pre) {
            r->vote = m->from;
            r->elapsed = 0;
        }
    } else {
        send_simple(r, type, m->from, r->term, true);
    }
}

/* ======================================================================== */
/* Inputs                                                                   */
/* ======================================================================== */

int raft_step(struct raft *r, const struct raft_msg *m)
{
    assert(!r->in_ready);
    if (m->from == r->id || m->from == 0)
        return 0;
    bool vote_req = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;
    if (m->term > r->term) {
        /* Leader lease: a server that hears from a live leader
         * ignores disruptive elections (removed servers, flaky
         * links) unless the leader itself asked for it. */
        if (vote_req && r->check_quorum && r->leader != 0 && r->elapsed < r->election_ticks &&
            !m->transfer)
            return 0;
        if (m->type == RAFT_MSG_PREVOTE)
            ; /* a PreVote never changes anybody's term */
        else if (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject)
            ;                                 /* granted for the term we would campaign at */
        else if (r->role == RAFT_LEADER && 0) /* MUTANT:leader_stepdown */
            r->term = m->term;
        else {
            bool from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
                               m->type == RAFT_MSG_SNAPSHOT;
            become_follower(r, m->term, from_leader ? m->from : 0);
        }
    } else if (m->term < r->term) {
        /* Tell a stale leader about the new term so it steps down;
         * tell a stale pre-candidate why it will not win. */
        if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
            m->type == RAFT_MSG_SNAPSHOT)
            send_simple(r, RAFT_MSG_APPEND_RESP, m->from, r->term, false);
        else if (m->type == RAFT_MSG_PREVOTE)
            send_simple(r, RAFT_MSG_PREVOTE_RESP, m->from, r->term, true);
        return 0;
    }

    if (vote_req) {
        handle_vote(r, m);
        return 0;
    }
    switch (r->role) {
    case RAFT_LEADER:
        if (m->term != r->term)
            return 0;
        if (m->type == RAFT_MSG_APPEND_RESP)
            return leader_append_resp(r, m);
        if (m->type == RAFT_MSG_HEARTBEAT_RESP)
            return leader_heartbeat_resp(r, m);
        return 0;
    case RAFT_PRECANDIDATE:
    case RAFT_CANDIDATE: {
        bool pre = r->role == RAFT_PRECANDIDATE;
        uint8_t want = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
        if (m->type == want) {
            if (pre && !m->reject && m->term != r->term + 1)
                return 0;
            if (!pre && m->term != r->term)
                return 0;
            record_vote(r, m->from, !m->reject);
            return after_tally(r);
        }
        if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT ||
            m->type == RAFT_MSG_SNAPSHOT)
            become_follower(r, m->term, m->from);
        else
            return 0;
    }
        /* The leader's message is handled as a follower would. */
        /* fall through */
    case RAFT_FOLLOWER:
        switch (m->type) {
        case RAFT_MSG_APPEND:
        case RAFT_MSG_HEARTBEAT:
        case RAFT_MSG_SNAPSHOT: {
            if (r->leader != m->from) {
                r->leader = m->from;
                r->role_changed = true; /* report the new leader */
            }
            r->elapsed = 0;
            if (r->rebuilding && m->rebuild_commit != 0 && m->rebuild_for == r->rebuild_id &&
                (r->rebuild_target == 0 || m->rebuild_commit < r->rebuild_target))
                r->rebuild_target = m->rebuild_commit;
            int rv = 0;
            if (m->type == RAFT_MSG_APPEND)
                rv = follower_append(r, m);
            else if (m->type == RAFT_MSG_SNAPSHOT)
                rv = follower_snapshot(r, m);
            else
                follower_heartbeat(r, m);
            if (rv == 0)
                maybe_rebuilt(r);
            return rv;
        }
        case RAFT_MSG_TIMEOUT_NOW:
            return campaign(r, false, true);
        default:
            return 0;
        }
    }
    return 0;
}

int raft_tick(struct raft *r)
{
    assert(!r->in_ready);
    if (r->role == RAFT_LEADER)
        return tick_leader(r);
    r->elapsed++;
    if (r->elapsed >= r->rand_timeout && elect_conf(r)) {
        r->elapsed = 0;
        return campaign(r, r->pre_vote, false);
    }
    return 0;
}

int raft_propose(struct raft *r, const struct raft_buf *bufs, size_t n, uint64_t *index)
{
    assert(!r->in_ready);
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transferee)
        return -EBUSY;
    if (index)
        *index = last_index(r) + 1;
    int rv = rlog_append_bufs(&r->log, r->term, RAFT_ENTRY_NORMAL, bufs, n);
    if (rv != 0)
        return rv;
    r->bcast = true;
    return 0;
}

int raft_propose_conf(struct raft *r, enum raft_conf_op op, uint64_t id, uint64_t *index)
{
    assert(!r->in_ready);
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (r->transferee || cur_conf_index(r) > r->commit || r->commit < r->term_start)
        return -EBUSY;
    if (id == 0)
        return -EINVAL;
    struct raft_conf c = *cur_conf(r);
    int i = raft_conf_find(&c, id);
    switch (op) {
    case RAFT_CONF_ADD_LEARNER:
        if (i >= 0 || c.n == RAFT_MAX_SERVERS)
            return -EINVAL;
        c.servers[c.n].id = id;
        c.servers[c.n].voter = false;
        c.n++;
        break;
    case RAFT_CONF_ADD_VOTER:
        if (i >= 0 && c.servers[i].voter)
            return -EINVAL;
        if (i >= 0) {
            struct progress *pr = pr_find(r, id);
            if (!pr || pr->match < r->commit || pr->rebuilding)
                return -EAGAIN;
            c.servers[i].voter = true;
        } else {
            if (c.n == RAFT_MAX_SERVERS)
                return -EINVAL;
            c.servers[c.n].id = id;
            c.servers[c.n].voter = true;
            c.n++;
        }
        break;
    case RAFT_CONF_REMOVE:
        if (i < 0 || (c.servers[i].voter && n_voters(r) == 1))
            return -EINVAL;
        c.servers[i] = c.servers[c.n - 1];
        c.n--;
        break;
    default:
        return -EINVAL;
    }
    unsigned char buf[RAFT_CONF_BYTES(RAFT_MAX_SERVERS)];
    struct raft_buf b = {buf, raft_conf_encode(&c, buf)};
    int rv = rlog_append_bufs(&r->log, r->term, RAFT_ENTRY_CONF, &b, 1);
    if (rv != 0)
        return rv;
    if (index)
        *index = last_index(r);
    rv = conf_push(r, last_index(r), &c);
    if (rv != 0)
        return rv;
    r->bcast = true;
    /* Removing a follower may complete a quorum (e.g. 2 of 3 -> 1 of 1
     * once committed): nothing to do now, commit needs the new entry. */
    maybe_commit(r);
    return 0;
}

int raft_transfer(struct raft *r, uint64_t to)
{
    assert(!r->in_ready);
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    if (to == r->id || !is_voter(r, to))
        return -EINVAL;
    if (r->transferee)
        return -EBUSY;
    struct progress *pr = pr_find(r, to);
    if (!pr)
        return -EINVAL;
    if (pr->rebuilding)
        return -EAGAIN;
    r->transferee = to;
    r->transfer_elapsed = 0;
    if (pr->match == last_index(r))
        send_simple(r, RAFT_MSG_TIMEOUT_NOW, to, r->term, false);
    else
        send_append(r, pr);
    return 0;
}

int raft_persisted(struct raft *r, uint64_t index, uint64_t term)
{
    assert(!r->in_ready);
    if (r->log.reset_pending || index < r->log.u_off || index > r->handed)
        return 0;
    uint64_t t;
    if (rlog_term(&r->log, index, &t) != 0 || t != term)
        return 0; /* overtaken by a truncation */
    rlog_stable_to(&r->log, index);
    if (r->role == RAFT_LEADER) {
        maybe_commit(r);
    } else {
        maybe_rebuilt(r);
        maybe_ack(r);
    }
    return 0;
}

int raft_reset_done(struct raft *r, uint64_t index, uint64_t term)
{
    assert(!r->in_ready);
    if (!r->log.reset_pending || index != r->log.snap_index || term != r->log.snap_term ||
        r->reset_ready)
        return 0;
    r->log.reset_pending = false;
    maybe_rebuilt(r);
    maybe_ack(r);
    return 0;
}

/* ======================================================================== */
/* Outputs                                                                  */
/* ======================================================================== */

static uint64_t apply_hi(const struct raft *r)
{
    uint64_t hi = min64(r->commit, stable_index(r));
    return hi > r->applied ? hi : r->applied;
}

bool raft_has_ready(struct raft *r)
{
    return r->hs_term != r->term || r->hs_vote != r->vote || r->reset_ready || r->rebuilt_ready ||
           r->handed < last_index(r) || r->n_out > 0 || r->role_changed ||
           ((r->bcast || r->commit_bcast) && r->role == RAFT_LEADER) || apply_hi(r) > r->applied;
}

/* Resolve a queued SNAPSHOT against the storage as it is now. */
static int resolve_snapshot(struct raft *r, struct raft_msg *m)
{
    uint64_t idx = rlog_first(&r->log) - 1, t;
    if (rlog_term(&r->log, idx, &t) != 0)
        return -ENOENT;
    m->index = idx;
    m->log_term = t;
    m->snap_conf = *conf_at(r, idx);
    m->snap_data = NULL;
    m->snap_len = 0;
    if (r->log.ops.snapshot)
        return r->log.ops.snapshot(r->log.ops.ctx, &m->snap_data, &m->snap_len);
    return 0;
}

int raft_ready(struct raft *r, struct raft_ready *rd)
{
    assert(!r->in_ready);
    if (r->bcast && r->role == RAFT_LEADER)
        bcast_append(r);
    if (r->commit_bcast && r->role == RAFT_LEADER)
        bcast_heartbeat(r);
    r->bcast = false;
    r->commit_bcast = false;
    memset(rd, 0, sizeof(*rd));
    r->in_ready = true;
    if (r->hs_term != r->term || r->hs_vote != r->vote) {
        rd->hs_changed = true;
        rd->term = r->term;
        rd->vote = r->vote;
    }
    if (r->reset_ready) {
        rd->reset = true;
        rd->snap = r->reset_snap;
    }
    uint64_t last = last_index(r);
    if (r->handed < last) {
        rd->entries = rlog_unstable(&r->log, r->handed + 1);
        rd->n_entries = (size_t)(last - r->handed);
    }
    r->rd_last = last;

    if (r->n_out > r->cap_rd_msgs) {
        struct raft_msg *m = realloc(r->rd_msgs, r->n_out * sizeof(*m));
        if (!m) {
            r->in_ready = false;
            return -ENOMEM;
        }
        r->rd_msgs = m;
        r->cap_rd_msgs = r->n_out;
    }
    size_t k = 0;
    for (size_t i = 0; i < r->n_out; i++) {
        struct out_msg *o = &r->out[i];
        struct raft_msg *m = &r->rd_msgs[k];
        *m = o->m;
        if (m->type == RAFT_MSG_SNAPSHOT) {
            if (resolve_snapshot(r, m) != 0)
                continue; /* dropped: retried after a stall */
        } else if (m->type == RAFT_MSG_APPEND && o->hi >= o->lo) {
            size_t n = (size_t)(o->hi - o->lo + 1);
            if (o->lo >= r->log.u_off) {
                m->entries = rlog_unstable(&r->log, o->lo);
            } else {
                struct raft_entry *e = arena_alloc(r, n * sizeof(*e));
                if (!e || rlog_slice(&r->log, o->lo, o->hi, e) != 0)
                    continue; /* dropped: retried after a stall */
                m->entries = e;
            }
            m->n_entries = n;
        }
        k++;
    }
    rd->msgs = r->rd_msgs;
    rd->n_msgs = k;
    rd->commit = r->commit;
    r->rd_apply_hi = apply_hi(r);
    if (r->rd_apply_hi > r->applied) {
        rd->apply_lo = r->applied + 1;
        rd->apply_hi = r->rd_apply_hi;
    } else {
        rd->apply_lo = 1;
        rd->apply_hi = 0;
    }
    rd->role_changed = r->role_changed;
    rd->role = r->role;
    rd->leader = r->leader;
    rd->rebuilt = r->rebuilt_ready;
    return 0;
}

void raft_advance(struct raft *r)
{
    assert(r->in_ready);
    r->in_ready = false;
    r->hs_term = r->term;
    r->hs_vote = r->vote;
    r->reset_ready = false;
    r->handed = r->rd_last;
    r->n_out = 0;
    if (r->rd_apply_hi > r->applied)
        r->applied = r->rd_apply_hi;
    r->role_changed = false;
    r->rebuilt_ready = false;
    for (size_t i = 0; i < r->n_arena; i++)
        free(r->arena[i]);
    r->n_arena = 0;
}

/* ======================================================================== */
/* Life cycle and inspection                                                */
/* ======================================================================== */

int raft_new(const struct raft_options *opt, struct raft **out)
{
    if (opt->id == 0 || !opt->log.first_index || !opt->log.last_index || !opt->log.term ||
        !opt->log.entries)
        return -EINVAL;
    struct raft *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int rv;
    r->id = opt->id;
    r->election_ticks = opt->election_ticks ? opt->election_ticks : 10;
    r->heartbeat_ticks = opt->heartbeat_ticks ? opt->heartbeat_ticks : 1;
    r->max_inflight = opt->max_inflight ? opt->max_inflight : 64;
    r->max_msg_entries = opt->max_msg_entries ? opt->max_msg_entries : 4096;
    r->max_msg_bytes = opt->max_msg_bytes;
    r->pre_vote = opt->pre_vote;
    r->check_quorum = opt->check_quorum;
    r->rebuilding = opt->rebuilding;
    r->rng = (opt->seed ^ (opt->id * 0x9E3779B97F4A7C15ULL)) | 1;
    if (r->rebuilding)
        r->rebuild_id = rng_next(r) | 1;
    rv = rlog_init(&r->log, &opt->log);
    if (rv != 0)
        goto err_free;
    r->handed = last_index(r);
    r->commit = r->applied = r->log.snap_index;
    /* An entry of term T durable means term T was adopted (even if the
     * hard state write did not make it): never campaign for T again. */
    r->term = max64(opt->term, last_term(r));
    r->vote = r->term == opt->term ? opt->vote : 0;
    r->hs_term = opt->term;
    r->hs_vote = opt->vote;
    struct raft_conf empty;
    memset(&empty, 0, sizeof(empty));
    rv = conf_push(r, r->log.snap_index, opt->conf ? opt->conf : &empty);
    if (rv != 0)
        goto err_log;
    /* Configuration entries in the retained log override the base. */
    struct raft_entry chunk[256];
    for (uint64_t lo = rlog_first(&r->log); !opt->no_conf_entries && lo <= last_index(r);
         lo += 256) {
        uint64_t hi = min64(lo + 255, last_index(r));
        rv = rlog_slice(&r->log, lo, hi, chunk);
        if (rv == 0)
            rv = conf_scan(r, chunk, (size_t)(hi - lo + 1));
        if (rv != 0)
            goto err_confs;
    }
    r->role = RAFT_FOLLOWER;
    reset_timers(r);
    *out = r;
    return 0;

err_confs:
    free(r->confs);
err_log:
    rlog_free(&r->log);
err_free:
    free(r);
    return rv;
}

void raft_free(struct raft *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_arena; i++)
        free(r->arena[i]);
    free(r->arena);
    for (unsigned i = 0; i < r->n_prs; i++)
        free(r->prs[i].infl);
    free(r->out);
    free(r->rd_msgs);
    free(r->reset_data);
    free(r->confs);
    rlog_free(&r->log);
    free(r);
}

uint64_t raft_id(const struct raft *r)
{
    return r->id;
}

enum raft_role raft_role(const struct raft *r)
{
    return r->role;
}

uint64_t raft_term(const struct raft *r)
{
    return r->term;
}

uint64_t raft_leader(const struct raft *r)
{
    return r->leader;
}

uint64_t raft_commit(const struct raft *r)
{
    return r->commit;
}

uint64_t raft_applied(const struct raft *r)
{
    return r->applied;
}

uint64_t raft_last_index(const struct raft *r)
{
    return last_index(r);
}

bool raft_rebuilding(const struct raft *r)
{
    return r->rebuilding;
}

int raft_log_term(const struct raft *r, uint64_t index, uint64_t *term)
{
    return rlog_term(&r->log, index, term);
}

const struct raft_conf *raft_conf(const struct raft *r)
{
    return cur_conf(r);
}

int raft_match(const struct raft *r, uint64_t id, uint64_t *match)
{
    if (r->role != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    for (unsigned i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id) {
            *match = r->prs[i].id == r->id ? stable_index(r) : r->prs[i].match;
            return 0;
        }
    return -ENOENT;
}
