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

#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#define CLUSTER_TICK_MS       50
#define CLUSTER_ELECTION_TICK 10 /* an election timeout of 0.5 to 1 s */

struct cluster;

/* Opens the metadata log in data_dir/metadata (created at first) and listens
 * on the port; starts electing.  cfg must have peers. */
int cluster_open(struct cluster **out, uv_loop_t *loop, const char *data_dir,
                 const struct mk_config *cfg, uint64_t cluster_id);

/* Closes everything; memory goes once libuv has closed the handles and a
 * running fdatasync is back. */
void cluster_close(struct cluster *c);

/* The `metadata ...` and port lines of .cluster. */
void cluster_status(const struct cluster *c, FILE *f);

#endif
