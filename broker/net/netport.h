/*
 * netport — the cluster port: one TCP connection per pair of nodes, carrying
 * every Raft group's messages between them (multiplexed by group id), in
 * the frames of wire.h.
 *
 * CONNECTIONS.  Of two nodes, the one with the lower id dials (from its own
 * peer address, so that a firewall rule on an address pair cuts exactly that
 * pair) and the other accepts; a dialer that cannot connect retries with
 * backoff (100 ms doubling to 5 s).  The dialer opens with HELLO (cluster id,
 * its id, the id it wants); the acceptor answers HELLO_OK, or REFUSE and
 * closes when the cluster id differs, the node is not configured, or the
 * HELLO is not addressed to it.  A new accepted connection from a peer
 * replaces an old one (the peer restarted).  Pings every second measure the
 * round trip; a connection that hears nothing for 5 s, or finishes no
 * handshake in 5 s, is closed.
 *
 * BAD INPUT.  A frame that fails any check of wire.h closes its connection,
 * is logged once for that connection and counted (per peer, or for the
 * port when the sender never identified itself: such lines come once per
 * reason, at most 8 a minute); it changes nothing else.
 * Before the handshake a body may be at most 1 KiB, so a stranger cannot make
 * the port reserve memory.
 *
 * BOUNDED QUEUES.  At most NETPORT_MAX_QUEUED bytes wait to be written to a
 * peer; a message beyond that is dropped and counted (Raft resends), so a
 * slow or stuck peer never grows memory without bound.
 *
 * Loop thread only.
 */
#ifndef MK_NETPORT_H
#define MK_NETPORT_H

#include "broker/config.h"
#include "broker/net/wire.h"
#include "raft/raft.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#define NETPORT_MAX_QUEUED (64u << 20)

struct netport;

struct netport_ops {
    void *ctx;
    /* This node's incarnation (its data dir's id), sent in every HELLO. */
    uint64_t incarnation;
    /* Optional: the incarnation this node last saw of peer id (0: none). */
    uint64_t (*known)(void *ctx, uint32_t id);
    /* Optional: a handshake with peer id is done (before `peer` reports it
     * up): its incarnation, and the one it last saw of this node. */
    void (*hello)(void *ctx, uint32_t id, uint64_t incarnation, uint64_t knew_us);
    /* A Raft message of group `group` from peer `from`; m and its entries are
     * borrowed for the call only.  May be NULL (messages are then counted
     * as unroutable). */
    void (*raft)(void *ctx, uint32_t from, uint64_t group, const struct raft_msg *m);
    /* A CALL frame (wire.h) from peer `from`, decoded; c and its data are
     * borrowed for the call only.  May be NULL (counted as unroutable). */
    void (*call)(void *ctx, uint32_t from, const struct wire_call *c);
    /* A peer's connection came up (handshake done) or went down.  May be
     * NULL. */
    void (*peer)(void *ctx, uint32_t id, bool up);
};

/* Listens on this node's peer address (cfg->peers must hold cfg->node_id)
 * and starts dialing the peers with higher ids.  The config is copied.
 * -EADDRINUSE and friends when the port cannot be bound. */
int netport_open(struct netport **out, uv_loop_t *loop, const struct mk_config *cfg,
                 uint64_t cluster_id, const struct netport_ops *ops);

/* Queues a Raft message to peer `to`.  -ENOTCONN when it is not connected,
 * -ENOBUFS when its queue is full (the message is dropped and counted),
 * -EMSGSIZE when it does not fit a frame. */
int netport_send_raft(struct netport *np, uint32_t to, uint64_t group, const struct raft_msg *m);

/* Queues a CALL to peer `to` (same errors as netport_send_raft). */
int netport_send_call(struct netport *np, uint32_t to, const struct wire_call *c);

/* Whether peer id is connected now. */
bool netport_connected(const struct netport *np, uint32_t id);

/* Closes every connection and the listener; the netport frees itself once
 * libuv has closed its handles (the loop keeps running until then). */
void netport_close(struct netport *np);

/* One `peer=ID ...` line per other node, and a `port=...` line with what
 * unidentified connections did (see README). */
void netport_status(const struct netport *np, FILE *f);

/* The cluster id of a peer list: xxh3 of the sorted ID@HOST:PORT entries.
 * Fixed at a node's first start (kept in DATA/meta afterwards). */
uint64_t netport_cluster_id(const struct mk_config *cfg);

#endif
