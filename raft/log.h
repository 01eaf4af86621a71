/*
 * raft/log.h -- internal: the log as the core sees it.
 *
 * The durable prefix lives in the caller's storage (struct raft_log_ops) and
 * is only read.  Entries not yet reported persisted live here, in an
 * "unstable" array of descriptors whose payloads sit in reference-counted
 * blocks (one block per proposal batch or received message, so a million
 * small proposals cost a handful of allocations).
 *
 * Invariants:
 *   - indexes [u_off, last] are in the unstable array; indexes < u_off are
 *     read from storage (or, for snap_index, from snap_term);
 *   - after a truncation below u_off the storage still holds stale entries at
 *     >= u_off until the caller's FIFO writes catch up: they are never read;
 *   - while reset_pending nothing is read from storage.
 */
#ifndef MINIKAFKA_RAFT_LOG_H
#define MINIKAFKA_RAFT_LOG_H

#include "raft/raft.h"

struct rlog_blk;

struct rlog {
    struct raft_log_ops ops;
    uint64_t u_off;          /* index of ents[head] */
    struct raft_entry *ents; /* unstable entries: ents[head .. head+n) */
    struct rlog_blk **blks;  /* payload block of each entry (or NULL) */
    size_t head, n, cap;
    uint64_t snap_index, snap_term; /* log start learned from a reset */
    bool reset_pending;             /* reset not yet durable */
};

int rlog_init(struct rlog *l, const struct raft_log_ops *ops);
void rlog_free(struct rlog *l);
uint64_t rlog_last(const struct rlog *l);
uint64_t rlog_first(const struct rlog *l);
/* Term at index (0 for index 0); -ENOENT if beyond last or not retained. */
int rlog_term(const struct rlog *l, uint64_t index, uint64_t *term);
/* Same, with 0 for anything unknown. */
uint64_t rlog_term0(const struct rlog *l, uint64_t index);
/* Append n entries at last+1 with the given term and type; payloads copied
 * into one block. */
int rlog_append_bufs(struct rlog *l, uint64_t term, uint8_t type, const struct raft_buf *bufs,
                     size_t n);
/* Append copies of e[0..n) at last+1 (e[0].index must be last+1). */
int rlog_append_entries(struct rlog *l, const struct raft_entry *e, size_t n);
/* Forget every entry at index >= from (from > snap_index). */
void rlog_truncate(struct rlog *l, uint64_t from);
/* Entries up to index are durable in storage: drop them from memory. */
void rlog_stable_to(struct rlog *l, uint64_t index);
/* Forget everything; the log now starts after index (term). */
void rlog_reset(struct rlog *l, uint64_t index, uint64_t term);
/* Unstable entry at index (u_off <= index <= last). */
const struct raft_entry *rlog_unstable(const struct rlog *l, uint64_t index);
/* About how many payload bytes [lo, hi] hold (stored ones through
 * ops.bytes, 0 without it). */
size_t rlog_bytes(const struct rlog *l, uint64_t lo, uint64_t hi);
/* Descriptors of [lo, hi] into out (hi-lo+1 slots); payloads borrowed. */
int rlog_slice(const struct rlog *l, uint64_t lo, uint64_t hi, struct raft_entry *out);

#endif
