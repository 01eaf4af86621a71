/*
 * pgroup — see pgroup.h.
 *
 * A WRITE'S LIFE (struct pwrite, FIFO per partition)
 *   WAIT    no leader known or reachable: tried again at every tick
 *   SENT    forwarded to the leader in a WRITE_REQ; its answer places it
 *   PLACED  its records are at offsets below end_off, the last in term
 *           `term`: done once the commit point here passes end_off with
 *           that term still there (on a node without a replica: once the
 *           leader answered, which it does after the commit)
 *   A write neither done nor answered after RESEND_MS is sent again: the
 *   producer sequence makes that safe.  At its deadline
 *   (request.timeout.ms) it fails with ETIMEDOUT.
 *
 * THE PRODUCER TABLE (leader side of the sequence check)
 *   Per producer, the last sequence written to the local log and where:
 *   every record with side data passes through `appended` when it is
 *   written (proposed here, or received from a leader), the latest write
 *   winning.  An entry is trusted only while the log still holds that
 *   offset in that term; otherwise (a truncation, a restart) the tail of
 *   the log is searched for the producer's last record (prodtab.h), at most PRODTAB_SCAN
 *   records back.
 */
#include "broker/cluster.h"
#include "broker/internal.h"
#include "broker/le.h"
#include "broker/log.h"
#include "broker/pgroup.h"
#include "broker/prodtab.h"
#include "broker/record.h"
#include "broker/replica.h"
#include "broker/sysio.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define RESEND_MS  1000
#define IDLE_TICKS 10 /* idle ticks before a leader quiesces */
#define PREFER_MS  2000 /* a leader that is not the preferred one checks this often */
#define REPAIR_MS  2000 /* an unanswered repair is asked of the next replica */

enum pw_state { PW_WAIT, PW_SENT, PW_PLACED };

struct pwrite {
    struct pgroup *g;
    uint8_t *data;
    size_t len;
    uint32_t *lens;
    uint32_t n;
    /* Records with side data (a Kafka producer's, pgroup_append_recs): only
     * ever placed by this node as leader, never forwarded; producer 0 means
     * this node's own (cluster_producer). */
    uint8_t *side;
    uint32_t *side_lens;
    uint64_t producer;
    part_placed_cb pcb;
    uint64_t seq; /* of the first record */
    uint64_t req; /* of the last WRITE_REQ */
    enum pw_state state;
    int64_t sent_ms, deadline_ms;
    uint32_t sent_to;
    uint64_t end_off, term;
    int fail; /* the leader here cannot store it: fails at the next tick */
    part_done_cb cb;
    void *arg;
    struct pwrite *next;
};

/* A forwarded write this leader placed, answered after its commit. */
struct fwd_in {
    uint32_t from;
    uint64_t req, end_off, term;
    struct fwd_in *next;
};

/* A read of this node (which holds no replica) from the leader. */
struct pread {
    uint64_t req, pos;
    uint32_t size;
    int64_t sent_ms, deadline_ms;
    pgroup_read_cb cb;
    void *arg;
    struct pread *next;
};

/* A TRIM entry of the log, applied once committed. */
struct trim {
    uint64_t off, term, to;
    struct trim *next;
};


struct pgroup {
    struct cluster *c;
    struct part *p;
    uint64_t id;
    struct replica *rep; /* with a local replica */
    uint32_t replicas[MK_MAX_PEERS];
    uint32_t nrep;
    uint32_t self;
    uint32_t leader_hint; /* without a replica: the leader last heard of */
    uint64_t leader_term; /* ... and its term */
    uint64_t next_seq;
    struct pwrite *wh, *wt;
    struct fwd_in *fh;
    struct prodtab prod;
    bool quiet;
    unsigned idle;
    uint32_t isr_mask; /* as the leader last said (QUIESCE) */
    bool was_leader;
    bool settling, unsettled;
    uint64_t saved_commit;
    unsigned try_rr; /* without a replica and a hint: whom to ask */
    struct pread *reads;
    int64_t prefer_ms; /* when the preferred leader was last considered */
    bool in_settled;
    struct trim *trims; /* written, not yet committed */
    int64_t roll_ms;    /* when this leader last proposed a roll */
    uint64_t trim_asked; /* the last TRIM this leader proposed */
    /* repair of damaged committed entries (pgroup_repair) */
    uint64_t repair_off; /* offset + 1 asked for, 0: none in flight */
    uint64_t repair_req;
    int64_t repair_ms;
    unsigned repair_rr;  /* which replica to ask next */
    uint64_t repaired;   /* entries rewritten from another replica */
    int64_t probe_ms;    /* without a replica: when a leader was last looked for */
};

static void settle(struct pgroup *g);

/* "topic/partition", for the log. */
static const char *gname(const struct pgroup *g)
{
    static char buf[300];
    snprintf(buf, sizeof(buf), "%s/%" PRIu32, g->p->t ? g->p->t->name : "(deleted)", g->p->id);
    return buf;
}
static void on_read_req(struct pgroup *g, uint32_t from, const struct wire_call *w);
static void on_read_resp(struct pgroup *g, uint32_t from, const struct wire_call *w);
static void on_repair_req(struct pgroup *g, uint32_t from, const struct wire_call *w);
static void on_repair_resp(struct pgroup *g, uint32_t from, const struct wire_call *w);
static void reads_tick(struct pgroup *g, int64_t now);

/* ------------------------------------------------------------ producer table */

static void on_appended(void *ctx, uint64_t off, uint64_t term, const uint8_t *aux, uint32_t alen)
{
    struct pgroup *g = ctx;
    prodtab_note_aux(&g->prod, aux, alen, off, term);
}

static void on_control(void *ctx, uint64_t off, uint64_t term, uint8_t tag, uint64_t arg)
{
    struct pgroup *g = ctx;
    if (tag != REPLICA_CTL_TRIM)
        return; /* a ROLL is the replica's own business */
    struct trim *t = malloc(sizeof(*t));
    if (!t)
        return; /* the leader asks again at its next housekeeping */
    *t = (struct trim){.off = off, .term = term, .to = arg, .next = g->trims};
    g->trims = t;
}

/* Applies the TRIM entries the commit point passed (retention, decided by
 * the leader once, the same on every replica). */
static void apply_trims(struct pgroup *g)
{
    struct part *p = g->p;
    for (struct trim **at = &g->trims; *at;) {
        struct trim *t = *at;
        if (t->off >= p->commit_off) {
            at = &t->next;
            continue;
        }
        *at = t->next;
        if (t->off >= plog_first_off(&p->log) && plog_term_at(&p->log, t->off) == t->term) {
            size_t n = 0;
            int rc = plog_trim(&p->log, t->to, &n);
            if (rc < 0)
                mk_log(MK_WARN, "%s: retention: %s", gname(g), strerror(-rc));
            else if (n)
                mk_log(MK_INFO, "%s: retention: %zu segments deleted, the log starts at offset %" PRIu64,
                       gname(g), n, plog_first_off(&p->log));
            if (p->log.ckpt_off < plog_first_off(&p->log))
                p->log.ckpt_off = plog_first_off(&p->log);
        }
        free(t);
    }
}

