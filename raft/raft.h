/*
 * raft/raft.h -- the consensus core of minikafka: a pure Raft state machine.
 *
 * WHY PURE.  The core never touches a socket, a file, a clock or a thread.
 * The caller feeds it inputs and acts on its outputs, in the style of
 * etcd/raft's Ready/Advance loop.  That is what lets tests/sim run thousands
 * of seeded, byte-for-byte reproducible schedules with loss, reordering,
 * duplication, partitions and crashes, and check Raft's safety properties.
 *
 * INPUTS (each is a function call; none blocks, none does I/O):
 *   raft_tick()          one logical clock tick (the caller chooses the period,
 *                        e.g. 10 ms; timeouts below are counted in ticks)
 *   raft_step()          a message received from a peer
 *   raft_propose()       a batch of client payloads (leader only)
 *   raft_propose_conf()  a membership change, one server at a time
 *   raft_transfer()      hand leadership to another voter (TimeoutNow)
 *   raft_persisted()     "my log is durable up to index i, whose term is t"
 *   raft_reset_done()    "the reset/snapshot of the last Ready is durable"
 *
 * OUTPUTS come as one struct raft_ready (see below), taken with raft_ready()
 * and released with raft_advance().  Processing a Ready, in this order:
 *   1. If rd.reset: discard the whole log, make the log start at
 *      rd.snap.index + 1 (term of rd.snap.index = rd.snap.term), install
 *      rd.snap.data as the state-machine state, then (when durable) call
 *      raft_reset_done().
 *   2. If rd.n_entries: truncate the log after rd.entries[0].index - 1 and
 *      append rd.entries.  Writes from successive Readys must reach the disk
 *      in order (a FIFO); when a write is durable call raft_persisted() with
 *      the index and term of its last entry.  The write may finish after
 *      raft_advance() (asynchronous I/O): the core keeps its own copy of the
 *      entries until they are reported persisted.
 *   3. If rd.hs_changed: make rd.term and rd.vote durable BEFORE sending any
 *      message of this Ready (a vote must never be granted from memory only).
 *      If rd.rebuilt: durably clear the caller's rebuilding flag (see
 *      REBUILDING; its order with the rest of the Ready does not matter).
 *   4. Copy or serialize every message in rd.msgs (their entry buffers may
 *      point into the log storage and are only valid until step 5 or until
 *      the storage is modified), then send them (after step 3 is durable).
 *   5. Apply the committed entries rd.apply_lo..rd.apply_hi (inclusive; none
 *      if apply_lo > apply_hi) to the state machine, reading them from the
 *      log storage: they are always durable there.  Entries of type
 *      RAFT_ENTRY_NOOP and RAFT_ENTRY_CONF carry no client data.
 *   6. raft_advance().
 * Between raft_ready() and raft_advance() call no other raft_ function.
 *
 * The core only ever acknowledges entries to a leader (APPEND_RESP) after
 * raft_persisted() reported them, and a leader counts itself in a commit
 * quorum only for entries it has persisted itself.
 *
 * INDEXES.  Raft indexes start at 1; index 0 with term 0 is the empty log.
 * The partition log maps record offset o to Raft index o + 1.
 *
 * LOG STORAGE.  The durable log lives in the caller (for a partition: the
 * segment store; for the metadata group: its own log).  The core reads it
 * through struct raft_log_ops and never writes it: writes are outputs.
 * The log may lose its prefix at any time between calls (retention or
 * compaction of applied entries): its first index only moves forward, and
 * the term of the entry just before the first one must stay known.  A
 * follower that needs entries before the leader's first index receives a
 * SNAPSHOT message ("reset to log start", carrying optional state data).
 *
 * MEMORY.  Inputs are borrowed: the core copies whatever it keeps (message
 * entries, proposal payloads, snapshot data).  Outputs (struct raft_ready and
 * everything it points to) are owned by the core and valid until
 * raft_advance().  Entries returned by raft_log_ops.entries are owned by the
 * storage and must stay valid until the storage is next modified.
 *
 * ERRORS are 0 or a negative errno value: RAFT_ENOTLEADER (-EREMOTE) when a
 * leader-only call is made elsewhere, -EBUSY while a leadership transfer or
 * a previous membership change is in progress, -EINVAL for bad arguments,
 * -ENOMEM.  After -ENOMEM the instance must be freed (state is undefined).
 *
 * REBUILDING (a server that lost its disk).  A server whose durable state
 * is gone (empty log, term 0, no vote) but that comes back under the same
 * id breaks Raft if it acts as new: it may vote again in a term it voted
 * in, and entries it acknowledged were counted in commit quorums (E
 * committed on {1,3}; 3 wiped; 1 down; 2, without E, wins with 3's vote).
 * The caller detects the loss (its peers remember a per-data-dir
 * incarnation id), starts the server with raft_options.rebuilding and keeps
 * that flag durable until a Ready reports rd.rebuilt.  While rebuilding:
 *   - the server grants no VOTE or PREVOTE (it answers reject) and never
 *     campaigns (election timeouts and TIMEOUT_NOW start nothing): it stays
 *     a follower;
 *   - it accepts APPEND, HEARTBEAT and SNAPSHOT as any follower and
 *     acknowledges what it has persisted, but marks every APPEND_RESP and
 *     HEARTBEAT_RESP (raft_msg.rebuilding) with the id of its current life
 *     (raft_msg.rebuild_id, drawn from raft_options.seed at raft_new: give
 *     every start a different seed); it takes a HEARTBEAT's commit only up
 *     to what it knows matches the leader (the leader's match for it may
 *     predate the loss);
 *   - a leader that sees a mark with an id it does not know for that server
 *     forgets what it knew of its log (it probes it from scratch), never
 *     counts it in a commit quorum (nor promotes it, nor transfers
 *     leadership to it: -EAGAIN), and appends a NOOP, the fence of that
 *     life.  Once the leader's commit index covers the fence, it sends that
 *     commit index (its own, not the HEARTBEAT commit capped to the
 *     server's match) in raft_msg.rebuild_commit of its APPEND, HEARTBEAT
 *     and SNAPSHOT messages to the server, with rebuild_for = the id.
 * RULE: the server leaves the mode as soon as its log, durable and known to
 * match the leader of its current term, reaches the smallest nonzero
 * rebuild_commit that this leader sent for the server's current life in
 * this term (a new term starts over; a certificate for another life, e.g.
 * sent before a second loss, is ignored).  It then records a vote for that
 * leader in that term if it has none, reports rd.rebuilt once, and answers
 * unmarked from then on.
 * WHY THAT IS SAFE.  The fence entry was created after the leader heard
 * from the server's current life, so a majority of the other servers (the
 * rebuilding one does not count) acknowledged the leader's term T after the
 * restart.  Hence (a) when the server restarted no term above T had a
 * majority of votes, and, no message of before the restart being still in
 * flight, none ever will with the votes it forgot: its votes in T (now for
 * the leader, who already won T) and above T are fresh; (b) the leader was
 * not stale, and its commit index, covering the fence and its own term's
 * NOOP, covers every entry committed before the restart (entries of earlier
 * terms by Leader Completeness, of term T because the leader counted them
 * itself).  Holding that prefix, the server is as good as one that never
 * lost what it acknowledged; until then it neither votes nor counts, so any
 * quorum decides as if it were absent (two majorities always share a server
 * other than it).  Weaker rules fail: the capped HEARTBEAT commit can be
 * below what was committed (the server would leave without it); an
 * uncertified commit may come from a stale leader of an older term, from a
 * message sent before the loss, or from the fence of an earlier life.
 * ASSUMPTIONS: (1) no message sent before the server lost its state (by
 * it or by anybody) is still in flight when it restarts: it stays down
 * longer than the longest message delay, and the caller drops the
 * connections of the lost incarnation; (2) for progress, a majority of the
 * voters of every configuration in use is not rebuilding: lose one disk at
 * a time, never while another server rebuilds, not during a membership
 * change, and change no membership until it has rebuilt (a rebuilding
 * server is as good as down for elections; with a change half applied,
 * the only electable server may be the one that lost its disk).
 *
 * INVARIANTS the core maintains (and tests/sim checks from outside):
 *   - at most one leader per term; a node votes at most once per term;
 *   - a rebuilding server grants no vote, never campaigns, and no leader
 *     counts its acknowledgements until it holds everything committed
 *     before it restarted;
 *   - commit index never decreases within one instance's lifetime;
 *   - only entries of the current term are committed by counting replicas
 *     (earlier entries commit implicitly, by the Log Matching property);
 *   - a leader never truncates or overwrites its own log;
 *   - committed entries are never truncated.
 */
