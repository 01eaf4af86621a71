/*
 * cluster — see cluster.h.
 */
#include "broker/cluster.h"
#include "broker/log.h"
#include "broker/metadata.h"
#include "broker/net/netport.h"
#include "broker/plog.h"
#include "broker/replica.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define META_GROUP 0

struct cluster {
    uv_loop_t *loop;
    struct mk_config cfg;
    struct netport *net;
    struct plog mlog;
    bool mlog_open;
    struct replica *meta;
    uint64_t meta_commit_off, meta_commit_pos;
    uint64_t meta_leader_seen; /* to log leadership changes once */
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

static void meta_committed(void *ctx, uint64_t off, uint64_t pos)
{
    struct cluster *c = ctx;
    /* Applying the records to the topic registry comes with the topic
     * operations through the group; until then they are only counted. */
    c->meta_commit_off = off;
    c->meta_commit_pos = pos;
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
                   raft_term(replica_raft(c->meta)), leader == c->cfg.node_id ? ": this node" : "");
        else
            mk_log(MK_INFO, "metadata group: no leader (term %" PRIu64 ")",
                   raft_term(replica_raft(c->meta)));
    }
}

/* ------------------------------------------------------------ life */

int cluster_open(struct cluster **out, uv_loop_t *loop, const char *data_dir,
                 const struct mk_config *cfg, uint64_t cluster_id)
{
    struct cluster *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->cfg = *cfg;
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
    c->mlog_open = true;
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
                " offset.next=%" PRIu64 "\n",
                raft_leader(r), raft_role_name(raft_role(r)), raft_term(r), c->meta_commit_off,
                plog_next_off(&c->mlog));
    }
    if (c->net)
        netport_status(c->net, f);
}