/* ------------------------------------------------------------ placing records */

static bool is_leader(const struct pgroup *g)
{
    return g->rep && raft_role(replica_raft(g->rep)) == RAFT_LEADER;
}

static uint32_t leader_of(const struct pgroup *g)
{
    if (g->rep)
        return (uint32_t)raft_leader(replica_raft(g->rep));
    return g->leader_hint;
}

static void wake(struct pgroup *g)
{
    g->quiet = false;
    g->idle = 0;
}

/* At the leader: puts records [0, n) of producer prod (sequences seq ...)
 * in the log unless they are there already.  *end_off, *term: where the
 * last one is (end_off - 1) and its term. */
static int place(struct pgroup *g, uint64_t prod, uint64_t seq, uint32_t n, const uint32_t *lens,
                 const uint8_t *data, const uint8_t *side, const uint32_t *side_lens,
                 uint64_t *end_off, uint64_t *term)
{
    if (!is_leader(g))
        return RAFT_ENOTLEADER;
    uint32_t skip = 0;
    const uint8_t *at = data, *sat = side;
    int64_t window = 2 * g->p->b->cfg.request_timeout_ms;
    if ((prod & PRODUCER_KAFKA) && window < KAFKA_RETRY_MS)
        window = KAFKA_RETRY_MS;
    int rc = prodtab_check(&g->prod, &g->p->log, prod, sys_now_ms() - window, seq, n, &skip,
                           end_off, term);
    if (rc < 0)
        return rc;
    if (rc == 1)
        return 0; /* all there: at or before the producer's last record */
    for (uint32_t i = 0; i < skip; i++) {
        at += lens[i];
        if (side)
            sat += side_lens[i];
    }
    size_t bytes = 0;
    for (uint32_t i = skip; i < n; i++)
        bytes += lens[i];
    struct iovec iov = {(void *)at, bytes};
    struct replica_producer rp = {.id = prod, .seq = seq + skip};
    uint64_t first;
    struct part *p = g->p;
    int64_t now = sys_now_ms();
    int64_t ts = now > plog_active(&p->log)->last_ts ? now : plog_active(&p->log)->last_ts;
    rc = replica_propose(g->rep, &iov, 1, lens + skip, side ? sat : NULL,
                             side ? side_lens + skip : NULL, n - skip, ts, &rp, &first, term);
    if (rc < 0)
        return rc;
    *end_off = first + (n - skip);
    return 0;
}

/* ------------------------------------------------------------ this node's writes */

static void pw_unlink(struct pgroup *g, struct pwrite *w)
{
    struct pwrite **at = &g->wh, *prev = NULL;
    while (*at && *at != w) {
        prev = *at;
        at = &(*at)->next;
    }
    if (!*at)
        return;
    *at = w->next;
    if (g->wt == w)
        g->wt = prev;
}

static void pw_finish(struct pgroup *g, struct pwrite *w, int status)
{
    pw_unlink(g, w);
    if (w->pcb)
        w->pcb(w->arg, status, status == 0 ? w->end_off - w->n : 0);
    else
        w->cb(w->arg, status);
    free(w->data);
    free(w->lens);
    free(w->side);
    free(w->side_lens);
    free(w);
}

/* Where a request goes: the leader; a node without a replica that knows
 * none asks the replicas in turn (any of them knows it). */
static uint32_t ask_whom(struct pgroup *g)
{
    uint32_t to = leader_of(g);
    if (!g->rep && (!to || to == g->self))
        to = g->replicas[g->try_rr++ % g->nrep];
    return to;
}

static void pw_try(struct pgroup *g, struct pwrite *w, int64_t now)
{
    w->sent_ms = now;
    if (is_leader(g)) {
        int rc = place(g, w->producer ? w->producer : cluster_producer(g->c), w->seq, w->n, w->lens,
                       w->data, w->side, w->side_lens, &w->end_off, &w->term);
        if (rc == 0) {
            w->state = PW_PLACED;
            g->unsettled = true; /* it may be committed already (a resend) */
            return;
        }
        if (rc != RAFT_ENOTLEADER && rc != -EBUSY) {
            w->state = PW_WAIT;
            w->fail = rc;
            w->deadline_ms = now;
            mk_log(MK_WARN, "%s: proposing: %s", gname(g), strerror(-rc));
            return;
        }
    }
    if (w->side) {
        /* Never forwarded: the client asks the leader itself (NOT_LEADER). */
        w->state = PW_WAIT;
        w->fail = -EREMOTE;
        w->deadline_ms = now;
        return;
    }
    uint32_t to = ask_whom(g);
    if (!to || to == g->self || !cluster_connected(g->c, to)) {
        w->state = PW_WAIT;
        return;
    }
    w->req = cluster_next_req(g->c);
    struct wire_call call = {.kind = WIRE_WRITE_REQ,
                             .req = w->req,
                             .group = g->id,
                             .producer = cluster_producer(g->c),
                             .seq = w->seq,
                             .n = w->n,
                             .lens = w->lens,
                             .data = w->data,
                             .data_len = w->len};
    w->sent_to = to;
    w->state = cluster_send_call(g->c, to, &call) == 0 ? PW_SENT : PW_WAIT;
}

/* Copies the first len bytes of iov's pieces to dst. */
static void gather(uint8_t *dst, size_t len, const struct iovec *iov, int iovcnt)
{
    size_t at = 0;
    for (int i = 0; i < iovcnt && at < len; i++) {
        size_t k = iov[i].iov_len < len - at ? iov[i].iov_len : len - at;
        if (k) /* an empty piece may have no base */
            memcpy(dst + at, iov[i].iov_base, k);
        at += k;
    }
}

/* A new write of this node: queued behind the others, tried at once. */
static void pw_queue(struct pgroup *g, struct pwrite *w)
{
    int64_t now = sys_now_ms();
    w->deadline_ms = now + g->p->b->cfg.request_timeout_ms;
    if (g->wt)
        g->wt->next = w;
    else
        g->wh = w;
    g->wt = w;
    wake(g);
    pw_try(g, w, now);
    settle(g);
}

