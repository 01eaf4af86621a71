/*
 * replica — a partition replica: the pure Raft core (raft/) driven over the
 * partition's own segment store (plog), so that the partition log IS the
 * Raft log (DESIGN.md §2): Raft index i is record offset i - 1, and no
 * second copy of any record exists.
 *
 * WHAT GOES WHERE
 *   NORMAL entries are records: their payload (see ENTRY PAYLOAD) carries the
 *   leader's timestamp and optional side data; the record bytes go to the
 *   .log, the side data to the .aux.  NOOP entries (one per new leader) and
 *   CONF entries (a configuration, kept in the .aux) take an offset but no
 *   byte position: they never show in the partition file.  The hard state
 *   (term, vote) is plog's raftstate file, written before any message of the
 *   Ready that changed it is sent.  A reset (a follower behind the leader's
 *   log start) is plog_reset at the leader's first offset and position (the
 *   "snapshot" data is that position).
 *
 * DURABILITY
 *   Entries are written to the page cache as soon as a Ready hands them
 *   over, then made durable by one fdatasync job at a time in the thread
 *   pool (.log, .idx and .aux: a Raft log rebuilds nothing at recovery);
 *   the job's end reports raft_persisted for everything it covered.  The
 *   core acknowledges to a leader, and a leader counts itself, only for
 *   entries so reported, and the leader's own fsync runs while its APPENDs
 *   are on the wire.
 *
 * ENTRY PAYLOAD (NORMAL entries, all integers little-endian)
 *   0  1  version (1)
 *   1  1  flags (0)
 *   2  8  timestamp, ms since the epoch (the leader's append time)
 *  10  4  side data length A
 *  14  A  side data (a Kafka record's key, headers ...; stored in the .aux)
 *  14+A   the record's bytes, '\n' included (what the partition file shows)
 *   A follower refuses (drops the message of) a payload that does not parse
 *   or whose record does not end with '\n'.
 *   With flags bit 0 (CONTROL) the entry is a control entry of the log, not
 *   a record: no record bytes follow, the side data is the control (tag u8,
 *   offset u64; see REPLICA_CTL_*), it is stored as a SEG_CONTROL entry
 *   (an offset, no byte position) and never shows in the partition file.
 *
 * CONTROL ENTRIES keep every replica's segments identical: a replicated
 * log rolls its segment right after a ROLL entry and at no other time, and
 * drops its leading segments below offset X when a TRIM X entry is
 * committed (the owner applies it: replica_trim), so retention moves the
 * start of every replica's log to the same offset and byte position.
 *
 * Loop thread only; callbacks (send, committed) run on it, never inside the
 * call that caused them... except send and committed run from inside
 * replica_tick/step/propose's processing of the core's output, after the
 * core's state is consistent: they must not call back into this replica.
 */
#ifndef MK_REPLICA_H
#define MK_REPLICA_H

#include "broker/plog.h"
#include "raft/raft.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#define REPLICA_PAYLOAD_HDR 14

struct replica;

struct replica_io {
    void *ctx;
    /* Optional: a NORMAL entry with side data was written to the log at
     * offset off in term `term` (at the leader when proposed, at a follower
     * when received); aux valid for the call only. */
    void (*appended)(void *ctx, uint64_t off, uint64_t term, const uint8_t *aux, uint32_t aux_len);
    /* Optional: a control entry (tag, arg) was written at offset off in
     * term `term`. */
    void (*control)(void *ctx, uint64_t off, uint64_t term, uint8_t tag, uint64_t arg);
    /* Sends m (copy it: it is valid for the call only) to node `to`. */
    void (*send)(void *ctx, uint64_t to, const struct raft_msg *m);
    /* Everything below offset commit_off (bytes below commit_pos) is
     * committed and durable here. */
    void (*committed)(void *ctx, uint64_t commit_off, uint64_t commit_pos);
    /* Optional: a rebuilding replica caught up and votes again (persist
     * that, so that a restart does not rebuild again). */
    void (*rebuilt)(void *ctx);
    /* Optional: the replica finished processing the core's output (after
     * any call, and after a sync job came back): the owner may act on what
     * the callbacks above told it, and may call into the replica again. */
    void (*settled)(void *ctx);
    /* Optional: the entry at offset off failed its checks when read to be
     * sent (plog_verify): nothing of it was sent. */
    void (*damaged)(void *ctx, uint64_t off);
};

