/*
 * groups — consumer groups: membership, rebalances and committed offsets,
 * for every front end.  Kafka clients (broker/kafka/) join through
 * JoinGroup/SyncGroup/Heartbeat/LeaveGroup; the file system's group
 * members will join the same groups through the same calls.  The protocol
 * is Kafka's classic one (the coordinator keeps members and generations;
 * the group's leader member computes the assignment, opaque here), so the
 * errors are Kafka's codes (enum gerr).
 *
 * WHERE THE STATE LIVES
 *   Membership is in memory on the coordinator: a node restart or a
 *   coordinator failover makes the members join again, as in Kafka.
 *   Committed offsets are records of the internal topic __consumer_offsets
 *   (one partition, made on first use, replicated like any topic in a
 *   cluster), so they survive restarts and failovers: the coordinator is
 *   the node that leads that partition, and its offset map is the fold of
 *   the partition in order, read up to the commit point before each
 *   answer.  Each record shows in the mount as one line
 *     commit group=G topic=T partition=P offset=O
 *   (G %-escaped outside [A-Za-z0-9._-]); its key holds the same in binary
 *   with the commit's metadata string.  Retention applies to it as to any
 *   topic (7 days by default, Kafka's offsets.retention.minutes).
 *
 * Loop thread only.  Callbacks run on the loop, never inside the call that
 * started them, except where said.
 */
#ifndef MK_GROUPS_H
#define MK_GROUPS_H

#include "broker/broker.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GROUPS_TOPIC "__consumer_offsets"

/* Kafka's error codes, as the group protocol answers them. */
enum gerr {
    GERR_NONE = 0,
    GERR_UNKNOWN = -1,
    GERR_COORDINATOR_LOAD_IN_PROGRESS = 14,
    GERR_COORDINATOR_NOT_AVAILABLE = 15,
    GERR_NOT_COORDINATOR = 16,
    GERR_ILLEGAL_GENERATION = 22,
    GERR_INCONSISTENT_GROUP_PROTOCOL = 23,
    GERR_INVALID_GROUP_ID = 24,
    GERR_UNKNOWN_MEMBER_ID = 25,
    GERR_INVALID_SESSION_TIMEOUT = 26,
    GERR_REBALANCE_IN_PROGRESS = 27,
    GERR_UNKNOWN_TOPIC_OR_PARTITION = 3,
    GERR_OFFSET_METADATA_TOO_LARGE = 12,
    GERR_REQUEST_TIMED_OUT = 7,
};

struct groups;

int groups_open(struct groups **out, struct broker *b, uv_loop_t *loop);
/* Answers every waiting call with GERR_COORDINATOR_NOT_AVAILABLE and frees
 * everything once its timer is closed (the loop must run on). */
void groups_close(struct groups *gs);

/* Where groups are coordinated: cb(arg, err, node id).  Makes the offsets
 * topic first when it does not exist yet (so cb may come later); err
 * GERR_COORDINATOR_NOT_AVAILABLE while its partition has no leader. */
typedef void (*groups_where_cb)(void *arg, int err, uint32_t node);
void groups_coordinator(struct groups *gs, groups_where_cb cb, void *arg);

/* ---- membership ----------------------------------------------------------- */

struct group_protocol {
    const char *name;
    const uint8_t *meta;
    size_t meta_len;
};

struct group_join {
    const char *group;
    const char *member_id; /* "" for a new member */
    const char *client_id, *client_host;
    int32_t session_timeout_ms, rebalance_timeout_ms;
    const char *protocol_type;
    const struct group_protocol *protocols;
    size_t nprotocols;
};

struct group_member_info {
    const char *member_id;
    const uint8_t *meta; /* its metadata for the chosen protocol */
    size_t meta_len;
};

/* The answer to a join: valid during the callback only. */
struct group_joined {
    int err;
    int32_t generation;
    const char *protocol;
    const char *leader;
    const char *member_id;
    const struct group_member_info *members; /* to the leader only, else none */
    size_t nmembers;
};
typedef void (*group_join_cb)(void *arg, const struct group_joined *j);

/* Joins (or rejoins) a group: cb once the rebalance this starts completes
 * (with every member that joined in time), or at once with an error. */
void group_join(struct groups *gs, const struct group_join *j, group_join_cb cb, void *arg);

struct group_assignment {
    const char *member_id;
    const uint8_t *data;
    size_t len;
};
/* cb(arg, err, this member's assignment, valid during the call). */
typedef void (*group_sync_cb)(void *arg, int err, const uint8_t *data, size_t len);
/* The leader hands in every member's assignment; the others wait for it. */
void group_sync(struct groups *gs, const char *group, int32_t generation, const char *member_id,
                const struct group_assignment *a, size_t n, group_sync_cb cb, void *arg);

/* GERR_NONE, or what the member must do (REBALANCE_IN_PROGRESS: join again). */
int group_heartbeat(struct groups *gs, const char *group, int32_t generation,
                    const char *member_id);
int group_leave(struct groups *gs, const char *group, const char *member_id);

/* ---- committed offsets ---------------------------------------------------- */

struct group_offset {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *metadata; /* may be NULL */
    int err;              /* set by group_commit for each */
};
/* Commits offs[0..n) durably (one record each), checking generation and
 * member when given (generation -1 and member "": a commit outside the
 * group's membership, allowed while the group has no members).  cb(arg,
 * err) once durable (err for the whole call; offs[i].err per offset).
 * offs must stay valid until cb. */
void group_commit(struct groups *gs, const char *group, int32_t generation,
                  const char *member_id, struct group_offset *offs, size_t n,
                  void (*cb)(void *arg, int err), void *arg);

/* The committed offset of (group, topic, partition): 0 with *offset and
 * *metadata (valid until the loop runs), or offset -1 when none.  Reads the
 * offsets partition up to its commit point first.  GERR_NOT_COORDINATOR
 * ... when this node does not coordinate. */
int group_fetch(struct groups *gs, const char *group, const char *topic, int32_t partition,
                int64_t *offset, const char **metadata);
/* Calls fn for every committed offset of group. */
int group_fetch_all(struct groups *gs, const char *group,
                    void (*fn)(void *arg, const char *topic, int32_t partition, int64_t offset,
                               const char *metadata),
                    void *arg);

/* One line per group for .cluster ("group NAME state=... generation=...
 * members=N"). */
char *groups_status(const struct groups *gs);

#endif