int pgroup_append(struct part *p, const struct iovec *iov, int iovcnt, const uint32_t *lens,
                  size_t n, part_done_cb cb, void *arg)
{
    struct pgroup *g = p->g;
    if (!p->t || !g)
        return -ESTALE;
    if (n == 0) {
        cb(arg, 0);
        return 0;
    }
    if (n > UINT32_MAX / 2)
        return -EINVAL;
    struct pwrite *w = calloc(1, sizeof(*w));
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += lens[i];
    if (!w || !(w->data = malloc(len)) || !(w->lens = malloc(n * sizeof(*lens)))) {
        if (w)
            free(w->data);
        free(w);
        return -ENOMEM;
    }
    gather(w->data, len, iov, iovcnt);
    memcpy(w->lens, lens, n * sizeof(*lens));
    w->g = g;
    w->len = len;
    w->n = (uint32_t)n;
    w->seq = g->next_seq;
    g->next_seq += n;
    w->cb = cb;
    w->arg = arg;
    pw_queue(g, w);
    return 0;
}

int pgroup_append_recs(struct part *p, const struct iovec *iov, int iovcnt,
                       const struct part_rec *recs, size_t n, uint64_t producer, uint64_t seq,
                       part_placed_cb cb, void *arg)
{
    struct pgroup *g = p->g;
    if (!p->t || !g)
        return -ESTALE;
    if (!is_leader(g))
        return -EREMOTE;
    if (n == 0 || n > UINT32_MAX / 2)
        return -EINVAL;
    struct pwrite *w = calloc(1, sizeof(*w));
    size_t len = 0, slen = 0;
    for (size_t i = 0; i < n; i++) {
        len += recs[i].len;
        slen += recs[i].aux_len;
    }
    if (!w || !(w->data = malloc(len ? len : 1)) || !(w->lens = malloc(n * sizeof(uint32_t))) ||
        !(w->side = malloc(slen ? slen : 1)) || !(w->side_lens = malloc(n * sizeof(uint32_t)))) {
        if (w) {
            free(w->data);
            free(w->lens);
            free(w->side);
        }
        free(w);
        return -ENOMEM;
    }
    gather(w->data, len, iov, iovcnt);
    size_t sat = 0;
    for (size_t i = 0; i < n; i++) {
        w->lens[i] = recs[i].len;
        w->side_lens[i] = recs[i].aux_len;
        if (recs[i].aux_len)
            memcpy(w->side + sat, recs[i].aux, recs[i].aux_len);
        sat += recs[i].aux_len;
    }
    w->g = g;
    w->len = len;
    w->n = (uint32_t)n;
    w->producer = producer;
    if (producer) {
        w->seq = seq;
    } else {
        w->seq = g->next_seq;
        g->next_seq += n;
    }
    w->pcb = cb;
    w->arg = arg;
    pw_queue(g, w);
    return 0;
}

/* ------------------------------------------------------------ commits */

static void answer_fwd(struct pgroup *g, struct fwd_in *f, int status)
{
    struct wire_call call = {.kind = WIRE_WRITE_RESP,
                             .req = f->req,
                             .group = g->id,
                             .status = status,
                             .off = f->end_off,
                             .term = f->term,
                             .leader = leader_of(g)};
    cluster_send_call(g->c, f->from, &call); /* lost: the sender asks again */
}

/* What the commit point (or a leader change) decided, outside the
 * replica's processing (answers may propose again). */
static void settle(struct pgroup *g)
{
    if (g->settling) {
        g->unsettled = true;
        return;
    }
    g->settling = true;
    struct part *p = g->p;
    do {
        g->unsettled = false;
        bool leader = is_leader(g);
        /* Forwarded writes this node placed as leader. */
        for (struct fwd_in **at = &g->fh; *at;) {
            struct fwd_in *f = *at;
            int st = 1;
            if (p->commit_off >= f->end_off)
                st = plog_term_at(&p->log, f->end_off - 1) == f->term ? 0 : RAFT_ENOTLEADER;
            else if (!leader)
                st = RAFT_ENOTLEADER; /* ask the new leader */
            if (st == 1) {
                at = &f->next;
                continue;
            }
            *at = f->next;
            answer_fwd(g, f, st);
            free(f);
        }
        if (!g->rep)
            break;
        apply_trims(g);
        /* This node's writes, once committed here. */
        for (struct pwrite *w = g->wh; w;) {
            struct pwrite *next = w->next;
            if (w->state == PW_PLACED && p->commit_off >= w->end_off) {
                if (plog_term_at(&p->log, w->end_off - 1) == w->term) {
                    pw_finish(g, w, 0);
                    next = g->wh; /* the callback may have changed the list */
                } else {
                    pw_try(g, w, sys_now_ms()); /* cut off by a new leader */
                }
            }
            w = next;
        }
    } while (g->unsettled);
    g->settling = false;
}

static void on_committed(void *ctx, uint64_t off, uint64_t pos)
{
    struct pgroup *g = ctx;
    struct part *p = g->p;
    if (off > p->commit_off || pos > p->commit_pos) {
        p->commit_off = off;
        p->commit_pos = pos;
        p->mtime_ms = sys_now_ms();
        part_notify(p);
    }
    g->unsettled = true; /* settled after the replica call returns */
}

static void on_send(void *ctx, uint64_t to, const struct raft_msg *m)
{
    struct pgroup *g = ctx;
    if (to <= UINT32_MAX)
        cluster_send_raft(g->c, (uint32_t)to, g->id, m);
}

static bool is_replica(const struct pgroup *g, uint32_t id)
{
    for (uint32_t i = 0; i < g->nrep; i++)
        if (g->replicas[i] == id)
            return true;
    return false;
}

static uint32_t isr_now(const struct pgroup *g);

/* The leader's state (QUIESCE) to `to`, or (to = 0) to every node without a
 * replica, or to every other node when `all`: followers quiesce on it;
 * nodes without a replica learn the leader, its commit and the ISR. */
static void tell_state(struct pgroup *g, uint32_t to, bool all)
{
    struct raft *r = replica_raft(g->rep);
    struct wire_call q = {.kind = WIRE_QUIESCE,
                          .group = g->id,
                          .term = raft_term(r),
                          .commit = raft_commit(r),
                          .size = isr_now(g)};
    size_t n;
    const uint32_t *ids = cluster_nodes(g->c, &n);
    for (size_t i = 0; i < n; i++)
        if ((to ? ids[i] == to : all || !is_replica(g, ids[i])) && ids[i] != g->self)
            cluster_send_call(g->c, ids[i], &q);
}

static void after_replica(struct pgroup *g);

/* The replica processed a Ready (also when a sync job came back): answer
 * what its commit decided at once, not at the next tick. */
static void on_settled(void *ctx)
{
    struct pgroup *g = ctx;
    if (!g->in_settled) {
        g->in_settled = true;
        after_replica(g);
        g->in_settled = false;
    }
}

/* After every call into the replica: the role, the commit, the answers. */
static void after_replica(struct pgroup *g)
{
    struct raft *r = replica_raft(g->rep);
    bool leader = raft_role(r) == RAFT_LEADER;
    g->p->term = raft_term(r);
    if (g->was_leader != leader) {
        g->was_leader = leader;
        g->unsettled = true;
        mk_log(MK_INFO, "%s: %s (term %" PRIu64 ")", gname(g),
               leader ? "this node leads" : "this node no longer leads", raft_term(r));
        if (leader)
            tell_state(g, 0, false);
    }
    if (g->unsettled)
        settle(g);
}

