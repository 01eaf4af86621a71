/*
 * pgroup — a partition of a cluster: its Raft group (group id topic id << 32
 * | partition), over the replicas the metadata group placed, and the writes
 * of this node waiting on it.  Internal to broker/ (partition.c and
 * cluster.c call it).
 *
 * THE LOG.  On a node that holds a replica, the partition's plog is the
 * group's Raft log (replica.h): the file shows the records below the
 * commit point only.  A node without a replica keeps no log; it forwards
 * writes and reads to the leader.
 *
 * WRITES FROM ANY NODE.  A write becomes a pending write of this node: its
 * bytes (copied), its producer id (this daemon's, random at each start) and
 * the sequence numbers of its records (one per record, per partition).  It
 * is proposed where the leader is: here, or forwarded in a WRITE_REQ.  The
 * leader keeps, per producer, the last sequence in its log (the records
 * carry producer and sequence in their side data), so a write sent again
 * after a lost answer or a leader change is never stored twice: the
 * records already in the log are answered, only the rest is proposed.  The
 * writer is answered once the records are committed and, on a node with a
 * replica, committed here (a node reads its own writes), with the term
 * they were placed in still at their offsets.  If they are not (a leader
 * change cut them off), the write is sent again.  It fails with ETIMEDOUT
 * when no leader took it within request.timeout.ms.
 *
 * QUIESCING.  An idle leader (every follower has everything, nothing
 * pending) tells its followers QUIESCE and stops ticking; a follower that
 * hears it (same term, same commit, nothing missing) stops too.  Any
 * message, proposal or write wakes a group, and so does a peer of the group
 * going down (its followers must elect) or coming up (its leader must
 * heartbeat it).  So idle partitions cost no messages and no CPU.
 *
 * Loop thread only.
 */
#ifndef MK_PGROUP_H
#define MK_PGROUP_H

#include "broker/broker.h"
#include "broker/net/wire.h"
#include "raft/raft.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct cluster;
struct pgroup;

#define PGROUP_ID(topic, part) ((uint64_t)(topic) << 32 | (uint32_t)(part))

/* Gives p its group (p->g); with a local replica, a Raft replica over
 * p->log.  -ENOMEM ... */
int pgroup_open(struct cluster *c, struct part *p);

/* Stops the group: pending writes fail with status (-ESTALE for a deleted
 * topic, -ESHUTDOWN at exit).  p->g is NULL afterwards. */
void pgroup_close(struct part *p, int status);

/* part_append on a partition of a cluster (see broker.h). */
/* part_append_recs on a cluster's partition: only at its leader (-EREMOTE
 * elsewhere: a Kafka client asks the leader itself); producer/seq: the
 * writer's identity for the resend check (0: this node's own). */
int pgroup_append_recs(struct part *p, const struct iovec *iov, int iovcnt,
                       const struct part_rec *recs, size_t n, uint64_t producer, uint64_t seq,
                       part_placed_cb cb, void *arg);
int pgroup_append(struct part *p, const struct iovec *iov, int iovcnt, const uint32_t *lens,
                  size_t n, part_done_cb cb, void *arg);

/* A read on a node without a replica, from the leader: cb gets the
 * committed bytes at pos (n <= size, 0 at the end), end = the committed end
 * position; status -ENODATA with end = the first retained position when pos
 * is below it; -ETIMEDOUT. */
typedef void (*pgroup_read_cb)(void *arg, int status, const void *data, size_t n, uint64_t end);
int pgroup_read(struct pgroup *g, uint64_t pos, size_t size, pgroup_read_cb cb, void *arg);
bool pgroup_local(const struct pgroup *g);
/* Whether its replica here still catches up after a wipe (cluster.h). */
bool pgroup_rebuilding(const struct pgroup *g);

/* From the cluster: a tick, a Raft message, a call, a peer event. */
void pgroup_tick(struct pgroup *g, int64_t now_ms);
void pgroup_step(struct pgroup *g, uint32_t from, const struct raft_msg *m);
void pgroup_call(struct pgroup *g, uint32_t from, const struct wire_call *w);
void pgroup_peer(struct pgroup *g, uint32_t id, bool up);
bool pgroup_quiet(const struct pgroup *g);
struct part *pgroup_part(const struct pgroup *g);
uint32_t pgroup_leader(const struct pgroup *g);
/* At the leader: its commit offset (0), else RAFT_ENOTLEADER. */
int pgroup_commit_point(const struct pgroup *g, uint64_t *off);

/* What the status shows: leader, term, replicas, in-sync replicas, lag. */
void pgroup_info(const struct pgroup *g, struct part_info *out);
/* " replicas=1,2,3 isr=1,2 role=leader commit=N lag=2:0,3:5 quiet=0" */
void pgroup_status(const struct pgroup *g, FILE *f);
/* The comma-separated lists for the xattrs: which = 'r' replicas, 'i' isr. */
void pgroup_list(const struct pgroup *g, char which, char *buf, size_t n);

/* Once a second (part_housekeep): a leader proposes segment rolls and
 * retention for its replicas (see replica.h, CONTROL ENTRIES). */
void pgroup_housekeep(struct pgroup *g, int64_t now_ms);

/* Saves the commit offset (DIR/commit) if it moved: at the next start the
 * file shows what was committed before, at once. */
void pgroup_save_commit(struct pgroup *g);

/* The committed entry at offset off of the local replica failed its checks:
 * ask another replica for a good copy and rewrite it in place (see
 * pgroup.c, repair).  Entries repaired so far: pgroup_repaired. */
void pgroup_repair(struct pgroup *g, uint64_t off);
uint64_t pgroup_repaired(const struct pgroup *g);
/* Asks the group's leader to hand leadership to replica `to` (setfattr
 * user.leader): 0 once asked (the transfer follows, or not: see
 * user.leader), -EINVAL when `to` holds no replica, -EAGAIN when no leader
 * is known or reachable now.  The preferred leader gets it back later. */
int pgroup_transfer(struct pgroup *g, uint32_t to);

/* Whether another node leads, or may soon (and may serve a read this
 * replica cannot). */
bool pgroup_leader_elsewhere(const struct pgroup *g);

#endif
