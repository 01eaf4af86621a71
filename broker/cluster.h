/*
 * cluster — what a node of a cluster runs besides its local store: the
 * cluster port and the Raft groups it carries.  Today that is the metadata
 * group (group 0, every node a voter, its log in DATA_DIR/metadata, a Raft
 * log of metadata.h records); partition groups join it next (group id
 * topic id << 32 | partition).
 *
 * One timer ticks every group (CLUSTER_TICK_MS); RAFT frames from the port
 * are routed to their group by id; a group's messages go out through the
 * port (dropped while a peer is down: Raft resends).
 *
 * Loop thread only.
 */
#ifndef MK_CLUSTER_H
#define MK_CLUSTER_H

#include "broker/config.h"
#include "raft/raft.h"

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#define CLUSTER_TICK_MS       50
#define CLUSTER_ELECTION_TICK 10 /* an election timeout of 0.5 to 1 s */

struct cluster;
struct broker;
struct meta_op;

/* Opens the metadata log in DATA_DIR/metadata (created at first) and listens
 * on the port; starts electing.  Committed metadata records are applied to
 * b's topic registry, in log order, exactly once (the applied offset is kept
 * in DATA_DIR/metadata/applied; applying again after a crash changes
 * nothing).  b's config must have peers. */
int cluster_open(struct cluster **out, uv_loop_t *loop, struct broker *b, uint64_t cluster_id);

/* Status of a proposal, once applied here: 0 or the rules' errno (metadata.h),
 * -EAGAIN if leadership changed and another record took its place. */
typedef void (*cluster_done_cb)(void *arg, int status);

/* Proposes op (copied) to the metadata group; cb runs once it is applied on
 * this node.  For a create, the replica placement is made here.  Returns
 * RAFT_ENOTLEADER on a node that does not lead the group (forwarding to
 * the leader is the next step), -ENOMEM ... */
int cluster_meta_propose(struct cluster *c, const struct meta_op *op, cluster_done_cb cb,
                         void *arg);

/* Submits op from any node: proposed here when this node leads the group,
 * else forwarded to the leader (sent again until answered, at most
 * request.timeout.ms: then -ETIMEDOUT).  cb runs once the record is
 * applied on this node, never inside this call.  Creates and grows get
 * their placement here. */
int cluster_meta_submit(struct cluster *c, const struct meta_op *op, cluster_done_cb cb,
                        void *arg);

/* ReadIndex: cb runs once this node has applied (group 0: the metadata
 * group) or committed (a partition group) everything its group's leader
 * had committed when asked; at once on the leader itself; with -EAGAIN or
 * -ETIMEDOUT (after 1 s) when no leader answers: the node then has only
 * its own view.  May run cb before returning. */
int cluster_sync(struct cluster *c, uint64_t group, cluster_done_cb cb, void *arg);

/* The metadata group's leader (0: none known) and whether it is this node. */
uint64_t cluster_meta_leader(const struct cluster *c);

/* Offset below which every committed metadata record is applied here. */
uint64_t cluster_meta_applied(const struct cluster *c);

/* Closes everything; memory goes once libuv has closed the handles and a
 * running fdatasync is back. */
void cluster_close(struct cluster *c);

/* The `metadata ...` and port lines of .cluster. */
void cluster_status(const struct cluster *c, FILE *f);

/* ---- for the partition groups (pgroup.c) ---- */
struct pgroup;
struct wire_call;
int cluster_group_add(struct cluster *c, uint64_t id, struct pgroup *g);
void cluster_group_del(struct cluster *c, uint64_t id);
int cluster_send_raft(struct cluster *c, uint32_t to, uint64_t group, const struct raft_msg *m);
int cluster_send_call(struct cluster *c, uint32_t to, const struct wire_call *w);
bool cluster_connected(const struct cluster *c, uint32_t id);
uint64_t cluster_producer(const struct cluster *c);
uint64_t cluster_next_req(struct cluster *c);
uv_loop_t *cluster_loop(const struct cluster *c);
/* Whether this node's data dir replaces a wiped one: its groups start
 * without a vote until they caught up with a leader. */
bool cluster_rebuilding(const struct cluster *c);
/* The cluster's node ids, ascending. */
const uint32_t *cluster_nodes(const struct cluster *c, size_t *n);

/* What this node tells its peers about itself once connected (WIRE_INFO:
 * "kafka=HOST:PORT"), and what a node told (this node's own for its id;
 * "" when nothing was heard). */
void cluster_set_info(struct cluster *c, const char *info);
const char *cluster_peer_info(const struct cluster *c, uint32_t id);

#endif