/* ------------------------------------------------------------ from the cluster */

void pgroup_step(struct pgroup *g, uint32_t from, const struct raft_msg *m)
{
    (void)from;
    if (!g->rep)
        return;
    /* A quiet leader stays quiet for the answers to its last heartbeats;
     * anything else wakes the group. */
    bool answer = m->type == RAFT_MSG_HEARTBEAT_RESP || (m->type == RAFT_MSG_APPEND_RESP && !m->reject);
    if (g->quiet && !(answer && is_leader(g)))
        wake(g);
    int rc = replica_step(g->rep, m);
    if (rc < 0 && rc != RAFT_ENOTLEADER)
        mk_log(MK_WARN, "%s: message from node %" PRIu32 " refused: %s", gname(g), from,
               strerror(-rc));
    after_replica(g);
}

static bool records_ok(const struct part *p, const struct wire_call *w)
{
    const uint8_t *at = w->data;
    uint32_t max = p->b->cfg.message_max_bytes + 1;
    for (uint32_t i = 0; i < w->n; i++) {
        if (w->lens[i] > max || at[w->lens[i] - 1] != '\n')
            return false;
        at += w->lens[i];
    }
    return true;
}

static void on_write_req(struct pgroup *g, uint32_t from, const struct wire_call *w)
{
    struct wire_call resp = {.kind = WIRE_WRITE_RESP, .req = w->req, .group = g->id};
    uint64_t end_off = 0, term = 0;
    int rc;
    if (!g->p->t)
        rc = -ESTALE;
    else if (!records_ok(g->p, w))
        rc = -EINVAL;
    else
        rc = place(g, w->producer, w->seq, w->n, w->lens, w->data, NULL, NULL, &end_off, &term);
    if (rc == 0) {
        struct fwd_in *f = calloc(1, sizeof(*f));
        if (f) {
            *f = (struct fwd_in){.from = from, .req = w->req, .end_off = end_off, .term = term};
            f->next = g->fh;
            g->fh = f;
            g->unsettled = true;
            after_replica(g);
            return;
        }
        return; /* not answered: it is placed, the resend finds it */
    }
    resp.status = rc == -EBUSY ? RAFT_ENOTLEADER : rc;
    resp.leader = leader_of(g);
    cluster_send_call(g->c, from, &resp);
    if (g->rep)
        after_replica(g);
}

static void on_write_resp(struct pgroup *g, uint32_t from, const struct wire_call *w)
{
    struct pwrite *x = g->wh;
    while (x && !(x->state == PW_SENT && x->req == w->req))
        x = x->next;
    if (!x)
        return; /* answered already, or given up */
    if (w->status == 0) {
        x->state = PW_PLACED;
        x->end_off = w->off;
        x->term = w->term;
        if (!g->rep) {
            if (w->off > g->p->commit_off)
                g->p->commit_off = w->off;
            pw_finish(g, x, 0); /* the leader answers after the commit */
        }
        else
            settle(g);
        return;
    }
    if (w->status == RAFT_ENOTLEADER) {
        if (!g->rep && w->leader && w->leader != from)
            g->leader_hint = w->leader;
        x->state = PW_WAIT; /* tried again at the next tick */
        if (!g->rep && w->leader && w->leader != from)
            pw_try(g, x, sys_now_ms());
        return;
    }
    pw_finish(g, x, w->status);
}

void pgroup_call(struct pgroup *g, uint32_t from, const struct wire_call *w)
{
    switch (w->kind) {
    case WIRE_WRITE_REQ:
        wake(g);
        on_write_req(g, from, w);
        break;
    case WIRE_WRITE_RESP:
        on_write_resp(g, from, w);
        break;
    case WIRE_READ_REQ:
        on_read_req(g, from, w);
        break;
    case WIRE_READ_RESP:
        on_read_resp(g, from, w);
        break;
    case WIRE_REPAIR_REQ:
        on_repair_req(g, from, w);
        break;
    case WIRE_REPAIR_RESP:
        on_repair_resp(g, from, w);
        break;
    case WIRE_TRANSFER:
        if (is_leader(g) && w->size != g->self) {
            mk_log(MK_INFO, "%s: leadership to node %" PRIu32 ", as node %" PRIu32 " asked",
                   gname(g), w->size, from);
            g->prefer_ms = sys_now_ms(); /* the preferred leader waits its turn */
            replica_transfer(g->rep, w->size);
            after_replica(g);
        }
        break;
    case WIRE_QUIESCE:
        if (!g->rep) {
            /* A leader's state, for a node without a replica. */
            if (w->term >= g->leader_term) {
                g->leader_term = w->term;
                g->leader_hint = from;
                g->isr_mask = w->size;
                if (w->commit > g->p->commit_off)
                    g->p->commit_off = w->commit;
            }
        } else {
            struct raft *r = replica_raft(g->rep);
            if (raft_role(r) == RAFT_FOLLOWER && raft_leader(r) == from &&
                raft_term(r) == w->term && raft_commit(r) == w->commit &&
                raft_last_index(r) == w->commit && !g->wh) {
                g->quiet = true;
                g->isr_mask = w->size;
            }
        }
        break;
    default:
        break;
    }
}

void pgroup_peer(struct pgroup *g, uint32_t id, bool up)
{
    if (!up && g->leader_hint == id)
        g->leader_hint = 0;
    /* A preferred leader that just came back gets PREFER_MS to settle
     * (find and repair damage, catch up) before leadership moves to it. */
    if (up && g->nrep && id == g->replicas[0] && g->prefer_ms)
        g->prefer_ms = sys_now_ms();
    for (struct pwrite *w = g->wh; w && !up; w = w->next)
        if (w->state == PW_SENT && w->sent_to == id)
            w->state = PW_WAIT; /* its answer will not come: the next leader */
    if (!g->rep)
        return;
    if (!is_replica(g, id)) {
        if (up && is_leader(g))
            tell_state(g, id, false); /* a node without a replica learns the leader */
        return;
    }
    /* Down: its followers must elect, and a leader must check its quorum.
     * Up: a leader heartbeats it. */
    if (!up || is_leader(g))
        wake(g);
}

bool pgroup_rebuilding(const struct pgroup *g)
{
    return g->rep && raft_rebuilding(replica_raft(g->rep));
}

bool pgroup_local(const struct pgroup *g)
{
    return g->rep != NULL;
}

uint32_t pgroup_leader(const struct pgroup *g)
{
    return leader_of(g);
}

int pgroup_commit_point(const struct pgroup *g, uint64_t *off)
{
    if (!is_leader(g))
        return RAFT_ENOTLEADER;
    *off = g->p->commit_off;
    return 0;
}

