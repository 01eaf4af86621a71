/*
 * cluster — see cluster.h.
 */
#include "broker/cluster.h"
#include "broker/internal.h"
#include "broker/le.h"
#include "broker/log.h"
#include "broker/metadata.h"
#include "broker/net/netport.h"
#include "broker/plog.h"
#include "broker/replica.h"
#include "broker/sysio.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define META_GROUP 0

/* A local proposal waiting for its record to be applied here. */
struct meta_waiter {
    uint64_t off, term;
    cluster_done_cb cb;
    void *arg;
    struct meta_waiter *next;
};

struct cluster {
    struct broker *b;
    struct netport *net;
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
};

/* ------------------------------------------------------------ plumbing */

static void on_port_raft(void *ctx, uint32_t from, uint64_t group, const struct raft_msg *m)
{
    (void)from;
    struct cluster *c = ctx;
    if (c->closing || group != META_GROUP || !c->meta)
        return; /* partition groups come next */
    int rc = replica_step(c->meta, m);
    if (rc < 0 && rc != RAFT_ENOTLEADER)
        mk_log(MK_WARN, "metadata group: message from node %" PRIu32 " refused: %s", from,
               strerror(-rc));
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
    char num[16];
    switch (op->kind) {
    case META_CREATE:
        return topic_create_as(b, op->topic, id, &own, op->partitions, NULL);
    case META_DELETE:
        return topic_delete(b, op->topic);
    case META_GROW:
        snprintf(num, sizeof(num), "%" PRIu32, op->partitions);
        return topic_set(b, t, "partitions", num);
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
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", c->applied);
    int rc = sys_write_atomic(c->mlog.dir, "applied", buf, (size_t)n);
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
                mk_log(MK_ERROR, "metadata group: applying record %" PRIu64 " (%.*s): %s",
                       c->applied, (int)(len - 1), line, strerror(-rc));
            any = true;
            answer_waiters(c, c->applied, rc);
        } else {
            answer_waiters(c, c->applied, -EAGAIN);
        }
        free(line);
    }
    if (any)
        save_applied(c);
}

static uint64_t read_applied(const char *dir)
{
    char path[PATH_MAX + 16], *buf;
    size_t len;
    int64_t v = 0;
    snprintf(path, sizeof(path), "%s/applied", dir);
    if (sys_read_small(path, 64, &buf, &len) < 0)
        return 0;
    if (len > 1 && buf[len - 1] == '\n')
        buf[len - 1] = '\0';
    if (cfg_parse_i64(buf, 0, INT64_MAX, &v) < 0)
        v = 0; /* unreadable: apply again from the start, idempotently */
    free(buf);
    return (uint64_t)v;
}

/* ------------------------------------------------------------ proposing */

int cluster_meta_propose(struct cluster *c, const struct meta_op *op_in, cluster_done_cb cb,
                         void *arg)
{
    struct raft *r = replica_raft(c->meta);
    if (raft_role(r) != RAFT_LEADER)
        return RAFT_ENOTLEADER;
    struct meta_op op = *op_in;
    uint32_t *place = NULL;
    if (op.kind == META_CREATE) {
        /* rf = default.replication.factor, capped at the node count. */
        uint32_t rf = c->nnodes < 3 ? (uint32_t)c->nnodes : 3;
        place = malloc((size_t)op.partitions * rf * sizeof(*place));
        if (!place)
            return -ENOMEM;
        uint64_t rot = XXH3_64bits(op.topic, strlen(op.topic));
        meta_place(c->nodes, c->nnodes, rf, rot, 0, op.partitions, place);
        op.rf = rf;
        op.replicas = place;
        op.nreplicas = (size_t)op.partitions * rf;
    }
    char *line;
    size_t len;
    int rc = meta_op_encode(&op, &line, &len);
    free(place);
    if (rc < 0)
        return rc;
    struct meta_waiter *w = calloc(1, sizeof(*w));
    if (!w) {
        free(line);
        return -ENOMEM;
    }
    struct iovec iov = {line, len};
    uint32_t l32 = (uint32_t)len;
    uint64_t first, term;
    rc = replica_propose(c->meta, &iov, 1, &l32, 1, sys_now_ms(), &first, &term);
    free(line);
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
    return 0;
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
    c->applied = read_applied(dir);
    struct raft_conf conf = {.n = 0};
    for (size_t i = 0; i < cfg->npeers && conf.n < RAFT_MAX_SERVERS; i++)
        conf.servers[conf.n++] = (struct raft_server){.id = cfg->peers[i].id, .voter = true};
    struct replica_options ro = {.id = cfg->node_id,
                                 .conf = &conf,
                                 .election_ticks = CLUSTER_ELECTION_TICK,
                                 .heartbeat_ticks = 1,
                                 .seed = cluster_id ^ ((uint64_t)cfg->node_id << 32) ^ uv_hrtime(),
                                 .segment_bytes = 64 << 20,
                                 .max_record = META_LINE_MAX,
                                 .segment_ms = INT64_MAX / 2};
    struct replica_io io = {.ctx = c, .send = meta_send, .committed = meta_committed};
    if ((rc = replica_open(&c->meta, loop, &c->mlog, &ro, &io)) < 0) {
        mk_log(MK_ERROR, "metadata group: %s", strerror(-rc));
        plog_close(&c->mlog);
        free(c);
        return rc;
    }
    struct netport_ops ops = {.ctx = c, .raft = on_port_raft};
    if ((rc = netport_open(&c->net, loop, cfg, cluster_id, &ops)) < 0) {
        const struct mk_peer *self = cfg_peer(cfg, cfg->node_id);
        mk_log(MK_ERROR, "cluster port %s:%u: %s", self->host, self->port, uv_strerror(rc));
        replica_close(c->meta);
        plog_close(&c->mlog);
        free(c);
        return rc;
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
    while (c->waiters) { /* shutting down: nobody will apply them here */
        struct meta_waiter *w = c->waiters;
        c->waiters = w->next;
        w->cb(w->arg, -ESHUTDOWN);
        free(w);
    }
    netport_close(c->net); /* frees itself */
    c->net = NULL;
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
