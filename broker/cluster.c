/*
 * cluster — see cluster.h.
 */
#include "broker/cluster.h"
#include "broker/internal.h"
#include "broker/le.h"
#include "broker/log.h"
#include "broker/metadata.h"
#include "broker/net/netport.h"
#include "broker/pgroup.h"
#include "broker/plog.h"
#include "broker/record.h"
#include "broker/replica.h"
#include "broker/sysio.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define META_GROUP 0

/* A local proposal waiting for its record to be applied here. */
struct meta_waiter {
    uint64_t off, term;
    cluster_done_cb cb;
    void *arg;
    struct meta_waiter *next;
};

/* A metadata operation of this node, until it is applied here. */
enum msub_state { MS_WAIT, MS_SENT, MS_LOCAL, MS_APPLY };
struct msub {
    struct cluster *c;
    uint64_t req;
    char *line;
    size_t len;
    enum msub_state state;
    int64_t sent_ms, deadline_ms;
    uint64_t wait_off; /* MS_APPLY: answered once applied passes it */
    int status;
    cluster_done_cb cb;
    void *arg;
    struct msub *next;
};

/* At the leader: the last requests forwarded by other nodes, so that one
 * sent again (its answer was lost) is answered, not applied twice. */
#define RECENT_MAX 64
struct recent {
    uint32_t from;
    uint64_t req, off;
    int status;
    bool done;
};

struct gent {
    uint64_t id;
    struct pgroup *g;
};

/* A ReadIndex of this node: answered once the local commit (or applied)
 * point reaches the leader's. */
struct csync {
    uint64_t req, group, wait_off;
    bool answered;
    int64_t deadline_ms;
    cluster_done_cb cb;
    void *arg;
    struct csync *next;
};

struct cluster {
    struct broker *b;
    struct netport *net;
    char info[WIRE_INFO_MAX + 1];               /* what this node tells peers (WIRE_INFO) */
    char peer_info[MK_MAX_PEERS][WIRE_INFO_MAX + 1]; /* what each peer told, by cfg.peers index */
    struct plog mlog;
    struct replica *meta;
    uint64_t meta_commit_off;
    uint64_t meta_leader_seen;   /* to log leadership changes once */
    uint64_t applied;            /* records below this offset are applied here */
    struct meta_waiter *waiters; /* ascending offsets */
    uint32_t nodes[MK_MAX_PEERS];
    size_t nnodes;
    uv_timer_t tick;
    bool closing;
    uint64_t producer; /* this daemon's producer id: random at each start */
    uint64_t next_req;
    struct gent *groups; /* sorted by id */
    size_t ngroups, gcap;
    struct msub *subs;
    struct recent recent[RECENT_MAX];
    unsigned recent_at;
    uint64_t unroutable;
    bool subs_dirty;
    uv_loop_t *loop;
    uint64_t cluster_id;
    bool hold;       /* a new data dir: the metadata group waits for the peers */
    unsigned hellos; /* handshakes while holding */
    bool rebuild;    /* this data dir replaces a wiped one (DATA/rebuild) */
    int64_t rebuild_check_ms;
    struct csync *syncs;
};

static void msubs_check(struct cluster *c);
static uint64_t on_port_known(void *ctx, uint32_t id);
static void on_port_hello(void *ctx, uint32_t id, uint64_t inc, uint64_t knew_us);
static void meta_rebuilt(void *ctx);
static void rebuild_check(struct cluster *c, int64_t now);
#define REBUILT_FILE "rebuilt"
static void syncs_check(struct cluster *c, int64_t now);

/* ------------------------------------------------------------ plumbing */