struct part *pgroup_part(const struct pgroup *g)
{
    return g->p;
}

bool pgroup_quiet(const struct pgroup *g)
{
    return g->quiet;
}

static uint32_t isr_now(const struct pgroup *g)
{
    if (!g->rep)
        return g->isr_mask;
    if (!is_leader(g))
        return g->isr_mask;
    struct raft *r = replica_raft(g->rep);
    uint32_t mask = 0;
    for (uint32_t i = 0; i < g->nrep; i++) {
        uint64_t match = 0;
        if (g->replicas[i] == g->self)
            mask |= 1u << i;
        else if (raft_match(r, g->replicas[i], &match) == 0 && match >= raft_commit(r) &&
                 cluster_connected(g->c, g->replicas[i]))
            mask |= 1u << i;
    }
    return mask;
}

/* Whether a leader has nothing left to do: every follower has every entry,
 * all committed, nothing waits. */
static bool leader_idle(const struct pgroup *g)
{
    struct raft *r = replica_raft(g->rep);
    uint64_t last = raft_last_index(r);
    if (g->wh || g->fh || raft_commit(r) != last)
        return false;
    for (uint32_t i = 0; i < g->nrep; i++) {
        uint64_t match = 0;
        if (g->replicas[i] != g->self &&
            (raft_match(r, g->replicas[i], &match) < 0 || match != last))
            return false;
    }
    return true;
}

static void probe_done(void *arg, int status, const void *data, size_t n, uint64_t end)
{
    (void)arg;
    (void)status;
    (void)data;
    (void)n;
    (void)end;
}

void pgroup_tick(struct pgroup *g, int64_t now)
{
    for (struct pwrite *w = g->wh; w;) {
        struct pwrite *next = w->next;
        if (now >= w->deadline_ms) {
            pw_finish(g, w, w->fail ? w->fail : -ETIMEDOUT);
            next = g->wh;
        } else if (w->state == PW_WAIT || now - w->sent_ms >= RESEND_MS ||
                   (w->state == PW_SENT && leader_of(g) && leader_of(g) != w->sent_to)) {
            pw_try(g, w, now); /* again, or to the new leader at once */
        }
        w = next;
    }
    if (g->reads)
        reads_tick(g, now);
    if (!g->rep && !g->leader_hint && !g->reads && now - g->probe_ms >= 1000) {
        /* A node without a replica that knows no leader (it was down when
         * the partition was made, and a quiet leader says nothing) asks:
         * an empty read finds the leader. */
        g->probe_ms = now;
        pgroup_read(g, 0, 0, probe_done, NULL);
    }
    if (!g->rep || g->quiet)
        return;
    replica_tick(g->rep);
    after_replica(g);
    /* The preferred leader (the first replica) gets leadership back once it
     * is connected and has everything (Kafka's auto leader rebalance). */
    if (is_leader(g) && g->replicas[0] != g->self) {
        uint64_t match = 0;
        struct raft *r = replica_raft(g->rep);
        if (!g->prefer_ms) {
            g->prefer_ms = now;
        } else if (now - g->prefer_ms >= PREFER_MS) {
            g->prefer_ms = now;
            if (cluster_connected(g->c, g->replicas[0]) &&
                raft_match(r, g->replicas[0], &match) == 0 && match == raft_last_index(r) &&
                replica_transfer(g->rep, g->replicas[0]) == 0) {
                mk_log(MK_INFO, "%s: leadership to node %" PRIu32 ", the preferred leader",
                       gname(g), g->replicas[0]);
                after_replica(g);
                return;
            }
        }
    } else {
        g->prefer_ms = 0;
    }
    bool preferred_waits = g->replicas[0] != g->self && cluster_connected(g->c, g->replicas[0]);
    if (is_leader(g) && leader_idle(g) && !preferred_waits) {
        if (++g->idle >= IDLE_TICKS) {
            tell_state(g, 0, true);
            g->quiet = true;
        }
    } else {
        g->idle = 0;
    }
}

/* ------------------------------------------------------------ remote reads */

static void pr_send(struct pgroup *g, struct pread *r, int64_t now)
{
    r->sent_ms = now;
    struct wire_call call = {
        .kind = WIRE_READ_REQ, .req = r->req, .group = g->id, .off = r->pos, .size = r->size};
    cluster_send_call(g->c, ask_whom(g), &call); /* lost: sent again */
}

int pgroup_read(struct pgroup *g, uint64_t pos, size_t size, pgroup_read_cb cb, void *arg)
{
    struct pread *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int64_t now = sys_now_ms();
    r->req = cluster_next_req(g->c);
    r->pos = pos;
    r->size = size > WIRE_READ_MAX ? WIRE_READ_MAX : (uint32_t)size;
    r->cb = cb;
    r->arg = arg;
    r->deadline_ms = now + g->p->b->cfg.request_timeout_ms;
    r->next = g->reads;
    g->reads = r;
    pr_send(g, r, now);
    return 0;
}

static void pr_finish(struct pgroup *g, struct pread *r, int status, const void *data, size_t n,
                      uint64_t end)
{
    for (struct pread **at = &g->reads; *at; at = &(*at)->next)
        if (*at == r) {
            *at = r->next;
            break;
        }
    r->cb(r->arg, status, data, n, end);
    free(r);
}

static void reads_tick(struct pgroup *g, int64_t now)
{
    for (struct pread *r = g->reads; r;) {
        struct pread *next = r->next;
        if (now >= r->deadline_ms) {
            pr_finish(g, r, -ETIMEDOUT, NULL, 0, 0);
            next = g->reads;
        } else if (now - r->sent_ms >= RESEND_MS / 4) {
            pr_send(g, r, now);
        }
        r = next;
    }
}

/* At the leader: the committed bytes at [pos, pos + size). */
static void on_read_req(struct pgroup *g, uint32_t from, const struct wire_call *w)
{
    struct part *p = g->p;
    struct wire_call resp = {.kind = WIRE_READ_RESP, .req = w->req, .group = g->id};
    uint8_t *buf = NULL;
    if (!is_leader(g) || !p->t) {
        resp.status = p->t ? RAFT_ENOTLEADER : -ENOENT;
        resp.off = leader_of(g); /* a hint */
    } else if (w->off < plog_first_pos(&p->log) && w->size > 0) {
        resp.status = -ENODATA; /* below the log start: off says where it is */
        resp.off = plog_first_pos(&p->log);
    } else {
        uint64_t end = p->commit_pos, bad;
        size_t want = w->off >= end ? 0 : end - w->off < w->size ? (size_t)(end - w->off) : w->size;
        resp.off = end;
        int vrc = want ? plog_verify(&p->log, w->off, want, &bad) : 0;
        if (vrc < 0) {
            if (vrc == -EBADMSG)
                part_damaged(p, bad);
            resp.status = -EIO;
            want = 0;
        }
        if (want && !(buf = malloc(want))) {
            resp.status = -ENOMEM;
            want = 0;
        }
        size_t got = 0;
        while (got < want) {
            int fd;
            uint64_t fdoff;
            size_t n;
            int rc = plog_locate(&p->log, w->off + got, want - got, &fd, &fdoff, &n);
            if (rc == 0 && n > 0)
                rc = sys_pread_all(fd, buf + got, n, (off_t)fdoff);
            if (rc < 0 || n == 0) {
                if (got == 0)
                    resp.status = rc < 0 ? rc : -EIO;
                break;
            }
            got += n;
        }
        resp.data = buf;
        resp.data_len = resp.status < 0 ? 0 : got;
    }
    cluster_send_call(g->c, from, &resp);
    free(buf);
}

