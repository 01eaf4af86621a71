/*
 * broker — the public interface of the broker layer: what fs/ (and later the
 * Kafka protocol front end) may call.  Everything here runs on the loop
 * thread that owns the broker; nothing is thread-safe and nothing needs to be.
 *
 * Ownership: the broker owns topics and partitions.  A `struct topic *` is
 * valid until the topic is deleted or the broker closed; hold a partition
 * with part_ref() to keep it valid across a deletion (it then answers
 * -ESTALE).  Strings passed in are copied when kept.
 */
#ifndef MK_BROKER_H
#define MK_BROKER_H

#include "broker/config.h"
#include "broker/log.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

#define MK_VERSION "0.1.0"

struct broker;
struct topic;
struct part;

/* ------------------------------------------------------------------ broker */

/* The owner and permission bits (st_mode & 07777) of a directory of the
 * tree: the mount root or a topic.  A topic's partitions show the topic's
 * owner and its mode & 0666. */
struct mk_owner {
    uint32_t uid, gid;
    uint32_t mode;
};

/* Whether data_dir may be used: 0 when it is a minikafka data dir (it has a
 * meta file) or is empty (only lost+found, or the remains of a start cut
 * short: .lock, meta.tmp, minikafka.log*); -ENOTEMPTY when it holds anything
 * else, so that a wrong path never has its files adopted (or deleted);
 * another negative errno when it cannot be read.  Creates nothing. */
int broker_dir_check(const char *data_dir);

/* Locks data_dir (-EBUSY with *holder = the pid of another minikafka that
 * holds it), creates its layout if needed, and opens every topic, recovering
 * the unflushed tail of every partition.  Uses no loop yet, so a daemon can
 * open its broker, report errors on the terminal, and fork afterwards. */
int broker_open(struct broker **out, const char *data_dir, const struct mk_config *cfg,
                long *holder);

/* Attaches the broker to its loop and starts the 1-second housekeeping timer
 * (index checkpoints, segment roll by age, retention) and, with peers, the
 * cluster port.  Fails (-EADDRINUSE ...) only when the port cannot listen;
 * the broker must then be quiesced and closed. */
int broker_start(struct broker *b, uv_loop_t *loop);

/* Whether this node's cluster port address can be bound now (checked
 * before daemonizing, so that a port in use is reported on the terminal).
 * 0 without peers. */
int broker_port_check(const struct mk_config *cfg);

/* Whether host:port (dotted IPv4) can be bound now. */
int broker_bind_check(const char *host, uint16_t port);

/* A front end's status lines (malloc'ed text, freed by the broker) go into
 * the .cluster file after the broker's own. */
void broker_status_hook(struct broker *b, char *(*fn)(void *arg), void *arg);

/* Stops the timer and starts no new background work.  Returns at once; the
 * loop keeps running the jobs already queued.  broker_busy() says whether any
 * are left. */
void broker_quiesce(struct broker *b);

/* Records the calling process's pid in DATA/.lock (after daemonizing). */
void broker_note_pid(struct broker *b);
bool broker_busy(const struct broker *b);

/* Makes everything durable (fdatasync + checkpoint at the log end, so the next
 * start verifies nothing), closes every partition and frees the broker.  Call
 * after the loop has drained (broker_busy() false). */
void broker_close(struct broker *b);

const struct mk_config *broker_config(const struct broker *b);

/* Where this node serves the Kafka protocol (its advertised address): told
 * to the other nodes, so that each can list every node to its clients. */
void broker_set_kafka(struct broker *b, const char *host, uint16_t port);
/* Whether the tree may change other than through this mount: in a cluster,
 * or with the Kafka port on (its clients make and delete topics). */
bool broker_tree_shared(const struct broker *b);
/* Node id's Kafka address as it told it (this node's own included); false
 * when not known (no Kafka port there, or not heard from yet). */
bool broker_node_kafka(const struct broker *b, uint32_t id, char *host, size_t n, uint16_t *port);
/* The node Kafka clients see as the controller: the metadata group's
 * leader, else this node. */
uint32_t broker_controller(const struct broker *b);

/* The consumer groups (groups.h), once started; NULL after quiesce. */
struct groups *broker_groups(const struct broker *b);

/* The cluster's id (fixed at its first start), or on a single node its
 * data dir's: what Kafka clients see as the cluster id. */
uint64_t broker_cluster_id(const struct broker *b);

/* The mount root's owner and mode (default: the daemon's euid/egid, 0755);
 * set persists it in DATA/meta. */
const struct mk_owner *broker_root_owner(const struct broker *b);
int broker_set_root_owner(struct broker *b, const struct mk_owner *o);
const char *broker_data_dir(const struct broker *b);

/* Recovery figures of the last open, for the log line at start. */
struct broker_recovery {
    size_t topics, partitions, segments;
    uint64_t verified, rebuilt, dropped_bytes;
};
void broker_recovery(const struct broker *b, struct broker_recovery *r);

/* The text of the .cluster file: malloc'ed, NUL-terminated, caller frees. */
int broker_status(const struct broker *b, char **text, size_t *len);

/* ------------------------------------------------------- changes of the tree */