#ifndef MINIKAFKA_RAFT_H
#define MINIKAFKA_RAFT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAFT_ENOTLEADER (-EREMOTE)

/* Upper bound on the servers (voters + learners) of one group. */
#define RAFT_MAX_SERVERS 16

/* ---- roles ------------------------------------------------------------- */

/* Legal transitions (asserted by the core's single transition function):
 *   FOLLOWER     -> PRECANDIDATE | CANDIDATE | FOLLOWER
 *   PRECANDIDATE -> PRECANDIDATE | CANDIDATE | FOLLOWER
 *   CANDIDATE    -> PRECANDIDATE | CANDIDATE | LEADER | FOLLOWER
 *   LEADER       -> FOLLOWER
 * CANDIDATE is entered directly (no PreVote) on TIMEOUT_NOW or when
 * pre_vote is off; a timed-out CANDIDATE starts over with a PreVote.      */
enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRECANDIDATE, /* PreVote phase: asks without bumping its term */
    RAFT_CANDIDATE,
    RAFT_LEADER,
};

/* ---- entries and configurations --------------------------------------- */

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0, /* client payload */
    RAFT_ENTRY_NOOP = 1,   /* appended by every new leader and as a rebuilding
                              server's fence (see REBUILDING); empty */
    RAFT_ENTRY_CONF = 2,   /* a whole new configuration, see raft_conf_decode */
};