static void on_read_resp(struct pgroup *g, uint32_t from, const struct wire_call *w)
{
    struct pread *r = g->reads;
    while (r && r->req != w->req)
        r = r->next;
    if (!r)
        return;
    if (w->status == 0 && !g->rep)
        g->leader_hint = from; /* only the leader serves reads */
    if (w->status == RAFT_ENOTLEADER) {
        if (w->off && w->off <= UINT32_MAX && w->off != g->self)
            g->leader_hint = (uint32_t)w->off;
        return; /* sent again to the leader at the next tick */
    }
    if (w->status == 0 && w->off > g->p->commit_pos)
        g->p->commit_pos = w->off; /* st_size on this node */
    pr_finish(g, r, w->status, w->data, w->data_len, w->off);
}

/* The leader's part of retention and segment rolls, once a second: a ROLL
 * when its active segment is full or old, a TRIM when segments are due. */
void pgroup_housekeep(struct pgroup *g, int64_t now)
{
    struct part *p = g->p;
    if (!is_leader(g) || !p->t)
        return;
    const struct mk_config *cfg = &p->b->cfg;
    const struct topic_config *tc = &p->t->conf;
    struct segment *a = plog_active(&p->log);
    uint64_t off, term;
    if (a->count > 0 && now - g->roll_ms >= 1000 &&
        (a->bytes >= (uint64_t)topic_config_get(tc, cfg, TOPIC_SEGMENT_BYTES) ||
         now - a->first_ts >= topic_config_get(tc, cfg, TOPIC_SEGMENT_MS))) {
        if (replica_propose_control(g->rep, REPLICA_CTL_ROLL, 0, &off, &term) == 0) {
            g->roll_ms = now;
            wake(g);
        }
    }
    uint64_t to = plog_retain_point(&p->log, now, topic_config_get(tc, cfg, TOPIC_RETENTION_MS),
                                    topic_config_get(tc, cfg, TOPIC_RETENTION_BYTES), p->commit_off);
    if (to > plog_first_off(&p->log) && to > g->trim_asked &&
        replica_propose_control(g->rep, REPLICA_CTL_TRIM, to, &off, &term) == 0) {
        g->trim_asked = to;
        wake(g);
    }
    after_replica(g);
}

/* ------------------------------------------------------------ status */

void pgroup_info(const struct pgroup *g, struct part_info *o)
{
    o->leader = leader_of(g);
    if (g->rep)
        o->term = raft_term(replica_raft(g->rep));
}

void pgroup_list(const struct pgroup *g, char which, char *buf, size_t n)
{
    uint32_t mask = which == 'i' ? isr_now(g) : UINT32_MAX;
    size_t at = 0;
    buf[0] = '\0';
    for (uint32_t i = 0; i < g->nrep && at < n; i++)
        if (mask & (1u << i))
            at += (size_t)snprintf(buf + at, n - at, "%s%" PRIu32, at ? "," : "", g->replicas[i]);
}

void pgroup_status(const struct pgroup *g, FILE *f)
{
    char reps[200], isr[200];
    pgroup_list(g, 'r', reps, sizeof(reps));
    pgroup_list(g, 'i', isr, sizeof(isr));
    fprintf(f, " replicas=%s isr=%s", reps, isr);
    if (!g->rep) {
        fprintf(f, " role=none leader.hint=%" PRIu32 "\n", g->leader_hint);
        return;
    }
    struct raft *r = replica_raft(g->rep);
    fprintf(f, " role=%s commit=%" PRIu64 " quiet=%d lag=", raft_role_name(raft_role(r)),
            g->p->commit_off, g->quiet ? 1 : 0);
    bool any = false;
    if (is_leader(g)) {
        for (uint32_t i = 0; i < g->nrep; i++) {
            uint64_t match = 0;
            if (g->replicas[i] == g->self || raft_match(r, g->replicas[i], &match) < 0)
                continue;
            fprintf(f, "%s%" PRIu32 ":%" PRIu64, any ? "," : "", g->replicas[i],
                    raft_last_index(r) - match);
            any = true;
        }
    }
    fputs(any ? "\n" : "-\n", f);
}

/* ------------------------------------------------------------ repair
 *
 * A replica whose committed entries fail their checks (bit rot, a file cut
 * or overwritten while the node was down) asks another replica for them:
 * REPAIR_REQ names the first damaged offset; the other replica checks its
 * own copy and answers with the entries' index fields, side data and
 * bytes (REPAIR_RESP); this one rewrites them in place at the positions
 * its own chain gives (entries are immutable and the same on every
 * replica: nothing moves), syncs, and checks them again.  One request per
 * group at a time; unanswered after REPAIR_MS, or refused, the next
 * replica is asked.  Only committed entries are repaired: the rest Raft
 * itself replaces. */

static void on_damaged(void *ctx, uint64_t off)
{
    struct pgroup *g = ctx;
    part_damaged(g->p, off);
}

void pgroup_repair(struct pgroup *g, uint64_t off)
{
    struct part *p = g->p;
    int64_t now = sys_now_ms();
    if (!g->rep || !p->t || off >= p->commit_off || g->nrep < 2)
        return;
    if (g->repair_off && now - g->repair_ms < REPAIR_MS)
        return;
    struct segment *s = plog_segment_of(&p->log, off);
    if (!s)
        return;
    /* From the first damaged entry after the checked prefix: the chain of
     * positions is known good up to there. */
    uint64_t i = off - s->base_off, b;
    if (i > s->vcount && seg_verify(s, s->vcount, i, &b) == -EBADMSG)
        i = b;
    if (i != s->vcount)
        return; /* an I/O error below: nothing to build on */
    off = s->base_off + i;
    uint64_t n = s->count - i;
    if (n > p->commit_off - off)
        n = p->commit_off - off;
    if (n > WIRE_REPAIR_MAX)
        n = WIRE_REPAIR_MAX;
    for (uint32_t k = 0; k < g->nrep; k++) {
        uint32_t id = g->replicas[(g->repair_rr + k) % g->nrep];
        if (id == g->self || !cluster_connected(g->c, id))
            continue;
        g->repair_rr = (g->repair_rr + k + 1) % g->nrep;
        struct wire_call w = {.kind = WIRE_REPAIR_REQ,
                              .req = cluster_next_req(g->c),
                              .group = g->id,
                              .off = off,
                              .n = (uint32_t)n};
        if (cluster_send_call(g->c, id, &w) == 0) {
            g->repair_off = off + 1;
            g->repair_req = w.req;
            g->repair_ms = now;
            mk_log(MK_WARN, "%s: asking node %" PRIu32 " for entries %" PRIu64 "..%" PRIu64,
                   gname(g), id, off, off + n - 1);
        }
        return;
    }
}