/* A change of the tree: on a single node made at once; in a cluster a record
 * of the metadata group, proposed at its leader (forwarded from any node)
 * and answered once applied on this node. */
enum broker_change {
    BC_CREATE, /* topic (owned by own); value: its partition count (NULL:
                  num.partitions) */
    BC_DELETE, /* topic */
    BC_SET,    /* topic key=value (key "partitions": growth) */
    BC_UNSET,  /* topic key */
    BC_OWNER,  /* topic's owner and mode := own */
    BC_ROOT,   /* the mount root's owner and mode := own */
};
struct broker_change_req {
    enum broker_change kind;
    const char *topic, *key, *value;
    struct mk_owner own;
};
typedef void (*broker_done_cb)(void *arg, int status);

/* Makes the change; cb gets its status (0, or the errno of topic_create,
 * topic_set ...; -ETIMEDOUT when no metadata leader answered within
 * request.timeout.ms).  Returns 0 when cb will be called (on a single node
 * before this returns), or an error found at once (a bad name or value, an
 * unknown topic) and then cb is not called. */
int broker_change(struct broker *b, const struct broker_change_req *r, broker_done_cb cb,
                  void *arg);

/* Read-your-cluster's-writes: cb runs once this node knows everything the
 * leader of the metadata group (p NULL) or of p's partition had committed
 * when asked (in a cluster a round trip to that leader, at most 1 s; at
 * once on a single node or on the leader).  Status 0, or why this node's
 * own view is all there is (-EAGAIN no leader, -ETIMEDOUT).  May run cb
 * before returning. */
void broker_sync(struct broker *b, const struct part *p, broker_done_cb cb, void *arg);

/* ------------------------------------------------------------------ topics */

/* Creates a topic with num.partitions partitions, durably (all files fsynced
 * and renamed into place in one step), owned by *own (NULL: the mount root's
 * owner, mode 0755).  -EINVAL/-ENAMETOOLONG (name), -EEXIST, -ENOSPC ... */
int topic_create(struct broker *b, const char *name, const struct mk_owner *own,
                 struct topic **out);

/* Deletes a topic: it disappears at once; its partitions answer -ESTALE to
 * holders; its files are removed in the background. */
int topic_delete(struct broker *b, const char *name);

struct topic *topic_find(const struct broker *b, const char *name);
struct topic *topic_by_id(const struct broker *b, uint64_t id);
size_t topic_count(const struct broker *b);
struct topic *topic_at(const struct broker *b, size_t i); /* stable order: creation */

const char *topic_name(const struct topic *t);
uint64_t topic_id(const struct topic *t); /* >= 1, never reused */
uint32_t topic_partitions(const struct topic *t);
int64_t topic_created_ms(const struct topic *t);
struct part *topic_part(const struct topic *t, uint32_t i);
const struct mk_owner *topic_owner(const struct topic *t);
/* Changes owner and mode durably (the topic file is rewritten atomically). */
int topic_set_owner(struct broker *b, struct topic *t, const struct mk_owner *o);

/* Topic settings by Kafka name ("partitions", "retention.ms", ...).
 * get: decimal text of the effective value; -ENOENT for unknown names.
 * set: -EINVAL for a bad value or a partition count that does not grow;
 * growing the count creates the new partitions durably.
 * unset: drops an override (-EPERM for "partitions"). */
int topic_get(const struct broker *b, const struct topic *t, const char *key, char *buf, size_t n);
int topic_set(struct broker *b, struct topic *t, const char *key, const char *value);
int topic_unset(struct broker *b, struct topic *t, const char *key);

/* -------------------------------------------------------------- partitions */

struct part_info {
    uint32_t id;
    uint64_t first_off, next_off; /* committed: [first, next) */
    uint64_t first_pos, end_pos;  /* committed bytes: [first, end) */
    uint64_t term;
    uint32_t leader;
    size_t segments;
    int64_t mtime_ms; /* last commit */
    int64_t ctime_ms;
};
void part_info(const struct part *p, struct part_info *out);
struct topic *part_topic(const struct part *p); /* NULL once deleted */
/* The node ids, comma-separated, of the partition's replicas (which 'r',
 * preferred leader first) or of its in-sync replicas (which 'i', as the
 * leader knows them). */
void part_list(const struct part *p, char which, char *buf, size_t n);

void part_ref(struct part *p);
void part_unref(struct part *p);
bool part_deleted(const struct part *p);

/* Status of an append: called exactly once, on the loop thread, possibly
 * before part_append returns. */
typedef void (*part_done_cb)(void *arg, int status);

/* Appends n records (their bytes: the concatenation of iov, at most 8 pieces;
 * lens[i] includes each record's '\n') contiguously, and calls cb once they
 * are committed: durable under fsync=always (group commit: every append that
 * arrives while an fdatasync runs shares the next one), at once under
 * fsync=never.  A failure before anything was stored is returned (-ESTALE,
 * -ENOSPC, -EIO ...) and cb is not called; a failure to make the records
 * durable reaches cb, and the records are then removed again. */