/* One log entry.  buf/len is an opaque payload; its owner depends on where
 * the entry appears (see MEMORY above).  The storage must keep type, term and
 * payload of every entry. */
struct raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* enum raft_entry_type */
    const void *buf;
    size_t len;
};

struct raft_server {
    uint64_t id; /* nonzero */
    bool voter;  /* false: learner (replicated to, never counted) */
};

/* A configuration: the set of servers of the group. */
struct raft_conf {
    unsigned n;
    struct raft_server servers[RAFT_MAX_SERVERS];
};

/* Size of a RAFT_ENTRY_CONF payload for a configuration of n servers. */
#define RAFT_CONF_BYTES(n) (1 + 9 * (size_t)(n))

/* Decode the payload of a RAFT_ENTRY_CONF entry.  0 or -EINVAL. */
int raft_conf_decode(const void *buf, size_t len, struct raft_conf *out);

/* Encode conf into buf (RAFT_CONF_BYTES(conf->n) bytes); returns the size. */
size_t raft_conf_encode(const struct raft_conf *conf, void *buf);

/* Index of server id in conf, or -1. */
int raft_conf_find(const struct raft_conf *conf, uint64_t id);

/* ---- messages ---------------------------------------------------------- */

enum raft_msg_type {
    RAFT_MSG_APPEND = 1,     /* index/log_term: previous entry; entries; commit */
                             /* (APPEND, HEARTBEAT, SNAPSHOT: rebuild_commit) */
    RAFT_MSG_APPEND_RESP,    /* reject=0: index = last index matching the leader */
                             /* reject=1: index = rejected prev index, hint_* set */
    RAFT_MSG_HEARTBEAT,      /* commit = min(leader commit, follower match) */
    RAFT_MSG_HEARTBEAT_RESP, /* proves liveness (CheckQuorum), unpauses probes */
                             /* (APPEND_RESP, HEARTBEAT_RESP: rebuilding) */
    RAFT_MSG_PREVOTE,        /* term = candidate's term + 1 (not adopted) */
    RAFT_MSG_PREVOTE_RESP,
    RAFT_MSG_VOTE, /* index/log_term: candidate's last entry */
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_SNAPSHOT,    /* reset to log start: index/log_term, snap_* */
    RAFT_MSG_TIMEOUT_NOW, /* leadership transfer: campaign at once */
};
#define RAFT_MSG_TYPES 11

/* A message.  Every field is plain data except entries and snap_data, whose
 * memory belongs to the producer (the core for outputs, the caller for
 * inputs to raft_step, which copies what it keeps). */
struct raft_msg {
    uint8_t type; /* enum raft_msg_type */
    bool reject;  /* *_RESP: refused */
    /* Two names for one field (one bit on the wire), by message type. */
    union {
        bool transfer;   /* VOTE/PREVOTE: caused by TimeoutNow, ignores leases */
        bool rebuilding; /* APPEND_RESP/HEARTBEAT_RESP: the sender rebuilds */
    };
    uint64_t from, to, term;
    uint64_t index;    /* see enum raft_msg_type */
    uint64_t log_term; /* term of index */
    /* The fields below share their slots (on the wire too) by type. */
    union {
        uint64_t commit; /* APPEND, HEARTBEAT */
        /* APPEND_RESP/HEARTBEAT_RESP marked rebuilding: the id of the
         * sender's current life (see REBUILDING). */
        uint64_t rebuild_id;
    };
    union {
        uint64_t hint_index; /* APPEND_RESP reject: fast back-off */
        /* APPEND/HEARTBEAT/SNAPSHOT to a rebuilding server: the leader's
         * commit index once it covers the fence of the server's life
         * rebuild_for, else 0. */
        uint64_t rebuild_commit;
    };
    union {
        uint64_t hint_term;   /* APPEND_RESP reject: fast back-off */
        uint64_t rebuild_for; /* with rebuild_commit: that life's rebuild_id */
    };
    const struct raft_entry *entries;
    size_t n_entries;
    /* SNAPSHOT only: configuration at index, and opaque state data. */
    struct raft_conf snap_conf;
    const void *snap_data;
    size_t snap_len;
};