static struct gent *group_find(const struct cluster *c, uint64_t id)
{
    size_t lo = 0, hi = c->ngroups;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->groups[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->ngroups && c->groups[lo].id == id ? &c->groups[lo] : NULL;
}

int cluster_group_add(struct cluster *c, uint64_t id, struct pgroup *g)
{
    if (group_find(c, id))
        return -EEXIST;
    if (c->ngroups == c->gcap) {
        size_t nc = c->gcap ? 2 * c->gcap : 64;
        struct gent *ng = realloc(c->groups, nc * sizeof(*ng));
        if (!ng)
            return -ENOMEM;
        c->groups = ng;
        c->gcap = nc;
    }
    size_t i = c->ngroups;
    while (i > 0 && c->groups[i - 1].id > id) {
        c->groups[i] = c->groups[i - 1];
        i--;
    }
    c->groups[i] = (struct gent){.id = id, .g = g};
    c->ngroups++;
    return 0;
}

void cluster_group_del(struct cluster *c, uint64_t id)
{
    struct gent *e = group_find(c, id);
    if (!e)
        return;
    size_t i = (size_t)(e - c->groups);
    memmove(e, e + 1, (c->ngroups - i - 1) * sizeof(*e));
    c->ngroups--;
}

int cluster_send_raft(struct cluster *c, uint32_t to, uint64_t group, const struct raft_msg *m)
{
    return c->net ? netport_send_raft(c->net, to, group, m) : -ENOTCONN;
}

int cluster_send_call(struct cluster *c, uint32_t to, const struct wire_call *w)
{
    return c->net ? netport_send_call(c->net, to, w) : -ENOTCONN;
}

bool cluster_connected(const struct cluster *c, uint32_t id)
{
    return c->net && netport_connected(c->net, id);
}

uint64_t cluster_producer(const struct cluster *c)
{
    return c->producer;
}

uint64_t cluster_next_req(struct cluster *c)
{
    return ++c->next_req;
}

const uint32_t *cluster_nodes(const struct cluster *c, size_t *n)
{
    *n = c->nnodes;
    return c->nodes;
}

uv_loop_t *cluster_loop(const struct cluster *c)
{
    return c->b->loop;
}

static void on_port_raft(void *ctx, uint32_t from, uint64_t group, const struct raft_msg *m)
{
    struct cluster *c = ctx;
    if (c->closing || !c->meta)
        return;
    if (group != META_GROUP) {
        struct gent *e = group_find(c, group);
        if (e)
            pgroup_step(e->g, from, m);
        else
            c->unroutable++; /* a topic not applied here yet: Raft resends */
        if (c->syncs)
            syncs_check(c, sys_now_ms());
        return;
    }
    int rc = replica_step(c->meta, m);
    if (rc < 0 && rc != RAFT_ENOTLEADER)
        mk_log(MK_WARN, "metadata group: message from node %" PRIu32 " refused: %s", from,
               strerror(-rc));
    if (c->subs_dirty)
        msubs_check(c);
    if (c->syncs)
        syncs_check(c, sys_now_ms());
}

static void meta_send(void *ctx, uint64_t to, const struct raft_msg *m)
{
    struct cluster *c = ctx;
    if (c->net && to <= UINT32_MAX)
        netport_send_raft(c->net, (uint32_t)to, META_GROUP, m); /* lost: Raft resends */
}

/* ------------------------------------------------------------ applying */

static uint64_t view_find(void *ctx, const char *name)
{
    struct topic *t = topic_find(ctx, name);
    return t ? topic_id(t) : 0;
}

static uint32_t view_partitions(void *ctx, uint64_t id)
{
    struct topic *t = topic_by_id(ctx, id);
    return t ? topic_partitions(t) : 0;
}

/* Applies record `off` (op) to the registry: the rules first, the same on
 * every node; then the change. */
static int apply_op(struct cluster *c, uint64_t off, const struct meta_op *op)
{
    struct broker *b = c->b;
    struct topic *t = op->kind == META_ROOT ? NULL : topic_find(b, op->topic);
    uint64_t id = op->kind == META_CREATE ? off + 1 : op->id;
    /* No special case for records applied before a crash: replaying the
     * suffix since the saved applied offset, in order, under the same rules,
     * ends in the same registry (a create finds its topic and is EEXIST, a
     * delete finds none and is ENOENT, a setting is set again); only the
     * answers differ, and nobody waits for a replayed record. */
    struct meta_view v = {.ctx = b, .find = view_find, .partitions = view_partitions};
    int rc = meta_check(&v, op, c->nodes, c->nnodes);
    if (rc < 0)
        return rc;
    struct mk_owner own = {.uid = op->uid, .gid = op->gid, .mode = op->mode};
    switch (op->kind) {
    case META_CREATE:
        return topic_create_as(b, op->topic, id, &own, op->partitions, op->rf, op->replicas,
                               NULL);
    case META_DELETE:
        return topic_delete(b, op->topic);
    case META_GROW:
        if (op->rf != t->rf)
            return -EINVAL;
        return topic_grow_as(b, t, op->partitions, op->replicas);
    case META_SET:
        return topic_set(b, t, op->key, op->value);
    case META_UNSET:
        return topic_unset(b, t, op->key);
    case META_OWNER:
        return topic_set_owner(b, t, &own);
    case META_ROOT:
        return broker_set_root_owner(b, &own);
    }
    return -EINVAL;
}

/* The record at offset off: its bytes (a line) into *buf (malloc'ed), or
 * *len = 0 for an entry that is not a record (a NOOP). */
static int read_record(struct cluster *c, uint64_t off, char **buf, size_t *len)
{
    struct seg_entry e;
    int rc = plog_entry(&c->mlog, off, &e);
    if (rc < 0)
        return rc;
    *len = 0;
    if (seg_kind_of(&e) != SEG_RECORD)
        return 0;
    int fd;
    uint64_t fdoff;
    size_t n;
    if ((rc = plog_locate(&c->mlog, e.pos, e.len, &fd, &fdoff, &n)) < 0 || n != e.len)
        return rc < 0 ? rc : -EIO;
    if (!(*buf = malloc(e.len)))
        return -ENOMEM;
    if ((rc = sys_pread_all(fd, *buf, e.len, (off_t)fdoff)) < 0) {
        free(*buf);
        return rc;
    }
    *len = e.len;
    return 0;
}

static void answer_waiters(struct cluster *c, uint64_t off, int status)
{
    while (c->waiters && c->waiters->off <= off) {
        struct meta_waiter *w = c->waiters;
        c->waiters = w->next;
        int st = w->off == off && plog_term_at(&c->mlog, off) == w->term ? status : -EAGAIN;
        if (w->off < off) /* jumped over (a reset): not known */
            st = -EAGAIN;
        w->cb(w->arg, st);
        free(w);
    }
}

static void save_applied(struct cluster *c)
{
    int rc = sys_write_number(c->mlog.dir, "applied", c->applied);
    if (rc < 0)
        mk_log(MK_WARN, "metadata group: saving the applied offset: %s", strerror(-rc));
}

static void meta_committed(void *ctx, uint64_t off, uint64_t pos)
{
    struct cluster *c = ctx;
    c->meta_commit_off = off;
    (void)pos; /* the metadata log's bytes are records, not a partition */
    if (c->applied < plog_first_off(&c->mlog))
        c->applied = plog_first_off(&c->mlog); /* a reset: applied elsewhere */
    bool any = false;
    for (; c->applied < off; c->applied++) {
        char *line = NULL;
        size_t len = 0;
        int rc = read_record(c, c->applied, &line, &len);
        if (rc < 0) {
            mk_log(MK_ERROR, "metadata group: reading record %" PRIu64 ": %s", c->applied,
                   strerror(-rc));
            break; /* tried again at the next commit */
        }
        if (len) {
            struct meta_op op;
            rc = meta_op_decode(line, len, &op);
            if (rc == 0) {
                rc = apply_op(c, c->applied, &op);
                meta_op_free(&op);
            }
            if (rc < 0 && rc != -EEXIST && rc != -ENOENT && rc != -EINVAL)
                mk_log(MK_ERROR, "metadata group: applying record %" PRIu64 " (%.*s%s): %s",
                       c->applied, len > 201 ? 200 : (int)(len - 1), line,
                       len > 201 ? "..." : "", strerror(-rc));
            any = true;
            answer_waiters(c, c->applied, rc);
        } else {
            answer_waiters(c, c->applied, -EAGAIN);
        }
        free(line);
    }
    if (any)
        save_applied(c);
    c->subs_dirty = true; /* checked once the replica call returned */
}

/* ------------------------------------------------------------ proposing */

/* The placement of a create or a grow, made by whichever node submits it:
 * a function of the sorted node ids, the topic's name and the partitions,
 * so every node computes the same one. */
static int fill_placement(struct cluster *c, struct meta_op *op, uint32_t **place)
{
    *place = NULL;
    if (op->kind != META_CREATE && op->kind != META_GROW)
        return 0;
    uint32_t first = 0, rf = broker_config(c->b)->replication_factor;
    if (rf == 0 || rf > c->nnodes)
        rf = c->nnodes < 3 ? (uint32_t)c->nnodes : 3;
    if (op->kind == META_GROW) {
        struct topic *t = topic_by_id(c->b, op->id);
        if (!t || op->partitions <= topic_partitions(t))
            return -EINVAL;
        first = topic_partitions(t);
        rf = t->rf;
    }
    uint32_t n = op->partitions - first;
    *place = malloc((size_t)n * rf * sizeof(**place));
    if (!*place)
        return -ENOMEM;
    uint64_t rot = XXH3_64bits(op->topic, strlen(op->topic));
    meta_place(c->nodes, c->nnodes, rf, rot, first, n, *place);
    op->rf = rf;
    op->replicas = *place;
    op->nreplicas = (size_t)n * rf;
    return 0;
}

/* Proposes a record line (a valid one) at the leader; cb once applied
 * here, with the record's offset in *off. */
static int propose_line(struct cluster *c, const char *line, size_t len, cluster_done_cb cb,
                        void *arg, uint64_t *off)
{
    if (!c->meta)
        return RAFT_ENOTLEADER;
    struct raft *r = replica_raft(c->meta);
    if (raft_role(r) != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    struct meta_waiter *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    struct iovec iov = {(void *)line, len};
    uint32_t l32 = (uint32_t)len;
    uint64_t first, term;
    int rc = replica_propose(c->meta, &iov, 1, &l32, NULL, NULL, 1, sys_now_ms(), NULL, &first, &term);
    if (rc < 0) {
        free(w);
        return rc;
    }
    w->off = first;
    w->term = term;
    w->cb = cb;
    w->arg = arg;
    struct meta_waiter **at = &c->waiters;
    while (*at && (*at)->off < first)
        at = &(*at)->next;
    w->next = *at;
    *at = w;
    if (off)
        *off = first;
    return 0;
}

static int encode_op(struct cluster *c, const struct meta_op *op_in, char **line, size_t *len)
{
    struct meta_op op = *op_in;
    uint32_t *place = NULL;
    int rc = op.replicas ? 0 : fill_placement(c, &op, &place);
    if (rc < 0)
        return rc;
    rc = meta_op_encode(&op, line, len);
    free(place);
    return rc;
}

int cluster_meta_propose(struct cluster *c, const struct meta_op *op, cluster_done_cb cb,
                         void *arg)
{
    if (!c->meta || raft_role(replica_raft(c->meta)) != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    char *line;
    size_t len;
    int rc = encode_op(c, op, &line, &len);
    if (rc < 0)
        return rc;
    rc = propose_line(c, line, len, cb, arg, NULL);
    free(line);
    return rc;
}

/* ------------------------------------------------------------ submitting from any node */

static void msub_free(struct msub *s)
{
    free(s->line);
    free(s);
}

static void msub_finish(struct cluster *c, struct msub *s, int status)
{
    for (struct msub **at = &c->subs; *at; at = &(*at)->next)
        if (*at == s) {
            *at = s->next;
            break;
        }
    s->cb(s->arg, status);
    msub_free(s);
}

static void msub_try(struct cluster *c, struct msub *s, int64_t now);

/* Runs inside the metadata replica's processing: only notes the answer,
 * which msubs_check gives once the replica call returned. */
static void msub_local_done(void *arg, int status)
{
    struct msub *s = arg;
    if (status == -EAGAIN) {
        s->state = MS_WAIT; /* another record took its place: again */
        return;
    }
    s->state = MS_APPLY;
    s->status = status;
    s->wait_off = 0;
    s->c->subs_dirty = true;
}

static void msub_try(struct cluster *c, struct msub *s, int64_t now)
{
    s->sent_ms = now;
    uint64_t leader = cluster_meta_leader(c);
    if (leader == broker_config(c->b)->node_id) {
        s->state = MS_LOCAL;
        int rc = propose_line(c, s->line, s->len, msub_local_done, s, NULL);
        if (rc == 0)
            return;
        if (rc != RAFT_ENOTLEADER && rc != -EBUSY) {
            s->state = MS_APPLY; /* answered at the next check */
            s->status = rc;
            s->wait_off = 0;
            return;
        }
    }
    struct wire_call call = {
        .kind = WIRE_META_REQ, .req = s->req, .data = (const uint8_t *)s->line, .data_len = s->len};
    s->state = leader && leader <= UINT32_MAX &&
                       cluster_send_call(c, (uint32_t)leader, &call) == 0
                   ? MS_SENT
                   : MS_WAIT;
}

int cluster_meta_submit(struct cluster *c, const struct meta_op *op, cluster_done_cb cb, void *arg)
{
    struct msub *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int rc = encode_op(c, op, &s->line, &s->len);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->c = c;
    s->req = cluster_next_req(c);
    s->cb = cb;
    s->arg = arg;
    int64_t now = sys_now_ms();
    s->deadline_ms = now + broker_config(c->b)->request_timeout_ms;
    s->next = c->subs;
    c->subs = s;
    msub_try(c, s, now);
    return 0;
}

/* Answers the submissions whose record is applied here now. */
static void msubs_check(struct cluster *c)
{
    c->subs_dirty = false;
    for (struct msub *s = c->subs; s;) {
        if (s->state == MS_APPLY && (s->wait_off < c->applied || s->status < 0)) {
            msub_finish(c, s, s->status);
            s = c->subs; /* the callback may submit more */
            continue;
        }
        s = s->next;
    }
}

static void msubs_tick(struct cluster *c, int64_t now)
{
    for (struct msub *s = c->subs; s;) {
        struct msub *next = s->next;
        if (now >= s->deadline_ms && s->state != MS_LOCAL) {
            msub_finish(c, s, -ETIMEDOUT);
            next = c->subs;
        } else if (s->state == MS_WAIT || (s->state == MS_SENT && now - s->sent_ms >= 1000)) {
            msub_try(c, s, now);
        }
        s = next;
    }
    msubs_check(c);
}

/* The leader's side of a forwarded operation. */
struct fwd_meta {
    struct cluster *c;
    uint32_t from;
    uint64_t req, off;
    unsigned slot;
};

static void send_meta_resp(struct cluster *c, uint32_t to, uint64_t req, int status, uint64_t off)
{
    struct wire_call resp = {.kind = WIRE_META_RESP,
                             .req = req,
                             .status = status,
                             .off = off,
                             .leader = (uint32_t)cluster_meta_leader(c)};
    cluster_send_call(c, to, &resp);
}

static void fwd_meta_done(void *arg, int status)
{
    struct fwd_meta *f = arg;
    struct cluster *c = f->c;
    struct recent *r = &c->recent[f->slot];
    if (status == -EAGAIN)
        status = RAFT_ENOTLEADER; /* lost: the sender tries the new leader */
    if (r->from == f->from && r->req == f->req) {
        r->done = status != RAFT_ENOTLEADER;
        if (!r->done)
            r->from = 0;
        r->status = status;
        r->off = f->off;
    }
    if (status != -ESHUTDOWN)
        send_meta_resp(c, f->from, f->req, status, f->off);
    free(f);
}

static void on_meta_req(struct cluster *c, uint32_t from, const struct wire_call *w)
{
    for (unsigned i = 0; i < RECENT_MAX; i++) {
        struct recent *r = &c->recent[i];
        if (r->from == from && r->req == w->req) {
            if (r->done)
                send_meta_resp(c, from, w->req, r->status, r->off);
            return; /* still in the log: answered once applied */
        }
    }
    struct meta_op op;
    int rc = meta_op_decode((const char *)w->data, w->data_len, &op);
    if (rc < 0) {
        send_meta_resp(c, from, w->req, -EINVAL, 0);
        return;
    }
    meta_op_free(&op);
    struct fwd_meta *f = calloc(1, sizeof(*f));
    if (!f)
        return; /* the sender asks again */
    f->c = c;
    f->from = from;
    f->req = w->req;
    f->slot = c->recent_at++ % RECENT_MAX;
    rc = propose_line(c, (const char *)w->data, w->data_len, fwd_meta_done, f, &f->off);
    if (rc < 0) {
        send_meta_resp(c, from, w->req, rc == -EBUSY ? RAFT_ENOTLEADER : rc, 0);
        free(f);
        return;
    }
    c->recent[f->slot] = (struct recent){.from = from, .req = w->req, .off = f->off};
}

static void on_meta_resp(struct cluster *c, const struct wire_call *w)
{
    struct msub *s = c->subs;
    while (s && !(s->req == w->req && s->state == MS_SENT))
        s = s->next;
    if (!s)
        return;
    if (w->status == RAFT_ENOTLEADER) {
        s->state = MS_WAIT;
        return;
    }
    s->state = MS_APPLY;
    s->status = w->status;
    s->wait_off = w->off;
    if (w->status < 0)
        s->status = w->status;
    msubs_check(c);
}

/* ------------------------------------------------------------ ReadIndex */

#define SYNC_WAIT_MS 1000

/* Where this node is in group `group`: applied (metadata) or committed. */
static bool local_point(struct cluster *c, uint64_t group, uint64_t *off)
{
    if (group == META_GROUP) {
        *off = c->applied;
        return true;
    }
    struct gent *e = group_find(c, group);
    if (!e)
        return false;
    *off = pgroup_part(e->g)->commit_off;
    return true;
}

static void syncs_check(struct cluster *c, int64_t now)
{
    for (struct csync **at = &c->syncs; *at;) {
        struct csync *s = *at;
        uint64_t here = 0;
        bool known = local_point(c, s->group, &here);
        int st = 1;
        if (!known)
            st = -ENOENT;
        else if (s->answered && here >= s->wait_off)
            st = 0;
        else if (now >= s->deadline_ms)
            st = -ETIMEDOUT;
        if (st == 1) {
            at = &s->next;
            continue;
        }
        *at = s->next;
        s->cb(s->arg, st);
        free(s);
        at = &c->syncs; /* the callback may have added one */
    }
}

int cluster_sync(struct cluster *c, uint64_t group, cluster_done_cb cb, void *arg)
{
    uint32_t self = broker_config(c->b)->node_id;
    uint64_t leader;
    if (group == META_GROUP && !c->meta) {
        cb(arg, -EAGAIN);
        return 0;
    } else if (group == META_GROUP) {
        leader = cluster_meta_leader(c);
    } else {
        struct gent *e = group_find(c, group);
        if (!e) {
            cb(arg, -ENOENT);
            return 0;
        }
        leader = pgroup_leader(e->g);
    }
    if (leader == self) {
        cb(arg, 0); /* the leader's own view is the latest */
        return 0;
    }
    struct csync *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->req = cluster_next_req(c);
    s->group = group;
    s->cb = cb;
    s->arg = arg;
    s->deadline_ms = sys_now_ms() + SYNC_WAIT_MS;
    struct wire_call call = {.kind = WIRE_SYNC_REQ, .req = s->req, .group = group};
    if (!leader || leader > UINT32_MAX || cluster_send_call(c, (uint32_t)leader, &call) < 0) {
        free(s);
        cb(arg, -EAGAIN); /* no leader to ask: what this node has */
        return 0;
    }
    s->next = c->syncs;
    c->syncs = s;
    return 0;
}

static void on_sync_req(struct cluster *c, uint32_t from, const struct wire_call *w)
{
    struct wire_call resp = {.kind = WIRE_SYNC_RESP, .req = w->req, .group = w->group};
    if (w->group == META_GROUP) {
        if (raft_role(replica_raft(c->meta)) == RAFT_LEADER)
            resp.off = c->meta_commit_off;
        else
            resp.status = RAFT_ENOTLEADER;
    } else {
        struct gent *e = group_find(c, w->group);
        resp.status = e ? pgroup_commit_point(e->g, &resp.off) : -ENOENT;
    }
    cluster_send_call(c, from, &resp);
}

static void on_sync_resp(struct cluster *c, const struct wire_call *w)
{
    for (struct csync *s = c->syncs; s; s = s->next) {
        if (s->req != w->req)
            continue;
        if (w->status < 0) {
            s->deadline_ms = 0; /* answered with what this node has */
        } else {
            s->answered = true;
            s->wait_off = w->off;
        }
        break;
    }
    syncs_check(c, sys_now_ms());
}

static void on_info(struct cluster *c, uint32_t from, const struct wire_call *w);

static void on_port_call(void *ctx, uint32_t from, const struct wire_call *w)
{
    struct cluster *c = ctx;
    if (c->closing || !c->meta)
        return;
    switch (w->kind) {
    case WIRE_META_REQ:
        on_meta_req(c, from, w);
        return;
    case WIRE_META_RESP:
        on_meta_resp(c, w);
        return;
    case WIRE_SYNC_REQ:
        on_sync_req(c, from, w);
        return;
    case WIRE_SYNC_RESP:
        on_sync_resp(c, w);
        return;
    case WIRE_INFO:
        on_info(c, from, w);
        return;
    default:
        break;
    }
    struct gent *e = group_find(c, w->group);
    if (e) {
        pgroup_call(e->g, from, w);
        if (c->syncs)
            syncs_check(c, sys_now_ms());
    } else if (w->kind == WIRE_WRITE_REQ) {
        struct wire_call resp = {.kind = WIRE_WRITE_RESP,
                                 .req = w->req,
                                 .group = w->group,
                                 .status = RAFT_ENOTLEADER};
        cluster_send_call(c, from, &resp); /* not here (yet): asks again */
    } else {
        c->unroutable++;
    }
}

static void send_info(struct cluster *c, uint32_t to)
{
    struct wire_call w = {.kind = WIRE_INFO, .data = (const uint8_t *)c->info, .data_len = strlen(c->info)};
    cluster_send_call(c, to, &w);
}

static int peer_index(const struct cluster *c, uint32_t id)
{
    const struct mk_config *cfg = broker_config(c->b);
    for (size_t i = 0; i < cfg->npeers; i++)
        if (cfg->peers[i].id == id)
            return (int)i;
    return -1;
}

static void on_info(struct cluster *c, uint32_t from, const struct wire_call *w)
{
    int i = peer_index(c, from);
    if (i < 0)
        return;
    memcpy(c->peer_info[i], w->data ? (const char *)w->data : "", w->data_len);
    c->peer_info[i][w->data_len] = '\0';
}

void cluster_set_info(struct cluster *c, const char *info)
{
    snprintf(c->info, sizeof(c->info), "%s", info);
    const struct mk_config *cfg = broker_config(c->b);
    for (size_t i = 0; i < cfg->npeers; i++)
        if (cfg->peers[i].id != cfg->node_id && cluster_connected(c, cfg->peers[i].id))
            send_info(c, cfg->peers[i].id);
}

const char *cluster_peer_info(const struct cluster *c, uint32_t id)
{
    if (id == broker_config(c->b)->node_id)
        return c->info;
    int i = peer_index(c, id);
    return i < 0 ? "" : c->peer_info[i];
}

static void on_port_peer(void *ctx, uint32_t id, bool up)
{
    struct cluster *c = ctx;
    if (up)
        send_info(c, id);
    for (size_t i = 0; i < c->ngroups; i++)
        pgroup_peer(c->groups[i].g, id, up);
}

uint64_t cluster_meta_leader(const struct cluster *c)
{
    return c->meta ? raft_leader(replica_raft(c->meta)) : 0;
}

uint64_t cluster_meta_applied(const struct cluster *c)
{
    return c->applied;
}

static void on_tick(uv_timer_t *t)
{
    struct cluster *c = t->data;
    if (!c->meta)
        return;
    replica_tick(c->meta);
    int64_t now = sys_now_ms();
    msubs_tick(c, now);
    for (size_t i = 0; i < c->ngroups; i++)
        pgroup_tick(c->groups[i].g, now);
    syncs_check(c, now);
    if (c->rebuild && c->meta && now - c->rebuild_check_ms >= 1000)
        rebuild_check(c, now);
    uint64_t leader = raft_leader(replica_raft(c->meta));
    if (leader != c->meta_leader_seen) {
        c->meta_leader_seen = leader;
        if (leader)
            mk_log(MK_INFO, "metadata group: node %" PRIu64 " leads (term %" PRIu64 ")%s", leader,
                   raft_term(replica_raft(c->meta)),
                   leader == broker_config(c->b)->node_id ? ": this node" : "");
        else
            mk_log(MK_INFO, "metadata group: no leader (term %" PRIu64 ")",
                   raft_term(replica_raft(c->meta)));
    }
}

/* ------------------------------------------------------------ life */

#define REBUILD_FILE "rebuild"

static int open_meta(struct cluster *c)
{
    const struct mk_config *cfg = broker_config(c->b);
    struct raft_conf conf = {.n = 0};
    for (size_t i = 0; i < cfg->npeers && conf.n < RAFT_MAX_SERVERS; i++)
        conf.servers[conf.n++] = (struct raft_server){.id = cfg->peers[i].id, .voter = true};
    struct replica_options ro = {
        .id = cfg->node_id,
        .conf = &conf,
        .election_ticks = CLUSTER_ELECTION_TICK,
        .heartbeat_ticks = 1,
        .seed = c->cluster_id ^ ((uint64_t)cfg->node_id << 32) ^ uv_hrtime(),
        .segment_bytes = 64 << 20,
        .max_record = META_LINE_MAX,
        .segment_ms = INT64_MAX / 2,
        .rebuilding = c->rebuild && !sys_exists_in(c->mlog.dir, REBUILT_FILE)};
    struct replica_io io = {
        .ctx = c, .send = meta_send, .committed = meta_committed, .rebuilt = meta_rebuilt};
    int rc = replica_open(&c->meta, c->loop, &c->mlog, &ro, &io);
    if (rc < 0) {
        c->meta = NULL;
        mk_log(MK_ERROR, "metadata group: %s", strerror(-rc));
    }
    return rc;
}

/* A handshake: what this node and the peer know of each other's data dir. */
static void on_port_hello(void *ctx, uint32_t id, uint64_t inc, uint64_t knew_us)
{
    struct cluster *c = ctx;
    struct broker *b = c->b;
    uint64_t was = broker_peer_incarnation(b, id);
    if (was && was != inc)
        mk_log(MK_WARN,
               "peer %" PRIu32 " has a new data dir (incarnation %016" PRIx64 ", was %016" PRIx64
               "): it is rebuilt from the others",
               id, inc, was);
    if (was != inc && broker_set_peer_incarnation(b, id, inc) < 0)
        mk_log(MK_WARN, "peer %" PRIu32 ": recording its incarnation failed", id);
    if (knew_us && knew_us != b->incarnation && !c->rebuild) {
        mk_log(MK_WARN,
               "peer %" PRIu32 " knew this node with another data dir (incarnation %016" PRIx64
               "): this data dir is rebuilt from the others; its groups vote once they caught up",
               id, knew_us);
        c->rebuild = true;
        int rc = sys_write_atomic(b->data_dir, REBUILD_FILE, "", 0);
        if (rc < 0)
            mk_log(MK_ERROR, "writing %s/%s: %s", b->data_dir, REBUILD_FILE, strerror(-rc));
    }
    if (c->hold && ++c->hellos >= c->nnodes / 2) {
        /* A majority of the cluster (this node and half the others) spoke. */
        c->hold = false;
        if (open_meta(c) == 0)
            mk_log(MK_INFO, "metadata group: started%s", c->rebuild ? ", rebuilding" : "");
    }
}

static uint64_t on_port_known(void *ctx, uint32_t id)
{
    struct cluster *c = ctx;
    return broker_peer_incarnation(c->b, id);
}

/* Once every group here caught up, the node is an ordinary one again:
 * groups made from now on start voting at once. */
static void rebuild_check(struct cluster *c, int64_t now)
{
    c->rebuild_check_ms = now;
    if (raft_rebuilding(replica_raft(c->meta)))
        return;
    for (size_t i = 0; i < c->ngroups; i++)
        if (pgroup_rebuilding(c->groups[i].g))
            return;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", broker_data_dir(c->b), REBUILD_FILE);
    if (unlink(path) < 0 && errno != ENOENT) {
        mk_log(MK_WARN, "removing %s: %s", path, strerror(errno));
        return;
    }
    c->rebuild = false;
    mk_log(MK_INFO, "rebuilt: every group of this node caught up with its leader");
}

bool cluster_rebuilding(const struct cluster *c)
{
    return c->rebuild;
}

static void meta_rebuilt(void *ctx)
{
    struct cluster *c = ctx;
    int rc = sys_write_atomic(c->mlog.dir, REBUILT_FILE, "", 0);
    mk_log(MK_INFO, "metadata group: caught up, votes again%s", rc < 0 ? " (marker not saved)" : "");
}

int cluster_open(struct cluster **out, uv_loop_t *loop, struct broker *b, uint64_t cluster_id)
{
    const struct mk_config *cfg = broker_config(b);
    const char *data_dir = broker_data_dir(b);
    struct cluster *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->b = b;
    for (size_t i = 0; i < cfg->npeers; i++) {
        size_t j = c->nnodes++; /* sorted ids: placement is the same everywhere */
        while (j > 0 && c->nodes[j - 1] > cfg->peers[i].id) {
            c->nodes[j] = c->nodes[j - 1];
            j--;
        }
        c->nodes[j] = cfg->peers[i].id;
    }
    char dir[PATH_MAX];
    int rc;
    if (snprintf(dir, sizeof(dir), "%s/metadata", data_dir) >= (int)sizeof(dir)) {
        free(c);
        return -ENAMETOOLONG;
    }
    if ((rc = plog_open_raft(&c->mlog, dir, true)) < 0) {
        mk_log(MK_ERROR, "metadata log %s: %s", dir, strerror(-rc));
        free(c);
        return rc;
    }
    c->applied = sys_read_number(dir, "applied"); /* 0: apply again, idempotently */
    c->loop = loop;
    c->cluster_id = cluster_id;
    c->rebuild = sys_exists_in(data_dir, REBUILD_FILE);
    /* A new data dir waits for the peers' word before its metadata group
     * runs: if they knew this node with another data dir, it was wiped, and
     * must not vote before it has caught up (see README). */
    c->hold = b->fresh;
    if (!c->hold && (rc = open_meta(c)) < 0) {
        plog_close(&c->mlog);
        free(c);
        return rc;
    }
    c->producer = XXH3_64bits_withSeed(&cfg->node_id, sizeof(cfg->node_id), uv_hrtime() ^ cluster_id);
    c->producer &= ~PRODUCER_KAFKA; /* Kafka producers have the other half */
    if (!c->producer)
        c->producer = 1;
    /* Request ids never repeat across restarts: a leader remembers recent
     * ones (to answer a resend), and must not take a new request for an
     * old one of this node's previous life. */
    c->next_req = c->producer << 20;
    struct netport_ops ops = {.ctx = c,
                              .incarnation = b->incarnation,
                              .known = on_port_known,
                              .hello = on_port_hello,
                              .raft = on_port_raft,
                              .call = on_port_call,
                              .peer = on_port_peer};
    if ((rc = netport_open(&c->net, loop, cfg, cluster_id, &ops)) < 0) {
        const struct mk_peer *at = cfg->listen.port ? &cfg->listen : cfg_peer(cfg, cfg->node_id);
        mk_log(MK_ERROR, "cluster port %s:%u: %s", at->host, at->port, uv_strerror(rc));
        replica_close(c->meta);
        plog_close(&c->mlog);
        free(c);
        return rc;
    }
    /* Every partition of every topic gets its group. */
    for (size_t i = 0; i < topic_count(b); i++) {
        struct topic *t = topic_at(b, i);
        for (uint32_t k = 0; k < topic_partitions(t); k++) {
            if ((rc = pgroup_open(c, topic_part(t, k))) < 0)
                mk_log(MK_ERROR, "topic %s partition %" PRIu32 ": %s", topic_name(t), k,
                       strerror(-rc));
        }
    }
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    uv_timer_start(&c->tick, on_tick, CLUSTER_TICK_MS, CLUSTER_TICK_MS);
    *out = c;
    return 0;
}

static void on_tick_closed(uv_handle_t *h)
{
    free(h->data);
}

void cluster_close(struct cluster *c)
{
    c->closing = true;
    while (c->ngroups > 0) {
        struct pgroup *g = c->groups[c->ngroups - 1].g;
        pgroup_close(pgroup_part(g), -ESHUTDOWN); /* removes it from groups */
    }
    free(c->groups);
    c->groups = NULL;
    while (c->subs)
        msub_finish(c, c->subs, -ESHUTDOWN);
    while (c->syncs) {
        struct csync *s = c->syncs;
        c->syncs = s->next;
        s->cb(s->arg, -ESHUTDOWN);
        free(s);
    }
    while (c->waiters) { /* shutting down: nobody will apply them here */
        struct meta_waiter *w = c->waiters;
        c->waiters = w->next;
        w->cb(w->arg, -ESHUTDOWN);
        free(w);
    }
    netport_close(c->net); /* frees itself */
    c->net = NULL;
    if (c->meta)
        replica_close(c->meta); /* freed once its sync job is back */
    c->meta = NULL;
    plog_close(&c->mlog);
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->tick, on_tick_closed);
}

void cluster_status(const struct cluster *c, FILE *f)
{
    if (c->meta) {
        struct raft *r = replica_raft(c->meta);
        fprintf(f,
                "metadata leader=%" PRIu64 " role=%s term=%" PRIu64 " commit=%" PRIu64
                " applied=%" PRIu64 " offset.next=%" PRIu64 "\n",
                raft_leader(r), raft_role_name(raft_role(r)), raft_term(r), c->meta_commit_off,
                c->applied, plog_next_off(&c->mlog));
    }
    if (c->net)
        netport_status(c->net, f);
}