/* Another replica's damaged entries: our good copy, if we have it. */
static void on_repair_req(struct pgroup *g, uint32_t from, const struct wire_call *w)
{
    struct part *p = g->p;
    struct wire_call resp = {
        .kind = WIRE_REPAIR_RESP, .req = w->req, .group = g->id, .off = w->off};
    uint8_t *buf = NULL;
    uint64_t bad;
    int rc = 0;
    if (!g->rep || !p->t)
        rc = -ENOENT;
    else if (w->off < plog_first_off(&p->log) || w->off + w->n > p->commit_off)
        rc = -ERANGE;
    else if ((rc = plog_verify_off(&p->log, w->off, w->off + w->n, &bad)) == -EBADMSG)
        part_damaged(p, bad); /* ours too: the requester asks another */
    size_t need = 0;
    for (uint64_t o = w->off; rc == 0 && o < w->off + w->n; o++) {
        struct seg_entry e;
        if ((rc = plog_entry(&p->log, o, &e)) == 0)
            need += WIRE_REPAIR_ENTRY_HDR + e.aux_len + e.len;
    }
    if (rc == 0 && need > WIRE_MAX_BODY - 64)
        rc = -EMSGSIZE;
    if (rc == 0 && !(buf = malloc(need ? need : 1)))
        rc = -ENOMEM;
    size_t at = 0;
    for (uint64_t o = w->off; rc == 0 && o < w->off + w->n; o++) {
        struct seg_entry e;
        int fd;
        uint64_t fdoff;
        size_t got;
        if ((rc = plog_entry(&p->log, o, &e)) < 0)
            break;
        struct wire_repair_entry re = {
            .ts = e.ts, .flags = e.flags, .len = e.len, .aux_len = e.aux_len};
        uint8_t *q = buf + at;
        /* Header, then side data and bytes read straight into place. */
        wire_repair_put(q, &re);
        if ((rc = plog_read_aux(&p->log, o, &e, q + WIRE_REPAIR_ENTRY_HDR)) < 0)
            break;
        if (e.len &&
            ((rc = plog_locate(&p->log, e.pos, e.len, &fd, &fdoff, &got)) < 0 || got != e.len ||
             (rc = sys_pread_all(fd, q + WIRE_REPAIR_ENTRY_HDR + e.aux_len, e.len, (off_t)fdoff)) < 0)) {
            rc = rc < 0 ? rc : -EIO;
            break;
        }
        at += wire_repair_size(&re);
    }
    resp.status = rc < 0 ? rc : 0;
    resp.n = rc < 0 ? 0 : w->n;
    resp.data = rc < 0 ? NULL : buf;
    resp.data_len = rc < 0 ? 0 : at;
    cluster_send_call(g->c, from, &resp);
    free(buf);
}

/* Our damaged entries from another replica: rewritten in place. */
static void on_repair_resp(struct pgroup *g, uint32_t from, const struct wire_call *w)
{
    struct part *p = g->p;
    if (!g->repair_off || w->req != g->repair_req || !g->rep)
        return;
    g->repair_off = 0;
    if (w->status < 0) {
        mk_log(MK_WARN, "%s: node %" PRIu32 " cannot give entries from %" PRIu64 ": %s", gname(g),
               from, w->off, strerror(-w->status));
        g->repair_ms = 0; /* the next one may be asked at once */
        return;
    }
    struct segment *s = plog_segment_of(&p->log, w->off);
    if (!s || w->off - s->base_off != s->vcount || w->off + w->n > s->base_off + s->count) {
        /* Moved on meanwhile (repaired, trimmed, truncated): asked again
         * by the next read that finds damage. */
        return;
    }
    /* The chain of positions from the checked prefix on. */
    uint64_t pos = s->vend, aux = s->vaux, i = s->vcount;
    size_t at = 0;
    struct wire_repair_entry re;
    int rc = 0;
    struct seg_entry es[WIRE_REPAIR_MAX];
    const uint8_t *recs[WIRE_REPAIR_MAX], *auxs[WIRE_REPAIR_MAX];
    uint32_t k = 0;
    while (k < w->n && (rc = wire_repair_next(w->data, w->data_len, &at, &re)) == 0) {
        uint32_t kind = re.flags & SEG_KIND_MASK;
        bool record = kind == SEG_RECORD;
        if ((re.flags & ~(SEG_KIND_MASK | SEG_FLAG_AUX)) || (record ? re.len == 0 : re.len != 0) ||
            !(re.flags & SEG_FLAG_AUX) != !re.aux_len || (record && re.rec[re.len - 1] != '\n')) {
            rc = -EBADMSG;
            break;
        }
        es[k] = (struct seg_entry){.pos = pos, .ts = re.ts, .len = re.len, .flags = re.flags,
                                   .aux_off = aux, .aux_len = re.aux_len};
        recs[k] = re.rec;
        auxs[k] = re.aux;
        pos += re.len;
        aux += re.aux_len;
        k++;
    }
    /* A sealed segment's copy must end where the next segment begins (an
     * entry after the copy that does not line up is checked, and repaired,
     * on its own). */
    if (rc == 0 && k != w->n)
        rc = -EBADMSG;
    if (rc == 0 && i + k == s->count && s != plog_active(&p->log) &&
        pos != s->base_pos + s->bytes)
        rc = -EBADMSG;
    for (uint32_t j = 0; rc == 0 && j < k; j++)
        rc = seg_repair(s, i + j, &es[j], recs[j], auxs[j]);
    if (rc == 0 && (rc = seg_sync(s, true)) == 0) {
        uint64_t b;
        rc = seg_verify(s, i, i + k, &b);
    }
    if (rc < 0) {
        mk_log(MK_ERROR, "%s: repair of entries %" PRIu64 "..%" PRIu64 " from node %" PRIu32 " failed: %s",
               gname(g), w->off, w->off + k - 1, from, strerror(-rc));
        g->repair_ms = 0;
        return;
    }
    g->repaired += k;
    p->damage_last = 0;
    s->vbad = false;
    mk_log(MK_WARN, "%s: entries %" PRIu64 "..%" PRIu64 " repaired from node %" PRIu32, gname(g),
           w->off, w->off + k - 1, from);
}