/* ---- the log storage the caller implements ---------------------------- */

/* All indexes are Raft indexes.  The empty log has first = 1, last = 0.
 * After a reset to index s (or retention up to s): first = s + 1, last >= s.
 * The core only reads; it tolerates the first index moving forward between
 * calls, but only over entries already applied (rd.apply_hi), since a
 * dropped prefix is taken as committed.  It never reads indexes above the
 * last one reported persisted, nor during a reset not yet reported done.
 *
 * Mapping onto the partition's segment store: index = record offset + 1;
 * term(i) comes from the term-start list (leader-epoch file); entries() is
 * a range read; the Ready's "truncate after i-1 and append" is the store's
 * truncate-suffix + append-batch; first/last index are first offset + 1 and
 * next offset.  The store must also keep each entry's type (NORMAL, NOOP,
 * CONF): NOOP and CONF entries are not records and must not be shown in the
 * partition file (e.g. a flag in the dense index). */
struct raft_log_ops {
    void *ctx;
    uint64_t (*first_index)(void *ctx);
    uint64_t (*last_index)(void *ctx);
    /* Term of the entry at index, for first-1 <= index <= last (at
     * first-1: the term of the log start).  -ENOENT if not retained. */
    int (*term)(void *ctx, uint64_t index, uint64_t *term);
    /* Fill out[0..hi-lo) with the entries [lo, hi); all of them or
     * -ENOENT if some are no longer retained.  Payload pointers stay owned
     * by the storage (valid until it is modified). */
    int (*entries)(void *ctx, uint64_t lo, uint64_t hi, struct raft_entry *out);
    /* Optional (may be NULL: partitions have no state besides the log).
     * The state-machine state as of first_index-1, sent to followers that
     * are behind the log start.  *data valid until storage is modified. */
    int (*snapshot)(void *ctx, const void **data, size_t *len);
    /* Optional (with raft_options.max_msg_bytes): about how many payload
     * bytes the stored entries [lo, hi) hold (an estimate is fine: it only
     * sizes APPENDs). */
    size_t (*bytes)(void *ctx, uint64_t lo, uint64_t hi);
};

/* ---- creating an instance --------------------------------------------- */

struct raft_options {
    uint64_t id; /* this server, nonzero */
    /* Timeouts in ticks: election timeouts are drawn uniformly from
     * [election_ticks, 2*election_ticks).  Defaults 10 and 1. */
    unsigned election_ticks, heartbeat_ticks;
    unsigned max_inflight;    /* APPENDs in flight per follower (default 64) */
    unsigned max_msg_entries; /* entries per APPEND (default 4096) */
    size_t max_msg_bytes;     /* and payload bytes per APPEND, at least one entry
                                 (0: no limit; needs log.bytes for stored ones) */
    bool pre_vote, check_quorum;
    uint64_t seed; /* seeds the core's PRNG (election timeouts) */
    /* Persisted hard state (0, 0 for a new server). */
    uint64_t term, vote;
    /* Configuration as of the log start (first_index - 1): the bootstrap
     * configuration of a new group, or the one of the last reset.  NULL
     * (or n = 0) for a server that waits to be added by a leader.
     * RAFT_ENTRY_CONF entries found in the log override it. */
    const struct raft_conf *conf;
    /* The caller knows the retained log holds no RAFT_ENTRY_CONF entries
     * (its configuration is `conf`): raft_new then does not read the log to
     * look for them, so that opening a long log costs nothing. */
    bool no_conf_entries;
    /* Persisted by the caller: this server lost its durable state and
     * rebuilds it (see REBUILDING).  Set it when starting a server found
     * wiped, keep it across restarts, clear it when a Ready says rebuilt. */
    bool rebuilding;
    struct raft_log_ops log;
};

struct raft;