struct replica_options {
    uint64_t id;                  /* this node */
    const struct raft_conf *conf; /* the replicas, for a new group */
    unsigned election_ticks, heartbeat_ticks;
    uint64_t seed;
    int64_t segment_bytes, segment_ms; /* when the log rolls segments */
    uint32_t max_record;               /* longest record (message.max.bytes): bounds the
                                          entries per APPEND so that one fits a frame */
    bool no_sync; /* fsync=never: written entries count as persisted at once */
    bool rebuilding; /* a wiped node's group: no vote until caught up (raft.h) */
};

/* SIDE DATA of a record: record.h (the producer field lets a write sent
 * again be recognised, pgroup.h; Kafka keys and headers). */
#define REPLICA_CTL_ROLL 1 /* close the segment after this entry */
#define REPLICA_CTL_TRIM 2 /* once committed: drop the segments below the offset */
#define REPLICA_CTL_LEN  9

struct replica_producer {
    uint64_t id;  /* nonzero */
    uint64_t seq; /* of the first record; the next ones count up */
};

/* Starts a replica over log (opened with plog_open_raft; not owned, must
 * outlive the replica).  Its hard state and entries are the plog's. */
int replica_open(struct replica **out, uv_loop_t *loop, struct plog *log,
                 const struct replica_options *opt, const struct replica_io *io);

/* Stops: waits for nothing (a running sync job finishes in the pool and
 * is then ignored); frees once that job is back. */
void replica_close(struct replica *r);

void replica_tick(struct replica *r);
int replica_step(struct replica *r, const struct raft_msg *m);

/* Leader only: proposes n records (bytes: the concatenation of iov, lens[i]
 * each with its '\n') with timestamp ts, and, when prod is not NULL, record
 * i's producer id and sequence prod->seq + i as side data, then its own
 * side data (side_lens[i] bytes of side, in order; side NULL: none).  *first_off is
 * the offset the first will have if they commit in the current term
 * (raft_term at return).  RAFT_ENOTLEADER elsewhere. */
int replica_propose(struct replica *r, const struct iovec *iov, int iovcnt, const uint32_t *lens,
                    const uint8_t *side, const uint32_t *side_lens, size_t n, int64_t ts,
                    const struct replica_producer *prod, uint64_t *first_off, uint64_t *term);

struct raft *replica_raft(struct replica *r);

/* Leader only: proposes a control entry (REPLICA_CTL_ROLL, or _TRIM with
 * the offset below which segments go). */
int replica_propose_control(struct replica *r, uint8_t tag, uint64_t arg, uint64_t *off,
                            uint64_t *term);

/* Leader only: hands leadership to voter `to` (raft_transfer). */
int replica_transfer(struct replica *r, uint64_t to);

/* Encodes a NORMAL entry payload (see above) into buf (REPLICA_PAYLOAD_HDR
 * + aux_len + len bytes). */
void replica_payload_encode(uint8_t *buf, int64_t ts, const void *aux, uint32_t aux_len,
                            const void *rec, uint32_t len);

/* Parses a payload: 0 or -EBADMSG.  *rec_len is 0 (and *rec NULL) for a
 * control entry, whose control is then *aux. */
int replica_payload_decode(const void *buf, size_t len, int64_t *ts, const uint8_t **aux,
                           uint32_t *aux_len, const uint8_t **rec, uint32_t *rec_len);

#endif