uint64_t pgroup_repaired(const struct pgroup *g)
{
    return g->repaired;
}

int pgroup_transfer(struct pgroup *g, uint32_t to)
{
    bool replica = false;
    for (uint32_t i = 0; i < g->nrep; i++)
        replica |= g->replicas[i] == to;
    if (!replica)
        return -EINVAL;
    uint32_t l = leader_of(g);
    if (!l)
        return -EAGAIN; /* no leader known now: ask again */
    if (l == to)
        return 0;
    struct wire_call w = {.kind = WIRE_TRANSFER, .req = cluster_next_req(g->c), .group = g->id,
                          .size = to};
    if (l == g->self) {
        pgroup_call(g, g->self, &w);
        return 0;
    }
    return cluster_send_call(g->c, l, &w) == 0 ? 0 : -EAGAIN;
}

bool pgroup_leader_elsewhere(const struct pgroup *g)
{
    /* Unknown yet (just started) counts: the read waits for one. */
    return g->nrep > 1 && !is_leader(g);
}

/* ------------------------------------------------------------ life */

#define COMMIT_FILE  "commit"
#define REBUILT_FILE "rebuilt" /* a rebuilding replica caught up (cluster.h) */

static void on_rebuilt(void *ctx)
{
    struct pgroup *g = ctx;
    int rc = sys_write_atomic(g->p->log.dir, REBUILT_FILE, "", 0);
    mk_log(MK_INFO, "%s: rebuilt replica caught up, votes again%s", gname(g),
           rc < 0 ? " (marker not saved)" : "");
}

void pgroup_save_commit(struct pgroup *g)
{
    struct part *p = g->p;
    if (!g->rep || p->commit_off == g->saved_commit)
        return;
    if (sys_write_number(p->log.dir, COMMIT_FILE, p->commit_off) == 0)
        g->saved_commit = p->commit_off;
}

int pgroup_open(struct cluster *c, struct part *p)
{
    struct topic *t = p->t;
    struct broker *b = p->b;
    struct pgroup *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->c = c;
    g->p = p;
    g->id = PGROUP_ID(t->id, p->id);
    g->self = b->cfg.node_id;
    g->next_seq = 1;
    g->nrep = t->rf;
    memcpy(g->replicas, t->replicas + (size_t)p->id * t->rf, t->rf * sizeof(uint32_t));
    int rc;
    if (p->local) {
        /* What was committed before a restart shows at once; the rest
         * once the leader says so. */
        uint64_t saved = sys_read_number(p->log.dir, COMMIT_FILE);
        /* Committed entries this replica no longer holds (a file cut or
         * damaged while it was down, which recovery cut off): it must not
         * vote before it has them again, or it could elect a leader
         * without them.  So it rebuilds, as a wiped node does. */
        bool lost = saved > plog_next_off(&p->log);
        if (lost)
            mk_log(MK_WARN,
                   "%s/%" PRIu32 ": holds entries up to %" PRIu64 " but had %" PRIu64
                   " committed: rebuilding from the others, without a vote",
                   t->name, p->id, plog_next_off(&p->log), saved);
        if (saved > plog_next_off(&p->log))
            saved = plog_next_off(&p->log);
        if (saved < plog_first_off(&p->log))
            saved = plog_first_off(&p->log);
        struct seg_entry e;
        p->commit_off = saved;
        p->commit_pos = saved > plog_first_off(&p->log) && plog_entry(&p->log, saved - 1, &e) == 0
                            ? e.pos + e.len
                            : plog_first_pos(&p->log);
        g->saved_commit = saved;
        prodtab_init(&g->prod, plog_next_off(&p->log));
        /* TRIM entries past the saved commit may be committed before the
         * crash and not applied yet: applied once the commit passes them. */
        for (uint64_t o = saved; o < plog_next_off(&p->log); o++) {
            uint8_t ctl[REPLICA_CTL_LEN];
            if (plog_entry(&p->log, o, &e) == 0 && seg_kind_of(&e) == SEG_CONTROL &&
                e.aux_len == REPLICA_CTL_LEN && plog_read_aux(&p->log, o, &e, ctl) == 0)
                on_control(g, o, plog_term_at(&p->log, o), ctl[0], le_get64(ctl + 1));
        }
        struct raft_conf conf = {.n = 0};
        for (uint32_t i = 0; i < g->nrep; i++)
            conf.servers[conf.n++] = (struct raft_server){.id = g->replicas[i], .voter = true};
        const struct mk_config *cfg = &b->cfg;
        struct replica_options ro = {
            .id = g->self,
            .conf = &conf,
            .election_ticks = CLUSTER_ELECTION_TICK,
            .heartbeat_ticks = 1,
            .seed = g->id ^ ((uint64_t)g->self << 48) ^ uv_hrtime(),
            /* Segments roll at ROLL entries only (pgroup_housekeep), so
             * that every replica has the same ones. */
            .segment_bytes = INT64_MAX,
            .segment_ms = INT64_MAX / 2,
            .max_record = cfg->message_max_bytes + 1 + AUX_PRODUCER_LEN,
            .no_sync = cfg->fsync == MK_FSYNC_NEVER};
        /* A lone replica has nobody to catch up from. */
        ro.rebuilding = g->nrep > 1 && ((cluster_rebuilding(c) &&
                                         !sys_exists_in(p->log.dir, REBUILT_FILE)) ||
                                        lost);
        struct replica_io io = {.ctx = g,
                                .send = on_send,
                                .committed = on_committed,
                                .appended = on_appended,
                                .control = on_control,
                                .rebuilt = on_rebuilt,
                                .settled = on_settled,
                                .damaged = on_damaged};
        if ((rc = replica_open(&g->rep, cluster_loop(c), &p->log, &ro, &io)) < 0) {
            free(g);
            return rc;
        }
    } else {
        p->commit_off = p->commit_pos = 0;
    }
    if ((rc = cluster_group_add(c, g->id, g)) < 0) {
        if (g->rep)
            replica_close(g->rep);
        free(g);
        return rc;
    }
    p->g = g;
    return 0;
}

void pgroup_close(struct part *p, int status)
{
    struct pgroup *g = p->g;
    if (!g)
        return;
    cluster_group_del(g->c, g->id);
    while (g->wh)
        pw_finish(g, g->wh, status);
    while (g->reads)
        pr_finish(g, g->reads, status, NULL, 0, 0);
    while (g->trims) {
        struct trim *t = g->trims;
        g->trims = t->next;
        free(t);
    }
    while (g->fh) {
        struct fwd_in *f = g->fh;
        g->fh = f->next;
        free(f);
    }
    pgroup_save_commit(g);
    if (g->rep)
        replica_close(g->rep);
    p->g = NULL;
    free(g);
}