/* Create an instance from persisted state only.  Scans the retained log for
 * configuration entries.  *out is freed with raft_free(). */
int raft_new(const struct raft_options *opt, struct raft **out);
void raft_free(struct raft *r);

/* ---- inputs ------------------------------------------------------------- */

int raft_tick(struct raft *r);
int raft_step(struct raft *r, const struct raft_msg *m);

/* A payload to propose (borrowed; copied by raft_propose). */
struct raft_buf {
    const void *buf;
    size_t len;
};
/* Append n entries of type NORMAL in the current term.  On success *index
 * (if not NULL) is the index of the first; the entries are committed iff
 * they are applied later at those indexes with this term (raft_term() now). */
int raft_propose(struct raft *r, const struct raft_buf *bufs, size_t n, uint64_t *index);

enum raft_conf_op {
    RAFT_CONF_ADD_LEARNER = 1, /* id must not be in the configuration */
    RAFT_CONF_ADD_VOTER,       /* add as voter, or promote a caught-up learner */
    RAFT_CONF_REMOVE,          /* voter or learner; the last voter cannot go */
};
/* Append a configuration entry.  It takes effect on every server as soon as
 * it is in its log (and is undone if that entry is truncated).  -EBUSY until
 * the previous change is committed and the leader has committed an entry of
 * its term; -EAGAIN when promoting a learner that has not caught up with the
 * commit index or is rebuilding.  A leader that removes itself keeps leading (without
 * counting itself) until the change commits, then steps down.  A server
 * whose latest configuration is uncommitted and excludes it still campaigns
 * in the previous one, so that such a change can always be finished. */
int raft_propose_conf(struct raft *r, enum raft_conf_op op, uint64_t id, uint64_t *index);

/* Transfer leadership to voter `to`: brings it up to date, then sends it
 * TIMEOUT_NOW.  Proposals fail with -EBUSY until the transfer ends (success:
 * this leader steps down on the new term; failure: after an election
 * timeout).  -EAGAIN if `to` is rebuilding (it would not campaign). */
int raft_transfer(struct raft *r, uint64_t to);

/* The log is durable up to index, and the entry there has the given term.
 * Reports that no longer match the in-memory log (overtaken by a truncation)
 * are ignored, and so are reports made while a reset is pending: report
 * writes in the order the Readys produced them (reset first). */
int raft_persisted(struct raft *r, uint64_t index, uint64_t term);

/* The reset of a previous Ready (rd.snap.index/term) is durable. */
int raft_reset_done(struct raft *r, uint64_t index, uint64_t term);

/* ---- outputs ------------------------------------------------------------ */

struct raft_ready {
    bool hs_changed;
    uint64_t term, vote;              /* hard state to persist before sending */
    bool reset;                       /* reset the log to snap (see step 1 above) */
    struct raft_msg snap;             /* index, log_term, snap_conf, snap_data */
    const struct raft_entry *entries; /* to append (after truncation) */
    size_t n_entries;
    const struct raft_msg *msgs;
    size_t n_msgs;
    uint64_t commit;             /* current commit index (informational) */
    uint64_t apply_lo, apply_hi; /* committed, durable, not yet applied */
    bool role_changed;
    enum raft_role role;
    uint64_t leader; /* known leader of the current term, or 0 */
    bool rebuilt;    /* this server just left rebuilding: clear the flag */
};

bool raft_has_ready(struct raft *r);
/* Fill *rd.  Valid until raft_advance(). */
int raft_ready(struct raft *r, struct raft_ready *rd);
void raft_advance(struct raft *r);

/* ---- inspection (cheap, side-effect free) ------------------------------ */

uint64_t raft_id(const struct raft *r);
enum raft_role raft_role(const struct raft *r);
uint64_t raft_term(const struct raft *r);
uint64_t raft_leader(const struct raft *r);
uint64_t raft_commit(const struct raft *r);
uint64_t raft_applied(const struct raft *r);
uint64_t raft_last_index(const struct raft *r);
/* Still rebuilding (see REBUILDING)? */
bool raft_rebuilding(const struct raft *r);
/* Term of the entry at index in the in-memory view of the log (storage +
 * not yet persisted entries); -ENOENT if not retained. */
int raft_log_term(const struct raft *r, uint64_t index, uint64_t *term);
const struct raft_conf *raft_conf(const struct raft *r);
/* Replication state of follower id as seen by a leader (match index). */
int raft_match(const struct raft *r, uint64_t id, uint64_t *match);
const char *raft_role_name(enum raft_role role);
const char *raft_msg_name(int type);

#endif