int part_append(struct part *p, const struct iovec *iov, int iovcnt, const uint32_t *lens, size_t n,
                part_done_cb cb, void *arg);

/* One record of part_append_recs. */
struct part_rec {
    uint32_t len;       /* its bytes in the partition file, '\n' included */
    const uint8_t *aux; /* side data (record.h: a Kafka record's key,
                           headers, timestamp), NULL when aux_len is 0 */
    uint32_t aux_len;
};
/* An idempotent writer of part_append_recs (a Kafka producer: record.h's
 * PRODUCER_KAFKA ids): records of one id carry consecutive sequences from
 * seq.  A batch stored already is answered with its offset and not stored
 * again; one that does not follow the last is refused with -EILSEQ. */
struct part_producer {
    uint64_t id;
    uint64_t seq;
};
/* Status of part_append_recs: on success, the offset of the first record. */
typedef void (*part_placed_cb)(void *arg, int status, uint64_t first_off);

/* part_append for records that may carry side data and whose bytes may
 * hold any byte, '\n' included before the last (a Kafka record's value):
 * such records are never split by a recovery (record.h), and their
 * acknowledgement waits for their index to be durable too.  Same rules
 * otherwise; cb also gets where the records went. */
int part_append_recs(struct part *p, const struct iovec *iov, int iovcnt,
                     const struct part_rec *recs, size_t n, const struct part_producer *prod,
                     part_placed_cb cb, void *arg);

/* A committed entry of p's log, by offset (what the Kafka protocol reads). */
struct part_entry {
    bool record;      /* a record; other entries (Raft's) take an offset
                         but show nothing */
    uint64_t pos;     /* its first byte in the partition file */
    uint32_t len;     /* its bytes, '\n' included */
    int64_t ts;       /* append time, ms */
    uint32_t aux_len; /* bytes of side data (record.h) */
};
/* The entry at offset off: 0; -ENODATA below the first retained offset;
 * -ERANGE at or past the commit point.  With aux (aux_cap >= its aux_len)
 * its side data is read there too (-EMSGSIZE when it does not fit). */
int part_entry(struct part *p, uint64_t off, struct part_entry *e, void *aux, size_t aux_cap);

/* Committed entries from offset off, as many as fit: at most max, within
 * one segment, with their side data read into aux (at most aux_cap bytes;
 * entry i's at aux + at[i]).  *n entries (0 at the commit point); the same
 * errors as part_entry.  A few reads for all: what Fetch uses. */
int part_entries(struct part *p, uint64_t off, size_t max, struct part_entry *out, size_t *at,
                 size_t *n, void *aux, size_t aux_cap);

/* The first committed offset whose append time is >= ts_ms (the commit
 * point when none is).  Binary search over the segments and their index. */
uint64_t part_offset_for_time(struct part *p, int64_t ts_ms);

/* A one-shot wake-up for a reader waiting at the end of p (a Kafka Fetch,
 * a following read): cb runs (on the loop) once p's commit point moves or
 * p goes away, and the watch is then off.  part_unwatch takes back one
 * that has not fired (harmless on one that has). */
struct part_watch {
    struct part_watch *next, **pprev; /* NULL pprev: not armed */
    void (*cb)(struct part_watch *w);
};
void part_watch(struct part *p, struct part_watch *w, void (*cb)(struct part_watch *w));
void part_unwatch(struct part_watch *w);

/* Calls cb once everything appended so far is durable (fsync(2) on a
 * partition file, meaningful under fsync=never). */
int part_sync(struct part *p, part_done_cb cb, void *arg);

/* Where the committed bytes at position pos are: a descriptor, the offset in
 * it and how many bytes (<= size, 0 at the end).  The descriptor stays valid
 * until the loop next runs.  -ENODATA below the first retained position. */
int part_read(struct part *p, uint64_t pos, size_t size, int *fd, uint64_t *fdoff, size_t *n);

/* The entry at offset `off` of p's log failed its checks (plog_verify): it
 * is logged once, counted, and, in a cluster, repaired from another replica
 * (pgroup_repair).  Callers refuse what they were asked for with EIO. */
void part_damaged(struct part *p, uint64_t off);

/* setfattr user.leader on a partition: pgroup_transfer, -EPERM on a single
 * node. */
int part_transfer(struct part *p, uint32_t to);

/* Whether a read this node's replica refused as damaged (-EIO) may be
 * served by the leader instead (part_read_remote) while it is repaired. */
bool part_read_elsewhere(const struct part *p);

/* A node that holds no replica of p (part_read answers -EREMOTE) reads
 * from the partition's leader: cb gets the committed bytes at pos (n <=
 * size, at most 1 MiB; 0 at the end), never inside this call; -ENODATA with
 * end = the first retained position when pos is below it. */
/* Whether this node holds no replica of p (a node of a cluster). */
bool part_remote(const struct part *p);
/* Whether p is a cluster partition (a Raft group), replica here or not. */
bool part_replicated(const struct part *p);
typedef void (*part_read_cb)(void *arg, int status, const void *data, size_t n, uint64_t end);
int part_read_remote(struct part *p, uint64_t pos, size_t size, part_read_cb cb, void *arg);

#endif
